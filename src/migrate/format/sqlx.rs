//! sqlx (`sqlx migrate`): `<version>_<description>.sql`, or `.up.sql` of a reversible pair
//! (`.down.sql` ignored), `-- no-transaction` on the first line to run outside a transaction;
//! the history is `_sqlx_migrations` with sqlx's DDL, its `description` the file name's rest with
//! `_` read as a space, `checksum` the SHA-384 of the file as bytes, `execution_time` in
//! nanoseconds. Named by the `layout: sqlx` setting (its file names are numbered files' too).
//! Checked against sqlx-cli itself in tests/it/sqlx.rs.

use super::{Folder, Format};
use crate::config::{MigrateSettings, OutOfOrder};
use crate::migrate::history::{Shape, Table};
use crate::migrate::migration::{Migration, Outside};
use crate::migrate::plan::{Plan, Policy};
use crate::migrate::source::{Layout, Source};
use crate::migrate::{MigrateError, Problem};
use crate::pg::quote::{quote_ident, quote_literal};

const TABLE: &str = "_sqlx_migrations";
/// The checksum the rows read for the planner carry for a failed row (`success = false`).
const FAILED: &str = "failed";

pub struct Sqlx;

/// `20240101120000_create_users.up.sql` -> (20240101120000, "create users"), as sqlx reads it.
pub fn parse(file: &str) -> Option<(i64, String)> {
    if file.ends_with(".down.sql") {
        return None;
    }
    let stem = file
        .strip_suffix(".up.sql")
        .or_else(|| file.strip_suffix(".sql"))?;
    let (digits, rest) = stem.split_once('_')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((digits.parse().ok()?, rest.replace('_', " ")))
}

fn sha384_hex(text: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA384, text.as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// sqlx-postgres' `generate_lock_id(current_database())`: `0x3d32ad9e * crc32(name)`.
pub fn lock_key(database: &str, _schema: &str, _table: &str) -> i64 {
    0x3d32ad9e * i64::from(crc32fast::hash(database.as_bytes()))
}

impl Format for Sqlx {
    fn layout(&self) -> Layout {
        Layout::Sqlx
    }

    fn claims(&self, _folder: &Folder) -> bool {
        // Only by the `layout` setting: the names are numbered files' too.
        false
    }

    fn load(
        &self,
        source: &mut Source,
        folder: Folder,
        _settings: &MigrateSettings,
    ) -> Result<(), MigrateError> {
        super::load_versioned(source, &folder.dir, parse)?;
        super::refuse_sectioned(source, "sqlx's files");
        for m in &mut source.migrations {
            m.checksum = sha384_hex(&m.text);
            // sqlx's marker: `-- no-transaction` as the first line.
            if m.text
                .lines()
                .next()
                .is_some_and(|l| l.trim() == "-- no-transaction")
            {
                m.outside = Some(Outside::Annotation {
                    text: "-- no-transaction",
                });
            }
        }
        Ok(())
    }

    fn history_table(&self, settings: &MigrateSettings) -> (String, String) {
        super::tool_table(settings, TABLE)
    }

    fn create_sql(&self, schema: &str, _table: &str, qualified: &str) -> String {
        // sqlx-postgres, ensure_migrations_table.
        format!(
            "CREATE SCHEMA IF NOT EXISTS {};\n\
             CREATE TABLE IF NOT EXISTS {qualified} (\n\
             \x20   version BIGINT PRIMARY KEY,\n\
             \x20   description TEXT NOT NULL,\n\
             \x20   installed_on TIMESTAMPTZ NOT NULL DEFAULT now(),\n\
             \x20   success BOOLEAN NOT NULL,\n\
             \x20   checksum BYTEA NOT NULL,\n\
             \x20   execution_time BIGINT NOT NULL\n\
             );",
            quote_ident(schema)
        )
    }

    fn rows_sql(&self, _shape: Shape, qualified: &str) -> String {
        format!(
            "SELECT NULL, version, CASE WHEN success THEN encode(checksum, 'hex') ELSE '{FAILED}' END, \
             description FROM {qualified} ORDER BY version"
        )
    }

    fn insert_sql(
        &self,
        _schema: &str,
        _table: &str,
        qualified: &str,
        m: &Migration,
        execution_ms: Option<u64>,
    ) -> String {
        let ns = match execution_ms {
            Some(ms) => (ms.min(i64::MAX as u64 / 1_000_000) * 1_000_000).to_string(),
            None => "(extract(epoch FROM clock_timestamp() - now()) * 1000000000)::bigint".into(),
        };
        format!(
            "INSERT INTO {qualified} (version, description, success, checksum, execution_time) \
             VALUES ({}, {}, TRUE, '\\x{}'::bytea, {ns})",
            m.version,
            quote_literal(&m.name),
            m.checksum
        )
    }

    fn checksum_sql(&self, checksum: &str) -> String {
        // A bytea column, read as hex (`rows_sql`).
        format!(
            "decode({}, 'hex')",
            crate::pg::quote::quote_literal(checksum)
        )
    }

    fn row_key(&self, m: &Migration) -> (&'static str, &'static str, String) {
        ("checksum", "version", m.version.to_string())
    }

    fn new_files(
        &self,
        source: &Source,
        slug: &str,
        now_ms: i64,
    ) -> Result<Vec<(String, String)>, String> {
        // sqlx migrate add's name and template.
        super::timestamped_file(source, slug, now_ms, "-- Add migration script here\n")
    }

    fn default_out_of_order(&self) -> OutOfOrder {
        OutOfOrder::Error
    }

    fn tool_lock(&self) -> Option<super::ToolLock> {
        Some(super::ToolLock::Named(lock_key))
    }

    fn plan(
        &self,
        migrations: &[Migration],
        table: Option<&Table>,
        policy: &Policy,
    ) -> (Plan, Option<super::HistoryUpgrade>) {
        let rows = table.map(|t| t.rows.clone()).unwrap_or_default();
        let (failed, done): (Vec<_>, Vec<_>) = rows.into_iter().partition(|r| r.checksum == FAILED);
        let mut plan = crate::migrate::plan::plan(migrations, &done, policy);
        for row in failed {
            let v = row.version.unwrap_or_default();
            plan.problems.push(Problem::Unfinished {
                migration: format!("version {v}"),
                tool: "sqlx",
                fix: format!(
                    "see what of it reached the database, then delete its row \
                     (`DELETE FROM _sqlx_migrations WHERE version = {v}`) for db-init to apply it again"
                ),
            });
        }
        (plan, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_key_as_sqlx_computes_it() {
        // 0x3d32ad9e * Python's zlib.crc32(b"app").
        assert_eq!(lock_key("app", "", ""), 3469795979745788610);
    }

    #[test]
    fn names_as_sqlx_reads_them() {
        assert_eq!(
            parse("20240101_create_users.sql"),
            Some((20240101, "create users".into()))
        );
        assert_eq!(parse("2_add_x.up.sql"), Some((2, "add x".into())));
        assert_eq!(parse("2_add_x.down.sql"), None);
        assert_eq!(parse("x_1.sql"), None);
    }
}
