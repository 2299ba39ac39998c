//! The crate's single error type.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Longest server-supplied text (an OAuth `error_description`, say) that an
/// error keeps, in characters. Longer text is cut and marked with `…`.
pub(crate) const MAX_SERVER_TEXT: usize = 200;

/// Everything that can go wrong while configuring a client or fetching a token.
///
/// No variant ever holds the client secret, the access token, the request or
/// the response body. Text that came from the server (an OAuth error code or
/// description) is stripped of control characters and cut to a short length
/// before it is stored, so `Display` always prints a single line.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Error {
    /// The token endpoint rejected the client's credentials: HTTP 401 or 403,
    /// or an OAuth error `invalid_client` / `unauthorized_client`.
    ///
    /// Retrying will not help until the credentials (or, for NFleet, the
    /// identity GUID) are fixed.
    CredentialsRejected {
        /// The HTTP status of the response.
        status: u16,
        /// The OAuth error body, when the server sent one.
        oauth: Option<OAuthError>,
    },
    /// The token endpoint answered with an OAuth error (RFC 6749 §5.2) other
    /// than a credentials problem, e.g. `invalid_scope`.
    OAuth {
        /// The HTTP status of the response (it may be 2xx: an error inside a 200).
        status: u16,
        /// The parsed error body.
        oauth: OAuthError,
        /// The server's `Retry-After`, when it sent one.
        retry_after: Option<Duration>,
    },
    /// The token endpoint answered with a status that is neither success nor
    /// an OAuth error body (a 500 HTML page, a 302 redirect, a 429, …).
    HttpStatus {
        /// The HTTP status of the response.
        status: u16,
        /// The server's `Retry-After`, when it sent one.
        retry_after: Option<Duration>,
    },
    /// The token request did not get an HTTP answer: a timeout, a TLS
    /// failure, no connection, or one that broke. [`TransportError::kind`]
    /// tells which.
    Transport(TransportError),
    /// The server answered, but not with something we can use as a token.
    InvalidResponse {
        /// The HTTP status of the response.
        status: u16,
        /// What was wrong, in a few words. Never contains the body.
        reason: &'static str,
    },
    /// A [`TokenCache`](crate::TokenCache) is not contacting the token
    /// endpoint until `retry_at`, after the failure `last`, and has no valid
    /// token to serve meanwhile.
    Backoff {
        /// When the cache will try the token endpoint again.
        retry_at: Instant,
        /// The failure that closed the gate.
        last: Box<Error>,
    },
    /// A [`TokenCache`](crate::TokenCache) is not requesting another token
    /// until `retry_at`, because the last one was requested less than
    /// [`Policy::min_fetch_interval`](crate::Policy::min_fetch_interval) ago,
    /// and it has no valid token to serve meanwhile (the last one has already
    /// expired, or the API rejected it).
    RateLimited {
        /// When the cache will request a token again.
        retry_at: Instant,
    },
    /// The configuration cannot work: a refused URL, a control character in
    /// a credential, an unreadable CA certificate, …
    Config(String),
}

