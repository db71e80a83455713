//! The room's conference on the bridge and each participant's endpoint in it: created on the
//! first invitation, asked for again under the same ids after a failure (the bridge may have
//! carried out a request whose answer was lost; `CreateConference` and `AllocateEndpoint` are
//! idempotent), with back-off, and said in the focus's presence (`bridgeNotAvailable`) while
//! the bridge fails.

use std::time::{Duration, Instant};

use jid::FullJid;
use tracing::{info, warn};
use tutti_proto::bridge_v1 as pb;

use super::cascade::Cascade;
use super::cascade::Destination;
use super::requests::{self, BridgeAnswer, BridgeError, BridgeRequest, RequestId};
use super::sessions::{Session, SessionDialect};
use super::{Metric, Pending, Room};
use crate::capabilities::Dialect;
use crate::jingle::{Action, Jingle, Reason, ReasonKind};
use crate::offer::standard::StandardSession;
use crate::offer::{self, SessionInitiate};
use crate::sources::ReceiverView;

/// How soon a room whose bridge failed tries it again, doubling up to `BRIDGE_RETRY_MAX`.
const BRIDGE_RETRY_FIRST: Duration = Duration::from_secs(1);
const BRIDGE_RETRY_MAX: Duration = Duration::from_secs(30);

/// Where a participant without a session is on its way to one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Invitation {
    /// Not invited (it has a session, or is not to be invited).
    None,
    /// Invited at `started`; waits for the room's `CreateConference`.
    AwaitingConference { started: Instant },
    /// Its `AllocateEndpoint` is in flight.
    Allocating {
        request: RequestId,
        started: Instant,
    },
    /// Its invitation failed on the bridge: invited again at the room's next attempt.
    AwaitingBridge,
    /// Invited at `started`; waits for the room's conference on another bridge that the
    /// `CreateConference` `request` makes (`cascade.rs`).
    AwaitingLeg {
        request: RequestId,
        started: Instant,
    },
}

impl Invitation {
    fn is_waiting(self) -> bool {
        !matches!(self, Invitation::None)
    }
}

/// The room's conference on the bridge.
#[derive(Debug, Default)]
enum Conference {
    #[default]
    None,
    Creating(RequestId),
    Ready(String),
}

/// The room's side of the bridge.
#[derive(Debug, Default)]
pub(super) struct BridgeState {
    conference: Conference,
    /// The id of a `CreateConference` that failed: the bridge may have made it all the same (an
    /// answer lost to the time-out), so the next attempt asks for the same id.
    attempt: Option<String>,
    /// The focus's presence in the room says that no bridge is available.
    pub(super) down: bool,
    /// When to try the bridge again for the participants awaiting it.
    retry_at: Option<Instant>,
    /// The wait before the last attempt: the next one waits twice as long.
    retry_delay: Option<Duration>,
}

impl BridgeState {
    /// The room's first conference is made.
    pub(super) fn is_ready(&self) -> bool {
        matches!(self.conference, Conference::Ready(_))
    }

    /// The room's conference `conference_id`, on another bridge, becomes its first.
    pub(super) fn promote(&mut self, conference_id: String) {
        self.conference = Conference::Ready(conference_id);
        self.attempt = None;
    }

    pub(super) fn retry_at(&self) -> Option<Instant> {
        self.retry_at
    }

    /// Whether the next attempt is due at `now` (it is then no longer scheduled).
    pub(super) fn retry_due(&mut self, now: Instant) -> bool {
        let due = self.retry_at.is_some_and(|at| at <= now);
        if due {
            self.retry_at = None;
        }
        due
    }

    /// Schedules an attempt, unless one is: 1 s after the first failure, then twice as long as
    /// before, up to `BRIDGE_RETRY_MAX`.
    fn schedule_retry(&mut self, now: Instant) {
        if self.retry_at.is_some() {
            return;
        }
        let delay = self
            .retry_delay
            .map_or(BRIDGE_RETRY_FIRST, |last| (last * 2).min(BRIDGE_RETRY_MAX));
        self.retry_delay = Some(delay);
        self.retry_at = Some(now + delay);
    }
}

impl Room {
    /// Gives a participant without a session a bridge endpoint (and the room its conference,
    /// the first time); its session-initiate goes out once the bridge has answered.
    pub(super) fn invite(&mut self, now: Instant, nick: &str) {
        self.invite_to(now, nick, true);
    }

