//! Where the database is: the order URLs are looked for in, `_FILE` secrets, libpq variables,
//! where the password comes from (the URL, `PGPASSWORD`, the password file, as libpq looks)
//! and the TLS mode. Reading the connection string is [`super::conn_string`]'s job; what of it
//! may be printed is [`super::redact`]'s.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use tokio_postgres::config::Host;

use super::conn_string::{parse, Parsed, SslParams};
use super::redact::{describe, not_shown};
use super::{ConfigError, Layers, Origin};

#[path = "passfile.rs"]
mod passfile;
use passfile::PassFile;

/// libpq's sslmode values (`allow` is treated as `prefer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl FromStr for SslMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "disable" => Ok(SslMode::Disable),
            "allow" | "prefer" => Ok(SslMode::Prefer),
            "require" => Ok(SslMode::Require),
            "verify-ca" => Ok(SslMode::VerifyCa),
            "verify-full" => Ok(SslMode::VerifyFull),
            _ => Err("expected disable, prefer, require, verify-ca or verify-full".into()),
        }
    }
}

/// A resolved connection target. Its `Debug` shows only the redacted URL.
#[derive(Clone)]
pub struct Database {
    pub pg: tokio_postgres::Config,
    pub sslmode: SslMode,
    pub sslrootcert: Option<PathBuf>,
    /// Safe for logs: a URL rebuilt from the parsed settings (never cut out of the text given),
    /// with the password, when there is one, shown as `***`.
    pub redacted: String,
    /// Port 6543, a `-pooler` host or `pgbouncer=true`: probably a transaction pooler, which
    /// cannot hold a session-level advisory lock.
    pub looks_like_pooler: bool,
    pub origin: Origin,
    /// The URL's `schema=` (Prisma's), set as the session's search path; Prisma's history
    /// table lives there.
    pub schema: Option<String>,
    /// Set when the password is the password file's business (neither the URL nor
    /// `PGPASSWORD` gave one): another database on the same server looks its own line up.
    pub passfile: Option<FromPassfile>,
}

/// The password file and the target without any password, so that the line for another
/// database can be looked up (a run over many databases puts names into the base URL).
#[derive(Clone)]
pub struct FromPassfile {
    file: Arc<PassFile>,
    without: tokio_postgres::Config,
}

impl FromPassfile {
    /// The same target on database `name`, with the password of the file's first line that
    /// matches it (none when no line does, as libpq).
    pub fn on_database(&self, name: &str) -> tokio_postgres::Config {
        let mut pg = self.without.clone();
        pg.dbname(name);
        if let Some(pw) = self.file.lookup(&pg) {
            pg.password(pw);
        }
        pg
    }
}

/// libpq's order when the connection string has no password: `PGPASSWORD`, then the password
/// file. Returns the file when it is the source, so that other databases can be looked up.
fn fill_password(
    pg: &mut tokio_postgres::Config,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<FromPassfile> {
    if pg.get_password().is_some() {
        return None;
    }
    if let Some(pw) = env("PGPASSWORD") {
        pg.password(pw);
        return None;
    }
    let file = PassFile::locate(env)?;
    let without = pg.clone();
    if let Some(pw) = file.lookup(pg) {
        pg.password(pw);
    }
    Some(FromPassfile {
        file: Arc::new(file),
        without,
    })
}

impl fmt::Debug for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Database")
            .field("url", &self.redacted)
            .field("sslmode", &self.sslmode)
            .field("sslrootcert", &self.sslrootcert)
            .field("origin", &self.origin)
            .finish()
    }
}

/// URL variables in precedence order, each also readable from `<NAME>_FILE`.
const URL_VARS: &[&str] = &["DB_INIT_DATABASE_URL", "DIRECT_URL", "DATABASE_URL"];

pub(super) fn resolve(
    layers: &Layers<'_>,
    env: &dyn Fn(&str) -> Option<String>,
    application_name: Option<&(String, Origin)>,
) -> Result<Option<Database>, ConfigError> {
    let env = |name: &str| env(name).filter(|v| !v.is_empty());
    let setting = |key: &'static str| layers.get(key);
    let Some((url, origin)) = find_url(layers, &env)? else {
        return libpq_env(&setting, &env, application_name);
    };
    from_url(&url, origin, &setting, &env, application_name).map(Some)
}

