//! One function per command, and the one place that handles SIGTERM / SIGINT: the job races the
//! signal; on a signal the job is dropped and the session's owner here cancels the running
//! statement, rolls back and releases the lock.

use std::cell::OnceCell;
use std::io::Write;
use std::time::{Duration, Instant};

use tokio::signal::unix::{signal, SignalKind};
use tracing::{info, warn};

use crate::cli::Command;
use crate::command::{connect, print};
use crate::config::Config;
use crate::exit;
use crate::job::{self, Parts};
use crate::migrate::{self, baseline, repair, source};
use crate::outcome::{Error, Signal, Success};
use crate::pg::lock::with_lock;
use crate::pg::{self, Session};
use crate::{fleet, inspect, wait_migrated};

/// Runs `command`, or stops it cleanly on a signal.
pub async fn run(command: Command, cfg: &Config) -> Result<Success, Error> {
    let (mut term, mut int) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(t), Ok(i)) => (t, i),
        (Err(e), _) | (_, Err(e)) => {
            return Err(Error::Internal(format!(
                "cannot install signal handlers: {e}"
            )))
        }
    };
    // Held since the first instruction of main (signals.rs): one that came meanwhile is
    // delivered to these handlers now.
    crate::signals::unblock();
    let session = OnceCell::new();
    // A run over many databases keeps its sessions here, outside the work the signal drops.
    let live = fleet::Live::default();
    let signal = tokio::select! {
        result = dispatch(command, cfg, &session, &live) => return result,
        _ = term.recv() => Signal::Term,
        _ = int.recv() => Signal::Int,
    };
    warn!(%signal, "interrupted: cancelling the running statement and releasing the lock");
    let many = live.sessions();
    let open: Vec<&Session> = session
        .get()
        .into_iter()
        .chain(many.iter().map(|s| &**s))
        .collect();
    let cleanup = match open.is_empty() {
        true => "no session was open".to_string(),
        false => clean_up(&open).await,
    };
    let error = Error::Interrupted { signal, cleanup };
    if let Some(problem) = live.interrupted(exit::error_code(&error)) {
        warn!("{problem}");
    }
    Err(error)
}

/// Cancel, roll back, unlock, on every open session at once, within the 2 s that Kubernetes
/// and Compose users expect. Says only what it saw happen.
async fn clean_up(sessions: &[&Session]) -> String {
    async fn steps(session: &Session) -> Result<(), tokio_postgres::Error> {
        if let Err(e) = session.cancel().await {
            warn!(error = %e, "could not send the cancel request");
        }
        // Queued behind the cancelled statement, on the same session.
        let _ = session.batch_execute("ROLLBACK").await;
        session
            .batch_execute("SELECT pg_advisory_unlock_all()")
            .await
    }
    let all = futures_util::future::join_all(sessions.iter().map(|s| steps(s)));
    let Ok(results) = tokio::time::timeout(Duration::from_millis(1500), all).await else {
        return "cleanup did not finish within 1.5 s; the lock is released by the server only when it notices \
                the connection is gone"
            .into();
    };
    let failed: Vec<String> = results
        .iter()
        .filter_map(|r| r.as_ref().err().map(pg::describe))
        .collect();
    match (sessions.len(), failed.first()) {
        (1, None) => "running statement cancelled, rolled back, lock released".into(),
        (n, None) => format!("{n} sessions: running statements cancelled, rolled back, locks released"),
        (1, Some(e)) => format!(
            "cleanup failed ({e}); the server ends the session and releases its lock when the connection closes"
        ),
        (n, Some(e)) => format!(
            "cleanup failed on {} of {n} sessions (first: {e}); the server ends those sessions and releases \
             their locks when the connections close",
            failed.len()
        ),
    }
}

async fn dispatch(
    command: Command,
    cfg: &Config,
    session: &OnceCell<Session>,
    live: &fleet::Live,
) -> Result<Success, Error> {
    if let Some(result) = fleet::dispatch(&command, cfg, live).await {
        return result;
    }
    match command {
        Command::Run => job(cfg, session, live, Parts::BOTH, "run").await,
        Command::Migrate => job(cfg, session, live, Parts::MIGRATIONS, "migrate").await,
        Command::Seed => job(cfg, session, live, Parts::SEEDS, "seed").await,
        Command::Wait {
            migrated: false, ..
        } => connect(cfg, session).await.map(|_| Success::Done),
        Command::Wait { seeded, .. } => wait_migrated::wait(cfg, session, seeded).await,
        Command::Status { format } => inspect::status(cfg, session, format).await,
        Command::Validate { offline, format } => {
            inspect::validate(cfg, session, offline, format).await
        }
        Command::Plan { format } => inspect::plan(cfg, session, format).await,
        Command::Trace { format } => inspect::trace(cfg, session, format).await,
        Command::Baseline { to, migration } => {
            baseline(cfg, session, to.as_deref(), &migration).await
        }
        Command::Repair {
            migration,
            all_changed,
        } => {
            let targets = match all_changed {
                true => repair::Targets::AllChanged,
                false => repair::Targets::Named(migration),
            };
            repair(cfg, session, &targets).await
        }
        Command::New { name } => {
            let file = migrate::new::create(&cfg.migrate.dir, &name, &cfg.migrate)?;
            print(&format!("{}\n", file.display()))
        }
    }
}

