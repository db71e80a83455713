//! VP8 RTP payload descriptor (RFC 7741 §4.2): parse it, tell frame starts and key frames, and
//! rewrite PictureID and TL0PICIDX in place so a receiver's stream stays continuous across a
//! simulcast layer switch. Nothing allocates.
//!
//! ```text
//!       0 1 2 3 4 5 6 7
//!      +-+-+-+-+-+-+-+-+
//!      |X|R|N|S|R| PID | (REQUIRED)
//!      +-+-+-+-+-+-+-+-+
//! X:   |I|L|T|K| RSV   | (OPTIONAL)
//!      +-+-+-+-+-+-+-+-+
//! I:   |M| PictureID   | (OPTIONAL, 7 bits, or 15 bits with the next octet when M=1)
//!      +-+-+-+-+-+-+-+-+
//! L:   |   TL0PICIDX   | (OPTIONAL)
//!      +-+-+-+-+-+-+-+-+
//! T/K: |TID|Y| KEYIDX  | (OPTIONAL)
//!      +-+-+-+-+-+-+-+-+
//! ```
//!
//! The VP8 payload follows; in the first packet of a frame (S=1, PID=0) it begins with the VP8
//! payload header (RFC 7741 §4.3, RFC 6386 §9.1) whose first octet's bit 0 is the inverse key
//! frame flag P (0 = key frame).
//!
//! The parser is lenient where receivers are told to ignore things (the R bits, RSV, L set
//! without T) and strict about lengths: every announced field and at least one octet of VP8
//! payload must be present.

use crate::Error;

/// The descriptor's PictureID field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PictureId {
    /// The value: 0..128 for the 7-bit form, 0..32768 for the 15-bit form.
    pub value: u16,
    /// The 15-bit form (M bit set): two octets instead of one.
    pub long: bool,
    /// Offset of the field's first octet (the one holding the M bit) in the payload.
    pub offset: usize,
}

impl PictureId {
    /// The number of distinct values the field holds (128 or 32768): picture IDs wrap at this.
    pub fn modulus(&self) -> u16 {
        if self.long {
            0x8000
        } else {
            0x80
        }
    }
}

/// The descriptor's TL0PICIDX field (running index of base temporal layer frames).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tl0PicIdx {
    pub value: u8,
    /// Offset of the field in the payload.
    pub offset: usize,
}

/// A parsed VP8 payload descriptor. Offsets are relative to the payload slice given to
/// [`parse`]; to rewrite inside a whole RTP packet pass
/// `&mut packet[header.payload_offset..header.payload_end]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Descriptor {
    /// X: the extension octet is present.
    pub extended: bool,
    /// N: non-reference frame (can be discarded without affecting other frames).
    pub non_reference: bool,
    /// S: the payload begins a VP8 partition.
    pub start_of_partition: bool,
    /// PID: partition index (0..=7).
    pub partition_index: u8,
    /// I: the PictureID, when present.
    pub picture_id: Option<PictureId>,
    /// L: the TL0PICIDX, when present.
    pub tl0_pic_idx: Option<Tl0PicIdx>,
    /// T: the temporal layer index TID (0..=3), when present.
    pub temporal_id: Option<u8>,
    /// Y (meaningful only with TID; `false` otherwise): this frame depends only on base layer
    /// frames, a receiver can move up to its temporal layer here.
    pub layer_sync: bool,
    /// K: the temporal key frame index KEYIDX (0..=31), when present.
    pub key_idx: Option<u8>,
    /// Length of the descriptor: offset of the VP8 payload in the RTP payload.
    pub payload_offset: usize,
    /// The packet starts a key frame: [`Descriptor::starts_frame`] and the VP8 payload
    /// header's P bit is 0.
    pub keyframe: bool,
}

impl Descriptor {
    /// The packet begins a frame: S=1 and partition index 0 (RFC 7741 §4.2: the first packet
    /// of every frame has S=1, and the frame begins with partition 0).
    pub fn starts_frame(&self) -> bool {
        self.start_of_partition && self.partition_index == 0
    }
}

