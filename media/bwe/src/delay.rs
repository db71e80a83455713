//! The delay-based part's signal: packets grouped into send bursts, the variation of the delay
//! between consecutive groups, its trend over a window of groups, and an overuse detector with
//! an adaptive threshold (draft-ietf-rmcat-gcc-02 section 5; libwebrtc's inter_arrival_delta,
//! trendline_estimator).

/// Packets sent within this time of a group's first packet belong to the group (a burst).
const GROUP_US: i64 = 5_000;
/// A packet that arrives within this time of the group's last one, having been delayed less than
/// it, belongs to the group too (it was queued behind it), unless the group is this old already.
const BURST_ARRIVAL_US: i64 = 5_000;
const MAX_BURST_US: i64 = 100_000;
/// Arrival and send deltas this far apart mean a clock jump or garbage: start over.
const CLOCK_JUMP_US: i64 = 3_000_000;
/// Groups arriving before their predecessor this many times in a row: start over.
const REORDERED_RESET: u32 = 3;

/// Groups in the trendline's linear regression.
const WINDOW: usize = 20;
/// Exponential smoothing of the accumulated delay before the regression.
const SMOOTHING: f64 = 0.9;
/// The slope is scaled by the number of deltas (at most this many) and this gain.
const MAX_DELTAS_GAIN: u32 = 60;
const THRESHOLD_GAIN: f64 = 4.0;
/// Adaptive threshold (ms): start, bounds, adaptation rates up and down, and the distance beyond
/// which a sample does not move it (a spike is not a new normal).
const THRESHOLD_INITIAL: f64 = 12.5;
const THRESHOLD_MIN: f64 = 6.0;
const THRESHOLD_MAX: f64 = 600.0;
const K_UP: f64 = 0.0087;
const K_DOWN: f64 = 0.039;
const MAX_ADAPT_OFFSET: f64 = 15.0;
const MAX_ADAPT_STEP_MS: f64 = 100.0;
/// Overuse is signalled after the trend stayed above the threshold this long (ms) and for more
/// than one group.
const OVERUSE_TIME_MS: f64 = 10.0;

/// What the delay trend says about the path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Usage {
    Normal,
    Over,
    Under,
}

#[derive(Clone, Copy)]
struct Group {
    first_send_us: i64,
    last_send_us: i64,
    first_arrival_us: i64,
    last_arrival_us: i64,
}

impl Group {
    fn new(send_us: i64, arrival_us: i64) -> Group {
        Group {
            first_send_us: send_us,
            last_send_us: send_us,
            first_arrival_us: arrival_us,
            last_arrival_us: arrival_us,
        }
    }

    fn takes(&self, send_us: i64, arrival_us: i64) -> bool {
        let send_delta = send_us.saturating_sub(self.last_send_us);
        if send_delta == 0 {
            return true;
        }
        let arrival_delta = arrival_us.saturating_sub(self.last_arrival_us);
        let queued_behind = arrival_delta.saturating_sub(send_delta) < 0
            && arrival_delta <= BURST_ARRIVAL_US
            && arrival_us.saturating_sub(self.first_arrival_us) < MAX_BURST_US;
        queued_behind || send_us.saturating_sub(self.first_send_us) <= GROUP_US
    }
}

/// A completed group compared with the one before it.
#[derive(Clone, Copy)]
pub(crate) struct GroupDelta {
    pub send_delta_us: i64,
    pub arrival_delta_us: i64,
    /// The completed group's last arrival.
    pub arrival_us: i64,
}

/// Groups packets (given in send order) and yields the deltas between completed groups.
pub(crate) struct InterArrival {
    current: Option<Group>,
    previous: Option<Group>,
    reordered: u32,
}

impl InterArrival {
    pub fn new() -> InterArrival {
        InterArrival {
            current: None,
            previous: None,
            reordered: 0,
        }
    }

    /// One received packet; the deltas when it starts a new group after two complete ones.
    pub fn push(&mut self, send_us: i64, arrival_us: i64) -> Option<GroupDelta> {
        let Some(current) = self.current.as_mut() else {
            self.current = Some(Group::new(send_us, arrival_us));
            return None;
        };
        if send_us < current.first_send_us {
            // Sent before the current group started: reordered, or a duplicate.
            return None;
        }
        if current.takes(send_us, arrival_us) {
            current.last_send_us = current.last_send_us.max(send_us);
            current.last_arrival_us = arrival_us;
            return None;
        }
        let done = *current;
        let mut delta = None;
        if let Some(previous) = self.previous {
            let send_delta_us = done.last_send_us.saturating_sub(previous.last_send_us);
            let arrival_delta_us = done
                .last_arrival_us
                .saturating_sub(previous.last_arrival_us);
            if arrival_delta_us
                .saturating_sub(send_delta_us)
                .saturating_abs()
                >= CLOCK_JUMP_US
            {
                self.reset(send_us, arrival_us);
                return None;
            }
            if arrival_delta_us < 0 {
                self.reordered += 1;
                if self.reordered >= REORDERED_RESET {
                    self.reset(send_us, arrival_us);
                    return None;
                }
            } else {
                self.reordered = 0;
                delta = Some(GroupDelta {
                    send_delta_us,
                    arrival_delta_us,
                    arrival_us: done.last_arrival_us,
                });
            }
        }
        self.previous = Some(done);
        self.current = Some(Group::new(send_us, arrival_us));
        delta
    }

