//! What `run` sends, in order, as pure data: one transaction per migration (or one for all with
//! `atomic: true`) holding its history row, or a no-transaction migration statement by
//! statement. `run` executes these steps and `plan` prints them, so the two cannot disagree.

use super::history::History;
use super::source::Source;
use super::Location;

/// The text sent for one or more migrations, and where each statement of it came from.
#[derive(Debug, Default)]
pub struct Batch {
    pub text: String,
    chars: usize,
    pieces: Vec<Piece>,
}

#[derive(Debug)]
struct Piece {
    /// Character range in `text` (the server reports positions in characters).
    start: usize,
    end: usize,
    migration: usize,
    statement: usize,
    /// Byte offset of the piece's first character in the migration file.
    file_offset: usize,
}

impl Batch {
    fn raw(&mut self, s: &str) {
        self.text.push_str(s);
        self.chars += s.chars().count();
    }

    fn statement(&mut self, migration: usize, statement: usize, sql: &str, file_offset: usize) {
        let start = self.chars;
        self.raw(sql);
        self.pieces.push(Piece {
            start,
            end: self.chars,
            migration,
            statement,
            file_offset,
        });
        // A chunk may end in a `--` comment or lack its semicolon: close it on a new line.
        self.raw("\n;\n");
    }

    /// One transaction holding `indices` and their history rows. `durable` = false lets the
    /// commit skip the WAL flush wait: a later synchronous commit in the same run flushes it,
    /// and a crash before then loses the migration and its row together.
    pub fn transaction(
        source: &Source,
        history: &History,
        indices: &[usize],
        durable: bool,
    ) -> Batch {
        let mut b = Batch::default();
        b.raw("BEGIN;\n");
        if !durable {
            b.raw("SET LOCAL synchronous_commit = off;\n");
        }
        for &i in indices {
            let Some(m) = source.migrations.get(i) else {
                continue;
            };
            for s in 0..m.statements.len() {
                let (sql, offset) = m.statement_sql(s);
                b.statement(i, s, sql, offset);
            }
            b.raw(&history.insert_sql(m, None));
            b.raw(";\n");
        }
        b.raw("COMMIT;");
        b
    }

    /// Maps a server error position (1-based, in characters) to the migration and its file.
    pub fn locate(&self, source: &Source, position: u32) -> Option<(usize, Location)> {
        let at = (position as usize).checked_sub(1)?;
        let piece = self
            .pieces
            .iter()
            .find(|p| p.start <= at && at < p.end.max(p.start + 1))?;
        let m = source.migrations.get(piece.migration)?;
        let (sql, _) = m.statement_sql(piece.statement);
        let byte = sql
            .char_indices()
            .nth(at - piece.start)
            .map_or(sql.len(), |(b, _)| b);
        let (line, column) = m.line_col(piece.file_offset + byte);
        Some((
            piece.migration,
            Location {
                statement: Some(piece.statement + 1),
                line: Some(line),
                column: Some(column),
            },
        ))
    }
}

/// One unit of work: a transaction (one migration, or all of them with `atomic: true`) or a
/// no-transaction migration run statement by statement. `run` executes these and `plan`
/// prints them, so the two cannot disagree.
pub enum Step {
    Transaction { indices: Vec<usize>, durable: bool },
    Outside(usize),
}

/// The steps for the pending migrations, in order. Only the last transaction waits for the WAL
/// flush (see [`Batch::transaction`]).
pub fn steps(source: &Source, pending: &[usize], atomic: bool) -> Vec<Step> {
    if atomic && !pending.is_empty() {
        return vec![Step::Transaction {
            indices: pending.to_vec(),
            durable: true,
        }];
    }
    pending
        .iter()
        .enumerate()
        .map(|(k, &i)| {
            match source
                .migrations
                .get(i)
                .is_some_and(|m| m.outside.is_some())
            {
                true => Step::Outside(i),
                false => Step::Transaction {
                    indices: vec![i],
                    durable: k + 1 == pending.len(),
                },
            }
        })
        .collect()
}
