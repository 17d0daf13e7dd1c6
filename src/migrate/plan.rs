//! The pure planner: local migrations + history rows + policy -> what is applied, what is
//! pending, and every problem that must stop the run before anything is applied.

use std::collections::HashMap;

use super::migration::Migration;
use super::source::{Layout, Source};
use super::{Problem, Warning};
use crate::config::{MigrateSettings, OutOfOrder, Unlisted};

/// One history row, whatever the layout: Drizzle's (`id`, `created_at`, `hash`, v1's `name`)
/// or db-init's (`version`, `checksum`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AppliedRow {
    pub id: Option<i64>,
    pub version: Option<i64>,
    pub checksum: String,
    pub name: Option<String>,
}

impl AppliedRow {
    /// How a row is named to people: Drizzle v1's folder name, else the version.
    pub fn label(&self) -> String {
        match (&self.name, self.version) {
            (Some(name), _) => name.clone(),
            (None, Some(v)) => v.to_string(),
            (None, None) => format!("id {}", self.id.unwrap_or_default()),
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub layout: Layout,
    pub out_of_order: OutOfOrder,
    pub allow_missing: bool,
    /// History rows newer than every migration of the folder: a warning or a problem.
    pub ahead: Unlisted,
    pub atomic: bool,
    /// What the folder's own tool does with a pending migration older than the newest applied.
    pub out_of_order_note: &'static str,
}

impl Policy {
    pub fn new(s: &MigrateSettings, layout: Layout) -> Policy {
        Policy {
            layout,
            out_of_order: s
                .out_of_order
                .unwrap_or_else(|| super::format::of(layout).default_out_of_order()),
            allow_missing: s.allow_missing,
            ahead: s.database_ahead,
            atomic: s.atomic,
            out_of_order_note: super::format::of(layout).out_of_order_note(),
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
    /// History rows that match no local migration and are older than one: a hole.
    pub missing: Vec<AppliedRow>,
    /// History rows that match no local migration and are newer than all of them: the
    /// database is ahead of this folder (an older release runs against a newer schema).
    pub ahead: Vec<AppliedRow>,
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
                    tool_does: policy.out_of_order_note,
                })
            }
            _ => {}
        }
        let pending = matches!(state, State::Pending | State::OutOfOrder);
        if pending && policy.atomic && m.outside.is_some() {
            self.problems.push(Problem::AtomicWithNoTransaction {
                file: m.file.clone(),
            });
        } else if pending && policy.atomic && !super::label_commits::commit_points(m).is_empty() {
            self.problems.push(Problem::AtomicWithLabelCommit {
                file: m.file.clone(),
            });
        }
        (state, stored)
    }

    /// Adds migration `index` in `state`, judged (see [`Plan::judge`]), for a history without
    /// checksums (nothing is ever "changed").
    pub(super) fn add_unchecked(
        &mut self,
        index: usize,
        m: &Migration,
        state: State,
        newest_applied: Option<i64>,
        policy: &Policy,
    ) {
        let (state, stored) = self.judge(m, state, None, newest_applied, policy);
        self.entries.push(Entry {
            index,
            state,
            stored,
        });
    }

    /// Splits the rows that match no local migration into holes and rows newer than every
    /// local migration (`is_newer` by the layout's own order), and reports both as the
    /// policy says. An empty folder is never "behind": its rows are missing.
    pub(super) fn unmatched(
        &mut self,
        rows: Vec<AppliedRow>,
        has_local: bool,
        is_newer: impl Fn(&AppliedRow) -> bool,
        policy: &Policy,
    ) {
        let (ahead, missing): (Vec<_>, Vec<_>) =
            rows.into_iter().partition(|r| has_local && is_newer(r));
        if !policy.allow_missing {
            self.problems
                .extend(missing.iter().map(|r| Problem::Missing {
                    version: r.version,
                    name: r.name.clone(),
                    checksum: r.checksum.clone(),
                }));
        }
        if !ahead.is_empty() {
            let rows = ahead.iter().map(AppliedRow::label).collect();
            match policy.ahead {
                Unlisted::Warn => self.warnings.push(Warning::Ahead { rows }),
                Unlisted::Error => self.problems.push(Problem::Ahead { rows }),
            }
        }
        self.missing = missing;
        self.ahead = ahead;
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
                let by_hash = super::format::of(policy.layout)
                    .matches_moved_rows_by_checksum()
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
    let newest_local = migrations.iter().map(|m| m.version).max();
    plan.unmatched(
        missing,
        newest_local.is_some(),
        |r| r.version.zip(newest_local).is_some_and(|(v, n)| v > n),
        policy,
    );
    plan
}

/// The checks that need no database: without one every migration may be pending, so every
/// one is checked.
pub fn offline_problems(source: &Source, atomic: bool) -> Vec<Problem> {
    let mut problems = source.problems.clone();
    if atomic {
        problems.extend(source.migrations.iter().filter_map(|m| match m.outside {
            Some(_) => Some(Problem::AtomicWithNoTransaction {
                file: m.file.clone(),
            }),
            None if !super::label_commits::commit_points(m).is_empty() => {
                Some(Problem::AtomicWithLabelCommit {
                    file: m.file.clone(),
                })
            }
            None => None,
        }));
    }
    problems
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
