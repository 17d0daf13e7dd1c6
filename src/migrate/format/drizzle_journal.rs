//! What `drizzle-kit check` catches in a Drizzle 0.x journal merged from two branches: two
//! entries with one `idx`, or an entry older than the one before it. A run warns (Drizzle runs
//! such a journal too); `validate` fails on them, so CI catches the merge before a deploy does.

use crate::migrate::Warning;

/// One journal entry, as far as ordering goes.
pub struct Entry<'a> {
    pub idx: Option<i64>,
    pub tag: &'a str,
    pub when: i64,
}

/// The branch conflicts of a journal, in journal order.
pub fn branch_conflicts(entries: &[Entry<'_>]) -> Vec<Warning> {
    let mut found = Vec::new();
    let mut by_idx = std::collections::HashMap::new();
    let mut newest: Option<&Entry<'_>> = None;
    for entry in entries {
        if let Some(idx) = entry.idx {
            if let Some(first) = by_idx.insert(idx, entry.tag) {
                found.push(Warning::SameIdx {
                    idx,
                    first: first.to_string(),
                    second: entry.tag.to_string(),
                });
            }
        }
        match newest {
            Some(before) if entry.when < before.when => found.push(Warning::WhenOutOfOrder {
                tag: entry.tag.to_string(),
                when: entry.when,
                before: before.tag.to_string(),
                before_when: before.when,
            }),
            _ => newest = Some(entry),
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(idx: i64, tag: &str, when: i64) -> Entry<'_> {
        Entry {
            idx: Some(idx),
            tag,
            when,
        }
    }

    #[test]
    fn a_generated_journal_has_no_conflict() {
        let j = [e(0, "0000_a", 10), e(1, "0001_b", 20), e(2, "0002_c", 30)];
        assert!(branch_conflicts(&j).is_empty());
    }

    #[test]
    fn two_branches_that_both_generated_0005_are_named() {
        let j = [
            e(4, "0004_a", 10),
            e(5, "0005_main", 30),
            e(5, "0005_feature", 20),
        ];
        let found = branch_conflicts(&j);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(
            matches!(&found[0], Warning::SameIdx { idx: 5, first, second }
            if first == "0005_main" && second == "0005_feature")
        );
        assert!(
            matches!(&found[1], Warning::WhenOutOfOrder { tag, before, .. }
            if tag == "0005_feature" && before == "0005_main")
        );
    }

    #[test]
    fn an_entry_older_than_one_before_it_is_compared_with_the_newest_so_far() {
        let j = [
            e(0, "a", 10),
            e(1, "b", 50),
            e(2, "c", 40),
            e(3, "d", 45),
            e(4, "f", 60),
        ];
        let found = branch_conflicts(&j);
        let late: Vec<_> = found
            .iter()
            .filter_map(|w| match w {
                Warning::WhenOutOfOrder { tag, before, .. } => {
                    Some((tag.as_str(), before.as_str()))
                }
                _ => None,
            })
            .collect();
        assert_eq!(late, [("c", "b"), ("d", "b")]);
    }

    #[test]
    fn a_journal_without_idx_is_checked_by_when_alone() {
        let j = [
            Entry {
                idx: None,
                tag: "a",
                when: 20,
            },
            Entry {
                idx: None,
                tag: "b",
                when: 10,
            },
        ];
        assert!(matches!(
            &branch_conflicts(&j)[..],
            [Warning::WhenOutOfOrder { .. }]
        ));
    }
}
