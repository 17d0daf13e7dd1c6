//! Declarative YAML seeds: the file read against the catalog into rows of parameter texts
//! (see `upsert` for the statements), run in one transaction with the seed's run record, and
//! a refused value traced back to its row and column.

use std::collections::BTreeMap;

use serde_norway::Value;
use tokio_postgres::types::ToSql;
use tokio_postgres::Client;

use super::lookup::{self, Lookup};
use super::upsert::{self, Cell, Column, Given, Row, Statement, Target};
use super::vars::{self, Resolver, Source};
use super::{catalog, runs, SeedError, SeedFile};
use crate::pg::{PgError, Session};

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Spec {
    table: String,
    #[serde(deserialize_with = "key_columns")]
    key: Vec<String>,
    #[serde(default)]
    on_conflict: OnConflict,
    rows: Vec<serde_norway::Mapping>,
}

/// `key: name` or `key: [a, b]`, with a message that says so (serde's untagged enums only say
/// that no variant matched).
fn key_columns<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    use serde::de::Error;
    use serde::Deserialize;
    let wrong = || {
        D::Error::custom("`key` must be a column name or a list of column names, e.g. key: [name]")
    };
    match Value::deserialize(d)? {
        Value::String(s) => Ok(vec![s]),
        Value::Sequence(items) => items
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Ok(s),
                _ => Err(wrong()),
            })
            .collect(),
        _ => Err(wrong()),
    }
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
enum OnConflict {
    #[default]
    Update,
    Ignore,
}

/// The statements of the seed, ready to run.
pub struct Prepared {
    pub(super) statements: Vec<Statement>,
    /// Run after them: sequences moved past the explicit values written (see `upsert::sequence_sql`).
    pub(super) sequences: Vec<String>,
    /// Counted before them: each must find exactly one row.
    lookups: Vec<lookup::Placed>,
}

/// Why a YAML seed cannot run: its shape, or a `${...}` token (as written) without a value.
pub(super) enum Checked {
    Shape(SeedError),
    Var(String, String),
}

/// Checks the file's shape and resolves its tokens without a database, so a broken seed fails
/// before anything runs.
pub(super) fn check(seed: &SeedFile, resolver: &mut Resolver) -> Result<(), Checked> {
    let mut spec = parse(seed).map_err(Checked::Shape)?;
    expand(&mut spec, resolver)
}

fn expand(spec: &mut Spec, resolver: &mut Resolver) -> Result<(), Checked> {
    for row in &mut spec.rows {
        for (_, v) in row.iter_mut() {
            vars::expand_yaml(v, resolver).map_err(|(written, m)| Checked::Var(written, m))?;
        }
    }
    Ok(())
}

/// Every table a YAML seed reads or writes: its own and those its lookups name (`from:`).
pub fn tables(seed: &SeedFile) -> Vec<String> {
    let Ok(spec) = parse(seed) else {
        return Vec::new();
    };
    let mut out = vec![spec.table.clone()];
    for row in &spec.rows {
        for value in row.values() {
            if let Some(from) = value.get("from").and_then(Value::as_str) {
                if !out.iter().any(|t| t == from) {
                    out.push(from.to_string());
                }
            }
        }
    }
    out
}

/// The spec with its values substituted (those found when the folder was read).
fn parse_expanded(seed: &SeedFile) -> Result<Spec, SeedError> {
    let mut spec = parse(seed)?;
    let mut resolver = Resolver::new(Source::Known(&seed.vars));
    match expand(&mut spec, &mut resolver) {
        Ok(()) => Ok(spec),
        Err(Checked::Shape(e)) => Err(e),
        Err(Checked::Var(written, message)) => Err(SeedError::Shape {
            file: seed.name.clone(),
            message: format!("{written}: {message}"),
        }),
    }
}

fn parse(seed: &SeedFile) -> Result<Spec, SeedError> {
    let invalid = |message: String| SeedError::Shape {
        file: seed.name.clone(),
        message,
    };
    let spec: Spec = serde_norway::from_str(&seed.text).map_err(|e| invalid(e.to_string()))?;
    // What can be checked without a database is checked here, so `validate --offline` and a
    // run's pre-flight catch it before anything is applied.
    if spec.key.is_empty() {
        return Err(invalid("`key` names no column".into()));
    }
    for (i, row) in spec.rows.iter().enumerate() {
        let has = |k: &String| row.keys().any(|c| c.as_str() == Some(k.as_str()));
        if let Some(k) = spec.key.iter().find(|k| !has(k)) {
            return Err(invalid(format!(
                "row {}: key column `{k}` is missing",
                i + 1
            )));
        }
    }
    Ok(spec)
}

