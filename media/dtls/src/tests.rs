//! OpenSSL-against-OpenSSL tests of the sans-IO state machine (no sockets). Interoperability
//! with an independent implementation is in `tests/webrtc_dtls.rs`.

use super::*;

const TIMEOUT: Duration = Duration::from_secs(10);

fn fingerprint_bytes(cert: &Certificate) -> [u8; 32] {
    parse_fingerprint("sha-256", cert.fingerprint()).expect("own fingerprint parses")
}

struct Pair {
    client: Dtls,
    server: Dtls,
}

fn pair(client_profiles: SrtpProfiles, server_profiles: SrtpProfiles) -> Pair {
    let client_cert = Certificate::generate().unwrap();
    let server_cert = Certificate::generate().unwrap();
    let now = Instant::now();
    let client = Dtls::new(
        &client_cert,
        Role::Client,
        client_profiles,
        fingerprint_bytes(&server_cert),
        now,
        TIMEOUT,
    )
    .unwrap();
    let server = Dtls::new(
        &server_cert,
        Role::Server,
        server_profiles,
        fingerprint_bytes(&client_cert),
        now,
        TIMEOUT,
    )
    .unwrap();
    Pair { client, server }
}

/// Moves datagrams both ways until neither side has anything to send; returns how many moved.
fn pump(a: &mut Dtls, b: &mut Dtls) -> usize {
    let mut moved = 0;
    loop {
        let mut progressed = false;
        while let Some(d) = a.poll_transmit() {
            b.handle_datagram(&d, Instant::now());
            moved += 1;
            progressed = true;
        }
        while let Some(d) = b.poll_transmit() {
            a.handle_datagram(&d, Instant::now());
            moved += 1;
            progressed = true;
        }
        if !progressed {
            return moved;
        }
    }
}

fn events(d: &mut Dtls) -> Vec<Event> {
    std::iter::from_fn(|| d.poll_event()).collect()
}

fn connected(d: &mut Dtls) -> (u16, Vec<u8>) {
    match events(d).as_slice() {
        [Event::Connected {
            srtp_profile_id,
            keying_material,
        }] => (*srtp_profile_id, keying_material.clone()),
        other => panic!("expected one Connected event, got {other:?}"),
    }
}

fn failed(d: &mut Dtls) -> Error {
    match events(d).as_slice() {
        [Event::Failed(e)] => e.clone(),
        other => panic!("expected one Failed event, got {other:?}"),
    }
}

/// Deterministic xorshift bytes: reproducible "random" network input without a rand dependency.
fn pseudo_random(seed: &mut u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|_| {
            *seed ^= *seed << 13;
            *seed ^= *seed >> 7;
            *seed ^= *seed << 17;
            (*seed >> 24) as u8
        })
        .collect()
}

#[test]
fn fingerprint_is_uppercase_colon_hex_of_der_sha256() {
    let cert = Certificate::generate().unwrap();
    let fp = cert.fingerprint();
    assert_eq!(fp.len(), 32 * 3 - 1);
    assert!(fp.bytes().enumerate().all(|(i, c)| if i % 3 == 2 {
        c == b':'
    } else {
        c.is_ascii_digit() || (b'A'..=b'F').contains(&c)
    }));
    let x509 = cert.ctx.certificate().expect("context has the certificate");
    let der_hash = openssl::sha::sha256(&x509.to_der().unwrap());
    assert_eq!(fingerprint_bytes(&cert), der_hash);
    // Each generation is a fresh key and certificate.
    assert_ne!(Certificate::generate().unwrap().fingerprint(), fp);
}

#[test]
fn certificate_is_p256_self_signed_tutti_with_validity_window() {
    let cert = Certificate::generate().unwrap();
    let x509 = cert.ctx.certificate().unwrap();
    let cn = x509
        .subject_name()
        .entries_by_nid(Nid::COMMONNAME)
        .next()
        .unwrap()
        .data()
        .to_string()
        .unwrap();
    assert_eq!(cn, "tutti");
    let key = x509.public_key().unwrap().ec_key().unwrap();
    assert_eq!(key.group().curve_name(), Some(Nid::X9_62_PRIME256V1));
    assert!(x509.verify(&x509.public_key().unwrap()).unwrap());
    let now = Asn1Time::days_from_now(0).unwrap();
    assert!(x509.not_before() < now);
    let diff = now.diff(x509.not_after()).unwrap();
    assert!((29..=30).contains(&diff.days), "{diff:?}");
}

