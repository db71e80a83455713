//! Accounting of what the bridge sends us, after SRTP decryption: per-stream counters with
//! payload verification, RTX unwrapping, and the RTCP feedback we care about.

use bytes::Bytes;
use rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtcp::payload_feedbacks::receiver_estimated_maximum_bitrate::ReceiverEstimatedMaximumBitrate;
use rtcp::receiver_report::ReceiverReport;
use rtcp::sender_report::SenderReport;
use rtcp::transport_feedbacks::transport_layer_cc::{
    PacketStatusChunk, SymbolTypeTcc, TransportLayerCc,
};
use rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
use webrtc_util::Unmarshal;

use crate::media::{parse_vp8, verify_trailer};
use crate::Stats;

/// Payload types that tell audio, video and retransmissions apart.
#[derive(Clone, Copy, Debug)]
pub struct PayloadTypes {
    pub opus: u8,
    pub vp8: u8,
    pub rtx: u8,
}

/// Accounts one decrypted RTP packet.
pub fn on_rtp(stats: &mut Stats, pts: PayloadTypes, packet: &[u8], now_us: u64) {
    let mut buf = packet;
    let Ok(p) = rtp::packet::Packet::unmarshal(&mut buf) else {
        stats.rtp_errors += 1;
        return;
    };
    let ssrc = p.header.ssrc;
    let seq = p.header.sequence_number;
    let payload = &p.payload[..];
    if payload.is_empty() {
        stats.padding_packets += 1;
        return;
    }
    if p.header.payload_type == pts.rtx {
        on_rtx(stats, ssrc, payload);
        return;
    }
    let s = stats.received.entry(ssrc).or_default();
    s.packets += 1;
    s.bytes += payload.len() as u64;
    if s.packets == 1 || is_newer(seq, s.highest_seq) {
        s.highest_seq = seq;
    }
    match verify_trailer(payload) {
        Ok(t) if *s.sender.get_or_insert(t.ssrc) == t.ssrc => {
            let offset = seq.wrapping_sub(t.seq);
            // The sender's own numbering jumped: a new session of the same source, which a
            // bridge renumbers to continue this stream.
            let new_session = s
                .last_sender_seq
                .is_some_and(|last| (t.seq.wrapping_sub(last) as i16).unsigned_abs() > 1_000);
            if offset != s.sequence_offset && new_session {
                s.sequence_offset = offset;
                s.renumbered += 1;
            }
            if offset == s.sequence_offset {
                s.last_sender_seq = Some(t.seq);
                s.last_latency_us = now_us as i64 - t.sent_at_us as i64;
            } else {
                s.payload_errors += 1;
            }
        }
        _ => s.payload_errors += 1,
    }
    if p.header.payload_type == pts.vp8 {
        if parse_vp8(payload).is_some_and(|v| v.keyframe) {
            s.keyframes += 1;
        }
        s.frames += u64::from(p.header.marker);
    }
}

/// RFC 4588: the payload starts with the original sequence number, then the original payload.
fn on_rtx(stats: &mut Stats, rtx_ssrc: u32, payload: &[u8]) {
    let (Some(osn), Some(inner)) = (payload.get(..2), payload.get(2..)) else {
        stats.rtx_payload_errors += 1;
        return;
    };
    if inner.is_empty() {
        stats.padding_packets += 1;
        return;
    }
    let osn = u16::from_be_bytes([osn[0], osn[1]]);
    stats.rtx_received.push((rtx_ssrc, osn));
    // The OSN is in this receiver's numbering of the original stream, the trailer in the sender's.
    let in_our_numbering = |t: &crate::media::Trailer| {
        let offset = stats
            .received
            .values()
            .find(|s| s.sender == Some(t.ssrc))
            .map_or(0, |s| s.sequence_offset);
        t.seq.wrapping_add(offset) == osn
    };
    if !verify_trailer(inner).is_ok_and(|t| in_our_numbering(&t)) {
        stats.rtx_payload_errors += 1;
    }
}

/// True when `a` is after `b` in RTP sequence order (modulo 2^16).
fn is_newer(a: u16, b: u16) -> bool {
    a != b && a.wrapping_sub(b) < 0x8000
}