    /// As [`Room::invite`]; `spread`: the room may take another bridge for it (cascading),
    /// not when it just could not.
    pub(super) fn invite_to(&mut self, now: Instant, nick: &str, spread: bool) {
        if !self.participants.contains_key(nick) {
            return;
        }
        if let Conference::Ready(primary) = &self.bridge.conference {
            let primary = primary.clone();
            let request = match self.destination(nick, &primary, spread) {
                Destination::Ready(conference_id) => {
                    self.allocate(nick, conference_id, now);
                    return;
                }
                Destination::Awaiting(request) => request,
                Destination::NewLeg { region, strict } => self.create_leg(now, region, strict),
            };
            if let Some(participant) = self.participants.get_mut(nick) {
                participant.invitation = Invitation::AwaitingLeg {
                    request,
                    started: now,
                };
            }
            return;
        }
        if let Some(participant) = self.participants.get_mut(nick) {
            participant.invitation = Invitation::AwaitingConference { started: now };
        }
        if matches!(self.bridge.conference, Conference::None) {
            let conference_id = match self.bridge.attempt.clone() {
                Some(id) => id,
                None => {
                    let id = self.mint_id();
                    self.bridge.attempt = Some(id.clone());
                    id
                }
            };
            let region = self
                .participants
                .get(nick)
                .map(|p| p.region.clone())
                .unwrap_or_default();
            let request = self.request(
                BridgeRequest::CreateConference {
                    conference_id: conference_id.clone(),
                    name: self.jid.to_string(),
                    region,
                    avoid: Vec::new(),
                    strict_region: false,
                },
                Pending::CreateConference {
                    conference_id: conference_id.clone(),
                },
            );
            self.bridge.conference = Conference::Creating(request);
        }
    }

    pub(super) fn allocate(&mut self, nick: &str, conference_id: String, started: Instant) {
        let Some((attempt, dialect)) = self
            .participants
            .get_mut(nick)
            .map(|participant| (participant.endpoint_attempt.take(), participant.dialect))
        else {
            return;
        };
        let endpoint_id = attempt.unwrap_or_else(|| self.mint_id());
        let request = self.request(
            BridgeRequest::AllocateEndpoint {
                conference_id: conference_id.clone(),
                endpoint_id: endpoint_id.clone(),
                participant_id: nick.to_owned(),
                // A standards client places what it receives by MID: it gets the streams it
                // accepted, each once it has (`Room::sync_receive_mids`).
                receives_by_mid: dialect == Dialect::Standard,
            },
            Pending::AllocateEndpoint {
                nick: nick.to_owned(),
                conference_id,
                endpoint_id,
            },
        );
        if let Some(participant) = self.participants.get_mut(nick) {
            participant.invitation = Invitation::Allocating { request, started };
        }
    }

    pub(super) fn on_conference_answer(
        &mut self,
        now: Instant,
        id: RequestId,
        conference_id: String,
        answer: Result<BridgeAnswer, BridgeError>,
    ) {
        let current =
            matches!(&self.bridge.conference, Conference::Creating(request) if *request == id);
        if !current {
            // The room forgot it meanwhile (left, or lost the server).
            if answer.is_ok() {
                self.expire(BridgeRequest::ExpireConference { conference_id }, false);
            }
            return;
        }
        let waiting: Vec<(String, Instant)> = self
            .participants
            .iter()
            .filter_map(|(nick, participant)| match participant.invitation {
                Invitation::AwaitingConference { started } => Some((nick.clone(), started)),
                _ => None,
            })
            .collect();
        match answer {
            Ok(_) if waiting.is_empty() => {
                // Everyone it was for has left.
                self.bridge.conference = Conference::None;
                self.bridge.attempt = None;
                self.expire(BridgeRequest::ExpireConference { conference_id }, false);
            }
            Ok(_) => {
                self.bridge.attempt = None;
                self.bridge.conference = Conference::Ready(conference_id.clone());
                for (nick, started) in waiting {
                    self.allocate(&nick, conference_id.clone(), started);
                }
            }
            Err(error) => {
                self.bridge.conference = Conference::None;
                for (nick, _) in waiting {
                    self.allocation_failed(now, &nick, &error.to_string());
                }
            }
        }
    }

