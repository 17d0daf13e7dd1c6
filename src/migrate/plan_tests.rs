//! Unit tests of the pure planner (0.x and numbered layouts).

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
    ahead: Unlisted::Warn,
    atomic: false,
    out_of_order_note: "skipped",
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
    let ms = [m(
        10,
        "CREATE TABLE t (x int);\n--> statement-breakpoint\nCREATE INDEX CONCURRENTLY i ON t (x);",
    )];
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

#[test]
fn a_database_ahead_of_the_folder_is_a_warning_and_a_hole_is_still_missing() {
    let ms = [m(10, "A"), m(20, "B")];
    let rows = [
        row(10, &ms[0].checksum),
        row(20, &ms[1].checksum),
        row(30, "newer"),
    ];
    let p = plan(&ms, &rows, &POLICY);
    assert!(p.problems.is_empty(), "{:?}", p.problems);
    assert!(p.pending().is_empty());
    assert!(p.missing.is_empty());
    assert_eq!(p.ahead.len(), 1);
    assert!(matches!(&p.warnings[..], [Warning::Ahead { rows }] if rows == &["30"]));
    let strict = Policy {
        ahead: Unlisted::Error,
        ..POLICY
    };
    assert!(matches!(
        &plan(&ms, &rows, &strict).problems[..],
        [Problem::Ahead { .. }]
    ));

    // A row between two local migrations is a hole, whatever is newer.
    let ms = [m(10, "A"), m(30, "C")];
    let rows = [
        row(10, &ms[0].checksum),
        row(20, "gone"),
        row(30, &ms[1].checksum),
        row(40, "newer"),
    ];
    let p = plan(&ms, &rows, &POLICY);
    assert!(matches!(
        &p.problems[..],
        [Problem::Missing {
            version: Some(20),
            ..
        }]
    ));
    assert_eq!(p.ahead.len(), 1);

    // An empty folder is not "behind": its rows are missing.
    let p = plan(&[], &[row(10, "x")], &POLICY);
    assert!(matches!(&p.problems[..], [Problem::Missing { .. }]));
}

#[test]
fn a_migration_the_ahead_database_lacks_is_out_of_order() {
    let ms = [m(10, "A"), m(20, "B")];
    let rows = [row(10, &ms[0].checksum), row(30, "newer")];
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
    assert_eq!(plan(&ms, &rows, &allow).pending(), vec![1]);
}
