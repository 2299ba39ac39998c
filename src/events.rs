//! Every log event cctoken emits, in one place, so that what reaches a log
//! can be read (and audited) at a glance. Target `cctoken`, one line each.
//!
//! No event holds the client secret, a token, a request or response body:
//! only URLs without their query, durations, counts and errors, whose
//! `Display` is free of secrets by construction.

use std::time::Duration;

use crate::error::Error;
#[cfg(feature = "ureq")]
use crate::token::Token;

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

/// Seconds, rounded up, for a log line: "0 s" only when nothing is left.
fn secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// Why the cache asks for a new token.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Refresh {
    /// It has none yet.
    First,
    /// The cached one reached its refresh point.
    Due,
    /// The API rejected the cached one.
    Rejected,
    /// The last request failed and the gate opened again.
    Retry,
}

/// The cache is about to request a token.
pub(crate) fn refresh(why: Refresh) {
    let why = match why {
        Refresh::First => "no token yet",
        Refresh::Due => "the token reached its refresh point",
        Refresh::Rejected => "the API rejected the token",
        Refresh::Retry => "retrying after a failure",
    };
    log::debug!(target: TARGET, "requesting a new token: {why}");
}

/// A token request failed, and the cache will not send another for `wait`.
pub(crate) fn gate_shut(error: &Error, failures: u32, wait: Duration) {
    let why = match error.is_transient() {
        true => "backoff",
        false => "cooldown: retrying will not help until the configuration or credentials change",
    };
    let after =
        error.retry_after().map(|d| format!(", server's Retry-After {} s", secs(d))).unwrap_or_default();
    log::warn!(
        target: TARGET,
        "token request failed ({failures} in a row): {error}; next request in {} s ({why}{after})",
        secs(wait)
    );
}

/// The cached token is served after its refresh point, because its refresh
/// just failed.
pub(crate) fn stale(valid_for: Duration) {
    log::warn!(target: TARGET, "serving the cached token, valid for {} s more, while its refresh fails", secs(valid_for));
}

/// A call is answered with an error without a request: the gate is shut.
pub(crate) fn refused(retry_in: Duration) {
    log::debug!(target: TARGET, "no usable token and no request allowed for {} s", secs(retry_in));
}

/// The API rejected the cached token.
pub(crate) fn invalidated() {
    log::info!(target: TARGET, "the API rejected the token: it will be replaced");
}
