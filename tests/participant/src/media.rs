//! Browser-shaped media: RTP packets with the transport-wide-cc extension, VP8 payload
//! descriptors and frame headers, Opus-sized audio, and the integrity trailer every payload ends
//! with so that any receiver can check the bridge forwarded the bytes untouched.

use std::time::Duration;

/// Marks the start of a payload trailer.
pub const TRAILER_MAGIC: [u8; 4] = *b"TuTi";
/// magic (4) + SSRC (4) + RTP sequence (2) + send time in µs (8) + CRC32 (4).
pub const TRAILER_LEN: usize = 22;
/// Size of the fixed RTP header plus our one-byte-header extension block (one element).
pub const RTP_HEADER_LEN: usize = 12 + 8;
/// Size of the VP8 payload descriptor we write (X, I with a 15-bit PictureID).
pub const VP8_DESCRIPTOR_LEN: usize = 4;
/// Size of the VP8 payload descriptor with temporal layers (X, I with a 15-bit PictureID, L, T).
pub const VP8_TEMPORAL_DESCRIPTOR_LEN: usize = 6;
/// Largest RTP packet (before SRTP) we produce, like a browser's ~1,200-byte video packets.
pub const MAX_RTP_PACKET: usize = 1200;
/// Video frame rate of the generated stream.
pub const VIDEO_FPS: u32 = 30;
/// Interval between Opus packets.
pub const AUDIO_PTIME: Duration = Duration::from_millis(20);
/// RTP clock ticks per video frame (90 kHz / 30 fps).
const VIDEO_TS_STEP: u32 = 90_000 / VIDEO_FPS;
/// RTP clock ticks per Opus packet (48 kHz, 20 ms).
const AUDIO_TS_STEP: u32 = 960;
/// Keyframes are this many times larger than a delta frame, as with real encoders.
const KEYFRAME_SIZE_FACTOR: usize = 3;

/// What a payload trailer says about the packet it came in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Trailer {
    pub ssrc: u32,
    pub seq: u16,
    pub sent_at_us: u64,
}

/// Why a payload failed verification.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TrailerError {
    #[error("payload shorter than the trailer")]
    TooShort,
    #[error("trailer magic missing")]
    BadMagic,
    #[error("payload checksum mismatch")]
    BadChecksum,
}

/// Appends the trailer for `payload`; the CRC covers every byte before it, including the
/// trailer's own fields.
pub fn append_trailer(payload: &mut Vec<u8>, trailer: Trailer) {
    payload.extend_from_slice(&TRAILER_MAGIC);
    payload.extend_from_slice(&trailer.ssrc.to_be_bytes());
    payload.extend_from_slice(&trailer.seq.to_be_bytes());
    payload.extend_from_slice(&trailer.sent_at_us.to_be_bytes());
    let crc = crc32fast::hash(payload);
    payload.extend_from_slice(&crc.to_be_bytes());
}

/// Checks the trailer at the end of `payload` and returns what it says.
pub fn verify_trailer(payload: &[u8]) -> Result<Trailer, TrailerError> {
    verify_trailer_from(payload, 0)
}

/// Checks the trailer like [`verify_trailer`] with a CRC that covers the payload only from
/// `covered_from` on: for a sender that left out a codec payload descriptor a forwarder may
/// rewrite (a VP8 PictureID). An offset beyond the trailer is `TooShort`.
pub fn verify_trailer_from(payload: &[u8], covered_from: usize) -> Result<Trailer, TrailerError> {
    let start = payload
        .len()
        .checked_sub(TRAILER_LEN)
        .ok_or(TrailerError::TooShort)?;
    let t = &payload[start..];
    if t[0..4] != TRAILER_MAGIC {
        return Err(TrailerError::BadMagic);
    }
    let covered = payload
        .get(covered_from..start)
        .ok_or(TrailerError::TooShort)?;
    let covered_trailer = &payload[start..payload.len() - 4];
    let mut crc = crc32fast::Hasher::new();
    crc.update(covered);
    crc.update(covered_trailer);
    let expected = u32::from_be_bytes([t[18], t[19], t[20], t[21]]);
    if crc.finalize() != expected {
        return Err(TrailerError::BadChecksum);
    }
    Ok(Trailer {
        ssrc: u32::from_be_bytes([t[4], t[5], t[6], t[7]]),
        seq: u16::from_be_bytes([t[8], t[9]]),
        sent_at_us: u64::from_be_bytes([t[10], t[11], t[12], t[13], t[14], t[15], t[16], t[17]]),
    })
}

