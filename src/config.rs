//! What a client needs to know: the endpoint, the credentials, and limits.

use std::fmt;
use std::time::Duration;

use crate::auth::{AuthStyle, ClientSecret, PrivateKeyPem};

/// NFleet's identity service, the default base URL of [`Config::nfleet`].
pub const NFLEET_IDENTITY_URL: &str = "https://id.nfleet.fi";

/// Everything a [`Client`](crate::Client) needs: where the token endpoint is,
/// who the client is, how to authenticate, and the limits of a fetch.
///
/// Start from the constructor for your server's style, then adjust with the
/// setters; each setter documents its default. Nothing is checked until
/// [`Client::new`](crate::Client::new), which refuses a bad configuration
/// with [`Error::Config`](crate::Error::Config).
///
/// ```
/// use std::time::Duration;
/// use cctoken::Config;
///
/// let config = Config::client_secret_basic("https://auth.example.com/oauth/v2/token", "my-id", "my-secret")
///     .scope("telemetry:write")
///     .param("audience", "https://api.example.com")
///     .timeout(Duration::from_secs(15));
/// assert_eq!(config.url(), "https://auth.example.com/oauth/v2/token");
/// assert!(!format!("{config:?}").contains("my-secret"));
/// ```
#[derive(Clone)]
pub struct Config {
    /// The token endpoint's URL.
    pub(crate) url: String,
    /// NFleet's identity GUID, part of `url`: checked when the request is built.
    pub(crate) nfleet_identity: Option<String>,
    pub(crate) style: AuthStyle,
    pub(crate) client_id: String,
    pub(crate) client_secret: ClientSecret,
    /// The client certificate chain (PEM) and its key, for mutual TLS.
    pub(crate) client_cert: Option<(Vec<u8>, PrivateKeyPem)>,
    /// The key that signs client assertions, and the assertions' `aud` (the
    /// token URL unless set) and `kid`.
    pub(crate) signing_key: Option<PrivateKeyPem>,
    pub(crate) assertion_audience: Option<String>,
    pub(crate) assertion_key_id: Option<String>,
    pub(crate) scopes: Vec<String>,
    pub(crate) params: Vec<(String, String)>,
    pub(crate) default_lifetime: Duration,
    pub(crate) max_lifetime: Duration,
    pub(crate) timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) webpki_roots: bool,
    pub(crate) extra_roots_pem: Vec<Vec<u8>>,
    pub(crate) proxy: Proxy,
    #[cfg(feature = "ureq")]
    pub(crate) agent: Option<ureq::Agent>,
}

/// Which proxy, if any, carries token requests to an `https://` token
/// endpoint. Plain `http://` (allowed only to a loopback host) always goes
/// direct.
///
/// Through a proxy, TLS still runs end to end: the proxy sees the token
/// endpoint's host and port (`CONNECT host:443`), never the credentials or the
/// token.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Proxy {
    /// Connect to the token endpoint directly, whatever the environment says.
    #[default]
    Direct,
    /// The proxy the environment names, as curl reads it: `ALL_PROXY`, then
    /// `HTTPS_PROXY`, then `HTTP_PROXY` (each also in lower case), with the
    /// hosts in `NO_PROXY` reached directly. Direct when none is set.
    FromEnvironment,
    /// This proxy: `http://host:port`, or `http://user:password@host:port`
    /// with the user and password percent-encoded.
    Url(String),
}

/// Shows the settings, not the secret, the client key, the values of extra
/// parameters (they may carry credentials too) or the CA files' bytes.
impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let param_names: Vec<&str> = self.params.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("Config")
            .field("url", &self.url())
            .field("style", &self.style)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret)
            .field("client_certificate", &self.client_cert.is_some())
            .field("signing_key", &self.signing_key.is_some())
            .field("assertion_audience", &self.assertion_audience)
            .field("assertion_key_id", &self.assertion_key_id)
            .field("scopes", &self.scopes)
            .field("param_names", &param_names)
            .field("default_lifetime", &self.default_lifetime)
            .field("max_lifetime", &self.max_lifetime)
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("webpki_roots", &self.webpki_roots)
            .field("extra_root_files", &self.extra_roots_pem.len())
            // A proxy URL may hold a password.
            .field("proxy", &std::mem::discriminant(&self.proxy))
            .field("own_agent", &self.has_own_agent())
            .finish()
    }
}

