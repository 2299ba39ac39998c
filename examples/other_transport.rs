//! Tokens over your own HTTP stack, with cctoken's core alone
//! (`cargo run --no-default-features --example other_transport`).
//!
//! `TcpFetcher` stands in for any HTTP stack (libcurl, a modem's AT
//! commands): HTTP/1.1 over a plain `TcpStream`, to this example's loopback
//! token server (cctoken allows `http://` only to loopback); a real transport
//! must use TLS. It reads a head of at most 16 KiB and at most `MAX_BODY`
//! bytes of body, by `Content-Length` or to the close; the whole exchange
//! ends within `Config::fetch_timeout` (with libcurl: `CURLOPT_TIMEOUT`).
//! Not handled: chunked bodies (refused), 1xx answers, proxies, keep-alive;
//! redirects are never followed.
#![forbid(unsafe_code)]

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use cctoken::{
    Config, Error, Fetch, HttpResponse, MAX_BODY, Token, TokenCache, TransportError, TransportKind,
};

/// A [`Fetch`] that sends cctoken's `TokenRequest` with its own HTTP code.
pub struct TcpFetcher {
    pub config: Config,
}

impl Fetch for TcpFetcher {
    fn fetch(&mut self) -> Result<Token, Error> {
        let request = self.config.request()?; // checks the URL and every value
        let rest = match request.url().split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
            _ => return Err(Error::Config("this example speaks plain http:// only".into())),
        };
        let rest = rest.split_once('#').map_or(rest, |(rest, _fragment)| rest);
        let (authority, path) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
        let path = if path.starts_with('/') { path.to_owned() } else { format!("/{path}") };
        let timeout = self.config.fetch_timeout();

        let connect = |e| transport(e, TransportKind::Connect);
        let port = if authority.ends_with(']') || !authority.contains(':') { ":80" } else { "" };
        let mut stream = Err(io::Error::other("the host has no address"));
        for addr in format!("{authority}{port}").to_socket_addrs().map_err(connect)? {
            stream = TcpStream::connect_timeout(&addr, timeout);
            if stream.is_ok() {
                break;
            }
        }
        let stream = stream.map_err(connect)?;

        let mut message = format!("POST {path} HTTP/1.1\r\nHost: {authority}\r\n");
        for (name, value) in request.headers() {
            message += &format!("{name}: {value}\r\n");
        }
        let body = request.body();
        message += &format!("Content-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
        let broken = |e| transport(e, TransportKind::Io);
        let invalid = |what: &str| broken(io::Error::other(what));
        let issued_at = Instant::now();
        let deadline = Deadline { stream: &stream, until: issued_at + timeout };
        stream.set_write_timeout(Some(timeout)).map_err(broken)?;
        (&stream).write_all(message.as_bytes()).map_err(broken)?;

        let mut reader = BufReader::new(deadline);
        let (status_line, headers) = read_head(&mut reader).map_err(broken)?;
        let code = status_line.strip_prefix("HTTP/1.").and_then(|rest| rest.split(' ').nth(1));
        let status = code.filter(|c| c.len() == 3).and_then(|c| c.parse().ok()).filter(|s| *s >= 100);
        let status = status.ok_or_else(|| invalid("not an HTTP/1.x status line"))?;
        if header(&headers, "Transfer-Encoding").is_some() {
            return Err(invalid("chunked bodies are not supported"));
        }
        let mut body = Vec::new(); // never more than `MAX_BODY`: the parser needs no more
        match header(&headers, "Content-Length") {
            Some(length) => {
                let length: u64 = length.parse().map_err(|_| invalid("bad Content-Length"))?;
                body.resize(length.min(MAX_BODY) as usize, 0);
                reader.read_exact(&mut body).map_err(broken)?;
            }
            None => _ = reader.take(MAX_BODY).read_to_end(&mut body).map_err(broken)?,
        }
        let response = HttpResponse::new(status, &body)
            .content_type(header(&headers, "Content-Type"))
            .retry_after(header(&headers, "Retry-After"))
            .date(header(&headers, "Date"));
        self.config.parse_response(&response, issued_at)
    }
}

