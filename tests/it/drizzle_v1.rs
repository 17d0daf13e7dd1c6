//! Drizzle v1 folders (tests/fixtures/drizzle-v1, made with the released drizzle-kit and
//! drizzle-orm 1.0.0-rc.5): rows and schemas exactly as Drizzle v1 writes them, the upgrade of a
//! 0.x history table, db-init's checks on top, and runs against drizzle-orm itself (ignored:
//! they need npm).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::{drizzle, fixtures, server, TestDb};
use crate::migrate::{expected_rows, migrate, normalise_dump, schema_dump};

const V1: &str = "../drizzle-v1";
const ROWS: &str = "SELECT id || E'\\t' || hash || E'\\t' || created_at || E'\\t' || coalesce(name, 'NULL') || E'\\t' \
                    || CASE WHEN applied_at IS NULL THEN 'NULL' ELSE 'NOT NULL' END FROM drizzle.__drizzle_migrations ORDER BY id";

fn v1(db: &TestDb, rel: &str, dest: &str) -> PathBuf {
    db.fixture(&format!("{V1}/{rel}"), dest)
}

fn rows(db: &TestDb) -> String {
    db.sql(ROWS).replace('|', "\t")
}

fn expected(tsv: &str) -> String {
    expected_rows(&format!("{V1}/{tsv}"))
}

