//! RTP header view, in-place rewriting (SSRC, sequence, payload type, header extension ids) and
//! RFC 4588 retransmission packet construction.

use std::ops::Range;

use crate::{be_u16, be_u32, Error};

/// Fixed RTP header length (RFC 3550 §5.1).
pub const FIXED_HEADER_LEN: usize = 12;
/// Profile of the RFC 8285 one-byte header extension form.
pub const PROFILE_ONE_BYTE: u16 = 0xBEDE;
/// Profile of the RFC 8285 two-byte header extension form (low 4 bits are app bits).
pub const PROFILE_TWO_BYTE: u16 = 0x1000;

/// RFC 5761 demux of an rtcp-mux'ed datagram (first byte 128..=191): true when the second
/// byte is 192..=223 (RTCP packet types 200-207 etc.).
pub fn is_rtcp(buf: &[u8]) -> bool {
    matches!(buf, [128..=191, 192..=223, ..])
}

/// Parsed fixed header plus the offsets the bridge needs to rewrite or forward the packet.
#[derive(Clone, Copy, Debug)]
pub struct Header {
    pub marker: bool,
    pub payload_type: u8,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    /// Offset of the payload (after CSRCs and the header extension).
    pub payload_offset: usize,
    /// Payload end (before padding).
    pub payload_end: usize,
    /// Header extension block (after the 4-byte 0xBEDE / 0x100X header), if any.
    pub extensions: Option<ExtensionBlock>,
}

impl Header {
    /// The payload bytes (without padding) of the packet this header was parsed from.
    pub fn payload<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        buf.get(self.payload_offset..self.payload_end)
            .unwrap_or_default()
    }
}

/// Location of the header extension elements inside the packet.
#[derive(Clone, Copy, Debug)]
pub struct ExtensionBlock {
    pub profile: u16,
    pub offset: usize,
    pub len: usize,
}

/// Parses and validates an RTP header (version 2, CSRC list, extension block, padding).
pub fn parse(buf: &[u8]) -> Result<Header, Error> {
    if buf.len() < FIXED_HEADER_LEN {
        return Err(Error::TooShort);
    }
    let b0 = buf[0];
    if b0 >> 6 != 2 {
        return Err(Error::BadVersion);
    }
    let b1 = buf[1];
    let csrc_count = usize::from(b0 & 0x0f);
    let mut offset = FIXED_HEADER_LEN + 4 * csrc_count;
    if buf.len() < offset {
        return Err(Error::TooShort);
    }
    let mut extensions = None;
    if b0 & 0x10 != 0 {
        let profile = be_u16(buf, offset).ok_or(Error::TooShort)?;
        let words = be_u16(buf, offset + 2).ok_or(Error::TooShort)?;
        let block = ExtensionBlock {
            profile,
            offset: offset + 4,
            len: 4 * usize::from(words),
        };
        offset = block.offset + block.len;
        if buf.len() < offset {
            return Err(Error::TooShort);
        }
        extensions = Some(block);
    }
    let mut payload_end = buf.len();
    if b0 & 0x20 != 0 {
        let padding = usize::from(buf[buf.len() - 1]);
        if padding == 0 || offset + padding > buf.len() {
            return Err(Error::BadLength);
        }
        payload_end -= padding;
    }
    Ok(Header {
        marker: b1 & 0x80 != 0,
        payload_type: b1 & 0x7f,
        sequence: be_u16(buf, 2).ok_or(Error::TooShort)?,
        timestamp: be_u32(buf, 4).ok_or(Error::TooShort)?,
        ssrc: be_u32(buf, 8).ok_or(Error::TooShort)?,
        payload_offset: offset,
        payload_end,
        extensions,
    })
}

/// One RFC 8285 extension element: where its id lives and where its value lies.
#[derive(Clone, Debug)]
struct Element {
    id_at: usize,
    id: u8,
    value: Range<usize>,
}

/// Walks the elements of an extension block, stopping at the first malformed element.
#[derive(Clone, Debug)]
struct Elements<'a> {
    buf: &'a [u8],
    pos: usize,
    end: usize,
    two_byte: bool,
}

