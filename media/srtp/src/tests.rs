use super::*;

fn unhex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// A context keyed directly with session keys, as the RFC 7714 vectors are given.
fn gcm_session_context(key: &[u8], salt: &[u8]) -> Context {
    let keys = || SessionKeys::new(Profile::AeadAes128Gcm, key, salt, &[]).unwrap();
    Context {
        profile: Profile::AeadAes128Gcm,
        rtp: keys(),
        rtcp: keys(),
        outbound_rtp: FxHashMap::default(),
        outbound_rtcp: FxHashMap::default(),
        inbound_rtp: FxHashMap::default(),
        inbound_rtcp: FxHashMap::default(),
    }
}

const RFC7714_KEY: &str = "000102030405060708090a0b0c0d0e0f";
const RFC7714_SALT: &str = "517569642070726f2071756f";
const RFC7714_RTP: &str = "8040f17b8041f8d35501a0b247616c6c696120657374206f6d6e6973\
    2064697669736120696e207061727465732074726573";
const RFC7714_SRTP: &str = "8040f17b8041f8d35501a0b2f24de3a3fb34de6cacba861c9d7e4bcabe633bd5\
    0d294e6f42a5f47a51c7d19b36de3adf8833899d7f27beb16a9152cf765ee4390cce";
const RFC7714_RTCP: &str = "81c8000d4d6172734e5450314e545032525450200000042a0000e9304c756e61\
    deadbeefdeadbeefdeadbeefdeadbeefdeadbeef";
const RFC7714_SRTCP: &str = "81c8000d4d61727363e94885dcdab67ca727d7662f6b7e997ff5c0f76c06f32d\
    c676a5f1730d6fda4ce09b4686303ded0bb9275bc84aa45896cf4d2fc5abf87245d9eade800005d4";
const RFC7714_SRTCP_TAG_ONLY_TRAILER: &str = "841dd9683dd78ec92ae58790125f62b3000005d4";

#[test]
fn profile_parameters() {
    assert_eq!(Profile::from_id(1), Some(Profile::Aes128CmHmacSha1_80));
    assert_eq!(Profile::from_id(7), Some(Profile::AeadAes128Gcm));
    assert_eq!(Profile::from_id(2), None);
    for p in [Profile::AeadAes128Gcm, Profile::Aes128CmHmacSha1_80] {
        assert_eq!(Profile::from_id(p.id()), Some(p));
        assert_eq!(p.key_len(), 16);
    }
    let gcm = Profile::AeadAes128Gcm;
    assert_eq!(
        (gcm.salt_len(), gcm.rtp_overhead(), gcm.rtcp_overhead()),
        (12, 16, 20)
    );
    assert_eq!(gcm.keying_material_len(), 56);
    let cm = Profile::Aes128CmHmacSha1_80;
    assert_eq!(
        (cm.salt_len(), cm.rtp_overhead(), cm.rtcp_overhead()),
        (14, 10, 14)
    );
    assert_eq!(cm.keying_material_len(), 60);
}

#[test]
fn rfc7714_16_1_1_srtp_vector() {
    let mut tx = gcm_session_context(&unhex(RFC7714_KEY), &unhex(RFC7714_SALT));
    let plain = unhex(RFC7714_RTP);
    let mut buf = plain.clone();
    buf.resize(plain.len() + 16, 0);
    let n = tx.protect_rtp(&mut buf, plain.len()).unwrap();
    assert_eq!(buf[..n], unhex(RFC7714_SRTP)[..]);

    let mut rx = gcm_session_context(&unhex(RFC7714_KEY), &unhex(RFC7714_SALT));
    let n = rx.unprotect_rtp(&mut buf, n).unwrap();
    assert_eq!(buf[..n], plain[..]);
}

