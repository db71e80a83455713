//! What a room asks of the bridge, and the answers it is handed back.
//!
//! A request is one call of the bridge's gRPC API (`tutti_proto::bridge_v1`), named by an id the
//! room chose; whoever carries it out hands the answer back with that id
//! ([`super::Room::handle_bridge_answer`]), in whatever order the answers come.

use tutti_proto::bridge_v1 as pb;

use crate::pool::BridgeId;

/// The room's name for one of its bridge requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

/// One call of the bridge's API.
#[derive(Debug, Clone, PartialEq)]
pub enum BridgeRequest {
    /// Idempotent: asking again for an id the bridge has changes nothing. `region`: the first
    /// participant's (empty: none), for the executor's choice of bridge. A conference that
    /// spreads the room over another bridge (cascading) is placed on none of `avoid` (the
    /// bridges of the room's other conferences) and, with `strict_region`, only on a bridge in
    /// `region`; when no bridge fits, the request fails.
    CreateConference {
        conference_id: String,
        name: String,
        region: String,
        avoid: Vec<BridgeId>,
        strict_region: bool,
    },
    ExpireConference {
        conference_id: String,
    },
    /// A new endpoint, DTLS `actpass`; `participant_id` is the MUC nick, the id the room's
    /// clients use for each other in bridge-channel messages; `receives_by_mid` for a standards
    /// client: it is forwarded only the streams its `receive_mids` name, those it accepted.
    /// Idempotent like `CreateConference`.
    AllocateEndpoint {
        conference_id: String,
        endpoint_id: String,
        participant_id: String,
        receives_by_mid: bool,
    },
    /// The remote side of an endpoint: transport, media, sources (boxed: the largest request).
    UpdateEndpoint(Box<pb::UpdateEndpointRequest>),
    ExpireEndpoint {
        conference_id: String,
        endpoint_id: String,
    },
    /// A relay of the conference to the room's conference `relay_id` on another bridge
    /// (idempotent); exactly one side of a relay is `controlling`.
    AllocateRelay {
        conference_id: String,
        relay_id: String,
        controlling: bool,
    },
    /// The far side of a relay, the conference's media and the participants behind it.
    UpdateRelay(Box<pb::UpdateRelayRequest>),
    ExpireRelay {
        conference_id: String,
        relay_id: String,
    },
}

impl BridgeRequest {
    /// The conference the request is about.
    pub fn conference_id(&self) -> &str {
        match self {
            BridgeRequest::CreateConference { conference_id, .. }
            | BridgeRequest::ExpireConference { conference_id }
            | BridgeRequest::AllocateEndpoint { conference_id, .. }
            | BridgeRequest::ExpireEndpoint { conference_id, .. }
            | BridgeRequest::AllocateRelay { conference_id, .. }
            | BridgeRequest::ExpireRelay { conference_id, .. } => conference_id,
            BridgeRequest::UpdateEndpoint(update) => &update.conference_id,
            BridgeRequest::UpdateRelay(update) => &update.conference_id,
        }
    }

    /// The gRPC method.
    pub fn call(&self) -> &'static str {
        match self {
            BridgeRequest::CreateConference { .. } => "CreateConference",
            BridgeRequest::ExpireConference { .. } => "ExpireConference",
            BridgeRequest::AllocateEndpoint { .. } => "AllocateEndpoint",
            BridgeRequest::UpdateEndpoint(_) => "UpdateEndpoint",
            BridgeRequest::ExpireEndpoint { .. } => "ExpireEndpoint",
            BridgeRequest::AllocateRelay { .. } => "AllocateRelay",
            BridgeRequest::UpdateRelay(_) => "UpdateRelay",
            BridgeRequest::ExpireRelay { .. } => "ExpireRelay",
        }
    }
}

/// What the bridge answered.
#[derive(Debug, Clone, PartialEq)]
pub enum BridgeAnswer {
    /// `CreateConference`, `ExpireConference`, `ExpireEndpoint`, `UpdateRelay`, `ExpireRelay`:
    /// done.
    Done,
    /// `AllocateRelay`: this side of the relay, for the far bridge's `UpdateRelay`.
    RelayAllocated(pb::RelayTransport),
    /// `AllocateEndpoint`: the bridge's transport for the offer.
    Allocated(pb::Transport),
    /// `UpdateEndpoint`: what the bridge forwards of the endpoint's sources, if they were in it.
    Updated(pb::UpdateEndpointResponse),
}

/// A bridge request that failed (an error status, no answer in time, an unusable answer).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bridge {call}: {cause}")]
pub struct BridgeError {
    pub call: &'static str,
    pub cause: String,
}

/// The transport of an `AllocateEndpoint` answer.
pub(super) fn allocated(
    answer: Result<BridgeAnswer, BridgeError>,
) -> Result<pb::Transport, BridgeError> {
    match answer? {
        BridgeAnswer::Allocated(transport) => Ok(transport),
        other => Err(not_an_answer_to("AllocateEndpoint", &other)),
    }
}

/// The transport of an `AllocateRelay` answer.
pub(super) fn relay_allocated(
    answer: Result<BridgeAnswer, BridgeError>,
) -> Result<pb::RelayTransport, BridgeError> {
    match answer? {
        BridgeAnswer::RelayAllocated(transport) => Ok(transport),
        other => Err(not_an_answer_to("AllocateRelay", &other)),
    }
}

/// What the bridge forwards of the sources an `UpdateEndpoint` carried (an answer without it is
/// an error).
pub(super) fn forwarded(
    answer: Result<BridgeAnswer, BridgeError>,
) -> Result<pb::SourceList, BridgeError> {
    match answer? {
        BridgeAnswer::Updated(response) => response.forwarded.ok_or(BridgeError {
            call: "UpdateEndpoint",
            cause: "the answer does not say what is forwarded of the sources".to_owned(),
        }),
        other => Err(not_an_answer_to("UpdateEndpoint", &other)),
    }
}

fn not_an_answer_to(call: &'static str, answer: &BridgeAnswer) -> BridgeError {
    BridgeError {
        call,
        cause: format!("answered with {answer:?}"),
    }
}
