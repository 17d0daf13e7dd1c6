//! db-init through a real PgBouncer (the system's `pgbouncer`, started per test on a free port
//! in front of the test server): session mode with PgBouncer's default settings migrates;
//! transaction and statement mode are refused before anything is applied, with no lock left.

mod bouncer;

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::harness::{server, wait_until, write, Run, TestDb};
use bouncer::{warm, Bouncer};

/// Advisory locks held on the test database, seen directly on the server.
fn advisory_locks(db: &TestDb) -> String {
    db.sql(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' \
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
}

fn run_through(db: &TestDb, url: &str, args: &[&str]) -> (Run, Duration) {
    let started = Instant::now();
    let out = db
        .cmd()
        .args(args)
        .args(["--database-url", url])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    (Run::from(out), started.elapsed())
}

const DROPPED: &str = "rejected the startup parameter `options`";

/// PgBouncer's defaults reject every `options` startup parameter: db-init drops its own at
/// once, says so once, and in session mode migrates, with the server-side keepalives set by SET.
#[test]
fn session_mode_pgbouncer_with_default_settings_migrates_and_says_once_that_the_options_were_dropped(
) {
    let db = TestDb::new("pgb_session");
    db.fixture("basic/drizzle", "migrations");
    write(
        &db.work.join("seeds"),
        "01_keepalives.sql",
        "CREATE TABLE IF NOT EXISTS keepalives AS SELECT current_setting('tcp_keepalives_idle') AS idle, \
         current_setting('tcp_keepalives_interval') AS intvl, current_setting('tcp_keepalives_count') AS cnt;\n",
    );
    let bouncer = Bouncer::start("session", "");
    let url = bouncer.url(&db);
    let args = ["run", "--seed-mode", "on-change", "--wait-timeout", "30s"];
    let (first, took) = run_through(&db, &url, &args);
    first.expect(0);
    eprintln!(
        "first run through PgBouncer (session mode): {took:?}\n{}",
        first.stderr
    );
    assert_eq!(first.stderr.matches(DROPPED).count(), 1, "{}", first.stderr);
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert_eq!(
        db.sql("SELECT count(*) FROM drizzle.__drizzle_migrations"),
        "6"
    );
    assert_eq!(
        db.sql("SELECT idle || ' ' || intvl || ' ' || cnt FROM keepalives"),
        "20 10 3",
        "the server-side keepalives were not set on the session"
    );
    let (second, took) = run_through(&db, &url, &args);
    second.expect(0);
    eprintln!("second run (nothing to do): {took:?}");
    assert!(
        second
            .stderr
            .contains("0 migration(s) applied, 6 already applied"),
        "{}",
        second.stderr
    );
    assert_eq!(advisory_locks(&db), "0");
}

#[track_caller]
fn assert_refused_with_nothing_applied(db: &TestDb, run: &Run) {
    run.expect(4);
    assert!(run.stderr.contains("DIRECT_URL"), "{}", run.stderr);
    assert!(run.stderr.contains("nothing was applied"), "{}", run.stderr);
    assert_eq!(
        db.sql("SELECT to_regclass('drizzle.__drizzle_migrations') IS NULL"),
        "t",
        "the history table was created"
    );
    assert_eq!(
        db.sql("SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"),
        "0",
        "tables were created"
    );
    // The server's own view, not the pooler's: no advisory lock stays on a pooled connection.
    wait_until(
        "the advisory lock to be gone",
        Duration::from_secs(5),
        || advisory_locks(db) == "0",
    );
}

/// Transaction mode hands each transaction to whichever server connection is free: db-init
/// finds out with a second connection before it takes the lock, and three replicas at once all
/// end with exit 4 instead of one migrating and leaving its lock behind.
#[test]
fn transaction_mode_pgbouncer_is_refused_before_anything_is_applied_and_no_lock_is_left() {
    let db = TestDb::new("pgb_transaction");
    db.fixture("basic/drizzle", "migrations");
    let bouncer = Bouncer::start("transaction", "");
    let url = bouncer.url(&db);
    let (run, took) = run_through(&db, &url, &["run", "--wait-timeout", "30s"]);
    eprintln!("refused in {took:?}\n{}", run.stderr);
    assert_refused_with_nothing_applied(&db, &run);
    assert!(
        run.stderr
            .contains("a second connection was served by server process"),
        "{}",
        run.stderr
    );

    let replicas: Vec<_> = (0..3)
        .map(|_| {
            db.cmd()
                .args([
                    "run",
                    "--wait-timeout",
                    "30s",
                    "--lock-timeout",
                    "30s",
                    "--database-url",
                    &url,
                ])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| panic!("{e}"))
        })
        .collect();
    let started = Instant::now();
    for replica in replicas {
        let run = Run::from(replica.wait_with_output().unwrap_or_else(|e| panic!("{e}")));
        assert_refused_with_nothing_applied(&db, &run);
    }
    eprintln!(
        "three replicas at once all refused within {:?}",
        started.elapsed()
    );
    assert!(started.elapsed() < Duration::from_secs(10));
}

