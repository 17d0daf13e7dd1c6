//! Reading a connection string, URL or key=value, exactly where tokio-postgres cuts it (so that
//! what db-init checks and takes out is what the driver will see), and taking out the parameters
//! db-init handles itself. Every `Err` here is safe to print: it names the problem and never
//! quotes the text, which may hold a password.

use std::str::FromStr;

use super::redact::{driver_reason, known_option};

/// The parameters db-init takes out of the string and handles itself (see [`take_param`]).
#[derive(Debug, Default)]
pub(super) struct SslParams {
    pub(super) sslmode: Option<String>,
    pub(super) sslrootcert: Option<String>,
    pub(super) pgbouncer: bool,
    /// Prisma's `schema=`: the schema its client and migrator use (the search path).
    pub(super) schema: Option<String>,
}

/// A connection string that tokio-postgres accepted, minus the parameters db-init handles itself.
pub(super) struct Parsed {
    pub(super) pg: tokio_postgres::Config,
    pub(super) params: SslParams,
}

const URL_PREFIXES: [&str; 2] = ["postgres://", "postgresql://"];

/// Keys db-init takes out before tokio-postgres sees the string (see [`take_param`]).
pub(super) const OWN_OPTIONS: &[&str] = &[
    "sslmode",
    "sslrootcert",
    "pgbouncer",
    "connection_limit",
    "pool_timeout",
    "statement_cache_size",
    "schema",
    "socket_timeout",
];

/// Takes db-init's own parameters out of a connection string and has tokio-postgres parse the
/// rest, so that both read the same text the same way.
pub(super) fn parse(conn: &str) -> Result<Parsed, String> {
    let (rest, params) = if URL_PREFIXES.iter().any(|p| conn.starts_with(p)) {
        split_url(conn)?
    } else {
        split_key_values(conn)?
    };
    let pg = tokio_postgres::Config::from_str(&rest).map_err(|e| driver_reason(&e))?;
    Ok(Parsed { pg, params })
}

/// Takes db-init's own parameters out of a URL query or key=value string. tokio-postgres rejects
/// `verify-ca`/`verify-full` and does not know `sslrootcert`, so those are handled by db-init's
/// TLS layer. Prisma's own parameters (`pgbouncer`, `connection_limit`, ...) often sit in the
/// same `DATABASE_URL`; they mean nothing to PostgreSQL and are dropped. Returns whether `key`
/// was taken.
fn take_param(params: &mut SslParams, key: &str, value: &str) -> bool {
    match key {
        "sslmode" => params.sslmode = Some(value.to_string()),
        "sslrootcert" => params.sslrootcert = Some(value.to_string()),
        "pgbouncer" => params.pgbouncer = value == "true",
        "schema" => params.schema = Some(value.to_string()),
        k if OWN_OPTIONS.contains(&k) => {}
        _ => return false,
    }
    true
}

/// A URL query parameter db-init would otherwise drop or refuse without a name: named, with
/// what to write instead (only when the query holds no password, see the caller).
fn refuse_unknown(key: &str, value: &str) -> Result<(), String> {
    if key == "schema" && !plain_schema(value) {
        return Err(format!(
            "the URL parameter `schema={value}` (Prisma's: the schema its client and migrator use) \
             is not a plain schema name"
        ));
    }
    if key == "search_path" {
        return Err(
            "the URL parameter `search_path` is not a connection parameter: a server \
                    setting goes in `options`, e.g. options=-c%20search_path%3Dapp"
                .into(),
        );
    }
    // Anything else unknown is left to tokio-postgres's refusal, which `driver_reason` words
    // (libpq options db-init does not support, near misses of known names).
    Ok(())
}

/// A schema name that goes into the startup `options` as it is: letters, digits, `_`, `$`, `-`
/// (no space or quote to escape), at most 63 bytes.
pub(super) fn plain_schema(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '$' | '-'))
}

/// A `postgres://` URL cut where tokio-postgres's `UrlParser` cuts it: user info ends at the
/// *first* `@` (so a `/` or `?` in the password is fine, an `@` must be `%40`), the host list at
/// the next `/` or `?`, the database name at the next `?`.
struct UrlCuts<'a> {
    /// Everything before the query's `?`.
    base: &'a str,
    /// `user[:password]`, raw.
    userinfo: Option<&'a str>,
    /// `host[:port][,host[:port]...]`, raw.
    hosts: &'a str,
    /// After the `?`, raw.
    query: Option<&'a str>,
}

fn cut_url(url: &str) -> Option<UrlCuts<'_>> {
    let prefix = URL_PREFIXES.iter().find(|p| url.starts_with(*p))?;
    let mut rest = &url[prefix.len()..];
    let userinfo = rest.find('@').map(|at| {
        let userinfo = &rest[..at];
        rest = &rest[at + 1..];
        userinfo
    });
    let host_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let hosts = &rest[..host_end];
    rest = &rest[host_end..];
    if let Some(path) = rest.strip_prefix('/') {
        rest = &path[path.find('?').unwrap_or(path.len())..];
    }
    let query = rest.strip_prefix('?');
    Some(UrlCuts {
        base: &url[..url.len() - rest.len()],
        userinfo,
        hosts,
        query,
    })
}