#[test]
fn certificate_is_send_sync_and_shared() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Certificate>();
    fn assert_send<T: Send>() {}
    assert_send::<Dtls>();
}

#[test]
fn parse_fingerprint_accepts_sha256_any_case() {
    let upper = "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89";
    let parsed = parse_fingerprint("SHA-256", upper).unwrap();
    assert_eq!(parsed[..4], [0xAB, 0xCD, 0xEF, 0x01]);
    assert_eq!(parsed[31], 0x89);
    assert_eq!(
        parse_fingerprint("sha-256", &upper.to_lowercase()).unwrap(),
        parsed
    );
}

#[test]
fn parse_fingerprint_rejects_malformed_input() {
    let good = ["AB"; 32].join(":");
    assert_eq!(
        parse_fingerprint("sha-1", &good),
        Err(Error::UnsupportedHash("sha-1".into()))
    );
    let short = ["AB"; 31].join(":");
    let long = ["AB"; 33].join(":");
    let mut plus = ["AB"; 32];
    plus[5] = "+F";
    let mut one_digit = ["AB"; 32];
    one_digit[0] = "A";
    let mut non_hex = ["AB"; 32];
    non_hex[31] = "AG";
    let mut multibyte = ["AB"; 32];
    multibyte[3] = "é";
    for bad in [
        short,
        long,
        plus.join(":"),
        one_digit.join(":"),
        non_hex.join(":"),
        multibyte.join(":"),
        ["AB"; 32].join("-"),
        format!("{good}:"),
        String::new(),
    ] {
        assert_eq!(
            parse_fingerprint("sha-256", &bad),
            Err(Error::InvalidFingerprint),
            "{bad:?}"
        );
    }
}

#[test]
fn handshake_prefers_gcm_and_both_sides_agree() {
    let mut p = pair(SrtpProfiles::GcmThenAesCm, SrtpProfiles::GcmThenAesCm);
    assert!(p.client.poll_transmit().is_none(), "nothing before start");
    p.server.start(Instant::now());
    assert!(
        p.server.poll_transmit().is_none(),
        "start is a no-op for servers"
    );
    p.client.start(Instant::now());
    pump(&mut p.client, &mut p.server);
    assert!(p.client.is_connected() && p.server.is_connected());
    let (cid, ckeys) = connected(&mut p.client);
    let (sid, skeys) = connected(&mut p.server);
    assert_eq!((cid, sid), (7, 7));
    assert_eq!(ckeys.len(), 56);
    assert_eq!(ckeys, skeys);
    assert_ne!(ckeys, vec![0u8; 56]);
    // No handshake deadline once connected.
    assert_eq!(p.client.poll_timeout(), None);
    assert_eq!(p.server.poll_timeout(), None);
}

#[test]
fn handshake_falls_back_to_aes_cm_with_60_bytes() {
    let mut p = pair(SrtpProfiles::AesCmOnly, SrtpProfiles::GcmThenAesCm);
    p.client.start(Instant::now());
    pump(&mut p.client, &mut p.server);
    let (cid, ckeys) = connected(&mut p.client);
    let (sid, skeys) = connected(&mut p.server);
    assert_eq!((cid, sid), (1, 1));
    assert_eq!(ckeys.len(), 60);
    assert_eq!(ckeys, skeys);
}

#[test]
fn no_common_srtp_profile_fails() {
    let mut p = pair(SrtpProfiles::GcmOnly, SrtpProfiles::AesCmOnly);
    p.client.start(Instant::now());
    pump(&mut p.client, &mut p.server);
    // OpenSSL treats use_srtp as optional: the handshake completes without a profile, and
    // both sides refuse to go on rather than let media flow unprotected.
    assert_eq!(failed(&mut p.client), Error::NoSrtpProfile);
    assert_eq!(failed(&mut p.server), Error::NoSrtpProfile);
    assert!(!p.client.is_connected() && !p.server.is_connected());
}

