//! Nothing the crate prints (`Debug`, `Display`, error sources) contains the
//! client secret, the access token, or the Basic credentials sent on the wire.

#![cfg(feature = "ureq")]

mod support;

use std::fmt::Debug;
use std::time::Duration;

use cctoken::{AuthStyle, Client, Config, Error, TokenCache};
use support::{Server, Silent, TestPki, refused_port, response, token_response};

const ID: &str = "client-id";
const SECRET: &str = "S3cr3t-XYZ";
const TOKEN: &str = "T0k3n-ABC";

/// The base64 part of the `Authorization: Basic` header the server received
/// from a basic-style client with these credentials.
fn basic_on_the_wire() -> String {
    let server = Server::http(|_| token_response(TOKEN, 60));
    Client::new(Config::client_secret_basic(&server.url("/token"), ID, SECRET)).unwrap().fetch().unwrap();
    let value = server.requests()[0].header("authorization").expect("Authorization").to_owned();
    let encoded = value.strip_prefix("Basic ").expect("Basic").to_owned();
    assert!(encoded.len() > 8, "{encoded}");
    encoded
}

/// Checks every text the value can print.
fn assert_clean(what: &str, texts: &[String]) {
    let basic = basic_on_the_wire();
    for text in texts {
        assert!(!text.contains(SECRET), "{what} shows the secret: {text}");
        assert!(!text.contains(TOKEN), "{what} shows the token: {text}");
        assert!(!text.contains(&basic), "{what} shows the Basic credentials: {text}");
    }
}

fn debug(value: &impl Debug) -> String {
    format!("{value:?}")
}

fn configs(url: &str) -> Vec<Config> {
    vec![
        Config::client_secret_basic(url, ID, SECRET).scope("a").param("audience", "x"),
        Config::client_secret_basic(url, ID, SECRET).auth_style(AuthStyle::BasicRaw),
        Config::client_secret_post(url, ID, SECRET).timeout(Duration::from_secs(2)),
        Config::nfleet_at(url, "0f8fad5b-d9cb-469f-a165-70867728950e", ID, SECRET),
    ]
}

#[test]
fn configs_requests_and_clients_hide_the_secret() {
    let server = Server::http(|_| token_response(TOKEN, 60));
    for config in configs(&server.url("")) {
        let request = config.request().expect("valid config");
        assert_clean("Config", &[debug(&config), format!("{config:#?}")]);
        assert_clean("TokenRequest", &[debug(&request), format!("{request:#?}")]);
        let client = Client::new(config).expect("valid config");
        assert_clean("Client", &[debug(&client), format!("{client:#?}")]);
    }
}

#[test]
fn tokens_and_caches_hide_the_token_and_the_secret() {
    let server = Server::http(|_| token_response(TOKEN, 3600));
    for config in configs(&server.url("")) {
        let client = Client::new(config).expect("valid config");
        let token = client.fetch().expect("token");
        assert_eq!(token.access_token().secret(), TOKEN, "the test checks a real token");
        assert_clean("Token", &[debug(&token), format!("{token:#?}"), debug(token.access_token())]);
        assert_clean("Client after a fetch", &[debug(&client)]);

        let mut cache = TokenCache::new(client);
        assert_eq!(cache.token().expect("token").access_token().secret(), TOKEN);
        assert_clean("TokenCache", &[debug(&cache), format!("{cache:#?}")]);
    }
}

