//! The participant against a minimal bridge built from webrtc-rs pieces (controlling ICE, DTLS
//! server, SRTP) over 127.0.0.1: the handshake with a fragmented ClientHello, media shape and
//! integrity, feedback in both directions, and clean shutdown.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dtls::config::ClientAuthType;
use dtls::conn::DTLSConn;
use dtls::crypto::Certificate;
use rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtcp::sender_report::SenderReport;
use stun::agent::TransactionId;
use stun::attributes::{ATTR_ICE_CONTROLLING, ATTR_PRIORITY, ATTR_USERNAME, ATTR_USE_CANDIDATE};
use stun::fingerprint::FINGERPRINT;
use stun::integrity::MessageIntegrity;
use stun::message::{Message, Setter, BINDING_REQUEST, BINDING_SUCCESS};
use stun::textattrs::TextAttribute;
use stun::xoraddr::XorMappedAddress;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tutti_participant::demux::{classify, PacketKind};
use tutti_participant::media::{append_trailer, build_rtp, parse_vp8, verify_trailer};
use tutti_participant::media::{RtpFields, Trailer};
use tutti_participant::transport::DtlsCounters;
use tutti_participant::transport::{dtls_config, fingerprint, srtp_profile, ChannelConn};
use tutti_participant::SrtpChoice;
use tutti_participant::{LocalDescription, Participant, ParticipantConfig, RemoteDescription};
use webrtc_srtp::context::Context;
use webrtc_util::{Marshal, Unmarshal};

#[derive(Default)]
struct Received {
    packets: u64,
    trailer_errors: u64,
    keyframes: u64,
    twcc_ext: u64,
}

#[derive(Default)]
struct BridgeState {
    /// Sizes of the DTLS datagrams that arrived before the server sent anything.
    first_flight: Vec<usize>,
    checks_answered: u64,
    nominated: bool,
    tx: Option<Context>,
    rx: Option<Context>,
    media: HashMap<u32, Received>,
    plis_for: Vec<u32>,
    /// (SSRC, packet count) of every sender report.
    sender_reports: Vec<(u32, u32)>,
}

/// Just enough of a bridge to drive the participant through a real session.
struct FakeBridge {
    socket: Arc<UdpSocket>,
    remote: RemoteDescription,
    peer: SocketAddr,
    state: Arc<Mutex<BridgeState>>,
    tasks: Vec<JoinHandle<()>>,
    dtls: Arc<tokio::sync::Mutex<Option<DTLSConn>>>,
}

