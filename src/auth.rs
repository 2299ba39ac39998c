//! Client credentials and the ways of presenting them to a token endpoint.

use std::fmt;

/// A client secret. Its `Debug` prints `[redacted]`; reading the value takes
/// an explicit call to [`ClientSecret::expose`].
///
/// ```
/// let s = cctoken::ClientSecret::new("hunter2");
/// assert_eq!(format!("{s:?}"), "ClientSecret([redacted])");
/// assert_eq!(s.expose(), "hunter2");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct ClientSecret(String);

impl ClientSecret {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        ClientSecret(secret.into())
    }

    /// The secret itself. Only call this where it is sent.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientSecret([redacted])")
    }
}

impl From<String> for ClientSecret {
    fn from(s: String) -> Self {
        ClientSecret(s)
    }
}

impl From<&str> for ClientSecret {
    fn from(s: &str) -> Self {
        ClientSecret(s.to_owned())
    }
}

/// How the client id and secret are sent to the token endpoint.
///
/// The style is always chosen explicitly: cctoken never tries one style and
/// then another, which would send the secret twice to a server that answered
/// the first attempt with an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthStyle {
    /// `client_secret_basic` as RFC 6749 §2.3.1 specifies it:
    /// `Authorization: Basic base64(urlencode(id) ":" urlencode(secret))`.
    Basic,
    /// HTTP Basic of the raw UTF-8 id and secret, without form-urlencoding
    /// them first: `Authorization: Basic base64(id ":" secret)`. This is what
    /// NFleet documents, and what servers that do not decode the parts expect.
    /// Differs from [`AuthStyle::Basic`] only when the id or secret contains a
    /// character that form-urlencoding changes.
    BasicRaw,
    /// `client_secret_post`: `client_id` and `client_secret` in the form body,
    /// no `Authorization` header.
    Post,
}
