//! Drives a `tutti_focus::room::Room` without Prosody or a bridge: occupants' stanzas built
//! here, the bridge's answers given by hand (or by `answer_all`, a bridge that says yes to
//! everything), time on a simulated clock. Shared by the `room_*.rs` scenario tests.

#![allow(dead_code)] // each scenario uses a different part of the helper

use std::time::{Duration, Instant};

use jid::{BareJid, FullJid, Jid};
use tokio_xmpp::parsers::iq::Iq;
use tokio_xmpp::parsers::presence::{Presence, Type as PresenceType};
use tokio_xmpp::parsers::stanza_error::DefinedCondition;
use tokio_xmpp::Stanza;
use tutti_focus::capabilities::CapabilityCache;
use tutti_focus::capabilities::REQUIRED_FEATURES;
use tutti_focus::jingle::{
    Action, Content, Creator, DtlsSetup, Fingerprint, Group, GroupSemantics, IceUdpTransport,
    Jingle, Parameter, PayloadType, RtpDescription, Source, SourceGroup,
};
use tutti_focus::room::{
    BridgeAnswer, BridgeError, BridgeRequest, Metric, Output, RequestId, Room, RoomLimits,
};
use tutti_proto::bridge_v1 as pb;

#[path = "../common/mod.rs"]
mod common;
pub use common::*;

pub const ROOM: &str = "room@conference.localhost";
pub const JINGLE_ERRORS: &str = "urn:xmpp:jingle:errors:1";
pub const DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";

pub fn occupant(nick: &str) -> FullJid {
    FullJid::new(&format!("{ROOM}/{nick}")).expect("an occupant JID")
}

/// A room, what it has sent and asked for so far, and the simulated clock.
pub struct Sim {
    pub room: Room,
    pub now: Instant,
    pub capabilities: CapabilityCache,
    /// Stanzas sent and not yet taken.
    pub sent: Vec<Stanza>,
    /// Bridge requests not yet answered, in the order asked.
    pub requests: Vec<(RequestId, BridgeRequest)>,
    /// Every metric event so far.
    pub metrics: Vec<Metric>,
    /// The bridges `answer_all` places conferences on, as its executor's pool would: (bridge,
    /// region). Empty: conferences are made without being placed anywhere.
    pub pool: Vec<(String, String)>,
    /// Every request `answer_all` answered, in order.
    pub answered: Vec<BridgeRequest>,
    next_id: u64,
}

impl Sim {
    /// The focus joins `ROOM` (not a configured room) and the room confirms it.
    pub fn new() -> Sim {
        Sim::joined(false)
    }

    pub fn joined(configured: bool) -> Sim {
        Sim::with_limits(configured, RoomLimits::default())
    }

    /// The focus joins `ROOM`, whose occupants are held to `limits`.
    pub fn with_limits(configured: bool, limits: RoomLimits) -> Sim {
        let room = Room::join(BareJid::new(ROOM).unwrap(), configured, 7, limits).expect("a room");
        let mut sim = Sim {
            room,
            now: Instant::now(),
            capabilities: CapabilityCache::default(),
            sent: Vec::new(),
            requests: Vec::new(),
            metrics: Vec::new(),
            pool: Vec::new(),
            answered: Vec::new(),
            next_id: 0,
        };
        sim.drain();
        sim.sent.clear();
        sim
    }

    /// A room capped at `per_bridge` participants per bridge, placed on the bridges `pool` (in
    /// order, no region).
    pub fn capped(per_bridge: u32, pool: &[&str]) -> Sim {
        let mut sim = Sim::with_limits(
            false,
            RoomLimits {
                participants_per_bridge: per_bridge,
                ..RoomLimits::default()
            },
        );
        sim.pool = pool
            .iter()
            .map(|bridge| (bridge.to_string(), String::new()))
            .collect();
        sim
    }

    /// The conference `nick`'s endpoint was last allocated in, from the answered requests.
    pub fn conference_of(&self, nick: &str) -> String {
        self.answered
            .iter()
            .rev()
            .find_map(|request| match request {
                BridgeRequest::AllocateEndpoint {
                    conference_id,
                    participant_id,
                    ..
                } if participant_id == nick => Some(conference_id.clone()),
                _ => None,
            })
            .expect("an allocation")
    }

    fn drain(&mut self) {
        while let Some(output) = self.room.poll_output() {
            match output {
                Output::Stanza(stanza) => self.sent.push(*stanza),
                Output::Bridge { id, request } => self.requests.push((id, request)),
                Output::Metric(metric) => self.metrics.push(metric),
            }
        }
    }

