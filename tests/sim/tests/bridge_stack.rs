//! SimPeer against the bridge's own transport crates: an endpoint built from `tutti-ice`
//! (controlling full agent), `tutti-dtls` (OpenSSL DTLS 1.2 server) and `tutti-srtp`, wired as
//! `bridge/src/media/transport.rs` wires them. ICE and DTLS complete, the SRTP profile is the
//! one the endpoint prefers (GCM, or AES-CM when it accepts only that), the peer's audio and
//! video arrive intact at the endpoint, the endpoint's own audio arrives intact at the peer,
//! and an SRTCP PLI from the endpoint makes the peer send a key frame.
//!
//! The handshake runs on a lossless network: OpenSSL times DTLS retransmissions by the real
//! clock, which does not advance in a simulation.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tutti_dtls::{Certificate, Dtls, Role, SrtpProfiles};
use tutti_ice::{AgentConfig, Credentials, IceAgent};
use tutti_participant::media::{append_trailer, build_rtp, verify_trailer, RtpFields, Trailer};
use tutti_sim::{LinkConfig, Node, Outbox, PeerConfig, Sim, SimPeer};
use tutti_srtp::{Context, Profile};

/// The bridge's host candidate priority (bridge/src/api/grpc.rs).
const HOST_PRIORITY: u32 = (126 << 24) | (65535 << 8) | 255;
/// The SSRC of the endpoint's own audio.
const ENDPOINT_AUDIO: u32 = 0xb0b0_0001;

/// One bridge endpoint on the bridge's transport crates, with a source of its own.
struct StackEndpoint {
    addr: SocketAddr,
    ice: IceAgent,
    dtls: Dtls,
    dtls_peer: Option<SocketAddr>,
    srtp: Option<(Context, Context)>,
    profile: Option<Profile>,
    /// Verified media packets per SSRC, and packets failing SRTP or the trailer check.
    received: HashMap<u32, u64>,
    errors: u64,
    rtcp: u64,
    /// Its audio: next send time and sequence number.
    next_audio: Option<Instant>,
    seq: u16,
    /// Sends one PLI for this SSRC a second after SRTP is up.
    pli_for: u32,
    pli_at: Option<Instant>,
}

impl StackEndpoint {
    fn new(
        addr: SocketAddr,
        cert: &Certificate,
        profiles: SrtpProfiles,
        peer: &tutti_sim::LocalParams,
        now: Instant,
    ) -> StackEndpoint {
        let mut ice = IceAgent::new(AgentConfig::default(), Credentials::random(), now);
        ice.set_remote_credentials(&peer.ufrag, &peer.pwd, now);
        ice.add_remote_candidate(peer.candidate, peer.priority, now);
        let dtls = Dtls::new(
            cert,
            Role::Server,
            profiles,
            peer.fingerprint,
            now,
            Duration::from_secs(10),
        )
        .unwrap();
        StackEndpoint {
            addr,
            ice,
            dtls,
            dtls_peer: None,
            srtp: None,
            profile: None,
            received: HashMap::new(),
            errors: 0,
            rtcp: 0,
            next_audio: None,
            seq: 65_500, // crosses the 16-bit wrap
            pli_for: 0,
            pli_at: None,
        }
    }

    fn pump(&mut self, now: Instant, out: &mut Outbox) {
        while let Some(event) = self.ice.poll_event() {
            if let tutti_ice::Event::AddressValidated(a) = event {
                self.dtls_peer = Some(a);
            }
        }
        let mut buf = [0u8; 1500];
        while let Some((to, n)) = self.ice.poll_transmit(&mut buf) {
            out.push(self.addr, to, buf[..n].to_vec());
        }
        let to = self.ice.selected().or(self.dtls_peer);
        while let Some(datagram) = self.dtls.poll_transmit() {
            if let Some(to) = to {
                out.push(self.addr, to, datagram);
            }
        }
        while let Some(event) = self.dtls.poll_event() {
            if let tutti_dtls::Event::Connected {
                srtp_profile_id,
                keying_material,
            } = event
            {
                let profile = Profile::from_id(srtp_profile_id).unwrap();
                self.profile = Some(profile);
                self.srtp = Some(
                    Context::pair_from_keying_material(profile, &keying_material, false).unwrap(),
                );
                self.next_audio = Some(now);
                self.pli_at = Some(now + Duration::from_secs(1));
            }
        }
    }

