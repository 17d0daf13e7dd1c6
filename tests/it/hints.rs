//! First contact with a database that already has the schema (built by `drizzle-kit push`, or
//! with its history table elsewhere): refused before any DDL (exit 7) naming the setting or the
//! command that fits, or, where only the server finds the clash, the failure names them; no
//! empty history table or schema is left behind.

use crate::harness::TestDb;

const OURS: &str = "SELECT count(*) FROM pg_tables WHERE schemaname = 'drizzle' AND tablename = '__drizzle_migrations'";

#[test]
fn a_history_table_elsewhere_is_named_with_the_setting_that_points_at_it() {
    let db = TestDb::new("hint_elsewhere");
    db.fixture("basic/drizzle", "migrations");
    db.run(&["migrate", "--drizzle-table", "app_migrations"])
        .expect(0);
    let run = db.run(&["migrate"]);
    run.expect(7);
    for says in [
        "0000_light_mephisto.sql:1:1: creates type public.role, which the database already has",
        "drizzle.app_migrations (which looks like a Drizzle history table)",
        "drizzle.schema / drizzle.table",
        "db-init baseline --to <tag>",
    ] {
        assert!(run.stderr.contains(says), "{says:?} not in\n{}", run.stderr);
    }
    assert_eq!(db.sql(OURS), "0", "an empty history table was left behind");
}

#[test]
fn a_pushed_database_is_told_to_baseline() {
    let db = TestDb::new("hint_pushed");
    db.fixture("basic/drizzle", "migrations");
    db.run(&["migrate"]).expect(0);
    // What `drizzle-kit push` leaves: the schema, no history.
    db.sql("DROP SCHEMA drizzle CASCADE");
    let run = db.run(&["migrate"]);
    run.expect(7);
    assert!(
        run.stderr
            .contains("built without this history (`drizzle-kit push`, `prisma db push`, a restore, or by hand)")
            && run.stderr.contains("db-init baseline --to <tag>")
            && run.stderr.contains("nothing applied"),
        "{}",
        run.stderr
    );
    assert_eq!(
        db.sql("SELECT count(*) FROM pg_namespace WHERE nspname = 'drizzle'"),
        "0",
        "an empty drizzle schema was left behind"
    );
    // status says it too, before anyone runs anything.
    let status = db.run(&["status"]);
    status.expect(7);
    assert!(status.stdout.contains("creates type"), "{}", status.stdout);
    assert!(
        !run.stderr.contains("looks like a Drizzle history table"),
        "{}",
        run.stderr
    );
    assert_eq!(db.sql(OURS), "0", "an empty history table was left behind");
    // The hint works: baseline, then nothing to do.
    db.run(&["baseline", "--to", "0005_seed_like_data"])
        .expect(0);
    db.run(&["migrate"]).expect(0);
}

#[test]
fn a_clash_only_the_server_finds_still_names_baseline_and_leaves_no_history_table() {
    let db = TestDb::new("hint_server_clash");
    crate::harness::write(
        &db.work.join("migrations"),
        "0001_t.sql",
        "CREATE TABLE IF NOT EXISTS t (id int);\nCREATE INDEX t_id ON t (id);\n",
    );
    db.sql("CREATE TABLE t (id int); CREATE INDEX t_id ON t (id)");
    let run = db.run(&["migrate"]);
    run.expect(6);
    assert!(
        run.stderr.contains("42P07") && run.stderr.contains("db-init baseline --to <tag>"),
        "{}",
        run.stderr
    );
    assert_eq!(
        db.sql("SELECT to_regclass('db_init.schema_migrations') IS NULL"),
        "t"
    );
}

#[test]
fn without_the_setting_and_without_migrations_drizzle_kits_own_folder_is_used_and_said() {
    let db = TestDb::new("hint_drizzle_dir");
    db.fixture("basic/drizzle", "drizzle");
    let run = db.run(&["migrate"]);
    run.expect(0);
    assert!(
        run.stderr
            .contains("./migrations is absent: using ./drizzle"),
        "{}",
        run.stderr
    );
    assert_eq!(
        db.sql("SELECT count(*) FROM drizzle.__drizzle_migrations"),
        "6"
    );
    // A folder named on purpose is never swapped.
    let run = db.run(&["status", "--migrations", "migrations"]);
    run.expect(2);
    assert!(
        !run.stderr.contains("nor is there ./drizzle"),
        "{}",
        run.stderr
    );
}

#[test]
fn with_neither_folder_the_error_names_both_and_the_setting() {
    let db = TestDb::new("hint_no_dir");
    let run = db.run(&["status"]);
    run.expect(2);
    assert!(
        run.stderr.contains("cannot read ./migrations")
            && run.stderr.contains("nor is there ./drizzle")
            && run
                .stderr
                .contains("set migrations (--migrations, DB_INIT_MIGRATIONS)"),
        "{}",
        run.stderr
    );
}
