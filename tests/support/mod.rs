//! Loopback HTTP and HTTPS token servers for tests and the demo.
//!
//! Each server listens on 127.0.0.1 on a free port, answers every request
//! with its handler's bytes, records what it received, and stops when
//! dropped. Connections are served one at a time with a 5 s read timeout, so
//! nothing here can hang a test.
#![allow(dead_code)] // each test binary uses a different part

pub mod events;
pub mod faults;

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// One request as the server received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// `POST`, `GET`, …
    pub method: String,
    /// The request target, e.g. `/token`.
    pub path: String,
    /// Header names lower-cased, in the order received.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Recorded {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }
}

type Handler = dyn Fn(&Recorded, &mut dyn Write) -> io::Result<()> + Send + Sync;

pub struct Server {
    addr: SocketAddr,
    scheme: &'static str,
    log: Arc<Mutex<Vec<Recorded>>>,
    connections: Arc<(Mutex<Vec<TlsConnection>>, Condvar)>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// A plain HTTP server answering with `handler`.
    pub fn http(handler: impl Fn(&Recorded) -> Vec<u8> + Send + Sync + 'static) -> Server {
        Server::start(
            None,
            Arc::new(move |request: &Recorded, out: &mut dyn Write| out.write_all(&handler(request))),
        )
    }

    /// A plain HTTP server whose handler writes the answer itself, e.g. a
    /// piece at a time. A write error (the client hung up) ends the exchange.
    pub fn http_writer(
        handler: impl Fn(&Recorded, &mut dyn Write) -> io::Result<()> + Send + Sync + 'static,
    ) -> Server {
        Server::start(None, Arc::new(handler))
    }

    /// An HTTPS server presenting `pki`'s server certificate.
    pub fn https(pki: &TestPki, handler: impl Fn(&Recorded) -> Vec<u8> + Send + Sync + 'static) -> Server {
        Server::https_with_chain(pki.server_chain.clone(), pki.server_key.clone_key(), handler)
    }

    /// An HTTPS server presenting `pki`'s server certificate that requires a
    /// client certificate issued by `clients`' CA (mutual TLS): a client
    /// without one does not get past the handshake.
    pub fn https_mutual(
        pki: &TestPki,
        clients: &ClientPki,
        handler: impl Fn(&Recorded) -> Vec<u8> + Send + Sync + 'static,
    ) -> Server {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots.add(clients.ca_der.clone()).expect("client CA");
        let verifier =
            rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .expect("client verifier");
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_client_cert_verifier(verifier)
            .with_single_cert(pki.server_chain.clone(), pki.server_key.clone_key())
            .expect("server certificate");
        Server::start(
            Some(Arc::new(config)),
            Arc::new(move |request: &Recorded, out: &mut dyn Write| out.write_all(&handler(request))),
        )
    }

    /// An HTTPS server presenting `chain` (leaf first, as sent) with the
    /// leaf's private `key`: a chain made elsewhere, such as one shaped like
    /// a public CA's for measuring what a handshake sends.
    pub fn https_with_chain(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
        handler: impl Fn(&Recorded) -> Vec<u8> + Send + Sync + 'static,
    ) -> Server {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("server certificate");
        Server::start(
            Some(Arc::new(config)),
            Arc::new(move |request: &Recorded, out: &mut dyn Write| out.write_all(&handler(request))),
        )
    }

