//! Congestion control towards one remote: the bandwidth estimate from its transport-cc
//! feedback (or REMB), which the receiver's allocator spends, and the probe clusters that find
//! out whether more fits. The estimator and the probe schedule are `tutti_bwe`'s; this type
//! joins them to the transport's send history: which packets a feedback covers, when they
//! were sent, how large they were, and in which probe cluster.
//!
//! Probe clusters are filled with the media that happens to go during them and, for the rest,
//! with retransmissions of what the receiver was just sent (as RTX where it negotiated it):
//! useful bytes (a lost packet's repair) rather than padding.

use tutti_bwe::{BandwidthEstimator, Limit, Pace, Pacer, PacketResult, Padding};

/// Probe clusters whose packets are remembered (by transport-wide sequence number range).
const CLUSTER_RANGES: usize = 8;
/// Probe clusters resend the receiver's last this many packets of one source, newest first.
const PROBE_DEPTH: u16 = 32;
/// The estimate is told to the receiver at most this often.
const REPORT_INTERVAL_US: i64 = 1_000_000;
/// Retransmissions answering NACKs may take the estimate, over this window (as libwebrtc's
/// retransmission rate limiter; a second lets a lost key frame be repaired at once): on a congested link, a loss storm's repairs would otherwise
/// come on top of the media, keep the link overflowing and the estimate falling.
const RETRANSMISSION_WINDOW_US: i64 = 1_000_000;
/// Retransmissions remembered, to answer a receiver's NACKs of one packet at most once per
/// round trip (libwebrtc's packet history does the same). Chromium NACKs a lost packet again
/// every 100 ms or so, whatever the queue: behind a 600 kbit/s tbf link whose queue held
/// 250 ms, 32 lost packets were NACKed 265 times and resent 200 times, 440 kbit/s of the link
/// for 4 s, which kept it overflowing and the receiver freezing.
const RECENT_RETRANSMISSIONS: usize = 64;
/// Packets of one feedback passed to the estimator at most (a feedback covers at most this
/// many in practice: 50 ms of a 4 Mbit/s receiver is about 20).
const MAX_RESULTS: usize = 1024;

/// The transport-wide sequence numbers one probe cluster's packets were sent with.
#[derive(Clone, Copy)]
struct ClusterRange {
    id: u32,
    first: u16,
    last: u16,
}

impl ClusterRange {
    fn contains(&self, seq: u16) -> bool {
        seq.wrapping_sub(self.first) <= self.last.wrapping_sub(self.first)
    }
}

pub struct Congestion {
    estimator: BandwidthEstimator,
    /// The estimator's figure, as of its last input.
    estimate_bps: u64,
    /// Lets video go at the pacing rate (2.5 times the estimate) and runs probe clusters.
    pacer: Pacer,
    ranges: [Option<ClusterRange>; CLUSTER_RANGES],
    next_range: usize,
    /// The cluster the packets being sent now are padding of, and the bytes of the padding the
    /// pacer counted already that they have not used up (what goes beyond is counted: a
    /// retransmission of 1200 bytes for 265 of padding sent clusters at four times their rate,
    /// 18 kB at once that overflowed a 600 kbit/s tbf link's queue at every probe).
    padding_for: Option<(u32, u32)>,
    desired_bps: u64,
    /// The estimate the receiver's allocator last ran with.
    allocated_with_bps: u64,
    /// The estimate last told the receiver (ConnectionStats), and when.
    reported: Option<(u64, i64)>,
    /// How far back from the newest packet the next probe retransmission goes.
    probe_back: u16,
    /// Results of the feedback being read; its capacity is kept.
    results: Vec<PacketResult>,
    /// Bytes retransmissions may still take (negative: the last one went over), and when
    /// the budget was last refilled.
    retransmission_budget: i64,
    retransmission_refilled_us: i64,
    /// The last retransmissions: (SSRC, sequence number, when), a ring.
    recent_retransmissions: [(u32, u16, i64); RECENT_RETRANSMISSIONS],
    next_retransmission: usize,
    /// Feedback received, for the debug endpoint.
    pub feedback_seen: bool,
}

