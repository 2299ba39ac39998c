//! The single-threaded, expiry-aware token cache and its refresh policy.

use std::time::Instant;

use crate::error::Error;
use crate::events::{self, Refresh};
use crate::policy::{Policy, Rng};
#[cfg(feature = "state-file")]
use crate::state::{Lock, Saved, StateFile};
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
/// With a state file (`TokenCache::with_state_file`, cargo feature
/// `state-file`), the token and the failure gate survive a restart, and
/// processes sharing the file request a token one at a time.
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
    /// Where the state is kept across restarts, if anywhere.
    #[cfg(feature = "state-file")]
    state: Option<StateFile>,
}

#[derive(Debug)]
pub(crate) struct Cached {
    pub(crate) token: Token,
    /// Never before the fetch interval ends; may be past the token's expiry.
    pub(crate) refresh_at: Instant,
    /// The API rejected it: never served past its refresh point.
    pub(crate) rejected: bool,
}

#[derive(Debug)]
pub(crate) struct Gate {
    /// When the failure that shut it was known: the state file's merge reads it.
    #[cfg_attr(not(feature = "state-file"), allow(dead_code))]
    pub(crate) failed_at: Instant,
    pub(crate) until: Instant,
    pub(crate) error: Error,
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
        TokenCache {
            fetcher,
            policy,
            rng,
            cached: None,
            gate: None,
            failures: 0,
            spread_next: true,
            stats,
            #[cfg(feature = "state-file")]
            state: None,
        }
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
        // A hit first, and on its own: no lock, no file, nothing else to decide.
        if self.cached_at(now).is_some() {
            return self.cached_token();
        }
        let decision = self.decide(now);
        // The lock of the state file, if any, is held until the new token or
        // the failure is saved.
        #[cfg(feature = "state-file")]
        let Some((decision, _lock)) = self.lock_for_fetch(decision, now) else {
            // Another process is requesting a token: the valid one cached is served meanwhile.
            return self.cached_token();
        };
        match decision {
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
        self.cached_token()
    }

    /// The cached token, which the callers know is there.
    fn cached_token(&self) -> Result<&Token, Error> {
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
        self.save();
    }

    fn fail(&mut self, error: Error, at: Instant) {
        self.failures = self.failures.saturating_add(1);
        let valid_for = self.usable_stale(at).map(|t| t.expires_at() - at);
        let delay = self.policy.delay(&mut self.rng, &error, self.failures, valid_for);
        events::gate_shut(&error, self.failures, delay);
        self.gate = Some(Gate { failed_at: at, until: at.checked_add(delay).unwrap_or(at), error });
        self.spread_next = true;
        self.save();
    }

    /// Without the `state-file` feature there is no state file to write.
    #[cfg(not(feature = "state-file"))]
    fn save(&mut self) {}

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
            self.save();
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

/// The state file: cargo feature `state-file`.
#[cfg(feature = "state-file")]
impl<F: Fetch> TokenCache<F> {
    /// Keeps this cache's state in `state` from now on: reads it at once
    /// (a token and a failure gate saved by an earlier run, or by another
    /// process sharing the file), and writes it after every change (a new
    /// token, a failure, an invalidation). Calls that the cached token
    /// answers touch no file.
    ///
    /// Before requesting a token, the cache takes the lock next to the file
    /// without waiting and reads the file again: another process may have
    /// just got a token. If another process holds the lock (it is requesting
    /// one), a still valid token is served meanwhile; without one, this
    /// process requests one too. A state file that cannot be read or written
    /// is an event (warn), counted in [`Stats::state_errors`], and the cache
    /// carries on without it: it never fails a call.
    ///
    /// The times the file holds are on cctoken's clock: use this with
    /// [`TokenCache::token`] and [`TokenCache::call`], or instants from
    /// [`now`](crate::now); with a virtual clock, attach the file with
    /// [`TokenCache::with_state_file_at`]. See [`StateFile`] for what the
    /// file holds, and where to put it. Needs the cargo feature
    /// `state-file`.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use cctoken::{AccessToken, Config, StateFile, Token, TokenCache};
    ///
    /// // Any fetcher: the state file's key comes from the configuration.
    /// let config = Config::client_secret_basic("https://auth.example.com/token", "id", "secret");
    /// let fetch = || Ok(Token::new(AccessToken::new("t"), cctoken::now(), Duration::from_secs(3600)));
    /// let mut cache = TokenCache::new(fetch).with_state_file(StateFile::new("/run/my-agent/token.state", &config));
    /// // After a restart, this serves the saved token without a request.
    /// let bearer = cache.token()?.authorization();
    /// # Ok::<(), cctoken::Error>(())
    /// ```
    pub fn with_state_file(self, state: StateFile) -> Self {
        self.with_state_file_at(state, crate::now())
    }

