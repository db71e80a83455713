//! The focus across its rooms: joins rooms when asked (conference requests, invitations, the
//! configuration), answers what is not about one room (ping, disco#info), and hands every
//! stanza from a room or its occupants to that room's task (`room_task.rs`).
//!
//! Routing is by the sender's bare JID: MUC delivers an occupant's presences and IQs from
//! `room@muc/nick`. The rooms' tasks run side by side, so one room waiting on the bridge does
//! not hold up the others or the focus's answers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use jid::{BareJid, Jid};
use minidom::Element;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_xmpp::parsers::iq::Iq;
use tokio_xmpp::parsers::message::Message;
use tokio_xmpp::Stanza;
use tracing::{info, warn};
use tutti_focus::inbound::Refused;
use tutti_focus::jingle::{Action, Jingle};
use tutti_focus::stanzas::{self, Refusal};

use super::config::Settings;
use super::metrics::Metrics;
use super::pool::{Bridges, Found};
use super::room_task::{
    send_or_count, Outbox, RoomClosed, RoomInput, RoomTask, Services, OUTBOX_STANZAS,
};

/// Stanzas that may wait for a room's task (it handles each at once; only a task starved of
/// CPU falls behind). Beyond that a request to the room is refused with `resource-constraint`
/// and anything else for it is dropped and counted (`errors_total{kind="room_backlog"}`).
pub const ROOM_BACKLOG: usize = 256;
/// Places in a room's queue kept for the focus's own inputs (join, rejoin, leave, what a
/// bridge holds), which are few and must not be refused.
const CONTROL_RESERVE: usize = 32;

/// A room the focus is in: its task and the way to it.
struct RoomHandle {
    inputs: mpsc::Sender<RoomInput>,
    task: JoinHandle<()>,
    /// Asked for after its task stopped taking inputs: joined again once the task has ended
    /// (with whether it is configured).
    join_again: Option<bool>,
}

/// What the rooms produce for the signalling task: stanzas to send, and rooms whose task ended.
pub struct FocusOutput {
    pub stanzas: mpsc::Receiver<Stanza>,
    pub closed_rooms: mpsc::UnboundedReceiver<RoomClosed>,
}

pub struct Focus {
    settings: Settings,
    services: Services,
    rooms: HashMap<BareJid, RoomHandle>,
    outbox: Outbox,
    closed_rooms: mpsc::UnboundedSender<RoomClosed>,
}

impl Focus {
    pub fn new(
        settings: Settings,
        bridges: Bridges,
        metrics: Arc<Metrics>,
    ) -> (Focus, FocusOutput) {
        let (outbox, stanzas) = mpsc::channel(OUTBOX_STANZAS);
        let (closed_rooms, closed_receiver) = mpsc::unbounded_channel();
        let room_limits = settings.room_limits;
        let focus = Focus {
            settings,
            services: Services {
                bridges,
                metrics,
                capabilities: Arc::new(Mutex::default()),
                room_limits,
            },
            rooms: HashMap::new(),
            outbox,
            closed_rooms,
        };
        let output = FocusOutput {
            stanzas,
            closed_rooms: closed_receiver,
        };
        (focus, output)
    }

    /// Joins the configured rooms (after every login).
    pub fn on_online(&mut self) {
        for room in self.settings.rooms.clone() {
            self.join_room(room, true);
        }
    }

    pub fn on_stanza(&mut self, stanza: Stanza) {
        match stanza {
            Stanza::Iq(iq) => self.on_iq(iq),
            Stanza::Presence(presence) => {
                if let Some(room) = presence.from.as_ref().map(Jid::to_bare) {
                    // A room the focus is leaving: what its occupants do no longer matters.
                    if let Routed::Busy(_) = self.to_room(&room, Stanza::Presence(presence)) {
                        self.services.metrics.error("room_backlog");
                    }
                }
            }
            Stanza::Message(message) => self.on_message(message),
        }
    }

