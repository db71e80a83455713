//! Every parser and in-place rewriter, fed random and mutated packets, must not panic.

use tutti_rtp::codec::{self, h264, vp8, Codec, Details};
use tutti_rtp::rtcp::{self as tr, Packet, ReportBlock, SenderInfo, TwccRecorder};
use tutti_rtp::rtp;

mod support;
use support::Rng;

/// Drains every lazily decoded part of every packet; returns how many parsed.
fn exercise_rtcp(buf: &[u8]) -> usize {
    let mut ok = 0;
    for packet in tr::packets(buf).with_raw() {
        let Ok((packet, raw)) = packet else { break };
        assert!(!raw.is_empty() && raw.len() % 4 == 0);
        ok += 1;
        match packet {
            Packet::SenderReport { reports, .. } | Packet::ReceiverReport { reports, .. } => {
                assert!(reports.count() <= 31);
            }
            Packet::Fir { entries, .. } => {
                entries.for_each(drop);
            }
            Packet::Nack { lost, .. } => {
                assert!(lost.count() <= raw.len() / 4 * 17);
            }
            Packet::TransportCc { raw, .. } => {
                let mut n = 0u32;
                let status = tr::for_each_twcc_status(raw, |_, _| n += 1);
                let arrival = tr::for_each_twcc_arrival(raw, |_, _| n += 1);
                assert_eq!(status.is_ok(), arrival.is_ok());
            }
            Packet::Remb { ssrcs, .. } | Packet::Bye { ssrcs } => {
                ssrcs.for_each(drop);
            }
            Packet::Pli { .. } | Packet::Other { .. } => {}
        }
    }
    // The transport-cc decoders must also survive being handed anything.
    let _ = tr::for_each_twcc_status(buf, |_, _| {});
    let _ = tr::for_each_twcc_arrival(buf, |_, _| {});
    ok
}

/// Runs every codec parser and rewriter over `payload` (rewriting a copy); returns whether it
/// parsed as VP8 and as H.264.
fn exercise_codec(payload: &[u8], rng: &mut Rng) -> (bool, bool) {
    let vp8 = vp8::parse(payload);
    if let Ok(d) = vp8 {
        assert!(d.payload_offset < payload.len());
        assert!(d.keyframe <= d.starts_frame());
        let copy = &mut payload.to_vec()[..];
        let (picture_id, tl0) = (rng.next() as u16, rng.next() as u8);
        assert_eq!(
            vp8::set_picture_id(copy, &d, picture_id),
            d.picture_id.is_some()
        );
        assert_eq!(vp8::set_tl0_pic_idx(copy, &d, tl0), d.tl0_pic_idx.is_some());
        let after = vp8::parse(copy).expect("rewriting keeps the descriptor valid");
        assert_eq!(
            after.picture_id.map(|p| p.value),
            d.picture_id.map(|p| picture_id % p.modulus())
        );
        assert_eq!(
            after.tl0_pic_idx.map(|t| t.value),
            d.tl0_pic_idx.map(|_| tl0)
        );
        assert_eq!(after.payload_offset, d.payload_offset);
        assert_eq!(&copy[d.payload_offset..], &payload[d.payload_offset..]);
        if let Some((w, h)) = vp8::keyframe_size(payload, &d) {
            assert!(d.keyframe && w < 0x4000 && h < 0x4000);
        }
        // A descriptor applied to a shorter or different buffer writes nothing out of bounds.
        let cut = rng.below(payload.len() as u64) as usize;
        let _ = vp8::set_picture_id(&mut copy[..cut], &d, 1);
        let _ = vp8::set_tl0_pic_idx(&mut copy[..cut], &d, 1);
        let _ = vp8::keyframe_size(&payload[..cut], &d);
    }
    let h264 = h264::parse(payload);
    if let Ok(i) = h264 {
        assert!(i.starts_nal || !i.keyframe() && !i.starts_frame);
        assert!((1..=23).contains(&i.nal_type));
    }
    match codec::frame_info(Codec::Vp8, payload) {
        Some(f) => assert_eq!(f.details, Details::Vp8(vp8.unwrap())),
        None => assert!(vp8.is_err()),
    }
    match codec::frame_info(Codec::H264, payload) {
        Some(f) => assert_eq!(f.details, Details::H264(h264.unwrap())),
        None => assert!(h264.is_err()),
    }
    assert_eq!(codec::frame_info(Codec::Other, payload), None);
    (vp8.is_ok(), h264.is_ok())
}

