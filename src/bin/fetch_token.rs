//! Fetches one access token and prints it, for shell scripts on a device.
//!
//! ```text
//! CLIENT_ID=.. CLIENT_SECRET=.. fetch_token --url TOKEN_URL --auth basic|post|nfleet \
//!     [--scope S]... [--ca-file PEM] [--timeout SECS] [--proxy URL|env] [--cache FILE] [-v]
//! CLIENT_ID=.. fetch_token --url TOKEN_URL --auth tls --cert PEM --key PEM [...]
//! CLIENT_ID=.. fetch_token --url TOKEN_URL --auth jwt --key PEM [--kid KID] [--audience AUD] [...]
//! ```
//!
//! On success the token alone is printed on stdout and the exit status is 0.
//! On failure stdout stays empty, one line starting `fetch_token: ` goes to
//! stderr, and the exit status says what to do next:
//!
//! * 2: usage or configuration error (flags, environment, URL, CA file): fix the call;
//! * 3: the server rejected the client credentials: fix the credentials;
//! * 1: anything else (network, timeout, server error): retrying may help.
//!
//! The credentials are read from the environment only, never from the command
//! line, where other users of the device could see them in the process list.
//! With `--auth tls` (mutual TLS) the credential is the client certificate
//! and its key, read from the files `--cert` and `--key` name, and with
//! `--auth jwt` (`private_key_jwt`) the key that `--key` names signs a client
//! assertion for each request: no secret is needed. Neither a secret, a key nor the token is ever written to stderr.
//!
//! With `--cache FILE` (in a build with the cargo feature `state-file`; in
//! others it is a usage error), a state file keeps the token and
//! the failure gate between runs, so that a script calling `fetch_token`
//! before each API call does not request a token each time: a fresh token in
//! the file is printed without any network I/O; otherwise a token is
//! requested, printed and saved. A failure saved there (a backoff, a
//! server's `Retry-After`, the cooldown after rejected credentials) is
//! obeyed without a request: exit status 1, or 3 for rejected credentials.
//! Runs that share the file request a token one at a time. The file also
//! keeps the time the last token response said, so that a later run whose
//! wall clock reads 1970 still verifies the server's certificate (see
//! `cctoken::trusted_time`). Put the file on tmpfs, in a directory only this
//! user can write (`/run/<agent>/`).

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use cctoken::{AuthStyle, Client, Config, Error, Proxy};

const HELP: &str = "\
usage: CLIENT_ID=.. CLIENT_SECRET=.. fetch_token --url TOKEN_URL --auth basic|post|nfleet
                   [--scope S]... [--ca-file PEM] [--timeout SECS] [--proxy URL|env]
                   [--cache FILE] [--time-floor SECS] [-v]
       CLIENT_ID=.. fetch_token --url TOKEN_URL --auth tls --cert PEM --key PEM [...]
       CLIENT_ID=.. fetch_token --url TOKEN_URL --auth jwt --key PEM [--kid KID]
                   [--audience AUD] [...]

