//! In memory: three participants on 20 ms links each decode the other two's audio and video
//! through the core, continuous and intact, and the bridge's own RTCP reaches them — with the
//! bridge preferring AEAD_AES_128_GCM, and with a bridge that accepts only AES_CM_128_HMAC_SHA1_80
//! (str0m offers both: each profile is negotiated and works end to end).

mod sim;

use std::time::Duration;

use sim::{assert_receives_cleanly, Call};
use tutti_bridge::media::stats::DropReason;

#[test]
fn three_participants_receive_each_other() {
    three_participants(Call::new(1, 20));
}

#[test]
fn three_participants_receive_each_other_over_aes_cm() {
    three_participants(Call::with_srtp(9, 20, tutti_dtls::SrtpProfiles::AesCmOnly));
}

fn three_participants(mut call: Call) {
    let a = call.peer_config("a");
    let b = call.peer_config("b");
    let c = call.peer_config("c");
    let ids = [call.join(a), call.join(b), call.join(c)];
    call.connect_all();
    call.sim.run_for(Duration::from_secs(5));

    for &receiver in &ids {
        for &sender in ids.iter().filter(|s| s.index() != receiver.index()) {
            assert_receives_cleanly(call.peer(receiver), call.peer(sender).config());
        }
        let stats = call.peer(receiver).stats();
        assert!(stats.rtcp_received.twcc_feedbacks >= 50, "{stats:?}");
        assert!(stats.rtcp_received.receiver_reports >= 4, "{stats:?}");
        assert!(
            stats.rtcp_received.sender_reports >= 2,
            "SRs relayed: {stats:?}"
        );
        assert_eq!(stats.unknown_ssrc_packets, 0);
    }
    let counters = call.counters();
    for reason in [
        DropReason::UnknownSsrc,
        DropReason::SrtpAuthFailed,
        DropReason::SrtpReplayed,
        DropReason::RtpMalformed,
        DropReason::RtcpMalformed,
    ] {
        assert_eq!(counters.drops[reason as usize], 0, "{}", reason.label());
    }
    assert!(
        counters.transport_cc_reported_received > 1000,
        "{counters:?}"
    );
    assert_eq!(counters.transport_cc_reported_lost, 0, "{counters:?}");
    assert_eq!(counters.nacks_sent, 0, "nothing was lost: {counters:?}");
    for name in ["a", "b", "c"] {
        assert!(call
            .states(name)
            .contains(&tutti_bridge::media::EndpointState::Connected));
    }
}
