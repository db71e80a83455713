//! One room's task: runs the room's state machine (`tutti_focus::room::Room`) against the
//! world. It hands the room its stanzas one at a time, makes the bridge requests the room asks
//! for side by side (a slow answer holds up nothing else: the room goes on with its other
//! stanzas, answers and timers meanwhile), feeds the answers and the room's timer back, sends
//! what the room sends to the outbox (which the signalling task writes to the XMPP stream in
//! order) and applies its metrics. `focus.rs` routes stanzas to the rooms' tasks.
//!
//! Each of the room's conferences is on one bridge of the pool: placed there by its
//! `CreateConference` (`pool.rs`; a room spread over several bridges has one conference on
//! each, see `Room::conference_placed`), and every later request about it goes to the same
//! bridge. When that bridge fails and another can take the conference, its participants move
//! (`Room::conference_failed`); with none, they move as soon as one becomes available. A
//! relay between two of the room's bridges that fails is the room's to handle
//! (`Room::relay_failed`).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures::stream::{FuturesUnordered, StreamExt};
use jid::BareJid;
use tokio::sync::{broadcast, mpsc};
use tokio_xmpp::Stanza;
use tracing::{info, warn};
use tutti_focus::capabilities::CapabilityCache;
use tutti_focus::pool::BridgeId;
use tutti_focus::room::{
    BridgeAnswer, BridgeError, BridgeRequest, Output, RequestId, Room, RoomLimits,
};

use super::metrics::Metrics;
use super::pool::{Bridges, News};

/// Stanzas to send, in order: at most [`OUTBOX_STANZAS`] wait for the XMPP stream (which
/// itself queues 256, `login.rs`). A server that stops reading fills both; then further
/// stanzas are dropped and counted (`errors_total{kind="outbox_full"}`) rather than kept: the
/// stream is as good as lost, and the next session rebuilds every room.
pub type Outbox = mpsc::Sender<Stanza>;

/// See [`Outbox`].
pub const OUTBOX_STANZAS: usize = 4096;

/// Queues `stanza` in `outbox`; a full outbox drops it (counted). A closed one means the
/// signalling task is gone, when nothing can be sent anyway.
pub fn send_or_count(outbox: &Outbox, metrics: &Metrics, stanza: Stanza) {
    if let Err(mpsc::error::TrySendError::Full(_)) = outbox.try_send(stanza) {
        metrics.error("outbox_full");
    }
}

/// What the rooms share: the bridges, the metrics, and what is known of clients' capabilities.
#[derive(Clone)]
pub struct Services {
    pub bridges: Bridges,
    pub metrics: Arc<Metrics>,
    /// Verdicts by caps node, for every room (a lock held while a room handles one stanza,
    /// never across an await).
    pub capabilities: Arc<Mutex<CapabilityCache>>,
    /// What each room's occupants may ask of it (`jingle_request_rate`).
    pub room_limits: RoomLimits,
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
    /// A conference under the room's name on `bridge` that an earlier focus made, with its
    /// sessions: (nick, endpoint id).
    LeftBehind {
        bridge: BridgeId,
        conference_id: String,
        sessions: Vec<(String, String)>,
    },
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

/// Where a conference is.
struct Placement {
    bridge: BridgeId,
    /// The placement padded the bridge for the conference's first endpoint: its allocation
    /// is not padded again.
    first_endpoint_padded: bool,
}

type BridgeCall =
    Pin<Box<dyn Future<Output = (RequestId, Result<BridgeAnswer, BridgeError>)> + Send>>;

/// A room and what its task works with.
pub struct RoomTask {
    room: Room,
    services: Services,
    outbox: Outbox,
    /// The room's bridge requests in flight.
    calls: FuturesUnordered<BridgeCall>,
    /// The bridge each of the room's conferences is on.
    placements: HashMap<String, Placement>,
    /// What the pool says (`None` once the pool is gone).
    news: Option<broadcast::Receiver<News>>,
}

impl RoomTask {
    /// Joins `room`: the join presence and the room's configuration are in the outbox when this
    /// returns, ahead of whatever the caller sends next (the answer to a conference request
    /// must not let anyone into the room before the focus has configured it).
    pub fn join(
        room: BareJid,
        configured: bool,
        services: Services,
        outbox: Outbox,
    ) -> Option<RoomTask> {
        let room = match Room::join(
            room.clone(),
            configured,
            rand::random(),
            services.room_limits,
        ) {
            Ok(room) => room,
            Err(error) => {
                warn!(%room, %error, "cannot form the focus's occupant JID");
                services.metrics.error("room_join");
                return None;
            }
        };
        let news = Some(services.bridges.subscribe());
        let mut task = RoomTask {
            room,
            services,
            outbox,
            calls: FuturesUnordered::new(),
            placements: HashMap::new(),
            news,
        };
        task.carry_out();
        Some(task)
    }

