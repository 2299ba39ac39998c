//! Mutual TLS (RFC 8705 `tls_client_auth`): the client certificate in the
//! handshake, against a loopback server that requires one; the request it
//! goes with; and every kind of bad certificate or key, refused up front.

#![cfg(feature = "ureq")]

mod support;

use cctoken::{AuthStyle, Client, Config, Error, PrivateKeyPem, TransportKind};
use support::{ClientPki, Server, TestPki, error_texts, token_response};

const ID: &str = "unit-0042";

/// A test key of each kind the crate refuses (made with openssl for these
/// tests only): RSA of 1024 bits, an encrypted PKCS#8 key, and an EC key
/// encrypted in OpenSSL's older way.
const RSA_1024: &str = "-----BEGIN PRIVATE KEY-----\n\
MIICdwIBADANBgkqhkiG9w0BAQEFAASCAmEwggJdAgEAAoGBAKkC6cZAY9Dsz+KJ\n\
b4sk1C7/LwRgC2Tb3nibJfm3R2/k8Dy+uL0+9wL8VcuggtaWFpehH6Ui+TtxUYEH\n\
keZ1bl2y1W2FpMG4Vi1Rtjr4wvpzZ5+Qqqk8m57mJXOVqmkX2BL0cyQcnHCCe0q3\n\
LjrkZrKDKCIM3rKhPHAQR+ftyn+7AgMBAAECgYAX1XtWI9pvqhWe4rbCLo1lm0Ls\n\
IQc6T+9NnsN6NahzVRuz1UmEFo8K8r6+moIY9M120Jf/17DB+zb9NS4UC9dmUI6s\n\
N+NKEkZLnXoCHnPnpt4VvwsIEcPLe+IX9qXXUEJsMIbjBYNKwywKtzXn45+Jchw+\n\
v+xRYEsr5loo8mHQwQJBANfn85rwKdHO2xmahHfsFoES4H0FcxHHgqrYQycmiUdD\n\
tlpQaxlj4oAkoSD34FuDddMOry36hbAbsnuLrxkceKsCQQDIZZ2iQcB2/+2tAtmO\n\
6QDJyTvqWfLVy2DE+vsd+FMZDJDROmQE38wnfTkzzla5p6c6/nII9xYLicWut0Fn\n\
FDUxAkEAxnV2jdfuiOW8rhdDZrxDn1eLtD/bGt+qM4Jgj88zZqdOKkw7dfZDkAib\n\
d6OBvnzjRCL+UaQzWMLM2BV42Ps7ywJBAMdrH5e0+NMy0ZEGsfsd8VPcdkw6oIWS\n\
csTywWxMjlzx/TbIdXnIP3/YhFECd5ketjLlvBMh1wU6X8cCxAnQuTECQDIRUy+n\n\
ImhBikkR4IGUxm7umWBQhOyuaAHBBJeS8XTlPJxMlN3Da/7pmpfasCTh7YVbVieb\n\
ZSkm97CvJZDzmNw=\n\
-----END PRIVATE KEY-----";
const ENCRYPTED_PKCS8: &str = "-----BEGIN ENCRYPTED PRIVATE KEY-----\n\
MIHsMFcGCSqGSIb3DQEFDTBKMCkGCSqGSIb3DQEFDDAcBAjT+/6QsSr3TQICCAAw\n\
DAYIKoZIhvcNAgkFADAdBglghkgBZQMEASoEEGlpNdkgH6tqdWgqIyHZzMUEgZB9\n\
EfJ4Lw6Cq+7wJxDJfolwsu6QuANCNXXSQ3bVsl6wGIfXWQfYBg2ow7WslGPMNifr\n\
HzMuDgNp2W01mNmT9/gfIJ6B1hLzD6p7EpspaQLK8smLtahixm8NtspHxCh3FCZM\n\
uiaQmRROBsBduEGj/B2UgqVV+MqtPZe54OmS6Jk/d7vTdoav3IvyhU9lvLSQ3SI=\n\
-----END ENCRYPTED PRIVATE KEY-----";
const ENCRYPTED_LEGACY: &str = "-----BEGIN EC PRIVATE KEY-----\n\
Proc-Type: 4,ENCRYPTED\n\
DEK-Info: AES-128-CBC,3C09D95F5A89E4E6C8F8CE987D80F66F\n\
\n\
f//mWXn87HuDqgfjiIU7Kr1LDM4gyfgT+mqzuhfTK+x0PmkS79TcVU9kh1Jx3y9f\n\
8Bwqy5M5Q+eNdwuu1+VsKZsHWeRkq+KIsYrl+sDWYTA1PBLEZCYFmuc9nYUYiGVE\n\
hL1j+Do1DHZDTibTAy1DWMPrTiCUmAKxK8Of3+hN6MQ=\n\
-----END EC PRIVATE KEY-----";

fn config(server: &Server, pki: &TestPki, client: &ClientPki) -> Config {
    Config::tls_client_auth(
        &server.url_localhost("/token"),
        ID,
        client.cert_pem.clone(),
        client.key_pem.clone(),
    )
    .add_root_pem(pki.ca_pem.clone())
}

#[test]
fn the_certificate_is_presented_and_the_body_carries_the_id_alone() {
    let (pki, client) = (TestPki::new(), ClientPki::new(ID));
    let server = Server::https_mutual(&pki, &client, |_| token_response("mtls-token", 3600));
    let token = Client::new(config(&server, &pki, &client)).and_then(|c| c.fetch()).expect("a token");
    assert_eq!(token.access_token().secret(), "mtls-token");
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].body, "grant_type=client_credentials&client_id=unit-0042");
    assert_eq!(requests[0].header("authorization"), None);
    let connections = server.tls_connections(1);
    assert_eq!(connections[0].client_certificate.as_deref(), Some(client.cert_der.as_slice()));
}

