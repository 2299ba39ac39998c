//! End-to-end tests of the `fetch_token` binary: its exit statuses, its
//! output, and what the token server receives.

#![cfg(feature = "ureq")]

mod support;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Output;
use std::time::{Duration, Instant};

use base64::Engine as _;
use support::{ClientPki, Recorded, Server, TestPki, response, token_response};

const ID: &str = "device-7";
/// Form-urlencoding changes `+`, `/` and `=`, so `basic` and `nfleet` send
/// different `Authorization` headers for it.
const SECRET: &str = "s3cr3t+/=";
const TOKEN: &str = "eyJ0eXAi.tok3n.Zm9v";
/// The package's `fetch_token`, which cargo builds (for the target under
/// test) before it builds this test.
const FETCH_TOKEN: &str = env!("CARGO_BIN_EXE_fetch_token");

/// What one run of `fetch_token` did.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `fetch_token args` with only the given environment, and checks what
/// must hold for every run: no panic, neither the secret nor the token on
/// stderr, and on failure an empty stdout and one `fetch_token: ` line on
/// stderr.
fn run_with_env(env: &[(&str, &str)], args: &[&str]) -> Run {
    let mut command = support::target_command(FETCH_TOKEN);
    command.env_clear().envs(env.iter().copied()).args(args);
    check(command.output().expect("run fetch_token"))
}

/// [`run_with_env`] with `CLIENT_ID` and `CLIENT_SECRET` set.
fn run(args: &[&str]) -> Run {
    run_with_env(&[("CLIENT_ID", ID), ("CLIENT_SECRET", SECRET)], args)
}

fn check(output: Output) -> Run {
    let run = Run {
        code: output.status.code().expect("exited, not killed by a signal"),
        stdout: String::from_utf8(output.stdout).expect("stdout UTF-8"),
        stderr: String::from_utf8(output.stderr).expect("stderr UTF-8"),
    };
    assert!(!run.stderr.contains("panicked"), "{run:?}");
    // "s3cr3t" is in the secret however it is encoded.
    assert!(!run.stderr.contains("s3cr3t") && !run.stderr.contains(TOKEN), "{run:?}");
    if run.code == 0 {
        assert_eq!(run.stderr, "", "{run:?}");
    } else {
        assert_eq!(run.stdout, "", "{run:?}");
        assert!(run.stderr.starts_with("fetch_token: "), "{run:?}");
        assert!(run.stderr.ends_with('\n') && run.stderr.lines().count() == 1, "{run:?}");
    }
    run
}

/// Asserts a failure with exit status `code`; returns stderr.
fn fails(run: Run, code: i32) -> String {
    assert_eq!(run.code, code, "{run:?}");
    run.stderr
}

/// A token server that issues [`TOKEN`] to any request.
fn issuing_server() -> Server {
    Server::http(|_| token_response(TOKEN, 3600))
}

fn basic_header(user: &str, password: &str) -> String {
    let engine = base64::engine::general_purpose::STANDARD;
    format!("Basic {}", engine.encode(format!("{user}:{password}")))
}

fn only_request(server: &Server) -> Recorded {
    let requests = server.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    requests.into_iter().next().expect("one request")
}

fn succeeds(run: Run) {
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stdout, format!("{TOKEN}\n"));
}

#[test]
fn basic_prints_the_token_and_form_encodes_the_credentials() {
    let server = issuing_server();
    succeeds(run(&["--url", &server.url("/oauth/v2/token"), "--auth", "basic"]));
    let request = only_request(&server);
    assert_eq!((request.method.as_str(), request.path.as_str()), ("POST", "/oauth/v2/token"));
    assert_eq!(request.header("authorization"), Some(&*basic_header(ID, "s3cr3t%2B%2F%3D")));
    assert_eq!(request.body, "grant_type=client_credentials");
}

/// A proxy from the environment must never see a plain-http (loopback)
/// request carrying the secret: the "proxy" here is a listener that counts.
#[test]
fn environment_proxies_are_bypassed_for_loopback_http() {
    let proxy = Server::http(|_| response(502, &[], ""));
    let server = issuing_server();
    let proxy_url = proxy.url("");
    let env = [
        ("CLIENT_ID", ID),
        ("CLIENT_SECRET", SECRET),
        ("HTTP_PROXY", &*proxy_url),
        ("ALL_PROXY", &*proxy_url),
    ];
    succeeds(run_with_env(&env, &["--url", &server.url("/oauth/v2/token"), "--auth", "basic"]));
    assert_eq!(server.requests().len(), 1);
    assert!(proxy.requests().is_empty(), "{:?}", proxy.requests());
}

