//! The bridge core's datagram path as a whole: demultiplex → endpoint (ICE, DTLS, SRTP) →
//! router, with no sockets.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tutti_bridge::api::grpc::{media_from_pb, sources_from_pb};
use tutti_bridge::media::core::Core;
use tutti_bridge::media::outbox::Datagrams;
use tutti_bridge::media::{
    Command, EndpointSettings, EndpointState, RemoteSetup, RemoteTransport, SpeakerSettings,
};
use tutti_ice::stun::{self, BindingRequest, Class, IntegrityKey, Message};
use tutti_proto::bridge_v1 as pb;
use tutti_srtp::{Context, Profile};

use crate::media::certificate;
use crate::Records;

/// A participant of the core target: its address, ICE credentials, DTLS client and, once the
/// handshake is done, its SRTP (outbound, inbound) contexts.
struct Peer {
    endpoint: &'static str,
    addr: SocketAddr,
    local_ufrag: String,
    dtls: tutti_dtls::Dtls,
    srtp: Option<(Context, Context)>,
}

impl Peer {
    /// The peer's ICE connectivity check to the bridge (controlled, as a browser sends it), fed
    /// to the core: during setup it shows the endpoint the peer's address, afterwards it renews
    /// consent (RFC 7675).
    fn check(&self, core: &mut Core, now: Instant, out: &mut Datagrams) {
        let mut buf = [0u8; 512];
        let username = format!("{}:{PEER_UFRAG}", self.local_ufrag);
        let len = BindingRequest {
            transaction_id: [self.endpoint.as_bytes()[0]; 12],
            username: &username,
            password: LOCAL_PWD,
            priority: 1_845_501_695,
            role: stun::Role::Controlled(1),
            use_candidate: false,
        }
        .encode(&mut buf)
        .expect("room for a request");
        core.handle_datagram(now, self.addr, &mut buf, len, out);
    }
}

/// Every peer's remote ICE password (the bridge checks them with it).
const PEER_PWD: &str = "remote-password-of-24-ch";
const PEER_UFRAG: &str = "remoteuf";
/// The bridge's ICE password for every endpoint.
const LOCAL_PWD: &str = "local-password-of-24-chr";
/// How many kinds of record the core target knows (op bits 0-2, modulo this).
const MEDIA_OPS: u8 = 5;

/// The media each peer negotiated: opus; VP8 with RTX, H.264; transport-cc and mid.
fn media() -> pb::MediaList {
    let pt = |id: u32, name: &str, rtx_apt: u32, rtcp_fb: &[&str]| pb::PayloadType {
        id,
        name: name.to_owned(),
        clock_rate: if name == "opus" { 48_000 } else { 90_000 },
        channels: u32::from(name == "opus") * 2,
        rtx_apt,
        rtcp_fb: rtcp_fb.iter().map(|s| (*s).to_owned()).collect(),
    };
    let extensions = vec![
        pb::HeaderExtension {
            id: 1,
            uri: "urn:ietf:params:rtp-hdrext:sdes:mid".to_owned(),
        },
        pb::HeaderExtension {
            id: 5,
            uri: "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"
                .to_owned(),
        },
        pb::HeaderExtension {
            id: 2,
            uri: "urn:ietf:params:rtp-hdrext:ssrc-audio-level".to_owned(),
        },
    ];
    let video_fb = ["nack", "nack pli", "ccm fir", "transport-cc", "goog-remb"];
    pb::MediaList {
        media: vec![
            pb::Media {
                r#type: pb::MediaType::Audio as i32,
                payload_types: vec![pt(111, "opus", 0, &["transport-cc"])],
                header_extensions: extensions.clone(),
                sends: true,
                receives: true,
            },
            pb::Media {
                r#type: pb::MediaType::Video as i32,
                payload_types: vec![
                    pt(100, "VP8", 0, &video_fb),
                    pt(101, "rtx", 100, &[]),
                    pt(102, "H264", 0, &video_fb),
                    pt(103, "rtx", 102, &[]),
                ],
                header_extensions: extensions,
                sends: true,
                receives: true,
            },
        ],
    }
}

/// Peer `n`'s sources: audio `n*1000+1`, a three-layer VP8 simulcast `n*1000+10..12` with RTX
/// `n*1000+20..22`.
fn sources(n: u32, owner: &str) -> pb::SourceList {
    let base = n * 1000;
    let source = |ssrc: u32, media_type: pb::MediaType, name: &str| pb::Source {
        ssrc,
        media_type: media_type as i32,
        owner: owner.to_owned(),
        name: name.to_owned(),
    };
    let mut list = pb::SourceList {
        sources: vec![source(base + 1, pb::MediaType::Audio, "a0")],
        ..pb::SourceList::default()
    };
    for layer in 0..3 {
        list.sources
            .push(source(base + 10 + layer, pb::MediaType::Video, "v0"));
        list.sources
            .push(source(base + 20 + layer, pb::MediaType::Video, "v0"));
        list.groups.push(pb::SourceGroup {
            semantics: "FID".to_owned(),
            ssrcs: vec![base + 10 + layer, base + 20 + layer],
        });
    }
    list.groups.push(pb::SourceGroup {
        semantics: "SIM".to_owned(),
        ssrcs: vec![base + 10, base + 11, base + 12],
    });
    list
}

