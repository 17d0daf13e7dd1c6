//! What `run` sends, in order, as pure data: one transaction per migration (or one for all with
//! `atomic: true`) holding its history row, or a no-transaction migration statement by
//! statement. `run` executes these steps and `plan` prints them, so the two cannot disagree.

use super::history::History;
use super::source::Source;
use super::Location;

/// One transaction's text, built a segment at a time: a migration of any size costs one copy
/// of a segment, not of the whole file. A segment is one query (one round trip); most
/// transactions are a single segment.
#[derive(Debug, Default)]
pub struct Batch {
    /// What it holds: each migration with the chunks of it that are sent.
    pub items: Vec<(usize, std::ops::Range<usize>)>,
    parts: Vec<Part>,
    /// Ranges of `parts`, each sent as one query.
    segments: Vec<std::ops::Range<usize>>,
}

#[derive(Debug)]
enum Part {
    Raw(String),
    Statement { migration: usize, statement: usize },
}

/// Past this many bytes a transaction is cut into several queries (inside one transaction).
const SEGMENT_BYTES: usize = 4 << 20;

/// One query of a batch and where each of its statements came from. A segment that is one
/// large statement borrows it from the file: a 100 MB statement is not copied once more.
pub struct Segment<'a> {
    pub text: std::borrow::Cow<'a, str>,
    pieces: Vec<Piece>,
    /// The text is one statement alone, without the closing `\n;\n` a joined one gets.
    alone: bool,
}

#[derive(Debug)]
struct Piece {
    /// Character range in the segment's text (the server reports positions in characters).
    start: usize,
    end: usize,
    migration: usize,
    statement: usize,
    /// Byte offset of the piece's first character in the migration file.
    file_offset: usize,
}

impl Batch {
    /// One transaction holding `indices` and their history rows. `durable` = false lets the
    /// commit skip the WAL flush wait: a later synchronous commit in the same run flushes it,
    /// and a crash before then loses the migration and its row together.
    pub fn transaction(
        source: &Source,
        history: &History,
        indices: &[usize],
        durable: bool,
    ) -> Batch {
        let whole = indices.iter().filter_map(|&i| {
            let m = source.migrations.get(i)?;
            Some((i, 0..m.statements.len(), true))
        });
        Batch::build(source, history, whole, durable)
    }

    /// One transaction holding `chunks` of migration `index`, and its history row when `row`:
    /// a part of a migration cut by [`Step::Parts`].
    pub fn part(
        source: &Source,
        history: &History,
        index: usize,
        chunks: std::ops::Range<usize>,
        row: bool,
        durable: bool,
    ) -> Batch {
        Batch::build(source, history, [(index, chunks, row)], durable)
    }

