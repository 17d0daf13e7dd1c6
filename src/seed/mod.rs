//! Seeds: the files of the seeds folder in lexical order, each in its own transaction together
//! with its row in `db_init.seed_runs` (SPEC section 3).

mod yaml;

use std::path::{Path, PathBuf};
use std::time::Instant;

use sha2::{Digest, Sha256};
use tokio_postgres::error::ErrorPosition;
use tokio_postgres::{Client, SimpleQueryMessage};
use tracing::info;

use crate::config::{Config, SeedMode};
use crate::migrate::history::quote_literal;
use crate::migrate::source::{hex, line_col};

#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("{}", failed_message(.file, .line, .column, .sqlstate, .message, .detail, .hint))]
    Failed {
        file: String,
        line: Option<usize>,
        column: Option<usize>,
        sqlstate: String,
        message: String,
        detail: Option<String>,
        hint: Option<String>,
    },
    #[error("{file}: {message}")]
    Invalid { file: String, message: String },
    #[error("{}", row_message(.file, .row, .column, .sqlstate, .message, .detail))]
    Row {
        file: String,
        row: Option<usize>,
        column: Option<String>,
        sqlstate: String,
        message: String,
        detail: Option<String>,
    },
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("seeds: {context}: {message}")]
    Database { context: String, message: String },
}

fn failed_message(
    file: &str,
    line: &Option<usize>,
    column: &Option<usize>,
    sqlstate: &str,
    message: &str,
    detail: &Option<String>,
    hint: &Option<String>,
) -> String {
    let place = match (line, column) {
        (Some(l), Some(c)) => format!("{file}:{l}:{c}"),
        _ => file.to_string(),
    };
    let mut s = format!("{place}: seed {file} failed: ERROR {sqlstate}: {message}");
    if let Some(d) = detail {
        s.push_str(&format!("\n  detail: {d}"));
    }
    if let Some(h) = hint {
        s.push_str(&format!("\n  hint: {h}"));
    }
    s.push_str("\n  it was rolled back; migrations stay applied");
    s
}

fn row_message(
    file: &str,
    row: &Option<usize>,
    column: &Option<String>,
    sqlstate: &str,
    message: &str,
    detail: &Option<String>,
) -> String {
    let place = match (row, column) {
        (Some(r), Some(c)) => format!(" at row {r}, column `{c}`"),
        _ => String::new(),
    };
    let mut s = format!("seed {file} failed{place}: ERROR {sqlstate}: {message}");
    if let Some(d) = detail {
        s.push_str(&format!("\n  detail: {d}"));
    }
    s.push_str("\n  it was rolled back; migrations stay applied");
    s
}

#[derive(Debug, Clone)]
pub struct SeedFile {
    pub name: String,
    pub text: String,
    pub checksum: String,
}

/// The seed files, in lexical order; an absent folder means no seeds.
pub fn load(dir: &Path) -> Result<Vec<SeedFile>, SeedError> {
    let read = match std::fs::read_dir(dir) {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(SeedError::Io {
                path: dir.to_path_buf(),
                source,
            })
        }
    };
    let mut names = Vec::new();
    for entry in read {
        let entry = entry.map_err(|source| SeedError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if [".sql", ".yaml", ".yml"]
            .iter()
            .any(|ext| name.ends_with(ext))
            && !name.starts_with('.')
        {
            names.push(name);
        }
    }
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let path = dir.join(&name);
            let bytes = std::fs::read(&path).map_err(|source| SeedError::Io {
                path: path.clone(),
                source,
            })?;
            let text = String::from_utf8_lossy(&bytes).into_owned();
            let checksum = hex(&Sha256::digest(text.as_bytes()));
            let seed = SeedFile {
                name,
                text,
                checksum,
            };
            if !seed.is_sql() {
                yaml::check(&seed)?;
            }
            Ok(seed)
        })
        .collect()
}

const RUNS: &str = "db_init.seed_runs";

/// Runs the seeds; returns how many ran (skipped unchanged ones in `on-change` mode do not count).
pub async fn run(client: &Client, cfg: &Config, seeds: &[SeedFile]) -> Result<usize, SeedError> {
    if seeds.is_empty() {
        return Ok(0);
    }
    crate::db::work_settings(client, None, cfg.statement_timeout)
        .await
        .map_err(|e| SeedError::Database {
            context: "setting statement_timeout".into(),
            message: crate::db::describe(&e),
        })?;
    let previous = read_runs(client).await?;
    let mut ran = 0;
    for seed in seeds {
        if cfg.seed_mode == SeedMode::OnChange
            && previous
                .iter()
                .any(|(name, checksum)| name == &seed.name && checksum == &seed.checksum)
        {
            info!(seed = %seed.name, "unchanged since its last run; skipped (seed_mode: on-change)");
            continue;
        }
        let started = Instant::now();
        if seed.is_sql() {
            run_sql(client, seed).await?;
        } else {
            run_yaml(client, seed).await?;
        }
        info!(seed = %seed.name, ms = started.elapsed().as_millis() as u64, "seeded");
        ran += 1;
    }
    Ok(ran)
}

