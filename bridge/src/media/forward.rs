//! The path of one RTP packet through the bridge, and the RTCP that keeps both hops healthy.
//!
//! An SRTP packet from a sender is decrypted once, in the receive buffer. If its SSRC is a
//! signalled source that is forwarded, the plaintext is copied once per receiver into a send
//! slot, stamped with that receiver's transport-wide sequence number and encrypted with that
//! receiver's keys. No allocation, no lock.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tutti_rtp::rtcp::{self, Packet, ReportBlock};
use tutti_rtp::rtp;

use super::endpoint::Endpoint;
use super::stats::DropReason;
use super::udp::{SendBatch, SLOT};
use super::worker::MediaState;
use super::MediaKind;

/// A sender is asked for a keyframe at most this often, however many receivers ask.
const KEYFRAME_REQUEST_INTERVAL: Duration = Duration::from_millis(300);
/// Room kept at the end of a send slot for the SRTP/SRTCP tag and index.
const TAG_ROOM: usize = 32;
/// Bitrate announced in REMB to senders without transport-cc: the bridge does not estimate
/// bandwidth yet, so it only caps what a sender may ramp up to.
const REMB_BITRATE_BPS: u64 = 5_000_000;
/// RFC 3550: at most 31 report blocks in one RR.
const MAX_REPORT_BLOCKS: usize = 31;

fn kind_index(kind: MediaKind) -> usize {
    match kind {
        MediaKind::Audio => 0,
        MediaKind::Video => 1,
    }
}

impl MediaState {
    pub(super) fn on_media(
        &mut self,
        slot: usize,
        buf: &mut [u8],
        len: usize,
        from: SocketAddr,
        now: Instant,
        out: &mut SendBatch,
    ) {
        let Some(endpoint) = self.endpoints[slot].as_mut() else {
            return;
        };
        if !endpoint.is_connected() {
            self.counters.drop(DropReason::NotConnected);
            return;
        }
        let is_rtcp = rtp::is_rtcp(&buf[..len]);
        let Some(srtp) = endpoint.srtp_in.as_mut() else {
            self.counters.drop(DropReason::NotConnected);
            return;
        };
        let unprotected = if is_rtcp {
            srtp.unprotect_rtcp(buf, len)
        } else {
            srtp.unprotect_rtp(buf, len)
        };
        let len = match unprotected {
            Ok(n) => n,
            Err(e) => {
                self.counters.drop(match e {
                    tutti_srtp::Error::AuthFailed => DropReason::SrtpAuthFailed,
                    tutti_srtp::Error::Replayed => DropReason::SrtpReplayed,
                    _ => DropReason::SrtpInvalid,
                });
                return;
            }
        };
        endpoint.ice.note_media_received(from, now);
        if is_rtcp {
            self.counters.packets_in[2] += 1;
            self.counters.bytes_in[2] += len as u64;
            self.on_rtcp(slot, &buf[..len], now, out);
        } else {
            endpoint.remove_sender_local_extensions(&mut buf[..len]);
            self.on_rtp(slot, &buf[..len], now, out);
        }
    }

    fn on_rtp(&mut self, slot: usize, packet: &[u8], now: Instant, out: &mut SendBatch) {
        let arrival_us = self.micros(now);
        let Ok(header) = rtp::parse(packet) else {
            self.counters.drop(DropReason::RtpMalformed);
            return;
        };
        let Some(sender) = self.endpoints[slot].as_mut() else {
            return;
        };
        let Some(index) = sender.source_index(header.ssrc) else {
            self.counters.drop(DropReason::UnknownSsrc);
            return;
        };
        let kind = sender.sources[index].plan.kind;
        self.counters.packets_in[kind_index(kind)] += 1;
        self.counters.bytes_in[kind_index(kind)] += packet.len() as u64;
        let sender_twcc = sender.twcc_extension(kind);
        let origin = sender.tag;
        if let Some(id) = sender_twcc {
            if let Some(seq) = rtp::find_extension(packet, &header, id)
                .and_then(|r| rtp::read_u16_extension(packet, r))
            {
                sender.twcc.record(seq, arrival_us);
            }
        }
        let source = &mut sender.sources[index];
        source
            .stats
            .on_packet(header.sequence, header.timestamp, arrival_us);
        if source.plan.rtx_for.is_some() || header.payload_offset >= header.payload_end {
            // RTX and padding from a sender are probes or answers to nobody: the bridge answers
            // receivers' NACKs from its own cache.
            self.counters.rtx_consumed += 1;
            return;
        }
        if !source.plan.forwarded {
            self.counters.simulcast_layers_skipped += 1;
            return;
        }
        if let Some(cache) = source.cache.as_mut() {
            cache.insert(header.sequence, packet);
        }
        let (packets, bytes) = self.fan_out(slot, kind, out, |receiver, buf| {
            receiver.write_forwarded(packet, &header, origin, sender_twcc, kind, buf)
        });
        self.counters.packets_out[kind_index(kind)] += packets;
        self.counters.bytes_out[kind_index(kind)] += bytes;
    }

