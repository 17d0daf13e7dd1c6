//! The lock analysis against a real server with real rows: a finding where the table has rows,
//! silence where the catalog proves it harmless (a new table, an empty one, a stable default, a
//! valid CHECK), a statement that would fail refused before anything is applied.

mod catalog;
mod documents;
mod enum_commits;
mod folders;
mod policy;
mod trace;

use crate::harness::{write, TestDb};

/// A table `t` with `rows` rows, applied as migration 0001.
fn table_with_rows(db: &TestDb, rows: u32) {
    write(
        &db.work.join("migrations"),
        "0001_t.sql",
        &format!(
            "CREATE TABLE t (id int PRIMARY KEY, email text);\n\
             INSERT INTO t SELECT g, 'u' || g FROM generate_series(1, {rows}) g;\n"
        ),
    );
    db.run(&["migrate"]).expect(0);
    // The row estimate a finding shows is the planner's: fixed now, not whenever autovacuum's
    // analyze comes by between two runs of one test.
    db.sql("ANALYZE t");
}

fn second(db: &TestDb, sql: &str) {
    write(&db.work.join("migrations"), "0002_next.sql", sql);
}

#[test]
fn an_index_built_without_concurrently_on_a_table_with_rows_is_named_with_its_size() {
    let db = TestDb::new("lint_index");
    table_with_rows(&db, 5000);
    second(&db, "SELECT 1;\nCREATE INDEX t_email ON t (email);\n");
    let run = db.run(&["migrate"]);
    run.expect(0);
    assert!(
        run.stderr
            .contains("0002_next.sql:2:1: info[index-not-concurrent]: SHARE on t (")
            && run.stderr.contains("CREATE INDEX CONCURRENTLY"),
        "{}",
        run.stderr
    );
}

#[test]
fn an_empty_table_and_a_table_new_in_the_run_are_silent() {
    let db = TestDb::new("lint_new");
    table_with_rows(&db, 0);
    second(
        &db,
        "CREATE INDEX t_email ON t (email);\nCREATE TABLE n (x int);\nCREATE INDEX n_x ON n (x);\n",
    );
    let run = db.run(&["migrate"]);
    run.expect(0);
    assert!(
        !run.stderr.contains("index-not-concurrent"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_not_null_column_without_default_on_a_table_with_rows_is_refused_before_anything_runs() {
    let db = TestDb::new("lint_fails");
    table_with_rows(&db, 10);
    second(&db, "CREATE TABLE before_it (x int);\n");
    write(
        &db.work.join("migrations"),
        "0003_col.sql",
        "ALTER TABLE t ADD COLUMN plan text NOT NULL;\n",
    );
    let run = db.run(&["migrate"]);
    run.expect(7);
    assert!(
        run.stderr
            .contains("0003_col.sql:1:1: fails[add-column-not-null-without-default]")
            && run.stderr.contains("nothing was applied"),
        "{}",
        run.stderr
    );
    assert_eq!(
        db.sql("SELECT count(*) FROM pg_tables WHERE tablename = 'before_it'"),
        "0"
    );
    // On an empty table the same statement succeeds, so nothing is said.
    db.sql("DELETE FROM t");
    db.run(&["migrate"]).expect(0);
}

#[test]
fn the_catalog_decides_defaults_and_not_null() {
    let db = TestDb::new("lint_catalog");
    table_with_rows(&db, 100);
    second(
        &db,
        "ALTER TABLE t ADD COLUMN a uuid DEFAULT gen_random_uuid();\n\
         ALTER TABLE t ADD COLUMN b timestamptz DEFAULT now();\n\
         ALTER TABLE t ADD CONSTRAINT email_nn CHECK (email IS NOT NULL) NOT VALID;\n\
         ALTER TABLE t ADD COLUMN c int DEFAULT 0;\n",
    );
    let run = db.run(&["migrate"]);
    run.expect(0);
    // PostgreSQL 11+ keeps a constant default in the catalog: the server's version silences
    // the rule that a server before 11 would fire.
    assert!(
        !run.stderr.contains("add-column-default-before-11"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("0002_next.sql:1:1: info[add-column-volatile-default]"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("0002_next.sql:2:1"),
        "now() is stable:\n{}",
        run.stderr
    );
    write(
        &db.work.join("migrations"),
        "0003_validate.sql",
        "ALTER TABLE t VALIDATE CONSTRAINT email_nn;\n",
    );
    db.run(&["migrate"]).expect(0);
    write(
        &db.work.join("migrations"),
        "0004_not_null.sql",
        "ALTER TABLE t ALTER COLUMN email SET NOT NULL;\nALTER TABLE t ALTER COLUMN a SET NOT NULL;\n",
    );
    let run = db.run(&["migrate"]);
    run.expect(0);
    assert!(
        !run.stderr.contains("0004_not_null.sql:1:1"),
        "the valid CHECK proves it:\n{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("0004_not_null.sql:2:1: info[set-not-null]"),
        "{}",
        run.stderr
    );
}

#[test]
fn lint_off_says_nothing_and_lint_error_refuses_every_finding() {
    let db = TestDb::new("lint_policy");
    table_with_rows(&db, 100);
    second(&db, "CREATE INDEX t_email ON t (email);\n");
    // 100 rows are below the default `lint_large`: information, which lint: error lets through.
    let run = db.run(&["plan", "--lint", "error"]);
    run.expect(0);
    assert!(
        run.stdout.contains("info[index-not-concurrent]"),
        "{}",
        run.stdout
    );
    let run = db.run(&["migrate", "--lint", "error", "--lint-large", "1kB"]);
    run.expect(7);
    assert!(
        run.stderr.contains("warning[index-not-concurrent]") && run.stderr.contains("lint: error"),
        "{}",
        run.stderr
    );
    let run = db.run(&["migrate", "--lint", "off"]);
    run.expect(0);
    assert!(
        !run.stderr.contains("index-not-concurrent"),
        "{}",
        run.stderr
    );
}

#[test]
fn plan_shows_the_findings_after_the_statements() {
    let db = TestDb::new("lint_plan");
    table_with_rows(&db, 100);
    second(&db, "CREATE INDEX t_email ON t (email);\n");
    let run = db.run(&["plan"]);
    run.expect(0);
    assert!(
        run.stdout.contains("-- lock analysis: 1 finding(s)")
            && run
                .stdout
                .contains("-- 0002_next.sql:1:1: info[index-not-concurrent]: SHARE on t ("),
        "{}",
        run.stdout
    );
}
