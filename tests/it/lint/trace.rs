//! `db-init trace` on a real server: each statement's locks from `pg_locks`, the rewrites a new
//! `relfilenode` shows, and nothing left behind: the transaction is always rolled back.

use super::{second, table_with_rows};
use crate::harness::{write, TestDb};

const STATEMENTS: &str = "CREATE INDEX t_email ON t (email);\n\
    ALTER TABLE t ADD COLUMN token uuid DEFAULT gen_random_uuid();\n\
    CREATE TABLE n (id int);\nALTER TABLE n ADD COLUMN x int;\n";

#[test]
fn trace_reports_the_locks_and_rewrites_each_statement_really_took_and_leaves_nothing() {
    let db = TestDb::new("trace_text");
    table_with_rows(&db, 2000);
    second(&db, STATEMENTS);
    let run = db.run(&["trace"]);
    run.expect(0);
    let out = &run.stdout;
    assert!(
        run.stderr.contains("the locks are real")
            || run.stderr.contains("holds their locks on the real tables"),
        "{}",
        run.stderr
    );
    assert!(
        out.contains("-- trace: 4 of 4 statement(s) run, all rolled back"),
        "{out}"
    );
    let after = |at: &str| {
        let i = out.find(at).unwrap_or_else(|| panic!("no {at} in {out}"));
        out[i..].lines().nth(1).unwrap_or("").to_string()
    };
    let index = after("0002_next.sql:1:1: CREATE INDEX t_email ON t (email);");
    assert!(
        index.contains("SHARE on public.t") && !index.contains("REWRITES"),
        "{index}"
    );
    let volatile = after("0002_next.sql:2:1: ALTER TABLE t ADD COLUMN token");
    assert!(
        volatile.contains("ACCESS EXCLUSIVE on public.t")
            && volatile.contains("REWRITES public.t, public.t_email, public.t_pkey"),
        "{volatile}"
    );
    let new = after("0002_next.sql:3:1: CREATE TABLE n (id int);");
    assert!(
        new.contains("ACCESS EXCLUSIVE on public.n (new)") && !new.contains("REWRITES"),
        "{new}"
    );
    // Rolled back: no index, no column, no table, no history row.
    assert_eq!(
        db.sql("SELECT to_regclass('t_email') IS NULL AND to_regclass('n') IS NULL"),
        "t"
    );
    assert_eq!(
        db.sql("SELECT count(*) FROM information_schema.columns WHERE column_name = 'token'"),
        "0"
    );
    db.run(&["status"]).expect(10);
}

#[test]
fn trace_json_gives_every_statement_with_its_locks_and_the_outcome() {
    let db = TestDb::new("trace_json");
    table_with_rows(&db, 10);
    second(&db, "ALTER TABLE t ALTER COLUMN email TYPE varchar(200);\n");
    let run = db.run(&["trace", "--format", "json"]);
    run.expect(0);
    let doc: serde_json::Value =
        serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout));
    assert_eq!(doc["rolled_back"], true);
    let s = &doc["statements"][0];
    assert_eq!(s["file"], "0002_next.sql");
    assert_eq!(s["outcome"], "ran");
    assert_eq!(s["locks"][0]["mode"], "ACCESS EXCLUSIVE", "{doc}");
    assert_eq!(s["locks"][0]["relation"], "public.t");
    // text to varchar(200) is not binary-coercible here: the table is rewritten.
    assert!(
        s["rewritten"]
            .as_array()
            .is_some_and(|r| r.contains(&"public.t".into())),
        "{doc}"
    );
}

#[test]
fn a_failing_statement_is_named_with_exit_6_and_what_cannot_run_in_a_transaction_is_not_run() {
    let db = TestDb::new("trace_fail");
    table_with_rows(&db, 10);
    let dir = db.work.join("migrations");
    write(
        &dir,
        "0002_concurrent.sql",
        "CREATE INDEX CONCURRENTLY t_c ON t (email);\n",
    );
    write(
        &dir,
        "0003_bad.sql",
        "CREATE TABLE k (id int);\nALTER TABLE t ADD COLUMN id int;\n",
    );
    let run = db.run(&["trace"]);
    run.expect(6);
    assert!(
        run.stdout
            .contains("0002_concurrent.sql:1:1: CREATE INDEX CONCURRENTLY")
            && run.stdout.contains("not run: runs outside a transaction")
            && run
                .stdout
                .contains("0003_bad.sql:2:1: ALTER TABLE t ADD COLUMN id int;")
            && run.stdout.contains("FAILED: ERROR 42701"),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr.contains("0003_bad.sql:2:1") && run.stderr.contains("nothing was committed"),
        "{}",
        run.stderr
    );
    assert_eq!(
        db.sql("SELECT to_regclass('k') IS NULL AND to_regclass('t_c') IS NULL"),
        "t"
    );
}

#[test]
fn trace_refuses_while_a_run_holds_the_lock_key_and_runs_nothing() {
    let db = TestDb::new("trace_locked");
    table_with_rows(&db, 10);
    second(&db, "CREATE TABLE k (id int);\n");
    let mut holder =
        crate::harness::hold_advisory_lock(&db.name, "7815895486951160637", "the-holder");
    let run = db.run(&["trace"]);
    let _ = holder.kill();
    let _ = holder.wait();
    run.expect(5);
    assert!(
        run.stderr.contains("trace never runs beside it"),
        "{}",
        run.stderr
    );
    assert!(!run.stdout.contains("CREATE TABLE k"), "{}", run.stdout);
}