impl Congestion {
    pub fn new(initial_bps: u64) -> Congestion {
        let estimator = BandwidthEstimator::new(initial_bps);
        let estimate_bps = estimator.estimate_bps();
        let pacer = Pacer::new(estimate_bps);
        Congestion {
            estimator,
            estimate_bps,
            pacer,
            ranges: [None; CLUSTER_RANGES],
            next_range: 0,
            padding_for: None,
            desired_bps: 0,
            allocated_with_bps: 0,
            reported: None,
            probe_back: 0,
            results: Vec::new(),
            retransmission_budget: 0,
            retransmission_refilled_us: i64::MIN,
            recent_retransmissions: [(0, 0, i64::MIN); RECENT_RETRANSMISSIONS],
            next_retransmission: 0,
            feedback_seen: false,
        }
    }

    /// Whether a NACK may be answered now: the retransmissions of the last
    /// [`RETRANSMISSION_WINDOW_US`] took less than the estimate. Each one sent is then
    /// [`Congestion::retransmitted`].
    pub fn retransmission_allowed(&mut self, now_us: i64) -> bool {
        let bytes_per_s = (self.estimate_bps / 8) as i64;
        let window = bytes_per_s * RETRANSMISSION_WINDOW_US / 1_000_000;
        let elapsed = now_us
            .saturating_sub(self.retransmission_refilled_us)
            .clamp(0, RETRANSMISSION_WINDOW_US);
        self.retransmission_refilled_us = now_us;
        self.retransmission_budget =
            (self.retransmission_budget + bytes_per_s * elapsed / 1_000_000).min(window);
        self.retransmission_budget > 0
    }

    /// A retransmission of `bytes` went (or the pacer holds it): packet `sequence` of the
    /// receiver's stream `ssrc`.
    pub fn retransmitted(&mut self, ssrc: u32, sequence: u16, bytes: usize, now_us: i64) {
        self.retransmission_budget -= bytes as i64;
        self.recent_retransmissions[self.next_retransmission] = (ssrc, sequence, now_us);
        self.next_retransmission = (self.next_retransmission + 1) % RECENT_RETRANSMISSIONS;
    }

    /// Packet `sequence` of the receiver's stream `ssrc` was retransmitted less than a round
    /// trip ago: that retransmission may still be on its way (in the pacer or a queue on the
    /// path), and a NACK of it now is answered by it.
    pub fn retransmitted_within_rtt(&self, ssrc: u32, sequence: u16, now_us: i64) -> bool {
        let rtt_us = self.estimator.rtt_us();
        self.recent_retransmissions.iter().any(|&(s, q, at_us)| {
            s == ssrc && q == sequence && now_us.saturating_sub(at_us) < rtt_us
        })
    }

    /// The estimate the allocator spends, bit/s.
    pub fn estimate_bps(&self) -> u64 {
        self.estimate_bps
    }

    /// Which part of the estimator set it.
    pub fn limited_by(&self) -> Limit {
        self.estimator.limited_by()
    }

    /// What the receiver got, from its feedback.
    pub fn acknowledged_bps(&self) -> Option<u64> {
        self.estimator.acknowledged_bps()
    }

    /// What the allocator would forward with unlimited bandwidth: probing only goes for more
    /// when this is above the estimate.
    fn set_desired(&mut self, bps: u64) {
        self.desired_bps = bps;
        self.estimator.set_desired(bps);
    }

    /// The receiver's allocator ran with `estimate_bps` and would use `desired_bps`.
    pub fn allocated(&mut self, estimate_bps: u64, desired_bps: u64) {
        self.allocated_with_bps = estimate_bps;
        self.set_desired(desired_bps);
    }

    /// The estimate fell by more than a tenth since the allocator last ran: what it forwards
    /// may no longer fit, and it should run now rather than at its next turn.
    pub fn fell_since_allocation(&self) -> bool {
        self.estimate_bps < self.allocated_with_bps / 10 * 9
    }

    /// The estimate to tell the receiver now, if any: once feedback came, when it moved by a
    /// tenth or more since it was last told, at most once a second.
    pub fn report_due(&mut self, now_us: i64) -> Option<u64> {
        if !self.feedback_seen {
            return None;
        }
        let estimate = self.estimate_bps;
        let due = match self.reported {
            None => true,
            Some((told, at_us)) => {
                now_us.saturating_sub(at_us) >= REPORT_INTERVAL_US
                    && estimate.abs_diff(told) >= told / 10
            }
        };
        due.then(|| {
            self.reported = Some((estimate, now_us));
            estimate
        })
    }

