//! Applying pending migrations: each in its own transaction with its history row, sent as one
//! simple-protocol query (one round trip); errors mapped back to file, statement, line, column.

use std::time::{Duration, Instant};

use backon::BackoffBuilder;
use tokio_postgres::error::ErrorPosition;
use tokio_postgres::{Client, Error as PgError};
use tracing::{info, warn};

use super::history::History;
use super::source::{Migration, Source};
use super::{sql, Location, MigrateError};
use crate::config::Config;

const LOCK_NOT_AVAILABLE: &str = "55P03";

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
            let m = &source.migrations[i];
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
    fn locate(&self, source: &Source, position: u32) -> Option<(usize, Location)> {
        let at = (position as usize).checked_sub(1)?;
        let piece = self
            .pieces
            .iter()
            .find(|p| p.start <= at && at < p.end.max(p.start + 1))?;
        let m = &source.migrations[piece.migration];
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
        .map(|(k, &i)| match source.migrations[i].no_transaction {
            true => Step::Outside(i),
            false => Step::Transaction {
                indices: vec![i],
                durable: k + 1 == pending.len(),
            },
        })
        .collect()
}

/// The queries a no-transaction migration is sent as: each top-level statement alone, since a
/// multi-statement query is an implicit transaction. Yields (statement number, byte offset in
/// the file, SQL).
pub fn outside_statements(m: &Migration) -> Vec<(usize, usize, &str)> {
    let mut out = Vec::new();
    for s in 0..m.statements.len() {
        let (chunk, offset) = m.statement_sql(s);
        for stmt in sql::statements(chunk) {
            out.push((s + 1, offset + stmt.range.start, &chunk[stmt.range]));
        }
    }
    out
}

pub async fn apply(
    client: &Client,
    cfg: &Config,
    history: &History,
    source: &Source,
    pending: &[usize],
) -> Result<(), MigrateError> {
    session_guards(client, cfg).await?;
    let mut applied = 0;
    for step in steps(source, pending, cfg.atomic) {
        let started = Instant::now();
        let indices = match &step {
            Step::Transaction { indices, durable } => {
                let batch = Batch::transaction(source, history, indices, *durable);
                run_transaction(client, cfg, source, indices, &batch, applied).await?;
                indices.clone()
            }
            Step::Outside(i) => {
                run_outside_transaction(client, history, source, *i, applied).await?;
                vec![*i]
            }
        };
        for i in &indices {
            info!(migration = %source.migrations[*i].file, ms = started.elapsed().as_millis() as u64, "applied");
        }
        applied += indices.len();
    }
    // Seeds that follow get statement_timeout but not the DDL lock guard.
    if !cfg.ddl_lock_timeout.is_zero() {
        client
            .batch_execute("RESET lock_timeout")
            .await
            .map_err(|e| MigrateError::db("resetting lock_timeout", &e))?;
    }
    Ok(())
}

async fn session_guards(client: &Client, cfg: &Config) -> Result<(), MigrateError> {
    crate::db::work_settings(client, Some(cfg.ddl_lock_timeout), cfg.statement_timeout)
        .await
        .map_err(|e| MigrateError::db("setting lock_timeout/statement_timeout", &e))
}