impl FakeBridge {
    async fn start(peer: &LocalDescription, srtp: SrtpChoice) -> FakeBridge {
        let socket = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let local = socket.local_addr().unwrap();
        let cert = Certificate::generate_self_signed(vec!["bridge".to_owned()]).unwrap();
        let remote = RemoteDescription {
            ufrag: "bufrag".into(),
            pwd: "bridge-password-0123456789".into(),
            candidates: vec![local],
            fingerprint: fingerprint(cert.certificate[0].as_ref()),
        };
        let peer_addr = peer.candidates[0];
        let state = Arc::new(Mutex::new(BridgeState::default()));
        let counters = Arc::new(DtlsCounters::default());
        let (dtls_tx, dtls_rx) = mpsc::channel(64);
        let dtls = Arc::new(tokio::sync::Mutex::new(None));

        let mut config = dtls_config(cert, &peer.fingerprint, srtp, 1200).unwrap();
        config.client_auth = ClientAuthType::RequireAnyClientCert;
        let conn = ChannelConn::new(dtls_rx, &socket, local, peer_addr, Arc::clone(&counters));
        let handshake = {
            let state = Arc::clone(&state);
            let dtls = Arc::clone(&dtls);
            tokio::spawn(async move {
                // A failed handshake is what some tests want; the participant reports it.
                let Ok(c) = DTLSConn::new(Arc::new(conn), config, false, None).await else {
                    return;
                };
                let (profile, _) = srtp_profile(c.selected_srtpprotection_profile()).unwrap();
                let mut sc = webrtc_srtp::config::Config {
                    profile,
                    ..Default::default()
                };
                sc.extract_session_keys_from_dtls(c.connection_state().await, false)
                    .await
                    .unwrap();
                let k = &sc.keys;
                {
                    let mut st = state.lock().unwrap();
                    st.tx = Some(
                        Context::new(
                            &k.local_master_key,
                            &k.local_master_salt,
                            profile,
                            None,
                            None,
                        )
                        .unwrap(),
                    );
                    st.rx = Some(
                        Context::new(
                            &k.remote_master_key,
                            &k.remote_master_salt,
                            profile,
                            None,
                            None,
                        )
                        .unwrap(),
                    );
                }
                *dtls.lock().await = Some(c);
            })
        };

        let recv = {
            let socket = Arc::clone(&socket);
            let state = Arc::clone(&state);
            let pwd = remote.pwd.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                loop {
                    let (n, from) = socket.recv_from(&mut buf).await.unwrap();
                    let d = &buf[..n];
                    match classify(d) {
                        PacketKind::Stun => {
                            if let Some(resp) = answer_check(&state, d, from, &pwd) {
                                socket.send_to(&resp, from).await.unwrap();
                            }
                        }
                        PacketKind::Dtls => {
                            if counters.sent_before_reply() == 0 {
                                state.lock().unwrap().first_flight.push(n);
                            }
                            let _ = dtls_tx.try_send(d.to_vec());
                        }
                        PacketKind::Rtp | PacketKind::Rtcp => on_media(&state, d),
                        PacketKind::Unknown => panic!("participant sent an unknown datagram"),
                    }
                }
            })
        };

        let checks = {
            let socket = Arc::clone(&socket);
            let state = Arc::clone(&state);
            let username = format!("{}:{}", peer.ufrag, remote.ufrag);
            let peer_pwd = peer.pwd.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_millis(50));
                loop {
                    tick.tick().await;
                    if state.lock().unwrap().nominated {
                        continue;
                    }
                    let mut m = Message::new();
                    m.build(&[
                        Box::new(BINDING_REQUEST),
                        Box::new(TransactionId::new()),
                        Box::new(TextAttribute::new(ATTR_USERNAME, username.clone())),
                    ])
                    .unwrap();
                    m.add(ATTR_PRIORITY, &1u32.to_be_bytes());
                    m.add(ATTR_ICE_CONTROLLING, &1u64.to_be_bytes());
                    m.add(ATTR_USE_CANDIDATE, &[]);
                    MessageIntegrity::new_short_term_integrity(peer_pwd.clone())
                        .add_to(&mut m)
                        .unwrap();
                    FINGERPRINT.add_to(&mut m).unwrap();
                    socket.send_to(&m.raw, peer_addr).await.unwrap();
                }
            })
        };

        FakeBridge {
            socket,
            remote,
            peer: peer_addr,
            state,
            tasks: vec![handshake, recv, checks],
            dtls,
        }
    }

    async fn send_rtcp(&self, plain: &[u8]) {
        let d = self
            .state
            .lock()
            .unwrap()
            .tx
            .as_mut()
            .unwrap()
            .encrypt_rtcp(plain)
            .unwrap();
        self.socket.send_to(&d, self.peer).await.unwrap();
    }

    async fn send_rtp(&self, plain: &[u8]) {
        let d = self
            .state
            .lock()
            .unwrap()
            .tx
            .as_mut()
            .unwrap()
            .encrypt_rtp(plain)
            .unwrap();
        self.socket.send_to(&d, self.peer).await.unwrap();
    }
}

