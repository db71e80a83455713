//! VP8 and H.264 payload knowledge for simulcast layer switching (`tutti_rtp::codec`):
//! hand-built packets for every case, every truncation, and agreement with webrtc-rs `rtp`'s
//! VP8 and H.264 payloaders and depacketizers (an independent implementation).

use bytes::Bytes;
use rtp::codecs::h264::{H264Packet, H264Payloader};
use rtp::codecs::vp8::{Vp8Packet, Vp8Payloader};
use rtp::packetizer::{Depacketizer, Payloader};
use tutti_rtp::codec::h264::{self, Packetization};
use tutti_rtp::codec::vp8::{self, PictureId, Tl0PicIdx};
use tutti_rtp::codec::{frame_info, Codec, Details};
use tutti_rtp::Error;

mod support;
use support::Rng;

// ---------------------------------------------------------------------------------------------
// VP8

/// The fields of a VP8 payload descriptor, written by the test itself (not by the crate).
#[derive(Clone, Copy, Debug, Default)]
struct Vp8Fields {
    /// Set X even when no optional field is present.
    force_x: bool,
    n: bool,
    s: bool,
    pid: u8,
    /// (value, 15-bit)
    picture_id: Option<(u16, bool)>,
    tl0: Option<u8>,
    /// (TID, Y)
    tid: Option<(u8, bool)>,
    key_idx: Option<u8>,
}

impl Vp8Fields {
    fn write(&self, vp8_payload: &[u8]) -> Vec<u8> {
        let x = self.force_x
            || self.picture_id.is_some()
            || self.tl0.is_some()
            || self.tid.is_some()
            || self.key_idx.is_some();
        let mut out =
            vec![u8::from(x) << 7 | u8::from(self.n) << 5 | u8::from(self.s) << 4 | self.pid];
        if x {
            out.push(
                u8::from(self.picture_id.is_some()) << 7
                    | u8::from(self.tl0.is_some()) << 6
                    | u8::from(self.tid.is_some()) << 5
                    | u8::from(self.key_idx.is_some()) << 4,
            );
        }
        match self.picture_id {
            Some((v, true)) => out.extend_from_slice(&(0x8000 | v).to_be_bytes()),
            Some((v, false)) => out.push(v as u8),
            None => {}
        }
        out.extend(self.tl0);
        if self.tid.is_some() || self.key_idx.is_some() {
            let (tid, y) = self.tid.unwrap_or((0, false));
            out.push(tid << 6 | u8::from(y) << 5 | self.key_idx.unwrap_or(0));
        }
        out.extend_from_slice(vp8_payload);
        out
    }
}

fn random_fields(rng: &mut Rng) -> Vp8Fields {
    Vp8Fields {
        force_x: rng.bit(),
        n: rng.bit(),
        s: rng.bit(),
        pid: rng.below(8) as u8,
        picture_id: rng.bit().then(|| {
            let long = rng.bit();
            (rng.below(if long { 0x8000 } else { 0x80 }) as u16, long)
        }),
        tl0: rng.bit().then(|| rng.next() as u8),
        tid: rng.bit().then(|| (rng.below(4) as u8, rng.bit())),
        key_idx: rng.bit().then(|| rng.below(32) as u8),
    }
}

fn vp8_ok(payload: &[u8]) -> vp8::Descriptor {
    vp8::parse(payload).unwrap_or_else(|e| panic!("{payload:02x?}: {e}"))
}

#[test]
fn vp8_minimal_descriptor_key_and_delta_frames() {
    let key = vp8_ok(&[0x10, 0x9c, 0x01, 0x00]);
    assert_eq!(
        key,
        vp8::Descriptor {
            extended: false,
            non_reference: false,
            start_of_partition: true,
            partition_index: 0,
            picture_id: None,
            tl0_pic_idx: None,
            temporal_id: None,
            layer_sync: false,
            key_idx: None,
            payload_offset: 1,
            keyframe: true,
        }
    );
    assert!(key.starts_frame());
    let delta = vp8_ok(&[0x10, 0x9d, 0x01, 0x00]);
    assert!(delta.starts_frame() && !delta.keyframe);
    // Where a key frame's picture begins: its first packet only.
    let picture = |p: &[u8]| frame_info(Codec::Vp8, p).unwrap().starts_keyframe_picture();
    assert!(picture(&[0x10, 0x9c, 0x01, 0x00]));
    assert!(!picture(&[0x10, 0x9d, 0x01, 0x00]), "a delta frame");
    assert!(
        !picture(&[0x00, 0x9c, 0x01, 0x00]),
        "not the frame's first packet"
    );
}

#[test]
fn vp8_seven_bit_picture_id() {
    let d = vp8_ok(&[0x90, 0x80, 0x05, 0x50, 0xff]);
    assert!(d.extended);
    assert_eq!(
        d.picture_id,
        Some(PictureId {
            value: 5,
            long: false,
            offset: 2
        })
    );
    assert_eq!(d.picture_id.unwrap().modulus(), 128);
    assert_eq!(
        (d.tl0_pic_idx, d.temporal_id, d.key_idx),
        (None, None, None)
    );
    assert_eq!(d.payload_offset, 3);
    assert!(d.keyframe);
    // The largest 7-bit value.
    assert_eq!(
        vp8_ok(&[0x90, 0x80, 0x7f, 0x01]).picture_id.unwrap().value,
        127
    );
}

#[test]
fn vp8_fifteen_bit_picture_id_with_tl0picidx_tid_and_keyidx() {
    // X; I L T K; M=1 PictureID 0x2bcd; TL0PICIDX 0x42; TID 2, Y, KEYIDX 7; delta frame.
    let p = [0x90, 0xf0, 0xab, 0xcd, 0x42, 0b1010_0111, 0x01, 0x02];
    let d = vp8_ok(&p);
    assert_eq!(
        d.picture_id,
        Some(PictureId {
            value: 0x2bcd,
            long: true,
            offset: 2
        })
    );
    assert_eq!(d.picture_id.unwrap().modulus(), 0x8000);
    assert_eq!(
        d.tl0_pic_idx,
        Some(Tl0PicIdx {
            value: 0x42,
            offset: 4
        })
    );
    assert_eq!(d.temporal_id, Some(2));
    assert!(d.layer_sync);
    assert_eq!(d.key_idx, Some(7));
    assert_eq!(d.payload_offset, 6);
    assert!(d.starts_frame() && !d.keyframe);

    let info = frame_info(Codec::Vp8, &p).unwrap();
    assert!(info.starts_frame && !info.keyframe);
    assert_eq!((info.temporal_layer, info.layer_sync), (Some(2), true));
    assert_eq!(info.details, Details::Vp8(d));
    // The largest 15-bit value.
    let max = vp8_ok(&[0x90, 0x80, 0xff, 0xff, 0x00]);
    assert_eq!(max.picture_id.unwrap().value, 0x7fff);
}

