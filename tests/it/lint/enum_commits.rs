//! An enum label added and used in one migration: db-init commits after the `ADD VALUE` and
//! writes the history row with the last part, where PostgreSQL fails the single transaction
//! (55P04) and Drizzle's migrator with it; a use in the same query is refused before anything runs.

use super::second;
use crate::harness::{write, TestDb};

const TYPE_AND_TABLE: &str =
    "CREATE TYPE role AS ENUM ('owner', 'member');\nCREATE TABLE u (id int, role role);\n";
const ADD_AND_USE: &str = "CREATE TABLE audit (id int);\nALTER TYPE role ADD VALUE 'billing';\n\
     ALTER TABLE u ALTER COLUMN role SET DEFAULT 'billing';\nINSERT INTO u VALUES (1, 'billing');\n";

fn first(db: &TestDb) {
    write(&db.work.join("migrations"), "0001_t.sql", TYPE_AND_TABLE);
    db.run(&["migrate"]).expect(0);
}

#[test]
fn a_label_used_after_its_add_value_is_committed_first_and_the_migration_succeeds() {
    let db = TestDb::new("enum_commit");
    first(&db);
    second(&db, ADD_AND_USE);
    let plan = db.run(&["plan"]);
    plan.expect(0);
    assert!(
        plan.stdout
            .contains("-- 0002_next.sql part 1 of 2 (statements 1..2, committed after ADD VALUE")
            && plan
                .stdout
                .contains("-- 0002_next.sql part 2 of 2 (statements 3..4, with its history row)")
            && !plan.stdout.contains("enum-value-used-in-transaction"),
        "{}",
        plan.stdout
    );
    let run = db.run(&["migrate"]);
    run.expect(0);
    assert!(
        run.stderr.contains("committed after ADD VALUE"),
        "{}",
        run.stderr
    );
    assert_eq!(db.sql("SELECT role FROM u"), "billing");
    assert_eq!(db.sql("SELECT count(*) FROM audit"), "0");
    assert_eq!(
        db.sql("SELECT count(*) FROM db_init.schema_migrations WHERE version = 2"),
        "1"
    );
    db.run(&["migrate"]).expect(0);
}

#[test]
fn a_failure_after_the_commit_says_what_stays_committed_and_writes_no_history_row() {
    let db = TestDb::new("enum_commit_fail");
    first(&db);
    second(
        &db,
        "ALTER TYPE role ADD VALUE 'billing';\nUPDATE u SET role = 'billing';\nSELECT 1/0;\n",
    );
    let run = db.run(&["migrate"]);
    run.expect(6);
    assert!(
        run.stderr.contains("0002_next.sql:3:")
            && run.stderr.contains("22012")
            && run.stderr.contains("statements 1..1 of 3 stay committed")
            && run.stderr.contains("ADD VALUE IF NOT EXISTS"),
        "{}",
        run.stderr
    );
    assert_eq!(
        db.sql("SELECT count(*) FROM pg_enum WHERE enumlabel = 'billing'"),
        "1"
    );
    assert_eq!(
        db.sql("SELECT count(*) FROM db_init.schema_migrations WHERE version = 2"),
        "0"
    );
    // What the note says, done: the rerun passes over the label that is there.
    second(
        &db,
        "ALTER TYPE role ADD VALUE IF NOT EXISTS 'billing';\nUPDATE u SET role = 'billing';\n",
    );
    db.run(&["migrate"]).expect(0);
}

#[test]
fn atomic_true_cannot_commit_in_the_middle_and_says_so_before_anything_runs() {
    let db = TestDb::new("enum_commit_atomic");
    first(&db);
    second(&db, ADD_AND_USE);
    let run = db.run(&["migrate", "--atomic"]);
    run.expect(7);
    assert!(
        run.stderr.contains(
            "0002_next.sql uses an enum label it adds, so it commits after the ADD VALUE"
        ),
        "{}",
        run.stderr
    );
    assert_eq!(db.sql("SELECT to_regclass('audit') IS NULL"), "t");
}

