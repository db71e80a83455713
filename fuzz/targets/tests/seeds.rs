//! Writes the hand-made seeds of `fuzz/corpus/` with the project's own packet writers and
//! captured stanzas (`cargo test -p tutti-fuzz-targets --test seeds -- --ignored`). The stored
//! corpora are these seeds plus what short fuzzer runs found, minimised (`cargo fuzz cmin`).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tutti_fuzz_targets::encode_records;
use tutti_ice::stun::{self, BindingRequest, IntegrityKey};
use tutti_rtp::rtcp::{self, ReportBlock, SenderInfo, TwccRecorder};

fn corpus(target: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../corpus")
        .join(target);
    std::fs::create_dir_all(&dir).expect("a corpus directory");
    dir
}

fn write(target: &str, name: &str, bytes: &[u8]) {
    std::fs::write(corpus(target).join(format!("seed-{name}")), bytes).expect("a seed written");
}

fn binding_request(username: &str, password: &str, use_candidate: bool) -> Vec<u8> {
    let mut buf = vec![0u8; 512];
    let len = BindingRequest {
        transaction_id: *b"seed-txn-id!",
        username,
        password,
        priority: 1_845_501_695,
        role: stun::Role::Controlling(42),
        use_candidate,
    }
    .encode(&mut buf)
    .expect("a request");
    buf.truncate(len);
    buf
}

/// VP8 key frame start (descriptor with PictureID and TL0PICIDX, then a 640x360 key frame
/// header) in an RTP packet with a one-byte header extension block (mid, transport-cc).
fn rtp_vp8(ssrc: u32, seq: u16) -> Vec<u8> {
    let mut p = vec![0x90, 100];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&3000u32.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(&[0xBE, 0xDE, 0, 2, 0x10, b'0', 0x51, 0, 7, 0]);
    p.extend_from_slice(&[0x90, 0xE0, 0x80, 0x01, 0x05, 0x20]);
    p.extend_from_slice(&[0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0x68, 0x01]);
    p.extend_from_slice(&[0xAB; 24]);
    p
}

/// An H.264 STAP-A carrying a baseline SPS (640x360) and PPS.
fn rtp_h264(ssrc: u32) -> Vec<u8> {
    let mut p = vec![0x80, 102, 0, 1, 0, 0, 0, 9];
    p.extend_from_slice(&ssrc.to_be_bytes());
    let sps = [
        0x67, 0x42, 0xc0, 0x1e, 0xda, 0x02, 0x80, 0xbf, 0xe5, 0x84, 0x00, 0x00, 0x03, 0x00, 0x04,
        0x00, 0x00, 0x03, 0x00, 0xf0, 0x3c, 0x58, 0xba, 0x80,
    ];
    let pps = [0x68, 0xce, 0x3c, 0x80];
    p.push(24);
    for nal in [&sps[..], &pps[..]] {
        p.extend_from_slice(&(nal.len() as u16).to_be_bytes());
        p.extend_from_slice(nal);
    }
    p
}

/// One packet of every RTCP kind the bridge reads, and their compound.
fn rtcp_packets() -> Vec<(&'static str, Vec<u8>)> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 1500];
    let block = ReportBlock {
        ssrc: 1010,
        fraction_lost: 3,
        cumulative_lost: -2,
        extended_highest_sequence: 70_000,
        jitter: 12,
        last_sr: 99,
        delay_since_last_sr: 5,
    };
    let info = SenderInfo {
        ntp_time: 0x0102_0304_0506_0708,
        rtp_time: 9000,
        packet_count: 10,
        octet_count: 1000,
    };
    let mut push = |name, len: usize, buf: &[u8]| out.push((name, buf[..len].to_vec()));
    let n = rtcp::write_sender_report(&mut buf, 1001, &info, &[block]).unwrap();
    push("sr", n, &buf);
    let n = rtcp::write_receiver_report(&mut buf, 1001, &[block, block]).unwrap();
    push("rr", n, &buf);
    let n = rtcp::write_pli(&mut buf, 1001, 2010).unwrap();
    push("pli", n, &buf);
    let n = rtcp::write_fir(&mut buf, 1001, 2010, 4).unwrap();
    push("fir", n, &buf);
    let n = rtcp::write_nack(&mut buf, 1001, 2010, &[5, 6, 9, 40, 41]).unwrap();
    push("nack", n, &buf);
    let n = rtcp::write_remb(&mut buf, 1001, 1_500_000, &[2010, 2011]).unwrap();
    push("remb", n, &buf);
    let n = rtcp::write_bye(&mut buf, &[1001, 1010]).unwrap();
    push("bye", n, &buf);
    let mut twcc = TwccRecorder::new(256);
    for (i, seq) in [1u16, 2, 3, 5, 8, 9, 10, 30].iter().enumerate() {
        twcc.record(*seq, 1_000_000 + i as i64 * 3_000);
    }
    let n = twcc.write_feedback(&mut buf, 1001, 2010).unwrap();
    push("twcc", n, &buf);
    // SDES with a CNAME, and an APP packet: written by hand (the bridge only reads them).
    let sdes = [
        0x81, 202, 0, 3, 0, 0, 0x03, 0xE9, 1, 4, b'c', b'n', b'a', b'm', 0, 0,
    ];
    out.push(("sdes", sdes.to_vec()));
    let app = [0x80, 204, 0, 2, 0, 0, 0x03, 0xE9, b'n', b'a', b'm', b'e'];
    out.push(("app", app.to_vec()));
    let compound: Vec<u8> = out.iter().flat_map(|(_, p)| p.clone()).collect();
    out.push(("compound", compound));
    out
}

