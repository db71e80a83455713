//! Keeps what one receiver gets of a source one continuous stream while its consumer moves
//! between the source's encodings (simulcast layers) and drops frames of temporal layers it does
//! not forward: sequence numbers without gaps, timestamps that move forward, and for VP8 a
//! PictureID that goes up by one per frame and a TL0PICIDX by one per base-layer frame — the
//! fields receivers' jitter buffers and decoders check.
//!
//! Each encoding numbers its packets on its own, so the mapping from what the sender sent to
//! what the receiver gets changes at every switch and at every dropped packet. The rewriter
//! keeps the last [`MAPPINGS`] mappings, each valid from an incoming sequence number on, so a
//! late (reordered) packet is written with the mapping that was current when its neighbours
//! went out, and a receiver's NACK is traced back to the encoding and sequence number it names.
//! A fixed array: nothing is allocated per packet or per switch.

/// Mappings kept; a packet older than all of them is dropped (it is older than
/// `MAPPINGS` switches or drop runs ago).
pub const MAPPINGS: usize = 16;

/// From incoming sequence number `from` of encoding `layer` on, what is added to each field.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Mapping {
    layer: u8,
    from: u16,
    sequence: u16,
    timestamp: u32,
    picture_id: u16,
    tl0_pic_idx: u8,
}

/// What a forwarded packet becomes for the receiver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rewritten {
    pub sequence: u16,
    pub timestamp: u32,
    /// Add to the VP8 PictureID (modulo the field's width) and TL0PICIDX.
    pub picture_id_delta: u16,
    pub tl0_pic_idx_delta: u8,
}

/// The fields of the first packet of a new layer that the next ones continue from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SwitchPoint {
    pub layer: u8,
    pub sequence: u16,
    pub timestamp: u32,
    pub picture_id: Option<u16>,
    pub tl0_pic_idx: Option<u8>,
    /// Arrival time, µs.
    pub now_us: i64,
}

pub struct Rewriter {
    mappings: [Mapping; MAPPINGS],
    /// Number of valid mappings; the newest is at `newest`.
    len: usize,
    newest: usize,
    /// Highest incoming sequence number seen of the current layer (forwarded or dropped).
    highest_in: u16,
    /// Highest sequence number sent (or, before anything was, the last one the receiver got of
    /// this SSRC from an earlier producer).
    last_out: Option<u16>,
    last_out_timestamp: u32,
    last_out_at_us: i64,
    last_out_picture_id: Option<u16>,
    last_out_tl0_pic_idx: Option<u8>,
    clock_rate: u32,
}

/// `a` comes after `b` in 16-bit sequence order.
fn after(a: u16, b: u16) -> bool {
    (a.wrapping_sub(b) as i16) > 0
}

impl Rewriter {
    /// `continue_after`: the last sequence number the receiver got under this SSRC before (a
    /// sender that came back), so that numbering continues.
    pub fn new(clock_rate: u32, continue_after: Option<u16>) -> Rewriter {
        Rewriter {
            mappings: [Mapping::default(); MAPPINGS],
            len: 0,
            newest: 0,
            highest_in: 0,
            last_out: continue_after,
            last_out_timestamp: 0,
            last_out_at_us: 0,
            last_out_picture_id: None,
            last_out_tl0_pic_idx: None,
            clock_rate,
        }
    }

    /// Highest sequence number the receiver was sent.
    pub fn last_sequence(&self) -> Option<u16> {
        self.last_out
    }

    fn push(&mut self, mapping: Mapping) {
        self.newest = (self.newest + 1) % MAPPINGS;
        self.mappings[self.newest] = mapping;
        self.len = (self.len + 1).min(MAPPINGS);
    }

    /// Mappings newest first.
    fn newest_first(&self) -> impl Iterator<Item = &Mapping> {
        (0..self.len).map(move |i| &self.mappings[(self.newest + MAPPINGS - i) % MAPPINGS])
    }

    /// Starts forwarding a layer at `first` (a key frame's first packet): it continues right
    /// after what the receiver got last. The first layer of a fresh stream passes its sequence
    /// numbers, timestamps and picture IDs through unchanged.
    pub fn switch(&mut self, first: SwitchPoint) {
        let started = self.len > 0;
        let sequence = match self.last_out {
            Some(last) => last.wrapping_add(1).wrapping_sub(first.sequence),
            None => 0,
        };
        let timestamp = if started {
            let elapsed_us = (first.now_us - self.last_out_at_us).max(0) as u64;
            let ticks = (elapsed_us * u64::from(self.clock_rate) / 1_000_000).max(1) as u32;
            self.last_out_timestamp
                .wrapping_add(ticks)
                .wrapping_sub(first.timestamp)
        } else {
            0
        };
        let picture_id = match (self.last_out_picture_id, first.picture_id) {
            (Some(last), Some(pid)) => last.wrapping_add(1).wrapping_sub(pid),
            _ => 0,
        };
        let tl0_pic_idx = match (self.last_out_tl0_pic_idx, first.tl0_pic_idx) {
            (Some(last), Some(idx)) => last.wrapping_add(1).wrapping_sub(idx),
            _ => 0,
        };
        self.push(Mapping {
            layer: first.layer,
            from: first.sequence,
            sequence,
            timestamp,
            picture_id,
            tl0_pic_idx,
        });
        self.highest_in = first.sequence.wrapping_sub(1);
    }

