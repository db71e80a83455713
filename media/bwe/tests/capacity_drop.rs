//! The path's capacity drops from 2.5 Mbit/s to 800 kbit/s: the estimate follows below
//! 900 kbit/s within 2 s, and settles around the new capacity.

mod support;

use support::{Link, Sim};
use tutti_bwe::Limit;

const DROP_US: i64 = 10_000_000;

#[test]
fn follows_a_capacity_drop_within_two_seconds() {
    let link = Link {
        capacity_bps: 2_500_000,
        queue_limit_bytes: 64_000,
        delay_us: 25_000,
        loss: 0.0,
        burst_bytes: 0,
    };
    let mut sim = Sim::new(1_000_000, 5_000_000, link, 2);
    sim.run_until(DROP_US);
    let before = sim.bwe.estimate_bps();
    assert!(
        before >= 2_000_000,
        "estimate {before} bit/s before the drop"
    );

    sim.link.capacity_bps = 800_000;
    sim.run_until(DROP_US + 20_000_000);
    let below = sim
        .samples
        .iter()
        .find(|s| s.at_us > DROP_US && s.estimate_bps < 900_000)
        .expect("never below 900 kbit/s");
    assert!(
        below.at_us - DROP_US <= 2_000_000,
        "below 900 kbit/s only {} ms after the drop",
        (below.at_us - DROP_US) / 1000
    );
    // Settled: the last 10 s near the new capacity, the standing queue of the drop drained.
    let settled: Vec<_> = sim
        .samples
        .iter()
        .filter(|s| s.at_us > DROP_US + 10_000_000)
        .copied()
        .collect();
    let lowest = settled.iter().map(|s| s.estimate_bps).min().unwrap_or(0);
    let highest = settled.iter().map(|s| s.estimate_bps).max().unwrap_or(0);
    assert!(
        lowest >= 500_000 && highest <= 900_000,
        "estimate between {lowest} and {highest} bit/s"
    );
    assert!(settled.iter().all(|s| s.limit == Limit::Delay));
    let p95 = support::p95_queue_delay_us(&settled);
    assert!(p95 < 100_000, "p95 queue delay {p95} µs");
}
