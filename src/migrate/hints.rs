//! First contact with a database that already has the schema: the first migration fails on
//! "already exists" while the history table is empty. That is a database built without the
//! history (`drizzle-kit push`, `prisma db push`, a restore, by hand), or a history table kept
//! elsewhere (each format says how its tool's table is told); the failure says which setting or
//! command fits, and the empty history table this run created is removed again.

use tokio_postgres::error::SqlState;
use tokio_postgres::Client;
use tracing::info;

use super::{History, MigrateError};
use crate::pg::quote::{quote_ident, quote_literal};
use crate::pg::{self};

/// "Already exists", in its forms: the schema is there before its first migration ran.
const ALREADY_THERE: [SqlState; 6] = [
    SqlState::DUPLICATE_TABLE,
    SqlState::DUPLICATE_OBJECT,
    SqlState::DUPLICATE_COLUMN,
    SqlState::DUPLICATE_SCHEMA,
    SqlState::DUPLICATE_FUNCTION,
    SqlState::DUPLICATE_DATABASE,
];

/// Tables shaped like the tool's history table (every one of its telling columns) other than
/// `history` itself, as one text; `''` for a tool whose columns tell nothing.
fn elsewhere_sql(history: &History) -> String {
    let Some(like) = history.look_alike() else {
        return "''".into();
    };
    let (schema, table) = history.names();
    let columns: Vec<String> = like.columns.iter().map(|c| quote_literal(c)).collect();
    format!(
        "coalesce((SELECT string_agg(format('%I.%I', table_schema, table_name), ', ' \
          ORDER BY format('%I.%I', table_schema, table_name)) FROM (SELECT table_schema, table_name \
          FROM information_schema.columns WHERE column_name IN ({}) \
            AND table_schema NOT IN ('pg_catalog', 'information_schema') \
            AND (table_schema, table_name) <> ({}, {}) \
          GROUP BY 1, 2 HAVING count(DISTINCT column_name) = {}) t), '')",
        columns.join(", "),
        quote_literal(schema),
        quote_literal(table),
        like.columns.len()
    )
}

/// Before any DDL, when the history has no row: the first pending statement that creates
/// (without `IF NOT EXISTS`) a table, type or schema the database already has. A catalog that
/// cannot be read says nothing here: the run's own failure still names the way out.
pub async fn already_there(
    client: &Client,
    history: &History,
    source: &super::Source,
    pending: &[usize],
) -> Option<super::Problem> {
    let mut objects = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for m in pending.iter().filter_map(|&i| source.migrations.get(i)) {
        for (_, offset, sql) in m.top_level_statements() {
            let Some(stmt) = crate::statement::classify(sql) else {
                continue;
            };
            for (kind, name) in stmt.must_be_new {
                if seen.insert((kind, name.to_string())) {
                    let (line, column) = m.line_col(offset + super::sql::leading_blank(sql));
                    objects.push((m.file.clone(), line, column, kind, name));
                }
            }
        }
    }
    if objects.is_empty() {
        return None;
    }
    let values: Vec<String> = objects
        .iter()
        .enumerate()
        .map(|(i, (_, _, _, kind, t))| {
            let reg = match t.schema.is_empty() {
                true => quote_ident(&t.name),
                false => format!("{}.{}", quote_ident(&t.schema), quote_ident(&t.name)),
            };
            format!("({i}, '{kind}', {})", quote_literal(&reg))
        })
        .collect();
    let sql = format!(
        "SELECT v.i::text || '|' || {} FROM (VALUES {}) v(i, kind, reg) \
         WHERE CASE v.kind WHEN 'table' THEN to_regclass(v.reg) IS NOT NULL \
           WHEN 'type' THEN to_regtype(v.reg) IS NOT NULL ELSE to_regnamespace(v.reg) IS NOT NULL END \
         ORDER BY v.i LIMIT 1",
        elsewhere_sql(history),
        values.join(", ")
    );
    let answer = pg::first_text(client, &sql).await.ok()??;
    let (i, others) = answer.split_once('|')?;
    let (file, line, column, kind, name) = objects.get(i.parse::<usize>().ok()?)?;
    Some(super::Problem::AlreadyThere {
        file: file.clone(),
        line: *line,
        column: *column,
        object: format!("{kind} {name}"),
        history: history.qualified(),
        elsewhere: Some(others.to_string()).filter(|s| !s.is_empty()),
        look_alike: history.look_alike(),
    })
}

/// Adds the hint to a migration's failure when the history holds no row; `created` says this
/// run created the history table (then it is dropped again if still empty).
pub async fn after_failure(
    client: &Client,
    history: &History,
    err: MigrateError,
    created: bool,
) -> MigrateError {
    let MigrateError::Failed(mut failed) = err else {
        return err;
    };
    let already = failed
        .error
        .sqlstate
        .as_deref()
        .is_some_and(|code| ALREADY_THERE.iter().any(|s| s.code() == code));
    if !already {
        return MigrateError::Failed(failed);
    }
    let qualified = history.qualified();
    let sql = format!(
        "SELECT (SELECT count(*) FROM {qualified}) || '|' || {}",
        elsewhere_sql(history)
    );
    // One text, `<rows>|<other tables>`: the helpers read the first column only.
    let Ok(Some(answer)) = pg::first_text(client, &sql).await else {
        return MigrateError::Failed(failed);
    };
    let (rows, others) = answer.split_once('|').unwrap_or((&answer, ""));
    if rows != "0" {
        return MigrateError::Failed(failed);
    }
    let elsewhere = Some(others).filter(|s| !s.is_empty());
    if let (Some(tables), Some(like)) = (&elsewhere, history.look_alike()) {
        failed.note.push_str(&format!(
            " The history table {qualified} is empty, but {tables} looks like a {} history table: if it \
             is this app's, point db-init at it with {}.",
            like.tool, like.setting
        ));
    }
    failed.note.push_str(
        " The database already has what this first migration creates: if it was built without \
         this history (`drizzle-kit push`, `prisma db push`, a restore, or by hand), record the migrations it already has with \
         `db-init baseline --to <tag>` (or `--migration <tag>`), then run again.",
    );
    if created {
        let drop = format!("DROP TABLE IF EXISTS {qualified}");
        if client.batch_execute(&drop).await.is_ok() {
            info!(table = %qualified, "removed the empty history table this run created");
        }
    }
    MigrateError::Failed(failed)
}
