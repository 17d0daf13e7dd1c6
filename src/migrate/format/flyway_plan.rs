//! Flyway's planner: the state of each script against `flyway_schema_history`'s rows as Flyway
//! reads them (versions by number, repeatables by description and checksum, failed, deleted,
//! undone, baseline and schema rows), with db-init's checks on top.

use std::collections::{HashMap, HashSet};

use super::flyway_rules::{parse_name, Name, Version};
use crate::config::OutOfOrder;
use crate::migrate::migration::Migration;
use crate::migrate::plan::{AppliedRow, Entry, Plan, Policy, State};
use crate::migrate::Problem;

/// Joins the fields of a history row in the `name` the shared reader carries (never in a
/// description or a file name Flyway accepts).
const SEP: char = '\u{1f}';

/// A row of `flyway_schema_history` as the planner reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    rank: i64,
    version: Option<String>,
    description: String,
    kind: String,
    script: String,
    checksum: String,
    success: bool,
}

impl Row {
    pub fn from_applied(r: &AppliedRow) -> Option<Row> {
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

/// Flyway's state of each file against its rows.
pub fn plan(migrations: &[Migration], rows: &[Row], policy: &Policy) -> Plan {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Unlisted;
    use crate::migrate::format::flyway_rules;
    use crate::migrate::migration::testing::migration;
    use crate::migrate::Layout;

    const POLICY: Policy = Policy {
        layout: Layout::Flyway,
        out_of_order: OutOfOrder::Error,
        allow_missing: false,
        ahead: Unlisted::Warn,
        atomic: false,
        out_of_order_note: "skipped",
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
