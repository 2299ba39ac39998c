//! A fault-injecting loopback server: answers every connection with the same
//! [`Fault`], byte for byte, including answers no real server should give
//! (broken framing, resets, floods, drips).
//!
//! Every loop here is bounded: at most [`MAX_CONNECTIONS`] connections are
//! served, one at a time; reads time out after 5 s; a flood stops after its
//! byte limit or when the client stops reading; a drip or a hang ends when
//! the server is dropped, which wakes every pause at once. So a test never
//! waits for the server, and the server never outlives its test.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use super::{Recorded, TestPki, read_head};

/// Connections served before the server stops accepting.
pub const MAX_CONNECTIONS: usize = 16;

/// What the server does with each connection, after reading the request
/// head (and, except for [`Fault::ResetAfter`], its body).
#[derive(Clone, Debug)]
pub enum Fault {
    /// Writes these bytes, then closes the connection normally (FIN).
    Reply(Vec<u8>),
    /// Leaves the request body unread, writes these bytes and closes: the
    /// unread data makes the kernel reset the connection (RST, not FIN).
    ResetAfter(Vec<u8>),
    /// Writes `head`, then `drip` one byte every `every`, then closes.
    Drip { head: Vec<u8>, drip: Vec<u8>, every: Duration },
    /// Writes `head`, then `unit` over and over, `pace` apart, until `limit`
    /// bytes in all or the client stops reading, then closes.
    Flood { head: Vec<u8>, unit: Vec<u8>, limit: usize, pace: Duration },
    /// Reads the request and never answers.
    Hang,
}

/// Wakes sleeping handlers when the server is dropped.
#[derive(Default)]
struct Stop {
    stopped: Mutex<bool>,
    changed: Condvar,
}

impl Stop {
    /// Sleeps for `d` unless the server stops first; false if it stopped.
    fn pause(&self, d: Duration) -> bool {
        let guard = self.stopped.lock().expect("stop flag");
        let (guard, _) = self.changed.wait_timeout_while(guard, d, |stopped| !*stopped).expect("stop flag");
        !*guard
    }

    fn is_set(&self) -> bool {
        *self.stopped.lock().expect("stop flag")
    }

    fn set(&self) {
        *self.stopped.lock().expect("stop flag") = true;
        self.changed.notify_all();
    }
}

pub struct FaultServer {
    addr: SocketAddr,
    log: Arc<Mutex<Vec<Recorded>>>,
    accepted: Arc<AtomicUsize>,
    stop: Arc<Stop>,
    thread: Option<JoinHandle<()>>,
}

impl FaultServer {
    /// Starts serving `fault` on a free port of 127.0.0.1.
    pub fn start(fault: Fault) -> FaultServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let accepted = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(Stop::default());
        let (thread_log, thread_accepted, thread_stop) = (log.clone(), accepted.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming().take(MAX_CONNECTIONS) {
                if thread_stop.is_set() {
                    break;
                }
                let Ok(stream) = stream else { continue };
                thread_accepted.fetch_add(1, Ordering::SeqCst);
                let _ = serve(stream, &fault, &thread_log, &thread_stop);
            }
        });
        FaultServer { addr, log, accepted, stop, thread: Some(thread) }
    }

    /// A server answering with these bytes and closing.
    pub fn reply(bytes: impl Into<Vec<u8>>) -> FaultServer {
        FaultServer::start(Fault::Reply(bytes.into()))
    }

    /// `http://127.0.0.1:port{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.addr.port(), path)
    }

    /// Every request head read so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.log.lock().expect("log").clone()
    }

    /// Connections accepted so far, whether or not they sent anything.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Whether nothing ever connected before now. Proven, not waited for:
    /// a probe connects and reads its whole answer; connections are served
    /// in the order they arrived, so any earlier one was counted by then.
    /// Only for a server that answers ([`Fault::Reply`]).
    pub fn untouched(&self) -> bool {
        let mut probe = TcpStream::connect(self.addr).expect("connect probe");
        probe.set_read_timeout(Some(Duration::from_secs(5))).expect("probe timeout");
        probe.write_all(b"GET /probe HTTP/1.1\r\nHost: probe\r\n\r\n").expect("send probe");
        let _ = probe.read_to_end(&mut Vec::new());
        let requests = self.requests();
        assert!(
            requests.last().is_some_and(|r| r.path == "/probe"),
            "the probe was not served: {requests:?}"
        );
        requests.len() == 1 && self.accepted() == 1
    }
}

