//! The command line (SPEC section 4): the commands, and one flag per setting generated from the
//! settings table (`config::settings`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::{Arg, ArgAction, ArgMatches, Args, FromArgMatches, Parser, Subcommand, ValueEnum};

use crate::config::settings::{self, SETTINGS};

#[derive(Debug, Parser)]
#[command(
    name = "db-init",
    version,
    about = "Prepare a PostgreSQL database before an application starts: wait for it, take an \
             advisory lock, apply migrations (Drizzle, Prisma, golang-migrate, dbmate, sqlx, Flyway, \
             goose or numbered SQL folders, with each tool's own history table), run idempotent seeds.",
    after_help = "Every setting can also be given as a DB_INIT_* environment variable or a key in \
                  the YAML config file; flags win over the environment, which wins over the file.\n\
                  Exit codes: 0 done, 1 internal, 2 usage/config, 3 unreachable, 4 refused \
                  (auth, missing database, TLS), 5 lock timeout, 6 migration failed, 7 validation \
                  failed, 8 seed failed, 9 database error outside a migration or seed (history table, lock), 10 pending (status), 11 some of \
                  many databases failed, 130/143 interrupted."
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
    /// Wait until the database accepts connections (or, with --migrated, until it is migrated), then exit 0.
    Wait {
        /// Wait until every migration of the folder is recorded (apps beside a migration Job).
        #[arg(long)]
        migrated: bool,
        /// With --migrated: also until every seed ran with its current content.
        #[arg(long, requires = "migrated")]
        seeded: bool,
    },
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
        /// Check the migrations and seeds folders only, without a database.
        #[arg(long)]
        offline: bool,
        /// `text`, `json` (the findings and problems), or `sarif` (SARIF 2.1.0 for code scanning).
        #[arg(long, value_enum, default_value_t = ValidateFormat::Text)]
        format: ValidateFormat,
    },
    /// Record migrations as applied without running them: all pending up to a version (or
    /// Drizzle tag), or exactly the ones named.
    #[command(group(clap::ArgGroup::new("which").required(true).args(["to", "migration"])))]
    Baseline {
        /// Version number or Drizzle tag of the last migration to record.
        #[arg(long, value_name = "VERSION")]
        to: Option<String>,
        /// A migration to record (tag, file name or version); repeatable. Refused when it is
        /// already recorded.
        #[arg(long, value_name = "TAG")]
        migration: Vec<String>,
    },
    /// Print exactly what `run` would execute, in order, without changing anything.
    Plan {
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Run the pending migrations in a transaction that is always rolled back (a CI or staging
    /// database, never production: the locks are real while it runs) and report, per statement,
    /// the locks taken, the tables rewritten and the time. Exit 6 where a statement fails.
    Trace {
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Re-record the checksums of applied migrations whose files were edited on purpose.
    #[command(group(clap::ArgGroup::new("which").required(true).args(["migration", "all_changed"])))]
    Repair {
        /// A changed migration to accept (tag, file name or version); repeatable.
        #[arg(long, value_name = "TAG")]
        migration: Vec<String>,
        /// Every applied migration whose file changed.
        #[arg(long)]
        all_changed: bool,
    },
    /// Create the next migration file.
    New {
        /// A short name, e.g. add_users; named as the folder's tool names it (<version>_<name>.sql
        /// for numbered files).
        name: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ValidateFormat {
    Text,
    Json,
    Sarif,
}

/// The setting flags that were given, by setting key, kept as raw text so that flags, variables
/// and the file share one parser per setting.
#[derive(Debug, Default)]
pub struct SettingFlags {
    pub config: Option<PathBuf>,
    pub values: BTreeMap<&'static str, String>,
}

impl FromArgMatches for SettingFlags {
    fn from_arg_matches(m: &ArgMatches) -> Result<Self, clap::Error> {
        let mut flags = SettingFlags {
            config: m.get_one::<String>("config").map(PathBuf::from),
            values: BTreeMap::new(),
        };
        for s in SETTINGS {
            if let Some(v) = m.get_one::<String>(s.key) {
                flags.values.insert(s.key, v.clone());
            }
        }
        Ok(flags)
    }

    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(m)?;
        Ok(())
    }
}

impl Args for SettingFlags {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        let cmd = cmd.arg(
            Arg::new("config")
                .long("config")
                .global(true)
                .value_name("FILE")
                .help(
                    "YAML config file [env: DB_INIT_CONFIG] [default: ./db-init.yaml when present]",
                ),
        );
        SETTINGS.iter().fold(cmd, |cmd, s| {
            let help = match s.shown_default {
                "" => s.help.to_string(),
                shown => format!("{} [default: {shown}]", s.help),
            };
            let mut arg = Arg::new(s.key)
                .long(settings::long_flag(s.key))
                .global(true)
                .value_name(s.value_name)
                .help(help)
                .action(ArgAction::Set)
                .allow_hyphen_values(s.key == "lock_key");
            if s.switch {
                arg = arg.num_args(0..=1).default_missing_value("true");
            }
            cmd.arg(arg)
        })
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
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
    fn every_setting_has_a_flag_that_reaches_the_map() {
        for s in SETTINGS {
            let flag = settings::flag_name(s.key);
            let cli = Cli::try_parse_from(["db-init", flag.as_str(), "x", "status"]);
            let cli = cli.unwrap_or_else(|e| panic!("{flag}: {e}"));
            assert_eq!(
                cli.settings.values.get(s.key).map(String::as_str),
                Some("x")
            );
        }
    }
}
