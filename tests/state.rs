//! The state file with a real client against a loopback server: what a
//! restarted cache serves and obeys without a request, what it ignores, and
//! what becomes of a bad file. Each test works in its own directory under the
//! system's temporary directory; nothing sleeps.

#![cfg(all(feature = "ureq", feature = "state-file", any(target_os = "linux", target_os = "android")))]

mod support;

use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine as _;
use cctoken::{AccessToken, Client, Config, Decision, Error, Policy, StateFile, Token, TokenCache};
use support::{Server, response, token_response};

const ID: &str = "device-7";
/// Form-urlencoding changes `+`, `/` and `=`: the file is checked for every
/// form of it.
const SECRET: &str = "s3cr3t+/=";
/// The token a hand-made state file holds: never served when the file is bad.
const FILE_TOKEN: &str = "file-issued-t0ken";

/// A directory of its own for one test, removed when dropped.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let path = std::env::temp_dir().join(format!("cctoken-state-{}-{n}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir(&path).expect("create the test directory");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o700)).expect("chmod 0700");
        Dir(path)
    }

    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// The names in the directory, sorted.
    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(&self.0)
            .expect("read the test directory")
            .map(|entry| entry.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        // A test may have made a directory read-only.
        let _ = fs::set_permissions(&self.0, fs::Permissions::from_mode(0o700));
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A server that issues `tok-1`, `tok-2`, … for an hour each.
fn issuing() -> Server {
    let issued = AtomicUsize::new(0);
    Server::http(move |_| {
        let n = issued.fetch_add(1, Ordering::SeqCst) + 1;
        token_response(&format!("tok-{n}"), 3600)
    })
}

fn config(server: &Server) -> Config {
    // Every event of this suite is checked for the secret and the tokens.
    support::events::install(&["s3cr3t", "tok-", FILE_TOKEN]);
    Config::client_secret_basic(&server.url("/token"), ID, SECRET)
}

fn cache(server: &Server, path: &Path) -> TokenCache<Client> {
    let config = config(server);
    let state = StateFile::new(path, &config);
    TokenCache::new(Client::new(config).expect("valid config")).with_state_file(state)
}

fn token(cache: &mut TokenCache<Client>) -> String {
    cache.token().expect("a token").access_token().secret().to_owned()
}

/// The bytes of a valid state file for `server`'s configuration, holding
/// [`FILE_TOKEN`], written by a cache that fetched it without the server.
fn state_bytes(server: &Server) -> Vec<u8> {
    let dir = Dir::new("source");
    let path = dir.join("token.state");
    let fetch = || Ok(Token::new(AccessToken::new(FILE_TOKEN), cctoken::now(), Duration::from_secs(3600)));
    let mut cache = TokenCache::new(fetch).with_state_file(StateFile::new(&path, &config(server)));
    assert_eq!(cache.token().map(|t| t.access_token().secret().to_owned()).ok().as_deref(), Some(FILE_TOKEN));
    fs::read(&path).expect("the state file was written")
}

fn write_file(path: &Path, bytes: &[u8], mode: u32) {
    let mut file = fs::File::create(path).expect("create");
    file.write_all(bytes).expect("write");
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
}

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).expect("metadata").permissions().mode() & 0o7777
}

/// The events this thread emitted since `before` of them.
fn events_since(before: usize) -> Vec<String> {
    support::events::of_this_thread().split_off(before)
}

fn is_root() -> bool {
    fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false)
}

