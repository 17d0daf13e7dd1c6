//! Tests that no password, in any spelling a connection string allows, reaches what db-init
//! prints about the target: the redacted form, `Debug`, and errors for text it refuses.

use super::*;

/// The secret part used in most cases below.
const SECRET: &str = "Secr3t";

fn resolve_env(vars: &[(&str, &str)]) -> Result<Database, ConfigError> {
    let vars: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let env = move |name: &str| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    libpq_env(&|_| None, &env, None).map(|db| db.expect("a database"))
}

fn resolve_url(url: &str) -> Result<Database, ConfigError> {
    let origin = Origin::Env("DATABASE_URL".into());
    from_url(url, origin, &|_| None, &|_| None, None)
}

/// Everything db-init may print about `conn`: the redacted form and `Debug` on success, the
/// error's `Display` and `Debug` on failure.
fn printed(conn: &str) -> String {
    match resolve_url(conn) {
        Ok(db) => format!("{}\n{db:?}", db.redacted),
        Err(e) => format!("{e}\n{e:?}"),
    }
}

#[track_caller]
fn assert_hidden(conn: &str, secrets: &[&str]) -> String {
    let out = printed(conn);
    for secret in secrets {
        assert!(
            !out.contains(secret),
            "`{secret}` of {conn:?} was printed:\n{out}"
        );
    }
    out
}

