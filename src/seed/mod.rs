//! Seeds: the files of the seeds folder in lexical order, each in its own transaction together
//! with its row in `db_init.seed_runs` (SPEC section 3); a SQL file with its own transaction
//! control runs statement by statement, its row recorded after its last statement.

mod load;
pub mod plan;
pub mod runs;
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
    /// The seed-run records or the session settings, outside any seed: no seed ran by this
    /// step (exit 9).
    #[error("seeds: {0}; no seed was run by this step")]
    Records(#[source] PgError),
}

/// Whether a seed needs to run: `on-change` seeds whose checksum was recorded, and `always`
/// seeds that another replica ran while this one waited (the same rollout), do not.
fn is_done(seed: &SeedFile, mode: SeedMode, previous: &[runs::Run]) -> bool {
    previous.iter().any(|r| {
        r.name == seed.name
            && r.checksum == seed.checksum
            && (mode == SeedMode::OnChange || r.in_wave)
    })
}

/// Whether every seed is done, without writing anything (the nothing-to-do check).
pub async fn all_done(
    session: &Session,
    settings: &SeedSettings,
    seeds: &[SeedFile],
    wave: &str,
) -> Result<bool, SeedError> {
    if seeds.is_empty() {
        return Ok(true);
    }
    let previous = runs::read(session, wave).await?.unwrap_or_default();
    Ok(all_done_after(settings, seeds, &previous))
}

/// Whether every seed is done, given the earlier runs.
pub fn all_done_after(settings: &SeedSettings, seeds: &[SeedFile], previous: &[runs::Run]) -> bool {
    seeds.iter().all(|s| is_done(s, settings.mode, previous))
}

/// Runs the seeds; returns how many ran. `wave` is when this process's session started: an
/// `always` seed that ran since then was run by another replica of the same rollout.
pub async fn run(
    session: &Session,
    settings: &SeedSettings,
    seeds: &[SeedFile],
    wave: &str,
) -> Result<usize, SeedError> {
    if seeds.is_empty() {
        return Ok(0);
    }
    session
        .work_settings(None, settings.statement_timeout)
        .await
        .map_err(SeedError::Records)?;
    let previous = match runs::read(session, wave)
        .await
        .map_err(SeedError::Records)?
    {
        Some(previous) => previous,
        None => {
            runs::create(session).await.map_err(SeedError::Records)?;
            Vec::new()
        }
    };
    let mut ran = 0;
    for seed in seeds {
        if is_done(seed, settings.mode, &previous) {
            let why = match settings.mode {
                SeedMode::OnChange => "unchanged since its last run (seed_mode: on-change)",
                SeedMode::Always => "another replica ran it while this one waited for the lock",
            };
            info!(seed = %seed.name, "skipped: {why}");
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
