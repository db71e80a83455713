//! A bottleneck shaped with a token bucket (as `tc … tbf rate 600kbit burst 4kb latency 200ms`)
//! and a sender whose media comes in layers (150 kbit/s, 500 kbit/s, 1.5 Mbit/s): below the
//! capacity the bucket fills, and a short probe cluster passes it at the rate it was sent, as
//! if the link were free: such a probe took the estimate to 1.9 Mbit/s, the top layer went, the
//! link dropped and the estimate fell to 370 kbit/s, every 5 s. Probes now carry at least 12 kB,
//! are measured on their tail, and one that filled the link sets the estimate to what it
//! measured (the queue it made is not a reason to cut further). The estimate then grew 8% a
//! second, up to 1.5 times what arrived (the 500 kbit/s layer: 760 kbit/s), with no delay to
//! stop it below the top layer, and the next probe set it back: a median of 695 kbit/s,
//! 570–750 kbit/s every 6 s. Now it grows no further than the probe measured.

mod support;

use support::{Link, Sim};
use tutti_bwe::Limit;

const CAPACITY_BPS: u64 = 600_000;

/// A receiver of three layers behind a 600 kbit/s token bucket of 4 kB (`tc tbf`'s burst) with
/// 200 ms of queue, starting at 2.5 Mbit/s.
fn behind_the_bucket(seed: u64) -> Sim {
    let link = Link {
        capacity_bps: CAPACITY_BPS,
        queue_limit_bytes: CAPACITY_BPS / 8 / 5 + 4_096,
        delay_us: 20_000,
        loss: 0.0,
        burst_bytes: 4_096,
    };
    let mut sim = Sim::new(2_500_000, 1_600_000, link, seed);
    sim.layers = vec![150_000, 500_000, 1_500_000];
    sim
}

#[test]
fn a_token_bucket_does_not_make_probes_overestimate_the_link() {
    let mut sim = behind_the_bucket(3);
    sim.run_until(60_000_000);
    let p95 = support::p95_queue_delay_us(&sim.samples);
    let by_loss = sim
        .samples
        .iter()
        .filter(|s| s.at_us >= 10_000_000 && s.limit == Limit::Loss)
        .count();
    let mut late: Vec<u64> = sim
        .samples
        .iter()
        .filter(|s| s.at_us >= 10_000_000)
        .map(|s| s.estimate_bps)
        .collect();
    let top = late.iter().filter(|&&bps| bps >= 1_500_000).count();
    let above = late.iter().filter(|&&bps| bps > CAPACITY_BPS).count();
    late.sort_unstable();
    let median = late[late.len() / 2];
    println!(
        "{} probes; p95 queue delay {p95} µs; limited by loss in {by_loss} samples; median {median} bit/s; above the capacity in {above} of {} samples, at the \
         top layer's rate in {top}",
        sim.probes.len(),
        late.len()
    );
    assert_eq!(top, 0, "the estimate reached the top layer's rate");
    assert_eq!(
        above,
        0,
        "above the capacity in {above} of {} samples",
        late.len()
    );
    assert!(
        (CAPACITY_BPS * 8 / 10..=CAPACITY_BPS).contains(&median),
        "median estimate {median} bit/s"
    );
    // Probes' queues drain without loss limiting the estimate.
    assert_eq!(by_loss, 0, "limited by loss in {by_loss} samples");
    assert!(p95 <= 100_000, "p95 queue delay {p95} µs");

    // The link's rate goes up: probes (every 5 s while more is wanted) find it, and the
    // estimate reaches what the sender wants within 15 s.
    sim.link.capacity_bps = 3_000_000;
    sim.link.queue_limit_bytes = 3_000_000 / 8 / 5 + 4_096;
    sim.run_until(75_000_000);
    let reached = sim
        .samples
        .iter()
        .find(|s| s.at_us >= 60_000_000 && s.estimate_bps >= 1_600_000)
        .map(|s| s.at_us - 60_000_000);
    println!("the link at 3 Mbit/s: the estimate at 1.6 Mbit/s after {reached:?} µs");
    assert!(reached.is_some(), "the estimate stayed below 1.6 Mbit/s");
}

#[test]
fn after_a_loss_cut_a_probe_through_the_bucket_does_not_lift_the_estimate_above_the_link() {
    let mut sim = behind_the_bucket(5);
    sim.run_until(20_000_000);
    // A spell of loss (another flow, a radio link) cuts the estimate well below the link's rate.
    sim.link.loss = 0.3;
    sim.run_until(21_500_000);
    sim.link.loss = 0.0;
    sim.run_until(50_000_000);
    let after: Vec<u64> = sim
        .samples
        .iter()
        .filter(|s| s.at_us >= 21_500_000)
        .map(|s| s.estimate_bps)
        .collect();
    let lowest = after.iter().copied().min().unwrap_or_default();
    let highest = after.iter().copied().max().unwrap_or_default();
    let above = after.iter().filter(|&&bps| bps > CAPACITY_BPS).count();
    println!(
        "after the loss: estimate {lowest}..{highest} bit/s, above the capacity in {above} of {} samples",
        after.len()
    );
    assert!(
        lowest < CAPACITY_BPS * 6 / 10,
        "the loss cut the estimate to {lowest} only"
    );
    assert_eq!(
        above,
        0,
        "above the capacity in {above} of {} samples (up to {highest})",
        after.len()
    );
}
