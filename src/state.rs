//! The state file: a [`TokenCache`](crate::TokenCache)'s token and failure
//! gate, kept across restarts. The one module that touches the file system.
//!
//! What is decided here is pure (the key, the format, reading it leniently);
//! the I/O is in [`os`], a page of Linux: reading at most [`MAX_STATE`]
//! bytes of a regular file this user owns and no one else can read, writing
//! a whole new file and renaming it over the old one, and a lock file that
//! tells processes sharing the state which of them is requesting a token.
//! Elsewhere than on Linux and Android, `os` does nothing.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::auth::AuthStyle;
use crate::cache::{Cached, Gate};
use crate::config::Config;
use crate::error::{Error, OAuthError, TransportKind};
use crate::events;
use crate::sha256::{Sha256, hex, sha256};
use crate::time::{self, Floor};
use crate::token::{AccessToken, Token};

/// The most of a state file that is read, in bytes: a larger file is not
/// one cctoken wrote, and a larger state is not written.
pub(crate) const MAX_STATE: u64 = 16 * 1024;

/// The first line's first word.
const MAGIC: &str = "cctoken-state";
/// The format this cctoken writes and reads; a file of a newer one is ignored.
const VERSION: u32 = 1;

/// Where a [`TokenCache`](crate::TokenCache) keeps its state across
/// restarts: the token it holds and the failure gate, so that a restarted
/// agent (after an update, a configuration push, a crash) serves the token it
/// had, and keeps away from a token server that was failing or had rejected
/// its credentials, instead of asking again at once.
///
/// Attach it with [`TokenCache::with_state_file`](crate::TokenCache::with_state_file).
/// The file holds the access token (a bearer credential: anyone who reads it
/// can use the token until it expires) and never the client secret. It is
/// written with mode 0600, a whole new file renamed over the old one, and
/// read leniently: a file that is missing, damaged, of another boot or
/// another configuration, or that anyone but this user could have written
/// is ignored, as if there were none. The README's "State that survives a
/// restart" has the details.
///
/// Times are stored on the boot clock (`CLOCK_BOOTTIME`), with the kernel's
/// boot id: a state written before the last reboot is ignored. Persistence
/// needs both, so on systems other than Linux and Android the state file
/// does nothing: nothing is read or written.
///
/// Needs the cargo feature `state-file` (not on by default for now).
///
/// ```no_run
/// # #[cfg(feature = "ureq")] fn main() -> Result<(), cctoken::Error> {
/// let config = cctoken::Config::client_secret_basic("https://auth.example.com/token", "id", "secret");
/// // On tmpfs, in a directory only the agent can write: cleared by a reboot, no flash wear.
/// let state = cctoken::StateFile::new("/run/my-agent/token.state", &config);
/// let mut cache = cctoken::TokenCache::new(cctoken::Client::new(config)?).with_state_file(state);
/// let bearer = cache.token()?.authorization();
/// # Ok(()) }
/// # #[cfg(not(feature = "ureq"))] fn main() {}
/// ```
pub struct StateFile {
    path: PathBuf,
    /// Which configuration the state belongs to: see [`StateFile::new`].
    key: [u8; 32],
    /// The last problem reported about the file, so that reading the same
    /// bad file again (before a fetch, after attaching) does not repeat it.
    reported: Option<String>,
}

/// Shows the path, not the key (a digest of the secret, among others).
impl fmt::Debug for StateFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StateFile").field("path", &self.path).finish_non_exhaustive()
    }
}

impl StateFile {
    /// The state file at `path`, for the token endpoint and credentials of
    /// `config`. Reads and writes nothing.
    ///
    /// The state is keyed by a SHA-256 over the token URL, the client id, the
    /// auth style, the scopes, the extra parameters and a SHA-256 of the
    /// client secret: a file written for another of these (a rotated secret,
    /// another scope) is ignored, so a token is never served for credentials
    /// other than those it was issued to. Like any digest of a secret, the
    /// key lets someone who can read the file test guesses of a weak secret;
    /// the file is readable by its owner only.
    ///
    /// ```
    /// let config = cctoken::Config::client_secret_post("https://auth.example.com/token", "id", "secret");
    /// let state = cctoken::StateFile::new("/run/my-agent/token.state", &config);
    /// assert_eq!(state.path(), std::path::Path::new("/run/my-agent/token.state"));
    /// assert!(!format!("{state:?}").contains("secret"));
    /// ```
    pub fn new(path: impl Into<PathBuf>, config: &Config) -> StateFile {
        StateFile { path: path.into(), key: key(config), reported: None }
    }

