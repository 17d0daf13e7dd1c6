//! Which databases a run covers: the lines of the databases file, or the rows of the databases
//! query, as connection targets (names put into the base URL), without duplicates, then only
//! this shard's.

use std::collections::BTreeSet;
use std::time::Duration;

use tracing::warn;

use super::settings::{Listed, Set};
use super::FleetError;
use crate::config::{Config, ConfigError, Database};
use crate::outcome::Error;
use crate::pg::{self, PgError, Session};

/// One database of the set.
#[derive(Debug, Clone)]
pub struct Target {
    /// What names the database in logs and the report, and what the shard hash covers: the
    /// database name, or the redacted URL of a URL line (never a password).
    pub identity: String,
    pub db: Database,
}

/// This run's databases, in the order of the file or the query.
#[derive(Debug)]
pub struct Selection {
    pub targets: Vec<Target>,
    /// How many distinct databases the whole set has, before sharding.
    pub in_set: usize,
}

/// How long the databases query may take: a network that stops forwarding must not hang a run.
const QUERY_BOUND: Duration = Duration::from_secs(60);

/// The set as targets. `base` is the session on the base URL's database (needed for a query).
pub async fn select(cfg: &Config, set: &Set, base: Option<&Session>) -> Result<Selection, Error> {
    let listed: Vec<Listed> = match set {
        Set::File { entries, .. } => entries.clone(),
        Set::Query(sql) => {
            let (Some(session), Ok(db)) = (base, cfg.database()) else {
                return Err(ConfigError::MissingUrl.into());
            };
            query(session, sql, &db.redacted)
                .await?
                .into_iter()
                .map(Listed::Name)
                .collect()
        }
    };
    let mut seen = BTreeSet::new();
    let mut targets = Vec::with_capacity(listed.len());
    for entry in listed {
        let target = match entry {
            Listed::Name(name) => Target {
                db: on_database(cfg.database()?, &name),
                identity: name,
            },
            Listed::Url(db) => Target {
                identity: db.redacted.clone(),
                db: *db,
            },
        };
        if seen.insert(target.identity.clone()) {
            targets.push(target);
        } else {
            warn!(database = %target.identity, "listed twice; worked on once");
        }
    }
    let in_set = targets.len();
    if let Some(shard) = cfg.fleet.shard {
        targets.retain(|t| shard.owns(&t.identity));
    }
    Ok(Selection { targets, in_set })
}

/// The first column of the query's rows, NULLs and empty names left out.
async fn query(session: &Session, sql: &str, url: &str) -> Result<Vec<String>, FleetError> {
    match tokio::time::timeout(QUERY_BOUND, pg::column(session, sql)).await {
        Ok(Ok(names)) => Ok(names.into_iter().filter(|n| !n.is_empty()).collect()),
        Ok(Err(e)) => Err(FleetError::Query {
            url: url.to_string(),
            source: PgError::new("running databases_query", e),
        }),
        Err(_) => Err(FleetError::QueryStalled {
            url: url.to_string(),
            waited: QUERY_BOUND,
        }),
    }
}

/// The base URL's server, user, password and settings, with another database name.
pub fn on_database(base: &Database, name: &str) -> Database {
    let mut db = base.clone();
    match &base.passfile {
        // The password file may hold another line (or none) for this database.
        Some(file) => db.pg = file.on_database(name),
        None => {
            db.pg.dbname(name);
        }
    }
    db.redacted = redacted_on(&base.redacted, name);
    db
}

/// The redacted base URL (`postgres://user:***@host:port/db?options`, as `config` builds it:
/// user and hosts percent-encoded, so the first `/` or `?` after the scheme ends the hosts)
/// with the database part replaced.
fn redacted_on(base: &str, name: &str) -> String {
    let (scheme, rest) = base.split_once("://").unwrap_or(("postgres", base));
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (hosts, tail) = rest.split_at_checked(end).unwrap_or((rest, ""));
    let options = tail
        .split_once('?')
        .map(|(_, o)| format!("?{o}"))
        .unwrap_or_default();
    format!("{scheme}://{hosts}/{}{options}", encode(name))
}

/// Percent-encodes what would change the meaning of a URL; other text stays readable.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii_alphanumeric() || "-._~!$*+;".contains(c) || !(c.is_ascii() || c.is_control())
        {
            out.push(c);
        } else {
            let mut buf = [0; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_keeps_the_base_credentials_and_hides_the_password() {
        let env = |name: &str| {
            (name == "DATABASE_URL")
                .then(|| "postgres://app:Base-pw@db:5432/postgres?sslmode=require".to_string())
        };
        let cfg = Config::load(Default::default(), None, &env).unwrap_or_else(|e| panic!("{e}"));
        let base = cfg.database().unwrap_or_else(|e| panic!("{e}"));
        let db = on_database(base, "tenant 7");
        assert_eq!(db.pg.get_dbname(), Some("tenant 7"));
        assert_eq!(db.pg.get_password(), Some(&b"Base-pw"[..]));
        assert_eq!(db.sslmode, base.sslmode);
        assert_eq!(
            db.redacted,
            "postgres://app:***@db:5432/tenant%207?sslmode=require"
        );
    }

    #[test]
    fn a_name_replaces_the_database_of_the_redacted_url() {
        assert_eq!(
            redacted_on("postgres://u:***@h:5432/app?sslmode=require", "tenant_1"),
            "postgres://u:***@h:5432/tenant_1?sslmode=require"
        );
        assert_eq!(
            redacted_on("postgres://u@h:5432", "t"),
            "postgres://u@h:5432/t"
        );
        assert_eq!(
            redacted_on(
                "postgres://u@%2Ftmp%2Fsock:5432?application_name=x",
                "a b/c?"
            ),
            "postgres://u@%2Ftmp%2Fsock:5432/a%20b%2Fc%3F?application_name=x"
        );
    }
}
