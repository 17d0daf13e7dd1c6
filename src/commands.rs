//! One function per command of SPEC section 4; each returns the exit code of a success.

use std::io::Write;
use std::rc::Rc;
use std::time::Instant;

use tracing::info;

use crate::cli::{Command, Format};
use crate::config::Config;
use crate::db::{self, Session};
use crate::exit::{code, Error};
use crate::lock::with_lock;
use crate::migrate::apply::{self, Batch, Step};
use crate::migrate::plan::State;
use crate::migrate::{self, source, History, MigrateError, Plan, Problem, Source};
use crate::seed;
use crate::signals::SessionSlot;

pub async fn dispatch(command: Command, cfg: &Config, slot: &SessionSlot) -> Result<u8, Error> {
    match command {
        Command::Run => run(cfg, slot, true, true).await,
        Command::Migrate => run(cfg, slot, true, false).await,
        Command::Seed => run(cfg, slot, false, true).await,
        Command::Wait => {
            connect(cfg, slot).await?;
            Ok(code::OK)
        }
        Command::Status { format } => status(cfg, slot, format).await,
        Command::Validate { offline } => validate(cfg, slot, offline).await,
        Command::Plan => plan(cfg, slot).await,
        Command::Baseline { to } => baseline(cfg, slot, &to).await,
        Command::New { name } => new(cfg, &name),
    }
}

async fn connect(cfg: &Config, slot: &SessionSlot) -> Result<Rc<Session>, Error> {
    let session = Rc::new(db::connect(cfg, cfg.database()?).await?);
    slot.set(session.clone());
    Ok(session)
}

/// wait, lock, migrate, seed. The folder is read and checked before any connection, so a
/// broken folder fails fast and never waits for a lock.
async fn run(cfg: &Config, slot: &SessionSlot, migrations: bool, seeds: bool) -> Result<u8, Error> {
    let started = Instant::now();
    let source = if migrations {
        Some(source::load(&cfg.migrations)?)
    } else {
        None
    };
    let seed_files = if seeds {
        seed::load(&cfg.seeds)?
    } else {
        Vec::new()
    };
    let session = connect(cfg, slot).await?;
    let (outcome, seeds_run) = with_lock(&session, cfg.lock_key, cfg.lock_timeout, async {
        let outcome = match &source {
            Some(source) => migrate::migrate(&session, cfg, source).await?,
            None => migrate::Outcome::default(),
        };
        let seeds_run = seed::run(&session, cfg, &seed_files).await?;
        Ok::<_, Error>((outcome, seeds_run))
    })
    .await?;
    info!(
        applied = outcome.applied,
        already_applied = outcome.already_applied,
        seeds = seeds_run,
        ms = started.elapsed().as_millis() as u64,
        "done: {} migration(s) applied, {} already applied, {} seed(s) run",
        outcome.applied,
        outcome.already_applied,
        seeds_run
    );
    Ok(code::OK)
}

async fn checked_plan(cfg: &Config, slot: &SessionSlot) -> Result<(Source, History, Plan), Error> {
    let source = source::load(&cfg.migrations)?;
    let session = connect(cfg, slot).await?;
    let (history, plan, _) = migrate::plan_against(&session, cfg, &source).await?;
    Ok((source, history, plan))
}

async fn status(cfg: &Config, slot: &SessionSlot, format: Format) -> Result<u8, Error> {
    let (source, history, plan) = checked_plan(cfg, slot).await?;
    let pending = plan.pending().len();
    let out = match format {
        Format::Text => status_text(&source, &history, &plan),
        Format::Json => status_json(&source, &history, &plan),
    };
    print(&out)?;
    if !plan.problems.is_empty() {
        return Err(MigrateError::Validation {
            problems: plan.problems,
        }
        .into());
    }
    Ok(if pending > 0 { code::PENDING } else { code::OK })
}

