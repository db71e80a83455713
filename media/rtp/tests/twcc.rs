//! Transport-cc feedback generation checked against webrtc-rs `TransportLayerCc` decoding, and
//! webrtc-rs-built feedback checked against our decoders.

use std::collections::HashMap;

use bytes::Bytes;
use rtcp::transport_feedbacks::transport_layer_cc::{
    PacketStatusChunk, RecvDelta, RunLengthChunk, StatusChunkTypeTcc, StatusVectorChunk,
    SymbolSizeTypeTcc, SymbolTypeTcc, TransportLayerCc,
};
use tutti_rtp::rtcp::{self as tr, Packet, TwccRecorder};
use tutti_rtp::Error;
use webrtc_util::marshal::{Marshal, Unmarshal};

mod support;
use support::Rng;

/// The 24-bit reference time in 64 ms units wraps every 2^24 × 64 ms.
const REFERENCE_PERIOD_US: i64 = (1 << 24) * 64_000;

fn wrap((seq, t): (u16, Option<i64>)) -> (u16, Option<i64>) {
    (seq, t.map(|t| t.rem_euclid(REFERENCE_PERIOD_US)))
}

/// Statuses as webrtc-rs decodes them: `(seq, arrival µs)` in packet order.
fn decode_theirs(buf: &[u8]) -> (TransportLayerCc, Vec<(u16, Option<i64>)>) {
    // The generic compound parser must accept it too.
    let generic = rtcp::packet::unmarshal(&mut Bytes::copy_from_slice(buf)).expect("compound");
    assert_eq!(generic.len(), 1);
    let fb = TransportLayerCc::unmarshal(&mut Bytes::copy_from_slice(buf)).expect("webrtc-rs");
    let mut symbols = Vec::new();
    for chunk in &fb.packet_chunks {
        match chunk {
            PacketStatusChunk::RunLengthChunk(c) => {
                symbols.extend((0..c.run_length).map(|_| c.packet_status_symbol));
            }
            PacketStatusChunk::StatusVectorChunk(c) => symbols.extend(c.symbol_list.iter()),
        }
    }
    let count = usize::from(fb.packet_status_count);
    assert!(symbols.len() >= count);
    let mut deltas = fb.recv_deltas.iter();
    let mut t = i64::from(fb.reference_time) * 64_000;
    let mut out = Vec::new();
    for (i, symbol) in symbols[..count].iter().enumerate() {
        let seq = fb.base_sequence_number.wrapping_add(i as u16);
        match symbol {
            SymbolTypeTcc::PacketNotReceived => out.push((seq, None)),
            SymbolTypeTcc::PacketReceivedSmallDelta | SymbolTypeTcc::PacketReceivedLargeDelta => {
                let d = deltas.next().expect("a delta per received packet");
                assert_eq!(d.type_tcc_packet, *symbol);
                t += d.delta;
                out.push((seq, Some(t)));
            }
            SymbolTypeTcc::PacketReceivedWithoutDelta => panic!("reserved symbol written"),
        }
    }
    assert!(deltas.next().is_none(), "more deltas than received packets");
    (fb, out)
}

/// Statuses as our own decoder sees them, which must agree with webrtc-rs.
fn decode_ours(buf: &[u8]) -> Vec<(u16, Option<i64>)> {
    let mut out = Vec::new();
    tr::for_each_twcc_arrival(buf, |seq, t| out.push((seq, t))).unwrap();
    let mut statuses = Vec::new();
    tr::for_each_twcc_status(buf, |seq, received| statuses.push((seq, received))).unwrap();
    let expected: Vec<_> = out.iter().map(|(s, t)| (*s, t.is_some())).collect();
    assert_eq!(statuses, expected);
    out
}

/// Ground truth (first arrival per sequence) and the latest report per sequence.
#[derive(Default)]
struct Harness {
    truth: HashMap<u16, i64>,
    reported: HashMap<u16, Option<i64>>,
    feedbacks: Vec<TransportLayerCc>,
}

