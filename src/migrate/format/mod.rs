//! The format seam: what differs between migration tools, behind one small interface. A format
//! reads its folder into ordered migrations (identity, checksum, transaction mode), names and
//! fills its history table exactly as its tool does, and plans the folder against that table.
//! Planning, validation, applying, the lock, seeds, lint and many-database runs are shared and
//! know no format; each format's particulars stay in its own file here. To add a format: a file
//! implementing [`Format`], a [`Layout`] variant, and its place in [`FORMATS`].

mod by_history;
mod dbmate;
mod drizzle;
mod drizzle_journal;
mod drizzle_v1;
mod drizzle_v1_folder;
mod drizzle_v1_plan;
pub mod drizzle_v1_rules;
mod flyway;
mod flyway_plan;
mod flyway_rules;
mod golang_migrate;
mod goose;
mod goose_parse;
mod numbered;
mod prisma;
mod sqlx;

pub use by_history::redetect;
pub use numbered::parse_numbered;

use std::path::{Path, PathBuf};

use super::history::{Shape, Table};
use super::migration::Migration;
use super::plan::{Plan, Policy};
use super::source::{Layout, Source};
use super::MigrateError;
use crate::config::MigrateSettings;
use crate::config::OutOfOrder;

/// What a format is told of its folder, read once for every format to look at.
pub struct Folder {
    pub dir: PathBuf,
    /// Entries with a `migration.sql` inside (Drizzle v1's candidates).
    pub v1_folders: Vec<String>,
    /// `meta/_journal.json` (Drizzle 0.x).
    pub journal: bool,
    /// A `<version>_<name>.up.sql` file (golang-migrate).
    pub up_files: bool,
    /// The first `<digits>...sql` file has a `-- migrate:up` section (dbmate).
    pub dbmate: bool,
    /// The first `<digits>...sql` file has a `-- +goose Up` annotation (goose).
    pub goose: bool,
    /// A `V<version>__<description>.sql` or `R__<description>.sql` file (Flyway).
    pub flyway: bool,
}

impl Folder {
    pub fn read(dir: &Path) -> Result<Folder, MigrateError> {
        let mut folder = Folder {
            dir: dir.to_path_buf(),
            v1_folders: drizzle_v1_folder::folders(dir)?,
            journal: dir.join("meta").join("_journal.json").exists(),
            up_files: false,
            dbmate: false,
            goose: false,
            flyway: false,
        };
        // The markers that are file names are looked for only where no format asked earlier
        // claims the folder: a Drizzle start pays no second listing and no file read.
        let claimed = folder.journal
            || !folder.v1_folders.is_empty()
            || dir.join(prisma::LOCK_FILE).is_file();
        if !claimed {
            let mut names: Vec<String> = Vec::new();
            let mut subfolders = false;
            for e in std::fs::read_dir(dir)
                .map_err(super::source::io(dir))?
                .flatten()
            {
                subfolders |= e.file_type().is_ok_and(|t| t.is_dir());
                names.push(e.file_name().to_string_lossy().into_owned());
            }
            folder.up_files = names.iter().any(|n| golang_migrate::parse_up(n).is_some());
            // Flyway scans its location recursively: scripts in subfolders only are Flyway's,
            // unless numbered files at the top tell another layout.
            folder.flyway = names.iter().any(|n| flyway::parse_name(n).is_some())
                || (subfolders
                    && !names.iter().any(|n| parse_numbered(n).is_some())
                    && flyway::in_subfolders(dir)?);
            let first = first_text(dir, &names)?;
            folder.dbmate = first.as_deref().is_some_and(dbmate::is_dbmate);
            folder.goose = first.as_deref().is_some_and(goose::is_goose);
        }
        Ok(folder)
    }
}

/// The text of the first `<digits>...sql` file of the folder, which tells dbmate's and goose's
/// files from numbered ones (one file is read, whatever the folder's size).
fn first_text(dir: &Path, names: &[String]) -> Result<Option<String>, MigrateError> {
    let first = names
        .iter()
        .filter(|n| dbmate::version_of(n).is_some() && !n.ends_with(".down.sql"))
        .min();
    let Some(name) = first else {
        return Ok(None);
    };
    let path = dir.join(name);
    if !path.is_file() {
        return Ok(None);
    }
    let bytes = std::fs::read(&path).map_err(super::source::io(&path))?;
    Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
}

