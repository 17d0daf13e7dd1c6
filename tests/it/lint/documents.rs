//! `validate` lints what is pending (online) or the whole folder (offline), and writes its
//! findings as SARIF 2.1.0 for code scanning or as JSON, whatever the outcome.

use super::{second, table_with_rows};
use crate::harness::TestDb;

#[test]
fn validate_lints_the_pending_statements_and_can_fail_on_warnings() {
    let db = TestDb::new("lint_validate");
    table_with_rows(&db, 100);
    second(&db, "CREATE INDEX t_email ON t (email);\n");
    let run = db.run(&["validate"]);
    run.expect(0);
    assert!(
        run.stderr
            .contains("0002_next.sql:1:1: info[index-not-concurrent]"),
        "{}",
        run.stderr
    );
    let run = db.run(&["validate", "--lint", "error", "--lint-large", "1kB"]);
    run.expect(7);
    assert!(
        run.stderr.contains("warning[index-not-concurrent]"),
        "{}",
        run.stderr
    );
}

#[test]
fn sarif_names_each_finding_with_its_place_and_its_suppression() {
    let db = TestDb::new("lint_sarif");
    table_with_rows(&db, 100);
    second(
        &db,
        "CREATE INDEX t_email ON t (email);\n\
         -- db-init-ignore drop-column: nothing reads it since 1.4\n\
         ALTER TABLE t DROP COLUMN email;\n",
    );
    let run = db.run(&[
        "validate",
        "--format",
        "sarif",
        "--lint",
        "error",
        "--lint-large",
        "1kB",
    ]);
    run.expect(7);
    let doc: serde_json::Value =
        serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout));
    assert_eq!(doc["version"], "2.1.0");
    let results = doc["runs"][0]["results"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(results.len(), 2, "{doc:#}");
    assert_eq!(results[0]["ruleId"], "index-not-concurrent");
    assert_eq!(results[0]["level"], "warning");
    let place = &results[0]["locations"][0]["physicalLocation"];
    assert_eq!(place["artifactLocation"]["uri"], "migrations/0002_next.sql");
    assert_eq!(place["region"]["startLine"], 1);
    assert_eq!(results[1]["ruleId"], "drop-column");
    assert_eq!(results[1]["suppressions"][0]["kind"], "inSource");
    let rules = doc["runs"][0]["tool"]["driver"]["rules"]
        .as_array()
        .map_or(0, Vec::len);
    assert_eq!(rules, 2);

    let run = db.run(&["validate", "--format", "json"]);
    run.expect(0);
    let doc: serde_json::Value =
        serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout));
    assert_eq!(doc["valid"], true);
    let doc = &doc["databases"][0];
    assert_eq!(doc["findings"][0]["rule"], "index-not-concurrent");
    assert_eq!(doc["findings"][0]["severity"], "info");
    assert_eq!(doc["findings"][0]["lock"], "SHARE");
    assert_eq!(doc["findings"][0]["table"], "t");
}

#[test]
fn offline_validate_lints_the_folder_and_says_what_it_could_not_size() {
    let db = TestDb::new("lint_offline");
    table_with_rows(&db, 100);
    second(
        &db,
        "CREATE TABLE n (x int);\nCREATE INDEX n_x ON n (x);\nCREATE INDEX t_email ON t (email);\n",
    );
    let run = db.run(&["validate", "--offline"]);
    run.expect(0);
    assert!(
        run.stderr.contains(
            "0002_next.sql:3:1: warning[index-not-concurrent]: SHARE on t (size unknown: offline)"
        ),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("0002_next.sql:2:1"),
        "created in its own file:\n{}",
        run.stderr
    );
}