impl Config {
    fn new(url: String, style: AuthStyle, id: &str, secret: ClientSecret) -> Self {
        Config {
            url,
            nfleet_identity: None,
            style,
            client_id: id.to_owned(),
            client_secret: secret,
            client_cert: None,
            signing_key: None,
            assertion_audience: None,
            assertion_key_id: None,
            scopes: Vec::new(),
            params: Vec::new(),
            default_lifetime: Duration::from_secs(600),
            max_lifetime: Duration::from_secs(24 * 3600),
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            webpki_roots: true,
            extra_roots_pem: Vec::new(),
            proxy: Proxy::Direct,
            #[cfg(feature = "ureq")]
            agent: None,
        }
    }

    /// NFleet's identity service: `POST https://id.nfleet.fi/<identity_guid>/token`
    /// with the client key and secret as raw HTTP Basic credentials
    /// ([`AuthStyle::BasicRaw`]).
    ///
    /// ```
    /// let config = cctoken::Config::nfleet("8d7a0d8e-41a6-4c1c-9d8e-3f2b1a7c6e5d", "key", "secret");
    /// assert_eq!(config.url(), "https://id.nfleet.fi/8d7a0d8e-41a6-4c1c-9d8e-3f2b1a7c6e5d/token");
    /// ```
    pub fn nfleet(identity_guid: &str, client_key: &str, client_secret: impl Into<ClientSecret>) -> Self {
        Self::nfleet_at(NFLEET_IDENTITY_URL, identity_guid, client_key, client_secret)
    }

    /// Like [`Config::nfleet`], against another base URL (staging, a test
    /// server): `POST <base_url>/<identity_guid>/token`.
    pub fn nfleet_at(
        base_url: &str,
        identity_guid: &str,
        client_key: &str,
        client_secret: impl Into<ClientSecret>,
    ) -> Self {
        let base = base_url.trim_end_matches('/');
        let url = format!("{base}/{identity_guid}/token");
        let config = Self::new(url, AuthStyle::BasicRaw, client_key, client_secret.into());
        Config { nfleet_identity: Some(identity_guid.to_owned()), ..config }
    }

    /// An RFC 6749 server using `client_secret_basic` ([`AuthStyle::Basic`]):
    /// the id and secret form-urlencoded, then sent as HTTP Basic credentials.
    pub fn client_secret_basic(
        token_url: &str,
        client_id: &str,
        client_secret: impl Into<ClientSecret>,
    ) -> Self {
        Self::new(token_url.to_owned(), AuthStyle::Basic, client_id, client_secret.into())
    }

    /// A server using `client_secret_post` ([`AuthStyle::Post`]): `client_id`
    /// and `client_secret` in the form body.
    pub fn client_secret_post(
        token_url: &str,
        client_id: &str,
        client_secret: impl Into<ClientSecret>,
    ) -> Self {
        Self::new(token_url.to_owned(), AuthStyle::Post, client_id, client_secret.into())
    }

    /// A server that authenticates clients by certificate, with mutual TLS
    /// (RFC 8705 `tls_client_auth`, or `self_signed_tls_client_auth`):
    /// [`AuthStyle::TlsClientAuth`]. The client presents `cert_chain_pem`
    /// (its certificate first, then any intermediates, as PEM `CERTIFICATE`
    /// blocks) with `key_pem`, the certificate's private key, and the form
    /// body carries `client_id` and no secret. The token URL must be
    /// `https://`.
    ///
    /// The key is PEM, unencrypted: PKCS#8 (`PRIVATE KEY`), PKCS#1
    /// (`RSA PRIVATE KEY`) or SEC1 (`EC PRIVATE KEY`); RSA of at least 2048
    /// bits, ECDSA on P-256 or P-384, or Ed25519. [`Client::new`](crate::Client::new)
    /// refuses with [`Error::Config`](crate::Error::Config) an encrypted key,
    /// a public key, a key that does not match the certificate, or a file
    /// that holds no certificate or key.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let config = cctoken::Config::tls_client_auth(
    ///     "https://auth.example.com/oauth2/token",
    ///     "unit-0042",
    ///     std::fs::read("/etc/unit/client.crt")?,
    ///     std::fs::read("/etc/unit/client.key")?,
    /// );
    /// # Ok(()) }
    /// ```
    pub fn tls_client_auth(
        token_url: &str,
        client_id: &str,
        cert_chain_pem: impl Into<Vec<u8>>,
        key_pem: impl Into<PrivateKeyPem>,
    ) -> Self {
        let config =
            Self::new(token_url.to_owned(), AuthStyle::TlsClientAuth, client_id, ClientSecret::new(""));
        Config { client_cert: Some((cert_chain_pem.into(), key_pem.into())), ..config }
    }