    /// The path of the state file. Next to it, the lock file has the same
    /// name with `.lock` added.
    ///
    /// ```
    /// let config = cctoken::Config::client_secret_basic("https://auth.example.com/token", "id", "secret");
    /// let state = cctoken::StateFile::new("/run/my-agent/token.state", &config);
    /// println!("keeping the token in {}", state.path().display());
    /// ```
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The state in the file, if there is a usable one at `now` (see
    /// [`StateFile::read`]); a problem with the file goes to the events
    /// (once, until it changes), and `problems` counts it.
    pub(crate) fn load(&mut self, now: Instant, problems: &mut u64) -> Option<Saved> {
        match self.read(now) {
            Ok(saved) => {
                self.reported = None;
                saved
            }
            Err(why) => {
                let text = why.to_string();
                if self.reported.as_deref() != Some(text.as_str()) {
                    events::state_ignored(&self.path, &text, why.is_problem());
                    *problems += u64::from(why.is_problem());
                    self.reported = Some(text);
                }
                None
            }
        }
    }

    /// The state in the file, quietly: for merging before a save, which
    /// reports its own failure.
    pub(crate) fn peek(&self) -> Option<Saved> {
        self.read(crate::now()).ok().flatten()
    }

    /// `Ok(None)`: no file, or no persistence on this system. A token or a
    /// failure later than both `now` (the instant of the clock the cache is
    /// driven with, which may be a virtual one) and cctoken's clock is
    /// implausible.
    fn read(&self, now: Instant) -> Result<Option<Saved>, Why> {
        let Some(boot_id) = os::boot_id() else { return Ok(None) };
        let Some(bytes) = os::read(&self.path)? else { return Ok(None) };
        let anchor = Anchor::now().ok_or(Why::NoBootClock)?;
        // The time is the time, whoever wrote the file and in whichever boot.
        if let Some(floor) = decode_floor(&bytes, boot_id, anchor) {
            time::raise(floor);
        }
        decode(&bytes, boot_id, &self.key, anchor, now.max(anchor.instant)).map(Some)
    }

    /// Writes this state over the file's; a failure goes to the events and
    /// `problems` counts it.
    pub(crate) fn save(
        &self,
        cached: Option<&Cached>,
        gate: Option<&Gate>,
        failures: u32,
        problems: &mut u64,
    ) {
        let Some(boot_id) = os::boot_id() else { return };
        let result = Anchor::now()
            .ok_or("the boot clock cannot be read")
            .and_then(|anchor| encode(boot_id, &self.key, cached, gate, failures, time::learned(), anchor))
            .map_err(|why| io::Error::new(io::ErrorKind::InvalidData, why))
            .and_then(|text| os::write_atomically(&self.path, text.as_bytes()));
        if let Err(e) = result {
            events::state_not_saved(&self.path, &e);
            *problems += 1;
        }
    }

    /// Tries to become the one process that requests a token, without
    /// waiting: see [`Lock`].
    pub(crate) fn lock(&self, problems: &mut u64) -> Lock {
        if os::boot_id().is_none() {
            return Lock::Off;
        }
        let path = lock_path(&self.path);
        let lock = os::lock(&path);
        // std has no file locks on some systems (Android, as of Rust 1.95):
        // there each process goes its own way, which is no problem to repeat.
        if let Lock::Unavailable(e) = &lock
            && e.kind() != io::ErrorKind::Unsupported
        {
            events::state_lock_unavailable(&path, e);
            *problems += 1;
        }
        lock
    }
}

/// `<path>.lock`.
fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// Whether this process may request a token, among those sharing a state
/// file: the lock file next to it is locked (`flock`) while one requests.
#[derive(Debug)]
#[cfg_attr(not(any(target_os = "linux", target_os = "android")), allow(dead_code))]
pub(crate) enum Lock {
    /// This process holds the lock until the file is dropped.
    Held(#[allow(dead_code)] std::fs::File),
    /// Another process holds it: it is requesting a token.
    Busy,
    /// The lock file cannot be opened or locked: each process goes its own way.
    Unavailable(io::Error),
    /// No persistence on this system: nothing to lock or read.
    Off,
}

/// The part of a cache that is saved.
#[derive(Debug, Default)]
pub(crate) struct Saved {
    pub(crate) cached: Option<Cached>,
    pub(crate) gate: Option<Gate>,
    pub(crate) failures: u32,
}

/// The key of the state of `config`: a SHA-256 over each part, each
/// preceded by its length so that no two configurations run together.
fn key(config: &Config) -> [u8; 32] {
    fn part(hash: &mut Sha256, bytes: &[u8]) {
        hash.update(&(bytes.len() as u64).to_be_bytes()).update(bytes);
    }
    let mut hash = Sha256::new();
    part(&mut hash, b"cctoken state key 1");
    part(&mut hash, config.url.as_bytes());
    part(&mut hash, config.client_id.as_bytes());
    let style: &[u8] = match config.style {
        AuthStyle::Basic => b"basic",
        AuthStyle::BasicRaw => b"basic-raw",
        AuthStyle::Post => b"post",
        AuthStyle::TlsClientAuth => b"tls-client-auth",
        AuthStyle::PrivateKeyJwt => b"private-key-jwt",
    };
    part(&mut hash, style);
    // The certificate and its key are the credential of mutual TLS: a new
    // one is a new client, as a rotated secret is.
    if let Some((chain, key)) = config.client_certificate() {
        part(&mut hash, &sha256(chain));
        part(&mut hash, &sha256(key.expose()));
    }
    if let Some(key) = config.signing_key() {
        part(&mut hash, &sha256(key.expose()));
    }
    part(&mut hash, &(config.scopes.len() as u64).to_be_bytes());
    for scope in &config.scopes {
        part(&mut hash, scope.as_bytes());
    }
    part(&mut hash, &(config.params.len() as u64).to_be_bytes());
    for (name, value) in &config.params {
        part(&mut hash, name.as_bytes());
        part(&mut hash, value.as_bytes());
    }
    part(&mut hash, &sha256(config.client_secret.expose().as_bytes()));
    hash.finish()
}

/// The same moment on cctoken's clock and on the boot clock, to convert the
/// one to the other.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Anchor {
    instant: Instant,
    boot: Duration,
}

impl Anchor {
    fn now() -> Option<Anchor> {
        let (instant, boot) = os::now_and_boot_time()?;
        Some(Anchor { instant, boot })
    }

