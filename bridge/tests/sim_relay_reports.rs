//! In memory: receiver reports on the relay hop. Each bridge reports on the relay what it
//! receives there (loss, jitter, the last sender report), as it reports a sender's uplink to
//! it, and reads the far bridge's reports of what it sends there; so each bridge's figures of
//! the relay are complete in both directions, and kept apart from its clients' hops.

mod sim;

use std::time::Duration;

use sim::cascade::Cascade;
use tutti_bridge::media::stats::{Counters, Histogram};
use tutti_sim::LinkConfig;

/// The hops of `ReportQuality` (`stats::DIRECTION_LABELS`) and its media.
const UPSTREAM: usize = 0;
const RELAY_IN: usize = 2;
const RELAY_OUT: usize = 3;
const AUDIO: usize = 0;
const VIDEO: usize = 1;

/// The mean of what `after` observed since `before`, and how many observations.
fn mean_since<const B: usize>(before: &Histogram<B>, after: &Histogram<B>) -> (f64, u64) {
    let count = after.count - before.count;
    ((after.sum - before.sum) / count.max(1) as f64, count)
}

#[test]
fn each_side_of_a_relay_reports_what_it_receives_on_it() {
    let mut cascade = Cascade::new(14, 15);
    let alice = cascade.peer_config("alice");
    let bob = cascade.peer_config("bob");
    cascade.join(0, alice);
    cascade.join(1, bob);
    cascade.connect_all();
    // The relay from the first bridge to the second loses 10 % and jitters by up to 20 ms; the
    // way back is clean. Every other link: 15 ms, nothing lost.
    let (near, far) = (cascade.bridge_ip(0), cascade.bridge_ip(1));
    cascade.sim.net.set_link(
        near,
        far,
        LinkConfig::new()
            .delay(Duration::from_millis(15))
            .jitter(Duration::from_millis(20))
            .loss(0.10),
    );
    // The reports of the first seconds cover the time before the link changed.
    cascade.sim.run_for(Duration::from_secs(3));
    let before = [cascade.counters(0), cascade.counters(1)];
    cascade.sim.run_for(Duration::from_secs(8));
    let after = [cascade.counters(0), cascade.counters(1)];

    let loss = |bridge: usize, direction: usize, media: usize| {
        mean_since(
            &before[bridge].report_quality.loss[direction][media],
            &after[bridge].report_quality.loss[direction][media],
        )
    };
    let jitter = |bridge: usize, direction: usize| {
        mean_since(
            &before[bridge].report_quality.jitter[direction][VIDEO],
            &after[bridge].report_quality.jitter[direction][VIDEO],
        )
    };
    let rtt = |bridge: usize| mean_since(&before[bridge].relay_rtt, &after[bridge].relay_rtt);
    let reports = |bridge: usize| {
        let count = |c: &Counters| c.receiver_reports_sent;
        count(&after[bridge]) - count(&before[bridge])
    };
    println!(
        "loss near→far: measured by the far bridge {:?}, reported to the near one {:?}; \
         far→near {:?} / {:?}; jitter near→far {:?}, far→near {:?}; relay round trip near \
         {:?}, far {:?}",
        loss(1, RELAY_IN, AUDIO),
        loss(0, RELAY_OUT, AUDIO),
        loss(0, RELAY_IN, AUDIO),
        loss(1, RELAY_OUT, AUDIO),
        jitter(1, RELAY_IN),
        jitter(0, RELAY_IN),
        rtt(0),
        rtt(1),
    );

    // Over 8 s each bridge sends a report a second to its own sender and one on the relay for
    // the sender behind it.
    for bridge in 0..2 {
        assert!(
            reports(bridge) >= 14,
            "bridge {bridge}: {}",
            reports(bridge)
        );
    }
    // Near → far: 10 % lost. Audio is not repaired; the far bridge counts what it lost of each
    // stream (repaired video too), and the near bridge reads the same in its reports.
    for (bridge, direction, side) in [(1, RELAY_IN, "measured"), (0, RELAY_OUT, "reported")] {
        for media in [AUDIO, VIDEO] {
            let (mean, n) = loss(bridge, direction, media);
            assert!(
                n >= 6 && (0.05..=0.16).contains(&mean),
                "near → far loss {side} (media {media}): {mean} over {n} blocks"
            );
        }
    }
    // Far → near: nothing lost, reported as such.
    for (bridge, direction) in [(0, RELAY_IN), (1, RELAY_OUT)] {
        for media in [AUDIO, VIDEO] {
            let (mean, n) = loss(bridge, direction, media);
            assert!(
                n >= 6 && mean < 0.01,
                "far → near (bridge {bridge}, direction {direction}, media {media}): {mean} over {n}"
            );
        }
    }
    // The relay's figures are its own: the clients' uplinks lost nothing, and the relay's
    // 10 % is in no upstream figure.
    for bridge in 0..2 {
        let (mean, n) = loss(bridge, UPSTREAM, AUDIO);
        assert!(
            (6..=10).contains(&n) && mean < 0.01,
            "bridge {bridge} upstream: {mean} over {n}"
        );
    }
    // The jittery direction shows in the far bridge's figures, and only there.
    let (jittery, n) = jitter(1, RELAY_IN);
    assert!(n >= 6 && jittery >= 0.002, "near → far jitter {jittery}");
    let (clean, _) = jitter(0, RELAY_IN);
    assert!(
        clean < jittery / 2.0,
        "far → near {clean}, near → far {jittery}"
    );
    // Round trip on the relay from the sender reports passed across it: 15 ms each way, plus
    // up to 20 ms near → far (on the near bridge) or on the SR's way (on the far one).
    for bridge in 0..2 {
        let (mean, n) = rtt(bridge);
        assert!(
            n >= 4 && (0.028..=0.055).contains(&mean),
            "bridge {bridge}: relay round trip {mean} over {n}"
        );
    }
}
