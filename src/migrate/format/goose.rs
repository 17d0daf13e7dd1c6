//! goose (pressly/goose v3, checked against v3.27.3's source): `<version>_<name>.sql` files,
//! their `-- +goose Up` section cut into statements exactly as goose's parser cuts them
//! (goose_parse.rs), `NO TRANSACTION` outside a transaction; the history is
//! `goose_db_version`, created with goose's postgres DDL and its version-0 row, one
//! `(version_id, true)` row per applied file. goose's `-table schema.name` is db-init's
//! `history.schema` and `history.table`, given apart. There is no checksum: `repair` finds
//! nothing, and an edited applied file cannot be told.

use std::collections::HashSet;

use super::goose_parse;
use super::{Folder, Format};
use crate::config::{MigrateSettings, OutOfOrder};
use crate::migrate::history::{Shape, Table};
use crate::migrate::migration::{Migration, Outside, Split};
use crate::migrate::plan::{AppliedRow, Plan, Policy, State};
use crate::migrate::source::{io, sorted_files, Layout, Source};
use crate::migrate::{MigrateError, Problem};
use crate::pg::quote::quote_ident;

const TABLE: &str = "goose_db_version";
const UP: &str = "-- +goose up";

pub struct Goose;

/// Whether a file's text is goose's: a line that opens its up section (goose reads its
/// annotations case-insensitively).
pub fn is_goose(text: &str) -> bool {
    // A BOM on the first line still marks goose's file (goose's parser then refuses it).
    text.lines().any(|l| {
        let l = l.trim_start_matches('\u{feff}').trim();
        l.get(..UP.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(UP))
    })
}

/// goose's `NumericComponent` (migration.go) for a `.sql` or `.go` file: the digits before the
/// first `_`, as strconv.ParseInt reads them (a sign is allowed), at least 1.
fn version_of(file: &str) -> Result<i64, String> {
    let (before, _) = file
        .split_once('_')
        .ok_or("no filename separator '_' found")?;
    let n: i64 = before
        .parse()
        .map_err(|e| format!("failed to parse version from migration file: {e}"))?;
    match n < 1 {
        true => Err("migration version must be greater than zero".to_string()),
        false => Ok(n),
    }
}

/// A file goose stops on, or that db-init cannot send as goose sends it: a problem (goose's
/// refusal stops `goose up` before anything runs, so db-init applies nothing either).
fn refused(file: &str, line: Option<usize>, message: &str) -> Problem {
    Problem::Unsupported {
        file: file.to_string(),
        at: line.map(|l| (l, 1)),
        what: message.to_string(),
    }
}

/// Reads one `.sql` file into its migration: goose's statements as ranges of the text goose's
/// scanner sees (line:column unchanged), its transaction mode.
fn read_sql(
    source: &mut Source,
    dir: &std::path::Path,
    file: &str,
    version: i64,
) -> Result<(), MigrateError> {
    let path = dir.join(file);
    let bytes = std::fs::read(&path).map_err(io(&path))?;
    let bytes = goose_parse::scanner_text(&bytes);
    let name = file
        .strip_suffix(".sql")
        .and_then(|s| s.split_once('_'))
        .map_or(String::new(), |(_, n)| n.to_string());
    let mut m = Migration::new(version, name, file.to_string(), bytes, Split::Statements);
    match goose_parse::parse(&m.text) {
        Ok(parsed) => {
            if let Some(problem) = cut_inside_a_literal(&m, &parsed.statements) {
                source.problems.push(problem);
                return Ok(());
            }
            // db-init's own first-line marker still counts, as in every format.
            let marker = m.outside == Some(Outside::Marker);
            m.statements = parsed.statements;
            // The transaction mode is the file's own word; a statement that cannot run in a
            // transaction (found again among goose's statements, not the whole file's) still
            // runs outside one, as with every other format.
            m.outside = match (parsed.no_transaction, marker) {
                (true, _) => Some(Outside::Annotation {
                    text: "-- +goose NO TRANSACTION",
                }),
                (false, true) => Some(Outside::Marker),
                (false, false) => m.blocking_statement(),
            };
            source.migrations.push(m);
        }
        Err(e) => source.problems.push(refused(
            file,
            Some(e.line),
            &format!("goose cannot run this file: {}", e.message),
        )),
    }
    Ok(())
}

