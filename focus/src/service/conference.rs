//! The focus's rooms: who is in them, their Jingle sessions and bridge endpoints.
//!
//! Everything here runs on the one signalling task, one stanza at a time, so the state needs no
//! locks; what is to be sent is collected in an outbox the task writes to the XMPP stream.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jid::{BareJid, FullJid, Jid};
use minidom::Element;
use tokio_xmpp::parsers::iq::Iq;
use tokio_xmpp::parsers::message::Message;
use tokio_xmpp::parsers::presence::{Presence, Type as PresenceType};
use tokio_xmpp::Stanza;
use tracing::{info, warn};
use tutti_focus::capabilities::{self, CapabilityCache};
use tutti_focus::jingle::{Action, Jingle, Reason, ReasonKind};
use tutti_focus::jitsi::{self, BridgeSession};
use tutti_focus::offer::{self, SessionInitiate};
use tutti_focus::sources::{ConferenceSources, EndpointSources, ReceiverView, SourceChange};
use tutti_focus::to_bridge::{self, EndpointId, RemoteTransportState};

use super::bridge::Bridge;
use super::config::Settings;
use super::metrics::Metrics;
use super::stanzas::{self, iq_error, iq_get, iq_result, iq_set, mint_id, Refusal};

/// The nick lib-jitsi-meet expects the focus to have.
pub const FOCUS_NICK: &str = "focus";

enum SessionState {
    /// session-initiate sent; source updates for the participant wait here until it accepts.
    Pending {
        queued: Vec<Jingle>,
    },
    Active,
}

struct Session {
    sid: String,
    endpoint_id: String,
    state: SessionState,
    transport: RemoteTransportState,
}

impl Session {
    fn state_label(&self) -> &'static str {
        match self.state {
            SessionState::Pending { .. } => "pending",
            SessionState::Active => "active",
        }
    }
}

struct Participant {
    occupant: FullJid,
    session: Option<Session>,
    restarts: RestartLimit,
}

/// Session restarts one participant may ask for (ICE failure reports, session-terminate with a
/// restart request) within `RESTART_WINDOW`, as Jicofo limits them: a client whose network
/// keeps failing would otherwise have the focus allocate endpoints in a loop.
const MAX_RESTARTS: usize = 3;
const RESTART_WINDOW: Duration = Duration::from_secs(60);

#[derive(Default)]
struct RestartLimit {
    /// When the restarts inside the window happened; never more than `MAX_RESTARTS`.
    recent: Vec<Instant>,
}

impl RestartLimit {
    /// Counts a restart at `now` if the window has room for it.
    fn allow(&mut self, now: Instant) -> bool {
        self.recent
            .retain(|at| now.saturating_duration_since(*at) < RESTART_WINDOW);
        if self.recent.len() >= MAX_RESTARTS {
            return false;
        }
        self.recent.push(now);
        true
    }
}

struct Room {
    /// `room@muc/focus`.
    focus_occupant: FullJid,
    /// Joined from the configuration: the focus stays when the room empties.
    configured: bool,
    /// Joined again after a lost connection: left at once if nobody is there any more.
    rejoined: bool,
    /// The bridge conference, once created.
    conference_id: Option<String>,
    /// Occupants other than the focus, by nick.
    participants: BTreeMap<String, Participant>,
    sources: ConferenceSources,
}

/// An occupant whose caps the focus asked about (disco#info) before inviting it.
struct CapabilityQuery {
    room: BareJid,
    occupant: FullJid,
    node: String,
}

pub struct Focus {
    settings: Settings,
    bridge: Bridge,
    metrics: Arc<Metrics>,
    rooms: HashMap<BareJid, Room>,
    outbox: Vec<Stanza>,
    capabilities: CapabilityCache,
    /// disco#info queries in flight, by IQ id.
    capability_queries: HashMap<String, CapabilityQuery>,
}

impl Focus {
    pub fn new(settings: Settings, bridge: Bridge, metrics: Arc<Metrics>) -> Focus {
        Focus {
            settings,
            bridge,
            metrics,
            rooms: HashMap::new(),
            outbox: Vec::new(),
            capabilities: CapabilityCache::default(),
            capability_queries: HashMap::new(),
        }
    }

    /// What is to be sent, in order.
    pub fn take_outbox(&mut self) -> Vec<Stanza> {
        std::mem::take(&mut self.outbox)
    }

    /// Joins the configured rooms (after every login).
    pub fn on_online(&mut self) {
        for room in self.settings.rooms.clone() {
            self.join_room(room, true);
        }
    }

    pub async fn on_stanza(&mut self, stanza: Stanza) {
        match stanza {
            Stanza::Iq(iq) => self.on_iq(iq).await,
            Stanza::Presence(presence) => self.on_presence(presence).await,
            Stanza::Message(message) => self.on_message(message),
        }
    }