impl Drop for FakeBridge {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Answers the participant's checks (or marks our nomination answered).
fn answer_check(
    state: &Mutex<BridgeState>,
    d: &[u8],
    from: SocketAddr,
    pwd: &str,
) -> Option<Vec<u8>> {
    let mut m = Message::new();
    m.unmarshal_binary(d).unwrap();
    FINGERPRINT.check(&m).unwrap();
    if m.typ == BINDING_SUCCESS {
        state.lock().unwrap().nominated = true;
        return None;
    }
    assert_eq!(m.typ, BINDING_REQUEST);
    let user = TextAttribute::get_from_as(&m, ATTR_USERNAME).unwrap();
    assert!(user.text.starts_with("bufrag:"), "{}", user.text);
    MessageIntegrity::new_short_term_integrity(pwd.to_owned())
        .check(&mut m)
        .unwrap();
    state.lock().unwrap().checks_answered += 1;
    let mut resp = Message::new();
    resp.build(&[
        Box::new(BINDING_SUCCESS),
        Box::new(m.transaction_id),
        Box::new(XorMappedAddress {
            ip: from.ip(),
            port: from.port(),
        }),
        Box::new(MessageIntegrity::new_short_term_integrity(pwd.to_owned())),
        Box::new(FINGERPRINT),
    ])
    .unwrap();
    Some(resp.raw)
}

fn on_media(state: &Mutex<BridgeState>, d: &[u8]) {
    let mut st = state.lock().unwrap();
    let st = &mut *st;
    let rx = st.rx.as_mut().expect("media before the handshake finished");
    if classify(d) == PacketKind::Rtcp {
        let plain = rx.decrypt_rtcp(d).unwrap();
        for p in rtcp::packet::unmarshal(&mut plain.clone()).unwrap() {
            if let Some(pli) = p.as_any().downcast_ref::<PictureLossIndication>() {
                st.plis_for.push(pli.media_ssrc);
            }
            if let Some(sr) = p.as_any().downcast_ref::<SenderReport>() {
                st.sender_reports.push((sr.ssrc, sr.packet_count));
            }
        }
        return;
    }
    let plain = rx.decrypt_rtp(d).unwrap();
    let p = rtp::packet::Packet::unmarshal(&mut plain.clone()).unwrap();
    let r = st.media.entry(p.header.ssrc).or_default();
    r.packets += 1;
    if p.header.get_extension(5).is_some_and(|e| e.len() == 2) {
        r.twcc_ext += 1;
    }
    match verify_trailer(&p.payload) {
        Ok(t) if t.ssrc == p.header.ssrc && t.seq == p.header.sequence_number => {}
        _ => r.trailer_errors += 1,
    }
    if parse_vp8(&p.payload).is_some_and(|v| v.keyframe) && p.header.payload_type == 100 {
        r.keyframes += 1;
    }
}

fn media_to_participant(ssrc: u32, pt: u8, seq: u16, body: &[u8]) -> Vec<u8> {
    build_rtp(
        &RtpFields {
            payload_type: pt,
            marker: true,
            seq,
            timestamp: 0,
            ssrc,
            twcc_ext_id: 5,
            twcc_seq: 0,
            audio_level: None,
        },
        body,
    )
}

#[tokio::test]
async fn full_session_with_fragmented_client_hello() {
    let mut config = ParticipantConfig::new("alice");
    config.dtls_mtu = 120;
    let participant = Participant::bind(config.clone()).await.unwrap();
    let bridge = FakeBridge::start(&participant.local_description(), SrtpChoice::GcmFirst).await;

    participant
        .connect(&bridge.remote, Duration::from_secs(10))
        .await
        .unwrap();
    let stats = participant.stats();
    assert_eq!(stats.srtp_profile.as_deref(), Some("SRTP_AEAD_AES_128_GCM"));
    let first_flight = bridge.state.lock().unwrap().first_flight.clone();
    assert!(
        stats.dtls_datagrams_before_reply >= 2,
        "ClientHello not fragmented: {first_flight:?}"
    );
    assert_eq!(first_flight.len(), stats.dtls_datagrams_before_reply);
    assert!(
        first_flight.iter().all(|&n| n <= 200 + 25),
        "{first_flight:?}"
    );
    assert!(bridge.state.lock().unwrap().checks_answered >= 1);

    // Media flows: 50 pps audio, 30 fps video, intact, each packet with a twcc extension.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    {
        let st = bridge.state.lock().unwrap();
        let audio = &st.media[&config.audio_ssrc];
        let video = &st.media[&config.video_ssrc];
        assert!(
            (35..=65).contains(&audio.packets),
            "audio {}",
            audio.packets
        );
        assert!(video.packets >= 150, "video {}", video.packets);
        assert_eq!(audio.trailer_errors + video.trailer_errors, 0);
        assert_eq!(audio.twcc_ext, audio.packets);
        assert_eq!(video.twcc_ext, video.packets);
        assert_eq!(video.keyframes, 1);
        let sent = participant.twcc_sent_sequences();
        assert_eq!(sent.len() as u64, participant.stats().twcc_sent);
        assert!(sent.len() as u64 >= audio.packets + video.packets);
    }

