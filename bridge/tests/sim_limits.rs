//! In memory: the per-endpoint and per-conference rate limits (issue 22). What one endpoint
//! sends beyond its packet rate is dropped before decryption, its feedback beyond its feedback
//! rate is dropped, a conference's members together are held to the conference's rate, and
//! RTCP naming a stream that is not the endpoint's to name is counted; each drop by its reason,
//! and the others' media goes on whole.

mod sim;

use std::time::Duration;

use sim::Call;
use tutti_bridge::media::limits::LimitSettings;
use tutti_bridge::media::stats::DropReason;

/// Forged SRTP (it fails authentication once decrypted).
fn forged_rtp(i: u16) -> Vec<u8> {
    let mut packet = vec![0x80u8, 100];
    packet.extend_from_slice(&i.to_be_bytes());
    packet.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 2]);
    packet.extend_from_slice(&[0xaa; 200]);
    packet
}

#[test]
fn an_endpoint_beyond_its_packet_rate_is_dropped_before_decryption() {
    let mut call = Call::with_limits(
        21,
        10,
        LimitSettings {
            endpoint_packet_rate: 1_000,
            ..LimitSettings::default()
        },
    );
    let alice = call.peer_config("alice");
    let watcher = call.peer_config("watcher");
    let mallory = call.peer_config("mallory");
    let mallory_addr = mallory.addr;
    let alice_video = alice.video[0].ssrc;
    let (_alice, watcher, _mallory) = (call.join(alice), call.join(watcher), call.join(mallory));
    call.connect_all();
    call.sim.run_for(Duration::from_secs(1));
    let before = call.counters();

    // From mallory's own (ICE-validated) address: 5,000 forged packets a second for 2 s, on
    // top of its own media.
    let bridge = call.bridge;
    for step in 0..200u16 {
        call.sim.with(bridge, |b, now| {
            for i in 0..50 {
                b.inject(now, mallory_addr, &forged_rtp(step * 50 + i));
            }
        });
        call.sim.run_for(Duration::from_millis(10));
    }
    call.sim.run_for(Duration::from_secs(1));

    let counters = call.counters();
    let grew = |r: DropReason| counters.drops[r as usize] - before.drops[r as usize];
    let limited = grew(DropReason::EndpointRateLimited);
    let decrypted = grew(DropReason::SrtpAuthFailed);
    // Over 2 s mallory may send 3,000 packets (a second's worth at once, then 1,000 a second;
    // its own media included): the other 7,000 and more are dropped unopened.
    assert!(limited >= 7_000, "rate-limited: {limited}");
    assert!(decrypted <= 3_000, "forged packets decrypted: {decrypted}");
    assert_eq!(grew(DropReason::ConferenceRateLimited), 0);
    let video = call.peer(watcher).rx(alice_video).unwrap();
    assert!(video.is_continuous(), "gaps: {:?}", video.missing());
    assert_eq!(video.frames().incomplete, 0);
}

#[test]
fn a_conference_beyond_its_packet_rate_is_held_to_it() {
    let mut call = Call::with_limits(
        22,
        10,
        LimitSettings {
            endpoint_packet_rate: 1_000,
            conference_packet_rate: 800,
            ..LimitSettings::default()
        },
    );
    let alice = call.peer_config("alice");
    let bob = call.peer_config("bob");
    let (alice_addr, bob_addr) = (alice.addr, bob.addr);
    let (_alice, _bob) = (call.join(alice), call.join(bob));
    call.connect_all();
    call.sim.run_for(Duration::from_secs(1));
    let before = call.counters();

    // Each sends 600 forged packets a second besides its media (about 150 a second) for 4 s:
    // each stays within its own rate, together they go beyond the conference's.
    let bridge = call.bridge;
    for step in 0..400u16 {
        call.sim.with(bridge, |b, now| {
            for i in 0..6 {
                b.inject(now, alice_addr, &forged_rtp(step * 6 + i));
                b.inject(now, bob_addr, &forged_rtp(step * 6 + i));
            }
        });
        call.sim.run_for(Duration::from_millis(10));
    }
    let counters = call.counters();
    let grew = |r: DropReason| counters.drops[r as usize] - before.drops[r as usize];
    let limited = grew(DropReason::ConferenceRateLimited);
    let passed = grew(DropReason::SrtpAuthFailed);
    // 4 s of about 1,500 a second offered; 800 at once and 800 a second pass.
    assert!(limited >= 1_500, "conference-limited: {limited}");
    assert!(passed <= 4_000, "forged packets decrypted: {passed}");
    assert!(
        grew(DropReason::EndpointRateLimited) < 100,
        "each endpoint stayed within its own rate: {}",
        grew(DropReason::EndpointRateLimited)
    );
}

