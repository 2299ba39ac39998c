//! The Mozilla roots as certificates, so that extra roots can be trusted
//! *in addition to* them.
//!
//! ureq takes either its built-in webpki roots or a list of DER certificates,
//! not both; webpki-roots ships trust anchors (subject, key, name
//! constraints), not certificates. A trust anchor is all a verifier reads of a
//! root certificate, so each anchor is wrapped in the smallest X.509 v3
//! certificate that parses back to exactly that anchor (a unit test checks
//! every root). Its validity and signature are placeholders: a root's are
//! never checked.

use ureq::tls::Certificate;

/// Every webpki root as a minimal certificate.
pub(crate) fn webpki_certificates() -> impl Iterator<Item = Certificate<'static>> {
    webpki_roots::TLS_SERVER_ROOTS.iter().map(|anchor| {
        let der = certificate_der(
            &anchor.subject,
            &anchor.subject_public_key_info,
            anchor.name_constraints.as_deref(),
        );
        Certificate::from_der(&der).to_owned()
    })
}

const SEQUENCE: u8 = 0x30;
const EMPTY_SEQUENCE: &[u8] = &[SEQUENCE, 0];
/// `[0] EXPLICIT INTEGER 2`: X.509 v3.
const VERSION_3: &[u8] = &[0xa0, 3, 0x02, 1, 2];
const SERIAL_1: &[u8] = &[0x02, 1, 1];
/// A BIT STRING with no unused bits and no content.
const EMPTY_SIGNATURE: &[u8] = &[0x03, 1, 0];
/// `id-ce-nameConstraints` (2.5.29.30), then `critical TRUE`.
const NAME_CONSTRAINTS_ID: &[u8] = &[0x06, 3, 0x55, 0x1d, 0x1e, 0x01, 1, 0xff];

/// `subject`, `spki` and `name_constraints` are the contents (without tag
/// and length) of the respective SEQUENCEs, as webpki stores them.
fn certificate_der(subject: &[u8], spki: &[u8], name_constraints: Option<&[u8]>) -> Vec<u8> {
    let mut tbs = Vec::new();
    tbs.extend_from_slice(VERSION_3);
    tbs.extend_from_slice(SERIAL_1);
    tbs.extend_from_slice(EMPTY_SEQUENCE); // signature algorithm
    push_tlv(&mut tbs, SEQUENCE, subject); // issuer: self-signed
    tbs.extend_from_slice(EMPTY_SEQUENCE); // validity: not read for roots
    push_tlv(&mut tbs, SEQUENCE, subject);
    push_tlv(&mut tbs, SEQUENCE, spki);
    if let Some(constraints) = name_constraints {
        let mut value = Vec::new();
        push_tlv(&mut value, SEQUENCE, constraints);
        let mut extension = NAME_CONSTRAINTS_ID.to_vec();
        push_tlv(&mut extension, 0x04, &value);
        let mut extensions = Vec::new();
        push_tlv(&mut extensions, SEQUENCE, &extension);
        let mut list = Vec::new();
        push_tlv(&mut list, SEQUENCE, &extensions);
        push_tlv(&mut tbs, 0xa3, &list);
    }
    let mut cert = Vec::new();
    push_tlv(&mut cert, SEQUENCE, &tbs);
    cert.extend_from_slice(EMPTY_SEQUENCE); // signature algorithm, as in the TBS
    cert.extend_from_slice(EMPTY_SIGNATURE);
    let mut out = Vec::new();
    push_tlv(&mut out, SEQUENCE, &cert);
    out
}

/// Appends a DER tag-length-value.
fn push_tlv(out: &mut Vec<u8>, tag: u8, content: &[u8]) {
    out.push(tag);
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::RootCertStore;
    use rustls::pki_types::CertificateDer;

    #[test]
    fn every_webpki_root_round_trips_to_the_same_anchor() {
        let roots = webpki_roots::TLS_SERVER_ROOTS;
        let certs: Vec<_> = webpki_certificates().collect();
        assert_eq!(certs.len(), roots.len());
        assert!(roots.iter().any(|a| a.name_constraints.is_some()), "test covers name constraints");
        for (anchor, cert) in roots.iter().zip(&certs) {
            let mut store = RootCertStore::empty();
            store.add(CertificateDer::from(cert.der().to_vec())).expect("parses as a root");
            assert_eq!(&store.roots[0], anchor);
        }
    }

    #[test]
    fn long_lengths_use_the_long_form() {
        let mut out = Vec::new();
        push_tlv(&mut out, SEQUENCE, &[7; 300]);
        assert_eq!(&out[..4], &[SEQUENCE, 0x82, 0x01, 0x2c]);
        assert_eq!(out.len(), 304);
    }
}