pub(super) async fn prepare(client: &Client, seed: &SeedFile) -> Result<Prepared, SeedError> {
    let invalid = |message: String| SeedError::Invalid {
        file: seed.name.clone(),
        message,
    };
    let spec = parse_expanded(seed)?;
    let key = spec.key;
    let table = catalog::quoted_table(&spec.table);
    let columns = catalog::columns(client, &table)
        .await
        .map_err(|message| invalid(format!("table `{}`: {message}", spec.table)))?;

    let mut rows: Vec<Row> = Vec::new();
    let mut lookups = Vec::new();
    let mut tables = lookup::Tables::default();
    // Text of each key, to refuse a key given twice: which row would win?
    let mut seen: BTreeMap<Vec<Option<String>>, usize> = BTreeMap::new();
    for (i, row) in spec.rows.iter().enumerate() {
        let number = i + 1;
        let mut values = BTreeMap::new();
        for (k, v) in row {
            let Some(name) = k.as_str() else {
                return Err(invalid(format!(
                    "row {number}: column name {k:?} is not a string"
                )));
            };
            let Some(col) = columns.get(name) else {
                return Err(invalid(format!(
                    "row {number}: table `{}` has no column `{name}`",
                    spec.table
                )));
            };
            let at = |m: String| invalid(format!("row {number}, column `{name}`: {m}"));
            let given = match v {
                Value::Mapping(map) if lookup::is_lookup(v, col) => {
                    let found = Lookup::read(client, &mut tables, map).await.map_err(at)?;
                    lookups.push(lookup::Placed {
                        row: number,
                        column: name.to_string(),
                        lookup: found.clone(),
                    });
                    Given::Lookup(found)
                }
                _ => Given::Text(to_text(v, col).map_err(at)?),
            };
            values.insert(name.to_string(), given);
        }
        let mut key_text = Vec::new();
        for k in &key {
            match values.get(k) {
                Some(Given::Text(v)) => key_text.push(v.clone()),
                Some(Given::Lookup(l)) => key_text.push(Some(l.shown())),
                None => {
                    return Err(invalid(format!(
                        "row {number}: key column `{k}` is missing"
                    )))
                }
            }
        }
        if spec.on_conflict == OnConflict::Update {
            if let Some(first) = seen.insert(key_text, number) {
                return Err(invalid(format!(
                    "row {number}: the same key as row {first} (which one should win?)"
                )));
            }
        }
        rows.push(Row { number, values });
    }
    let target = Target {
        table: &table,
        key: &key,
        update: spec.on_conflict == OnConflict::Update,
        columns: &columns,
    };
    let written: std::collections::BTreeSet<&str> = rows
        .iter()
        .flat_map(|r| {
            r.values
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, _)| k.as_str())
        })
        .collect();
    let sequences = written
        .into_iter()
        .filter_map(|name| {
            let seq = columns.get(name)?.sequence.as_deref()?;
            Some(upsert::sequence_sql(&table, name, seq))
        })
        .collect();
    Ok(Prepared {
        statements: upsert::statements(&target, &rows),
        sequences,
        lookups,
    })
}

/// The parameter text of a YAML value for a column, or why it cannot fit.
pub(super) fn to_text(value: &Value, col: &Column) -> Result<Option<String>, String> {
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
        Value::Sequence(_) if col.is_array() => json().map(Some),
        Value::Sequence(_) => Err(format!("a list does not fit type {}", col.sql_type)),
        Value::Mapping(_) => Err(format!(
            "a mapping does not fit type {} (only json/jsonb)",
            col.sql_type
        )),
        Value::Tagged(_) => Err("tagged YAML values are not supported".into()),
    }
}

fn cells_of(statement: &Statement) -> Vec<&Cell> {
    statement.cells.iter().collect()
}

