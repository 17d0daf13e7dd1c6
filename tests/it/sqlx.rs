//! sqlx folders (issue 21, `layout: sqlx`), checked against sqlx-cli itself (crates.io, exact
//! version, installed by scripts/peers/install.sh): `_sqlx_migrations` as sqlx creates it
//! (pg_dump), sqlx finds nothing to do after db-init (SHA-384 checksums and descriptions
//! match), and db-init nothing after sqlx, half and half both ways; a file edited after sqlx applied it is refused.

use std::path::PathBuf;
use std::process::Command;

use crate::harness::{write, TestDb};
use crate::migrate::schema_dump;

fn sqlx() -> PathBuf {
    crate::harness::peer("sqlx-cli")
}

fn folder(db: &TestDb) {
    let dir = db.work.join("migrations");
    write(
        &dir,
        "20240101120000_create_users.sql",
        "CREATE TABLE users (id bigserial PRIMARY KEY, email text NOT NULL);\n",
    );
    write(
        &dir,
        "20240102120000_add_index.up.sql",
        "-- no-transaction\nCREATE INDEX CONCURRENTLY users_email ON users (email);\n",
    );
    write(
        &dir,
        "20240102120000_add_index.down.sql",
        "DROP INDEX users_email;\n",
    );
}

/// `sqlx migrate <what>` on `db`; its output.
fn sqlx_migrate(db: &TestDb, what: &str) -> String {
    let out = Command::new(sqlx())
        .args(["migrate", what, "--source", "migrations", "--database-url"])
        .arg(db.url())
        .current_dir(&db.work)
        .output()
        .unwrap_or_else(|e| panic!("sqlx: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "sqlx migrate {what}: {text}");
    text
}

fn rows(db: &TestDb) -> String {
    db.sql("SELECT string_agg(version || ' ' || description || ' ' || success || ' ' || encode(checksum, 'hex'), E'\\n' ORDER BY version) FROM _sqlx_migrations")
}

#[test]
#[ignore = "needs cargo and crates.io for sqlx-cli: run by .ci/run with --ignored"]
fn db_init_and_sqlx_agree_both_ways() {
    let ours = TestDb::new("sqlx_ours");
    folder(&ours);
    ours.run(&["run", "--layout", "sqlx"]).expect(0);
    let said = sqlx_migrate(&ours, "run");
    assert!(!said.contains("Applied"), "sqlx applied again: {said}");
    let theirs = TestDb::new("sqlx_theirs");
    folder(&theirs);
    sqlx_migrate(&theirs, "run");
    assert_eq!(
        schema_dump(&ours).replace(&ours.name, ""),
        schema_dump(&theirs).replace(&theirs.name, ""),
        "the schemas differ"
    );
    assert_eq!(rows(&ours), rows(&theirs));
    let status = theirs.run(&["status", "--layout", "sqlx"]);
    status.expect(0);
    // Edited after sqlx applied it: sqlx refuses it, and so does db-init.
    write(
        &theirs.work.join("migrations"),
        "20240101120000_create_users.sql",
        "CREATE TABLE users (id bigserial PRIMARY KEY, email text);\n",
    );
    let edited = theirs.run(&["run", "--layout", "sqlx"]);
    edited.expect(7);
    assert!(
        edited.stderr.contains("changed after it was applied"),
        "{}",
        edited.stderr
    );

    // Half and half, both ways: one tool applies the first file, the other the rest, then the
    // first finds nothing to do; rows and schema as sqlx alone writes them.
    for (first, name) in [("sqlx", "sqlx_half_theirs"), ("db-init", "sqlx_half_ours")] {
        let db = TestDb::new(name);
        folder(&db);
        let later = db.work.join("migrations/20240102120000_add_index.up.sql");
        let held = std::fs::read_to_string(&later).unwrap_or_else(|e| panic!("{e}"));
        std::fs::remove_file(&later).unwrap_or_else(|e| panic!("{e}"));
        let rest = || std::fs::write(&later, &held).unwrap_or_else(|e| panic!("{e}"));
        if first == "sqlx" {
            sqlx_migrate(&db, "run");
            rest();
            db.run(&["run", "--layout", "sqlx"]).expect(0);
            let said = sqlx_migrate(&db, "run");
            assert!(!said.contains("Applied"), "sqlx applied again: {said}");
        } else {
            db.run(&["run", "--layout", "sqlx"]).expect(0);
            rest();
            let said = sqlx_migrate(&db, "run");
            assert!(said.contains("Applied"), "sqlx applied nothing: {said}");
            let status = db.run(&["status", "--layout", "sqlx"]);
            status.expect(0);
        }
        assert_eq!(
            schema_dump(&db).replace(&db.name, ""),
            schema_dump(&ours).replace(&ours.name, ""),
            "{first} first: the schemas differ"
        );
        assert_eq!(
            rows(&db),
            rows(&ours),
            "{first} first: the rows differ from sqlx's own"
        );
    }
}

/// A mixed rollout: an app whose `sqlx::migrate!()` migrator is at work (it holds sqlx's lock,
/// `0x3d32ad9e * crc32(current_database())`, sqlx-postgres 0.9.0 `generate_lock_id`) makes
/// db-init wait instead of racing it. The key is computed here without db-init (Python's zlib).
/// `sqlx migrate run` (sqlx-cli 0.9.0) takes no lock at all: only the library's migrator does.
#[test]
fn sqlxs_own_lock_is_waited_for() {
    let db = TestDb::new("sqlx_lock");
    folder(&db);
    let out = Command::new("python3")
        .args([
            "-c",
            "import sys, zlib; print(0x3d32ad9e * zlib.crc32(sys.argv[1].encode()))",
            &db.name,
        ])
        .output()
        .unwrap_or_else(|e| panic!("python3: {e}"));
    let key = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let mut app = crate::harness::hold_advisory_lock(&db.name, &key, "sqlx-migrator");
    let run = db.run(&["run", "--layout", "sqlx", "--lock-timeout", "2s"]);
    let _ = app.kill();
    let _ = app.wait();
    run.expect(5);
    assert!(run.stderr.contains(&key), "{}", run.stderr);
    assert_eq!(
        db.sql("SELECT to_regclass('public._sqlx_migrations') IS NULL"),
        "t"
    );
}

/// A numbered folder is also sqlx's: without the `layout` setting, a database that has
/// sqlx's table (and not db-init's) is read as sqlx's.
#[test]
fn an_existing_sqlx_table_names_the_format() {
    let db = TestDb::new("sqlx_detect");
    let dir = db.work.join("migrations");
    write(&dir, "1_users.sql", "CREATE TABLE users (id int);\n");
    db.run(&["run", "--layout", "sqlx"]).expect(0);
    write(&dir, "2_posts.sql", "CREATE TABLE posts (id int);\n");
    let status = db.run(&["status", "--format", "json"]);
    status.expect(10);
    assert!(
        status.stdout.contains("\"layout\": \"sqlx\""),
        "{}",
        status.stdout
    );
    db.run(&["run"]).expect(0);
    assert_eq!(
        db.sql("SELECT string_agg(version || ' ' || description, ',' ORDER BY version) FROM _sqlx_migrations"),
        "1 users,2 posts"
    );
    assert_eq!(
        db.sql("SELECT to_regclass('db_init.schema_migrations') IS NULL"),
        "t"
    );
    // An app's `wait --migrated` reads the same history: migrated, at once.
    db.run(&["wait", "--migrated", "--wait-timeout", "5s"])
        .expect(0);
    // A fresh database is db-init's own numbered layout.
    let fresh = TestDb::new("sqlx_detect_fresh");
    write(
        &fresh.work.join("migrations"),
        "1_users.sql",
        "CREATE TABLE users (id int);\n",
    );
    fresh.run(&["run"]).expect(0);
    assert_eq!(
        fresh.sql("SELECT count(*) FROM db_init.schema_migrations"),
        "1"
    );
    // A database with db-init's own table keeps it: sqlx's beside it is not asked about.
    fresh.sql("CREATE TABLE _sqlx_migrations (version bigint)");
    write(
        &fresh.work.join("migrations"),
        "2_posts.sql",
        "CREATE TABLE posts (id int);\n",
    );
    fresh.run(&["run"]).expect(0);
    assert_eq!(
        fresh.sql("SELECT count(*) FROM db_init.schema_migrations"),
        "2"
    );

    // `status` over many databases reads each as its own history table says: sqlx's for the
    // first, db-init's numbered layout for the second (both up to date, one run).
    write(
        &db.work,
        "databases.txt",
        &format!("{}\n{}\n", db.name, fresh.name),
    );
    let set = db.run(&[
        "status",
        "--format",
        "json",
        "--databases-file",
        "databases.txt",
    ]);
    set.expect(0);
    let doc: serde_json::Value =
        serde_json::from_str(&set.stdout).unwrap_or_else(|e| panic!("{e}: {}", set.stdout));
    let layouts: Vec<String> = doc["databases"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| format!("{} {} {}", e["database"], e["layout"], e["state"]))
        .collect();
    assert_eq!(
        layouts,
        [
            format!("\"{}\" \"sqlx\" \"up_to_date\"", db.name),
            format!("\"{}\" \"numbered\" \"up_to_date\"", fresh.name),
        ],
        "{}",
        set.stdout
    );
}
