//! Every statement that touches a history table: Drizzle's `drizzle.__drizzle_migrations`
//! (kept exactly as Drizzle creates and fills it) and db-init's `db_init.schema_migrations`.

use tokio_postgres::{Client, SimpleQueryMessage};

use super::migration::Migration;
use super::plan::AppliedRow;
use super::source::Layout;
use crate::config::MigrateSettings;
use crate::pg::quote::{quote_ident, quote_literal};
use crate::pg::{first_text, PgError};

#[derive(Debug, Clone)]
pub struct History {
    pub layout: Layout,
    schema: String,
    table: String,
}

impl History {
    pub fn new(layout: Layout, settings: &MigrateSettings) -> History {
        match layout {
            Layout::Drizzle => History {
                layout,
                schema: settings.drizzle_schema.clone(),
                table: settings.drizzle_table.clone(),
            },
            Layout::Numbered => History {
                layout,
                schema: "db_init".into(),
                table: "schema_migrations".into(),
            },
        }
    }

    /// `"schema"."table"`, quoted as Drizzle quotes it (case kept).
    pub fn qualified(&self) -> String {
        format!("{}.{}", quote_ident(&self.schema), quote_ident(&self.table))
    }

    /// The rows, or `None` when the table does not exist. Existence is checked with
    /// `to_regclass` so that a run with nothing to do issues no DDL and no failing statement.
    pub async fn read(&self, client: &Client) -> Result<Option<Vec<AppliedRow>>, PgError> {
        let exists_sql = format!(
            "SELECT to_regclass({}) IS NOT NULL",
            quote_literal(&self.qualified())
        );
        let exists = first_text(client, &exists_sql)
            .await
            .map_err(|e| PgError::new("reading the history", e))?;
        if exists.as_deref() != Some("t") {
            return Ok(None);
        }
        let sql = match self.layout {
            Layout::Drizzle => format!(
                "SELECT created_at, hash FROM {} ORDER BY id",
                self.qualified()
            ),
            Layout::Numbered => format!(
                "SELECT version, checksum FROM {} ORDER BY version",
                self.qualified()
            ),
        };
        let messages = client
            .simple_query(&sql)
            .await
            .map_err(|e| PgError::new(format!("reading {}", self.qualified()), e))?;
        let mut rows = Vec::new();
        for msg in messages {
            if let SimpleQueryMessage::Row(row) = msg {
                let version = row.get(0).and_then(|v| v.parse::<i64>().ok());
                let checksum = row.get(1).unwrap_or_default().to_string();
                rows.push(AppliedRow { version, checksum });
            }
        }
        Ok(Some(rows))
    }

    /// Drizzle's DDL, statement for statement, so `pg_dump` cannot tell who created the table.
    pub async fn create(&self, client: &Client) -> Result<(), PgError> {
        let schema = quote_ident(&self.schema);
        let sql = match self.layout {
            Layout::Drizzle => format!(
                "CREATE SCHEMA IF NOT EXISTS {schema};\n\
                 CREATE TABLE IF NOT EXISTS {} (\n\tid SERIAL PRIMARY KEY,\n\thash text NOT NULL,\n\tcreated_at bigint\n);",
                self.qualified()
            ),
            Layout::Numbered => format!(
                "CREATE SCHEMA IF NOT EXISTS {schema};\n\
                 CREATE TABLE IF NOT EXISTS {} (\n\
                 \tversion bigint PRIMARY KEY,\n\
                 \tname text NOT NULL,\n\
                 \tchecksum text NOT NULL,\n\
                 \tapplied_at timestamptz NOT NULL DEFAULT now(),\n\
                 \texecution_ms integer NOT NULL,\n\
                 \tapplied_by text\n);",
                self.qualified()
            ),
        };
        client
            .batch_execute(&sql)
            .await
            .map_err(|e| PgError::new(format!("creating {}", self.qualified()), e))
    }

    /// Re-records the checksum of an applied migration whose file changed (`repair`).
    pub fn update_checksum_sql(&self, m: &Migration, old: &str) -> String {
        let (column, key) = match self.layout {
            Layout::Drizzle => ("hash", "created_at"),
            Layout::Numbered => ("checksum", "version"),
        };
        format!(
            "UPDATE {} SET {column} = {} WHERE {key} = {} AND {column} = {}",
            self.qualified(),
            quote_literal(&m.checksum),
            m.version,
            quote_literal(old)
        )
    }

    /// The statement that records `m` as applied. Inside a migration's transaction the
    /// execution time is measured by the server; outside one it is passed in.
    pub fn insert_sql(&self, m: &Migration, execution_ms: Option<u64>) -> String {
        match self.layout {
            Layout::Drizzle => format!(
                "INSERT INTO {} (\"hash\", \"created_at\") VALUES ('{}', {})",
                self.qualified(),
                m.checksum,
                m.version
            ),
            Layout::Numbered => {
                let ms = match execution_ms {
                    Some(ms) => ms.min(i32::MAX as u64).to_string(),
                    None => {
                        "(extract(epoch FROM clock_timestamp() - now()) * 1000)::integer".into()
                    }
                };
                format!(
                    "INSERT INTO {} (version, name, checksum, execution_ms, applied_by) VALUES ({}, {}, '{}', {ms}, {})",
                    self.qualified(),
                    m.version,
                    quote_literal(&m.name),
                    m.checksum,
                    quote_literal(&applied_by()),
                )
            }
        }
    }
}

/// Who applied a migration: the pod or host name when there is one.
fn applied_by() -> String {
    let host = std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty());
    format!(
        "db-init {}{}",
        env!("CARGO_PKG_VERSION"),
        host.map(|h| format!(" on {h}")).unwrap_or_default()
    )
}
