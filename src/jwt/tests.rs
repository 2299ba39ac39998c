use base64::Engine as _;
use ring::signature::{ECDSA_P256_SHA256_FIXED, KeyPair, RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};

use super::*;
use crate::time::RELEASE;

/// Test keys made with openssl for these tests only (`tests/keys/`).
const RSA_2048: &str = include_str!("../../tests/keys/rsa2048.pem");
const RSA_2048_PKCS1: &str = include_str!("../../tests/keys/rsa2048-pkcs1.pem");
const P256: &str = include_str!("../../tests/keys/p256.pem");
const P256_SEC1: &str = include_str!("../../tests/keys/p256-sec1.pem");
const P384: &str = include_str!("../../tests/keys/p384.pem");
const P384_SEC1: &str = include_str!("../../tests/keys/p384-sec1.pem");
const RSA_1024: &str = include_str!("../../tests/keys/rsa1024.pem");
const ED25519: &str = include_str!("../../tests/keys/ed25519.pem");

const URL: &str = "https://auth.example.com/token";

fn signer(pem: &str, key_id: Option<&str>) -> Signer {
    Signer::new(&PrivateKeyPem::from(pem), "unit-7", URL, key_id).expect("a usable key")
}

fn decode(part: &str) -> Vec<u8> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).expect("base64url")
}

/// The three parts of a compact JWS: header and claims as text, and the
/// signature's bytes.
fn parts(jwt: &str) -> (String, String, Vec<u8>) {
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3, "{jwt}");
    let text = |part| String::from_utf8(decode(part)).expect("UTF-8");
    (text(parts[0]), text(parts[1]), decode(parts[2]))
}

/// Verifies `jwt`'s signature with the public key, as a server would.
fn verify(jwt: &str, signer: &Signer) {
    let (signed, signature) = jwt.rsplit_once('.').expect("a signature");
    let signature = decode(signature);
    let result = match &signer.key {
        Key::Rs256(key) => UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, key.public().as_ref())
            .verify(signed.as_bytes(), &signature),
        Key::Es256(key) => {
            assert_eq!(signature.len(), 64, "r ‖ s, 32 bytes each, not ASN.1 DER");
            UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, key.public_key().as_ref())
                .verify(signed.as_bytes(), &signature)
        }
    };
    assert!(result.is_ok(), "the signature does not verify: {jwt}");
}

