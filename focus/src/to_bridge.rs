//! A participant's Jingle as updates of its bridge endpoint (`UpdateEndpointRequest`), and the
//! bridge's answer of what it forwards of the participant's sources (`UpdateEndpointResponse`).
//!
//! In the sessions the focus runs, the focus is the initiator and the participant the
//! responder, so `senders` is read from the participant's side. All contents are BUNDLEd: every
//! candidate belongs to the one transport, whatever content a `transport-info` names (Chromium
//! names `0`, a content the focus never offered).

use std::net::IpAddr;

use tutti_proto::bridge_v1 as pb;

use crate::jingle::{DtlsSetup, GroupSemantics, Jingle, RtpDescription, Senders};
use crate::sources::{EndpointSources, Forwarded, MediaType, MidStream, SourceOutput};

/// The bridge parses header extensions with one-byte headers only (RFC 8285 ids 1 to 14).
const MAX_ONE_BYTE_HEADER_EXTENSION_ID: u8 = 14;

/// Why a participant's Jingle cannot be given to the bridge.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ToBridgeError {
    #[error("no ICE ufrag and pwd are known for the participant's transport")]
    MissingIceCredentials,
    #[error("the contents name different ICE credentials, but are bundled into one transport")]
    ConflictingIceCredentials,
    #[error("no DTLS fingerprint is known for the participant's transport")]
    MissingFingerprint,
    #[error("DTLS setup '{0}' in an answer; expected active or passive")]
    SetupNotAnAnswer(DtlsSetup),
    #[error("{media} is described twice")]
    DuplicateMedia { media: MediaType },
    #[error("rtx payload type {payload_type} lacks the 'apt' parameter")]
    RtxWithoutApt { payload_type: u8 },
    #[error("rtx payload type {payload_type}: apt '{apt}' is not a payload type from 0 to 127")]
    InvalidApt { payload_type: u8, apt: String },
}

/// Which bridge endpoint an update is for.
#[derive(Debug, Clone, Copy)]
pub struct EndpointId<'a> {
    pub conference_id: &'a str,
    pub endpoint_id: &'a str,
}

/// The participant's transport as the bridge last heard of it.
///
/// The bridge needs ICE credentials and the DTLS fingerprint in every transport update, but a
/// `transport-info` may carry only candidates, and lib-jitsi-meet's carries a fingerprint
/// without `setup`; what is missing is taken from what came before.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RemoteTransportState {
    ice: Option<pb::IceParameters>,
    dtls: Option<pb::DtlsParameters>,
}

impl RemoteTransportState {
    pub fn new() -> Self {
        RemoteTransportState::default()
    }