    /// `at` as nanoseconds on the boot clock; `None` before boot (only a
    /// virtual clock has such instants).
    fn to_boot(self, at: Instant) -> Option<u64> {
        let boot = match at.checked_duration_since(self.instant) {
            Some(after) => self.boot.checked_add(after)?,
            None => self.boot.checked_sub(self.instant - at)?,
        };
        u64::try_from(boot.as_nanos()).ok()
    }

    /// Nanoseconds on the boot clock as an instant of cctoken's clock.
    fn to_instant(self, nanos: u64) -> Option<Instant> {
        let boot = Duration::from_nanos(nanos);
        match boot.checked_sub(self.boot) {
            Some(after) => self.instant.checked_add(after),
            None => self.instant.checked_sub(self.boot - boot),
        }
    }
}

/// Why a state file was not used.
#[derive(Debug)]
#[cfg_attr(not(any(target_os = "linux", target_os = "android")), allow(dead_code))]
pub(crate) enum Why {
    Symlink,
    NotRegular(&'static str),
    Owner(u32),
    Mode(u32),
    TooLarge,
    Unreadable(io::Error),
    UnknownUser(io::Error),
    NoBootClock,
    Empty,
    NotState,
    Newer(u32),
    Damaged,
    Malformed(&'static str),
    Implausible(&'static str),
    OtherBoot,
    OtherKey,
}

impl Why {
    /// Whether it is a problem to count and warn about. A state of another
    /// boot or another configuration is what a reboot or a new secret
    /// leaves: told, not counted.
    fn is_problem(&self) -> bool {
        !matches!(self, Why::OtherBoot | Why::OtherKey)
    }
}

impl fmt::Display for Why {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Why::Symlink => f.write_str("it is a symbolic link, which is not followed"),
            Why::NotRegular(what) => write!(f, "it is {what}, not a regular file"),
            Why::Owner(uid) => write!(f, "it is owned by uid {uid}, not by this process's user"),
            Why::Mode(mode) => write!(f, "its mode {mode:04o} lets group or others read or write it"),
            Why::TooLarge => write!(f, "it is larger than {MAX_STATE} bytes"),
            Why::Unreadable(e) => write!(f, "it cannot be read: {e}"),
            Why::UnknownUser(e) => write!(f, "this process's user cannot be told from /proc/self: {e}"),
            Why::NoBootClock => f.write_str("the boot clock cannot be read"),
            Why::Empty => f.write_str("it is empty"),
            Why::NotState => f.write_str("it is not a cctoken state file"),
            Why::Newer(v) => write!(f, "its format version {v} is newer than this cctoken's ({VERSION})"),
            Why::Damaged => f.write_str("its checksum does not match: it is truncated or damaged"),
            Why::Malformed(what) => write!(f, "it is malformed: {what}"),
            Why::Implausible(what) => write!(f, "it is implausible: {what}"),
            Why::OtherBoot => f.write_str("it was written before the last reboot"),
            Why::OtherKey => f.write_str("it was written for another token URL, client, scope or secret"),
        }
    }
}

// ---- The format ---------------------------------------------------------------
//
// ```text
// cctoken-state 1
// boot-id=<the kernel's boot id>
// key=<64 hex digits>
// time=<ns since the Unix epoch>          the floor of the trusted time, if one was learned
// time-boot=<ns on the boot clock>        when it held
// token=<the access token>                 the token's lines, if there is one
// token-scope=<the granted scope>          if the server said
// token-issued=<ns on the boot clock>
// token-lifetime=<ns>
// token-refresh=<ns on the boot clock>
// token-rejected=0|1
// gate-failed=<ns on the boot clock>       the gate's lines, if it is shut
// gate-until=<ns on the boot clock>
// gate-error=credentials-rejected|oauth|http-status|transport|invalid-response|config|rate-limited
// gate-status=<HTTP status>                when the error has one
// gate-oauth-code=<RFC 6749 error code>    when the error has one
// gate-retry-after=<ns>                    when the server sent one
// gate-transport=timeout|tls|connect|io|clock  for a transport error
// failures=<failures in a row>
// sha256=<64 hex digits: the SHA-256 of every line above>
// ```

/// The text of a state; `Err` with the reason when it cannot be written.
pub(crate) fn encode(
    boot_id: &str,
    key: &[u8; 32],
    cached: Option<&Cached>,
    gate: Option<&Gate>,
    failures: u32,
    floor: Option<Floor>,
    anchor: Anchor,
) -> Result<String, &'static str> {
    let mut out = Lines(format!("{MAGIC} {VERSION}\n"));
    out.push("boot-id", boot_id)?;
    out.push("key", hex(key))?;
    let at = |instant| anchor.to_boot(instant).ok_or("a time before boot cannot be stored");
    if let Some(floor) = floor {
        out.push("time", nanos(floor.unix))?;
        out.push("time-boot", at(floor.at)?)?;
    }
    if let Some(c) = cached {
        out.push("token", c.token.access_token().secret())?;
        if let Some(scope) = c.token.scope() {
            out.push("token-scope", scope)?;
        }
        out.push("token-issued", at(c.token.issued_at())?)?;
        out.push("token-lifetime", nanos(c.token.lifetime()))?;
        out.push("token-refresh", at(c.refresh_at)?)?;
        out.push("token-rejected", u8::from(c.rejected))?;
    }
    if let Some(g) = gate {
        out.push("gate-failed", at(g.failed_at)?)?;
        out.push("gate-until", at(g.until)?)?;
        encode_error(&mut out, &g.error)?;
    }
    out.push("failures", failures)?;
    let sum = hex(&sha256(out.0.as_bytes()));
    out.push("sha256", sum)?;
    if out.0.len() as u64 > MAX_STATE {
        return Err("the state is larger than a state file may be");
    }
    Ok(out.0)
}

/// The lines of a state file being written.
struct Lines(String);

impl Lines {
    /// Adds `name=value`; a value that would not stay on its line is refused.
    fn push(&mut self, name: &str, value: impl fmt::Display) -> Result<(), &'static str> {
        let value = value.to_string();
        if value.chars().any(char::is_control) {
            return Err("a value holds a control character");
        }
        self.0.push_str(name);
        self.0.push('=');
        self.0.push_str(&value);
        self.0.push('\n');
        Ok(())
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Enough of the gate's error to rebuild one that answers the same to
/// [`Error::is_transient`], [`Error::is_credentials_rejected`] and
/// [`Error::retry_after`], with its status and OAuth code.
fn encode_error(out: &mut Lines, error: &Error) -> Result<(), &'static str> {
    let (kind, status, code, retry_after) = match error {
        Error::CredentialsRejected { status, oauth } => {
            ("credentials-rejected", Some(*status), oauth.as_ref().map(OAuthError::code), None)
        }
        Error::OAuth { status, oauth, retry_after } => {
            ("oauth", Some(*status), Some(oauth.code()), *retry_after)
        }
        Error::HttpStatus { status, retry_after } => ("http-status", Some(*status), None, *retry_after),
        Error::Transport(t) => {
            out.push("gate-error", "transport")?;
            let kind = match t.kind() {
                TransportKind::Timeout => "timeout",
                TransportKind::Tls => "tls",
                TransportKind::Connect => "connect",
                TransportKind::Io => "io",
                TransportKind::Clock => "clock",
            };
            return out.push("gate-transport", kind);
        }
        Error::InvalidResponse { status, .. } => ("invalid-response", Some(*status), None, None),
        Error::Backoff { last, .. } => return encode_error(out, last),
        Error::RateLimited { .. } => ("rate-limited", None, None, None),
        Error::Config(_) => ("config", None, None, None),
    };
    out.push("gate-error", kind)?;
    if let Some(status) = status {
        out.push("gate-status", status)?;
    }
    if let Some(code) = code {
        out.push("gate-oauth-code", code)?;
    }
    if let Some(after) = retry_after {
        out.push("gate-retry-after", nanos(after))?;
    }
    Ok(())
}

/// The state in `bytes`, a state file's content, if it is one of this boot
/// and this key, and nothing in it happened after `now`.
pub(crate) fn decode(
    bytes: &[u8],
    boot_id: &str,
    key: &[u8; 32],
    anchor: Anchor,
    now: Instant,
) -> Result<Saved, Why> {
    if bytes.is_empty() {
        return Err(Why::Empty);
    }
    let first = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
    let version = first
        .strip_prefix(MAGIC.as_bytes())
        .and_then(|rest| rest.strip_prefix(b" "))
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| v.parse::<u32>().ok())
        .ok_or(Why::NotState)?;
    if version > VERSION {
        return Err(Why::Newer(version));
    }
    if version != VERSION {
        return Err(Why::NotState);
    }
    let text = std::str::from_utf8(bytes).map_err(|_| Why::Damaged)?;
    // Whose state it is, before whether it is whole: a state of another
    // boot or configuration is ignored whatever else it holds.
    let key = hex(key);
    let value = |name: &str| text.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix('='));
    if value("boot-id").is_some_and(|id| id != boot_id) {
        return Err(Why::OtherBoot);
    }
    if value("key").is_some_and(|k| k != key) {
        return Err(Why::OtherKey);
    }
    let body = checked(text).ok_or(Why::Damaged)?;
    let fields = Fields::parse(body)?;
    if fields.get("boot-id") != Some(boot_id) || fields.get("key") != Some(key.as_str()) {
        return Err(Why::Malformed("no boot-id or key line"));
    }
    let cached = match fields.get("token") {
        Some(token) => Some(decode_token(&fields, token, anchor, now)?),
        None => None,
    };
    let gate = match fields.get("gate-until") {
        Some(_) => Some(decode_gate(&fields, anchor, now)?),
        None => None,
    };
    let failures = fields.number("failures")?.ok_or(Why::Malformed("no failures line"))?;
    let failures = u32::try_from(failures).map_err(|_| Why::Malformed("failures out of range"))?;
    Ok(Saved { cached, gate, failures })
}

