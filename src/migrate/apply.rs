//! Applying the steps: each transaction sent as one simple-protocol query (one round trip), a
//! transaction that hit the DDL lock timeout retried (what a failure reports is
//! `apply_failure.rs`); and the count of confirmed commits a run over many databases reports
//! while the database is still running ([`Commits`]).

use std::time::{Duration, Instant};

use tokio_postgres::error::SqlState;
use tokio_postgres::Client;
use tracing::{info, warn};

use super::concurrent::{self, Watch};
use super::history::History;
use super::source::Source;
use super::steps::{steps, Batch, Segment, Step};
use super::{Location, MigrateError};
use crate::config::MigrateSettings;
use crate::pg::{PgError, Session};
use crate::retry::Backoff;

#[path = "commits.rs"]
mod commits;
#[path = "apply_failure.rs"]
mod failure;
use commits::{answered, confirmed, refused, sending};
pub use commits::{Commits, COMMITS};
use failure::{blockers, failed, failure, kept_note, position_in};

pub async fn apply(
    session: &Session,
    settings: &MigrateSettings,
    history: &History,
    source: &Source,
    pending: &[usize],
    watch: Option<Watch<'_>>,
) -> Result<(), MigrateError> {
    session
        .work_settings(Some(settings.ddl_lock_timeout), settings.statement_timeout)
        .await?;
    // The backend the transactions run on, which the progress lines watch (behind a
    // transaction pooler it may change; a line then shows the time alone).
    let pid = match watch {
        Some(_) => crate::pg::first_text(session, "SELECT pg_backend_pid()")
            .await
            .ok()
            .flatten()
            .and_then(|p| p.parse::<i32>().ok()),
        None => None,
    };
    let mut applied = 0;
    for step in steps(source, pending, settings.atomic) {
        let started = Instant::now();
        let indices = match &step {
            Step::Transaction { indices, .. } => indices.clone(),
            Step::Outside(i) | Step::Parts { index: i, .. } => vec![*i],
        };
        sending(indices.len());
        let files: Vec<&str> = indices
            .iter()
            .filter_map(|&i| source.migrations.get(i))
            .map(|m| m.file.as_str())
            .collect();
        let what = files.join(", ");
        let result = match &step {
            Step::Transaction { indices, durable } => {
                let batch = Batch::transaction(source, history, indices, *durable);
                let run = run_transaction(session, settings, source, &batch, applied);
                concurrent::with_progress(run, pid, &what, watch, started).await
            }
            Step::Outside(i) => {
                let ddl = settings.ddl_lock_timeout;
                run_outside_transaction(session, history, source, *i, applied, (ddl, watch)).await
            }
            Step::Parts {
                index,
                parts,
                durable,
            } => {
                let run = run_parts(
                    session,
                    settings,
                    (history, source),
                    *index,
                    parts,
                    (*durable, applied),
                );
                concurrent::with_progress(run, pid, &what, watch, started).await
            }
        };
        match &result {
            Ok(()) => confirmed(),
            Err(e) if answered(e) => refused(),
            // The answer was lost: the migrations in flight stay unknown.
            Err(_) => {}
        }
        result?;
        for i in &indices {
            info!(migration = %source.migrations[*i].file, ms = started.elapsed().as_millis() as u64, "applied");
        }
        applied += indices.len();
    }
    // Seeds that follow get statement_timeout but not the DDL lock guard.
    if !settings.ddl_lock_timeout.is_zero() {
        session
            .batch_execute("RESET lock_timeout")
            .await
            .map_err(|e| PgError::new("resetting lock_timeout", e))?;
    }
    Ok(())
}

/// Runs a transactional batch, retrying it from the start when it hit `lock_timeout`.
async fn run_transaction(
    client: &Session,
    settings: &MigrateSettings,
    source: &Source,
    batch: &Batch,
    applied_before: usize,
) -> Result<(), MigrateError> {
    // Short waits, many retries (bench/lockwait.py): the app's queries queue behind a waiting
    // ALTER for one `lock_timeout` at most, and run freely between attempts. With the defaults
    // (300 ms, 30 retries) the whole wait is bounded by about 60 s.
    let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
    let mut attempt = 0;
    loop {
        let (err, segment) = match send(client, source, batch).await {
            Ok(()) => return Ok(()),
            Err(failed) => failed,
        };
        rollback(client).await;
        if err.code() == Some(&SqlState::LOCK_NOT_AVAILABLE) && attempt < settings.ddl_lock_retries
        {
            attempt += 1;
            let delay = backoff.next_delay();
            let first = batch
                .items
                .first()
                .map(|(i, _)| source.migrations[*i].file.as_str());
            warn!(
                migration = first.unwrap_or("?"),
                attempt,
                retries = settings.ddl_lock_retries,
                delay_ms = delay.as_millis() as u64,
                blockers = %blockers(client).await,
                "lock_timeout: a lock the migration needs is held by another session; retrying the migration"
            );
            tokio::time::sleep(delay).await;
            continue;
        }
        return Err(failure(client, source, batch, &segment, &err, applied_before).await);
    }
}

