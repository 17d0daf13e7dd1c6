//! Seeds (SPEC section 3): idempotent reruns, on-change, typed YAML rows, errors that name the
//! file and row/column or line, and migrations that stay applied when a seed fails.

use std::process::Command;

use crate::harness::{copy_dir, repo, server, write, TestDb};

fn data_dump(db: &TestDb, tables: &[&str]) -> String {
    let mut cmd = Command::new(server().bin.join("pg_dump"));
    cmd.args(["--data-only", "--no-owner", "-d"]).arg(db.url());
    for t in tables {
        cmd.args(["-t", t]);
    }
    let out = cmd.output().unwrap_or_else(|e| panic!("{e}"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Sequence positions are left out: PostgreSQL draws a serial's next value before it finds
    // the conflict, so an upsert of an existing row still advances the sequence.
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| {
            !l.starts_with('\\') && !l.starts_with("-- Dumped") && !l.contains("pg_catalog.setval")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_sample_app_runs_twice_with_identical_data() {
    let db = TestDb::new("sample_twice");
    copy_dir(&repo().join("migrations"), &db.work.join("migrations"));
    copy_dir(&repo().join("seeds"), &db.work.join("seeds"));
    db.run(&["run"]).expect(0);
    let tables = ["organizations", "roles", "permissions", "role_permissions"];
    let first = data_dump(&db, &tables);
    let xmin = db.sql("SELECT string_agg(xmin::text, ',' ORDER BY id) FROM roles");
    db.run(&["run"]).expect(0);
    assert_eq!(data_dump(&db, &tables), first);
    assert_eq!(
        db.sql("SELECT string_agg(xmin::text, ',' ORDER BY id) FROM roles"),
        xmin,
        "unchanged rows were rewritten"
    );
    assert_eq!(db.sql("SELECT count(*) FROM role_permissions"), "9");
    assert_eq!(db.sql("SELECT count(*) FROM db_init.seed_runs"), "4");
    // Bookkeeping never goes in public, where `drizzle-kit push` would drop it.
    assert_eq!(db.sql("SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename LIKE '%seed%'"), "0");
}

#[test]
fn on_change_skips_unchanged_seeds_and_reruns_changed_ones() {
    let db = TestDb::new("on_change");
    write(&db.work.join("migrations"), "0001_t.sql", "CREATE TABLE runs (n serial PRIMARY KEY, what text);\nCREATE TABLE settings (k text PRIMARY KEY, v text);\n");
    let seeds = db.work.join("seeds");
    write(&seeds, "a.sql", "INSERT INTO runs (what) VALUES ('a');\n");
    write(
        &seeds,
        "b.yaml",
        "table: settings\nkey: [k]\nrows:\n  - { k: theme, v: dark }\n",
    );
    db.run(&["run", "--seed-mode", "on-change"]).expect(0);
    let again = db.run(&["run", "--seed-mode", "on-change"]);
    again.expect(0);
    assert!(again.stderr.contains("0 seed(s) run"), "{}", again.stderr);
    assert_eq!(db.sql("SELECT count(*) FROM runs"), "1");
    write(
        &seeds,
        "b.yaml",
        "table: settings\nkey: [k]\nrows:\n  - { k: theme, v: light }\n",
    );
    let changed = db.run(&["run", "--seed-mode", "on-change"]);
    changed.expect(0);
    assert!(
        changed.stderr.contains("1 seed(s) run"),
        "{}",
        changed.stderr
    );
    assert_eq!(db.sql("SELECT v FROM settings"), "light");
    assert_eq!(db.sql("SELECT count(*) FROM runs"), "1");
    // Default mode: every seed on every start.
    db.run(&["run"]).expect(0);
    assert_eq!(db.sql("SELECT count(*) FROM runs"), "2");
}

#[test]
fn yaml_values_land_in_the_columns_types() {
    let db = TestDb::new("yaml_types");
    write(
        &db.work.join("migrations"),
        "0001_t.sql",
        "CREATE TABLE things (id int PRIMARY KEY, name text, price numeric(10,2), active boolean, tags text[], \
         scores int[], meta jsonb, born date, note text DEFAULT 'none');\n",
    );
    write(
        &db.work.join("seeds"),
        "things.yml",
        "table: things\nkey: id\non_conflict: ignore\nrows:\n\
         - { id: 1, name: \"O'Brien; DROP TABLE things\", price: 9.5, active: true, tags: [a, b], scores: [1, 2], meta: { plan: pro, seats: 3 }, born: 2024-02-29 }\n\
         - { id: 2, name: null, active: false, meta: [1, \"x\"] }\n",
    );
    db.run(&["run"]).expect(0);
    assert_eq!(
        db.sql("SELECT name || '|' || price || '|' || active || '|' || tags::text || '|' || scores::text || '|' || meta::text || '|' || born || '|' || note FROM things WHERE id = 1"),
        "O'Brien; DROP TABLE things|9.50|true|{a,b}|{1,2}|{\"plan\": \"pro\", \"seats\": 3}|2024-02-29|none"
    );
    assert_eq!(db.sql("SELECT coalesce(name, 'NULL') || '|' || active || '|' || meta::text FROM things WHERE id = 2"), "NULL|false|[1, \"x\"]");
}

#[test]
fn a_bad_yaml_value_names_row_and_column_and_changes_nothing() {
    let db = TestDb::new("yaml_bad");
    write(
        &db.work.join("migrations"),
        "0001_t.sql",
        "CREATE TABLE items (id int PRIMARY KEY, qty int NOT NULL);\n",
    );
    let seeds = db.work.join("seeds");
    write(
        &seeds,
        "items.yaml",
        "table: items\nkey: [id]\nrows:\n  - { id: 1, qty: 5 }\n  - { id: 2, qty: lots }\n",
    );
    let run = db.run(&["run"]);
    run.expect(8);
    assert!(
        run.stderr.contains("items.yaml")
            && run.stderr.contains("row 2, column `qty`")
            && run.stderr.contains("22P02"),
        "{}",
        run.stderr
    );
    assert_eq!(db.sql("SELECT count(*) FROM items"), "0");
    // The migration before it stays applied.
    assert_eq!(
        db.sql("SELECT count(*) FROM db_init.schema_migrations"),
        "1"
    );
    assert_eq!(db.sql("SELECT count(*) FROM db_init.seed_runs"), "0");
}

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
fn unknown_yaml_keys_are_rejected_before_anything_runs() {
    let db = TestDb::new("yaml_unknown");
    write(
        &db.work.join("migrations"),
        "0001_t.sql",
        "CREATE TABLE items (id int PRIMARY KEY);\n",
    );
    write(
        &db.work.join("seeds"),
        "items.yaml",
        "table: items\nkey: [id]\nrowz:\n  - { id: 1 }\n",
    );
    let run = db.run(&["run"]);
    run.expect(8);
    assert!(
        run.stderr.contains("items.yaml") && run.stderr.contains("rowz"),
        "{}",
        run.stderr
    );
    assert_eq!(db.sql("SELECT to_regclass('items') IS NULL"), "t");
}
