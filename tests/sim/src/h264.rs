//! Synthetic H.264 frames in RFC 6184 packetization mode 1, shaped like libwebrtc's: a key
//! frame is a STAP-A with the layer's SPS and PPS followed by the IDR slice, a delta frame one
//! non-IDR slice; a slice goes in a single NAL unit packet when it fits, as FU-A fragments
//! otherwise. Nobody decodes the slices: only their headers are meaningful (NAL unit type, and a
//! first payload octet whose top bit is set, i.e. `first_mb_in_slice` = 0, so a parser sees the
//! start of an access unit). The SPS is a real Baseline one (profile-level-id 42e01f) encoding
//! the layer's size.
//!
//! Every payload returned is ready for the integrity trailer of `tutti_participant::media`,
//! which the caller appends: single NAL units and FU-A fragments simply end with it, the STAP-A
//! ends with the header of a filler data NAL unit (type 12) whose size covers the trailer, so
//! the aggregation stays well-formed.

use tutti_participant::media::TRAILER_LEN;

/// NAL unit types written here.
const NAL_SLICE: u8 = 1;
const NAL_IDR: u8 = 5;
const NAL_SPS: u8 = 7;
const NAL_PPS: u8 = 8;
const NAL_FILLER: u8 = 12;
const STAP_A: u8 = 24;
const FU_A: u8 = 28;
/// NRI 3 (highest) for key-frame NAL units, 2 for delta slices, as libwebrtc's encoders.
const NRI_KEY: u8 = 0x60;
const NRI_DELTA: u8 = 0x40;
/// Constrained Baseline, level 3.1: profile_idc 66, constraint_set0..2 flags, level_idc 31.
const PROFILE_LEVEL: [u8; 3] = [0x42, 0xe0, 0x1f];

/// Writes an RBSP bit by bit, with Exp-Golomb codes.
#[derive(Default)]
struct BitWriter {
    bytes: Vec<u8>,
    current: u8,
    used: u8,
}

impl BitWriter {
    fn bit(&mut self, set: bool) {
        self.current = (self.current << 1) | u8::from(set);
        self.used += 1;
        if self.used == 8 {
            self.bytes.push(self.current);
            self.current = 0;
            self.used = 0;
        }
    }

    fn bits(&mut self, value: u32, count: u32) {
        for i in (0..count).rev() {
            self.bit((value >> i) & 1 != 0);
        }
    }

    /// ue(v): unsigned Exp-Golomb.
    fn ue(&mut self, value: u32) {
        let coded = value + 1;
        let len = 32 - coded.leading_zeros();
        self.bits(0, len - 1);
        self.bits(coded, len);
    }

    /// The stop bit and zero alignment (rbsp_trailing_bits).
    fn finish(mut self) -> Vec<u8> {
        self.bit(true);
        while self.used != 0 {
            self.bit(false);
        }
        self.bytes
    }
}

/// A NAL unit of `header` and `rbsp`, with emulation prevention bytes inserted.
fn nal_unit(header: u8, rbsp: &[u8]) -> Vec<u8> {
    let mut nal = vec![header];
    let mut zeros = 0;
    for &b in rbsp {
        if zeros >= 2 && b <= 3 {
            nal.push(3);
            zeros = 0;
        }
        nal.push(b);
        zeros = if b == 0 { zeros + 1 } else { 0 };
    }
    nal
}

/// A Baseline SPS (id 0, POC type 2, one reference frame, no VUI) for a `width` x `height`
/// picture: the size in macroblocks rounded up, the excess cropped (in units of 2 pixels, so
/// odd sizes come out one larger).
pub(crate) fn sps(width: u16, height: u16) -> Vec<u8> {
    let mbs = |pixels: u16| u32::from(pixels.max(1)).div_ceil(16);
    let (w_mbs, h_mbs) = (mbs(width), mbs(height));
    let crop_right = (w_mbs * 16 - u32::from(width)) / 2;
    let crop_bottom = (h_mbs * 16 - u32::from(height)) / 2;
    let mut w = BitWriter {
        bytes: PROFILE_LEVEL.to_vec(),
        ..BitWriter::default()
    };
    w.ue(0); // seq_parameter_set_id
    w.ue(0); // log2_max_frame_num_minus4
    w.ue(2); // pic_order_cnt_type
    w.ue(1); // max_num_ref_frames
    w.bit(false); // gaps_in_frame_num_value_allowed_flag
    w.ue(w_mbs - 1); // pic_width_in_mbs_minus1
    w.ue(h_mbs - 1); // pic_height_in_map_units_minus1
    w.bit(true); // frame_mbs_only_flag
    w.bit(true); // direct_8x8_inference_flag
    let crop = crop_right != 0 || crop_bottom != 0;
    w.bit(crop); // frame_cropping_flag
    if crop {
        w.ue(0);
        w.ue(crop_right);
        w.ue(0);
        w.ue(crop_bottom);
    }
    w.bit(false); // vui_parameters_present_flag
    nal_unit(NRI_KEY | NAL_SPS, &w.finish())
}

