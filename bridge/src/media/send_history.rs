//! What a transport sent, by transport-wide sequence number: when and how many bytes. A
//! receiver's transport-cc feedback is matched against it (which packets arrived, which were
//! lost); bandwidth estimation reads the same records. Fixed size, allocated once.
//!
//! It is written once per packet sent, to every receiver, so an entry is kept to 8 bytes
//! (eight to a cache line, written in order) and the ring is a power of two (a mask, not a
//! division): the fan-out of one packet to 400 receivers touches 400 of these rings.

/// Flags kept in the top bits of an entry's byte count (a datagram is at most 1500 bytes).
const REPORTED_RECEIVED: u16 = 1 << 15;
const REPORTED_LOST: u16 = 1 << 14;
const BYTES: u16 = (1 << 14) - 1;

/// One packet sent with a transport-wide sequence number.
#[derive(Clone, Copy, Default)]
struct SentPacket {
    /// Send time, µs on the core's clock, modulo 2^32 (feedback comes within seconds).
    sent_us: u32,
    sequence: u16,
    /// Bytes sent (0: an empty entry) and the REPORTED_* flags.
    bytes_and_flags: u16,
}

/// What feedback said of the packets it covered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FeedbackSummary {
    /// Covered packets reported as arrived for the first time.
    pub received: u64,
    /// Covered packets reported as not arrived for the first time.
    pub lost: u64,
    /// Covered sequence numbers that are not in the history (too old, or never sent).
    pub unknown: u64,
    /// Send time (µs modulo 2^32) of the newest of the packets reported arrived for the
    /// first time.
    pub newest_received_sent_us: Option<u32>,
}

pub struct SendHistory {
    /// Indexed by sequence number & mask.
    entries: Vec<SentPacket>,
    mask: usize,
}

impl SendHistory {
    /// Room for `capacity` packets, rounded up to a power of two.
    pub fn new(capacity: usize) -> SendHistory {
        let size = capacity.max(1).next_power_of_two();
        SendHistory {
            entries: vec![SentPacket::default(); size],
            mask: size - 1,
        }
    }

    pub fn record(&mut self, sequence: u16, sent_us: i64, bytes: usize) {
        self.entries[sequence as usize & self.mask] = SentPacket {
            sent_us: sent_us as u32,
            sequence,
            bytes_and_flags: bytes.clamp(1, BYTES as usize) as u16,
        };
    }

    /// Applies one feedback status. A packet reported lost and later arrived (feedback covers
    /// it again) counts as received then; each is counted once as lost and once as received.
    /// Returns the packet's send time (µs modulo 2^32) and bytes when this status is news.
    pub fn on_feedback(
        &mut self,
        sequence: u16,
        arrived: bool,
        summary: &mut FeedbackSummary,
    ) -> Option<(u32, u16)> {
        let entry = &mut self.entries[sequence as usize & self.mask];
        if entry.sequence != sequence || entry.bytes_and_flags & BYTES == 0 {
            summary.unknown += 1;
            return None;
        }
        if entry.bytes_and_flags & REPORTED_RECEIVED != 0 {
            return None;
        }
        let sent = (entry.sent_us, entry.bytes_and_flags & BYTES);
        if arrived {
            entry.bytes_and_flags |= REPORTED_RECEIVED;
            summary.received += 1;
            let newer = summary
                .newest_received_sent_us
                .is_none_or(|t| (entry.sent_us.wrapping_sub(t) as i32) > 0);
            if newer {
                summary.newest_received_sent_us = Some(entry.sent_us);
            }
        } else if entry.bytes_and_flags & REPORTED_LOST == 0 {
            entry.bytes_and_flags |= REPORTED_LOST;
            summary.lost += 1;
        } else {
            return None;
        }
        Some(sent)
    }

    pub fn heap_bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<SentPacket>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feedback_counts_each_packet_once_and_ignores_unknown_ones() {
        let mut history = SendHistory::new(3);
        assert_eq!(history.heap_bytes(), 4 * 8, "four 8-byte entries");
        for seq in 10u16..15 {
            history.record(seq, seq as i64 * 1000, 1200);
        }
        let mut summary = FeedbackSummary::default();
        assert_eq!(
            history.on_feedback(11, true, &mut summary),
            Some((11_000, 1200))
        );
        assert_eq!(
            history.on_feedback(12, false, &mut summary),
            Some((12_000, 1200))
        );
        // 10 was overwritten by 14.
        assert_eq!(history.on_feedback(10, true, &mut summary), None);
        // Repeated statuses are no news.
        assert_eq!(history.on_feedback(11, true, &mut summary), None);
        assert_eq!(history.on_feedback(12, false, &mut summary), None);
        // Never sent.
        assert_eq!(history.on_feedback(300, true, &mut summary), None);
        assert_eq!(
            summary,
            FeedbackSummary {
                received: 1,
                lost: 1,
                unknown: 2,
                newest_received_sent_us: Some(11_000),
            }
        );
        // Lost in one report, arrived by the next (reordering): received.
        assert_eq!(
            history.on_feedback(12, true, &mut summary),
            Some((12_000, 1200))
        );
        assert_eq!(summary.received, 2);
        assert_eq!(summary.newest_received_sent_us, Some(12_000));
    }
}
