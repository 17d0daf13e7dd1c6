//! One migration as db-init sees it: its identity and checksum exactly as its tool computes
//! them (its format fills them in), its statements, and whether it runs inside db-init's transaction or statement by
//! statement outside one, and why.

use std::ops::Range;

use super::sql;
use crate::text::{self, LineIndex};

/// Drizzle's statement separator; a file split by it is cut there and nowhere else.
pub const BREAKPOINT: &str = "--> statement-breakpoint";
/// First-line marker for migrations that must run outside a transaction.
pub const NO_TRANSACTION_MARKER: &str = "-- db-init: no-transaction";

/// How a migration's text is cut into what is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// `text.split("--> statement-breakpoint")`, each chunk one query (Drizzle's files).
    Breakpoints,
    /// One top-level statement per piece (every other tool's files).
    Statements,
}

/// Why a migration runs outside db-init's transaction.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Outside {
    /// `-- db-init: no-transaction` on the first line.
    Marker,
    /// Named in the `no_transaction` setting.
    Setting,
    /// The tool's own annotation (goose's `-- +goose NO TRANSACTION`, sqlx's
    /// `-- no-transaction`, dbmate's `transaction:false`, a Flyway `.conf`).
    Annotation { text: &'static str },
    /// A statement that refuses a transaction block, or that controls the transaction itself.
    Statement {
        statement: usize,
        line: usize,
        column: usize,
        what: &'static str,
    },
}

impl std::fmt::Display for Outside {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outside::Marker => write!(f, "first line `{NO_TRANSACTION_MARKER}`"),
            Outside::Setting => write!(f, "named in the no_transaction setting"),
            Outside::Annotation { text } => write!(f, "its `{text}` annotation"),
            Outside::Statement {
                statement,
                line,
                column,
                what,
            } => write!(f, "statement {statement} at {line}:{column} is {what}"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Migration {
    /// The number the history and the order go by: the file's version (Drizzle 0.x: the
    /// journal's `when`; Flyway: its rank in Flyway's order).
    pub version: i64,
    /// The name the tool records or shows (Drizzle's tag, a v1 or Prisma folder's name, the part
    /// of a file name after `<version>_`).
    pub name: String,
    /// The file name, relative to the migrations folder, for messages.
    pub file: String,
    /// The file as the tools read it: invalid UTF-8 replaced by U+FFFD, BOM and CRLF kept.
    pub text: std::sync::Arc<String>,
    /// What the history records of `text`: SHA-256 hex (Drizzle's `hash`, Prisma's and db-init's
    /// `checksum`) unless the format computes its tool's own (sqlx's SHA-384, Flyway's CRC32);
    /// not recorded where the tool keeps none (golang-migrate, goose, dbmate).
    pub checksum: String,
    /// `Some` when the migration runs statement by statement outside a transaction.
    pub outside: Option<Outside>,
    /// Byte offset of the first invalid UTF-8 sequence, if any (sent as U+FFFD).
    pub invalid_utf8_at: Option<usize>,
    /// Breakpoint chunks or top-level statements, see [`Split`].
    pub statements: Vec<Range<usize>>,
    lines: LineIndex,
}

impl Migration {
    pub fn new(
        version: i64,
        name: String,
        file: String,
        bytes: Vec<u8>,
        split: Split,
    ) -> Migration {
        let (text, invalid_utf8_at) = text::decode_owned(bytes);
        let statements = match split {
            Split::Breakpoints => chunks(&text),
            Split::Statements => sql::statements(&text)
                .into_iter()
                .map(|s| s.range)
                .collect(),
        };
        let mut m = Migration {
            version,
            name,
            file,
            checksum: text::sha256_hex(&text),
            lines: LineIndex::new(&text),
            // Shared, not copied, with the socket that sends a large statement (`pg::splice`).
            text: std::sync::Arc::new(text),
            outside: None,
            invalid_utf8_at,
            statements,
        };
        m.outside = m.detect_outside();
        m
    }

    /// The marker, else the first statement that cannot run inside db-init's transaction.
    fn detect_outside(&self) -> Option<Outside> {
        let first_line = self.text.trim_start_matches('\u{feff}').lines().next();
        if first_line.is_some_and(|l| l.trim().eq_ignore_ascii_case(NO_TRANSACTION_MARKER)) {
            return Some(Outside::Marker);
        }
        self.blocking_statement()
    }

    /// The first statement that refuses a transaction block or controls the transaction.
    pub fn blocking_statement(&self) -> Option<Outside> {
        // Counted as top-level statements, as the runner outside a transaction counts them.
        let mut ordinal = 0;
        for chunk in &self.statements {
            let text = self.text.get(chunk.clone()).unwrap_or("");
            for stmt in sql::statements(text) {
                ordinal += 1;
                let what = sql::needs_no_transaction(&stmt.words)
                    .or_else(|| sql::transaction_control(&stmt.words));
                if let Some(what) = what {
                    let piece = text.get(stmt.range.clone()).unwrap_or("");
                    let (line, column) =
                        self.line_col(chunk.start + stmt.range.start + sql::leading_blank(piece));
                    return Some(Outside::Statement {
                        statement: ordinal,
                        line,
                        column,
                        what,
                    });
                }
            }
        }
        None
    }

    /// The SQL of statement `i` as it is sent: a leading BOM is not sent to the server
    /// (Drizzle sends it and fails with a syntax error; the checksum still covers it).
    pub fn statement_sql(&self, i: usize) -> (&str, usize) {
        let Some(range) = self.statements.get(i) else {
            return ("", self.text.len());
        };
        let sql = self.text.get(range.clone()).unwrap_or("");
        match sql.strip_prefix('\u{feff}') {
            Some(rest) => (rest, range.start + 3),
            None => (sql, range.start),
        }
    }

    /// Each top-level statement alone, in order: how a migration outside a transaction is sent
    /// (a multi-statement query would be an implicit transaction). Yields (chunk number, byte
    /// offset in the file, SQL).
    pub fn top_level_statements(&self) -> Vec<(usize, usize, &str)> {
        let mut out = Vec::new();
        for s in 0..self.statements.len() {
            let (chunk, offset) = self.statement_sql(s);
            for stmt in sql::statements(chunk) {
                if let Some(sql) = chunk.get(stmt.range.clone()) {
                    out.push((s + 1, offset + stmt.range.start, sql));
                }
            }
        }
        out
    }

    /// 1-based line and column (in characters) of a byte offset in the file.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        self.lines.line_col(&self.text, offset)
    }

    /// The checksum the file had before a CRLF <-> LF conversion (git `autocrlf`), if `stored`
    /// is one of those.
    pub fn only_line_endings_differ(&self, stored: &str) -> bool {
        let lf = self.text.replace("\r\n", "\n");
        text::sha256_hex(&lf) == stored || text::sha256_hex(&lf.replace('\n', "\r\n")) == stored
    }
}

/// `text.split("--> statement-breakpoint")` as byte ranges: no trimming, empty chunks kept.
fn chunks(text: &str) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    for (at, _) in text.match_indices(BREAKPOINT) {
        out.push(start..at);
        start = at + BREAKPOINT.len();
    }
    out.push(start..text.len());
    out
}

