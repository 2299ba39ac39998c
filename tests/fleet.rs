//! The fleet simulation as a test: the real `TokenCache` on a virtual clock,
//! thousands of devices, outage, rate limiting and revocation; every goal of
//! the policy asserted. `cargo run --release --example fleet_sim` runs the
//! full 10,000-device version and prints the comparison table.

#[allow(dead_code)] // the example prints more than the test checks
#[path = "../examples/fleet_sim/sim.rs"]
mod sim;

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