#[test]
fn vp8_tl0picidx_and_tid_without_picture_id() {
    let d = vp8_ok(&[0x90, 0x60, 0x07, 0b0100_0000, 0x00]);
    assert_eq!(d.picture_id, None);
    assert_eq!(
        d.tl0_pic_idx,
        Some(Tl0PicIdx {
            value: 7,
            offset: 2
        })
    );
    assert_eq!(
        (d.temporal_id, d.layer_sync, d.key_idx),
        (Some(1), false, None)
    );
    assert_eq!(d.payload_offset, 4);
    assert!(d.keyframe);
    // TID 0 is a layer, not an absent field.
    let base = vp8_ok(&[0x90, 0x20, 0x00, 0x00]);
    assert_eq!((base.temporal_id, base.tl0_pic_idx), (Some(0), None));
    // L without T (RFC 7741 says T must be set then; receivers parse it anyway).
    let l_only = vp8_ok(&[0x90, 0x40, 0x09, 0x00]);
    assert_eq!(
        (l_only.tl0_pic_idx.unwrap().value, l_only.temporal_id),
        (9, None)
    );
}

#[test]
fn vp8_keyidx_without_tid_ignores_the_tid_and_y_bits() {
    let d = vp8_ok(&[0x90, 0x10, 0b1110_0101, 0x00]);
    assert_eq!(
        (d.temporal_id, d.layer_sync, d.key_idx),
        (None, false, Some(5))
    );
    assert_eq!(d.payload_offset, 3);
    let info = frame_info(Codec::Vp8, &[0x90, 0x10, 0b1110_0101, 0x00]).unwrap();
    assert_eq!((info.temporal_layer, info.layer_sync), (None, false));
}

#[test]
fn vp8_extension_octet_without_fields_and_reserved_bits_ignored() {
    let d = vp8_ok(&[0x90, 0x00, 0x00]);
    assert!(d.extended && d.picture_id.is_none() && d.keyframe);
    assert_eq!(d.payload_offset, 2);
    // Both R bits of the first octet and the RSV bits of the extension octet set.
    let r = vp8_ok(&[0x90 | 0x48, 0x8f, 0x11, 0x00]);
    assert_eq!(r.picture_id.unwrap().value, 0x11);
    assert_eq!(r.payload_offset, 3);
    assert!(r.starts_frame() && r.keyframe);
}

#[test]
fn vp8_packets_that_do_not_start_a_frame_are_never_key_frames() {
    // S=0: a continuation; its first VP8 octet happens to have bit 0 clear.
    let cont = vp8_ok(&[0x80, 0x80, 0x05, 0x00]);
    assert!(!cont.start_of_partition && !cont.starts_frame() && !cont.keyframe);
    // S=1 but partition 1: starts a partition, not the frame.
    let part = vp8_ok(&[0x11, 0x00]);
    assert_eq!(part.partition_index, 1);
    assert!(part.start_of_partition && !part.starts_frame() && !part.keyframe);
    // PID 7, the largest.
    assert_eq!(vp8_ok(&[0x17, 0x00]).partition_index, 7);
    // N: non-reference frame.
    let n = vp8_ok(&[0x30, 0x01]);
    assert!(n.non_reference && n.starts_frame() && !n.keyframe);
    for p in [&[0x80u8, 0x80, 0x05, 0x00][..], &[0x11, 0x00]] {
        let info = frame_info(Codec::Vp8, p).unwrap();
        assert!(!info.starts_frame && !info.keyframe);
    }
}

#[test]
fn vp8_truncated_descriptors_are_errors() {
    for p in [
        &[][..],
        &[0x90],                               // X without its octet
        &[0x90, 0x80],                         // I without PictureID
        &[0x90, 0x80, 0x81],                   // M without the second octet
        &[0x90, 0x40],                         // L without TL0PICIDX
        &[0x90, 0x20],                         // T without TID
        &[0x90, 0x10],                         // K without KEYIDX
        &[0x10],                               // no VP8 payload
        &[0x90, 0x80, 0x05],                   // no VP8 payload after a 7-bit PictureID
        &[0x90, 0xf0, 0x81, 0x02, 0x03, 0x04], // no VP8 payload after every field
    ] {
        assert_eq!(vp8::parse(p), Err(Error::TooShort), "{p:02x?}");
        assert_eq!(frame_info(Codec::Vp8, p), None);
    }
}

#[test]
fn vp8_every_prefix_of_every_descriptor_shape() {
    let mut rng = Rng(0x5eed_0001);
    let mut shapes = Vec::new();
    for bits in 0..64u32 {
        let f = |b: u32| bits & (1 << b) != 0;
        shapes.push(Vp8Fields {
            force_x: f(0),
            s: true,
            picture_id: f(1).then_some((0x1234 & if f(2) { 0x7fff } else { 0x7f }, f(2))),
            tl0: f(3).then_some(0x42),
            tid: f(4).then_some((3, true)),
            key_idx: f(5).then_some(31),
            ..Vp8Fields::default()
        });
    }
    shapes.extend((0..200).map(|_| random_fields(&mut rng)));
    for fields in shapes {
        let full = fields.write(&[0x00, 0x9d, 0x01, 0x2a]);
        let d = vp8_ok(&full);
        for len in 0..=full.len() {
            let r = vp8::parse(&full[..len]);
            if len <= d.payload_offset {
                assert_eq!(r, Err(Error::TooShort), "{fields:?} len {len}");
            } else {
                assert_eq!(r, Ok(d), "{fields:?} len {len}");
            }
            let _ = frame_info(Codec::Vp8, &full[..len]);
        }
        // What the test wrote is what the parser read.
        assert_eq!(
            d.picture_id.map(|p| (p.value, p.long)),
            fields.picture_id,
            "{fields:?}"
        );
        assert_eq!(d.tl0_pic_idx.map(|t| t.value), fields.tl0);
        assert_eq!(d.temporal_id, fields.tid.map(|t| t.0));
        assert_eq!(d.layer_sync, fields.tid.is_some_and(|t| t.1));
        assert_eq!(d.key_idx, fields.key_idx);
        assert_eq!(d.keyframe, fields.s && fields.pid == 0);
    }
}