impl<'a> Elements<'a> {
    fn new(buf: &'a [u8], header: &Header) -> Self {
        let empty = Elements {
            buf,
            pos: 0,
            end: 0,
            two_byte: false,
        };
        let Some(block) = header.extensions else {
            return empty;
        };
        let two_byte = match block.profile {
            PROFILE_ONE_BYTE => false,
            p if p & 0xfff0 == PROFILE_TWO_BYTE => true,
            _ => return empty,
        };
        let end = block.offset.saturating_add(block.len).min(buf.len());
        Elements {
            buf,
            pos: block.offset,
            end,
            two_byte,
        }
    }
}

impl Iterator for Elements<'_> {
    type Item = Element;

    fn next(&mut self) -> Option<Element> {
        while self.pos < self.end {
            let id_at = self.pos;
            let byte = *self.buf.get(id_at)?;
            if byte == 0 || (!self.two_byte && byte >> 4 == 0) {
                // Padding between elements: id 0 is reserved for it in both forms, and (as in
                // libwebrtc) a one-byte-form id 0 skips a single byte whatever its length bits.
                self.pos += 1;
                continue;
            }
            let (id, start, len) = if self.two_byte {
                let len = usize::from(*self.buf.get(id_at + 1).filter(|_| id_at + 1 < self.end)?);
                (byte, id_at + 2, len)
            } else {
                let id = byte >> 4;
                if id == 15 {
                    // RFC 8285 §4.2: id 15 is reserved and ends parsing.
                    self.pos = self.end;
                    return None;
                }
                (id, id_at + 1, usize::from(byte & 0x0f) + 1)
            };
            let stop = start + len;
            if stop > self.end {
                self.pos = self.end;
                return None;
            }
            self.pos = stop;
            return Some(Element {
                id_at,
                id,
                value: start..stop,
            });
        }
        None
    }
}

/// Iterates `(id, value range)` of every header extension element of the packet.
pub fn extensions<'a>(
    buf: &'a [u8],
    header: &Header,
) -> impl Iterator<Item = (u8, Range<usize>)> + 'a {
    Elements::new(buf, header).map(|e| (e.id, e.value))
}

/// Byte range of the value of extension `id` (one-byte 0xBEDE or two-byte 0x100X form).
pub fn find_extension(buf: &[u8], header: &Header, id: u8) -> Option<Range<usize>> {
    if id == 0 {
        return None;
    }
    Elements::new(buf, header)
        .find(|e| e.id == id)
        .map(|e| e.value)
}

/// Rewrites, in place, the id of the element whose id is `from` to `to` (same length; for
/// one-byte form `to` must be 1..=14).
pub fn rename_extension(buf: &mut [u8], header: &Header, from: u8, to: u8) -> bool {
    if from == 0 || to == 0 {
        return false;
    }
    let Some(element) = Elements::new(buf, header).find(|e| e.id == from) else {
        return false;
    };
    let Some(two_byte) = header
        .extensions
        .map(|b| b.profile & 0xfff0 == PROFILE_TWO_BYTE)
    else {
        return false;
    };
    let Some(slot) = buf.get_mut(element.id_at) else {
        return false;
    };
    if two_byte {
        *slot = to;
    } else {
        if to > 14 {
            return false;
        }
        *slot = (to << 4) | (*slot & 0x0f);
    }
    true
}

/// Overwrites, in place, the element whose id is `id` with padding (zero bytes), so that
/// receivers skip it; the packet keeps its length. Returns whether the element was found.
pub fn blank_extension(buf: &mut [u8], header: &Header, id: u8) -> bool {
    if id == 0 {
        return false;
    }
    let Some(element) = Elements::new(buf, header).find(|e| e.id == id) else {
        return false;
    };
    match buf.get_mut(element.id_at..element.value.end) {
        Some(bytes) => {
            bytes.fill(0);
            true
        }
        None => false,
    }
}