    /// Does what the room asks: sends its stanzas, starts its bridge requests, applies its
    /// metrics.
    fn carry_out(&mut self) {
        while let Some(output) = self.room.poll_output() {
            match output {
                Output::Stanza(stanza) => {
                    send_or_count(&self.outbox, &self.services.metrics, *stanza)
                }
                Output::Bridge { id, request } => self.call(id, request),
                Output::Metric(metric) => self.services.metrics.record(metric),
            }
        }
    }

    /// Makes a bridge request on the bridge of its conference (placing a new conference).
    fn call(&mut self, id: RequestId, request: BridgeRequest) {
        let bridges = &self.services.bridges;
        let conference_id = request.conference_id().to_owned();
        let placed = self.placements.get_mut(&conference_id);
        let bridge = match &request {
            BridgeRequest::CreateConference {
                region,
                avoid,
                strict_region,
                ..
            } => match placed {
                // Asked again (a retry under the same id): where it is, unless that failed.
                Some(placement) if !bridges.is_failed(&placement.bridge) => {
                    Some(placement.bridge.clone())
                }
                previous => {
                    let previous = previous.map(|placement| placement.bridge.clone());
                    let bridge = bridges.place(region, avoid, *strict_region);
                    if let Some(bridge) = &bridge {
                        // The failed bridge may have made it (an answer lost to the time-out):
                        // expired there if it comes back.
                        if let Some(previous) = previous.filter(|previous| previous != bridge) {
                            bridges.orphan(&previous, conference_id.clone());
                        }
                        let placement = Placement {
                            bridge: bridge.clone(),
                            first_endpoint_padded: true,
                        };
                        self.room.conference_placed(
                            &conference_id,
                            bridge.clone(),
                            bridges.region(bridge),
                        );
                        self.placements.insert(conference_id, placement);
                    }
                    bridge
                }
            },
            BridgeRequest::AllocateEndpoint { .. } => placed.map(|placement| {
                if !std::mem::take(&mut placement.first_endpoint_padded) {
                    bridges.pad(&placement.bridge);
                }
                placement.bridge.clone()
            }),
            BridgeRequest::ExpireConference { .. } => self
                .placements
                .remove(&conference_id)
                .map(|placement| placement.bridge),
            BridgeRequest::UpdateEndpoint(_)
            | BridgeRequest::ExpireEndpoint { .. }
            | BridgeRequest::AllocateRelay { .. }
            | BridgeRequest::UpdateRelay(_)
            | BridgeRequest::ExpireRelay { .. } => placed.map(|placement| placement.bridge.clone()),
        };
        match bridge.and_then(|bridge| Some((bridges.client(&bridge)?, bridge))) {
            Some((client, bridge)) => {
                let expiry = matches!(
                    request,
                    BridgeRequest::ExpireConference { .. }
                        | BridgeRequest::ExpireEndpoint { .. }
                        | BridgeRequest::ExpireRelay { .. }
                );
                let later = expiry.then(|| request.clone());
                let bridges = bridges.clone();
                self.calls.push(Box::pin(async move {
                    let allocated = |allocation| bridges.allocated(&bridge, allocation);
                    match (client.perform(request, allocated).await, later) {
                        // The bridge is down (frozen, cut off): what it holds is expired once
                        // it is heard again, not left behind.
                        (Err(error), Some(later)) if bridges.is_failed(&bridge) => {
                            info!(%bridge, %error, "the bridge is down: expired when it is back");
                            bridges.defer(&bridge, later);
                            (id, Ok(BridgeAnswer::Done))
                        }
                        (answer, _) => (id, answer),
                    }
                }));
            }
            None => {
                let error = BridgeError {
                    call: request.call(),
                    cause: "no bridge is available".to_owned(),
                };
                self.calls
                    .push(Box::pin(std::future::ready((id, Err(error)))));
            }
        }
    }

    /// The room's conferences on `bridge` (one, or none: a room spread over bridges has one
    /// conference on each).
    fn conferences_on(&self, bridge: &BridgeId) -> Vec<String> {
        self.room
            .conference_ids()
            .into_iter()
            .filter(|id| {
                self.placements
                    .get(id)
                    .is_some_and(|placement| placement.bridge == *bridge)
            })
            .collect()
    }

