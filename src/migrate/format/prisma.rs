//! Prisma Migrate: `<timestamp>_<name>/migration.sql` folders beside `migration_lock.toml`
//! (provider `postgresql`), applied in folder-name order; the history is `_prisma_migrations`,
//! created with Prisma's own DDL and filled with the rows `prisma migrate deploy` writes (a
//! random UUID, the hex SHA-256 of the script, `started_at`, `finished_at`,
//! `applied_steps_count` 1), here in the migration's own transaction, so a failure leaves no
//! failed row. A failed row Prisma left (`finished_at` and `rolled_back_at` NULL) stops the run
//! as it stops Prisma, naming `prisma migrate resolve`.

use super::drizzle_v1_rules::parse_folder_name;
use super::{Folder, Format};
use crate::config::{MigrateSettings, OutOfOrder};
use crate::migrate::history::{Shape, Table};
use crate::migrate::migration::{Migration, Split};
use crate::migrate::plan::{Plan, Policy};
use crate::migrate::read::Wanted;
use crate::migrate::source::{io, Layout, Source};
use crate::migrate::{MigrateError, Problem};
use crate::pg::quote::{quote_ident, quote_literal};

pub const LOCK_FILE: &str = "migration_lock.toml";
const TABLE: &str = "_prisma_migrations";

/// In the rows read for the planner, the `version` of a row Prisma started and never finished
/// (nor rolled back); a finished row has none (its folder name holds its timestamp).
const UNFINISHED: i64 = -1;
/// The same, while Prisma holds its lock: a `prisma migrate deploy` at work right now, which
/// db-init waits for (under Prisma's lock, see [`Format::tool_lock`]) instead of refusing.
const IN_PROGRESS: i64 = -2;
/// Prisma Migrate's advisory lock (prisma-engines' postgres flavour).
const PRISMA_LOCK: i64 = 72707369;

pub struct Prisma;

impl Format for Prisma {
    fn layout(&self) -> Layout {
        Layout::Prisma
    }

    fn claims(&self, folder: &Folder) -> bool {
        folder.dir.join(LOCK_FILE).is_file()
    }

    fn load(
        &self,
        source: &mut Source,
        folder: Folder,
        _settings: &MigrateSettings,
    ) -> Result<(), MigrateError> {
        // Without its lock file the folder is Prisma's by the `layout` setting or by the
        // database's `_prisma_migrations`; there is no provider to check then.
        let lock = folder.dir.join(LOCK_FILE);
        let text = match lock.is_file() {
            true => Some(std::fs::read_to_string(&lock).map_err(io(&lock))?),
            false => None,
        };
        match text.as_deref().map(provider) {
            None | Some(Some("postgresql")) => {}
            Some(found) => {
                source.problems.push(Problem::PrismaProvider {
                    found: found.unwrap_or("none").to_string(),
                });
                return Ok(());
            }
        }
        // Prisma orders the folders by name and identifies each by it.
        let mut names = folder.v1_folders;
        names.sort();
        let wanted = names
            .into_iter()
            .map(|name| Wanted {
                version: parse_folder_name(&name).map_or(0, |p| p.created_at_millis),
                file: format!("{name}/migration.sql"),
                name,
                split: Split::Statements,
            })
            .collect();
        super::read_into(source, &folder.dir, wanted)
    }

    fn history_table(&self, settings: &MigrateSettings) -> (String, String) {
        // Where Prisma keeps it: the URL's `schema=` (also the session's search path), else public.
        (super::search_path_schema(settings), TABLE.into())
    }

    fn create_sql(&self, schema: &str, _table: &str, qualified: &str) -> String {
        // Prisma's DDL (prisma-engines, sql-schema-connector, postgres flavour), qualified.
        format!(
            "CREATE SCHEMA IF NOT EXISTS {};\n\
             CREATE TABLE IF NOT EXISTS {qualified} (\n\
             \x20   id                      VARCHAR(36) PRIMARY KEY NOT NULL,\n\
             \x20   checksum                VARCHAR(64) NOT NULL,\n\
             \x20   finished_at             TIMESTAMPTZ,\n\
             \x20   migration_name          VARCHAR(255) NOT NULL,\n\
             \x20   logs                    TEXT,\n\
             \x20   rolled_back_at          TIMESTAMPTZ,\n\
             \x20   started_at              TIMESTAMPTZ NOT NULL DEFAULT now(),\n\
             \x20   applied_steps_count     INTEGER NOT NULL DEFAULT 0\n\
             );",
            quote_ident(schema)
        )
    }

    fn rows_sql(&self, _shape: Shape, qualified: &str) -> String {
        // Rolled-back rows are history Prisma no longer counts. `id` is a row number (Prisma's
        // is a UUID), `version` marks an unfinished row.
        format!(
            "SELECT row_number() OVER (ORDER BY started_at, id), \
             CASE WHEN finished_at IS NOT NULL THEN NULL WHEN {} THEN {IN_PROGRESS} ELSE {UNFINISHED} END, \
             checksum, migration_name \
             FROM {qualified} WHERE rolled_back_at IS NULL ORDER BY started_at, id",
            crate::pg::lock::held_elsewhere_expr(PRISMA_LOCK)
        )
    }

