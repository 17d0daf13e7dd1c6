//! Many databases, runs side by side: two shards partition the set and two runs at once migrate
//! each database once; sessions stay within `concurrency` and "too many connections" (53300) is
//! waited out; SIGTERM mid-run leaves every database consistent and unlocked.

use std::collections::BTreeSet;
use std::process::Child;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{advisory_locks_anywhere, entries, finish, on, report, spawn, tenant_query, tenants};
use crate::harness::{server, wait_until, write, Run, TestDb, PASSWORD};

fn planned(db: &TestDb, shard: &str, env: Option<(&str, &str)>) -> BTreeSet<String> {
    let mut cmd = db.cmd();
    cmd.args([
        "plan",
        "--databases-query",
        &tenant_query(db),
        "--shard",
        shard,
    ]);
    if let Some((k, v)) = env {
        cmd.env(k, v);
    }
    let run = Run::from(cmd.output().unwrap_or_else(|e| panic!("{e}")));
    run.expect(0);
    run.stdout
        .lines()
        .filter(|l| !l.starts_with("--"))
        .filter_map(|l| l.split('\t').next().map(str::to_string))
        .collect()
}

#[test]
fn two_shards_partition_the_set_and_two_runs_at_once_migrate_each_database_once() {
    let db = TestDb::new("fleet_shards");
    let names: BTreeSet<String> = tenants(&db, 30, None).into_iter().collect();
    let dir = db.work.join("migrations");
    write(
        &dir,
        "0001_t.sql",
        "CREATE TABLE IF NOT EXISTS c (x int);\n",
    );
    write(&dir, "0002_row.sql", "INSERT INTO c VALUES (1);\n");

    let zero = planned(&db, "0/2", None);
    let one = planned(&db, "/2", Some(("JOB_COMPLETION_INDEX", "1")));
    assert!(
        zero.is_disjoint(&one),
        "shared: {:?}",
        zero.intersection(&one)
    );
    assert_eq!(&zero | &one, names, "the shards do not cover the set");
    assert!(!zero.is_empty() && !one.is_empty());

    // Both shards at once, each with its report: exactly its own databases.
    let reports = [db.work.join("r0.json"), db.work.join("r1.json")];
    let children: Vec<Child> = ["0/2", "1/2"]
        .iter()
        .zip(&reports)
        .map(|(shard, path)| {
            spawn(
                &db,
                &[
                    "migrate",
                    "--databases-query",
                    &tenant_query(&db),
                    "--shard",
                    shard,
                    "--report",
                    path.to_str().unwrap_or_default(),
                ],
            )
        })
        .collect();
    for child in children {
        finish(child).expect(0);
    }
    for (path, expected) in reports.iter().zip([&zero, &one]) {
        let done: BTreeSet<String> = entries(&report(path))
            .iter()
            .filter_map(|e| e["database"].as_str().map(str::to_string))
            .collect();
        assert_eq!(&done, expected);
    }

    // Two full runs at once over a new migration: each database gets it once.
    write(&dir, "0003_row.sql", "INSERT INTO c VALUES (3);\n");
    let children: Vec<Child> = (0..2)
        .map(|_| spawn(&db, &["migrate", "--databases-query", &tenant_query(&db)]))
        .collect();
    for child in children {
        finish(child).expect(0);
    }
    for n in &names {
        assert_eq!(
            on(n, "SELECT string_agg(x::text, ',' ORDER BY x) FROM c"),
            "1,3",
            "{n}"
        );
        assert_eq!(
            on(n, "SELECT count(*) FROM db_init.schema_migrations"),
            "3",
            "{n}"
        );
    }
}

/// Samples the number of this run's sessions (by application_name) until told to stop.
fn sample_sessions(app: String, stop: Arc<AtomicBool>, max: Arc<AtomicUsize>) {
    let sql = format!("SELECT count(*) FROM pg_stat_activity WHERE application_name = '{app}'");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
        if let Ok(n) = server().psql("postgres", &sql) {
            max.fetch_max(n.parse().unwrap_or(0), Ordering::SeqCst);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn sessions_stay_within_concurrency() {
    let db = TestDb::new("fleet_bound");
    tenants(&db, 16, None);
    let dir = db.work.join("migrations");
    write(
        &dir,
        "0001_t.sql",
        "CREATE TABLE t (x int);\nSELECT pg_sleep(0.2);\n",
    );

    // Concurrency 3 never opens a fourth session (sampled every 10 ms).
    let app = format!("{}_app", db.name);
    let (stop, max) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicUsize::new(0)),
    );
    let sampler = {
        let (app, stop, max) = (app.clone(), Arc::clone(&stop), Arc::clone(&max));
        std::thread::spawn(move || sample_sessions(app, stop, max))
    };
    let run = db.run(&[
        "migrate",
        "--databases-query",
        &tenant_query(&db),
        "--concurrency",
        "3",
        "--application-name",
        &app,
    ]);
    stop.store(true, Ordering::SeqCst);
    let _ = sampler.join();
    run.expect(0);
    let peak = max.load(Ordering::SeqCst);
    assert!(peak <= 3, "{peak} sessions open at once with concurrency 3");
    assert!(
        peak >= 2,
        "the run never overlapped two databases (peak {peak})"
    );
}