    // A PLI makes the next frame a key frame (the periodic one is 3 s away).
    let pli = PictureLossIndication {
        sender_ssrc: 1,
        media_ssrc: config.video_ssrc,
    };
    bridge.send_rtcp(&pli.marshal().unwrap()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(participant.stats().plis_received[&config.video_ssrc], 1);
    assert_eq!(
        bridge.state.lock().unwrap().media[&config.video_ssrc].keyframes,
        2
    );

    // What the bridge forwards is verified: intact, tampered, and RTX.
    let mut body = vec![7u8; 100];
    append_trailer(
        &mut body,
        Trailer {
            ssrc: 0xabcd,
            seq: 10,
            sent_at_us: 0,
        },
    );
    bridge
        .send_rtp(&media_to_participant(0xabcd, 111, 10, &body))
        .await;
    let mut tampered = body.clone();
    tampered[5] ^= 0xff;
    bridge
        .send_rtp(&media_to_participant(0xabcd, 111, 10, &tampered))
        .await;
    let mut rtx = 10u16.to_be_bytes().to_vec();
    rtx.extend_from_slice(&body);
    bridge
        .send_rtp(&media_to_participant(0xabce, 96, 500, &rtx))
        .await;
    bridge
        .socket
        .send_to(b"\x80\x6f garbage", bridge.peer)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let stats = participant.stats();
    assert_eq!(stats.received[&0xabcd].packets, 2);
    assert_eq!(stats.received[&0xabcd].payload_errors, 1);
    assert_eq!(stats.rtx_received, [(0xabce, 10)]);
    assert_eq!(stats.rtx_payload_errors, 0);
    assert_eq!(stats.srtp_errors, 1);

    // Our feedback reaches the bridge as valid SRTCP.
    participant.send_pli(0x1234).await.unwrap();
    participant.send_nack(0x1234, 77).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(bridge.state.lock().unwrap().plis_for, [0x1234]);

    // Sender reports went out for both streams, counting what was sent.
    {
        let st = bridge.state.lock().unwrap();
        for ssrc in [config.audio_ssrc, config.video_ssrc] {
            let (_, count) = st
                .sender_reports
                .iter()
                .find(|(s, _)| *s == ssrc)
                .expect("a sender report per stream");
            assert!(u64::from(*count) <= st.media[&ssrc].packets);
            assert!(*count > 0);
        }
    }

    // stop_media really stops.
    participant.stop_media();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let before = participant.twcc_sent_sequences().len();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(participant.twcc_sent_sequences().len(), before);
    participant.start_media();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(participant.twcc_sent_sequences().len() > before);

    // close() releases the port.
    let addr = participant.local_addr();
    participant.close().await;
    UdpSocket::bind(addr).await.unwrap();
    assert!(bridge.dtls.lock().await.is_some());

    // Neither side's DTLS tasks outlive their connections.
    drop(bridge);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let metrics = tokio::runtime::Handle::current().metrics();
    assert_eq!(metrics.num_alive_tasks(), 0);
}

#[tokio::test]
async fn aes_cm_only_negotiates_aes_cm() {
    let mut config = ParticipantConfig::new("bob");
    config.srtp = SrtpChoice::AesCmOnly;
    config.send_video = false;
    let participant = Participant::bind(config.clone()).await.unwrap();
    let bridge = FakeBridge::start(&participant.local_description(), SrtpChoice::GcmFirst).await;
    participant
        .connect(&bridge.remote, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(
        participant.stats().srtp_profile.as_deref(),
        Some("SRTP_AES128_CM_HMAC_SHA1_80")
    );
    // With the default mtu the ClientHello fits in one datagram.
    assert_eq!(participant.stats().dtls_datagrams_before_reply, 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let st = bridge.state.lock().unwrap();
    assert!(st.media[&config.audio_ssrc].packets >= 10);
    assert!(!st.media.contains_key(&config.video_ssrc));
}

#[tokio::test]
async fn wrong_fingerprint_fails_the_handshake() {
    let participant = Participant::bind(ParticipantConfig::new("eve"))
        .await
        .unwrap();
    let bridge = FakeBridge::start(&participant.local_description(), SrtpChoice::GcmFirst).await;
    let mut remote = bridge.remote.clone();
    remote.fingerprint = fingerprint(b"not the bridge's certificate");
    let err = participant
        .connect(&remote, Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("DTLS"), "{err:#}");
    assert!(participant.stats().srtp_profile.is_none());
}

#[tokio::test]
async fn silent_bridge_times_out_naming_ice() {
    let participant = Arc::new(
        Participant::bind(ParticipantConfig::new("carol"))
            .await
            .unwrap(),
    );
    let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let remote = RemoteDescription {
        ufrag: "x".into(),
        pwd: "y".into(),
        candidates: vec![silent.local_addr().unwrap()],
        fingerprint: fingerprint(b"z"),
    };
    let started = std::time::Instant::now();
    // On another task: the participant and its futures must be Send + Sync for the benchmark.
    let p = Arc::clone(&participant);
    let err = tokio::spawn(async move { p.connect(&remote, Duration::from_millis(300)).await })
        .await
        .unwrap()
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(format!("{err}").contains("ICE"), "{err}");
    // Our checks kept going out to the bridge's candidate.
    let mut buf = [0u8; 1500];
    let (n, from) = silent.recv_from(&mut buf).await.unwrap();
    assert_eq!(from, participant.local_addr());
    assert_eq!(classify(&buf[..n]), PacketKind::Stun);
}
