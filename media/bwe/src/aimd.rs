//! AIMD rate control driven by the overuse detector (draft-ietf-rmcat-gcc-02 section 5.5;
//! libwebrtc's aimd_rate_control and link_capacity_estimator).

use crate::delay::Usage;
use crate::{MAX_BPS, MIN_BPS};

/// On overuse the rate goes to this fraction of the acknowledged bitrate.
const BETA: f64 = 0.85;
/// Far from the last known link capacity the rate grows by this factor a second.
const MULTIPLICATIVE_PER_S: f64 = 1.08;
const MIN_MULTIPLICATIVE_STEP_BPS: f64 = 1000.0;
/// Near it, about a packet per response time (RTT + this), assuming 30 frames a second of
/// packets of at most this size; at least this many bit/s a second.
const RESPONSE_EXTRA_US: i64 = 100_000;
const FRAMES_PER_S: f64 = 30.0;
const PACKET_BITS: f64 = 1200.0 * 8.0;
const MIN_ADDITIVE_BPS_PER_S: f64 = 4000.0;
/// The rate does not grow beyond this multiple of what the receiver acknowledged, plus this.
const ACKED_HEADROOM: f64 = 1.5;
const ACKED_HEADROOM_BPS: f64 = 10_000.0;
/// A further decrease waits an RTT, clamped to these bounds, unless the acknowledged rate fell
/// below half the estimate.
const MIN_REDUCE_INTERVAL_US: i64 = 10_000;
const MAX_REDUCE_INTERVAL_US: i64 = 200_000;
/// Link capacity estimate: smoothing of the acknowledged rates seen at overuse, and the bounds
/// of its normalised variance; "near" it means within three deviations.
const CAPACITY_ALPHA: f64 = 0.05;
const CAPACITY_VARIANCE_MIN: f64 = 0.4;
const CAPACITY_VARIANCE_MAX: f64 = 2.5;

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Hold,
    Increase,
    Decrease,
}

/// The acknowledged rates at which overuse was detected: where the link's capacity probably is.
struct LinkCapacity {
    estimate_kbps: Option<f64>,
    variance: f64,
}

impl LinkCapacity {
    fn deviation_kbps(&self, estimate: f64) -> f64 {
        (self.variance * estimate).max(0.0).sqrt()
    }

    fn upper_bps(&self) -> f64 {
        self.estimate_kbps.map_or(f64::INFINITY, |e| {
            (e + 3.0 * self.deviation_kbps(e)) * 1000.0
        })
    }

    fn lower_bps(&self) -> f64 {
        self.estimate_kbps.map_or(0.0, |e| {
            (e - 3.0 * self.deviation_kbps(e)).max(0.0) * 1000.0
        })
    }

    fn on_overuse(&mut self, acked_bps: f64) {
        let sample = acked_bps / 1000.0;
        let estimate = match self.estimate_kbps {
            None => sample,
            Some(e) => (1.0 - CAPACITY_ALPHA) * e + CAPACITY_ALPHA * sample,
        };
        let error = estimate - sample;
        self.variance = ((1.0 - CAPACITY_ALPHA) * self.variance
            + CAPACITY_ALPHA * error * error / estimate.max(1.0))
        .clamp(CAPACITY_VARIANCE_MIN, CAPACITY_VARIANCE_MAX);
        self.estimate_kbps = estimate.is_finite().then_some(estimate);
    }

    /// A probe cluster that filled the path measured it (libwebrtc weighs such a result half).
    fn on_probe(&mut self, bps: f64) {
        let sample = bps / 1000.0;
        let estimate = self.estimate_kbps.map_or(sample, |e| (e + sample) / 2.0);
        self.estimate_kbps = estimate.is_finite().then_some(estimate);
    }

    fn reset(&mut self) {
        self.estimate_kbps = None;
    }
}

pub(crate) struct Aimd {
    bps: f64,
    state: State,
    last_change_us: Option<i64>,
    capacity: LinkCapacity,
    /// The last acknowledged rate given, used when an update comes without one.
    acked_bps: Option<f64>,
    /// What the last two probe clusters that filled the path measured, the lower: the rate
    /// does not grow beyond it by itself (a sender that does not fill the link, such as one
    /// sending the layer below, sees no delay that would stop it; on a token bucket link it
    /// grew up to 1.5 times what arrived, the allocator chose the layer above, and loss cut
    /// it). Two, because one may measure high (Chromium's arrival times behind a 600 kbit/s
    /// tbf link gave 616–653 kbit/s at times). A probe that arrives faster lifts it.
    probed_bps: Option<f64>,
    /// The last such probe's result.
    last_probe_bps: Option<f64>,
}

impl Aimd {
    pub fn new(bps: u64) -> Aimd {
        Aimd {
            bps: bps as f64,
            state: State::Hold,
            last_change_us: None,
            capacity: LinkCapacity {
                estimate_kbps: None,
                variance: CAPACITY_VARIANCE_MIN,
            },
            acked_bps: None,
            probed_bps: None,
            last_probe_bps: None,
        }
    }

    pub fn bps(&self) -> u64 {
        self.bps as u64
    }

    /// Sets the rate (halving before anything was acknowledged, or lowering it to what a probe
    /// or the path showed).
    pub fn set(&mut self, now_us: i64, bps: u64) {
        self.bps = clamp(bps as f64);
        self.last_change_us = Some(now_us);
    }