    /// A server that authenticates clients by a signed JWT, `private_key_jwt`
    /// (RFC 7523 §2.2, OpenID Connect Core §9): [`AuthStyle::PrivateKeyJwt`].
    /// For each token request the client signs a new assertion with `key_pem`
    /// and sends it as `client_assertion`, with `client_id` and no secret.
    /// [`Client`](crate::Client) signs with the cargo feature `jwt` (not
    /// default); without it, `Client::new` refuses this configuration, and
    /// another transport can sign with [`Config::signing_key`] and
    /// [`TokenRequest::with_client_assertion`](crate::TokenRequest::with_client_assertion).
    ///
    /// The assertion: header `alg` RS256 (an RSA key of at least 2048 bits)
    /// or ES256 (an ECDSA key on P-256, signed as the fixed-size r ‖ s that
    /// JWS requires), `typ` JWT, and `kid` if [`Config::assertion_key_id`]
    /// gave one; claims `iss` and `sub` the client id, `aud` the token URL
    /// (or [`Config::assertion_audience`]), a random `jti`, `iat`, and `exp`
    /// 60 seconds later. The key is PEM, unencrypted: PKCS#8 (`PRIVATE KEY`),
    /// PKCS#1 (`RSA PRIVATE KEY`) or SEC1 (`EC PRIVATE KEY`).
    /// [`Client::new`](crate::Client::new) refuses with
    /// [`Error::Config`](crate::Error::Config) an encrypted key, a public key,
    /// RSA under 2048 bits, another curve than P-256, and a file without a key.
    ///
    /// `iat` comes from the wall clock, unless it reads earlier than the
    /// floor of the [trusted time](crate::trusted_time) (a unit without a
    /// real-time clock, before NTP), or the server refused an assertion while
    /// its `Date` was more than 30 seconds away from the assertion's `iat`:
    /// then from the later of that floor and the server's last `Date`,
    /// carried forward on cctoken's clock. Such a refusal is followed
    /// at once by one more request, on the server's time: that fetch may take
    /// up to twice [`Config::timeout`].
    ///
    /// ```no_run
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let config = cctoken::Config::private_key_jwt(
    ///     "https://auth.example.com/realms/fleet/protocol/openid-connect/token",
    ///     "unit-0042",
    ///     std::fs::read("/etc/unit/assertion.key")?,
    /// )
    /// .assertion_key_id("unit-0042-2026");
    /// # Ok(()) }
    /// ```
    pub fn private_key_jwt(token_url: &str, client_id: &str, key_pem: impl Into<PrivateKeyPem>) -> Self {
        let config =
            Self::new(token_url.to_owned(), AuthStyle::PrivateKeyJwt, client_id, ClientSecret::new(""));
        Config { signing_key: Some(key_pem.into()), ..config }
    }

    /// The `aud` claim of client assertions ([`Config::private_key_jwt`]).
    /// Defaults to the token URL, as RFC 7523 §3 asks; some servers want
    /// their issuer identifier instead (draft-ietf-oauth-rfc7523bis).
    pub fn assertion_audience(mut self, audience: &str) -> Self {
        self.assertion_audience = Some(audience.to_owned());
        self
    }

    /// The `kid` header of client assertions ([`Config::private_key_jwt`]):
    /// which of the client's registered keys signed it. Defaults to none.
    pub fn assertion_key_id(mut self, key_id: &str) -> Self {
        self.assertion_key_id = Some(key_id.to_owned());
        self
    }

    /// Changes how the credentials are sent. Defaults to the constructor's
    /// style; use [`AuthStyle::BasicRaw`] for a `client_secret_basic` server
    /// that does not form-decode the Basic credentials.
    pub fn auth_style(mut self, style: AuthStyle) -> Self {
        self.style = style;
        self
    }

    /// Adds one scope. All scopes are sent space-separated in a single
    /// `scope` parameter. Defaults to none (no `scope` parameter).
    pub fn scope(mut self, scope: &str) -> Self {
        self.scopes.push(scope.to_owned());
        self
    }

    /// Adds an extra form parameter, e.g. `audience` or `resource`, sent
    /// after the standard ones. Defaults to none.
    ///
    /// The protocol's own parameters cannot be set this way:
    /// [`Config::request`] (and so [`Client::new`](crate::Client::new))
    /// refuses a parameter named `grant_type`, `scope`, `client_id` or
    /// `client_secret` with [`Error::Config`](crate::Error::Config). Use
    /// [`Config::scope`] for scopes, and the constructor for the grant type
    /// and the credentials.
    pub fn param(mut self, name: &str, value: &str) -> Self {
        self.params.push((name.to_owned(), value.to_owned()));
        self
    }

    /// The lifetime assumed when a response has no `expires_in`. Defaults to
    /// 10 minutes: a token is never cached forever.
    pub fn default_lifetime(mut self, lifetime: Duration) -> Self {
        self.default_lifetime = lifetime;
        self
    }

    /// The longest lifetime believed; a larger `expires_in` is cut to this.
    /// Defaults to 24 hours.
    pub fn max_lifetime(mut self, lifetime: Duration) -> Self {
        self.max_lifetime = lifetime;
        self
    }

    /// The deadline for one whole fetch: DNS, connect, TLS, sending, and
    /// reading the response. Defaults to 30 seconds.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The deadline for establishing the TCP connection, within
    /// [`Config::timeout`]. Defaults to 10 seconds.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Trusts the CA certificates in `pem` (one or more `CERTIFICATE` blocks)
    /// in addition to the built-in Mozilla roots, e.g. a private PKI or a
    /// TLS-inspecting proxy. May be called more than once. Defaults to none.
    pub fn add_root_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.extra_roots_pem.push(pem.into());
        self
    }

