//! The one table of settings: each is defined here once, and the flags, the `DB_INIT_*`
//! variables, the YAML keys, the help text and the README check are all derived from it.

/// One setting. `key` is the YAML key; the flag and the variable are derived from it.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    pub key: &'static str,
    /// The value used when no source sets it (`None`: unset unless given).
    pub default: Option<&'static str>,
    /// The default as the help text and the README show it.
    pub shown_default: &'static str,
    pub value_name: &'static str,
    pub help: &'static str,
    /// A boolean flag: `--atomic` alone means `--atomic true`.
    pub switch: bool,
}

const fn s(
    key: &'static str,
    default: Option<&'static str>,
    shown_default: &'static str,
    value_name: &'static str,
    help: &'static str,
) -> Setting {
    Setting {
        key,
        default,
        shown_default,
        value_name,
        help,
        switch: false,
    }
}

const fn switch(key: &'static str, help: &'static str) -> Setting {
    Setting {
        key,
        default: Some("false"),
        shown_default: "false",
        value_name: "BOOL",
        help,
        switch: true,
    }
}

/// Every setting, in the order the README documents them.
#[rustfmt::skip]
pub const SETTINGS: &[Setting] = &[
    s("database_url", None, "see below", "URL", "Connection URL [env: DB_INIT_DATABASE_URL, DIRECT_URL, DATABASE_URL, their _FILE forms, PG*]"),
    s("migrations", Some("./migrations"), "./migrations", "DIR", "Migrations folder"),
    s("layout", Some("auto"), "auto", "LAYOUT", "The migrations folder's layout (format): `auto` (detected), `drizzle`, `drizzle-v1`, `prisma`, `golang-migrate`, `dbmate`, `sqlx` (named only: its file names are numbered files'), `flyway`, `goose` or `numbered`"),
    s("seeds", Some("./seeds"), "./seeds", "DIR", "Seeds folder; absent folder = no seeds"),
    s("wait_timeout", Some("120s"), "120s", "DURATION", "Give up waiting for the database (exit 3)"),
    s("connect_timeout", Some("5s"), "5s", "DURATION", "Bound on one connection attempt"),
    s("retry_initial", Some("50ms"), "50ms", "DURATION", "First retry delay while the server answers \"not now\""),
    s("retry_max", Some("1s"), "1s", "DURATION", "Cap on the retry delay while waiting"),
    s("lock_timeout", Some("600s"), "600s", "DURATION", "Give up waiting for the advisory lock (exit 5)"),
    s("lock_key", Some("7815895486951160637"), "7815895486951160637", "INT", "Advisory lock key, a 64-bit integer"),
    s("ddl_lock_timeout", Some("300ms"), "300ms", "DURATION", "lock_timeout for migration statements, 0 = off"),
    s("ddl_lock_retries", Some("30"), "30", "N", "Retries of a migration that hit a lock timeout (55P03)"),
    s("statement_timeout", Some("0"), "0", "DURATION", "statement_timeout for migrations and seeds, 0 = none"),
    switch("atomic", "All pending migrations in one transaction"),
    s("out_of_order", None, "error (Drizzle v1: allow)", "POLICY", "`error` or `allow` a pending migration older than the newest applied"),
    switch("allow_missing", "Tolerate applied migrations whose files are gone"),
    s("database_ahead", Some("warn"), "warn", "POLICY", "`warn` or `error` when the database holds migrations newer than every one of the folder (an older release rolled back onto a newer schema)"),
    s("lint", Some("warn"), "warn", "POLICY", "Lock analysis of pending statements against the live tables: `off`, `warn` (only a statement that would fail stops the run) or `error` (every warning stops it)"),
    s("lint_large", Some("10MB"), "10MB", "SIZE", "Lock analysis: from this table size a finding is a warning (below it: info)"),
    s("lint_huge", Some("1GB"), "1GB", "SIZE", "Lock analysis: from this table size a finding is critical"),
    s("lint_rules", Some(""), "", "RULES", "Lock analysis: per-rule overrides, `rule=off|info|warn|error` comma-separated"),
    s("unlisted_files", Some("warn"), "warn", "POLICY", "`warn` or `error` for a .sql file the Drizzle journal does not name (never applied)"),
    s("no_transaction", Some(""), "", "NAMES", "Migrations (tags or file names, comma-separated) to run outside a transaction"),
    s("in_transaction", Some(""), "", "NAMES", "Migrations (tags or file names, comma-separated) to run in a transaction whatever their statements"),
    s("seed_mode", Some("always"), "always", "MODE", "`always` or `on-change`"),
    s("seed_sets", Some(""), "", "NAMES", "Seed sets to run after the seeds folder's own files, in this order: the folders <seeds>/<set>/ (comma-separated)"),
    s("seed_command_timeout", Some("10m"), "10m", "DURATION", "Bound on one command seed (an executable *.sh of the seeds folder); at expiry its process group is killed and the seed fails"),
    s("drizzle.schema", Some("drizzle"), "drizzle", "NAME", "Schema of Drizzle's history table"),
    s("drizzle.table", Some("__drizzle_migrations"), "__drizzle_migrations", "NAME", "Name of Drizzle's history table"),
    s("history.schema", None, "the tool's", "NAME", "Schema of another tool's history table (Flyway `defaultSchema`, golang-migrate `x-migrations-table`'s schema); default: the tool's own, the search path's first"),
    s("history.table", None, "the tool's", "NAME", "Name of another tool's history table (golang-migrate `x-migrations-table`, goose `-table`, Flyway `table`, dbmate `--migrations-table`); default: the tool's own"),
    s("application_name", Some("db-init"), "db-init", "NAME", "Shown in pg_stat_activity"),
    s("sslmode", None, "from the URL / PGSSLMODE, else prefer", "MODE", "disable, prefer, require, verify-ca, verify-full"),
    s("sslrootcert", None, "", "FILE", "CA certificate file for verify-ca / verify-full"),
    s("log_format", Some("text"), "text", "FORMAT", "`text` or `json`"),
    s("log_level", None, "info", "LEVEL", "error, warn, info, debug, trace, or a RUST_LOG filter"),
    s("termination_log", Some("/dev/termination-log"), "/dev/termination-log", "FILE", "File that receives the final error line, if writable"),
    s("databases_file", None, "", "FILE", "Many databases: one database name (put into the base URL) or URL a line"),
    s("databases_query", None, "", "SQL", "Many databases: a query on the base URL's database whose first column names them"),
    s("concurrency", Some("8"), "8", "N", "Many databases: how many are worked on at once (one session each)"),
    s("shard", None, "", "INDEX/COUNT", "Many databases: only this shard of the set; /COUNT takes INDEX from JOB_COMPLETION_INDEX"),
    s("report", None, "", "FILE", "Many databases: write a JSON report, one entry per database"),
    switch("fail_fast", "Many databases: start no more databases after one failed"),
    s("progress_interval", Some("10s"), "10s", "DURATION", "How often a long migration (and a run over many databases) logs its progress"),
    s("database_timeout", None, "none", "DURATION", "Many databases: a database not done within this ends as failed (stalled), 0 = none"),
];

