//! db-init through a real PgBouncer (the system's `pgbouncer`, started per test on a free port
//! in front of the test server): session mode with PgBouncer's default settings migrates;
//! transaction and statement mode are refused before anything is applied, with no lock left.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{server, wait_until, write, Run, TestDb};

/// One PgBouncer in a temp dir, stopped when dropped.
struct Bouncer {
    port: u16,
    dir: std::path::PathBuf,
    child: Child,
}

fn pgbouncer_binary() -> std::path::PathBuf {
    let mut candidates = vec![std::path::PathBuf::from("/usr/sbin/pgbouncer")];
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path).map(|d| d.join("pgbouncer")));
    }
    candidates
        .into_iter()
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("pgbouncer is not installed (Debian: apt-get install pgbouncer); these tests need it")
        })
}

/// PgBouncer refuses to run as root: the user the test server runs as, when we are root.
fn run_as() -> Option<(u32, u32)> {
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    let id = |user: &str, flag: &str| -> Option<u32> {
        let out = Command::new("id").args([flag, user]).output().ok()?;
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    };
    let ids = ["postgres", "nobody"]
        .into_iter()
        .find_map(|u| Some((id(u, "-u")?, id(u, "-g")?)));
    Some(
        ids.unwrap_or_else(|| {
            panic!("running as root and neither user postgres nor nobody exists")
        }),
    )
}

impl Bouncer {
    /// PgBouncer with its default settings but `pool_mode`, and any `extra` lines.
    fn start(pool_mode: &str, extra: &str) -> Bouncer {
        let s = server();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or_else(|e| panic!("{e}"));
        let dir =
            std::env::temp_dir().join(format!("db-init-pgbouncer-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        // The plain password: PgBouncer answers the client's SCRAM and logs in to the server.
        write(
            &dir,
            "userlist.txt",
            &format!("\"{}\" \"{}\"\n", s.user, s.password),
        );
        write(
            &dir,
            "pgbouncer.ini",
            &format!(
                "[databases]\n* = host={} port={}\n\n[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\n\
                 unix_socket_dir =\nauth_type = scram-sha-256\nauth_file = {}\npool_mode = {pool_mode}\n\
                 logfile = {}\n{extra}\n",
                s.host,
                s.port,
                dir.join("userlist.txt").display(),
                dir.join("pgbouncer.log").display(),
            ),
        );
        let mut cmd = Command::new(pgbouncer_binary());
        cmd.arg(dir.join("pgbouncer.ini"))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some((uid, gid)) = run_as() {
            let ok = Command::new("chown")
                .args(["-R", &format!("{uid}:{gid}")])
                .arg(&dir)
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "cannot chown {}", dir.display());
            std::os::unix::process::CommandExt::uid(&mut cmd, uid);
            std::os::unix::process::CommandExt::gid(&mut cmd, gid);
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("starting pgbouncer: {e}"));
        let mut bouncer = Bouncer { port, dir, child };
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = bouncer.child.try_wait() {
                panic!("pgbouncer exited ({status}):\n{}", bouncer.log());
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "pgbouncer not listening after 10 s:\n{}",
                bouncer.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        bouncer
    }

    fn url(&self, db: &TestDb) -> String {
        let s = server();
        format!(
            "postgres://{}:{}@127.0.0.1:{}/{}",
            s.user, s.password, self.port, db.name
        )
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("pgbouncer.log")).unwrap_or_default()
    }
}

impl Drop for Bouncer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

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