#[test]
fn server_rejects_wrong_client_fingerprint() {
    let server_cert = Certificate::generate().unwrap();
    let client_cert = Certificate::generate().unwrap();
    let now = Instant::now();
    let mut client = Dtls::new(
        &client_cert,
        Role::Client,
        SrtpProfiles::GcmThenAesCm,
        fingerprint_bytes(&server_cert),
        now,
        TIMEOUT,
    )
    .unwrap();
    let mut server = Dtls::new(
        &server_cert,
        Role::Server,
        SrtpProfiles::GcmThenAesCm,
        [0x42; 32],
        now,
        TIMEOUT,
    )
    .unwrap();
    client.start(now);
    pump(&mut client, &mut server);
    assert_eq!(failed(&mut server), Error::FingerprintMismatch);
    assert!(!server.is_connected());
    // The server's bad_certificate alert reaches the client.
    assert!(matches!(failed(&mut client), Error::Ssl(_)));
    assert_eq!(server.poll_timeout(), None);
}

#[test]
fn client_rejects_wrong_server_fingerprint() {
    let server_cert = Certificate::generate().unwrap();
    let client_cert = Certificate::generate().unwrap();
    let now = Instant::now();
    let mut client = Dtls::new(
        &client_cert,
        Role::Client,
        SrtpProfiles::GcmThenAesCm,
        fingerprint_bytes(&client_cert),
        now,
        TIMEOUT,
    )
    .unwrap();
    let mut server = Dtls::new(
        &server_cert,
        Role::Server,
        SrtpProfiles::GcmThenAesCm,
        fingerprint_bytes(&client_cert),
        now,
        TIMEOUT,
    )
    .unwrap();
    client.start(now);
    pump(&mut client, &mut server);
    assert_eq!(failed(&mut client), Error::FingerprintMismatch);
    assert!(!server.is_connected());
}

#[test]
fn one_certificate_serves_many_sessions() {
    let bridge = Certificate::generate().unwrap();
    for _ in 0..3 {
        let peer = Certificate::generate().unwrap();
        let now = Instant::now();
        let mut server = Dtls::new(
            &bridge.clone(),
            Role::Server,
            SrtpProfiles::GcmThenAesCm,
            fingerprint_bytes(&peer),
            now,
            TIMEOUT,
        )
        .unwrap();
        let mut client = Dtls::new(
            &peer,
            Role::Client,
            SrtpProfiles::GcmThenAesCm,
            fingerprint_bytes(&bridge),
            now,
            TIMEOUT,
        )
        .unwrap();
        client.start(now);
        pump(&mut client, &mut server);
        assert_eq!(connected(&mut client), connected(&mut server));
    }
}

#[test]
fn garbage_is_reported_once_and_never_panics() {
    let mut seed = 0x9E37_79B9_7F4A_7C15;
    for len in [0usize, 1, 5, 12, 13, 14, 100, 1500] {
        let mut p = pair(SrtpProfiles::GcmThenAesCm, SrtpProfiles::GcmThenAesCm);
        let mut garbage = pseudo_random(&mut seed, len);
        if let Some(first) = garbage.first_mut() {
            *first = 0xAB;
        }
        p.server.handle_datagram(&garbage, Instant::now());
        assert_eq!(failed(&mut p.server), Error::NotDtls, "len {len}");
        p.server.handle_datagram(&garbage, Instant::now());
        assert!(p.server.poll_event().is_none(), "failure reported once");
        assert!(p.server.poll_transmit().is_none());
        assert_eq!(p.server.poll_timeout(), None);
    }
}

#[test]
fn record_framing_check() {
    let record = |ty: u8, len: u16, body: usize| {
        let mut r = vec![ty, 0xFE, 0xFD, 0, 0, 0, 0, 0, 0, 0, 0];
        r.extend_from_slice(&len.to_be_bytes());
        r.resize(RECORD_HEADER_LEN + body, 0);
        r
    };
    assert!(is_dtls_record_sequence(&record(22, 5, 5)));
    assert!(is_dtls_record_sequence(&record(21, 0, 0)));
    assert!(is_dtls_record_sequence(
        &[record(22, 3, 3), record(20, 1, 1)].concat()
    ));
    assert!(!is_dtls_record_sequence(&[]));
    assert!(
        !is_dtls_record_sequence(&record(22, 6, 5)),
        "truncated body"
    );
    assert!(!is_dtls_record_sequence(&record(22, 4, 5)), "trailing byte");
    assert!(!is_dtls_record_sequence(&record(19, 0, 0)));
    assert!(!is_dtls_record_sequence(&record(27, 0, 0)));
    let mut tls = record(22, 0, 0);
    tls[1] = 0x03;
    assert!(!is_dtls_record_sequence(&tls), "TLS, not DTLS");
    assert!(!is_dtls_record_sequence(&record(22, 0, 0)[..12]));
}