    pub(super) fn on_endpoint_answer(
        &mut self,
        now: Instant,
        id: RequestId,
        nick: String,
        conference_id: String,
        endpoint_id: String,
        answer: Result<BridgeAnswer, BridgeError>,
    ) {
        let started = match self.participants.get(&nick).map(|p| p.invitation) {
            Some(Invitation::Allocating { request, started }) if request == id => started,
            _ => {
                // The participant left meanwhile.
                if answer.is_ok() {
                    self.expire(
                        BridgeRequest::ExpireEndpoint {
                            conference_id,
                            endpoint_id,
                        },
                        false,
                    );
                }
                return;
            }
        };
        match requests::allocated(answer) {
            Ok(transport) => {
                self.offer_session(now, &nick, conference_id, endpoint_id, &transport, started);
            }
            Err(error) => {
                if let Some(participant) = self.participants.get_mut(&nick) {
                    participant.endpoint_attempt = Some(endpoint_id);
                }
                self.allocation_failed(now, &nick, &error.to_string());
            }
        }
    }

    /// The session-initiate for the participant's new endpoint.
    fn offer_session(
        &mut self,
        now: Instant,
        nick: &str,
        conference_id: String,
        endpoint_id: String,
        transport: &pb::Transport,
        started: Instant,
    ) {
        let Some((occupant, dialect)) = self
            .participants
            .get(nick)
            .map(|p| (p.occupant.clone(), p.dialect))
        else {
            return;
        };
        // The endpoint's id is the session's: a focus that restarts finds the endpoints of
        // the sessions it is to end on the bridge.
        let sid = endpoint_id.clone();
        let initiator = self.focus_occupant.to_string();
        let responder = occupant.to_string();
        let views = self.sources.receiver_views_except(&responder);
        let offer = SessionInitiate {
            sid: &sid,
            initiator: &initiator,
            responder: &responder,
            bridge_transport: transport,
            sources: &views,
            bridge_session_id: Some(&endpoint_id),
        };
        let offered = match dialect {
            Dialect::Jitsi => {
                offer::session_initiate(&offer).map(|jingle| (SessionDialect::Jitsi, jingle))
            }
            Dialect::Standard => StandardSession::initiate(&offer)
                .map(|(standard, jingle)| (SessionDialect::Standard(Box::new(standard)), jingle)),
        };
        let (session_dialect, jingle) = match offered {
            Ok(offered) => offered,
            Err(error) => {
                self.expire(
                    BridgeRequest::ExpireEndpoint {
                        conference_id,
                        endpoint_id,
                    },
                    false,
                );
                self.allocation_failed(now, nick, &format!("the bridge's transport: {error}"));
                return;
            }
        };
        if let Some(participant) = self.participants.get_mut(nick) {
            participant.invitation = Invitation::None;
            participant.session = Some(Session::offered(
                sid,
                conference_id,
                endpoint_id,
                session_dialect,
            ));
        }
        self.metric(Metric::Sessions {
            state: "pending",
            change: 1,
        });
        self.send_iq_set(&occupant, jingle.to_element());
        self.proceed_if_rung(nick);
        self.metric(Metric::Allocation(now.saturating_duration_since(started)));
        self.bridge_back_if_done();
    }

    /// The bridge could not give the participant an endpoint. Before a session-initiate there
    /// is no session to terminate (a session-terminate for a sid the client never saw is
    /// refused as unknown-session), so the room says it in the focus's presence, as Jicofo
    /// does, and tries the bridge again for the participant with back-off.
    pub(super) fn allocation_failed(&mut self, now: Instant, nick: &str, cause: &str) {
        warn!(room = %self.jid, nick, cause, "allocation failed");
        self.metric(Metric::Error("allocation"));
        if let Some(participant) = self.participants.get_mut(nick) {
            participant.invitation = Invitation::AwaitingBridge;
        }
        if !self.bridge.down {
            self.bridge.down = true;
            self.send_focus_presence();
        }
        self.bridge.schedule_retry(now);
    }

    /// Invites the participants awaiting the bridge again.
    pub(super) fn retry_invitations(&mut self, now: Instant) {
        if self.participants.values().all(|p| p.session.is_none()) {
            // Nobody holds a session in the room's conference: the next invitation creates it
            // again under the same id, which changes nothing on a bridge that still has it and
            // makes it anew on one that restarted and lost it.
            if let Conference::Ready(id) = std::mem::take(&mut self.bridge.conference) {
                self.bridge.attempt = Some(id);
            }
        }
        let waiting: Vec<String> = self
            .participants
            .iter()
            .filter(|(_, participant)| participant.invitation == Invitation::AwaitingBridge)
            .map(|(nick, _)| nick.clone())
            .collect();
        for nick in waiting {
            self.invite(now, &nick);
        }
        self.bridge_back_if_done();
    }