    /// The transport update for a `session-accept` or `transport-info`: the credentials and
    /// fingerprint (new or remembered) and the UDP candidates of this stanza. `None` when the
    /// stanza changes nothing (no candidates, same credentials and fingerprint). TCP candidates,
    /// RTCP components (rtcp-mux is mandatory), host names (mDNS) and port 0 are left out: the
    /// bridge reaches none of them.
    pub fn apply(&mut self, jingle: &Jingle) -> Result<Option<pb::RemoteTransport>, ToBridgeError> {
        let transports: Vec<_> = jingle
            .contents
            .iter()
            .filter_map(|content| content.transport.as_ref())
            .collect();
        let mut credentials = None;
        for transport in &transports {
            if let (Some(ufrag), Some(pwd)) = (&transport.ufrag, &transport.pwd) {
                match credentials {
                    Some((known_ufrag, known_pwd)) if (known_ufrag, known_pwd) != (ufrag, pwd) => {
                        return Err(ToBridgeError::ConflictingIceCredentials)
                    }
                    _ => credentials = Some((ufrag, pwd)),
                }
            }
        }
        let ice = match credentials {
            Some((ufrag, pwd)) => pb::IceParameters {
                ufrag: ufrag.clone(),
                pwd: pwd.clone(),
                controlling: false,
            },
            None => self
                .ice
                .clone()
                .ok_or(ToBridgeError::MissingIceCredentials)?,
        };
        let fingerprint = transports
            .iter()
            .flat_map(|transport| &transport.fingerprints)
            .next();
        let dtls = match fingerprint {
            Some(fingerprint) => {
                let setup = match fingerprint.setup {
                    Some(DtlsSetup::Active) => pb::DtlsSetup::Active,
                    Some(DtlsSetup::Passive) => pb::DtlsSetup::Passive,
                    Some(other) => return Err(ToBridgeError::SetupNotAnAnswer(other)),
                    None => self
                        .dtls
                        .as_ref()
                        .and_then(|known| pb::DtlsSetup::try_from(known.setup).ok())
                        .unwrap_or(pb::DtlsSetup::Unspecified),
                };
                pb::DtlsParameters {
                    hash: fingerprint.hash.clone(),
                    fingerprint: fingerprint.value.clone(),
                    setup: setup as i32,
                }
            }
            None => self.dtls.clone().ok_or(ToBridgeError::MissingFingerprint)?,
        };
        let candidates: Vec<pb::Candidate> = transports
            .iter()
            .flat_map(|transport| &transport.candidates)
            .filter(|candidate| {
                candidate.protocol.eq_ignore_ascii_case("udp")
                    && candidate.component == 1
                    && candidate.port != 0
                    && candidate.ip.parse::<IpAddr>().is_ok()
            })
            .map(|candidate| pb::Candidate {
                foundation: candidate.foundation.clone(),
                component: candidate.component.into(),
                protocol: "udp".to_owned(),
                priority: candidate.priority,
                ip: candidate.ip.clone(),
                port: candidate.port.into(),
                r#type: candidate.kind.as_str().to_owned(),
                generation: candidate.generation.unwrap_or(0),
            })
            .collect();
        let unchanged = self.ice.as_ref() == Some(&ice) && self.dtls.as_ref() == Some(&dtls);
        if unchanged && candidates.is_empty() {
            return Ok(None);
        }
        self.ice = Some(ice.clone());
        self.dtls = Some(dtls.clone());
        Ok(Some(pb::RemoteTransport {
            ice: Some(ice),
            candidates,
            dtls: Some(dtls),
        }))
    }
}

/// How many contents of one media type a session has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentsPerMedia {
    /// Jitsi's dialect: one audio and one video content; a second one is an error.
    One,
    /// The plain-XEP dialect: the client's own content of each media first, then one per
    /// remote stream. The first one of a media gives the payload types and header extensions
    /// (the focus offers the same in all of them); the directions are those of all of them.
    Many,
}

/// What the participant sends and receives, from its `session-accept`: per media type the
/// payload types (RTX with its `apt`, feedback of the payload type and of the description),
/// the header extensions the bridge can parse, and the direction. `None` when the stanza
/// describes no audio or video.
pub fn media_list(
    jingle: &Jingle,
    contents: ContentsPerMedia,
) -> Result<Option<pb::MediaList>, ToBridgeError> {
    let mut media: Vec<pb::Media> = Vec::new();
    let mut seen = Vec::new();
    for content in &jingle.contents {
        let Some(description) = &content.description else {
            continue;
        };
        let media_name = description.media.as_deref().unwrap_or(&content.name);
        let Some(kind) = MediaType::from_jingle(media_name) else {
            continue;
        };
        let (sends, receives) = match content.senders.unwrap_or(Senders::Both) {
            Senders::Both => (true, true),
            Senders::Initiator => (false, true),
            Senders::Responder => (true, false),
            Senders::None => (false, false),
        };
        if let Some(index) = seen.iter().position(|known| *known == kind) {
            if contents == ContentsPerMedia::One {
                return Err(ToBridgeError::DuplicateMedia { media: kind });
            }
            media[index].sends |= sends;
            media[index].receives |= receives;
            continue;
        }
        seen.push(kind);
        media.push(pb::Media {
            r#type: media_type(kind) as i32,
            payload_types: payload_types(description)?,
            header_extensions: description
                .header_extensions
                .iter()
                .filter(|extension| extension.id <= MAX_ONE_BYTE_HEADER_EXTENSION_ID)
                .map(|extension| pb::HeaderExtension {
                    id: extension.id.into(),
                    uri: extension.uri.clone(),
                })
                .collect(),
            sends,
            receives,
        });
    }
    Ok((!media.is_empty()).then_some(pb::MediaList { media }))
}

