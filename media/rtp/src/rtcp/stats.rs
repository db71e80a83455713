//! RFC 3550 receiver statistics (appendix A.1, A.3 and A.8) for one received SSRC.

use super::ReportBlock;

/// A jump larger than this is not taken as loss but as a possible restart (RFC 3550 A.1).
const MAX_DROPOUT: u16 = 3000;
/// Packets up to this far behind the highest are reordered or duplicates (RFC 3550 A.1).
const MAX_MISORDER: u16 = 100;
const SEQ_MOD: u32 = 1 << 16;

/// RFC 3550 receiver statistics for one received SSRC (sequence tracking with wrap and
/// probation-free start, cumulative/fraction lost, interarrival jitter in RTP units,
/// LSR/DLSR from the last SR).
#[derive(Clone, Debug)]
pub struct ReceiveStats {
    clock_rate: u32,
    started: bool,
    max_seq: u16,
    /// Sequence number cycles, shifted left by 16 (RFC 3550 A.1 `cycles`).
    cycles: u32,
    base_seq: u32,
    /// A sequence number after a big jump that, if seen next, confirms a source restart.
    bad_seq: Option<u16>,
    received: u64,
    received_prior: u64,
    expected_prior: u64,
    total_received: u64,
    last_transit: Option<u32>,
    /// Interarrival jitter scaled by 16 (RFC 3550 A.8 integer form).
    jitter_q4: u64,
    last_sr: Option<(u32, i64)>,
}

impl ReceiveStats {
    /// `clock_rate` is the RTP clock of the stream (e.g. 90000 for video, 48000 for Opus).
    pub fn new(clock_rate: u32) -> ReceiveStats {
        ReceiveStats {
            clock_rate: clock_rate.max(1),
            started: false,
            max_seq: 0,
            cycles: 0,
            base_seq: 0,
            bad_seq: None,
            received: 0,
            received_prior: 0,
            expected_prior: 0,
            total_received: 0,
            last_transit: None,
            jitter_q4: 0,
            last_sr: None,
        }
    }

    fn init_sequence(&mut self, seq: u16) {
        self.started = true;
        self.base_seq = u32::from(seq);
        self.max_seq = seq;
        self.bad_seq = None;
        self.cycles = 0;
        self.received = 0;
        self.received_prior = 0;
        self.expected_prior = 0;
    }

    /// Accounts one received packet.
    pub fn on_packet(&mut self, seq: u16, rtp_timestamp: u32, arrival_us: i64) {
        if !self.started {
            self.init_sequence(seq);
        } else {
            let delta = seq.wrapping_sub(self.max_seq);
            if delta < MAX_DROPOUT {
                if seq < self.max_seq {
                    self.cycles = self.cycles.wrapping_add(SEQ_MOD);
                }
                self.max_seq = seq;
            } else if u32::from(delta) <= SEQ_MOD - u32::from(MAX_MISORDER) {
                if self.bad_seq == Some(seq) {
                    // Two sequential packets after a big jump: the source restarted.
                    self.init_sequence(seq);
                    self.last_transit = None;
                } else {
                    self.bad_seq = Some(seq.wrapping_add(1));
                    return;
                }
            }
        }
        self.received += 1;
        self.total_received += 1;
        self.update_jitter(rtp_timestamp, arrival_us);
    }

    fn update_jitter(&mut self, rtp_timestamp: u32, arrival_us: i64) {
        let arrival_rtp = i128::from(arrival_us) * i128::from(self.clock_rate) / 1_000_000;
        // Only differences of transit matter, so modulo 2^32 arithmetic is exact.
        let transit = (arrival_rtp as u32).wrapping_sub(rtp_timestamp);
        if let Some(last) = self.last_transit {
            let d = (transit.wrapping_sub(last) as i32).unsigned_abs();
            // Never underflows: (j + 8) >> 4 <= j for every j >= 0.
            self.jitter_q4 = self.jitter_q4 + u64::from(d) - ((self.jitter_q4 + 8) >> 4);
        }
        self.last_transit = Some(transit);
    }

    /// Remembers the middle 32 bits of the SR's NTP time and when it arrived, for LSR/DLSR.
    pub fn on_sender_report(&mut self, ntp_time: u64, arrival_us: i64) {
        self.last_sr = Some(((ntp_time >> 16) as u32, arrival_us));
    }

    /// The report block for this SSRC at `now_us` (resets the fraction-lost interval).
    pub fn report_block(&mut self, ssrc: u32, now_us: i64) -> ReportBlock {
        let extended_max = self.cycles.wrapping_add(u32::from(self.max_seq));
        let expected = if self.started {
            u64::from(extended_max.wrapping_sub(self.base_seq)) + 1
        } else {
            0
        };
        let lost = expected as i64 - self.received as i64;
        let expected_interval = expected.saturating_sub(self.expected_prior);
        let received_interval = self.received.saturating_sub(self.received_prior);
        self.expected_prior = expected;
        self.received_prior = self.received;
        let lost_interval = expected_interval as i64 - received_interval as i64;
        let fraction_lost = if expected_interval == 0 || lost_interval <= 0 {
            0
        } else {
            ((lost_interval << 8) / expected_interval as i64).min(255) as u8
        };
        let (last_sr, delay_since_last_sr) = match self.last_sr {
            Some((lsr, at)) => {
                let elapsed_us = now_us.saturating_sub(at).max(0);
                let units = i128::from(elapsed_us) * 65536 / 1_000_000;
                (lsr, u32::try_from(units).unwrap_or(u32::MAX))
            }
            None => (0, 0),
        };
        ReportBlock {
            ssrc,
            fraction_lost,
            cumulative_lost: lost.clamp(-0x80_0000, 0x7f_ffff) as i32,
            extended_highest_sequence: extended_max,
            jitter: u32::try_from(self.jitter_q4 >> 4).unwrap_or(u32::MAX),
            last_sr,
            delay_since_last_sr,
        }
    }

    /// The RTP clock rate the jitter is counted in.
    pub fn clock_rate(&self) -> u32 {
        self.clock_rate
    }

    /// The last SR's NTP middle 32 bits (what a report block's LSR names) and when it arrived.
    pub fn last_sender_report(&self) -> Option<(u32, i64)> {
        self.last_sr
    }

    /// Packets accounted since creation (including before any sequence restart).
    pub fn packets_received(&self) -> u64 {
        self.total_received
    }
}
