//! Counters of what a token cache did, for a daemon's health endpoint.

use std::time::Instant;

/// What a [`TokenCache`](crate::TokenCache) has done since it was made:
/// read it with [`TokenCache::stats`](crate::TokenCache::stats) to report
/// health without parsing logs. Cache hits are not counted (they cost
/// nothing and would make a hit slower).
///
/// ```
/// use std::time::{Duration, Instant};
/// use cctoken::{AccessToken, Token, TokenCache};
///
/// let now = Instant::now();
/// let mut cache = TokenCache::new(|| Ok(Token::new(AccessToken::new("t"), now, Duration::from_secs(60))));
/// cache.token_at(now)?;
/// let stats = cache.stats();
/// assert_eq!((stats.fetches(), stats.failures(), stats.last_success()), (1, 0, Some(now)));
/// # Ok::<(), cctoken::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub(crate) fetches: u64,
    pub(crate) failures: u64,
    pub(crate) stale_serves: u64,
    pub(crate) refused: u64,
    pub(crate) invalidations: u64,
    pub(crate) state_errors: u64,
    pub(crate) last_success: Option<Instant>,
    pub(crate) last_failure: Option<Instant>,
}

impl Stats {
    /// Token requests made, successful or not.
    pub fn fetches(&self) -> u64 {
        self.fetches
    }

    /// Token requests that failed.
    pub fn failures(&self) -> u64 {
        self.failures
    }

    /// Calls that got the cached token after its refresh point, because the
    /// refresh failed, the failure gate was shut, or another process sharing
    /// the state file (feature `state-file`) was refreshing it.
    pub fn stale_serves(&self) -> u64 {
        self.stale_serves
    }

    /// Calls answered with [`Error::Backoff`](crate::Error::Backoff) or
    /// [`Error::RateLimited`](crate::Error::RateLimited), without a request.
    pub fn refused(&self) -> u64 {
        self.refused
    }

    /// Tokens marked as rejected by the API
    /// ([`TokenCache::invalidate`](crate::TokenCache::invalidate)).
    pub fn invalidations(&self) -> u64 {
        self.invalidations
    }

    /// Problems with the state file (`StateFile`, feature `state-file`): a
    /// file ignored as bad (a symbolic link, group-readable, damaged, …; not
    /// a missing file, nor one of another boot or configuration), a save or
    /// a lock that failed. Each is also an event (warn); the cache carried
    /// on without the file. Always 0 without the feature; it is there in
    /// every build, so that a health report need not change with it.
    ///
    /// ```
    /// let cache = cctoken::TokenCache::new(|| Err(cctoken::Error::from(cctoken::TransportKind::Io)));
    /// assert_eq!(cache.stats().state_errors(), 0, "no state file, no problem with one");
    /// ```
    pub fn state_errors(&self) -> u64 {
        self.state_errors
    }

    /// When the last token request succeeded (its answer was parsed).
    pub fn last_success(&self) -> Option<Instant> {
        self.last_success
    }

    /// When the last token request failed.
    pub fn last_failure(&self) -> Option<Instant> {
        self.last_failure
    }
}