    /// A new XMPP session after a lost connection: the server took the focus out of every
    /// room, and its sessions are gone with it. Expires what the bridge holds and joins every
    /// room again; the occupants still there get new sessions.
    pub async fn on_reconnected(&mut self) {
        let rooms: Vec<(BareJid, bool)> = self
            .rooms
            .iter()
            .map(|(jid, room)| (jid.clone(), room.configured))
            .collect();
        self.shutdown().await;
        self.outbox.clear();
        self.capability_queries.clear();
        for (jid, configured) in rooms {
            self.join_room(jid.clone(), configured);
            if let Some(room) = self.rooms.get_mut(&jid) {
                room.rejoined = true;
            }
        }
        self.on_online();
    }

    /// Leaves every room and expires every conference (shutdown).
    pub async fn shutdown(&mut self) {
        let rooms: Vec<BareJid> = self.rooms.keys().cloned().collect();
        for room in rooms {
            self.leave_room(&room).await;
        }
    }

    fn join_room(&mut self, room: BareJid, configured: bool) {
        if let Some(existing) = self.rooms.get_mut(&room) {
            existing.configured |= configured;
            return;
        }
        let focus_occupant = match room.with_resource_str(FOCUS_NICK) {
            Ok(occupant) => occupant,
            Err(error) => {
                warn!(%room, %error, "cannot form the focus's occupant JID");
                self.metrics.error("room_join");
                return;
            }
        };
        info!(%room, "joining");
        let history = Element::builder("history", stanzas::MUC)
            .attr(rxml::xml_ncname!("maxstanzas").into(), "0")
            .build();
        let join = Presence::available()
            .with_to(focus_occupant.clone())
            .with_payloads(vec![
                Element::builder("x", stanzas::MUC).append(history).build(),
                jitsi::conference_properties(),
            ]);
        self.outbox.push(Stanza::Presence(join));
        self.rooms.insert(
            room,
            Room {
                focus_occupant,
                configured,
                rejoined: false,
                conference_id: None,
                participants: BTreeMap::new(),
                sources: ConferenceSources::new(),
            },
        );
        self.metrics.rooms.inc();
    }

    /// Leaves `room`: expires its endpoints and conference and forgets it.
    async fn leave_room(&mut self, room_jid: &BareJid) {
        let Some(room) = self.rooms.remove(room_jid) else {
            return;
        };
        info!(room = %room_jid, "leaving");
        self.metrics.rooms.dec();
        for participant in room.participants.values() {
            self.metrics.participants.dec();
            if let Some(session) = &participant.session {
                self.metrics.session_state(session.state_label()).dec();
            }
        }
        if let Some(conference_id) = &room.conference_id {
            if let Err(error) = self.bridge.expire_conference(conference_id).await {
                warn!(room = %room_jid, %error, "expiring the conference failed");
                self.metrics.error("bridge");
            }
        }
        let leave = Presence::unavailable().with_to(room.focus_occupant.clone());
        self.outbox.push(Stanza::Presence(leave));
    }

    fn on_message(&mut self, message: Message) {
        let Some(invite) = message
            .payloads
            .iter()
            .find(|p| p.is("x", stanzas::DIRECT_INVITE))
        else {
            return;
        };
        match invite.attr("jid").map(|room| self.room_for_request(room)) {
            Some(Ok(room)) => self.join_room(room, false),
            Some(Err(refusal)) => {
                warn!(from = ?message.from, ?refusal, "refused an invitation");
                self.metrics.error(refusal.kind());
            }
            None => self.metrics.error("bad_request"),
        }
    }

    /// `room` as a room JID on the configured MUC service.
    fn room_for_request(&self, room: &str) -> Result<BareJid, Refusal> {
        let jid = BareJid::new(room)
            .map_err(|e| Refusal::BadRequest(format!("room '{room}' is not a JID: {e}")))?;
        if jid.node().is_none() {
            return Err(Refusal::BadRequest(format!(
                "room '{room}' has no local part"
            )));
        }
        if jid.domain().as_str() != self.settings.muc_domain {
            return Err(Refusal::NotAllowed(format!(
                "this focus serves rooms on {} only",
                self.settings.muc_domain
            )));
        }
        Ok(jid)
    }

