//! `verify-full` with the certificate the PostgreSQL docs' recipe makes: one self-signed
//! certificate (CA:TRUE, only a CN) used as the server's certificate and as `sslrootcert`, which
//! libpq accepts (webpki alone refuses a CA as an end entity).

use std::process::Command;

use crate::harness::{bare_cmd, Cluster, Run, PASSWORD};

fn openssl_docs_cert(dir: &std::path::Path) {
    // https://www.postgresql.org/docs/current/ssl-tcp.html#SSL-CERTIFICATE-CREATION
    let out = Command::new("openssl")
        .args(["req", "-new", "-x509", "-days", "365", "-nodes", "-text"])
        .args([
            "-out",
            "server.crt",
            "-keyout",
            "server.key",
            "-subj",
            "/CN=localhost",
        ])
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("openssl: {e}"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn verify_full_accepts_the_docs_self_signed_certificate_and_still_checks_the_name() {
    let cluster = Cluster::init("docs_tls", false).unwrap_or_else(|e| panic!("{e}"));
    openssl_docs_cert(&cluster.data);
    use std::os::unix::fs::PermissionsExt;
    let key = cluster.data.join("server.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600))
        .unwrap_or_else(|e| panic!("{e}"));
    if let Some(user) = cluster.run_as() {
        let ok = Command::new("chown")
            .arg(user)
            .arg(&key)
            .arg(cluster.data.join("server.crt"))
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "chown {user}");
    }
    let conf = cluster.data.join("postgresql.conf");
    let mut text = std::fs::read_to_string(&conf).unwrap_or_else(|e| panic!("{e}"));
    text.push_str("\nssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n");
    std::fs::write(&conf, text).unwrap_or_else(|e| panic!("{e}"));
    cluster.start().unwrap_or_else(|e| panic!("{e}"));
    let work = std::env::temp_dir().join(format!("db-init-docs-tls-{}", std::process::id()));
    std::fs::create_dir_all(&work).unwrap_or_else(|e| panic!("{e}"));
    let root = work.join("root.crt");
    std::fs::copy(cluster.data.join("server.crt"), &root).unwrap_or_else(|e| panic!("{e}"));
    let wait = |host: &str, mode: &str| {
        let url = format!(
            "postgres://postgres:{PASSWORD}@{host}:{}/postgres?sslmode={mode}&sslrootcert={}",
            cluster.port,
            root.display()
        );
        Run::from(
            bare_cmd(&work)
                .args(["wait", "--database-url", &url, "--wait-timeout", "5s"])
                .output()
                .unwrap_or_else(|e| panic!("{e}")),
        )
    };
    let full = wait("localhost", "verify-full");
    let by_ip = wait("127.0.0.1", "verify-full");
    let ca_by_ip = wait("127.0.0.1", "verify-ca");
    cluster.stop();
    full.expect(0);
    by_ip.expect(4);
    assert!(
        by_ip.stderr.to_lowercase().contains("name"),
        "{}",
        by_ip.stderr
    );
    ca_by_ip.expect(0);
}
