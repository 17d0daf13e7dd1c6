//! `db-init trace`: the pending migrations run for real against a CI or staging database, in
//! one transaction that is always rolled back, and for each statement what the server did: the
//! locks this backend took (`pg_locks`), the relations it rewrote (a new `relfilenode`), and
//! how long it took. What the static analysis guesses, measured.

use std::collections::HashMap;
use std::time::Instant;

use super::catalog::{self, Relation};
use crate::migrate::steps::{steps, Step};
use crate::migrate::{Failed, Location, Source};
use crate::pg::lock::LockError;
use crate::pg::{PgError, ServerError, Session};
use crate::statement::Lock;

/// One statement of a trace.
#[derive(Debug, serde::Serialize)]
pub struct Traced {
    pub file: String,
    pub line: usize,
    pub column: usize,
    /// The statement's first line, shortened.
    pub statement: String,
    /// `ran`, `failed` or `not_run`.
    pub outcome: &'static str,
    /// Why it was not run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    pub ms: f64,
    /// Locks this statement took that the transaction did not hold before it.
    pub locks: Vec<Taken>,
    /// Relations whose storage the statement replaced: a table or index rewrite.
    pub rewritten: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, serde::Serialize)]
pub struct Taken {
    pub mode: String,
    pub relation: String,
    /// Created earlier in the trace: nobody else can be waiting for it.
    pub new: bool,
}

/// The whole trace, in order; `failed` names the statement the run would fail at.
#[derive(Debug, Default, serde::Serialize)]
pub struct Trace {
    pub rolled_back: bool,
    pub statements: Vec<Traced>,
    #[serde(skip)]
    pub failed: Option<Box<Failed>>,
}

/// Shown before a trace starts: its locks are the real ones.
pub const WARNING: &str = "trace runs the pending migrations for real, inside a transaction that \
    is rolled back at the end: while it runs it holds their locks on the real tables, as a deploy \
    would. Point it at a CI or staging database, not at production";