/// A change of the history table's shape that a run makes, in one transaction, before it
/// migrates (Drizzle v1 upgrading a 0.x table): planned by the format, which also writes its
/// statements ([`Format::upgrade_statements`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryUpgrade {
    /// What the table becomes, for the log.
    pub into: &'static str,
    /// Each row and the migration it was matched to, in the statements' order.
    pub matched: Vec<RowMatch>,
}

/// One history row of an upgrade and the migration it gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowMatch {
    /// The row's `id`.
    pub id: i64,
    /// The migration's name as the upgraded table records it.
    pub name: String,
}

/// The tool's history table kept under another name or schema: the columns that tell it from
/// other tables, and the setting that points db-init at it (for the first-contact hint).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LookAlike {
    pub columns: &'static [&'static str],
    pub tool: &'static str,
    pub setting: &'static str,
}

/// How a tool keys its advisory lock.
#[derive(Debug, Clone, Copy)]
pub enum ToolLock {
    /// One key for every database (Prisma's).
    Fixed(i64),
    /// Computed from the database's name and the history table's schema and name.
    Named(fn(&str, &str, &str) -> i64),
}

impl ToolLock {
    pub fn key(self, database: &str, schema: &str, table: &str) -> i64 {
        match self {
            ToolLock::Fixed(key) => key,
            ToolLock::Named(f) => f(database, schema, table),
        }
    }
}

/// One migration tool's folder and history table.
pub trait Format: Sync {
    fn layout(&self) -> Layout;
    /// Whether the folder is this format's (the formats are asked in [`FORMATS`] order).
    fn claims(&self, folder: &Folder) -> bool;
    /// Reads the folder's migrations into `source`: what is wrong with the folder goes into
    /// its problems and warnings; only an unreadable file is an error.
    fn load(
        &self,
        source: &mut Source,
        folder: Folder,
        settings: &MigrateSettings,
    ) -> Result<(), MigrateError>;
    /// The history table's schema and name.
    fn history_table(&self, settings: &MigrateSettings) -> (String, String);
    /// Its DDL, as the tool sends it (`qualified`: `"schema"."table"`).
    fn create_sql(&self, schema: &str, table: &str, qualified: &str) -> String;
    /// The version as people know it (`status`'s VERSION column).
    fn shown_version(&self, m: &Migration) -> String {
        m.version.to_string()
    }
    /// A column expression: `'none'` when the table (`table`: its quoted name as a literal) does
    /// not exist, else its [`Shape`] (`'v0'` or `'v1'`; only Drizzle's table has two).
    fn shape_expr(&self, table: &str) -> String {
        format!("CASE WHEN to_regclass({table}) IS NULL THEN 'none' ELSE 'v0' END")
    }
    /// The schema the tool puts first on the search path while it runs migrations, so that
    /// their unqualified names land there (Flyway's `defaultSchema`); `None`: the path as it is.
    fn migrates_in(&self, _settings: &MigrateSettings) -> Option<String> {
        None
    }
    /// Its rows as `id, version, checksum, name`, in the order the planner expects.
    fn rows_sql(&self, shape: Shape, qualified: &str) -> String;
    /// The statement that records `m` as applied (`execution_ms`: measured by the server
    /// inside the migration's transaction when `None`).
    fn insert_sql(
        &self,
        schema: &str,
        table: &str,
        qualified: &str,
        m: &Migration,
        execution_ms: Option<u64>,
    ) -> String;
    /// A checksum as a value of the table's checksum column (a text literal unless the tool
    /// stores it otherwise).
    fn checksum_sql(&self, checksum: &str) -> String {
        crate::pg::quote::quote_literal(checksum)
    }
    /// `(checksum column, key column, key value)` of `m`'s row, for `repair`.
    fn row_key(&self, m: &Migration) -> (&'static str, &'static str, String);
    /// `out_of_order` when the settings do not say: what the tool itself does.
    fn default_out_of_order(&self) -> OutOfOrder;
    /// How to recognise the tool's table elsewhere (`None`: its columns are no other tool's own).
    fn look_alike(&self) -> Option<LookAlike> {
        None
    }
    /// What the tool does with a pending migration older than the newest applied, for the
    /// problem that refuses it.
    fn out_of_order_note(&self) -> &'static str {
        "applied now, it would run after migrations newer than itself"
    }
    /// The tool's own advisory lock, which db-init also holds while it migrates, so that the
    /// tool's migrator and db-init never run at once in a mixed rollout.
    fn tool_lock(&self) -> Option<ToolLock> {
        None
    }
    /// Whether a history row whose version no file has still matches a pending file by its
    /// checksum (Drizzle 0.x identifies nothing by `when` itself).
    fn matches_moved_rows_by_checksum(&self) -> bool {
        false
    }
    /// The statements of an upgrade [`Format::plan`] asked for, without BEGIN/COMMIT.
    fn upgrade_statements(&self, _schema: &str, _table: &str, _up: &HistoryUpgrade) -> Vec<String> {
        Vec::new()
    }
    /// The file(s) `new NAME` writes, relative to the folder, with their text: the tool's own
    /// naming and template. `Err`: why db-init does not make it (a usage error).
    fn new_files(
        &self,
        source: &Source,
        slug: &str,
        now_ms: i64,
    ) -> Result<Vec<(String, String)>, String> {
        let v = super::new::next_version(source, now_ms, Some(4))?;
        Ok(vec![(
            format!("{v}_{slug}.sql"),
            format!(
                "-- {slug}\n-- Runs in one transaction with its history row; a migration holding CREATE INDEX\n\
                 -- CONCURRENTLY or its own BEGIN/COMMIT runs statement by statement outside one.\n\n"
            ),
        )])
    }
    /// Plans the folder against the table (`None`: it does not exist); the second part is a
    /// history upgrade the next run makes, when the format has one.
    fn plan(
        &self,
        migrations: &[Migration],
        table: Option<&Table>,
        policy: &Policy,
    ) -> (Plan, Option<HistoryUpgrade>) {
        // Rows by version, the shared planner; a format with its own identity overrides it.
        let rows = table.map(|t| t.rows.as_slice()).unwrap_or(&[]);
        (super::plan::plan(migrations, rows, policy), None)
    }
}

