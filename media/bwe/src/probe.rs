//! Probing: when to send a cluster of packets at a higher rate than the estimate, and what
//! rate the receiver saw them at (libwebrtc's probe_controller and probe_bitrate_estimator).

use crate::{PacketResult, MAX_BPS};

/// Initial probes: these multiples of the initial estimate.
const INITIAL_FACTORS: [u64; 2] = [3, 6];
/// Later probes: this multiple of the estimate (or of the last result, continuing upwards).
const FACTOR: u64 = 2;
/// A result of at least this fraction of the highest rate probed continues upwards.
const CONTINUE_FRACTION: f64 = 0.7;
/// Without a result this long after the last cluster, probing is over.
const RESULT_TIMEOUT_US: i64 = 1_000_000;
/// Probes for the allocator's demand are at least this far apart.
const INTERVAL_US: i64 = 5_000_000;
/// A cluster: this long and at least this many packets.
const DURATION_US: i64 = 15_000;
const MIN_PACKETS: u32 = 5;
/// ... and at least this many bytes (longer at low rates). A bottleneck shaped by a token bucket
/// (`tc … tbf`, a policer) lets what its bucket saved up while the link was underused pass at
/// once; a cluster within that reaches the receiver at the rate it was sent, whatever the link
/// carries. 15 ms at 1.2 Mbit/s is 2.25 kB, less than the 4 kB bucket of a tbf link.
const MIN_BYTES: u64 = 12_000;
/// ... but no more than this long at the cluster's rate: on a slow link a cluster's queue is
/// long (12 kB at twice the estimate into 300 kbit/s queued up to 176 ms, every 5 s: queue delay
/// p95 110 ms). A token bucket link of 600 kbit/s, probed at about 1.1 Mbit/s, still gets 12 kB.
const MAX_MIN_BYTES_US: i64 = 125_000;
/// The tail of a cluster, measured on its own, starts with the packet with which this
/// fraction of its bytes arrived. A bucket of B bytes, with a cluster sent at k times the
/// link's rate, empties once k B / (k - 1) bytes were sent: 8 kB of 12 at twice the rate for the
/// 4 kB of a tbf link. Measured from half the cluster, the tail still had some of the bucket
/// and came out at 1.1 times the link's rate, and the estimate a little above it.
const TAIL_FROM: f64 = 2.0 / 3.0;
/// The tail of a cluster whose packets arrived out of order is measured from this many packets
/// on (see [`ArrivalLine`]).
const MIN_JITTERED_TAIL_PACKETS: f64 = 8.0;
/// A result needs this fraction of the cluster's packets and bytes received.
const MIN_RECEIVED: f64 = 0.8;
/// Send and receive spans longer than this are not a probe's.
const MAX_SPAN_US: i64 = 1_000_000;
/// A receive rate this far above the send rate is measurement noise.
const MAX_RATIO: f64 = 2.0;
/// When the receive rate is clearly below the send rate the link is saturated: the result is
/// this fraction of the receive rate.
const SATURATED_RATIO: f64 = 0.9;
const SATURATED_UTILIZATION: f64 = 0.95;
/// Clusters remembered for evaluation.
const CLUSTERS: usize = 4;

/// A burst of packets to send at `target_bps` for `duration_us`: media due then, and padding
/// or retransmissions to fill up to the rate, each packet tagged with `id` so that its
/// feedback comes back as [`PacketResult::probe_cluster`]. Hand it to
/// [`Pacer::add_probe`](crate::Pacer::add_probe).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeCluster {
    pub id: u32,
    pub target_bps: u64,
    pub duration_us: i64,
    pub min_packets: u32,
}

impl ProbeCluster {
    /// The bytes the cluster sends: its rate over its duration.
    pub fn bytes(&self) -> u64 {
        let bytes = u128::from(self.target_bps) * self.duration_us.max(0) as u128 / 8_000_000;
        bytes.min(u128::from(u64::MAX)) as u64
    }
}

