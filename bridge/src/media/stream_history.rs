//! What one receiver saw of streams that stopped: where their numbering and outbound SRTP
//! state stood, so that a stream coming back continues them.
//!
//! A participant that restarts its session (ICE failure → new session on a new endpoint) keeps
//! its SSRCs but starts a new random RTP sequence. Passed through unchanged, the new numbers
//! could sit up to 32,767 behind what the receiver last saw: its SRTP replay window and jitter
//! buffer would drop the stream until the numbers caught up (minutes of silence for audio). So
//! when a consumer of an SSRC this receiver saw before is made again, its numbering continues
//! where the receiver's last packet left it — and so does the SRTP state (rollover counter,
//! SRTCP index) the receiver kept: a stream that had wrapped its sequence before it went away
//! would otherwise come back with ROC 0 and fail authentication.

use tutti_srtp::OutboundState;

/// Streams remembered per receiver; past that, the oldest is forgotten.
const CAPACITY: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoppedStream {
    pub ssrc: u32,
    /// Highest sequence number the receiver got.
    pub last_sequence: u16,
    /// Where the receiver's outbound SRTP state for it stood.
    pub srtp: Option<OutboundState>,
}

/// Preallocated and never grown.
pub struct StreamHistory {
    /// Oldest first.
    stopped: Vec<StoppedStream>,
}

impl Default for StreamHistory {
    fn default() -> Self {
        StreamHistory::new()
    }
}

impl StreamHistory {
    pub fn new() -> StreamHistory {
        StreamHistory {
            stopped: Vec::with_capacity(CAPACITY),
        }
    }

    pub fn remember(&mut self, stream: StoppedStream) {
        self.stopped.retain(|s| s.ssrc != stream.ssrc);
        if self.stopped.len() == CAPACITY {
            self.stopped.remove(0);
        }
        self.stopped.push(stream);
    }

    /// The stopped stream of `ssrc`, which is back.
    pub fn take(&mut self, ssrc: u32) -> Option<StoppedStream> {
        let i = self.stopped.iter().position(|s| s.ssrc == ssrc)?;
        Some(self.stopped.remove(i))
    }

    /// The receiver has new SRTP keys, so new SRTP state for every stream: what was kept for
    /// the old keys no longer applies.
    pub fn new_srtp_keys(&mut self) {
        for stream in &mut self.stopped {
            stream.srtp = None;
        }
    }

    pub fn heap_bytes(&self) -> usize {
        self.stopped.capacity() * std::mem::size_of::<StoppedStream>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stopped(ssrc: u32, last_sequence: u16) -> StoppedStream {
        StoppedStream {
            ssrc,
            last_sequence,
            srtp: Some(OutboundState::default()),
        }
    }

    #[test]
    fn keeps_the_newest_streams_and_hands_each_back_once() {
        let mut history = StreamHistory::new();
        let capacity = history.heap_bytes();
        for ssrc in 0..CAPACITY as u32 + 1 {
            history.remember(stopped(ssrc, 7));
        }
        assert_eq!(history.heap_bytes(), capacity, "never grows");
        assert!(history.take(0).is_none(), "the oldest made room");
        history.remember(stopped(5, 9));
        assert_eq!(
            history.take(5).unwrap().last_sequence,
            9,
            "the latest stop counts"
        );
        assert!(history.take(5).is_none());
        history.new_srtp_keys();
        assert_eq!(history.take(6).unwrap().srtp, None);
    }
}
