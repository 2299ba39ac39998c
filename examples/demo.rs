//! A tour of cctoken that needs no network and no credentials.
//!
//! ```text
//! cargo run --example demo
//! ```
//!
//! It starts a small token server on 127.0.0.1 inside this process, then
//! fetches tokens from it in each of the three credential styles, shows the
//! cache at work, and shows what rejected credentials look like.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cctoken::{Client, Config, Error, Token, TokenCache};

#[path = "../tests/support/mod.rs"]
mod support;
use support::{Recorded, Server, response, token_response};

const CLIENT_ID: &str = "demo-client";
const CLIENT_SECRET: &str = "demo-secret";
const IDENTITY_GUID: &str = "8d7a0d8e-41a6-4c1c-9d8e-3f2b1a7c6e5d";
/// The demo server issues 2-second tokens for this scope, 1-hour ones otherwise.
const SHORT_LIVED_SCOPE: &str = "short-lived";

fn main() -> Result<(), Error> {
    let server = Server::http(demo_token_server);
    let url = |path| server.url(path);
    println!("demo token server on {}, client {CLIENT_ID}, secret {CLIENT_SECRET}", url(""));

    // 1. One fetch in each style. The constructor picks how the id and secret are sent.
    //    (The demo prints the start of each token to tell them apart; see `shorten`.)
    let nfleet = Config::nfleet_at(&url(""), IDENTITY_GUID, CLIENT_ID, CLIENT_SECRET);
    let basic = Config::client_secret_basic(&url("/oauth/v2/token"), CLIENT_ID, CLIENT_SECRET);
    let post = Config::client_secret_post(&url("/oauth2/token"), CLIENT_ID, CLIENT_SECRET);
    let styles = [("NFleet", nfleet), ("client_secret_basic", basic), ("client_secret_post", post)];
    for (style, config) in styles {
        let token = Client::new(config)?.fetch()?;
        let label = format!("fetch, {style}:");
        println!("{label:<27} {} valid {} s", shorten(&token), token.lifetime().as_secs());
    }

    // 2. A cache hit: the second token() is served from memory; the server is not asked.
    let config = Config::client_secret_basic(&url("/oauth/v2/token"), CLIENT_ID, CLIENT_SECRET);
    let mut cache = TokenCache::new(Client::new(config)?);
    let token = shorten(cache.token()?);
    println!("cache, token():             {token} fetched   (server requests: {})", requests(&server));
    let token = shorten(cache.token()?);
    println!("cache, token() again:       {token} cached    (server requests: {})", requests(&server));

    // 3. A refresh: the demo server issues 2-second tokens for this scope. token_at()
    //    asks the cache "what if it were 11 s later?", so the demo need not sleep.
    //    (The cache requests at most one token per 10 s, however short-lived.)
    let config = Config::client_secret_basic(&url("/oauth/v2/token"), CLIENT_ID, CLIENT_SECRET)
        .scope(SHORT_LIVED_SCOPE);
    let mut cache = TokenCache::new(Client::new(config)?);
    let token = shorten(cache.token()?);
    println!("cache, 2 s token:           {token} fetched   (server requests: {})", requests(&server));
    let token = shorten(cache.token_at(Instant::now() + Duration::from_secs(11))?);
    println!("cache, 11 s later:          {token} refreshed (server requests: {})", requests(&server));

    // 4. A wrong secret is a typed error: retrying will not help, the configuration must change.
    let config = Config::client_secret_post(&url("/oauth2/token"), CLIENT_ID, "wrong-secret");
    match Client::new(config)?.fetch() {
        Err(e @ Error::CredentialsRejected { .. }) => println!("wrong secret:               {e}"),
        other => panic!("the demo server rejects a wrong secret, got {other:?}"),
    }
    Ok(())
}

fn requests(server: &Server) -> usize {
    server.requests().len()
}

/// The first 8 characters of the token and `…`, enough to tell tokens apart.
///
/// Only a demo prints tokens, even shortened: a real program never writes a
/// token (or the secret) to a terminal or a log.
fn shorten(token: &Token) -> String {
    let start: String = token.access_token().secret().chars().take(8).collect();
    format!("{start}…")
}

/// The demo token server: checks the credentials the way each style sends
/// them, answers 401 `invalid_client` when they are wrong, and issues a new
/// opaque token otherwise.
fn demo_token_server(request: &Recorded) -> Vec<u8> {
    // base64("demo-client:demo-secret"). Basic and raw Basic send the same:
    // nothing in the id or secret changes under form-urlencoding.
    let basic = || request.header("authorization") == Some("Basic ZGVtby1jbGllbnQ6ZGVtby1zZWNyZXQ=");
    let posted = || {
        form_value(&request.body, "client_id") == Some(CLIENT_ID)
            && form_value(&request.body, "client_secret") == Some(CLIENT_SECRET)
    };
    let authorized = match request.path.as_str() {
        "/oauth/v2/token" => basic(),
        "/oauth2/token" => posted(),
        path if path == format!("/{IDENTITY_GUID}/token") => basic(),
        _ => return response(404, &[], ""),
    };
    if !authorized {
        return response(401, &[("Content-Type", "application/json")], r#"{"error":"invalid_client"}"#);
    }
    let expires_in = if form_value(&request.body, "scope") == Some(SHORT_LIVED_SCOPE) { 2 } else { 3600 };
    token_response(&new_token(), expires_in)
}

/// A new opaque token: 32 hex digits, different every time.
fn new_token() -> String {
    static ISSUED: AtomicU64 = AtomicU64::new(0);
    let n = ISSUED.fetch_add(1, Ordering::Relaxed) + 1;
    let mix = |x: u64| x.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(29) ^ 0x5851_f42d_4c95_7f2d;
    format!("{:016x}{:016x}", mix(n), mix(!n))
}

/// The raw value of `name` in a form body. The demo's values need no
/// form-decoding: they are letters, digits and `-`.
fn form_value<'a>(body: &'a str, name: &str) -> Option<&'a str> {
    body.split('&').find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
}
