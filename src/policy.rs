//! When the cache refreshes, and how long it stays away after a failure.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::time::{Duration, Instant};

use crate::error::Error;

/// The cache's timing rules. Every default is chosen for a fleet of devices
/// that share one token server; see the README's "Refresh policy" section.
///
/// ```
/// use std::time::Duration;
/// let policy = cctoken::Policy::default()
///     .rejected_cooldown(Duration::from_secs(30 * 60))
///     .seed(7); // reproducible jitter, for tests and simulations
/// ```
#[derive(Debug, Clone)]
pub struct Policy {
    pub(crate) routine_window: (f64, f64),
    pub(crate) spread_window: (f64, f64),
    pub(crate) backoff_base: Duration,
    pub(crate) backoff_max: Duration,
    pub(crate) rejected_cooldown: Duration,
    pub(crate) max_retry_after: Duration,
    pub(crate) min_token_age: Duration,
    pub(crate) min_fetch_interval: Duration,
    pub(crate) seed: Option<u64>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            routine_window: (0.60, 0.85),
            spread_window: (0.20, 0.85),
            backoff_base: Duration::from_secs(10),
            backoff_max: Duration::from_secs(600),
            rejected_cooldown: Duration::from_secs(15 * 60),
            max_retry_after: Duration::from_secs(3600),
            min_token_age: Duration::from_secs(30),
            min_fetch_interval: Duration::from_secs(10),
            seed: None,
        }
    }
}

impl Policy {
    /// Where in a token's lifetime a routine refresh happens: at a random
    /// point between these fractions, drawn anew for each token. Defaults to
    /// 0.60 to 0.85: a one-hour token is replaced after 36 to 51 minutes,
    /// leaving at least 9 minutes to ride out a failing token server.
    ///
    /// Fractions are clamped to `0.0..=1.0` and put in order.
    pub fn refresh_window(mut self, from: f64, to: f64) -> Self {
        self.routine_window = ordered(from, to);
        self
    }

    /// The refresh window for a token fetched at a moment many devices may
    /// share: the first token after start (unless a state file gave the cache
    /// a token, whose successor is routine), after a failure, or after
    /// [`TokenCache::invalidate`](crate::TokenCache::invalidate). Defaults to
    /// 0.20 to 0.85, so that devices that booted together, or recovered from
    /// the same outage together, drift apart before their next refresh.
    pub fn spread_window(mut self, from: f64, to: f64) -> Self {
        self.spread_window = ordered(from, to);
        self
    }

    /// Exponential backoff after a transient failure: the n-th consecutive
    /// failure closes the gate for a random time between zero and
    /// `base × 2ⁿ⁻¹`, capped at `max` ("full jitter"). Defaults to 10 s and
    /// 10 minutes.
    pub fn backoff(mut self, base: Duration, max: Duration) -> Self {
        self.backoff_base = base;
        self.backoff_max = max.max(base);
        self
    }

    /// How long the token server is left alone after it rejected the
    /// credentials (or answered another error that retrying cannot fix): a
    /// random time between 80 % and 100 % of this. Defaults to 15 minutes:
    /// each wait is at least 12 minutes, so a device whose credentials stay
    /// rejected asks at most 5 times in any hour, even when it restarts.
    pub fn rejected_cooldown(mut self, cooldown: Duration) -> Self {
        self.rejected_cooldown = cooldown;
        self
    }

    /// The longest wait a server's `Retry-After` can cause, so that a broken
    /// server cannot lock a device out for days. Defaults to 1 hour.
    ///
    /// A `Retry-After` may lengthen the delay after a failure, never shorten
    /// it: the gate stays shut for the longer of the ordinary delay (the
    /// [backoff](Policy::backoff) of a transient failure, the
    /// [cooldown](Policy::rejected_cooldown) of any other) and the
    /// `Retry-After` wait. So `Retry-After: 0`, or a date in the past, leaves
    /// the ordinary delay. The `Retry-After` wait, with `w` the server's value
    /// cut to this maximum, is drawn uniformly between `w` and 1.25 × `w`, to
    /// spread a crowd the server sent away at once; when 1.25 × `w` would
    /// exceed this maximum, it is drawn between 80 % and 100 % of the maximum
    /// instead. It never exceeds this maximum, and a crowd cut to it still
    /// spreads.
    pub fn max_retry_after(mut self, max: Duration) -> Self {
        self.max_retry_after = max;
        self
    }

