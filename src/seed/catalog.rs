//! What a YAML seed reads of the catalog: the columns of a table (their types and sequences)
//! and its primary key, with the server's answers taken as text (no value from a seed here).

use std::collections::BTreeMap;

use tokio_postgres::{Client, SimpleQueryMessage};

use super::upsert::Column;
use crate::pg::describe;
use crate::pg::quote::quote_literal;

/// `schema.table` or `table` as written, quoted for SQL.
pub fn quoted_table(written: &str) -> String {
    written
        .split('.')
        .map(crate::pg::quote::quote_ident)
        .collect::<Vec<_>>()
        .join(".")
}

/// The columns of `table` (quoted), or why there are none.
pub async fn columns(client: &Client, table: &str) -> Result<BTreeMap<String, Column>, String> {
    let sql = format!(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod), t.typcategory::text, \
         coalesce(pg_get_serial_sequence({0}, a.attname), '') \
         FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid \
         WHERE a.attrelid = to_regclass({0}) AND a.attnum > 0 AND NOT a.attisdropped",
        quote_literal(table)
    );
    let mut out = BTreeMap::new();
    for r in rows(client, &sql).await? {
        let (Some(name), Some(sql_type), Some(category)) = (r.get(0), r.get(1), r.get(2)) else {
            continue;
        };
        out.insert(
            name.to_string(),
            Column {
                sql_type: sql_type.into(),
                category: category.into(),
                sequence: r.get(3).filter(|s| !s.is_empty()).map(str::to_string),
            },
        );
    }
    if out.is_empty() {
        return Err("no such table (migrations create it before seeds run)".into());
    }
    Ok(out)
}

/// The columns of `table`'s primary key (quoted table), in key order; empty without one.
pub async fn primary_key(client: &Client, table: &str) -> Result<Vec<String>, String> {
    let sql = format!(
        "SELECT a.attname FROM pg_index i, unnest(i.indkey) WITH ORDINALITY k(attnum, n) \
         JOIN pg_attribute a ON a.attnum = k.attnum \
         WHERE i.indrelid = to_regclass({0}) AND i.indisprimary AND a.attrelid = i.indrelid \
         ORDER BY k.n",
        quote_literal(table)
    );
    Ok(rows(client, &sql)
        .await?
        .iter()
        .filter_map(|r| r.get(0).map(str::to_string))
        .collect())
}

async fn rows(client: &Client, sql: &str) -> Result<Vec<tokio_postgres::SimpleQueryRow>, String> {
    let messages = client.simple_query(sql).await.map_err(|e| describe(&e))?;
    Ok(messages
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(r),
            _ => None,
        })
        .collect())
}
