//! Many databases in one run (SPEC section 9), on the real server: per-database outcomes, the
//! report, `status` over the set and exit 11 when some fail; `fail_fast`; a bad set refused
//! before any connection. Runs side by side, sessions and signals are in `fleet/together.rs`.

mod stall;
mod together;

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use crate::harness::{server, write, Run, TestDb, PASSWORD};

const DEFAULT_KEY: &str = "7815895486951160637";

/// `n` new databases named `<base>_t<i>` (OWNER `owner` when given), in one psql session.
pub(super) fn tenants(db: &TestDb, n: usize, owner: Option<&str>) -> Vec<String> {
    let names: Vec<String> = (0..n).map(|i| format!("{}_t{i:02}", db.name)).collect();
    let owner = owner.map(|o| format!(" OWNER {o}")).unwrap_or_default();
    let script: String = names
        .iter()
        .map(|n| format!("CREATE DATABASE \"{n}\"{owner};\n"))
        .collect();
    psql_script("postgres", &script);
    names
}

/// Runs a script of statements, each in its own transaction (CREATE DATABASE needs that).
pub(super) fn psql_script(database: &str, script: &str) {
    let mut child = Command::new(server().bin.join("psql"))
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d"])
        .arg(server().url(database))
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("psql: {e}"));
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let out = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub(super) fn on(name: &str, sql: &str) -> String {
    server().psql(name, sql).unwrap_or_else(|e| panic!("{e}"))
}

/// The query naming this test's tenants.
pub(super) fn tenant_query(db: &TestDb) -> String {
    format!(
        "SELECT datname FROM pg_database WHERE starts_with(datname, '{}_t') ORDER BY 1",
        db.name
    )
}

pub(super) fn report(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        !text.contains(PASSWORD),
        "the report shows the password:\n{text}"
    );
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

pub(super) fn entries(report: &Value) -> Vec<Value> {
    report["databases"].as_array().cloned().unwrap_or_default()
}

pub(super) fn entry<'a>(entries: &'a [Value], database: &str) -> &'a Value {
    entries
        .iter()
        .find(|e| e["database"] == database)
        .unwrap_or_else(|| panic!("no entry for {database} in {entries:?}"))
}

pub(super) fn advisory_locks_anywhere(prefix: &str) -> String {
    on(
        "postgres",
        &format!(
            "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database \
             WHERE l.locktype = 'advisory' AND starts_with(d.datname, '{prefix}')"
        ),
    )
}

pub(super) fn spawn(db: &TestDb, args: &[&str]) -> Child {
    db.cmd()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"))
}

pub(super) fn finish(child: Child) -> Run {
    Run::from(child.wait_with_output().unwrap_or_else(|e| panic!("{e}")))
}

