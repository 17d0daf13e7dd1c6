//! Flyway: `V<version>__<description>.sql` files applied in version order (`_` in a version
//! reads as `.`, versions compare part by part as numbers), then `R__<description>.sql`
//! repeatables, each re-run when its checksum changes; files in subfolders count, as Flyway
//! scans its location recursively. The history is `flyway_schema_history` with Flyway's DDL,
//! one row per run (`installed_rank` counting up, the checksum Flyway's CRC32 of the file's
//! lines), as `flyway migrate` writes it; a failed row stops the run naming `flyway repair`.
//! Flyway's rules for versions, names and checksums are in `flyway_rules.rs`.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::path::Path;

use super::flyway_rules::{self, Name, Version};
use super::{Folder, Format};
use crate::config::{MigrateSettings, OutOfOrder};
use crate::migrate::drizzle_v1::UpgradeMatch;
use crate::migrate::history::{Shape, Table};
use crate::migrate::migration::{Migration, Outside, Split};
use crate::migrate::plan::{AppliedRow, Entry, Plan, Policy, State};
use crate::migrate::read::Wanted;
use crate::migrate::source::{Layout, Source};
use crate::migrate::{MigrateError, Problem};
use crate::pg::quote::{quote_ident, quote_literal};

const TABLE: &str = "flyway_schema_history";
/// Joins the fields of a history row in the `name` the shared reader carries (never in a
/// description or a file name Flyway accepts).
const SEP: char = '\u{1f}';

pub struct Flyway;

pub use flyway_rules::parse_name;

/// A row of `flyway_schema_history` as the planner reads it.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    rank: i64,
    version: Option<String>,
    description: String,
    kind: String,
    script: String,
    checksum: String,
    success: bool,
}

impl Row {
    fn from_applied(r: &AppliedRow) -> Option<Row> {
        let name = r.name.as_deref()?;
        let mut f = name.split(SEP);
        let kind = f.next()?.to_string();
        let success = f.next()? == "t";
        let version = Some(f.next()?.to_string()).filter(|v| !v.is_empty());
        let description = f.next()?.to_string();
        let script = f.next()?.to_string();
        Some(Row {
            rank: r.id.unwrap_or_default(),
            version,
            description,
            kind,
            script,
            checksum: r.checksum.clone(),
            success,
        })
    }

    /// How the row is named to people (and to the shared missing/ahead reports).
    fn applied(&self) -> AppliedRow {
        let label = match &self.version {
            Some(v) => format!("version {v} ({})", self.script),
            None => format!("repeatable {} ({})", self.description, self.script),
        };
        AppliedRow {
            id: Some(self.rank),
            version: None,
            checksum: self.checksum.clone(),
            name: Some(label),
        }
    }
}

impl Format for Flyway {
    fn layout(&self) -> Layout {
        Layout::Flyway
    }

    fn claims(&self, folder: &Folder) -> bool {
        folder.flyway
    }

    fn load(
        &self,
        source: &mut Source,
        folder: Folder,
        _settings: &MigrateSettings,
    ) -> Result<(), MigrateError> {
        let mut files = Vec::new();
        scripts(&folder.dir, "", &mut files)?;
        let mut named: Vec<(Name, String)> = files
            .into_iter()
            .filter_map(|f| {
                let base = f.rsplit('/').next().unwrap_or(&f).to_string();
                parse_name(&base).map(|n| (n, f))
            })
            .collect();
        // Versions in Flyway's order, then repeatables by description.
        named.sort_by(|(a, fa), (b, fb)| flyway_rules::order(a, b).then_with(|| fa.cmp(fb)));
        for pair in named.windows(2) {
            if let [(a, fa), (b, fb)] = pair {
                if flyway_rules::order(a, b) == Ordering::Equal {
                    source.problems.push(Problem::Duplicate {
                        version: a.key(),
                        file: format!("{fa} and {fb}"),
                    });
                }
            }
        }
        let wanted = named
            .iter()
            .enumerate()
            .map(|(i, (n, file))| Wanted {
                // The rank in Flyway's order: the shared steps order by it.
                version: i as i64 + 1,
                name: n.key(),
                file: file.clone(),
                split: Split::Statements,
            })
            .collect();
        super::read_into(source, &folder.dir, wanted)?;
        for m in &mut source.migrations {
            if let Some(at) = flyway_rules::placeholder(&m.text) {
                let (line, column) = m.line_col(at);
                source.problems.push(Problem::Unsupported {
                    file: m.file.clone(),
                    at: Some((line, column)),
                    what: "a Flyway placeholder (`${...}`), which Flyway replaces before it runs \
                           the script and db-init does not; write the value into the script"
                        .into(),
                });
            }
            m.checksum = flyway_rules::checksum(&m.text).to_string();
            if outside_by_conf(&folder.dir.join(format!("{}.conf", m.file)))? {
                m.outside = Some(Outside::Annotation {
                    text: "executeInTransaction=false",
                });
            }
        }
        Ok(())
    }

