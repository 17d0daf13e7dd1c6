//! What seeds tell: rows inserted and updated per YAML seed, why a seed was skipped (when and
//! by which replica), an older `db_init.seed_runs` upgraded in place, and online `validate`
//! refusing a YAML seed that does not fit the live tables (exit 7) before anything runs.

use crate::harness::{write, TestDb};

const TABLE: &str =
    "CREATE TABLE settings (id serial PRIMARY KEY, k text UNIQUE NOT NULL, n int);\n";

#[test]
fn yaml_seeds_count_their_rows_and_a_skip_names_when_and_who() {
    let db = TestDb::new("seed_reporting");
    write(&db.work.join("migrations"), "0001_t.sql", TABLE);
    let seeds = db.work.join("seeds");
    let two = "table: settings\nkey: k\nrows:\n  - { k: a, n: 1 }\n  - { k: b, n: 2 }\n";
    write(&seeds, "s.yaml", two);
    let first = db.run(&["run", "--seed-mode", "on-change"]);
    first.expect(0);
    assert!(
        first
            .stderr
            .contains("seeded: 2 row(s) inserted, 0 updated"),
        "{}",
        first.stderr
    );
    write(&seeds, "s.yaml", &two.replace("n: 2", "n: 3"));
    let second = db.run(&["run", "--seed-mode", "on-change"]);
    second.expect(0);
    assert!(
        second
            .stderr
            .contains("seeded: 0 row(s) inserted, 1 updated"),
        "{}",
        second.stderr
    );
    let host = db.sql("SELECT run_by FROM db_init.seed_runs");
    assert!(host.contains("(pid "), "{host}");
    // The nothing-to-do start says why its "0 seed(s) run".
    let third = db.run(&["run", "--seed-mode", "on-change"]);
    third.expect(0);
    let at = db.sql(
        "SELECT to_char(last_run_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS\"Z\"') FROM db_init.seed_runs",
    );
    let want = format!("skipped: unchanged since its run at {at} by {host} (seed_mode: on-change)");
    assert!(third.stderr.contains(&want), "{want}\n{}", third.stderr);
    assert!(third.stderr.contains("0 seed(s) run"), "{}", third.stderr);
}

/// A `db_init.seed_runs` made by an earlier db-init, without `run_by`: read as it is, the
/// column added on the next seed run, the old rows kept.
#[test]
fn an_older_seed_runs_table_gains_run_by_and_keeps_its_rows() {
    let db = TestDb::new("seed_runs_upgrade");
    write(&db.work.join("migrations"), "0001_t.sql", TABLE);
    let seeds = db.work.join("seeds");
    write(
        &seeds,
        "a.yaml",
        "table: settings\nkey: k\nrows:\n  - { k: a }\n",
    );
    write(
        &seeds,
        "b.yaml",
        "table: settings\nkey: k\nrows:\n  - { k: b }\n",
    );
    db.run(&["run", "--seed-mode", "on-change"]).expect(0);
    db.sql("ALTER TABLE db_init.seed_runs DROP COLUMN run_by");
    db.sql("DELETE FROM db_init.seed_runs WHERE name = 'b.yaml'");
    let run = db.run(&["run", "--seed-mode", "on-change"]);
    run.expect(0);
    assert!(
        run.stderr.contains("skipped: unchanged since its run at ")
            && run.stderr.contains("1 seed(s) run"),
        "{}",
        run.stderr
    );
    assert_eq!(
        db.sql("SELECT string_agg(name || '=' || (run_by IS NOT NULL), ',' ORDER BY name) FROM db_init.seed_runs"),
        "a.yaml=false,b.yaml=true"
    );
}

#[test]
fn validate_refuses_a_yaml_seed_that_does_not_fit_the_live_tables() {
    let db = TestDb::new("seed_validate_online");
    write(&db.work.join("migrations"), "0001_t.sql", TABLE);
    let seeds = db.work.join("seeds");
    // Its table comes with a pending migration: only the run can check it.
    write(
        &seeds,
        "s.yaml",
        "table: settings\nkey: k\nrows:\n  - { k: a, nope: 1 }\n",
    );
    let pending = db.run(&["validate"]);
    pending.expect(0);
    assert!(
        pending
            .stderr
            .contains("a pending migration or a SQL seed creates or alters settings"),
        "{}",
        pending.stderr
    );
    db.run(&["migrate"]).expect(0);
    for (yaml, want) in [
        (
            "table: settings\nkey: k\nrows:\n  - { k: a, nope: 1 }\n",
            "row 1: table `settings` has no column `nope`",
        ),
        (
            "table: settings\nkey: k\nrows:\n  - { k: a, n: 1 }\n  - { k: b, n: many }\n",
            "s.yaml at row 2, column `n`",
        ),
        (
            "table: missing\nkey: k\nrows:\n  - { k: a }\n",
            "table `missing`: no such table",
        ),
    ] {
        write(&seeds, "s.yaml", yaml);
        let run = db.run(&["validate"]);
        run.expect(7);
        assert!(
            run.stderr.contains("seed s.yaml does not fit the database")
                && run.stderr.contains(want),
            "{want}\n{}",
            run.stderr
        );
        let json = db.run(&["validate", "--format", "json"]);
        json.expect(7);
        assert!(
            json.stdout.contains("\"kind\": \"seed\""),
            "{}",
            json.stdout
        );
    }
    assert_eq!(db.sql("SELECT count(*) FROM settings"), "0");
    assert_eq!(
        db.sql("SELECT to_regclass('db_init.seed_runs') IS NULL"),
        "t"
    );
    assert_eq!(db.sql("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state LIKE 'idle in transaction%'"), "0");
}

/// A lookup into a table a pending migration creates, a table a SQL seed creates: only the
/// run can check them, so `validate` passes them (and says so), and the run does them.
#[test]
fn validate_leaves_tables_of_pending_migrations_and_sql_seeds_to_the_run() {
    let db = TestDb::new("seed_validate_later");
    write(&db.work.join("migrations"), "0001_t.sql", TABLE);
    db.run(&["migrate"]).expect(0);
    write(
        &db.work.join("migrations"),
        "0002_roles.sql",
        "CREATE TABLE roles (id serial PRIMARY KEY, name text UNIQUE);\n",
    );
    let seeds = db.work.join("seeds");
    write(
        &seeds,
        "0_roles.sql",
        "INSERT INTO roles (name) VALUES ('admin') ON CONFLICT DO NOTHING;\n\
         CREATE TABLE IF NOT EXISTS extra (k text PRIMARY KEY);\n",
    );
    write(
        &seeds,
        "s.yaml",
        "table: settings\nkey: k\nrows:\n  - { k: a, n: { from: roles, where: { name: admin } } }\n",
    );
    write(
        &seeds,
        "t.yaml",
        "table: extra\nkey: k\nrows:\n  - { k: a }\n",
    );
    let validate = db.run(&["validate"]);
    validate.expect(0);
    for (seed, table) in [("s.yaml", "roles"), ("t.yaml", "extra")] {
        assert!(
            validate.stderr.contains(&format!(
                "seed {seed}: not checked against the catalog, a pending migration or a SQL seed creates or alters {table}"
            )),
            "{}",
            validate.stderr
        );
    }
    db.run(&["run"]).expect(0);
    assert_eq!(db.sql("SELECT n FROM settings"), "1");
    assert_eq!(db.sql("SELECT count(*) FROM extra"), "1");
}
