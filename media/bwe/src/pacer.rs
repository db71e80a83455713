//! A pacer for one receiver: media leaves at the pacing rate (the estimate times
//! [`PACING_FACTOR`]), so a burst (a key frame) spreads instead of overrunning the link, and
//! probe clusters leave at their own rate, media first and padding to fill (libwebrtc's
//! pacing_controller and bitrate_prober).
//!
//! What is queued leaves within 500 ms at most, faster than the pacing rate if need be.
//!
//! The caller keeps the packets; the pacer keeps counts. Each packet queued is announced with
//! [`Pacer::enqueue`]; the caller then asks [`Pacer::try_send`] for the packet at the head of its
//! queue, and sends it on [`Pace::Now`] or waits until [`Pace::Later`]. While a probe cluster is
//! running, [`Pacer::poll_padding`] says how much padding (or retransmission) to send to keep
//! the cluster's rate when there is no media to send.

use crate::ProbeCluster;

/// Media leaves at this multiple of the media rate: fast enough that the pacer does not delay
/// a stream at the estimate, slow enough that a burst does not fill the bottleneck's queue
/// (libwebrtc's kDefaultPaceMultiplier).
pub const PACING_FACTOR: f64 = 2.5;
/// Media may run this far ahead of the pacing rate: packets that come at once (a batch of
/// datagrams read together, fanned out) leave at once up to this much of the rate, and a
/// caller that sends what was held every 5 ms keeps the rate.
const BURST_US: i64 = 5_000;
/// What is queued leaves within this time at most: the rate rises above the pacing rate when
/// it would not (a sender whose media outgrows the estimate for a while, before it or the
/// allocator adapts, must not build a queue of seconds).
const MAX_QUEUE_US: i64 = 500_000;
/// Probe padding goes in chunks of this much time at the cluster's rate.
const PROBE_CHUNK_US: i64 = 2_000;
/// A cluster that could not send its bytes in this time is dropped.
const PROBE_TIMEOUT_US: i64 = 1_000_000;
/// Clusters waiting for the one running.
const PROBES: usize = 4;

/// The answer to "may the packet at the head of my queue go now?".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pace {
    /// Send it now, tagged with this probe cluster if one is running.
    Now { probe_cluster: Option<u32> },
    /// Not before this time.
    Later { at_us: i64 },
}

/// Padding (or retransmissions) to send now for a probe cluster: about `bytes`, each packet
/// tagged with `probe_cluster`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Padding {
    pub bytes: u32,
    pub probe_cluster: u32,
}

#[derive(Clone, Copy)]
struct Running {
    cluster: ProbeCluster,
    started_us: i64,
    sent_bytes: u64,
    sent_packets: u32,
}

impl Running {
    /// When the cluster's schedule allows its next packet.
    fn next_us(&self) -> i64 {
        let target = self.cluster.target_bps.max(1);
        let offset = u128::from(self.sent_bytes) * 8_000_000 / u128::from(target);
        self.started_us
            .saturating_add(offset.min(i64::MAX as u128) as i64)
    }

    fn done(&self) -> bool {
        self.sent_bytes >= self.cluster.bytes() && self.sent_packets >= self.cluster.min_packets
    }
}

pub struct Pacer {
    pacing_bps: u64,
    /// Bytes sent beyond what the rate allowed so far; nothing may go while positive.
    debt_bytes: f64,
    last_us: Option<i64>,
    queued_bytes: u64,
    /// Clusters waiting, a ring.
    waiting: [Option<ProbeCluster>; PROBES],
    next_waiting: usize,
    running: Option<Running>,
}

impl Pacer {
    /// A pacer for media at `media_bps`.
    pub fn new(media_bps: u64) -> Pacer {
        let mut pacer = Pacer {
            pacing_bps: 0,
            debt_bytes: 0.0,
            last_us: None,
            queued_bytes: 0,
            waiting: [None; PROBES],
            next_waiting: 0,
            running: None,
        };
        pacer.set_media_rate(media_bps);
        pacer
    }

    /// The media rate changed (a new estimate, or a new allocation).
    pub fn set_media_rate(&mut self, media_bps: u64) {
        self.pacing_bps = ((media_bps as f64 * PACING_FACTOR) as u64).max(1);
    }

    /// The rate media leaves at.
    pub fn pacing_bps(&self) -> u64 {
        self.pacing_bps
    }

    /// A packet of `bytes` joined the caller's queue.
    pub fn enqueue(&mut self, bytes: u32) {
        self.queued_bytes = self.queued_bytes.saturating_add(u64::from(bytes));
    }

    /// The caller dropped what it had queued.
    pub fn forget_queued(&mut self) {
        self.queued_bytes = 0;
    }

    /// A probe cluster runs or waits.
    pub fn probing(&self) -> bool {
        self.running.is_some() || self.waiting.iter().any(Option::is_some)
    }

    /// Bytes announced and not sent yet (padding waits while there are any).
    pub fn queued_bytes(&self) -> u64 {
        self.queued_bytes
    }