/// The floor of the trusted time in `bytes`, a state file's content of any
/// boot and any key (the time is the same for every configuration), if it
/// is whole and holds one: in this boot, as it was saved, carried forward
/// from when it held; from an earlier boot, as a floor at this boot's start
/// (that boot ended before this one began), carried forward from there.
pub(crate) fn decode_floor(bytes: &[u8], boot_id: &str, anchor: Anchor) -> Option<Floor> {
    let text = std::str::from_utf8(bytes).ok()?;
    let first = text.lines().next()?;
    if first != format!("{MAGIC} {VERSION}") {
        return None;
    }
    let fields = Fields::parse(checked(text)?).ok()?;
    let unix = Duration::from_nanos(fields.number("time").ok()??);
    if fields.get("boot-id")? != boot_id {
        let unix = unix.checked_add(anchor.boot)?;
        return Some(Floor { unix, at: anchor.instant });
    }
    let held = fields.number("time-boot").ok()??;
    // A floor that held after now is not one this boot's clock has seen.
    let at = anchor.to_instant(held).filter(|at| *at <= anchor.instant)?;
    Some(Floor { unix, at })
}

/// The lines before the last, if the last is the SHA-256 of them all.
fn checked(text: &str) -> Option<&str> {
    let body = text.strip_suffix('\n')?;
    let start = body.rfind('\n')? + 1;
    let sum = body[start..].strip_prefix("sha256=")?;
    let body = &text[..start];
    (sum == hex(&sha256(body.as_bytes()))).then_some(body)
}

