//! 10,000 devices, 24 simulated hours, one token server with an outage, a
//! rate-limiting episode and a revocation: how many token requests per
//! minute, and did the devices keep a valid token?
//!
//! `cargo run --release --example fleet_sim`
//!
//! Every device runs cctoken's real `TokenCache` (default `Policy`) on a
//! virtual clock; the naive comparison refreshes 60 s before expiry, with no
//! jitter and no failure gate.
//!
//! A second table: agents that restart, crash-loop, run as a script or sleep,
//! without and with a state file per device (the real `StateFile`:
//! `cargo run --release --features state-file --example fleet_sim`).

#[allow(dead_code)] // the tests check more than the example prints
mod restarts;
mod sim;

use std::time::Instant;

use restarts::{Clock, Life, Outcome, REQUEST_RATIO_GOAL, REVOKED_PER_HOUR_GOAL, Sizes};
use sim::{Kind, Report, Scenario};

/// The fleets of the second table: each device's agent is simulated apart,
/// so the per-device figures need no 10,000; a start with a state file
/// reads it (and computes its key), so the crash-looping and the script's
/// fleets are smaller.
const SIZES: Sizes = Sizes { restarting: 300, revoked: 100, rate_limited: 300, script: 40, sleeping: 1_000 };

fn main() {
    let scenario = Scenario::full();
    let started = Instant::now();
    let ours = sim::run(&scenario, Kind::Ours);
    let naive = sim::run(&scenario, Kind::Naive);
    let aligned = Scenario::aligned_with_naive();
    let ours_aligned = sim::run(&aligned, Kind::Ours);
    let naive_aligned = sim::run(&aligned, Kind::Naive);
    let elapsed = started.elapsed();

    println!(
        "{} devices, {} h, 1 h tokens, one API call per device per minute; token server down at \
         6:00-6:10, 429 Retry-After 120 s at 12:00-12:15, 10% of credentials rejected at 18:00-18:30",
        scenario.devices,
        scenario.minutes / 60
    );
    println!();
    println!("token requests per minute, by hour (ours | naive): min / mean / max");
    for hour in 0..scenario.minutes / 60 {
        let (a, b) = (hour_stats(&ours, hour), hour_stats(&naive, hour));
        println!("  {hour:02}h  {:>5} {:>7.1} {:>6}  | {:>5} {:>7.1} {:>6}", a.0, a.1, a.2, b.0, b.1, b.2);
    }
    println!();
    println!(
        "incidents as specified (outage 6:00), and moved onto the naive fleet's refresh minute ({}:{:02}):",
        aligned.outage.0 / 60,
        aligned.outage.0 % 60
    );
    println!("{:<36} {:>10} {:>10} {:>14} {:>14}", "metric", "ours", "naive", "ours, moved", "naive, moved");
    let rows: [Row; 9] = [
        ("sync_peak_ratio (goal <= 2.0)", |r| format!("{:.2}", r.sync_peak_ratio)),
        ("recovery_peak_ratio (goal <= 3.0)", |r| format!("{:.2}", r.recovery_peak_ratio)),
        ("outage_requests_per_device (<= 5)", |r| format!("{:.2}", r.outage_requests_per_device)),
        ("outage_coverage (goal >= 0.99)", |r| format!("{:.4}", r.outage_coverage)),
        ("retry_after_violations (goal 0)", |r| r.retry_after_violations.to_string()),
        ("revoked_requests_per_device (<= 3)", |r| format!("{:.2}", r.revoked_requests_per_device)),
        ("busiest minute after boot", |r| r.busiest_minute().to_string()),
        ("token requests in 24 h", |r| r.total_requests().to_string()),
        ("API calls without a valid token", |r| r.calls_without_token.to_string()),
    ];
    for (name, value) in rows {
        let values = [&ours, &naive, &ours_aligned, &naive_aligned].map(value);
        println!("{name:<36} {:>10} {:>10} {:>14} {:>14}", values[0], values[1], values[2], values[3]);
    }
    println!(
        "(naive: every device refreshes in the same minute, one minute earlier each hour; as specified, \
         those minutes miss all three incidents)"
    );
    println!();
    let missed: Vec<&str> = [&ours, &ours_aligned]
        .iter()
        .flat_map(|r| r.goals())
        .filter(|(_, met)| !met)
        .map(|(goal, _)| goal)
        .collect();
    if missed.is_empty() {
        println!("all goals met in both scenarios; simulated four runs in {:.2} s", elapsed.as_secs_f64());
    } else {
        println!(
            "goals missed: {}; simulated four runs in {:.2} s",
            missed.join(", "),
            elapsed.as_secs_f64()
        );
    }
    println!();
    let started = Instant::now();
    let figures = Figures::run(SIZES);
    print_restarts(&figures);
    let goals = figures.goals();
    let missed: Vec<&str> = goals.iter().filter(|(_, met)| !met).map(|(goal, _)| goal.as_str()).collect();
    let took = started.elapsed().as_secs_f64();
    let met = format!("{} of {} goals of this table met", goals.len() - missed.len(), goals.len());
    match missed.is_empty() {
        true => println!("{met}; simulated it in {took:.2} s"),
        false => println!("{met}, missed: {}; simulated it in {took:.2} s", missed.join(", ")),
    }
    println!("{} {}", ours.summary_line(), figures.summary_line());
}

