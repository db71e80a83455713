//! RTCP: what endpoints send is terminated here — key-frame requests go to the producer's
//! sender (rate-limited), NACKs are answered from the producer's cache, sender reports are
//! passed to the consumers' receivers, transport-cc feedback is matched against the send
//! history. What the bridge sends of its own: receiver reports (with REMB for senders without
//! transport-cc), transport-cc feedback and NACKs for what it lost from senders. On a relay the
//! same per hop: each side reports what it receives on the relay, and reads the far side's
//! reports of what it sends there.

use std::time::Instant;

use tutti_rtp::rtcp::{self, Packet, ReportBlock};

use super::rtp_path::sends_through;
use super::Core;
use crate::media::consumer::TAG_ROOM;
use crate::media::endpoint::Endpoint;
use crate::media::nack;
use crate::media::outbox::{Outbox, SLOT};
use crate::media::router::RetransmitError;
use crate::media::stats::{Counters, DropReason, FEEDBACK_DELAY_BOUNDS, RTT_BOUNDS};
use crate::media::MediaKind;

/// Bitrate announced in REMB to senders without transport-cc: the bridge does not estimate
/// bandwidth yet, so it only caps what a sender may ramp up to.
const REMB_BITRATE_BPS: u64 = 5_000_000;
/// RFC 3550: at most 31 report blocks in one RR.
const MAX_REPORT_BLOCKS: usize = 31;
/// Index of the sender → bridge hop in the report histograms (`stats::DIRECTION_LABELS`).
const UPSTREAM: usize = 0;
/// Index of the bridge → receiver hop.
const DOWNSTREAM: usize = 1;
/// Index of the other bridge → this one hop of a relay (what this bridge reports on it).
const RELAY_IN: usize = 2;
/// Index of this bridge → the other one (what the other reports on the relay).
const RELAY_OUT: usize = 3;

fn media_index(kind: MediaKind) -> usize {
    match kind {
        MediaKind::Audio => 0,
        MediaKind::Video => 1,
    }
}

impl Core {
    pub(super) fn on_rtcp(
        &mut self,
        slot: usize,
        packet: &[u8],
        now: Instant,
        out: &mut impl Outbox,
    ) {
        let Some(conference) = self.endpoints[slot].as_ref().map(|e| e.conference) else {
            return;
        };
        for item in rtcp::packets(packet) {
            let Ok(item) = item else {
                self.counters.drop(DropReason::RtcpMalformed);
                return;
            };
            match item {
                Packet::SenderReport {
                    ssrc,
                    info,
                    reports,
                } => {
                    self.on_sender_report(slot, conference, ssrc, &info, now, out);
                    self.on_report_blocks(slot, conference, reports, now);
                }
                Packet::ReceiverReport { reports, .. } => {
                    self.on_report_blocks(slot, conference, reports, now)
                }
                Packet::Pli { media_ssrc, .. } => {
                    self.counters.pli_received += 1;
                    if self.feedback_allowed(slot, now) {
                        self.on_keyframe_request(slot, conference, media_ssrc, now, out);
                    }
                }
                Packet::Fir { entries, .. } => {
                    for (media_ssrc, _) in entries {
                        self.counters.pli_received += 1;
                        if !self.feedback_allowed(slot, now) {
                            break;
                        }
                        self.on_keyframe_request(slot, conference, media_ssrc, now, out);
                    }
                }
                Packet::Nack {
                    media_ssrc, lost, ..
                } => {
                    // One lookup for the whole NACK: the stream must be one forwarded to it.
                    if !self.is_forwarded_to(slot, conference, media_ssrc) {
                        self.counters.drop(DropReason::RtcpForeignSsrc);
                        continue;
                    }
                    for seq in lost {
                        self.counters.nack_received += 1;
                        if !self.feedback_allowed(slot, now) {
                            break;
                        }
                        self.on_nack(slot, conference, media_ssrc, seq, now, out);
                    }
                }
                Packet::Bye { ssrcs } => {
                    // A BYE changes nothing here (sources end by signalling); one naming a
                    // stream the endpoint does not send is counted.
                    let router = self.routers[conference].as_ref();
                    let foreign = ssrcs.into_iter().any(|ssrc| {
                        router
                            .and_then(|r| r.route(ssrc))
                            .and_then(|route| router?.producer(route.producer))
                            .is_none_or(|p| p.owner != slot)
                    });
                    if foreign {
                        self.counters.drop(DropReason::RtcpForeignSsrc);
                    }
                }
                Packet::TransportCc { raw, .. } => {
                    self.counters.transport_cc_feedback_received += 1;
                    let now_us = self.micros(now);
                    let summary = self.endpoints[slot]
                        .as_mut()
                        .and_then(|e| e.transport.on_transport_feedback(raw, now_us));
                    let fell = self.endpoints[slot]
                        .as_ref()
                        .is_some_and(|e| e.transport.congestion.fell_since_allocation());
                    if fell {
                        self.counters.allocations_on_estimate_drop += 1;
                        self.allocate(conference, slot, now);
                    }
                    if let Some(summary) = summary {
                        self.counters.transport_cc_reported_received += summary.received;
                        self.counters.transport_cc_reported_lost += summary.lost;
                        if let Some(sent_us) = summary.newest_received_sent_us {
                            let delay_us = (self.micros(now) as u32).wrapping_sub(sent_us);
                            self.counters
                                .transport_cc_feedback_delay
                                .observe(&FEEDBACK_DELAY_BOUNDS, delay_us as f64 / 1e6);
                        }
                    }
                }
                Packet::Remb { bitrate_bps, .. } => {
                    self.counters.remb_received += 1;
                    if let Some(endpoint) = self.endpoints[slot].as_mut() {
                        endpoint.transport.congestion.on_remb(bitrate_bps);
                    }
                }
                _ => {}
            }
        }
    }