impl Harness {
    fn record(&mut self, rec: &mut TwccRecorder, seq: u16, t: i64) {
        self.truth.entry(seq).or_insert(t);
        rec.record(seq, t);
    }

    /// Writes feedback until nothing is new; returns how many packets were written.
    fn flush(&mut self, rec: &mut TwccRecorder, out: &mut [u8]) -> usize {
        let mut written = 0;
        while let Some(n) = rec.write_feedback(out, 0x1111, 0x2222) {
            assert!(n <= out.len() && n % 4 == 0);
            let buf = &out[..n];
            let (fb, theirs) = decode_theirs(buf);
            assert_eq!((fb.sender_ssrc, fb.media_ssrc), (0x1111, 0x2222));
            // webrtc-rs reads the 24-bit reference time as unsigned, we read it as signed
            // (as the draft says): equal modulo the reference time's period.
            let ours: Vec<_> = decode_ours(buf).into_iter().map(wrap).collect();
            assert_eq!(ours, theirs.iter().copied().map(wrap).collect::<Vec<_>>());
            let [Packet::TransportCc {
                base_sequence,
                status_count,
                raw,
                ..
            }] = tr::packets(buf).collect::<Result<Vec<_>, _>>().unwrap()[..]
            else {
                panic!("not transport-cc");
            };
            assert_eq!(
                (base_sequence, status_count),
                (fb.base_sequence_number, fb.packet_status_count)
            );
            assert_eq!(raw, buf);
            self.reported.extend(theirs);
            self.feedbacks.push(fb);
            written += 1;
        }
        written
    }

    /// Every recorded packet is reported received with its arrival to within 250 µs, and
    /// every other reported packet is reported lost.
    fn check(&self) {
        for (seq, t) in &self.truth {
            let reported = self.reported.get(seq).copied().flatten();
            let r = reported.unwrap_or_else(|| panic!("seq {seq} not reported received"));
            assert!(
                (t - r).rem_euclid(REFERENCE_PERIOD_US) < 250,
                "seq {seq}: arrival {t}, reported {r}"
            );
        }
        for (seq, r) in &self.reported {
            if !self.truth.contains_key(seq) {
                assert_eq!(*r, None, "seq {seq} never arrived but reported received");
            }
        }
        for (i, fb) in self.feedbacks.iter().enumerate() {
            assert_eq!(usize::from(fb.fb_pkt_count), i % 256);
        }
    }
}

#[test]
fn sequential_packets_one_run_length_chunk() {
    let mut rec = TwccRecorder::new(1024);
    let mut h = Harness::default();
    for i in 0..1000u16 {
        h.record(&mut rec, i, 5_000_000 + i64::from(i) * 1000);
    }
    let mut out = [0u8; 1500];
    assert_eq!(h.flush(&mut rec, &mut out), 1);
    h.check();
    let fb = &h.feedbacks[0];
    assert_eq!((fb.base_sequence_number, fb.packet_status_count), (0, 1000));
    assert_eq!(fb.reference_time, 5_000_000 / 64_000);
    assert_eq!(
        fb.packet_chunks,
        [PacketStatusChunk::RunLengthChunk(RunLengthChunk {
            type_tcc: StatusChunkTypeTcc::RunLengthChunk,
            packet_status_symbol: SymbolTypeTcc::PacketReceivedSmallDelta,
            run_length: 1000,
        })]
    );
    assert_eq!(rec.write_feedback(&mut out, 1, 2), None, "nothing new");
}

#[test]
fn wrap_around_and_reordering() {
    let mut rec = TwccRecorder::new(256);
    let mut h = Harness::default();
    let order = [65530u16, 65532, 65531, 65533, 0, 65535, 65534, 2, 1, 3, 4];
    for (i, &seq) in order.iter().enumerate() {
        h.record(&mut rec, seq, 1_000_000 + i as i64 * 700);
    }
    let mut out = [0u8; 256];
    assert_eq!(h.flush(&mut rec, &mut out), 1);
    h.check();
    let fb = &h.feedbacks[0];
    assert_eq!(
        (fb.base_sequence_number, fb.packet_status_count),
        (65530, 11)
    );
    // Reordered packets produce negative (large) deltas.
    assert!(fb
        .recv_deltas
        .iter()
        .any(|d| d.type_tcc_packet == SymbolTypeTcc::PacketReceivedLargeDelta && d.delta < 0));
}

