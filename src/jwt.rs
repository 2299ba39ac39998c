//! `private_key_jwt` (RFC 7523 §2.2, OpenID Connect Core §9): a client
//! assertion, a JWT signed with the client's own key, new for every token
//! request, so that no shared secret is ever sent.
//!
//! The assertion's times come from the wall clock, which a unit without a
//! real-time clock may read as 1970 until NTP answers. The rule, in
//! [`issued_at`]: the wall clock is believed unless it reads earlier than
//! the trusted floor ([`crate::trusted_time`]), or a server refused an
//! assertion while its `Date` was more than [`SKEW`] away from the
//! assertion's `iat`; when it is not believed, the time is the later of the
//! floor and the server's last `Date` carried forward on cctoken's clock.

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{self, EcdsaKeyPair, RsaKeyPair};
use rustls::pki_types::PrivateKeyDer;

use crate::auth::PrivateKeyPem;
use crate::error::Error;
use crate::request::base64url;
use crate::time;

/// How long an assertion is valid: its `exp` is this long after its `iat`.
pub(crate) const LIFETIME: Duration = Duration::from_secs(60);

/// A refused assertion is blamed on the wall clock when the server's `Date`
/// differs from the assertion's `iat` by more than this, half the
/// assertion's lifetime.
pub(crate) const SKEW: Duration = Duration::from_secs(30);

/// A key that signs assertions, with the JWS algorithm it signs with.
enum Key {
    /// RS256: RSASSA-PKCS1-v1_5 with SHA-256, RSA of at least 2048 bits.
    Rs256(RsaKeyPair),
    /// ES256: ECDSA on P-256 with SHA-256, the signature as the fixed-size
    /// r ‖ s that JWS requires (RFC 7518 §3.4), not ASN.1 DER.
    Es256(EcdsaKeyPair),
}

/// The server's clock, as its last response said: its `Date`, and when
/// that response arrived on cctoken's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ServerTime {
    pub(crate) date: u64,
    pub(crate) at: Instant,
}

/// What the clock rule knows about the time.
#[derive(Debug, Default)]
struct Clock {
    server: Option<ServerTime>,
    /// A server refused an assertion of ours while its clock disagreed.
    distrust_local: bool,
}

/// Everything needed to make assertions for one client.
pub(crate) struct Signer {
    key: Key,
    rng: SystemRandom,
    client_id: String,
    audience: String,
    key_id: Option<String>,
    clock: Mutex<Clock>,
}

/// One assertion, and the time it claims to be issued at.
pub(crate) struct Assertion {
    pub(crate) jwt: String,
    pub(crate) iat: u64,
    /// Whether `iat` came from the wall clock (not the server's).
    pub(crate) local: bool,
}

impl Signer {
    /// A signer for the key in `pem`, or the reason it cannot sign:
    /// RS256 takes RSA of at least 2048 bits, ES256 an ECDSA key on P-256.
    pub(crate) fn new(
        pem: &PrivateKeyPem,
        client_id: &str,
        audience: &str,
        key_id: Option<&str>,
    ) -> Result<Signer, Error> {
        let rng = SystemRandom::new();
        let key = key(pem, &rng)?;
        Ok(Signer {
            key,
            rng,
            client_id: client_id.to_owned(),
            audience: audience.to_owned(),
            key_id: key_id.map(str::to_owned),
            clock: Mutex::new(Clock::default()),
        })
    }

