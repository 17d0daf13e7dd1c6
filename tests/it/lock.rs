//! The advisory lock and signals (SPEC 1.3 and 7): many replicas at once, a holder that never
//! lets go, SIGTERM mid-statement (also as PID 1), and kill -9.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{wait_until, write, Run, TestDb};

const DEFAULT_KEY: &str = "7815895486951160637";

fn spawn(db: &TestDb, args: &[&str]) -> Child {
    db.cmd()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"))
}

fn advisory_locks(db: &TestDb) -> String {
    db.sql("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())")
}

#[test]
fn twenty_replicas_migrate_exactly_once() {
    let db = TestDb::new("twenty");
    let dir = db.work.join("migrations");
    write(
        &dir,
        "0001_t.sql",
        "CREATE TABLE counter (x bigint NOT NULL);\nINSERT INTO counter VALUES (1);\n",
    );
    write(
        &dir,
        "0002_more.sql",
        "CREATE INDEX counter_x ON counter (x);\n",
    );
    write(&dir, "0003_data.sql", "UPDATE counter SET x = x * 100;\n");
    let children: Vec<Child> = (0..20).map(|_| spawn(&db, &["migrate"])).collect();
    for child in children {
        let run = Run::from(child.wait_with_output().unwrap_or_else(|e| panic!("{e}")));
        run.expect(0);
    }
    assert_eq!(db.sql("SELECT x FROM counter"), "100");
    assert_eq!(
        db.sql(
            "SELECT string_agg(version::text, ',' ORDER BY version) FROM db_init.schema_migrations"
        ),
        "1,2,3"
    );
    assert_eq!(advisory_locks(&db), "0");
}

#[test]
fn a_holder_that_never_lets_go_gives_exit_5_naming_it() {
    let db = TestDb::new("holder");
    write(&db.work.join("migrations"), "0001_t.sql", "SELECT 1;\n");
    let mut holder = crate::harness::hold_advisory_lock(&db.name, DEFAULT_KEY, "the-holder");
    let pid = db.sql(
        "SELECT pid FROM pg_stat_activity WHERE application_name = 'the-holder' \
         AND datname = current_database()",
    );
    let started = Instant::now();
    let run = db.run(&["migrate", "--lock-timeout", "1s"]);
    let _ = holder.kill();
    let _ = holder.wait();
    run.expect(5);
    assert!(started.elapsed() < Duration::from_secs(20));
    assert!(
        run.stderr.contains(&format!("pid {pid}")) && run.stderr.contains("the-holder"),
        "{}",
        run.stderr
    );
}

/// A migration that sleeps, and the database state it must not leave behind when stopped.
fn sleeping_migration(db: &TestDb) {
    let dir = db.work.join("migrations");
    write(&dir, "0001_t.sql", "CREATE TABLE before_sleep (x int);\n");
    write(
        &dir,
        "0002_sleep.sql",
        "CREATE TABLE during_sleep (x int);\nSELECT pg_sleep(60);\n",
    );
}

fn sleep_is_running(db: &TestDb) -> bool {
    db.sql("SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(60)%' AND application_name = 'db-init' AND state = 'active' AND datname = current_database()") == "1"
}

fn assert_stopped_cleanly(db: &TestDb) {
    wait_until(
        "the statement to stop and the lock to go",
        Duration::from_secs(5),
        || !sleep_is_running(db) && advisory_locks(db) == "0",
    );
    assert_eq!(
        db.sql("SELECT count(*) FROM db_init.schema_migrations"),
        "1"
    );
    assert_eq!(db.sql("SELECT to_regclass('during_sleep') IS NULL"), "t");
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "kill {sig} {pid} failed");
}

