//! Random loss on an uncongested path: at 10% the estimate is limited by loss and backs off,
//! and no probe goes out while it is; at 1% loss does not limit it. A burst of loss is answered
//! by one decrease, and loss limits no more two seconds after it ended.

mod support;

use support::{Link, Sim};
use tutti_bwe::Limit;

const CAPACITY_BPS: u64 = 10_000_000;

fn lossy_link(loss: f64) -> Link {
    Link {
        capacity_bps: CAPACITY_BPS,
        queue_limit_bytes: 250_000,
        delay_us: 25_000,
        loss,
        burst_bytes: 0,
    }
}

#[test]
fn ten_percent_loss_limits_and_backs_off_without_probing() {
    let mut sim = Sim::new(1_000_000, 5_000_000, lossy_link(0.10), 3);
    sim.run_until(20_000_000);

    let peak = sim
        .samples
        .iter()
        .map(|s| s.estimate_bps)
        .max()
        .unwrap_or(0);
    let end = sim.bwe.estimate_bps();
    assert!(end < peak / 2, "from {peak} bit/s only down to {end}");
    assert_eq!(sim.bwe.limited_by(), Limit::Loss);
    let last: Vec<_> = sim
        .samples
        .iter()
        .filter(|s| s.at_us >= 10_000_000)
        .collect();
    let loss_limited = last.iter().filter(|s| s.limit == Limit::Loss).count();
    assert_eq!(loss_limited, last.len(), "limited by loss in the last 10 s");
    // Only the initial probes, before any feedback; none while limited by loss although the
    // allocator wants more than the estimate.
    assert!(
        sim.probes.iter().all(|&(_, limit)| limit != Limit::Loss),
        "{:?}",
        sim.probes
    );
    assert!(
        sim.probes.iter().all(|&(at_us, _)| at_us == 0),
        "{:?}",
        sim.probes
    );
    let p95 = support::p95_queue_delay_us(&sim.samples[sim.samples.len() / 2..]);
    assert!(p95 < 100_000, "p95 queue delay {p95} µs");
}

#[test]
fn one_percent_loss_does_not_limit() {
    let mut sim = Sim::new(1_000_000, 20_000_000, lossy_link(0.01), 4);
    sim.run_until(20_000_000);

    let loss_limited = sim
        .samples
        .iter()
        .filter(|s| s.limit == Limit::Loss)
        .count();
    assert_eq!(loss_limited, 0, "limited by loss in {loss_limited} samples");
    let end = sim.bwe.estimate_bps();
    assert!(end >= CAPACITY_BPS * 8 / 10, "estimate {end} bit/s");
    assert!(!sim.probes.is_empty());
    let p95 = support::p95_queue_delay_us(&sim.samples[sim.samples.len() / 2..]);
    assert!(p95 < 100_000, "p95 queue delay {p95} µs");
}

#[test]
fn a_burst_of_loss_is_answered_by_one_decrease() {
    let mut sim = Sim::new(1_000_000, 2_000_000, lossy_link(0.0), 5);
    sim.run_until(5_000_000);
    let before = sim.bwe.estimate_bps();
    // 150 ms of everything lost (a link down a moment), then nothing: 15% of the last second's
    // packets, counted once.
    sim.link.loss = 1.0;
    sim.run_until(5_150_000);
    sim.link.loss = 0.0;
    sim.run_until(6_000_000);
    let burst: Vec<_> = sim
        .samples
        .iter()
        .filter(|s| s.at_us >= 5_000_000 && s.at_us < 6_000_000)
        .collect();
    let decreases = burst
        .windows(2)
        .filter(|w| w[1].limit == Limit::Loss && w[1].estimate_bps < w[0].estimate_bps)
        .count();
    assert_eq!(decreases, 1, "one decrease for one burst");
    let low = burst.iter().map(|s| s.estimate_bps).min().unwrap();
    assert!(
        low < before,
        "the burst cut the estimate ({before} -> {low})"
    );
}

#[test]
fn loss_stops_limiting_two_seconds_after_it_ended() {
    let mut sim = Sim::new(1_000_000, 2_000_000, lossy_link(0.0), 6);
    sim.run_until(5_000_000);
    let before = sim.bwe.estimate_bps();
    // A second with 60% lost: the estimate falls to a fraction of what it was.
    sim.link.loss = 0.6;
    sim.run_until(6_000_000);
    sim.link.loss = 0.0;
    sim.run_until(6_200_000);
    let low = sim.bwe.estimate_bps();
    assert_eq!(sim.bwe.limited_by(), Limit::Loss);
    assert!(low < before * 6 / 10, "{before} -> {low}");
    // 8% a second from there would take ten seconds and more; after 2 s without loss, loss
    // limits no more and the other parts decide.
    sim.run_until(8_700_000);
    assert_ne!(sim.bwe.limited_by(), Limit::Loss);
}