#[test]
fn fifty_databases_with_failures_give_per_database_outcomes_a_report_and_exit_11() {
    let db = TestDb::new("fleet_mixed");
    let names = tenants(&db, 50, None);
    let dir = db.work.join("migrations");
    write(
        &dir,
        "0001_t.sql",
        "CREATE TABLE IF NOT EXISTS t (x int);\n",
    );
    write(&dir, "0002_row.sql", "INSERT INTO t (x) VALUES (1);\n");
    // A bad migration in one database: its table is already there, with another column (42703).
    let (bad, locked, by_url) = (&names[7], &names[13], &names[21]);
    on(bad, "CREATE TABLE t (y text)");
    // A locked one: another session holds the advisory lock there.
    let mut holder = crate::harness::hold_advisory_lock(locked, DEFAULT_KEY, "fleet-holder");
    // The file: names, one URL with the password, a missing database, a duplicate, comments.
    let missing = format!("{}_missing", db.name);
    let mut file = String::from("# tenants\n\n");
    for n in &names {
        match n == by_url {
            true => file.push_str(&format!("{}\n", server().url(n))),
            false => file.push_str(&format!("{n}\n")),
        }
    }
    file.push_str(&format!("{missing}\n{}\n", names[0]));
    write(&db.work, "databases.txt", &file);
    let report_path = db.work.join("report.json");
    let run = db.run(&[
        "run",
        "--databases-file",
        "databases.txt",
        "--concurrency",
        "6",
        "--lock-timeout",
        "1s",
        "--report",
        report_path.to_str().unwrap_or_default(),
    ]);
    run.expect(11);
    assert!(!run.stderr.contains(PASSWORD), "{}", run.stderr);
    assert!(
        run.stderr.contains("51 database(s) in this run")
            && run.stderr.contains("3 of 51 database(s) failed"),
        "{}",
        run.stderr
    );
    for name in [bad, locked, &missing] {
        assert!(
            run.stderr.contains(&format!("  - {name} (exit ")),
            "{name} not listed:\n{}",
            run.stderr
        );
    }

    let r = report(&report_path);
    assert_eq!(
        (
            &r["total"],
            &r["counts"]["done"],
            &r["counts"]["failed"],
            &r["exit_code"]
        ),
        (
            &Value::from(51),
            &Value::from(48),
            &Value::from(3),
            &Value::from(11)
        ),
        "{r:#}"
    );
    let all = entries(&r);
    let code = |name: &str| entry(&all, name)["exit_code"].as_u64();
    assert_eq!(code(bad), Some(6), "bad migration");
    assert_eq!(code(locked), Some(5), "locked");
    assert_eq!(code(&missing), Some(4), "missing database");
    assert!(entry(&all, bad)["error"]
        .as_str()
        .is_some_and(|e| e.contains("0002_row.sql") && e.contains("42703")));
    // The final error lists each failure with its whole reason (the SQLSTATE is not on the
    // first line of a migration failure), not only its first line.
    let summary = run
        .stderr
        .split_once("3 of 51 database(s) failed")
        .map(|(_, rest)| rest)
        .unwrap_or("");
    let reason = entry(&all, bad)["error"].as_str().unwrap_or("").to_string();
    assert!(reason.lines().count() > 1, "{reason}");
    for line in reason.lines() {
        assert!(
            summary.contains(line.trim()),
            "{line:?} cut from:\n{summary}"
        );
    }
    // The URL line is named by its redacted form.
    let url_entry = all
        .iter()
        .find(|e| {
            e["target"]
                .as_str()
                .is_some_and(|t| t.ends_with(by_url.as_str()))
        })
        .unwrap_or_else(|| panic!("no entry for the URL line"));
    assert!(url_entry["database"]
        .as_str()
        .is_some_and(|d| d.contains(":***@")));
    let url_identity = url_entry["database"].as_str().unwrap_or_default();
    for n in names.iter().filter(|n| *n != bad && *n != locked) {
        let identity = match n == by_url {
            true => url_identity,
            false => n.as_str(),
        };
        let e = entry(&all, identity);
        assert_eq!(
            (&e["state"], &e["applied"]),
            (&Value::from("done"), &Value::from(2)),
            "{n}"
        );
        assert_eq!(on(n, "SELECT count(*) FROM t"), "1", "{n}");
    }
    // The failure kept the migration that committed before it, and nothing of its own.
    assert_eq!(
        on(
            bad,
            "SELECT string_agg(version::text, ',') FROM db_init.schema_migrations"
        ),
        "1"
    );
    assert_eq!(on(bad, "SELECT count(*) FROM t"), "0");
    assert_eq!(on(locked, "SELECT to_regclass('t') IS NULL"), "t");
    // The only advisory lock left is the holder's.
    assert_eq!(advisory_locks_anywhere(&db.name), "1");
    assert_eq!(advisory_locks_anywhere(locked), "1");
    let _ = holder.kill();
    let _ = holder.wait();
    on(
        "postgres",
        &format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{locked}'"
        ),
    );

    // status over the set: pending, invalid and unreachable ones are named.
    on(
        &names[3],
        "UPDATE db_init.schema_migrations SET checksum = 'edited' WHERE version = 1",
    );
    let status = db.run(&[
        "status",
        "--format",
        "json",
        "--databases-file",
        "databases.txt",
    ]);
    status.expect(11);
    let doc: Value =
        serde_json::from_str(&status.stdout).unwrap_or_else(|e| panic!("{e}: {}", status.stdout));
    let rows = entries(&doc);
    let state = |name: &str| entry(&rows, name)["state"].clone();
    assert_eq!(state(bad), "pending");
    assert_eq!(state(locked), "pending");
    assert_eq!(state(&names[3]), "invalid");
    assert_eq!(state(&missing), "error");
    assert_eq!(state(&names[4]), "up_to_date");
    assert_eq!(
        (
            &doc["counts"]["up_to_date"],
            &doc["counts"]["pending"],
            &doc["counts"]["invalid"],
            &doc["counts"]["error"]
        ),
        (
            &Value::from(47),
            &Value::from(2),
            &Value::from(1),
            &Value::from(1)
        ),
        "{doc:#}"
    );
}

#[test]
fn fail_fast_starts_no_database_after_a_failure() {
    let db = TestDb::new("fleet_fast");
    let names = tenants(&db, 12, None);
    write(
        &db.work.join("migrations"),
        "0001_t.sql",
        "CREATE TABLE t (x int);\n",
    );
    on(&names[0], "CREATE TABLE t (y text)");
    let report_path = db.work.join("report.json");
    let run = db.run(&[
        "migrate",
        "--databases-query",
        &tenant_query(&db),
        "--concurrency",
        "1",
        "--fail-fast",
        "--report",
        report_path.to_str().unwrap_or_default(),
    ]);
    run.expect(11);
    let r = report(&report_path);
    assert_eq!(
        (&r["counts"]["failed"], &r["counts"]["skipped"]),
        (&Value::from(1), &Value::from(11)),
        "{r:#}"
    );
    assert_eq!(on(&names[11], "SELECT to_regclass('t') IS NULL"), "t");
}

#[test]
fn a_bad_set_is_exit_2_before_any_connection() {
    let db = TestDb::new("fleet_bad_set");
    write(&db.work.join("migrations"), "0001_t.sql", "SELECT 1;\n");
    // A line that is neither a name nor a postgres:// URL is refused without echoing it.
    write(
        &db.work,
        "bad.txt",
        &format!("tenant_a\npostgress://u:{PASSWORD}@h/x\n"),
    );
    let unreachable = "postgres://u:pw@127.0.0.1:1/postgres";
    let run = db
        .cmd()
        .env("DB_INIT_DATABASE_URL", unreachable)
        .args(["run", "--databases-file", "bad.txt", "--wait-timeout", "1s"])
        .output()
        .map(Run::from)
        .unwrap_or_else(|e| panic!("{e}"));
    run.expect(2);
    assert!(run.stderr.contains("line 2"), "{}", run.stderr);
    assert!(!run.stderr.contains(PASSWORD), "{}", run.stderr);
    // A file and a query at once.
    write(&db.work, "ok.txt", "tenant_a\n");
    db.run(&[
        "run",
        "--databases-file",
        "ok.txt",
        "--databases-query",
        "SELECT 1",
    ])
    .expect(2);
    // A report that cannot be written: before any database is touched.
    db.run(&[
        "run",
        "--databases-file",
        "ok.txt",
        "--report",
        "/nonexistent/dir/report.json",
    ])
    .expect(2);
}