/// Fields of an outgoing RTP header.
#[derive(Clone, Copy, Debug)]
pub struct RtpFields {
    pub payload_type: u8,
    pub marker: bool,
    pub seq: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    /// One-byte-header extension id (1..=14) carrying the transport-wide sequence number.
    pub twcc_ext_id: u8,
    pub twcc_seq: u16,
    /// The RFC 6464 audio level extension's id and level byte (V bit, −dBov), when it is sent.
    pub audio_level: Option<(u8, u8)>,
}

/// Serialises an RTP packet whose header carries RFC 8285 one-byte extensions: the
/// transport-wide-cc sequence number (2 bytes), then the audio level when there is one (1
/// byte), padded to a 32-bit word. The transport-wide sequence number is always at bytes
/// 17..19.
pub fn build_rtp(f: &RtpFields, payload: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(RTP_HEADER_LEN + 4 + payload.len());
    p.push(0x90); // V=2, P=0, X=1, CC=0
    p.push((u8::from(f.marker) << 7) | (f.payload_type & 0x7f));
    p.extend_from_slice(&f.seq.to_be_bytes());
    p.extend_from_slice(&f.timestamp.to_be_bytes());
    p.extend_from_slice(&f.ssrc.to_be_bytes());
    let words = if f.audio_level.is_some() { 2 } else { 1 };
    p.extend_from_slice(&[0xbe, 0xde, 0x00, words]);
    p.push(((f.twcc_ext_id & 0x0f) << 4) | 0x01);
    p.extend_from_slice(&f.twcc_seq.to_be_bytes());
    match f.audio_level {
        Some((id, level)) => p.extend_from_slice(&[(id & 0x0f) << 4, level, 0, 0, 0]),
        None => p.push(0),
    }
    p.extend_from_slice(payload);
    p
}

/// The audio level of the `seq`th packet of someone who talks half the time: 500 ms of
/// syllables between −20 and −26 dBov, then 500 ms of pause at −60 dBov.
pub fn speech_level(seq: u16) -> u8 {
    if (seq / 25).is_multiple_of(2) {
        20 + (seq % 7) as u8
    } else {
        60
    }
}

/// RFC 7741 payload descriptor: X=1, S on the first packet of a frame, PartID 0, I=1, M=1 with a
/// 15-bit PictureID.
pub fn vp8_descriptor(start_of_frame: bool, picture_id: u16) -> [u8; VP8_DESCRIPTOR_LEN] {
    let pid = picture_id & 0x7fff;
    [
        0x80 | if start_of_frame { 0x10 } else { 0 },
        0x80,
        0x80 | (pid >> 8) as u8,
        (pid & 0xff) as u8,
    ]
}

/// RFC 7741 payload descriptor with temporal scalability: X=1, S on the first packet of a
/// frame, PartID 0, I=1 with a 15-bit PictureID, L=1 with `tl0_pic_idx`, T=1 with `temporal_id`
/// (0..=3) and the Y bit `layer_sync`; no KEYIDX.
pub fn vp8_temporal_descriptor(
    start_of_frame: bool,
    picture_id: u16,
    tl0_pic_idx: u8,
    temporal_id: u8,
    layer_sync: bool,
) -> [u8; VP8_TEMPORAL_DESCRIPTOR_LEN] {
    let [b0, _, p0, p1] = vp8_descriptor(start_of_frame, picture_id);
    [
        b0,
        0xe0,
        p0,
        p1,
        tl0_pic_idx,
        ((temporal_id & 0x03) << 6) | (u8::from(layer_sync) << 5),
    ]
}

/// The VP8 frame header (RFC 6386 §9.1): a 3-byte frame tag (P=0 for key frames, version 0,
/// show_frame=1, first partition size) and, for key frames, the start code and a 640x360 size.
pub fn vp8_frame_header(keyframe: bool, first_partition_size: u32) -> Vec<u8> {
    vp8_frame_header_sized(keyframe, first_partition_size, 640, 360)
}