    /// [`TokenCache::with_state_file`] for a cache driven by a virtual clock
    /// ([`TokenCache::token_at`], [`TokenCache::call_at`]) that runs ahead of
    /// cctoken's, such as a simulation's: `now` is that clock's instant. The
    /// file's times are stored on the boot clock, offset from cctoken's, so
    /// such instants round-trip; what the file holds is checked against `now`
    /// (a token issued later is implausible, and ignored) and, before each
    /// token request, against the instant given to `token_at`. Before a save,
    /// the file is merged only if plausible on cctoken's own clock: on a
    /// virtual clock, give each file one process at a time.
    ///
    /// ```no_run
    /// use std::time::{Duration, Instant};
    /// use cctoken::{AccessToken, Config, StateFile, Token, TokenCache};
    ///
    /// let config = Config::client_secret_basic("https://token.sim.invalid/token", "device-1", "secret");
    /// let later = Instant::now() + Duration::from_secs(6 * 3600);
    /// let fetch = || Ok(Token::new(AccessToken::new("t"), later, Duration::from_secs(3600)));
    /// let state = StateFile::new("/tmp/sim/device-1.state", &config);
    /// let mut cache = TokenCache::new(fetch).with_state_file_at(state, later);
    /// let bearer = cache.token_at(later)?.authorization();
    /// # Ok::<(), cctoken::Error>(())
    /// ```
    pub fn with_state_file_at(mut self, state: StateFile, now: Instant) -> Self {
        self.state = Some(state);
        self.reload(now);
        self
    }

    /// The state file, if one is attached.
    ///
    /// ```
    /// let config = cctoken::Config::client_secret_basic("https://auth.example.com/token", "id", "secret");
    /// let state = cctoken::StateFile::new("/run/my-agent/token.state", &config);
    /// let fetch = || Err(cctoken::Error::from(cctoken::TransportKind::Connect));
    /// // Attaching reads the file; a missing one is a first start, nothing to tell.
    /// let cache = cctoken::TokenCache::new(fetch).with_state_file(state);
    /// let path = cache.state_file().map(|s| s.path().to_owned());
    /// assert_eq!(path, Some("/run/my-agent/token.state".into()));
    /// ```
    pub fn state_file(&self) -> Option<&StateFile> {
        self.state.as_ref()
    }

    /// Before a fetch, with a state file: takes its lock and reads it again
    /// (see `lock_and_reload`), which may make the fetch
    /// needless or not yet allowed. The decision to follow, and the lock to
    /// hold until its outcome is saved; `None` when another process holds the
    /// lock and the cached token is still valid: it is served meanwhile.
    fn lock_for_fetch(&mut self, decision: Decision, now: Instant) -> Option<(Decision, Option<Lock>)> {
        if decision != Decision::Fetch || self.state.is_none() {
            return Some((decision, None));
        }
        let lock = self.lock_and_reload(now);
        let decision = self.decide(now);
        if matches!(lock, Lock::Busy)
            && decision == Decision::Fetch
            && let Some(valid_for) = self.usable_stale(now).map(|t| t.expires_at() - now)
        {
            events::refreshing_elsewhere(valid_for);
            self.stats.stale_serves += 1;
            return None;
        }
        Some((decision, Some(lock)))
    }

