//! Targets of the media crates: STUN and the ICE agent, RTP with its payload descriptors, every
//! RTCP kind, SRTP/SRTCP unprotect, and the DTLS session's datagram handling.

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tutti_ice::stun::{self, IntegrityKey, Message};
use tutti_ice::{AgentConfig, Credentials, IceAgent};
use tutti_rtp::codec::{self, h264, vp8, Codec};
use tutti_rtp::rtcp::{self as rtcp_packets, Packet};
use tutti_srtp::{Context, Profile};

use crate::Records;

/// The password the STUN target checks MESSAGE-INTEGRITY with (the seeds are keyed by it).
pub const STUN_PASSWORD: &str = "local-password-of-24-chr";

/// One STUN message: the bridge's cheap classifiers (`is_stun`, `peek_username`,
/// `is_binding_request`, `response_transaction_tag`), then the full parse and both checks.
pub fn stun(data: &[u8]) {
    stun::is_stun(data);
    stun::peek_username(data);
    stun::is_binding_request(data);
    stun::response_transaction_tag(data);
    if let Ok(message) = Message::parse(data) {
        let _ = message.check_fingerprint();
        let _ = message.check_integrity(&IntegrityKey::new(STUN_PASSWORD));
    }
}

/// Credentials of the ICE agent target and of the remote it talks to.
const AGENT_LOCAL: (&str, &str) = ("localufr", STUN_PASSWORD);
/// The remote's ufrag and password.
const AGENT_REMOTE: (&str, &str) = ("remoteuf", "remote-password-of-24-ch");

/// An ICE agent with two remote candidates fed a sequence of [`Records`]: op bit 0 picks the
/// role (first record only), bits 1-2 the source address (two candidates, one stranger), bit 3
/// makes the record a pause of `bytes[0]` ms of simulated time instead of a datagram. Every
/// datagram the agent wants to send and every event is drained after each step.
pub fn ice_agent(data: &[u8]) {
    let start = Instant::now();
    let mut now = start;
    let addrs: [SocketAddr; 3] = [
        SocketAddr::from(([10, 0, 0, 2], 5000)),
        SocketAddr::from(([10, 0, 0, 3], 5001)),
        SocketAddr::from(([192, 0, 2, 9], 9)),
    ];
    let mut agent: Option<IceAgent> = None;
    let mut buf = [0u8; 1500];
    for (op, bytes) in Records::new(data) {
        let agent = agent.get_or_insert_with(|| {
            let config = AgentConfig {
                controlling: op & 1 == 0,
                transaction_tag: 7,
                seed: 1,
                ..AgentConfig::default()
            };
            let local = Credentials {
                ufrag: AGENT_LOCAL.0.to_owned(),
                pwd: AGENT_LOCAL.1.to_owned(),
            };
            let mut agent = IceAgent::new(config, local, now);
            agent.set_remote_credentials(AGENT_REMOTE.0, AGENT_REMOTE.1, now);
            agent.add_remote_candidate(addrs[0], 2_130_706_431, now);
            agent.add_remote_candidate(addrs[1], 1_694_498_815, now);
            agent
        });
        if op & 0b1000 != 0 {
            now += Duration::from_millis(u64::from(bytes.first().copied().unwrap_or(1)));
        } else {
            let from = addrs[usize::from((op >> 1) & 0b11) % addrs.len()];
            if agent.handle_stun(from, bytes, now).is_ok() {
                agent.note_media_received(from, now);
            }
        }
        if agent.poll_timeout().is_some_and(|at| at <= now) {
            agent.handle_timeout(now);
        }
        while agent.poll_transmit(&mut buf).is_some() {}
        while agent.poll_event().is_some() {}
        agent.selected();
    }
}

/// One RTP packet: the header, its extensions (read, renamed, blanked, written), the payload
/// read as VP8 and as H.264 (frame info, SPS, key frame size) and the packet unwrapped as RTX.
pub fn rtp(data: &[u8]) {
    tutti_rtp::rtp::is_rtcp(data);
    let Ok(header) = tutti_rtp::rtp::parse(data) else {
        return;
    };
    let mut buf = data.to_vec();
    for (id, range) in tutti_rtp::rtp::extensions(data, &header) {
        if let Some(value) = tutti_rtp::rtp::read_u16_extension(data, range.clone()) {
            tutti_rtp::rtp::write_u16_extension(&mut buf, range, value.wrapping_add(1));
        }
        tutti_rtp::rtp::find_extension(data, &header, id);
    }
    tutti_rtp::rtp::rename_extension(&mut buf, &header, 1, 3);
    tutti_rtp::rtp::blank_extension(&mut buf, &header, 2);
    let payload = header.payload(data);
    for codec in [Codec::Vp8, Codec::H264, Codec::Other] {
        codec::frame_info(codec, payload);
    }
    if let Ok(descriptor) = vp8::parse(payload) {
        vp8::keyframe_size(payload, &descriptor);
        let mut payload = payload.to_vec();
        vp8::set_picture_id(&mut payload, &descriptor, 0x1234);
        vp8::set_tl0_pic_idx(&mut payload, &descriptor, 9);
    }
    let _ = h264::parse(payload);
    if let Some(sps) = h264::sps_in(payload) {
        h264::sps_size(sps);
    }
    h264::sps_size(payload);
    let _ = tutti_rtp::rtp::unwrap_rtx(&mut buf, &header, 0x1111, 100);
}