#[test]
fn vp8_rewrites_picture_id_keeping_its_width() {
    // 7-bit: the value is stored mod 128, the M bit stays clear, nothing else moves.
    let mut p = vec![0x90, 0xe0, 0x05, 0x42, 0x40, 0x00, 0x77];
    let orig = p.clone();
    let d = vp8_ok(&p);
    assert!(vp8::set_picture_id(&mut p, &d, 200));
    assert_eq!(p[2], 200 - 128);
    let after = vp8_ok(&p);
    assert_eq!(after.picture_id.unwrap().value, 72);
    assert_eq!(
        vp8::Descriptor {
            picture_id: d.picture_id.map(|f| PictureId { value: 72, ..f }),
            ..d
        },
        after
    );
    assert_eq!((&p[..2], &p[3..]), (&orig[..2], &orig[3..]));
    assert!(vp8::set_picture_id(&mut p, &d, 127));
    assert_eq!(vp8_ok(&p).picture_id.unwrap().value, 127);

    // 15-bit: stored mod 32768, M bit kept.
    let mut p = vec![0x90, 0xa0, 0x80, 0x01, 0x40, 0x00, 0x77];
    let orig = p.clone();
    let d = vp8_ok(&p);
    for (value, stored) in [(0x7fff, 0x7fff), (0x8001, 1), (0, 0), (0x1234, 0x1234)] {
        assert!(vp8::set_picture_id(&mut p, &d, value));
        let after = vp8_ok(&p);
        assert_eq!(after.picture_id.unwrap().value, stored);
        assert!(after.picture_id.unwrap().long);
        assert_eq!((&p[..2], &p[4..]), (&orig[..2], &orig[4..]));
    }
}

#[test]
fn vp8_rewrites_tl0picidx() {
    let mut p = vec![0x90, 0xe0, 0x80, 0x01, 0x42, 0x40, 0x00, 0x77];
    let orig = p.clone();
    let d = vp8_ok(&p);
    assert!(vp8::set_tl0_pic_idx(&mut p, &d, 0xfe));
    assert_eq!(p[4], 0xfe);
    assert_eq!((&p[..4], &p[5..]), (&orig[..4], &orig[5..]));
    assert_eq!(vp8_ok(&p).tl0_pic_idx.unwrap().value, 0xfe);
}

#[test]
fn vp8_rewrites_refuse_absent_fields_and_foreign_buffers() {
    let mut bare = vec![0x90, 0x20, 0x40, 0x00];
    let orig = bare.clone();
    let d = vp8_ok(&bare);
    assert!(!vp8::set_picture_id(&mut bare, &d, 1));
    assert!(!vp8::set_tl0_pic_idx(&mut bare, &d, 1));
    assert_eq!(bare, orig);

    // A descriptor parsed from another payload: a 15-bit field where this one has 7 bits,
    // and fields beyond the end of a short buffer.
    let long = vp8_ok(&[0x90, 0xc0, 0x80, 0x01, 0x42, 0x00]);
    let mut short_id = vec![0x90, 0x80, 0x05, 0x00];
    assert!(!vp8::set_picture_id(&mut short_id, &long, 9));
    assert_eq!(short_id, [0x90, 0x80, 0x05, 0x00]);
    let mut tiny = vec![0x90, 0xc0, 0x80];
    assert!(!vp8::set_picture_id(&mut tiny, &long, 9));
    assert!(!vp8::set_tl0_pic_idx(&mut tiny, &long, 9));
    assert_eq!(tiny, [0x90, 0xc0, 0x80]);
}

#[test]
fn vp8_keyframe_size_from_the_key_frame_header() {
    // Frame tag (P=0, show_frame, first partition size), start code, 640 (horizontal scale
    // bits 01) x 360 (vertical scale bits 10), then data.
    let vp8_frame = [
        0x50, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x42, 0x68, 0x81, 0xaa,
    ];
    let p = Vp8Fields {
        s: true,
        picture_id: Some((300, true)),
        ..Vp8Fields::default()
    }
    .write(&vp8_frame);
    let d = vp8_ok(&p);
    assert!(d.keyframe);
    assert_eq!(vp8::keyframe_size(&p, &d), Some((640, 360)));
    // Cut short, wrong start code, delta frame, continuation.
    for len in 0..p.len() - 1 {
        if let Ok(d) = vp8::parse(&p[..len]) {
            assert_eq!(vp8::keyframe_size(&p[..len], &d), None, "len {len}");
        }
    }
    let mut bad = p.clone();
    bad[d.payload_offset + 4] = 0x02;
    assert_eq!(vp8::keyframe_size(&bad, &vp8_ok(&bad)), None);
    let mut delta = p.clone();
    delta[d.payload_offset] |= 1;
    assert_eq!(vp8::keyframe_size(&delta, &vp8_ok(&delta)), None);
    let mut cont = p.clone();
    cont[0] &= !0x10;
    assert_eq!(vp8::keyframe_size(&cont, &vp8_ok(&cont)), None);
}

/// Compares the crate's descriptor with webrtc-rs's depacketized view of the same payload.
fn assert_vp8_agrees(payload: &[u8], mine: &vp8::Descriptor, theirs: &Vp8Packet, rest: &Bytes) {
    let ctx = || format!("{payload:02x?}: {mine:?} / {theirs:?}");
    assert_eq!(mine.extended, theirs.x == 1, "{}", ctx());
    assert_eq!(mine.non_reference, theirs.n == 1, "{}", ctx());
    assert_eq!(mine.start_of_partition, theirs.s == 1, "{}", ctx());
    assert_eq!(mine.partition_index, theirs.pid, "{}", ctx());
    assert_eq!(mine.picture_id.is_some(), theirs.i == 1, "{}", ctx());
    assert_eq!(
        mine.picture_id.map_or(0, |p| p.value),
        theirs.picture_id,
        "{}",
        ctx()
    );
    assert_eq!(mine.tl0_pic_idx.is_some(), theirs.l == 1, "{}", ctx());
    assert_eq!(
        mine.tl0_pic_idx.map_or(0, |t| t.value),
        theirs.tl0_pic_idx,
        "{}",
        ctx()
    );
    assert_eq!(mine.temporal_id.is_some(), theirs.t == 1, "{}", ctx());
    assert_eq!(mine.temporal_id.unwrap_or(0), theirs.tid, "{}", ctx());
    assert_eq!(mine.layer_sync, theirs.y == 1, "{}", ctx());
    assert_eq!(mine.key_idx.is_some(), theirs.k == 1, "{}", ctx());
    assert_eq!(mine.key_idx.unwrap_or(0), theirs.key_idx, "{}", ctx());
    // Where the VP8 payload starts, and so where the P bit is read.
    assert_eq!(payload.len() - mine.payload_offset, rest.len(), "{}", ctx());
    assert_eq!(&payload[mine.payload_offset..], &rest[..], "{}", ctx());
    assert_eq!(
        mine.keyframe,
        theirs.s == 1 && theirs.pid == 0 && rest[0] & 1 == 0,
        "{}",
        ctx()
    );
}

