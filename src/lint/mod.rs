//! The lock analysis: before a pending migration takes its locks, each statement is read with
//! PostgreSQL's own grammar (`crate::statement`), and what it would do is judged against the live tables
//! (`catalog.rs`): a new or empty table silences a finding that a large one makes loud.

pub mod analyze;
mod catalog;
pub mod finding;
pub use crate::rule_ids as ids;
pub mod sarif;
mod suppress;
pub mod trace;

pub use finding::{Finding, Severity};

use tokio_postgres::Client;

use crate::config::LintSettings;
use crate::config::MigrateSettings;
use crate::migrate::{MigrateError, Problem, Source};
use crate::statement;

/// The lock analysis of what is pending, run by the job before any lock on a user table is
/// taken: findings are logged; the ones that stop the run (a statement that would fail, or
/// `lint: error`) are refused as a validation error. A catalog that cannot be read never stops
/// the run.
pub async fn gate(
    client: &Client,
    settings: &MigrateSettings,
    source: &Source,
    pending: &[usize],
) -> Result<(), MigrateError> {
    if settings.lint.mode == crate::config::Lint::Off || pending.is_empty() {
        return Ok(());
    }
    let findings = match analyze::findings(
        client,
        &settings.lint,
        settings.ddl_lock_timeout,
        source,
        pending,
    )
    .await
    {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(error = %e, "lock analysis skipped: the catalog could not be read");
            return Ok(());
        }
    };
    MigrateError::validation(problems(&findings))
}

/// Logs each finding that lets the run through (at info when it is information or suppressed)
/// and returns the ones that stop it.
pub fn problems(findings: &[Finding]) -> Vec<Problem> {
    let mut stop = Vec::new();
    for f in findings {
        if f.stops {
            stop.push(Problem::Lint {
                finding: f.to_string(),
                fails: f.fails,
            });
        } else if f.suppressed.is_some() || f.severity == Severity::Info {
            tracing::info!(rule = f.rule, "{f}");
        } else {
            tracing::warn!(rule = f.rule, "{f}");
        }
    }
    stop
}

/// What `plan` prints after the statements: every finding as a comment, or that there is none.
pub async fn plan_text(
    client: &Client,
    settings: &LintSettings,
    ddl_lock_timeout: std::time::Duration,
    source: &Source,
    pending: &[usize],
) -> String {
    if pending.is_empty() {
        return String::new();
    }
    match analyze::findings(client, settings, ddl_lock_timeout, source, pending).await {
        Ok(f) if f.is_empty() => "-- lock analysis: no finding\n".to_string(),
        Ok(f) => {
            let mut out = format!("-- lock analysis: {} finding(s)\n", f.len());
            for finding in f {
                let stops = match finding.stops {
                    true => " [stops the run]",
                    false => "",
                };
                out.push_str(&format!("-- {finding}{stops}\n"));
            }
            out
        }
        Err(e) => format!("-- lock analysis skipped: {e}\n"),
    }
}

/// The tables the pending migrations create or alter, each named as written: what a seed may
/// rely on only after they ran (online `validate` checks such a seed's columns after them).
pub fn changed_tables(source: &Source, pending: &[usize]) -> Vec<statement::Table> {
    let mut out = Vec::new();
    for m in pending.iter().filter_map(|&i| source.migrations.get(i)) {
        for (_, _, sql) in m.top_level_statements() {
            let Some(stmt) = statement::classify(sql) else {
                continue;
            };
            out.extend(stmt.lock.map(|(_, t)| t));
            out.extend(stmt.creates);
        }
    }
    out
}

/// The findings a document shows for the pending statements: none when nothing is pending or
/// `lint: off`, `None` when the catalog could not be read (logged: the analysis never stops a
/// read-only command).
pub async fn for_document(
    client: &Client,
    settings: &crate::config::MigrateSettings,
    source: &Source,
    pending: &[usize],
) -> Option<Vec<Finding>> {
    if settings.lint.mode == crate::config::Lint::Off || pending.is_empty() {
        return Some(Vec::new());
    }
    let found = analyze::findings(
        client,
        &settings.lint,
        settings.ddl_lock_timeout,
        source,
        pending,
    );
    match found.await {
        Ok(f) => Some(f),
        Err(e) => {
            tracing::warn!(error = %e, "lock analysis skipped: the catalog could not be read");
            None
        }
    }
}

/// The tables a SQL text (a seed) creates or alters, by PostgreSQL's parser.
pub fn changed_tables_of_sql(text: &str) -> Vec<statement::Table> {
    let mut out = Vec::new();
    for stmt in crate::migrate::sql::statements(text) {
        let Some(classified) = text.get(stmt.range).and_then(statement::classify) else {
            continue;
        };
        out.extend(classified.lock.map(|(_, t)| t));
        out.extend(classified.creates);
    }
    out
}

/// Whether `written` (`table` or `schema.table`, as a seed names it) is one of `tables`, by
/// the rule the analysis uses for tables created earlier in the run (an unqualified name is
/// the search path's).
pub fn names_one_of(tables: &[statement::Table], written: &str) -> bool {
    let (schema, name) = written.rsplit_once('.').unwrap_or(("", written));
    let t = statement::Table {
        schema: schema.to_string(),
        name: name.to_string(),
    };
    let set: std::collections::HashSet<statement::Table> = tables.iter().cloned().collect();
    catalog::is_created(&set, &t)
}
