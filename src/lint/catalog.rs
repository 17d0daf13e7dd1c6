//! The live catalog's say on each candidate, read-only and only when something is pending:
//! whether the table exists (or is created earlier in the same run), its size and rows, the
//! volatility of a default's functions, a valid CHECK that proves NOT NULL, a binary-coercible
//! cast. All of the SQL the lock analysis sends is here.

use std::collections::{HashMap, HashSet};

use tokio_postgres::{Client, SimpleQueryMessage};

use crate::pg::quote::{quote_ident, quote_literal};
use crate::pg::PgError;
use crate::statement::Table;

/// What the catalog knows of one table.
#[derive(Default)]
pub struct Facts {
    pub exists: bool,
    pub bytes: i64,
    pub rows: i64,
    not_null_checks: String,
    /// Indexes a failed `CREATE INDEX CONCURRENTLY` left INVALID, comma-separated.
    pub invalid_indexes: String,
    /// `server_version_num`: a safe alternative may need a newer server.
    pub server: i32,
}

impl Facts {
    pub fn has_rows(&self) -> bool {
        self.exists && (self.rows > 0 || self.bytes > 0)
    }

    /// A valid `CHECK (col IS NOT NULL)` lets `SET NOT NULL` skip its scan (PostgreSQL 12+).
    pub fn proves_not_null(&self, column: &str) -> bool {
        proves_not_null(&self.not_null_checks, column)
    }
}

/// Created earlier in the run: by the name as written, or unqualified (the search path's).
pub fn is_created(created: &HashSet<Table>, t: &Table) -> bool {
    created.contains(t)
        || created
            .iter()
            .any(|c| c.name == t.name && (c.schema.is_empty() || t.schema.is_empty()))
}

pub async fn table_facts(
    client: &Client,
    tables: &[&Table],
) -> Result<HashMap<String, Facts>, PgError> {
    let mut out = HashMap::new();
    if tables.is_empty() {
        return Ok(out);
    }
    let mut seen = HashSet::new();
    let values: Vec<String> = tables
        .iter()
        .filter(|t| seen.insert(t.to_string()))
        .map(|t| {
            format!(
                "({}, {})",
                quote_literal(&t.to_string()),
                quote_literal(&regclass(t))
            )
        })
        .collect();
    // to_regclass never fails on a missing table; reltuples is -1 before the first ANALYZE.
    let sql = format!(
        "SELECT v.name, (c.oid IS NOT NULL)::text, coalesce(pg_relation_size(c.oid), 0)::text, \
         greatest(coalesce(c.reltuples, 0), 0)::bigint::text, \
         coalesce((SELECT string_agg(pg_get_constraintdef(k.oid), ' ; ') FROM pg_constraint k \
                   WHERE k.conrelid = c.oid AND k.contype = 'c' AND k.convalidated), ''), \
         coalesce((SELECT string_agg(quote_ident(i.relname), ', ' ORDER BY i.relname) FROM pg_index x \
                   JOIN pg_class i ON i.oid = x.indexrelid WHERE x.indrelid = c.oid AND NOT x.indisvalid), ''), \
         current_setting('server_version_num') \
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
                    invalid_indexes: text(5),
                    server: text(6).parse().unwrap_or(0),
                },
            );
        }
    }
    Ok(out)
}

/// Whether the table holds at least one row (read once, for a refusal only).
pub async fn any_row(client: &Client, t: &Table) -> Result<bool, PgError> {
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
pub async fn volatile_functions(
    client: &Client,
    names: &[&str],
) -> Result<HashSet<String>, PgError> {
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

/// A session that holds a lock on a table the pending statements lock, inside a transaction
/// open longer than `older_than`.
pub struct Holder {
    pub table: String,
    pub pid: String,
    pub mode: String,
    pub application: String,
    pub seconds: String,
    pub state: String,
}

/// The sessions that now hold a lock on these tables with a transaction older than
/// `older_than`: the migration would queue behind them (and the app's queries behind it).
pub async fn holders(
    client: &Client,
    tables: &[&Table],
    older_than: std::time::Duration,
) -> Result<Vec<Holder>, PgError> {
    if tables.is_empty() {
        return Ok(Vec::new());
    }
    let values: Vec<String> = tables
        .iter()
        .map(|t| {
            format!(
                "({}, {})",
                quote_literal(&t.to_string()),
                quote_literal(&regclass(t))
            )
        })
        .collect();
    let sql = format!(
        "SELECT v.name, l.pid::text, l.mode, coalesce(a.application_name, ''),          extract(epoch FROM now() - a.xact_start)::bigint::text, coalesce(a.state, '')          FROM (VALUES {}) v(name, reg)          JOIN pg_locks l ON l.locktype = 'relation' AND l.granted AND l.relation = to_regclass(v.reg)          JOIN pg_stat_activity a ON a.pid = l.pid          WHERE l.pid <> pg_backend_pid() AND a.xact_start < now() - interval '{} milliseconds'          ORDER BY a.xact_start",
        values.join(", "),
        older_than.as_millis()
    );
    let rows = client.simple_query(&sql).await.map_err(|e| {
        PgError::new(
            "reading the sessions that hold locks on the tables the pending migrations touch",
            e,
        )
    })?;
    Ok(rows
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => {
                let text = |i: usize| r.get(i).unwrap_or_default().to_string();
                Some(Holder {
                    table: text(0),
                    pid: text(1),
                    mode: text(2),
                    application: text(3),
                    seconds: text(4),
                    state: text(5),
                })
            }
            _ => None,
        })
        .collect())
}