impl Error {
    /// Whether the same request might succeed later without any change to the
    /// configuration: network and TLS failures, timeouts, 5xx, 408 and 429
    /// responses, `server_error` / `temporarily_unavailable`, and responses
    /// that are not a token (a captive portal's page, say).
    ///
    /// Rejected credentials, other OAuth errors, other 4xx statuses and
    /// configuration errors are not transient.
    ///
    /// ```
    /// let e = cctoken::Error::HttpStatus { status: 503, retry_after: None };
    /// assert!(e.is_transient());
    /// let e = cctoken::Error::CredentialsRejected { status: 401, oauth: None };
    /// assert!(!e.is_transient());
    /// ```
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Transport(_) => true,
            Error::InvalidResponse { .. } => true,
            Error::HttpStatus { status, .. } => matches!(status, 408 | 429 | 500..=599),
            Error::OAuth { oauth, .. } => {
                matches!(oauth.code(), "server_error" | "temporarily_unavailable")
            }
            Error::Backoff { last, .. } => last.is_transient(),
            Error::RateLimited { .. } => true,
            Error::CredentialsRejected { .. } | Error::Config(_) => false,
        }
    }

    /// Whether the token endpoint rejected the client's credentials
    /// (see [`Error::CredentialsRejected`]).
    /// Also true for a [`Error::Backoff`] that follows such a rejection.
    pub fn is_credentials_rejected(&self) -> bool {
        match self {
            Error::CredentialsRejected { .. } => true,
            Error::Backoff { last, .. } => last.is_credentials_rejected(),
            _ => false,
        }
    }

    /// How long the server asked us to wait before retrying (its
    /// `Retry-After`), if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::HttpStatus { retry_after, .. } | Error::OAuth { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The kind of transport failure, if this is one.
    pub fn transport_kind(&self) -> Option<TransportKind> {
        match self {
            Error::Transport(e) => Some(e.kind()),
            _ => None,
        }
    }

    pub(crate) fn config(msg: impl Into<String>) -> Self {
        Error::Config(msg.into())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::CredentialsRejected { status, oauth } => {
                write!(f, "token endpoint rejected the client credentials (HTTP {status}")?;
                if let Some(oauth) = oauth {
                    write!(f, ", {oauth}")?;
                }
                f.write_str(")")
            }
            Error::OAuth { status, oauth, .. } => {
                write!(f, "token endpoint returned an OAuth error (HTTP {status}, {oauth})")
            }
            Error::HttpStatus { status, retry_after } => {
                write!(f, "token endpoint returned unexpected HTTP status {status}")?;
                if let Some(d) = retry_after {
                    write!(f, " (retry after {} s)", d.as_secs())?;
                }
                Ok(())
            }
            Error::Transport(e) => e.fmt(f),
            Error::InvalidResponse { status, reason } => {
                write!(f, "invalid token response (HTTP {status}): {reason}")
            }
            Error::Backoff { last, .. } => write!(f, "backing off from the token endpoint after: {last}"),
            Error::RateLimited { .. } => {
                f.write_str("not asking the token endpoint for a new token so soon after the last one")
            }
            Error::Config(msg) => write!(f, "invalid configuration: {msg}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Transport(e) => std::error::Error::source(e),
            Error::Backoff { last, .. } => Some(&**last),
            _ => None,
        }
    }
}

impl From<TransportKind> for Error {
    fn from(kind: TransportKind) -> Self {
        Error::Transport(TransportError::new(kind))
    }
}

impl From<TransportError> for Error {
    fn from(e: TransportError) -> Self {
        Error::Transport(e)
    }
}

/// The cause of a transport failure, as any HTTP stack can report it.
type Cause = Arc<dyn std::error::Error + Send + Sync>;

/// A token request that got no HTTP answer, from cctoken's own transport or
/// any other [`Fetch`](crate::Fetch) implementation (libcurl, a modem, a
/// simulation): what kind of failure it was, and optionally its cause.
///
/// Every kind is transient ([`Error::is_transient`]): the same request may
/// succeed later.
///
/// ```
/// use cctoken::{Error, TransportError, TransportKind};
///
/// let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "modem: no carrier");
/// let e = Error::from(TransportError::new(TransportKind::Connect).with_cause(io));
/// assert!(e.is_transient());
/// assert_eq!(e.to_string(), "could not connect to the token endpoint: modem: no carrier");
/// assert!(matches!(&e, Error::Transport(t) if t.kind() == TransportKind::Connect));
/// ```
#[derive(Debug, Clone)]
pub struct TransportError {
    kind: TransportKind,
    cause: Option<Cause>,
}

/// What kind of transport failure a [`TransportError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransportKind {
    /// The request did not finish within its deadline.
    Timeout,
    /// The TLS handshake failed: an untrusted or expired certificate, a
    /// wrong host name, no protocol in common.
    Tls,
    /// No connection could be made: the name did not resolve, the
    /// connection was refused or the host unreachable, a proxy refused.
    Connect,
    /// The connection was made but broke, or the answer was not HTTP.
    Io,
    /// The TLS handshake failed on a certificate that is not valid yet while
    /// the device's wall clock reads earlier than a time known to have
    /// passed (see [`trusted_time`](crate::trusted_time)): the clock is
    /// wrong, and the certificate is not valid yet at the trusted time
    /// either (it is newer than anything cctoken knows). The cause says what
    /// the clock reads. Transient: it passes once the clock is set, or a
    /// later time is known. (A certificate that expired before the trusted
    /// time is [`TransportKind::Tls`]: no clock explains it.)
    Clock,
}

impl TransportError {
    /// A failure of this kind, without a cause.
    pub fn new(kind: TransportKind) -> Self {
        TransportError { kind, cause: None }
    }

