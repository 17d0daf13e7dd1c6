//! Prisma Migrate folders (issue 21): read as `prisma migrate deploy` reads them, with
//! `_prisma_migrations` created with Prisma's DDL and filled with the rows Prisma writes, in the
//! migration's own transaction; rows Prisma wrote are honoured, a failed one stops the run
//! naming `prisma migrate resolve`, a lock file for another database is refused.

use std::path::PathBuf;

use crate::harness::{copy_dir, hold_advisory_lock, write, Run, TestDb};
use crate::migrate::schema_dump;

/// Prisma's own DDL for its history table (prisma-engines, postgres flavour), as Prisma sends it.
const PRISMA_DDL: &str = "CREATE TABLE _prisma_migrations (
    id                      VARCHAR(36) PRIMARY KEY NOT NULL,
    checksum                VARCHAR(64) NOT NULL,
    finished_at             TIMESTAMPTZ,
    migration_name          VARCHAR(255) NOT NULL,
    logs                    TEXT,
    rolled_back_at          TIMESTAMPTZ,
    started_at              TIMESTAMPTZ NOT NULL DEFAULT now(),
    applied_steps_count     INTEGER NOT NULL DEFAULT 0
);";

const INIT: &str = "20240301093000_init";
const POSTS: &str = "20240315141500_add_posts";

fn folder(db: &TestDb) -> PathBuf {
    let to = db.work.join("prisma/migrations");
    copy_dir(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/prisma/basic"),
        &to,
    );
    to
}

