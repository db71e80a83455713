//! RTP header view and rewriting checked against webrtc-rs `rtp`.

use bytes::Bytes;
use rtp::header::{Extension, Header as TheirHeader};
use rtp::packet::Packet as TheirPacket;
use tutti_rtp::rtp::{self as tr, PROFILE_ONE_BYTE, PROFILE_TWO_BYTE};
use tutti_rtp::Error;
use webrtc_util::marshal::{Marshal, Unmarshal};

fn ext(id: u8, payload: &'static [u8]) -> Extension {
    Extension {
        id,
        payload: Bytes::from_static(payload),
    }
}

fn packet(profile: u16, extensions: Vec<Extension>, padding: bool) -> TheirPacket {
    TheirPacket {
        header: TheirHeader {
            version: 2,
            padding,
            extension: !extensions.is_empty(),
            marker: true,
            payload_type: 96,
            sequence_number: 65535,
            timestamp: 0xdead_beef,
            ssrc: 0x1234_5678,
            csrc: vec![1, 2, 3],
            extension_profile: profile,
            extensions,
            extensions_padding: 0,
        },
        payload: Bytes::from_static(b"hello payload!!"),
    }
}

fn theirs(buf: &[u8]) -> TheirPacket {
    TheirPacket::unmarshal(&mut Bytes::copy_from_slice(buf)).expect("webrtc-rs parses it")
}

#[test]
fn header_with_csrcs_one_byte_extensions_and_padding() {
    let p = packet(
        PROFILE_ONE_BYTE,
        vec![ext(1, b"ab"), ext(3, b"c"), ext(14, b"wxyz")],
        true,
    );
    let buf = p.marshal().unwrap();
    let h = tr::parse(&buf).unwrap();
    assert!(h.marker);
    assert_eq!(
        (h.payload_type, h.sequence, h.timestamp, h.ssrc),
        (96, 65535, 0xdead_beef, 0x1234_5678)
    );
    assert_eq!(h.payload(&buf), b"hello payload!!");
    assert!(h.payload_end < buf.len(), "padding excluded");
    let block = h.extensions.unwrap();
    assert_eq!(block.profile, PROFILE_ONE_BYTE);
    assert_eq!(block.offset, 12 + 12 + 4);
    assert_eq!(block.offset + block.len, h.payload_offset);
    let value = |id| tr::find_extension(&buf, &h, id).map(|r| &buf[r]);
    assert_eq!(value(1), Some(&b"ab"[..]));
    assert_eq!(value(3), Some(&b"c"[..]));
    assert_eq!(value(14), Some(&b"wxyz"[..]));
    assert_eq!(value(2), None);
    assert_eq!(value(0), None);
    let ids: Vec<u8> = tr::extensions(&buf, &h).map(|(id, _)| id).collect();
    assert_eq!(ids, [1, 3, 14]);
    assert_eq!(
        tr::read_u16_extension(&buf, tr::find_extension(&buf, &h, 1).unwrap()),
        Some(0x6162)
    );
    assert_eq!(
        tr::read_u16_extension(&buf, tr::find_extension(&buf, &h, 3).unwrap()),
        None
    );
}

#[test]
fn two_byte_extensions_found_and_renamed() {
    let p = packet(
        PROFILE_TWO_BYTE,
        vec![
            ext(1, b""),
            ext(200, b"0123456789abcdefghij"),
            ext(7, b"xy"),
        ],
        false,
    );
    let mut buf = p.marshal().unwrap().to_vec();
    let h = tr::parse(&buf).unwrap();
    assert_eq!(h.extensions.unwrap().profile, PROFILE_TWO_BYTE);
    assert_eq!(tr::find_extension(&buf, &h, 1).map(|r| r.len()), Some(0));
    let r = tr::find_extension(&buf, &h, 200).unwrap();
    assert_eq!(&buf[r], b"0123456789abcdefghij");
    assert!(tr::rename_extension(&mut buf, &h, 200, 201));
    assert!(tr::rename_extension(&mut buf, &h, 7, 255));
    assert!(!tr::rename_extension(&mut buf, &h, 9, 10), "absent id");
    let back = theirs(&buf);
    assert_eq!(
        back.header.get_extension(201).as_deref(),
        Some(&b"0123456789abcdefghij"[..])
    );
    assert_eq!(back.header.get_extension(255).as_deref(), Some(&b"xy"[..]));
    assert_eq!(back.header.get_extension(200), None);
}