/// Every YAML key, for "did you mean" hints and the file's key check.
pub fn keys() -> impl Iterator<Item = &'static str> {
    SETTINGS.iter().map(|s| s.key)
}

pub fn find(key: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.key == key)
}

/// `drizzle.schema` -> `drizzle-schema` (without the leading `--`, as clap wants it).
pub fn long_flag(key: &str) -> String {
    key.replace(['_', '.'], "-")
}

pub fn flag_name(key: &str) -> String {
    format!("--{}", long_flag(key))
}

pub fn env_name(key: &str) -> String {
    format!("DB_INIT_{}", key.replace('.', "_").to_ascii_uppercase())
}

/// The advisory lock key used when `lock_key` is not set: the first 8 bytes of
/// SHA-256("db-init") read as a big-endian i64, so it is unlikely to collide with an app's keys.
pub const DEFAULT_LOCK_KEY: i64 = 0x6c77_a388_f54d_7b3d;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_key() {
        assert_eq!(flag_name("drizzle.schema"), "--drizzle-schema");
        assert_eq!(env_name("drizzle.schema"), "DB_INIT_DRIZZLE_SCHEMA");
        assert_eq!(env_name("wait_timeout"), "DB_INIT_WAIT_TIMEOUT");
    }

    #[test]
    fn default_lock_key_is_the_documented_constant() {
        assert_eq!(DEFAULT_LOCK_KEY, 7815895486951160637);
        assert_eq!(
            find("lock_key").and_then(|s| s.default),
            Some("7815895486951160637")
        );
    }

    /// The README's configuration table states every setting and its default as this table does.
    #[test]
    fn readme_table_matches() {
        let readme = include_str!("../../README.md");
        let rows: Vec<(Vec<&str>, Vec<&str>)> = readme
            .lines()
            .filter(|l| l.starts_with("| `"))
            .filter_map(|l| {
                let mut cells = l.split('|').skip(1);
                let keys = cells.next()?;
                let defaults = cells.next()?;
                let names = keys
                    .split(',')
                    .map(|k| k.trim().trim_matches('`'))
                    .collect();
                let shown = defaults.split(',').map(str::trim).collect();
                Some((names, shown))
            })
            .collect();
        for setting in SETTINGS {
            let Some((names, shown)) = rows.iter().find(|(n, _)| n.contains(&setting.key)) else {
                panic!("README's configuration table lacks `{}`", setting.key);
            };
            if setting.shown_default.is_empty() || setting.key == "database_url" {
                continue;
            }
            let position = names.iter().position(|n| *n == setting.key).unwrap_or(0);
            let cell = shown.get(position).or(shown.first()).copied().unwrap_or("");
            let first_word = setting.shown_default.split(' ').next().unwrap_or("");
            assert!(
                cell.contains(first_word) || shown.join(",").contains(setting.shown_default),
                "README shows default {cell:?} for `{}`, the table says {:?}",
                setting.key,
                setting.shown_default
            );
        }
    }
}