    pub fn stanza(&mut self, stanza: Stanza) {
        self.room
            .handle_stanza(self.now, stanza, &mut self.capabilities);
        self.drain();
    }

    /// `nick` enters the room (no caps: invited at once).
    pub fn join(&mut self, nick: &str) {
        self.stanza(Stanza::Presence(
            Presence::available().with_from(Jid::from(occupant(nick))),
        ));
    }

    pub fn leave(&mut self, nick: &str) {
        let mut presence = Presence::new(PresenceType::Unavailable);
        presence.from = Some(Jid::from(occupant(nick)));
        self.stanza(Stanza::Presence(presence));
    }

    /// An IQ set from `from`; its id.
    pub fn iq_from(&mut self, from: Jid, payload: minidom::Element) -> String {
        self.next_id += 1;
        let id = format!("iq{}", self.next_id);
        self.stanza(Stanza::Iq(Iq::Set {
            from: Some(from),
            to: Some(Jid::from(occupant("focus"))),
            id: id.clone(),
            payload,
        }));
        id
    }

    /// `nick` sends `jingle` to the focus; the IQ's id.
    pub fn jingle(&mut self, nick: &str, jingle: &Jingle) -> String {
        self.iq_from(Jid::from(occupant(nick)), jingle.to_element())
    }

    /// The bridge of the room's conference failed (its executor says so).
    pub fn bridge_failed(&mut self) {
        self.room.bridge_failed(self.now);
        self.drain();
    }

    /// The conference `conference_id` lost its bridge (its executor says so).
    pub fn conference_failed(&mut self, conference_id: &str) {
        self.room.conference_failed(self.now, conference_id);
        self.drain();
    }

    /// The relay of `conference_id` to `relay_id` timed out (its bridge says so).
    pub fn relay_failed(&mut self, conference_id: &str, relay_id: &str) {
        self.room.relay_failed(self.now, conference_id, relay_id);
        self.drain();
    }

    /// A conference an earlier focus left on the bridge is found (its executor says so).
    pub fn left_behind(&mut self, conference_id: &str, sessions: &[(&str, &str)]) {
        let sessions = sessions
            .iter()
            .map(|(nick, endpoint)| (nick.to_string(), endpoint.to_string()))
            .collect();
        self.room.left_behind(conference_id.to_owned(), sessions);
        self.drain();
    }

    /// `nick` enters the room with `<region xmlns='http://jitsi.org/jitsi-meet' id=REGION/>`.
    pub fn join_in_region(&mut self, nick: &str, region: &str) {
        let element: minidom::Element =
            format!("<region xmlns='http://jitsi.org/jitsi-meet' id='{region}'/>")
                .parse()
                .expect("a region element");
        self.stanza(Stanza::Presence(
            Presence::available()
                .with_from(Jid::from(occupant(nick)))
                .with_payloads(vec![element]),
        ));
    }

    /// `nick` enters with XEP-0115 caps of version `ver` and, asked, answers the focus's
    /// disco#info with `features` (a version the focus knows already is not asked again).
    pub fn join_with_features(&mut self, nick: &str, ver: &str, features: &[&str]) {
        let caps: minidom::Element = format!(
            "<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='urn:test' ver='{ver}'/>"
        )
        .parse()
        .expect("a caps element");
        self.stanza(Stanza::Presence(
            Presence::available()
                .with_from(Jid::from(occupant(nick)))
                .with_payloads(vec![caps]),
        ));
        let to = Some(Jid::from(occupant(nick)));
        let Some(query_id) = self.sent.iter().find_map(|stanza| match stanza {
            Stanza::Iq(Iq::Get {
                to: sent_to,
                id,
                payload,
                ..
            }) if *sent_to == to && payload.is("query", DISCO_INFO) => Some(id.clone()),
            _ => None,
        }) else {
            return;
        };
        let listed: String = features
            .iter()
            .map(|var| format!("<feature var='{var}'/>"))
            .collect();
        let answer: minidom::Element = format!(
            "<query xmlns='{DISCO_INFO}' node='urn:test#{ver}'>\
             <identity category='client' type='pc'/>{listed}</query>"
        )
        .parse()
        .expect("a disco#info answer");
        self.stanza(Stanza::Iq(Iq::Result {
            from: Some(Jid::from(occupant(nick))),
            to: Some(Jid::from(occupant("focus"))),
            id: query_id,
            payload: Some(answer),
        }));
    }

