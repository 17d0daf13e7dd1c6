//! The settings of a run over many databases (`databases_file`, `databases_query`,
//! `concurrency`, `shard`, `report`, `fail_fast`, `progress_interval`, `database_timeout`), loaded through the same
//! layers as every other setting. A databases file is read here, so a bad line is exit 2 before
//! any connection.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::config::value::{duration_in, parse_bool, parse_path, MAX_WAIT};
use crate::config::{ConfigError, Database, Layers, Origin};

use super::shard::Shard;

/// Where the set of databases comes from. `None` in [`FleetSettings::set`]: one database, the
/// base URL's, as always.
#[derive(Clone)]
pub enum Set {
    /// The lines of `databases_file`, in file order.
    File { path: PathBuf, entries: Vec<Listed> },
    /// `databases_query`, run on the base URL's database: the first column names the databases.
    Query(String),
}

impl fmt::Debug for Set {
    /// A count, not a thousand URLs: the configuration is printed at debug level.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Set::File { path, entries } => {
                write!(f, "File({}, {} entries)", path.display(), entries.len())
            }
            Set::Query(q) => write!(f, "Query({q:?})"),
        }
    }
}

/// One line of a databases file.
#[derive(Debug, Clone)]
pub enum Listed {
    /// A database name, put into the base URL.
    Name(String),
    /// A full connection URL, resolved as `--database-url` would be (its `Debug` is redacted).
    Url(Box<Database>),
}

#[derive(Debug, Clone)]
pub struct FleetSettings {
    pub set: Option<Set>,
    /// Databases worked on at once; each holds one session, so never more sessions than this.
    pub concurrency: usize,
    pub shard: Option<Shard>,
    pub report: Option<PathBuf>,
    pub fail_fast: bool,
    pub progress_interval: Duration,
    /// Bound on one database's whole job; `None`: only the bounds a single run has.
    pub database_timeout: Option<Duration>,
}

/// More sessions than this would exhaust any server's `max_connections` long before it helps.
const MAX_CONCURRENCY: usize = 1000;

/// PostgreSQL's NAMEDATALEN - 1: longer names are silently truncated by the server, so two
/// long names could be one database.
const MAX_NAME_BYTES: usize = 63;

pub(crate) fn load(
    layers: &Layers<'_>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<FleetSettings, ConfigError> {
    let file = layers.get("databases_file");
    let query = layers.get("databases_query");
    let set = match (file, query) {
        (Some((_, a)), Some((_, b))) => {
            return Err(ConfigError::Conflict {
                a: format!("databases_file (from {a})"),
                b: format!("databases_query (from {b})"),
            })
        }
        (Some((path, origin)), None) => Some(read_file(layers, path.trim(), origin)?),
        (None, Some((sql, origin))) if sql.trim().is_empty() => {
            return Err(ConfigError::Invalid {
                setting: "databases_query".into(),
                value: sql,
                origin,
                reason: "expected a query whose first column names the databases".into(),
            })
        }
        (None, Some((sql, _))) => Some(Set::Query(sql.trim().to_string())),
        (None, None) => None,
    };
    let job_index = env("JOB_COMPLETION_INDEX");
    Ok(FleetSettings {
        set,
        concurrency: layers.parse("concurrency", |s| match s.parse::<usize>() {
            Ok(n) if (1..=MAX_CONCURRENCY).contains(&n) => Ok(n),
            _ => Err(format!(
                "expected a whole number from 1 to {MAX_CONCURRENCY}"
            )),
        })?,
        shard: match layers.get("shard") {
            Some(_) => Some(layers.parse("shard", |s| Shard::parse(s, job_index.as_deref()))?),
            None => None,
        },
        report: match layers.get("report") {
            Some(_) => Some(layers.parse("report", parse_path)?),
            None => None,
        },
        fail_fast: layers.parse("fail_fast", parse_bool)?,
        progress_interval: layers.parse(
            "progress_interval",
            duration_in(Duration::from_millis(10), MAX_WAIT),
        )?,
        database_timeout: match layers.get("database_timeout") {
            Some(_) => {
                Some(layers.parse("database_timeout", duration_in(Duration::ZERO, MAX_WAIT))?)
                    .filter(|d| !d.is_zero())
            }
            None => None,
        },
    })
}

