//! The advisory lock that lets one of many replicas migrate: polled with
//! `pg_try_advisory_lock` (never a blocking wait), held for a scope, released on every way out.

use std::future::Future;
use std::time::{Duration, Instant};

use tokio_postgres::Client;
use tracing::{info, warn};

use super::{describe, first_text, PgError};
use crate::config::LockSettings;
use crate::retry::Backoff;

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("advisory lock {key} not acquired within {waited:.1?}; held by {holder}")]
    Timeout {
        key: i64,
        waited: Duration,
        holder: String,
    },
    #[error("advisory lock {key}: the server did not answer {what} within {waited:?}; the server frees the lock when it notices the connection is gone")]
    Unanswered {
        key: i64,
        what: &'static str,
        waited: Duration,
    },
    #[error("advisory lock {key}: {source}")]
    Database {
        key: i64,
        #[source]
        source: PgError,
    },
}

/// Runs `body` while holding the advisory lock, and releases the lock afterwards whatever
/// `body` returned. (On a signal the session's owner cleans up; if the process dies, the
/// server drops the lock with the connection.)
pub async fn with_lock<T, E, F>(client: &Client, lock: LockSettings, body: F) -> Result<T, E>
where
    F: Future<Output = Result<T, E>>,
    E: From<LockError>,
{
    acquire(client, lock).await?;
    let result = body.await;
    let key = lock.key;
    let unlock = format!("SELECT pg_advisory_unlock({key})");
    let released = tokio::time::timeout(RELEASE_BOUND, first_text(client, &unlock)).await;
    match (result, released) {
        (Err(e), _) => Err(e),
        (Ok(_), Err(_)) => Err(LockError::Unanswered {
            key,
            what: "the unlock",
            waited: RELEASE_BOUND,
        }
        .into()),
        (Ok(_), Ok(Err(e))) => Err(LockError::Database {
            key,
            source: PgError::new("releasing the lock", e),
        }
        .into()),
        (Ok(v), Ok(Ok(_))) => Ok(v),
    }
}

/// How long the unlock may wait for its answer.
const RELEASE_BOUND: Duration = Duration::from_secs(10);

/// How long past `lock_timeout` an unanswered poll may wait.
const POLL_GRACE: Duration = Duration::from_secs(5);

async fn acquire(client: &Client, lock: LockSettings) -> Result<(), LockError> {
    let key = lock.key;
    let try_sql = format!("SELECT pg_try_advisory_lock({key})");
    let started = Instant::now();
    let mut backoff = Backoff::new(Duration::from_millis(50), Duration::from_secs(1));
    let mut last_report: Option<Instant> = None;
    loop {
        // A poll that gets no answer (a network that stops forwarding) must not outlive
        // lock_timeout: the wait for the answer is bounded too.
        let bound = lock.timeout.saturating_sub(started.elapsed()) + POLL_GRACE;
        let got = match tokio::time::timeout(bound, first_text(client, &try_sql)).await {
            Ok(got) => got.map_err(|e| LockError::Database {
                key,
                source: PgError::new("taking the lock", e),
            })?,
            Err(_) => {
                return Err(LockError::Timeout {
                    key,
                    waited: started.elapsed(),
                    holder: "unknown: the server stopped answering the lock poll".into(),
                })
            }
        };
        if got.as_deref() == Some("t") {
            if last_report.is_some() {
                info!(
                    key,
                    waited_ms = started.elapsed().as_millis() as u64,
                    "advisory lock acquired"
                );
            }
            return Ok(());
        }
        let waited = started.elapsed();
        if waited >= lock.timeout {
            let holder = tokio::time::timeout(POLL_GRACE, holder(client, key))
                .await
                .unwrap_or_else(|_| "unknown: the server did not answer".into());
            return Err(LockError::Timeout {
                key,
                waited,
                holder,
            });
        }
        let now = Instant::now();
        if last_report.is_none_or(|t| now - t >= Duration::from_secs(10)) {
            let holder = tokio::time::timeout(POLL_GRACE, holder(client, key))
                .await
                .unwrap_or_else(|_| "unknown: the server did not answer".into());
            warn!(key, waited_ms = waited.as_millis() as u64, holder = %holder, "waiting for the advisory lock");
            last_report = Some(now);
        }
        tokio::time::sleep(
            backoff
                .next_delay()
                .min(lock.timeout.saturating_sub(waited)),
        )
        .await;
    }
}

/// Who holds the lock: pid, application_name, client address, state, session age.
async fn holder(client: &Client, key: i64) -> String {
    let sql = format!(
        "SELECT 'pid ' || a.pid || ', application_name ' || coalesce(nullif(a.application_name, ''), '?') \
         || ', client ' || coalesce(host(a.client_addr), 'local socket') || ', state ' || coalesce(a.state, '?') \
         || ', connected for ' || date_trunc('second', now() - a.backend_start)::text \
         || ', ' || coalesce(a.state, '?') || ' for ' || date_trunc('second', now() - a.state_change)::text \
         FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
         WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 \
         AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
         AND l.classid::bigint = (({key}::bigint >> 32) & 4294967295) \
         AND l.objid::bigint = ({key}::bigint & 4294967295)"
    );
    match first_text(client, &sql).await {
        Ok(Some(holder)) => holder,
        Ok(None) => "nobody visible (released meanwhile, or no permission to see it)".into(),
        Err(e) => format!("unknown ({})", describe(&e)),
    }
}