/// Runs a handshake in which, before every real datagram, both sides get forged records with
/// valid framing and random content; `epoch_zero` forges them in the handshake's own epoch (a
/// spoofer who can guess it) instead of a random one. Returns each side's events.
fn handshake_under_forged_records(epoch_zero: bool, seed: u64) -> (Vec<Event>, Vec<Event>) {
    let mut seed = seed;
    let mut p = pair(SrtpProfiles::GcmThenAesCm, SrtpProfiles::GcmThenAesCm);
    p.client.start(Instant::now());
    let mut datagrams = 0;
    loop {
        for side in [&mut p.client, &mut p.server] {
            for ty in 20..=26u8 {
                let body = pseudo_random(&mut seed, 40);
                let mut rec = vec![ty, 0xFE, 0xFD];
                let epoch_seq = pseudo_random(&mut seed, 8);
                rec.extend_from_slice(if epoch_zero { &[0, 0] } else { &epoch_seq[..2] });
                rec.extend_from_slice(&epoch_seq[2..]);
                rec.extend_from_slice(&(body.len() as u16).to_be_bytes());
                rec.extend_from_slice(&body);
                side.handle_datagram(&rec, Instant::now());
            }
        }
        let (from, to) = match p.client.poll_transmit() {
            Some(d) => (d, &mut p.server),
            None => match p.server.poll_transmit() {
                Some(d) => (d, &mut p.client),
                None => break,
            },
        };
        to.handle_datagram(&from, Instant::now());
        datagrams += 1;
        assert!(datagrams < 100);
    }
    (events(&mut p.client), events(&mut p.server))
}

#[test]
fn forged_records_in_foreign_epochs_are_discarded() {
    for seed in [0x0123_4567_89AB_CDEF, 0xDEAD_BEEF_0BAD_F00D, 42] {
        let (client, server) = handshake_under_forged_records(false, seed);
        assert!(
            matches!(client.as_slice(), [Event::Connected { .. }]),
            "{client:?}"
        );
        assert_eq!(client, server);
    }
}

#[test]
fn forged_records_in_the_handshake_epoch_never_panic() {
    for seed in [0x0123_4567_89AB_CDEF, 0xDEAD_BEEF_0BAD_F00D, 42] {
        let (client, server) = handshake_under_forged_records(true, seed);
        // Random handshake bytes in epoch 0 may abort the handshake (OpenSSL cannot tell them
        // from the peer's); what matters is a clean outcome: at most one event per side, and
        // never a connection with mismatched keys.
        assert!(
            client.len() <= 1 && server.len() <= 1,
            "{client:?} {server:?}"
        );
        for e in client.iter().chain(server.iter()) {
            assert!(
                matches!(e, Event::Connected { .. } | Event::Failed(Error::Ssl(_))),
                "{e:?}"
            );
        }
        if let ([Event::Connected { .. }], [Event::Connected { .. }]) =
            (client.as_slice(), server.as_slice())
        {
            assert_eq!(client, server);
        }
    }
}

/// Re-fragments the single handshake message in `record` (one DTLS record holding one whole
/// handshake message) into records of at most `chunk` body bytes, with record sequence numbers
/// `first_seq`, `first_seq + 1`, ...
fn refragment(record: &[u8], chunk: usize, first_seq: u64) -> Vec<Vec<u8>> {
    const HS_HEADER: usize = 12;
    let hs = &record[RECORD_HEADER_LEN..];
    let body = &hs[HS_HEADER..];
    let total = u32::from_be_bytes([0, hs[1], hs[2], hs[3]]) as usize;
    assert_eq!(
        total,
        body.len(),
        "record must carry one unfragmented message"
    );
    body.chunks(chunk)
        .enumerate()
        .map(|(i, part)| {
            let offset = (i * chunk) as u32;
            let mut out = record[..RECORD_HEADER_LEN].to_vec();
            out[5..11].copy_from_slice(&(first_seq + i as u64).to_be_bytes()[2..]);
            let rec_len = (HS_HEADER + part.len()) as u16;
            out[11..13].copy_from_slice(&rec_len.to_be_bytes());
            out.extend_from_slice(&hs[..6]);
            out.extend_from_slice(&offset.to_be_bytes()[1..]);
            out.extend_from_slice(&(part.len() as u32).to_be_bytes()[1..]);
            out.extend_from_slice(part);
            out
        })
        .collect()
}

