//! First contact with a database that already has the schema (built by `drizzle-kit push`, or
//! with its history table elsewhere): the failure names the setting or the command that fits,
//! and no empty history table is left behind.

use crate::harness::TestDb;

const OURS: &str = "SELECT count(*) FROM pg_tables WHERE schemaname = 'drizzle' AND tablename = '__drizzle_migrations'";

#[test]
fn a_history_table_elsewhere_is_named_with_the_setting_that_points_at_it() {
    let db = TestDb::new("hint_elsewhere");
    db.fixture("basic/drizzle", "migrations");
    db.run(&["migrate", "--drizzle-table", "app_migrations"])
        .expect(0);
    let run = db.run(&["migrate"]);
    run.expect(6);
    for says in [
        "drizzle.app_migrations looks like a Drizzle history table",
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
    run.expect(6);
    assert!(
        run.stderr
            .contains("built by `drizzle-kit push` or by hand")
            && run.stderr.contains("db-init baseline --to <tag>"),
        "{}",
        run.stderr
    );
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
