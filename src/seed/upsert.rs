//! The statements of a YAML seed. Rows with the same columns (and the same null key columns)
//! share one statement that updates the existing rows whose values differ and inserts the
//! missing ones, so a row that already holds its values is not touched and draws no sequence
//! value (`INSERT ... ON CONFLICT` would evaluate the defaults before finding the conflict).

use std::collections::BTreeMap;

use super::lookup::Lookup;
use crate::pg::quote::quote_ident;

/// A column as the catalog reports it.
#[derive(Clone)]
pub struct Column {
    /// `format_type()` of the column: trusted text from the catalog, safe to put in SQL.
    pub sql_type: String,
    /// pg_type.typcategory: `A` array, `U` with json/jsonb names, ...
    pub category: String,
    /// The sequence behind a serial or identity column (`pg_get_serial_sequence`), as text.
    pub sequence: Option<String>,
}

impl Column {
    pub fn is_json(&self) -> bool {
        self.sql_type == "json" || self.sql_type == "jsonb"
    }

    pub fn is_array(&self) -> bool {
        self.category == "A"
    }

    /// The expression that turns parameter `$n` (text) into the column's type. Arrays arrive
    /// as JSON lists; a null stays null rather than becoming an empty array.
    pub fn cast(&self, n: usize) -> String {
        if self.is_array() {
            format!(
                "CAST(CASE WHEN ${n}::text IS NULL THEN NULL \
                 ELSE ARRAY(SELECT jsonb_array_elements_text(CAST(${n}::text AS jsonb))) END AS {})",
                self.sql_type
            )
        } else {
            format!("CAST(${n}::text AS {})", self.sql_type)
        }
    }
}

/// One row of the seed: its number in the file and the value of each column it names.
pub struct Row {
    pub number: usize,
    pub values: BTreeMap<String, Given>,
}

/// A column's value in a row: a parameter text (null: `None`), or a lookup in another table.
pub enum Given {
    Text(Option<String>),
    Lookup(Lookup),
}

impl Given {
    pub fn is_null(&self) -> bool {
        matches!(self, Given::Text(None))
    }
}

/// One bound value and where it came from, to name the row and column the server refused.
pub struct Cell {
    pub row: usize,
    pub column: String,
    pub value: Option<String>,
    /// `SELECT <the statement's cast of $1>`: the probe that tells whether this value fits.
    pub probe: String,
}

pub struct Statement {
    pub sql: String,
    /// Only the rows' values cast to their columns' types, written nowhere: `validate` runs it
    /// to find a value the server would refuse.
    pub check_sql: String,
    pub params: Vec<Option<String>>,
    pub cells: Vec<Cell>,
}

/// Where the rows go.
pub struct Target<'a> {
    /// Quoted, possibly schema-qualified.
    pub table: &'a str,
    pub key: &'a [String],
    /// `on_conflict: update`; otherwise existing rows are never changed.
    pub update: bool,
    pub columns: &'a BTreeMap<String, Column>,
}

const MAX_PARAMS: usize = 30_000;
/// The name of the rows inside the statement; unlikely to shadow a user's table.
const ROWS: &str = "db_init_seed_rows";

/// After rows with explicit values in a serial or identity column: moves the column's sequence
/// past the largest value, so the application's next insert does not collide. Never backwards,
/// and not at all when the sequence is already past it, so a second run draws and changes nothing.
pub fn sequence_sql(table: &str, column: &str, sequence: &str) -> String {
    let seq = crate::pg::quote::quote_literal(sequence);
    format!(
        "SELECT setval({seq}, x.m) FROM (SELECT max({col})::bigint AS m FROM {table}) x \
         WHERE x.m IS NOT NULL AND x.m >= coalesce(pg_sequence_last_value({seq}) + 1, \
         (SELECT seqstart FROM pg_sequence WHERE seqrelid = {seq}::regclass))",
        col = quote_ident(column)
    )
}

/// The statements for `rows`, in the order of each group's first row.
pub fn statements(target: &Target, rows: &[Row]) -> Vec<Statement> {
    type Shape<'r> = (Vec<&'r str>, Vec<bool>);
    let mut index: BTreeMap<Shape, usize> = BTreeMap::new();
    let mut groups: Vec<(Shape, Vec<&Row>)> = Vec::new();
    for row in rows {
        let names: Vec<&str> = row.values.keys().map(String::as_str).collect();
        let nulls: Vec<bool> = target
            .key
            .iter()
            .map(|k| row.values.get(k).is_some_and(Given::is_null))
            .collect();
        let shape = (names, nulls);
        match index.get(&shape) {
            Some(&g) => groups[g].1.push(row),
            None => {
                index.insert(shape.clone(), groups.len());
                groups.push((shape, vec![row]));
            }
        }
    }
    let mut out = Vec::new();
    for ((names, nulls), rows) in &groups {
        let per_statement = (MAX_PARAMS / names.len().max(1)).max(1);
        for chunk in rows.chunks(per_statement) {
            out.push(statement(target, names, nulls, chunk));
        }
    }
    out
}

