//! Reaching the database: one session, retried until `wait_timeout` (every ~50 ms while
//! nothing answers, with exponential backoff and jitter once the server answers "not now" or
//! an attempt hangs), failing at once on errors that retrying cannot fix (SPEC section 1.2).

use std::time::{Duration, Instant};

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};

use tokio_postgres::config::SslMode;
use tokio_postgres::Config;
use tracing::{debug, info, warn};

use super::error::{classify, describe, Failure};
use super::socket::{self, Failed};
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
/// What db-init adds to the startup `options`: the server-side keepalives, and a marker that
/// shows a server process was started for this very connection (see `pooler`).
const OURS: &str =
    "-c tcp_keepalives_idle=20 -c tcp_keepalives_interval=10 -c tcp_keepalives_count=3 \
                    -c db_init.startup_options=on";

/// The server-side keepalives as settings, for a session whose startup `options` were dropped.
pub(super) const SERVER_KEEPALIVES: [(&str, u64); 3] = [
    ("tcp_keepalives_idle", KEEPALIVE_IDLE_S),
    ("tcp_keepalives_interval", KEEPALIVE_INTERVAL_S),
    ("tcp_keepalives_count", KEEPALIVE_COUNT as u64),
];

/// The places (hosts and ports) that rejected db-init's startup `options` in this process: later
/// connections there (the other databases of a run over many) go without them at once, and the
/// log says it once.
fn rejecting() -> std::sync::MutexGuard<'static, HashSet<String>> {
    static REJECTING: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    let set = REJECTING.get_or_init(Mutex::default);
    set.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A server (or pooler) that refused a startup parameter: PgBouncer answers
/// `unsupported startup parameter: options` (08P01), others name the setting they refuse.
/// Authentication and a missing database are never that.
fn rejects_options(e: &tokio_postgres::Error) -> bool {
    let Some(db) = e.as_db_error() else {
        return false;
    };
    let code = db.code().code();
    if code.starts_with("28") || code == "3D000" {
        return false;
    }
    let message = db.message().to_ascii_lowercase();
    ["startup parameter", "options", "tcp_keepalives", "db_init."]
        .iter()
        .any(|m| message.contains(m))
}

/// The URL's settings with the socket options, and db-init's startup `options` when `ours`.
fn config(db: &Database, s: &ConnectSettings, ssl_mode: SslMode, ours: bool) -> Config {
    let mut pg = db.pg.clone();
    // Both ends notice a vanished peer within about a minute: the client through its socket
    // options, the server through these session settings, so a dead holder's advisory lock is
    // freed by the server instead of after the OS default of two hours.
    if ours {
        let options = match pg.get_options() {
            Some(o) if !o.trim().is_empty() => format!("{o} {OURS}"),
            _ => OURS.to_string(),
        };
        pg.options(&options);
    }
    pg.ssl_mode(ssl_mode)
        .connect_timeout(s.connect_timeout)
        .keepalives(true)
        .keepalives_idle(Duration::from_secs(KEEPALIVE_IDLE_S))
        .keepalives_interval(Duration::from_secs(KEEPALIVE_INTERVAL_S))
        .keepalives_retries(KEEPALIVE_COUNT)
        .tcp_user_timeout(Duration::from_secs(TCP_USER_TIMEOUT_S));
    pg
}

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
    let place = format!("{:?} {:?}", db.pg.get_hosts(), db.pg.get_ports());
    let users_options = db.pg.get_options().is_some_and(|o| !o.trim().is_empty());
    let mut ours = !rejecting().contains(&place);
    // The server's words when it refused db-init's options: said once connected without them.
    let mut dropped: Option<String> = None;
    let mut pg = config(db, s, ssl_mode, ours);

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
        let last = match tokio::time::timeout(budget, socket::open(&pg, &tls)).await {
            Ok(Ok(opened)) => {
                info!(
                    waited_ms = started.elapsed().as_millis() as u64,
                    attempts, "connected to {url}"
                );
                if let Some(said) = dropped {
                    warn!(
                        "{url} rejected the startup parameter `options` ({said}), which db-init adds to ask the \
                         server for TCP keepalives ({OURS}); connected without it. A pooler does this (PgBouncer \
                         accepts no `options` unless ignore_startup_parameters names it). The client's socket \
                         keepalives stay on; the server-side ones are set with SET once db-init has confirmed \
                         that it has a server connection of its own, before it migrates"
                    );
                }
                return Ok(Session::new(
                    opened.client,
                    tls,
                    (opened.wakeups, opened.via),
                    pg,
                    url,
                ));
            }
            // db-init's own additions are dropped, at once; the URL's own `options` are the
            // user's setting, and their refusal is an error that names them.
            Ok(Err(Failed::Pg(e))) if rejects_options(&e) && (ours || users_options) => {
                if !ours {
                    return Err(ConnectError::Refused {
                        url,
                        reason: format!(
                            "the server rejected the startup parameter `options` set in the URL: {}; remove \
                             `options` from the URL, or let the pooler accept it (PgBouncer: \
                             ignore_startup_parameters = options)",
                            describe(&e)
                        ),
                    });
                }
                ours = false;
                if rejecting().insert(place.clone()) {
                    dropped = Some(describe(&e));
                }
                pg = config(db, s, ssl_mode, false);
                debug!(error = %describe(&e), "startup options rejected: connecting again without db-init's");
                continue;
            }
            // Nothing listens, the name does not resolve: the server is not up yet. A socket
            // that does not open within connect_timeout is a hang, which backs off.
            Ok(Err(Failed::Socket(e))) => {
                absent = e.kind() != std::io::ErrorKind::TimedOut;
                format!("error connecting to server: {e}")
            }
            Ok(Err(Failed::Pg(e))) => match classify(&e) {
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
