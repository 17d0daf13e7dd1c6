//! Prisma Migrate folders (issue 21): read as `prisma migrate deploy` reads them, with
//! `_prisma_migrations` created with Prisma's DDL and filled with the rows Prisma writes, in the
//! migration's own transaction; rows Prisma wrote are honoured, a failed one stops the run
//! naming `prisma migrate resolve`, a lock file for another database is refused.

use std::path::PathBuf;

use crate::harness::{copy_dir, write, TestDb};
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
