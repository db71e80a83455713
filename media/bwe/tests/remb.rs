//! REMB: without transport-cc the estimate is the receiver's REMB; with it, a lower REMB caps
//! the delay-based estimate, and no probing happens while it does.

mod support;

use support::{Link, Sim};
use tutti_bwe::{BandwidthEstimator, Limit, MAX_BPS, MIN_BPS};

#[test]
fn remb_only_estimate_follows_remb() {
    let mut bwe = BandwidthEstimator::new(300_000);
    assert_eq!(bwe.estimate_bps(), 300_000);
    assert_eq!(bwe.limited_by(), Limit::Initial);
    for remb in [1_200_000, 500_000, 2_000_000] {
        bwe.on_remb(remb);
        assert_eq!(bwe.estimate_bps(), remb);
        assert_eq!(bwe.limited_by(), Limit::Remb);
    }
    bwe.on_remb(0);
    assert_eq!(bwe.estimate_bps(), MIN_BPS);
    bwe.on_remb(u64::MAX);
    assert_eq!(bwe.estimate_bps(), MAX_BPS);
}

#[test]
fn lower_remb_caps_the_delay_based_estimate() {
    let link = Link {
        capacity_bps: 2_500_000,
        queue_limit_bytes: 64_000,
        delay_us: 25_000,
        loss: 0.0,
        burst_bytes: 0,
    };
    let mut sim = Sim::new(300_000, 5_000_000, link, 5);
    sim.run_until(10_000_000);
    let delay_based = sim.bwe.estimate_bps();
    assert!(delay_based >= 2_000_000, "estimate {delay_based} bit/s");
    assert_eq!(sim.bwe.limited_by(), Limit::Delay);

    // A REMB above the delay-based estimate changes nothing.
    sim.bwe.on_remb(4_000_000);
    assert_eq!(sim.bwe.estimate_bps(), delay_based);
    assert_eq!(sim.bwe.limited_by(), Limit::Delay);

    sim.bwe.on_remb(1_000_000);
    assert_eq!(sim.bwe.estimate_bps(), 1_000_000);
    let probes = sim.probes.len();
    sim.run_until(20_000_000);
    let capped: Vec<_> = sim
        .samples
        .iter()
        .filter(|s| s.at_us > 10_000_000)
        .copied()
        .collect();
    assert!(capped
        .iter()
        .all(|s| s.estimate_bps == 1_000_000 && s.limit == Limit::Remb));
    assert_eq!(
        sim.probes.len(),
        probes,
        "probed while REMB capped the estimate"
    );
    assert!(support::p95_queue_delay_us(&capped) < 50_000);

    // Lifted again: the delay-based estimate takes over, and grows.
    sim.bwe.on_remb(10_000_000);
    assert_eq!(sim.bwe.limited_by(), Limit::Delay);
    let lifted = sim.bwe.estimate_bps();
    assert!(lifted > 1_000_000, "estimate {lifted} bit/s");
    sim.run_until(30_000_000);
    assert!(sim.bwe.estimate_bps() >= 2_000_000);
}