#[test]
fn rfc7714_17_1_srtcp_vector() {
    let mut tx = gcm_session_context(&unhex(RFC7714_KEY), &unhex(RFC7714_SALT));
    tx.outbound_rtcp.insert(0x4d61_7273, 0x5d4);
    let plain = unhex(RFC7714_RTCP);
    let mut buf = plain.clone();
    buf.resize(plain.len() + 20, 0);
    let n = tx.protect_rtcp(&mut buf, plain.len()).unwrap();
    assert_eq!(buf[..n], unhex(RFC7714_SRTCP)[..]);
    assert_eq!(tx.outbound_rtcp[&0x4d61_7273], 0x5d5);

    let mut rx = gcm_session_context(&unhex(RFC7714_KEY), &unhex(RFC7714_SALT));
    let n = rx.unprotect_rtcp(&mut buf, n).unwrap();
    assert_eq!(buf[..n], plain[..]);
}

#[test]
fn rfc7714_17_3_unencrypted_srtcp_vector() {
    let mut rx = gcm_session_context(&unhex(RFC7714_KEY), &unhex(RFC7714_SALT));
    let plain = unhex(RFC7714_RTCP);
    let mut packet = plain.clone();
    packet.extend(unhex(RFC7714_SRTCP_TAG_ONLY_TRAILER));
    let mut buf = packet.clone();
    let n = rx.unprotect_rtcp(&mut buf, packet.len()).unwrap();
    assert_eq!(buf[..n], plain[..]);

    let mut rx = gcm_session_context(&unhex(RFC7714_KEY), &unhex(RFC7714_SALT));
    let mut tampered = packet.clone();
    tampered[20] ^= 1;
    assert_eq!(
        rx.unprotect_rtcp(&mut tampered, packet.len()),
        Err(Error::AuthFailed)
    );
}

#[test]
fn unencrypted_srtcp_with_hmac_is_authenticated_not_decrypted() {
    let mut tx = Context::new(Profile::Aes128CmHmacSha1_80, &[3; 16], &[4; 14]).unwrap();
    let mut rx = Context::new(Profile::Aes128CmHmacSha1_80, &[3; 16], &[4; 14]).unwrap();
    let plain = unhex(RFC7714_RTCP);
    // Build an E=0 packet by hand: clear payload, index word, HMAC over both.
    let mut buf = plain.clone();
    buf.extend_from_slice(&9u32.to_be_bytes());
    let Transform::CmHmac(keys) = &tx.rtcp.transform else {
        unreachable!()
    };
    let tag = hmac_sha1(&keys.auth, &buf, &[]);
    buf.extend_from_slice(&tag.as_ref()[..10]);
    let len = buf.len();
    assert_eq!(rx.unprotect_rtcp(&mut buf, len), Ok(plain.len()));
    assert_eq!(buf[..plain.len()], plain[..]);

    // The sender's own output always sets E.
    let mut out = plain.clone();
    out.resize(plain.len() + 14, 0);
    let n = tx.protect_rtcp(&mut out, plain.len()).unwrap();
    assert_eq!(out[n - 14] & 0x80, 0x80);
}

#[test]
fn header_length_counts_csrcs_and_extension() {
    let mut p = vec![0u8; 40];
    p[0] = 0x80;
    assert_eq!(rtp_header_len(&p), Ok(12));
    p[0] = 0x82; // two CSRCs
    assert_eq!(rtp_header_len(&p), Ok(20));
    p[0] = 0x92; // plus extension of 2 words
    p[22] = 0;
    p[23] = 2;
    assert_eq!(rtp_header_len(&p), Ok(32));
    p[23] = 3; // 36 bytes: still fits in 40
    assert_eq!(rtp_header_len(&p), Ok(36));
    p[23] = 4; // exactly 40
    assert_eq!(rtp_header_len(&p), Ok(40));
    p[23] = 5;
    assert_eq!(rtp_header_len(&p), Err(Error::TooShort));
    assert_eq!(rtp_header_len(&p[..21]), Err(Error::TooShort));
    assert_eq!(rtp_header_len(&p[..11]), Err(Error::TooShort));
    assert_eq!(rtp_header_len(&[]), Err(Error::TooShort));
}