    /// The same failure, with the error that caused it. Its `Display` is
    /// part of this error's, so it must not hold a secret.
    pub fn with_cause(mut self, cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        self.cause = Some(Arc::from(cause.into()));
        self
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> TransportKind {
        self.kind
    }
}

impl From<TransportKind> for TransportError {
    fn from(kind: TransportKind) -> Self {
        TransportError::new(kind)
    }
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.kind {
            TransportKind::Timeout => "token request timed out",
            TransportKind::Tls => "TLS failure talking to the token endpoint",
            TransportKind::Connect => "could not connect to the token endpoint",
            TransportKind::Io => "the connection to the token endpoint failed",
            TransportKind::Clock => "the device clock is wrong",
        })?;
        match &self.cause {
            Some(cause) => write!(f, ": {cause}"),
            None => Ok(()),
        }
    }
}

impl std::error::Error for TransportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause.as_deref().map(|c| c as &(dyn std::error::Error + 'static))
    }
}

/// An OAuth 2.0 error response body (RFC 6749 §5.2), sanitised.
///
/// Every field is stripped of control characters and cut to a short length,
/// so it is safe to log on one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    code: String,
    description: Option<String>,
    uri: Option<String>,
}

impl OAuthError {
    pub(crate) fn new(code: &str, description: Option<&str>, uri: Option<&str>) -> Self {
        OAuthError {
            code: sanitize(code),
            description: description.map(sanitize).filter(|s| !s.is_empty()),
            uri: uri.map(sanitize).filter(|s| !s.is_empty()),
        }
    }

    /// The `error` code, e.g. `invalid_client` or `invalid_scope`.
    pub fn code(&self) -> &str {
        &self.code
    }

    /// The `error_description`, if the server sent one.
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// The `error_uri`, if the server sent one.
    pub fn uri(&self) -> Option<&str> {
        self.uri.as_deref()
    }
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error={}", self.code)?;
        if let Some(d) = &self.description {
            write!(f, ": {d}")?;
        }
        if let Some(u) = &self.uri {
            write!(f, " <{u}>")?;
        }
        Ok(())
    }
}

