//! The exact request each authentication style puts on the wire, as the
//! loopback server received it.

#![cfg(feature = "ureq")]

mod support;

use base64::Engine as _;
use cctoken::{AuthStyle, Client, Config};
use support::{Recorded, Server, TestPki, token_response};

const GUID: &str = "0f8fad5b-d9cb-469f-a165-70867728950e";
/// Characters that form-urlencoding, Basic (`:`) and base64 (`+/=`) each treat
/// specially, plus non-ASCII.
const AWKWARD_ID: &str = "id with space&é";
const AWKWARD_SECRET: &str = "p@ss:w%rd+/=";
const FORM_ID: &str = "id+with+space%26%C3%A9";
const FORM_SECRET: &str = "p%40ss%3Aw%25rd%2B%2F%3D";

fn token_server() -> Server {
    Server::http(|_| token_response("T0k3n", 3600))
}

/// Fetches once with `config` and returns the one request the server saw.
fn fetch_one(server: &Server, config: Config) -> Recorded {
    let token = Client::new(config).expect("valid config").fetch().expect("token");
    assert_eq!(token.access_token().secret(), "T0k3n");
    let mut requests = server.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    requests.remove(0)
}

/// The headers every token request carries, whatever the style.
fn assert_form_post(request: &Recorded) {
    assert_eq!(request.method, "POST");
    assert_eq!(request.header("content-type"), Some("application/x-www-form-urlencoded"));
    assert_eq!(request.header("accept"), Some("application/json"));
    // The body is parsed as it comes: never compressed, whatever ureq's features.
    assert_eq!(request.header("accept-encoding"), Some("identity"));
    for name in ["accept", "accept-encoding", "content-type", "authorization", "content-length"] {
        let count = request.headers.iter().filter(|(n, _)| n == name).count();
        assert!(count <= 1, "{name} sent {count} times: {:?}", request.headers);
    }
    assert_eq!(request.header("content-length"), Some(request.body.len().to_string().as_str()));
    assert_eq!(request.header("transfer-encoding"), None);
    let agent = request.header("user-agent").unwrap_or_default();
    assert!(agent.starts_with("cctoken/"), "user-agent {agent:?}");
}

/// The `user:password` inside an `Authorization: Basic` header, checking that
/// it is standard, padded base64 (the alphabet with `+` and `/`).
fn basic_credentials(request: &Recorded) -> String {
    let value = request.header("authorization").expect("Authorization header");
    let encoded = value.strip_prefix("Basic ").unwrap_or_else(|| panic!("not Basic: {value:?}"));
    let raw = base64::engine::general_purpose::STANDARD.decode(encoded).expect("standard base64");
    assert_eq!(base64::engine::general_purpose::STANDARD.encode(&raw), encoded, "canonical encoding");
    String::from_utf8(raw).expect("UTF-8 credentials")
}

#[test]
fn nfleet_sends_raw_basic_to_the_identity_path() {
    let server = token_server();
    let key = "käyttäjä-01";
    let secret = "p@ss:w%rd+/=€ö";
    let request = fetch_one(&server, Config::nfleet_at(&server.url(""), GUID, key, secret));
    assert_form_post(&request);
    assert_eq!(request.path, format!("/{GUID}/token"));
    assert_eq!(request.header("host"), Some(format!("127.0.0.1:{}", server.addr().port()).as_str()));
    assert_eq!(basic_credentials(&request), "käyttäjä-01:p@ss:w%rd+/=€ö");
    // The raw UTF-8 bytes, not Latin-1 or percent-encoded ones.
    let expected = base64::engine::general_purpose::STANDARD.encode("käyttäjä-01:p@ss:w%rd+/=€ö".as_bytes());
    assert_eq!(request.header("authorization"), Some(format!("Basic {expected}").as_str()));
    assert_eq!(request.body, "grant_type=client_credentials");
}

#[test]
fn nfleet_base_url_keeps_its_path_and_drops_a_trailing_slash() {
    let server = token_server();
    let request = fetch_one(&server, Config::nfleet_at(&server.url("/identity/"), GUID, "key", "secret"));
    assert_eq!(request.path, format!("/identity/{GUID}/token"));
    assert_eq!(basic_credentials(&request), "key:secret");
}

#[test]
fn nfleet_can_switch_to_form_encoded_basic() {
    let server = token_server();
    let config =
        Config::nfleet_at(&server.url(""), GUID, AWKWARD_ID, AWKWARD_SECRET).auth_style(AuthStyle::Basic);
    let request = fetch_one(&server, config);
    assert_eq!(basic_credentials(&request), format!("{FORM_ID}:{FORM_SECRET}"));
}

#[test]
fn client_secret_basic_form_encodes_both_parts() {
    let server = token_server();
    let config = Config::client_secret_basic(&server.url("/oauth/v2/token"), AWKWARD_ID, AWKWARD_SECRET);
    let request = fetch_one(&server, config);
    assert_form_post(&request);
    assert_eq!(request.path, "/oauth/v2/token");
    assert_eq!(basic_credentials(&request), format!("{FORM_ID}:{FORM_SECRET}"));
    assert_eq!(request.body, "grant_type=client_credentials");
}

