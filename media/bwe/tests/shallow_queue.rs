//! A bottleneck that drops rather than queues (a shaped link buffering about one packet): its
//! losses limit the estimate, and when they stop limiting, the estimate resumes from what the
//! path delivered. The delay-based part sees no delay trend on such a link and may have grown
//! meanwhile; resuming from it would overshoot the link, lose again, and swing on.

mod support;

use support::{Link, Sim};
use tutti_bwe::Limit;

const CAPACITY_BPS: u64 = 400_000;

#[test]
fn a_link_that_drops_rather_than_queues_is_not_overshot_again_and_again() {
    let link = Link {
        capacity_bps: CAPACITY_BPS,
        queue_limit_bytes: 1_500,
        delay_us: 20_000,
        loss: 0.0,
        burst_bytes: 0,
    };
    let mut sim = Sim::new(2_500_000, 2_000_000, link, 7);
    sim.run_until(40_000_000);
    // The premise: the link drops (loss limits the estimate) rather than queues.
    assert!(
        sim.samples.iter().any(|s| s.limit == Limit::Loss),
        "loss never limited the estimate"
    );
    let p95 = support::p95_queue_delay_us(&sim.samples);
    assert!(p95 <= 40_000, "p95 queue delay {p95} µs");
    let mut late: Vec<u64> = sim
        .samples
        .iter()
        .filter(|s| s.at_us >= 10_000_000)
        .map(|s| s.estimate_bps)
        .collect();
    let above = late
        .iter()
        .filter(|&&bps| bps > CAPACITY_BPS * 5 / 4)
        .count();
    late.sort_unstable();
    let median = late[late.len() / 2];
    println!(
        "median {median} bit/s, above 1.25 x capacity in {above} of {} samples",
        late.len()
    );
    assert!(
        above * 20 <= late.len(),
        "above 1.25 x capacity in {above} of {} samples",
        late.len()
    );
    assert!(
        (CAPACITY_BPS * 6 / 10..=CAPACITY_BPS * 11 / 10).contains(&median),
        "median estimate {median} bit/s"
    );
}
