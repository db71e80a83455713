//! One receiver × one producer: what that receiver gets of that source. Its allocator sets the
//! layer it is to get ([`Consumer::target`]); the consumer moves to a new encoding only at a key
//! frame of it (until then the old one keeps flowing; moving down, up to its next key frame),
//! drops frames of temporal layers above the target, and gives the receiver one continuous
//! stream under the producer's output SSRC ([`Rewriter`]). It answers the receiver's NACKs and
//! numbers the RTX stream it sends them on.

use std::net::SocketAddr;

use tutti_rtp::codec::{self, Details, FrameInfo};
use tutti_rtp::rtp;

use super::endpoint::Endpoint;
use super::outbox::SLOT;
use super::rewriter::{Rewriter, SwitchPoint};
use super::stream_history::StoppedStream;
use super::transport::Paced;
use super::{MediaKind, Mid};

/// Room kept at the end of a send slot for the SRTP/SRTCP tag and index.
pub const TAG_ROOM: usize = 32;

/// A layer of a producer: the encoding (simulcast layer) and the highest temporal layer
/// forwarded of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Layer {
    pub spatial: u8,
    pub temporal: u8,
}

impl Layer {
    /// The whole of encoding 0: what an audio consumer forwards.
    pub const BASE_ALL: Layer = Layer {
        spatial: 0,
        temporal: u8::MAX,
    };
}

/// What a packet of the producer becomes for this receiver.
#[derive(Clone, Copy)]
pub struct Outgoing<'a> {
    pub packet: &'a [u8],
    pub header: &'a rtp::Header,
    pub kind: MediaKind,
    /// The encoding it belongs to.
    pub encoding: u8,
    /// What its payload says of its frame (video of a codec the bridge reads).
    pub frame: Option<FrameInfo>,
    /// The producer's output SSRC (and that of its RTX stream).
    pub ssrc: u32,
    pub rtx_ssrc: Option<u32>,
    /// The sender's transport-wide-cc extension id.
    pub sender_twcc: Option<u8>,
    pub now_us: i64,
}

/// What a consumer does with one packet of its producer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Forward it.
    Forward,
    /// Forward it: it starts the consumer's new encoding (`from` was forwarded before).
    Switch { from: Option<u8> },
    /// A packet of the forwarded encoding in a temporal layer above the target: dropped, and
    /// the stream closed up around it.
    DropTemporal,
    /// Not for this receiver (another encoding, or nothing is to be forwarded).
    Skip,
}

/// The height a relay is taken to want of every video it gets (it gets all their encodings).
pub const RELAY_WANTED_HEIGHT: u32 = 2160;

/// See [`Consumer::settle`].
const RECENTLY_DOWN_US: i64 = 10_000_000;
const UP_AFTER_DOWN_US: i64 = 2_000_000;

pub struct Consumer {
    /// The receiving endpoint's slot.
    pub receiver: usize,
    /// The receiver is a relay to another bridge: it gets every encoding as the sender sent it
    /// (see [`Consumer::forward`]), whatever its target.
    pub relay: bool,
    /// What its receiver's allocator wants forwarded; `None`: nothing (beyond its last-N, or
    /// no room in its bandwidth). Audio consumers forward [`Layer::BASE_ALL`].
    pub target: Option<Layer>,
    /// The encoding forwarded now.
    pub current: Option<u8>,
    /// The tallest video of this source its receiver wants now: its cap for it while the
    /// source is within its last-N, else 0 (for the sender's constraints).
    pub wanted_height: u32,
    /// Highest temporal layer forwarded now (follows the target at frames that allow it).
    temporal: u8,
    /// A packet of the target encoding went by while the consumer waited for its key frame.
    pub waiting_for_keyframe: bool,
    /// Moving down, a key frame of the encoding forwarded now began: from it on nothing more
    /// of that encoding is forwarded (see [`Consumer::admit`]).
    leaving: bool,
    /// When the allocator last moved it down to a lower encoding, and since when an encoding
    /// above the target has fitted since (see [`Consumer::settle`]).
    moved_down_us: Option<i64>,
    fits_higher_since_us: Option<i64>,
    /// The MID its receiver gets this stream under (written into every packet sent to it, when
    /// its media negotiated the sdes:mid extension); `None`: sent without one.
    pub mid: Option<Mid>,
    rewriter: Rewriter,
    next_rtx_sequence: u16,
}