/// wait, lock, migrate, seed. The folders are read and checked while the connection is made,
/// and before anything is sent on it, so a broken folder fails fast (even while the database
/// is still down) and never waits for a lock.
async fn job(
    cfg: &Config,
    cell: &OnceCell<Session>,
    live: &fleet::Live,
    parts: Parts,
    command: &'static str,
) -> Result<Success, Error> {
    let started = Instant::now();
    let report = fleet::one_report(cfg, command, live)?;
    let work = async {
        let (inputs, session) = read_while_connecting(cfg, cell, parts).await?;
        job::run_on(session, cfg, &inputs, cfg.database.as_ref()).await
    };
    let result = crate::migrate::apply::COMMITS
        .scope(report.clone().unwrap_or_default(), work)
        .await;
    if report.is_some() {
        fleet::one_report_done(live, &result, started.elapsed())?;
    }
    let done = result?;
    info!(
        applied = done.applied,
        already_applied = done.already_applied,
        seeds = done.seeds_run,
        ms = started.elapsed().as_millis() as u64,
        "done: {} migration(s) applied, {} already applied, {} seed(s) run",
        done.applied,
        done.already_applied,
        done.seeds_run
    );
    Ok(Success::Done)
}

/// The folders, read on their own thread while the connection is made: on a big folder the
/// two take about as long, and the start pays only the longer. The folder's answer comes
/// first: its problems are reported whatever the connection does.
async fn read_while_connecting<'a>(
    cfg: &Config,
    cell: &'a OnceCell<Session>,
    parts: Parts,
) -> Result<(job::Inputs, &'a Session), Error> {
    let (tx, mut reading) = tokio::sync::oneshot::channel();
    let own = cfg.clone();
    std::thread::spawn(move || {
        let _ = tx.send(job::Inputs::load(&own, parts));
    });
    let mut connecting = std::pin::pin!(connect(cfg, cell));
    let mut connected = None;
    let read = loop {
        tokio::select! {
            read = &mut reading => break read,
            session = &mut connecting, if connected.is_none() => connected = Some(session),
        }
    };
    // The thread ends only by sending, unless reading the folder panicked.
    let inputs = match read {
        Ok(inputs) => inputs?,
        Err(_) => job::Inputs::load(cfg, parts)?,
    };
    let session = match connected {
        Some(session) => session?,
        None => connecting.await?,
    };
    Ok((inputs, session))
}

async fn baseline(
    cfg: &Config,
    cell: &OnceCell<Session>,
    to: Option<&str>,
    only: &[String],
) -> Result<Success, Error> {
    let source = source::load(&cfg.migrate.dir, &cfg.migrate)?;
    let targets = baseline::targets(&source, to, only)?;
    let session = connect(cfg, cell).await?;
    let recorded = with_lock(session, cfg.lock, async {
        Ok::<_, Error>(baseline::record(session, &cfg.migrate, &source, &targets).await?)
    })
    .await?;
    let files: Vec<&str> = recorded
        .iter()
        .filter_map(|&i| source.migrations.get(i))
        .map(|m| m.file.as_str())
        .collect();
    info!(
        recorded = files.len(),
        migrations = %files.join(", "),
        "baseline: migrations recorded as applied without running them"
    );
    Ok(Success::Done)
}

async fn repair(
    cfg: &Config,
    cell: &OnceCell<Session>,
    targets: &repair::Targets,
) -> Result<Success, Error> {
    let source = source::load(&cfg.migrate.dir, &cfg.migrate)?;
    let session = connect(cfg, cell).await?;
    let repaired = with_lock(session, cfg.lock, async {
        Ok::<_, Error>(repair::repair(session, &cfg.migrate, &source, targets).await?)
    })
    .await?;
    let mut out = String::new();
    for r in &repaired {
        out.push_str(&format!(
            "repaired {}: checksum {} -> {}\n",
            r.file, r.old, r.new
        ));
    }
    if repaired.is_empty() {
        out.push_str("nothing to repair: no applied migration's file changed\n");
    }
    print(&out)
}

/// Kubernetes shows this file in `kubectl describe pod`; only written when it already exists.
pub fn write_termination_log(path: &std::path::Path, e: &Error) {
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
    {
        let _ = writeln!(f, "db-init: {e}");
    }
}