fn sha256(path: &std::path::Path) -> String {
    use std::fmt::Write;
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{e}"));
    let digest = ring::digest::digest(&ring::digest::SHA256, &bytes);
    digest.as_ref().iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The row `prisma migrate deploy` leaves for `name`: inserted when it starts, then one step
/// counted and `finished_at` set.
fn prisma_applied(db: &TestDb, dir: &std::path::Path, name: &str) {
    let sql = std::fs::read_to_string(dir.join(name).join("migration.sql"))
        .unwrap_or_else(|e| panic!("{e}"));
    db.sql(&sql);
    db.sql(&format!(
        "INSERT INTO _prisma_migrations (id, checksum, migration_name) VALUES (gen_random_uuid()::text, '{}', '{name}');\n\
         UPDATE _prisma_migrations SET applied_steps_count = applied_steps_count + 1 WHERE migration_name = '{name}';\n\
         UPDATE _prisma_migrations SET finished_at = now() WHERE migration_name = '{name}'",
        sha256(&dir.join(name).join("migration.sql"))
    ));
}

#[test]
fn a_prisma_folder_is_applied_with_prismas_table_and_rows() {
    let db = TestDb::new("prisma_apply");
    let dir = folder(&db);
    // A stray file, as real folders have: Prisma reads folders only.
    write(&dir, "notes.md", "see the wiki\n");
    let run = db.run(&["run", "--migrations", "prisma/migrations"]);
    run.expect(0);
    assert!(
        run.stderr.contains("2 migration(s) applied"),
        "{}",
        run.stderr
    );
    let rows = db.sql(
        "SELECT string_agg(migration_name || ' ' || checksum || ' ' || applied_steps_count || ' ' \
         || (finished_at >= started_at) || ' ' || (logs IS NULL) || ' ' || (rolled_back_at IS NULL) || ' ' \
         || (id ~ '^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$'), E'\\n' ORDER BY started_at) \
         FROM public._prisma_migrations",
    );
    let want = [INIT, POSTS]
        .iter()
        .map(|n| {
            format!(
                "{n} {} 1 true true true true",
                sha256(&dir.join(n).join("migration.sql"))
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert_eq!(rows, want);
    // The table is the one Prisma creates, to the byte in pg_dump.
    let other = TestDb::new("prisma_ddl");
    other.sql(PRISMA_DDL);
    let table = |d: &TestDb| {
        schema_dump(d)
            .split("\n\n")
            .filter(|part| part.contains("_prisma_migrations"))
            .map(str::trim)
            .collect::<Vec<_>>()
            .join("\n\n")
    };
    assert_eq!(
        table(&db).replace(&db.name, ""),
        table(&other).replace(&other.name, "")
    );
    let again = db.run(&["status", "--migrations", "prisma/migrations"]);
    again.expect(0);
    assert!(again.stdout.contains("Prisma layout"), "{}", again.stdout);
}

#[test]
fn rows_prisma_wrote_are_honoured_and_a_failed_one_stops_the_run() {
    let db = TestDb::new("prisma_rows");
    let dir = folder(&db);
    db.sql(PRISMA_DDL);
    prisma_applied(&db, &dir, INIT);
    let status = db.run(&["status", "--migrations", "prisma/migrations"]);
    status.expect(10);
    assert!(
        status.stdout.contains("1 applied, 1 pending"),
        "{}",
        status.stdout
    );
    // A failed `prisma migrate deploy` of the second: its row started, never finished.
    db.sql(&format!(
        "INSERT INTO _prisma_migrations (id, checksum, migration_name, logs) VALUES \
         (gen_random_uuid()::text, '{}', '{POSTS}', 'A migration failed to apply.')",
        sha256(&dir.join(POSTS).join("migration.sql"))
    ));
    let run = db.run(&["run", "--migrations", "prisma/migrations"]);
    run.expect(7);
    assert!(
        run.stderr.contains(&format!(
            "{POSTS}: Prisma started this migration and never finished it"
        )) && run.stderr.contains(&format!(
            "npx prisma migrate resolve --rolled-back \"{POSTS}\""
        )),
        "{}",
        run.stderr
    );
    assert_eq!(db.sql("SELECT to_regclass('\"Post\"') IS NULL"), "t");
    // What `prisma migrate resolve --rolled-back` does: the row stays, marked rolled back.
    db.sql(&format!(
        "UPDATE _prisma_migrations SET rolled_back_at = now() WHERE migration_name = '{POSTS}'"
    ));
    db.run(&["run", "--migrations", "prisma/migrations"])
        .expect(0);
    assert_eq!(
        db.sql(&format!(
            "SELECT count(*) FILTER (WHERE finished_at IS NOT NULL) || '/' || count(*) FROM _prisma_migrations WHERE migration_name = '{POSTS}'"
        )),
        "1/2"
    );
    assert_eq!(db.sql("SELECT to_regclass('\"Post\"') IS NOT NULL"), "t");
}

#[test]
fn a_failing_prisma_migration_leaves_no_row_and_another_provider_is_refused() {
    let db = TestDb::new("prisma_fail");
    let dir = folder(&db);
    write(
        &dir.join("20240401000000_broken"),
        "migration.sql",
        "ALTER TABLE \"User\" ADD COLUMN \"age\" INTEGER;\nALTER TABLE \"Nope\" ADD COLUMN x int;\n",
    );
    let run = db.run(&["run", "--migrations", "prisma/migrations"]);
    run.expect(6);
    assert_eq!(
        db.sql(
            "SELECT string_agg(migration_name, ',' ORDER BY started_at) FROM _prisma_migrations"
        ),
        format!("{INIT},{POSTS}")
    );
    assert_eq!(
        db.sql("SELECT count(*) FROM information_schema.columns WHERE column_name = 'age'"),
        "0"
    );
    write(&dir, "migration_lock.toml", "provider = \"mysql\"\n");
    let run = db.run(&["status", "--migrations", "prisma/migrations"]);
    run.expect(7);
    assert!(
        run.stdout
            .contains("provider = \"mysql\", not \"postgresql\""),
        "{}",
        run.stdout
    );
}

/// A mixed rollout: Prisma's own migrator at work (its lock 72707369 held, its row started)
/// makes db-init wait for Prisma's lock, not refuse the row as failed; the same row without
/// the lock is a failed deploy (exit 7); db-init holds Prisma's lock while it migrates.
#[test]
fn db_init_and_prismas_migrator_take_turns_on_prismas_lock() {
    let db = TestDb::new("prisma_lock");
    let dir = folder(&db);
    db.sql(PRISMA_DDL);
    prisma_applied(&db, &dir, INIT);
    db.sql(&format!(
        "INSERT INTO _prisma_migrations (id, checksum, migration_name) VALUES (gen_random_uuid()::text, '{}', '{POSTS}')",
        sha256(&dir.join(POSTS).join("migration.sql"))
    ));
    let mut prisma = hold_advisory_lock(&db.name, "72707369", "prisma-migrate");
    let run = db.run(&[
        "run",
        "--migrations",
        "prisma/migrations",
        "--lock-timeout",
        "2s",
    ]);
    let _ = prisma.kill();
    let _ = prisma.wait();
    run.expect(5);
    assert!(
        run.stderr.contains("advisory lock 72707369 not acquired")
            && run.stderr.contains("application_name prisma-migrate"),
        "{}",
        run.stderr
    );
    assert_eq!(db.sql("SELECT to_regclass('\"Post\"') IS NULL"), "t");
    // Prisma's process is gone and its row never finished: a failed deploy.
    crate::harness::wait_until(
        "the holder to go",
        std::time::Duration::from_secs(10),
        || {
            db.sql(&format!(
            "SELECT {}",
            "count(*) = 0 FROM pg_stat_activity WHERE application_name = 'prisma-migrate' AND datname = current_database()"
        )) == "t"
        },
    );
    db.run(&["run", "--migrations", "prisma/migrations"])
        .expect(7);
    // Resolved; db-init migrates holding Prisma's lock, so a Prisma deploy started meanwhile
    // would wait (Prisma's own wait is 10 s).
    db.sql(&format!(
        "UPDATE _prisma_migrations SET rolled_back_at = now() WHERE migration_name = '{POSTS}'"
    ));
    write(
        &dir.join(POSTS),
        "migration.sql",
        &format!(
            "{}\nDO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_locks l JOIN pg_stat_activity a USING (pid) \
             WHERE l.locktype = 'advisory' AND l.objid = 72707369 AND l.granted AND a.application_name = 'db-init' \
             AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())) \
             THEN RAISE 'Prisma''s lock is not held'; END IF; END $$;\n",
            std::fs::read_to_string(dir.join(POSTS).join("migration.sql")).unwrap_or_default()
        ),
    );
    db.run(&["run", "--migrations", "prisma/migrations"])
        .expect(0);
    assert_eq!(
        db.sql("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 72707369"),
        "0",
        "Prisma's lock was not released"
    );
}

/// The URL's `schema=` (Prisma's): the search path of the migrations and the schema of
/// `_prisma_migrations`, as Prisma uses it; the schema keeps its case.
#[test]
fn the_urls_schema_is_where_prisma_keeps_tables_and_history() {
    let db = TestDb::new("prisma_schema");
    folder(&db);
    db.sql("CREATE SCHEMA \"Tenant_1\"");
    let url = format!("{}?schema=Tenant_1", db.url());
    let run = Run::from(
        db.cmd()
            .args(["run", "--migrations", "prisma/migrations"])
            .env("DB_INIT_DATABASE_URL", &url)
            .output()
            .unwrap_or_else(|e| panic!("{e}")),
    );
    run.expect(0);
    assert_eq!(
        db.sql(
            "SELECT string_agg(table_schema || '.' || table_name, ',' ORDER BY table_name) \
             FROM information_schema.tables WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
        ),
        "Tenant_1.Post,Tenant_1.User,Tenant_1._prisma_migrations"
    );
    assert_eq!(
        db.sql(
            "SELECT count(*) FROM \"Tenant_1\"._prisma_migrations WHERE finished_at IS NOT NULL"
        ),
        "2"
    );
}

/// A folder with the marker files of two tools is not guessed at: exit 7 naming both, and
/// `layout` picks one.
#[test]
fn a_folder_with_two_tools_markers_needs_the_layout_setting() {
    let db = TestDb::new("prisma_ambiguous");
    let dir = folder(&db);
    write(
        &dir.join("meta"),
        "_journal.json",
        "{\"version\":\"7\",\"dialect\":\"postgresql\",\"entries\":[]}",
    );
    let run = db.run(&["status", "--migrations", "prisma/migrations"]);
    run.expect(7);
    assert!(
        run.stdout
            .contains("fits drizzle and prisma (by its marker files"),
        "{}",
        run.stdout
    );
    db.run(&[
        "run",
        "--migrations",
        "prisma/migrations",
        "--layout",
        "prisma",
    ])
    .expect(0);
    assert_eq!(db.sql("SELECT count(*) FROM _prisma_migrations"), "2");
}