    fn shown_version(&self, m: &Migration) -> String {
        // The version as written (`1.1`), not the rank db-init orders by; none for a repeatable.
        match parse_name(m.file.rsplit('/').next().unwrap_or(&m.file)) {
            Some(Name::Versioned { version, .. }) => version.text,
            _ => "repeatable".into(),
        }
    }

    fn history_table(&self, settings: &MigrateSettings) -> (String, String) {
        super::tool_table(settings, TABLE)
    }

    fn create_sql(&self, schema: &str, table: &str, qualified: &str) -> String {
        // flyway-database-postgresql, PostgreSQLDatabase.getRawCreateScript (no tablespace).
        format!(
            "CREATE SCHEMA IF NOT EXISTS {};\n\
             CREATE TABLE IF NOT EXISTS {qualified} (\n\
             \x20   \"installed_rank\" INT NOT NULL,\n\
             \x20   \"version\" VARCHAR(50),\n\
             \x20   \"description\" VARCHAR(200) NOT NULL,\n\
             \x20   \"type\" VARCHAR(20) NOT NULL,\n\
             \x20   \"script\" VARCHAR(1000) NOT NULL,\n\
             \x20   \"checksum\" INTEGER,\n\
             \x20   \"installed_by\" VARCHAR(100) NOT NULL,\n\
             \x20   \"installed_on\" TIMESTAMP NOT NULL DEFAULT now(),\n\
             \x20   \"execution_time\" INTEGER NOT NULL,\n\
             \x20   \"success\" BOOLEAN NOT NULL\n\
             );\n\
             ALTER TABLE {qualified} ADD CONSTRAINT {} PRIMARY KEY (\"installed_rank\");\n\
             CREATE INDEX {} ON {qualified} (\"success\");",
            quote_ident(schema),
            quote_ident(&format!("{table}_pk")),
            quote_ident(&format!("{table}_s_idx")),
        )
    }

