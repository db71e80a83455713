//! One Jingle session per participant: its requests, carried out one at a time per participant
//! (a request the bridge is working on holds up that participant's next ones, nobody else's),
//! its end, its restarts and their limit, and what the others are told of its sources
//! ([`crate::sources`]: what the bridge forwards of them, per receiver).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use jid::{FullJid, Jid};
use minidom::Element;
use tokio_xmpp::parsers::message::Message;
use tokio_xmpp::Stanza;
use tracing::{info, warn};

use super::moves::Deliveries;
use super::requests::{self, BridgeAnswer, BridgeError, BridgeRequest, RequestId};
use super::{Metric, Pending, Reply, Room};
use crate::jingle::{Action, Jingle, Reason, ReasonCondition, ReasonKind, Senders};
use crate::jitsi::BridgeSession;
use crate::offer;
use crate::offer::standard::StandardSession;
use crate::sources::{EndpointSources, MidSource, ReceiverView, SourceChange, SourceError};
use crate::stanzas::Refusal;
use crate::to_bridge::{self, EndpointId, RemoteTransportState};

/// Session restarts one participant may ask for (ICE failure reports, session-terminate with a
/// restart request) within `RESTART_WINDOW`, as Jicofo limits them: a client whose network
/// keeps failing would otherwise have the focus allocate endpoints in a loop.
const MAX_RESTARTS: usize = 3;
const RESTART_WINDOW: Duration = Duration::from_secs(60);

pub(super) enum SessionState {
    /// session-initiate sent; source updates for the participant wait here until it accepts.
    Pending {
        queued: Vec<Jingle>,
    },
    Active,
}

impl SessionState {
    pub(super) fn label(&self) -> &'static str {
        match self {
            SessionState::Pending { .. } => "pending",
            SessionState::Active => "active",
        }
    }
}

pub(super) struct Session {
    sid: String,
    conference_id: String,
    endpoint_id: String,
    pub(super) state: SessionState,
    transport: RemoteTransportState,
    dialect: SessionDialect,
    receive_mids: MidSync,
}

/// Where telling the bridge a standards client's MIDs stands: one update in flight at a time
/// (each carries the whole list, so two in flight could land out of order), whether the list
/// changed since it was sent, and the list the bridge has (or is being sent); `None` after a
/// failure: unknown.
struct MidSync {
    in_flight: bool,
    stale: bool,
    told: Option<Vec<(u32, String)>>,
}

impl Default for MidSync {
    /// A new endpoint has no MIDs.
    fn default() -> MidSync {
        MidSync {
            in_flight: false,
            stale: false,
            told: Some(Vec::new()),
        }
    }
}

/// The Jingle a session speaks (see [`crate::capabilities::Dialect`]).
pub(super) enum SessionDialect {
    /// Two contents carrying every remote source; `source-add` / `source-remove`.
    Jitsi,
    /// One content per remote stream, kept by the session; `content-add` / `content-remove`.
    Standard(Box<StandardSession>),
}

impl Session {
    /// The session its session-initiate offers.
    pub(super) fn offered(
        sid: String,
        conference_id: String,
        endpoint_id: String,
        dialect: SessionDialect,
    ) -> Session {
        Session {
            sid,
            conference_id,
            endpoint_id,
            state: SessionState::Pending { queued: Vec::new() },
            transport: RemoteTransportState::new(),
            dialect,
            receive_mids: MidSync::default(),
        }
    }

    /// How many contents of one media its session-accept may describe.
    fn contents_per_media(&self) -> to_bridge::ContentsPerMedia {
        match self.dialect {
            SessionDialect::Jitsi => to_bridge::ContentsPerMedia::One,
            SessionDialect::Standard(_) => to_bridge::ContentsPerMedia::Many,
        }
    }

    /// The standards client's contents, if the session is in the plain-XEP dialect.
    fn standard(&self) -> Option<&StandardSession> {
        match &self.dialect {
            SessionDialect::Standard(standard) => Some(standard),
            SessionDialect::Jitsi => None,
        }
    }

    /// Checks that the contents `jingle` names are the session's (plain-XEP dialect; Jitsi
    /// clients name contents freely, e.g. Chromium's `0` in a transport-info).
    fn check_content_names(&self, jingle: &Jingle) -> Result<(), Refusal> {
        match self.standard() {
            Some(standard) => standard
                .check_names(jingle)
                .map_err(|unknown| Refusal::BadRequest(unknown.to_string())),
            None => Ok(()),
        }
    }

    pub(super) fn sid(&self) -> &str {
        &self.sid
    }

    /// The conference (of the room's, one per bridge) its endpoint is in.
    pub(super) fn conference_id(&self) -> &str {
        &self.conference_id
    }

