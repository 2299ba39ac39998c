//! The token cache driving a real client against a loopback server: how many
//! requests reach the server. Time moves through `token_at`, never by sleeping.

#![cfg(feature = "ureq")]

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cctoken::{Client, Config, Error, TokenCache};
use support::{Server, response, token_response};

/// A server that issues `tok-1`, `tok-2`, … with this lifetime.
fn issuing(expires_in: u64) -> Server {
    let issued = AtomicUsize::new(0);
    Server::http(move |_| {
        let n = issued.fetch_add(1, Ordering::SeqCst) + 1;
        token_response(&format!("tok-{n}"), expires_in)
    })
}

fn cache(server: &Server) -> TokenCache<Client> {
    let config = Config::client_secret_basic(&server.url("/token"), "id", "secret");
    TokenCache::new(Client::new(config).expect("valid config"))
}

fn secret_at(cache: &mut TokenCache<Client>, now: Instant) -> String {
    cache.token_at(now).expect("token").access_token().secret().to_owned()
}

#[test]
fn two_calls_make_one_request() {
    let server = issuing(3600);
    let mut cache = cache(&server);
    let first = cache.token().expect("first").clone();
    let second = cache.token().expect("second").clone();
    assert_eq!(first.access_token().secret(), "tok-1");
    assert_eq!(first, second, "the same token, not an equal new one");
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn a_long_lived_token_is_served_until_it_nears_expiry() {
    let server = issuing(3600);
    let mut cache = cache(&server);
    let start = Instant::now();
    assert_eq!(secret_at(&mut cache, start), "tok-1");
    for minutes in [1, 5, 10] {
        assert_eq!(secret_at(&mut cache, start + Duration::from_secs(60 * minutes)), "tok-1");
    }
    assert_eq!(server.requests().len(), 1);
    // An hour on, the token has expired: whatever the refresh rule, it is replaced.
    // (tok-2 counts its lifetime from the real clock, so it is checked at
    // `start`-relative times it is fresh for, not an hour on.)
    assert_eq!(secret_at(&mut cache, start + Duration::from_secs(3600)), "tok-2");
    assert_eq!(server.requests().len(), 2);
    assert_eq!(secret_at(&mut cache, start + Duration::from_secs(60)), "tok-2");
    assert_eq!(server.requests().len(), 2);
}

#[test]
fn invalidate_makes_the_next_call_fetch() {
    let server = issuing(3600);
    let mut cache = cache(&server);
    let start = Instant::now();
    assert_eq!(secret_at(&mut cache, start), "tok-1");
    let later = start + Duration::from_secs(60);
    assert_eq!(secret_at(&mut cache, later), "tok-1", "still fresh before invalidate");
    cache.invalidate(); // the API answered 401 to tok-1
    assert_eq!(secret_at(&mut cache, later), "tok-2");
    assert_eq!(secret_at(&mut cache, later), "tok-2", "the new token is cached");
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].header("authorization"), requests[1].header("authorization"));
    assert_eq!(requests[0].body, requests[1].body);
}

#[test]
fn a_one_second_token_is_refetched_once_it_is_due() {
    let server = issuing(1);
    let mut cache = cache(&server);
    let start = Instant::now();
    let token = cache.token_at(start).expect("token").clone();
    assert_eq!(token.lifetime(), Duration::from_secs(1));
    // Expired, but the next request waits until 10 s after the first was sent
    // (`Policy::min_fetch_interval`).
    let due = token.issued_at() + Duration::from_secs(10);
    match cache.token_at(token.expires_at()) {
        Err(Error::RateLimited { retry_at }) => assert_eq!(retry_at, due),
        other => panic!("{other:?}"),
    }
    assert_eq!(server.requests().len(), 1);
    assert_eq!(secret_at(&mut cache, due), "tok-2");
    assert_eq!(server.requests().len(), 2);
}

#[test]
fn a_zero_lifetime_token_is_never_reused() {
    let server = issuing(0);
    let mut cache = cache(&server);
    let first = cache.token().expect("first").clone();
    assert_eq!(first.access_token().secret(), "tok-1");
    // Not served again; no new one is requested until 10 s after the first
    // (`Policy::min_fetch_interval`).
    let due = first.issued_at() + Duration::from_secs(10);
    match cache.token_at(first.issued_at()) {
        Err(Error::RateLimited { retry_at }) => assert_eq!(retry_at, due),
        other => panic!("{other:?}"),
    }
    assert_eq!(server.requests().len(), 1);
    assert_eq!(secret_at(&mut cache, due), "tok-2");
    assert_eq!(server.requests().len(), 2);
}

#[test]
fn a_failed_refresh_is_reported_and_a_later_call_fetches_again() {
    // tok-1, then a 500, then tok-2.
    let calls = AtomicUsize::new(0);
    let server = Server::http(move |_| match calls.fetch_add(1, Ordering::SeqCst) {
        0 => token_response("tok-1", 3600),
        1 => response(500, &[("Content-Type", "text/html")], "<html>down</html>"),
        _ => token_response("tok-2", 3600),
    });
    let mut cache = cache(&server);
    let start = Instant::now();
    assert_eq!(secret_at(&mut cache, start), "tok-1");
    let expired = start + Duration::from_secs(3601);
    let err = cache.token_at(expired).unwrap_err();
    assert!(matches!(err, Error::HttpStatus { status: 500, .. }), "{err:?}");
    assert_eq!(server.requests().len(), 2);
    assert_eq!(secret_at(&mut cache, expired + Duration::from_secs(3600)), "tok-2");
    assert_eq!(server.requests().len(), 3);
}
