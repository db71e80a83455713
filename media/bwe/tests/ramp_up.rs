//! Starting at 300 kbit/s on a 2.5 Mbit/s path, probing and delay-based control reach 80% of
//! the capacity within 10 s and then stay below 110% of it, with the queue short.

mod support;

use support::{Link, Sim};
use tutti_bwe::Limit;

const CAPACITY_BPS: u64 = 2_500_000;

#[test]
fn reaches_capacity_without_overshooting() {
    let link = Link {
        capacity_bps: CAPACITY_BPS,
        queue_limit_bytes: 64_000,
        delay_us: 25_000,
        loss: 0.0,
        burst_bytes: 0,
    };
    let mut sim = Sim::new(300_000, 5_000_000, link, 1);
    sim.run_until(30_000_000);

    let converged = sim
        .samples
        .iter()
        .find(|s| s.estimate_bps >= CAPACITY_BPS * 8 / 10)
        .expect("never reached 80% of the capacity");
    assert!(
        converged.at_us <= 10_000_000,
        "80% of the capacity only after {} ms",
        converged.at_us / 1000
    );
    let after: Vec<_> = sim
        .samples
        .iter()
        .filter(|s| s.at_us > converged.at_us)
        .copied()
        .collect();
    let highest = after.iter().map(|s| s.estimate_bps).max().unwrap_or(0);
    let lowest = after.iter().map(|s| s.estimate_bps).min().unwrap_or(0);
    assert!(
        highest <= CAPACITY_BPS * 11 / 10,
        "estimate up to {highest} bit/s"
    );
    assert!(
        lowest >= CAPACITY_BPS * 7 / 10,
        "estimate down to {lowest} bit/s"
    );
    assert!(after.iter().all(|s| s.limit == Limit::Delay));
    let p95 = support::p95_queue_delay_us(&after);
    assert!(p95 < 100_000, "p95 queue delay {p95} µs");
    // The initial probes, one further up, then one every 5 s or so for the allocator.
    assert!(sim.probes.len() >= 4, "{:?}", sim.probes);
    let acknowledged = sim.bwe.acknowledged_bps().unwrap_or(0);
    assert!(
        (CAPACITY_BPS * 7 / 10..=CAPACITY_BPS).contains(&acknowledged),
        "acknowledged {acknowledged} bit/s"
    );
}