#[test]
fn rs256_and_es256_assertions_verify_and_carry_the_claims() {
    for (pem, alg) in [(RSA_2048, "RS256"), (RSA_2048_PKCS1, "RS256"), (P256, "ES256"), (P256_SEC1, "ES256")]
    {
        let signer = signer(pem, None);
        let assertion = signer.assertion().expect("an assertion");
        verify(&assertion.jwt, &signer);
        let (header, claims, _) = parts(&assertion.jwt);
        assert_eq!(header, format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#));
        let jti = claims.split(r#""jti":""#).nth(1).and_then(|rest| rest.split('"').next()).expect("a jti");
        assert_eq!(decode(jti).len(), 16, "{claims}");
        let iat = assertion.iat;
        assert_eq!(
            claims,
            format!(
                r#"{{"iss":"unit-7","sub":"unit-7","aud":"{URL}","jti":"{jti}","iat":{iat},"exp":{}}}"#,
                iat + 60
            )
        );
        assert!(assertion.local);
    }
}

#[test]
fn every_assertion_is_new() {
    let signer = signer(P256, None);
    let (a, b) = (signer.assertion().expect("first"), signer.assertion().expect("second"));
    let jti = |jwt: &str| parts(jwt).1.split(r#""jti":""#).nth(1).map(str::to_owned);
    assert_ne!(jti(&a.jwt), jti(&b.jwt));
}

#[test]
fn the_key_id_and_text_are_json_escaped() {
    let signer = Signer::new(&PrivateKeyPem::from(P256), "unit \"7\"", "https://a.example/\\", Some("k\"1"))
        .expect("a usable key");
    let assertion = signer.assertion().expect("an assertion");
    let (header, claims, _) = parts(&assertion.jwt);
    assert_eq!(header, r#"{"alg":"ES256","typ":"JWT","kid":"k\"1"}"#);
    assert!(
        claims.starts_with(r#"{"iss":"unit \"7\"","sub":"unit \"7\"","aud":"https://a.example/\\","#),
        "{claims}"
    );
}

#[test]
fn unusable_keys_are_refused_with_a_clear_message() {
    let cases = [
        ("", "the client key file holds no PEM private key"),
        ("garbage", "the client key file holds no PEM private key"),
        (RSA_1024, "the client key is RSA of fewer than 2048 bits: RS256 needs at least 2048"),
        (P384, "the client key is on P-384: ES256 needs a P-256 key"),
        (P384_SEC1, "the client key is on P-384: ES256 needs a P-256 key"),
        (
            ED25519,
            "the client key cannot sign assertions: it must be RSA of at least 2048 bits (RS256) or ECDSA on P-256 (ES256)",
        ),
        ("-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n", "a public key, not the private key"),
        (
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIHs\n-----END ENCRYPTED PRIVATE KEY-----\n",
            "the client key is encrypted",
        ),
    ];
    for (pem, expected) in cases {
        let error = Signer::new(&PrivateKeyPem::from(pem), "unit-7", URL, None).err().expect(expected);
        assert!(matches!(&error, Error::Config(m) if m.contains(expected)), "{expected}: {error:?}");
    }
}

/// Seconds since the epoch as a wall-clock time.
fn wall(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

#[test]
fn the_clock_rule() {
    const HOUR: u64 = 3600;
    let now = crate::now();
    let today = RELEASE + 40 * 24 * HOUR;
    let release = Duration::from_secs(RELEASE);
    // The server's Date arrived 90 s ago on cctoken's clock.
    let server = Some(ServerTime { date: today, at: now - Duration::from_secs(90) });
    let cases = [
        // (wall clock, floor, server, distrusted after a refusal) → (iat, from the wall clock)
        ("1970, a Date known", wall(86_400), release, server, false, (today + 90, false)),
        ("1970, no Date yet: the release", wall(86_400), release, None, false, (RELEASE, false)),
        (
            "1970, a floor learned",
            wall(86_400),
            Duration::from_secs(today + 50),
            None,
            false,
            (today + 50, false),
        ),
        (
            "1970, a floor above the Date",
            wall(86_400),
            Duration::from_secs(today + 120),
            server,
            false,
            (today + 120, false),
        ),
        (
            "before the epoch",
            UNIX_EPOCH - Duration::from_secs(5),
            release,
            server,
            false,
            (today + 90, false),
        ),
        ("right", wall(today + 90), release, server, false, (today + 90, true)),
        (
            "two hours fast, not refused yet",
            wall(today + 90 + 2 * HOUR),
            release,
            server,
            false,
            (today + 90 + 2 * HOUR, true),
        ),
        ("two hours fast, refused", wall(today + 90 + 2 * HOUR), release, server, true, (today + 90, false)),
        (
            "two hours slow, not refused",
            wall(today + 90 - 2 * HOUR),
            release,
            server,
            false,
            (today + 90 - 2 * HOUR, true),
        ),
        ("two hours slow, refused", wall(today + 90 - 2 * HOUR), release, server, true, (today + 90, false)),
    ];
    for (name, local, floor, server, distrust, expected) in cases {
        assert_eq!(issued_at(local, floor, server, now, distrust), expected, "{name}");
    }
}

#[test]
fn a_refusal_is_blamed_on_the_clock_only_when_the_date_disagrees() {
    let signer = signer(P256, None);
    let sent = signer.assertion().expect("an assertion");
    let at = crate::now();
    let date = |offset: i64| Some(ServerTime { date: sent.iat.saturating_add_signed(offset), at });
    // Within 30 s, or not refused: the wall clock stays believed.
    assert!(!signer.record(&sent, date(30), true));
    assert!(!signer.record(&sent, date(7200), false));
    assert!(!signer.record(&sent, None, true));
    assert!(signer.assertion().expect("an assertion").local);
    // Refused, and the server's clock is two hours off: the next assertion is on the server's time.
    assert!(signer.record(&sent, date(-7200), true));
    let next = signer.assertion().expect("an assertion");
    assert!(!next.local);
    assert!(next.iat.abs_diff(sent.iat - 7200) <= 1, "{} vs {}", next.iat, sent.iat - 7200);
    // An assertion on the server's time that is refused asks for no retry.
    assert!(!signer.record(&next, date(-7200), true));
}

#[test]
fn a_sec1_key_is_wrapped_as_pkcs8() {
    // The DER lengths: short form below 128 bytes, long forms above.
    assert_eq!(der(0x04, &[1, 2]), [0x04, 2, 1, 2]);
    assert_eq!(der(0x04, &[0; 200])[..3], [0x04, 0x81, 200]);
    assert_eq!(der(0x04, &[0; 300])[..4], [0x04, 0x82, 0x01, 0x2c]);
}
