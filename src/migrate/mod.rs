//! Migrations: read the folder, read the history, plan, validate, apply (SPEC section 2).

pub mod apply;
pub mod baseline;
pub mod concurrent;
pub mod format;
mod hints;
pub mod history;
mod label_commits;
pub mod migration;
pub mod new;
pub mod plan;
mod problem;
mod read;
pub mod repair;
pub mod source;
pub mod sql;
pub mod steps;

use std::path::PathBuf;

use tokio_postgres::Client;

use crate::config::MigrateSettings;
use crate::pg::{PgError, ServerError, Session};
pub use history::History;
pub use plan::{Plan, Policy};
pub use problem::{Problem, Warning};
pub use source::{Layout, Source};

/// Where in a file a failed statement is.
#[derive(Debug, Clone, Default)]
pub struct Location {
    pub statement: Option<usize>,
    pub line: Option<usize>,
    pub column: Option<usize>,
}

impl Location {
    /// `file:line:column`, or the file alone when the position is unknown.
    fn place(&self, file: &str) -> String {
        match (self.line, self.column) {
            (Some(line), Some(column)) => format!("{file}:{line}:{column}"),
            _ => file.to_string(),
        }
    }

    fn statement(&self) -> String {
        self.statement
            .map(|n| format!(" at statement {n}"))
            .unwrap_or_default()
    }
}

/// A migration the server refused: where, what the server said, and what stays applied.
#[derive(Debug, thiserror::Error)]
#[error("{}: migration {file} failed{}: {error}\n  {note}", location.place(file), location.statement())]
pub struct Failed {
    pub file: String,
    pub location: Location,
    pub error: ServerError,
    /// What stays applied and what was rolled back.
    pub note: String,
}

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("validation failed, nothing applied:\n  - {}", problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n  - "))]
    Validation { problems: Vec<Problem> },
    #[error(transparent)]
    Failed(Box<Failed>),
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Reading, creating or upgrading the history table failed: no migration ran (exit 9).
    #[error("{0}; no migration was applied by this step")]
    History(#[source] PgError),
    /// The server stopped answering a query that is not a migration (exit 9).
    #[error(
        "the server did not answer {what} within {waited:?}; nothing was applied by this step"
    )]
    Stalled {
        what: &'static str,
        waited: std::time::Duration,
    },
    #[error(transparent)]
    Database(#[from] PgError),
    /// A repair's UPDATE found no row to change (the row is not as it was read): rolled back,
    /// nothing changed (exit 9).
    #[error("re-recording the checksum of {file} changed no row of {table}; nothing was changed")]
    RepairMissed { file: String, table: String },
}

/// Bound on reading the history: a network that stops forwarding must not hang a pod start.
pub const HISTORY_BOUND: std::time::Duration = std::time::Duration::from_secs(60);

impl MigrateError {
    pub fn validation(problems: Vec<Problem>) -> Result<(), MigrateError> {
        if problems.is_empty() {
            Ok(())
        } else {
            Err(MigrateError::Validation { problems })
        }
    }
}

#[derive(Debug, Default, Clone, Copy)]
pub struct Outcome {
    pub applied: usize,
    pub already_applied: usize,
}

/// The folder held against the database: the history table, what the planner made of it, and
/// whether the table exists yet.
pub struct Assessment {
    pub history: History,
    pub plan: Plan,
    pub table_exists: bool,
    /// A change of the table's shape to make first (Drizzle v1 upgrading a 0.x table).
    pub upgrade: Option<format::HistoryUpgrade>,
}

/// Reads the history and plans (no writes).
pub async fn assess(
    client: &Client,
    settings: &MigrateSettings,
    source: &Source,
) -> Result<Assessment, MigrateError> {
    let history = History::new(source.layout, settings);
    let table = match tokio::time::timeout(HISTORY_BOUND, history.read(client)).await {
        Ok(read) => read.map_err(MigrateError::History)?,
        Err(_) => {
            return Err(MigrateError::Stalled {
                what: "the history read",
                waited: HISTORY_BOUND,
            })
        }
    };
    let no_rows = table.as_ref().is_none_or(|t| t.rows.is_empty());
    let mut a = judge(settings, source, history, table);
    if no_rows {
        let pending = a.plan.pending();
        if let Some(p) = hints::already_there(client, &a.history, source, &pending).await {
            a.plan.problems.push(p);
        }
    }
    Ok(a)
}

/// [`assess`], with the folder read again as another tool's where its own history table is
/// absent and the database has that tool's ([`format::redetect`]): `Some` is the folder as read
/// again, which the assessment is of.
pub async fn assess_detected(
    client: &Client,
    settings: &MigrateSettings,
    source: &Source,
) -> Result<(Option<Source>, Assessment), MigrateError> {
    let assessment = assess(client, settings, source).await?;
    if !assessment.table_exists {
        if let Some(other) = format::redetect(client, settings, source).await? {
            let assessment = assess(client, settings, &other).await?;
            return Ok((Some(other), assessment));
        }
    }
    Ok((None, assessment))
}

