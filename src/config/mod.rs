//! Settings: one value per setting, layered flags > `DB_INIT_*` environment > YAML file > defaults,
//! each remembered with where it came from so an error can name it (SPEC section 6). Each part
//! of the job gets its own group of settings, not the whole `Config`.

mod conn_string;
mod database;
mod dirs;
mod error;
pub mod fleet;
mod layout;
mod lint;
mod redact;
pub mod settings;
pub mod shard;

pub use dirs::DirDefault;
pub use layout::Layout;
pub use lint::{Lint, LintSettings, RuleLevel};
pub(crate) mod value;

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use database::{Database, SslMode};
pub use error::{ConfigError, Origin};
pub use fleet::FleetSettings;
pub use settings::{env_name, flag_name, DEFAULT_LOCK_KEY, SETTINGS};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutOfOrder {
    Error,
    Allow,
}

/// What a finding that is allowed by default is: a `.sql` file the Drizzle journal does not
/// name (`unlisted_files`), a database ahead of the folder (`database_ahead`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unlisted {
    Warn,
    Error,
}

fn warn_or_error(s: &str) -> Result<Unlisted, String> {
    match s {
        "warn" => Ok(Unlisted::Warn),
        "error" => Ok(Unlisted::Error),
        _ => Err("expected `warn` or `error`".into()),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeedMode {
    Always,
    OnChange,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// What connecting needs.
#[derive(Debug, Clone)]
pub struct ConnectSettings {
    pub wait_timeout: Duration,
    pub connect_timeout: Duration,
    pub retry_initial: Duration,
    pub retry_max: Duration,
}

/// What the advisory lock needs.
#[derive(Debug, Clone, Copy)]
pub struct LockSettings {
    pub key: i64,
    pub timeout: Duration,
}

/// What reading, planning and applying migrations need.
#[derive(Debug, Clone)]
pub struct MigrateSettings {
    pub dir: PathBuf,
    /// How `dir` was chosen when `migrations` was not set (see [`migrations_dir`]).
    pub dir_default: DirDefault,
    pub ddl_lock_timeout: Duration,
    pub ddl_lock_retries: u32,
    pub statement_timeout: Duration,
    pub atomic: bool,
    /// `None`: the layout's default (Drizzle v1 applies them, as Drizzle v1 does).
    pub out_of_order: Option<OutOfOrder>,
    pub allow_missing: bool,
    /// History rows newer than every migration of the folder (a rolled-back release).
    pub database_ahead: Unlisted,
    pub unlisted_files: Unlisted,
    /// Migrations forced outside / inside a transaction, by tag or file name.
    pub no_transaction: Vec<String>,
    pub in_transaction: Vec<String>,
    pub drizzle_schema: String,
    pub drizzle_table: String,
    /// `history.schema` / `history.table`: another tool's table where it is not the tool's
    /// default (each format's own default when `None`).
    pub history_schema: Option<String>,
    pub history_table: Option<String>,
    /// The URL's `schema=` (Prisma's), where Prisma keeps `_prisma_migrations`.
    pub url_schema: Option<String>,
    /// `layout` (the format): `None` detects it from the folder.
    pub format: Option<Layout>,
    pub lint: LintSettings,
}

/// What the seeds need.
#[derive(Debug, Clone)]
pub struct SeedSettings {
    pub dir: SeedFolder,
    pub mode: SeedMode,
    pub statement_timeout: Duration,
    /// Bound on one command seed's run.
    pub command_timeout: Duration,
}

/// The seeds folder and the sets of it that run: its own files first, then `<path>/<set>/`
/// for each set, in the order named.
#[derive(Debug, Clone)]
pub struct SeedFolder {
    pub path: PathBuf,
    pub sets: Vec<String>,
}

/// The resolved configuration. `Debug` is safe to print: the database part redacts passwords.
#[derive(Debug, Clone)]
pub struct Config {
    /// `None` when no URL is configured; commands that need one call [`Config::database`].
    pub database: Option<Database>,
    pub connect: ConnectSettings,
    pub lock: LockSettings,
    pub migrate: MigrateSettings,
    pub seed: SeedSettings,
    pub log_format: LogFormat,
    pub log_level: Option<String>,
    pub termination_log: PathBuf,
    /// A run over many databases (`databases_file` / `databases_query`); unset: one database.
    pub fleet: FleetSettings,
    /// The config file that was read, if any.
    pub file: Option<PathBuf>,
}

impl Config {
    pub fn database(&self) -> Result<&Database, ConfigError> {
        self.database.as_ref().ok_or(ConfigError::MissingUrl)
    }

    /// Resolves every setting from the flags (by key), the environment (through `env`, so tests
    /// and the real process share one path) and the config file.
    pub fn load(
        flags: BTreeMap<&'static str, String>,
        config_flag: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        Config::load_tracked(flags, config_flag, env).map(|(config, _)| config)
    }

    /// [`Config::load`], also returning the keys it consulted.
    fn load_tracked(
        flags: BTreeMap<&'static str, String>,
        config_flag: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(Config, BTreeSet<&'static str>), ConfigError> {
        let file = ConfigFile::locate(config_flag, env)?;
        let layers = Layers {
            flags,
            env,
            file: &file,
            read: RefCell::default(),
        };
        let wait = |key| layers.parse(key, value::duration_in(Duration::ZERO, value::MAX_WAIT));
        let positive = |key| {
            layers.parse(
                key,
                value::duration_in(Duration::from_millis(1), value::MAX_WAIT),
            )
        };
        let pg_timeout = |key| {
            layers.parse(
                key,
                value::duration_in(Duration::ZERO, value::PG_MAX_TIMEOUT),
            )
        };
        let flag = |key| layers.parse(key, value::parse_bool);

        layers.parse("application_name", value::parse_identifier)?;
        let application_name = layers.get("application_name");
        // The URL has its own precedence (flag, URL variables, file, libpq variables).
        layers.read.borrow_mut().insert("database_url");
        let database = database::resolve(&layers, env, application_name.as_ref())?;
        let statement_timeout = pg_timeout("statement_timeout")?;
        let (migrations, dir_default) = dirs::migrations_dir(&layers)?;
        let retry_initial = positive("retry_initial")?;
        let retry_max = positive("retry_max")?;
        if retry_max < retry_initial {
            return Err(ConfigError::Invalid {
                setting: "retry_max".into(),
                value: format!("{retry_max:?}"),
                origin: layers.origin("retry_max"),
                reason: format!("must not be below retry_initial ({retry_initial:?})"),
            });
        }

        let url_schema = database.as_ref().and_then(|d| d.schema.clone());
        let config = Config {
            database,
            connect: ConnectSettings {
                wait_timeout: wait("wait_timeout")?,
                connect_timeout: positive("connect_timeout")?,
                retry_initial,
                retry_max,
            },
            lock: LockSettings {
                key: layers.parse("lock_key", |s| {
                    s.parse::<i64>()
                        .map_err(|_| "expected a 64-bit integer".to_string())
                })?,
                timeout: wait("lock_timeout")?,
            },
            migrate: MigrateSettings {
                dir: migrations,
                dir_default,
                ddl_lock_timeout: pg_timeout("ddl_lock_timeout")?,
                ddl_lock_retries: layers.parse("ddl_lock_retries", |s| {
                    s.parse::<u32>()
                        .map_err(|_| "expected a whole number >= 0".to_string())
                })?,
                statement_timeout,
                atomic: flag("atomic")?,
                out_of_order: layers.parse("out_of_order", |s| match s {
                    "" => Ok(None),
                    "error" => Ok(Some(OutOfOrder::Error)),
                    "allow" => Ok(Some(OutOfOrder::Allow)),
                    _ => Err("expected `error` or `allow`".into()),
                })?,
                allow_missing: flag("allow_missing")?,
                database_ahead: layers.parse("database_ahead", warn_or_error)?,
                unlisted_files: layers.parse("unlisted_files", warn_or_error)?,
                no_transaction: layers.parse("no_transaction", value::parse_list)?,
                in_transaction: layers.parse("in_transaction", value::parse_list)?,
                drizzle_schema: layers.parse("drizzle.schema", value::parse_identifier)?,
                drizzle_table: layers.parse("drizzle.table", value::parse_identifier)?,
                history_schema: layers.parse("history.schema", value::parse_optional_identifier)?,
                history_table: layers.parse("history.table", value::parse_optional_identifier)?,
                url_schema,
                format: layers.parse("layout", layout::parse)?,
                lint: LintSettings {
                    mode: layers.parse("lint", lint::parse_mode)?,
                    large: layers.parse("lint_large", lint::parse_bytes)?,
                    huge: layers.parse("lint_huge", lint::parse_bytes)?,
                    rules: layers.parse("lint_rules", lint::parse_rules)?,
                },
            },
            seed: SeedSettings {
                dir: SeedFolder {
                    path: layers.parse("seeds", value::parse_path)?,
                    sets: layers.parse("seed_sets", parse_sets)?,
                },
                command_timeout: positive("seed_command_timeout")?,
                mode: layers.parse("seed_mode", |s| match s {
                    "always" => Ok(SeedMode::Always),
                    "on-change" | "on_change" => Ok(SeedMode::OnChange),
                    _ => Err("expected `always` or `on-change`".into()),
                })?,
                statement_timeout,
            },
            log_format: layers.parse("log_format", |s| match s {
                "text" => Ok(LogFormat::Text),
                "json" => Ok(LogFormat::Json),
                _ => Err("expected `text` or `json`".into()),
            })?,
            log_level: match layers.get("log_level") {
                Some(_) => Some(layers.parse("log_level", value::parse_log_level)?),
                None => None,
            },
            termination_log: layers.parse("termination_log", value::parse_path)?,
            fleet: fleet::load(&layers, env)?,
            file: file.path.clone(),
        };
        Ok((config, layers.read.into_inner()))
    }
}

/// Seed set names: folders directly in the seeds folder, each named once.
fn parse_sets(s: &str) -> Result<Vec<String>, String> {
    let sets = value::parse_list(s)?;
    for (i, set) in sets.iter().enumerate() {
        if set == "." || set == ".." || set.contains(['/', '\\']) {
            return Err(format!("`{set}` is not a folder name of the seeds folder"));
        }
        if sets[..i].contains(set) {
            return Err(format!("`{set}` is named twice"));
        }
    }
    Ok(sets)
}

/// The three sources, consulted in precedence order. Remembers which keys were read, so a
/// setting added to the table but never loaded is caught by the tests.
pub(crate) struct Layers<'a> {
    flags: BTreeMap<&'static str, String>,
    env: &'a dyn Fn(&str) -> Option<String>,
    file: &'a ConfigFile,
    read: RefCell<BTreeSet<&'static str>>,
}

impl Layers<'_> {
    pub(crate) fn get(&self, key: &'static str) -> Option<(String, Origin)> {
        self.read.borrow_mut().insert(key);
        if let Some(v) = self.flags.get(key) {
            return Some((v.clone(), Origin::Flag(flag_name(key))));
        }
        let var = env_name(key);
        if let Some(v) = (self.env)(&var) {
            return Some((v, Origin::Env(var)));
        }
        self.file.values.get(key).map(|v| {
            let origin = Origin::File {
                path: self.file.path.clone().unwrap_or_default(),
                key: key.to_string(),
            };
            (v.clone(), origin)
        })
    }

    fn origin(&self, key: &'static str) -> Origin {
        self.get(key).map_or(Origin::Default, |(_, o)| o)
    }

    /// Another database, named by a URL (a line of `databases_file`), resolved exactly as
    /// `--database-url` would be, with errors naming `origin`.
    pub(crate) fn database_at(&self, url: &str, origin: Origin) -> Result<Database, ConfigError> {
        let mut flags = self.flags.clone();
        flags.insert("database_url", url.to_string());
        let layers = Layers {
            flags,
            env: self.env,
            file: self.file,
            read: RefCell::default(),
        };
        let application_name = self.get("application_name");
        match database::resolve(&layers, self.env, application_name.as_ref()) {
            Ok(Some(db)) => Ok(Database { origin, ..db }),
            Ok(None) => Err(ConfigError::MissingUrl),
            Err(ConfigError::Url { url, reason, .. }) => Err(ConfigError::Url {
                url,
                origin,
                reason,
            }),
            Err(e) => Err(e),
        }
    }

    /// The value from the first source that has it, else the table's default, parsed.
    pub(crate) fn parse<T>(
        &self,
        key: &'static str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<T, ConfigError> {
        let default = settings::find(key).and_then(|s| s.default).unwrap_or("");
        let (raw, origin) = self
            .get(key)
            .unwrap_or((default.to_string(), Origin::Default));
        parse(raw.trim()).map_err(|reason| ConfigError::Invalid {
            setting: key.to_string(),
            value: raw,
            origin,
            reason,
        })
    }
}

/// The YAML file flattened to `key -> scalar text`, so that every source goes through the same
/// parsers (`wait_timeout: 30` and `DB_INIT_WAIT_TIMEOUT=30` mean the same).
#[derive(Default)]
struct ConfigFile {
    path: Option<PathBuf>,
    values: BTreeMap<String, String>,
}

impl ConfigFile {
    fn locate(
        flag: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<ConfigFile, ConfigError> {
        let (path, required) = match (flag, env("DB_INIT_CONFIG")) {
            (Some(p), _) => (p.to_path_buf(), true),
            (None, Some(p)) if !p.is_empty() => (PathBuf::from(p), true),
            _ => (PathBuf::from("./db-init.yaml"), false),
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(ConfigFile::default())
            }
            Err(source) => return Err(ConfigError::ReadFile { path, source }),
        };
        let values = value::flatten_yaml(&text).map_err(|e| match e {
            value::YamlError::Syntax(message) => ConfigError::Yaml {
                path: path.clone(),
                message,
            },
            value::YamlError::UnknownKey(key) => ConfigError::UnknownKey {
                suggestion: value::closest(&key, settings::keys(), 3),
                key,
                path: path.clone(),
            },
        })?;
        Ok(ConfigFile {
            path: Some(path),
            values,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every setting of the table is loaded: one added to the table but not to `load` fails here.
    #[test]
    fn every_setting_is_loaded() {
        let env = |name: &str| (name == "DATABASE_URL").then(|| "postgres://u@h/db".to_string());
        match Config::load_tracked(BTreeMap::new(), None, &env) {
            Ok((_, read)) => {
                let unread: Vec<&str> = settings::keys().filter(|k| !read.contains(k)).collect();
                assert!(unread.is_empty(), "settings never loaded: {unread:?}");
            }
            Err(e) => panic!("{e}"),
        }
    }
}
