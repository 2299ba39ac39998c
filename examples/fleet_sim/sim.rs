//! A fleet of devices on a virtual clock against a simulated token server.
//!
//! Each device runs the crate's real `TokenCache` (or, for comparison, a
//! naive cache) and calls its API once a minute; the token server has an
//! outage, a rate-limiting episode and a credentials revocation. Shared by
//! `examples/fleet_sim` and `tests/fleet.rs`.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use cctoken::{AccessToken, Error, Policy, Token, TokenCache, TransportKind};

const MINUTE: u64 = 60;

/// What happens, and when (minutes from the boot minute).
#[derive(Debug, Clone)]
pub struct Scenario {
    pub devices: usize,
    pub minutes: u64,
    pub token_lifetime: Duration,
    /// The token server answers nothing (the fetch times out).
    pub outage: (u64, u64),
    /// The token server answers 429 with `Retry-After: 120`.
    pub rate_limited: (u64, u64),
    pub retry_after: Duration,
    /// The token server rejects the credentials of one device in ten.
    pub revoked: (u64, u64),
    pub seed: u64,
    /// The policy of every device running `Kind::Ours` (seeded per device).
    pub policy: Policy,
}

impl Scenario {
    /// The fleet `fleet_sim` simulates and `tests/fleet.rs` checks: 10,000
    /// devices booting together, 24 hours with an outage, a rate-limiting
    /// episode and a revocation.
    pub fn full() -> Scenario {
        Scenario {
            devices: 10_000,
            minutes: 24 * 60,
            token_lifetime: Duration::from_secs(3600),
            outage: (6 * 60, 6 * 60 + 10),
            rate_limited: (12 * 60, 12 * 60 + 15),
            retry_after: Duration::from_secs(120),
            revoked: (18 * 60, 18 * 60 + 30),
            seed: 2026,
            policy: Policy::default(),
        }
    }

    /// The same incidents, each moved to start in a minute when the naive
    /// fleet refreshes all at once (every 59 minutes from boot), so that
    /// both policies meet them head on.
    pub fn aligned_with_naive() -> Scenario {
        let full = Scenario::full();
        let align = |(from, to): (u64, u64)| {
            let start = from / 59 * 59;
            (start, start + (to - from))
        };
        Scenario {
            outage: align(full.outage),
            rate_limited: align(full.rate_limited),
            revoked: align(full.revoked),
            ..full
        }
    }

    fn is_revoked(&self, device: usize) -> bool {
        device.is_multiple_of(10)
    }
}

/// Which cache the devices run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// cctoken's `TokenCache` with its default `Policy`.
    Ours,
    /// Refresh 60 s before expiry, no jitter, no gate: retry on every API call.
    Naive,
}

/// The outcome of one run.
#[derive(Debug, Clone)]
pub struct Report {
    /// Token requests per minute.
    pub per_minute: Vec<u32>,
    /// Busiest minute / mean minute over hours 1–6 (boot minute excluded).
    pub sync_peak_ratio: f64,
    /// Busiest minute in the 30 minutes after the outage / the same mean.
    pub recovery_peak_ratio: f64,
    /// Token requests per device during the outage.
    pub outage_requests_per_device: f64,
    /// Share of API calls during the outage that had a valid token.
    pub outage_coverage: f64,
    /// Requests a device sent while a `Retry-After` it received was in force.
    pub retry_after_violations: u64,
    /// Token requests per revoked device while revoked.
    pub revoked_requests_per_device: f64,
    /// API calls without a valid token, over the whole run.
    pub calls_without_token: u64,
}

impl Report {
    /// Token requests in the busiest minute after boot.
    pub fn busiest_minute(&self) -> u32 {
        self.per_minute.iter().skip(1).copied().max().unwrap_or(0)
    }

    pub fn total_requests(&self) -> u64 {
        self.per_minute.iter().map(|&n| u64::from(n)).sum()
    }

    /// The figures the goals are judged by, on one line of `name=value`
    /// pairs with fixed names and precision, so that a log or a script can
    /// compare runs.
    pub fn summary_line(&self) -> String {
        format!(
            "sync_peak_ratio={:.2} recovery_peak_ratio={:.2} outage_requests_per_device={:.2} \
             outage_coverage={:.4} retry_after_violations={} revoked_requests_per_device={:.2}",
            self.sync_peak_ratio,
            self.recovery_peak_ratio,
            self.outage_requests_per_device,
            self.outage_coverage,
            self.retry_after_violations,
            self.revoked_requests_per_device
        )
    }

    /// Each goal with whether it is met.
    pub fn goals(&self) -> Vec<(&'static str, bool)> {
        vec![
            ("sync_peak_ratio <= 2.0", self.sync_peak_ratio <= 2.0),
            ("recovery_peak_ratio <= 3.0", self.recovery_peak_ratio <= 3.0),
            ("outage_requests_per_device <= 5", self.outage_requests_per_device <= 5.0),
            ("outage_coverage >= 0.99", self.outage_coverage >= 0.99),
            ("retry_after_violations = 0", self.retry_after_violations == 0),
            ("revoked_requests_per_device <= 3", self.revoked_requests_per_device <= 3.0),
        ]
    }
}

/// The simulated token server, shared by all devices' fetchers.
struct Server {
    scenario: Scenario,
    start: Instant,
    now: Instant,
    per_minute: Vec<u32>,
    retry_after_until: Vec<Option<Instant>>,
    violations: u64,
    revoked_requests: u64,
    issued: u64,
}

impl Server {
    fn minute(&self) -> u64 {
        (self.now - self.start).as_secs() / MINUTE
    }