    /// Takes one from the endpoint's feedback budget (`endpoint_feedback_rate`); when it is
    /// spent, the rest of the feedback message is dropped and counted.
    fn feedback_allowed(&mut self, slot: usize, now: Instant) -> bool {
        let now_us = self.micros(now);
        let allowed = self.endpoints[slot]
            .as_mut()
            .is_some_and(|e| e.feedback_limit.allow(now_us));
        if !allowed {
            self.counters.drop(DropReason::FeedbackRateLimited);
        }
        allowed
    }

    /// `media_ssrc` names a stream of another endpoint that `slot` may receive (its output
    /// SSRC or output RTX SSRC).
    fn is_forwarded_to(&self, slot: usize, conference: usize, media_ssrc: u32) -> bool {
        self.routers[conference]
            .as_ref()
            .and_then(|router| router.producer(router.output(media_ssrc)?))
            .is_some_and(|producer| producer.owner != slot)
    }

    /// A receiver's report blocks about the streams the bridge forwards it: their loss and
    /// jitter, and the round trip to it from a block naming the last sender report the bridge
    /// passed on for that stream (sent at that report's arrival, `now - then - DLSR`).
    fn on_report_blocks(
        &mut self,
        slot: usize,
        conference: usize,
        reports: rtcp::ReportBlocks<'_>,
        now: Instant,
    ) {
        if self.endpoints[slot].as_ref().is_some_and(|e| e.is_relay()) {
            self.on_relay_report_blocks(slot, conference, reports, now);
            return;
        }
        let now_us = self.micros(now);
        let Some(router) = self.routers[conference].as_ref() else {
            return;
        };
        for block in reports {
            let Some(producer) = router.output(block.ssrc).and_then(|p| router.producer(p)) else {
                continue;
            };
            // A block about an RTX stream tells nothing of the media's path.
            if producer.owner == slot || producer.output_ssrcs().0 != block.ssrc {
                continue;
            }
            let Some(first) = producer.encodings.first() else {
                continue;
            };
            self.counters.report_quality.observe(
                DOWNSTREAM,
                media_index(producer.kind),
                block.fraction_lost,
                block.jitter,
                first.stats.clock_rate(),
            );
            if block.last_sr == 0 {
                continue;
            }
            let passed_on = producer.encodings.iter().find_map(|e| {
                e.stats
                    .last_sender_report()
                    .filter(|&(lsr, _)| lsr == block.last_sr)
                    .map(|(_, at)| at)
            });
            if let Some(at) = passed_on {
                let dlsr_us = i64::from(block.delay_since_last_sr) * 1_000_000 / 65_536;
                let rtt_us = now_us - at - dlsr_us;
                if rtt_us >= 0 {
                    self.counters.rtt.observe(&RTT_BOUNDS, rtt_us as f64 / 1e6);
                }
            }
        }
    }