#[test]
fn one_byte_rename_keeps_length_and_rejects_ids_above_14() {
    let p = packet(PROFILE_ONE_BYTE, vec![ext(5, b"12"), ext(6, b"345")], false);
    let mut buf = p.marshal().unwrap().to_vec();
    let h = tr::parse(&buf).unwrap();
    assert!(!tr::rename_extension(&mut buf, &h, 5, 15));
    assert!(!tr::rename_extension(&mut buf, &h, 5, 0));
    assert!(tr::rename_extension(&mut buf, &h, 6, 12));
    let back = theirs(&buf);
    assert_eq!(back.header.get_extension(12).as_deref(), Some(&b"345"[..]));
    assert_eq!(back.header.get_extension(5).as_deref(), Some(&b"12"[..]));
    // Rewrite the transport-wide sequence number in place.
    let r = tr::find_extension(&buf, &h, 5).unwrap();
    assert!(tr::write_u16_extension(&mut buf, r.clone(), 0xbeef));
    assert_eq!(tr::read_u16_extension(&buf, r), Some(0xbeef));
    assert!(!tr::write_u16_extension(&mut buf, 0..3, 1));
    let len = buf.len();
    assert!(!tr::write_u16_extension(&mut buf, len - 1..len + 1, 1));
}

#[test]
fn blanked_extensions_become_padding_that_other_stacks_skip() {
    for (profile, ids) in [
        (PROFILE_ONE_BYTE, [3u8, 10, 14]),
        (PROFILE_TWO_BYTE, [3, 200, 14]),
    ] {
        let p = packet(
            profile,
            vec![ext(ids[0], b"ab"), ext(ids[1], b"mid1"), ext(ids[2], b"x")],
            true,
        );
        let mut buf = p.marshal().unwrap().to_vec();
        let before = buf.len();
        let h = tr::parse(&buf).unwrap();
        assert!(tr::blank_extension(&mut buf, &h, ids[1]));
        assert!(!tr::blank_extension(&mut buf, &h, ids[1]), "already gone");
        assert!(!tr::blank_extension(&mut buf, &h, 0));
        assert_eq!(buf.len(), before);
        let h = tr::parse(&buf).unwrap();
        let left: Vec<u8> = tr::extensions(&buf, &h).map(|(id, _)| id).collect();
        assert_eq!(left, [ids[0], ids[2]]);
        assert_eq!(h.payload(&buf), b"hello payload!!");
        let back = theirs(&buf);
        assert_eq!(back.header.get_extension(ids[1]), None);
        assert_eq!(
            back.header.get_extension(ids[0]).as_deref(),
            Some(&b"ab"[..])
        );
        assert_eq!(
            back.header.get_extension(ids[2]).as_deref(),
            Some(&b"x"[..])
        );
    }
}

#[test]
fn an_extension_is_added_in_the_blocks_form_and_other_stacks_read_it() {
    let mid = b"video-12";
    for (profile, extensions, id) in [
        (PROFILE_ONE_BYTE, vec![ext(3, b"ab"), ext(10, b"0")], 10u8),
        (PROFILE_ONE_BYTE, Vec::new(), 4),
        (PROFILE_TWO_BYTE, vec![ext(3, b"ab"), ext(200, b"x")], 201),
    ] {
        for padding in [false, true] {
            let p = packet(profile, extensions.clone(), padding);
            let src = p.marshal().unwrap();
            let h = tr::parse(&src).unwrap();
            let mut out = [0u8; 256];
            let n = tr::copy_with_extension(&src, &h, id, mid, &mut out).unwrap();
            let written = tr::parse(&out[..n]).unwrap();
            assert_eq!(written.payload(&out[..n]), b"hello payload!!");
            assert_eq!(
                n - written.payload_end,
                src.len() - h.payload_end,
                "padding kept"
            );
            let ids: Vec<u8> = tr::extensions(&out[..n], &written)
                .map(|(i, _)| i)
                .collect();
            assert_eq!(ids.iter().filter(|&&i| i == id).count(), 1, "{ids:?}");
            let back = theirs(&out[..n]);
            assert_eq!(back.header.get_extension(id).as_deref(), Some(&mid[..]));
            assert_eq!(back.header.csrc, vec![1, 2, 3]);
            assert_eq!(
                (back.header.sequence_number, back.header.ssrc),
                (65535, 0x1234_5678)
            );
            for e in extensions.iter().filter(|e| e.id != id) {
                assert_eq!(back.header.get_extension(e.id), Some(e.payload.clone()));
            }
            assert!(tr::copy_with_extension(&src, &h, id, mid, &mut out[..n - 1]).is_err());
        }
    }
    // What the one-byte form cannot carry.
    let src = packet(PROFILE_ONE_BYTE, vec![ext(3, b"ab")], false)
        .marshal()
        .unwrap();
    let h = tr::parse(&src).unwrap();
    let mut out = [0u8; 256];
    for (id, value) in [(15u8, &b"0"[..]), (0, b"0"), (5, b""), (5, &[b'a'; 17][..])] {
        assert_eq!(
            tr::copy_with_extension(&src, &h, id, value, &mut out),
            Err(Error::Unsupported)
        );
    }
}

