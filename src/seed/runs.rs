//! Every statement on `db_init.seed_runs`, the record of which seed ran with which checksum
//! (db-init's own schema, never `public`: `drizzle-kit push` drops unknown tables there).

use tokio_postgres::SimpleQueryMessage;

use super::SeedFile;
use crate::pg::quote::quote_literal;
use crate::pg::{first_text, PgError, Session};

const RUNS: &str = "db_init.seed_runs";

/// One earlier run of a seed.
#[derive(Debug, Clone)]
pub struct Run {
    pub name: String,
    pub checksum: String,
    /// It ran after `wave` (the start of this process's session): another replica of the same
    /// rollout ran it while this one waited for the lock.
    pub in_wave: bool,
    /// When it ran (UTC) and which replica ran it ([`replica`]); `None` for runs recorded
    /// before db-init kept the replica.
    pub at: String,
    pub by: Option<String>,
}

impl Run {
    /// "at <when> by <replica>", for the log line that says why a seed was skipped.
    pub fn when_and_who(&self) -> String {
        match &self.by {
            Some(by) => format!("at {} by {by}", self.at),
            None => format!("at {}", self.at),
        }
    }
}

/// This process as a seed run records it: the host name (a pod's or container's name) and
/// the process id, so a skipped seed names the replica that ran it.
pub fn replica() -> &'static str {
    static REPLICA: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    REPLICA.get_or_init(|| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .or_else(|| std::env::var("HOSTNAME").ok())
            .unwrap_or_else(|| "unknown host".into());
        format!("{host} (pid {})", std::process::id())
    })
}

/// The earlier runs, or `None` when the table does not exist yet.
pub async fn read(session: &Session, wave: &str) -> Result<Option<Vec<Run>>, PgError> {
    let exists = first_text(session, &format!("SELECT {}", exists_expr()))
        .await
        .map_err(|e| PgError::new(format!("reading {RUNS}"), e))?;
    if exists.as_deref() != Some("t") {
        return Ok(None);
    }
    read_rows(session, wave).await.map(Some)
}

async fn read_rows(session: &Session, wave: &str) -> Result<Vec<Run>, PgError> {
    let rows = session
        .simple_query(&rows_sql(wave))
        .await
        .map_err(|e| PgError::new(format!("reading {RUNS}"), e))?;
    Ok(runs_from(&rows))
}

/// A column expression, true when the table exists.
pub fn exists_expr() -> String {
    format!("to_regclass('{RUNS}') IS NOT NULL")
}

/// The earlier runs, each marked whether it ran since `wave`. `run_by` is read through
/// `to_jsonb` so that a table from before the column existed reads too.
pub fn rows_sql(wave: &str) -> String {
    format!(
        "SELECT name, checksum, coalesce(last_run_at >= {}::timestamptz, false), \
         coalesce(to_char(last_run_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS\"Z\"'), 'an unknown time'), \
         to_jsonb(r) ->> 'run_by' FROM {RUNS} r",
        quote_literal(wave)
    )
}

/// The runs of [`rows_sql`]'s answer (its first result set, up to its end).
pub fn runs_from(messages: &[SimpleQueryMessage]) -> Vec<Run> {
    messages
        .iter()
        .take_while(|m| !matches!(m, SimpleQueryMessage::CommandComplete(_)))
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(Run {
                name: r.get(0)?.to_string(),
                checksum: r.get(1).unwrap_or_default().to_string(),
                in_wave: r.get(2) == Some("t"),
                at: r.get(3).unwrap_or("an unknown time").to_string(),
                by: r.get(4).map(str::to_string),
            }),
            _ => None,
        })
        .collect()
}

/// Creates the table (db-init's own schema) before the first seed is recorded.
pub async fn create(session: &Session) -> Result<(), PgError> {
    session
        .batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS db_init;\n\
             CREATE TABLE IF NOT EXISTS {RUNS} (name text PRIMARY KEY, checksum text, last_run_at timestamptz, execution_ms integer, run_by text);"
        ))
        .await
        .map_err(|e| PgError::new(format!("creating {RUNS}"), e))
}

/// Adds `run_by` to a table an earlier db-init created without it; a no-op (and no lock
/// taken) when the column is there. Older db-init versions insert without naming it.
pub async fn upgrade(session: &Session) -> Result<(), PgError> {
    session
        .batch_execute(&format!(
            "DO $db_init$ BEGIN IF NOT EXISTS (SELECT FROM pg_attribute WHERE attrelid = '{RUNS}'::regclass \
             AND attname = 'run_by' AND NOT attisdropped) THEN ALTER TABLE {RUNS} ADD COLUMN run_by text; \
             END IF; END $db_init$"
        ))
        .await
        .map_err(|e| PgError::new(format!("adding run_by to {RUNS}"), e))
}

/// The statement that records a successful run: inside the seed's transaction, which began at
/// `now()`, unless the seed ran statement by statement and took `ms`.
pub fn record_sql(seed: &SeedFile, ms: Option<u64>) -> String {
    let ms = match ms {
        Some(ms) => format!("{}", ms.min(i32::MAX as u64)),
        None => "(extract(epoch FROM clock_timestamp() - now()) * 1000)::integer".into(),
    };
    format!(
        "INSERT INTO {RUNS} (name, checksum, last_run_at, execution_ms, run_by) \
         VALUES ({}, '{}', now(), {ms}, {}) \
         ON CONFLICT (name) DO UPDATE SET checksum = excluded.checksum, last_run_at = excluded.last_run_at, \
         execution_ms = excluded.execution_ms, run_by = excluded.run_by",
        quote_literal(&seed.name),
        seed.checksum,
        quote_literal(replica())
    )
}
