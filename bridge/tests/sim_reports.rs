//! In memory: the reports that keep both hops honest. A sender gets receiver reports from the
//! bridge for every stream it sends, whose loss figures are the losses on its own uplink; its
//! sender reports reach the receivers (lip sync); a participant without transport-cc gets REMB
//! instead of transport-cc feedback.

mod sim;

use std::time::Duration;

use sim::Call;

#[test]
fn receiver_reports_tell_the_uplink_loss_and_sender_reports_reach_receivers() {
    let mut call = Call::new(8, 10);
    let sender = call.peer_config("sender");
    let sender_ip = sender.addr.ip();
    let mut old_client = call.peer_config("old-client");
    // A client without transport-cc: the bridge must send it REMB.
    old_client.twcc_feedback = false;
    old_client.twcc_ext = None;
    let (sender, old_client) = (call.join(sender), call.join(old_client));
    call.connect_all();
    let bridge = call.bridge_ip();
    call.set_loss(sender_ip, bridge, 0.10);
    call.sim.run_for(Duration::from_secs(8));

    let config = call.peer(sender).config().clone();
    let audio = config.audio.unwrap();
    let rtcp = &call.peer(sender).stats().rtcp_received;
    assert!(rtcp.receiver_reports >= 6, "{rtcp:?}");
    let audio_report = rtcp.report_blocks[&audio];
    // 10 % of the audio lost on the way in, and audio is not repaired: about 25 of 256.
    assert!(
        (10..=45).contains(&audio_report.fraction_lost),
        "fraction lost {} / 256",
        audio_report.fraction_lost
    );
    assert!(audio_report.packets_lost >= 20, "{audio_report:?}");
    assert!(rtcp.report_blocks.contains_key(&config.video[0].ssrc));
    assert!(
        rtcp.twcc_feedbacks >= 100,
        "transport-cc feedback to the sender"
    );
    assert_eq!(rtcp.rembs, 0, "no REMB where transport-cc works");

    let receiver = &call.peer(old_client).stats().rtcp_received;
    assert!(
        receiver.sender_reports >= 4,
        "the sender's SRs relayed: {receiver:?}"
    );
    assert!(
        receiver.rembs >= 6,
        "REMB instead of transport-cc: {receiver:?}"
    );
    assert_eq!(receiver.twcc_feedbacks, 0);
    let counters = call.counters();
    assert!(counters.sender_reports_forwarded >= 4, "{counters:?}");
    assert!(counters.remb_sent >= 6, "{counters:?}");
}
