//! What a command ends with: how it succeeded (`Success`, and what a run did, `Done`) or the
//! one error every layer's error becomes (`Error`, each cause kept). `exit` maps each to its
//! code; everything else only builds them.

use std::path::PathBuf;
use std::time::Duration;

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
    /// The work was done and committed, then the lock's release got no answer.
    #[error("{done}, all committed; then {source}")]
    Unreleased {
        done: Done,
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

/// What one database's job did.
#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct Done {
    pub applied: usize,
    pub already_applied: usize,
    pub seeds_run: usize,
}

impl std::fmt::Display for Done {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let plural = |n: usize| if n == 1 { "" } else { "s" };
        write!(
            f,
            "{} migration{} applied, {} seed{} run",
            self.applied,
            plural(self.applied),
            self.seeds_run,
            plural(self.seeds_run)
        )
    }
}

/// A run over many databases: some failed, or the set could not be made.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("{failed} of {total} database(s) failed:{list}")]
    SomeFailed {
        failed: usize,
        total: usize,
        /// One line per failed database (the first ones), each starting with a newline.
        list: String,
    },
    #[error("{invalid} of {total} database(s) failed validation, nothing applied to them:{list}")]
    Invalid {
        invalid: usize,
        total: usize,
        list: String,
    },
    #[error("databases_query on {url}: {source}")]
    Query {
        url: String,
        #[source]
        source: PgError,
    },
    /// One database of the set was not done within `database_timeout`: its job was dropped and
    /// its session closed. What was in flight is unknown (the report counts it).
    #[error("stalled: not done within {waited:?} (database_timeout); the job was abandoned and its session closed{in_flight}")]
    Stalled {
        waited: Duration,
        /// Empty, or what was sent and never answered.
        in_flight: String,
    },
    #[error("databases_query on {url}: the server did not answer within {waited:?}")]
    QueryStalled { url: String, waited: Duration },
    #[error("cannot write the report {}: {source}", path.display())]
    Report {
        path: PathBuf,
        source: std::io::Error,
    },
}
