//! Rate limits on what one endpoint, or one conference, may make the media worker do (issue 22):
//! token buckets on the worker's microsecond clock, checked on the packet path without
//! allocation or lock. What goes beyond a limit is dropped and counted by reason
//! (`stats::DropReason`).

/// The limits from the configuration; 0 means unlimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LimitSettings {
    /// SRTP and SRTCP packets per second one endpoint may send (checked before decryption).
    pub endpoint_packet_rate: u32,
    /// RTCP feedback per second one endpoint may send: key-frame requests (a PLI, each FIR
    /// entry) and NACKed sequence numbers.
    pub endpoint_feedback_rate: u32,
    /// SRTP and SRTCP packets per second all endpoints of one conference may send together.
    pub conference_packet_rate: u32,
}

impl Default for LimitSettings {
    fn default() -> Self {
        LimitSettings {
            endpoint_packet_rate: 10_000,
            endpoint_feedback_rate: 1_000,
            conference_packet_rate: 100_000,
        }
    }
}

/// One token's worth of the bucket's level: the level counts token-microseconds, so refilling
/// is one multiplication and nothing is rounded away.
const TOKEN: u64 = 1_000_000;

/// A token bucket: `rate` tokens per second, holding at most one second's worth, full at
/// start (the worker's clock starts at 0). A rate of 0 (the default) allows everything.
#[derive(Clone, Debug, Default)]
pub struct RateLimit {
    rate: u64,
    level: u64,
    last_us: i64,
}

impl RateLimit {
    pub fn new(rate: u32) -> RateLimit {
        let rate = u64::from(rate);
        RateLimit {
            rate,
            level: rate * TOKEN,
            last_us: 0,
        }
    }

    /// Takes one token at `now_us` if there is one (always true when unlimited).
    pub fn allow(&mut self, now_us: i64) -> bool {
        if self.rate == 0 {
            return true;
        }
        if now_us > self.last_us {
            let elapsed = (now_us - self.last_us) as u64;
            self.level = self
                .level
                .saturating_add(elapsed.saturating_mul(self.rate))
                .min(self.rate * TOKEN);
            self.last_us = now_us;
        }
        if self.level >= TOKEN {
            self.level -= TOKEN;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How many of `attempts` evenly spread over `micros` the limit lets through.
    fn allowed(limit: &mut RateLimit, start_us: i64, micros: i64, attempts: i64) -> usize {
        (0..attempts)
            .filter(|i| limit.allow(start_us + micros * i / attempts))
            .count()
    }

    #[test]
    fn a_burst_of_one_second_then_the_rate() {
        let mut limit = RateLimit::new(100);
        // The bucket starts full: 100 at once, then nothing more at that instant.
        assert_eq!(allowed(&mut limit, 0, 0, 1_000), 100);
        assert!(!limit.allow(0));
        // Then 100 a second, however many are tried.
        let passed = allowed(&mut limit, 1, 2_000_000, 100_000);
        assert!((199..=200).contains(&passed), "{passed}");
    }

    #[test]
    fn an_idle_bucket_refills_to_one_second_only() {
        let mut limit = RateLimit::new(50);
        assert_eq!(allowed(&mut limit, 0, 0, 50), 50);
        // An hour later: still only a second's worth at once.
        let hour = 3_600_000_000;
        assert_eq!(allowed(&mut limit, hour, 0, 1_000), 50);
    }

    #[test]
    fn below_the_rate_everything_passes() {
        let mut limit = RateLimit::new(1_000);
        // 900 a second for ten seconds.
        assert_eq!(allowed(&mut limit, 0, 10_000_000, 9_000), 9_000);
    }

    #[test]
    fn time_going_backwards_refills_nothing() {
        let mut limit = RateLimit::new(10);
        assert_eq!(allowed(&mut limit, 1_000_000, 0, 10), 10);
        assert!(!limit.allow(500_000));
        assert!(limit.allow(1_100_000));
    }

    #[test]
    fn zero_is_unlimited() {
        let mut limit = RateLimit::new(0);
        assert_eq!(allowed(&mut limit, 0, 0, 100_000), 100_000);
    }
}
