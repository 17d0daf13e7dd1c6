//! `status` and `validate` over the set: each database's history read and planned against the
//! folder (no lock, no writes), at most `concurrency` at once, and one table or JSON document
//! saying which databases are up to date, pending, invalid or could not be checked.

use serde_json::{Map, Value};

use super::live::Live;
use super::run::{each, open};
use super::FleetError;
use crate::cli::Format;
use crate::config::Config;
use crate::document::{entry, Document, State};
use crate::exit;
use crate::migrate::{self, source, Assessment, Source};
use crate::outcome::{Error, Success};
use crate::report::{status_fields, status_state, STATUS_STATES};

#[derive(Debug)]
struct Row {
    database: String,
    target: String,
    /// `up_to_date`, `pending`, `invalid` or `error`.
    state: State,
    applied: usize,
    pending: usize,
    problems: Vec<String>,
    error: Option<String>,
    exit_code: Option<u8>,
    /// The assessed database's fields, as one database's `status` document has them.
    fields: Map<String, Value>,
}

impl Row {
    /// Its state as `validate` says it: pending work is valid.
    fn validated(&self) -> State {
        match self.state {
            State::UpToDate | State::Pending => State::Valid,
            other => other,
        }
    }

    fn json(&self, state: State) -> Value {
        let code = match state {
            State::Valid => Some(0),
            _ => self.exit_code,
        };
        let mut e = entry(
            Some(&self.database),
            Some(&self.target),
            state,
            code,
            self.error.clone(),
        );
        e.extend(self.fields.clone());
        Value::Object(e)
    }
}

/// What the command prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Status(Format),
    Validate(Format),
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
            state: State::Error,
            applied: 0,
            pending: 0,
            problems: Vec::new(),
            error: Some("not checked".into()),
            exit_code: None,
            fields: Map::new(),
        })
        .collect();
    let source = &source;
    let finished = |index: usize, result: Result<Assessed, Error>, _| {
        if let Some(row) = rows.get_mut(index) {
            fill(row, source, result);
        }
    };
    let work = |_, target| async move {
        let open = open(target, cfg, live).await?;
        // Each database's own history table may name another tool's reading of the folder.
        let assessed = match migrate::assess_detected(&open.session, &cfg.migrate, source).await {
            Ok((other, a)) => {
                let pending = a.plan.pending();
                let read = other.as_ref().unwrap_or(source);
                let findings =
                    crate::lint::for_document(&open.session, &cfg.migrate, read, &pending);
                let findings = findings.await;
                Ok((other, a, findings))
            }
            Err(e) => Err(e),
        };
        live.close(open);
        Ok(assessed?)
    };
    each(targets, &cfg.fleet, false, work, |_| {}, finished, || {}).await;
    let count = |h| rows.iter().filter(|r| r.state == h).count();
    let (errors, invalid, pending) = (
        count(State::Error),
        count(State::Invalid),
        count(State::Pending),
    );
    let summary = format!(
        "{} database(s): {} up to date, {pending} pending, {invalid} invalid, {errors} not checked",
        rows.len(),
        count(State::UpToDate),
    );
    match output {
        Output::Status(Format::Json) => {
            crate::command::print(&json(&rows, summary.clone(), false))?
        }
        Output::Status(Format::Text) => crate::command::print(&text(&rows, &summary))?,
        Output::Validate(Format::Json) => {
            crate::command::print(&json(&rows, summary.clone(), true))?
        }
        Output::Validate(Format::Text) if errors + invalid == 0 => {
            crate::command::print(&format!("valid: {summary}\n"))?
        }
        Output::Validate(Format::Text) => Success::Done,
    };
    let named = |h| {
        rows.iter()
            .filter(|r| r.state == h)
            .take(20)
            .map(|r| {
                let why = r
                    .error
                    .as_deref()
                    .or(r.problems.first().map(String::as_str));
                format!(
                    "\n  - {}: {}",
                    r.database,
                    crate::text::indented(why.unwrap_or(""))
                )
            })
            .collect::<String>()
    };
    if errors > 0 {
        return Err(FleetError::SomeFailed {
            failed: errors,
            total: rows.len(),
            list: named(State::Error),
        }
        .into());
    }
    if invalid > 0 {
        return Err(FleetError::Invalid {
            invalid,
            total: rows.len(),
            list: named(State::Invalid),
        }
        .into());
    }
    Ok(match (output, pending) {
        (Output::Status(_), 1..) => Success::Pending,
        _ => Success::Done,
    })
}

/// A database's reading of the folder when not the shared one, its assessment and the
/// findings on its pending statements.
type Assessed = (
    Option<Source>,
    Assessment,
    Option<Vec<crate::lint::Finding>>,
);

fn fill(row: &mut Row, source: &Source, result: Result<Assessed, Error>) {
    match result {
        Ok((other, a, findings)) => {
            row.fields = status_fields(other.as_ref().unwrap_or(source), &a);
            row.fields
                .insert("findings".into(), serde_json::json!(findings));
            row.applied = row
                .fields
                .get("applied")
                .and_then(Value::as_u64)
                .unwrap_or(0) as usize;
            row.pending = a.plan.pending().len();
            row.problems = a.plan.problems.iter().map(ToString::to_string).collect();
            row.error = None;
            let (state, code) = status_state(&a);
            (row.state, row.exit_code) = (state, Some(code));
        }
        Err(e) => {
            row.exit_code = Some(exit::error_code(&e));
            row.error = Some(e.to_string());
        }
    }
}

fn json(rows: &[Row], summary: String, validate: bool) -> String {
    let (command, states, empty) = match validate {
        false => ("status", STATUS_STATES, State::UpToDate),
        true => ("validate", crate::inspect::VALIDATE_STATES, State::Valid),
    };
    let entries: Vec<(State, Value)> = rows
        .iter()
        .map(|r| {
            let state = if validate { r.validated() } else { r.state };
            (state, r.json(state))
        })
        .collect();
    let worst = entries.iter().map(|(s, _)| *s).max().unwrap_or(empty);
    let exit_code = match worst {
        State::UpToDate | State::Valid => 0,
        State::Pending => 10,
        State::Invalid => 7,
        _ => 11,
    };
    let mut extra = Map::new();
    if validate {
        extra.insert("valid".into(), (exit_code == 0).into());
        extra.insert("offline".into(), false.into());
    }
    Document {
        command,
        states,
        empty,
        exit_code: Some(exit_code),
        summary,
        extra,
        entries,
    }
    .text()
}

fn text(rows: &[Row], summary: &str) -> String {
    let mut out = format!(
        "{:<12} {:>7} {:>7}  {}\n",
        "STATE", "APPLIED", "PENDING", "DATABASE"
    );
    for r in rows {
        let state = match r.state {
            State::UpToDate => "up-to-date",
            other => other.name(),
        };
        out.push_str(&format!(
            "{state:<12} {:>7} {:>7}  {}\n",
            r.applied, r.pending, r.database
        ));
        let mut why: Vec<&str> = r.error.iter().map(String::as_str).collect();
        why.extend(r.problems.iter().map(String::as_str));
        for reason in why {
            out.push_str(&format!("    {}\n", crate::text::indented(reason)));
        }
    }
    out.push_str(summary);
    out.push('\n');
    out
}
