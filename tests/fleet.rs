//! The fleet simulation as a test: the real `TokenCache` on a virtual clock,
//! thousands of devices, outage, rate limiting and revocation; every goal of
//! the policy asserted. `cargo run --release --example fleet_sim` runs the
//! full 10,000-device version and prints the comparison table.
//!
//! Then agents that restart, crash-loop, run as a script or sleep, without a
//! state file and (`--features state-file`) with the real one: what the
//! state file fixes, and the goals it is held to.

#[allow(dead_code)] // the example prints more than the test checks
#[path = "../examples/fleet_sim/sim.rs"]
mod sim;

#[allow(dead_code)] // the example prints more than the test checks
#[path = "../examples/fleet_sim/restarts.rs"]
mod restarts;

use restarts::{Clock, Life, Outcome, Sizes};
use sim::{Kind, Scenario};

#[test]
fn our_policy_meets_every_fleet_goal() {
    // The example's full scenario, and the same with other random draws.
    for seed in [Scenario::full().seed, 7] {
        let report = sim::run(&Scenario { seed, ..Scenario::full() }, Kind::Ours);
        for (goal, met) in report.goals() {
            assert!(met, "seed {seed}: {goal} missed: {}", report.summary_line());
        }
        // Revoked devices still try again once the cooldown is over.
        assert!(report.revoked_requests_per_device >= 1.0, "{}", report.summary_line());
    }
}

#[test]
fn the_goals_hold_when_incidents_hit_the_naive_refresh_minute() {
    let scenario = Scenario::aligned_with_naive();
    let ours = sim::run(&scenario, Kind::Ours);
    for (goal, met) in ours.goals() {
        assert!(met, "{goal} missed: {}", ours.summary_line());
    }
    // The naive policy, by contrast, stampedes and ignores Retry-After.
    let naive = sim::run(&scenario, Kind::Naive);
    assert!(naive.retry_after_violations > 0 && naive.outage_coverage < 0.5, "{}", naive.summary_line());
}

#[test]
fn a_smaller_fleet_meets_the_goals_too() {
    let scenario = Scenario { devices: 2_000, seed: 11, ..Scenario::full() };
    let report = sim::run(&scenario, Kind::Ours);
    for (goal, met) in report.goals() {
        assert!(met, "{goal} missed: {}", report.summary_line());
    }
}

#[test]
fn the_naive_policy_refreshes_in_lockstep() {
    let scenario = Scenario { devices: 2_000, minutes: 3 * 60, ..Scenario::full() };
    let report = sim::run(&scenario, Kind::Naive);
    // Every device refreshes in the same minute: the peak is the whole fleet.
    assert!(report.per_minute[1..].contains(&2_000), "{:?}", &report.per_minute[50..70]);
    assert!(report.sync_peak_ratio > 10.0, "{}", report.summary_line());
}

/// The fleets of the tests below. Each device is simulated apart, so a few
/// dozen give steady per-device figures; with a state file every start reads
/// it and computes its key (SHA-256, slow in a debug build), hence the
/// smaller crash-looping and script fleets.
const SIZES: Sizes = Sizes { restarting: 40, revoked: 10, rate_limited: 40, script: 8, sleeping: 100 };

/// Token requests per device and day of `outcome`, over those of a daemon
/// of as many devices that never restarts.
fn ratio_to_daemon(outcome: &Outcome) -> f64 {
    let daemon = restarts::run(&Life::daemon(outcome.devices));
    outcome.requests_per_device_per_day() / daemon.requests_per_device_per_day()
}

/// Without a state file, each start knows nothing of the last: it requests a
/// token (the first API call finds none), and a life too short to reach a
/// refresh requests nothing more.
fn one_request_per_start(outcome: &Outcome, starts_per_device: u64) {
    assert_eq!(outcome.starts, starts_per_device * outcome.devices as u64, "{outcome:?}");
    assert_eq!(outcome.requests, outcome.starts, "{outcome:?}");
}

#[test]
fn without_a_state_file_restarts_and_a_script_request_a_token_each_time() {
    // Restarted every 5 minutes: 288 starts a day, against some 34 requests of a daemon.
    let restarting = restarts::run(&Life::restarting(SIZES.restarting));
    one_request_per_start(&restarting, 288);
    assert!(ratio_to_daemon(&restarting) > 5.0, "{}", ratio_to_daemon(&restarting));
    // `fetch_token --cache` every 30 s without the cache: 2,880 a day.
    let script = restarts::run(&Life::script(SIZES.script));
    one_request_per_start(&script, 2_880);
    assert!(ratio_to_daemon(&script) > 50.0, "{}", ratio_to_daemon(&script));
}

