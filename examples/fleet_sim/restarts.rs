//! Agents that restart, crash-loop, run as a script, or sleep: each device's
//! agent as a process that comes and goes, with its state file or without,
//! against a simulated token server that checks what the devices send.
//! Shared by `examples/fleet_sim` and `tests/fleet.rs`.
//!
//! A start builds a new `TokenCache` (a new policy seed, as a new process
//! draws one) and, with persistence, attaches the device's real
//! `cctoken::StateFile`; a stop drops it. Devices are simulated one after
//! another: they share nothing but the server's rules.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use cctoken::{AccessToken, Error, Policy, Token, TokenCache};

use crate::sim::SplitMix;

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);

/// How many devices each figure is simulated with.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    /// The daemon that never restarts (the baseline) and the one that restarts every 5 minutes.
    pub restarting: usize,
    /// The revoked devices that crash-loop.
    pub revoked: usize,
    /// The devices that crash-loop through the 429s.
    pub rate_limited: usize,
    /// The devices whose script runs `fetch_token --cache` every 30 s.
    pub script: usize,
    /// The devices that sleep.
    pub sleeping: usize,
}

/// The clock an agent gives its cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clock {
    /// cctoken's (`cctoken::now()`), which counts suspend: the true time.
    Cctoken,
    /// std's `Instant` on Linux, which stops during suspend.
    Instant,
}

/// What the token server does besides issuing tokens.
#[derive(Debug, Clone, Copy)]
pub enum Incident {
    None,
    /// It rejects the credentials of every simulated device, throughout:
    /// they stand for the revoked tenth of a fleet.
    Revoked,
    /// It answers 429 with this `Retry-After` to everyone, from `from` to `to` after boot.
    RateLimited {
        from: Duration,
        to: Duration,
        retry_after: Duration,
    },
}

/// How each device's agent lives, and what the server does meanwhile.
#[derive(Debug, Clone)]
pub struct Life {
    pub devices: usize,
    pub duration: Duration,
    /// The agent is stopped and started again this often; `None`: it runs throughout.
    pub restart_every: Option<Duration>,
    /// It calls the API right after each start, and this often while it runs.
    pub call_every: Duration,
    /// The unit sleeps (suspend to RAM) for `.1` every `.0`, the first time
    /// `.0` after boot: no calls, no restarts, the agent keeps its memory.
    pub sleep: Option<(Duration, Duration)>,
    pub clock: Clock,
    /// Each start attaches the device's state file.
    pub state_file: bool,
    pub incident: Incident,
    pub token_lifetime: Duration,
    pub seed: u64,
}

impl Life {
    /// A daemon that runs for 24 h without a restart, calling the API once a
    /// minute, with no incident: the baseline of the request ratios.
    pub fn daemon(devices: usize) -> Life {
        Life {
            devices,
            duration: 24 * HOUR,
            restart_every: None,
            call_every: MINUTE,
            sleep: None,
            clock: Clock::Cctoken,
            state_file: false,
            incident: Incident::None,
            token_lifetime: HOUR,
            seed: 2026,
        }
    }

    /// The daemon restarted every 5 minutes for 24 h (an OTA rollout, flapping).
    pub fn restarting(devices: usize) -> Life {
        Life { restart_every: Some(5 * MINUTE), ..Life::daemon(devices) }
    }

    /// Revoked devices whose daemon crash-loops every 10 s for 6 h: start,
    /// ask for a token, crash.
    pub fn revoked_crash_loop(devices: usize) -> Life {
        Life {
            duration: 6 * HOUR,
            restart_every: Some(Duration::from_secs(10)),
            incident: Incident::Revoked,
            ..Life::daemon(devices)
        }
    }

    /// Daemons that crash-loop every 10 s for 30 minutes, starting without a
    /// token (their state, if any, empty) as the token server begins 15
    /// minutes of 429 `Retry-After: 120`.
    pub fn rate_limited_crash_loop(devices: usize) -> Life {
        let retry_after = Duration::from_secs(120);
        Life {
            duration: 30 * MINUTE,
            restart_every: Some(Duration::from_secs(10)),
            incident: Incident::RateLimited { from: Duration::ZERO, to: 15 * MINUTE, retry_after },
            ..Life::daemon(devices)
        }
    }

    /// A script that runs `fetch_token --cache` every 30 s for 24 h: a new
    /// cache with the state file, one token, exit.
    pub fn script(devices: usize) -> Life {
        Life { restart_every: Some(Duration::from_secs(30)), ..Life::daemon(devices) }
    }

    /// The daemon on units that sleep 2 h every 6 h (at 6:00, 12:00 and
    /// 18:00), its cache given `clock`'s time.
    pub fn sleeping(devices: usize, clock: Clock) -> Life {
        Life { sleep: Some((6 * HOUR, 2 * HOUR)), clock, ..Life::daemon(devices) }
    }

    /// The same, each start attaching the device's state file.
    #[cfg(all(feature = "state-file", any(target_os = "linux", target_os = "android")))]
    pub fn with_state_file(self) -> Life {
        Life { state_file: true, ..self }
    }