    /// May the packet of `bytes` at the head of the caller's queue go now? On [`Pace::Now`] the
    /// pacer counts it as sent (and dequeued).
    pub fn try_send(&mut self, now_us: i64, bytes: u32) -> Pace {
        self.advance(now_us);
        let probe_due = self.running.is_some_and(|r| now_us >= r.next_us());
        if probe_due || self.debt_us() <= BURST_US {
            self.queued_bytes = self.queued_bytes.saturating_sub(u64::from(bytes));
            return Pace::Now {
                probe_cluster: self.sent(now_us, bytes),
            };
        }
        let mut at_us = now_us.saturating_add(self.debt_us() - BURST_US);
        if let Some(running) = self.running {
            at_us = at_us.min(running.next_us());
        }
        Pace::Later {
            at_us: at_us.max(now_us.saturating_add(1)),
        }
    }

    /// Counts a packet of `bytes` sent now without asking (a sender that does not hold media
    /// back, and uses the pacer for its probe clusters only). Returns the running probe
    /// cluster it belongs to.
    pub fn account(&mut self, now_us: i64, bytes: u32) -> Option<u32> {
        self.advance(now_us);
        self.sent(now_us, bytes)
    }

    /// Queues a probe cluster; it runs when those before it are done. Dropped when four
    /// clusters wait already.
    pub fn add_probe(&mut self, cluster: ProbeCluster) {
        let waiting = self.waiting.iter().flatten().count();
        if waiting < PROBES {
            self.waiting[(self.next_waiting + waiting) % PROBES] = Some(cluster);
        }
    }

    /// The padding a running probe cluster wants now, when no media is queued to send instead.
    /// What is returned counts as sent.
    pub fn poll_padding(&mut self, now_us: i64) -> Option<Padding> {
        self.advance(now_us);
        let running = self.running?;
        if self.queued_bytes > 0 || now_us < running.next_us() {
            return None;
        }
        let chunk = u128::from(running.cluster.target_bps) * PROBE_CHUNK_US as u128 / 8_000_000;
        let bytes = chunk.clamp(1, u128::from(u32::MAX)) as u32;
        let probe_cluster = self.sent(now_us, bytes)?;
        Some(Padding {
            bytes,
            probe_cluster,
        })
    }

    /// When the pacer next has something to allow: the head of a non-empty queue, or a probe
    /// cluster's next packet. None when idle.
    pub fn poll_timeout(&self) -> Option<i64> {
        let now_us = self.last_us?;
        let probe = self
            .running
            .map(|r| r.next_us())
            .or_else(|| self.waiting.iter().flatten().next().map(|_| now_us));
        let media = (self.queued_bytes > 0)
            .then(|| now_us.saturating_add((self.debt_us() - BURST_US).max(0)));
        match (probe, media) {
            (Some(p), Some(m)) => Some(p.min(m)),
            (p, m) => p.or(m),
        }
    }

    /// The pacing rate, or faster while that would keep what is queued longer than
    /// [`MAX_QUEUE_US`].
    fn draining_bps(&self) -> u64 {
        if self.queued_bytes == 0 {
            return self.pacing_bps;
        }
        let draining = u128::from(self.queued_bytes) * 8_000_000 / MAX_QUEUE_US as u128;
        self.pacing_bps
            .max(draining.min(u128::from(u64::MAX)) as u64)
    }

    fn debt_us(&self) -> i64 {
        let us = self.debt_bytes.max(0.0) * 8e6 / self.draining_bps() as f64;
        us.ceil() as i64
    }

    /// Pays the debt for the time passed, ends a cluster that timed out and starts the next.
    fn advance(&mut self, now_us: i64) {
        let elapsed_us = self.last_us.map_or(0, |t| now_us.saturating_sub(t).max(0));
        if self.last_us.is_none_or(|t| now_us > t) {
            self.last_us = Some(now_us);
        }
        let paid = self.draining_bps() as f64 * elapsed_us as f64 / 8e6;
        self.debt_bytes = (self.debt_bytes - paid).max(0.0);
        if self
            .running
            .is_some_and(|r| now_us.saturating_sub(r.started_us) > PROBE_TIMEOUT_US)
        {
            self.running = None;
        }
        if self.running.is_none() {
            if let Some(cluster) = self.waiting[self.next_waiting].take() {
                self.next_waiting = (self.next_waiting + 1) % PROBES;
                self.running = Some(Running {
                    cluster,
                    started_us: now_us,
                    sent_bytes: 0,
                    sent_packets: 0,
                });
            }
        }
    }

    /// Counts bytes sent; the running cluster's id, which they belong to.
    fn sent(&mut self, now_us: i64, bytes: u32) -> Option<u32> {
        self.debt_bytes += f64::from(bytes);
        let running = self.running.as_mut()?;
        running.sent_bytes = running.sent_bytes.saturating_add(u64::from(bytes));
        running.sent_packets = running.sent_packets.saturating_add(1);
        let id = running.cluster.id;
        if running.done() {
            self.running = None;
            self.advance(now_us);
        }
        Some(id)
    }
}
