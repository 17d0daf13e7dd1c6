//! dbmate: `<digits>_<name>.sql` files with `-- migrate:up` and `-- migrate:down` sections (the
//! up section runs, in a transaction unless its line says `transaction:false`), applied in
//! version order; the history is `schema_migrations(version)` with one row per applied file,
//! its version the file name's leading digits as written, created and filled as dbmate does
//! (checked against dbmate itself in tests/it/dbmate.rs). There is no checksum.

use super::{Folder, Format};
use crate::config::{MigrateSettings, OutOfOrder};
use crate::migrate::history::{Shape, Table};
use crate::migrate::migration::{Migration, Outside, Split};
use crate::migrate::plan::{AppliedRow, Plan, Policy, State};
use crate::migrate::source::{io, sorted_files, Layout, Source};
use crate::migrate::{MigrateError, Problem};
use crate::pg::quote::{quote_ident, quote_literal};

const TABLE: &str = "schema_migrations";
const UP: &str = "-- migrate:up";
const DOWN: &str = "-- migrate:down";

pub struct Dbmate;

/// `20240101120000_create_users.sql` -> "20240101120000": dbmate's `^(\d+).*\.sql$`.
pub fn version_of(file: &str) -> Option<&str> {
    let stem = file.strip_suffix(".sql")?;
    let end = stem.bytes().take_while(u8::is_ascii_digit).count();
    (end > 0).then(|| &stem[..end])
}

/// Whether a file's text is dbmate's: a line that opens its up section.
pub fn is_dbmate(text: &str) -> bool {
    text.lines().any(|l| {
        l.trim_start_matches('\u{feff}')
            .trim_start()
            .starts_with(UP)
    })
}

impl Format for Dbmate {
    fn layout(&self) -> Layout {
        Layout::Dbmate
    }

    fn claims(&self, folder: &Folder) -> bool {
        folder.dbmate
    }

    fn load(
        &self,
        source: &mut Source,
        folder: Folder,
        _settings: &MigrateSettings,
    ) -> Result<(), MigrateError> {
        let mut seen: Vec<(String, String)> = Vec::new();
        for name in sorted_files(&folder.dir)? {
            let Some(version) = version_of(&name) else {
                continue;
            };
            if let Some((_, other)) = seen.iter().find(|(v, _)| v == version) {
                source.problems.push(Problem::Duplicate {
                    version: version.to_string(),
                    file: format!("{other} and {name}"),
                });
                continue;
            }
            seen.push((version.to_string(), name.clone()));
            let path = folder.dir.join(&name);
            let bytes = std::fs::read(&path).map_err(io(&path))?;
            // The up section: the file up to its `-- migrate:down` line, so that lines and
            // columns stay the file's.
            let text = String::from_utf8_lossy(&bytes);
            let up_end = text
                .match_indices(DOWN)
                .find(|(at, _)| *at == 0 || text[..*at].ends_with('\n'))
                .map_or(bytes.len(), |(at, _)| at);
            let first_up = text.lines().find(|l| l.trim_start().starts_with(UP));
            if first_up.is_none() {
                // dbmate refuses it too ("requires each migration to define an up block"); a
                // BOM before the first line hides the block from dbmate's pattern.
                source.problems.push(Problem::Unsupported {
                    file: name.clone(),
                    at: None,
                    what: "no `-- migrate:up` block at the start of a line: dbmate requires each \
                           migration to define one"
                        .into(),
                });
                continue;
            }
            let no_transaction = first_up.is_some_and(|l| l.contains("transaction:false"));
            let mut m = Migration::new(
                version.parse().unwrap_or(i64::MAX),
                version.to_string(),
                name.clone(),
                bytes.get(..up_end).unwrap_or(&bytes).to_vec(),
                Split::Statements,
            );
            if no_transaction {
                m.outside = Some(Outside::Annotation {
                    text: "transaction:false",
                });
            }
            source.migrations.push(m);
        }
        source.migrations.sort_by_key(|m| m.version);
        Ok(())
    }

    fn history_table(&self, settings: &MigrateSettings) -> (String, String) {
        // dbmate's table lives in the first schema of the search path.
        super::tool_table(settings, TABLE)
    }

    fn create_sql(&self, schema: &str, _table: &str, qualified: &str) -> String {
        format!(
            "CREATE SCHEMA IF NOT EXISTS {};\n\
             CREATE TABLE IF NOT EXISTS {qualified} (version varchar PRIMARY KEY);",
            quote_ident(schema)
        )
    }

    fn rows_sql(&self, _shape: Shape, qualified: &str) -> String {
        format!(
            "SELECT NULL, CASE WHEN version ~ '^[0-9]{{1,18}}$' THEN version::bigint END, '', version \
             FROM {qualified} ORDER BY version"
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
        format!(
            "INSERT INTO {qualified} (version) VALUES ({})",
            quote_literal(&m.name)
        )
    }

    fn row_key(&self, m: &Migration) -> (&'static str, &'static str, String) {
        // No checksum to repair; `repair` finds nothing changed.
        ("version", "version", quote_literal(&m.name))
    }

    fn new_files(
        &self,
        source: &Source,
        slug: &str,
        now_ms: i64,
    ) -> Result<Vec<(String, String)>, String> {
        // dbmate new's name and template.
        super::timestamped_file(
            source,
            slug,
            now_ms,
            "-- migrate:up\n\n\n-- migrate:down\n\n",
        )
    }

    fn default_out_of_order(&self) -> OutOfOrder {
        // `dbmate up` applies every file it has no row for, whatever its version.
        OutOfOrder::Allow
    }

    fn plan(
        &self,
        migrations: &[Migration],
        table: Option<&Table>,
        policy: &Policy,
    ) -> (Plan, Option<super::HistoryUpgrade>) {
        let mut plan = Plan::default();
        let rows: Vec<AppliedRow> = table.map(|t| t.rows.clone()).unwrap_or_default();
        let recorded = |m: &Migration| rows.iter().any(|r| r.name.as_deref() == Some(&m.name));
        let newest_applied = migrations
            .iter()
            .filter(|m| recorded(m))
            .map(|m| m.version)
            .max();
        let unmatched: Vec<AppliedRow> = rows
            .iter()
            .filter(|r| {
                !migrations
                    .iter()
                    .any(|m| r.name.as_deref() == Some(&m.name))
            })
            .cloned()
            .collect();
        let newest = migrations.iter().map(|m| m.version).max();
        plan.unmatched(
            unmatched,
            newest.is_some(),
            |r| r.version.zip(newest).is_some_and(|(v, n)| v > n),
            policy,
        );
        for (index, m) in migrations.iter().enumerate() {
            let state = match (recorded(m), newest_applied) {
                (true, _) => State::Applied,
                (false, Some(n)) if m.version < n => State::OutOfOrder,
                (false, _) => State::Pending,
            };
            plan.add_unchecked(index, m, state, newest_applied, policy);
        }
        (plan, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_and_sections_as_dbmate_reads_them() {
        assert_eq!(
            version_of("20240101120000_create_users.sql"),
            Some("20240101120000")
        );
        assert_eq!(version_of("001.sql"), Some("001"));
        assert_eq!(version_of("x_001.sql"), None);
        assert!(is_dbmate("-- migrate:up\nSELECT 1;\n-- migrate:down\n"));
        assert!(!is_dbmate("SELECT 1; -- migrate:up"));
    }
}
