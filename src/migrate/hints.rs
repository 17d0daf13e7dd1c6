//! First contact with a database that already has the schema: the first migration fails on
//! "already exists" while the history table is empty. That is a database built by
//! `drizzle-kit push` (or by hand), or a history table kept elsewhere; the failure says which
//! setting or command fits, and the empty history table this run created is removed again.

use tokio_postgres::error::SqlState;
use tokio_postgres::Client;
use tracing::info;

use super::{History, MigrateError};
use crate::pg::quote::quote_literal;
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
    let (schema, table) = history.names();
    let sql = format!(
        "SELECT (SELECT count(*) FROM {qualified}) || '|' || coalesce((SELECT string_agg(format('%I.%I', h.table_schema, h.table_name), ', ' ORDER BY 1) \
          FROM information_schema.columns h JOIN information_schema.columns c \
            ON c.table_schema = h.table_schema AND c.table_name = h.table_name AND c.column_name = 'created_at' \
          WHERE h.column_name = 'hash' AND h.table_schema NOT IN ('pg_catalog', 'information_schema') \
            AND (h.table_schema, h.table_name) <> ({}, {})), '')",
        quote_literal(schema),
        quote_literal(table)
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
    if let Some(tables) = &elsewhere {
        failed.note.push_str(&format!(
            " The history table {qualified} is empty, but {tables} looks like a Drizzle history table: if it \
             is this app's, point db-init at it with drizzle.schema / drizzle.table (Drizzle's \
             migrationsSchema / migrationsTable)."
        ));
    }
    failed.note.push_str(
        " The database already has what this first migration creates: if it was built by \
         `drizzle-kit push` or by hand, record the migrations it already has with \
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