    async fn on_iq(&mut self, iq: Iq) {
        match iq {
            Iq::Set {
                from, id, payload, ..
            } => {
                let answer = self.on_iq_set(from.clone(), &payload).await;
                self.answer(from, id, answer);
            }
            Iq::Get {
                from, id, payload, ..
            } => {
                let answer = if payload.is("ping", stanzas::PING) {
                    Ok(None)
                } else if payload.is("query", stanzas::DISCO_INFO) {
                    Ok(Some(disco_info()))
                } else {
                    Err(Refusal::ServiceUnavailable(format!(
                        "<{} xmlns='{}'> is not served here",
                        payload.name(),
                        payload.ns()
                    )))
                };
                self.answer(from, id, answer);
            }
            Iq::Error {
                from, id, error, ..
            } => {
                if let Some(query) = self.take_capability_query(&id, from.as_ref()) {
                    // No answer is not a "no": invite with the default features, as Jicofo.
                    info!(occupant = %query.occupant, "no disco#info answer; inviting anyway");
                    self.invite_if_capable(&query.room, &query.occupant, true)
                        .await;
                    return;
                }
                warn!(?from, ?error, "a request of the focus was refused");
                self.metrics.error("peer_refused");
            }
            Iq::Result {
                from, id, payload, ..
            } => {
                if let Some(query) = self.take_capability_query(&id, from.as_ref()) {
                    let capable = payload.as_ref().is_none_or(capabilities::is_jingle_capable);
                    self.capabilities.remember(query.node, capable);
                    self.invite_if_capable(&query.room, &query.occupant, capable)
                        .await;
                }
            }
        }
    }

    fn answer(&mut self, to: Option<Jid>, id: String, answer: Result<Option<Element>, Refusal>) {
        let stanza = match answer {
            Ok(payload) => iq_result(to, id, payload),
            Err(refusal) => {
                info!(?to, ?refusal, "refused a request");
                self.metrics.error(refusal.kind());
                iq_error(to, id, &refusal)
            }
        };
        self.outbox.push(stanza);
    }

    async fn on_iq_set(
        &mut self,
        from: Option<Jid>,
        payload: &Element,
    ) -> Result<Option<Element>, Refusal> {
        if payload.is("conference", stanzas::FOCUS) {
            let room = payload
                .attr("room")
                .ok_or_else(|| Refusal::BadRequest("<conference> lacks 'room'".to_owned()))?;
            let room = self.room_for_request(room)?;
            self.join_room(room.clone(), false);
            let answer = Element::builder("conference", stanzas::FOCUS)
                .attr(rxml::xml_ncname!("ready").into(), "true")
                // Bare: lib-jitsi-meet recognises the focus's occupant by a real JID that
                // starts with `focusjid/`.
                .attr(
                    rxml::xml_ncname!("focusjid").into(),
                    self.settings.full_jid.to_bare().to_string(),
                )
                .attr(rxml::xml_ncname!("room").into(), room.to_string())
                .build();
            return Ok(Some(answer));
        }
        if payload.is("jingle", tutti_focus::ns::JINGLE) {
            let from = from.ok_or(Refusal::UnknownSession)?;
            return self.on_jingle(from, payload).await.map(|()| None);
        }
        Err(Refusal::ServiceUnavailable(format!(
            "<{} xmlns='{}'> is not served here",
            payload.name(),
            payload.ns()
        )))
    }

    async fn on_presence(&mut self, presence: Presence) {
        let Some(Ok(from)) = presence.from.clone().map(Jid::try_into_full) else {
            return;
        };
        let room_jid = from.to_bare();
        if !self.rooms.contains_key(&room_jid) {
            return;
        }
        let nick = from.resource().as_str().to_owned();
        if nick == FOCUS_NICK {
            self.on_own_presence(&room_jid, &presence).await;
            return;
        }
        match presence.type_ {
            PresenceType::None => {
                let known = self
                    .rooms
                    .get(&room_jid)
                    .is_some_and(|room| room.participants.contains_key(&nick));
                if !known {
                    let caps = capabilities::caps_node(&presence.payloads);
                    self.participant_joined(&room_jid, from, caps).await;
                }
            }
            PresenceType::Unavailable => self.participant_left(&room_jid, &nick).await,
            _ => {}
        }
    }