    /// The far bridge's report blocks about what this one sends on `relay`: they name the
    /// encodings by their own SSRCs, as they cross. Their loss and jitter are the relay hop's
    /// outgoing figures; the round trip on the relay from a block naming the last sender report
    /// of that encoding this bridge passed on (at its arrival here).
    fn on_relay_report_blocks(
        &mut self,
        relay: usize,
        conference: usize,
        reports: rtcp::ReportBlocks<'_>,
        now: Instant,
    ) {
        let now_us = self.micros(now);
        let Some(router) = self.routers[conference].as_ref() else {
            return;
        };
        for block in reports {
            let Some((producer, encoding)) = router
                .route(block.ssrc)
                .filter(|r| !r.rtx)
                .and_then(|r| {
                    let producer = router.producer(r.producer)?;
                    Some((producer, producer.encodings.get(usize::from(r.encoding))?))
                })
                .filter(|(p, _)| p.consumers.iter().any(|c| c.relay && c.receiver == relay))
            else {
                continue;
            };
            self.counters.report_quality.observe(
                RELAY_OUT,
                media_index(producer.kind),
                block.fraction_lost,
                block.jitter,
                encoding.stats.clock_rate(),
            );
            if block.last_sr == 0 {
                continue;
            }
            let passed_on = encoding
                .stats
                .last_sender_report()
                .filter(|&(lsr, _)| lsr == block.last_sr);
            if let Some((_, at)) = passed_on {
                let dlsr_us = i64::from(block.delay_since_last_sr) * 1_000_000 / 65_536;
                let rtt_us = now_us - at - dlsr_us;
                if rtt_us >= 0 {
                    self.counters
                        .relay_rtt
                        .observe(&RTT_BOUNDS, rtt_us as f64 / 1e6);
                }
            }
        }
    }

    /// Receivers learn the sender's RTP/NTP timestamp mapping (lip sync) from its SR.
    fn on_sender_report(
        &mut self,
        slot: usize,
        conference: usize,
        ssrc: u32,
        info: &rtcp::SenderInfo,
        now: Instant,
        out: &mut impl Outbox,
    ) {
        let arrival_us = self.micros(now);
        let Some(router) = self.routers[conference].as_mut() else {
            return;
        };
        let Some(route) = router.route(ssrc).filter(|r| !r.rtx) else {
            return;
        };
        let Some(producer) = router.producer_mut(route.producer) else {
            return;
        };
        if !sends_through(&self.endpoints, producer.owner, slot) {
            self.counters.drop(DropReason::RtcpForeignSsrc);
            return;
        }
        producer.encodings[usize::from(route.encoding)]
            .stats
            .on_sender_report(info.ntp_time, arrival_us);
        self.counters.sender_reports_forwarded += router.forward_sender_report(
            route.producer,
            route.encoding,
            info,
            &mut self.endpoints,
            out,
        );
    }

    /// A receiver asks for a key frame of the stream it knows as `media_ssrc`.
    fn on_keyframe_request(
        &mut self,
        requester: usize,
        conference: usize,
        media_ssrc: u32,
        now: Instant,
        out: &mut impl Outbox,
    ) {
        if self.endpoints[requester]
            .as_ref()
            .is_some_and(|e| e.is_relay())
        {
            // A relay names the encoding itself, by the SSRC it was sent under.
            let Some(route) = self.routers[conference]
                .as_ref()
                .and_then(|r| r.route(media_ssrc))
                .filter(|r| !r.rtx && self.relayed_to(conference, r.producer, requester))
            else {
                return;
            };
            self.request_keyframe(conference, route.producer, route.encoding, now, out);
            return;
        }
        let Some(router) = self.routers[conference].as_mut() else {
            return;
        };
        let Some((p, producer)) = router
            .output(media_ssrc)
            .and_then(|p| Some((p, router.producer_mut(p)?)))
            .filter(|(_, producer)| producer.owner != requester)
        else {
            self.counters.drop(DropReason::RtcpForeignSsrc);
            return;
        };
        // The sender is asked for a key frame of the encoding this receiver gets (or is about
        // to get).
        let layer = producer
            .consumer_of(requester)
            .and_then(|c| c.current.or(c.target.map(|t| t.spatial)))
            .unwrap_or(0);
        self.request_keyframe(conference, p, layer, now, out);
    }

