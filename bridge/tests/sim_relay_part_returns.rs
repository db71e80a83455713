//! In memory, what `tests/browser/cascade.test.mjs`'s cut step does to the bridge that stays:
//! ada and bob on it, cyd and dee behind a relay on another bridge, all four sending two
//! simulcast layers with three temporal layers as Chromium does and asking 180 lines of
//! everyone (cyd puts ada on stage at 360). The path between the bridges is cut; 5 s later the
//! focus gives the far leg up (the relay expired on both sides, cyd and dee expired there) and
//! links a new relay, behind which cyd and dee come back on new sessions (new endpoint ids and
//! SSRCs), talking.
//!
//! Meanwhile ada's and bob's links stall for 0.6 s (300 kbit/s with a queue: what a page's
//! machine short of CPU looks like to the bridge's estimator), while each receives only the
//! other's video: their estimates fall to about 250 kbit/s, 0.85 times that, and stay there
//! until the next probe (docs/bridge.md, Cascading). When cyd and dee come back talking, the
//! speaker order ranks them first; that budget has room for one more base layer, and before
//! `Allocation::run` served the sources a receiver is forwarded first, cyd's took bob's place:
//! bob's video of ada stopped at 6.8 s and came back at a key frame 4.2 s later (after the
//! next probe, and 2 s more of `Consumer::settle`'s wait for a source that was moved down).
//! Now ada's video reaches bob, and bob's ada, untouched throughout: one continuous stream of
//! the base layer, no pause beyond its frame interval.

mod sim;

use std::time::Duration;

use sim::cascade::Cascade;
use tutti_bridge::media::constraints::ConstraintsUpdate;
use tutti_sim::{speech_levels, NodeId, SimPeer};

/// Every page of the browser test asks 180 lines of everyone; `on_stage` at 360.
fn ask(cascade: &mut Cascade, viewer: NodeId<SimPeer>, on_stage: Option<&str>) {
    cascade.set_constraints(
        viewer,
        ConstraintsUpdate {
            last_n: Some(-1),
            default_max_height: Some(180),
            on_stage: Some(on_stage.into_iter().map(String::from).collect()),
            max_heights: Some(on_stage.map(|s| (s.to_string(), 360)).into_iter().collect()),
            ..Default::default()
        },
    );
}

#[test]
fn the_far_part_going_and_coming_back_leaves_the_near_pair_untouched() {
    let mut cascade = Cascade::new(29, 10);
    cascade.mint_outputs = true;
    let ([ada, bob, ..], [ada_id, bob_id, cyd_id, dee_id]) = cascade.two_by_two();
    for id in [ada_id, bob_id, dee_id] {
        ask(&mut cascade, id, None);
    }
    ask(&mut cascade, cyd_id, Some("ada"));
    cascade.sim.run_for(Duration::from_secs(4));
    let (ada_out, _) = sim::output_of(&ada);
    let before = cascade.peer(bob_id).rx(ada_out).unwrap().received();
    assert!(before > 50, "bob gets ada's video: {before}");

    let cut = cascade.sim.now();
    let (near, far) = (cascade.bridge_ip(0), cascade.bridge_ip(1));
    cascade.sim.net.cut_link(near, far, true);
    cascade.sim.net.cut_link(far, near, true);
    let mut timeline = Vec::new();
    let sample = |cascade: &mut Cascade, timeline: &mut Vec<(Duration, String, String)>| {
        let at = cascade.sim.now() - cut;
        let report = cascade.receiver_report(0, ada_id);
        let targets = report
            .sources
            .iter()
            .map(|s| format!("{} {:?}/{:?}", s.sender, s.target, s.forwarding))
            .collect::<Vec<_>>()
            .join(", ");
        if timeline.last().is_none_or(|(_, _, last)| *last != targets) {
            let estimate = format!("{} ({})", report.estimate_bps, report.estimate_limited_by);
            timeline.push((at, estimate, targets));
        }
    };
    let pages = [ada.addr.ip(), bob.addr.ip()];
    for step in 0..50 {
        // 2 s after the cut, the pages' links stall for 0.6 s.
        if step == 20 {
            for page in pages {
                cascade
                    .sim
                    .net
                    .update_link(near, page, |l| *l = l.clone().rate(300_000, 64 * 1024));
            }
        }
        if step == 26 {
            for page in pages {
                cascade
                    .sim
                    .net
                    .update_link(near, page, |l| l.rate_bps = None);
            }
        }
        cascade.sim.run_for(Duration::from_millis(100));
        sample(&mut cascade, &mut timeline);
    }
    let fallen = cascade.receiver_report(0, ada_id).estimate_bps;
    assert!(
        fallen < 300_000,
        "ada's estimate fell while she got only bob's video: {fallen}"
    );
    // The focus gives the far leg up: the relay expired on both sides, cyd and dee there.
    cascade.expire_relay(0);
    cascade.expire_relay(1);
    cascade.leave(cyd_id);
    cascade.leave(dee_id);
    cascade.sim.net.cut_link(near, far, false);
    cascade.sim.net.cut_link(far, near, false);
    // A new relay (the third bridge's, here the same far bridge under new ids), and cyd and
    // dee on new sessions behind it 0.5 s later, talking; cyd puts ada on stage again.
    cascade.relink("relay-2", [0x0000_0c03, 0x0000_0d04]);
    cascade.sim.run_for(Duration::from_millis(500));
    let cyd_again = cascade.camera("cyd-again");
    let dee_again = cascade.camera("dee-again");
    let cyd_again = cascade.join(1, cyd_again);
    let dee_again = cascade.join(1, dee_again);
    for id in [cyd_again, dee_again] {
        cascade.sim.node_mut(id).set_audio_levels(&speech_levels());
    }
    ask(&mut cascade, cyd_again, Some("ada"));
    ask(&mut cascade, dee_again, None);
    for _ in 0..60 {
        cascade.sim.run_for(Duration::from_millis(100));
        sample(&mut cascade, &mut timeline);
    }
    // Ada's allocation at each change: her estimate, and per source the layer wanted and the
    // encoding forwarded.
    for (at, estimate, targets) in &timeline {
        println!(
            "{:>5} ms after the cut: estimate {estimate}; {targets}",
            at.as_millis()
        );
    }
    assert!(cascade.peer(cyd_again).is_connected());

    for (viewer, sender) in [(bob_id, &ada), (ada_id, &bob)] {
        let name = (&cascade.peer(viewer).config().name, &sender.name);
        let (ssrc, _) = sim::output_of(sender);
        let stream = cascade.peer(viewer).rx(ssrc).unwrap();
        let pause = cascade.longest_pause(viewer, sender, cut);
        println!("{name:?}: longest pause after the cut {pause:?}");
        assert!(
            stream.is_continuous(),
            "{name:?}: gaps {:?}",
            stream.missing()
        );
        assert!(stream.picture_ids_continuous(), "{name:?}");
        assert_eq!(
            stream.frames().incomplete,
            0,
            "{name:?}: {:?}",
            stream.frames()
        );
        assert!(
            pause < Duration::from_millis(250),
            "{name:?}: {pause:?} without a packet"
        );
    }
    // The returning pair gets video too, once the estimate has grown.
    for (viewer, sender) in [(ada_id, cyd_again), (bob_id, dee_again)] {
        let sender = cascade.peer(sender).config().clone();
        let got = cascade.peer(viewer).rx(sim::output_of(&sender).0).unwrap();
        assert!(
            got.frames().keyframes > 0 && got.received() > 20,
            "{} of {}: {:?}",
            cascade.peer(viewer).config().name,
            sender.name,
            got.frames()
        );
    }
}
