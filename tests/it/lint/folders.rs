//! The Drizzle folders of tests/fixtures: on an empty database every table is new, so nothing is
//! said above info; against the previous release's tables with rows, what a reviewer would say.

use crate::harness::{copy_dir, repo, TestDb};

#[test]
fn every_fixture_folder_on_an_empty_database_says_nothing_above_info() {
    let root = repo().join("tests/fixtures");
    let folders = [
        "drizzle/basic/drizzle",
        "drizzle/concurrently/drizzle",
        "drizzle-v1/basic/drizzle",
        "drizzle-v1/upgraded/drizzle",
        "drizzle-patterns/begin-commit/drizzle",
        "drizzle-patterns/commit-then-concurrently/drizzle",
        "drizzle-patterns/crlf-only/drizzle",
        "drizzle-patterns/edited-applied/drizzle",
        "drizzle-patterns/unlisted-file/drizzle",
    ];
    for (n, folder) in folders.iter().enumerate() {
        let db = TestDb::new(&format!("lint_folder_{n}"));
        copy_dir(&root.join(folder), &db.work.join("migrations"));
        // Every finding would stop this run: an empty log is the claim.
        let run = db.run(&["plan", "--lint", "error", "--lint-large", "0"]);
        run.expect(0);
        assert!(
            run.stdout.contains("-- lock analysis: no finding"),
            "{folder}:\n{}",
            run.stdout
        );
    }
}

#[test]
fn the_basic_folder_against_the_previous_release_with_rows() {
    let db = TestDb::new("lint_folder_rows");
    let dir = db.fixture("basic/drizzle", "migrations");
    let journal = dir.join("meta/_journal.json");
    let full = std::fs::read_to_string(&journal).unwrap_or_else(|e| panic!("{e}"));
    let mut doc: serde_json::Value = serde_json::from_str(&full).unwrap_or_else(|e| panic!("{e}"));
    if let Some(entries) = doc["entries"].as_array_mut() {
        entries.truncate(4);
    }
    std::fs::write(&journal, doc.to_string()).unwrap_or_else(|e| panic!("{e}"));
    db.run(&["migrate"]).expect(0);
    db.sql(
        "INSERT INTO organizations (name, slug) SELECT 'o' || g, 'o' || g FROM generate_series(1, 200) g;\n\
         INSERT INTO users (email) SELECT 'u' || g || '@x' FROM generate_series(1, 2000) g;\n\
         INSERT INTO products (organization_id, sku, name, price_cents) \
           SELECT o.id, 's' || g, 'p' || g, g FROM organizations o, generate_series(1, 10) g;\n\
         INSERT INTO quotes (organization_id, product_id, total_cents) \
           SELECT organization_id, id, price_cents FROM products;\n\
         ANALYZE;",
    );
    std::fs::write(&journal, full).unwrap_or_else(|e| panic!("{e}"));
    let run = db.run(&["plan", "--lint-large", "16kB"]);
    run.expect(0);
    let findings: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.starts_with("-- 000") && l.contains(".sql:"))
        .collect();
    // The three plain CREATE INDEX on tables with rows; the constant default (`plan text DEFAULT
    // 'free' NOT NULL`) rewrites nothing since PostgreSQL 11 and is not named.
    assert_eq!(findings.len(), 3, "{}", run.stdout);
    for (line, table) in [(2, "products"), (3, "quotes"), (4, "users")] {
        assert!(
            findings.iter().any(|f| f.contains(&format!(
                "0004_lyrical_natasha_romanoff.sql:{line}:1: warning[index-not-concurrent]: SHARE on {table} ("
            ))),
            "{table}:\n{}",
            run.stdout
        );
    }
}