/// The `name=value` lines after the first.
struct Fields<'a>(Vec<(&'a str, &'a str)>);

impl<'a> Fields<'a> {
    fn parse(body: &'a str) -> Result<Fields<'a>, Why> {
        let mut fields: Vec<(&str, &str)> = Vec::new();
        for line in body.lines().skip(1) {
            let (name, value) = line.split_once('=').ok_or(Why::Malformed("a line without '='"))?;
            if fields.iter().any(|(n, _)| *n == name) {
                return Err(Why::Malformed("a repeated line"));
            }
            // Lines of a later version 1 that this one does not know are skipped.
            fields.push((name, value));
        }
        Ok(Fields(fields))
    }

    fn get(&self, name: &str) -> Option<&'a str> {
        self.0.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
    }

    fn number(&self, name: &'static str) -> Result<Option<u64>, Why> {
        let Some(value) = self.get(name) else { return Ok(None) };
        // Digits only: `parse` would also take a sign.
        match value.bytes().all(|b| b.is_ascii_digit()) {
            true => value.parse().map(Some).map_err(|_| Why::Malformed("a number out of range")),
            false => Err(Why::Malformed("a number that is not one")),
        }
    }

    fn required(&self, name: &'static str) -> Result<u64, Why> {
        self.number(name)?.ok_or(Why::Malformed("a line of the token or gate is missing"))
    }

