//! Who is in the room: the occupants by nick (what their clients can do asked by disco#info
//! when their caps are new), the focus's own presence, and joining, leaving and rejoining the
//! room.

use rand::Rng;
use std::time::Instant;

use jid::{FullJid, Jid};
use minidom::Element;
use tokio_xmpp::parsers::iq::Iq;
use tokio_xmpp::parsers::presence::{Presence, Type as PresenceType};
use tokio_xmpp::Stanza;
use tracing::info;

use super::allocation::Invitation;
use super::sessions::{JingleQueue, RequestBudget, RestartLimit, Session};
use super::{Metric, Room, FOCUS_NICK};
use crate::capabilities::{self, CapabilityCache, Dialect};
use crate::jitsi;
use crate::sources::ConferenceSources;
use crate::stanzas;

/// An occupant other than the focus.
pub(super) struct Participant {
    pub(super) occupant: FullJid,
    /// Where its presence says it is (empty: it does not say).
    pub(super) region: String,
    /// The Jingle it speaks, from its caps (Jitsi's until they say otherwise).
    pub(super) dialect: Dialect,
    /// Where its bridge endpoint is (allocation.rs).
    pub(super) invitation: Invitation,
    /// The endpoint id of its failed `AllocateEndpoint`, asked for again at the next attempt
    /// (so that no endpoint is left behind on the bridge).
    pub(super) endpoint_attempt: Option<String>,
    pub(super) session: Option<Session>,
    pub(super) restarts: RestartLimit,
    /// What is left of its Jingle request rate (`RoomLimits::jingle_request_rate`).
    pub(super) requests: RequestBudget,
    pub(super) jingle: JingleQueue,
    /// The id of an XEP-0353 `<propose>` it sent before the focus had offered it a session
    /// (its caps not answered yet, its endpoint not allocated): answered `<proceed>` right
    /// behind the offer if it is a standards client (`Room::on_message`).
    pub(super) rang: Option<String>,
}

/// An occupant whose caps the focus asked about (disco#info) before inviting it.
pub(super) struct CapabilityQuery {
    pub(super) occupant: FullJid,
    pub(super) node: String,
}