/// Each answer, served to each credential style, gives an error that prints
/// neither the secret nor the token nor the Basic credentials, even when the
/// server's page or body contains them.
#[test]
fn errors_from_server_answers_hide_the_credentials() {
    let answers: Vec<Vec<u8>> = vec![
        response(401, &[], ""),
        response(401, &[("Content-Type", "application/json")], r#"{"error":"invalid_client"}"#),
        response(400, &[("Content-Type", "application/json")], r#"{"error":"invalid_scope"}"#),
        response(500, &[("Content-Type", "text/html")], &format!("<html>{SECRET} {TOKEN}</html>")),
        response(429, &[("Retry-After", "5")], SECRET),
        response(200, &[("Content-Type", "text/html")], &format!("<html>{TOKEN}</html>")),
        response(200, &[], &format!(r#"{{"access_token":"{TOKEN}","token_type":"mac"}}"#)),
        response(200, &[], &format!(r#"{{"access_token":"{TOKEN} {SECRET}"}}"#)),
        response(200, &[], &format!(r#"{{"access_token":"{TOKEN}","expires_in":-1}}"#)),
        response(200, &[], &format!(r#"{{"access_token":"{TOKEN}","error":7}}"#)),
        response(200, &[], &format!(r#"{{"token":"{TOKEN}"}} {SECRET}"#)),
        response(200, &[], &format!(r#"{{"access_token":"{TOKEN}"{}}}"#, " ".repeat(70_000))),
        format!("HTTP/1.1 200 OK\r\nContent-Length: 900\r\n\r\n{{\"access_token\":\"{TOKEN}").into_bytes(),
        format!("{TOKEN} {SECRET}\r\n\r\n").into_bytes(),
    ];
    for answer in answers {
        let shown = String::from_utf8_lossy(&answer).into_owned();
        let server = Server::http(move |_| answer.clone());
        for config in configs(&server.url("")) {
            let err = Client::new(config).expect("valid config").fetch().unwrap_err();
            assert_clean(&format!("error for {shown:.80?}"), &support::error_texts(&err));
        }
    }
}

/// A server may echo the secret in its `error_description`: the rest of its
/// text is kept for the operator, the secret is redacted, and the Basic
/// credentials the client sent and the token appear nowhere.
#[test]
fn an_echoed_secret_in_an_oauth_description_is_redacted() {
    let body = format!(r#"{{"error":"invalid_scope","error_description":"bad scope for secret {SECRET}"}}"#);
    let server = Server::http(move |_| response(400, &[("Content-Type", "application/json")], &body));
    let config = Config::client_secret_basic(&server.url("/token"), ID, SECRET);
    let err = Client::new(config).unwrap().fetch().unwrap_err();
    let Error::OAuth { oauth, .. } = &err else { panic!("{err:?}") };
    assert_eq!(oauth.description(), Some("bad scope for secret [redacted]"));
    let basic = basic_on_the_wire();
    for text in support::error_texts(&err) {
        assert!(!text.contains(SECRET), "{text}");
        assert!(!text.contains(&basic), "{text}");
        assert!(!text.contains(TOKEN), "{text}");
        assert!(!text.contains("Basic "), "{text}");
    }
}

/// A cache that failed keeps the failure (to repeat it while it waits
/// before asking again): neither the cache nor what it returns shows the
/// credentials or the previous token.
#[test]
fn a_cache_after_failures_hides_the_credentials() {
    let calls = std::sync::atomic::AtomicUsize::new(0);
    let server = Server::http(move |_| match calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) {
        0 => token_response(TOKEN, 1),
        _ => response(401, &[("Content-Type", "application/json")], r#"{"error":"invalid_client"}"#),
    });
    for config in configs(&server.url("")) {
        let mut cache = TokenCache::new(Client::new(config).expect("valid config"));
        let _ = cache.token();
        let start = std::time::Instant::now();
        for later in [2, 3, 3600] {
            match cache.token_at(start + Duration::from_secs(later)) {
                Ok(token) => assert_clean("Token from a cache", &[debug(token)]),
                Err(err) => assert_clean("error from a cache", &support::error_texts(&err)),
            }
            assert_clean("TokenCache after a failure", &[debug(&cache), format!("{cache:#?}")]);
        }
    }
    assert!(server.requests().len() >= 2, "the cache did meet the failure");
}

#[test]
fn transport_errors_hide_the_credentials() {
    let pki = TestPki::new();
    let untrusted = Server::https(&pki, |_| token_response(TOKEN, 60));
    let silent = Silent::start();
    let refused = format!("http://127.0.0.1:{}", refused_port());
    let short = Duration::from_millis(300);
    // Another CA than the server's: roots even without the webpki-roots feature.
    let other_ca = TestPki::new().ca_pem;
    for base in [untrusted.url_localhost(""), silent.url(""), refused] {
        for config in configs(&base) {
            let config = config.timeout(short).add_root_pem(other_ca.clone());
            let err = Client::new(config).expect("valid config").fetch().unwrap_err();
            assert!(matches!(err, Error::Transport(_)), "{err:?}");
            assert_clean(&format!("error from {base}"), &support::error_texts(&err));
        }
    }
}

#[test]
fn config_errors_never_quote_the_bad_value() {
    let bad = [
        Config::client_secret_basic("https://a.example/token", ID, format!("{SECRET}\r\n")),
        Config::client_secret_post("https://a.example/token", ID, format!("\0{SECRET}")),
        Config::client_secret_post(&format!("http://{SECRET}.example/token"), ID, SECRET),
        Config::client_secret_post(&format!("https://{ID}:{SECRET}@a.example/token"), ID, SECRET),
        Config::client_secret_basic("https://a.example/token", ID, SECRET).add_root_pem(SECRET),
        Config::client_secret_basic("https://a.example/token", ID, SECRET).param("p", &format!("{SECRET}\n")),
    ];
    for config in bad {
        let err = Client::new(config).unwrap_err();
        assert!(matches!(err, Error::Config(_)), "{err:?}");
        assert_clean("Config error", &support::error_texts(&err));
    }
}