/// Replaces every occurrence of each `secret` in `text` with `[redacted]`:
/// a server that echoes the client secret or a token in its error text must
/// not put it into our errors and logs. A secret shorter than four characters
/// that occurs in the text makes the whole text `[redacted]`: replacing each
/// occurrence of a string that short would mangle ordinary words. Empty
/// secrets are ignored.
///
/// Both the text and the secrets are first made one line ([`one_line`]), so
/// a secret echoed with its whitespace changed (`a\nb` or `a  b` for the
/// secret `a b`) is found too: [`sanitize`] would otherwise turn it back into
/// the secret after redaction had missed it. The text is scanned once from
/// the left; where several secrets start at the same place, the first in
/// `secrets` is replaced. The result is one line; it is not yet cut to
/// [`MAX_SERVER_TEXT`] characters, though a text far longer is cut short.
pub(crate) fn redact(text: &str, secrets: &[String]) -> String {
    let secrets: Vec<String> = secrets.iter().map(|s| one_line(s)).filter(|s| !s.is_empty()).collect();
    let text = one_line(text);
    if secrets.iter().any(|s| s.chars().count() < 4 && text.contains(s.as_str())) {
        return "[redacted]".to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    // Past `4 * MAX_SERVER_TEXT` bytes, `out` holds more characters than
    // `sanitize` keeps: stopping there changes nothing and bounds the work.
    while !rest.is_empty() && out.len() <= 4 * MAX_SERVER_TEXT {
        if let Some(after) = secrets.iter().find_map(|secret| rest.strip_prefix(secret.as_str())) {
            out.push_str("[redacted]");
            rest = after;
        } else {
            let mut chars = rest.chars();
            out.extend(chars.next());
            rest = chars.as_str();
        }
    }
    out
}

/// Makes server-supplied text safe to print on one line: control characters
/// become spaces, runs of whitespace collapse, and the result is cut to
/// [`MAX_SERVER_TEXT`] characters.
pub(crate) fn sanitize(text: &str) -> String {
    let mut line = one_line(text);
    if let Some((end, _)) = line.char_indices().nth(MAX_SERVER_TEXT) {
        line.truncate(end);
        line.push('…');
    }
    line
}

/// `text` with control characters turned into spaces, every run of
/// whitespace collapsed to one space, and no leading or trailing space.
pub(crate) fn one_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pending_space = false;
    for c in text.chars() {
        if c.is_control() || c.is_whitespace() {
            pending_space = !out.is_empty();
            continue;
        }
        if pending_space {
            out.push(' ');
            pending_space = false;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_makes_one_short_line() {
        assert_eq!(sanitize("  bad\r\nclient\t\u{0}id "), "bad client id");
        assert_eq!(sanitize("\u{1b}[31mred"), "[31mred");
        let long = "x".repeat(1000);
        let cut = sanitize(&long);
        assert_eq!(cut.chars().count(), MAX_SERVER_TEXT + 1);
        assert!(cut.ends_with('…'));
        assert_eq!(sanitize(""), "");
    }

    #[test]
    fn redact_hides_every_occurrence() {
        let secrets = ["s3cr3t".to_owned(), String::new(), "t0ken".to_owned()];
        assert_eq!(
            redact("bad id s3cr3t, s3cr3t! t0ken", &secrets),
            "bad id [redacted], [redacted]! [redacted]"
        );
        assert_eq!(redact("nothing here", &secrets), "nothing here");
    }

    #[test]
    fn a_short_secret_in_the_text_redacts_all_of_it() {
        let secrets = ["s3cr3t".to_owned(), "abc".to_owned()];
        assert_eq!(redact("bad secret abc, s3cr3t", &secrets), "[redacted]");
        assert_eq!(redact("xabcx", &secrets), "[redacted]");
        assert_eq!(redact("no ab c here, s3cr3t", &secrets), "no ab c here, [redacted]");
        let one = ["x".to_owned()];
        assert_eq!(redact("invalid secret x", &one), "[redacted]");
        assert_eq!(redact("invalid secret y", &one), "invalid secret y");
        // Found with its whitespace changed, as longer secrets are.
        assert_eq!(redact("got a\r\n b", &["a b".to_owned()]), "[redacted]");
        // An empty secret is ignored.
        assert_eq!(redact("any text", &[String::new()]), "any text");
        assert_eq!(redact("", &one), "");
    }

    #[test]
    fn redact_finds_a_secret_whose_whitespace_was_changed() {
        let secrets = ["p@ss w0rd".to_owned(), " tok\u{a0}en ".to_owned()];
        for echoed in ["p@ss\nw0rd", "p@ss\t w0rd", "p@ss  w0rd", "p@ss\u{a0}w0rd", "p@ss\r\n\u{0}w0rd"] {
            let text = format!("bad secret {echoed}, token tok en\n");
            let redacted = redact(&text, &secrets);
            assert_eq!(redacted, "bad secret [redacted], token [redacted]", "{echoed:?}");
            assert_eq!(sanitize(&redacted), redacted);
        }
    }

    #[test]
    fn redacting_a_long_text_keeps_what_sanitize_keeps() {
        let secrets = ["s3cr3t".to_owned()];
        let (head, tail) = ("é".repeat(150), "x".repeat(100_000));
        let redacted = redact(&format!("{head} s3cr3t {tail}"), &secrets);
        assert!(redacted.len() < 1000, "{}", redacted.len());
        assert_eq!(sanitize(&redacted), sanitize(&format!("{head} [redacted] {tail}")));
    }

    #[test]
    fn transient_classification() {
        let status = |s| Error::HttpStatus { status: s, retry_after: None };
        assert!(status(500).is_transient());
        assert!(status(429).is_transient());
        assert!(status(408).is_transient());
        assert!(!status(404).is_transient());
        assert!(!status(302).is_transient());
        let oauth =
            |c: &str| Error::OAuth { status: 400, oauth: OAuthError::new(c, None, None), retry_after: None };
        assert!(oauth("temporarily_unavailable").is_transient());
        assert!(!oauth("invalid_scope").is_transient());
        for kind in [TransportKind::Timeout, TransportKind::Tls, TransportKind::Connect, TransportKind::Io] {
            assert!(Error::from(TransportError::new(kind)).is_transient(), "{kind:?}");
        }
        assert!(Error::RateLimited { retry_at: Instant::now() }.is_transient());
        assert!(!Error::config("x").is_transient());
    }

    #[test]
    fn display_is_one_line() {
        let e = Error::CredentialsRejected {
            status: 400,
            oauth: Some(OAuthError::new("invalid_client", Some("no\nsuch client"), None)),
        };
        assert_eq!(
            e.to_string(),
            "token endpoint rejected the client credentials (HTTP 400, error=invalid_client: no such client)"
        );
        let limited = Error::RateLimited { retry_at: Instant::now() };
        assert_eq!(
            limited.to_string(),
            "not asking the token endpoint for a new token so soon after the last one"
        );
        assert!(std::error::Error::source(&limited).is_none());
        assert_eq!(limited.retry_after(), None);
    }
}