    pub fn advance(&mut self, by: Duration) {
        self.now += by;
        if self.room.poll_timeout().is_some_and(|at| at <= self.now) {
            self.room.handle_timeout(self.now);
            self.drain();
        }
    }

    /// Takes the oldest unanswered request for `call` (e.g. "AllocateEndpoint").
    pub fn take_request(&mut self, call: &str) -> (RequestId, BridgeRequest) {
        let index = self
            .requests
            .iter()
            .position(|(_, request)| request.call() == call)
            .unwrap_or_else(|| panic!("no {call} request in {:?}", self.requests));
        self.requests.remove(index)
    }

    pub fn has_request(&self, call: &str) -> bool {
        self.requests
            .iter()
            .any(|(_, request)| request.call() == call)
    }

    pub fn answer(&mut self, id: RequestId, answer: Result<BridgeAnswer, BridgeError>) {
        self.room.handle_bridge_answer(self.now, id, answer);
        self.drain();
    }

    /// Answers the oldest `call` as the bridge would; the request.
    pub fn grant(&mut self, call: &str) -> BridgeRequest {
        let (id, request) = self.take_request(call);
        self.answer(id, Ok(yes(&request)));
        request
    }

    /// Fails the oldest `call` with `cause`; the request.
    pub fn fail(&mut self, call: &'static str, cause: &str) -> BridgeRequest {
        let (id, request) = self.take_request(call);
        self.answer(
            id,
            Err(BridgeError {
                call,
                cause: cause.to_owned(),
            }),
        );
        request
    }

    /// Answers every request, and those they lead to, as a working bridge would; with a
    /// `pool`, each `CreateConference` is placed first as the executor would (the first bridge
    /// in the participant's region, else the first, never one of `avoid`, with `strict_region`
    /// only in the region), and fails when no bridge fits.
    pub fn answer_all(&mut self) {
        while !self.requests.is_empty() {
            let (id, request) = self.requests.remove(0);
            self.answered.push(request.clone());
            if let (
                BridgeRequest::CreateConference {
                    conference_id,
                    region,
                    avoid,
                    strict_region,
                    ..
                },
                false,
            ) = (&request, self.pool.is_empty())
            {
                let fitting: Vec<&(String, String)> = self
                    .pool
                    .iter()
                    .filter(|(bridge, _)| !avoid.iter().any(|a| a.0 == *bridge))
                    .filter(|(_, r)| !*strict_region || r == region)
                    .collect();
                let chosen = fitting
                    .iter()
                    .find(|(_, r)| !region.is_empty() && r == region)
                    .or(fitting.first())
                    .map(|&placed| placed.clone());
                let Some((bridge, bridge_region)) = chosen else {
                    self.answer(
                        id,
                        Err(BridgeError {
                            call: "CreateConference",
                            cause: "no bridge is available".to_owned(),
                        }),
                    );
                    continue;
                };
                self.room.conference_placed(
                    conference_id,
                    tutti_focus::pool::BridgeId(bridge),
                    bridge_region,
                );
            }
            self.answer(id, Ok(yes(&request)));
        }
    }

    /// Takes the requests `answer_all` answered for `call`.
    pub fn take_answered(&mut self, call: &str) -> Vec<BridgeRequest> {
        let (taken, kept) = std::mem::take(&mut self.answered)
            .into_iter()
            .partition(|request| request.call() == call);
        self.answered = kept;
        taken
    }

    pub fn take_sent(&mut self) -> Vec<Stanza> {
        std::mem::take(&mut self.sent)
    }

    /// Takes the Jingle requests sent to `nick` (in order).
    pub fn take_jingles(&mut self, nick: &str) -> Vec<Jingle> {
        let to = Some(Jid::from(occupant(nick)));
        let mut taken = Vec::new();
        self.sent.retain(|stanza| match stanza {
            Stanza::Iq(Iq::Set {
                to: sent_to,
                payload,
                ..
            }) if *sent_to == to && payload.is("jingle", tutti_focus::ns::JINGLE) => {
                taken.push(Jingle::from_element(payload).expect("the focus's Jingle parses"));
                false
            }
            _ => true,
        });
        taken
    }

    /// Takes the one Jingle request of `action` sent to `nick`.
    pub fn take_jingle(&mut self, nick: &str, action: Action) -> Jingle {
        let jingles = self.take_jingles(nick);
        let mut matching: Vec<Jingle> = jingles
            .iter()
            .filter(|jingle| jingle.action == action)
            .cloned()
            .collect();
        assert_eq!(
            matching.len(),
            1,
            "one {action} to {nick} expected, sent: {jingles:?}"
        );
        matching.remove(0)
    }

