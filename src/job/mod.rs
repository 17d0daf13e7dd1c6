//! The single-database job: the folders read and checked once, then on a session: the
//! advisory lock, the migrations, the seeds. `run` uses it for its one database; a run over many
//! databases uses it for each.

use crate::config::Config;
use crate::outcome::{Done, Error};
mod idle;
use crate::migrate::{self, source, MigrateError, Source};
use crate::pg::lock::{self, LockError, Mode};
use crate::pg::pooler;
use crate::pg::Session;
use crate::seed::{self, SeedFile};

/// When this process started: the replicas of a rollout start together, and an `always` seed
/// that another of them ran since then is not run again.
pub fn started() -> std::time::Instant {
    static STARTED: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    *STARTED.get_or_init(std::time::Instant::now)
}

/// Replicas of one rollout do not start at the same instant: a seed run this long before this
/// process started still counts as the rollout's run (seeds are idempotent; a start after a
/// quiet spell runs them again).
const WAVE_WINDOW: std::time::Duration = std::time::Duration::from_secs(10);

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

/// Subscribes to the lock's release and returns when this process's rollout began, in the
/// server's clock (see [`WAVE_WINDOW`]).
pub async fn wave(session: &Session, key: i64) -> Result<String, Error> {
    Ok(lock::listen(session, key, started().elapsed() + WAVE_WINDOW).await?)
}

/// On an open session: nothing to do is found under a shared lock, which many replicas hold
/// at once; work is done under the exclusive one. A replica that waits wakes when the holder
/// notifies its release, and finds under the shared lock that nothing is left: the replicas of
/// a rollout finish together, and each migration and seed runs once per rollout.
/// `db` is the session's target, which a command seed is handed.
pub async fn run_on(
    session: &Session,
    cfg: &Config,
    inputs: &Inputs,
    db: Option<&crate::config::Database>,
) -> Result<Done, Error> {
    let key = cfg.lock.key;
    let mut wait = lock::Wait::new(cfg.lock);
    // The first try also subscribes to the release and reads when this rollout began.
    let mut listen = Some(started().elapsed() + WAVE_WINDOW);
    let mut wave = String::new();
    let mut confirmed = false;
    // The folder read again as another tool's, when the database has that tool's table.
    let mut redetected: Option<Inputs> = None;
    let mut asked = false;
    loop {
        let inputs = redetected.as_ref().unwrap_or(inputs);
        let seen = session.wakeups_seen();
        let head = idle::try_shared(session, cfg, inputs, &wait, listen.take()).await?;
        if let Some(start) = &head.wave {
            wave.clone_from(start);
        }
        // Only a database without the folder's history table is asked for another tool's:
        // a start with nothing to do pays no round trip for it.
        if let (false, false, Some(source)) = (asked, head.history_exists(), &inputs.source) {
            asked = true;
            if let Some(other) = migrate::format::redetect(session, &cfg.migrate, source).await? {
                MigrateError::validation(other.problems.clone())?;
                end_transaction(session, key).await?;
                let seeds = inputs.seeds.clone();
                redetected = Some(Inputs {
                    source: Some(other),
                    seeds,
                });
                continue;
            }
        }
        // The shared try's transaction is open until `check` or the exclusive try ends it.
        let mut open = true;
        if head.shared {
            if let Some(done) = idle::check(session, cfg, inputs, &wave, &head).await? {
                return Ok(done);
            }
            open = false;
        }
        // Only a run with work to do asks whether its server process is its own: the check
        // above holds its lock for one transaction, which no pooler splits.
        if let (Some(backend), false) = (head.backend, confirmed) {
            if !backend.own && open {
                end_transaction(session, key).await?;
                open = false;
            }
            pooler::confirm(session, key, backend).await?;
            confirmed = true;
        }
        if lock::try_take(session, &wait, head.backend, open).await? {
            if let Some(b) = head.backend {
                // Refused: the lock was released where it could be, nothing was done.
                pooler::after_take(session, key, b).await?;
            }
            let tool = match &inputs.source {
                Some(source) => tool_lock_key(session, cfg, source).await?,
                None => None,
            };
            let result = match tool {
                Some(tool) => match lock::hold_also(session, &mut wait, tool).await {
                    Ok(()) => {
                        let result = work(session, cfg, inputs, &wave, db).await;
                        // Released with the session if this does not reach the server.
                        let _ = lock::release(session, tool, Mode::Exclusive).await;
                        result
                    }
                    Err(e) => Err(e.into()),
                },
                None => work(session, cfg, inputs, &wave, db).await,
            };
            let released = lock::release_and_notify(session, key, Mode::Exclusive).await;
            let done = result?;
            return match released {
                Ok(()) => Ok(done),
                Err(source) => Err(Error::Unreleased { done, source }),
            };
        }
        wait.next(session, seen).await?;
    }
}