fn status_text(source: &Source, history: &History, plan: &Plan) -> String {
    let mut out = format!(
        "migrations: {} ({:?} layout), history: {}\n",
        source.dir.display(),
        source.layout,
        history.qualified()
    );
    out.push_str(&format!("{:<12} {:<16} {}\n", "STATE", "VERSION", "FILE"));
    for e in &plan.entries {
        let m = &source.migrations[e.index];
        let state = match e.state {
            State::Applied => "applied",
            State::Pending => "pending",
            State::OutOfOrder => "out-of-order",
            State::Changed => "changed",
        };
        out.push_str(&format!("{state:<12} {:<16} {}\n", m.version, m.file));
    }
    for r in &plan.missing {
        let v = r.version.map_or("?".to_string(), |v| v.to_string());
        out.push_str(&format!(
            "{:<12} {v:<16} (no file; checksum {})\n",
            "missing", r.checksum
        ));
    }
    let pending = plan.pending().len();
    out.push_str(&format!(
        "{} applied, {} pending, {} problem(s)\n",
        plan.entries
            .iter()
            .filter(|e| e.state == State::Applied)
            .count(),
        pending,
        plan.problems.len()
    ));
    out
}

fn status_json(source: &Source, history: &History, plan: &Plan) -> String {
    let migrations: Vec<serde_json::Value> = plan
        .entries
        .iter()
        .map(|e| {
            let m = &source.migrations[e.index];
            serde_json::json!({
                "file": m.file, "name": m.name, "version": m.version, "state": e.state,
                "checksum": m.checksum, "stored_checksum": e.stored,
                "no_transaction": m.no_transaction,
            })
        })
        .collect();
    let missing: Vec<serde_json::Value> = plan
        .missing
        .iter()
        .map(|r| serde_json::json!({ "version": r.version, "checksum": r.checksum }))
        .collect();
    let problems: Vec<String> = plan.problems.iter().map(ToString::to_string).collect();
    let pending = plan.pending().len();
    let value = serde_json::json!({
        "layout": source.layout,
        "history_table": history.qualified(),
        "migrations": migrations,
        "missing": missing,
        "problems": problems,
        "applied": plan.entries.iter().filter(|e| e.state == State::Applied).count(),
        "pending": pending,
        "up_to_date": pending == 0 && plan.problems.is_empty(),
    });
    format!("{value:#}\n")
}

async fn validate(cfg: &Config, slot: &SessionSlot, offline: bool) -> Result<u8, Error> {
    let problems = if offline {
        // Without a database every migration may be pending, so every one is checked.
        let source = source::load(&cfg.migrations)?;
        let mut problems: Vec<Problem> = source
            .migrations
            .iter()
            .flat_map(migrate::plan::lint)
            .collect();
        if cfg.atomic {
            problems.extend(
                source
                    .migrations
                    .iter()
                    .filter(|m| m.no_transaction)
                    .map(|m| Problem::AtomicWithNoTransaction {
                        file: m.file.clone(),
                    }),
            );
        }
        problems
    } else {
        checked_plan(cfg, slot).await?.2.problems
    };
    if !problems.is_empty() {
        return Err(MigrateError::Validation { problems }.into());
    }
    print("valid\n")?;
    Ok(code::OK)
}

/// What `run` would send, in order: the same batches the applier builds.
async fn plan(cfg: &Config, slot: &SessionSlot) -> Result<u8, Error> {
    let (source, history, plan) = checked_plan(cfg, slot).await?;
    if !plan.problems.is_empty() {
        return Err(MigrateError::Validation {
            problems: plan.problems,
        }
        .into());
    }
    let pending = plan.pending();
    let mut out = format!(
        "-- {} migration(s) to apply, history in {}\n",
        pending.len(),
        history.qualified()
    );
    for step in apply::steps(&source, &pending, cfg.atomic) {
        match step {
            Step::Transaction { indices, durable } => {
                let names: Vec<&str> = indices
                    .iter()
                    .map(|&i| source.migrations[i].file.as_str())
                    .collect();
                out.push_str(&format!("-- {}\n", names.join(", ")));
                out.push_str(&Batch::transaction(&source, &history, &indices, durable).text);
                out.push('\n');
            }
            Step::Outside(i) => {
                let m = &source.migrations[i];
                out.push_str(&format!(
                    "-- {} (no transaction: one query per statement)\n",
                    m.file
                ));
                for (_, _, sql) in apply::outside_statements(m) {
                    out.push_str(sql);
                    out.push('\n');
                }
                out.push_str(&history.insert_sql(m, Some(0)));
                out.push_str(";\n");
            }
        }
    }
    let seeds = seed::load(&cfg.seeds)?;
    for s in &seeds {
        out.push_str(&format!(
            "-- seed {} (seed_mode: {:?})\n",
            s.name, cfg.seed_mode
        ));
    }
    print(&out)?;
    Ok(code::OK)
}

