//! What can be wrong with the settings (exit 2), and where each value came from, so an error
//! can name the flag, variable or file key to fix.

use std::fmt;
use std::path::PathBuf;

use super::settings;

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
    #[error("invalid database connection string {url} (from {origin}): {reason}")]
    Url {
        /// Never the text itself, which may hold a password: see [`redact::not_shown`].
        url: String,
        origin: Origin,
        reason: String,
    },
}

fn hint(suggestion: &Option<String>) -> String {
    match suggestion {
        Some(s) => format!(" (did you mean `{s}`?)"),
        None => format!(
            "; known keys: {}",
            settings::keys().collect::<Vec<_>>().join(", ")
        ),
    }
}
