//! The media plane: a sans-IO core ([`core::Core`]) that holds every conference and endpoint of
//! a worker, and the worker thread around it that owns the UDP socket and the clock (see
//! docs/architecture.md). The control plane talks to the worker only through [`Command`]s and
//! hears back through [`WorkerEvent`]s, so the packet path takes no lock.
//!
//! One type per concept, in the way of mediasoup's worker:
//! - [`endpoint::Endpoint`] — a participant: its [`transport::Transport`] (ICE, DTLS, SRTP,
//!   transport-cc both ways and the send history) and what it negotiated;
//! - [`producer::Producer`] — one source a sender sends: encodings, receive statistics, packet
//!   cache, NACK generator ([`nack`]), key-frame request rate limit;
//! - [`consumer::Consumer`] — one receiver × one producer: the layer it forwards, sequence
//!   rewriting, RTX;
//! - [`router::Router`] — one conference: producers → consumers, the fan-out loop.
//!
//! The path of one RTP packet: `worker.rs` (receive batch) → `core/` (demultiplex, the
//! sender's `Transport` decrypts once) → `Router::fan_out` → `Consumer::forward` (rewrite,
//! encrypt per receiver) → `udp.rs` (send batch).

mod allocator;
mod congestion;
pub mod constraints;
mod consumer;
pub mod core;
mod endpoint;
pub mod limits;
mod nack;
pub mod outbox;
mod paced_queue;
mod producer;
mod retransmission;
mod rewriter;
mod router;
mod send_history;
mod sources;
pub mod speakers;
pub mod stats;
mod stream_history;
mod transport;
pub mod udp;
pub mod worker;

use std::net::SocketAddr;

pub use router::MAX_ENCODINGS;
pub use sources::{
    GroupSemantics, LearntSource, ProducerSpec, SourceDesc, SourceGroup, SourceOutput, SourceSet,
};
pub use transport::{EndpointSettings, SpeakerSettings};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MediaKind {
    Audio,
    Video,
}

/// What the bridge offers as its DTLS setup; the remote's answer decides the role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RemoteSetup {
    /// The remote sends the ClientHello: the bridge is the DTLS server (browsers do this).
    Active,
    /// The remote waits: the bridge is the DTLS client.
    Passive,
}

#[derive(Clone, Debug)]
pub struct RemoteTransport {
    pub ufrag: String,
    pub pwd: String,
    /// UDP candidates only (TCP ones are dropped by the control plane): address and priority.
    pub candidates: Vec<(SocketAddr, u32)>,
    pub fingerprint: [u8; 32],
    pub setup: RemoteSetup,
}

/// The far side of a relay: its bridge's transport parameters, and the id it gave the relay
/// (put at the end of every datagram sent on it).
#[derive(Clone, Debug)]
pub struct RelayTransport {
    pub remote: RemoteTransport,
    pub link_id: u32,
}

/// A participant on the far bridge of a relay, as the focus describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteEndpoint {
    pub endpoint_id: String,
    /// What the conference's clients call it (bridge-channel messages, constraints).
    pub participant_id: String,
    /// Its sources, as its own bridge was given them.
    pub sources: SourceSet,
}

/// What an endpoint sends and receives of one media type.
#[derive(Clone, Debug, Default)]
pub struct MediaDesc {
    pub sends: bool,
    pub receives: bool,
    /// transport-wide-cc header extension id, when negotiated.
    pub twcc_extension: Option<u8>,
    /// ssrc-audio-level (RFC 6464) header extension id, when negotiated: the dominant speaker
    /// is read from it.
    pub audio_level_extension: Option<u8>,
    /// Ids of the extensions that name the sender's own m-line or encoding (mid, rid,
    /// repaired-rid). Removed from what it sends before forwarding: browsers route an incoming
    /// packet by its mid before its SSRC, so a forwarded sender's mid would land the packet on
    /// the receiver's transceiver of that number instead of the one signalled for the SSRC.
    /// The receiver's own mid id is where the bridge writes the MIDs it was given for it
    /// (`Command::UpdateEndpoint::receive_mids`).
    /// 0 = not negotiated (one slot per URI in `api::grpc::SENDER_LOCAL_URIS`).
    pub sender_local_extensions: [u8; 3],
    /// transport-cc rtcp-fb negotiated (else the bridge sends REMB).
    pub transport_cc: bool,
    /// (original payload type, rtx payload type) pairs.
    pub rtx: Vec<(u8, u8)>,
    /// (payload type, codec) of the payload types whose frames the bridge understands (VP8,
    /// H264).
    pub codecs: Vec<(u8, tutti_rtp::codec::Codec)>,
    /// Every payload type negotiated for this media, one bit each (bit n: payload type n).
    pub payload_types: u128,
}

impl MediaDesc {
    /// Whether `pt` was negotiated for this media.
    pub fn has_payload_type(&self, pt: u8) -> bool {
        pt < 128 && self.payload_types & (1u128 << pt) != 0
    }
}

/// A MID (RFC 8843): one the bridge writes into what it forwards to a receiver, or one a
/// sender's packets name a learnt source by. 1 to [`Mid::MAX`] token characters, kept inline (a
/// consumer or producer holds its own copy; nothing is allocated per packet).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mid {
    len: u8,
    bytes: [u8; Mid::MAX],
}

impl Mid {
    /// What the one-byte header extension form carries.
    pub const MAX: usize = 16;

