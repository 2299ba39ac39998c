//! The only module that does I/O: sending a [`TokenRequest`] with ureq.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{ClientConfig, RootCertStore};
use ureq::Agent;
use ureq::http::header::{CONTENT_TYPE, DATE, RETRY_AFTER};
#[cfg(not(feature = "webpki-roots"))]
use ureq::tls::RootCerts;
use ureq::unversioned::resolver::DefaultResolver;
use ureq::unversioned::transport::{ConnectProxyConnector, Connector, TcpConnector};

use crate::config::{Config, Proxy};
use crate::error::{Error, TransportError, TransportKind};
use crate::request::TokenRequest;
use crate::response::{HttpResponse, MAX_BODY};
use crate::time;
use crate::tls::{Tls, TrustedTime};

/// A response as read off the wire: the status and headers, and the body.
pub(crate) struct Received {
    head: ureq::http::response::Parts,
    body: Vec<u8>,
}

impl Received {
    /// The parts of the response that the parser looks at.
    pub(crate) fn response(&self) -> HttpResponse<'_> {
        let header = |name| self.head.headers.get(name).and_then(|v| v.to_str().ok());
        HttpResponse::new(self.head.status.as_u16(), &self.body)
            .content_type(header(CONTENT_TYPE))
            .retry_after(header(RETRY_AFTER))
            .date(header(DATE))
    }
}

/// Builds the agent for `config`: its own, or cctoken's, with small
/// buffers, the configured roots and client certificate, rustls' ring
/// provider (unless the process installed another default), and
/// certificates checked at the trusted time (see [`crate::tls`]).
pub(crate) fn agent(config: &Config) -> Result<Agent, Error> {
    if let Some(agent) = &config.agent {
        if config.client_cert.is_some() {
            return Err(Error::config(
                "Config::agent and a client certificate: cctoken presents one with its own agent only; \
                 give your agent the certificate (ureq's TlsConfig::client_cert) and use another style",
            ));
        }
        #[cfg(not(feature = "webpki-roots"))]
        check_caller_agent(config, agent)?;
        return Ok(agent.clone());
    }
    let provider = CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()));
    // The client certificate is checked first: its problems are the caller's to fix whatever the roots.
    let client_cert = client_cert(config, &provider)?;
    let builder = ClientConfig::builder_with_details(provider, Arc::new(TrustedTime))
        .with_safe_default_protocol_versions()
        .map_err(|_| Error::config("the process's rustls crypto provider offers no TLS version"))?
        .with_root_certificates(root_store(config)?);
    let tls = match client_cert {
        None => builder.with_no_client_auth(),
        Some(certified) => builder.with_client_cert_resolver(Arc::new(SingleCertAndKey::from(certified))),
    };
    let agent_config = Agent::config_builder()
        .user_agent(concat!("cctoken/", env!("CARGO_PKG_VERSION")))
        // Token exchanges are small: a few hundred bytes each way.
        .input_buffer_size(16 * 1024)
        .output_buffer_size(4 * 1024)
        .max_response_header_size(16 * 1024)
        .max_idle_connections(1)
        .max_idle_connections_per_host(1)
        .proxy(proxy(config)?)
        // What `send` sets per request for a caller's agent: set once here,
        // where they cost nothing per request.
        .timeout_global(Some(config.timeout))
        .timeout_connect(Some(config.connect_timeout))
        .max_redirects(0)
        .http_status_as_error(false)
        .build();
    let connector =
        ().chain(ConnectProxyConnector::default()).chain(TcpConnector::default()).chain(Tls::new(tls));
    Ok(Agent::with_parts(agent_config, connector, DefaultResolver::default()))
}

/// The configured proxy, for `https://` token URLs only: plain `http://` goes
/// to loopback, where a proxy has no business (and must not carry the secret
/// in clear text elsewhere).
fn proxy(config: &Config) -> Result<Option<ureq::Proxy>, Error> {
    if !is_https(config.url()) {
        return Ok(None);
    }
    match &config.proxy {
        Proxy::Direct => Ok(None),
        Proxy::FromEnvironment => Ok(ureq::Proxy::try_from_env()),
        Proxy::Url(url) => match ureq::Proxy::new(url) {
            // ureq reaches HTTPS and SOCKS proxies only with features cctoken does not enable.
            Ok(proxy) if proxy.protocol() == ureq::ProxyProtocol::Http => Ok(Some(proxy)),
            _ => Err(Error::config("the proxy must be an http://host:port URL")),
        },
    }
}

