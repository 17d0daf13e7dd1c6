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
