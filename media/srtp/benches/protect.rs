//! Cost of protecting one forwarded video packet (1,200 bytes of RTP), per SRTP profile: what the
//! bridge pays per receiver on the fan-out path. The baseline, measured in the same run on the
//! same packets, is webrtc-srtp, an independent SRTP implementation. Prints one JSON line per
//! profile with medians over rounds (the machines are shared and noisy; compare the ratio).
//!
//! `cargo bench -p tutti-srtp` (add `-- --rounds 21` for more rounds).

use std::hint::black_box;
use std::time::Instant;

use tutti_srtp::{Context, Profile};
use webrtc_srtp::context::Context as Baseline;
use webrtc_srtp::protection_profile::ProtectionProfile;

const PACKET_LEN: usize = 1_200;
const PACKETS_PER_ROUND: u32 = 50_000;

fn main() {
    let rounds = std::env::args()
        .skip_while(|a| a != "--rounds")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(11);
    for profile in [Profile::AeadAes128Gcm, Profile::Aes128CmHmacSha1_80] {
        let key = vec![0x2b; profile.key_len()];
        let salt = vec![0x5c; profile.salt_len()];
        let mut ours = Context::new(profile, &key, &salt).expect("valid keys");
        let baseline_profile = match profile {
            Profile::AeadAes128Gcm => ProtectionProfile::AeadAes128Gcm,
            Profile::Aes128CmHmacSha1_80 => ProtectionProfile::Aes128CmHmacSha1_80,
        };
        let mut theirs =
            Baseline::new(&key, &salt, baseline_profile, None, None).expect("valid keys");

        let mut packet = vec![0u8; PACKET_LEN + profile.rtp_overhead()];
        packet[0] = 0x80;
        packet[1] = 100;
        packet[8..12].copy_from_slice(&0x1234_5678u32.to_be_bytes());
        for (i, b) in packet[12..PACKET_LEN].iter_mut().enumerate() {
            *b = i as u8;
        }

        let mut seq = 0u16;
        let mut next_packet = |packet: &mut [u8]| {
            seq = seq.wrapping_add(1);
            packet[2..4].copy_from_slice(&seq.to_be_bytes());
        };
        let mut ours_ns = Vec::with_capacity(rounds);
        let mut theirs_ns = Vec::with_capacity(rounds);
        // Alternate the two so that a noisy moment hits both alike.
        for _ in 0..rounds {
            let start = Instant::now();
            for _ in 0..PACKETS_PER_ROUND {
                next_packet(&mut packet);
                black_box(ours.protect_rtp(&mut packet, PACKET_LEN).expect("fits"));
            }
            ours_ns.push(start.elapsed().as_nanos() as f64 / f64::from(PACKETS_PER_ROUND));

            let start = Instant::now();
            for _ in 0..PACKETS_PER_ROUND {
                next_packet(&mut packet);
                black_box(
                    theirs
                        .encrypt_rtp(&packet[..PACKET_LEN])
                        .expect("valid RTP"),
                );
            }
            theirs_ns.push(start.elapsed().as_nanos() as f64 / f64::from(PACKETS_PER_ROUND));
        }
        let ours = median(&mut ours_ns);
        let theirs = median(&mut theirs_ns);
        println!(
            "{{\"bench\":\"protect_rtp\",\"profile\":\"{profile:?}\",\"packet_bytes\":{PACKET_LEN},\
             \"rounds\":{rounds},\"ns_per_packet\":{ours:.0},\"baseline_ns_per_packet\":{theirs:.0},\
             \"ratio_vs_baseline\":{:.2}}}",
            ours / theirs
        );
    }
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