fn their_vp8(payload: &[u8]) -> Result<(Vp8Packet, Bytes), rtp::Error> {
    let mut theirs = Vp8Packet::default();
    let rest = theirs.depacketize(&Bytes::copy_from_slice(payload))?;
    Ok((theirs, rest))
}

#[test]
fn vp8_agrees_with_webrtc_rs_payloader_and_depacketizer() {
    for enable_picture_id in [true, false] {
        let mut payloader = Vp8Payloader::default();
        payloader.enable_picture_id = enable_picture_id;
        let mut packets = 0;
        // 300 frames: picture IDs 0..300 cross from the 7-bit to the 15-bit form at 128.
        for frame in 0..300u16 {
            let key = frame % 30 == 0;
            let len = 40 + usize::from(frame) * 397 % 3000;
            let mut data: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            // VP8 payload header: P bit (bit 0 of the first octet) clear on key frames.
            data[0] = if key { 0x10 } else { 0x11 };
            let out = payloader
                .payload(1000, &Bytes::from(data.clone()))
                .expect("webrtc-rs packetizes");
            assert!(!out.is_empty());
            let mut reassembled = Vec::new();
            for (i, p) in out.iter().enumerate() {
                let mine = vp8_ok(p);
                let (theirs, rest) = their_vp8(p).expect("webrtc-rs depacketizes its own");
                assert_vp8_agrees(p, &mine, &theirs, &rest);
                assert_eq!(mine.starts_frame(), i == 0);
                assert_eq!(mine.keyframe, key && i == 0, "frame {frame} packet {i}");
                if enable_picture_id {
                    let id = mine.picture_id.unwrap();
                    assert_eq!((id.value, id.long), (frame, frame >= 128));
                } else {
                    assert_eq!(mine.picture_id, None);
                }
                let info = frame_info(Codec::Vp8, p).unwrap();
                assert_eq!((info.starts_frame, info.keyframe), (i == 0, key && i == 0));
                reassembled.extend_from_slice(&p[mine.payload_offset..]);
                packets += 1;
            }
            assert_eq!(reassembled, data);
        }
        assert!(packets > 600, "{packets}");
    }
}

#[test]
fn vp8_random_descriptors_agree_with_webrtc_rs() {
    let mut rng = Rng(0x0bad_cafe_1234_5678);
    for _ in 0..20_000 {
        let fields = random_fields(&mut rng);
        let body: Vec<u8> = (0..=rng.below(6)).map(|_| rng.next() as u8).collect();
        let p = fields.write(&body);
        let mine = vp8_ok(&p);
        // webrtc-rs refuses payloads under 4 octets outright.
        if p.len() >= 4 {
            let (theirs, rest) = their_vp8(&p).expect("webrtc-rs parses it");
            assert_vp8_agrees(&p, &mine, &theirs, &rest);
        }
    }
    // Random bytes: both accept the same payloads and read the same fields.
    let mut accepted = 0;
    for _ in 0..200_000 {
        let len = 4 + rng.below(10) as usize;
        let mut p: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        if rng.bit() {
            p[0] |= 0x80;
        }
        let mine = vp8::parse(&p);
        match their_vp8(&p) {
            Ok((theirs, rest)) => {
                assert_vp8_agrees(&p, &mine.expect("webrtc-rs accepts it"), &theirs, &rest);
                accepted += 1;
            }
            Err(_) => assert_eq!(mine, Err(Error::TooShort), "{p:02x?}"),
        }
    }
    assert!(accepted > 100_000, "{accepted}");
}

#[test]
fn vp8_rewritten_descriptors_read_back_in_webrtc_rs() {
    let mut rng = Rng(0x7e57_0000_0000_0001);
    for _ in 0..20_000 {
        let mut fields = random_fields(&mut rng);
        fields.picture_id = Some((rng.below(0x80) as u16, rng.bit()));
        fields.tl0 = Some(rng.next() as u8);
        let mut p = fields.write(&[0x00, 0x01, 0x02, 0x03]);
        let before = vp8_ok(&p);
        let (picture_id, tl0) = (rng.next() as u16, rng.next() as u8);
        assert!(vp8::set_picture_id(&mut p, &before, picture_id));
        assert!(vp8::set_tl0_pic_idx(&mut p, &before, tl0));
        let (theirs, rest) = their_vp8(&p).expect("still a valid descriptor");
        let modulus = before.picture_id.unwrap().modulus();
        assert_eq!(theirs.picture_id, picture_id % modulus);
        assert_eq!(theirs.tl0_pic_idx, tl0);
        let expected = vp8::Descriptor {
            picture_id: before.picture_id.map(|f| PictureId {
                value: picture_id % modulus,
                ..f
            }),
            tl0_pic_idx: before.tl0_pic_idx.map(|f| Tl0PicIdx { value: tl0, ..f }),
            ..before
        };
        let after = vp8_ok(&p);
        assert_eq!(after, expected);
        assert_vp8_agrees(&p, &after, &theirs, &rest);
        assert_eq!(&rest[..], &[0x00, 0x01, 0x02, 0x03]);
    }
}

// ---------------------------------------------------------------------------------------------
// H.264

fn h264_ok(payload: &[u8]) -> h264::Info {
    h264::parse(payload).unwrap_or_else(|e| panic!("{payload:02x?}: {e}"))
}

/// A NAL unit of `nal_type` (NRI 3), `len` octets; `first_slice` sets the first bit after
/// the header (first_mb_in_slice = 0 in a slice), otherwise that octet is 0x40
/// (first_mb_in_slice = 1). No start-code emulation inside.
fn nal(nal_type: u8, len: usize, first_slice: bool) -> Vec<u8> {
    let mut out = vec![0x60 | nal_type];
    out.extend((1..len).map(|i| 0x20 + (i % 200) as u8));
    if len > 1 {
        out[1] = if first_slice { 0x88 } else { 0x40 };
    }
    out
}

