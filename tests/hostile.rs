//! Hostile and broken token servers, as a device may meet them on a bad
//! network or behind a bad proxy: each must end in the promised token or
//! error, within the deadline, without a hang, a panic or a leaked secret.
//! Every behaviour is served by
//! the fault-injecting server of `support/faults.rs` (or the TLS and silent
//! servers of `support`) and fetched twice, each time from a fresh server:
//! once by the library (`Client::fetch`) and once by the `fetch_token` CLI.
//! Both outcomes are asserted, and for every failure:
//!
//! - the library's error prints one line, without control characters, of at
//!   most [`MAX_LINE`] characters, and no text of it (`Display`, `Debug`,
//!   sources) holds the secret, its encodings, the Basic value or the token;
//! - the CLI exits with the status its docs promise (0/1/2/3), prints
//!   nothing on stdout, one `fetch_token: ` line on stderr (the library's
//!   message itself, where that is deterministic), never `panicked`, never a
//!   secret.
//!
//! Deadlines are short (see [`DEADLINE`]) and upper bounds generous
//! ([`MARGIN`]) so a loaded two-core machine cannot make them flaky.

#![cfg(feature = "ureq")]

mod support;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine as _;
use cctoken::{Client, Config, Error, Token, TransportKind};
use support::faults::{Fault, FaultServer, gzip_stored, gzip_zeros, head, reply_bytes};
use support::{Server, Silent, TestPki, refused_port, token_response};

const ID: &str = "h0stile-device";
/// A space and `+/%`: its raw, form-encoded and Basic forms all differ.
const SECRET: &str = "h0stile s3cr3t+/%";
const SECRET_FORM: &str = "h0stile+s3cr3t%2B%2F%25";
/// What the servers here issue, and what must never show in an error.
const TOKEN: &str = "T0k3n.h0stile.sig";
/// The deadline of every fetch that is expected to time out.
const DEADLINE: Duration = Duration::from_millis(700);
/// Slack above a deadline for a loaded machine (and a process start).
const MARGIN: Duration = Duration::from_millis(1500);
/// Longest error line: a sentence plus three cut pieces of server text.
const MAX_LINE: usize = 1024;
/// The package's `fetch_token`, which cargo builds (for the target under
/// test) before it builds this test.
const FETCH_TOKEN: &str = env!("CARGO_BIN_EXE_fetch_token");

// ---- Expected outcomes ------------------------------------------------------

