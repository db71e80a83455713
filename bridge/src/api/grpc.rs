//! The gRPC control API (`tutti.bridge.v1.Bridge`): turns requests into validated commands and
//! control errors into status codes a person can act on.

use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::wrappers::{BroadcastStream, IntervalStream, WatchStream};
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status};
use tutti_proto::bridge_v1 as pb;
use tutti_proto::bridge_v1::bridge_server::Bridge;
use tutti_rtp::codec::Codec;

use crate::control::{Control, ControlError};
use crate::lifecycle::BridgeState;
use crate::media::{
    Command, EndpointState, GroupSemantics, LearntSource, MediaConfig, MediaDesc, MediaKind, Mid,
    RelayTransport, RemoteEndpoint, RemoteSetup, RemoteTransport, SourceDesc, SourceGroup,
    SourceOutput, SourceSet, WorkerEvent, MAX_ENCODINGS,
};
use crate::metrics::Rates;

/// Header extensions that only mean something between a sender and its own peer connection.
pub(crate) const SENDER_LOCAL_URIS: [&str; 3] = [
    "urn:ietf:params:rtp-hdrext:sdes:mid",
    "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id",
    "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id",
];
/// RFC 6464 client-to-mixer audio level: the dominant speaker is read from it.
const AUDIO_LEVEL_URI: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";
const TRANSPORT_CC_URI: &str =
    "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";
/// ICE candidate priority of the bridge's host candidate (type preference 126, RFC 8445).
const HOST_PRIORITY: u32 = (126 << 24) | (65535 << 8) | 255;
const MAX_CANDIDATES: usize = 32;
/// How often every `WatchEvents` stream carries the bridge's status.
pub const STATUS_INTERVAL: Duration = Duration::from_millis(500);

pub struct BridgeService {
    pub control: Arc<Control>,
    pub rates: Arc<Rates>,
}

fn bridge_state_to_pb(state: BridgeState) -> pb::BridgeState {
    match state {
        BridgeState::Operational => pb::BridgeState::Operational,
        BridgeState::Draining => pb::BridgeState::Draining,
        BridgeState::ShuttingDown => pb::BridgeState::ShuttingDown,
    }
}

/// The bridge's identity, state and load now.
fn status(control: &Control, rates: &Rates) -> pb::BridgeStatus {
    // The snapshot first: the stress, read after it, counts at least its allocations.
    let (conferences, endpoints, allocations) = control
        .snapshot
        .lock()
        .map(|s| (s.conferences, s.endpoints, s.allocations))
        .unwrap_or_default();
    let (_, _, stress) = rates.current();
    let config = &control.config;
    pb::BridgeStatus {
        bridge_id: config.bridge_id.clone(),
        region: config.region.clone(),
        version: env!("CARGO_PKG_VERSION").into(),
        state: bridge_state_to_pb(control.lifecycle.state()) as i32,
        stress,
        conferences: conferences as u32,
        endpoints: endpoints as u32,
        endpoint_capacity: config.endpoint_capacity,
        instance: control.instance.clone(),
        allocations,
    }
}

impl From<ControlError> for Status {
    fn from(e: ControlError) -> Status {
        let message = e.to_string();
        match e {
            ControlError::UnknownConference(_)
            | ControlError::UnknownEndpoint { .. }
            | ControlError::UnknownRelay { .. } => Status::not_found(message),
            ControlError::Invalid(_) => Status::invalid_argument(message),
            ControlError::Conflict(_) => Status::already_exists(message),
            ControlError::WorkerGone
            | ControlError::WorkerBusy
            | ControlError::NotTakingConferences(..) => Status::unavailable(message),
        }
    }
}

fn invalid(message: impl Into<String>) -> Status {
    Status::invalid_argument(message.into())
}

fn state_to_pb(state: EndpointState) -> pb::EndpointState {
    match state {
        EndpointState::Allocated => pb::EndpointState::Allocated,
        EndpointState::Connected => pb::EndpointState::Connected,
        EndpointState::IceFailed => pb::EndpointState::IceFailed,
        EndpointState::DtlsFailed => pb::EndpointState::DtlsFailed,
        EndpointState::TimedOut => pb::EndpointState::TimedOut,
        EndpointState::Expired => pb::EndpointState::Expired,
    }
}

fn event_to_pb(event: WorkerEvent) -> pb::EndpointEvent {
    pb::EndpointEvent {
        conference_id: event.conference_id,
        endpoint_id: event.endpoint_id,
        state: state_to_pb(event.state) as i32,
        detail: event.detail,
        relay: event.relay,
    }
}

fn kind_from_pb(value: i32, what: &str) -> Result<MediaKind, Status> {
    match pb::MediaType::try_from(value) {
        Ok(pb::MediaType::Audio) => Ok(MediaKind::Audio),
        Ok(pb::MediaType::Video) => Ok(MediaKind::Video),
        _ => Err(invalid(format!(
            "{what}: media type must be audio or video"
        ))),
    }
}

