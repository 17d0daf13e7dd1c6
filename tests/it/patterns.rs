//! Real folders as teams have them (tests/fixtures/drizzle-patterns, made with the real
//! drizzle-kit and drizzle-orm): stray files, files with their own BEGIN/COMMIT, COMMIT before
//! CREATE INDEX CONCURRENTLY, migrations edited after release, CRLF-only changes; and the
//! cross-tool runs against drizzle-orm itself (ignored: they need npm).

use crate::harness::{drizzle, fixtures, server, write, TestDb};
use crate::migrate::{expected_rows, migrate, normalise_dump, schema_dump, HISTORY};

const PATTERNS: &str = "../drizzle-patterns";

fn pattern(db: &TestDb, name: &str) -> std::path::PathBuf {
    db.fixture(&format!("{PATTERNS}/{name}/drizzle"), "migrations")
}

fn rows(name: &str) -> String {
    expected_rows(&format!("{PATTERNS}/{name}.expected-history.tsv"))
}

fn schema(name: &str) -> String {
    let path = fixtures().join(format!("{PATTERNS}/{name}.schema.sql"));
    normalise_dump(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}")))
}

fn history(db: &TestDb) -> String {
    db.sql(HISTORY).replace('|', "\t")
}

/// Writes the rows Drizzle recorded (a TSV with id, hash, created_at) into a fresh table.
fn set_history(db: &TestDb, tsv: &str) {
    db.sql("TRUNCATE drizzle.__drizzle_migrations");
    for line in expected_rows(tsv).lines() {
        let f: Vec<&str> = line.split('\t').collect();
        db.sql(&format!(
            "INSERT INTO drizzle.__drizzle_migrations (id, hash, created_at) VALUES ({}, '{}', {})",
            f[0], f[1], f[2]
        ));
    }
}

#[test]
fn each_pattern_on_a_fresh_database_leaves_drizzles_rows_and_schema() {
    for name in ["unlisted-file", "begin-commit", "commit-then-concurrently"] {
        let db = TestDb::new(&format!("pattern_{}", name.replace('-', "_")));
        pattern(&db, name);
        let run = migrate(&db, "migrations", &[]);
        run.expect(0);
        assert_eq!(history(&db), rows(name), "{name}: history rows");
        assert_eq!(schema_dump(&db), schema(name), "{name}: schema");
        // The same folder again: nothing to do, and status agrees.
        migrate(&db, "migrations", &[]).expect(0);
        db.run(&["status", "--migrations", "migrations"]).expect(0);
    }
}

#[test]
fn an_unlisted_file_is_a_warning_never_applied_and_an_error_on_request() {
    let db = TestDb::new("unlisted");
    pattern(&db, "unlisted-file");
    let stray = "0001_slimy_mac_gargan.sql";
    let run = migrate(&db, "migrations", &[]);
    run.expect(0);
    assert!(
        run.stderr.contains(stray) && run.stderr.contains("WARN"),
        "{}",
        run.stderr
    );
    let status = db.run(&["status", "--migrations", "migrations", "--format", "json"]);
    status.expect(0);
    let doc: serde_json::Value =
        serde_json::from_str(&status.stdout).unwrap_or_else(|e| panic!("{e}: {}", status.stdout));
    let doc = &doc["databases"][0];
    assert_eq!(doc["warnings"][0]["kind"], "not_in_journal");
    assert_eq!(doc["warnings"][0]["file"], stray);
    assert_eq!(doc["state"], "up_to_date");
    let strict = migrate(&db, "migrations", &["--unlisted-files", "error"]);
    strict.expect(7);
    assert!(strict.stderr.contains(stray), "{}", strict.stderr);
    // status prints its document even when the folder has a problem.
    let status = db.run(&[
        "status",
        "--migrations",
        "migrations",
        "--format",
        "json",
        "--unlisted-files",
        "error",
    ]);
    status.expect(7);
    let doc: serde_json::Value =
        serde_json::from_str(&status.stdout).unwrap_or_else(|e| panic!("{e}: {}", status.stdout));
    assert_eq!(doc["databases"][0]["problems"][0]["kind"], "not_in_journal");
}