/// For an https:// token URL, a proxy named in the environment is used only
/// with `--proxy env`; `--proxy URL` names one. The "proxy" refuses every
/// CONNECT, so a request that went through it fails to connect.
#[test]
fn https_goes_direct_unless_a_proxy_is_asked_for() {
    let pki = TestPki::new();
    let server = Server::https(&pki, |_| token_response(TOKEN, 3600));
    let proxy = Server::http(|_| response(403, &[], ""));
    let ca_file = temp_file("proxy-ca.pem", &pki.ca_pem);
    let (url, proxy_url) = (server.url_localhost("/token"), proxy.url(""));
    let env = [
        ("CLIENT_ID", ID),
        ("CLIENT_SECRET", SECRET),
        ("HTTPS_PROXY", &*proxy_url),
        ("ALL_PROXY", &*proxy_url),
    ];
    let args = ["--url", &url, "--auth", "basic", "--ca-file", ca_file.to_str().expect("UTF-8 path")];
    succeeds(run_with_env(&env, &args));
    assert!(proxy.requests().is_empty(), "{:?}", proxy.requests());

    let connect = format!("localhost:{}", server.addr().port());
    for (n, choice) in [(1, "env"), (2, proxy_url.as_str())] {
        let stderr = fails(run_with_env(&env, &[&args[..], &["--proxy", choice]].concat()), 1);
        assert!(stderr.contains("could not connect to the token endpoint"), "{choice}: {stderr}");
        let requests = proxy.requests();
        assert_eq!(requests.len(), n, "{choice}: {requests:?}");
        assert_eq!((requests[n - 1].method.as_str(), requests[n - 1].path.as_str()), ("CONNECT", &*connect));
    }
    assert_eq!(server.requests().len(), 1, "only the direct fetch reached the token server");
    let stderr = fails(run_with_env(&env, &[&args[..], &["--proxy", "socks5://127.0.0.1:1"]].concat()), 2);
    assert!(stderr.contains("the proxy must be an http://host:port URL"), "{stderr}");
}

/// `-v` adds the request's event on stderr; stdout and the exit status stay.
#[test]
fn verbose_prints_the_request_event_on_stderr() {
    let server = issuing_server();
    let url = server.url("/token");
    let output = support::target_command(env!("CARGO_BIN_EXE_fetch_token"))
        .args(["--url", &url, "--auth", "basic", "-v"])
        .envs([("CLIENT_ID", ID), ("CLIENT_SECRET", SECRET)])
        .output()
        .expect("run fetch_token");
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&output.stdout), format!("{TOKEN}\n"));
    let stderr = String::from_utf8(output.stderr).expect("UTF-8");
    let event = format!("fetch_token: info: token request to {url}: token valid for 3600 s, in ");
    assert!(
        stderr.starts_with(&event) && stderr.ends_with(" ms\n") && stderr.lines().count() == 1,
        "{stderr}"
    );

    let rejecting = Server::http(|_| response(401, &[], ""));
    let url = rejecting.url("/token");
    let output = support::target_command(env!("CARGO_BIN_EXE_fetch_token"))
        .args(["--verbose", "--url", &url, "--auth", "basic"])
        .envs([("CLIENT_ID", ID), ("CLIENT_SECRET", SECRET)])
        .output()
        .expect("run fetch_token");
    assert_eq!((output.status.code(), output.stdout.len()), (Some(3), 0));
    let stderr = String::from_utf8(output.stderr).expect("UTF-8");
    let lines: Vec<&str> = stderr.lines().collect();
    let error = "token endpoint rejected the client credentials (HTTP 401)";
    assert_eq!(lines.len(), 2, "{stderr}");
    assert!(
        lines[0].starts_with(&format!("fetch_token: warn: token request to {url} failed in ")),
        "{stderr}"
    );
    assert!(lines[0].ends_with(&format!(" ms: {error}")), "{stderr}");
    assert_eq!(lines[1], format!("fetch_token: {error}"));
    assert!(!stderr.contains("s3cr3t"), "{stderr}");
}

