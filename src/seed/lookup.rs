//! Lookups in YAML seeds: a column's value given as `{ from: roles, where: { name: admin } }`
//! (optionally `column: id`, else the referenced table's one-column primary key) is the key of
//! one row of another table, resolved in the upsert statement itself by a scalar subquery whose
//! `where` values are bound parameters cast to the referenced columns' types. Before the upsert,
//! in its transaction, every lookup is counted: no row or more than one is an error naming the
//! row and column, and nothing of the seed is applied.

use std::collections::BTreeMap;

use serde_norway::{Mapping, Value};
use tokio_postgres::types::ToSql;
use tokio_postgres::Client;

use super::upsert::Column;
use super::{catalog, vars, SeedError, SeedFile};
use crate::pg::quote::quote_ident;

/// The keys a lookup may have.
const KEYS: [&str; 3] = ["from", "where", "column"];

#[derive(Clone)]
pub struct Lookup {
    /// The referenced table as written, and quoted.
    written: String,
    table: String,
    column: String,
    wheres: Vec<Where>,
}

#[derive(Clone)]
pub struct Where {
    column: String,
    col: Column,
    pub value: Option<String>,
}

impl Where {
    /// The referenced column, whose type the value is cast to.
    pub fn column_type(&self) -> &Column {
        &self.col
    }
}

/// A lookup at its place in the seed.
pub struct Placed {
    pub row: usize,
    pub column: String,
    pub lookup: Lookup,
}

/// The referenced tables' columns and primary keys, read once per table and seed.
#[derive(Default)]
pub struct Tables(BTreeMap<String, (BTreeMap<String, Column>, Vec<String>)>);

impl Lookup {
    /// Reads `{ from, where, column }` against the referenced table's catalog.
    pub async fn read(
        client: &Client,
        tables: &mut Tables,
        map: &Mapping,
    ) -> Result<Lookup, String> {
        let text = |key: &'static str| map.get(key).map(|v| v.as_str().ok_or(key));
        if let Some(unknown) = map
            .keys()
            .find(|k| !k.as_str().is_some_and(|k| KEYS.contains(&k)))
        {
            let unknown = unknown
                .as_str()
                .map_or_else(|| format!("{unknown:?}"), str::to_string);
            return Err(format!(
                "a mapping for a column that is not json/jsonb is a lookup \
                 {{ from: table, where: {{ column: value }}, column: key }}; `{unknown}` is not one of its keys"
            ));
        }
        let from = match text("from") {
            Some(Ok(from)) => from.to_string(),
            Some(Err(_)) => return Err("a lookup's `from` must be a table name".into()),
            None => return Err("a lookup needs `from: <table>`".into()),
        };
        let Some(Value::Mapping(given)) = map.get("where") else {
            return Err("a lookup needs `where: { column: value, ... }`".into());
        };
        if given.is_empty() {
            return Err("a lookup's `where` names no column".into());
        }
        let table = catalog::quoted_table(&from);
        if !tables.0.contains_key(&table) {
            let columns = catalog::columns(client, &table)
                .await
                .map_err(|m| format!("lookup table `{from}`: {m}"))?;
            let key = catalog::primary_key(client, &table)
                .await
                .map_err(|m| format!("lookup table `{from}`: {m}"))?;
            tables.0.insert(table.clone(), (columns, key));
        }
        let Some((columns, key)) = tables.0.get(&table) else {
            return Err(format!("lookup table `{from}` was not read"));
        };
        let column = match (text("column"), key.as_slice()) {
            (Some(Ok(c)), _) => c.to_string(),
            (Some(Err(_)), _) => return Err("a lookup's `column` must be a column name".into()),
            (None, [one]) => one.clone(),
            (None, _) => {
                return Err(format!(
                    "`{from}` has no one-column primary key: name the column to take (column: ...)"
                ))
            }
        };
        if !columns.contains_key(&column) {
            return Err(format!("lookup table `{from}` has no column `{column}`"));
        }
        let mut wheres = Vec::new();
        for (k, v) in given {
            let Some(name) = k.as_str() else {
                return Err(format!("a lookup's `where` key {k:?} is not a column name"));
            };
            let Some(col) = columns.get(name) else {
                return Err(format!("lookup table `{from}` has no column `{name}`"));
            };
            let value = super::yaml::to_text(v, col).map_err(|m| format!("where `{name}`: {m}"))?;
            wheres.push(Where {
                column: name.to_string(),
                col: col.clone(),
                value,
            });
        }
        Ok(Lookup {
            written: from,
            table,
            column,
            wheres,
        })
    }