impl Consumer {
    /// `before` is what the receiver got of this SSRC from an earlier producer (a sender that
    /// came back); `rtx_start` the first RTX sequence number.
    pub fn new(
        receiver: usize,
        relay: bool,
        kind: MediaKind,
        before: Option<&StoppedStream>,
        rtx_start: u16,
    ) -> Consumer {
        let clock_rate = match kind {
            MediaKind::Audio => 48_000,
            MediaKind::Video => 90_000,
        };
        Consumer {
            receiver,
            relay,
            target: (kind == MediaKind::Audio || relay).then_some(Layer::BASE_ALL),
            current: None,
            wanted_height: if relay { RELAY_WANTED_HEIGHT } else { 0 },
            temporal: 0,
            waiting_for_keyframe: false,
            leaving: false,
            moved_down_us: None,
            fits_higher_since_us: None,
            mid: None,
            rewriter: Rewriter::new(clock_rate, before.map(|s| s.last_sequence)),
            next_rtx_sequence: rtx_start,
        }
    }

    /// The allocator chose `chosen`: the target it becomes. Moving up to a higher encoding
    /// within [`RECENTLY_DOWN_US`] of moving down waits until it fitted for [`UP_AFTER_DOWN_US`]
    /// (the encoding it left did not fit; the bitrate a sender short of CPU gives a layer dips
    /// for a second at times, and a receiver moved up in the dip is moved down at the next
    /// peak, each switch at a key frame: behind a 600 kbit/s link, Chromium's 720 lines came
    /// back for a second, with two freezes, in 3 of 11 runs of bandwidth-link.test.mjs).
    pub fn settle(&mut self, chosen: Option<Layer>, now_us: i64) -> Option<Layer> {
        let spatial = |layer: Option<Layer>| layer.map(|l| l.spatial);
        let (to, from) = (spatial(chosen), spatial(self.target));
        let recently_down = self
            .moved_down_us
            .is_some_and(|t| now_us.saturating_sub(t) < RECENTLY_DOWN_US);
        if to < from {
            self.moved_down_us = Some(now_us);
        } else if to > from && recently_down {
            let since = *self.fits_higher_since_us.get_or_insert(now_us);
            if now_us.saturating_sub(since) < UP_AFTER_DOWN_US {
                return self.target;
            }
        }
        self.fits_higher_since_us = None;
        self.target = chosen;
        chosen
    }

    /// Decides what to do with a packet (and moves to its encoding when it is the key frame
    /// the consumer waits for).
    pub fn admit(&mut self, p: &Outgoing<'_>) -> Admission {
        if self.relay {
            // A relay gets every packet of every encoding, as it came (see [`Consumer::forward`]).
            return Admission::Forward;
        }
        let Some(target) = self.target else {
            // Paused: when video resumes, it starts again at a key frame.
            self.current = None;
            self.leaving = false;
            return Admission::Skip;
        };
        let e = p.encoding;
        let Some(frame) = p.frame else {
            // Payloads the bridge does not read (audio, VP9, AV1): the lowest encoding, never
            // switched.
            return match self.current {
                Some(current) if current == e => Admission::Forward,
                None if e == 0 => self.switch(p, target),
                _ => Admission::Skip,
            };
        };
        if self.current != Some(e) {
            if e != target.spatial {
                return Admission::Skip;
            }
            if frame.starts_frame && frame.keyframe {
                return self.switch(p, target);
            }
            self.waiting_for_keyframe = true;
            return Admission::Skip;
        }
        if frame.starts_frame && frame.keyframe {
            // Moving down, the encoding being left is not forwarded from its next key frame
            // on: the target's key frame, asked for at the same time, is on its way (Chromium
            // encodes every simulcast layer's key frame at once), and the receiver, moved
            // down because it lacks the bandwidth, would get it only behind that one's bytes.
            // Behind a 600 kbit/s link a 720-line key frame of 30-50 kB is most of a second.
            self.leaving = target.spatial < e;
        }
        if self.leaving {
            // Closed up, as a temporal layer's drop: should the target come back to this
            // encoding, it resumes at its next key frame without a gap to NACK.
            self.rewriter
                .drop_packet(p.header.sequence, frame.starts_frame);
            return Admission::Skip;
        }
        if let Some(tid) = frame.temporal_layer {
            if frame.starts_frame {
                if frame.keyframe || target.temporal < self.temporal {
                    self.temporal = target.temporal;
                } else if tid > self.temporal && tid <= target.temporal && frame.layer_sync {
                    self.temporal = tid;
                }
            }
            if tid > self.temporal {
                self.rewriter
                    .drop_packet(p.header.sequence, frame.starts_frame);
                return Admission::DropTemporal;
            }
        }
        Admission::Forward
    }

