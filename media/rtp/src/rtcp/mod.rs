//! RTCP compound packet views (RFC 3550, RFC 4585, RFC 5104, REMB, transport-cc) and writers.

mod stats;
mod twcc;

pub use stats::ReceiveStats;
pub use twcc::{for_each_twcc_arrival, for_each_twcc_status, TwccRecorder};

use crate::{be_u16, be_u32, Error};

/// RTCP packet type: sender report.
pub const PT_SR: u8 = 200;
/// RTCP packet type: receiver report.
pub const PT_RR: u8 = 201;
/// RTCP packet type: source description.
pub const PT_SDES: u8 = 202;
/// RTCP packet type: goodbye.
pub const PT_BYE: u8 = 203;
/// RTCP packet type: application-defined.
pub const PT_APP: u8 = 204;
/// RTCP packet type: transport-layer feedback (RFC 4585).
pub const PT_RTPFB: u8 = 205;
/// RTCP packet type: payload-specific feedback (RFC 4585).
pub const PT_PSFB: u8 = 206;
/// RTCP packet type: extended report (RFC 3611).
pub const PT_XR: u8 = 207;

/// RTPFB FMT of a generic NACK.
pub const FMT_NACK: u8 = 1;
/// RTPFB FMT of transport-wide congestion control feedback.
pub const FMT_TWCC: u8 = 15;
/// PSFB FMT of a picture loss indication.
pub const FMT_PLI: u8 = 1;
/// PSFB FMT of a full intra request.
pub const FMT_FIR: u8 = 4;
/// PSFB FMT of application-layer feedback (REMB).
pub const FMT_AFB: u8 = 15;

const REPORT_BLOCK_LEN: usize = 24;
const SENDER_INFO_LEN: usize = 20;
const MAX_COUNT: usize = 31;

/// Iterates the packets of a compound RTCP packet; stops (yielding one Err) on a malformed one.
pub fn packets(buf: &[u8]) -> Packets<'_> {
    Packets { rest: buf }
}

/// Iterator over the packets of a compound RTCP packet.
#[derive(Clone, Debug)]
pub struct Packets<'a> {
    rest: &'a [u8],
}

impl<'a> Packets<'a> {
    /// Yields each packet together with its whole bytes (header included), for verbatim
    /// forwarding.
    pub fn with_raw(self) -> PacketsWithRaw<'a> {
        PacketsWithRaw { inner: self }
    }

    fn next_with_raw(&mut self) -> Option<Result<(Packet<'a>, &'a [u8]), Error>> {
        if self.rest.is_empty() {
            return None;
        }
        let result = split_packet(self.rest).and_then(|(raw, rest)| {
            let packet = parse_packet(raw)?;
            self.rest = rest;
            Ok((packet, raw))
        });
        if result.is_err() {
            self.rest = &[];
        }
        Some(result)
    }
}

impl<'a> Iterator for Packets<'a> {
    type Item = Result<Packet<'a>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_with_raw().map(|r| r.map(|(packet, _)| packet))
    }
}

/// Iterator over `(packet, whole packet bytes)` of a compound RTCP packet.
#[derive(Clone, Debug)]
pub struct PacketsWithRaw<'a> {
    inner: Packets<'a>,
}

impl<'a> Iterator for PacketsWithRaw<'a> {
    type Item = Result<(Packet<'a>, &'a [u8]), Error>;

    fn next(&mut self) -> Option<Self::Item> {
        self.inner.next_with_raw()
    }
}

/// One RTCP packet of a compound packet.
#[derive(Clone, Debug)]
pub enum Packet<'a> {
    SenderReport {
        ssrc: u32,
        info: SenderInfo,
        reports: ReportBlocks<'a>,
    },
    ReceiverReport {
        ssrc: u32,
        reports: ReportBlocks<'a>,
    },
    Pli {
        sender_ssrc: u32,
        media_ssrc: u32,
    },
    /// Entries iterate as `(ssrc, seq_nr)`.
    Fir {
        sender_ssrc: u32,
        entries: FirEntries<'a>,
    },
    /// `lost` iterates every lost sequence number (PID+BLP expanded).
    Nack {
        sender_ssrc: u32,
        media_ssrc: u32,
        lost: NackLost<'a>,
    },
    /// `raw` is the whole feedback packet, as [`for_each_twcc_status`] expects it.
    TransportCc {
        sender_ssrc: u32,
        media_ssrc: u32,
        base_sequence: u16,
        status_count: u16,
        raw: &'a [u8],
    },
    Remb {
        sender_ssrc: u32,
        bitrate_bps: u64,
        ssrcs: SsrcList<'a>,
    },
    Bye {
        ssrcs: SsrcList<'a>,
    },
    /// SDES, APP, XR and feedback types not modelled above; `raw` is the whole packet.
    Other {
        packet_type: u8,
        fmt: u8,
        raw: &'a [u8],
    },
}