/// Reads that all end by `until`: each waits only for what is left, so a
/// server that drips its answer cannot stretch the fetch past its deadline.
struct Deadline<'a> {
    stream: &'a TcpStream,
    until: Instant,
}

impl Read for Deadline<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        self.stream.set_read_timeout(Some(left))?;
        self.stream.read(buf)
    }
}

/// Timeouts are `Timeout`; any other failure is the step's own kind.
fn transport(e: io::Error, kind: TransportKind) -> Error {
    let timed_out = matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut);
    TransportError::new(if timed_out { TransportKind::Timeout } else { kind }).with_cause(e).into()
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

/// The first line and the headers of an HTTP/1.x message, from at most 16 KiB.
fn read_head(reader: &mut impl BufRead) -> io::Result<(String, Vec<(String, String)>)> {
    let mut head = reader.take(16 * 1024);
    let mut first = String::new();
    head.read_line(&mut first)?; // if empty, so is the next line: an error below
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        head.read_line(&mut line)?;
        if line.trim_end().is_empty() {
            return match line.as_str() {
                "\r\n" | "\n" => Ok((first.trim_end().to_owned(), headers)),
                _ => Err(io::Error::other("closed before the end of the head, or a head over 16 KiB")),
            };
        }
        let (name, value) = line.split_once(':').ok_or_else(|| io::Error::other("a header has no ':'"))?;
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }
}

/// One request as the example's token server received it.
pub struct Received {
    pub request_line: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// Reads one request, or `None` if the peer closed without sending any.
pub fn read_request(stream: &TcpStream) -> io::Result<Option<Received>> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream);
    if reader.fill_buf()?.is_empty() {
        return Ok(None);
    }
    let (request_line, headers) = read_head(&mut reader)?;
    let length = header(&headers, "Content-Length").map_or(Some(0), |v| v.parse().ok());
    let mut body = String::new();
    reader.take(length.ok_or_else(|| io::Error::other("bad Content-Length"))?).read_to_string(&mut body)?;
    Ok(Some(Received { request_line, headers, body }))
}

/// A loopback token server: answers each request with a one-hour token until
/// a connection closes without a request, then returns what it received.
fn serve(listener: TcpListener) -> io::Result<Vec<Received>> {
    let mut received = Vec::new();
    for stream in listener.incoming() {
        let stream = stream?;
        let Some(request) = read_request(&stream)? else { break };
        received.push(request);
        let body = r#"{"access_token":"example-token","token_type":"Bearer","expires_in":3600}"#;
        let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close";
        write!(&stream, "{head}\r\nContent-Length: {}\r\n\r\n{body}", body.len())?;
    }
    Ok(received)
}

/// What [`run`] did.
pub struct Summary {
    pub server: SocketAddr,
    /// What reached the token server.
    pub requests: Vec<Received>,
    pub lifetime: Duration,
    /// Whether every call got the same token.
    pub same_token: bool,
}

/// Starts the token server, gets a token twice through a `TokenCache` and
/// a `TcpFetcher`, and stops the server.
pub fn run() -> Result<Summary, Box<dyn std::error::Error>> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let server = listener.local_addr()?;
    let serving = std::thread::spawn(move || serve(listener));
    let url = format!("http://127.0.0.1:{}/token", server.port());
    let config = Config::client_secret_basic(&url, "id", "secret");
    let mut cache = TokenCache::new(TcpFetcher { config });
    let tokens = cache.token().cloned().and_then(|first| Ok((first, cache.token()?.clone())));
    drop(TcpStream::connect(server)?); // stops the server, whether the calls worked or not
    let requests = serving.join().map_err(|_| "the token server panicked")??;
    let (first, second) = tokens?;
    let same_token = first.issued_at() == second.issued_at(); // one fetch, one instant
    Ok(Summary { server, requests, lifetime: first.lifetime(), same_token })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let summary = run()?;
    println!("token server: http://{}/token (plain HTTP, loopback only)", summary.server);
    let first = summary.requests.first().map_or("none", |r| r.request_line.as_str());
    println!("2 calls, {} request(s) reached the server: {first}", summary.requests.len());
    let cached = if summary.same_token { "the same token (cached)" } else { "different tokens" };
    println!("the calls got {cached}, valid for {} s", summary.lifetime.as_secs());
    Ok(())
}
