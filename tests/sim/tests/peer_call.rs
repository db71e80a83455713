//! Two SimPeers call each other over a 20 ms network (no bridge: b plays the controlling, DTLS
//! server side): ICE and DTLS complete, audio and video flow both ways intact and continuous,
//! and the usual RTCP goes back and forth.

use std::time::{Duration, Instant};

use tutti_sim::{call_each_other, LinkConfig, PeerConfig, Sim};

#[test]
fn two_peers_exchange_audio_and_video() {
    let start = Instant::now();
    let mut sim = Sim::new(1, start);
    sim.net
        .set_default_link(LinkConfig::new().delay(Duration::from_millis(20)));

    let (a, b) = call_each_other(
        &mut sim,
        PeerConfig::new("a", "10.0.0.1:5000".parse().unwrap(), 1),
        PeerConfig::new("b", "10.0.0.2:5000".parse().unwrap(), 2),
    );
    sim.node_mut(a).set_sending(true);
    sim.node_mut(b).set_sending(true);

    assert!(
        sim.run_until_cond(Duration::from_secs(5), |s| s.node(a).is_connected()
            && s.node(b).is_connected()),
        "ICE + DTLS did not complete"
    );
    // Connectivity checks, then a DTLS 1.2 handshake of two round trips, 40 ms each.
    assert!(
        sim.elapsed() < Duration::from_millis(500),
        "{:?}",
        sim.elapsed()
    );

    sim.run_for(Duration::from_secs(10));

    for (rx, tx) in [(a, b), (b, a)] {
        let sender = sim.node(tx);
        let receiver = sim.node(rx);
        let config = sender.config().clone();
        let audio = config.audio.unwrap();
        let video = config.video[0].ssrc;

        let sent = sender.tx(audio).unwrap();
        let got = receiver.rx(audio).unwrap();
        // 10 s at 50 packets/s, minus what is still on the wire.
        assert!(sent.packets >= 500, "{sent:?}");
        assert!(
            got.received() as u64 >= sent.packets - 2,
            "{} of {}",
            got.received(),
            sent.packets
        );
        assert!(got.is_continuous(), "audio missing {:?}", got.missing());
        assert_eq!(got.out_of_order(), 0);
        assert_eq!(got.payload_errors, 0);
        assert_eq!(got.wire_duplicates, 0);
        assert_eq!(got.sequence_offset, Some(0));
        let latencies = got.latencies_us(sim.start());
        assert!(
            latencies.iter().all(|&l| (20_000..25_000).contains(&l)),
            "{latencies:?}"
        );

        let sent = sender.tx(video).unwrap();
        let got = receiver.rx(video).unwrap();
        assert!(sent.frames >= 300, "{sent:?}");
        assert!(got.is_continuous(), "video missing {:?}", got.missing());
        assert_eq!(got.payload_errors, 0);
        assert_eq!(got.recovered(), 0);
        let frames = got.frames();
        assert!(
            frames.complete as u64 >= sent.frames - 2,
            "{frames:?} of {sent:?}"
        );
        assert!(frames.incomplete <= 1, "{frames:?}");
        // The first frame and one every 3 s.
        assert_eq!(frames.keyframes, 4, "{frames:?}");
        assert_eq!(sent.rtx_sent, 0);

        // The receiver got the sender's SRs, the sender the receiver's feedback on its streams.
        assert!(receiver.stats().rtcp_received.sender_reports >= 10);
        let feedback = &sender.stats().rtcp_received;
        assert!(feedback.twcc_feedbacks >= 50, "{feedback:?}");
        assert_eq!(feedback.nacked_total(), 0, "{feedback:?}");
        assert_eq!(
            feedback.report_blocks[&video].packets_lost, 0,
            "{feedback:?}"
        );
        assert_eq!(
            feedback.report_blocks[&audio].packets_lost, 0,
            "{feedback:?}"
        );
    }
    assert_eq!(sim.net.total_stats().lost, 0);
    assert_eq!(sim.unroutable(), 0);
    assert_eq!(sim.stalls(), 0);
    assert_eq!(sim.node(a).stats().input_errors, 0);
}