    /// A token younger than this is not replaced on
    /// [`TokenCache::invalidate`](crate::TokenCache::invalidate) until it
    /// reaches this age, so an API that rejects every token cannot make the
    /// cache loop on the token endpoint. Defaults to 30 seconds.
    pub fn min_token_age(mut self, age: Duration) -> Self {
        self.min_token_age = age;
        self
    }

    /// After a successful token request, no other token request is sent until
    /// this long after that one was sent (the token's
    /// [`issued_at`](crate::Token::issued_at)), however short the token's
    /// lifetime: a server answering `expires_in` 0 or 1 cannot make the cache
    /// fetch on every call. Meanwhile a still valid token is served as usual;
    /// without one, calls get [`Error::RateLimited`]. A token that has
    /// expired on arrival is still handed out once, by the call that fetched
    /// it. Defaults to 10 seconds.
    pub fn min_fetch_interval(mut self, interval: Duration) -> Self {
        self.min_fetch_interval = interval;
        self
    }

    /// Seeds the jitter, for reproducible tests and simulations. Defaults to
    /// a seed from the standard library's per-process random state.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// The longest the gate can stay shut after a failure, while no valid
    /// token is in hand: the backoff's cap, the cooldown, or the
    /// `Retry-After` cap, whichever is longest.
    #[cfg(feature = "state-file")]
    pub(crate) fn longest_delay(&self) -> Duration {
        self.backoff_max.max(self.rejected_cooldown).max(self.max_retry_after)
    }

    /// The refresh point of a token issued at `issued_at` for `lifetime`.
    pub(crate) fn refresh_point(
        &self,
        rng: &mut Rng,
        issued_at: Instant,
        lifetime: Duration,
        spread: bool,
    ) -> Instant {
        let (from, to) = if spread { self.spread_window } else { self.routine_window };
        let fraction = from + (to - from) * rng.unit();
        issued_at.checked_add(lifetime.mul_f64(fraction)).unwrap_or(issued_at)
    }

    /// How long the gate stays shut after the `failures`-th consecutive
    /// failure, which was `error`, when the cached token has `valid_for`
    /// left (or none is usable).
    ///
    /// With a valid token in hand there is no hurry, and a fleet that failed
    /// together must not come back together: the delay is then at least a
    /// random part of 90 % of the token's remaining life.
    pub(crate) fn delay(
        &self,
        rng: &mut Rng,
        error: &Error,
        failures: u32,
        valid_for: Option<Duration>,
    ) -> Duration {
        let delay = self.failure_delay(rng, error, failures);
        match valid_for {
            Some(left) if error.is_transient() => delay.max(left.mul_f64(VALID_SPREAD * rng.unit())),
            _ => delay,
        }
    }

    /// The ordinary delay for `error` (backoff or cooldown), lengthened to the
    /// server's `Retry-After` wait when that is longer: a `Retry-After` of 0
    /// must not make a permanent error retried at once.
    fn failure_delay(&self, rng: &mut Rng, error: &Error, failures: u32) -> Duration {
        let ordinary = if error.is_transient() {
            let doubling = 2u32.saturating_pow(failures.saturating_sub(1));
            let ceiling = self.backoff_base.saturating_mul(doubling).min(self.backoff_max);
            ceiling.mul_f64(rng.unit())
        } else {
            self.rejected_cooldown.mul_f64(0.8 + 0.2 * rng.unit())
        };
        match error.retry_after() {
            Some(after) => ordinary.max(self.retry_after_wait(rng, after)),
            None => ordinary,
        }
    }

    /// The wait a `Retry-After` of `after` asks for: obeyed up to the cap,
    /// then jittered to spread the crowd the server sent away at once, within
    /// the bounds [`Policy::max_retry_after`] documents.
    fn retry_after_wait(&self, rng: &mut Rng, after: Duration) -> Duration {
        let max = self.max_retry_after;
        let wait = after.min(max);
        let (low, high) = match wait.checked_add(wait / 4) {
            Some(high) if high <= max => (wait, high),
            _ => (max - max / 5, max),
        };
        // `min`: the float product must not round past the top of the range.
        (low + (high - low).mul_f64(rng.unit())).min(high)
    }
}

