//! What the focus sends a participant: its `session-initiate` (the bridge's transport, the
//! codecs Jicofo offers and everyone else's sources) and later `source-add` / `source-remove`,
//! in Jitsi's dialect (two contents carrying every remote source, `ssrc-info`, the bridge
//! channel); [`standard`] is the plain-XEP dialect for standards clients, on the same codecs
//! and transport.

use tutti_proto::bridge_v1 as pb;

use crate::jingle::{
    Action, Candidate, CandidateType, Content, Creator, DtlsSetup, Fingerprint, HeaderExtension,
    IceUdpTransport, Jingle, Parameter, PayloadType, RtcpFeedback, RtpDescription, Senders, Source,
    SourceGroup,
};
use crate::jitsi::{BridgeSession, SsrcInfo, WebSocket};
use crate::sources::{MediaType, ReceiverView};
use crate::Extensions;

pub const AUDIO_LEVEL_URI: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";
pub const ABS_SEND_TIME_URI: &str = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time";
pub const TRANSPORT_CC_URI: &str =
    "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";
pub const MID_URI: &str = "urn:ietf:params:rtp-hdrext:sdes:mid";
pub const AV1_DEPENDENCY_DESCRIPTOR_URI: &str =
    "https://aomediacodec.github.io/av1-rtp-spec/#dependency-descriptor-rtp-header-extension";

/// Everything a `session-initiate` is built from.
#[derive(Debug, Clone, Copy)]
pub struct SessionInitiate<'a> {
    pub sid: &'a str,
    /// The focus's occupant JID, `room@muc/focus`: lib-jitsi-meet accepts a bridge session only
    /// from the resource `focus`.
    pub initiator: &'a str,
    /// The participant's JID.
    pub responder: &'a str,
    /// The bridge's side, from its `AllocateEndpointResponse`.
    pub bridge_transport: &'a pb::Transport,
    /// Everyone else's sources, from [`crate::sources::ConferenceSources::receiver_views_except`].
    pub sources: &'a [ReceiverView],
    /// Jitsi's `<bridge-session id>`: lets the client ask for restarts of this session.
    pub bridge_session_id: Option<&'a str>,
}

/// The bridge's transport cannot be offered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OfferError {
    #[error("the bridge's transport has no ICE credentials")]
    MissingIce,
    #[error("the bridge's transport has no DTLS fingerprint")]
    MissingDtls,
    #[error("bridge candidate {foundation}: {field} {value} is out of range")]
    CandidateOutOfRange {
        foundation: String,
        field: &'static str,
        value: u32,
    },
    #[error("bridge candidate {foundation}: unknown type '{kind}'")]
    CandidateType { foundation: String, kind: String },
}

/// The focus's `session-initiate` for one participant: audio and video contents in one BUNDLE
/// over the bridge's ICE-UDP transport, DTLS `actpass` unless the bridge chose otherwise.
pub fn session_initiate(offer: &SessionInitiate<'_>) -> Result<Jingle, OfferError> {
    let transport = bridge_transport(offer.bridge_transport, true)?;
    let mut jingle = Jingle::new(Action::SessionInitiate, offer.sid);
    jingle.initiator = Some(offer.initiator.to_owned());
    jingle.responder = Some(offer.responder.to_owned());
    for media in [MediaType::Audio, MediaType::Video] {
        let mut description = match media {
            MediaType::Audio => audio_description(),
            MediaType::Video => video_description(),
        };
        describe_sources(&mut description, media, offer.sources);
        let mut content = Content::new(media.as_str());
        content.creator = Some(Creator::Initiator);
        content.senders = Some(Senders::Both);
        content.description = Some(description);
        content.transport = Some(transport.clone());
        jingle.contents.push(content);
    }
    jingle
        .groups
        .push(crate::jingle::Group::bundle(["audio", "video"]));
    if let Some(id) = offer.bridge_session_id {
        jingle.extensions.set(&BridgeSession {
            id: Some(id.to_owned()),
            ..BridgeSession::default()
        });
    }
    Ok(jingle)
}

