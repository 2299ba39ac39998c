//! `fetch_token` with a wrong wall clock, which libfaketime (Debian package
//! `faketime`) fakes; its boot clock and the loopback servers' clocks are real.

#![cfg(all(feature = "ureq", feature = "state-file"))]

mod support;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use support::{Server, TestPki, http_date, response};

const FETCH_TOKEN: &str = env!("CARGO_BIN_EXE_fetch_token");
const SECRET: &str = "s3cr3t";
const TOKEN: &str = "wr0ng.cl0ck.t0k3n";
/// cctoken's release date, its last-resort floor: 2026-11-30 00:00 UTC.
const RELEASE: u64 = 1_795_996_800;
/// 2030-01-01 00:00 UTC.
const IN_2030: u64 = 1_893_456_000;
const DAY: Duration = Duration::from_secs(86_400);
/// The wall clock of a device without a battery-backed clock, after boot.
const AT_1970: &str = "@1970-01-02 00:00:00";
/// How `fetch_token` at [`AT_1970`] says that its clock is wrong.
const WRONG_AT_1970: &str = "fetch_token: the device clock is wrong: it reads 1970-01-02 ";

fn unix(time: SystemTime) -> Duration {
    time.duration_since(UNIX_EPOCH).expect("after 1970")
}

/// libfaketime's preload library: `CCTOKEN_LIBFAKETIME`, or where Debian's
/// package (or another distribution's) puts it.
fn libfaketime() -> PathBuf {
    let lib_dirs = ["/usr/lib", "/usr/lib64"].into_iter().map(PathBuf::from);
    let arch_dirs = std::fs::read_dir("/usr/lib").into_iter().flatten().flatten().map(|entry| entry.path());
    let installed = lib_dirs.chain(arch_dirs).map(|dir| dir.join("faketime/libfaketime.so.1"));
    std::env::var_os("CCTOKEN_LIBFAKETIME")
        .map(PathBuf::from)
        .into_iter()
        .chain(installed)
        .find(|path| path.is_file())
        .expect(
            "libfaketime.so.1 is not under /usr/lib: install the Debian package faketime \
             (apt-get install -y faketime), or name the library in CCTOKEN_LIBFAKETIME",
        )
}

/// A wall clock at least a year slow, and so slow that it reads before the
/// release date: libfaketime's offset.
fn year_slow() -> String {
    let days_since_release = (unix(SystemTime::now()).as_secs() - RELEASE) / 86_400;
    format!("-{}d", days_since_release.max(364) + 1)
}

#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn token(&self) {
        assert_eq!((self.code, self.stdout.as_str()), (0, &*format!("{TOKEN}\n")), "{self:?}");
    }

    /// Asserts exit status 1 (retry may help); the stderr line.
    fn failure(&self) -> &str {
        assert_eq!(self.code, 1, "{self:?}");
        &self.stderr
    }
}

/// Runs `fetch_token args` with the wall clock at libfaketime's `FAKETIME`
/// (`None`: the real clock; the boot clock is real in any case), and checks
/// what holds for every run: no panic, no secret or token on stderr, and on
/// failure an empty stdout and one `fetch_token: ` line on stderr.
fn run(faketime: Option<&str>, args: &[&str]) -> Run {
    let mut command = support::target_command(FETCH_TOKEN);
    command.env_clear().envs([("CLIENT_ID", "device-7"), ("CLIENT_SECRET", SECRET)]).args(args);
    if let Some(faketime) = faketime {
        command.env("LD_PRELOAD", libfaketime()).env("FAKETIME", faketime);
        command.env("FAKETIME_DONT_FAKE_MONOTONIC", "1").env("TZ", "UTC");
    }
    let output = command.output().expect("run fetch_token");
    let run = Run {
        code: output.status.code().expect("exited, not killed by a signal"),
        stdout: String::from_utf8(output.stdout).expect("stdout UTF-8"),
        stderr: String::from_utf8(output.stderr).expect("stderr UTF-8"),
    };
    assert!(!run.stderr.contains("panicked"), "{run:?}");
    assert!(!run.stderr.contains(SECRET) && !run.stderr.contains(TOKEN), "{run:?}");
    if run.code == 0 {
        // Only -v prints on success: events, one line each.
        let verbose = args.contains(&"-v");
        assert!(run.stderr.is_empty() || verbose && run.stderr.starts_with("fetch_token: "), "{run:?}");
    } else {
        assert_eq!(run.stdout, "", "{run:?}");
        assert!(run.stderr.starts_with("fetch_token: ") && run.stderr.lines().count() == 1, "{run:?}");
    }
    run
}