#[test]
fn fragmented_client_hello_out_of_order_is_reassembled() {
    let mut p = pair(SrtpProfiles::GcmThenAesCm, SrtpProfiles::GcmThenAesCm);
    p.client.start(Instant::now());
    let hello = p.client.poll_transmit().unwrap();
    assert!(p.client.poll_transmit().is_none());
    assert_eq!((hello[0], hello[RECORD_HEADER_LEN]), (22, 1), "ClientHello");
    // Sequence numbers far above the client's own next ones (1, 2, ...) but inside the replay
    // window, so the client's later records are not mistaken for replays.
    let mut fragments = refragment(&hello, 40, 20);
    assert!(fragments.len() >= 3, "{} fragments", fragments.len());
    fragments.reverse();
    for f in &fragments {
        assert!(p.server.poll_transmit().is_none(), "server answered early");
        p.server.handle_datagram(f, Instant::now());
    }
    let answer = p
        .server
        .poll_transmit()
        .expect("server answers the whole hello");
    p.client.handle_datagram(&answer, Instant::now());
    pump(&mut p.client, &mut p.server);
    assert_eq!(connected(&mut p.client), connected(&mut p.server));
}

#[test]
fn handshake_timeout_fails_the_session() {
    let cert = Certificate::generate().unwrap();
    let start = Instant::now();
    let timeout = Duration::from_millis(50);
    let mut server = Dtls::new(
        &cert,
        Role::Server,
        SrtpProfiles::GcmThenAesCm,
        [0; 32],
        start,
        timeout,
    )
    .unwrap();
    assert_eq!(server.poll_timeout(), Some(start + timeout));
    server.handle_timeout(start + timeout / 2);
    assert!(server.poll_event().is_none());
    std::thread::sleep(timeout);
    server.handle_timeout(Instant::now());
    assert_eq!(failed(&mut server), Error::HandshakeTimeout);
    assert_eq!(server.poll_timeout(), None);
    server.handle_timeout(Instant::now());
    assert!(server.poll_event().is_none());
}

#[test]
fn lost_client_hello_is_retransmitted() {
    let mut p = pair(SrtpProfiles::GcmThenAesCm, SrtpProfiles::GcmThenAesCm);
    let start = Instant::now();
    p.client.start(start);
    let first = p.client.poll_transmit().unwrap();
    let at = p.client.poll_timeout().unwrap();
    assert!(
        at > start && at <= start + Duration::from_secs(2),
        "{:?}",
        at - start
    );
    p.client.handle_timeout(start);
    assert!(
        p.client.poll_transmit().is_none(),
        "no retransmission before the timer"
    );
    std::thread::sleep(at.saturating_duration_since(Instant::now()));
    p.client.handle_timeout(Instant::now());
    let again = p.client.poll_transmit().expect("retransmitted ClientHello");
    assert_eq!(again[0], 22);
    assert_eq!(again[RECORD_HEADER_LEN], 1);
    assert_ne!(again, first, "new record sequence number");
    assert!(p.client.poll_timeout().unwrap() > at, "timer backs off");
    p.server.handle_datagram(&again, Instant::now());
    pump(&mut p.client, &mut p.server);
    assert_eq!(connected(&mut p.client), connected(&mut p.server));
}