    /// Sends a PLI for encoding `encoding` to the sender of producer `p`, unless one went out
    /// very recently.
    pub(super) fn request_keyframe(
        &mut self,
        conference: usize,
        p: usize,
        encoding: u8,
        now: Instant,
        out: &mut impl Outbox,
    ) {
        let Some(producer) = self.routers[conference]
            .as_mut()
            .and_then(|r| r.producer_mut(p))
        else {
            return;
        };
        let owner = producer.owner;
        let Some(e) = producer.encodings.get_mut(usize::from(encoding)) else {
            return;
        };
        let ssrc = e.ssrc;
        // An encoding named by RID whose first packet has not come yet: nothing to ask for.
        if ssrc == 0 {
            return;
        }
        if !e.keyframes.allow(now) {
            self.counters.pli_rate_limited += 1;
            return;
        }
        // A participant on another bridge is asked through its relay.
        let via = self.endpoints[owner]
            .as_ref()
            .and_then(|o| o.relay())
            .unwrap_or(owner);
        let Some(sender) = self.endpoints[via].as_mut() else {
            return;
        };
        let rtcp_ssrc = sender.transport.rtcp_ssrc;
        let mut sent = false;
        out.push(|slot| {
            let body = &mut slot[..SLOT - TAG_ROOM];
            let rr = rtcp::write_receiver_report(body, rtcp_ssrc, &[]).ok()?;
            let pli = rtcp::write_pli(&mut body[rr..], rtcp_ssrc, ssrc).ok()?;
            let w = sender.transport.protect_rtcp(slot, rr + pli);
            sent = w.is_some();
            w
        });
        if sent {
            self.counters.pli_sent += 1;
        }
    }

    /// Answers a receiver's NACK from the producer's cache.
    fn on_nack(
        &mut self,
        requester: usize,
        conference: usize,
        media_ssrc: u32,
        seq: u16,
        now: Instant,
        out: &mut impl Outbox,
    ) {
        let now_us = self.micros(now);
        if self.endpoints[requester]
            .as_ref()
            .is_some_and(|e| e.is_relay())
        {
            self.on_relay_nack(requester, conference, media_ssrc, seq, now_us, out);
            return;
        }
        let Some(router) = self.routers[conference].as_mut() else {
            return;
        };
        let Some((p, owner, kind)) = router
            .output(media_ssrc)
            .and_then(|p| {
                router
                    .producer(p)
                    .map(|producer| (p, producer.owner, producer.kind))
            })
            .filter(|(_, owner, _)| *owner != requester)
        else {
            self.counters.nack_cache_misses += 1;
            return;
        };
        let sender_twcc = self.endpoints[owner]
            .as_ref()
            .and_then(|e| e.twcc_extension(kind));
        let to = (requester, media_ssrc, seq);
        if !retransmission_due(&mut self.endpoints, &mut self.counters, to, now_us) {
            return;
        }
        let sent = router.retransmit(
            p,
            requester,
            seq,
            sender_twcc,
            now_us,
            &mut self.endpoints,
            out,
        );
        count_retransmission(
            &mut self.endpoints,
            &mut self.counters,
            requester,
            (media_ssrc, seq, now_us),
            sent,
        );
    }

    /// A relay's NACK for `seq` of the encoding it names by its SSRC: answered from that
    /// encoding's cache, within the relay's retransmission budget.
    fn on_relay_nack(
        &mut self,
        relay: usize,
        conference: usize,
        media_ssrc: u32,
        seq: u16,
        now_us: i64,
        out: &mut impl Outbox,
    ) {
        let Some(route) = self.routers[conference]
            .as_ref()
            .and_then(|r| r.route(media_ssrc))
            .filter(|r| !r.rtx && self.relayed_to(conference, r.producer, relay))
        else {
            self.counters.nack_cache_misses += 1;
            return;
        };
        let Some(router) = self.routers[conference].as_mut() else {
            return;
        };
        let Some((owner, kind)) = router.producer(route.producer).map(|p| (p.owner, p.kind)) else {
            return;
        };
        let sender_twcc = self.endpoints[owner]
            .as_ref()
            .and_then(|e| e.twcc_extension(kind));
        if !retransmission_due(
            &mut self.endpoints,
            &mut self.counters,
            (relay, media_ssrc, seq),
            now_us,
        ) {
            return;
        }
        let sent = router.retransmit_to_relay(
            route,
            relay,
            seq,
            sender_twcc,
            now_us,
            &mut self.endpoints,
            out,
        );
        count_retransmission(
            &mut self.endpoints,
            &mut self.counters,
            relay,
            (media_ssrc, seq, now_us),
            sent,
        );
    }

