//! A room's conference spread over several bridges (cascading, docs/focus.md "Cascading").
//!
//! The room's first conference (`allocation.rs`) is its **primary leg**; each further one is a
//! **leg** on another bridge, made when a participant is to be invited and the legs it could
//! join are full (`RoomLimits::participants_per_bridge`) or none is in its region (a bridge's
//! region is what the executor says when it places a conference, [`Room::conference_placed`]).
//! Every pair of legs is linked by a **relay** (a full mesh): `AllocateRelay` on both bridges
//! (the older leg's side controlling), then `UpdateRelay` on each with the other's transport,
//! the conference's media and the participants of the far leg with their sources.
//!
//! After each input the room settles what it holds against what it wants ([`Room::settle`]):
//! an empty leg is expired (the primary's role goes to the fullest other leg), each pair of
//! ready legs has a relay, and each side of a relay is updated whenever the far leg's
//! participants, their sources or the media change (one update in flight per side; the next
//! goes when it is answered). A relay that fails (its allocation or an update refused, or its
//! bridges reporting it timed out) costs the room its smaller leg: that leg's participants are
//! moved (session-terminate, new session-initiate) onto the other legs, or a new one on a
//! third bridge — not on the bridge given up, which takes no new conference of the room for
//! `GIVEN_UP_FOR`.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use tracing::{info, warn};
use tutti_proto::bridge_v1 as pb;

use super::allocation::Invitation;
use super::requests::{self, BridgeAnswer, BridgeError, BridgeRequest, RequestId};
use super::sessions::SessionState;
use super::{Metric, Pending, Room};
use crate::pool::BridgeId;
use crate::to_bridge;

/// A bridge whose part of the room was given up for a failed relay takes no new conference of
/// the room for this long: its participants go to the room's other bridges (a link that stays
/// down would otherwise cost them their sessions again and again).
pub const GIVEN_UP_FOR: Duration = Duration::from_secs(60);

/// Where a conference of the room was placed.
#[derive(Debug, Clone)]
struct Placed {
    bridge: BridgeId,
    /// The bridge's region (empty: it says none).
    region: String,
}

/// A conference of the room besides the primary one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Leg {
    Creating(RequestId),
    Ready,
}

/// Two conferences of the room linked by a relay: the side on `conferences[0]` is the
/// controlling one.
pub(super) type RelayKey = (String, String);

#[derive(Debug, Default)]
struct RelaySide {
    /// What this side's `AllocateRelay` answered (for the far side's `UpdateRelay`).
    transport: Option<pb::RelayTransport>,
    /// The media and participants of the last update made (the far transport goes with the
    /// first).
    sent: Option<(Option<pb::MediaList>, pb::RemoteEndpointList)>,
    /// The update in flight.
    updating: Option<RequestId>,
    /// The bridge took the far side's transport.
    linked: bool,
}

#[derive(Debug, Default)]
struct Relay {
    sides: [RelaySide; 2],
    /// Counted as linked (both sides took the other's transport).
    counted: bool,
}

/// What the room holds for cascading.
#[derive(Debug, Default)]
pub(super) struct Cascade {
    /// The conferences besides the primary, by id.
    legs: BTreeMap<String, Leg>,
    /// Where each conference of the room is, as its executor said.
    placed: HashMap<String, Placed>,
    relays: BTreeMap<RelayKey, Relay>,
    /// The media of the conference's participants (the first session-accept's), for relays.
    media: Option<pb::MediaList>,
    /// Bridges given up for a failed relay, until when (`GIVEN_UP_FOR`).
    given_up: Vec<(BridgeId, Instant)>,
}

impl Cascade {
    /// A session-accept's media: the conference's, if none is known yet.
    pub(super) fn learn_media(&mut self, media: Option<&pb::MediaList>) {
        if self.media.is_none() {
            self.media = media.cloned();
        }
    }
}

/// Where a participant about to be invited goes.
pub(super) enum Destination {
    /// A ready conference: allocate its endpoint there.
    Ready(String),
    /// A leg being made (by the request `0`): wait for it.
    Awaiting(RequestId),
    /// A new leg, in `region` (only there with `strict`).
    NewLeg { region: String, strict: bool },
}

