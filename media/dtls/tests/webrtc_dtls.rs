//! Interoperability against an independent DTLS implementation: webrtc-rs `dtls`, connected to
//! our sans-IO state machine through an in-memory datagram pipe (no sockets).

use std::sync::Arc;
use std::time::{Duration, Instant};

use dtls::config::{ClientAuthType, Config, ExtendedMasterSecretType};
use dtls::conn::DTLSConn;
use dtls::extension::extension_use_srtp::SrtpProtectionProfile;
use tutti_dtls::{Certificate, Dtls, Error, Event, Role, SrtpProfiles};
use webrtc_util::conn::conn_pipe::pipe;
use webrtc_util::{Conn, KeyingMaterialExporter};

const RECORD_HEADER_LEN: usize = 13;

/// What the webrtc-rs side saw once its handshake finished.
struct PeerResult {
    srtp_profile_id: u16,
    keying_material: Vec<u8>,
    /// sha-256 of the certificate we presented, as the peer received it.
    our_cert_sha256: [u8; 32],
    /// Kept alive so the peer does not tear down while our side finishes.
    _conn: DTLSConn,
}

struct Outcome {
    ours: Vec<Event>,
    peer: Result<PeerResult, String>,
    /// Datagrams the peer sent before we sent anything (its first flight when it is client).
    peer_first_flight: Vec<Vec<u8>>,
}

struct Peer {
    cert: dtls::crypto::Certificate,
    fingerprint: [u8; 32],
}

fn peer_identity() -> Peer {
    let cert = dtls::crypto::Certificate::generate_self_signed(vec!["peer".to_owned()]).unwrap();
    let fingerprint = openssl::sha::sha256(cert.certificate[0].as_ref());
    Peer { cert, fingerprint }
}

fn peer_config(peer: &Peer, profiles: Vec<SrtpProtectionProfile>, mtu: usize) -> Config {
    // The webrtc-rs peer asks rustls for its process-wide crypto provider, and the workspace
    // compiles two; pick one (installing again fails harmlessly).
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    Config {
        certificates: vec![peer.cert.clone()],
        srtp_protection_profiles: profiles,
        // Self-signed certificates: authenticity comes from the fingerprint, checked by the test.
        insecure_skip_verify: true,
        client_auth: ClientAuthType::RequireAnyClientCert,
        extended_master_secret: ExtendedMasterSecretType::Require,
        mtu,
        ..Default::default()
    }
}