    async fn on_own_presence(&mut self, room_jid: &BareJid, presence: &Presence) {
        match presence.type_ {
            PresenceType::Error => {
                warn!(room = %room_jid, payloads = ?presence.payloads, "the room refused the focus");
                self.metrics.error("room_join");
                self.forget_room(room_jid).await;
            }
            PresenceType::Unavailable => {
                info!(room = %room_jid, "the focus is no longer in the room");
                self.forget_room(room_jid).await;
            }
            PresenceType::None => {
                // The room sends its occupants' presences before the focus's own.
                let abandoned = self.rooms.get_mut(room_jid).is_some_and(|room| {
                    std::mem::take(&mut room.rejoined)
                        && !room.configured
                        && room.participants.is_empty()
                });
                if abandoned {
                    info!(room = %room_jid, "nobody is left after the reconnection; leaving");
                    self.leave_room(room_jid).await;
                    return;
                }
                let created = presence
                    .payloads
                    .iter()
                    .filter(|p| p.is("x", stanzas::MUC_USER))
                    .flat_map(|x| x.children())
                    .any(|status| {
                        status.is("status", stanzas::MUC_USER) && status.attr("code") == Some("201")
                    });
                if created {
                    let form = Element::builder("x", stanzas::DATA_FORMS)
                        .attr(rxml::xml_ncname!("type").into(), "submit")
                        .build();
                    let query = Element::builder("query", stanzas::MUC_OWNER)
                        .append(form)
                        .build();
                    self.outbox.push(iq_set(Jid::from(room_jid.clone()), query));
                }
            }
            _ => {}
        }
    }

    /// The room is gone for the focus: expire what the bridge has and forget it, without
    /// sending anything to the room.
    async fn forget_room(&mut self, room_jid: &BareJid) {
        self.leave_room(room_jid).await;
        self.outbox.pop();
    }

    /// A new occupant: conference (first time), endpoint, session-initiate.
    async fn participant_joined(
        &mut self,
        room_jid: &BareJid,
        occupant: FullJid,
        caps: Option<String>,
    ) {
        let nick = occupant.resource().as_str().to_owned();
        let Some(room) = self.rooms.get_mut(room_jid) else {
            return;
        };
        info!(%occupant, "joined");
        room.participants.insert(
            nick.clone(),
            Participant {
                occupant: occupant.clone(),
                session: None,
                restarts: RestartLimit::default(),
            },
        );
        self.metrics.participants.inc();
        let Some(node) = caps else {
            // No caps: assume a Jingle client (Jicofo's default features).
            self.invite(room_jid, &nick).await;
            return;
        };
        match self.capabilities.verdict(&node) {
            Some(capable) => self.invite_if_capable(room_jid, &occupant, capable).await,
            None => {
                let id = mint_id();
                self.outbox.push(iq_get(
                    Jid::from(occupant.clone()),
                    id.clone(),
                    capabilities::disco_query(&node),
                ));
                self.capability_queries.insert(
                    id,
                    CapabilityQuery {
                        room: room_jid.clone(),
                        occupant,
                        node,
                    },
                );
            }
        }
    }

    /// The query with this id, if `from` is the occupant it was sent to.
    fn take_capability_query(&mut self, id: &str, from: Option<&Jid>) -> Option<CapabilityQuery> {
        let query = self.capability_queries.get(id)?;
        if from.map(|from| from.to_string()) != Some(query.occupant.to_string()) {
            return None;
        }
        self.capability_queries.remove(id)
    }

    async fn invite_if_capable(&mut self, room_jid: &BareJid, occupant: &FullJid, capable: bool) {
        let still_waiting = self.rooms.get(room_jid).is_some_and(|room| {
            room.participants
                .get(occupant.resource().as_str())
                .is_some_and(|p| p.occupant == *occupant && p.session.is_none())
        });
        if !still_waiting {
            return;
        }
        if capable {
            self.invite(room_jid, occupant.resource().as_str()).await;
        } else {
            info!(%occupant, "does not advertise Jingle RTP over ICE-UDP with DTLS; not invited");
            self.metrics.error("not_jingle_capable");
        }
    }

    /// Gives a participant without a session a bridge endpoint (and the room its conference, the
    /// first time) and sends it a session-initiate.
    async fn invite(&mut self, room_jid: &BareJid, nick: &str) {
        let started = Instant::now();
        let Some(room) = self.rooms.get_mut(room_jid) else {
            return;
        };
        let Some(occupant) = room.participants.get(nick).map(|p| p.occupant.clone()) else {
            return;
        };
        let conference_id = match &room.conference_id {
            Some(id) => id.clone(),
            None => {
                let id = mint_id();
                if let Err(error) = self.bridge.create_conference(&id, room_jid.as_str()).await {
                    self.allocation_failed(&occupant, &error.to_string());
                    return;
                }
                room.conference_id = Some(id.clone());
                id
            }
        };
        let endpoint_id = mint_id();
        let transport = match self
            .bridge
            .allocate_endpoint(&conference_id, &endpoint_id)
            .await
        {
            Ok(transport) => transport,
            Err(error) => {
                self.allocation_failed(&occupant, &error.to_string());
                return;
            }
        };
        let sid = mint_id();
        let initiator = room.focus_occupant.to_string();
        let responder = occupant.to_string();
        let views = room.sources.receiver_views_except(&responder);
        let offer = offer::session_initiate(&SessionInitiate {
            sid: &sid,
            initiator: &initiator,
            responder: &responder,
            bridge_transport: &transport,
            sources: &views,
            bridge_session_id: Some(&endpoint_id),
        });
        let jingle = match offer {
            Ok(jingle) => jingle,
            Err(error) => {
                if let Err(expire) = self
                    .bridge
                    .expire_endpoint(&conference_id, &endpoint_id)
                    .await
                {
                    warn!(%expire, "expiring an unusable endpoint failed");
                }
                self.allocation_failed(&occupant, &format!("the bridge's transport: {error}"));
                return;
            }
        };
        let Some(participant) = room.participants.get_mut(nick) else {
            return;
        };
        participant.session = Some(Session {
            sid,
            endpoint_id,
            state: SessionState::Pending { queued: Vec::new() },
            transport: RemoteTransportState::new(),
        });
        self.metrics.session_state("pending").inc();
        self.outbox
            .push(iq_set(Jid::from(occupant), jingle.to_element()));
        self.metrics
            .allocation_seconds
            .observe(started.elapsed().as_secs_f64());
    }

