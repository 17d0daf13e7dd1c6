//! The only place with exit-code numbers: every outcome of a command, success or error, maps
//! to its code here (SPEC section 5; the README repeats the table).

use crate::migrate::MigrateError;
use crate::outcome::{Error, FleetError, Signal, Success};
use crate::pg::lock::LockError;
use crate::pg::ConnectError;
use crate::seed::SeedError;

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
            MigrateError::History(_)
            | MigrateError::Stalled { .. }
            | MigrateError::Database(_)
            | MigrateError::RepairMissed { .. },
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
