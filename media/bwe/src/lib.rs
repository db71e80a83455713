//! Send-side bandwidth estimation for one receiver, and a pacer; sans-IO: fed with time (µs on
//! the sender's clock), sends and feedback, they say what to do, and never read a clock,
//! allocate in steady state, or panic on any input.
//!
//! # In
//!
//! - [`BandwidthEstimator::on_packet_feedback`]: what one transport-cc feedback packet
//!   (draft-holmer-rmcat-transport-wide-cc-extensions-01) reported, matched to the send history:
//!   per packet, in send order, its send time and size, its arrival time on the receiver's clock
//!   or that it was lost, and the probe cluster it was sent in.
//! - [`BandwidthEstimator::on_remb`]: a receiver's REMB (for receivers without transport-cc).
//! - [`BandwidthEstimator::set_desired`]: what the allocator would use if it had it (probing
//!   for more only happens when it wants more).
//!
//! # Out
//!
//! - [`BandwidthEstimator::estimate_bps`], for the allocator, and
//!   [`BandwidthEstimator::limited_by`], which part set it.
//! - [`BandwidthEstimator::poll_probe`]: probe clusters to hand to the [`Pacer`].
//!
//! # How
//!
//! The estimate is the lowest of three parts (draft-ietf-rmcat-gcc-02, as libwebrtc's
//! goog_cc implements it; the constants are libwebrtc's unless said otherwise):
//!
//! - Delay: received packets form groups (those sent within 5 ms of a group's first); the
//!   change of delay from one group to the next accumulates, is smoothed (0.9) and its trend is
//!   the slope of a linear regression over the last 20 groups. The trend times min(groups, 60)
//!   times 4 is compared with an adaptive threshold (12.5 ms at first, 6..600, adapting at
//!   0.0087 up and 0.039 down): above it for 10 ms and two groups is overuse, below its
//!   negative underuse. AIMD rate control: overuse cuts the rate to 0.85 times the acknowledged
//!   bitrate, at most once an RTT; normal grows it 8% a second, or by about a packet per
//!   RTT + 100 ms near the link capacity seen at earlier overuses, and never above 1.5 times
//!   the acknowledged bitrate plus 10 kbit/s; underuse holds it. The acknowledged bitrate (what
//!   the receiver got) merges 150 ms windows of arrivals in a Bayesian estimate whose trust in
//!   a window falls with its distance from the estimate, relative to the sum of both (so that
//!   it follows a rise, after a probe, as fast as a fall; libwebrtc divides by the estimate).
//! - Loss: the fraction lost over the feedback of the last second (at least 20 packets; one
//!   feedback's fraction is too coarse: one loss in 40 packets reads 2.5%), not counting
//!   feedback a decrease already answered. Above 10% the part's ceiling falls to
//!   (1 - fraction / 2) times the estimate, at most once per 300 ms + RTT; from 2% to 10% it
//!   holds; up to 2% it rises to 8% (plus 1 kbit/s) above the lowest estimate of the last
//!   second, and is lifted once it reaches the other parts' estimate or after 2 s at 2% or less
//!   (loss then limits nothing: the part only exists while loss is what limits).
//! - REMB: the receiver's own figure, when it sends one.
//!
//! Before any feedback the estimate is the initial one; without transport-cc it is the REMB.
//! It is kept within [`MIN_BPS`]..[`MAX_BPS`].
//!
//! Probing: once the allocator wants more than the estimate, first two clusters at 3 and 6 times
//! the initial estimate; then, while it still wants more, the estimate is limited by delay (not by
//! loss, nor by REMB) and the path is not overused, one at twice the estimate every 5 s. A cluster
//! is 15 ms, at least 5 packets and at least 12 kB (longer at low rates: a token bucket on the
//! path lets what it saved up pass at once, and a smaller cluster would reach the receiver at
//! the rate it was sent whatever the link carries), but no longer than 125 ms for that (the
//! queue it makes on a slow link). Its result (given 80% of its packets and
//! bytes arrived) is the lower of its send and receive rates, or 95% of the receive rate when
//! that is below 90% of the send rate (the link was saturated); the receive rate is the lower of
//! the whole cluster's and, when its last third arrived that much slower than it was sent, that
//! third's (a bucket's burst went first); when its packets arrived out of order (jitter), the
//! receive rates are the slopes of least-squares lines through the arrivals, the last third's
//! from 8 packets on. A saturated result sets the delay-based rate, up or
//! down (the cluster measured the path). Overuse while a cluster is on its way (packets of it
//! reported, not yet its result) or within 1 s of a saturated result is the cluster's own
//! queue, not cut for (a cluster above the link's rate queues from its first packet, and the
//! delay trend saw it before 80% of the cluster arrived: cut to 0.85 times what the receiver
//! acknowledged, the media's rate, the rate fell to a fraction of the link, and the result
//! arriving after was dropped); the rate then grows no further by itself than the lower of the last two
//! such results (one may measure high; a sender
//! below the link's rate, such as one sending a layer that fits, sees no delay that would stop
//! it: it grew to 1.5 times what arrived, past a token bucket link's rate, until loss cut it),
//! and near it additively. Another result above the estimate raises it (and lifts that limit
//! once above it); a result of at least 70% of the rate probed that did not saturate probes
//! again at twice the result.
//!
//! The [`Pacer`] sends media at [`PACING_FACTOR`] times the media rate, runs the probe
//! clusters, and says how much padding they need.

