//! Settings: one value per setting, layered flags > `DB_INIT_*` environment > YAML file > defaults,
//! each remembered with where it came from so an error can name it (SPEC section 6).

mod database;
mod value;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use database::{Database, SslMode};

use crate::cli::SettingFlags;

/// Every setting's YAML key, in the order the README documents them. The flag is the key with
/// `_` and `.` turned into `-`; the variable is `DB_INIT_` + the key upper-cased, `.` into `_`.
pub const KEYS: &[&str] = &[
    "database_url",
    "migrations",
    "seeds",
    "wait_timeout",
    "connect_timeout",
    "retry_initial",
    "retry_max",
    "lock_timeout",
    "lock_key",
    "ddl_lock_timeout",
    "ddl_lock_retries",
    "statement_timeout",
    "atomic",
    "out_of_order",
    "allow_missing",
    "seed_mode",
    "drizzle.schema",
    "drizzle.table",
    "application_name",
    "sslmode",
    "sslrootcert",
    "log_format",
    "log_level",
    "termination_log",
];

/// The advisory lock key used when `lock_key` is not set: the first 8 bytes of
/// SHA-256("db-init") read as a big-endian i64, so it is unlikely to collide with an app's keys.
pub const DEFAULT_LOCK_KEY: i64 = 0x6c77_a388_f54d_7b3d;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Flag(String),
    Env(String),
    File { path: PathBuf, key: String },
    Default,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Flag(flag) => write!(f, "flag {flag}"),
            Origin::Env(var) => write!(f, "environment variable {var}"),
            Origin::File { path, key } => write!(f, "key `{key}` in {}", path.display()),
            Origin::Default => write!(f, "default"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid {setting} {value:?} (from {origin}): {reason}")]
    Invalid {
        setting: String,
        value: String,
        origin: Origin,
        reason: String,
    },
    #[error("unknown key `{key}` in {}{}", path.display(), hint(.suggestion))]
    UnknownKey {
        key: String,
        path: PathBuf,
        suggestion: Option<String>,
    },
    #[error("cannot read config file {}: {source}", path.display())]
    ReadFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid YAML in {}: {message}", path.display())]
    Yaml { path: PathBuf, message: String },
    #[error(
        "no database URL: set --database-url, DB_INIT_DATABASE_URL, DIRECT_URL or DATABASE_URL \
         (or their _FILE forms), `database_url` in the config file, or the libpq variables \
         PGHOST/PGPORT/PGUSER/PGPASSWORD/PGDATABASE"
    )]
    MissingUrl,
    #[error("both {a} and {b} are set; keep one")]
    Conflict { a: String, b: String },
    #[error("cannot read {var} file {}: {source}", path.display())]
    SecretFile {
        var: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid database URL {url} (from {origin}): {reason}")]
    Url {
        url: String,
        origin: Origin,
        reason: String,
    },
}

