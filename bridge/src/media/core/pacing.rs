//! Pacing and bandwidth probes towards receivers: video a receiver's pacer held back leaves at
//! its pacing rate; while a receiver's allocator wants more than its estimate, its transport's
//! congestion control runs probe clusters, and what media does not fill of them is filled here
//! with retransmissions of what the receiver was just sent.

use std::time::Instant;

use tutti_rtp::rtp;

use super::Core;
use crate::media::outbox::Outbox;
use crate::media::router::RetransmitError;
use crate::media::MediaKind;

/// Retransmissions tried, or padding packets sent, for one padding request at most.
const MAX_TRIES: usize = 16;
/// Padding bytes in one padding-only packet (RFC 3550: the count is one byte).
const MAX_PADDING: u8 = 255;

impl Core {
    /// Sends what every receiver's pacer lets go of the video it held back (every tick: pacing
    /// in 5 ms steps).
    pub(super) fn send_paced(&mut self, now: Instant, out: &mut impl Outbox) {
        let now_us = self.micros(now);
        for endpoint in self.endpoints.iter_mut().flatten() {
            let transport = &mut endpoint.transport;
            self.counters.pacer_overflows += std::mem::take(&mut transport.held_overflows);
            transport.send_held(now_us, out);
        }
    }

    /// Runs every connected receiver's probe clusters that are due.
    pub(super) fn send_probes(&mut self, now: Instant, out: &mut impl Outbox) {
        let now_us = self.micros(now);
        for slot in 0..self.endpoints.len() {
            let Some(conference) = self.endpoints[slot]
                .as_ref()
                .filter(|e| {
                    e.is_participant()
                        && e.transport.is_connected()
                        && e.transport.congestion.feedback_seen
                })
                .map(|e| e.conference)
            else {
                continue;
            };
            while let Some(padding) = self.endpoints[slot]
                .as_mut()
                .and_then(|e| e.transport.congestion.poll_padding(now_us))
            {
                self.fill_probe(slot, conference, padding, now_us, out);
            }
        }
    }

    /// Sends about `padding.bytes` to `receiver` as part of the probe cluster: retransmissions
    /// of what it was just sent, else padding on an RTX stream.
    fn fill_probe(
        &mut self,
        receiver: usize,
        conference: usize,
        padding: tutti_bwe::Padding,
        now_us: i64,
        out: &mut impl Outbox,
    ) {
        let Some(e) = self.endpoints[receiver].as_mut() else {
            return;
        };
        e.transport.congestion.begin_padding(padding);
        let resent = self.resend_for_probe(receiver, conference, padding.bytes, now_us, out);
        if resent < padding.bytes as usize {
            self.pad_for_probe(
                receiver,
                conference,
                padding.bytes as usize - resent,
                (now_us, padding.probe_cluster),
                out,
            );
        }
        if let Some(e) = self.endpoints[receiver].as_mut() {
            e.transport.congestion.end_padding();
        }
    }

    /// Retransmits to `receiver` about `bytes` of the packets it was just sent of a source it
    /// is forwarded; how many bytes went.
    fn resend_for_probe(
        &mut self,
        receiver: usize,
        conference: usize,
        bytes: u32,
        now_us: i64,
        out: &mut impl Outbox,
    ) -> usize {
        let Some(router) = self.routers[conference].as_mut() else {
            return 0;
        };
        let Some((p, newest)) = router.probe_source(receiver) else {
            return 0;
        };
        let Some((owner, kind)) = router.producer(p).map(|p| (p.owner, p.kind)) else {
            return 0;
        };
        let sender_twcc = self.endpoints[owner]
            .as_ref()
            .and_then(|e| e.twcc_extension(kind));
        let mut sent = 0usize;
        for _ in 0..MAX_TRIES {
            if sent >= bytes as usize {
                break;
            }
            let Some(back) = self.endpoints[receiver]
                .as_mut()
                .map(|e| e.transport.congestion.next_probe_back())
            else {
                break;
            };
            let sequence = newest.wrapping_sub(back);
            match router.retransmit(
                p,
                receiver,
                sequence,
                sender_twcc,
                now_us,
                &mut self.endpoints,
                out,
            ) {
                Ok(n) => {
                    sent += n;
                    self.counters.probe_packets_sent += 1;
                    self.counters.probe_bytes_sent += n as u64;
                }
                Err(RetransmitError::Missed | RetransmitError::Superseded) => {}
                Err(RetransmitError::NotSent) => break,
            }
        }
        sent
    }

    /// Sends `receiver` about `bytes` of padding-only packets on the RTX stream of one of the
    /// video sources it may get (one that is forwarded nothing included: a receiver whose
    /// estimate fell below every source's lowest layer gets no video, and only padding can show
    /// that more fits again).
    fn pad_for_probe(
        &mut self,
        receiver: usize,
        conference: usize,
        bytes: usize,
        (now_us, cluster): (i64, u32),
        out: &mut impl Outbox,
    ) {
        let Some(router) = self.routers[conference].as_mut() else {
            return;
        };
        let Some((p, rtx_ssrc)) = router.padding_stream(receiver) else {
            return;
        };
        let Some(e) = self.endpoints[receiver].as_mut() else {
            return;
        };
        let (Some(twcc), Some(&(_, rtx_pt))) = (
            e.twcc_extension(MediaKind::Video),
            e.media.video.as_ref().and_then(|v| v.rtx.first()),
        ) else {
            return;
        };
        let Some(consumer) = router
            .producer_mut(p)
            .and_then(|producer| producer.consumer_of(receiver))
        else {
            return;
        };
        let packets = bytes.div_ceil(usize::from(MAX_PADDING)).min(MAX_TRIES);
        for i in 0..packets {
            let size = (bytes - i * usize::from(MAX_PADDING)).min(usize::from(MAX_PADDING));
            let sequence = consumer.take_rtx_sequence();
            let transport = &mut e.transport;
            let mut sent = 0;
            out.push(|slot| {
                let stream = (rtx_ssrc, rtx_pt, sequence, now_us as u32);
                let len = rtp::write_padding(slot, stream, twcc, size.max(1) as u8).ok()?;
                let header = rtp::parse(&slot[..len]).ok()?;
                let w = transport.send_rtp(
                    slot,
                    len,
                    &header,
                    Some((twcc, twcc)),
                    now_us,
                    Some(cluster),
                );
                sent = w.map_or(0, |(_, n)| n);
                w
            });
            if sent == 0 {
                break;
            }
            self.counters.probe_packets_sent += 1;
            self.counters.probe_padding_sent += 1;
            self.counters.probe_bytes_sent += sent as u64;
        }
    }
}
