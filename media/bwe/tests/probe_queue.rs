//! A sender forwarding far less than the link carries (the layer above does not fit) probes
//! above the link every 5 s: the cluster's own queue shows as overuse before 80% of the cluster
//! arrived. That overuse once cut the estimate to 0.85 times what the receiver acknowledged,
//! the media's 100 kbit/s, and the cluster's result, arriving after, was dropped as a queue of
//! its own: here the estimate went between 123 and 350 kbit/s, median 183 kbit/s, on a 350
//! kbit/s link (bench/quality's step down to 500 kbit/s: from 415 to 125 kbit/s at every probe,
//! 0.276 of capacity, Bob 40 % of the time without video). Now a cluster on its way holds the
//! rate, and what it measured sets it: 333 kbit/s throughout.

mod support;

use support::{Link, Sim};
use tutti_bwe::Limit;

const CAPACITY_BPS: u64 = 350_000;

#[test]
fn a_probes_own_queue_does_not_cut_the_estimate_to_the_media_rate() {
    let link = Link {
        capacity_bps: CAPACITY_BPS,
        queue_limit_bytes: CAPACITY_BPS / 8 / 4,
        delay_us: 20_000,
        loss: 0.0,
        burst_bytes: 0,
    };
    let mut sim = Sim::new(400_000, 1_600_000, link, 5);
    sim.layers = vec![100_000, 480_000, 1_500_000];
    sim.run_until(40_000_000);
    let mut late: Vec<u64> = sim
        .samples
        .iter()
        .filter(|s| s.at_us >= 10_000_000)
        .map(|s| s.estimate_bps)
        .collect();
    late.sort_unstable();
    let (lowest, median) = (late[0], late[late.len() / 2]);
    let p95 = support::p95_queue_delay_us(&sim.samples);
    println!(
        "{} probes; estimate {lowest}..{} bit/s, median {median}; p95 queue delay {p95} µs",
        sim.probes.len(),
        late[late.len() - 1]
    );
    assert!(sim.probes.len() >= 6, "{} probes", sim.probes.len());
    assert!(
        sim.samples
            .iter()
            .all(|s| s.at_us < 10_000_000 || s.limit == Limit::Delay),
        "limited by loss or the initial estimate after 10 s"
    );
    assert!(
        lowest >= CAPACITY_BPS * 6 / 10,
        "the estimate fell to {lowest} bit/s"
    );
    assert!(
        (CAPACITY_BPS * 8 / 10..=CAPACITY_BPS).contains(&median),
        "median {median} bit/s"
    );
}