/// A migration cut into transactions (an enum label committed before its use): each part as
/// a transaction of its own, the history row with the last. A failure after the first commit
/// says what stays committed.
async fn run_parts(
    client: &Session,
    settings: &MigrateSettings,
    (history, source): (&History, &Source),
    index: usize,
    parts: &[std::ops::Range<usize>],
    (durable, applied_before): (bool, usize),
) -> Result<(), MigrateError> {
    let m = &source.migrations[index];
    for (k, chunks) in parts.iter().enumerate() {
        let last = k + 1 == parts.len();
        let batch = Batch::part(
            source,
            history,
            index,
            chunks.clone(),
            last,
            durable && last,
        );
        let result = run_transaction(client, settings, source, &batch, applied_before).await;
        match result {
            Err(MigrateError::Failed(mut f)) if k > 0 => {
                let through = chunks.start;
                f.note = format!(
                    "its statements {}.. were rolled back, but statements 1..{through} of {} stay committed \
                     (committed after the ADD VALUE so that its label can be used), and no history row was written. \
                     A rerun runs them again: write the ADD VALUE as `ADD VALUE IF NOT EXISTS` so that it passes \
                     over the label that is there. {}",
                    through + 1,
                    m.statements.len(),
                    kept_note(applied_before)
                );
                return Err(MigrateError::Failed(f));
            }
            Err(e) => return Err(e),
            Ok(()) if !last => {
                info!(migration = %m.file, committed = chunks.end, of = m.statements.len(),
                    "committed after ADD VALUE, so that the next statements can use the new enum label");
            }
            Ok(()) => {}
        }
    }
    Ok(())
}

/// Sends the batch a segment at a time; the failing segment comes back with the error.
async fn send<'a>(
    client: &Session,
    source: &'a Source,
    batch: &Batch,
) -> Result<(), (tokio_postgres::Error, Segment<'a>)> {
    for k in 0..batch.segment_count() {
        let segment = batch.segment(source, k);
        let file = segment
            .in_file()
            .and_then(|(i, range)| Some((&source.migrations.get(i)?.text, range)));
        let sent = match file {
            Some((text, range)) => client.execute_shared(text, range).await,
            None => client.batch_execute(&segment.text).await,
        };
        if let Err(e) = sent {
            return Err((e, segment));
        }
    }
    Ok(())
}

/// Statement by statement, then the history row: for `CREATE INDEX CONCURRENTLY`, files that
/// hold their own `BEGIN` / `COMMIT`, and the like. Each top-level statement is its own query,
/// because a multi-statement query is an implicit transaction. The file's own transaction
/// control is honoured, so what commits is what the file says commits.
async fn run_outside_transaction(
    client: &Session,
    history: &History,
    source: &Source,
    index: usize,
    applied_before: usize,
    (ddl_lock_timeout, watch): (Duration, Option<Watch<'_>>),
) -> Result<(), MigrateError> {
    let m = &source.migrations[index];
    let started = Instant::now();
    let statements = m.top_level_statements();
    concurrent::drop_invalid_indexes(client, m, &statements).await?;
    let why = m
        .outside
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_default();
    info!(migration = %m.file, why = %why, "running outside a transaction, statement by statement");
    let mut done = crate::migrate::sql::Committed::default();
    for (n, (chunk, offset, sql)) in statements.iter().enumerate() {
        let words = super::sql::statements(sql)
            .into_iter()
            .next()
            .map(|s| s.words)
            .unwrap_or_default();
        let ran = match concurrent::waits_for_others(&words) {
            true => concurrent::run(client, sql, ddl_lock_timeout, watch).await,
            false => {
                client
                    .execute_shared(&m.text, *offset..offset + sql.len())
                    .await
            }
        };
        if let Err(e) = ran {
            if done.open {
                rollback(client).await;
            }
            let (line, column) = m.line_col(offset + position_in(sql, &e));
            // Numbered as the "committed" count is: top-level statements, not Drizzle chunks.
            let _ = chunk;
            let location = Location {
                statement: Some(n + 1),
                line: Some(line),
                column: Some(column),
            };
            let applied = match done.count {
                0 => "none of its statements were committed".to_string(),
                k => format!(
                    "partly applied: statements 1..{k} of {} committed",
                    statements.len()
                ),
            };
            let lost = e.is_closed() || e.as_db_error().is_none();
            let unknown = match lost {
                true => " The connection was lost before the server answered: whether this statement took effect is unknown.",
                false => "",
            };
            let index = concurrent::left_behind(client, sql, lost).await;
            let note = format!(
                "{} runs outside a transaction ({why}): {applied}, and no history row was written.{unknown}{index} \
                 Make the statements idempotent (IF NOT EXISTS) or undo them, and rerun. {}",
                m.file,
                kept_note(applied_before)
            );
            return Err(failed(m, location, &e, note));
        }
        done.after(n + 1, &words);
    }
    let ms = started.elapsed().as_millis() as u64;
    // A file that leaves its transaction open is committed with its history row, as Drizzle's
    // final COMMIT would.
    let record = match done.open {
        true => format!("{};\nCOMMIT", history.insert_sql(m, Some(ms))),
        false => history.insert_sql(m, Some(ms)),
    };
    client.batch_execute(&record).await.map_err(|e| {
        let note = format!(
            "{} runs outside a transaction: all {} of its statements were committed, but its history row \
             could not be written in {}, so a rerun would run it again. Once it is checked, record it with \
             `db-init baseline --migration {}`. {}",
            m.file,
            statements.len(),
            history.qualified(),
            m.name,
            kept_note(applied_before)
        );
        failed(m, Location::default(), &e, note)
    })
}

pub(super) async fn rollback(client: &Client) {
    // Outside a transaction this only warns; a broken connection is reported by the caller.
    let _ = client.batch_execute("ROLLBACK").await;
}
