//! `private_key_jwt` against a loopback token server that checks each
//! assertion as a real one would: the form, the signature with the client's
//! public key, the claims, and the times against its own clock, which the
//! tests set hours away from the machine's to play a unit whose wall clock
//! is wrong.

#![cfg(feature = "jwt")]

mod support;

use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use cctoken::{AuthStyle, Client, Config, Error};
use ring::signature::{ECDSA_P256_SHA256_FIXED, EcdsaKeyPair, KeyPair, UnparsedPublicKey};
use support::{Recorded, Server, response, token_response};

/// A P-256 test key (openssl, for these tests only) and the client it signs for.
const KEY: &str = include_str!("keys/p256.pem");
const ID: &str = "unit-0042";
const ASSERTION_TYPE: &str = "urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer";
const HOUR: i64 = 3600;

/// The public key of [`KEY`], as the server has it registered.
fn public_key() -> Vec<u8> {
    let der = rustls::pki_types::pem::PemObject::from_pem_slice(KEY.as_bytes())
        .map(|der: rustls::pki_types::PrivatePkcs8KeyDer<'_>| der.secret_pkcs8_der().to_vec())
        .expect("a PKCS#8 key");
    let rng = ring::rand::SystemRandom::new();
    let pair = EcdsaKeyPair::from_pkcs8(&ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING, &der, &rng);
    pair.expect("a P-256 key").public_key().as_ref().to_vec()
}

fn now_secs() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// An IMF-fixdate (RFC 9110 §5.6.7) of `secs` since the epoch.
fn http_date(secs: i64) -> String {
    support::http_date(u64::try_from(secs).expect("after 1970"))
}

/// What the server saw of one assertion.
#[derive(Debug, Clone)]
struct Seen {
    header: String,
    iat: i64,
    exp: i64,
    jti: String,
    /// Its own clock when it checked, and whether it accepted.
    server_now: i64,
    accepted: bool,
}

/// A token server whose clock runs `offset` seconds from the machine's: it
/// sends that time as `Date`, and refuses with 401 `invalid_client` an
/// assertion that is badly signed, has the wrong claims, or whose `iat` is
/// more than 30 s from its clock.
fn server(offset: i64) -> (Server, Arc<Mutex<Vec<Seen>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let public = public_key();
    let server = Server::http(move |request: &Recorded| {
        let server_now = now_secs() + offset;
        let date = http_date(server_now);
        let refuse = || response(401, &[("Date", &date)], r#"{"error":"invalid_client"}"#);
        let Some(seen) = check(request, &public, server_now) else { return refuse() };
        let accepted = seen.accepted;
        log.lock().expect("log").push(seen);
        if accepted { ok(&date) } else { refuse() }
    });
    (server, seen)
}

fn ok(date: &str) -> Vec<u8> {
    let body = r#"{"access_token":"jwt-token","token_type":"Bearer","expires_in":3600}"#;
    response(200, &[("Date", date), ("Content-Type", "application/json")], body)
}

/// The server's check of `request`: `None` if it is not a well-formed,
/// well-signed assertion for [`ID`] at this endpoint.
fn check(request: &Recorded, public: &[u8], server_now: i64) -> Option<Seen> {
    let prefix = format!(
        "grant_type=client_credentials&client_id={ID}&client_assertion_type={ASSERTION_TYPE}&client_assertion="
    );
    let jwt = request.body.strip_prefix(&prefix)?;
    let (signed, signature) = jwt.rsplit_once('.')?;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let signature = b64.decode(signature).ok()?;
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, public).verify(signed.as_bytes(), &signature).ok()?;
    let (header, claims) = signed.split_once('.')?;
    let header = String::from_utf8(b64.decode(header).ok()?).ok()?;
    let claims = String::from_utf8(b64.decode(claims).ok()?).ok()?;
    let field = |name: &str| {
        claims.split(&format!(r#""{name}":"#)).nth(1)?.split([',', '}']).next().map(str::to_owned)
    };
    let number = |name: &str| field(name)?.parse::<i64>().ok();
    let url = format!("\"http://{}/token\"", request.header("host")?);
    let expected_id = format!("\"{ID}\"");
    if field("iss")? != expected_id || field("sub")? != expected_id || field("aud")? != url {
        return None;
    }
    let (iat, exp) = (number("iat")?, number("exp")?);
    Some(Seen {
        header,
        iat,
        exp,
        jti: field("jti")?,
        server_now,
        accepted: iat.abs_diff(server_now) <= 30 && exp > server_now,
    })
}

fn client(server: &Server) -> Client {
    Client::new(Config::private_key_jwt(&server.url("/token"), ID, KEY)).expect("a client")
}

#[test]
fn a_signed_assertion_gets_a_token() {
    let (server, seen) = server(0);
    let token = client(&server).fetch().expect("a token");
    assert_eq!(token.access_token().secret(), "jwt-token");
    let seen = seen.lock().expect("log").clone();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].header, r#"{"alg":"ES256","typ":"JWT"}"#);
    assert_eq!(seen[0].exp - seen[0].iat, 60);
    assert!(seen[0].accepted, "{seen:?}");
}

#[test]
fn each_request_has_its_own_assertion() {
    let (server, seen) = server(0);
    let client = client(&server);
    client.fetch().expect("first");
    client.fetch().expect("second");
    let seen = seen.lock().expect("log").clone();
    assert_eq!(seen.len(), 2);
    assert_ne!(seen[0].jti, seen[1].jti);
}

/// A server whose clock is `offset` from the unit's: the first assertion,
/// on the unit's clock, is refused; the second, at once, is on the server's
/// `Date` and gets the token; later ones stay on the server's time.
fn off_by(offset: i64) {
    let (server, seen) = server(offset);
    let client = client(&server);
    assert_eq!(client.fetch().expect("a token after one retry").access_token().secret(), "jwt-token");
    client.fetch().expect("the next token");
    let seen = seen.lock().expect("log").clone();
    assert_eq!(seen.iter().map(|s| s.accepted).collect::<Vec<_>>(), [false, true, true], "{seen:?}");
    for s in &seen[1..] {
        assert!(s.iat.abs_diff(s.server_now) <= 2, "{s:?}");
    }
    assert_eq!(server.requests().len(), 3);
}

#[test]
fn a_server_two_hours_ahead_is_met_on_its_own_time() {
    off_by(2 * HOUR);
}

#[test]
fn a_server_two_hours_behind_is_met_on_its_own_time() {
    off_by(-2 * HOUR);
}

#[test]
fn a_refusal_for_another_reason_is_not_retried() {
    // The server's clock agrees, but it rejects the client outright.
    let server =
        Server::http(|_| response(401, &[("Date", &http_date(now_secs()))], r#"{"error":"invalid_client"}"#));
    let error = client(&server).fetch().expect_err("rejected");
    assert!(error.is_credentials_rejected(), "{error:?}");
    assert_eq!(server.requests().len(), 1);
    // Its clock is off and it still refuses on its own time: one retry, no more.
    let server = Server::http(|_| {
        response(401, &[("Date", &http_date(now_secs() + 5 * HOUR))], r#"{"error":"invalid_client"}"#)
    });
    let error = client(&server).fetch().expect_err("rejected");
    assert!(matches!(error, Error::CredentialsRejected { status: 401, .. }), "{error:?}");
    assert_eq!(server.requests().len(), 2);
}

#[test]
fn the_key_id_and_audience_are_the_configured_ones() {
    let server = Server::http(|_| token_response("t", 60));
    let config = Config::private_key_jwt(&server.url("/token"), ID, KEY)
        .assertion_key_id("unit-0042-2026")
        .assertion_audience("https://issuer.example");
    assert_eq!(config.style(), AuthStyle::PrivateKeyJwt);
    Client::new(config).and_then(|c| c.fetch()).expect("a token");
    let body = server.requests()[0].body.clone();
    let jwt = body.rsplit_once("client_assertion=").expect("an assertion").1;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut parts =
        jwt.split('.').map(|p| String::from_utf8(b64.decode(p).unwrap_or_default()).unwrap_or_default());
    assert_eq!(parts.next().as_deref(), Some(r#"{"alg":"ES256","typ":"JWT","kid":"unit-0042-2026"}"#));
    assert!(parts.next().is_some_and(|claims| claims.contains(r#""aud":"https://issuer.example""#)));
}

#[test]
fn the_key_never_shows() {
    let config = Config::private_key_jwt("https://auth.example.com/token", ID, KEY);
    let client = Client::new(config.clone()).expect("a client");
    let shown = format!("{config:?} {client:?}");
    for line in KEY.lines().filter(|l| !l.starts_with("-----")) {
        assert!(!shown.contains(line), "{shown}");
    }
    assert!(shown.contains("signing_key: true"), "{shown}");
}
