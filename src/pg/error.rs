//! One error type for what the server or the connection said, with the SQLSTATE typed and the
//! cause kept, and the rules that sort connection failures into "retry" and "give up".

use std::error::Error as _;

use tokio_postgres::error::SqlState;

/// A failed query or connection, with what db-init was doing at the time.
#[derive(Debug, thiserror::Error)]
#[error("{context}: {}", describe(.source))]
pub struct PgError {
    pub context: String,
    #[source]
    pub source: tokio_postgres::Error,
}

impl PgError {
    pub fn new(context: impl Into<String>, source: tokio_postgres::Error) -> PgError {
        PgError {
            context: context.into(),
            source,
        }
    }

    pub fn code(&self) -> Option<&SqlState> {
        self.source.code()
    }
}

/// The error with its causes, and for server errors the SQLSTATE and detail.
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

/// What a failed connection attempt means for the next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Nothing answers yet (refused, no route, the name does not resolve, closed before the
    /// server spoke): the server is not up, and an attempt costs it nothing, so try again soon.
    Absent,
    /// The server itself answered "not now" (starting up, too many connections, a pooler
    /// without a backend): back off, so the attempts do not add to its load.
    Busy,
    /// Retrying cannot help: authentication, missing database, bad configuration.
    Refused,
    /// The TLS handshake failed (untrusted certificate, wrong host name).
    Tls,
}

/// Sorts a connection failure by its type, not its text: server errors by SQLSTATE class,
/// rustls errors as TLS, I/O errors (DNS, refused, reset) and connections closed without a
/// cause as absent. tokio-postgres keeps its error kinds private; what is left (an
/// authentication, configuration or "server does not support TLS" error) carries a cause that
/// is not I/O, and retrying would not change it.
pub fn classify(e: &tokio_postgres::Error) -> Failure {
    if let Some(code) = e.code() {
        let class = code.code().get(..2);
        return if code == &SqlState::CANNOT_CONNECT_NOW
            || code == &SqlState::TOO_MANY_CONNECTIONS
            || class == Some("08")
        {
            Failure::Busy
        } else {
            Failure::Refused
        };
    }
    let mut cause = e.source();
    if cause.is_none() {
        return Failure::Absent;
    }
    while let Some(c) = cause {
        if c.downcast_ref::<rustls::Error>().is_some() {
            return Failure::Tls;
        }
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            let inner = io.get_ref();
            if inner.is_some_and(|i| i.downcast_ref::<rustls::Error>().is_some()) {
                return Failure::Tls;
            }
            // A socket that accepted and then stalled is a hang, which backs off.
            return match io.kind() {
                std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => Failure::Busy,
                _ => Failure::Absent,
            };
        }
        cause = c.source();
    }
    Failure::Refused
}

/// What the server said about a failed statement, ready to print: SQLSTATE, message, detail,
/// hint. A failure without a server answer (connection lost) has no SQLSTATE: its message is
/// the cause the client saw (closed, reset, timed out), never a placeholder.
#[derive(Debug, Clone)]
pub struct ServerError {
    pub sqlstate: Option<String>,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
}

impl ServerError {
    pub fn from_pg(e: &tokio_postgres::Error) -> ServerError {
        match e.as_db_error() {
            Some(db) => ServerError {
                sqlstate: Some(db.code().code().to_string()),
                message: db.message().to_string(),
                detail: db.detail().map(str::to_string),
                hint: db.hint().map(str::to_string),
            },
            None => ServerError {
                sqlstate: None,
                message: describe(e),
                detail: None,
                hint: None,
            },
        }
    }
}

impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.sqlstate {
            Some(code) => write!(f, "ERROR {code}: {}", self.message)?,
            None => write!(
                f,
                "no answer from the server (connection lost): {}",
                self.message
            )?,
        }
        if let Some(d) = &self.detail {
            write!(f, "\n  detail: {d}")?;
        }
        if let Some(h) = &self.hint {
            write!(f, "\n  hint: {h}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{classify, Failure, ServerError};

    /// Nothing listening and a name that does not resolve are "absent" (retried at the floor),
    /// not "busy" (backed off): an attempt then costs the server nothing.
    #[tokio::test]
    async fn nothing_listening_and_no_such_host_are_absent() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr());
        let port = closed.map(|a| a.port()).unwrap_or(1);
        for url in [
            format!("postgres://u@127.0.0.1:{port}/d"),
            "postgres://u@db-init-no-such-host.invalid/d".to_string(),
        ] {
            let Err(e) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await else {
                panic!("{url} connected");
            };
            assert_eq!(classify(&e), Failure::Absent, "{url}: {e:?}");
        }
    }

    /// A lost connection says so and carries its cause; no made-up SQLSTATE.
    #[test]
    fn a_lost_connection_prints_its_cause_not_a_placeholder() {
        let lost = ServerError {
            sqlstate: None,
            message: "connection closed".into(),
            detail: None,
            hint: None,
        };
        let text = lost.to_string();
        assert_eq!(
            text,
            "no answer from the server (connection lost): connection closed"
        );
        assert!(!text.contains("-----"));
    }
}