#[track_caller]
fn assert_rejected(conn: &str, secrets: &[&str]) -> String {
    let err = match resolve_url(conn) {
        Ok(db) => panic!("{conn:?} was accepted as {db:?}"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("not shown"), "{err}");
    assert_hidden(conn, secrets);
    err
}

#[test]
fn url_passwords_with_special_characters_are_never_printed() {
    // (URL, the password tokio-postgres reads from it, the secret pieces)
    let cases = [
        ("postgres://u:Sl4sh/Secr3t@h/db", "Sl4sh/Secr3t", "Sl4sh"),
        ("postgres://u:Qu3ry?Secr3t@h/db", "Qu3ry?Secr3t", "Qu3ry"),
        ("postgres://u:H4sh#Secr3t@h/db", "H4sh#Secr3t", "H4sh"),
        ("postgres://u:Pc7%Secr3t@h/db", "Pc7%Secr3t", "Pc7"),
        ("postgres://u:Sl4sh%2FSecr3t@h/db", "Sl4sh/Secr3t", "Sl4sh"),
        ("postgres://u:Qu3ry%3FSecr3t@h/db", "Qu3ry?Secr3t", "Qu3ry"),
        ("postgres://u:At5%40Secr3t@h/db", "At5@Secr3t", "At5"),
        ("postgres://u:H4sh%23Secr3t@h/db", "H4sh#Secr3t", "H4sh"),
        ("postgres://u:Pc7%25Secr3t@h/db", "Pc7%Secr3t", "Pc7"),
        (
            "postgresql://u:Sl4sh/Qu3ry?H4sh#Pc7%At5%40Secr3t@h/db?sslmode=verify-full",
            "Sl4sh/Qu3ry?H4sh#Pc7%At5@Secr3t",
            "Qu3ry",
        ),
    ];
    for (url, password, piece) in cases {
        let db = resolve_url(url).unwrap_or_else(|e| panic!("{url}: {e}"));
        assert_eq!(db.pg.get_password(), Some(password.as_bytes()), "{url}");
        assert_eq!(db.pg.get_hosts(), [Host::Tcp("h".into())], "{url}");
        assert_eq!(db.pg.get_dbname(), Some("db"), "{url}");
        assert!(
            db.redacted.starts_with("postgres://u:***@h:5432/db"),
            "{url}: {}",
            db.redacted
        );
        assert_hidden(url, &[SECRET, piece]);
    }
    // `?` in the password is not the start of the query: sslmode is still found after it.
    let db = resolve_url("postgres://u:Qu3ry?Secr3t@h/db?sslmode=verify-full").unwrap();
    assert_eq!(db.sslmode, SslMode::VerifyFull);
    assert_eq!(db.pg.get_password(), Some(&b"Qu3ry?Secr3t"[..]));
}

#[test]
fn unencoded_at_in_a_password_is_refused_without_printing_it() {
    // tokio-postgres ends the user info at the first `@`: the rest of the password would
    // become the host (or database name) and be printed as such.
    for url in [
        "postgres://u:At5@Secr3t@h/db",
        "postgres://u:At5@Secr3t/x@h/db",
        "postgres://u:At5@Secr3t?x@h/db",
        "postgres://myuser@srv:Secr3t@srv.example.com/db",
    ] {
        let err = assert_rejected(url, &[SECRET, "At5", "srv"]);
        assert!(err.contains("%40"), "{err}");
    }
    // An `@` inside the query of a URL without user info would make the text before it the
    // user name.
    let err = assert_rejected("postgres://h/db?password=Secr3t@x", &[SECRET]);
    assert!(err.contains("%40"), "{err}");
}

#[test]
fn key_value_passwords_with_quotes_and_spaces_are_never_printed() {
    let cases = [
        (
            "host=h user=u password='Sp4ce Secr3t' dbname=db",
            "Sp4ce Secr3t",
        ),
        ("host=h user=u password = Kv5ecret dbname=db", "Kv5ecret"),
        (
            "host=h user=u password=\t'Kv5 Secr3t'\tdbname=db",
            "Kv5 Secr3t",
        ),
        (
            r"host=h user=u password='It\'s Secr3t' dbname=db",
            "It's Secr3t",
        ),
        (
            r"host=h user=u password=Back\ Secr3t dbname=db",
            "Back Secr3t",
        ),
        (
            "host=h user=u password='Sl4sh/Qu3ry?At5@H4sh#Pc7%Secr3t' dbname=db",
            "Sl4sh/Qu3ry?At5@H4sh#Pc7%Secr3t",
        ),
        // Spacing inside quotes is kept, and `sslmode = x` with spaces is still db-init's.
        (
            "host=h user=u password='Two  Sp4ces Secr3t' dbname=db sslmode = verify-full",
            "Two  Sp4ces Secr3t",
        ),
    ];
    for (conn, password) in cases {
        let db = resolve_url(conn).unwrap_or_else(|e| panic!("{conn}: {e}"));
        assert_eq!(db.pg.get_password(), Some(password.as_bytes()), "{conn}");
        assert!(
            db.redacted.starts_with("postgres://u:***@h:5432/db"),
            "{conn}: {}",
            db.redacted
        );
        assert_hidden(conn, &[SECRET, "Sp4ce", "Kv5", "Sp4ces", "Back", "It's"]);
    }
    let db = resolve_url("host=h password='Two  Sp4ces' sslmode = verify-full").unwrap();
    assert_eq!(db.sslmode, SslMode::VerifyFull);
    // A quoted password that looks like a parameter stays the password.
    let db = resolve_url("host=h password='x sslmode=verify-full Secr3t'").unwrap();
    assert_eq!(db.sslmode, SslMode::Prefer);
    assert_eq!(
        db.pg.get_password(),
        Some(&b"x sslmode=verify-full Secr3t"[..])
    );
}

#[test]
fn broken_key_value_strings_are_refused_without_printing_them() {
    for conn in [
        // The part after the space used to leak.
        "host=h user=u password=Sp4ce Secr3t dbname=db",
        "host=h user=u password='Sp4ce Secr3t dbname=db",
        "host=h user=u password Secr3t",
        "host=h user=u password=",
        "host=h =Secr3t",
        "host=h user=u Secr3t=1",
        "postgres:/u:Secr3t@h/db",
        "POSTGRES://u:Secr3t@h/db",
    ] {
        assert_rejected(conn, &[SECRET]);
    }
    let err = assert_rejected("host=h password=Sp4ce Secr3t", &[SECRET]);
    assert!(err.contains("single quotes"), "{err}");
}

#[test]
fn upper_case_password_keys_are_refused_without_printing_them() {
    for conn in [
        "postgres://u@h/db?PASSWORD=Upp3r",
        "postgres://u@h/db?Password=Upp3r&sslmode=require",
        "postgres://u@h:abc/db?PASSWORD=Upp3r",
        "postgres://u@h/db?sslmode=require&PASSWORD=Upp3r",
        "host=h user=u PASSWORD=Upp3r",
        "host=h user=u PASSWORD = 'Upp3r Secr3t'",
    ] {
        assert_rejected(conn, &["Upp3r", SECRET]);
    }
    let err = assert_rejected("postgres://u@h/db?PASSWORD=Upp3r", &["Upp3r"]);
    assert!(err.contains("lower-case: write `password`"), "{err}");
}

#[test]
fn invalid_urls_holding_a_password_are_refused_without_printing_it() {
    for url in [
        "postgres://u:Secr3t@h:abc/db",
        "postgres://u:Secr3t@h:70000/db",
        "postgres://u:Secr3t",
        "postgres://u:Secr3t/db",
        "postgres://u:Secr3t@[::1/db",
        "postgres://u:Secr3t@[::1]x/db",
        "postgres://u:Secr3t@h/db?sslmode",
        "postgres://u:Secr3t@h/db?target_session_attrs=bogus",
        "postgres://u:Secr3t@h/db?unknown_thing=1",
        "postgres://u:Secr3t@h/db?passfile=/x",
        "postgres://u:Secr3t@h/%FF",
        "postgres://u:Secr3t@h/db?host=%FF",
        "postgres://u:Secr3t@h/db?hostaddr=nope",
        // An unencoded `&` in a query password: the rest becomes an unknown key.
        "postgres://u@h/db?password=Amp5&Secr3t=1",
        "postgres://u@h/db?password=Amp5&Secr3t",
        "postgres://u@h/db?password=Amp5&Secr3t%FF=1",
    ] {
        assert_rejected(url, &[SECRET]);
    }
    // Precise where that is safe: after the `@`, the port is not part of the password.
    let err = assert_rejected("postgres://u:Secr3t@h:abc/db", &[SECRET]);
    assert!(err.contains("the port `abc` of host 1"), "{err}");
    // Without `@`, `user:password` reads as `host:port`: the port is not quoted.
    let err = assert_rejected("postgres://u:Secr3t", &[SECRET]);
    assert!(err.contains("is the `@host` part missing?"), "{err}");
    let err = assert_rejected("postgres://u:Secr3t@h/db?passfile=/x", &[SECRET]);
    assert!(err.contains("option `passfile` is not supported"), "{err}");
    let err = assert_rejected("postgres://u:Secr3t@h/db?aplication_name=x", &[SECRET]);
    assert!(err.contains("did you mean `application_name`?"), "{err}");
    let err = assert_rejected("postgres://u:Secr3t@h/db?hostaddr=nope", &[SECRET]);
    assert!(err.contains("invalid value for option `hostaddr`"), "{err}");
}

#[test]
fn multiple_hosts_are_shown_without_the_password() {
    let cases = [
        (
            "postgres://u:Secr3t@h1:5432,h2:5433,[::1]:5434/db",
            "postgres://u:***@h1:5432,h2:5433,[::1]:5434/db",
        ),
        (
            "postgres://u:Sl4sh/Secr3t@h1,h2/db",
            "postgres://u:***@h1:5432,h2:5432/db",
        ),
        (
            "host=h1,h2 port=5433 user=u password='Sp4ce Secr3t' dbname=db",
            "postgres://u:***@h1:5433,h2:5433/db",
        ),
        (
            "host=h1,h2 port=5433,5434 user=u password=Secr3t dbname=db",
            "postgres://u:***@h1:5433,h2:5434/db",
        ),
    ];
    for (conn, redacted) in cases {
        let db = resolve_url(conn).unwrap_or_else(|e| panic!("{conn}: {e}"));
        assert_eq!(db.redacted, redacted, "{conn}");
        assert_hidden(conn, &[SECRET, "Sl4sh", "Sp4ce"]);
    }
}

#[test]
fn query_passwords_are_never_printed() {
    let url = "postgres://u@h/db?password=Qu3ry%3FSecr3t%26&sslmode=require&application_name=app";
    let db = resolve_url(url).unwrap();
    assert_eq!(db.pg.get_password(), Some(&b"Qu3ry?Secr3t&"[..]));
    assert_eq!(
        db.redacted,
        "postgres://u:***@h:5432/db?sslmode=require&application_name=app"
    );
    assert_hidden(url, &[SECRET, "Qu3ry"]);
    // Both a user-info password and a query password: the later one wins, neither prints.
    let url = "postgres://u:Sl4sh/Secr3t@h/db?password=Qu3ry?Secr3t";
    let db = resolve_url(url).unwrap();
    assert_eq!(db.pg.get_password(), Some(&b"Qu3ry?Secr3t"[..]));
    assert_hidden(url, &[SECRET, "Qu3ry", "Sl4sh"]);
}

#[test]
fn redacted_form_still_shows_host_port_user_and_database() {
    let cases = [
        (
            "postgres://app:s3cret@db.internal:6543/appdb",
            "postgres://app:***@db.internal:6543/appdb",
        ),
        ("postgres://app@db/appdb", "postgres://app@db:5432/appdb"),
        ("postgresql://db", "postgres://db:5432"),
        (
            "host=db.internal port=5433 user=app password=s3cret dbname=appdb",
            "postgres://app:***@db.internal:5433/appdb",
        ),
        (
            "postgres://app:s3cret@%2Fvar%2Frun%2Fpostgresql/appdb",
            "postgres://app:***@%2Fvar%2Frun%2Fpostgresql:5432/appdb",
        ),
        (
            "postgres://us%40er:s3cret@db/my%20db?application_name=svc&pgbouncer=true\
                 &connection_limit=1&target_session_attrs=read-write",
            "postgres://us%40er:***@db:5432/my%20db?application_name=svc\
                 &target_session_attrs=read-write&pgbouncer=true",
        ),
        (
            "postgres://app:s3cret@db/appdb?sslmode=verify-ca&sslrootcert=%2Fetc%2Fca.pem",
            "postgres://app:***@db:5432/appdb?sslmode=verify-ca&sslrootcert=/etc/ca.pem",
        ),
    ];
    for (conn, redacted) in cases {
        let db = resolve_url(conn).unwrap_or_else(|e| panic!("{conn}: {e}"));
        assert_eq!(db.redacted, redacted, "{conn}");
        assert!(!format!("{db:?}").contains("s3cret"));
    }
}

#[test]
fn libpq_variables_show_the_password_as_stars() {
    let db = resolve_env(&[
        ("PGHOST", "h"),
        ("PGUSER", "u"),
        ("PGPASSWORD", "Sl4sh/Secr3t"),
        ("PGDATABASE", "db"),
    ])
    .unwrap();
    assert_eq!(db.redacted, "postgres://u:***@h:5432/db");
    assert!(!format!("{db:?}").contains(SECRET));
    let db = resolve_env(&[("PGHOST", "h"), ("PGUSER", "u")]).unwrap();
    assert_eq!(db.redacted, "postgres://u@h:5432/u");
}
