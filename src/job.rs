//! The single-database job: the folders read and checked once, then on a session: the
//! advisory lock, the migrations, the seeds. `run` uses it for its one database; a run over many
//! databases uses it for each.

use crate::config::Config;
use crate::exit::Error;
use crate::migrate::{self, source, MigrateError, Source};
use crate::pg::lock::with_lock;
use crate::pg::Session;
use crate::seed::{self, SeedFile};

/// Which parts of the job a command runs.
#[derive(Clone, Copy, Debug)]
pub struct Parts {
    pub migrations: bool,
    pub seeds: bool,
}

impl Parts {
    pub const BOTH: Parts = Parts {
        migrations: true,
        seeds: true,
    };
    pub const MIGRATIONS: Parts = Parts {
        migrations: true,
        seeds: false,
    };
    pub const SEEDS: Parts = Parts {
        migrations: false,
        seeds: true,
    };
}

/// The folders, read and checked before any connection.
pub struct Inputs {
    pub source: Option<Source>,
    pub seeds: Vec<SeedFile>,
}

impl Inputs {
    pub fn load(cfg: &Config, parts: Parts) -> Result<Inputs, Error> {
        let source = match parts.migrations {
            true => {
                let source = source::load(&cfg.migrate.dir, &cfg.migrate)?;
                MigrateError::validation(source.problems.clone())?;
                Some(source)
            }
            false => None,
        };
        let seeds = match parts.seeds {
            true => seed::load(&cfg.seed.dir)?,
            false => Vec::new(),
        };
        Ok(Inputs { source, seeds })
    }
}

/// What one database's job did.
#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct Done {
    pub applied: usize,
    pub already_applied: usize,
    pub seeds_run: usize,
}

/// Lock, migrate, seed, unlock, on an open session.
pub async fn run_on(session: &Session, cfg: &Config, inputs: &Inputs) -> Result<Done, Error> {
    with_lock(session, cfg.lock, async {
        let outcome = match &inputs.source {
            Some(source) => migrate::migrate(session, &cfg.migrate, source).await?,
            None => migrate::Outcome::default(),
        };
        let seeds_run = seed::run(session, &cfg.seed, &inputs.seeds).await?;
        Ok::<_, Error>(Done {
            applied: outcome.applied,
            already_applied: outcome.already_applied,
            seeds_run,
        })
    })
    .await
}
