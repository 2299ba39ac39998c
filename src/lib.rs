//! Blocking OAuth 2.0 client-credentials tokens for small devices.
//!
//! `cctoken` fetches an access token from a token endpoint with a client id
//! and secret (RFC 6749 §4.4), and caches it until shortly before it expires.
//! It is made for on-device agents and synchronous daemons on constrained
//! Linux systems (fleet telematics units, say) that call machine-to-machine
//! APIs directly: no async runtime, no background threads, no locks, and a
//! small dependency tree (see the README's "Dependencies").
//!
//! # Token endpoints
//!
//! | constructor | server | credentials |
//! | --- | --- | --- |
//! | [`Config::nfleet`] | NFleet identity, `POST https://id.nfleet.fi/<identity_guid>/token` | raw HTTP Basic ([`AuthStyle::BasicRaw`]) |
//! | [`Config::client_secret_basic`] | RFC 6749 `client_secret_basic` | HTTP Basic of the form-urlencoded id and secret ([`AuthStyle::Basic`]) |
//! | [`Config::client_secret_post`] | `client_secret_post` (NXTsoft, …) | `client_id` / `client_secret` in the form body ([`AuthStyle::Post`]) |
//! | [`Config::tls_client_auth`] | RFC 8705 `tls_client_auth`, `self_signed_tls_client_auth` | a client certificate in the TLS handshake, `client_id` in the form body ([`AuthStyle::TlsClientAuth`]) |
//! | [`Config::private_key_jwt`] | RFC 7523 `private_key_jwt` | a JWT signed with the client's key for each request, with `client_id`, in the form body ([`AuthStyle::PrivateKeyJwt`]) |
//!
//! Every request is `grant_type=client_credentials` (plus `scope` and any
//! extra parameters) as `application/x-www-form-urlencoded`, with
//! `Accept: application/json`. The style is always explicit: cctoken never
//! probes one style and then another.
//!
//! NFleet:
//!
//! ```no_run
//! # #[cfg(feature = "ureq")] fn main() -> Result<(), cctoken::Error> {
//! let config = cctoken::Config::nfleet("8d7a0d8e-41a6-4c1c-9d8e-3f2b1a7c6e5d", "client-key", "client-secret");
//! let mut cache = cctoken::TokenCache::new(cctoken::Client::new(config)?);
//! let authorization = cache.token()?.authorization(); // "Bearer ey…"
//! # Ok(()) }
//! # #[cfg(not(feature = "ureq"))] fn main() {}
//! ```
//!
//! `client_secret_basic`:
//!
//! ```no_run
//! # #[cfg(feature = "ureq")] fn main() -> Result<(), cctoken::Error> {
//! let config = cctoken::Config::client_secret_basic("https://api.example.com/oauth/v2/token", "id", "secret");
//! let token = cctoken::Client::new(config)?.fetch()?;
//! # Ok(()) }
//! # #[cfg(not(feature = "ureq"))] fn main() {}
//! ```
//!
//! `client_secret_post`, with a scope:
//!
//! ```no_run
//! # #[cfg(feature = "ureq")] fn main() -> Result<(), cctoken::Error> {
//! let config = cctoken::Config::client_secret_post("https://auth.nxtsoft.com/oauth2/token", "id", "secret")
//!     .scope("transactions/post");
//! let token = cctoken::Client::new(config)?.fetch()?;
//! # Ok(()) }
//! # #[cfg(not(feature = "ureq"))] fn main() {}
//! ```
//!
//! # Using the token, and a 401 from the API
//!
//! Send [`Token::authorization`] as the `Authorization` header. If the API
//! answers 401, the token was revoked or expired early: [`TokenCache::call`]
//! invalidates it and tries once more with a new token. With ureq (any
//! version: cctoken's `ureq` feature implements [`Unauthorized`] for ureq 3's
//! results, and a closure can return the status for any other stack):
//!
//! ```no_run
//! # #[cfg(feature = "ureq")] fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = cctoken::Config::client_secret_basic("https://auth.example.com/token", "id", "secret");
//! let mut cache = cctoken::TokenCache::new(cctoken::Client::new(config)?);
//! let agent = ureq::Agent::new_with_defaults();
//! // The outer `?` is the token's error, the inner one the API call's.
//! let response = cache.call(|bearer| {
//!     agent.get("https://api.example.com/v1/vehicles").header("Authorization", bearer).call()
//! })??;
//! # let _ = response; Ok(()) }
//! # #[cfg(not(feature = "ureq"))] fn main() {}
//! ```
//!
//! # Errors
//!
//! Every failure is an [`Error`]. [`Error::CredentialsRejected`] means the
//! id, secret (or NFleet identity) are wrong and retrying will not help;
//! [`Error::is_transient`] tells which failures are worth retrying later.
//!
//! # Security
//!
//! - [`ClientSecret`] and [`AccessToken`] print `[redacted]` in `Debug`;
//!   reading them takes an explicit call. No error holds the secret, the
//!   token, the request or the response body, and server-supplied text in
//!   errors is stripped of control characters and cut short.
//! - The token URL must be `https://`; plain `http://` is allowed only to a
//!   loopback host. Control characters in any value are refused before
//!   anything is sent.
//! - Redirects are never followed (the secret would go to another host);
//!   response bodies are capped at [`MAX_BODY`]; every fetch has a deadline;
//!   no proxy is used unless configured ([`Config::proxy`]).
//!
//! # Time
//!
//! A token's expiry is an [`Instant`](std::time::Instant) on cctoken's clock
//! ([`now`]), counted from when its request was sent. That clock keeps
//! counting while the system is suspended (std's `Instant` does not, on
//! Linux), and the wall clock, which on a device without a real-time clock
//! may be years off until NTP answers, never decides whether a token is
//! fresh. The cache replaces a token at a random point of its lifetime,
//! keeps serving it while a refresh fails, and backs off from a failing
//! token server; [`Policy`] documents every number.
//!
//! The two uses of the wall clock that a wrong clock would break, checking
//! the token server's certificate and timing a client assertion, go by the
//! [`trusted_time`]: the wall clock, unless it reads earlier than a time
//! cctoken knows has passed (the last verified token response's `Date`, a
//! time given to [`raise_time_floor`], the state file's, this release's
//! date). A unit whose clock reads 1970 still gets its token.
//!
//! # State that survives a restart
//!
//! An agent restarts on every update, configuration push and crash; a
//! `StateFile` keeps its cache's token and failure gate across restarts,
//! so that it neither requests a token it already had nor asks again a
//! server that told it to wait (or rejected its credentials). It needs the
//! cargo feature `state-file`, off by default for now because of the code
//! it adds to `fetch_token` (the README's "State that survives a restart"
//! has the figure); it is to be on by default once it is smaller.
//!
//! ```no_run
//! # #[cfg(all(feature = "ureq", feature = "state-file"))] fn main() -> Result<(), cctoken::Error> {
//! let config = cctoken::Config::client_secret_basic("https://auth.example.com/token", "id", "secret");
//! let state = cctoken::StateFile::new("/run/my-agent/token.state", &config);
//! let mut cache = cctoken::TokenCache::new(cctoken::Client::new(config)?).with_state_file(state);
//! let authorization = cache.token()?.authorization();
//! # Ok(()) }
//! # #[cfg(not(all(feature = "ureq", feature = "state-file")))] fn main() {}
//! ```
//!
//! The file holds the token (mode 0600), never the secret; it is keyed by
//! the configuration, and its times are on the boot clock of the boot that
//! wrote it. A bad file is ignored, with a warning. Processes sharing it
//! request a token one at a time. `src/state.rs` is the only module that
//! touches the file system; on systems other than Linux and Android, the
//! state file does nothing.
//!
//! # Events
//!
//! cctoken logs through the [`log`](https://docs.rs/log) facade, target
//! `cctoken`, one line per event: each token request of a [`Client`] with its
//! outcome and duration (info, or warn on failure), and from a
//! [`TokenCache`] a token request and why (debug), a token served while its
//! refresh fails (warn), the failure gate shutting with its reason and
//! length (warn), a call refused without a request (debug), an
//! invalidation after an API 401 (info), a token whose server's
//! certificate was checked at the [`trusted_time`] because the wall clock
//! reads earlier (warn), and a state file that was ignored, or could not be
//! saved or locked (warn). No event holds the
//! secret, a token or a body. A program without a `log` logger can take the same events
//! with [`set_event_sink`]. [`TokenCache::stats`] counts the same things for
//! a health endpoint.
//!
//! # Without an HTTP stack
//!
//! With `default-features = false`, cctoken is its core alone: request
//! building ([`Config::request`]), response parsing
//! ([`Config::parse_response`]), tokens, the cache and its policy, and the
//! errors, with neither ureq nor rustls nor ring, and no C compiler needed to
//! cross-compile. [`TokenCache`] drives any [`Fetch`] implementation, so a
//! unit's own HTTP stack (libcurl, a modem's HTTP commands, a test fake)
//! sends the requests; `examples/other_transport.rs` shows one, over a plain
//! `TcpStream`. The `ureq`
//! feature (on by default) adds [`Client`], the built-in transport, and the
//! `fetch_token` CLI; `webpki-roots` (on by default) adds Mozilla's roots;
//! `state-file` (off by default, with or without `ureq`) adds the state file
//! and `fetch_token --cache`.
//!
//! # Not in scope
//!
//! Other grants (authorization code, device flow, refresh tokens), JWT
//! validation or client assertions (`private_key_jwt`), mutual TLS, and
//! thread-safe sharing: wrap a [`TokenCache`] in a `Mutex` yourself if you must.
#![deny(unsafe_code)]
#![deny(missing_docs)]

