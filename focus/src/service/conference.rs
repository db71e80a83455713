//! One room's conference: its occupants, their Jingle sessions and bridge endpoints.
//!
//! Every room the focus is in runs as a task of its own (`Conference::run`), which handles the
//! room's stanzas one at a time: the state needs no locks, the order of a room's signalling is
//! the order its stanzas came in, and a slow bridge call holds up that room only. `focus.rs`
//! routes stanzas to the rooms; what a room sends goes to the outbox, which the signalling
//! task writes to the XMPP stream in order.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jid::{BareJid, FullJid, Jid};
use minidom::Element;
use tokio::sync::mpsc;
use tokio_xmpp::parsers::iq::Iq;
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
use super::metrics::Metrics;
use super::stanzas::{self, answer, iq_get, iq_set, mint_id, Refusal};

/// The nick lib-jitsi-meet expects the focus to have.
pub const FOCUS_NICK: &str = "focus";

/// Stanzas to send, in order.
pub type Outbox = mpsc::UnboundedSender<Stanza>;

/// What the rooms share: the bridge, the metrics, and what is known of clients' capabilities.
#[derive(Clone)]
pub struct Services {
    pub bridge: Bridge,
    pub metrics: Arc<Metrics>,
    /// Verdicts by caps node, for every room (a lock held for a map look-up, never across an
    /// await).
    pub capabilities: Arc<Mutex<CapabilityCache>>,
}

/// What a room's task is handed.
pub enum RoomInput {
    /// A stanza from the room or one of its occupants (boxed: stanzas are large, the other
    /// inputs tiny).
    Stanza(Box<Stanza>),
    /// The room was asked for again (conference request, invitation, configuration).
    Join { configured: bool },
    /// A new XMPP session after a lost connection: the server took the focus out of the room.
    Rejoin,
    /// The focus is shutting down.
    Leave,
}

/// A room's task has ended. `join_again` (with whether the room is configured) when the room
/// was asked for while its task was leaving it.
pub struct RoomClosed {
    pub room: BareJid,
    pub join_again: Option<bool>,
}

/// Reports the end of a room's task when dropped, so also if the task panicked.
struct ClosedNotice {
    room: BareJid,
    join_again: Option<bool>,
    to: mpsc::UnboundedSender<RoomClosed>,
}

impl Drop for ClosedNotice {
    fn drop(&mut self) {
        let _ = self.to.send(RoomClosed {
            room: self.room.clone(),
            join_again: self.join_again,
        });
    }
}

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
    /// Its invitation failed on the bridge: invited again when the room next tries the bridge.
    awaiting_bridge: bool,
    /// The endpoint id of its failed `AllocateEndpoint`, asked for again at the next attempt
    /// (as with `Room::conference_attempt`, so that no endpoint is left behind on the bridge).
    endpoint_attempt: Option<String>,
}

/// How soon a room whose bridge failed tries it again, doubling up to `BRIDGE_RETRY_MAX`.
const BRIDGE_RETRY_FIRST: Duration = Duration::from_secs(1);
const BRIDGE_RETRY_MAX: Duration = Duration::from_secs(30);

/// The room's next attempt at the bridge for the participants it could not invite.
struct BridgeRetry {
    at: Instant,
    delay: Duration,
}

impl BridgeRetry {
    fn first(now: Instant) -> BridgeRetry {
        BridgeRetry {
            at: now + BRIDGE_RETRY_FIRST,
            delay: BRIDGE_RETRY_FIRST,
        }
    }

    fn after(&self, now: Instant) -> BridgeRetry {
        let delay = (self.delay * 2).min(BRIDGE_RETRY_MAX);
        BridgeRetry {
            at: now + delay,
            delay,
        }
    }
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
    /// The id of a `CreateConference` that failed: the bridge may have made it all the same
    /// (an answer lost to the time-out), so the next attempt asks for the same id, which the
    /// bridge treats as the same request.
    conference_attempt: Option<String>,
    /// Occupants other than the focus, by nick.
    participants: BTreeMap<String, Participant>,
    sources: ConferenceSources,
}

