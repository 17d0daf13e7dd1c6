//! Flyway folders (issue 21): `V<version>__<description>.sql` in Flyway's version order, then
//! `R__` repeatables; `flyway_schema_history` created with Flyway's DDL and filled with the rows
//! Flyway writes, their checksums as the JDK computes them (tests/fixtures/flyway/*.expected,
//! made by scripts/flyway/Expected.java); Flyway's rows honoured, a changed repeatable run
//! again, a failed row refused naming `flyway repair`, Flyway's own lock held.

use std::path::{Path, PathBuf};

use crate::harness::{copy_dir, hold_advisory_lock, repo, write, TestDb};
use crate::migrate::schema_dump;

/// Flyway's DDL for its table (flyway-database-postgresql, PostgreSQLDatabase), as it sends it.
const FLYWAY_DDL: &str = "CREATE TABLE \"public\".\"flyway_schema_history\" (
    \"installed_rank\" INT NOT NULL,
    \"version\" VARCHAR(50),
    \"description\" VARCHAR(200) NOT NULL,
    \"type\" VARCHAR(20) NOT NULL,
    \"script\" VARCHAR(1000) NOT NULL,
    \"checksum\" INTEGER,
    \"installed_by\" VARCHAR(100) NOT NULL,
    \"installed_on\" TIMESTAMP NOT NULL DEFAULT now(),
    \"execution_time\" INTEGER NOT NULL,
    \"success\" BOOLEAN NOT NULL
);
ALTER TABLE \"public\".\"flyway_schema_history\" ADD CONSTRAINT \"flyway_schema_history_pk\" PRIMARY KEY (\"installed_rank\");
CREATE INDEX \"flyway_schema_history_s_idx\" ON \"public\".\"flyway_schema_history\" (\"success\");";

/// Flyway's lock for `"public"."flyway_schema_history"`, as the JDK computes it
/// (`java scripts/flyway/Expected.java --lock-key public flyway_schema_history`).
const FLYWAY_LOCK: &str = "77433833903597";

fn fixture() -> PathBuf {
    repo().join("tests/fixtures/flyway/basic")
}

fn folder(db: &TestDb) -> PathBuf {
    let to = db.work.join("db/migration");
    copy_dir(&fixture(), &to);
    to
}

/// The expected rows, computed by the JDK: rank, version, description, type, script, checksum.
fn expected() -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(repo().join("tests/fixtures/flyway/basic.expected"))
        .unwrap_or_else(|e| panic!("{e}"));
    text.lines()
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect()
}

fn rows(db: &TestDb) -> String {
    db.sql(
        "SELECT string_agg(concat_ws(E'\\t', installed_rank, coalesce(version, ''), description, type, \
         script, checksum), E'\\n' ORDER BY installed_rank) FROM public.flyway_schema_history",
    )
}

