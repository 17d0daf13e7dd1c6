//! Drizzle 0.x: `meta/_journal.json` names each migration (`<tag>.sql`, its `when`), read as
//! drizzle-orm's migrator reads it; the history is `drizzle.__drizzle_migrations` (`id`,
//! `hash`, `created_at`), created and filled exactly as Drizzle does.

use std::collections::HashSet;
use std::path::Path;

use super::{Folder, Format};
use crate::config::OutOfOrder;
use crate::config::{MigrateSettings, Unlisted};
use crate::migrate::history::Shape;
use crate::migrate::migration::{Migration, Split};
use crate::migrate::read::{read_all, Wanted};
use crate::migrate::source::{io, sorted_files, Layout, Source};
use crate::migrate::{MigrateError, Problem, Warning};

pub struct Drizzle;

impl Format for Drizzle {
    fn layout(&self) -> Layout {
        Layout::Drizzle
    }

    fn claims(&self, folder: &Folder) -> bool {
        folder.journal
    }

    fn load(
        &self,
        source: &mut Source,
        folder: Folder,
        settings: &MigrateSettings,
    ) -> Result<(), MigrateError> {
        let journal = folder.dir.join("meta").join("_journal.json");
        load_journal(source, &journal, settings.unlisted_files)
    }

    fn history_table(&self, settings: &MigrateSettings) -> (String, String) {
        history_table(settings)
    }

    fn create_sql(&self, schema: &str, _table: &str, qualified: &str) -> String {
        let schema = crate::pg::quote::quote_ident(schema);
        format!(
            "CREATE SCHEMA IF NOT EXISTS {schema};\n\
             CREATE TABLE IF NOT EXISTS {qualified} (\n\tid SERIAL PRIMARY KEY,\n\thash text NOT NULL,\n\tcreated_at bigint\n);"
        )
    }

    fn shape_expr(&self, table: &str) -> String {
        shape_expr(table)
    }

    fn rows_sql(&self, shape: Shape, qualified: &str) -> String {
        rows_sql(shape, qualified)
    }

    fn insert_sql(
        &self,
        _schema: &str,
        _table: &str,
        qualified: &str,
        m: &Migration,
        _execution_ms: Option<u64>,
    ) -> String {
        format!(
            "INSERT INTO {qualified} (\"hash\", \"created_at\") VALUES ('{}', {})",
            m.checksum, m.version
        )
    }

    fn row_key(&self, m: &Migration) -> (&'static str, &'static str, String) {
        ("hash", "created_at", m.version.to_string())
    }

    fn new_files(
        &self,
        _source: &Source,
        _slug: &str,
        _now_ms: i64,
    ) -> Result<Vec<(String, String)>, String> {
        Err("this is a Drizzle folder: create migrations with `drizzle-kit generate` (or `--custom`) so the journal stays right".into())
    }

    fn default_out_of_order(&self) -> OutOfOrder {
        OutOfOrder::Error
    }

    fn out_of_order_note(&self) -> &'static str {
        "Drizzle would skip it silently"
    }

    fn look_alike(&self) -> Option<super::LookAlike> {
        Some(LOOK_ALIKE)
    }

    fn matches_moved_rows_by_checksum(&self) -> bool {
        true
    }
}

/// A Drizzle history table under another name (0.x and 1.0 alike).
pub(super) const LOOK_ALIKE: super::LookAlike = super::LookAlike {
    columns: &["hash", "created_at"],
    tool: "Drizzle",
    setting: "drizzle.schema / drizzle.table (Drizzle's migrationsSchema / migrationsTable)",
};

/// Drizzle's history table, 0.x and 1.0 alike: `migrationsSchema` / `migrationsTable`.
pub(super) fn history_table(settings: &MigrateSettings) -> (String, String) {
    (
        settings.drizzle_schema.clone(),
        settings.drizzle_table.clone(),
    )
}

/// Whether a Drizzle history table has v1's `name` column (drizzle-orm 1.0's shape).
pub(super) fn shape_expr(table: &str) -> String {
    format!(
        "CASE WHEN to_regclass({table}) IS NULL THEN 'none' \
         WHEN EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass({table}) \
         AND attname = 'name' AND NOT attisdropped) THEN 'v1' ELSE 'v0' END"
    )
}

