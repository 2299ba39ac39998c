//! The single-threaded, expiry-aware token cache and its refresh policy.

use std::time::Instant;

use crate::error::Error;
use crate::events::{self, Refresh};
use crate::policy::{Policy, Rng};
use crate::stats::Stats;
use crate::token::Token;

/// Caches one token, refreshes it ahead of expiry, and keeps away from a
/// failing token server.
///
/// Single-threaded by design: methods take `&mut self`, there are no locks
/// and no background threads, and no call ever sleeps. Time is read only from
/// cctoken's clock ([`now`](crate::now)), which counts suspend; the `*_at`
/// methods take it as an argument, so the cache runs just as well under a
/// virtual clock.
///
/// The rules (the [`Policy`] holds their numbers):
/// - **Soft refresh.** A token is served until its refresh point, drawn at
///   random within a window of its lifetime, so that devices whose tokens
///   were issued together drift apart. After that, the next call fetches.
/// - **Stale while failing.** If that fetch fails while the token has not
///   expired, the call still gets the token; [`TokenCache::last_error`]
///   tells that the refresh failed.
/// - **Failure gate.** After a failed fetch the token server is not
///   contacted again until a gate opens: exponential backoff with full
///   jitter for transient failures, a long cooldown for others (rejected
///   credentials, say), either lengthened to the server's `Retry-After` when
///   it asks for longer ([`Policy::max_retry_after`]). While the gate
///   is shut, calls answer at once with the valid token or
///   [`Error::Backoff`].
/// - **Fetch interval.** After a token arrives, no other is requested until
///   [`Policy::min_fetch_interval`] has passed since it was requested, so a
///   server handing out tokens that expire at once cannot make every call
///   fetch. Meanwhile, calls get the token while it is valid,
///   [`Error::RateLimited`] otherwise.
///
/// ```
/// use std::time::{Duration, Instant};
/// use cctoken::{AccessToken, Policy, Token, TokenCache};
///
/// let start = Instant::now();
/// let mut fetches = 0;
/// let fetch = || {
///     fetches += 1;
///     Ok(Token::new(AccessToken::new(format!("t{fetches}")), start, Duration::from_secs(3600)))
/// };
/// let mut cache = TokenCache::with_policy(fetch, Policy::default().seed(1));
/// assert_eq!(cache.token_at(start)?.access_token().secret(), "t1");
/// assert_eq!(cache.token_at(start + Duration::from_secs(600))?.access_token().secret(), "t1");
/// # Ok::<(), cctoken::Error>(())
/// ```
#[derive(Debug)]
pub struct TokenCache<F: Fetch> {
    fetcher: F,
    policy: Policy,
    rng: Rng,
    cached: Option<Cached>,
    gate: Option<Gate>,
    failures: u32,
    /// Whether the next token was fetched at a moment many devices may share
    /// (start, after a failure, after an invalidation): it gets the wide
    /// [spread window](Policy::spread_window).
    spread_next: bool,
    stats: Stats,
}

#[derive(Debug)]
struct Cached {
    token: Token,
    /// Never before the fetch interval ends; may be past the token's expiry.
    refresh_at: Instant,
    /// The API rejected it: never served past its refresh point.
    rejected: bool,
}

#[derive(Debug)]
struct Gate {
    until: Instant,
    error: Error,
}

/// What [`TokenCache::decide`] would do at a given instant, without doing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Decision {
    /// Serve the cached token: it is before its refresh point and has not
    /// expired.
    Fresh,
    /// Ask the token server for a new token.
    Fetch,
    /// No token may be requested until this instant: the failure gate is
    /// shut, or the last token was requested less than
    /// [`Policy::min_fetch_interval`] ago. Calls get the cached token while
    /// it is valid, [`Error::Backoff`] (gate shut) or [`Error::RateLimited`]
    /// otherwise.
    Wait(Instant),
}

impl<F: Fetch> TokenCache<F> {
    /// An empty cache that fetches through `fetcher`, with the default
    /// [`Policy`].
    pub fn new(fetcher: F) -> Self {
        Self::with_policy(fetcher, Policy::default())
    }

    /// An empty cache with the given policy.
    pub fn with_policy(fetcher: F, policy: Policy) -> Self {
        let rng = Rng::new(policy.seed);
        let stats = Stats::default();
        TokenCache { fetcher, policy, rng, cached: None, gate: None, failures: 0, spread_next: true, stats }
    }

    /// A token to use now: the cached one, or a new one (see the rules above).
    pub fn token(&mut self) -> Result<&Token, Error> {
        self.get(crate::now(), crate::now)
    }

    /// [`TokenCache::token`] at an instant of cctoken's clock
    /// ([`now`](crate::now)) or of a virtual clock.
    pub fn token_at(&mut self, now: Instant) -> Result<&Token, Error> {
        self.get(now, || now)
    }

