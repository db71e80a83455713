//! A sender with three simulcast layers (each with RTX) to a receiver that expects all of them:
//! every layer arrives complete at about its bitrate; a PLI for one layer and a FIR for another
//! make exactly those layers send a key frame, and REMB reaches the sender.

use std::time::{Duration, Instant};

use tutti_sim::{call_each_other, LinkConfig, PeerConfig, Sim};

#[test]
fn simulcast_layers_and_keyframe_requests() {
    let start = Instant::now();
    let mut sim = Sim::new(6, start);
    sim.net
        .set_default_link(LinkConfig::new().delay(Duration::from_millis(20)));
    let (a, b) = call_each_other(
        &mut sim,
        PeerConfig::new("a", "10.0.0.1:5000".parse().unwrap(), 1).simulcast(3, 1_200_000),
        PeerConfig::new("b", "10.0.0.2:5000".parse().unwrap(), 2),
    );
    sim.node_mut(a).set_sending(true);
    assert!(sim.run_until_cond(Duration::from_secs(5), |s| s.node(b).is_connected()));
    sim.run_for(Duration::from_secs(1));

    let layers = sim.node(a).config().video.clone();
    sim.with(b, |p, _| {
        p.request_pli(layers[0].ssrc);
        p.request_fir(layers[2].ssrc);
        p.request_remb(layers[2].ssrc, 800_000);
    });
    sim.run_for(Duration::from_secs(1));

    let sender = sim.node(a);
    let rtcp = &sender.stats().rtcp_received;
    assert_eq!(rtcp.plis.get(&layers[0].ssrc), Some(&1), "{rtcp:?}");
    assert_eq!(rtcp.firs.get(&layers[2].ssrc), Some(&1), "{rtcp:?}");
    assert!(rtcp.rembs >= 1, "{rtcp:?}");
    let requested: Vec<u64> = layers
        .iter()
        .map(|l| sender.tx(l.ssrc).unwrap().requested_keyframes)
        .collect();
    assert_eq!(requested, [1, 0, 1]);

    for layer in &layers {
        let rx = sim.node(b).rx(layer.ssrc).unwrap();
        assert!(rx.is_continuous(), "{:?}", rx.missing());
        assert_eq!(rx.payload_errors, 0);
        let frames = rx.frames();
        assert!(frames.complete >= 55, "{frames:?}");
        assert!(frames.incomplete <= 1, "{frames:?}");
        let bytes: usize = rx.packets.iter().map(|p| p.payload_len).sum();
        let bps = bytes as f64 * 8.0 / 2.0;
        let target = f64::from(layer.bitrate_bps);
        // Key frames (three times a delta frame) push it above the nominal rate.
        assert!(
            bps > 0.8 * target && bps < 1.6 * target,
            "{bps} for {target}"
        );
    }
    let b_sent = &sim.node(b).stats().rtcp_sent;
    assert_eq!(b_sent.plis.values().sum::<u64>(), 1);
    assert_eq!(b_sent.firs.values().sum::<u64>(), 1);
}
