//! A Drizzle 0.x journal merged from two branches that both generated the next migration:
//! `validate` (offline and online) fails naming both entries; a run applies it in journal order,
//! as Drizzle does, with a warning.

use std::path::Path;

use crate::harness::{write, TestDb};

/// The basic fixture with a second `0005` from a feature branch: same idx, and its `when`
/// (generated before main's 0005) comes after main's in the merged journal.
fn merged(db: &TestDb) -> std::path::PathBuf {
    let dir = db.fixture("basic/drizzle", "migrations");
    let path = dir.join("meta").join("_journal.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}"));
    let mut journal: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
    let entries = journal["entries"]
        .as_array_mut()
        .unwrap_or_else(|| panic!("no entries"));
    let main = entries
        .last()
        .cloned()
        .unwrap_or_else(|| panic!("empty journal"));
    let mut feature = main.clone();
    feature["tag"] = "0005_feature_branch".into();
    feature["when"] = (main["when"].as_i64().unwrap_or(0) - 1000).into();
    entries.push(feature);
    let text = serde_json::to_string_pretty(&journal).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
    write(
        &dir,
        "0005_feature_branch.sql",
        "CREATE TABLE feature_flags (id int);\n",
    );
    dir
}

fn says_both(stderr: &str, dir: &Path) {
    for says in [
        "0005_seed_like_data and 0005_feature_branch both have idx 5",
        "0005_feature_branch (when",
        "drizzle-kit drop",
    ] {
        assert!(
            stderr.contains(says),
            "{says:?} not in\n{stderr}\n({dir:?})"
        );
    }
}

#[test]
fn validate_offline_fails_on_a_journal_merged_from_two_branches() {
    let db = TestDb::new("journal_merged_offline");
    let dir = merged(&db);
    let run = db.run(&["validate", "--offline"]);
    run.expect(7);
    says_both(&run.stderr, &dir);
}

#[test]
fn validate_online_fails_too_and_a_run_applies_it_as_drizzle_does_with_a_warning() {
    let db = TestDb::new("journal_merged_run");
    let dir = merged(&db);
    let run = db.run(&["validate"]);
    run.expect(7);
    says_both(&run.stderr, &dir);
    let run = db.run(&["migrate"]);
    run.expect(0);
    says_both(&run.stderr, &dir);
    assert_eq!(
        db.sql("SELECT count(*) FROM drizzle.__drizzle_migrations"),
        "7"
    );
    assert_eq!(db.sql("SELECT count(*) FROM feature_flags"), "0");
}

#[test]
fn a_generated_journal_validates() {
    let db = TestDb::new("journal_generated");
    db.fixture("basic/drizzle", "migrations");
    db.run(&["validate", "--offline"]).expect(0);
}

/// The fixture's merged branch (an entry older than the one before it, no idx clash): an
/// error for `validate` unless the team allows out-of-order migrations.
#[test]
fn an_older_entry_after_a_newer_one_fails_validate_unless_out_of_order_is_allowed() {
    let db = TestDb::new("journal_out_of_order");
    db.fixture("scenarios/out-of-order", "migrations");
    let run = db.run(&["validate", "--offline"]);
    run.expect(7);
    assert!(
        run.stderr
            .contains("0006_feature_branch (when 1795252099238) comes after 0005_seed_like_data"),
        "{}",
        run.stderr
    );
    db.run(&["validate", "--offline", "--out-of-order", "allow"])
        .expect(0);
}