    /// Whether the built-in Mozilla roots (webpki-roots) are trusted.
    /// Defaults to `true`; with `false`, only the roots added by
    /// [`Config::add_root_pem`] are.
    pub fn webpki_roots(mut self, trust: bool) -> Self {
        self.webpki_roots = trust;
        self
    }

    /// Which proxy carries token requests to an `https://` endpoint.
    /// Defaults to [`Proxy::Direct`]: a proxy set in the environment for other
    /// programs is not used unless asked for with [`Proxy::FromEnvironment`].
    /// A proxy URL that cannot be used is an [`Error::Config`](crate::Error::Config)
    /// from [`Client::new`](crate::Client::new).
    ///
    /// ```
    /// let config = cctoken::Config::client_secret_basic("https://auth.example.com/token", "id", "secret")
    ///     .proxy(cctoken::Proxy::Url("http://10.0.0.1:3128".to_owned()));
    /// ```
    pub fn proxy(mut self, proxy: Proxy) -> Self {
        self.proxy = proxy;
        self
    }

    /// Sends through this agent instead of one cctoken builds, to share its
    /// connection pool, proxy and TLS settings. The agent's own TLS roots and
    /// proxy apply; [`Config::add_root_pem`], [`Config::webpki_roots`] and
    /// [`Config::proxy`] are then ignored. cctoken still sets, per request,
    /// the deadline, no redirects, `Accept-Encoding: identity`, and HTTP
    /// statuses returned as responses. Defaults to none.
    ///
    /// The agent's TLS checks certificates at the wall clock, as ureq's
    /// does: the [trusted time](crate::trusted_time), which cctoken's own
    /// agent uses, cannot be given to it. The `Date` of its verified token
    /// responses still raises the trusted time's floor.
    ///
    /// This is the one setting that names a ureq type, and it exists only
    /// with the `ureq` feature.
    #[cfg(feature = "ureq")]
    pub fn agent(mut self, agent: ureq::Agent) -> Self {
        self.agent = Some(agent);
        self
    }

    fn has_own_agent(&self) -> bool {
        #[cfg(feature = "ureq")]
        return self.agent.is_some();
        #[cfg(not(feature = "ureq"))]
        false
    }

    /// The token endpoint's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The client id (NFleet: the client key).
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// How the credentials are sent.
    pub fn style(&self) -> AuthStyle {
        self.style
    }

    /// The key of [`Config::private_key_jwt`], for another transport to sign
    /// assertions with.
    pub fn signing_key(&self) -> Option<&PrivateKeyPem> {
        self.signing_key.as_ref()
    }

    /// The `aud` of client assertions: [`Config::assertion_audience`], or the
    /// token URL.
    #[cfg_attr(not(feature = "jwt"), allow(dead_code))]
    pub(crate) fn audience(&self) -> &str {
        self.assertion_audience.as_deref().unwrap_or(&self.url)
    }

    /// The client certificate chain and key of [`Config::tls_client_auth`],
    /// for another transport to present.
    pub fn client_certificate(&self) -> Option<(&[u8], &PrivateKeyPem)> {
        self.client_cert.as_ref().map(|(chain, key)| (chain.as_slice(), key))
    }

    /// The deadline for one whole fetch ([`Config::timeout`]): another
    /// transport should honour it too.
    pub fn fetch_timeout(&self) -> Duration {
        self.timeout
    }
}
