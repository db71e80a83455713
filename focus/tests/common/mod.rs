//! Jingle that the focus's end-to-end harness (`support/`), the room scenario helper (`room/`)
//! and the soak benchmark (`bench/src/bin/soak.rs`) build or read: included by each with
//! `#[path]`. A tutti-participant's answer to the focus's offer is here too.

use std::net::SocketAddr;

use tutti_focus::jingle::{
    Action, Candidate, CandidateType, Content, Creator, DtlsSetup, Fingerprint, Group,
    GroupSemantics, HeaderExtension, IceUdpTransport, Jingle, Parameter, PayloadType, Reason,
    ReasonKind, RtcpFeedback, RtpDescription, Senders, Source, SourceGroup,
};
use tutti_focus::jitsi::BridgeSession;
use tutti_focus::Extensions;
use tutti_participant::{LocalDescription, ParticipantConfig, RemoteDescription};

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

/// What a tutti-participant needs from the focus's session-initiate.
pub fn remote_description(initiate: &Jingle) -> RemoteDescription {
    let transport = initiate
        .contents
        .iter()
        .find_map(|content| content.transport.as_ref())
        .expect("a transport in the session-initiate");
    RemoteDescription {
        ufrag: transport.ufrag.clone().expect("ufrag"),
        pwd: transport.pwd.clone().expect("pwd"),
        candidates: transport
            .candidates
            .iter()
            .map(|c| SocketAddr::new(c.ip.parse().unwrap(), c.port))
            .collect(),
        fingerprint: transport.fingerprints[0].value.clone(),
    }
}

/// The participant's transport as a client puts it in its answer.
pub fn local_transport(local: &LocalDescription) -> IceUdpTransport {
    let mut transport = IceUdpTransport::new(&local.ufrag, &local.pwd);
    transport.fingerprints = vec![Fingerprint::new(
        "sha-256",
        &local.fingerprint,
        DtlsSetup::Active,
    )];
    transport.rtcp_mux = true;
    transport.candidates = local
        .candidates
        .iter()
        .enumerate()
        .map(|(index, address)| Candidate {
            component: 1,
            foundation: index.to_string(),
            generation: Some(0),
            id: Some(format!("c{index}")),
            ip: address.ip().to_string(),
            network: Some(0),
            port: address.port(),
            priority: 2_130_706_431 - index as u32,
            protocol: "udp".to_owned(),
            kind: CandidateType::Host,
            rel_addr: None,
            rel_port: None,
            tcptype: None,
            extensions: Extensions::default(),
        })
        .collect();
    transport
}

/// A session-accept as lib-jitsi-meet would send it for this participant: its codecs, its
/// transport, its sources (audio; video with RTX in an FID group).
pub fn session_accept(sid: &str, config: &ParticipantConfig, local: &LocalDescription) -> Jingle {
    let msid = |track: &str| {
        Parameter::new(
            "msid",
            format!("{}-stream {}-{track}", config.name, config.name),
        )
    };
    let mut opus = PayloadType::new(config.opus_pt, "opus", 48000, Some(2));
    opus.rtcp_feedback = vec![RtcpFeedback::new("transport-cc", None)];
    let mut audio = RtpDescription::new("audio");
    audio.payload_types = vec![opus];
    audio.header_extensions = vec![HeaderExtension::new(
        config.twcc_ext_id,
        tutti_focus::offer::TRANSPORT_CC_URI,
    )];
    audio.rtcp_mux = true;
    let mut audio_source = Source::new(config.audio_ssrc);
    audio_source.name = Some(format!("{}-a0", config.name));
    audio_source.parameters.push(msid("audio"));
    audio.sources = vec![audio_source];
    let mut vp8 = PayloadType::new(config.vp8_pt, "VP8", 90000, None);
    vp8.rtcp_feedback = vec![
        RtcpFeedback::new("ccm", Some("fir")),
        RtcpFeedback::new("nack", None),
        RtcpFeedback::new("nack", Some("pli")),
        RtcpFeedback::new("transport-cc", None),
    ];
    let mut rtx = PayloadType::new(config.rtx_pt, "rtx", 90000, None);
    rtx.parameters = vec![Parameter::new("apt", config.vp8_pt.to_string())];
    let mut video = RtpDescription::new("video");
    video.payload_types = vec![vp8, rtx];
    video.header_extensions = audio.header_extensions.clone();
    video.rtcp_mux = true;
    for ssrc in [config.video_ssrc, config.video_rtx_ssrc] {
        let mut source = Source::new(ssrc);
        source.name = Some(format!("{}-v0", config.name));
        source.video_type = Some("camera".to_owned());
        source.parameters.push(msid("video"));
        video.sources.push(source);
    }
    video.source_groups = vec![SourceGroup::new(
        GroupSemantics::Fid,
        vec![config.video_ssrc, config.video_rtx_ssrc],
    )];
    let transport = local_transport(local);
    bundled_accept(sid, [audio, video], &transport)
}
