//! Interoperability with webrtc-srtp, an independent SRTP implementation, in both directions.

use tutti_srtp::{Context, Error, Profile};
use webrtc_srtp::context::Context as Peer;
use webrtc_srtp::protection_profile::ProtectionProfile;

const PROFILES: [Profile; 2] = [Profile::AeadAes128Gcm, Profile::Aes128CmHmacSha1_80];

fn peer_profile(profile: Profile) -> ProtectionProfile {
    match profile {
        Profile::AeadAes128Gcm => ProtectionProfile::AeadAes128Gcm,
        Profile::Aes128CmHmacSha1_80 => ProtectionProfile::Aes128CmHmacSha1_80,
    }
}

fn keys(profile: Profile) -> (Vec<u8>, Vec<u8>) {
    let key = (0..profile.key_len() as u8)
        .map(|b| b.wrapping_mul(37))
        .collect();
    let salt = (0..profile.salt_len() as u8).map(|b| b ^ 0xa5).collect();
    (key, salt)
}

fn ours(profile: Profile) -> Context {
    let (key, salt) = keys(profile);
    Context::new(profile, &key, &salt).unwrap()
}

fn theirs(profile: Profile) -> Peer {
    let (key, salt) = keys(profile);
    Peer::new(&key, &salt, peer_profile(profile), None, None).unwrap()
}

/// An RTP packet with `csrcs` CSRCs and, if `ext`, a one-byte header extension (RFC 8285)
/// carrying an audio level and a 3-byte element, padded to a word.
fn rtp(seq: u16, ssrc: u32, csrcs: u8, ext: bool, payload_len: usize) -> Vec<u8> {
    let mut p = vec![0x80 | csrcs | if ext { 0x10 } else { 0 }, 111];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 960).to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    for i in 0..u32::from(csrcs) {
        p.extend_from_slice(&(0x1000 + i).to_be_bytes());
    }
    if ext {
        p.extend_from_slice(&[0xbe, 0xde, 0, 2]);
        p.extend_from_slice(&[0x10, 0x85, 0x22, 1, 2, 3, 0, 0]);
    }
    p.extend((0..payload_len).map(|i| (i * 7) as u8));
    p
}

/// A compound packet: sender report with one report block, then an SDES CNAME chunk.
fn rtcp_compound(ssrc: u32) -> Vec<u8> {
    let mut p = vec![0x81, 200, 0, 12];
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend((0..44).map(|i| i as u8)); // sender info (20) + report block (24)
    p.extend_from_slice(&[0x81, 202, 0, 3]);
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(&[1, 5, b't', b'u', b't', b't', b'i', 0]);
    p
}

/// Protects with our context, decrypts with webrtc-srtp.
fn ours_to_theirs_rtp(tx: &mut Context, rx: &mut Peer, plain: &[u8]) {
    let mut buf = plain.to_vec();
    buf.resize(plain.len() + tx.profile().rtp_overhead(), 0);
    let n = tx.protect_rtp(&mut buf, plain.len()).unwrap();
    assert_eq!(n, buf.len());
    let decrypted = rx.decrypt_rtp(&buf[..n]).unwrap();
    assert_eq!(&decrypted[..], plain);
}

/// Encrypts with webrtc-srtp, unprotects with our context.
fn theirs_to_ours_rtp(tx: &mut Peer, rx: &mut Context, plain: &[u8]) {
    let encrypted = tx.encrypt_rtp(plain).unwrap();
    let mut buf = encrypted.to_vec();
    let n = buf.len();
    assert_eq!(rx.unprotect_rtp(&mut buf, n), Ok(plain.len()));
    assert_eq!(&buf[..plain.len()], plain);
}

#[test]
fn rtp_with_csrcs_and_extensions_both_ways() {
    for profile in PROFILES {
        let (mut our_tx, mut our_rx) = (ours(profile), ours(profile));
        let (mut their_tx, mut their_rx) = (theirs(profile), theirs(profile));
        for (seq, csrcs, ext, payload) in [
            (100u16, 0u8, false, 160usize),
            (101, 2, false, 33),
            (102, 0, true, 1),
            (103, 3, true, 1000),
            (104, 15, true, 0),
        ] {
            let plain = rtp(seq, 0x1234_5678, csrcs, ext, payload);
            ours_to_theirs_rtp(&mut our_tx, &mut their_rx, &plain);
            theirs_to_ours_rtp(&mut their_tx, &mut our_rx, &plain);
        }
    }
}

