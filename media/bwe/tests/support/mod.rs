//! A tiny deterministic simulated path for the scenarios: a sender producing 30 frames a second
//! at the estimate (or at the highest of its layers that fits in it), paced by a [`Pacer`], with
//! probe clusters and padding; a bottleneck of some capacity with a FIFO queue of limited size
//! (tail drop) and optionally a token bucket (as `tc … tbf`: while the link was idle it saves up
//! to `burst_bytes`, which then pass at once), a propagation delay, random loss from a seeded
//! generator; a receiver sending transport-cc feedback every 50 ms, which comes back after the
//! propagation delay.

use std::collections::VecDeque;

use tutti_bwe::{BandwidthEstimator, Limit, Pace, Pacer, PacketResult};

const FEEDBACK_INTERVAL_US: i64 = 50_000;
const FRAME_INTERVAL_US: i64 = 33_333;
const MAX_PACKET_BYTES: u32 = 1200;

/// The path's bottleneck.
pub struct Link {
    pub capacity_bps: u64,
    pub queue_limit_bytes: u64,
    pub delay_us: i64,
    /// Probability that a packet leaving the bottleneck is lost.
    pub loss: f64,
    /// What the bottleneck lets through at once after being idle (a token bucket's depth); 0:
    /// none, every packet takes its time at the capacity.
    pub burst_bytes: u64,
}

/// What the sender knew when feedback came in.
#[derive(Clone, Copy)]
pub struct Sample {
    pub at_us: i64,
    pub estimate_bps: u64,
    pub limit: Limit,
    /// The longest time a packet sent since the previous sample waited in the bottleneck's queue.
    pub queue_delay_us: i64,
}

pub struct Sim {
    pub link: Link,
    pub bwe: BandwidthEstimator,
    pub samples: Vec<Sample>,
    /// When each probe cluster was handed to the pacer, and what limited the estimate then.
    pub probes: Vec<(i64, Limit)>,
    /// The rates the sender can send at, lowest first (a simulcast source's layers, the
    /// allocator picking the highest that fits in the estimate, else the lowest); empty: any.
    pub layers: Vec<u64>,
    now_us: i64,
    pacer: Pacer,
    /// splitmix64 state.
    rng: u64,
    /// The sender's packets waiting for the pacer.
    queue: VecDeque<u32>,
    /// When the bottleneck will have sent everything queued.
    link_free_us: i64,
    /// The token bucket's bytes when the last packet left.
    tokens: f64,
    in_flight: VecDeque<PacketResult>,
    feedback: VecDeque<(i64, Vec<PacketResult>)>,
    next_frame_us: i64,
    next_feedback_us: i64,
    queue_delay_us: i64,
}

impl Sim {
    /// A sender starting at `initial_bps`, whose allocator wants `desired_bps`.
    pub fn new(initial_bps: u64, desired_bps: u64, link: Link, seed: u64) -> Sim {
        let mut bwe = BandwidthEstimator::new(initial_bps);
        bwe.set_desired(desired_bps);
        Sim {
            link,
            pacer: Pacer::new(bwe.estimate_bps()),
            bwe,
            samples: Vec::new(),
            probes: Vec::new(),
            layers: Vec::new(),
            now_us: 0,
            rng: seed,
            queue: VecDeque::new(),
            link_free_us: 0,
            tokens: 0.0,
            in_flight: VecDeque::new(),
            feedback: VecDeque::new(),
            next_frame_us: 0,
            next_feedback_us: FEEDBACK_INTERVAL_US,
            queue_delay_us: 0,
        }
    }

    /// Runs the simulation up to `end_us`.
    pub fn run_until(&mut self, end_us: i64) {
        while self.now_us < end_us {
            self.step();
            let mut next = self.next_frame_us.min(self.next_feedback_us);
            if let Some(&(at, _)) = self.feedback.front() {
                next = next.min(at);
            }
            if let Some(at) = self.pacer.poll_timeout() {
                next = next.min(at);
            }
            self.now_us = next.clamp(self.now_us + 1, end_us);
        }
    }

