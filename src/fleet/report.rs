//! The record of a run over many databases: one entry per database (outcome, migrations
//! known committed and unknown, seeds run, time, the error and its exit code), the summary
//! line, the list of failures, and the JSON file of `--report`, rewritten atomically while the
//! run goes on so that a kill leaves the last true state. Targets are shown redacted only.

use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::shard::Shard;
use super::targets::Target;
use super::FleetError;
use crate::document::Document;
use crate::exit;
pub use crate::migrate::apply::Commits;
use crate::outcome::Done;
use crate::outcome::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    NotStarted,
    Running,
    Done,
    Failed,
    /// Not started because an earlier database failed (`fail_fast`).
    Skipped,
    /// Running when a signal stopped the run: its statement was cancelled and rolled back.
    Interrupted,
}

#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub database: String,
    /// The redacted URL (`***` for a password).
    pub target: String,
    /// Named `state` in the report, as in every document (`crate::document`).
    #[serde(rename = "state")]
    pub outcome: Outcome,
    /// 0 when done; the code this database alone would have exited with when it failed.
    pub exit_code: Option<u8>,
    pub error: Option<String>,
    /// Migrations whose commit the server confirmed (so far, while running).
    pub applied: usize,
    /// Migrations sent whose answer was lost (a stall, a lost connection, a signal): whether
    /// they committed is unknown; `db-init status` tells.
    pub unknown: usize,
    pub already_applied: usize,
    pub seeds_run: usize,
    pub ms: u64,
    /// Why it failed, when the kind matters to the operator: `stalled`.
    pub reason: Option<&'static str>,
    /// The job's count of commits, while it runs.
    #[serde(skip)]
    commits: Option<Rc<Commits>>,
}

impl Entry {
    /// Takes the counts of a job that has not finished (running, abandoned, interrupted).
    fn sync(&mut self) {
        if let Some(c) = &self.commits {
            self.applied = c.committed();
            self.unknown = c.unknown();
        }
    }
}

/// What a run has done so far.
#[derive(Debug)]
pub struct Report {
    command: &'static str,
    path: Option<PathBuf>,
    shard: Option<Shard>,
    in_set: usize,
    started: Instant,
    pub entries: Vec<Entry>,
    /// Something changed since the file was last written.
    dirty: bool,
}

/// At most this many failures are named in the final error line; the report names them all.
const LISTED: usize = 20;

impl Report {
    /// Writes the report's first state (every database `not_started`), when there is a file.
    pub fn new(
        command: &'static str,
        path: Option<PathBuf>,
        shard: Option<Shard>,
        in_set: usize,
        targets: &[Target],
    ) -> Result<Report, FleetError> {
        let mut report = Report {
            command,
            path,
            shard,
            in_set,
            started: Instant::now(),
            entries: targets
                .iter()
                .map(|t| Entry {
                    database: t.identity.clone(),
                    target: t.db.redacted.clone(),
                    outcome: Outcome::NotStarted,
                    applied: 0,
                    unknown: 0,
                    already_applied: 0,
                    seeds_run: 0,
                    ms: 0,
                    error: None,
                    exit_code: None,
                    reason: None,
                    commits: None,
                })
                .collect(),
            dirty: false,
        };
        report.write(None)?;
        Ok(report)
    }

    /// Marks the database running; its job counts its commits in the returned [`Commits`].
    pub fn started(&mut self, index: usize) -> Rc<Commits> {
        let commits = Rc::new(Commits::default());
        if let Some(e) = self.entries.get_mut(index) {
            e.outcome = Outcome::Running;
            e.commits = Some(Rc::clone(&commits));
        }
        self.dirty = true;
        commits
    }

