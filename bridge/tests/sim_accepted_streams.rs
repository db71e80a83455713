//! In memory: a receiver whose endpoint receives by MID (a standards client, which places what
//! it receives by MID) is forwarded nothing of a stream until the focus gives the stream a MID
//! (its client accepted the stream's content); then the sender is asked for a key frame at
//! once and the stream starts at it. A stream it never accepts, or whose MID is taken away (a
//! content it removed), gets it nothing, and holds up nobody else's.

mod sim;

use std::time::Duration;

use sim::{assert_receives_cleanly, Call};
use tutti_sim::{NodeId, PeerConfig, RxStream, SimPeer};

/// What `receiver` got of `sender`'s audio and video.
fn streams<'a>(
    call: &'a Call,
    receiver: NodeId<SimPeer>,
    sender: &PeerConfig,
) -> [&'a RxStream; 2] {
    let peer = call.peer(receiver);
    [
        peer.rx(sender.audio.unwrap()).expect("audio"),
        peer.rx(sender.video[0].ssrc).expect("video"),
    ]
}

#[test]
fn a_stream_reaches_a_receiver_by_mid_once_accepted_and_starts_at_a_key_frame() {
    let mut call = Call::new(33, 15);
    let mut configs = Vec::new();
    for name in ["ada", "bob"] {
        let mut config = call.peer_config(name);
        // No periodic key frames: after the first, a key frame is one the bridge asked for.
        config.keyframe_interval = Duration::from_secs(3600);
        configs.push(config);
    }
    let (ada, bob) = (configs[0].clone(), configs[1].clone());
    let pa = call.join(ada.clone());
    let pb = call.join(bob.clone());
    let gus_config = call.peer_config("gus");
    let gus = call.join_receiving_by_mid(gus_config);
    call.connect_all();
    call.sim.run_for(Duration::from_secs(5));

    // Connected, nothing accepted yet: nothing of either sender on gus's wire; the Jitsi-style
    // receivers get everything as before.
    for sender in [&ada, &bob] {
        for stream in streams(&call, gus, sender) {
            assert_eq!(
                stream.wire_packets, 0,
                "{}'s {:?}",
                sender.name, stream.kind
            );
        }
    }
    assert_eq!(call.peer(gus).stats().unknown_ssrc_packets, 0);
    assert_receives_cleanly(call.peer(pa), &bob);
    assert_receives_cleanly(call.peer(pb), &ada);

    // gus accepts ada's contents: the bridge asks ada for a key frame right away (one PLI,
    // for the one video stream), and her video reaches gus from that key frame on.
    let plis_before = call.counters().pli_sent;
    let asked_before = plis_of(&call, pa, &ada);
    let accepted_at = call.sim.now();
    call.set_receive_mids(
        gus,
        &[
            (ada.audio.unwrap(), "audio1"),
            (ada.video[0].ssrc, "video2"),
        ],
    );
    assert_eq!(
        call.counters().pli_sent,
        plis_before + 1,
        "a PLI as forwarding starts"
    );
    call.sim.run_for(Duration::from_secs(2));
    assert!(plis_of(&call, pa, &ada) > asked_before, "ada was asked");
    let [audio, video] = streams(&call, gus, &ada);
    let first = video
        .packets
        .iter()
        .min_by_key(|p| p.seq)
        .expect("ada's video reaches gus");
    assert!(
        first.keyframe && first.start_of_frame,
        "the first packet forwarded begins a key frame: {first:?}"
    );
    assert!(
        first.arrived.duration_since(accepted_at) < Duration::from_millis(200),
        "within a round trip and a frame of the accept: {:?}",
        first.arrived.duration_since(accepted_at)
    );
    assert_eq!(video.frames().keyframes, 1);
    assert!(video.frames().complete >= 50, "{:?}", video.frames());
    assert!(video.is_continuous(), "gaps: {:?}", video.missing());
    assert!(audio.received() >= 90, "{}", audio.received());
    for stream in [audio, video] {
        assert_eq!(stream.without_mid, 0, "every packet carries its MID");
        assert_eq!(stream.payload_errors, 0);
    }

    // bob's streams, never accepted, still reach gus not at all, and everyone else as before.
    for stream in streams(&call, gus, &bob) {
        assert_eq!(stream.wire_packets, 0, "bob's {:?}", stream.kind);
    }
    assert_receives_cleanly(call.peer(pa), &bob);
    assert_receives_cleanly(call.peer(pb), &ada);

    // gus removes ada's video content: it stops; her audio goes on.
    call.set_receive_mids(gus, &[(ada.audio.unwrap(), "audio1")]);
    call.sim.run_for(Duration::from_millis(200));
    let [audio, video] = streams(&call, gus, &ada);
    let (audio_then, video_then) = (audio.wire_packets, video.wire_packets);
    call.sim.run_for(Duration::from_secs(1));
    let [audio, video] = streams(&call, gus, &ada);
    assert_eq!(video.wire_packets, video_then, "ada's video stopped");
    assert!(audio.wire_packets >= audio_then + 45, "ada's audio goes on");
}

/// The PLIs `sender` received for its video.
fn plis_of(call: &Call, sender: NodeId<SimPeer>, config: &PeerConfig) -> u64 {
    call.peer(sender)
        .stats()
        .rtcp_received
        .plis
        .get(&config.video[0].ssrc)
        .copied()
        .unwrap_or(0)
}