    /// Tells the participant its media could not be set up; it stays in the room without a
    /// session.
    fn allocation_failed(&mut self, occupant: &FullJid, cause: &str) {
        warn!(%occupant, cause, "allocation failed");
        self.metrics.error("allocation");
        let mut terminate = Jingle::new(Action::SessionTerminate, mint_id());
        terminate.reason = Some(Reason::new(ReasonKind::GeneralError).with_text(format!(
            "the focus could not allocate media on the bridge: {cause}"
        )));
        self.outbox
            .push(iq_set(Jid::from(occupant.clone()), terminate.to_element()));
    }

    async fn participant_left(&mut self, room_jid: &BareJid, nick: &str) {
        let Some(room) = self.rooms.get_mut(room_jid) else {
            return;
        };
        let Some(participant) = room.participants.remove(nick) else {
            return;
        };
        info!(occupant = %participant.occupant, "left");
        self.metrics.participants.dec();
        self.capability_queries
            .retain(|_, query| query.occupant != participant.occupant);
        if let Some(session) = participant.session {
            self.end_session(room_jid, &participant.occupant, session)
                .await;
        }
        let Some(room) = self.rooms.get_mut(room_jid) else {
            return;
        };
        if room.participants.is_empty() {
            if room.configured {
                if let Some(conference_id) = room.conference_id.take() {
                    if let Err(error) = self.bridge.expire_conference(&conference_id).await {
                        warn!(room = %room_jid, %error, "expiring the conference failed");
                        self.metrics.error("bridge");
                    }
                }
            } else {
                self.leave_room(room_jid).await;
            }
        }
    }

    /// The participant's session is over: expire its endpoint, and remove its sources from
    /// everyone else.
    async fn end_session(&mut self, room_jid: &BareJid, occupant: &FullJid, session: Session) {
        self.metrics.session_state(session.state_label()).dec();
        let Some(room) = self.rooms.get_mut(room_jid) else {
            return;
        };
        if let Some(conference_id) = &room.conference_id {
            if let Err(error) = self
                .bridge
                .expire_endpoint(conference_id, &session.endpoint_id)
                .await
            {
                warn!(%occupant, %error, "expiring the endpoint failed");
                self.metrics.error("bridge");
            }
        }
        let removed = room.sources.remove_participant(occupant.as_str());
        let outbox = &mut self.outbox;
        signal(
            room,
            occupant.as_str(),
            &removed,
            Action::SourceRemove,
            outbox,
        );
    }

