//! Peer-to-peer calls (no bridge) with the sender shapes the bridge's layer switching is tested
//! with: VP8 temporal layers (TID pattern, Y bit, TL0PICIDX, restarted at every key frame), H.264
//! frames recognised as key and delta frames at the receiver, rids on the wire for every
//! simulcast packet and its retransmissions, and a receiver that accepts the media of several
//! sender SSRCs on one stream and counts any other as a payload error.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tutti_sim::{
    call_each_other, LinkConfig, NodeId, PeerConfig, RxPacket, RxStream, Sim, SimPeer, VideoCodec,
};

const A: &str = "10.0.0.1:5000";
const B: &str = "10.0.0.2:5000";

/// `a` and `b` called each other and are connected, `a` sending (and `b` if `b_sends`).
fn connected(
    seed: u64,
    a: PeerConfig,
    b: PeerConfig,
    b_sends: bool,
) -> (Sim, [NodeId<SimPeer>; 2]) {
    let mut sim = Sim::new(seed, Instant::now());
    sim.net
        .set_default_link(LinkConfig::new().delay(Duration::from_millis(20)));
    let (a, b) = call_each_other(&mut sim, a, b);
    sim.node_mut(a).set_sending(true);
    sim.node_mut(b).set_sending(b_sends);
    assert!(
        sim.run_until_cond(Duration::from_secs(5), |s| s.node(a).is_connected()
            && s.node(b).is_connected())
    );
    (sim, [a, b])
}

fn peer(name: &str, addr: &str, seed: u64) -> PeerConfig {
    PeerConfig::new(name, addr.parse().unwrap(), seed)
}

/// The packets of each frame (RTP timestamp), frames and packets in sequence order.
fn frames(rx: &RxStream) -> Vec<Vec<&RxPacket>> {
    let mut packets: Vec<&RxPacket> = rx.packets.iter().collect();
    packets.sort_by_key(|p| p.seq);
    let mut frames: Vec<Vec<&RxPacket>> = Vec::new();
    for p in packets {
        match frames.last_mut() {
            Some(f) if f[0].timestamp == p.timestamp => f.push(p),
            _ => frames.push(vec![p]),
        }
    }
    frames
}

/// Checks a VP8 stream with temporal layers following `pattern` (TIDs from a TID 0 frame on)
/// and returns how many key frames came before the pattern's end.
fn check_temporal_pattern(rx: &RxStream, pattern: &[u8]) -> usize {
    assert_eq!(rx.payload_errors, 0);
    assert!(rx.is_continuous(), "{:?}", rx.missing());
    assert!(rx.picture_ids_continuous());
    assert!(rx.timestamps_monotonic());
    let frames = frames(rx);
    assert!(frames.len() > 50, "{}", frames.len());
    let (mut index, mut tl0, mut mid_cycle_keyframes) = (0, None::<u8>, 0);
    for (n, frame) in frames.iter().enumerate() {
        let first = frame[0];
        for p in frame {
            assert_eq!(
                (p.picture_id, p.tl0_pic_idx, p.temporal_id, p.layer_sync),
                (
                    first.picture_id,
                    first.tl0_pic_idx,
                    first.temporal_id,
                    first.layer_sync
                ),
                "one descriptor per frame"
            );
        }
        if first.keyframe {
            if n > 0 && index != 0 {
                mid_cycle_keyframes += 1;
            }
            index = 0;
        }
        let tid = pattern[index];
        assert_eq!(first.temporal_id, Some(tid), "frame {n}");
        // Y on the first frame of each layer after a TID 0 frame.
        let sync = tid > 0 && !pattern[1..index].contains(&tid);
        assert_eq!(first.layer_sync, sync, "frame {n}");
        let got = first.tl0_pic_idx.expect("TL0PICIDX in every packet");
        if let Some(prev) = tl0 {
            let expected = if tid == 0 { prev.wrapping_add(1) } else { prev };
            assert_eq!(got, expected, "frame {n}");
        }
        tl0 = Some(got);
        index = (index + 1) % pattern.len();
    }
    mid_cycle_keyframes
}

