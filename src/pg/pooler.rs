//! Telling a session of its own from a pooler's shared server connections. The advisory lock
//! belongs to a server process, so db-init takes it only where every later statement reaches
//! that same process: directly, or through a session pooler (PgBouncer `pool_mode = session`).
//! A transaction or statement pooler hands each transaction to whichever server connection is
//! free, and a lock taken there stays behind on a connection other clients then use.

use std::time::Duration;

use tracing::{debug, info, warn};

use super::connect::SERVER_KEEPALIVES;
use super::lock::LockError;
use super::{describe, first_text, Session};

/// Set through db-init's startup `options`: a server process that shows it was started for this
/// very connection (a pooler opens its server connections with a startup packet of its own).
const MARKER: &str = "db_init.startup_options";

/// How long the second connection's one query may take (a busy session pooler queues it).
const PROBE_BOUND: Duration = Duration::from_secs(5);
/// How many times a lock left on another server process is tried for, 50 ms apart.
const RELEASE_TRIES: u32 = 20;

/// The server process one statement ran on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backend {
    pub pid: i32,
    /// db-init's startup options reached this process: it serves this connection alone.
    pub own: bool,
}

impl Backend {
    /// Two columns for a query: the process, and whether the startup options reached it.
    pub fn columns() -> String {
        format!("pg_backend_pid(), current_setting('{MARKER}', true) IS NOT NULL")
    }

    pub fn parse(pid: Option<&str>, own: Option<&str>) -> Option<Backend> {
        Some(Backend {
            pid: pid?.parse().ok()?,
            own: own == Some("t"),
        })
    }
}

/// What [`take_expr`] gives when the server process already holds the exclusive lock: another
/// client of a pooler took it on this shared server connection, and a try there would succeed
/// (advisory locks are re-entrant per server process) with two migrators each thinking the lock
/// is theirs. The one check that does not depend on how the pooler's traffic falls.
pub const HELD_HERE: &str = "held here";

/// A column expression, as text: the exclusive lock's try (`true` / `false`), made only on the
/// process `on` (NULL on any other, where a lock would be left behind), and never where that
/// process holds it already ([`HELD_HERE`]).
pub fn take_expr(key: i64, on: Option<Backend>) -> String {
    let held = format!(
        "EXISTS (SELECT 1 FROM pg_locks WHERE pid = pg_backend_pid() AND granted AND mode = 'ExclusiveLock' \
         AND {})",
        super::lock::key_row("", key)
    );
    let try_here =
        format!("CASE WHEN {held} THEN '{HELD_HERE}' ELSE pg_try_advisory_lock({key})::text END");
    match on {
        Some(b) => format!("CASE WHEN pg_backend_pid() = {} THEN {try_here} END", b.pid),
        None => try_here,
    }
}

/// The refusal: this connection does not keep one server process.
pub fn refused(session: &Session, key: i64, evidence: String, left: Option<i32>) -> LockError {
    LockError::Pooled {
        key,
        url: session.url().to_string(),
        evidence,
        left: left.map(|pid| {
            format!(
                "; the lock could not be released and stays on server process {pid} until the pooler closes that \
                 connection (`SELECT pg_terminate_backend({pid})` on the server frees it)"
            )
        }),
    }
}

/// Before the exclusive lock is first tried, with `last` the process of the last transaction
/// (ended). Where db-init's startup options did not reach the server, a second connection asks
/// which process serves it: a session pooler never gives it this session's process, while a
/// transaction or statement pooler hands it the idle process this session just used, unless
/// another client's transaction took that one first. So the check is made [`ROUNDS`] times,
/// each after a statement of this session, which a session pooler also always runs on one
/// process: a transaction pooler gives itself away in one of them however its traffic falls.
pub async fn confirm(session: &Session, key: i64, last: Backend) -> Result<(), LockError> {
    if last.own {
        return Ok(());
    }
    info!(
        "db-init's startup options did not reach the server process (a pooler in between): checking with a \
         second connection that this session has a server connection of its own"
    );
    let probe = match Probe::open(session).await {
        Ok(probe) => probe,
        Err(why) => {
            warn!(
                "could not open a second connection to check whether the pooler shares server connections ({why}); \
                 relying on checking the server process of each step"
            );
            return Ok(());
        }
    };
    let result = rounds(session, key, last, &probe).await;
    probe.close().await;
    result
}

/// How many times [`confirm`] compares this session's process with the second connection's.
const ROUNDS: u32 = 5;