    /// Whether the unit sleeps at `at` after boot.
    fn asleep(&self, at: Duration) -> bool {
        self.sleep.is_some_and(|(every, length)| {
            at >= every && at.as_nanos() % every.as_nanos() < length.as_nanos()
        })
    }

    /// How long the unit has slept by `at` after boot.
    fn slept(&self, at: Duration) -> Duration {
        let Some((every, length)) = self.sleep else { return Duration::ZERO };
        (1..=(at.as_nanos() / every.as_nanos()) as u32).map(|k| length.min(at - every * k)).sum()
    }
}

/// What a run counted.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub devices: usize,
    pub hours: f64,
    /// Agent starts, over all devices.
    pub starts: u64,
    /// Token requests, over all devices.
    pub requests: u64,
    /// The most token requests of one device in one hour of the run (the
    /// last hour partial if the run is).
    pub max_requests_in_a_device_hour: u32,
    /// Token requests a device sent while a `Retry-After` it received was in force.
    pub retry_after_violations: u64,
    /// 429 answers sent.
    pub rate_limited: u64,
    pub api_calls: u64,
    /// API calls the device made without a token (its cache answered an error).
    pub calls_without_token: u64,
    /// API calls whose token had expired on the server's (true) clock.
    pub expired_calls: u64,
    /// Problems with the state files (`Stats::state_errors`), over all starts: 0 unless a
    /// state was not read or written.
    pub state_errors: u64,
}

impl Outcome {
    pub fn requests_per_device_per_day(&self) -> f64 {
        self.requests as f64 / self.devices as f64 / (self.hours / 24.0)
    }

    /// Mean token requests per device and hour.
    pub fn requests_per_device_hour(&self) -> f64 {
        self.requests as f64 / self.devices as f64 / self.hours
    }
}

/// The most token requests per device and day, with the state file, of an
/// agent that restarts (or a script), as a multiple of the daemon's.
pub const REQUEST_RATIO_GOAL: f64 = 1.1;
/// The most token requests per revoked device and hour, with the state file.
pub const REVOKED_PER_HOUR_GOAL: f64 = 5.0;

/// The simulated token server, which also receives the API calls.
struct Server {
    incident: Incident,
    lifetime: Duration,
    boot: Instant,
    hours: usize,
    /// The true time, and the device's clock (the one its cache runs on).
    now: Instant,
    device_now: Instant,
    device: usize,
    requests: u64,
    per_device_hour: Vec<u32>,
    retry_after_until: Option<Instant>,
    violations: u64,
    rate_limited: u64,
    issued: u64,
    /// The true expiry of each token the current device was issued.
    expiry: HashMap<String, Instant>,
    api_calls: u64,
    expired_calls: u64,
}

impl Server {
    fn request(&mut self) -> Result<Token, Error> {
        self.requests += 1;
        let hour = ((self.now - self.boot).as_secs() / 3600) as usize;
        if hour < self.hours {
            self.per_device_hour[self.device * self.hours + hour] += 1;
        }
        if self.retry_after_until.is_some_and(|until| self.now < until) {
            self.violations += 1;
        }
        match self.incident {
            Incident::Revoked => return Err(Error::CredentialsRejected { status: 401, oauth: None }),
            Incident::RateLimited { from, to, retry_after }
                if (from..to).contains(&(self.now - self.boot)) =>
            {
                self.rate_limited += 1;
                self.retry_after_until = Some(self.now + retry_after);
                return Err(Error::HttpStatus { status: 429, retry_after: Some(retry_after) });
            }
            _ => {}
        }
        self.issued += 1;
        let name = format!("d{}-t{}", self.device, self.issued);
        self.expiry.insert(name.clone(), self.now + self.lifetime);
        // The cache measures the lifetime on its own clock, from when it asked.
        Ok(Token::new(AccessToken::new(name), self.device_now, self.lifetime))
    }

    /// An API call with `token`: counted as expired if it is, on the true
    /// clock (or if this server never issued it to this device).
    fn api_call(&mut self, token: &str) {
        self.api_calls += 1;
        if self.expiry.get(token).is_none_or(|&expiry| self.now >= expiry) {
            self.expired_calls += 1;
        }
    }
}

/// A device's way to the simulated server.
type Fetcher = Box<dyn FnMut() -> Result<Token, Error>>;
type Cache = TokenCache<Fetcher>;

