//! What may be printed about a connection target. Nothing printed is cut out of the text the
//! user gave: the description is rebuilt from the parsed host(s), port(s), user, database and a
//! few non-secret options, and an error about text that could not be parsed names the problem
//! (and an option only when its name is a known one) without quoting the text.

use tokio_postgres::config::{Host, TargetSessionAttrs};

use super::conn_string::{SslParams, OWN_OPTIONS};
use super::value;

/// The keys tokio-postgres accepts, in a URL query or as `key=value`.
const DRIVER_OPTIONS: &[&str] = &[
    "user",
    "password",
    "dbname",
    "options",
    "application_name",
    "sslmode",
    "sslnegotiation",
    "host",
    "hostaddr",
    "port",
    "connect_timeout",
    "tcp_user_timeout",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_retries",
    "target_session_attrs",
    "channel_binding",
    "load_balance_hosts",
];

/// libpq keys that tokio-postgres does not support: named in errors, as they are not secrets.
const LIBPQ_ONLY_OPTIONS: &[&str] = &[
    "passfile",
    "require_auth",
    "sslcert",
    "sslkey",
    "sslpassword",
    "sslcertmode",
    "sslcrl",
    "sslcrldir",
    "sslsni",
    "sslcompression",
    "requiressl",
    "requirepeer",
    "ssl_min_protocol_version",
    "ssl_max_protocol_version",
    "min_protocol_version",
    "max_protocol_version",
    "gssencmode",
    "gsslib",
    "gssdelegation",
    "krbsrvname",
    "service",
    "fallback_application_name",
    "client_encoding",
    "replication",
    "scram_client_key",
    "scram_server_key",
];

/// An option name as one of the known names (never as the text given), if it is one.
pub(super) fn known_option(key: &str) -> Option<&'static str> {
    DRIVER_OPTIONS
        .iter()
        .chain(OWN_OPTIONS)
        .chain(LIBPQ_ONLY_OPTIONS)
        .find(|k| k.eq_ignore_ascii_case(key))
        .copied()
}

/// tokio-postgres's parse error, said without anything taken from the text. Its `Display` is
/// only "invalid connection string"; the detail is in `source()`, and some details quote the
/// text (`unknown option `<key>``, the character found where `=` was expected), so only detail
/// known to be safe is passed on.
pub(super) fn driver_reason(e: &tokio_postgres::Error) -> String {
    const GENERIC: &str = "invalid connection string";
    let Some(detail) = std::error::Error::source(e).map(ToString::to_string) else {
        return GENERIC.into();
    };
    if let Some(name) = detail
        .strip_prefix("invalid value for option `")
        .and_then(|d| d.strip_suffix('`'))
    {
        // The name is a constant inside tokio-postgres, but still only named when known.
        let Some(name) = DRIVER_OPTIONS.iter().find(|k| **k == name) else {
            return "an option has an invalid value".into();
        };
        let expected = match *name {
            "port" => "a port number from 0 to 65535",
            "hostaddr" => "IP addresses separated by commas",
            "host" => "after an IPv6 address in [brackets], nothing or `:port`",
            "target_session_attrs" => "any, read-write or read-only",
            "channel_binding" => "disable, prefer or require",
            "load_balance_hosts" => "disable or random",
            "sslnegotiation" => "postgres or direct",
            _ => "a whole number",
        };
        return format!("invalid value for option `{name}` (expected {expected})");
    }
    if let Some(key) = detail
        .strip_prefix("unknown option `")
        .and_then(|d| d.strip_suffix('`'))
    {
        return unknown_option(key);
    }
    let only_numbers_and_words = detail
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == ' ' || c == '-');
    if (detail.starts_with("invalid utf-8") || detail.starts_with("incomplete utf-8"))
        && only_numbers_and_words
    {
        return format!("a percent-encoded part does not decode to UTF-8 ({detail})");
    }
    GENERIC.into()
}

