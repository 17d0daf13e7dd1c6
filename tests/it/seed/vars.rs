//! `${NAME}` in SQL and YAML seeds: values from the environment and from `NAME_FILE` (secrets),
//! quoted as literals in SQL and bound in YAML, a missing one refused before anything runs
//! (exit 7, `file:line:column`), and a secret absent from every output: logs at debug level,
//! plan, errors, the run records.

use crate::harness::{write, Run, TestDb};

const SECRET: &str = "pa$$'w0rd-\\-SECRET";

const MIGRATION: &str =
    "CREATE TABLE admins (email text PRIMARY KEY, pw text NOT NULL, plan text, note text);\n\
     CREATE TABLE notes (k text PRIMARY KEY, v text);\n\
     CREATE TABLE counts (k text PRIMARY KEY, n int);\n";

fn run(db: &TestDb, args: &[&str], secret_file: &std::path::Path) -> Run {
    Run::from(
        db.cmd()
            .args(args)
            .env("ADMIN_EMAIL", "root@example.com")
            .env("ADMIN_PASSWORD_FILE", secret_file)
            .output()
            .unwrap_or_else(|e| panic!("{e}")),
    )
}

#[track_caller]
fn assert_hidden(outputs: &[&Run]) {
    for r in outputs {
        for text in [&r.stdout, &r.stderr] {
            assert!(!text.contains("SECRET"), "the secret leaked:\n{text}");
        }
    }
}

#[test]
fn values_from_the_environment_and_secret_files_never_show() {
    let db = TestDb::new("seed_vars");
    write(&db.work.join("migrations"), "0001_t.sql", MIGRATION);
    let secret = db.work.join("admin_password");
    std::fs::write(&secret, format!("{SECRET}\n")).unwrap_or_else(|e| panic!("{e}"));
    let seeds = db.work.join("seeds");
    write(
        &seeds,
        "01_admin.sql",
        "-- the admin, ${NOT_NEEDED} in a comment stays as written\n\
         INSERT INTO admins (email, pw, plan) VALUES (${ADMIN_EMAIL}, ${ADMIN_PASSWORD}, ${PLAN:-pro})\n\
         ON CONFLICT (email) DO UPDATE SET pw = excluded.pw;\n\
         DO $body$ BEGIN UPDATE admins SET note = ${ADMIN_EMAIL} || ' $${KEPT}'; END $body$;\n\
         INSERT INTO notes VALUES ('json', $${\"a\": 1}$$) ON CONFLICT DO NOTHING;\n",
    );
    write(
        &seeds,
        "02_notes.yaml",
        "table: notes\nkey: k\nrows:\n  - { k: who, v: \"${ADMIN_EMAIL}\" }\n  - { k: pw, v: \"${ADMIN_PASSWORD}\" }\n  - { k: esc, v: \"$${ADMIN_EMAIL} ${UNSET:-fallback}\" }\n",
    );
    let debug = run(
        &db,
        &["run", "--log-level", "debug", "--seed-mode", "on-change"],
        &secret,
    );
    debug.expect(0);
    assert_eq!(
        db.sql("SELECT email || '|' || (pw = E'pa$$''w0rd-\\\\-SECRET') || '|' || plan || '|' || note FROM admins"),
        "root@example.com|true|pro|root@example.com ${KEPT}"
    );
    assert_eq!(
        db.sql("SELECT string_agg(k || '=' || (CASE WHEN k = 'pw' THEN (v = E'pa$$''w0rd-\\\\-SECRET')::text ELSE v END), ',' ORDER BY k) FROM notes"),
        "esc=${ADMIN_EMAIL} fallback,json={\"a\": 1},pw=true,who=root@example.com"
    );
    let records = db.sql("SELECT string_agg(name || checksum, ',') FROM db_init.seed_runs");
    assert!(!records.contains("SECRET"), "{records}");
    // Unchanged values: on-change skips; plan shows the names, never the values.
    let again = run(&db, &["run", "--seed-mode", "on-change"], &secret);
    again.expect(0);
    assert!(again.stderr.contains("0 seed(s) run"), "{}", again.stderr);
    db.sql("UPDATE db_init.seed_runs SET last_run_at = last_run_at - interval '1 minute'");
    let plan = run(&db, &["plan"], &secret);
    plan.expect(0);
    assert!(
        plan.stdout.contains("${ADMIN_PASSWORD}") && plan.stdout.contains("\"${ADMIN_PASSWORD}\""),
        "{}",
        plan.stdout
    );
    // A secret is in no checksum, not even hashed (an unsalted hash of a short password can
    // be guessed offline): a rotated one does not rerun an on-change seed; `always` does.
    std::fs::write(&secret, "new-SECRET\n").unwrap_or_else(|e| panic!("{e}"));
    let changed = run(&db, &["run", "--seed-mode", "on-change"], &secret);
    changed.expect(0);
    assert!(
        changed.stderr.contains("0 seed(s) run"),
        "{}",
        changed.stderr
    );
    db.sql("UPDATE db_init.seed_runs SET last_run_at = last_run_at - interval '1 minute'");
    let always = run(&db, &["run"], &secret);
    always.expect(0);
    assert!(always.stderr.contains("2 seed(s) run"), "{}", always.stderr);
    assert_eq!(db.sql("SELECT pw FROM admins"), "new-SECRET");
    // A server error that would quote the value shows the token instead.
    write(
        &db.work.join("seeds"),
        "03_bad.yaml",
        "table: counts\nkey: k\nrows:\n  - { k: a, n: \"${ADMIN_PASSWORD}\" }\n",
    );
    let bad_yaml = run(&db, &["run"], &secret);
    bad_yaml.expect(8);
    assert!(
        bad_yaml.stderr.contains("row 1, column `n`")
            && bad_yaml.stderr.contains("\"${ADMIN_PASSWORD}\""),
        "{}",
        bad_yaml.stderr
    );
    std::fs::remove_file(seeds.join("03_bad.yaml")).unwrap_or_else(|e| panic!("{e}"));
    write(
        &seeds,
        "03_bad.sql",
        "SELECT ${ADMIN_EMAIL};\nSELECT ${ADMIN_PASSWORD}::int;\n",
    );
    let bad_sql = run(&db, &["run"], &secret);
    bad_sql.expect(8);
    assert!(
        bad_sql.stderr.contains("03_bad.sql:2:8") && bad_sql.stderr.contains("${ADMIN_PASSWORD}"),
        "{}",
        bad_sql.stderr
    );
    assert_hidden(&[&debug, &again, &plan, &changed, &bad_yaml, &bad_sql]);
}

