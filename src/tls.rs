//! TLS for cctoken's own agent: rustls, with the token server's certificate
//! checked at the trusted time ([`crate::trusted_time`]) rather than at a
//! wall clock that may read 1970.
//!
//! ureq 3 builds its rustls configuration itself, with the wall clock as its
//! time and no way to give another; but its transport is a chain of
//! connectors that can be composed. cctoken's chain is ureq's own (an HTTP
//! proxy's CONNECT, then TCP) ending in [`Tls`], which wraps the connection
//! in rustls with a configuration built once per agent, so that its session
//! cache lets a later connection resume. Chain and name are verified as
//! rustls always does; only the time of the check differs.

use std::fmt;
use std::io::{Read, Write};
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use rustls::pki_types::{ServerName, UnixTime};
use rustls::time_provider::TimeProvider;
use rustls::{ClientConfig, ClientConnection, StreamOwned};
use ureq::unversioned::transport::time::{Duration, Instant};
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, Either, LazyBuffers, NextTimeout, Transport, TransportAdapter,
};

/// The trusted time, as rustls asks for it.
#[derive(Debug)]
pub(crate) struct TrustedTime;

impl TimeProvider for TrustedTime {
    fn current_time(&self) -> Option<UnixTime> {
        let since_epoch = crate::trusted_time().duration_since(UNIX_EPOCH).ok()?;
        Some(UnixTime::since_unix_epoch(since_epoch))
    }
}

/// The last connector of the chain: TLS for `https://`, with one rustls
/// configuration for every connection.
pub(crate) struct Tls {
    config: Arc<ClientConfig>,
}

impl Tls {
    pub(crate) fn new(config: ClientConfig) -> Tls {
        Tls { config: Arc::new(config) }
    }
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls").finish_non_exhaustive()
    }
}

impl<In: Transport> Connector<In> for Tls {
    type Out = Either<In, TlsTransport>;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        let Some(transport) = chained else { return Ok(None) };
        if !details.needs_tls() || transport.is_tls() {
            return Ok(Some(Either::A(transport)));
        }
        // `Uri::host` keeps an IPv6 address's brackets; a server name has none.
        let host = details.uri.host().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
        let name = ServerName::try_from(host)
            .map_err(|_| ureq::Error::Tls("the host is not a valid TLS server name"))?
            .to_owned();
        let mut conn = ClientConnection::new(self.config.clone(), name)?;
        let boxed: Box<dyn Transport> = Box::new(transport);
        let mut sock = TransportAdapter::new(boxed, details.current_time.clone());
        sock.set_timeout(remaining(details));
        conn.complete_io(&mut sock)?;
        let buffers =
            LazyBuffers::new(details.config.input_buffer_size(), details.config.output_buffer_size());
        Ok(Some(Either::B(TlsTransport { buffers, stream: StreamOwned { conn, sock } })))
    }
}

/// What is left of the connection's deadline for the handshake: the
/// connection's timeout counts from when ureq set it, before TCP connected.
fn remaining(details: &ConnectionDetails) -> NextTimeout {
    let mut timeout = details.timeout;
    if let (Duration::Exact(after), Instant::Exact(start), Instant::Exact(now)) =
        (timeout.after, details.now, (details.current_time)())
    {
        timeout.after = Duration::Exact(after.saturating_sub(now.saturating_duration_since(start)));
    }
    timeout
}

/// A TLS connection, as ureq reads and writes it.
pub(crate) struct TlsTransport {
    buffers: LazyBuffers,
    stream: StreamOwned<ClientConnection, TransportAdapter>,
}

impl fmt::Debug for TlsTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsTransport").finish_non_exhaustive()
    }
}