/// A core with one conference of two endpoints, both through ICE and DTLS with their peers.
fn connected(start: Instant) -> (Core, Vec<Peer>, Datagrams) {
    let settings = EndpointSettings {
        consent_timeout: Duration::from_secs(10),
        ice_timeout: Duration::from_secs(10),
        dtls_timeout: Duration::from_secs(10),
        srtp_profiles: tutti_dtls::SrtpProfiles::GcmThenAesCm,
        retransmission_cache_packets: 64,
        receiver_bandwidth_bps: 2_500_000,
        speakers: SpeakerSettings {
            loudest_audio: Some(1),
            ..SpeakerSettings::default()
        },
        limits: tutti_bridge::media::limits::LimitSettings::default(),
    };
    let mut core = Core::new(certificate().clone(), settings, 1, start);
    let mut out = Datagrams::default();
    let bridge_fingerprint = tutti_dtls::parse_fingerprint("sha-256", certificate().fingerprint())
        .expect("our own fingerprint");
    core.handle_command(
        start,
        Command::CreateConference {
            conference_id: "c".to_owned(),
        },
        &mut out,
    );
    let media = media_from_pb(&media()).expect("valid media");
    let mut peers = Vec::new();
    for (n, endpoint) in [(1, "a"), (2, "b")] {
        let addr = SocketAddr::from(([10, 0, 0, n as u8], 5000));
        let local_ufrag = format!("ufrag-{endpoint}");
        core.handle_command(
            start,
            Command::AllocateEndpoint {
                conference_id: "c".to_owned(),
                endpoint_id: endpoint.to_owned(),
                participant_id: endpoint.to_owned(),
                ice: tutti_ice::Credentials {
                    ufrag: local_ufrag.clone(),
                    pwd: LOCAL_PWD.to_owned(),
                },
                allocation: u64::from(n),
                receives_by_mid: false,
            },
            &mut out,
        );
        core.handle_command(
            start,
            Command::UpdateEndpoint {
                conference_id: "c".to_owned(),
                endpoint_id: endpoint.to_owned(),
                transport: Some(RemoteTransport {
                    ufrag: PEER_UFRAG.to_owned(),
                    pwd: PEER_PWD.to_owned(),
                    candidates: vec![(addr, 2_130_706_431)],
                    // Both peers present the targets' one certificate.
                    fingerprint: bridge_fingerprint,
                    setup: RemoteSetup::Active,
                }),
                media: Some(media.clone()),
                sources: Some(sources_from_pb(&sources(n, endpoint), 64).expect("valid sources")),
                receive_mids: None,
            },
            &mut out,
        );
        let dtls = tutti_dtls::Dtls::new(
            certificate(),
            tutti_dtls::Role::Client,
            tutti_dtls::SrtpProfiles::GcmThenAesCm,
            bridge_fingerprint,
            start,
            Duration::from_secs(10),
        )
        .expect("a DTLS client");
        peers.push(Peer {
            endpoint,
            addr,
            local_ufrag,
            dtls,
            srtp: None,
        });
    }
    let mut now = start;
    let mut buf = vec![0u8; 1500];
    while peers.iter().any(|p| p.srtp.is_none()) && now < start + Duration::from_secs(5) {
        for (to, bytes) in std::mem::take(&mut out.sent) {
            let Some(peer) = peers.iter_mut().find(|p| p.addr == to) else {
                continue;
            };
            match bytes.first() {
                Some(0..=3) => {
                    let Ok(request) = Message::parse(&bytes) else {
                        continue;
                    };
                    if request.class != Class::Request {
                        continue;
                    }
                    let len = stun::write_binding_success(
                        &mut buf,
                        &request.transaction_id,
                        to,
                        &IntegrityKey::new(PEER_PWD),
                    )
                    .expect("room for a response");
                    core.handle_datagram(now, to, &mut buf, len, &mut out);
                    // The peer checks back, so the bridge's endpoint learns the address.
                    peer.check(&mut core, now, &mut out);
                    peer.dtls.start(now);
                }
                Some(20..=63) => peer.dtls.handle_datagram(&bytes, now),
                _ => {}
            }
        }
        for peer in &mut peers {
            if peer.dtls.poll_timeout().is_some_and(|at| at <= now) {
                peer.dtls.handle_timeout(now);
            }
            while let Some(mut datagram) = peer.dtls.poll_transmit() {
                let len = datagram.len();
                core.handle_datagram(now, peer.addr, &mut datagram, len, &mut out);
            }
            while let Some(event) = peer.dtls.poll_event() {
                if let tutti_dtls::Event::Connected {
                    srtp_profile_id,
                    keying_material,
                } = event
                {
                    let profile = Profile::from_id(srtp_profile_id).expect("a negotiated profile");
                    peer.srtp =
                        Context::pair_from_keying_material(profile, &keying_material, true).ok();
                }
            }
        }
        if core.poll_timeout() <= now {
            core.handle_timeout(now, &mut out);
        }
        now += Duration::from_millis(5);
    }
    while core.poll_event().is_some() {}
    while core.poll_forwarded().is_some() {}
    out.sent.clear();
    (core, peers, out)
}