#[test]
fn sigterm_mid_statement_cancels_rolls_back_and_exits_143() {
    let db = TestDb::new("sigterm");
    sleeping_migration(&db);
    let child = spawn(&db, &["migrate"]);
    wait_until("the migration to sleep", Duration::from_secs(10), || {
        sleep_is_running(&db)
    });
    let started = Instant::now();
    signal(child.id(), "-TERM");
    let run = Run::from(child.wait_with_output().unwrap_or_else(|e| panic!("{e}")));
    let took = started.elapsed();
    eprintln!("SIGTERM to exit: {took:?}");
    run.expect(143);
    assert!(took < Duration::from_secs(2), "took {took:?}");
    assert_stopped_cleanly(&db);
    // The termination log gets the final error line.
    let log = db.work.join("termination-log");
    std::fs::write(&log, "").unwrap_or_else(|e| panic!("{e}"));
    let child = spawn(
        &db,
        &[
            "migrate",
            "--termination-log",
            log.to_str().unwrap_or_default(),
        ],
    );
    wait_until("the migration to sleep", Duration::from_secs(10), || {
        sleep_is_running(&db)
    });
    signal(child.id(), "-INT");
    Run::from(child.wait_with_output().unwrap_or_else(|e| panic!("{e}"))).expect(130);
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(text.contains("interrupted by SIGINT"), "{text}");
}

#[test]
#[ignore = "needs root for `unshare --pid --fork`: run by .ci/run with --ignored"]
fn sigterm_as_pid_1_in_a_new_pid_namespace() {
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "the PID 1 test needs root for `unshare --pid --fork`"
    );
    let db = TestDb::new("pid1");
    sleeping_migration(&db);
    let mut cmd = Command::new("unshare");
    cmd.args(["--pid", "--fork", "--"])
        .arg(crate::harness::BIN)
        .arg("migrate");
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("DB_INIT_DATABASE_URL", db.url())
        .current_dir(&db.work)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let unshare = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("unshare is not available: {e}"));
    wait_until("the migration to sleep", Duration::from_secs(10), || {
        sleep_is_running(&db)
    });
    // db-init is unshare's child, and PID 1 inside the namespace.
    let children = std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", unshare.id()))
        .unwrap_or_default();
    let pid: u32 = children
        .split_whitespace()
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no child of unshare"));
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let nspid = status
        .lines()
        .find(|l| l.starts_with("NSpid:"))
        .unwrap_or_default()
        .to_string();
    assert!(
        nspid.trim_end().ends_with("\t1"),
        "not PID 1 in its namespace: {nspid}"
    );
    let started = Instant::now();
    signal(pid, "-TERM");
    let run = Run::from(unshare.wait_with_output().unwrap_or_else(|e| panic!("{e}")));
    let took = started.elapsed();
    eprintln!("SIGTERM to exit as PID 1: {took:?}");
    run.expect(143);
    assert!(took < Duration::from_secs(2), "took {took:?}");
    assert_stopped_cleanly(&db);
}

#[test]
fn kill_9_mid_statement_the_server_stops_it_and_a_rerun_completes() {
    let db = TestDb::new("kill9");
    sleeping_migration(&db);
    let mut child = spawn(&db, &["migrate"]);
    wait_until("the migration to sleep", Duration::from_secs(10), || {
        sleep_is_running(&db)
    });
    signal(child.id(), "-KILL");
    let _ = child.wait();
    let started = Instant::now();
    assert_stopped_cleanly(&db);
    eprintln!(
        "server noticed the dead client after {:?}",
        started.elapsed()
    );
    // The rerun applies the migration (shortened so the test ends).
    write(
        &db.work.join("migrations"),
        "0002_sleep.sql",
        "CREATE TABLE during_sleep (x int);\nSELECT pg_sleep(0);\n",
    );
    db.run(&["migrate"]).expect(0);
    assert_eq!(
        db.sql("SELECT count(*) FROM db_init.schema_migrations"),
        "2"
    );
}

