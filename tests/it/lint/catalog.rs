//! The rules added with the size tiers, each where it fires and where the catalog silences it.

use super::{second, table_with_rows};
use crate::harness::{write, TestDb};

#[test]
fn a_type_change_is_silent_when_the_cast_is_binary_coercible() {
    let db = TestDb::new("lint_types");
    table_with_rows(&db, 100);
    db.sql("ALTER TABLE t ADD COLUMN code varchar(20), ADD COLUMN n int");
    second(
        &db,
        "ALTER TABLE t ALTER COLUMN code TYPE varchar(40);\n\
         ALTER TABLE t ALTER COLUMN email TYPE varchar;\n\
         ALTER TABLE t ALTER COLUMN n TYPE bigint;\n\
         ALTER TABLE t ALTER COLUMN code TYPE varchar(10);\n",
    );
    let run = db.run(&["plan"]);
    run.expect(0);
    let out = &run.stdout;
    assert!(!out.contains("0002_next.sql:1:1"), "longer varchar:\n{out}");
    assert!(
        !out.contains("0002_next.sql:2:1"),
        "text to varchar:\n{out}"
    );
    assert!(
        out.contains("0002_next.sql:3:1: info[alter-column-type]"),
        "{out}"
    );
    assert!(
        out.contains("0002_next.sql:4:1: info[alter-column-type]"),
        "{out}"
    );
}

#[test]
fn maintenance_commands_and_rewriting_columns_fire_on_rows_and_not_on_new_tables() {
    let db = TestDb::new("lint_more");
    table_with_rows(&db, 100);
    second(
        &db,
        "REINDEX TABLE t;\n\
         ALTER TABLE t ADD COLUMN seq bigserial;\n\
         CREATE TABLE fresh (id int);\n\
         ALTER TABLE fresh ADD COLUMN seq bigserial;\n\
         DROP TABLE fresh;\n",
    );
    let run = db.run(&["plan"]);
    run.expect(0);
    let out = &run.stdout;
    assert!(
        out.contains("0002_next.sql:1:1: info[reindex-not-concurrent]"),
        "{out}"
    );
    assert!(
        out.contains("0002_next.sql:2:1: info[add-column-rewrite]"),
        "{out}"
    );
    assert!(
        !out.contains("0002_next.sql:4:1") && !out.contains("drop-table"),
        "a new table:\n{out}"
    );
    write(
        &db.work.join("migrations"),
        "0002_next.sql",
        "DROP TABLE t;\n",
    );
    let run = db.run(&["plan"]);
    assert!(
        run.stdout
            .contains("0002_next.sql:1:1: warning[drop-table]: ACCESS EXCLUSIVE on t"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_session_holding_a_conflicting_lock_in_an_old_transaction_is_named() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let db = TestDb::new("lint_holder");
    table_with_rows(&db, 10);
    second(
        &db,
        "SELECT 1;\nALTER TABLE t ADD COLUMN note text;\nCREATE INDEX t_email ON t (email);\n",
    );
    let mut psql = Command::new(crate::harness::server().bin.join("psql"))
        .args(["-X", "-q", "-d", &db.url()])
        .env("PGAPPNAME", "reporting-job")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("psql: {e}"));
    if let Some(stdin) = psql.stdin.as_mut() {
        stdin
            .write_all(b"BEGIN;\nSELECT count(*) FROM t;\n")
            .unwrap_or_else(|e| panic!("{e}"));
    }
    crate::harness::wait_until(
        "the reader's transaction",
        std::time::Duration::from_secs(10),
        || {
            db.sql("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'reporting-job' AND state = 'idle in transaction'") == "1"
        },
    );
    std::thread::sleep(std::time::Duration::from_millis(400));
    let run = db.run(&["plan"]);
    let _ = psql.kill();
    let _ = psql.wait();
    run.expect(0);
    let out = &run.stdout;
    // Once, at the first statement whose lock conflicts with the reader's ACCESS SHARE.
    assert_eq!(out.matches("[blocked-by-session]").count(), 1, "{out}");
    assert!(
        out.contains(
            "0002_next.sql:2:1: warning[blocked-by-session]: ACCESS EXCLUSIVE on t: session pid "
        ) && out.contains("(application \"reporting-job\", idle in transaction, transaction open ")
            && out.contains("holds AccessShareLock on t"),
        "{out}"
    );
}

#[test]
fn an_invalid_index_left_by_a_failed_concurrent_build_is_named_at_the_first_statement_on_its_table()
{
    let db = TestDb::new("lint_invalid_index");
    table_with_rows(&db, 10);
    db.sql("INSERT INTO t VALUES (11, 'u1')");
    // Duplicates: the concurrent unique build fails and leaves its index INVALID.
    assert!(crate::harness::server()
        .psql(
            &db.name,
            "CREATE UNIQUE INDEX CONCURRENTLY t_email_key ON t (email)"
        )
        .is_err());
    second(
        &db,
        "ALTER TABLE t ADD COLUMN note text;\nALTER TABLE t ADD COLUMN other text;\n",
    );
    let run = db.run(&["plan"]);
    run.expect(0);
    let out = &run.stdout;
    assert_eq!(out.matches("[invalid-index]").count(), 1, "{out}");
    assert!(
        out.contains("0002_next.sql:1:1: ") && out.contains("t has INVALID index(es) t_email_key"),
        "{out}"
    );
    db.sql("DROP INDEX t_email_key");
    let run = db.run(&["plan"]);
    assert!(!run.stdout.contains("invalid-index"), "{}", run.stdout);
}