    /// Takes the lock of the state file (without waiting) and reads the
    /// file again: another process may have refreshed the token, or shut the
    /// gate, since this one last looked.
    fn lock_and_reload(&mut self, now: Instant) -> Lock {
        let Some(state) = &mut self.state else { return Lock::Off };
        let lock = state.lock(&mut self.stats.state_errors);
        if !matches!(lock, Lock::Off) {
            self.reload(now);
        }
        lock
    }

    /// Reads the state file, and takes from it what is newer than this
    /// cache's own state.
    fn reload(&mut self, now: Instant) {
        let Some(state) = &mut self.state else { return };
        if let Some(saved) = state.load(now, &mut self.stats.state_errors) {
            let had = self.cached.as_ref().map(|c| c.token.access_token().clone());
            self.merge(saved, now);
            let token = self.cached.as_ref().filter(|c| Some(c.token.access_token()) != had.as_ref());
            let token_left = token.map(|c| c.token.expires_at().saturating_duration_since(now));
            let gate = self.gate.as_ref().filter(|g| now < g.until);
            let gate_left = gate.map(|g| (g.until - now, &g.error));
            if token_left.is_some() || gate_left.is_some() {
                events::state_restored(token_left, gate_left);
            }
        }
    }

    /// Writes the state to the state file, if there is one, after merging
    /// what another process may have saved since this one last read it.
    fn save(&mut self) {
        let Some(state) = &self.state else { return };
        if let Some(theirs) = state.peek() {
            self.merge(theirs, crate::now());
        }
        if let Some(state) = &self.state {
            let (cached, gate) = (self.cached.as_ref(), self.gate.as_ref());
            state.save(cached, gate, self.failures, &mut self.stats.state_errors);
        }
    }

    /// Merges a state read from the state file (saved by another process,
    /// an earlier run, or this cache) into this one, keeping what is newer
    /// of each part:
    /// - the token issued last; of the same token, rejected if either says so;
    /// - the gate with the later end, among those shut by a failure after
    ///   that token was requested (an older failure was followed by a
    ///   success), cut to what this cache's policy could have set.
    fn merge(&mut self, theirs: Saved, now: Instant) {
        let mut taken = false;
        match (&mut self.cached, theirs.cached) {
            (_, None) => {}
            (Some(mine), Some(t)) if mine.token.access_token() == t.token.access_token() => {
                if t.rejected && !mine.rejected {
                    mine.rejected = true;
                    mine.refresh_at = mine.refresh_at.min(t.refresh_at);
                }
            }
            (Some(mine), Some(t)) if mine.token.issued_at() >= t.token.issued_at() => {}
            (mine, Some(t)) => {
                *mine = Some(t);
                taken = true;
            }
        }
        let issued_at = self.cached.as_ref().map(|c| c.token.issued_at());
        let current = |g: &Gate| issued_at.is_none_or(|issued| g.failed_at > issued);
        if self.gate.as_ref().is_some_and(|g| !current(g)) {
            self.gate = None;
            self.failures = 0;
        }
        if let Some(mut gate) = theirs.gate.filter(current) {
            // A gate is never longer than this policy's longest delay, or
            // than the cached token has left (a transient failure spreads
            // its retries over that).
            let valid_for = self.cached.as_ref().map(|c| c.token.expires_at().saturating_duration_since(now));
            let longest = self.policy.longest_delay().max(valid_for.unwrap_or_default());
            gate.until = gate.until.min(now.checked_add(longest).unwrap_or(gate.until));
            if self.gate.as_ref().is_none_or(|mine| gate.until > mine.until) {
                self.gate = Some(gate);
                self.failures = theirs.failures;
            }
        }
        if taken {
            // The token's next refresh is as routine as it was for the process
            // that fetched it: a restart is not a moment the fleet shares,
            // since each device resumes its own refresh point. A failure or a
            // rejection since then spreads it, as in the process that saw it.
            self.spread_next = self.gate.is_some() || self.cached.as_ref().is_some_and(|c| c.rejected);
        }
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