    fn on_rtcp(&mut self, slot: usize, packet: &[u8], now: Instant, out: &mut SendBatch) {
        for item in rtcp::packets(packet) {
            let Ok(item) = item else {
                self.counters.drop(DropReason::RtcpMalformed);
                return;
            };
            match item {
                Packet::SenderReport { ssrc, info, .. } => {
                    self.forward_sender_report(slot, ssrc, &info, now, out)
                }
                Packet::Pli { media_ssrc, .. } => {
                    self.counters.pli_received += 1;
                    self.request_keyframe(slot, media_ssrc, now, out);
                }
                Packet::Fir { entries, .. } => {
                    for (media_ssrc, _) in entries {
                        self.counters.pli_received += 1;
                        self.request_keyframe(slot, media_ssrc, now, out);
                    }
                }
                Packet::Nack {
                    media_ssrc, lost, ..
                } => {
                    for seq in lost {
                        self.counters.nack_received += 1;
                        self.retransmit(slot, media_ssrc, seq, out);
                    }
                }
                Packet::TransportCc { .. } => self.counters.transport_cc_feedback_received += 1,
                _ => {}
            }
        }
    }

    /// The owner of `media_ssrc` in the requester's conference.
    fn owner_of(&self, requester: usize, media_ssrc: u32) -> Option<usize> {
        let conference = self.endpoints[requester].as_ref()?.conference;
        let owner = *self.conferences[conference]
            .as_ref()?
            .ssrc_owner
            .get(&media_ssrc)?;
        (owner != requester).then_some(owner)
    }

    fn request_keyframe(
        &mut self,
        requester: usize,
        media_ssrc: u32,
        now: Instant,
        out: &mut SendBatch,
    ) {
        let Some(owner) = self.owner_of(requester, media_ssrc) else {
            return;
        };
        let Some(sender) = self.endpoints[owner].as_mut() else {
            return;
        };
        let Some(index) = sender.source_index(media_ssrc) else {
            return;
        };
        let source = &mut sender.sources[index];
        if source
            .last_keyframe_request
            .is_some_and(|t| now.duration_since(t) < KEYFRAME_REQUEST_INTERVAL)
        {
            self.counters.pli_rate_limited += 1;
            return;
        }
        source.last_keyframe_request = Some(now);
        let rtcp_ssrc = sender.rtcp_ssrc;
        let mut sent = false;
        out.push(|slot| {
            let body = &mut slot[..SLOT - TAG_ROOM];
            let rr = rtcp::write_receiver_report(body, rtcp_ssrc, &[]).ok()?;
            let pli = rtcp::write_pli(&mut body[rr..], rtcp_ssrc, media_ssrc).ok()?;
            let r = sender.protect_rtcp(slot, rr + pli);
            sent = r.is_some();
            r
        });
        if sent {
            self.counters.pli_sent += 1;
        }
    }

    /// Answers a receiver's NACK from the sender's cache: as RTX when the receiver negotiated it.
    fn retransmit(&mut self, requester: usize, media_ssrc: u32, seq: u16, out: &mut SendBatch) {
        let Some(owner) = self.owner_of(requester, media_ssrc) else {
            self.counters.nack_cache_misses += 1;
            return;
        };
        let Ok([Some(sender), Some(receiver)]) =
            self.endpoints.get_disjoint_mut([owner, requester])
        else {
            return;
        };
        let Some(index) = sender.source_index(media_ssrc) else {
            return;
        };
        let source = &sender.sources[index];
        // `seq` is in the receiver's numbering; the cache holds the sender's.
        let Some(original) = receiver
            .numbering
            .incoming(media_ssrc, seq, sender.tag)
            .and_then(|sent| source.cache.as_ref()?.get(sent))
        else {
            self.counters.nack_cache_misses += 1;
            return;
        };
        let Ok(mut header) = rtp::parse(original) else {
            return;
        };
        header.sequence = seq;
        let kind = source.plan.kind;
        let sender_twcc = sender.twcc_extension(kind);
        let rtx = source
            .plan
            .rtx_ssrc
            .zip(receiver.rtx_payload_type(header.payload_type));
        let mut sent = false;
        out.push(|slot| {
            let body = &mut slot[..SLOT - TAG_ROOM];
            let to = receiver.media_destination()?;
            let len = match rtx {
                Some((rtx_ssrc, rtx_pt)) => {
                    let rtx_seq = receiver.next_rtx_sequence(rtx_ssrc);
                    rtp::write_rtx(original, &header, rtx_ssrc, rtx_pt, rtx_seq, body).ok()?
                }
                None => {
                    body.get_mut(..original.len())?.copy_from_slice(original);
                    rtp::set_sequence(body, seq);
                    original.len()
                }
            };
            let written = rtp::parse(&body[..len]).ok()?;
            receiver.stamp_twcc(body, &written, sender_twcc, kind);
            let n = receiver.srtp_out.as_mut()?.protect_rtp(slot, len).ok()?;
            sent = true;
            Some((to, n))
        });
        if sent {
            self.counters.retransmissions_sent += 1;
        }
    }

