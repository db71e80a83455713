//! The loss-based part: a ceiling on the estimate from the fraction of packets reported lost
//! (draft-ietf-rmcat-gcc-02 section 6; libwebrtc's send_side_bandwidth_estimation).

use crate::{MAX_BPS, MIN_BPS};

/// The loss fraction is over the feedback of the last second, and at least this many packets
/// (older feedback counts if need be). One feedback's fraction would be too coarse: at 50 ms
/// intervals one loss in 40 packets reads as 2.5%, and 1% random loss would hold the estimate a
/// third of the time. Feedback from before a decrease does not count after it: one burst of
/// loss (a queue that overflowed) is answered once, not once per decrease interval while it is
/// in the window.
const WINDOW_US: i64 = 1_000_000;
const MIN_PACKETS: u32 = 20;
/// Feedback remembered for the fraction (a second of it at 50 ms intervals, and more).
const FEEDBACKS: usize = 32;
/// Loss fractions in 1/256: up to 2% the ceiling may rise, above 10% it falls.
const LOW_Q8: u32 = 5;
const HIGH_Q8: u32 = 25;
/// With little loss, the ceiling is this factor (plus a step) above the lowest estimate of the
/// last second: the estimate may grow about 8% a second.
const INCREASE: f64 = 1.08;
const INCREASE_STEP_BPS: f64 = 1000.0;
const HISTORY_US: i64 = 1_000_000;
/// Decreases are at least this plus an RTT apart.
const DECREASE_INTERVAL_US: i64 = 300_000;
/// Loss at 2% or less for this long: it limits no more, whatever the ceiling (the other parts
/// then decide, and probing may find what the path carries now; growing 8% a second from a
/// burst's low would take tens of seconds).
const RECOVERED_US: i64 = 2_000_000;
/// A loss fraction older than this says nothing any more.
const STALE_US: i64 = 6_000_000;
/// Entries of the minimum's history (one per feedback, fewer in practice: only increasing
/// values are kept).
const HISTORY: usize = 64;

/// The minimum of the estimates given over the last second: a ring of (time, bps), increasing
/// in both from the oldest to the newest, so the oldest is the minimum.
struct MinHistory {
    entries: [(i64, u64); HISTORY],
    head: usize,
    len: usize,
}

impl MinHistory {
    fn push(&mut self, now_us: i64, bps: u64) {
        while self.len > 0 && self.entries[self.head].0.saturating_add(HISTORY_US) < now_us {
            self.head = (self.head + 1) % HISTORY;
            self.len -= 1;
        }
        while self.len > 0 && self.entries[(self.head + self.len - 1) % HISTORY].1 >= bps {
            self.len -= 1;
        }
        if self.len < HISTORY {
            self.entries[(self.head + self.len) % HISTORY] = (now_us, bps);
            self.len += 1;
        }
    }

    fn min(&self) -> Option<u64> {
        (self.len > 0).then(|| self.entries[self.head].1)
    }

    fn clear(&mut self) {
        self.len = 0;
    }
}

pub(crate) struct LossBased {
    /// None while loss does not limit: until a loss fraction above 2%, and again once the
    /// ceiling grew back to the other parts' estimate.
    ceiling_bps: Option<u64>,
    /// (time, lost, packets) of recent feedback, a ring.
    feedback: [(i64, u32, u32); FEEDBACKS],
    next_feedback: usize,
    /// The last loss fraction (1/256) and when it was computed.
    fraction_q8: u32,
    fraction_us: i64,
    last_decrease_us: Option<i64>,
    /// Since when the loss fraction has been 2% or less.
    low_since_us: Option<i64>,
    history: MinHistory,
}

impl LossBased {
    pub fn new() -> LossBased {
        LossBased {
            ceiling_bps: None,
            feedback: [(0, 0, 0); FEEDBACKS],
            next_feedback: 0,
            fraction_q8: 0,
            fraction_us: 0,
            last_decrease_us: None,
            low_since_us: None,
            history: MinHistory {
                entries: [(0, 0); HISTORY],
                head: 0,
                len: 0,
            },
        }
    }

    pub fn ceiling_bps(&self) -> Option<u64> {
        self.ceiling_bps
    }

    /// One feedback's packets (`lost` of `total`), and the estimate of the other parts.
    pub fn update(&mut self, now_us: i64, lost: u32, total: u32, others_bps: u64, rtt_us: i64) {
        let estimate_bps = self.ceiling_bps.map_or(others_bps, |c| c.min(others_bps));
        self.history.push(now_us, estimate_bps);
        self.feedback[self.next_feedback] = (now_us, lost.min(total), total);
        self.next_feedback = (self.next_feedback + 1) % FEEDBACKS;
        let (mut window_lost, mut window_total) = (0u64, 0u64);
        for back in 1..=FEEDBACKS {
            let (at_us, lost, total) =
                self.feedback[(self.next_feedback + FEEDBACKS - back) % FEEDBACKS];
            let recent = now_us.saturating_sub(at_us) <= WINDOW_US;
            // Losses a decrease already answered are not counted again.
            let answered = self.last_decrease_us.is_some_and(|t| at_us <= t);
            if answered || (!recent && window_total >= u64::from(MIN_PACKETS)) {
                break;
            }
            window_lost += u64::from(lost);
            window_total += u64::from(total);
        }
        if window_total >= u64::from(MIN_PACKETS) {
            self.fraction_q8 = (window_lost * 256 / window_total).min(255) as u32;
            self.fraction_us = now_us;
        }
        let fresh = self.last_decrease_us.is_none_or(|t| self.fraction_us > t);
        if !fresh || now_us.saturating_sub(self.fraction_us) > STALE_US {
            return;
        }
        let ceiling = match self.ceiling_bps {
            Some(ceiling) => ceiling,
            None if self.fraction_q8 > LOW_Q8 => estimate_bps,
            None => return,
        };
        if self.fraction_q8 > LOW_Q8 {
            self.low_since_us = None;
        }
        let next = if self.fraction_q8 <= LOW_Q8 {
            let low_since = *self.low_since_us.get_or_insert(now_us);
            let floor = self.history.min().unwrap_or(estimate_bps) as f64;
            let grown = (floor * INCREASE + INCREASE_STEP_BPS) as u64;
            if grown >= others_bps || now_us.saturating_sub(low_since) >= RECOVERED_US {
                // Recovered: loss limits no more.
                self.ceiling_bps = None;
                return;
            }
            grown
        } else if self.fraction_q8 <= HIGH_Q8 {
            ceiling
        } else {
            let interval = DECREASE_INTERVAL_US.saturating_add(rtt_us);
            let due = self
                .last_decrease_us
                .is_none_or(|t| now_us.saturating_sub(t) >= interval);
            if due {
                self.last_decrease_us = Some(now_us);
                let from = u128::from(ceiling.min(estimate_bps));
                (from * u128::from(512 - self.fraction_q8) / 512) as u64
            } else {
                ceiling
            }
        };
        self.ceiling_bps = Some(next.clamp(MIN_BPS, MAX_BPS));
    }

    /// A probe showed the path carries `bps`: unless loss is what limits, the ceiling moves up
    /// to it at once instead of 8% a second.
    pub fn on_probe(&mut self, bps: u64) {
        if let Some(ceiling) = self.ceiling_bps.as_mut() {
            if self.fraction_q8 <= HIGH_Q8 {
                *ceiling = (*ceiling).max(bps);
                self.history.clear();
            }
        }
    }
}
