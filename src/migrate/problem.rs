//! What is wrong with a folder against a database: problems stop a run before anything is
//! applied (exit 7), warnings are logged and shown by `status`. Each message says what to do.

use std::fmt;

/// Something that stops a run before anything is applied (exit 7).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Problem {
    Changed {
        file: String,
        /// What `repair --migration` takes.
        tag: String,
        stored: String,
        local: String,
    },
    Missing {
        version: Option<i64>,
        /// Drizzle v1: the recorded folder name.
        name: Option<String>,
        checksum: String,
    },
    OutOfOrder {
        file: String,
        newest_applied: i64,
        /// What the folder's own tool does with it ([`crate::migrate::format::Format::out_of_order_note`]).
        #[serde(skip)]
        tool_does: &'static str,
    },
    /// A pending version below the newest applied, refused as the tool itself refuses it.
    OutOfOrderVersion {
        file: String,
        tool: &'static str,
        newest_applied: String,
    },
    NoFileForEntry {
        tag: String,
        file: String,
    },
    /// A `.sql` file the journal does not name, with `unlisted_files: error`.
    NotInJournal {
        file: String,
    },
    /// A journal tag that is not a plain file name (`../x`, `/etc/x`, `a/b`).
    BadTag {
        tag: String,
    },
    Duplicate {
        version: String,
        file: String,
    },
    /// Two repeatable scripts of one description (Flyway's `R__<description>.sql`).
    DuplicateRepeatable {
        description: String,
        file: String,
    },
    UnexpectedFile {
        file: String,
    },
    /// A numbered file whose version does not fit a 64-bit integer.
    VersionTooLarge {
        file: String,
    },
    BadJournal {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },
    AtomicWithNoTransaction {
        file: String,
    },
    /// The history has no row, and a pending statement creates what the database already has:
    /// a database built without the history (`drizzle-kit push`, a restore, by hand), or a
    /// history kept elsewhere.
    AlreadyThere {
        file: String,
        line: usize,
        column: usize,
        object: String,
        history: String,
        /// Tables shaped like the tool's history table, under another name.
        elsewhere: Option<String>,
        /// The tool whose table they look like, and its setting.
        #[serde(skip)]
        look_alike: Option<super::format::LookAlike>,
    },
    /// A migration that must commit after an `ADD VALUE` (`label_commits`).
    AtomicWithLabelCommit {
        file: String,
    },
    /// A Drizzle 0.x journal beside Drizzle v1 migration folders.
    MixedLayout,
    /// Subfolders, but no migration of any layout.
    UnknownLayout,
    /// A v1 folder name Drizzle cannot turn into a timestamp.
    BadFolderName {
        name: String,
        reason: String,
    },
    /// Two v1 folders whose order Drizzle decides by locale rules db-init does not reproduce.
    Unorderable {
        message: String,
    },
    /// A v1 folder renamed after it was applied: its hash is recorded under the old name, and
    /// Drizzle would apply it again under the new one.
    Renamed {
        recorded: String,
        local: String,
    },
    /// A 0.x history table whose rows Drizzle v1's upgrade cannot match to local folders.
    UpgradeUnmatched {
        ids: Vec<i64>,
    },
    /// History rows newer than every migration of the folder, with `database_ahead: error`.
    Ahead {
        rows: Vec<String>,
    },
    BaselineTarget {
        target: String,
    },
    /// `baseline --migration` naming a migration that is already recorded.
    BaselineApplied {
        target: String,
    },
    RepairTarget {
        target: String,
    },
    /// A lock-analysis finding that stops the run: the statement would fail, or `lint: error`.
    Lint {
        finding: String,
        fails: bool,
    },
    /// A warning that `validate` fails on (see [`Warning::fails_validate`]).
    Validate {
        warning: Warning,
    },
    /// A feature of the tool's files that db-init does not reproduce (Flyway's placeholders):
    /// refused before anything runs rather than sent as written.
    Unsupported {
        file: String,
        /// Line and column, where the file has one.
        at: Option<(usize, usize)>,
        what: String,
    },
    /// The folder holds the marker files of more than one tool.
    AmbiguousFormat {
        candidates: Vec<super::Layout>,
    },
    /// `migration_lock.toml` names another database than PostgreSQL.
    PrismaProvider {
        found: String,
    },
    /// A history row the tool started and never finished: the tool itself refuses to go on.
    Unfinished {
        migration: String,
        tool: &'static str,
        fix: String,
    },
    /// A seed that does not fit the live tables (online `validate`): the run would fail on it.
    Seed {
        file: String,
        message: String,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Changed { file, tag, stored, local } => write!(
                f,
                "{file}: changed after it was applied (checksum in history {stored}, file now {local}); \
                 restore the file and put the change in a new migration, or, if the edit is deliberate \
                 and already in the database, record the new checksum with `db-init repair --migration {tag}`"
            ),
            Problem::Missing { version, name, checksum } => write!(
                f,
                "applied migration {} (checksum {checksum}) has no file any more; restore it, or set \
                 allow_missing: true",
                name.clone()
                    .or(version.map(|v| v.to_string()))
                    .unwrap_or("without version".to_string())
            ),
            Problem::OutOfOrder { file, newest_applied, tool_does } => write!(
                f,
                "{file}: pending but older than the newest applied migration ({newest_applied}); \
                 {tool_does}. Give it a version after the newest one, or set out_of_order: allow \
                 to apply it"
            ),
            Problem::OutOfOrderVersion { file, tool, newest_applied } => write!(
                f,
                "{file}: pending but older than the newest applied version ({newest_applied}); {tool} \
                 refuses it too. Give it a version after the newest one, or set out_of_order: allow \
                 to apply it"
            ),
            Problem::NoFileForEntry { tag, file } => {
                write!(f, "journal entry {tag} has no file {file}")
            }
            Problem::NotInJournal { file } => write!(
                f,
                "{file} is not in meta/_journal.json (Drizzle ignores it; unlisted_files: error makes it \
                 an error): remove it, or set unlisted_files: warn"
            ),
            Problem::BadTag { tag } => write!(
                f,
                "journal tag {tag:?} is not a plain file name in the migrations folder; db-init reads no \
                 file outside it"
            ),
            Problem::Duplicate { version, file } => write!(f, "version {version} is used twice: {file}"),
            Problem::DuplicateRepeatable { description, file } => write!(
                f,
                "repeatable {description:?} is defined twice: {file} (Flyway refuses this too); \
                 rename one"
            ),
            Problem::UnexpectedFile { file } => write!(
                f,
                "{file}: not a migration (expected <digits>_<name>.sql or *.down.sql)"
            ),
            Problem::VersionTooLarge { file } => write!(
                f,
                "{file}: the version number is larger than 9223372036854775807 (a 64-bit integer); \
                 use a shorter number, such as a YYYYMMDDHHMMSS timestamp"
            ),
            Problem::BadJournal { file, line, column, message } => {
                write!(f, "{file}:{line}:{column}: invalid journal: {message}")
            }
            Problem::AtomicWithNoTransaction { file } => write!(
                f,
                "{file} must run outside a transaction, so it cannot be part of an atomic: true batch"
            ),
            Problem::AlreadyThere { file, line, column, object, history, elsewhere, look_alike } => {
                write!(
                    f,
                    "{file}:{line}:{column}: creates {object}, which the database already has, while the history \
                     table {history} has no row: the database was built without this history (`drizzle-kit push`, \
                     `prisma db push`, a restore, or by hand). Record \
                     the migrations it already has with `db-init baseline --to <tag>` (or `--migration <tag>`), \
                     then run again"
                )?;
                match (elsewhere, look_alike) {
                    (Some(tables), Some(like)) => write!(
                        f,
                        "; or, if {tables} (which looks like a {} history table) is this app's, point db-init \
                         at it with {}",
                        like.tool, like.setting
                    ),
                    _ => Ok(()),
                }
            }
            Problem::AtomicWithLabelCommit { file } => write!(
                f,
                "{file} uses an enum label it adds, so it commits after the ADD VALUE (55P04 otherwise): \
                 it cannot be part of an atomic: true batch"
            ),
            Problem::MixedLayout => write!(
                f,
                "meta/_journal.json (Drizzle 0.x) beside Drizzle v1 migration folders: Drizzle v1 refuses this \
                 (\"{}\"); convert the rest with `drizzle-kit up`, or remove the leftover journal",
                super::format::drizzle_v1_rules::OLD_LAYOUT_MESSAGE
            ),
            Problem::UnknownLayout => write!(
                f,
                "no migrations found: the folder holds subfolders but neither Drizzle v1 folders \
                 (<YYYYMMDDHHMMSS>_<name>/migration.sql), a Drizzle journal (meta/_journal.json) nor \
                 numbered files (<digits>_<name>.sql); check the `migrations` setting"
            ),
            Problem::BadFolderName { name, reason } => write!(
                f,
                "{name}/migration.sql: the folder name does not start with a YYYYMMDDHHMMSS timestamp \
                 ({reason}); Drizzle v1 would run its SQL and then fail to record it. Rename it the way \
                 `drizzle-kit generate` names folders"
            ),
            Problem::Unorderable { message } => write!(f, "{message}"),
            Problem::Renamed { recorded, local } => write!(
                f,
                "{local}: renamed after it was applied as {recorded} (same checksum); Drizzle v1 would \
                 apply it again under the new name. Restore the old folder name"
            ),
            Problem::UpgradeUnmatched { ids } => write!(
                f,
                "the Drizzle 0.x history table cannot be upgraded to Drizzle v1's: rows (ids: {}) match no \
                 local migration folder (Drizzle v1 refuses too); restore the missing folders. Nothing was changed",
                ids.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
            ),
            Problem::Ahead { rows } => write!(
                f,
                "{} (database_ahead: error); deploy the release that has them, or set database_ahead: warn",
                ahead_text(rows)
            ),
            Problem::BaselineApplied { target } => write!(
                f,
                "baseline target {target} is already recorded as applied; nothing to record"
            ),
            Problem::BaselineTarget { target } => {
                write!(f, "baseline target {target} matches no migration (give a version, tag or file name)")
            }
            Problem::Validate { warning } => write!(f, "{warning}"),
            Problem::Unsupported { file, at, what } => match at {
                Some((line, column)) => write!(f, "{file}:{line}:{column}: {what}"),
                None => write!(f, "{file}: {what}"),
            },
            Problem::AmbiguousFormat { candidates } => write!(
                f,
                "the migrations folder fits {} (by its marker files, or by the history tables this \
                 database has): set `layout` to the one whose history this database keeps (db-init \
                 does not guess whose history table to write)",
                candidates
                    .iter()
                    .map(|l| format!("{}", serde_json::json!(l)).trim_matches('"').to_string())
                    .collect::<Vec<_>>()
                    .join(" and ")
            ),
            Problem::PrismaProvider { found } => write!(
                f,
                "migration_lock.toml: provider = {found:?}, not \"postgresql\": these migrations were \
                 generated for another database; db-init migrates PostgreSQL only"
            ),
            Problem::Unfinished { migration, tool, fix } => write!(
                f,
                "{migration}: {tool} started this migration and never finished it (its history row \
                 says it failed); {tool} refuses to apply anything until it is resolved, and so \
                 does db-init: {fix}"
            ),
            Problem::Seed { file, message } => write!(
                f,
                "seed {file} does not fit the database: {message} (a run would apply the migrations, \
                 then fail on this seed with exit 8)"
            ),
            Problem::Lint { finding, fails } => match fails {
                true => write!(f, "{finding} (this statement would fail: nothing was applied)"),
                false => write!(f, "{finding} (stopped by lint: error or lint_rules; a `-- db-init-ignore <rule>: <reason>` comment or lint_rules: <rule>=warn lets it through)"),
            },
            Problem::RepairTarget { target } => write!(
                f,
                "repair target {target} is not an applied migration whose file changed"
            ),
        }
    }
}

