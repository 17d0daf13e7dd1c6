//! Seeds: the files of the seeds folder in lexical order, each in its own transaction together
//! with its row in `db_init.seed_runs` (SPEC section 3); a SQL file with its own transaction
//! control runs statement by statement, its row recorded after its last statement.

mod catalog;
mod command;
pub mod command_env;
mod load;
mod lookup;
pub mod plan;
pub mod runs;
mod sql;
mod upsert;
pub mod validate;
mod vars;
mod vars_sql;
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
    /// A command seed that did not exit 0 (or could not run, or ran out of time).
    #[error("{file}: the command {outcome}\n  its last lines of output:\n{tail}  nothing of it was recorded; migrations stay applied")]
    Command {
        file: String,
        outcome: String,
        tail: String,
    },
    /// The seed does not fit the tables it names (found when it runs, after the migrations).
    #[error("{file}: {message}")]
    Invalid { file: String, message: String },
    /// The file's own shape is wrong (found before anything connects: exit 7).
    #[error("{file}: {message}")]
    Shape { file: String, message: String },
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
fn done_by<'a>(
    seed: &SeedFile,
    mode: SeedMode,
    previous: &'a [runs::Run],
) -> Option<&'a runs::Run> {
    previous.iter().find(|r| {
        r.name == seed.name
            && r.checksum == seed.checksum
            && (mode == SeedMode::OnChange || r.in_wave)
    })
}

/// Why a seed is skipped: which run made it done, when and by which replica.
fn skip_reason(mode: SeedMode, run: &runs::Run) -> String {
    match mode {
        SeedMode::OnChange => format!(
            "unchanged since its run {} (seed_mode: on-change)",
            run.when_and_who()
        ),
        SeedMode::Always => format!(
            "another replica of this rollout ran it {}",
            run.when_and_who()
        ),
    }
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
    seeds
        .iter()
        .all(|s| done_by(s, settings.mode, previous).is_some())
}

/// Logs why each done seed is skipped, so "0 seed(s) run" never comes without its why.
pub fn log_skipped(settings: &SeedSettings, seeds: &[SeedFile], previous: &[runs::Run]) {
    for seed in seeds {
        if let Some(run) = done_by(seed, settings.mode, previous) {
            info!(seed = %seed.name, "skipped: {}", skip_reason(settings.mode, run));
        }
    }
}

/// Runs the seeds; returns how many ran. `wave` is when this process's session started: an
/// `always` seed that ran since then was run by another replica of the same rollout.
/// `connection` is what a command seed is handed (none over many databases).
pub async fn run(
    session: &Session,
    settings: &SeedSettings,
    seeds: &[SeedFile],
    wave: &str,
    connection: Option<&command_env::Connection>,
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
        Some(previous) => {
            runs::upgrade(session).await.map_err(SeedError::Records)?;
            previous
        }
        None => {
            runs::create(session).await.map_err(SeedError::Records)?;
            Vec::new()
        }
    };
    let mut ran = 0;
    for seed in seeds {
        if let Some(run) = done_by(seed, settings.mode, &previous) {
            info!(seed = %seed.name, "skipped: {}", skip_reason(settings.mode, run));
            continue;
        }
        let started = Instant::now();
        if seed.is_command() {
            command::run(session, seed, connection, settings.command_timeout).await?;
        } else if seed.is_sql() {
            sql::run(session, seed).await?;
            info!(seed = %seed.name, ms = started.elapsed().as_millis() as u64, "seeded");
        } else {
            let rows = yaml::run(session, seed).await?;
            info!(
                seed = %seed.name,
                inserted = rows.inserted,
                updated = rows.updated,
                ms = started.elapsed().as_millis() as u64,
                "seeded: {} row(s) inserted, {} updated",
                rows.inserted,
                rows.updated
            );
        }
        ran += 1;
    }
    Ok(ran)
}