    fn send_protected(&mut self, mut packet: Vec<u8>, rtcp: bool, out: &mut Outbox) {
        let (Some((outbound, _)), Some(to)) = (self.srtp.as_mut(), self.ice.selected()) else {
            return;
        };
        let len = packet.len();
        packet.resize(len + 32, 0);
        let n = if rtcp {
            outbound.protect_rtcp(&mut packet, len)
        } else {
            outbound.protect_rtp(&mut packet, len)
        }
        .unwrap();
        packet.truncate(n);
        out.push(self.addr, to, packet);
    }
}

impl Node for StackEndpoint {
    fn addresses(&self) -> Vec<SocketAddr> {
        vec![self.addr]
    }

    fn handle_datagram(
        &mut self,
        now: Instant,
        from: SocketAddr,
        _to: SocketAddr,
        data: &[u8],
        out: &mut Outbox,
    ) {
        match data.first() {
            Some(0..=3) => {
                let _ = self.ice.handle_stun(from, data, now);
            }
            Some(20..=63) => self.dtls.handle_datagram(data, now),
            Some(128..=191) => {
                if let Some((_, inbound)) = self.srtp.as_mut() {
                    self.ice.note_media_received(from, now);
                    let mut buf = data.to_vec();
                    if tutti_rtp_is_rtcp(data) {
                        match inbound.unprotect_rtcp(&mut buf, data.len()) {
                            Ok(_) => self.rtcp += 1,
                            Err(_) => self.errors += 1,
                        }
                    } else {
                        match inbound.unprotect_rtp(&mut buf, data.len()) {
                            Ok(n) => {
                                let ssrc = u32::from_be_bytes(buf[8..12].try_into().unwrap());
                                let payload = rtp_payload(&buf[..n]);
                                if verify_trailer(payload).is_ok_and(|t| t.ssrc == ssrc) {
                                    *self.received.entry(ssrc).or_default() += 1;
                                } else {
                                    self.errors += 1;
                                }
                            }
                            Err(_) => self.errors += 1,
                        }
                    }
                }
            }
            _ => {}
        }
        self.pump(now, out);
    }

    fn handle_timeout(&mut self, now: Instant, out: &mut Outbox) {
        self.ice.handle_timeout(now);
        self.dtls.handle_timeout(now);
        while let Some(at) = self.next_audio.filter(|&t| t <= now) {
            let mut payload = vec![0x78; 100];
            append_trailer(
                &mut payload,
                Trailer {
                    ssrc: ENDPOINT_AUDIO,
                    seq: self.seq,
                    sent_at_us: 0,
                },
            );
            let fields = RtpFields {
                payload_type: 111,
                marker: false,
                seq: self.seq,
                timestamp: u32::from(self.seq).wrapping_mul(960),
                ssrc: ENDPOINT_AUDIO,
                twcc_ext_id: 5,
                twcc_seq: self.seq,
            };
            self.seq = self.seq.wrapping_add(1);
            self.send_protected(build_rtp(&fields, &payload), false, out);
            self.next_audio = Some(at + Duration::from_millis(20));
        }
        if self.pli_at.is_some_and(|t| t <= now) {
            self.pli_at = None;
            // An empty RR, then the PLI (RFC 4585 §6.3.1).
            let mut rtcp = vec![0x80, 201, 0, 1];
            rtcp.extend_from_slice(&ENDPOINT_AUDIO.to_be_bytes());
            rtcp.extend_from_slice(&[0x81, 206, 0, 2]);
            rtcp.extend_from_slice(&ENDPOINT_AUDIO.to_be_bytes());
            rtcp.extend_from_slice(&self.pli_for.to_be_bytes());
            self.send_protected(rtcp, true, out);
        }
        self.pump(now, out);
    }