fn stap_a(units: &[&[u8]]) -> Vec<u8> {
    let mut out = vec![0x78];
    for u in units {
        out.extend_from_slice(&(u.len() as u16).to_be_bytes());
        out.extend_from_slice(u);
    }
    out
}

/// FU-A fragments of `unit` in pieces of at most `size` octets.
fn fu_a(unit: &[u8], size: usize) -> Vec<Vec<u8>> {
    let body = &unit[1..];
    let chunks: Vec<&[u8]> = body.chunks(size).collect();
    let last = chunks.len() - 1;
    chunks
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut header = unit[0] & 0x1f;
            if i == 0 {
                header |= 0x80;
            }
            if i == last {
                header |= 0x40;
            }
            let mut out = vec![(unit[0] & 0xe0) | 28, header];
            out.extend_from_slice(c);
            out
        })
        .collect()
}

#[test]
fn h264_single_nal_units() {
    let idr = h264_ok(&nal(5, 50, true));
    assert_eq!(
        idr,
        h264::Info {
            packetization: Packetization::Single,
            nal_type: 5,
            starts_nal: true,
            ends_nal: true,
            starts_frame: true,
            idr: true,
            sps: false,
            pps: false,
        }
    );
    assert!(idr.keyframe());
    // A second slice of an IDR picture: key-frame data, but not where the frame starts.
    let idr2 = h264_ok(&nal(5, 50, false));
    assert!(idr2.keyframe() && idr2.idr && !idr2.starts_frame);

    let p = h264_ok(&nal(1, 50, true));
    assert!(!p.keyframe() && p.starts_frame && p.nal_type == 1);
    let p2 = h264_ok(&nal(1, 50, false));
    assert!(!p2.keyframe() && !p2.starts_frame);

    let sps = h264_ok(&[0x67, 0x42, 0xc0, 0x1f, 0xda]);
    assert!(sps.sps && !sps.pps && !sps.idr && sps.keyframe() && sps.starts_frame);
    let pps = h264_ok(&[0x68, 0xce, 0x3c, 0x80]);
    assert!(pps.pps && pps.keyframe() && pps.starts_frame);
    // SEI and access unit delimiter begin an access unit, but are no key frame.
    for t in [6u8, 9, 14, 15, 18] {
        let i = h264_ok(&[0x60 | t, 0x10]);
        assert!(i.starts_frame && !i.keyframe(), "type {t}");
    }
    // End of sequence / stream are one octet; partitions B and C, filler and the SVC types
    // never begin an access unit.
    for t in [10u8, 11] {
        let i = h264_ok(&[0x60 | t]);
        assert!(!i.starts_frame && !i.keyframe(), "type {t}");
    }
    for t in [3u8, 4, 12, 19, 20, 21, 22, 23] {
        let i = h264_ok(&[0x60 | t, 0xff]);
        assert!(!i.starts_frame && !i.keyframe(), "type {t}");
    }
    // Partition A carries the slice header.
    assert!(h264_ok(&[0x62, 0x80]).starts_frame);
    // The F bit and NRI do not matter.
    assert_eq!(h264_ok(&[0x85, 0x80]).nal_type, 5);
    assert!(h264_ok(&[0x05, 0x80]).idr);

    let info = frame_info(Codec::H264, &nal(5, 20, true)).unwrap();
    assert!(info.starts_frame && info.keyframe && info.starts_keyframe_picture());
    // An SPS of its own starts a frame and is key-frame data, but the picture starts later;
    // a second slice of the IDR picture does not start it either.
    let sps = frame_info(Codec::H264, &[0x67, 0x42, 0xc0, 0x1f]).unwrap();
    assert!(sps.starts_frame && sps.keyframe && !sps.starts_keyframe_picture());
    let second = frame_info(Codec::H264, &nal(5, 20, false)).unwrap();
    assert!(second.keyframe && !second.starts_keyframe_picture());
    assert_eq!((info.temporal_layer, info.layer_sync), (None, false));
    assert_eq!(info.details, Details::H264(idr_info(Packetization::Single)));
}

fn idr_info(packetization: Packetization) -> h264::Info {
    h264::Info {
        packetization,
        nal_type: 5,
        starts_nal: true,
        ends_nal: true,
        starts_frame: true,
        idr: true,
        sps: false,
        pps: false,
    }
}

#[test]
fn h264_stap_a_with_sps_pps_idr() {
    let sps = [0x67, 0x42, 0xc0, 0x1f, 0xda];
    let pps = [0x68, 0xce, 0x3c, 0x80];
    let idr = nal(5, 30, true);
    let p = stap_a(&[&sps, &pps, &idr]);
    let i = h264_ok(&p);
    assert_eq!(
        i,
        h264::Info {
            packetization: Packetization::StapA,
            nal_type: 7,
            starts_nal: true,
            ends_nal: true,
            starts_frame: true,
            idr: true,
            sps: true,
            pps: true,
        }
    );
    assert!(i.keyframe());
    // SPS + PPS alone (libwebrtc's and webrtc-rs's way before a fragmented IDR).
    let i = h264_ok(&stap_a(&[&sps, &pps]));
    assert!(i.keyframe() && i.sps && i.pps && !i.idr && i.starts_frame);
    // Only the IDR, not first.
    let i = h264_ok(&stap_a(&[&[0x06, 0x05, 0x01], &idr]));
    assert!(i.keyframe() && i.idr && i.starts_frame && i.nal_type == 6);
    // Two non-IDR slices; and one that does not begin the picture.
    let i = h264_ok(&stap_a(&[&nal(1, 10, true), &nal(1, 10, false)]));
    assert!(!i.keyframe() && i.starts_frame && i.nal_type == 1);
    let i = h264_ok(&stap_a(&[&nal(1, 10, false), &nal(1, 10, false)]));
    assert!(!i.keyframe() && !i.starts_frame);
    // A one-octet slice after the first unit is not read further.
    assert!(h264_ok(&stap_a(&[&sps, &[0x65]])).idr);

    let info = frame_info(Codec::H264, &p).unwrap();
    assert!(info.starts_frame && info.keyframe);
}

