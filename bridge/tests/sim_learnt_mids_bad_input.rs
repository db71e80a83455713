//! In memory: what senders signalled by MID alone can get wrong or try, and what it costs the
//! others — nothing. A packet whose MID names none of its sender's sources (`unknown_mid`), a
//! second SSRC under a MID already learnt (`mid_taken`: two simulcast layers under one MID
//! without RIDs), another participant's signalled SSRC (`unknown_ssrc`: spoofing) are counted
//! drops; an SSRC another sender's packets taught the bridge is learnt for each sender on its
//! own, so it takes nobody's stream, whoever sends first.

mod sim;

use std::time::Duration;

use sim::{assert_receives_cleanly, audio_output_of, output_of, sources_by_mid, Call};
use tutti_bridge::media::stats::DropReason;
use tutti_bridge::media::Mid;

#[test]
fn wrong_or_stolen_stream_ids_are_counted_drops_and_cost_the_others_nothing() {
    let mut call = Call::new(32, 15);
    let bob = call.peer_config("bob");
    let carol = call.peer_config("carol");
    let alice = call.peer_config("alice");
    let pb = call.join(bob.clone());
    let pc = call.join(carol.clone());
    call.join_by_mid(alice.clone(), sources_by_mid(&alice));
    // mallory sends bob's signalled audio SSRC and alice's (learnt) video SSRC as her own.
    let mut mallory = call.peer_config("mallory");
    mallory.audio = bob.audio;
    mallory.video[0].ssrc = alice.video[0].ssrc;
    let mut signalled = sources_by_mid(&mallory);
    signalled.learnt_sources[0].output = (0x4d41_0001, None);
    signalled.learnt_sources[1].output = (0x4d41_0002, Some(0x4d41_0003));
    call.join_by_mid(mallory.clone(), signalled);
    // eve was signalled MIDs her packets do not carry.
    let eve = call.peer_config("eve");
    let mut signalled = sources_by_mid(&eve);
    for (learnt, mid) in signalled.learnt_sources.iter_mut().zip(["mic", "cam"]) {
        learnt.mid = Mid::new(mid);
    }
    call.join_by_mid(eve, signalled);
    // dave sends two simulcast layers under his one video MID, without RIDs.
    let dave = call.peer_config("dave").simulcast(2, 600_000);
    call.join_by_mid(dave.clone(), sources_by_mid(&dave));
    call.connect_all();
    call.sim.run_for(Duration::from_secs(5));

    let c = call.counters();
    let drops = |reason: DropReason| c.drops[reason as usize];
    assert!(
        drops(DropReason::UnknownSsrc) > 200,
        "mallory's audio on bob's SSRC: {}",
        drops(DropReason::UnknownSsrc)
    );
    assert!(
        drops(DropReason::UnknownMid) > 200,
        "eve's packets: {}",
        drops(DropReason::UnknownMid)
    );
    assert!(
        drops(DropReason::MidTaken) > 100,
        "dave's second layer: {}",
        drops(DropReason::MidTaken)
    );
    for receiver in [pb, pc] {
        let peer = call.peer(receiver);
        let name = &peer.config().name;
        // alice's streams, whole; mallory's video on its own output, though its SSRC is alice's.
        let audio = peer.rx(audio_output_of(&alice)).expect("alice's audio");
        assert!(audio.received() >= 200, "{name}: {}", audio.received());
        assert!(audio.is_continuous(), "{name}: {:?}", audio.missing());
        for (sender, output) in [(&alice, output_of(&alice).0), (&mallory, 0x4d41_0002)] {
            let video = peer.rx(output).expect("the video");
            let frames = video.frames();
            assert!(
                frames.complete >= 120,
                "{name} of {}: {frames:?}",
                sender.name
            );
            assert_eq!(frames.incomplete, 0, "{name} of {}", sender.name);
            assert_eq!(video.payload_errors, 0, "{name} of {}", sender.name);
        }
        assert!(
            peer.rx(0x4d41_0001).is_none_or(|a| a.received() == 0),
            "{name}: nothing of mallory's spoofed audio"
        );
        // dave's one learnt layer goes on.
        let video = peer.rx(output_of(&dave).0).expect("dave's video");
        assert!(
            video.frames().complete >= 120,
            "{name}: {:?}",
            video.frames()
        );
    }
    // bob's audio reaches carol whole, mallory's copies of its SSRC notwithstanding.
    assert_receives_cleanly(call.peer(pc), &bob);
}
