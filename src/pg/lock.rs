//! The advisory lock that lets one of many replicas migrate: polled with
//! `pg_try_advisory_lock` (never a blocking wait), held for a scope, released on every way out.

use std::future::Future;
use std::time::{Duration, Instant};

use tokio_postgres::{Client, SimpleQueryMessage};
use tracing::{info, warn};

use super::pooler::{self, Backend};
use super::{describe, first_text, PgError, Session};
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
    /// The connection goes through a transaction or statement pooler (see `pooler`).
    #[error("advisory lock {key}: {url} does not keep this session on one server connection ({evidence}): it is a \
             transaction or statement pooler, where the session-level advisory lock that keeps replicas from \
             migrating at once cannot be held; nothing was applied{}. Give db-init the direct, unpooled server URL \
             (DIRECT_URL), or point it at PgBouncer in session mode", left.as_deref().unwrap_or_default())]
    Pooled {
        key: i64,
        url: String,
        evidence: String,
        /// Set when the lock could not be released.
        left: Option<String>,
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
pub async fn with_lock<T, E, F>(session: &Session, lock: LockSettings, body: F) -> Result<T, E>
where
    F: Future<Output = Result<T, E>>,
    E: From<LockError>,
{
    let backend = listen_on(session, lock.key).await?;
    if let Some(b) = backend {
        pooler::confirm(session, lock.key, b).await?;
    }
    let mut wait = Wait::new(lock);
    loop {
        let seen = session.wakeups_seen();
        if try_take(session, &wait, backend, false).await? {
            break;
        }
        wait.next(session, seen).await?;
    }
    if let Some(b) = backend {
        pooler::after_take(session, lock.key, b).await?;
    }
    let result = body.await;
    let released = release_and_notify(session, lock.key, Mode::Exclusive).await;
    match (result, released) {
        (Err(e), _) => Err(e),
        (Ok(_), Err(e)) => Err(e.into()),
        (Ok(v), Ok(())) => Ok(v),
    }
}

/// A shared hold lets many replicas check "nothing to do" at once; the exclusive one migrates.
/// The shared one is held for one transaction (see `idle`), the exclusive one for the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Shared,
    Exclusive,
}

/// Subscribes to the lock's channel, so that a waiter wakes the moment a holder releases it
/// (polling stays as the fallback); returns, in the server's clock, the time `ago` before now
/// (when this process started: replicas started together are one rollout, a "wave").
pub async fn listen(client: &Client, key: i64, ago: Duration) -> Result<String, LockError> {
    let sql = format!("{} SELECT {}", listen_sql(key), wave_expr(ago));
    let now = tokio::time::timeout(LISTEN_BOUND, first_text(client, &sql)).await;
    match now {
        Ok(Ok(now)) => Ok(now.unwrap_or_default()),
        Ok(Err(e)) => Err(LockError::Database {
            key,
            source: PgError::new("listening for the lock's release", e),
        }),
        Err(_) => Err(LockError::Unanswered {
            key,
            what: "LISTEN",
            waited: LISTEN_BOUND,
        }),
    }
}

/// Subscribes (as [`listen`]) and reads which server process answered.
async fn listen_on(session: &Session, key: i64) -> Result<Option<Backend>, LockError> {
    let sql = format!("{} SELECT {}", listen_sql(key), Backend::columns());
    match tokio::time::timeout(LISTEN_BOUND, session.simple_query(&sql)).await {
        Ok(Ok(messages)) => Ok(messages.iter().find_map(|m| match m {
            SimpleQueryMessage::Row(row) => Backend::parse(row.get(0), row.get(1)),
            _ => None,
        })),
        Ok(Err(e)) => Err(LockError::Database {
            key,
            source: PgError::new("listening for the lock's release", e),
        }),
        Err(_) => Err(LockError::Unanswered {
            key,
            what: "LISTEN",
            waited: LISTEN_BOUND,
        }),
    }
}

/// The statement that subscribes to the lock's channel.
pub fn listen_sql(key: i64) -> String {
    format!("LISTEN {};", channel(key))
}

/// A column expression: the server's clock `ago` before now, as text (the wave's start).
pub fn wave_expr(ago: Duration) -> String {
    format!(
        "(now() - interval '{} milliseconds')::text",
        ago.as_millis()
    )
}

fn channel(key: i64) -> String {
    format!("db_init_lock_{}", key as u64)
}

/// A column expression: one try of the shared lock, for the rest of the transaction.
pub fn try_shared_expr(key: i64) -> String {
    format!("pg_try_advisory_xact_lock_shared({key})")
}

/// The statement that releases a hold of the session.
pub fn unlock_sql(key: i64, mode: Mode) -> String {
    match mode {
        Mode::Shared => format!("SELECT pg_advisory_unlock_shared({key})"),
        Mode::Exclusive => format!("SELECT pg_advisory_unlock({key})"),
    }
}