/// A Drizzle history table's rows; a v1-shaped one (`name`) keeps the same rows, with names.
pub(super) fn rows_sql(shape: Shape, qualified: &str) -> String {
    match shape {
        Shape::V0 => format!("SELECT id, created_at, hash, NULL FROM {qualified} ORDER BY id"),
        Shape::V1 => format!("SELECT id, created_at, hash, name FROM {qualified} ORDER BY id"),
    }
}

#[derive(serde::Deserialize)]
struct Journal {
    entries: Vec<JournalEntry>,
}

#[derive(serde::Deserialize)]
struct JournalEntry {
    #[serde(default)]
    idx: Option<i64>,
    tag: String,
    when: i64,
}

fn load_journal(
    source: &mut Source,
    journal_path: &Path,
    unlisted: Unlisted,
) -> Result<(), MigrateError> {
    let dir = source.dir.clone();
    let bytes = std::fs::read(journal_path).map_err(io(journal_path))?;
    let journal: Journal = match serde_json::from_slice(&bytes) {
        Ok(j) => j,
        Err(e) => {
            source.problems.push(Problem::BadJournal {
                file: journal_path.display().to_string(),
                line: e.line(),
                column: e.column(),
                message: e.to_string(),
            });
            return Ok(());
        }
    };
    let order: Vec<_> = journal
        .entries
        .iter()
        .map(|e| super::drizzle_journal::Entry {
            idx: e.idx,
            tag: &e.tag,
            when: e.when,
        })
        .collect();
    source
        .warnings
        .extend(super::drizzle_journal::branch_conflicts(&order));
    let mut tags = HashSet::new();
    let mut whens = HashSet::new();
    let mut listed = HashSet::new();
    let mut wanted = Vec::new();
    for entry in &journal.entries {
        let file = format!("{}.sql", entry.tag);
        listed.insert(file.clone());
        if !is_plain_file_name(&entry.tag) {
            source.problems.push(Problem::BadTag {
                tag: entry.tag.clone(),
            });
            continue;
        }
        if !tags.insert(entry.tag.as_str()) {
            source.problems.push(Problem::Duplicate {
                version: format!("tag {}", entry.tag),
                file,
            });
            continue;
        }
        if !whens.insert(entry.when) {
            source.problems.push(Problem::Duplicate {
                version: format!("when {}", entry.when),
                file,
            });
            continue;
        }
        wanted.push(Wanted {
            version: entry.when,
            name: entry.tag.clone(),
            file,
            split: Split::Breakpoints,
        });
    }
    for read in read_all(&dir, wanted) {
        match read {
            Ok(m) => source.migrations.push(m),
            Err(u) if u.error.kind() == std::io::ErrorKind::NotFound => {
                source.problems.push(Problem::NoFileForEntry {
                    tag: u.wanted.name,
                    file: u.wanted.file,
                })
            }
            Err(u) => return Err(io(&u.path)(u.error)),
        }
    }
    for name in sorted_files(&dir)? {
        if name.ends_with(".sql") && !listed.contains(&name) {
            match unlisted {
                Unlisted::Warn => source.warnings.push(Warning::NotInJournal { file: name }),
                Unlisted::Error => source.problems.push(Problem::NotInJournal { file: name }),
            }
        }
    }
    Ok(())
}

/// A tag names `<tag>.sql` in the folder itself: no separators, no `..`, nothing absolute.
fn is_plain_file_name(tag: &str) -> bool {
    !tag.is_empty()
        && tag != "."
        && tag != ".."
        && !tag.contains(['/', '\\', '\0'])
        && Path::new(tag).components().count() == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_must_be_plain_file_names() {
        assert!(is_plain_file_name("0000_light_mephisto"));
        for bad in ["../outside", "/etc/passwd", "a/b", "..", ".", "", "a\\b"] {
            assert!(!is_plain_file_name(bad), "{bad}");
        }
    }
}