/// Reads the wanted files of `dir` into `source`, in the order given; an unreadable one is
/// the error.
fn read_into(
    source: &mut Source,
    dir: &Path,
    wanted: Vec<super::read::Wanted>,
) -> Result<(), MigrateError> {
    for read in super::read::read_all(dir, wanted) {
        source
            .migrations
            .push(read.map_err(|u| super::source::io(&u.path)(u.error))?);
    }
    Ok(())
}

/// The files of the folder that `parse` names (version, name), in version order, each read
/// into `source`; two files of one version are a problem. For formats of one file per version.
fn load_versioned(
    source: &mut Source,
    dir: &Path,
    parse: impl Fn(&str) -> Option<(i64, String)>,
) -> Result<(), MigrateError> {
    let mut wanted: Vec<super::read::Wanted> = Vec::new();
    for file in super::source::sorted_files(dir)? {
        let Some((version, name)) = parse(&file) else {
            continue;
        };
        if let Some(other) = wanted.iter().find(|w| w.version == version) {
            source.problems.push(super::Problem::Duplicate {
                version: version.to_string(),
                file: format!("{} and {file}", other.file),
            });
            continue;
        }
        wanted.push(super::read::Wanted {
            version,
            name,
            file,
            split: super::migration::Split::Statements,
        });
    }
    wanted.sort_by_key(|w| w.version);
    read_into(source, dir, wanted)
}

/// A file with goose's or dbmate's up/down sections in a folder read as whole files (its first
/// file has none): run whole, its down section would run right after its up section.
fn refuse_sectioned(source: &mut Source, read_as: &str) {
    let marked: Vec<(String, &str)> = source
        .migrations
        .iter()
        .filter_map(|m| {
            // The substring checks keep the line scans off the common, unmarked file.
            let goose = m.text.contains("+goose") && goose::is_goose(&m.text);
            let dbmate = m.text.contains("migrate:up") && dbmate::is_dbmate(&m.text);
            let tool = match (goose, dbmate) {
                (true, _) => "goose",
                (_, true) => "dbmate",
                _ => return None,
            };
            Some((m.file.clone(), tool))
        })
        .collect();
    for (file, tool) in marked {
        source.problems.push(super::Problem::Unsupported {
            file,
            at: None,
            what: format!(
                "has {tool}'s up/down sections, but the folder reads as {read_as} (its first file \
                 has none), which run whole, down section included; set `layout: {tool}`"
            ),
        });
    }
}

