//! What the client makes of each kind of answer, end to end over loopback HTTP.

#![cfg(feature = "ureq")]

mod support;

use std::time::{Duration, Instant};

use cctoken::{Client, Config, Error, Token, TransportKind};
use support::{Server, response, token_response};

fn fetch_from(server: &Server, config: impl FnOnce(&str) -> Config) -> Result<Token, Error> {
    Client::new(config(&server.url("/token"))).expect("valid config").fetch()
}

/// Serves `answer` once and returns what a default client made of it.
fn fetch(answer: Vec<u8>) -> Result<Token, Error> {
    let server = Server::http(move |_| answer.clone());
    let result = fetch_from(&server, |url| Config::client_secret_basic(url, "id", "secret"));
    assert_eq!(server.requests().len(), 1, "exactly one request, no retry");
    result
}

fn json(status: u16, body: &str) -> Vec<u8> {
    response(status, &[("Content-Type", "application/json")], body)
}

#[test]
fn a_200_token_is_parsed_with_its_lifetime_from_the_send_time() {
    let server = Server::http(|_| {
        json(
            200,
            r#"{"access_token":"ey.J0.sig","token_type":"bearer","expires_in":3600,"scope":"a b","x":[1]}"#,
        )
    });
    let before = Instant::now();
    let token = fetch_from(&server, |url| Config::client_secret_basic(url, "id", "secret")).expect("token");
    let after = Instant::now();
    assert_eq!(token.access_token().secret(), "ey.J0.sig");
    assert_eq!(token.authorization(), "Bearer ey.J0.sig");
    assert_eq!(token.lifetime(), Duration::from_secs(3600));
    assert_eq!(token.scope(), Some("a b"));
    assert!(before <= token.issued_at() && token.issued_at() <= after, "issued_at is during the fetch");
    assert_eq!(token.expires_at(), token.issued_at() + Duration::from_secs(3600));
    assert!(!token.is_expired_at(after));
}