#[test]
fn index_estimation_follows_rfc3711_appendix_a() {
    // In order within a ROC.
    assert_eq!(estimate_index(5 << 16 | 100, 101), 5 << 16 | 101);
    // Wrap forward: 65535 then 0 is the next ROC.
    assert_eq!(estimate_index(5 << 16 | 0xffff, 0), 6 << 16);
    // Late packet from the previous ROC after the wrap.
    assert_eq!(estimate_index(6 << 16 | 3, 0xfffe), 5 << 16 | 0xfffe);
    // Large but less than half-range jumps stay in the ROC.
    assert_eq!(estimate_index(5 << 16 | 0x9000, 0x1001), 5 << 16 | 0x1001);
    assert_eq!(estimate_index(5 << 16 | 0x9000, 0x0fff), 6 << 16 | 0x0fff);
    // Below ROC 0 is impossible and reads as a jump forward in ROC 0.
    assert_eq!(estimate_index(10, 0xfff0), 0xfff0);
}

fn rtp_packet(seq: u16, ssrc: u32, payload_len: usize, room: usize) -> Vec<u8> {
    let mut p = vec![0x80, 96];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&1234u32.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend((0..payload_len).map(|i| i as u8));
    p.resize(p.len() + room, 0);
    p
}

fn rr_packet(ssrc: u32, room: usize) -> Vec<u8> {
    let mut p = vec![0x81, 201, 0, 7];
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend((0..24).map(|i| i as u8));
    p.resize(p.len() + room, 0);
    p
}

/// A fresh context with the keys every test sender and receiver share.
fn ctx(profile: Profile) -> Context {
    Context::new(profile, &[0x42; 16], &vec![0x17; profile.salt_len()]).unwrap()
}

fn pair(profile: Profile) -> (Context, Context) {
    (ctx(profile), ctx(profile))
}

const PROFILES: [Profile; 2] = [Profile::AeadAes128Gcm, Profile::Aes128CmHmacSha1_80];

#[test]
fn keying_material_roles_match() {
    for profile in PROFILES {
        let material: Vec<u8> = (0..profile.keying_material_len() as u8).collect();
        let (mut c_out, mut c_in) =
            Context::pair_from_keying_material(profile, &material, true).unwrap();
        let (mut s_out, mut s_in) =
            Context::pair_from_keying_material(profile, &material, false).unwrap();
        let oh = profile.rtp_overhead();
        let mut p = rtp_packet(1, 9, 20, oh);
        let n = c_out.protect_rtp(&mut p, 32).unwrap();
        assert_eq!(s_in.unprotect_rtp(&mut p, n), Ok(32));
        let mut p = rtp_packet(1, 9, 20, oh);
        let n = s_out.protect_rtp(&mut p, 32).unwrap();
        assert_eq!(c_in.unprotect_rtp(&mut p, n), Ok(32));
        // The client's outbound keys are not the server's outbound keys.
        let mut p = rtp_packet(2, 9, 20, oh);
        let n = c_out.protect_rtp(&mut p, 32).unwrap();
        assert_eq!(c_in.unprotect_rtp(&mut p, n), Err(Error::AuthFailed));
        assert_eq!(
            Context::pair_from_keying_material(profile, &material[1..], true).err(),
            Some(Error::BadKeyLength)
        );
    }
}

#[test]
fn rejects_wrong_key_lengths() {
    assert_eq!(
        Context::new(Profile::AeadAes128Gcm, &[0; 16], &[0; 14]).err(),
        Some(Error::BadKeyLength)
    );
    assert_eq!(
        Context::new(Profile::Aes128CmHmacSha1_80, &[0; 16], &[0; 12]).err(),
        Some(Error::BadKeyLength)
    );
    assert_eq!(
        Context::new(Profile::Aes128CmHmacSha1_80, &[0; 32], &[0; 14]).err(),
        Some(Error::BadKeyLength)
    );
}