/// Sender information of a sender report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SenderInfo {
    pub ntp_time: u64,
    pub rtp_time: u32,
    pub packet_count: u32,
    pub octet_count: u32,
}

/// One reception report block (RFC 3550 §6.4.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReportBlock {
    pub ssrc: u32,
    pub fraction_lost: u8,
    /// Signed 24-bit on the wire; clamped to that range when written.
    pub cumulative_lost: i32,
    pub extended_highest_sequence: u32,
    pub jitter: u32,
    pub last_sr: u32,
    pub delay_since_last_sr: u32,
}

/// Report blocks of an SR or RR, decoded lazily.
#[derive(Clone, Debug)]
pub struct ReportBlocks<'a> {
    bytes: &'a [u8],
}

impl Iterator for ReportBlocks<'_> {
    type Item = ReportBlock;

    fn next(&mut self) -> Option<ReportBlock> {
        let (block, rest) = self.bytes.split_first_chunk::<REPORT_BLOCK_LEN>()?;
        self.bytes = rest;
        let lost = u32::from_be_bytes([0, block[5], block[6], block[7]]);
        // Sign-extend the 24-bit two's-complement value.
        let cumulative_lost = ((lost << 8) as i32) >> 8;
        Some(ReportBlock {
            ssrc: be_u32(block, 0)?,
            fraction_lost: block[4],
            cumulative_lost,
            extended_highest_sequence: be_u32(block, 8)?,
            jitter: be_u32(block, 12)?,
            last_sr: be_u32(block, 16)?,
            delay_since_last_sr: be_u32(block, 20)?,
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.bytes.len() / REPORT_BLOCK_LEN;
        (n, Some(n))
    }
}

impl ExactSizeIterator for ReportBlocks<'_> {}

/// FIR entries, iterating as `(ssrc, seq_nr)`.
#[derive(Clone, Debug)]
pub struct FirEntries<'a> {
    bytes: &'a [u8],
}

impl Iterator for FirEntries<'_> {
    type Item = (u32, u8);

    fn next(&mut self) -> Option<(u32, u8)> {
        let (entry, rest) = self.bytes.split_first_chunk::<8>()?;
        self.bytes = rest;
        Some((be_u32(entry, 0)?, entry[4]))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.bytes.len() / 8;
        (n, Some(n))
    }
}

impl ExactSizeIterator for FirEntries<'_> {}

/// Every sequence number a generic NACK reports lost, in packet order.
#[derive(Clone, Debug)]
pub struct NackLost<'a> {
    pairs: &'a [u8],
    pid: u16,
    /// Bit 0 stands for the PID itself, bit i for PID + i (the BLP bits shifted left by one).
    pending: u32,
}

impl Iterator for NackLost<'_> {
    type Item = u16;

    fn next(&mut self) -> Option<u16> {
        if self.pending == 0 {
            let (pair, rest) = self.pairs.split_first_chunk::<4>()?;
            self.pairs = rest;
            self.pid = u16::from_be_bytes([pair[0], pair[1]]);
            self.pending = 1 | u32::from(u16::from_be_bytes([pair[2], pair[3]])) << 1;
        }
        let offset = self.pending.trailing_zeros() as u16;
        self.pending &= self.pending - 1;
        Some(self.pid.wrapping_add(offset))
    }
}

/// A list of SSRCs (BYE sources, REMB feedback SSRCs).
#[derive(Clone, Debug)]
pub struct SsrcList<'a> {
    bytes: &'a [u8],
}

impl Iterator for SsrcList<'_> {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        let (ssrc, rest) = self.bytes.split_first_chunk::<4>()?;
        self.bytes = rest;
        Some(u32::from_be_bytes(*ssrc))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.bytes.len() / 4;
        (n, Some(n))
    }
}