#[test]
fn vp8_temporal_layers_follow_the_pattern_and_restart_at_key_frames() {
    for (layers, pattern) in [(3, &[0, 2, 1, 2][..]), (2, &[0, 1][..])] {
        let (mut sim, [a, b]) = connected(
            11,
            PeerConfig {
                temporal_layers: layers,
                ..peer("a", A, 1)
            },
            peer("b", B, 2),
            true,
        );
        let video = sim.node(a).config().video[0].ssrc;
        // Key frames on request, at whatever point of the pattern the sender is.
        for delay_ms in [1010, 1050, 1020] {
            sim.run_for(Duration::from_millis(delay_ms));
            sim.with(b, |p, _| p.request_pli(video));
        }
        sim.run_for(Duration::from_secs(1));
        let sent = sim.node(a).tx(video).unwrap().keyframes;
        assert_eq!(sent, 4, "the first and three requested");
        let rx = sim.node(b).rx(video).unwrap();
        assert_eq!(rx.keyframes(), 4);
        let mid_cycle = check_temporal_pattern(rx, pattern);
        assert!(mid_cycle >= 1, "no key frame interrupted the pattern");

        // The default (b's video) has a PictureID and no temporal fields.
        let plain = sim.node(a).rx(sim.node(b).config().video[0].ssrc).unwrap();
        assert!(plain.received() > 100);
        assert!(plain.packets.iter().all(|p| p.picture_id.is_some()
            && (p.tl0_pic_idx, p.temporal_id, p.layer_sync) == (None, None, false)));
        assert!(plain.picture_ids_continuous());
    }
}

#[test]
fn h264_frames_are_recognised_at_the_receiver() {
    let (mut sim, [a, b]) = connected(
        12,
        PeerConfig {
            video_codec: VideoCodec::H264,
            ..peer("a", A, 1).simulcast(2, 1_600_000)
        },
        peer("b", B, 2),
        false,
    );
    let layers = sim.node(a).config().video.clone();
    sim.run_for(Duration::from_secs(1));
    sim.with(b, |p, _| p.request_pli(layers[1].ssrc));
    sim.run_for(Duration::from_secs(1));
    sim.with(a, |p, _| p.set_sending(false));
    sim.run_for(Duration::from_millis(200));

    for layer in &layers {
        let sent = sim.node(a).tx(layer.ssrc).unwrap().clone();
        let rx = sim.node(b).rx(layer.ssrc).unwrap();
        assert_eq!(rx.payload_errors, 0);
        assert!(rx.is_continuous(), "{:?}", rx.missing());
        assert_eq!(rx.received() as u64, sent.packets);
        assert_eq!(rx.keyframes() as u64, sent.keyframes);
        let counts = rx.frames();
        assert_eq!(counts.complete as u64, sent.frames, "{counts:?}");
        assert_eq!(counts.keyframes as u64, sent.keyframes);
        assert!(rx.timestamps_monotonic());
        assert_eq!(rx.layers_seen().len(), 1);
        assert!(rx.switches().is_empty());
        let frames = frames(rx);
        for frame in &frames {
            assert!(frame.iter().all(|p| p.picture_id.is_none()));
            let starts: Vec<usize> = (0..frame.len())
                .filter(|&i| frame[i].start_of_frame)
                .collect();
            let keys: Vec<usize> = (0..frame.len()).filter(|&i| frame[i].keyframe).collect();
            if frame[0].keyframe {
                // The SPS/PPS STAP-A, then the IDR slice's first packet.
                assert_eq!(starts, [0, 1]);
                assert_eq!(keys, [0, 1]);
            } else {
                assert_eq!(starts, [0]);
                assert!(keys.is_empty());
            }
        }
    }
    assert_eq!(
        sim.node(a).tx(layers[1].ssrc).unwrap().keyframes,
        2,
        "the first and the requested one"
    );
}