impl Room {
    /// The executor placed the conference `conference_id` on `bridge`, in `region`.
    pub fn conference_placed(&mut self, conference_id: &str, bridge: BridgeId, region: String) {
        self.cascade
            .placed
            .insert(conference_id.to_owned(), Placed { bridge, region });
    }

    /// Every conference of the room: the primary (made or being made), then the others.
    pub fn conference_ids(&self) -> Vec<String> {
        self.conference_id()
            .map(str::to_owned)
            .into_iter()
            .chain(self.cascade.legs.keys().cloned())
            .collect()
    }

    /// Whether `conference_id` is one of the room's.
    pub(super) fn holds_conference(&self, conference_id: &str) -> bool {
        self.conference_id() == Some(conference_id) || self.cascade.legs.contains_key(conference_id)
    }

    /// The participants on, joining or waiting for the conference `conference_id`.
    fn load(&self, conference_id: &str) -> usize {
        let creating = match self.cascade.legs.get(conference_id) {
            Some(Leg::Creating(request)) => Some(*request),
            _ => None,
        };
        let allocating = self
            .requests
            .values()
            .filter(|pending| {
                matches!(pending, Pending::AllocateEndpoint { conference_id: c, nick, .. }
                    if c == conference_id && self.participants.contains_key(nick))
            })
            .count();
        let here = self
            .participants
            .values()
            .filter(|participant| {
                participant
                    .session
                    .as_ref()
                    .is_some_and(|s| s.conference_id() == conference_id)
                    || matches!(participant.invitation,
                        Invitation::AwaitingLeg { request, .. } if Some(request) == creating)
            })
            .count();
        allocating + here
    }

    /// Where the participant `nick` goes, the room's primary conference `primary` being ready.
    /// `spread`: a new leg may be made (not when one just could not be).
    pub(super) fn destination(&self, nick: &str, primary: &str, spread: bool) -> Destination {
        let region = self
            .participants
            .get(nick)
            .map(|p| p.region.clone())
            .unwrap_or_default();
        let cap = self.limits.participants_per_bridge as usize;
        // (id, ready, bridge region if known, load), the primary first.
        let legs: Vec<(&str, bool, Option<&str>, usize)> = std::iter::once((primary, true))
            .chain(
                self.cascade
                    .legs
                    .iter()
                    .map(|(id, leg)| (id.as_str(), *leg == Leg::Ready)),
            )
            .map(|(id, ready)| {
                let placed = self.cascade.placed.get(id).map(|p| p.region.as_str());
                (id, ready, placed, self.load(id))
            })
            .collect();
        let fits = |load: usize| cap == 0 || load < cap;
        let go = |id: &str, ready: bool| match self.cascade.legs.get(id) {
            Some(Leg::Creating(request)) if !ready => Destination::Awaiting(*request),
            _ => Destination::Ready(id.to_owned()),
        };
        if !spread {
            // The least loaded, in the participant's region if one is there.
            let local = legs.iter().any(|l| l.1 && l.2 == Some(region.as_str()));
            let best = legs
                .iter()
                .filter(|l| l.1 && (!local || l.2 == Some(region.as_str())))
                .fold(
                    None::<&(&str, bool, Option<&str>, usize)>,
                    |best, l| match best {
                        Some(best) if best.3 <= l.3 => Some(best),
                        _ => Some(l),
                    },
                );
            return go(best.map_or(primary, |l| l.0), true);
        }
        if !region.is_empty() {
            if let Some(leg) = legs
                .iter()
                .find(|l| l.2 == Some(region.as_str()) && fits(l.3))
            {
                return go(leg.0, leg.1);
            }
            let regions_known = legs.iter().all(|l| l.2.is_some());
            let none_here = legs.iter().all(|l| l.2 != Some(region.as_str()));
            if regions_known && none_here {
                return Destination::NewLeg {
                    region,
                    strict: true,
                };
            }
        }
        match legs.iter().find(|l| fits(l.3)) {
            Some(leg) => go(leg.0, leg.1),
            None => Destination::NewLeg {
                region,
                strict: false,
            },
        }
    }

