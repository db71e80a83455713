//! Sequence numbering of the streams forwarded to one receiver.
//!
//! A participant that restarts its session (ICE failure → new session on a new endpoint) keeps
//! its SSRCs but starts a new random RTP sequence. Passed through unchanged, the new numbers
//! could sit up to 32,767 behind what the receiver last saw: its SRTP replay window and jitter
//! buffer would drop the stream until the numbers caught up (minutes of silence for audio). So
//! when an SSRC comes back from another endpoint, or after its source was removed, the
//! numbering continues where this receiver's last packet left it — and so does its SRTP state
//! (rollover counter, SRTCP index), which the receiver kept: a stream that had wrapped its
//! sequence before it went away would otherwise come back with ROC 0 and fail authentication.

use tutti_srtp::OutboundState;

/// Streams whose numbering is kept per receiver; past that, further streams pass through
/// with the sender's own numbering.
const CAPACITY: usize = 64;

#[derive(Clone, Copy)]
struct Stream {
    ssrc: u32,
    /// The `tag` of the endpoint that sends it now.
    origin: u32,
    /// Added to the sender's sequence number.
    offset: u16,
    /// Highest sequence number sent to this receiver.
    last: u16,
    /// The sender still has this source; inactive entries are the ones reused when full.
    active: bool,
    /// The outbound SRTP state of an inactive stream, to restore when it comes back.
    srtp: Option<OutboundState>,
}

/// How to send one packet to this receiver.
pub struct Outgoing {
    pub sequence: u16,
    /// The stream comes back after `forget`: continue its outbound SRTP state from here.
    pub resume_srtp: Option<OutboundState>,
}

/// Preallocated and never grown: no allocation per packet.
pub struct Numbering {
    streams: Vec<Stream>,
}

impl Numbering {
    pub fn new() -> Numbering {
        Numbering {
            streams: Vec::with_capacity(CAPACITY),
        }
    }

    /// The sequence number a packet of `ssrc` from the endpoint tagged `origin` carries to
    /// this receiver.
    pub fn outgoing(&mut self, ssrc: u32, sequence: u16, origin: u32) -> Outgoing {
        if let Some(stream) = self.streams.iter_mut().find(|s| s.ssrc == ssrc) {
            let mut resume_srtp = None;
            if stream.origin != origin || !stream.active {
                stream.offset = stream.last.wrapping_add(1).wrapping_sub(sequence);
                stream.origin = origin;
                stream.active = true;
                resume_srtp = stream.srtp.take();
            }
            let shifted = sequence.wrapping_add(stream.offset);
            if (shifted.wrapping_sub(stream.last) as i16) > 0 {
                stream.last = shifted;
            }
            return Outgoing {
                sequence: shifted,
                resume_srtp,
            };
        }
        let entry = Stream {
            ssrc,
            origin,
            offset: 0,
            last: sequence,
            active: true,
            srtp: None,
        };
        if self.streams.len() < CAPACITY {
            self.streams.push(entry);
        } else if let Some(slot) = self.streams.iter_mut().find(|s| !s.active) {
            *slot = entry;
        }
        Outgoing {
            sequence,
            resume_srtp: None,
        }
    }

    /// The sender's sequence number behind `sequence` in this receiver's numbering (to answer
    /// its NACKs from the sender's cache); None if `origin` no longer sends that stream.
    pub fn incoming(&self, ssrc: u32, sequence: u16, origin: u32) -> Option<u16> {
        match self.streams.iter().find(|s| s.ssrc == ssrc) {
            Some(stream) if stream.origin == origin => Some(sequence.wrapping_sub(stream.offset)),
            Some(_) => None,
            None => Some(sequence),
        }
    }

    /// This source is gone from its sender; its numbering, and `srtp` (where its outbound
    /// SRTP state stood), are kept in case it returns.
    pub fn forget(&mut self, ssrc: u32, srtp: Option<OutboundState>) {
        if let Some(stream) = self.streams.iter_mut().find(|s| s.ssrc == ssrc) {
            stream.active = false;
            stream.srtp = srtp;
        }
    }

