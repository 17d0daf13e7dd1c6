//! Drizzle 1.0: `<YYYYMMDDHHMMSS>_<name>/migration.sql` folders and no journal, read as
//! drizzle-orm 1.0's migrator reads them (`drizzle_v1_folder.rs`); the history table gains `name` and
//! `applied_at`, and a 0.x table is upgraded in place as Drizzle v1 upgrades it
//! (`drizzle_v1_rules.rs` has Drizzle's own statements).

use super::drizzle_v1_rules as v1;
use super::HistoryUpgrade;
use super::{Folder, Format};
use crate::config::MigrateSettings;
use crate::config::OutOfOrder;
use crate::migrate::history::{Shape, Table};
use crate::migrate::migration::Migration;
use crate::migrate::plan::{Plan, Policy};
use crate::migrate::source::{Layout, Source};
use crate::migrate::{MigrateError, Problem};

pub struct DrizzleV1;

impl Format for DrizzleV1 {
    fn layout(&self) -> Layout {
        Layout::DrizzleV1
    }

    fn claims(&self, folder: &Folder) -> bool {
        !folder.v1_folders.is_empty()
    }

    fn load(
        &self,
        source: &mut Source,
        folder: Folder,
        _settings: &MigrateSettings,
    ) -> Result<(), MigrateError> {
        // A leftover journal beside v1 folders: Drizzle v1 refuses the folder, and so does db-init.
        if folder.journal {
            source.problems.push(Problem::MixedLayout);
            return Ok(());
        }
        super::drizzle_v1_folder::load(source, folder.v1_folders)
    }

    fn history_table(&self, settings: &MigrateSettings) -> (String, String) {
        super::drizzle::history_table(settings)
    }

    fn create_sql(&self, schema: &str, table: &str, _qualified: &str) -> String {
        format!(
            "CREATE SCHEMA IF NOT EXISTS {};\n{};",
            crate::pg::quote::quote_ident(schema),
            v1::create_table_sql(schema, table)
        )
    }

    fn shape_expr(&self, table: &str) -> String {
        super::drizzle::shape_expr(table)
    }

    fn rows_sql(&self, shape: Shape, qualified: &str) -> String {
        super::drizzle::rows_sql(shape, qualified)
    }

    fn insert_sql(
        &self,
        schema: &str,
        table: &str,
        _qualified: &str,
        m: &Migration,
        _execution_ms: Option<u64>,
    ) -> String {
        v1::insert_sql(schema, table, &m.name, &m.checksum, m.version)
    }

    fn row_key(&self, m: &Migration) -> (&'static str, &'static str, String) {
        ("hash", "name", crate::pg::quote::quote_literal(&m.name))
    }

    fn new_files(
        &self,
        source: &Source,
        slug: &str,
        now_ms: i64,
    ) -> Result<Vec<(String, String)>, String> {
        // As `drizzle-kit generate --custom` names and fills it.
        let stamp = crate::migrate::new::next_stamp(&source.migrations, now_ms);
        Ok(vec![(
            format!("{stamp}_{slug}/migration.sql"),
            format!("-- {slug}\n-- Custom SQL migration file, put your code below! --\n"),
        )])
    }

    fn look_alike(&self) -> Option<super::LookAlike> {
        Some(super::drizzle::LOOK_ALIKE)
    }

    fn default_out_of_order(&self) -> OutOfOrder {
        // Drizzle v1 applies every folder it has no row for, whatever its timestamp.
        OutOfOrder::Allow
    }

    fn plan(
        &self,
        migrations: &[Migration],
        table: Option<&Table>,
        policy: &Policy,
    ) -> (Plan, Option<HistoryUpgrade>) {
        super::drizzle_v1_plan::plan(migrations, table, policy)
    }

    fn upgrade_statements(&self, schema: &str, table: &str, up: &HistoryUpgrade) -> Vec<String> {
        v1::upgrade_statements(schema, table, &up.matched)
    }
}
