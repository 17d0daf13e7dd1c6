//! The top-level error type and the one table that maps it to exit codes (SPEC section 5).

use crate::config::ConfigError;
use crate::db::ConnectError;
use crate::lock::LockError;
use crate::migrate::MigrateError;
use crate::seed::SeedError;

/// Process exit codes. The README repeats this table; keep the two in step.
pub mod code {
    pub const OK: u8 = 0;
    pub const INTERNAL: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const UNREACHABLE: u8 = 3;
    pub const REFUSED: u8 = 4;
    pub const LOCK_TIMEOUT: u8 = 5;
    pub const MIGRATION_FAILED: u8 = 6;
    pub const VALIDATION_FAILED: u8 = 7;
    pub const SEED_FAILED: u8 = 8;
    pub const PENDING: u8 = 10;
    pub const SIGINT: u8 = 130;
    pub const SIGTERM: u8 = 143;
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
    #[error("interrupted by {signal}: running statement cancelled, rolled back, lock released")]
    Interrupted { signal: &'static str, code: u8 },
    #[error("{0}")]
    Usage(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Config(_) | Error::Usage(_) => code::USAGE,
            Error::Connect(e) if e.is_permanent() => code::REFUSED,
            Error::Connect(ConnectError::Timeout { .. }) => code::UNREACHABLE,
            Error::Connect(_) => code::INTERNAL,
            Error::Lock(LockError::Timeout { .. }) => code::LOCK_TIMEOUT,
            Error::Lock(_) => code::INTERNAL,
            Error::Migrate(e) if e.is_validation() => code::VALIDATION_FAILED,
            Error::Migrate(MigrateError::Io { .. }) => code::USAGE,
            Error::Migrate(_) => code::MIGRATION_FAILED,
            Error::Seed(SeedError::Io { .. }) => code::USAGE,
            Error::Seed(_) => code::SEED_FAILED,
            Error::Interrupted { code, .. } => *code,
            Error::Internal(_) => code::INTERNAL,
        }
    }
}