/// [`vp8_frame_header`] with the key frame's size: `width` x `height` (14 bits each, no
/// scaling); delta frames carry no size.
pub fn vp8_frame_header_sized(
    keyframe: bool,
    first_partition_size: u32,
    width: u16,
    height: u16,
) -> Vec<u8> {
    let size = first_partition_size & 0x7_ffff;
    let tag = u32::from(!keyframe) | (1 << 4) | (size << 5);
    let mut h = vec![tag as u8, (tag >> 8) as u8, (tag >> 16) as u8];
    if keyframe {
        h.extend_from_slice(&[0x9d, 0x01, 0x2a]);
        h.extend_from_slice(&(width & 0x3fff).to_le_bytes());
        h.extend_from_slice(&(height & 0x3fff).to_le_bytes());
    }
    h
}

/// What a receiver learns from a VP8 RTP payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Vp8Info {
    pub start_of_frame: bool,
    pub partition_id: u8,
    pub picture_id: Option<u16>,
    /// TL0PICIDX (L bit), TID and Y (T bit; Y is false without it), when present.
    pub tl0_pic_idx: Option<u8>,
    pub temporal_id: Option<u8>,
    pub layer_sync: bool,
    /// First packet of a key frame with a valid frame tag and start code.
    pub keyframe: bool,
}

/// Parses an RFC 7741 payload descriptor and, on a frame's first packet, the frame header.
/// Returns None when the descriptor is truncated.
pub fn parse_vp8(payload: &[u8]) -> Option<Vp8Info> {
    let b0 = *payload.first()?;
    let start_of_frame = b0 & 0x10 != 0;
    let partition_id = b0 & 0x0f;
    let mut pos = 1;
    let mut picture_id = None;
    let (mut tl0_pic_idx, mut temporal_id, mut layer_sync) = (None, None, false);
    if b0 & 0x80 != 0 {
        let x = *payload.get(pos)?;
        pos += 1;
        if x & 0x80 != 0 {
            let p0 = *payload.get(pos)?;
            if p0 & 0x80 != 0 {
                let p1 = *payload.get(pos + 1)?;
                picture_id = Some(u16::from(p0 & 0x7f) << 8 | u16::from(p1));
                pos += 2;
            } else {
                picture_id = Some(u16::from(p0));
                pos += 1;
            }
        }
        if x & 0x40 != 0 {
            tl0_pic_idx = Some(*payload.get(pos)?);
            pos += 1;
        }
        if x & 0x30 != 0 {
            let tk = *payload.get(pos)?;
            if x & 0x20 != 0 {
                temporal_id = Some(tk >> 6);
                layer_sync = tk & 0x20 != 0;
            }
            pos += 1;
        }
    }
    let frame = payload.get(pos..)?;
    let keyframe = start_of_frame
        && partition_id == 0
        && frame.len() >= 10
        && frame[0] & 0x01 == 0
        && frame[3..6] == [0x9d, 0x01, 0x2a];
    Some(Vp8Info {
        start_of_frame,
        partition_id,
        picture_id,
        tl0_pic_idx,
        temporal_id,
        layer_sync,
        keyframe,
    })
}

/// An outgoing packet in plain RTP, with the transport-wide sequence number it carries.
#[derive(Clone, Debug)]
pub struct OutgoingPacket {
    pub rtp: Vec<u8>,
    pub twcc_seq: u16,
}

/// Sequence/timestamp state of the streams one participant sends.
#[derive(Debug)]
pub struct MediaSource {
    audio_ssrc: u32,
    video_ssrc: u32,
    opus_pt: u8,
    vp8_pt: u8,
    twcc_ext_id: u8,
    audio_level_ext_id: Option<u8>,
    frame_bytes: usize,
    /// The size key frame headers announce (640x360 unless [`MediaSource::set_video_size`]).
    width: u16,
    height: u16,
    frames_per_keyframe: u64,
    audio_seq: u16,
    audio_ts: u32,
    video_seq: u16,
    video_ts: u32,
    picture_id: u16,
    twcc_seq: u16,
    frames_since_keyframe: u64,
    keyframe_requested: bool,
    audio_counts: SenderCounts,
    video_counts: SenderCounts,
}

