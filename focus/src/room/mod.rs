//! One MUC room's conference as a state machine without I/O: no socket, no clock, no `await`.
//!
//! A [`Room`] is handed what reaches it — stanzas from the room and its occupants
//! ([`Room::handle_stanza`]), the bridge's answers to its requests
//! ([`Room::handle_bridge_answer`]), the time ([`Room::handle_timeout`]) — and says what to do
//! ([`Room::poll_output`]): stanzas to send, bridge requests to make (each with an id the room
//! chose; the answers may come back in any order, several may be in flight at once), and
//! metrics. [`Room::poll_timeout`] says when it next wants [`Room::handle_timeout`]. The ids
//! and session ids it mints come from a seeded generator, so a run is reproducible.
//!
//! Its parts:
//! - `membership.rs`: who is in the room, what their clients can do (disco#info by caps),
//!   the focus's own presence, joining, leaving and rejoining the room;
//! - `allocation.rs`: the room's bridge conference and each participant's endpoint, retried
//!   with back-off under the same ids when the bridge fails;
//! - `sessions.rs`: one Jingle session per participant, its requests one at a time, restarts
//!   and their limit, and the fan-out of sources ([`crate::sources`]) to the others;
//! - `cascade.rs`: the room's conferences on further bridges and the relays between them;
//! - `moves.rs`: what the others are told when participants move to another bridge, one
//!   update per move.

mod allocation;
mod cascade;
mod membership;
mod moves;
mod requests;
mod sessions;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use jid::{BareJid, FullJid, Jid};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio_xmpp::parsers::iq::Iq;
use tokio_xmpp::Stanza;
use tracing::{info, warn};

use crate::capabilities::{CapabilityCache, Dialect};
use crate::jingle::{Action, Jingle, Reason, ReasonKind};
use crate::sources::ConferenceSources;
use crate::stanzas::{self, Refusal};

pub use moves::MOVE_HOLD;
pub use requests::{BridgeAnswer, BridgeError, BridgeRequest, RequestId};

use allocation::BridgeState;
use cascade::{Cascade, RelayKey};
use membership::{CapabilityQuery, Participant};
use moves::Moves;
use sessions::InFlight;

/// The nick lib-jitsi-meet expects the focus to have.
pub const FOCUS_NICK: &str = "focus";

/// What the room asks its executor to do, in order.
#[derive(Debug)]
pub enum Output {
    /// A stanza to send (boxed: stanzas are large, the other outputs small).
    Stanza(Box<Stanza>),
    /// A bridge request to make; its answer goes to [`Room::handle_bridge_answer`] with `id`.
    Bridge {
        id: RequestId,
        request: BridgeRequest,
    },
    Metric(Metric),
}

/// Every kind `tutti_focus_errors_total` counts: the refusals' kinds
/// ([`crate::stanzas::Refusal::kind`]) and the failed operations'.
pub const ERROR_KINDS: &[&str] = &[
    "unknown_session",
    "bad_request",
    "service_unavailable",
    "not_allowed",
    "out_of_order",
    "not_implemented",
    "internal",
    "resource_constraint",
    "allocation",
    "bridge",
    "room_join",
    "peer_refused",
    "not_jingle_capable",
    "restart_limited",
    "room_backlog",
    "outbox_full",
    "rate_limited",
    "stanza_too_deep",
    "stanza_malformed",
];

/// What a room's occupants may ask of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoomLimits {
    /// Jingle requests a second one occupant may send, with a burst of one second's worth;
    /// beyond, each is refused with `resource-constraint` and counted as `rate_limited` (0: no
    /// limit).
    pub jingle_request_rate: u32,
    /// Participants of a conference on one bridge: one more is put on another bridge of the
    /// pool, linked by relays (0: no cap). See `cascade.rs`.
    pub participants_per_bridge: u32,
}

impl Default for RoomLimits {
    fn default() -> Self {
        RoomLimits {
            jingle_request_rate: 20,
            participants_per_bridge: 0,
        }
    }
}