/// An occupant whose caps the focus asked about (disco#info) before inviting it.
struct CapabilityQuery {
    occupant: FullJid,
    node: String,
}

pub struct Conference {
    jid: BareJid,
    room: Room,
    /// disco#info queries in flight, by IQ id.
    capability_queries: HashMap<String, CapabilityQuery>,
    /// The id of the last room configuration the focus submitted.
    configuration_id: String,
    bridge: Bridge,
    metrics: Arc<Metrics>,
    capabilities: Arc<Mutex<CapabilityCache>>,
    outbox: Outbox,
    /// The focus's presence in the room says that no bridge is available (`bridgeNotAvailable`).
    bridge_down: bool,
    /// When to try the bridge again for the participants awaiting it.
    bridge_retry: Option<BridgeRetry>,
    /// A session the bridge failed during a request of the participant's: ended once the
    /// request is answered.
    failed_session: Option<(String, String)>,
    /// The focus has left the room, or lost it: the task ends.
    ended: bool,
}

/// The owner's room configuration (XEP-0045 §10.2): occupants' real JIDs visible to anyone, so
/// that clients can tell the focus's occupant by its real JID (lib-jitsi-meet does) whatever
/// the server's default. Submitted right behind the join presence: the server handles both in
/// order, so a room the focus creates is configured (and, where rooms start locked, unlocked)
/// before anyone the focus answers can join it.
fn room_configuration(room: &BareJid, id: &str) -> Stanza {
    let field = |var: &str, value: &str| {
        Element::builder("field", stanzas::DATA_FORMS)
            .attr(rxml::xml_ncname!("var").into(), var)
            .append(
                Element::builder("value", stanzas::DATA_FORMS)
                    .append(value)
                    .build(),
            )
            .build()
    };
    let form = Element::builder("x", stanzas::DATA_FORMS)
        .attr(rxml::xml_ncname!("type").into(), "submit")
        .append(field("FORM_TYPE", stanzas::MUC_ROOMCONFIG))
        .append(field("muc#roomconfig_whois", "anyone"))
        .build();
    let query = Element::builder("query", stanzas::MUC_OWNER)
        .append(form)
        .build();
    Stanza::Iq(Iq::Set {
        from: None,
        to: Some(Jid::from(room.clone())),
        id: id.to_owned(),
        payload: query,
    })
}

/// The presence that joins `focus_occupant`'s room (no history: the focus acts on presences).
fn join_presence(focus_occupant: &FullJid) -> Stanza {
    let history = Element::builder("history", stanzas::MUC)
        .attr(rxml::xml_ncname!("maxstanzas").into(), "0")
        .build();
    Stanza::Presence(
        Presence::available()
            .with_to(focus_occupant.clone())
            .with_payloads(vec![
                Element::builder("x", stanzas::MUC).append(history).build(),
                jitsi::conference_properties(),
            ]),
    )
}

impl Conference {
    /// Sends the presence that joins `room`; `run` then handles the room.
    pub fn join(
        room: BareJid,
        configured: bool,
        services: Services,
        outbox: Outbox,
    ) -> Option<Conference> {
        let focus_occupant = match room.with_resource_str(FOCUS_NICK) {
            Ok(occupant) => occupant,
            Err(error) => {
                warn!(%room, %error, "cannot form the focus's occupant JID");
                services.metrics.error("room_join");
                return None;
            }
        };
        info!(%room, "joining");
        let configuration_id = mint_id();
        let _ = outbox.send(join_presence(&focus_occupant));
        let _ = outbox.send(room_configuration(&room, &configuration_id));
        services.metrics.rooms.inc();
        Some(Conference {
            jid: room,
            room: Room {
                focus_occupant,
                configured,
                rejoined: false,
                conference_id: None,
                conference_attempt: None,
                participants: BTreeMap::new(),
                sources: ConferenceSources::new(),
            },
            capability_queries: HashMap::new(),
            configuration_id,
            bridge: services.bridge,
            metrics: services.metrics,
            capabilities: services.capabilities,
            outbox,
            bridge_down: false,
            bridge_retry: None,
            failed_session: None,
            ended: false,
        })
    }