/// A least-squares line through (bytes arrived before a packet, in send order; its arrival
/// time): its slope is the time a byte took to arrive, the inverse of the receive rate. Random
/// delay on the path (jitter, which also reorders packets) moves a cluster's first and last
/// arrivals by up to twice itself, and a rate taken between them with it: 10 ms of it made the
/// last third of a 23 kB cluster on a 3 Mbit/s link (20 ms of arrivals) read 1.5 Mbit/s, and
/// the estimate stayed at 0.65 of the link; the line through every packet averages it out.
/// It is used only for a cluster whose packets arrived out of order: through a queue (a token
/// bucket's), where arrivals are exact, the line's tail also took in the end of the bucket's
/// burst and read above the link's rate at times.
#[derive(Clone, Copy, Default)]
struct ArrivalLine {
    n: f64,
    x: f64,
    y: f64,
    xx: f64,
    xy: f64,
    /// Arrival times are taken from this one (the first packet's), to keep the sums small.
    origin_us: Option<i64>,
}

impl ArrivalLine {
    fn add(&mut self, bytes_before: u64, arrival_us: i64) {
        let origin = *self.origin_us.get_or_insert(arrival_us);
        let (x, y) = (
            bytes_before as f64,
            arrival_us.saturating_sub(origin) as f64,
        );
        self.n += 1.0;
        self.x += x;
        self.y += y;
        self.xx += x * x;
        self.xy += x * y;
    }

    /// The receive rate the line shows, bit/s (from three packets on).
    fn bps(&self) -> Option<f64> {
        let spread = self.n * self.xx - self.x * self.x;
        if self.n < 3.0 || spread <= 0.0 {
            return None;
        }
        let us_per_byte = (self.n * self.xy - self.x * self.y) / spread;
        (us_per_byte > 0.0).then(|| 8e6 / us_per_byte)
    }
}

/// What came back of one cluster.
#[derive(Clone, Copy)]
struct Received {
    cluster: ProbeCluster,
    packets: u32,
    bytes: u64,
    first_send_us: i64,
    last_send_us: i64,
    last_send_bytes: u32,
    first_arrival_us: i64,
    first_arrival_bytes: u32,
    last_arrival_us: i64,
    /// The packet (in send order) with which [`TAIL_FROM`] of the cluster's bytes had arrived:
    /// its send and arrival times, and the bytes up to and with it.
    tail_start: Option<(i64, i64, u64)>,
    /// Arrivals against bytes, of the whole cluster and of its tail.
    line: ArrivalLine,
    tail_line: ArrivalLine,
    /// A packet arrived before one sent earlier: the path jitters.
    reordered: bool,
    updated: bool,
    /// When the cluster was decided, and whether it gave a result yet.
    queued_us: i64,
    resulted: bool,
    /// A packet of it was reported lost: the path dropped, a queue beyond the cluster's own.
    lost: bool,
}

impl Received {
    fn new(cluster: ProbeCluster, queued_us: i64) -> Received {
        Received {
            cluster,
            packets: 0,
            bytes: 0,
            first_send_us: i64::MAX,
            last_send_us: i64::MIN,
            last_send_bytes: 0,
            first_arrival_us: i64::MAX,
            first_arrival_bytes: 0,
            last_arrival_us: i64::MIN,
            tail_start: None,
            line: ArrivalLine::default(),
            tail_line: ArrivalLine::default(),
            reordered: false,
            updated: false,
            queued_us,
            resulted: false,
            lost: false,
        }
    }

    fn add(&mut self, send_us: i64, arrival_us: i64, size: u32) {
        let bytes_before = self.bytes;
        self.line.add(bytes_before, arrival_us);
        self.reordered |= arrival_us < self.last_arrival_us;
        self.packets = self.packets.saturating_add(1);
        self.bytes = self.bytes.saturating_add(u64::from(size));
        self.first_send_us = self.first_send_us.min(send_us);
        if send_us >= self.last_send_us {
            self.last_send_us = send_us;
            self.last_send_bytes = size;
        }
        if arrival_us < self.first_arrival_us {
            self.first_arrival_us = arrival_us;
            self.first_arrival_bytes = size;
        }
        self.last_arrival_us = self.last_arrival_us.max(arrival_us);
        let tail_from = self.cluster.bytes() as f64 * TAIL_FROM;
        if self.tail_start.is_none() && self.bytes as f64 >= tail_from {
            self.tail_start = Some((send_us, arrival_us, self.bytes));
        }
        if self.tail_start.is_some() {
            self.tail_line.add(bytes_before, arrival_us);
        }
        self.updated = true;
    }