    /// What was last given to [`Congestion::set_desired`].
    pub fn desired_bps(&self) -> u64 {
        self.desired_bps
    }

    /// A REMB from the remote.
    pub fn on_remb(&mut self, bps: u64) {
        self.estimator.on_remb(bps);
        self.estimate_changed();
    }

    fn estimate_changed(&mut self) {
        self.estimate_bps = self.estimator.estimate_bps();
        self.pacer.set_media_rate(self.estimate_bps);
    }

    /// May a packet of `bytes` leave now? Probe padding and packets that are not paced (audio)
    /// always may; paced ones (video) when the pacer's rate allows it. On [`Pace::Now`] the
    /// packet is counted as sent, with the probe cluster it belongs to.
    pub fn try_send(&mut self, now_us: i64, bytes: usize, paced: bool) -> Pace {
        let bytes = bytes.min(u32::MAX as usize) as u32;
        if let Some((id, left)) = self.padding_for.as_mut() {
            let beyond = bytes.saturating_sub(*left);
            *left = left.saturating_sub(bytes);
            if beyond > 0 {
                self.pacer.account(now_us, beyond);
            }
            return Pace::Now {
                probe_cluster: Some(*id),
            };
        }
        if !paced {
            return Pace::Now {
                probe_cluster: self.pacer.account(now_us, bytes),
            };
        }
        self.pacer.try_send(now_us, bytes)
    }

    /// A paced packet of `bytes` is held until the pacer lets it go.
    pub fn hold(&mut self, bytes: usize) {
        self.pacer.enqueue(bytes.min(u32::MAX as usize) as u32);
    }

    /// The packets held were dropped.
    pub fn forget_held(&mut self) {
        self.pacer.forget_queued();
    }

    /// A packet went with transport-wide sequence number `seq`, as part of probe cluster
    /// `cluster` if any.
    pub fn on_sent(&mut self, seq: u16, cluster: Option<u32>) {
        let Some(id) = cluster else {
            return;
        };
        let last = (self.next_range + CLUSTER_RANGES - 1) % CLUSTER_RANGES;
        match &mut self.ranges[last] {
            Some(range) if range.id == id && range.last.wrapping_add(1) == seq => range.last = seq,
            _ => {
                self.ranges[self.next_range] = Some(ClusterRange {
                    id,
                    first: seq,
                    last: seq,
                });
                self.next_range = (self.next_range + 1) % CLUSTER_RANGES;
            }
        }
    }

    /// Which probe cluster the packet sent with `seq` belonged to.
    fn cluster_of(&self, seq: u16) -> Option<u32> {
        self.ranges
            .iter()
            .flatten()
            .find(|r| r.contains(seq))
            .map(|r| r.id)
    }

    /// Starts reading one feedback packet.
    pub fn begin_feedback(&mut self) {
        self.results.clear();
        if self.results.capacity() == 0 {
            self.results.reserve_exact(64);
        }
    }

    /// One packet the feedback reports on for the first time: sent at `send_us` with `bytes`,
    /// arrived at `arrival_us` on the remote's clock (None: lost).
    pub fn feedback_packet(&mut self, seq: u16, send_us: i64, bytes: u32, arrival_us: Option<i64>) {
        if self.results.len() < MAX_RESULTS {
            let probe_cluster = self.cluster_of(seq);
            self.results.push(PacketResult {
                send_us,
                size: bytes,
                arrival_us,
                probe_cluster,
            });
        }
    }

    /// The feedback packet is read: the estimator takes it.
    pub fn end_feedback(&mut self, now_us: i64) {
        if self.results.is_empty() {
            return;
        }
        self.feedback_seen = true;
        self.estimator.on_packet_feedback(now_us, &self.results);
        self.estimate_changed();
    }

    /// Padding a probe cluster wants sent now (call it on every tick); the caller fills it
    /// between [`Congestion::begin_padding`] and [`Congestion::end_padding`].
    pub fn poll_padding(&mut self, now_us: i64) -> Option<Padding> {
        // Cheap checks first: this runs for every receiver every tick.
        if self.desired_bps > self.estimate_bps {
            if let Some(cluster) = self.estimator.poll_probe(now_us) {
                self.pacer.add_probe(cluster);
            }
        }
        if !self.pacer.probing() {
            return None;
        }
        self.pacer.poll_padding(now_us)
    }