#[test]
#[ignore = "writes fuzz/corpus; run by hand when the seeds change"]
fn write_seeds() {
    let request = binding_request("localufr:remoteuf", tutti_fuzz_targets::STUN_PASSWORD, true);
    write("stun", "binding-request", &request);
    let mut buf = vec![0u8; 512];
    let key = IntegrityKey::new(tutti_fuzz_targets::STUN_PASSWORD);
    let addr = "10.0.0.2:5000".parse().unwrap();
    let n = stun::write_binding_success(&mut buf, b"seed-txn-id!", addr, &key).unwrap();
    write("stun", "binding-success", &buf[..n]);
    let n =
        stun::write_binding_error(&mut buf, b"seed-txn-id!", 487, "Role Conflict", &key).unwrap();
    write("stun", "binding-error", &buf[..n]);

    let check = binding_request("localufr:remoteuf", tutti_fuzz_targets::STUN_PASSWORD, true);
    write(
        "ice_agent",
        "checks",
        &encode_records([
            (1, &check[..]),
            (8, &[60][..]),
            (3, &check[..]),
            (8, &[200][..]),
        ]),
    );

    write("rtp", "vp8-keyframe", &rtp_vp8(1010, 7));
    write("rtp", "h264-stap-sps", &rtp_h264(1020));
    let rtcp = rtcp_packets();
    for (name, packet) in &rtcp {
        write("rtcp", name, packet);
    }

    let mut gcm = tutti_srtp::Context::new(
        tutti_srtp::Profile::AeadAes128Gcm,
        &tutti_fuzz_targets::SRTP_KEY,
        &tutti_fuzz_targets::SRTP_SALT[..12],
    )
    .unwrap();
    let mut cm = tutti_srtp::Context::new(
        tutti_srtp::Profile::Aes128CmHmacSha1_80,
        &tutti_fuzz_targets::SRTP_KEY,
        &tutti_fuzz_targets::SRTP_SALT,
    )
    .unwrap();
    for (selector, context) in [(0u8, &mut gcm), (1u8, &mut cm)] {
        let mut packet = rtp_vp8(1010, 7);
        let len = packet.len();
        packet.resize(len + 64, 0);
        let n = context.protect_rtp(&mut packet, len).unwrap();
        write(
            "srtp",
            &format!("rtp-{selector}"),
            &[&[selector][..], &packet[..n]].concat(),
        );
        let mut packet = rtcp.last().unwrap().1.clone();
        let len = packet.len();
        packet.resize(len + 64, 0);
        let n = context.protect_rtcp(&mut packet, len).unwrap();
        write(
            "srtp",
            &format!("rtcp-{selector}"),
            &[&[selector | 2][..], &packet[..n]].concat(),
        );
    }

    let cert = tutti_dtls::Certificate::generate().unwrap();
    let mut client = tutti_dtls::Dtls::new(
        &cert,
        tutti_dtls::Role::Client,
        tutti_dtls::SrtpProfiles::GcmThenAesCm,
        [7; 32],
        Instant::now(),
        Duration::from_secs(10),
    )
    .unwrap();
    client.start(Instant::now());
    let hello = client.poll_transmit().expect("a ClientHello");
    write(
        "dtls",
        "client-hello",
        &encode_records([(0, &hello[..]), (8, &[200][..]), (0, &hello[..])]),
    );

    let vp8 = rtp_vp8(1010, 7);
    let h264 = rtp_h264(1020);
    let (_, rr) = &rtcp[1];
    let (_, pli) = &rtcp[2];
    let (_, compound) = rtcp.last().unwrap();
    let core_media = encode_records([
        (1, &vp8[..]),
        (1, &h264[..]),
        (4, &[30][..]),
        (10, &rr[..]),
        (10, &pli[..]),
        (2, &compound[..]),
        (4, &[250][..]),
        (0, &vp8[..]),
        (3, &request[..]),
    ]);
    // The warm variant reads the same records.
    write("bridge_core", "media", &core_media);
    write("bridge_core_warm", "media", &core_media);

    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures");
    // The captured IQs carry no stream namespace of their own: their <jingle/> child is the seed.
    let jingle_of = |file: &str| {
        let iq = std::fs::read_to_string(fixtures.join(file)).unwrap();
        let start = iq.find("<jingle").unwrap();
        let end = iq.rfind("</jingle>").unwrap() + "</jingle>".len();
        iq[start..end].to_owned()
    };
    let accept = jingle_of("ljm-2.6726-session-accept.xml");
    let info = jingle_of("ljm-2.6726-transport-info.xml");
    write("jingle", "ljm-session-accept", accept.as_bytes());
    write("jingle", "ljm-transport-info", info.as_bytes());
    let occupant_payload = |xml: &str| [&[0u8][..], xml.as_bytes()].concat();
    let (accept, info) = (occupant_payload(&accept), occupant_payload(&info));
    write(
        "room",
        "join-accept-leave",
        &encode_records([
            (0, &[0][..]),
            (0, &[1][..]),
            (3, &[][..]),
            (3, &[][..]),
            (3, &[][..]),
            (3, &[][..]),
            (2, &accept[..]),
            (2, &info[..]),
            (3, &[][..]),
            (3, &[][..]),
            (5, &[20][..]),
            (1, &[1][..]),
            (4, &[][..]),
            (5, &[250][..]),
        ]),
    );

    for (name, text) in [
        (
            "constraints",
            r#"{"colibriClass":"ReceiverVideoConstraints","lastN":3,"defaultConstraints":{"maxHeight":360},"onStageEndpoints":["b"],"constraints":{"b-v0":{"maxHeight":720}}}"#,
        ),
        (
            "endpoint-message",
            r#"{"colibriClass":"EndpointMessage","to":"b","msgPayload":{"n":1}}"#,
        ),
        (
            "last-n",
            r#"{"colibriClass":"LastNChangedEvent","lastN":2}"#,
        ),
        (
            "legacy-constraint",
            r#"{"colibriClass":"ReceiverVideoConstraint","maxFrameHeight":180.5}"#,
        ),
    ] {
        write("channel", name, text.as_bytes());
    }

    for (name, bytes) in [
        ("zeros", vec![0u8; 64]),
        ("ones", vec![0xFF; 256]),
        ("ramp", (0..=255u8).cycle().take(600).collect()),
    ] {
        write("grpc", name, &bytes);
    }
}