/// The PPS that goes with [`sps`]: id 0, CAVLC, one slice group, deblocking control present.
fn pps() -> Vec<u8> {
    let mut w = BitWriter::default();
    w.ue(0); // pic_parameter_set_id
    w.ue(0); // seq_parameter_set_id
    w.bit(false); // entropy_coding_mode_flag
    w.bit(false); // bottom_field_pic_order_in_frame_present_flag
    w.ue(0); // num_slice_groups_minus1
    w.ue(0); // num_ref_idx_l0_default_active_minus1
    w.ue(0); // num_ref_idx_l1_default_active_minus1
    w.bit(false); // weighted_pred_flag
    w.bits(0, 2); // weighted_bipred_idc
    w.ue(0); // pic_init_qp_minus26 (se(0) codes as ue(0))
    w.ue(0); // pic_init_qs_minus26
    w.ue(0); // chroma_qp_index_offset
    w.bit(true); // deblocking_filter_control_present_flag
    w.bit(false); // constrained_intra_pred_flag
    w.bit(false); // redundant_pic_cnt_present_flag
    nal_unit(NRI_KEY | NAL_PPS, &w.finish())
}

/// The RTP payloads (each still to be followed by a trailer) of one frame whose slice NAL unit
/// is `slice_len` bytes, none longer than `max_payload` with its trailer. Key frames start with
/// the STAP-A of the SPS for `width` x `height` and the PPS. `fill` varies the slice bytes.
pub(crate) fn frame_payloads(
    keyframe: bool,
    slice_len: usize,
    (width, height): (u16, u16),
    fill: u8,
    max_payload: usize,
) -> Vec<Vec<u8>> {
    let room = max_payload - TRAILER_LEN;
    let mut payloads = Vec::new();
    if keyframe {
        let mut stap = vec![NRI_KEY | STAP_A];
        for nal in [sps(width, height), pps()] {
            stap.extend_from_slice(&(nal.len() as u16).to_be_bytes());
            stap.extend_from_slice(&nal);
        }
        stap.extend_from_slice(&(1 + TRAILER_LEN as u16).to_be_bytes());
        stap.push(NAL_FILLER);
        payloads.push(stap);
    }
    let header = if keyframe {
        NRI_KEY | NAL_IDR
    } else {
        NRI_DELTA | NAL_SLICE
    };
    // first_mb_in_slice ue(0) = '1', then slice_type ue(7) (I) or ue(5) (P).
    let first = if keyframe { 0x88 } else { 0x9a };
    let mut slice = vec![header, first];
    slice.extend((2..slice_len.max(2)).map(|i| (i as u8).wrapping_mul(13) ^ fill));
    if slice.len() <= room {
        payloads.push(slice);
        return payloads;
    }
    let body = &slice[1..];
    let count = body.len().div_ceil(room - 2);
    let chunk = body.len().div_ceil(count);
    let parts = body.chunks(chunk).count();
    for (i, part) in body.chunks(chunk).enumerate() {
        let mut fu = vec![(header & 0xe0) | FU_A, header & 0x1f];
        if i == 0 {
            fu[1] |= 0x80;
        }
        if i + 1 == parts {
            fu[1] |= 0x40;
        }
        fu.extend_from_slice(part);
        payloads.push(fu);
    }
    payloads
}

#[cfg(test)]
mod tests {
    use super::*;
    use tutti_participant::media::{append_trailer, Trailer};
    use tutti_rtp::codec::h264::{self, Packetization};
    use tutti_rtp::codec::{frame_info, Codec};

    /// Reads an RBSP (emulation prevention bytes removed) bit by bit.
    struct BitReader {
        bytes: Vec<u8>,
        pos: usize,
    }

    impl BitReader {
        fn new(nal: &[u8]) -> BitReader {
            let mut bytes = Vec::new();
            let mut zeros = 0;
            for &b in &nal[1..] {
                if zeros >= 2 && b == 3 {
                    zeros = 0;
                    continue;
                }
                bytes.push(b);
                zeros = if b == 0 { zeros + 1 } else { 0 };
            }
            BitReader { bytes, pos: 0 }
        }

        fn bit(&mut self) -> u32 {
            let b = (self.bytes[self.pos / 8] >> (7 - self.pos % 8)) & 1;
            self.pos += 1;
            u32::from(b)
        }

        fn bits(&mut self, n: u32) -> u32 {
            (0..n).fold(0, |v, _| (v << 1) | self.bit())
        }

        fn ue(&mut self) -> u32 {
            let mut zeros = 0;
            while self.bit() == 0 {
                zeros += 1;
            }
            (1 << zeros) - 1 + self.bits(zeros)
        }
    }

