//! In memory: two conferences on the same two bridges, each with a relay of its own between
//! them. Both relays have the same remote address (the other bridge's one media port) and
//! are told apart by the link id at the end of their datagrams: each conference's receivers
//! get their own conference's sender and nothing of the other's, and a datagram from the
//! other bridge naming no relay, or cut shorter than a link id, is counted and dropped.

mod sim;

use std::time::Duration;

use sim::cascade::Cascade;
use tutti_bridge::media::stats::DropReason;

#[test]
fn two_conferences_share_the_bridges_and_keep_their_relays_apart() {
    let mut cascade = Cascade::new(15, 10);
    cascade.add_conference("other", [0x0000_0c03, 0x0000_0d04]);
    let sender = cascade.peer_config("sender");
    let other_sender = cascade.peer_config("other-sender");
    let receiver = cascade.peer_config("receiver");
    let other_receiver = cascade.peer_config("other-receiver");
    cascade.join(0, sender.clone());
    cascade.join_conference("other", 0, other_sender.clone());
    let receiver = cascade.join(1, receiver);
    let other_receiver = cascade.join_conference("other", 1, other_receiver);
    cascade.connect_all();
    cascade.sim.run_for(Duration::from_secs(2));

    // From the first bridge's address, as a relay datagram would come: a link id nobody has,
    // and a datagram shorter than any.
    let (far, near_addr) = (
        cascade.bridges[1],
        cascade.sim.node(cascade.bridges[0]).addr,
    );
    let mut unknown_link = vec![0x80u8, 100, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2];
    unknown_link.extend_from_slice(&[0xaa; 100]);
    unknown_link.extend_from_slice(&0x0bad_0bad_u32.to_be_bytes());
    for _ in 0..5 {
        cascade.sim.with(far, |b, now| {
            b.inject(now, near_addr, &unknown_link);
            b.inject(now, near_addr, &[0x80, 100, 0, 1, 0, 0, 0, 1]);
            b.inject(now, near_addr, &[22; 40]);
        });
    }
    cascade.sim.run_for(Duration::from_secs(3));

    for (receiver, own, stranger) in [
        (receiver, &sender, &other_sender),
        (other_receiver, &other_sender, &sender),
    ] {
        let peer = cascade.peer(receiver);
        let video = peer.rx(own.video[0].ssrc).unwrap();
        let frames = video.frames();
        assert!(frames.complete >= 120, "{frames:?}");
        assert_eq!(frames.incomplete, 0, "{frames:?}");
        assert!(video.is_continuous(), "gaps {:?}", video.missing());
        let audio = peer.rx(own.audio.unwrap()).unwrap();
        assert!(audio.received() >= 200 && audio.is_continuous());
        assert!(
            peer.rx(stranger.video[0].ssrc).is_none(),
            "nothing of the other conference"
        );
        assert_eq!(peer.stats().unknown_ssrc_packets, 0);
    }
    let far = cascade.counters(1);
    // Five of each: a known address with an unknown link id (the RTP-like one and the
    // DTLS-like one, whose last bytes name no relay either), and one too short for a link id.
    assert_eq!(far.drops[DropReason::UnknownLink as usize], 10, "{far:?}");
    assert_eq!(far.drops[DropReason::Truncated as usize], 5, "{far:?}");
    for reason in [
        DropReason::UnknownSsrc,
        DropReason::SrtpAuthFailed,
        DropReason::UnknownAddress,
        DropReason::DtlsUnknownAddress,
    ] {
        assert_eq!(far.drops[reason as usize], 0, "{}", reason.label());
    }
}
