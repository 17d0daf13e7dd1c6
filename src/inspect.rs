//! The read-only commands on one database: `status`, `validate`, `plan` and `trace`, each as
//! text or as the JSON document of `document` (the same shape a fleet's commands print).

use std::cell::OnceCell;

use serde_json::{Map, Value};
use tracing::{info, warn};

use crate::cli::{Format, ValidateFormat};
use crate::command::{connect, print};
use crate::config::{Config, Lint};
use crate::document::{database_name, entry, with_message, Document, State};
use crate::lint::Finding;
use crate::migrate::{self, source, Assessment, MigrateError, Problem, Source};
use crate::outcome::{Error, Success};
use crate::pg::Session;
use crate::{job, report, seed};

async fn assessed(cfg: &Config, cell: &OnceCell<Session>) -> Result<(Source, Assessment), Error> {
    let source = source::load(&cfg.migrate.dir, &cfg.migrate)?;
    let session = connect(cfg, cell).await?;
    let (other, assessment) = migrate::assess_detected(session, &cfg.migrate, &source).await?;
    Ok((other.unwrap_or(source), assessment))
}

/// The one database's entry: its name and redacted URL, state, code, then `fields`.
fn one(cfg: &Config, state: State, code: u8, fields: Map<String, Value>) -> Value {
    let (name, target) = match cfg.database() {
        Ok(db) => (Some(database_name(db)), Some(db.redacted.clone())),
        Err(_) => (None, None),
    };
    let mut e = entry(name.as_deref(), target.as_deref(), state, Some(code), None);
    e.extend(fields);
    Value::Object(e)
}

pub async fn status(
    cfg: &Config,
    cell: &OnceCell<Session>,
    format: Format,
) -> Result<Success, Error> {
    let (source, a) = assessed(cfg, cell).await?;
    let session = connect(cfg, cell).await?;
    let pending = a.plan.pending();
    let findings = crate::lint::for_document(session, &cfg.migrate, &source, &pending).await;
    print(&match format {
        Format::Text => report::status_text(&source, &a, findings.as_deref()),
        Format::Json => report::status_json(cfg.database()?, &source, &a, findings.as_deref()),
    })?;
    MigrateError::validation(a.plan.problems.clone())?;
    Ok(match a.plan.pending().is_empty() {
        true => Success::Done,
        false => Success::Pending,
    })
}

pub async fn validate(
    cfg: &Config,
    cell: &OnceCell<Session>,
    offline: bool,
    format: ValidateFormat,
) -> Result<Success, Error> {
    let lint = cfg.migrate.lint.mode != Lint::Off;
    let (problems, warnings, findings, fields) = if offline {
        let source = source::load(&cfg.migrate.dir, &cfg.migrate)?;
        seed::load(&cfg.seed.dir)?;
        let problems = migrate::plan::offline_problems(&source, cfg.migrate.atomic);
        let findings = match lint {
            true => crate::lint::analyze::offline(&cfg.migrate.lint, &source),
            false => Vec::new(),
        };
        (problems, source.warnings, findings, Map::new())
    } else {
        let (source, a) = assessed(cfg, cell).await?;
        let pending = a.plan.pending();
        let findings = match lint && !pending.is_empty() {
            true => {
                let session = connect(cfg, cell).await?;
                crate::lint::for_document(session, &cfg.migrate, &source, &pending)
                    .await
                    .unwrap_or_default()
            }
            false => Vec::new(),
        };
        let fields = report::status_fields(&source, &a);
        let mut problems = a.plan.problems;
        problems.extend(seed_problems(cfg, cell, &source, &pending).await?);
        (problems, a.plan.warnings, findings, fields)
    };
    let allowed = cfg.migrate.out_of_order == Some(crate::config::OutOfOrder::Allow);
    let mut problems = problems;
    for w in warnings {
        match w.fails_validate(allowed) {
            true => problems.push(Problem::Validate { warning: w }),
            false => warn!("{w}"),
        }
    }
    problems.extend(crate::lint::problems(&findings));
    let doc = match format {
        ValidateFormat::Text => None,
        ValidateFormat::Sarif => Some(format!(
            "{:#}\n",
            crate::lint::sarif::sarif(&findings, &cfg.migrate.dir)
        )),
        ValidateFormat::Json => Some(validate_json(cfg, offline, &problems, &findings, fields)),
    };
    // A pipeline reads the document whatever the outcome; the exit code says the outcome.
    if let Some(doc) = doc {
        print(&doc)?;
    }
    MigrateError::validation(problems)?;
    match format {
        ValidateFormat::Text => print("valid\n"),
        _ => Ok(Success::Done),
    }
}

/// Each YAML seed against the live catalog; a seed whose table a pending migration creates or
/// alters is checked by the run, after them.
async fn seed_problems(
    cfg: &Config,
    cell: &OnceCell<Session>,
    source: &Source,
    pending: &[usize],
) -> Result<Vec<Problem>, Error> {
    let seeds = seed::load(&cfg.seed.dir)?;
    if seeds.iter().all(|s| s.is_sql()) {
        return Ok(Vec::new());
    }
    let session = connect(cfg, cell).await?;
    let mut changed = crate::lint::changed_tables(source, pending);
    for sql in seeds.iter().filter(|s| s.is_sql()) {
        changed.extend(crate::lint::changed_tables_of_sql(&sql.text));
    }
    let changes = |table: &str| crate::lint::names_one_of(&changed, table);
    let checked = seed::validate::check(session, &seeds, changes).await?;
    for (file, table) in &checked.after_migrations {
        info!("seed {file}: not checked against the catalog, a pending migration or a SQL seed creates or alters {table}");
    }
    Ok(checked
        .problems
        .into_iter()
        .map(|(file, message)| Problem::Seed { file, message })
        .collect())
}

