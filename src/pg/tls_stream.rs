//! The TLS stream tokio-postgres talks through (tokio-rustls), with the channel-binding data
//! SCRAM-SHA-256-PLUS needs: `tls-server-end-point`, the hash of the server's certificate
//! (RFC 5929). tokio-postgres-rustls 0.13 parses the certificate as its inner TBS part, fails,
//! and hands no binding, so `channel_binding=require` (Neon's URLs) could never connect.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use ring::digest;
use rustls::pki_types::ServerName;
use rustls::ClientConfig;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect};

use super::splice::{Slot, Spliced};

#[derive(Clone)]
pub struct MakeConnect {
    config: Arc<ClientConfig>,
}

impl MakeConnect {
    pub fn new(config: ClientConfig) -> MakeConnect {
        MakeConnect {
            config: Arc::new(config),
        }
    }
}

impl<S> MakeTlsConnect<S> for MakeConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = Stream<S>;
    type TlsConnect = Connect;
    type Error = rustls::pki_types::InvalidDnsNameError;

    fn make_tls_connect(&mut self, hostname: &str) -> Result<Connect, Self::Error> {
        let name = ServerName::try_from(hostname)?.to_owned();
        Ok(Connect {
            name,
            connector: tokio_rustls::TlsConnector::from(Arc::clone(&self.config)),
            slot: None,
        })
    }
}

pub struct Connect {
    name: ServerName<'static>,
    connector: tokio_rustls::TlsConnector,
    /// Where a large statement is handed over (see `splice`): above TLS, in plain text.
    slot: Option<Arc<Slot>>,
}

impl Connect {
    pub fn spliced(mut self, slot: Arc<Slot>) -> Connect {
        self.slot = Some(slot);
        self
    }
}

impl<S> TlsConnect<S> for Connect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = Stream<S>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Stream<S>>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            let tls = self.connector.connect(self.name, stream).await?;
            Ok(Stream(Spliced::new(tls, self.slot)))
        })
    }
}

pub struct Stream<S>(Spliced<tokio_rustls::client::TlsStream<S>>);

impl<S> tokio_postgres::tls::TlsStream for Stream<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    fn channel_binding(&self) -> ChannelBinding {
        let (_, session) = self.0.get_ref().get_ref();
        let Some(cert) = session.peer_certificates().and_then(|c| c.first()) else {
            return ChannelBinding::none();
        };
        match end_point_hash(cert.as_ref()) {
            Some(hash) => ChannelBinding::tls_server_end_point(hash),
            None => ChannelBinding::none(),
        }
    }
}

/// RFC 5929 section 4.1: the certificate hashed with its signature's hash, MD5 and SHA-1
/// replaced by SHA-256; `None` for a signature with no single hash (Ed25519, RSA-PSS), where
/// PostgreSQL cannot bind either.
pub fn end_point_hash(der: &[u8]) -> Option<Vec<u8>> {
    let algorithm = match signature_oid(der)? {
        // md5WithRSA, sha1WithRSA, sha256WithRSA, ecdsa-with-SHA1, ecdsa-with-SHA256
        [0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x04 | 0x05 | 0x0B]
        | [0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x04, 0x01]
        | [0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x04, 0x03, 0x02] => &digest::SHA256,
        [0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x0C]
        | [0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x04, 0x03, 0x03] => &digest::SHA384,
        [0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x0D]
        | [0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x04, 0x03, 0x04] => &digest::SHA512,
        _ => return None,
    };
    Some(digest::digest(algorithm, der).as_ref().to_vec())
}

/// `Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm SEQUENCE { OID, ... }, ... }`:
/// the content bytes of the signature algorithm's OID.
fn signature_oid(der: &[u8]) -> Option<&[u8]> {
    let (0x30, cert, _) = tlv(der)? else {
        return None;
    };
    let (0x30, _tbs, rest) = tlv(cert)? else {
        return None;
    };
    let (0x30, algorithm, _) = tlv(rest)? else {
        return None;
    };
    let (0x06, oid, _) = tlv(algorithm)? else {
        return None;
    };
    Some(oid)
}

/// One DER element: its tag, its content, and what follows it.
pub(super) fn tlv(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let tag = *b.first()?;
    let first = *b.get(1)?;
    let (len, head) = match first {
        n if n < 0x80 => (usize::from(n), 2),
        n => {
            let count = usize::from(n & 0x7F);
            if count == 0 || count > 4 {
                return None;
            }
            let bytes = b.get(2..2 + count)?;
            let len = bytes
                .iter()
                .fold(0usize, |acc, &x| (acc << 8) | usize::from(x));
            (len, 2 + count)
        }
    };
    let content = b.get(head..head.checked_add(len)?)?;
    let rest = b.get(head + len..)?;
    Some((tag, content, rest))
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Stream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Stream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(alg: &'static rcgen::SignatureAlgorithm) -> Vec<u8> {
        let key = rcgen::KeyPair::generate_for(alg).unwrap_or_else(|e| panic!("{e}"));
        let params =
            rcgen::CertificateParams::new(vec!["db".to_string()]).unwrap_or_else(|e| panic!("{e}"));
        params
            .self_signed(&key)
            .unwrap_or_else(|e| panic!("{e}"))
            .der()
            .to_vec()
    }

    #[test]
    fn the_hash_follows_the_signature() {
        let p256 = cert(&rcgen::PKCS_ECDSA_P256_SHA256);
        assert_eq!(
            end_point_hash(&p256),
            Some(digest::digest(&digest::SHA256, &p256).as_ref().to_vec())
        );
        let p384 = cert(&rcgen::PKCS_ECDSA_P384_SHA384);
        assert_eq!(end_point_hash(&p384).map(|h| h.len()), Some(48));
        let ed = cert(&rcgen::PKCS_ED25519);
        assert_eq!(end_point_hash(&ed), None);
    }

    #[test]
    fn broken_der_gives_no_binding_and_never_panics() {
        for bad in [
            &[][..],
            &[0x30],
            &[0x30, 0x84, 0xFF, 0xFF, 0xFF, 0xFF],
            &[0x30, 0x02, 0x30, 0x05],
        ] {
            assert_eq!(end_point_hash(bad), None);
        }
    }
}