#[test]
fn the_request_is_the_form_of_rfc_8705() {
    let client = ClientPki::new(ID);
    let config =
        Config::tls_client_auth("https://auth.example.com/token", ID, client.cert_pem, client.key_pem)
            .scope("telemetry:write");
    assert_eq!(config.style(), AuthStyle::TlsClientAuth);
    let request = config.request().expect("a request");
    assert_eq!(request.body(), "grant_type=client_credentials&client_id=unit-0042&scope=telemetry%3Awrite");
    let names: Vec<&str> = request.headers().iter().map(|(name, _)| *name).collect();
    assert_eq!(names, ["Accept", "Accept-Encoding", "Content-Type"]);
}

#[test]
fn a_server_that_requires_a_certificate_lets_no_client_without_one_through() {
    let (pki, client) = (TestPki::new(), ClientPki::new(ID));
    let server = Server::https_mutual(&pki, &client, |_| token_response("mtls-token", 3600));
    let config = Config::client_secret_basic(&server.url_localhost("/token"), ID, "secret")
        .add_root_pem(pki.ca_pem.clone());
    let error = Client::new(config).and_then(|c| c.fetch()).expect_err("no certificate, no token");
    assert_eq!(error.transport_kind(), Some(TransportKind::Tls), "{error:?}");
    assert!(server.requests().is_empty(), "the server read no request");
}

#[test]
fn the_key_never_shows() {
    let client = ClientPki::new(ID);
    let config = Config::tls_client_auth(
        "https://auth.example.com/token",
        ID,
        client.cert_pem,
        client.key_pem.clone(),
    );
    // The key's base64 lines, any of which would give part of it away.
    let body: Vec<&str> = client.key_pem.lines().filter(|line| !line.starts_with("-----")).collect();
    let shown = format!("{config:?} {:?}", PrivateKeyPem::new(client.key_pem.clone()));
    for line in body {
        assert!(!shown.contains(line), "{shown}");
    }
    assert!(shown.contains("client_certificate: true"), "{shown}");
}

/// Each bad certificate or key, and the `Error::Config` message
/// `Client::new` refuses it with.
#[test]
fn bad_certificates_and_keys_are_refused_with_a_clear_message() {
    let client = ClientPki::new(ID);
    let other = ClientPki::new("another unit");
    let public_key = rcgen::KeyPair::from_pem(&client.key_pem).expect("the client key").public_key_pem();
    let url = "https://auth.example.com/token";
    // The client's certificate with another key.
    let with_key = |key: &str| Config::tls_client_auth(url, ID, client.cert_pem.clone(), key);
    let cases: Vec<(&str, Config, &str)> = vec![
        ("an empty key file", with_key(""), "the client key file holds no PEM private key"),
        ("garbage", with_key("not a key at all"), "the client key file holds no PEM private key"),
        ("an encrypted PKCS#8 key", with_key(ENCRYPTED_PKCS8), "the client key is encrypted"),
        ("an encrypted EC key", with_key(ENCRYPTED_LEGACY), "the client key is encrypted"),
        (
            "a public key",
            with_key(&public_key),
            "the client key file holds a public key, not the private key",
        ),
        (
            "RSA of 1024 bits",
            with_key(RSA_1024),
            "the client key cannot be used: it must be RSA of at least 2048 bits",
        ),
        (
            "another certificate's key",
            with_key(&other.key_pem),
            "the client key does not match the client certificate",
        ),
        (
            "an empty certificate file",
            Config::tls_client_auth(url, ID, "", client.key_pem.clone()),
            "the client certificate file holds no PEM certificate",
        ),
        (
            "a key in place of the certificate",
            Config::tls_client_auth(url, ID, client.key_pem.clone(), client.key_pem.clone()),
            "the client certificate file holds no PEM certificate",
        ),
        (
            "a damaged certificate",
            Config::tls_client_auth(url, ID, damaged(&client.cert_pem), client.key_pem.clone()),
            "the client certificate cannot be parsed",
        ),
        (
            "plain http",
            Config::tls_client_auth(
                "http://127.0.0.1:9/token",
                ID,
                client.cert_pem.clone(),
                client.key_pem.clone(),
            ),
            "a client certificate needs an https:// token URL",
        ),
        (
            "a caller's agent",
            with_key(&client.key_pem).agent(ureq::Agent::new_with_defaults()),
            "cctoken presents one with its own agent only",
        ),
        (
            "the style without a certificate",
            Config::client_secret_basic(url, ID, "secret").auth_style(AuthStyle::TlsClientAuth),
            "tls_client_auth needs a client certificate and key",
        ),
    ];
    for (name, config, expected) in cases {
        let error = Client::new(config).expect_err(name);
        assert!(matches!(&error, Error::Config(message) if message.contains(expected)), "{name}: {error:?}");
        for text in error_texts(&error) {
            assert!(!text.contains("MII"), "{name}: key or certificate material in {text}");
        }
    }
}

/// The certificate PEM with the bytes of its signature changed: still PEM,
/// no longer a certificate that parses... or verifies.
fn damaged(pem: &str) -> String {
    let mut lines: Vec<String> = pem.lines().map(str::to_owned).collect();
    // The first base64 line holds the start of the DER: replace it with
    // valid base64 of other bytes.
    lines[1] = "A".repeat(lines[1].len());
    lines.join("\n") + "\n"
}