    fn poll_timeout(&mut self) -> Option<Instant> {
        [
            self.ice.poll_timeout(),
            self.dtls.poll_timeout(),
            self.next_audio,
            self.pli_at,
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

fn tutti_rtp_is_rtcp(buf: &[u8]) -> bool {
    matches!(buf, [128..=191, 192..=223, ..])
}

/// The payload of a plain RTP packet with at most a header extension, no padding.
fn rtp_payload(packet: &[u8]) -> &[u8] {
    let cc = usize::from(packet[0] & 0x0f);
    let mut offset = 12 + 4 * cc;
    if packet[0] & 0x10 != 0 {
        let words = u16::from_be_bytes([packet[offset + 2], packet[offset + 3]]);
        offset += 4 + 4 * usize::from(words);
    }
    &packet[offset..]
}

fn call(
    profiles: SrtpProfiles,
) -> (
    Sim,
    tutti_sim::NodeId<SimPeer>,
    tutti_sim::NodeId<StackEndpoint>,
) {
    let start = Instant::now();
    let mut sim = Sim::new(9, start);
    sim.net
        .set_default_link(LinkConfig::new().delay(Duration::from_millis(10)));
    let bridge_addr: SocketAddr = "10.0.0.100:10000".parse().unwrap();

    let mut peer = SimPeer::new(
        PeerConfig::new("p", "10.0.0.1:5000".parse().unwrap(), 1),
        start,
    );
    let cert = Certificate::generate().unwrap();
    let mut endpoint = StackEndpoint::new(bridge_addr, &cert, profiles, &peer.local(), start);
    endpoint.pli_for = peer.config().video[0].ssrc;
    let creds = endpoint.ice.local_credentials().clone();
    let fingerprint = tutti_dtls::parse_fingerprint("sha-256", cert.fingerprint()).unwrap();
    peer.set_remote(
        &creds.ufrag,
        &creds.pwd,
        fingerprint,
        &[(bridge_addr, HOST_PRIORITY)],
    );
    peer.expect_audio(ENDPOINT_AUDIO);
    peer.set_sending(true);
    let p = sim.add("peer", peer);
    let e = sim.add("endpoint", endpoint);
    assert!(
        sim.run_until_cond(Duration::from_secs(5), |s| s.node(p).is_connected()),
        "ICE + DTLS with the bridge's stack did not complete"
    );
    sim.run_for(Duration::from_secs(3));
    (sim, p, e)
}

fn check(profiles: SrtpProfiles, expected: Profile) {
    let (sim, p, e) = call(profiles);
    let peer = sim.node(p);
    let endpoint = sim.node(e);
    assert_eq!(endpoint.profile, Some(expected));
    assert_eq!(endpoint.errors, 0);
    assert!(endpoint.rtcp > 0);

    let config = peer.config();
    let audio = config.audio.unwrap();
    let video = config.video[0].ssrc;
    let audio_sent = peer.tx(audio).unwrap().packets;
    assert!(audio_sent >= 150, "{audio_sent}");
    // Everything but what is still on the 10 ms link.
    assert!(
        endpoint.received[&audio] + 1 >= audio_sent,
        "{:?}",
        endpoint.received
    );
    assert!(endpoint.received[&video] + 10 >= peer.tx(video).unwrap().packets);

    let rx = peer.rx(ENDPOINT_AUDIO).unwrap();
    assert!(rx.received() >= 140, "{}", rx.received());
    assert!(rx.is_continuous(), "{:?}", rx.missing());
    assert_eq!(rx.payload_errors, 0);

    assert_eq!(peer.stats().rtcp_received.plis.get(&video), Some(&1));
    assert_eq!(peer.tx(video).unwrap().requested_keyframes, 1);
    assert_eq!(peer.stats().input_errors, 0);
}

#[test]
fn gcm_with_the_bridge_stack() {
    check(SrtpProfiles::GcmThenAesCm, Profile::AeadAes128Gcm);
}

#[test]
fn aes_cm_with_the_bridge_stack() {
    check(SrtpProfiles::AesCmOnly, Profile::Aes128CmHmacSha1_80);
}
