//! Everything that stops a run before anything is applied (exit 7), with the message that says
//! what to do about it.

use std::fmt;

use super::source;

/// Something that stops a run before anything is applied (exit 7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    Changed {
        file: String,
        stored: String,
        local: String,
    },
    Missing {
        version: Option<i64>,
        checksum: String,
    },
    OutOfOrder {
        file: String,
        newest_applied: i64,
    },
    NoFileForEntry {
        tag: String,
        file: String,
    },
    NotInJournal {
        file: String,
    },
    Duplicate {
        version: String,
        file: String,
    },
    UnexpectedFile {
        file: String,
    },
    BadJournal {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },
    NeedsNoTransaction {
        file: String,
        statement: usize,
        line: usize,
        column: usize,
        what: &'static str,
    },
    TransactionControl {
        file: String,
        statement: usize,
        line: usize,
        column: usize,
    },
    AtomicWithNoTransaction {
        file: String,
    },
    BaselineTarget {
        target: String,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Changed { file, stored, local } => write!(
                f,
                "{file}: changed after it was applied (checksum in history {stored}, file now {local}); \
                 restore the file and put the change in a new migration"
            ),
            Problem::Missing { version, checksum } => write!(
                f,
                "applied migration {} (checksum {checksum}) has no file any more; restore it, or set \
                 allow_missing: true",
                version.map_or("without version".to_string(), |v| v.to_string())
            ),
            Problem::OutOfOrder { file, newest_applied } => write!(
                f,
                "{file}: pending but older than the newest applied migration ({newest_applied}); \
                 Drizzle would skip it silently. Regenerate it after the newest one, or set \
                 out_of_order: allow to apply it"
            ),
            Problem::NoFileForEntry { tag, file } => {
                write!(f, "journal entry {tag} has no file {file}")
            }
            Problem::NotInJournal { file } => write!(
                f,
                "{file} is not in meta/_journal.json (Drizzle would ignore it); add it to the journal \
                 (drizzle-kit generate --custom) or remove it"
            ),
            Problem::Duplicate { version, file } => write!(f, "version {version} is used twice: {file}"),
            Problem::UnexpectedFile { file } => write!(
                f,
                "{file}: not a migration (expected <digits>_<name>.sql or *.down.sql)"
            ),
            Problem::BadJournal { file, line, column, message } => {
                write!(f, "{file}:{line}:{column}: invalid journal: {message}")
            }
            Problem::NeedsNoTransaction { file, statement, line, column, what } => write!(
                f,
                "{file}:{line}:{column}: statement {statement} ({what}) cannot run inside a transaction; \
                 add `{}` as the first line of the file to run it outside one",
                source::NO_TRANSACTION_MARKER
            ),
            Problem::TransactionControl { file, statement, line, column } => write!(
                f,
                "{file}:{line}:{column}: statement {statement} controls the transaction itself; db-init \
                 runs each migration in its own transaction, so remove it (or mark the file with `{}`)",
                source::NO_TRANSACTION_MARKER
            ),
            Problem::AtomicWithNoTransaction { file } => write!(
                f,
                "{file} must run outside a transaction, so it cannot be part of an atomic: true batch"
            ),
            Problem::BaselineTarget { target } => {
                write!(f, "baseline target {target} matches no migration (give a version, tag or file name)")
            }
        }
    }
}
