//! The only place with exit-code numbers: every outcome of a command, success or error, maps
//! to its code here (SPEC section 5; the README repeats the table).

use crate::config::ConfigError;
use crate::fleet::FleetError;
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
    /// The work was done and committed, then the lock's release got no answer.
    #[error("{done}, all committed; then {source}")]
    Unreleased {
        done: crate::job::Done,
        #[source]
        source: LockError,
    },
    #[error(transparent)]
    Migrate(#[from] MigrateError),
    #[error(transparent)]
    Seed(#[from] SeedError),
    /// A run over many databases: some failed, or the set could not be made.
    #[error(transparent)]
    Fleet(#[from] FleetError),
    #[error("interrupted by {signal}: {cleanup}")]
    Interrupted {
        signal: Signal,
        /// What is known of the cleanup (cancelled, rolled back, lock released, or not).
        cleanup: String,
    },
    /// `wait --migrated` ran out of `wait_timeout`.
    #[error("the database was not migrated within {waited:.1?} (wait_timeout); still waiting for {missing}")]
    NotMigrated {
        waited: std::time::Duration,
        missing: String,
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

impl From<crate::lint::trace::TraceError> for Error {
    fn from(e: crate::lint::trace::TraceError) -> Error {
        match e {
            crate::lint::trace::TraceError::Pg(e) => e.into(),
            crate::lint::trace::TraceError::Lock(e) => Error::Lock(e),
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
        Error::Connect(ConnectError::Timeout { .. }) | Error::NotMigrated { .. } => 3,
        Error::Connect(ConnectError::Refused { .. } | ConnectError::Tls { .. }) => 4,
        // A pooler that cannot hold a session is refused like a connection that cannot work.
        Error::Lock(LockError::Pooled { .. }) => 4,
        Error::Lock(LockError::Timeout { .. }) => 5,
        Error::Lock(LockError::Database { .. } | LockError::Unanswered { .. })
        | Error::Unreleased { .. } => 9,
        Error::Migrate(MigrateError::Validation { .. }) => 7,
        Error::Migrate(MigrateError::Io { .. }) => 2,
        // A database error that is not a migration's own: the history, the lock, the session
        // settings, a baseline or a repair. Never 6, which says a migration failed.
        Error::Migrate(
            MigrateError::History(_) | MigrateError::Stalled { .. } | MigrateError::Database(_),
        ) => 9,
        Error::Migrate(MigrateError::Failed(_)) => 6,
        Error::Seed(SeedError::Io { .. }) => 2,
        Error::Seed(SeedError::Records(_)) => 9,
        // A seed file of the wrong shape is refused before anything runs, like a migration.
        Error::Seed(SeedError::Shape { .. }) => 7,
        Error::Seed(_) => 8,
        Error::Interrupted {
            signal: Signal::Int,
            ..
        } => 130,
        Error::Interrupted {
            signal: Signal::Term,
            ..
        } => 143,
        Error::Fleet(e) => fleet_code(e),
        Error::Internal(_) => 1,
    }
}

/// A run over many databases: 11 when some databases failed (each one's own code is in the
/// report), 7 when `status` / `validate` found invalid ones.
pub fn fleet_code(e: &FleetError) -> u8 {
    match e {
        FleetError::SomeFailed { .. } => 11,
        FleetError::Invalid { .. } => 7,
        FleetError::Query { .. } | FleetError::QueryStalled { .. } | FleetError::Stalled { .. } => {
            9
        }
        FleetError::Report { .. } => 2,
    }
}