/// The owner's room configuration (XEP-0045 §10.2): occupants' real JIDs visible to anyone, so
/// that clients can tell the focus's occupant by its real JID (lib-jitsi-meet does) whatever
/// the server's default. Submitted right behind the join presence: the server handles both in
/// order, so a room the focus creates is configured (and, where rooms start locked, unlocked)
/// before anyone the focus answers can join it.
fn room_configuration(room: Jid, id: String) -> Stanza {
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
        to: Some(room),
        id,
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

impl Room {
    /// The join presence and, right behind it, the room's configuration.
    pub(super) fn send_join(&mut self) {
        self.configuration_id = self.mint_id();
        self.send(join_presence(&self.focus_occupant));
        self.send(room_configuration(
            Jid::from(self.jid.clone()),
            self.configuration_id.clone(),
        ));
    }

    /// The focus's presence in the room after joining: its conference properties, and whether
    /// a bridge is available.
    pub(super) fn send_focus_presence(&mut self) {
        let mut payloads = vec![jitsi::conference_properties()];
        if self.bridge.down {
            payloads.push(jitsi::bridge_not_available());
        }
        self.send(Stanza::Presence(
            Presence::available()
                .with_to(self.focus_occupant.clone())
                .with_payloads(payloads),
        ));
    }

    pub(super) fn on_presence(
        &mut self,
        now: Instant,
        presence: Presence,
        capabilities: &CapabilityCache,
    ) {
        let Some(Ok(from)) = presence.from.clone().map(Jid::try_into_full) else {
            return;
        };
        if from.to_bare() != self.jid {
            return;
        }
        let nick = from.resource().as_str().to_owned();
        if nick == FOCUS_NICK {
            self.on_own_presence(now, &presence);
            return;
        }
        match presence.type_ {
            PresenceType::None if !self.participants.contains_key(&nick) => {
                let caps = capabilities::caps_node(&presence.payloads);
                let region = jitsi::participant_region(&presence.payloads).unwrap_or_default();
                self.participant_joined(now, from, caps, region, capabilities);
            }
            PresenceType::Unavailable => self.participant_left(now, &nick),
            _ => {}
        }
    }

    fn on_own_presence(&mut self, now: Instant, presence: &Presence) {
        match presence.type_ {
            PresenceType::Error => {
                tracing::warn!(room = %self.jid, payloads = ?presence.payloads, "the room refused the focus");
                self.metric(Metric::Error("room_join"));
                self.leave_room(now, false, true);
            }
            PresenceType::Unavailable => {
                info!(room = %self.jid, "the focus is no longer in the room");
                self.leave_room(now, false, true);
            }
            PresenceType::None => {
                // The room sends its occupants' presences before the focus's own: whoever an
                // earlier focus's session was for and is not here has left.
                self.present = true;
                self.left_behind.clear();
                let abandoned = std::mem::take(&mut self.rejoined)
                    && !self.configured
                    && self.participants.is_empty();
                if abandoned {
                    info!(room = %self.jid, "nobody is left after the reconnection; leaving");
                    self.leave_room(now, true, true);
                }
            }
            _ => {}
        }
    }

    /// A new occupant: invited at once, or once its caps say it speaks Jingle.
    fn participant_joined(
        &mut self,
        now: Instant,
        occupant: FullJid,
        caps: Option<String>,
        region: String,
        capabilities: &CapabilityCache,
    ) {
        let nick = occupant.resource().as_str().to_owned();
        info!(%occupant, region, "joined");
        self.participants.insert(
            nick.clone(),
            Participant {
                occupant: occupant.clone(),
                region,
                dialect: Dialect::Jitsi,
                invitation: Invitation::None,
                endpoint_attempt: None,
                session: None,
                restarts: RestartLimit::default(),
                requests: RequestBudget::default(),
                jingle: JingleQueue::default(),
                rang: None,
            },
        );
        self.metric(Metric::Participants(1));
        for sid in self.left_behind.remove(&nick).unwrap_or_default() {
            self.terminate_left_behind(&occupant, sid);
        }
        let Some(node) = caps else {
            // No caps: assume a Jingle client (Jicofo's default features).
            self.invite(now, &nick);
            return;
        };
        match capabilities.verdict(&node) {
            Some(dialect) => self.invite_if_capable(now, &occupant, dialect),
            None => {
                let id = self.mint_id();
                self.send(stanzas::iq_get(
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
    pub(super) fn take_capability_query(
        &mut self,
        id: &str,
        from: Option<&Jid>,
    ) -> Option<CapabilityQuery> {
        let query = self.capability_queries.get(id)?;
        if from.map(|from| from.to_string()) != Some(query.occupant.to_string()) {
            return None;
        }
        self.capability_queries.remove(id)
    }

    /// Invites `occupant` in `dialect`, or not at all (`None`: it takes no Jingle session).
    pub(super) fn invite_if_capable(
        &mut self,
        now: Instant,
        occupant: &FullJid,
        dialect: Option<Dialect>,
    ) {
        let nick = occupant.resource().as_str();
        let Some(participant) = self.participants.get_mut(nick).filter(|p| {
            p.occupant == *occupant && p.session.is_none() && p.invitation == Invitation::None
        }) else {
            return;
        };
        match dialect {
            Some(dialect) => {
                info!(%occupant, ?dialect, "inviting");
                participant.dialect = dialect;
                self.invite(now, nick);
            }
            None => {
                info!(%occupant, "does not advertise Jingle RTP over ICE-UDP with DTLS; not invited");
                self.metric(Metric::Error("not_jingle_capable"));
            }
        }
    }

    fn participant_left(&mut self, now: Instant, nick: &str) {
        let Some(mut participant) = self.participants.remove(nick) else {
            return;
        };
        info!(occupant = %participant.occupant, "left");
        self.metric(Metric::Participants(-1));
        self.capability_queries
            .retain(|_, query| query.occupant != participant.occupant);
        if let Some(session) = participant.session.take() {
            self.end_session(&participant.occupant, session);
        }
        self.moved_one_left(nick);
        if let Some(endpoint_id) = participant.endpoint_attempt.take() {
            // A failed allocation the bridge may have made after all.
            self.expire_endpoint_attempt(endpoint_id);
        }
        // Its Jingle requests waiting behind one with the bridge: no session to apply them to.
        self.answer_orphaned(now, participant.jingle);
        if !self.participants.is_empty() {
            return;
        }
        if self.configured {
            self.expire_conference();
        } else {
            self.leave_room(now, true, true);
        }
    }

    /// Forgets the room's occupants and, with `expire`, expires what the bridge holds for the
    /// room.
    pub(super) fn forget_occupants(&mut self, now: Instant, expire: bool) {
        let participants = std::mem::take(&mut self.participants);
        let mut orphaned = Vec::new();
        for participant in participants.into_values() {
            self.metric(Metric::Participants(-1));
            if let Some(session) = &participant.session {
                self.metric(Metric::Sessions {
                    state: session.state.label(),
                    change: -1,
                });
            }
            orphaned.push(participant.jingle);
        }
        self.sources = ConferenceSources::with_seed(self.rng.random());
        self.moves = Default::default();
        self.capability_queries.clear();
        if expire {
            self.forget_bridge();
        }
        for queue in orphaned {
            self.answer_orphaned(now, queue);
        }
    }

    /// Leaves the room (with an unavailable presence, unless the room is gone for the focus
    /// already), with `expire` after expiring its endpoints and conference.
    pub(super) fn leave_room(&mut self, now: Instant, send_presence: bool, expire: bool) {
        info!(room = %self.jid, expire, "leaving");
        self.forget_occupants(now, expire);
        self.metric(Metric::Rooms(-1));
        if send_presence {
            let leave = Presence::unavailable().with_to(self.focus_occupant.clone());
            self.send(Stanza::Presence(leave));
        }
        self.ended = true;
    }
}
