//! The findings of the pending migrations: each statement's candidates located in its file,
//! confirmed or silenced by the catalog, scaled by the table's size, and judged by the policy
//! (`lint`, `lint_rules`) and the suppression comments.

use std::collections::HashSet;
use std::time::Duration;

use tokio_postgres::Client;

use super::catalog::{self, Facts};
use super::finding::{Finding, Severity};
use super::suppress::{self, Verdict};
use crate::config::{Lint, LintSettings, RuleLevel};
use crate::migrate::Source;
use crate::pg::PgError;
use crate::statement::{self, Candidate, Lock, Needs, Table};

/// A statement's strictest lock on a table that exists before the run.
struct Taken {
    file: String,
    line: usize,
    column: usize,
    lock: Lock,
    table: Table,
}

struct Located {
    file: String,
    line: usize,
    column: usize,
    verdict: Verdict,
    candidate: Candidate,
}

/// One catalog query for all the tables the candidates touch, one more for the functions of
/// column defaults and one per type change, if any.
pub async fn findings(
    client: &Client,
    settings: &LintSettings,
    ddl_lock_timeout: Duration,
    source: &Source,
    pending: &[usize],
) -> Result<Vec<Finding>, PgError> {
    let (located, taken) = locate(source, pending, false);
    // Every table a statement locks, for its invalid indexes, besides those a rule sizes.
    let tables: Vec<&Table> = located
        .iter()
        .filter(|l| !matches!(l.candidate.needs, Needs::Nothing | Needs::Fails))
        .map(|l| &l.candidate.table)
        .chain(taken.iter().map(|t| &t.table))
        .collect();
    let facts = catalog::table_facts(client, &tables).await?;
    let functions: Vec<&str> = located
        .iter()
        .filter_map(|l| match &l.candidate.needs {
            Needs::VolatileDefault(f) | Needs::OldServerDefault(f) => {
                Some(f.iter().map(String::as_str))
            }
            _ => None,
        })
        .flatten()
        .collect();
    let volatile = catalog::volatile_functions(client, &functions).await?;
    let mut out = Vec::new();
    for l in located {
        let c = &l.candidate;
        let f = facts.get(&c.table.to_string());
        let has_rows = f.is_some_and(Facts::has_rows);
        let keep = match &c.needs {
            Needs::Nothing | Needs::Fails => true,
            Needs::Rows => has_rows,
            // A refusal must be sure: the size only says the table may hold rows.
            Needs::FailsWithRows => has_rows && catalog::any_row(client, &c.table).await?,
            Needs::VolatileDefault(fs) => has_rows && fs.iter().any(|f| volatile.contains(f)),
            Needs::OldServerDefault(fs) => {
                has_rows
                    && rewrites_default(f.map_or(0, |f| f.server))
                    && !fs.iter().any(|f| volatile.contains(f))
            }
            Needs::NoNotNullCheck(col) => has_rows && !f.is_some_and(|f| f.proves_not_null(col)),
            Needs::Rewrite { column, to } => {
                has_rows
                    && match to {
                        Some(to) => !catalog::coercible(client, &c.table, column, to).await?,
                        None => true,
                    }
            }
        };
        if keep {
            if let Some(finding) = judge(l, f, settings) {
                out.push(finding);
            }
        }
    }
    out.extend(invalid_indexes(&facts, &taken, settings));
    out.extend(blocked(client, settings, ddl_lock_timeout, taken).await?);
    Ok(out)
}

/// An INVALID index on a table the migrations touch (a `CREATE INDEX CONCURRENTLY` that
/// failed earlier): every write still maintains it, no query uses it, and a pending `CREATE
/// INDEX IF NOT EXISTS` of that name passes over it. Once per table, at its first statement.
fn invalid_indexes(
    facts: &std::collections::HashMap<String, Facts>,
    taken: &[Taken],
    settings: &LintSettings,
) -> Vec<Finding> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for t in taken {
        let name = t.table.to_string();
        let Some(f) = facts.get(&name).filter(|f| !f.invalid_indexes.is_empty()) else {
            continue;
        };
        if !seen.insert(name.clone()) {
            continue;
        }
        let why = format!(
            "{name} has INVALID index(es) {} (a CREATE INDEX CONCURRENTLY failed): every write still maintains them, no query uses them, and CREATE INDEX IF NOT EXISTS of that name does nothing",
            f.invalid_indexes
        );
        let fix = "DROP INDEX CONCURRENTLY the invalid index and build it again with CREATE INDEX CONCURRENTLY (or REINDEX INDEX CONCURRENTLY it)";
        out.extend(about_table(
            t,
            super::ids::INVALID_INDEX_RULE,
            why,
            fix,
            settings,
        ));
    }
    out
}

/// A finding about the table a statement locks rather than about the statement itself.
fn about_table(
    t: &Taken,
    rule: &'static str,
    why: String,
    fix: &'static str,
    settings: &LintSettings,
) -> Option<Finding> {
    let l = Located {
        file: t.file.clone(),
        line: t.line,
        column: t.column,
        verdict: Verdict::None,
        candidate: Candidate {
            rule,
            lock: t.lock,
            table: t.table.clone(),
            needs: Needs::Nothing,
            why: "",
            fix,
        },
    };
    let mut f = judge(l, None, settings)?;
    f.why = why.into();
    Some(f)
}