#[test]
fn a_missing_variable_stops_the_run_before_anything_applies() {
    let db = TestDb::new("seed_vars_missing");
    write(&db.work.join("migrations"), "0001_t.sql", MIGRATION);
    let seeds = db.work.join("seeds");
    let cases = [
        (
            "a.sql",
            "SELECT 1;\nINSERT INTO notes VALUES ('k', ${NOPE});\n",
            "a.sql:2:32: ${NOPE} is not set",
        ),
        (
            "a.yaml",
            "table: notes\nkey: k\nrows:\n  - { k: x, v: \"a ${NOPE}\" }\n",
            "a.yaml:4:19: ${NOPE} is not set",
        ),
        (
            "a.sql",
            "SELECT '${ADMIN_EMAIL}';\n",
            "a.sql:1:9: a ${...} inside a quoted string",
        ),
    ];
    for (file, text, want) in cases {
        let _ = std::fs::remove_dir_all(&seeds);
        write(&seeds, file, text);
        for args in [&["run"][..], &["validate", "--offline"]] {
            let r = run(&db, args, &db.work.join("no-such-file"));
            r.expect(7);
            assert!(r.stderr.contains(want), "{want}\n{}", r.stderr);
        }
        assert_eq!(
            db.sql("SELECT to_regclass('db_init.schema_migrations') IS NULL"),
            "t",
            "a migration ran"
        );
    }
    // NAME_FILE naming a file that cannot be read is as missing.
    write(&seeds, "a.sql", "SELECT ${ADMIN_PASSWORD};\n");
    let r = run(&db, &["run"], &db.work.join("no-such-file"));
    r.expect(7);
    assert!(
        r.stderr.contains("a.sql:1:8: ADMIN_PASSWORD_FILE names"),
        "{}",
        r.stderr
    );
}