/// Runs a transactional batch, retrying it from the start when it hit `lock_timeout`.
async fn run_transaction(
    client: &Client,
    cfg: &Config,
    source: &Source,
    indices: &[usize],
    batch: &Batch,
    applied_before: usize,
) -> Result<(), MigrateError> {
    let mut delays = backon::ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(Duration::from_secs(5))
        .with_jitter()
        .without_max_times()
        .build();
    let mut attempt = 0;
    loop {
        let err = match client.batch_execute(&batch.text).await {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        rollback(client).await;
        let code = err.as_db_error().map(|d| d.code().code());
        if code == Some(LOCK_NOT_AVAILABLE) && attempt < cfg.ddl_lock_retries {
            attempt += 1;
            let delay = delays.next().unwrap_or(Duration::from_secs(5));
            warn!(
                migration = %source.migrations[indices[0]].file,
                attempt,
                retries = cfg.ddl_lock_retries,
                delay_ms = delay.as_millis() as u64,
                blockers = %blockers(client).await,
                "lock_timeout: a lock the migration needs is held by another session; retrying the migration"
            );
            tokio::time::sleep(delay).await;
            continue;
        }
        return Err(failure(client, source, indices, batch, &err, applied_before).await);
    }
}

/// Statement by statement in autocommit, then the history row: for `CREATE INDEX
/// CONCURRENTLY` and the like. Each top-level statement is its own query, because a
/// multi-statement query is an implicit transaction.
async fn run_outside_transaction(
    client: &Client,
    history: &History,
    source: &Source,
    index: usize,
    applied_before: usize,
) -> Result<(), MigrateError> {
    let m = &source.migrations[index];
    let started = Instant::now();
    for (statement, offset, sql) in outside_statements(m) {
        if let Err(e) = client.batch_execute(sql).await {
            let (line, column) = m.line_col(offset + position_in(sql, &e));
            let location = Location {
                statement: Some(statement),
                line: Some(line),
                column: Some(column),
            };
            let note = format!(
                "{} runs outside a transaction (no-transaction marker): statements before statement {statement} \
                 stay applied and no history row was written; make them idempotent (IF NOT EXISTS) and rerun. \
                 {}",
                m.file,
                kept_note(applied_before)
            );
            return Err(failed(m, location, &e, note));
        }
    }
    let ms = started.elapsed().as_millis() as u64;
    client
        .batch_execute(&history.insert_sql(m, Some(ms)))
        .await
        .map_err(|e| {
            MigrateError::db(
                format!("recording {} in {}", m.file, history.qualified()),
                &e,
            )
        })
}

/// Byte offset of the server's error position within `sql`, or 0 (the statement's start).
fn position_in(sql: &str, e: &PgError) -> usize {
    match e.as_db_error().and_then(|d| d.position()) {
        Some(ErrorPosition::Original(p)) => sql
            .char_indices()
            .nth((*p as usize).saturating_sub(1))
            .map_or(0, |(b, _)| b),
        _ => sql.len() - sql.trim_start().len(),
    }
}

async fn rollback(client: &Client) {
    // Outside a transaction this only warns; a broken connection is reported by the caller.
    let _ = client.batch_execute("ROLLBACK").await;
}

/// Builds the error for a failed transactional batch. Without a server position the failing
/// statement is found by replaying the batch statement by statement in a transaction that is
/// rolled back.
async fn failure(
    client: &Client,
    source: &Source,
    indices: &[usize],
    batch: &Batch,
    err: &PgError,
    applied_before: usize,
) -> MigrateError {
    let note = if indices.len() > 1 {
        format!(
            "the whole batch of {} migrations was rolled back (atomic: true); nothing was applied",
            indices.len()
        )
    } else {
        format!("it was rolled back. {}", kept_note(applied_before))
    };
    if let Some(ErrorPosition::Original(p)) = err.as_db_error().and_then(|d| d.position()) {
        if let Some((i, location)) = batch.locate(source, *p) {
            return failed(&source.migrations[i], location, err, note);
        }
    }
    if let Some((i, location, replay_err)) = replay(client, source, indices).await {
        return failed(&source.migrations[i], location, &replay_err, note);
    }
    let m = &source.migrations[indices[0]];
    failed(m, Location::default(), err, note)
}

async fn replay(
    client: &Client,
    source: &Source,
    indices: &[usize],
) -> Option<(usize, Location, PgError)> {
    client.batch_execute("BEGIN").await.ok()?;
    let mut found = None;
    'outer: for &i in indices {
        let m = &source.migrations[i];
        for s in 0..m.statements.len() {
            let (chunk, offset) = m.statement_sql(s);
            if let Err(e) = client.batch_execute(chunk).await {
                let (line, column) = m.line_col(offset + position_in(chunk, &e));
                found = Some((
                    i,
                    Location {
                        statement: Some(s + 1),
                        line: Some(line),
                        column: Some(column),
                    },
                    e,
                ));
                break 'outer;
            }
        }
    }
    rollback(client).await;
    found
}

fn kept_note(applied_before: usize) -> String {
    match applied_before {
        0 => "No earlier migration was applied in this run.".into(),
        n => format!("The {n} migration(s) applied before it in this run stay applied."),
    }
}

fn failed(m: &Migration, location: Location, e: &PgError, note: String) -> MigrateError {
    match e.as_db_error() {
        Some(db) => MigrateError::Failed {
            file: m.file.clone(),
            location,
            sqlstate: db.code().code().to_string(),
            message: db.message().to_string(),
            detail: db.detail().map(str::to_string),
            hint: db.hint().map(str::to_string),
            note,
        },
        None => MigrateError::Failed {
            file: m.file.clone(),
            location,
            sqlstate: "-----".into(),
            message: crate::db::describe(e),
            detail: None,
            hint: None,
            note,
        },
    }
}

/// Sessions most likely to hold the lock a migration waited for: the oldest open
/// transactions in this database.
async fn blockers(client: &Client) -> String {
    let sql = "SELECT pid::text || ' (' || coalesce(nullif(application_name, ''), '?') || ', ' || coalesce(state, '?') \
               || ', in transaction for ' || (now() - xact_start)::text || '): ' || left(regexp_replace(query, '\\s+', ' ', 'g'), 120) \
               FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND datname = current_database() \
               AND xact_start IS NOT NULL ORDER BY xact_start LIMIT 3";
    match client.simple_query(sql).await {
        Ok(messages) => {
            let rows: Vec<String> = messages
                .into_iter()
                .filter_map(|m| match m {
                    tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
                    _ => None,
                })
                .collect();
            if rows.is_empty() {
                "none found".into()
            } else {
                rows.join("; ")
            }
        }
        Err(e) => format!("unknown ({e})"),
    }
}