/// Accounts one decrypted (compound) RTCP packet; returns the media SSRCs a keyframe was
/// requested for (PLI or FIR).
pub fn on_rtcp(stats: &mut Stats, packet: &[u8]) -> Vec<u32> {
    let mut keyframe_for = Vec::new();
    let mut raw = Bytes::copy_from_slice(packet);
    let Ok(packets) = rtcp::packet::unmarshal(&mut raw) else {
        stats.rtcp_errors += 1;
        return keyframe_for;
    };
    for p in &packets {
        let any = p.as_any();
        if let Some(pli) = any.downcast_ref::<PictureLossIndication>() {
            *stats.plis_received.entry(pli.media_ssrc).or_default() += 1;
            keyframe_for.push(pli.media_ssrc);
        } else if let Some(fir) = any.downcast_ref::<FullIntraRequest>() {
            for e in &fir.fir {
                *stats.plis_received.entry(e.ssrc).or_default() += 1;
                keyframe_for.push(e.ssrc);
            }
        } else if let Some(cc) = any.downcast_ref::<TransportLayerCc>() {
            on_twcc(stats, cc);
        } else if let Some(rr) = any.downcast_ref::<ReceiverReport>() {
            stats.receiver_reports += 1;
            for b in &rr.reports {
                stats.report_blocks.insert(b.ssrc, b.clone());
            }
        } else if let Some(sr) = any.downcast_ref::<SenderReport>() {
            stats.sender_reports += 1;
            for b in &sr.reports {
                stats.report_blocks.insert(b.ssrc, b.clone());
            }
        } else if let Some(remb) = any.downcast_ref::<ReceiverEstimatedMaximumBitrate>() {
            stats.remb_bps = Some(remb.bitrate.max(0.0) as u64);
        } else if let Some(nack) = any.downcast_ref::<TransportLayerNack>() {
            stats.nacks_received += nack
                .nacks
                .iter()
                .map(|n| n.packet_list().len() as u64)
                .sum::<u64>();
        }
    }
    keyframe_for
}

