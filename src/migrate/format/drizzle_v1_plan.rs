//! The pure planner for Drizzle v1 folders: a migration is identified by its folder name, and
//! pending means "name not recorded" (v1's rule), with db-init's checks on top (changed,
//! renamed, missing, out of order); plus the upgrade of a 0.x history table, matched exactly as
//! drizzle-orm 1.0 matches it.

use std::collections::HashMap;

use super::drizzle_v1_rules::{self as drizzle_v1, HistoryRow, LocalMigration};
use super::HistoryUpgrade;
use crate::migrate::history::{Shape, Table};
use crate::migrate::migration::Migration;
use crate::migrate::plan::{AppliedRow, Entry, Plan, Policy, State};
use crate::migrate::Problem;

/// The plan, and the upgrade to run first when the table still has the 0.x shape.
pub fn plan(
    migrations: &[Migration],
    table: Option<&Table>,
    policy: &Policy,
) -> (Plan, Option<HistoryUpgrade>) {
    let locals: Vec<LocalMigration> = migrations
        .iter()
        .map(|m| LocalMigration {
            name: m.name.clone(),
            hash: m.checksum.clone(),
            created_at_millis: m.version,
        })
        .collect();
    let mut rows: Vec<AppliedRow> = table.map(|t| t.rows.clone()).unwrap_or_default();
    let mut upgrade = None;
    let mut plan = Plan::default();
    if let Some(Table {
        shape: Shape::V0, ..
    }) = table
    {
        match drizzle_v1::upgrade_v0(&history_rows(&rows), &locals) {
            Ok(up) => {
                let names: HashMap<i64, &str> =
                    up.matches.iter().map(|m| (m.id, m.name.as_str())).collect();
                for row in &mut rows {
                    row.name = row.id.and_then(|id| names.get(&id)).map(|n| n.to_string());
                }
                upgrade = Some(HistoryUpgrade {
                    into: "Drizzle v1's shape (name, applied_at)",
                    matched: up.matches,
                });
            }
            Err(e) => {
                plan.problems
                    .push(Problem::UpgradeUnmatched { ids: e.ids.clone() });
                return (plan, None);
            }
        }
    }
    let check = drizzle_v1::pending(&history_rows(&rows), &locals);
    let mut by_name: HashMap<&str, Vec<&AppliedRow>> = HashMap::new();
    for row in &rows {
        if let Some(name) = row.name.as_deref() {
            by_name.entry(name).or_default().push(row);
        }
    }
    let renamed_ids: Vec<i64> = check.renamed.iter().map(|r| r.row_id).collect();
    let unmatched: Vec<AppliedRow> = rows
        .iter()
        .filter(|r| {
            r.id.is_some_and(|id| {
                check.missing.iter().any(|(m, _)| *m == id) && !renamed_ids.contains(&id)
            })
        })
        .cloned()
        .collect();
    // Folders are ordered by their timestamps: a recorded folder newer than every local one
    // belongs to a later release (the database is ahead), an older one is a hole.
    let newest_local = migrations.iter().map(|m| m.version).max();
    let timestamp = |r: &AppliedRow| {
        r.name
            .as_deref()
            .and_then(|n| drizzle_v1::parse_folder_name(n).ok())
            .map(|p| p.created_at_millis)
            .or(r.version)
    };
    plan.unmatched(
        unmatched,
        newest_local.is_some(),
        |r| timestamp(r).zip(newest_local).is_some_and(|(t, n)| t > n),
        policy,
    );
    let newest_ahead = plan.ahead.iter().filter_map(timestamp).max();
    let last_applied = migrations
        .iter()
        .rposition(|m| by_name.contains_key(m.name.as_str()));
    for (index, m) in migrations.iter().enumerate() {
        let behind = last_applied.is_some_and(|last| index < last) || newest_ahead.is_some();
        let (state, stored) = match by_name.get(m.name.as_str()) {
            Some(recorded) if recorded.iter().any(|r| r.checksum == m.checksum) => {
                (State::Applied, None)
            }
            Some(recorded) => (State::Changed, recorded.first().map(|r| r.checksum.clone())),
            None if behind => (State::OutOfOrder, None),
            None => (State::Pending, None),
        };
        let newest = last_applied
            .and_then(|i| migrations.get(i))
            .map(|n| n.version)
            .max(newest_ahead);
        let (state, stored) = plan.judge(m, state, stored, newest, policy);
        plan.entries.push(Entry {
            index,
            state,
            stored,
        });
    }
    for r in &check.renamed {
        plan.problems.push(Problem::Renamed {
            recorded: r.recorded_name.clone(),
            local: r.local_name.clone(),
        });
    }
    (plan, upgrade)
}