/// The key of the folder's tool's own advisory lock, computed as the tool computes it (from
/// the database's name and its history table's, where it keys on them).
async fn tool_lock_key(
    session: &Session,
    cfg: &Config,
    source: &migrate::Source,
) -> Result<Option<i64>, Error> {
    let Some(lock) = migrate::format::of(source.layout).tool_lock() else {
        return Ok(None);
    };
    let history = migrate::history::History::new(source.layout, &cfg.migrate);
    let (schema, table) = history.names();
    let database = match lock {
        migrate::format::ToolLock::Fixed(_) => String::new(),
        migrate::format::ToolLock::Named(_) => {
            let asked = crate::pg::first_text(session, "SELECT current_database()");
            match tokio::time::timeout(lock::LISTEN_BOUND, asked).await {
                Ok(Ok(name)) => name.unwrap_or_default(),
                Ok(Err(e)) => {
                    return Err(LockError::Database {
                        key: cfg.lock.key,
                        source: crate::pg::PgError::new("reading the database's name", e),
                    }
                    .into())
                }
                Err(_) => {
                    return Err(LockError::Unanswered {
                        key: cfg.lock.key,
                        what: "SELECT current_database()",
                        waited: lock::LISTEN_BOUND,
                    }
                    .into())
                }
            }
        }
    };
    Ok(Some(lock.key(&database, schema, table)))
}

/// Ends the shared try's transaction before a second connection looks at the server process
/// (a transaction pooler keeps the process for this session while it is open).
async fn end_transaction(session: &Session, key: i64) -> Result<(), Error> {
    let bound = lock::LISTEN_BOUND;
    match tokio::time::timeout(bound, session.batch_execute("COMMIT")).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(LockError::Database {
            key,
            source: crate::pg::PgError::new("ending the lock's transaction", e),
        }
        .into()),
        Err(_) => Err(LockError::Unanswered {
            key,
            what: "COMMIT",
            waited: bound,
        }
        .into()),
    }
}

/// Migrate, then seed, under the exclusive lock.
async fn work(
    session: &Session,
    cfg: &Config,
    inputs: &Inputs,
    wave: &str,
    db: Option<&crate::config::Database>,
) -> Result<Done, Error> {
    let outcome = match &inputs.source {
        Some(source) => {
            let watch = cfg.database.as_ref().map(|db| migrate::concurrent::Watch {
                db,
                connect: &cfg.connect,
                every: cfg.fleet.progress_interval,
            });
            let prepared = migrate::prepare(session, &cfg.migrate, source).await?;
            crate::lint::gate(session, &cfg.migrate, source, prepared.pending()).await?;
            migrate::apply_pending(session, &cfg.migrate, source, prepared, watch).await?
        }
        None => migrate::Outcome::default(),
    };
    // A command seed reaches the database this session is on (one of many, or `database_url`).
    let connection = db.map(seed::command_env::Connection::of);
    let seeds_run = seed::run(session, &cfg.seed, &inputs.seeds, wave, connection.as_ref()).await?;
    Ok(Done {
        applied: outcome.applied,
        already_applied: outcome.already_applied,
        seeds_run,
    })
}
