//! TLS trust, deadlines, redirects, size limits and the URL policy, against
//! loopback servers only.

#![cfg(feature = "ureq")]

mod support;

use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use cctoken::{Client, Config, Error, MAX_BODY, Proxy, Token, TransportKind};
use support::{Server, Silent, TestPki, refused_port, response, token_response};

/// Slack for the scheduler on a loaded two-core machine.
const MARGIN: Duration = Duration::from_secs(1);
const SHORT: Duration = Duration::from_millis(500);

fn basic(url: &str) -> Config {
    Config::client_secret_basic(url, "id", "secret")
}

fn fetch(config: Config) -> Result<Token, Error> {
    Client::new(config).expect("valid config").fetch()
}

/// Runs `f`, checks it took at least most of `deadline` and at most
/// `deadline` + [`MARGIN`], and returns its result.
fn timed<T>(deadline: Duration, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let out = f();
    let took = start.elapsed();
    assert!(took >= deadline.mul_f32(0.9), "gave up early, after {took:?} of {deadline:?}");
    assert!(took <= deadline + MARGIN, "took {took:?}, deadline {deadline:?}");
    out
}

// ---- TLS ------------------------------------------------------------------

#[test]
fn a_certificate_from_an_untrusted_ca_is_a_tls_error() {
    let pki = TestPki::new();
    let other = TestPki::new();
    let server = Server::https(&pki, |_| token_response("T", 60));
    let err = fetch(basic(&server.url_localhost("/token")).add_root_pem(other.ca_pem.clone())).unwrap_err();
    assert_eq!(err.transport_kind(), Some(TransportKind::Tls), "{err:?}");
    assert!(err.is_transient());
    // With only the built-in Mozilla roots, the test CA is unknown too.
    if cfg!(feature = "webpki-roots") {
        let err = fetch(basic(&server.url_localhost("/token"))).unwrap_err();
        assert_eq!(err.transport_kind(), Some(TransportKind::Tls), "{err:?}");
    }
    assert!(server.requests().is_empty(), "no request got past the handshake");
}

#[test]
fn a_certificate_for_another_name_is_a_tls_error() {
    let pki = TestPki::for_names(&["auth.example.com"]);
    let server = Server::https(&pki, |_| token_response("T", 60));
    for url in [server.url_localhost("/token"), server.url("/token")] {
        let err = fetch(basic(&url).add_root_pem(pki.ca_pem.clone())).unwrap_err();
        assert_eq!(err.transport_kind(), Some(TransportKind::Tls), "{url}: {err:?}");
    }
    assert!(server.requests().is_empty(), "no request got past the handshake");
}

#[test]
fn only_the_added_ca_is_trusted_when_webpki_roots_are_off() {
    let pki = TestPki::new();
    let server = Server::https(&pki, |_| token_response("T", 60));
    let config = basic(&server.url_localhost("/token")).webpki_roots(false).add_root_pem(pki.ca_pem.clone());
    assert_eq!(fetch(config).expect("token").access_token().secret(), "T");
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn every_added_ca_file_is_trusted() {
    let pki = TestPki::new();
    let other = TestPki::new();
    let server = Server::https(&pki, |_| token_response("T", 60));
    let config = basic(&server.url_localhost("/token"))
        .add_root_pem(other.ca_pem.clone())
        .add_root_pem(pki.ca_pem.as_bytes().to_vec());
    assert_eq!(fetch(config).expect("token").access_token().secret(), "T");
}

#[test]
fn a_ca_file_without_a_certificate_is_a_config_error_at_new() {
    let key_only = rcgen::KeyPair::generate().expect("key").serialize_pem();
    let bad_base64 = "-----BEGIN CERTIFICATE-----\nnot*base64!\n-----END CERTIFICATE-----\n".to_owned();
    for pem in ["".to_owned(), "just some text\n".to_owned(), key_only, bad_base64] {
        let err = Client::new(basic("https://auth.example.com/token").add_root_pem(pem.clone())).unwrap_err();
        match &err {
            Error::Config(msg) => assert!(msg.contains("PEM"), "{msg}"),
            other => panic!("{pem:?}: {other:?}"),
        }
        assert!(!err.is_transient());
    }
}

#[test]
fn no_roots_at_all_is_a_config_error_at_new() {
    let err = Client::new(basic("https://auth.example.com/token").webpki_roots(false)).unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err:?}");
}

