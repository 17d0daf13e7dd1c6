//! Where a migration must commit so that an enum label it adds can be used after it: PostgreSQL
//! refuses a label added in the same transaction (55P04), so db-init commits after the
//! `ADD VALUE` and writes the history row with the last part, where Drizzle's migrator fails.

use super::migration::Migration;

/// The chunks (indices into `m.statements`) after which the migration commits: after the last
/// `ADD VALUE` before a chunk that uses a label added earlier, unless a cut already falls
/// between the label and its use.
/// A label used in its own chunk cannot be cut apart (a chunk is one query) and is left to the
/// lint finding. Pure: `plan` and `run` compute the same cuts.
pub fn commit_points(m: &Migration) -> Vec<usize> {
    // Parsing costs; only a file that adds a label can need a cut.
    if !m.text.to_ascii_uppercase().contains("ADD VALUE") {
        return Vec::new();
    }
    let mut added: Vec<(String, usize)> = Vec::new();
    let mut cuts: Vec<usize> = Vec::new();
    for chunk in 0..m.statements.len() {
        let (sql, _) = m.statement_sql(chunk);
        for piece in super::sql::statements(sql) {
            let Some(stmt) = sql.get(piece.range).and_then(crate::statement::classify) else {
                continue;
            };
            // The latest earlier chunk that adds a label: one cut there serves every label
            // added before it.
            let last = added
                .iter()
                .map(|(_, at)| *at)
                .filter(|at| *at < chunk)
                .max();
            for (label, at) in &added {
                let used_later = *at < chunk && stmt.strings.contains(label);
                if used_later && !cuts.iter().any(|c| (*at..chunk).contains(c)) {
                    cuts.push(last.unwrap_or(*at));
                }
            }
            added.extend(stmt.adds_labels.into_iter().map(|l| (l, chunk)));
        }
    }
    cuts.sort_unstable();
    cuts.dedup();
    cuts
}

/// The chunk ranges, each its own transaction, for `cuts` from [`commit_points`].
pub fn parts(chunks: usize, cuts: &[usize]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    for &cut in cuts.iter().filter(|&&c| c + 1 < chunks) {
        out.push(start..cut + 1);
        start = cut + 1;
    }
    out.push(start..chunks);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migrate::migration::{Migration, Split};

    fn numbered(sql: &str) -> Migration {
        Migration::new(
            2,
            "next".into(),
            "0002_next.sql".into(),
            sql.into(),
            Split::Statements,
        )
    }

    #[test]
    fn commits_after_the_add_value_whose_label_is_used_later() {
        let m = numbered(
            "CREATE TABLE a (id int);\nALTER TYPE role ADD VALUE 'billing';\nCREATE TABLE b (id int);\n\
             ALTER TABLE u ALTER COLUMN role SET DEFAULT 'billing';\n",
        );
        assert_eq!(commit_points(&m), vec![1]);
        assert_eq!(parts(m.statements.len(), &[1]), vec![0..2, 2..4]);
    }

    #[test]
    fn no_cut_without_a_later_use_and_one_cut_for_two_labels() {
        assert!(commit_points(&numbered("ALTER TYPE role ADD VALUE 'billing';\n")).is_empty());
        let two = numbered(
            "ALTER TYPE role ADD VALUE 'a';\nALTER TYPE role ADD VALUE 'b';\n\
             UPDATE u SET role = 'a';\nUPDATE u SET role = 'b';\n",
        );
        // One commit after both ADD VALUEs serves both uses.
        assert_eq!(commit_points(&two), vec![1]);
        let drizzle = Migration::new(
            1,
            "t".into(),
            "0001_t.sql".into(),
            "ALTER TYPE role ADD VALUE 'x'; UPDATE u SET role = 'x';".into(),
            Split::Breakpoints,
        );
        // One chunk is one query: it cannot be cut, the lint finding stays.
        assert!(commit_points(&drizzle).is_empty());
    }

    #[test]
    fn a_cut_at_the_last_chunk_adds_no_empty_part() {
        assert_eq!(parts(3, &[2]), vec![0..3]);
        assert_eq!(parts(3, &[]), vec![0..3]);
    }
}
