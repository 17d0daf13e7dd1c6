//! The command line (SPEC section 4): commands and one flag per setting.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "db-init",
    version,
    about = "Prepare a PostgreSQL database before an application starts: wait for it, take an \
             advisory lock, apply migrations (Drizzle or numbered SQL), run idempotent seeds.",
    after_help = "Every setting can also be given as a DB_INIT_* environment variable or a key in \
                  the YAML config file; flags win over the environment, which wins over the file.\n\
                  Exit codes: 0 done, 1 internal, 2 usage/config, 3 unreachable, 4 refused \
                  (auth, missing database, TLS), 5 lock timeout, 6 migration failed, 7 validation \
                  failed, 8 seed failed, 10 pending (status), 130/143 interrupted."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub settings: SettingFlags,
}

#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Wait for the database, lock, migrate, seed (the default).
    Run,
    /// Wait until the database accepts connections, then exit 0.
    Wait,
    /// Wait, lock and apply pending migrations; no seeds.
    Migrate,
    /// Wait, lock and run the seeds only.
    Seed,
    /// Show applied / pending / changed / missing migrations. Exit 0 up to date, 7 invalid, 10 pending.
    Status {
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Run the validation checks without applying anything.
    Validate {
        /// Check the migrations folder only, without a database.
        #[arg(long)]
        offline: bool,
    },
    /// Record migrations up to a version (or Drizzle tag) as applied without running them.
    Baseline {
        /// Version number or Drizzle tag of the last migration to record.
        #[arg(long, value_name = "VERSION")]
        to: String,
    },
    /// Print exactly what `run` would execute, in order, without changing anything.
    Plan,
    /// Create the next numbered migration file (numbered layout).
    New {
        /// A short name, e.g. add_users; becomes <version>_<name>.sql.
        name: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

/// One flag per setting, kept as raw text so that flags, variables and the file share parsers.
#[derive(Debug, Default, Args)]
pub struct SettingFlags {
    /// YAML config file [env: DB_INIT_CONFIG] [default: ./db-init.yaml when present]
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Connection URL [env: DB_INIT_DATABASE_URL, DIRECT_URL, DATABASE_URL, their _FILE forms, PG*]
    #[arg(long, global = true, value_name = "URL")]
    pub database_url: Option<String>,
    /// Migrations folder [default: ./migrations]
    #[arg(long, global = true, value_name = "DIR")]
    pub migrations: Option<String>,
    /// Seeds folder; absent folder = no seeds [default: ./seeds]
    #[arg(long, global = true, value_name = "DIR")]
    pub seeds: Option<String>,
    /// Give up waiting for the database (exit 3) [default: 120s]
    #[arg(long, global = true, value_name = "DURATION")]
    pub wait_timeout: Option<String>,
    /// Bound on one connection attempt [default: 5s]
    #[arg(long, global = true, value_name = "DURATION")]
    pub connect_timeout: Option<String>,
    /// First retry delay while waiting [default: 100ms]
    #[arg(long, global = true, value_name = "DURATION")]
    pub retry_initial: Option<String>,
    /// Cap on the retry delay while waiting [default: 1s]
    #[arg(long, global = true, value_name = "DURATION")]
    pub retry_max: Option<String>,
    /// Give up waiting for the advisory lock (exit 5) [default: 600s]
    #[arg(long, global = true, value_name = "DURATION")]
    pub lock_timeout: Option<String>,
    /// Advisory lock key, a 64-bit integer [default: 7815895486951160637]
    #[arg(long, global = true, value_name = "INT", allow_hyphen_values = true)]
    pub lock_key: Option<String>,
    /// lock_timeout for migration statements, 0 = off [default: 5s]
    #[arg(long, global = true, value_name = "DURATION")]
    pub ddl_lock_timeout: Option<String>,
    /// Retries of a migration that hit a lock timeout (55P03) [default: 5]
    #[arg(long, global = true, value_name = "N")]
    pub ddl_lock_retries: Option<String>,
    /// statement_timeout for migrations and seeds, 0 = none [default: 0]
    #[arg(long, global = true, value_name = "DURATION")]
    pub statement_timeout: Option<String>,
    /// All pending migrations in one transaction [default: false]
    #[arg(long, global = true, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub atomic: Option<String>,
    /// `error` or `allow` a pending migration older than the newest applied [default: error]
    #[arg(long, global = true, value_name = "POLICY")]
    pub out_of_order: Option<String>,
    /// Tolerate applied migrations whose files are gone [default: false]
    #[arg(long, global = true, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub allow_missing: Option<String>,
    /// `always` or `on-change` [default: always]
    #[arg(long, global = true, value_name = "MODE")]
    pub seed_mode: Option<String>,
    /// Schema of Drizzle's history table [default: drizzle]
    #[arg(long, global = true, value_name = "NAME")]
    pub drizzle_schema: Option<String>,
    /// Name of Drizzle's history table [default: __drizzle_migrations]
    #[arg(long, global = true, value_name = "NAME")]
    pub drizzle_table: Option<String>,
    /// Shown in pg_stat_activity [default: db-init]
    #[arg(long, global = true, value_name = "NAME")]
    pub application_name: Option<String>,
    /// disable, prefer, require, verify-ca, verify-full [default: from the URL / PGSSLMODE, else prefer]
    #[arg(long, global = true, value_name = "MODE")]
    pub sslmode: Option<String>,
    /// CA certificate file for verify-ca / verify-full
    #[arg(long, global = true, value_name = "FILE")]
    pub sslrootcert: Option<String>,
    /// `text` or `json` [default: text]
    #[arg(long, global = true, value_name = "FORMAT")]
    pub log_format: Option<String>,
    /// error, warn, info, debug, trace, or a RUST_LOG filter [default: info]
    #[arg(long, global = true, value_name = "LEVEL")]
    pub log_level: Option<String>,
    /// File that receives the final error line, if writable [default: /dev/termination-log]
    #[arg(long, global = true, value_name = "FILE")]
    pub termination_log: Option<String>,
}

impl SettingFlags {
    /// The flags that were given, by setting key.
    pub fn as_map(&self) -> BTreeMap<&'static str, String> {
        let pairs: [(&'static str, &Option<String>); 24] = [
            ("database_url", &self.database_url),
            ("migrations", &self.migrations),
            ("seeds", &self.seeds),
            ("wait_timeout", &self.wait_timeout),
            ("connect_timeout", &self.connect_timeout),
            ("retry_initial", &self.retry_initial),
            ("retry_max", &self.retry_max),
            ("lock_timeout", &self.lock_timeout),
            ("lock_key", &self.lock_key),
            ("ddl_lock_timeout", &self.ddl_lock_timeout),
            ("ddl_lock_retries", &self.ddl_lock_retries),
            ("statement_timeout", &self.statement_timeout),
            ("atomic", &self.atomic),
            ("out_of_order", &self.out_of_order),
            ("allow_missing", &self.allow_missing),
            ("seed_mode", &self.seed_mode),
            ("drizzle.schema", &self.drizzle_schema),
            ("drizzle.table", &self.drizzle_table),
            ("application_name", &self.application_name),
            ("sslmode", &self.sslmode),
            ("sslrootcert", &self.sslrootcert),
            ("log_format", &self.log_format),
            ("log_level", &self.log_level),
            ("termination_log", &self.termination_log),
        ];
        pairs
            .into_iter()
            .filter_map(|(k, v)| v.clone().map(|v| (k, v)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_setting_has_a_flag() {
        let cmd = Cli::command();
        for key in crate::config::KEYS {
            let flag = crate::config::flag_name(key);
            let long = flag.trim_start_matches("--");
            assert!(
                cmd.get_arguments().any(|a| a.get_long() == Some(long)),
                "setting {key} has no flag {flag}"
            );
        }
    }
}