/// Whether changing `table.column` to `to` (type, modifier) is binary-coercible: the same type
/// with a looser modifier, or a binary cast (`pg_cast.castmethod = 'b'`) to an unmodified type
/// (`varchar(n)` to `text`). Then PostgreSQL rewrites nothing.
pub async fn coercible(
    client: &Client,
    table: &Table,
    column: &str,
    to: &(String, i32),
) -> Result<bool, PgError> {
    let (ty, modifier) = to;
    let sql = format!(
        "SELECT coalesce(bool_or((n.oid = a.atttypid AND ({m} = -1 OR (a.atttypmod <> -1 AND {m} >= a.atttypmod)))          OR ({m} = -1 AND EXISTS (SELECT 1 FROM pg_cast c WHERE c.castsource = a.atttypid          AND c.casttarget = n.oid AND c.castmethod = 'b'))), false)::text          FROM pg_attribute a, (SELECT to_regtype({ty})::oid) n(oid)          WHERE a.attrelid = to_regclass({rel}) AND a.attname = {col} AND NOT a.attisdropped",
        m = modifier,
        ty = quote_literal(ty),
        rel = quote_literal(&regclass(table)),
        col = quote_literal(column),
    );
    let got = crate::pg::first_text(client, &sql)
        .await
        .map_err(|e| PgError::new(format!("reading the type of {table}.{column}"), e))?;
    Ok(got.as_deref() == Some("true"))
}

/// A relation of the database as a trace sees it: its storage file, to tell a rewrite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    pub oid: String,
    pub name: String,
    pub filenode: String,
}

/// Every table, materialized view and index outside the system schemas, with its file.
pub async fn relations(client: &Client) -> Result<Vec<Relation>, PgError> {
    let sql = "SELECT c.oid::text, quote_ident(n.nspname) || '.' || quote_ident(c.relname), c.relfilenode::text \
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
               WHERE c.relkind IN ('r', 'm', 'p', 'i', 'I') AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
               AND n.nspname NOT LIKE 'pg\\_toast%'";
    let rows = rows(client, sql, "reading the relations and their files").await?;
    Ok(rows
        .into_iter()
        .map(|r| Relation {
            oid: r.first().cloned().unwrap_or_default(),
            name: r.get(1).cloned().unwrap_or_default(),
            filenode: r.get(2).cloned().unwrap_or_default(),
        })
        .collect())
}

/// The relation locks this session holds, as (mode as `pg_locks` names it, relation oid,
/// relation name), outside the system schemas and TOAST, on relations that still exist (a
/// rewrite's transient heap is gone by the time the statement returns).
pub async fn own_locks(client: &Client) -> Result<Vec<(String, String, String)>, PgError> {
    let sql = "SELECT l.mode, l.relation::text, quote_ident(n.nspname) || '.' || quote_ident(c.relname) \
               FROM pg_locks l JOIN pg_class c ON c.oid = l.relation JOIN pg_namespace n ON n.oid = c.relnamespace \
               WHERE l.pid = pg_backend_pid() AND l.locktype = 'relation' AND l.granted \
               AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
               AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%' \
               ORDER BY 3, 1";
    let rows = rows(client, sql, "reading the locks this session holds").await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let get = |i: usize| r.get(i).cloned().unwrap_or_default();
            (get(0), get(1), get(2))
        })
        .collect())
}

async fn rows(client: &Client, sql: &str, what: &str) -> Result<Vec<Vec<String>>, PgError> {
    let messages = client
        .simple_query(sql)
        .await
        .map_err(|e| PgError::new(what, e))?;
    Ok(messages
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(
                (0..r.len())
                    .map(|i| r.get(i).unwrap_or_default().to_string())
                    .collect(),
            ),
            _ => None,
        })
        .collect())
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
}