    /// Conferences on a bridge heard for the first time. Those named after a room on the
    /// focus's MUC service (an earlier focus's, before a restart) go to their room, which the
    /// focus joins if it is not in it: the room expires them and gives their participants new
    /// sessions. Others are left alone.
    pub fn on_found(&mut self, found: Found) {
        for conference in found.conferences {
            let room = match self.room_for_request(&conference.name) {
                Ok(room) => room,
                Err(refusal) => {
                    info!(bridge = %found.bridge, conference = %conference.conference_id, name = %conference.name, ?refusal, "a conference not of this focus's rooms: left alone");
                    continue;
                }
            };
            let sessions = conference
                .endpoints
                .into_iter()
                .map(|endpoint| (endpoint.participant_id, endpoint.endpoint_id))
                .collect();
            self.join_room(room.clone(), false);
            if let Some(handle) = self.rooms.get(&room) {
                control(
                    handle,
                    &room,
                    RoomInput::LeftBehind {
                        bridge: found.bridge.clone(),
                        conference_id: conference.conference_id,
                        sessions,
                    },
                );
            }
        }
    }

    /// A room's task has ended: forget the room, or join it again if it was asked for meanwhile.
    pub fn on_room_closed(&mut self, closed: RoomClosed) {
        let Some(handle) = self.rooms.remove(&closed.room) else {
            return;
        };
        let join_again = match (handle.join_again, closed.join_again) {
            (None, None) => return,
            (a, b) => a.unwrap_or(false) | b.unwrap_or(false),
        };
        self.join_room(closed.room, join_again);
    }

    /// A new XMPP session after a lost connection: the server took the focus out of every
    /// room. Each room expires what the bridge holds and joins again.
    pub fn on_reconnected(&mut self) {
        for (room, handle) in &self.rooms {
            control(handle, room, RoomInput::Rejoin);
        }
        self.on_online();
    }

    /// Leaves every room (their conferences stay on the bridges, for the next focus to take
    /// over); returns once every room's task is done.
    pub async fn shutdown(&mut self) {
        let rooms: Vec<(BareJid, RoomHandle)> = self.rooms.drain().collect();
        for (room, handle) in &rooms {
            control(handle, room, RoomInput::Leave);
        }
        for (_, room) in rooms {
            if let Err(error) = room.task.await {
                warn!(%error, "a room's task failed");
            }
        }
    }

    fn join_room(&mut self, room: BareJid, configured: bool) {
        if let Some(handle) = self.rooms.get_mut(&room) {
            if !control(handle, &room, RoomInput::Join { configured }) {
                handle.join_again = Some(handle.join_again.unwrap_or(false) | configured);
            }
            return;
        }
        let Some(room_task) = RoomTask::join(
            room.clone(),
            configured,
            self.services.clone(),
            self.outbox.clone(),
        ) else {
            return;
        };
        let (inputs, receiver) = mpsc::channel(ROOM_BACKLOG + CONTROL_RESERVE);
        let task = tokio::spawn(room_task.run(receiver, self.closed_rooms.clone()));
        self.rooms.insert(
            room,
            RoomHandle {
                inputs,
                task,
                join_again: None,
            },
        );
    }

    /// Hands `stanza` to `room`'s task.
    fn to_room(&self, room: &BareJid, stanza: Stanza) -> Routed {
        let Some(handle) = self.rooms.get(room) else {
            return Routed::NotThere(stanza);
        };
        if handle.inputs.capacity() <= CONTROL_RESERVE {
            return Routed::Busy(stanza);
        }
        match handle.inputs.try_send(RoomInput::Stanza(Box::new(stanza))) {
            Ok(()) => Routed::Delivered,
            Err(mpsc::error::TrySendError::Closed(RoomInput::Stanza(stanza))) => {
                Routed::NotThere(*stanza)
            }
            Err(mpsc::error::TrySendError::Full(RoomInput::Stanza(stanza))) => {
                Routed::Busy(*stanza)
            }
            Err(_) => Routed::Delivered,
        }
    }

    fn on_message(&mut self, message: Message) {
        // XEP-0353: a participant ringing the focus's occupant JID; its room answers.
        if message
            .payloads
            .iter()
            .any(|p| p.is("propose", tutti_focus::ns::JINGLE_MESSAGE))
        {
            if let Some(room) = message.from.as_ref().map(Jid::to_bare) {
                if let Routed::Busy(_) = self.to_room(&room, Stanza::Message(message)) {
                    self.services.metrics.error("room_backlog");
                }
            }
            return;
        }
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
                self.services.metrics.error(refusal.kind());
            }
            None => self.services.metrics.error("bad_request"),
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

