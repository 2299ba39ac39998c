//! Every event cctoken emits, in one place, so that what reaches a log can be
//! read (and audited) at a glance: to the `log` facade (target `cctoken`, one
//! line each) and to the event sink, if a program set one.
//!
//! No event holds the client secret, a token, a request or response body:
//! only URLs without their query, the state file's path, durations, counts
//! and errors, whose `Display` is free of secrets by construction.

use std::fmt;
use std::sync::OnceLock;
use std::time::Duration;

use log::Level;

use crate::error::Error;
#[cfg(feature = "ureq")]
use crate::token::Token;

const TARGET: &str = "cctoken";

/// One of cctoken's events, as a [sink](set_event_sink) receives it: the
/// same line the `log` facade gets.
#[derive(Debug, Clone, Copy)]
pub struct Event<'a> {
    level: Level,
    message: fmt::Arguments<'a>,
}

impl Event<'_> {
    /// How much it matters: `Debug`, `Info` or `Warn`, as in the log.
    pub fn level(&self) -> Level {
        self.level
    }
}

/// The message, one line.
impl fmt::Display for Event<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_fmt(self.message)
    }
}

static SINK: OnceLock<fn(&Event<'_>)> = OnceLock::new();

/// Sends cctoken's events to `sink` too, for the life of the process; the
/// first call wins and later ones return `false`.
///
/// The `log` facade gets every event anyway. A sink is for a program that
/// wants cctoken's events without installing a `log` logger: a program
/// that installs one keeps every `log` call of its dependencies (ureq's and
/// rustls' among them) in its binary, about 80 KB of code that a small CLI
/// would carry for nothing; `fetch_token -v` uses a sink for that reason.
///
/// ```
/// fn to_stderr(event: &cctoken::Event<'_>) {
///     eprintln!("{}: {event}", event.level());
/// }
/// cctoken::set_event_sink(to_stderr);
/// ```
pub fn set_event_sink(sink: fn(&Event<'_>)) -> bool {
    SINK.set(sink).is_ok()
}

fn emit(level: Level, message: fmt::Arguments<'_>) {
    log::log!(target: TARGET, level, "{message}");
    if let Some(sink) = SINK.get() {
        sink(&Event { level, message });
    }
}

/// The token URL as logged: without its query or fragment, which a server
/// could have asked to carry something private.
#[cfg(feature = "ureq")]
fn shown(url: &str) -> &str {
    url.split(['?', '#']).next().unwrap_or(url)
}

/// A token request and its outcome, from the moment it was sent.
#[cfg(feature = "ureq")]
pub(crate) fn token_request(url: &str, took: Duration, result: &Result<Token, Error>) {
    let (url, ms) = (shown(url), took.as_millis());
    match result {
        Ok(token) => {
            let secs = token.lifetime().as_secs();
            emit(Level::Info, format_args!("token request to {url}: token valid for {secs} s, in {ms} ms"))
        }
        Err(error) => emit(Level::Warn, format_args!("token request to {url} failed in {ms} ms: {error}")),
    }
}

/// Seconds, rounded up, for a log line: "0 s" only when nothing is left.
fn secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// Why the cache asks for a new token.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Refresh {
    /// It has none yet.
    First,
    /// The cached one reached its refresh point.
    Due,
    /// The API rejected the cached one.
    Rejected,
    /// The last request failed and the gate opened again.
    Retry,
}

/// A token came over TLS verified at the floor of the trusted time, not at
/// the wall clock, which reads earlier: `wall` and `floor` in seconds since
/// the epoch.
#[cfg(feature = "ureq")]
pub(crate) fn clock_behind(wall: u64, floor: u64) {
    let (wall, floor) = (crate::time::utc(wall), crate::time::utc(floor));
    emit(
        Level::Warn,
        format_args!(
            "the wall clock reads {wall}, earlier than {floor}, which has passed: the token server's \
             certificate was checked at the latter"
        ),
    );
}

/// The cache is about to request a token.
pub(crate) fn refresh(why: Refresh) {
    let why = match why {
        Refresh::First => "no token yet",
        Refresh::Due => "the token reached its refresh point",
        Refresh::Rejected => "the API rejected the token",
        Refresh::Retry => "retrying after a failure",
    };
    emit(Level::Debug, format_args!("requesting a new token: {why}"));
}

/// A token request failed, and the cache will not send another for `wait`.
pub(crate) fn gate_shut(error: &Error, failures: u32, wait: Duration) {
    let why = match error.is_transient() {
        true => "backoff",
        false => "cooldown: retrying will not help until the configuration or credentials change",
    };
    let after =
        error.retry_after().map(|d| format!(", server's Retry-After {} s", secs(d))).unwrap_or_default();
    let wait = secs(wait);
    emit(
        Level::Warn,
        format_args!(
            "token request failed ({failures} in a row): {error}; next request in {wait} s ({why}{after})"
        ),
    );
}

/// The cached token is served after its refresh point, because its refresh
/// just failed.
pub(crate) fn stale(valid_for: Duration) {
    let left = secs(valid_for);
    emit(
        Level::Warn,
        format_args!("serving the cached token, valid for {left} s more, while its refresh fails"),
    );
}

/// A call is answered with an error without a request: the gate is shut.
pub(crate) fn refused(retry_in: Duration) {
    let left = secs(retry_in);
    emit(Level::Debug, format_args!("no usable token and no request allowed for {left} s"));
}

/// The API rejected the cached token.
pub(crate) fn invalidated() {
    emit(Level::Info, format_args!("the API rejected the token: it will be replaced"));
}

// ---- The state file ------------------------------------------------------------

#[cfg(feature = "state-file")]
pub(crate) use state_file::*;

/// The state file's events (feature `state-file`). Paths are shown with
/// `Debug`: quoted, and any control character escaped, so that an event
/// stays one line.
#[cfg(feature = "state-file")]
mod state_file {
    use std::path::Path;
    use std::time::Duration;

    use log::Level;

    use super::{emit, secs};
    use crate::error::Error;

    /// A state file was not used: `problem` (warn) or not (info: a state of
    /// another boot or configuration, which a reboot or a new secret leaves).
    pub(crate) fn state_ignored(path: &Path, why: &str, problem: bool) {
        let level = if problem { Level::Warn } else { Level::Info };
        emit(
            level,
            format_args!("ignoring the state file {path:?}: {why}; carrying on as if there were none"),
        );
    }

    /// The state could not be saved; the cache carries on without it.
    pub(crate) fn state_not_saved(path: &Path, error: &std::io::Error) {
        emit(
            Level::Warn,
            format_args!("cannot save the state file {path:?}: {error}; carrying on without it"),
        );
    }

    /// The lock file next to the state file cannot be locked: this process
    /// requests a token whatever others do.
    pub(crate) fn state_lock_unavailable(lock: &Path, error: &std::io::Error) {
        emit(
            Level::Warn,
            format_args!("cannot lock the state file's lock {lock:?}: {error}; requesting a token anyway"),
        );
    }

    /// The kernel's boot id cannot be read: no state file is read or written.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    pub(crate) fn state_no_boot_id() {
        emit(
            Level::Warn,
            format_args!(
                "cannot read the boot id from /proc/sys/kernel/random/boot_id: state files are not used"
            ),
        );
    }

    /// The state file held a token, or a shut gate, that the cache took.
    pub(crate) fn state_restored(token_left: Option<Duration>, gate: Option<(Duration, &Error)>) {
        if let Some(left) = token_left {
            let left = secs(left);
            emit(Level::Debug, format_args!("took a token from the state file, valid for {left} s more"));
        }
        if let Some((left, error)) = gate {
            let left = secs(left);
            emit(
                Level::Info,
                format_args!(
                    "the state file says the last token request failed: {error}; next request in {left} s"
                ),
            );
        }
    }

    /// Another process sharing the state file is requesting a token: the cached
    /// one is served meanwhile.
    pub(crate) fn refreshing_elsewhere(valid_for: Duration) {
        let left = secs(valid_for);
        emit(
            Level::Debug,
            format_args!(
                "another process is requesting a token: serving the cached one, valid for {left} s more"
            ),
        );
    }
}