/// Plans the folder against a history table already read (`None`: it does not exist).
pub fn judge(
    settings: &MigrateSettings,
    source: &Source,
    history: History,
    table: Option<history::Table>,
) -> Assessment {
    let policy = Policy::new(settings, source.layout);
    let (mut plan, upgrade) =
        format::of(source.layout).plan(&source.migrations, table.as_ref(), &policy);
    // A folder that could not be read whole (a broken journal, a bad tag, an entry without its
    // file) makes its applied rows look "missing": that follows from the folder's problem, which
    // is reported instead.
    if !source.problems.is_empty() {
        plan.problems
            .retain(|p| !matches!(p, Problem::Missing { .. } | Problem::Ahead { .. }));
    }
    // The folder's own problems and warnings first: one report with everything.
    plan.problems.splice(0..0, source.problems.iter().cloned());
    plan.warnings.splice(0..0, source.warnings.iter().cloned());
    Assessment {
        history,
        plan,
        table_exists: table.is_some(),
        upgrade,
    }
}

/// The format's upgrade of the history table's shape, in one transaction, saying which row
/// became which migration.
pub(super) async fn upgrade_history(
    session: &Session,
    history: &History,
    up: &format::HistoryUpgrade,
) -> Result<(), MigrateError> {
    for m in &up.matched {
        tracing::info!(id = m.id, migration = %m.name, into = up.into, "upgrading the history table: row matched");
    }
    if let Err(e) = session.batch_execute(&history.upgrade_sql(up)).await {
        let _ = session.batch_execute("ROLLBACK").await;
        return Err(PgError::new(
            format!("upgrading {} to {}", history.qualified(), up.into),
            e,
        )
        .into());
    }
    tracing::info!(
        rows = up.matched.len(),
        into = up.into,
        "history table upgraded"
    );
    Ok(())
}

/// A folder validated against the history and ready to apply: what [`prepare`] hands to
/// [`apply_pending`], with the job's own checks (the lock analysis) in between.
pub struct Prepared {
    history: History,
    table_exists: bool,
    pending: Vec<usize>,
    already_applied: usize,
}

impl Prepared {
    /// The indices into `source.migrations` that will be applied, in order.
    pub fn pending(&self) -> &[usize] {
        &self.pending
    }
}

/// The first half of the `migrate` step: validate everything (a problem stops the run before
/// anything is written) and upgrade an old history table's shape where the format asks for it.
pub async fn prepare(
    session: &Session,
    settings: &MigrateSettings,
    source: &Source,
) -> Result<Prepared, MigrateError> {
    let Assessment {
        history,
        plan,
        table_exists,
        upgrade,
    } = assess(session, settings, source).await?;
    MigrateError::validation(plan.problems.clone())?;
    for w in &plan.warnings {
        tracing::warn!("{w}");
    }
    if let Some(up) = &upgrade {
        upgrade_history(session, &history, up).await?;
    }
    for e in plan
        .entries
        .iter()
        .filter(|e| e.state == plan::State::OutOfOrder)
    {
        if let Some(m) = source.migrations.get(e.index) {
            tracing::info!(migration = %m.file, "applying a migration older than the newest applied one (out_of_order: allow)");
        }
    }
    let pending = plan.pending();
    Ok(Prepared {
        already_applied: plan.entries.len() - pending.len(),
        history,
        table_exists,
        pending,
    })
}

/// The second half of the `migrate` step: create the history table if it is missing, then
/// apply what is pending, each migration in its own transaction with its history row.
pub async fn apply_pending(
    session: &Session,
    settings: &MigrateSettings,
    source: &Source,
    prepared: Prepared,
    watch: Option<concurrent::Watch<'_>>,
) -> Result<Outcome, MigrateError> {
    let Prepared {
        history,
        table_exists,
        pending,
        already_applied,
    } = prepared;
    if !pending.is_empty() {
        if !table_exists {
            history
                .create(session)
                .await
                .map_err(MigrateError::History)?;
        }
        if let Some(sql) = history.enter_schema_sql() {
            session
                .batch_execute(&sql)
                .await
                .map_err(|e| MigrateError::History(PgError::new("setting the search path", e)))?;
        }
        if let Err(e) = apply::apply(session, settings, &history, source, &pending, watch).await {
            return Err(hints::after_failure(session, &history, e, !table_exists).await);
        }
    }
    Ok(Outcome {
        applied: pending.len(),
        already_applied,
    })
}