impl ExactSizeIterator for SsrcList<'_> {}

/// Splits the first packet off a compound packet, validating version and length.
fn split_packet(buf: &[u8]) -> Result<(&[u8], &[u8]), Error> {
    if buf.len() < 4 {
        return Err(Error::TooShort);
    }
    if buf[0] >> 6 != 2 {
        return Err(Error::BadVersion);
    }
    let words = usize::from(be_u16(buf, 2).ok_or(Error::TooShort)?);
    let len = 4 * (words + 1);
    if len > buf.len() {
        return Err(Error::TooShort);
    }
    Ok(buf.split_at(len))
}

/// Decodes one packet (already split to its exact length).
fn parse_packet(raw: &[u8]) -> Result<Packet<'_>, Error> {
    let count = raw[0] & 0x1f;
    let packet_type = raw[1];
    let mut body_end = raw.len();
    if raw[0] & 0x20 != 0 {
        let padding = usize::from(raw[raw.len() - 1]);
        if padding == 0 || padding > raw.len() - 4 {
            return Err(Error::BadLength);
        }
        body_end -= padding;
    }
    let body = &raw[4..body_end];
    let word = |at: usize| be_u32(body, at).ok_or(Error::TooShort);
    let other = Packet::Other {
        packet_type,
        fmt: count,
        raw,
    };
    let packet = match (packet_type, count) {
        (PT_SR, _) => {
            let blocks_len = REPORT_BLOCK_LEN * usize::from(count);
            let start = 4 + SENDER_INFO_LEN;
            let bytes = body.get(start..start + blocks_len).ok_or(Error::TooShort)?;
            Packet::SenderReport {
                ssrc: word(0)?,
                info: SenderInfo {
                    ntp_time: u64::from(word(4)?) << 32 | u64::from(word(8)?),
                    rtp_time: word(12)?,
                    packet_count: word(16)?,
                    octet_count: word(20)?,
                },
                reports: ReportBlocks { bytes },
            }
        }
        (PT_RR, _) => {
            let blocks_len = REPORT_BLOCK_LEN * usize::from(count);
            let bytes = body.get(4..4 + blocks_len).ok_or(Error::TooShort)?;
            Packet::ReceiverReport {
                ssrc: word(0)?,
                reports: ReportBlocks { bytes },
            }
        }
        (PT_BYE, _) => {
            let bytes = body.get(..4 * usize::from(count)).ok_or(Error::TooShort)?;
            Packet::Bye {
                ssrcs: SsrcList { bytes },
            }
        }
        (PT_RTPFB, FMT_NACK) => {
            let pairs = body.get(8..).ok_or(Error::TooShort)?;
            if pairs.is_empty() || pairs.len() % 4 != 0 {
                return Err(Error::BadLength);
            }
            Packet::Nack {
                sender_ssrc: word(0)?,
                media_ssrc: word(4)?,
                lost: NackLost {
                    pairs,
                    pid: 0,
                    pending: 0,
                },
            }
        }
        (PT_RTPFB, FMT_TWCC) => {
            if body.len() < 16 {
                return Err(Error::TooShort);
            }
            Packet::TransportCc {
                sender_ssrc: word(0)?,
                media_ssrc: word(4)?,
                base_sequence: be_u16(body, 8).ok_or(Error::TooShort)?,
                status_count: be_u16(body, 10).ok_or(Error::TooShort)?,
                raw,
            }
        }
        (PT_PSFB, FMT_PLI) => Packet::Pli {
            sender_ssrc: word(0)?,
            media_ssrc: word(4)?,
        },
        (PT_PSFB, FMT_FIR) => {
            let entries = body.get(8..).ok_or(Error::TooShort)?;
            if entries.len() % 8 != 0 {
                return Err(Error::BadLength);
            }
            Packet::Fir {
                sender_ssrc: word(0)?,
                entries: FirEntries { bytes: entries },
            }
        }
        (PT_PSFB, FMT_AFB) if body.get(8..12) == Some(b"REMB") => {
            let fields = word(12)?;
            let num = (fields >> 24) as usize;
            let exp = (fields >> 18) & 0x3f;
            let mantissa = u64::from(fields & 0x3ffff);
            let bitrate_bps = if mantissa == 0 {
                0
            } else if mantissa.leading_zeros() < exp {
                u64::MAX
            } else {
                mantissa << exp
            };
            let bytes = body.get(16..16 + 4 * num).ok_or(Error::TooShort)?;
            Packet::Remb {
                sender_ssrc: word(0)?,
                bitrate_bps,
                ssrcs: SsrcList { bytes },
            }
        }
        _ => other,
    };
    Ok(packet)
}