    fn rows_sql(&self, _shape: Shape, qualified: &str) -> String {
        format!(
            "SELECT installed_rank, NULL, coalesce(checksum::text, ''), \
             concat_ws(chr(31), type, CASE WHEN success THEN 't' ELSE 'f' END, coalesce(version, ''), \
             description, script) FROM {qualified} ORDER BY installed_rank"
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
        let base = m.file.rsplit('/').next().unwrap_or(&m.file);
        let (version, description) = match parse_name(base) {
            Some(Name::Versioned {
                version,
                description,
            }) => (quote_literal(&version.text), description),
            Some(Name::Repeatable { description }) => ("NULL".into(), description),
            None => ("NULL".into(), m.name.clone()),
        };
        // Measured by the server inside the migration's transaction, as Flyway measures it.
        let took = match execution_ms {
            Some(ms) => ms.min(i32::MAX as u64).to_string(),
            None => "(extract(epoch FROM clock_timestamp() - now()) * 1000)::int".into(),
        };
        // Flyway's JdbcTableSchemaHistory: the next rank, the current user.
        format!(
            "INSERT INTO {qualified} (installed_rank, version, description, type, script, checksum, \
             installed_by, execution_time, success) SELECT coalesce(max(installed_rank), 0) + 1, \
             {version}, {}, 'SQL', {}, {}, current_user, {took}, true FROM {qualified}",
            quote_literal(&flyway_rules::abbreviate(&description)),
            quote_literal(&m.file),
            m.checksum
        )
    }

    fn row_key(&self, m: &Migration) -> (&'static str, &'static str, String) {
        ("checksum", "version", quote_literal(&m.name))
    }

    fn new_files(
        &self,
        source: &Source,
        slug: &str,
        _now_ms: i64,
    ) -> Result<Vec<(String, String)>, String> {
        // The next major version after the newest (`V3__x.sql` after `V2_1__y.sql`).
        let newest = source
            .migrations
            .iter()
            .filter_map(|m| parse_name(m.file.rsplit('/').next().unwrap_or(&m.file)))
            .filter_map(|n| n.version().cloned())
            .max();
        let next = newest.map_or(1, |v| v.major().saturating_add(1));
        Ok(vec![(
            format!("V{next}__{slug}.sql"),
            format!("-- {slug}\n"),
        )])
    }

    fn default_out_of_order(&self) -> OutOfOrder {
        // Flyway's outOfOrder is false: a pending version below the newest applied fails validation.
        OutOfOrder::Error
    }

    fn tool_lock(&self) -> Option<super::ToolLock> {
        Some(super::ToolLock::Named(flyway_rules::lock_key))
    }

    fn plan(
        &self,
        migrations: &[Migration],
        table: Option<&Table>,
        policy: &Policy,
    ) -> (Plan, Option<Vec<UpgradeMatch>>) {
        let rows: Vec<Row> = table
            .map(|t| t.rows.iter().filter_map(Row::from_applied).collect())
            .unwrap_or_default();
        (plan(migrations, &rows, policy), None)
    }
}

/// Flyway's state of each file against its rows.
fn plan(migrations: &[Migration], rows: &[Row], policy: &Policy) -> Plan {
    let mut plan = Plan::default();
    for row in rows.iter().filter(|r| !r.success) {
        let what = row.version.as_deref().unwrap_or(&row.description);
        plan.problems.push(Problem::Unfinished {
            migration: format!("{} ({what})", row.script),
            tool: "Flyway",
            fix: "see what of it reached the database and finish or undo it by hand, then remove \
                  the failed row as Flyway does: `flyway repair`"
                .into(),
        });
    }
    let live = live_rows(rows);
    let baseline = live
        .iter()
        .filter(|r| r.kind == "BASELINE")
        .filter_map(|r| r.version.as_deref().map(Version::parse))
        .max();
    let applied_max = live
        .iter()
        .filter(|r| r.kind != "BASELINE")
        .filter_map(|r| r.version.as_deref().map(Version::parse))
        .chain(baseline.clone())
        .max();
    let names: Vec<Option<Name>> = migrations
        .iter()
        .map(|m| parse_name(m.file.rsplit('/').next().unwrap_or(&m.file)))
        .collect();
    // Rows no file has: a hole (an error, as for Flyway) or, newer than every file, the
    // database ahead of this folder (ignored with a warning, as Flyway does).
    let newest_file = names
        .iter()
        .flatten()
        .filter_map(Name::version)
        .max()
        .cloned();
    // Maps, so a folder of thousands of scripts plans in linear time.
    let mut by_version: HashMap<String, &Row> = HashMap::new();
    let mut by_description: HashMap<&str, &Row> = HashMap::new();
    for r in &live {
        match &r.version {
            Some(v) => by_version.insert(Version::parse(v).key(), r),
            None => by_description.insert(r.description.as_str(), r),
        };
    }
    let files: HashSet<String> = names
        .iter()
        .flatten()
        .map(|n| match n {
            Name::Versioned { version, .. } => version.key(),
            Name::Repeatable { description } => format!("R:{description}"),
        })
        .collect();
    let unmatched: Vec<AppliedRow> = live
        .iter()
        .filter(|r| r.kind != "BASELINE")
        .filter(|r| {
            let key = match &r.version {
                Some(v) => Version::parse(v).key(),
                None => format!("R:{}", r.description),
            };
            !files.contains(&key)
        })
        .map(|r| r.applied())
        .collect();
    let ahead_of = |r: &AppliedRow| {
        live.iter()
            .find(|l| Some(l.rank) == r.id)
            .and_then(|l| l.version.as_deref().map(Version::parse))
            .zip(newest_file.clone())
            .is_some_and(|(v, n)| v > n)
    };
    plan.unmatched(unmatched, newest_file.is_some(), ahead_of, policy);
    let lenient = Policy {
        out_of_order: OutOfOrder::Allow,
        ..*policy
    };
    for (index, (m, name)) in migrations.iter().zip(&names).enumerate() {
        let (state, stored) = match name {
            Some(Name::Versioned { version, .. }) => match by_version.get(&version.key()) {
                Some(r) if r.kind == "BASELINE" => (State::Applied, None),
                Some(r) if r.checksum == m.checksum => (State::Applied, None),
                Some(r) => (State::Changed, Some(r.checksum.clone())),
                None if baseline.as_ref().is_some_and(|b| version <= b) => (State::Applied, None),
                None if applied_max.as_ref().is_some_and(|a| version < a) => {
                    (State::OutOfOrder, None)
                }
                None => (State::Pending, None),
            },
            Some(Name::Repeatable { description }) => {
                match by_description.get(description.as_str()) {
                    Some(r) if r.checksum == m.checksum => (State::Applied, None),
                    // Changed since its last run: Flyway runs it again, with a new row.
                    _ => (State::Pending, None),
                }
            }
            None => (State::Pending, None),
        };
        if state == State::OutOfOrder && policy.out_of_order == OutOfOrder::Error {
            plan.problems.push(Problem::OutOfOrderVersion {
                file: m.file.clone(),
                tool: "Flyway",
                newest_applied: applied_max
                    .as_ref()
                    .map(|v| v.text.clone())
                    .unwrap_or_default(),
            });
        }
        let (state, stored) = plan.judge(m, state, stored, None, &lenient);
        plan.entries.push(Entry {
            index,
            state,
            stored,
        });
    }
    plan
}

/// The rows that still count: successful ones not undone by a later `DELETE` row (`flyway
/// repair` of a missing migration) nor an `UNDO_SQL` one, and no `SCHEMA` marker.
fn live_rows(rows: &[Row]) -> Vec<&Row> {
    let mut live: Vec<&Row> = Vec::new();
    for r in rows.iter().filter(|r| r.success) {
        match r.kind.as_str() {
            "SCHEMA" => {}
            "DELETE" | "UNDO_SQL" => live.retain(|l| match &r.version {
                Some(_) => l.version != r.version,
                None => l.version.is_some() || l.description != r.description,
            }),
            _ => live.push(r),
        }
    }
    live
}

/// The `.sql` files under `dir`, relative to it with `/`, as Flyway finds them in its location.
fn scripts(root: &Path, prefix: &str, out: &mut Vec<String>) -> Result<(), MigrateError> {
    let dir = root.join(prefix);
    let mut entries: Vec<(String, bool)> = Vec::new();
    for entry in std::fs::read_dir(&dir).map_err(crate::migrate::source::io(&dir))? {
        let entry = entry.map_err(crate::migrate::source::io(&dir))?;
        let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
        entries.push((entry.file_name().to_string_lossy().into_owned(), is_dir));
    }
    entries.sort();
    for (name, is_dir) in entries {
        let path = match prefix {
            "" => name.clone(),
            p => format!("{p}/{name}"),
        };
        if is_dir {
            scripts(root, &path, out)?;
        } else if name.ends_with(".sql") {
            out.push(path);
        }
    }
    Ok(())
}

/// A script configuration file (`V1__x.sql.conf`) with `executeInTransaction=false`.
fn outside_by_conf(path: &Path) -> Result<bool, MigrateError> {
    if !path.is_file() {
        return Ok(false);
    }
    let text = std::fs::read_to_string(path).map_err(crate::migrate::source::io(path))?;
    Ok(text.lines().any(|l| {
        l.split_once('=').is_some_and(|(k, v)| {
            k.trim() == "executeInTransaction" && v.trim().eq_ignore_ascii_case("false")
        })
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Unlisted;
    use crate::migrate::migration::testing::migration;

    const POLICY: Policy = Policy {
        layout: Layout::Flyway,
        out_of_order: OutOfOrder::Error,
        allow_missing: false,
        ahead: Unlisted::Warn,
        atomic: false,
    };

    fn file(rank: i64, file: &str, sql: &str) -> Migration {
        let mut m = migration(rank, file, sql);
        m.file = file.to_string();
        m.name = parse_name(file).map(|n| n.key()).unwrap_or_default();
        m.checksum = flyway_rules::checksum(&m.text).to_string();
        m
    }

    fn row(rank: i64, version: Option<&str>, description: &str, m: Option<&Migration>) -> Row {
        Row {
            rank,
            version: version.map(str::to_string),
            description: description.into(),
            kind: "SQL".into(),
            script: m.map(|m| m.file.clone()).unwrap_or_default(),
            checksum: m.map(|m| m.checksum.clone()).unwrap_or_default(),
            success: true,
        }
    }

    fn states(plan: &Plan) -> Vec<State> {
        plan.entries.iter().map(|e| e.state).collect()
    }

    #[test]
    fn versions_by_number_then_changed_repeatables_run_again() {
        let v1 = file(1, "V1__init.sql", "CREATE TABLE a (id int);\n");
        let v2 = file(2, "V1_1__more.sql", "CREATE TABLE b (id int);\n");
        let r = file(3, "R__view.sql", "CREATE OR REPLACE VIEW v AS SELECT 1;\n");
        let old_r = file(3, "R__view.sql", "CREATE OR REPLACE VIEW v AS SELECT 2;\n");
        let ms = [v1.clone(), v2.clone(), r.clone()];
        let rows = [row(1, Some("1"), "init", Some(&v1))];
        let p = plan(&ms, &rows, &POLICY);
        assert_eq!(states(&p), [State::Applied, State::Pending, State::Pending]);
        let rows = [
            row(1, Some("1"), "init", Some(&v1)),
            row(2, Some("1.1"), "more", Some(&v2)),
            row(3, None, "view", Some(&old_r)),
        ];
        let p = plan(&ms, &rows, &POLICY);
        assert_eq!(states(&p), [State::Applied, State::Applied, State::Pending]);
        let mut rows = rows.to_vec();
        rows.push(row(4, None, "view", Some(&r)));
        let p = plan(&ms, &rows, &POLICY);
        assert_eq!(states(&p), [State::Applied, State::Applied, State::Applied]);
        assert!(p.problems.is_empty(), "{:?}", p.problems);
    }

    #[test]
    fn a_version_below_the_newest_applied_is_refused_and_a_failed_row_names_repair() {
        let v1 = file(1, "V1__a.sql", "SELECT 1;\n");
        let v2 = file(2, "V2__b.sql", "SELECT 2;\n");
        let p = plan(
            &[v1.clone(), v2.clone()],
            &[row(1, Some("2"), "b", Some(&v2))],
            &POLICY,
        );
        assert!(
            matches!(p.problems.as_slice(), [Problem::OutOfOrderVersion { .. }]),
            "{:?}",
            p.problems
        );
        let mut failed = row(2, Some("2"), "b", Some(&v2));
        failed.success = false;
        let p = plan(
            &[v1.clone(), v2],
            &[row(1, Some("1"), "a", Some(&v1)), failed],
            &POLICY,
        );
        assert!(
            p.problems
                .iter()
                .any(|x| x.to_string().contains("flyway repair")),
            "{:?}",
            p.problems
        );
        assert_eq!(states(&p), [State::Applied, State::Pending]);
    }

    #[test]
    fn rows_beyond_the_folder_are_the_database_ahead_and_a_baseline_covers_older_files() {
        let v1 = file(1, "V1__a.sql", "SELECT 1;\n");
        let v3 = file(3, "V3__c.sql", "SELECT 3;\n");
        let p = plan(
            std::slice::from_ref(&v1),
            &[
                row(1, Some("1"), "a", Some(&v1)),
                row(2, Some("2"), "b", None),
            ],
            &POLICY,
        );
        assert!(p.problems.is_empty(), "{:?}", p.problems);
        assert_eq!(p.ahead.len(), 1);
        let mut base = row(1, Some("2"), "<< Flyway Baseline >>", None);
        base.kind = "BASELINE".into();
        let p = plan(&[v1, v3], &[base], &POLICY);
        assert_eq!(states(&p), [State::Applied, State::Pending]);
        assert!(p.problems.is_empty(), "{:?}", p.problems);
    }

    #[test]
    fn the_rows_fields_survive_the_shared_reader() {
        let r = AppliedRow {
            id: Some(3),
            version: None,
            checksum: "-12".into(),
            name: Some(
                [
                    "SQL",
                    "t",
                    "1.1",
                    "more things",
                    "sub/V1_1__more_things.sql",
                ]
                .join("\u{1f}"),
            ),
        };
        let row = Row::from_applied(&r).expect("a row");
        assert_eq!(row.version.as_deref(), Some("1.1"));
        assert_eq!(row.script, "sub/V1_1__more_things.sql");
        assert!(row.success);
    }
}