    async fn on_jingle(&mut self, from: Jid, element: &Element) -> Result<(), Refusal> {
        let jingle =
            Jingle::from_element(element).map_err(|e| Refusal::BadRequest(e.to_string()))?;
        let found = self.rooms.iter().find_map(|(room_jid, room)| {
            room.participants.iter().find_map(|(nick, participant)| {
                participant
                    .session
                    .as_ref()
                    .filter(|session| session.sid == jingle.sid)
                    .map(|_| (room_jid.clone(), nick.clone()))
            })
        });
        if jingle.action == Action::SessionInitiate {
            return Err(Refusal::ServiceUnavailable(match found {
                Some(_) => format!("session '{}' already exists", jingle.sid),
                None => "the focus initiates the sessions; it accepts none".to_owned(),
            }));
        }
        let (room_jid, nick) = found.ok_or(Refusal::UnknownSession)?;
        let room = self.rooms.get(&room_jid).ok_or(Refusal::UnknownSession)?;
        let participant = room
            .participants
            .get(&nick)
            .ok_or(Refusal::UnknownSession)?;
        if from != participant.occupant.clone() {
            return Err(Refusal::UnknownSession);
        }
        let occupant = participant.occupant.clone();
        match jingle.action {
            Action::SessionAccept => self.on_session_accept(&room_jid, &nick, &jingle).await,
            Action::TransportInfo => self.on_transport_info(&room_jid, &nick, &jingle).await,
            Action::SourceAdd | Action::SourceRemove => {
                self.on_source_update(&room_jid, &nick, &jingle).await
            }
            Action::SessionTerminate => {
                let restart = participant
                    .session
                    .as_ref()
                    .is_some_and(|session| requests_restart(&jingle, &session.endpoint_id));
                let session = self
                    .rooms
                    .get_mut(&room_jid)
                    .and_then(|room| room.participants.get_mut(&nick))
                    .and_then(|participant| participant.session.take());
                if let Some(session) = session {
                    info!(%occupant, reason = ?jingle.reason, restart, "session terminated by the participant");
                    self.end_session(&room_jid, &occupant, session).await;
                    // The client has ended its side already: a refused restart leaves it in the
                    // room without a session, as a plain terminate does.
                    if restart && self.count_restart(&room_jid, &nick) {
                        self.invite(&room_jid, &nick).await;
                    }
                }
                Ok(())
            }
            Action::SessionInfo => {
                let endpoint_id = participant
                    .session
                    .as_ref()
                    .map(|session| session.endpoint_id.as_str());
                if endpoint_id.is_some_and(|id| reports_ice_failure(&jingle, id)) {
                    if !self.count_restart(&room_jid, &nick) {
                        return Err(Refusal::ResourceConstraint(format!(
                            "at most {MAX_RESTARTS} session restarts per {} s",
                            RESTART_WINDOW.as_secs()
                        )));
                    }
                    self.restart_session(&room_jid, &nick).await;
                }
                Ok(())
            }
            other => Err(Refusal::NotImplemented(format!(
                "the focus does not handle {other}"
            ))),
        }
    }

    /// Whether the participant may restart its session now (and counts it if so).
    fn count_restart(&mut self, room_jid: &BareJid, nick: &str) -> bool {
        let Some(participant) = self
            .rooms
            .get_mut(room_jid)
            .and_then(|room| room.participants.get_mut(nick))
        else {
            return false;
        };
        let allowed = participant.restarts.allow(Instant::now());
        if !allowed {
            warn!(occupant = %participant.occupant, "too many session restarts; not restarting");
            self.metrics.error("restart_limited");
        }
        allowed
    }

    /// lib-jitsi-meet's report that ICE failed: the session is replaced, as Jicofo does, by a
    /// session-terminate, the old endpoint expired (source-remove to the others) and a new
    /// endpoint with a new session-initiate (its sources reach the others again after its
    /// session-accept).
    async fn restart_session(&mut self, room_jid: &BareJid, nick: &str) {
        let Some(participant) = self
            .rooms
            .get_mut(room_jid)
            .and_then(|room| room.participants.get_mut(nick))
        else {
            return;
        };
        let occupant = participant.occupant.clone();
        let Some(session) = participant.session.take() else {
            return;
        };
        info!(%occupant, "ICE failed: restarting the session");
        let mut terminate = Jingle::new(Action::SessionTerminate, session.sid.clone());
        terminate.reason = Some(Reason::new(ReasonKind::Success).with_text("restart"));
        self.outbox
            .push(iq_set(Jid::from(occupant.clone()), terminate.to_element()));
        self.end_session(room_jid, &occupant, session).await;
        self.invite(room_jid, nick).await;
    }

    async fn on_session_accept(
        &mut self,
        room_jid: &BareJid,
        nick: &str,
        jingle: &Jingle,
    ) -> Result<(), Refusal> {
        let found = session_mut(&mut self.rooms, room_jid, nick)?;
        if !matches!(found.session.state, SessionState::Pending { .. }) {
            return Err(Refusal::OutOfOrder(
                "the session is already accepted".to_owned(),
            ));
        }
        let owner = found.occupant.to_string();
        let conference_id = found.conference_id.ok_or(Refusal::UnknownSession)?;
        let sources = EndpointSources::from_jingle(jingle).map_err(bad_sources)?;
        let mut trial = found.sources.clone();
        let change = trial.accept(&owner, sources.clone()).map_err(bad_sources)?;
        let mut transport = found.session.transport.clone();
        let endpoint = EndpointId {
            conference_id: &conference_id,
            endpoint_id: &found.session.endpoint_id,
        };
        let update =
            to_bridge::session_accept_update(endpoint, &owner, jingle, &mut transport, &sources)
                .map_err(|e| Refusal::BadRequest(e.to_string()))?;
        self.bridge
            .update_endpoint(update)
            .await
            .map_err(|e| Refusal::Internal(e.to_string()))?;
        *found.sources = trial;
        found.session.transport = transport;
        let queued = match std::mem::replace(&mut found.session.state, SessionState::Active) {
            SessionState::Pending { queued } => queued,
            SessionState::Active => Vec::new(),
        };
        self.metrics.session_state("pending").dec();
        self.metrics.session_state("active").inc();
        for update in queued {
            self.outbox.push(iq_set(
                Jid::from(found.occupant.clone()),
                update.to_element(),
            ));
        }
        info!(occupant = %found.occupant, "session accepted");
        if let Some(room) = self.rooms.get_mut(room_jid) {
            signal_change(room, &owner, &change, &mut self.outbox);
        }
        Ok(())
    }

