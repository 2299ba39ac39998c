//! The only module that does I/O: sending a [`TokenRequest`] with ureq.

use std::io;
use std::sync::Arc;

use ureq::Agent;
use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};

use crate::config::Config;
use crate::error::Error;
use crate::request::TokenRequest;
use crate::roots;

/// The most of a response body that is read. Token responses are a few
/// hundred bytes; a JWT with many claims a few KiB.
pub const MAX_BODY: u64 = 64 * 1024;

/// A response as read off the wire, with the headers the parser needs.
pub(crate) struct Received {
    pub(crate) status: u16,
    pub(crate) content_type: Option<String>,
    pub(crate) retry_after: Option<String>,
    pub(crate) date: Option<String>,
    pub(crate) body: Vec<u8>,
}

/// Builds the agent for `config`: its own, or one with small buffers and the
/// configured roots.
pub(crate) fn agent(config: &Config) -> Result<Agent, Error> {
    if let Some(agent) = &config.agent {
        return Ok(agent.clone());
    }
    let tls = TlsConfig::builder().root_certs(root_certs(config)?).build();
    let agent_config = Agent::config_builder()
        .tls_config(tls)
        .user_agent(concat!("cctoken/", env!("CARGO_PKG_VERSION")))
        // Token exchanges are small: a few hundred bytes each way.
        .input_buffer_size(16 * 1024)
        .output_buffer_size(4 * 1024)
        .max_response_header_size(16 * 1024)
        .max_idle_connections(1)
        .max_idle_connections_per_host(1)
        .build();
    Ok(agent_config.into())
}

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
    if config.webpki_roots {
        if certs.is_empty() {
            return Ok(RootCerts::WebPki);
        }
        certs.extend(roots::webpki_certificates());
    } else if certs.is_empty() {
        return Err(Error::config("no trusted roots: webpki roots disabled and no CA given"));
    }
    Ok(RootCerts::new_with_certs(&certs))
}

/// Sends `request` through `agent`, within the configured deadline, without
/// following redirects, reading at most [`MAX_BODY`] bytes of the answer.
pub(crate) fn send(agent: &Agent, config: &Config, request: &TokenRequest) -> Result<Received, Error> {
    let mut builder = agent
        .post(request.url())
        .config()
        .timeout_global(Some(config.timeout))
        .timeout_connect(Some(config.connect_timeout))
        .max_redirects(0)
        .http_status_as_error(false);
    if !request.url().get(..8).is_some_and(|s| s.eq_ignore_ascii_case("https://")) {
        // Plain http is only allowed to loopback: never let a proxy from the
        // environment (HTTP_PROXY, ALL_PROXY) carry the secret elsewhere.
        builder = builder.proxy(None);
    }
    let mut builder = builder.build();
    for (name, value) in request.headers() {
        builder = builder.header(*name, value);
    }
    let response = builder.send(request.body()).map_err(from_ureq)?;
    let status = response.status().as_u16();
    let header = |name| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let content_type = header("content-type");
    let retry_after = header("retry-after");
    let date = header("date");
    let body = match response.into_body().with_config().limit(MAX_BODY).read_to_vec() {
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
    Ok(Received { status, content_type, retry_after, date, body })
}

fn from_ureq(e: ureq::Error) -> Error {
    match e {
        ureq::Error::Timeout(_) => Error::Timeout,
        ureq::Error::Io(ref io) if io.kind() == io::ErrorKind::TimedOut => Error::Timeout,
        ureq::Error::Tls(_) | ureq::Error::Rustls(_) | ureq::Error::Pem(_) => Error::Tls(Arc::new(e)),
        ureq::Error::Io(ref io) if is_tls(io) => Error::Tls(Arc::new(e)),
        ureq::Error::BadUri(_) | ureq::Error::RequireHttpsOnly(_) => {
            Error::config("the token URL is not a valid absolute URL")
        }
        e => Error::Transport(Arc::new(e)),
    }
}

/// rustls reports handshake failures (bad certificate, wrong name) as I/O
/// errors wrapping a `rustls::Error`.
fn is_tls(io: &io::Error) -> bool {
    io.get_ref().is_some_and(|inner| inner.is::<rustls::Error>())
}