    fn switch(&mut self, p: &Outgoing<'_>, target: Layer) -> Admission {
        let vp8 = vp8_descriptor(p.frame);
        self.rewriter.switch(SwitchPoint {
            layer: p.encoding,
            sequence: p.header.sequence,
            timestamp: p.header.timestamp,
            picture_id: vp8.and_then(|d| d.picture_id).map(|f| f.value),
            tl0_pic_idx: vp8.and_then(|d| d.tl0_pic_idx).map(|f| f.value),
            now_us: p.now_us,
        });
        let from = self.current.replace(p.encoding);
        self.temporal = target.temporal;
        self.waiting_for_keyframe = false;
        self.leaving = false;
        Admission::Switch { from }
    }

    /// The encoding and the producer's sequence number behind the receiver's `sequence` (for
    /// its NACKs).
    pub fn incoming(&self, sequence: u16) -> Option<(u8, u16)> {
        self.rewriter.incoming(sequence)
    }

    /// The offset from encoding `layer`'s RTP timestamps to the receiver's, while it is the
    /// one forwarded (for the sender's reports).
    pub fn timestamp_offset(&self, layer: u8) -> Option<u32> {
        self.rewriter.timestamp_offset(layer)
    }

    /// The next sequence number of its RTX stream (for a retransmission or padding).
    pub fn take_rtx_sequence(&mut self) -> u16 {
        let sequence = self.next_rtx_sequence;
        self.next_rtx_sequence = sequence.wrapping_add(1);
        sequence
    }

    /// The sequence number (in the receiver's numbering) of the last packet forwarded.
    pub fn last_sequence(&self) -> Option<u16> {
        self.rewriter.last_sequence()
    }

    /// What the receiver keeps of this stream when the consumer goes.
    pub fn stopped(&self, ssrc: u32) -> Option<StoppedStream> {
        Some(StoppedStream {
            ssrc,
            last_sequence: self.rewriter.last_sequence()?,
            srtp: None,
        })
    }

    /// The receiver's MID of this stream and the extension id to write it at, when both are
    /// known.
    fn mid_for(&self, receiver: &Endpoint, kind: MediaKind) -> Option<(Mid, u8)> {
        self.mid.zip(receiver.mid_extension(kind))
    }

    /// Writes an admitted packet for the receiver into `slot`, encrypted with its keys: for a
    /// relay as the sender sent it ([`Consumer::relay`]), for a client with its sequence number,
    /// timestamp and VP8 picture numbering in the receiver's stream, the receiver's MID of it
    /// and its transport-wide sequence number. `None`: nothing goes now (not connected, or the
    /// receiver's pacer holds it).
    pub fn forward(
        &mut self,
        receiver: &mut Endpoint,
        p: Outgoing<'_>,
        slot: &mut [u8],
    ) -> Option<(SocketAddr, usize)> {
        if self.relay {
            return self.relay(receiver, p, slot);
        }
        let vp8 = vp8_descriptor(p.frame);
        let w = self.rewriter.forward(
            p.header.sequence,
            p.header.timestamp,
            vp8.and_then(|d| d.picture_id).map(|f| f.value),
            vp8.and_then(|d| d.tl0_pic_idx).map(|f| f.value),
            p.now_us,
        )?;
        let body = slot.get_mut(..SLOT - TAG_ROOM)?;
        let (len, header) = match self.mid_for(receiver, p.kind) {
            Some((mid, id)) => {
                let len =
                    rtp::copy_with_extension(p.packet, p.header, id, mid.as_bytes(), body).ok()?;
                (len, rtp::parse(&body[..len]).ok()?)
            }
            None => {
                let len = p.packet.len();
                body.get_mut(..len)?.copy_from_slice(p.packet);
                (len, *p.header)
            }
        };
        if w.sequence != p.header.sequence {
            rtp::set_sequence(body, w.sequence);
        }
        if w.timestamp != p.header.timestamp {
            rtp::set_timestamp(body, w.timestamp);
        }
        if p.ssrc != p.header.ssrc {
            rtp::set_ssrc(body, p.ssrc);
        }
        if let Some(d) = vp8 {
            let payload = &mut body[header.payload_offset..header.payload_end];
            renumber_vp8(payload, &d, w.picture_id_delta, w.tl0_pic_idx_delta);
        }
        let p = Outgoing {
            header: &header,
            ..p
        };
        seal(receiver, slot, len, p)?.now()
    }