#[test]
fn setters_rewrite_fields_in_place() {
    let mut buf = packet(PROFILE_ONE_BYTE, vec![ext(1, b"ab")], true)
        .marshal()
        .unwrap()
        .to_vec();
    tr::set_sequence(&mut buf, 4242);
    tr::set_ssrc(&mut buf, 0xcafe_babe);
    tr::set_payload_type(&mut buf, 111);
    let back = theirs(&buf);
    assert_eq!(back.header.sequence_number, 4242);
    assert_eq!(back.header.ssrc, 0xcafe_babe);
    assert_eq!(back.header.payload_type, 111);
    assert!(back.header.marker, "marker kept");
    assert_eq!(back.header.csrc, [1, 2, 3]);
    // Short buffers are left alone rather than panicking.
    let mut short = [0x80u8; 3];
    tr::set_ssrc(&mut short, 1);
    tr::set_sequence(&mut short[..1], 1);
    assert_eq!(short, [0x80; 3]);
}

#[test]
fn rtx_packet_is_parsed_by_webrtc() {
    let original = packet(PROFILE_ONE_BYTE, vec![ext(1, b"ab"), ext(3, b"c")], true);
    let buf = original.marshal().unwrap();
    let h = tr::parse(&buf).unwrap();
    let mut out = [0u8; 1500];
    let n = tr::write_rtx(&buf, &h, 0x0bad_f00d, 97, 7, &mut out).unwrap();
    assert_eq!(n, h.payload_offset + 2 + 15);
    let rtx = theirs(&out[..n]);
    assert_eq!(rtx.header.ssrc, 0x0bad_f00d);
    assert_eq!(rtx.header.payload_type, 97);
    assert_eq!(rtx.header.sequence_number, 7);
    assert!(!rtx.header.padding, "padding dropped");
    assert!(rtx.header.marker);
    assert_eq!(rtx.header.timestamp, original.header.timestamp);
    assert_eq!(rtx.header.csrc, original.header.csrc);
    assert_eq!(rtx.header.extensions, original.header.extensions);
    assert_eq!(&rtx.payload[..2], &65535u16.to_be_bytes());
    assert_eq!(&rtx.payload[2..], &original.payload[..]);
    assert_eq!(
        tr::write_rtx(&buf, &h, 1, 97, 7, &mut out[..n - 1]),
        Err(Error::BufferTooSmall)
    );
}