    pub(super) fn endpoint_id(&self) -> &str {
        &self.endpoint_id
    }

    fn endpoint(&self) -> EndpointId<'_> {
        EndpointId {
            conference_id: &self.conference_id,
            endpoint_id: &self.endpoint_id,
        }
    }
}

#[derive(Default)]
pub(super) struct RestartLimit {
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

/// How many Jingle requests a participant may still send: a token bucket of `rate` a second
/// holding one second's worth, full at first (the participant's session-accept and its trickled
/// candidates come in a burst).
#[derive(Default)]
pub(super) struct RequestBudget {
    /// Requests it may send now (fractions accrue).
    tokens: f64,
    /// When `tokens` was last brought up to date; None: never (the bucket is full).
    last: Option<Instant>,
}

impl RequestBudget {
    /// Takes one request at `now`, if the budget has one; a rate of 0 allows everything.
    pub(super) fn allow(&mut self, rate: u32, now: Instant) -> bool {
        if rate == 0 {
            return true;
        }
        let full = f64::from(rate);
        self.tokens = match self.last {
            None => full,
            Some(last) => {
                (self.tokens + now.saturating_duration_since(last).as_secs_f64() * full).min(full)
            }
        };
        self.last = Some(self.last.map_or(now, |last| last.max(now)));
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// A participant's Jingle requests: the one the bridge is working on, and those behind it.
#[derive(Default)]
pub(super) struct JingleQueue {
    busy: Option<RequestId>,
    waiting: VecDeque<JingleRequest>,
}

/// A Jingle IQ set from an occupant.
pub(super) struct JingleRequest {
    from: Jid,
    id: String,
    jingle: Jingle,
}

/// A participant's Jingle request the bridge is working on.
pub(super) struct InFlight {
    nick: String,
    sid: String,
    reply: Reply,
    change: Change,
}

/// What is applied once the bridge has taken a request.
enum Change {
    /// The session-accept's transport (the sources are stored already).
    Accept {
        transport: RemoteTransportState,
    },
    /// A client's own session-initiate, taken in place of the focus's offer: its transport,
    /// and the focus's session-accept, sent once the bridge has taken it.
    Takeover {
        transport: RemoteTransportState,
        accept: Box<Jingle>,
    },
    Transport {
        transport: RemoteTransportState,
    },
    /// A source-add or source-remove (stored already); `previous`: the sources before it, put
    /// back if the bridge fails it.
    Sources {
        previous: EndpointSources,
    },
}

/// What a Jingle request needs once it is checked.
enum Step {
    /// Nothing more: answered with a result.
    Done,
    /// This update of the participant's endpoint; the IQ is answered with the bridge's answer.
    Bridge(Box<tutti_proto::bridge_v1::UpdateEndpointRequest>, Change),
}

impl Room {
    pub(super) fn on_jingle_iq(&mut self, now: Instant, from: Jid, id: String, payload: &Element) {
        // The occupant's budget is spent before anything else is done for it, even reading the
        // request (an unknown sid, a malformed one: it costs an answer all the same).
        let rate = self.limits.jingle_request_rate;
        let within_budget = from
            .resource()
            .and_then(|nick| self.participants.get_mut(nick.as_str()))
            .is_none_or(|participant| participant.requests.allow(rate, now));
        if !within_budget {
            self.metric(Metric::Error("rate_limited"));
            return self.reply(
                Reply { to: Some(from), id },
                Err(Refusal::ResourceConstraint(format!(
                    "too many Jingle requests: at most {rate} a second"
                ))),
            );
        }
        match Jingle::from_element(payload) {
            Ok(jingle) => self.on_jingle(now, JingleRequest { from, id, jingle }),
            Err(error) => self.reply(
                Reply { to: Some(from), id },
                Err(Refusal::BadRequest(error.to_string())),
            ),
        }
    }

    fn on_jingle(&mut self, now: Instant, request: JingleRequest) {
        let JingleRequest { from, id, jingle } = request;
        let reply = Reply {
            to: Some(from.clone()),
            id,
        };
        let found = self.participants.iter().find_map(|(nick, participant)| {
            participant
                .session
                .as_ref()
                .filter(|session| session.sid == jingle.sid)
                .map(|_| nick.clone())
        });
        if jingle.action == Action::SessionInitiate {
            let taken = match found {
                Some(_) => Err(Refusal::ServiceUnavailable(format!(
                    "session '{}' already exists",
                    jingle.sid
                ))),
                None => self.on_client_initiate(&from, &jingle),
            };
            return match taken {
                Ok((nick, step)) => self.carry_out(&nick, jingle.sid, reply, Ok(step)),
                Err(refusal) => self.reply(reply, Err(refusal)),
            };
        }
        let participant = found.and_then(|nick| {
            self.participants
                .get_mut(&nick)
                .filter(|participant| from == participant.occupant.clone())
                .map(|participant| (nick, participant))
        });
        let Some((nick, participant)) = participant else {
            return self.reply(reply, Err(Refusal::UnknownSession));
        };
        if participant.jingle.busy.is_some() {
            participant.jingle.waiting.push_back(JingleRequest {
                from,
                id: reply.id,
                jingle,
            });
            return;
        }
        let step = self.on_session_jingle(now, &nick, &jingle);
        self.carry_out(&nick, jingle.sid, reply, step);
    }

    /// Answers a checked Jingle request, or hands it to the bridge (answered once the bridge
    /// has, the participant's next requests waiting behind it).
    fn carry_out(&mut self, nick: &str, sid: String, reply: Reply, step: Result<Step, Refusal>) {
        match step {
            Ok(Step::Done) => self.reply(reply, Ok(())),
            Err(refusal) => self.reply(reply, Err(refusal)),
            Ok(Step::Bridge(request, change)) => {
                let in_flight = InFlight {
                    nick: nick.to_owned(),
                    sid,
                    reply,
                    change,
                };
                let id = self.request(
                    BridgeRequest::UpdateEndpoint(request),
                    Pending::Jingle(in_flight),
                );
                if let Some(participant) = self.participants.get_mut(nick) {
                    participant.jingle.busy = Some(id);
                }
            }
        }
    }

    /// XEP-0353: a standards client that rings the focus (`<propose id>` in a message to its
    /// occupant JID) while the focus's offer to it is unanswered is answered `<proceed id>`;
    /// its `session-initiate` then takes the offer's place ([`Room::on_client_initiate`]).
    /// A client that rings as it joins, before the focus has offered it a session (its caps
    /// not answered yet, its endpoint being allocated), is answered right behind the offer,
    /// if it is a standards client ([`Room::proceed_if_rung`]). Anyone else's ringing is
    /// ignored (the focus offers every occupant a session as it joins; a Jitsi client is
    /// never rung).
    pub(super) fn on_message(&mut self, message: Message) {
        let Some(from) = message.from.clone() else {
            return;
        };
        let Some(id) = message
            .payloads
            .iter()
            .find(|p| p.is("propose", crate::ns::JINGLE_MESSAGE))
            .and_then(|propose| propose.attr("id"))
            .map(str::to_owned)
        else {
            return;
        };
        let Some(ringing) = from.resource().and_then(|nick| {
            self.participants
                .get_mut(nick.as_str())
                .filter(|participant| from == participant.occupant.clone())
        }) else {
            info!(%from, "a ring (XEP-0353 propose) from someone not in the room");
            return;
        };
        match ringing.session.as_ref() {
            None => {
                info!(%from, %id, "a ring (XEP-0353 propose) before the focus's offer: answered behind it");
                ringing.rang = Some(id);
            }
            Some(session)
                if matches!(session.state, SessionState::Pending { .. })
                    && session.standard().is_some() =>
            {
                self.send_proceed(from, id);
            }
            Some(_) => info!(%from, "a ring (XEP-0353 propose) the focus does not take"),
        }
    }

    /// Right behind the focus's offer to `nick`: `<proceed>` for the ring it sent before the
    /// offer existed, if it is a standards client.
    pub(super) fn proceed_if_rung(&mut self, nick: &str) {
        let Some(participant) = self.participants.get_mut(nick) else {
            return;
        };
        let Some(id) = participant.rang.take() else {
            return;
        };
        let occupant = Jid::from(participant.occupant.clone());
        if participant
            .session
            .as_ref()
            .is_some_and(|session| session.standard().is_some())
        {
            self.send_proceed(occupant, id);
        } else {
            info!(%occupant, "a ring (XEP-0353 propose) from a Jitsi client: not taken");
        }
    }

    fn send_proceed(&mut self, to: Jid, id: String) {
        let proceed = Element::builder("proceed", crate::ns::JINGLE_MESSAGE)
            .attr(rxml::xml_ncname!("id").into(), id)
            .build();
        self.send(Stanza::Message(
            Message::chat(to).with_payloads(vec![proceed]),
        ));
    }

    /// A `session-initiate` from an occupant (XEP-0166: a standards client may start the
    /// session itself, e.g. after XEP-0353's propose and proceed): taken in place of the
    /// focus's own offer while that is unanswered — the session becomes the client's (its sid,
    /// its contents; the focus's offer is terminated naming it as the alternative session), on
    /// the endpoint the focus allocated. The client's offer is read as a session-accept is
    /// (sources, transport, media to the bridge); once the bridge has taken it the focus sends
    /// its `session-accept` and the others' streams as a `content-add`. Refused (as before):
    /// from a Jitsi client, from someone outside the room, before the focus's offer exists and
    /// once a session is established.
    fn on_client_initiate(
        &mut self,
        from: &Jid,
        jingle: &Jingle,
    ) -> Result<(String, Step), Refusal> {
        let unavailable = |why: &str| Refusal::ServiceUnavailable(why.to_owned());
        let nick = from
            .resource()
            .map(|resource| resource.to_string())
            .filter(|nick| {
                self.participants
                    .get(nick)
                    .is_some_and(|participant| *from == participant.occupant.clone())
            })
            .ok_or_else(|| unavailable("the focus initiates the sessions; it accepts none"))?;
        let focus = self.focus_occupant.to_string();
        let participant = self
            .participants
            .get_mut(&nick)
            .ok_or(Refusal::UnknownSession)?;
        let owner = participant.occupant.to_string();
        let session = participant.session.as_mut().ok_or_else(|| {
            unavailable("no session offered yet: the focus offers one (session-initiate) as an occupant joins")
        })?;
        if !matches!(session.state, SessionState::Pending { .. }) {
            return Err(Refusal::ServiceUnavailable(format!(
                "session '{}' is established: one session per participant",
                session.sid
            )));
        }
        let SessionDialect::Standard(standard) = &session.dialect else {
            return Err(unavailable(
                "the focus initiates the sessions of Jitsi clients; it accepts none",
            ));
        };
        let mut taken = standard.as_ref().clone();
        let (accept, client_setup) = taken
            .take_over(jingle, &focus)
            .map_err(|e| Refusal::BadRequest(e.to_string()))?;
        // The bridge reads the client's offer as an answer taking the DTLS role it offered.
        let mut offer = jingle.clone();
        for content in &mut offer.contents {
            if let Some(transport) = content.transport.as_mut() {
                for fingerprint in &mut transport.fingerprints {
                    fingerprint.setup = Some(client_setup);
                }
            }
        }
        let sources = EndpointSources::from_jingle(&offer).map_err(bad_sources)?;
        let mut trial = self.sources.clone();
        trial.accept(&owner, sources.clone()).map_err(bad_sources)?;
        // The client is the initiator here: it sends on its contents for the initiator.
        trial.set_mid_sources(
            &owner,
            MidSource::of_contents(&offer, taken.own_contents(), &nick, |senders| {
                matches!(
                    senders.unwrap_or(Senders::Both),
                    Senders::Initiator | Senders::Both
                )
            }),
        );
        let mut transport = session.transport.clone();
        let update = to_bridge::session_accept_update(
            session.endpoint(),
            &owner,
            &offer,
            to_bridge::ContentsPerMedia::Many,
            &mut transport,
            &sources,
            trial.outputs(&owner),
            trial.mid_streams(&owner),
        )
        .map_err(|e| Refusal::BadRequest(e.to_string()))?;
        // Checked: the session is the client's from here on.
        let offered_sid = std::mem::replace(&mut session.sid, jingle.sid.clone());
        session.dialect = SessionDialect::Standard(Box::new(taken));
        session.state = SessionState::Pending { queued: Vec::new() };
        let occupant = participant.occupant.clone();
        self.sources = trial;
        let mut terminate = Jingle::new(Action::SessionTerminate, offered_sid);
        terminate.reason = Some(Reason {
            condition: ReasonCondition::AlternativeSession {
                sid: jingle.sid.clone(),
            },
            text: None,
            extensions: Default::default(),
        });
        self.send_iq_set(&occupant, terminate.to_element());
        info!(%occupant, sid = %jingle.sid, "taking the session the client initiated");
        Ok((
            nick,
            Step::Bridge(
                Box::new(update),
                Change::Takeover {
                    transport,
                    accept: Box::new(accept),
                },
            ),
        ))
    }

    /// Answers the Jingle requests of a participant that is gone (none of them has a session
    /// left to apply to).
    pub(super) fn answer_orphaned(&mut self, now: Instant, queue: JingleQueue) {
        for request in queue.waiting {
            self.on_jingle(now, request);
        }
    }

    fn on_session_jingle(
        &mut self,
        now: Instant,
        nick: &str,
        jingle: &Jingle,
    ) -> Result<Step, Refusal> {
        let endpoint_id = self
            .participants
            .get(nick)
            .and_then(|participant| participant.session.as_ref())
            .map(|session| session.endpoint_id.clone())
            .ok_or(Refusal::UnknownSession)?;
        if let Some(session) = self.participants.get(nick).and_then(|p| p.session.as_ref()) {
            session.check_content_names(jingle)?;
        }
        match jingle.action {
            Action::SessionAccept => self.on_session_accept(nick, jingle),
            Action::ContentAccept | Action::ContentReject | Action::ContentRemove
                if self.is_standard(nick) =>
            {
                self.on_content_answer(nick, jingle)
            }
            Action::TransportInfo => self.on_transport_info(nick, jingle),
            Action::SourceAdd | Action::SourceRemove => self.on_source_update(nick, jingle),
            Action::SessionTerminate => {
                let restart = requests_restart(jingle, &endpoint_id);
                let Some(participant) = self.participants.get_mut(nick) else {
                    return Err(Refusal::UnknownSession);
                };
                let occupant = participant.occupant.clone();
                if let Some(session) = participant.session.take() {
                    info!(%occupant, reason = ?jingle.reason, restart, "session terminated by the participant");
                    self.end_session(&occupant, session);
                    // The client has ended its side already: a refused restart leaves it in the
                    // room without a session, as a plain terminate does.
                    if restart && self.count_restart(now, nick) {
                        self.invite(now, nick);
                    }
                }
                Ok(Step::Done)
            }
            Action::SessionInfo => {
                if reports_ice_failure(jingle, &endpoint_id) {
                    if !self.count_restart(now, nick) {
                        return Err(Refusal::ResourceConstraint(format!(
                            "at most {MAX_RESTARTS} session restarts per {} s",
                            RESTART_WINDOW.as_secs()
                        )));
                    }
                    self.restart_session(now, nick);
                }
                Ok(Step::Done)
            }
            other => Err(Refusal::NotImplemented(format!(
                "the focus does not handle {other}"
            ))),
        }
    }

    fn is_standard(&self, nick: &str) -> bool {
        self.participants
            .get(nick)
            .and_then(|participant| participant.session.as_ref())
            .is_some_and(|session| session.standard().is_some())
    }

    /// A standards client's answer to a `content-add` (`content-accept`, `content-reject`), or
    /// its `content-remove` of a remote stream's content: accepted streams are forwarded to it
    /// from now on; refused or removed contents are no longer the session's (no
    /// `content-remove` follows for them); its own contents stay.
    fn on_content_answer(&mut self, nick: &str, jingle: &Jingle) -> Result<Step, Refusal> {
        let session = self.session_of(nick).ok_or(Refusal::UnknownSession)?;
        if let SessionDialect::Standard(standard) = &mut session.dialect {
            match jingle.action {
                Action::ContentAccept => standard.accept_contents(jingle),
                _ => standard.forget(jingle),
            }
            self.sync_receive_mids(nick);
        }
        Ok(Step::Done)
    }

    /// The bridge took a standards client's `session-accept` of the focus's offer: the streams
    /// of the offer are forwarded to it from now on.
    fn offer_accepted(&mut self, nick: &str) {
        let Some(session) = self.session_of(nick) else {
            return;
        };
        if let SessionDialect::Standard(standard) = &mut session.dialect {
            standard.accept_offer();
            self.sync_receive_mids(nick);
        }
    }

    /// Tells the bridge the MIDs a standards client receives the streams it accepted under now
    /// (its contents' names): the streams the bridge forwards it. After one update in flight has
    /// been answered; nothing when the bridge has the list already.
    pub(super) fn sync_receive_mids(&mut self, nick: &str) {
        let Some(session) = self.session_of(nick) else {
            return;
        };
        let SessionDialect::Standard(standard) = &session.dialect else {
            return;
        };
        if session.receive_mids.in_flight {
            session.receive_mids.stale = true;
            return;
        }
        let mids = standard.receive_mids();
        if session.receive_mids.told.as_ref() == Some(&mids) {
            return;
        }
        let update = to_bridge::receive_mids_update(session.endpoint(), &mids);
        session.receive_mids = MidSync {
            in_flight: true,
            stale: false,
            told: Some(mids),
        };
        let pending = Pending::ReceiveMids {
            nick: nick.to_owned(),
            sid: session.sid.clone(),
        };
        self.request(BridgeRequest::UpdateEndpoint(Box::new(update)), pending);
    }

    /// The bridge took (or failed) a standards client's MIDs; a newer list goes next. A
    /// failure is logged and counted (`bridge`); the next change sends the whole list again.
    pub(super) fn on_receive_mids_answer(
        &mut self,
        nick: &str,
        sid: &str,
        answer: Result<BridgeAnswer, BridgeError>,
    ) {
        let Some(session) = self.session_mut(nick, sid) else {
            return;
        };
        session.receive_mids.in_flight = false;
        let stale = std::mem::take(&mut session.receive_mids.stale);
        if let Err(error) = answer {
            session.receive_mids.told = None;
            warn!(room = %self.jid, nick, %error, "the bridge did not take the client's MIDs");
            self.metric(Metric::Error("bridge"));
        }
        if stale {
            self.sync_receive_mids(nick);
        }
    }

    /// Whether the participant may restart its session now (and counts it if so).
    fn count_restart(&mut self, now: Instant, nick: &str) -> bool {
        let Some(participant) = self.participants.get_mut(nick) else {
            return false;
        };
        let allowed = participant.restarts.allow(now);
        if !allowed {
            warn!(occupant = %participant.occupant, "too many session restarts; not restarting");
            self.metric(Metric::Error("restart_limited"));
        }
        allowed
    }

    /// lib-jitsi-meet's report that ICE failed: the session is replaced, as Jicofo does, by a
    /// session-terminate, the old endpoint expired (source-remove to the others) and a new
    /// endpoint with a new session-initiate (its sources reach the others again after its
    /// session-accept).
    fn restart_session(&mut self, now: Instant, nick: &str) {
        let Some(participant) = self.participants.get_mut(nick) else {
            return;
        };
        let occupant = participant.occupant.clone();
        let Some(session) = participant.session.take() else {
            return;
        };
        info!(%occupant, "ICE failed: restarting the session");
        let mut terminate = Jingle::new(Action::SessionTerminate, session.sid.clone());
        terminate.reason = Some(Reason::new(ReasonKind::Success).with_text("restart"));
        self.send_iq_set(&occupant, terminate.to_element());
        self.end_session(&occupant, session);
        self.invite(now, nick);
    }

    fn on_session_accept(&mut self, nick: &str, jingle: &Jingle) -> Result<Step, Refusal> {
        let participant = self.participants.get(nick).ok_or(Refusal::UnknownSession)?;
        let session = participant
            .session
            .as_ref()
            .ok_or(Refusal::UnknownSession)?;
        if !matches!(session.state, SessionState::Pending { .. }) {
            return Err(Refusal::OutOfOrder(
                "the session is already accepted".to_owned(),
            ));
        }
        let owner = participant.occupant.to_string();
        let sources = EndpointSources::from_jingle(jingle).map_err(bad_sources)?;
        let mut trial = self.sources.clone();
        trial.accept(&owner, sources.clone()).map_err(bad_sources)?;
        if let Some(standard) = session.standard() {
            // What a standards client sends on its own contents without XEP-0339 sources is
            // routed by its MIDs (the client is the responder: it sends for the responder).
            trial.set_mid_sources(
                &owner,
                MidSource::of_contents(jingle, standard.own_contents(), nick, |senders| {
                    matches!(
                        senders.unwrap_or(Senders::Both),
                        Senders::Responder | Senders::Both
                    )
                }),
            );
        }
        let mut transport = session.transport.clone();
        let update = to_bridge::session_accept_update(
            session.endpoint(),
            &owner,
            jingle,
            session.contents_per_media(),
            &mut transport,
            &sources,
            trial.outputs(&owner),
            trial.mid_streams(&owner),
        )
        .map_err(|e| Refusal::BadRequest(e.to_string()))?;
        // Stored now, so that nobody else claims them meanwhile; shown to the others once the
        // bridge says what it forwards of them.
        self.sources = trial;
        self.cascade.learn_media(update.media.as_ref());
        Ok(Step::Bridge(Box::new(update), Change::Accept { transport }))
    }

    fn on_transport_info(&mut self, nick: &str, jingle: &Jingle) -> Result<Step, Refusal> {
        let session = self.session_of(nick).ok_or(Refusal::UnknownSession)?;
        let mut transport = session.transport.clone();
        let update = to_bridge::transport_info_update(session.endpoint(), jingle, &mut transport)
            .map_err(|e| Refusal::BadRequest(e.to_string()))?;
        match update {
            Some(update) => Ok(Step::Bridge(
                Box::new(update),
                Change::Transport { transport },
            )),
            None => {
                session.transport = transport;
                Ok(Step::Done)
            }
        }
    }

    fn on_source_update(&mut self, nick: &str, jingle: &Jingle) -> Result<Step, Refusal> {
        let participant = self.participants.get(nick).ok_or(Refusal::UnknownSession)?;
        let session = participant
            .session
            .as_ref()
            .ok_or(Refusal::UnknownSession)?;
        if !matches!(session.state, SessionState::Active) {
            return Err(Refusal::OutOfOrder(format!(
                "{} before session-accept",
                jingle.action
            )));
        }
        let owner = participant.occupant.to_string();
        let listed = EndpointSources::from_jingle(jingle).map_err(bad_sources)?;
        let mut trial = self.sources.clone();
        match jingle.action {
            Action::SourceAdd => trial.add(&owner, &listed),
            _ => trial.remove(&owner, &listed),
        }
        .map_err(bad_sources)?;
        let now = trial.get(&owner).cloned().unwrap_or_default();
        let update = to_bridge::sources_update(
            session.endpoint(),
            &owner,
            &now,
            trial.outputs(&owner),
            trial.mid_streams(&owner),
        );
        let previous = self.sources.get(&owner).cloned().unwrap_or_default();
        self.sources = trial;
        Ok(Step::Bridge(Box::new(update), Change::Sources { previous }))
    }

    /// The bridge did not take a participant's session (its accept, or its own offer taking
    /// the focus's place): the request is answered with the bridge's error and the session
    /// dropped.
    fn session_not_taken(&mut self, now: Instant, nick: &str, reply: Reply, error: &str) {
        self.reply(
            reply,
            Err(Refusal::Internal(format!(
                "the bridge did not take the session: {error}"
            ))),
        );
        self.drop_failed_session(now, nick, error);
    }

    /// The bridge answered a participant's Jingle request: applied and answered, and the
    /// participant's next request taken up.
    pub(super) fn on_jingle_answer(
        &mut self,
        now: Instant,
        id: RequestId,
        in_flight: InFlight,
        answer: Result<BridgeAnswer, BridgeError>,
    ) {
        let InFlight {
            nick,
            sid,
            reply,
            change,
        } = in_flight;
        let Some(participant) = self
            .participants
            .get_mut(&nick)
            .filter(|participant| participant.jingle.busy == Some(id))
        else {
            // The participant left, or the room lost the server: its session is gone.
            return self.reply(reply, Err(Refusal::UnknownSession));
        };
        participant.jingle.busy = None;
        let owner = participant.occupant.clone();
        match change {
            Change::Accept { transport } => match requests::forwarded(answer) {
                Ok(forwarded) => {
                    self.activate(now, &nick, &owner, transport, &forwarded);
                    self.reply(reply, Ok(()));
                    self.offer_accepted(&nick);
                }
                Err(error) => self.session_not_taken(now, &nick, reply, &error.to_string()),
            },
            Change::Takeover { transport, accept } => match requests::forwarded(answer) {
                Ok(forwarded) => {
                    self.reply(reply, Ok(()));
                    self.send_iq_set(&owner, accept.to_element());
                    self.queue_streams(&nick, &owner);
                    self.activate(now, &nick, &owner, transport, &forwarded);
                }
                Err(error) => self.session_not_taken(now, &nick, reply, &error.to_string()),
            },
            Change::Transport { transport } => {
                let result = answer
                    .map(|_| ())
                    .map_err(|e| Refusal::Internal(e.to_string()));
                if result.is_ok() {
                    if let Some(session) = self.session_mut(&nick, &sid) {
                        session.transport = transport;
                    }
                }
                self.reply(reply, result);
            }
            Change::Sources { previous } => match requests::forwarded(answer) {
                Ok(forwarded) => {
                    let change = self
                        .sources
                        .show(owner.as_str(), &to_bridge::forwarded_from_pb(&forwarded));
                    self.signal_change(&change);
                    self.reply(reply, Ok(()));
                }
                Err(error) => {
                    if let Err(conflict) = self.sources.accept(owner.as_str(), previous) {
                        // Another participant claimed a removed source meanwhile.
                        warn!(%owner, %conflict, "the sources before the failed update are not restored");
                    }
                    self.reply(reply, Err(Refusal::Internal(error.to_string())));
                }
            },
        }
        let waiting = self
            .participants
            .get_mut(&nick)
            .map(|participant| std::mem::take(&mut participant.jingle.waiting))
            .unwrap_or_default();
        for request in waiting {
            self.on_jingle(now, request);
        }
    }

    /// Queues, for a standards client's session that is about to be accepted, a `content-add`
    /// of everyone else's streams.
    fn queue_streams(&mut self, nick: &str, owner: &FullJid) {
        let views = self.sources.receiver_views_except(owner.as_str());
        let Some(session) = self.session_of(nick) else {
            return;
        };
        if let (SessionDialect::Standard(standard), SessionState::Pending { queued }) =
            (&mut session.dialect, &mut session.state)
        {
            queued.extend(standard.content_add(&session.sid, &views));
        }
    }

    /// `nick`'s session, whichever it is.
    fn session_of(&mut self, nick: &str) -> Option<&mut Session> {
        self.participants.get_mut(nick)?.session.as_mut()
    }

    fn session_mut(&mut self, nick: &str, sid: &str) -> Option<&mut Session> {
        self.participants
            .get_mut(nick)?
            .session
            .as_mut()
            .filter(|session| session.sid == sid)
    }

    /// The bridge took the session-accept: the session is active, what waited for it is sent,
    /// and the others are told of what the bridge forwards of the participant's sources.
    fn activate(
        &mut self,
        now: Instant,
        nick: &str,
        owner: &FullJid,
        transport: RemoteTransportState,
        forwarded: &tutti_proto::bridge_v1::SourceList,
    ) {
        let Some(session) = self.session_of(nick) else {
            return;
        };
        session.transport = transport;
        let queued = match std::mem::replace(&mut session.state, SessionState::Active) {
            SessionState::Pending { queued } => queued,
            SessionState::Active => Vec::new(),
        };
        self.metric(Metric::Sessions {
            state: "pending",
            change: -1,
        });
        self.metric(Metric::Sessions {
            state: "active",
            change: 1,
        });
        for update in queued {
            self.send_iq_set(owner, update.to_element());
        }
        info!(occupant = %owner, "session accepted");
        let change = self
            .sources
            .show(owner.as_str(), &to_bridge::forwarded_from_pb(forwarded));
        self.signal_accepted(now, nick, &change);
    }

    /// The bridge failed the participant's session after its session-initiate: the session is
    /// terminated with the cause as its reason, and the participant invited again once the
    /// bridge takes endpoints.
    fn drop_failed_session(&mut self, now: Instant, nick: &str, cause: &str) {
        let Some(participant) = self.participants.get_mut(nick) else {
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
        self.send_iq_set(&occupant, terminate.to_element());
        self.end_session(&occupant, session);
        self.allocation_failed(now, nick, cause);
    }

    /// The participant's session is over: expire its endpoint, and remove its sources from
    /// everyone else.
    pub(super) fn end_session(&mut self, occupant: &FullJid, session: Session) {
        self.metric(Metric::Sessions {
            state: session.state.label(),
            change: -1,
        });
        self.expire(
            BridgeRequest::ExpireEndpoint {
                conference_id: session.conference_id,
                endpoint_id: session.endpoint_id,
            },
            true,
        );
        let removed = self.sources.remove_participant(occupant.as_str());
        self.signal(&removed, Action::SourceRemove);
    }

    /// Tells everyone but their owner of a participant's removed and added sources.
    pub(super) fn signal_change(&mut self, change: &SourceChange) {
        self.signal(&change.removed, Action::SourceRemove);
        self.signal(&change.added, Action::SourceAdd);
    }

    /// Sends `view` as `action` (source-add or source-remove; to standards clients as
    /// content-add or content-remove) to everyone with a session but its owner; a participant
    /// that has not accepted yet gets it after its session-accept.
    pub(super) fn signal(&mut self, view: &ReceiverView, action: Action) {
        if view.is_empty() {
            return;
        }
        let deliveries = self.receivers(std::slice::from_ref(view));
        self.deliver(deliveries, action);
    }

    /// Sends each receiver its views in one `action` (as [`Room::signal`]); the held return of
    /// a moved participant whose sources they name goes first (`moves.rs`).
    pub(super) fn deliver(&mut self, deliveries: Deliveries, action: Action) {
        let held = deliveries
            .iter()
            .flat_map(|(_, _, views)| views)
            .any(|view| self.return_held(view.owner()));
        if held {
            self.release_moves();
        }
        let mut to_send = Vec::new();
        let mut changed_mids = Vec::new();
        for (nick, sid, views) in deliveries {
            let Some(participant) = self.participants.get_mut(&nick) else {
                continue;
            };
            let Some(session) = participant.session.as_mut().filter(|s| s.sid == sid) else {
                continue;
            };
            let update = match (&mut session.dialect, action) {
                (SessionDialect::Jitsi, Action::SourceAdd) => {
                    offer::source_add(&session.sid, &views)
                }
                (SessionDialect::Jitsi, _) => offer::source_remove(&session.sid, &views),
                (SessionDialect::Standard(standard), Action::SourceAdd) => {
                    standard.content_add(&session.sid, &views)
                }
                (SessionDialect::Standard(standard), _) => {
                    standard.content_remove(&session.sid, &views)
                }
            };
            let Some(update) = update else {
                continue;
            };
            if matches!(session.dialect, SessionDialect::Standard(_)) {
                changed_mids.push(nick.clone());
            }
            match &mut session.state {
                SessionState::Pending { queued } => queued.push(update),
                SessionState::Active => to_send.push((participant.occupant.clone(), update)),
            }
        }
        for (occupant, update) in to_send {
            self.send_iq_set(&occupant, update.to_element());
        }
        for nick in changed_mids {
            self.sync_receive_mids(&nick);
        }
    }
}

/// A `session-info` with `<ice-state xmlns='http://jitsi.org/protocol/focus'>failed</ice-state>`
/// about the current bridge session (a `<bridge-session id>` naming an earlier endpoint is a
/// stale report).
fn reports_ice_failure(jingle: &Jingle, endpoint_id: &str) -> bool {
    let failed = jingle.extensions.children.iter().any(|child| {
        child.is("ice-state", crate::ns::JITSI_FOCUS) && child.text().trim() == "failed"
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

fn bad_sources(error: SourceError) -> Refusal {
    Refusal::BadRequest(format!("invalid sources: {error}"))
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
