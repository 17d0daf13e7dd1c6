//! What a failed step reports: the file, statement, line and column (from the server's error
//! position, or from a replay rolled back), what stayed applied and what is unknown, and the
//! sessions that held the lock a migration waited for.

use tokio_postgres::error::ErrorPosition;
use tokio_postgres::Client;

use super::rollback;
use crate::migrate::migration::Migration;
use crate::migrate::source::Source;
use crate::migrate::steps::{Batch, Segment};
use crate::migrate::{Failed, Location, MigrateError};
use crate::pg::{self, ServerError};

/// Byte offset of the server's error position within `sql`, or the statement's first
/// non-blank character.
pub(super) fn position_in(sql: &str, e: &tokio_postgres::Error) -> usize {
    match e.as_db_error().and_then(|d| d.position()) {
        Some(ErrorPosition::Original(p)) => sql
            .char_indices()
            .nth((*p as usize).saturating_sub(1))
            .map_or(0, |(b, _)| b),
        _ => sql.len() - sql.trim_start().len(),
    }
}

/// Builds the error for a failed transactional batch. Without a server position the failing
/// statement is found by replaying the batch statement by statement in a transaction that is
/// rolled back, but only for errors a replay reproduces quickly (see [`worth_replaying`]).
pub(super) async fn failure(
    client: &Client,
    source: &Source,
    batch: &Batch,
    segment: &Segment<'_>,
    err: &tokio_postgres::Error,
    applied_before: usize,
) -> MigrateError {
    let indices: Vec<usize> = batch.items.iter().map(|(i, _)| *i).collect();
    let lost = err.as_db_error().is_none();
    let note = match (lost, indices.len() > 1) {
        (true, _) => format!(
            "the connection was lost before the server answered: whether this step was committed is \
             unknown (`db-init status` tells; a rerun skips it if it was). {}",
            lost_note(applied_before)
        ),
        (false, true) => format!(
            "the whole batch of {} migrations was rolled back (atomic: true); nothing was applied",
            indices.len()
        ),
        (false, false) => format!("it was rolled back. {}", kept_note(applied_before)),
    };
    if let Some(ErrorPosition::Original(p)) = err.as_db_error().and_then(|d| d.position()) {
        if let Some((i, location)) = segment.locate(source, *p) {
            return failed(&source.migrations[i], location, err, note);
        }
    }
    // A replay of a file with its own COMMIT would commit; of one that was forced into a
    // transaction, it would also meet what the first try committed.
    let controls_itself = indices
        .iter()
        .any(|&i| source.migrations[i].blocking_statement().is_some());
    if worth_replaying(err) && !controls_itself {
        if let Some((i, location, replay_err)) = replay(client, source, &batch.items).await {
            return failed(&source.migrations[i], location, &replay_err, note);
        }
    }
    let first = indices.first().map_or(0, |&i| i);
    failed(&source.migrations[first], Location::default(), err, note)
}

/// A replay holds the migration's locks a second time: only for errors that come from the
/// SQL itself (constraint and data errors), never for timeouts, cancellations, lock and
/// serialization failures, or a connection that is gone.
fn worth_replaying(err: &tokio_postgres::Error) -> bool {
    err.code()
        .is_some_and(|c| matches!(c.code().get(..2), Some("22" | "23" | "42" | "2B" | "P0")))
}

/// Bound on the replay, so a slow statement before the failing one cannot hold locks long.
const REPLAY_TIMEOUT_MS: u64 = 10_000;

async fn replay(
    client: &Client,
    source: &Source,
    items: &[(usize, std::ops::Range<usize>)],
) -> Option<(usize, Location, tokio_postgres::Error)> {
    let begin = format!("BEGIN; SET LOCAL statement_timeout = {REPLAY_TIMEOUT_MS}");
    client.batch_execute(&begin).await.ok()?;
    let mut found = None;
    'outer: for (i, chunks) in items {
        let i = *i;
        let m = &source.migrations[i];
        for s in chunks.clone() {
            let (chunk, offset) = m.statement_sql(s);
            if let Err(e) = client.batch_execute(chunk).await {
                let (line, column) = m.line_col(offset + position_in(chunk, &e));
                let location = Location {
                    statement: Some(s + 1),
                    line: Some(line),
                    column: Some(column),
                };
                found = Some((i, location, e));
                break 'outer;
            }
        }
    }
    rollback(client).await;
    found
}

/// After a lost connection only what was durably committed can be promised: every commit but
/// the last of a run skips the wait for the WAL flush.
fn lost_note(applied_before: usize) -> String {
    match applied_before {
        0 => "No earlier migration was applied in this run.".into(),
        n => format!(
            "The {n} migration(s) before it in this run were committed; if the server itself crashed, \
             the most recent of them may have been lost with it (committed without waiting for the disk)."
        ),
    }
}

pub(super) fn kept_note(applied_before: usize) -> String {
    match applied_before {
        0 => "No earlier migration was applied in this run.".into(),
        n => format!("The {n} migration(s) applied before it in this run stay applied."),
    }
}

pub(super) fn failed(
    m: &Migration,
    location: Location,
    e: &tokio_postgres::Error,
    note: String,
) -> MigrateError {
    MigrateError::Failed(Box::new(Failed {
        file: m.file.clone(),
        location,
        error: ServerError::from_pg(e),
        note,
    }))
}

/// Sessions most likely to hold the lock a migration waited for: the oldest open
/// transactions in this database.
pub(super) async fn blockers(client: &Client) -> String {
    let sql = "SELECT pid::text || ' (' || coalesce(nullif(application_name, ''), '?') || ', ' || coalesce(state, '?') \
               || ', in transaction for ' || (now() - xact_start)::text || '): ' || left(regexp_replace(query, '\\s+', ' ', 'g'), 120) \
               FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND datname = current_database() \
               AND xact_start IS NOT NULL ORDER BY xact_start LIMIT 3";
    match pg::column(client, sql).await {
        Ok(rows) if rows.is_empty() => "none found".into(),
        Ok(rows) => rows.join("; "),
        Err(e) => format!("unknown ({})", pg::describe(&e)),
    }
}
