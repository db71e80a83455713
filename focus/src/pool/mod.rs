//! The focus's bridges as a state machine without I/O: which bridges there are (configured or
//! discovered), whether each is alive (`health.rs`: its status reports, their silence, its
//! stream's end), and where a new conference goes (`placement.rs`: least stressed in the first
//! participant's region, padded at once for what was placed there and is not reported yet).
//!
//! Its executor (`service/pool.rs`) keeps one `WatchEvents` stream per bridge and hands the
//! pool what they bring ([`Pool::on_status`], [`Pool::on_stream_lost`]) and the time
//! ([`Pool::handle_timeout`] when [`Pool::poll_timeout`] says); the pool says what happened
//! ([`Pool::poll_event`]): a bridge is heard for the first time, failed (its rooms move
//! elsewhere), recovered (what the focus moved off it is expired there), restarted (a new
//! instance: its rooms are made again), or is gone from the pool.

mod health;
mod placement;

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use tracing::{info, warn};

pub use health::{BACKOFF_FIRST, BACKOFF_MAX, SILENCE};

use health::{Change, Health};
use placement::{Candidate, Tier};

/// A bridge, named by the address the focus reaches it at (its gRPC URL).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BridgeId(pub String);

impl std::fmt::Display for BridgeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The state a bridge reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BridgeState {
    Operational,
    Draining,
    ShuttingDown,
}

/// A bridge's status report (`tutti.bridge.v1.BridgeStatus`).
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    /// The bridge's own name for itself.
    pub name: String,
    pub region: String,
    pub state: BridgeState,
    pub stress: f64,
    pub endpoints: u32,
    pub endpoint_capacity: u32,
    /// The bridge process's instance: another one than before means that the bridge
    /// restarted and lost every conference (empty: the bridge does not say).
    pub instance: String,
    /// The last of the bridge's endpoint allocations its load counts (see
    /// [`Pool::allocated`]; 0: none, or the bridge does not say).
    pub allocations: u64,
}

/// What happened to the pool's bridges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The bridge is heard for the first time.
    Available { bridge: BridgeId },
    /// The bridge failed: the conferences on it are to move.
    Failed { bridge: BridgeId, cause: String },
    /// The bridge is heard again; `orphans`: conferences the focus moved off it, to expire
    /// there.
    Recovered {
        bridge: BridgeId,
        orphans: Vec<String>,
    },
    /// The bridge restarted (a new instance at the same address): the conferences on it are
    /// gone, and are to be made again. Comes after `Recovered` when the restart was noticed
    /// as a failure first.
    Restarted { bridge: BridgeId },
    /// No longer configured or discovered, and not alive: its stream can stop.
    Removed { bridge: BridgeId },
}

/// The stress of a bridge whose report makes no sense.
const FULL: f64 = 1.0e9;
/// Padding for an endpoint placed on a bridge whose status does not say its capacity.
const DEFAULT_PADDING: f64 = 0.01;
/// A padding is dropped by the first status that counts its allocation (`Status::allocations`),
/// or after `PADDING_MAX` in any case.
const PADDING_MAX: Duration = Duration::from_secs(3);

/// An endpoint placed on a bridge that no status counts yet.
#[derive(Debug, Clone, Copy)]
struct Padding {
    at: Instant,
    /// The bridge's number for the allocation, once it answered ([`Pool::allocated`]).
    allocation: Option<u64>,
}

#[derive(Debug, Default)]
struct Bridge {
    health: Health,
    /// In the configuration or the last discovery.
    listed: bool,
    /// Endpoints placed here that no status counts yet.
    paddings: Vec<Padding>,
    /// Conferences moved off it while it was failed.
    orphans: Vec<String>,
}

impl Bridge {
    /// Reported stress plus the padding for what was placed and not reported yet. A stress
    /// that is not a number or infinite counts as full, a negative one as none.
    fn stress(&self) -> f64 {
        let Some(status) = &self.health.status else {
            return self.paddings.len() as f64 * DEFAULT_PADDING;
        };
        let per_endpoint = match status.endpoint_capacity {
            0 => DEFAULT_PADDING,
            capacity => 1.0 / f64::from(capacity),
        };
        let reported = if status.stress.is_finite() {
            status.stress.max(0.0)
        } else {
            FULL
        };
        reported + self.paddings.len() as f64 * per_endpoint
    }

