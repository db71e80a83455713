//! In memory: a standards client signalled by MID alone whose packets carry no MID (it
//! negotiated no sdes:mid extension, as GStreamer's webrtcbin does) is placed by payload type,
//! as RFC 8843 has a BUNDLE receiver do: its audio, video and video RTX SSRCs are learnt, each
//! once, from their payload types, and reach the others whole. A sender with two sources of one
//! media named by MID alone cannot be placed that way: that media's packets are counted drops
//! (`unknown_mid`), its other media is learnt, and nobody else loses anything.

mod sim;

use std::time::Duration;

use sim::{
    assert_receives_cleanly, assert_receives_learnt_cleanly, audio_output_of, output_of,
    sources_by_mid, Call,
};
use tutti_bridge::media::stats::DropReason;
use tutti_bridge::media::Mid;

#[test]
fn packets_without_a_mid_are_placed_by_payload_type_when_it_names_one_source() {
    let mut call = Call::new(33, 15);
    let bob = call.peer_config("bob");
    let pb = call.join(bob.clone());
    let mut alice = call.peer_config("alice");
    alice.mid_ext = None;
    let pa = call.join_by_mid(alice.clone(), sources_by_mid(&alice));
    // eve has a second audio source named by MID alone: her audio's payload type names two.
    let mut eve = call.peer_config("eve");
    eve.mid_ext = None;
    let mut signalled = sources_by_mid(&eve);
    let mut second = signalled.learnt_sources[0].clone();
    second.mid = Mid::new("audio2");
    second.name = "eve-a1".into();
    second.output = (0x4556_0001, None);
    signalled.learnt_sources.push(second);
    call.join_by_mid(eve.clone(), signalled);
    call.connect_all();
    // Losses on alice's way in: the bridge NACKs her video, and her RTX stream shows itself.
    let bridge = call.bridge_ip();
    call.set_loss(alice.addr.ip(), bridge, 0.03);
    call.sim.run_for(Duration::from_secs(5));
    call.set_loss(alice.addr.ip(), bridge, 0.0);
    call.sim.run_for(Duration::from_secs(1));

    let peer = call.peer(pb);
    assert_receives_learnt_cleanly(peer, &alice);
    let eve_video = peer.rx(output_of(&eve).0).expect("eve's video");
    assert!(
        eve_video.frames().complete >= 150,
        "{:?}",
        eve_video.frames()
    );
    assert!(
        peer.rx(audio_output_of(&eve))
            .is_none_or(|audio| audio.received() == 0),
        "eve's audio, which names no one source, was placed"
    );
    assert_receives_cleanly(call.peer(pa), &bob);

    let c = call.counters();
    assert_eq!(
        c.streams_learnt, 4,
        "alice's audio, video and video RTX SSRCs and eve's video, each learnt once"
    );
    assert!(c.rtx_recovered > 0, "alice's retransmissions were taken");
    assert!(
        c.drops[DropReason::UnknownMid as usize] > 200,
        "eve's audio: {}",
        c.drops[DropReason::UnknownMid as usize]
    );
    for reason in [DropReason::UnknownSsrc, DropReason::MidTaken] {
        assert_eq!(c.drops[reason as usize], 0, "{}", reason.label());
    }
}