/// Logged and shown by `status`; never stops a run.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Warning {
    /// A `.sql` file the journal does not name: never applied, as Drizzle ignores it.
    NotInJournal { file: String },
    /// A `.sql` file beside Drizzle v1's migration folders: ignored, as Drizzle v1 ignores it.
    NotAMigration { file: String },
    /// A file the folder's tool passes over (its name is not one of its migrations'), and why.
    Ignored { file: String, why: String },
    /// The recorded checksum is the file's after a CRLF <-> LF conversion.
    LineEndings { file: String },
    /// History rows newer than every migration of the folder: an older release rolled back
    /// onto a newer schema. Nothing of the folder is missing, so there is nothing to do.
    Ahead { rows: Vec<String> },
    /// Two journal entries with one `idx`: two branches generated from the same parent.
    SameIdx {
        idx: i64,
        first: String,
        second: String,
    },
    /// A journal entry older than one before it (a merge that kept both branches' entries).
    WhenOutOfOrder {
        tag: String,
        when: i64,
        before: String,
        before_when: i64,
    },
    /// Bytes that are not UTF-8, sent as U+FFFD (as Drizzle sends them).
    InvalidUtf8 {
        file: String,
        line: usize,
        column: usize,
    },
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::NotInJournal { file } => write!(
                f,
                "{file} is not in meta/_journal.json: ignored, as Drizzle ignores it (never applied)"
            ),
            Warning::NotAMigration { file } => write!(
                f,
                "{file} is not inside a <YYYYMMDDHHMMSS>_<name>/ folder: ignored, as Drizzle v1 ignores it \
                 (never applied)"
            ),
            Warning::Ignored { file, why } => write!(f, "{file}: ignored, {why} (never applied)"),
            Warning::LineEndings { file } => write!(
                f,
                "{file}: only its line endings changed since it was applied (CRLF <-> LF, e.g. git autocrlf); \
                 accepted as applied"
            ),
            Warning::Ahead { rows } => write!(
                f,
                "{}; nothing of this folder is missing, so nothing is applied (database_ahead: error refuses this)",
                ahead_text(rows)
            ),
            Warning::SameIdx { idx, first, second } => write!(
                f,
                "meta/_journal.json: {first} and {second} both have idx {idx}: two branches each generated a \
                 migration from the same parent and the merge kept both (drizzle-kit check reports this); \
                 drop the later one (`drizzle-kit drop`) and generate it again on top of the merge"
            ),
            Warning::WhenOutOfOrder { tag, when, before, before_when } => write!(
                f,
                "meta/_journal.json: {tag} (when {when}) comes after {before} (when {before_when}), which is \
                 newer: a database that applied {before} first never gets {tag} from Drizzle (skipped \
                 silently) and db-init refuses it as out of order; generate {tag} again after the merge"
            ),
            Warning::InvalidUtf8 { file, line, column } => write!(
                f,
                "{file}:{line}:{column}: not valid UTF-8; such bytes reach the server as U+FFFD (as with Drizzle)"
            ),
        }
    }
}

impl Warning {
    /// Warnings that `validate` fails on: a journal merged from two branches, which a run
    /// still applies as Drizzle does, but which CI should stop before it reaches a database.
    /// An entry older than the one before it is the team's choice with `out_of_order: allow`.
    pub fn fails_validate(&self, out_of_order_allowed: bool) -> bool {
        match self {
            Warning::SameIdx { .. } => true,
            Warning::WhenOutOfOrder { .. } => !out_of_order_allowed,
            _ => false,
        }
    }
}

fn ahead_text(rows: &[String]) -> String {
    format!(
        "the database is ahead of this image by {} migration(s): {}; an older release is running \
         against a newer schema",
        rows.len(),
        rows.join(", ")
    )
}