    fn start(tls: Option<Arc<rustls::ServerConfig>>, handler: Arc<Handler>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let scheme = if tls.is_some() { "https" } else { "http" };
        let (thread_log, thread_stop, thread_connections) = (log.clone(), stop.clone(), connections.clone());
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if thread_stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let _ = serve(stream, tls.as_ref(), &*handler, &thread_log, &thread_connections);
            }
        });
        Server { addr, scheme, log, connections, stop, thread: Some(thread) }
    }

    /// `scheme://127.0.0.1:port{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("{}://127.0.0.1:{}{}", self.scheme, self.addr.port(), path)
    }

    /// `scheme://localhost:port{path}` (the name the test certificate is for).
    pub fn url_localhost(&self, path: &str) -> String {
        format!("{}://localhost:{}{}", self.scheme, self.addr.port(), path)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Everything received so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.log.lock().expect("log").clone()
    }

    /// The first `n` TLS connections this HTTPS server serves, once it has
    /// finished them (a connection is recorded after its answer was sent, so
    /// a client may have its answer first); at most 5 s of waiting.
    pub fn tls_connections(&self, n: usize) -> Vec<TlsConnection> {
        self.wait_tls_connections(n, Duration::from_secs(5))
    }

    /// The TLS connections served so far, once there are at least `n` or
    /// `limit` has passed.
    pub fn wait_tls_connections(&self, n: usize, limit: Duration) -> Vec<TlsConnection> {
        let (list, done) = &*self.connections;
        let list = list.lock().expect("connections");
        let (list, _) = done.wait_timeout_while(list, limit, |list| list.len() < n).expect("connections");
        list.clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr); // wake the accept loop
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One TLS connection an HTTPS test server served: the TLS version agreed
/// (`None` if the handshake did not get that far), whether the client
/// resumed an earlier session, and the TCP payload bytes each way (handshake
/// and records, as a metered link would count them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConnection {
    /// The certificate the client presented (DER), if it presented one.
    pub client_certificate: Option<Vec<u8>>,
    pub version: Option<rustls::ProtocolVersion>,
    pub resumed: bool,
    pub bytes_from_client: u64,
    pub bytes_to_client: u64,
}

/// A stream that counts what passes through it.
struct Counting {
    stream: TcpStream,
    read: u64,
    written: u64,
}

impl Read for Counting {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.stream.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
}

impl Write for Counting {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.stream.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

fn serve(
    stream: TcpStream,
    tls: Option<&Arc<rustls::ServerConfig>>,
    handler: &Handler,
    log: &Mutex<Vec<Recorded>>,
    connections: &(Mutex<Vec<TlsConnection>>, Condvar),
) -> io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    match tls {
        None => exchange(stream, handler, log),
        Some(config) => {
            let conn = rustls::ServerConnection::new(config.clone()).map_err(io::Error::other)?;
            let mut tls = rustls::StreamOwned::new(conn, Counting { stream, read: 0, written: 0 });
            let result = exchange(&mut tls, handler, log);
            tls.conn.send_close_notify();
            let _ = tls.conn.complete_io(&mut tls.sock);
            let (list, done) = connections;
            list.lock().expect("connections").push(TlsConnection {
                client_certificate: tls.conn.peer_certificates().and_then(|c| c.first()).map(|c| c.to_vec()),
                version: tls.conn.protocol_version(),
                resumed: tls.conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed),
                bytes_from_client: tls.sock.read,
                bytes_to_client: tls.sock.written,
            });
            done.notify_all();
            result
        }
    }
}

/// Reads one request, records it, writes the handler's answer.
fn exchange(mut stream: impl Read + Write, handler: &Handler, log: &Mutex<Vec<Recorded>>) -> io::Result<()> {
    let request = read_request(&mut stream)?;
    log.lock().expect("log").push(request.clone());
    handler(&request, &mut stream)?;
    stream.flush()
}

fn read_request(stream: &mut impl Read) -> io::Result<Recorded> {
    let (mut request, length) = read_head(stream)?;
    let mut body = vec![0; length.min(64 * 1024)];
    stream.read_exact(&mut body)?;
    request.body = String::from_utf8_lossy(&body).into_owned();
    Ok(request)
}

/// Reads a request head (at most 64 KiB); returns it, with an empty body,
/// and the `Content-Length` of its body.
pub(crate) fn read_head(stream: &mut impl Read) -> io::Result<(Recorded, usize)> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if buf.len() > 64 * 1024 || stream.read(&mut byte)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let mut lines = head.split("\r\n");
    let mut start = lines.next().unwrap_or_default().split(' ');
    let method = start.next().unwrap_or_default().to_owned();
    let path = start.next().unwrap_or_default().to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    Ok((Recorded { method, path, headers, body: String::new() }, length))
}

