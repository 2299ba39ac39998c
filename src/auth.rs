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

/// A private key in PEM, for a client certificate
/// ([`Config::tls_client_auth`](crate::Config::tls_client_auth)) or for
/// signing client assertions ([`Config::private_key_jwt`](crate::Config::private_key_jwt)). Its `Debug`
/// prints `[redacted]`; reading it takes an explicit call to
/// [`PrivateKeyPem::expose`].
///
/// ```
/// let key = cctoken::PrivateKeyPem::new("-----BEGIN PRIVATE KEY-----\n…");
/// assert_eq!(format!("{key:?}"), "PrivateKeyPem([redacted])");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct PrivateKeyPem(Vec<u8>);

impl PrivateKeyPem {
    /// Wraps the PEM text of a private key.
    pub fn new(pem: impl Into<Vec<u8>>) -> Self {
        PrivateKeyPem(pem.into())
    }

    /// The PEM text. Only call this where the key is used.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for PrivateKeyPem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateKeyPem([redacted])")
    }
}

impl From<Vec<u8>> for PrivateKeyPem {
    fn from(pem: Vec<u8>) -> Self {
        PrivateKeyPem(pem)
    }
}

impl From<&str> for PrivateKeyPem {
    fn from(pem: &str) -> Self {
        PrivateKeyPem(pem.as_bytes().to_vec())
    }
}

impl From<String> for PrivateKeyPem {
    fn from(pem: String) -> Self {
        PrivateKeyPem(pem.into_bytes())
    }
}

/// How the client authenticates to the token endpoint.
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
    /// Mutual TLS, RFC 8705's `tls_client_auth` and
    /// `self_signed_tls_client_auth` alike: the client presents its
    /// certificate in the TLS handshake, and the form body carries `client_id`
    /// and no secret. Set by [`Config::tls_client_auth`](crate::Config::tls_client_auth),
    /// which takes the certificate and key.
    TlsClientAuth,
    /// `private_key_jwt` (RFC 7523 §2.2, OpenID Connect Core §9): the form
    /// body carries `client_id` and a client assertion, a JWT the client signs
    /// with its own key for each request, and no secret. Set by
    /// [`Config::private_key_jwt`](crate::Config::private_key_jwt), which
    /// takes the key.
    PrivateKeyJwt,
}
