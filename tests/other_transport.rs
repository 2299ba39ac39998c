//! The `other_transport` example, run as a test with any feature set: its
//! fetcher and loopback token server, and how its transport failures map to
//! `TransportKind`s.

#[allow(dead_code)] // `main`, and what only `main` reads
#[path = "../examples/other_transport.rs"]
mod example;

use std::io::Write;
use std::net::TcpListener;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use cctoken::{Config, Error, Fetch, TransportKind};
use example::{Received, TcpFetcher};

fn header<'a>(request: &'a Received, name: &str) -> Vec<&'a str> {
    request.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str()).collect()
}

#[test]
fn the_example_fetches_once_and_serves_the_second_call_from_the_cache() {
    let summary = example::run().expect("the example runs");
    assert_eq!(summary.requests.len(), 1, "the second call must not reach the server");
    let request = &summary.requests[0];
    assert_eq!(request.request_line, "POST /token HTTP/1.1");
    assert_eq!(request.body, "grant_type=client_credentials");
    assert_eq!(header(request, "Authorization"), ["Basic aWQ6c2VjcmV0"]); // base64("id:secret")
    assert_eq!(header(request, "Content-Type"), ["application/x-www-form-urlencoded"]);
    assert_eq!(header(request, "Content-Length"), ["29"]);
    assert_eq!(header(request, "Host"), [format!("127.0.0.1:{}", summary.server.port())]);
    assert_eq!(summary.lifetime, Duration::from_secs(3600), "the server's expires_in");
    assert!(summary.same_token);
}

fn fetch_from(port: u16) -> Result<cctoken::Token, Error> {
    let url = format!("http://127.0.0.1:{port}/token");
    TcpFetcher { config: Config::client_secret_basic(&url, "id", "secret") }.fetch()
}

/// A server on a free loopback port that reads one whole request, writes
/// `answer` (if empty, it answers nothing) and closes.
fn answer_once(answer: &'static str) -> (u16, JoinHandle<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let port = listener.local_addr().expect("local addr").port();
    let server = thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("accept");
        let request = example::read_request(&stream).expect("read the request").expect("a request");
        stream.write_all(answer.as_bytes()).expect("answer");
        request
    });
    (port, server)
}

#[test]
fn transport_failures_have_their_kinds() {
    // The connection closes without an answer.
    let (port, server) = answer_once("");
    let err = fetch_from(port).expect_err("no answer");
    assert!(matches!(err, Error::Transport(_)), "{err}");
    assert_eq!(err.transport_kind(), Some(TransportKind::Io), "{err}");
    assert_eq!(server.join().expect("server").request_line, "POST /token HTTP/1.1");

    // A port nobody listens on: the listener is dropped before the fetch.
    let port = TcpListener::bind("127.0.0.1:0").expect("bind loopback").local_addr().expect("addr").port();
    let err = fetch_from(port).expect_err("refused");
    assert!(matches!(err, Error::Transport(_)), "{err}");
    assert_eq!(err.transport_kind(), Some(TransportKind::Connect), "{err}");

    // A chunked body, which the example refuses rather than misreads.
    let (port, server) = answer_once("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
    let err = fetch_from(port).expect_err("chunked");
    assert_eq!(err.transport_kind(), Some(TransportKind::Io), "{err}");
    server.join().expect("server");
}

#[test]
fn the_status_and_retry_after_reach_cctoken() {
    let (port, server) =
        answer_once("HTTP/1.1 503 Service Unavailable\r\nRetry-After: 120\r\nContent-Length: 0\r\n\r\n");
    let err = fetch_from(port).expect_err("503");
    assert!(
        matches!(err, Error::HttpStatus { status: 503, retry_after: Some(d) } if d == Duration::from_secs(120)),
        "{err}"
    );
    server.join().expect("server");
}

/// A server that drips its answer a byte every 50 ms never lets any single
/// read time out; the fetch still ends at its deadline for the whole exchange.
#[test]
fn a_dripping_server_cannot_stretch_the_fetch_past_its_deadline() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let port = listener.local_addr().expect("local addr").port();
    let server = thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("accept");
        example::read_request(&stream).expect("read the request");
        // Pacing, not synchronisation: the client stops reading at its deadline.
        for byte in b"HTTP/1.1 200 OK\r\nX-Slow: ".iter().chain([b'a'; 200].iter()) {
            if stream.write_all(&[*byte]).is_err() {
                break;
            }
            thread::sleep(Duration::from_millis(50));
        }
    });
    let deadline = Duration::from_millis(500);
    let url = format!("http://127.0.0.1:{port}/token");
    let config = Config::client_secret_basic(&url, "id", "secret").timeout(deadline);
    let start = std::time::Instant::now();
    let err = TcpFetcher { config }.fetch().expect_err("too slow");
    let took = start.elapsed();
    assert_eq!(err.transport_kind(), Some(TransportKind::Timeout), "{err}");
    assert!(took >= deadline && took < deadline + Duration::from_millis(300), "{took:?}");
    drop(server); // it stops when its next write fails
}
