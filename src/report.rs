//! What `status` and `plan` print: the status table (text or JSON) and the exact SQL of a run.

use crate::config::Config;
use crate::migrate::plan::State;
use crate::migrate::steps::{steps, Batch, Step};
use crate::migrate::{Assessment, Source};
use crate::pg::work_settings_sql;

fn state_name(state: State) -> &'static str {
    match state {
        State::Applied => "applied",
        State::Pending => "pending",
        State::OutOfOrder => "out-of-order",
        State::Changed => "changed",
    }
}

fn applied_count(a: &Assessment) -> usize {
    a.plan
        .entries
        .iter()
        .filter(|e| e.state == State::Applied)
        .count()
}

pub fn status_text(source: &Source, a: &Assessment) -> String {
    let mut out = format!(
        "migrations: {} ({:?} layout), history: {}\n",
        source.dir.display(),
        source.layout,
        a.history.qualified()
    );
    if let Some(matches) = &a.upgrade {
        out.push_str(&format!(
            "history table has Drizzle 0.x's shape: the next run upgrades it to v1's ({} row(s) matched)\n",
            matches.len()
        ));
    }
    out.push_str(&format!("{:<12} {:<16} {}\n", "STATE", "VERSION", "FILE"));
    for e in &a.plan.entries {
        let m = &source.migrations[e.index];
        let state = state_name(e.state);
        let outside = match &m.outside {
            Some(why) => format!("  (outside a transaction: {why})"),
            None => String::new(),
        };
        out.push_str(&format!(
            "{state:<12} {:<16} {}{outside}\n",
            m.version, m.file
        ));
    }
    for r in &a.plan.missing {
        let v = r.version.map_or("?".to_string(), |v| v.to_string());
        out.push_str(&format!(
            "{:<12} {v:<16} (no file; checksum {})\n",
            "missing", r.checksum
        ));
    }
    for r in &a.plan.ahead {
        out.push_str(&format!(
            "{:<12} {:<16} (newer than every migration of this folder: applied by a later release)\n",
            "ahead",
            r.label()
        ));
    }
    for w in &a.plan.warnings {
        out.push_str(&format!("warning: {w}\n"));
    }
    for p in &a.plan.problems {
        out.push_str(&format!("problem: {p}\n"));
    }
    let ahead = match a.plan.ahead.len() {
        0 => String::new(),
        n => format!(", {n} ahead"),
    };
    out.push_str(&format!(
        "{} applied, {} pending{ahead}, {} problem(s), {} warning(s)\n",
        applied_count(a),
        a.plan.pending().len(),
        a.plan.problems.len(),
        a.plan.warnings.len()
    ));
    out
}

/// A problem or warning as JSON: its fields (with `kind`) and the message the log shows.
fn with_message<T: serde::Serialize + std::fmt::Display>(item: &T) -> serde_json::Value {
    let mut v = serde_json::to_value(item).unwrap_or(serde_json::Value::Null);
    if let Some(map) = v.as_object_mut() {
        map.insert("message".into(), item.to_string().into());
    }
    v
}

pub fn status_json(source: &Source, a: &Assessment) -> String {
    let migrations: Vec<serde_json::Value> = a
        .plan
        .entries
        .iter()
        .map(|e| {
            let m = &source.migrations[e.index];
            serde_json::json!({
                "file": m.file, "name": m.name, "version": m.version, "state": e.state,
                "checksum": m.checksum, "stored_checksum": e.stored,
                "transaction": if m.outside.is_some() { "outside" } else { "inside" },
                "outside_reason": m.outside,
            })
        })
        .collect();
    let missing: Vec<serde_json::Value> = a
        .plan
        .missing
        .iter()
        .map(|r| serde_json::json!({ "version": r.version, "checksum": r.checksum }))
        .collect();
    let ahead: Vec<serde_json::Value> = a
        .plan
        .ahead
        .iter()
        .map(|r| serde_json::json!({ "version": r.version, "name": r.name, "checksum": r.checksum, "state": "ahead" }))
        .collect();
    let problems: Vec<serde_json::Value> = a.plan.problems.iter().map(with_message).collect();
    let warnings: Vec<serde_json::Value> = a.plan.warnings.iter().map(with_message).collect();
    let pending = a.plan.pending().len();
    let value = serde_json::json!({
        "layout": source.layout,
        "history_table": a.history.qualified(),
        "migrations": migrations,
        "missing": missing,
        "ahead": ahead,
        "problems": problems,
        "warnings": warnings,
        "history_upgrade": a.upgrade.as_ref().map(|m| m.iter().map(|u| serde_json::json!({"id": u.id, "name": u.name})).collect::<Vec<_>>()),
        "applied": applied_count(a),
        "pending": pending,
        "up_to_date": pending == 0 && a.plan.problems.is_empty(),
    });
    format!("{value:#}\n")
}

/// The SQL `run` would send, in order: the same steps the applier executes.
/// The migrations' part; the seeds' part comes from `seed::plan` (it reads the catalog).
pub fn plan_text(source: &Source, a: &Assessment, cfg: &Config) -> String {
    let pending = a.plan.pending();
    let mut out = format!(
        "-- {} migration(s) to apply, history in {}\n",
        pending.len(),
        a.history.qualified()
    );
    if let Some(matches) = &a.upgrade {
        out.push_str("-- the Drizzle 0.x history table is upgraded to Drizzle v1's shape first:\n");
        for m in matches {
            out.push_str(&format!("--   row {} is {}\n", m.id, m.name));
        }
        out.push_str(&a.history.upgrade_sql(matches));
        out.push('\n');
    }
    if !pending.is_empty() {
        if !a.table_exists {
            out.push_str(&format!("{}\n", a.history.create_sql()));
        }
        let m = &cfg.migrate;
        out.push_str(&work_settings_sql(
            Some(m.ddl_lock_timeout),
            m.statement_timeout,
        ));
        out.push('\n');
    }
    for step in steps(source, &pending, cfg.migrate.atomic) {
        match step {
            Step::Transaction { indices, durable } => {
                let names: Vec<&str> = indices
                    .iter()
                    .map(|&i| source.migrations[i].file.as_str())
                    .collect();
                out.push_str(&format!("-- {}\n", names.join(", ")));
                out.push_str(
                    &Batch::transaction(source, &a.history, &indices, durable).text(source),
                );
                out.push('\n');
            }
            Step::Outside(i) => {
                let m = &source.migrations[i];
                let why = m
                    .outside
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default();
                out.push_str(&format!(
                    "-- {} (outside a transaction, one query per statement: {why})\n",
                    m.file
                ));
                for (_, _, sql) in m.top_level_statements() {
                    out.push_str(sql);
                    out.push('\n');
                }
                out.push_str(&a.history.insert_sql(m, Some(0)));
                out.push_str(";\n");
            }
        }
    }
    if !pending.is_empty() && !cfg.migrate.ddl_lock_timeout.is_zero() {
        out.push_str("RESET lock_timeout;\n");
    }
    out
}
