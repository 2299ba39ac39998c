//! The probe of `scripts/suspend-test.sh`: does a cached token survive a
//! suspend-to-RAM longer than its lifetime? Runs as root inside a throwaway VM
//! (it suspends the machine it runs on), never on a developer's machine.
//!
//! ```text
//! suspend_probe [SLEEP_S]      # default 60
//! ```
//!
//! It starts a loopback token server in this process that issues
//! `LIFETIME_S`-second tokens named `tok-1`, `tok-2`, …, caches one with
//! [`TokenCache`], suspends the machine to RAM for `SLEEP_S` seconds (RTC
//! wake alarm, then `mem` to `/sys/power/state`), and on waking asks the cache
//! again. Its last line is machine-readable:
//!
//! ```text
//! suspend-probe: clock=boottime slept_s=61 requests=2 token=tok-2 verdict=fetched-after-wake
//! ```
//!
//! `clock=instant` when built with `--cfg cctoken_instant_clock`, whose cache
//! cannot see the sleep; there the expected verdict is `served-expired-token`.
//! `slept_s` is how much longer `/proc/uptime` (which counts suspend) moved
//! than `Instant` (which does not): it shows that a real suspend happened.
//!
//! The token values are printed because they are fake names this probe's own
//! server made up; a real token, or the client secret, must never be printed.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cctoken::{Client, Config, TokenCache};

#[path = "../tests/support/mod.rs"]
mod support;
use support::{Server, token_response};

/// The lifetime of each token the server issues. The default policy refreshes
/// a token at 20–85 % of its lifetime but never within 10 s of fetching it, so
/// the control keeps serving `tok-1` if less than 10 s passes awake between
/// the two calls.
const LIFETIME_S: u64 = 20;
const DEFAULT_SLEEP_S: u64 = 60;

const CLOCK: &str = if cfg!(cctoken_instant_clock) { "instant" } else { "boottime" };

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            println!("suspend-probe: clock={CLOCK} error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let sleep_s = match std::env::args().nth(1) {
        None => DEFAULT_SLEEP_S,
        Some(arg) => arg.parse().map_err(|_| format!("SLEEP_S must be whole seconds, not {arg:?}"))?,
    };
    if sleep_s <= LIFETIME_S {
        return Err(format!("SLEEP_S must exceed the token lifetime, {LIFETIME_S} s"));
    }

    let issued = Arc::new(AtomicU64::new(0));
    let counter = issued.clone();
    let server = Server::http(move |_| {
        let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
        token_response(&format!("tok-{n}"), LIFETIME_S)
    });
    let config = Config::client_secret_basic(&server.url("/token"), "id", "secret");
    let client = Client::new(config).map_err(|e| format!("client: {e}"))?;
    let mut cache = TokenCache::new(client);

    let first = cache.token().map_err(|e| format!("first token: {e}"))?.access_token().secret().to_owned();
    let (fetched_mono, fetched_boot) = (Instant::now(), uptime()?);
    println!(
        "suspend-probe: clock={CLOCK} token={first} lifetime_s={LIFETIME_S}; suspending for {sleep_s} s"
    );

    suspend(sleep_s)?;

    let second =
        cache.token().map_err(|e| format!("token after wake: {e}"))?.access_token().secret().to_owned();
    let (awake, real) = (fetched_mono.elapsed(), uptime()?.saturating_sub(fetched_boot));
    let slept = real.saturating_sub(awake);
    let requests = issued.load(Ordering::SeqCst);
    // The token was really expired at the second call only if more than its
    // lifetime passed on the clock that counts suspend.
    let expired = real > Duration::from_secs(LIFETIME_S);
    let verdict = match (requests, second == first) {
        (2, false) => "fetched-after-wake",
        (1, true) if expired => "served-expired-token",
        (1, true) => "served-valid-token",
        _ => "unexpected",
    };
    println!(
        "suspend-probe: clock={CLOCK} slept_s={} awake_s={} requests={requests} token={second} verdict={verdict}",
        slept.as_secs(),
        awake.as_secs()
    );
    Ok(())
}

/// Suspends to RAM and returns after the RTC alarm has woken the machine
/// `seconds` later: the write of `mem` blocks until resume.
fn suspend(seconds: u64) -> Result<(), String> {
    const ALARM: &str = "/sys/class/rtc/rtc0/wakealarm";
    let write = |path: &str, value: &str| {
        std::fs::write(path, value).map_err(|e| format!("write {value:?} to {path}: {e}"))
    };
    // An alarm already set makes the kernel refuse a new one: clear it first.
    write(ALARM, "0")?;
    write(ALARM, &format!("+{seconds}"))?;
    write("/sys/power/state", "mem")
}

/// Time since boot, suspend included: the first field of `/proc/uptime`.
fn uptime() -> Result<Duration, String> {
    let text = std::fs::read_to_string("/proc/uptime").map_err(|e| format!("read /proc/uptime: {e}"))?;
    text.split_whitespace()
        .next()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| format!("/proc/uptime: unexpected contents {text:?}"))
}