    /// Producer `p` is sent on `relay` (a participant of this bridge's, not one behind a relay).
    fn relayed_to(&self, conference: usize, p: usize, relay: usize) -> bool {
        self.routers[conference]
            .as_ref()
            .and_then(|r| r.producer(p))
            .is_some_and(|p| p.consumers.iter().any(|c| c.relay && c.receiver == relay))
    }

    /// NACKs to senders for what they sent that never arrived (to participants behind a relay:
    /// on the relay, for what was lost on it).
    pub(super) fn send_nacks(&mut self, now: Instant, out: &mut impl Outbox) {
        let now_us = self.micros(now);
        let mut lost = [0u16; nack::CAPACITY];
        for slot in 0..self.endpoints.len() {
            let Some(endpoint) = self.endpoints[slot].as_ref() else {
                continue;
            };
            let via = endpoint.relay().unwrap_or(slot);
            let (conference, producers) = (endpoint.conference, endpoint.producers.len());
            let Some(rtcp_ssrc) = self.endpoints[via]
                .as_ref()
                .filter(|e| e.transport.is_connected() && producers > 0)
                .map(|e| e.transport.rtcp_ssrc)
            else {
                continue;
            };
            let Some(router) = self.routers[conference].as_mut() else {
                continue;
            };
            for i in 0..producers {
                let Some(producer) = self.endpoints[slot]
                    .as_ref()
                    .and_then(|e| e.producers.get(i))
                    .and_then(|&p| router.producer_mut(p))
                else {
                    continue;
                };
                for encoding in producer.encodings.iter_mut() {
                    let Some(nacks) = encoding.nacks.as_mut() else {
                        continue;
                    };
                    let count = nacks.poll(now_us, &mut lost);
                    if count == 0 {
                        continue;
                    }
                    let media_ssrc = encoding.ssrc;
                    let Some(transport) = self.endpoints[via].as_mut().map(|e| &mut e.transport)
                    else {
                        continue;
                    };
                    let mut sent = false;
                    out.push(|slot| {
                        let body = &mut slot[..SLOT - TAG_ROOM];
                        let rr = rtcp::write_receiver_report(body, rtcp_ssrc, &[]).ok()?;
                        let nack = rtcp::write_nack(
                            &mut body[rr..],
                            rtcp_ssrc,
                            media_ssrc,
                            &lost[..count],
                        )
                        .ok()?;
                        let w = transport.protect_rtcp(slot, rr + nack);
                        sent = w.is_some();
                        w
                    });
                    if sent {
                        self.counters.nacks_sent += count as u64;
                    }
                }
            }
        }
    }

    /// transport-cc feedback to every sender that negotiated it: what arrived since the last one.
    pub(super) fn send_transport_feedback(&mut self, out: &mut impl Outbox) {
        for endpoint in self.endpoints.iter_mut().flatten() {
            if !endpoint.transport.is_connected() || !endpoint.wants_transport_cc() {
                continue;
            }
            let media_ssrc = endpoint
                .producers
                .first()
                .and_then(|&p| self.routers[endpoint.conference].as_ref()?.producer(p))
                .map_or(0, |p| p.encodings[0].ssrc);
            let transport = &mut endpoint.transport;
            let rtcp_ssrc = transport.rtcp_ssrc;
            let mut sent = false;
            out.push(|slot| {
                let body = &mut slot[..SLOT - TAG_ROOM];
                let rr = rtcp::write_receiver_report(body, rtcp_ssrc, &[]).ok()?;
                let fb = transport
                    .twcc
                    .write_feedback(&mut body[rr..], rtcp_ssrc, media_ssrc)?;
                let w = transport.protect_rtcp(slot, rr + fb);
                sent = w.is_some();
                w
            });
            if sent {
                self.counters.transport_cc_feedback_sent += 1;
            }
        }
    }

