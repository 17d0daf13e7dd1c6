//! Declarative YAML seeds: rows upserted with `INSERT ... ON CONFLICT (key)`, values bound as
//! parameters and cast to the column types the catalog reports.

use std::collections::BTreeMap;

use serde_norway::Value;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, SimpleQueryMessage};

use super::{runs, SeedError, SeedFile};
use crate::pg::quote::{quote_ident, quote_literal};
use crate::pg::{describe, PgError, ServerError, Session};

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Spec {
    table: String,
    key: KeyColumns,
    #[serde(default)]
    on_conflict: OnConflict,
    rows: Vec<serde_norway::Mapping>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(untagged)]
enum KeyColumns {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
enum OnConflict {
    #[default]
    Update,
    Ignore,
}

struct Column {
    /// `format_type()` of the column: trusted text from the catalog, safe to put in SQL.
    sql_type: String,
    /// pg_type.typcategory: `A` array, `U` with json/jsonb names, ...
    category: String,
}

impl Column {
    fn is_json(&self) -> bool {
        self.sql_type == "json" || self.sql_type == "jsonb"
    }
}

/// The INSERT statements (a few if the rows need more than PostgreSQL's parameter limit) and
/// their parameters.
pub struct Prepared {
    pub statements: Vec<(String, Vec<Option<String>>)>,
    /// For error reports: (row number, column, value, SQL type) of every parameter, per statement.
    cells: Vec<Vec<Cell>>,
}

/// One bound value and where it came from, to name the row and column the server refused.
struct Cell {
    row: usize,
    column: String,
    value: Option<String>,
    sql_type: String,
}

const MAX_PARAMS: usize = 30_000;

/// Checks the file's shape without a database, so a broken seed fails before anything runs.
pub fn check(seed: &SeedFile) -> Result<(), SeedError> {
    parse(seed).map(|_| ())
}

fn parse(seed: &SeedFile) -> Result<Spec, SeedError> {
    serde_norway::from_str(&seed.text).map_err(|e| SeedError::Invalid {
        file: seed.name.clone(),
        message: e.to_string(),
    })
}

async fn prepare(client: &Client, seed: &SeedFile) -> Result<Prepared, SeedError> {
    let invalid = |message: String| SeedError::Invalid {
        file: seed.name.clone(),
        message,
    };
    let spec = parse(seed)?;
    let key = match spec.key {
        KeyColumns::One(k) => vec![k],
        KeyColumns::Many(k) => k,
    };
    if key.is_empty() {
        return Err(invalid("`key` names no column".into()));
    }
    let table = spec
        .table
        .split('.')
        .map(quote_ident)
        .collect::<Vec<_>>()
        .join(".");
    let columns = columns(client, &table)
        .await
        .map_err(|message| invalid(format!("table `{}`: {message}", spec.table)))?;

    // The union of the rows' columns, in first-seen order; a row without one gets DEFAULT.
    let mut names: Vec<String> = Vec::new();
    let mut rows: Vec<BTreeMap<String, Value>> = Vec::new();
    for (i, row) in spec.rows.iter().enumerate() {
        let mut values = BTreeMap::new();
        for (k, v) in row {
            let Some(name) = k.as_str() else {
                return Err(invalid(format!(
                    "row {}: column name {k:?} is not a string",
                    i + 1
                )));
            };
            if !columns.contains_key(name) {
                return Err(invalid(format!(
                    "row {}: table `{}` has no column `{name}`",
                    i + 1,
                    spec.table
                )));
            }
            if !names.iter().any(|n| n == name) {
                names.push(name.to_string());
            }
            values.insert(name.to_string(), v.clone());
        }
        for k in &key {
            if !values.contains_key(k) {
                return Err(invalid(format!(
                    "row {}: key column `{k}` is missing",
                    i + 1
                )));
            }
        }
        rows.push(values);
    }
    if rows.is_empty() {
        return Ok(Prepared {
            statements: Vec::new(),
            cells: Vec::new(),
        });
    }
    let quoted: Vec<String> = names.iter().map(|n| quote_ident(n)).collect();
    let conflict = match (
        spec.on_conflict,
        names.iter().filter(|n| !key.contains(n)).count(),
    ) {
        (OnConflict::Ignore, _) | (OnConflict::Update, 0) => "DO NOTHING".to_string(),
        (OnConflict::Update, _) => {
            let changing: Vec<String> = names
                .iter()
                .filter(|n| !key.contains(n))
                .map(|n| quote_ident(n))
                .collect();
            let sets: Vec<String> = changing
                .iter()
                .map(|c| format!("{c} = excluded.{c}"))
                .collect();
            let target: Vec<String> = changing.iter().map(|c| format!("{table}.{c}")).collect();
            let incoming: Vec<String> = changing.iter().map(|c| format!("excluded.{c}")).collect();
            // Rows that already hold these values are left alone: no new row versions on
            // every pod start.
            format!(
                "DO UPDATE SET {} WHERE ({}) IS DISTINCT FROM ({})",
                sets.join(", "),
                target.join(", "),
                incoming.join(", ")
            )
        }
    };
    let key_sql = key
        .iter()
        .map(|k| quote_ident(k))
        .collect::<Vec<_>>()
        .join(", ");
    let per_statement = (MAX_PARAMS / names.len()).max(1);

    let mut prepared = Prepared {
        statements: Vec::new(),
        cells: Vec::new(),
    };
    for (chunk_no, chunk) in rows.chunks(per_statement).enumerate() {
        let mut params = Vec::new();
        let mut cells = Vec::new();
        let mut tuples = Vec::new();
        for (j, row) in chunk.iter().enumerate() {
            let row_no = chunk_no * per_statement + j + 1;
            let mut exprs = Vec::new();
            for name in &names {
                let Some(value) = row.get(name) else {
                    exprs.push("DEFAULT".to_string());
                    continue;
                };
                let col = &columns[name];
                let text = to_text(value, col)
                    .map_err(|m| invalid(format!("row {row_no}, column `{name}`: {m}")))?;
                params.push(text.clone());
                cells.push(Cell {
                    row: row_no,
                    column: name.clone(),
                    value: text,
                    sql_type: col.sql_type.clone(),
                });
                exprs.push(cast(params.len(), col));
            }
            tuples.push(format!("({})", exprs.join(", ")));
        }
        let sql = format!(
            "INSERT INTO {table} ({}) VALUES {} ON CONFLICT ({key_sql}) {conflict}",
            quoted.join(", "),
            tuples.join(", ")
        );
        prepared.statements.push((sql, params));
        prepared.cells.push(cells);
    }
    Ok(prepared)
}

fn cast(n: usize, col: &Column) -> String {
    if col.category == "A" {
        format!(
            "ARRAY(SELECT jsonb_array_elements_text(CAST(${n}::text AS jsonb)))::{}",
            col.sql_type
        )
    } else {
        format!("CAST(${n}::text AS {})", col.sql_type)
    }
}

/// The parameter text of a YAML value for a column, or why it cannot fit.
fn to_text(value: &Value, col: &Column) -> Result<Option<String>, String> {
    let json = || serde_json::to_string(value).map_err(|e| e.to_string());
    if col.is_json() {
        return match value {
            Value::Null => Ok(None),
            _ => json().map(Some),
        };
    }
    match value {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        Value::Number(n) => Ok(Some(n.to_string())),
        Value::Bool(b) => Ok(Some(b.to_string())),
        Value::Sequence(_) if col.category == "A" => json().map(Some),
        Value::Sequence(_) => Err(format!("a list does not fit type {}", col.sql_type)),
        Value::Mapping(_) => Err(format!(
            "a mapping does not fit type {} (only json/jsonb)",
            col.sql_type
        )),
        Value::Tagged(_) => Err("tagged YAML values are not supported".into()),
    }
}

async fn columns(client: &Client, table: &str) -> Result<BTreeMap<String, Column>, String> {
    let sql = format!(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod), t.typcategory::text \
         FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid \
         WHERE a.attrelid = to_regclass({}) AND a.attnum > 0 AND NOT a.attisdropped",
        quote_literal(table)
    );
    let messages = client.simple_query(&sql).await.map_err(|e| describe(&e))?;
    let mut out = BTreeMap::new();
    for m in messages {
        if let SimpleQueryMessage::Row(r) = m {
            let (Some(name), Some(sql_type), Some(category)) = (r.get(0), r.get(1), r.get(2))
            else {
                continue;
            };
            out.insert(
                name.to_string(),
                Column {
                    sql_type: sql_type.into(),
                    category: category.into(),
                },
            );
        }
    }
    if out.is_empty() {
        return Err("no such table (migrations create it before seeds run)".into());
    }
    Ok(out)
}