    /// Handles the room's inputs, one at a time, until the focus leaves the room.
    pub async fn run(
        mut self,
        mut inputs: mpsc::UnboundedReceiver<RoomInput>,
        closed: mpsc::UnboundedSender<RoomClosed>,
    ) {
        let mut notice = ClosedNotice {
            room: self.jid.clone(),
            join_again: None,
            to: closed,
        };
        loop {
            let input = match self.bridge_retry.as_ref().map(|retry| retry.at) {
                Some(at) => tokio::select! {
                    input = inputs.recv() => input,
                    () = tokio::time::sleep_until(at.into()) => {
                        self.retry_invitations().await;
                        continue;
                    }
                },
                None => inputs.recv().await,
            };
            let Some(input) = input else {
                break;
            };
            match input {
                RoomInput::Stanza(stanza) => self.on_stanza(*stanza).await,
                RoomInput::Join { configured } => self.room.configured |= configured,
                RoomInput::Rejoin => self.rejoin().await,
                RoomInput::Leave => self.leave(true).await,
            }
            if self.ended {
                break;
            }
        }
        // The room was asked for while the focus was leaving it: join it again afterwards.
        inputs.close();
        while let Ok(input) = inputs.try_recv() {
            if let RoomInput::Join { configured } = input {
                notice.join_again = Some(notice.join_again.unwrap_or(false) | configured);
            }
        }
    }

    fn send(&self, stanza: Stanza) {
        // Fails only once the signalling task is gone, when nothing can be sent anyway.
        let _ = self.outbox.send(stanza);
    }

    async fn on_stanza(&mut self, stanza: Stanza) {
        match stanza {
            Stanza::Iq(iq) => self.on_iq(iq).await,
            Stanza::Presence(presence) => self.on_presence(presence).await,
            Stanza::Message(_) => {}
        }
    }

    /// Expires what the bridge holds for the room and forgets its occupants.
    async fn forget_occupants(&mut self) {
        for participant in self.room.participants.values() {
            self.metrics.participants.dec();
            if let Some(session) = &participant.session {
                self.metrics.session_state(session.state_label()).dec();
            }
        }
        self.room.participants.clear();
        self.room.sources = ConferenceSources::new();
        self.capability_queries.clear();
        self.bridge_down = false;
        self.bridge_retry = None;
        self.failed_session = None;
        if let Some(conference_id) = self.room.conference_id.take() {
            if let Err(error) = self.bridge.expire_conference(&conference_id).await {
                warn!(room = %self.jid, %error, "expiring the conference failed");
                self.metrics.error("bridge");
            }
        }
        if let Some(attempt) = self.room.conference_attempt.take() {
            // Usually not there (the bridge never made it): no error either way.
            let _ = self.bridge.expire_conference(&attempt).await;
        }
    }

    /// Leaves the room (with an unavailable presence, unless the room is gone for the focus
    /// already) after expiring its endpoints and conference.
    async fn leave(&mut self, send_presence: bool) {
        info!(room = %self.jid, "leaving");
        self.forget_occupants().await;
        self.metrics.rooms.dec();
        if send_presence {
            let leave = Presence::unavailable().with_to(self.room.focus_occupant.clone());
            self.send(Stanza::Presence(leave));
        }
        self.ended = true;
    }

    /// The server took the focus out of the room (a new XMPP session): its sessions are gone
    /// with it. Expires what the bridge holds and joins again; the occupants still there get
    /// new sessions.
    async fn rejoin(&mut self) {
        self.forget_occupants().await;
        self.room.rejoined = true;
        self.configuration_id = mint_id();
        self.send(join_presence(&self.room.focus_occupant));
        self.send(room_configuration(&self.jid, &self.configuration_id));
    }