#[test]
fn lifetime_defaults_and_clamps_apply_to_real_responses() {
    let server = Server::http(|_| json(200, r#"{"access_token":"t","expires_in":"120"}"#));
    let token =
        fetch_from(&server, |url| Config::client_secret_basic(url, "i", "s")).expect("string expires_in");
    assert_eq!(token.lifetime(), Duration::from_secs(120));

    let server = Server::http(|_| json(200, r#"{"access_token":"t"}"#));
    let token = fetch_from(&server, |url| {
        Config::client_secret_basic(url, "i", "s").default_lifetime(Duration::from_secs(42))
    })
    .expect("no expires_in");
    assert_eq!(token.lifetime(), Duration::from_secs(42));

    let server = Server::http(|_| token_response("t", 10 * 24 * 3600));
    let token = fetch_from(&server, |url| {
        Config::client_secret_basic(url, "i", "s").max_lifetime(Duration::from_secs(7200))
    })
    .expect("long expires_in");
    assert_eq!(token.lifetime(), Duration::from_secs(7200));
}

#[test]
fn a_401_is_credentials_rejected() {
    let err = fetch(response(401, &[("WWW-Authenticate", "Basic realm=\"token\"")], "")).unwrap_err();
    assert!(matches!(err, Error::CredentialsRejected { status: 401, oauth: None }), "{err:?}");
    assert!(err.is_credentials_rejected());
    assert!(!err.is_transient());
    assert_eq!(err.retry_after(), None);

    let body = r#"{"error":"invalid_client","error_description":"wrong credentials"}"#;
    match fetch(json(401, body)).unwrap_err() {
        Error::CredentialsRejected { status: 401, oauth: Some(oauth) } => {
            assert_eq!(oauth.code(), "invalid_client");
            assert_eq!(oauth.description(), Some("wrong credentials"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn invalid_client_in_a_400_and_a_403_page_are_credentials_rejected() {
    let err = fetch(json(400, r#"{"error":"invalid_client"}"#)).unwrap_err();
    assert!(matches!(err, Error::CredentialsRejected { status: 400, oauth: Some(_) }), "{err:?}");
    let err = fetch(response(403, &[("Content-Type", "text/html")], "<html>Forbidden</html>")).unwrap_err();
    assert!(matches!(err, Error::CredentialsRejected { status: 403, oauth: None }), "{err:?}");
}

#[test]
fn a_400_invalid_scope_is_an_oauth_error() {
    let body = r#"{"error":"invalid_scope","error_description":"scope\n'x' unknown","error_uri":"https://e.example/s"}"#;
    let err = fetch(json(400, body)).unwrap_err();
    match &err {
        Error::OAuth { status: 400, oauth, retry_after: None } => {
            assert_eq!(oauth.code(), "invalid_scope");
            assert_eq!(oauth.description(), Some("scope 'x' unknown"));
            assert_eq!(oauth.uri(), Some("https://e.example/s"));
        }
        other => panic!("{other:?}"),
    }
    assert!(!err.is_transient());
    assert!(!err.is_credentials_rejected());
    let text = err.to_string();
    assert!(text.contains("HTTP 400") && text.contains("error=invalid_scope"), "{text}");
    assert!(!text.contains('\n'), "one line: {text:?}");
}

#[test]
fn a_500_html_page_is_an_http_status_error() {
    let page = "<!DOCTYPE html><html><body><h1>Internal Server Error</h1></body></html>";
    let err = fetch(response(500, &[("Content-Type", "text/html; charset=utf-8")], page)).unwrap_err();
    assert!(matches!(err, Error::HttpStatus { status: 500, retry_after: None }), "{err:?}");
    assert!(err.is_transient());
    assert!(!err.to_string().contains("Internal Server Error"), "no body in the error");
}

#[test]
fn retry_after_on_a_429_is_reported() {
    let err = fetch(response(429, &[("Retry-After", "120")], "slow down")).unwrap_err();
    assert!(matches!(err, Error::HttpStatus { status: 429, .. }), "{err:?}");
    assert_eq!(err.retry_after(), Some(Duration::from_secs(120)));
    assert!(err.is_transient());
    assert!(err.to_string().contains("retry after 120 s"), "{err}");
}

#[test]
fn a_retry_after_date_is_measured_against_the_servers_date_header() {
    // Both dates decades in the past: only the server's own clock can make
    // the answer 120 s, the local wall clock would make it 0.
    let headers =
        [("Date", "Sun, 06 Nov 1994 08:49:37 GMT"), ("Retry-After", "Sun, 06 Nov 1994 08:51:37 GMT")];
    let err = fetch(response(503, &headers, "")).unwrap_err();
    assert!(matches!(err, Error::HttpStatus { status: 503, .. }), "{err:?}");
    assert_eq!(err.retry_after(), Some(Duration::from_secs(120)));

    let headers =
        [("Date", "Sun, 06 Nov 1994 08:49:37 GMT"), ("Retry-After", "Sun, 06 Nov 1994 08:00:00 GMT")];
    let err = fetch(response(429, &headers, "")).unwrap_err();
    assert_eq!(err.retry_after(), Some(Duration::ZERO), "a date already past means now");
}

#[test]
fn retry_after_is_kept_on_an_oauth_error() {
    let answer = response(
        503,
        &[("Content-Type", "application/json"), ("Retry-After", "30")],
        r#"{"error":"temporarily_unavailable"}"#,
    );
    let err = fetch(answer).unwrap_err();
    assert!(matches!(err, Error::OAuth { status: 503, .. }), "{err:?}");
    assert_eq!(err.retry_after(), Some(Duration::from_secs(30)));
    assert!(err.is_transient());
}

#[test]
fn an_error_inside_a_200_is_an_error() {
    let err = fetch(json(200, r#"{"error":"server_error","access_token":"t"}"#)).unwrap_err();
    assert!(matches!(err, Error::OAuth { status: 200, .. }), "{err:?}");
    assert!(err.is_transient());
}

#[test]
fn a_captive_portal_page_with_200_is_an_invalid_response() {
    let err = fetch(response(200, &[("Content-Type", "text/html")], "<html>Log in to the hotspot</html>"))
        .unwrap_err();
    match &err {
        Error::InvalidResponse { status: 200, reason } => assert!(reason.contains("HTML"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert!(err.is_transient());
}

#[test]
fn an_empty_204_is_an_invalid_response() {
    let err = fetch(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n".to_vec()).unwrap_err();
    assert!(matches!(err, Error::InvalidResponse { status: 204, reason: "empty body" }), "{err:?}");
}

#[test]
fn a_chunked_token_response_is_read() {
    let answer = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\
                   Connection: close\r\n\r\n5\r\n{\"acc\r\n1a\r\ness_token\":\"T\",\"expires_in\r\n\
                   6\r\n\":60}\n\r\n0\r\n\r\n";
    let token = fetch(answer.to_vec()).expect("chunked token");
    assert_eq!(token.access_token().secret(), "T");
    assert_eq!(token.lifetime(), Duration::from_secs(60));
}

#[test]
fn a_close_delimited_token_response_is_read() {
    let answer = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n\
                   {\"access_token\":\"T\",\"expires_in\":60}";
    let token = fetch(answer.to_vec()).expect("token read to EOF");
    assert_eq!(token.access_token().secret(), "T");
}

#[test]
fn a_connection_closed_mid_body_is_a_transport_error() {
    let answer =
        b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\nConnection: close\r\n\r\n{\"access_token\":\"T\"";
    let err = fetch(answer.to_vec()).unwrap_err();
    assert_eq!(err.transport_kind(), Some(TransportKind::Io), "{err:?}");
    assert!(err.is_transient());
}

#[test]
fn a_connection_closed_without_an_answer_is_a_transport_error() {
    let err = fetch(Vec::new()).unwrap_err();
    assert_eq!(err.transport_kind(), Some(TransportKind::Io), "{err:?}");
}

#[test]
fn an_answer_that_is_not_http_is_a_transport_error() {
    let err = fetch(b"SSH-2.0-OpenSSH_9.6\r\n\r\n".to_vec()).unwrap_err();
    assert_eq!(err.transport_kind(), Some(TransportKind::Io), "{err:?}");
    assert!(std::error::Error::source(&err).is_some(), "the ureq error is the source");
}