#[test]
fn duplicates_keep_first_arrival() {
    let mut rec = TwccRecorder::new(64);
    let mut h = Harness::default();
    h.record(&mut rec, 10, 100_000);
    h.record(&mut rec, 11, 101_000);
    h.record(&mut rec, 10, 150_000);
    let mut out = [0u8; 128];
    h.flush(&mut rec, &mut out);
    h.check();
    assert_eq!(h.feedbacks[0].packet_status_count, 2);
    // A duplicate of an already reported packet opens no new feedback.
    rec.record(11, 200_000);
    assert_eq!(rec.write_feedback(&mut out, 1, 2), None);
}

#[test]
fn long_lost_run_and_mixed_vectors() {
    let mut rec = TwccRecorder::new(4096);
    let mut h = Harness::default();
    let mut t = 2_000_000;
    h.record(&mut rec, 100, t);
    // 1999 lost (mostly one run-length chunk), then alternating received/lost (one-bit vectors), then big jitter (two-bit).
    for seq in (2100u16..2200).step_by(2) {
        t += 500;
        h.record(&mut rec, seq, t);
    }
    for seq in 2200u16..2230 {
        t += if seq % 3 == 0 { 100_000 } else { 1_000 };
        if seq % 5 != 0 {
            h.record(&mut rec, seq, t);
        }
    }
    let mut out = [0u8; 1500];
    assert_eq!(h.flush(&mut rec, &mut out), 1);
    h.check();
    let fb = &h.feedbacks[0];
    assert_eq!(
        (fb.base_sequence_number, fb.packet_status_count),
        (100, 2130)
    );
    assert!(fb.packet_chunks.iter().any(|c| matches!(c,
        PacketStatusChunk::RunLengthChunk(r)
            if r.packet_status_symbol == SymbolTypeTcc::PacketNotReceived && r.run_length > 1900)));
    let vector = |size| {
        fb.packet_chunks
            .iter()
            .any(|c| matches!(c, PacketStatusChunk::StatusVectorChunk(v) if v.symbol_size == size))
    };
    assert!(vector(SymbolSizeTypeTcc::OneBit));
    assert!(vector(SymbolSizeTypeTcc::TwoBit));
    // Compact: 100 alternating statuses need ~8 one-bit chunks, not 100.
    assert!(
        fb.packet_chunks.len() < 30,
        "{} chunks",
        fb.packet_chunks.len()
    );
}

#[test]
fn gap_beyond_capacity_is_clamped() {
    let mut rec = TwccRecorder::new(64);
    let mut h = Harness::default();
    for seq in 0..10 {
        h.record(&mut rec, seq, 1_000_000 + i64::from(seq) * 1000);
    }
    let mut out = [0u8; 512];
    h.flush(&mut rec, &mut out);
    for seq in 1000..1010 {
        h.record(&mut rec, seq, 2_000_000 + i64::from(seq) * 1000);
    }
    assert_eq!(h.flush(&mut rec, &mut out), 1);
    h.check();
    let fb = &h.feedbacks[1];
    // The ring holds 64 packets: the feedback starts 63 before the highest.
    assert_eq!(
        (fb.base_sequence_number, fb.packet_status_count),
        (1009 - 63, 64)
    );
}