#[test]
fn h264_malformed_stap_a() {
    let sps = [0x67u8, 0x42, 0xc0];
    let good = stap_a(&[&sps, &sps]);
    assert_eq!(h264::parse(&[0x78]), Err(Error::TooShort));
    // One stray octet after the last unit.
    let mut trailing = good.clone();
    trailing.push(0);
    assert_eq!(h264::parse(&trailing), Err(Error::TooShort));
    // A size beyond the end.
    let mut long = good.clone();
    long[2] = 4;
    assert_eq!(h264::parse(&long), Err(Error::TooShort));
    // An empty unit.
    assert_eq!(h264::parse(&stap_a(&[&sps, &[]])), Err(Error::BadLength));
    // Units that are no NAL unit: nested STAP-A, FU-A, type 0.
    for bad in [[0x78u8, 0x00], [0x7c, 0x85], [0x60, 0x80]] {
        assert_eq!(
            h264::parse(&stap_a(&[&sps, &bad])),
            Err(Error::Unsupported),
            "{bad:02x?}"
        );
    }
    // A first slice without the octet that says whether it begins the picture.
    assert_eq!(h264::parse(&stap_a(&[&[0x65]])), Err(Error::TooShort));
    assert_eq!(frame_info(Codec::H264, &long), None);
}

#[test]
fn h264_fu_a_start_middle_end() {
    let idr = nal(5, 100, true);
    let frags = fu_a(&idr, 30);
    assert_eq!(frags.len(), 4);
    let start = h264_ok(&frags[0]);
    assert_eq!(
        start,
        h264::Info {
            packetization: Packetization::FuA,
            nal_type: 5,
            starts_nal: true,
            ends_nal: false,
            starts_frame: true,
            idr: true,
            sps: false,
            pps: false,
        }
    );
    assert!(start.keyframe());
    for middle in &frags[1..3] {
        let m = h264_ok(middle);
        assert_eq!((m.nal_type, m.starts_nal, m.ends_nal), (5, false, false));
        assert!(!m.keyframe() && !m.starts_frame);
    }
    let end = h264_ok(&frags[3]);
    assert_eq!(
        (end.nal_type, end.starts_nal, end.ends_nal),
        (5, false, true)
    );
    assert!(!end.keyframe() && !end.starts_frame);
    let info = frame_info(Codec::H264, &frags[0]).unwrap();
    assert!(info.starts_frame && info.keyframe);
    let info = frame_info(Codec::H264, &frags[1]).unwrap();
    assert!(!info.starts_frame && !info.keyframe);

    // Non-IDR first slice; IDR second slice; fragmented SPS.
    let p = h264_ok(&fu_a(&nal(1, 100, true), 30)[0]);
    assert!(p.starts_frame && !p.keyframe());
    let s2 = h264_ok(&fu_a(&nal(5, 100, false), 30)[0]);
    assert!(!s2.starts_frame && s2.keyframe());
    let sps = h264_ok(&fu_a(&nal(7, 100, false), 30)[0]);
    assert!(sps.starts_frame && sps.sps && sps.keyframe());
    // An empty middle fragment is fine.
    let m = h264_ok(&[0x7c, 0x05]);
    assert!(!m.starts_nal && !m.keyframe());
}

#[test]
fn h264_malformed_fu_a_and_unsupported_types() {
    assert_eq!(h264::parse(&[]), Err(Error::TooShort));
    assert_eq!(h264::parse(&[0x7c]), Err(Error::TooShort));
    // The start of a slice without its first octet.
    assert_eq!(h264::parse(&[0x7c, 0x85]), Err(Error::TooShort));
    // A single-NAL slice of one octet.
    assert_eq!(h264::parse(&[0x65]), Err(Error::TooShort));
    // Fragments of things that are no NAL unit.
    for t in [0u8, 24, 28, 31] {
        assert_eq!(
            h264::parse(&[0x7c, 0x80 | t, 0x80]),
            Err(Error::Unsupported),
            "{t}"
        );
    }
    // Interleaved-mode packets and undefined types.
    for t in [0u8, 25, 26, 27, 29, 30, 31] {
        assert_eq!(
            h264::parse(&[0x60 | t, 0x80, 0, 0, 0, 0]),
            Err(Error::Unsupported),
            "{t}"
        );
        assert_eq!(frame_info(Codec::H264, &[0x60 | t, 0x80, 0, 0]), None);
    }
}

#[test]
fn h264_every_prefix() {
    let sps = [0x67u8, 0x42, 0xc0, 0x1f];
    let pps = [0x68u8, 0xce, 0x3c];
    let idr = nal(5, 12, true);
    // A STAP-A parses exactly where its units end.
    let p = stap_a(&[&sps, &pps, &idr]);
    let full = h264_ok(&p);
    let ends = [1 + 2 + 4, 1 + 2 + 4 + 2 + 3, p.len()];
    for len in 0..=p.len() {
        let r = h264::parse(&p[..len]);
        match ends.iter().position(|&e| e == len) {
            Some(0) => assert!(matches!(r, Ok(i) if i.sps && !i.pps && !i.idr)),
            Some(1) => assert!(matches!(r, Ok(i) if i.sps && i.pps && !i.idr)),
            Some(_) => assert_eq!(r, Ok(full)),
            None => assert!(r.is_err(), "len {len}: {r:?}"),
        }
        let _ = frame_info(Codec::H264, &p[..len]);
    }
    // Single NAL unit and FU-A start: from the octet after the header on.
    for p in [idr.clone(), fu_a(&idr, 5)[0].clone()] {
        let full = h264_ok(&p);
        let header = if full.packetization == Packetization::FuA {
            2
        } else {
            1
        };
        for len in 0..=p.len() {
            let r = h264::parse(&p[..len]);
            if len <= header {
                assert_eq!(r, Err(Error::TooShort), "len {len}");
            } else {
                assert_eq!(r, Ok(full), "len {len}");
            }
            let _ = frame_info(Codec::H264, &p[..len]);
        }
    }
}

/// NAL units from webrtc-rs's depacketizer output in AVC form (32-bit length prefixes).
fn avc_units(mut out: &[u8]) -> Vec<Vec<u8>> {
    let mut units = Vec::new();
    while !out.is_empty() {
        let len = u32::from_be_bytes(out[..4].try_into().unwrap()) as usize;
        units.push(out[4..4 + len].to_vec());
        out = &out[4 + len..];
    }
    units
}