#[test]
fn rtp_round_trip_keeps_header_clear_and_encrypts_payload() {
    for profile in PROFILES {
        let (mut tx, mut rx) = pair(profile);
        let plain = rtp_packet(77, 0xabcd, 100, 0);
        let mut buf = rtp_packet(77, 0xabcd, 100, profile.rtp_overhead());
        let n = tx.protect_rtp(&mut buf, plain.len()).unwrap();
        assert_eq!(n, plain.len() + profile.rtp_overhead());
        assert_eq!(buf[..12], plain[..12]);
        assert_ne!(buf[12..plain.len()], plain[12..]);
        assert_eq!(rx.unprotect_rtp(&mut buf, n), Ok(plain.len()));
        assert_eq!(buf[..plain.len()], plain[..]);
    }
}

#[test]
fn tampering_fails_authentication_without_committing_state() {
    for profile in PROFILES {
        let (mut tx, mut rx) = pair(profile);
        let mut good = rtp_packet(5, 1, 30, profile.rtp_overhead());
        let n = tx.protect_rtp(&mut good, 42).unwrap();
        for i in 0..n {
            let mut bad = good.clone();
            bad[i] ^= 0x40;
            assert_eq!(
                rx.unprotect_rtp(&mut bad, n),
                Err(Error::AuthFailed),
                "{profile:?} byte {i}"
            );
        }
        // Nothing was committed by the failures: not the SSRC, not the index.
        assert!(rx.inbound_rtp.is_empty());
        assert_eq!(rx.unprotect_rtp(&mut good, n), Ok(42));

        let mut good = rr_packet(1, profile.rtcp_overhead());
        let n = tx.protect_rtcp(&mut good, 32).unwrap();
        for i in 0..n {
            let mut bad = good.clone();
            bad[i] ^= 0x01;
            assert_eq!(
                rx.unprotect_rtcp(&mut bad, n),
                Err(Error::AuthFailed),
                "{profile:?} rtcp byte {i}"
            );
        }
        assert!(rx.inbound_rtcp.is_empty());
        assert_eq!(rx.unprotect_rtcp(&mut good, n), Ok(32));
    }
}

#[test]
fn replays_are_rejected_and_reordering_accepted() {
    for profile in PROFILES {
        let (mut tx, mut rx) = pair(profile);
        let oh = profile.rtp_overhead();
        let packets: Vec<(Vec<u8>, usize)> = (0..200u16)
            .map(|seq| {
                let mut p = rtp_packet(seq, 7, 10, oh);
                let n = tx.protect_rtp(&mut p, 22).unwrap();
                (p, n)
            })
            .collect();
        let mut recv = |i: usize| {
            let (mut p, n) = packets[i].clone();
            rx.unprotect_rtp(&mut p, n)
        };
        assert_eq!(recv(10), Ok(22));
        assert_eq!(recv(10), Err(Error::Replayed));
        assert_eq!(recv(5), Ok(22)); // late but new
        assert_eq!(recv(5), Err(Error::Replayed));
        assert_eq!(recv(199), Ok(22));
        assert_eq!(recv(199 - 127), Ok(22)); // oldest index still in the window
        assert_eq!(recv(199 - 128), Err(Error::Replayed)); // fell out of the window
        assert_eq!(recv(11), Err(Error::Replayed));

        let mut rtcp: Vec<(Vec<u8>, usize)> = Vec::new();
        for _ in 0..3 {
            let mut p = rr_packet(7, profile.rtcp_overhead());
            let n = tx.protect_rtcp(&mut p, 32).unwrap();
            rtcp.push((p, n));
        }
        let mut recv_rtcp = |i: usize| {
            let (mut p, n) = rtcp[i].clone();
            rx.unprotect_rtcp(&mut p, n)
        };
        assert_eq!(recv_rtcp(1), Ok(32));
        assert_eq!(recv_rtcp(1), Err(Error::Replayed));
        assert_eq!(recv_rtcp(0), Ok(32));
        assert_eq!(recv_rtcp(2), Ok(32));
        assert_eq!(recv_rtcp(0), Err(Error::Replayed));
    }
}