/// Writes a 4-byte RTCP common header (no padding) for a packet of `len` bytes (a non-zero
/// multiple of 4, as every caller computes it).
fn write_header(out: &mut [u8], count: u8, packet_type: u8, len: usize) -> Result<(), Error> {
    let words = u16::try_from(len / 4 - 1).map_err(|_| Error::Unsupported)?;
    let header = out.get_mut(..4).ok_or(Error::BufferTooSmall)?;
    header[0] = 0x80 | (count & 0x1f);
    header[1] = packet_type;
    header[2..4].copy_from_slice(&words.to_be_bytes());
    Ok(())
}

/// Sequential big-endian writer over a buffer already checked to be large enough.
struct Cursor<'a> {
    out: &'a mut [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    /// Takes the first `len` bytes of `out`, failing when it is too small.
    fn new(out: &'a mut [u8], len: usize) -> Result<Self, Error> {
        let out = out.get_mut(..len).ok_or(Error::BufferTooSmall)?;
        Ok(Cursor { out, pos: 0 })
    }

    fn put(&mut self, bytes: &[u8]) -> Result<(), Error> {
        let end = self.pos + bytes.len();
        self.out
            .get_mut(self.pos..end)
            .ok_or(Error::BufferTooSmall)?
            .copy_from_slice(bytes);
        self.pos = end;
        Ok(())
    }

    fn u32(&mut self, v: u32) -> Result<(), Error> {
        self.put(&v.to_be_bytes())
    }
}

fn put_report_blocks(cursor: &mut Cursor<'_>, blocks: &[ReportBlock]) -> Result<(), Error> {
    for block in blocks {
        cursor.u32(block.ssrc)?;
        let lost = block.cumulative_lost.clamp(-0x80_0000, 0x7f_ffff) as u32 & 0xff_ffff;
        cursor.u32(u32::from(block.fraction_lost) << 24 | lost)?;
        cursor.u32(block.extended_highest_sequence)?;
        cursor.u32(block.jitter)?;
        cursor.u32(block.last_sr)?;
        cursor.u32(block.delay_since_last_sr)?;
    }
    Ok(())
}

/// Writes a sender report (at most 31 report blocks).
pub fn write_sender_report(
    out: &mut [u8],
    ssrc: u32,
    info: &SenderInfo,
    blocks: &[ReportBlock],
) -> Result<usize, Error> {
    if blocks.len() > MAX_COUNT {
        return Err(Error::Unsupported);
    }
    let len = 8 + SENDER_INFO_LEN + REPORT_BLOCK_LEN * blocks.len();
    let mut c = Cursor::new(out, len)?;
    write_header(c.out, blocks.len() as u8, PT_SR, len)?;
    c.pos = 4;
    c.u32(ssrc)?;
    c.put(&info.ntp_time.to_be_bytes())?;
    c.u32(info.rtp_time)?;
    c.u32(info.packet_count)?;
    c.u32(info.octet_count)?;
    put_report_blocks(&mut c, blocks)?;
    Ok(len)
}

/// Writes a receiver report (at most 31 report blocks).
pub fn write_receiver_report(
    out: &mut [u8],
    ssrc: u32,
    blocks: &[ReportBlock],
) -> Result<usize, Error> {
    if blocks.len() > MAX_COUNT {
        return Err(Error::Unsupported);
    }
    let len = 8 + REPORT_BLOCK_LEN * blocks.len();
    let mut c = Cursor::new(out, len)?;
    write_header(c.out, blocks.len() as u8, PT_RR, len)?;
    c.pos = 4;
    c.u32(ssrc)?;
    put_report_blocks(&mut c, blocks)?;
    Ok(len)
}

/// Writes a picture loss indication (RFC 4585 §6.3.1).
pub fn write_pli(out: &mut [u8], sender_ssrc: u32, media_ssrc: u32) -> Result<usize, Error> {
    let mut c = Cursor::new(out, 12)?;
    write_header(c.out, FMT_PLI, PT_PSFB, 12)?;
    c.pos = 4;
    c.u32(sender_ssrc)?;
    c.u32(media_ssrc)?;
    Ok(12)
}