#[test]
fn h264_agrees_with_webrtc_rs_payloader_and_depacketizer() {
    // Access units in Annex B. webrtc-rs sends SPS and PPS as one STAP-A before the next NAL
    // unit, NAL units over the MTU as FU-A. Beside each NAL unit: whether it may begin an
    // access unit (parameter sets, SEI, the first slice of a picture), as the test built it.
    let sps = vec![0x67, 0x42, 0xc0, 0x1f, 0xda, 0x02, 0x80, 0xbf, 0xe5];
    let pps = vec![0x68, 0xce, 0x3c, 0x80];
    let access_units: Vec<Vec<(Vec<u8>, bool)>> = vec![
        vec![
            (sps.clone(), true),
            (pps.clone(), true),
            (nal(5, 2500, true), true),
        ],
        vec![(nal(1, 500, true), true)],
        vec![(nal(1, 2500, true), true)],
        vec![
            (nal(1, 300, true), true),
            (nal(1, 300, false), false),
            (nal(1, 1500, false), false),
        ],
        vec![
            (sps.clone(), true),
            (pps.clone(), true),
            (nal(5, 700, true), true),
        ],
        vec![
            (sps.clone(), true),
            (pps.clone(), true),
            (nal(5, 1300, true), true),
            (nal(5, 900, false), false),
        ],
        vec![(nal(6, 40, false), true), (nal(1, 100, true), true)],
    ];
    let mut payloader = H264Payloader::default();
    let mut depacketizer = H264Packet::default();
    depacketizer.is_avc = true;
    let mut seen_stap_a = 0;
    let mut seen_fu_a = 0;
    for (n, access_unit) in access_units.iter().enumerate() {
        let units: Vec<Vec<u8>> = access_unit.iter().map(|(u, _)| u.clone()).collect();
        let mut annex_b = Vec::new();
        for u in &units {
            annex_b.extend_from_slice(&[0, 0, 0, 1]);
            annex_b.extend_from_slice(u);
        }
        let packets = payloader
            .payload(1200, &Bytes::from(annex_b))
            .expect("webrtc-rs packetizes");
        let mut received: Vec<Vec<u8>> = Vec::new();
        let mut fragment_start: Option<h264::Info> = None;
        for (i, p) in packets.iter().enumerate() {
            let mine = h264_ok(p);
            let out = depacketizer
                .depacketize(p)
                .expect("webrtc-rs depacketizes its own");
            assert_eq!(mine.starts_nal, depacketizer.is_partition_head(p));
            let done = avc_units(&out);
            match mine.packetization {
                Packetization::Single | Packetization::StapA => {
                    assert!(fragment_start.is_none());
                    if mine.packetization == Packetization::StapA {
                        seen_stap_a += 1;
                    }
                    let types: Vec<u8> = done.iter().map(|u| u[0] & 0x1f).collect();
                    assert_eq!(mine.nal_type, types[0]);
                    assert_eq!(mine.idr, types.contains(&5), "{types:?}");
                    assert_eq!(mine.sps, types.contains(&7), "{types:?}");
                    assert_eq!(mine.pps, types.contains(&8), "{types:?}");
                }
                Packetization::FuA => {
                    seen_fu_a += 1;
                    if mine.starts_nal {
                        assert!(fragment_start.is_none());
                        fragment_start = Some(mine);
                    }
                    let start = fragment_start.expect("fragments begin with a start");
                    assert_eq!(mine.nal_type, start.nal_type);
                    assert!(mine.starts_nal || !mine.keyframe());
                    if mine.ends_nal {
                        assert_eq!(done.len(), 1);
                        assert_eq!(start.nal_type, done[0][0] & 0x1f);
                        assert_eq!(start.idr, done[0][0] & 0x1f == 5);
                        fragment_start = None;
                    } else {
                        assert!(done.is_empty());
                    }
                }
            }
            // Ground truth from what was sent: the first packet of each access unit starts
            // the frame, and is key-frame data when the access unit is a key frame; later
            // packets start one only where a NAL unit that may begin an access unit starts.
            let first_unit = received.len();
            let may_begin = mine.starts_nal && access_unit[first_unit].1;
            assert_eq!(mine.starts_frame, may_begin, "access unit {n} packet {i}");
            if i == 0 {
                assert!(mine.starts_frame);
                assert_eq!(mine.keyframe(), units[0][0] & 0x1f == 7, "access unit {n}");
            }
            let info = frame_info(Codec::H264, p).unwrap();
            assert_eq!(
                (info.starts_frame, info.keyframe),
                (mine.starts_frame, mine.keyframe())
            );
            received.extend(done);
        }
        assert!(fragment_start.is_none());
        assert_eq!(received, units, "webrtc-rs round trip of access unit {n}");
    }
    assert!(
        seen_stap_a >= 3 && seen_fu_a >= 10,
        "{seen_stap_a} {seen_fu_a}"
    );
}

