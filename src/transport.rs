//! The only module that does I/O: sending a [`TokenRequest`] with ureq.

use std::io;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use ureq::Agent;
use ureq::http::header::{CONTENT_TYPE, DATE, RETRY_AFTER};
use ureq::tls::{Certificate, ClientCert, PemItem, PrivateKey, RootCerts, TlsConfig};

use crate::config::{Config, Proxy};
use crate::error::{Error, TransportError, TransportKind};
use crate::request::TokenRequest;
use crate::response::{HttpResponse, MAX_BODY};
#[cfg(feature = "webpki-roots")]
use crate::roots;

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

/// Builds the agent for `config`: its own, or one with small buffers, the
/// configured roots and rustls' ring provider (unless the process installed
/// another default), so that it needs nothing from ureq's TLS features.
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
    let tls = TlsConfig::builder()
        .root_certs(root_certs(config)?)
        .client_cert(client_cert)
        .unversioned_rustls_crypto_provider(provider)
        .build();
    let agent_config = Agent::config_builder()
        .tls_config(tls)
        .user_agent(concat!("cctoken/", env!("CARGO_PKG_VERSION")))
        // Token exchanges are small: a few hundred bytes each way.
        .input_buffer_size(16 * 1024)
        .output_buffer_size(4 * 1024)
        .max_response_header_size(16 * 1024)
        .max_idle_connections(1)
        .max_idle_connections_per_host(1)
        .proxy(proxy(config)?)
        // What `send` would otherwise set per request: a request-level
        // configuration makes ureq build a new rustls configuration, with an
        // empty session cache, for every connection, so that no handshake
        // could ever be resumed.
        .timeout_global(Some(config.timeout))
        .timeout_connect(Some(config.connect_timeout))
        .max_redirects(0)
        .http_status_as_error(false)
        .build();
    Ok(agent_config.into())
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

/// The client certificate of mutual TLS, checked here as rustls will take
/// it, since ureq panics on a key that rustls refuses.
fn client_cert(config: &Config, provider: &CryptoProvider) -> Result<Option<ClientCert>, Error> {
    let Some((chain_pem, key_pem)) = &config.client_cert else {
        return Ok(None);
    };
    if !is_https(config.url()) {
        return Err(Error::config("a client certificate needs an https:// token URL"));
    }
    let mut chain: Vec<Certificate<'static>> = Vec::new();
    for item in ureq::tls::parse_pem(chain_pem) {
        match item {
            Ok(PemItem::Certificate(cert)) => chain.push(cert),
            Ok(_) => {}
            Err(_) => return Err(Error::config("the client certificate file is not valid PEM")),
        }
    }
    if chain.is_empty() {
        return Err(Error::config("the client certificate file holds no PEM certificate"));
    }
    let key_pem = key_pem.expose();
    let (key_der, Ok(key)) = (private_key_der(key_pem)?, PrivateKey::from_pem(key_pem)) else {
        return Err(Error::config("the client key file holds no PEM private key"));
    };
    let ders = chain.iter().map(|cert| CertificateDer::from(cert.der().to_vec())).collect();
    match CertifiedKey::from_der(ders, key_der, provider) {
        Ok(_) => Ok(Some(ClientCert::new_with_certs(&chain, key))),
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
fn root_certs(config: &Config) -> Result<RootCerts, Error> {
    let mut certs: Vec<Certificate<'static>> = Vec::new();
    for pem in &config.extra_roots_pem {
        let before = certs.len();
        for item in ureq::tls::parse_pem(pem) {
            match item {
                Ok(PemItem::Certificate(cert)) => certs.push(cert),
                Ok(_) => {}
                Err(_) => return Err(Error::config("a CA file is not valid PEM")),
            }
        }
        if certs.len() == before {
            return Err(Error::config("a CA file holds no PEM certificate"));
        }
    }
    if certs.is_empty() && !is_https(config.url()) {
        // Plain http (to loopback, as `Client::new` checked): no handshake, no roots needed.
        return Ok(RootCerts::new_with_certs(&[]));
    }
    if certs.is_empty() {
        return match config.webpki_roots {
            false => Err(Error::config("no trusted roots: webpki roots disabled and no CA given")),
            #[cfg(feature = "webpki-roots")]
            true => Ok(RootCerts::WebPki),
            #[cfg(not(feature = "webpki-roots"))]
            true => Err(Error::config(NO_WEBPKI_ROOTS)),
        };
    }
    #[cfg(feature = "webpki-roots")]
    if config.webpki_roots {
        certs.extend(roots::webpki_certificates());
    }
    Ok(RootCerts::new_with_certs(&certs))
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
    let kind = match &e {
        ureq::Error::BadUri(_) | ureq::Error::RequireHttpsOnly(_) => {
            return Error::config("the token URL is not a valid absolute URL");
        }
        ureq::Error::Timeout(_) => TransportKind::Timeout,
        ureq::Error::Io(io) if io.kind() == io::ErrorKind::TimedOut => TransportKind::Timeout,
        ureq::Error::Tls(_) | ureq::Error::Rustls(_) | ureq::Error::Pem(_) => TransportKind::Tls,
        ureq::Error::Io(io) if is_tls(io) => TransportKind::Tls,
        ureq::Error::HostNotFound | ureq::Error::ConnectionFailed | ureq::Error::ConnectProxyFailed(_) => {
            TransportKind::Connect
        }
        ureq::Error::Io(io) if is_connect(io) => TransportKind::Connect,
        _ => TransportKind::Io,
    };
    TransportError::new(kind).with_cause(e).into()
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

/// rustls reports handshake failures (bad certificate, wrong name) as I/O
/// errors wrapping a `rustls::Error`.
fn is_tls(io: &io::Error) -> bool {
    io.get_ref().is_some_and(|inner| inner.is::<rustls::Error>())
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

    #[cfg(not(feature = "webpki-roots"))]
    use crate::Error;
    use crate::{Client, Config};

    fn https() -> Config {
        Config::client_secret_basic("https://auth.example.com/token", "id", "secret")
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