/// Names an unknown option only when it is a known name in another case or a libpq option
/// tokio-postgres lacks; any other key may be a piece of a password cut off by an unencoded `&`
/// or space, so it is only described.
fn unknown_option(key: &str) -> String {
    match known_option(key) {
        Some(name) if name != key => {
            format!("option names are lower-case: write `{name}`")
        }
        Some(name) => format!("option `{name}` is not supported by db-init's PostgreSQL driver"),
        None => {
            // Closer than for setting names: the key may be a piece of a password, and every
            // suggestion says a little about it.
            let guess = value::closest(key, DRIVER_OPTIONS.iter().chain(OWN_OPTIONS).copied(), 2)
                .map(|k| format!(" (did you mean `{k}`?)"))
                .unwrap_or_default();
            format!(
                "an unknown option of {} characters{guess}; its name is not shown in case it \
                 is part of a password (an unencoded `&` in a URL, or a space outside quotes in \
                 key=value form, ends a value)",
                key.chars().count()
            )
        }
    }
}

/// What an error shows in place of a connection string it could not parse.
pub(super) fn not_shown(conn: &str) -> String {
    format!(
        "({} characters; not shown because it may hold a password)",
        conn.chars().count()
    )
}

/// The printable form of a parsed target: `postgres://user:***@host:port,.../dbname?options`,
/// built from the parsed values only. The password, when there is one, is `***`; of the options
/// only non-secret ones are shown.
pub(super) fn describe(pg: &tokio_postgres::Config, params: &SslParams) -> String {
    let mut out = String::from("postgres://");
    if let Some(user) = pg.get_user() {
        encode(user, &mut out);
    }
    if pg.get_password().is_some() {
        out.push_str(":***");
    }
    if pg.get_user().is_some() || pg.get_password().is_some() {
        out.push('@');
    }
    let ports = pg.get_ports();
    for (i, host) in pg.get_hosts().iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match host {
            Host::Tcp(h) if h.contains(':') => {
                out.push('[');
                encode_with(h, ":", &mut out);
                out.push(']');
            }
            Host::Tcp(h) => encode(h, &mut out),
            #[cfg(unix)]
            Host::Unix(path) => encode(&path.to_string_lossy(), &mut out),
        }
        // One port applies to every host; otherwise they pair up (tokio-postgres checks).
        let port = match ports {
            [one] => Some(*one),
            many => many.get(i).copied(),
        };
        out.push_str(&format!(":{}", port.unwrap_or(5432)));
    }
    if let Some(dbname) = pg.get_dbname() {
        out.push('/');
        encode(dbname, &mut out);
    }
    let mut options: Vec<(&str, String)> = Vec::new();
    let addrs: Vec<String> = pg.get_hostaddrs().iter().map(|a| a.to_string()).collect();
    if !addrs.is_empty() {
        options.push(("hostaddr", addrs.join(",")));
    }
    if let Some(mode) = &params.sslmode {
        options.push(("sslmode", mode.clone()));
    }
    if let Some(path) = &params.sslrootcert {
        options.push(("sslrootcert", path.clone()));
    }
    if let Some(name) = pg.get_application_name() {
        options.push(("application_name", name.to_string()));
    }
    match pg.get_channel_binding() {
        tokio_postgres::config::ChannelBinding::Disable => {
            options.push(("channel_binding", "disable".into()))
        }
        tokio_postgres::config::ChannelBinding::Require => {
            options.push(("channel_binding", "require".into()))
        }
        _ => {}
    }
    if let Some(o) = pg.get_options() {
        options.push(("options", o.to_string()));
    }
    match pg.get_target_session_attrs() {
        TargetSessionAttrs::ReadWrite => {
            options.push(("target_session_attrs", "read-write".into()))
        }
        TargetSessionAttrs::ReadOnly => options.push(("target_session_attrs", "read-only".into())),
        _ => {}
    }
    if params.pgbouncer {
        options.push(("pgbouncer", "true".into()));
    }
    for (i, (key, value)) in options.iter().enumerate() {
        out.push(if i == 0 { '?' } else { '&' });
        out.push_str(key);
        out.push('=');
        encode_with(value, ",:/", &mut out);
    }
    out
}

fn encode(s: &str, out: &mut String) {
    encode_with(s, "", out);
}

/// Percent-encodes what would change the meaning of a URL, keeping `also` and non-ASCII text
/// readable.
fn encode_with(s: &str, also: &str, out: &mut String) {
    for c in s.chars() {
        if c.is_ascii_alphanumeric()
            || "-._~!$*+;".contains(c)
            || also.contains(c)
            || !(c.is_ascii() || c.is_control())
        {
            out.push(c);
        } else {
            let mut buf = [0; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
}