    /// The receiver has new SRTP keys, so new SRTP state for every stream: what was kept for
    /// the old keys no longer applies.
    pub fn new_srtp_keys(&mut self) {
        for stream in &mut self.streams {
            stream.srtp = None;
        }
    }

    pub fn heap_bytes(&self) -> usize {
        self.streams.capacity() * std::mem::size_of::<Stream>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_first_sender_passes_through() {
        let mut numbering = Numbering::new();
        assert_eq!(numbering.outgoing(7, 40_000, 1).sequence, 40_000);
        assert_eq!(numbering.outgoing(7, 40_001, 1).sequence, 40_001);
        assert_eq!(numbering.incoming(7, 40_001, 1), Some(40_001));
        assert_eq!(numbering.incoming(8, 5, 1), Some(5));
    }

    #[test]
    fn a_stream_back_from_a_new_endpoint_continues_the_numbering() {
        let mut numbering = Numbering::new();
        for sequence in 40_000..40_010 {
            numbering.outgoing(7, sequence, 1);
        }
        numbering.forget(7, None);
        // The new session starts far behind: the receiver sees 40,010, 40,011, ...
        assert_eq!(numbering.outgoing(7, 100, 2).sequence, 40_010);
        assert_eq!(numbering.outgoing(7, 101, 2).sequence, 40_011);
        // A NACK for 40,011 asks for the new sender's 101; the old sender's are gone.
        assert_eq!(numbering.incoming(7, 40_011, 2), Some(101));
        assert_eq!(numbering.incoming(7, 40_005, 1), None);
    }

    #[test]
    fn a_new_origin_continues_without_a_removal_and_across_the_wrap() {
        let mut numbering = Numbering::new();
        numbering.outgoing(7, 65_534, 1);
        assert_eq!(numbering.outgoing(7, 9_000, 2).sequence, 65_535);
        assert_eq!(numbering.outgoing(7, 9_001, 2).sequence, 0);
        assert_eq!(numbering.incoming(7, 0, 2), Some(9_001));
    }

    #[test]
    fn reordered_packets_keep_their_place() {
        let mut numbering = Numbering::new();
        numbering.outgoing(7, 10, 1);
        numbering.forget(7, None);
        assert_eq!(numbering.outgoing(7, 500, 2).sequence, 11);
        assert_eq!(numbering.outgoing(7, 502, 2).sequence, 13);
        // Late, not newest: it keeps its own number and does not move the highest.
        assert_eq!(numbering.outgoing(7, 501, 2).sequence, 12);
        assert_eq!(numbering.outgoing(7, 503, 2).sequence, 14);
    }

    #[test]
    fn when_full_inactive_entries_are_reused_and_active_ones_kept() {
        let mut numbering = Numbering::new();
        for ssrc in 0..CAPACITY as u32 {
            numbering.outgoing(ssrc, 1_000, 1);
        }
        let capacity = numbering.heap_bytes();
        // Full of active streams: a new one passes through untracked.
        assert_eq!(numbering.outgoing(500, 7, 1).sequence, 7);
        numbering.forget(3, None);
        numbering.outgoing(501, 7, 1);
        assert_eq!(numbering.heap_bytes(), capacity, "never grows");
        numbering.forget(501, None);
        // 501 took 3's place and kept its numbering.
        assert_eq!(numbering.outgoing(501, 20, 2).sequence, 8);
    }

    #[test]
    fn a_returning_stream_hands_back_its_srtp_state_once() {
        let mut numbering = Numbering::new();
        let kept = Some(OutboundState::default());
        numbering.outgoing(7, 10, 1);
        assert!(numbering.outgoing(7, 11, 1).resume_srtp.is_none());
        numbering.forget(7, kept);
        let back = numbering.outgoing(7, 900, 2);
        assert_eq!((back.sequence, back.resume_srtp), (12, kept));
        assert!(numbering.outgoing(7, 901, 2).resume_srtp.is_none());
        // New keys at the receiver: nothing of the old SRTP state is handed back.
        numbering.forget(7, kept);
        numbering.new_srtp_keys();
        assert!(numbering.outgoing(7, 50, 3).resume_srtp.is_none());
    }
}
