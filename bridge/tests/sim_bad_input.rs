//! In memory: hostile and broken datagrams — garbage, wrong sizes, unknown senders, forged
//! SRTP from a participant's own address, and a participant sending another one's SSRC — are
//! each counted by reason and change nothing for anyone else's media.

mod sim;

use std::net::SocketAddr;
use std::time::Duration;

use sim::{expect, Call};
use tutti_bridge::media::stats::DropReason;
use tutti_bridge::media::{EndpointState, MediaKind, SourceDesc, SourceSet};

#[test]
fn bad_datagrams_are_counted_and_harm_no_one() {
    let mut call = Call::new(6, 10);
    let alice = call.peer_config("alice");
    let watcher = call.peer_config("watcher");
    let alice_audio = alice.audio.unwrap();
    let alice_video = alice.video[0].ssrc;
    let (_alice, watcher_id) = (call.join(alice.clone()), call.join(watcher.clone()));

    // Mallory sends alice's audio SSRC, but signals a source of its own.
    let mut mallory = call.peer_config("mallory");
    let signalled = SourceSet {
        sources: vec![SourceDesc {
            ssrc: mallory.audio.unwrap(),
            kind: MediaKind::Audio,
            name: "mallory-a0".into(),
        }],
        ..SourceSet::default()
    };
    mallory.audio = Some(alice_audio);
    mallory.video.clear();
    let start = call.sim.start();
    let mallory_id = call
        .sim
        .add("mallory", tutti_sim::SimPeer::new(mallory.clone(), start));
    call.connect_signalling(mallory_id, signalled);
    expect(call.sim.node_mut(mallory_id), &alice);
    call.sim.node_mut(mallory_id).set_sending(true);
    call.peers.push(mallory_id);
    call.connect_all();
    call.sim.run_for(Duration::from_secs(1));

    let stranger: SocketAddr = "10.9.9.9:4444".parse().unwrap();
    let bridge = call.bridge;
    let alice_addr = alice.addr;
    let mut rtp_like = vec![0x80u8, 111, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2];
    rtp_like.extend_from_slice(&[0xaa; 100]);
    let mut rtcp_like = vec![0x80u8, 200, 0, 6];
    rtcp_like.extend_from_slice(&[0x55; 40]);
    for _ in 0..10 {
        call.sim.with(bridge, |b, now| {
            b.inject(now, stranger, &[0xff; 50]); // no protocol
            b.inject(now, stranger, &[]); // empty
            b.inject(now, stranger, &[0x80, 111, 0]); // cut short
            b.inject(now, stranger, &[0x80; 1600]); // oversized
            b.inject(now, stranger, &[0x00; 40]); // STUN-like, not STUN
            b.inject(now, stranger, &[22; 60]); // DTLS-like from nobody
            b.inject(now, stranger, &rtp_like); // media from nobody
            b.inject(now, alice_addr, &rtp_like); // forged SRTP from alice's address
            b.inject(now, alice_addr, &rtcp_like); // forged SRTCP
            b.inject(now, alice_addr, &[22; 5]); // DTLS-like from alice's address, not DTLS
        });
        call.sim.run_for(Duration::from_millis(100));
    }
    call.sim.run_for(Duration::from_secs(2));

    let counters = call.counters();
    let drops = |r: DropReason| counters.drops[r as usize];
    assert_eq!(drops(DropReason::Unrecognized), 10);
    assert_eq!(drops(DropReason::Truncated), 20);
    assert_eq!(drops(DropReason::Oversized), 10);
    assert_eq!(drops(DropReason::StunMalformed), 10);
    assert_eq!(drops(DropReason::DtlsUnknownAddress), 10);
    // Dropped, where it once ended her DTLS session (found by the bridge_core_warm fuzz target).
    assert_eq!(drops(DropReason::DtlsMalformed), 10);
    assert!(!call.states("alice").contains(&EndpointState::DtlsFailed));
    assert_eq!(drops(DropReason::UnknownAddress), 10);
    assert_eq!(drops(DropReason::SrtpAuthFailed), 20);
    assert!(
        drops(DropReason::UnknownSsrc) >= 100,
        "mallory's stolen SSRC: {}",
        drops(DropReason::UnknownSsrc)
    );

    // Alice's media reached the watcher whole; nothing of mallory's got in under her SSRC.
    let audio = call.peer(watcher_id).rx(alice_audio).unwrap();
    assert!(audio.received() >= 190, "{}", audio.received());
    assert!(audio.is_continuous());
    assert_eq!(
        audio.payload_errors, 0,
        "no foreign packet under alice's SSRC"
    );
    let video = call.peer(watcher_id).rx(alice_video).unwrap();
    assert!(video.is_continuous());
    assert_eq!(video.frames().incomplete, 0);
    assert_eq!(video.payload_errors, 0);
    // Mallory still gets alice's media: it is a participant, only its forgery is dropped.
    assert!(call.peer(mallory_id).rx(alice_video).unwrap().received() > 100);
}
