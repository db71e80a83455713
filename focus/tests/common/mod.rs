//! Jingle that the focus's end-to-end harness (`support/`) and the room scenario helper
//! (`room/`) both build or read: included by each with `#[path]`.

use tutti_focus::jingle::{
    Action, Candidate, CandidateType, Content, Creator, Group, IceUdpTransport, Jingle, Reason,
    ReasonKind, RtpDescription, Senders,
};
use tutti_focus::jitsi::BridgeSession;
use tutti_focus::Extensions;

/// The SSRCs in a Jingle's descriptions.
pub fn ssrcs(jingle: &Jingle) -> Vec<u32> {
    jingle
        .contents
        .iter()
        .filter_map(|content| content.description.as_ref())
        .flat_map(|description| description.sources.iter().map(|source| source.ssrc))
        .collect()
}

/// The `<bridge-session id>` of a session-initiate: the endpoint it offers.
pub fn bridge_session_id(jingle: &Jingle) -> String {
    jingle
        .extensions
        .get::<BridgeSession>()
        .ok()
        .flatten()
        .and_then(|session| session.id)
        .expect("a <bridge-session id> in the session-initiate")
}

/// lib-jitsi-meet's report that ICE failed on the bridge session `bridge_session`
/// (`sendIceFailedNotification`).
pub fn ice_failed(sid: &str, bridge_session: &str) -> Jingle {
    let mut info = Jingle::new(Action::SessionInfo, sid);
    info.extensions.children.push(
        minidom::Element::builder("ice-state", tutti_focus::ns::JITSI_FOCUS)
            .append("failed")
            .build(),
    );
    info.extensions.set(&BridgeSession {
        id: Some(bridge_session.to_owned()),
        ..BridgeSession::default()
    });
    info
}

/// lib-jitsi-meet's session-terminate asking for a new session after an ICE failure.
pub fn restart_request(sid: &str, bridge_session: &str) -> Jingle {
    let mut terminate = Jingle::new(Action::SessionTerminate, sid);
    terminate.reason = Some(Reason::new(ReasonKind::ConnectivityError).with_text("ICE FAILED"));
    terminate.extensions.set(&BridgeSession {
        id: Some(bridge_session.to_owned()),
        restart: Some(true),
        ..BridgeSession::default()
    });
    terminate
}

/// A host candidate on 127.0.0.1 (`tcp`: passive).
pub fn candidate(protocol: &str, port: u16) -> Candidate {
    Candidate {
        component: 1,
        foundation: "7".to_owned(),
        generation: Some(0),
        id: Some(format!("{protocol}{port}")),
        ip: "127.0.0.1".to_owned(),
        network: Some(0),
        port,
        priority: 1_000,
        protocol: protocol.to_owned(),
        kind: CandidateType::Host,
        rel_addr: None,
        rel_port: None,
        tcptype: (protocol == "tcp").then(|| "passive".to_owned()),
        extensions: Extensions::default(),
    }
}

/// A session-accept of these descriptions, BUNDLEd over one transport, as lib-jitsi-meet
/// answers.
pub fn bundled_accept(
    sid: &str,
    descriptions: [RtpDescription; 2],
    transport: &IceUdpTransport,
) -> Jingle {
    let mut jingle = Jingle::new(Action::SessionAccept, sid);
    for description in descriptions {
        let mut content = Content::new(description.media.clone().unwrap_or_default());
        content.creator = Some(Creator::Initiator);
        content.senders = Some(Senders::Both);
        content.description = Some(description);
        content.transport = Some(transport.clone());
        jingle.contents.push(content);
    }
    jingle.groups.push(Group::bundle(["audio", "video"]));
    jingle
}
