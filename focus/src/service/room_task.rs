//! One room's task: runs the room's state machine (`tutti_focus::room::Room`) against the
//! world. It hands the room its stanzas one at a time, makes the bridge requests the room asks
//! for side by side (a slow answer holds up nothing else: the room goes on with its other
//! stanzas, answers and timers meanwhile), feeds the answers and the room's timer back, sends
//! what the room sends to the outbox (which the signalling task writes to the XMPP stream in
//! order) and applies its metrics. `focus.rs` routes stanzas to the rooms' tasks.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures::stream::{FuturesUnordered, StreamExt};
use jid::BareJid;
use tokio::sync::mpsc;
use tokio_xmpp::Stanza;
use tracing::warn;
use tutti_focus::capabilities::CapabilityCache;
use tutti_focus::room::{BridgeAnswer, BridgeError, Output, RequestId, Room};

use super::bridge::Bridge;
use super::metrics::Metrics;

/// Stanzas to send, in order.
pub type Outbox = mpsc::UnboundedSender<Stanza>;

/// What the rooms share: the bridge, the metrics, and what is known of clients' capabilities.
#[derive(Clone)]
pub struct Services {
    pub bridge: Bridge,
    pub metrics: Arc<Metrics>,
    /// Verdicts by caps node, for every room (a lock held while a room handles one stanza,
    /// never across an await).
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

type BridgeCall =
    Pin<Box<dyn Future<Output = (RequestId, Result<BridgeAnswer, BridgeError>)> + Send>>;

/// A room and what its task works with.
pub struct RoomTask {
    room: Room,
    services: Services,
    outbox: Outbox,
    /// The room's bridge requests in flight.
    calls: FuturesUnordered<BridgeCall>,
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
        let room = match Room::join(room.clone(), configured, rand::random()) {
            Ok(room) => room,
            Err(error) => {
                warn!(%room, %error, "cannot form the focus's occupant JID");
                services.metrics.error("room_join");
                return None;
            }
        };
        let mut task = RoomTask {
            room,
            services,
            outbox,
            calls: FuturesUnordered::new(),
        };
        task.carry_out();
        Some(task)
    }

    /// Does what the room asks: sends its stanzas, starts its bridge requests, applies its
    /// metrics.
    fn carry_out(&mut self) {
        while let Some(output) = self.room.poll_output() {
            match output {
                // Fails only once the signalling task is gone, when nothing can be sent anyway.
                Output::Stanza(stanza) => drop(self.outbox.send(*stanza)),
                Output::Bridge { id, request } => {
                    let bridge = self.services.bridge.clone();
                    self.calls
                        .push(Box::pin(async move { (id, bridge.perform(request).await) }));
                }
                Output::Metric(metric) => self.services.metrics.record(metric),
            }
        }
    }

    /// Handles the room until the focus has left it and the bridge has answered every request.
    pub async fn run(
        mut self,
        mut inputs: mpsc::UnboundedReceiver<RoomInput>,
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
            tokio::select! {
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
