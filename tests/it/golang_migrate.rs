//! golang-migrate folders (issue 21): `N_name.up.sql` applied in version order, the history
//! `schema_migrations(version, dirty)` kept as golang-migrate keeps it (one row, the
//! high-water mark, created with its DDL); its rows honoured, a dirty one refused naming
//! `migrate force`, a mark newer than the folder (a rollback) a warning.

use crate::harness::{write, TestDb};
use crate::migrate::schema_dump;

/// golang-migrate's postgres driver's DDL for its table (ensureVersionTable).
const DDL: &str =
    "CREATE TABLE IF NOT EXISTS \"public\".\"schema_migrations\" (version bigint not null primary key, dirty boolean not null)";

fn folder(db: &TestDb) {
    let dir = db.work.join("db/migrations");
    write(
        &dir,
        "1_init.up.sql",
        "CREATE TABLE users (id serial PRIMARY KEY, email text UNIQUE);\n",
    );
    write(&dir, "1_init.down.sql", "DROP TABLE users;\n");
    write(
        &dir,
        "2_posts.up.sql",
        "CREATE TABLE posts (id serial PRIMARY KEY, user_id int REFERENCES users);\n",
    );
    write(&dir, "2_posts.down.sql", "DROP TABLE posts;\n");
    // Files golang-migrate's parser cannot read are ignored, as it ignores them.
    write(&dir, "README.md", "run with migrate -path db/migrations\n");
}

fn mark(db: &TestDb) -> String {
    db.sql("SELECT string_agg(version || ' ' || dirty, ',') FROM public.schema_migrations")
}

#[test]
fn a_golang_migrate_folder_keeps_one_row_the_high_water_mark() {
    let db = TestDb::new("gm_apply");
    folder(&db);
    let run = db.run(&["run", "--migrations", "db/migrations"]);
    run.expect(0);
    assert!(
        run.stderr.contains("2 migration(s) applied"),
        "{}",
        run.stderr
    );
    assert_eq!(mark(&db), "2 false");
    // The table is golang-migrate's own, to the byte in pg_dump.
    let other = TestDb::new("gm_ddl");
    other.sql(DDL);
    let table = |d: &TestDb| {
        schema_dump(d)
            .split("\n\n")
            .filter(|p| p.contains("schema_migrations"))
            .map(str::trim)
            .collect::<Vec<_>>()
            .join("\n\n")
    };
    assert_eq!(table(&db), table(&other));
    let status = db.run(&[
        "status",
        "--migrations",
        "db/migrations",
        "--format",
        "json",
    ]);
    status.expect(0);
    assert!(
        status.stdout.contains("\"layout\": \"golang-migrate\""),
        "{}",
        status.stdout
    );
}

#[test]
fn golang_migrates_own_rows_are_honoured_and_a_dirty_one_stops_the_run() {
    let db = TestDb::new("gm_rows");
    folder(&db);
    // Where golang-migrate left the database: version 1 applied.
    db.sql(DDL);
    db.sql("CREATE TABLE users (id serial PRIMARY KEY, email text UNIQUE)");
    db.sql("INSERT INTO schema_migrations VALUES (1, false)");
    db.run(&["run", "--migrations", "db/migrations"]).expect(0);
    assert_eq!(mark(&db), "2 false");
    // A migration that failed half way under golang-migrate: the mark is dirty.
    db.sql("UPDATE schema_migrations SET dirty = true");
    write(
        &db.work.join("db/migrations"),
        "3_tags.up.sql",
        "CREATE TABLE tags (x int);\n",
    );
    let run = db.run(&["run", "--migrations", "db/migrations"]);
    run.expect(7);
    assert!(
        run.stderr
            .contains("version 2: golang-migrate started this migration and never finished it")
            && run.stderr.contains("`migrate force 2`"),
        "{}",
        run.stderr
    );
    assert_eq!(db.sql("SELECT to_regclass('tags') IS NULL"), "t");
    db.sql("UPDATE schema_migrations SET dirty = false");
    db.run(&["run", "--migrations", "db/migrations"]).expect(0);
    assert_eq!(mark(&db), "3 false");
    // An older release's folder (a rollback): the mark is newer than every file, a warning.
    std::fs::remove_file(db.work.join("db/migrations/3_tags.up.sql"))
        .unwrap_or_else(|e| panic!("{e}"));
    let older = db.run(&["run", "--migrations", "db/migrations"]);
    older.expect(0);
    assert!(older.stderr.contains("newer"), "{}", older.stderr);
    // A mark between the files names a file the folder lost: refused.
    db.sql("UPDATE schema_migrations SET version = 1");
    write(
        &db.work.join("db/migrations"),
        "0_base.up.sql",
        "SELECT 1;\n",
    );
    std::fs::remove_file(db.work.join("db/migrations/1_init.up.sql"))
        .unwrap_or_else(|e| panic!("{e}"));
    db.run(&["run", "--migrations", "db/migrations"]).expect(7);
}

/// golang-migrate's lock key for `db`, computed outside db-init (Python's zlib): the CRC32 of
/// "schema\0table\0database" times golang-migrate's salt, in 32 bits (GenerateAdvisoryLockId).
fn golang_migrate_key(db: &TestDb) -> String {
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import sys, zlib; print((zlib.crc32(('public\\0schema_migrations\\0' + sys.argv[1]).encode()) * 1486364155) & 0xffffffff)",
            &db.name,
        ])
        .output()
        .unwrap_or_else(|e| panic!("python3: {e}"));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A mixed rollout: golang-migrate at work (its lock held) makes db-init wait, not race.
#[test]
fn golang_migrates_own_lock_is_waited_for() {
    let db = TestDb::new("gm_lock");
    folder(&db);
    let key = golang_migrate_key(&db);
    let mut migrate = crate::harness::hold_advisory_lock(&db.name, &key, "migrate");
    let run = db.run(&[
        "run",
        "--migrations",
        "db/migrations",
        "--lock-timeout",
        "2s",
    ]);
    let _ = migrate.kill();
    let _ = migrate.wait();
    run.expect(5);
    assert!(run.stderr.contains(&key), "{}", run.stderr);
    assert_eq!(
        db.sql("SELECT to_regclass('public.schema_migrations') IS NULL"),
        "t"
    );
}