#[test]
fn a_label_used_in_the_query_that_adds_it_is_refused_before_anything_runs() {
    let db = TestDb::new("enum_same_query");
    let dir = db.work.join("drizzle");
    write(&dir.join("meta"), "_journal.json", &journal(&["0000_t"]));
    write(&dir, "0000_t.sql", TYPE_AND_TABLE);
    db.run(&["migrate", "--migrations", "drizzle"]).expect(0);
    write(
        &dir.join("meta"),
        "_journal.json",
        &journal(&["0000_t", "0001_next"]),
    );
    // No breakpoint between them: one query, which no commit can cut.
    write(
        &dir,
        "0001_next.sql",
        "ALTER TYPE role ADD VALUE 'billing';\nALTER TABLE u ALTER COLUMN role SET DEFAULT 'billing';\n",
    );
    let run = db.run(&["migrate", "--migrations", "drizzle"]);
    run.expect(7);
    assert!(
        run.stderr
            .contains("0001_next.sql:2:1: fails[enum-value-used-in-transaction]")
            && run.stderr.contains("statement-breakpoint")
            && run.stderr.contains("nothing was applied"),
        "{}",
        run.stderr
    );
    assert_eq!(
        db.sql("SELECT count(*) FROM pg_enum WHERE enumlabel = 'billing'"),
        "0"
    );
}

/// A Drizzle 0.x journal for `tags`, a second apart.
fn journal(tags: &[&str]) -> String {
    let entries: Vec<String> = tags
        .iter()
        .enumerate()
        .map(|(i, tag)| {
            format!(
                r#"{{"idx":{i},"version":"7","when":{},"tag":"{tag}","breakpoints":true}}"#,
                1_700_000_000_000u64 + 1000 * i as u64
            )
        })
        .collect();
    format!(
        r#"{{"version":"7","dialect":"postgresql","entries":[{}]}}"#,
        entries.join(",")
    )
}

/// The folder drizzle-kit generates for an added label used at once (a breakpoint between).
fn drizzle_folder(db: &TestDb) -> std::path::PathBuf {
    let dir = db.work.join("drizzle");
    write(
        &dir.join("meta"),
        "_journal.json",
        &journal(&["0000_t", "0001_billing"]),
    );
    write(
        &dir,
        "0000_t.sql",
        "CREATE TYPE \"public\".\"role\" AS ENUM('owner', 'member');--> statement-breakpoint\n\
         CREATE TABLE \"u\" (\n\t\"id\" integer,\n\t\"role\" \"role\"\n);\n",
    );
    write(
        &dir,
        "0001_billing.sql",
        "ALTER TYPE \"public\".\"role\" ADD VALUE 'billing';--> statement-breakpoint\n\
         ALTER TABLE \"u\" ALTER COLUMN \"role\" SET DEFAULT 'billing';",
    );
    dir
}

#[test]
#[ignore = "needs node and npm (drizzle-orm 0.45.4 from the registry): run by .ci/run with --ignored"]
fn drizzle_fails_on_the_enum_migration_where_db_init_succeeds_and_then_agrees() {
    let _ = crate::harness::server();
    let db = TestDb::new("x_enum_drizzle");
    let dir = drizzle_folder(&db);
    let d = crate::harness::drizzle("0.45.4", &db, &dir);
    assert_eq!(d["ok"], false, "{d}");
    assert_eq!(d["code"], "55P04", "Drizzle's one transaction fails: {d}");
    assert_eq!(d["rows_after"], 0, "{d}");

    let db = TestDb::new("x_enum_dbinit");
    let dir = drizzle_folder(&db);
    db.run(&["migrate", "--migrations", "drizzle"]).expect(0);
    assert_eq!(
        db.sql("SELECT column_default FROM information_schema.columns WHERE table_name = 'u' AND column_name = 'role'"),
        "'billing'::role"
    );
    assert_eq!(
        db.sql("SELECT string_agg(created_at::text, ',' ORDER BY id) FROM drizzle.__drizzle_migrations"),
        "1700000000000,1700000001000"
    );
    let d = crate::harness::drizzle("0.45.4", &db, &dir);
    assert_eq!(d["ok"], true, "{d}");
    assert_eq!(
        d["applied"], 0,
        "Drizzle finds nothing to do after db-init: {d}"
    );
}