fn split_url(url: &str) -> Result<(String, SslParams), String> {
    let cuts = cut_url(url).ok_or("not a postgres:// or postgresql:// URL")?;
    if url.matches('@').count() > 1 {
        return Err("it contains more than one `@`; only the `@` that \
                    ends `user:password` may be written as is, any other (in a password, say) \
                    must be written as %40"
            .into());
    }
    if let Some(userinfo) = cuts.userinfo {
        let user = userinfo.split(':').next().unwrap_or_default();
        if user.contains(['/', '?']) {
            return Err("its only `@` comes after a `/` or `?` outside \
                        the password, so it does not end `user:password`; write an `@` in a \
                        database name or parameter as %40"
                .into());
        }
    }
    check_url_hosts(cuts.hosts, cuts.userinfo.is_some())?;

    let mut params = SslParams::default();
    let Some(query) = cuts.query else {
        return Ok((url.to_string(), params));
    };
    // As tokio-postgres reads a query: the key runs to the first `=`, the value to the next `&`.
    // With a password in the query, an unencoded `&` in it turns its tail into a key: then no key
    // is named (tokio-postgres refuses it without the name).
    let may_name = !query.to_ascii_lowercase().contains("password");
    let mut kept = Vec::new();
    let mut s = query;
    while !s.is_empty() {
        let Some(eq) = s.find('=') else {
            return Err("a parameter after `?` has no `=value`".into());
        };
        let (raw_key, after) = (&s[..eq], &s[eq + 1..]);
        let (value, next) = after.split_once('&').unwrap_or((after, ""));
        let taken = match (percent_decode(raw_key), percent_decode(value)) {
            (Some(key), Some(value)) => {
                if may_name {
                    refuse_unknown(&key, &value)?;
                }
                take_param(&mut params, &key, &value)
            }
            _ => false, // left for tokio-postgres to reject
        };
        if !taken {
            kept.push(&s[..eq + 1 + value.len()]);
        }
        s = next;
    }
    let rest = if kept.is_empty() {
        cuts.base.to_string()
    } else {
        format!("{}?{}", cuts.base, kept.join("&"))
    };
    Ok((rest, params))
}

/// The checks tokio-postgres makes on the host list, with messages that say which part is
/// wrong. A port is quoted only when the URL has user info (then the password sits before the
/// `@`, away from the port); `postgres://user:password` without `@host` reads as host `user`,
/// port `password`.
fn check_url_hosts(hosts: &str, has_userinfo: bool) -> Result<(), String> {
    if hosts.is_empty() {
        return Ok(());
    }
    for (i, chunk) in hosts.split(',').enumerate() {
        let n = i + 1;
        let port = if let Some(bracketed) = chunk.strip_prefix('[') {
            let Some((_, after)) = bracketed.split_once(']') else {
                return Err(format!("host {n} starts with `[` but has no `]`"));
            };
            match after.strip_prefix(':') {
                Some(port) => Some(port),
                None if after.is_empty() => None,
                None => return Err(format!("after the `]` of host {n} only `:port` may follow")),
            }
        } else {
            chunk.split_once(':').map(|(_, port)| port)
        };
        let Some(port) = port else { continue };
        let ok = percent_decode(port).is_some_and(|p| {
            p.split(',')
                .all(|p| p.is_empty() || p.parse::<u16>().is_ok())
        });
        if !ok {
            return Err(
                if has_userinfo
                    && port.len() <= 32
                    && port
                        .chars()
                        .all(|c| c.is_ascii_graphic() && c != '%' && c != '`')
                {
                    format!("the port `{port}` of host {n} is not a number from 0 to 65535")
                } else {
                    format!(
                        "the port of host {n} is not a number from 0 to \
                     65535 (not shown: with no `@`, `user:password` reads as `host:port`; is \
                     the `@host` part missing?)"
                    )
                },
            );
        }
    }
    Ok(())
}

/// One `key = value` of a libpq key/value string, as tokio-postgres's `Parser` reads it.
struct KeyValue<'a> {
    key: &'a str,
    value: String,
    /// The whole `key = 'value'` as written, quotes and escapes included.
    raw: &'a str,
}

