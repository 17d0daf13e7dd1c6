//! Numbered SQL files (`<digits>_<name>.sql`, `.down.sql` ignored), db-init's own format: the
//! version is the number, the history is `db_init.schema_migrations` with the checksum, the
//! time each migration took and who applied it.

use super::{Folder, Format};
use crate::config::MigrateSettings;
use crate::config::OutOfOrder;
use crate::migrate::history::Shape;
use crate::migrate::migration::{Migration, Split};
use crate::migrate::read::{read_all, Wanted};
use crate::migrate::source::{io, sorted_files, Layout, Source};
use crate::migrate::{MigrateError, Problem};
use crate::pg::quote::quote_literal;

pub struct Numbered;

impl Format for Numbered {
    fn layout(&self) -> Layout {
        Layout::Numbered
    }

    fn claims(&self, _folder: &Folder) -> bool {
        true
    }

    fn load(
        &self,
        source: &mut Source,
        _folder: Folder,
        _settings: &MigrateSettings,
    ) -> Result<(), MigrateError> {
        load_numbered(source)?;
        super::refuse_sectioned(source, "numbered files");
        Ok(())
    }

    fn history_table(&self, _settings: &MigrateSettings) -> (String, String) {
        ("db_init".into(), "schema_migrations".into())
    }

    fn create_sql(&self, schema: &str, _table: &str, qualified: &str) -> String {
        let schema = crate::pg::quote::quote_ident(schema);
        format!(
            "CREATE SCHEMA IF NOT EXISTS {schema};\n\
             CREATE TABLE IF NOT EXISTS {qualified} (\n\
             \tversion bigint PRIMARY KEY,\n\
             \tname text NOT NULL,\n\
             \tchecksum text NOT NULL,\n\
             \tapplied_at timestamptz NOT NULL DEFAULT now(),\n\
             \texecution_ms integer NOT NULL,\n\
             \tapplied_by text\n);"
        )
    }

    fn rows_sql(&self, _shape: Shape, qualified: &str) -> String {
        format!("SELECT NULL, version, checksum, NULL FROM {qualified} ORDER BY version")
    }

    fn insert_sql(
        &self,
        _schema: &str,
        _table: &str,
        qualified: &str,
        m: &Migration,
        execution_ms: Option<u64>,
    ) -> String {
        let ms = match execution_ms {
            Some(ms) => ms.min(i32::MAX as u64).to_string(),
            None => "(extract(epoch FROM clock_timestamp() - now()) * 1000)::integer".into(),
        };
        format!(
            "INSERT INTO {qualified} (version, name, checksum, execution_ms, applied_by) VALUES ({}, {}, '{}', {ms}, {})",
            m.version,
            quote_literal(&m.name),
            m.checksum,
            quote_literal(&applied_by()),
        )
    }

    fn row_key(&self, m: &Migration) -> (&'static str, &'static str, String) {
        ("checksum", "version", m.version.to_string())
    }

    fn default_out_of_order(&self) -> OutOfOrder {
        OutOfOrder::Error
    }
}

fn load_numbered(source: &mut Source) -> Result<(), MigrateError> {
    let dir = source.dir.clone();
    let subfolders = std::fs::read_dir(&dir)
        .map_err(io(&dir))?
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .count();
    let mut seen: std::collections::HashMap<i64, String> = std::collections::HashMap::new();
    let mut wanted = Vec::new();
    for name in sorted_files(&dir)? {
        if name.starts_with('.') || name.ends_with(".down.sql") {
            continue;
        }
        let Some((version, rest)) = parse_numbered(&name) else {
            let digits = name.split('_').next().unwrap_or("");
            let too_large = name.ends_with(".sql")
                && !digits.is_empty()
                && digits.bytes().all(|b| b.is_ascii_digit());
            source.problems.push(match too_large {
                true => Problem::VersionTooLarge { file: name.clone() },
                false => Problem::UnexpectedFile { file: name.clone() },
            });
            continue;
        };
        if let Some(other) = seen.get(&version) {
            source.problems.push(Problem::Duplicate {
                version: version.to_string(),
                file: format!("{other} and {name}"),
            });
            continue;
        }
        seen.insert(version, name.clone());
        wanted.push(Wanted {
            version,
            name: rest.to_string(),
            file: name,
            split: Split::Statements,
        });
    }
    for read in read_all(&dir, wanted) {
        source
            .migrations
            .push(read.map_err(|u| io(&u.path)(u.error))?);
    }
    source.migrations.sort_by_key(|m| m.version);
    // A folder of folders that are not Drizzle v1 migrations is no layout db-init knows: never
    // a silent success with nothing applied.
    if source.migrations.is_empty() && source.problems.is_empty() && subfolders > 0 {
        source.problems.push(Problem::UnknownLayout);
    }
    Ok(())
}

/// `0001_init.sql` -> (1, "init"). The version is all digits and fits an i64.
pub fn parse_numbered(file: &str) -> Option<(i64, &str)> {
    let stem = file.strip_suffix(".sql")?;
    let (digits, name) = stem.split_once('_')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || name.is_empty() {
        return None;
    }
    Some((digits.parse().ok()?, name))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_names() {
        assert_eq!(parse_numbered("0001_init.sql"), Some((1, "init")));
        assert_eq!(
            parse_numbered("20250101120000_add_users.sql"),
            Some((20250101120000, "add_users"))
        );
        assert_eq!(parse_numbered("init.sql"), None);
        assert_eq!(parse_numbered("0001.sql"), None);
        assert_eq!(parse_numbered("01a_x.sql"), None);
    }
}
