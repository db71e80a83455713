//! In memory: one conference on two bridges linked by a relay (ICE with one side controlled,
//! DTLS-SRTP, a link id on every datagram). Two participants on the first bridge and one on
//! the second each decode the other two's audio and video, continuous and intact, and get
//! the senders' reports, whichever bridge the sender is on.

mod sim;

use std::time::Duration;

use sim::assert_receives_cleanly;
use sim::cascade::Cascade;
use tutti_bridge::media::stats::DropReason;
use tutti_bridge::media::EndpointState;

#[test]
fn participants_on_two_bridges_receive_each_other_through_the_relay() {
    let mut cascade = Cascade::new(11, 20);
    let a = cascade.peer_config("a");
    let b = cascade.peer_config("b");
    let c = cascade.peer_config("c");
    let ids = [cascade.join(0, a), cascade.join(0, b), cascade.join(1, c)];
    cascade.connect_all();
    cascade.sim.run_for(Duration::from_secs(5));

    for bridge in 0..2 {
        assert_eq!(
            cascade.relay_states(bridge),
            [EndpointState::Allocated, EndpointState::Connected],
            "bridge {bridge}"
        );
    }
    for &receiver in &ids {
        for &sender in ids.iter().filter(|s| s.index() != receiver.index()) {
            assert_receives_cleanly(cascade.peer(receiver), cascade.peer(sender).config());
        }
        let stats = cascade.peer(receiver).stats();
        assert!(
            stats.rtcp_received.sender_reports >= 4,
            "SRs passed on, across the relay too: {stats:?}"
        );
        assert_eq!(stats.unknown_ssrc_packets, 0);
    }
    for bridge in 0..2 {
        let counters = cascade.counters(bridge);
        for reason in [
            DropReason::UnknownSsrc,
            DropReason::UnknownLink,
            DropReason::UnknownAddress,
            DropReason::SrtpAuthFailed,
            DropReason::SrtpReplayed,
            DropReason::RtpMalformed,
            DropReason::RtcpMalformed,
        ] {
            assert_eq!(
                counters.drops[reason as usize],
                0,
                "bridge {bridge}: {}",
                reason.label()
            );
        }
        // Transport-cc runs on the relay too: each bridge gets feedback for what it sent on
        // it, and nothing was lost.
        assert!(counters.relay_packets_sent > 500, "{counters:?}");
        assert!(counters.relay_packets_received > 500, "{counters:?}");
        assert!(
            counters.transport_cc_reported_received > 2000,
            "{counters:?}"
        );
        assert_eq!(counters.transport_cc_reported_lost, 0, "{counters:?}");
        assert_eq!(counters.nacks_sent, 0, "nothing was lost: {counters:?}");
    }
    // Each bridge relays what its participants send, once: the first two participants' packets
    // from the first bridge, the third's from the second; all arrived but what is in flight.
    let (first, second) = (cascade.counters(0), cascade.counters(1));
    assert!(
        first
            .relay_packets_sent
            .abs_diff(second.relay_packets_received)
            <= 10
    );
    assert!(
        second
            .relay_packets_sent
            .abs_diff(first.relay_packets_received)
            <= 10
    );
    assert!(first.relay_packets_sent > second.relay_packets_sent * 3 / 2);
}
