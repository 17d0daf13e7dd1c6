//! golang-migrate: `<version>_<name>.up.sql` files (`.down.sql` and any file its parser
//! cannot read are ignored, as golang-migrate ignores them), applied in version order; the
//! history is `schema_migrations(version bigint, dirty boolean)` holding one row, the
//! high-water mark, as golang-migrate keeps it. A `dirty` row (a migration that failed half
//! way under golang-migrate) stops the run as it stops golang-migrate, naming `migrate force`.
//! There is no checksum: an edited applied file cannot be told.

use super::{Folder, Format};
use crate::config::{MigrateSettings, OutOfOrder};
use crate::migrate::history::{Shape, Table};
use crate::migrate::migration::Migration;
use crate::migrate::plan::{AppliedRow, Plan, Policy, State};
use crate::migrate::source::{Layout, Source};
use crate::migrate::{MigrateError, Problem};
use crate::pg::quote::quote_ident;

const TABLE: &str = "schema_migrations";
/// The `checksum` the rows read for the planner carry for a dirty row (there is no checksum).
const DIRTY: &str = "dirty";

pub struct GolangMigrate;

/// `12_add_users.up.sql` -> (12, "add_users"): golang-migrate's `^([0-9]+)_(.*)\.(up|down)\.(.*)$`
/// for the up direction and SQL files.
pub fn parse_up(file: &str) -> Option<(i64, &str)> {
    let stem = file.strip_suffix(".up.sql")?;
    let (digits, name) = stem.split_once('_')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((digits.parse().ok()?, name))
}

/// golang-migrate's `database.GenerateAdvisoryLockId(database, schema, table)`: the CRC32 of
/// the names joined by NUL (schema, table, then database) times its salt, in 32 bits.
pub fn lock_key(database: &str, schema: &str, table: &str) -> i64 {
    const SALT: u32 = 1486364155;
    let joined = format!("{schema}\0{table}\0{database}");
    i64::from(crc32fast::hash(joined.as_bytes()).wrapping_mul(SALT))
}

impl Format for GolangMigrate {
    fn layout(&self) -> Layout {
        Layout::GolangMigrate
    }

    fn claims(&self, folder: &Folder) -> bool {
        folder.up_files
    }

    fn load(
        &self,
        source: &mut Source,
        folder: Folder,
        _settings: &MigrateSettings,
    ) -> Result<(), MigrateError> {
        super::load_versioned(source, &folder.dir, |f| {
            parse_up(f).map(|(v, n)| (v, n.to_string()))
        })
    }

    fn history_table(&self, settings: &MigrateSettings) -> (String, String) {
        // golang-migrate's default schema is the first of the search path: public, unless
        // the URL says otherwise.
        super::tool_table(settings, TABLE)
    }

    fn create_sql(&self, schema: &str, _table: &str, qualified: &str) -> String {
        // golang-migrate's postgres driver, ensureVersionTable.
        format!(
            "CREATE SCHEMA IF NOT EXISTS {};\n\
             CREATE TABLE IF NOT EXISTS {qualified} (version bigint not null primary key, dirty boolean not null);",
            quote_ident(schema)
        )
    }

    fn rows_sql(&self, _shape: Shape, qualified: &str) -> String {
        format!(
            "SELECT NULL, version, CASE WHEN dirty THEN '{DIRTY}' ELSE '' END, NULL FROM {qualified} \
             ORDER BY version"
        )
    }

    fn insert_sql(
        &self,
        _schema: &str,
        _table: &str,
        qualified: &str,
        m: &Migration,
        _execution_ms: Option<u64>,
    ) -> String {
        // The one row is the high-water mark, replaced as golang-migrate replaces it (it
        // truncates; a DELETE leaves the same row without locking readers out).
        format!(
            "DELETE FROM {qualified}; INSERT INTO {qualified} (version, dirty) VALUES ({}, false)",
            m.version
        )
    }

    fn row_key(&self, m: &Migration) -> (&'static str, &'static str, String) {
        // No checksum to repair; `repair` finds nothing changed.
        ("dirty", "version", m.version.to_string())
    }

    fn tool_lock(&self) -> Option<super::ToolLock> {
        Some(super::ToolLock::Named(lock_key))
    }

    fn new_files(
        &self,
        source: &Source,
        slug: &str,
        now_ms: i64,
    ) -> Result<Vec<(String, String)>, String> {
        // As `migrate create -ext sql` makes them: an empty up and down pair.
        let v = crate::migrate::new::next_version(source, now_ms, None)?;
        Ok(vec![
            (format!("{v}_{slug}.up.sql"), String::new()),
            (format!("{v}_{slug}.down.sql"), String::new()),
        ])
    }

    fn look_alike(&self) -> Option<super::LookAlike> {
        Some(super::LookAlike {
            columns: &["version", "dirty"],
            tool: "golang-migrate",
            setting: "history.schema / history.table (golang-migrate's x-migrations-table)",
        })
    }

    fn default_out_of_order(&self) -> OutOfOrder {
        // golang-migrate never applies a file older than its high-water mark.
        OutOfOrder::Error
    }

    fn plan(
        &self,
        migrations: &[Migration],
        table: Option<&Table>,
        policy: &Policy,
    ) -> (Plan, Option<super::HistoryUpgrade>) {
        let mut plan = Plan::default();
        let rows: Vec<AppliedRow> = table.map(|t| t.rows.clone()).unwrap_or_default();
        let mark = rows.iter().filter_map(|r| r.version).max();
        if let Some(row) = rows.iter().find(|r| r.checksum == DIRTY) {
            let v = row.version.unwrap_or_default();
            plan.problems.push(Problem::Unfinished {
                migration: format!("version {v}"),
                tool: "golang-migrate",
                fix: format!(
                    "see what of it reached the database and finish or undo it by hand, then record the \
                     outcome as golang-migrate does: `migrate force {v}` (completed) or `migrate force <the \
                     version before it>` (undone: db-init applies it again)"
                ),
            });
        }
        if let Some(mark) = mark {
            // The mark names a file this folder must have, unless it is newer than all of them.
            if !migrations.iter().any(|m| m.version == mark) {
                let unmatched: Vec<AppliedRow> = rows
                    .iter()
                    .filter(|r| r.version == Some(mark))
                    .cloned()
                    .collect();
                let newest = migrations.iter().map(|m| m.version).max();
                plan.unmatched(
                    unmatched,
                    newest.is_some(),
                    |r| r.version.zip(newest).is_some_and(|(v, n)| v > n),
                    policy,
                );
            }
        }
        for (index, m) in migrations.iter().enumerate() {
            let state = match mark {
                Some(mark) if m.version <= mark => State::Applied,
                _ => State::Pending,
            };
            plan.add_unchecked(index, m, state, mark, policy);
        }
        (plan, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_key_as_golang_migrate_computes_it() {
        // Python's zlib.crc32 of "public\0schema_migrations\0app", times the salt, mod 2^32.
        assert_eq!(lock_key("app", "public", "schema_migrations"), 1787120056);
        assert_eq!(
            lock_key("gm_lock_test", "public", "schema_migrations"),
            3716853934
        );
    }

    #[test]
    fn up_files_by_golang_migrates_pattern() {
        assert_eq!(parse_up("1_init.up.sql"), Some((1, "init")));
        assert_eq!(
            parse_up("20240101120000_add_users.up.sql"),
            Some((20240101120000, "add_users"))
        );
        assert_eq!(parse_up("1_init.down.sql"), None);
        assert_eq!(parse_up("init.up.sql"), None);
        assert_eq!(parse_up("1_init.sql"), None);
    }
}
