//! The path of one RTP packet: decrypted once in the receive buffer, checked against its
//! sender's producers, then fanned out by its router to the consumers that forward its
//! encoding, each copy written and encrypted for its receiver. No allocation, no lock.

use std::net::SocketAddr;
use std::time::Instant;

use tutti_rtp::codec::{self, Codec};
use tutti_rtp::rtp;

use super::Core;
use crate::media::endpoint::Endpoint;
use crate::media::nack::Arrival;
use crate::media::outbox::Outbox;
use crate::media::router::{LearnError, Route};
use crate::media::stats::DropReason;
use crate::media::MediaKind;

/// Packets of `owner`'s producers arrive from `slot`: it is the owner, or the relay the owner
/// (a participant on another bridge) is behind.
pub(super) fn sends_through(endpoints: &[Option<Endpoint>], owner: usize, slot: usize) -> bool {
    owner == slot
        || endpoints
            .get(owner)
            .and_then(Option::as_ref)
            .and_then(Endpoint::relay)
            == Some(slot)
}

fn kind_index(kind: MediaKind) -> usize {
    match kind {
        MediaKind::Audio => 0,
        MediaKind::Video => 1,
    }
}

impl Core {
    /// An SRTP or SRTCP datagram from an endpoint's validated address.
    pub(super) fn on_media(
        &mut self,
        slot: usize,
        buf: &mut [u8],
        len: usize,
        from: SocketAddr,
        now: Instant,
        out: &mut impl Outbox,
    ) {
        let now_us = self.micros(now);
        let Some(endpoint) = self.endpoints[slot].as_mut() else {
            return;
        };
        if !endpoint.transport.is_connected() {
            self.counters.drop(DropReason::NotConnected);
            return;
        }
        // Limits before decryption, so that what goes beyond them costs next to nothing; the
        // conference's budget is only spent on what the endpoint's own limit lets through.
        if !endpoint.packet_limit.allow(now_us) {
            self.counters.drop(DropReason::EndpointRateLimited);
            return;
        }
        if let Some(router) = self.routers[endpoint.conference].as_mut() {
            if !router.packet_limit.allow(now_us) {
                self.counters.drop(DropReason::ConferenceRateLimited);
                return;
            }
        }
        let is_rtcp = rtp::is_rtcp(&buf[..len]);
        let Some(srtp) = endpoint.transport.srtp_in.as_mut() else {
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
        endpoint.transport.ice.note_media_received(from, now);
        if is_rtcp {
            self.counters.packets_in[2] += 1;
            self.counters.bytes_in[2] += len as u64;
            self.on_rtcp(slot, &buf[..len], now, out);
        } else {
            self.on_rtp(slot, &mut buf[..len], now, out);
        }
    }

    /// Where a packet of the endpoint in `slot` on `ssrc` goes: a signalled SSRC of its own (or,
    /// on a relay, of a participant behind it), else one learnt from its packets.
    pub(super) fn sender_route(&self, conference: usize, slot: usize, ssrc: u32) -> Option<Route> {
        let router = self.routers[conference].as_ref()?;
        router
            .route(ssrc)
            .filter(|r| {
                router
                    .producer(r.producer)
                    .is_some_and(|p| sends_through(&self.endpoints, p.owner, slot))
            })
            .or_else(|| router.learnt_route(slot, ssrc))
    }

    /// A packet on an SSRC its sender was not heard on may name, by its MID, RtpStreamId or
    /// RepairedRtpStreamId extension, a stream of one of its sender's learnt sources: that
    /// stream is then received on it. Otherwise the packet is dropped, counted by why. (Read
    /// before the sender's extensions are blanked; once per SSRC.)
    fn learn(
        &mut self,
        conference: usize,
        slot: usize,
        packet: &[u8],
        header: &rtp::Header,
    ) -> Option<Route> {
        let sender = self.endpoints[slot].as_ref()?;
        let router = self.routers[conference].as_mut()?;
        let ids = sender.stream_ids(packet, header);
        let nackable = sender
            .media
            .video
            .as_ref()
            .is_some_and(|v| !v.rtx.is_empty());
        match router.learn(slot, &sender.producers, &ids, header.ssrc, nackable) {
            Ok(route) => {
                self.counters.streams_learnt += 1;
                Some(route)
            }
            Err(error) => {
                self.counters.drop(match error {
                    LearnError::Signalled | LearnError::NoLearntSource => DropReason::UnknownSsrc,
                    LearnError::NotNamed => DropReason::UnknownMid,
                    LearnError::Taken => DropReason::MidTaken,
                });
                None
            }
        }
    }

    fn on_rtp(&mut self, slot: usize, packet: &mut [u8], now: Instant, out: &mut impl Outbox) {
        let arrival_us = self.micros(now);
        let Ok(mut header) = rtp::parse(packet) else {
            self.counters.drop(DropReason::RtpMalformed);
            return;
        };
        let Some(conference) = self.endpoints[slot].as_ref().map(|e| e.conference) else {
            return;
        };
        let Some(route) = self
            .sender_route(conference, slot, header.ssrc)
            .or_else(|| self.learn(conference, slot, packet, &header))
        else {
            return;
        };
        let Some(sender) = self.endpoints[slot].as_mut() else {
            return;
        };
        sender.remove_sender_local_extensions(packet, &header);
        let Some(producer) = self.routers[conference]
            .as_mut()
            .and_then(|router| router.producer_mut(route.producer))
        else {
            return;
        };
        let kind = producer.kind;
        self.counters.packets_in[kind_index(kind)] += 1;
        self.counters.bytes_in[kind_index(kind)] += packet.len() as u64;
        if sender.is_relay() {
            self.counters.relay_packets_received += 1;
        }
        let sender_twcc = sender.twcc_extension(kind);
        if let Some(id) = sender_twcc {
            if let Some(seq) = rtp::find_extension(packet, &header, id)
                .and_then(|r| rtp::read_u16_extension(packet, r))
            {
                sender.transport.twcc.record(seq, arrival_us);
            }
        }
        if kind == MediaKind::Audio {
            if let Some(&level) = sender.audio_level_extension().and_then(|id| {
                rtp::find_extension(packet, &header, id).and_then(|r| packet.get(r.start))
            }) {
                producer.speech.on_level(level);
            }
        }
        let encoding = &mut producer.encodings[usize::from(route.encoding)];
        let padding_only = header.payload_offset >= header.payload_end;
        let mut len = packet.len();
        if route.rtx {
            if let Some(stats) = encoding.rtx_stats.as_mut() {
                stats.on_packet(header.sequence, header.timestamp, arrival_us);
            }
            // An RTX packet is forwarded only as the answer to a NACK of the bridge's; padding
            // and retransmissions nobody here asked for (probes) end here.
            let recovered = match (
                padding_only,
                sender.rtx_original_payload_type(header.payload_type),
                encoding.nacks.as_mut(),
            ) {
                (false, Some(pt), Some(nacks)) => header
                    .payload(packet)
                    .get(..2)
                    .map(|osn| u16::from_be_bytes([osn[0], osn[1]]))
                    .filter(|&osn| nacks.on_packet(osn, arrival_us) == Arrival::Recovered)
                    .map(|_| pt),
                _ => None,
            };
            let Some(pt) = recovered else {
                self.counters.rtx_consumed += 1;
                return;
            };
            let Ok((original_len, _)) = rtp::unwrap_rtx(packet, &header, encoding.ssrc, pt) else {
                self.counters.rtx_consumed += 1;
                return;
            };
            len = original_len;
            let Ok(original) = rtp::parse(&packet[..len]) else {
                return;
            };
            header = original;
            self.counters.rtx_recovered += 1;
        } else {
            encoding
                .stats
                .on_packet(header.sequence, header.timestamp, arrival_us);
            let arrival = encoding
                .nacks
                .as_mut()
                .map(|n| n.on_packet(header.sequence, arrival_us));
            if arrival == Some(Arrival::GapTooLarge) {
                let p = route.producer;
                self.request_keyframe(conference, p, route.encoding, now, out);
            }
            if padding_only {
                self.counters.rtx_consumed += 1;
                return;
            }
        }
        let payload = header.payload(&packet[..len]);
        let frame = if kind == MediaKind::Video {
            let codec = self.endpoints[slot]
                .as_ref()
                .map_or(Codec::Other, |e| e.video_codec(header.payload_type));
            codec::frame_info(codec, payload)
        } else {
            None
        };
        if frame.is_some_and(|f| f.starts_keyframe_picture()) {
            self.counters.keyframes_received += 1;
        }
        let Some(router) = self.routers[conference].as_mut() else {
            return;
        };
        if let Some(e) = router
            .producer_mut(route.producer)
            .and_then(|p| p.encodings.get_mut(usize::from(route.encoding)))
        {
            e.on_media(len, frame.as_ref(), payload, arrival_us);
        }
        let sent = router.fan_out(
            route.producer,
            route.encoding,
            frame,
            &packet[..len],
            &header,
            sender_twcc,
            arrival_us,
            self.settings.retransmission_cache_packets,
            &mut self.endpoints,
            out,
        );
        if !sent.wanted
            && router
                .producer(route.producer)
                .is_some_and(|p| p.encodings.len() > 1)
        {
            self.counters.simulcast_layers_skipped += 1;
        }
        self.counters.packets_out[kind_index(kind)] += sent.packets;
        self.counters.bytes_out[kind_index(kind)] += sent.bytes;
        self.counters.relay_packets_sent += sent.relayed;
        self.counters.relay_bytes_sent += sent.relayed_bytes;
        if kind == MediaKind::Video {
            self.counters.layer_switches[0] += u64::from(sent.started);
            self.counters.layer_switches[1] += u64::from(sent.switched_up);
            self.counters.layer_switches[2] += u64::from(sent.switched_down);
            self.counters.temporal_drops += u64::from(sent.dropped_temporal);
        }
        if sent.keyframe_wanted {
            self.counters.keyframes_for_switch += 1;
            self.request_keyframe(conference, route.producer, route.encoding, now, out);
        }
    }
}