/// The second table: each scenario without and with the state file, and the
/// sleeping units on both clocks.
fn print_restarts(f: &Figures) {
    println!(
        "agents that restart, crash-loop, run as a script, sleep; each device without and with a state file:"
    );
    let row =
        |label: &str, devices: &str, a: &str, b: &str| println!("{label:<70} {devices:>7} {a:>11} {b:>10}");
    let pair = |label: &str, pair: &Pair, figure: &dyn Fn(&Outcome) -> String| {
        let (without, with) = pair.both(figure);
        let with = with.unwrap_or_else(|| "n/a".to_owned());
        row(label, &pair.without.devices.to_string(), &without, &with);
    };
    let ratio = |o: &Outcome| format!("{:.2}", f.ratio(o));
    let per_hour = |o: &Outcome| format!("{:.2}", o.requests_per_device_hour());
    let max_per_hour = |o: &Outcome| o.max_requests_in_a_device_hour.to_string();
    let violations = |o: &Outcome| o.retry_after_violations.to_string();
    let answers_429 = |o: &Outcome| format!("{:.2}", o.rate_limited as f64 / o.devices as f64);
    row("figure (goal, judged with the state file)", "devices", "no state", "state file");
    pair("restart every 5 min for 24 h: requests / daemon's (<= 1.1)", &f.restarting, &ratio);
    pair("revoked, crash-loop every 10 s for 6 h: requests/hour (<= 5)", &f.revoked, &per_hour);
    pair("  the most in one device-hour", &f.revoked, &max_per_hour);
    pair("crash-loop every 10 s, 15 min of 429: requests in Retry-After (0)", &f.rate_limited, &violations);
    pair("  429 answers per device", &f.rate_limited, &answers_429);
    pair("fetch_token --cache every 30 s for 24 h: requests / daemon's (<= 1.1)", &f.script, &ratio);
    row("", "devices", "std Instant", "cctoken");
    let (instant, ours) = (&f.sleep_instant, &f.sleep_cctoken);
    let expired = [instant, ours].map(|o| o.expired_calls.to_string());
    row(
        "sleep 2 h every 6 h for 24 h: API calls with an expired token (0)",
        &ours.devices.to_string(),
        &expired[0],
        &expired[1],
    );
    println!(
        "(requests / daemon's: token requests per device and day over those of a daemon that never \
         restarts, {:.2} with {} devices)",
        f.daemon.requests_per_device_per_day(),
        f.daemon.devices
    );
    if f.restarting.with.is_none() {
        println!("(with a state file: --features state-file, on Linux or Android)");
    }
}

/// A scenario's outcome without the state file, and with it (`None` in a
/// build without the `state-file` feature, or where it does nothing).
#[derive(Debug, Clone)]
struct Pair {
    without: Outcome,
    with: Option<Outcome>,
}

impl Pair {
    fn run(life: Life) -> Pair {
        let without = restarts::run(&life);
        #[cfg(all(feature = "state-file", any(target_os = "linux", target_os = "android")))]
        let with = Some(restarts::run(&life.with_state_file()));
        #[cfg(not(all(feature = "state-file", any(target_os = "linux", target_os = "android"))))]
        let with = None;
        Pair { without, with }
    }

    /// `figure` of both outcomes.
    fn both<T>(&self, figure: impl Fn(&Outcome) -> T) -> (T, Option<T>) {
        (figure(&self.without), self.with.as_ref().map(figure))
    }
}

/// Every scenario of `restarts`, for the second table.
#[derive(Debug, Clone)]
struct Figures {
    /// The daemon that never restarts: the baseline of the ratios.
    daemon: Outcome,
    restarting: Pair,
    revoked: Pair,
    rate_limited: Pair,
    script: Pair,
    sleep_cctoken: Outcome,
    sleep_instant: Outcome,
}

impl Figures {
    fn run(sizes: Sizes) -> Figures {
        Figures {
            daemon: restarts::run(&Life::daemon(sizes.restarting)),
            restarting: Pair::run(Life::restarting(sizes.restarting)),
            revoked: Pair::run(Life::revoked_crash_loop(sizes.revoked)),
            rate_limited: Pair::run(Life::rate_limited_crash_loop(sizes.rate_limited)),
            script: Pair::run(Life::script(sizes.script)),
            sleep_cctoken: restarts::run(&Life::sleeping(sizes.sleeping, Clock::Cctoken)),
            sleep_instant: restarts::run(&Life::sleeping(sizes.sleeping, Clock::Instant)),
        }
    }

