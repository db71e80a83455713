//! One receiver × one producer: what that receiver gets of that source. It picks the encoding
//! it forwards, gives the receiver one continuous stream under the producer's output SSRC
//! (sequence numbers rewritten where needed), answers the receiver's NACKs, and numbers the
//! RTX stream it sends them on.

use std::net::SocketAddr;

use tutti_rtp::rtp;

use super::endpoint::Endpoint;
use super::outbox::SLOT;
use super::stream_history::StoppedStream;
use super::MediaKind;

/// Room kept at the end of a send slot for the SRTP/SRTCP tag and index.
pub const TAG_ROOM: usize = 32;

/// What a packet of the producer becomes for this receiver.
#[derive(Clone, Copy)]
pub struct Outgoing<'a> {
    pub packet: &'a [u8],
    pub header: &'a rtp::Header,
    pub kind: MediaKind,
    /// The producer's output SSRC (and that of its RTX stream).
    pub ssrc: u32,
    pub rtx_ssrc: Option<u32>,
    /// The sender's transport-wide-cc extension id.
    pub sender_twcc: Option<u8>,
    pub now_us: i64,
}

pub struct Consumer {
    /// The receiving endpoint's slot.
    pub receiver: usize,
    /// The encoding forwarded: the lowest simulcast layer, until layer choice exists.
    pub layer: usize,
    /// Added to the producer's sequence numbers; set by the first packet forwarded.
    offset: Option<u16>,
    /// Highest sequence number sent to the receiver (or, before the first packet, the last one
    /// it got of this SSRC from an earlier producer).
    last: Option<u16>,
    next_rtx_sequence: u16,
}

impl Consumer {
    /// `before` is what the receiver got of this SSRC from an earlier producer (a sender that
    /// came back); `rtx_start` the first RTX sequence number.
    pub fn new(receiver: usize, before: Option<&StoppedStream>, rtx_start: u16) -> Consumer {
        Consumer {
            receiver,
            layer: 0,
            offset: None,
            last: before.map(|s| s.last_sequence),
            next_rtx_sequence: rtx_start,
        }
    }

    /// Forwards this encoding's packets.
    pub fn wants(&self, encoding: usize) -> bool {
        encoding == self.layer
    }

    /// The receiver's sequence number for the producer's `sequence`.
    fn outgoing_sequence(&mut self, sequence: u16) -> u16 {
        let offset = *self.offset.get_or_insert_with(|| match self.last {
            Some(last) => last.wrapping_add(1).wrapping_sub(sequence),
            None => 0,
        });
        let shifted = sequence.wrapping_add(offset);
        if self
            .last
            .is_none_or(|last| (shifted.wrapping_sub(last) as i16) > 0)
        {
            self.last = Some(shifted);
        }
        shifted
    }

    /// The producer's sequence number behind the receiver's `sequence` (for its NACKs).
    pub fn incoming_sequence(&self, sequence: u16) -> Option<u16> {
        Some(sequence.wrapping_sub(self.offset?))
    }

    /// What the receiver keeps of this stream when the consumer goes.
    pub fn stopped(&self, ssrc: u32) -> Option<StoppedStream> {
        Some(StoppedStream {
            ssrc,
            last_sequence: self.last?,
            srtp: None,
        })
    }

    /// Writes `packet` for the receiver into `slot`: its sequence number, its transport-wide
    /// sequence number, encrypted with its keys.
    pub fn forward(
        &mut self,
        receiver: &mut Endpoint,
        p: Outgoing<'_>,
        slot: &mut [u8],
    ) -> Option<(SocketAddr, usize)> {
        let len = p.packet.len();
        let body = slot.get_mut(..SLOT - TAG_ROOM)?;
        body.get_mut(..len)?.copy_from_slice(p.packet);
        let sequence = self.outgoing_sequence(p.header.sequence);
        if sequence != p.header.sequence {
            rtp::set_sequence(body, sequence);
        }
        if p.ssrc != p.header.ssrc {
            rtp::set_ssrc(body, p.ssrc);
        }
        seal(receiver, slot, len, p)
    }

