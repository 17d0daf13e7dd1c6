//! TLS for the test server: a CA and a server certificate for localhost / 127.0.0.1, made by
//! the test run itself (rcgen), and the TLS tests of SPEC section 6.

use std::path::Path;
use std::process::Command;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};

use crate::harness::{server, TestDb};

pub fn setup_server_tls(dir: &Path, data: &Path, run_as: Option<&str>) -> Result<(), String> {
    let e = |e: rcgen::Error| e.to_string();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(e)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "db-init test CA");
    let ca_key = KeyPair::generate().map_err(e)?;
    let ca = ca_params.self_signed(&ca_key).map_err(e)?;
    // Only localhost: connecting by 127.0.0.1 is then a host name mismatch.
    let mut params = CertificateParams::new(vec!["localhost".to_string()]).map_err(e)?;
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    let key = KeyPair::generate().map_err(e)?;
    let cert = params.signed_by(&key, &ca, &ca_key).map_err(e)?;
    let write =
        |p: &Path, s: &str| std::fs::write(p, s).map_err(|err| format!("{}: {err}", p.display()));
    write(&dir.join("ca.crt"), &ca.pem())?;
    write(&data.join("server.crt"), &cert.pem())?;
    write(&data.join("server.key"), &key.serialize_pem())?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        data.join("server.key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .map_err(|e| e.to_string())?;
    std::fs::set_permissions(dir.join("ca.crt"), std::fs::Permissions::from_mode(0o644))
        .map_err(|e| e.to_string())?;
    if let Some(user) = run_as {
        for f in ["server.crt", "server.key"] {
            let ok = Command::new("chown")
                .arg(user)
                .arg(data.join(f))
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                return Err(format!("cannot chown {f} to {user}"));
            }
        }
    }
    Ok(())
}

fn ca_file() -> Option<String> {
    server()
        .server_dir()
        .map(|d| d.join("ca.crt").display().to_string())
}

#[test]
fn verify_full_with_root_cert_succeeds() {
    let Some(ca) = ca_file() else {
        eprintln!("DB_INIT_TEST_DATABASE_URL is set: the TLS tests need the harness's own server; not run");
        return;
    };
    let db = TestDb::new("tls_full");
    let url = format!(
        "{}?sslmode=verify-full&sslrootcert={ca}",
        db.url().replace("127.0.0.1", "localhost")
    );
    db.run(&["wait", "--database-url", &url, "--wait-timeout", "10s"])
        .expect(0);
}

#[test]
fn verify_full_with_wrong_host_name_fails_for_good() {
    let Some(ca) = ca_file() else { return };
    let db = TestDb::new("tls_wrong_host");
    // The certificate names localhost only; 127.0.0.1 reaches the same server.
    let url = format!("{}?sslmode=verify-full&sslrootcert={ca}", db.url());
    let started = std::time::Instant::now();
    let run = db.run(&["wait", "--database-url", &url, "--wait-timeout", "10s"]);
    run.expect(4);
    assert!(
        run.stderr.contains("not valid for name") || run.stderr.contains("NotValidForName"),
        "{}",
        run.stderr
    );
    assert!(
        started.elapsed().as_secs() < 3,
        "a TLS error must not be retried"
    );
}

#[test]
fn verify_ca_accepts_another_host_name() {
    let Some(ca) = ca_file() else { return };
    let db = TestDb::new("tls_verify_ca");
    let url = format!("{}?sslmode=verify-ca&sslrootcert={ca}", db.url());
    db.run(&["wait", "--database-url", &url, "--wait-timeout", "10s"])
        .expect(0);
}

#[test]
fn require_without_root_cert_encrypts_without_verifying() {
    if ca_file().is_none() {
        return;
    }
    let db = TestDb::new("tls_require");
    let mut cmd = db.cmd();
    cmd.env_remove("DB_INIT_DATABASE_URL");
    cmd.env(
        "DATABASE_URL",
        format!(
            "postgres://tls_only:tls-only-pw@127.0.0.1:{}/{}?sslmode=require",
            server().port,
            db.name
        ),
    );
    let run = crate::harness::Run::from(cmd.arg("wait").output().unwrap_or_else(|e| panic!("{e}")));
    run.expect(0);
}

#[test]
fn disable_against_a_tls_only_user_fails_clearly() {
    if ca_file().is_none() {
        return;
    }
    let db = TestDb::new("tls_disable");
    let url = format!(
        "postgres://tls_only:tls-only-pw@127.0.0.1:{}/{}?sslmode=disable",
        server().port,
        db.name
    );
    let run = db.run(&["wait", "--database-url", &url, "--wait-timeout", "10s"]);
    run.expect(4);
    assert!(
        run.stderr.contains("no encryption") || run.stderr.contains("rejects connection"),
        "{}",
        run.stderr
    );
}

/// Neon's copy-pasted URL: `channel_binding=require` over TLS with SCRAM. Connecting at all
/// proves SCRAM-SHA-256-PLUS was used: with `require`, a session without binding data is refused.
#[test]
fn channel_binding_require_connects_over_tls_and_fails_without_it() {
    let db = TestDb::new("tls_channel_binding");
    let base = format!(
        "postgres://tls_only:tls-only-pw@127.0.0.1:{}/{}",
        server().port,
        db.name
    );
    let url = format!("{base}?sslmode=require&channel_binding=require");
    db.run(&["wait", "--database-url", &url, "--wait-timeout", "10s"])
        .expect(0);
    // Without TLS there is nothing to bind to: refused at once, not retried.
    let url = format!("{}?sslmode=disable&channel_binding=require", db.url());
    let run = db.run(&["wait", "--database-url", &url, "--wait-timeout", "10s"]);
    eprintln!("{}", run.stderr);
    run.expect(4);
    assert!(run.stderr.contains("channel binding"), "{}", run.stderr);
    // The same from libpq's variable.
    let url = format!("{}?sslmode=disable", db.url());
    let mut cmd = db.cmd();
    cmd.env("PGCHANNELBINDING", "require");
    let run = crate::harness::Run::from(
        cmd.args(["wait", "--database-url", &url, "--wait-timeout", "10s"])
            .output()
            .unwrap_or_else(|e| panic!("{e}")),
    );
    run.expect(4);
}