    /// Token requests per device and day of `outcome` over the daemon's.
    fn ratio(&self, outcome: &Outcome) -> f64 {
        outcome.requests_per_device_per_day() / self.daemon.requests_per_device_per_day()
    }

    /// State file problems over every run with one.
    fn state_errors(&self) -> Option<u64> {
        let pairs = [&self.restarting, &self.revoked, &self.rate_limited, &self.script];
        pairs.iter().map(|p| p.with.as_ref().map(|o| o.state_errors)).sum()
    }

    /// The figures on one line of `name=value` pairs, fixed names and
    /// precision; the bare names are with the state file, `_no_state` without:
    /// - `restart_request_ratio`: token requests per device and day of a
    ///   daemon restarted every 5 minutes, over those of one never restarted;
    /// - `revoked_crashloop_requests_per_hour` (mean), `…_max` (the most in
    ///   one device-hour): token requests of a revoked device whose daemon
    ///   crash-loops every 10 s;
    /// - `retry_after_crashloop_violations`: token requests sent while a
    ///   `Retry-After` the device had received was in force, daemons
    ///   crash-looping through 15 minutes of 429;
    /// - `script_request_ratio`: as `restart_request_ratio`, for
    ///   `fetch_token --cache` run every 30 s;
    /// - `sleep_expired_calls`: API calls sent with an expired token by units
    ///   that sleep 2 h every 6 h, on cctoken's clock; `…_instant`: on std's `Instant`;
    /// - `state_file_errors`: problems with the state files, over all runs.
    ///
    /// The pairs with the state file are left out of a build without it.
    fn summary_line(&self) -> String {
        let mut pairs = Vec::new();
        let mut push = |name: &str, (without, with): (String, Option<String>)| {
            if let Some(with) = with {
                pairs.push(format!("{name}={with}"));
            }
            pairs.push(format!("{name}_no_state={without}"));
        };
        push("restart_request_ratio", self.restarting.both(|o| format!("{:.2}", self.ratio(o))));
        push(
            "revoked_crashloop_requests_per_hour",
            self.revoked.both(|o| format!("{:.2}", o.requests_per_device_hour())),
        );
        push(
            "revoked_crashloop_requests_per_hour_max",
            self.revoked.both(|o| o.max_requests_in_a_device_hour.to_string()),
        );
        push(
            "retry_after_crashloop_violations",
            self.rate_limited.both(|o| o.retry_after_violations.to_string()),
        );
        push("script_request_ratio", self.script.both(|o| format!("{:.2}", self.ratio(o))));
        pairs.push(format!("sleep_expired_calls={}", self.sleep_cctoken.expired_calls));
        pairs.push(format!("sleep_expired_calls_instant={}", self.sleep_instant.expired_calls));
        if let Some(errors) = self.state_errors() {
            pairs.push(format!("state_file_errors={errors}"));
        }
        pairs.join(" ")
    }

    /// Each goal with whether it is met: with the state file (none without
    /// it), and the sleep's on cctoken's clock.
    fn goals(&self) -> Vec<(String, bool)> {
        let mut goals = vec![("sleep_expired_calls = 0".to_owned(), self.sleep_cctoken.expired_calls == 0)];
        if let (Some(restarting), Some(revoked), Some(limited), Some(script)) =
            (&self.restarting.with, &self.revoked.with, &self.rate_limited.with, &self.script.with)
        {
            goals.extend([
                (
                    format!("restart_request_ratio <= {REQUEST_RATIO_GOAL}"),
                    self.ratio(restarting) <= REQUEST_RATIO_GOAL,
                ),
                (
                    format!("revoked_crashloop_requests_per_hour <= {REVOKED_PER_HOUR_GOAL}"),
                    revoked.requests_per_device_hour() <= REVOKED_PER_HOUR_GOAL,
                ),
                ("retry_after_crashloop_violations = 0".to_owned(), limited.retry_after_violations == 0),
                (
                    format!("script_request_ratio <= {REQUEST_RATIO_GOAL}"),
                    self.ratio(script) <= REQUEST_RATIO_GOAL,
                ),
                ("state_file_errors = 0".to_owned(), self.state_errors() == Some(0)),
            ]);
        }
        goals
    }
}

/// A row of the comparison table: its name and how to read it off a report.
type Row = (&'static str, fn(&Report) -> String);

/// Min, mean and max requests per minute within one hour.
fn hour_stats(report: &Report, hour: u64) -> (u32, f64, u32) {
    let minutes = &report.per_minute[(hour * 60) as usize..((hour + 1) * 60) as usize];
    let sum: u32 = minutes.iter().sum();
    let min = minutes.iter().copied().min().unwrap_or(0);
    let max = minutes.iter().copied().max().unwrap_or(0);
    (min, f64::from(sum) / minutes.len() as f64, max)
}