    /// The rate the cluster shows, once enough of it arrived, and whether it saturated the link.
    fn result(&self) -> Option<ProbeResult> {
        let enough = f64::from(self.packets) >= f64::from(self.cluster.min_packets) * MIN_RECEIVED
            && self.bytes as f64 >= self.cluster.bytes() as f64 * MIN_RECEIVED;
        let send_span = self.last_send_us.saturating_sub(self.first_send_us);
        let receive_span = self.last_arrival_us.saturating_sub(self.first_arrival_us);
        let spans_valid =
            (1..=MAX_SPAN_US).contains(&send_span) && (1..=MAX_SPAN_US).contains(&receive_span);
        if !enough || !spans_valid {
            return None;
        }
        // Each span covers the bytes after its first packet (sent) or before its last (received).
        let send_bps = self.bytes.saturating_sub(u64::from(self.last_send_bytes)) as f64 * 8e6
            / send_span as f64;
        let line_bps = |line: &ArrivalLine| line.bps().filter(|_| self.reordered);
        let mut receive_bps = line_bps(&self.line).unwrap_or(
            self.bytes
                .saturating_sub(u64::from(self.first_arrival_bytes)) as f64
                * 8e6
                / receive_span as f64,
        );
        if receive_bps > MAX_RATIO * send_bps {
            return None;
        }
        // The tail on its own: what a token bucket let through at once went before it, and the
        // rest at the rate of the link.
        // On a jittering path a tail of a few packets says little (the last third of a 13 kB
        // cluster on a 3 Mbit/s link, five packets, read 2.1 Mbit/s with 10 ms of jitter).
        let tail_measurable = !self.reordered || self.tail_line.n >= MIN_JITTERED_TAIL_PACKETS;
        if let (Some((start_send_us, start_arrival_us, start_bytes)), true) =
            (self.tail_start, tail_measurable)
        {
            let tail_bytes = self.bytes.saturating_sub(start_bytes) as f64;
            let tail_send_span = self.last_send_us.saturating_sub(start_send_us);
            let tail_receive_span = self.last_arrival_us.saturating_sub(start_arrival_us);
            if tail_bytes > 0.0 && tail_send_span > 0 && tail_receive_span > 0 {
                let tail_send_bps = tail_bytes * 8e6 / tail_send_span as f64;
                let tail_receive_bps = line_bps(&self.tail_line)
                    .unwrap_or(tail_bytes * 8e6 / tail_receive_span as f64);
                // Saturated in its tail: what arrived then is the link's rate.
                if tail_receive_bps < SATURATED_RATIO * tail_send_bps {
                    receive_bps = receive_bps.min(tail_receive_bps);
                }
            }
        }
        let saturated = receive_bps < SATURATED_RATIO * send_bps;
        let bps = if saturated {
            SATURATED_UTILIZATION * receive_bps
        } else {
            send_bps.min(receive_bps)
        };
        (bps >= 1.0).then_some(ProbeResult {
            bps: bps.min(MAX_BPS as f64) as u64,
            saturated,
        })
    }
}

/// What a cluster showed: the rate the path carried, and whether the cluster filled it (it
/// arrived clearly slower than it was sent: the path carries no more than that).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct ProbeResult {
    pub bps: u64,
    pub saturated: bool,
}

#[derive(Clone, Copy)]
enum Phase {
    /// Nothing sent yet: the initial probes come first.
    Start,
    /// A cluster is out; a result of at least `continue_bps` probes further.
    Waiting {
        since_us: i64,
        continue_bps: u64,
    },
    Idle {
        since_us: i64,
    },
}