    fn reset(&mut self, send_us: i64, arrival_us: i64) {
        self.previous = None;
        self.reordered = 0;
        self.current = Some(Group::new(send_us, arrival_us));
    }
}

/// The trend of the inter-group delay variation and the overuse detector reading it.
pub(crate) struct Trendline {
    deltas: u32,
    first_arrival_us: Option<i64>,
    accumulated_ms: f64,
    smoothed_ms: f64,
    /// (arrival ms since the first group, smoothed accumulated delay ms), a ring.
    window: [(f64, f64); WINDOW],
    len: usize,
    next: usize,
    trend: f64,
    threshold: f64,
    last_threshold_us: Option<i64>,
    /// Time spent above the threshold (ms), none while not above it.
    over_ms: Option<f64>,
    over_count: u32,
    usage: Usage,
}

impl Trendline {
    pub fn new() -> Trendline {
        Trendline {
            deltas: 0,
            first_arrival_us: None,
            accumulated_ms: 0.0,
            smoothed_ms: 0.0,
            window: [(0.0, 0.0); WINDOW],
            len: 0,
            next: 0,
            trend: 0.0,
            threshold: THRESHOLD_INITIAL,
            last_threshold_us: None,
            over_ms: None,
            over_count: 0,
            usage: Usage::Normal,
        }
    }

    pub fn usage(&self) -> Usage {
        self.usage
    }

    pub fn update(&mut self, delta: GroupDelta) {
        let send_ms = delta.send_delta_us as f64 / 1000.0;
        let variation_ms = (delta.arrival_delta_us.saturating_sub(delta.send_delta_us) as f64
            / 1000.0)
            .clamp(-(CLOCK_JUMP_US as f64), CLOCK_JUMP_US as f64);
        self.deltas = (self.deltas + 1).min(1000);
        let first = *self.first_arrival_us.get_or_insert(delta.arrival_us);
        self.accumulated_ms += variation_ms;
        self.smoothed_ms = SMOOTHING * self.smoothed_ms + (1.0 - SMOOTHING) * self.accumulated_ms;
        let x = delta.arrival_us.saturating_sub(first) as f64 / 1000.0;
        self.window[self.next] = (x, self.smoothed_ms);
        self.next = (self.next + 1) % WINDOW;
        self.len = (self.len + 1).min(WINDOW);
        let previous_trend = self.trend;
        if self.len == WINDOW {
            if let Some(slope) = slope(&self.window) {
                self.trend = slope;
            }
        }
        self.detect(previous_trend, send_ms, delta.arrival_us);
    }

    fn detect(&mut self, previous_trend: f64, send_ms: f64, now_us: i64) {
        if self.deltas < 2 {
            self.usage = Usage::Normal;
            return;
        }
        let modified = f64::from(self.deltas.min(MAX_DELTAS_GAIN)) * self.trend * THRESHOLD_GAIN;
        if modified > self.threshold {
            let over = match self.over_ms {
                None => send_ms / 2.0,
                Some(t) => t + send_ms,
            };
            self.over_ms = Some(over);
            self.over_count += 1;
            if over > OVERUSE_TIME_MS && self.over_count > 1 && self.trend >= previous_trend {
                self.over_ms = Some(0.0);
                self.over_count = 0;
                self.usage = Usage::Over;
            }
        } else if modified < -self.threshold {
            self.over_ms = None;
            self.over_count = 0;
            self.usage = Usage::Under;
        } else {
            self.over_ms = None;
            self.over_count = 0;
            self.usage = Usage::Normal;
        }
        self.adapt_threshold(modified, now_us);
    }