    pub fn finished(&mut self, index: usize, result: &Result<Done, Error>, took: Duration) {
        let Some(e) = self.entries.get_mut(index) else {
            return;
        };
        self.dirty = true;
        e.ms = took.as_millis() as u64;
        match result {
            Ok(done) => {
                e.outcome = Outcome::Done;
                e.applied = done.applied;
                e.unknown = 0;
                e.already_applied = done.already_applied;
                e.seeds_run = done.seeds_run;
                e.exit_code = Some(0);
            }
            Err(err) => {
                e.sync();
                e.outcome = Outcome::Failed;
                e.error = Some(err.to_string());
                e.exit_code = Some(exit::error_code(err));
                if stalled(err) {
                    e.reason = Some("stalled");
                }
            }
        }
        e.commits = None;
    }

    /// The commit count of the running database `index`.
    pub fn commits(&self, index: usize) -> Option<Rc<Commits>> {
        self.entries.get(index).and_then(|e| e.commits.clone())
    }

    /// Rewrites the file when something changed since it was last written (a database
    /// started, finished or committed a migration).
    pub fn flush(&mut self) -> Result<(), FleetError> {
        // Every flag is taken (reset), not only up to the first that is set.
        let mut committed = false;
        for c in self.entries.iter().filter_map(|e| e.commits.as_ref()) {
            committed |= c.take_changed();
        }
        if self.dirty || committed {
            self.write(None)?;
        }
        Ok(())
    }

    /// Databases never started are `skipped` (after a failure with `fail_fast`), or
    /// `interrupted` / `not_started` when a signal ended the run.
    pub fn close(&mut self, interrupted: bool) {
        for e in &mut self.entries {
            e.sync();
            e.outcome = match (e.outcome, interrupted) {
                (Outcome::Running, _) => Outcome::Interrupted,
                (Outcome::NotStarted, false) => Outcome::Skipped,
                (other, _) => other,
            };
        }
    }

    fn count(&self, outcome: Outcome) -> usize {
        self.entries.iter().filter(|e| e.outcome == outcome).count()
    }

    /// One line for the log: how many, how they ended, how long it took.
    pub fn summary(&self) -> String {
        let applied: usize = self.entries.iter().map(|e| e.applied).sum();
        let unknown: usize = self.entries.iter().map(|e| e.unknown).sum();
        let mut line = format!(
            "{} database(s) in {:.1?}: {} done ({applied} migration(s) applied), {} failed",
            self.entries.len(),
            self.started.elapsed(),
            self.count(Outcome::Done),
            self.count(Outcome::Failed),
        );
        if unknown > 0 {
            line.push_str(&format!(
                ", {unknown} migration(s) whose commit is unknown (the answer was lost; `db-init status` tells)"
            ));
        }
        for (outcome, word) in [
            (Outcome::Skipped, "skipped after a failure (fail_fast)"),
            (Outcome::Interrupted, "interrupted"),
            (Outcome::NotStarted, "not started"),
        ] {
            let n = self.count(outcome);
            if n > 0 {
                line.push_str(&format!(", {n} {word}"));
            }
        }
        line
    }

    /// `Ok` when every database is done; otherwise the error that names the failures.
    pub fn verdict(&self) -> Result<(), FleetError> {
        let failed: Vec<&Entry> = self
            .entries
            .iter()
            .filter(|e| e.outcome != Outcome::Done)
            .collect();
        if failed.is_empty() {
            return Ok(());
        }
        let mut list = String::new();
        for e in failed
            .iter()
            .filter(|e| e.outcome == Outcome::Failed)
            .take(LISTED)
        {
            // The whole reason, its later lines indented: the first line alone often says only
            // which migration failed, not why.
            let why = crate::text::indented(e.error.as_deref().unwrap_or(""));
            let code = e.exit_code.map_or("?".into(), |c| c.to_string());
            list.push_str(&format!("\n  - {} (exit {code}): {why}", e.database));
        }
        let named = failed
            .iter()
            .filter(|e| e.outcome == Outcome::Failed)
            .count();
        if named > LISTED {
            list.push_str(&format!("\n  - ... and {} more", named - LISTED));
        }
        let skipped = self.count(Outcome::Skipped);
        if skipped > 0 {
            list.push_str(&format!("\n  - {skipped} not started (fail_fast)"));
        }
        if self.path.is_some() {
            list.push_str("\n  (every database is in the report)");
        }
        Err(FleetError::SomeFailed {
            failed: named,
            total: self.entries.len(),
            list,
        })
    }