fn ice_chars(value: &str) -> bool {
    value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

pub fn remote_transport_from_pb(t: &pb::RemoteTransport) -> Result<RemoteTransport, Status> {
    let ice = t
        .ice
        .as_ref()
        .ok_or_else(|| invalid("transport.ice (ufrag and pwd) is required"))?;
    if !(4..=256).contains(&ice.ufrag.len()) || !ice_chars(&ice.ufrag) {
        return Err(invalid(
            "transport.ice.ufrag must be 4 to 256 ice-chars (RFC 8839)",
        ));
    }
    if !(22..=256).contains(&ice.pwd.len()) || !ice_chars(&ice.pwd) {
        return Err(invalid(
            "transport.ice.pwd must be 22 to 256 ice-chars (RFC 8839)",
        ));
    }
    let dtls = t
        .dtls
        .as_ref()
        .ok_or_else(|| invalid("transport.dtls (fingerprint and setup) is required"))?;
    let fingerprint =
        tutti_dtls::parse_fingerprint(&dtls.hash, &dtls.fingerprint).map_err(|e| {
            invalid(format!(
                "invalid DTLS fingerprint ({} {:?}): {e}",
                dtls.hash, dtls.fingerprint
            ))
        })?;
    let setup = match pb::DtlsSetup::try_from(dtls.setup) {
        Ok(pb::DtlsSetup::Active) | Ok(pb::DtlsSetup::Unspecified) => RemoteSetup::Active,
        Ok(pb::DtlsSetup::Passive) => RemoteSetup::Passive,
        _ => {
            return Err(invalid(
                "transport.dtls.setup of an answer must be active or passive",
            ))
        }
    };
    let mut candidates = Vec::new();
    for c in &t.candidates {
        if c.protocol.eq_ignore_ascii_case("tcp") {
            continue;
        }
        if !c.protocol.eq_ignore_ascii_case("udp") {
            return Err(invalid(format!(
                "candidate protocol {:?}: expected udp or tcp",
                c.protocol
            )));
        }
        let ip: IpAddr =
            c.ip.parse()
                .map_err(|_| invalid(format!("candidate ip {:?} is not an IP address", c.ip)))?;
        let port = u16::try_from(c.port)
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| invalid(format!("candidate port {} out of range", c.port)))?;
        if candidates.len() == MAX_CANDIDATES {
            return Err(invalid(format!("more than {MAX_CANDIDATES} candidates")));
        }
        candidates.push((SocketAddr::new(ip, port), c.priority));
    }
    Ok(RemoteTransport {
        ufrag: ice.ufrag.clone(),
        pwd: ice.pwd.clone(),
        candidates,
        fingerprint,
        setup,
    })
}

/// The far side of a relay, and its ICE and DTLS roles (controlling, DTLS client).
pub fn relay_transport_from_pb(
    t: &pb::RelayTransport,
) -> Result<(RelayTransport, (bool, bool)), Status> {
    let ice = t
        .ice
        .as_ref()
        .ok_or_else(|| invalid("transport.ice (ufrag, pwd and role) is required"))?;
    let dtls_active =
        match t.dtls.as_ref().map(|d| pb::DtlsSetup::try_from(d.setup)) {
            Some(Ok(pb::DtlsSetup::Active)) => true,
            Some(Ok(pb::DtlsSetup::Passive)) => false,
            _ => return Err(invalid(
                "transport.dtls.setup of a relay must be ACTIVE (the controlling side) or PASSIVE",
            )),
        };
    if t.link_id == 0 {
        return Err(invalid("transport.link_id must be non-zero"));
    }
    let remote = remote_transport_from_pb(&pb::RemoteTransport {
        ice: t.ice.clone(),
        candidates: t.candidates.clone(),
        dtls: t.dtls.clone(),
    })?;
    if remote.candidates.is_empty() {
        return Err(invalid(
            "transport.candidates: a relay needs the far bridge's UDP address",
        ));
    }
    Ok((
        RelayTransport {
            remote,
            link_id: t.link_id,
        },
        (ice.controlling, dtls_active),
    ))
}

/// The participants behind a relay, as an `UpdateRelay` lists them.
#[derive(Debug)]
pub struct RemoteEndpoints {
    /// Their endpoint ids, and every SSRC they take (sources and outputs).
    pub ids: Vec<String>,
    pub ssrcs: Vec<u32>,
    /// What the worker is told of them.
    pub endpoints: Vec<RemoteEndpoint>,
}

/// The participants behind a relay, checked.
pub fn remote_endpoints_from_pb(
    list: &pb::RemoteEndpointList,
    max_sources: usize,
) -> Result<RemoteEndpoints, Status> {
    let (mut ids, mut ssrcs, mut remotes) = (Vec::new(), Vec::new(), Vec::new());
    for e in &list.endpoints {
        if e.endpoint_id.is_empty() || e.endpoint_id.len() > 256 {
            return Err(invalid("remote endpoint_id must be 1 to 256 bytes long"));
        }
        if e.participant_id.len() > 256 {
            return Err(invalid(format!(
                "remote endpoint {:?}: participant_id longer than 256 bytes",
                e.endpoint_id
            )));
        }
        if ids.contains(&e.endpoint_id) {
            return Err(invalid(format!(
                "remote endpoint {:?} listed twice",
                e.endpoint_id
            )));
        }
        let list = e.sources.as_ref().ok_or_else(|| {
            invalid(format!(
                "remote endpoint {:?}: sources are required",
                e.endpoint_id
            ))
        })?;
        let sources = sources_from_pb(list, max_sources).map_err(|s| {
            invalid(format!(
                "remote endpoint {:?}: {}",
                e.endpoint_id,
                s.message()
            ))
        })?;
        for ssrc in taken_ssrcs(&sources) {
            if ssrcs.contains(&ssrc) {
                return Err(Status::already_exists(format!(
                    "remote endpoint {:?}: ssrc {ssrc} is taken by another remote endpoint",
                    e.endpoint_id
                )));
            }
            ssrcs.push(ssrc);
        }
        ids.push(e.endpoint_id.clone());
        remotes.push(RemoteEndpoint {
            endpoint_id: e.endpoint_id.clone(),
            participant_id: if e.participant_id.is_empty() {
                e.endpoint_id.clone()
            } else {
                e.participant_id.clone()
            },
            sources,
        });
    }
    Ok(RemoteEndpoints {
        ids,
        ssrcs,
        endpoints: remotes,
    })
}

/// Most streams one endpoint may be given MIDs for.
const MAX_RECEIVE_MIDS: usize = 1024;

/// The MIDs an endpoint receives streams under, checked.
pub fn receive_mids_from_pb(list: &pb::ReceiveMidList) -> Result<Vec<(u32, Mid)>, Status> {
    if list.mids.len() > MAX_RECEIVE_MIDS {
        return Err(invalid(format!(
            "too many receive_mids: {} (at most {MAX_RECEIVE_MIDS})",
            list.mids.len()
        )));
    }
    let mut mids: Vec<(u32, Mid)> = Vec::with_capacity(list.mids.len());
    for m in &list.mids {
        if m.ssrc == 0 {
            return Err(invalid("receive_mids: ssrc 0"));
        }
        if mids.iter().any(|(ssrc, _)| *ssrc == m.ssrc) {
            return Err(invalid(format!(
                "receive_mids: ssrc {} listed twice",
                m.ssrc
            )));
        }
        let mid = Mid::new(&m.mid).ok_or_else(|| {
            invalid(format!(
                "receive_mids: ssrc {}: mid {:?} is not 1 to {} token characters",
                m.ssrc,
                m.mid.chars().take(32).collect::<String>(),
                Mid::MAX
            ))
        })?;
        mids.push((m.ssrc, mid));
    }
    Ok(mids)
}