    fn tier(&self, now: Instant) -> Option<Tier> {
        let operational = self
            .health
            .status
            .as_ref()
            .is_none_or(|s| s.state == BridgeState::Operational);
        if !self.listed || !operational {
            return None;
        }
        Some(if self.health.is_failed() {
            Tier::Failed
        } else if !self.health.is_alive() {
            Tier::Unheard
        } else if self.health.recovering(now) {
            Tier::Recovering
        } else {
            Tier::Ready
        })
    }
}

#[derive(Debug, Default)]
pub struct Pool {
    bridges: BTreeMap<BridgeId, Bridge>,
    events: VecDeque<Event>,
}

impl Pool {
    pub fn new() -> Pool {
        Pool::default()
    }

    /// The bridges configured or discovered now. New ones are added (unheard until their
    /// first status); one no longer listed takes no new conference, and leaves the pool once
    /// it is not alive (it may still serve conferences until then).
    pub fn set_listed(&mut self, listed: impl IntoIterator<Item = BridgeId>) -> Vec<BridgeId> {
        for bridge in self.bridges.values_mut() {
            bridge.listed = false;
        }
        let mut added = Vec::new();
        for id in listed {
            let bridge = self.bridges.entry(id.clone()).or_insert_with(|| {
                info!(bridge = %id, "bridge added to the pool");
                added.push(id.clone());
                Bridge::default()
            });
            bridge.listed = true;
        }
        self.remove_unlisted_dead();
        added
    }

    fn remove_unlisted_dead(&mut self) {
        let gone: Vec<BridgeId> = self
            .bridges
            .iter()
            .filter(|(_, b)| !b.listed && !b.health.is_alive())
            .map(|(id, _)| id.clone())
            .collect();
        for bridge in gone {
            info!(%bridge, "bridge left the pool");
            self.bridges.remove(&bridge);
            self.events.push_back(Event::Removed { bridge });
        }
    }

    /// A status from `bridge`'s event stream.
    pub fn on_status(&mut self, now: Instant, bridge: &BridgeId, status: Status) {
        let Some(entry) = self.bridges.get_mut(bridge) else {
            return;
        };
        let restarted = entry
            .health
            .status
            .as_ref()
            .is_some_and(|last| !last.instance.is_empty() && last.instance != status.instance);
        if restarted {
            // Nothing the focus moved off it is left there to expire, and the allocations
            // numbered by the last instance are gone.
            entry.orphans.clear();
            entry.paddings.retain(|p| p.allocation.is_none());
        }
        entry
            .paddings
            .retain(|p| p.allocation.is_none_or(|n| n > status.allocations));
        let change = entry.health.heard(now, status);
        self.apply(bridge, change);
        if restarted {
            warn!(%bridge, "the bridge restarted: its conferences are gone");
            self.events.push_back(Event::Restarted {
                bridge: bridge.clone(),
            });
        }
    }

    /// `bridge`'s event stream ended or broke (or could not be opened).
    pub fn on_stream_lost(&mut self, now: Instant, bridge: &BridgeId, cause: &str) {
        let Some(entry) = self.bridges.get_mut(bridge) else {
            return;
        };
        let change = entry
            .health
            .lost(now, format!("its event stream ended: {cause}"));
        self.apply(bridge, change);
        self.remove_unlisted_dead();
    }

    fn apply(&mut self, bridge: &BridgeId, change: Option<Change>) {
        let Some(entry) = self.bridges.get_mut(bridge) else {
            return;
        };
        match change {
            None => {}
            Some(Change::FirstHeard) => {
                info!(%bridge, "bridge heard");
                self.events.push_back(Event::Available {
                    bridge: bridge.clone(),
                });
            }
            Some(Change::Failed(cause)) => {
                warn!(%bridge, %cause, "bridge failed");
                entry.paddings.clear();
                self.events.push_back(Event::Failed {
                    bridge: bridge.clone(),
                    cause,
                });
            }
            Some(Change::Recovered) => {
                info!(%bridge, "bridge recovered");
                self.events.push_back(Event::Recovered {
                    bridge: bridge.clone(),
                    orphans: std::mem::take(&mut entry.orphans),
                });
            }
        }
    }

    /// The time has come for what [`Pool::poll_timeout`] asked: silent bridges fail, old
    /// paddings go.
    pub fn handle_timeout(&mut self, now: Instant) {
        let ids: Vec<BridgeId> = self.bridges.keys().cloned().collect();
        for id in ids {
            let Some(entry) = self.bridges.get_mut(&id) else {
                continue;
            };
            entry
                .paddings
                .retain(|p| now.saturating_duration_since(p.at) < PADDING_MAX);
            let change = entry.health.check(now);
            self.apply(&id, change);
        }
        self.remove_unlisted_dead();
    }