    /// Writes the JSON file, when `--report` was given. `exit_code` is `None` while the run
    /// has not ended.
    pub fn write(&mut self, exit_code: Option<u8>) -> Result<(), FleetError> {
        self.dirty = false;
        let Some(path) = &self.path else {
            return Ok(());
        };
        for e in &mut self.entries {
            if e.outcome == Outcome::Running {
                e.sync();
            }
        }
        let text = self.document(exit_code).text();
        write_file(path, &text)
    }
}

impl Report {
    /// The report as the document every command prints: its entries, the counts by state,
    /// and the run's own fields (shard, set size, migrations applied and unknown, seconds).
    fn document(&self, exit_code: Option<u8>) -> Document<'static> {
        use crate::document::State;
        let entries = self
            .entries
            .iter()
            .map(|e| {
                let state = match e.outcome {
                    Outcome::NotStarted => State::NotStarted,
                    Outcome::Running => State::Running,
                    Outcome::Done => State::Done,
                    Outcome::Failed => State::Failed,
                    Outcome::Skipped => State::Skipped,
                    Outcome::Interrupted => State::Interrupted,
                };
                (state, serde_json::to_value(e).unwrap_or_default())
            })
            .collect();
        let mut extra = serde_json::Map::new();
        extra.insert("shard".into(), self.shard.map(|s| s.to_string()).into());
        extra.insert("in_set".into(), self.in_set.into());
        let applied: usize = self.entries.iter().map(|e| e.applied).sum();
        let unknown: usize = self.entries.iter().map(|e| e.unknown).sum();
        extra.insert("migrations_applied".into(), applied.into());
        extra.insert("migrations_unknown".into(), unknown.into());
        extra.insert(
            "seconds".into(),
            self.started.elapsed().as_secs_f64().into(),
        );
        Document {
            command: self.command,
            states: RUN_STATES,
            empty: State::Done,
            // `null` while the run has not ended.
            exit_code,
            summary: self.summary(),
            extra,
            entries,
        }
    }
}

/// The states a run's entry can take.
const RUN_STATES: &[crate::document::State] = {
    use crate::document::State::*;
    &[NotStarted, Running, Done, Failed, Skipped, Interrupted]
};

/// Fails (exit 2) when the report could not be written, before anything connects. Creates
/// the file, keeping what it holds until the run writes its own.
pub fn writable(path: &Path) -> Result<(), FleetError> {
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .map(drop)
        .map_err(|source| FleetError::Report {
            path: path.to_path_buf(),
            source,
        })
}

/// Whether the database ended because the server stopped answering (not a refusal).
fn stalled(err: &Error) -> bool {
    use crate::migrate::MigrateError;
    use crate::pg::lock::LockError;
    matches!(
        err,
        Error::Fleet(FleetError::Stalled { .. })
            | Error::Migrate(MigrateError::Stalled { .. })
            | Error::Lock(LockError::Unanswered { .. })
    )
}

/// Written to a temp file in the same directory, then renamed over the report: a reader, or a
/// kill -9 in the middle, sees the previous state or the new one, never half of one.
fn write_file(path: &Path, text: &str) -> Result<(), FleetError> {
    let error = |source| FleetError::Report {
        path: path.to_path_buf(),
        source,
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let temp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    std::fs::write(&temp, text).map_err(error)?;
    std::fs::rename(&temp, path).map_err(|e| {
        let _ = std::fs::remove_file(&temp);
        error(e)
    })
}