/// Copies the packet `src` (parsed as `header`) into `out` with the extension element `id` set
/// to `value`, appended after the elements it has (an element `id` it has is blanked; trailing
/// padding inside the block is reused), in the block's form: one-byte (id 1..=14, 1 to 16
/// bytes; also for a packet without a block, which gets one) or two-byte (id 1..=255, up to
/// 255 bytes). The payload and the packet's padding follow unchanged. Returns the length
/// written. A block of another profile, or a value its form cannot carry, is `Unsupported`.
pub fn copy_with_extension(
    src: &[u8],
    header: &Header,
    id: u8,
    value: &[u8],
    out: &mut [u8],
) -> Result<usize, Error> {
    let two_byte = match header.extensions.map(|b| b.profile) {
        None | Some(PROFILE_ONE_BYTE) => false,
        Some(p) if p & 0xfff0 == PROFILE_TWO_BYTE => true,
        Some(_) => return Err(Error::Unsupported),
    };
    let fits = if two_byte {
        id != 0 && value.len() <= 255
    } else {
        (1..=14).contains(&id) && (1..=16).contains(&value.len())
    };
    if !fits {
        return Err(Error::Unsupported);
    }
    let tail = src.get(header.payload_offset..).ok_or(Error::BadLength)?;
    // Where the elements start in `out`, and the bytes of the kept ones (through the end of the
    // last element; padding after it is dropped).
    let (elements_at, kept) = match header.extensions {
        Some(block) => {
            let end = Elements::new(src, header)
                .map(|e| e.value.end)
                .max()
                .unwrap_or(block.offset);
            (block.offset, end - block.offset)
        }
        None => (header.payload_offset + 4, 0),
    };
    let element = if two_byte { 2 } else { 1 } + value.len();
    let block_len = (kept + element).div_ceil(4) * 4;
    if block_len / 4 > usize::from(u16::MAX) {
        return Err(Error::Unsupported);
    }
    let total = elements_at + block_len + tail.len();
    let out = out.get_mut(..total).ok_or(Error::BufferTooSmall)?;
    match header.extensions {
        Some(_) => out[..elements_at + kept].copy_from_slice(&src[..elements_at + kept]),
        None => {
            out[..header.payload_offset].copy_from_slice(&src[..header.payload_offset]);
            out[header.payload_offset..header.payload_offset + 2]
                .copy_from_slice(&PROFILE_ONE_BYTE.to_be_bytes());
            out[0] |= 0x10;
        }
    }
    out[elements_at - 2..elements_at].copy_from_slice(&((block_len / 4) as u16).to_be_bytes());
    if let Some(old) = Elements::new(src, header).find(|e| e.id == id) {
        out[old.id_at..old.value.end].fill(0);
    }
    let at = elements_at + kept;
    let value_at = if two_byte {
        out[at] = id;
        out[at + 1] = value.len() as u8;
        at + 2
    } else {
        out[at] = (id << 4) | (value.len() as u8 - 1);
        at + 1
    };
    out[value_at..value_at + value.len()].copy_from_slice(value);
    out[value_at + value.len()..elements_at + block_len].fill(0);
    out[elements_at + block_len..].copy_from_slice(tail);
    Ok(total)
}

/// Rewrites the sequence number in place (no-op on a buffer shorter than the fixed header).
pub fn set_sequence(buf: &mut [u8], seq: u16) {
    if let Some(field) = buf.get_mut(2..4) {
        field.copy_from_slice(&seq.to_be_bytes());
    }
}

/// Rewrites the timestamp in place (no-op on a buffer shorter than the fixed header).
pub fn set_timestamp(buf: &mut [u8], timestamp: u32) {
    if let Some(field) = buf.get_mut(4..8) {
        field.copy_from_slice(&timestamp.to_be_bytes());
    }
}

/// Rewrites the SSRC in place (no-op on a buffer shorter than the fixed header).
pub fn set_ssrc(buf: &mut [u8], ssrc: u32) {
    if let Some(field) = buf.get_mut(8..12) {
        field.copy_from_slice(&ssrc.to_be_bytes());
    }
}

/// Rewrites the payload type in place, keeping the marker bit.
pub fn set_payload_type(buf: &mut [u8], pt: u8) {
    if let Some(b1) = buf.get_mut(1) {
        *b1 = (*b1 & 0x80) | (pt & 0x7f);
    }
}