    /// When the pool next wants [`Pool::handle_timeout`].
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.bridges
            .values()
            .flat_map(|b| {
                b.health
                    .deadline()
                    .into_iter()
                    .chain(b.paddings.first().map(|p| p.at + PADDING_MAX))
            })
            .min()
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The bridge for a new conference whose first participant is in `region` (empty: none),
    /// padded at once for its first endpoint; `None` when no bridge takes conferences.
    pub fn place(&mut self, now: Instant, region: &str) -> Option<BridgeId> {
        self.place_avoiding(now, region, &[], false)
    }

    /// As [`Pool::place`], for a conference that spreads a room over another bridge
    /// (cascading): on none of `avoid` (the room's other bridges), with `strict_region` only in
    /// `region`, and only on a bridge that is ready or recovering (a failed or unheard one
    /// would only delay the participants it is for, who can stay where the room is).
    pub fn place_avoiding(
        &mut self,
        now: Instant,
        region: &str,
        avoid: &[BridgeId],
        strict_region: bool,
    ) -> Option<BridgeId> {
        let spreading = !avoid.is_empty() || strict_region;
        let candidates: Vec<Candidate<'_>> = self
            .bridges
            .iter()
            .filter(|(id, _)| !avoid.contains(id))
            .filter_map(|(id, bridge)| {
                Some(Candidate {
                    id,
                    region: bridge
                        .health
                        .status
                        .as_ref()
                        .map_or("", |s| s.region.as_str()),
                    stress: bridge.stress(),
                    tier: bridge.tier(now)?,
                })
            })
            .filter(|c| !strict_region || c.region == region)
            .filter(|c| !spreading || matches!(c.tier, Tier::Ready | Tier::Recovering))
            .collect();
        let chosen = placement::choose(&candidates, region)?.clone();
        tracing::debug!(?candidates, %chosen, region, "placed a conference");
        self.pad(now, &chosen);
        Some(chosen)
    }

    /// The region `bridge` reports (empty: none, or not heard yet).
    pub fn region(&self, bridge: &BridgeId) -> String {
        self.bridges
            .get(bridge)
            .and_then(|b| b.health.status.as_ref())
            .map_or_else(String::new, |s| s.region.clone())
    }

    /// Another endpoint is being allocated on `bridge`: its stress is padded until a status
    /// counts it.
    pub fn pad(&mut self, now: Instant, bridge: &BridgeId) {
        if let Some(entry) = self.bridges.get_mut(bridge) {
            entry.paddings.push(Padding {
                at: now,
                allocation: None,
            });
        }
    }

    /// An allocation on `bridge` was answered: `Some(n)`, the bridge's number for the new
    /// endpoint (its padding stays until a status counts allocation `n`); `None`, nothing new
    /// to count (the endpoint existed, or the call failed). Answers are matched with the
    /// oldest padding not answered yet: which one does not matter, only how many stay.
    pub fn allocated(&mut self, bridge: &BridgeId, allocation: Option<u64>) {
        let Some(entry) = self.bridges.get_mut(bridge) else {
            return;
        };
        let Some(i) = entry.paddings.iter().position(|p| p.allocation.is_none()) else {
            return;
        };
        let counted = entry.health.status.as_ref().map_or(0, |s| s.allocations);
        match allocation {
            Some(n) if n > counted => entry.paddings[i].allocation = Some(n),
            _ => {
                entry.paddings.remove(i);
            }
        }
    }

    /// Whether a conference on the failed `bridge` has somewhere to go: another bridge that is
    /// ready or recovering.
    pub fn has_alternative(&self, now: Instant, failed: &BridgeId) -> bool {
        self.bridges.iter().any(|(id, bridge)| {
            id != failed && matches!(bridge.tier(now), Some(Tier::Ready) | Some(Tier::Recovering))
        })
    }

    /// Whether `bridge` has failed (one no longer in the pool counts as failed).
    pub fn is_failed(&self, bridge: &BridgeId) -> bool {
        self.bridges
            .get(bridge)
            .is_none_or(|b| b.health.is_failed())
    }

    /// The conference was moved off the failed `bridge`: it is expired there if it comes back.
    pub fn orphan(&mut self, bridge: &BridgeId, conference_id: String) {
        if let Some(entry) = self.bridges.get_mut(bridge) {
            entry.orphans.push(conference_id);
        }
    }

    /// How many bridges are alive (they report their status).
    pub fn alive(&self) -> usize {
        self.bridges
            .values()
            .filter(|b| b.health.is_alive())
            .count()
    }
}
