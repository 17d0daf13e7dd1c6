//! One real public project's folder per format (tests/fixtures/real, copied byte for byte; its
//! README names each project and commit), applied by db-init to an empty database: the schema
//! is what applying the files with psql in the tool's order gives, and the history rows are
//! the ones the tool writes, computed here without db-init (sha256sum / sha384sum, the leading
//! digits, the JDK's rows for Flyway in `<folder>.expected`).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::{copy_dir, repo, server, TestDb};
use crate::migrate::schema_dump;

fn real(tool: &str, project: &str) -> PathBuf {
    repo().join("tests/fixtures/real").join(tool).join(project)
}

/// Applies `sql` to `db` as psql does with `-f`: statement by statement, in autocommit.
fn psql_file(db: &TestDb, sql: &str) {
    let file = db.work.join("psql-input.sql");
    std::fs::write(&file, sql).unwrap_or_else(|e| panic!("{e}"));
    let out = Command::new(server().bin.join("psql"))
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d"])
        .arg(db.url())
        .arg("-f")
        .arg(&file)
        .output()
        .unwrap_or_else(|e| panic!("psql: {e}"));
    assert!(
        out.status.success(),
        "psql: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The text between the line that opens a section and the one that closes it.
fn section(text: &str, open: &str, close: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for line in text.split_inclusive('\n') {
        let l = line.trim().to_ascii_lowercase();
        if l.starts_with(open) {
            inside = true;
        } else if l.starts_with(close) {
            inside = false;
        } else if inside {
            out.push_str(line);
        }
    }
    out
}

/// The folder's `.sql` files whose names start with digits, in version order.
fn numbered(dir: &Path, suffix: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{e}"))
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(suffix) && n.starts_with(|c: char| c.is_ascii_digit()))
        .filter(|n| !n.ends_with(".down.sql"))
        .collect();
    names.sort_by_key(|n| {
        let digits: String = n.chars().take_while(char::is_ascii_digit).collect();
        (digits.len(), digits)
    });
    names
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn digest(tool: &str, path: &Path) -> String {
    let out = Command::new(tool)
        .arg(path)
        .output()
        .unwrap_or_else(|e| panic!("{tool}: {e}"));
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// db-init applies the folder; psql applies `pieces` to another database; the schemas match
/// but for the history table `history`. Returns db-init's database for the rows check.
fn applies_as_psql(
    tool: &str,
    project: &str,
    layout: &str,
    history: &str,
    pieces: &[String],
) -> TestDb {
    let ours = TestDb::new(&format!("real_{tool}"));
    copy_dir(&real(tool, project), &ours.work.join("m"));
    let run = ours.run(&["run", "--migrations", "m", "--layout", layout]);
    run.expect(0);
    let again = ours.run(&["run", "--migrations", "m", "--layout", layout]);
    again.expect(0);
    assert!(
        again.stderr.contains("0 migration(s) applied") || again.stderr.contains("nothing to do"),
        "{}",
        again.stderr
    );
    let theirs = TestDb::new(&format!("real_{tool}_psql"));
    for sql in pieces {
        psql_file(&theirs, sql.trim_start_matches('\u{feff}'));
    }
    let without_history = |d: &TestDb| {
        schema_dump(d)
            .replace(&d.name, "")
            .split("\n\n")
            .map(str::trim)
            .filter(|p| !p.is_empty() && !p.contains(history))
            .collect::<Vec<_>>()
            .join("\n\n")
    };
    assert_eq!(
        without_history(&ours),
        without_history(&theirs),
        "{tool}: the schemas differ"
    );
    ours
}

#[test]
fn flyway_conductor() {
    let dir = real("flyway", "conductor-oss-conductor");
    let expected = read(&dir.with_extension("expected"));
    let scripts: Vec<String> = expected
        .lines()
        .filter_map(|l| l.split('\t').nth(4))
        .map(|s| read(&dir.join(s)))
        .collect();
    let db = applies_as_psql(
        "flyway",
        "conductor-oss-conductor",
        "flyway",
        "flyway_schema_history",
        &scripts,
    );
    let rows = db.sql(
        "SELECT string_agg(concat_ws(E'\\t', installed_rank, coalesce(version, ''), description, type, \
         script, checksum), E'\\n' ORDER BY installed_rank) FROM public.flyway_schema_history",
    );
    assert_eq!(rows, expected.trim_end());
}

#[test]
fn golang_migrate_pocket_id() {
    let dir = real("golang-migrate", "pocket-id-pocket-id");
    let files = numbered(&dir, ".up.sql");
    let pieces: Vec<String> = files.iter().map(|f| read(&dir.join(f))).collect();
    let db = applies_as_psql(
        "golang-migrate",
        "pocket-id-pocket-id",
        "golang-migrate",
        "schema_migrations",
        &pieces,
    );
    let last = files.last().map(|f| {
        f.chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
    });
    assert_eq!(
        Some(
            db.sql("SELECT string_agg(version || ' ' || dirty, ',') FROM public.schema_migrations")
        ),
        last.map(|v| format!("{v} false"))
    );
}

#[test]
fn dbmate_measure() {
    let dir = real("dbmate", "measure-sh-measure");
    let files = numbered(&dir, ".sql");
    let pieces: Vec<String> = files
        .iter()
        .map(|f| section(&read(&dir.join(f)), "-- migrate:up", "-- migrate:down"))
        .collect();
    let db = applies_as_psql(
        "dbmate",
        "measure-sh-measure",
        "dbmate",
        "schema_migrations",
        &pieces,
    );
    let versions: Vec<String> = files
        .iter()
        .map(|f| f.chars().take_while(char::is_ascii_digit).collect())
        .collect();
    assert_eq!(
        db.sql("SELECT string_agg(version, ',' ORDER BY version) FROM public.schema_migrations"),
        versions.join(",")
    );
}

#[test]
fn sqlx_atuin() {
    let dir = real("sqlx", "atuinsh-atuin");
    let files = numbered(&dir, ".sql");
    let pieces: Vec<String> = files.iter().map(|f| read(&dir.join(f))).collect();
    let db = applies_as_psql("sqlx", "atuinsh-atuin", "sqlx", "_sqlx_migrations", &pieces);
    let want: Vec<String> = files
        .iter()
        .map(|f| {
            let version: String = f.chars().take_while(char::is_ascii_digit).collect();
            format!("{version} {}", digest("sha384sum", &dir.join(f)))
        })
        .collect();
    assert_eq!(
        db.sql(
            "SELECT string_agg(version || ' ' || encode(checksum, 'hex'), ',' ORDER BY version) \
             FROM public._sqlx_migrations WHERE success"
        ),
        want.join(",")
    );
}

#[test]
fn prisma_hoppscotch() {
    let dir = real("prisma", "hoppscotch-hoppscotch");
    let mut folders: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{e}"))
        .flatten()
        .filter(|e| e.path().join("migration.sql").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    folders.sort();
    let pieces: Vec<String> = folders
        .iter()
        .map(|f| read(&dir.join(f).join("migration.sql")))
        .collect();
    let db = applies_as_psql(
        "prisma",
        "hoppscotch-hoppscotch",
        "prisma",
        "_prisma_migrations",
        &pieces,
    );
    let want: Vec<String> = folders
        .iter()
        .map(|f| {
            format!(
                "{f} {} 1",
                digest("sha256sum", &dir.join(f).join("migration.sql"))
            )
        })
        .collect();
    assert_eq!(
        db.sql(
            "SELECT string_agg(migration_name || ' ' || checksum || ' ' || applied_steps_count, ',' \
             ORDER BY migration_name) FROM public._prisma_migrations WHERE finished_at IS NOT NULL"
        ),
        want.join(",")
    );
}

#[test]
fn goose_opentdf() {
    let dir = real("goose", "opentdf-platform");
    let files = numbered(&dir, ".sql");
    let pieces: Vec<String> = files
        .iter()
        .map(|f| section(&read(&dir.join(f)), "-- +goose up", "-- +goose down"))
        .collect();
    let db = applies_as_psql(
        "goose",
        "opentdf-platform",
        "goose",
        "goose_db_version",
        &pieces,
    );
    let mut versions = vec!["0 true".to_string()];
    versions.extend(files.iter().map(|f| {
        let v: String = f.chars().take_while(char::is_ascii_digit).collect();
        format!("{v} true")
    }));
    assert_eq!(
        db.sql(
            "SELECT string_agg(version_id || ' ' || is_applied, ',' ORDER BY id) FROM public.goose_db_version"
        ),
        versions.join(",")
    );
}