    fn instant(&self, name: &'static str, anchor: Anchor) -> Result<Instant, Why> {
        anchor.to_instant(self.required(name)?).ok_or(Why::Implausible("a time out of range"))
    }
}

fn decode_token(fields: &Fields<'_>, token: &str, anchor: Anchor, now: Instant) -> Result<Cached, Why> {
    const TEN_YEARS: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
    let issued_at = fields.instant("token-issued", anchor)?;
    let lifetime = Duration::from_nanos(fields.required("token-lifetime")?);
    let refresh_at = fields.instant("token-refresh", anchor)?;
    let rejected = match fields.get("token-rejected") {
        Some("0") => false,
        Some("1") => true,
        _ => return Err(Why::Malformed("token-rejected is not 0 or 1")),
    };
    if token.is_empty() || issued_at > now || refresh_at < issued_at || lifetime > TEN_YEARS {
        return Err(Why::Implausible("a token issued in the future, or refreshed before it was issued"));
    }
    let scope = fields.get("token-scope").map(str::to_owned);
    let token = Token::new(AccessToken::new(token), issued_at, lifetime).with_scope(scope);
    Ok(Cached { token, refresh_at, rejected })
}

fn decode_gate(fields: &Fields<'_>, anchor: Anchor, now: Instant) -> Result<Gate, Why> {
    let failed_at = fields.instant("gate-failed", anchor)?;
    let until = fields.instant("gate-until", anchor)?;
    if failed_at > now || until < failed_at {
        return Err(Why::Implausible("a failure in the future, or a gate that opened before it shut"));
    }
    let status = match fields.number("gate-status")? {
        Some(s) => Some(u16::try_from(s).map_err(|_| Why::Malformed("an HTTP status out of range"))?),
        None => None,
    };
    let retry_after = fields.number("gate-retry-after")?.map(Duration::from_nanos);
    let code = fields.get("gate-oauth-code");
    let missing = || Why::Malformed("a line of the gate's error is missing");
    let error = match fields.get("gate-error") {
        Some("credentials-rejected") => Error::CredentialsRejected {
            status: status.ok_or_else(missing)?,
            oauth: code.map(|c| OAuthError::new(c, None, None)),
        },
        Some("oauth") => Error::OAuth {
            status: status.ok_or_else(missing)?,
            oauth: OAuthError::new(code.ok_or_else(missing)?, None, None),
            retry_after,
        },
        Some("http-status") => Error::HttpStatus { status: status.ok_or_else(missing)?, retry_after },
        Some("transport") => Error::from(match fields.get("gate-transport") {
            Some("timeout") => TransportKind::Timeout,
            Some("tls") => TransportKind::Tls,
            Some("clock") => TransportKind::Clock,
            Some("connect") => TransportKind::Connect,
            Some("io") => TransportKind::Io,
            _ => return Err(Why::Malformed("an unknown transport failure")),
        }),
        Some("invalid-response") => Error::InvalidResponse {
            status: status.ok_or_else(missing)?,
            reason: "its reason was not kept across a restart",
        },
        Some("config") => Error::config("an error saved in the state file, its text not kept"),
        Some("rate-limited") => Error::RateLimited { retry_at: until },
        _ => return Err(Why::Malformed("an unknown kind of error")),
    };
    Ok(Gate { failed_at, until, error })
}

