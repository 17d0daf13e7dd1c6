//! TLS for PostgreSQL connections with rustls (ring), following libpq's `sslmode` meanings.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio_postgres::tls::MakeTlsConnect;

use super::tls_stream::MakeConnect;

use crate::config::SslMode;

/// rustls for tokio-postgres, and a Unix-socket host (which has no name) accepted: PostgreSQL
/// speaks no TLS over a Unix socket, so the name only has to parse.
#[derive(Clone)]
pub struct Connector(MakeConnect);

impl<S> MakeTlsConnect<S> for Connector
where
    MakeConnect: MakeTlsConnect<S>,
{
    type Stream = <MakeConnect as MakeTlsConnect<S>>::Stream;
    type TlsConnect = <MakeConnect as MakeTlsConnect<S>>::TlsConnect;
    type Error = <MakeConnect as MakeTlsConnect<S>>::Error;

    fn make_tls_connect(&mut self, hostname: &str) -> Result<Self::TlsConnect, Self::Error> {
        let name = if hostname.is_empty() {
            "localhost"
        } else {
            hostname
        };
        self.0.make_tls_connect(name)
    }
}

impl Connector {
    /// The handshake for one host, for a socket db-init opened itself.
    pub fn for_host(
        &self,
        hostname: &str,
    ) -> Result<super::tls_stream::Connect, rustls::pki_types::InvalidDnsNameError> {
        MakeTlsConnect::<super::socket::Socket>::make_tls_connect(&mut self.clone(), hostname)
    }
}

/// What tokio-postgres is told (it only knows disable/prefer/require) and the connector that
/// does the verification db-init wants.
pub fn connector(
    mode: SslMode,
    rootcert: Option<&Path>,
) -> Result<(tokio_postgres::config::SslMode, Connector), String> {
    use tokio_postgres::config::SslMode as Pg;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    // libpq: with a root certificate file, `require` behaves like `verify-ca`.
    let verify = match (mode, rootcert) {
        (SslMode::VerifyFull, _) => Verify::Full,
        (SslMode::VerifyCa, _) | (SslMode::Require, Some(_)) => Verify::ChainOnly,
        _ => Verify::Nothing,
    };
    let verifier: Arc<dyn ServerCertVerifier> = match verify {
        Verify::Nothing => Arc::new(AcceptAny(provider.clone())),
        Verify::Full | Verify::ChainOnly => {
            let roots = Arc::new(roots(rootcert)?);
            let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
                .build()
                .map_err(|e| format!("TLS setup: {e}"))?;
            let checked: Arc<dyn ServerCertVerifier> = if verify == Verify::Full {
                webpki
            } else {
                Arc::new(ChainOnly(webpki))
            };
            // A server certificate that is itself one of the given roots (the docs' recipe).
            match rootcert {
                Some(path) => Arc::new(super::tls_pinned::Pinned {
                    inner: checked,
                    roots: pem_certs(path)?,
                    check_name: verify == Verify::Full,
                }),
                None => checked,
            }
        }
    };
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    let pg_mode = match mode {
        SslMode::Disable => Pg::Disable,
        SslMode::Prefer => Pg::Prefer,
        SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => Pg::Require,
    };
    Ok((pg_mode, Connector(MakeConnect::new(config))))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Verify {
    Nothing,
    ChainOnly,
    Full,
}

fn pem_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = std::fs::read(path)
        .map_err(|e| format!("cannot read sslrootcert {}: {e}", path.display()))?;
    rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("invalid PEM in sslrootcert {}: {e}", path.display()))
}

/// `sslrootcert` when given; else the system store when it has certificates; else the bundled
/// Mozilla roots (a scratch image has no CA files).
fn roots(rootcert: Option<&Path>) -> Result<RootCertStore, String> {
    let mut store = RootCertStore::empty();
    if let Some(path) = rootcert {
        let pem = std::fs::read(path)
            .map_err(|e| format!("cannot read sslrootcert {}: {e}", path.display()))?;
        for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
            let cert =
                cert.map_err(|e| format!("invalid PEM in sslrootcert {}: {e}", path.display()))?;
            store.add(cert).map_err(|e| {
                format!("invalid certificate in sslrootcert {}: {e}", path.display())
            })?;
        }
        if store.is_empty() {
            return Err(format!(
                "sslrootcert {} holds no certificate",
                path.display()
            ));
        }
        return Ok(store);
    }
    let native = rustls_native_certs::load_native_certs();
    let (added, _) = store.add_parsable_certificates(native.certs);
    if added == 0 {
        store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    Ok(store)
}

/// `prefer` / `require` without a root certificate: encrypt, verify nothing (libpq's meaning).
#[derive(Debug)]
struct AcceptAny(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: the chain must lead to a trusted root; the host name is not checked.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}