/// Runs the statements; the caller holds the transaction.
async fn execute(client: &Client, seed: &SeedFile, prepared: &Prepared) -> Result<(), SeedError> {
    for (k, (sql, params)) in prepared.statements.iter().enumerate() {
        let refs: Vec<&(dyn ToSql + Sync)> =
            params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        if let Err(e) = client.execute(sql.as_str(), &refs).await {
            return Err(locate(client, seed, &prepared.cells[k], e).await);
        }
    }
    Ok(())
}

/// Names the row and column whose value the server refused, by casting each value alone.
async fn locate(
    client: &Client,
    seed: &SeedFile,
    cells: &[Cell],
    e: tokio_postgres::Error,
) -> SeedError {
    let Some(db) = e.as_db_error() else {
        return PgError::new(format!("running {}", seed.name), e).into();
    };
    let mut place = seed.name.clone();
    if db.code().code().starts_with("22") {
        // The failed INSERT left the transaction aborted; probe in a fresh one after it.
        let _ = client.batch_execute("ROLLBACK; BEGIN").await;
        for cell in cells {
            let probe = format!("SELECT CAST($1::text AS {})", cell.sql_type);
            if client
                .execute(probe.as_str(), &[&cell.value])
                .await
                .is_err()
            {
                place = format!(
                    "{} at row {}, column `{}`",
                    seed.name, cell.row, cell.column
                );
                break;
            }
        }
    }
    SeedError::Failed {
        file: seed.name.clone(),
        place,
        error: Box::new(ServerError::from_pg(&e)),
    }
}

/// Prepares against the catalog, then upserts in one transaction with the run record.
pub async fn run(session: &Session, seed: &SeedFile) -> Result<(), SeedError> {
    let prepared = prepare(session, seed).await?;
    let db = |e| SeedError::from(PgError::new(format!("running {}", seed.name), e));
    session.batch_execute("BEGIN").await.map_err(db)?;
    let result = match execute(session, seed, &prepared).await {
        Ok(()) => session
            .batch_execute(&format!("{};\nCOMMIT", runs::record_sql(seed)))
            .await
            .map_err(db),
        Err(e) => Err(e),
    };
    if result.is_err() {
        let _ = session.batch_execute("ROLLBACK").await;
    }
    result
}