fn payload_types(description: &RtpDescription) -> Result<Vec<pb::PayloadType>, ToBridgeError> {
    description
        .payload_types
        .iter()
        .map(|payload_type| {
            let is_rtx = payload_type
                .name
                .as_deref()
                .is_some_and(|name| name.eq_ignore_ascii_case("rtx"));
            let rtx_apt = if is_rtx {
                let apt = payload_type
                    .parameter("apt")
                    .ok_or(ToBridgeError::RtxWithoutApt {
                        payload_type: payload_type.id,
                    })?;
                apt.parse::<u8>()
                    .ok()
                    .filter(|apt| *apt <= crate::jingle::MAX_PAYLOAD_TYPE)
                    .ok_or_else(|| ToBridgeError::InvalidApt {
                        payload_type: payload_type.id,
                        apt: crate::error::quote(apt),
                    })?
            } else {
                0
            };
            Ok(pb::PayloadType {
                id: payload_type.id.into(),
                name: payload_type.name.clone().unwrap_or_default(),
                clock_rate: payload_type.clockrate.unwrap_or(0),
                channels: payload_type.channels.unwrap_or(1),
                rtx_apt: rtx_apt.into(),
                rtcp_fb: payload_type
                    .rtcp_feedback
                    .iter()
                    .chain(&description.rtcp_feedback)
                    .map(|feedback| feedback.sdp_value())
                    .collect(),
            })
        })
        .collect()
}

/// A participant's sources for the bridge: every SSRC it sends (all simulcast layers and RTX:
/// the bridge receives them all) with media type, owner and name, its SIM and FID groups (the
/// only ones the bridge acts on), what receivers get its video sources under, and what it sends
/// without signalled SSRCs (`mid_streams`: the bridge learns their SSRCs from their MIDs).
pub fn source_list(
    owner: &str,
    sources: &EndpointSources,
    outputs: &[SourceOutput],
    mid_streams: &[MidStream],
) -> pb::SourceList {
    pb::SourceList {
        sources: sources
            .sources
            .iter()
            .map(|source| pb::Source {
                ssrc: source.ssrc,
                media_type: media_type(source.media) as i32,
                owner: owner.to_owned(),
                name: source.name.clone().unwrap_or_default(),
            })
            .collect(),
        groups: sources
            .groups
            .iter()
            .filter(|group| {
                matches!(
                    group.semantics,
                    GroupSemantics::Simulcast | GroupSemantics::Fid
                )
            })
            .map(|group| pb::SourceGroup {
                semantics: group.semantics.as_str().to_owned(),
                ssrcs: group.ssrcs.clone(),
            })
            .collect(),
        outputs: outputs
            .iter()
            .map(|output| pb::SourceOutput {
                source_ssrc: output.source,
                ssrc: output.ssrc,
                rtx_ssrc: output.rtx.unwrap_or(0),
            })
            .collect(),
        learnt_sources: mid_streams
            .iter()
            .map(|stream| pb::LearntSource {
                owner: owner.to_owned(),
                name: stream.source.name.clone(),
                rids: Vec::new(),
                output_ssrc: stream.ssrc,
                output_rtx_ssrc: stream.rtx.unwrap_or(0),
                mid: stream.source.mid.clone(),
                media_type: media_type(stream.source.media) as i32,
            })
            .collect(),
    }
}