/// The client certificate of mutual TLS and its key, checked as rustls
/// takes them.
fn client_cert(config: &Config, provider: &CryptoProvider) -> Result<Option<CertifiedKey>, Error> {
    let Some((chain_pem, key_pem)) = &config.client_cert else {
        return Ok(None);
    };
    if !is_https(config.url()) {
        return Err(Error::config("a client certificate needs an https:// token URL"));
    }
    let chain = CertificateDer::pem_slice_iter(chain_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| Error::config("the client certificate file is not valid PEM"))?;
    if chain.is_empty() {
        return Err(Error::config("the client certificate file holds no PEM certificate"));
    }
    let key = private_key_der(key_pem.expose())?;
    match CertifiedKey::from_der(chain, key, provider) {
        Ok(certified) => Ok(Some(certified)),
        Err(rustls::Error::InconsistentKeys(_)) => {
            Err(Error::config("the client key does not match the client certificate"))
        }
        Err(rustls::Error::InvalidCertificate(_)) => {
            Err(Error::config("the client certificate cannot be parsed"))
        }
        Err(_) => Err(Error::config(
            "the client key cannot be used: it must be RSA of at least 2048 bits, ECDSA on P-256 or \
             P-384, or Ed25519",
        )),
    }
}

/// The first private key in `pem`, for a client certificate or a client
/// assertion; an encrypted key (PKCS#8's `ENCRYPTED PRIVATE KEY`, or
/// OpenSSL's `Proc-Type: 4,ENCRYPTED`) or a public key, which would otherwise
/// read as no key at all, is named as such. Nothing of the file is quoted.
pub(crate) fn private_key_der(pem: &[u8]) -> Result<PrivateKeyDer<'static>, Error> {
    let contains = |needle: &[u8]| pem.windows(needle.len()).any(|w| w == needle);
    if contains(b"ENCRYPTED") {
        return Err(Error::config(
            "the client key is encrypted: give it unencrypted (openssl pkey -in KEY -out KEY.plain), \
             on a file only the agent can read",
        ));
    }
    if contains(b"PUBLIC KEY-----") {
        return Err(Error::config("the client key file holds a public key, not the private key"));
    }
    PrivateKeyDer::from_pem_slice(pem)
        .map_err(|_| Error::config("the client key file holds no PEM private key"))
}

/// The configured roots: the CA files, plus Mozilla's unless turned off.
fn root_store(config: &Config) -> Result<RootCertStore, Error> {
    let mut store = RootCertStore::empty();
    for pem in &config.extra_roots_pem {
        let before = store.len();
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|_| Error::config("a CA file is not valid PEM"))?;
            store
                .add(cert)
                .map_err(|_| Error::config("a CA file holds a certificate that cannot be parsed"))?;
        }
        if store.len() == before {
            return Err(Error::config("a CA file holds no PEM certificate"));
        }
    }
    if store.is_empty() && !is_https(config.url()) {
        // Plain http (to loopback, as `Client::new` checked): no handshake, no roots needed.
        return Ok(store);
    }
    match config.webpki_roots {
        #[cfg(feature = "webpki-roots")]
        true => store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        #[cfg(not(feature = "webpki-roots"))]
        true if store.is_empty() => return Err(Error::config(NO_WEBPKI_ROOTS)),
        false if store.is_empty() => {
            return Err(Error::config("no trusted roots: webpki roots disabled and no CA given"));
        }
        _ => {}
    }
    Ok(store)
}

#[cfg(not(feature = "webpki-roots"))]
const NO_WEBPKI_ROOTS: &str =
    "no trusted roots: cctoken was built without its webpki-roots feature; add a CA with add_root_pem";