#[test]
fn too_many_connections_is_waited_out() {
    let db = TestDb::new("fleet_53300");
    let role = format!("{}_limited", db.name);
    on(
        "postgres",
        &format!("CREATE ROLE \"{role}\" LOGIN PASSWORD '{PASSWORD}' CONNECTION LIMIT 2"),
    );
    let names = tenants(&db, 16, Some(&format!("\"{role}\"")));
    let dir = db.work.join("migrations");
    write(
        &dir,
        "0001_t.sql",
        "CREATE TABLE t (x int);\nSELECT pg_sleep(0.1);\n",
    );
    // The role may have 2 connections, the run wants 5: SQLSTATE 53300 is retried with backoff
    // and every database is done.
    let url = format!(
        "postgres://{role}:{PASSWORD}@{}:{}/{}",
        server().host,
        server().port,
        names[0]
    );
    let run = db
        .cmd()
        .env("DB_INIT_DATABASE_URL", &url)
        .args([
            "migrate",
            "--databases-query",
            &tenant_query(&db),
            "--concurrency",
            "5",
        ])
        .output()
        .map(Run::from)
        .unwrap_or_else(|e| panic!("{e}"));
    run.expect(0);
    assert!(
        run.stderr.contains("53300"),
        "no connection was refused with 53300:\n{}",
        run.stderr
    );
    for n in &names {
        assert_eq!(on(n, "SELECT count(*) FROM t"), "0", "{n}");
    }
}

#[test]
fn sigterm_mid_run_leaves_every_database_consistent_and_unlocked() {
    let db = TestDb::new("fleet_term");
    let names = tenants(&db, 12, None);
    let dir = db.work.join("migrations");
    write(&dir, "0001_t.sql", "CREATE TABLE before_sleep (x int);\n");
    write(
        &dir,
        "0002_sleep.sql",
        "CREATE TABLE during_sleep (x int);\nSELECT pg_sleep(60);\n",
    );
    let report_path = db.work.join("report.json");
    let child = spawn(
        &db,
        &[
            "migrate",
            "--databases-query",
            &tenant_query(&db),
            "--concurrency",
            "4",
            "--report",
            report_path.to_str().unwrap_or_default(),
        ],
    );
    let sleeping = || {
        on(
            "postgres",
            &format!(
                "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(60)%' \
                 AND state = 'active' AND starts_with(datname, '{}_t')",
                db.name
            ),
        )
    };
    wait_until("four migrations to sleep", Duration::from_secs(20), || {
        sleeping() == "4"
    });
    let started = Instant::now();
    let ok = unsafe { libc::kill(child.id() as i32, libc::SIGTERM) } == 0;
    assert!(ok, "kill -TERM failed");
    let run = finish(child);
    eprintln!(
        "SIGTERM to exit with 4 databases running: {:?}",
        started.elapsed()
    );
    run.expect(143);
    assert!(
        run.stderr
            .contains("4 sessions: running statements cancelled, rolled back, locks released"),
        "{}",
        run.stderr
    );
    wait_until("every statement to stop", Duration::from_secs(5), || {
        sleeping() == "0"
    });
    assert_eq!(advisory_locks_anywhere(&db.name), "0");
    let mut migrated_once = 0;
    for n in &names {
        assert_eq!(
            on(n, "SELECT to_regclass('during_sleep') IS NULL"),
            "t",
            "{n}"
        );
        let has_history = on(
            n,
            "SELECT to_regclass('db_init.schema_migrations') IS NOT NULL",
        );
        let history = match has_history.as_str() {
            "t" => on(n, "SELECT coalesce(string_agg(version::text, ','), '') FROM db_init.schema_migrations"),
            _ => String::new(),
        };
        match history.as_str() {
            "1" => {
                migrated_once += 1;
                assert_eq!(on(n, "SELECT to_regclass('before_sleep') IS NOT NULL"), "t");
            }
            "" => assert_eq!(on(n, "SELECT to_regclass('before_sleep') IS NULL"), "t"),
            other => panic!("{n}: history {other}"),
        }
    }
    assert_eq!(
        migrated_once, 4,
        "the four running databases keep 0001 only"
    );
    let r = report(&report_path);
    assert_eq!(
        (
            &r["counts"]["interrupted"],
            &r["counts"]["not_started"],
            &r["exit_code"]
        ),
        (&Value::from(4), &Value::from(8), &Value::from(143)),
        "{r:#}"
    );
    // The interrupted databases committed 0001 (confirmed) and were in 0002 when the signal
    // came: the report says so, as their history tables do.
    for e in entries(&r) {
        let name = e["database"].as_str().unwrap_or_default().to_string();
        let committed = match e["state"].as_str() {
            Some("interrupted") => (1, 1),
            _ => (0, 0),
        };
        assert_eq!(
            (e["applied"].as_u64(), e["unknown"].as_u64()),
            (Some(committed.0), Some(committed.1)),
            "{e}"
        );
        let recorded = match on(
            &name,
            "SELECT to_regclass('db_init.schema_migrations') IS NOT NULL",
        )
        .as_str()
        {
            "t" => on(&name, "SELECT count(*) FROM db_init.schema_migrations"),
            _ => "0".into(),
        };
        assert_eq!(recorded, committed.0.to_string(), "{name}: {e}");
    }
}