    /// The mapping for incoming `sequence` of encoding `layer`: the newest of that layer that
    /// starts at or before it; with `current_run`, only among the mappings made since the
    /// consumer last switched to the current layer.
    fn mapping_for(&self, layer: u8, sequence: u16, current_run: bool) -> Option<Mapping> {
        let current = self.mappings[self.newest].layer;
        self.newest_first()
            .take_while(|m| !current_run || m.layer == current)
            .filter(|m| m.layer == layer)
            .find(|m| !after(m.from, sequence))
            .copied()
    }

    fn rewritten(m: &Mapping, sequence: u16, timestamp: u32) -> Rewritten {
        Rewritten {
            sequence: sequence.wrapping_add(m.sequence),
            timestamp: timestamp.wrapping_add(m.timestamp),
            picture_id_delta: m.picture_id,
            tl0_pic_idx_delta: m.tl0_pic_idx,
        }
    }

    /// A packet of the current layer that is forwarded: what its fields become. `None` when
    /// no layer was started or the packet is older than every mapping kept.
    pub fn forward(
        &mut self,
        sequence: u16,
        timestamp: u32,
        picture_id: Option<u16>,
        tl0_pic_idx: Option<u8>,
        now_us: i64,
    ) -> Option<Rewritten> {
        if self.len == 0 {
            return None;
        }
        let newest = after(sequence, self.highest_in);
        let m = if newest {
            self.mappings[self.newest]
        } else {
            self.mapping_for(self.mappings[self.newest].layer, sequence, true)?
        };
        let out = Self::rewritten(&m, sequence, timestamp);
        if newest {
            self.highest_in = sequence;
        }
        if self.last_out.is_none_or(|last| after(out.sequence, last)) {
            self.last_out = Some(out.sequence);
            self.last_out_timestamp = out.timestamp;
            self.last_out_at_us = now_us;
            if let Some(pid) = picture_id {
                self.last_out_picture_id = Some(pid.wrapping_add(m.picture_id));
            }
            if let Some(idx) = tl0_pic_idx {
                self.last_out_tl0_pic_idx = Some(idx.wrapping_add(m.tl0_pic_idx));
            }
        }
        Some(out)
    }

    /// What a packet sent before (`sequence` of encoding `layer`, as the sender numbered it)
    /// became for the receiver: to retransmit it as it was first sent.
    pub fn sent_as(&self, layer: u8, sequence: u16, timestamp: u32) -> Option<Rewritten> {
        let m = self.mapping_for(layer, sequence, false)?;
        Some(Self::rewritten(&m, sequence, timestamp))
    }

    /// A packet of the current layer that is not forwarded (a temporal layer above what the
    /// receiver gets): later packets close the gap it leaves, and when it begins a frame, later
    /// frames close the PictureID gap too. Late packets change nothing.
    pub fn drop_packet(&mut self, sequence: u16, starts_frame: bool) {
        if self.len == 0 || !after(sequence, self.highest_in) {
            return;
        }
        self.highest_in = sequence;
        let current = self.mappings[self.newest];
        let next = Mapping {
            from: sequence.wrapping_add(1),
            sequence: current.sequence.wrapping_sub(1),
            picture_id: current.picture_id.wrapping_sub(u16::from(starts_frame)),
            ..current
        };
        if current.from == sequence {
            // A run of drops: one mapping for the whole run.
            self.mappings[self.newest] = next;
        } else {
            self.push(next);
        }
    }

    /// The encoding and incoming sequence number behind the receiver's `sequence` (for its
    /// NACKs).
    pub fn incoming(&self, sequence: u16) -> Option<(u8, u16)> {
        self.newest_first()
            .find(|m| !after(m.from.wrapping_add(m.sequence), sequence))
            .map(|m| (m.layer, sequence.wrapping_sub(m.sequence)))
    }