/// The pool target's seed: three bridges listed and heard, a placement burst, one bridge
/// falling silent, one draining, a recovery.
#[test]
#[ignore]
fn pool_seed() {
    let status = |bridge: u8, state: u8| {
        let mut bytes = vec![bridge, state];
        bytes.extend_from_slice(&0.25f64.to_be_bytes());
        bytes.extend_from_slice(&[1, 100]);
        bytes
    };
    let (a, b, c) = (status(0, 0), status(1, 0), status(2, 0));
    let b_draining = status(1, 1);
    write(
        "pool",
        "place-fail-recover",
        &encode_records([
            (0, &[0b0111][..]),
            (1, &a[..]),
            (1, &b[..]),
            (1, &c[..]),
            (4, &[1][..]),
            (4, &[0][..]),
            (5, &[0][..]),
            (4, &[0][..]),
            (3, &[10][..]),
            (1, &b_draining[..]),
            (1, &c[..]),
            (3, &[10][..]),
            (1, &b_draining[..]),
            (1, &c[..]),
            (6, &[0][..]),
            (4, &[0][..]),
            (2, &[2][..]),
            (4, &[0][..]),
            (1, &a[..]),
            (1, &c[..]),
            (0, &[0b0011][..]),
            (3, &[80][..]),
            (4, &[1][..]),
        ]),
    );
}