/// Runs our `Dtls` against a webrtc-rs peer until both are done or a few seconds pass.
async fn run(ours: &mut Dtls, peer_is_client: bool, config: Config) -> Outcome {
    let (our_end, peer_end) = pipe();
    let peer_end: Arc<dyn Conn + Send + Sync> = Arc::new(peer_end);
    let peer_task = tokio::spawn(async move {
        let conn = DTLSConn::new(peer_end, config, peer_is_client, None)
            .await
            .map_err(|e| e.to_string())?;
        let srtp_profile_id = conn.selected_srtpprotection_profile() as u16;
        let state = conn.connection_state().await;
        // 2 * (key + salt) of the negotiated profile (RFC 5764, RFC 7714).
        let len = if srtp_profile_id == 1 { 60 } else { 56 };
        let keying_material = state
            .export_keying_material("EXTRACTOR-dtls_srtp", &[], len)
            .await
            .map_err(|e| e.to_string())?;
        let our_cert = state
            .peer_certificates
            .first()
            .ok_or("no peer certificate")?;
        Ok::<_, String>(PeerResult {
            srtp_profile_id,
            keying_material,
            our_cert_sha256: openssl::sha::sha256(our_cert),
            _conn: conn,
        })
    });

    if !peer_is_client {
        ours.start(Instant::now());
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut buf = vec![0u8; 4096];
    let mut ours_events = Vec::new();
    let mut peer_first_flight = Vec::new();
    let mut we_sent = false;
    loop {
        while let Some(d) = ours.poll_transmit() {
            we_sent = true;
            if our_end.send(&d).await.is_err() {
                break;
            }
        }
        ours_events.extend(std::iter::from_fn(|| ours.poll_event()));
        let ours_done = ours_events
            .iter()
            .any(|e| matches!(e, Event::Connected { .. } | Event::Failed(_)));
        if (ours_done && peer_task.is_finished()) || Instant::now() >= deadline {
            break;
        }
        // Wake at least every 20 ms to notice the peer task finishing.
        let wake = ours
            .poll_timeout()
            .unwrap_or(deadline)
            .min(deadline)
            .min(Instant::now() + Duration::from_millis(20));
        tokio::select! {
            r = our_end.recv(&mut buf) => match r {
                Ok(n) => {
                    if !we_sent {
                        peer_first_flight.push(buf[..n].to_vec());
                    }
                    ours.handle_datagram(&buf[..n], Instant::now());
                }
                Err(_) => break,
            },
            _ = tokio::time::sleep_until(wake.into()) => ours.handle_timeout(Instant::now()),
        }
    }
    let peer = if peer_task.is_finished() {
        peer_task.await.map_err(|e| e.to_string()).and_then(|r| r)
    } else {
        peer_task.abort();
        Err("peer did not finish".to_owned())
    };
    Outcome {
        ours: ours_events,
        peer,
        peer_first_flight,
    }
}

/// Our side in `role` offering `profiles`, against a webrtc-rs peer offering `peer_profiles`
/// (in its order of preference) with `mtu` (0: its default). With `impostor`, the peer
/// presents another certificate than the fingerprint we were told.
struct Handshake {
    role: Role,
    profiles: SrtpProfiles,
    peer_profiles: Vec<SrtpProtectionProfile>,
    mtu: usize,
    impostor: bool,
}

impl Handshake {
    fn new(role: Role, profiles: SrtpProfiles, peer_profiles: &[SrtpProtectionProfile]) -> Self {
        Self {
            role,
            profiles,
            peer_profiles: peer_profiles.to_vec(),
            mtu: 0,
            impostor: false,
        }
    }

    /// Runs it: our certificate, our state machine afterwards, and what both sides saw.
    async fn run(self) -> (Certificate, Dtls, Outcome) {
        let cert = Certificate::generate().unwrap();
        let peer = peer_identity();
        let mut dtls = Dtls::new(
            &cert,
            self.role,
            self.profiles,
            peer.fingerprint,
            Instant::now(),
            Duration::from_secs(5),
        )
        .unwrap();
        let presented = if self.impostor { peer_identity() } else { peer };
        let config = peer_config(&presented, self.peer_profiles, self.mtu);
        let outcome = run(&mut dtls, self.role == Role::Server, config).await;
        (cert, dtls, outcome)
    }
}

fn assert_agree(outcome: Outcome, cert: &Certificate, profile: u16, len: usize) {
    let peer = outcome.peer.expect("peer handshake");
    match outcome.ours.as_slice() {
        [Event::Connected {
            srtp_profile_id,
            keying_material,
        }] => {
            assert_eq!(*srtp_profile_id, profile);
            assert_eq!(peer.srtp_profile_id, profile);
            assert_eq!(keying_material.len(), len);
            assert_eq!(*keying_material, peer.keying_material);
        }
        other => panic!("expected Connected, got {other:?}"),
    }
    let ours = tutti_dtls::parse_fingerprint("sha-256", cert.fingerprint()).unwrap();
    assert_eq!(peer.our_cert_sha256, ours, "peer saw our certificate");
}

fn assert_fingerprint_mismatch(dtls: &Dtls, outcome: &Outcome) {
    assert!(
        matches!(
            outcome.ours.as_slice(),
            [Event::Failed(Error::FingerprintMismatch)]
        ),
        "{:?}",
        outcome.ours
    );
    assert!(!dtls.is_connected());
}

const GCM: SrtpProtectionProfile = SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm;
const AES_CM: SrtpProtectionProfile = SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80;

#[tokio::test]
async fn server_gcm_only_vs_webrtc_client() {
    let (cert, dtls, outcome) = Handshake::new(Role::Server, SrtpProfiles::GcmOnly, &[GCM])
        .run()
        .await;
    assert_agree(outcome, &cert, 7, 56);
    assert!(dtls.is_connected());
}

#[tokio::test]
async fn server_aes_cm_only_vs_webrtc_client() {
    let (cert, _, outcome) = Handshake::new(Role::Server, SrtpProfiles::AesCmOnly, &[AES_CM])
        .run()
        .await;
    assert_agree(outcome, &cert, 1, 60);
}

#[tokio::test]
async fn server_prefers_gcm_over_client_order() {
    let (cert, _, outcome) =
        Handshake::new(Role::Server, SrtpProfiles::GcmThenAesCm, &[AES_CM, GCM])
            .run()
            .await;
    assert_agree(outcome, &cert, 7, 56);
}

#[tokio::test]
async fn server_reassembles_client_hello_fragmented_over_datagrams() {
    let (cert, _, outcome) = Handshake {
        mtu: 32,
        ..Handshake::new(Role::Server, SrtpProfiles::GcmThenAesCm, &[GCM])
    }
    .run()
    .await;
    // Everything the client sent before our first answer is its ClientHello in fragments, one
    // handshake record per datagram, that together cover the message exactly once.
    let flight = &outcome.peer_first_flight;
    assert!(
        flight.len() >= 3,
        "ClientHello in {} datagrams",
        flight.len()
    );
    let mut covered = Vec::new();
    let mut total = None;
    for d in flight {
        assert!(d.len() >= RECORD_HEADER_LEN + 12, "{d:?}");
        assert_eq!(d[0], 22, "handshake record");
        let hs = &d[RECORD_HEADER_LEN..];
        assert_eq!(hs[0], 1, "ClientHello");
        let be24 = |b: &[u8]| u32::from_be_bytes([0, b[0], b[1], b[2]]) as usize;
        let (length, offset, frag_len) = (be24(&hs[1..4]), be24(&hs[6..9]), be24(&hs[9..12]));
        assert!(frag_len < length, "fragment, not the whole message");
        assert_eq!(hs.len(), 12 + frag_len, "one fragment per datagram");
        assert_eq!(*total.get_or_insert(length), length);
        covered.push((offset, frag_len));
    }
    covered.sort_unstable();
    let mut next = 0;
    for (offset, len) in covered {
        assert_eq!(offset, next, "fragments are contiguous");
        next += len;
    }
    assert_eq!(Some(next), total, "fragments cover the ClientHello");

    assert_agree(outcome, &cert, 7, 56);
}

#[tokio::test]
async fn client_vs_webrtc_server() {
    let (cert, dtls, outcome) =
        Handshake::new(Role::Client, SrtpProfiles::GcmThenAesCm, &[GCM, AES_CM])
            .run()
            .await;
    assert_agree(outcome, &cert, 7, 56);
    assert!(dtls.is_connected());
}

#[tokio::test]
async fn client_aes_cm_vs_webrtc_server() {
    let (cert, _, outcome) = Handshake::new(Role::Client, SrtpProfiles::AesCmOnly, &[AES_CM, GCM])
        .run()
        .await;
    assert_agree(outcome, &cert, 1, 60);
}

#[tokio::test]
async fn server_rejects_webrtc_client_with_wrong_fingerprint() {
    let (_, dtls, outcome) = Handshake {
        impostor: true,
        ..Handshake::new(Role::Server, SrtpProfiles::GcmThenAesCm, &[GCM])
    }
    .run()
    .await;
    assert_fingerprint_mismatch(&dtls, &outcome);
    assert!(outcome.peer.is_err(), "peer must not think it is connected");
}

#[tokio::test]
async fn client_rejects_webrtc_server_with_wrong_fingerprint() {
    let (_, dtls, outcome) = Handshake {
        impostor: true,
        ..Handshake::new(Role::Client, SrtpProfiles::GcmThenAesCm, &[GCM])
    }
    .run()
    .await;
    assert_fingerprint_mismatch(&dtls, &outcome);
}
