//! Pacing and bandwidth probes towards receivers: video a receiver's pacer held back leaves at
//! its pacing rate; while a receiver's allocator wants more than its estimate, its transport's
//! congestion control runs probe clusters, and what media does not fill of them is filled here
//! with retransmissions of what the receiver was just sent.

use std::time::Instant;

use super::Core;
use crate::media::outbox::Outbox;
use crate::media::router::RetransmitError;

/// Retransmissions tried for one padding request at most (cache misses included).
const MAX_TRIES: usize = 16;

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
                .filter(|e| e.transport.is_connected() && e.transport.congestion.feedback_seen)
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

    /// Sends about `padding.bytes` of retransmissions to `receiver`, as part of the probe
    /// cluster.
    fn fill_probe(
        &mut self,
        receiver: usize,
        conference: usize,
        padding: tutti_bwe::Padding,
        now_us: i64,
        out: &mut impl Outbox,
    ) {
        let Some(router) = self.routers[conference].as_mut() else {
            return;
        };
        // Nothing forwarded to resend: the cluster has only the media that goes meanwhile.
        let Some((p, newest)) = router.probe_source(receiver) else {
            return;
        };
        let Some((owner, kind)) = router.producer(p).map(|p| (p.owner, p.kind)) else {
            return;
        };
        let sender_twcc = self.endpoints[owner]
            .as_ref()
            .and_then(|e| e.twcc_extension(kind));
        let Some(congestion) = self.endpoints[receiver]
            .as_mut()
            .map(|e| &mut e.transport.congestion)
        else {
            return;
        };
        congestion.begin_padding(padding.probe_cluster);
        let mut sent = 0usize;
        for _ in 0..MAX_TRIES {
            if sent >= padding.bytes as usize {
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
                Err(RetransmitError::Missed) => {}
                Err(RetransmitError::NotSent) => break,
            }
        }
        if let Some(e) = self.endpoints[receiver].as_mut() {
            e.transport.congestion.end_padding();
        }
    }
}