    /// Packets sent from now on are `padding` (counted by the pacer as it gave it; the bytes
    /// sent beyond it are counted as they go).
    pub fn begin_padding(&mut self, padding: Padding) {
        self.padding_for = Some((padding.probe_cluster, padding.bytes));
    }

    pub fn end_padding(&mut self) {
        self.padding_for = None;
    }

    /// The packet to resend next for a probe: the newest minus this many.
    pub fn next_probe_back(&mut self) -> u16 {
        let back = self.probe_back;
        self.probe_back = (back + 1) % PROBE_DEPTH;
        back
    }

    pub fn heap_bytes(&self) -> usize {
        self.results.capacity() * std::mem::size_of::<PacketResult>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retransmissions_take_at_most_the_estimate() {
        // 400 kbit/s: 50,000 bytes of retransmissions per second.
        let mut c = Congestion::new(400_000);
        let mut sent = 0;
        while c.retransmission_allowed(1_000_000) {
            c.retransmitted(1, sent, 1_000, 1_000_000);
            sent += 1;
        }
        assert_eq!(sent, 50, "a full window at once");
        // 100 ms later, 5,000 bytes more; nothing saved up beyond the window.
        let more = (0..)
            .take_while(|_| {
                let allowed = c.retransmission_allowed(1_100_000);
                if allowed {
                    c.retransmitted(2, 0, 1_000, 1_100_000);
                }
                allowed
            })
            .count();
        assert_eq!(more, 5);
        assert!(c.retransmission_allowed(60_000_000));
        c.retransmitted(3, 0, 50_000, 60_000_000);
        assert!(!c.retransmission_allowed(60_000_000));
    }

    #[test]
    fn a_packet_is_retransmitted_at_most_once_a_round_trip() {
        let mut c = Congestion::new(1_000_000);
        // A round trip of 300 ms (a queue on the path): sent at 0, reported at 300 ms, and
        // so on until the smoothed figure settles there.
        c.begin_feedback();
        for i in 0..40u16 {
            let send_us = i64::from(i) * 50_000;
            c.begin_feedback();
            c.feedback_packet(i, send_us, 1000, Some(send_us + 280_000));
            c.end_feedback(send_us + 300_000);
        }
        let now = 10_000_000;
        assert!(!c.retransmitted_within_rtt(7, 100, now));
        c.retransmitted(7, 100, 1200, now);
        // NACKed again 100 ms later (Chromium's pace): that retransmission is still on its way.
        assert!(c.retransmitted_within_rtt(7, 100, now + 100_000));
        assert!(
            !c.retransmitted_within_rtt(7, 101, now + 100_000),
            "another packet"
        );
        assert!(
            !c.retransmitted_within_rtt(8, 100, now + 100_000),
            "another stream"
        );
        // A round trip later it was lost again, or the NACK is new: it goes again.
        assert!(!c.retransmitted_within_rtt(7, 100, now + 320_000));
    }

    #[test]
    fn packets_of_a_probe_cluster_are_told_apart_from_media() {
        let mut c = Congestion::new(300_000);
        // No feedback yet and nothing desired: nothing to probe.
        assert!(c.poll_padding(0).is_none());
        c.allocated(300_000, 5_000_000);
        let padding = (0..10)
            .find_map(|t| c.poll_padding(t * 1000))
            .expect("the first probe cluster starts");
        c.begin_padding(padding);
        for seq in [100, 101] {
            let Pace::Now { probe_cluster } = c.try_send(1_000, 1200, true) else {
                panic!("padding is not paced");
            };
            assert_eq!(probe_cluster, Some(padding.probe_cluster));
            c.on_sent(seq, probe_cluster);
        }
        c.end_padding();
        // Media after the cluster ended (or while none runs) carries no cluster.
        for seq in 102..110 {
            let Pace::Now { probe_cluster } = c.try_send(2_000_000 + i64::from(seq), 100, false)
            else {
                panic!("audio is not paced");
            };
            c.on_sent(seq, probe_cluster);
        }
        assert_eq!(c.cluster_of(100), Some(padding.probe_cluster));
        assert_eq!(c.cluster_of(101), Some(padding.probe_cluster));
        assert_eq!(c.cluster_of(99), None);
        assert_eq!(c.cluster_of(109), None);
    }

    #[test]
    fn a_retransmission_larger_than_a_probes_padding_counts_against_its_rate() {
        let mut c = Congestion::new(300_000);
        c.allocated(300_000, 5_000_000);
        let (start_us, padding) = (0..10)
            .find_map(|t| c.poll_padding(t * 1000).map(|p| (t * 1000, p)))
            .expect("the first probe cluster starts");
        // The first cluster goes at 900 kbit/s: 225 bytes of padding per 2 ms.
        assert_eq!(padding.bytes, 225);
        c.begin_padding(padding);
        assert!(matches!(
            c.try_send(start_us, 1200, true),
            Pace::Now {
                probe_cluster: Some(_)
            }
        ));
        c.end_padding();
        // 1200 bytes at 900 kbit/s take 10.7 ms: the cluster's next packet waits that long.
        let next_us = (start_us + 1..start_us + 20_000)
            .step_by(100)
            .find(|&t| c.poll_padding(t).is_some())
            .expect("the cluster goes on");
        assert!(
            next_us - start_us >= 10_600,
            "next padding after {} µs",
            next_us - start_us
        );
    }

    #[test]
    fn the_estimate_is_reported_when_it_moved_at_most_once_a_second() {
        let mut c = Congestion::new(1_000_000);
        assert_eq!(c.report_due(0), None, "no feedback yet");
        c.begin_feedback();
        c.feedback_packet(0, 0, 1000, Some(1_000));
        c.end_feedback(10_000);
        let first = c.report_due(20_000).expect("the first estimate");
        assert_eq!(first, c.estimate_bps());
        assert_eq!(c.report_due(2_000_000), None, "unchanged");
        c.on_remb(first / 2);
        assert_eq!(c.report_due(500_000), None, "within a second of the last");
        assert_eq!(c.report_due(2_000_000), Some(first / 2));
    }

    #[test]
    fn ranges_wrap_around_sequence_numbers() {
        let range = ClusterRange {
            id: 1,
            first: 65_534,
            last: 1,
        };
        assert!(range.contains(65_534) && range.contains(0) && range.contains(1));
        assert!(!range.contains(2) && !range.contains(65_533));
    }

    #[test]
    fn feedback_moves_the_estimate() {
        let mut c = Congestion::new(1_000_000);
        assert_eq!(c.limited_by(), Limit::Initial);
        // 300 kbit/s acknowledged for two seconds, every packet arriving 1 ms after it left.
        let mut seq = 0u16;
        for feedback in 0..40i64 {
            c.begin_feedback();
            for i in 0..5i64 {
                let send_us = feedback * 50_000 + i * 10_000;
                c.feedback_packet(seq, send_us, 375, Some(send_us + 1_000));
                seq = seq.wrapping_add(1);
            }
            c.end_feedback(feedback * 50_000 + 60_000);
        }
        assert!(c.feedback_seen);
        assert_eq!(c.limited_by(), Limit::Delay);
        let acked = c.acknowledged_bps().expect("acknowledged rate");
        assert!((250_000..=350_000).contains(&acked), "acked {acked}");
        // Nothing shows congestion: the estimate holds near the initial figure (it may only
        // grow up to 1.5 x what arrives).
        let estimate = c.estimate_bps();
        assert!((1_000_000..=1_100_000).contains(&estimate), "{estimate}");
        // Then a queue builds: each packet arrives 4 ms later than the one before it would
        // have. Overuse cuts the estimate to below what arrives.
        let mut queue_us = 0;
        for feedback in 40..80i64 {
            c.begin_feedback();
            for i in 0..5i64 {
                let send_us = feedback * 50_000 + i * 10_000;
                queue_us += 4_000;
                c.feedback_packet(seq, send_us, 375, Some(send_us + 1_000 + queue_us));
                seq = seq.wrapping_add(1);
            }
            c.end_feedback(feedback * 50_000 + 60_000 + queue_us);
        }
        assert_eq!(c.limited_by(), Limit::Delay);
        let estimate = c.estimate_bps();
        assert!(estimate < 300_000, "{estimate}");
    }
}