/// `new NAME` of a tool whose files are `<timestamp>_<name>.sql` (its default style; a folder
/// of sequence numbers keeps them), with the tool's template.
fn timestamped_file(
    source: &Source,
    slug: &str,
    now_ms: i64,
    template: &str,
) -> Result<Vec<(String, String)>, String> {
    let v = super::new::next_version(source, now_ms, None)?;
    Ok(vec![(format!("{v}_{slug}.sql"), template.to_string())])
}

/// Another tool's table: `history.schema` / `history.table` where set, else the search path's
/// first schema and the tool's own name.
fn tool_table(settings: &MigrateSettings, table: &str) -> (String, String) {
    (
        settings
            .history_schema
            .clone()
            .unwrap_or_else(|| search_path_schema(settings)),
        settings
            .history_table
            .clone()
            .unwrap_or_else(|| table.to_string()),
    )
}

/// The schema a tool without its own setting keeps its table in: the URL's `schema=` (the
/// session's search path), else public.
fn search_path_schema(settings: &MigrateSettings) -> String {
    settings
        .url_schema
        .as_deref()
        .unwrap_or("public")
        .to_string()
}

/// Asked in this order: the first that claims the folder reads it.
const FORMATS: &[&dyn Format] = &[
    // Before Drizzle v1: Prisma's folders have the same shape; its lock file tells them apart.
    &prisma::Prisma,
    &drizzle_v1::DrizzleV1,
    &drizzle::Drizzle,
    // Before numbered files, which `N_name.up.sql` files would also look like.
    &golang_migrate::GolangMigrate,
    // Before numbered files, whose names dbmate's share; its sections tell them apart.
    &dbmate::Dbmate,
    // As dbmate: its annotations tell its files from numbered ones.
    &goose::Goose,
    // `V1__` names are no other tool's.
    &flyway::Flyway,
    // Never claims a folder: only the `layout` setting names it.
    &sqlx::Sqlx,
    &numbered::Numbered,
];

/// The format that claims `folder` (numbered claims any folder).
pub fn detect(folder: &Folder) -> &'static dyn Format {
    FORMATS
        .iter()
        .copied()
        .find(|f| f.claims(folder))
        .unwrap_or(&numbered::Numbered)
}

/// The formats whose own marker file the folder holds, when it holds more than one: a guess
/// between them would be a guess at whose history table to write (the `layout` setting says).
pub fn ambiguous(folder: &Folder) -> Option<Vec<Layout>> {
    let marked: Vec<Layout> = [
        (folder.journal, Layout::Drizzle),
        (folder.dir.join(prisma::LOCK_FILE).is_file(), Layout::Prisma),
    ]
    .into_iter()
    .filter_map(|(has, layout)| has.then_some(layout))
    .collect();
    (marked.len() > 1).then_some(marked)
}

/// The format of a layout (a source already read, a document's `layout`).
pub fn of(layout: Layout) -> &'static dyn Format {
    FORMATS
        .iter()
        .copied()
        .find(|f| f.layout() == layout)
        .unwrap_or(&numbered::Numbered)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_layout_has_its_own_format() {
        for layout in [
            Layout::Drizzle,
            Layout::DrizzleV1,
            Layout::Prisma,
            Layout::GolangMigrate,
            Layout::Dbmate,
            Layout::Sqlx,
            Layout::Flyway,
            Layout::Goose,
            Layout::Numbered,
        ] {
            assert_eq!(of(layout).layout(), layout);
        }
    }

    #[test]
    fn the_first_format_that_claims_the_folder_reads_it() {
        let folder = |v1: &[&str], journal: bool| Folder {
            dir: PathBuf::from("."),
            v1_folders: v1.iter().map(|s| s.to_string()).collect(),
            journal,
            up_files: false,
            dbmate: false,
            goose: false,
            flyway: false,
        };
        let v1 = ["20250101120000_init"];
        assert_eq!(detect(&folder(&[], true)).layout(), Layout::Drizzle);
        assert_eq!(detect(&folder(&v1, false)).layout(), Layout::DrizzleV1);
        // Both: Drizzle v1's, which refuses the leftover journal (MixedLayout).
        assert_eq!(detect(&folder(&v1, true)).layout(), Layout::DrizzleV1);
        assert_eq!(detect(&folder(&[], false)).layout(), Layout::Numbered);
    }
}