async fn baseline(cfg: &Config, slot: &SessionSlot, to: &str) -> Result<u8, Error> {
    let source = source::load(&cfg.migrations)?;
    let target = source
        .migrations
        .iter()
        .position(|m| {
            m.name == to
                || m.file == to
                || m.version.to_string() == to
                || to.parse::<i64>().ok() == Some(m.version)
        })
        .ok_or_else(|| MigrateError::Validation {
            problems: vec![Problem::BaselineTarget {
                target: to.to_string(),
            }],
        })?;
    let session = connect(cfg, slot).await?;
    let recorded = with_lock(&session, cfg.lock_key, cfg.lock_timeout, async {
        let (history, plan, table_exists) = migrate::plan_against(&session, cfg, &source).await?;
        let record: Vec<usize> = plan
            .pending()
            .into_iter()
            .filter(|&i| i <= target)
            .collect();
        let blocking: Vec<Problem> = plan
            .problems
            .into_iter()
            .filter(|p| matches!(p, Problem::Changed { .. } | Problem::Missing { .. }))
            .collect();
        if !blocking.is_empty() {
            return Err(MigrateError::Validation { problems: blocking }.into());
        }
        if !table_exists {
            history.create(&session).await?;
        }
        let mut sql = String::from("BEGIN;\n");
        for &i in &record {
            sql.push_str(&history.insert_sql(&source.migrations[i], Some(0)));
            sql.push_str(";\n");
        }
        sql.push_str("COMMIT;");
        session
            .batch_execute(&sql)
            .await
            .map_err(|e| MigrateError::db("recording the baseline", &e))?;
        Ok::<_, Error>(record.len())
    })
    .await?;
    info!(recorded, target = %source.migrations[target].file, "baseline: migrations recorded as applied without running them");
    Ok(code::OK)
}

/// Creates `<next version>_<name>.sql`, keeping the zero-padded width the folder already uses.
fn new(cfg: &Config, name: &str) -> Result<u8, Error> {
    let dir = &cfg.migrations;
    let io = |source| MigrateError::Io {
        path: dir.clone(),
        source,
    };
    if dir.join("meta").join("_journal.json").exists() {
        return Err(Error::Usage(
            "this is a Drizzle folder: create migrations with `drizzle-kit generate` (or `--custom`) so the journal stays right".into(),
        ));
    }
    let slug: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if slug.trim_matches('_').is_empty() {
        return Err(Error::Usage(format!(
            "migration name {name:?} has no letters or digits"
        )));
    }
    std::fs::create_dir_all(dir).map_err(io)?;
    let existing: Vec<(i64, usize)> = std::fs::read_dir(dir)
        .map_err(io)?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let file = e.file_name().to_string_lossy().into_owned();
            let digits = file.split('_').next()?.len();
            source::parse_numbered(&file).map(|(v, _)| (v, digits))
        })
        .collect();
    let next = existing.iter().map(|(v, _)| *v).max().map_or(1, |v| v + 1);
    let width = existing.iter().map(|(_, w)| *w).max().unwrap_or(4);
    let file = dir.join(format!("{next:0width$}_{slug}.sql"));
    std::fs::write(&file, format!("-- {slug}\n-- Runs in one transaction with its history row. For CREATE INDEX CONCURRENTLY and\n-- the like, make `{}` the first line.\n\n", source::NO_TRANSACTION_MARKER))
        .map_err(|e| MigrateError::Io { path: file.clone(), source: e })?;
    print(&format!("{}\n", file.display()))?;
    Ok(code::OK)
}

fn print(s: &str) -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    out.write_all(s.as_bytes())
        .and_then(|_| out.flush())
        .map_err(|e| Error::Internal(format!("writing to stdout: {e}")))
}