    fn request(&mut self, device: usize) -> Result<Token, Error> {
        let minute = self.minute();
        if let Some(slot) = self.per_minute.get_mut(minute as usize) {
            *slot += 1;
        }
        if self.retry_after_until[device].is_some_and(|until| self.now < until) {
            self.violations += 1;
        }
        let within = |(from, to): (u64, u64)| (from..to).contains(&minute);
        let s = &self.scenario;
        if within(s.outage) {
            return Err(TransportKind::Timeout.into());
        }
        if within(s.rate_limited) {
            self.retry_after_until[device] = Some(self.now + s.retry_after);
            return Err(Error::HttpStatus { status: 429, retry_after: Some(s.retry_after) });
        }
        if within(s.revoked) && s.is_revoked(device) {
            self.revoked_requests += 1;
            return Err(Error::CredentialsRejected { status: 401, oauth: None });
        }
        self.issued += 1;
        Ok(Token::new(AccessToken::new(format!("t{}", self.issued)), self.now, s.token_lifetime))
    }
}

/// A device's way to the simulated token server.
type Fetcher = Box<dyn FnMut() -> Result<Token, Error>>;

/// A device's token source: the real cache, or the naive one.
enum Device {
    Ours(Box<TokenCache<Fetcher>>),
    Naive { fetch: Fetcher, token: Option<Token> },
}

impl Device {
    /// One API call's worth of token: whether a valid token was at hand.
    fn has_valid_token(&mut self, now: Instant) -> bool {
        match self {
            Device::Ours(cache) => cache.token_at(now).is_ok_and(|t| !t.is_expired_at(now)),
            Device::Naive { fetch, token } => {
                let margin = Duration::from_secs(60);
                let fresh = token.as_ref().is_some_and(|t| now + margin < t.expires_at());
                if !fresh && let Ok(new) = fetch() {
                    *token = Some(new);
                }
                token.as_ref().is_some_and(|t| !t.is_expired_at(now))
            }
        }
    }
}

/// Runs `scenario` with every device on `kind`'s cache.
pub fn run(scenario: &Scenario, kind: Kind) -> Report {
    let start = Instant::now();
    let server = Rc::new(RefCell::new(Server {
        scenario: scenario.clone(),
        start,
        now: start,
        per_minute: vec![0; scenario.minutes as usize],
        retry_after_until: vec![None; scenario.devices],
        violations: 0,
        revoked_requests: 0,
        issued: 0,
    }));

    // All devices boot within the first minute, in random order.
    let mut rng = SplitMix(scenario.seed);
    let mut boot: Vec<(Duration, usize)> =
        (0..scenario.devices).map(|d| (Duration::from_millis(rng.next() % 60_000), d)).collect();
    boot.sort();
    let mut devices: Vec<Device> = (0..scenario.devices)
        .map(|d| {
            let server = server.clone();
            let fetch: Box<dyn FnMut() -> Result<Token, Error>> =
                Box::new(move || server.borrow_mut().request(d));
            match kind {
                Kind::Ours => {
                    let policy =
                        scenario.policy.clone().seed(scenario.seed ^ (d as u64).wrapping_mul(0x9E37_79B9));
                    Device::Ours(Box::new(TokenCache::with_policy(fetch, policy)))
                }
                Kind::Naive => Device::Naive { fetch, token: None },
            }
        })
        .collect();

    let (mut outage_calls, mut outage_covered, mut calls_without_token) = (0u64, 0u64, 0u64);
    let mut revoked_in_window = 0;
    for minute in 0..scenario.minutes {
        if minute == scenario.revoked.0 {
            revoked_in_window = server.borrow().revoked_requests;
        }
        if minute == scenario.revoked.1 {
            revoked_in_window = server.borrow().revoked_requests - revoked_in_window;
        }
        let in_outage = (scenario.outage.0..scenario.outage.1).contains(&minute);
        for &(offset, d) in &boot {
            let now = start + Duration::from_secs(minute * MINUTE) + offset;
            server.borrow_mut().now = now;
            let covered = devices[d].has_valid_token(now);
            calls_without_token += u64::from(!covered);
            if in_outage {
                outage_calls += 1;
                outage_covered += u64::from(covered);
            }
        }
    }

    let server = server.borrow();
    let per_minute = server.per_minute.clone();
    let window = |from: u64, to: u64| {
        let to = (to as usize).min(per_minute.len());
        &per_minute[(from as usize).min(to)..to]
    };
    let baseline = window(1, 6 * 60);
    let mean = baseline.iter().map(|&n| f64::from(n)).sum::<f64>() / baseline.len() as f64;
    let peak = |w: &[u32]| f64::from(w.iter().copied().max().unwrap_or(0));
    let outage_requests: u64 =
        window(scenario.outage.0, scenario.outage.1).iter().map(|&n| u64::from(n)).sum();
    let revoked_devices = (0..scenario.devices).filter(|&d| scenario.is_revoked(d)).count();
    Report {
        sync_peak_ratio: peak(baseline) / mean,
        recovery_peak_ratio: peak(window(scenario.outage.1, scenario.outage.1 + 30)) / mean,
        outage_requests_per_device: outage_requests as f64 / scenario.devices as f64,
        outage_coverage: outage_covered as f64 / outage_calls.max(1) as f64,
        retry_after_violations: server.violations,
        revoked_requests_per_device: revoked_in_window as f64 / revoked_devices.max(1) as f64,
        calls_without_token,
        per_minute,
    }
}

/// The simulation's own random numbers (boot times, seeds).
pub struct SplitMix(pub u64);

impl SplitMix {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}
