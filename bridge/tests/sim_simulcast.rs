//! In memory: simulcast senders (three layers of 180, 360 and 720 lines), receivers whose
//! allocator picks a layer from what they ask over the bridge channel and the bandwidth they
//! have. Every switch starts on a key frame of the new layer, and the receiver's stream —
//! under the one SSRC the focus minted for the source — stays continuous: sequence numbers
//! without gaps, timestamps moving forward, VP8 picture IDs one apart.

mod sim;

use std::time::Duration;

use sim::Call;
use tutti_bridge::media::constraints::ConstraintsUpdate;
use tutti_sim::{NodeId, PeerConfig, RxStream, SimPeer, VideoCodec};

fn heights(max: u32) -> ConstraintsUpdate {
    ConstraintsUpdate {
        default_max_height: Some(max),
        ..Default::default()
    }
}

/// A three-layer sender at 1.5 Mbit/s on top.
fn simulcast_sender(call: &mut Call, name: &str) -> PeerConfig {
    call.peer_config(name).simulcast(3, 1_500_000)
}

/// A call of `alice`, a three-layer sender (as `configure` leaves her), and `bob`, who sends
/// no video, with the video forwarded under minted SSRCs; connected.
fn alice_and_bob(
    seed: u64,
    configure: impl FnOnce(&mut PeerConfig),
) -> (Call, PeerConfig, NodeId<SimPeer>) {
    let mut call = Call::new(seed, 20);
    call.mint_outputs = true;
    let mut alice = simulcast_sender(&mut call, "alice");
    configure(&mut alice);
    let mut bob = call.peer_config("bob");
    bob.video.clear();
    call.join(alice.clone());
    let bob = call.join(bob);
    call.connect_all();
    (call, alice, bob)
}

fn assert_continuous(stream: &RxStream, what: &str) {
    assert!(
        stream.is_continuous(),
        "{what}: gaps {:?}",
        stream.missing()
    );
    assert!(stream.timestamps_monotonic(), "{what}: timestamps go back");
    assert!(stream.picture_ids_continuous(), "{what}: picture IDs jump");
    assert_eq!(stream.payload_errors, 0, "{what}");
    let switches = stream.switches();
    for switch in &switches {
        assert!(switch.at_keyframe, "{what}: {switch:?} not at a key frame");
    }
    // Packets of the layers interleave on the wire: a frame of the old layer that was under
    // way when the new layer's key frame came is cut short (the receiver drops it; the key
    // frame follows at once). Nothing else is incomplete.
    let frames = stream.frames();
    assert!(frames.incomplete <= switches.len(), "{what}: {frames:?}");
}

#[test]
fn receivers_move_up_and_down_on_key_frames_of_the_new_layer() {
    let (mut call, alice, bob) = alice_and_bob(3, |_| {});
    let layer = |i: usize| alice.video[i].ssrc;

    // Before any constraints: 180 lines, the lowest layer.
    call.sim.run_for(Duration::from_secs(2));
    assert_eq!(call.layer_now(bob, &alice), Some(layer(0)));
    assert_eq!(call.forwarded_to(bob), Some(vec!["alice".to_owned()]));

    // On stage at 720: the top layer, from its next key frame on.
    call.set_constraints(
        bob,
        ConstraintsUpdate {
            on_stage: Some(vec!["alice".into()]),
            max_heights: Some(vec![("alice".into(), 720)]),
            ..Default::default()
        },
    );
    call.sim.run_for(Duration::from_secs(2));
    assert_eq!(call.layer_now(bob, &alice), Some(layer(2)));

    // A thumbnail again (by source name, as newer clients send it): down to 360, then 180.
    call.set_constraints(
        bob,
        ConstraintsUpdate {
            on_stage: Some(Vec::new()),
            max_heights: Some(vec![("alice-v0".into(), 360)]),
            ..Default::default()
        },
    );
    call.sim.run_for(Duration::from_secs(2));
    assert_eq!(call.layer_now(bob, &alice), Some(layer(1)));
    call.set_constraints(
        bob,
        ConstraintsUpdate {
            max_heights: Some(Vec::new()),
            ..heights(180)
        },
    );
    call.sim.run_for(Duration::from_secs(2));
    assert_eq!(call.layer_now(bob, &alice), Some(layer(0)));

    let stream = call.video_from(bob, &alice);
    let path: Vec<u32> = stream.layers_seen().iter().map(|(_, ssrc)| *ssrc).collect();
    assert_eq!(path, [layer(0), layer(2), layer(1), layer(0)]);
    assert_continuous(stream, "bob's view of alice");
    assert!(stream.frames().complete >= 200, "{:?}", stream.frames());
    let c = call.counters();
    assert_eq!(c.layer_switches, [1, 1, 2], "first, up, down");
}