/// A complete HTTP/1.1 response with `Content-Length` and `Connection: close`.
pub fn response(status: u16, headers: &[(&str, &str)], body: &str) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n", body.len());
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    out.push_str(body);
    out.into_bytes()
}

/// A 200 JSON token response.
pub fn token_response(token: &str, expires_in: u64) -> Vec<u8> {
    let body = format!(r#"{{"access_token":"{token}","token_type":"Bearer","expires_in":{expires_in}}}"#);
    response(200, &[("Content-Type", "application/json")], &body)
}

/// A test CA and a server certificate it signed for `localhost`, 127.0.0.1
/// and ::1, generated fresh for each test run.
pub struct TestPki {
    /// The CA certificate, PEM.
    pub ca_pem: String,
    server_chain: Vec<CertificateDer<'static>>,
    server_key: PrivateKeyDer<'static>,
}

impl TestPki {
    /// The bytes of the certificate chain the server presents (DER).
    pub fn server_chain_len(&self) -> u64 {
        self.server_chain.iter().map(|c| c.len() as u64).sum()
    }

    pub fn new() -> TestPki {
        TestPki::for_names(&["localhost", "127.0.0.1", "::1"])
    }

    /// A CA and a server certificate for these DNS names or IP addresses.
    pub fn for_names(names: &[&str]) -> TestPki {
        TestPki::issue(names, |_| {})
    }

    /// A fresh CA, and a server certificate it signed for `names` after
    /// `adjust` changed its parameters (validity, say).
    pub fn issue(names: &[&str], adjust: impl FnOnce(&mut rcgen::CertificateParams)) -> TestPki {
        let (ca, ca_key) = test_ca("cctoken test CA");
        let key = rcgen::KeyPair::generate().expect("server key");
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = rcgen::CertificateParams::new(names).expect("server params");
        adjust(&mut params);
        let cert = params.signed_by(&key, &ca, &ca_key).expect("server certificate");
        TestPki {
            ca_pem: ca.pem(),
            server_chain: vec![cert.der().clone()],
            server_key: PrivatePkcs8KeyDer::from(key.serialize_der()).into(),
        }
    }
}

/// A self-signed CA certificate named `name`, and its key.
fn test_ca(name: &str) -> (rcgen::Certificate, rcgen::KeyPair) {
    let key = rcgen::KeyPair::generate().expect("CA key");
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.distinguished_name.push(rcgen::DnType::CommonName, name);
    (params.self_signed(&key).expect("CA certificate"), key)
}

/// A CA for clients and a client certificate it issued, for mutual TLS.
pub struct ClientPki {
    /// The client CA's certificate, which the server trusts.
    pub ca_der: CertificateDer<'static>,
    /// The client's certificate (PEM), for `CN=<name>`, and its key (PKCS#8 PEM).
    pub cert_pem: String,
    pub key_pem: String,
    /// The client's certificate (DER), as the server sees it.
    pub cert_der: Vec<u8>,
}

impl ClientPki {
    pub fn new(name: &str) -> ClientPki {
        let (ca, ca_key) = test_ca("cctoken test client CA");
        let key = rcgen::KeyPair::generate().expect("client key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("client params");
        params.distinguished_name.push(rcgen::DnType::CommonName, name);
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params.signed_by(&key, &ca, &ca_key).expect("client certificate");
        ClientPki {
            ca_der: ca.der().clone(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            cert_der: cert.der().to_vec(),
        }
    }
}

/// `Display`, `Debug`, alternate `Debug`, and the same for every source of
/// `err`: every text in which a secret could leak.
pub fn error_texts(err: &cctoken::Error) -> Vec<String> {
    let mut texts = vec![err.to_string(), format!("{err:?}"), format!("{err:#?}")];
    let mut source = std::error::Error::source(err);
    while let Some(e) = source {
        texts.push(format!("{e:?}"));
        texts.push(e.to_string());
        source = e.source();
    }
    texts
}

/// A loopback listener that accepts TCP connections and never answers: each
/// accepted socket is held open, unread and unwritten, until the listener is
/// dropped. For deadlines: the client connects, sends, and waits forever.
/// At most 16 sockets are held; later connections are closed at once.
pub struct Silent {
    addr: SocketAddr,
    accepted: Arc<(Mutex<usize>, Condvar)>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Silent {
    pub fn start() -> Silent {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let accepted = Arc::new((Mutex::new(0), Condvar::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (thread_accepted, thread_stop) = (accepted.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut held = Vec::new();
            for stream in listener.incoming() {
                if thread_stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                *thread_accepted.0.lock().expect("count") += 1;
                thread_accepted.1.notify_all();
                if held.len() < 16 {
                    held.push(stream);
                }
            }
            // `held` is dropped here: every connection closes with the listener.
        });
        Silent { addr, accepted, stop, thread: Some(thread) }
    }

    /// `http://127.0.0.1:port{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.addr.port(), path)
    }

    /// `https://localhost:port{path}`: a TLS client waits for a ServerHello
    /// that never comes.
    pub fn https_url(&self, path: &str) -> String {
        format!("https://localhost:{}{}", self.addr.port(), path)
    }

    /// How many connections were accepted so far.
    pub fn accepted(&self) -> usize {
        *self.accepted.0.lock().expect("count")
    }

    /// Waits (at most `limit`) until at least `n` connections were accepted;
    /// returns how many were.
    pub fn wait_accepted(&self, n: usize, limit: Duration) -> usize {
        let (count, changed) = &*self.accepted;
        let guard = count.lock().expect("count");
        let (guard, _) = changed.wait_timeout_while(guard, limit, |c| *c < n).expect("count");
        *guard
    }
}

impl Drop for Silent {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr); // wake the accept loop
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A loopback port with nothing listening on it: bound, then released.
pub fn refused_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    listener.local_addr().expect("local addr").port()
}

/// The command that runs binaries built for the target under test, when the
/// tests were cross-compiled: `CCTOKEN_TEST_TARGET` names the target
/// (`scripts/cross-test.sh` and `Cross.toml` set it), and cargo's runner for
/// it, `CARGO_TARGET_<TRIPLE>_RUNNER` (qemu), is the command. `None` natively.
pub fn test_runner() -> Option<Vec<String>> {
    let target = std::env::var("CCTOKEN_TEST_TARGET").ok()?;
    let var = format!("CARGO_TARGET_{}_RUNNER", target.to_uppercase().replace(['-', '.'], "_"));
    let runner = std::env::var(&var).unwrap_or_default();
    let words: Vec<String> = runner.split_whitespace().map(str::to_owned).collect();
    assert!(!words.is_empty(), "CCTOKEN_TEST_TARGET is {target}, but {var} names no runner");
    Some(words)
}

/// A command running `program`, a binary built for the target under test
/// (such as `env!("CARGO_BIN_EXE_fetch_token")`: cargo builds the package's
/// binaries for the target the tests are built for), through [`test_runner`]
/// if there is one.
pub fn target_command(program: impl AsRef<std::ffi::OsStr>) -> std::process::Command {
    match test_runner() {
        Some(words) => {
            let mut command = std::process::Command::new(&words[0]);
            command.args(&words[1..]).arg(program);
            command
        }
        None => std::process::Command::new(program),
    }
}

/// `secs` since the Unix epoch as an HTTP date (RFC 7231 IMF-fixdate), e.g.
/// `Tue, 01 Dec 2026 05:30:00 GMT`: a token server's `Date` header.
pub fn http_date(secs: u64) -> String {
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"]; // 1970-01-01: a Thursday
    const MONTHS: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Days since 1970-01-01 to a civil date, in 400-year eras of 146,097
    // days that start on 1 March (so that the leap day ends a year).
    let z = days + 719_468;
    let (era, doe) = (z / 146_097, z % 146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    let (weekday, month) = (WEEKDAYS[(days % 7) as usize], MONTHS[(month - 1) as usize]);
    let (h, m, s) = (rest / 3600, rest % 3600 / 60, rest % 60);
    format!("{weekday}, {day:02} {month} {year} {h:02}:{m:02}:{s:02} GMT")
}
