//! The live catalog's say on each candidate, read-only and only when something is pending:
//! whether the table exists (or is created earlier in the same run), its size and rows, the
//! volatility of a default's functions, a valid CHECK that proves NOT NULL. A table that is new or
//! empty silences a finding; one that has rows makes it a warning, or an error when the statement
//! would fail.

use std::collections::{HashMap, HashSet};

use tokio_postgres::{Client, SimpleQueryMessage};

use super::rules::{self, Candidate, Lock, Needs, Table};
use crate::migrate::Source;
use crate::pg::quote::{quote_ident, quote_literal};
use crate::pg::PgError;

/// A confirmed finding, where it is and what the catalog said.
#[derive(Debug, Clone)]
pub struct Finding {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub rule: &'static str,
    pub lock: Lock,
    pub table: String,
    /// `"12 MB, ~150000 rows"`, or empty when the rule does not depend on the table.
    pub size: String,
    pub why: &'static str,
    pub fix: &'static str,
    /// The statement would fail: the migration cannot succeed as written.
    pub fails: bool,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}:{}: [{}] {}",
            self.file, self.line, self.column, self.rule, self.lock
        )?;
        if !self.table.is_empty() {
            write!(f, " on {}", self.table)?;
        }
        if !self.size.is_empty() {
            write!(f, " ({})", self.size)?;
        }
        write!(f, ": {}; instead: {}", self.why, self.fix)
    }
}

struct Located {
    file: String,
    line: usize,
    column: usize,
    candidate: Candidate,
}

/// What the catalog knows of one table.
#[derive(Default)]
struct Facts {
    exists: bool,
    bytes: i64,
    rows: i64,
    not_null_checks: String,
}

/// The findings of the pending migrations, in order. One catalog query for all the tables
/// they touch, one more for the functions of column defaults, if any.
pub async fn findings(
    client: &Client,
    source: &Source,
    pending: &[usize],
) -> Result<Vec<Finding>, PgError> {
    let mut created: HashSet<Table> = HashSet::new();
    let mut located = Vec::new();
    for m in pending.iter().filter_map(|&i| source.migrations.get(i)) {
        for (_, offset, sql) in m.top_level_statements() {
            let Some(stmt) = rules::classify(sql) else {
                continue;
            };
            let (line, column) = m.line_col(offset + crate::migrate::sql::leading_blank(sql));
            for candidate in stmt.candidates {
                if candidate.needs != Needs::Nothing && is_created(&created, &candidate.table) {
                    continue;
                }
                located.push(Located {
                    file: m.file.clone(),
                    line,
                    column,
                    candidate,
                });
            }
            created.extend(stmt.creates);
        }
    }
    let tables: Vec<&Table> = located
        .iter()
        .filter(|l| l.candidate.needs != Needs::Nothing)
        .map(|l| &l.candidate.table)
        .collect();
    let facts = table_facts(client, &tables).await?;
    let functions: Vec<&str> = located
        .iter()
        .filter_map(|l| match &l.candidate.needs {
            Needs::VolatileDefault(f) => Some(f.iter().map(String::as_str)),
            _ => None,
        })
        .flatten()
        .collect();
    let volatile = volatile_functions(client, &functions).await?;
    let mut out = Vec::new();
    for l in located {
        let c = &l.candidate;
        let f = facts.get(&c.table.to_string());
        let has_rows = f.is_some_and(|f| f.exists && (f.rows > 0 || f.bytes > 0));
        let keep = match &c.needs {
            Needs::Nothing => true,
            Needs::Rows => has_rows,
            // A refusal must be sure: the size only says the table may hold rows.
            Needs::FailsWithRows => has_rows && any_row(client, &c.table).await?,
            Needs::VolatileDefault(fs) => has_rows && fs.iter().any(|f| volatile.contains(f)),
            Needs::NoNotNullCheck(col) => {
                has_rows && !f.is_some_and(|f| proves_not_null(&f.not_null_checks, col))
            }
        };
        if !keep {
            continue;
        }
        let size = match (&c.needs, f) {
            (Needs::Nothing, _) | (_, None) => String::new(),
            (_, Some(f)) => format!("{}, ~{} rows", bytes(f.bytes), f.rows.max(0)),
        };
        out.push(Finding {
            file: l.file,
            line: l.line,
            column: l.column,
            rule: c.rule,
            lock: c.lock,
            table: c.table.to_string(),
            size,
            why: c.why,
            fix: c.fix,
            fails: c.needs == Needs::FailsWithRows,
        });
    }
    Ok(out)
}

/// Created earlier in the run: by the name as written, or unqualified (the search path's).
fn is_created(created: &HashSet<Table>, t: &Table) -> bool {
    created.contains(t)
        || created
            .iter()
            .any(|c| c.name == t.name && (c.schema.is_empty() || t.schema.is_empty()))
}