/// One (compound) RTCP packet: every packet of it decoded with every list expanded; the
/// transport-cc feedback's statuses and arrival times walked.
pub fn rtcp(data: &[u8]) {
    for (packet, raw) in rtcp_packets::packets(data).with_raw().flatten() {
        assert!(raw.len() <= data.len(), "a packet inside its compound");
        match packet {
            Packet::SenderReport { reports, .. } | Packet::ReceiverReport { reports, .. } => {
                reports.for_each(drop)
            }
            Packet::Fir { entries, .. } => entries.for_each(drop),
            Packet::Nack { lost, .. } => lost.for_each(drop),
            Packet::TransportCc { raw, .. } => {
                let _ = rtcp_packets::for_each_twcc_status(raw, |_, _| {});
                let _ = rtcp_packets::for_each_twcc_arrival(raw, |_, _| {});
            }
            Packet::Remb { ssrcs, .. } | Packet::Bye { ssrcs } => ssrcs.for_each(drop),
            Packet::Pli { .. } | Packet::Other { .. } => {}
        }
    }
}

/// The SRTP target's master key (both profiles use 16 bytes) and salt (GCM takes the first 12).
pub const SRTP_KEY: [u8; 16] = *b"tutti-fuzz-key16";
/// The SRTP target's master salt.
pub const SRTP_SALT: [u8; 14] = *b"tutti-fuzzsalt";

/// One protected packet: the first byte picks the profile (bit 0) and RTP or RTCP (bit 1), the
/// rest is unprotected in place with fixed keys, twice (the second time is a replay).
pub fn srtp(data: &[u8]) {
    let Some((&selector, packet)) = data.split_first() else {
        return;
    };
    let profile = if selector & 1 == 0 {
        Profile::AeadAes128Gcm
    } else {
        Profile::Aes128CmHmacSha1_80
    };
    let mut context = Context::new(profile, &SRTP_KEY, &SRTP_SALT[..profile.salt_len()])
        .expect("fixed keys of the right length");
    for _ in 0..2 {
        let mut buf = packet.to_vec();
        let len = buf.len();
        let _ = if selector & 2 == 0 {
            context.unprotect_rtp(&mut buf, len)
        } else {
            context.unprotect_rtcp(&mut buf, len)
        };
    }
}

/// One certificate for every DTLS session the targets create (generating one per input would
/// dominate the run).
pub(crate) fn certificate() -> &'static tutti_dtls::Certificate {
    static CERT: OnceLock<tutti_dtls::Certificate> = OnceLock::new();
    CERT.get_or_init(|| tutti_dtls::Certificate::generate().expect("a certificate"))
}

/// A DTLS session fed a sequence of datagrams ([`Records`]; op bit 0 of the first record picks
/// the role, bit 3 makes a record a pause of `bytes[0]` ms). tutti-dtls wraps OpenSSL, which
/// does the record layer and handshake reassembly (and is not instrumented); the crate's own
/// code is the datagram framing check (a datagram must be a sequence of DTLS records), the
/// memory BIO, timers, state and events, which is what this drives.
pub fn dtls(data: &[u8]) {
    let start = Instant::now();
    let mut now = start;
    let mut session: Option<tutti_dtls::Dtls> = None;
    for (op, bytes) in Records::new(data) {
        let session = session.get_or_insert_with(|| {
            let role = if op & 1 == 0 {
                tutti_dtls::Role::Server
            } else {
                tutti_dtls::Role::Client
            };
            let mut session = tutti_dtls::Dtls::new(
                certificate(),
                role,
                tutti_dtls::SrtpProfiles::GcmThenAesCm,
                [7; 32],
                now,
                Duration::from_secs(30),
            )
            .expect("a DTLS session");
            session.start(now);
            session
        });
        if op & 0b1000 != 0 {
            now += Duration::from_millis(u64::from(bytes.first().copied().unwrap_or(1)) * 10);
            if session.poll_timeout().is_some_and(|at| at <= now) {
                session.handle_timeout(now);
            }
        } else {
            session.handle_datagram(bytes, now);
        }
        while session.poll_transmit().is_some() {}
        while session.poll_event().is_some() {}
        session.is_connected();
    }
}
