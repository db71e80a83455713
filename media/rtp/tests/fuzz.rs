//! Every parser and in-place rewriter, fed random and mutated packets, must not panic.

use tutti_rtp::rtcp::{self as tr, Packet, ReportBlock, SenderInfo, TwccRecorder};
use tutti_rtp::rtp;

/// xorshift64*: deterministic pseudo-random numbers without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for b in buf {
            *b = self.next() as u8;
        }
    }
}

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

fn exercise_rtp(buf: &mut [u8], rng: &mut Rng) -> bool {
    let Ok(h) = rtp::parse(buf) else {
        return false;
    };
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