/// A core with its two connected peers, the clock they share and the core's outbox.
struct Connected {
    core: Core,
    peers: Vec<Peer>,
    out: Datagrams,
    now: Instant,
}

impl Connected {
    /// A core whose two peers went through ICE and DTLS (asserted: the setup itself must work).
    fn new() -> Connected {
        let start = Instant::now();
        let (core, peers, out) = connected(start);
        assert!(
            peers.iter().all(|p| p.srtp.is_some()),
            "the setup connects both peers"
        );
        Connected {
            core,
            peers,
            out,
            now: start + Duration::from_secs(1),
        }
    }

    /// Each peer checks its pair again (ICE consent, RFC 7675), as a browser does every few
    /// seconds, so the endpoints stay alive across inputs.
    fn keep_alive(&mut self) {
        for peer in &self.peers {
            peer.check(&mut self.core, self.now, &mut self.out);
        }
        self.out.sent.clear();
    }

    /// Feeds one input's [`Records`] (see [`bridge_core`]); false if an endpoint failed or
    /// ended on the way (so a warm core is not reused).
    fn feed(&mut self, data: &[u8]) -> bool {
        let stranger = SocketAddr::from(([192, 0, 2, 7], 7));
        let mut alive = true;
        for (op, bytes) in Records::new(data) {
            let peer = &mut self.peers[usize::from((op >> 3) & 1)];
            let mut buf = bytes.to_vec();
            buf.resize(bytes.len() + 64, 0);
            let kind = (op & 0b111) % MEDIA_OPS;
            let from = match kind {
                0 => Some((peer.addr, bytes.len())),
                1 | 2 => peer.srtp.as_mut().and_then(|(outbound, _)| {
                    let protected = if kind == 1 {
                        outbound.protect_rtp(&mut buf, bytes.len())
                    } else {
                        outbound.protect_rtcp(&mut buf, bytes.len())
                    };
                    protected.ok().map(|len| (peer.addr, len))
                }),
                3 => Some((stranger, bytes.len())),
                _ => {
                    self.now +=
                        Duration::from_millis(u64::from(bytes.first().copied().unwrap_or(1)));
                    None
                }
            };
            if let Some((from, len)) = from {
                self.core
                    .handle_datagram(self.now, from, &mut buf, len, &mut self.out);
            }
            if self.core.poll_timeout() <= self.now {
                self.core.handle_timeout(self.now, &mut self.out);
            }
            self.out.sent.clear();
            while let Some(event) = self.core.poll_event() {
                alive &= event.state == EndpointState::Connected;
            }
            while self.core.poll_forwarded().is_some() {}
        }
        alive
    }
}

/// A conference of two connected endpoints fed a sequence of [`Records`]. Op bits 0-2: 0 a raw
/// datagram from a peer, 1 plaintext RTP the peer protects first, 2 plaintext RTCP the peer
/// protects first, 3 a raw datagram from an unknown address, 4 a pause of `bytes[0]` ms; bit 3
/// picks the peer. The setup (ICE checks answered, DTLS handshakes with tutti-dtls clients)
/// runs for every input, so the router is reached with packets only the fuzzer shaped, and
/// each input's outcome depends on it alone.
pub fn bridge_core(data: &[u8]) {
    Connected::new().feed(data);
}

thread_local! {
    /// The warm target's connected core, kept from one input to the next.
    static WARM: RefCell<Option<Connected>> = const { RefCell::new(None) };
}

/// [`bridge_core`] on a core connected once and kept across inputs: each input is fed to
/// the same two endpoints after a second of simulated time and a consent check from each peer,
/// and the core is connected anew only when an input made an endpoint fail or end. The two DTLS
/// handshakes per input are most of [`bridge_core`]'s cost; the price of skipping them: an
/// input's outcome also depends on the inputs before it in the process (SRTP replay windows,
/// sequence numbers and estimates they left), so a crash found here is reproduced by replaying
/// the run's inputs in order, or shrunk with `bridge_core`.
pub fn bridge_core_warm(data: &[u8]) {
    WARM.with_borrow_mut(|warm| {
        let connected = warm.get_or_insert_with(Connected::new);
        connected.now += Duration::from_secs(1);
        connected.keep_alive();
        if !connected.feed(data) {
            *warm = None;
        }
    });
}