/// A `source-add` telling a participant of new remote sources; `None` when there are none.
pub fn source_add(sid: &str, views: &[ReceiverView]) -> Option<Jingle> {
    source_update(Action::SourceAdd, sid, views)
}

/// A `source-remove` telling a participant of remote sources that ended; `None` when there are
/// none.
pub fn source_remove(sid: &str, views: &[ReceiverView]) -> Option<Jingle> {
    source_update(Action::SourceRemove, sid, views)
}

fn source_update(action: Action, sid: &str, views: &[ReceiverView]) -> Option<Jingle> {
    let mut jingle = Jingle::new(action, sid);
    for media in [MediaType::Audio, MediaType::Video] {
        let mut description = RtpDescription::new(media.as_str());
        describe_sources(&mut description, media, views);
        if description.sources.is_empty() && description.source_groups.is_empty() {
            continue;
        }
        let mut content = Content::new(media.as_str());
        content.creator = Some(Creator::Initiator);
        content.description = Some(description);
        jingle.contents.push(content);
    }
    (!jingle.contents.is_empty()).then_some(jingle)
}

/// Adds the `media` sources and groups of `views` to `description`, each source with its
/// owner (`ssrc-info`) and `msid`, as lib-jitsi-meet needs to attach tracks to participants.
fn describe_sources(description: &mut RtpDescription, media: MediaType, views: &[ReceiverView]) {
    for view in views {
        let owner = SsrcInfo::new(view.owner());
        for source in view.sources().sources.iter().filter(|s| s.media == media) {
            let mut element = Source::new(source.ssrc);
            element.name = source.name.clone();
            element.video_type = source.video_type.clone();
            if let Some(msid) = &source.msid {
                element.parameters.push(Parameter::new("msid", msid));
            }
            element.extensions.set(&owner);
            description.sources.push(element);
        }
        for group in view.sources().groups.iter().filter(|g| g.media == media) {
            description.source_groups.push(SourceGroup::new(
                group.semantics.clone(),
                group.ssrcs.clone(),
            ));
        }
    }
}

/// Jicofo's audio offer: Opus with in-band FEC and transport-cc, and DTMF.
pub fn audio_description() -> RtpDescription {
    let mut opus = PayloadType::new(111, "opus", 48000, Some(2));
    opus.parameters = vec![
        Parameter::new("minptime", "10"),
        Parameter::new("useinbandfec", "1"),
    ];
    opus.rtcp_feedback = vec![RtcpFeedback::new("transport-cc", None)];
    let telephone_event = PayloadType::new(126, "telephone-event", 8000, None);
    RtpDescription {
        payload_types: vec![opus, telephone_event],
        header_extensions: vec![
            HeaderExtension::new(1, AUDIO_LEVEL_URI),
            HeaderExtension::new(3, ABS_SEND_TIME_URI),
            HeaderExtension::new(5, TRANSPORT_CC_URI),
            HeaderExtension::new(10, MID_URI),
        ],
        extmap_allow_mixed: true,
        rtcp_mux: true,
        ..RtpDescription::new("audio")
    }
}

/// Jicofo's video offer: AV1, VP8, VP9 and H.264 (constrained baseline), each with RTX and
/// FIR / NACK / PLI / transport-cc feedback.
pub fn video_description() -> RtpDescription {
    let codecs = [
        VideoCodec::new(41, "AV1", 42),
        VideoCodec::new(100, "VP8", 96),
        VideoCodec::new(101, "VP9", 97),
        VideoCodec {
            parameters: &[("profile-level-id", "42e01f"), ("packetization-mode", "1")],
            ..VideoCodec::new(107, "H264", 99)
        },
    ];
    let mut payload_types = Vec::new();
    for VideoCodec {
        id,
        name,
        rtx_id,
        parameters,
    } in codecs
    {
        let mut codec = PayloadType::new(id, name, 90000, None);
        codec.parameters = parameters
            .iter()
            .map(|(name, value)| Parameter::new(*name, *value))
            .collect();
        codec.rtcp_feedback = vec![
            RtcpFeedback::new("ccm", Some("fir")),
            RtcpFeedback::new("nack", None),
            RtcpFeedback::new("nack", Some("pli")),
            RtcpFeedback::new("transport-cc", None),
        ];
        let mut rtx = PayloadType::new(rtx_id, "rtx", 90000, None);
        rtx.parameters = vec![Parameter::new("apt", id.to_string())];
        payload_types.push(codec);
        payload_types.push(rtx);
    }
    RtpDescription {
        payload_types,
        header_extensions: vec![
            HeaderExtension::new(3, ABS_SEND_TIME_URI),
            HeaderExtension::new(5, TRANSPORT_CC_URI),
            HeaderExtension::new(10, MID_URI),
            HeaderExtension::new(11, AV1_DEPENDENCY_DESCRIPTOR_URI),
        ],
        extmap_allow_mixed: true,
        rtcp_mux: true,
        ..RtpDescription::new("video")
    }
}