#[test]
fn duplicate_final_flight_after_handshake_is_absorbed() {
    let mut p = pair(SrtpProfiles::GcmThenAesCm, SrtpProfiles::GcmThenAesCm);
    p.client.start(Instant::now());
    let mut client_flights: Vec<Vec<u8>> = Vec::new();
    loop {
        let mut progressed = false;
        while let Some(d) = p.client.poll_transmit() {
            p.server.handle_datagram(&d, Instant::now());
            client_flights.push(d);
            progressed = true;
        }
        while let Some(d) = p.server.poll_transmit() {
            p.client.handle_datagram(&d, Instant::now());
            progressed = true;
        }
        if !progressed {
            break;
        }
    }
    let keys = connected(&mut p.server);
    assert_eq!(connected(&mut p.client), keys);
    // The server's last flight "was lost": the client's Finished flight arrives again.
    for d in &client_flights[1..] {
        p.server.handle_datagram(d, Instant::now());
    }
    assert!(p.server.is_connected());
    assert!(p.server.poll_event().is_none());
    pump(&mut p.client, &mut p.server);
    assert!(p.client.is_connected() && p.server.is_connected());
    assert!(p.client.poll_event().is_none() && p.server.poll_event().is_none());
}

#[test]
fn close_notify_is_reported_as_closed() {
    let mut p = pair(SrtpProfiles::GcmThenAesCm, SrtpProfiles::GcmThenAesCm);
    p.client.start(Instant::now());
    pump(&mut p.client, &mut p.server);
    connected(&mut p.client);
    connected(&mut p.server);
    p.client.close();
    assert!(!p.client.is_connected());
    let notify = p.client.poll_transmit().expect("close_notify");
    assert_eq!(notify[0], 21, "alert record");
    p.server.handle_datagram(&notify, Instant::now());
    assert_eq!(events(&mut p.server), vec![Event::Closed]);
    assert!(!p.server.is_connected());
    assert_eq!(p.server.poll_timeout(), None);
    // Input after close is ignored.
    p.server.handle_datagram(&notify, Instant::now());
    assert!(p.server.poll_event().is_none());
}

#[test]
fn heap_bytes_counts_queued_datagrams() {
    let mut p = pair(SrtpProfiles::GcmThenAesCm, SrtpProfiles::GcmThenAesCm);
    let idle = p.client.heap_bytes();
    assert!(idle >= OPENSSL_CONNECTION_BYTES);
    p.client.start(Instant::now());
    let queued = p.client.heap_bytes();
    assert!(queued >= idle + 100, "{idle} -> {queued}");
}

#[test]
fn client_hello_larger_than_mtu_is_fragmented_and_reassembled() {
    // Like a browser's DTLS 1.3 ClientHello with a post-quantum key share: well over 1200
    // bytes. Eight 199-byte ALPN names inflate ours the same way.
    let alpn: Vec<u8> = (0..8u8)
        .flat_map(|i| std::iter::once(199).chain(std::iter::repeat_n(b'a' + i, 199)))
        .collect();
    let client_cert = Certificate::generate().unwrap();
    let server_cert = Certificate::generate().unwrap();
    let now = Instant::now();
    let mut ssl = Ssl::new(&client_cert.ctx).unwrap();
    ssl.set_alpn_protos(&alpn).unwrap();
    let mut client = Dtls::with_ssl(
        ssl,
        Role::Client,
        SrtpProfiles::GcmThenAesCm,
        fingerprint_bytes(&server_cert),
        now,
        TIMEOUT,
    )
    .unwrap();
    let mut server = Dtls::new(
        &server_cert,
        Role::Server,
        SrtpProfiles::GcmThenAesCm,
        fingerprint_bytes(&client_cert),
        now,
        TIMEOUT,
    )
    .unwrap();
    client.start(now);
    let hello: Vec<Vec<u8>> = std::iter::from_fn(|| client.poll_transmit()).collect();
    assert!(hello.len() >= 2, "ClientHello in {} datagrams", hello.len());
    let mut total = 0;
    for d in &hello {
        assert!(d.len() <= MTU as usize, "datagram of {} bytes", d.len());
        assert_eq!(
            (d[0], d[RECORD_HEADER_LEN]),
            (22, 1),
            "ClientHello fragment"
        );
        total += d.len();
    }
    assert!(total > 1600, "{total} bytes");
    for d in &hello {
        assert!(
            server.poll_transmit().is_none(),
            "server answered a partial hello"
        );
        server.handle_datagram(d, Instant::now());
    }
    pump(&mut client, &mut server);
    assert_eq!(connected(&mut client), connected(&mut server));
}
