//! Exit 9 for every database error outside a migration or a seed, one test per path: 6 says a
//! migration failed and 8 that a seed did, so neither may stand for the lock, the history, the
//! seed-run records, a baseline or a repair. Each error is a real refusal by the server: a role
//! without the privilege the step needs.

use crate::harness::{server, write, TestDb};

const PASSWORD: &str = "exit-codes-pw";

/// A login role that owns nothing in `db` (the tables are the superuser's); its URL.
fn role(db: &TestDb) -> String {
    let role = format!("{}_r", db.name);
    db.sql(&format!(
        "CREATE ROLE \"{role}\" LOGIN PASSWORD '{PASSWORD}'; \
         GRANT CONNECT ON DATABASE \"{0}\" TO \"{role}\"",
        db.name
    ));
    format!(
        "postgres://{role}:{PASSWORD}@{}:{}/{}",
        server().host,
        server().port,
        db.name
    )
}

fn as_role(db: &TestDb, url: &str, args: &[&str]) -> crate::harness::Run {
    let mut all = args.to_vec();
    all.extend(["--database-url", url]);
    db.run(&all)
}

/// A numbered folder's history table (db-init's own).
const HISTORY: &str = "db_init.schema_migrations";

/// The role may read the history table, nothing more (the seed-run records stay closed).
fn grant_history_read(db: &TestDb) {
    let r = format!("\"{}_r\"", db.name);
    db.sql(&format!(
        "GRANT USAGE ON SCHEMA db_init TO {r}; GRANT SELECT ON {HISTORY} TO {r}"
    ));
}

fn migrations(db: &TestDb) {
    write(
        &db.work.join("migrations"),
        "0001_a.sql",
        "CREATE TABLE a (id int);\n",
    );
}

/// The role may not take advisory locks.
#[test]
fn the_lock_refused_is_9() {
    let db = TestDb::new("exit9_lock");
    migrations(&db);
    let url = role(&db);
    db.sql("REVOKE EXECUTE ON FUNCTION pg_try_advisory_lock_shared(bigint) FROM PUBLIC");
    let run = as_role(&db, &url, &["migrate"]);
    db.sql("GRANT EXECUTE ON FUNCTION pg_try_advisory_lock_shared(bigint) TO PUBLIC");
    run.expect(9);
    assert!(run.stderr.contains("42501"), "{}", run.stderr);
}

/// The history table exists but the role may not read it.
#[test]
fn the_history_unreadable_is_9() {
    let db = TestDb::new("exit9_history");
    migrations(&db);
    db.run(&["migrate"]).expect(0);
    let url = role(&db);
    db.sql(&format!(
        "GRANT USAGE ON SCHEMA db_init TO \"{}_r\"",
        db.name
    ));
    let run = as_role(&db, &url, &["migrate"]);
    run.expect(9);
    assert!(run.stderr.contains("42501"), "{}", run.stderr);
}

/// The role may not create the history table's schema.
#[test]
fn the_history_not_creatable_is_9() {
    let db = TestDb::new("exit9_create");
    migrations(&db);
    let url = role(&db);
    let run = as_role(&db, &url, &["migrate"]);
    run.expect(9);
    assert!(run.stderr.contains("42501"), "{}", run.stderr);
    assert_eq!(db.sql("SELECT to_regclass('a') IS NULL"), "t");
}

/// The migrations are applied; the seed-run records can be neither read (idle check) nor
/// created (the seed step).
#[test]
fn the_seed_runs_unreadable_or_not_creatable_is_9() {
    let db = TestDb::new("exit9_seed_runs");
    migrations(&db);
    write(
        &db.work.join("seeds"),
        "01_a.sql",
        "INSERT INTO a VALUES (1);\n",
    );
    db.run(&["migrate"]).expect(0);
    let url = role(&db);
    let r = format!("\"{}_r\"", db.name);
    grant_history_read(&db);
    db.sql(&format!(
        "GRANT USAGE ON SCHEMA public TO {r}; GRANT ALL ON a TO {r}"
    ));
    let run = as_role(&db, &url, &["run"]);
    run.expect(9);
    assert!(
        run.stderr.contains("creating db_init.seed_runs"),
        "{}",
        run.stderr
    );
    db.run(&["run"]).expect(0);
    let run = as_role(&db, &url, &["run"]);
    run.expect(9);
    assert!(run.stderr.contains("42501"), "{}", run.stderr);
    assert_eq!(db.sql("SELECT count(*) FROM a"), "1");
}

/// `baseline` may read the history but not write it.
#[test]
fn a_baseline_not_recorded_is_9() {
    let db = TestDb::new("exit9_baseline");
    migrations(&db);
    db.run(&["migrate"]).expect(0);
    write(
        &db.work.join("migrations"),
        "0002_b.sql",
        "CREATE TABLE b (id int);\n",
    );
    let url = role(&db);
    grant_history_read(&db);
    let run = as_role(&db, &url, &["baseline", "--migration", "0002_b.sql"]);
    run.expect(9);
    assert!(run.stderr.contains("42501"), "{}", run.stderr);
    assert_eq!(db.sql(&format!("SELECT count(*) FROM {HISTORY}")), "1");
}

/// `repair` may read the history but not update it.
#[test]
fn a_repair_not_recorded_is_9() {
    let db = TestDb::new("exit9_repair");
    migrations(&db);
    db.run(&["migrate"]).expect(0);
    write(
        &db.work.join("migrations"),
        "0001_a.sql",
        "CREATE TABLE a (id int); -- edited\n",
    );
    let url = role(&db);
    grant_history_read(&db);
    let run = as_role(&db, &url, &["repair", "--all-changed"]);
    run.expect(9);
    assert!(run.stderr.contains("42501"), "{}", run.stderr);
}
