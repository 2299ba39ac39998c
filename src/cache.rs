//! The single-threaded, expiry-aware token cache.

use std::time::{Duration, Instant};

use crate::client::{Client, Fetch};
use crate::error::Error;
use crate::token::Token;

/// The largest refresh margin: however long a token lives, it is replaced
/// at most this long before it expires.
pub const MAX_REFRESH_MARGIN: Duration = Duration::from_secs(300);

/// How long before expiry a token of this lifetime is replaced: a quarter of
/// its lifetime, but at most [`MAX_REFRESH_MARGIN`].
///
/// A one-hour token is replaced after 55 minutes, a 30-second token after
/// 22.5 seconds. A fixed margin would either refetch a short-lived token on
/// every call or cut a long-lived one too close.
///
/// ```
/// use std::time::Duration;
/// use cctoken::refresh_margin;
///
/// assert_eq!(refresh_margin(Duration::from_secs(3600)), Duration::from_secs(300));
/// assert_eq!(refresh_margin(Duration::from_secs(30)), Duration::from_millis(7500));
/// ```
pub fn refresh_margin(lifetime: Duration) -> Duration {
    (lifetime / 4).min(MAX_REFRESH_MARGIN)
}

/// When `token` stops being served from the cache.
pub fn refresh_at(token: &Token) -> Instant {
    token.expires_at() - refresh_margin(token.lifetime())
}

/// Caches one token and fetches a new one when the cached one nears expiry.
///
/// Single-threaded by design: methods take `&mut self`, there are no locks
/// and no background threads. Time is read only from the monotonic clock;
/// [`TokenCache::token_at`] takes it as an argument, so the cache runs just as
/// well under a virtual clock.
///
/// ```
/// use std::time::{Duration, Instant};
/// use cctoken::{AccessToken, Token, TokenCache};
///
/// let start = Instant::now();
/// let mut fetches = 0;
/// let mut cache = TokenCache::new(|| {
///     fetches += 1;
///     Ok(Token::new(AccessToken::new(format!("t{fetches}")), start, Duration::from_secs(3600)))
/// });
/// assert_eq!(cache.token_at(start)?.access_token().secret(), "t1");
/// assert_eq!(cache.token_at(start + Duration::from_secs(60))?.access_token().secret(), "t1");
/// cache.invalidate(); // e.g. the API answered 401
/// assert_eq!(cache.token_at(start + Duration::from_secs(61))?.access_token().secret(), "t2");
/// # Ok::<(), cctoken::Error>(())
/// ```
#[derive(Debug)]
pub struct TokenCache<F: Fetch = Client> {
    fetcher: F,
    token: Option<Token>,
}

impl<F: Fetch> TokenCache<F> {
    /// An empty cache that fetches through `fetcher`.
    pub fn new(fetcher: F) -> Self {
        TokenCache { fetcher, token: None }
    }

    /// The cached token, or a new one if there is none or the cached one has
    /// reached its [refresh point](refresh_at).
    pub fn token(&mut self) -> Result<&Token, Error> {
        self.token_at(Instant::now())
    }

    /// [`TokenCache::token`] at a given instant of the monotonic (or a
    /// virtual) clock.
    ///
    /// If a fetch fails, the error is returned and the old token, if any,
    /// stays cached (and is served again only while it is before its
    /// refresh point, which it no longer is: the next call fetches again).
    pub fn token_at(&mut self, now: Instant) -> Result<&Token, Error> {
        let fresh = self.cached_at(now).is_some();
        let token = match self.token.take() {
            Some(token) if fresh => token,
            old => match self.fetcher.fetch() {
                Ok(token) => token,
                Err(e) => {
                    self.token = old;
                    return Err(e);
                }
            },
        };
        Ok(self.token.insert(token))
    }

    /// The cached token if it is before its refresh point at `now`, without
    /// fetching.
    pub fn cached_at(&self, now: Instant) -> Option<&Token> {
        self.token.as_ref().filter(|t| now < refresh_at(t))
    }

    /// Drops the cached token, so that the next call fetches a new one. Call
    /// it when the API answers 401: the token was revoked or has expired early.
    pub fn invalidate(&mut self) {
        self.token = None;
    }