pub(crate) struct Prober {
    next_id: u32,
    /// What the path was last measured to carry: the last saturated result, or a higher one
    /// that did not saturate. Probes go at no less than twice it (see [`Prober::poll`]).
    path_bps: Option<u64>,
    phase: Phase,
    /// Clusters decided but not yet handed out (the initial probes are two).
    pending: [Option<ProbeCluster>; 2],
    received: [Option<Received>; CLUSTERS],
    next_slot: usize,
}

impl Prober {
    pub fn new() -> Prober {
        Prober {
            next_id: 0,
            path_bps: None,
            phase: Phase::Start,
            pending: [None; 2],
            received: [None; CLUSTERS],
            next_slot: 0,
        }
    }

    /// The next cluster to send, if any. `allowed`: the estimate is not limited by loss or
    /// REMB and the path is not overused; `wanted`: the allocator wants more than the estimate.
    pub fn poll(
        &mut self,
        now_us: i64,
        estimate_bps: u64,
        allowed: bool,
        wanted: bool,
    ) -> Option<ProbeCluster> {
        if let Some(cluster) = self.pending.iter_mut().find_map(Option::take) {
            return Some(cluster);
        }
        match self.phase {
            // The initial probes too wait until more is wanted: a receiver whose allocation
            // fits the initial estimate is not sent a burst for nothing.
            Phase::Start if wanted => {
                let mut highest = 0;
                for factor in INITIAL_FACTORS {
                    let target = estimate_bps.saturating_mul(factor).min(MAX_BPS);
                    if target > estimate_bps && target > highest {
                        highest = target;
                        self.queue(now_us, target);
                    }
                }
                self.wait(now_us, highest);
            }
            Phase::Start => {}
            Phase::Waiting { since_us, .. } => {
                if now_us.saturating_sub(since_us) > RESULT_TIMEOUT_US {
                    self.phase = Phase::Idle { since_us: now_us };
                }
            }
            Phase::Idle { since_us } => {
                let due = now_us.saturating_sub(since_us) >= INTERVAL_US;
                // At twice the estimate, or twice what the path was measured to carry when
                // the estimate is below it (after a cut for loss), up to four times the
                // estimate. A token bucket on the path lets k B / (k - 1) bytes of a cluster
                // at k times its rate through at once (B its depth): at 2 times, 8 kB of a 4 kB
                // bucket, and the cluster's last third measures the link; at 1.15 times (twice
                // an estimate cut to 345 kbit/s, on a 600 kbit/s tbf link) 31 kB, the whole
                // cluster, which came back at its own rate and set the estimate to 690-770
                // kbit/s: the layer above, and loss.
                let base = self.path_bps.map_or(estimate_bps, |path| {
                    path.min(estimate_bps.saturating_mul(FACTOR))
                        .max(estimate_bps)
                });
                let target = base.saturating_mul(FACTOR).min(MAX_BPS);
                if allowed && wanted && due && target > estimate_bps {
                    self.queue(now_us, target);
                    self.wait(now_us, target);
                }
            }
        }
        self.pending.iter_mut().find_map(Option::take)
    }

    /// A result came in; probes further if it came close to the rate probed without filling
    /// the path, and the estimate may still grow.
    pub fn on_result(&mut self, now_us: i64, result: ProbeResult, allowed: bool, wanted: bool) {
        if let Phase::Waiting { continue_bps, .. } = self.phase {
            let bps = result.bps;
            let target = bps.saturating_mul(FACTOR).min(MAX_BPS);
            if allowed && wanted && !result.saturated && bps >= continue_bps && target > bps {
                self.queue(now_us, target);
                self.wait(now_us, target);
            }
        }
    }

    fn queue(&mut self, now_us: i64, target_bps: u64) {
        let for_min_bytes = (MIN_BYTES as u128 * 8_000_000 / u128::from(target_bps.max(1)))
            .min(MAX_MIN_BYTES_US as u128);
        let cluster = ProbeCluster {
            id: self.next_id,
            target_bps,
            duration_us: DURATION_US.max(for_min_bytes.min(RESULT_TIMEOUT_US as u128) as i64),
            min_packets: MIN_PACKETS,
        };
        self.next_id = self.next_id.wrapping_add(1);
        if let Some(slot) = self.pending.iter_mut().find(|c| c.is_none()) {
            *slot = Some(cluster);
        }
        self.received[self.next_slot] = Some(Received::new(cluster, now_us));
        self.next_slot = (self.next_slot + 1) % CLUSTERS;
    }