// ---- Deadlines ------------------------------------------------------------

#[test]
fn a_server_that_never_answers_times_out_within_the_deadline() {
    let silent = Silent::start();
    let err = timed(SHORT, || fetch(basic(&silent.url("/token")).timeout(SHORT))).unwrap_err();
    assert_eq!(err.transport_kind(), Some(TransportKind::Timeout), "{err:?}");
    assert!(err.is_transient());
    assert_eq!(silent.wait_accepted(1, Duration::from_secs(5)), 1, "the connection was accepted");
}

#[test]
fn a_tls_handshake_that_never_completes_times_out() {
    let pki = TestPki::new();
    let silent = Silent::start();
    let config = basic(&silent.https_url("/token")).add_root_pem(pki.ca_pem.clone()).timeout(SHORT);
    let err = timed(SHORT, || fetch(config)).unwrap_err();
    assert_eq!(err.transport_kind(), Some(TransportKind::Timeout), "{err:?}");
    assert_eq!(silent.wait_accepted(1, Duration::from_secs(5)), 1);
}

/// A server that sends `head` and then `body` one byte every 50 ms: each read
/// makes progress, so only a deadline for the whole fetch stops it. At most
/// 100 bytes are dripped (5 s), and a write error (the client hung up) ends it.
fn dripping(head: &'static [u8], body: &'static [u8]) -> Server {
    Server::http_writer(move |_, out| {
        out.write_all(head)?;
        for byte in body.iter().take(100) {
            out.write_all(&[*byte])?;
            out.flush()?;
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    })
}

#[test]
fn a_slow_body_hits_the_deadline_for_the_whole_fetch() {
    let server = dripping(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", &[b' '; 100]);
    let err = timed(SHORT, || fetch(basic(&server.url("/token")).timeout(SHORT))).unwrap_err();
    assert_eq!(err.transport_kind(), Some(TransportKind::Timeout), "{err:?}");
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn slow_headers_hit_the_deadline_for_the_whole_fetch() {
    let server = dripping(b"HTTP/1.1 200 OK\r\nX-Slow: ", &[b'a'; 100]);
    let err = timed(SHORT, || fetch(basic(&server.url("/token")).timeout(SHORT))).unwrap_err();
    assert_eq!(err.transport_kind(), Some(TransportKind::Timeout), "{err:?}");
}

/// Linux drops SYNs to a listener whose accept queue is full, so a connect to
/// it hangs: only the connect deadline, much shorter than the whole one,
/// can end it.
#[cfg(target_os = "linux")]
#[test]
fn the_connect_deadline_is_shorter_than_the_whole_one() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let addr = listener.local_addr().expect("addr");
    let mut queued = Vec::new();
    let full = (0..1024).any(|_| match TcpStream::connect_timeout(&addr, Duration::from_millis(100)) {
        Ok(stream) => {
            queued.push(stream);
            false
        }
        Err(_) => true,
    });
    assert!(full, "the accept queue never filled after {} connections", queued.len());

    let connect = Duration::from_millis(300);
    let config =
        basic(&format!("http://{addr}/token")).timeout(Duration::from_secs(5)).connect_timeout(connect);
    let err = timed(connect, || fetch(config)).unwrap_err();
    assert_eq!(err.transport_kind(), Some(TransportKind::Timeout), "{err:?}");
}

#[test]
fn a_refused_connection_is_a_transport_error() {
    let url = format!("http://127.0.0.1:{}/token", refused_port());
    let start = Instant::now();
    let err = fetch(basic(&url).timeout(Duration::from_secs(5))).unwrap_err();
    assert_eq!(err.transport_kind(), Some(TransportKind::Connect), "{err:?}");
    assert!(err.is_transient());
    assert!(start.elapsed() < Duration::from_secs(2), "refused at once, not timed out");
}

// ---- Redirects ------------------------------------------------------------

fn assert_redirect_not_followed(config: impl Fn(&str) -> Config) {
    for status in [301, 302, 303, 307, 308] {
        let target = Server::http(|_| token_response("T-from-the-redirect", 60));
        let location = target.url("/token");
        let server = Server::http(move |_| response(status, &[("Location", &location)], ""));
        let err = fetch(config(&server.url("/token"))).unwrap_err();
        assert!(matches!(err, Error::HttpStatus { status: s, .. } if s == status), "{status}: {err:?}");
        assert_eq!(server.requests().len(), 1, "{status}");
        assert!(target.requests().is_empty(), "{status}: the redirect was followed");
    }
}

#[test]
fn redirects_are_not_followed() {
    assert_redirect_not_followed(basic);
}

#[test]
fn redirects_are_not_followed_through_a_caller_agent() {
    // A default agent follows up to 10 redirects and turns 4xx/5xx into errors;
    // cctoken's per-request settings override both.
    assert_redirect_not_followed(|url| basic(url).agent(ureq::Agent::new_with_defaults()));
    let server = Server::http(|_| response(401, &[], ""));
    let err = fetch(basic(&server.url("/token")).agent(ureq::Agent::new_with_defaults())).unwrap_err();
    assert!(matches!(err, Error::CredentialsRejected { status: 401, .. }), "{err:?}");
}

#[test]
fn the_deadline_applies_through_a_caller_agent() {
    let silent = Silent::start();
    let config = basic(&silent.url("/token")).agent(ureq::Agent::new_with_defaults()).timeout(SHORT);
    let err = timed(SHORT, || fetch(config)).unwrap_err();
    assert_eq!(err.transport_kind(), Some(TransportKind::Timeout), "{err:?}");
}

// ---- Size limits ----------------------------------------------------------

/// A 200 JSON token response whose body is exactly `len` bytes.
fn token_body_of(len: usize) -> String {
    let json = r#"{"access_token":"T","expires_in":60}"#;
    format!("{json}{}", " ".repeat(len - json.len()))
}

#[test]
fn a_body_of_exactly_64_kib_is_read() {
    assert_eq!(MAX_BODY, 64 * 1024);
    let body = token_body_of(64 * 1024);
    let server = Server::http(move |_| response(200, &[("Content-Type", "application/json")], &body));
    assert_eq!(fetch(basic(&server.url("/token"))).expect("token").access_token().secret(), "T");
}

#[test]
fn a_body_over_64_kib_is_an_invalid_response() {
    let body = token_body_of(64 * 1024 + 1);
    let server = Server::http(move |_| response(200, &[("Content-Type", "application/json")], &body));
    let err = fetch(basic(&server.url("/token"))).unwrap_err();
    match &err {
        Error::InvalidResponse { status: 200, reason } => assert!(reason.contains("64 KiB"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_chunked_body_over_64_kib_is_an_invalid_response() {
    let server = Server::http(|_| {
        let mut out = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec();
        out.extend_from_slice(b"10\r\n{\"access_token\":\r\n");
        for _ in 0..20 {
            out.extend_from_slice(format!("1000\r\n{}\r\n", " ".repeat(4096)).as_bytes());
        }
        out.extend_from_slice(b"4\r\n\"T\"}\r\n0\r\n\r\n");
        out
    });
    let err = fetch(basic(&server.url("/token"))).unwrap_err();
    assert!(
        matches!(err, Error::InvalidResponse { status: 200, reason } if reason.contains("64 KiB")),
        "{err:?}"
    );
}

#[test]
fn response_headers_over_16_kib_are_refused() {
    let server = Server::http(|_| response(200, &[("X-Padding", &"a".repeat(20_000))], "{}"));
    let err = fetch(basic(&server.url("/token"))).unwrap_err();
    assert_eq!(err.transport_kind(), Some(TransportKind::Io), "{err:?}");
}

/// An error status keeps its meaning whatever the size of the page that
/// comes with it: a 401 is rejected credentials (not transient), a 429 or
/// 503 keeps its Retry-After.
#[test]
fn an_error_status_with_a_large_page_keeps_its_meaning() {
    let page = format!("<html>{}</html>", " ".repeat(100_000));
    let server = Server::http(move |_| response(401, &[("Content-Type", "text/html")], &page));
    let err = fetch(basic(&server.url("/token"))).unwrap_err();
    assert!(err.is_credentials_rejected(), "{err:?}");
    assert!(!err.is_transient(), "{err:?}");

    let page = " ".repeat(100_000);
    let server = Server::http(move |_| response(503, &[("Retry-After", "7")], &page));
    let err = fetch(basic(&server.url("/token"))).unwrap_err();
    assert_eq!(err.retry_after(), Some(Duration::from_secs(7)), "{err:?}");
}

// ---- URL policy -----------------------------------------------------------

#[test]
fn plain_http_to_a_non_loopback_host_is_refused_at_new() {
    for url in [
        "http://auth.example.com/token",
        "http://10.0.0.1/token",
        "http://127.0.0.1.nip.io/token",
        "http://localhost.example.com/token",
        "http://[::1].example.com/token",
        "HTTP://AUTH.EXAMPLE.COM/token",
    ] {
        for config in [basic(url), Config::client_secret_post(url, "id", "secret")] {
            match Client::new(config) {
                Err(Error::Config(msg)) => assert!(msg.contains("https"), "{url}: {msg}"),
                other => panic!("{url}: {other:?}"),
            }
        }
    }
    let base = "http://id.example.com";
    match Client::new(Config::nfleet_at(base, "0f8fad5b-d9cb-469f-a165-70867728950e", "k", "s")) {
        Err(Error::Config(msg)) => assert!(msg.contains("https"), "{msg}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn plain_http_to_localhost_by_name_is_allowed() {
    let server = Server::http(|_| token_response("T", 60));
    assert_eq!(fetch(basic(&server.url_localhost("/token"))).expect("token").access_token().secret(), "T");
}

#[test]
fn bad_values_are_refused_at_new_and_nothing_is_sent() {
    let server = Server::http(|_| token_response("T", 60));
    let url = server.url("/token");
    let bad = [
        Config::client_secret_basic(&url, "id", "secret\r\nX-Injected: 1"),
        Config::client_secret_post(&url, "id\0", "secret"),
        basic(&url).scope("a b"),
        basic(&url).param("", "x"),
        Config::nfleet_at(&server.url(""), "../admin", "k", "s"),
    ];
    for config in bad {
        let err = Client::new(config).unwrap_err();
        assert!(matches!(err, Error::Config(_)), "{err:?}");
    }
    assert!(server.requests().is_empty());
}

#[test]
fn zero_or_absurd_timeouts_are_configuration_errors() {
    let url = "https://auth.example.com/token";
    let huge = Duration::from_secs(u64::MAX / 2);
    for config in [
        basic(url).timeout(Duration::ZERO),
        basic(url).timeout(huge),
        basic(url).connect_timeout(Duration::ZERO),
        basic(url).connect_timeout(huge),
    ] {
        match Client::new(config) {
            Err(Error::Config(msg)) => assert!(msg.contains("timeout"), "{msg}"),
            other => panic!("{other:?}"),
        }
    }
    let ca = TestPki::new().ca_pem; // roots even without the webpki-roots feature
    assert!(Client::new(basic(url).timeout(Duration::from_secs(86_400)).add_root_pem(ca)).is_ok());
}

// ---- Proxies ----------------------------------------------------------------

/// A named proxy gets `CONNECT host:port` and resolves the name itself (the
/// device need not resolve it, which the `.invalid` name here proves); TLS
/// then runs end to end, so the proxy never sees the credentials.
#[test]
fn a_named_proxy_is_asked_to_connect_to_the_token_host() {
    let proxy = Server::http(|_| response(403, &[], ""));
    let config = basic("https://auth.example.invalid/oauth/token")
        .add_root_pem(TestPki::new().ca_pem) // trusted roots in every feature set
        .proxy(Proxy::Url(proxy.url("")));
    let err = fetch(config).unwrap_err();
    assert_eq!(err.transport_kind(), Some(TransportKind::Connect), "{err:?}");
    let requests = proxy.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(
        (requests[0].method.as_str(), requests[0].path.as_str()),
        ("CONNECT", "auth.example.invalid:443")
    );
    assert_eq!(requests[0].header("authorization"), None);
}

/// Through a proxy that opens the tunnel, TLS runs end to end: the token
/// server's certificate is verified through it, and the proxy relays bytes
/// it cannot read.
#[test]
fn a_token_comes_through_a_proxy_tunnel() {
    use std::io::{BufRead, BufReader, Write};

    let pki = TestPki::new();
    let server = Server::https(&pki, |_| token_response("T", 3600));
    let port = server.addr().port();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
    let proxy = format!("http://{}", listener.local_addr().expect("proxy address"));
    let tunnel = std::thread::spawn(move || {
        let (client, _) = listener.accept().expect("a connection to the proxy");
        let mut reader = BufReader::new(client.try_clone().expect("clone"));
        let mut head = Vec::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).expect("the CONNECT head");
            if line.trim_end().is_empty() {
                break;
            }
            head.push(line.trim_end().to_owned());
        }
        let upstream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the token server");
        (&client).write_all(b"HTTP/1.1 200 Connection established\r\n\r\n").expect("answer");
        let (mut up_read, mut down_write) = (upstream.try_clone().expect("clone"), client);
        let relay = std::thread::spawn(move || std::io::copy(&mut up_read, &mut down_write));
        let mut up_write = upstream;
        let _ = std::io::copy(&mut reader, &mut up_write);
        let _ = up_write.shutdown(std::net::Shutdown::Write);
        let _ = relay.join();
        head
    });
    let config = basic(&format!("https://localhost:{port}/token"))
        .add_root_pem(pki.ca_pem.clone())
        .proxy(Proxy::Url(proxy));
    let token = fetch(config).expect("a token through the tunnel");
    assert_eq!(token.access_token().secret(), "T");
    let head = tunnel.join().expect("the proxy thread");
    assert_eq!(head[0], format!("CONNECT localhost:{port} HTTP/1.1"), "{head:?}");
    assert!(!head.iter().any(|line| line.to_ascii_lowercase().starts_with("authorization")), "{head:?}");
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn a_proxy_that_cannot_be_used_is_a_configuration_error() {
    for url in ["socks5://127.0.0.1:1080", "https://127.0.0.1:3128", "http://[", ""] {
        let config = basic("https://auth.example.com/token").add_root_pem(TestPki::new().ca_pem);
        let err = Client::new(config.proxy(Proxy::Url(url.to_owned())));
        match err {
            Err(Error::Config(msg)) => assert_eq!(msg, "the proxy must be an http://host:port URL", "{url}"),
            other => panic!("{url}: {other:?}"),
        }
    }
}

// ---- TLS session resumption ---------------------------------------------------

/// A refresh every 40 minutes always opens a new connection (ureq keeps an
/// idle one for 15 s): the second handshake of a `Client` resumes the first
/// one's session, so the server's certificate chain (several KB from a real
/// CA) and its signature are not sent again.
#[test]
fn a_new_connection_of_the_same_client_resumes_the_tls_session() {
    let pki = TestPki::new();
    let server = Server::https(&pki, |_| token_response("T", 3600));
    let client =
        Client::new(basic(&server.url_localhost("/token")).add_root_pem(pki.ca_pem.clone())).expect("client");
    for _ in 0..3 {
        client.fetch().expect("token");
    }
    let connections = server.tls_connections(3);
    let resumed: Vec<bool> = connections.iter().map(|c| c.resumed).collect();
    // The test server closes every connection after its answer.
    assert_eq!(resumed, [false, true, true], "{connections:?}");
    let (full, resumed) = (connections[0].bytes_to_client, connections[1].bytes_to_client);
    assert!(resumed + pki.server_chain_len() < full, "{connections:?}");
}
