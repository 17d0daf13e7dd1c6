//! Many databases in one run (SPEC section 9): the set from a file or a query, sharded by a
//! stable hash, worked through with bounded concurrency, each database by the single-database
//! job, with progress, a summary, a JSON report and exit 11 when some failed.

mod live;
mod progress;
mod report;
mod run;
mod status;
pub mod targets;

use std::time::Duration;

use tracing::{info, warn};

pub use live::Live;
// The fleet's settings are read with every other setting (config owns them).
pub use crate::config::{fleet as settings, shard, FleetSettings};
pub use targets::{Selection, Target};

use crate::cli::{Command, Format};
use crate::command::print;
use crate::config::Config;
use crate::job::Parts;
pub use crate::outcome::FleetError;
use crate::outcome::{Error, Success};
use crate::pg;

/// Routes a command to its many-databases form when a set is configured; `None` leaves it to
/// the single-database path (no set, or a command that does not work on databases).
pub async fn dispatch(
    command: &Command,
    cfg: &Config,
    live: &Live,
) -> Option<Result<Success, Error>> {
    cfg.fleet.set.as_ref()?;
    Some(match command {
        Command::Run => run::job(cfg, live, Parts::BOTH, "run").await,
        Command::Migrate => run::job(cfg, live, Parts::MIGRATIONS, "migrate").await,
        Command::Seed => run::job(cfg, live, Parts::SEEDS, "seed").await,
        Command::Status { format } => {
            status::status(cfg, live, status::Output::Status(*format)).await
        }
        Command::Validate {
            offline: false,
            format,
        } => {
            use crate::cli::{Format, ValidateFormat};
            match format {
                ValidateFormat::Json => {
                    status::status(cfg, live, status::Output::Validate(Format::Json)).await
                }
                ValidateFormat::Text => {
                    status::status(cfg, live, status::Output::Validate(Format::Text)).await
                }
                ValidateFormat::Sarif => Err(Error::Usage(
                    "validate --format sarif reports one folder's findings: give one database's \
                     URL, or add --offline"
                        .into(),
                )),
            }
        }
        Command::Plan { format } => plan(cfg, live, *format).await,
        Command::Baseline { .. }
        | Command::Repair { .. }
        | Command::Trace { .. }
        | Command::Wait { migrated: true, .. } => Err(Error::Usage(
            "baseline, repair, trace and wait --migrated work on one database at a time: unset \
                 databases_file / databases_query and give that database's URL"
                .into(),
        )),
        // The folder alone, or the server (waited for on the base URL): as for one database.
        Command::Wait { .. } | Command::New { .. } | Command::Validate { offline: true, .. } => {
            return None
        }
    })
}

/// `run --report FILE` on one database: the report a set of one writes, started (checked
/// writable before anything connects). The returned count is the job's commits.
pub fn one_report(
    cfg: &Config,
    command: &'static str,
    live: &Live,
) -> Result<Option<std::rc::Rc<report::Commits>>, Error> {
    let Some(path) = &cfg.fleet.report else {
        return Ok(None);
    };
    report::writable(path)?;
    let db = cfg.database()?;
    let target = Target {
        identity: crate::document::database_name(db),
        db: db.clone(),
    };
    let mut r = report::Report::new(command, Some(path.clone()), None, 1, &[target])?;
    let commits = r.started(0);
    live.set_report(r);
    Ok(Some(commits))
}

/// Ends the one database's report with the job's result.
pub fn one_report_done(
    live: &Live,
    result: &Result<crate::outcome::Done, Error>,
    took: Duration,
) -> Result<(), Error> {
    let code = match result {
        Ok(_) => crate::exit::success_code(Success::Done),
        Err(e) => crate::exit::error_code(e),
    };
    let written = live.with_report(|r| {
        r.finished(0, result, took);
        r.close(false);
        r.write(Some(code))
    });
    written.transpose()?;
    Ok(())
}

/// Waits for the server once, on the base URL (when there is one), runs the databases query
/// there, and says how many databases this run covers.
pub async fn select(cfg: &Config, live: &Live) -> Result<Selection, Error> {
    let set = match &cfg.fleet.set {
        Some(set) => set,
        None => return Err(Error::Internal("no database set configured".into())),
    };
    let base = match &cfg.database {
        Some(db) => Some(live.open(pg::connect(db, &cfg.connect).await?)),
        None => None,
    };
    let selection = targets::select(cfg, set, base.as_ref().map(|o| &*o.session)).await;
    if let Some(open) = base {
        live.close(open);
    }
    let selection = selection?;
    let shard = match cfg.fleet.shard {
        Some(s) => format!(" (shard {s} of a set of {})", selection.in_set),
        None => String::new(),
    };
    info!(
        databases = selection.targets.len(),
        in_set = selection.in_set,
        concurrency = cfg.fleet.concurrency,
        "{} database(s) in this run{shard}, {} at a time",
        selection.targets.len(),
        cfg.fleet.concurrency
    );
    if selection.targets.is_empty() {
        warn!("no database to work on: the set is empty{shard}");
    }
    Ok(selection)
}

/// `plan` over the set: which databases a run would cover (`status` says what each needs).
async fn plan(cfg: &Config, live: &Live, format: Format) -> Result<Success, Error> {
    let selection = select(cfg, live).await?;
    let mut out = format!("-- {} database(s)", selection.targets.len());
    if let Some(s) = cfg.fleet.shard {
        out.push_str(&format!(", shard {s} of a set of {}", selection.in_set));
    }
    if format == Format::Json {
        print(&plan_json(
            &selection,
            out.trim_start_matches("-- ").to_string(),
        ))?;
        return Ok(Success::Done);
    }
    out.push('\n');
    for t in &selection.targets {
        // A URL line's identity is already its redacted URL.
        match t.identity == t.db.redacted {
            true => out.push_str(&format!("{}\n", t.identity)),
            false => out.push_str(&format!("{}\t{}\n", t.identity, t.db.redacted)),
        }
    }
    print(&out)?;
    Ok(Success::Done)
}

/// The set a run would cover, each database `not_started`.
fn plan_json(selection: &Selection, summary: String) -> String {
    use crate::document::{entry, Document, State};
    let entries = selection
        .targets
        .iter()
        .map(|t| {
            let e = entry(
                Some(&t.identity),
                Some(&t.db.redacted),
                State::NotStarted,
                None,
                None,
            );
            (State::NotStarted, serde_json::Value::Object(e))
        })
        .collect();
    let mut extra = serde_json::Map::new();
    extra.insert("in_set".into(), selection.in_set.into());
    Document {
        command: "plan",
        states: &[State::NotStarted],
        empty: State::NotStarted,
        exit_code: Some(0),
        summary,
        extra,
        entries,
    }
    .text()
}