    /// Receivers learn the sender's RTP/NTP timestamp mapping (lip sync) from its SR, passed on
    /// without the sender's report blocks (those describe the sender's own reception).
    fn forward_sender_report(
        &mut self,
        slot: usize,
        ssrc: u32,
        info: &rtcp::SenderInfo,
        now: Instant,
        out: &mut SendBatch,
    ) {
        let arrival_us = self.micros(now);
        let Some(sender) = self.endpoints[slot].as_mut() else {
            return;
        };
        let Some(index) = sender.source_index(ssrc) else {
            return;
        };
        let source = &mut sender.sources[index];
        source.stats.on_sender_report(info.ntp_time, arrival_us);
        if !source.plan.forwarded || source.plan.rtx_for.is_some() {
            return;
        }
        let kind = source.plan.kind;
        let (reports, _) = self.fan_out(slot, kind, out, |receiver, buf| {
            let n = rtcp::write_sender_report(&mut buf[..SLOT - TAG_ROOM], ssrc, info, &[]).ok()?;
            receiver.protect_rtcp(buf, n)
        });
        self.counters.sender_reports_forwarded += reports;
    }

    /// Sends one datagram, written per receiver by `write`, to every other member of the
    /// sender's conference that receives `kind`; returns the datagrams and bytes sent.
    fn fan_out(
        &mut self,
        sender: usize,
        kind: MediaKind,
        out: &mut SendBatch,
        mut write: impl FnMut(&mut Endpoint, &mut [u8]) -> Option<(SocketAddr, usize)>,
    ) -> (u64, u64) {
        let Some(conference) = self.endpoints[sender].as_ref().map(|e| e.conference) else {
            return (0, 0);
        };
        let Some(conference) = self.conferences[conference].as_ref() else {
            return (0, 0);
        };
        let (mut packets, mut bytes) = (0, 0);
        for &member in &conference.members {
            if member == sender {
                continue;
            }
            let Some(receiver) = self.endpoints[member].as_mut() else {
                continue;
            };
            if !receiver.receives(kind) {
                continue;
            }
            let mut sent = 0;
            out.push(|buf| {
                let written = write(receiver, buf);
                sent = written.map_or(0, |w| w.1);
                written
            });
            if sent > 0 {
                packets += 1;
                bytes += sent as u64;
            }
        }
        (packets, bytes)
    }

    /// transport-cc feedback to every sender that negotiated it: what arrived since the last one.
    pub(super) fn send_transport_feedback(&mut self, out: &mut SendBatch) {
        for endpoint in self.endpoints.iter_mut().flatten() {
            if !endpoint.is_connected() || !endpoint.wants_transport_cc() {
                continue;
            }
            let media_ssrc = endpoint.sources.first().map_or(0, |s| s.plan.ssrc);
            let rtcp_ssrc = endpoint.rtcp_ssrc;
            let mut sent = false;
            out.push(|slot| {
                let body = &mut slot[..SLOT - TAG_ROOM];
                let rr = rtcp::write_receiver_report(body, rtcp_ssrc, &[]).ok()?;
                let fb = endpoint
                    .twcc
                    .write_feedback(&mut body[rr..], rtcp_ssrc, media_ssrc)?;
                let r = endpoint.protect_rtcp(slot, rr + fb);
                sent = r.is_some();
                r
            });
            if sent {
                self.counters.transport_cc_feedback_sent += 1;
            }
        }
    }

    /// Receiver reports for every sender's sources; REMB for senders without transport-cc.
    pub(super) fn send_receiver_reports(&mut self, now: Instant, out: &mut SendBatch) {
        let now_us = self.micros(now);
        for endpoint in self.endpoints.iter_mut().flatten() {
            if !endpoint.is_connected() || endpoint.sources.is_empty() {
                continue;
            }
            let mut blocks = [ReportBlock::default(); MAX_REPORT_BLOCKS];
            let mut ssrcs = [0u32; MAX_REPORT_BLOCKS];
            let mut count = 0;
            for source in endpoint.sources.iter_mut() {
                if count == MAX_REPORT_BLOCKS || source.stats.packets_received() == 0 {
                    continue;
                }
                blocks[count] = source.stats.report_block(source.plan.ssrc, now_us);
                ssrcs[count] = source.plan.ssrc;
                count += 1;
            }
            if count == 0 {
                continue;
            }
            let remb = !endpoint.wants_transport_cc();
            let rtcp_ssrc = endpoint.rtcp_ssrc;
            let mut sent = false;
            out.push(|slot| {
                let body = &mut slot[..SLOT - TAG_ROOM];
                let mut len =
                    rtcp::write_receiver_report(body, rtcp_ssrc, &blocks[..count]).ok()?;
                if remb {
                    len += rtcp::write_remb(
                        &mut body[len..],
                        rtcp_ssrc,
                        REMB_BITRATE_BPS,
                        &ssrcs[..count],
                    )
                    .ok()?;
                }
                let r = endpoint.protect_rtcp(slot, len);
                sent = r.is_some();
                r
            });
            if sent {
                self.counters.receiver_reports_sent += 1;
                if remb {
                    self.counters.remb_sent += 1;
                }
            }
        }
    }
}