    fn on_iq(&mut self, iq: Iq) {
        // A request its connection refused to read (crate::inbound): answered here, whoever
        // it is from, and no room is held up by it.
        if let Iq::Get {
            from, id, payload, ..
        }
        | Iq::Set {
            from, id, payload, ..
        } = &iq
        {
            if let Some(refused) = Refused::of_payload(payload) {
                self.answer(
                    from.clone(),
                    id.clone(),
                    Err(Refusal::BadRequest(refused.describe())),
                );
                return;
            }
        }
        let sender_room = match &iq {
            Iq::Get { .. } => None,
            Iq::Set { from, .. } | Iq::Result { from, .. } | Iq::Error { from, .. } => {
                from.as_ref().map(Jid::to_bare)
            }
        };
        // Jingle from an occupant, and answers to the room's own requests, are the room's.
        let iq = match sender_room {
            Some(room) => match self.to_room(&room, Stanza::Iq(iq)) {
                Routed::NotThere(Stanza::Iq(iq)) => iq,
                Routed::Busy(Stanza::Iq(Iq::Set { from, id, .. } | Iq::Get { from, id, .. })) => {
                    let busy =
                        format!("the room {room} is busy: {ROOM_BACKLOG} stanzas wait for it");
                    self.answer(from, id, Err(Refusal::ResourceConstraint(busy)));
                    return;
                }
                Routed::Busy(_) => {
                    self.services.metrics.error("room_backlog");
                    return;
                }
                _ => return,
            },
            None => iq,
        };
        match iq {
            Iq::Set {
                from, id, payload, ..
            } => {
                let result = self.on_iq_set(&payload);
                self.answer(from, id, result);
            }
            Iq::Get {
                from, id, payload, ..
            } => {
                let result = if payload.is("ping", stanzas::PING) {
                    Ok(None)
                } else if payload.is("query", stanzas::DISCO_INFO) {
                    Ok(Some(disco_info()))
                } else {
                    Err(not_served(&payload))
                };
                self.answer(from, id, result);
            }
            Iq::Error { from, error, .. } => {
                warn!(?from, ?error, "a request of the focus was refused");
                self.services.metrics.error("peer_refused");
            }
            Iq::Result { .. } => {}
        }
    }

    /// An IQ set that is not from an occupant of one of the focus's rooms.
    fn on_iq_set(&mut self, payload: &Element) -> Result<Option<Element>, Refusal> {
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
            let jingle =
                Jingle::from_element(payload).map_err(|e| Refusal::BadRequest(e.to_string()))?;
            return Err(if jingle.action == Action::SessionInitiate {
                Refusal::ServiceUnavailable(
                    "the focus initiates the sessions; it accepts none".to_owned(),
                )
            } else {
                Refusal::UnknownSession
            });
        }
        Err(not_served(payload))
    }

    /// Answers an IQ; a refusal is counted by its kind.
    fn answer(&self, to: Option<Jid>, id: String, result: Result<Option<Element>, Refusal>) {
        if let Err(refusal) = &result {
            self.services.metrics.error(refusal.kind());
        }
        send_or_count(
            &self.outbox,
            &self.services.metrics,
            stanzas::answer(to, id, result),
        );
    }
}

/// What became of a stanza for a room.
enum Routed {
    Delivered,
    /// The focus is not (or no longer) in the room: the stanza is given back.
    NotThere(Stanza),
    /// The room's queue is full: the stanza is given back.
    Busy(Stanza),
}

/// Hands one of the focus's own inputs to a room's task; false when the task has ended. They
/// have places kept for them ([`CONTROL_RESERVE`]); should those be full, the input is lost
/// and said so.
fn control(handle: &RoomHandle, room: &BareJid, input: RoomInput) -> bool {
    match handle.inputs.try_send(input) {
        Ok(()) => true,
        Err(mpsc::error::TrySendError::Closed(_)) => false,
        Err(mpsc::error::TrySendError::Full(_)) => {
            warn!(%room, "the room's queue is full: an input of the focus's own was lost");
            true
        }
    }
}

fn not_served(payload: &Element) -> Refusal {
    Refusal::ServiceUnavailable(format!(
        "<{} xmlns='{}'> is not served here",
        payload.name(),
        payload.ns()
    ))
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
