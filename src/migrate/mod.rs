//! Migrations: read the folder, read the history, plan, validate, apply (SPEC section 2).

pub mod apply;
pub mod history;
pub mod plan;
pub mod source;
pub mod sql;

use std::fmt;
use std::path::PathBuf;

use tokio_postgres::Client;

use crate::config::Config;
pub use history::History;
pub use plan::{Plan, Policy};
pub use source::{Layout, Source};

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

/// Where in a file a failed statement is.
#[derive(Debug, Clone, Default)]
pub struct Location {
    pub statement: Option<usize>,
    pub line: Option<usize>,
    pub column: Option<usize>,
}

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("validation failed, nothing applied:\n  - {}", problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n  - "))]
    Validation { problems: Vec<Problem> },
    #[error("{}", failed_message(.file, .location, .sqlstate, .message, .detail, .hint, .note))]
    Failed {
        file: String,
        location: Location,
        sqlstate: String,
        message: String,
        detail: Option<String>,
        hint: Option<String>,
        /// What stays applied and what was rolled back.
        note: String,
    },
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{context}: {message}")]
    Database { context: String, message: String },
}

impl MigrateError {
    pub fn is_validation(&self) -> bool {
        matches!(self, MigrateError::Validation { .. })
    }

    pub(crate) fn db(context: impl Into<String>, e: &tokio_postgres::Error) -> MigrateError {
        MigrateError::Database {
            context: context.into(),
            message: crate::db::describe(e),
        }
    }
}

fn failed_message(
    file: &str,
    loc: &Location,
    sqlstate: &str,
    message: &str,
    detail: &Option<String>,
    hint: &Option<String>,
    note: &str,
) -> String {
    let mut s = format!("migration {file}");
    if let (Some(line), Some(column)) = (loc.line, loc.column) {
        s = format!("{file}:{line}:{column}: migration {file}");
    }
    if let Some(n) = loc.statement {
        s.push_str(&format!(" failed at statement {n}"));
    } else {
        s.push_str(" failed");
    }
    s.push_str(&format!(": ERROR {sqlstate}: {message}"));
    if let Some(d) = detail {
        s.push_str(&format!("\n  detail: {d}"));
    }
    if let Some(h) = hint {
        s.push_str(&format!("\n  hint: {h}"));
    }
    if !note.is_empty() {
        s.push_str(&format!("\n  {note}"));
    }
    s
}

#[derive(Debug, Default, Clone, Copy)]
pub struct Outcome {
    pub applied: usize,
    pub already_applied: usize,
}

pub fn policy(cfg: &Config, layout: Layout) -> Policy {
    Policy {
        layout,
        out_of_order: cfg.out_of_order,
        allow_missing: cfg.allow_missing,
        atomic: cfg.atomic,
    }
}

/// Reads the history and plans. `rows_present` tells whether the history table exists.
pub async fn plan_against(
    client: &Client,
    cfg: &Config,
    source: &Source,
) -> Result<(History, Plan, bool), MigrateError> {
    let history = History::new(source.layout, cfg);
    let rows = history.read(client).await?;
    let plan = plan::plan(
        &source.migrations,
        rows.as_deref().unwrap_or(&[]),
        &policy(cfg, source.layout),
    );
    Ok((history, plan, rows.is_some()))
}

/// The `migrate` step of a run: validate everything, then apply what is pending.
pub async fn migrate(
    client: &Client,
    cfg: &Config,
    source: &Source,
) -> Result<Outcome, MigrateError> {
    let (history, plan, table_exists) = plan_against(client, cfg, source).await?;
    if !plan.problems.is_empty() {
        return Err(MigrateError::Validation {
            problems: plan.problems,
        });
    }
    let pending = plan.pending();
    let already_applied = plan.entries.len() - pending.len();
    if pending.is_empty() {
        return Ok(Outcome {
            applied: 0,
            already_applied,
        });
    }
    if !table_exists {
        history.create(client).await?;
    }
    apply::apply(client, cfg, &history, source, &pending).await?;
    Ok(Outcome {
        applied: pending.len(),
        already_applied,
    })
}