    async fn on_transport_info(
        &mut self,
        room_jid: &BareJid,
        nick: &str,
        jingle: &Jingle,
    ) -> Result<(), Refusal> {
        let found = session_mut(&mut self.rooms, room_jid, nick)?;
        let conference_id = found.conference_id.ok_or(Refusal::UnknownSession)?;
        let mut transport = found.session.transport.clone();
        let endpoint = EndpointId {
            conference_id: &conference_id,
            endpoint_id: &found.session.endpoint_id,
        };
        let update = to_bridge::transport_info_update(endpoint, jingle, &mut transport)
            .map_err(|e| Refusal::BadRequest(e.to_string()))?;
        if let Some(update) = update {
            self.bridge
                .update_endpoint(update)
                .await
                .map_err(|e| Refusal::Internal(e.to_string()))?;
        }
        found.session.transport = transport;
        Ok(())
    }

    async fn on_source_update(
        &mut self,
        room_jid: &BareJid,
        nick: &str,
        jingle: &Jingle,
    ) -> Result<(), Refusal> {
        let found = session_mut(&mut self.rooms, room_jid, nick)?;
        if !matches!(found.session.state, SessionState::Active) {
            return Err(Refusal::OutOfOrder(format!(
                "{} before session-accept",
                jingle.action
            )));
        }
        let owner = found.occupant.to_string();
        let conference_id = found.conference_id.ok_or(Refusal::UnknownSession)?;
        let listed = EndpointSources::from_jingle(jingle).map_err(bad_sources)?;
        let mut trial = found.sources.clone();
        let change = match jingle.action {
            Action::SourceAdd => trial.add(&owner, &listed),
            _ => trial.remove(&owner, &listed),
        }
        .map_err(bad_sources)?;
        let now = trial.get(&owner).cloned().unwrap_or_default();
        let endpoint = EndpointId {
            conference_id: &conference_id,
            endpoint_id: &found.session.endpoint_id,
        };
        self.bridge
            .update_endpoint(to_bridge::sources_update(endpoint, &owner, &now))
            .await
            .map_err(|e| Refusal::Internal(e.to_string()))?;
        *found.sources = trial;
        if let Some(room) = self.rooms.get_mut(room_jid) {
            signal_change(room, &owner, &change, &mut self.outbox);
        }
        Ok(())
    }
}

/// A `session-info` with `<ice-state xmlns='http://jitsi.org/protocol/focus'>failed</ice-state>`
/// about the current bridge session (a `<bridge-session id>` naming an earlier endpoint is a
/// stale report).
fn reports_ice_failure(jingle: &Jingle, endpoint_id: &str) -> bool {
    let failed = jingle.extensions.children.iter().any(|child| {
        child.is("ice-state", tutti_focus::ns::JITSI_FOCUS) && child.text().trim() == "failed"
    });
    let current = match jingle.extensions.get::<BridgeSession>() {
        Ok(Some(bridge_session)) => bridge_session.id.is_none_or(|id| id == endpoint_id),
        Ok(None) => true,
        Err(_) => false,
    };
    failed && current
}

/// A `session-terminate` with `<bridge-session restart='true'>` about the current bridge session:
/// the client asks for a new session (lib-jitsi-meet's default reaction to an ICE failure).
fn requests_restart(jingle: &Jingle, endpoint_id: &str) -> bool {
    matches!(
        jingle.extensions.get::<BridgeSession>(),
        Ok(Some(BridgeSession { id, restart: Some(true), .. }))
            if id.as_deref().is_none_or(|id| id == endpoint_id)
    )
}

fn bad_sources(error: tutti_focus::sources::SourceError) -> Refusal {
    Refusal::BadRequest(format!("invalid sources: {error}"))
}

/// A participant's session, with what of its room handling it needs.
struct SessionRef<'a> {
    conference_id: Option<String>,
    sources: &'a mut ConferenceSources,
    occupant: FullJid,
    session: &'a mut Session,
}

