//! Command seeds: an executable `*.sh` of the seeds folder (or a set's), run under db-init's
//! lock with the connection in its environment (see `command_env`), in its own process group,
//! its output streamed line by line into the log, bounded by `seed_command_timeout`; its run
//! recorded in `db_init.seed_runs` once it exits 0.

use std::collections::VecDeque;
use std::io::BufRead;
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tracing::info;

use super::command_env::Connection;
use super::{runs, SeedError, SeedFile};
use crate::pg::{PgError, Session};

/// How many of its last output lines a failed command's error shows.
const TAIL: usize = 20;
/// After the command exits, how long what it started may still write before it is killed.
const AFTER_EXIT: Duration = Duration::from_secs(2);

enum Event {
    Line(String),
    Exited(std::io::Result<ExitStatus>),
}

/// How often the session is asked a trivial query while the command runs: the lock lives on
/// it, and a session left idle for the command's length can be closed under it
/// (`idle_session_timeout`, a NAT or load balancer dropping idle connections).
const KEEPALIVE: Duration = Duration::from_secs(1);
/// How long that query may take before the session counts as lost.
const KEEPALIVE_BOUND: Duration = Duration::from_secs(10);

/// Kills the command's process group when dropped before it was disarmed: a timeout, an
/// interrupted db-init (SIGTERM drops the run), or what it left running after its exit.
struct Group(Option<i32>);

impl Drop for Group {
    fn drop(&mut self) {
        if let Some(pgid) = self.0.take() {
            // SAFETY: kill(2) has no memory effects; a negative pid names the group, which
            // the command got for itself (process_group(0)) and shares with no other process.
            unsafe {
                libc::kill(-pgid, libc::SIGKILL);
            }
        }
    }
}

/// Runs the command, then records it.
pub async fn run(
    session: &Session,
    seed: &SeedFile,
    connection: Option<&Connection>,
    timeout: Duration,
) -> Result<(), SeedError> {
    let failed = |outcome: String, tail: &VecDeque<String>| SeedError::Command {
        file: seed.name.clone(),
        outcome,
        tail: tail
            .iter()
            .map(|l| format!("    {l}\n"))
            .collect::<String>(),
    };
    let Some(connection) = connection else {
        return Err(failed(
            "was not run: a command seed runs against the one database of database_url, not over \
             many databases"
                .into(),
            &VecDeque::new(),
        ));
    };
    let started = Instant::now();
    let not_started =
        |e: std::io::Error| failed(format!("could not be started: {e}"), &VecDeque::new());
    // One pipe for stdout and stderr: the lines come in the order the command wrote them, so
    // the error it printed last is in the excerpt of its last lines.
    let (output, writer) = std::io::pipe().map_err(not_started)?;
    let mut command = Command::new(&seed.path);
    command
        .envs(connection.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(writer.try_clone().map_err(not_started)?)
        .stderr(writer)
        .process_group(0);
    // SAFETY: between fork and exec only prctl(2), async-signal-safe, is called. It makes the
    // kernel kill the command (kept across its `exec`) if db-init dies without cleaning up
    // (kill -9), so it does not run on without the lock.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let mut child = command.spawn().map_err(not_started)?;
    // The parent's copies of the write end are gone with `command`: the reader sees the end
    // of the output when the command (and what it started) closed theirs.
    drop(command);
    let group = Group(i32::try_from(child.id()).ok());
    info!(seed = %seed.name, "running the command");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let lines = tx.clone();
    std::thread::spawn(move || {
        let mut reader = std::io::BufReader::new(output);
        let mut buf = Vec::new();
        while matches!(reader.read_until(b'\n', &mut buf), Ok(n) if n > 0) {
            let line = String::from_utf8_lossy(&buf)
                .trim_end_matches(['\n', '\r'])
                .to_string();
            if lines.send(Event::Line(line)).is_err() {
                break;
            }
            buf.clear();
        }
    });
    std::thread::spawn(move || {
        let _ = tx.send(Event::Exited(child.wait()));
    });

    let mut tail: VecDeque<String> = VecDeque::with_capacity(TAIL);
    let mut deadline = tokio::time::Instant::now() + timeout;
    let mut status = None;
    let mut keepalive = tokio::time::interval(KEEPALIVE);
    keepalive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let event = tokio::select! {
            event = tokio::time::timeout_at(deadline, rx.recv()) => event,
            _ = keepalive.tick(), if status.is_none() => {
                let alive = tokio::time::timeout(KEEPALIVE_BOUND, session.batch_execute("SELECT 1")).await;
                if !matches!(alive, Ok(Ok(()))) {
                    drop(group);
                    return Err(failed(
                        "was stopped: db-init's database session (which holds the lock) was lost while it ran, \
                         so another replica may take the lock; its process group was killed"
                            .into(),
                        &tail,
                    ));
                }
                continue;
            }
        };
        match event {
            Ok(Some(Event::Line(line))) => {
                let line = connection.clean(&line);
                info!(seed = %seed.name, "{line}");
                if tail.len() == TAIL {
                    tail.pop_front();
                }
                tail.push_back(line);
            }
            Ok(Some(Event::Exited(exited))) => {
                status = Some(exited);
                deadline = deadline.min(tokio::time::Instant::now() + AFTER_EXIT);
            }
            Ok(None) => break,
            Err(_) if status.is_some() => break,
            Err(_) => {
                drop(group);
                return Err(failed(
                    format!(
                        "did not finish within seed_command_timeout ({timeout:?}): its process group was killed"
                    ),
                    &tail,
                ));
            }
        }
    }
    // Whatever it started and left running is ended with it.
    drop(group);
    let ms = started.elapsed().as_millis() as u64;
    match status {
        Some(Ok(s)) if s.success() => {}
        Some(Ok(s)) => return Err(failed(format!("failed ({s})"), &tail)),
        Some(Err(e)) => return Err(failed(format!("could not be waited for: {e}"), &tail)),
        None => return Err(failed("ended without an exit status".into(), &tail)),
    }
    info!(seed = %seed.name, ms, "seeded: the command exited 0");
    session
        .batch_execute(&runs::record_sql(seed, Some(ms)))
        .await
        .map_err(|e| PgError::new(format!("recording the run of {}", seed.name), e).into())
}
