//! H.264 RTP payloads (RFC 6184, packetization modes 0 and 1: single NAL unit packets, STAP-A
//! and FU-A): which packets carry key-frame NAL units (IDR slices, SPS, PPS) and which begin an
//! access unit (a frame), so the bridge can switch a receiver between simulcast layers at a key
//! frame. Nothing allocates.
//!
//! ```text
//! NAL unit header / STAP-A and FU indicator    FU header (FU-A, second octet)
//! +-+-+-+-+-+-+-+-+                            +-+-+-+-+-+-+-+-+
//! |F|NRI|  Type   |                            |S|E|R|  Type   |
//! +-+-+-+-+-+-+-+-+                            +-+-+-+-+-+-+-+-+
//! STAP-A (type 24): header, then (16-bit size, NAL unit) repeated
//! FU-A (type 28): indicator, FU header (S = first fragment, E = last, Type = fragmented NAL)
//! ```
//!
//! Key-frame data: an IDR slice (5) needs the sequence and picture parameter sets (7, 8) of its
//! layer, which senders put right before it (libwebrtc sends SPS and PPS with every IDR,
//! usually in one STAP-A with it or before its FU-A fragments). A receiver switched from
//! another layer (another resolution, so another SPS) decodes the new one only if it gets that
//! layer's SPS and PPS; the first packet of a key frame is the one carrying the SPS
//! ([`Info::sps`]).
//!
//! Frame starts (H.264 §7.4.1.2.3): an access unit begins with an access unit delimiter, SEI,
//! SPS, PPS, NAL unit types 14 to 18, or the first slice of the primary picture —
//! a slice whose `first_mb_in_slice` is 0 (the first bit after the NAL unit header is 1 in
//! Exp-Golomb). This assumes slices in order (no arbitrary slice order, which Constrained
//! Baseline, the profile WebRTC negotiates, forbids).
//!
//! Unsupported: the interleaved-mode packets (STAP-B 25, MTAP 26/27, FU-B 29) and the
//! undefined types 0, 30 and 31 give [`Error::Unsupported`].

use crate::Error;

/// Coded slice of a non-IDR picture.
pub const NAL_SLICE: u8 = 1;
/// Coded slice data partition A (carries the slice header).
pub const NAL_SLICE_PARTITION_A: u8 = 2;
/// Coded slice of an IDR picture: a key frame.
pub const NAL_IDR: u8 = 5;
/// Supplemental enhancement information.
pub const NAL_SEI: u8 = 6;
/// Sequence parameter set.
pub const NAL_SPS: u8 = 7;
/// Picture parameter set.
pub const NAL_PPS: u8 = 8;
/// Access unit delimiter.
pub const NAL_AUD: u8 = 9;
/// Single-time aggregation packet (RFC 6184 §5.7.1).
pub const STAP_A: u8 = 24;
/// Fragmentation unit without decoding order number (RFC 6184 §5.8).
pub const FU_A: u8 = 28;

/// How the payload carries NAL units.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Packetization {
    /// One whole NAL unit (types 1..=23).
    Single,
    /// Several whole NAL units (type 24).
    StapA,
    /// A fragment of one NAL unit (type 28).
    FuA,
}

/// What an H.264 payload holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Info {
    pub packetization: Packetization,
    /// Type of the NAL unit the payload begins with: the single NAL unit's, the first
    /// aggregated unit's (STAP-A), or the fragmented unit's (FU-A, every fragment).
    pub nal_type: u8,
    /// The payload begins a NAL unit: always for single and STAP-A, the S bit for FU-A.
    pub starts_nal: bool,
    /// The payload ends a NAL unit: always for single and STAP-A, the E bit for FU-A.
    pub ends_nal: bool,
    /// The payload begins a NAL unit that begins an access unit (see the module docs): AUD,
    /// SEI, SPS, PPS, types 14..=18, or a slice with `first_mb_in_slice` 0. For STAP-A the
    /// first aggregated unit decides; FU-A fragments other than the first never begin one.
    pub starts_frame: bool,
    /// An IDR slice begins in the payload (single, any STAP-A unit, first FU-A fragment).
    pub idr: bool,
    /// An SPS begins in the payload.
    pub sps: bool,
    /// A PPS begins in the payload.
    pub pps: bool,
}

impl Info {
    /// Key-frame data begins in this payload: an IDR slice, an SPS or a PPS.
    pub fn keyframe(&self) -> bool {
        self.idr || self.sps || self.pps
    }

