//! One member of a conference: a participant with its transport, what it negotiated to send
//! and receive, which of its router's producers it sends, and what it saw of streams that
//! stopped; or a relay to another bridge of the conference, or a participant on that bridge
//! whose sources arrive on a relay (docs/bridge.md, Cascading).

use std::net::SocketAddr;

use std::time::Instant;

use tutti_rtp::codec::Codec;
use tutti_rtp::rtp;

use super::constraints::ReceiverConstraints;
use super::limits::RateLimit;
use super::producer::StreamIds;
use super::stream_history::StreamHistory;
use super::transport::{EndpointSettings, Transport};
use super::{MediaConfig, MediaKind, Mid};

/// What a member of a conference is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EndpointKind {
    /// A client of this bridge.
    Participant,
    /// A relay to another bridge of the conference: it receives every local source, all of its
    /// encodings as they come, and carries the sources of the participants behind it.
    Relay {
        /// The id this bridge gave the relay: the far bridge ends every datagram of it with it.
        link_id: u32,
        /// The far bridge's addresses (its candidates): datagrams from them carry a link id.
        peers: Vec<SocketAddr>,
    },
    /// A participant on another bridge: its producers' packets arrive on the relay in `relay`
    /// (an endpoint slot), and what is sent to it (key-frame requests, NACKs) goes there. It
    /// uses no transport of its own and receives nothing.
    Remote { relay: usize },
}

pub struct Endpoint {
    pub kind: EndpointKind,
    pub conference_id: String,
    pub endpoint_id: String,
    /// What the conference's clients call it (in bridge-channel messages and constraints).
    pub participant_id: String,
    /// Its router's slot.
    pub conference: usize,
    /// Tags its STUN transactions (routes responses back to it).
    pub tag: u32,
    pub transport: Transport,
    pub media: MediaConfig,
    /// Its producers, as slots of its router.
    pub producers: Vec<usize>,
    pub history: StreamHistory,
    /// What it asked for over the bridge channel.
    pub constraints: ReceiverConstraints,
    /// The endpoints (by tag) it was last told it gets video from.
    pub forwarded: Vec<u32>,
    /// The MIDs it receives streams under, by the SSRC it gets each under (its consumers copy
    /// theirs).
    pub receive_mids: Vec<(u32, Mid)>,
    /// It routes what it receives by MID (a standards client): it gets only the streams
    /// `receive_mids` names (see [`Endpoint::takes`]).
    pub receives_by_mid: bool,
    /// The tallest video of it any receiver wants, as it was last told (SenderVideoConstraints).
    pub told_ideal_height: Option<u32>,
    /// SRTP and SRTCP packets it may send (`endpoint_packet_rate`).
    pub packet_limit: RateLimit,
    /// Key-frame requests and NACKed sequence numbers it may send (`endpoint_feedback_rate`).
    pub feedback_limit: RateLimit,
}