fn hint(suggestion: &Option<String>) -> String {
    match suggestion {
        Some(s) => format!(" (did you mean `{s}`?)"),
        None => format!("; known keys: {}", KEYS.join(", ")),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutOfOrder {
    Error,
    Allow,
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

/// The resolved configuration. `Debug` is safe to print: the database part redacts passwords.
#[derive(Debug, Clone)]
pub struct Config {
    /// `None` when no URL is configured; commands that need one call [`Config::database`].
    pub database: Option<Database>,
    pub migrations: PathBuf,
    pub seeds: PathBuf,
    pub wait_timeout: Duration,
    pub connect_timeout: Duration,
    pub retry_initial: Duration,
    pub retry_max: Duration,
    pub lock_timeout: Duration,
    pub lock_key: i64,
    pub ddl_lock_timeout: Duration,
    pub ddl_lock_retries: u32,
    pub statement_timeout: Duration,
    pub atomic: bool,
    pub out_of_order: OutOfOrder,
    pub allow_missing: bool,
    pub seed_mode: SeedMode,
    pub drizzle_schema: String,
    pub drizzle_table: String,
    pub log_format: LogFormat,
    pub log_level: Option<String>,
    pub termination_log: PathBuf,
    /// The config file that was read, if any.
    pub file: Option<PathBuf>,
}

impl Config {
    pub fn database(&self) -> Result<&Database, ConfigError> {
        self.database.as_ref().ok_or(ConfigError::MissingUrl)
    }

    /// Resolves every setting from the flags, the environment (through `env`, so tests and the
    /// real process share one path) and the config file.
    pub fn load(
        flags: &SettingFlags,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let file = ConfigFile::locate(flags.config.as_deref(), env)?;
        let layers = Layers {
            flags: flags.as_map(),
            env,
            file: &file,
        };

        let durations = |key: &'static str, default: &str| -> Result<Duration, ConfigError> {
            layers.parse(key, default, value::parse_duration)
        };
        let name = |key: &'static str, default: &str| -> Result<String, ConfigError> {
            layers.parse(key, default, value::parse_identifier)
        };

        name("application_name", "db-init")?;
        let application_name = layers.get("application_name");
        let database = database::resolve(&layers, env, application_name.as_ref())?;

        Ok(Config {
            database,
            migrations: layers.parse("migrations", "./migrations", value::parse_path)?,
            seeds: layers.parse("seeds", "./seeds", value::parse_path)?,
            wait_timeout: durations("wait_timeout", "120s")?,
            connect_timeout: durations("connect_timeout", "5s")?,
            retry_initial: durations("retry_initial", "100ms")?,
            retry_max: durations("retry_max", "1s")?,
            lock_timeout: durations("lock_timeout", "600s")?,
            lock_key: layers.parse("lock_key", &DEFAULT_LOCK_KEY.to_string(), |s| {
                s.parse::<i64>()
                    .map_err(|_| "expected a 64-bit integer".to_string())
            })?,
            ddl_lock_timeout: durations("ddl_lock_timeout", "5s")?,
            ddl_lock_retries: layers.parse("ddl_lock_retries", "5", |s| {
                s.parse::<u32>()
                    .map_err(|_| "expected a whole number >= 0".to_string())
            })?,
            statement_timeout: durations("statement_timeout", "0")?,
            atomic: layers.parse("atomic", "false", value::parse_bool)?,
            out_of_order: layers.parse("out_of_order", "error", |s| match s {
                "error" => Ok(OutOfOrder::Error),
                "allow" => Ok(OutOfOrder::Allow),
                _ => Err("expected `error` or `allow`".into()),
            })?,
            allow_missing: layers.parse("allow_missing", "false", value::parse_bool)?,
            seed_mode: layers.parse("seed_mode", "always", |s| match s {
                "always" => Ok(SeedMode::Always),
                "on-change" | "on_change" => Ok(SeedMode::OnChange),
                _ => Err("expected `always` or `on-change`".into()),
            })?,
            drizzle_schema: name("drizzle.schema", "drizzle")?,
            drizzle_table: name("drizzle.table", "__drizzle_migrations")?,
            log_format: layers.parse("log_format", "text", |s| match s {
                "text" => Ok(LogFormat::Text),
                "json" => Ok(LogFormat::Json),
                _ => Err("expected `text` or `json`".into()),
            })?,
            log_level: layers.get("log_level").map(|(v, _)| v),
            termination_log: layers.parse(
                "termination_log",
                "/dev/termination-log",
                value::parse_path,
            )?,
            file: file.path.clone(),
        })
    }
}

pub fn flag_name(key: &str) -> String {
    format!("--{}", key.replace(['_', '.'], "-"))
}

pub fn env_name(key: &str) -> String {
    format!("DB_INIT_{}", key.replace('.', "_").to_ascii_uppercase())
}

/// The three sources, consulted in precedence order.
pub(crate) struct Layers<'a> {
    flags: BTreeMap<&'static str, String>,
    env: &'a dyn Fn(&str) -> Option<String>,
    file: &'a ConfigFile,
}

impl Layers<'_> {
    pub(crate) fn get(&self, key: &'static str) -> Option<(String, Origin)> {
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

    fn parse<T>(
        &self,
        key: &'static str,
        default: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<T, ConfigError> {
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
                suggestion: value::closest(&key, KEYS),
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

    #[test]
    fn names_follow_the_key() {
        assert_eq!(flag_name("drizzle.schema"), "--drizzle-schema");
        assert_eq!(env_name("drizzle.schema"), "DB_INIT_DRIZZLE_SCHEMA");
        assert_eq!(env_name("wait_timeout"), "DB_INIT_WAIT_TIMEOUT");
    }

    #[test]
    fn default_lock_key_is_documented_constant() {
        assert_eq!(DEFAULT_LOCK_KEY, 7815895486951160637);
    }
}