    /// The answer to the IQ `id`: `Ok(())` for a result, else its condition and whether it
    /// carries `<unknown-session/>` or `<out-of-order/>` (the Jingle error, if any) and text.
    pub fn reply(&self, id: &str) -> Result<(), (DefinedCondition, Option<String>, String)> {
        let answers: Vec<&Stanza> = self
            .sent
            .iter()
            .filter(|stanza| match stanza {
                Stanza::Iq(Iq::Result { id: answered, .. } | Iq::Error { id: answered, .. }) => {
                    answered == id
                }
                _ => false,
            })
            .collect();
        assert_eq!(answers.len(), 1, "one answer to {id}: {:?}", self.sent);
        match answers[0] {
            Stanza::Iq(Iq::Error { error, .. }) => Err((
                error.defined_condition.clone(),
                error
                    .other
                    .as_ref()
                    .filter(|other| other.ns() == JINGLE_ERRORS)
                    .map(|other| other.name().to_owned()),
                error
                    .texts
                    .values()
                    .next()
                    .map(|text| text.to_owned())
                    .unwrap_or_default(),
            )),
            _ => Ok(()),
        }
    }

    /// Whether `id` is answered yet.
    pub fn answered(&self, id: &str) -> bool {
        self.sent.iter().any(|stanza| {
            matches!(stanza, Stanza::Iq(Iq::Result { id: answered, .. } | Iq::Error { id: answered, .. }) if answered == id)
        })
    }

    /// The focus's presences sent since the last take: whether each says no bridge is
    /// available.
    pub fn take_bridge_presences(&mut self) -> Vec<bool> {
        let mut presences = Vec::new();
        self.sent.retain(|stanza| match stanza {
            Stanza::Presence(presence) if presence.type_ == PresenceType::None => {
                presences.push(
                    presence
                        .payloads
                        .iter()
                        .any(|p| p.name() == "bridgeNotAvailable"),
                );
                false
            }
            _ => true,
        });
        presences
    }

    /// The value of a gauge: the sum of its changes so far.
    pub fn gauge(&self, which: fn(&Metric) -> Option<i64>) -> i64 {
        self.metrics.iter().filter_map(which).sum()
    }

    pub fn sessions(&self, state: &'static str) -> i64 {
        self.metrics
            .iter()
            .map(|metric| match metric {
                Metric::Sessions { state: s, change } if *s == state => *change,
                _ => 0,
            })
            .sum()
    }

    pub fn participants(&self) -> i64 {
        self.gauge(|metric| match metric {
            Metric::Participants(change) => Some(*change),
            _ => None,
        })
    }

    pub fn errors(&self, kind: &str) -> usize {
        self.metrics
            .iter()
            .filter(|metric| matches!(metric, Metric::Error(k) if *k == kind))
            .count()
    }

    /// `nick` joins and the bridge says yes: its session-initiate.
    pub fn join_and_offer(&mut self, nick: &str) -> Jingle {
        self.join(nick);
        self.answer_all();
        self.take_jingle(nick, Action::SessionInitiate)
    }

    /// `nick` joins and accepts with an audio SSRC `ssrc` and a video SSRC `ssrc + 1`; its
    /// session-initiate.
    pub fn join_and_accept(&mut self, nick: &str, ssrc: u32) -> Jingle {
        let initiate = self.join_and_offer(nick);
        let id = self.jingle(nick, &session_accept(&initiate.sid, nick, ssrc));
        self.answer_all();
        assert_eq!(self.reply(&id), Ok(()), "{nick}'s session-accept");
        initiate
    }
}

/// What a working bridge answers to `request`: what it forwards of sources is all of them.
pub fn yes(request: &BridgeRequest) -> BridgeAnswer {
    match request {
        BridgeRequest::AllocateEndpoint { endpoint_id, .. } => {
            BridgeAnswer::Allocated(bridge_transport(endpoint_id))
        }
        BridgeRequest::UpdateEndpoint(update) => {
            BridgeAnswer::Updated(pb::UpdateEndpointResponse {
                forwarded: update.sources.clone().map(forward_learnt_sources),
            })
        }
        BridgeRequest::AllocateRelay {
            conference_id,
            relay_id,
            controlling,
        } => BridgeAnswer::RelayAllocated(relay_transport(conference_id, relay_id, *controlling)),
        _ => BridgeAnswer::Done,
    }
}