    fn wait(&mut self, now_us: i64, highest_bps: u64) {
        self.phase = if highest_bps == 0 {
            Phase::Idle { since_us: now_us }
        } else {
            Phase::Waiting {
                since_us: now_us,
                continue_bps: (highest_bps as f64 * CONTINUE_FRACTION) as u64,
            }
        };
    }

    /// Counts a packet of a cluster (of ours, remembered still), received or lost.
    pub fn on_packet(&mut self, result: &PacketResult) {
        let Some(id) = result.probe_cluster else {
            return;
        };
        let slot = self
            .received
            .iter_mut()
            .flatten()
            .find(|r| r.cluster.id == id);
        match (slot, result.arrival_us) {
            (Some(received), Some(arrival_us)) => {
                received.add(result.send_us, arrival_us, result.size)
            }
            (Some(received), None) => received.lost = true,
            (None, _) => {}
        }
    }

    /// The highest rate shown by the clusters that got packets since the last call.
    pub fn take_result(&mut self) -> Option<ProbeResult> {
        let mut best = None;
        for received in self.received.iter_mut().flatten() {
            if std::mem::take(&mut received.updated) {
                let result = received.result();
                received.resulted |= result.is_some();
                best = best.max(result);
            }
        }
        if let Some(result) = best {
            if result.saturated || self.path_bps.is_none_or(|path| result.bps > path) {
                self.path_bps = Some(result.bps);
            }
        }
        best
    }

    /// A cluster is on its way: packets of it were reported, none lost, not yet enough for a
    /// result, and it was sent within [`RESULT_TIMEOUT_US`]. A queue the path shows meanwhile
    /// is most likely the cluster's own (a cluster above the path's rate queues from its first
    /// packets, and the delay trend sees it before 80% of the cluster arrived); one that lost
    /// packets met a full queue, which is congestion whoever made it.
    pub fn awaiting_result(&self, now_us: i64) -> bool {
        self.received.iter().flatten().any(|r| {
            r.packets > 0
                && !r.resulted
                && !r.lost
                && now_us.saturating_sub(r.queued_us) <= RESULT_TIMEOUT_US
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cluster of 13 packets of 1065 bytes sent at 4.5 Mbit/s through a 3 Mbit/s link, each
    /// delayed 0-10 ms more at random after it (the first one least, the last one most).
    fn jittered_cluster(prober: &mut Prober) {
        prober.queue(0, 4_500_000);
        let jitter_us = [
            0, 9_000, 3_000, 7_000, 1_000, 8_000, 5_000, 2_000, 6_000, 4_000, 7_500, 500, 9_900,
        ];
        let (size, link_us) = (1065u32, 1065 * 8 * 1_000_000 / 3_000_000);
        let mut left_us = 0i64;
        for (i, jitter) in jitter_us.into_iter().enumerate() {
            let send_us = i as i64 * 1065 * 8 * 1_000_000 / 4_500_000;
            left_us = left_us.max(send_us) + link_us;
            prober.on_packet(&PacketResult {
                send_us,
                size,
                arrival_us: Some(20_000 + left_us + jitter),
                probe_cluster: Some(0),
            });
        }
    }

    #[test]
    fn a_jittered_cluster_measures_the_link_through_every_arrival() {
        let mut prober = Prober::new();
        jittered_cluster(&mut prober);
        let result = prober.take_result().expect("a result");
        assert!(result.saturated);
        // About 95% of 3 Mbit/s (2.69 Mbit/s); taken between the first and last arrivals, 2.2.
        assert!(
            (2_550_000..=3_000_000).contains(&result.bps),
            "{} bit/s",
            result.bps
        );
    }
}