/// One video codec of the offer and the payload type of its retransmissions.
struct VideoCodec {
    id: u8,
    name: &'static str,
    rtx_id: u8,
    parameters: &'static [(&'static str, &'static str)],
}

impl VideoCodec {
    const fn new(id: u8, name: &'static str, rtx_id: u8) -> Self {
        VideoCodec {
            id,
            name,
            rtx_id,
            parameters: &[],
        }
    }
}

/// The bridge's transport as Jingle: ICE credentials and candidates, the DTLS fingerprint,
/// rtcp-mux and, with `bridge_channel` (Jitsi's dialect), the bridge channel's WebSocket URL.
fn bridge_transport(
    transport: &pb::Transport,
    bridge_channel: bool,
) -> Result<IceUdpTransport, OfferError> {
    let ice = transport.ice.as_ref().ok_or(OfferError::MissingIce)?;
    let dtls = transport.dtls.as_ref().ok_or(OfferError::MissingDtls)?;
    let setup = match pb::DtlsSetup::try_from(dtls.setup) {
        Ok(pb::DtlsSetup::Active) => DtlsSetup::Active,
        Ok(pb::DtlsSetup::Passive) => DtlsSetup::Passive,
        _ => DtlsSetup::Actpass,
    };
    let mut jingle = IceUdpTransport::new(&ice.ufrag, &ice.pwd);
    jingle.fingerprints = vec![Fingerprint::new(&dtls.hash, &dtls.fingerprint, setup)];
    jingle.rtcp_mux = true;
    jingle.candidates = transport
        .candidates
        .iter()
        .enumerate()
        .map(|(index, candidate)| bridge_candidate(index, candidate))
        .collect::<Result<_, _>>()?;
    if bridge_channel && !transport.bridge_channel_url.is_empty() {
        jingle
            .extensions
            .set(&WebSocket::new(&transport.bridge_channel_url));
    }
    Ok(jingle)
}

fn bridge_candidate(index: usize, candidate: &pb::Candidate) -> Result<Candidate, OfferError> {
    let out_of_range = |field, value| OfferError::CandidateOutOfRange {
        foundation: candidate.foundation.clone(),
        field,
        value,
    };
    Ok(Candidate {
        component: u8::try_from(candidate.component)
            .map_err(|_| out_of_range("component", candidate.component))?,
        foundation: candidate.foundation.clone(),
        generation: Some(candidate.generation),
        id: Some(format!("bridge-{index}")),
        ip: candidate.ip.clone(),
        network: Some(0),
        port: u16::try_from(candidate.port).map_err(|_| out_of_range("port", candidate.port))?,
        priority: candidate.priority,
        protocol: candidate.protocol.clone(),
        kind: candidate.r#type.parse::<CandidateType>().map_err(|()| {
            OfferError::CandidateType {
                foundation: candidate.foundation.clone(),
                kind: candidate.r#type.clone(),
            }
        })?,
        rel_addr: None,
        rel_port: None,
        tcptype: None,
        extensions: Extensions::default(),
    })
}

pub mod standard;

#[cfg(test)]
mod tests;