impl Endpoint {
    /// `random` is the RTCP SSRC the bridge uses towards it and a seed for its ICE agent;
    /// `controlling` its ICE role (towards clients the bridge is controlling).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        kind: EndpointKind,
        conference_id: String,
        endpoint_id: String,
        participant_id: String,
        conference: usize,
        tag: u32,
        random: (u32, u64),
        ice: tutti_ice::Credentials,
        controlling: bool,
        settings: &EndpointSettings,
        now: Instant,
    ) -> Endpoint {
        Endpoint {
            kind,
            conference_id,
            endpoint_id,
            participant_id,
            conference,
            tag,
            transport: Transport::new(ice, controlling, tag, random, settings, now),
            media: MediaConfig::default(),
            producers: Vec::new(),
            history: StreamHistory::new(),
            constraints: ReceiverConstraints::default(),
            forwarded: Vec::new(),
            receive_mids: Vec::new(),
            receives_by_mid: false,
            told_ideal_height: None,
            packet_limit: RateLimit::new(settings.limits.endpoint_packet_rate),
            feedback_limit: RateLimit::new(settings.limits.endpoint_feedback_rate),
        }
    }

    /// A client of this bridge (not a relay, not a participant behind one).
    pub fn is_participant(&self) -> bool {
        self.kind == EndpointKind::Participant
    }

    pub fn is_relay(&self) -> bool {
        matches!(self.kind, EndpointKind::Relay { .. })
    }

    /// The relay this member's media comes through, when it is on another bridge.
    pub fn relay(&self) -> Option<usize> {
        match self.kind {
            EndpointKind::Remote { relay } => Some(relay),
            _ => None,
        }
    }

    pub fn receives(&self, kind: MediaKind) -> bool {
        self.media.get(kind).is_some_and(|m| m.receives)
    }

    /// The id of the audio level extension in the audio it sends.
    pub fn audio_level_extension(&self) -> Option<u8> {
        self.media.audio.as_ref()?.audio_level_extension
    }

    /// The MID it receives the stream under `ssrc` under, if it was given one.
    pub fn receive_mid(&self, ssrc: u32) -> Option<Mid> {
        self.receive_mids
            .iter()
            .find(|(s, _)| *s == ssrc)
            .map(|(_, mid)| *mid)
    }

    /// Whether the stream it would get under `ssrc` is to be forwarded to it: always, unless it
    /// routes by MID and has no MID for the stream (its client has not accepted the stream's
    /// content, or removed it): a packet it could not place would reach it before its client
    /// has set up the stream (GStreamer's webrtcbin 1.22 took such packets badly, docs/focus.md).
    pub fn takes(&self, ssrc: u32) -> bool {
        !self.receives_by_mid || self.receive_mid(ssrc).is_some()
    }

    /// The id of its sdes:mid header extension for `kind`.
    pub fn mid_extension(&self, kind: MediaKind) -> Option<u8> {
        self.media
            .get(kind)
            .map(|m| m.sender_local_extensions[0])
            .filter(|&id| id != 0)
    }

    pub fn twcc_extension(&self, kind: MediaKind) -> Option<u8> {
        self.media.get(kind).and_then(|m| m.twcc_extension)
    }

    /// transport-cc feedback is expected by this endpoint (it sends the extension).
    pub fn wants_transport_cc(&self) -> bool {
        [MediaKind::Audio, MediaKind::Video].iter().any(|k| {
            self.media
                .get(*k)
                .is_some_and(|m| m.transport_cc && m.twcc_extension.is_some())
        })
    }

    /// The RTX payload type this endpoint negotiated for `original`.
    pub fn rtx_payload_type(&self, original: u8) -> Option<u8> {
        self.media
            .video
            .as_ref()?
            .rtx
            .iter()
            .find(|(apt, _)| *apt == original)
            .map(|(_, pt)| *pt)
    }

    /// The codec of one of this endpoint's video payload types.
    pub fn video_codec(&self, payload_type: u8) -> Codec {
        self.media
            .video
            .as_ref()
            .and_then(|v| v.codecs.iter().find(|(pt, _)| *pt == payload_type))
            .map_or(Codec::Other, |(_, codec)| *codec)
    }

    /// The payload type an RTX payload type of this endpoint retransmits.
    pub fn rtx_original_payload_type(&self, rtx: u8) -> Option<u8> {
        self.media
            .video
            .as_ref()?
            .rtx
            .iter()
            .find(|(_, pt)| *pt == rtx)
            .map(|(apt, _)| *apt)
    }

    /// What a packet from this endpoint on an SSRC it has not been heard on says of its
    /// stream: its mid, rid and repaired-rid extensions (at the ids of either media: BUNDLEd
    /// m-lines share them), whether its payload type is one of its RTX payload types, and
    /// which media's payload type it is.
    pub fn stream_ids<'a>(&self, packet: &'a [u8], header: &rtp::Header) -> StreamIds<'a> {
        let find = |slot: usize| {
            [&self.media.audio, &self.media.video]
                .into_iter()
                .flatten()
                .find_map(|m| rtp::find_extension(packet, header, m.sender_local_extensions[slot]))
                .and_then(|range| packet.get(range))
        };
        StreamIds {
            mid: find(0),
            rid: find(1),
            repaired_rid: find(2),
            rtx_payload: self
                .rtx_original_payload_type(header.payload_type)
                .is_some(),
            kind: match [MediaKind::Audio, MediaKind::Video].map(|kind| {
                self.media
                    .get(kind)
                    .is_some_and(|m| m.has_payload_type(header.payload_type))
            }) {
                [true, false] => Some(MediaKind::Audio),
                [false, true] => Some(MediaKind::Video),
                _ => None,
            },
        }
    }

    /// Blanks, once on arrival, the extensions of a packet from this endpoint that must not
    /// reach other endpoints (see `MediaDesc::sender_local_extensions`); the cached copy used for
    /// retransmissions is then clean too.
    pub fn remove_sender_local_extensions(&self, packet: &mut [u8], header: &rtp::Header) {
        if header.extensions.is_none() {
            return;
        }
        for media in [&self.media.audio, &self.media.video].into_iter().flatten() {
            for id in media.sender_local_extensions {
                rtp::blank_extension(packet, header, id);
            }
        }
    }

    /// Bytes held by this endpoint's own state (its producers are counted by its router).
    pub fn heap_bytes(&self) -> usize {
        let peers = match &self.kind {
            EndpointKind::Relay { peers, .. } => {
                peers.capacity() * std::mem::size_of::<SocketAddr>()
            }
            _ => 0,
        };
        let strings = peers
            + self.conference_id.capacity()
            + self.endpoint_id.capacity()
            + self.participant_id.capacity()
            + self.forwarded.len() * std::mem::size_of::<u32>()
            + self.receive_mids.capacity() * std::mem::size_of::<(u32, Mid)>();
        let media = [&self.media.audio, &self.media.video]
            .iter()
            .filter_map(|m| m.as_ref())
            .map(|m| m.rtx.capacity() * 2 + m.codecs.capacity() * 2)
            .sum::<usize>();
        std::mem::size_of::<Endpoint>()
            + strings
            + media
            + self.transport.heap_bytes()
            + self.producers.capacity() * std::mem::size_of::<usize>()
            + self.history.heap_bytes()
    }
}