/// Without webpki-roots, ureq has neither its roots nor a crypto provider,
/// and panics at the first TLS handshake of an agent that relies on them:
/// refuse such an agent up front instead.
#[cfg(not(feature = "webpki-roots"))]
fn check_caller_agent(config: &Config, agent: &Agent) -> Result<(), Error> {
    if !is_https(config.url()) {
        return Ok(());
    }
    let tls = agent.config().tls_config();
    if matches!(tls.root_certs(), RootCerts::WebPki) && !tls.disable_verification() {
        return Err(Error::config(
            "the agent trusts ureq's webpki roots, which this build of cctoken leaves out \
             (feature webpki-roots): give its TlsConfig root_certs",
        ));
    }
    if tls.unversioned_rustls_crypto_provider().is_none() && CryptoProvider::get_default().is_none() {
        return Err(Error::config(
            "the agent has no rustls crypto provider, which this build of ureq does not pick \
             (feature webpki-roots): give its TlsConfig one, or install a process default",
        ));
    }
    Ok(())
}

/// Whether a response to `config`'s request arrived over TLS that verified
/// the server: `https://`, and not a caller's agent that skips verification.
pub(crate) fn verified(config: &Config) -> bool {
    is_https(config.url())
        && !config.agent.as_ref().is_some_and(|agent| agent.config().tls_config().disable_verification())
}

fn is_https(url: &str) -> bool {
    url.get(..8).is_some_and(|s| s.eq_ignore_ascii_case("https://"))
}

/// Sends `request` through `agent`, within the configured deadline, without
/// following redirects, reading at most [`MAX_BODY`] bytes of the answer.
pub(crate) fn send(agent: &Agent, config: &Config, request: &TokenRequest) -> Result<Received, Error> {
    let mut builder = agent.post(request.url());
    if config.agent.is_some() {
        // A caller's agent: its settings are the caller's, so cctoken's limits
        // are set on this request. (ureq then resumes TLS sessions only if the
        // agent's own configuration was built by an earlier request of its own.)
        let mut limits = builder
            .config()
            .timeout_global(Some(config.timeout))
            .timeout_connect(Some(config.connect_timeout))
            .max_redirects(0)
            .http_status_as_error(false);
        if !is_https(request.url()) {
            // Plain http is only allowed to loopback: never let the agent's
            // proxy (from HTTP_PROXY, say) carry the secret elsewhere.
            limits = limits.proxy(None);
        }
        builder = limits.build();
    }
    for (name, value) in request.headers() {
        builder = builder.header(*name, value.as_str());
    }
    let response = builder.send(request.body()).map_err(from_ureq)?;
    let (head, mut body) = response.into_parts();
    let status = head.status.as_u16();
    let body = match body.with_config().limit(MAX_BODY).read_to_vec() {
        Ok(body) => body,
        // A token cannot be cut short, but an error status means what it
        // says whatever page comes with it (a 401 with a huge HTML page is
        // still a rejection): classify it without the body.
        Err(ureq::Error::BodyExceedsLimit(_)) if !(200..300).contains(&status) => Vec::new(),
        Err(ureq::Error::BodyExceedsLimit(_)) => {
            return Err(Error::InvalidResponse { status, reason: "body larger than 64 KiB" });
        }
        Err(e) => return Err(from_ureq(e)),
    };
    Ok(Received { head, body })
}

fn from_ureq(e: ureq::Error) -> Error {
    classify(e, time::since_epoch(SystemTime::now()), time::floor_at(crate::now()))
}

/// The error that `e` amounts to, with the wall clock reading `wall` and
/// the trusted floor at `floor`.
fn classify(e: ureq::Error, wall: Duration, floor: Duration) -> Error {
    let kind = match &e {
        ureq::Error::BadUri(_) | ureq::Error::RequireHttpsOnly(_) => {
            return Error::config("the token URL is not a valid absolute URL");
        }
        ureq::Error::Timeout(_) => TransportKind::Timeout,
        ureq::Error::Io(io) if io.kind() == io::ErrorKind::TimedOut => TransportKind::Timeout,
        _ if wall < floor && rustls_error(&e).is_some_and(is_not_valid_yet) => {
            let tls = rustls_error(&e).map(ToString::to_string).unwrap_or_default();
            let cause = WrongClock { wall: wall.as_secs(), floor: floor.as_secs(), tls };
            return TransportError::new(TransportKind::Clock).with_cause(cause).into();
        }
        ureq::Error::Tls(_) | ureq::Error::Rustls(_) | ureq::Error::Pem(_) => TransportKind::Tls,
        ureq::Error::Io(_) if rustls_error(&e).is_some() => TransportKind::Tls,
        ureq::Error::HostNotFound | ureq::Error::ConnectionFailed | ureq::Error::ConnectProxyFailed(_) => {
            TransportKind::Connect
        }
        ureq::Error::Io(io) if is_connect(io) => TransportKind::Connect,
        _ => TransportKind::Io,
    };
    TransportError::new(kind).with_cause(e).into()
}