#[test]
fn rtcp_compound_both_ways() {
    for profile in PROFILES {
        let (mut our_tx, mut our_rx) = (ours(profile), ours(profile));
        let (mut their_tx, mut their_rx) = (theirs(profile), theirs(profile));
        for ssrc in [0x0102_0304u32, 0xdead_beef, 0x0102_0304] {
            let plain = rtcp_compound(ssrc);

            let mut buf = plain.clone();
            buf.resize(plain.len() + profile.rtcp_overhead(), 0);
            let n = our_tx.protect_rtcp(&mut buf, plain.len()).unwrap();
            assert_eq!(n, buf.len());
            // The first 8 bytes stay clear, the rest is encrypted.
            assert_eq!(buf[..8], plain[..8]);
            assert_ne!(buf[8..plain.len()], plain[8..]);
            let decrypted = their_rx.decrypt_rtcp(&buf[..n]).unwrap();
            assert_eq!(&decrypted[..], &plain[..]);

            let encrypted = their_tx.encrypt_rtcp(&plain).unwrap();
            let mut buf = encrypted.to_vec();
            let n = buf.len();
            assert_eq!(our_rx.unprotect_rtcp(&mut buf, n), Ok(plain.len()));
            assert_eq!(buf[..plain.len()], plain[..]);
        }
    }
}

#[test]
fn roc_wrap_interoperates_both_ways() {
    for profile in PROFILES {
        let (mut our_tx, mut our_rx) = (ours(profile), ours(profile));
        let (mut their_tx, mut their_rx) = (theirs(profile), theirs(profile));
        // Every packet around two wraps, with jumps of a quarter range in between, so the
        // ROC goes 0 -> 1 -> 2 on both sides.
        let around_wrap = || (0xffc0u16..=0xffff).chain(0..0x40);
        let seqs: Vec<u16> = around_wrap()
            .chain([0x4000, 0x8000, 0xc000])
            .chain(around_wrap())
            .collect();
        for seq in seqs {
            let plain = rtp(seq, 0x0bad_cafe, 1, seq % 2 == 0, 50);
            ours_to_theirs_rtp(&mut our_tx, &mut their_rx, &plain);
            theirs_to_ours_rtp(&mut their_tx, &mut our_rx, &plain);
        }
    }
}

#[test]
fn tampered_peer_packets_fail_and_replays_are_caught() {
    for profile in PROFILES {
        let mut our_rx = ours(profile);
        let mut their_tx = theirs(profile);
        let plain = rtp(9, 77, 1, true, 64);
        let encrypted = their_tx.encrypt_rtp(&plain).unwrap().to_vec();
        let n = encrypted.len();

        let mut bad = encrypted.clone();
        bad[n - 1] ^= 1;
        assert_eq!(our_rx.unprotect_rtp(&mut bad, n), Err(Error::AuthFailed));
        let mut bad = encrypted.clone();
        bad[30] ^= 0x80;
        assert_eq!(our_rx.unprotect_rtp(&mut bad, n), Err(Error::AuthFailed));

        let mut good = encrypted.clone();
        assert_eq!(our_rx.unprotect_rtp(&mut good, n), Ok(plain.len()));
        let mut again = encrypted.clone();
        assert_eq!(our_rx.unprotect_rtp(&mut again, n), Err(Error::Replayed));

        let encrypted = their_tx.encrypt_rtcp(&rtcp_compound(77)).unwrap().to_vec();
        let n = encrypted.len();
        let mut bad = encrypted.clone();
        bad[12] ^= 4;
        assert_eq!(our_rx.unprotect_rtcp(&mut bad, n), Err(Error::AuthFailed));
        let mut good = encrypted.clone();
        assert!(our_rx.unprotect_rtcp(&mut good, n).is_ok());
        let mut again = encrypted.clone();
        assert_eq!(our_rx.unprotect_rtcp(&mut again, n), Err(Error::Replayed));
    }
}
