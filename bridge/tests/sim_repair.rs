//! In memory: losses on either hop are repaired. Lost on the way to a receiver, the receiver's
//! NACK is answered from the bridge's cache (RTX); lost on the way from a sender, the bridge
//! itself NACKs the sender and forwards the RTX answer as the original packet, so a receiver
//! that never NACKs still gets every frame.

mod sim;

use std::time::Duration;

use sim::Call;

#[test]
fn receivers_nacks_are_answered_from_the_cache() {
    let mut call = Call::new(2, 15);
    let sender = call.peer_config("sender");
    let receiver = call.peer_config("receiver");
    let receiver_ip = receiver.addr.ip();
    let (sender, receiver) = (call.join(sender), call.join(receiver));
    call.connect_all();
    let bridge = call.bridge_ip();
    call.set_loss(bridge, receiver_ip, 0.05);
    call.sim.run_for(Duration::from_secs(6));
    call.set_loss(bridge, receiver_ip, 0.0);
    call.sim.run_for(Duration::from_secs(1));

    let video_ssrc = call.peer(sender).config().video[0].ssrc;
    let video = call.peer(receiver).rx(video_ssrc).unwrap();
    assert!(
        video.recovered() > 10,
        "RTX from the bridge: {}",
        video.recovered()
    );
    assert!(video.is_continuous(), "gaps left: {:?}", video.missing());
    assert_eq!(video.payload_errors, 0);
    let counters = call.counters();
    assert!(counters.nack_received > 10, "{counters:?}");
    assert!(
        counters.retransmissions_sent >= video.recovered() as u64,
        "{counters:?}"
    );
    // The sender lost nothing: the bridge asked it for nothing.
    assert_eq!(counters.nacks_sent, 0, "{counters:?}");
    assert_eq!(call.peer(sender).stats().rtcp_received.nacked_total(), 0);
    assert!(
        counters.transport_cc_reported_lost > 0,
        "losses seen in feedback: {counters:?}"
    );
}

#[test]
fn the_bridge_nacks_senders_for_what_it_lost() {
    let mut call = Call::new(3, 15);
    let sender = call.peer_config("sender");
    let sender_ip = sender.addr.ip();
    let mut receiver = call.peer_config("receiver");
    // This receiver never NACKs: whatever it gets back, the bridge recovered.
    receiver.send_nacks = false;
    let (sender, receiver) = (call.join(sender), call.join(receiver));
    call.connect_all();
    let bridge = call.bridge_ip();
    call.set_loss(sender_ip, bridge, 0.05);
    call.sim.run_for(Duration::from_secs(6));
    call.set_loss(sender_ip, bridge, 0.0);
    call.sim.run_for(Duration::from_secs(1));

    let config = call.peer(sender).config().clone();
    let video = call.peer(receiver).rx(config.video[0].ssrc).unwrap();
    let counters = call.counters();
    assert!(counters.nacks_sent > 10, "{counters:?}");
    assert!(counters.rtx_recovered > 10, "{counters:?}");
    let asked = call.peer(sender).stats().rtcp_received.nacked_total();
    assert!(
        asked >= counters.nacks_sent,
        "the sender saw the NACKs: {asked}"
    );
    assert!(call.peer(sender).tx(config.video[0].ssrc).unwrap().rtx_sent >= counters.rtx_recovered);
    assert!(video.is_continuous(), "gaps left: {:?}", video.missing());
    let frames = video.frames();
    assert_eq!(frames.incomplete, 0, "{frames:?}");
    assert_eq!(video.payload_errors, 0);
    assert_eq!(
        video.recovered(),
        0,
        "recovered packets arrive as originals, not as RTX"
    );
    // Audio has no RTX: its losses are not NACKed, they show in the receiver reports.
    let audio = call.peer(receiver).rx(config.audio.unwrap()).unwrap();
    assert!(!audio.is_continuous());
    let report = call.peer(sender).stats().rtcp_received.report_blocks[&config.audio.unwrap()];
    assert!(report.packets_lost > 0, "{report:?}");
}