    /// Asks for a new leg of the room's conference, on a bridge the room is not on yet: the
    /// request that makes it.
    pub(super) fn create_leg(
        &mut self,
        now: Instant,
        region: String,
        strict_region: bool,
    ) -> RequestId {
        let conference_id = self.mint_id();
        self.cascade.given_up.retain(|(_, until)| *until > now);
        let avoid = self
            .conference_ids()
            .iter()
            .filter_map(|id| self.cascade.placed.get(id).map(|p| p.bridge.clone()))
            .chain(
                self.cascade
                    .given_up
                    .iter()
                    .map(|(bridge, _)| bridge.clone()),
            )
            .collect();
        info!(room = %self.jid, conference = %conference_id, region, strict_region, "spreading the conference over another bridge");
        let request = self.request(
            BridgeRequest::CreateConference {
                conference_id: conference_id.clone(),
                name: self.jid.to_string(),
                region,
                avoid,
                strict_region,
            },
            Pending::CreateLeg {
                conference_id: conference_id.clone(),
            },
        );
        self.cascade
            .legs
            .insert(conference_id, Leg::Creating(request));
        request
    }

    pub(super) fn on_leg_answer(
        &mut self,
        now: Instant,
        id: RequestId,
        conference_id: String,
        answer: Result<BridgeAnswer, BridgeError>,
    ) {
        if self.cascade.legs.get(&conference_id) != Some(&Leg::Creating(id)) {
            // Dropped meanwhile.
            if answer.is_ok() {
                self.expire(BridgeRequest::ExpireConference { conference_id }, false);
            }
            return;
        }
        let waiting: Vec<(String, Instant)> = self
            .participants
            .iter()
            .filter_map(|(nick, participant)| match participant.invitation {
                Invitation::AwaitingLeg { request, started } if request == id => {
                    Some((nick.clone(), started))
                }
                _ => None,
            })
            .collect();
        match answer {
            Ok(_) if waiting.is_empty() => {
                self.cascade.legs.remove(&conference_id);
                self.cascade.placed.remove(&conference_id);
                self.expire(BridgeRequest::ExpireConference { conference_id }, false);
            }
            Ok(_) => {
                self.cascade.legs.insert(conference_id.clone(), Leg::Ready);
                for (nick, started) in waiting {
                    self.allocate(&nick, conference_id.clone(), started);
                }
            }
            Err(error) => {
                // No other bridge (in the region) takes it: the participants go where the room
                // already is.
                info!(room = %self.jid, %error, "no conference on another bridge: staying on the room's bridges");
                self.cascade.legs.remove(&conference_id);
                self.cascade.placed.remove(&conference_id);
                for (nick, _) in waiting {
                    if let Some(participant) = self.participants.get_mut(&nick) {
                        participant.invitation = Invitation::None;
                    }
                    self.invite_to(now, &nick, false);
                }
            }
        }
    }

    /// The conference `conference_id` of the room lost its bridge (failed, restarted): its
    /// participants move onto the room's other conferences or a new one. When it is the
    /// room's only one, the whole room moves ([`Room::bridge_failed`]).
    pub fn conference_failed(&mut self, now: Instant, conference_id: &str) {
        if self.ended || !self.holds_conference(conference_id) {
            return;
        }
        if self.cascade.legs.is_empty() {
            self.bridge_failed(now);
            return;
        }
        info!(room = %self.jid, conference = conference_id, "a bridge of the conference failed: moving its participants");
        self.drop_leg(now, conference_id, false);
        self.settle(now);
    }

    /// A relay between the room's conferences `conference_id` and `relay_id` failed (its
    /// bridge reports it timed out): the smaller of the two legs is given up, its participants
    /// moved to the room's other bridges (that bridge takes no new conference of the room for
    /// `GIVEN_UP_FOR`).
    pub fn relay_failed(&mut self, now: Instant, conference_id: &str, relay_id: &str) {
        if self.ended || relay_key(&self.cascade.relays, conference_id, relay_id).is_none() {
            return;
        }
        warn!(room = %self.jid, conference = conference_id, relay = relay_id, "a relay between the conference's bridges failed");
        self.give_up_link(now, conference_id, relay_id);
    }