    /// Writes the retransmission of `p` (a cached packet of encoding `p.encoding`, as the
    /// sender sent it) into `slot`, as the receiver first got it: as RTX when the receiver
    /// negotiated it. It leaves now or the pacer holds it.
    pub fn retransmit(
        &mut self,
        receiver: &mut Endpoint,
        p: Outgoing<'_>,
        slot: &mut [u8],
    ) -> Option<Sealed> {
        // Not connected: nothing is sent, and no RTX sequence number is used up.
        receiver.transport.media_destination()?;
        let w = self
            .rewriter
            .sent_as(p.encoding, p.header.sequence, p.header.timestamp)?;
        // With the receiver's MID, the packet is staged with it first (on the stack: a
        // retransmission is rare, and nothing is allocated).
        let mut staged = [0u8; SLOT];
        let (packet, mut header) = match self.mid_for(receiver, p.kind) {
            Some((mid, id)) => {
                let n =
                    rtp::copy_with_extension(p.packet, p.header, id, mid.as_bytes(), &mut staged)
                        .ok()?;
                (&staged[..n], rtp::parse(&staged[..n]).ok()?)
            }
            None => (p.packet, *p.header),
        };
        header.sequence = w.sequence;
        header.timestamp = w.timestamp;
        let body = slot.get_mut(..SLOT - TAG_ROOM)?;
        let rtx = p
            .rtx_ssrc
            .zip(receiver.rtx_payload_type(p.header.payload_type));
        let (len, payload_shift) = match rtx {
            Some((rtx_ssrc, rtx_pt)) => {
                let rtx_sequence = self.take_rtx_sequence();
                let n =
                    rtp::write_rtx(packet, &header, rtx_ssrc, rtx_pt, rtx_sequence, body).ok()?;
                // RTX keeps the original's header but for the fields it replaces: the
                // timestamp too must be the receiver's. With the sender's, a repaired packet
                // of any encoding but the first one forwarded belonged to no frame, which
                // stayed incomplete: behind a 600 kbit/s link a receiver moved down decoded
                // nothing from its new layer's key frame (a packet of it lost and repaired)
                // until the sender's next one, 2-3 s later.
                rtp::set_timestamp(body, w.timestamp);
                (n, 2)
            }
            None => {
                body.get_mut(..packet.len())?.copy_from_slice(packet);
                rtp::set_sequence(body, w.sequence);
                rtp::set_timestamp(body, w.timestamp);
                rtp::set_ssrc(body, p.ssrc);
                (packet.len(), 0)
            }
        };
        let written = rtp::parse(&body[..len]).ok()?;
        if let Some(d) = vp8_descriptor(p.frame) {
            let start = written.payload_offset + payload_shift;
            if let Some(payload) = body.get_mut(start..written.payload_end) {
                renumber_vp8(payload, &d, w.picture_id_delta, w.tl0_pic_idx_delta);
            }
        }
        let p = Outgoing {
            header: &written,
            ..p
        };
        seal(receiver, slot, len, p)
    }
}

impl Consumer {
    /// Writes a packet for a relay: as the sender sent it (each encoding under its own SSRC,
    /// sequence numbers and timestamps), with the relay's transport-wide sequence number,
    /// encrypted with its keys. Never paced: it leaves as it came.
    fn relay(
        &mut self,
        relay: &mut Endpoint,
        p: Outgoing<'_>,
        slot: &mut [u8],
    ) -> Option<(SocketAddr, usize)> {
        relay.transport.media_destination()?;
        let len = p.packet.len();
        slot.get_mut(..SLOT - TAG_ROOM)?
            .get_mut(..len)?
            .copy_from_slice(p.packet);
        let twcc = p.sender_twcc.zip(relay.twcc_extension(p.kind));
        relay
            .transport
            .send_rtp(slot, len, p.header, twcc, p.now_us, None)
    }

