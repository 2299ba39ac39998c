//! A configured client: the pure request and response code joined to the
//! transport.

use std::time::{Duration, SystemTime};

use crate::auth::AuthStyle;
use crate::config::Config;
use crate::error::Error;
#[cfg(feature = "jwt")]
use crate::jwt::{ServerTime, Signer};
use crate::request::TokenRequest;
use crate::time::{self, Floor};
use crate::token::Token;
use crate::transport;

/// The longest timeout accepted: longer ones would only hide a hang (and
/// could overflow the clock).
const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// Fetches tokens from one token endpoint with one set of credentials.
///
/// Every call to [`Client::fetch`] asks the server; wrap the client in a
/// [`TokenCache`](crate::TokenCache) to reuse a token until it nears expiry.
///
/// ```no_run
/// let config = cctoken::Config::client_secret_basic("https://auth.example.com/oauth/v2/token", "id", "secret");
/// let client = cctoken::Client::new(config)?;
/// let token = client.fetch()?;
/// println!("valid for {} s", token.lifetime().as_secs());
/// # Ok::<(), cctoken::Error>(())
/// ```
pub struct Client {
    config: Config,
    /// For [`AuthStyle::PrivateKeyJwt`]: signs a new assertion for each request.
    #[cfg(feature = "jwt")]
    signer: Option<Signer>,
    /// Built and checked once, in `new`: the configuration cannot change.
    request: TokenRequest,
    agent: ureq::Agent,
}

impl Client {
    /// Checks `config` (URL policy, control characters, timeouts between
    /// zero and a day, CA files) and prepares the HTTP agent. Sends nothing.
    pub fn new(config: Config) -> Result<Client, Error> {
        let request = config.request()?;
        for (what, timeout) in [("timeout", config.timeout), ("connect timeout", config.connect_timeout)] {
            if timeout.is_zero() || timeout > MAX_TIMEOUT {
                return Err(Error::config(format!("the {what} must be more than zero and at most a day")));
            }
        }
        #[cfg(not(feature = "jwt"))]
        if config.style == AuthStyle::PrivateKeyJwt {
            return Err(Error::config(
                "private_key_jwt needs cctoken's cargo feature jwt, which this build lacks",
            ));
        }
        #[cfg(feature = "jwt")]
        let signer = match (&config.style, &config.signing_key) {
            (AuthStyle::PrivateKeyJwt, Some(key)) => Some(Signer::new(
                key,
                &config.client_id,
                config.audience(),
                config.assertion_key_id.as_deref(),
            )?),
            _ => None,
        };
        let agent = transport::agent(&config)?;
        Ok(Client {
            config,
            #[cfg(feature = "jwt")]
            signer,
            request,
            agent,
        })
    }

    /// Requests a new token, blocking for at most [`Config::timeout`] (twice
    /// that for a `private_key_jwt` request that a wrong wall clock got
    /// refused, and that is made again at once: see [`Config::private_key_jwt`]).
    ///
    /// The token's lifetime counts from the moment the request was sent, the
    /// earliest the server could have issued it, so it is never overestimated.
    ///
    /// Logs the outcome and duration of the request (target `cctoken`; see
    /// the crate docs' "Events").
    pub fn fetch(&self) -> Result<Token, Error> {
        #[cfg(feature = "jwt")]
        if let Some(signer) = &self.signer {
            return self.fetch_with_assertion(signer);
        }
        self.exchange(&self.request).0
    }

    /// [`Client::fetch`] with a client assertion from `signer`.
    #[cfg(feature = "jwt")]
    fn fetch_with_assertion(&self, signer: &Signer) -> Result<Token, Error> {
        let server_time = |date: Option<u64>| date.map(|date| ServerTime { date, at: crate::now() });
        let first = signer.assertion()?;
        let (result, date) = self.exchange(&self.request.with_client_assertion(&first.jwt));
        let server = server_time(date);
        let refused = result.as_ref().is_err_and(Error::is_credentials_rejected);
        if !signer.record(&first, server, refused) {
            return result;
        }
        // A refusal that the wall clock explains: one more request at once,
        // on the server's time (whose answer can ask for no further one).
        let second = signer.assertion()?;
        let (result, date) = self.exchange(&self.request.with_client_assertion(&second.jwt));
        signer.record(&second, server_time(date), result.is_err());
        result
    }

    /// Sends `request` and reads the answer: the token or the error, and the
    /// server's clock as its `Date` said (seconds since the Unix epoch).
    fn exchange(&self, request: &TokenRequest) -> (Result<Token, Error>, Option<u64>) {
        let sent_at = crate::now();
        let mut server = None;
        let result = transport::send(&self.agent, &self.config, request).and_then(|received| {
            let response = received.response();
            server = response.date_secs();
            self.config.parse_response(&response, sent_at)
        });
        if result.is_ok() && transport::verified(&self.config) {
            let at = crate::now();
            let (wall, floor) = (time::since_epoch(SystemTime::now()), time::floor_at(at));
            if wall < floor && self.config.agent.is_none() {
                crate::events::clock_behind(wall.as_secs(), floor.as_secs());
            }
            // The server's time, from a token that came over verified TLS,
            // is a floor of the trusted time.
            if let Some(date) = server {
                time::raise(Floor::from_server(date, at, wall, floor));
            }
        }
        crate::events::token_request(self.config.url(), crate::now() - sent_at, &result);
        (result, server)
    }

    /// The configuration this client was built from.
    pub fn config(&self) -> &Config {
        &self.config
    }
}

/// Shows the configuration (itself without secrets or keys).
impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("config", &self.config).finish_non_exhaustive()
    }
}

impl crate::Fetch for Client {
    fn fetch(&mut self) -> Result<Token, Error> {
        Client::fetch(self)
    }
}