/// Parses the payload descriptor at the start of an RTP payload (without padding).
/// `Err(TooShort)` when a field the descriptor announces, or the first octet of VP8 payload,
/// is missing.
pub fn parse(payload: &[u8]) -> Result<Descriptor, Error> {
    let b0 = *payload.first().ok_or(Error::TooShort)?;
    let mut d = Descriptor {
        extended: b0 & 0x80 != 0,
        non_reference: b0 & 0x20 != 0,
        start_of_partition: b0 & 0x10 != 0,
        partition_index: b0 & 0x07,
        picture_id: None,
        tl0_pic_idx: None,
        temporal_id: None,
        layer_sync: false,
        key_idx: None,
        payload_offset: 1,
        keyframe: false,
    };
    let mut at = 1;
    let next = |at: &mut usize| -> Result<u8, Error> {
        let b = *payload.get(*at).ok_or(Error::TooShort)?;
        *at += 1;
        Ok(b)
    };
    if d.extended {
        let x = next(&mut at)?;
        if x & 0x80 != 0 {
            let offset = at;
            let first = next(&mut at)?;
            let (value, long) = if first & 0x80 != 0 {
                let low = next(&mut at)?;
                ((u16::from(first & 0x7f) << 8) | u16::from(low), true)
            } else {
                (u16::from(first), false)
            };
            d.picture_id = Some(PictureId {
                value,
                long,
                offset,
            });
        }
        if x & 0x40 != 0 {
            let offset = at;
            d.tl0_pic_idx = Some(Tl0PicIdx {
                value: next(&mut at)?,
                offset,
            });
        }
        let (t, k) = (x & 0x20 != 0, x & 0x10 != 0);
        if t || k {
            let tk = next(&mut at)?;
            if t {
                d.temporal_id = Some(tk >> 6);
                d.layer_sync = tk & 0x20 != 0;
            }
            if k {
                d.key_idx = Some(tk & 0x1f);
            }
        }
    }
    let header = *payload.get(at).ok_or(Error::TooShort)?;
    d.payload_offset = at;
    d.keyframe = d.starts_frame() && header & 0x01 == 0;
    Ok(d)
}

/// Rewrites the PictureID of the payload `descriptor` was parsed from, in place, keeping the
/// field's width: a 7-bit field stores `value % 128`, a 15-bit one `value % 32768`. False (and
/// nothing written) when the descriptor has no PictureID or `payload` does not hold the field
/// as parsed.
pub fn set_picture_id(payload: &mut [u8], descriptor: &Descriptor, value: u16) -> bool {
    let Some(field) = descriptor.picture_id else {
        return false;
    };
    let len = if field.long { 2 } else { 1 };
    let Some(bytes) = field
        .offset
        .checked_add(len)
        .and_then(|end| payload.get_mut(field.offset..end))
    else {
        return false;
    };
    if (bytes[0] & 0x80 != 0) != field.long {
        return false;
    }
    if field.long {
        bytes.copy_from_slice(&((value & 0x7fff) | 0x8000).to_be_bytes());
    } else {
        bytes[0] = (value & 0x7f) as u8;
    }
    true
}

/// Rewrites the TL0PICIDX of the payload `descriptor` was parsed from, in place. False (and
/// nothing written) when the descriptor has none or `payload` is too short for it.
pub fn set_tl0_pic_idx(payload: &mut [u8], descriptor: &Descriptor, value: u8) -> bool {
    match descriptor
        .tl0_pic_idx
        .and_then(|field| payload.get_mut(field.offset))
    {
        Some(byte) => {
            *byte = value;
            true
        }
        None => false,
    }
}

/// Width and height (in pixels, scaling bits dropped) from the key frame header (RFC 6386
/// §9.1) of a packet that starts a key frame; `None` for other packets, when the start code
/// is wrong or the header is cut short.
pub fn keyframe_size(payload: &[u8], descriptor: &Descriptor) -> Option<(u16, u16)> {
    if !descriptor.keyframe {
        return None;
    }
    let vp8 = payload.get(descriptor.payload_offset..)?;
    match vp8 {
        [_, _, _, 0x9d, 0x01, 0x2a, w0, w1, h0, h1, ..] => Some((
            u16::from_le_bytes([*w0, *w1]) & 0x3fff,
            u16::from_le_bytes([*h0, *h1]) & 0x3fff,
        )),
        _ => None,
    }
}