#[test]
fn switches_ask_the_sender_for_key_frames_rate_limited() {
    let mut call = Call::new(4, 20);
    call.mint_outputs = true;
    let mut alice = simulcast_sender(&mut call, "alice");
    // Key frames only when asked (after the first).
    alice.keyframe_interval = Duration::from_secs(600);
    let _alice_id = call.join(alice.clone());
    let receivers: Vec<NodeId<SimPeer>> = (0..8)
        .map(|i| {
            let mut config = call.peer_config(&format!("r{i}"));
            config.video.clear();
            call.join(config)
        })
        .collect();
    call.connect_all();
    call.sim.run_for(Duration::from_secs(2));
    let asked_before = call
        .peer(_alice_id)
        .tx(alice.video[2].ssrc)
        .unwrap()
        .requested_keyframes;
    // Every receiver wants the top layer at once, and again and again.
    for round in 0..5 {
        for &r in &receivers {
            call.set_constraints(r, heights(if round % 2 == 0 { 720 } else { 180 }));
            call.sim.run_for(Duration::from_millis(10));
        }
        call.sim.run_for(Duration::from_millis(400));
    }
    let top = call.peer(_alice_id).tx(alice.video[2].ssrc).unwrap();
    let asked = top.requested_keyframes - asked_before;
    assert!(
        (1..=9).contains(&asked),
        "key frames of the top layer asked for in 2.5 s: {asked}"
    );
    for &r in &receivers {
        assert_continuous(call.video_from(r, &alice), "a receiver");
    }
    assert!(call.counters().pli_rate_limited > 0);
}

#[test]
fn temporal_layers_are_dropped_before_a_spatial_one() {
    let (mut call, alice, bob) = alice_and_bob(5, |alice| alice.temporal_layers = 3);
    // What bob got in the last second: the layer and the highest temporal layer.
    let recent = |call: &Call| {
        let stream = call.video_from(bob, &alice);
        let newest = stream.packets.iter().map(|p| p.arrived).max().unwrap();
        let last: Vec<_> = stream
            .packets
            .iter()
            .filter(|p| newest.duration_since(p.arrived) < Duration::from_secs(1))
            .collect();
        let layers: std::collections::BTreeSet<u32> =
            last.iter().filter_map(|p| p.sender_ssrc).collect();
        let tid = last.iter().filter_map(|p| p.temporal_id).max();
        (layers.into_iter().collect::<Vec<_>>(), tid)
    };
    let step = |call: &mut Call, bps: u64| {
        call.set_constraints(
            bob,
            ConstraintsUpdate {
                assumed_bandwidth_bps: Some(bps),
                ..heights(720)
            },
        );
        call.sim.run_for(Duration::from_secs(3));
        recent(call)
    };
    let layer = |i: usize| vec![alice.video[i].ssrc];
    // The layers send ~1.5 Mbit/s, 375 and 94 kbit/s: a quarter of their frames in TL0, a
    // quarter in TL1. Above 360 lines only the full frame rate is forwarded: short of the
    // top layer's rate, bob gets 360 at full rate, then 360 with a temporal layer dropped.
    assert_eq!(step(&mut call, 3_000_000), (layer(2), Some(2)));
    assert_eq!(step(&mut call, 1_100_000), (layer(1), Some(2)));
    assert_eq!(step(&mut call, 300_000), (layer(1), Some(1)));
    // Up again once the top layer fitted for 2 s (bob was moved down less than 10 s ago).
    step(&mut call, 3_000_000);
    call.sim.run_for(Duration::from_secs(2));
    assert_eq!(recent(&call), (layer(2), Some(2)));
    let stream = call.video_from(bob, &alice);
    assert_continuous(stream, "bob's view of alice");
    assert!(call.counters().temporal_drops > 0);
}