    async fn on_iq(&mut self, iq: Iq) {
        match iq {
            Iq::Set {
                from, id, payload, ..
            } => {
                let result = match from.clone() {
                    Some(from) if payload.is("jingle", tutti_focus::ns::JINGLE) => {
                        self.on_jingle(from, &payload).await.map(|()| None)
                    }
                    _ => Err(Refusal::ServiceUnavailable(format!(
                        "<{} xmlns='{}'> is not served here",
                        payload.name(),
                        payload.ns()
                    ))),
                };
                self.send(answer(from, id, result, &self.metrics));
                if let Some((nick, cause)) = self.failed_session.take() {
                    self.drop_failed_session(&nick, &cause).await;
                }
            }
            Iq::Get { .. } => {}
            Iq::Error {
                from, id, error, ..
            } => {
                if let Some(query) = self.take_capability_query(&id, from.as_ref()) {
                    // No answer is not a "no": invite with the default features, as Jicofo.
                    info!(occupant = %query.occupant, "no disco#info answer; inviting anyway");
                    self.invite_if_capable(&query.occupant, true).await;
                    return;
                }
                if id == self.configuration_id {
                    // A room someone else owns keeps its configuration.
                    info!(room = %self.jid, ?error, "the room's configuration was not changed");
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
                    self.capabilities
                        .lock()
                        .unwrap_or_else(|poisoned| poisoned.into_inner())
                        .remember(query.node, capable);
                    self.invite_if_capable(&query.occupant, capable).await;
                }
            }
        }
    }

    async fn on_presence(&mut self, presence: Presence) {
        let Some(Ok(from)) = presence.from.clone().map(Jid::try_into_full) else {
            return;
        };
        if from.to_bare() != self.jid {
            return;
        }
        let nick = from.resource().as_str().to_owned();
        if nick == FOCUS_NICK {
            self.on_own_presence(&presence).await;
            return;
        }
        match presence.type_ {
            PresenceType::None if !self.room.participants.contains_key(&nick) => {
                let caps = capabilities::caps_node(&presence.payloads);
                self.participant_joined(from, caps).await;
            }
            PresenceType::Unavailable => self.participant_left(&nick).await,
            _ => {}
        }
    }

    async fn on_own_presence(&mut self, presence: &Presence) {
        match presence.type_ {
            PresenceType::Error => {
                warn!(room = %self.jid, payloads = ?presence.payloads, "the room refused the focus");
                self.metrics.error("room_join");
                self.leave(false).await;
            }
            PresenceType::Unavailable => {
                info!(room = %self.jid, "the focus is no longer in the room");
                self.leave(false).await;
            }
            PresenceType::None => {
                // The room sends its occupants' presences before the focus's own.
                let abandoned = std::mem::take(&mut self.room.rejoined)
                    && !self.room.configured
                    && self.room.participants.is_empty();
                if abandoned {
                    info!(room = %self.jid, "nobody is left after the reconnection; leaving");
                    self.leave(true).await;
                }
            }
            _ => {}
        }
    }