fn tsv(rows: &[Vec<String>]) -> String {
    rows.iter()
        .map(|r| r.join("\t"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The row `flyway migrate` writes for script `row` of the expected rows.
fn flyway_applied(db: &TestDb, dir: &Path, row: &[String]) {
    let [rank, version, description, kind, script, checksum] = row else {
        panic!("{row:?}");
    };
    // Flyway reads scripts without their BOM, as db-init sends them.
    let sql = std::fs::read_to_string(dir.join(script)).unwrap_or_else(|e| panic!("{e}"));
    db.sql(sql.trim_start_matches('\u{feff}'));
    let version = match version.as_str() {
        "" => "NULL".to_string(),
        v => format!("'{v}'"),
    };
    db.sql(&format!(
        "INSERT INTO public.flyway_schema_history (installed_rank, version, description, type, script, \
         checksum, installed_by, execution_time, success) VALUES ({rank}, {version}, '{description}', \
         '{kind}', '{script}', {checksum}, current_user, 12, true)"
    ));
}

#[test]
fn a_flyway_folder_is_applied_with_flyways_table_and_the_jdks_checksums() {
    let db = TestDb::new("flyway_apply");
    folder(&db);
    let run = db.run(&["run", "--migrations", "db/migration"]);
    run.expect(0);
    assert!(
        run.stderr.contains("5 migration(s) applied"),
        "{}",
        run.stderr
    );
    assert_eq!(rows(&db), tsv(&expected()));
    assert_eq!(
        db.sql(
            "SELECT bool_and(success AND installed_by = current_user AND execution_time >= 0 \
             AND installed_on <= now()) FROM public.flyway_schema_history"
        ),
        "t"
    );
    // The table is the one Flyway creates, to the byte in pg_dump.
    let other = TestDb::new("flyway_ddl");
    other.sql(FLYWAY_DDL);
    let table = |d: &TestDb| {
        schema_dump(d)
            .split("\n\n")
            .filter(|part| part.contains("flyway_schema_history"))
            .map(str::trim)
            .collect::<Vec<_>>()
            .join("\n\n")
    };
    assert_eq!(table(&db), table(&other));
    // The view of the repeatable is there, the index built outside a transaction.
    assert_eq!(db.sql("SELECT count(*) FROM user_posts"), "0");
    assert_eq!(
        db.sql("SELECT indisvalid FROM pg_index WHERE indexrelid = 'posts_user_idx'::regclass"),
        "t"
    );
    let again = db.run(&["run", "--migrations", "db/migration"]);
    again.expect(0);
    assert!(
        again.stderr.contains("0 migration(s) applied") || again.stderr.contains("nothing to do"),
        "{}",
        again.stderr
    );
    let status = db.run(&["status", "--migrations", "db/migration", "--format", "json"]);
    status.expect(0);
    assert!(
        status.stdout.contains("\"layout\": \"flyway\""),
        "{}",
        status.stdout
    );
}

#[test]
fn a_changed_repeatable_runs_again_with_a_new_row_and_a_changed_version_is_refused() {
    let db = TestDb::new("flyway_repeat");
    let dir = folder(&db);
    db.run(&["run", "--migrations", "db/migration"]).expect(0);
    write(
        &dir,
        "R__user_posts_view.sql",
        "CREATE OR REPLACE VIEW user_posts AS\nSELECT u.email, count(p.id) AS posts, max(p.id) AS last\n\
         FROM users u LEFT JOIN posts p ON p.user_id = u.id\nGROUP BY u.email;\n",
    );
    let run = db.run(&["run", "--migrations", "db/migration"]);
    run.expect(0);
    assert!(
        run.stderr.contains("1 migration(s) applied"),
        "{}",
        run.stderr
    );
    assert_eq!(
        db.sql(
            "SELECT string_agg(installed_rank || ' ' || (version IS NULL) || ' ' || description, ',' \
             ORDER BY installed_rank) FROM public.flyway_schema_history WHERE script = 'R__user_posts_view.sql'"
        ),
        "5 true user posts view,6 true user posts view"
    );
    assert_eq!(db.sql("SELECT count(last) FROM user_posts"), "0");
    // Line endings are not part of Flyway's checksum: a CRLF checkout changes nothing.
    let v1 = std::fs::read_to_string(dir.join("V1__create_users.sql")).unwrap_or_default();
    write(&dir, "V1__create_users.sql", &v1.replace('\n', "\r\n"));
    db.run(&["run", "--migrations", "db/migration"]).expect(0);
    write(
        &dir,
        "V1__create_users.sql",
        &v1.replace("email text", "mail text"),
    );
    let edited = db.run(&["run", "--migrations", "db/migration"]);
    edited.expect(7);
    assert!(
        edited.stderr.contains("V1__create_users.sql"),
        "{}",
        edited.stderr
    );
}

#[test]
fn rows_flyway_wrote_are_honoured_and_a_failed_one_names_flyway_repair() {
    let db = TestDb::new("flyway_rows");
    let dir = folder(&db);
    db.sql(FLYWAY_DDL);
    let want = expected();
    for row in want.iter().take(2) {
        flyway_applied(&db, &dir, row);
    }
    let status = db.run(&["status", "--migrations", "db/migration"]);
    status.expect(10);
    assert!(
        status.stdout.contains("2 applied, 3 pending"),
        "{}",
        status.stdout
    );
    // Versions as Flyway writes them, not the rank db-init orders by.
    assert!(
        status.stdout.contains("applied      1.1 ")
            && status.stdout.contains("pending      repeatable "),
        "{}",
        status.stdout
    );
    db.run(&["run", "--migrations", "db/migration"]).expect(0);
    assert_eq!(rows(&db), tsv(&want));
    // A version below the newest applied is refused, as Flyway refuses it (outOfOrder false).
    write(&dir, "V1_5__late.sql", "CREATE TABLE late (id int);\n");
    let late = db.run(&["run", "--migrations", "db/migration"]);
    late.expect(7);
    assert!(late.stderr.contains("V1_5__late.sql"), "{}", late.stderr);
    db.run(&[
        "run",
        "--migrations",
        "db/migration",
        "--out-of-order",
        "allow",
    ])
    .expect(0);
    // A failed row (a run outside a transaction that broke half way) stops everything.
    db.sql(
        "INSERT INTO public.flyway_schema_history (installed_rank, version, description, type, script, \
         checksum, installed_by, execution_time, success) VALUES (7, '11', 'broken', 'SQL', \
         'V11__broken.sql', 1, current_user, 5, false)",
    );
    write(&dir, "V11__broken.sql", "SELECT 1;\n");
    let failed = db.run(&["run", "--migrations", "db/migration"]);
    failed.expect(7);
    assert!(failed.stderr.contains("flyway repair"), "{}", failed.stderr);
}

/// A mixed rollout: Flyway's own migrator at work (its lock held) makes db-init wait for it,
/// and db-init holds Flyway's lock while it migrates.
#[test]
fn flyways_own_lock_is_waited_for_and_held() {
    let db = TestDb::new("flyway_lock");
    folder(&db);
    let mut flyway = hold_advisory_lock(&db.name, FLYWAY_LOCK, "flyway");
    let run = db.run(&[
        "run",
        "--migrations",
        "db/migration",
        "--lock-timeout",
        "2s",
    ]);
    let _ = flyway.kill();
    let _ = flyway.wait();
    run.expect(5);
    assert!(run.stderr.contains(FLYWAY_LOCK), "{}", run.stderr);
    assert_eq!(
        db.sql("SELECT to_regclass('public.flyway_schema_history') IS NULL"),
        "t"
    );
    crate::harness::wait_until(
        "the holder to end",
        std::time::Duration::from_secs(30),
        || db.sql("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted") == "0",
    );
    db.run(&["run", "--migrations", "db/migration"]).expect(0);
}

/// The expected rows were computed by the JDK itself: the committed file is what
/// scripts/flyway/Expected.java prints for the fixture.
#[test]
#[ignore = "needs java (CI installs a JDK)"]
fn the_expected_rows_are_the_jdks() {
    for folder in [
        "tests/fixtures/flyway/basic",
        "tests/fixtures/real/flyway/conductor-oss-conductor",
    ] {
        let out = std::process::Command::new("java")
            .arg(repo().join("scripts/flyway/Expected.java"))
            .arg(repo().join(folder))
            .output()
            .unwrap_or_else(|e| panic!("java: {e}"));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let committed = std::fs::read_to_string(repo().join(format!("{folder}.expected")))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(String::from_utf8_lossy(&out.stdout), committed, "{folder}");
    }
    let key = std::process::Command::new("java")
        .arg(repo().join("scripts/flyway/Expected.java"))
        .args(["--lock-key", "public", "flyway_schema_history"])
        .output()
        .unwrap_or_else(|e| panic!("java: {e}"));
    assert_eq!(String::from_utf8_lossy(&key.stdout).trim(), FLYWAY_LOCK);
}

/// A placeholder Flyway would replace is refused before anything runs, naming where it is.
#[test]
fn a_flyway_placeholder_is_refused_before_anything_runs() {
    let db = TestDb::new("flyway_placeholder");
    let dir = db.work.join("db/migration");
    write(&dir, "V1__a.sql", "CREATE TABLE a (id int);\n");
    write(
        &dir,
        "V2__b.sql",
        "SELECT 1;\nGRANT SELECT ON a TO ${app_user};\n",
    );
    let run = db.run(&["run", "--migrations", "db/migration"]);
    run.expect(7);
    assert!(run.stderr.contains("V2__b.sql:2:22"), "{}", run.stderr);
    assert_eq!(db.sql("SELECT to_regclass('public.a') IS NULL"), "t");
}

#[test]
fn a_flyway_callback_is_refused_and_a_misnamed_script_is_named_as_ignored() {
    let db = TestDb::new("flyway_callback");
    let dir = db.work.join("db/migration");
    write(&dir, "V1__a.sql", "CREATE TABLE a (id int);\n");
    write(
        &dir,
        "afterMigrate__grants.sql",
        "GRANT SELECT ON a TO PUBLIC;\n",
    );
    let run = db.run(&["run", "--migrations", "db/migration"]);
    run.expect(7);
    assert!(
        run.stderr.contains("afterMigrate__grants.sql")
            && run.stderr.contains("callback (afterMigrate)"),
        "{}",
        run.stderr
    );
    assert_eq!(db.sql("SELECT to_regclass('public.a') IS NULL"), "t");

    // A name Flyway passes over (one underscore) is passed over too, and said so.
    std::fs::remove_file(dir.join("afterMigrate__grants.sql")).unwrap_or_else(|e| panic!("{e}"));
    write(&dir, "V2_b.sql", "CREATE TABLE b (id int);\n");
    let run = db.run(&["run", "--migrations", "db/migration"]);
    run.expect(0);
    assert!(
        run.stderr
            .contains("V2_b.sql: ignored, not a Flyway migration name"),
        "{}",
        run.stderr
    );
    assert_eq!(db.sql("SELECT to_regclass('public.b') IS NULL"), "t");
    assert_eq!(
        db.sql("SELECT count(*) FROM public.flyway_schema_history"),
        "1"
    );
}

/// Flyway's `defaultSchema` (`history.schema`): Flyway creates the schema with its table and
/// writes its schema marker (rank 0, type SCHEMA, the quoted name as script), and runs the
/// scripts with that schema first on the search path, so their unqualified names land there.
#[test]
fn a_default_schema_is_created_with_flyways_marker_and_the_scripts_run_in_it() {
    let db = TestDb::new("flyway_schema");
    let dir = db.work.join("db/migration");
    write(&dir, "V1__a.sql", "CREATE TABLE a (id int);\n");
    let args = [
        "run",
        "--migrations",
        "db/migration",
        "--history-schema",
        "app",
    ];
    db.run(&args).expect(0);
    assert_eq!(
        db.sql(
            "SELECT string_agg(concat_ws(',', installed_rank, coalesce(version, '-'), description, type, \
             script, coalesce(checksum::text, '-'), installed_by = current_user, execution_time, success), \
             E'\\n' ORDER BY installed_rank) FROM app.flyway_schema_history WHERE installed_rank = 0"
        ),
        "0,-,<< Flyway Schema Creation >>,SCHEMA,\"app\",-,t,0,t"
    );
    assert_eq!(
        db.sql("SELECT to_regclass('app.a') IS NOT NULL AND to_regclass('public.a') IS NULL"),
        "t"
    );
    write(&dir, "V2__b.sql", "CREATE TABLE b (id int);\n");
    db.run(&args).expect(0);
    assert_eq!(
        db.sql("SELECT string_agg(installed_rank || ' ' || type, ',' ORDER BY installed_rank) FROM app.flyway_schema_history"),
        "0 SCHEMA,1 SQL,2 SQL"
    );
    assert_eq!(db.sql("SELECT to_regclass('app.b') IS NOT NULL"), "t");
    // A schema that was there before gets no marker: Flyway did not create it.
    let other = TestDb::new("flyway_schema_there");
    other.sql("CREATE SCHEMA app");
    write(
        &other.work.join("db/migration"),
        "V1__a.sql",
        "CREATE TABLE a (id int);\n",
    );
    other.run(&args).expect(0);
    assert_eq!(
        other.sql("SELECT string_agg(installed_rank || ' ' || type, ',' ORDER BY installed_rank) FROM app.flyway_schema_history"),
        "1 SQL"
    );
}

#[test]
fn two_repeatables_of_one_description_are_refused_by_description() {
    let db = TestDb::new("flyway_two_repeatables");
    let dir = db.work.join("db/migration");
    write(&dir, "V1__a.sql", "CREATE TABLE a (id int);\n");
    write(&dir, "R__views.sql", "CREATE VIEW v AS SELECT 1;\n");
    write(
        &dir.join("more"),
        "R__views.sql",
        "CREATE VIEW w AS SELECT 1;\n",
    );
    let run = db.run(&["run", "--migrations", "db/migration"]);
    run.expect(7);
    assert!(
        run.stderr
            .contains("repeatable \"views\" is defined twice: R__views.sql and more/R__views.sql"),
        "{}",
        run.stderr
    );
    assert_eq!(db.sql("SELECT to_regclass('public.a') IS NULL"), "t");
}

/// First contact with a database whose Flyway history lives in another schema: the hint names
/// that table and the setting that points db-init at it (Flyway's `defaultSchema`).
#[test]
fn a_flyway_history_kept_in_another_schema_is_named_with_its_setting() {
    let db = TestDb::new("flyway_elsewhere");
    db.sql("CREATE SCHEMA app");
    db.sql(&FLYWAY_DDL.replace("\"public\"", "\"app\""));
    db.sql("CREATE TABLE a (id int)");
    let dir = db.work.join("db/migration");
    write(&dir, "V1__a.sql", "CREATE TABLE a (id int);\n");
    let run = db.run(&["run", "--migrations", "db/migration"]);
    run.expect(7);
    assert!(
        run.stderr
            .contains("app.flyway_schema_history (which looks like a Flyway history table)")
            && run
                .stderr
                .contains("history.schema / history.table (Flyway's defaultSchema / table)"),
        "{}",
        run.stderr
    );
}