mod aimd;
mod delay;
mod loss;
mod pacer;
mod probe;

pub use pacer::{Pace, Pacer, Padding, PACING_FACTOR};
pub use probe::ProbeCluster;

use aimd::Aimd;
use delay::{AckedRate, InterArrival, Trendline, Usage};
use loss::LossBased;
use probe::Prober;

/// The lowest estimate given out (enough for audio and a thumbnail's lowest layer).
pub const MIN_BPS: u64 = 30_000;
/// The highest estimate given out.
pub const MAX_BPS: u64 = 100_000_000;
/// Larger reported sizes are counted as this (the largest UDP datagram).
const MAX_PACKET_BYTES: u32 = 65_535;
/// RTT until measured, and its bound.
const INITIAL_RTT_US: i64 = 200_000;
/// Overuse this soon after a probe cluster that filled the path is that cluster's queue.
const PROBE_QUEUE_US: i64 = 1_000_000;
const MAX_RTT_US: i64 = 2_000_000;

/// One packet of a transport-cc feedback, matched to what was sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketResult {
    /// When it was sent, µs on the sender's clock.
    pub send_us: i64,
    /// Bytes sent: the whole datagram, with its UDP and IP headers (what the link carries).
    pub size: u32,
    /// When it arrived, µs on the receiver's clock (only differences count); None: lost.
    pub arrival_us: Option<i64>,
    /// The [`ProbeCluster::id`] it was sent in, if any.
    pub probe_cluster: Option<u32>,
}

/// Which part the estimate comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    /// No feedback yet: the initial estimate.
    Initial,
    /// The delay-based part (with or without probe results).
    Delay,
    /// The loss-based part: more loss than the path should have.
    Loss,
    /// The receiver's REMB.
    Remb,
}

/// The bandwidth estimate towards one receiver.
pub struct BandwidthEstimator {
    initial_bps: u64,
    /// Transport-cc feedback came: the delay and loss parts count.
    feedback_seen: bool,
    inter_arrival: InterArrival,
    trendline: Trendline,
    acked: AckedRate,
    aimd: Aimd,
    loss: LossBased,
    remb_bps: Option<u64>,
    desired_bps: Option<u64>,
    rtt_us: i64,
    prober: Prober,
    /// When the last probe cluster that filled the path came back, and the rate it showed.
    saturated_probe: Option<(i64, u64)>,
}

impl BandwidthEstimator {
    /// Starts at `initial_bps` (bounded to [`MIN_BPS`]..[`MAX_BPS`]).
    pub fn new(initial_bps: u64) -> BandwidthEstimator {
        let initial_bps = initial_bps.clamp(MIN_BPS, MAX_BPS);
        BandwidthEstimator {
            initial_bps,
            feedback_seen: false,
            inter_arrival: InterArrival::new(),
            trendline: Trendline::new(),
            acked: AckedRate::new(),
            aimd: Aimd::new(initial_bps),
            loss: LossBased::new(),
            remb_bps: None,
            desired_bps: None,
            rtt_us: INITIAL_RTT_US,
            prober: Prober::new(),
            saturated_probe: None,
        }
    }

