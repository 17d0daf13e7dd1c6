//! `status` and `validate` over the set: each database's history read and planned against the
//! folder (no lock, no writes), at most `concurrency` at once, and one table or JSON document
//! saying which databases are up to date, pending, invalid or could not be checked.

use serde::Serialize;

use super::live::Live;
use super::run::{each, open};
use super::FleetError;
use crate::cli::Format;
use crate::config::Config;
use crate::exit::{self, Error, Success};
use crate::migrate::plan::State;
use crate::migrate::{self, source, Assessment};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum Health {
    UpToDate,
    Pending,
    Invalid,
    /// Not checked: the connection or the history read failed.
    Error,
}

#[derive(Debug, Serialize)]
struct Row {
    database: String,
    target: String,
    state: Health,
    applied: usize,
    pending: usize,
    problems: Vec<serde_json::Value>,
    error: Option<String>,
    exit_code: Option<u8>,
}

/// What the command prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Status(Format),
    Validate,
}

pub async fn status(cfg: &Config, live: &Live, output: Output) -> Result<Success, Error> {
    let source = source::load(&cfg.migrate.dir, &cfg.migrate)?;
    let selection = super::select(cfg, live).await?;
    let targets = &selection.targets;
    let mut rows: Vec<Row> = targets
        .iter()
        .map(|t| Row {
            database: t.identity.clone(),
            target: t.db.redacted.clone(),
            state: Health::Error,
            applied: 0,
            pending: 0,
            problems: Vec::new(),
            error: Some("not checked".into()),
            exit_code: None,
        })
        .collect();
    let source = &source;
    let finished = |index: usize, result: Result<Assessment, Error>, _| {
        if let Some(row) = rows.get_mut(index) {
            fill(row, result);
        }
    };
    let work = |_, target| async move {
        let open = open(target, cfg, live).await?;
        let assessed = migrate::assess(&open.session, &cfg.migrate, source).await;
        live.close(open);
        Ok(assessed?)
    };
    each(targets, &cfg.fleet, false, work, |_| {}, finished, || {}).await;
    let count = |h| rows.iter().filter(|r| r.state == h).count();
    let (errors, invalid, pending) = (
        count(Health::Error),
        count(Health::Invalid),
        count(Health::Pending),
    );
    let summary = format!(
        "{} database(s): {} up to date, {pending} pending, {invalid} invalid, {errors} not checked",
        rows.len(),
        count(Health::UpToDate),
    );
    match output {
        Output::Status(Format::Json) => super::print(&json(&rows, &summary))?,
        Output::Status(Format::Text) => super::print(&text(&rows, &summary))?,
        Output::Validate if errors + invalid == 0 => super::print(&format!("valid: {summary}\n"))?,
        Output::Validate => {}
    }
    let named = |h| {
        rows.iter()
            .filter(|r| r.state == h)
            .take(20)
            .map(|r| {
                let why = r.error.as_deref().or(r.problems.first().and_then(message));
                let first = why.unwrap_or("").lines().next().unwrap_or("");
                format!("\n  - {}: {first}", r.database)
            })
            .collect::<String>()
    };
    if errors > 0 {
        return Err(FleetError::SomeFailed {
            failed: errors,
            total: rows.len(),
            list: named(Health::Error),
        }
        .into());
    }
    if invalid > 0 {
        return Err(FleetError::Invalid {
            invalid,
            total: rows.len(),
            list: named(Health::Invalid),
        }
        .into());
    }
    Ok(match (output, pending) {
        (Output::Status(_), 1..) => Success::Pending,
        _ => Success::Done,
    })
}

fn fill(row: &mut Row, result: Result<Assessment, Error>) {
    match result {
        Ok(a) => {
            row.applied = a
                .plan
                .entries
                .iter()
                .filter(|e| e.state == State::Applied)
                .count();
            row.pending = a.plan.pending().len();
            row.problems = a.plan.problems.iter().map(with_message).collect();
            row.error = None;
            (row.state, row.exit_code) = match (row.problems.is_empty(), row.pending) {
                (false, _) => (Health::Invalid, Some(7)),
                (true, 0) => (Health::UpToDate, Some(0)),
                (true, _) => (Health::Pending, Some(10)),
            };
        }
        Err(e) => {
            row.exit_code = Some(exit::error_code(&e));
            row.error = Some(e.to_string());
        }
    }
}

fn with_message<T: Serialize + std::fmt::Display>(item: &T) -> serde_json::Value {
    let mut v = serde_json::to_value(item).unwrap_or(serde_json::Value::Null);
    if let Some(map) = v.as_object_mut() {
        map.insert("message".into(), item.to_string().into());
    }
    v
}

fn message(problem: &serde_json::Value) -> Option<&str> {
    problem.get("message").and_then(serde_json::Value::as_str)
}

fn json(rows: &[Row], summary: &str) -> String {
    let count = |h| rows.iter().filter(|r| r.state == h).count();
    let value = serde_json::json!({
        "total": rows.len(),
        "up_to_date": count(Health::UpToDate),
        "pending": count(Health::Pending),
        "invalid": count(Health::Invalid),
        "error": count(Health::Error),
        "summary": summary,
        "databases": rows,
    });
    format!("{value:#}\n")
}

fn text(rows: &[Row], summary: &str) -> String {
    let mut out = format!(
        "{:<12} {:>7} {:>7}  {}\n",
        "STATE", "APPLIED", "PENDING", "DATABASE"
    );
    for r in rows {
        let state = match r.state {
            Health::UpToDate => "up-to-date",
            Health::Pending => "pending",
            Health::Invalid => "invalid",
            Health::Error => "error",
        };
        out.push_str(&format!(
            "{state:<12} {:>7} {:>7}  {}\n",
            r.applied, r.pending, r.database
        ));
        let mut why: Vec<&str> = r.error.iter().map(String::as_str).collect();
        why.extend(r.problems.iter().filter_map(message));
        for line in why {
            out.push_str(&format!("    {}\n", line.lines().next().unwrap_or("")));
        }
    }
    out.push_str(summary);
    out.push('\n');
    out
}