/// A statement goose would send cut where a line ends in `;` inside a string, a dollar-quoted
/// body or a comment (a plpgsql body without StatementBegin): the server refuses it under
/// goose, and joined with its neighbours it would change the text (or, outside a transaction,
/// half-apply the file). Refused before anything runs, at the statement's first line.
fn cut_inside_a_literal(m: &Migration, statements: &[std::ops::Range<usize>]) -> Option<Problem> {
    statements.iter().find_map(|r| {
        let piece = m.text.get(r.clone())?;
        pg_query::scan(piece).is_err().then(|| {
            let (line, column) = m.line_col(r.start);
            Problem::Unsupported {
                file: m.file.clone(),
                at: Some((line, column)),
                what: "goose cuts this statement where a line ends in `;` inside a string, a \
                       dollar-quoted body or a comment, and sends the piece on its own, which the \
                       server refuses; wrap it in `-- +goose StatementBegin` / `-- +goose StatementEnd`"
                    .into(),
            }
        })
    })
}

impl Format for Goose {
    fn layout(&self) -> Layout {
        Layout::Goose
    }

    fn claims(&self, folder: &Folder) -> bool {
        folder.goose
    }

    fn load(
        &self,
        source: &mut Source,
        folder: Folder,
        _settings: &MigrateSettings,
    ) -> Result<(), MigrateError> {
        let mut seen: Vec<(i64, String)> = Vec::new();
        for file in sorted_files(&folder.dir)? {
            let go = file.ends_with(".go");
            if !go && !file.ends_with(".sql") {
                continue;
            }
            let version = match version_of(&file) {
                Ok(v) => v,
                // goose skips a Go file without a version; a `.sql` one stops it.
                Err(_) if go => continue,
                Err(e) => {
                    source.problems.push(refused(
                        &file,
                        None,
                        &format!(
                            "goose refuses the whole folder for this file (could not parse SQL \
                             migration file: {e}); name it <version>_<name>.sql or move it out"
                        ),
                    ));
                    continue;
                }
            };
            if go && file.ends_with("_test.go") {
                continue;
            }
            if let Some((_, other)) = seen.iter().find(|(v, _)| *v == version) {
                source.problems.push(Problem::Duplicate {
                    version: version.to_string(),
                    file: format!("{other} and {file}"),
                });
                continue;
            }
            seen.push((version, file.clone()));
            if go {
                source.problems.push(refused(
                    &file,
                    None,
                    "a goose Go migration: db-init cannot run Go code, and skipping it would record \
                     a history goose does not have; apply it with goose (or rewrite it as SQL)",
                ));
                continue;
            }
            read_sql(source, &folder.dir, &file, version)?;
        }
        source.migrations.sort_by_key(|m| m.version);
        Ok(())
    }

    fn history_table(&self, settings: &MigrateSettings) -> (String, String) {
        super::tool_table(settings, TABLE)
    }

    fn create_sql(&self, schema: &str, _table: &str, qualified: &str) -> String {
        // internal/dialects/postgres.go's CreateTable (goose >= v3.22; older releases made
        // `id serial`, `tstamp timestamp NULL`), and createVersionTable's (0, true) row. The row
        // is inserted only into an empty table, so a table made meanwhile keeps one 0 row.
        format!(
            "CREATE SCHEMA IF NOT EXISTS {};\n\
             CREATE TABLE IF NOT EXISTS {qualified} (\n\
             \x20   id integer PRIMARY KEY GENERATED BY DEFAULT AS IDENTITY,\n\
             \x20   version_id bigint NOT NULL,\n\
             \x20   is_applied boolean NOT NULL,\n\
             \x20   tstamp timestamp NOT NULL DEFAULT now()\n\
             );\n\
             INSERT INTO {qualified} (version_id, is_applied) \
             SELECT 0, true WHERE NOT EXISTS (SELECT 1 FROM {qualified});",
            quote_ident(schema)
        )
    }