    /// Adds the current mapping's timestamp offset to a sender report's RTP time.
    pub fn timestamp_offset(&self, layer: u8) -> Option<u32> {
        let m = self.mappings.get(self.newest).filter(|_| self.len > 0)?;
        (m.layer == layer).then_some(m.timestamp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(
        layer: u8,
        sequence: u16,
        timestamp: u32,
        picture_id: u16,
        now_us: i64,
    ) -> SwitchPoint {
        SwitchPoint {
            layer,
            sequence,
            timestamp,
            picture_id: Some(picture_id),
            tl0_pic_idx: Some(picture_id as u8),
            now_us,
        }
    }

    fn forward(
        r: &mut Rewriter,
        sequence: u16,
        timestamp: u32,
        pid: u16,
        now_us: i64,
    ) -> Rewritten {
        r.forward(sequence, timestamp, Some(pid), Some(pid as u8), now_us)
            .expect("forwarded")
    }

    #[test]
    fn a_first_layer_passes_through_and_a_switch_continues_every_field() {
        let mut r = Rewriter::new(90_000, None);
        r.switch(point(0, 1000, 50_000, 7, 0));
        let a = forward(&mut r, 1000, 50_000, 7, 0);
        assert_eq!(
            (a.sequence, a.timestamp, a.picture_id_delta),
            (1000, 50_000, 0)
        );
        forward(&mut r, 1001, 53_000, 8, 33_333);
        // Layer 2 numbers everything its own way; 40 ms later its key frame starts.
        r.switch(point(2, 60_000, 7_000_000, 300, 73_333));
        let b = forward(&mut r, 60_000, 7_000_000, 300, 73_333);
        assert_eq!(b.sequence, 1002);
        assert_eq!(
            b.timestamp,
            53_000 + 3_600,
            "40 ms of 90 kHz after the last"
        );
        assert_eq!(300u16.wrapping_add(b.picture_id_delta), 9);
        assert_eq!(
            44u8.wrapping_add(b.tl0_pic_idx_delta),
            9,
            "TL0PICIDX 300 as u8"
        );
        let c = forward(&mut r, 60_001, 7_000_000, 300, 73_400);
        assert_eq!((c.sequence, c.timestamp), (1003, 53_000 + 3_600));
        // A NACK for 1001 names layer 0's 1001; for 1003 layer 2's 60,001.
        assert_eq!(r.incoming(1001), Some((0, 1001)));
        assert_eq!(r.incoming(1003), Some((2, 60_001)));
        // Retransmitted as first sent.
        assert_eq!(
            r.sent_as(0, 1001, 53_000),
            Some(Rewritten {
                sequence: 1001,
                timestamp: 53_000,
                picture_id_delta: 0,
                tl0_pic_idx_delta: 0
            })
        );
        assert_eq!(
            r.sent_as(2, 60_001, 7_000_000).map(|w| w.sequence),
            Some(1003)
        );
        assert_eq!(
            r.timestamp_offset(2),
            Some(56_600u32.wrapping_sub(7_000_000))
        );
        assert_eq!(r.timestamp_offset(0), None);
    }

    #[test]
    fn dropped_packets_leave_no_gap_and_late_packets_keep_their_place() {
        let mut r = Rewriter::new(90_000, Some(99));
        r.switch(point(1, 500, 0, 10, 0));
        assert_eq!(forward(&mut r, 500, 0, 10, 0).sequence, 100);
        // 501 is lost on the way (arrives late); 502-503 are a dropped frame.
        r.drop_packet(502, true);
        r.drop_packet(503, false);
        let next = forward(&mut r, 504, 6000, 12, 0);
        assert_eq!(next.sequence, 100 + 2, "two dropped packets closed up");
        assert_eq!(
            12u16.wrapping_add(next.picture_id_delta),
            11,
            "one dropped frame"
        );
        // 501 arrives late: written where it belonged, right after 500.
        let late = forward(&mut r, 501, 3000, 11, 0);
        assert_eq!(late.sequence, 101);
        assert_eq!(11u16.wrapping_add(late.picture_id_delta), 11);
        assert_eq!(r.incoming(102), Some((1, 504)));
        assert_eq!(r.incoming(101), Some((1, 501)));
        assert_eq!(r.last_sequence(), Some(102));
        // A late packet of a dropped frame changes nothing.
        r.drop_packet(503, false);
        assert_eq!(forward(&mut r, 505, 6000, 12, 0).sequence, 103);
    }

    #[test]
    fn numbering_continues_across_the_wrap_and_a_returning_sender() {
        let mut r = Rewriter::new(90_000, Some(65_534));
        r.switch(point(0, 9_000, 0, 0, 0));
        assert_eq!(forward(&mut r, 9_000, 0, 0, 0).sequence, 65_535);
        assert_eq!(forward(&mut r, 9_001, 0, 1, 0).sequence, 0);
        assert_eq!(r.incoming(0), Some((0, 9_001)));
    }

    #[test]
    fn packets_older_than_every_mapping_are_refused() {
        let mut r = Rewriter::new(90_000, None);
        assert_eq!(r.forward(1, 0, None, None, 0), None, "nothing started");
        r.switch(point(0, 100, 0, 0, 0));
        forward(&mut r, 100, 0, 0, 0);
        for i in 0..MAPPINGS as u16 {
            r.drop_packet(101 + 2 * i, false);
            forward(&mut r, 102 + 2 * i, 0, 0, 0);
        }
        assert_eq!(r.forward(100, 0, Some(0), Some(0), 0), None);
    }
}