impl Transport for TlsTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        self.stream.get_mut().set_timeout(timeout);
        let output = &self.buffers.output()[..amount];
        self.stream.write_all(output)?;
        Ok(())
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        self.stream.get_mut().set_timeout(timeout);
        let input = self.buffers.input_append_buf();
        let amount = self.stream.read(input)?;
        self.buffers.input_appended(amount);
        Ok(amount > 0)
    }

    fn is_open(&mut self) -> bool {
        self.stream.get_mut().get_mut().is_open()
    }

    fn is_tls(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use rustls::pki_types::{PrivatePkcs8KeyDer, ServerName, UnixTime};
    use rustls::time_provider::TimeProvider;
    use rustls::{CertificateError, ClientConfig, ClientConnection, Connection, RootCertStore};
    use rustls::{ServerConfig, ServerConnection};

    use crate::time;

    const DAY: Duration = Duration::from_secs(86_400);

    /// The trusted time for an injected wall clock and floor, as
    /// [`super::TrustedTime`] computes it for the process's.
    #[derive(Debug)]
    struct TestTime {
        wall: SystemTime,
        floor: SystemTime,
    }

    impl TimeProvider for TestTime {
        fn current_time(&self) -> Option<UnixTime> {
            let trusted = time::trusted(self.wall, time::since_epoch(self.floor));
            Some(UnixTime::since_unix_epoch(trusted.duration_since(UNIX_EPOCH).ok()?))
        }
    }

    /// The server's certificate: its validity, whether the CA the client
    /// trusts issued it, and the name the client asks for (it is for
    /// `localhost`).
    struct Cert {
        valid: (SystemTime, SystemTime),
        trusted_ca: bool,
        name: &'static str,
    }

    fn valid(from: SystemTime, to: SystemTime) -> Cert {
        Cert { valid: (from, to), trusted_ca: true, name: "localhost" }
    }

    /// A CA named `name`: a CA of another name, not one of the same name
    /// whose signature does not verify.
    fn ca(name: &str) -> (rcgen::Certificate, rcgen::KeyPair) {
        let key = rcgen::KeyPair::generate().expect("CA key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, name);
        (params.self_signed(&key).expect("CA certificate"), key)
    }

    /// An in-memory handshake between a client configured as cctoken's
    /// agent is (but for its time) and a server presenting `cert`: the
    /// client's error, if any.
    fn handshake(cert: Cert, wall: SystemTime, floor: SystemTime) -> Result<(), rustls::Error> {
        let ((trusted, trusted_key), other) = (ca("trusted CA"), ca("other CA"));
        let (issuer, issuer_key) =
            if cert.trusted_ca { (&trusted, &trusted_key) } else { (&other.0, &other.1) };
        let key = rcgen::KeyPair::generate().expect("server key");
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
        (params.not_before, params.not_after) = (cert.valid.0.into(), cert.valid.1.into());
        let leaf = params.signed_by(&key, issuer, issuer_key).expect("server certificate");

        let ring = || Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        roots.add(trusted.der().clone()).expect("CA certificate parses");
        let client = ClientConfig::builder_with_details(ring(), Arc::new(TestTime { wall, floor }))
            .with_safe_default_protocol_versions()
            .expect("ring supports TLS 1.2 and 1.3")
            .with_root_certificates(roots)
            .with_no_client_auth();
        let server = ServerConfig::builder_with_provider(ring())
            .with_safe_default_protocol_versions()
            .expect("ring supports TLS 1.2 and 1.3")
            .with_no_client_auth()
            .with_single_cert(vec![leaf.der().clone()], PrivatePkcs8KeyDer::from(key.serialize_der()).into())
            .expect("server config");

        let name = ServerName::try_from(cert.name).expect("server name");
        let mut client = Connection::from(ClientConnection::new(Arc::new(client), name)?);
        let mut server = Connection::from(ServerConnection::new(Arc::new(server)).expect("server"));
        for _ in 0..10 {
            if !client.is_handshaking() && !server.is_handshaking() {
                return Ok(());
            }
            transfer(&mut client, &mut server).expect("the server accepts what the client sends");
            transfer(&mut server, &mut client)?;
        }
        panic!("the handshake does not finish");
    }

    /// Moves what `from` has to send into `to`, which processes it.
    fn transfer(from: &mut Connection, to: &mut Connection) -> Result<(), rustls::Error> {
        let mut bytes = Vec::new();
        while from.wants_write() {
            from.write_tls(&mut bytes).expect("write to memory");
        }
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            to.read_tls(&mut rest).expect("read from memory");
            to.process_new_packets()?;
        }
        Ok(())
    }

    #[derive(Debug, PartialEq)]
    enum Outcome {
        Ok,
        NotValidYet,
        Expired,
        UnknownIssuer,
        NotValidForName,
    }

    fn outcome(result: Result<(), rustls::Error>) -> Outcome {
        use CertificateError::*;
        match result {
            Ok(()) => Outcome::Ok,
            Err(rustls::Error::InvalidCertificate(e)) => match e {
                NotValidYet | NotValidYetContext { .. } => Outcome::NotValidYet,
                Expired | ExpiredContext { .. } => Outcome::Expired,
                UnknownIssuer => Outcome::UnknownIssuer,
                NotValidForName | NotValidForNameContext { .. } => Outcome::NotValidForName,
                other => panic!("unexpected certificate error {other:?}"),
            },
            Err(other) => panic!("unexpected error {other:?}"),
        }
    }

    #[test]
    fn certificates_are_checked_at_the_trusted_time() {
        use Outcome::{Expired, NotValidForName, NotValidYet, UnknownIssuer};
        let now = SystemTime::now();
        let (release, hour_ago) = (UNIX_EPOCH + Duration::from_secs(time::RELEASE), now - DAY / 24);
        let (boot, year_slow) = (UNIX_EPOCH + DAY, now - 365 * DAY);
        let current = || valid(now - DAY, now + DAY);
        assert!(now - DAY > release, "the certificate is newer than the release date");
        let cases = [
            ("wall at 1970, a learned floor", current(), boot, hour_ago, Outcome::Ok),
            ("wall at 1970, only the release floor", current(), boot, release, NotValidYet),
            ("wall right", current(), now, release, Outcome::Ok),
            ("wall two hours slow", current(), now - DAY / 12, release, Outcome::Ok),
            ("wall a year slow, a learned floor", current(), year_slow, hour_ago, Outcome::Ok),
            ("wall a year slow, only the release floor", current(), year_slow, release, NotValidYet),
            ("wall two days ahead: used as it is", current(), now + 2 * DAY, now, Expired),
            ("expired, wall at 1970", valid(now - 10 * DAY, now - 2 * DAY), boot, hour_ago, Expired),
            ("not yet valid, wall right", valid(now + 2 * DAY, now + 9 * DAY), now, release, NotValidYet),
            ("another CA", Cert { trusted_ca: false, ..current() }, boot, hour_ago, UnknownIssuer),
            ("wrong name", Cert { name: "example.com", ..current() }, boot, hour_ago, NotValidForName),
        ];
        for (name, cert, wall, floor, expected) in cases {
            assert_eq!(outcome(handshake(cert, wall, floor)), expected, "{name}");
        }
    }
}