#[test]
fn rids_are_on_the_wire_for_media_and_retransmissions() {
    let ids = Some((11, 12));
    for sender_maps_rids in [true, false] {
        // b maps the extensions to see them; a writes rids only when it maps them too.
        let (mut sim, [a, b]) = connected(
            13,
            PeerConfig {
                rid_extensions: ids.filter(|_| sender_maps_rids),
                ..peer("a", A, 1).simulcast(3, 1_200_000)
            },
            PeerConfig {
                rid_extensions: ids,
                ..peer("b", B, 2)
            },
            false,
        );
        // Lose some of a's packets so that retransmissions flow on every layer.
        let ip = |addr: &str| addr.parse::<SocketAddr>().unwrap().ip();
        sim.net.update_link(ip(A), ip(B), |l| l.loss = 0.05);
        sim.run_for(Duration::from_secs(6));
        sim.net.update_link(ip(A), ip(B), |l| l.loss = 0.0);
        sim.run_for(Duration::from_secs(1));

        let layers = sim.node(a).config().video.clone();
        assert_eq!(
            layers.iter().map(|l| l.rid.as_deref()).collect::<Vec<_>>(),
            [Some("q"), Some("h"), Some("f")]
        );
        for layer in &layers {
            let rx = sim.node(b).rx(layer.ssrc).unwrap();
            assert_eq!(rx.payload_errors, 0);
            assert!(rx.recovered() > 0, "no retransmission on {:?}", layer.rid);
            if sender_maps_rids {
                // Every packet on the layer's own SSRC carried its rid, RTX the repaired rid.
                assert_eq!(rx.rid, layer.rid);
                assert_eq!(rx.rid_packets as usize, rx.received() - rx.recovered());
                assert_eq!(rx.repaired_rid, layer.rid);
            } else {
                assert_eq!((rx.rid.as_deref(), rx.rid_packets), (None, 0));
                assert_eq!(rx.repaired_rid, None);
            }
        }
        assert_eq!(sim.node(b).stats().unknown_ssrc_packets, 0);
    }
}

#[test]
fn a_stream_accepts_the_listed_senders_only() {
    let (mut sim, [a, b]) = connected(
        14,
        peer("a", A, 1).simulcast(2, 800_000),
        peer("b", B, 2),
        false,
    );
    let layers = sim.node(a).config().video.clone();
    let (low, high) = (&layers[0], &layers[1]);
    sim.with(b, |p, _| {
        // The low layer's stream may carry either layer; the high one only the low layer's
        // media, which it never gets.
        p.expect_video_from(low.ssrc, low.rtx, &[high.ssrc, low.ssrc]);
        p.expect_video_from(high.ssrc, high.rtx, &[low.ssrc]);
    });
    sim.run_for(Duration::from_secs(2));

    let accepted = sim.node(b).rx(low.ssrc).unwrap();
    assert_eq!(accepted.senders, [high.ssrc, low.ssrc]);
    assert!(accepted.received() > 50);
    assert_eq!(accepted.payload_errors, 0);
    assert!(accepted
        .packets
        .iter()
        .all(|p| p.sender_ssrc == Some(low.ssrc) && p.sender_seq.is_some()));
    assert_eq!(accepted.layers_seen().len(), 1);
    assert_eq!(accepted.sequence_offset, Some(0));

    let refused = sim.node(b).rx(high.ssrc).unwrap();
    assert!(refused.received() > 50);
    assert_eq!(refused.payload_errors as usize, refused.received());
    // The trailer is intact: which sender it names is still recorded.
    assert!(refused
        .packets
        .iter()
        .all(|p| p.sender_ssrc == Some(high.ssrc) && p.sender_seq.is_none()));
    assert_eq!(refused.sequence_offset, None);
    assert!(
        refused.frames().complete > 50,
        "frames are still recognised"
    );
}
