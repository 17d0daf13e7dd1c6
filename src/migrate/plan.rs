//! The pure planner: local migrations + history rows + policy -> what is applied, what is
//! pending, and every problem that must stop the run before anything is applied.

use std::collections::HashMap;

use super::migration::Migration;
use super::source::{Layout, Source};
use super::{Problem, Warning};
use crate::config::{MigrateSettings, OutOfOrder};

/// One history row, whatever the layout: Drizzle's (`id`, `created_at`, `hash`, v1's `name`)
/// or db-init's (`version`, `checksum`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AppliedRow {
    pub id: Option<i64>,
    pub version: Option<i64>,
    pub checksum: String,
    pub name: Option<String>,
}

#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub layout: Layout,
    pub out_of_order: OutOfOrder,
    pub allow_missing: bool,
    pub atomic: bool,
}

impl Policy {
    pub fn new(s: &MigrateSettings, layout: Layout) -> Policy {
        Policy {
            layout,
            out_of_order: s.out_of_order.unwrap_or(match layout {
                Layout::DrizzleV1 => OutOfOrder::Allow,
                Layout::Drizzle | Layout::Numbered => OutOfOrder::Error,
            }),
            allow_missing: s.allow_missing,
            atomic: s.atomic,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Applied,
    Pending,
    /// Pending, but older than the newest applied migration.
    OutOfOrder,
    /// Applied, but the file changed since.
    Changed,
}

#[derive(Debug, Clone)]
pub struct Entry {
    /// Index into the migrations slice.
    pub index: usize,
    pub state: State,
    /// The checksum in the history when it differs from the file's.
    pub stored: Option<String>,
}

#[derive(Debug, Default)]
pub struct Plan {
    pub entries: Vec<Entry>,
    /// History rows that match no local migration.
    pub missing: Vec<AppliedRow>,
    pub problems: Vec<Problem>,
    pub warnings: Vec<Warning>,
}

impl Plan {
    /// db-init's checks on one migration's state, for both planners: a change of line endings
    /// only is a warning (the migration counts as applied), a real change and an out-of-order
    /// migration (unless allowed) are problems, and a pending migration that runs outside a
    /// transaction cannot join an atomic batch.
    pub(super) fn judge(
        &mut self,
        m: &Migration,
        state: State,
        stored: Option<String>,
        newest_applied: Option<i64>,
        policy: &Policy,
    ) -> (State, Option<String>) {
        match (state, &stored) {
            (State::Changed, Some(old)) if m.only_line_endings_differ(old) => {
                self.warnings.push(Warning::LineEndings {
                    file: m.file.clone(),
                });
                return (State::Applied, None);
            }
            (State::Changed, _) => self.problems.push(Problem::Changed {
                file: m.file.clone(),
                tag: m.name.clone(),
                stored: stored.clone().unwrap_or_default(),
                local: m.checksum.clone(),
            }),
            (State::OutOfOrder, _) if policy.out_of_order == OutOfOrder::Error => {
                self.problems.push(Problem::OutOfOrder {
                    file: m.file.clone(),
                    newest_applied: newest_applied.unwrap_or_default(),
                })
            }
            _ => {}
        }
        let pending = matches!(state, State::Pending | State::OutOfOrder);
        if pending && policy.atomic && m.outside.is_some() {
            self.problems.push(Problem::AtomicWithNoTransaction {
                file: m.file.clone(),
            });
        }
        (state, stored)
    }

    /// Migrations to apply, in order (meaningful only when `problems` is empty).
    pub fn pending(&self) -> Vec<usize> {
        self.entries
            .iter()
            .filter(|e| matches!(e.state, State::Pending | State::OutOfOrder))
            .map(|e| e.index)
            .collect()
    }
}

pub fn plan(migrations: &[Migration], applied: &[AppliedRow], policy: &Policy) -> Plan {
    // Maps, so a folder of 10,000 migrations plans in linear time.
    let by_version: HashMap<i64, usize> = migrations
        .iter()
        .enumerate()
        .map(|(i, m)| (m.version, i))
        .collect();
    let mut by_checksum: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, m) in migrations.iter().enumerate() {
        by_checksum.entry(m.checksum.as_str()).or_default().push(i);
    }
    let mut state: Vec<Option<(State, Option<String>)>> = vec![None; migrations.len()];
    let mut missing = Vec::new();
    for row in applied {
        match row.version.and_then(|v| by_version.get(&v).copied()) {
            Some(i) if migrations[i].checksum == row.checksum => {
                state[i] = Some((State::Applied, None))
            }
            Some(i) => {
                // A row stored twice (Drizzle's race) may match where another does not.
                if state[i].is_none() {
                    state[i] = Some((State::Changed, Some(row.checksum.clone())));
                }
            }
            None => {
                // Drizzle identifies nothing by `when` itself; a row whose entry's `when` was
                // rewritten is still the same migration if its hash matches.
                let same_hash = by_checksum.get(row.checksum.as_str());
                let by_hash = (policy.layout == Layout::Drizzle)
                    .then(|| same_hash?.iter().copied().find(|&i| state[i].is_none()))
                    .flatten();
                match by_hash {
                    Some(i) => state[i] = Some((State::Applied, None)),
                    None if same_hash.is_some() => {}
                    None => missing.push(row.clone()),
                }
            }
        }
    }
    let newest_applied = migrations
        .iter()
        .zip(&state)
        .filter(|(_, s)| s.is_some())
        .map(|(m, _)| m.version)
        .chain(missing.iter().filter_map(|r| r.version))
        .max();

    let mut plan = Plan::default();
    for (index, m) in migrations.iter().enumerate() {
        let (state, stored) = match state[index].take() {
            Some(s) => s,
            None if newest_applied.is_some_and(|newest| m.version < newest) => {
                (State::OutOfOrder, None)
            }
            None => (State::Pending, None),
        };
        let (state, stored) = plan.judge(m, state, stored, newest_applied, policy);
        plan.entries.push(Entry {
            index,
            state,
            stored,
        });
    }
    if !policy.allow_missing {
        plan.problems
            .extend(missing.iter().map(|r| Problem::Missing {
                version: r.version,
                name: r.name.clone(),
                checksum: r.checksum.clone(),
            }));
    }
    plan.missing = missing;
    plan
}

/// The checks that need no database: without one every migration may be pending, so every
/// one is checked.
pub fn offline_problems(source: &Source, atomic: bool) -> Vec<Problem> {
    let mut problems = source.problems.clone();
    if atomic {
        problems.extend(
            source
                .migrations
                .iter()
                .filter(|m| m.outside.is_some())
                .map(|m| Problem::AtomicWithNoTransaction {
                    file: m.file.clone(),
                }),
        );
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(version: i64, sql: &str) -> Migration {
        super::super::migration::testing::migration(version, &format!("{version:04}_m.sql"), sql)
    }

    fn row(version: i64, checksum: &str) -> AppliedRow {
        AppliedRow {
            version: Some(version),
            checksum: checksum.to_string(),
            ..AppliedRow::default()
        }
    }

    const POLICY: Policy = Policy {
        layout: Layout::Drizzle,
        out_of_order: OutOfOrder::Error,
        allow_missing: false,
        atomic: false,
    };

    #[test]
    fn fresh_database_applies_everything_in_order() {
        let ms = [m(10, "A"), m(20, "B")];
        let p = plan(&ms, &[], &POLICY);
        assert!(p.problems.is_empty());
        assert_eq!(p.pending(), vec![0, 1]);
    }

    #[test]
    fn applied_rows_match_by_version_and_hash_and_duplicates_are_accepted() {
        let ms = [m(10, "A"), m(20, "B"), m(30, "C")];
        let rows = [
            row(10, &ms[0].checksum),
            row(10, &ms[0].checksum),
            row(20, &ms[1].checksum),
        ];
        let p = plan(&ms, &rows, &POLICY);
        assert!(p.problems.is_empty(), "{:?}", p.problems);
        assert_eq!(p.pending(), vec![2]);
    }

    #[test]
    fn an_exact_row_wins_over_a_stale_one_in_either_order() {
        let ms = [m(10, "A")];
        for rows in [
            [row(10, "stale"), row(10, &ms[0].checksum)],
            [row(10, &ms[0].checksum), row(10, "stale")],
        ] {
            let p = plan(&ms, &rows, &POLICY);
            assert!(p.problems.is_empty(), "{:?}", p.problems);
            assert!(p.pending().is_empty());
        }
    }

    #[test]
    fn edited_applied_migration_is_named_with_both_hashes() {
        let ms = [m(10, "A edited")];
        let p = plan(&ms, &[row(10, "abc")], &POLICY);
        match &p.problems[..] {
            [Problem::Changed {
                file,
                stored,
                local,
                ..
            }] => {
                assert_eq!(file, "0010_m.sql");
                assert_eq!(stored, "abc");
                assert_eq!(local, &ms[0].checksum);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn out_of_order_is_refused_unless_allowed() {
        let ms = [m(10, "A"), m(30, "C"), m(20, "B")];
        let rows = [row(10, &ms[0].checksum), row(30, &ms[1].checksum)];
        let p = plan(&ms, &rows, &POLICY);
        assert!(matches!(
            &p.problems[..],
            [Problem::OutOfOrder {
                newest_applied: 30,
                ..
            }]
        ));
        let allow = Policy {
            out_of_order: OutOfOrder::Allow,
            ..POLICY
        };
        let p = plan(&ms, &rows, &allow);
        assert!(p.problems.is_empty());
        assert_eq!(p.pending(), vec![2]);
    }

    #[test]
    fn missing_file_for_applied_row_unless_allowed() {
        let ms = [m(10, "A")];
        let rows = [row(10, &ms[0].checksum), row(5, "gone")];
        let p = plan(&ms, &rows, &POLICY);
        assert!(matches!(
            &p.problems[..],
            [Problem::Missing {
                version: Some(5),
                ..
            }]
        ));
        let p = plan(
            &ms,
            &rows,
            &Policy {
                allow_missing: true,
                ..POLICY
            },
        );
        assert!(p.problems.is_empty());
        assert_eq!(p.missing.len(), 1);
    }

    #[test]
    fn drizzle_row_with_rewritten_when_matches_by_hash() {
        let ms = [m(11, "A")];
        let p = plan(&ms, &[row(10, &ms[0].checksum)], &POLICY);
        assert!(p.problems.is_empty());
        assert!(p.pending().is_empty());
    }

    #[test]
    fn a_migration_outside_a_transaction_cannot_join_an_atomic_batch() {
        let ms = [m(10, "CREATE TABLE t (x int);\n--> statement-breakpoint\nCREATE INDEX CONCURRENTLY i ON t (x);")];
        assert!(plan(&ms, &[], &POLICY).problems.is_empty());
        let atomic = Policy {
            atomic: true,
            ..POLICY
        };
        assert!(matches!(
            &plan(&ms, &[], &atomic).problems[..],
            [Problem::AtomicWithNoTransaction { .. }]
        ));
        // Already applied: history, not a problem.
        assert!(plan(&ms, &[row(10, &ms[0].checksum)], &atomic)
            .problems
            .is_empty());
    }

    #[test]
    fn a_line_ending_change_is_a_warning() {
        let applied = m(10, "SELECT 1;\nSELECT 2;\n");
        let converted = [m(10, "SELECT 1;\r\nSELECT 2;\r\n")];
        let p = plan(&converted, &[row(10, &applied.checksum)], &POLICY);
        assert!(p.problems.is_empty(), "{:?}", p.problems);
        assert!(p.pending().is_empty());
        assert!(matches!(&p.warnings[..], [Warning::LineEndings { .. }]));
    }
}