#[test]
fn post_prints_the_token_and_sends_the_credentials_in_the_body() {
    let server = issuing_server();
    succeeds(run(&["--url", &server.url("/oauth2/token"), "--auth", "post"]));
    let request = only_request(&server);
    assert_eq!(request.path, "/oauth2/token");
    assert_eq!(request.header("authorization"), None);
    assert_eq!(
        request.body,
        "grant_type=client_credentials&client_id=device-7&client_secret=s3cr3t%2B%2F%3D"
    );
}

#[test]
fn nfleet_uses_the_url_as_given_with_raw_basic_credentials() {
    let server = issuing_server();
    let path = "/8d7a0d8e-41a6-4c1c-9d8e-3f2b1a7c6e5d/token";
    succeeds(run(&["--url", &server.url(path), "--auth", "nfleet"]));
    let request = only_request(&server);
    assert_eq!(request.path, path);
    assert_eq!(request.header("authorization"), Some(&*basic_header(ID, SECRET)));
}

#[test]
fn repeated_scopes_are_joined_with_spaces() {
    let server = issuing_server();
    let url = server.url("/token");
    succeeds(run(&["--scope", "telemetry:write", "--url", &url, "--auth", "basic", "--scope", "read"]));
    assert_eq!(only_request(&server).body, "grant_type=client_credentials&scope=telemetry%3Awrite+read");
}

#[test]
fn ca_file_adds_a_trusted_root() {
    let pki = TestPki::new();
    let server = Server::https(&pki, |_| token_response(TOKEN, 3600));
    let ca_file = temp_file("ca.pem", &pki.ca_pem);
    let url = server.url_localhost("/token");
    succeeds(run(&["--url", &url, "--auth", "basic", "--ca-file", ca_file.to_str().expect("UTF-8 path")]));

    // Without it, the server is not trusted: with Mozilla's roots a TLS failure; without them no
    // root at all, a configuration error.
    let without = run(&["--url", &url, "--auth", "basic"]);
    if cfg!(feature = "webpki-roots") {
        assert!(fails(without, 1).contains("TLS"));
    } else {
        assert!(fails(without, 2).contains("built without its webpki-roots feature"));
    }
    // With another CA: not trusted, a failure that is not a usage error.
    let other_ca = temp_file("other-ca.pem", &TestPki::new().ca_pem);
    let other = other_ca.to_str().expect("UTF-8 path");
    assert!(fails(run(&["--url", &url, "--auth", "basic", "--ca-file", other]), 1).contains("TLS"));
}

#[test]
fn help_prints_usage_on_stdout() {
    for flag in ["--help", "-h"] {
        let run = run_with_env(&[], &[flag]);
        assert_eq!(run.code, 0, "{run:?}");
        assert!(run.stdout.starts_with("usage: "), "{run:?}");
        assert!(run.stdout.contains("--auth basic|post|nfleet"), "{run:?}");
        assert!(run.stdout.contains("--cache FILE"), "{run:?}");
    }
}

#[test]
fn missing_or_empty_credentials_are_usage_errors() {
    let server = issuing_server();
    let args = ["--url", &server.url("/token"), "--auth", "basic"];
    let stderr = fails(run_with_env(&[("CLIENT_SECRET", SECRET)], &args), 2);
    assert_eq!(stderr, "fetch_token: CLIENT_ID is not set\n");
    let stderr = fails(run_with_env(&[("CLIENT_ID", ID), ("CLIENT_SECRET", "")], &args), 2);
    assert_eq!(stderr, "fetch_token: CLIENT_SECRET is empty\n");
    assert!(server.requests().is_empty());
}

#[test]
fn missing_url_is_a_usage_error() {
    assert!(fails(run(&["--auth", "basic"]), 2).contains("--url"));
    assert!(fails(run(&[]), 2).contains("--url"));
}

