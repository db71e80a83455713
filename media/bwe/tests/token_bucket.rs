//! A bottleneck shaped with a token bucket (as `tc … tbf rate 600kbit burst 4kb latency 200ms`)
//! and a sender whose media comes in layers (150 kbit/s, 500 kbit/s, 1.5 Mbit/s): below the
//! capacity the bucket fills, and a short probe cluster passes it at the rate it was sent, as
//! if the link were free: such a probe took the estimate to 1.9 Mbit/s, the top layer went, the
//! link dropped and the estimate fell to 370 kbit/s, every 5 s. Probes now carry at least 12 kB,
//! are measured on their second half, and one that filled the link sets the estimate to what it
//! measured (the queue it made is not a reason to cut further).

mod support;

use support::{Link, Sim};
use tutti_bwe::Limit;

const CAPACITY_BPS: u64 = 600_000;

#[test]
fn a_token_bucket_does_not_make_probes_overestimate_the_link() {
    let link = Link {
        capacity_bps: CAPACITY_BPS,
        queue_limit_bytes: CAPACITY_BPS / 8 / 5 + 4_096,
        delay_us: 20_000,
        loss: 0.0,
        burst_bytes: 4_096,
    };
    let mut sim = Sim::new(2_500_000, 1_600_000, link, 3);
    sim.layers = vec![150_000, 500_000, 1_500_000];
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
    let above = late
        .iter()
        .filter(|&&bps| bps > CAPACITY_BPS * 5 / 4)
        .count();
    late.sort_unstable();
    let median = late[late.len() / 2];
    println!(
        "{} probes; p95 queue delay {p95} µs; limited by loss in {by_loss} samples; median {median} bit/s; above 1.25 x capacity in {above} of {} samples, at the \
         top layer's rate in {top}",
        sim.probes.len(),
        late.len()
    );
    assert_eq!(top, 0, "the estimate reached the top layer's rate");
    assert!(
        above * 20 <= late.len(),
        "above 1.25 x capacity in {above} of {} samples",
        late.len()
    );
    assert!(
        (CAPACITY_BPS * 8 / 10..=CAPACITY_BPS * 5 / 4).contains(&median),
        "median estimate {median} bit/s"
    );
    // What overshoot there is drains without loss limiting the estimate.
    assert_eq!(by_loss, 0, "limited by loss in {by_loss} samples");
    assert!(p95 <= 100_000, "p95 queue delay {p95} µs");
}
