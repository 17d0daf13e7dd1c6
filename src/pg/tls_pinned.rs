//! A server certificate that is itself one of the `sslrootcert` roots: the PostgreSQL docs'
//! recipe (`openssl req -new -x509 ... -subj "/CN=dbhost"`) makes one self-signed certificate
//! with CA:TRUE and uses it as both. libpq accepts it; webpki refuses a CA as an end entity. It
//! is accepted here when it is byte for byte a root the user gave, within its validity, and, for
//! `verify-full`, for the host name (SAN, or the CN when there is no SAN, as libpq does).

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};

use super::tls_stream::tlv;

#[derive(Debug)]
pub struct Pinned {
    pub inner: Arc<dyn ServerCertVerifier>,
    pub roots: Vec<CertificateDer<'static>>,
    pub check_name: bool,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let refused =
            match self
                .inner
                .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
            {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
        if !self.roots.iter().any(|r| r.as_ref() == end_entity.as_ref()) {
            return Err(refused);
        }
        let tbs = Tbs::parse(end_entity.as_ref()).ok_or(CertificateError::BadEncoding)?;
        let now = now.as_secs() as i64;
        if now < tbs.not_before {
            return Err(CertificateError::NotValidYet.into());
        }
        if now > tbs.not_after {
            return Err(CertificateError::Expired.into());
        }
        if self.check_name && !valid_for(end_entity, &tbs, server_name) {
            return Err(CertificateError::NotValidForName.into());
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// SAN entries as webpki reads them; without any SAN extension, the subject's CN.
fn valid_for(cert: &CertificateDer<'_>, tbs: &Tbs<'_>, name: &ServerName<'_>) -> bool {
    let by_san = webpki::EndEntityCert::try_from(cert)
        .is_ok_and(|c| c.verify_is_valid_for_subject_name(name).is_ok());
    if by_san {
        return true;
    }
    let wanted = match name {
        ServerName::DnsName(d) => d.as_ref().to_string(),
        ServerName::IpAddress(ip) => std::net::IpAddr::from(*ip).to_string(),
        _ => return false,
    };
    !tbs.has_san
        && tbs
            .common_name
            .is_some_and(|cn| cn.eq_ignore_ascii_case(&wanted))
}

/// What is needed of a certificate's TBS part.
struct Tbs<'a> {
    not_before: i64,
    not_after: i64,
    common_name: Option<&'a str>,
    has_san: bool,
}

impl<'a> Tbs<'a> {
    /// `Certificate ::= SEQUENCE { tbs SEQUENCE { [0] version OPTIONAL, serial, signature,
    /// issuer, validity, subject, ... }, ... }`.
    fn parse(der: &'a [u8]) -> Option<Tbs<'a>> {
        let (0x30, cert, _) = tlv(der)? else {
            return None;
        };
        let (0x30, tbs, _) = tlv(cert)? else {
            return None;
        };
        let (tag, _, mut rest) = tlv(tbs)?;
        if tag == 0xA0 {
            rest = tlv(rest)?.2; // the serial, after the version
        }
        let rest = tlv(rest)?.2; // signature algorithm
        let rest = tlv(rest)?.2; // issuer
        let (0x30, validity, rest) = tlv(rest)? else {
            return None;
        };
        let (t1, before, after_rest) = tlv(validity)?;
        let (t2, after, _) = tlv(after_rest)?;
        let (0x30, subject, extensions) = tlv(rest)? else {
            return None;
        };
        Some(Tbs {
            not_before: time(t1, before)?,
            not_after: time(t2, after)?,
            common_name: common_name(subject),
            // id-ce-subjectAltName 2.5.29.17, as an OID element.
            has_san: extensions
                .windows(5)
                .any(|w| w == [0x06, 0x03, 0x55, 0x1D, 0x11]),
        })
    }
}

/// The first CN (2.5.4.3) of a Name: SEQUENCE OF SET OF SEQUENCE { OID, value }.
fn common_name(mut name: &[u8]) -> Option<&str> {
    while let Some((_, set, rest)) = tlv(name) {
        let mut atvs = set;
        while let Some((_, atv, more)) = tlv(atvs) {
            if let Some((0x06, oid, value)) = tlv(atv) {
                if oid == [0x55, 0x04, 0x03] {
                    let (_, text, _) = tlv(value)?;
                    return std::str::from_utf8(text).ok();
                }
            }
            atvs = more;
        }
        name = rest;
    }
    None
}

/// UTCTime (`YYMMDDHHMMSSZ`, 50-99 = 19xx) or GeneralizedTime (`YYYYMMDDHHMMSSZ`), as Unix seconds.
fn time(tag: u8, text: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(text).ok()?.strip_suffix('Z')?;
    let (year, rest) = match tag {
        0x17 => {
            let yy: i64 = s.get(..2)?.parse().ok()?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, s.get(2..)?)
        }
        0x18 => (s.get(..4)?.parse().ok()?, s.get(4..)?),
        _ => return None,
    };
    let field = |i: usize| -> Option<i64> { rest.get(i..i + 2)?.parse().ok() };
    let (month, day) = (field(0)?, field(2)?);
    let seconds = field(4)? * 3600 + field(6)? * 60 + field(8)?;
    Some(days_from_civil(year, month, day) * 86_400 + seconds)
}

/// Days since 1970-01-01 (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_unix_seconds() {
        assert_eq!(time(0x17, b"700101000000Z"), Some(0));
        assert_eq!(time(0x18, b"20000301000000Z"), Some(951_868_800));
        assert_eq!(time(0x17, b"491231235959Z"), Some(2_524_607_999));
        assert_eq!(time(0x17, b"garbage"), None);
    }

    #[test]
    fn a_docs_style_certificate_parses_with_its_cn_and_no_san() {
        let mut params =
            rcgen::CertificateParams::new(Vec::<String>::new()).unwrap_or_else(|e| panic!("{e}"));
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "dbhost.example.com");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let key = rcgen::KeyPair::generate().unwrap_or_else(|e| panic!("{e}"));
        let cert = params.self_signed(&key).unwrap_or_else(|e| panic!("{e}"));
        let tbs = Tbs::parse(cert.der()).unwrap_or_else(|| panic!("not parsed"));
        assert_eq!(tbs.common_name, Some("dbhost.example.com"));
        assert!(!tbs.has_san);
        assert!(tbs.not_before < tbs.not_after);
        assert!(Tbs::parse(&[0x30, 0x03, 0x30, 0x01]).is_none());
    }
}