/// Whether this server fills a new column's non-volatile default by rewriting the table:
/// before PostgreSQL 11 (`server_version_num` 110000). An unknown version (0) is not guessed.
fn rewrites_default(server: i32) -> bool {
    (1..110_000).contains(&server)
}

/// The safe alternative this server can run: some need a newer PostgreSQL than it is.
fn for_server(rule: &str, fix: &'static str, server: Option<i32>) -> &'static str {
    match (rule, server) {
        ("reindex-not-concurrent", Some(v)) if v > 0 && v < 120_000 => {
            "REINDEX CONCURRENTLY needs PostgreSQL 12, this server is older: build a new index with CREATE INDEX CONCURRENTLY, then DROP INDEX CONCURRENTLY the old one"
        }
        ("detach-partition-not-concurrent", Some(v)) if v > 0 && v < 140_000 => {
            "DETACH PARTITION ... CONCURRENTLY needs PostgreSQL 14, this server is older: detach when writes are quiet, with a short lock_timeout"
        }
        ("set-not-null", Some(v)) if v > 0 && v < 120_000 => {
            "before PostgreSQL 12 a valid CHECK does not spare the scan: run it when writes are quiet, with a short lock_timeout"
        }
        _ => fix,
    }
}

/// The sessions that would hold the pending statements up: one finding per table and session,
/// at the first statement whose lock conflicts with the one it holds. With `ddl_lock_timeout`
/// off the wait is unbounded, so any transaction open a second or more counts.
async fn blocked(
    client: &Client,
    settings: &LintSettings,
    ddl_lock_timeout: Duration,
    taken: Vec<Taken>,
) -> Result<Vec<Finding>, PgError> {
    let tables: Vec<&Table> = taken.iter().map(|t| &t.table).collect();
    let older = match ddl_lock_timeout.is_zero() {
        true => Duration::from_secs(1),
        false => ddl_lock_timeout,
    };
    let holders = catalog::holders(client, &tables, older).await?;
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for t in &taken {
        let name = t.table.to_string();
        for h in holders.iter().filter(|h| h.table == name) {
            let conflicts = Lock::from_pg(&h.mode).is_some_and(|held| t.lock.conflicts(held));
            if !conflicts || !seen.insert((name.clone(), h.pid.clone())) {
                continue;
            }
            let why = format!(
                "session pid {} (application {:?}, {}, transaction open {} s) holds {} on {name}: this statement waits behind it, and the app's queries on {name} wait behind this one until ddl_lock_timeout",
                h.pid, h.application, h.state, h.seconds, h.mode
            );
            let fix = "end that session's transaction (pg_terminate_backend if it is stuck), or run when it is done";
            out.extend(about_table(t, super::ids::SESSION_RULE, why, fix, settings));
        }
    }
    Ok(out)
}

/// Without a database (`validate --offline`): every migration of the folder, a table new only
/// when its own file creates it (which ones are applied is unknown), no size: each finding that
/// depends on the table says it could not be sized, at warning.
pub fn offline(settings: &LintSettings, source: &Source) -> Vec<Finding> {
    let all: Vec<usize> = (0..source.migrations.len()).collect();
    locate(source, &all, true)
        .0
        .into_iter()
        .filter_map(|l| judge(l, None, settings))
        .collect()
}

/// Every candidate of the pending statements, with its place and its suppression comments; a
/// table created earlier in the run is new, so nothing said about it matters.
fn locate(source: &Source, pending: &[usize], per_file: bool) -> (Vec<Located>, Vec<Taken>) {
    let mut created: HashSet<Table> = HashSet::new();
    let mut out = Vec::new();
    let mut taken = Vec::new();
    // Each label with the chunk that adds it: a later chunk's use is committed apart
    // (`label_commits`), a use in the same chunk (one query) cannot be.
    let mut labels: Vec<(String, usize)> = Vec::new();
    for m in pending.iter().filter_map(|&i| source.migrations.get(i)) {
        if per_file {
            created.clear();
        }
        // A label added outside a transaction is committed before the next statement.
        labels.clear();
        let in_transaction = m.outside.is_none();
        for (chunk, offset, sql) in m.top_level_statements() {
            let Some(stmt) = statement::classify(sql) else {
                continue;
            };
            let (line, column) = m.line_col(offset + crate::migrate::sql::leading_blank(sql));
            let (own, rest) = around(&m.text, offset, sql);
            if let Some((lock, table)) = &stmt.lock {
                if !table.name.is_empty() && !catalog::is_created(&created, table) {
                    taken.push(Taken {
                        file: m.file.clone(),
                        line,
                        column,
                        lock: *lock,
                        table: table.clone(),
                    });
                }
            }
            let mut candidates = stmt.candidates;
            let same_chunk = |s: &String| labels.iter().any(|(l, c)| l == s && *c == chunk);
            if stmt.strings.iter().any(same_chunk) {
                candidates.push(Candidate {
                    rule: super::ids::ENUM_RULE,
                    lock: Lock::AccessShare,
                    table: Table::default(),
                    needs: Needs::Fails,
                    why: "uses an enum label added earlier in the same query: PostgreSQL refuses it (55P04 unsafe use of new value) and the migration fails",
                    fix: "put `--> statement-breakpoint` after the ADD VALUE (db-init then commits after it, before the label is used), or give the ADD VALUE a migration of its own",
                });
            }
            if in_transaction {
                labels.extend(stmt.adds_labels.into_iter().map(|l| (l, chunk)));
            }
            for candidate in candidates {
                let t = &candidate.table;
                if !t.name.is_empty() && catalog::is_created(&created, t) {
                    continue;
                }
                out.push(Located {
                    file: m.file.clone(),
                    line,
                    column,
                    verdict: suppress::verdict(&m.text, own, rest, candidate.rule),
                    candidate,
                });
            }
            created.extend(stmt.creates);
        }
    }
    (out, taken)
}

/// The statement's own comments (not those of a line it shares with the previous statement)
/// and the rest of its last line.
fn around<'a>(text: &'a str, offset: usize, sql: &'a str) -> (&'a str, &'a str) {
    let before = text.get(..offset).unwrap_or("");
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let shares_line = !before.get(line_start..).unwrap_or("").trim().is_empty();
    let own = match shares_line {
        true => sql.split_once('\n').map_or("", |(_, r)| r),
        false => sql,
    };
    let after = text.get(offset + sql.len()..).unwrap_or("");
    let rest = after.split('\n').next().unwrap_or("");
    (own, rest)
}

