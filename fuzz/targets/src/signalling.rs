//! The bridge's control inputs: bridge-channel JSON from clients and the gRPC requests'
//! validation (structured inputs built with `arbitrary`).

use arbitrary::{Result, Unstructured};
use tutti_bridge::api::grpc::{media_from_pb, remote_transport_from_pb, sources_from_pb};
use tutti_proto::bridge_v1 as pb;

/// One bridge-channel text frame.
pub fn channel(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = tutti_bridge::channel_messages::parse_client_message(text);
    }
}

/// An `UpdateEndpointRequest`'s transport, media and sources built from the input by
/// `arbitrary`, each validated as the gRPC service does.
pub fn grpc(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(request) = update_request(&mut u) else {
        return;
    };
    if let Some(transport) = &request.transport {
        let _ = remote_transport_from_pb(transport);
    }
    if let Some(media) = &request.media {
        let _ = media_from_pb(media);
    }
    if let Some(sources) = &request.sources {
        let _ = sources_from_pb(sources, 64);
    }
}

/// Strings the validators look for, so the fuzzer reaches past the first checks.
const WORDS: &[&str] = &[
    "",
    "udp",
    "tcp",
    "host",
    "srflx",
    "sha-256",
    "sha-1",
    "opus",
    "VP8",
    "H264",
    "rtx",
    "nack",
    "nack pli",
    "ccm fir",
    "transport-cc",
    "goog-remb",
    "SIM",
    "FID",
    "10.0.0.1",
    "::1",
    "remoteuf",
    "remote-password-of-24-ch",
    "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89",
    "urn:ietf:params:rtp-hdrext:sdes:mid",
    "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id",
    "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id",
    "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
];

/// A known word or arbitrary text.
fn text(u: &mut Unstructured) -> Result<String> {
    if u.arbitrary::<bool>()? {
        Ok((*u.choose(WORDS)?).to_owned())
    } else {
        u.arbitrary()
    }
}

/// A small number most of the time (ids, ports, enum values), any `u32` otherwise.
fn number(u: &mut Unstructured) -> Result<u32> {
    if u.arbitrary::<bool>()? {
        Ok(u32::from(u.arbitrary::<u8>()?))
    } else {
        u.arbitrary()
    }
}

fn list<T>(
    u: &mut Unstructured,
    mut item: impl FnMut(&mut Unstructured) -> Result<T>,
) -> Result<Vec<T>> {
    let mut items = Vec::new();
    u.arbitrary_loop(None, Some(80), |u| {
        items.push(item(u)?);
        Ok(std::ops::ControlFlow::Continue(()))
    })?;
    Ok(items)
}

fn update_request(u: &mut Unstructured) -> Result<pb::UpdateEndpointRequest> {
    Ok(pb::UpdateEndpointRequest {
        conference_id: text(u)?,
        endpoint_id: text(u)?,
        transport: if u.arbitrary()? {
            Some(transport(u)?)
        } else {
            None
        },
        media: if u.arbitrary()? {
            Some(media(u)?)
        } else {
            None
        },
        sources: if u.arbitrary()? {
            Some(sources(u)?)
        } else {
            None
        },
        receive_mids: None,
    })
}

fn transport(u: &mut Unstructured) -> Result<pb::RemoteTransport> {
    Ok(pb::RemoteTransport {
        ice: if u.arbitrary()? {
            Some(pb::IceParameters {
                ufrag: text(u)?,
                pwd: text(u)?,
                controlling: u.arbitrary()?,
            })
        } else {
            None
        },
        candidates: list(u, |u| {
            Ok(pb::Candidate {
                foundation: text(u)?,
                component: number(u)?,
                protocol: text(u)?,
                priority: number(u)?,
                ip: text(u)?,
                port: number(u)?,
                r#type: text(u)?,
                generation: number(u)?,
            })
        })?,
        dtls: if u.arbitrary()? {
            Some(pb::DtlsParameters {
                hash: text(u)?,
                fingerprint: text(u)?,
                setup: i32::from(u.arbitrary::<i8>()?),
            })
        } else {
            None
        },
    })
}

fn media(u: &mut Unstructured) -> Result<pb::MediaList> {
    Ok(pb::MediaList {
        media: list(u, |u| {
            Ok(pb::Media {
                r#type: i32::from(u.arbitrary::<i8>()?),
                payload_types: list(u, |u| {
                    Ok(pb::PayloadType {
                        id: number(u)?,
                        name: text(u)?,
                        clock_rate: number(u)?,
                        channels: number(u)?,
                        rtx_apt: number(u)?,
                        rtcp_fb: list(u, text)?,
                    })
                })?,
                header_extensions: list(u, |u| {
                    Ok(pb::HeaderExtension {
                        id: number(u)?,
                        uri: text(u)?,
                    })
                })?,
                sends: u.arbitrary()?,
                receives: u.arbitrary()?,
            })
        })?,
    })
}

fn sources(u: &mut Unstructured) -> Result<pb::SourceList> {
    Ok(pb::SourceList {
        sources: list(u, |u| {
            Ok(pb::Source {
                ssrc: number(u)?,
                media_type: i32::from(u.arbitrary::<i8>()?),
                owner: text(u)?,
                name: text(u)?,
            })
        })?,
        groups: list(u, |u| {
            Ok(pb::SourceGroup {
                semantics: text(u)?,
                ssrcs: list(u, number)?,
            })
        })?,
        outputs: list(u, |u| {
            Ok(pb::SourceOutput {
                source_ssrc: number(u)?,
                ssrc: number(u)?,
                rtx_ssrc: number(u)?,
            })
        })?,
        learnt_sources: list(u, |u| {
            Ok(pb::LearntSource {
                owner: text(u)?,
                name: text(u)?,
                rids: list(u, text)?,
                output_ssrc: number(u)?,
                output_rtx_ssrc: number(u)?,
                mid: text(u)?,
                media_type: number(u)? as i32,
            })
        })?,
    })
}