#[test]
fn without_a_state_file_crash_loops_forget_rejections_and_retry_after() {
    // A revoked device crash-looping every 10 s asks 360 times an hour.
    let revoked = restarts::run(&Life::revoked_crash_loop(SIZES.revoked));
    one_request_per_start(&revoked, 6 * 360);
    assert!(revoked.requests_per_device_hour() > 100.0, "{}", revoked.requests_per_device_hour());
    // Each start asks again within the Retry-After the last one received.
    let limited = restarts::run(&Life::rate_limited_crash_loop(SIZES.rate_limited));
    one_request_per_start(&limited, 180);
    assert!(limited.retry_after_violations > 0, "{limited:?}");
}

#[test]
fn units_that_sleep_send_no_expired_token_on_cctokens_clock() {
    let ours = restarts::run(&Life::sleeping(SIZES.sleeping, Clock::Cctoken));
    assert_eq!(ours.expired_calls, 0, "{ours:?}");
    assert_eq!(ours.calls_without_token, 0, "{ours:?}");
    // 24 h of calls once a minute, less 3 sleeps of 2 h.
    assert_eq!(ours.api_calls, 18 * 60 * SIZES.sleeping as u64, "{ours:?}");
    // The control: on std's Instant, which stops during suspend, a token held
    // across a sleep looks as fresh on waking as when the unit fell asleep,
    // and is sent expired after each of the 3 wakes, by every unit.
    let control = restarts::run(&Life::sleeping(SIZES.sleeping, Clock::Instant));
    assert!(control.expired_calls >= 3 * SIZES.sleeping as u64, "{control:?}");
}

/// The same agents with the state file: what it fixes, and its goals.
#[cfg(all(feature = "state-file", any(target_os = "linux", target_os = "android")))]
mod with_state_file {
    use super::*;
    use restarts::{REQUEST_RATIO_GOAL, REVOKED_PER_HOUR_GOAL};

    /// A run with the state file, which must have been read and written without a problem.
    fn run(life: Life) -> Outcome {
        let outcome = restarts::run(&life.with_state_file());
        assert_eq!(outcome.state_errors, 0, "{outcome:?}");
        outcome
    }

    /// A restarted agent serves the saved token, never calls without a valid
    /// one, and refreshes it when the daemon that never restarts would: at
    /// most a tenth more requests than that daemon.
    fn serves_the_saved_token(outcome: &Outcome) {
        assert_eq!((outcome.calls_without_token, outcome.expired_calls), (0, 0), "{outcome:?}");
        let ratio = ratio_to_daemon(outcome);
        assert!(ratio <= REQUEST_RATIO_GOAL, "{ratio}: {outcome:?}");
    }

    #[test]
    fn a_daemon_restarted_every_5_minutes_requests_as_one_that_never_restarts() {
        serves_the_saved_token(&run(Life::restarting(SIZES.restarting)));
    }

    #[test]
    fn a_script_run_every_30_s_requests_as_a_daemon() {
        serves_the_saved_token(&run(Life::script(SIZES.script)));
    }

    #[test]
    fn a_revoked_device_crash_looping_keeps_its_cooldown() {
        let revoked = run(Life::revoked_crash_loop(SIZES.revoked));
        // One request per cooldown (12 to 15 minutes), 360 starts an hour.
        let per_hour = revoked.requests_per_device_hour();
        assert!((3.9..=REVOKED_PER_HOUR_GOAL).contains(&per_hour), "{per_hour}: {revoked:?}");
        // Six requests would need five cooldowns in an hour: never, not in
        // any hour of any device.
        assert!(revoked.max_requests_in_a_device_hour as f64 <= REVOKED_PER_HOUR_GOAL, "{revoked:?}");
    }

    #[test]
    fn a_crash_loop_obeys_every_retry_after() {
        let limited = run(Life::rate_limited_crash_loop(SIZES.rate_limited));
        assert_eq!(limited.retry_after_violations, 0, "{limited:?}");
        // Each device asked again once each wait was over, and was sent away again.
        assert!(limited.rate_limited >= 3 * limited.devices as u64, "{limited:?}");
        // After the 429s, every device got a token.
        assert!(limited.requests > limited.rate_limited, "{limited:?}");
    }
}