#[cfg(test)]
pub mod testing {
    use super::*;

    pub fn migration(version: i64, file: &str, sql: &str) -> Migration {
        let name = file.trim_end_matches(".sql").to_string();
        Migration::new(
            version,
            name,
            file.to_string(),
            sql.as_bytes().to_vec(),
            Split::Breakpoints,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::testing::migration;
    use super::*;

    #[test]
    fn chunks_split_like_javascript() {
        let t = "A;--> statement-breakpoint\nB;--> statement-breakpoint";
        let parts: Vec<&str> = chunks(t).into_iter().filter_map(|r| t.get(r)).collect();
        assert_eq!(parts, vec!["A;", "\nB;", ""]);
    }

    #[test]
    fn hash_of_invalid_utf8_uses_replacement_characters() {
        let m = migration(1, "x.sql", "");
        assert!(m.invalid_utf8_at.is_none());
        let m = Migration::new(
            1,
            "x".into(),
            "x.sql".into(),
            b"SELECT '\xff';".to_vec(),
            Split::Breakpoints,
        );
        assert_eq!(m.text.as_str(), "SELECT '\u{fffd}';");
        assert_eq!(m.checksum, text::sha256_hex("SELECT '\u{fffd}';"));
        assert_eq!(m.invalid_utf8_at, Some(8));
    }

    #[test]
    fn marker_on_first_line_even_after_a_bom() {
        let m = migration(1, "x.sql", "\u{feff}-- db-init: no-transaction\nSELECT 1;");
        assert_eq!(m.outside, Some(Outside::Marker));
        let m = migration(1, "x.sql", "SELECT 1;\n-- db-init: no-transaction\n");
        assert_eq!(m.outside, None);
    }

    #[test]
    fn statements_that_refuse_a_transaction_are_detected_with_their_place() {
        let m = migration(
            1,
            "x.sql",
            "CREATE TABLE t (x int);\n--> statement-breakpoint\n-- why\nCREATE INDEX CONCURRENTLY i ON t (x);",
        );
        match m.outside {
            Some(Outside::Statement {
                statement: 2,
                line: 4,
                column: 1,
                ..
            }) => {}
            other => panic!("{other:?}"),
        }
        let wrapped = migration(1, "x.sql", "BEGIN;\nCREATE TABLE t (x int);\nCOMMIT;\n");
        assert!(matches!(
            wrapped.outside,
            Some(Outside::Statement { line: 1, .. })
        ));
        let header = migration(
            1,
            "x.sql",
            "-- custom\nCOMMIT;\n--> statement-breakpoint\nCREATE INDEX CONCURRENTLY i ON t (x);",
        );
        assert!(matches!(
            header.outside,
            Some(Outside::Statement { line: 2, .. })
        ));
        let function = migration(1, "x.sql", "DO $$ BEGIN COMMIT; END $$;");
        assert_eq!(function.outside, None);
    }

    #[test]
    fn bom_is_not_sent_and_positions_count_characters() {
        let m = migration(1, "x.sql", "\u{feff}SELECT 1;\nSELECT 'é', x;");
        let (sql, offset) = m.statement_sql(0);
        assert!(sql.starts_with("SELECT 1"));
        assert_eq!(offset, 3);
        let x = m.text.find(", x").map(|n| n + 2).unwrap_or(0);
        assert_eq!(m.line_col(x), (2, 13));
    }

    #[test]
    fn line_ending_conversions_are_recognised() {
        let lf = migration(1, "x.sql", "SELECT 1;\nSELECT 2;\n");
        let crlf = migration(1, "x.sql", "SELECT 1;\r\nSELECT 2;\r\n");
        assert!(crlf.only_line_endings_differ(&lf.checksum));
        assert!(lf.only_line_endings_differ(&crlf.checksum));
        let edited = migration(1, "x.sql", "SELECT 1;\nSELECT 3;\n");
        assert!(!edited.only_line_endings_differ(&lf.checksum));
    }
}
