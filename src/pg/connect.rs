//! Reaching the database: one session, retried until `wait_timeout` (every ~50 ms while
//! nothing answers, with exponential backoff and jitter once the server answers "not now" or
//! an attempt hangs), failing at once on errors that retrying cannot fix (SPEC section 1.2).

use std::time::{Duration, Instant};

use tokio_postgres::AsyncMessage;
use tracing::{debug, info, warn};

use super::error::{classify, describe, Failure};
use super::{tls, Session};
use crate::config::{ConnectSettings, Database};
use crate::retry::Backoff;

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("database not reachable at {url} after waiting {waited:.1?} ({attempts} attempts); last error: {last}")]
    Timeout {
        url: String,
        waited: Duration,
        attempts: u32,
        last: String,
    },
    #[error("connection to {url} refused for good: {reason}")]
    Refused { url: String, reason: String },
    #[error("TLS with {url} failed: {reason}")]
    Tls { url: String, reason: String },
}

const KEEPALIVE_IDLE_S: u64 = 20;
const KEEPALIVE_INTERVAL_S: u64 = 10;
const KEEPALIVE_COUNT: u32 = 3;
/// Data the peer has not acknowledged for this long ends the connection.
const TCP_USER_TIMEOUT_S: u64 = 60;
/// The retry delay while nothing answers on the port (drawn from its upper half, 25-50 ms).
const FLOOR: Duration = Duration::from_millis(50);
const SERVER_KEEPALIVES: &str =
    "-c tcp_keepalives_idle=20 -c tcp_keepalives_interval=10 -c tcp_keepalives_count=3";

/// Connects, retrying transient failures until `wait_timeout`.
pub async fn connect(db: &Database, s: &ConnectSettings) -> Result<Session, ConnectError> {
    let url = db.redacted.clone();
    if db.looks_like_pooler {
        warn!(
            "{url} looks like a transaction pooler (port 6543, a -pooler host or pgbouncer=true): it cannot hold \
             the session-level advisory lock that keeps replicas from migrating at once; give db-init the direct \
             URL in DIRECT_URL"
        );
    }
    let (ssl_mode, tls) =
        tls::connector(db.sslmode, db.sslrootcert.as_deref()).map_err(|reason| {
            ConnectError::Tls {
                url: url.clone(),
                reason,
            }
        })?;
    let mut pg = db.pg.clone();
    // Both ends notice a vanished peer within about a minute: the client through its socket
    // options, the server through these session settings, so a dead holder's advisory lock is
    // freed by the server instead of after the OS default of two hours.
    let options = match pg.get_options() {
        Some(o) if !o.trim().is_empty() => format!("{o} {SERVER_KEEPALIVES}"),
        _ => SERVER_KEEPALIVES.to_string(),
    };
    pg.ssl_mode(ssl_mode)
        .connect_timeout(s.connect_timeout)
        .options(&options)
        .keepalives(true)
        .keepalives_idle(Duration::from_secs(KEEPALIVE_IDLE_S))
        .keepalives_interval(Duration::from_secs(KEEPALIVE_INTERVAL_S))
        .keepalives_retries(KEEPALIVE_COUNT)
        .tcp_user_timeout(Duration::from_secs(TCP_USER_TIMEOUT_S));

    let started = Instant::now();
    let deadline = started + s.wait_timeout;
    let mut backoff = Backoff::new(s.retry_initial, s.retry_max);
    let mut floor = Backoff::new(FLOOR.min(s.retry_max), FLOOR.min(s.retry_max));
    let mut attempts = 0u32;
    let mut last_info: Option<Instant> = None;
    loop {
        attempts += 1;
        let mut absent = false;
        let budget = s
            .connect_timeout
            .min(deadline.saturating_duration_since(Instant::now()))
            .max(Duration::from_millis(50));
        let last = match tokio::time::timeout(budget, pg.connect(tls.clone())).await {
            Ok(Ok((client, mut connection))) => {
                // Drives the connection and counts NOTIFYs (a replica that released the lock),
                // so waiters wake at once instead of at their next poll. Ends when the client
                // is dropped or the socket closes.
                let (notified, wakeups) = tokio::sync::watch::channel(0u64);
                tokio::spawn(async move {
                    loop {
                        match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                            Some(Ok(AsyncMessage::Notification(_))) => {
                                notified.send_modify(|n| *n += 1)
                            }
                            Some(Ok(_)) => {}
                            Some(Err(e)) => {
                                debug!(error = %e, "connection closed");
                                break;
                            }
                            None => break,
                        }
                    }
                });
                info!(
                    waited_ms = started.elapsed().as_millis() as u64,
                    attempts, "connected to {url}"
                );
                return Ok(Session::new(client, tls, wakeups));
            }
            Ok(Err(e)) => match classify(&e) {
                Failure::Refused => {
                    return Err(ConnectError::Refused {
                        url,
                        reason: describe(&e),
                    })
                }
                Failure::Tls => {
                    return Err(ConnectError::Tls {
                        url,
                        reason: describe(&e),
                    })
                }
                Failure::Absent => {
                    absent = true;
                    describe(&e)
                }
                Failure::Busy => describe(&e),
            },
            Err(_) => format!("connection attempt timed out after {budget:?} (connect_timeout)"),
        };
        debug!(attempt = attempts, error = %last, "database not ready");
        let now = Instant::now();
        if last_info.is_none_or(|t| now - t >= Duration::from_secs(5)) {
            info!(waited_ms = started.elapsed().as_millis() as u64, error = %last, "waiting for the database at {url}");
            last_info = Some(now);
        }
        if now >= deadline {
            return Err(ConnectError::Timeout {
                url,
                waited: started.elapsed(),
                attempts,
                last,
            });
        }
        // Nobody is there to be loaded by the attempts: come back at the floor, so the wait
        // ends within ~50 ms of the server listening. The exponential schedule only advances
        // while the server itself pushes back.
        let delay = match absent {
            true => floor.next_delay(),
            false => backoff.next_delay(),
        };
        tokio::time::sleep(delay.min(deadline - now)).await;
    }
}