#[test]
fn a_packet_from_before_the_first_sent_across_a_wrap_is_refused_not_misnumbered() {
    for profile in PROFILES {
        let (mut tx, mut rx) = pair(profile);
        let oh = profile.rtp_overhead();
        let send = |tx: &mut Context, seq: u16| {
            let mut p = rtp_packet(seq, 3, 10, oh);
            tx.protect_rtp(&mut p, 22).map(|n| (p, n))
        };
        let (mut first, n) = send(&mut tx, 5).unwrap();
        assert_eq!(rx.unprotect_rtp(&mut first, n), Ok(22));
        assert_eq!(send(&mut tx, 0xfff0).err(), Some(Error::Replayed));
        assert_eq!(
            tx.outbound_rtp[&3], 5,
            "the refused packet leaves the ROC alone"
        );
        for seq in 6..20 {
            let (mut p, n) = send(&mut tx, seq).unwrap();
            assert_eq!(rx.unprotect_rtp(&mut p, n), Ok(22), "{profile:?} seq {seq}");
        }
    }
}

#[test]
fn roc_advances_across_sequence_wrap_including_reordering() {
    for profile in PROFILES {
        let (mut tx, mut rx) = pair(profile);
        let oh = profile.rtp_overhead();
        let seqs: Vec<u16> = (0xfff0..=0xffff).chain(0..16).collect();
        let mut protected: Vec<(Vec<u8>, usize)> = seqs
            .iter()
            .map(|&seq| {
                let mut p = rtp_packet(seq, 3, 10, oh);
                let n = tx.protect_rtp(&mut p, 22).unwrap();
                (p, n)
            })
            .collect();
        assert_eq!(tx.outbound_rtp[&3], 1 << 16 | 15);
        // Deliver the two packets around the wrap swapped.
        protected.swap(15, 16);
        for (mut p, n) in protected {
            assert_eq!(rx.unprotect_rtp(&mut p, n), Ok(22), "{profile:?}");
        }
        assert_eq!(rx.inbound_rtp[&3].top(), 1 << 16 | 15);
        // The same keys with the ROC a fresh sender would use (0) do not authenticate.
        let mut stale = ctx(profile);
        let mut p = rtp_packet(20, 3, 10, oh);
        let n = stale.protect_rtp(&mut p, 22).unwrap();
        assert_eq!(rx.unprotect_rtp(&mut p, n), Err(Error::AuthFailed));
    }
}

#[test]
fn inbound_ssrc_table_is_bounded() {
    for profile in PROFILES {
        let (mut tx, mut rx) = pair(profile);
        let heap_before = rx.heap_bytes();
        for ssrc in 0..MAX_INBOUND_SSRCS as u32 {
            let mut p = rtp_packet(1, ssrc, 10, profile.rtp_overhead());
            let n = tx.protect_rtp(&mut p, 22).unwrap();
            assert_eq!(rx.unprotect_rtp(&mut p, n), Ok(22));
            let mut p = rr_packet(ssrc, profile.rtcp_overhead());
            let n = tx.protect_rtcp(&mut p, 32).unwrap();
            assert_eq!(rx.unprotect_rtcp(&mut p, n), Ok(32));
        }
        assert!(rx.heap_bytes() > heap_before);
        let mut p = rtp_packet(1, 1000, 10, profile.rtp_overhead());
        let n = tx.protect_rtp(&mut p, 22).unwrap();
        assert_eq!(rx.unprotect_rtp(&mut p, n), Err(Error::TooManySsrcs));
        let mut p = rr_packet(1000, profile.rtcp_overhead());
        let n = tx.protect_rtcp(&mut p, 32).unwrap();
        assert_eq!(rx.unprotect_rtcp(&mut p, n), Err(Error::TooManySsrcs));
        // Known SSRCs keep working.
        let mut p = rtp_packet(2, 0, 10, profile.rtp_overhead());
        let n = tx.protect_rtp(&mut p, 22).unwrap();
        assert_eq!(rx.unprotect_rtp(&mut p, n), Ok(22));
    }
}

