//! SQL seeds: errors named by line, seeds with their own transaction control, and bytes that
//! are not UTF-8.

use crate::harness::{write, TestDb};

#[test]
fn a_sql_seed_error_names_its_line_and_migrations_stay() {
    let db = TestDb::new("sql_seed_bad");
    write(
        &db.work.join("migrations"),
        "0001_t.sql",
        "CREATE TABLE items (id int PRIMARY KEY);\n",
    );
    let seeds = db.work.join("seeds");
    write(
        &seeds,
        "001_ok.sql",
        "INSERT INTO items VALUES (1) ON CONFLICT DO NOTHING;\n",
    );
    write(
        &seeds,
        "002_bad.sql",
        "INSERT INTO items VALUES (2) ON CONFLICT DO NOTHING;\n\nINSERT INTO itemz VALUES (3);\n",
    );
    let run = db.run(&["run"]);
    run.expect(8);
    assert!(
        run.stderr.contains("002_bad.sql:3:13") && run.stderr.contains("42P01"),
        "{}",
        run.stderr
    );
    assert_eq!(
        db.sql("SELECT string_agg(id::text, ',' ORDER BY id) FROM items"),
        "1"
    );
    assert_eq!(
        db.sql("SELECT count(*) FROM db_init.schema_migrations"),
        "1"
    );
}

#[test]
fn invalid_utf8_in_a_seed_is_a_warning_with_its_place() {
    let db = TestDb::new("seed_latin1");
    write(
        &db.work.join("migrations"),
        "0001_t.sql",
        "CREATE TABLE notes (t text PRIMARY KEY);\n",
    );
    let seeds = db.work.join("seeds");
    std::fs::create_dir_all(&seeds).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        seeds.join("001_latin1.sql"),
        b"-- written in Latin-1\nINSERT INTO notes VALUES ('caf\xe9') ON CONFLICT DO NOTHING;\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let run = db.run(&["run"]);
    run.expect(0);
    let warning = run
        .stderr
        .lines()
        .find(|l| l.contains("001_latin1.sql:2:31"))
        .unwrap_or_else(|| panic!("no warning with file:line:column\n{}", run.stderr));
    assert!(
        warning.contains("WARN") && warning.contains("UTF-8"),
        "{warning}"
    );
    // As documented: the bytes still reach the server as U+FFFD.
    assert_eq!(db.sql("SELECT t FROM notes"), "caf\u{fffd}");
}

#[test]
fn a_sql_seed_with_its_own_commit_reports_what_stayed_committed() {
    let db = TestDb::new("seed_own_commit");
    write(
        &db.work.join("migrations"),
        "0001_t.sql",
        "CREATE TABLE items (id int PRIMARY KEY);\n",
    );
    let seeds = db.work.join("seeds");
    write(
        &seeds,
        "001_items.sql",
        "INSERT INTO items VALUES (1);\nCOMMIT;\nINSERT INTO items VALUES ('bad');\n",
    );
    let run = db.run(&["run"]);
    run.expect(8);
    assert!(
        run.stderr.contains("001_items.sql:3:27")
            && run.stderr.contains("statements 1..2 of 3 committed")
            && !run.stderr.contains("rolled back"),
        "{}",
        run.stderr
    );
    assert_eq!(db.sql("SELECT string_agg(id::text, ',') FROM items"), "1");
    assert_eq!(db.sql("SELECT count(*) FROM db_init.seed_runs"), "0");

    // The file's own BEGIN ... COMMIT is honoured, and the run is recorded after it.
    write(
        &seeds,
        "001_items.sql",
        "BEGIN;\nINSERT INTO items VALUES (1), (2) ON CONFLICT DO NOTHING;\nCOMMIT;\n\
         BEGIN;\nINSERT INTO items VALUES (3);\n",
    );
    db.run(&["run"]).expect(0);
    assert_eq!(
        db.sql("SELECT string_agg(id::text, ',' ORDER BY id) FROM items"),
        "1,2,3"
    );
    assert_eq!(db.sql("SELECT count(*) FROM db_init.seed_runs"), "1");
    // A failure inside the file's open transaction undoes only that transaction.
    write(
        &seeds,
        "001_items.sql",
        "INSERT INTO items VALUES (4);\nBEGIN;\nINSERT INTO items VALUES (5);\nINSERT INTO items VALUES (1);\nCOMMIT;\n",
    );
    let run = db.run(&["run"]);
    run.expect(8);
    assert!(
        run.stderr.contains("statements 1..1 of 5 committed") && run.stderr.contains("23505"),
        "{}",
        run.stderr
    );
    assert_eq!(
        db.sql("SELECT string_agg(id::text, ',' ORDER BY id) FROM items"),
        "1,2,3,4"
    );
}