/// Runs `life` for each of its devices in turn.
pub fn run(life: &Life) -> Outcome {
    assert!(life.sleep.is_none() || life.restart_every.is_none(), "restarts during sleep are not modelled");
    #[cfg(all(feature = "state-file", any(target_os = "linux", target_os = "android")))]
    let states = life.state_file.then(state::Dir::new);
    #[cfg(not(all(feature = "state-file", any(target_os = "linux", target_os = "android"))))]
    assert!(!life.state_file, "the state file needs the state-file feature, on Linux or Android");

    // The true clock starts now, and runs ahead of cctoken's: the state file
    // is attached at the device's instant (`with_state_file_at`), not at cctoken's.
    let boot = Instant::now();
    let hours = life.duration.as_secs().div_ceil(3600) as usize;
    let server = Rc::new(RefCell::new(Server {
        incident: life.incident,
        lifetime: life.token_lifetime,
        boot,
        hours,
        now: boot,
        device_now: boot,
        device: 0,
        requests: 0,
        per_device_hour: vec![0; life.devices * hours],
        retry_after_until: None,
        violations: 0,
        rate_limited: 0,
        issued: 0,
        expiry: HashMap::new(),
        api_calls: 0,
        expired_calls: 0,
    }));
    let (mut starts, mut calls_without_token, mut state_errors) = (0u64, 0u64, 0u64);
    let mut rng = SplitMix(life.seed);
    let lives = life.restart_every.unwrap_or(life.duration);
    for device in 0..life.devices {
        {
            let mut s = server.borrow_mut();
            s.device = device;
            s.retry_after_until = None;
            s.expiry.clear();
        }
        // Devices boot at random within the first call interval (or life, if shorter).
        let first = life.call_every.min(lives).as_millis() as u64;
        let mut started = Duration::from_millis(rng.next() % first.max(1));
        let mut start_count = 0u64;
        while started < life.duration {
            let clock = |at: Duration| match life.clock {
                Clock::Cctoken => boot + at,
                Clock::Instant => boot + at - life.slept(at),
            };
            let seed = SplitMix(life.seed ^ ((device as u64) << 32) ^ start_count).next();
            let fetch = {
                let server = server.clone();
                Box::new(move || server.borrow_mut().request()) as Fetcher
            };
            let cache: Cache = TokenCache::with_policy(fetch, Policy::default().seed(seed));
            #[cfg(all(feature = "state-file", any(target_os = "linux", target_os = "android")))]
            let cache = match &states {
                Some(dir) => dir.attach(cache, device, clock(started)),
                None => cache,
            };
            let mut cache = cache;
            starts += 1;
            let stop = (started + lives).min(life.duration);
            let mut at = started;
            while at < stop {
                if !life.asleep(at) {
                    calls_without_token += u64::from(!call(&server, &mut cache, boot + at, clock(at)));
                }
                at += life.call_every;
            }
            state_errors += cache.stats().state_errors();
            started += lives;
            start_count += 1;
        }
    }

    let server = server.borrow();
    Outcome {
        devices: life.devices,
        hours: life.duration.as_secs_f64() / 3600.0,
        starts,
        requests: server.requests,
        max_requests_in_a_device_hour: server.per_device_hour.iter().copied().max().unwrap_or(0),
        retry_after_violations: server.violations,
        rate_limited: server.rate_limited,
        api_calls: server.api_calls,
        calls_without_token,
        expired_calls: server.expired_calls,
        state_errors,
    }
}

/// One API call at true time `now`, the device's clock reading `device_now`:
/// whether the cache had a token for it.
fn call(server: &Rc<RefCell<Server>>, cache: &mut Cache, now: Instant, device_now: Instant) -> bool {
    {
        let mut s = server.borrow_mut();
        s.now = now;
        s.device_now = device_now;
    }
    let token = cache.token_at(device_now).map(|t| t.access_token().secret().to_owned());
    match token {
        Ok(token) => {
            server.borrow_mut().api_call(&token);
            true
        }
        Err(_) => false,
    }
}

/// The devices' state files: the real `cctoken::StateFile`, one per device,
/// in a directory of the run's own.
#[cfg(all(feature = "state-file", any(target_os = "linux", target_os = "android")))]
mod state {
    use std::fs::{self, DirBuilder};
    use std::os::unix::fs::DirBuilderExt;
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Instant;

    use cctoken::{Config, StateFile};

    use super::Cache;

    /// A directory only this user can enter, removed when dropped.
    pub(super) struct Dir(PathBuf);

    impl Dir {
        /// On tmpfs (`/dev/shm`) if there is one, as the README advises for
        /// state files: a file system that syncs to disk would make each save
        /// cost milliseconds. Else under the temporary directory.
        pub(super) fn new() -> Dir {
            static RUNS: AtomicUsize = AtomicUsize::new(0);
            let shm = PathBuf::from("/dev/shm");
            let base = if shm.is_dir() { shm } else { std::env::temp_dir() };
            let run = RUNS.fetch_add(1, Ordering::Relaxed);
            let path = base.join(format!("cctoken-fleet-{}-{run}", std::process::id()));
            // Left over by an earlier process with the same id.
            let _ = fs::remove_dir_all(&path);
            DirBuilder::new().mode(0o700).create(&path).expect("create the simulation's state directory");
            Dir(path)
        }

        /// `cache` with `device`'s state file attached at `now`, the device's clock.
        pub(super) fn attach(&self, cache: Cache, device: usize, now: Instant) -> Cache {
            // The configuration only keys the state file: the fetcher is the simulated server.
            let config = Config::client_secret_basic(
                "https://token.sim.invalid/token",
                &format!("device-{device}"),
                "sim-secret",
            );
            let state = StateFile::new(self.0.join(format!("device-{device}.state")), &config);
            cache.with_state_file_at(state, now)
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
}