/// A certificate that is not valid yet at the time it was checked at,
/// while the wall clock reads earlier than a time known to have passed.
#[derive(Debug)]
struct WrongClock {
    wall: u64,
    floor: u64,
    /// What rustls said.
    tls: String,
}

impl fmt::Display for WrongClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "it reads {}, earlier than {}, which has passed; the token server's certificate is not \
             valid yet even then ({}): set the clock (NTP, GPS, the modem's network time) or give \
             cctoken the time (cctoken::raise_time_floor)",
            time::utc(self.wall),
            time::utc(self.floor),
            self.tls
        )
    }
}

impl std::error::Error for WrongClock {}

/// rustls' error in `e`: rustls reports handshake failures (bad
/// certificate, wrong name) as I/O errors that wrap it.
fn rustls_error(e: &ureq::Error) -> Option<&rustls::Error> {
    match e {
        ureq::Error::Rustls(tls) => Some(tls),
        ureq::Error::Io(io) => io.get_ref()?.downcast_ref::<rustls::Error>(),
        _ => None,
    }
}

/// Whether `e` is a certificate that is not valid yet. (One that expired
/// before a time known to have passed has expired, whatever the clock.)
fn is_not_valid_yet(e: &rustls::Error) -> bool {
    use rustls::CertificateError::{NotValidYet, NotValidYetContext};
    matches!(e, rustls::Error::InvalidCertificate(NotValidYet | NotValidYetContext { .. }))
}

/// The I/O errors of a connection that was never made. A name that does not
/// resolve comes from the standard library's resolver as an error of no
/// particular kind, known only by its message.
fn is_connect(io: &io::Error) -> bool {
    use io::ErrorKind::*;
    matches!(
        io.kind(),
        ConnectionRefused | HostUnreachable | NetworkUnreachable | AddrNotAvailable | NotFound
    ) || io.to_string().starts_with("failed to lookup address information")
}

#[cfg(test)]
mod tests {
    #[test]
    fn transport_failures_get_their_kinds() {
        use super::{TransportKind, from_ureq};
        use std::io;
        let cases = [
            (ureq::Error::HostNotFound, TransportKind::Connect),
            (
                ureq::Error::Io(io::Error::other("failed to lookup address information: nope")),
                TransportKind::Connect,
            ),
            (ureq::Error::Io(io::ErrorKind::ConnectionRefused.into()), TransportKind::Connect),
            (ureq::Error::Io(io::ErrorKind::TimedOut.into()), TransportKind::Timeout),
            (ureq::Error::Io(io::ErrorKind::ConnectionReset.into()), TransportKind::Io),
            (ureq::Error::Tls("no common protocol"), TransportKind::Tls),
            (ureq::Error::Io(io::Error::other(rustls::Error::HandshakeNotComplete)), TransportKind::Tls),
            (ureq::Error::BodyStalled, TransportKind::Io),
        ];
        for (error, kind) in cases {
            let text = error.to_string();
            assert_eq!(from_ureq(error).transport_kind(), Some(kind), "{text}");
        }
    }