#[test]
fn the_lock_is_released_after_success_and_after_failure() {
    let db = TestDb::new("released");
    let dir = db.work.join("migrations");
    write(&dir, "0001_t.sql", "CREATE TABLE t (x int);\n");
    db.run(&["migrate"]).expect(0);
    write(&dir, "0002_bad.sql", "SELECT nope;\n");
    db.run(&["migrate"]).expect(6);
    // A second db-init gets the lock at once both times (lock_timeout 0 would fail otherwise).
    std::fs::remove_file(dir.join("0002_bad.sql")).unwrap_or_else(|e| panic!("{e}"));
    db.run(&["migrate", "--lock-timeout", "0"]).expect(0);
    assert_eq!(advisory_locks(&db), "0");
}

/// In process, through the library: the session stays open after `with_lock` returns, so only
/// the unlock itself can free the lock (a finished process would free it anyway).
#[test]
fn with_lock_releases_the_lock_in_the_same_session_after_ok_and_err() {
    use db_init::config::{Config, LockSettings};
    use db_init::pg::lock::{with_lock, LockError};

    let db = TestDb::new("unlock_in_process");
    let url = db.url();
    let env = |name: &str| (name == "DATABASE_URL").then(|| url.clone());
    let cfg = Config::load(Default::default(), None, &env).unwrap_or_else(|e| panic!("{e}"));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    runtime.block_on(async {
        let database = cfg.database().unwrap_or_else(|e| panic!("{e}"));
        let session = db_init::pg::connect(database, &cfg.connect)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let lock = LockSettings {
            key: 4242,
            timeout: Duration::from_secs(5),
        };
        let ok: Result<u8, LockError> = with_lock(&session, lock, async {
            assert_eq!(advisory_locks(&db), "1", "held inside the body");
            Ok(7)
        })
        .await;
        assert_eq!(ok.ok(), Some(7));
        assert_eq!(advisory_locks(&db), "0", "still held after an Ok body");
        let err: Result<u8, LockError> = with_lock(&session, lock, async {
            Err(LockError::Timeout {
                key: 0,
                waited: Duration::ZERO,
                holder: "the body failed".into(),
            })
        })
        .await;
        assert!(err.is_err());
        assert_eq!(advisory_locks(&db), "0", "still held after an Err body");
    });
}

/// A rollout of many replicas: each migration and each `always` seed runs once, the replicas
/// that waited find nothing left and are woken by the holder's release (not only by polling).
#[test]
fn a_wave_of_replicas_runs_each_migration_and_seed_once() {
    let db = TestDb::new("wave");
    let dir = db.work.join("migrations");
    write(
        &dir,
        "0001_t.sql",
        "CREATE TABLE hits (n int);\nSELECT pg_sleep(1);\n",
    );
    let seeds = db.work.join("seeds");
    write(&seeds, "001_hit.sql", "INSERT INTO hits VALUES (1);\n");
    let children: Vec<Child> = (0..12).map(|_| spawn(&db, &["run"])).collect();
    let mut woken = 0;
    for child in children {
        let run = Run::from(child.wait_with_output().unwrap_or_else(|e| panic!("{e}")));
        run.expect(0);
        woken += usize::from(run.stderr.contains("the lock was released"));
    }
    assert_eq!(
        db.sql("SELECT count(*) FROM hits"),
        "1",
        "the seed ran once per wave"
    );
    assert_eq!(
        db.sql("SELECT count(*) FROM db_init.schema_migrations"),
        "1"
    );
    assert!(woken > 0, "no waiter was woken by the release");
    assert_eq!(advisory_locks(&db), "0");
    // A start after the rollout (its seed run moved out of the 10 s window) runs them again.
    db.sql("UPDATE db_init.seed_runs SET last_run_at = last_run_at - interval '1 minute'");
    let later = spawn(&db, &["run"]).wait_with_output();
    Run::from(later.unwrap_or_else(|e| panic!("{e}"))).expect(0);
    assert_eq!(db.sql("SELECT count(*) FROM hits"), "2");
}
