//! Losses on the sender → bridge hop: which sequence numbers of one encoding never arrived,
//! when to ask the sender for them again (RFC 4585 generic NACK), and when to give up.
//!
//! Without it a packet lost before the bridge is lost for every receiver at once, and each of
//! them NACKs the bridge for a packet its cache never had. With it the bridge asks once, the
//! sender answers with RTX, and the recovered packet is forwarded (late, but before the
//! receivers' jitter buffers give up). Fixed capacity, no allocation after creation.

/// Sequence numbers tracked as missing at once; a larger gap is not worth NACKing (the sender
/// is asked for a key frame instead).
pub const CAPACITY: usize = 128;
/// A gap is NACKed once it has stood this long: reordering on the way usually fills it sooner.
const FIRST_NACK_AFTER_US: i64 = 5_000;
/// A NACK that brought nothing is repeated after this long (a round trip to most senders).
const RETRY_AFTER_US: i64 = 80_000;
/// Times a sequence number is NACKed before it is given up.
const MAX_NACKS: u8 = 4;
/// A packet older than this is of no use to any receiver any more.
const MAX_AGE_US: i64 = 1_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arrival {
    /// The newest packet yet (or the first).
    New,
    /// A packet that was missing: a retransmission or a late original.
    Recovered,
    /// Older than the newest and not missing: a duplicate or given up on.
    Old,
    /// The newest, after a gap too large to NACK: ask the sender for a key frame.
    GapTooLarge,
}

#[derive(Clone, Copy)]
struct Missing {
    sequence: u16,
    detected_us: i64,
    last_nack_us: Option<i64>,
    nacks: u8,
}

pub struct NackGenerator {
    highest: Option<u16>,
    missing: Vec<Missing>,
}

impl Default for NackGenerator {
    fn default() -> Self {
        NackGenerator::new()
    }
}

impl NackGenerator {
    pub fn new() -> NackGenerator {
        NackGenerator {
            highest: None,
            missing: Vec::with_capacity(CAPACITY),
        }
    }

    pub fn on_packet(&mut self, sequence: u16, now_us: i64) -> Arrival {
        let Some(highest) = self.highest else {
            self.highest = Some(sequence);
            return Arrival::New;
        };
        let ahead = sequence.wrapping_sub(highest) as i16;
        if ahead > 0 {
            self.highest = Some(sequence);
            let gap = ahead as usize - 1;
            if gap + self.missing.len() > CAPACITY {
                self.missing.clear();
                return Arrival::GapTooLarge;
            }
            for i in 1..=gap as u16 {
                self.missing.push(Missing {
                    sequence: highest.wrapping_add(i),
                    detected_us: now_us,
                    last_nack_us: None,
                    nacks: 0,
                });
            }
            return Arrival::New;
        }
        match self.missing.iter().position(|m| m.sequence == sequence) {
            Some(i) => {
                self.missing.swap_remove(i);
                Arrival::Recovered
            }
            None => Arrival::Old,
        }
    }

    /// Writes into `lost` the sequence numbers to NACK now (at most `lost.len()`), and forgets
    /// those asked for often enough or too old. Returns how many were written.
    pub fn poll(&mut self, now_us: i64, lost: &mut [u16]) -> usize {
        self.missing.retain(|m| {
            now_us - m.detected_us < MAX_AGE_US
                && !(m.nacks >= MAX_NACKS
                    && m.last_nack_us.is_some_and(|t| now_us - t >= RETRY_AFTER_US))
        });
        let mut count = 0;
        for m in self.missing.iter_mut() {
            if count == lost.len() {
                break;
            }
            let due = match m.last_nack_us {
                None => now_us - m.detected_us >= FIRST_NACK_AFTER_US,
                Some(t) => m.nacks < MAX_NACKS && now_us - t >= RETRY_AFTER_US,
            };
            if due {
                m.last_nack_us = Some(now_us);
                m.nacks += 1;
                lost[count] = m.sequence;
                count += 1;
            }
        }
        count
    }

    /// Sequence numbers currently missing.
    #[cfg(test)]
    pub fn missing(&self) -> usize {
        self.missing.len()
    }

    pub fn heap_bytes(&self) -> usize {
        self.missing.capacity() * std::mem::size_of::<Missing>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn poll(nacks: &mut NackGenerator, now_us: i64) -> Vec<u16> {
        let mut lost = [0u16; 32];
        let n = nacks.poll(now_us, &mut lost);
        lost[..n].to_vec()
    }

    #[test]
    fn a_gap_is_nacked_after_a_reorder_allowance_then_retried_then_given_up() {
        let mut nacks = NackGenerator::new();
        assert_eq!(nacks.on_packet(100, 0), Arrival::New);
        assert_eq!(nacks.on_packet(103, 1_000), Arrival::New);
        assert_eq!(nacks.missing(), 2);
        assert!(poll(&mut nacks, 2_000).is_empty(), "maybe only reordered");
        assert_eq!(poll(&mut nacks, 7_000), vec![101, 102]);
        assert!(
            poll(&mut nacks, 10_000).is_empty(),
            "not again before a round trip"
        );
        assert_eq!(nacks.on_packet(101, 20_000), Arrival::Recovered);
        assert_eq!(nacks.on_packet(101, 21_000), Arrival::Old, "a duplicate");
        let mut asked = 1;
        let mut now = 7_000;
        while !poll(&mut nacks, now + RETRY_AFTER_US).is_empty() {
            now += RETRY_AFTER_US;
            asked += 1;
        }
        assert_eq!(asked, MAX_NACKS);
        assert_eq!(
            nacks.missing(),
            0,
            "given up after the last NACK's round trip"
        );
    }

    #[test]
    fn across_the_wrap_and_with_a_gap_too_large() {
        let mut nacks = NackGenerator::new();
        nacks.on_packet(65_534, 0);
        nacks.on_packet(1, 0);
        assert_eq!(poll(&mut nacks, 10_000), vec![65_535, 0]);
        assert_eq!(nacks.on_packet(0, 11_000), Arrival::Recovered);
        assert_eq!(nacks.on_packet(60_000, 12_000), Arrival::Old, "far behind");
        assert_eq!(
            nacks.on_packet(1 + CAPACITY as u16 + 5, 13_000),
            Arrival::GapTooLarge
        );
        assert_eq!(nacks.missing(), 0);
    }

    #[test]
    fn old_losses_expire_and_capacity_never_grows() {
        let mut nacks = NackGenerator::new();
        let capacity = nacks.heap_bytes();
        nacks.on_packet(0, 0);
        nacks.on_packet(CAPACITY as u16, 0);
        assert_eq!(nacks.missing(), CAPACITY - 1);
        assert_eq!(poll(&mut nacks, MAX_AGE_US), Vec::<u16>::new());
        assert_eq!(nacks.missing(), 0);
        assert_eq!(nacks.heap_bytes(), capacity);
    }
}