#[test]
fn basic_raw_sends_the_parts_unencoded() {
    let server = token_server();
    let config = Config::client_secret_basic(&server.url("/token"), AWKWARD_ID, AWKWARD_SECRET)
        .auth_style(AuthStyle::BasicRaw);
    let request = fetch_one(&server, config);
    assert_form_post(&request);
    assert_eq!(basic_credentials(&request), "id with space&é:p@ss:w%rd+/=");
    assert_eq!(request.body, "grant_type=client_credentials");
}

#[test]
fn client_secret_post_sends_credentials_in_the_body_only() {
    let server = token_server();
    let config = Config::client_secret_post(&server.url("/token"), AWKWARD_ID, AWKWARD_SECRET)
        .scope("a")
        .scope("b")
        .param("audience", "https://api.example/")
        .param("resource", "urn:x y");
    let request = fetch_one(&server, config);
    assert_form_post(&request);
    assert_eq!(request.header("authorization"), None);
    assert_eq!(
        request.body,
        format!(
            "grant_type=client_credentials&client_id={FORM_ID}&client_secret={FORM_SECRET}\
             &scope=a+b&audience=https%3A%2F%2Fapi.example%2F&resource=urn%3Ax+y"
        )
    );
}

#[test]
fn basic_constructor_can_switch_to_post() {
    let server = token_server();
    let config =
        Config::client_secret_basic(&server.url("/token"), "id", "secret").auth_style(AuthStyle::Post);
    let request = fetch_one(&server, config);
    assert_eq!(request.header("authorization"), None);
    assert_eq!(request.body, "grant_type=client_credentials&client_id=id&client_secret=secret");
}

#[test]
fn scopes_join_with_single_spaces_and_params_follow_in_order() {
    let server = token_server();
    let config = Config::client_secret_basic(&server.url("/token"), "id", "secret")
        .scope("transactions/post")
        .scope("read")
        .scope("é")
        .param("audience", "x")
        .param("resource", "https://r.example/v1")
        .param("resource", "https://r.example/v2");
    let request = fetch_one(&server, config);
    assert_eq!(basic_credentials(&request), "id:secret");
    assert_eq!(
        request.body,
        "grant_type=client_credentials&scope=transactions%2Fpost+read+%C3%A9&audience=x\
         &resource=https%3A%2F%2Fr.example%2Fv1&resource=https%3A%2F%2Fr.example%2Fv2"
    );
}

#[test]
fn two_scopes_are_sent_as_a_plus_b() {
    let server = token_server();
    let config = Config::nfleet_at(&server.url(""), GUID, "key", "secret").scope("a").scope("b");
    let request = fetch_one(&server, config);
    assert_eq!(request.body, "grant_type=client_credentials&scope=a+b");
}

#[test]
fn query_string_of_the_token_url_is_kept() {
    let server = token_server();
    let request = fetch_one(&server, Config::client_secret_post(&server.url("/token?tenant=t1"), "id", "s"));
    assert_eq!(request.path, "/token?tenant=t1");
    assert_eq!(request.body, "grant_type=client_credentials&client_id=id&client_secret=s");
}

#[test]
fn every_fetch_sends_the_same_request() {
    let server = token_server();
    let client = Client::new(Config::client_secret_basic(&server.url("/token"), "id", "secret").scope("a"))
        .expect("valid config");
    client.fetch().expect("first token");
    client.fetch().expect("second token");
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].path, requests[1].path);
    assert_eq!(requests[0].body, requests[1].body);
    assert_eq!(requests[0].header("authorization"), requests[1].header("authorization"));
}

#[test]
fn https_nfleet_request_is_exact() {
    let pki = TestPki::new();
    let server = Server::https(&pki, |_| token_response("T0k3n", 3600));
    let config = Config::nfleet_at(&server.url_localhost(""), GUID, "käy", AWKWARD_SECRET)
        .add_root_pem(pki.ca_pem.clone())
        .scope("a")
        .scope("b");
    let request = fetch_one(&server, config);
    assert_form_post(&request);
    assert_eq!(request.path, format!("/{GUID}/token"));
    assert_eq!(request.header("host"), Some(format!("localhost:{}", server.addr().port()).as_str()));
    assert_eq!(basic_credentials(&request), "käy:p@ss:w%rd+/=");
    assert_eq!(request.body, "grant_type=client_credentials&scope=a+b");
}

#[test]
fn https_post_request_is_exact() {
    let pki = TestPki::new();
    let server = Server::https(&pki, |_| token_response("T0k3n", 3600));
    let config = Config::client_secret_post(&server.url_localhost("/token"), AWKWARD_ID, AWKWARD_SECRET)
        .add_root_pem(pki.ca_pem.clone())
        .param("audience", "https://api.example/");
    let request = fetch_one(&server, config);
    assert_form_post(&request);
    assert_eq!(request.header("authorization"), None);
    assert_eq!(
        request.body,
        format!(
            "grant_type=client_credentials&client_id={FORM_ID}&client_secret={FORM_SECRET}\
             &audience=https%3A%2F%2Fapi.example%2F"
        )
    );
}

#[test]
fn https_to_an_ip_address_verifies_the_ip_san() {
    let pki = TestPki::new();
    let server = Server::https(&pki, |_| token_response("T0k3n", 3600));
    let config = Config::client_secret_basic(&server.url("/token"), AWKWARD_ID, AWKWARD_SECRET)
        .add_root_pem(pki.ca_pem.clone());
    let request = fetch_one(&server, config);
    assert_form_post(&request);
    assert_eq!(basic_credentials(&request), format!("{FORM_ID}:{FORM_SECRET}"));
}
