//! In memory: a participant restarts its session (as lib-jitsi-meet does after an ICE failure:
//! the focus expires its endpoint and gives it a new one) and comes back with the same SSRCs
//! but a new random sequence. Its receivers see one continuous stream: their numbering and SRTP
//! state carry on where they were, and nothing is lost to the replay window.

mod sim;

use std::time::Duration;

use sim::{expect, Call};
use tutti_bridge::media::EndpointState;
use tutti_sim::SimPeer;

#[test]
fn a_sender_back_on_a_new_endpoint_with_the_same_ssrcs_continues_its_streams() {
    let mut call = Call::new(5, 10);
    let first = call.peer_config("alice");
    let watcher = call.peer_config("watcher");
    let (alice, watcher) = (call.join(first.clone()), call.join(watcher));
    call.connect_all();
    call.sim.run_for(Duration::from_secs(2));
    let audio_ssrc = first.audio.unwrap();
    let video_ssrc = first.video[0].ssrc;
    let audio_before = call.peer(watcher).rx(audio_ssrc).unwrap().received();
    let video_before = call.peer(watcher).rx(video_ssrc).unwrap().received();

    // The session fails: the old endpoint goes, the participant comes back from a new port,
    // with the same SSRCs and another random start of its sequence numbers.
    call.sim.with(alice, |peer, _| peer.set_sending(false));
    call.sim.disconnect(alice);
    call.expire(alice);
    let mut again = first.clone();
    again.name = "alice-restarted".into();
    again.seed = 777;
    again.addr.set_port(5001);
    let start = call.sim.start();
    let restarted = call.sim.add("alice-restarted", SimPeer::new(again, start));
    call.connect(restarted);
    let watcher_config = call.peer(watcher).config().clone();
    expect(call.sim.node_mut(restarted), &watcher_config);
    call.sim.node_mut(restarted).set_sending(true);
    call.peers = vec![restarted, watcher];
    call.connect_all();
    call.sim.run_for(Duration::from_secs(3));

    assert!(call.states("alice").contains(&EndpointState::Expired));
    assert!(call
        .states("alice-restarted")
        .contains(&EndpointState::Connected));
    let audio = call.peer(watcher).rx(audio_ssrc).unwrap();
    assert!(
        audio.received() >= audio_before + 120,
        "audio resumed: {}",
        audio.received()
    );
    assert!(
        audio.is_continuous(),
        "one continuous stream: {:?}",
        audio.missing()
    );
    assert_eq!(audio.offset_changes, 1, "renumbered once, at the restart");
    assert_eq!(audio.payload_errors, 0);
    let video = call.peer(watcher).rx(video_ssrc).unwrap();
    assert!(video.received() >= video_before + 200);
    assert!(video.is_continuous(), "{:?}", video.missing());
    assert_eq!(video.offset_changes, 1);
    let frames = video.frames();
    assert_eq!(frames.incomplete, 0, "{frames:?}");
    // The restarted participant receives the watcher from its first packet on.
    let back = call
        .peer(restarted)
        .rx(watcher_config.video[0].ssrc)
        .unwrap();
    assert!(back.received() > 100 && back.is_continuous());
    let counters = call.counters();
    assert_eq!(
        counters.drops[tutti_bridge::media::stats::DropReason::UnknownSsrc as usize],
        0
    );
}
