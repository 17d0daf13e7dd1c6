//! Every statement on `db_init.seed_runs`, the record of which seed ran with which checksum
//! (db-init's own schema, never `public`: `drizzle-kit push` drops unknown tables there).

use super::SeedFile;
use crate::pg::quote::quote_literal;
use crate::pg::{first_text, PgError, Session};

const RUNS: &str = "db_init.seed_runs";

/// `(name, checksum)` of earlier runs; creates the table when it is missing.
pub async fn read(session: &Session) -> Result<Vec<(String, String)>, PgError> {
    let exists = first_text(
        session,
        &format!("SELECT to_regclass('{RUNS}') IS NOT NULL"),
    )
    .await
    .map_err(|e| PgError::new(format!("reading {RUNS}"), e))?;
    if exists.as_deref() != Some("t") {
        session
            .batch_execute(&format!(
                "CREATE SCHEMA IF NOT EXISTS db_init;\n\
                 CREATE TABLE IF NOT EXISTS {RUNS} (name text PRIMARY KEY, checksum text, last_run_at timestamptz, execution_ms integer);"
            ))
            .await
            .map_err(|e| PgError::new(format!("creating {RUNS}"), e))?;
        return Ok(Vec::new());
    }
    let rows = session
        .simple_query(&format!("SELECT name, checksum FROM {RUNS}"))
        .await
        .map_err(|e| PgError::new(format!("reading {RUNS}"), e))?;
    Ok(rows
        .into_iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => Some((
                r.get(0)?.to_string(),
                r.get(1).unwrap_or_default().to_string(),
            )),
            _ => None,
        })
        .collect())
}

/// The statement that records a successful run: inside the seed's transaction, which began at
/// `now()`, unless the seed ran statement by statement and took `ms`.
pub fn record_sql(seed: &SeedFile, ms: Option<u64>) -> String {
    let ms = match ms {
        Some(ms) => format!("{}", ms.min(i32::MAX as u64)),
        None => "(extract(epoch FROM clock_timestamp() - now()) * 1000)::integer".into(),
    };
    format!(
        "INSERT INTO {RUNS} (name, checksum, last_run_at, execution_ms) \
         VALUES ({}, '{}', now(), {ms}) \
         ON CONFLICT (name) DO UPDATE SET checksum = excluded.checksum, last_run_at = excluded.last_run_at, \
         execution_ms = excluded.execution_ms",
        quote_literal(&seed.name),
        seed.checksum
    )
}