fn statement(target: &Target, names: &[&str], nulls: &[bool], rows: &[&Row]) -> Statement {
    let table = target.table;
    let mut params = Vec::new();
    let mut cells = Vec::new();
    let mut tuples = Vec::new();
    for row in rows {
        let mut exprs = Vec::new();
        for &name in names {
            let (Some(col), Some(value)) = (target.columns.get(name), row.values.get(name)) else {
                continue;
            };
            let cell = |value: &Option<String>, of: &Column| Cell {
                row: row.number,
                column: name.to_string(),
                value: value.clone(),
                probe: format!("SELECT {}", of.cast(1)),
            };
            match value {
                Given::Text(value) => {
                    params.push(value.clone());
                    cells.push(cell(value, col));
                    exprs.push(col.cast(params.len()));
                }
                Given::Lookup(lookup) => {
                    let (expr, wheres) = lookup.expr(col, params.len() + 1);
                    for w in wheres {
                        params.push(w.value.clone());
                        cells.push(cell(&w.value, w.column_type()));
                    }
                    exprs.push(expr);
                }
            }
        }
        tuples.push(format!("({})", exprs.join(", ")));
    }
    let quoted: Vec<String> = names.iter().map(|n| quote_ident(n)).collect();
    let cols = quoted.join(", ");
    // Key columns a row gives as null match the rows that have null there.
    let mut matching: Vec<String> = target
        .key
        .iter()
        .zip(nulls)
        .map(|(k, &null)| {
            let k = quote_ident(k);
            match null {
                true => format!("t.{k} IS NULL"),
                false => format!("t.{k} = r.{k}"),
            }
        })
        .collect();
    if matching.is_empty() {
        matching.push("true".into());
    }
    let matching = matching.join(" AND ");
    let changing: Vec<&String> = quoted
        .iter()
        .zip(names)
        .filter(|(_, n)| !target.key.iter().any(|k| k == *n))
        .map(|(q, _)| q)
        .collect();
    let values = tuples.join(", ");
    let check_sql = format!(
        "WITH {ROWS} ({cols}) AS MATERIALIZED (VALUES {values}) SELECT count(*) FROM {ROWS}"
    );
    let mut sql = format!("WITH {ROWS} ({cols}) AS (VALUES {values})");
    let updates = target.update && !changing.is_empty();
    if updates {
        let sets: Vec<String> = changing.iter().map(|c| format!("{c} = r.{c}")).collect();
        // Compared as text: what the row holds is exactly what the seed says (and json, which
        // has no equality operator, compares too).
        let held: Vec<String> = changing.iter().map(|c| format!("t.{c}::text")).collect();
        let given: Vec<String> = changing.iter().map(|c| format!("r.{c}::text")).collect();
        sql.push_str(&format!(
            ", db_init_seed_updated AS (UPDATE {table} AS t SET {} FROM {ROWS} AS r \
             WHERE {matching} AND ROW({}) IS DISTINCT FROM ROW({}) RETURNING 1)",
            sets.join(", "),
            held.join(", "),
            given.join(", ")
        ));
    }
    let key_sql: Vec<String> = target.key.iter().map(|k| quote_ident(k)).collect();
    let selected: Vec<String> = quoted.iter().map(|c| format!("r.{c}")).collect();
    sql.push_str(&format!(
        ", db_init_seed_inserted AS (INSERT INTO {table} ({cols}) SELECT {} FROM {ROWS} AS r \
         WHERE NOT EXISTS (SELECT FROM {table} AS t WHERE {matching}) ON CONFLICT ({}) DO NOTHING RETURNING 1)",
        selected.join(", "),
        key_sql.join(", ")
    ));
    // One row back: how many rows the statement inserted and updated.
    let updated = match updates {
        true => "(SELECT count(*) FROM db_init_seed_updated)",
        false => "0::bigint",
    };
    // And how many rows share a key with an earlier one once their lookups are resolved (the
    // file's own repeats are refused before this): with `update`, which one should win?
    let repeated = match target.update {
        true => {
            let keys: Vec<String> = key_sql.iter().map(|k| format!("r.{k}")).collect();
            format!(
                "(SELECT count(*) - count(DISTINCT ROW({})) FROM {ROWS} AS r)",
                keys.join(", ")
            )
        }
        false => "0::bigint".into(),
    };
    sql.push_str(&format!(
        " SELECT (SELECT count(*) FROM db_init_seed_inserted), {updated}, {repeated}"
    ));
    Statement {
        sql,
        check_sql,
        params,
        cells,
    }
}