    /// A new occupant: conference (first time), endpoint, session-initiate.
    async fn participant_joined(&mut self, occupant: FullJid, caps: Option<String>) {
        let nick = occupant.resource().as_str().to_owned();
        info!(%occupant, "joined");
        self.room.participants.insert(
            nick.clone(),
            Participant {
                occupant: occupant.clone(),
                session: None,
                restarts: RestartLimit::default(),
                awaiting_bridge: false,
                endpoint_attempt: None,
            },
        );
        self.metrics.participants.inc();
        let Some(node) = caps else {
            // No caps: assume a Jingle client (Jicofo's default features).
            self.invite(&nick).await;
            return;
        };
        let verdict = self
            .capabilities
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .verdict(&node);
        match verdict {
            Some(capable) => self.invite_if_capable(&occupant, capable).await,
            None => {
                let id = mint_id();
                self.send(iq_get(
                    Jid::from(occupant.clone()),
                    id.clone(),
                    capabilities::disco_query(&node),
                ));
                self.capability_queries
                    .insert(id, CapabilityQuery { occupant, node });
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

    async fn invite_if_capable(&mut self, occupant: &FullJid, capable: bool) {
        let still_waiting = self
            .room
            .participants
            .get(occupant.resource().as_str())
            .is_some_and(|p| p.occupant == *occupant && p.session.is_none());
        if !still_waiting {
            return;
        }
        if capable {
            self.invite(occupant.resource().as_str()).await;
        } else {
            info!(%occupant, "does not advertise Jingle RTP over ICE-UDP with DTLS; not invited");
            self.metrics.error("not_jingle_capable");
        }
    }

    /// Gives a participant without a session a bridge endpoint (and the room its conference, the
    /// first time) and sends it a session-initiate.
    async fn invite(&mut self, nick: &str) {
        let started = Instant::now();
        let Some(occupant) = self.room.participants.get(nick).map(|p| p.occupant.clone()) else {
            return;
        };
        let conference_id = match &self.room.conference_id {
            Some(id) => id.clone(),
            None => {
                let id = self
                    .room
                    .conference_attempt
                    .get_or_insert_with(mint_id)
                    .clone();
                if let Err(error) = self.bridge.create_conference(&id, self.jid.as_str()).await {
                    self.allocation_failed(nick, &error.to_string());
                    return;
                }
                self.room.conference_attempt = None;
                self.room.conference_id = Some(id.clone());
                id
            }
        };
        let endpoint_id = self
            .room
            .participants
            .get_mut(nick)
            .and_then(|participant| participant.endpoint_attempt.take())
            .unwrap_or_else(mint_id);
        let transport = match self
            .bridge
            .allocate_endpoint(&conference_id, &endpoint_id, nick)
            .await
        {
            Ok(transport) => transport,
            Err(error) => {
                if let Some(participant) = self.room.participants.get_mut(nick) {
                    participant.endpoint_attempt = Some(endpoint_id);
                }
                self.allocation_failed(nick, &error.to_string());
                return;
            }
        };
        let sid = mint_id();
        let initiator = self.room.focus_occupant.to_string();
        let responder = occupant.to_string();
        let views = self.room.sources.receiver_views_except(&responder);
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
                self.allocation_failed(nick, &format!("the bridge's transport: {error}"));
                return;
            }
        };
        let Some(participant) = self.room.participants.get_mut(nick) else {
            return;
        };
        participant.session = Some(Session {
            sid,
            endpoint_id,
            state: SessionState::Pending { queued: Vec::new() },
            transport: RemoteTransportState::new(),
        });
        self.metrics.session_state("pending").inc();
        self.send(iq_set(Jid::from(occupant), jingle.to_element()));
        self.metrics
            .allocation_seconds
            .observe(started.elapsed().as_secs_f64());
    }

    /// The bridge could not give the participant an endpoint. Before a session-initiate there
    /// is no session to terminate (a session-terminate for a sid the client never saw is
    /// refused as unknown-session), so the room says it in the focus's presence, as Jicofo
    /// does, and tries the bridge again for the participant with back-off.
    fn allocation_failed(&mut self, nick: &str, cause: &str) {
        warn!(room = %self.jid, nick, cause, "allocation failed");
        self.metrics.error("allocation");
        if let Some(participant) = self.room.participants.get_mut(nick) {
            participant.awaiting_bridge = true;
        }
        if !self.bridge_down {
            self.bridge_down = true;
            self.send(self.focus_presence());
        }
        if self.bridge_retry.is_none() {
            self.bridge_retry = Some(BridgeRetry::first(Instant::now()));
        }
    }

    /// The focus's presence in the room after joining: its conference properties, and whether
    /// a bridge is available.
    fn focus_presence(&self) -> Stanza {
        let mut payloads = vec![jitsi::conference_properties()];
        if self.bridge_down {
            payloads.push(jitsi::bridge_not_available());
        }
        Stanza::Presence(
            Presence::available()
                .with_to(self.room.focus_occupant.clone())
                .with_payloads(payloads),
        )
    }

    /// Invites the participants awaiting the bridge again; once every one has a session, the
    /// focus's presence says the bridge is back.
    async fn retry_invitations(&mut self) {
        let Some(retry) = self.bridge_retry.take() else {
            return;
        };
        if self.room.participants.values().all(|p| p.session.is_none()) {
            // Nobody holds a session in the room's conference: the next invitation creates it
            // again under the same id, which changes nothing on a bridge that still has it and
            // makes it anew on one that restarted and lost it.
            if let Some(conference_id) = self.room.conference_id.take() {
                self.room.conference_attempt = Some(conference_id);
            }
        }
        let waiting: Vec<String> = self
            .room
            .participants
            .iter()
            .filter(|(_, participant)| participant.awaiting_bridge)
            .map(|(nick, _)| nick.clone())
            .collect();
        for nick in waiting {
            if let Some(participant) = self.room.participants.get_mut(&nick) {
                participant.awaiting_bridge = false;
            }
            self.invite(&nick).await;
            if self.bridge_retry.is_some() {
                // Still failing: the others wait for the next attempt rather than each
                // waiting out the bridge's timeout now.
                self.bridge_retry = Some(retry.after(Instant::now()));
                return;
            }
        }
        if self.bridge_down {
            info!(room = %self.jid, "the bridge is available again");
            self.bridge_down = false;
            self.send(self.focus_presence());
        }
    }

    /// The bridge failed the participant's session after its session-initiate: the session is
    /// terminated with the cause as its reason, and the participant invited again once the
    /// bridge takes endpoints.
    async fn drop_failed_session(&mut self, nick: &str, cause: &str) {
        let Some(participant) = self.room.participants.get_mut(nick) else {
            return;
        };
        let occupant = participant.occupant.clone();
        let Some(session) = participant.session.take() else {
            return;
        };
        let mut terminate = Jingle::new(Action::SessionTerminate, session.sid.clone());
        terminate.reason = Some(
            Reason::new(ReasonKind::GeneralError)
                .with_text(format!("the bridge failed the session: {cause}")),
        );
        self.send(iq_set(Jid::from(occupant.clone()), terminate.to_element()));
        self.end_session(&occupant, session).await;
        self.allocation_failed(nick, cause);
    }

    async fn participant_left(&mut self, nick: &str) {
        let Some(participant) = self.room.participants.remove(nick) else {
            return;
        };
        info!(occupant = %participant.occupant, "left");
        self.metrics.participants.dec();
        self.capability_queries
            .retain(|_, query| query.occupant != participant.occupant);
        if let Some(session) = participant.session {
            self.end_session(&participant.occupant, session).await;
        }
        if let (Some(endpoint_id), Some(conference_id)) =
            (&participant.endpoint_attempt, &self.room.conference_id)
        {
            // A failed allocation the bridge may have made after all.
            let _ = self
                .bridge
                .expire_endpoint(conference_id, endpoint_id)
                .await;
        }
        if !self.room.participants.is_empty() {
            return;
        }
        if self.room.configured {
            if let Some(conference_id) = self.room.conference_id.take() {
                if let Err(error) = self.bridge.expire_conference(&conference_id).await {
                    warn!(room = %self.jid, %error, "expiring the conference failed");
                    self.metrics.error("bridge");
                }
            }
        } else {
            self.leave(true).await;
        }
    }

    /// The participant's session is over: expire its endpoint, and remove its sources from
    /// everyone else.
    async fn end_session(&mut self, occupant: &FullJid, session: Session) {
        self.metrics.session_state(session.state_label()).dec();
        if let Some(conference_id) = &self.room.conference_id {
            if let Err(error) = self
                .bridge
                .expire_endpoint(conference_id, &session.endpoint_id)
                .await
            {
                warn!(%occupant, %error, "expiring the endpoint failed");
                self.metrics.error("bridge");
            }
        }
        let removed = self.room.sources.remove_participant(occupant.as_str());
        signal(
            &mut self.room,
            occupant.as_str(),
            &removed,
            Action::SourceRemove,
            &self.outbox,
        );
    }

    async fn on_jingle(&mut self, from: Jid, element: &Element) -> Result<(), Refusal> {
        let jingle =
            Jingle::from_element(element).map_err(|e| Refusal::BadRequest(e.to_string()))?;
        let found = self
            .room
            .participants
            .iter()
            .find_map(|(nick, participant)| {
                participant
                    .session
                    .as_ref()
                    .filter(|session| session.sid == jingle.sid)
                    .map(|_| nick.clone())
            });
        if jingle.action == Action::SessionInitiate {
            return Err(Refusal::ServiceUnavailable(match found {
                Some(_) => format!("session '{}' already exists", jingle.sid),
                None => "the focus initiates the sessions; it accepts none".to_owned(),
            }));
        }
        let nick = found.ok_or(Refusal::UnknownSession)?;
        let participant = self
            .room
            .participants
            .get(&nick)
            .ok_or(Refusal::UnknownSession)?;
        if from != participant.occupant.clone() {
            return Err(Refusal::UnknownSession);
        }
        let occupant = participant.occupant.clone();
        match jingle.action {
            Action::SessionAccept => self.on_session_accept(&nick, &jingle).await,
            Action::TransportInfo => self.on_transport_info(&nick, &jingle).await,
            Action::SourceAdd | Action::SourceRemove => self.on_source_update(&nick, &jingle).await,
            Action::SessionTerminate => {
                let restart = participant
                    .session
                    .as_ref()
                    .is_some_and(|session| requests_restart(&jingle, &session.endpoint_id));
                let session = self
                    .room
                    .participants
                    .get_mut(&nick)
                    .and_then(|participant| participant.session.take());
                if let Some(session) = session {
                    info!(%occupant, reason = ?jingle.reason, restart, "session terminated by the participant");
                    self.end_session(&occupant, session).await;
                    // The client has ended its side already: a refused restart leaves it in the
                    // room without a session, as a plain terminate does.
                    if restart && self.count_restart(&nick) {
                        self.invite(&nick).await;
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
                    if !self.count_restart(&nick) {
                        return Err(Refusal::ResourceConstraint(format!(
                            "at most {MAX_RESTARTS} session restarts per {} s",
                            RESTART_WINDOW.as_secs()
                        )));
                    }
                    self.restart_session(&nick).await;
                }
                Ok(())
            }
            other => Err(Refusal::NotImplemented(format!(
                "the focus does not handle {other}"
            ))),
        }
    }

    /// Whether the participant may restart its session now (and counts it if so).
    fn count_restart(&mut self, nick: &str) -> bool {
        let Some(participant) = self.room.participants.get_mut(nick) else {
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
    async fn restart_session(&mut self, nick: &str) {
        let Some(participant) = self.room.participants.get_mut(nick) else {
            return;
        };
        let occupant = participant.occupant.clone();
        let Some(session) = participant.session.take() else {
            return;
        };
        info!(%occupant, "ICE failed: restarting the session");
        let mut terminate = Jingle::new(Action::SessionTerminate, session.sid.clone());
        terminate.reason = Some(Reason::new(ReasonKind::Success).with_text("restart"));
        self.send(iq_set(Jid::from(occupant.clone()), terminate.to_element()));
        self.end_session(&occupant, session).await;
        self.invite(nick).await;
    }

    async fn on_session_accept(&mut self, nick: &str, jingle: &Jingle) -> Result<(), Refusal> {
        let found = session_mut(&mut self.room, nick)?;
        if !matches!(found.session.state, SessionState::Pending { .. }) {
            return Err(Refusal::OutOfOrder(
                "the session is already accepted".to_owned(),
            ));
        }
        let owner = found.occupant.to_string();
        let conference_id = found.conference_id.ok_or(Refusal::UnknownSession)?;
        let sources = EndpointSources::from_jingle(jingle).map_err(bad_sources)?;
        let mut trial = found.sources.clone();
        trial.accept(&owner, sources.clone()).map_err(bad_sources)?;
        let mut transport = found.session.transport.clone();
        let endpoint = EndpointId {
            conference_id: &conference_id,
            endpoint_id: &found.session.endpoint_id,
        };
        let update = to_bridge::session_accept_update(
            endpoint,
            &owner,
            jingle,
            &mut transport,
            &sources,
            trial.outputs(&owner),
        )
        .map_err(|e| Refusal::BadRequest(e.to_string()))?;
        let forwarded = match self.bridge.update_endpoint_sources(update).await {
            Ok(forwarded) => forwarded,
            Err(error) => {
                self.failed_session = Some((nick.to_owned(), error.to_string()));
                return Err(Refusal::Internal(format!(
                    "the bridge did not take the session: {error}"
                )));
            }
        };
        let change = trial.show(&owner, &to_bridge::forwarded_from_pb(&forwarded));
        *found.sources = trial;
        found.session.transport = transport;
        let queued = match std::mem::replace(&mut found.session.state, SessionState::Active) {
            SessionState::Pending { queued } => queued,
            SessionState::Active => Vec::new(),
        };
        self.metrics.session_state("pending").dec();
        self.metrics.session_state("active").inc();
        for update in queued {
            let _ = self.outbox.send(iq_set(
                Jid::from(found.occupant.clone()),
                update.to_element(),
            ));
        }
        info!(occupant = %found.occupant, "session accepted");
        signal_change(&mut self.room, &owner, &change, &self.outbox);
        Ok(())
    }

    async fn on_transport_info(&mut self, nick: &str, jingle: &Jingle) -> Result<(), Refusal> {
        let found = session_mut(&mut self.room, nick)?;
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

    async fn on_source_update(&mut self, nick: &str, jingle: &Jingle) -> Result<(), Refusal> {
        let found = session_mut(&mut self.room, nick)?;
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
        match jingle.action {
            Action::SourceAdd => trial.add(&owner, &listed),
            _ => trial.remove(&owner, &listed),
        }
        .map_err(bad_sources)?;
        let now = trial.get(&owner).cloned().unwrap_or_default();
        let endpoint = EndpointId {
            conference_id: &conference_id,
            endpoint_id: &found.session.endpoint_id,
        };
        let forwarded = self
            .bridge
            .update_endpoint_sources(to_bridge::sources_update(
                endpoint,
                &owner,
                &now,
                trial.outputs(&owner),
            ))
            .await
            .map_err(|e| Refusal::Internal(e.to_string()))?;
        let change = trial.show(&owner, &to_bridge::forwarded_from_pb(&forwarded));
        *found.sources = trial;
        signal_change(&mut self.room, &owner, &change, &self.outbox);
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

fn session_mut<'a>(room: &'a mut Room, nick: &str) -> Result<SessionRef<'a>, Refusal> {
    let Room {
        conference_id,
        participants,
        sources,
        ..
    } = room;
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
fn signal_change(room: &mut Room, owner: &str, change: &SourceChange, outbox: &Outbox) {
    signal(room, owner, &change.removed, Action::SourceRemove, outbox);
    signal(room, owner, &change.added, Action::SourceAdd, outbox);
}

/// Sends `view` as `action` (source-add or source-remove) to everyone in `room` with a session
/// but `owner`; a participant that has not accepted yet gets it after its session-accept.
fn signal(room: &mut Room, owner: &str, view: &ReceiverView, action: Action, outbox: &Outbox) {
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
            SessionState::Active => {
                let _ = outbox.send(iq_set(
                    Jid::from(participant.occupant.clone()),
                    update.to_element(),
                ));
            }
        }
    }
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