/// RFC 4588: writes into `out` an RTX packet for `original` (header, CSRCs and extensions
/// copied; SSRC, PT, sequence replaced; the 2-byte original sequence number prepended to the
/// payload; padding dropped).
pub fn write_rtx(
    original: &[u8],
    header: &Header,
    rtx_ssrc: u32,
    rtx_pt: u8,
    rtx_seq: u16,
    out: &mut [u8],
) -> Result<usize, Error> {
    let head = original
        .get(..header.payload_offset)
        .filter(|h| h.len() >= FIXED_HEADER_LEN)
        .ok_or(Error::BadLength)?;
    let payload = original
        .get(header.payload_offset..header.payload_end)
        .ok_or(Error::BadLength)?;
    let total = head.len() + 2 + payload.len();
    let out = out.get_mut(..total).ok_or(Error::BufferTooSmall)?;
    let (out_head, rest) = out.split_at_mut(head.len());
    out_head.copy_from_slice(head);
    let (osn, out_payload) = rest.split_at_mut(2);
    osn.copy_from_slice(&header.sequence.to_be_bytes());
    out_payload.copy_from_slice(payload);
    out[0] &= !0x20;
    set_payload_type(out, rtx_pt);
    set_sequence(out, rtx_seq);
    set_ssrc(out, rtx_ssrc);
    Ok(total)
}

/// Writes into `out` a padding-only RTP packet (RFC 3550 5.1: the P bit, `padding` bytes of
/// padding, the last one their count; at most 255) with one one-byte header extension
/// element `extension_id` of two zero bytes (a transport-wide sequence number to be written
/// later), as senders probe bandwidth on an RTX stream. Returns its length.
pub fn write_padding(
    out: &mut [u8],
    (ssrc, pt, sequence, timestamp): (u32, u8, u16, u32),
    extension_id: u8,
    padding: u8,
) -> Result<usize, Error> {
    if padding == 0 || !(1..=14).contains(&extension_id) {
        return Err(Error::BadLength);
    }
    let total = FIXED_HEADER_LEN + 8 + usize::from(padding);
    let out = out.get_mut(..total).ok_or(Error::BufferTooSmall)?;
    out[0] = 0x80 | 0x20 | 0x10;
    out[1] = pt & 0x7f;
    out[2..4].copy_from_slice(&sequence.to_be_bytes());
    out[4..8].copy_from_slice(&timestamp.to_be_bytes());
    out[8..12].copy_from_slice(&ssrc.to_be_bytes());
    // One-byte extension profile, one 32-bit word: the element (id, length 2 - 1) and its two
    // bytes, then a byte of in-extension padding.
    out[12..16].copy_from_slice(&[0xbe, 0xde, 0, 1]);
    out[16..20].copy_from_slice(&[(extension_id << 4) | 1, 0, 0, 0]);
    out[20..total].fill(0);
    out[total - 1] = padding;
    Ok(total)
}

/// RFC 4588, the other way: turns the RTX packet in `buf` (parsed as `header`) back into the
/// original packet in place — the original sequence number taken from the payload's first two
/// bytes, `ssrc` and `pt` restored, padding dropped. Returns the original's length and
/// sequence number.
pub fn unwrap_rtx(
    buf: &mut [u8],
    header: &Header,
    ssrc: u32,
    pt: u8,
) -> Result<(usize, u16), Error> {
    let start = header.payload_offset;
    if header.payload_end < start + 2 || buf.len() < header.payload_end {
        return Err(Error::BadLength);
    }
    let osn = u16::from_be_bytes([buf[start], buf[start + 1]]);
    buf.copy_within(start + 2..header.payload_end, start);
    let len = header.payload_end - 2;
    buf[0] &= !0x20;
    set_payload_type(buf, pt);
    set_sequence(buf, osn);
    set_ssrc(buf, ssrc);
    Ok((len, osn))
}

/// Reads a 16-bit big-endian extension value (transport-wide-cc sequence number).
pub fn read_u16_extension(buf: &[u8], range: Range<usize>) -> Option<u16> {
    if range.len() != 2 {
        return None;
    }
    be_u16(buf, range.start)
}

/// Writes a 16-bit big-endian extension value in place; false when the range is not 2 bytes
/// inside `buf`.
pub fn write_u16_extension(buf: &mut [u8], range: Range<usize>, value: u16) -> bool {
    if range.len() != 2 {
        return false;
    }
    match buf.get_mut(range) {
        Some(field) => {
            field.copy_from_slice(&value.to_be_bytes());
            true
        }
        None => false,
    }
}