fn history_rows(rows: &[AppliedRow]) -> Vec<HistoryRow> {
    rows.iter()
        .map(|r| HistoryRow {
            id: r.id.unwrap_or_default(),
            hash: r.checksum.clone(),
            created_at: r.version,
            name: r.name.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{OutOfOrder, Unlisted};
    use crate::migrate::migration::testing::migration;
    use crate::migrate::source::Layout;
    use crate::migrate::Warning;

    const POLICY: Policy = Policy {
        layout: Layout::DrizzleV1,
        out_of_order: OutOfOrder::Allow,
        allow_missing: false,
        ahead: Unlisted::Warn,
        atomic: false,
        out_of_order_note: "skipped",
    };

    fn m(name: &str, sql: &str) -> Migration {
        let mut m = migration(0, &format!("{name}/migration.sql"), sql);
        m.name = name.to_string();
        m.version = drizzle_v1::parse_folder_name(name).map_or(0, |p| p.created_at_millis);
        m
    }

    fn row(id: i64, m: &Migration, name: Option<&str>) -> AppliedRow {
        AppliedRow {
            id: Some(id),
            version: Some(m.version),
            checksum: m.checksum.clone(),
            name: name.map(str::to_string),
        }
    }

    fn v1(rows: Vec<AppliedRow>) -> Table {
        Table {
            shape: Shape::V1,
            rows,
        }
    }

    #[test]
    fn pending_is_what_is_not_recorded_by_name_and_out_of_order_is_allowed_by_default() {
        let ms = [
            m("20260101000000_a", "A"),
            m("20260101000005_b", "B"),
            m("20260101000010_c", "C"),
        ];
        let t = v1(vec![
            row(1, &ms[0], Some(&ms[0].name)),
            row(2, &ms[2], Some(&ms[2].name)),
        ]);
        let (p, up) = plan(&ms, Some(&t), &POLICY);
        assert!(up.is_none());
        assert!(p.problems.is_empty(), "{:?}", p.problems);
        assert_eq!(p.pending(), vec![1]);
        assert_eq!(p.entries[1].state, State::OutOfOrder);
        let strict = Policy {
            out_of_order: OutOfOrder::Error,
            ..POLICY
        };
        let (p, _) = plan(&ms, Some(&t), &strict);
        assert!(matches!(&p.problems[..], [Problem::OutOfOrder { .. }]));
    }

    #[test]
    fn renamed_changed_and_missing_are_problems() {
        let old = m("20260101000000_a", "A");
        let renamed = m("20260101000001_a", "A");
        let (p, _) = plan(
            &[renamed],
            Some(&v1(vec![row(1, &old, Some(&old.name))])),
            &POLICY,
        );
        assert!(
            matches!(&p.problems[..], [Problem::Renamed { .. }]),
            "{:?}",
            p.problems
        );
        let edited = m("20260101000000_a", "A edited");
        let (p, _) = plan(
            &[edited],
            Some(&v1(vec![row(1, &old, Some(&old.name))])),
            &POLICY,
        );
        assert!(matches!(&p.problems[..], [Problem::Changed { .. }]));
        let other = m("20260101000009_z", "Z");
        let (p, _) = plan(
            &[other],
            Some(&v1(vec![row(1, &old, Some(&old.name))])),
            &POLICY,
        );
        assert!(matches!(&p.problems[..], [Problem::Missing { .. }]));
    }

    #[test]
    fn a_v0_table_is_upgraded_by_second_or_refused() {
        let ms = [m("20260101000000_a", "A"), m("20260101000005_b", "B")];
        let mut r = row(1, &ms[0], None);
        r.version = Some(ms[0].version + 123);
        let t = Table {
            shape: Shape::V0,
            rows: vec![r],
        };
        let (p, up) = plan(&ms, Some(&t), &POLICY);
        assert!(p.problems.is_empty(), "{:?}", p.problems);
        assert_eq!(up.map(|u| u.matched.len()), Some(1));
        assert_eq!(p.pending(), vec![1]);
        let t = Table {
            shape: Shape::V0,
            rows: vec![row(7, &m("20250101000000_gone", "G"), None)],
        };
        let (p, up) = plan(&ms, Some(&t), &POLICY);
        assert!(up.is_none());
        assert!(matches!(&p.problems[..], [Problem::UpgradeUnmatched { ids }] if ids == &[7]));
    }

    #[test]
    fn a_database_ahead_of_the_folders_is_a_warning_and_a_hole_is_still_missing() {
        let ms = [m("20260101000000_a", "A"), m("20260101000005_b", "B")];
        let newer = m("20260101000010_c", "C");
        let t = v1(vec![
            row(1, &ms[0], Some(&ms[0].name)),
            row(2, &ms[1], Some(&ms[1].name)),
            row(3, &newer, Some(&newer.name)),
        ]);
        let (p, _) = plan(&ms, Some(&t), &POLICY);
        assert!(p.problems.is_empty(), "{:?}", p.problems);
        assert!(p.pending().is_empty());
        assert!(
            matches!(&p.warnings[..], [Warning::Ahead { rows }] if rows == &["20260101000010_c"])
        );
        let strict = Policy {
            ahead: Unlisted::Error,
            ..POLICY
        };
        assert!(matches!(
            &plan(&ms, Some(&t), &strict).0.problems[..],
            [Problem::Ahead { .. }]
        ));

        // The older folder has one the database lacks: out of order, applied by default.
        let t = v1(vec![
            row(1, &ms[0], Some(&ms[0].name)),
            row(3, &newer, Some(&newer.name)),
        ]);
        let (p, _) = plan(&ms, Some(&t), &POLICY);
        assert!(p.problems.is_empty(), "{:?}", p.problems);
        assert_eq!(p.pending(), vec![1]);
        assert_eq!(p.entries[1].state, State::OutOfOrder);

        // A recorded folder older than a local one is a hole.
        let ms = [m("20260101000000_a", "A"), m("20260101000010_c", "C")];
        let between = m("20260101000005_b", "B");
        let t = v1(vec![
            row(1, &ms[0], Some(&ms[0].name)),
            row(2, &between, Some(&between.name)),
            row(3, &ms[1], Some(&ms[1].name)),
        ]);
        let (p, _) = plan(&ms, Some(&t), &POLICY);
        assert!(matches!(&p.problems[..], [Problem::Missing { .. }]));
        assert!(p.ahead.is_empty());
    }
}