/// Writes a full intra request with one entry (RFC 5104 §4.3.1; the header's media SSRC is 0).
pub fn write_fir(
    out: &mut [u8],
    sender_ssrc: u32,
    media_ssrc: u32,
    seq_nr: u8,
) -> Result<usize, Error> {
    let mut c = Cursor::new(out, 20)?;
    write_header(c.out, FMT_FIR, PT_PSFB, 20)?;
    c.pos = 4;
    c.u32(sender_ssrc)?;
    c.u32(0)?;
    c.u32(media_ssrc)?;
    c.put(&[seq_nr, 0, 0, 0])?;
    Ok(20)
}

/// Packs the sorted/unsorted lost sequence numbers into PID+BLP pairs.
///
/// Order is taken relative to `lost[0]` (a window of ±32768 around it), so lists spanning the
/// 65535→0 wrap pack correctly; duplicates are merged. Runs in O(n × pairs) without allocating.
pub fn write_nack(
    out: &mut [u8],
    sender_ssrc: u32,
    media_ssrc: u32,
    lost: &[u16],
) -> Result<usize, Error> {
    let Some(&pivot) = lost.first() else {
        return Err(Error::Unsupported);
    };
    let key = |seq: u16| u32::from(seq.wrapping_sub(pivot).wrapping_add(0x8000));
    let mut pos = 12;
    // Smallest key not yet covered by an emitted pair.
    let mut floor = 0u32;
    while let Some(pid_key) = lost.iter().map(|&s| key(s)).filter(|&k| k >= floor).min() {
        let mut blp = 0u16;
        for &seq in lost {
            let k = key(seq);
            if k > pid_key && k <= pid_key + 16 {
                blp |= 1 << (k - pid_key - 1);
            }
        }
        let pid = (pid_key as u16).wrapping_sub(0x8000).wrapping_add(pivot);
        let pair = out.get_mut(pos..pos + 4).ok_or(Error::BufferTooSmall)?;
        pair[..2].copy_from_slice(&pid.to_be_bytes());
        pair[2..].copy_from_slice(&blp.to_be_bytes());
        pos += 4;
        floor = pid_key + 17;
    }
    write_header(out, FMT_NACK, PT_RTPFB, pos)?;
    let mut c = Cursor::new(out, pos)?;
    c.pos = 4;
    c.u32(sender_ssrc)?;
    c.u32(media_ssrc)?;
    Ok(pos)
}

/// Writes a REMB (draft-alvestrand-rmcat-remb-03); the bitrate is rounded down to what the
/// 18-bit mantissa / 6-bit exponent can carry, so the sender never gets a higher estimate.
pub fn write_remb(
    out: &mut [u8],
    sender_ssrc: u32,
    bitrate_bps: u64,
    ssrcs: &[u32],
) -> Result<usize, Error> {
    let num = u8::try_from(ssrcs.len()).map_err(|_| Error::Unsupported)?;
    let exp = (64 - bitrate_bps.leading_zeros()).saturating_sub(18);
    let mantissa = (bitrate_bps >> exp) as u32;
    let len = 20 + 4 * ssrcs.len();
    let mut c = Cursor::new(out, len)?;
    write_header(c.out, FMT_AFB, PT_PSFB, len)?;
    c.pos = 4;
    c.u32(sender_ssrc)?;
    c.u32(0)?;
    c.put(b"REMB")?;
    c.u32(u32::from(num) << 24 | exp << 18 | mantissa)?;
    for &ssrc in ssrcs {
        c.u32(ssrc)?;
    }
    Ok(len)
}

/// Writes a BYE for `ssrcs` (at most 31, no reason).
pub fn write_bye(out: &mut [u8], ssrcs: &[u32]) -> Result<usize, Error> {
    if ssrcs.len() > MAX_COUNT {
        return Err(Error::Unsupported);
    }
    let len = 4 + 4 * ssrcs.len();
    let mut c = Cursor::new(out, len)?;
    write_header(c.out, ssrcs.len() as u8, PT_BYE, len)?;
    c.pos = 4;
    for &ssrc in ssrcs {
        c.u32(ssrc)?;
    }
    Ok(len)
}
