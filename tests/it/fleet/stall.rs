//! Many databases when one of them stalls or the run is killed: a database whose connection
//! stops forwarding mid-migration ends as failed (stalled) at `database_timeout` while the
//! others finish; after kill -9 the report on disk is the last true state. Every report is
//! compared with the databases' history tables.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{entries, entry, finish, on, report, spawn, tenants};
use crate::harness::{server, wait_until, write, Run, TestDb, PASSWORD};

/// Forwards to the test server until `stall` is set, then forwards nothing and keeps every
/// connection open (a dead route or a broken middlebox); `cut` closes them all.
struct Proxy {
    port: u16,
    stall: Arc<AtomicBool>,
    cut: Arc<AtomicBool>,
}

impl Proxy {
    fn start() -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
        let (stall, cut) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicBool::new(false)),
        );
        let flags = (stall.clone(), cut.clone());
        let target = format!("{}:{}", server().host, server().port);
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(upstream) = TcpStream::connect(&target) else {
                    continue;
                };
                for (from, to) in [
                    (client.try_clone(), upstream.try_clone()),
                    (upstream.try_clone(), client.try_clone()),
                ] {
                    if let (Ok(from), Ok(to)) = (from, to) {
                        let flags = flags.clone();
                        std::thread::spawn(move || pump(from, to, flags));
                    }
                }
            }
        });
        Proxy { port, stall, cut }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut.store(true, Ordering::SeqCst);
    }
}

fn pump(mut from: TcpStream, mut to: TcpStream, (stall, cut): (Arc<AtomicBool>, Arc<AtomicBool>)) {
    let _ = from.set_read_timeout(Some(Duration::from_millis(50)));
    let mut buf = [0u8; 16384];
    loop {
        if cut.load(Ordering::SeqCst) {
            let _ = from.shutdown(std::net::Shutdown::Both);
            let _ = to.shutdown(std::net::Shutdown::Both);
            return;
        }
        if stall.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(50));
            continue;
        }
        match from.read(&mut buf) {
            Ok(0) => return,
            Ok(n) if to.write_all(&buf[..n]).is_err() => return,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
    }
}