    fn step(&mut self) {
        let now = self.now_us;
        while self.feedback.front().is_some_and(|&(at, _)| at <= now) {
            if let Some((_, results)) = self.feedback.pop_front() {
                self.bwe.on_packet_feedback(now, &results);
                self.pacer.set_media_rate(self.bwe.estimate_bps());
                self.samples.push(Sample {
                    at_us: now,
                    estimate_bps: self.bwe.estimate_bps(),
                    limit: self.bwe.limited_by(),
                    queue_delay_us: std::mem::take(&mut self.queue_delay_us),
                });
            }
        }
        if now >= self.next_feedback_us {
            self.next_feedback_us += FEEDBACK_INTERVAL_US;
            self.send_feedback(now);
        }
        if now >= self.next_frame_us {
            self.next_frame_us += FRAME_INTERVAL_US;
            let frame_bytes = (self.media_bps() / 8 / 30).max(1);
            let packets = frame_bytes.div_ceil(u64::from(MAX_PACKET_BYTES));
            for _ in 0..packets {
                let size = (frame_bytes / packets) as u32;
                self.queue.push_back(size);
                self.pacer.enqueue(size);
            }
        }
        while let Some(cluster) = self.bwe.poll_probe(now) {
            self.probes.push((now, self.bwe.limited_by()));
            self.pacer.add_probe(cluster);
        }
        while let Some(&size) = self.queue.front() {
            match self.pacer.try_send(now, size) {
                Pace::Now { probe_cluster } => {
                    self.queue.pop_front();
                    self.transmit(size, probe_cluster);
                }
                Pace::Later { .. } => break,
            }
        }
        while let Some(padding) = self.pacer.poll_padding(now) {
            let mut left = padding.bytes;
            while left > 0 {
                let size = left.min(MAX_PACKET_BYTES);
                left -= size;
                self.transmit(size, Some(padding.probe_cluster));
            }
        }
    }

    /// What the sender sends now: the estimate, or the highest layer that fits in it.
    fn media_bps(&self) -> u64 {
        let estimate = self.bwe.estimate_bps();
        match self.layers.iter().rev().find(|&&l| l <= estimate) {
            Some(&layer) => layer,
            None => self.layers.first().copied().unwrap_or(estimate),
        }
    }

    /// Through the bottleneck: queued (or dropped when the queue is full), serialised at the
    /// capacity (after what the token bucket let through at once), delayed, maybe lost.
    fn transmit(&mut self, size: u32, probe_cluster: Option<u32>) {
        let now = self.now_us;
        let capacity = self.link.capacity_bps.max(1) as i64;
        let wait_us = (self.link_free_us - now).max(0);
        let queued_bytes = (wait_us * capacity / 8_000_000) as u64;
        let arrival_us = if queued_bytes + u64::from(size) > self.link.queue_limit_bytes {
            None
        } else {
            // The packet leaves once it is at the head and the bucket holds its bytes.
            let head_us = now.max(self.link_free_us);
            let refill = (head_us - self.link_free_us).max(0) as f64 * capacity as f64 / 8e6;
            let tokens = (self.tokens + refill).min(self.link.burst_bytes as f64);
            let short = (f64::from(size) - tokens).max(0.0).ceil() as i64;
            let leaves_us = head_us + short * 8_000_000 / capacity;
            self.tokens = (tokens + short as f64 - f64::from(size)).max(0.0);
            let serialised_us = i64::from(size) * 8_000_000 / capacity;
            self.queue_delay_us = self.queue_delay_us.max(leaves_us - now - serialised_us);
            self.link_free_us = leaves_us;
            let lost = self.random() < self.link.loss;
            (!lost).then_some(leaves_us + self.link.delay_us)
        };
        self.in_flight.push_back(PacketResult {
            send_us: now,
            size,
            arrival_us,
            probe_cluster,
        });
    }

    /// The receiver reports every packet up to the last one arrived by now (the lost ones
    /// before it too); the report reaches the sender after the propagation delay.
    fn send_feedback(&mut self, now: i64) {
        let mut last = None;
        for (i, packet) in self.in_flight.iter().enumerate() {
            match packet.arrival_us {
                Some(at) if at <= now => last = Some(i),
                Some(_) => break,
                None => {}
            }
        }
        if let Some(last) = last {
            let results: Vec<PacketResult> = self.in_flight.drain(..=last).collect();
            self.feedback.push_back((now + self.link.delay_us, results));
        }
    }

    fn random(&mut self) -> f64 {
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The 95th percentile of the samples' queue delays.
pub fn p95_queue_delay_us(samples: &[Sample]) -> i64 {
    let mut delays: Vec<i64> = samples.iter().map(|s| s.queue_delay_us).collect();
    delays.sort_unstable();
    delays.get(delays.len() * 95 / 100).copied().unwrap_or(0)
}