impl Drop for FaultServer {
    fn drop(&mut self) {
        self.stop.set();
        let _ = TcpStream::connect(self.addr); // wake the accept loop
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(mut stream: TcpStream, fault: &Fault, log: &Mutex<Vec<Recorded>>, stop: &Stop) -> io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    let (mut request, length) = read_head(&mut stream)?;
    let mut body = vec![0; length.min(64 * 1024)];
    if let Fault::ResetAfter(_) = fault {
        // Wait until the whole body is in the socket's receive queue, but
        // leave it there: closing with unread data sends RST.
        for _ in 0..500 {
            if body.is_empty() || stream.peek(&mut body)? >= body.len() {
                break;
            }
            if !stop.pause(Duration::from_millis(10)) {
                return Ok(());
            }
        }
    } else {
        stream.read_exact(&mut body)?;
    }
    request.body = String::from_utf8_lossy(&body).into_owned();
    log.lock().expect("log").push(request);

    match fault {
        Fault::Reply(bytes) => {
            // The request was read in full, so closing sends a FIN after the data.
            stream.write_all(bytes)?;
        }
        Fault::ResetAfter(bytes) => stream.write_all(bytes)?,
        Fault::Drip { head, drip, every } => {
            stream.write_all(head)?;
            for byte in drip {
                if !stop.pause(*every) {
                    break;
                }
                stream.write_all(&[*byte])?;
            }
        }
        Fault::Flood { head, unit, limit, pace } => {
            stream.write_all(head)?;
            let mut written = head.len();
            while written < *limit {
                stream.write_all(unit)?;
                written += unit.len();
                if !pace.is_zero() && !stop.pause(*pace) {
                    break;
                }
            }
        }
        Fault::Hang => {
            stop.pause(Duration::from_secs(60));
        }
    }
    Ok(())
}

/// A status line and headers, without a body: `head(200, &[..])` ends with
/// the blank line.
pub fn head(status: u16, headers: &[(&str, &str)]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status} X\r\n");
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    out.into_bytes()
}

/// A complete response with a binary body and a matching `Content-Length`.
pub fn reply_bytes(status: u16, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let length = body.len().to_string();
    let mut all = vec![("Content-Length", length.as_str()), ("Connection", "close")];
    all.extend_from_slice(headers);
    let mut out = head(status, &all);
    out.extend_from_slice(body);
    out
}

/// A gzip member (RFC 1952) whose deflate stream holds `data` in stored,
/// uncompressed blocks: valid gzip that any decoder would expand to `data`.
pub fn gzip_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
    let mut blocks = data.chunks(0xffff).peekable();
    if blocks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    while let Some(block) = blocks.next() {
        out.push(u8::from(blocks.peek().is_none()));
        let len = block.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(block);
    }
    out.extend_from_slice(&crc32(data).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

/// A gzip "bomb": a few bytes per 258 of output, expanding to `len` zero
/// bytes (fixed-Huffman deflate: one literal 0, then back-references of
/// length 258 at distance 1).
pub fn gzip_zeros(len: usize) -> Vec<u8> {
    assert!(len >= 1);
    let mut bits = BitWriter::default();
    bits.put(1, 1); // BFINAL
    bits.put(1, 2); // BTYPE = fixed Huffman
    bits.put_code(0b0011_0000, 8); // literal 0
    let mut left = len - 1;
    while left >= 258 {
        bits.put_code(0b1100_0101, 8); // length code 285: 258
        bits.put_code(0, 5); // distance code 0: 1
        left -= 258;
    }
    for _ in 0..left {
        bits.put_code(0b0011_0000, 8);
    }
    bits.put_code(0, 7); // end of block (256)
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
    out.extend_from_slice(&bits.finish());
    let crc = crc32_zeros(len);
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&(len as u32).to_le_bytes());
    out
}

#[derive(Default)]
struct BitWriter {
    out: Vec<u8>,
    acc: u32,
    n: u32,
}

impl BitWriter {
    /// Appends the low `n` bits of `value`, least significant first.
    fn put(&mut self, value: u32, n: u32) {
        self.acc |= value << self.n;
        self.n += n;
        while self.n >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.n -= 8;
        }
    }

    /// Appends a Huffman code, most significant bit first.
    fn put_code(&mut self, code: u32, n: u32) {
        let reversed = (0..n).fold(0, |r, i| r | (((code >> i) & 1) << (n - 1 - i)));
        self.put(reversed, n);
    }

    fn finish(mut self) -> Vec<u8> {
        if self.n > 0 {
            self.out.push(self.acc as u8);
        }
        self.out
    }
}

/// CRC-32 (IEEE) as gzip uses it, continuing from `crc` (start with 0).
fn crc32_update(crc: u32, data: impl IntoIterator<Item = u8>) -> u32 {
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut table = [0; 256];
        for (n, entry) in (0u32..).zip(table.iter_mut()) {
            *entry = (0..8).fold(n, |c, _| if c & 1 == 1 { (c >> 1) ^ 0xedb8_8320 } else { c >> 1 });
        }
        table
    });
    !data.into_iter().fold(!crc, |c, b| table[usize::from(c as u8 ^ b)] ^ (c >> 8))
}

/// CRC-32 (IEEE), as gzip uses it.
pub fn crc32(data: &[u8]) -> u32 {
    crc32_update(0, data.iter().copied())
}

fn crc32_zeros(len: usize) -> u32 {
    crc32_update(0, std::iter::repeat_n(0u8, len))
}

impl TestPki {
    /// A CA and a server certificate for `localhost` and 127.0.0.1 that
    /// expired in 2001 (valid from 2000-01-01 to 2001-01-01).
    pub fn expired() -> TestPki {
        TestPki::issue(&["localhost", "127.0.0.1"], |params| {
            params.not_before = rcgen::date_time_ymd(2000, 1, 1);
            params.not_after = rcgen::date_time_ymd(2001, 1, 1);
        })
    }
}
