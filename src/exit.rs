//! The only place with exit-code numbers: every outcome of a command, success or error, maps
//! to its code here (SPEC section 5; the README repeats the table).

use crate::config::ConfigError;
use crate::migrate::new::NewError;
use crate::migrate::MigrateError;
use crate::pg::lock::LockError;
use crate::pg::{ConnectError, PgError};
use crate::seed::SeedError;

/// How a command succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Success {
    Done,
    /// `status`: migrations are pending.
    Pending,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Migrate(#[from] MigrateError),
    #[error(transparent)]
    Seed(#[from] SeedError),
    #[error("interrupted by {signal}: {cleanup}")]
    Interrupted {
        signal: Signal,
        /// What is known of the cleanup (cancelled, rolled back, lock released, or not).
        cleanup: String,
    },
    #[error("{0}")]
    Usage(String),
    #[error("internal error: {0}")]
    Internal(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Term,
    Int,
}

impl std::fmt::Display for Signal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Signal::Term => "SIGTERM",
            Signal::Int => "SIGINT",
        })
    }
}

impl From<NewError> for Error {
    fn from(e: NewError) -> Error {
        match e {
            NewError::Usage(m) => Error::Usage(m),
            NewError::Io(e) => Error::Migrate(e),
        }
    }
}

impl From<PgError> for Error {
    fn from(e: PgError) -> Error {
        Error::Migrate(MigrateError::Database(e))
    }
}

pub fn success_code(s: Success) -> u8 {
    match s {
        Success::Done => 0,
        Success::Pending => 10,
    }
}

pub fn error_code(e: &Error) -> u8 {
    match e {
        Error::Config(_) | Error::Usage(_) => 2,
        Error::Connect(ConnectError::Timeout { .. }) => 3,
        Error::Connect(ConnectError::Refused { .. } | ConnectError::Tls { .. }) => 4,
        Error::Lock(LockError::Timeout { .. }) => 5,
        Error::Lock(LockError::Database { .. } | LockError::Unanswered { .. }) => 9,
        Error::Migrate(MigrateError::Validation { .. }) => 7,
        Error::Migrate(MigrateError::Io { .. }) => 2,
        Error::Migrate(MigrateError::History(_) | MigrateError::Stalled { .. }) => 9,
        Error::Migrate(MigrateError::Failed(_) | MigrateError::Database(_)) => 6,
        Error::Seed(SeedError::Io { .. }) => 2,
        Error::Seed(_) => 8,
        Error::Interrupted {
            signal: Signal::Int,
            ..
        } => 130,
        Error::Interrupted {
            signal: Signal::Term,
            ..
        } => 143,
        Error::Internal(_) => 1,
    }
}