#[test]
fn protect_needs_room_for_the_trailer() {
    for profile in PROFILES {
        let (mut tx, _) = pair(profile);
        let mut p = rtp_packet(1, 1, 10, profile.rtp_overhead() - 1);
        assert_eq!(tx.protect_rtp(&mut p, 22), Err(Error::BufferTooSmall));
        let mut p = rr_packet(1, profile.rtcp_overhead() - 1);
        assert_eq!(tx.protect_rtcp(&mut p, 32), Err(Error::BufferTooSmall));
        // A length beyond the buffer is a caller error, not a panic.
        let mut p = [0u8; 20];
        assert_eq!(tx.protect_rtp(&mut p, 21), Err(Error::BufferTooSmall));
        assert_eq!(tx.unprotect_rtp(&mut p, 21), Err(Error::BufferTooSmall));
        assert_eq!(tx.protect_rtcp(&mut p, 21), Err(Error::BufferTooSmall));
        assert_eq!(tx.unprotect_rtcp(&mut p, 21), Err(Error::BufferTooSmall));
        // Too short to be RTP/RTCP at all.
        assert_eq!(tx.protect_rtp(&mut p, 11), Err(Error::TooShort));
        assert_eq!(tx.protect_rtcp(&mut p, 7), Err(Error::TooShort));
    }
}

#[test]
fn truncated_packets_are_rejected() {
    for profile in PROFILES {
        let (mut tx, mut rx) = pair(profile);
        let mut rtp = rtp_packet(1, 1, 40, profile.rtp_overhead());
        let n = tx.protect_rtp(&mut rtp, 52).unwrap();
        for len in 0..n {
            let mut b = rtp.clone();
            let r = rx.unprotect_rtp(&mut b, len);
            if len < 12 + profile.rtp_overhead() {
                assert_eq!(r, Err(Error::TooShort));
            } else {
                assert_eq!(r, Err(Error::AuthFailed));
            }
        }
        let mut rtcp = rr_packet(1, profile.rtcp_overhead());
        let n = tx.protect_rtcp(&mut rtcp, 32).unwrap();
        for len in 0..n {
            let mut b = rtcp.clone();
            let r = rx.unprotect_rtcp(&mut b, len);
            if len < 8 + profile.rtcp_overhead() {
                assert_eq!(r, Err(Error::TooShort));
            } else {
                assert!(
                    matches!(r, Err(Error::AuthFailed)),
                    "{profile:?} {len} {r:?}"
                );
            }
        }
    }
}

/// xorshift64*, so the fuzz inputs are reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u8 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8
    }
}

#[test]
fn random_bytes_never_panic_or_authenticate() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for profile in PROFILES {
        let (mut tx, mut rx) = pair(profile);
        for len in 0..=64usize {
            for round in 0..64 {
                let mut data: Vec<u8> = (0..len).map(|_| rng.next()).collect();
                if round % 2 == 0 && len > 0 {
                    // Make the header plausible so the crypto paths are reached.
                    data[0] = 0x80 | (data[0] & 0x1f);
                }
                let mut b = data.clone();
                assert!(rx.unprotect_rtp(&mut b, len).is_err());
                let mut b = data.clone();
                assert!(rx.unprotect_rtcp(&mut b, len).is_err());
                let mut b = data.clone();
                b.resize(len + 20, 0);
                if let Ok(n) = tx.protect_rtp(&mut b, len) {
                    assert_eq!(n, len + profile.rtp_overhead());
                }
                let mut b = data.clone();
                b.resize(len + 20, 0);
                if let Ok(n) = tx.protect_rtcp(&mut b, len) {
                    assert_eq!(n, len + profile.rtcp_overhead());
                }
            }
        }
        assert!(rx.inbound_rtp.is_empty() && rx.inbound_rtcp.is_empty());
    }
}