fn params(statement: &Statement) -> Vec<&(dyn ToSql + Sync)> {
    statement
        .params
        .iter()
        .map(|p| p as &(dyn ToSql + Sync))
        .collect()
}

/// How many rows a YAML seed wrote.
#[derive(Debug, Default, Clone, Copy)]
pub struct Rows {
    pub inserted: i64,
    pub updated: i64,
}

/// Runs the statements; the caller holds the transaction.
async fn execute(client: &Client, seed: &SeedFile, prepared: &Prepared) -> Result<Rows, SeedError> {
    let mut rows = Rows::default();
    match lookup::check(client, seed, &prepared.lookups).await {
        Ok(()) => {}
        Err(lookup::Failed::Found(e)) => return Err(e),
        Err(lookup::Failed::Database(e)) => {
            let cells: Vec<&Cell> = prepared.statements.iter().flat_map(|s| &s.cells).collect();
            return Err(locate(client, seed, &cells, e).await);
        }
    }
    for statement in &prepared.statements {
        let refs = params(statement);
        match client.query_one(statement.sql.as_str(), &refs).await {
            Ok(row) => {
                if row.try_get::<_, i64>(2).unwrap_or(0) > 0 {
                    return Err(SeedError::Invalid {
                        file: seed.name.clone(),
                        message:
                            "rows whose lookups resolve to the same key (which one should win?); \
                                  nothing of this seed was applied"
                                .into(),
                    });
                }
                rows.inserted += row.try_get::<_, i64>(0).unwrap_or(0);
                rows.updated += row.try_get::<_, i64>(1).unwrap_or(0);
            }
            Err(e) => return Err(locate(client, seed, &cells_of(statement), e).await),
        }
    }
    for sql in &prepared.sequences {
        client.batch_execute(sql).await.map_err(|e| {
            SeedError::from(PgError::new(
                format!("moving a sequence past {}'s ids", seed.name),
                e,
            ))
        })?;
    }
    Ok(rows)
}

/// Casts every value of the seed as its statements would, in a read-only transaction that is
/// rolled back: a value the server refuses is named with its row and column.
pub(super) async fn check_values(
    client: &Client,
    seed: &SeedFile,
    prepared: &Prepared,
) -> Result<(), SeedError> {
    let db = |e| SeedError::from(PgError::new(format!("checking {}", seed.name), e));
    client.batch_execute("BEGIN READ ONLY").await.map_err(db)?;
    let mut result = Ok(());
    for statement in &prepared.statements {
        let refs = params(statement);
        if let Err(e) = client.query_one(statement.check_sql.as_str(), &refs).await {
            result = Err(locate(client, seed, &cells_of(statement), e).await);
            break;
        }
    }
    let _ = client.batch_execute("ROLLBACK").await;
    result
}

/// Names the row and column whose value the server refused, by casting each value alone with
/// the very expression the statement uses.
async fn locate(
    client: &Client,
    seed: &SeedFile,
    cells: &[&Cell],
    e: tokio_postgres::Error,
) -> SeedError {
    let Some(db) = e.as_db_error() else {
        return PgError::new(format!("running {}", seed.name), e).into();
    };
    let mut place = seed.name.clone();
    if db.code().code().starts_with("22") {
        // The failed statement left the transaction aborted; probe in a fresh one after it.
        let _ = client.batch_execute("ROLLBACK; BEGIN").await;
        for cell in cells {
            if client
                .execute(cell.probe.as_str(), &[&cell.value])
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
        error: seed.server_error(&e),
        outcome: super::ROLLED_BACK.into(),
    }
}

/// Prepares against the catalog, then upserts in one transaction with the run record.
pub async fn run(session: &Session, seed: &SeedFile) -> Result<Rows, SeedError> {
    let prepared = prepare(session, seed).await?;
    let db = |e| SeedError::from(PgError::new(format!("running {}", seed.name), e));
    session.batch_execute("BEGIN").await.map_err(db)?;
    let result = match execute(session, seed, &prepared).await {
        Ok(rows) => session
            .batch_execute(&format!("{};\nCOMMIT", runs::record_sql(seed, None)))
            .await
            .map(|()| rows)
            .map_err(db),
        Err(e) => Err(e),
    };
    if result.is_err() {
        let _ = session.batch_execute("ROLLBACK").await;
    }
    result
}