    /// Each item: a migration, the chunks of it to send, and whether its history row follows.
    fn build(
        source: &Source,
        history: &History,
        items: impl IntoIterator<Item = (usize, std::ops::Range<usize>, bool)>,
        durable: bool,
    ) -> Batch {
        let mut b = Batch::default();
        let mut start = 0;
        let mut bytes = 0;
        let mut push = |b: &mut Batch, part: Part, len: usize| {
            if bytes > 0 && bytes + len > SEGMENT_BYTES {
                b.segments.push(start..b.parts.len());
                start = b.parts.len();
                bytes = 0;
            }
            bytes += len;
            b.parts.push(part);
        };
        let begin = match durable {
            true => "BEGIN;\n",
            false => "BEGIN;\nSET LOCAL synchronous_commit = off;\n",
        };
        push(&mut b, Part::Raw(begin.into()), begin.len());
        for (i, chunks, row) in items {
            let Some(m) = source.migrations.get(i) else {
                continue;
            };
            b.items.push((i, chunks.clone()));
            for statement in chunks {
                let len = m.statement_sql(statement).0.len();
                push(
                    &mut b,
                    Part::Statement {
                        migration: i,
                        statement,
                    },
                    len,
                );
            }
            if row {
                let row = format!("{};\n", history.insert_sql(m, None));
                let len = row.len();
                push(&mut b, Part::Raw(row), len);
            }
        }
        push(&mut b, Part::Raw("COMMIT;".into()), 7);
        b.segments.push(start..b.parts.len());
        b
    }

    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// The text of segment `k` and where its statements came from.
    pub fn segment<'a>(&self, source: &'a Source, k: usize) -> Segment<'a> {
        let range = self.segments.get(k).cloned().unwrap_or(0..0);
        let parts = self.parts.get(range).unwrap_or(&[]);
        // A statement alone in its query needs no closer: the end of the query ends a `--`
        // comment and a statement without its semicolon. It is sent as the file holds it.
        if let [Part::Statement {
            migration,
            statement,
        }] = parts
        {
            if let Some(m) = source.migrations.get(*migration) {
                let (sql, file_offset) = m.statement_sql(*statement);
                return Segment {
                    pieces: vec![Piece {
                        start: 0,
                        end: sql.chars().count(),
                        migration: *migration,
                        statement: *statement,
                        file_offset,
                    }],
                    text: std::borrow::Cow::Borrowed(sql),
                    alone: true,
                };
            }
        }
        let mut text = String::new();
        let mut pieces = Vec::new();
        let mut chars = 0;
        for part in parts {
            match part {
                Part::Raw(s) => {
                    text.push_str(s);
                    chars += s.chars().count();
                }
                Part::Statement {
                    migration,
                    statement,
                } => {
                    let Some(m) = source.migrations.get(*migration) else {
                        continue;
                    };
                    let (sql, file_offset) = m.statement_sql(*statement);
                    let start = chars;
                    text.push_str(sql);
                    chars += sql.chars().count();
                    pieces.push(Piece {
                        start,
                        end: chars,
                        migration: *migration,
                        statement: *statement,
                        file_offset,
                    });
                    // A chunk may end in a `--` comment or lack its semicolon: close it.
                    text.push_str(CLOSER);
                    chars += CLOSER.len();
                }
            }
        }
        Segment {
            text: std::borrow::Cow::Owned(text),
            pieces,
            alone: false,
        }
    }

    /// The whole text, as `plan` prints it.
    pub fn text(&self, source: &Source) -> String {
        let mut out = String::new();
        for k in 0..self.segments.len() {
            let segment = self.segment(source, k);
            out.push_str(&segment.text);
            // Printed as a joined statement would be, so `plan` shows one form for all.
            if segment.alone {
                out.push_str(CLOSER);
            }
        }
        out
    }
}

/// Ends a statement joined to others in one query.
const CLOSER: &str = "\n;\n";

impl Segment<'_> {
    /// A statement alone in its query: its migration and its bytes in the file, so that it can
    /// be sent from the file's text.
    pub fn in_file(&self) -> Option<(usize, std::ops::Range<usize>)> {
        let [p] = self.pieces.as_slice() else {
            return None;
        };
        self.alone
            .then(|| (p.migration, p.file_offset..p.file_offset + self.text.len()))
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
    Transaction {
        indices: Vec<usize>,
        durable: bool,
    },
    Outside(usize),
    /// One migration cut into transactions of its chunks, committed in order, its history row
    /// with the last: an enum label it adds is committed before a later chunk uses it
    /// (`label_commits`).
    Parts {
        index: usize,
        parts: Vec<std::ops::Range<usize>>,
        durable: bool,
    },
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
            let durable = k + 1 == pending.len();
            let Some(m) = source.migrations.get(i) else {
                return Step::Transaction {
                    indices: vec![i],
                    durable,
                };
            };
            if m.outside.is_some() {
                return Step::Outside(i);
            }
            match super::label_commits::commit_points(m).as_slice() {
                [] => Step::Transaction {
                    indices: vec![i],
                    durable,
                },
                cuts => Step::Parts {
                    index: i,
                    parts: super::label_commits::parts(m.statements.len(), cuts),
                    durable,
                },
            }
        })
        .collect()
}