/// Waits for the run to end; a run still going after `limit` is killed and fails the test.
fn ended(mut child: Child, limit: Duration) -> Run {
    let started = Instant::now();
    while started.elapsed() < limit {
        if let Ok(Some(_)) = child.try_wait() {
            return finish(child);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let run = finish(child);
    panic!("the run did not end within {limit:?}:\n{}", run.stderr);
}

/// Rows in the database's history table (0 when it has none).
fn history(name: &str) -> u64 {
    on(
        name,
        "SELECT CASE WHEN to_regclass('db_init.schema_migrations') IS NULL THEN 0 \
         ELSE (SELECT count(*) FROM db_init.schema_migrations) END",
    )
    .parse()
    .unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn count(e: &Value, key: &str) -> u64 {
    e[key].as_u64().unwrap_or_else(|| panic!("no {key} in {e}"))
}

/// What the report says of one database agrees with its history: every migration it counts
/// as committed is recorded, and at most the unknown ones more.
#[track_caller]
fn agrees(e: &Value, name: &str) {
    let (applied, unknown, recorded) = (count(e, "applied"), count(e, "unknown"), history(name));
    assert!(
        applied <= recorded && recorded <= applied + unknown,
        "{name}: the report says {applied} committed and {unknown} unknown, the history has {recorded}: {e}"
    );
}

#[test]
fn a_database_that_stalls_mid_migration_ends_as_stalled_and_holds_up_no_other() {
    let db = TestDb::new("fleet_stall");
    // 24 here; DB_INIT_FLEET_DATABASES=100 for the figure in the report of issue 25.
    let n = std::env::var("DB_INIT_FLEET_DATABASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(24);
    let names = tenants(&db, n, None);
    let stalled = &names[0];
    let dir = db.work.join("migrations");
    write(&dir, "0001_t.sql", "CREATE TABLE t (x int);\n");
    // Only the stalled database takes its time, so the proxy can stop forwarding mid-statement.
    write(
        &dir,
        "0002_slow.sql",
        &format!(
            "INSERT INTO t VALUES (2);\nSELECT pg_sleep(CASE WHEN current_database() = '{stalled}' THEN 3 ELSE 0 END);\n"
        ),
    );
    let proxy = Proxy::start();
    let via_proxy = server().url(stalled).replace(
        &format!(":{}/", server().port),
        &format!(":{}/", proxy.port),
    );
    let mut file = format!("{via_proxy}\n");
    for n in &names[1..] {
        file.push_str(&format!("{n}\n"));
    }
    write(&db.work, "databases.txt", &file);
    let report_path = db.work.join("report.json");
    let child = spawn(
        &db,
        &[
            "migrate",
            "--databases-file",
            "databases.txt",
            "--concurrency",
            "4",
            "--database-timeout",
            "20s",
            "--report",
            report_path.to_str().unwrap_or_default(),
        ],
    );
    wait_until(
        "the stalled database to sleep",
        Duration::from_secs(30),
        || {
            on(
                "postgres",
                &format!(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = '{stalled}' \
                 AND query LIKE '%pg_sleep%' AND state = 'active'"
                ),
            ) == "1"
        },
    );
    proxy.stall.store(true, Ordering::SeqCst);
    let stalled_at = Instant::now();
    let run = ended(child, Duration::from_secs(120));
    eprintln!(
        "{n} databases, one stalled: the run ended {:?} after the stall (database_timeout 20s from its start)",
        stalled_at.elapsed()
    );
    run.expect(11);
    assert!(!run.stderr.contains(PASSWORD), "{}", run.stderr);
    assert!(!run.stderr.contains("-----"), "{}", run.stderr);
    assert!(
        run.stderr.contains("stalled: not done within 20s"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&format!("1 of {n} database(s) failed")),
        "{}",
        run.stderr
    );

    let r = report(&report_path);
    assert_eq!(
        (&r["counts"]["done"], &r["counts"]["failed"]),
        (&Value::from(n - 1), &Value::from(1)),
        "{r:#}"
    );
    let all = entries(&r);
    let bad = all
        .iter()
        .find(|e| e["state"] == "failed")
        .unwrap_or_else(|| panic!("no failed entry: {r:#}"));
    assert_eq!(
        (&bad["reason"], &bad["exit_code"]),
        (&Value::from("stalled"), &Value::from(9)),
        "{bad}"
    );
    // 0001 was confirmed; 0002 was sent and its answer never came back.
    assert_eq!(
        (count(bad, "applied"), count(bad, "unknown")),
        (1, 1),
        "{bad}"
    );
    agrees(bad, stalled);
    for n in &names[1..] {
        let e = entry(&all, n);
        assert_eq!(
            (&e["state"], count(e, "applied")),
            (&Value::from("done"), 2),
            "{n}"
        );
        agrees(e, n);
    }
}

#[test]
fn after_kill_9_the_report_on_disk_is_the_last_true_state() {
    let db = TestDb::new("fleet_kill");
    let n = std::env::var("DB_INIT_FLEET_DATABASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let names = tenants(&db, n, None);
    let sleepers: Vec<&String> = names.iter().take(4).collect();
    let dir = db.work.join("migrations");
    for k in 1..=4 {
        write(
            &dir,
            &format!("000{k}_t.sql"),
            &format!("CREATE TABLE t{k} (x int);\n"),
        );
    }
    let list = sleepers
        .iter()
        .map(|n| format!("'{n}'"))
        .collect::<Vec<_>>()
        .join(",");
    write(
        &dir,
        "0005_sleep.sql",
        &format!("SELECT pg_sleep(CASE WHEN current_database() IN ({list}) THEN 60 ELSE 0 END);\n"),
    );
    let file: String = names.iter().map(|n| format!("{n}\n")).collect();
    write(&db.work, "databases.txt", &file);
    let report_path = db.work.join("report.json");
    let child = spawn(
        &db,
        &[
            "migrate",
            "--databases-file",
            "databases.txt",
            "--concurrency",
            "6",
            "--report",
            report_path.to_str().unwrap_or_default(),
        ],
    );
    let on_disk = || -> Option<Value> {
        let text = std::fs::read_to_string(&report_path).ok()?;
        serde_json::from_str(&text).ok()
    };
    wait_until(
        "all but 4 done, 4 at their last migration",
        Duration::from_secs(60 + n as u64),
        || {
            on_disk().is_some_and(|r| {
                let all = entries(&r);
                let done = all.iter().filter(|e| e["state"] == "done").count();
                let waiting = all
                    .iter()
                    .filter(|e| e["state"] == "running" && e["applied"] == 4 && e["unknown"] == 1)
                    .count();
                done == n - 4 && waiting == 4
            })
        },
    );
    let ok = unsafe { libc::kill(child.id() as i32, libc::SIGKILL) } == 0;
    assert!(ok, "kill -9 failed");
    finish(child);
    let r = report(&report_path);
    let all = entries(&r);
    for n in &names {
        let e = entry(&all, n);
        agrees(e, n);
        match sleepers.contains(&n) {
            true => assert_eq!(
                (&e["state"], count(e, "applied")),
                (&Value::from("running"), 4),
                "{n}"
            ),
            false => assert_eq!(
                (&e["state"], count(e, "applied")),
                (&Value::from("done"), 5),
                "{n}"
            ),
        }
    }
    assert_eq!(
        r["exit_code"],
        Value::Null,
        "a killed run has no exit code: {r:#}"
    );
}
