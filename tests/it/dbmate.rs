//! dbmate folders (issue 21), checked against dbmate itself (npm, exact version, installed by
//! scripts/peers/install.sh): db-init's `schema_migrations` is the table dbmate creates (pg_dump
//! of both), dbmate finds nothing to do after db-init and db-init nothing after dbmate, both
//! ways; the up section only runs, `transaction:false` outside a transaction.

use std::path::PathBuf;
use std::process::Command;

use crate::harness::{write, TestDb};
use crate::migrate::schema_dump;

fn dbmate() -> PathBuf {
    crate::harness::peer("dbmate")
}

fn folder(db: &TestDb) {
    let dir = db.work.join("db/migrations");
    write(
        &dir,
        "20240101120000_create_users.sql",
        "-- migrate:up\ncreate table users (id serial primary key, email text);\n\n-- migrate:down\ndrop table users;\n",
    );
    write(
        &dir,
        "20240102120000_index.sql",
        "-- migrate:up transaction:false\ncreate index concurrently users_email on users (email);\n\n-- migrate:down\ndrop index users_email;\n",
    );
}

/// `dbmate up` on `db`; its output.
fn dbmate_up(db: &TestDb) -> String {
    let out = Command::new(dbmate())
        .args(["--url", &format!("{}?sslmode=disable", db.url())])
        .args([
            "--migrations-dir",
            "db/migrations",
            "--no-dump-schema",
            "up",
        ])
        .current_dir(&db.work)
        .output()
        .unwrap_or_else(|e| panic!("dbmate: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    text
}

fn rows(db: &TestDb) -> String {
    db.sql("SELECT string_agg(version, ',' ORDER BY version) FROM public.schema_migrations")
}

#[test]
#[ignore = "needs npm for dbmate: run by .ci/run with --ignored"]
fn db_init_and_dbmate_agree_both_ways() {
    // db-init first, then dbmate: nothing to do, and the same table dbmate makes.
    let ours = TestDb::new("dbmate_ours");
    folder(&ours);
    ours.run(&["run", "--migrations", "db/migrations"])
        .expect(0);
    assert_eq!(rows(&ours), "20240101120000,20240102120000");
    let said = dbmate_up(&ours);
    assert!(!said.contains("Applying"), "dbmate applied again: {said}");
    let theirs = TestDb::new("dbmate_theirs");
    folder(&theirs);
    dbmate_up(&theirs);
    assert_eq!(
        schema_dump(&ours).replace(&ours.name, ""),
        schema_dump(&theirs).replace(&theirs.name, ""),
        "the schemas differ"
    );
    assert_eq!(rows(&ours), rows(&theirs));
    // dbmate first, then db-init: nothing to do; a new file is applied by db-init, then dbmate
    // finds nothing.
    let status = theirs.run(&["status", "--migrations", "db/migrations"]);
    status.expect(0);
    assert!(status.stdout.contains("Dbmate layout"), "{}", status.stdout);
    write(
        &theirs.work.join("db/migrations"),
        "20240103120000_posts.sql",
        "-- migrate:up\ncreate table posts (id int);\n-- migrate:down\ndrop table posts;\n",
    );
    theirs
        .run(&["run", "--migrations", "db/migrations"])
        .expect(0);
    let said = dbmate_up(&theirs);
    assert!(!said.contains("Applying"), "dbmate applied again: {said}");
    assert_eq!(
        rows(&theirs),
        "20240101120000,20240102120000,20240103120000"
    );
    // The down section never ran.
    assert_eq!(theirs.sql("SELECT to_regclass('users') IS NOT NULL"), "t");
}