/// One database name or URL a line; blank lines and `#` comments are skipped.
fn read_file(layers: &Layers<'_>, path: &str, origin: Origin) -> Result<Set, ConfigError> {
    let path = PathBuf::from(path);
    let text = std::fs::read_to_string(&path).map_err(|e| ConfigError::Invalid {
        setting: "databases_file".into(),
        value: path.display().to_string(),
        origin: origin.clone(),
        reason: format!("cannot read it: {e}"),
    })?;
    let mut entries = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = Origin::File {
            path: path.clone(),
            key: format!("line {}", n + 1),
        };
        let entry = if line.starts_with("postgres://") || line.starts_with("postgresql://") {
            Listed::Url(Box::new(layers.database_at(line, at)?))
        } else if line.len() > MAX_NAME_BYTES
            || line.contains('\0')
            || line.contains("://")
            || line.contains('=')
        {
            // Never echoed: a line that is not a plain name may be a URL with a typo in its
            // scheme, or a key=value string, with a password in it. Say only what is wrong.
            return Err(ConfigError::Invalid {
                setting: "databases_file".into(),
                value: format!("(line {} of {})", n + 1, path.display()),
                origin: at,
                reason: format!(
                    "expected a database name of 1 to {MAX_NAME_BYTES} bytes without `=` or `://`, or a URL \
                     starting with postgres:// or postgresql:// (key=value strings are not read here)"
                ),
            });
        } else {
            Listed::Name(line.to_string())
        };
        entries.push(entry);
    }
    Ok(Set::File { path, entries })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::config::Config;

    fn load(file: &str, flags: &[(&'static str, &str)]) -> Result<Config, ConfigError> {
        let dir =
            std::env::temp_dir().join(format!("db-init-fleet-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| ConfigError::Yaml {
            path: dir.clone(),
            message: e.to_string(),
        })?;
        // One file per call: the tests run in parallel.
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let path = dir.join(format!("{n}.txt"));
        let _ = std::fs::write(&path, file);
        let mut all: BTreeMap<&'static str, String> =
            flags.iter().map(|(k, v)| (*k, v.to_string())).collect();
        all.insert("databases_file", path.display().to_string());
        let env = |name: &str| match name {
            "DATABASE_URL" => Some("postgres://base:Base-pw@db:5432/postgres".to_string()),
            "JOB_COMPLETION_INDEX" => Some("2".to_string()),
            _ => None,
        };
        Config::load(all, None, &env)
    }

    #[test]
    fn a_databases_file_holds_names_and_urls() {
        let file = "# tenants\n\ntenant_a\n  tenant_b  \npostgres://u:Line-pw@other:5433/tenant_c?sslmode=require\n";
        let cfg =
            load(file, &[("shard", "/4"), ("concurrency", "3")]).unwrap_or_else(|e| panic!("{e}"));
        let Some(Set::File { entries, .. }) = &cfg.fleet.set else {
            panic!("no set: {:?}", cfg.fleet.set);
        };
        let shown: Vec<String> = entries
            .iter()
            .map(|e| match e {
                Listed::Name(n) => n.clone(),
                Listed::Url(db) => db.redacted.clone(),
            })
            .collect();
        assert_eq!(
            shown,
            [
                "tenant_a",
                "tenant_b",
                "postgres://u:***@other:5433/tenant_c?sslmode=require"
            ]
        );
        assert_eq!(cfg.fleet.shard, Some(Shard { index: 2, count: 4 }));
        assert_eq!(cfg.fleet.concurrency, 3);
        assert!(!format!("{cfg:?}").contains("Line-pw"));
    }

    #[test]
    fn a_line_that_is_neither_a_name_nor_a_url_is_refused_unechoed() {
        for line in [
            "postgress://u:Line-pw@h/x",
            "host=h password=Line-pw dbname=x",
            &"x".repeat(64),
        ] {
            match load(&format!("tenant_a\n{line}\n"), &[]) {
                Ok(_) => panic!("{line} accepted"),
                Err(e) => {
                    let text = e.to_string();
                    assert!(
                        text.contains("line 2") && !text.contains("Line-pw"),
                        "{text}"
                    );
                }
            }
        }
    }

    #[test]
    fn bad_numbers_are_refused() {
        for (key, value) in [
            ("concurrency", "0"),
            ("concurrency", "x"),
            ("shard", "4/4"),
            ("progress_interval", "0"),
            ("database_timeout", "x"),
        ] {
            assert!(
                load("tenant_a\n", &[(key, value)]).is_err(),
                "{key}={value} accepted"
            );
        }
    }
}
