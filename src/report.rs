//! What `status` and `plan` print: the status table (text or JSON) and the exact SQL of a run.

use serde_json::{Map, Value};

use crate::config::{Config, Database};
use crate::document::{entry, with_message, Document, State};
use crate::lint::Finding;
use crate::migrate::plan::State as Migration;
use crate::migrate::steps::{steps, Batch, Step};
use crate::migrate::{Assessment, Source};
use crate::pg::work_settings_sql;

fn state_name(state: Migration) -> &'static str {
    match state {
        Migration::Applied => "applied",
        Migration::Pending => "pending",
        Migration::OutOfOrder => "out-of-order",
        Migration::Changed => "changed",
    }
}

fn applied_count(a: &Assessment) -> usize {
    a.plan
        .entries
        .iter()
        .filter(|e| e.state == Migration::Applied)
        .count()
}

/// `findings` on the pending statements (`None`: the catalog could not be read).
pub fn status_text(source: &Source, a: &Assessment, findings: Option<&[Finding]>) -> String {
    let mut out = format!(
        "migrations: {} ({:?} layout), history: {}\n",
        source.dir.display(),
        source.layout,
        a.history.qualified()
    );
    if let Some(up) = &a.upgrade {
        out.push_str(&format!(
            "history table: the next run upgrades it to {} ({} row(s) matched)\n",
            up.into,
            up.matched.len()
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
            crate::migrate::format::of(source.layout).shown_version(m),
            m.file
        ));
    }
    for r in &a.plan.missing {
        let v = r.version.map_or_else(|| r.label(), |v| v.to_string());
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
    for f in findings.unwrap_or_default() {
        out.push_str(&format!("finding: {f}\n"));
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

/// An assessed database's own fields, shared by the `status`, `validate` and `plan` entries.
pub fn status_fields(source: &Source, a: &Assessment) -> Map<String, Value> {
    let migrations: Vec<Value> = a
        .plan
        .entries
        .iter()
        .filter_map(|e| {
            let m = source.migrations.get(e.index)?;
            Some(serde_json::json!({
                "file": m.file, "name": m.name, "version": m.version, "state": e.state,
                "checksum": m.checksum, "stored_checksum": e.stored,
                "transaction": if m.outside.is_some() { "outside" } else { "inside" },
                "outside_reason": m.outside,
            }))
        })
        .collect();
    let missing: Vec<Value> = a
        .plan
        .missing
        .iter()
        .map(|r| serde_json::json!({ "version": r.version, "checksum": r.checksum }))
        .collect();
    let ahead: Vec<Value> = a
        .plan
        .ahead
        .iter()
        .map(|r| serde_json::json!({ "version": r.version, "name": r.name, "checksum": r.checksum, "state": "ahead" }))
        .collect();
    let upgrade = a.upgrade.as_ref().map(|up| {
        up.matched
            .iter()
            .map(|u| serde_json::json!({"id": u.id, "name": u.name}))
            .collect::<Vec<_>>()
    });
    let mut f = Map::new();
    f.insert("layout".into(), serde_json::json!(source.layout));
    f.insert("history_table".into(), a.history.qualified().into());
    f.insert("applied".into(), applied_count(a).into());
    f.insert("pending".into(), a.plan.pending().len().into());
    f.insert("migrations".into(), migrations.into());
    f.insert("missing".into(), missing.into());
    f.insert("ahead".into(), ahead.into());
    let problems: Vec<Value> = a.plan.problems.iter().map(with_message).collect();
    f.insert("problems".into(), problems.into());
    let warnings: Vec<Value> = a.plan.warnings.iter().map(with_message).collect();
    f.insert("warnings".into(), warnings.into());
    f.insert("history_upgrade".into(), serde_json::json!(upgrade));
    f
}

/// What `status` says of an assessed database, and the code it exits with.
pub fn status_state(a: &Assessment) -> (State, u8) {
    match (a.plan.problems.is_empty(), a.plan.pending().len()) {
        (false, _) => (State::Invalid, 7),
        (true, 0) => (State::UpToDate, 0),
        (true, _) => (State::Pending, 10),
    }
}

/// The states a `status` entry can take.
pub const STATUS_STATES: &[State] = &[
    State::UpToDate,
    State::Pending,
    State::Invalid,
    State::Error,
];

/// `status --format json` on one database: the fleet's document with one entry.
pub fn status_json(
    db: &Database,
    source: &Source,
    a: &Assessment,
    findings: Option<&[Finding]>,
) -> String {
    let (state, code) = status_state(a);
    let name = crate::document::database_name(db);
    let mut e = entry(Some(&name), Some(&db.redacted), state, Some(code), None);
    e.extend(status_fields(source, a));
    e.insert("findings".into(), serde_json::json!(findings));
    let summary = format!(
        "{} applied, {} pending, {} problem(s), {} warning(s)",
        applied_count(a),
        a.plan.pending().len(),
        a.plan.problems.len(),
        a.plan.warnings.len()
    );
    Document {
        command: "status",
        states: STATUS_STATES,
        empty: State::UpToDate,
        exit_code: Some(code),
        summary,
        extra: Map::new(),
        entries: vec![(state, Value::Object(e))],
    }
    .text()
}

/// One transaction (or one migration outside a transaction) of a plan.
#[derive(Debug, serde::Serialize)]
pub struct PlanStep {
    /// The files whose statements (and history rows) this step sends.
    pub migrations: Vec<String>,
    /// `inside` (one transaction), `part` (one of the commits of a migration split after an
    /// ADD VALUE), `outside` (one query per statement).
    pub transaction: &'static str,
    /// Why it runs this way, as the text plan's comment says.
    pub note: String,
    pub sql: String,
}

/// The steps `run` would send after its preamble, in order: the same steps the applier executes.
pub fn plan_steps(source: &Source, a: &Assessment, cfg: &Config) -> Vec<PlanStep> {
    let pending = a.plan.pending();
    let file = |i: usize| source.migrations.get(i).map(|m| m.file.clone());
    let mut out = Vec::new();
    for step in steps(source, &pending, cfg.migrate.atomic) {
        match step {
            Step::Transaction { indices, durable } => {
                let names: Vec<String> = indices.iter().filter_map(|&i| file(i)).collect();
                out.push(PlanStep {
                    note: names.join(", "),
                    migrations: names,
                    transaction: "inside",
                    sql: Batch::transaction(source, &a.history, &indices, durable).text(source),
                });
            }
            Step::Parts {
                index,
                parts,
                durable,
            } => {
                let Some(m) = source.migrations.get(index) else {
                    continue;
                };
                for (k, chunks) in parts.iter().enumerate() {
                    let last = k + 1 == parts.len();
                    let why = match last {
                        false => "committed after ADD VALUE: the next part uses its enum label",
                        true => "with its history row",
                    };
                    let batch = Batch::part(
                        source,
                        &a.history,
                        index,
                        chunks.clone(),
                        last,
                        durable && last,
                    );
                    out.push(PlanStep {
                        migrations: vec![m.file.clone()],
                        transaction: "part",
                        note: format!(
                            "{} part {} of {} (statements {}..{}, {why})",
                            m.file,
                            k + 1,
                            parts.len(),
                            chunks.start + 1,
                            chunks.end
                        ),
                        sql: batch.text(source),
                    });
                }
            }
            Step::Outside(i) => {
                let Some(m) = source.migrations.get(i) else {
                    continue;
                };
                let why = m
                    .outside
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default();
                let mut sql = String::new();
                for (_, _, statement) in m.top_level_statements() {
                    sql.push_str(statement);
                    sql.push('\n');
                }
                sql.push_str(&a.history.insert_sql(m, Some(0)));
                sql.push_str(";\n");
                out.push(PlanStep {
                    migrations: vec![m.file.clone()],
                    transaction: "outside",
                    note: format!(
                        "{} (outside a transaction, one query per statement: {why})",
                        m.file
                    ),
                    sql,
                });
            }
        }
    }
    out
}

/// The SQL `run` would send, in order. The migrations' part; the seeds' part comes from
/// `seed::plan` (it reads the catalog).
pub fn plan_text(source: &Source, a: &Assessment, cfg: &Config) -> String {
    let pending = a.plan.pending();
    let mut out = format!(
        "-- {} migration(s) to apply, history in {}\n",
        pending.len(),
        a.history.qualified()
    );
    if let Some(up) = &a.upgrade {
        out.push_str(&format!(
            "-- the history table is upgraded to {} first:\n",
            up.into
        ));
        for m in &up.matched {
            out.push_str(&format!("--   row {} is {}\n", m.id, m.name));
        }
        out.push_str(&a.history.upgrade_sql(up));
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
    for step in plan_steps(source, a, cfg) {
        // A transaction's batch text has no final newline; the statements outside one do.
        let end = if step.transaction == "outside" {
            ""
        } else {
            "\n"
        };
        out.push_str(&format!("-- {}\n{}{end}", step.note, step.sql));
    }
    if !pending.is_empty() && !cfg.migrate.ddl_lock_timeout.is_zero() {
        out.push_str("RESET lock_timeout;\n");
    }
    out
}