/// A token response issuing [`TOKEN`], with `Date` at `date` (seconds since the epoch).
fn token_answer(date: u64) -> Vec<u8> {
    let body = format!(r#"{{"access_token":"{TOKEN}","token_type":"Bearer","expires_in":3600}}"#);
    response(200, &[("Content-Type", "application/json"), ("Date", &http_date(date))], &body)
}

/// The time rustls checked the certificate at, as its error says.
fn verification_time(stderr: &str) -> u64 {
    let (_, rest) = stderr.split_once("verification time ").expect("rustls' time of the check");
    rest.split(' ').next().and_then(|secs| secs.parse().ok()).expect("seconds since the epoch")
}

/// A directory of one test's own under the system's temporary directory, for
/// its state file and CA files; removed when dropped.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let path = std::env::temp_dir().join(format!("cctoken-wrong-clock-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir(&path).expect("create the test directory");
        Dir(path)
    }

    fn path(&self, name: &str) -> String {
        self.0.join(name).to_str().expect("UTF-8 path").to_owned()
    }

    /// The state file, as `--cache` takes it.
    fn state(&self) -> String {
        self.path("token.state")
    }

    fn lines(&self) -> Vec<String> {
        let text = std::fs::read_to_string(self.state()).expect("read the state file");
        text.lines().map(str::to_owned).collect()
    }

    /// The value of the state file's line `name=`, if it has one.
    fn field(&self, name: &str) -> Option<String> {
        let prefix = format!("{name}=");
        self.lines().iter().find_map(|line| line.strip_prefix(&prefix).map(str::to_owned))
    }

    fn number(&self, name: &str) -> u64 {
        let value = self.field(name).unwrap_or_else(|| panic!("no {name}= in {:?}", self.lines()));
        value.parse().expect("a number")
    }

    /// Sets the state file's line `name=` to `value`, and its last line to
    /// the checksum that makes it whole again.
    fn rewrite(&self, name: &str, value: &str) {
        let mut lines = self.lines();
        let sum = lines.pop().expect("a last line");
        let body = |lines: &[String]| lines.iter().map(|line| format!("{line}\n")).collect::<String>();
        assert_eq!(sum, format!("sha256={}", sha256_hex(&body(&lines))), "as cctoken computes it");
        let line = lines.iter_mut().find(|line| line.starts_with(&format!("{name}="))).expect("the line");
        *line = format!("{name}={value}");
        let body = body(&lines);
        std::fs::write(self.state(), format!("{body}sha256={}\n", sha256_hex(&body))).expect("rewrite");
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// SHA-256 in hex, from rustls' ring provider (a dev-dependency already).
fn sha256_hex(text: &str) -> String {
    let suite = rustls::crypto::ring::cipher_suite::TLS13_AES_128_GCM_SHA256.tls13().expect("TLS 1.3");
    suite.common.hash_provider.hash(text.as_bytes()).as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// A loopback HTTPS token server whose certificate, for 127.0.0.1, is valid
/// from `valid.0` to `valid.1`; each answer's `Date` is `date()`.
struct Https {
    server: Server,
    url: String,
    ca_file: String,
    dates: Arc<Mutex<Vec<u64>>>,
}

impl Https {
    fn with_date(dir: &Dir, name: &str, valid: (SystemTime, SystemTime), date: fn() -> u64) -> Https {
        let pki = TestPki::issue(&["127.0.0.1"], |params| {
            (params.not_before, params.not_after) = (valid.0.into(), valid.1.into());
        });
        let ca_file = dir.path(&format!("{name}-ca.pem"));
        std::fs::write(&ca_file, &pki.ca_pem).expect("write the CA file");
        let dates = Arc::new(Mutex::new(Vec::new()));
        let sent = dates.clone();
        let server = Server::https(&pki, move |_| {
            let date = date();
            sent.lock().expect("dates").push(date);
            token_answer(date)
        });
        Https { url: server.url("/token"), server, ca_file, dates }
    }

    /// With the real time as `Date`.
    fn new(dir: &Dir, name: &str, valid: (SystemTime, SystemTime)) -> Https {
        Https::with_date(dir, name, valid, || unix(SystemTime::now()).as_secs())
    }

    /// Valid from a day ago to a day ahead.
    fn current(dir: &Dir, name: &str) -> Https {
        let now = SystemTime::now();
        Https::new(dir, name, (now - DAY, now + DAY))
    }

    fn fetch(&self, faketime: Option<&str>, more: &[&str]) -> Run {
        let mut args = vec!["--url", &self.url, "--auth", "basic", "--ca-file", &self.ca_file];
        args.extend_from_slice(more);
        run(faketime, &args)
    }

    fn requests(&self) -> usize {
        self.server.requests().len()
    }
}

#[test]
#[ignore = "needs faketime (Debian package faketime); .ci/run installs it and runs these"]
fn certificates_valid_since_yesterday_are_newer_than_the_release_date() {
    assert!(unix(SystemTime::now() - DAY).as_secs() > RELEASE, "else no case here shows the floor");
    assert_eq!(http_date(1_796_103_000), "Tue, 01 Dec 2026 05:30:00 GMT");
    assert_eq!(http_date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
    assert_eq!(http_date(951_827_696), "Tue, 29 Feb 2000 12:34:56 GMT");
}

#[test]
#[ignore = "needs faketime (Debian package faketime); .ci/run installs it and runs these"]
fn at_1970_a_floor_from_an_earlier_fetch_in_this_boot_verifies_the_certificate() {
    let dir = Dir::new("same-boot");
    let server = Https::current(&dir, "server");
    server.fetch(None, &["--cache", &dir.state(), "--scope", "a"]).token();
    assert!(dir.field("time").is_some() && dir.field("time-boot").is_some(), "{:?}", dir.lines());
    // Another scope: the saved token is not served, the saved time is read.
    server.fetch(Some(AT_1970), &["--cache", &dir.state(), "--scope", "b"]).token();
    assert_eq!(server.requests(), 2);
    // Which -v tells.
    let run = server.fetch(Some(AT_1970), &["--cache", &dir.state(), "--scope", "c", "-v"]);
    run.token();
    let warning = run.stderr.lines().find(|line| line.contains("wall clock")).expect("a warning");
    let floor = warning
        .strip_prefix("fetch_token: warn: the wall clock reads 1970-01-02 00:00:00 UTC, earlier than ")
        .and_then(|rest| {
            rest.strip_suffix(
                " UTC, which has passed: the token server's certificate was checked at the latter",
            )
        })
        .unwrap_or_else(|| panic!("{warning}"));
    assert!(floor.starts_with("20") && floor.len() == "2026-12-01 05:30:00".len(), "{warning}");
    assert_eq!(server.requests(), 3);
}

#[test]
#[ignore = "needs faketime (Debian package faketime); .ci/run installs it and runs these"]
fn at_1970_a_floor_saved_in_another_boot_verifies_the_certificate() {
    // The floor of another boot is its time when this boot began: its time
    // plus this boot's uptime, so the certificate must be valid that far.
    let uptime = std::fs::read_to_string("/proc/uptime").expect("/proc/uptime");
    let uptime: f64 = uptime.split(' ').next().and_then(|s| s.parse().ok()).expect("seconds");
    let now = SystemTime::now();
    let dir = Dir::new("other-boot");
    let server = Https::new(&dir, "server", (now - DAY, now + Duration::from_secs_f64(uptime) + 2 * DAY));
    server.fetch(None, &["--cache", &dir.state()]).token();
    let boot_id = dir.field("boot-id").expect("a boot id");
    let other_boot = "0badb007-0000-4000-8000-000000000001";
    assert_ne!(boot_id, other_boot);
    dir.rewrite("boot-id", other_boot);
    // The token of another boot is not served: a request.
    server.fetch(Some(AT_1970), &["--cache", &dir.state()]).token();
    assert_eq!(server.requests(), 2);
    assert_eq!(dir.field("boot-id"), Some(boot_id), "saved in this boot");
}

#[test]
#[ignore = "needs faketime (Debian package faketime); .ci/run installs it and runs these"]
fn at_1970_without_a_floor_the_clock_is_wrong_and_the_gate_is_a_short_backoff() {
    let dir = Dir::new("no-floor");
    let server = Https::current(&dir, "server");
    let stderr = server.fetch(Some(AT_1970), &[]).failure().to_owned();
    assert!(stderr.starts_with(WRONG_AT_1970), "{stderr}");
    assert!(stderr.contains("UTC, earlier than 2026-11-30 00:00:00 UTC, which has passed;"), "{stderr}");
    assert!(stderr.contains("certificate not valid yet"), "{stderr}");
    assert_eq!(verification_time(&stderr), RELEASE, "checked at the release date");

    // The first backoff of the default policy: a random time below 10 s.
    // One too short to outlast the start of the next run is drawn again.
    let backoff = (0..20).find_map(|_| {
        let _ = std::fs::remove_file(dir.state());
        let stderr = server.fetch(Some(AT_1970), &["--cache", &dir.state()]).failure().to_owned();
        assert!(stderr.starts_with(WRONG_AT_1970), "{stderr}");
        let lines = dir.lines();
        for line in ["gate-error=transport", "gate-transport=clock", "failures=1"] {
            assert!(lines.iter().any(|l| l == line), "{line} in {lines:?}");
        }
        assert!(!lines.iter().any(|l| l.starts_with("time=") || l.starts_with("token=")), "{lines:?}");
        let backoff = Duration::from_nanos(dir.number("gate-until") - dir.number("gate-failed"));
        assert!(backoff < Duration::from_secs(10), "not the 12 to 15 min of a rejection: {backoff:?}");
        (backoff >= Duration::from_secs(2)).then_some(backoff)
    });
    assert!(backoff.is_some(), "20 draws below 2 s out of 10");
    // The gate, saved without its cause: no request.
    let run = server.fetch(Some(AT_1970), &["--cache", &dir.state()]);
    let prefix =
        "fetch_token: backing off from the token endpoint after: the device clock is wrong (no request for ";
    let secs = run
        .failure()
        .strip_prefix(prefix)
        .and_then(|rest| rest.strip_suffix(" s more, as the --cache file says)\n"));
    assert!(secs.and_then(|s| s.parse().ok()).is_some_and(|s: u64| (1..=10).contains(&s)), "{run:?}");
    assert_eq!(server.requests(), 0, "no handshake ever succeeded");
}

#[test]
#[ignore = "needs faketime (Debian package faketime); .ci/run installs it and runs these"]
fn certificates_outside_their_validity_are_refused_whatever_the_clock() {
    let dir = Dir::new("validity");
    let valid = Https::current(&dir, "valid");
    valid.fetch(None, &["--cache", &dir.state()]).token();
    let floor = dir.number("time") / 1_000_000_000;

    let now = SystemTime::now();
    let expired = Https::new(&dir, "expired", (now - 10 * DAY, now - DAY / 24));
    let stderr = expired.fetch(Some(AT_1970), &["--cache", &dir.state()]).failure().to_owned();
    // Expired at a time known to have passed: the clock is not to blame.
    assert!(stderr.starts_with("fetch_token: TLS failure talking to the token endpoint: "), "{stderr}");
    assert!(stderr.contains("certificate expired: verification time"), "{stderr}");
    assert!(verification_time(&stderr) >= floor, "checked at the floor {floor}: {stderr}");
    assert_eq!(expired.requests(), 0);

    let not_yet = Https::new(&dir, "not-yet", (now + DAY, now + 2 * DAY));
    let stderr = not_yet.fetch(None, &[]).failure().to_owned();
    assert!(stderr.starts_with("fetch_token: TLS failure talking to the token endpoint: "), "{stderr}");
    assert!(stderr.contains("certificate not valid yet"), "{stderr}");
    assert_eq!(not_yet.requests(), 0);
    assert_eq!(valid.requests(), 1);
}

#[test]
#[ignore = "needs faketime (Debian package faketime); .ci/run installs it and runs these"]
fn only_a_verified_response_moves_the_floor_and_a_right_wall_clock_caps_it() {
    let dir = Dir::new("unverified");
    let http = Server::http(|_| token_answer(IN_2030));
    run(None, &["--url", &http.url("/token"), "--auth", "basic", "--cache", &dir.state()]).token();
    assert_eq!(http.requests().len(), 1);
    assert!(dir.field("token").is_some() && dir.field("time").is_none(), "{:?}", dir.lines());

    // Over verified TLS, a Date in 2030 is capped by the (right) wall clock.
    let now = SystemTime::now();
    let https = Https::with_date(&dir, "server", (now - DAY, now + DAY), || IN_2030);
    let before = unix(SystemTime::now()).as_nanos();
    https.fetch(None, &["--cache", &dir.state()]).token();
    let after = unix(SystemTime::now()).as_nanos();
    let time = u128::from(dir.number("time"));
    assert!(before <= time && time <= after, "{before} <= {time} <= {after}");
    assert_eq!(https.requests(), 1);
}

#[test]
#[ignore = "needs faketime (Debian package faketime); .ci/run installs it and runs these"]
fn a_slow_wall_clock_is_believed_until_it_reads_earlier_than_the_floor() {
    let dir = Dir::new("slow");
    let server = Https::current(&dir, "server");
    server.fetch(Some("-2h"), &[]).token();
    let stderr = server.fetch(Some(&year_slow()), &[]).failure().to_owned();
    assert!(stderr.starts_with("fetch_token: the device clock is wrong: it reads "), "{stderr}");
    assert!(stderr.contains("UTC, earlier than 2026-11-30 00:00:00 UTC, which has passed;"), "{stderr}");
    assert_eq!(server.requests(), 1);

    // The clock right: the floor saved is the server's Date (not later than the wall clock).
    server.fetch(None, &["--cache", &dir.state(), "--scope", "a"]).token();
    let date = server.dates.lock().expect("dates")[1];
    assert_eq!(dir.number("time"), date * 1_000_000_000, "{}", http_date(date));
    server.fetch(Some(&year_slow()), &["--cache", &dir.state(), "--scope", "b"]).token();
    assert_eq!(server.requests(), 3);
}

#[test]
#[ignore = "needs faketime (Debian package faketime); .ci/run installs it and runs these"]
fn at_1970_a_time_floor_given_on_the_command_line_verifies_the_certificate() {
    let dir = Dir::new("given-floor");
    let server = Https::current(&dir, "server");
    let a_minute_ago = (unix(SystemTime::now()).as_secs() - 60).to_string();
    server.fetch(Some(AT_1970), &["--time-floor", &a_minute_ago]).token();
    // A floor older than the certificate (but newer than the release): still
    // the clock's fault, and said so.
    let older = unix(SystemTime::now() - DAY).as_secs() - 60;
    let stderr = server.fetch(Some(AT_1970), &["--time-floor", &older.to_string()]).failure().to_owned();
    assert!(stderr.starts_with(WRONG_AT_1970), "{stderr}");
    // The floor given, carried forward for as long as the run took to get there.
    let checked_at = verification_time(&stderr);
    assert!((older..older + 5).contains(&checked_at), "checked at {checked_at}, the floor given {older}");
    assert_eq!(server.requests(), 1);
}