    /// What a call at `now` would do.
    pub fn decide(&self, now: Instant) -> Decision {
        if self.cached_at(now).is_some() {
            return Decision::Fresh;
        }
        match self.next_fetch_at() {
            Some(at) if now < at => Decision::Wait(at),
            _ => Decision::Fetch,
        }
    }

    /// The earliest instant another token may be requested: when the failure
    /// gate opens, and [`Policy::min_fetch_interval`] after the cached token
    /// was requested, whichever is later.
    fn next_fetch_at(&self) -> Option<Instant> {
        let gate = self.gate.as_ref().map(|g| g.until);
        let interval = self.cached.as_ref().map(|c| self.interval_end(&c.token));
        gate.max(interval)
    }

    fn interval_end(&self, token: &Token) -> Instant {
        let issued_at = token.issued_at();
        issued_at.checked_add(self.policy.min_fetch_interval).unwrap_or(issued_at)
    }

    /// `clock` is read after a fetch, which may take up to its deadline, so
    /// that the gate opens a full delay after the failure was known, and so
    /// that a token which expired while the fetch was under way is not served.
    fn get(&mut self, now: Instant, clock: impl Fn() -> Instant) -> Result<&Token, Error> {
        match self.decide(now) {
            Decision::Fresh => {}
            Decision::Wait(until) => {
                if self.usable_stale(now).is_none() {
                    self.stats.refused += 1;
                    events::refused(until - now);
                    return Err(match &self.gate {
                        Some(gate) if now < gate.until => {
                            Error::Backoff { retry_at: until, last: Box::new(gate.error.clone()) }
                        }
                        _ => Error::RateLimited { retry_at: until },
                    });
                }
                self.stats.stale_serves += 1;
            }
            Decision::Fetch => {
                events::refresh(self.refresh_reason());
                self.stats.fetches += 1;
                match self.fetcher.fetch() {
                    Ok(token) => {
                        self.stats.last_success = Some(clock());
                        self.store(token);
                    }
                    Err(error) => {
                        let failed_at = clock();
                        self.stats.failures += 1;
                        self.stats.last_failure = Some(failed_at);
                        self.fail(error.clone(), failed_at);
                        match self.usable_stale(failed_at) {
                            None => return Err(error),
                            Some(token) => {
                                events::stale(token.expires_at() - failed_at);
                                self.stats.stale_serves += 1;
                            }
                        }
                    }
                }
            }
        }
        // Every path above has returned or left a token cached.
        self.cached.as_ref().map(|c| &c.token).ok_or_else(|| Error::config("no token cached"))
    }

    fn refresh_reason(&self) -> Refresh {
        match &self.cached {
            _ if self.gate.is_some() => Refresh::Retry,
            None => Refresh::First,
            Some(c) if c.rejected => Refresh::Rejected,
            Some(_) => Refresh::Due,
        }
    }

    fn usable_stale(&self, now: Instant) -> Option<&Token> {
        let c = self.cached.as_ref()?;
        (!c.rejected && !c.token.is_expired_at(now)).then_some(&c.token)
    }

    fn store(&mut self, token: Token) {
        let spread = self.spread_next;
        let refresh_at =
            self.policy.refresh_point(&mut self.rng, token.issued_at(), token.lifetime(), spread);
        // A valid token is served until another may be requested.
        let refresh_at = refresh_at.max(self.interval_end(&token));
        self.cached = Some(Cached { token, refresh_at, rejected: false });
        self.gate = None;
        self.failures = 0;
        self.spread_next = false;
    }

    fn fail(&mut self, error: Error, at: Instant) {
        self.failures = self.failures.saturating_add(1);
        let valid_for = self.usable_stale(at).map(|t| t.expires_at() - at);
        let delay = self.policy.delay(&mut self.rng, &error, self.failures, valid_for);
        events::gate_shut(&error, self.failures, delay);
        self.gate = Some(Gate { until: at.checked_add(delay).unwrap_or(at), error });
        self.spread_next = true;
    }

    /// Marks the cached token as rejected by the API (call it on a 401), so
    /// that a new one is fetched — at once, unless the token is younger than
    /// [`Policy::min_token_age`], in which case it is replaced when it
    /// reaches that age (or later, when [`Policy::min_fetch_interval`] is
    /// longer). The rate limit keeps an API that rejects every token
    /// from making the cache loop on the token endpoint. A rejected token is
    /// never served stale.
    pub fn invalidate(&mut self) {
        if let Some(c) = &mut self.cached {
            let earliest = c.token.issued_at().checked_add(self.policy.min_token_age).unwrap_or(c.refresh_at);
            c.refresh_at = c.refresh_at.min(earliest);
            c.rejected = true;
            self.spread_next = true;
            self.stats.invalidations += 1;
            events::invalidated();
        }
    }