/// Reads a key/value string the way tokio-postgres does: whitespace around `=` is allowed, a
/// value is either `'quoted'` (ending at the first unescaped `'`) or runs to the next
/// whitespace; `\` escapes the next character in both.
fn key_values(s: &str) -> Result<Vec<KeyValue<'_>>, String> {
    let mut out = Vec::new();
    let mut it = s.char_indices().peekable();
    let pos = |it: &mut std::iter::Peekable<std::str::CharIndices<'_>>| {
        it.peek().map_or(s.len(), |&(i, _)| i)
    };
    let skip_ws = |it: &mut std::iter::Peekable<std::str::CharIndices<'_>>| {
        while it.next_if(|(_, c)| c.is_whitespace()).is_some() {}
    };
    loop {
        skip_ws(&mut it);
        let start = pos(&mut it);
        while it
            .next_if(|&(_, c)| !c.is_whitespace() && c != '=')
            .is_some()
        {}
        let key = &s[start..pos(&mut it)];
        if key.is_empty() {
            if it.peek().is_none() {
                return Ok(out);
            }
            // tokio-postgres would silently stop reading here and ignore the rest.
            return Err(format!(
                "`=` with no option name before it at character {}",
                s[..start].chars().count() + 1
            ));
        }
        let named = known_option(key)
            .map(|k| format!("option `{k}`"))
            .unwrap_or_else(|| "an option name".into());
        skip_ws(&mut it);
        if it.next_if(|&(_, c)| c == '=').is_none() {
            let url_like = key.contains("://") || key.to_ascii_lowercase().starts_with("postgres");
            return Err(if out.is_empty() && url_like {
                "neither a URL (which must start with postgres:// or postgresql://, in lower \
                 case) nor key=value pairs"
                    .into()
            } else {
                format!(
                    "{named} is not followed by `=` (a value with spaces must be in single \
                     quotes)"
                )
            });
        }
        skip_ws(&mut it);
        let mut value = String::new();
        if it.next_if(|&(_, c)| c == '\'').is_some() {
            loop {
                match it.next() {
                    None => {
                        return Err(format!(
                            "the quoted value of {named} has no \
                             closing `'` (write a `'` inside it as \\')"
                        ))
                    }
                    Some((_, '\'')) => break,
                    Some((_, '\\')) => value.extend(it.next().map(|(_, c)| c)),
                    Some((_, c)) => value.push(c),
                }
            }
        } else {
            let value_start = pos(&mut it);
            while let Some((_, c)) = it.next_if(|(_, c)| !c.is_whitespace()) {
                if c == '\\' {
                    value.extend(it.next().map(|(_, c)| c));
                } else {
                    value.push(c);
                }
            }
            if pos(&mut it) == value_start {
                return Err(format!("{named} has no value"));
            }
        }
        out.push(KeyValue {
            key,
            value,
            raw: &s[start..pos(&mut it)],
        });
    }
}

fn split_key_values(conn: &str) -> Result<(String, SslParams), String> {
    let mut params = SslParams::default();
    let kept: Vec<&str> = key_values(conn)?
        .into_iter()
        .filter(|kv| !take_param(&mut params, kv.key, &kv.value))
        .map(|kv| kv.raw)
        .collect();
    Ok((kept.join(" "), params))
}

fn percent_decode(s: &str) -> Option<String> {
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
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssl_params_are_taken_out() {
        let (rest, p) = split_url(
            "postgres://u@h/d?sslmode=verify-full&application_name=x&sslrootcert=%2Fca.pem",
        )
        .unwrap();
        assert_eq!(rest, "postgres://u@h/d?application_name=x");
        assert_eq!(p.sslmode.as_deref(), Some("verify-full"));
        assert_eq!(p.sslrootcert.as_deref(), Some("/ca.pem"));
        let (rest, p) = split_url("postgres://u:a?sslmode=x@h/d?pgbouncer=true").unwrap();
        assert_eq!(rest, "postgres://u:a?sslmode=x@h/d");
        assert_eq!(p.sslmode, None);
        assert!(p.pgbouncer);
        let (rest, p) = split_key_values("host=h sslmode=require user=u").unwrap();
        assert_eq!(rest, "host=h user=u");
        assert_eq!(p.sslmode.as_deref(), Some("require"));
        let (rest, p) =
            split_key_values("host=h  sslmode = 'verify-ca' password='a  b\\'c'").unwrap();
        assert_eq!(rest, "host=h password='a  b\\'c'");
        assert_eq!(p.sslmode.as_deref(), Some("verify-ca"));
    }

    #[test]
    fn url_parameters_are_honoured_or_refused_by_name() {
        let err = |q: &str| {
            split_url(&format!("postgres://u:secret@h/d?{q}"))
                .err()
                .unwrap_or_default()
        };
        assert!(err("search_path=app").contains("`search_path`"));
        assert!(
            err("schema=a%20b").contains("not a plain schema name"),
            "{}",
            err("schema=a%20b")
        );
        assert_eq!(
            split_url("postgres://u@h/d?schema=app").map(|(_, p)| p.schema),
            Ok(Some("app".to_string()))
        );
        for q in [
            "schema=public",
            "channel_binding=require",
            "options=-c%20x%3D1",
            "connect_timeout=5",
        ] {
            assert!(split_url(&format!("postgres://u@h/d?{q}")).is_ok(), "{q}");
        }
        assert!(split_url("postgres://u@h/d?password=a&search_path=x").is_ok());
    }
}
