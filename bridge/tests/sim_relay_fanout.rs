//! In memory: a sender on one bridge and three receivers behind another. Each of the sender's
//! packets crosses the relay once, whatever the number of receivers behind it; the far bridge
//! fans it out to its three receivers, which decode it.

mod sim;

use std::time::Duration;

use sim::cascade::Cascade;
use tutti_bridge::media::stats::Counters;

#[test]
fn a_source_crosses_the_relay_once_for_three_receivers() {
    let mut cascade = Cascade::new(12, 15);
    let sender = cascade.peer_config("sender");
    let sender = cascade.join(0, sender);
    let receivers: Vec<_> = (0..3)
        .map(|i| {
            let mut config = cascade.peer_config(&format!("receiver{i}"));
            // Receivers only: what the bridges forward is the sender's alone.
            config.audio = None;
            config.video = Vec::new();
            cascade.join(1, config)
        })
        .collect();
    cascade.connect_all();
    // Counted once every receiver has had its first key frame.
    cascade.sim.run_for(Duration::from_secs(1));
    let config = cascade.peer(sender).config().clone();
    let sent_by_sender = |cascade: &Cascade| {
        let peer = cascade.peer(sender);
        peer.tx(config.video[0].ssrc).unwrap().packets
            + peer.tx(config.audio.unwrap()).unwrap().packets
    };
    let (sent_before, near_before, far_before) = (
        sent_by_sender(&cascade),
        cascade.counters(0),
        cascade.counters(1),
    );
    cascade.sim.run_for(Duration::from_secs(5));
    let sent = sent_by_sender(&cascade) - sent_before;
    let (near, far) = (cascade.counters(0), cascade.counters(1));
    let media = |c: &Counters, before: &Counters| {
        let total = |c: &Counters| {
            (
                c.packets_in[0] + c.packets_in[1],
                c.packets_out[0] + c.packets_out[1],
                c.relay_packets_sent,
                c.relay_packets_received,
            )
        };
        let (now, then) = (total(c), total(before));
        (
            now.0 - then.0,
            now.1 - then.1,
            now.2 - then.2,
            now.3 - then.3,
        )
    };
    let (near_in, near_out, relayed, _) = media(&near, &near_before);
    let (far_in, far_out, _, arrived) = media(&far, &far_before);
    println!(
        "over 5 s: the sender sent {sent}; near bridge in {near_in}, out {near_out} (on the relay \
         {relayed}); far bridge in {far_in} (from the relay {arrived}), out {far_out}"
    );
    // The near bridge has no receiver but the relay: every packet it got went out once, to it.
    assert_eq!(near_in, sent);
    assert_eq!(near_out, near_in);
    assert_eq!(relayed, near_in, "each packet relayed once");
    // And every byte it sent went on the relay: the datagrams as sent (SRTP, link id).
    let relay_bytes = near.relay_bytes_sent - near_before.relay_bytes_sent;
    let near_bytes_out = |c: &Counters| c.bytes_out[0] + c.bytes_out[1];
    assert_eq!(
        relay_bytes,
        near_bytes_out(&near) - near_bytes_out(&near_before)
    );
    assert!(
        relay_bytes > relayed * 100 && relay_bytes < relayed * 1300,
        "{relay_bytes} bytes in {relayed} datagrams"
    );
    // Nothing lost (but what is in flight at either end of the window): the far bridge got
    // each of them once, and sent each to its three receivers.
    assert!(
        relayed.abs_diff(arrived) <= 10,
        "{relayed} relayed, {arrived} arrived"
    );
    assert_eq!(far_in, arrived);
    // (Receivers' pacers may hold a few at the window's ends.)
    assert!(
        far_out <= 3 * far_in + 30 && far_out * 100 >= 3 * far_in * 98,
        "three copies of each: in {far_in}, out {far_out}"
    );
    for &receiver in &receivers {
        let video = cascade.peer(receiver).rx(config.video[0].ssrc).unwrap();
        let frames = video.frames();
        assert!(frames.complete >= 120, "{frames:?}");
        assert_eq!(frames.incomplete, 0, "{frames:?}");
        assert!(video.is_continuous(), "gaps {:?}", video.missing());
        let audio = cascade.peer(receiver).rx(config.audio.unwrap()).unwrap();
        assert!(audio.received() >= 200 && audio.is_continuous());
    }
}