/// Every SSRC an endpoint's sources take in the conference: what it sends and what its
/// sources are forwarded under.
fn taken_ssrcs(s: &SourceSet) -> Vec<u32> {
    s.sources
        .iter()
        .map(|d| d.ssrc)
        .chain(
            s.outputs
                .iter()
                .flat_map(|o| std::iter::once(o.ssrc).chain(o.rtx)),
        )
        .chain(
            s.learnt_sources
                .iter()
                .flat_map(|l| std::iter::once(l.output.0).chain(l.output.1)),
        )
        .collect()
}

pub fn media_from_pb(list: &pb::MediaList) -> Result<MediaConfig, Status> {
    let mut config = MediaConfig::default();
    for media in &list.media {
        let kind = kind_from_pb(media.r#type, "media")?;
        let mut desc = MediaDesc {
            sends: media.sends,
            receives: media.receives,
            ..MediaDesc::default()
        };
        for pt in &media.payload_types {
            if pt.id > 127 {
                return Err(invalid(format!(
                    "payload type {} out of range 0..=127",
                    pt.id
                )));
            }
            desc.payload_types |= 1u128 << pt.id;
            if pt.rtcp_fb.iter().any(|fb| fb == "transport-cc") {
                desc.transport_cc = true;
            }
            let codec = Codec::from_encoding_name(&pt.name);
            if codec != Codec::Other {
                desc.codecs.push((pt.id as u8, codec));
            }
            if pt.name.eq_ignore_ascii_case("rtx") {
                if pt.rtx_apt > 127 {
                    return Err(invalid(format!(
                        "rtx payload type {}: apt {} out of range",
                        pt.id, pt.rtx_apt
                    )));
                }
                desc.rtx.push((pt.rtx_apt as u8, pt.id as u8));
            }
        }
        for ext in &media.header_extensions {
            if !(1..=14).contains(&ext.id) {
                return Err(invalid(format!(
                    "header extension {} id {} out of range 1..=14",
                    ext.uri, ext.id
                )));
            }
            if ext.uri == TRANSPORT_CC_URI {
                desc.twcc_extension = Some(ext.id as u8);
            }
            if ext.uri == AUDIO_LEVEL_URI && kind == MediaKind::Audio {
                desc.audio_level_extension = Some(ext.id as u8);
            }
            if let Some(slot) = SENDER_LOCAL_URIS.iter().position(|uri| *uri == ext.uri) {
                desc.sender_local_extensions[slot] = ext.id as u8;
            }
        }
        let slot = match kind {
            MediaKind::Audio => &mut config.audio,
            MediaKind::Video => &mut config.video,
        };
        if slot.is_some() {
            return Err(invalid("media: one entry per media type"));
        }
        *slot = Some(desc);
    }
    Ok(config)
}

pub fn sources_from_pb(list: &pb::SourceList, max_sources: usize) -> Result<SourceSet, Status> {
    if list.sources.len() > max_sources {
        return Err(invalid(format!(
            "too many sources: {} (at most {max_sources} per endpoint)",
            list.sources.len()
        )));
    }
    let mut set = SourceSet::default();
    for s in &list.sources {
        if s.ssrc == 0 {
            return Err(invalid("source ssrc 0 is not allowed"));
        }
        if set.sources.iter().any(|d| d.ssrc == s.ssrc) {
            return Err(invalid(format!("source ssrc {} listed twice", s.ssrc)));
        }
        if s.name.len() > 256 {
            return Err(invalid(format!(
                "source {}: name longer than 256 bytes",
                s.ssrc
            )));
        }
        set.sources.push(SourceDesc {
            ssrc: s.ssrc,
            kind: kind_from_pb(s.media_type, &format!("source {}", s.ssrc))?,
            name: s.name.clone(),
        });
    }
    for g in &list.groups {
        let semantics = match g.semantics.as_str() {
            "SIM" => GroupSemantics::Simulcast,
            "FID" => GroupSemantics::Fid,
            other => {
                return Err(invalid(format!(
                    "source group semantics {other:?}: expected SIM or FID"
                )))
            }
        };
        if semantics == GroupSemantics::Fid && g.ssrcs.len() != 2 {
            return Err(invalid("an FID group has exactly two SSRCs (media, rtx)"));
        }
        if g.ssrcs.is_empty() {
            return Err(invalid("empty source group"));
        }
        if let Some(stranger) = g
            .ssrcs
            .iter()
            .find(|s| !set.sources.iter().any(|d| d.ssrc == **s))
        {
            return Err(invalid(format!(
                "group {} references ssrc {stranger}, which is not one of the endpoint's sources",
                g.semantics
            )));
        }
        set.groups.push(SourceGroup {
            semantics,
            ssrcs: g.ssrcs.clone(),
        });
    }
    let firsts: Vec<u32> = set
        .producers()
        .iter()
        .map(|spec| spec.encodings[0].0)
        .collect();
    for o in &list.outputs {
        if !firsts.contains(&o.source_ssrc) {
            return Err(invalid(format!(
                "output for ssrc {}, which is not the first ssrc of one of the endpoint's sources",
                o.source_ssrc
            )));
        }
        let rtx = (o.rtx_ssrc != 0).then_some(o.rtx_ssrc);
        for ssrc in std::iter::once(o.ssrc).chain(rtx) {
            if ssrc == 0 {
                return Err(invalid("output ssrc 0 is not allowed"));
            }
            if set.sources.iter().any(|d| d.ssrc == ssrc) {
                return Err(invalid(format!(
                    "output ssrc {ssrc} is one of the endpoint's own sources"
                )));
            }
            if set
                .outputs
                .iter()
                .any(|p| p.source == o.source_ssrc || p.ssrc == ssrc || p.rtx == Some(ssrc))
                || rtx == Some(o.ssrc)
            {
                return Err(invalid(format!(
                    "output ssrc {ssrc} (source {}) listed twice",
                    o.source_ssrc
                )));
            }
        }
        set.outputs.push(SourceOutput {
            source: o.source_ssrc,
            ssrc: o.ssrc,
            rtx,
        });
    }
    for l in &list.learnt_sources {
        set.learnt_sources.push(learnt_source_from_pb(l, &set)?);
    }
    Ok(set)
}

/// A learnt source, checked against the sources and outputs already in `set`.
fn learnt_source_from_pb(l: &pb::LearntSource, set: &SourceSet) -> Result<LearntSource, Status> {
    let name = || l.name.chars().take(64).collect::<String>();
    let mid = match l.mid.as_str() {
        "" => None,
        mid => Some(Mid::new(mid).ok_or_else(|| {
            invalid(format!(
                "learnt source {:?}: mid {:?} is not 1 to {} token characters",
                name(),
                mid.chars().take(32).collect::<String>(),
                Mid::MAX
            ))
        })?),
    };
    if (mid.is_none() && l.rids.is_empty()) || l.rids.len() > MAX_ENCODINGS {
        return Err(invalid(format!(
            "learnt source {:?}: a mid, or 1 to {MAX_ENCODINGS} rids",
            name()
        )));
    }
    for (i, rid) in l.rids.iter().enumerate() {
        let valid = (1..=16).contains(&rid.len())
            && rid
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid || l.rids[..i].contains(rid) {
            return Err(invalid(format!(
                "learnt source {:?}: rid {:?} (1 to 16 letters, digits, '-' or '_', each once)",
                name(),
                rid.chars().take(32).collect::<String>()
            )));
        }
    }
    if l.name.len() > 256 {
        return Err(invalid("learnt source name longer than 256 bytes"));
    }
    if mid.is_some() && set.learnt_sources.iter().any(|other| other.mid == mid) {
        return Err(invalid(format!(
            "learnt source {:?}: mid {:?} names another source too",
            name(),
            l.mid
        )));
    }
    let kind = match l.media_type {
        0 => MediaKind::Video,
        other => kind_from_pb(other, &format!("learnt source {:?}", name()))?,
    };
    let rtx = (l.output_rtx_ssrc != 0).then_some(l.output_rtx_ssrc);
    let taken = |ssrc: u32| {
        set.sources.iter().any(|d| d.ssrc == ssrc)
            || set
                .outputs
                .iter()
                .any(|o| o.ssrc == ssrc || o.rtx == Some(ssrc))
            || set
                .learnt_sources
                .iter()
                .any(|s| s.output.0 == ssrc || s.output.1 == Some(ssrc))
    };
    for ssrc in std::iter::once(l.output_ssrc).chain(rtx) {
        if ssrc == 0 || taken(ssrc) || rtx == Some(l.output_ssrc) {
            return Err(invalid(format!(
                "learnt source {:?}: output ssrc {ssrc} is 0 or taken",
                name()
            )));
        }
    }
    Ok(LearntSource {
        kind,
        name: l.name.clone(),
        mid,
        rids: l.rids.clone(),
        output: (l.output_ssrc, rtx),
    })
}

/// What receivers get of an endpoint's sources (`UpdateEndpointResponse::forwarded`): one
/// stream per producer under its output SSRCs, each described as the request described the
/// producer's first SSRC.
fn forwarded_to_pb(list: &pb::SourceList, set: &SourceSet) -> pb::SourceList {
    let described = |first: u32, ssrc: u32| {
        let source = list.sources.iter().find(|s| s.ssrc == first)?;
        Some(pb::Source {
            ssrc,
            ..source.clone()
        })
    };
    let mut forwarded = pb::SourceList::default();
    for spec in set.producers().iter().filter(|spec| !spec.is_learnt()) {
        let first = spec.encodings[0].0;
        let (ssrc, rtx) = spec.output_ssrcs();
        forwarded.sources.extend(described(first, ssrc));
        if let Some(rtx) = rtx {
            forwarded.sources.extend(described(first, rtx));
            forwarded.groups.push(pb::SourceGroup {
                semantics: "FID".into(),
                ssrcs: vec![ssrc, rtx],
            });
        }
    }
    for (l, learnt) in list.learnt_sources.iter().zip(&set.learnt_sources) {
        let (ssrc, rtx) = (l.output_ssrc, l.output_rtx_ssrc);
        let media_type = match learnt.kind {
            MediaKind::Audio => pb::MediaType::Audio,
            MediaKind::Video => pb::MediaType::Video,
        };
        let described = |ssrc| pb::Source {
            ssrc,
            media_type: media_type as i32,
            owner: l.owner.clone(),
            name: l.name.clone(),
        };
        forwarded.sources.push(described(ssrc));
        if rtx != 0 {
            forwarded.sources.push(described(rtx));
            forwarded.groups.push(pb::SourceGroup {
                semantics: "FID".into(),
                ssrcs: vec![ssrc, rtx],
            });
        }
    }
    forwarded
}

type EventStream = Pin<Box<dyn Stream<Item = Result<pb::BridgeEvent, Status>> + Send>>;

impl BridgeService {
    /// The bridge's host candidates: its advertised addresses (else its media address) at its
    /// media port.
    fn candidates(&self) -> Vec<pb::Candidate> {
        let config = &self.control.config;
        let port = self.control.media_address.port();
        let addresses: Vec<IpAddr> = if config.advertised_addresses.is_empty() {
            vec![self.control.media_address.ip()]
        } else {
            config.advertised_addresses.clone()
        };
        addresses
            .iter()
            .enumerate()
            .map(|(i, ip)| pb::Candidate {
                foundation: (i + 1).to_string(),
                component: 1,
                protocol: "udp".into(),
                priority: HOST_PRIORITY - i as u32,
                ip: ip.to_string(),
                port: port as u32,
                r#type: "host".into(),
                generation: 0,
            })
            .collect()
    }
}

#[tonic::async_trait]
impl Bridge for BridgeService {
    async fn create_conference(
        &self,
        request: Request<pb::CreateConferenceRequest>,
    ) -> Result<Response<pb::CreateConferenceResponse>, Status> {
        let r = request.into_inner();
        let created = self.control.create_conference(&r.conference_id, &r.name)?;
        if created {
            tracing::info!(conference = %r.conference_id, name = %r.name, "conference created");
        }
        Ok(Response::new(pb::CreateConferenceResponse { created }))
    }

    async fn expire_conference(
        &self,
        request: Request<pb::ExpireConferenceRequest>,
    ) -> Result<Response<pb::ExpireConferenceResponse>, Status> {
        let r = request.into_inner();
        let expired = self.control.expire_conference(&r.conference_id)?;
        Ok(Response::new(pb::ExpireConferenceResponse {
            endpoints_expired: expired as u32,
        }))
    }

    async fn allocate_endpoint(
        &self,
        request: Request<pb::AllocateEndpointRequest>,
    ) -> Result<Response<pb::AllocateEndpointResponse>, Status> {
        let r = request.into_inner();
        let setup = match pb::DtlsSetup::try_from(r.dtls_setup) {
            Ok(pb::DtlsSetup::Unspecified) | Ok(pb::DtlsSetup::Actpass) => pb::DtlsSetup::Actpass,
            _ => {
                return Err(invalid(
                    "the bridge offers dtls_setup ACTPASS only: the remote's answer picks the role",
                ))
            }
        };
        let (ice, bridge_channel_url, allocation) = self.control.allocate_endpoint(
            &r.conference_id,
            &r.endpoint_id,
            &r.participant_id,
            r.receives_by_mid,
        )?;
        Ok(Response::new(pb::AllocateEndpointResponse {
            created: allocation.is_some(),
            allocation: allocation.unwrap_or(0),
            transport: Some(pb::Transport {
                ice: Some(pb::IceParameters {
                    ufrag: ice.ufrag,
                    pwd: ice.pwd,
                    controlling: true,
                }),
                candidates: self.candidates(),
                dtls: Some(pb::DtlsParameters {
                    hash: "sha-256".into(),
                    fingerprint: self.control.fingerprint.clone(),
                    setup: setup as i32,
                }),
                bridge_channel_url,
            }),
        }))
    }

    async fn update_endpoint(
        &self,
        request: Request<pb::UpdateEndpointRequest>,
    ) -> Result<Response<pb::UpdateEndpointResponse>, Status> {
        let r = request.into_inner();
        let transport = r
            .transport
            .as_ref()
            .map(remote_transport_from_pb)
            .transpose()?;
        let media = r.media.as_ref().map(media_from_pb).transpose()?;
        let sources = r
            .sources
            .as_ref()
            .map(|s| sources_from_pb(s, self.control.config.max_sources_per_endpoint))
            .transpose()?;
        let receive_mids = r
            .receive_mids
            .as_ref()
            .map(receive_mids_from_pb)
            .transpose()?;
        let ssrcs = sources.as_ref().map(taken_ssrcs);
        let forwarded = r
            .sources
            .as_ref()
            .zip(sources.as_ref())
            .map(|(list, set)| forwarded_to_pb(list, set));
        let command = Command::UpdateEndpoint {
            conference_id: r.conference_id.clone(),
            endpoint_id: r.endpoint_id.clone(),
            transport,
            media,
            sources,
            receive_mids,
        };
        self.control
            .update_endpoint(&r.conference_id, &r.endpoint_id, ssrcs, command)?;
        Ok(Response::new(pb::UpdateEndpointResponse { forwarded }))
    }

    async fn allocate_relay(
        &self,
        request: Request<pb::AllocateRelayRequest>,
    ) -> Result<Response<pb::AllocateRelayResponse>, Status> {
        let r = request.into_inner();
        let (ice, link_id, created) =
            self.control
                .allocate_relay(&r.conference_id, &r.relay_id, r.controlling)?;
        if created {
            tracing::info!(conference = %r.conference_id, relay = %r.relay_id, controlling = r.controlling, "relay allocated");
        }
        let setup = if r.controlling {
            pb::DtlsSetup::Active
        } else {
            pb::DtlsSetup::Passive
        };
        Ok(Response::new(pb::AllocateRelayResponse {
            created,
            transport: Some(pb::RelayTransport {
                ice: Some(pb::IceParameters {
                    ufrag: ice.ufrag,
                    pwd: ice.pwd,
                    controlling: r.controlling,
                }),
                candidates: self.candidates(),
                dtls: Some(pb::DtlsParameters {
                    hash: "sha-256".into(),
                    fingerprint: self.control.fingerprint.clone(),
                    setup: setup as i32,
                }),
                link_id,
            }),
        }))
    }

    async fn update_relay(
        &self,
        request: Request<pb::UpdateRelayRequest>,
    ) -> Result<Response<pb::UpdateRelayResponse>, Status> {
        let r = request.into_inner();
        let (transport, far_roles) = match r.transport.as_ref().map(relay_transport_from_pb) {
            Some(parsed) => {
                let (transport, roles) = parsed?;
                (Some(transport), Some(roles))
            }
            None => (None, None),
        };
        let media = r.media.as_ref().map(media_from_pb).transpose()?;
        let max_sources = self.control.config.max_sources_per_endpoint;
        let (remotes, remote_endpoints) = match r.remote_endpoints.as_ref() {
            Some(list) => {
                let remotes = remote_endpoints_from_pb(list, max_sources)?;
                (Some((remotes.ids, remotes.ssrcs)), Some(remotes.endpoints))
            }
            None => (None, None),
        };
        let command = Command::UpdateRelay {
            conference_id: r.conference_id.clone(),
            relay_id: r.relay_id.clone(),
            transport,
            media,
            remote_endpoints,
        };
        self.control
            .update_relay(&r.conference_id, &r.relay_id, far_roles, remotes, command)?;
        Ok(Response::new(pb::UpdateRelayResponse {}))
    }

    async fn expire_relay(
        &self,
        request: Request<pb::ExpireRelayRequest>,
    ) -> Result<Response<pb::ExpireRelayResponse>, Status> {
        let r = request.into_inner();
        self.control.expire_relay(&r.conference_id, &r.relay_id)?;
        Ok(Response::new(pb::ExpireRelayResponse {}))
    }

    async fn expire_endpoint(
        &self,
        request: Request<pb::ExpireEndpointRequest>,
    ) -> Result<Response<pb::ExpireEndpointResponse>, Status> {
        let r = request.into_inner();
        self.control
            .expire_endpoint(&r.conference_id, &r.endpoint_id)?;
        Ok(Response::new(pb::ExpireEndpointResponse {}))
    }

    type WatchEventsStream = EventStream;

    async fn watch_events(
        &self,
        _request: Request<pb::WatchEventsRequest>,
    ) -> Result<Response<Self::WatchEventsStream>, Status> {
        let (snapshot, receiver) = self.control.watch();
        let first = pb::BridgeEvent {
            event: Some(pb::bridge_event::Event::Snapshot(pb::Snapshot {
                endpoints: snapshot.into_iter().map(event_to_pb).collect(),
            })),
        };
        let events = BroadcastStream::new(receiver).map(|item| match item {
            Ok(event) => Ok(pb::BridgeEvent {
                event: Some(pb::bridge_event::Event::Endpoint(event_to_pb(event))),
            }),
            Err(BroadcastStreamRecvError::Lagged(n)) => Err(Status::data_loss(format!(
                "this watcher fell {n} events behind; reconnect to get a fresh snapshot"
            ))),
        });
        // The status right after the snapshot (the interval's first tick), then every
        // STATUS_INTERVAL and on every change of the bridge's state.
        let mut ticks = tokio::time::interval(STATUS_INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let status_times = IntervalStream::new(ticks)
            .map(|_| ())
            .merge(WatchStream::from_changes(self.control.lifecycle.subscribe()).map(|_| ()));
        let (control, rates) = (self.control.clone(), self.rates.clone());
        let statuses = status_times.map(move |()| {
            Ok(pb::BridgeEvent {
                event: Some(pb::bridge_event::Event::Status(status(&control, &rates))),
            })
        });
        let stream = tokio_stream::once(Ok(first)).chain(events.merge(statuses));
        Ok(Response::new(Box::pin(stream)))
    }

    async fn list_conferences(
        &self,
        _request: Request<pb::ListConferencesRequest>,
    ) -> Result<Response<pb::ListConferencesResponse>, Status> {
        let conferences = self
            .control
            .list_conferences()
            .into_iter()
            .map(|conference| pb::ConferenceInfo {
                conference_id: conference.conference_id,
                name: conference.name,
                endpoints: conference
                    .endpoints
                    .into_iter()
                    .map(|(endpoint_id, participant_id, state)| pb::EndpointInfo {
                        endpoint_id,
                        participant_id,
                        state: state_to_pb(state) as i32,
                    })
                    .collect(),
            })
            .collect();
        Ok(Response::new(pb::ListConferencesResponse { conferences }))
    }

    async fn get_info(
        &self,
        _request: Request<pb::GetInfoRequest>,
    ) -> Result<Response<pb::BridgeInfo>, Status> {
        let (packets_in, packets_out, stress) = self.rates.current();
        let state = self.control.lifecycle.state();
        let snapshot = self
            .control
            .snapshot
            .lock()
            .map(|s| (s.conferences, s.endpoints))
            .unwrap_or_default();
        let config = &self.control.config;
        Ok(Response::new(pb::BridgeInfo {
            bridge_id: config.bridge_id.clone(),
            version: env!("CARGO_PKG_VERSION").into(),
            conferences: snapshot.0 as u32,
            endpoints: snapshot.1 as u32,
            packets_in_per_second: packets_in,
            packets_out_per_second: packets_out,
            stress,
            media_address: self.control.media_address.to_string(),
            advertised_addresses: config
                .advertised_addresses
                .iter()
                .map(|a| a.to_string())
                .collect(),
            shutting_down: state != BridgeState::Operational,
            state: bridge_state_to_pb(state) as i32,
            region: config.region.clone(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transport(fingerprint: &str) -> pb::RemoteTransport {
        pb::RemoteTransport {
            ice: Some(pb::IceParameters {
                ufrag: "abcd".into(),
                pwd: "abcdefghijklmnopqrstuv".into(),
                controlling: false,
            }),
            candidates: vec![
                pb::Candidate {
                    protocol: "udp".into(),
                    ip: "127.0.0.1".into(),
                    port: 5000,
                    priority: 1,
                    ..Default::default()
                },
                pb::Candidate {
                    protocol: "tcp".into(),
                    ip: "127.0.0.1".into(),
                    port: 9,
                    priority: 1,
                    ..Default::default()
                },
            ],
            dtls: Some(pb::DtlsParameters {
                hash: "sha-256".into(),
                fingerprint: fingerprint.into(),
                setup: pb::DtlsSetup::Active as i32,
            }),
        }
    }

    #[test]
    fn tcp_candidates_are_ignored_and_fingerprints_checked() {
        let good = (0..32)
            .map(|i| format!("{i:02X}"))
            .collect::<Vec<_>>()
            .join(":");
        let t = remote_transport_from_pb(&transport(&good)).unwrap();
        assert_eq!(t.candidates, vec![("127.0.0.1:5000".parse().unwrap(), 1)]);
        assert_eq!(t.setup, RemoteSetup::Active);
        let err = remote_transport_from_pb(&transport("AB:CD")).unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
        assert!(err.message().contains("fingerprint"), "{}", err.message());
    }

    #[test]
    fn relay_transports_and_remote_endpoints_are_validated() {
        let fingerprint = (0..32)
            .map(|i| format!("{i:02X}"))
            .collect::<Vec<_>>()
            .join(":");
        let t = transport(&fingerprint);
        let relay = |setup: pb::DtlsSetup, link_id: u32| pb::RelayTransport {
            ice: t.ice.clone(),
            candidates: t.candidates.clone(),
            dtls: Some(pb::DtlsParameters {
                setup: setup as i32,
                ..t.dtls.clone().unwrap()
            }),
            link_id,
        };
        let (parsed, roles) = relay_transport_from_pb(&relay(pb::DtlsSetup::Passive, 7)).unwrap();
        assert_eq!(parsed.link_id, 7);
        assert_eq!(parsed.remote.setup, RemoteSetup::Passive);
        assert_eq!(roles, (false, false));
        for (bad, says) in [
            (relay(pb::DtlsSetup::Passive, 0), "link_id"),
            (relay(pb::DtlsSetup::Actpass, 7), "ACTIVE"),
            (relay(pb::DtlsSetup::Unspecified, 7), "ACTIVE"),
            (
                pb::RelayTransport {
                    candidates: t.candidates[1..].to_vec(),
                    ..relay(pb::DtlsSetup::Active, 7)
                },
                "UDP address",
            ),
        ] {
            let err = relay_transport_from_pb(&bad).unwrap_err();
            assert_eq!(err.code(), tonic::Code::InvalidArgument);
            assert!(err.message().contains(says), "{}", err.message());
        }

        let source = |ssrc| pb::Source {
            ssrc,
            media_type: pb::MediaType::Audio as i32,
            ..Default::default()
        };
        let remote = |id: &str, ssrcs: &[u32]| pb::RemoteEndpoint {
            endpoint_id: id.into(),
            participant_id: String::new(),
            sources: Some(pb::SourceList {
                sources: ssrcs.iter().map(|&s| source(s)).collect(),
                ..Default::default()
            }),
        };
        let list = |endpoints| pb::RemoteEndpointList { endpoints };
        let remotes =
            remote_endpoints_from_pb(&list(vec![remote("x", &[1, 2]), remote("y", &[3])]), 20)
                .unwrap();
        assert_eq!(remotes.ids, ["x", "y"]);
        assert_eq!(remotes.ssrcs, [1, 2, 3]);
        assert_eq!(
            remotes.endpoints[1].participant_id, "y",
            "the endpoint id when none is given"
        );
        for (bad, code, says) in [
            (
                list(vec![remote("x", &[1]), remote("x", &[2])]),
                tonic::Code::InvalidArgument,
                "listed twice",
            ),
            (
                list(vec![remote("x", &[1]), remote("y", &[1])]),
                tonic::Code::AlreadyExists,
                "ssrc 1 is taken",
            ),
            (
                list(vec![remote("", &[1])]),
                tonic::Code::InvalidArgument,
                "1 to 256 bytes",
            ),
            (
                list(vec![pb::RemoteEndpoint {
                    sources: None,
                    ..remote("x", &[])
                }]),
                tonic::Code::InvalidArgument,
                "sources are required",
            ),
            (
                list(vec![remote("x", &[0])]),
                tonic::Code::InvalidArgument,
                "remote endpoint \"x\": source ssrc 0",
            ),
        ] {
            let err = remote_endpoints_from_pb(&bad, 20).unwrap_err();
            assert_eq!(err.code(), code, "{}", err.message());
            assert!(err.message().contains(says), "{}", err.message());
        }
    }

    #[test]
    fn each_media_keeps_its_payload_types() {
        let pt = |id, name: &str, rtx_apt| pb::PayloadType {
            id,
            name: name.into(),
            rtx_apt,
            ..Default::default()
        };
        let media = |kind: pb::MediaType, payload_types| pb::Media {
            r#type: kind as i32,
            payload_types,
            ..Default::default()
        };
        let config = media_from_pb(&pb::MediaList {
            media: vec![
                media(
                    pb::MediaType::Audio,
                    vec![pt(111, "opus", 0), pt(0, "PCMU", 0)],
                ),
                media(
                    pb::MediaType::Video,
                    vec![pt(100, "VP8", 0), pt(96, "rtx", 100), pt(127, "AV1", 0)],
                ),
            ],
        })
        .unwrap();
        let (audio, video) = (config.audio.unwrap(), config.video.unwrap());
        for pt in [111, 0] {
            assert!(
                audio.has_payload_type(pt) && !video.has_payload_type(pt),
                "{pt}"
            );
        }
        for pt in [100, 96, 127] {
            assert!(
                video.has_payload_type(pt) && !audio.has_payload_type(pt),
                "{pt}"
            );
        }
        assert!(!audio.has_payload_type(1) && !video.has_payload_type(200));
    }

    #[test]
    fn receive_mids_are_validated() {
        let mid = |ssrc, mid: &str| pb::ReceiveMid {
            ssrc,
            mid: mid.into(),
        };
        let list = |mids| pb::ReceiveMidList { mids };
        let ok = receive_mids_from_pb(&list(vec![mid(7, "video-3"), mid(8, "audio-12")])).unwrap();
        assert_eq!(ok.len(), 2);
        assert_eq!((ok[0].0, ok[0].1.as_bytes()), (7, &b"video-3"[..]));
        assert!(receive_mids_from_pb(&list(Vec::new())).unwrap().is_empty());
        for (bad, says) in [
            (list(vec![mid(0, "a")]), "ssrc 0"),
            (list(vec![mid(1, "a"), mid(1, "b")]), "listed twice"),
            (list(vec![mid(1, "")]), "token characters"),
            (list(vec![mid(1, "a b")]), "token characters"),
            (list(vec![mid(1, "abcdefghijklmnopq")]), "1 to 16"),
            (list((1..=1025).map(|s| mid(s, "a")).collect()), "too many"),
        ] {
            let err = receive_mids_from_pb(&bad).unwrap_err();
            assert_eq!(err.code(), tonic::Code::InvalidArgument);
            assert!(err.message().contains(says), "{}", err.message());
        }
    }

    #[test]
    fn sources_are_validated() {
        let source = |ssrc| pb::Source {
            ssrc,
            media_type: pb::MediaType::Video as i32,
            ..Default::default()
        };
        let many = pb::SourceList {
            sources: (1..=21).map(source).collect(),
            ..Default::default()
        };
        let err = sources_from_pb(&many, 20).unwrap_err();
        assert!(
            err.message().contains("too many sources"),
            "{}",
            err.message()
        );
        let stranger = pb::SourceList {
            sources: vec![source(1)],
            groups: vec![pb::SourceGroup {
                semantics: "FID".into(),
                ssrcs: vec![1, 99],
            }],
            ..Default::default()
        };
        assert!(sources_from_pb(&stranger, 20)
            .unwrap_err()
            .message()
            .contains("99"));
        let ok = pb::SourceList {
            sources: vec![source(1), source(2)],
            groups: vec![pb::SourceGroup {
                semantics: "FID".into(),
                ssrcs: vec![1, 2],
            }],
            ..Default::default()
        };
        assert_eq!(sources_from_pb(&ok, 20).unwrap().groups.len(), 1);
    }

    #[test]
    fn outputs_are_validated() {
        let source = |ssrc| pb::Source {
            ssrc,
            media_type: pb::MediaType::Video as i32,
            ..Default::default()
        };
        // Two layers (1, 2) with RTX (11, 12).
        let with = |outputs: Vec<(u32, u32, u32)>| pb::SourceList {
            sources: [1, 2, 11, 12].map(source).to_vec(),
            groups: vec![
                pb::SourceGroup {
                    semantics: "SIM".into(),
                    ssrcs: vec![1, 2],
                },
                pb::SourceGroup {
                    semantics: "FID".into(),
                    ssrcs: vec![1, 11],
                },
                pb::SourceGroup {
                    semantics: "FID".into(),
                    ssrcs: vec![2, 12],
                },
            ],
            outputs: outputs
                .into_iter()
                .map(|(source_ssrc, ssrc, rtx_ssrc)| pb::SourceOutput {
                    source_ssrc,
                    ssrc,
                    rtx_ssrc,
                })
                .collect(),
            learnt_sources: Vec::new(),
        };
        let set = sources_from_pb(&with(vec![(1, 500, 501)]), 20).unwrap();
        assert_eq!(set.producers()[0].output_ssrcs(), (500, Some(501)));
        let refused = |outputs, expected: &str| {
            let message = sources_from_pb(&with(outputs), 20)
                .unwrap_err()
                .message()
                .to_owned();
            assert!(message.contains(expected), "{message}");
        };
        refused(vec![(2, 500, 501)], "not the first ssrc");
        refused(vec![(11, 500, 0)], "not the first ssrc");
        refused(vec![(1, 0, 501)], "ssrc 0");
        refused(vec![(1, 12, 501)], "own sources");
        refused(vec![(1, 500, 2)], "own sources");
        refused(vec![(1, 500, 500)], "twice");
        refused(vec![(1, 500, 501), (1, 600, 601)], "twice");
        let forwarded = forwarded_to_pb(&with(vec![(1, 500, 501)]), &set);
        let ssrcs: Vec<u32> = forwarded.sources.iter().map(|s| s.ssrc).collect();
        assert_eq!(ssrcs, [500, 501]);
        assert_eq!(forwarded.groups[0].ssrcs, [500, 501]);
    }

    #[test]
    fn learnt_sources_are_validated() {
        let learnt = |mid: &str, rids: &[&str], output: u32, rtx: u32| pb::LearntSource {
            owner: "alice".into(),
            name: "alice-v0".into(),
            rids: rids.iter().map(|r| r.to_string()).collect(),
            output_ssrc: output,
            output_rtx_ssrc: rtx,
            mid: mid.into(),
            media_type: 0,
        };
        let list = |learnt_sources: Vec<pb::LearntSource>| pb::SourceList {
            sources: vec![pb::Source {
                ssrc: 7,
                media_type: pb::MediaType::Audio as i32,
                ..Default::default()
            }],
            learnt_sources,
            ..Default::default()
        };
        let ok = list(vec![learnt("", &["q", "h", "f"], 900, 901)]);
        let set = sources_from_pb(&ok, 20).unwrap();
        let spec = &set.producers()[1];
        assert_eq!(spec.rids, ["q", "h", "f"]);
        assert_eq!(spec.mid, None);
        assert_eq!(
            spec.encodings,
            [(0, None); 3],
            "SSRCs learnt from the packets"
        );
        assert_eq!(spec.output_ssrcs(), (900, Some(901)));
        let forwarded = forwarded_to_pb(&ok, &set);
        let ssrcs: Vec<u32> = forwarded.sources.iter().map(|s| s.ssrc).collect();
        assert_eq!(ssrcs, [7, 900, 901]);
        assert_eq!(forwarded.sources[1].name, "alice-v0");
        // A standards client's audio and video named by their MIDs alone: one encoding each,
        // forwarded under their outputs with their media types.
        let by_mid = list(vec![
            pb::LearntSource {
                media_type: pb::MediaType::Audio as i32,
                name: "alice-a0".into(),
                ..learnt("0", &[], 800, 0)
            },
            learnt("1", &[], 900, 901),
        ]);
        let set = sources_from_pb(&by_mid, 20).unwrap();
        let specs = set.producers();
        assert_eq!(specs[1].kind, MediaKind::Audio);
        assert_eq!(specs[1].mid, Mid::new("0"));
        assert_eq!(specs[1].encodings, [(0, None)]);
        assert_eq!(specs[2].kind, MediaKind::Video);
        let forwarded = forwarded_to_pb(&by_mid, &set);
        let described: Vec<(u32, i32)> = forwarded
            .sources
            .iter()
            .map(|s| (s.ssrc, s.media_type))
            .collect();
        let (audio, video) = (pb::MediaType::Audio as i32, pb::MediaType::Video as i32);
        assert_eq!(
            described,
            [(7, audio), (800, audio), (900, video), (901, video)]
        );
        for bad in [
            list(vec![learnt("", &[], 900, 0)]),
            list(vec![learnt("", &["q"; 9], 900, 0)]),
            list(vec![learnt("", &["q", "q"], 900, 0)]),
            list(vec![learnt("", &["a b"], 900, 0)]),
            list(vec![learnt("", &["seventeen-chars-x"], 900, 0)]),
            list(vec![learnt("", &["q"], 0, 0)]),
            list(vec![learnt("", &["q"], 7, 0)]),
            list(vec![learnt("", &["q"], 900, 900)]),
            list(vec![learnt("a b", &[], 900, 0)]),
            list(vec![learnt("seventeen-chars-x", &[], 900, 0)]),
            list(vec![learnt("1", &[], 900, 0), learnt("1", &[], 901, 0)]),
            list(vec![pb::LearntSource {
                media_type: 9,
                ..learnt("1", &[], 900, 0)
            }]),
        ] {
            assert!(sources_from_pb(&bad, 20).is_err(), "{bad:?}");
        }
    }
}