/// A change of the focus's metrics (docs/focus.md, "Metrics").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// The rooms the focus is in: +1 on joining, -1 on leaving.
    Rooms(i64),
    /// Occupants other than the focus.
    Participants(i64),
    /// Jingle sessions in `state` (`pending`: initiate sent; `active`: accepted).
    Sessions { state: &'static str, change: i64 },
    /// A participant's invitation, from its first bridge request to its session-initiate.
    Allocation(Duration),
    /// A refused stanza or a failed operation, by kind.
    Error(&'static str),
    /// A relay between two bridges of a conference is linked (both sides took the other's
    /// transport).
    RelayLinked,
    /// A relay failed (refused by a bridge, or timed out): one of its bridges' part of the
    /// conference was given up.
    RelayFailed,
}

/// Where an IQ's answer goes.
#[derive(Debug, Clone)]
struct Reply {
    to: Option<Jid>,
    id: String,
}

/// What a bridge request in flight is for.
enum Pending {
    CreateConference {
        conference_id: String,
    },
    /// A further conference of the room, on another bridge.
    CreateLeg {
        conference_id: String,
    },
    AllocateEndpoint {
        nick: String,
        conference_id: String,
        endpoint_id: String,
    },
    /// A participant's Jingle request, answered once the bridge has.
    Jingle(InFlight),
    /// One side (0: controlling, 1: controlled) of a relay.
    AllocateRelay {
        key: RelayKey,
        side: usize,
    },
    UpdateRelay {
        key: RelayKey,
        side: usize,
        with_transport: bool,
    },
    /// The MIDs a standards client's session (`sid`) receives its streams under.
    ReceiveMids {
        nick: String,
        sid: String,
    },
    /// An expiry; `reported`: a failure is logged and counted (`bridge`).
    Expiry {
        reported: bool,
    },
}

pub struct Room {
    jid: BareJid,
    /// `room@muc/focus`.
    focus_occupant: FullJid,
    /// Joined from the configuration: the focus stays when the room empties.
    configured: bool,
    /// Joined again after a lost connection, or for a conference an earlier focus left
    /// behind: left at once if nobody is there any more.
    rejoined: bool,
    /// The focus's own presence in the room has come: it is in.
    present: bool,
    /// Sessions an earlier focus left behind (their sids, by nick) for occupants not seen
    /// yet: each is terminated when its occupant is, before its new session is offered.
    left_behind: HashMap<String, Vec<String>>,
    /// The id of the last room configuration the focus submitted.
    configuration_id: String,
    /// Occupants other than the focus, by nick.
    participants: BTreeMap<String, Participant>,
    /// disco#info queries in flight, by IQ id.
    capability_queries: HashMap<String, CapabilityQuery>,
    sources: ConferenceSources,
    bridge: BridgeState,
    /// The room's conferences on further bridges, and the relays between them.
    cascade: Cascade,
    /// Participants moving to another bridge, and their returns held for the others.
    moves: Moves,
    /// Bridge requests in flight.
    requests: HashMap<RequestId, Pending>,
    next_request: u64,
    rng: StdRng,
    outputs: VecDeque<Output>,
    /// The focus has left the room, or lost it: only answers to requests in flight are taken.
    ended: bool,
    limits: RoomLimits,
}

impl Room {
    /// Joins `room` (the join presence and the room's configuration are the first outputs).
    /// `seed` seeds the ids the room mints. Fails only for a room JID that cannot take the
    /// focus's nick.
    pub fn join(
        room: BareJid,
        configured: bool,
        seed: u64,
        limits: RoomLimits,
    ) -> Result<Room, jid::Error> {
        let focus_occupant = room.with_resource_str(FOCUS_NICK)?;
        info!(%room, "joining");
        let mut rng = StdRng::seed_from_u64(seed);
        let sources = ConferenceSources::with_seed(rng.random());
        let mut joined = Room {
            jid: room,
            focus_occupant,
            configured,
            rejoined: false,
            present: false,
            left_behind: HashMap::new(),
            configuration_id: String::new(),
            participants: BTreeMap::new(),
            capability_queries: HashMap::new(),
            sources,
            bridge: BridgeState::default(),
            cascade: Cascade::default(),
            moves: Moves::default(),
            requests: HashMap::new(),
            next_request: 0,
            rng,
            outputs: VecDeque::new(),
            ended: false,
            limits,
        };
        joined.send_join();
        joined.metric(Metric::Rooms(1));
        Ok(joined)
    }

    pub fn jid(&self) -> &BareJid {
        &self.jid
    }

    /// The room was asked for again; `configured`: by the configuration, so the focus stays
    /// when it empties.
    pub fn asked_for(&mut self, configured: bool) {
        self.configured |= configured;
    }

    /// A stanza from the room or one of its occupants. `capabilities`: what is known of
    /// clients' features, shared by the focus's rooms.
    pub fn handle_stanza(
        &mut self,
        now: Instant,
        stanza: Stanza,
        capabilities: &mut CapabilityCache,
    ) {
        if self.ended {
            return;
        }
        match stanza {
            Stanza::Iq(iq) => self.on_iq(now, iq, capabilities),
            Stanza::Presence(presence) => self.on_presence(now, presence, capabilities),
            Stanza::Message(message) => self.on_message(message),
        }
        self.settle(now);
    }

    /// The bridge's answer to the request `id`. Answers for requests the room no longer needs
    /// (its participant left, the room was left) clean up after themselves: what the bridge
    /// made for them is expired.
    pub fn handle_bridge_answer(
        &mut self,
        now: Instant,
        id: RequestId,
        answer: Result<BridgeAnswer, BridgeError>,
    ) {
        let Some(pending) = self.requests.remove(&id) else {
            return;
        };
        match pending {
            Pending::CreateConference { conference_id } => {
                self.on_conference_answer(now, id, conference_id, answer);
            }
            Pending::CreateLeg { conference_id } => {
                self.on_leg_answer(now, id, conference_id, answer);
            }
            Pending::AllocateRelay { key, side } => {
                self.on_relay_allocated(now, key, side, answer);
            }
            Pending::UpdateRelay {
                key,
                side,
                with_transport,
            } => self.on_relay_updated(now, id, key, side, with_transport, answer),
            Pending::AllocateEndpoint {
                nick,
                conference_id,
                endpoint_id,
            } => self.on_endpoint_answer(now, id, nick, conference_id, endpoint_id, answer),
            Pending::Jingle(in_flight) => self.on_jingle_answer(now, id, in_flight, answer),
            Pending::ReceiveMids { nick, sid } => self.on_receive_mids_answer(&nick, &sid, answer),
            Pending::Expiry { reported } => {
                if let (true, Err(error)) = (reported, answer) {
                    warn!(room = %self.jid, %error, "expiring on the bridge failed");
                    self.metric(Metric::Error("bridge"));
                }
            }
        }
        self.settle(now);
    }

    /// The time has come for what [`Room::poll_timeout`] asked.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.bridge.retry_due(now) {
            self.retry_invitations(now);
        }
        self.release_moves_due(now);
        self.settle(now);
    }

    /// A new XMPP session after a lost connection: the server took the focus out of the room,
    /// and its sessions are gone with it. Expires what the bridge holds and joins again; the
    /// occupants still there get a `session-terminate` of their old session, then a new one
    /// (as after a restart of the focus).
    pub fn rejoin(&mut self, now: Instant) {
        if self.ended {
            return;
        }
        self.left_behind = self
            .participants
            .iter()
            .filter_map(|(nick, participant)| {
                let sid = participant.session.as_ref()?.sid().to_owned();
                Some((nick.clone(), vec![sid]))
            })
            .collect();
        self.forget_occupants(now, true);
        self.rejoined = true;
        self.present = false;
        self.send_join();
    }

    /// A conference found on a bridge under this room's name that the room did not make (an
    /// earlier focus's, before a restart), with its sessions: (nick, endpoint id), each
    /// endpoint's id being its session's sid. The conference is expired, and each of those
    /// occupants is sent a `session-terminate` of its old session before its new
    /// `session-initiate` (lib-jitsi-meet takes the pair as a move). The room's own conference
    /// is left alone.
    pub fn left_behind(&mut self, conference_id: String, sessions: Vec<(String, String)>) {
        if self.ended || self.holds_conference(&conference_id) {
            return;
        }
        info!(room = %self.jid, conference = %conference_id, sessions = sessions.len(), "expiring a conference an earlier focus left behind");
        self.expire(BridgeRequest::ExpireConference { conference_id }, true);
        if !self.present {
            self.rejoined = true;
        }
        for (nick, sid) in sessions {
            let present = self.participants.get(&nick).map(|participant| {
                let current = participant.session.as_ref().map(|s| s.sid().to_owned());
                (participant.occupant.clone(), current)
            });
            match present {
                Some((_, Some(current))) if current == sid => {}
                Some((occupant, _)) => self.terminate_left_behind(&occupant, sid),
                None if !self.present => self.left_behind.entry(nick).or_default().push(sid),
                None => {}
            }
        }
    }

    /// Ends a session an earlier focus left behind: its client closes it, and takes the new
    /// session that follows as a move.
    fn terminate_left_behind(&mut self, occupant: &FullJid, sid: String) {
        let mut terminate = Jingle::new(Action::SessionTerminate, sid);
        terminate.reason = Some(Reason::new(ReasonKind::Success).with_text("the focus restarted"));
        self.send_iq_set(occupant, terminate.to_element());
    }

    /// The focus is shutting down: leaves the room, and leaves its conference on the bridge,
    /// where media goes on, for the focus that starts next to take over (it ends the sessions
    /// and expires the conference, see [`Room::left_behind`]); a bridge expires what nobody
    /// takes over once its clients are gone.
    pub fn leave(&mut self, now: Instant) {
        if !self.ended {
            self.leave_room(now, true, false);
        }
    }

    /// The next thing to do, in order.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When the room next wants [`Room::handle_timeout`].
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.bridge.retry_at(), self.moves.deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The focus has left the room: it takes no more stanzas. Its executor still hands it the
    /// answers to the requests in flight.
    pub fn is_closed(&self) -> bool {
        self.ended
    }

    fn on_iq(&mut self, now: Instant, iq: Iq, capabilities: &mut CapabilityCache) {
        match iq {
            Iq::Set {
                from, id, payload, ..
            } => match from {
                Some(from) if payload.is("jingle", crate::ns::JINGLE) => {
                    self.on_jingle_iq(now, from, id, &payload);
                }
                _ => self.reply(
                    Reply { to: from, id },
                    Err(Refusal::ServiceUnavailable(format!(
                        "<{} xmlns='{}'> is not served here",
                        payload.name(),
                        payload.ns()
                    ))),
                ),
            },
            Iq::Get { .. } => {}
            Iq::Error {
                from, id, error, ..
            } => {
                if let Some(query) = self.take_capability_query(&id, from.as_ref()) {
                    // No answer is not a "no": invite with the default features, as Jicofo.
                    info!(occupant = %query.occupant, "no disco#info answer; inviting anyway");
                    self.invite_if_capable(now, &query.occupant, Some(Dialect::Jitsi));
                    return;
                }
                if id == self.configuration_id {
                    // A room someone else owns keeps its configuration.
                    info!(room = %self.jid, ?error, "the room's configuration was not changed");
                    return;
                }
                warn!(?from, ?error, "a request of the focus was refused");
                self.metric(Metric::Error("peer_refused"));
            }
            Iq::Result {
                from, id, payload, ..
            } => {
                if let Some(query) = self.take_capability_query(&id, from.as_ref()) {
                    // An empty answer says nothing: Jitsi's dialect, as without caps.
                    let dialect = match &payload {
                        Some(answer) => crate::capabilities::jingle_dialect(answer),
                        None => Some(Dialect::Jitsi),
                    };
                    capabilities.remember(query.node, dialect);
                    self.invite_if_capable(now, &query.occupant, dialect);
                }
            }
        }
    }

    fn send(&mut self, stanza: Stanza) {
        self.outputs.push_back(Output::Stanza(Box::new(stanza)));
    }

    fn metric(&mut self, metric: Metric) {
        self.outputs.push_back(Output::Metric(metric));
    }

    /// Asks the bridge for `request`; its answer is handled as `pending` says.
    fn request(&mut self, request: BridgeRequest, pending: Pending) -> RequestId {
        let id = RequestId(self.next_request);
        self.next_request += 1;
        self.requests.insert(id, pending);
        self.outputs.push_back(Output::Bridge { id, request });
        id
    }

    /// A random identifier (session ids, conference and endpoint ids, stanza ids).
    fn mint_id(&mut self) -> String {
        format!("{:016x}", self.rng.random::<u64>())
    }

    /// An IQ set to `to` under a fresh id.
    fn send_iq_set(&mut self, to: &FullJid, payload: minidom::Element) {
        let id = self.mint_id();
        self.send(stanzas::iq_set(Jid::from(to.clone()), id, payload));
    }

    /// Answers an IQ; a refusal is counted by its kind.
    fn reply(&mut self, reply: Reply, result: Result<(), Refusal>) {
        if let Err(refusal) = &result {
            self.metric(Metric::Error(refusal.kind()));
        }
        self.send(stanzas::answer(reply.to, reply.id, result.map(|()| None)));
    }
}