#[test]
fn files_with_their_own_transaction_control_run_outside_one_and_say_why() {
    let db = TestDb::new("own_tx");
    pattern(&db, "begin-commit");
    let plan = db.run(&["plan", "--migrations", "migrations"]);
    plan.expect(0);
    assert!(
        plan.stdout
            .contains("0001_plans_in_transaction.sql (outside a transaction"),
        "{}",
        plan.stdout
    );
    let status = db.run(&["status", "--migrations", "migrations"]);
    status.expect(10);
    assert!(
        status.stdout.contains("outside a transaction: statement 1"),
        "{}",
        status.stdout
    );
    let run = migrate(&db, "migrations", &[]);
    run.expect(0);
    assert!(
        run.stderr.contains("running outside a transaction"),
        "{}",
        run.stderr
    );
}

#[test]
fn problems_come_in_one_report() {
    let db = TestDb::new("one_report");
    let dir = pattern(&db, "edited-applied");
    migrate(&db, "migrations", &[]).expect(0);
    // An edited file, a missing one and an out-of-order one, all at once.
    let journal = dir.join("meta/_journal.json");
    let text = std::fs::read_to_string(&journal).unwrap_or_default();
    let mut j: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
    let entries = j["entries"]
        .as_array_mut()
        .unwrap_or_else(|| panic!("entries"));
    let first = entries[0].clone();
    let mut early = first.clone();
    early["tag"] = "0003_early".into();
    early["when"] = (first["when"].as_i64().unwrap_or(0) - 1).into();
    entries.push(early);
    std::fs::write(&journal, j.to_string()).unwrap_or_else(|e| panic!("{e}"));
    write(&dir, "0003_early.sql", "SELECT 1;");
    std::fs::write(dir.join("0000_safe_spectrum.sql"), "SELECT 'edited';")
        .unwrap_or_else(|e| panic!("{e}"));
    let status = db.run(&["validate", "--migrations", "migrations"]);
    status.expect(7);
    for what in [
        "changed after it was applied",
        "older than the newest applied",
        "repair --migration 0000_safe_spectrum",
    ] {
        assert!(status.stderr.contains(what), "{what}: {}", status.stderr);
    }
}

/// A database Drizzle migrated before the file was edited: the folder's current rows with the
/// hashes Drizzle recorded then.
fn migrated_before_the_edit(db: &TestDb, name: &str) {
    pattern(db, name);
    migrate(db, "migrations", &[]).expect(0);
    set_history(db, &format!("{PATTERNS}/{name}.history-before-edit.tsv"));
}

#[test]
fn repair_accepts_named_and_all_changed_migrations_and_refuses_with_other_problems() {
    let db = TestDb::new("repair");
    migrated_before_the_edit(&db, "edited-applied");
    let refused = migrate(&db, "migrations", &[]);
    refused.expect(7);
    assert!(
        refused
            .stderr
            .contains("db-init repair --migration 0001_big_triathlon"),
        "{}",
        refused.stderr
    );
    let old = "72d2926559f8a1093d5eb874d1fb387cd45fd15ce7ed9a39fe6e34d392eed4b4";
    let new = "2414d1551806eeb46bdcc097eda9b039afcc900c6859c0a9ef839a4bb9d9035a";

    // Refused while another problem stands: a missing file.
    let dir = db.work.join("migrations");
    let gone = dir.join("0002_bouncy_felicia_hardy.sql");
    let kept = std::fs::read(&gone).unwrap_or_else(|e| panic!("{e}"));
    std::fs::remove_file(&gone).unwrap_or_else(|e| panic!("{e}"));
    let blocked = db.run(&["repair", "--migrations", "migrations", "--all-changed"]);
    blocked.expect(7);
    assert!(
        db.sql(HISTORY).contains(old),
        "nothing may change while refused"
    );
    std::fs::write(&gone, kept).unwrap_or_else(|e| panic!("{e}"));

    let unknown = db.run(&[
        "repair",
        "--migrations",
        "migrations",
        "--migration",
        "0000_safe_spectrum",
    ]);
    unknown.expect(7);
    let named = db.run(&[
        "repair",
        "--migrations",
        "migrations",
        "--migration",
        "0001_big_triathlon",
    ]);
    named.expect(0);
    assert!(
        named.stdout.contains(old) && named.stdout.contains(new),
        "{}",
        named.stdout
    );
    assert_eq!(history(&db), rows("edited-applied"));
    migrate(&db, "migrations", &[]).expect(0);

    set_history(
        &db,
        &format!("{PATTERNS}/edited-applied.history-before-edit.tsv"),
    );
    db.run(&["repair", "--migrations", "migrations", "--all-changed"])
        .expect(0);
    assert_eq!(history(&db), rows("edited-applied"));
}