/// `(name, checksum)` of earlier runs; creates the table when it is missing (db-init's own
/// schema, never `public`: `drizzle-kit push` drops unknown tables there).
async fn read_runs(client: &Client) -> Result<Vec<(String, String)>, SeedError> {
    let db = |context: &str, e: tokio_postgres::Error| SeedError::Database {
        context: context.to_string(),
        message: crate::db::describe(&e),
    };
    let exists =
        crate::db::first_text(client, &format!("SELECT to_regclass('{RUNS}') IS NOT NULL"))
            .await
            .map_err(|e| db("reading db_init.seed_runs", e))?
            .as_deref()
            == Some("t");
    if !exists {
        client
            .batch_execute(&format!(
                "CREATE SCHEMA IF NOT EXISTS db_init;\n\
                 CREATE TABLE IF NOT EXISTS {RUNS} (name text PRIMARY KEY, checksum text, last_run_at timestamptz, execution_ms integer);"
            ))
            .await
            .map_err(|e| db("creating db_init.seed_runs", e))?;
        return Ok(Vec::new());
    }
    let rows = client
        .simple_query(&format!("SELECT name, checksum FROM {RUNS}"))
        .await
        .map_err(|e| db("reading db_init.seed_runs", e))?;
    Ok(rows
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some((
                r.get(0)?.to_string(),
                r.get(1).unwrap_or_default().to_string(),
            )),
            _ => None,
        })
        .collect())
}

fn record_sql(seed: &SeedFile) -> String {
    format!(
        "INSERT INTO {RUNS} (name, checksum, last_run_at, execution_ms) \
         VALUES ({}, '{}', now(), (extract(epoch FROM clock_timestamp() - now()) * 1000)::integer) \
         ON CONFLICT (name) DO UPDATE SET checksum = excluded.checksum, last_run_at = excluded.last_run_at, \
         execution_ms = excluded.execution_ms",
        quote_literal(&seed.name),
        seed.checksum
    )
}

impl SeedFile {
    fn is_sql(&self) -> bool {
        self.name.ends_with(".sql")
    }
}

async fn run_yaml(client: &Client, seed: &SeedFile) -> Result<(), SeedError> {
    let prepared = yaml::prepare(client, seed).await?;
    let db = |e: tokio_postgres::Error| SeedError::Database {
        context: format!("running {}", seed.name),
        message: crate::db::describe(&e),
    };
    client.batch_execute("BEGIN").await.map_err(db)?;
    let result = match yaml::execute(client, seed, &prepared).await {
        Ok(()) => client
            .batch_execute(&format!("{};\nCOMMIT", record_sql(seed)))
            .await
            .map_err(db),
        Err(e) => Err(e),
    };
    if result.is_err() {
        let _ = client.batch_execute("ROLLBACK").await;
    }
    result
}

async fn run_sql(client: &Client, seed: &SeedFile) -> Result<(), SeedError> {
    const PREFIX: &str = "BEGIN;\n";
    let body = seed.text.strip_prefix('\u{feff}').unwrap_or(&seed.text);
    let bom = seed.text.len() - body.len();
    let sql = format!("{PREFIX}{body}\n;\n{};\nCOMMIT;", record_sql(seed));
    let Err(e) = client.batch_execute(&sql).await else {
        return Ok(());
    };
    let _ = client.batch_execute("ROLLBACK").await;
    let Some(db) = e.as_db_error() else {
        return Err(SeedError::Database {
            context: format!("running {}", seed.name),
            message: crate::db::describe(&e),
        });
    };
    let (line, column) = match db.position() {
        Some(ErrorPosition::Original(p)) => {
            let at = (*p as usize).saturating_sub(1 + PREFIX.len());
            let byte = body.char_indices().nth(at).map_or(body.len(), |(b, _)| b) + bom;
            let (line, column) = line_col(&seed.text, byte);
            (Some(line), Some(column))
        }
        _ => (None, None),
    };
    Err(SeedError::Failed {
        file: seed.name.clone(),
        line,
        column,
        sqlstate: db.code().code().to_string(),
        message: db.message().to_string(),
        detail: db.detail().map(str::to_string),
        hint: db.hint().map(str::to_string),
    })
}
