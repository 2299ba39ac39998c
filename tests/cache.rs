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

/// A server that issues `tok-1`, then answers `failure`, then issues `tok-2`
/// to every later request, each token for an hour.
fn failing_once(failure: Vec<u8>) -> Server {
    let calls = AtomicUsize::new(0);
    Server::http(move |_| match calls.fetch_add(1, Ordering::SeqCst) {
        0 => token_response("tok-1", 3600),
        1 => failure.clone(),
        _ => token_response("tok-2", 3600),
    })
}

fn cache(server: &Server) -> TokenCache<Client> {
    // Every event of this suite is checked for the secret and the tokens.
    support::events::install(&["secret", "c2VjcmV0", "tok-"]);
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
    let server = failing_once(response(500, &[("Content-Type", "text/html")], "<html>down</html>"));
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

/// The events a daemon logs, and the counters it reads, for a first token, a
/// failed refresh served stale, a shut gate and an API 401.
#[test]
fn events_and_stats_tell_what_the_cache_did() {
    let server = failing_once(response(503, &[("Retry-After", "600")], ""));
    let mut cache = cache(&server);
    let url = server.url("/token");
    let start = Instant::now();
    assert_eq!(secret_at(&mut cache, start), "tok-1");
    let issued = cache.token_at(start).expect("cached").issued_at();
    // Past any refresh point (at most 85 % of the hour: 3,060 s), before expiry: the refresh
    // fails, the token is served.
    let late = issued + Duration::from_secs(3100);
    assert_eq!(secret_at(&mut cache, late), "tok-1");
    assert_eq!(secret_at(&mut cache, late + Duration::from_secs(1)), "tok-1", "gate shut: served stale");
    cache.invalidate();
    let after_expiry = issued + Duration::from_secs(3600);
    assert!(matches!(cache.token_at(after_expiry), Err(Error::Backoff { .. })));

    let events: Vec<String> = support::events::of_this_thread().iter().map(|e| without_millis(e)).collect();
    let status = "token endpoint returned unexpected HTTP status 503 (retry after 600 s)";
    let wanted = [
        "debug: requesting a new token: no token yet".to_owned(),
        format!("info: token request to {url}: token valid for 3600 s, in N ms"),
        "debug: requesting a new token: the token reached its refresh point".to_owned(),
        format!("warn: token request to {url} failed in N ms: {status}"),
        format!(
            "warn: token request failed (1 in a row): {status}; next request in 600 s (backoff, server's Retry-After 600 s)"
        ),
        "warn: serving the cached token, valid for 500 s more, while its refresh fails".to_owned(),
        "info: the API rejected the token: it will be replaced".to_owned(),
    ];
    // The jitter on top of the Retry-After is random: the wait is pinned apart.
    let mut events = events;
    let wait = events.get_mut(4).and_then(|e| {
        let (head, rest) = e.split_once("next request in ")?;
        let (secs, tail) = rest.split_once(" s (")?;
        let secs: u64 = secs.parse().ok()?;
        *e = format!("{head}next request in 600 s ({tail}");
        Some(secs)
    });
    assert!(wait.is_some_and(|s| (600..=750).contains(&s)), "{wait:?}: Retry-After plus up to a quarter");
    assert_eq!(events[..wanted.len()], wanted[..], "{events:#?}");
    assert_eq!(events.len(), wanted.len() + 1, "{events:#?}");
    assert!(
        events[wanted.len()].starts_with("debug: no usable token and no request allowed for "),
        "{events:#?}"
    );

    let stats = cache.stats();
    assert_eq!(
        (stats.fetches(), stats.failures(), stats.stale_serves(), stats.refused(), stats.invalidations()),
        (2, 1, 2, 1, 1)
    );
    assert!(stats.last_success().is_some_and(|t| t < late) && stats.last_failure() == Some(late));
}

/// `… in 12 ms` → `… in N ms`: durations vary from run to run.
fn without_millis(event: &str) -> String {
    let mut out = String::new();
    let mut rest = event;
    while let Some(at) = rest.find(" in ") {
        let (head, tail) = rest.split_at(at + 4);
        out.push_str(head);
        let digits = tail.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 && tail[digits..].starts_with(" ms") {
            out.push('N');
            rest = &tail[digits..];
        } else {
            rest = tail;
        }
    }
    out + rest
}
