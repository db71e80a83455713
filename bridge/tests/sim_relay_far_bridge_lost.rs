//! In memory, what `tests/browser/cascade.test.mjs`'s kill step does to the bridge that stays:
//! ada and bob on it, cyd and dee behind a relay on another bridge (cyd with ada on stage at her
//! top layer), all four sending two simulcast layers with three temporal layers as Chromium does.
//! The far bridge is lost: the focus expires the relay, and cyd and dee come back as new
//! endpoints of this bridge (new endpoint ids, new SSRCs), cyd putting ada on stage again.
//! Ada's video reaches bob, and bob's ada, untouched throughout: one continuous stream of the
//! same layer, its numbering, timestamps and PictureIDs continuous, no incomplete frame and no
//! pause longer than a few frames.

mod sim;

use std::time::Duration;

use sim::cascade::{Cascade, RELAY};
use tutti_bridge::media::constraints::ConstraintsUpdate;
use tutti_bridge::media::{ChannelNotice, Command};
use tutti_sim::{NodeId, SimPeer};

fn on_stage(cascade: &mut Cascade, viewer: NodeId<SimPeer>, sender: &str) {
    cascade.set_constraints(
        viewer,
        ConstraintsUpdate {
            on_stage: Some(vec![sender.into()]),
            max_heights: Some(vec![(sender.into(), 360)]),
            ..Default::default()
        },
    );
}

#[test]
fn losing_the_far_bridge_leaves_the_near_participants_streams_untouched() {
    let mut cascade = Cascade::new(23, 10);
    cascade.mint_outputs = true;
    let ([ada, bob, ..], [ada_id, bob_id, cyd_id, _]) = cascade.two_by_two();
    on_stage(&mut cascade, cyd_id, "ada");
    cascade.sim.run_for(Duration::from_secs(4));
    let (ada_out, _) = sim::output_of(&ada);
    let before = cascade.peer(bob_id).rx(ada_out).unwrap().received();
    assert!(before > 100, "bob gets ada's video: {before}");

    // The far bridge dies: nothing more comes from it, and the focus expires the relay here
    // (it noticed at once: the far bridge's event stream broke).
    let lost = cascade.sim.now();
    let (near, far) = (cascade.bridge_ip(0), cascade.bridge_ip(1));
    cascade.sim.net.cut_link(near, far, true);
    cascade.sim.net.cut_link(far, near, true);
    cascade.sim.run_for(Duration::from_millis(200));
    cascade.sim.with(cascade.bridges[0], |b, now| {
        b.command(
            now,
            Command::ExpireRelay {
                conference_id: sim::CONFERENCE.into(),
                relay_id: RELAY.into(),
            },
        )
    });
    // Cyd and dee on new sessions here, 0.4 s later; cyd puts ada on stage again.
    cascade.sim.run_for(Duration::from_millis(400));
    let cyd_again = cascade.camera("cyd-again");
    let dee_again = cascade.camera("dee-again");
    let cyd_again = cascade.join(0, cyd_again);
    cascade.join(0, dee_again);
    on_stage(&mut cascade, cyd_again, "ada");
    cascade.sim.run_for(Duration::from_secs(5));
    assert!(cascade.peer(cyd_again).is_connected());

    for (viewer, sender) in [(bob_id, &ada), (ada_id, &bob)] {
        let name = (&cascade.peer(viewer).config().name, &sender.name);
        let (ssrc, _) = sim::output_of(sender);
        let stream = cascade.peer(viewer).rx(ssrc).unwrap();
        assert!(
            stream.received() > before + 100,
            "{name:?}: {}",
            stream.received()
        );
        assert!(
            stream.is_continuous(),
            "{name:?}: gaps {:?}",
            stream.missing()
        );
        assert!(stream.timestamps_monotonic(), "{name:?}");
        assert!(stream.picture_ids_continuous(), "{name:?}");
        assert_eq!(
            stream.frames().incomplete,
            0,
            "{name:?}: {:?}",
            stream.frames()
        );
        assert_eq!(
            stream.layers_seen().iter().map(|l| l.1).collect::<Vec<_>>(),
            [sender.video[0].ssrc],
            "{name:?}: the 180-line layer throughout"
        );
        let pause = cascade.longest_pause(viewer, sender, lost);
        assert!(
            pause < Duration::from_millis(150),
            "{name:?}: {pause:?} without a packet"
        );
        println!("{name:?}: longest pause after the loss {pause:?}");
    }
    // What ada was told to send meanwhile (the relay wanted every layer; bob asks for nothing
    // in particular; the new cyd puts her on stage): printed, for the browser test's account.
    let told: Vec<(Duration, u32)> = cascade
        .sim
        .node(cascade.bridges[0])
        .notices()
        .iter()
        .filter_map(|(at, notice)| match notice {
            ChannelNotice::SenderConstraints {
                endpoint_id,
                ideal_height,
                ..
            } if endpoint_id == "ada" => Some((at.saturating_duration_since(lost), *ideal_height)),
            _ => None,
        })
        .collect();
    println!("ada told to send (after the loss, height): {told:?}");
    // The new cyd gets ada's video.
    let (ada_out, _) = sim::output_of(&ada);
    let got = cascade.peer(cyd_again).rx(ada_out).unwrap().received();
    assert!(got > 50, "{got}");
}