/// RFC 3550 sender statistics of one stream, for its sender reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SenderCounts {
    pub packets: u32,
    /// Payload octets (header excluded), as RFC 3550 §6.4.1 counts them.
    pub octets: u32,
    /// RTP timestamp of the latest packet.
    pub rtp_time: u32,
}

impl SenderCounts {
    fn add(&mut self, payload_len: usize, rtp_time: u32) {
        self.packets = self.packets.wrapping_add(1);
        self.octets = self.octets.wrapping_add(payload_len as u32);
        self.rtp_time = rtp_time;
    }
}

/// Seconds from the NTP epoch (1900) to the UNIX epoch.
const NTP_UNIX_OFFSET_SECS: u64 = 2_208_988_800;

/// 64-bit NTP timestamp (RFC 3550 §4) of a time given in µs since the UNIX epoch.
pub fn ntp_time(unix_us: u64) -> u64 {
    let secs = unix_us / 1_000_000 + NTP_UNIX_OFFSET_SECS;
    let frac = ((unix_us % 1_000_000) << 32) / 1_000_000;
    (secs << 32) | frac
}

impl MediaSource {
    /// Random initial sequence numbers (unless the config sets them) and timestamps, like a
    /// browser; the first video frame is a key frame.
    pub fn new(config: &crate::ParticipantConfig) -> MediaSource {
        let interval_frames =
            (config.keyframe_interval.as_secs_f64() * f64::from(VIDEO_FPS)).round() as u64;
        MediaSource {
            audio_ssrc: config.audio_ssrc,
            video_ssrc: config.video_ssrc,
            opus_pt: config.opus_pt,
            vp8_pt: config.vp8_pt,
            twcc_ext_id: config.twcc_ext_id,
            audio_level_ext_id: config.audio_level_ext_id,
            frame_bytes: (config.video_bitrate_bps / 8 / VIDEO_FPS) as usize,
            width: 640,
            height: 360,
            frames_per_keyframe: interval_frames.max(1),
            audio_seq: config.first_sequence.unwrap_or_else(rand::random),
            audio_ts: rand::random(),
            video_seq: config.first_sequence.unwrap_or_else(rand::random),
            video_ts: rand::random(),
            picture_id: rand::random::<u16>() & 0x7fff,
            twcc_seq: 1,
            frames_since_keyframe: 0,
            keyframe_requested: true,
            audio_counts: SenderCounts::default(),
            video_counts: SenderCounts::default(),
        }
    }

    /// What was sent so far on the audio and the video stream.
    pub fn audio_counts(&self) -> SenderCounts {
        self.audio_counts
    }

    pub fn video_counts(&self) -> SenderCounts {
        self.video_counts
    }

    /// The picture size the key frames' VP8 headers give (a simulcast layer's, e.g. 320x180);
    /// 640x360 until set.
    pub fn set_video_size(&mut self, width: u16, height: u16) {
        self.width = width;
        self.height = height;
    }

    /// Makes the next video frame a key frame (after a PLI or FIR).
    pub fn request_keyframe(&mut self) {
        self.keyframe_requested = true;
    }

    fn next_twcc(&mut self) -> u16 {
        let s = self.twcc_seq;
        self.twcc_seq = self.twcc_seq.wrapping_add(1);
        s
    }

    /// One 20 ms Opus packet of 80-160 bytes of payload.
    pub fn audio_packet(&mut self, now_us: u64) -> OutgoingPacket {
        let seq = self.audio_seq;
        let body_len = 80 + (rand::random::<u8>() as usize % 81) - TRAILER_LEN;
        let mut payload = Vec::with_capacity(body_len + TRAILER_LEN);
        // TOC byte: config 15 (CELT FB 20 ms), mono, one frame.
        payload.push(0x78);
        payload.extend((1..body_len).map(|i| (i as u8).wrapping_mul(7) ^ seq as u8));
        append_trailer(
            &mut payload,
            Trailer {
                ssrc: self.audio_ssrc,
                seq,
                sent_at_us: now_us,
            },
        );
        let twcc_seq = self.next_twcc();
        let rtp = build_rtp(
            &RtpFields {
                payload_type: self.opus_pt,
                marker: false,
                seq,
                timestamp: self.audio_ts,
                ssrc: self.audio_ssrc,
                twcc_ext_id: self.twcc_ext_id,
                twcc_seq,
                audio_level: self.audio_level_ext_id.map(|id| (id, speech_level(seq))),
            },
            &payload,
        );
        self.audio_counts.add(payload.len(), self.audio_ts);
        self.audio_seq = seq.wrapping_add(1);
        self.audio_ts = self.audio_ts.wrapping_add(AUDIO_TS_STEP);
        OutgoingPacket { rtp, twcc_seq }
    }