/// Asserts that the file at `path` is a state file as cctoken writes it:
/// a regular file, mode 0600, without the secret in any form.
fn assert_saved_safely(path: &Path) {
    let meta = fs::symlink_metadata(path).expect("the state file");
    assert!(meta.file_type().is_file(), "{path:?} is not a regular file");
    assert_eq!(mode(path), 0o600, "{path:?}");
    let bytes = fs::read(path).expect("read");
    let text = String::from_utf8_lossy(&bytes);
    let engine = base64::engine::general_purpose::STANDARD;
    let forms = [
        SECRET.to_owned(),
        "s3cr3t".to_owned(),
        "s3cr3t%2B%2F%3D".to_owned(),
        engine.encode(format!("{ID}:{SECRET}")),
        engine.encode(format!("{ID}:s3cr3t%2B%2F%3D")),
        engine.encode(SECRET),
    ];
    for form in forms {
        assert!(!text.contains(&form), "the state file holds {form:?}");
    }
}

#[test]
fn a_restart_serves_the_saved_token_without_a_request() {
    let (server, dir) = (issuing(), Dir::new("restart"));
    let path = dir.join("token.state");
    let mut first = cache(&server, &path);
    assert_eq!(token(&mut first), "tok-1");
    let refresh_at = first.refresh_at();
    drop(first);
    assert_saved_safely(&path);
    // Only the state and its lock: no temporary file is left behind.
    assert_eq!(dir.names(), ["token.state", "token.state.lock"]);

    let mut restarted = cache(&server, &path);
    assert_eq!(token(&mut restarted), "tok-1");
    assert_eq!(restarted.refresh_at(), refresh_at, "the same refresh point, to the nanosecond");
    assert_eq!(restarted.stats().fetches(), 0);
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn a_cache_hit_touches_no_file() {
    let (server, dir) = (issuing(), Dir::new("hit"));
    let path = dir.join("token.state");
    let mut cache = cache(&server, &path);
    assert_eq!(token(&mut cache), "tok-1");
    // Garbage in place of the state and no lock file: a hit that read the
    // state would warn, one that wrote it would replace the garbage, one that
    // locked it would make the lock file again.
    write_file(&path, b"garbage", 0o600);
    fs::remove_file(dir.join("token.state.lock")).expect("remove the lock file");
    let before = support::events::of_this_thread().len();
    for _ in 0..100 {
        assert_eq!(token(&mut cache), "tok-1");
    }
    assert_eq!(fs::read(&path).expect("read"), b"garbage");
    assert_eq!(dir.names(), ["token.state"]);
    assert_eq!(events_since(before), Vec::<String>::new());
    assert_eq!(cache.stats().state_errors(), 0);
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn a_cooldown_after_rejected_credentials_survives_a_restart() {
    let server = Server::http(|_| response(401, &[], ""));
    let dir = Dir::new("cooldown");
    let path = dir.join("token.state");
    let err = cache(&server, &path).token().expect_err("rejected");
    assert!(matches!(err, Error::CredentialsRejected { status: 401, .. }), "{err}");
    assert_saved_safely(&path);

    for _ in 0..3 {
        let before = cctoken::now();
        match cache(&server, &path).token() {
            Err(err @ Error::Backoff { retry_at, .. }) => {
                assert!(err.is_credentials_rejected(), "{err}");
                // The default cooldown: 11¼ to 15 minutes.
                let left = retry_at - before;
                assert!(left > Duration::from_secs(600) && left <= Duration::from_secs(900), "{left:?}");
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn a_retry_after_survives_a_restart() {
    let server = Server::http(|_| response(429, &[("Retry-After", "120")], ""));
    let dir = Dir::new("retry-after");
    let path = dir.join("token.state");
    let err = cache(&server, &path).token().expect_err("429");
    assert_eq!(err.retry_after(), Some(Duration::from_secs(120)));

    let before = cctoken::now();
    match cache(&server, &path).token() {
        Err(Error::Backoff { retry_at, last }) => {
            assert!(matches!(*last, Error::HttpStatus { status: 429, .. }), "{last}");
            assert_eq!(last.retry_after(), Some(Duration::from_secs(120)));
            let left = retry_at - before;
            assert!(left > Duration::from_secs(100) && left <= Duration::from_secs(150), "{left:?}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn an_invalidation_survives_a_restart() {
    let (server, dir) = (issuing(), Dir::new("invalidated"));
    let path = dir.join("token.state");
    let mut first = cache(&server, &path);
    assert_eq!(token(&mut first), "tok-1");
    first.invalidate();
    drop(first);
    // Past the minimum token age of 30 s, the rejected token is not served.
    let mut restarted = cache(&server, &path);
    let later = cctoken::now() + Duration::from_secs(31);
    assert_eq!(
        restarted.token_at(later).map(|t| t.access_token().secret().to_owned()).ok().as_deref(),
        Some("tok-2")
    );
    assert_eq!(server.requests().len(), 2);
}

#[test]
fn a_virtual_clock_ahead_of_cctokens_round_trips_through_the_file() {
    // A simulation's clock, six hours ahead: `with_state_file_at` reads the
    // file at that clock's now, `with_state_file` at cctoken's, when the
    // saved token was not issued yet.
    let dir = Dir::new("virtual");
    let path = dir.join("token.state");
    let config = Config::client_secret_basic("https://token.sim.invalid/token", ID, SECRET);
    let later = cctoken::now() + Duration::from_secs(6 * 3600);
    let issuing =
        |name: &'static str| move || Ok(Token::new(AccessToken::new(name), later, Duration::from_secs(3600)));
    let mut first =
        TokenCache::new(issuing("first")).with_state_file_at(StateFile::new(&path, &config), later);
    assert_eq!(
        first.token_at(later).map(|t| t.access_token().secret().to_owned()).ok().as_deref(),
        Some("first")
    );
    drop(first);
    let restarted = later + Duration::from_secs(60);
    let mut second =
        TokenCache::new(issuing("second")).with_state_file_at(StateFile::new(&path, &config), restarted);
    assert_eq!(second.token_at(restarted).map(|t| t.access_token().secret()).ok(), Some("first"));
    assert_eq!((second.stats().fetches(), second.stats().state_errors()), (0, 0));
    let third = TokenCache::new(issuing("third")).with_state_file(StateFile::new(&path, &config));
    assert_eq!(third.cached_at(restarted).map(|t| t.access_token().secret()), None);
    assert_eq!(third.stats().state_errors(), 1, "a token issued after cctoken's now is implausible");
}

/// Where in a token's life, as a fraction, `cache` will refresh it.
fn refresh_fraction<F: cctoken::Fetch>(cache: &TokenCache<F>, token_issued: std::time::Instant) -> f64 {
    let at = cache.refresh_at().expect("a cached token");
    (at - token_issued).as_secs_f64() / 3600.0
}

#[test]
fn a_token_from_the_file_is_refreshed_as_routine_unless_a_failure_followed_it() {
    use std::cell::Cell;
    use std::rc::Rc;
    // Windows that do not overlap tell which one each refresh point is from.
    let policy = || Policy::default().refresh_window(0.60, 0.85).spread_window(0.10, 0.20).seed(3);
    let dir = Dir::new("routine");
    let path = dir.join("token.state");
    let config = Config::client_secret_basic("https://token.sim.invalid/token", ID, SECRET);
    let state = || StateFile::new(&path, &config);
    // A fetcher on the test's clock, failing while `down` is set.
    let (now, down) = (Rc::new(Cell::new(cctoken::now())), Rc::new(Cell::new(false)));
    let fetcher = || {
        let (now, down) = (now.clone(), down.clone());
        move || match down.get() {
            true => Err(Error::from(cctoken::TransportKind::Timeout)),
            false => Ok(Token::new(AccessToken::new(FILE_TOKEN), now.get(), Duration::from_secs(3600))),
        }
    };
    let start = |at| TokenCache::with_policy(fetcher(), policy()).with_state_file_at(state(), at);

    // The first token of a fresh start: the spread window.
    let t0 = now.get();
    let mut first = start(t0);
    assert!(first.token_at(t0).is_ok());
    let fraction = refresh_fraction(&first, t0);
    assert!((0.10..=0.20).contains(&fraction), "{fraction}");
    drop(first);

    // Restarted, with that token from the file: its successor is routine.
    let mut restarted = start(t0 + Duration::from_secs(60));
    let t1 = restarted.refresh_at().expect("the token from the file");
    now.set(t1);
    assert!(restarted.token_at(t1).is_ok());
    assert_eq!(restarted.stats().fetches(), 1);
    let fraction = refresh_fraction(&restarted, t1);
    assert!((0.60..=0.85).contains(&fraction), "{fraction}");

    // A refresh that fails is saved with its gate; restarted again, the
    // successor of the token from the file spreads, as after any failure.
    let t2 = restarted.refresh_at().expect("the new token");
    down.set(true);
    assert!(restarted.token_at(t2).is_ok(), "the valid token is served meanwhile");
    drop(restarted);
    down.set(false);
    let mut again = start(t2 + Duration::from_secs(1));
    let Decision::Wait(t3) = again.decide(t2 + Duration::from_secs(1)) else {
        panic!("the gate from the file is not shut: {:?}", again.decide(t2));
    };
    now.set(t3);
    assert!(again.token_at(t3).is_ok());
    let fraction = refresh_fraction(&again, t3);
    assert!((0.10..=0.20).contains(&fraction), "{fraction}");
}

#[test]
fn a_state_for_another_secret_is_ignored() {
    let (server, dir) = (issuing(), Dir::new("rotated"));
    let path = dir.join("token.state");
    assert_eq!(token(&mut cache(&server, &path)), "tok-1");
    let before = support::events::of_this_thread().len();
    let rotated = config(&server);
    let rotated = Config::client_secret_basic(rotated.url(), ID, "s3cr3t-2");
    let state = StateFile::new(&path, &rotated);
    let mut cache = TokenCache::new(Client::new(rotated).expect("config")).with_state_file(state);
    assert_eq!(token(&mut cache), "tok-2", "the old secret's token is not served");
    assert_eq!(server.requests().len(), 2);
    let events = events_since(before);
    assert!(
        events.iter().any(|e| e.starts_with("info: ignoring the state file") && e.contains("another")),
        "{events:?}"
    );
    assert_eq!(cache.stats().state_errors(), 0, "a new secret is no problem");
}

#[test]
fn two_caches_sharing_a_file_request_one_token() {
    let (server, dir) = (issuing(), Dir::new("shared"));
    let path = dir.join("token.state");
    let (mut a, mut b) = (cache(&server, &path), cache(&server, &path));
    assert_eq!(token(&mut a), "tok-1");
    // b had nothing: before requesting, it reads the file again, and finds a's token.
    assert_eq!(token(&mut b), "tok-1");
    assert_eq!(b.stats().fetches(), 0);
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn while_another_process_requests_a_token_a_valid_one_is_served() {
    let (server, dir) = (issuing(), Dir::new("busy"));
    let path = dir.join("token.state");
    let mut cache = cache(&server, &path);
    assert_eq!(token(&mut cache), "tok-1");
    // Another process holds the lock: it is requesting a token.
    let lock = fs::OpenOptions::new().write(true).open(dir.join("token.state.lock")).expect("the lock file");
    lock.try_lock().expect("the lock is free");

    // Past the refresh point (at most 85 % of the hour), still valid: served, no request.
    let stale = cctoken::now() + Duration::from_secs(3300);
    let got = cache.token_at(stale).map(|t| t.access_token().secret().to_owned());
    assert_eq!(got.ok().as_deref(), Some("tok-1"));
    assert_eq!(server.requests().len(), 1);
    assert_eq!(cache.stats().stale_serves(), 1);
    // Expired: requested anyway; the lock only ever makes a process wait for nothing.
    let expired = cctoken::now() + Duration::from_secs(3700);
    let got = cache.token_at(expired).map(|t| t.access_token().secret().to_owned());
    assert_eq!(got.ok().as_deref(), Some("tok-2"));
    assert_eq!(server.requests().len(), 2);
    drop(lock);
}

/// A bad thing at the state file's path: how to make it, the event it
/// causes, and what must become of it.
struct BadFile {
    name: &'static str,
    make: fn(&Dir, &Path, &Server),
    /// A part of the event's text; `None`: no event about the file.
    event: Option<&'static str>,
    /// Checked after the cache got its token.
    after: fn(&Dir, &Path),
}

/// Replaced by a state file as cctoken writes it.
fn replaced(_: &Dir, path: &Path) {
    assert_saved_safely(path);
}

fn bad_files() -> Vec<BadFile> {
    vec![
        BadFile { name: "missing", make: |_, _, _| {}, event: None, after: replaced },
        BadFile {
            name: "empty",
            make: |_, path, _| write_file(path, b"", 0o600),
            event: Some("it is empty"),
            after: replaced,
        },
        BadFile {
            name: "truncated",
            make: |_, path, server| {
                let bytes = state_bytes(server);
                write_file(path, &bytes[..bytes.len() - 20], 0o600);
            },
            event: Some("truncated or damaged"),
            after: replaced,
        },
        BadFile {
            name: "garbage",
            make: |_, path, _| {
                let garbage: Vec<u8> =
                    (0..4000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
                write_file(path, &garbage, 0o600);
            },
            event: Some("not a cctoken state file"),
            after: replaced,
        },
        BadFile {
            name: "one GiB",
            make: |_, path, server| {
                // Sparse: a valid state at its start, then a gigabyte of holes.
                write_file(path, &state_bytes(server), 0o600);
                fs::OpenOptions::new()
                    .write(true)
                    .open(path)
                    .and_then(|f| f.set_len(1 << 30))
                    .expect("set_len");
            },
            event: Some("larger than 16384 bytes"),
            after: replaced,
        },
        BadFile {
            name: "a newer version",
            make: |_, path, _| write_file(path, b"cctoken-state 2\nsomething=new\n", 0o600),
            event: Some("format version 2 is newer"),
            after: replaced,
        },
        BadFile {
            name: "another boot",
            make: |_, path, server| {
                let text = String::from_utf8(state_bytes(server)).expect("UTF-8");
                let boot_id = fs::read_to_string("/proc/sys/kernel/random/boot_id").expect("boot id");
                let text = text.replace(boot_id.trim(), "00000000-1111-2222-3333-444444444444");
                write_file(path, text.as_bytes(), 0o600);
            },
            event: Some("info: ignoring the state file"),
            after: replaced,
        },
        BadFile {
            name: "a symlink",
            make: |dir, path, server| {
                write_file(&dir.join("target"), &state_bytes(server), 0o600);
                symlink("target", path).expect("symlink");
            },
            event: Some("symbolic link"),
            after: |dir, path| {
                // The link itself was replaced; its target is as it was.
                assert_saved_safely(path);
                let target = fs::read_to_string(dir.join("target")).expect("the target");
                assert!(target.contains(FILE_TOKEN), "the target was written: {target}");
            },
        },
        BadFile {
            name: "a dangling symlink",
            make: |dir, path, _| symlink(dir.join("nowhere"), path).expect("symlink"),
            event: Some("symbolic link"),
            after: |dir, path| {
                assert_saved_safely(path);
                assert!(!dir.join("nowhere").exists(), "the link's target was created");
            },
        },
        BadFile {
            name: "a directory",
            make: |_, path, _| fs::create_dir(path).expect("mkdir"),
            event: Some("it is a directory"),
            // It cannot be replaced: the save fails, and the cache carries on.
            after: |_, path| assert!(fs::symlink_metadata(path).expect("still there").is_dir()),
        },
        BadFile {
            name: "a FIFO",
            make: |_, path, _| {
                let status = std::process::Command::new("mkfifo").arg(path).status().expect("run mkfifo");
                assert!(status.success());
            },
            event: Some("it is a special file"),
            after: replaced,
        },
        BadFile {
            name: "mode 0644",
            make: |_, path, server| write_file(path, &state_bytes(server), 0o644),
            event: Some("its mode 0644 lets group or others read or write it"),
            after: replaced,
        },
        BadFile {
            name: "mode 0620",
            make: |_, path, server| write_file(path, &state_bytes(server), 0o620),
            event: Some("its mode 0620"),
            after: replaced,
        },
        BadFile {
            name: "a directory that does not exist",
            make: |_, _, _| {},
            event: Some("cannot save the state file"),
            after: |dir, _| assert_eq!(dir.names(), Vec::<String>::new()),
        },
    ]
}

/// The path a case uses: under a missing directory for the one about it.
fn state_path(dir: &Dir, case: &BadFile) -> PathBuf {
    match case.name {
        "a directory that does not exist" => dir.join("missing").join("token.state"),
        _ => dir.join("token.state"),
    }
}

/// Each bad file: ignored, never trusted, never fatal; the token comes from
/// the network with exactly one request; the event tells; the file is left
/// or replaced as it must be.
#[test]
fn bad_files_are_ignored_and_told() {
    for case in bad_files() {
        run_case(&case, state_path);
    }
}

fn run_case(case: &BadFile, path_of: fn(&Dir, &BadFile) -> PathBuf) {
    let (server, dir) = (issuing(), Dir::new("bad"));
    let path = path_of(&dir, case);
    (case.make)(&dir, &path, &server);
    let before = support::events::of_this_thread().len();
    let mut cache = cache(&server, &path);
    assert_eq!(token(&mut cache), "tok-1", "{}", case.name);
    assert_eq!(server.requests().len(), 1, "{}", case.name);
    let events = events_since(before);
    let about_the_file: Vec<&String> = events.iter().filter(|e| e.contains("state file")).collect();
    match case.event {
        None => assert!(about_the_file.is_empty(), "{}: {events:?}", case.name),
        Some(event) => assert!(about_the_file.iter().any(|e| e.contains(event)), "{}: {events:?}", case.name),
    }
    let warned = about_the_file.iter().filter(|e| e.starts_with("warn: ")).count() as u64;
    assert_eq!(cache.stats().state_errors(), warned, "{}: {events:?}", case.name);
    (case.after)(&dir, &path);
    // Another call is a cache hit, whatever became of the file.
    assert_eq!(token(&mut cache), "tok-1", "{}", case.name);
    assert_eq!(server.requests().len(), 1, "{}", case.name);
}

/// As root, a file of another user can be made, and a read-only directory
/// cannot be (root writes anyway); as another user, the other way round.
#[test]
fn files_of_another_user_and_read_only_directories_are_no_obstacle() {
    if is_root() {
        let case = BadFile {
            name: "owned by another user",
            make: |_, path, server| {
                write_file(path, &state_bytes(server), 0o600);
                std::os::unix::fs::chown(path, Some(65534), Some(65534)).expect("chown");
            },
            event: Some("it is owned by uid 65534"),
            after: |_, path| {
                assert_saved_safely(path);
                assert_eq!(fs::metadata(path).expect("metadata").uid(), 0);
            },
        };
        run_case(&case, state_path);
    } else {
        let case = BadFile {
            name: "a read-only directory",
            make: |dir, _, _| {
                let inner = dir.join("ro");
                fs::create_dir(&inner).expect("mkdir");
                fs::set_permissions(&inner, fs::Permissions::from_mode(0o500)).expect("chmod");
            },
            event: Some("cannot save the state file"),
            after: |dir, _| {
                let _ = fs::set_permissions(dir.join("ro"), fs::Permissions::from_mode(0o700));
            },
        };
        run_case(&case, |dir, _| dir.join("ro").join("token.state"));
    }
}