    /// What one feedback packet reported, in send order, received at `now_us`.
    pub fn on_packet_feedback(&mut self, now_us: i64, results: &[PacketResult]) {
        if results.is_empty() {
            return;
        }
        self.feedback_seen = true;
        let (mut lost, mut total) = (0u32, 0u32);
        let mut rtt_sample: Option<i64> = None;
        for result in results {
            total = total.saturating_add(1);
            self.prober.on_packet(result);
            let Some(arrival_us) = result.arrival_us else {
                lost = lost.saturating_add(1);
                continue;
            };
            self.acked
                .update(arrival_us, result.size.min(MAX_PACKET_BYTES));
            if let Some(delta) = self.inter_arrival.push(result.send_us, arrival_us) {
                self.trendline.update(delta);
            }
            let since_sent = now_us.saturating_sub(result.send_us);
            if since_sent >= 0 {
                rtt_sample = Some(rtt_sample.map_or(since_sent, |r| r.min(since_sent)));
            }
        }
        if let Some(sample) = rtt_sample {
            self.rtt_us = (7 * self.rtt_us + sample.min(MAX_RTT_US)) / 8;
        }

        let acked = self.acked.bps();
        // A cluster that filled the path measured it: the rate follows, up or down. Any other
        // result counts when it is above the rate.
        let probe = self
            .prober
            .take_result()
            .filter(|result| result.saturated || result.bps > self.aimd.bps());
        if let Some(result) = probe.filter(|result| result.saturated) {
            self.saturated_probe = Some((now_us, result.bps));
        }
        let probe_queue = self
            .saturated_probe
            .filter(|&(at_us, _)| now_us.saturating_sub(at_us) <= PROBE_QUEUE_US);
        let usage = self.trendline.usage();
        let probes_queue = probe_queue.is_some() || self.prober.awaiting_result(now_us);
        if usage == Usage::Over && probes_queue {
            // The queue is a probe cluster's own: what the cluster measured sets the rate, up
            // or down, and nothing else cuts it (the media alone leaves the queue to drain).
            // Cut to what the receiver acknowledged meanwhile, the rate would fall to the media's
            // (a receiver forwarded less than the link carries is probed above it), and the
            // cluster's result, arriving after, be lost.
            if let Some(result) = probe.filter(|result| result.saturated) {
                self.aimd.on_probe(now_us, result.bps, true);
            } else if let Some((_, bps)) = probe_queue.filter(|&(_, bps)| bps < self.aimd.bps()) {
                self.aimd.on_probe(now_us, bps, true);
            }
        } else if usage == Usage::Over {
            if self.aimd.time_to_reduce(now_us, acked, self.rtt_us) {
                match acked {
                    Some(_) => self.aimd.update(now_us, usage, acked, self.rtt_us),
                    None => self.aimd.set(now_us, self.aimd.bps() / 2),
                }
            }
        } else if let Some(result) = probe {
            self.aimd.on_probe(now_us, result.bps, result.saturated);
        } else {
            self.aimd.update(now_us, usage, acked, self.rtt_us);
        }

        let others = self
            .remb_bps
            .map_or(self.aimd.bps(), |r| r.min(self.aimd.bps()));
        let ceiling = self.loss.ceiling_bps();
        self.loss.update(now_us, lost, total, others, self.rtt_us);
        if let (Some(ceiling), None) = (ceiling, self.loss.ceiling_bps()) {
            // Loss limits no more. The delay-based part may have grown meanwhile (up to 1.5
            // times what arrived): a link that drops rather than queues shows no delay trend.
            // It resumes from what the path delivered; probes find out whether more fits.
            let delivered = acked.map_or(ceiling, |a| a.max(ceiling));
            if delivered < self.aimd.bps() {
                self.aimd.set(now_us, delivered);
            }
        }
        if let (Some(result), false) = (probe, usage == Usage::Over) {
            self.loss.on_probe(result.bps);
            let (estimate, _) = self.combined();
            let allowed = self.probing_allowed();
            let wanted = self.desired_bps.is_none_or(|d| d > estimate);
            self.prober.on_result(now_us, result, allowed, wanted);
        }
    }

    /// A REMB from the receiver.
    pub fn on_remb(&mut self, bps: u64) {
        self.remb_bps = Some(bps.clamp(MIN_BPS, MAX_BPS));
    }

    /// What the allocator would use if it had it; probing for more happens only below it.
    pub fn set_desired(&mut self, bps: u64) {
        self.desired_bps = Some(bps);
    }

    /// The estimate, bit/s.
    pub fn estimate_bps(&self) -> u64 {
        self.combined().0
    }

    /// Which part the estimate comes from.
    pub fn limited_by(&self) -> Limit {
        self.combined().1
    }

    /// The round-trip time, µs: from sending a packet to its feedback coming back (queues on
    /// the path included), smoothed.
    pub fn rtt_us(&self) -> i64 {
        self.rtt_us
    }

    /// The rate the receiver is getting, from its feedback, once known.
    pub fn acknowledged_bps(&self) -> Option<u64> {
        self.acked.bps()
    }

    /// A probe cluster to start now, if any; call it whenever pacing (only for a receiver that
    /// sends transport-cc feedback: probes are measured from it).
    pub fn poll_probe(&mut self, now_us: i64) -> Option<ProbeCluster> {
        let (estimate, _) = self.combined();
        let allowed = self.probing_allowed();
        let wanted = self.desired_bps.is_some_and(|d| d > estimate);
        self.prober.poll(now_us, estimate, allowed, wanted)
    }

    fn probing_allowed(&self) -> bool {
        matches!(self.limited_by(), Limit::Initial | Limit::Delay)
            && self.trendline.usage() != Usage::Over
    }

    fn combined(&self) -> (u64, Limit) {
        if !self.feedback_seen {
            return match self.remb_bps {
                Some(bps) => (bps, Limit::Remb),
                None => (self.initial_bps, Limit::Initial),
            };
        }
        let mut best = (self.aimd.bps(), Limit::Delay);
        if let Some(bps) = self.remb_bps.filter(|&bps| bps < best.0) {
            best = (bps, Limit::Remb);
        }
        if let Some(bps) = self.loss.ceiling_bps().filter(|&bps| bps < best.0) {
            best = (bps, Limit::Loss);
        }
        (best.0.clamp(MIN_BPS, MAX_BPS), best.1)
    }
}