#[test]
fn h264_senders_switch_layers_too() {
    let (mut call, alice, bob) = alice_and_bob(6, |alice| alice.video_codec = VideoCodec::H264);
    call.sim.run_for(Duration::from_secs(2));
    assert_eq!(call.layer_now(bob, &alice), Some(alice.video[0].ssrc));
    call.set_constraints(bob, heights(720));
    call.sim.run_for(Duration::from_secs(2));
    assert_eq!(call.layer_now(bob, &alice), Some(alice.video[2].ssrc));
    call.set_constraints(bob, heights(180));
    call.sim.run_for(Duration::from_secs(2));
    assert_eq!(call.layer_now(bob, &alice), Some(alice.video[0].ssrc));
    // The layers' heights come from their SPS.
    let reports = call
        .sim
        .with(call.bridge, |b, now| b.core.describe_receivers(now));
    let bob_report = reports.iter().find(|r| r.participant_id == "bob").unwrap();
    let heights: Vec<Option<u16>> = bob_report.sources[0]
        .encodings
        .iter()
        .map(|e| e.height)
        .collect();
    assert_eq!(heights, [Some(180), Some(360), Some(720)]);
    let stream = call.video_from(bob, &alice);
    assert_eq!(stream.switches().len(), 2);
    assert!(stream.is_continuous(), "gaps {:?}", stream.missing());
    assert!(stream.timestamps_monotonic());
    assert_eq!(stream.payload_errors, 0);
    for switch in stream.switches() {
        assert!(switch.at_keyframe, "{switch:?}");
    }
}

#[test]
fn a_receiver_that_cannot_carry_the_lowest_layer_gets_no_video_and_is_told() {
    let mut call = Call::new(7, 20);
    call.mint_outputs = true;
    let alice = simulcast_sender(&mut call, "alice");
    let carol = simulcast_sender(&mut call, "carol");
    let mut bob_config = call.peer_config("bob");
    bob_config.video.clear();
    call.join(alice.clone());
    call.join(carol.clone());
    let bob = call.join(bob_config);
    call.connect_all();
    call.sim.run_for(Duration::from_secs(2));
    let mut told = call.forwarded_to(bob).unwrap();
    told.sort();
    assert_eq!(told, ["alice", "carol"]);
    // 150 kbit/s: one lowest layer (~100 kbit/s) fits, not two; carol (joined later) loses.
    call.set_constraints(
        bob,
        ConstraintsUpdate {
            assumed_bandwidth_bps: Some(150_000),
            ..Default::default()
        },
    );
    call.sim.run_for(Duration::from_millis(500));
    assert_eq!(call.forwarded_to(bob), Some(vec!["alice".to_owned()]));
    let before = call.video_from(bob, &carol).received();
    call.sim.run_for(Duration::from_secs(1));
    assert_eq!(
        call.video_from(bob, &carol).received(),
        before,
        "carol's video stopped"
    );
    // 20 kbit/s: nothing fits.
    call.set_constraints(
        bob,
        ConstraintsUpdate {
            assumed_bandwidth_bps: Some(20_000),
            ..Default::default()
        },
    );
    call.sim.run_for(Duration::from_millis(500));
    assert_eq!(call.forwarded_to(bob), Some(Vec::new()));
    // Audio flows throughout.
    let audio = call.peer(bob).rx(alice.audio.unwrap()).unwrap();
    assert!(audio.is_continuous() && audio.received() > 150);
}

#[test]
fn rid_senders_are_learnt_from_their_packets_and_switch_like_the_others() {
    let (mut call, alice, bob) = alice_and_bob(8, |alice| alice.rid_extensions = Some((11, 12)));
    // Losses on alice's way in: the bridge NACKs her, and her RTX streams show themselves.
    let bridge = call.bridge_ip();
    call.set_loss(alice.addr.ip(), bridge, 0.03);
    call.sim.run_for(Duration::from_secs(2));
    assert_eq!(call.layer_now(bob, &alice), Some(alice.video[0].ssrc));
    call.set_constraints(bob, heights(720));
    call.sim.run_for(Duration::from_secs(3));
    assert_eq!(call.layer_now(bob, &alice), Some(alice.video[2].ssrc));
    let c = call.counters();
    assert!(
        c.streams_learnt >= 4,
        "three encodings and some RTX: {}",
        c.streams_learnt
    );
    assert!(c.rtx_recovered > 0);
    assert_eq!(
        c.drops[tutti_bridge::media::stats::DropReason::UnknownSsrc as usize],
        0
    );
    assert_continuous(call.video_from(bob, &alice), "bob's view of alice");
}
