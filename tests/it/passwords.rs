//! Where the password comes from, as libpq looks for it: the URL, then `PGPASSWORD`, then the
//! password file (`PGPASSFILE`, else `~/.pgpass`) with its matching rules and its permission
//! check; per database in a run over many. The server checks every password (scram over TCP),
//! and no password ever reaches stdout or stderr.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::fleet::{entries, entry, report, tenant_query, tenants};
use crate::harness::{server, write, Run, TestDb, PASSWORD};

const WRONG: &str = "Wr0ng-Pw";

/// The test database's URL without a password.
fn bare_url(db: &TestDb) -> String {
    let s = server();
    format!("postgres://{}@{}:{}/{}", s.user, s.host, s.port, db.name)
}

fn passfile(db: &TestDb, name: &str, text: &str, mode: u32) -> String {
    write(&db.work, name, text);
    let path = db.work.join(name);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("{e}"));
    path.display().to_string()
}

/// `db-init wait` against `url` with `env`; no password in what it printed.
fn wait(db: &TestDb, url: &str, env: &[(&str, &str)]) -> Run {
    let mut cmd = db.cmd();
    cmd.env("DB_INIT_DATABASE_URL", url)
        .args(["wait", "--wait-timeout", "3s"]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let run = Run::from(cmd.output().unwrap_or_else(|e| panic!("{e}")));
    for secret in [PASSWORD, WRONG] {
        assert!(
            !run.stdout.contains(secret) && !run.stderr.contains(secret),
            "{secret} printed:\n{}\n{}",
            run.stdout,
            run.stderr
        );
    }
    run
}

#[test]
fn pgpassword_is_used_when_the_url_has_none_and_the_url_wins_over_it() {
    let db = TestDb::new("pw_env");
    let url = bare_url(&db);
    wait(&db, &url, &[]).expect(4);
    wait(&db, &url, &[("PGPASSWORD", PASSWORD)]).expect(0);
    // A password in the URL beats PGPASSWORD.
    wait(&db, &db.url(), &[("PGPASSWORD", WRONG)]).expect(0);
    let wrong_in_url = db.url().replace(PASSWORD, WRONG);
    wait(&db, &wrong_in_url, &[("PGPASSWORD", PASSWORD)]).expect(4);
}

#[test]
fn the_password_file_is_read_with_libpqs_rules() {
    let db = TestDb::new("pw_file");
    let s = server();
    let url = bare_url(&db);
    // Comments, a line for another database, an escaped field, then a wildcard line: the first
    // line that matches wins.
    let text = format!(
        "# local passwords\n{host}:{port}:other_db:{user}:{WRONG}\n\
         {host}:{port}:{db}:no\\:body:{WRONG}\n*:{port}:{db}:{user}:{PASSWORD}\n*:*:*:*:{WRONG}\n",
        host = s.host,
        port = s.port,
        user = s.user,
        db = db.name
    );
    let path = passfile(&db, "pgpass", &text, 0o600);
    wait(&db, &url, &[("PGPASSFILE", &path)]).expect(0);
    // The first matching line wins even when it is wrong.
    let first_wrong = passfile(&db, "first", &format!("*:*:*:*:{WRONG}\n{text}"), 0o600);
    wait(&db, &url, &[("PGPASSFILE", &first_wrong)]).expect(4);
    // Without PGPASSFILE: ~/.pgpass.
    let home = db.work.join("home");
    std::fs::create_dir_all(&home).unwrap_or_else(|e| panic!("{e}"));
    std::fs::copy(&path, home.join(".pgpass")).unwrap_or_else(|e| panic!("{e}"));
    let home = home.display().to_string();
    wait(&db, &url, &[("HOME", &home)]).expect(0);
    // PGPASSWORD comes before the file, the URL before both.
    wait(&db, &url, &[("HOME", &home), ("PGPASSWORD", WRONG)]).expect(4);
    let wrong_in_url = db.url().replace(PASSWORD, WRONG);
    wait(&db, &wrong_in_url, &[("PGPASSFILE", &path)]).expect(4);
    // A file that group or others may read is ignored, with libpq's warning.
    let open = passfile(&db, "open", &text, 0o644);
    let run = wait(&db, &url, &[("PGPASSFILE", &open)]);
    run.expect(4);
    assert!(
        run.stderr.contains("has group or world access"),
        "{}",
        run.stderr
    );
}

#[test]
fn each_database_of_a_set_gets_its_own_line_of_the_password_file() {
    let db = TestDb::new("pw_fleet");
    let names = tenants(&db, 3, None);
    write(
        &db.work.join("migrations"),
        "0001_t.sql",
        "CREATE TABLE t (x int);\n",
    );
    let s = server();
    // A wrong line for the second tenant only, before the line for the rest.
    let text = format!(
        "{host}:{port}:{bad}:{user}:{WRONG}\n{host}:{port}:*:{user}:{PASSWORD}\n",
        host = s.host,
        port = s.port,
        user = s.user,
        bad = names[1]
    );
    let path = passfile(&db, "pgpass", &text, 0o600);
    let report_path = db.work.join("report.json");
    let mut cmd = db.cmd();
    cmd.env("DB_INIT_DATABASE_URL", bare_url(&db))
        .env("PGPASSFILE", &path)
        .args([
            "migrate",
            "--databases-query",
            &tenant_query(&db),
            "--report",
        ])
        .arg(&report_path);
    let run = Run::from(cmd.output().unwrap_or_else(|e| panic!("{e}")));
    run.expect(11);
    assert!(!run.stderr.contains(PASSWORD) && !run.stderr.contains(WRONG));
    let r = report(&report_path);
    let all = entries(&r);
    let code = |n: &str| entry(&all, n)["exit_code"].as_u64();
    assert_eq!(
        (code(&names[0]), code(&names[1]), code(&names[2])),
        (Some(0), Some(4), Some(0)),
        "{r:#}"
    );
    let text = std::fs::read_to_string(Path::new(&report_path)).unwrap_or_default();
    assert!(!text.contains(WRONG));
}