    /// The picture size an H.264 decoder derives from a Baseline SPS (no VUI parsed).
    fn decoded_size(sps: &[u8]) -> (u32, u32) {
        let mut r = BitReader::new(sps);
        assert_eq!(r.bits(24), 0x42e01f, "profile-level-id");
        assert_eq!(r.ue(), 0, "sps id");
        r.ue(); // log2_max_frame_num_minus4
        assert_eq!(r.ue(), 2, "POC type");
        r.ue(); // max_num_ref_frames
        r.bit(); // gaps
        let w_mbs = r.ue() + 1;
        let h_mbs = r.ue() + 1;
        assert_eq!(r.bit(), 1, "frame_mbs_only");
        r.bit(); // direct_8x8_inference
        let (mut w, mut h) = (w_mbs * 16, h_mbs * 16);
        if r.bit() == 1 {
            let (left, right, top, bottom) = (r.ue(), r.ue(), r.ue(), r.ue());
            w -= 2 * (left + right);
            h -= 2 * (top + bottom);
        }
        assert_eq!(r.bit(), 0, "no VUI");
        assert_eq!(r.bit(), 1, "stop bit");
        (w, h)
    }

    #[test]
    fn sps_encodes_the_layer_size() {
        for (w, h) in [
            (1280, 720),
            (640, 360),
            (320, 180),
            (1920, 1080),
            (176, 144),
        ] {
            let nal = sps(w, h);
            assert_eq!(nal[0], 0x67);
            assert_eq!(decoded_size(&nal), (u32::from(w), u32::from(h)));
        }
    }

    #[test]
    fn emulation_prevention_escapes_start_code_prefixes() {
        assert_eq!(
            nal_unit(0x67, &[0, 0, 1, 0, 0, 0, 5]),
            [0x67, 0, 0, 3, 1, 0, 0, 3, 0, 5]
        );
    }

    fn with_trailer(mut payload: Vec<u8>) -> Vec<u8> {
        append_trailer(
            &mut payload,
            Trailer {
                ssrc: 1,
                seq: 2,
                sent_at_us: 3,
            },
        );
        payload
    }

    #[test]
    fn key_frame_is_stap_a_then_idr_fragments() {
        let payloads: Vec<Vec<u8>> = frame_payloads(true, 3000, (1280, 720), 9, 1100)
            .into_iter()
            .map(with_trailer)
            .collect();
        assert!(payloads.len() >= 4, "{}", payloads.len());
        assert!(payloads.iter().all(|p| p.len() <= 1100));
        let stap = h264::parse(&payloads[0]).unwrap();
        assert_eq!(stap.packetization, Packetization::StapA);
        assert!(stap.sps && stap.pps && !stap.idr && stap.starts_frame);
        // The SPS inside the STAP-A is the layer's.
        let sps_len = usize::from(u16::from_be_bytes([payloads[0][1], payloads[0][2]]));
        assert_eq!(decoded_size(&payloads[0][3..3 + sps_len]), (1280, 720));
        let fus: Vec<h264::Info> = payloads[1..]
            .iter()
            .map(|p| h264::parse(p).unwrap())
            .collect();
        for (i, fu) in fus.iter().enumerate() {
            assert_eq!(fu.packetization, Packetization::FuA);
            assert_eq!(fu.nal_type, 5);
            assert_eq!(fu.starts_nal, i == 0);
            assert_eq!(fu.ends_nal, i + 1 == fus.len());
        }
        let idr = frame_info(Codec::H264, &payloads[1]).unwrap();
        assert!(idr.starts_keyframe_picture());
        assert!(!frame_info(Codec::H264, &payloads[2]).unwrap().starts_frame);
        // Reassembled, the fragments are the slice of the requested size (+ the trailers).
        let slice_len = 1 + payloads[1..].iter().map(|p| p.len() - 2).sum::<usize>();
        assert_eq!(slice_len, 3000 + TRAILER_LEN * fus.len());
    }

    #[test]
    fn small_delta_frame_is_one_single_nal_unit() {
        let payloads = frame_payloads(false, 500, (320, 180), 1, 1100);
        assert_eq!(payloads.len(), 1);
        let p = with_trailer(payloads[0].clone());
        let info = frame_info(Codec::H264, &p).unwrap();
        assert!(info.starts_frame && !info.keyframe);
        let h = h264::parse(&p).unwrap();
        assert_eq!((h.packetization, h.nal_type), (Packetization::Single, 1));
        // A large delta frame is fragmented, and never a key frame.
        let big = frame_payloads(false, 5000, (320, 180), 1, 1100);
        assert!(big.len() > 1);
        let first = frame_info(Codec::H264, &with_trailer(big[0].clone())).unwrap();
        assert!(first.starts_frame && !first.keyframe);
    }
}