    /// What the pool says: a failed bridge, a bridge available (for a conference left on a
    /// failed one), a failed relay, or that news were missed (`None`: whatever is the case
    /// now).
    fn on_news(&mut self, news: Option<News>) {
        match news {
            Some(News::Failed(bridge)) => {
                for conference_id in self.conferences_on(&bridge) {
                    self.move_off(&bridge, conference_id);
                }
            }
            Some(News::Restarted(bridge)) => {
                for conference_id in self.conferences_on(&bridge) {
                    self.make_again(&bridge, conference_id);
                }
            }
            Some(News::RelayFailed {
                bridge,
                conference_id,
                relay_id,
            }) => {
                if self.conferences_on(&bridge).contains(&conference_id) {
                    self.room
                        .relay_failed(Instant::now(), &conference_id, &relay_id);
                }
            }
            Some(News::Available(_)) | None => {
                for conference_id in self.room.conference_ids() {
                    let Some(bridge) = self
                        .placements
                        .get(&conference_id)
                        .map(|p| p.bridge.clone())
                    else {
                        continue;
                    };
                    if self.services.bridges.is_failed(&bridge) {
                        self.move_off(&bridge, conference_id);
                    }
                }
            }
        }
    }

    /// A conference's bridge restarted and lost it: its participants are invited again on a
    /// new conference, placed anew (the restarted bridge included).
    fn make_again(&mut self, bridge: &BridgeId, conference_id: String) {
        info!(room = %self.room.jid(), %bridge, "the conference's bridge restarted: inviting its participants again");
        self.placements.remove(&conference_id);
        self.services.metrics.conferences_moved.inc();
        self.room.conference_failed(Instant::now(), &conference_id);
    }

    /// A conference of the room moves off the failed `bridge` if another bridge can take it
    /// (with none it stays: a bridge that was frozen still holds it when it thaws).
    fn move_off(&mut self, bridge: &BridgeId, conference_id: String) {
        if !self.services.bridges.has_alternative(bridge) {
            warn!(room = %self.room.jid(), %bridge, "the conference's bridge failed and no other can take it yet");
            return;
        }
        info!(room = %self.room.jid(), %bridge, "moving the conference off a failed bridge");
        self.placements.remove(&conference_id);
        self.services.bridges.orphan(bridge, conference_id.clone());
        self.services.metrics.conferences_moved.inc();
        self.room.conference_failed(Instant::now(), &conference_id);
    }

    /// The pool's next news; `None` inside when some were missed.
    async fn next_news(news: &mut Option<broadcast::Receiver<News>>) -> Option<Option<News>> {
        let receiver = news.as_mut()?;
        match receiver.recv().await {
            Ok(item) => Some(Some(item)),
            Err(broadcast::error::RecvError::Lagged(_)) => Some(None),
            Err(broadcast::error::RecvError::Closed) => {
                *news = None;
                None
            }
        }
    }

    /// Handles the room until the focus has left it and the bridge has answered every request.
    pub async fn run(
        mut self,
        mut inputs: mpsc::Receiver<RoomInput>,
        closed: mpsc::UnboundedSender<RoomClosed>,
    ) {
        let mut notice = ClosedNotice {
            room: self.room.jid().clone(),
            join_again: None,
            to: closed,
        };
        loop {
            self.carry_out();
            let room = &mut self.room;
            if room.is_closed() {
                // Left: what is still asked of the bridge (the expiries) is seen through.
                match self.calls.next().await {
                    Some((id, answer)) => room.handle_bridge_answer(Instant::now(), id, answer),
                    None => break,
                }
                continue;
            }
            let timeout = room.poll_timeout();
            let timer = async {
                match timeout {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            let listening = self.news.is_some();
            let news = Self::next_news(&mut self.news);
            tokio::select! {
                Some(news) = news, if listening => self.on_news(news),
                input = inputs.recv() => match input {
                    Some(RoomInput::Stanza(stanza)) => {
                        let mut capabilities = self
                            .services
                            .capabilities
                            .lock()
                            .unwrap_or_else(|poisoned| poisoned.into_inner());
                        room.handle_stanza(Instant::now(), *stanza, &mut capabilities);
                    }
                    Some(RoomInput::Join { configured }) => room.asked_for(configured),
                    Some(RoomInput::Rejoin) => room.rejoin(Instant::now()),
                    Some(RoomInput::Leave) => room.leave(Instant::now()),
                    Some(RoomInput::LeftBehind { bridge, conference_id, sessions }) => {
                        // Where the room's expiry of it goes.
                        self.placements.entry(conference_id.clone()).or_insert(Placement {
                            bridge,
                            first_endpoint_padded: false,
                        });
                        room.left_behind(conference_id, sessions);
                    }
                    None => break,
                },
                Some((id, answer)) = self.calls.next(), if !self.calls.is_empty() => {
                    room.handle_bridge_answer(Instant::now(), id, answer);
                }
                () = timer => room.handle_timeout(Instant::now()),
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
}