#[test]
fn rtx_unwraps_to_the_original_as_webrtc_parses_it() {
    let original = packet(PROFILE_ONE_BYTE, vec![ext(1, b"ab"), ext(3, b"c")], true);
    let buf = original.marshal().unwrap();
    let h = tr::parse(&buf).unwrap();
    let mut rtx = [0u8; 1500];
    let n = tr::write_rtx(&buf, &h, 0x0bad_f00d, 97, 7, &mut rtx).unwrap();
    let rtx_header = tr::parse(&rtx[..n]).unwrap();
    let (len, osn) = tr::unwrap_rtx(&mut rtx[..n], &rtx_header, 0xcafe_babe, 96).unwrap();
    assert_eq!(osn, 65535);
    let back = theirs(&rtx[..len]);
    assert_eq!(back.header.ssrc, 0xcafe_babe);
    assert_eq!(back.header.payload_type, 96);
    assert_eq!(back.header.sequence_number, 65535);
    assert!(!back.header.padding);
    assert_eq!(back.header.extensions, original.header.extensions);
    assert_eq!(back.payload, original.payload);
    // An RTX packet without room for the original sequence number is refused.
    let short = tr::parse(&rtx[..h.payload_offset + 1]);
    if let Ok(short_header) = short {
        let mut copy = rtx;
        assert_eq!(
            tr::unwrap_rtx(&mut copy[..h.payload_offset + 1], &short_header, 1, 2),
            Err(Error::BadLength)
        );
    }
}

#[test]
fn rtcp_demux() {
    assert!(tr::is_rtcp(&[0x80, 200]));
    assert!(tr::is_rtcp(&[0x81, 205, 0, 1]));
    assert!(tr::is_rtcp(&[0xbf, 223]));
    assert!(!tr::is_rtcp(&[0x80, 96]));
    assert!(!tr::is_rtcp(&[0x80, 0x80 | 96]), "RTP PT 96 with marker");
    assert!(!tr::is_rtcp(&[0x80, 224]));
    assert!(!tr::is_rtcp(&[0x40, 200]), "version 1");
    assert!(!tr::is_rtcp(&[0x80]));
    assert!(!tr::is_rtcp(&[]));
}

#[test]
fn malformed_headers_are_rejected() {
    let good = packet(PROFILE_ONE_BYTE, vec![ext(1, b"ab")], true)
        .marshal()
        .unwrap()
        .to_vec();
    assert!(tr::parse(&good).is_ok());
    assert_eq!(tr::parse(&good[..11]).err(), Some(Error::TooShort));
    let mut v1 = good.clone();
    v1[0] = (v1[0] & 0x3f) | 0x40;
    assert_eq!(tr::parse(&v1).err(), Some(Error::BadVersion));
    // CSRC list longer than the packet.
    assert_eq!(tr::parse(&good[..20]).err(), Some(Error::TooShort));
    // Extension block longer than the packet.
    let mut long_ext = good.clone();
    long_ext[24 + 2..24 + 4].copy_from_slice(&1000u16.to_be_bytes());
    assert_eq!(tr::parse(&long_ext).err(), Some(Error::TooShort));
    // Zero padding count and padding reaching into the header.
    let mut pad = good.clone();
    *pad.last_mut().unwrap() = 0;
    assert_eq!(tr::parse(&pad).err(), Some(Error::BadLength));
    *pad.last_mut().unwrap() = 255;
    assert_eq!(tr::parse(&pad).err(), Some(Error::BadLength));
}

#[test]
fn padding_packets_parse_as_padding_only_with_their_extension() {
    let mut out = [0u8; 400];
    let n = tr::write_padding(&mut out, (0x0102_0304, 97, 7, 9000), 5, 200).unwrap();
    assert_eq!(n, 12 + 8 + 200);
    let mut raw = &out[..n];
    let theirs = TheirPacket::unmarshal(&mut raw).unwrap();
    assert!(theirs.header.padding);
    assert_eq!(theirs.header.ssrc, 0x0102_0304);
    assert_eq!(theirs.header.payload_type, 97);
    assert_eq!(theirs.header.sequence_number, 7);
    assert_eq!(theirs.header.timestamp, 9000);
    assert_eq!(theirs.header.get_extension(5).unwrap().len(), 2);
    assert!(theirs.payload.is_empty(), "padding only");
    let ours = tr::parse(&out[..n]).unwrap();
    assert_eq!(ours.payload_end, ours.payload_offset);
    let range = tr::find_extension(&out[..n], &ours, 5).unwrap();
    assert!(tr::write_u16_extension(&mut out[..n], range, 0xabcd));
    assert_eq!(
        tr::write_padding(&mut out, (1, 97, 7, 9000), 15, 10),
        Err(Error::BadLength)
    );
    assert_eq!(
        tr::write_padding(&mut [0u8; 30], (1, 97, 7, 9000), 5, 200),
        Err(Error::BufferTooSmall)
    );
}