    /// Receiver reports for every sender's streams; REMB for senders without transport-cc. A
    /// participant on another bridge sends through its relay: its streams are reported on the
    /// relay (one RR per participant behind it), as the relay hop's.
    pub(super) fn send_receiver_reports(&mut self, now: Instant, out: &mut impl Outbox) {
        let now_us = self.micros(now);
        for slot in 0..self.endpoints.len() {
            let Some(endpoint) = self.endpoints[slot].as_ref() else {
                continue;
            };
            let via = endpoint.relay().unwrap_or(slot);
            let connected = self.endpoints[via]
                .as_ref()
                .is_some_and(|e| e.transport.is_connected());
            if !connected || endpoint.producers.is_empty() {
                continue;
            }
            let direction = if via == slot { UPSTREAM } else { RELAY_IN };
            let Some(router) = self.routers[endpoint.conference].as_mut() else {
                continue;
            };
            let mut blocks = [ReportBlock::default(); MAX_REPORT_BLOCKS];
            let mut ssrcs = [0u32; MAX_REPORT_BLOCKS];
            let mut count = 0;
            for &p in &endpoint.producers {
                let Some(producer) = router.producer_mut(p) else {
                    continue;
                };
                let media = media_index(producer.kind);
                for encoding in producer.encodings.iter_mut() {
                    let media_ssrc = encoding.ssrc;
                    let streams = std::iter::once((encoding.ssrc, &mut encoding.stats))
                        .chain(encoding.rtx_ssrc.zip(encoding.rtx_stats.as_mut()));
                    for (ssrc, stats) in streams {
                        if count == MAX_REPORT_BLOCKS || stats.packets_received() == 0 {
                            continue;
                        }
                        blocks[count] = stats.report_block(ssrc, now_us);
                        if ssrc == media_ssrc {
                            self.counters.report_quality.observe(
                                direction,
                                media,
                                blocks[count].fraction_lost,
                                blocks[count].jitter,
                                stats.clock_rate(),
                            );
                        }
                        ssrcs[count] = ssrc;
                        count += 1;
                    }
                }
            }
            if count == 0 {
                continue;
            }
            let Some(sender) = self.endpoints[via].as_mut() else {
                continue;
            };
            let remb = !sender.wants_transport_cc();
            let transport = &mut sender.transport;
            let rtcp_ssrc = transport.rtcp_ssrc;
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
                let w = transport.protect_rtcp(slot, len);
                sent = w.is_some();
                w
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

/// Whether a NACK of `to` (an endpoint, and the SSRC and sequence number it names) is to be
/// answered now: not if the packet was retransmitted to it less than a round trip ago, nor
/// beyond its retransmission budget (its estimate over a second); either is counted.
fn retransmission_due(
    endpoints: &mut [Option<Endpoint>],
    counters: &mut Counters,
    (to, ssrc, sequence): (usize, u32, u16),
    now_us: i64,
) -> bool {
    let Some(endpoint) = endpoints[to].as_mut() else {
        return false;
    };
    let congestion = &mut endpoint.transport.congestion;
    if congestion.retransmitted_within_rtt(ssrc, sequence, now_us) {
        counters.retransmissions_repeated += 1;
        return false;
    }
    let allowed = congestion.retransmission_allowed(now_us);
    if !allowed {
        counters.retransmissions_rate_limited += 1;
    }
    allowed
}

/// Counts a retransmission to `to` of packet `sequence` of its stream `ssrc` at `now_us` (and
/// charges its budget), or why there was none.
fn count_retransmission(
    endpoints: &mut [Option<Endpoint>],
    counters: &mut Counters,
    to: usize,
    (ssrc, sequence, now_us): (u32, u16, i64),
    sent: Result<usize, RetransmitError>,
) {
    match sent {
        Ok(bytes) => {
            counters.retransmissions_sent += 1;
            if let Some(e) = endpoints[to].as_mut() {
                e.transport
                    .congestion
                    .retransmitted(ssrc, sequence, bytes, now_us);
            }
        }
        Err(RetransmitError::Missed) => counters.nack_cache_misses += 1,
        Err(RetransmitError::Superseded) => counters.retransmissions_superseded += 1,
        Err(RetransmitError::NotSent) => {}
    }
}