/// A pool with other server connections to hand out (round robin makes the order fixed, as
/// other clients' traffic would make it random): the second connection is served by another
/// process, and the checks of each step find the pooler: this session's own statements move
/// between processes before the lock's try, or the try or the statement after it lands
/// elsewhere (the lock is then released on its process). Whichever catches it, nothing is left.
#[test]
fn transaction_mode_with_other_server_connections_is_refused_by_the_checks_of_each_step() {
    let evidence = [
        "this session's statements ran on server process",
        "the lock's try ran on another server process",
        "the next statement ran on",
    ];
    for idle in [3, 2] {
        let db = TestDb::new("pgb_transaction_busy");
        db.fixture("basic/drizzle", "migrations");
        let bouncer = Bouncer::start("transaction", "server_round_robin = 1");
        warm(&bouncer, &db, idle);
        let (run, _) = run_through(&db, &bouncer.url(&db), &["run", "--wait-timeout", "30s"]);
        eprintln!("{idle} idle server connections:\n{}", run.stderr);
        assert_refused_with_nothing_applied(&db, &run);
        assert!(
            evidence.iter().any(|e| run.stderr.contains(e)),
            "{idle}: {}",
            run.stderr
        );
        assert!(
            !run.stderr.contains("could not be released"),
            "{}",
            run.stderr
        );
    }
}

/// Nothing to do through a transaction pooler whose next transaction goes to another server
/// connection: the shared lock's check is one transaction, so its lock ends on the process that
/// took it (a session-level lock released by the next statement would stay on the first one and
/// block every later migrator).
#[test]
fn transaction_mode_with_nothing_to_do_exits_0_and_leaves_no_shared_lock() {
    let db = TestDb::new("pgb_transaction_idle");
    db.fixture("basic/drizzle", "migrations");
    db.run(&["run"]).expect(0);
    let bouncer = Bouncer::start("transaction", "server_round_robin = 1");
    warm(&bouncer, &db, 2);
    let (run, _) = run_through(&db, &bouncer.url(&db), &["run", "--wait-timeout", "30s"]);
    run.expect(0);
    assert!(
        run.stderr
            .contains("0 migration(s) applied, 6 already applied"),
        "{}",
        run.stderr
    );
    assert_eq!(
        advisory_locks(&db),
        "0",
        "a shared lock stayed on a pooled connection"
    );
}

/// With `ignore_startup_parameters = options` PgBouncer takes the options and drops them
/// silently: nothing is rejected, and transaction mode is still found out.
#[test]
fn transaction_mode_pgbouncer_that_ignores_the_options_is_refused_too() {
    let db = TestDb::new("pgb_transaction_ignoring");
    db.fixture("basic/drizzle", "migrations");
    let bouncer = Bouncer::start("transaction", "ignore_startup_parameters = options");
    let (run, _) = run_through(&db, &bouncer.url(&db), &["run", "--wait-timeout", "30s"]);
    assert_refused_with_nothing_applied(&db, &run);
    assert!(!run.stderr.contains(DROPPED), "{}", run.stderr);
}

/// Statement mode refuses transactions outright: db-init says which URL to use instead.
#[test]
fn statement_mode_pgbouncer_is_refused_before_anything_is_applied() {
    let db = TestDb::new("pgb_statement");
    db.fixture("basic/drizzle", "migrations");
    let bouncer = Bouncer::start("statement", "");
    let (run, _) = run_through(&db, &bouncer.url(&db), &["run", "--wait-timeout", "30s"]);
    assert_refused_with_nothing_applied(&db, &run);
}

/// The URL's own `options` are the user's setting: refused by the pooler, they are an error
/// that names them (exit 4 at once), never dropped and never retried until `wait_timeout`.
#[test]
fn users_own_options_rejected_by_pgbouncer_are_an_error_naming_options() {
    let db = TestDb::new("pgb_user_options");
    write(
        &db.work.join("migrations"),
        "0001_t.sql",
        "CREATE TABLE t (x int);\n",
    );
    let bouncer = Bouncer::start("session", "");
    let url = format!("{}?options=-c%20search_path%3Dpublic", bouncer.url(&db));
    let (run, took) = run_through(&db, &url, &["run", "--wait-timeout", "30s"]);
    run.expect(4);
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert!(
        run.stderr
            .contains("startup parameter `options` set in the URL"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains(&server().password), "{}", run.stderr);
    assert_eq!(
        db.sql("SELECT count(*) FROM pg_tables WHERE tablename = 't'"),
        "0"
    );
}

/// The check that holds whatever else fails: a transaction pooler with one server connection,
/// where another client took the lock and is idle, and no room for db-init's second connection
/// (`max_client_conn`). Every statement of db-init reaches the process that holds the lock,
/// where a try would succeed (advisory locks are re-entrant per process); the try finds the
/// lock there already and refuses.
#[test]
fn a_lock_another_client_holds_on_the_same_server_connection_is_refused() {
    let db = TestDb::new("pgb_held_here");
    db.fixture("basic/drizzle", "migrations");
    let bouncer = Bouncer::start("transaction", "default_pool_size = 1\nmax_client_conn = 2");
    let url = bouncer.url(&db);
    let mut holder = std::process::Command::new(server().bin.join("psql"))
        .args(["-X", "-q", "-d", &url])
        .env("PGAPPNAME", "pooled-holder")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    if let Some(stdin) = holder.stdin.as_mut() {
        let sql = "SELECT pg_advisory_lock(7815895486951160637);\n";
        std::io::Write::write_all(stdin, sql.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    }
    wait_until("the pooled holder's lock", Duration::from_secs(20), || {
        advisory_locks(&db) == "1"
    });
    let (run, _) = run_through(&db, &url, &["run", "--wait-timeout", "30s"]);
    let _ = holder.kill();
    let _ = holder.wait();
    eprintln!("{}", run.stderr);
    run.expect(4);
    assert!(
        run.stderr
            .contains("already held the lock when this session tried it"),
        "{}",
        run.stderr
    );
    assert_eq!(
        db.sql("SELECT to_regclass('drizzle.__drizzle_migrations') IS NULL"),
        "t",
        "the history table was created"
    );
}