Prints an OAuth 2.0 client-credentials access token on stdout. The client id and
secret are read from the environment variables CLIENT_ID and CLIENT_SECRET only.

  --url TOKEN_URL  the token endpoint (https://, or http:// to a loopback host)
  --auth STYLE     basic: client_secret_basic; post: client_secret_post;
                   nfleet: HTTP Basic with the raw id and secret;
                   tls: mutual TLS (RFC 8705), a client certificate instead of
                   a secret; jwt: private_key_jwt (RFC 7523), an assertion
                   signed with --key instead of a secret
  --cert PEM       with --auth tls: the client certificate (then any
                   intermediates)
  --key PEM        with --auth tls: its private key; with --auth jwt: the key
                   that signs (RSA for RS256, P-256 for ES256); unencrypted
                   PKCS#8, PKCS#1 or SEC1
  --kid KID        with --auth jwt: the assertion's key id
  --audience AUD   with --auth jwt: the assertion's aud (default: TOKEN_URL)
  --scope S        a scope to request; repeat for several
  --ca-file PEM    also trust the CA certificates in this PEM file
  --timeout SECS   deadline for the whole request (default 30)
  --proxy URL|env  reach an https:// token URL through this http:// proxy, or
                   through the one in ALL_PROXY/HTTPS_PROXY/HTTP_PROXY (and
                   NO_PROXY) with 'env'; default: direct, whatever the environment
  --cache FILE     keep the token, and any failure to obey, in FILE between runs
                   (mode 0600; it holds the token, never the secret): a fresh
                   token there is printed without a request, a saved backoff or
                   cooldown is obeyed without one. Put it on tmpfs, e.g. in
                   /run/AGENT/; a bad file is ignored (-v says why). Needs a
                   build with the cargo feature state-file
  --time-floor SECS  it is at least SECS seconds since the Unix epoch now (from
                   GPS or the modem's network time): a wall clock that reads
                   earlier is not believed when the server's certificate is
                   checked (--cache also keeps the time a token server said)
  -v, --verbose    also print cctoken's events on stderr, one line each (the
                   token request, its outcome and duration; never a secret)

exit status: 0 token printed, 1 failed (retry may help),
             2 usage or configuration error, 3 credentials rejected";

/// The exit status for a usage or configuration error.
const USAGE_ERROR: u8 = 2;

/// The command line, parsed.
#[derive(Default)]
struct Args {
    url: Option<String>,
    auth: Option<AuthStyle>,
    scopes: Vec<String>,
    ca_file: Option<String>,
    timeout: Option<Duration>,
    proxy: Option<Proxy>,
    cache: Option<String>,
    time_floor: Option<u64>,
    cert: Option<String>,
    key: Option<String>,
    kid: Option<String>,
    audience: Option<String>,
    verbose: bool,
    help: bool,
}

/// A failure: the exit status and the one-line reason.
struct Failure(u8, String);

fn usage(reason: impl Into<String>) -> Failure {
    Failure(USAGE_ERROR, reason.into())
}

fn main() -> ExitCode {
    let outcome = match parse_args(std::env::args_os().skip(1)) {
        Ok(args) if args.help => Ok(HELP.to_owned()),
        Ok(args) => {
            if args.verbose {
                cctoken::set_event_sink(print_event);
            }
            fetch(args)
        }
        Err(failure) => Err(failure),
    };
    match outcome {
        Ok(mut output) => {
            output.push('\n');
            // A closed stdout means the token was not delivered: that is a failure too.
            match std::io::stdout().write_all(output.as_bytes()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(Failure(1, format!("cannot write to stdout: {e}"))),
            }
        }
        Err(failure) => fail(failure),
    }
}

/// Prints one of cctoken's events on stderr for `-v`: `fetch_token: LEVEL: message`.
/// A sink rather than a `log` logger, which would keep every `log` call of
/// ureq and rustls in the binary.
fn print_event(event: &cctoken::Event<'_>) {
    let level = event.level().as_str().to_ascii_lowercase();
    // Events are a courtesy: a closed stderr must not stop the fetch.
    let _ = std::io::stderr().write_all(format!("fetch_token: {level}: {event}\n").as_bytes());
}

fn fail(Failure(code, reason): Failure) -> ExitCode {
    let _ = std::io::stderr().write_all(format!("fetch_token: {reason}\n").as_bytes());
    ExitCode::from(code)
}

fn parse_args(argv: impl Iterator<Item = OsString>) -> Result<Args, Failure> {
    let mut argv = argv.map(|arg| arg.into_string().map_err(|_| usage("arguments must be valid UTF-8")));
    let mut args = Args::default();
    while let Some(flag) = argv.next() {
        let flag = flag?;
        let mut value = || match argv.next().transpose()? {
            Some(value) if !value.starts_with("--") => Ok(value),
            _ => Err(usage(format!("{flag} needs a value"))),
        };
        let given_before = match flag.as_str() {
            "--help" | "-h" => {
                args.help = true;
                return Ok(args);
            }
            "-v" | "--verbose" => std::mem::replace(&mut args.verbose, true),
            "--url" => args.url.replace(value()?).is_some(),
            "--auth" => args.auth.replace(auth_style(&value()?)?).is_some(),
            "--scope" => {
                args.scopes.push(value()?);
                false
            }
            "--ca-file" => args.ca_file.replace(value()?).is_some(),
            "--timeout" => args.timeout.replace(seconds(&value()?)?).is_some(),
            "--proxy" => args.proxy.replace(proxy(value()?)).is_some(),
            "--cache" => args.cache.replace(value()?).is_some(),
            "--time-floor" => args.time_floor.replace(time_floor(&value()?)?).is_some(),
            "--cert" => args.cert.replace(value()?).is_some(),
            "--key" => args.key.replace(value()?).is_some(),
            "--kid" => args.kid.replace(value()?).is_some(),
            "--audience" => args.audience.replace(value()?).is_some(),
            // Only flags are echoed: a stray argument might be a secret pasted in the wrong place.
            _ if flag.starts_with('-') => return Err(usage(format!("unknown flag '{flag}' (see --help)"))),
            _ => return Err(usage("unexpected argument: flags take the form --name VALUE (see --help)")),
        };
        if given_before {
            return Err(usage(format!("{flag} given more than once")));
        }
    }
    #[cfg(not(feature = "state-file"))]
    if args.cache.is_some() {
        return Err(usage("--cache needs the state-file feature, which this build of fetch_token lacks"));
    }
    Ok(args)
}

fn auth_style(name: &str) -> Result<AuthStyle, Failure> {
    match name {
        "basic" => Ok(AuthStyle::Basic),
        "post" => Ok(AuthStyle::Post),
        // NFleet: the URL as given, with the raw id and secret as Basic credentials.
        "nfleet" => Ok(AuthStyle::BasicRaw),
        "tls" => Ok(AuthStyle::TlsClientAuth),
        "jwt" => Ok(AuthStyle::PrivateKeyJwt),
        _ => Err(usage(format!("--auth must be basic, post, nfleet, tls or jwt, not '{name}'"))),
    }
}

fn proxy(value: String) -> Proxy {
    match value.as_str() {
        "env" => Proxy::FromEnvironment,
        _ => Proxy::Url(value),
    }
}

/// A positive number of seconds: digits, with at most one decimal point, to
/// the nanosecond (further digits are cut off). More than a day counts as a
/// day (an absurdly long deadline would overflow the clock inside the HTTP
/// stack). Parsed by hand: the float parser would add 16 KiB to the binary.
fn seconds(text: &str) -> Result<Duration, Failure> {
    const DAY: u64 = 24 * 3600;
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let is_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.len() + fraction.len() > 0 && is_digits(whole) && is_digits(fraction) {
        let digit = |b: u8| u64::from(b - b'0');
        let secs = whole.bytes().fold(0u64, |n, b| n.saturating_mul(10).saturating_add(digit(b)));
        let nanos = fraction.bytes().chain(std::iter::repeat(b'0')).take(9).fold(0, |n, b| n * 10 + digit(b));
        let timeout = if secs >= DAY {
            Duration::from_secs(DAY)
        } else {
            Duration::from_nanos(nanos) + Duration::from_secs(secs)
        };
        if !timeout.is_zero() {
            return Ok(timeout);
        }
    }
    Err(usage(format!("--timeout must be a positive number of seconds, not '{text}'")))
}

/// Seconds since the Unix epoch: digits only, and no later than the year
/// 9999 (a time the system's clock type can hold everywhere).
fn time_floor(text: &str) -> Result<u64, Failure> {
    const YEAR_9999_END: u64 = 253_402_300_799;
    match text.parse::<u64>() {
        Ok(secs) if text.bytes().all(|b| b.is_ascii_digit()) && secs <= YEAR_9999_END => Ok(secs),
        _ => Err(usage(format!("--time-floor must be seconds since the Unix epoch, not '{text}'"))),
    }
}

/// The file that `flag` names; its content is never echoed.
fn read(flag: &str, path: &str) -> Result<Vec<u8>, Failure> {
    std::fs::read(path).map_err(|e| usage(format!("cannot read the {flag} file '{path}': {e}")))
}

/// The environment variable `name`, which must be set and not empty.
fn env(name: &str) -> Result<String, Failure> {
    let problem = match std::env::var(name) {
        Ok(value) if !value.is_empty() => return Ok(value),
        Ok(_) => "is empty",
        Err(std::env::VarError::NotPresent) => "is not set",
        Err(std::env::VarError::NotUnicode(_)) => "is not valid UTF-8",
    };
    Err(usage(format!("{name} {problem}")))
}

/// Fetches the token `args` describe; the token's value on success.
fn fetch(args: Args) -> Result<String, Failure> {
    let url = args.url.ok_or_else(|| usage("--url is required (see --help)"))?;
    let style = args.auth.ok_or_else(|| usage("--auth is required (see --help)"))?;
    let id = env("CLIENT_ID")?;
    if style != AuthStyle::PrivateKeyJwt && (args.kid.is_some() || args.audience.is_some()) {
        return Err(usage("--kid and --audience go with --auth jwt"));
    }
    let mut config = match (style, args.cert, args.key) {
        (AuthStyle::TlsClientAuth, Some(cert), Some(key)) => {
            Config::tls_client_auth(&url, &id, read("--cert", &cert)?, read("--key", &key)?)
        }
        (AuthStyle::TlsClientAuth, ..) => return Err(usage("--auth tls needs --cert and --key")),
        (AuthStyle::PrivateKeyJwt, None, Some(key)) => {
            let mut config = Config::private_key_jwt(&url, &id, read("--key", &key)?);
            if let Some(kid) = &args.kid {
                config = config.assertion_key_id(kid);
            }
            if let Some(audience) = &args.audience {
                config = config.assertion_audience(audience);
            }
            config
        }
        (AuthStyle::PrivateKeyJwt, ..) => return Err(usage("--auth jwt needs --key, and no --cert")),
        (_, None, None) => {
            // The constructor's style is replaced by the one asked for.
            Config::client_secret_basic(&url, &id, env("CLIENT_SECRET")?).auth_style(style)
        }
        _ => return Err(usage("--cert and --key go with --auth tls, --key with --auth jwt")),
    };
    for scope in &args.scopes {
        config = config.scope(scope);
    }
    if let Some(path) = &args.ca_file {
        config = config.add_root_pem(read("--ca-file", path)?);
    }
    if let Some(timeout) = args.timeout {
        config = config.timeout(timeout);
    }
    if let Some(proxy) = args.proxy {
        config = config.proxy(proxy);
    }
    if let Some(secs) = args.time_floor {
        cctoken::raise_time_floor(std::time::UNIX_EPOCH + Duration::from_secs(secs));
    }
    let token = match args.cache {
        #[cfg(feature = "state-file")]
        Some(path) => fetch_cached(config, path),
        _ => Client::new(config).and_then(|client| client.fetch()),
    };
    Ok(token.map_err(failure)?.access_token().secret().to_owned())
}

/// `--cache FILE`: a fresh token in the file is served with no request; any
/// other call requests one (or obeys a saved failure) and saves the outcome.
#[cfg(feature = "state-file")]
fn fetch_cached(config: Config, path: String) -> Result<cctoken::Token, Error> {
    let state = cctoken::StateFile::new(path, &config);
    cctoken::TokenCache::new(Client::new(config)?).with_state_file(state).token().cloned()
}

/// The exit status and the line for `e`.
fn failure(e: Error) -> Failure {
    let code = match e {
        Error::Config(_) => USAGE_ERROR,
        // Also a backoff that a saved rejection of the credentials keeps shut.
        _ if e.is_credentials_rejected() => 3,
        _ => 1,
    };
    // Only a cache refuses a request: the state file of --cache.
    #[cfg(feature = "state-file")]
    if let Error::Backoff { retry_at, .. } | Error::RateLimited { retry_at } = &e {
        let left = retry_at.saturating_duration_since(cctoken::now());
        let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
        return Failure(code, format!("{e} (no request for {secs} s more, as the --cache file says)"));
    }
    Failure(code, format!("{e}"))
}
