//! `wait --migrated`: for apps whose migrations run in a separate Job (a Helm hook, an Argo CD
//! PreSync): exit 0 once every migration of the folder is recorded (with `--seeded`, and every
//! seed ran with its current content), waking on the migrating replica's NOTIFY, polling as the
//! fallback, exit 3 at `wait_timeout` saying what it still waits for. It takes no lock and
//! writes nothing.

use std::cell::OnceCell;
use std::time::{Duration, Instant};

use tracing::info;

use crate::command::connect;
use crate::config::{Config, SeedMode, SeedSettings};
use crate::migrate::{self, plan::State, source, MigrateError, Problem};
use crate::outcome::{Error, Success};
use crate::pg::{lock, Session};
use crate::retry::Backoff;
use crate::seed;

pub async fn wait(cfg: &Config, cell: &OnceCell<Session>, seeded: bool) -> Result<Success, Error> {
    let started = Instant::now();
    let source = source::load(&cfg.migrate.dir, &cfg.migrate)?;
    MigrateError::validation(source.problems.clone())?;
    let seeds = match seeded {
        true => seed::load(&cfg.seed.dir)?,
        false => Vec::new(),
    };
    // "Ran with its current content", whatever seed_mode the migrating Job uses.
    let recorded = SeedSettings {
        mode: SeedMode::OnChange,
        ..cfg.seed.clone()
    };
    let session = connect(cfg, cell).await?;
    let mut source = source;
    // Asked once, and only without the folder's own history table (see `job::run_on`).
    let mut asked = false;
    let wave = lock::listen(session, cfg.lock.key, Duration::ZERO).await?;
    let mut backoff = Backoff::new(cfg.connect.retry_initial, cfg.connect.retry_max);
    let mut last_report: Option<Instant> = None;
    loop {
        let seen = session.wakeups_seen();
        let a = migrate::assess(session, &cfg.migrate, &source).await?;
        if !a.table_exists && !asked {
            asked = true;
            if let Some(other) = migrate::format::redetect(session, &cfg.migrate, &source).await? {
                MigrateError::validation(other.problems.clone())?;
                source = other;
                continue;
            }
        }
        // What no Job will fix by migrating (an edited file, a missing one) ends the wait.
        let fatal: Vec<Problem> = a
            .plan
            .problems
            .iter()
            .filter(|p| {
                !matches!(
                    p,
                    Problem::OutOfOrder { .. } | Problem::OutOfOrderVersion { .. }
                )
            })
            .cloned()
            .collect();
        MigrateError::validation(fatal)?;
        let pending: Vec<&str> = a
            .plan
            .entries
            .iter()
            .filter(|e| matches!(e.state, State::Pending | State::OutOfOrder))
            .map(|e| source.migrations[e.index].file.as_str())
            .collect();
        let seeds_done = seed::all_done(session, &recorded, &seeds, &wave).await?;
        if pending.is_empty() && a.upgrade.is_none() && seeds_done {
            info!(
                waited_ms = started.elapsed().as_millis() as u64,
                "migrated: every migration is recorded{}",
                if seeded { " and every seed ran" } else { "" }
            );
            return Ok(Success::Done);
        }
        let missing = match (pending.first(), pending.len(), seeds_done) {
            (Some(first), n, _) => format!("{n} migration(s), the first {first}"),
            (None, _, false) => "the seeds".to_string(),
            (None, _, true) => "the history table's upgrade to Drizzle v1".to_string(),
        };
        let waited = started.elapsed();
        if waited >= cfg.connect.wait_timeout {
            return Err(Error::NotMigrated { waited, missing });
        }
        if last_report.is_none_or(|t| t.elapsed() >= Duration::from_secs(5)) {
            info!(
                waited_ms = waited.as_millis() as u64,
                "waiting for the database to be migrated: {missing}"
            );
            last_report = Some(Instant::now());
        }
        let delay = backoff
            .next_delay()
            .min(cfg.connect.wait_timeout.saturating_sub(waited));
        session.notified_since(seen, delay).await;
    }
}
