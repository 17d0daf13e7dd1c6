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

/// A column expression: the exclusive lock's try, made only on the process `on` (NULL on any
/// other, where a lock would be left behind).
pub fn take_expr(key: i64, on: Option<Backend>) -> String {
    match on {
        Some(b) => format!(
            "CASE WHEN pg_backend_pid() = {} THEN pg_try_advisory_lock({key}) END",
            b.pid
        ),
        None => format!("pg_try_advisory_lock({key})"),
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
/// which process serves it: a session pooler gives it another one (this session keeps its own),
/// while a transaction or statement pooler hands it the idle process this session just used.
/// The first check that a single connection cannot make: a pooler with no other clients gives
/// one client the same process for every transaction, and only a second client can tell.
pub async fn confirm(session: &Session, key: i64, last: Backend) -> Result<(), LockError> {
    if last.own {
        return Ok(());
    }
    info!(
        "db-init's startup options did not reach the server process (a pooler in between): checking with a \
         second connection that this session has a server connection of its own"
    );
    match probe(session).await {
        Ok(pid) if pid == last.pid => Err(refused(
            session,
            key,
            format!(
                "a second connection was served by server process {pid}, the one this session's last \
                 transaction ran on"
            ),
            None,
        )),
        Ok(pid) => {
            debug!(
                pid,
                own = last.pid,
                "a second connection got another server process"
            );
            Ok(())
        }
        Err(why) => {
            warn!(
                "could not check with a second connection whether the pooler shares server connections ({why}); \
                 relying on checking the server process of each step"
            );
            Ok(())
        }
    }
}

async fn probe(session: &Session) -> Result<i32, String> {
    let (config, tls) = session.reopen();
    let bound = config.get_connect_timeout().copied().unwrap_or(PROBE_BOUND);
    let (client, connection) = match tokio::time::timeout(bound, config.connect(tls)).await {
        Ok(Ok(opened)) => opened,
        Ok(Err(e)) => return Err(describe(&e)),
        Err(_) => return Err(format!("no connection within {bound:?}")),
    };
    let driver = tokio::spawn(connection);
    let pid =
        tokio::time::timeout(PROBE_BOUND, first_text(&client, "SELECT pg_backend_pid()")).await;
    drop(client);
    let _ = tokio::time::timeout(PROBE_BOUND, driver).await;
    match pid {
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
