//! The history table as the shared steps see it: read its shape and rows, create it, record a
//! migration, repair a checksum; each format (`format/`) says how its tool names and fills it.

use tokio_postgres::{Client, SimpleQueryMessage};

use super::format;
use super::migration::Migration;
use super::plan::AppliedRow;
use super::source::Layout;
use crate::config::MigrateSettings;
use crate::pg::quote::{quote_ident, quote_literal};
use crate::pg::{first_text, PgError};

/// Whether a Drizzle history table has v1's `name` and `applied_at` columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    V0,
    V1,
}

impl Shape {
    /// What [`History::shape_expr`] said; `None` when the table does not exist.
    pub fn parse(text: Option<&str>) -> Option<Shape> {
        match text {
            Some("v1") => Some(Shape::V1),
            Some("v0") => Some(Shape::V0),
            _ => None,
        }
    }
}

/// The rows of [`History::rows_sql`]'s answer (its first result set, up to its end).
pub fn rows_from(messages: &[SimpleQueryMessage]) -> Vec<AppliedRow> {
    messages
        .iter()
        .take_while(|m| !matches!(m, SimpleQueryMessage::CommandComplete(_)))
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(row) => Some(AppliedRow {
                id: row.get(0).and_then(|v| v.parse::<i64>().ok()),
                version: row.get(1).and_then(|v| v.parse::<i64>().ok()),
                checksum: row.get(2).unwrap_or_default().to_string(),
                name: row.get(3).map(str::to_string),
            }),
            _ => None,
        })
        .collect()
}

/// An existing history table.
#[derive(Debug, Clone)]
pub struct Table {
    pub shape: Shape,
    pub rows: Vec<AppliedRow>,
}

#[derive(Debug, Clone)]
pub struct History {
    pub layout: Layout,
    schema: String,
    table: String,
    /// The schema the tool puts first on the search path while it migrates.
    migrates_in: Option<String>,
}

impl History {
    pub fn new(layout: Layout, settings: &MigrateSettings) -> History {
        let format = format::of(layout);
        let (schema, table) = format.history_table(settings);
        History {
            layout,
            schema,
            table,
            migrates_in: format.migrates_in(settings),
        }
    }

    /// The statement that puts the tool's migration schema first on the session's search path
    /// (the original path kept after it), as the tool does before it runs migrations.
    pub fn enter_schema_sql(&self) -> Option<String> {
        let first = quote_literal(&quote_ident(self.migrates_in.as_deref()?));
        Some(format!(
            "SELECT set_config('search_path', CASE current_setting('search_path') WHEN '' THEN {first} \
             ELSE {first} || ', ' || current_setting('search_path') END, false)"
        ))
    }

    fn format(&self) -> &'static dyn format::Format {
        format::of(self.layout)
    }

    /// How the tool's table is told elsewhere (the first-contact hint).
    pub fn look_alike(&self) -> Option<format::LookAlike> {
        self.format().look_alike()
    }

    /// The schema and table name, unquoted.
    pub fn names(&self) -> (&str, &str) {
        (&self.schema, &self.table)
    }

    /// `"schema"."table"`, quoted as Drizzle quotes it (case kept).
    pub fn qualified(&self) -> String {
        format!("{}.{}", quote_ident(&self.schema), quote_ident(&self.table))
    }

    /// The table's shape and rows, or `None` when it does not exist. One query tells both
    /// whether the table exists and whether it has Drizzle v1's `name` column, so a run with
    /// nothing to do issues no DDL and no failing statement.
    pub async fn read(&self, client: &Client) -> Result<Option<Table>, PgError> {
        let shape = first_text(client, &format!("SELECT {}", self.shape_expr()))
            .await
            .map_err(|e| PgError::new("reading the history", e))?;
        let Some(shape) = Shape::parse(shape.as_deref()) else {
            return Ok(None);
        };
        let messages = client
            .simple_query(&self.rows_sql(shape))
            .await
            .map_err(|e| PgError::new(format!("reading {}", self.qualified()), e))?;
        Ok(Some(Table {
            shape,
            rows: rows_from(&messages),
        }))
    }

    /// A column expression: `'none'`, `'v0'` or `'v1'` (see [`Shape::parse`]), so the shape can
    /// ride along in a query that asks something else.
    pub fn shape_expr(&self) -> String {
        self.format().shape_expr(&quote_literal(&self.qualified()))
    }

    /// The rows of an existing table of `shape`, in the order the planners expect.
    pub fn rows_sql(&self, shape: Shape) -> String {
        self.format().rows_sql(shape, &self.qualified())
    }

    /// The tool's DDL, statement for statement, so `pg_dump` cannot tell who created the table.
    pub async fn create(&self, client: &Client) -> Result<(), PgError> {
        client
            .batch_execute(&self.create_sql())
            .await
            .map_err(|e| PgError::new(format!("creating {}", self.qualified()), e))
    }

    /// The DDL [`History::create`] sends (also printed by `plan`).
    pub fn create_sql(&self) -> String {
        self.format()
            .create_sql(&self.schema, &self.table, &self.qualified())
    }

    /// Re-records the checksum of an applied migration whose file changed (`repair`).
    pub fn update_checksum_sql(&self, m: &Migration, old: &str) -> String {
        let format = self.format();
        let (column, key, value) = format.row_key(m);
        format!(
            "UPDATE {} SET {column} = {} WHERE {key} = {value} AND {column} = {}",
            self.qualified(),
            format.checksum_sql(&m.checksum),
            format.checksum_sql(old)
        )
    }

    /// The format's in-place upgrade of the table's shape, as one transaction.
    pub fn upgrade_sql(&self, up: &format::HistoryUpgrade) -> String {
        let statements = self
            .format()
            .upgrade_statements(&self.schema, &self.table, up);
        format!("BEGIN;\n{};\nCOMMIT;", statements.join(";\n"))
    }

    /// The statement that records `m` as applied. Inside a migration's transaction the
    /// execution time is measured by the server; outside one it is passed in.
    pub fn insert_sql(&self, m: &Migration, execution_ms: Option<u64>) -> String {
        self.format().insert_sql(
            &self.schema,
            &self.table,
            &self.qualified(),
            m,
            execution_ms,
        )
    }
}