    /// Gives up the smaller of two linked legs (ties: not the primary, else the later).
    fn give_up_link(&mut self, now: Instant, a: &str, b: &str) {
        self.metric(Metric::RelayFailed);
        let (a_load, b_load) = (self.load(a), self.load(b));
        let victim = if a_load < b_load || (a_load == b_load && self.conference_id() == Some(b)) {
            a
        } else {
            b
        };
        let victim = victim.to_owned();
        if let Some(placed) = self.cascade.placed.get(&victim) {
            self.cascade
                .given_up
                .push((placed.bridge.clone(), now + GIVEN_UP_FOR));
        }
        self.drop_leg(now, &victim, true);
        self.settle(now);
    }

    /// Removes the leg `conference_id` (the primary's role going to the fullest other ready
    /// leg); its relays are expired on the far bridges, it is expired on its own with
    /// `expire_there`, and its participants are moved.
    fn drop_leg(&mut self, now: Instant, conference_id: &str, expire_there: bool) {
        let creating = match self.cascade.legs.get(conference_id) {
            Some(Leg::Creating(request)) => Some(*request),
            _ => None,
        };
        if self.conference_id() == Some(conference_id) {
            let successor = self
                .cascade
                .legs
                .iter()
                .filter(|(_, leg)| **leg == Leg::Ready)
                .map(|(id, _)| (id.clone(), self.load(id)))
                .fold(None::<(String, usize)>, |best, (id, load)| match best {
                    Some(best) if best.1 >= load => Some(best),
                    _ => Some((id, load)),
                });
            let Some((successor, _)) = successor else {
                // Only legs being made: the whole room moves.
                self.bridge_failed(now);
                return;
            };
            self.cascade.legs.remove(&successor);
            self.bridge.promote(successor);
        } else {
            self.cascade.legs.remove(conference_id);
        }
        self.cascade.placed.remove(conference_id);
        let keys: Vec<RelayKey> = self
            .cascade
            .relays
            .keys()
            .filter(|(a, b)| a == conference_id || b == conference_id)
            .cloned()
            .collect();
        for key in keys {
            self.cascade.relays.remove(&key);
            let far = if key.0 == conference_id { key.1 } else { key.0 };
            self.expire(
                BridgeRequest::ExpireRelay {
                    conference_id: far,
                    relay_id: conference_id.to_owned(),
                },
                true,
            );
        }
        if expire_there {
            self.expire(
                BridgeRequest::ExpireConference {
                    conference_id: conference_id.to_owned(),
                },
                false,
            );
        }
        let mut moving = Vec::new();
        for (nick, participant) in &mut self.participants {
            let on_leg = participant
                .session
                .as_ref()
                .is_some_and(|s| s.conference_id() == conference_id);
            let awaiting = matches!(participant.invitation,
                Invitation::AwaitingLeg { request, .. } if Some(request) == creating);
            let allocating = matches!(participant.invitation, Invitation::Allocating { request, .. }
                if matches!(self.requests.get(&request),
                    Some(Pending::AllocateEndpoint { conference_id: c, .. }) if c == conference_id));
            if !(on_leg || awaiting || allocating) {
                continue;
            }
            participant.invitation = Invitation::None;
            participant.endpoint_attempt = None;
            let session = participant.session.take();
            let queue = std::mem::take(&mut participant.jingle);
            moving.push((nick.clone(), participant.occupant.clone(), session, queue));
        }
        // The others keep their sessions: they are told the moved participants' sources are
        // gone, all in one update, and of their return once every one of them is back
        // (`moves.rs`).
        self.moving(moving.iter().map(|(nick, ..)| nick));
        let mut removed = Vec::new();
        for (_, occupant, session, _) in &mut moving {
            if let Some(session) = session.take() {
                removed.push(self.end_for_move(occupant, &session));
            }
        }
        self.signal_moved_away(removed);
        for (nick, _, _, queue) in moving {
            self.answer_orphaned(now, queue);
            self.invite(now, &nick);
        }
    }