mod auth;
mod cache;
#[cfg(feature = "ureq")]
mod client;
#[allow(unsafe_code)] // one clock_gettime call, with its safety argument
mod clock;
mod config;
mod error;
mod events;
#[cfg(feature = "jwt")]
mod jwt;
mod policy;
mod request;
mod response;
#[cfg(feature = "state-file")]
mod sha256;
#[cfg(feature = "state-file")]
mod state;
mod stats;
mod time;
#[cfg(feature = "ureq")]
mod tls;
mod token;
#[cfg(feature = "ureq")]
mod transport;

pub use auth::{AuthStyle, ClientSecret, PrivateKeyPem};

/// The current instant on cctoken's clock, which keeps counting while the
/// system is suspended (`CLOCK_BOOTTIME` on Linux and Android; elsewhere
/// `Instant::now()`).
///
/// Use it, not `Instant::now()`, for every instant you hand to cctoken
/// ([`TokenCache::token_at`], [`Token::new`] in your own [`Fetch`]) or
/// compare with one it returns ([`Token::expires_at`], `retry_at`). On
/// Linux, std's `Instant` stops while the system sleeps: on a unit that was
/// suspended for two hours with the ignition off, `Instant::now()` is two
/// hours behind this clock, and a token that expired during the sleep would
/// look valid by it.
///
/// ```
/// let start = cctoken::now();
/// assert!(cctoken::now() >= start);
/// ```
pub fn now() -> std::time::Instant {
    clock::now()
}
pub use cache::{Decision, Fetch, TokenCache, Unauthorized};
#[cfg(feature = "ureq")]
pub use client::Client;
pub use config::{Config, NFLEET_IDENTITY_URL, Proxy};
pub use error::{Error, OAuthError, TransportError, TransportKind};
pub use events::{Event, set_event_sink};
pub use policy::Policy;
pub use request::TokenRequest;
pub use response::{HttpResponse, MAX_BODY};
#[cfg(feature = "state-file")]
pub use state::StateFile;
pub use stats::Stats;
pub use time::{raise_time_floor, trusted_time};
pub use token::{AccessToken, Token};

/// The public types that a daemon moves between threads or shares are
/// `Send`, `Sync` and `Clone` (a `TokenCache` is `Send` when its fetcher is).
const _: () = {
    const fn shareable<T: Send + Sync + Clone>() {}
    shareable::<AccessToken>();
    shareable::<ClientSecret>();
    shareable::<PrivateKeyPem>();
    shareable::<Config>();
    shareable::<Error>();
    shareable::<OAuthError>();
    shareable::<Policy>();
    shareable::<Stats>();
    shareable::<Token>();
    shareable::<TokenRequest>();
    shareable::<TransportError>();
    shareable::<HttpResponse<'static>>();
    const fn sendable<T: Send>() {}
    sendable::<TokenCache<fn() -> Result<Token, Error>>>();
    #[cfg(feature = "state-file")]
    sendable::<StateFile>();
    #[cfg(feature = "ureq")]
    sendable::<Client>();
};