    #[test]
    fn a_certificate_not_valid_yet_while_the_wall_clock_is_below_the_floor_is_the_clock() {
        use super::{TransportKind, classify};
        use rustls::CertificateError::{Expired, NotValidYet, UnknownIssuer};
        use std::io;
        use std::time::Duration;

        let tls = |e| rustls::Error::InvalidCertificate(e);
        let (wall, floor) = (Duration::from_secs(86_400), Duration::from_secs(crate::time::RELEASE));
        for error in
            [ureq::Error::Io(io::Error::other(tls(NotValidYet))), ureq::Error::Rustls(tls(NotValidYet))]
        {
            let e = classify(error, wall, floor);
            assert_eq!(e.transport_kind(), Some(TransportKind::Clock), "{e}");
            assert_eq!(
                e.to_string(),
                "the device clock is wrong: it reads 1970-01-02 00:00:00 UTC, earlier than 2026-11-30 \
                 00:00:00 UTC, which has passed; the token server's certificate is not valid yet even \
                 then (invalid peer certificate: NotValidYet): set the clock (NTP, GPS, the modem's \
                 network time) or give cctoken the time (cctoken::raise_time_floor)"
            );
            assert!(e.is_transient());
        }
        let kind = |error, wall| classify(error, wall, floor).transport_kind();
        let not_yet = || ureq::Error::Rustls(tls(NotValidYet));
        assert_eq!(kind(not_yet(), floor), Some(TransportKind::Tls), "the wall clock at the floor");
        assert_eq!(kind(not_yet(), floor * 2), Some(TransportKind::Tls), "the wall clock past it");
        let expired = ureq::Error::Rustls(tls(Expired));
        assert_eq!(
            kind(expired, wall),
            Some(TransportKind::Tls),
            "expired before a time known to have passed"
        );
        let untrusted = ureq::Error::Io(io::Error::other(tls(UnknownIssuer)));
        assert_eq!(kind(untrusted, wall), Some(TransportKind::Tls), "not about validity");
    }

    #[cfg(not(feature = "webpki-roots"))]
    use crate::Error;
    use crate::{Client, Config};

    fn https() -> Config {
        Config::client_secret_basic("https://auth.example.com/token", "id", "secret")
    }

    #[test]
    fn only_verified_https_teaches_the_time() {
        use super::verified;
        use ureq::tls::TlsConfig;

        assert!(verified(&https()));
        assert!(!verified(&Config::client_secret_basic("http://127.0.0.1:9/token", "id", "secret")));
        let skipping = TlsConfig::builder().disable_verification(true).build();
        let agent = ureq::Agent::from(ureq::Agent::config_builder().tls_config(skipping).build());
        assert!(!verified(&https().agent(agent)), "a caller's agent that skips verification");
    }

    #[cfg(feature = "webpki-roots")]
    #[test]
    fn the_default_roots_are_mozillas() {
        assert!(Client::new(https()).is_ok());
        assert!(Client::new(https().agent(ureq::Agent::new_with_defaults())).is_ok());
    }

    /// Without the feature, what would make ureq panic at the first
    /// handshake is a configuration error at `Client::new`.
    #[cfg(not(feature = "webpki-roots"))]
    #[test]
    fn without_webpki_roots_a_config_relying_on_them_is_refused_at_new() {
        let err = Client::new(https()).unwrap_err();
        match &err {
            Error::Config(msg) => {
                assert!(msg.contains("webpki-roots") && msg.contains("add_root_pem"), "{msg}")
            }
            other => panic!("{other:?}"),
        }
        let err = Client::new(https().agent(ureq::Agent::new_with_defaults())).unwrap_err();
        assert!(matches!(&err, Error::Config(msg) if msg.contains("webpki roots")), "{err:?}");
    }

    #[cfg(not(feature = "webpki-roots"))]
    #[test]
    fn without_webpki_roots_a_caller_agent_needs_roots_and_a_provider() {
        use std::sync::Arc;
        use ureq::tls::{RootCerts, TlsConfig};

        let agent = |tls: TlsConfig| ureq::Agent::from(ureq::Agent::config_builder().tls_config(tls).build());
        let roots = || RootCerts::new_with_certs(&[]);
        let err = Client::new(https().agent(agent(TlsConfig::builder().root_certs(roots()).build())));
        // Unless this process installed a default provider (no test here does).
        assert!(matches!(&err, Err(Error::Config(msg)) if msg.contains("crypto provider")), "{err:?}");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls =
            TlsConfig::builder().root_certs(roots()).unversioned_rustls_crypto_provider(provider).build();
        assert!(Client::new(https().agent(agent(tls))).is_ok());
        // Plain http to loopback needs no TLS at all.
        let http = Config::client_secret_basic("http://127.0.0.1:9/token", "id", "secret");
        assert!(Client::new(http.agent(ureq::Agent::new_with_defaults())).is_ok());
    }
}