#[test]
fn huge_delta_starts_a_new_feedback() {
    let mut rec = TwccRecorder::new(64);
    let mut h = Harness::default();
    h.record(&mut rec, 0, 1_000_000);
    h.record(&mut rec, 1, 1_010_000);
    h.record(&mut rec, 2, 21_000_000); // 20 s later: beyond the ±8.19 s delta range.
    h.record(&mut rec, 3, 21_001_000);
    let mut out = [0u8; 256];
    assert_eq!(h.flush(&mut rec, &mut out), 2);
    h.check();
    assert_eq!(h.feedbacks[0].packet_status_count, 2);
    assert_eq!(h.feedbacks[1].base_sequence_number, 2);
    assert_eq!(h.feedbacks[1].fb_pkt_count, 1);
}

#[test]
fn late_packet_after_loss_report_is_corrected() {
    let mut rec = TwccRecorder::new(128);
    let mut h = Harness::default();
    for seq in [0u16, 1, 3, 4] {
        h.record(&mut rec, seq, 3_000_000 + i64::from(seq) * 2000);
    }
    let mut out = [0u8; 256];
    h.flush(&mut rec, &mut out);
    assert_eq!(h.reported[&2], None);
    h.record(&mut rec, 2, 3_050_000);
    assert_eq!(h.flush(&mut rec, &mut out), 1);
    h.check();
    assert_eq!(h.feedbacks[1].base_sequence_number, 2);
}

#[test]
fn small_output_buffer_splits_feedback() {
    let mut rec = TwccRecorder::new(1024);
    let mut h = Harness::default();
    for seq in 0..300u16 {
        if seq % 3 != 1 {
            h.record(&mut rec, seq, 4_000_000 + i64::from(seq) * 3000);
        }
    }
    let mut tiny = [0u8; 23];
    assert_eq!(
        rec.write_feedback(&mut tiny, 1, 2),
        None,
        "cannot hold one packet"
    );
    let mut out = [0u8; 48];
    assert!(h.flush(&mut rec, &mut out) > 3);
    h.check();
}

#[test]
fn heap_is_fixed_at_construction() {
    let mut rec = TwccRecorder::new(1024);
    let before = rec.heap_bytes();
    assert_eq!(before, 1024 * 8);
    let mut out = [0u8; 1500];
    for i in 0..100_000u32 {
        rec.record(i as u16, i64::from(i) * 100);
        if i % 97 == 0 {
            rec.write_feedback(&mut out, 1, 2);
        }
    }
    assert_eq!(rec.heap_bytes(), before);
    assert_eq!(TwccRecorder::new(0).heap_bytes(), 16 * 8);
}

#[test]
fn randomized_loss_reorder_duplicates_and_jumps() {
    for seed in 1..=20u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let mut rec = TwccRecorder::new(1024);
        let mut h = Harness::default();
        let mut out = [0u8; 1200];
        let mut t = rng.below(1 << 40) as i64;
        let mut seq = 65_000u16.wrapping_add(rng.below(2000) as u16);
        let mut delayed: Vec<(u16, u32)> = Vec::new();
        for step in 0..3000u32 {
            t += rng.below(4000) as i64;
            if rng.below(200) == 0 {
                t += 9_000_000;
            }
            match rng.below(100) {
                0..=9 => {}
                10..=14 => delayed.push((seq, step + 1 + rng.below(60) as u32)),
                15..=16 => {
                    h.record(&mut rec, seq, t);
                    h.record(&mut rec, seq, t + 10);
                }
                _ => h.record(&mut rec, seq, t),
            }
            seq = seq.wrapping_add(1);
            while let Some(i) = delayed.iter().position(|&(_, due)| due <= step) {
                let (late, _) = delayed.swap_remove(i);
                h.record(&mut rec, late, t);
            }
            if rng.below(40) == 0 {
                h.flush(&mut rec, &mut out);
            }
        }
        for (late, _) in delayed.drain(..) {
            h.record(&mut rec, late, t);
        }
        h.flush(&mut rec, &mut out);
        h.check();
    }
}

