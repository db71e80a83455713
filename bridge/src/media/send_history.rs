//! What a transport sent, by transport-wide sequence number: when and how many bytes. A
//! receiver's transport-cc feedback is matched against it (which packets arrived, which were
//! lost); bandwidth estimation reads the same records. Fixed size, allocated once.

/// One packet sent with a transport-wide sequence number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SentPacket {
    pub sequence: u16,
    /// Send time, µs on the core's clock.
    pub sent_us: i64,
    pub bytes: u16,
    /// A feedback report already said it arrived.
    pub reported: bool,
    /// A feedback report already said it was lost.
    pub reported_lost: bool,
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
}

pub struct SendHistory {
    /// Indexed by sequence number modulo the capacity.
    entries: Vec<Option<SentPacket>>,
}

impl SendHistory {
    pub fn new(capacity: usize) -> SendHistory {
        SendHistory {
            entries: vec![None; capacity.max(1)],
        }
    }

    pub fn record(&mut self, sequence: u16, sent_us: i64, bytes: usize) {
        let i = self.index(sequence);
        self.entries[i] = Some(SentPacket {
            sequence,
            sent_us,
            bytes: bytes.min(u16::MAX as usize) as u16,
            reported: false,
            reported_lost: false,
        });
    }

    /// Applies one feedback status: `arrived` is None for a packet reported lost. A packet
    /// reported lost and later arrived (feedback covers it again) counts as received then.
    pub fn on_feedback(&mut self, sequence: u16, arrived: bool, summary: &mut FeedbackSummary) {
        let i = self.index(sequence);
        match self.entries[i].as_mut().filter(|p| p.sequence == sequence) {
            None => summary.unknown += 1,
            Some(packet) if packet.reported => {}
            Some(packet) => {
                if arrived {
                    packet.reported = true;
                    summary.received += 1;
                } else if !packet.reported_lost {
                    packet.reported_lost = true;
                    summary.lost += 1;
                }
            }
        }
    }

    fn index(&self, sequence: u16) -> usize {
        sequence as usize % self.entries.len()
    }

    pub fn heap_bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<Option<SentPacket>>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feedback_counts_each_packet_once_and_ignores_unknown_ones() {
        let mut history = SendHistory::new(4);
        for seq in 10u16..15 {
            history.record(seq, seq as i64 * 1000, 1200);
        }
        let mut summary = FeedbackSummary::default();
        history.on_feedback(11, true, &mut summary);
        history.on_feedback(12, false, &mut summary);
        // 10 was overwritten by 14.
        history.on_feedback(10, true, &mut summary);
        history.on_feedback(11, true, &mut summary);
        history.on_feedback(12, false, &mut summary);
        assert_eq!(
            summary,
            FeedbackSummary {
                received: 1,
                lost: 1,
                unknown: 1
            }
        );
        // Lost in one report, arrived by the next (reordering): received.
        history.on_feedback(12, true, &mut summary);
        assert_eq!(summary.received, 2);
    }
}