    /// The fetcher.
    pub fn fetcher(&self) -> &F {
        &self.fetcher
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AccessToken;
    use std::cell::Cell;

    const HOUR: Duration = Duration::from_secs(3600);

    /// A cache whose fetcher issues tokens stamped with a virtual clock and
    /// counts its calls; `fail` makes the next fetches fail.
    struct Fake {
        now: Cell<Instant>,
        fetches: Cell<u32>,
        fail: Cell<bool>,
        lifetime: Duration,
    }

    impl Fake {
        fn new(lifetime: Duration) -> Self {
            Fake { now: Cell::new(Instant::now()), fetches: Cell::new(0), fail: Cell::new(false), lifetime }
        }
        fn fetch(&self) -> Result<Token, Error> {
            if self.fail.get() {
                return Err(Error::Timeout);
            }
            self.fetches.set(self.fetches.get() + 1);
            let name = format!("t{}", self.fetches.get());
            Ok(Token::new(AccessToken::new(name), self.now.get(), self.lifetime))
        }
        fn advance(&self, by: Duration) -> Instant {
            self.now.set(self.now.get() + by);
            self.now.get()
        }
    }

    fn secret(cache: &mut TokenCache<impl Fetch>, now: Instant) -> String {
        cache.token_at(now).unwrap().access_token().secret().to_owned()
    }

    #[test]
    fn margin_rule_table() {
        let cases =
            [(3600, 300_000), (86_400, 300_000), (1200, 300_000), (600, 150_000), (30, 7_500), (0, 0)];
        for (lifetime, margin_ms) in cases {
            let margin = refresh_margin(Duration::from_secs(lifetime));
            assert_eq!(margin, Duration::from_millis(margin_ms), "lifetime {lifetime}");
        }
    }

    #[test]
    fn serves_until_the_refresh_point_then_fetches_once() {
        let fake = Fake::new(HOUR);
        let start = fake.now.get();
        let mut cache = TokenCache::new(|| fake.fetch());
        assert_eq!(secret(&mut cache, start), "t1");
        for minute in 1..55 {
            let now = start + Duration::from_secs(60 * minute);
            assert_eq!(secret(&mut cache, now), "t1", "minute {minute}");
        }
        let now = fake.advance(Duration::from_secs(55 * 60));
        assert_eq!(secret(&mut cache, now), "t2");
        assert_eq!(secret(&mut cache, now + Duration::from_secs(60)), "t2");
        assert_eq!(fake.fetches.get(), 2);
    }

    #[test]
    fn short_lived_tokens_are_not_refetched_on_every_call() {
        let fake = Fake::new(Duration::from_secs(30));
        let start = fake.now.get();
        let mut cache = TokenCache::new(|| fake.fetch());
        for second in 0..22 {
            assert_eq!(secret(&mut cache, start + Duration::from_secs(second)), "t1");
        }
        let now = fake.advance(Duration::from_millis(22_500));
        assert_eq!(secret(&mut cache, now), "t2");
    }

    #[test]
    fn zero_lifetime_tokens_are_used_once() {
        let fake = Fake::new(Duration::ZERO);
        let now = fake.now.get();
        let mut cache = TokenCache::new(|| fake.fetch());
        assert_eq!(secret(&mut cache, now), "t1");
        assert_eq!(secret(&mut cache, now), "t2");
    }

    #[test]
    fn invalidate_forces_a_fetch() {
        let fake = Fake::new(HOUR);
        let now = fake.now.get();
        let mut cache = TokenCache::new(|| fake.fetch());
        assert_eq!(secret(&mut cache, now), "t1");
        cache.invalidate();
        assert!(cache.cached_at(now).is_none());
        assert_eq!(secret(&mut cache, now), "t2");
    }

    #[test]
    fn a_failed_fetch_returns_the_error_and_retries_next_call() {
        let fake = Fake::new(HOUR);
        let start = fake.now.get();
        let mut cache = TokenCache::new(|| fake.fetch());
        assert_eq!(secret(&mut cache, start), "t1");
        fake.fail.set(true);
        let now = fake.advance(Duration::from_secs(56 * 60));
        assert!(matches!(cache.token_at(now), Err(Error::Timeout)));
        fake.fail.set(false);
        assert_eq!(secret(&mut cache, now), "t2");
    }
}