    /// All packets of the next video frame (a key frame when requested or due).
    pub fn video_frame(&mut self, now_us: u64) -> Vec<OutgoingPacket> {
        let keyframe =
            self.keyframe_requested || self.frames_since_keyframe >= self.frames_per_keyframe;
        if keyframe {
            self.keyframe_requested = false;
            self.frames_since_keyframe = 0;
        }
        self.frames_since_keyframe += 1;
        let header_len = if keyframe { 10 } else { 3 };
        let factor = if keyframe { KEYFRAME_SIZE_FACTOR } else { 1 };
        let frame_len = (self.frame_bytes * factor).max(header_len + 1);
        let per_packet = MAX_RTP_PACKET - RTP_HEADER_LEN - VP8_DESCRIPTOR_LEN - TRAILER_LEN;
        let count = frame_len.div_ceil(per_packet);
        let chunk = frame_len.div_ceil(count);
        let mut frame =
            vp8_frame_header_sized(keyframe, (frame_len / 4) as u32, self.width, self.height);
        frame.extend(
            (header_len..frame_len).map(|i| (i as u8).wrapping_mul(13) ^ self.picture_id as u8),
        );

        let parts: Vec<&[u8]> = frame.chunks(chunk).collect();
        let mut out = Vec::with_capacity(parts.len());
        for (i, part) in parts.iter().enumerate() {
            let seq = self.video_seq;
            let mut payload = Vec::with_capacity(VP8_DESCRIPTOR_LEN + part.len() + TRAILER_LEN);
            payload.extend_from_slice(&vp8_descriptor(i == 0, self.picture_id));
            payload.extend_from_slice(part);
            append_trailer(
                &mut payload,
                Trailer {
                    ssrc: self.video_ssrc,
                    seq,
                    sent_at_us: now_us,
                },
            );
            let twcc_seq = self.next_twcc();
            let rtp = build_rtp(
                &RtpFields {
                    payload_type: self.vp8_pt,
                    marker: i + 1 == parts.len(),
                    seq,
                    timestamp: self.video_ts,
                    ssrc: self.video_ssrc,
                    twcc_ext_id: self.twcc_ext_id,
                    twcc_seq,
                    audio_level: None,
                },
                &payload,
            );
            self.video_counts.add(payload.len(), self.video_ts);
            self.video_seq = seq.wrapping_add(1);
            out.push(OutgoingPacket { rtp, twcc_seq });
        }
        self.video_ts = self.video_ts.wrapping_add(VIDEO_TS_STEP);
        self.picture_id = (self.picture_id + 1) & 0x7fff;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ParticipantConfig;
    use webrtc_util::Unmarshal;

    fn trailer() -> Trailer {
        Trailer {
            ssrc: 0x1122_3344,
            seq: 0xbeef,
            sent_at_us: 1_700_000_000_123_456,
        }
    }

    #[test]
    fn trailer_round_trips() {
        let mut p = b"some payload bytes".to_vec();
        append_trailer(&mut p, trailer());
        assert_eq!(p.len(), 18 + TRAILER_LEN);
        assert_eq!(verify_trailer(&p), Ok(trailer()));
    }

    #[test]
    fn trailer_detects_any_flipped_byte() {
        let mut p = vec![0x5a; 100];
        append_trailer(&mut p, trailer());
        for i in 0..p.len() {
            let mut bad = p.clone();
            bad[i] ^= 0x01;
            assert!(verify_trailer(&bad).is_err(), "flip at {i} not detected");
        }
    }

    #[test]
    fn trailer_crc_may_leave_out_a_descriptor() {
        let mut body = b"vp8 payload".to_vec();
        append_trailer(&mut body, trailer());
        let mut p = vp8_descriptor(true, 0x1234).to_vec();
        p.extend_from_slice(&body);
        assert_eq!(verify_trailer_from(&p, VP8_DESCRIPTOR_LEN), Ok(trailer()));
        assert_eq!(verify_trailer(&p), Err(TrailerError::BadChecksum));
        // A forwarder's new PictureID does not matter; a changed byte after it does.
        p[3] ^= 0x55;
        assert_eq!(verify_trailer_from(&p, VP8_DESCRIPTOR_LEN), Ok(trailer()));
        p[VP8_DESCRIPTOR_LEN] ^= 1;
        assert_eq!(
            verify_trailer_from(&p, VP8_DESCRIPTOR_LEN),
            Err(TrailerError::BadChecksum)
        );
        assert_eq!(
            verify_trailer_from(&p, p.len()),
            Err(TrailerError::TooShort)
        );
    }

    #[test]
    fn trailer_rejects_short_and_truncated_payloads() {
        assert_eq!(verify_trailer(&[0; 5]), Err(TrailerError::TooShort));
        let mut p = vec![1, 2, 3];
        append_trailer(&mut p, trailer());
        assert_eq!(verify_trailer(&p[1..]), Err(TrailerError::BadChecksum));
        assert_eq!(
            verify_trailer(&p[..p.len() - 1]),
            Err(TrailerError::BadMagic)
        );
    }

    #[test]
    fn rtp_header_carries_one_byte_twcc_extension() {
        let f = RtpFields {
            payload_type: 100,
            marker: true,
            seq: 0x1234,
            timestamp: 0xdead_beef,
            ssrc: 0xcafe_babe,
            twcc_ext_id: 5,
            twcc_seq: 0x0102,
            audio_level: None,
        };
        let raw = build_rtp(&f, &[9, 8, 7]);
        assert_eq!(
            raw,
            [
                0x90, 0xe4, 0x12, 0x34, 0xde, 0xad, 0xbe, 0xef, 0xca, 0xfe, 0xba, 0xbe, 0xbe, 0xde,
                0x00, 0x01, 0x51, 0x01, 0x02, 0x00, 9, 8, 7
            ]
        );
        let p = rtp::packet::Packet::unmarshal(&mut &raw[..]).unwrap();
        assert!(p.header.marker);
        assert_eq!(p.header.payload_type, 100);
        assert_eq!(p.header.sequence_number, 0x1234);
        assert_eq!(p.header.ssrc, 0xcafe_babe);
        assert_eq!(p.header.get_extension(5).unwrap()[..], [0x01, 0x02]);
        assert_eq!(p.payload[..], [9, 8, 7]);
    }

    #[test]
    fn audio_packets_add_their_level_after_the_twcc_element() {
        let f = RtpFields {
            payload_type: 111,
            marker: false,
            seq: 1,
            timestamp: 2,
            ssrc: 3,
            twcc_ext_id: 5,
            twcc_seq: 0x0102,
            audio_level: Some((1, speech_level(1))),
        };
        let raw = build_rtp(&f, &[9, 8, 7]);
        assert_eq!(raw[14..16], [0x00, 0x02], "two words of extensions");
        assert_eq!(
            raw[17..19],
            [0x01, 0x02],
            "the twcc sequence where it always is"
        );
        let p = rtp::packet::Packet::unmarshal(&mut &raw[..]).unwrap();
        assert_eq!(p.header.get_extension(5).unwrap()[..], [0x01, 0x02]);
        assert_eq!(p.header.get_extension(1).unwrap()[..], [21]);
        assert_eq!(p.payload[..], [9, 8, 7]);
        assert_eq!(
            (speech_level(0), speech_level(30)),
            (20, 60),
            "talk, then pause"
        );
    }

    #[test]
    fn vp8_descriptor_bytes() {
        assert_eq!(vp8_descriptor(true, 0x1234), [0x90, 0x80, 0x92, 0x34]);
        assert_eq!(vp8_descriptor(false, 0xffff), [0x80, 0x80, 0xff, 0xff]);
    }

    #[test]
    fn vp8_keyframe_header_bytes() {
        let h = vp8_frame_header(true, 1000);
        // tag = P=0 | show_frame<<4 | 1000<<5 = 0x7d10
        assert_eq!(
            h,
            [0x10, 0x7d, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0x68, 0x01]
        );
        let d = vp8_frame_header(false, 1000);
        assert_eq!(d, [0x11, 0x7d, 0x00]);
        let hd = vp8_frame_header_sized(true, 1000, 1280, 720);
        assert_eq!(hd[6..], [0x00, 0x05, 0xd0, 0x02]);
        assert_eq!(vp8_frame_header_sized(true, 1000, 640, 360), h);
        assert_eq!(vp8_frame_header_sized(false, 1000, 1280, 720), d);
    }

    #[test]
    fn vp8_parse_sees_keyframes_only_on_frame_start() {
        let mut p = vp8_descriptor(true, 77).to_vec();
        p.extend(vp8_frame_header(true, 10));
        let info = parse_vp8(&p).unwrap();
        assert!(info.keyframe && info.start_of_frame);
        assert_eq!(info.picture_id, Some(77));
        assert_eq!(info.partition_id, 0);

        let mut delta = vp8_descriptor(true, 78).to_vec();
        delta.extend(vp8_frame_header(false, 10));
        delta.extend([0; 10]);
        assert!(!parse_vp8(&delta).unwrap().keyframe);

        let mut cont = vp8_descriptor(false, 77).to_vec();
        cont.extend(vp8_frame_header(true, 10));
        assert!(!parse_vp8(&cont).unwrap().keyframe);

        // Truncated descriptors never panic.
        for n in 0..4 {
            assert_eq!(parse_vp8(&p[..n]), None, "prefix of {n} bytes");
        }
        assert!(!parse_vp8(&p[..4]).unwrap().keyframe);
        // 7-bit picture id, TL0PICIDX and TID present.
        let short = [
            0x90, 0xe0, 0x05, 0x01, 0x00, 0x10, 0, 0, 0x9d, 0x01, 0x2a, 0x80, 0x02,
        ];
        let info = parse_vp8(&short).unwrap();
        assert_eq!(info.picture_id, Some(5));
        assert_eq!((info.tl0_pic_idx, info.temporal_id), (Some(1), Some(0)));
        assert!(!info.layer_sync);
        assert!(!info.keyframe);
    }

    #[test]
    fn vp8_temporal_descriptor_round_trips() {
        let d = vp8_temporal_descriptor(true, 0x1234, 0xab, 2, true);
        assert_eq!(d, [0x90, 0xe0, 0x92, 0x34, 0xab, 0xa0]);
        let mut p = d.to_vec();
        p.extend(vp8_frame_header_sized(true, 10, 1280, 720));
        let info = parse_vp8(&p).unwrap();
        assert_eq!(info.picture_id, Some(0x1234));
        assert_eq!(info.tl0_pic_idx, Some(0xab));
        assert_eq!(info.temporal_id, Some(2));
        assert!(info.layer_sync && info.keyframe);
        // TL0PICIDX and TID without Y; the plain descriptor has neither.
        let d = vp8_temporal_descriptor(false, 7, 0, 1, false);
        assert_eq!(d[5], 0x40);
        let info = parse_vp8(&d).unwrap();
        assert_eq!((info.temporal_id, info.layer_sync), (Some(1), false));
        let info = parse_vp8(&vp8_descriptor(true, 7)).unwrap();
        assert_eq!((info.tl0_pic_idx, info.temporal_id), (None, None));
        // Truncated temporal fields never panic.
        for n in 0..6 {
            assert_eq!(parse_vp8(&d[..n]), None, "prefix of {n} bytes");
        }
    }

    fn unmarshal(raw: &[u8]) -> rtp::packet::Packet {
        rtp::packet::Packet::unmarshal(&mut &raw[..]).unwrap()
    }

    #[test]
    fn audio_packets_are_opus_sized_with_valid_trailers() {
        let cfg = ParticipantConfig::new("a");
        let mut m = MediaSource::new(&cfg);
        let first = unmarshal(&m.audio_packet(1).rtp);
        let second_out = m.audio_packet(2);
        let second = unmarshal(&second_out.rtp);
        for p in [&first, &second] {
            assert_eq!(p.header.payload_type, 111);
            assert_eq!(p.header.ssrc, cfg.audio_ssrc);
            assert!((80..=160).contains(&p.payload.len()), "{}", p.payload.len());
            let t = verify_trailer(&p.payload).unwrap();
            assert_eq!((t.ssrc, t.seq), (cfg.audio_ssrc, p.header.sequence_number));
        }
        assert_eq!(
            second.header.sequence_number,
            first.header.sequence_number.wrapping_add(1)
        );
        assert_eq!(
            second.header.timestamp,
            first.header.timestamp.wrapping_add(960)
        );
        assert_eq!(second_out.twcc_seq, 2);
        let counts = m.audio_counts();
        assert_eq!(counts.packets, 2);
        assert_eq!(
            counts.octets as usize,
            first.payload.len() + second.payload.len()
        );
        assert_eq!(counts.rtp_time, second.header.timestamp);
        assert_eq!(m.video_counts(), SenderCounts::default());
    }

    #[test]
    fn ntp_time_of_unix_instants() {
        assert_eq!(ntp_time(0), NTP_UNIX_OFFSET_SECS << 32);
        assert_eq!(
            ntp_time(1_500_000),
            ((NTP_UNIX_OFFSET_SECS + 1) << 32) | (1 << 31)
        );
    }

    #[test]
    fn video_frames_are_browser_shaped() {
        let mut cfg = ParticipantConfig::new("v");
        cfg.keyframe_interval = Duration::from_millis(100); // every 3 frames
        let mut m = MediaSource::new(&cfg);
        let mut keyframes = Vec::new();
        let mut last_ts = None;
        let mut twcc = Vec::new();
        for frame in 0..7 {
            let packets = m.video_frame(0);
            assert!(packets.len() > 1);
            let parsed: Vec<_> = packets.iter().map(|p| unmarshal(&p.rtp)).collect();
            let ts = parsed[0].header.timestamp;
            if let Some(prev) = last_ts {
                assert_eq!(ts, u32::wrapping_add(prev, 3000));
            }
            last_ts = Some(ts);
            for (i, p) in parsed.iter().enumerate() {
                assert!(packets[i].rtp.len() <= MAX_RTP_PACKET);
                assert_eq!(p.header.timestamp, ts);
                assert_eq!(p.header.marker, i + 1 == parsed.len());
                let info = parse_vp8(&p.payload).unwrap();
                assert_eq!(info.start_of_frame, i == 0);
                assert_eq!(info.partition_id, 0);
                assert!(info.picture_id.is_some());
                verify_trailer(&p.payload).unwrap();
                twcc.push(packets[i].twcc_seq);
            }
            if parse_vp8(&parsed[0].payload).unwrap().keyframe {
                keyframes.push(frame);
            }
        }
        assert_eq!(keyframes, [0, 3, 6]);
        assert!(twcc.windows(2).all(|w| w[1] == w[0] + 1));
        // 2 Mbit/s at 30 fps: a delta frame is ~8.3 kB, so ~7-8 packets of ~1.2 kB.
        let delta = m.video_frame(0);
        let bytes: usize = delta.iter().map(|p| p.rtp.len()).sum();
        assert!((8_300..10_000).contains(&bytes), "{bytes}");
        m.request_keyframe();
        let kf = m.video_frame(0);
        assert!(parse_vp8(&unmarshal(&kf[0].rtp).payload).unwrap().keyframe);
    }

    #[test]
    fn key_frames_announce_the_set_video_size() {
        let cfg = ParticipantConfig::new("s");
        let size = |m: &mut MediaSource| {
            let first = unmarshal(&m.video_frame(0)[0].rtp);
            // The frame header after the descriptor: tag (3), start code (3), width, height.
            let h = &first.payload[VP8_DESCRIPTOR_LEN + 6..VP8_DESCRIPTOR_LEN + 10];
            (
                u16::from_le_bytes([h[0], h[1]]),
                u16::from_le_bytes([h[2], h[3]]),
            )
        };
        assert_eq!(size(&mut MediaSource::new(&cfg)), (640, 360));
        let mut small = MediaSource::new(&cfg);
        small.set_video_size(320, 180);
        assert_eq!(size(&mut small), (320, 180));
    }
}