#[test]
fn a_crlf_only_change_is_a_warning() {
    let db = TestDb::new("crlf");
    migrated_before_the_edit(&db, "crlf-only");
    let run = migrate(&db, "migrations", &[]);
    run.expect(0);
    assert!(
        run.stderr.contains("only its line endings changed"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_failed_concurrent_index_is_dropped_before_the_rerun() {
    let db = TestDb::new("invalid_index");
    let dir = db.work.join("numbered");
    write(
        &dir,
        "0001_t.sql",
        "CREATE TABLE t (x int);\nINSERT INTO t VALUES (1), (1), (2);\n",
    );
    write(
        &dir,
        "0002_unique.sql",
        "CREATE TABLE u (y int);\nCREATE UNIQUE INDEX CONCURRENTLY t_x_key ON t (x);\n",
    );
    let failed = migrate(&db, "numbered", &[]);
    failed.expect(6);
    assert!(failed.stderr.contains("23505"), "{}", failed.stderr);
    assert!(
        failed.stderr.contains(
            "It left the INVALID index t_x_key, which the next run drops before it tries again"
        ),
        "{}",
        failed.stderr
    );
    assert!(
        failed
            .stderr
            .contains("partly applied: statements 1..1 of 2 committed"),
        "{}",
        failed.stderr
    );
    assert_eq!(
        db.sql("SELECT indisvalid FROM pg_index WHERE indexrelid = 't_x_key'::regclass"),
        "f"
    );
    db.sql("DELETE FROM t WHERE ctid = (SELECT max(ctid) FROM t WHERE x = 1); DROP TABLE u");
    let rerun = migrate(&db, "numbered", &[]);
    rerun.expect(0);
    assert!(
        rerun.stderr.contains("dropping the INVALID index"),
        "{}",
        rerun.stderr
    );
    assert_eq!(
        db.sql("SELECT indisvalid FROM pg_index WHERE indexrelid = 't_x_key'::regclass"),
        "t"
    );
}

// ---- Against drizzle-orm itself ------------------------------------------------------------

/// A copy of a pattern's folder whose journal keeps only the first `n` entries.
fn first_entries(db: &TestDb, name: &str, n: usize) -> std::path::PathBuf {
    let dir = db.fixture(&format!("{PATTERNS}/{name}/drizzle"), &format!("first{n}"));
    let journal = dir.join("meta/_journal.json");
    let text = std::fs::read_to_string(&journal).unwrap_or_default();
    let mut j: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
    if let Some(entries) = j["entries"].as_array_mut() {
        entries.truncate(n);
    }
    std::fs::write(&journal, j.to_string()).unwrap_or_else(|e| panic!("{e}"));
    dir
}

#[test]
#[ignore = "needs node and npm (drizzle-orm 0.45.4 from the registry): run by .ci/run with --ignored"]
fn drizzle_and_db_init_agree_on_every_pattern_both_ways_and_half_way() {
    let _ = server();
    for name in ["unlisted-file", "begin-commit", "commit-then-concurrently"] {
        let tag = name.replace('-', "_");
        // db-init first, then Drizzle finds nothing to do.
        let db = TestDb::new(&format!("x_{tag}_dbinit_first"));
        let dir = pattern(&db, name);
        migrate(&db, "migrations", &[]).expect(0);
        let d = drizzle("0.45.4", &db, &dir);
        assert_eq!(d["ok"], true, "{name}: {d}");
        assert_eq!(
            d["applied"], 0,
            "{name}: Drizzle found work after db-init: {d}"
        );

        // Drizzle wholly, then db-init finds nothing to do.
        let db = TestDb::new(&format!("x_{tag}_drizzle_first"));
        let dir = pattern(&db, name);
        assert_eq!(drizzle("0.45.4", &db, &dir)["ok"], true);
        let run = migrate(&db, "migrations", &[]);
        run.expect(0);
        assert!(
            run.stderr.contains("0 migration(s) applied"),
            "{name}: {}",
            run.stderr
        );
        db.run(&["status", "--migrations", "migrations"]).expect(0);

        // Drizzle half way, db-init the rest: Drizzle's rows and schema, and Drizzle agrees.
        for n in [1, 2, 3] {
            let db = TestDb::new(&format!("x_{tag}_half_{n}"));
            let dir = pattern(&db, name);
            let part = first_entries(&db, name, n);
            assert_eq!(drizzle("0.45.4", &db, &part)["ok"], true);
            migrate(&db, "migrations", &[]).expect(0);
            assert_eq!(history(&db), rows(name), "{name} after {n} by Drizzle");
            assert_eq!(
                schema_dump(&db),
                schema(name),
                "{name} after {n} by Drizzle"
            );
            assert_eq!(drizzle("0.45.4", &db, &dir)["applied"], 0);
        }
    }
}

#[test]
#[ignore = "needs node and npm (drizzle-orm 0.45.4 from the registry): run by .ci/run with --ignored"]
fn after_repair_drizzle_still_finds_nothing_to_do() {
    let db = TestDb::new("x_repair");
    migrated_before_the_edit(&db, "edited-applied");
    db.run(&["repair", "--migrations", "migrations", "--all-changed"])
        .expect(0);
    let d = drizzle("0.45.4", &db, &db.work.join("migrations"));
    assert_eq!(d["ok"], true, "{d}");
    assert_eq!(d["applied"], 0, "{d}");
}

#[test]
fn a_failed_concurrent_index_outside_the_search_path_or_unnamed_is_dropped_too() {
    for (name, index) in [
        (
            "named",
            "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS uidx ON app.t (x);\n",
        ),
        (
            "unnamed",
            "CREATE UNIQUE INDEX CONCURRENTLY ON ONLY app.t (x);\n",
        ),
    ] {
        let db = TestDb::new(&format!("invalid_index_{name}"));
        let dir = db.work.join("numbered");
        write(
            &dir,
            "0001_t.sql",
            "CREATE SCHEMA app;\nCREATE TABLE app.t (x int);\nINSERT INTO app.t VALUES (1), (1);\n",
        );
        write(&dir, "0002_index.sql", index);
        migrate(&db, "numbered", &[]).expect(6);
        db.sql("DELETE FROM app.t WHERE ctid = (SELECT max(ctid) FROM app.t)");
        let rerun = migrate(&db, "numbered", &[]);
        rerun.expect(0);
        assert!(
            rerun.stderr.contains("dropping the INVALID index"),
            "{name}: {}",
            rerun.stderr
        );
        assert_eq!(
            db.sql("SELECT string_agg(indisvalid::text, ',') FROM pg_index WHERE indrelid = 'app.t'::regclass"),
            "true",
            "{name}: one valid index, nothing left behind"
        );
    }
}