    fn rows_sql(&self, _shape: Shape, qualified: &str) -> String {
        // `goose up` (up.go, listAllDBVersions; gooseutil.UpVersions for the provider) counts a
        // version applied when it has any row, whatever `is_applied` says; version 0 is the
        // table's own row, no migration.
        format!(
            "SELECT min(id), version_id, '', NULL FROM {qualified} WHERE version_id <> 0 \
             GROUP BY version_id ORDER BY version_id"
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
        // InsertVersion: `INSERT INTO %s (version_id, is_applied) VALUES ($1, $2)`, (v, true).
        format!(
            "INSERT INTO {qualified} (version_id, is_applied) VALUES ({}, true)",
            m.version
        )
    }

    fn row_key(&self, m: &Migration) -> (&'static str, &'static str, String) {
        // No checksum to repair; `repair` finds nothing changed.
        ("is_applied", "version_id", m.version.to_string())
    }

    fn new_files(
        &self,
        source: &Source,
        slug: &str,
        now_ms: i64,
    ) -> Result<Vec<(String, String)>, String> {
        // `goose create NAME sql`'s name and template.
        super::timestamped_file(
            source,
            slug,
            now_ms,
            "-- +goose Up\n-- +goose StatementBegin\nSELECT 'up SQL query';\n-- +goose StatementEnd\n\n\
             -- +goose Down\n-- +goose StatementBegin\nSELECT 'down SQL query';\n-- +goose StatementEnd\n",
        )
    }

    fn look_alike(&self) -> Option<super::LookAlike> {
        Some(super::LookAlike {
            columns: &["version_id", "is_applied"],
            tool: "goose",
            setting: "history.schema / history.table (goose's -table)",
        })
    }

    fn default_out_of_order(&self) -> OutOfOrder {
        // `goose up` refuses a pending file older than the newest applied (without -allow-missing).
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
        let recorded: HashSet<i64> = rows.iter().filter_map(|r| r.version).collect();
        // goose's dbMaxVersion: the newest row, whether or not the folder has its file.
        let db_max = recorded.iter().copied().max();
        let local: HashSet<i64> = migrations.iter().map(|m| m.version).collect();
        let unmatched: Vec<AppliedRow> = rows
            .iter()
            .filter(|r| r.version.is_some_and(|v| !local.contains(&v)))
            .cloned()
            .collect();
        // goose itself ignores rows without a file; db-init warns of a rollback and refuses a
        // hole, as for every format (`allow_missing` lets a hole through).
        let newest = migrations.iter().map(|m| m.version).max();
        plan.unmatched(
            unmatched,
            newest.is_some(),
            |r| r.version.zip(newest).is_some_and(|(v, n)| v > n),
            policy,
        );
        for (index, m) in migrations.iter().enumerate() {
            let state = match db_max {
                _ if recorded.contains(&m.version) => State::Applied,
                Some(max) if m.version < max => State::OutOfOrder,
                _ => State::Pending,
            };
            plan.add_unchecked(index, m, state, db_max, policy);
        }
        (plan, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_as_goose_numeric_component_reads_them() {
        assert_eq!(version_of("00001_init.sql"), Ok(1));
        assert_eq!(
            version_of("20240101120000_add_users.sql"),
            Ok(20240101120000)
        );
        assert_eq!(version_of("+5_x.sql"), Ok(5));
        assert_eq!(version_of("1_.sql"), Ok(1));
        assert!(version_of("0_x.sql").is_err());
        assert!(version_of("init.sql").is_err());
        assert!(version_of("v1_init.sql").is_err());
        assert!(is_goose("-- comment\n-- +goose Up\nSELECT 1;\n"));
        assert!(!is_goose("SELECT 1;\n"));
    }
}