    /// Writes the retransmission of `p` (a cached packet, as the sender sent it) for a relay
    /// that NACKed it: as RTX on the encoding's RTX SSRC (`p.rtx_ssrc`) with this consumer's
    /// RTX numbering when the relay's media has RTX, else as it was.
    pub fn relay_retransmit(
        &mut self,
        relay: &mut Endpoint,
        p: Outgoing<'_>,
        slot: &mut [u8],
    ) -> Option<(SocketAddr, usize)> {
        relay.transport.media_destination()?;
        let body = slot.get_mut(..SLOT - TAG_ROOM)?;
        let rtx = p
            .rtx_ssrc
            .zip(relay.rtx_payload_type(p.header.payload_type));
        let len = match rtx {
            Some((rtx_ssrc, rtx_pt)) => {
                let sequence = self.take_rtx_sequence();
                rtp::write_rtx(p.packet, p.header, rtx_ssrc, rtx_pt, sequence, body).ok()?
            }
            None => {
                body.get_mut(..p.packet.len())?.copy_from_slice(p.packet);
                p.packet.len()
            }
        };
        let header = rtp::parse(&body[..len]).ok()?;
        let twcc = p.sender_twcc.zip(relay.twcc_extension(p.kind));
        relay
            .transport
            .send_rtp(slot, len, &header, twcc, p.now_us, None)
    }
}

fn vp8_descriptor(frame: Option<FrameInfo>) -> Option<codec::vp8::Descriptor> {
    match frame?.details {
        Details::Vp8(d) => Some(d),
        Details::H264(_) => None,
    }
}

/// Moves a VP8 payload's PictureID and TL0PICIDX into the receiver's numbering.
fn renumber_vp8(payload: &mut [u8], d: &codec::vp8::Descriptor, pid_delta: u16, tl0_delta: u8) {
    if pid_delta != 0 {
        if let Some(pid) = d.picture_id {
            codec::vp8::set_picture_id(payload, d, pid.value.wrapping_add(pid_delta));
        }
    }
    if tl0_delta != 0 {
        if let Some(idx) = d.tl0_pic_idx {
            codec::vp8::set_tl0_pic_idx(payload, d, idx.value.wrapping_add(tl0_delta));
        }
    }
}

/// Hands the RTP packet of `len` bytes in `slot` (described by `p.header`) to the receiver's
/// pacer; unless it holds video back, gives it the receiver's transport-wide sequence number
/// and encrypts it with the receiver's keys.
/// What became of a packet written for a receiver.
pub enum Sealed {
    /// Encrypted in its slot, of this size, to go to this address now.
    Now(SocketAddr, usize),
    /// The receiver's pacer holds it (`len` bytes), to send later.
    Held(usize),
}

impl Sealed {
    /// Where the slot goes, and its size, if it goes now.
    pub fn now(self) -> Option<(SocketAddr, usize)> {
        match self {
            Sealed::Now(to, n) => Some((to, n)),
            Sealed::Held(_) => None,
        }
    }

    /// The bytes sent or held.
    pub fn bytes(&self) -> usize {
        match *self {
            Sealed::Now(_, n) | Sealed::Held(n) => n,
        }
    }
}

fn seal(receiver: &mut Endpoint, slot: &mut [u8], len: usize, p: Outgoing<'_>) -> Option<Sealed> {
    receiver.transport.media_destination()?;
    let twcc = p.sender_twcc.zip(receiver.twcc_extension(p.kind));
    let paced = p.kind == MediaKind::Video;
    let packet = slot.get(..len)?;
    match receiver.transport.pace(p.now_us, packet, twcc, paced) {
        Paced::Now(cluster) => receiver
            .transport
            .send_rtp(slot, len, p.header, twcc, p.now_us, cluster)
            .map(|(to, n)| Sealed::Now(to, n)),
        Paced::Held => Some(Sealed::Held(len)),
    }
}

#[cfg(test)]
mod tests;
