//! The advisory lock that lets one of many replicas migrate: polled with
//! `pg_try_advisory_lock` (never a blocking wait), held for a scope, released on every way out.

use std::future::Future;
use std::time::{Duration, Instant};

use backon::BackoffBuilder;
use tokio_postgres::Client;
use tracing::{info, warn};

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("advisory lock {key} not acquired within {waited:.1?}; held by {holder}")]
    Timeout {
        key: i64,
        waited: Duration,
        holder: String,
    },
    #[error("advisory lock {key}: {message}")]
    Database { key: i64, message: String },
}

/// Runs `body` while holding advisory lock `key`, and releases the lock afterwards whatever
/// `body` returned. (On a signal the session is cleaned up by [`crate::signals`]; if the
/// process dies, the server drops the lock with the connection.)
pub async fn with_lock<T, E, F>(
    client: &Client,
    key: i64,
    timeout: Duration,
    body: F,
) -> Result<T, E>
where
    F: Future<Output = Result<T, E>>,
    E: From<LockError>,
{
    acquire(client, key, timeout).await?;
    let result = body.await;
    let released = query_bool(client, &format!("SELECT pg_advisory_unlock({key})")).await;
    match (result, released) {
        (Err(e), _) => Err(e),
        (Ok(_), Err(e)) => Err(LockError::Database {
            key,
            message: format!("releasing: {e}"),
        }
        .into()),
        (Ok(v), Ok(_)) => Ok(v),
    }
}

async fn acquire(client: &Client, key: i64, timeout: Duration) -> Result<(), LockError> {
    let try_sql = format!("SELECT pg_try_advisory_lock({key})");
    let db_err = |e: tokio_postgres::Error| LockError::Database {
        key,
        message: crate::db::describe(&e),
    };
    let started = Instant::now();
    let mut delays = backon::ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(50))
        .with_max_delay(Duration::from_secs(1))
        .with_jitter()
        .without_max_times()
        .build();
    let mut last_report: Option<Instant> = None;
    loop {
        if query_bool(client, &try_sql).await.map_err(db_err)? {
            if last_report.is_some() {
                info!(
                    key,
                    waited_ms = started.elapsed().as_millis() as u64,
                    "advisory lock acquired"
                );
            }
            return Ok(());
        }
        let now = Instant::now();
        if now - started >= timeout {
            let holder = holder(client, key).await;
            return Err(LockError::Timeout {
                key,
                waited: started.elapsed(),
                holder,
            });
        }
        if last_report.is_none_or(|t| now - t >= Duration::from_secs(10)) {
            warn!(key, waited_ms = started.elapsed().as_millis() as u64, holder = %holder(client, key).await, "waiting for the advisory lock");
            last_report = Some(now);
        }
        let delay = delays
            .next()
            .unwrap_or(Duration::from_secs(1))
            .min(Duration::from_secs(1));
        tokio::time::sleep(
            delay
                .min(timeout.saturating_sub(now - started))
                .max(Duration::from_millis(1)),
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
    match crate::db::first_text(client, &sql).await {
        Ok(Some(holder)) => holder,
        Ok(None) => "nobody visible (released meanwhile, or no permission to see it)".into(),
        Err(e) => format!("unknown ({})", crate::db::describe(&e)),
    }
}

async fn query_bool(client: &Client, sql: &str) -> Result<bool, tokio_postgres::Error> {
    Ok(crate::db::first_text(client, sql).await?.as_deref() == Some("t"))
}
