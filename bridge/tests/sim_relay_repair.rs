//! In memory: losses on the relay are repaired across it. The far bridge NACKs the relay for
//! what it lost of the sender's video (by the encoding's own SSRC and sequence number), the
//! near bridge answers from its cache as RTX, and the far bridge forwards the answer as the
//! original: a receiver that never NACKs still gets every frame, and the sender, which lost
//! nothing, is asked for nothing.

mod sim;

use std::time::Duration;

use sim::cascade::Cascade;

#[test]
fn losses_on_the_relay_are_nacked_and_answered_across_it() {
    let mut cascade = Cascade::new(13, 15);
    let sender = cascade.peer_config("sender");
    let sender = cascade.join(0, sender);
    let mut receiver = cascade.peer_config("receiver");
    receiver.send_nacks = false;
    let receiver = cascade.join(1, receiver);
    cascade.connect_all();
    let (near, far) = (cascade.bridge_ip(0), cascade.bridge_ip(1));
    cascade.set_loss(near, far, 0.05);
    cascade.sim.run_for(Duration::from_secs(6));
    cascade.set_loss(near, far, 0.0);
    cascade.sim.run_for(Duration::from_secs(1));

    let config = cascade.peer(sender).config().clone();
    let video = cascade.peer(receiver).rx(config.video[0].ssrc).unwrap();
    let (near, far) = (cascade.counters(0), cascade.counters(1));
    assert!(
        far.nacks_sent > 10,
        "the far bridge NACKed the relay: {far:?}"
    );
    assert!(
        near.nack_received >= far.nacks_sent * 9 / 10,
        "its NACKs crossed: {near:?}"
    );
    assert!(
        near.retransmissions_sent > 10,
        "answered from the cache: {near:?}"
    );
    assert!(
        far.rtx_recovered > 10,
        "the answers forwarded as originals: {far:?}"
    );
    assert_eq!(near.nacks_sent, 0, "the sender lost nothing: {near:?}");
    assert_eq!(
        cascade.peer(sender).stats().rtcp_received.nacked_total(),
        0,
        "nothing was asked of the sender"
    );
    assert!(video.is_continuous(), "gaps left: {:?}", video.missing());
    let frames = video.frames();
    assert_eq!(frames.incomplete, 0, "{frames:?}");
    assert_eq!(video.payload_errors, 0);
    assert_eq!(
        video.recovered(),
        0,
        "recovered packets arrive as originals, not as RTX"
    );
    println!(
        "far bridge NACKed {}, near bridge answered {}, far recovered {}",
        far.nacks_sent, near.retransmissions_sent, far.rtx_recovered
    );
}