fn exercise_rtp(buf: &mut [u8], rng: &mut Rng) -> bool {
    let Ok(h) = rtp::parse(buf) else {
        return false;
    };
    exercise_codec(h.payload(buf), rng);
    assert!(h.payload_offset <= h.payload_end && h.payload_end <= buf.len());
    for (id, range) in rtp::extensions(buf, &h).collect::<Vec<_>>() {
        assert!(range.end <= buf.len());
        assert_eq!(
            rtp::find_extension(buf, &h, id).map(|r| r.start <= range.start),
            Some(true)
        );
        let _ = rtp::read_u16_extension(buf, range.clone());
        let _ = rtp::write_u16_extension(buf, range, 7);
    }
    let from = rng.next() as u8;
    let to = rng.next() as u8;
    let _ = rtp::rename_extension(buf, &h, from, to);
    let _ = rtp::blank_extension(buf, &h, to);
    let _ = rtp::find_extension(buf, &h, from);
    let mut out = vec![0u8; rng.below(buf.len() as u64 + 8) as usize];
    if let Ok(n) = rtp::copy_with_extension(buf, &h, (from % 14) + 1, b"mid", &mut out) {
        let added = rtp::parse(&out[..n]).expect("a packet with an element added is valid");
        assert_eq!(added.payload(&out[..n]), h.payload(buf));
    }
    if let Ok(n) = rtp::write_rtx(buf, &h, 1, 2, 3, &mut out) {
        let rtx = rtp::parse(&out[..n]).expect("RTX of a valid packet is valid");
        assert_eq!(
            rtx.payload_end - rtx.payload_offset,
            h.payload_end - h.payload_offset + 2
        );
        let (len, osn) = rtp::unwrap_rtx(&mut out[..n], &rtx, h.ssrc, h.payload_type)
            .expect("an RTX packet made here unwraps");
        assert_eq!((len, osn), (h.payload_end, h.sequence));
        assert_eq!(&out[h.payload_offset..len], h.payload(buf));
    }
    let _ = rtp::unwrap_rtx(buf, &h, 1, 2);
    rtp::set_payload_type(buf, 5);
    rtp::set_sequence(buf, 6);
    rtp::set_ssrc(buf, 7);
    true
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let mut buf = [0u8; 160];
    let mut parsed_rtp = 0;
    let mut parsed_rtcp = 0;
    for _ in 0..200_000 {
        let len = rng.below(buf.len() as u64 + 1) as usize;
        let data = &mut buf[..len];
        rng.fill(data);
        // Bias towards version 2 so the parsers get past the first check.
        if let Some(b0) = data.first_mut() {
            if rng.below(4) != 0 {
                *b0 = (*b0 & 0x3f) | 0x80;
            }
        }
        if data.len() >= 4 && rng.below(2) == 0 {
            // Plausible RTCP type and a length that fits.
            data[1] = 200 + rng.below(8) as u8;
            let words = (len / 4).saturating_sub(1) as u16;
            data[2..4].copy_from_slice(&words.to_be_bytes());
        }
        let _ = rtp::is_rtcp(data);
        parsed_rtcp += exercise_rtcp(data);
        parsed_rtp += usize::from(exercise_rtp(data, &mut rng));
    }
    // The fuzzer must actually reach the deeper code paths.
    assert!(parsed_rtp > 1000, "{parsed_rtp}");
    assert!(parsed_rtcp > 1000, "{parsed_rtcp}");
}

/// Valid packets of every kind this crate writes, to mutate.
fn seeds() -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    let mut out = [0u8; 1500];
    let block = ReportBlock {
        ssrc: 1,
        cumulative_lost: -3,
        ..ReportBlock::default()
    };
    let mut push = |n: usize, out: &[u8]| seeds.push(out[..n].to_vec());
    push(
        tr::write_sender_report(&mut out, 1, &SenderInfo::default(), &[block; 2]).unwrap(),
        &out,
    );
    push(
        tr::write_receiver_report(&mut out, 1, &[block]).unwrap(),
        &out,
    );
    push(tr::write_pli(&mut out, 1, 2).unwrap(), &out);
    push(tr::write_fir(&mut out, 1, 2, 3).unwrap(), &out);
    push(
        tr::write_nack(&mut out, 1, 2, &[1, 5, 40, 65535]).unwrap(),
        &out,
    );
    push(tr::write_remb(&mut out, 1, 123_456, &[9, 8]).unwrap(), &out);
    push(tr::write_bye(&mut out, &[4, 5]).unwrap(), &out);
    let mut rec = TwccRecorder::new(256);
    for seq in (0..200u16).filter(|q| q % 7 != 3) {
        rec.record(
            seq,
            i64::from(seq) * if seq % 11 == 0 { 70_000 } else { 900 },
        );
    }
    push(rec.write_feedback(&mut out, 1, 2).unwrap(), &out);
    // RTP: CSRCs, one-byte extensions, padding.
    let rtp_one = [
        0xb2, 0xe0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0, 5, 0xbe, 0xde, 0, 2, 0x11,
        0xaa, 0xbb, 0x20, 0xcc, 0, 0, 0, 1, 2, 3, 0, 0, 3,
    ];
    seeds.push(rtp_one.to_vec());
    // RTP: two-byte extensions.
    let rtp_two = [
        0x90, 0x60, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0x10, 0x00, 0, 2, 1, 2, 0xaa, 0xbb, 200, 0, 0, 0,
        9, 9, 9,
    ];
    seeds.push(rtp_two.to_vec());
    seeds
}