    /// A new assertion, issued now by the clock rule.
    pub(crate) fn assertion(&self) -> Result<Assertion, Error> {
        let (iat, local) = {
            let clock = self.clock.lock().unwrap_or_else(|e| e.into_inner());
            let now = crate::now();
            issued_at(SystemTime::now(), time::floor_at(now), clock.server, now, clock.distrust_local)
        };
        let mut jti = [0u8; 16];
        self.rng.fill(&mut jti).map_err(|_| Error::config("no random numbers for the assertion's jti"))?;
        let header = match &self.key_id {
            None => format!(r#"{{"alg":"{}","typ":"JWT"}}"#, self.key.alg()),
            Some(kid) => format!(r#"{{"alg":"{}","typ":"JWT","kid":{}}}"#, self.key.alg(), json(kid)),
        };
        let claims = format!(
            r#"{{"iss":{id},"sub":{id},"aud":{aud},"jti":"{jti}","iat":{iat},"exp":{exp}}}"#,
            id = json(&self.client_id),
            aud = json(&self.audience),
            jti = base64url(&jti),
            exp = iat + LIFETIME.as_secs(),
        );
        let mut jwt = format!("{}.{}", base64url(header.as_bytes()), base64url(claims.as_bytes()));
        let signature = self.key.sign(&self.rng, jwt.as_bytes())?;
        jwt.push('.');
        jwt.push_str(&base64url(&signature));
        Ok(Assertion { jwt, iat, local })
    }

    /// Takes note of a response's `Date`, and of whether the server refused
    /// `sent`; whether the refusal is the wall clock's fault, so that the
    /// request is worth making again at once with the server's time.
    pub(crate) fn record(&self, sent: &Assertion, server: Option<ServerTime>, refused: bool) -> bool {
        let mut clock = self.clock.lock().unwrap_or_else(|e| e.into_inner());
        let Some(server) = server else { return false };
        clock.server = Some(server);
        let off = sent.iat.abs_diff(server.date) > SKEW.as_secs();
        if refused && off && sent.local {
            clock.distrust_local = true;
            return true;
        }
        false
    }
}

/// The `iat` of an assertion made at `local` on the wall clock and `now` on
/// cctoken's, with the trusted floor at `floor` (see [`crate::trusted_time`]),
/// and whether it is the wall clock's: the wall clock unless it reads
/// earlier than the floor or `distrust_local`, in which case the later of
/// the floor and the server's last `Date` plus the time since it arrived.
pub(crate) fn issued_at(
    local: SystemTime,
    floor: Duration,
    server: Option<ServerTime>,
    now: Instant,
    distrust_local: bool,
) -> (u64, bool) {
    let local = local.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    if local >= floor.as_secs() && !distrust_local {
        return (local, true);
    }
    let server = server.map_or(0, |s| s.date + now.saturating_duration_since(s.at).as_secs());
    (server.max(floor.as_secs()), false)
}

impl Key {
    fn alg(&self) -> &'static str {
        match self {
            Key::Rs256(_) => "RS256",
            Key::Es256(_) => "ES256",
        }
    }

    fn sign(&self, rng: &SystemRandom, message: &[u8]) -> Result<Vec<u8>, Error> {
        let failed = |_| Error::config("the client key could not sign the assertion");
        match self {
            Key::Rs256(key) => {
                let mut signature = vec![0; key.public().modulus_len()];
                key.sign(&signature::RSA_PKCS1_SHA256, rng, message, &mut signature).map_err(failed)?;
                Ok(signature)
            }
            Key::Es256(key) => Ok(key.sign(rng, message).map_err(failed)?.as_ref().to_vec()),
        }
    }
}

/// The signing key in `pem`: RSA (PKCS#8 or PKCS#1) for RS256, or ECDSA on
/// P-256 (PKCS#8 or SEC1) for ES256.
fn key(pem: &PrivateKeyPem, rng: &SystemRandom) -> Result<Key, Error> {
    let unusable = "the client key cannot sign assertions: it must be RSA of at least 2048 bits (RS256) \
                    or ECDSA on P-256 (ES256)";
    let rsa = |result: Result<RsaKeyPair, ring::error::KeyRejected>| match result {
        Ok(key) => Ok(Key::Rs256(key)),
        Err(e) if e.to_string() == "TooSmall" => {
            Err(Error::config("the client key is RSA of fewer than 2048 bits: RS256 needs at least 2048"))
        }
        Err(_) => Err(Error::config(unusable)),
    };
    let ec = |pkcs8: &[u8]| {
        if let Ok(key) = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8, rng) {
            return Ok(Key::Es256(key));
        }
        if EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P384_SHA384_FIXED_SIGNING, pkcs8, rng).is_ok() {
            return Err(Error::config("the client key is on P-384: ES256 needs a P-256 key"));
        }
        Err(Error::config(unusable))
    };
    match crate::transport::private_key_der(pem.expose())? {
        PrivateKeyDer::Pkcs1(der) => rsa(RsaKeyPair::from_der(der.secret_pkcs1_der())),
        PrivateKeyDer::Pkcs8(der) => match RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()) {
            Err(e) if e.to_string() == "WrongAlgorithm" => ec(der.secret_pkcs8_der()),
            other => rsa(other),
        },
        PrivateKeyDer::Sec1(der) => {
            let p256 = sec1_as_pkcs8(der.secret_sec1_der(), P256);
            match ec(&p256) {
                Err(_)
                    if EcdsaKeyPair::from_pkcs8(
                        &signature::ECDSA_P384_SHA384_FIXED_SIGNING,
                        &sec1_as_pkcs8(der.secret_sec1_der(), P384),
                        rng,
                    )
                    .is_ok() =>
                {
                    Err(Error::config("the client key is on P-384: ES256 needs a P-256 key"))
                }
                result => result,
            }
        }
        _ => Err(Error::config(unusable)),
    }
}

/// The DER of the object identifiers of the named curves (RFC 5480).
const P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const P384: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];

/// A SEC1 `ECPrivateKey` wrapped in the PKCS#8 `PrivateKeyInfo` that ring
/// reads (RFC 5208, RFC 5915): version 0, the algorithm `id-ecPublicKey` on
/// `curve`, and the key as an octet string.
fn sec1_as_pkcs8(sec1: &[u8], curve: &[u8]) -> Vec<u8> {
    const EC_PUBLIC_KEY: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
    let algorithm = der(0x30, &[EC_PUBLIC_KEY, curve].concat());
    der(0x30, &[&[0x02, 0x01, 0x00][..], &algorithm, &der(0x04, sec1)].concat())
}

/// A DER element: `tag`, the length of `content`, and `content`.
fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let len = content.len();
    let mut out = vec![tag];
    match len {
        0..0x80 => out.push(len as u8),
        0x80..0x100 => out.extend([0x81, len as u8]),
        _ => out.extend([0x82, (len >> 8) as u8, len as u8]),
    }
    out.extend_from_slice(content);
    out
}

/// `text` as a JSON string, quotes and escapes included.
fn json(text: &str) -> String {
    miniserde::json::to_string(text)
}

#[cfg(test)]
mod tests;