    /// Runs an API `request` with the `Authorization` header value
    /// (`Bearer …`); if it answers 401, invalidates the token and runs it
    /// once more with a new one. The retry is skipped (the 401 answer is
    /// returned) when [`TokenCache::invalidate`]'s rate limit or the failure
    /// gate would not allow a new token now.
    ///
    /// With any HTTP stack, return the API's status (or anything that
    /// implements [`Unauthorized`]); with the `ureq` feature, a ureq result
    /// works as it is (see the crate docs).
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use cctoken::{AccessToken, Policy, Token, TokenCache};
    ///
    /// let mut issued = 0;
    /// let fetch = || {
    ///     issued += 1;
    ///     Ok(Token::new(AccessToken::new(format!("t{issued}")), Instant::now(), Duration::from_secs(3600)))
    /// };
    /// // Without the rate limits on token requests, for the example.
    /// let policy = Policy::default().min_token_age(Duration::ZERO).min_fetch_interval(Duration::ZERO);
    /// let mut cache = TokenCache::with_policy(fetch, policy);
    /// // An API that rejects the first token it sees.
    /// let mut seen = Vec::new();
    /// let status = cache.call(|bearer| {
    ///     seen.push(bearer.to_owned());
    ///     if bearer == "Bearer t1" { 401 } else { 200 }
    /// })?;
    /// assert_eq!((status, seen), (200, vec!["Bearer t1".to_owned(), "Bearer t2".to_owned()]));
    /// # Ok::<(), cctoken::Error>(())
    /// ```
    pub fn call<R: Unauthorized>(&mut self, request: impl FnMut(&str) -> R) -> Result<R, Error> {
        self.call_with(crate::now, request)
    }

    /// [`TokenCache::call`] at an instant of a virtual clock.
    pub fn call_at<R: Unauthorized>(
        &mut self,
        now: Instant,
        request: impl FnMut(&str) -> R,
    ) -> Result<R, Error> {
        self.call_with(|| now, request)
    }

    fn call_with<R: Unauthorized>(
        &mut self,
        clock: impl Fn() -> Instant,
        mut request: impl FnMut(&str) -> R,
    ) -> Result<R, Error> {
        let first = request(&self.get(clock(), &clock)?.authorization());
        if !first.is_unauthorized() {
            return Ok(first);
        }
        self.invalidate();
        if self.decide(clock()) != Decision::Fetch {
            return Ok(first);
        }
        let token = self.get(clock(), &clock)?;
        Ok(request(&token.authorization()))
    }

    /// The cached token if, at `now`, it is before its refresh point and has
    /// not expired, without fetching.
    pub fn cached_at(&self, now: Instant) -> Option<&Token> {
        // The refresh point may be past the expiry of a token shorter than
        // the fetch interval.
        self.cached.as_ref().filter(|c| now < c.refresh_at && !c.token.is_expired_at(now)).map(|c| &c.token)
    }

    /// When the cached token will be refreshed, if there is one.
    pub fn refresh_at(&self) -> Option<Instant> {
        self.cached.as_ref().map(|c| c.refresh_at)
    }

    /// The error of the last fetch, if it failed: set while the failure
    /// gate is shut or until the next fetch succeeds. A daemon can log it
    /// while it carries on with a still valid token.
    pub fn last_error(&self) -> Option<&Error> {
        self.gate.as_ref().map(|g| &g.error)
    }

    /// What this cache has done: requests, failures, stale serves, … (see
    /// [`Stats`]).
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// How many fetches in a row have failed.
    pub fn consecutive_failures(&self) -> u32 {
        self.failures
    }

    /// The fetcher.
    pub fn fetcher(&self) -> &F {
        &self.fetcher
    }
}

/// Something that can fetch a fresh token: a [`Client`](crate::Client), or any other
/// transport, fake or simulation that a [`TokenCache`](crate::TokenCache)
/// should drive. Closures returning `Result<Token, Error>` qualify.
pub trait Fetch {
    /// Asks the token endpoint for a new token.
    fn fetch(&mut self) -> Result<Token, Error>;
}

impl<F: FnMut() -> Result<Token, Error>> Fetch for F {
    fn fetch(&mut self) -> Result<Token, Error> {
        self()
    }
}

/// How [`TokenCache::call`] recognises that the API rejected the token.
pub trait Unauthorized {
    /// Whether this is the API's HTTP 401.
    fn is_unauthorized(&self) -> bool;
}

impl Unauthorized for u16 {
    fn is_unauthorized(&self) -> bool {
        *self == 401
    }
}

/// A ureq response (with the `ureq` feature).
#[cfg(feature = "ureq")]
impl<B> Unauthorized for ureq::http::Response<B> {
    fn is_unauthorized(&self) -> bool {
        self.status() == 401
    }
}

/// A ureq result (with the `ureq` feature): a 401 either as a response or,
/// with ureq's default `http_status_as_error`, as `Error::StatusCode(401)`.
#[cfg(feature = "ureq")]
impl<B> Unauthorized for Result<ureq::http::Response<B>, ureq::Error> {
    fn is_unauthorized(&self) -> bool {
        match self {
            Ok(response) => response.is_unauthorized(),
            Err(e) => matches!(e, ureq::Error::StatusCode(401)),
        }
    }
}

#[cfg(test)]
mod tests;
