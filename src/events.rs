//! Every log event cctoken emits, in one place, so that what reaches a log
//! can be read (and audited) at a glance. Target `cctoken`, one line each.
//!
//! No event holds the client secret, a token, a request or response body:
//! only URLs without their query, durations, counts and errors, whose
//! `Display` is free of secrets by construction.

#[cfg(feature = "ureq")]
use std::time::Duration;

#[cfg(feature = "ureq")]
use crate::{error::Error, token::Token};

#[cfg_attr(not(feature = "ureq"), allow(dead_code))]
const TARGET: &str = "cctoken";

/// The token URL as logged: without its query or fragment, which a server
/// could have asked to carry something private.
#[cfg(feature = "ureq")]
fn shown(url: &str) -> &str {
    url.split(['?', '#']).next().unwrap_or(url)
}

/// A token request and its outcome, from the moment it was sent.
#[cfg(feature = "ureq")]
pub(crate) fn token_request(url: &str, took: Duration, result: &Result<Token, Error>) {
    let (url, ms) = (shown(url), took.as_millis());
    match result {
        Ok(token) => log::info!(
            target: TARGET,
            "token request to {url}: token valid for {} s, in {ms} ms",
            token.lifetime().as_secs()
        ),
        Err(error) => log::warn!(target: TARGET, "token request to {url} failed in {ms} ms: {error}"),
    }
}