/// The update for a participant's `session-accept`: transport, media and its (validated)
/// sources, all at once.
#[allow(clippy::too_many_arguments)]
pub fn session_accept_update(
    endpoint: EndpointId<'_>,
    owner: &str,
    accept: &Jingle,
    contents: ContentsPerMedia,
    transport: &mut RemoteTransportState,
    sources: &EndpointSources,
    outputs: &[SourceOutput],
    mid_streams: &[MidStream],
) -> Result<pb::UpdateEndpointRequest, ToBridgeError> {
    Ok(pb::UpdateEndpointRequest {
        conference_id: endpoint.conference_id.to_owned(),
        endpoint_id: endpoint.endpoint_id.to_owned(),
        transport: transport.apply(accept)?,
        media: media_list(accept, contents)?,
        sources: Some(source_list(owner, sources, outputs, mid_streams)),
        receive_mids: None,
    })
}

/// The update for a `transport-info`; `None` when it changes nothing.
pub fn transport_info_update(
    endpoint: EndpointId<'_>,
    transport_info: &Jingle,
    transport: &mut RemoteTransportState,
) -> Result<Option<pb::UpdateEndpointRequest>, ToBridgeError> {
    Ok(transport
        .apply(transport_info)?
        .map(|remote| pb::UpdateEndpointRequest {
            conference_id: endpoint.conference_id.to_owned(),
            endpoint_id: endpoint.endpoint_id.to_owned(),
            transport: Some(remote),
            media: None,
            sources: None,
            receive_mids: None,
        }))
}

/// The update after a `source-add` / `source-remove`: the participant's whole source set,
/// which replaces the bridge's.
pub fn sources_update(
    endpoint: EndpointId<'_>,
    owner: &str,
    sources: &EndpointSources,
    outputs: &[SourceOutput],
    mid_streams: &[MidStream],
) -> pb::UpdateEndpointRequest {
    pb::UpdateEndpointRequest {
        conference_id: endpoint.conference_id.to_owned(),
        endpoint_id: endpoint.endpoint_id.to_owned(),
        transport: None,
        media: None,
        sources: Some(source_list(owner, sources, outputs, mid_streams)),
        receive_mids: None,
    }
}

/// The update telling the bridge the MIDs a standards client receives its streams under: each
/// content's name (its m-line's MID) by the SSRC the stream is forwarded under. The bridge
/// writes them into what it forwards, for clients that route by MID.
pub fn receive_mids_update(
    endpoint: EndpointId<'_>,
    mids: &[(u32, String)],
) -> pb::UpdateEndpointRequest {
    pb::UpdateEndpointRequest {
        conference_id: endpoint.conference_id.to_owned(),
        endpoint_id: endpoint.endpoint_id.to_owned(),
        transport: None,
        media: None,
        sources: None,
        receive_mids: Some(pb::ReceiveMidList {
            mids: mids
                .iter()
                .map(|(ssrc, mid)| pb::ReceiveMid {
                    ssrc: *ssrc,
                    mid: mid.clone(),
                })
                .collect(),
        }),
    }
}

/// What the bridge forwards of a participant's sources to the others (the `forwarded` of its
/// `UpdateEndpointResponse`): the SSRCs receivers get and the groups among them. The owner,
/// name and media the bridge repeats are the focus's own; the participant's description of
/// each SSRC is what receivers are told.
pub fn forwarded_from_pb(forwarded: &pb::SourceList) -> Forwarded {
    Forwarded {
        ssrcs: forwarded.sources.iter().map(|source| source.ssrc).collect(),
        groups: forwarded
            .groups
            .iter()
            .map(|group| {
                (
                    GroupSemantics::from(group.semantics.as_str()),
                    group.ssrcs.clone(),
                )
            })
            .collect(),
    }
}

fn media_type(media: MediaType) -> pb::MediaType {
    match media {
        MediaType::Audio => pb::MediaType::Audio,
        MediaType::Video => pb::MediaType::Video,
    }
}

#[cfg(test)]
mod tests;