    /// `None` unless `mid` is 1 to 16 of RFC 8843's token characters.
    pub fn new(mid: &str) -> Option<Mid> {
        let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`{|}~".contains(&b);
        if mid.is_empty() || mid.len() > Mid::MAX || !mid.bytes().all(token) {
            return None;
        }
        let mut bytes = [0; Mid::MAX];
        bytes[..mid.len()].copy_from_slice(mid.as_bytes());
        Some(Mid {
            len: mid.len() as u8,
            bytes,
        })
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

#[derive(Clone, Debug, Default)]
pub struct MediaConfig {
    pub audio: Option<MediaDesc>,
    pub video: Option<MediaDesc>,
}

impl MediaConfig {
    pub fn get(&self, kind: MediaKind) -> Option<&MediaDesc> {
        match kind {
            MediaKind::Audio => self.audio.as_ref(),
            MediaKind::Video => self.video.as_ref(),
        }
    }
}

/// Control-plane requests, already validated. Ids are minted by the focus. A few per endpoint
/// and session, never per packet: the size of the largest variant does not matter.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Command {
    CreateConference {
        conference_id: String,
    },
    ExpireConference {
        conference_id: String,
    },
    AllocateEndpoint {
        conference_id: String,
        endpoint_id: String,
        /// What the conference's clients call it (bridge-channel messages).
        participant_id: String,
        ice: tutti_ice::Credentials,
        /// The control plane's number for this allocation (1, 2, …): the worker publishes
        /// the last one it applied (`Snapshot::allocations`), so that a status says which
        /// allocations the load it reports counts.
        allocation: u64,
        /// It routes what it receives by MID: it gets only the streams `receive_mids` names.
        receives_by_mid: bool,
    },
    UpdateEndpoint {
        conference_id: String,
        endpoint_id: String,
        transport: Option<RemoteTransport>,
        media: Option<MediaConfig>,
        sources: Option<SourceSet>,
        /// Replaces the MIDs it receives streams under: (the SSRC it gets a stream under, MID);
        /// to an endpoint that receives by MID, the streams it is forwarded.
        receive_mids: Option<Vec<(u32, Mid)>>,
    },
    ExpireEndpoint {
        conference_id: String,
        endpoint_id: String,
    },
    /// A relay of a conference to another bridge (docs/bridge.md, Cascading): an endpoint
    /// named `relay_id`, its ICE agent `controlling` or controlled, known locally by `link_id`
    /// (unique among this bridge's relays).
    AllocateRelay {
        conference_id: String,
        relay_id: String,
        link_id: u32,
        ice: tutti_ice::Credentials,
        controlling: bool,
    },
    /// The far side of a relay, the media the conference negotiated (payload types and header
    /// extensions as its participants use them), and the participants behind it (replacing
    /// those it had). Fields that are absent are left as they were.
    UpdateRelay {
        conference_id: String,
        relay_id: String,
        transport: Option<RelayTransport>,
        media: Option<MediaConfig>,
        remote_endpoints: Option<Vec<RemoteEndpoint>>,
    },
    /// Expires a relay and the participants behind it.
    ExpireRelay {
        conference_id: String,
        relay_id: String,
    },
    /// Every receiver's allocation state, for the debug endpoint.
    DescribeReceivers {
        reply: tokio::sync::oneshot::Sender<Vec<core::describe::ReceiverReport>>,
    },
    /// What a receiver asked for over its bridge channel.
    SetConstraints {
        conference_id: String,
        endpoint_id: String,
        update: constraints::ConstraintsUpdate,
    },
}

/// What the worker tells the control plane.
#[derive(Clone, Debug)]
pub enum WorkerOutput {
    Endpoint(WorkerEvent),
    Forwarded(ForwardedEndpoints),
    ConnectionStats(ConnectionStats),
    Channel(ChannelNotice),
}

/// News for clients' bridge channels from the speaker detector and the allocators.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChannelNotice {
    /// A conference has a new dominant speaker (`DominantSpeakerEndpointChangeEvent`, to every
    /// member): its participant id, and those who were dominant before, most recent first.
    DominantSpeaker {
        conference_id: String,
        dominant: String,
        previous: Vec<String>,
    },
    /// The tallest video any receiver now wants of a sender's video sources
    /// (`SenderVideoConstraints.videoConstraints.idealHeight`, to that sender); 0: none.
    SenderConstraints {
        conference_id: String,
        endpoint_id: String,
        ideal_height: u32,
    },
}

/// A receiver's bandwidth estimate, for its bridge channel (`ConnectionStats`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionStats {
    pub conference_id: String,
    pub endpoint_id: String,
    pub estimated_downlink_bps: u64,
}

/// The endpoints whose video a receiver now gets (`LastNEndpointsChangeEvent`), from its
/// allocator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForwardedEndpoints {
    pub conference_id: String,
    pub endpoint_id: String,
    /// Their ids in bridge-channel messages.
    pub endpoints: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndpointState {
    Allocated,
    Connected,
    IceFailed,
    DtlsFailed,
    TimedOut,
    Expired,
}

/// A change of an endpoint's state, reported by the worker.
#[derive(Clone, Debug)]
pub struct WorkerEvent {
    pub conference_id: String,
    pub endpoint_id: String,
    pub state: EndpointState,
    pub detail: String,
    /// The endpoint is a relay to another bridge.
    pub relay: bool,
}

/// Endpoint settings from the configuration.
pub fn endpoint_settings(config: &crate::config::Config) -> anyhow::Result<EndpointSettings> {
    Ok(EndpointSettings {
        consent_timeout: config.consent_timeout(),
        ice_timeout: config.ice_timeout(),
        dtls_timeout: config.dtls_timeout(),
        srtp_profiles: config.srtp_profiles()?,
        retransmission_cache_packets: config.retransmission_cache_packets,
        receiver_bandwidth_bps: config.receiver_bandwidth_bps,
        speakers: config.speaker_settings(),
        limits: config.limit_settings(),
    })
}
