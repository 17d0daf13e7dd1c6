//! Working through the set: at most `concurrency` databases at once, each on its own session,
//! each within `database_timeout` when set, a progress line at a steady interval; and the job
//! over the set, which is the single-database job (`job::run_on`: its own advisory lock,
//! validate, migrate, seed) for each database, its commits counted for the report.

use std::cell::Cell;
use std::future::Future;
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_util::stream::{FuturesUnordered, StreamExt};
use tracing::{error, info, Instrument};

use super::live::{Live, Open};
use super::progress::Progress;
use super::report::{self, Report};
use super::targets::Target;
use super::FleetError;
use crate::config::{Config, FleetSettings};
use crate::exit;
use crate::job::{self, Parts};
use crate::migrate::apply::COMMITS;
use crate::outcome::Done;
use crate::outcome::{Error, Success};
use crate::pg;

/// How often a changed report is rewritten while the run goes on.
const REPORT_FLUSH: Duration = Duration::from_millis(250);

/// Runs `work` on every target, at most `settings.concurrency` at once (each holds at most one
/// session, so this bounds the sessions too). `started` and `finished` are told about each
/// database in turn, `flush` every [`REPORT_FLUSH`]; with `stop_after_failure`, no database
/// is started after one failed.
pub async fn each<'a, T, W, F>(
    targets: &'a [Target],
    settings: &FleetSettings,
    stop_after_failure: bool,
    work: W,
    mut started: impl FnMut(usize),
    mut finished: impl FnMut(usize, Result<T, Error>, Duration),
    mut flush: impl FnMut(),
) where
    W: Fn(usize, &'a Target) -> F,
    F: Future<Output = Result<T, Error>> + 'a,
{
    let mut queue = targets.iter().enumerate();
    let mut running = FuturesUnordered::new();
    let mut progress = Progress::new(targets.len());
    let mut ticks = tokio::time::interval_at(
        tokio::time::Instant::now() + settings.progress_interval,
        settings.progress_interval,
    );
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut flushes = tokio::time::interval(REPORT_FLUSH);
    flushes.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let stopping = stop_after_failure && progress.failed() > 0;
        while running.len() < settings.concurrency && !stopping {
            let Some((index, target)) = queue.next() else {
                break;
            };
            started(index);
            let span = tracing::info_span!("db", database = %target.identity);
            let job = work(index, target);
            running.push(async move {
                let began = Instant::now();
                let result = job.instrument(span).await;
                (index, result, began.elapsed())
            });
        }
        if running.is_empty() {
            break;
        }
        tokio::select! {
            Some((index, result, took)) = running.next() => {
                progress.finished(result.is_ok());
                finished(index, result, took);
            }
            _ = ticks.tick() => progress.log(),
            _ = flushes.tick() => flush(),
        }
    }
}

/// A session on the target's database, registered with `live` so a signal can clean it up.
pub async fn open(target: &Target, cfg: &Config, live: &Live) -> Result<Open, Error> {
    let session = pg::connect(&target.db, &cfg.connect).await?;
    Ok(live.open(session))
}

/// `run`, `migrate` or `seed` over the set.
pub async fn job(
    cfg: &Config,
    live: &Live,
    parts: Parts,
    command: &'static str,
) -> Result<Success, Error> {
    // The folders are read and checked once, before any connection.
    let inputs = job::Inputs::load(cfg, parts)?;
    if let Some(path) = &cfg.fleet.report {
        report::writable(path)?;
    }
    let selection = super::select(cfg, live).await?;
    let report = Report::new(
        command,
        cfg.fleet.report.clone(),
        cfg.fleet.shard,
        selection.in_set,
        &selection.targets,
    )?;
    live.set_report(report);
    let inputs = &inputs;
    let mut flush_failed = false;
    each(
        &selection.targets,
        &cfg.fleet,
        cfg.fleet.fail_fast,
        |index, target| async move {
            let commits = live.with_report(|r| r.commits(index)).flatten();
            let done = bounded(cfg, live, target, inputs, commits).await;
            if let Ok(d) = &done {
                info!(
                    applied = d.applied,
                    already_applied = d.already_applied,
                    seeds = d.seeds_run,
                    "done: {} migration(s) applied, {} already applied, {} seed(s) run",
                    d.applied,
                    d.already_applied,
                    d.seeds_run
                );
            }
            done
        },
        |index| {
            live.with_report(|r| r.started(index));
        },
        |index, result: Result<Done, Error>, took| {
            if let (Err(e), Some(t)) = (&result, selection.targets.get(index)) {
                let code = exit::error_code(e);
                error!(database = %t.identity, exit_code = code, "{e}");
            }
            live.with_report(|r| r.finished(index, &result, took));
        },
        || {
            // A report that cannot be rewritten mid-run is said once; the final write decides.
            if let Some(Err(e)) = live.with_report(|r| r.flush()) {
                if !flush_failed {
                    tracing::warn!("{e}");
                    flush_failed = true;
                }
            }
        },
    )
    .await;
    let verdict = live.with_report(|r| {
        r.close(false);
        info!("{}", r.summary());
        let verdict = r.verdict();
        let code = match &verdict {
            Ok(()) => exit::success_code(Success::Done),
            Err(e) => exit::fleet_code(e),
        };
        r.write(Some(code))?;
        verdict
    });
    match verdict {
        Some(Err(e)) => Err(e.into()),
        _ => Ok(Success::Done),
    }
}

/// One database's job, its commits counted in `commits`, within `database_timeout` when set:
/// a database whose server stops answering ends as failed (stalled) and holds up no other.
async fn bounded(
    cfg: &Config,
    live: &Live,
    target: &Target,
    inputs: &job::Inputs,
    commits: Option<Rc<super::report::Commits>>,
) -> Result<Done, Error> {
    // The session's id, so that an abandoned job's session can be forgotten and closed.
    let opened: Cell<Option<u64>> = Cell::new(None);
    let work = async {
        let open = open(target, cfg, live).await?;
        opened.set(Some(open.id()));
        let done = job::run_on(&open.session, cfg, inputs, Some(&target.db)).await;
        live.close(open);
        done
    };
    let commits = commits.unwrap_or_default();
    let counted = COMMITS.scope(Rc::clone(&commits), work);
    let Some(limit) = cfg.fleet.database_timeout else {
        return counted.await;
    };
    match tokio::time::timeout(limit, counted).await {
        Ok(done) => done,
        Err(_) => {
            // The job is dropped where it waited; its session is closed here, not on a signal.
            if let Some(id) = opened.get() {
                live.forget(id);
            }
            let in_flight = match commits.unknown() {
                0 => String::new(),
                n => format!(
                    "; {n} migration(s) sent and never answered: whether they committed is unknown \
                     (`db-init status` tells; a rerun skips them if they did)"
                ),
            };
            Err(FleetError::Stalled {
                waited: limit,
                in_flight,
            }
            .into())
        }
    }
}