    /// Writes the retransmission of `p` (a cached packet, already carrying the receiver's
    /// sequence number in `p.header`) into `slot`: as RTX when the receiver negotiated it.
    pub fn retransmit(
        &mut self,
        receiver: &mut Endpoint,
        p: Outgoing<'_>,
        slot: &mut [u8],
    ) -> Option<(SocketAddr, usize)> {
        // Not connected: nothing is sent, and no RTX sequence number is used up.
        receiver.transport.media_destination()?;
        let body = slot.get_mut(..SLOT - TAG_ROOM)?;
        let rtx = p
            .rtx_ssrc
            .zip(receiver.rtx_payload_type(p.header.payload_type));
        let len = match rtx {
            Some((rtx_ssrc, rtx_pt)) => {
                let rtx_sequence = self.next_rtx_sequence;
                self.next_rtx_sequence = rtx_sequence.wrapping_add(1);
                rtp::write_rtx(p.packet, p.header, rtx_ssrc, rtx_pt, rtx_sequence, body).ok()?
            }
            None => {
                body.get_mut(..p.packet.len())?.copy_from_slice(p.packet);
                rtp::set_sequence(body, p.header.sequence);
                rtp::set_ssrc(body, p.ssrc);
                p.packet.len()
            }
        };
        let written = rtp::parse(&body[..len]).ok()?;
        let p = Outgoing {
            header: &written,
            ..p
        };
        seal(receiver, slot, len, p)
    }
}

/// Gives the RTP packet of `len` bytes in `slot` (described by `p.header`) the receiver's
/// transport-wide sequence number and encrypts it with the receiver's keys.
fn seal(
    receiver: &mut Endpoint,
    slot: &mut [u8],
    len: usize,
    p: Outgoing<'_>,
) -> Option<(SocketAddr, usize)> {
    let to = receiver.transport.media_destination()?;
    if let (Some(from), Some(to_id)) = (p.sender_twcc, receiver.twcc_extension(p.kind)) {
        let body = &mut slot[..SLOT - TAG_ROOM];
        receiver
            .transport
            .stamp_twcc(body, len, p.header, (from, to_id), p.now_us);
    }
    let n = receiver
        .transport
        .srtp_out
        .as_mut()?
        .protect_rtp(slot, len)
        .ok()?;
    Some((to, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stopped(last_sequence: u16) -> StoppedStream {
        StoppedStream {
            ssrc: 7,
            last_sequence,
            srtp: None,
        }
    }

    #[test]
    fn a_first_stream_passes_through() {
        let mut consumer = Consumer::new(0, None, 0);
        assert_eq!(consumer.incoming_sequence(5), None, "nothing sent yet");
        assert_eq!(consumer.outgoing_sequence(40_000), 40_000);
        assert_eq!(consumer.outgoing_sequence(40_001), 40_001);
        assert_eq!(consumer.incoming_sequence(40_001), Some(40_001));
        assert_eq!(consumer.stopped(7).unwrap().last_sequence, 40_001);
    }

    #[test]
    fn a_stream_back_from_a_new_producer_continues_the_numbering_across_the_wrap() {
        let mut consumer = Consumer::new(0, Some(&stopped(65_534)), 0);
        assert_eq!(consumer.outgoing_sequence(9_000), 65_535);
        assert_eq!(consumer.outgoing_sequence(9_001), 0);
        // A NACK for 0 asks for the new sender's 9,001.
        assert_eq!(consumer.incoming_sequence(0), Some(9_001));
    }

    #[test]
    fn reordered_packets_keep_their_place() {
        let mut consumer = Consumer::new(0, Some(&stopped(10)), 0);
        assert_eq!(consumer.outgoing_sequence(500), 11);
        assert_eq!(consumer.outgoing_sequence(502), 13);
        // Late, not newest: it keeps its own number and does not move the highest.
        assert_eq!(consumer.outgoing_sequence(501), 12);
        assert_eq!(consumer.stopped(7).unwrap().last_sequence, 13);
        assert_eq!(consumer.outgoing_sequence(503), 14);
    }
}