    fn adapt_threshold(&mut self, modified: f64, now_us: i64) {
        let last = *self.last_threshold_us.get_or_insert(now_us);
        self.last_threshold_us = Some(now_us);
        if !modified.is_finite() || modified.abs() > self.threshold + MAX_ADAPT_OFFSET {
            return;
        }
        let k = if modified.abs() < self.threshold {
            K_DOWN
        } else {
            K_UP
        };
        let elapsed_ms =
            (now_us.saturating_sub(last) as f64 / 1000.0).clamp(0.0, MAX_ADAPT_STEP_MS);
        self.threshold += k * (modified.abs() - self.threshold) * elapsed_ms;
        self.threshold = self.threshold.clamp(THRESHOLD_MIN, THRESHOLD_MAX);
    }
}

/// Least-squares slope of y over x; none when x does not vary or the numbers overflowed.
fn slope(points: &[(f64, f64)]) -> Option<f64> {
    let n = points.len() as f64;
    let (sum_x, sum_y) = points
        .iter()
        .fold((0.0, 0.0), |(sx, sy), &(x, y)| (sx + x, sy + y));
    let (mean_x, mean_y) = (sum_x / n, sum_y / n);
    let (num, den) = points.iter().fold((0.0, 0.0), |(num, den), &(x, y)| {
        (
            num + (x - mean_x) * (y - mean_y),
            den + (x - mean_x) * (x - mean_x),
        )
    });
    let slope = num / den;
    (den != 0.0 && slope.is_finite()).then_some(slope)
}

/// The rate at which the receiver got bytes (the acknowledged bitrate): windows of arrival time,
/// each window's rate merged into a Bayesian estimate whose trust in a sample falls with its
/// distance from the estimate (libwebrtc's bitrate_estimator).
pub(crate) struct AckedRate {
    estimate_kbps: Option<f64>,
    variance: f64,
    window_bytes: u64,
    window_elapsed_us: i64,
    last_arrival_us: Option<i64>,
}

/// The first window is longer, for a first estimate that is not noise.
const FIRST_WINDOW_US: i64 = 500_000;
const WINDOW_US: i64 = 150_000;
const UNCERTAINTY_SCALE: f64 = 10.0;
const INITIAL_VARIANCE: f64 = 50.0;
const PROCESS_VARIANCE: f64 = 5.0;

impl AckedRate {
    pub fn new() -> AckedRate {
        AckedRate {
            estimate_kbps: None,
            variance: INITIAL_VARIANCE,
            window_bytes: 0,
            window_elapsed_us: 0,
            last_arrival_us: None,
        }
    }

    pub fn bps(&self) -> Option<u64> {
        self.estimate_kbps.map(|kbps| (kbps * 1000.0) as u64)
    }

    pub fn update(&mut self, arrival_us: i64, bytes: u32) {
        let window_us = if self.estimate_kbps.is_some() {
            WINDOW_US
        } else {
            FIRST_WINDOW_US
        };
        if let Some(last) = self.last_arrival_us {
            // Arrivals out of order count in the current window without moving it.
            let elapsed = arrival_us.saturating_sub(last).max(0);
            if elapsed > window_us {
                // A gap: what was counted does not describe a rate.
                self.window_bytes = 0;
                self.window_elapsed_us = 0;
            } else {
                self.window_elapsed_us += elapsed;
            }
        }
        if self.last_arrival_us.is_none_or(|last| arrival_us > last) {
            self.last_arrival_us = Some(arrival_us);
        }
        if self.window_elapsed_us >= window_us {
            let sample_kbps = self.window_bytes as f64 * 8.0 / (window_us as f64 / 1000.0);
            self.window_elapsed_us -= window_us;
            self.window_bytes = 0;
            self.merge(sample_kbps);
        }
        self.window_bytes = self.window_bytes.saturating_add(u64::from(bytes));
    }

    fn merge(&mut self, sample_kbps: f64) {
        let Some(estimate) = self.estimate_kbps else {
            self.estimate_kbps = Some(sample_kbps);
            return;
        };
        // Relative to the sum of both (libwebrtc divides by the estimate alone, unless its
        // uncertainty_symmetry_cap trial is on): a rise is trusted as soon as a fall, and an
        // estimate that lags a rate rise (after a probe) does not halve the next decrease.
        let sum = estimate + sample_kbps;
        let uncertainty = if sum > 0.0 {
            UNCERTAINTY_SCALE * (estimate - sample_kbps).abs() / sum
        } else {
            UNCERTAINTY_SCALE
        };
        let sample_variance = uncertainty * uncertainty;
        let predicted_variance = self.variance + PROCESS_VARIANCE;
        let total = sample_variance + predicted_variance;
        let merged = (sample_variance * estimate + predicted_variance * sample_kbps) / total;
        if merged.is_finite() {
            self.estimate_kbps = Some(merged.max(0.0));
            self.variance = sample_variance * predicted_variance / total;
        }
    }
}