    fn insert_sql(
        &self,
        _schema: &str,
        _table: &str,
        qualified: &str,
        m: &Migration,
        execution_ms: Option<u64>,
    ) -> String {
        // Inside the migration's transaction it started at now(); outside one it took `ms`.
        let started = match execution_ms {
            Some(ms) => format!("clock_timestamp() - interval '{ms} milliseconds'"),
            None => "now()".into(),
        };
        format!(
            "INSERT INTO {qualified} (id, checksum, finished_at, migration_name, logs, rolled_back_at, \
             started_at, applied_steps_count) VALUES ('{}', '{}', clock_timestamp(), {}, NULL, NULL, {started}, 1)",
            uuid_v4(),
            m.checksum,
            quote_literal(&m.name)
        )
    }

    fn row_key(&self, m: &Migration) -> (&'static str, &'static str, String) {
        ("checksum", "migration_name", quote_literal(&m.name))
    }

    fn tool_lock(&self) -> Option<super::ToolLock> {
        // prisma-engines' postgres flavour: `SELECT pg_advisory_lock(72707369)`.
        Some(super::ToolLock::Fixed(PRISMA_LOCK))
    }

    fn new_files(
        &self,
        source: &Source,
        slug: &str,
        now_ms: i64,
    ) -> Result<Vec<(String, String)>, String> {
        // As `prisma migrate dev --create-only` names and fills it.
        let stamp = crate::migrate::new::next_stamp(&source.migrations, now_ms);
        Ok(vec![(
            format!("{stamp}_{slug}/migration.sql"),
            "-- This is an empty migration.\n".into(),
        )])
    }

    fn look_alike(&self) -> Option<super::LookAlike> {
        Some(super::LookAlike {
            columns: &["applied_steps_count", "rolled_back_at"],
            tool: "Prisma",
            setting: "the URL's schema= (where Prisma keeps _prisma_migrations)",
        })
    }

    fn default_out_of_order(&self) -> OutOfOrder {
        // `prisma migrate deploy` applies every folder it has no row for, whatever its name.
        OutOfOrder::Allow
    }

    fn plan(
        &self,
        migrations: &[Migration],
        table: Option<&Table>,
        policy: &Policy,
    ) -> (Plan, Option<super::HistoryUpgrade>) {
        let (unfinished, finished): (Vec<_>, Vec<_>) = table
            .map(|t| t.rows.clone())
            .unwrap_or_default()
            .into_iter()
            // A deploy at work: its migration is not applied yet (the run waits for Prisma's lock).
            .filter(|r| r.version != Some(IN_PROGRESS))
            .partition(|r| r.version == Some(UNFINISHED));
        // Identified by folder name, as Drizzle v1's: the same planner, never an upgrade.
        let table = table.map(|_| Table {
            shape: Shape::V1,
            rows: finished,
        });
        let (mut plan, _) = super::drizzle_v1_plan::plan(migrations, table.as_ref(), policy);
        for row in unfinished {
            let name = row.name.unwrap_or_default();
            plan.problems.push(Problem::Unfinished {
                fix: format!(
                    "find out what of it reached the database, then record the outcome as Prisma \
                     does: `npx prisma migrate resolve --rolled-back \"{name}\"` (undone: db-init \
                     applies it again) or `--applied \"{name}\"` (completed by hand)"
                ),
                migration: name,
                tool: "Prisma",
            });
        }
        (plan, None)
    }
}

/// `provider = "postgresql"` of `migration_lock.toml` (a TOML file of one key, read as Prisma
/// writes it).
fn provider(text: &str) -> Option<&str> {
    text.lines().find_map(|line| {
        let (key, value) = line.split_once('=')?;
        (key.trim() == "provider").then(|| value.trim().trim_matches('"'))
    })
}

/// A random UUID, version 4, as Prisma's ids are.
fn uuid_v4() -> String {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 16];
    // The system's random source; should it fail, a time-based value still differs per row.
    if ring::rand::SystemRandom::new().fill(&mut b).is_err() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        b = (t ^ u128::from(std::process::id()).rotate_left(64)).to_le_bytes();
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_file_names_its_provider() {
        let file = "# Please do not edit this file manually\n# It should be added in your version-control system (e.g., Git)\nprovider = \"postgresql\"\n";
        assert_eq!(provider(file), Some("postgresql"));
        assert_eq!(provider("provider = \"mysql\""), Some("mysql"));
        assert_eq!(provider("# nothing"), None);
    }

    #[test]
    fn ids_are_uuid_v4() {
        let a = uuid_v4();
        assert_eq!(a.len(), 36);
        assert_eq!(a.as_bytes()[14], b'4');
        assert!(matches!(a.as_bytes()[19], b'8' | b'9' | b'a' | b'b'), "{a}");
        assert_ne!(a, uuid_v4());
    }
}