/// One try of the exclusive lock, made only on the server process `on` (see
/// [`pooler::take_expr`]); `commit` ends the transaction the last shared try left open, in
/// the same round trip. Never a blocking wait (a waiter's snapshot would stall the holder's
/// `CREATE INDEX CONCURRENTLY`), and never a wait for an answer that does not come.
/// A poll that gets no answer (a network that stops forwarding) ends at `lock_timeout` like
/// any other wait for the lock.
pub async fn try_take(
    session: &Session,
    wait: &Wait,
    on: Option<Backend>,
    commit: bool,
) -> Result<bool, LockError> {
    let key = wait.lock.key;
    let sql = format!(
        "{}SELECT {}",
        if commit { "COMMIT; " } else { "" },
        pooler::take_expr(key, on)
    );
    match tokio::time::timeout(wait.poll_bound(), first_text(session, &sql)).await {
        Ok(Ok(None)) => Err(pooler::refused(
            session,
            key,
            format!(
                "the lock's try ran on another server process than the statement before it ({})",
                on.map(|b| b.pid).unwrap_or_default()
            ),
            None,
        )),
        Ok(Ok(Some(got))) if got == pooler::HELD_HERE => Err(pooler::refused(
            session,
            key,
            format!(
                "server process {} already held the lock when this session tried it: another client of the \
                 pooler took it on the same server connection",
                on.map(|b| b.pid).unwrap_or_default()
            ),
            None,
        )),
        Ok(Ok(got)) => Ok(got.as_deref() == Some("true")),
        Ok(Err(e)) => Err(LockError::Database {
            key,
            source: PgError::new("taking the lock", e),
        }),
        Err(_) => Err(LockError::Timeout {
            key,
            waited: wait.started.elapsed(),
            holder: "unknown: the server stopped answering the lock poll".into(),
        }),
    }
}

pub async fn release(client: &Client, key: i64, mode: Mode) -> Result<(), LockError> {
    let sql = unlock_sql(key, mode);
    match tokio::time::timeout(RELEASE_BOUND, first_text(client, &sql)).await {
        Ok(Ok(Some(released))) if released == "f" => {
            warn!(
                key,
                "the unlock reached a server process that did not hold the lock (a pooler moved this session \
                 to another server connection?): the lock may stay held until that connection closes"
            );
            Ok(())
        }
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(LockError::Database {
            key,
            source: PgError::new("releasing the lock", e),
        }),
        Err(_) => Err(LockError::Unanswered {
            key,
            what: "the unlock",
            waited: RELEASE_BOUND,
        }),
    }
}

/// Releases the lock and wakes the replicas waiting for it. An unlock that got no answer
/// means the connection is gone: the notification is not tried, so the whole wait stays at
/// one bound.
pub async fn release_and_notify(client: &Client, key: i64, mode: Mode) -> Result<(), LockError> {
    release(client, key, mode).await?;
    notify(client, key).await;
    Ok(())
}

/// Wakes the replicas waiting for the lock. Best effort: they poll anyway.
pub async fn notify(client: &Client, key: i64) {
    let sql = format!("NOTIFY {}", channel(key));
    if let Ok(Err(e)) = tokio::time::timeout(RELEASE_BOUND, client.batch_execute(&sql)).await {
        warn!(error = %describe(&e), "could not notify the replicas waiting for the lock");
    }
}

/// How long the unlock and `NOTIFY` may wait for their answer.
const RELEASE_BOUND: Duration = Duration::from_secs(10);
/// How long `LISTEN` (the first query of a session's job) may wait for its answer.
pub const LISTEN_BOUND: Duration = Duration::from_secs(30);
/// How long the holder's description may take when the wait is reported.
const POLL_GRACE: Duration = Duration::from_secs(5);
/// The least time a poll gets for its answer, so the last poll before `lock_timeout` is not
/// cut off before the server can answer.
const POLL_FLOOR: Duration = Duration::from_millis(100);

/// The wait between tries: until a notification or the next poll (50 ms up to 1 s, jittered),
/// reporting the holder every 10 s, and giving up at `lock_timeout`.
pub struct Wait {
    lock: LockSettings,
    started: Instant,
    backoff: Backoff,
    last_report: Option<Instant>,
}

impl Wait {
    pub fn new(lock: LockSettings) -> Wait {
        Wait {
            lock,
            started: Instant::now(),
            backoff: Backoff::new(Duration::from_millis(50), Duration::from_secs(1)),
            last_report: None,
        }
    }

