//! Seed sets: the seeds folder's own files always, then `seeds/<set>/` for each named set in the
//! order named (flag, `DB_INIT_SEED_SETS`, or `seed_sets:` in the config file); records keyed by
//! the path within the folder, so same-named files of two sets never collide, and the folder's
//! own files keep the names earlier versions recorded. A named set without a folder is exit 2.

use crate::harness::{write, Run, TestDb};

fn folders(db: &TestDb) {
    write(
        &db.work.join("migrations"),
        "0001_t.sql",
        "CREATE TABLE log (n serial PRIMARY KEY, what text);\nCREATE TABLE users (email text PRIMARY KEY, name text);\n",
    );
    let seeds = db.work.join("seeds");
    write(
        &seeds,
        "01_base.sql",
        "INSERT INTO log (what) VALUES ('base');\n",
    );
    for set in ["staging", "demo", "prod"] {
        write(
            &seeds.join(set),
            "users.yaml",
            &format!("table: users\nkey: email\nrows:\n  - {{ email: {set}@example.com, name: {set} }}\n"),
        );
        write(
            &seeds.join(set),
            "log.sql",
            &format!("INSERT INTO log (what) VALUES ('{set}');\n"),
        );
    }
}

fn run_env(db: &TestDb, sets: &str) -> Run {
    Run::from(
        db.cmd()
            .args(["run", "--seed-mode", "on-change"])
            .env("DB_INIT_SEED_SETS", sets)
            .output()
            .unwrap_or_else(|e| panic!("{e}")),
    )
}

#[test]
fn sets_run_after_the_folder_in_order_with_records_by_path() {
    let db = TestDb::new("seed_sets");
    folders(&db);
    // An earlier release, without sets: the folder's own file is recorded by its name.
    db.run(&["run", "--seed-mode", "on-change"]).expect(0);
    let first = run_env(&db, "staging,demo");
    first.expect(0);
    assert!(
        first.stderr.contains("skipped: unchanged") && first.stderr.contains("seed=01_base.sql"),
        "{}",
        first.stderr
    );
    assert!(first.stderr.contains("4 seed(s) run"), "{}", first.stderr);
    assert_eq!(
        db.sql("SELECT string_agg(what, ',' ORDER BY n) FROM log"),
        "base,staging,demo"
    );
    assert_eq!(
        db.sql("SELECT string_agg(name, ',' ORDER BY name) FROM db_init.seed_runs"),
        "01_base.sql,demo/log.sql,demo/users.yaml,staging/log.sql,staging/users.yaml"
    );
    assert_eq!(
        db.sql("SELECT string_agg(name, ',' ORDER BY email) FROM users"),
        "demo,staging"
    );
    // Same-named files of two sets are two seeds: changing one reruns it alone.
    let again = run_env(&db, "staging,demo");
    again.expect(0);
    assert!(again.stderr.contains("0 seed(s) run"), "{}", again.stderr);
    write(
        &db.work.join("seeds/demo"),
        "users.yaml",
        "table: users\nkey: email\nrows:\n  - { email: demo@example.com, name: Demo }\n",
    );
    let changed = run_env(&db, "staging,demo");
    changed.expect(0);
    assert!(
        changed.stderr.contains("1 seed(s) run") && changed.stderr.contains("seed=demo/users.yaml"),
        "{}",
        changed.stderr
    );
    // The config file's list, in its order.
    write(&db.work, "db-init.yaml", "seed_sets: [prod, staging]\n");
    db.sql("DELETE FROM log");
    db.run(&["run", "--seed-mode", "on-change"]).expect(0);
    assert_eq!(
        db.sql("SELECT string_agg(what, ',' ORDER BY n) FROM log"),
        "prod"
    );
}

#[test]
fn a_named_set_without_a_folder_is_a_configuration_error() {
    let db = TestDb::new("seed_sets_missing");
    folders(&db);
    let run = run_env(&db, "staging,qa");
    run.expect(2);
    assert!(
        run.stderr.contains("seeds/qa") && run.stderr.contains("seed_sets names `qa`"),
        "{}",
        run.stderr
    );
    assert_eq!(
        db.sql("SELECT to_regclass('db_init.schema_migrations') IS NULL"),
        "t"
    );
    let bad = run_env(&db, "../etc");
    bad.expect(2);
    assert!(bad.stderr.contains("not a folder name"), "{}", bad.stderr);
}
