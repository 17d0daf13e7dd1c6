//! Migrations against real Drizzle fixtures (tests/fixtures/drizzle, copied from the shared fixtures) and the numbered layout.

use std::process::Command;

use crate::harness::{fixtures, server, wait_until, write, TestDb};

pub(crate) const HISTORY: &str = "SELECT id || E'\\t' || hash || E'\\t' || created_at FROM drizzle.__drizzle_migrations ORDER BY id";

pub(crate) fn expected_rows(tsv: &str) -> String {
    let text =
        std::fs::read_to_string(fixtures().join(tsv)).unwrap_or_else(|e| panic!("{tsv}: {e}"));
    text.lines().skip(1).collect::<Vec<_>>().join("\n")
}

pub(crate) fn migrate(db: &TestDb, dir: &str, extra: &[&str]) -> crate::harness::Run {
    let mut args = vec!["migrate", "--migrations", dir];
    args.extend_from_slice(extra);
    db.run(&args)
}

pub(crate) fn schema_dump(db: &TestDb) -> String {
    let out = Command::new(server().bin.join("pg_dump"))
        .args(["--schema-only", "--no-owner", "--no-privileges", "-d"])
        .arg(db.url())
        .output()
        .unwrap_or_else(|e| panic!("pg_dump: {e}"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    normalise_dump(&String::from_utf8_lossy(&out.stdout))
}

/// Drops what differs between pg_dump runs and versions, not between schemas.
pub(crate) fn normalise_dump(s: &str) -> String {
    s.lines()
        .filter(|l| {
            !l.starts_with("\\restrict")
                && !l.starts_with("\\unrestrict")
                && !l.starts_with("-- Dumped ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn basic_writes_drizzles_rows_and_schema_exactly() {
    let db = TestDb::new("basic");
    db.fixture("basic/drizzle", "migrations");
    let run = migrate(&db, "migrations", &[]);
    run.expect(0);
    assert!(
        run.stderr.contains("6 migration(s) applied"),
        "{}",
        run.stderr
    );
    assert_eq!(
        db.sql(HISTORY).replace('|', "\t"),
        expected_rows("basic.expected-history.tsv")
    );
    let expected = std::fs::read_to_string(fixtures().join("basic.schema.sql"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(schema_dump(&db), normalise_dump(&expected));
    assert_eq!(db.sql("SELECT slug FROM organizations"), "default");
    // Second run: nothing to do, nothing written.
    let again = migrate(&db, "migrations", &[]);
    again.expect(0);
    assert!(
        again
            .stderr
            .contains("0 migration(s) applied, 6 already applied"),
        "{}",
        again.stderr
    );
    assert_eq!(
        db.sql("SELECT count(*) FROM drizzle.__drizzle_migrations"),
        "6"
    );
    db.run(&["status", "--migrations", "migrations"]).expect(0);
}

#[test]
fn a_database_migrated_by_drizzle_is_fully_applied() {
    let db = TestDb::new("by_drizzle");
    db.fixture("basic/drizzle", "migrations");
    let schema = fixtures().join("basic.schema.sql");
    let out = Command::new(server().bin.join("psql"))
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d"])
        .arg(db.url())
        .arg("-f")
        .arg(&schema)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in expected_rows("basic.expected-history.tsv").lines() {
        let f: Vec<&str> = line.split('\t').collect();
        db.sql(&format!(
            "INSERT INTO drizzle.__drizzle_migrations (id, hash, created_at) VALUES ({}, '{}', {})",
            f[0], f[1], f[2]
        ));
    }
    let status = db.run(&["status", "--migrations", "migrations", "--format", "json"]);
    status.expect(0);
    assert!(
        status.stdout.contains("\"state\": \"up_to_date\""),
        "{}",
        status.stdout
    );
    let run = migrate(&db, "migrations", &[]);
    run.expect(0);
    assert!(
        run.stderr.contains("0 migration(s) applied"),
        "{}",
        run.stderr
    );
}

#[test]
fn duplicate_hash_rows_from_drizzles_race_are_accepted() {
    let db = TestDb::new("dup_rows");
    db.fixture("basic/drizzle", "migrations");
    migrate(&db, "migrations", &[]).expect(0);
    db.sql("INSERT INTO drizzle.__drizzle_migrations (hash, created_at) SELECT hash, created_at FROM drizzle.__drizzle_migrations WHERE id = 6");
    migrate(&db, "migrations", &[]).expect(0);
    db.run(&["validate", "--migrations", "migrations"])
        .expect(0);
}

#[test]
fn concurrently_runs_outside_a_transaction_without_editing_the_file() {
    let db = TestDb::new("concurrently");
    let dir = db.fixture("concurrently/drizzle", "migrations");
    let file = dir.join("0001_events_index_concurrently.sql");
    let original = std::fs::read(&file).unwrap_or_else(|e| panic!("{e}"));
    let run = migrate(&db, "migrations", &[]);
    run.expect(0);
    assert!(
        run.stderr.contains("0001_events_index_concurrently.sql")
            && run.stderr.contains("statement 1 at 3:1 is … CONCURRENTLY"),
        "{}",
        run.stderr
    );
    assert_eq!(db.sql("SELECT indisvalid FROM pg_index WHERE indexrelid = 'events_org_created_at_idx'::regclass"), "t");
    assert_eq!(
        db.sql("SELECT hash FROM drizzle.__drizzle_migrations WHERE id = 2"),
        sha256_hex(&original),
        "the hash is Drizzle's, of the file as it is"
    );

    // The marker still works, and so does the setting, on files that need neither.
    let db = TestDb::new("marker");
    let dir = db.fixture("basic/drizzle", "migrations");
    let first = dir.join("0000_light_mephisto.sql");
    let mut marked = b"-- db-init: no-transaction\n".to_vec();
    marked.extend_from_slice(&std::fs::read(&first).unwrap_or_default());
    std::fs::write(&first, &marked).unwrap_or_else(|e| panic!("{e}"));
    let plan = db.run(&[
        "plan",
        "--migrations",
        "migrations",
        "--no-transaction",
        "0001_parallel_bushwacker",
    ]);
    plan.expect(0);
    assert!(
        plan.stdout.contains(
            "0000_light_mephisto.sql (outside a transaction, one query per statement: first line"
        ),
        "{}",
        plan.stdout
    );
    assert!(plan.stdout.contains("0001_parallel_bushwacker.sql (outside a transaction, one query per statement: named in the no_transaction setting"), "{}", plan.stdout);
}

fn sha256_hex(bytes: &[u8]) -> String {
    let out = Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn();
    let mut child = out.unwrap_or_else(|e| panic!("sha256sum: {e}"));
    use std::io::Write;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(bytes).unwrap_or_else(|e| panic!("{e}"));
    }
    let out = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_string()
}

#[test]
fn synthetic_300_matches_drizzles_rows() {
    let db = TestDb::new("synthetic");
    db.fixture("synthetic-300", "migrations");
    let started = std::time::Instant::now();
    migrate(&db, "migrations", &[]).expect(0);
    eprintln!(
        "synthetic-300 applied in {:?} (debug build, fsync off; see bench/ for figures)",
        started.elapsed()
    );
    assert_eq!(
        db.sql(HISTORY).replace('|', "\t"),
        expected_rows("synthetic-300.expected-history.tsv")
    );
}

#[test]
fn out_of_order_is_refused_then_allowed() {
    let db = TestDb::new("out_of_order");
    db.fixture("basic/drizzle", "basic");
    db.fixture("scenarios/out-of-order", "ooo");
    migrate(&db, "basic", &[]).expect(0);
    let run = migrate(&db, "ooo", &[]);
    run.expect(7);
    assert!(
        run.stderr.contains("0006_feature_branch.sql")
            && run.stderr.contains("out_of_order: allow"),
        "{}",
        run.stderr
    );
    assert_eq!(
        db.sql("SELECT count(*) FROM drizzle.__drizzle_migrations"),
        "6"
    );
    migrate(&db, "ooo", &["--out-of-order", "allow"]).expect(0);
    assert_eq!(
        db.sql("SELECT created_at FROM drizzle.__drizzle_migrations WHERE id = 7"),
        "1795252099238"
    );

    let fresh = TestDb::new("out_of_order_fresh");
    fresh.fixture("scenarios/out-of-order", "ooo");
    migrate(&fresh, "ooo", &[]).expect(0);
    assert_eq!(
        fresh.sql(HISTORY).replace('|', "\t"),
        expected_rows("scenarios/out-of-order.fresh-db.expected-history.tsv")
    );
}

#[test]
fn an_edited_applied_migration_is_named_with_both_hashes() {
    let db = TestDb::new("edited");
    db.fixture("basic/drizzle", "basic");
    db.fixture("scenarios/edited-applied", "edited");
    migrate(&db, "basic", &[]).expect(0);
    let run = migrate(&db, "edited", &[]);
    run.expect(7);
    for needle in [
        "0004_lyrical_natasha_romanoff.sql",
        "0c1ee2360893409897380494b55051d168b5482753fdbb301a4888503da9abcb",
        "5187b49fba655d962df4cb169390fa260e18990733e96e46bd78bd582ea23286",
    ] {
        assert!(
            run.stderr.contains(needle),
            "missing {needle}:\n{}",
            run.stderr
        );
    }
    db.run(&["status", "--migrations", "edited"]).expect(7);
}

#[test]
fn fail_in_batch_keeps_earlier_migrations_and_names_the_statement() {
    let db = TestDb::new("fail_batch");
    db.fixture("scenarios/fail-in-batch/before", "before");
    db.fixture("scenarios/fail-in-batch/after", "after");
    migrate(&db, "before", &[]).expect(0);
    let run = migrate(&db, "after", &[]);
    run.expect(6);
    assert!(
        run.stderr.contains("0004_lyrical_natasha_romanoff.sql")
            && run.stderr.contains("statement 3"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("42703") && run.stderr.contains("no_such_column"),
        "{}",
        run.stderr
    );
    assert_eq!(
        db.sql("SELECT count(*) FROM drizzle.__drizzle_migrations"),
        "4"
    );
    assert_eq!(db.sql("SELECT to_regclass('quotes') IS NOT NULL"), "t");

    let atomic = TestDb::new("fail_batch_atomic");
    atomic.fixture("scenarios/fail-in-batch/before", "before");
    atomic.fixture("scenarios/fail-in-batch/after", "after");
    migrate(&atomic, "before", &[]).expect(0);
    migrate(&atomic, "after", &["--atomic"]).expect(6);
    assert_eq!(
        atomic.sql("SELECT count(*) FROM drizzle.__drizzle_migrations"),
        "3"
    );
    assert_eq!(atomic.sql("SELECT to_regclass('quotes') IS NULL"), "t");
}

#[test]
fn a_missing_file_is_refused_before_connecting_and_an_unlisted_one_only_on_request() {
    let db = TestDb::new("structure");
    db.fixture("scenarios/file-not-in-journal", "extra");
    db.fixture("scenarios/missing-file", "missing");
    let run = migrate(&db, "extra", &["--unlisted-files", "error"]);
    run.expect(7);
    assert!(
        run.stderr.contains("0099_not_in_journal.sql"),
        "{}",
        run.stderr
    );
    let run = migrate(&db, "missing", &[]);
    run.expect(7);
    assert!(run.stderr.contains("0003_low_plazm"), "{}", run.stderr);
    assert_eq!(
        db.sql("SELECT count(*) FROM pg_namespace WHERE nspname = 'drizzle'"),
        "0"
    );
    let run = migrate(&db, "extra", &[]);
    run.expect(0);
    assert!(
        run.stderr
            .contains("0099_not_in_journal.sql is not in meta/_journal.json: ignored"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_bom_is_hashed_but_not_sent() {
    let db = TestDb::new("bom");
    db.fixture("scenarios/bom", "bom");
    migrate(&db, "bom", &[]).expect(0);
    assert_eq!(
        db.sql("SELECT hash FROM drizzle.__drizzle_migrations"),
        "d58b351c0dc734baf963679540181a04a38cead1551a4199b70a7df720061540"
    );
}

#[test]
fn custom_history_table_names_are_kept_as_given() {
    let db = TestDb::new("custom_table");
    db.fixture("basic/drizzle", "migrations");
    migrate(
        &db,
        "migrations",
        &[
            "--drizzle-schema",
            "ops",
            "--drizzle-table",
            "Schema_History",
        ],
    )
    .expect(0);
    assert_eq!(db.sql("SELECT count(*) FROM ops.\"Schema_History\""), "6");
    assert_eq!(
        db.sql("SELECT count(*) FROM pg_namespace WHERE nspname = 'drizzle'"),
        "0"
    );
}

#[test]
fn numbered_layout_applies_validates_and_locates_errors() {
    let db = TestDb::new("numbered");
    let dir = db.work.join("migrations");
    write(
        &dir,
        "0001_init.sql",
        "CREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL);\n",
    );
    write(
        &dir,
        "0002_more.sql",
        "ALTER TABLE users ADD COLUMN name text;\nCREATE INDEX users_email ON users (email);\n",
    );
    write(&dir, "0002_more.down.sql", "DROP INDEX users_email;\n");
    db.run(&["status"]).expect(10);
    db.run(&["migrate"]).expect(0);
    assert_eq!(db.sql("SELECT string_agg(version || ':' || name, ',' ORDER BY version) FROM db_init.schema_migrations"), "1:init,2:more");
    db.run(&["status"]).expect(0);

    write(
        &dir,
        "0003_bad.sql",
        "UPDATE users SET name = 'x';\n\nSELECT nope\n  FROM users;\n",
    );
    let run = db.run(&["migrate"]);
    run.expect(6);
    assert!(
        run.stderr.contains("0003_bad.sql:3:8")
            && run.stderr.contains("statement 2")
            && run.stderr.contains("42703"),
        "{}",
        run.stderr
    );
    assert_eq!(
        db.sql("SELECT count(*) FROM db_init.schema_migrations"),
        "2"
    );

    std::fs::remove_file(dir.join("0003_bad.sql")).unwrap_or_else(|e| panic!("{e}"));
    write(
        &dir,
        "0001_init.sql",
        "CREATE TABLE users (id bigint PRIMARY KEY, email text);\n",
    );
    let run = db.run(&["migrate"]);
    run.expect(7);
    assert!(
        run.stderr.contains("0001_init.sql: changed"),
        "{}",
        run.stderr
    );

    write(&dir, "notes.txt", "hello");
    db.run(&["validate", "--offline"]).expect(7);
}

#[test]
fn an_error_without_a_position_is_located_by_replay() {
    let db = TestDb::new("replay");
    let dir = db.work.join("migrations");
    write(&dir, "0001_t.sql", "CREATE TABLE t (x int PRIMARY KEY);\nINSERT INTO t VALUES (1);\nINSERT INTO t VALUES (1);\n");
    let run = db.run(&["migrate"]);
    run.expect(6);
    assert!(
        run.stderr.contains("0001_t.sql:3:1")
            && run.stderr.contains("statement 3")
            && run.stderr.contains("23505"),
        "{}",
        run.stderr
    );
    assert_eq!(db.sql("SELECT to_regclass('t') IS NULL"), "t");
}

#[test]
fn plan_prints_what_would_run_and_changes_nothing() {
    let db = TestDb::new("plan");
    db.fixture("basic/drizzle", "migrations");
    let run = db.run(&["plan"]);
    run.expect(0);
    assert!(
        run.stdout.contains("6 migration(s) to apply")
            && run.stdout.contains("CREATE TYPE \"public\".\"role\""),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("INSERT INTO \"drizzle\".\"__drizzle_migrations\""),
        "{}",
        run.stdout
    );
    assert_eq!(
        db.sql("SELECT count(*) FROM pg_namespace WHERE nspname = 'drizzle'"),
        "0"
    );
}

#[test]
fn baseline_records_without_running() {
    let db = TestDb::new("baseline");
    db.fixture("basic/drizzle", "migrations");
    db.run(&["baseline", "--to", "0002_worried_microbe"])
        .expect(0);
    assert_eq!(
        db.sql("SELECT count(*) FROM drizzle.__drizzle_migrations"),
        "3"
    );
    assert_eq!(db.sql("SELECT to_regclass('organizations') IS NULL"), "t");
    db.run(&["status"]).expect(10);
    db.run(&["baseline", "--to", "no_such_tag"]).expect(7);
}

#[test]
fn new_creates_the_next_numbered_file() {
    let db = TestDb::new("new");
    let dir = db.work.join("migrations");
    write(&dir, "0007_init.sql", "SELECT 1;\n");
    let run = db.run(&["new", "Add users"]);
    run.expect(0);
    assert!(dir.join("0008_add_users.sql").is_file(), "{}", run.stdout);
    db.run(&["validate", "--offline"]).expect(0);
}

/// `new` names the next file as the folder's own tool would, and the folder still reads as
/// that tool's afterwards.
#[test]
fn new_names_the_next_file_as_each_tool_does() {
    let db = TestDb::new("new_formats");
    let cases: [(&str, &str, &str, &[&str]); 5] = [
        (
            "gm",
            "000003_users.up.sql",
            "SELECT 1;\n",
            &["000004_add_posts.up.sql", "000004_add_posts.down.sql"],
        ),
        (
            "dbmate",
            "20240101120000_users.sql",
            "-- migrate:up\nSELECT 1;\n-- migrate:down\n",
            &["20240101120001_add_posts.sql"],
        ),
        (
            "flyway",
            "V2_1__users.sql",
            "SELECT 1;\n",
            &["V3__add_posts.sql"],
        ),
        (
            "sqlx",
            "20240101120000_users.sql",
            "SELECT 1;\n",
            &["20240101120001_add_posts.sql"],
        ),
        (
            "prisma",
            "migration_lock.toml",
            "provider = \"postgresql\"\n",
            &[],
        ),
    ];
    for (folder, first, text, want) in cases {
        let dir = db.work.join(folder);
        write(&dir, first, text);
        let mut args = vec!["new", "Add posts", "--migrations", folder];
        if folder == "sqlx" {
            args.extend(["--layout", "sqlx"]);
        }
        let run = db.run(&args);
        run.expect(0);
        for file in want {
            // Timestamps are now or later: only the name's shape is fixed for them.
            let found = std::fs::read_dir(&dir)
                .unwrap_or_else(|e| panic!("{e}"))
                .flatten()
                .any(|e| {
                    e.file_name().to_string_lossy() == *file
                        || (file.starts_with("2024")
                            && e.file_name().to_string_lossy().ends_with(&file[14..])
                            && e.file_name().to_string_lossy().as_ref() != first)
                });
            assert!(found, "{folder}: no {file}: {}", run.stdout);
        }
        let mut validate = vec!["validate", "--offline", "--migrations", folder];
        if folder == "sqlx" {
            validate.extend(["--layout", "sqlx"]);
        }
        db.run(&validate).expect(0);
    }
    let made: Vec<String> = std::fs::read_dir(db.work.join("prisma"))
        .unwrap_or_else(|e| panic!("{e}"))
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with("_add_posts"))
        .collect();
    assert_eq!(made.len(), 1, "{made:?}");
    let dbmate = std::fs::read_dir(db.work.join("dbmate"))
        .unwrap_or_else(|e| panic!("{e}"))
        .flatten()
        .find(|e| e.file_name().to_string_lossy().ends_with("_add_posts.sql"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default());
    assert_eq!(
        dbmate.as_deref(),
        Some("-- migrate:up\n\n\n-- migrate:down\n\n")
    );
}

/// A psql session that holds a lock on table `busy` for 1.5 s; returns once the lock is held.
fn hold_table_lock(db: &TestDb, application_name: &str) -> std::process::Child {
    let holder = Command::new(server().bin.join("psql"))
        .args(["-X", "-q", "-d"])
        .arg(db.url())
        .args([
            "-c",
            "BEGIN; LOCK TABLE busy IN ACCESS SHARE MODE; SELECT pg_sleep(1.5); COMMIT;",
        ])
        .env("PGAPPNAME", application_name)
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let locked = "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation \
                  WHERE c.relname = 'busy' AND l.pid <> pg_backend_pid()";
    wait_until(
        "the holder to lock the table",
        std::time::Duration::from_secs(10),
        || db.sql(locked) == "1",
    );
    holder
}

#[test]
fn a_migration_that_hits_lock_timeout_is_retried_and_names_the_blocker() {
    let db = TestDb::new("ddl_retry");
    let dir = db.work.join("migrations");
    write(&dir, "0001_t.sql", "CREATE TABLE busy (x int);\n");
    db.run(&["migrate"]).expect(0);
    write(
        &dir,
        "0002_alter.sql",
        "ALTER TABLE busy ADD COLUMN y int;\n",
    );
    // A long transaction holds a lock the ALTER needs, then lets go.
    let holder = hold_table_lock(&db, "long-report");
    let run = db.run(&[
        "migrate",
        "--ddl-lock-timeout",
        "200ms",
        "--ddl-lock-retries",
        "10",
    ]);
    let _ = holder.wait_with_output();
    run.expect(0);
    assert!(
        run.stderr.contains("lock_timeout") && run.stderr.contains("long-report"),
        "{}",
        run.stderr
    );
    assert_eq!(db.sql("SELECT count(*) FROM information_schema.columns WHERE table_name = 'busy' AND column_name = 'y'"), "1");

    // Without retries the failure is reported with its SQLSTATE.
    write(
        &dir,
        "0003_alter.sql",
        "ALTER TABLE busy ADD COLUMN z int;\n",
    );
    let holder = hold_table_lock(&db, "long-report");
    let run = db.run(&[
        "migrate",
        "--ddl-lock-timeout",
        "200ms",
        "--ddl-lock-retries",
        "0",
    ]);
    let _ = holder.wait_with_output();
    run.expect(6);
    assert!(
        run.stderr.contains("55P03") && run.stderr.contains("0003_alter.sql"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_run_with_nothing_to_do_writes_nothing() {
    // Transaction ids are cluster-wide, so this runs on a cluster of its own: no other test
    // can take one in between.
    let cluster = crate::harness::Cluster::init("noop", false).unwrap_or_else(|e| panic!("{e}"));
    cluster.start().unwrap_or_else(|e| panic!("{e}"));
    let url = format!(
        "postgres://postgres:{}@127.0.0.1:{}/postgres",
        crate::harness::PASSWORD,
        cluster.port
    );
    let xid = || {
        let out = Command::new(cluster.bin.join("psql"))
            .args([
                "-X",
                "-A",
                "-t",
                "-q",
                "-d",
                &url,
                "-c",
                "SELECT pg_current_xact_id()",
            ])
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse::<i64>()
            .unwrap_or_else(|e| panic!("{e}: {out:?}"))
    };
    let work = std::env::temp_dir().join(format!("db-init-noop-{}", std::process::id()));
    crate::harness::copy_dir(&fixtures().join("basic/drizzle"), &work.join("migrations"));
    let run = |args: &[&str]| {
        crate::harness::Run::from(
            crate::harness::bare_cmd(&work)
                .env("DATABASE_URL", &url)
                .args(args)
                .output()
                .unwrap_or_else(|e| panic!("{e}")),
        )
    };
    run(&["migrate"]).expect(0);
    // pg_current_xact_id() takes the next transaction id: if db-init wrote anything in between,
    // it would have taken one too.
    let before = xid();
    run(&["migrate"]).expect(0);
    run(&["status"]).expect(0);
    let after = xid();
    cluster.stop();
    let _ = std::fs::remove_dir_all(&work);
    assert_eq!(
        after,
        before + 1,
        "a run with nothing to do wrote to the database"
    );
}

/// A migration larger than one query segment (4 MiB) is sent in several queries of one
/// transaction: it applies whole, and an error near its end is still placed by line.
#[test]
fn a_large_migration_is_sent_in_segments_and_errors_keep_their_place() {
    let db = TestDb::new("segments");
    let mut sql = String::from("CREATE TABLE big (id int, s text);\n");
    let row = "x".repeat(100);
    for i in 0..60_000 {
        sql.push_str(&format!("INSERT INTO big VALUES ({i}, '{row}');\n"));
    }
    write(&db.work.join("ok"), "0001_big.sql", &sql);
    migrate(&db, "ok", &[]).expect(0);
    assert_eq!(db.sql("SELECT count(*) FROM big"), "60000");
    sql.push_str("INSERT INTO big VALUES (1, 'a', 'too many');\n");
    let db = TestDb::new("segments_bad");
    write(&db.work.join("bad"), "0001_bad.sql", &sql);
    let run = migrate(&db, "bad", &[]);
    run.expect(6);
    assert!(run.stderr.contains("0001_bad.sql:60002:"), "{}", run.stderr);
    assert_eq!(db.sql("SELECT to_regclass('big') IS NULL"), "t");
}