#[test]
fn context_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Context>();
}

#[test]
fn removed_ssrcs_free_their_state() {
    for profile in PROFILES {
        let (mut tx, mut rx) = pair(profile);
        let (tx_start, rx_start) = (tx.heap_bytes(), rx.heap_bytes());
        for ssrc in 1..=20u32 {
            let mut p = rtp_packet(1, ssrc, 10, profile.rtp_overhead());
            let n = tx.protect_rtp(&mut p, 22).unwrap();
            assert_eq!(rx.unprotect_rtp(&mut p, n), Ok(22));
            let mut p = rr_packet(ssrc, profile.rtcp_overhead());
            let n = tx.protect_rtcp(&mut p, 32).unwrap();
            assert_eq!(rx.unprotect_rtcp(&mut p, n), Ok(32));
        }
        assert!(tx.heap_bytes() > tx_start && rx.heap_bytes() > rx_start);
        for ssrc in 1..=20u32 {
            tx.remove_ssrc(ssrc);
            rx.remove_ssrc(ssrc);
        }
        assert_eq!((tx.heap_bytes(), rx.heap_bytes()), (tx_start, rx_start));
        // A removed SSRC can start over (its replay state is gone).
        let mut p = rtp_packet(1, 5, 10, profile.rtp_overhead());
        let n = tx.protect_rtp(&mut p, 22).unwrap();
        assert_eq!(rx.unprotect_rtp(&mut p, n), Ok(22));
    }
}

#[test]
fn a_removed_ssrc_resumes_where_its_receiver_left_it() {
    for profile in PROFILES {
        let send = |tx: &mut Context, rx: &mut Context, seq: u16| {
            let mut p = rtp_packet(seq, 9, 10, profile.rtp_overhead());
            let n = tx.protect_rtp(&mut p, 22).unwrap();
            rx.unprotect_rtp(&mut p, n)
        };
        let send_rtcp = |tx: &mut Context, rx: &mut Context| {
            let mut p = rr_packet(9, profile.rtcp_overhead());
            let n = tx.protect_rtcp(&mut p, 32).unwrap();
            rx.unprotect_rtcp(&mut p, n)
        };
        // Past the 16-bit wrap (ROC 1) and a few SRTCP packets; then the stream goes away on
        // the sending side only.
        let (mut tx, mut rx) = pair(profile);
        for seq in (65_530..=65_535).chain(0..10) {
            assert_eq!(send(&mut tx, &mut rx, seq), Ok(22));
        }
        for _ in 0..5 {
            assert_eq!(send_rtcp(&mut tx, &mut rx), Ok(32));
        }
        let state = tx.remove_ssrc(9);

        // Started over from nothing, the sender's ROC 0 and SRTCP index 0 fail at the receiver.
        let mut fresh = ctx(profile);
        assert_eq!(send(&mut fresh, &mut rx, 10), Err(Error::AuthFailed));
        assert_eq!(send_rtcp(&mut fresh, &mut rx), Err(Error::Replayed));

        tx.resume_outbound(9, state);
        for seq in 10..20 {
            assert_eq!(send(&mut tx, &mut rx, seq), Ok(22), "{profile:?} seq {seq}");
        }
        assert_eq!(send_rtcp(&mut tx, &mut rx), Ok(32));
        // Resuming never moves a stream backwards.
        tx.resume_outbound(9, OutboundState::default());
        assert_eq!(send(&mut tx, &mut rx, 20), Ok(22));
    }
}
