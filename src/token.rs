//! The access token and its lifetime on cctoken's clock.

use std::fmt;
use std::time::{Duration, Instant};

/// An access token. Its `Debug` prints `[redacted]`; reading the value takes
/// an explicit call to [`AccessToken::secret`].
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken(String);

impl AccessToken {
    /// Wraps a token value.
    pub fn new(token: impl Into<String>) -> Self {
        AccessToken(token.into())
    }

    /// The token itself. Only call this where it is sent.
    pub fn secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessToken([redacted])")
    }
}

/// A Bearer token with its lifetime.
///
/// The expiry is an [`Instant`] on cctoken's clock ([`now`](crate::now),
/// which counts suspend) measured from when the token was requested, so a
/// wrong or jumping wall clock (a device without a real-time clock, before
/// NTP) never makes a token look fresh or stale.
///
/// ```
/// use std::time::{Duration, Instant};
/// use cctoken::{AccessToken, Token};
///
/// let now = cctoken::now();
/// let token = Token::new(AccessToken::new("abc"), now, Duration::from_secs(3600));
/// assert_eq!(token.authorization(), "Bearer abc");
/// assert!(!token.is_expired_at(now + Duration::from_secs(3599)));
/// assert!(token.is_expired_at(now + Duration::from_secs(3600)));
/// assert_eq!(format!("{token:?}").contains("abc"), false);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    access_token: AccessToken,
    issued_at: Instant,
    lifetime: Duration,
    expires_at: Instant,
    scope: Option<String>,
}

impl Token {
    /// A token issued at `issued_at` and is valid for `lifetime`
    /// (at most ten years; a lifetime that would overflow the clock counts
    /// as zero).
    pub fn new(access_token: AccessToken, issued_at: Instant, lifetime: Duration) -> Self {
        const TEN_YEARS: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
        let lifetime = lifetime.min(TEN_YEARS);
        let (lifetime, expires_at) = match issued_at.checked_add(lifetime) {
            Some(at) => (lifetime, at),
            None => (Duration::ZERO, issued_at),
        };
        Token { access_token, issued_at, lifetime, expires_at, scope: None }
    }

    /// The same token with the granted scope the server reported.
    pub fn with_scope(mut self, scope: Option<String>) -> Self {
        self.scope = scope;
        self
    }

    /// The access token.
    pub fn access_token(&self) -> &AccessToken {
        &self.access_token
    }

    /// The value for an `Authorization` header: `Bearer <token>`.
    pub fn authorization(&self) -> String {
        format!("Bearer {}", self.access_token.secret())
    }

    /// The instant the lifetime counts from. [`Client::fetch`](crate::Client::fetch)
    /// takes it just before sending the request, the earliest moment the
    /// server could have issued the token, so the lifetime is never
    /// overestimated.
    pub fn issued_at(&self) -> Instant {
        self.issued_at
    }

    /// How long the token is valid, from [`Token::issued_at`]: the
    /// server's `expires_in`, clamped, or the configured default.
    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// When the token stops being valid.
    pub fn expires_at(&self) -> Instant {
        self.expires_at
    }

    /// Whether the token has expired at `now`.
    pub fn is_expired_at(&self, now: Instant) -> bool {
        now >= self.expires_at()
    }

    /// The scope the server says it granted, if it said.
    pub fn scope(&self) -> Option<&str> {
        self.scope.as_deref()
    }
}
