//! The check that a run has nothing to do, in two round trips under the shared advisory lock:
//! the lock's try with what it needs to know first (`LISTEN`, the server's clock, whether the
//! history and the seed runs exist, the server process), then the rows of both and the unlock.
//! Both are one transaction, and the shared lock is the transaction's: a transaction pooler
//! keeps a transaction on one server connection, so the unlock (the `COMMIT`) always reaches
//! the process that holds the lock, and a shared lock is never left on a pooled connection,
//! where it would block every later migrator.

use std::time::Duration;

use tokio_postgres::SimpleQueryMessage;

use super::Inputs;
use crate::config::Config;
use crate::migrate::history::{self, Shape, Table};
use crate::migrate::{self, History, MigrateError};
use crate::outcome::{Done, Error};
use crate::pg::lock::{self, LockError, Wait};
use crate::pg::pooler::{self, Backend};
use crate::pg::{PgError, Session};
use crate::seed::{self, runs};

/// What the first query found.
pub struct Head {
    /// The wave's start in the server's clock, when the query subscribed (`LISTEN`).
    pub wave: Option<String>,
    /// Whether the shared lock was taken. Either way the transaction stays open: [`check`]
    /// ends it, or the exclusive lock's try.
    pub shared: bool,
    /// The server process the query ran on.
    pub backend: Option<Backend>,
    shape: Option<Shape>,
    runs_table: bool,
}

impl Head {
    /// Whether the folder's history table exists (`false` also without migrations).
    pub fn history_exists(&self) -> bool {
        self.shape.is_some()
    }
}

/// Tries the shared lock; with `listen` (how long ago this process's rollout began), the first
/// try of a session also subscribes to the lock's release and reads the server's clock.
pub async fn try_shared(
    session: &Session,
    cfg: &Config,
    inputs: &Inputs,
    wait: &Wait,
    listen: Option<Duration>,
) -> Result<Head, Error> {
    let key = wait.key();
    let history = inputs
        .source
        .as_ref()
        .map(|s| History::new(s.layout, &cfg.migrate));
    // READ COMMITTED whatever the server's default: the reads of `check` must see what was
    // committed before the lock was granted, not a snapshot from before it.
    let sql = format!(
        "BEGIN ISOLATION LEVEL READ COMMITTED; {}SELECT {}, {}, {}, {}, {}",
        listen
            .map(|_| lock::listen_sql(key) + " ")
            .unwrap_or_default(),
        listen.map(lock::wave_expr).unwrap_or_else(|| "NULL".into()),
        lock::try_shared_expr(key),
        history
            .as_ref()
            .map(History::shape_expr)
            .unwrap_or_else(|| "NULL".into()),
        match inputs.seeds.is_empty() {
            true => "false".into(),
            false => runs::exists_expr(),
        },
        Backend::columns(),
    );
    let bound = match listen {
        Some(_) => lock::LISTEN_BOUND,
        None => wait.poll_bound(),
    };
    let messages = match tokio::time::timeout(bound, session.simple_query(&sql)).await {
        Ok(Ok(messages)) => messages,
        // PgBouncer in statement mode refuses the transaction and closes the connection.
        Ok(Err(e))
            if e.as_db_error()
                .is_some_and(|d| d.message().contains("pooling mode")) =>
        {
            let evidence = format!(
                "the pooler refused a transaction: {}",
                crate::pg::describe(&e)
            );
            return Err(pooler::refused(session, key, evidence, None).into());
        }
        Ok(Err(e)) => {
            let source = PgError::new("taking the shared lock", e);
            return Err(LockError::Database { key, source }.into());
        }
        // A poll that gets no answer is a wait for the lock like any other (exit 5).
        Err(_) if listen.is_none() => {
            return Err(LockError::Timeout {
                key,
                waited: wait.waited(),
                holder: "unknown: the server stopped answering the lock poll".into(),
            }
            .into())
        }
        Err(_) => {
            return Err(LockError::Unanswered {
                key,
                what: "LISTEN",
                waited: bound,
            }
            .into())
        }
    };
    let row = messages.iter().find_map(|m| match m {
        SimpleQueryMessage::Row(row) => Some(row),
        _ => None,
    });
    let column = |i: usize| row.and_then(|r| r.get(i));
    Ok(Head {
        wave: column(0).map(str::to_string),
        shared: column(1) == Some("t"),
        shape: Shape::parse(column(2)),
        runs_table: column(3) == Some("t"),
        backend: Backend::parse(column(4), column(5)),
    })
}

/// Under the shared lock `head` took: `Some` when every migration is applied and every seed
/// done for this wave. Ends the transaction (and so the shared lock) in the same round trip as
/// the reads.
pub async fn check(
    session: &Session,
    cfg: &Config,
    inputs: &Inputs,
    wave: &str,
    head: &Head,
) -> Result<Option<Done>, Error> {
    let history = inputs
        .source
        .as_ref()
        .map(|s| History::new(s.layout, &cfg.migrate));
    let mut sql = Vec::new();
    let rows_at = match (&history, head.shape) {
        (Some(h), Some(shape)) => {
            sql.push(h.rows_sql(shape));
            Some(sql.len() - 1)
        }
        _ => None,
    };
    let runs_at = match !inputs.seeds.is_empty() && head.runs_table {
        true => {
            sql.push(runs::rows_sql(wave));
            Some(sql.len() - 1)
        }
        false => None,
    };
    sql.push("COMMIT".into());
    let bound = migrate::HISTORY_BOUND;
    let messages = match tokio::time::timeout(bound, session.simple_query(&sql.join(";\n"))).await {
        Ok(Ok(messages)) => messages,
        Ok(Err(e)) => {
            // The COMMIT came after the statement that failed: end the transaction on its own.
            let _ = tokio::time::timeout(bound, session.batch_execute("ROLLBACK")).await;
            let source = PgError::new("reading the history and the seed runs", e);
            return Err(MigrateError::History(source).into());
        }
        Err(_) => {
            return Err(MigrateError::Stalled {
                what: "the history read",
                waited: bound,
            }
            .into())
        }
    };
    let results = results(&messages);
    let result = |at: Option<usize>| at.and_then(|i| results.get(i).copied()).unwrap_or(&[]);
    let mut already_applied = 0;
    if let (Some(source), Some(history)) = (&inputs.source, history) {
        let table = head.shape.map(|shape| Table {
            shape,
            rows: history::rows_from(result(rows_at)),
        });
        let a = migrate::judge(&cfg.migrate, source, history, table);
        let busy = !a.plan.problems.is_empty() || a.upgrade.is_some();
        if busy || !a.plan.pending().is_empty() {
            return Ok(None);
        }
        for w in &a.plan.warnings {
            tracing::warn!("{w}");
        }
        already_applied = a.plan.entries.len();
    }
    let previous = runs::runs_from(result(runs_at));
    if !seed::all_done_after(&cfg.seed, &inputs.seeds, &previous) {
        return Ok(None);
    }
    seed::log_skipped(&cfg.seed, &inputs.seeds, &previous);
    Ok(Some(Done {
        applied: 0,
        already_applied,
        seeds_run: 0,
    }))
}

/// The answer of a multi-statement query, one slice per statement (each up to and including
/// its `CommandComplete`).
fn results(messages: &[SimpleQueryMessage]) -> Vec<&[SimpleQueryMessage]> {
    messages
        .split_inclusive(|m| matches!(m, SimpleQueryMessage::CommandComplete(_)))
        .collect()
}
