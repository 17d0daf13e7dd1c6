//! Severity tiers, per-rule overrides and suppression comments, on a real table with rows.

use super::{second, table_with_rows};
use crate::harness::TestDb;

#[test]
fn the_table_size_sets_the_severity_in_tiers_whose_thresholds_are_settings() {
    let db = TestDb::new("lint_tiers");
    table_with_rows(&db, 5000);
    second(&db, "CREATE INDEX t_email ON t (email);\n");
    let plan = |extra: &[&str]| {
        let mut args = vec!["plan"];
        args.extend_from_slice(extra);
        let run = db.run(&args);
        run.expect(0);
        run.stdout
    };
    assert!(plan(&[]).contains("info[index-not-concurrent]"));
    assert!(plan(&["--lint-large", "64kB"]).contains("warning[index-not-concurrent]"));
    assert!(plan(&["--lint-large", "8kB", "--lint-huge", "64kB"])
        .contains("critical[index-not-concurrent]"));
}

#[test]
fn a_rule_override_stops_the_run_or_silences_the_rule() {
    let db = TestDb::new("lint_override");
    table_with_rows(&db, 100);
    second(&db, "CREATE INDEX t_email ON t (email);\n");
    let run = db.run(&["migrate", "--lint-rules", "index-not-concurrent=error"]);
    run.expect(7);
    assert!(
        run.stderr.contains("info[index-not-concurrent]") && run.stderr.contains("nothing"),
        "{}",
        run.stderr
    );
    assert_eq!(
        db.sql("SELECT count(*) FROM pg_indexes WHERE indexname = 't_email'"),
        "0"
    );
    let run = db.run(&[
        "migrate",
        "--lint-rules",
        "index-not-concurrent=off",
        "--lint",
        "error",
        "--lint-large",
        "1kB",
    ]);
    run.expect(0);
    assert!(
        !run.stderr.contains("index-not-concurrent"),
        "{}",
        run.stderr
    );
    let run = db.run(&["migrate", "--lint-rules", "index-not-concurent=off"]);
    run.expect(2);
    assert!(
        run.stderr.contains("did you mean `index-not-concurrent`"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_comment_with_a_reason_suppresses_and_one_without_is_not_honoured() {
    let db = TestDb::new("lint_suppress");
    table_with_rows(&db, 100);
    let strict = ["migrate", "--lint", "error", "--lint-large", "1kB"];
    second(
        &db,
        "-- db-init-ignore index-not-concurrent\nCREATE INDEX t_email ON t (email);\n",
    );
    let run = db.run(&strict);
    run.expect(7);
    assert!(run.stderr.contains("gives no reason"), "{}", run.stderr);
    second(
        &db,
        "-- db-init-ignore index-not-concurrent: t is written once a day, at 03:00\nCREATE INDEX t_email ON t (email);\n",
    );
    let run = db.run(&strict);
    run.expect(0);
    assert!(
        run.stderr.contains(
            "[suppressed: -- db-init-ignore index-not-concurrent: t is written once a day"
        ),
        "{}",
        run.stderr
    );
    // The comments a team already has for squawk, eugene and atlas keep working.
    for (n, comment) in [
        "-- squawk-ignore require-concurrent-index-creation",
        "-- eugene: ignore E6",
        "-- atlas:nolint PG101",
    ]
    .iter()
    .enumerate()
    {
        crate::harness::write(
            &db.work.join("migrations"),
            &format!("000{}_more.sql", n + 3),
            &format!("{comment}\nCREATE INDEX t_id_{n} ON t (id);\n"),
        );
    }
    let run = db.run(&strict);
    run.expect(0);
    assert_eq!(
        run.stderr.matches("[suppressed: --").count(),
        3,
        "{}",
        run.stderr
    );
}