fn dump_file(rel: &str) -> String {
    let path = fixtures().join(format!("{V1}/{rel}"));
    normalise_dump(&std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{e}")))
}

/// Part of the schema (`-t table` or `-n schema`), as pg_dump shows it.
fn table_dump(db: &TestDb, selector: &[&str]) -> String {
    let out = Command::new(server().bin.join("pg_dump"))
        .args(["--schema-only", "--no-owner", "--no-privileges"])
        .args(selector)
        .arg("-d")
        .arg(db.url())
        .output()
        .unwrap_or_else(|e| panic!("pg_dump: {e}"));
    normalise_dump(&String::from_utf8_lossy(&out.stdout))
}

/// A database at `basic`, migrated by db-init (whose rows are Drizzle v1's, as the first test
/// shows).
fn at_basic(name: &str) -> TestDb {
    let db = TestDb::new(name);
    v1(&db, "basic/drizzle", "basic");
    migrate(&db, "basic", &[]).expect(0);
    db
}

/// A database whose 0.x history Drizzle 0.x (or db-init, byte for byte the same) wrote.
fn at_0x(db: &TestDb, folder: &str) {
    db.fixture(folder, "v0");
    migrate(db, "v0", &[]).expect(0);
}

#[test]
fn basic_writes_drizzle_v1_rows_and_schema_exactly() {
    let db = TestDb::new("v1_basic");
    v1(&db, "basic/drizzle", "migrations");
    migrate(&db, "migrations", &[]).expect(0);
    assert_eq!(rows(&db), expected("basic.expected-history.tsv"));
    assert_eq!(schema_dump(&db), dump_file("basic.schema.sql"));
    let again = migrate(&db, "migrations", &[]);
    again.expect(0);
    assert!(
        again.stderr.contains("0 migration(s) applied"),
        "{}",
        again.stderr
    );
    let status = db.run(&["status", "--migrations", "migrations", "--format", "json"]);
    status.expect(0);
    assert!(
        status.stdout.contains("\"layout\": \"drizzle-v1\""),
        "{}",
        status.stdout
    );
}

#[test]
fn a_0x_table_is_upgraded_exactly_as_drizzle_v1_upgrades_it() {
    let db = TestDb::new("v1_upgrade");
    at_0x(&db, "basic/drizzle");
    v1(&db, "upgraded/drizzle", "migrations");
    let plan = db.run(&["plan", "--migrations", "migrations"]);
    plan.expect(0);
    assert!(
        plan.stdout
            .contains("row 1 is 20261121090804_light_mephisto"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout
            .contains("ADD COLUMN IF NOT EXISTS \"name\" text"),
        "{}",
        plan.stdout
    );
    let run = migrate(&db, "migrations", &[]);
    run.expect(0);
    assert!(
        run.stderr.contains("history table upgraded"),
        "{}",
        run.stderr
    );
    assert_eq!(rows(&db), expected("upgraded.after-upgrade-history.tsv"));
    assert_eq!(
        table_dump(&db, &["-t", "drizzle.__drizzle_migrations"]),
        dump_file("upgraded.history-table-after.sql")
    );
    let again = migrate(&db, "migrations", &[]);
    again.expect(0);
    assert!(!again.stderr.contains("upgraded"), "{}", again.stderr);
}

#[test]
fn upgrade_matching_follows_drizzle_and_refuses_where_it_throws() {
    for (folder, tsv) in [
        (
            "renamed",
            "scenarios/upgrade-matching.renamed.after-upgrade-history.tsv",
        ),
        ("edited", ""),
    ] {
        let db = TestDb::new(&format!("v1_match_{folder}"));
        at_0x(&db, "basic/drizzle");
        v1(
            &db,
            &format!("scenarios/upgrade-matching/{folder}"),
            "migrations",
        );
        let run = migrate(&db, "migrations", &[]);
        if tsv.is_empty() {
            // Matched by its second, as Drizzle does; then db-init reports the edit.
            run.expect(7);
            assert!(
                run.stderr
                    .contains("repair --migration 20261121090823_lyrical_natasha_romanoff"),
                "{}",
                run.stderr
            );
        } else {
            run.expect(0);
            assert_eq!(rows(&db), expected(tsv), "{folder}");
        }
    }
    let db = TestDb::new("v1_match_same_second");
    at_0x(
        &db,
        &format!("{V1}/scenarios/upgrade-matching/same-second-v0"),
    );
    v1(&db, "scenarios/upgrade-matching/same-second", "migrations");
    migrate(&db, "migrations", &[]).expect(0);
    assert_eq!(
        rows(&db),
        expected("scenarios/upgrade-matching.same-second.after-upgrade-history.tsv")
    );

    for (folder, v0, ids) in [
        ("missing", "basic/drizzle".to_string(), "ids: 4"),
        (
            "same-second-edited",
            format!("{V1}/scenarios/upgrade-matching/same-second-v0"),
            "ids: 5",
        ),
    ] {
        let db = TestDb::new(&format!("v1_match_{}", folder.replace('-', "_")));
        at_0x(&db, &v0);
        v1(
            &db,
            &format!("scenarios/upgrade-matching/{folder}"),
            "migrations",
        );
        let run = migrate(&db, "migrations", &[]);
        run.expect(7);
        assert!(run.stderr.contains(ids), "{folder}: {}", run.stderr);
        assert_eq!(
            db.sql("SELECT count(*) FROM pg_attribute WHERE attrelid = 'drizzle.__drizzle_migrations'::regclass AND attname = 'name'"),
            "0",
            "{folder}: the table must keep its 0.x shape"
        );
    }
}

#[test]
fn folders_sort_as_drizzle_sorts_them() {
    let db = TestDb::new("v1_sort");
    v1(&db, "scenarios/sort-order", "migrations");
    migrate(&db, "migrations", &[]).expect(0);
    assert_eq!(
        rows(&db),
        expected("scenarios/sort-order.expected-history.tsv")
    );
}

#[test]
fn out_of_order_is_applied_by_default_and_refused_on_request() {
    let db = at_basic("v1_ooo");
    v1(&db, "scenarios/out-of-order", "migrations");
    let strict = migrate(&db, "migrations", &["--out-of-order", "error"]);
    strict.expect(7);
    let run = migrate(&db, "migrations", &[]);
    run.expect(0);
    assert!(
        run.stderr.contains("older than the newest applied"),
        "{}",
        run.stderr
    );
    assert_eq!(
        rows(&db),
        expected("scenarios/out-of-order.at-basic.expected-history.tsv")
    );
}

#[test]
fn edited_renamed_and_missing_folders_are_refused() {
    let db = at_basic("v1_checks");
    v1(&db, "scenarios/edited-applied", "edited");
    let run = migrate(&db, "edited", &[]);
    run.expect(7);
    assert!(
        run.stderr
            .contains("repair --migration 20261121125804_talented_kinsey_walden"),
        "{}",
        run.stderr
    );
    db.run(&["repair", "--migrations", "edited", "--all-changed"])
        .expect(0);
    migrate(&db, "edited", &[]).expect(0);
    assert!(db
        .sql("SELECT hash FROM drizzle.__drizzle_migrations WHERE id = 5")
        .starts_with("4a554fb9"));

    let db = at_basic("v1_renamed");
    v1(&db, "scenarios/renamed-applied", "renamed");
    let run = migrate(&db, "renamed", &[]);
    run.expect(7);
    assert!(
        run.stderr.contains("renamed after it was applied"),
        "{}",
        run.stderr
    );

    v1(&db, "scenarios/missing-folder", "missing");
    migrate(&db, "missing", &[]).expect(7);
    migrate(&db, "missing", &["--allow-missing"]).expect(0);
}

#[test]
fn folders_drizzle_cannot_run_are_refused_before_connecting() {
    let db = TestDb::new("v1_refused");
    for (rel, what) in [
        ("scenarios/bad-name", "hotfix/migration.sql"),
        ("scenarios/journal-present", "drizzle-kit up"),
        ("scenarios/mixed/with-journal", "drizzle-kit up"),
    ] {
        let dest = rel.replace('/', "_");
        v1(&db, rel, &dest);
        let run = migrate(
            &db,
            &dest,
            &["--database-url", "postgres://nobody@127.0.0.1:1/none"],
        );
        run.expect(7);
        assert!(run.stderr.contains(what), "{rel}: {}", run.stderr);
    }
    // Folders of folders that are no migrations: never a success with nothing applied.
    let dir = db.work.join("unknown/some_folder");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.join("up.sql"), "SELECT 1;").unwrap_or_else(|e| panic!("{e}"));
    let run = migrate(&db, "unknown", &[]);
    run.expect(7);
    assert!(run.stderr.contains("no migrations found"), "{}", run.stderr);
}

#[test]
fn a_stray_old_layout_file_is_ignored_with_a_warning() {
    let db = TestDb::new("v1_mixed");
    v1(&db, "scenarios/mixed/without-journal", "migrations");
    let run = migrate(&db, "migrations", &[]);
    run.expect(0);
    assert!(
        run.stderr.contains("0006_feature_flags.sql is not inside"),
        "{}",
        run.stderr
    );
    assert_eq!(
        rows(&db),
        expected("upgraded.fresh-db.expected-history.tsv")
    );
}

#[test]
fn custom_table_names_and_crlf_files() {
    let db = TestDb::new("v1_custom");
    v1(&db, "basic/drizzle", "migrations");
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
    let custom = db
        .sql(&ROWS.replace("drizzle.__drizzle_migrations", "ops.\"Schema_History\""))
        .replace('|', "\t");
    assert_eq!(
        custom,
        expected("scenarios/custom-table.expected-history.tsv")
    );
    assert_eq!(
        table_dump(&db, &["-n", "ops"]),
        dump_file("scenarios/custom-table.history-table.sql")
    );

    let db = TestDb::new("v1_crlf");
    v1(&db, "scenarios/bom-crlf/crlf", "migrations");
    migrate(&db, "migrations", &[]).expect(0);
    assert_eq!(
        rows(&db),
        expected("scenarios/bom-crlf.crlf.expected-history.tsv")
    );
}

#[test]
fn each_migration_has_its_own_transaction_unless_atomic() {
    for (extra, kept) in [(&[][..], "4"), (&["--atomic"][..], "3")] {
        let db = TestDb::new(&format!("v1_fail_{kept}"));
        v1(&db, "scenarios/fail-in-batch/before", "before");
        migrate(&db, "before", &[]).expect(0);
        v1(&db, "scenarios/fail-in-batch/after", "after");
        let run = migrate(&db, "after", extra);
        run.expect(6);
        assert!(run.stderr.contains("42703"), "{}", run.stderr);
        assert_eq!(
            db.sql("SELECT count(*) FROM drizzle.__drizzle_migrations"),
            kept
        );
    }
}

#[test]
fn new_names_the_next_folder_as_drizzle_kit_does() {
    let db = TestDb::new("v1_new");
    let dir = v1(&db, "basic/drizzle", "migrations");
    let run = db.run(&["new", "add things", "--migrations", "migrations"]);
    run.expect(0);
    let created = db.work.join(run.stdout.trim());
    let folder = created
        .parent()
        .and_then(Path::file_name)
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    assert!(
        folder.ends_with("_add_things") && folder.len() == 14 + "_add_things".len(),
        "{folder}"
    );
    assert!(created.starts_with(&dir) && created.ends_with("migration.sql"));
    let status = db.run(&["status", "--migrations", "migrations"]);
    status.expect(10);
    assert!(status.stdout.contains(&folder), "{}", status.stdout);
}

// ---- Against drizzle-orm itself ------------------------------------------------------------

#[test]
#[ignore = "needs node and npm (drizzle-orm 0.45.4 and 1.0.0-rc.5 from the registry): run by .ci/run with --ignored"]
fn drizzle_v1_and_db_init_agree_both_ways_and_through_the_upgrade() {
    let _ = server();
    // db-init first: Drizzle v1 finds nothing to do.
    let db = TestDb::new("xv1_dbinit_first");
    let dir = v1(&db, "basic/drizzle", "migrations");
    migrate(&db, "migrations", &[]).expect(0);
    let d = drizzle("1.0.0-rc.5", &db, &dir);
    assert_eq!(
        (d["ok"].clone(), d["applied"].clone()),
        (true.into(), 0.into()),
        "{d}"
    );

    // Drizzle v1 first: db-init finds nothing to do.
    let db = TestDb::new("xv1_drizzle_first");
    let dir = v1(&db, "basic/drizzle", "migrations");
    assert_eq!(drizzle("1.0.0-rc.5", &db, &dir)["applied"], 6);
    let run = migrate(&db, "migrations", &[]);
    run.expect(0);
    assert!(
        run.stderr.contains("0 migration(s) applied"),
        "{}",
        run.stderr
    );
    assert_eq!(rows(&db), expected("basic.expected-history.tsv"));

    // Drizzle 0.x, then db-init upgrades with the v1 folder, then Drizzle v1 changes nothing.
    let db = TestDb::new("xv1_upgrade_by_dbinit");
    let v0 = db.fixture("basic/drizzle", "v0");
    assert_eq!(drizzle("0.45.4", &db, &v0)["applied"], 6);
    let dir = v1(&db, "upgraded/drizzle", "migrations");
    migrate(&db, "migrations", &[]).expect(0);
    let before = rows(&db);
    assert_eq!(before, expected("upgraded.after-upgrade-history.tsv"));
    assert_eq!(drizzle("1.0.0-rc.5", &db, &dir)["applied"], 0);
    assert_eq!(rows(&db), before);

    // And the other way round: Drizzle v1 upgrades, db-init finds nothing to do.
    let db = TestDb::new("xv1_upgrade_by_drizzle");
    let v0 = db.fixture("basic/drizzle", "v0");
    assert_eq!(drizzle("0.45.4", &db, &v0)["applied"], 6);
    let dir = v1(&db, "upgraded/drizzle", "migrations");
    assert_eq!(drizzle("1.0.0-rc.5", &db, &dir)["ok"], true);
    let run = migrate(&db, "migrations", &[]);
    run.expect(0);
    assert!(
        run.stderr.contains("0 migration(s) applied"),
        "{}",
        run.stderr
    );
    assert_eq!(rows(&db), expected("upgraded.after-upgrade-history.tsv"));
}