    /// Forgets every leg but the primary, expiring them (and their relays with them) when
    /// `expire`.
    pub(super) fn forget_legs(&mut self, expire: bool) {
        let cascade = std::mem::take(&mut self.cascade);
        self.cascade.media = cascade.media;
        self.cascade.given_up = cascade.given_up;
        if let Some(primary) = self.conference_id() {
            if let Some(placed) = cascade.placed.get(primary) {
                self.cascade
                    .placed
                    .insert(primary.to_owned(), placed.clone());
            }
        }
        if expire {
            for (conference_id, leg) in cascade.legs {
                if leg == Leg::Ready {
                    self.expire(BridgeRequest::ExpireConference { conference_id }, true);
                }
            }
        }
    }

    /// Brings what the room holds on the bridges in line with its participants: empty legs
    /// expired, every pair of ready legs linked, every relay's participants current.
    pub(super) fn settle(&mut self, now: Instant) {
        if self.ended || self.participants.is_empty() {
            return;
        }
        self.drop_empty_legs(now);
        self.link_legs();
        let keys: Vec<RelayKey> = self.cascade.relays.keys().cloned().collect();
        for key in keys {
            for side in 0..2 {
                self.update_relay_side(&key, side);
            }
        }
    }

    fn drop_empty_legs(&mut self, now: Instant) {
        let empty: Vec<String> = self
            .cascade
            .legs
            .iter()
            .filter(|(id, leg)| **leg == Leg::Ready && self.load(id) == 0)
            .map(|(id, _)| id.clone())
            .collect();
        for conference_id in empty {
            info!(room = %self.jid, conference = %conference_id, "nobody left on a bridge of the conference");
            self.drop_leg(now, &conference_id, true);
        }
        let primary = match self.conference_id() {
            Some(primary) if self.bridge.is_ready() => primary.to_owned(),
            _ => return,
        };
        let others_busy = self
            .cascade
            .legs
            .iter()
            .any(|(id, leg)| *leg == Leg::Ready && self.load(id) > 0);
        if self.load(&primary) == 0 && others_busy {
            info!(room = %self.jid, conference = %primary, "nobody left on the conference's first bridge");
            self.drop_leg(now, &primary, true);
        }
    }

    /// A relay for every pair of ready legs that has none.
    fn link_legs(&mut self) {
        if self.cascade.legs.is_empty() || !self.bridge.is_ready() {
            return;
        }
        let ready: Vec<String> = self
            .conference_id()
            .map(str::to_owned)
            .into_iter()
            .chain(
                self.cascade
                    .legs
                    .iter()
                    .filter(|(_, leg)| **leg == Leg::Ready)
                    .map(|(id, _)| id.clone()),
            )
            .collect();
        for (i, a) in ready.iter().enumerate() {
            for b in &ready[i + 1..] {
                if relay_key(&self.cascade.relays, a, b).is_some() {
                    continue;
                }
                let key = (a.clone(), b.clone());
                self.cascade.relays.insert(key.clone(), Relay::default());
                for (side, (here, far)) in [(a, b), (b, a)].into_iter().enumerate() {
                    self.request(
                        BridgeRequest::AllocateRelay {
                            conference_id: here.clone(),
                            relay_id: far.clone(),
                            controlling: side == 0,
                        },
                        Pending::AllocateRelay {
                            key: key.clone(),
                            side,
                        },
                    );
                }
            }
        }
    }

    /// The participants of the conference `conference_id` whose sessions the bridge took,
    /// as the far side of a relay lists them.
    fn remote_endpoints(&self, conference_id: &str) -> pb::RemoteEndpointList {
        let endpoints = self
            .participants
            .iter()
            .filter_map(|(nick, participant)| {
                let session = participant.session.as_ref()?;
                if session.conference_id() != conference_id
                    || !matches!(session.state, SessionState::Active)
                {
                    return None;
                }
                let owner = participant.occupant.as_str();
                let sources = self.sources.get(owner).cloned().unwrap_or_default();
                Some(pb::RemoteEndpoint {
                    endpoint_id: session.endpoint_id().to_owned(),
                    participant_id: nick.clone(),
                    // Streams signalled by MID alone are not relayed: the far bridge could not
                    // learn their SSRCs (a relay carries no sender's MID).
                    sources: Some(to_bridge::source_list(
                        owner,
                        &sources,
                        self.sources.outputs(owner),
                        &[],
                    )),
                })
            })
            .collect();
        pb::RemoteEndpointList { endpoints }
    }

