//! Rolling an app back: a database migrated by a newer release is "ahead" of an older image's
//! folder (exit 0, a warning, `status` shows it), while a hole in the middle of the history is
//! still refused; for the Drizzle 0.x, Drizzle v1 and numbered layouts, against drizzle-orm
//! itself (ignored: npm), and `baseline --migration` for a hotfix applied by hand.

use std::path::{Path, PathBuf};

use crate::harness::{drizzle, write, TestDb};
use crate::migrate::{migrate, schema_dump};

/// An older image's Drizzle 0.x folder: `full` without the journal entries (and files) at
/// `drop` (indices into the journal).
fn drizzle_without(db: &TestDb, dest: &str, drop: &[usize]) -> PathBuf {
    let dir = db.fixture("basic/drizzle", dest);
    let journal_path = dir.join("meta/_journal.json");
    let text = std::fs::read_to_string(&journal_path).unwrap_or_else(|e| panic!("{e}"));
    let mut journal: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
    let entries = journal["entries"]
        .as_array_mut()
        .unwrap_or_else(|| panic!("no entries"));
    let mut kept = Vec::new();
    for (i, e) in entries.drain(..).enumerate() {
        if drop.contains(&i) {
            let tag = e["tag"].as_str().unwrap_or_default();
            std::fs::remove_file(dir.join(format!("{tag}.sql"))).unwrap_or_else(|e| panic!("{e}"));
        } else {
            kept.push(e);
        }
    }
    *entries = kept;
    std::fs::write(
        &journal_path,
        serde_json::to_string_pretty(&journal).unwrap_or_default(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    dir
}

/// An older image's Drizzle v1 folder: the fixture without the folders at `drop` (in order).
fn v1_without(db: &TestDb, dest: &str, drop: &[usize]) -> PathBuf {
    let dir = db.fixture("../drizzle-v1/basic/drizzle", dest);
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{e}"))
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name())
        .collect();
    names.sort();
    for &i in drop {
        std::fs::remove_dir_all(dir.join(&names[i])).unwrap_or_else(|e| panic!("{e}"));
    }
    dir
}

fn numbered(dir: &Path, versions: &[u32]) {
    for v in versions {
        write(
            dir,
            &format!("{v:04}_m{v}.sql"),
            &format!("CREATE TABLE t{v} (id int);\n"),
        );
    }
}

fn history_count(db: &TestDb, table: &str) -> String {
    db.sql(&format!("SELECT count(*) FROM {table}"))
}

/// The checks every layout must pass: the rollback is exit 0 with the warning, nothing is
/// written, seeds still run, status exits 0 and shows the rows as ahead, `wait --migrated`
/// passes, and `database_ahead: error` refuses.
fn rolled_back(db: &TestDb, older: &str, table: &str, ahead: usize) {
    let before = history_count(db, table);
    let schema = schema_dump(db);
    let run = db.run(&["migrate", "--migrations", older]);
    run.expect(0);
    assert!(
        run.stderr.contains(&format!(
            "the database is ahead of this image by {ahead} migration(s)"
        )),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("an older release is running against a newer schema"),
        "{}",
        run.stderr
    );
    assert_eq!(
        history_count(db, table),
        before,
        "history written on a rollback"
    );
    assert_eq!(schema_dump(db), schema, "schema changed on a rollback");

    // Seeds run as usual.
    write(
        &db.work.join("seeds"),
        "001_mark.sql",
        "CREATE TABLE IF NOT EXISTS seeded (n int);\nINSERT INTO seeded VALUES (1);\n",
    );
    db.run(&["run", "--migrations", older]).expect(0);
    assert_eq!(
        db.sql("SELECT count(*) FROM seeded"),
        "1",
        "seeds did not run"
    );
    assert_eq!(
        history_count(db, table),
        before,
        "history written on a rollback"
    );

    let status = db.run(&["status", "--migrations", older, "--format", "json"]);
    status.expect(0);
    let doc: serde_json::Value =
        serde_json::from_str(&status.stdout).unwrap_or_else(|e| panic!("{e}: {}", status.stdout));
    let doc = &doc["databases"][0];
    let rows = doc["ahead"].as_array().cloned().unwrap_or_default();
    assert_eq!(rows.len(), ahead, "{doc:#}");
    assert!(rows.iter().all(|r| r["state"] == "ahead"), "{doc:#}");
    assert_eq!(doc["missing"].as_array().map(Vec::len), Some(0), "{doc:#}");
    assert_eq!(doc["state"], "up_to_date", "{doc:#}");
    assert_eq!(doc["warnings"][0]["kind"], "ahead", "{doc:#}");
    let text = db.run(&["status", "--migrations", older]);
    text.expect(0);
    assert!(
        text.stdout.contains(&format!("{ahead} ahead")),
        "{}",
        text.stdout
    );

    db.run(&[
        "wait",
        "--migrated",
        "--migrations",
        older,
        "--wait-timeout",
        "5s",
    ])
    .expect(0);
    let strict = db.run(&[
        "migrate",
        "--migrations",
        older,
        "--database-ahead",
        "error",
    ]);
    strict.expect(7);
    assert!(
        strict.stderr.contains("database_ahead: error"),
        "{}",
        strict.stderr
    );
}

#[test]
fn drizzle_0x_rollback_is_nothing_to_do_and_a_hole_is_refused() {
    let db = TestDb::new("rollback_0x");
    db.fixture("basic/drizzle", "full");
    migrate(&db, "full", &[]).expect(0);
    drizzle_without(&db, "older", &[4, 5]);
    rolled_back(&db, "older", "drizzle.__drizzle_migrations", 2);

    drizzle_without(&db, "holed", &[2]);
    let run = migrate(&db, "holed", &[]);
    run.expect(7);
    assert!(
        run.stderr.contains("has no file any more"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("ahead of this image"),
        "{}",
        run.stderr
    );
}

#[test]
fn drizzle_v1_rollback_is_nothing_to_do_and_a_hole_is_refused() {
    let db = TestDb::new("rollback_v1");
    db.fixture("../drizzle-v1/basic/drizzle", "full");
    migrate(&db, "full", &[]).expect(0);
    v1_without(&db, "older", &[5]);
    rolled_back(&db, "older", "drizzle.__drizzle_migrations", 1);

    v1_without(&db, "holed", &[1]);
    let run = migrate(&db, "holed", &[]);
    run.expect(7);
    assert!(
        run.stderr.contains("has no file any more"),
        "{}",
        run.stderr
    );
}

#[test]
fn numbered_rollback_is_nothing_to_do_and_pending_on_an_ahead_database_is_out_of_order() {
    let db = TestDb::new("rollback_numbered");
    numbered(&db.work.join("full"), &[1, 2, 3]);
    migrate(&db, "full", &[]).expect(0);
    numbered(&db.work.join("older"), &[1, 2]);
    rolled_back(&db, "older", "db_init.schema_migrations", 1);

    numbered(&db.work.join("holed"), &[1, 3]);
    migrate(&db, "holed", &[]).expect(7);

    // The older folder has a migration the ahead database lacks: out of order.
    let db = TestDb::new("rollback_numbered_lacking");
    numbered(&db.work.join("newer"), &[1, 3]);
    migrate(&db, "newer", &[]).expect(0);
    numbered(&db.work.join("older"), &[1, 2]);
    let run = migrate(&db, "older", &[]);
    run.expect(7);
    assert!(
        run.stderr.contains("0002_m2.sql: pending but older"),
        "{}",
        run.stderr
    );
    migrate(&db, "older", &["--out-of-order", "allow"]).expect(0);
    assert_eq!(db.sql("SELECT to_regclass('t2') IS NOT NULL"), "t");
}

#[test]
fn baseline_migration_records_exactly_the_named_ones_with_the_rows_run_writes() {
    const ROWS: &str = "SELECT string_agg(hash || ' ' || created_at, ',' ORDER BY id) FROM drizzle.__drizzle_migrations";
    let reference = TestDb::new("baseline_only_ref");
    reference.fixture("basic/drizzle", "full");
    migrate(&reference, "full", &[]).expect(0);

    // Production runs the older image; the newest migration is applied by hand as a hotfix.
    let db = TestDb::new("baseline_only");
    let full = db.fixture("basic/drizzle", "full");
    drizzle_without(&db, "older", &[5]);
    migrate(&db, "older", &[]).expect(0);
    let hotfix = std::fs::read_to_string(full.join("0005_seed_like_data.sql")).unwrap_or_default();
    db.sql(&hotfix.replace("--> statement-breakpoint", ""));
    db.run(&["status", "--migrations", "full"]).expect(10);

    let unknown = db.run(&[
        "baseline",
        "--migrations",
        "full",
        "--migration",
        "0005_seed_like_data",
        "--migration",
        "nope",
    ]);
    unknown.expect(7);
    assert!(unknown.stderr.contains("nope"), "{}", unknown.stderr);
    let applied = db.run(&[
        "baseline",
        "--migrations",
        "full",
        "--migration",
        "0004_lyrical_natasha_romanoff",
    ]);
    applied.expect(7);
    assert!(
        applied.stderr.contains("already recorded"),
        "{}",
        applied.stderr
    );
    assert_eq!(
        history_count(&db, "drizzle.__drizzle_migrations"),
        "5",
        "a refused baseline wrote"
    );

    let run = db.run(&[
        "baseline",
        "--migrations",
        "full",
        "--migration",
        "0005_seed_like_data",
    ]);
    run.expect(0);
    assert!(
        run.stderr.contains("0005_seed_like_data.sql"),
        "{}",
        run.stderr
    );
    assert_eq!(db.sql(ROWS), reference.sql(ROWS));
    assert_eq!(schema_dump(&db), schema_dump(&reference));
    db.run(&["status", "--migrations", "full"]).expect(0);
    migrate(&db, "full", &[]).expect(0);
}

#[test]
#[ignore = "needs node and npm (drizzle-orm 0.45.4 and 1.0.0-rc.5 from the registry): run by .ci/run with --ignored"]
fn the_same_rollback_is_a_no_op_for_drizzle_and_for_db_init() {
    for (version, layout) in [("0.45.4", "0.x"), ("1.0.0-rc.5", "v1")] {
        let db = TestDb::new(&format!("xrollback_{}", layout.replace('.', "")));
        let (full, older) = match layout {
            "0.x" => (
                db.fixture("basic/drizzle", "full"),
                drizzle_without(&db, "older", &[5]),
            ),
            _ => (
                db.fixture("../drizzle-v1/basic/drizzle", "full"),
                v1_without(&db, "older", &[5]),
            ),
        };
        // The newer release migrated with Drizzle; the rolled-back image meets it.
        assert_eq!(drizzle(version, &db, &full)["applied"], 6, "{layout}");
        let schema = schema_dump(&db);
        let d = drizzle(version, &db, &older);
        assert_eq!(
            (d["ok"].clone(), d["applied"].clone()),
            (true.into(), 0.into()),
            "{layout}: {d}"
        );
        let run = migrate(&db, older.to_str().unwrap_or_default(), &[]);
        run.expect(0);
        assert!(
            run.stderr.contains("ahead of this image by 1 migration(s)"),
            "{layout}: {}",
            run.stderr
        );
        assert_eq!(schema_dump(&db), schema, "{layout}");

        // And the other way: db-init migrated the newer release, Drizzle's rollback is a no-op.
        let db = TestDb::new(&format!("xrollback_dbinit_{}", layout.replace('.', "")));
        let (full, older) = match layout {
            "0.x" => (
                db.fixture("basic/drizzle", "full"),
                drizzle_without(&db, "older", &[5]),
            ),
            _ => (
                db.fixture("../drizzle-v1/basic/drizzle", "full"),
                v1_without(&db, "older", &[5]),
            ),
        };
        migrate(&db, full.to_str().unwrap_or_default(), &[]).expect(0);
        let d = drizzle(version, &db, &older);
        assert_eq!(
            (d["ok"].clone(), d["applied"].clone()),
            (true.into(), 0.into()),
            "{layout}: {d}"
        );
        migrate(&db, older.to_str().unwrap_or_default(), &[]).expect(0);
    }
}