/// Streams signalled by MID alone are forwarded under their outputs, each with its RTX output
/// in an FID group, as the bridge answers (docs/bridge.md).
fn forward_learnt_sources(mut list: pb::SourceList) -> pb::SourceList {
    for learnt in std::mem::take(&mut list.learnt_sources) {
        let described = |ssrc| pb::Source {
            ssrc,
            media_type: learnt.media_type,
            owner: learnt.owner.clone(),
            name: learnt.name.clone(),
        };
        list.sources.push(described(learnt.output_ssrc));
        if learnt.output_rtx_ssrc != 0 {
            list.sources.push(described(learnt.output_rtx_ssrc));
            list.groups.push(pb::SourceGroup {
                semantics: "FID".to_owned(),
                ssrcs: vec![learnt.output_ssrc, learnt.output_rtx_ssrc],
            });
        }
    }
    list
}

pub fn bridge_transport(endpoint_id: &str) -> pb::Transport {
    pb::Transport {
        ice: Some(pb::IceParameters {
            ufrag: format!("u-{endpoint_id}"),
            pwd: "bridge-password-bridge-password".to_owned(),
            controlling: true,
        }),
        candidates: vec![pb::Candidate {
            foundation: "1".to_owned(),
            component: 1,
            protocol: "udp".to_owned(),
            priority: 2_130_706_431,
            ip: "10.0.0.1".to_owned(),
            port: 10000,
            r#type: "host".to_owned(),
            generation: 0,
        }],
        dtls: Some(pb::DtlsParameters {
            hash: "sha-256".to_owned(),
            fingerprint: "AB:CD".to_owned(),
            setup: pb::DtlsSetup::Actpass as i32,
        }),
        bridge_channel_url: String::new(),
    }
}

/// The participant's transport: ICE credentials, a DTLS fingerprint (`active`), one candidate.
pub fn participant_transport(nick: &str) -> IceUdpTransport {
    let mut transport = IceUdpTransport::new(format!("u-{nick}"), "participant-password-123456");
    transport.fingerprints = vec![Fingerprint::new("sha-256", "01:02", DtlsSetup::Active)];
    transport.candidates = vec![candidate("udp", 40000)];
    transport.rtcp_mux = true;
    transport
}

/// `nick`'s session-accept for `sid`: Opus with SSRC `ssrc`, VP8 with SSRC `ssrc + 1`.
pub fn session_accept(sid: &str, nick: &str, ssrc: u32) -> Jingle {
    let mut audio = RtpDescription::new("audio");
    audio.payload_types = vec![PayloadType::new(111, "opus", 48000, Some(2))];
    audio.rtcp_mux = true;
    audio.sources = vec![named_source(ssrc, nick)];
    let mut video = RtpDescription::new("video");
    video.payload_types = vec![PayloadType::new(100, "VP8", 90000, None)];
    video.rtcp_mux = true;
    video.sources = vec![named_source(ssrc + 1, nick)];
    bundled_accept(sid, [audio, video], &participant_transport(nick))
}

fn named_source(ssrc: u32, nick: &str) -> Source {
    let mut source = Source::new(ssrc);
    source.name = Some(format!("{nick}-{ssrc}"));
    source
}

/// A source-add or source-remove of one video source (SSRC `ssrc`, with an RTX `ssrc + 1`
/// in a FID group).
pub fn video_update(action: Action, sid: &str, nick: &str, ssrc: u32) -> Jingle {
    let mut video = RtpDescription::new("video");
    video.sources = vec![named_source(ssrc, nick), named_source(ssrc + 1, nick)];
    video.source_groups = vec![SourceGroup::new(GroupSemantics::Fid, vec![ssrc, ssrc + 1])];
    let mut content = Content::new("video");
    content.creator = Some(Creator::Initiator);
    content.description = Some(video);
    let mut jingle = Jingle::new(action, sid);
    jingle.contents.push(content);
    jingle
}

/// The endpoint id of an `AllocateEndpoint` or `ExpireEndpoint`, the conference id of a
/// `CreateConference` or `ExpireConference`.
pub fn named_id(request: &BridgeRequest) -> String {
    match request {
        BridgeRequest::AllocateEndpoint { endpoint_id, .. }
        | BridgeRequest::ExpireEndpoint { endpoint_id, .. } => endpoint_id.clone(),
        BridgeRequest::CreateConference { conference_id, .. }
        | BridgeRequest::ExpireConference { conference_id } => conference_id.clone(),
        BridgeRequest::UpdateEndpoint(update) => update.endpoint_id.clone(),
        BridgeRequest::AllocateRelay { relay_id, .. }
        | BridgeRequest::ExpireRelay { relay_id, .. } => relay_id.clone(),
        BridgeRequest::UpdateRelay(update) => update.relay_id.clone(),
    }
}

