//! What a command seed gets to reach the database: `DATABASE_URL` and the libpq variables
//! (PGHOST, PGPORT, PGDATABASE, PGUSER, PGPASSWORD, PGSSLMODE, PGSSLROOTCERT) built from
//! db-init's own connection settings, and the password, so its output can be cleaned of it.

use tokio_postgres::config::Host;

use crate::config::{Database, SslMode};

/// The connection a command seed is handed.
pub struct Connection {
    pub(super) env: Vec<(String, String)>,
    /// Replaced by `***` in the command's output lines (as written and URL-encoded).
    pub(super) secrets: Vec<String>,
}

impl Connection {
    pub fn of(db: &Database) -> Connection {
        let pg = &db.pg;
        let dbname = pg.get_dbname().unwrap_or("").to_string();
        let user = pg.get_user().unwrap_or("").to_string();
        let from_file = db
            .passfile
            .as_ref()
            .map(|p| p.on_database(&dbname))
            .and_then(|c| c.get_password().map(<[u8]>::to_vec));
        let password = pg
            .get_password()
            .map(<[u8]>::to_vec)
            .or(from_file)
            .map(|p| String::from_utf8_lossy(&p).into_owned());
        let hosts: Vec<String> = pg
            .get_hosts()
            .iter()
            .map(|h| match h {
                Host::Tcp(name) => name.clone(),
                Host::Unix(path) => path.display().to_string(),
            })
            .collect();
        let ports: Vec<String> = pg.get_ports().iter().map(u16::to_string).collect();
        let sslmode = match db.sslmode {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        };
        let mut env = vec![
            ("PGHOST".to_string(), hosts.join(",")),
            ("PGPORT".to_string(), ports.join(",")),
            ("PGDATABASE".to_string(), dbname.clone()),
            ("PGUSER".to_string(), user.clone()),
            ("PGSSLMODE".to_string(), sslmode.to_string()),
        ];
        if let Some(root) = &db.sslrootcert {
            env.push(("PGSSLROOTCERT".into(), root.display().to_string()));
        }
        let mut secrets = Vec::new();
        let userinfo = match &password {
            Some(pw) => {
                env.push(("PGPASSWORD".into(), pw.clone()));
                secrets.extend([pw.clone(), encode(pw)]);
                format!("{}:{}@", encode(&user), encode(pw))
            }
            None => format!("{}@", encode(&user)),
        };
        // A TCP host goes in the authority; a Unix socket directory in `host=`, as libpq,
        // node-postgres and psycopg read it.
        let (authority, mut query) = match pg.get_hosts().first() {
            Some(Host::Tcp(h)) => {
                let port = pg.get_ports().first().copied().unwrap_or(5432);
                let h = if h.contains(':') {
                    format!("[{h}]")
                } else {
                    h.clone()
                };
                (format!("{h}:{port}"), Vec::new())
            }
            _ => (
                String::new(),
                vec![
                    format!("host={}", encode(&hosts.join(","))),
                    format!("port={}", ports.join(",")),
                ],
            ),
        };
        query.push(format!("sslmode={sslmode}"));
        let url = format!(
            "postgresql://{userinfo}{authority}/{}?{}",
            encode(&dbname),
            query.join("&")
        );
        env.push(("DATABASE_URL".into(), url));
        secrets.retain(|s| !s.is_empty());
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Connection { env, secrets }
    }

    /// A line of the command's output with the password replaced by `***`.
    pub(super) fn clean(&self, line: &str) -> String {
        let mut line = line.to_string();
        for s in &self.secrets {
            line = line.replace(s, "***");
        }
        line
    }
}

/// Percent-encodes all but RFC 3986's unreserved characters.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_encode_what_they_must() {
        assert_eq!(encode("p@ss:w/rd é"), "p%40ss%3Aw%2Frd%20%C3%A9");
    }
}
