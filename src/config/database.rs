//! Where the database is: URL resolution order, `_FILE` secrets, libpq variables, TLS mode, and
//! password redaction for anything that may be printed.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use super::{ConfigError, Layers, Origin};

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
    /// The URL as given, with the password replaced by `***`: safe for logs.
    pub redacted: String,
    /// Port 6543, a `-pooler` host or `pgbouncer=true`: probably a transaction pooler, which
    /// cannot hold a session-level advisory lock.
    pub looks_like_pooler: bool,
    pub origin: Origin,
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
    let Some((url, origin)) = find_url(layers, &env)? else {
        return libpq_env(layers, &env, application_name);
    };
    let (rest, params) = split_ssl_params(&url);
    let mut pg = tokio_postgres::Config::from_str(&rest).map_err(|e| ConfigError::Url {
        url: redact(&url),
        origin: origin.clone(),
        reason: e.to_string(),
    })?;
    let sslmode = pick_sslmode(layers, params.sslmode, env("PGSSLMODE"))?;
    let sslrootcert = layers
        .get("sslrootcert")
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
            .any(|h| matches!(h, tokio_postgres::config::Host::Tcp(h) if h.contains("-pooler")));
    Ok(Some(Database {
        pg,
        sslmode,
        sslrootcert,
        redacted: redact(&url),
        origin,
        looks_like_pooler,
    }))
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
    layers: &Layers<'_>,
    from_url: Option<String>,
    from_pgsslmode: Option<String>,
) -> Result<SslMode, ConfigError> {
    let (raw, origin) = match (layers.get("sslmode"), from_url, from_pgsslmode) {
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
    layers: &Layers<'_>,
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
    if let Some(pw) = env("PGPASSWORD") {
        pg.password(pw);
    }
    let dbname = env("PGDATABASE").unwrap_or_else(|| user.clone());
    pg.dbname(&dbname);
    pg.application_name(application_name.map_or("db-init", |(n, _)| n.as_str()));
    let sslmode = pick_sslmode(layers, None, env("PGSSLMODE"))?;
    let sslrootcert = layers
        .get("sslrootcert")
        .map(|(v, _)| v)
        .or_else(|| env("PGSSLROOTCERT"));
    let redacted = format!("postgres://{user}@{host}:{port}/{dbname}");
    Ok(Some(Database {
        looks_like_pooler: port == 6543 || host.contains("-pooler"),
        pg,
        sslmode,
        sslrootcert: sslrootcert.map(PathBuf::from),
        redacted,
        origin: Origin::Env("PGHOST/PGPORT/PGUSER/PGDATABASE".into()),
    }))
}

#[derive(Default)]
struct SslParams {
    sslmode: Option<String>,
    sslrootcert: Option<String>,
    pgbouncer: bool,
}

/// tokio-postgres rejects `verify-ca`/`verify-full` and does not know `sslrootcert`, so both
/// are taken out of the URL (or key=value string) here and handled by db-init's TLS layer.
/// Prisma's own parameters (`pgbouncer`, `connection_limit`, ...) often sit in the same
/// `DATABASE_URL`; they mean nothing to PostgreSQL and are dropped.
fn split_ssl_params(url: &str) -> (String, SslParams) {
    let mut params = SslParams::default();
    let mut take = |k: &str, v: &str| match k {
        "sslmode" => {
            params.sslmode = Some(percent_decode(v));
            true
        }
        "sslrootcert" => {
            params.sslrootcert = Some(percent_decode(v));
            true
        }
        "pgbouncer" => {
            params.pgbouncer = v == "true";
            true
        }
        "connection_limit"
        | "pool_timeout"
        | "statement_cache_size"
        | "schema"
        | "socket_timeout" => true,
        _ => false,
    };
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let Some((base, query)) = url.split_once('?') else {
            return (url.to_string(), params);
        };
        let kept: Vec<&str> = query
            .split('&')
            .filter(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                !take(k, v)
            })
            .collect();
        let rest = if kept.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        (rest, params)
    } else {
        let kept: Vec<&str> = url
            .split_whitespace()
            .filter(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                !take(k.trim(), v.trim_matches('\''))
            })
            .collect();
        (kept.join(" "), params)
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Replaces the password of a URL (`user:secret@host`, `?password=`) or of a key=value string
/// (`password=secret`) with `***`.
pub fn redact(conn: &str) -> String {
    if let Some((scheme, rest)) = conn.split_once("://") {
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        let authority = match authority.rsplit_once('@') {
            Some((userinfo, host)) => match userinfo.split_once(':') {
                Some((user, _)) => format!("{user}:***@{host}"),
                None => format!("{userinfo}@{host}"),
            },
            None => authority.to_string(),
        };
        let tail = match tail.split_once('?') {
            Some((path, query)) => {
                let query: Vec<String> = query
                    .split('&')
                    .map(|p| {
                        if p.starts_with("password=") {
                            "password=***".into()
                        } else {
                            p.to_string()
                        }
                    })
                    .collect();
                format!("{path}?{}", query.join("&"))
            }
            None => tail.to_string(),
        };
        format!("{scheme}://{authority}{tail}")
    } else {
        conn.split_whitespace()
            .map(|p| {
                if p.starts_with("password=") {
                    "password=***".to_string()
                } else {
                    p.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact("postgres://app:s3cret@db:5432/app"),
            "postgres://app:***@db:5432/app"
        );
        assert_eq!(
            redact("postgres://app@db/app?password=x&sslmode=require"),
            "postgres://app@db/app?password=***&sslmode=require"
        );
        assert_eq!(
            redact("host=db password=x user=app"),
            "host=db password=*** user=app"
        );
        assert_eq!(redact("postgres://db/app"), "postgres://db/app");
        assert_eq!(
            redact("postgres://u:p@ss@db/app"),
            "postgres://u:***@db/app"
        );
    }

    #[test]
    fn ssl_params_are_taken_out() {
        let (rest, p) = split_ssl_params(
            "postgres://u@h/d?sslmode=verify-full&application_name=x&sslrootcert=%2Fca.pem",
        );
        assert_eq!(rest, "postgres://u@h/d?application_name=x");
        assert_eq!(p.sslmode.as_deref(), Some("verify-full"));
        assert_eq!(p.sslrootcert.as_deref(), Some("/ca.pem"));
        let (rest, p) = split_ssl_params("host=h sslmode=require user=u");
        assert_eq!(rest, "host=h user=u");
        assert_eq!(p.sslmode.as_deref(), Some("require"));
    }
}