#[test]
fn mutated_valid_packets_never_panic() {
    let seeds = seeds();
    for seed in &seeds[..seeds.len() - 2] {
        assert_eq!(exercise_rtcp(seed), 1, "seed parses: {seed:?}");
    }
    let mut rng = Rng(0xfeed_f00d_dead_beef);
    let mut compound = Vec::new();
    for round in 0..100_000 {
        let mut data = seeds[rng.below(seeds.len() as u64) as usize].clone();
        if round % 3 == 0 {
            // Compound packets: chain another seed before mutating.
            compound.clear();
            compound.extend_from_slice(&data);
            compound.extend_from_slice(&seeds[rng.below(seeds.len() as u64) as usize]);
            data.clone_from(&compound);
        }
        for _ in 0..=rng.below(4) {
            let i = rng.below(data.len() as u64) as usize;
            data[i] ^= 1 << rng.below(8);
        }
        if rng.below(5) == 0 {
            data.truncate(rng.below(data.len() as u64 + 1) as usize);
        }
        exercise_rtcp(&data);
        exercise_rtp(&mut data, &mut rng);
    }
}

#[test]
fn recorder_survives_arbitrary_input() {
    let mut rng = Rng(0x0123_4567_89ab_cdef);
    let mut out = [0u8; 1500];
    for _ in 0..50 {
        let mut rec = TwccRecorder::new(rng.below(2000) as usize);
        for _ in 0..2000 {
            let arrival = match rng.below(10) {
                0 => i64::MIN,
                1 => i64::MAX,
                _ => (rng.next() >> rng.below(64)) as i64,
            };
            rec.record(rng.next() as u16, arrival);
            if rng.below(20) == 0 {
                let len = rng.below(out.len() as u64) as usize;
                if let Some(n) = rec.write_feedback(&mut out[..len], 1, 2) {
                    assert!(n <= len);
                    let mut count = 0;
                    tr::for_each_twcc_status(&out[..n], |_, _| count += 1).unwrap();
                    assert!(count > 0);
                }
            }
        }
    }
}

/// Valid VP8 and H.264 payloads of every shape the codec module reads, to mutate.
fn codec_seeds() -> Vec<Vec<u8>> {
    vec![
        vec![0x10, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0x68, 0x01, 0xaa],
        vec![0x90, 0x80, 0x05, 0x01],
        vec![
            0x90, 0xf0, 0xab, 0xcd, 0x42, 0xa7, 0x00, 0x00, 0x00, 0x9d, 0x01, 0x2a, 1, 2, 3, 4,
        ],
        vec![0x90, 0x60, 0x07, 0x40, 0x01, 0x02],
        vec![0x80, 0x10, 0xe5, 0x00],
        vec![0x65, 0x88, 0x84, 0x00],
        vec![0x41, 0x9a, 0x00],
        vec![
            0x78, 0x00, 0x04, 0x67, 0x42, 0xc0, 0x1f, 0x00, 0x03, 0x68, 0xce, 0x3c, 0x00, 0x03,
            0x65, 0x88, 0x84,
        ],
        vec![0x7c, 0x85, 0x88, 0x84, 0x00],
        vec![0x7c, 0x05, 0x01, 0x02],
        vec![0x7c, 0x45, 0x01, 0x02],
    ]
}

#[test]
fn codec_payloads_never_panic() {
    let mut rng = Rng(0xc0de_c0de_0000_0001);
    let mut buf = [0u8; 64];
    let (mut vp8_ok, mut h264_ok) = (0, 0);
    for _ in 0..200_000 {
        let len = rng.below(buf.len() as u64 + 1) as usize;
        let data = &mut buf[..len];
        rng.fill(data);
        let (v, h) = exercise_codec(data, &mut rng);
        vp8_ok += usize::from(v);
        h264_ok += usize::from(h);
    }
    let seeds = codec_seeds();
    for seed in &seeds {
        assert_ne!(
            exercise_codec(seed, &mut rng),
            (false, false),
            "{seed:02x?}"
        );
    }
    for _ in 0..200_000 {
        let mut data = seeds[rng.below(seeds.len() as u64) as usize].clone();
        for _ in 0..=rng.below(3) {
            let i = rng.below(data.len() as u64) as usize;
            data[i] ^= 1 << rng.below(8);
        }
        if rng.below(4) == 0 {
            data.truncate(rng.below(data.len() as u64 + 1) as usize);
        }
        let (v, h) = exercise_codec(&data, &mut rng);
        vp8_ok += usize::from(v);
        h264_ok += usize::from(h);
    }
    // The fuzzer must reach the parsers' deeper paths.
    assert!(vp8_ok > 100_000, "{vp8_ok}");
    assert!(h264_ok > 50_000, "{h264_ok}");
}