/// Why a trace could not run: the server's error, or a run holding the lock.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    #[error(transparent)]
    Pg(#[from] PgError),
    #[error(transparent)]
    Lock(#[from] LockError),
}

/// Runs `pending` inside one transaction, rolled back whatever happens, under the advisory
/// lock `key` taken for the transaction only (refused, never awaited, when a run holds it).
pub async fn trace(
    session: &Session,
    settings: &crate::config::MigrateSettings,
    key: i64,
    source: &Source,
    pending: &[usize],
) -> Result<Trace, TraceError> {
    session
        .work_settings(Some(settings.ddl_lock_timeout), settings.statement_timeout)
        .await?;
    let got = crate::pg::first_text(
        session,
        &format!("BEGIN; SELECT pg_try_advisory_xact_lock({key})"),
    )
    .await
    .map_err(|e| PgError::new("starting the trace", e))?;
    if got.as_deref() != Some("t") {
        let _ = session.batch_execute("ROLLBACK").await;
        return Err(LockError::Timeout {
            key,
            waited: std::time::Duration::ZERO,
            holder: "another session (a run migrating this database): trace never runs beside it"
                .into(),
        }
        .into());
    }
    let result = run(session, source, pending).await;
    // Never commits: the rollback ends every way out, and the transaction lock goes with it.
    let rolled_back = session.batch_execute("ROLLBACK").await.is_ok();
    let mut trace = result?;
    trace.rolled_back = rolled_back;
    Ok(trace)
}

async fn run(session: &Session, source: &Source, pending: &[usize]) -> Result<Trace, PgError> {
    let mut trace = Trace::default();
    let mut before = by_oid(&catalog::relations(session).await?);
    let existed: std::collections::HashSet<String> = before.keys().cloned().collect();
    let mut held: Vec<(String, String)> = Vec::new();
    for step in steps(source, pending, false) {
        let (index, run_chunks) = match step {
            Step::Transaction { indices, .. } => (indices.first().copied().unwrap_or(0), None),
            Step::Outside(i) => {
                not_run(
                    &mut trace,
                    source,
                    i,
                    0,
                    "runs outside a transaction, and a trace never commits",
                );
                continue;
            }
            Step::Parts { index, parts, .. } => (index, parts.first().map(|p| p.end)),
        };
        let Some(m) = source.migrations.get(index) else {
            continue;
        };
        for (chunk, offset, sql) in m.top_level_statements() {
            if run_chunks.is_some_and(|end| chunk > end) {
                let why = "uses an enum label this migration adds, which db-init commits first; a trace never commits";
                not_run(&mut trace, source, index, chunk, why);
                break;
            }
            let (line, column) = m.line_col(offset + crate::migrate::sql::leading_blank(sql));
            let started = Instant::now();
            let ran = session
                .execute_shared(&m.text, offset..offset + sql.len())
                .await;
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            let mut t = Traced {
                file: m.file.clone(),
                line,
                column,
                statement: head(sql),
                outcome: "ran",
                why: None,
                ms: (ms * 10.0).round() / 10.0,
                locks: Vec::new(),
                rewritten: Vec::new(),
                error: None,
            };
            if let Err(e) = ran {
                let error = ServerError::from_pg(&e);
                t.outcome = "failed";
                t.error = Some(error.to_string());
                trace.statements.push(t);
                trace.failed = Some(Box::new(Failed {
                    file: m.file.clone(),
                    location: Location {
                        statement: None,
                        line: Some(line),
                        column: Some(column),
                    },
                    error,
                    note: "the trace was rolled back; nothing was committed".into(),
                }));
                return Ok(trace);
            }
            let now = catalog::own_locks(session).await?;
            for (mode, oid, relation) in &now {
                if !held.iter().any(|(m, o)| m == mode && o == oid) {
                    t.locks.push(Taken {
                        mode: Lock::from_pg(mode).map_or(mode.clone(), |l| l.to_string()),
                        relation: relation.clone(),
                        new: !existed.contains(oid),
                    });
                }
            }
            held = now.into_iter().map(|(m, o, _)| (m, o)).collect();
            let after = by_oid(&catalog::relations(session).await?);
            for (oid, (name, filenode)) in &after {
                if before
                    .get(oid)
                    .is_some_and(|(_, before)| before != filenode)
                {
                    t.rewritten.push(name.clone());
                }
            }
            t.rewritten.sort();
            before = after;
            trace.statements.push(t);
        }
    }
    Ok(trace)
}

fn by_oid(relations: &[Relation]) -> HashMap<String, (String, String)> {
    relations
        .iter()
        .map(|r| (r.oid.clone(), (r.name.clone(), r.filenode.clone())))
        .collect()
}

fn not_run(trace: &mut Trace, source: &Source, index: usize, chunk: usize, why: &str) {
    let Some(m) = source.migrations.get(index) else {
        return;
    };
    let first = m
        .top_level_statements()
        .into_iter()
        .find(|(c, _, _)| *c >= chunk);
    let (line, column, statement) = first.map_or((1, 1, String::new()), |(_, offset, sql)| {
        let (l, c) = m.line_col(offset + crate::migrate::sql::leading_blank(sql));
        (l, c, head(sql))
    });
    trace.statements.push(Traced {
        file: m.file.clone(),
        line,
        column,
        statement,
        outcome: "not_run",
        why: Some(why.to_string()),
        ms: 0.0,
        locks: Vec::new(),
        rewritten: Vec::new(),
        error: None,
    });
}

/// The first line of a statement that is not blank or a comment, at most 72 characters.
fn head(sql: &str) -> String {
    let line = sql
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with("--"))
        .unwrap_or("");
    match line.char_indices().nth(72) {
        Some((at, _)) => format!("{}...", line.get(..at).unwrap_or(line)),
        None => line.to_string(),
    }
}

/// The text report: one line per statement.
pub fn text(trace: &Trace) -> String {
    let ran = trace
        .statements
        .iter()
        .filter(|t| t.outcome == "ran")
        .count();
    let mut out = format!(
        "-- trace: {ran} of {} statement(s) run, {}\n",
        trace.statements.len(),
        match trace.rolled_back {
            true => "all rolled back",
            false => "the rollback got no answer: the server rolls back when the connection ends",
        }
    );
    for t in &trace.statements {
        let what = match t.outcome {
            "ran" => {
                let locks: Vec<String> = t
                    .locks
                    .iter()
                    .map(|l| match l.new {
                        true => format!("{} on {} (new)", l.mode, l.relation),
                        false => format!("{} on {}", l.mode, l.relation),
                    })
                    .collect();
                let mut s = format!("{:.1} ms", t.ms);
                match locks.is_empty() {
                    true => s.push_str(", no new table lock"),
                    false => s.push_str(&format!(", {}", locks.join(", "))),
                }
                if !t.rewritten.is_empty() {
                    s.push_str(&format!(", REWRITES {}", t.rewritten.join(", ")));
                }
                s
            }
            "failed" => format!("FAILED: {}", t.error.as_deref().unwrap_or("")),
            _ => format!("not run: {}", t.why.as_deref().unwrap_or("")),
        };
        out.push_str(&format!(
            "{}:{}:{}: {}\n    {what}\n",
            t.file, t.line, t.column, t.statement
        ));
    }
    out
}