    /// How long a poll may wait for its answer: until `lock_timeout`, so a network that stops
    /// forwarding ends the wait then (exit 5).
    pub fn poll_bound(&self) -> Duration {
        self.lock
            .timeout
            .saturating_sub(self.started.elapsed())
            .max(POLL_FLOOR)
    }

    pub fn waited(&self) -> Duration {
        self.started.elapsed()
    }

    pub fn key(&self) -> i64 {
        self.lock.key
    }

    /// Returns when it is time to try again; `seen` is the session's notification count
    /// before the last try, so a release that came in between is not missed.
    pub async fn next(&mut self, session: &Session, seen: u64) -> Result<(), LockError> {
        self.next_for(session, self.lock.key, seen).await
    }

    /// As [`Wait::next`], waiting for lock `key` (another migrator's, see [`hold_also`]).
    async fn next_for(&mut self, session: &Session, key: i64, seen: u64) -> Result<(), LockError> {
        let waited = self.started.elapsed();
        if waited >= self.lock.timeout {
            let holder = tokio::time::timeout(POLL_GRACE, holder(session, key))
                .await
                .unwrap_or_else(|_| "unknown: the server did not answer".into());
            return Err(LockError::Timeout {
                key,
                waited,
                holder,
            });
        }
        let now = Instant::now();
        if self
            .last_report
            .is_none_or(|t| now - t >= Duration::from_secs(10))
        {
            let holder = tokio::time::timeout(POLL_GRACE, holder(session, key))
                .await
                .unwrap_or_else(|_| "unknown: the server did not answer".into());
            warn!(key, waited_ms = waited.as_millis() as u64, holder = %holder, "waiting for the advisory lock");
            self.last_report = Some(now);
        }
        let delay = self
            .backoff
            .next_delay()
            .min(self.lock.timeout.saturating_sub(waited));
        if session.notified_since(seen, delay).await {
            info!(key, "the lock was released: trying again");
        }
        Ok(())
    }
}

/// With db-init's own lock held: also takes `key`, another migrator's own advisory lock
/// (Prisma Migrate's 72707369), for the work, so that the tool's own migrator still running in a
/// mixed rollout and db-init take turns instead of racing. Polled like db-init's own, never a
/// blocking wait, within what is left of `lock_timeout` (exit 5 naming its holder).
pub async fn hold_also(session: &Session, wait: &mut Wait, key: i64) -> Result<(), LockError> {
    let sql = format!("SELECT pg_try_advisory_lock({key})");
    loop {
        let seen = session.wakeups_seen();
        match tokio::time::timeout(wait.poll_bound(), first_text(session, &sql)).await {
            Ok(Ok(Some(got))) if got == "t" => return Ok(()),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                return Err(LockError::Database {
                    key,
                    source: PgError::new("taking the migrator's own lock", e),
                })
            }
            Err(_) => {
                return Err(LockError::Timeout {
                    key,
                    waited: wait.waited(),
                    holder: "unknown: the server stopped answering the lock poll".into(),
                })
            }
        }
        wait.next_for(session, key, seen).await?;
    }
}

/// A column expression: whether another session of this database holds advisory lock `key`
/// (a migrator at work right now).
pub fn held_elsewhere_expr(key: i64) -> String {
    format!(
        "EXISTS (SELECT 1 FROM pg_locks WHERE granted AND pid <> pg_backend_pid() \
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) AND {})",
        key_row("", key)
    )
}

/// The `pg_locks` condition that picks the advisory lock `key`: a bigint key is kept as two
/// 32-bit halves, with `objsubid` 1. `alias` prefixes the columns (`"l."`, or `""`).
pub(super) fn key_row(alias: &str, key: i64) -> String {
    format!(
        "{alias}locktype = 'advisory' AND {alias}objsubid = 1 \
         AND {alias}classid::bigint = (({key}::bigint >> 32) & 4294967295) \
         AND {alias}objid::bigint = ({key}::bigint & 4294967295)"
    )
}

/// Who holds the lock: pid, application_name, client address, state, session age.
async fn holder(client: &Client, key: i64) -> String {
    let sql = format!(
        "SELECT 'pid ' || a.pid || ', application_name ' || coalesce(nullif(a.application_name, ''), '?') \
         || ', client ' || coalesce(host(a.client_addr), 'local socket') || ', state ' || coalesce(a.state, '?') \
         || ', connected for ' || date_trunc('second', now() - a.backend_start)::text \
         || ', ' || coalesce(a.state, '?') || ' for ' || date_trunc('second', now() - a.state_change)::text \
         FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
         WHERE l.granted AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
         AND {}",
        key_row("l.", key)
    );
    match first_text(client, &sql).await {
        Ok(Some(holder)) => holder,
        Ok(None) => "nobody visible (released meanwhile, or no permission to see it)".into(),
        Err(e) => format!("unknown ({})", describe(&e)),
    }
}