/// Records the status of every sequence number a transport-cc feedback covers. A number once
/// reported received is never moved back to "lost".
fn on_twcc(stats: &mut Stats, cc: &TransportLayerCc) {
    stats.twcc_feedbacks += 1;
    let mut seq = cc.base_sequence_number;
    let mut remaining = usize::from(cc.packet_status_count);
    let mut record = |symbol: SymbolTypeTcc| {
        if remaining == 0 {
            return;
        }
        remaining -= 1;
        if symbol == SymbolTypeTcc::PacketNotReceived {
            if !stats.twcc_reported_received.contains(&seq) {
                stats.twcc_reported_lost.insert(seq);
            }
        } else {
            stats.twcc_reported_lost.remove(&seq);
            stats.twcc_reported_received.insert(seq);
        }
        seq = seq.wrapping_add(1);
    };
    for chunk in &cc.packet_chunks {
        match chunk {
            PacketStatusChunk::RunLengthChunk(c) => {
                for _ in 0..c.run_length {
                    record(c.packet_status_symbol);
                }
            }
            PacketStatusChunk::StatusVectorChunk(c) => {
                for s in &c.symbol_list {
                    record(*s);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::{append_trailer, build_rtp, RtpFields, Trailer};
    use rtcp::payload_feedbacks::full_intra_request::FirEntry;
    use rtcp::reception_report::ReceptionReport;
    use rtcp::transport_feedbacks::transport_layer_cc::{
        RecvDelta, RunLengthChunk, StatusChunkTypeTcc, StatusVectorChunk, SymbolSizeTypeTcc,
    };
    use webrtc_util::Marshal;

    const PTS: PayloadTypes = PayloadTypes {
        opus: 111,
        vp8: 100,
        rtx: 96,
    };

    fn packet(pt: u8, ssrc: u32, seq: u16, payload: &[u8]) -> Vec<u8> {
        build_rtp(
            &RtpFields {
                payload_type: pt,
                marker: false,
                seq,
                timestamp: 1,
                ssrc,
                twcc_ext_id: 5,
                twcc_seq: 1,
                audio_level: None,
            },
            payload,
        )
    }

    fn payload(ssrc: u32, seq: u16, sent_at_us: u64) -> Vec<u8> {
        let mut p = vec![0x78; 60];
        append_trailer(
            &mut p,
            Trailer {
                ssrc,
                seq,
                sent_at_us,
            },
        );
        p
    }

    #[test]
    fn counts_verifies_and_times_rtp() {
        let mut s = Stats::default();
        on_rtp(
            &mut s,
            PTS,
            &packet(111, 7, 65535, &payload(7, 65535, 1_000)),
            1_500,
        );
        on_rtp(
            &mut s,
            PTS,
            &packet(111, 7, 0, &payload(7, 0, 2_000)),
            2_700,
        );
        on_rtp(
            &mut s,
            PTS,
            &packet(111, 7, 65534, &payload(7, 65534, 0)),
            3_000,
        );
        let a = &s.received[&7];
        assert_eq!(a.packets, 3);
        assert_eq!(a.bytes, 3 * 82);
        assert_eq!(a.payload_errors, 0);
        assert_eq!(a.highest_seq, 0, "wraps forward, ignores the late packet");
        assert_eq!(a.last_latency_us, 3_000);
    }

    #[test]
    fn flags_tampered_or_mislabelled_payloads() {
        let mut s = Stats::default();
        let mut tampered = payload(7, 1, 0);
        tampered[3] ^= 0x40;
        on_rtp(&mut s, PTS, &packet(111, 7, 1, &tampered), 0);
        on_rtp(&mut s, PTS, &packet(111, 7, 2, &payload(7, 3, 0)), 0); // wrong seq
        on_rtp(&mut s, PTS, &packet(111, 7, 4, &payload(8, 4, 0)), 0); // wrong ssrc
        on_rtp(&mut s, PTS, &packet(111, 7, 5, &payload(7, 5, 0)), 0);
        assert_eq!(s.received[&7].payload_errors, 3);
        assert_eq!(s.received[&7].packets, 4);
    }

    #[test]
    fn a_new_sender_session_may_be_renumbered_once_a_scrambled_one_may_not() {
        let mut s = Stats::default();
        on_rtp(
            &mut s,
            PTS,
            &packet(111, 7, 65_535, &payload(7, 65_535, 0)),
            0,
        );
        on_rtp(&mut s, PTS, &packet(111, 7, 0, &payload(7, 0, 0)), 0);
        // The sender starts over at 20,000; the bridge continues at 1, 2.
        on_rtp(&mut s, PTS, &packet(111, 7, 1, &payload(7, 20_000, 0)), 0);
        on_rtp(&mut s, PTS, &packet(111, 7, 2, &payload(7, 20_001, 0)), 0);
        let a = &s.received[&7];
        assert_eq!((a.payload_errors, a.renumbered), (0, 1));
        assert_eq!(a.sequence_offset, 1u16.wrapping_sub(20_000));
        // Same sender session, numbers off by one: damaged, not renumbered.
        on_rtp(&mut s, PTS, &packet(111, 7, 4, &payload(7, 20_002, 0)), 0);
        let a = &s.received[&7];
        assert_eq!((a.payload_errors, a.renumbered), (1, 1));
    }

    #[test]
    fn counts_vp8_keyframes() {
        let mut s = Stats::default();
        let mut p = crate::media::vp8_descriptor(true, 1).to_vec();
        p.extend(crate::media::vp8_frame_header(true, 100));
        append_trailer(
            &mut p,
            Trailer {
                ssrc: 9,
                seq: 1,
                sent_at_us: 0,
            },
        );
        on_rtp(&mut s, PTS, &packet(100, 9, 1, &p), 0);
        // The same bytes as audio are not a key frame.
        on_rtp(&mut s, PTS, &packet(111, 10, 1, &p), 0);
        assert_eq!(s.received[&9].keyframes, 1);
        assert_eq!(s.received[&10].keyframes, 0);
    }

    #[test]
    fn unwraps_rtx_and_checks_the_original_sequence() {
        let mut s = Stats::default();
        let mut good = vec![0x12, 0x34];
        good.extend(payload(7, 0x1234, 0));
        on_rtp(&mut s, PTS, &packet(96, 70, 1, &good), 0);
        let mut wrong_osn = vec![0x12, 0x35];
        wrong_osn.extend(payload(7, 0x1234, 0));
        on_rtp(&mut s, PTS, &packet(96, 70, 2, &wrong_osn), 0);
        on_rtp(&mut s, PTS, &packet(96, 70, 3, &[0x01]), 0);
        on_rtp(&mut s, PTS, &packet(96, 70, 4, &[0x01, 0x02]), 0);
        assert_eq!(s.rtx_received, [(70, 0x1234), (70, 0x1235)]);
        assert_eq!(s.rtx_payload_errors, 2);
        assert_eq!(s.padding_packets, 1);
        assert!(s.received.is_empty(), "RTX is not counted as media");
    }

    #[test]
    fn malformed_rtp_and_rtcp_are_counted_not_fatal() {
        let mut s = Stats::default();
        on_rtp(&mut s, PTS, &[0x80, 0x60, 0, 1], 0);
        assert_eq!(
            on_rtcp(&mut s, &[0x81, 0xce, 0xff, 0xff, 1, 2]),
            Vec::<u32>::new()
        );
        assert_eq!((s.rtp_errors, s.rtcp_errors), (1, 1));
    }

    fn compound(packets: Vec<Box<dyn rtcp::packet::Packet + Send + Sync>>) -> Vec<u8> {
        rtcp::packet::marshal(&packets).unwrap().to_vec()
    }

    #[test]
    fn records_keyframe_requests_reports_and_remb() {
        let mut s = Stats::default();
        let raw = compound(vec![
            Box::new(ReceiverReport {
                ssrc: 1,
                reports: vec![ReceptionReport {
                    ssrc: 42,
                    fraction_lost: 12,
                    ..Default::default()
                }],
                ..Default::default()
            }),
            Box::new(PictureLossIndication {
                sender_ssrc: 1,
                media_ssrc: 42,
            }),
            Box::new(FullIntraRequest {
                sender_ssrc: 1,
                media_ssrc: 0,
                fir: vec![FirEntry {
                    ssrc: 43,
                    sequence_number: 1,
                }],
            }),
            Box::new(ReceiverEstimatedMaximumBitrate {
                sender_ssrc: 1,
                bitrate: 1_500_000.0,
                ssrcs: vec![42],
            }),
            Box::new(TransportLayerNack {
                sender_ssrc: 1,
                media_ssrc: 42,
                nacks: vec![rtcp::transport_feedbacks::transport_layer_nack::NackPair {
                    packet_id: 10,
                    lost_packets: 0b101,
                }],
            }),
        ]);
        assert_eq!(on_rtcp(&mut s, &raw), [42, 43]);
        assert_eq!(s.plis_received[&42], 1);
        assert_eq!(s.plis_received[&43], 1);
        assert_eq!(s.receiver_reports, 1);
        assert_eq!(s.report_blocks[&42].fraction_lost, 12);
        assert_eq!(s.nacks_received, 3);
        let remb = s.remb_bps.unwrap();
        assert!((1_490_000..=1_510_000).contains(&remb), "{remb}");

        let sr = compound(vec![Box::new(SenderReport {
            ssrc: 5,
            ..Default::default()
        })]);
        on_rtcp(&mut s, &sr);
        assert_eq!(s.sender_reports, 1);
    }

    #[test]
    fn records_transport_cc_coverage() {
        use SymbolTypeTcc::{PacketNotReceived as L, PacketReceivedSmallDelta as R};
        let cc = |base: u16, count: u16, chunks: Vec<PacketStatusChunk>, received: usize| {
            TransportLayerCc {
                sender_ssrc: 1,
                media_ssrc: 2,
                base_sequence_number: base,
                packet_status_count: count,
                reference_time: 0,
                fb_pkt_count: 0,
                packet_chunks: chunks,
                recv_deltas: (0..received)
                    .map(|_| RecvDelta {
                        type_tcc_packet: R,
                        delta: 250,
                    })
                    .collect(),
            }
        };
        let first = cc(
            65534,
            9,
            vec![
                PacketStatusChunk::RunLengthChunk(RunLengthChunk {
                    type_tcc: StatusChunkTypeTcc::RunLengthChunk,
                    packet_status_symbol: R,
                    run_length: 3,
                }),
                PacketStatusChunk::StatusVectorChunk(StatusVectorChunk {
                    type_tcc: StatusChunkTypeTcc::StatusVectorChunk,
                    symbol_size: SymbolSizeTypeTcc::TwoBit,
                    // The last symbol lies beyond packet_status_count and must be ignored.
                    symbol_list: vec![L, R, L, L, L, L, L],
                }),
            ],
            4,
        );
        let mut s = Stats::default();
        on_rtcp(&mut s, &first.marshal().unwrap());
        assert_eq!(s.twcc_feedbacks, 1);
        assert_eq!(
            s.twcc_reported_received.iter().copied().collect::<Vec<_>>(),
            [0, 2, 65534, 65535]
        );
        assert_eq!(
            s.twcc_reported_lost.iter().copied().collect::<Vec<_>>(),
            [1, 3, 4, 5, 6]
        );
        // A later feedback that reports 1 received moves it out of "lost", not vice versa.
        let second = cc(
            0,
            2,
            vec![PacketStatusChunk::StatusVectorChunk(StatusVectorChunk {
                type_tcc: StatusChunkTypeTcc::StatusVectorChunk,
                symbol_size: SymbolSizeTypeTcc::TwoBit,
                symbol_list: vec![L, R, L, L, L, L, L],
            })],
            1,
        );
        on_rtcp(&mut s, &second.marshal().unwrap());
        assert!(s.twcc_reported_received.contains(&0));
        assert!(!s.twcc_reported_lost.contains(&0));
        assert!(s.twcc_reported_received.contains(&1));
        assert!(!s.twcc_reported_lost.contains(&1));
    }
}
