//! Zero-allocation RTP and RTCP views and writers for the bridge's packet path.
//!
//! Everything operates on plaintext packets (after SRTP decryption). Parsers borrow the input
//! and validate every length before reading, so no input from the network can make them panic;
//! writers fill caller-provided buffers and report the length written, so the steady-state
//! packet path never allocates.
//!
//! [`codec`] reads the VP8 and H.264 payloads as far as simulcast layer switching needs (frame
//! starts, key frames, temporal layers) and rewrites VP8's PictureID and TL0PICIDX in place.

pub mod codec;
pub mod rtcp;
pub mod rtp;

/// Why a packet could not be parsed or written.
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// The input ends before a field the header announces.
    #[error("packet too short")]
    TooShort,
    /// The version field is not 2.
    #[error("bad RTP/RTCP version")]
    BadVersion,
    /// A length, count or padding field is inconsistent with the packet.
    #[error("bad length field")]
    BadLength,
    /// The output buffer cannot hold what is being written.
    #[error("output buffer too small")]
    BufferTooSmall,
    /// The packet or the request is valid but not something this crate handles.
    #[error("unsupported packet or argument")]
    Unsupported,
}

/// Big-endian reads that return `None` instead of panicking when out of bounds.
pub(crate) fn be_u16(buf: &[u8], at: usize) -> Option<u16> {
    let bytes = buf.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes(bytes.try_into().ok()?))
}

pub(crate) fn be_u32(buf: &[u8], at: usize) -> Option<u32> {
    let bytes = buf.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes(bytes.try_into().ok()?))
}
