//! Seeds (SPEC section 3): idempotent reruns, on-change, typed YAML rows, errors that name the
//! file and row/column or line, and migrations that stay applied when a seed fails.

use std::process::Command;

mod commands;
mod lookups;
mod rbac;
mod reporting;
mod sequences;
mod sets;
mod sql;
mod vars;

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
    let dump = String::from_utf8_lossy(&out.stdout);
    let data: Vec<&str> = dump
        .lines()
        .filter(|l| !l.starts_with('\\') && !l.starts_with("-- Dumped"))
        .collect();
    format!("{}\n-- sequences\n{}", data.join("\n"), sequences(db))
}

/// Every sequence of the database with its position: a rerun that draws a value shows here.
fn sequences(db: &TestDb) -> String {
    db.sql(
        "SELECT coalesce(string_agg(format('%s.%s=%s', schemaname, sequencename, coalesce(last_value::text, 'unused')), ',' \
         ORDER BY schemaname, sequencename), '') FROM pg_sequences",
    )
}

#[test]
fn the_sample_app_runs_twice_with_identical_data() {
    let db = TestDb::new("sample_twice");
    copy_dir(&repo().join("migrations"), &db.work.join("migrations"));
    copy_dir(&repo().join("seeds"), &db.work.join("seeds"));
    db.run(&["run"]).expect(0);
    let tables = ["organizations", "roles", "permissions", "role_permissions"];
    let first = data_dump(&db, &tables);
    assert!(first.contains("public.roles_id_seq=4"), "{first}");
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
    // Default mode: every seed on every start, once per rollout: a run within the 10 s before
    // this start counts as this rollout's.
    db.run(&["run"]).expect(0);
    assert_eq!(db.sql("SELECT count(*) FROM runs"), "1");
    db.sql("UPDATE db_init.seed_runs SET last_run_at = last_run_at - interval '1 minute'");
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
         - { id: 2, name: null, active: false, scores: null, meta: [1, \"x\"] }\n",
    );
    db.run(&["run"]).expect(0);
    assert_eq!(
        db.sql("SELECT name || '|' || price || '|' || active || '|' || tags::text || '|' || scores::text || '|' || meta::text || '|' || born || '|' || note FROM things WHERE id = 1"),
        "O'Brien; DROP TABLE things|9.50|true|{a,b}|{1,2}|{\"plan\": \"pro\", \"seats\": 3}|2024-02-29|none"
    );
    assert_eq!(db.sql("SELECT coalesce(name, 'NULL') || '|' || active || '|' || meta::text || '|' || (scores IS NULL) FROM things WHERE id = 2"), "NULL|false|[1, \"x\"]|true");
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
    run.expect(7);
    assert!(
        run.stderr.contains("items.yaml") && run.stderr.contains("rowz"),
        "{}",
        run.stderr
    );
    assert_eq!(db.sql("SELECT to_regclass('items') IS NULL"), "t");
}

#[test]
fn yaml_reruns_draw_no_ids_and_apply_only_what_changed() {
    let db = TestDb::new("yaml_no_burn");
    write(
        &db.work.join("migrations"),
        "0001_t.sql",
        "CREATE TABLE plans (id serial PRIMARY KEY, code text UNIQUE NOT NULL, name text NOT NULL, seats int DEFAULT 5, note text DEFAULT 'none');\n\
         CREATE TABLE flags (id int GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, k text UNIQUE NOT NULL, enabled boolean);\n\
         CREATE TABLE prefs (id bigserial PRIMARY KEY, org text, k text NOT NULL, v text, UNIQUE (org, k));\n",
    );
    let seeds = db.work.join("seeds");
    let plans = "table: plans\nkey: code\nrows:\n  - { code: free, name: Free }\n  - { code: pro, name: Pro, seats: 10 }\n";
    let flags =
        "table: flags\nkey: [k]\non_conflict: ignore\nrows:\n  - { k: beta, enabled: true }\n";
    write(&seeds, "1_plans.yaml", plans);
    write(&seeds, "2_flags.yaml", flags);
    // A null key column matches the row that has null there, as the seed means it.
    write(
        &seeds,
        "3_prefs.yaml",
        "table: prefs\nkey: [org, k]\nrows:\n  - { org: null, k: theme, v: dark }\n  - { org: acme, k: theme, v: light }\n",
    );
    let tables = ["plans", "flags", "prefs"];
    db.run(&["run"]).expect(0);
    let first = data_dump(&db, &tables);
    assert!(
        first.contains("public.plans_id_seq=2")
            && first.contains("public.flags_id_seq=1")
            && first.contains("public.prefs_id_seq=2"),
        "{first}"
    );
    let xmin = "SELECT string_agg(xmin::text, ',' ORDER BY code) FROM plans";
    let before = db.sql(xmin);
    for _ in 0..2 {
        db.run(&["run"]).expect(0);
        assert_eq!(
            data_dump(&db, &tables),
            first,
            "a rerun changed data or drew ids"
        );
    }
    assert_eq!(db.sql(xmin), before, "unchanged rows were rewritten");

    // A column a row leaves out is the table's business once the row exists.
    db.sql("UPDATE plans SET seats = 7, note = 'kept' WHERE code = 'free'");
    let free_xmin = db.sql("SELECT xmin FROM plans WHERE code = 'free'");
    write(
        &seeds,
        "1_plans.yaml",
        &plans.replace("name: Pro,", "name: Pro plan,").replace(
            "seats: 10 }\n",
            "seats: 10 }\n  - { code: team, name: Team }\n",
        ),
    );
    write(
        &seeds,
        "2_flags.yaml",
        &flags.replace("enabled: true }\n", "enabled: false }\n  - { k: dark }\n"),
    );
    db.run(&["run"]).expect(0);
    assert_eq!(
        db.sql("SELECT string_agg(concat_ws('|', id, code, name, seats, note), ',' ORDER BY id) FROM plans"),
        "1|free|Free|7|kept,2|pro|Pro plan|10|none,3|team|Team|5|none"
    );
    assert_eq!(
        db.sql("SELECT xmin FROM plans WHERE code = 'free'"),
        free_xmin
    );
    // on_conflict: ignore inserts what is missing and never updates.
    assert_eq!(
        db.sql("SELECT string_agg(concat_ws('|', id, k, coalesce(enabled::text, 'null')), ',' ORDER BY id) FROM flags"),
        "1|beta|true,2|dark|null"
    );
    let seqs = sequences(&db);
    assert!(
        seqs.contains("public.plans_id_seq=3")
            && seqs.contains("public.flags_id_seq=2")
            && seqs.contains("public.prefs_id_seq=2"),
        "{seqs}"
    );
    assert_eq!(db.sql("SELECT count(*) FROM prefs"), "2");
}

#[test]
fn a_bad_value_after_an_array_column_names_its_own_row() {
    let db = TestDb::new("yaml_bad_after_array");
    write(
        &db.work.join("migrations"),
        "0001_t.sql",
        "CREATE TABLE items (id int PRIMARY KEY, tags text[], qty integer);\n",
    );
    write(
        &db.work.join("seeds"),
        "items.yaml",
        "table: items\nkey: id\nrows:\n  - { id: 1, tags: [a, b], qty: 1 }\n  - { id: 2, tags: [c], qty: lots }\n",
    );
    let run = db.run(&["run"]);
    run.expect(8);
    assert!(
        run.stderr.contains("items.yaml at row 2, column `qty`") && run.stderr.contains("22P02"),
        "{}",
        run.stderr
    );
    assert_eq!(db.sql("SELECT count(*) FROM items"), "0");
}

#[test]
fn yaml_updates_json_columns_and_refuses_a_repeated_key() {
    let db = TestDb::new("yaml_json_update");
    write(
        &db.work.join("migrations"),
        "0001_t.sql",
        "CREATE TABLE settings (k text PRIMARY KEY, v json, tags text[]);\n",
    );
    let seeds = db.work.join("seeds");
    let yaml = "table: settings\nkey: k\nrows:\n  - { k: ui, v: { theme: dark }, tags: [a] }\n";
    write(&seeds, "settings.yaml", yaml);
    db.run(&["run"]).expect(0);
    let xmin = db.sql("SELECT xmin FROM settings");
    db.run(&["run"]).expect(0);
    assert_eq!(
        db.sql("SELECT xmin FROM settings"),
        xmin,
        "an unchanged json row was rewritten"
    );
    write(
        &seeds,
        "settings.yaml",
        &yaml.replace("dark }, tags: [a]", "light }, tags: null"),
    );
    db.run(&["run"]).expect(0);
    assert_eq!(
        db.sql("SELECT v::text || '|' || (tags IS NULL) FROM settings"),
        "{\"theme\":\"light\"}|true"
    );
    write(
        &seeds,
        "settings.yaml",
        &format!("{yaml}  - {{ k: ui, v: 1 }}\n"),
    );
    let run = db.run(&["run"]);
    run.expect(8);
    assert!(
        run.stderr.contains("settings.yaml") && run.stderr.contains("row 2: the same key as row 1"),
        "{}",
        run.stderr
    );
}

/// `plan` prints what a run sends for the seeds too: SQL seeds as sent, YAML upserts with their
/// parameters, the session settings; and changes nothing.
#[test]
fn plan_prints_the_seeds_sql_and_parameters() {
    let db = TestDb::new("plan_seeds");
    copy_dir(&repo().join("migrations"), &db.work.join("migrations"));
    copy_dir(&repo().join("seeds"), &db.work.join("seeds"));
    db.run(&["migrate"]).expect(0);
    let plan = db.run(&["plan"]);
    plan.expect(0);
    for want in [
        "SET statement_timeout",
        "-- seed ",
        "INSERT INTO",
        "-- parameters: $1 = ",
        "INSERT INTO db_init.seed_runs",
    ] {
        assert!(plan.stdout.contains(want), "{want}: {}", plan.stdout);
    }
    assert_eq!(
        db.sql("SELECT to_regclass('db_init.seed_runs') IS NULL"),
        "t"
    );
    let sessions = plan.stderr.matches("connected to").count();
    assert_eq!(sessions, 1, "one session: {}", plan.stderr);
}

/// The shape of a YAML seed is checked before anything connects, with messages that say what
/// is wrong (not serde's "did not match any variant").
#[test]
fn a_yaml_seed_with_a_bad_key_fails_validate_offline_clearly() {
    let db = TestDb::new("yaml_key_shape");
    write(&db.work.join("migrations"), "0001_t.sql", "SELECT 1;\n");
    let seeds = db.work.join("seeds");
    for (yaml, want) in [
        (
            "table: t\nkey: {a: 1}\nrows: []\n",
            "must be a column name or a list of column names",
        ),
        ("table: t\nkey: []\nrows: []\n", "`key` names no column"),
        (
            "table: t\nkey: [id]\nrows:\n  - { name: x }\n",
            "row 1: key column `id` is missing",
        ),
    ] {
        write(&seeds, "001_t.yaml", yaml);
        let run = db.run(&["validate", "--offline"]);
        run.expect(7);
        assert!(run.stderr.contains(want), "{yaml}: {}", run.stderr);
    }
}