async fn table_facts(
    client: &Client,
    tables: &[&Table],
) -> Result<HashMap<String, Facts>, PgError> {
    let mut out = HashMap::new();
    if tables.is_empty() {
        return Ok(out);
    }
    let values: Vec<String> = tables
        .iter()
        .map(|t| {
            let reg = match t.schema.is_empty() {
                true => quote_ident(&t.name),
                false => format!("{}.{}", quote_ident(&t.schema), quote_ident(&t.name)),
            };
            format!(
                "({}, {})",
                quote_literal(&t.to_string()),
                quote_literal(&reg)
            )
        })
        .collect();
    // to_regclass never fails on a missing table; reltuples is -1 before the first ANALYZE.
    let sql = format!(
        "SELECT v.name, (c.oid IS NOT NULL)::text, coalesce(pg_relation_size(c.oid), 0)::text, \
         greatest(coalesce(c.reltuples, 0), 0)::bigint::text, \
         coalesce((SELECT string_agg(pg_get_constraintdef(k.oid), ' ; ') FROM pg_constraint k \
                   WHERE k.conrelid = c.oid AND k.contype = 'c' AND k.convalidated), '') \
         FROM (VALUES {}) v(name, reg) LEFT JOIN pg_class c ON c.oid = to_regclass(v.reg)",
        values.join(", ")
    );
    let rows = client.simple_query(&sql).await.map_err(|e| {
        PgError::new(
            "reading the sizes of the tables the pending migrations touch",
            e,
        )
    })?;
    for m in rows {
        if let SimpleQueryMessage::Row(r) = m {
            let text = |i: usize| r.get(i).unwrap_or_default().to_string();
            out.insert(
                text(0),
                Facts {
                    exists: text(1) == "true",
                    bytes: text(2).parse().unwrap_or(0),
                    rows: text(3).parse().unwrap_or(0),
                    not_null_checks: text(4),
                },
            );
        }
    }
    Ok(out)
}

/// Whether the table holds at least one row (read once, for a refusal only).
async fn any_row(client: &Client, t: &Table) -> Result<bool, PgError> {
    let sql = format!("SELECT EXISTS (SELECT 1 FROM {})::text", regclass(t));
    let got = crate::pg::first_text(client, &sql)
        .await
        .map_err(|e| PgError::new(format!("checking whether {t} has rows"), e))?;
    Ok(got.as_deref() == Some("true"))
}

/// The table's name as SQL, quoted part by part.
fn regclass(t: &Table) -> String {
    match t.schema.is_empty() {
        true => quote_ident(&t.name),
        false => format!("{}.{}", quote_ident(&t.schema), quote_ident(&t.name)),
    }
}

/// Of these function names, the ones with a volatile overload (`pg_proc.provolatile = 'v'`).
async fn volatile_functions(client: &Client, names: &[&str]) -> Result<HashSet<String>, PgError> {
    if names.is_empty() {
        return Ok(HashSet::new());
    }
    let list: Vec<String> = names.iter().map(|n| quote_literal(n)).collect();
    let sql = format!(
        "SELECT DISTINCT proname::text FROM pg_proc WHERE provolatile = 'v' AND proname::text IN ({})",
        list.join(", ")
    );
    let found = crate::pg::column(client, &sql)
        .await
        .map_err(|e| PgError::new("reading the volatility of column defaults", e))?;
    Ok(found.into_iter().collect())
}

/// A valid `CHECK (col IS NOT NULL)` lets `SET NOT NULL` skip its scan (PostgreSQL 12+).
fn proves_not_null(checks: &str, column: &str) -> bool {
    let want = [
        format!("({column} IS NOT NULL)"),
        format!("(\"{column}\" IS NOT NULL)"),
    ];
    checks
        .split(" ; ")
        .any(|c| want.iter().any(|w| c.contains(w.as_str())))
}

fn bytes(n: i64) -> String {
    match n {
        n if n >= 1 << 30 => format!("{:.1} GB", n as f64 / (1u64 << 30) as f64),
        n if n >= 1 << 20 => format!("{:.1} MB", n as f64 / (1u64 << 20) as f64),
        n if n >= 1 << 10 => format!("{} kB", n >> 10),
        n => format!("{n} bytes"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_valid_check_proves_not_null() {
        assert!(proves_not_null("CHECK ((email IS NOT NULL))", "email"));
        assert!(!proves_not_null("CHECK ((email IS NOT NULL))", "name"));
        assert!(!proves_not_null("", "email"));
    }

    #[test]
    fn a_table_created_earlier_is_new() {
        let t = |s: &str, n: &str| Table {
            schema: s.into(),
            name: n.into(),
        };
        let created: HashSet<Table> = [t("", "users")].into_iter().collect();
        assert!(is_created(&created, &t("", "users")));
        assert!(is_created(&created, &t("public", "users")));
        assert!(!is_created(&created, &t("", "orders")));
    }

    #[test]
    fn sizes_read_as_people_say_them() {
        assert_eq!(bytes(512), "512 bytes");
        assert_eq!(bytes(8192), "8 kB");
        assert_eq!(bytes(3 << 20), "3.0 MB");
    }
}
