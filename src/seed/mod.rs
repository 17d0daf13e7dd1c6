//! Seeds: the files of the seeds folder in lexical order, each in its own transaction together
//! with its row in `db_init.seed_runs` (SPEC section 3); a SQL file with its own transaction
//! control runs statement by statement, its row recorded after its last statement.

mod load;
mod runs;
mod sql;
mod upsert;
mod yaml;

use std::path::PathBuf;
use std::time::Instant;

use tracing::info;

pub use load::{load, SeedFile};

use crate::config::{SeedMode, SeedSettings};
use crate::pg::{PgError, ServerError, Session};

/// The outcome of a failed seed that ran in db-init's transaction.
pub const ROLLED_BACK: &str = "it was rolled back";

#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("{place}: seed {file} failed: {error}\n  {outcome}; migrations stay applied")]
    Failed {
        file: String,
        /// `file:line:column`, or `file` with the row and column of a YAML seed.
        place: String,
        error: Box<ServerError>,
        /// What became of the seed's changes: [`ROLLED_BACK`], or what its own transaction
        /// control committed.
        outcome: String,
    },
    #[error("{file}: {message}")]
    Invalid { file: String, message: String },
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("seeds: {0}")]
    Database(#[from] PgError),
}

/// Runs the seeds; returns how many ran (skipped unchanged ones in `on-change` mode do not count).
pub async fn run(
    session: &Session,
    settings: &SeedSettings,
    seeds: &[SeedFile],
) -> Result<usize, SeedError> {
    if seeds.is_empty() {
        return Ok(0);
    }
    session
        .work_settings(None, settings.statement_timeout)
        .await?;
    let previous = runs::read(session).await?;
    let mut ran = 0;
    for seed in seeds {
        if settings.mode == SeedMode::OnChange
            && previous
                .iter()
                .any(|(name, checksum)| name == &seed.name && checksum == &seed.checksum)
        {
            info!(seed = %seed.name, "unchanged since its last run; skipped (seed_mode: on-change)");
            continue;
        }
        let started = Instant::now();
        if seed.is_sql() {
            sql::run(session, seed).await?;
        } else {
            yaml::run(session, seed).await?;
        }
        info!(seed = %seed.name, ms = started.elapsed().as_millis() as u64, "seeded");
        ran += 1;
    }
    Ok(ran)
}
