//! Reaching the database: one session, retried with exponential backoff and jitter until
//! `wait_timeout`, failing at once on errors that retrying cannot fix (SPEC section 1.2).

pub mod tls;

use std::error::Error as _;
use std::time::{Duration, Instant};

use backon::BackoffBuilder;
use deadpool_postgres::{
    ClientWrapper, Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod,
};
use tokio_postgres_rustls::MakeRustlsConnect;
use tracing::{debug, info, warn};

use crate::config::{Config, Database};

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
    #[error("cannot set up the connection pool: {0}")]
    Setup(String),
}

impl ConnectError {
    /// Exit 4 rather than 3: retrying would not help.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            ConnectError::Refused { .. } | ConnectError::Tls { .. }
        )
    }
}

enum Failure {
    Transient(String),
    Refused(String),
    Tls(String),
}

/// The error with its causes, and for server errors the SQLSTATE.
pub fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut s = format!("{} (SQLSTATE {})", db.message(), db.code().code());
        if let Some(d) = db.detail() {
            s.push_str(&format!("; detail: {d}"));
        }
        return s;
    }
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        s.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    s
}

fn classify(e: &tokio_postgres::Error) -> Failure {
    let text = describe(e);
    if let Some(db) = e.as_db_error() {
        let code = db.code().code();
        // 57P03 starting up / shutting down / recovering, 53300 too many connections, 08xxx.
        return if code == "57P03" || code == "53300" || code.starts_with("08") {
            Failure::Transient(text)
        } else {
            Failure::Refused(text)
        };
    }
    match e.to_string().as_str() {
        "error performing TLS handshake" => Failure::Tls(text),
        "authentication error" | "invalid configuration" | "invalid connection string" => {
            Failure::Refused(text)
        }
        // DNS, refused, reset, timed out, closed during start-up.
        _ => Failure::Transient(text),
    }
}

/// The session db-init works on, taken out of the pool (`Object::take`) so that the pool can
/// never hand a session that holds the advisory lock to anyone else: deadpool's recycling does
/// not run `pg_advisory_unlock_all()`.
pub struct Session {
    client: ClientWrapper,
    tls: MakeRustlsConnect,
}

impl Session {
    /// Asks the server to cancel whatever this session is running (a separate connection).
    pub async fn cancel(&self) -> Result<(), tokio_postgres::Error> {
        self.client
            .cancel_token()
            .cancel_query(self.tls.clone())
            .await
    }
}

impl std::ops::Deref for Session {
    type Target = tokio_postgres::Client;
    fn deref(&self) -> &tokio_postgres::Client {
        &self.client
    }
}

/// Connects, retrying transient failures until `wait_timeout`.
pub async fn connect(cfg: &Config, db: &Database) -> Result<Session, ConnectError> {
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
    pg.ssl_mode(ssl_mode)
        .connect_timeout(cfg.connect_timeout)
        .keepalives(true)
        .keepalives_idle(Duration::from_secs(30))
        .keepalives_interval(Duration::from_secs(10))
        .keepalives_retries(3);
    let manager = Manager::from_config(
        pg,
        tls.clone(),
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    let pool = Pool::builder(manager)
        .max_size(1)
        .build()
        .map_err(|e| ConnectError::Setup(e.to_string()))?;

    let started = Instant::now();
    let deadline = started + cfg.wait_timeout;
    let mut delays = backon::ExponentialBuilder::default()
        .with_min_delay(cfg.retry_initial)
        .with_max_delay(cfg.retry_max)
        .with_factor(2.0)
        .with_jitter()
        .without_max_times()
        .build();
    let mut attempts = 0u32;
    let mut last_info: Option<Instant> = None;
    loop {
        attempts += 1;
        let budget = cfg
            .connect_timeout
            .min(deadline.saturating_duration_since(Instant::now()))
            .max(Duration::from_millis(50));
        let failure = match tokio::time::timeout(budget, pool.get()).await {
            Ok(Ok(object)) => {
                let waited = started.elapsed();
                info!(
                    waited_ms = waited.as_millis() as u64,
                    attempts, "connected to {url}"
                );
                return Ok(Session {
                    client: Object::take(object),
                    tls,
                });
            }
            Ok(Err(PoolError::Backend(e))) => classify(&e),
            Ok(Err(e)) => Failure::Transient(e.to_string()),
            Err(_) => Failure::Transient(format!(
                "connection attempt timed out after {budget:?} (connect_timeout)"
            )),
        };
        let last = match failure {
            Failure::Refused(reason) => return Err(ConnectError::Refused { url, reason }),
            Failure::Tls(reason) => return Err(ConnectError::Tls { url, reason }),
            Failure::Transient(last) => last,
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
        // backon's jitter adds up to one more delay; the cap keeps readiness noticed within retry_max.
        let delay = delays.next().unwrap_or(cfg.retry_max).min(cfg.retry_max);
        tokio::time::sleep(delay.min(deadline - now)).await;
    }
}

/// Session settings for doing work (migrations, seeds), sent once in one round trip.
/// `client_connection_check_interval` (PostgreSQL 14+) makes the server stop a statement
/// whose client died (kill -9, node loss) within a second instead of running it to the end
/// while holding its locks.
pub async fn work_settings(
    client: &tokio_postgres::Client,
    lock_timeout: Option<Duration>,
    statement_timeout: Duration,
) -> Result<(), tokio_postgres::Error> {
    let mut sql = format!("SET statement_timeout = {};", statement_timeout.as_millis());
    if let Some(t) = lock_timeout {
        sql.push_str(&format!(" SET lock_timeout = {};", t.as_millis()));
    }
    sql.push_str(
        " SELECT set_config('client_connection_check_interval', '1000', false) \
         WHERE current_setting('server_version_num')::int >= 140000;",
    );
    client.batch_execute(&sql).await
}

/// The first column of the first row of a simple query, as text (`None` for no row or NULL).
pub async fn first_text(
    client: &tokio_postgres::Client,
    sql: &str,
) -> Result<Option<String>, tokio_postgres::Error> {
    Ok(client
        .simple_query(sql)
        .await?
        .into_iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0).map(str::to_string),
            _ => None,
        }))
}