    fn saw(&mut self, nal_type: u8) {
        match nal_type {
            NAL_IDR => self.idr = true,
            NAL_SPS => self.sps = true,
            NAL_PPS => self.pps = true,
            _ => {}
        }
    }
}

/// Whether a NAL unit of `nal_type`, whose first payload octet (after the NAL unit header) is
/// `next`, begins an access unit. Slices need that octet: `Err(TooShort)` without it.
fn begins_access_unit(nal_type: u8, next: Option<&u8>) -> Result<bool, Error> {
    match nal_type {
        NAL_SEI | NAL_SPS | NAL_PPS | NAL_AUD | 14..=18 => Ok(true),
        NAL_SLICE | NAL_SLICE_PARTITION_A | NAL_IDR => {
            next.map(|b| b & 0x80 != 0).ok_or(Error::TooShort)
        }
        _ => Ok(false),
    }
}

/// A NAL unit type that may be carried whole or fragmented (not an aggregation or
/// fragmentation packet type, not undefined).
fn is_nal_unit_type(nal_type: u8) -> bool {
    matches!(nal_type, 1..=23)
}

/// Classifies an RTP payload (without padding). Errors: `TooShort` when the payload ends
/// inside a header, a STAP-A unit or before a slice's first octet; `BadLength` for an empty
/// STAP-A unit; `Unsupported` for packet types outside modes 0 and 1 and for aggregated or
/// fragmented units whose type is not a NAL unit type.
pub fn parse(payload: &[u8]) -> Result<Info, Error> {
    let b0 = *payload.first().ok_or(Error::TooShort)?;
    let mut info = Info {
        packetization: Packetization::Single,
        nal_type: b0 & 0x1f,
        starts_nal: true,
        ends_nal: true,
        starts_frame: false,
        idr: false,
        sps: false,
        pps: false,
    };
    match b0 & 0x1f {
        t @ 1..=23 => {
            info.starts_frame = begins_access_unit(t, payload.get(1))?;
            info.saw(t);
        }
        STAP_A => {
            info.packetization = Packetization::StapA;
            let mut rest = &payload[1..];
            if rest.is_empty() {
                return Err(Error::TooShort);
            }
            let mut first = true;
            while !rest.is_empty() {
                let [hi, lo, tail @ ..] = rest else {
                    return Err(Error::TooShort);
                };
                let size = usize::from(u16::from_be_bytes([*hi, *lo]));
                let nal = tail.get(..size).ok_or(Error::TooShort)?;
                let t = nal.first().ok_or(Error::BadLength)? & 0x1f;
                if !is_nal_unit_type(t) {
                    return Err(Error::Unsupported);
                }
                if first {
                    info.nal_type = t;
                    info.starts_frame = begins_access_unit(t, nal.get(1))?;
                    first = false;
                }
                info.saw(t);
                rest = &tail[size..];
            }
        }
        FU_A => {
            info.packetization = Packetization::FuA;
            let [_, fu, fragment @ ..] = payload else {
                return Err(Error::TooShort);
            };
            let t = fu & 0x1f;
            if !is_nal_unit_type(t) {
                return Err(Error::Unsupported);
            }
            info.nal_type = t;
            info.starts_nal = fu & 0x80 != 0;
            info.ends_nal = fu & 0x40 != 0;
            if info.starts_nal {
                info.starts_frame = begins_access_unit(t, fragment.first())?;
                info.saw(t);
            }
        }
        _ => return Err(Error::Unsupported),
    }
    Ok(info)
}

/// The sequence parameter set NAL unit (header included) carried in a payload: a single SPS
/// NAL unit, or the first SPS in a STAP-A. `None` when there is none or the payload is cut.
pub fn sps_in(payload: &[u8]) -> Option<&[u8]> {
    let b0 = *payload.first()?;
    match b0 & 0x1f {
        NAL_SPS => Some(payload),
        STAP_A => {
            let mut rest = payload.get(1..)?;
            while let [hi, lo, tail @ ..] = rest {
                let size = usize::from(u16::from_be_bytes([*hi, *lo]));
                let nal = tail.get(..size)?;
                if nal.first().is_some_and(|h| h & 0x1f == NAL_SPS) {
                    return Some(nal);
                }
                rest = &tail[size..];
            }
            None
        }
        _ => None,
    }
}

/// Reads the bits of a NAL unit's payload, skipping emulation-prevention bytes (the 3 of
/// 00 00 03); no copy.
struct Bits<'a> {
    data: &'a [u8],
    byte: usize,
    bit: u8,
    zeros: u8,
}