    /// `l.a = CAST($n ...) AND ...` with parameters from `$first`, and the `where`s in the order
    /// of their parameters.
    fn condition(&self, first: usize) -> (String, Vec<&Where>) {
        let mut used = Vec::new();
        let conds: Vec<String> = self
            .wheres
            .iter()
            .map(|w| {
                let c = quote_ident(&w.column);
                match &w.value {
                    None => format!("l.{c} IS NULL"),
                    Some(_) => {
                        used.push(w);
                        format!("l.{c} = {}", w.col.cast(first + used.len() - 1))
                    }
                }
            })
            .collect();
        (conds.join(" AND "), used)
    }

    /// The scalar subquery that finds the value, cast to `target`'s type, with its parameters
    /// from `$first`.
    pub fn expr(&self, target: &Column, first: usize) -> (String, Vec<&Where>) {
        let (condition, used) = self.condition(first);
        let sql = format!(
            "CAST((SELECT l.{} FROM {} AS l WHERE {condition}) AS {})",
            quote_ident(&self.column),
            self.table,
            target.sql_type
        );
        (sql, used)
    }

    /// What it looks for, for a message and for a key given twice.
    pub fn shown(&self) -> String {
        let wheres: Vec<String> = self
            .wheres
            .iter()
            .map(|w| match &w.value {
                Some(v) => format!("{} = {v:?}", w.column),
                None => format!("{} IS NULL", w.column),
            })
            .collect();
        format!(
            "`{}` of `{}` where {}",
            self.column,
            self.written,
            wheres.join(" AND ")
        )
    }
}

/// Whether a mapping for a column that is not json/jsonb means a lookup.
pub fn is_lookup(value: &Value, col: &Column) -> bool {
    matches!(value, Value::Mapping(_)) && !col.is_json()
}

/// Why the lookups of a seed cannot run.
pub enum Failed {
    /// One finds no row or many (named by row and column).
    Found(SeedError),
    /// The server refused the count (a `where` value its column's type refuses).
    Database(tokio_postgres::Error),
}

/// Counts the rows each lookup finds, in the seed's transaction before its statements.
pub async fn check(client: &Client, seed: &SeedFile, placed: &[Placed]) -> Result<(), Failed> {
    const MAX_PARAMS: usize = 30_000;
    let mut start = 0;
    while start < placed.len() {
        let mut params: Vec<&Option<String>> = Vec::new();
        let mut tuples = Vec::new();
        let mut end = start;
        while let Some(p) = placed.get(end) {
            if !tuples.is_empty() && params.len() + p.lookup.wheres.len() > MAX_PARAMS {
                break;
            }
            let (condition, used) = p.lookup.condition(params.len() + 1);
            params.extend(used.into_iter().map(|w| &w.value));
            tuples.push(format!(
                "({end}, (SELECT count(*) FROM (SELECT FROM {} AS l WHERE {condition} LIMIT 2) x))",
                p.lookup.table
            ));
            end += 1;
        }
        let sql = format!(
            "SELECT n, c FROM (VALUES {}) v(n, c) WHERE c <> 1 ORDER BY n LIMIT 1",
            tuples.join(", ")
        );
        let refs: Vec<&(dyn ToSql + Sync)> =
            params.iter().map(|p| *p as &(dyn ToSql + Sync)).collect();
        let found = client
            .query(sql.as_str(), &refs)
            .await
            .map_err(Failed::Database)?;
        if let Some(row) = found.first() {
            let n: i32 = row.try_get(0).unwrap_or(0);
            let count: i64 = row.try_get(1).unwrap_or(0);
            let p = usize::try_from(n).ok().and_then(|n| placed.get(n));
            let Some(p) = p.or(placed.get(start)) else {
                return Ok(());
            };
            let what = if count == 0 {
                "no row"
            } else {
                "more than one row"
            };
            let message = format!(
                "row {}, column `{}`: the lookup of {} found {what} (exactly one is needed)",
                p.row,
                p.column,
                p.lookup.shown()
            );
            return Err(Failed::Found(SeedError::Invalid {
                file: seed.name.clone(),
                message: vars::hide(&seed.vars, &message),
            }));
        }
        start = end;
    }
    Ok(())
}