/// A setting read through the layers (flag > `DB_INIT_*` > config file), by key.
type Setting<'a> = &'a dyn Fn(&'static str) -> Option<(String, Origin)>;

/// The target named by a URL or key=value string.
fn from_url(
    url: &str,
    origin: Origin,
    setting: Setting<'_>,
    env: &dyn Fn(&str) -> Option<String>,
    application_name: Option<&(String, Origin)>,
) -> Result<Database, ConfigError> {
    let Parsed { mut pg, params } = parse(url).map_err(|reason| ConfigError::Url {
        url: not_shown(url),
        origin: origin.clone(),
        reason,
    })?;
    // Described before db-init's own application_name is applied: this is what the text said.
    let redacted = describe(&pg, &params);
    let empty_host = |h: &Host| matches!(h, Host::Tcp(h) if h.is_empty());
    if pg.get_hosts().is_empty() || pg.get_hosts().iter().any(empty_host) {
        return Err(ConfigError::Url {
            url: redacted,
            origin,
            reason: "no host: expected postgres://user:password@host:port/database".into(),
        });
    }
    let sslmode = pick_sslmode(setting("sslmode"), params.sslmode, env("PGSSLMODE"))?;
    // libpq's PGCHANNELBINDING, when the URL does not say (the URL's own is parsed with it).
    if let Some(v) = env("PGCHANNELBINDING").filter(|_| !url.contains("channel_binding=")) {
        use tokio_postgres::config::ChannelBinding;
        let binding = match v.as_str() {
            "disable" => ChannelBinding::Disable,
            "prefer" => ChannelBinding::Prefer,
            "require" => ChannelBinding::Require,
            _ => {
                return Err(ConfigError::Url {
                    url: redacted,
                    origin,
                    reason: format!("PGCHANNELBINDING={v:?}: expected disable, prefer or require"),
                })
            }
        };
        pg.channel_binding(binding);
    }
    let sslrootcert = setting("sslrootcert")
        .map(|(v, _)| v)
        .or(params.sslrootcert)
        .or_else(|| env("PGSSLROOTCERT"))
        .map(PathBuf::from);
    match application_name {
        Some((name, _)) => {
            pg.application_name(name);
        }
        None if pg.get_application_name().is_none() => {
            pg.application_name("db-init");
        }
        None => {}
    }
    let looks_like_pooler = params.pgbouncer
        || pg.get_ports().contains(&6543)
        || pg
            .get_hosts()
            .iter()
            .any(|h| matches!(h, Host::Tcp(h) if h.contains("-pooler")));
    let passfile = fill_password(&mut pg, env);
    if let Some(schema) = &params.schema {
        // What Prisma's client does with it: the session's search path (quoted: case kept).
        let path = format!("-c search_path=\"{schema}\"");
        let options = match pg.get_options() {
            Some(o) if !o.is_empty() => format!("{o} {path}"),
            _ => path,
        };
        pg.options(&options);
    }
    Ok(Database {
        schema: params.schema,
        passfile,
        pg,
        sslmode,
        sslrootcert,
        redacted,
        origin,
        looks_like_pooler,
    })
}

fn find_url(
    layers: &Layers<'_>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<(String, Origin)>, ConfigError> {
    if let Some(url) = layers.flags.get("database_url") {
        return Ok(Some((url.clone(), Origin::Flag("--database-url".into()))));
    }
    for var in URL_VARS {
        let file_var = format!("{var}_FILE");
        match (env(var), env(&file_var)) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::Conflict {
                    a: var.to_string(),
                    b: file_var,
                })
            }
            (Some(url), None) => return Ok(Some((url, Origin::Env(var.to_string())))),
            (None, Some(path)) => {
                let text =
                    std::fs::read_to_string(&path).map_err(|source| ConfigError::SecretFile {
                        var: file_var.clone(),
                        path: path.clone().into(),
                        source,
                    })?;
                return Ok(Some((text.trim().to_string(), Origin::Env(file_var))));
            }
            (None, None) => {}
        }
    }
    Ok(layers.get("database_url"))
}

fn pick_sslmode(
    from_settings: Option<(String, Origin)>,
    from_url: Option<String>,
    from_pgsslmode: Option<String>,
) -> Result<SslMode, ConfigError> {
    let (raw, origin) = match (from_settings, from_url, from_pgsslmode) {
        (Some(setting), _, _) => setting,
        (None, Some(v), _) => (v, Origin::Env("database URL parameter sslmode".into())),
        (None, None, Some(v)) => (v, Origin::Env("PGSSLMODE".into())),
        (None, None, None) => return Ok(SslMode::Prefer),
    };
    raw.parse().map_err(|reason| ConfigError::Invalid {
        setting: "sslmode".into(),
        value: raw,
        origin,
        reason,
    })
}

/// No URL anywhere: build one from libpq's variables when at least one of them is set.
fn libpq_env(
    setting: Setting<'_>,
    env: &dyn Fn(&str) -> Option<String>,
    application_name: Option<&(String, Origin)>,
) -> Result<Option<Database>, ConfigError> {
    const VARS: &[&str] = &["PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE"];
    if VARS.iter().all(|v| env(v).is_none()) {
        return Ok(None);
    }
    let mut pg = tokio_postgres::Config::new();
    let host = env("PGHOST").unwrap_or_else(|| "localhost".into());
    pg.host(&host);
    let port = match env("PGPORT") {
        Some(p) => p.parse::<u16>().map_err(|_| ConfigError::Invalid {
            setting: "port".into(),
            value: p.clone(),
            origin: Origin::Env("PGPORT".into()),
            reason: "expected a port number".into(),
        })?,
        None => 5432,
    };
    pg.port(port);
    let user = env("PGUSER").unwrap_or_else(|| "postgres".into());
    pg.user(&user);
    let dbname = env("PGDATABASE").unwrap_or_else(|| user.clone());
    pg.dbname(&dbname);
    if let Some(pw) = env("PGPASSWORD") {
        pg.password(pw);
    }
    let redacted = describe(&pg, &SslParams::default());
    pg.application_name(application_name.map_or("db-init", |(n, _)| n.as_str()));
    let passfile = fill_password(&mut pg, env);
    let sslmode = pick_sslmode(setting("sslmode"), None, env("PGSSLMODE"))?;
    let sslrootcert = setting("sslrootcert")
        .map(|(v, _)| v)
        .or_else(|| env("PGSSLROOTCERT"));
    Ok(Some(Database {
        schema: None,
        passfile,
        looks_like_pooler: port == 6543 || host.contains("-pooler"),
        pg,
        sslmode,
        sslrootcert: sslrootcert.map(PathBuf::from),
        redacted,
        origin: Origin::Env("PGHOST/PGPORT/PGUSER/PGDATABASE".into()),
    }))
}

#[cfg(test)]
#[path = "database_tests.rs"]
mod tests;
