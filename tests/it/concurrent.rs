//! `CREATE INDEX CONCURRENTLY` waits for every older transaction in the database, not for a
//! table lock: it gets its own wait (no `ddl_lock_timeout`), with its progress and the sessions it
//! waits for in the log.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::harness::{server, wait_until, write, TestDb};

#[test]
fn cic_behind_a_10_s_transaction_on_another_table_waits_for_it_and_says_for_whom() {
    let db = TestDb::new("cic_waits");
    let dir = db.work.join("migrations");
    write(
        &dir,
        "0001_t.sql",
        "CREATE TABLE t (x int);\nINSERT INTO t SELECT generate_series(1, 1000);\nCREATE TABLE other (y int);\n",
    );
    db.run(&["migrate"]).expect(0);
    write(
        &dir,
        "0002_index.sql",
        "CREATE INDEX CONCURRENTLY t_x ON t (x);\n",
    );
    // A report that keeps its transaction (and snapshot) open for 10 s, on another table.
    let mut holder = Command::new(server().bin.join("psql"))
        .args(["-X", "-q", "-d"])
        .arg(db.url())
        .args([
            "-c",
            "BEGIN; SELECT count(*) FROM other; SELECT pg_sleep(10); COMMIT;",
        ])
        .env("PGAPPNAME", "nightly-report")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    wait_until("the report to start", Duration::from_secs(10), || {
        db.sql("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'nightly-report' AND state = 'active'") == "1"
    });
    let started = Instant::now();
    // The default ddl_lock_timeout (300 ms) would cancel the index build here.
    let run = db.run(&["migrate"]);
    let took = started.elapsed();
    let _ = holder.wait();
    eprintln!("migrate took {took:?}\n{}", run.stderr);
    run.expect(0);
    assert!(took >= Duration::from_secs(5), "{took:?}: it did not wait");
    assert!(run.stderr.contains("still running"), "{}", run.stderr);
    assert!(
        run.stderr.contains("nightly-report"),
        "the blocking session is not named:\n{}",
        run.stderr
    );
    assert_eq!(
        db.sql("SELECT indisvalid FROM pg_index WHERE indexrelid = 't_x'::regclass"),
        "t"
    );
    // lock_timeout is back to ddl_lock_timeout for what follows: a later ALTER still gives up.
    assert!(!run.stderr.contains("55P03"), "{}", run.stderr);
}

#[test]
fn a_long_migration_in_a_transaction_logs_progress_naming_it_and_whom_it_waits_for() {
    let db = TestDb::new("progress");
    let dir = db.work.join("migrations");
    write(&dir, "0001_t.sql", "CREATE TABLE t (x int);\n");
    db.run(&["migrate"]).expect(0);
    write(&dir, "0002_index.sql", "CREATE INDEX t_x ON t (x);\n");
    // A session that keeps a lock on t for 3 s: the index build waits for it (no
    // ddl_lock_timeout), and the progress lines say so.
    let mut holder = Command::new(server().bin.join("psql"))
        .args(["-X", "-q", "-d"])
        .arg(db.url())
        .args([
            "-c",
            "BEGIN; LOCK TABLE t IN ROW EXCLUSIVE MODE; SELECT pg_sleep(3); COMMIT;",
        ])
        .env("PGAPPNAME", "busy-writer")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    wait_until(
        "the writer to hold its lock",
        Duration::from_secs(10),
        || {
            db.sql("SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) WHERE a.application_name = 'busy-writer' AND l.relation = 't'::regclass AND l.granted") == "1"
        },
    );
    let run = db.run(&[
        "migrate",
        "--ddl-lock-timeout",
        "0",
        "--progress-interval",
        "500ms",
    ]);
    let _ = holder.wait();
    run.expect(0);
    let lines: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains("still running after"))
        .collect();
    assert!(lines.len() >= 2, "{}", run.stderr);
    assert!(
        lines.iter().all(|l| l.contains("0002_index.sql")),
        "{}",
        run.stderr
    );
    assert!(
        lines.iter().any(|l| l.contains("busy-writer")),
        "the session it waits for is not named:\n{}",
        run.stderr
    );
}
