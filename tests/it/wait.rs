//! Waiting for the database: retry what can heal, fail at once on what cannot (SPEC 1.2).

use std::time::{Duration, Instant};

use crate::harness::{server, TestDb};

#[test]
fn nothing_listening_times_out_with_exit_3_and_the_last_error() {
    let db = TestDb::new("nothing_listens");
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    let port = l
        .local_addr()
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("{e}"));
    drop(l);
    let url = format!("postgres://u:p@127.0.0.1:{port}/x");
    let started = Instant::now();
    let run = db.run(&["wait", "--database-url", &url, "--wait-timeout", "1500ms"]);
    run.expect(3);
    let took = started.elapsed();
    assert!(
        run.stderr.contains("not reachable") && run.stderr.contains("refused"),
        "{}",
        run.stderr
    );
    assert!(
        took >= Duration::from_millis(1400) && took < Duration::from_secs(5),
        "took {took:?}"
    );
}

#[test]
fn wrong_password_fails_at_once_with_exit_4() {
    let db = TestDb::new("wrong_password");
    let url = db.url().replace(&server().password, "nope");
    let started = Instant::now();
    let run = db.run(&["wait", "--database-url", &url, "--log-level", "debug"]);
    run.expect(4);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "took {:?}",
        started.elapsed()
    );
    assert!(run.stderr.contains("28P01"), "{}", run.stderr);
    assert!(
        !run.stderr.contains("database not ready"),
        "must not retry:\n{}",
        run.stderr
    );
}

#[test]
fn missing_database_fails_with_exit_4() {
    let db = TestDb::new("missing_db");
    let url = server().url("no_such_database_here");
    let run = db.run(&["wait", "--database-url", &url]);
    run.expect(4);
    assert!(run.stderr.contains("3D000"), "{}", run.stderr);
}

#[test]
fn unresolvable_host_is_retried_then_exit_3() {
    let db = TestDb::new("dns");
    let run = db.run(&[
        "wait",
        "--database-url",
        "postgres://u:p@db-init-no-such-host.invalid:5432/x",
        "--wait-timeout",
        "1s",
        "--log-level",
        "debug",
    ]);
    run.expect(3);
    assert!(
        run.stderr.matches("database not ready").count() >= 2,
        "should retry:\n{}",
        run.stderr
    );
}

#[test]
fn a_server_that_starts_late_is_noticed_within_retry_max() {
    let cluster = crate::harness::Cluster::init("late", false).unwrap_or_else(|e| panic!("{e}"));
    let work = std::env::temp_dir().join(format!("db-init-late-{}", std::process::id()));
    std::fs::create_dir_all(&work).unwrap_or_else(|e| panic!("{e}"));
    let url = format!(
        "postgres://postgres:{}@127.0.0.1:{}/postgres",
        crate::harness::PASSWORD,
        cluster.port
    );
    let child = crate::harness::bare_cmd(&work)
        .args([
            "wait",
            "--database-url",
            &url,
            "--wait-timeout",
            "60s",
            "--retry-max",
            "500ms",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    std::thread::sleep(Duration::from_secs(3));
    let started = cluster.start();
    let accepting = Instant::now();
    let out = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
    let after = accepting.elapsed();
    cluster.stop();
    started.unwrap_or_else(|e| panic!("{e}"));
    let run = crate::harness::Run::from(out);
    run.expect(0);
    eprintln!("db-init finished {after:?} after the server accepted connections");
    // The delay between attempts is capped at retry_max (jitter included); the rest is one
    // connection and the process exit, far below a second even on a loaded machine.
    assert!(
        after < Duration::from_millis(1500),
        "readiness noticed after {after:?}:\n{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("waiting for the database"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_transaction_pooler_url_draws_a_warning() {
    let db = TestDb::new("pooler");
    let run = db.run(&[
        "wait",
        "--database-url",
        "postgres://u:p@127.0.0.1:6543/x?pgbouncer=true",
        "--wait-timeout",
        "300ms",
    ]);
    run.expect(3);
    assert!(
        run.stderr.contains("transaction pooler") && run.stderr.contains("DIRECT_URL"),
        "{}",
        run.stderr
    );
}

/// Apps beside a migration Job: `wait --migrated` waits until the Job has migrated (woken by
/// its release), exits 3 at wait_timeout naming what is missing, and with `--seeded` also
/// waits for the seeds.
#[test]
fn wait_migrated_waits_for_the_migration_job() {
    let db = crate::harness::TestDb::new("wait_migrated");
    db.fixture("basic/drizzle", "migrations");
    let timeout = db.run(&["wait", "--migrated", "--wait-timeout", "1s"]);
    timeout.expect(3);
    assert!(
        timeout
            .stderr
            .contains("still waiting for 6 migration(s), the first 0000_light_mephisto.sql"),
        "{}",
        timeout.stderr
    );

    crate::harness::write(&db.work.join("seeds"), "001_x.sql", "SELECT 1;\n");
    let mut waiter = db
        .cmd()
        .args(["wait", "--migrated", "--seeded", "--wait-timeout", "60s"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    std::thread::sleep(Duration::from_millis(500));
    db.run(&["migrate"]).expect(0);
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        waiter.try_wait().ok().flatten().is_none(),
        "--seeded must keep waiting until the seeds ran"
    );
    db.run(&["seed"]).expect(0);
    let out =
        crate::harness::Run::from(waiter.wait_with_output().unwrap_or_else(|e| panic!("{e}")));
    out.expect(0);
    assert!(
        out.stderr
            .contains("waiting for the database to be migrated"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("every migration is recorded and every seed ran"),
        "{}",
        out.stderr
    );
}

/// A Unix-socket host (a sidecar proxy, the local server) works with every sslmode that allows
/// plain text: PostgreSQL speaks no TLS over a Unix socket.
#[test]
fn a_unix_socket_host_connects() {
    let s = server();
    let dir = s.server_dir().unwrap_or_else(|| {
        panic!("this test needs the server the harness starts (its socket directory is known)")
    });
    let db = TestDb::new("unix_socket");
    crate::harness::write(
        &db.work.join("migrations"),
        "0001_t.sql",
        "CREATE TABLE t (x int);\n",
    );
    for mode in ["disable", "prefer"] {
        let url = format!(
            "postgres://{}:{}@/{}?host={}&port={}&sslmode={mode}",
            s.user,
            s.password,
            db.name,
            dir.display(),
            s.port
        );
        db.run(&["migrate", "--database-url", &url]).expect(0);
    }
    assert_eq!(
        db.sql("SELECT count(*) FROM db_init.schema_migrations"),
        "1"
    );
}
