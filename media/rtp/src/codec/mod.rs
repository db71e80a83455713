//! What the bridge needs to know about a video payload to switch a receiver between simulcast
//! layers: where frames start, which packets start a key frame, the temporal layer, and where
//! the fields that must stay continuous across a switch live so they can be rewritten in place.
//!
//! A receiver is moved to another layer only on a **key frame of the target layer** (anything
//! else cannot be decoded without the frames it refers to): the bridge keeps forwarding the old
//! layer until a packet of the new one reports [`FrameInfo::starts_frame`] and
//! [`FrameInfo::keyframe`], and switches at that packet. Its sequence numbers and timestamps are
//! rewritten by the RTP layer ([`crate::rtp`]); for VP8 the codec-level counters that decoders
//! check for gaps — PictureID and TL0PICIDX — are rewritten with [`vp8::set_picture_id`] and
//! [`vp8::set_tl0_pic_idx`] at the offsets [`vp8::parse`] found. Temporal layers
//! ([`FrameInfo::temporal_layer`], VP8's TID) can be dropped without a key frame: a receiver
//! may move up to a higher temporal layer at a frame with [`FrameInfo::layer_sync`] set.
//!
//! - [`frame_info`] is the per-packet entry point: given the codec of the packet's payload type
//!   it returns a [`FrameInfo`] (with the codec's own view in [`FrameInfo::details`], so one
//!   parse per packet is enough), or `None` for codecs the bridge forwards without layer
//!   switching (VP9, AV1, audio — [`Codec::Other`]) and for payloads that do not parse.
//! - [`vp8`] parses the RFC 7741 payload descriptor and rewrites it in place.
//! - [`h264`] classifies RFC 6184 payloads (single NAL unit, STAP-A, FU-A): key-frame NAL units
//!   (IDR, SPS, PPS) and the start of an access unit.
//!
//! Nothing here allocates: parsers borrow the payload, return small `Copy` values and check
//! every length before reading, so truncated or hostile payloads give an error (or `None`),
//! never a panic; the rewriters change bytes in place and never the payload's length.

pub mod h264;
pub mod vp8;

/// The video codecs whose payloads the bridge understands, chosen per payload type from the
/// negotiated encoding name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Codec {
    /// VP8 (RFC 7741).
    Vp8,
    /// H.264 (RFC 6184, packetization mode 0 or 1).
    H264,
    /// Anything else (VP9, AV1, audio, RTX...): forwarded without layer switching.
    Other,
}

impl Codec {
    /// The codec of an SDP / Jingle encoding name (`a=rtpmap` name, case-insensitive):
    /// `VP8`, `H264`, anything else is [`Codec::Other`].
    pub fn from_encoding_name(name: &str) -> Codec {
        if name.eq_ignore_ascii_case("VP8") {
            Codec::Vp8
        } else if name.eq_ignore_ascii_case("H264") {
            Codec::H264
        } else {
            Codec::Other
        }
    }
}

/// What one packet says about the frame it belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameInfo {
    /// The packet's payload begins a frame. VP8: S=1 and partition index 0. H264: the packet
    /// begins a NAL unit that can begin an access unit (see [`h264::Info::starts_frame`]).
    pub starts_frame: bool,
    /// The packet begins key-frame data: VP8, the first packet of a key frame (the frame's
    /// other packets carry no key-frame bit and report `false`); H264, an IDR, SPS or PPS NAL
    /// unit starts in it. A layer switch happens at a packet with both `starts_frame` and
    /// `keyframe`.
    pub keyframe: bool,
    /// Temporal layer (VP8 TID) when the payload says; `None` when it does not (H264, or a
    /// VP8 descriptor without TID).
    pub temporal_layer: Option<u8>,
    /// VP8 Y bit (with TID present): this frame depends only on base-layer (TL0) frames, so a
    /// receiver can move up to this temporal layer here. `false` when absent.
    pub layer_sync: bool,
    /// The codec's own parse, with the offsets for in-place rewriting.
    pub details: Details,
}

impl FrameInfo {
    /// The packet where a key frame's picture begins: VP8, the first packet of a key frame;
    /// H264, the start of an IDR picture's first slice (an SPS or PPS in a packet of its own
    /// before it is not counted, so each key frame is seen once).
    pub fn starts_keyframe_picture(&self) -> bool {
        match self.details {
            Details::Vp8(_) => self.starts_frame && self.keyframe,
            Details::H264(h264) => self.starts_frame && h264.idr,
        }
    }
}

/// The codec-specific parse behind a [`FrameInfo`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Details {
    Vp8(vp8::Descriptor),
    H264(h264::Info),
}

/// Per-packet entry point: what `payload` (the RTP payload, without padding; e.g.
/// [`crate::rtp::Header::payload`]) of a packet of `codec` says about its frame. `None` for
/// [`Codec::Other`] and for payloads that do not parse (such packets are forwarded but never
/// chosen as a switch point).
pub fn frame_info(codec: Codec, payload: &[u8]) -> Option<FrameInfo> {
    match codec {
        Codec::Vp8 => {
            let d = vp8::parse(payload).ok()?;
            Some(FrameInfo {
                starts_frame: d.starts_frame(),
                keyframe: d.keyframe,
                temporal_layer: d.temporal_id,
                layer_sync: d.layer_sync,
                details: Details::Vp8(d),
            })
        }
        Codec::H264 => {
            let info = h264::parse(payload).ok()?;
            Some(FrameInfo {
                starts_frame: info.starts_frame,
                keyframe: info.keyframe(),
                temporal_layer: None,
                layer_sync: false,
                details: Details::H264(info),
            })
        }
        Codec::Other => None,
    }
}
