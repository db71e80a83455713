//! In memory: a standards client that signals no SSRCs, only the MIDs of its m-lines (its
//! Jingle contents carry no XEP-0339 sources), is routed by the SSRCs its packets name in their
//! sdes:mid extension: its audio and video reach the others whole under the SSRCs the focus
//! minted for them, its RTX stream is learnt from its first retransmission, and each SSRC is
//! learnt once.

mod sim;

use std::time::Duration;

use sim::{assert_receives_cleanly, assert_receives_learnt_cleanly, sources_by_mid, Call};
use tutti_bridge::media::stats::DropReason;

#[test]
fn a_sender_signalled_by_mid_alone_is_routed_by_the_ssrcs_its_packets_name() {
    let mut call = Call::new(31, 15);
    let bob = call.peer_config("bob");
    let carol = call.peer_config("carol");
    let alice = call.peer_config("alice");
    let pb = call.join(bob.clone());
    let pc = call.join(carol.clone());
    let pa = call.join_by_mid(alice.clone(), sources_by_mid(&alice));
    call.connect_all();
    // Losses on alice's way in: the bridge NACKs her video, and her RTX stream shows itself.
    let bridge = call.bridge_ip();
    call.set_loss(alice.addr.ip(), bridge, 0.03);
    call.sim.run_for(Duration::from_secs(5));
    call.set_loss(alice.addr.ip(), bridge, 0.0);
    call.sim.run_for(Duration::from_secs(1));

    for receiver in [pb, pc] {
        assert_receives_learnt_cleanly(call.peer(receiver), &alice);
    }
    // She receives the others as any participant does.
    assert_receives_cleanly(call.peer(pa), &bob);
    assert_receives_cleanly(call.peer(pa), &carol);
    let c = call.counters();
    assert_eq!(
        c.streams_learnt, 3,
        "her audio, video and video RTX SSRCs, each learnt once"
    );
    assert!(c.rtx_recovered > 0, "her retransmissions were taken");
    for reason in [
        DropReason::UnknownSsrc,
        DropReason::UnknownMid,
        DropReason::MidTaken,
    ] {
        assert_eq!(c.drops[reason as usize], 0, "{}", reason.label());
    }
}