#[test]
fn feedback_beyond_an_endpoints_rate_is_dropped() {
    let mut call = Call::with_limits(
        23,
        10,
        LimitSettings {
            endpoint_feedback_rate: 20,
            ..LimitSettings::default()
        },
    );
    let mut sender = call.peer_config("sender");
    // No periodic key frames: every key frame after the first is a requested one.
    sender.keyframe_interval = Duration::from_secs(3600);
    let receiver = call.peer_config("receiver");
    let receiver_ip = receiver.addr.ip();
    let video_ssrc = sender.video[0].ssrc;
    let (sender, receiver) = (call.join(sender), call.join(receiver));
    call.connect_all();
    call.sim.run_for(Duration::from_secs(1));
    let before = call.counters();

    // 10 % of what the bridge sends the receiver is lost (it NACKs), and it asks for a key
    // frame 200 times a second, for 3 s.
    let bridge_ip = call.bridge_ip();
    call.set_loss(bridge_ip, receiver_ip, 0.10);
    for _ in 0..600 {
        call.sim
            .with(receiver, |peer, _| peer.request_pli(video_ssrc));
        call.sim.run_for(Duration::from_millis(5));
    }
    let counters = call.counters();
    let grew_by =
        |count: fn(&tutti_bridge::media::stats::Counters) -> u64| count(&counters) - count(&before);
    let limited = counters.drops[DropReason::FeedbackRateLimited as usize]
        - before.drops[DropReason::FeedbackRateLimited as usize];
    assert!(limited >= 500, "feedback dropped: {limited}");
    // What was let through: at most the full bucket (20) and 20 a second for 3 s.
    let handled =
        grew_by(|c| c.retransmissions_sent + c.retransmissions_rate_limited + c.nack_cache_misses)
            + grew_by(|c| c.pli_sent + c.pli_rate_limited);
    assert!(handled <= 20 + 3 * 20 + 2, "feedback handled: {handled}");
    assert!(grew_by(|c| c.pli_received) >= 550, "{counters:?}");
    // The sender was asked for a key frame no more than the feedback let through.
    let plis = call.peer(sender).stats().rtcp_received.plis[&video_ssrc];
    assert!(plis <= 20 + 3 * 20, "PLIs at the sender: {plis}");
}

#[test]
fn rtcp_naming_a_stream_not_the_endpoints_to_name_is_counted() {
    let mut call = Call::new(24, 10);
    let alice = call.peer_config("alice");
    let bob = call.peer_config("bob");
    let bob_video = bob.video[0].ssrc;
    let (alice, _bob) = (call.join(alice), call.join(bob));
    call.connect_all();
    call.sim.run_for(Duration::from_secs(1));
    let alice_video = call.peer(alice).config().video[0].ssrc;
    let before = call.counters();

    // Alice asks for key frames of her own video (not forwarded to her) and of an SSRC that
    // does not exist; asking for bob's is fine.
    for _ in 0..5 {
        call.sim.with(alice, |peer, _| {
            peer.request_pli(alice_video);
            peer.request_pli(0x0bad_beef);
            peer.request_pli(bob_video);
        });
        call.sim.run_for(Duration::from_millis(100));
    }
    let counters = call.counters();
    let foreign = counters.drops[DropReason::RtcpForeignSsrc as usize]
        - before.drops[DropReason::RtcpForeignSsrc as usize];
    assert_eq!(foreign, 10, "{counters:?}");
    assert!(
        counters.pli_sent + counters.pli_rate_limited > before.pli_sent + before.pli_rate_limited
    );
}