    /// Once nobody waits for the bridge any more, the focus's presence says it is back.
    fn bridge_back_if_done(&mut self) {
        let waiting = self
            .participants
            .values()
            .any(|p| p.invitation.is_waiting());
        if !self.bridge.down || self.bridge.retry_at.is_some() || waiting {
            return;
        }
        info!(room = %self.jid, "the bridge is available again");
        self.bridge.down = false;
        self.bridge.retry_delay = None;
        self.send_focus_presence();
    }

    /// The room's conference on the bridge, made or being made (the id its requests carry).
    pub fn conference_id(&self) -> Option<&str> {
        match &self.bridge.conference {
            Conference::Ready(id) => Some(id),
            Conference::Creating(_) | Conference::None => self.bridge.attempt.as_deref(),
        }
    }

    /// The bridge of the room's conference has failed (and another can take it): every
    /// participant on it is re-invited at once on a new conference, as lib-jitsi-meet expects a
    /// move — a `session-terminate` of its session, then a new `session-initiate`. Nothing is
    /// asked of the failed bridge: what it holds is its executor's to expire if it comes back.
    pub fn bridge_failed(&mut self, now: Instant) {
        if self.ended || self.conference_id().is_none() {
            return;
        }
        info!(room = %self.jid, "the conference's bridge failed: moving every participant");
        self.bridge.conference = Conference::None;
        self.bridge.attempt = None;
        self.forget_legs(true);
        let mut moving = Vec::new();
        let mut orphaned = Vec::new();
        for (nick, participant) in &mut self.participants {
            participant.endpoint_attempt = None;
            let session = participant.session.take();
            if session.is_none() && !participant.invitation.is_waiting() {
                continue;
            }
            participant.invitation = Invitation::None;
            // Its request with the failed bridge is answered unknown-session when that answer
            // comes, those behind it now.
            orphaned.push(std::mem::take(&mut participant.jingle));
            moving.push((nick.clone(), participant.occupant.clone(), session));
        }
        // Their sources reach each other again in one update each, once all are back.
        self.moving(moving.iter().map(|(nick, ..)| nick));
        for (_, occupant, session) in &moving {
            if let Some(session) = session {
                // Nobody keeps a session to tell: the sources are only forgotten.
                self.end_for_move(occupant, session);
            }
        }
        for queue in orphaned {
            self.answer_orphaned(now, queue);
        }
        for (nick, _, _) in moving {
            self.invite(now, &nick);
        }
    }

    /// Ends `occupant`'s `session` because it moves to another bridge (a `session-terminate`
    /// with the reason, the session no longer counted) and forgets its sources: what it had, for
    /// those who keep their sessions to be told.
    pub(super) fn end_for_move(&mut self, occupant: &FullJid, session: &Session) -> ReceiverView {
        self.metric(Metric::Sessions {
            state: session.state.label(),
            change: -1,
        });
        let mut terminate = Jingle::new(Action::SessionTerminate, session.sid().to_owned());
        terminate.reason =
            Some(Reason::new(ReasonKind::Success).with_text("moving to another bridge"));
        self.send_iq_set(occupant, terminate.to_element());
        self.sources.remove_participant(occupant.as_str())
    }

    /// Expires the room's conference (the last participant left a configured room).
    pub(super) fn expire_conference(&mut self) {
        self.forget_legs(true);
        if let Conference::Ready(conference_id) = std::mem::take(&mut self.bridge.conference) {
            self.expire(BridgeRequest::ExpireConference { conference_id }, true);
        }
    }

    /// A failed allocation of a participant that left: the bridge may have made it after all.
    pub(super) fn expire_endpoint_attempt(&mut self, endpoint_id: String) {
        if let Conference::Ready(conference_id) = &self.bridge.conference {
            let conference_id = conference_id.clone();
            self.expire(
                BridgeRequest::ExpireEndpoint {
                    conference_id,
                    endpoint_id,
                },
                false,
            );
        }
    }

    /// Expires everything the room holds on the bridge and forgets it. A `CreateConference`
    /// still in flight expires its conference when it is answered.
    pub(super) fn forget_bridge(&mut self) {
        self.expire_conference();
        if let Some(conference_id) = self.bridge.attempt.take() {
            // Usually not there (the bridge never made it): no error either way.
            self.expire(BridgeRequest::ExpireConference { conference_id }, false);
        }
        self.bridge = BridgeState::default();
        self.cascade = Cascade::default();
    }

    /// An expiry; `reported`: its failure is logged and counted.
    pub(super) fn expire(&mut self, request: BridgeRequest, reported: bool) {
        self.request(request, Pending::Expiry { reported });
    }
}