/// Severity from the table's size tier, then the rule's override, the suppression and the
/// policy decide whether it is reported and whether it stops the run.
fn judge(l: Located, f: Option<&Facts>, s: &LintSettings) -> Option<Finding> {
    let c = l.candidate;
    // Offline (no facts) a statement that fails only on rows cannot be called failing.
    let fails = (c.needs == Needs::FailsWithRows && f.is_some()) || c.needs == Needs::Fails;
    let sized = !matches!(c.needs, Needs::Nothing | Needs::Fails);
    let bytes = f.filter(|_| sized).map(|f| f.bytes);
    let mut severity = match bytes {
        _ if fails => Severity::Fails,
        None => Severity::Warning,
        Some(b) if b >= 0 && b as u64 >= s.huge => Severity::Critical,
        Some(b) if b >= 0 && b as u64 >= s.large => Severity::Warning,
        Some(_) => Severity::Info,
    };
    let level = s.level(c.rule);
    match level {
        Some(RuleLevel::Off) => return None,
        Some(RuleLevel::Info) => severity = Severity::Info,
        Some(RuleLevel::Warn) => severity = Severity::Warning,
        _ => {}
    }
    let (suppressed, no_reason) = match l.verdict {
        Verdict::By(by) => (Some(by), None),
        Verdict::NoReason(by) => (None, Some(by)),
        Verdict::None => (None, None),
    };
    let stops = suppressed.is_none()
        && match level {
            Some(RuleLevel::Error) => true,
            Some(_) => false,
            None => fails || (s.mode == Lint::Error && severity >= Severity::Warning),
        };
    Some(Finding {
        file: l.file,
        line: l.line,
        column: l.column,
        rule: c.rule,
        severity,
        lock: c.lock,
        table: c.table.to_string(),
        bytes,
        rows: f.filter(|_| sized).map(|f| f.rows),
        size_unknown: sized && f.is_none(),
        why: c.why.into(),
        fix: for_server(c.rule, c.fix, f.map(|f| f.server)),
        fails,
        stops,
        suppressed,
        unhonoured: no_reason,
    })
}

#[cfg(test)]
mod tests {
    use super::{for_server, rewrites_default};

    #[test]
    fn only_a_server_before_11_rewrites_for_a_default() {
        assert!(rewrites_default(100_023));
        assert!(rewrites_default(90_624));
        assert!(!rewrites_default(110_000));
        assert!(!rewrites_default(150_004));
        assert!(!rewrites_default(0), "unknown: not guessed");
    }

    #[test]
    fn a_fix_that_needs_a_newer_server_is_replaced_on_an_older_one() {
        let fix = "REINDEX INDEX CONCURRENTLY";
        assert_eq!(
            for_server("reindex-not-concurrent", fix, Some(150_004)),
            fix
        );
        assert_eq!(for_server("reindex-not-concurrent", fix, None), fix);
        assert!(for_server("reindex-not-concurrent", fix, Some(110_020))
            .contains("needs PostgreSQL 12"));
        assert!(
            for_server("detach-partition-not-concurrent", fix, Some(130_000))
                .contains("needs PostgreSQL 14")
        );
        assert_eq!(
            for_server("detach-partition-not-concurrent", fix, Some(140_000)),
            fix
        );
        assert_eq!(for_server("index-not-concurrent", fix, Some(100_000)), fix);
    }
}