#[test]
fn h264_random_stap_a_agrees_with_webrtc_rs() {
    let mut rng = Rng(0x4264_0000_0000_0001);
    let types = [1u8, 5, 6, 7, 8, 9, 10, 12, 13];
    for _ in 0..20_000 {
        let units: Vec<Vec<u8>> = (0..=rng.below(5))
            .map(|_| {
                let t = types[rng.below(types.len() as u64) as usize];
                nal(t, 2 + rng.below(30) as usize, rng.bit())
            })
            .collect();
        let refs: Vec<&[u8]> = units.iter().map(Vec::as_slice).collect();
        let p = stap_a(&refs);
        let mine = h264_ok(&p);
        let mut theirs = H264Packet::default();
        theirs.is_avc = true;
        let out = theirs.depacketize(&Bytes::from(p)).expect("valid STAP-A");
        let got = avc_units(&out);
        assert_eq!(got, units);
        let got_types: Vec<u8> = got.iter().map(|u| u[0] & 0x1f).collect();
        assert_eq!(mine.nal_type, got_types[0]);
        assert_eq!(mine.idr, got_types.contains(&5));
        assert_eq!(mine.sps, got_types.contains(&7));
        assert_eq!(mine.pps, got_types.contains(&8));
        assert_eq!(
            mine.keyframe(),
            got_types.iter().any(|t| matches!(t, 5 | 7 | 8))
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Codec selection

#[test]
fn codec_from_encoding_name_and_other_codecs() {
    assert_eq!(Codec::from_encoding_name("VP8"), Codec::Vp8);
    assert_eq!(Codec::from_encoding_name("vp8"), Codec::Vp8);
    assert_eq!(Codec::from_encoding_name("H264"), Codec::H264);
    assert_eq!(Codec::from_encoding_name("h264"), Codec::H264);
    for other in ["VP9", "AV1", "opus", "rtx", "H265", "", "VP8 "] {
        assert_eq!(Codec::from_encoding_name(other), Codec::Other, "{other}");
    }
    // A VP9 key frame's first packet (flexible mode, B bit, PictureID): no switching info.
    let vp9 = [0x88, 0x80, 0x01, 0x82, 0x49, 0x83, 0x42];
    assert_eq!(frame_info(Codec::Other, &vp9), None);
    assert_eq!(frame_info(Codec::Other, &[]), None);
    assert_eq!(frame_info(Codec::Other, &nal(5, 10, true)), None);
}

// ---------------------------------------------------------------------------------------------
// H.264 sequence parameter sets

/// Writes an SPS bit by bit (H.264 §7.3.2.1.1) as an encoder would, emulation prevention
/// included — the test's own writer, not the crate's.
#[derive(Default)]
struct SpsWriter {
    bits: Vec<bool>,
}

impl SpsWriter {
    fn u(&mut self, n: u32, value: u32) -> &mut Self {
        for i in (0..n).rev() {
            self.bits.push(value >> i & 1 == 1);
        }
        self
    }

    fn ue(&mut self, value: u32) -> &mut Self {
        let v = u64::from(value) + 1;
        let len = 64 - v.leading_zeros();
        for _ in 1..len {
            self.bits.push(false);
        }
        for i in (0..len).rev() {
            self.bits.push(v >> i & 1 == 1);
        }
        self
    }

    fn se(&mut self, value: i32) -> &mut Self {
        let k = if value > 0 { 2 * value - 1 } else { -2 * value };
        self.ue(k as u32)
    }

    /// The NAL unit: header 0x67, the bits with a stop bit, emulation prevention added.
    fn nal(&mut self) -> Vec<u8> {
        self.bits.push(true);
        while !self.bits.len().is_multiple_of(8) {
            self.bits.push(false);
        }
        let raw: Vec<u8> = self
            .bits
            .chunks(8)
            .map(|c| c.iter().fold(0u8, |b, bit| (b << 1) | u8::from(*bit)))
            .collect();
        let mut nal = vec![0x67];
        let mut zeros = 0;
        for b in raw {
            if zeros >= 2 && b <= 3 {
                nal.push(3);
                zeros = 0;
            }
            zeros = if b == 0 { zeros + 1 } else { 0 };
            nal.push(b);
        }
        nal
    }
}

/// A baseline (66) or high (100) profile SPS of `mbs` macroblocks wide and `units` map units
/// high, with `crop` (left, right, top, bottom) and, for field coding, `frame_mbs_only` false.
fn sps(profile: u32, mbs: (u32, u32), frame_mbs_only: bool, crop: [u32; 4]) -> Vec<u8> {
    let mut w = SpsWriter::default();
    w.u(8, profile).u(8, 0xc0).u(8, 31).ue(0);
    if profile == 100 {
        // 4:2:0, 8 bits, no bypass, a scaling matrix with one list present.
        w.ue(1).ue(0).ue(0).u(1, 0).u(1, 1);
        for i in 0..8 {
            w.u(1, u32::from(i == 0));
            if i == 0 {
                for _ in 0..16 {
                    w.se(1);
                }
            }
        }
    }
    w.ue(0).ue(1).u(1, 0).se(-2).se(3).ue(2).se(1).se(-1); // frame_num bits, POC type 1
    w.ue(1)
        .u(1, 0)
        .ue(mbs.0 - 1)
        .ue(mbs.1 - 1)
        .u(1, u32::from(frame_mbs_only));
    if !frame_mbs_only {
        w.u(1, 0);
    }
    w.u(1, 1);
    if crop == [0; 4] {
        w.u(1, 0);
    } else {
        w.u(1, 1).ue(crop[0]).ue(crop[1]).ue(crop[2]).ue(crop[3]);
    }
    w.u(1, 0); // no VUI
    w.nal()
}

#[test]
fn sps_sizes_with_cropping_field_coding_and_scaling_lists() {
    assert_eq!(
        h264::sps_size(&sps(66, (80, 45), true, [0; 4])),
        Some((1280, 720))
    );
    assert_eq!(
        h264::sps_size(&sps(66, (20, 12), true, [0, 0, 0, 6])),
        Some((320, 180))
    );
    // 1080p as encoders write it: 68 macroblock rows, 8 lines cropped at the bottom.
    assert_eq!(
        h264::sps_size(&sps(100, (120, 68), true, [0, 0, 0, 4])),
        Some((1920, 1080))
    );
    // Field coding: map units are field macroblock rows (twice the lines, twice the crop).
    assert_eq!(
        h264::sps_size(&sps(100, (40, 15), false, [0, 0, 0, 0])),
        Some((640, 480))
    );
    assert_eq!(
        h264::sps_size(&sps(66, (40, 23), true, [1, 1, 0, 4])),
        Some((636, 360))
    );
}

#[test]
fn sps_found_alone_or_in_a_stap_a_and_never_a_panic() {
    let unit = sps(66, (40, 23), true, [0, 0, 0, 4]);
    assert_eq!(h264::sps_in(&unit), Some(&unit[..]));
    let pps = [0x68u8, 0xce, 0x3c, 0x80];
    let mut stap = vec![24u8];
    for nal in [&pps[..], &unit[..]] {
        stap.extend((nal.len() as u16).to_be_bytes());
        stap.extend(nal);
    }
    assert_eq!(
        h264::sps_in(&stap).and_then(h264::sps_size),
        Some((640, 360))
    );
    assert_eq!(h264::sps_in(&pps), None, "a PPS alone");
    assert_eq!(h264::sps_in(&stap[..stap.len() - 1]), None, "a cut STAP-A");
    for n in 0..unit.len() {
        let _ = h264::sps_size(&unit[..n]);
    }
    // Random bytes after an SPS header: answers or refuses, never panics.
    let mut rng = Rng(5);
    for _ in 0..20_000 {
        let len = rng.below(40) as usize;
        let mut bytes: Vec<u8> = (0..len).map(|_| rng.below(256) as u8).collect();
        if let Some(first) = bytes.first_mut() {
            *first = 0x67;
        }
        let _ = h264::sps_size(&bytes);
        let _ = h264::sps_in(&bytes);
    }
}