#[test]
fn webrtc_built_feedback_is_decoded() {
    use SymbolTypeTcc::{
        PacketNotReceived as N, PacketReceivedLargeDelta as L, PacketReceivedSmallDelta as S,
    };
    let one_bit = vec![N, S, N, N, S, S, N, N, N, N, N, N, N, S];
    let two_bit = vec![L, N, S, L, N, N, N];
    let mut recv_deltas = Vec::new();
    let deltas_us = [
        250i64, 0, 63_750, 1000, 2000, 500, 3000, -8_192_000, 750, 8_191_750,
    ];
    let symbols: Vec<_> = [S, S, S]
        .into_iter()
        .chain(one_bit.iter().copied())
        .chain(two_bit.iter().copied())
        .collect();
    let mut d = deltas_us.iter();
    for s in &symbols {
        if *s != N {
            recv_deltas.push(RecvDelta {
                type_tcc_packet: *s,
                delta: *d.next().unwrap(),
            });
        }
    }
    assert!(d.next().is_none());
    let fb = TransportLayerCc {
        sender_ssrc: 1,
        media_ssrc: 2,
        base_sequence_number: 65534,
        packet_status_count: 22,
        reference_time: 100,
        fb_pkt_count: 3,
        packet_chunks: vec![
            PacketStatusChunk::RunLengthChunk(RunLengthChunk {
                type_tcc: StatusChunkTypeTcc::RunLengthChunk,
                packet_status_symbol: S,
                run_length: 3,
            }),
            PacketStatusChunk::StatusVectorChunk(StatusVectorChunk {
                type_tcc: StatusChunkTypeTcc::StatusVectorChunk,
                symbol_size: SymbolSizeTypeTcc::OneBit,
                symbol_list: one_bit,
            }),
            PacketStatusChunk::StatusVectorChunk(StatusVectorChunk {
                type_tcc: StatusChunkTypeTcc::StatusVectorChunk,
                symbol_size: SymbolSizeTypeTcc::TwoBit,
                symbol_list: two_bit,
            }),
        ],
        recv_deltas,
    };
    let buf = fb.marshal().unwrap();
    let mut statuses = Vec::new();
    tr::for_each_twcc_status(&buf, |seq, received| statuses.push((seq, received))).unwrap();
    // 22 of the 24 symbols are covered; the last two vector slots are beyond the count.
    let expected: Vec<_> = symbols[..22]
        .iter()
        .enumerate()
        .map(|(i, s)| (65534u16.wrapping_add(i as u16), *s != N))
        .collect();
    assert_eq!(statuses, expected);
    let mut t = 100 * 64_000;
    let mut d = deltas_us.iter();
    let expected: Vec<_> = symbols[..22]
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let seq = 65534u16.wrapping_add(i as u16);
            if *s == N {
                (seq, None)
            } else {
                t += d.next().unwrap();
                (seq, Some(t))
            }
        })
        .collect();
    assert_eq!(decode_ours(&buf), expected);
}

#[test]
fn decoder_rejects_malformed_feedback() {
    let mut rec = TwccRecorder::new(64);
    for seq in 0..20 {
        rec.record(seq, 1_000_000 + i64::from(seq) * 50_000);
    }
    let mut out = [0u8; 256];
    let n = rec.write_feedback(&mut out, 1, 2).unwrap();
    let buf = &mut out[..n];
    let mut calls = 0;
    // Truncated (length field says more than there is).
    assert_eq!(
        tr::for_each_twcc_status(&buf[..n - 4], |_, _| calls += 1),
        Err(Error::TooShort)
    );
    // Not a transport-cc packet.
    let mut pli = [0u8; 12];
    tr::write_pli(&mut pli, 1, 2).unwrap();
    assert_eq!(
        tr::for_each_twcc_status(&pli, |_, _| calls += 1),
        Err(Error::Unsupported)
    );
    // A status count larger than the chunks and deltas present.
    buf[14..16].copy_from_slice(&5000u16.to_be_bytes());
    assert!(tr::for_each_twcc_arrival(buf, |_, _| calls += 1).is_err());
    assert_eq!(calls, 0, "nothing reported from a malformed packet");
}