/// What a bridge's `AllocateRelay` answers: its side of the relay (ICE role and DTLS setup by
/// `controlling`, a link id made from the ids).
pub fn relay_transport(
    conference_id: &str,
    relay_id: &str,
    controlling: bool,
) -> pb::RelayTransport {
    let link_id = conference_id
        .bytes()
        .chain(relay_id.bytes())
        .fold(1u32, |id, byte| {
            id.wrapping_mul(31).wrapping_add(u32::from(byte))
        })
        .max(1);
    pb::RelayTransport {
        ice: Some(pb::IceParameters {
            ufrag: format!("r-{conference_id}"),
            pwd: "relay-password-relay-password".to_owned(),
            controlling,
        }),
        candidates: bridge_transport(conference_id).candidates,
        dtls: Some(pb::DtlsParameters {
            hash: "sha-256".to_owned(),
            fingerprint: format!("FP:{conference_id}"),
            setup: if controlling {
                pb::DtlsSetup::Active
            } else {
                pb::DtlsSetup::Passive
            } as i32,
        }),
        link_id,
    }
}

/// What a GStreamer- or libwebrtc-based desktop client lists: the XEPs, nothing of Jitsi's.
pub fn standard_features() -> Vec<&'static str> {
    let mut features = REQUIRED_FEATURES.to_vec();
    features.extend([
        "urn:xmpp:jingle:apps:rtp:audio",
        "urn:xmpp:jingle:apps:rtp:video",
        "urn:xmpp:jingle:apps:rtp:rtcp-fb:0",
        "urn:xmpp:jingle:apps:rtp:rtp-hdrext:0",
        "urn:xmpp:jingle:apps:grouping:0",
        "urn:xmpp:jingle-message:0",
    ]);
    features
}

/// A standards client's session-accept of `initiate`: its own audio (SSRC `ssrc`) and video
/// (`ssrc + 1`) with msids, every remote stream's content accepted receive-only.
pub fn standard_accept(initiate: &Jingle, nick: &str, ssrc: u32) -> Jingle {
    accept_with_sources(initiate, nick, Some(ssrc))
}

/// [`standard_accept`], with XEP-0339 sources in its own contents only when `ssrc` is given.
pub fn accept_with_sources(initiate: &Jingle, nick: &str, ssrc: Option<u32>) -> Jingle {
    let transport = participant_transport(nick);
    let mut accept = Jingle::new(Action::SessionAccept, &initiate.sid);
    for offered in &initiate.contents {
        let media = offered
            .description
            .as_ref()
            .and_then(|d| d.media.clone())
            .unwrap();
        let mut description = RtpDescription::new(&media);
        description.payload_types = match media.as_str() {
            "audio" => vec![PayloadType::new(111, "opus", 48000, Some(2))],
            _ => vec![PayloadType::new(100, "VP8", 90000, None)],
        };
        description.rtcp_mux = true;
        let own = offered.name == "audio" || offered.name == "video";
        if let Some(ssrc) = ssrc.filter(|_| own) {
            let own_ssrc = if media == "audio" { ssrc } else { ssrc + 1 };
            let mut source = Source::new(own_ssrc);
            source.parameters = vec![Parameter::new("msid", format!("{nick} {nick}-{media}"))];
            description.sources.push(source);
        }
        let mut content = Content::new(offered.name.clone());
        content.creator = Some(Creator::Initiator);
        content.senders = offered.senders;
        content.description = Some(description);
        content.transport = Some(transport.clone());
        accept.contents.push(content);
    }
    accept.groups.push(Group::bundle(
        initiate.contents.iter().map(|c| c.name.clone()),
    ));
    accept
}

/// The SSRC each remote stream's content of `jingle` carries first, by content name (a
/// standards client's session: its own contents are `audio` and `video`).
pub fn stream_ssrcs(jingle: &Jingle) -> Vec<(u32, String)> {
    jingle
        .contents
        .iter()
        .filter(|c| c.name != "audio" && c.name != "video")
        .map(|c| {
            let ssrc = c.description.as_ref().unwrap().sources[0].ssrc;
            (ssrc, c.name.clone())
        })
        .collect()
}