fn session_mut<'a>(
    rooms: &'a mut HashMap<BareJid, Room>,
    room_jid: &BareJid,
    nick: &str,
) -> Result<SessionRef<'a>, Refusal> {
    let Room {
        conference_id,
        participants,
        sources,
        ..
    } = rooms.get_mut(room_jid).ok_or(Refusal::UnknownSession)?;
    let participant = participants.get_mut(nick).ok_or(Refusal::UnknownSession)?;
    let occupant = participant.occupant.clone();
    let session = participant
        .session
        .as_mut()
        .ok_or(Refusal::UnknownSession)?;
    Ok(SessionRef {
        conference_id: conference_id.clone(),
        sources,
        occupant,
        session,
    })
}

/// Tells everyone in `room` but `owner` of `owner`'s added and removed sources.
fn signal_change(room: &mut Room, owner: &str, change: &SourceChange, outbox: &mut Vec<Stanza>) {
    signal(room, owner, &change.removed, Action::SourceRemove, outbox);
    signal(room, owner, &change.added, Action::SourceAdd, outbox);
}

/// Sends `view` as `action` (source-add or source-remove) to everyone in `room` with a session
/// but `owner`; a participant that has not accepted yet gets it after its session-accept.
fn signal(
    room: &mut Room,
    owner: &str,
    view: &ReceiverView,
    action: Action,
    outbox: &mut Vec<Stanza>,
) {
    if view.is_empty() {
        return;
    }
    let views = std::slice::from_ref(view);
    for participant in room.participants.values_mut() {
        if participant.occupant.as_str() == owner {
            continue;
        }
        let Some(session) = participant.session.as_mut() else {
            continue;
        };
        let update = match action {
            Action::SourceAdd => offer::source_add(&session.sid, views),
            _ => offer::source_remove(&session.sid, views),
        };
        let Some(update) = update else {
            continue;
        };
        match &mut session.state {
            SessionState::Pending { queued } => queued.push(update),
            SessionState::Active => outbox.push(iq_set(
                Jid::from(participant.occupant.clone()),
                update.to_element(),
            )),
        }
    }
}

/// The focus's disco#info: a conference focus speaking Jingle.
fn disco_info() -> Element {
    let identity = Element::builder("identity", stanzas::DISCO_INFO)
        .attr(rxml::xml_ncname!("category").into(), "component")
        .attr(rxml::xml_ncname!("type").into(), "conference-focus")
        .attr(rxml::xml_ncname!("name").into(), "Tutti focus")
        .build();
    let mut query = Element::builder("query", stanzas::DISCO_INFO).append(identity);
    for feature in [
        stanzas::DISCO_INFO,
        stanzas::PING,
        stanzas::FOCUS,
        tutti_focus::ns::JINGLE,
        stanzas::DIRECT_INVITE,
    ] {
        query = query.append(
            Element::builder("feature", stanzas::DISCO_INFO)
                .attr(rxml::xml_ncname!("var").into(), feature)
                .build(),
        );
    }
    query.build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restarts_are_limited_per_window() {
        let mut limit = RestartLimit::default();
        let start = Instant::now();
        for i in 0..MAX_RESTARTS as u64 {
            assert!(limit.allow(start + Duration::from_secs(i)));
        }
        assert!(!limit.allow(start + Duration::from_secs(10)));
        assert!(!limit.allow(start + RESTART_WINDOW - Duration::from_millis(1)));
        // The first one has left the window: room for one more, then full again.
        assert!(limit.allow(start + RESTART_WINDOW));
        assert!(!limit.allow(start + RESTART_WINDOW + Duration::from_millis(500)));
        assert_eq!(limit.recent.len(), MAX_RESTARTS);
    }

    #[test]
    fn only_a_restart_of_the_current_bridge_session_counts() {
        let terminate = |id: Option<&str>, restart: Option<bool>| {
            let mut jingle = Jingle::new(Action::SessionTerminate, "s1");
            jingle.extensions.set(&BridgeSession {
                id: id.map(str::to_owned),
                restart,
                ..BridgeSession::default()
            });
            jingle
        };
        assert!(requests_restart(&terminate(Some("e1"), Some(true)), "e1"));
        assert!(requests_restart(&terminate(None, Some(true)), "e1"));
        assert!(!requests_restart(&terminate(Some("e0"), Some(true)), "e1"));
        assert!(!requests_restart(&terminate(Some("e1"), Some(false)), "e1"));
        assert!(!requests_restart(&terminate(Some("e1"), None), "e1"));
        assert!(!requests_restart(
            &Jingle::new(Action::SessionTerminate, "s1"),
            "e1"
        ));
    }
}