async fn rounds(
    session: &Session,
    key: i64,
    last: Backend,
    probe: &Probe,
) -> Result<(), LockError> {
    let refuse = |evidence: String| Err(refused(session, key, evidence, None));
    for round in 0..ROUNDS {
        if round > 0 {
            match pid_of(session).await {
                Ok(pid) if pid == last.pid => {}
                Ok(pid) => {
                    return refuse(format!(
                        "this session's statements ran on server process {} and then on {pid}",
                        last.pid
                    ))
                }
                Err(why) => {
                    warn!("could not ask this session's server process ({why}); relying on the checks of each step");
                    return Ok(());
                }
            }
        }
        match pid_of(&probe.client).await {
            Ok(pid) if pid == last.pid => {
                return refuse(format!(
                    "a second connection was served by server process {pid}, the one this session's last \
                     transaction ran on"
                ))
            }
            Ok(pid) => debug!(pid, own = last.pid, round, "a second connection got another server process"),
            Err(why) => {
                warn!(
                    "could not check with a second connection whether the pooler shares server connections ({why}); \
                     relying on checking the server process of each step"
                );
                return Ok(());
            }
        }
    }
    Ok(())
}

/// The second connection of [`confirm`], opened the way this session was.
struct Probe {
    client: tokio_postgres::Client,
    driver: tokio::task::JoinHandle<Result<(), tokio_postgres::Error>>,
}

impl Probe {
    async fn open(session: &Session) -> Result<Probe, String> {
        let (config, tls) = session.reopen();
        let bound = config.get_connect_timeout().copied().unwrap_or(PROBE_BOUND);
        match tokio::time::timeout(bound, config.connect(tls)).await {
            Ok(Ok((client, connection))) => Ok(Probe {
                client,
                driver: tokio::spawn(connection),
            }),
            Ok(Err(e)) => Err(describe(&e)),
            Err(_) => Err(format!("no connection within {bound:?}")),
        }
    }

    async fn close(self) {
        drop(self.client);
        let _ = tokio::time::timeout(PROBE_BOUND, self.driver).await;
    }
}

/// The server process one statement on `client` ran on, within [`PROBE_BOUND`].
async fn pid_of(client: &tokio_postgres::Client) -> Result<i32, String> {
    match tokio::time::timeout(PROBE_BOUND, first_text(client, "SELECT pg_backend_pid()")).await {
        Ok(Ok(Some(pid))) => pid
            .parse()
            .map_err(|_| format!("pg_backend_pid() gave {pid:?}")),
        Ok(Ok(None)) => Err("pg_backend_pid() gave no row".into()),
        Ok(Err(e)) => Err(describe(&e)),
        Err(_) => Err(format!("no answer within {PROBE_BOUND:?}")),
    }
}

/// Right after the lock was taken on `on`: where the startup options did not reach the
/// server, the next statement must reach the same process (else the lock is released there, as
/// far as it can be, and the run refused), and it sets the server-side keepalives the dropped
/// options carried. Only now: on a transaction pooler a SET would stay on a server connection
/// that other clients use.
pub async fn after_take(session: &Session, key: i64, on: Backend) -> Result<(), LockError> {
    if on.own {
        return Ok(());
    }
    let settings: Vec<String> = SERVER_KEEPALIVES
        .iter()
        .map(|(name, value)| format!("set_config('{name}', '{value}', false)"))
        .collect();
    let sql = format!(
        "SELECT pg_backend_pid(), CASE WHEN pg_backend_pid() = {} THEN {} END",
        on.pid,
        settings.join(" || ',' || ")
    );
    let pid = match tokio::time::timeout(PROBE_BOUND, first_text(session, &sql)).await {
        Ok(Ok(pid)) => pid,
        Ok(Err(e)) => {
            let source = super::PgError::new("checking the server process after the lock", e);
            return Err(LockError::Database { key, source });
        }
        Err(_) => {
            return Err(LockError::Unanswered {
                key,
                what: "the check after the lock",
                waited: PROBE_BOUND,
            })
        }
    };
    if pid.as_deref() == Some(on.pid.to_string().as_str()) {
        debug!("server-side keepalives set with SET");
        return Ok(());
    }
    let evidence = format!(
        "the lock was taken on server process {}, the next statement ran on {}",
        on.pid,
        pid.as_deref().unwrap_or("?")
    );
    let left = match release_on(session, key, on).await {
        true => None,
        false => Some(on.pid),
    };
    Err(refused(session, key, evidence, left))
}

/// Tries to release the lock on the process that holds it, which this session's statements
/// reach only now and then; true when done.
async fn release_on(session: &Session, key: i64, on: Backend) -> bool {
    let sql = format!(
        "SELECT CASE WHEN pg_backend_pid() = {} THEN pg_advisory_unlock({key}) END",
        on.pid
    );
    for _ in 0..RELEASE_TRIES {
        match tokio::time::timeout(PROBE_BOUND, first_text(session, &sql)).await {
            Ok(Ok(Some(_))) => return true,
            Ok(Ok(None)) => tokio::time::sleep(Duration::from_millis(50)).await,
            _ => return false,
        }
    }
    false
}
