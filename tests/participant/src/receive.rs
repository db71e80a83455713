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
use crate::{Stats, StreamStats};

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
    let s = stats.received.entry(ssrc).or_insert_with(StreamStats::default);
    s.packets += 1;
    s.bytes += payload.len() as u64;
    if s.packets == 1 || is_newer(seq, s.highest_seq) {
        s.highest_seq = seq;
    }
    match verify_trailer(payload) {
        Ok(t) if t.ssrc == ssrc && t.seq == seq => {
            s.last_latency_us = now_us as i64 - t.sent_at_us as i64;
        }
        _ => s.payload_errors += 1,
    }
    if p.header.payload_type == pts.vp8 && parse_vp8(payload).is_some_and(|v| v.keyframe) {
        s.keyframes += 1;
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
    if !verify_trailer(inner).is_ok_and(|t| t.seq == osn) {
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