/// The share of a valid token's remaining life over which retries spread.
const VALID_SPREAD: f64 = 0.9;

fn ordered(a: f64, b: f64) -> (f64, f64) {
    let clamp = |x: f64| if x.is_nan() { 0.0 } else { x.clamp(0.0, 1.0) };
    let (a, b) = (clamp(a), clamp(b));
    if a <= b { (a, b) } else { (b, a) }
}

/// SplitMix64: small, fast, and good enough to spread refreshes; not for
/// anything secret.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: Option<u64>) -> Rng {
        // RandomState's keys come from the OS's randomness, so hashing a
        // constant with them yields a random seed without a dependency.
        Rng(seed.unwrap_or_else(|| RandomState::new().hash_one(0x5EED_u64)))
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TransportKind;
    use crate::error::OAuthError;

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn rng_is_seedable_and_uniform_enough() {
        let (mut a, mut b) = (Rng::new(Some(1)), Rng::new(Some(1)));
        let mut buckets = [0u32; 10];
        for _ in 0..10_000 {
            let x = a.unit();
            assert_eq!(x, b.unit());
            assert!((0.0..1.0).contains(&x));
            buckets[(x * 10.0) as usize] += 1;
        }
        assert!(buckets.iter().all(|&n| (850..1150).contains(&n)), "{buckets:?}");
        assert_ne!(Rng::new(None).next_u64(), Rng::new(None).next_u64());
    }

    #[test]
    fn refresh_points_stay_in_their_windows() {
        let policy = Policy::default();
        let mut rng = Rng::new(Some(3));
        let start = Instant::now();
        for spread in [false, true] {
            let (from, to) = if spread { (0.20, 0.85) } else { (0.60, 0.85) };
            let (mut low, mut high) = (HOUR, Duration::ZERO);
            for _ in 0..2000 {
                let at = policy.refresh_point(&mut rng, start, HOUR, spread) - start;
                low = low.min(at);
                high = high.max(at);
            }
            assert!(low >= HOUR.mul_f64(from) && low < HOUR.mul_f64(from + 0.01), "{low:?}");
            assert!(high < HOUR.mul_f64(to) && high > HOUR.mul_f64(to - 0.01), "{high:?}");
        }
    }

    #[test]
    fn delays_by_kind_of_failure() {
        let policy = Policy::default();
        let mut rng = Rng::new(Some(5));
        let timeout = Error::from(TransportKind::Timeout);
        for failures in 1..=12u32 {
            let ceiling = (Duration::from_secs(10) * 2u32.pow(failures - 1)).min(Duration::from_secs(600));
            for _ in 0..200 {
                assert!(policy.delay(&mut rng, &timeout, failures, None) < ceiling);
            }
        }
        let limited = Error::HttpStatus { status: 429, retry_after: Some(Duration::from_secs(120)) };
        for _ in 0..200 {
            let d = policy.delay(&mut rng, &limited, 1, None);
            assert!(d >= Duration::from_secs(120) && d < Duration::from_secs(150), "{d:?}");
        }
        let absurd = Error::HttpStatus { status: 503, retry_after: Some(Duration::from_secs(86_400 * 365)) };
        assert!(policy.delay(&mut rng, &absurd, 1, None) < Duration::from_secs(3600 + 900));
        let rejected = Error::CredentialsRejected { status: 401, oauth: None };
        for _ in 0..200 {
            let d = policy.delay(&mut rng, &rejected, 1, None);
            assert!(d >= Duration::from_secs(720) && d < Duration::from_secs(900), "{d:?}");
        }
        // A huge failure count neither overflows nor exceeds the cap.
        assert!(policy.delay(&mut rng, &timeout, u32::MAX, None) < Duration::from_secs(600));
    }

    #[test]
    fn retry_after_never_shortens_a_delay() {
        let policy = Policy::default();
        let mut rng = Rng::new(Some(11));
        let cooldown = Duration::from_secs(720)..Duration::from_secs(900);
        for after in [0, 1].map(Duration::from_secs) {
            let not_found = Error::HttpStatus { status: 404, retry_after: Some(after) };
            let oauth = OAuthError::new("invalid_scope", None, None);
            let bad_scope = Error::OAuth { status: 400, oauth, retry_after: Some(after) };
            for error in [not_found, bad_scope] {
                for _ in 0..200 {
                    let d = policy.delay(&mut rng, &error, 1, None);
                    assert!(cooldown.contains(&d), "{error}, Retry-After {after:?}: {d:?}");
                }
            }
        }
        // `Retry-After: 0` on a 429 (or a date in the past) leaves the
        // ordinary backoff, full jitter over its whole range.
        let limited = Error::HttpStatus { status: 429, retry_after: Some(Duration::ZERO) };
        for (failures, ceiling) in [(1, 10), (3, 40)] {
            let ceiling = Duration::from_secs(ceiling);
            let delays: Vec<Duration> =
                (0..500).map(|_| policy.delay(&mut rng, &limited, failures, None)).collect();
            assert!(delays.iter().all(|d| *d < ceiling), "{delays:?}");
            assert!(delays.iter().any(|d| *d < ceiling / 10), "{delays:?}");
            assert!(delays.iter().any(|d| *d > ceiling.mul_f64(0.9)), "{delays:?}");
        }
    }

    #[test]
    fn the_retry_after_cap_bounds_the_whole_wait() {
        let policy = Policy::default();
        let mut rng = Rng::new(Some(13));
        let year = Duration::from_secs(86_400 * 365);
        for (after, low, high) in [
            // In [w, 1.25 w].
            (120, 120, 150),
            // 1.25 w would pass the cap of an hour: in [48 min, 60 min].
            (86_400 * 365, 48 * 60, 3600),
            (55 * 60, 48 * 60, 3600),
        ] {
            let error = Error::HttpStatus { status: 429, retry_after: Some(Duration::from_secs(after)) };
            let (low, high) = (Duration::from_secs(low), Duration::from_secs(high));
            let delays: Vec<Duration> = (0..1000).map(|_| policy.delay(&mut rng, &error, 1, None)).collect();
            let (min, max) = (delays.iter().min().copied(), delays.iter().max().copied());
            assert!(delays.iter().all(|d| (low..=high).contains(d)), "{after} s: {min:?} to {max:?}");
            // The crowd spreads over the whole range.
            let tenth = (high - low) / 10;
            assert!(min < Some(low + tenth) && max > Some(high - tenth), "{after} s: {min:?} to {max:?}");
        }
        // A smaller cap bounds the wait the same way.
        let policy = Policy::default().max_retry_after(Duration::from_secs(100));
        let absurd = Error::HttpStatus { status: 503, retry_after: Some(year) };
        for _ in 0..200 {
            let d = policy.delay(&mut rng, &absurd, 1, None);
            assert!(d >= Duration::from_secs(80) && d <= Duration::from_secs(100), "{d:?}");
        }
    }

    #[test]
    fn a_valid_token_spreads_retries_over_its_remaining_life() {
        let policy = Policy::default();
        let mut rng = Rng::new(Some(9));
        let left = Some(Duration::from_secs(600));
        let delays: Vec<Duration> =
            (0..500).map(|_| policy.delay(&mut rng, &Error::from(TransportKind::Timeout), 1, left)).collect();
        assert!(delays.iter().all(|d| *d < Duration::from_secs(540)));
        assert!(delays.iter().any(|d| *d > Duration::from_secs(500)), "spread over the whole range");
        // A cooldown is not shortened or lengthened by a valid token.
        let rejected = Error::CredentialsRejected { status: 401, oauth: None };
        let d = policy.delay(&mut rng, &rejected, 1, Some(Duration::from_secs(86_400)));
        assert!(d >= Duration::from_secs(720) && d < Duration::from_secs(900), "{d:?}");
    }

    #[test]
    fn windows_are_clamped_and_ordered() {
        let p = Policy::default().refresh_window(1.5, -2.0).spread_window(f64::NAN, 0.5);
        assert_eq!(p.routine_window, (0.0, 1.0));
        assert_eq!(p.spread_window, (0.0, 0.5));
    }
}