    /// A probe cluster's result sets the rate. One that filled the path (`saturated`) measured
    /// it: the rate grows no further by itself, and near it only additively (the result counts
    /// as the link's capacity, as an overuse at that rate would); one that did not lifts what an
    /// earlier one measured, if it went beyond.
    pub fn on_probe(&mut self, now_us: i64, bps: u64, saturated: bool) {
        self.set(now_us, bps);
        if saturated {
            let measured = self.bps;
            let probed = self
                .last_probe_bps
                .map_or(measured, |last| last.min(measured));
            self.last_probe_bps = Some(measured);
            self.probed_bps = Some(probed);
            self.bps = probed;
            self.capacity.on_probe(probed);
        } else if self.probed_bps.is_some_and(|probed| self.bps > probed) {
            self.probed_bps = None;
            self.last_probe_bps = None;
        }
    }

    fn elapsed_us(&self, now_us: i64) -> i64 {
        self.last_change_us
            .map_or(0, |t| now_us.saturating_sub(t).max(0))
    }

    /// Whether overuse may cut the rate again already.
    pub fn time_to_reduce(&self, now_us: i64, acked_bps: Option<u64>, rtt_us: i64) -> bool {
        let interval = rtt_us.clamp(MIN_REDUCE_INTERVAL_US, MAX_REDUCE_INTERVAL_US);
        if self.last_change_us.is_none() || self.elapsed_us(now_us) >= interval {
            return true;
        }
        acked_bps.is_some_and(|acked| (acked as f64) < self.bps / 2.0)
    }

    pub fn update(&mut self, now_us: i64, usage: Usage, acked_bps: Option<u64>, rtt_us: i64) {
        if let Some(acked) = acked_bps {
            self.acked_bps = Some(acked as f64);
        }
        let throughput = self.acked_bps;
        self.state = match (usage, self.state) {
            (Usage::Normal, State::Hold) => {
                self.last_change_us = Some(now_us);
                State::Increase
            }
            (Usage::Normal, state) => state,
            (Usage::Over, _) => State::Decrease,
            (Usage::Under, _) => State::Hold,
        };
        match self.state {
            State::Hold => {}
            State::Increase => {
                if throughput.is_some_and(|t| t > self.capacity.upper_bps()) {
                    self.capacity.reset();
                }
                let limit = throughput
                    .map_or(f64::INFINITY, |t| ACKED_HEADROOM * t + ACKED_HEADROOM_BPS)
                    .min(self.probed_bps.unwrap_or(f64::INFINITY));
                if self.bps < limit {
                    let elapsed_s = (self.elapsed_us(now_us) as f64 / 1e6).min(1.0);
                    let step = if self.capacity.estimate_kbps.is_some() {
                        elapsed_s * self.additive_bps_per_s(rtt_us)
                    } else {
                        (self.bps * (MULTIPLICATIVE_PER_S.powf(elapsed_s) - 1.0))
                            .max(MIN_MULTIPLICATIVE_STEP_BPS)
                    };
                    self.bps = clamp((self.bps + step).min(limit));
                }
                self.last_change_us = Some(now_us);
            }
            State::Decrease => {
                if let Some(throughput) = throughput {
                    let mut decreased = BETA * throughput;
                    if decreased > self.bps {
                        if let Some(capacity) = self.capacity.estimate_kbps {
                            decreased = BETA * capacity * 1000.0;
                        }
                    }
                    if decreased < self.bps {
                        self.bps = clamp(decreased);
                    }
                    if throughput < self.capacity.lower_bps() {
                        self.capacity.reset();
                    }
                    self.capacity.on_overuse(throughput);
                }
                self.state = State::Hold;
                self.last_change_us = Some(now_us);
            }
        }
    }

    /// About one average packet per response time.
    fn additive_bps_per_s(&self, rtt_us: i64) -> f64 {
        let frame_bits = self.bps / FRAMES_PER_S;
        let packets_per_frame = (frame_bits / PACKET_BITS).ceil().max(1.0);
        let packet_bits = frame_bits / packets_per_frame;
        let response_s = rtt_us.saturating_add(RESPONSE_EXTRA_US) as f64 / 1e6;
        (packet_bits / response_s).max(MIN_ADDITIVE_BPS_PER_S)
    }
}

fn clamp(bps: f64) -> f64 {
    if bps.is_nan() {
        return MIN_BPS as f64;
    }
    bps.clamp(MIN_BPS as f64, MAX_BPS as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_grows_no_further_than_the_lower_of_the_last_two_probes_that_filled_the_path() {
        let mut aimd = Aimd::new(300_000);
        let grow = |aimd: &mut Aimd, from_s: i64| {
            for step in 1..=20 {
                let now_us = from_s * 1_000_000 + step * 100_000;
                aimd.update(now_us, Usage::Normal, Some(1_000_000), 50_000);
            }
        };
        aimd.on_probe(0, 570_000, true);
        // Far more arrives than that (or the headroom above it would allow): no growth.
        grow(&mut aimd, 0);
        assert_eq!(aimd.bps(), 570_000);
        // One probe measuring higher: the lower of the two holds.
        aimd.on_probe(3_000_000, 640_000, true);
        grow(&mut aimd, 3);
        assert_eq!(aimd.bps(), 570_000);
        // Two: it moves up.
        aimd.on_probe(8_000_000, 640_000, true);
        grow(&mut aimd, 8);
        assert_eq!(aimd.bps(), 640_000);
        // A probe that arrived as fast as it went, above that: lifted, and growth resumes.
        aimd.on_probe(13_000_000, 1_200_000, false);
        grow(&mut aimd, 13);
        assert!(aimd.bps() > 1_200_000, "{}", aimd.bps());
    }
}