impl<'a> Bits<'a> {
    fn new(data: &'a [u8]) -> Bits<'a> {
        Bits {
            data,
            byte: 0,
            bit: 0,
            zeros: 0,
        }
    }

    fn bit(&mut self) -> Option<u32> {
        if self.bit == 0 {
            let b = *self.data.get(self.byte)?;
            if self.zeros >= 2 && b == 3 {
                self.byte += 1;
                self.zeros = 0;
                return self.bit();
            }
            self.zeros = if b == 0 { self.zeros + 1 } else { 0 };
        }
        let b = *self.data.get(self.byte)?;
        let value = u32::from(b >> (7 - self.bit)) & 1;
        self.bit += 1;
        if self.bit == 8 {
            self.bit = 0;
            self.byte += 1;
        }
        Some(value)
    }

    fn bits(&mut self, n: u32) -> Option<u32> {
        (0..n).try_fold(0, |acc, _| Some((acc << 1) | self.bit()?))
    }

    /// Exp-Golomb ue(v), at most 32 bits of value.
    fn ue(&mut self) -> Option<u32> {
        let mut zeros = 0;
        while self.bit()? == 0 {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        Some((1u32 << zeros) - 1 + self.bits(zeros)?)
    }

    fn se(&mut self) -> Option<i64> {
        let k = i64::from(self.ue()?);
        Some(if k % 2 == 1 { (k + 1) / 2 } else { -k / 2 })
    }
}

/// Width and height in pixels (cropping applied) of an SPS NAL unit (header included, as
/// [`sps_in`] gives it; H.264 §7.3.2.1.1); `None` when it is cut short or out of range.
pub fn sps_size(sps: &[u8]) -> Option<(u16, u16)> {
    let mut r = Bits::new(sps.get(1..)?);
    let profile_idc = r.bits(8)?;
    r.bits(16)?; // constraint flags, level_idc
    r.ue()?; // seq_parameter_set_id
    let mut chroma_format_idc = 1;
    if matches!(
        profile_idc,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    ) {
        chroma_format_idc = r.ue()?;
        if chroma_format_idc == 3 {
            r.bit()?; // separate_colour_plane_flag
        }
        r.ue()?; // bit_depth_luma_minus8
        r.ue()?; // bit_depth_chroma_minus8
        r.bit()?; // qpprime_y_zero_transform_bypass_flag
        if r.bit()? == 1 {
            let lists = if chroma_format_idc == 3 { 12 } else { 8 };
            for i in 0..lists {
                if r.bit()? == 1 {
                    let size = if i < 6 { 16 } else { 64 };
                    let (mut last, mut next) = (8i64, 8i64);
                    for _ in 0..size {
                        if next != 0 {
                            next = (last + r.se()? + 256) % 256;
                        }
                        if next != 0 {
                            last = next;
                        }
                    }
                }
            }
        }
    }
    r.ue()?; // log2_max_frame_num_minus4
    match r.ue()? {
        0 => {
            r.ue()?; // log2_max_pic_order_cnt_lsb_minus4
        }
        1 => {
            r.bit()?; // delta_pic_order_always_zero_flag
            r.se()?; // offset_for_non_ref_pic
            r.se()?; // offset_for_top_to_bottom_field
            let cycle = r.ue()?;
            if cycle > 255 {
                return None;
            }
            for _ in 0..cycle {
                r.se()?;
            }
        }
        _ => {}
    }
    r.ue()?; // max_num_ref_frames
    r.bit()?; // gaps_in_frame_num_value_allowed_flag
    let width_mbs = u64::from(r.ue()?) + 1;
    let height_units = u64::from(r.ue()?) + 1;
    let frame_mbs_only = u64::from(r.bit()?);
    if frame_mbs_only == 0 {
        r.bit()?; // mb_adaptive_frame_field_flag
    }
    r.bit()?; // direct_8x8_inference_flag
    let (mut left, mut right, mut top, mut bottom) = (0, 0, 0, 0);
    if r.bit()? == 1 {
        left = u64::from(r.ue()?);
        right = u64::from(r.ue()?);
        top = u64::from(r.ue()?);
        bottom = u64::from(r.ue()?);
    }
    let (sub_width, sub_height) = match chroma_format_idc {
        0 | 3 => (1, 1),
        1 => (2, 2),
        _ => (2, 1),
    };
    let crop_x = sub_width;
    let crop_y = sub_height * (2 - frame_mbs_only);
    let width = (width_mbs * 16).checked_sub((left + right) * crop_x)?;
    let height = ((2 - frame_mbs_only) * height_units * 16).checked_sub((top + bottom) * crop_y)?;
    Some((u16::try_from(width).ok()?, u16::try_from(height).ok()?))
}