#[cfg(any(target_os = "linux", target_os = "android"))]
mod os {
    //! The file system, on Linux and Android.

    use std::fs::{self, File, OpenOptions, TryLockError};
    use std::io::{self, Read, Write};
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
    use std::path::{Path, PathBuf};
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::{Duration, Instant};

    use super::{Lock, MAX_STATE, Why};

    pub(super) fn now_and_boot_time() -> Option<(Instant, Duration)> {
        crate::clock::now_and_boot_time()
    }

    /// The kernel's boot id, which changes at every boot: `None` if it
    /// cannot be read, and then nothing is read or written (times on the
    /// boot clock of another boot would mean nothing).
    pub(super) fn boot_id() -> Option<&'static str> {
        static BOOT_ID: OnceLock<Option<String>> = OnceLock::new();
        let id = BOOT_ID.get_or_init(|| {
            let mut text = String::new();
            let file = File::open("/proc/sys/kernel/random/boot_id");
            let read = file.and_then(|f| f.take(64).read_to_string(&mut text));
            let id = text.trim();
            let valid =
                read.is_ok() && id.len() == 36 && id.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
            if !valid {
                crate::events::state_no_boot_id();
            }
            valid.then(|| id.to_owned())
        });
        id.as_deref()
    }

    /// The file's bytes, if it is a regular file of at most [`MAX_STATE`]
    /// bytes that this process's user owns and no one else may read or
    /// write. `Ok(None)`: there is no file. Never follows a symbolic link,
    /// never blocks (on a FIFO, say).
    pub(super) fn read(path: &Path) -> Result<Option<Vec<u8>>, Why> {
        let opened = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
            .open(path);
        let file = match opened {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Err(Why::Symlink),
            Err(e) => return Err(Why::Unreadable(e)),
        };
        let meta = file.metadata().map_err(Why::Unreadable)?;
        let kind = meta.file_type();
        if !kind.is_file() {
            return Err(Why::NotRegular(if kind.is_dir() { "a directory" } else { "a special file" }));
        }
        let me = fs::metadata("/proc/self").map_err(Why::UnknownUser)?.uid();
        if meta.uid() != me {
            return Err(Why::Owner(meta.uid()));
        }
        if meta.mode() & 0o077 != 0 {
            return Err(Why::Mode(meta.mode() & 0o7777));
        }
        if meta.len() > MAX_STATE {
            return Err(Why::TooLarge);
        }
        let mut bytes = Vec::new();
        file.take(MAX_STATE + 1).read_to_end(&mut bytes).map_err(Why::Unreadable)?;
        if bytes.len() as u64 > MAX_STATE {
            return Err(Why::TooLarge);
        }
        Ok(Some(bytes))
    }

    /// Replaces the file at `path` with one holding `bytes`, mode 0600: a
    /// new file in the same directory, written and synced, then renamed
    /// over it, so that a reader sees the old file or the new one, never
    /// part of one. A symbolic link at `path` is replaced, its target left
    /// alone.
    pub(super) fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
        let temporary = temporary_path(path)?;
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&temporary)?;
        let written = (|| {
            // 0600 whatever the umask.
            file.set_permissions(fs::Permissions::from_mode(0o600))?;
            file.write_all(bytes)?;
            file.sync_all()?;
            fs::rename(&temporary, path)
        })();
        if written.is_err() {
            let _ = fs::remove_file(&temporary);
        }
        written?;
        // The rename itself, for a file system that outlives a power cut;
        // on tmpfs this does nothing.
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            let _ = File::open(dir).and_then(|d| d.sync_all());
        }
        Ok(())
    }

    /// `.<name>.<pid>.<n>.tmp` in the file's directory: unique among the
    /// processes and threads that save at once.
    fn temporary_path(path: &Path) -> io::Result<PathBuf> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let name =
            path.file_name().ok_or_else(|| io::Error::other("the state file's path has no file name"))?;
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let mut temporary = std::ffi::OsString::from(".");
        temporary.push(name);
        temporary.push(format!(".{}.{n}.tmp", std::process::id()));
        Ok(path.with_file_name(temporary))
    }

    /// Locks the file at `path` (`<state file>.lock`), created with mode
    /// 0600 if need be, without waiting. A process that stops while holding
    /// it makes others [`Lock::Busy`], never blocked; the kernel releases it
    /// when the process ends.
    pub(super) fn lock(path: &Path) -> Lock {
        let opened = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
            .open(path);
        let file = match opened {
            Ok(file) => file,
            Err(e) => return Lock::Unavailable(e),
        };
        match file.metadata() {
            Ok(meta) if meta.is_file() => {}
            Ok(_) => return Lock::Unavailable(io::Error::other("the lock file is not a regular file")),
            Err(e) => return Lock::Unavailable(e),
        }
        match file.try_lock() {
            Ok(()) => Lock::Held(file),
            Err(TryLockError::WouldBlock) => Lock::Busy,
            Err(TryLockError::Error(e)) => Lock::Unavailable(e),
        }
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
mod os {
    //! No persistence: cctoken knows no boot clock and boot id here.

    use std::io;
    use std::path::Path;
    use std::time::{Duration, Instant};

    use super::{Lock, Why};

    pub(super) fn now_and_boot_time() -> Option<(Instant, Duration)> {
        None
    }

    pub(super) fn boot_id() -> Option<&'static str> {
        None
    }

    pub(super) fn read(_: &Path) -> Result<Option<Vec<u8>>, Why> {
        Ok(None)
    }

    pub(super) fn write_atomically(_: &Path, _: &[u8]) -> io::Result<()> {
        Ok(())
    }

    pub(super) fn lock(_: &Path) -> Lock {
        Lock::Off
    }
}

#[cfg(test)]
mod tests;