fn validate_json(
    cfg: &Config,
    offline: bool,
    problems: &[Problem],
    findings: &[Finding],
    mut fields: Map<String, Value>,
) -> String {
    let valid = problems.is_empty();
    let (state, code) = match valid {
        true => (State::Valid, 0),
        false => (State::Invalid, 7),
    };
    let listed: Vec<Value> = problems.iter().map(with_message).collect();
    fields.insert("problems".into(), listed.into());
    fields.insert("findings".into(), serde_json::json!(findings));
    let entry = match offline {
        // No database was asked: the folder's entry names none.
        true => {
            let mut e = entry(None, None, state, Some(code), None);
            e.extend(fields);
            Value::Object(e)
        }
        false => one(cfg, state, code, fields),
    };
    let mut extra = Map::new();
    extra.insert("valid".into(), valid.into());
    extra.insert("offline".into(), offline.into());
    Document {
        command: "validate",
        states: VALIDATE_STATES,
        empty: State::Valid,
        exit_code: Some(code),
        summary: format!(
            "{} problem(s), {} finding(s)",
            problems.len(),
            findings.len()
        ),
        extra,
        entries: vec![(state, entry)],
    }
    .text()
}

/// The states a `validate` entry can take.
pub const VALIDATE_STATES: &[State] = &[State::Valid, State::Invalid, State::Error];

/// What `run` would send, in order.
pub async fn plan(
    cfg: &Config,
    cell: &OnceCell<Session>,
    format: Format,
) -> Result<Success, Error> {
    let (source, a) = assessed(cfg, cell).await?;
    if format == Format::Json && !a.plan.problems.is_empty() {
        print(&plan_json(cfg, &source, &a, None))?;
    }
    MigrateError::validation(a.plan.problems.clone())?;
    for w in &a.plan.warnings {
        warn!("{w}");
    }
    let seeds = seed::load(&cfg.seed.dir)?;
    let pending = a.plan.pending();
    let lint = cfg.migrate.lint.mode != Lint::Off;
    let seeds_sql = match seeds.is_empty() {
        true => None,
        false => {
            let session = connect(cfg, cell).await?;
            let wave = job::wave(session, cfg.lock.key).await?;
            Some(seed::plan::text(session, &cfg.seed, &seeds, &wave).await)
        }
    };
    let session = connect(cfg, cell).await?;
    let settings = &cfg.migrate.lint;
    let timeout = cfg.migrate.ddl_lock_timeout;
    match format {
        Format::Text => {
            let mut out = report::plan_text(&source, &a, cfg);
            if lint {
                let found = crate::lint::plan_text(session, settings, timeout, &source, &pending);
                out.push_str(&found.await);
            }
            out.push_str(seeds_sql.as_deref().unwrap_or(""));
            print(&out)
        }
        Format::Json => {
            let findings =
                crate::lint::for_document(session, &cfg.migrate, &source, &pending).await;
            print(&plan_json(
                cfg,
                &source,
                &a,
                Some(Planned {
                    findings,
                    seeds_sql,
                }),
            ))
        }
    }
}

/// What a plan that was not refused adds to the entry.
struct Planned {
    /// `None` when the catalog could not be read.
    findings: Option<Vec<Finding>>,
    seeds_sql: Option<String>,
}

/// `planned` is `None` when the plan was refused (its problems are the entry's).
fn plan_json(cfg: &Config, source: &Source, a: &Assessment, planned: Option<Planned>) -> String {
    let (state, code) = report::status_state(a);
    // `plan` itself succeeds on pending work: its code is 0 unless the plan was refused.
    let code = if code == 7 { 7 } else { 0 };
    let mut fields = report::status_fields(source, a);
    let steps = match planned {
        Some(_) => serde_json::json!(report::plan_steps(source, a, cfg)),
        None => Value::Array(Vec::new()),
    };
    fields.insert("steps".into(), steps);
    let sql = planned.as_ref().map(|_| report::plan_text(source, a, cfg));
    fields.insert("sql".into(), sql.into());
    let (findings, seeds_sql) = match planned {
        Some(p) => (p.findings, p.seeds_sql),
        None => (None, None),
    };
    fields.insert("findings".into(), serde_json::json!(findings));
    fields.insert("seeds_sql".into(), seeds_sql.into());
    Document {
        command: "plan",
        states: crate::report::STATUS_STATES,
        empty: State::UpToDate,
        exit_code: Some(code),
        summary: format!("{} migration(s) to apply", a.plan.pending().len()),
        extra: Map::new(),
        entries: vec![(state, one(cfg, state, code, fields))],
    }
    .text()
}

/// The pending migrations run and rolled back, with what each statement locked and rewrote.
pub async fn trace(
    cfg: &Config,
    cell: &OnceCell<Session>,
    format: Format,
) -> Result<Success, Error> {
    let (source, a) = assessed(cfg, cell).await?;
    MigrateError::validation(a.plan.problems.clone())?;
    let session = connect(cfg, cell).await?;
    let pending = a.plan.pending();
    warn!("{}", crate::lint::trace::WARNING);
    let t =
        crate::lint::trace::trace(session, &cfg.migrate, cfg.lock.key, &source, &pending).await?;
    print(&match format {
        Format::Text => crate::lint::trace::text(&t),
        Format::Json => format!("{:#}\n", serde_json::json!(t)),
    })?;
    match t.failed {
        Some(f) => Err(MigrateError::Failed(f).into()),
        None => Ok(Success::Done),
    }
}