    /// Updates one side of a relay if the far leg's participants or the media changed since
    /// its last update (the first one gives it the far side's transport).
    fn update_relay_side(&mut self, key: &RelayKey, side: usize) {
        let far_side = 1 - side;
        let (here, far) = if side == 0 {
            (&key.0, &key.1)
        } else {
            (&key.1, &key.0)
        };
        let wanted = (self.cascade.media.clone(), self.remote_endpoints(far));
        let Some(relay) = self.cascade.relays.get(key) else {
            return;
        };
        let Some(far_transport) = relay.sides[far_side].transport.clone() else {
            return;
        };
        let this = &relay.sides[side];
        if this.transport.is_none()
            || this.updating.is_some()
            || this.sent.as_ref() == Some(&wanted)
        {
            return;
        }
        let update = pb::UpdateRelayRequest {
            conference_id: here.clone(),
            relay_id: far.clone(),
            transport: (!this.linked && this.sent.is_none()).then_some(far_transport),
            media: wanted.0.clone(),
            remote_endpoints: Some(wanted.1.clone()),
        };
        let with_transport = update.transport.is_some();
        let request = self.request(
            BridgeRequest::UpdateRelay(Box::new(update)),
            Pending::UpdateRelay {
                key: key.clone(),
                side,
                with_transport,
            },
        );
        if let Some(relay) = self.cascade.relays.get_mut(key) {
            relay.sides[side].updating = Some(request);
            relay.sides[side].sent = Some(wanted);
        }
    }

    pub(super) fn on_relay_allocated(
        &mut self,
        now: Instant,
        key: RelayKey,
        side: usize,
        answer: Result<BridgeAnswer, BridgeError>,
    ) {
        let here = if side == 0 { &key.0 } else { &key.1 };
        let far = if side == 0 { &key.1 } else { &key.0 };
        let transport = requests::relay_allocated(answer);
        let Some(relay) = self.cascade.relays.get_mut(&key) else {
            // Given up meanwhile: nothing of it is to stay where its leg stays.
            if transport.is_ok() && self.holds_conference(here) {
                self.expire(
                    BridgeRequest::ExpireRelay {
                        conference_id: here.clone(),
                        relay_id: far.clone(),
                    },
                    false,
                );
            }
            return;
        };
        match transport {
            Ok(transport) => relay.sides[side].transport = Some(transport),
            Err(error) => {
                warn!(room = %self.jid, conference = %here, relay = %far, %error, "allocating a relay failed");
                self.give_up_link(now, &key.0.clone(), &key.1.clone());
            }
        }
    }

    pub(super) fn on_relay_updated(
        &mut self,
        now: Instant,
        id: RequestId,
        key: RelayKey,
        side: usize,
        with_transport: bool,
        answer: Result<BridgeAnswer, BridgeError>,
    ) {
        let Some(relay) = self.cascade.relays.get_mut(&key) else {
            return;
        };
        if relay.sides[side].updating != Some(id) {
            return;
        }
        relay.sides[side].updating = None;
        match answer {
            Ok(_) => {
                relay.sides[side].linked |= with_transport;
                if relay.sides.iter().all(|s| s.linked) && !relay.counted {
                    relay.counted = true;
                    info!(room = %self.jid, near = %key.0, far = %key.1, "relay linked");
                    self.metric(Metric::RelayLinked);
                }
            }
            Err(error) => {
                warn!(room = %self.jid, near = %key.0, far = %key.1, %error, "updating a relay failed");
                self.give_up_link(now, &key.0.clone(), &key.1.clone());
            }
        }
    }
}

/// The key of the relay between the conferences `a` and `b`, if there is one.
fn relay_key<'a>(relays: &'a BTreeMap<RelayKey, Relay>, a: &str, b: &str) -> Option<&'a RelayKey> {
    relays
        .keys()
        .find(|(x, y)| (x == a && y == b) || (x == b && y == a))
}