/// What the library returns and, from it, what the CLI does.
#[derive(Debug, Clone, Copy)]
enum Want {
    /// A token with this value and lifetime (s). CLI: exit 0, the token on stdout.
    Token(&'static str, u64),
    /// `InvalidResponse` (HTTP 200) whose reason contains this. CLI: exit 1.
    Invalid(&'static str),
    /// `CredentialsRejected` with this status. CLI: exit 3.
    Rejected(u16),
    /// `OAuth` with this status and code. CLI: exit 1.
    OAuth(u16, &'static str),
    /// `HttpStatus` with this status and Retry-After (s). CLI: exit 1.
    Status(u16, Option<u64>),
    /// `Transport` of kind `Io`: the answer was not HTTP we can read. CLI: exit 1.
    Transport,
    /// `Transport` of kind `Connect`: no connection. CLI: exit 1.
    Connect,
    /// `Transport` of kind `Timeout`, within the deadline plus [`MARGIN`]. CLI: exit 1.
    Timeout,
    /// `Transport` of kind `Tls`, with this in the message. CLI: exit 1.
    Tls(&'static str),
    /// `Config` (nothing sent) with this in the message. CLI: exit 2.
    Config(&'static str),
}

impl Want {
    fn exit_code(self) -> i32 {
        match self {
            Want::Token(..) => 0,
            Want::Rejected(_) => 3,
            Want::Config(_) => 2,
            _ => 1,
        }
    }
}

/// Every form in which the secret or the Basic credentials could leak.
fn secret_forms() -> Vec<String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    vec![
        SECRET.to_owned(),
        SECRET_FORM.to_owned(),
        "s3cr3t".to_owned(),
        b64.encode(format!("{ID}:{SECRET}")),
        b64.encode(format!("{ID}:{SECRET_FORM}")),
    ]
}

fn assert_no_secret(what: &str, text: &str) {
    for secret in secret_forms().iter().map(String::as_str).chain([TOKEN]) {
        assert!(!text.contains(secret), "{what} shows {secret:?}: {text}");
    }
}

/// Checks a library result against `want`; returns the error's message.
fn assert_lib(name: &str, result: Result<Token, Error>, want: Want) -> Option<String> {
    let err = match (result, want) {
        (Ok(token), Want::Token(value, lifetime)) => {
            assert_eq!(token.access_token().secret(), value, "{name}");
            assert_eq!(token.lifetime(), Duration::from_secs(lifetime), "{name}");
            return None;
        }
        (Ok(token), _) => panic!("{name}: a token ({:?}), wanted {want:?}", token.lifetime()),
        (Err(err), _) => err,
    };
    let ok = match (&err, want) {
        (Error::InvalidResponse { status: 200, reason }, Want::Invalid(part)) => reason.contains(part),
        (Error::CredentialsRejected { status, .. }, Want::Rejected(s)) => *status == s,
        (Error::OAuth { status, oauth, .. }, Want::OAuth(s, code)) => *status == s && oauth.code() == code,
        (Error::HttpStatus { status, retry_after }, Want::Status(s, after)) => {
            *status == s && retry_after.map(|d| d.as_secs()) == after
        }
        (Error::Transport(t), Want::Transport) => t.kind() == TransportKind::Io,
        (Error::Transport(t), Want::Connect) => t.kind() == TransportKind::Connect,
        (Error::Transport(t), Want::Timeout) => t.kind() == TransportKind::Timeout,
        (Error::Transport(t), Want::Tls(part)) => {
            t.kind() == TransportKind::Tls && err.to_string().contains(part)
        }
        (Error::Config(msg), Want::Config(part)) => msg.contains(part),
        _ => false,
    };
    assert!(ok, "{name}: got {err:?}, wanted {want:?}");
    assert_eq!(err.is_credentials_rejected(), matches!(want, Want::Rejected(_)), "{name}: {err:?}");
    if matches!(want, Want::Transport | Want::Connect | Want::Timeout | Want::Tls(_) | Want::Invalid(_)) {
        assert!(err.is_transient(), "{name}: {err:?} should be worth a retry");
    }
    let line = err.to_string();
    assert!(!line.chars().any(char::is_control), "{name}: not one clean line: {line:?}");
    assert!(line.chars().count() <= MAX_LINE, "{name}: {} chars: {line}", line.chars().count());
    for text in support::error_texts(&err) {
        assert_no_secret(name, &text);
    }
    Some(line)
}

/// Checks that `Client::new` refuses `config` as `want` says.
fn assert_refused(name: &str, config: Config, want: Want) {
    let result = Client::new(config).map(|_| panic!("{name}: Client::new accepted it"));
    assert_lib(name, result, want);
}

// ---- The CLI ----------------------------------------------------------------

#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
    took: Duration,
}

/// Runs `fetch_token` with only `env` and `args`.
fn run_cli(env: &[(&str, &str)], args: &[&str]) -> Run {
    let start = Instant::now();
    let output = support::target_command(FETCH_TOKEN)
        .env_clear()
        .envs(env.iter().copied())
        .args(args)
        .output()
        .expect("run fetch_token");
    let took = start.elapsed();
    Run {
        code: output.status.code().expect("exited, not killed by a signal"),
        stdout: String::from_utf8(output.stdout).expect("stdout UTF-8"),
        stderr: String::from_utf8(output.stderr).expect("stderr UTF-8"),
        took,
    }
}

/// Checks a CLI run against `want` and, when the library's message is
/// deterministic, that the CLI printed exactly it.
fn assert_cli(name: &str, run: &Run, want: Want, lib_line: Option<&str>) {
    assert!(!run.stderr.contains("panicked"), "{name}: {run:?}");
    assert_eq!(run.code, want.exit_code(), "{name}: wanted {want:?}, got {run:?}");
    if let Want::Token(value, _) = want {
        assert_eq!(run.stdout, format!("{value}\n"), "{name}");
        assert_eq!(run.stderr, "", "{name}");
        return;
    }
    assert_eq!(run.stdout, "", "{name}: {run:?}");
    let line = run.stderr.strip_suffix('\n').unwrap_or_else(|| panic!("{name}: no newline: {run:?}"));
    assert!(line.starts_with("fetch_token: "), "{name}: {run:?}");
    assert!(!line.chars().any(char::is_control), "{name}: not one clean line: {run:?}");
    assert!(line.chars().count() <= MAX_LINE + 20, "{name}: {run:?}");
    assert_no_secret(name, &run.stderr);
    let deterministic = !matches!(want, Want::Transport | Want::Connect | Want::Tls(_));
    match lib_line {
        Some(lib) if deterministic => assert_eq!(line, format!("fetch_token: {lib}"), "{name}"),
        _ => {}
    }
    let part = match want {
        Want::Timeout => "timed out",
        Want::Transport => "the connection to the token endpoint failed",
        Want::Connect => "could not connect to the token endpoint",
        Want::Tls(part) | Want::Invalid(part) | Want::Config(part) => part,
        _ => "",
    };
    assert!(line.contains(part), "{name}: {line:?} lacks {part:?}");
}

const CREDENTIALS: [(&str, &str); 2] = [("CLIENT_ID", ID), ("CLIENT_SECRET", SECRET)];

// ---- Running one behaviour --------------------------------------------------

/// How a fetch is made: the URL and, for the CLI, the flags that match.
struct Target {
    url: String,
    ca_pem: Option<String>,
    timeout: Option<Duration>,
}

impl Target {
    fn at(url: String) -> Target {
        Target { url, ca_pem: None, timeout: None }
    }

    fn config(&self) -> Config {
        let mut config = Config::client_secret_basic(&self.url, ID, SECRET);
        if let Some(pem) = &self.ca_pem {
            config = config.add_root_pem(pem.clone());
        }
        config.timeout(self.timeout.unwrap_or(Duration::from_secs(10)))
    }

    fn cli_args(&self, ca_file: &mut Option<PathBuf>) -> Vec<String> {
        let mut args = vec!["--url".to_owned(), self.url.clone(), "--auth".to_owned(), "basic".to_owned()];
        if let Some(pem) = &self.ca_pem {
            let path = temp_file("ca.pem", pem);
            args.extend(["--ca-file".to_owned(), path.to_string_lossy().into_owned()]);
            *ca_file = Some(path);
        }
        let timeout = self.timeout.unwrap_or(Duration::from_secs(10));
        args.extend(["--timeout".to_owned(), format!("{}", timeout.as_secs_f64())]);
        args
    }
}

/// Asserts that `took` fits the deadline: not early, and not much late.
fn assert_timely(name: &str, took: Duration, deadline: Duration) {
    assert!(took >= deadline.mul_f32(0.9), "{name}: gave up early, after {took:?} of {deadline:?}");
    assert!(took <= deadline + MARGIN, "{name}: took {took:?}, deadline {deadline:?}");
}

/// Fetches from `target` with the library, then with the CLI, and checks
/// both against `want`. `serve` is called once per client, so each gets a
/// fresh server; whatever it returns is kept alive for that fetch.
fn both<S>(name: &str, want: Want, mut serve: impl FnMut() -> (S, Target)) -> (S, S) {
    // Every event the library emits in this suite is checked for the secret and the token.
    let forbidden: Vec<String> = secret_forms().into_iter().chain([TOKEN.to_owned()]).collect();
    support::events::install(&forbidden.iter().map(String::as_str).collect::<Vec<_>>());
    let (lib_server, target) = serve();
    let client = Client::new(target.config()).unwrap_or_else(|e| panic!("{name}: Client::new: {e:?}"));
    let start = Instant::now();
    let result = client.fetch();
    let took = start.elapsed();
    let lib_line = assert_lib(name, result, want);
    let events = support::events::of_this_thread();
    let outcome = if matches!(want, Want::Token(..)) { ": token valid for " } else { " failed in " };
    assert!(
        events.last().is_some_and(
            |e| e.starts_with("info: token request to ") || e.starts_with("warn: token request to ")
        ) && events.last().is_some_and(|e| e.contains(outcome)),
        "{name}: the request's event: {events:?}"
    );
    if let (Want::Timeout, Some(deadline)) = (want, target.timeout) {
        assert_timely(&format!("{name} (library)"), took, deadline);
    }

    let (cli_server, target) = serve();
    let mut ca_file = None;
    let args = target.cli_args(&mut ca_file);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = run_cli(&CREDENTIALS, &args);
    assert_cli(&format!("{name} (CLI)"), &run, want, lib_line.as_deref());
    if let (Want::Timeout, Some(deadline)) = (want, target.timeout) {
        assert_timely(&format!("{name} (CLI)"), run.took, deadline);
    }
    if let Some(path) = ca_file {
        let _ = std::fs::remove_file(path);
    }
    (lib_server, cli_server)
}

/// [`both`] for a fault served over plain HTTP: also checks that each client
/// made exactly one connection (no retry, no second request).
fn fault(name: &str, fault: Fault, want: Want) {
    fault_with_timeout(name, fault, want, None);
}

fn fault_with_timeout(name: &str, fault: Fault, want: Want, timeout: Option<Duration>) {
    let (lib, cli) = both(name, want, || {
        let server = FaultServer::start(fault.clone());
        let target = Target { url: server.url("/token"), ca_pem: None, timeout };
        (server, target)
    });
    if !matches!(want, Want::Timeout) {
        assert_eq!(lib.accepted(), 1, "{name}: library connections");
        assert_eq!(cli.accepted(), 1, "{name}: CLI connections");
        for server in [&lib, &cli] {
            let requests = server.requests();
            assert_eq!(requests.len(), 1, "{name}: {requests:?}");
            assert_eq!(requests[0].header("accept-encoding"), Some("identity"), "{name}: compression");
        }
    }
}

/// A complete response with a JSON body.
fn json(status: u16, body: &str) -> Fault {
    Fault::Reply(reply_bytes(status, &[("Content-Type", "application/json")], body.as_bytes()))
}

/// A complete response with these headers and body.
fn reply(status: u16, headers: &[(&str, &str)], body: &[u8]) -> Fault {
    Fault::Reply(reply_bytes(status, headers, body))
}

/// Writes `contents` to a fresh file of this run's scratch directory.
fn temp_file(name: &str, contents: &str) -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let path = dir.join(format!("hostile-{}-{n}-{name}", std::process::id()));
    std::fs::write(&path, contents).expect("write temp file");
    path
}

// ---- Body -------------------------------------------------------------------

/// A 200 token answer whose body is far over the 64 KiB cap, in each framing
/// and in a compression nothing decodes. Shared with the memory test.
/// Whether ureq was built with its `gzip` feature, which another crate in
/// the build can turn on (cargo unifies features): ureq then decompresses a
/// gzip body whatever the request asked for, before cctoken sees it, and the
/// body cap applies to the decompressed bytes. Asked of ureq itself: its
/// default agent then offers gzip.
fn ureq_decompresses() -> bool {
    static ANSWER: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ANSWER.get_or_init(|| {
        let server = Server::http(|_| token_response(TOKEN, 60));
        let _ = ureq::Agent::new_with_defaults().post(&server.url("/probe")).send("");
        let requests = server.requests();
        requests.first().and_then(|r| r.header("accept-encoding")).is_some_and(|v| v.contains("gzip"))
    })
}

fn oversized() -> Vec<(&'static str, Fault, Want)> {
    const HUNDRED_MIB: usize = 100 << 20;
    let pad = vec![b' '; 64 * 1024];
    let mut chunk = format!("{:x}\r\n", pad.len()).into_bytes();
    chunk.extend_from_slice(&pad);
    chunk.extend_from_slice(b"\r\n");
    let start = br#"{"access_token":"T0k3n.h0stile.sig","#;
    let with_start = |head: Vec<u8>| [head, start.to_vec()].concat();
    vec![
        (
            "100 MiB body with Content-Length",
            Fault::Flood {
                head: with_start(head(200, &[("Content-Length", &HUNDRED_MIB.to_string())])),
                unit: pad.clone(),
                limit: HUNDRED_MIB,
                pace: Duration::ZERO,
            },
            Want::Invalid("64 KiB"),
        ),
        (
            "endless body until close",
            Fault::Flood {
                head: with_start(head(200, &[("Connection", "close")])),
                unit: pad.clone(),
                limit: HUNDRED_MIB,
                pace: Duration::ZERO,
            },
            Want::Invalid("64 KiB"),
        ),
        (
            "endless chunked body",
            Fault::Flood {
                head: head(200, &[("Transfer-Encoding", "chunked")]),
                unit: chunk,
                limit: HUNDRED_MIB,
                pace: Duration::ZERO,
            },
            Want::Invalid("64 KiB"),
        ),
        (
            "gzip bomb: 53 KB that would expand to 8 MiB",
            reply(200, &[("Content-Encoding", "gzip")], &gzip_zeros(8 << 20)),
            // Decompressed, the bomb meets the body cap.
            if ureq_decompresses() { Want::Invalid("64 KiB") } else { Want::Invalid("gzip-compressed") },
        ),
        (
            "100 MiB HTML page with a 401",
            Fault::Flood {
                head: head(
                    401,
                    &[("Content-Length", &HUNDRED_MIB.to_string()), ("Content-Type", "text/html")],
                ),
                unit: pad,
                limit: HUNDRED_MIB,
                pace: Duration::ZERO,
            },
            Want::Rejected(401),
        ),
    ]
}

#[test]
fn bodies_that_are_not_a_token() {
    let token = |body: &str| format!(r#"{{"access_token":"{TOKEN}","expires_in":60{body}}}"#);
    let deep = format!(
        r#"{{"access_token":"{TOKEN}","expires_in":60,"x":{}{}}}"#,
        "[".repeat(30_000),
        "]".repeat(30_000)
    );
    let portal = format!(
        "<!DOCTYPE html><html><head><title>Hotspot login</title></head><body>\
         <form action=\"/login\"><input name=\"user\"><input type=\"password\"></form>\
         <!-- session {TOKEN} --></body></html>"
    );
    let cases: Vec<(&str, Fault, Want)> = vec![
        ("malformed JSON", json(200, &token("").replace('}', ",")), Want::Invalid("not a JSON object")),
        ("trailing garbage", json(200, &format!("{} <html>", token(""))), Want::Invalid("not a JSON object")),
        (
            "two JSON objects",
            json(200, &format!("{}{}", token(""), token(""))),
            Want::Invalid("not a JSON object"),
        ),
        ("empty 200", reply(200, &[("Content-Type", "application/json")], b""), Want::Invalid("empty body")),
        ("200 of whitespace", json(200, " \r\n\t "), Want::Invalid("empty body")),
        (
            "truncated body: Content-Length 500, 40 bytes, FIN",
            Fault::Reply(
                [head(200, &[("Content-Length", "500")]), token("").as_bytes()[..40].to_vec()].concat(),
            ),
            Want::Transport,
        ),
        (
            "HTML captive portal with 200",
            reply(200, &[("Content-Type", "text/html")], portal.as_bytes()),
            Want::Invalid("HTML"),
        ),
        ("HTML captive portal with 200 and a JSON content type", json(200, &portal), Want::Invalid("HTML")),
        (
            "non-UTF-8 bytes in a 200",
            reply(200, &[], &[br#"{"access_token":"T"#.as_slice(), b"\xff\xfe\xc3(", br#""}"#].concat()),
            Want::Invalid("not UTF-8"),
        ),
        (
            "Latin-1 error page with a 400",
            reply(
                400,
                &[("Content-Type", "text/html; charset=iso-8859-1")],
                b"<p>Zugriff verweigert: \xe4\xf6\xfc</p>",
            ),
            Want::Status(400, None),
        ),
        ("deeply nested JSON beside a token", json(200, &deep), Want::Token(TOKEN, 60)),
        (
            "deeply nested JSON as the whole body",
            json(200, &"[".repeat(60_000)),
            Want::Invalid("not a JSON object"),
        ),
        (
            "deeply nested JSON in a 400",
            json(400, &format!(r#"{{"error":{}"#, "{\"a\":".repeat(10_000))),
            Want::Status(400, None),
        ),
        (
            "gzip-encoded token, sent although identity was asked for",
            reply(
                200,
                &[("Content-Encoding", "gzip"), ("Content-Type", "application/json")],
                &gzip_stored(token("").as_bytes()),
            ),
            if ureq_decompresses() { Want::Token(TOKEN, 60) } else { Want::Invalid("gzip-compressed") },
        ),
        (
            "gzip-encoded 401 keeps its meaning",
            reply(401, &[("Content-Encoding", "gzip")], &gzip_stored(br#"{"error":"invalid_client"}"#)),
            Want::Rejected(401),
        ),
        (
            "token with an escaped newline",
            json(200, r#"{"access_token":"T0k3n\nX-Evil: 1"}"#),
            Want::Invalid("not allowed in a header"),
        ),
        (
            "token with a raw newline (invalid JSON)",
            json(200, "{\"access_token\":\"T0k3n\nx\"}"),
            Want::Invalid("not a JSON object"),
        ),
        (
            "token with CR LF",
            json(200, r#"{"access_token":"T0k3n\r\n"}"#),
            Want::Invalid("not allowed in a header"),
        ),
        (
            "token with NUL",
            json(200, r#"{"access_token":"T0k3n\u0000"}"#),
            Want::Invalid("not allowed in a header"),
        ),
        (
            "token with ESC",
            json(200, r#"{"access_token":"\u001b[2JT0k3n"}"#),
            Want::Invalid("not allowed in a header"),
        ),
        (
            "token with a tab",
            json(200, r#"{"access_token":"T0k3n\tx"}"#),
            Want::Invalid("not allowed in a header"),
        ),
        (
            "token with DEL",
            json(200, r#"{"access_token":"T0k3n\u007f"}"#),
            Want::Invalid("not allowed in a header"),
        ),
        (
            "token with U+2028",
            json(200, r#"{"access_token":"T0k3n\u2028x"}"#),
            Want::Invalid("not allowed in a header"),
        ),
    ];
    for (name, f, want) in cases.into_iter().chain(oversized()) {
        fault(name, f, want);
    }
}

// ---- Fields -----------------------------------------------------------------

#[test]
fn token_fields_of_every_shape() {
    let cases: &[(&str, &str, Want)] = &[
        (
            "access_token missing",
            r#"{"token_type":"Bearer","expires_in":60}"#,
            Want::Invalid("no access_token"),
        ),
        (
            "access_token empty",
            r#"{"access_token":"","expires_in":60}"#,
            Want::Invalid("access_token is empty"),
        ),
        ("access_token a number", r#"{"access_token":42}"#, Want::Invalid("access_token is not a string")),
        ("access_token a boolean", r#"{"access_token":true}"#, Want::Invalid("access_token is not a string")),
        ("access_token null", r#"{"access_token":null}"#, Want::Invalid("no access_token")),
        ("access_token an object", r#"{"access_token":{"value":"T"}}"#, Want::Invalid("not a JSON object")),
        ("access_token an array", r#"{"access_token":["T"]}"#, Want::Invalid("not a JSON object")),
        ("token_type missing", r#"{"access_token":"T0k3n","expires_in":60}"#, Want::Token("T0k3n", 60)),
        (
            "token_type mac",
            r#"{"access_token":"T0k3n","token_type":"mac"}"#,
            Want::Invalid("token_type is not Bearer"),
        ),
        ("token_type bearer", r#"{"access_token":"T0k3n","token_type":"bearer"}"#, Want::Token("T0k3n", 600)),
        ("token_type BEARER", r#"{"access_token":"T0k3n","token_type":"BEARER"}"#, Want::Token("T0k3n", 600)),
        ("token_type null", r#"{"access_token":"T0k3n","token_type":null}"#, Want::Token("T0k3n", 600)),
        (
            "expires_in a string",
            r#"{"access_token":"T0k3n","expires_in":"3600"}"#,
            Want::Token("T0k3n", 3600),
        ),
        (
            "expires_in not numeric",
            r#"{"access_token":"T0k3n","expires_in":"1h"}"#,
            Want::Invalid("expires_in is not a number"),
        ),
        ("expires_in missing", r#"{"access_token":"T0k3n"}"#, Want::Token("T0k3n", 600)),
        ("expires_in null", r#"{"access_token":"T0k3n","expires_in":null}"#, Want::Token("T0k3n", 600)),
        ("expires_in 0", r#"{"access_token":"T0k3n","expires_in":0}"#, Want::Token("T0k3n", 0)),
        (
            "expires_in negative",
            r#"{"access_token":"T0k3n","expires_in":-3600}"#,
            Want::Invalid("expires_in is negative"),
        ),
        ("expires_in fractional", r#"{"access_token":"T0k3n","expires_in":59.9}"#, Want::Token("T0k3n", 59)),
        ("expires_in 1e12", r#"{"access_token":"T0k3n","expires_in":1e12}"#, Want::Token("T0k3n", 86_400)),
        (
            "expires_in u64::MAX",
            r#"{"access_token":"T0k3n","expires_in":18446744073709551615}"#,
            Want::Token("T0k3n", 86_400),
        ),
        (
            "expires_in u64::MAX + 1",
            r#"{"access_token":"T0k3n","expires_in":18446744073709551616}"#,
            Want::Token("T0k3n", 86_400),
        ),
        (
            "expires_in 1e400",
            r#"{"access_token":"T0k3n","expires_in":1e400}"#,
            Want::Invalid("not a JSON object"),
        ),
    ];
    for (name, body, want) in cases {
        fault(name, json(200, body), *want);
    }
}

// ---- Status -----------------------------------------------------------------

#[test]
fn error_statuses_and_rfc6749_error_codes() {
    let b64 = base64::engine::general_purpose::STANDARD;
    // A description that tries everything: control characters, echoes of the
    // secret (also with its whitespace changed), of the Basic header and of
    // the token, and 5,000 characters.
    let nasty = format!(
        "bad\\r\\nX-Injected: 1\\u001b[31m secret={SECRET} form={SECRET_FORM} mangled={} \
         Authorization: Basic {} token {TOKEN} {}",
        SECRET.replace(' ', "\\n\\t "),
        b64.encode(format!("{ID}:{SECRET_FORM}")),
        "x".repeat(5_000)
    );
    let oauth_codes: &[(&str, Want)] = &[
        ("invalid_request", Want::OAuth(400, "invalid_request")),
        ("invalid_client", Want::Rejected(400)),
        ("invalid_grant", Want::OAuth(400, "invalid_grant")),
        ("unauthorized_client", Want::Rejected(400)),
        ("unsupported_grant_type", Want::OAuth(400, "unsupported_grant_type")),
        ("invalid_scope", Want::OAuth(400, "invalid_scope")),
    ];
    for (code, want) in oauth_codes {
        let body = format!(
            r#"{{"error":"{code}","error_description":"{nasty}","error_uri":"https://e.example/{code}?t={TOKEN}","access_token":"{TOKEN}"}}"#
        );
        fault(&format!("400 {code}"), json(400, &body), *want);
    }

    let date = [("Date", "Sun, 06 Nov 1994 08:49:37 GMT"), ("Retry-After", "Sun, 06 Nov 1994 08:51:37 GMT")];
    let cases: Vec<(&str, Fault, Want)> = vec![
        (
            "401 with WWW-Authenticate",
            reply(401, &[("WWW-Authenticate", "Basic realm=\"token\"")], b""),
            Want::Rejected(401),
        ),
        (
            "401 with WWW-Authenticate and an invalid_client body",
            reply(
                401,
                &[
                    ("WWW-Authenticate", "Bearer error=\"invalid_token\""),
                    ("Content-Type", "application/json"),
                ],
                format!(
                    r#"{{"error":"invalid_client","error_description":"{nasty}","access_token":"{TOKEN}"}}"#
                )
                .as_bytes(),
            ),
            Want::Rejected(401),
        ),
        (
            "403 page",
            reply(403, &[("Content-Type", "text/html")], b"<h1>Forbidden</h1>"),
            Want::Rejected(403),
        ),
        (
            "429 with Retry-After",
            reply(429, &[("Retry-After", "120")], b"slow down"),
            Want::Status(429, Some(120)),
        ),
        ("503 with Retry-After", reply(503, &[("Retry-After", "30")], b""), Want::Status(503, Some(30))),
        ("503 with a Retry-After date", reply(503, &date, b""), Want::Status(503, Some(120))),
        (
            "503 with a garbage Retry-After",
            reply(503, &[("Retry-After", "in a while")], b""),
            Want::Status(503, None),
        ),
        (
            "500 HTML page",
            reply(
                500,
                &[("Content-Type", "text/html")],
                format!("<html><pre>{SECRET}\n{TOKEN}</pre></html>").as_bytes(),
            ),
            Want::Status(500, None),
        ),
        (
            "error inside a 200",
            json(200, &format!(r#"{{"error":"server_error","access_token":"{TOKEN}"}}"#)),
            Want::OAuth(200, "server_error"),
        ),
        ("invalid_client inside a 200", json(200, r#"{"error":"invalid_client"}"#), Want::Rejected(200)),
        (
            "error that is not a string, in a 400",
            json(400, r#"{"error":{"code":1}}"#),
            Want::Status(400, None),
        ),
    ];
    for (name, f, want) in cases {
        fault(name, f, want);
    }
}

/// The server text that survives is one line, cut to 200 characters, with
/// the secret, the Basic value and the token redacted.
#[test]
fn server_error_text_is_cleaned_before_it_is_shown() {
    let body = format!(
        r#"{{"error":"invalid_scope","error_description":"no\r\nscope\u0007 for {SECRET}: {}","access_token":"{TOKEN}"}}"#,
        "y".repeat(1_000)
    );
    let server = FaultServer::start(json(400, &body));
    let err = Client::new(Target::at(server.url("/token")).config()).expect("config").fetch().unwrap_err();
    let Error::OAuth { oauth, .. } = &err else { panic!("{err:?}") };
    let description = oauth.description().expect("description");
    assert!(description.starts_with("no scope for [redacted]: yyy"), "{description}");
    assert_eq!(description.chars().count(), 201, "{description}");
    assert!(description.ends_with("y…"), "{description}");
}

// ---- Framing ----------------------------------------------------------------

#[test]
fn broken_http_framing() {
    let chunked = |chunks: &[u8]| {
        Fault::Reply([head(200, &[("Transfer-Encoding", "chunked")]), chunks.to_vec()].concat())
    };
    let token = br#"{"access_token":"T0k3n"}"#;
    let cases: Vec<(&str, Fault, Want)> = vec![
        ("chunk size not hex", chunked(b"zz\r\n{}\r\n0\r\n\r\n"), Want::Transport),
        ("negative chunk size", chunked(b"-1\r\n{}\r\n0\r\n\r\n"), Want::Transport),
        ("chunk size overflowing u64", chunked(b"fffffffffffffffffffff\r\n{}\r\n0\r\n\r\n"), Want::Transport),
        (
            "chunk size u64::MAX, then close",
            chunked(b"ffffffffffffffff\r\n{\"access_token\":"),
            Want::Transport,
        ),
        (
            "chunk longer than its data, then close",
            chunked(b"100\r\n{\"access_token\":\"T\"}"),
            Want::Transport,
        ),
        ("chunk data without its CRLF", chunked(b"2\r\n{}XX0\r\n\r\n"), Want::Transport),
        (
            "conflicting duplicate Content-Length",
            reply(200, &[("Content-Length", "99")], token),
            Want::Transport,
        ),
        (
            "Content-Length list of two values",
            Fault::Reply([head(200, &[("Content-Length", "24, 99")]), token.to_vec()].concat()),
            Want::Transport,
        ),
        (
            "no status line",
            Fault::Reply(
                [b"Content-Type: application/json\r\nContent-Length: 24\r\n\r\n".as_slice(), token].concat(),
            ),
            Want::Transport,
        ),
        ("a bare JSON body (HTTP/0.9)", Fault::Reply(token.to_vec()), Want::Transport),
        (
            "a five-digit status",
            Fault::Reply([b"HTTP/1.1 20000 OK\r\nContent-Length: 24\r\n\r\n".as_slice(), token].concat()),
            Want::Transport,
        ),
        ("nothing at all, then close", Fault::Reply(Vec::new()), Want::Transport),
        (
            "endless headers",
            Fault::Flood {
                head: b"HTTP/1.1 200 OK\r\n".to_vec(),
                unit: b"X-Endless: aaaaaaaaaaaaaaaa\r\n".to_vec(),
                limit: 10 << 20,
                pace: Duration::ZERO,
            },
            Want::Transport,
        ),
        (
            "one endless header line",
            Fault::Flood {
                head: b"HTTP/1.1 200 OK\r\nX-Endless: ".to_vec(),
                unit: vec![b'a'; 4096],
                limit: 10 << 20,
                pace: Duration::ZERO,
            },
            Want::Transport,
        ),
        ("reset mid-headers", Fault::ResetAfter(b"HTTP/1.1 200 OK\r\nContent-Ty".to_vec()), Want::Transport),
        (
            "reset mid-body",
            Fault::ResetAfter([head(200, &[("Content-Length", "24")]), token[..10].to_vec()].concat()),
            Want::Transport,
        ),
    ];
    for (name, f, want) in cases {
        fault(name, f, want);
    }
    // The duplicate Content-Length case really sends two.
    let Fault::Reply(bytes) = reply(200, &[("Content-Length", "99")], token) else { unreachable!() };
    assert_eq!(String::from_utf8_lossy(&bytes).matches("Content-Length").count(), 2);
}

#[test]
fn connection_refused() {
    both("connection refused", Want::Connect, || {
        ((), Target::at(format!("http://127.0.0.1:{}/token", refused_port())))
    });
}

// ---- Time -------------------------------------------------------------------

fn timeout_case(name: &str, f: Fault, deadline: Duration) {
    fault_with_timeout(name, f, Want::Timeout, Some(deadline));
}

#[test]
fn a_server_that_accepts_and_never_answers() {
    timeout_case("accepts, reads the request, never answers", Fault::Hang, DEADLINE);
}

/// One byte a second keeps every read busy, so only a deadline for the
/// whole fetch can end it: 1.5 s lets two or three bytes through.
#[test]
fn a_server_that_drips_its_headers() {
    let drip = Fault::Drip {
        head: Vec::new(),
        drip: b"HTTP/1.1 200 OK\r\nContent-Length: 24\r\n\r\n".to_vec(),
        every: Duration::from_secs(1),
    };
    timeout_case("headers dripped a byte a second", drip, Duration::from_millis(1500));
}

#[test]
fn a_server_that_drips_its_body() {
    let drip = Fault::Drip {
        head: head(200, &[("Content-Length", "24"), ("Content-Type", "application/json")]),
        drip: br#"{"access_token":"T0k3n"}"#.to_vec(),
        every: Duration::from_secs(1),
    };
    timeout_case("body dripped a byte a second", drip, Duration::from_millis(1500));
}

#[test]
fn endless_100_continue() {
    let flood = Fault::Flood {
        head: Vec::new(),
        unit: b"HTTP/1.1 100 Continue\r\n\r\n".to_vec(),
        limit: 1 << 20,
        pace: Duration::from_millis(5),
    };
    timeout_case("endless 100 Continue", flood, DEADLINE);
}

#[test]
fn a_tls_handshake_that_stalls() {
    let pki = TestPki::new();
    both("TLS handshake stalls", Want::Timeout, || {
        let silent = Silent::start();
        let target = Target {
            url: silent.https_url("/token"),
            ca_pem: Some(pki.ca_pem.clone()),
            timeout: Some(DEADLINE),
        };
        (silent, target)
    });
}

// ---- Redirects --------------------------------------------------------------

/// A redirect to another loopback port is reported, not followed: the target
/// (a token server that would answer) never sees a connection.
#[test]
fn redirects_are_never_followed() {
    for status in [301, 302, 303, 307, 308] {
        let targets = std::cell::RefCell::new(Vec::new());
        both(&format!("{status} to another port"), Want::Status(status, None), || {
            let target = FaultServer::reply(token_response(TOKEN, 3600));
            let location = target.url("/token");
            targets.borrow_mut().push(target);
            let server = FaultServer::reply(reply_bytes(status, &[("Location", &location)], b""));
            let url = server.url("/token");
            (server, Target::at(url))
        });
        for target in targets.borrow().iter() {
            assert!(target.untouched(), "{status}: the redirect target was contacted");
        }
    }
}

// ---- TLS --------------------------------------------------------------------

#[test]
fn tls_trust() {
    let pki = TestPki::new();
    let other = TestPki::new();
    let wrong_name = TestPki::for_names(&["auth.example.com"]);
    let expired = TestPki::expired();
    let cases: [(&str, &TestPki, &TestPki, Want); 5] = [
        ("certificate from an untrusted CA", &pki, &other, Want::Tls("invalid peer certificate")),
        ("certificate for another host name", &wrong_name, &wrong_name, Want::Tls("not valid for name")),
        ("expired certificate", &expired, &expired, Want::Tls("expired")),
        ("trusted via an extra root", &pki, &pki, Want::Token(TOKEN, 3600)),
        ("webpki roots only", &pki, &pki, Want::Tls("UnknownIssuer")),
    ];
    // Without the webpki-roots feature, a config with no CA is refused at Client::new (tests/transport.rs).
    let cases =
        cases.into_iter().filter(|(name, ..)| cfg!(feature = "webpki-roots") || *name != "webpki roots only");
    for (name, server_pki, trusted, want) in cases {
        let (lib, cli) = both(name, want, || {
            let server = Server::https(server_pki, |_| token_response(TOKEN, 3600));
            let ca_pem = (name != "webpki roots only").then(|| trusted.ca_pem.clone());
            let target = Target { url: server.url_localhost("/token"), ca_pem, timeout: None };
            (server, target)
        });
        let sent = usize::from(matches!(want, Want::Token(..)));
        assert_eq!(lib.requests().len(), sent, "{name}: library requests past the handshake");
        assert_eq!(cli.requests().len(), sent, "{name}: CLI requests past the handshake");
    }
}

// ---- Input we send ----------------------------------------------------------

/// A value that could split a header or a form field is refused before
/// anything is sent. The CLI cannot be given NUL (argv and the environment
/// are C strings), so it gets CR and LF only.
#[test]
fn control_characters_in_what_we_send_are_refused_before_sending() {
    for bad in ["\r\nX-Injected: 1", "\n", "\r", "\0"] {
        let server = FaultServer::reply(token_response(TOKEN, 3600));
        let url = server.url("/token");
        let lib_cases = [
            ("client id", Config::client_secret_basic(&url, &format!("{ID}{bad}"), SECRET)),
            ("secret", Config::client_secret_basic(&url, ID, format!("{SECRET}{bad}"))),
            ("secret (post)", Config::client_secret_post(&url, ID, format!("{SECRET}{bad}"))),
            ("scope", Config::client_secret_post(&url, ID, SECRET).scope(&format!("read{bad}"))),
            ("URL", Config::client_secret_basic(&format!("{url}{bad}"), ID, SECRET)),
        ];
        for (what, config) in lib_cases {
            let name = format!("{what} with {bad:?}");
            assert_refused(&name, config, Want::Config("control character"));
        }
        if bad != "\0" {
            let id = format!("{ID}{bad}");
            let secret = format!("{SECRET}{bad}");
            let scope = format!("read{bad}");
            let bad_url = format!("{url}{bad}");
            type Env<'a> = [(&'a str, &'a str); 2];
            let cli_cases: [(&str, Env, Vec<&str>); 4] = [
                ("client id", [("CLIENT_ID", &id), ("CLIENT_SECRET", SECRET)], vec!["--url", &url]),
                ("secret", [("CLIENT_ID", ID), ("CLIENT_SECRET", &secret)], vec!["--url", &url]),
                ("scope", CREDENTIALS, vec!["--url", &url, "--scope", &scope]),
                ("URL", CREDENTIALS, vec!["--url", &bad_url]),
            ];
            for (what, env, mut args) in cli_cases {
                args.extend(["--auth", "post"]);
                let run = run_cli(&env, &args);
                assert_cli(
                    &format!("CLI {what} with {bad:?}"),
                    &run,
                    Want::Config("control character"),
                    None,
                );
            }
        }
        assert!(server.untouched(), "{bad:?}: something was sent");
    }
}

/// `&`, `=`, `+`, `%`, spaces and non-ASCII are form-encoded in the body
/// (post) and in the Basic credentials (basic), or sent as raw UTF-8 (nfleet).
#[test]
fn awkward_characters_are_encoded_exactly() {
    let id = "dev &=+% ü";
    let secret = "s&=+% é/€";
    let scope = "a&b=c+d%e/ö";
    let (id_form, secret_form, scope_form) =
        ("dev+%26%3D%2B%25+%C3%BC", "s%26%3D%2B%25+%C3%A9%2F%E2%82%AC", "a%26b%3Dc%2Bd%25e%2F%C3%B6");
    let b64 = base64::engine::general_purpose::STANDARD;
    let styles = [
        (
            "post",
            format!(
                "grant_type=client_credentials&client_id={id_form}&client_secret={secret_form}&scope={scope_form}"
            ),
            None,
        ),
        (
            "basic",
            format!("grant_type=client_credentials&scope={scope_form}"),
            Some(format!("{id_form}:{secret_form}")),
        ),
        (
            "nfleet",
            format!("grant_type=client_credentials&scope={scope_form}"),
            Some(format!("{id}:{secret}")),
        ),
    ];
    for (style, body, basic) in styles {
        let lib = FaultServer::reply(token_response(TOKEN, 3600));
        let config = match style {
            "post" => Config::client_secret_post(&lib.url("/token"), id, secret),
            "basic" => Config::client_secret_basic(&lib.url("/token"), id, secret),
            _ => Config::client_secret_basic(&lib.url("/token"), id, secret)
                .auth_style(cctoken::AuthStyle::BasicRaw),
        };
        assert_lib(
            style,
            Client::new(config.scope(scope)).expect("config").fetch(),
            Want::Token(TOKEN, 3600),
        );
        let cli = FaultServer::reply(token_response(TOKEN, 3600));
        let run = run_cli(
            &[("CLIENT_ID", id), ("CLIENT_SECRET", secret)],
            &["--url", &cli.url("/token"), "--auth", style, "--scope", scope],
        );
        assert_cli(&format!("CLI {style}"), &run, Want::Token(TOKEN, 3600), None);
        for server in [&lib, &cli] {
            let requests = server.requests();
            assert_eq!(requests.len(), 1, "{style}");
            assert_eq!(requests[0].body, body, "{style}");
            let expected = basic.as_ref().map(|b| format!("Basic {}", b64.encode(b)));
            assert_eq!(requests[0].header("authorization"), expected.as_deref(), "{style}");
        }
    }
}

#[test]
fn plain_http_and_look_alike_hosts_are_refused_with_a_message_about_https() {
    for url in [
        "http://auth.example.com/token",
        "http://10.0.0.1/token",
        "http://127.0.0.1.evil.invalid/token",
        "http://127.0.0.1@evil.invalid/token",
        "http://localhost.evil.invalid/token",
        "http://[::1].evil.invalid/token",
        "http://127.0.0.1:8080@evil.invalid/token",
    ] {
        assert_refused(url, Config::client_secret_post(url, ID, SECRET), Want::Config("https"));
        let run = run_cli(&CREDENTIALS, &["--url", url, "--auth", "post"]);
        assert_cli(&format!("CLI {url}"), &run, Want::Config("https"), None);
    }
}

// ---- Memory -----------------------------------------------------------------

/// The most resident memory `fetch_token` may use against any oversized body.
const RSS_LIMIT_KIB: u64 = 16 * 1024;

/// GNU time, which measures the peak RSS: `/usr/bin/time` (Debian package
/// `time`), or the path in `CCTOKEN_TIME`, so that a run can check what
/// happens where it is missing (`CCTOKEN_TIME=/nonexistent`).
fn gnu_time() -> PathBuf {
    std::env::var_os("CCTOKEN_TIME").map_or_else(|| PathBuf::from("/usr/bin/time"), PathBuf::from)
}

/// Whether `time` exists to measure the peak RSS. A fresh machine has no GNU
/// time, and `cargo test` must pass there: the bound is then skipped, with
/// one line on stderr saying so. CI installs it and sets
/// `CCTOKEN_REQUIRE_RSS=1`, which turns a missing `time` into a failure, so
/// that the bound cannot silently stop running there.
fn can_measure_rss(time: &Path) -> bool {
    if time.exists() {
        return true;
    }
    let why = format!("{} not found (GNU time measures it: apt-get install time)", time.display());
    let required = std::env::var("CCTOKEN_REQUIRE_RSS").is_ok_and(|v| v == "1");
    assert!(!required, "CCTOKEN_REQUIRE_RSS=1, but fetch_token's peak-RSS bound cannot run: {why}");
    // Straight to stderr: the test harness shows what eprintln! prints only when a test fails.
    let line = format!(
        "tests/hostile.rs: skipped fetch_token's peak-RSS bound: {why}; \
         CCTOKEN_REQUIRE_RSS=1 makes this a failure\n"
    );
    let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
    false
}

/// Peak RSS of `fetch_token` (KiB) fetching from `url`, measured by GNU time.
fn peak_rss_kib(time: &Path, url: &str, want_code: i32) -> u64 {
    let report = temp_file("time.txt", "");
    let output = Command::new(time)
        .arg("-v")
        .arg("-o")
        .arg(&report)
        .arg(FETCH_TOKEN)
        .args(["--url", url, "--auth", "basic", "--timeout", "20"])
        .env_clear()
        .envs(CREDENTIALS)
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", time.display()));
    assert_eq!(output.status.code(), Some(want_code), "{url}: {output:?}");
    let report_text = std::fs::read_to_string(&report).expect("read the time report");
    let _ = std::fs::remove_file(&report);
    report_text
        .lines()
        .find_map(|line| line.trim().strip_prefix("Maximum resident set size (kbytes): "))
        .and_then(|kib| kib.parse().ok())
        .unwrap_or_else(|| panic!("no peak RSS in {report_text}"))
}

/// The peak RSS of `fetch_token` stays under 16 MiB against bodies of 100 MiB
/// (plain, close-delimited, chunked, behind a 401) and a gzip bomb. A normal
/// token answer is measured too, for scale. `--nocapture` prints the figures.
#[cfg(target_os = "linux")]
#[test]
fn fetch_token_peak_rss_stays_under_16_mib_against_oversized_bodies() {
    if support::test_runner().is_some() {
        println!("skipped: under an emulator the peak RSS would be the emulator's");
        return;
    }
    let time = gnu_time();
    if !can_measure_rss(&time) {
        return;
    }
    let mut table = String::new();
    let server = FaultServer::reply(token_response(TOKEN, 3600));
    let baseline = peak_rss_kib(&time, &server.url("/token"), 0);
    let _ = writeln!(table, "{baseline:>6} KiB  a normal token answer");
    let mut worst = 0;
    for (name, fault, want) in oversized() {
        let server = FaultServer::start(fault);
        let rss = peak_rss_kib(&time, &server.url("/token"), want.exit_code());
        assert_eq!(server.accepted(), 1, "{name}");
        let _ = writeln!(table, "{rss:>6} KiB  {name}");
        worst = worst.max(rss);
    }
    println!(
        "peak RSS of fetch_token ({}):\n{table}",
        if cfg!(debug_assertions) { "debug" } else { "release" }
    );
    assert!(worst <= RSS_LIMIT_KIB, "peak RSS {worst} KiB over {RSS_LIMIT_KIB} KiB:\n{table}");
}