#[test]
fn malformed_command_lines_are_usage_errors() {
    let url = "https://auth.example.com/token";
    let cases: &[(&[&str], &str)] = &[
        (&["--url", url, "--auth", "basic", "--verbosity"], "unknown flag '--verbosity'"),
        (&["--url", url, "--auth", "basic", "extra"], "unexpected argument"),
        (&["--url", url, "--auth", "basci"], "--auth must be basic, post, nfleet, tls or jwt"),
        (&["--auth", "basic", "--url"], "--url needs a value"),
        (&["--url", "--auth", "basic"], "--url needs a value"),
        (&["--url", url, "--auth", "basic", "--url", url], "--url given more than once"),
        (&["--url", url, "--auth", "basic", "--auth", "post"], "--auth given more than once"),
        (
            &["--url", url, "--auth", "basic", "--ca-file", "a", "--ca-file", "b"],
            "--ca-file given more than once",
        ),
        (
            &["--url", url, "--auth", "basic", "--timeout", "5", "--timeout", "5"],
            "--timeout given more than once",
        ),
        (&["--url", url, "--auth", "basic", "--cache", "a", "--cache", "b"], "--cache given more than once"),
        (&["--url", url, "--auth", "basic", "--cache"], "--cache needs a value"),
        (&["--url", url, "--auth", "tls", "--cert", "a", "--cert", "b"], "--cert given more than once"),
        (&["--url", url, "--auth", "tls", "--key"], "--key needs a value"),
        (&["--url", url], "--auth is required"),
    ];
    for (args, message) in cases {
        let stderr = fails(run(args), 2);
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
}

#[test]
fn bad_timeouts_are_usage_errors() {
    let server = issuing_server();
    let url = server.url("/token");
    for timeout in
        ["0", "0.0", "0.0000000001", "-1", "abc", "", "1e3", "inf", "NaN", "1.2.3", ".", "5s", " 5"]
    {
        let stderr = fails(run(&["--url", &url, "--auth", "basic", "--timeout", timeout]), 2);
        assert!(stderr.contains("--timeout"), "{timeout:?}: {stderr}");
    }
    assert!(server.requests().is_empty());
    // Absurdly long deadlines are cut to a day, not an overflow inside the HTTP stack.
    for timeout in ["5", "2.5", "0.75", "30.", "18446744073709550000", &"9".repeat(400)] {
        succeeds(run(&["--url", &url, "--auth", "basic", "--timeout", timeout]));
    }
}

#[test]
fn bad_time_floors_are_usage_errors() {
    let server = issuing_server();
    let url = server.url("/token");
    for floor in ["", "abc", "+1796083200", "1796083200.5", "1e9", " 1", "253402300800", &"9".repeat(40)] {
        let stderr = fails(run(&["--url", &url, "--auth", "basic", "--time-floor", floor]), 2);
        assert_eq!(
            stderr,
            format!("fetch_token: --time-floor must be seconds since the Unix epoch, not '{floor}'\n")
        );
    }
    let twice = ["--url", &url, "--auth", "basic", "--time-floor", "1", "--time-floor", "2"];
    assert_eq!(fails(run(&twice), 2), "fetch_token: --time-floor given more than once\n");
    assert!(server.requests().is_empty());
    // A floor in the past changes nothing for a right wall clock.
    succeeds(run(&["--url", &url, "--auth", "basic", "--time-floor", "0"]));
    succeeds(run(&["--url", &url, "--auth", "basic", "--time-floor", "253402300799"]));
}

#[cfg(unix)]
#[test]
fn non_utf8_arguments_are_usage_errors() {
    use std::os::unix::ffi::OsStrExt;
    let output = support::target_command(FETCH_TOKEN)
        .env_clear()
        .envs([("CLIENT_ID", ID), ("CLIENT_SECRET", SECRET)])
        .args(["--url", "https://auth.example.com/token", "--auth", "basic", "--scope"])
        .arg(std::ffi::OsStr::from_bytes(b"r\xffead"))
        .output()
        .expect("run fetch_token");
    assert!(fails(check(output), 2).contains("UTF-8"));
}

#[test]
fn plain_http_to_another_host_is_refused() {
    let stderr = fails(run(&["--url", "http://auth.example.com/token", "--auth", "post"]), 2);
    assert!(stderr.contains("https"), "{stderr}");
}

#[test]
fn malformed_urls_are_usage_errors() {
    for url in ["https://[", "https://%zz/", "https://a:b:c/", "https://ä.example/"] {
        fails(run(&["--url", url, "--auth", "basic"]), 2);
    }
}

#[test]
fn unreadable_or_invalid_ca_files_are_usage_errors() {
    let url = "https://auth.example.com/token";
    let missing = std::env::temp_dir().join("cctoken-cli-no-such-ca.pem");
    let stderr =
        fails(run(&["--url", url, "--auth", "basic", "--ca-file", missing.to_str().expect("UTF-8")]), 2);
    assert!(stderr.contains("cannot read the --ca-file file"), "{stderr}");
    let not_pem = temp_file("not-a-ca.pem", "hello\n");
    fails(run(&["--url", url, "--auth", "basic", "--ca-file", not_pem.to_str().expect("UTF-8")]), 2);
}

#[test]
fn rejected_credentials_exit_3() {
    let json = [("Content-Type", "application/json")];
    let answers = [
        response(401, &json, r#"{"error":"invalid_client","error_description":"unknown client"}"#),
        response(403, &[], ""),
        response(400, &json, r#"{"error":"unauthorized_client"}"#),
    ];
    for answer in answers {
        let server = Server::http(move |_| answer.clone());
        let stderr = fails(run(&["--url", &server.url("/token"), "--auth", "basic"]), 3);
        assert!(stderr.contains("rejected"), "{stderr}");
    }
}

#[test]
fn other_server_answers_exit_1() {
    let json = [("Content-Type", "application/json")];
    let answers = [
        (response(500, &[("Content-Type", "text/html")], "<html>oops</html>"), "500"),
        (response(429, &[("Retry-After", "120")], ""), "429"),
        (response(400, &json, r#"{"error":"invalid_scope"}"#), "invalid_scope"),
        (response(200, &[("Content-Type", "text/html")], "<html>captive portal</html>"), "HTML"),
        (response(200, &json, r#"{"token_type":"Bearer"}"#), "no access_token"),
    ];
    for (answer, message) in answers {
        let server = Server::http(move |_| answer.clone());
        let stderr = fails(run(&["--url", &server.url("/token"), "--auth", "basic"]), 1);
        assert!(stderr.contains(message), "{message}: {stderr}");
    }
}

#[test]
fn an_unreachable_server_exits_1() {
    let port = TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let url = format!("http://127.0.0.1:{port}/token");
    fails(run(&["--url", &url, "--auth", "basic"]), 1);
}

#[test]
fn a_server_that_never_answers_times_out() {
    // The kernel completes the connection into the backlog; nobody ever reads or answers.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://127.0.0.1:{}/token", listener.local_addr().expect("addr").port());
    let start = Instant::now();
    let stderr = fails(run(&["--url", &url, "--auth", "basic", "--timeout", "0.5"]), 1);
    let elapsed = start.elapsed();
    assert!(stderr.contains("timed out"), "{stderr}");
    assert!(elapsed >= Duration::from_millis(500) && elapsed < Duration::from_secs(3), "{elapsed:?}");
}

#[test]
fn tls_presents_the_certificate_and_needs_no_secret() {
    let (pki, client) = (TestPki::new(), ClientPki::new(ID));
    let server = Server::https_mutual(&pki, &client, |_| token_response(TOKEN, 3600));
    let url = server.url_localhost("/token");
    let ca = temp_file("mtls-ca.pem", &pki.ca_pem);
    let cert = temp_file("mtls-cert.pem", &client.cert_pem);
    let key = temp_file("mtls-key.pem", &client.key_pem);
    let [ca, cert, key] = [&ca, &cert, &key].map(|p| p.to_str().expect("UTF-8 path").to_owned());
    let tls = ["--url", &url, "--auth", "tls", "--ca-file", &ca, "--cert", &cert, "--key", &key];
    // CLIENT_ID only: the certificate is the credential.
    succeeds(run_with_env(&[("CLIENT_ID", ID)], &tls));
    let request = only_request(&server);
    assert_eq!(request.body, "grant_type=client_credentials&client_id=device-7");
    assert_eq!(request.header("authorization"), None);

    let no_key = ["--url", &url, "--auth", "tls", "--ca-file", &ca, "--cert", &cert];
    assert!(fails(run(&no_key), 2).contains("--auth tls needs --cert and --key"));
    let stray = ["--url", &url, "--auth", "basic", "--cert", &cert, "--key", &key];
    assert!(fails(run(&stray), 2).contains("--cert and --key go with --auth tls, --key with --auth jwt"));
    // A key that is not one: a configuration error that shows none of the file.
    let swapped = ["--url", &url, "--auth", "tls", "--ca-file", &ca, "--cert", &key, "--key", &cert];
    let stderr = fails(run(&swapped), 2);
    assert!(stderr.contains("the client certificate file holds no PEM certificate"), "{stderr}");
    assert!(!stderr.contains("MII"), "{stderr}");
    assert_eq!(server.requests().len(), 1);
}

#[cfg(not(feature = "jwt"))]
#[test]
fn jwt_needs_a_build_with_the_jwt_feature() {
    let server = issuing_server();
    let key = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/keys/p256.pem");
    let stderr = fails(run(&["--url", &server.url("/token"), "--auth", "jwt", "--key", key]), 2);
    assert!(stderr.contains("private_key_jwt needs cctoken's cargo feature jwt"), "{stderr}");
    assert!(server.requests().is_empty());
}

#[cfg(feature = "jwt")]
#[test]
fn jwt_signs_an_assertion_with_the_key_and_needs_no_secret() {
    let server = issuing_server();
    let url = server.url("/token");
    let key = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/keys/p256.pem");
    let jwt = [
        "--url",
        &url,
        "--auth",
        "jwt",
        "--key",
        key,
        "--kid",
        "k-1",
        "--audience",
        "https://issuer.example",
    ];
    succeeds(run_with_env(&[("CLIENT_ID", ID)], &jwt));
    let request = only_request(&server);
    let assertion = request
        .body
        .strip_prefix(
            "grant_type=client_credentials&client_id=device-7\
             &client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer\
             &client_assertion=",
        )
        .expect("the form of private_key_jwt");
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = assertion.split('.').next().and_then(|h| b64.decode(h).ok()).unwrap_or_default();
    assert_eq!(String::from_utf8_lossy(&header), r#"{"alg":"ES256","typ":"JWT","kid":"k-1"}"#);

    assert!(
        fails(run(&["--url", &url, "--auth", "jwt"]), 2).contains("--auth jwt needs --key, and no --cert")
    );
    let stray = ["--url", &url, "--auth", "basic", "--kid", "k-1"];
    assert!(fails(run(&stray), 2).contains("--kid and --audience go with --auth jwt"));
    let p384 = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/keys/p384.pem");
    let stderr = fails(run(&["--url", &url, "--auth", "jwt", "--key", p384]), 2);
    assert!(stderr.contains("the client key is on P-384: ES256 needs a P-256 key"), "{stderr}");
    assert_eq!(server.requests().len(), 1);
}

/// Writes `contents` to a file of this test run's scratch directory.
fn temp_file(name: &str, contents: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("cli-{}-{name}", std::process::id()));
    std::fs::write(&path, contents).expect("write temp file");
    path
}

// ---- --cache FILE ------------------------------------------------------------------

/// A directory of its own for one test under the system's temporary
/// directory, removed when dropped.
struct StateDir(PathBuf);

impl StateDir {
    fn new(name: &str) -> StateDir {
        let path = std::env::temp_dir().join(format!("cctoken-cli-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir(&path).expect("create the test directory");
        StateDir(path)
    }

    /// The path of the state file in it, as an argument.
    fn file(&self) -> String {
        self.0.join("token.state").to_str().expect("UTF-8 path").to_owned()
    }

    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.0)
            .expect("read the test directory")
            .map(|entry| entry.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

impl Drop for StateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// The state file is a no-op off Linux and Android.
#[cfg(all(feature = "state-file", any(target_os = "linux", target_os = "android")))]
#[test]
fn cache_prints_a_saved_token_without_a_request() {
    let server = issuing_server();
    let dir = StateDir::new("hit");
    let (url, file) = (server.url("/token"), dir.file());
    let args = ["--url", &url, "--auth", "basic", "--cache", &file];
    succeeds(run(&args));
    assert_eq!(server.requests().len(), 1);
    for _ in 0..3 {
        succeeds(run(&args));
    }
    assert_eq!(server.requests().len(), 1, "the later runs sent nothing");
    assert_eq!(dir.names(), ["token.state", "token.state.lock"]);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file).expect("the state file").permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let text = std::fs::read_to_string(&file).expect("read");
    assert!(text.contains(TOKEN) && !text.contains("s3cr3t"), "{text}");

    // Another secret: not this file's token.
    let other = run_with_env(&[("CLIENT_ID", ID), ("CLIENT_SECRET", "0ther")], &args);
    assert_eq!((other.code, other.stdout.as_str()), (0, &*format!("{TOKEN}\n")), "{other:?}");
    assert_eq!(server.requests().len(), 2);
}

// The state file is a no-op off Linux and Android.
#[cfg(all(feature = "state-file", any(target_os = "linux", target_os = "android")))]
#[test]
fn cache_obeys_a_saved_cooldown_without_a_request() {
    let server = Server::http(|_| response(401, &[], ""));
    let dir = StateDir::new("cooldown");
    let (url, file) = (server.url("/token"), dir.file());
    let args = ["--url", &url, "--auth", "basic", "--cache", &file];
    let stderr = fails(run(&args), 3);
    assert_eq!(stderr, "fetch_token: token endpoint rejected the client credentials (HTTP 401)\n");
    let stderr = fails(run(&args), 3);
    assert!(
        stderr.starts_with(
            "fetch_token: backing off from the token endpoint after: token endpoint rejected the client \
             credentials (HTTP 401) (no request for "
        ) && stderr.ends_with(" s more, as the --cache file says)\n"),
        "{stderr}"
    );
    assert_eq!(server.requests().len(), 1, "the second run sent nothing");

    // A server's Retry-After too, with exit status 1.
    let server = Server::http(|_| response(503, &[("Retry-After", "300")], ""));
    let dir = StateDir::new("retry-after");
    let (url, file) = (server.url("/token"), dir.file());
    let args = ["--url", &url, "--auth", "basic", "--cache", &file];
    fails(run(&args), 1);
    assert!(fails(run(&args), 1).contains("HTTP status 503 (retry after 300 s)"));
    assert_eq!(server.requests().len(), 1);
}

/// A build without the feature refuses the flag, rather than quietly
/// requesting a token on every run.
#[cfg(not(feature = "state-file"))]
#[test]
fn cache_without_the_state_file_feature_is_a_usage_error() {
    let server = issuing_server();
    let dir = StateDir::new("no-feature");
    let (url, file) = (server.url("/token"), dir.file());
    let stderr = fails(run(&["--url", &url, "--auth", "basic", "--cache", &file]), 2);
    assert_eq!(
        stderr,
        "fetch_token: --cache needs the state-file feature, which this build of fetch_token lacks\n"
    );
    assert!(server.requests().is_empty(), "nothing was sent");
    assert_eq!(dir.names(), Vec::<String>::new());
}

#[test]
fn without_cache_nothing_is_written() {
    let server = issuing_server();
    let dir = StateDir::new("no-cache");
    let output = support::target_command(FETCH_TOKEN)
        .current_dir(&dir.0)
        .env_clear()
        .envs([("CLIENT_ID", ID), ("CLIENT_SECRET", SECRET)])
        .args(["--url", &server.url("/token"), "--auth", "basic"])
        .output()
        .expect("run fetch_token");
    succeeds(check(output));
    succeeds(run(&["--url", &server.url("/token"), "--auth", "basic"]));
    assert_eq!(server.requests().len(), 2, "every run requests a token");
    assert_eq!(dir.names(), Vec::<String>::new());
}

/// A full disk (here: a file size limit of zero, which fails every write to
/// a file with EFBIG, the signal it would raise ignored) fails the save, not
/// the run.
// The state file is a no-op off Linux and Android.
#[cfg(all(feature = "state-file", any(target_os = "linux", target_os = "android")))]
#[test]
fn cache_on_a_full_disk_still_prints_the_token() {
    let server = issuing_server();
    let dir = StateDir::new("full");
    let (url, file) = (server.url("/token"), dir.file());
    let mut command = std::process::Command::new("sh");
    command.args(["-c", "trap '' XFSZ; ulimit -f 0 && exec \"$@\"", "sh"]);
    command.args(support::test_runner().unwrap_or_default());
    command.arg(FETCH_TOKEN).args(["--url", &url, "--auth", "basic", "--cache", &file, "-v"]);
    let output =
        command.env_clear().envs([("CLIENT_ID", ID), ("CLIENT_SECRET", SECRET)]).output().expect("sh");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&output.stdout), format!("{TOKEN}\n"));
    assert!(
        stderr.contains(&format!("fetch_token: warn: cannot save the state file {file:?}: ")),
        "{stderr}"
    );
    assert!(!stderr.contains("s3cr3t") && !stderr.contains(TOKEN), "{stderr}");
    // No state, and no temporary file left behind.
    assert_eq!(dir.names(), ["token.state.lock"]);
}
