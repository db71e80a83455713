//! The control plane's view of conferences and endpoints: validates requests, keeps what the
//! focus needs back (credentials, states), hands validated commands to the media worker and
//! fans the worker's events out to every watcher.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{broadcast, mpsc};

use crate::channel::ChannelHub;
use crate::config::Config;
use crate::lifecycle::{BridgeState, Lifecycle};
use crate::media::constraints::ConstraintsUpdate;
use crate::media::stats::SharedSnapshot;
use crate::media::{ChannelNotice, Command, EndpointState, WorkerEvent, WorkerOutput};

/// Why a control request was refused; mapped to gRPC status codes by the API layer.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ControlError {
    #[error("unknown conference {0:?}")]
    UnknownConference(String),
    #[error("unknown endpoint {endpoint:?} in conference {conference:?}")]
    UnknownEndpoint {
        conference: String,
        endpoint: String,
    },
    #[error("unknown relay {relay:?} in conference {conference:?}")]
    UnknownRelay { conference: String, relay: String },
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    #[error("the media worker has stopped")]
    WorkerGone,
    #[error("the media worker is behind: {COMMAND_QUEUE} commands wait for it")]
    WorkerBusy,
    #[error("bridge {0:?} is {1}: it takes no new conferences")]
    NotTakingConferences(String, &'static str),
}

/// Commands that may wait for the media worker (it takes them all every few milliseconds);
/// beyond that control calls are refused, before they change anything, with
/// [`ControlError::WorkerBusy`], and bridge-channel constraints are dropped (and counted).
pub const COMMAND_QUEUE: usize = 1024;
/// Events that may wait for the control plane on their way from the media worker; beyond that
/// the worker drops them (`tutti_bridge_worker_events_dropped_total`) rather than wait.
pub const EVENT_QUEUE: usize = 16 * 1024;

/// What the control plane keeps of a relay to another bridge (docs/bridge.md, Cascading).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelayEntry {
    /// The id the bridge gave it: the far bridge ends its datagrams with it.
    pub link_id: u32,
    /// Its ICE agent nominates and its DTLS is the client.
    pub controlling: bool,
    /// The participants behind it, by endpoint id.
    pub remote_endpoints: Vec<String>,
}

pub struct EndpointEntry {
    /// What the conference's clients know it by (`AllocateEndpoint.participant_id`).
    pub participant_id: String,
    /// A relay rather than a client of this bridge; its `ssrcs` are those of the participants
    /// behind it.
    pub relay: Option<RelayEntry>,
    pub ice: tutti_ice::Credentials,
    pub state: EndpointState,
    pub detail: String,
    pub ssrcs: Vec<u32>,
    /// The last control call for the endpoint or change of its state: what its silence is
    /// measured from.
    pub quiet_since: Instant,
}

#[derive(Default)]
pub struct Registry {
    pub conferences: HashMap<String, HashMap<String, EndpointEntry>>,
    /// Each conference's name, as `CreateConference` gave it.
    pub names: HashMap<String, String>,
    /// The conferences without an endpoint, and since when.
    pub empty_since: HashMap<String, Instant>,
    /// Endpoints allocated so far: the number of the last (`Command::AllocateEndpoint`).
    pub allocations: u64,
}

/// A conference as `ListConferences` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConferenceSummary {
    pub conference_id: String,
    pub name: String,
    /// (endpoint id, participant id, state), by endpoint id.
    pub endpoints: Vec<(String, String, EndpointState)>,
}

impl Registry {
    /// Endpoints without media (not connected) and without a control call or state change for
    /// `expiry` at `now`: (conference, endpoint).
    pub fn silent_endpoints(&self, now: Instant, expiry: Duration) -> Vec<(String, String)> {
        self.conferences
            .iter()
            .flat_map(|(conference, endpoints)| {
                endpoints
                    .iter()
                    .filter(move |(_, entry)| {
                        entry.state != EndpointState::Connected
                            && now.saturating_duration_since(entry.quiet_since) >= expiry
                    })
                    .map(move |(endpoint, _)| (conference.clone(), endpoint.clone()))
            })
            .collect()
    }

    /// Conferences without an endpoint for `expiry` at `now` (a focus that forgot them, or
    /// whose expiry of them was lost).
    pub fn empty_conferences(&self, now: Instant, expiry: Duration) -> Vec<String> {
        self.empty_since
            .iter()
            .filter(|(id, since)| {
                now.saturating_duration_since(**since) >= expiry
                    && self.conferences.get(*id).is_some_and(HashMap::is_empty)
            })
            .map(|(id, _)| id.clone())
            .collect()
    }

    fn conference(
        &mut self,
        conference_id: &str,
    ) -> Result<&mut HashMap<String, EndpointEntry>, ControlError> {
        self.conferences
            .get_mut(conference_id)
            .ok_or_else(|| ControlError::UnknownConference(conference_id.to_string()))
    }
}

pub struct Control {
    pub config: Config,
    pub media_address: SocketAddr,
    pub fingerprint: String,
    pub snapshot: SharedSnapshot,
    /// Bridge-channel URLs start with this (`ws://HOST:PORT` or a proxy's `wss://...`).
    pub channel_base: String,
    pub channels: ChannelHub,
    pub lifecycle: Lifecycle,
    /// Minted at start: tells a focus that this process is not the one it heard before.
    pub instance: String,
    /// Endpoints the bridge expired by itself for their silence.
    pub silent_expiries: Counter,
    registry: Mutex<Registry>,
    commands: mpsc::Sender<Command>,
    events: broadcast::Sender<WorkerEvent>,
}

impl Control {
    pub fn new(
        config: Config,
        media_address: SocketAddr,
        fingerprint: String,
        snapshot: SharedSnapshot,
        channel_base: String,
        commands: mpsc::Sender<Command>,
    ) -> Control {
        let (events, _) = broadcast::channel(4096);
        Control {
            config,
            media_address,
            fingerprint,
            snapshot,
            channel_base,
            channels: ChannelHub::default(),
            lifecycle: Lifecycle::default(),
            instance: format!("{:016x}", rand::random::<u64>()),
            silent_expiries: Counter::default(),
            registry: Mutex::new(Registry::default()),
            commands,
            events,
        }
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A place in the worker's command queue: taken before a call changes anything, so that a
    /// full queue refuses the call rather than leave the registry and the worker apart.
    fn reserve(&self) -> Result<mpsc::Permit<'_, Command>, ControlError> {
        self.commands.try_reserve().map_err(|error| match error {
            TrySendError::Full(()) => ControlError::WorkerBusy,
            TrySendError::Closed(()) => ControlError::WorkerGone,
        })
    }

    /// Applies the worker's endpoint events to the registry and passes them to watchers, and
    /// its allocators' news to the receivers' bridge channels. Runs until the worker stops.
    pub async fn pump_events(&self, mut from_worker: mpsc::Receiver<WorkerOutput>) {
        while let Some(output) = from_worker.recv().await {
            let event = match output {
                WorkerOutput::Endpoint(event) => {
                    let active = match event.state {
                        EndpointState::Connected => Some(true),
                        EndpointState::IceFailed
                        | EndpointState::DtlsFailed
                        | EndpointState::TimedOut => Some(false),
                        EndpointState::Allocated | EndpointState::Expired => None,
                    };
                    if let Some(active) = active {
                        self.channels.send_connectivity(
                            &event.conference_id,
                            &event.endpoint_id,
                            active,
                        );
                    }
                    event
                }
                WorkerOutput::Forwarded(f) => {
                    self.channels
                        .send_forwarded(&f.conference_id, &f.endpoint_id, &f.endpoints);
                    continue;
                }
                WorkerOutput::Channel(ChannelNotice::DominantSpeaker {
                    conference_id,
                    dominant,
                    previous,
                }) => {
                    self.channels
                        .send_dominant_speaker(&conference_id, &dominant, &previous);
                    continue;
                }
                WorkerOutput::Channel(ChannelNotice::SenderConstraints {
                    conference_id,
                    endpoint_id,
                    ideal_height,
                }) => {
                    self.channels.send_sender_constraints(
                        &conference_id,
                        &endpoint_id,
                        ideal_height,
                    );
                    continue;
                }
                WorkerOutput::ConnectionStats(s) => {
                    self.channels.send_connection_stats(
                        &s.conference_id,
                        &s.endpoint_id,
                        s.estimated_downlink_bps,
                    );
                    continue;
                }
            };
            let mut registry = self.registry();
            if let Some(entry) = registry
                .conferences
                .get_mut(&event.conference_id)
                .and_then(|c| c.get_mut(&event.endpoint_id))
            {
                entry.state = event.state;
                entry.detail = event.detail.clone();
                entry.quiet_since = Instant::now();
            }
            // Sent under the lock so a new watcher's snapshot and its events never overlap.
            let _ = self.events.send(event);
        }
    }

    /// The state of every endpoint, and a receiver for every event after it.
    pub fn watch(&self) -> (Vec<WorkerEvent>, broadcast::Receiver<WorkerEvent>) {
        let registry = self.registry();
        let snapshot = registry
            .conferences
            .iter()
            .flat_map(|(conference, endpoints)| {
                endpoints.iter().map(move |(endpoint, entry)| WorkerEvent {
                    conference_id: conference.clone(),
                    endpoint_id: endpoint.clone(),
                    state: entry.state,
                    detail: entry.detail.clone(),
                    relay: entry.relay.is_some(),
                })
            })
            .collect();
        (snapshot, self.events.subscribe())
    }

    /// Creates the conference `conference_id` (idempotent); `name` is kept for
    /// [`Control::list_conferences`].
    pub fn create_conference(&self, conference_id: &str, name: &str) -> Result<bool, ControlError> {
        check_id("conference_id", conference_id)?;
        if name.len() > 1024 {
            return Err(ControlError::Invalid(
                "name must be at most 1024 bytes long".to_string(),
            ));
        }
        let mut registry = self.registry();
        if registry.conferences.contains_key(conference_id) {
            return Ok(false);
        }
        let state = self.lifecycle.state();
        if state != BridgeState::Operational {
            return Err(ControlError::NotTakingConferences(
                self.config.bridge_id.clone(),
                state.label(),
            ));
        }
        self.reserve()?.send(Command::CreateConference {
            conference_id: conference_id.to_string(),
        });
        registry
            .conferences
            .insert(conference_id.to_string(), HashMap::new());
        registry
            .names
            .insert(conference_id.to_string(), name.to_string());
        registry
            .empty_since
            .insert(conference_id.to_string(), Instant::now());
        Ok(true)
    }

    /// Every conference with its name and endpoints, sorted by conference id.
    pub fn list_conferences(&self) -> Vec<ConferenceSummary> {
        let registry = self.registry();
        let mut conferences: Vec<ConferenceSummary> = registry
            .conferences
            .iter()
            .map(|(conference_id, endpoints)| {
                let mut endpoints: Vec<(String, String, EndpointState)> = endpoints
                    .iter()
                    .filter(|(_, entry)| entry.relay.is_none())
                    .map(|(id, entry)| (id.clone(), entry.participant_id.clone(), entry.state))
                    .collect();
                endpoints.sort_by(|a, b| a.0.cmp(&b.0));
                ConferenceSummary {
                    conference_id: conference_id.clone(),
                    name: registry
                        .names
                        .get(conference_id)
                        .cloned()
                        .unwrap_or_default(),
                    endpoints,
                }
            })
            .collect();
        conferences.sort_by(|a, b| a.conference_id.cmp(&b.conference_id));
        conferences
    }

    pub fn expire_conference(&self, conference_id: &str) -> Result<usize, ControlError> {
        let mut registry = self.registry();
        if !registry.conferences.contains_key(conference_id) {
            return Err(ControlError::UnknownConference(conference_id.to_string()));
        }
        let permit = self.reserve()?;
        let endpoints = registry
            .conferences
            .remove(conference_id)
            .ok_or_else(|| ControlError::UnknownConference(conference_id.to_string()))?;
        registry.names.remove(conference_id);
        registry.empty_since.remove(conference_id);
        self.channels.remove_conference(conference_id);
        permit.send(Command::ExpireConference {
            conference_id: conference_id.to_string(),
        });
        Ok(endpoints.len())
    }

    /// Allocates (or returns the existing) endpoint: its ICE credentials, its bridge-channel
    /// URL, and the allocation's number when it is new (`None`: it existed). `participant_id`
    /// names it in bridge-channel messages.
    pub fn allocate_endpoint(
        &self,
        conference_id: &str,
        endpoint_id: &str,
        participant_id: &str,
        receives_by_mid: bool,
    ) -> Result<(tutti_ice::Credentials, String, Option<u64>), ControlError> {
        check_id("endpoint_id", endpoint_id)?;
        if participant_id.len() > 256 {
            return Err(ControlError::Invalid(
                "participant_id must be at most 256 bytes long".to_string(),
            ));
        }
        let participant_id = if participant_id.is_empty() {
            endpoint_id
        } else {
            participant_id
        };
        let mut registry = self.registry();
        let conference = registry.conference(conference_id)?;
        if let Some(relay) = conference
            .iter()
            .find(|(id, entry)| {
                entry.relay.as_ref().is_some_and(|r| {
                    id.as_str() == endpoint_id
                        || r.remote_endpoints.iter().any(|e| e == endpoint_id)
                })
            })
            .map(|(id, _)| id)
        {
            return Err(ControlError::Conflict(format!(
                "endpoint id {endpoint_id:?} is taken by relay {relay:?} (the relay or a participant behind it)"
            )));
        }
        let channel_url = |password: &str| {
            crate::channel::url(
                &self.channel_base,
                &self.config.bridge_id,
                conference_id,
                endpoint_id,
                password,
            )
        };
        if let Some(entry) = conference.get_mut(endpoint_id) {
            entry.quiet_since = Instant::now();
            let password = self
                .channels
                .add(conference_id, endpoint_id, participant_id);
            return Ok((entry.ice.clone(), channel_url(&password), None));
        }
        let ice = tutti_ice::Credentials::random();
        let permit = self.reserve()?;
        conference.insert(
            endpoint_id.to_string(),
            EndpointEntry {
                participant_id: participant_id.to_string(),
                ice: ice.clone(),
                relay: None,
                state: EndpointState::Allocated,
                detail: String::new(),
                ssrcs: Vec::new(),
                quiet_since: Instant::now(),
            },
        );
        registry.empty_since.remove(conference_id);
        registry.allocations += 1;
        let allocation = registry.allocations;
        permit.send(Command::AllocateEndpoint {
            conference_id: conference_id.to_string(),
            endpoint_id: endpoint_id.to_string(),
            participant_id: participant_id.to_string(),
            ice: ice.clone(),
            allocation,
            receives_by_mid,
        });
        let password = self
            .channels
            .add(conference_id, endpoint_id, participant_id);
        Ok((ice, channel_url(&password), Some(allocation)))
    }

    /// Checks that the endpoint exists and that `ssrcs` (when given) are its own to signal,
    /// then hands the update to the worker.
    pub fn update_endpoint(
        &self,
        conference_id: &str,
        endpoint_id: &str,
        ssrcs: Option<Vec<u32>>,
        command: Command,
    ) -> Result<(), ControlError> {
        let mut registry = self.registry();
        let conference = registry.conference(conference_id)?;
        participant(conference, conference_id, endpoint_id)?;
        if let Some(ssrcs) = &ssrcs {
            check_ssrcs_free(conference, endpoint_id, ssrcs)?;
        }
        self.reserve()?.send(command);
        if let Some(entry) = conference.get_mut(endpoint_id) {
            entry.quiet_since = Instant::now();
            if let Some(ssrcs) = ssrcs {
                entry.ssrcs = ssrcs;
            }
        }
        Ok(())
    }

    /// Clients of this bridge in every conference (relays not counted).
    pub fn endpoint_count(&self) -> usize {
        self.registry()
            .conferences
            .values()
            .flat_map(HashMap::values)
            .filter(|entry| entry.relay.is_none())
            .count()
    }

    /// Allocates (or returns the existing) relay of a conference to another bridge: its ICE
    /// credentials, its link id, and whether it is new.
    pub fn allocate_relay(
        &self,
        conference_id: &str,
        relay_id: &str,
        controlling: bool,
    ) -> Result<(tutti_ice::Credentials, u32, bool), ControlError> {
        check_id("relay_id", relay_id)?;
        let mut registry = self.registry();
        let link_ids: Vec<u32> = registry
            .conferences
            .values()
            .flat_map(HashMap::values)
            .filter_map(|entry| entry.relay.as_ref().map(|r| r.link_id))
            .collect();
        let conference = registry.conference(conference_id)?;
        if let Some(entry) = conference.get_mut(relay_id) {
            let Some(relay) = entry.relay.as_ref() else {
                return Err(ControlError::Conflict(format!(
                    "relay_id {relay_id:?} is an endpoint of the conference"
                )));
            };
            if relay.controlling != controlling {
                return Err(ControlError::Invalid(format!(
                    "relay {relay_id:?} was allocated with controlling={}",
                    relay.controlling
                )));
            }
            entry.quiet_since = Instant::now();
            return Ok((entry.ice.clone(), relay.link_id, false));
        }
        if let Some(relay) = conference.iter().find_map(|(id, entry)| {
            entry
                .relay
                .as_ref()
                .filter(|r| r.remote_endpoints.iter().any(|e| e == relay_id))
                .map(|_| id)
        }) {
            return Err(ControlError::Conflict(format!(
                "relay_id {relay_id:?} is a participant behind relay {relay:?}"
            )));
        }
        let link_id = loop {
            let id: u32 = rand::random();
            if id != 0 && !link_ids.contains(&id) {
                break id;
            }
        };
        let ice = tutti_ice::Credentials::random();
        self.reserve()?.send(Command::AllocateRelay {
            conference_id: conference_id.to_string(),
            relay_id: relay_id.to_string(),
            link_id,
            ice: ice.clone(),
            controlling,
        });
        conference.insert(
            relay_id.to_string(),
            EndpointEntry {
                participant_id: relay_id.to_string(),
                relay: Some(RelayEntry {
                    link_id,
                    controlling,
                    remote_endpoints: Vec::new(),
                }),
                ice: ice.clone(),
                state: EndpointState::Allocated,
                detail: String::new(),
                ssrcs: Vec::new(),
                quiet_since: Instant::now(),
            },
        );
        Ok((ice, link_id, true))
    }

    /// Checks an update of a relay against what the conference holds — the far side's roles
    /// (`far_controlling`, `far_dtls_active`) opposite to the relay's, the participants behind
    /// it (`remotes`: their endpoint ids and every SSRC they take) named by no other member
    /// and sending no SSRC another member takes — then hands it to the worker.
    pub fn update_relay(
        &self,
        conference_id: &str,
        relay_id: &str,
        far_roles: Option<(bool, bool)>,
        remotes: Option<(Vec<String>, Vec<u32>)>,
        command: Command,
    ) -> Result<(), ControlError> {
        let mut registry = self.registry();
        let conference = registry.conference(conference_id)?;
        let relay = relay_entry(conference, conference_id, relay_id)?;
        if let Some((far_controlling, far_dtls_active)) = far_roles {
            if far_controlling == relay.controlling || far_dtls_active == relay.controlling {
                return Err(ControlError::Invalid(format!(
                    "relay {relay_id:?} is {}: the far side must be {} (ice.controlling={}, dtls.setup={})",
                    if relay.controlling { "controlling and DTLS client" } else { "controlled and DTLS server" },
                    if relay.controlling { "controlled and DTLS server" } else { "controlling and DTLS client" },
                    !relay.controlling,
                    if relay.controlling { "PASSIVE" } else { "ACTIVE" },
                )));
            }
        }
        if let Some((ids, ssrcs)) = &remotes {
            for id in ids {
                if let Some((other, _)) = conference.iter().find(|(other, entry)| {
                    other.as_str() != relay_id
                        && (other.as_str() == id
                            || entry
                                .relay
                                .as_ref()
                                .is_some_and(|r| r.remote_endpoints.contains(id)))
                }) {
                    return Err(ControlError::Conflict(format!(
                        "remote endpoint {id:?} is already a member of the conference (as or behind {other:?})"
                    )));
                }
            }
            check_ssrcs_free(conference, relay_id, ssrcs)?;
        }
        self.reserve()?.send(command);
        if let Some(entry) = conference.get_mut(relay_id) {
            entry.quiet_since = Instant::now();
            if let (Some((ids, ssrcs)), Some(relay)) = (remotes, entry.relay.as_mut()) {
                relay.remote_endpoints = ids;
                entry.ssrcs = ssrcs;
            }
        }
        Ok(())
    }

    pub fn expire_relay(&self, conference_id: &str, relay_id: &str) -> Result<(), ControlError> {
        let mut registry = self.registry();
        let conference = registry.conference(conference_id)?;
        relay_entry(conference, conference_id, relay_id)?;
        let permit = self.reserve()?;
        conference.remove(relay_id);
        permit.send(Command::ExpireRelay {
            conference_id: conference_id.to_string(),
            relay_id: relay_id.to_string(),
        });
        Ok(())
    }

    /// Expires the endpoints silent on media and signalling for `endpoint_expiry_secs` (a
    /// client that vanished, a focus that forgot them), then the conferences without an
    /// endpoint for as long (a focus whose expiry of them was lost); returns how many
    /// endpoints.
    pub fn expire_silent(&self, now: Instant) -> usize {
        let expiry = self.config.endpoint_expiry();
        let silent = self.registry().silent_endpoints(now, expiry);
        let mut expired = 0;
        for (conference, endpoint) in silent {
            let expiry = self
                .expire_endpoint(&conference, &endpoint)
                .or_else(|_| self.expire_relay(&conference, &endpoint));
            if expiry.is_ok() {
                tracing::info!(%conference, %endpoint, "expired a silent endpoint");
                self.silent_expiries.inc();
                expired += 1;
            }
        }
        let empty = self.registry().empty_conferences(now, expiry);
        for conference in empty {
            if self.expire_conference(&conference).is_ok() {
                tracing::info!(%conference, "expired an empty conference");
            }
        }
        expired
    }

    /// Every receiver's allocation state, from the media worker.
    pub async fn describe_receivers(
        &self,
    ) -> Result<Vec<crate::media::core::describe::ReceiverReport>, ControlError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.reserve()?.send(Command::DescribeReceivers { reply });
        answer.await.map_err(|_| ControlError::WorkerGone)
    }

    /// What a receiver asked for over its bridge channel, for its allocator. An endpoint that
    /// expired meanwhile is ignored by the worker; with the worker's queue full the update is
    /// dropped (and counted by the channel hub): the receiver's next one carries its wishes.
    pub fn set_constraints(
        &self,
        conference_id: &str,
        endpoint_id: &str,
        update: ConstraintsUpdate,
    ) -> Result<(), ControlError> {
        self.reserve()?.send(Command::SetConstraints {
            conference_id: conference_id.to_string(),
            endpoint_id: endpoint_id.to_string(),
            update,
        });
        Ok(())
    }

    pub fn expire_endpoint(
        &self,
        conference_id: &str,
        endpoint_id: &str,
    ) -> Result<(), ControlError> {
        let mut registry = self.registry();
        let conference = registry.conference(conference_id)?;
        participant(conference, conference_id, endpoint_id)?;
        let permit = self.reserve()?;
        conference.remove(endpoint_id);
        if conference.is_empty() {
            registry
                .empty_since
                .insert(conference_id.to_string(), Instant::now());
        }
        self.channels.remove(conference_id, endpoint_id);
        permit.send(Command::ExpireEndpoint {
            conference_id: conference_id.to_string(),
            endpoint_id: endpoint_id.to_string(),
        });
        Ok(())
    }
}

/// The client of this bridge `endpoint_id` (a relay is not one).
fn participant<'a>(
    conference: &'a HashMap<String, EndpointEntry>,
    conference_id: &str,
    endpoint_id: &str,
) -> Result<&'a EndpointEntry, ControlError> {
    match conference.get(endpoint_id) {
        Some(entry) if entry.relay.is_none() => Ok(entry),
        Some(_) => Err(ControlError::Invalid(format!(
            "{endpoint_id:?} is a relay: use UpdateRelay and ExpireRelay"
        ))),
        None => Err(ControlError::UnknownEndpoint {
            conference: conference_id.to_string(),
            endpoint: endpoint_id.to_string(),
        }),
    }
}

/// The relay `relay_id`.
fn relay_entry<'a>(
    conference: &'a HashMap<String, EndpointEntry>,
    conference_id: &str,
    relay_id: &str,
) -> Result<&'a RelayEntry, ControlError> {
    match conference.get(relay_id) {
        Some(EndpointEntry {
            relay: Some(relay), ..
        }) => Ok(relay),
        Some(_) => Err(ControlError::Invalid(format!(
            "{relay_id:?} is an endpoint, not a relay"
        ))),
        None => Err(ControlError::UnknownRelay {
            conference: conference_id.to_string(),
            relay: relay_id.to_string(),
        }),
    }
}

/// No member of the conference but `owner` takes any of `ssrcs`.
fn check_ssrcs_free(
    conference: &HashMap<String, EndpointEntry>,
    owner: &str,
    ssrcs: &[u32],
) -> Result<(), ControlError> {
    for (other_id, other) in conference.iter().filter(|(id, _)| id.as_str() != owner) {
        if let Some(ssrc) = ssrcs.iter().find(|s| other.ssrcs.contains(s)) {
            let what = if other.relay.is_some() {
                "a participant behind relay"
            } else {
                "endpoint"
            };
            return Err(ControlError::Conflict(format!(
                "ssrc {ssrc} is already signalled by {what} {other_id:?}"
            )));
        }
    }
    Ok(())
}

fn check_id(field: &str, id: &str) -> Result<(), ControlError> {
    if id.is_empty() || id.len() > 256 {
        return Err(ControlError::Invalid(format!(
            "{field} must be 1 to 256 bytes long"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A control plane whose worker takes no command: its queue is `receiver`.
    fn stalled() -> (Control, mpsc::Receiver<Command>) {
        let (commands, receiver) = mpsc::channel(COMMAND_QUEUE);
        let control = Control::new(
            Config::default(),
            "127.0.0.1:10000".parse().unwrap(),
            String::new(),
            SharedSnapshot::default(),
            "ws://127.0.0.1:10091".to_owned(),
            commands,
        );
        (control, receiver)
    }

    #[test]
    fn new_endpoints_are_numbered_in_the_order_their_commands_go_to_the_worker() {
        let (control, mut worker) = stalled();
        control.create_conference("c", "c").unwrap();
        let number = |endpoint: &str| {
            control
                .allocate_endpoint("c", endpoint, "", false)
                .unwrap()
                .2
        };
        assert_eq!(number("e1"), Some(1));
        assert_eq!(number("e2"), Some(2));
        // Asked again: the same endpoint, nothing new for a status to count.
        assert_eq!(number("e1"), None);
        assert_eq!(number("e3"), Some(3));
        let mut sent = Vec::new();
        while let Ok(command) = worker.try_recv() {
            if let Command::AllocateEndpoint { allocation, .. } = command {
                sent.push(allocation);
            }
        }
        assert_eq!(sent, [1, 2, 3]);
    }

    #[test]
    fn a_conference_without_endpoints_is_expired_after_the_endpoint_expiry() {
        let (control, _worker) = stalled();
        let expiry = control.config.endpoint_expiry();
        control.create_conference("never-used", "a").unwrap();
        control.create_conference("emptied", "b").unwrap();
        control.create_conference("in-use", "c").unwrap();
        control
            .allocate_endpoint("emptied", "e1", "", false)
            .unwrap();
        control
            .allocate_endpoint("in-use", "e2", "", false)
            .unwrap();
        let later = Instant::now() + expiry;
        // Emptied after `later` was taken: its time runs from then.
        control.expire_endpoint("emptied", "e1").unwrap();
        let registry = control.registry();
        assert_eq!(registry.empty_conferences(later, expiry), ["never-used"]);
        let mut empty = registry.empty_conferences(later + expiry, expiry);
        empty.sort();
        assert_eq!(
            empty,
            ["emptied", "never-used"],
            "one with an endpoint never is"
        );
        drop(registry);
        control.expire_silent(later);
        let left: Vec<String> = control
            .list_conferences()
            .into_iter()
            .map(|c| c.conference_id)
            .collect();
        assert_eq!(left, ["emptied", "in-use"]);
    }

    #[test]
    fn a_full_command_queue_refuses_calls_before_they_change_anything() {
        let (control, mut worker) = stalled();
        assert_eq!(control.create_conference("c", "room"), Ok(true));
        for i in 1..COMMAND_QUEUE {
            control
                .allocate_endpoint("c", &format!("e{i}"), "", false)
                .expect("room in the queue");
        }
        // Full: nothing more is taken, and what was asked is not half done.
        assert_eq!(
            control
                .allocate_endpoint("c", "late", "", false)
                .map(|_| ()),
            Err(ControlError::WorkerBusy)
        );
        assert_eq!(
            control.create_conference("d", "other"),
            Err(ControlError::WorkerBusy)
        );
        assert_eq!(
            control.expire_endpoint("c", "e1"),
            Err(ControlError::WorkerBusy)
        );
        assert_eq!(
            control.expire_conference("c"),
            Err(ControlError::WorkerBusy)
        );
        assert!(control
            .set_constraints("c", "e1", ConstraintsUpdate::default())
            .is_err());
        assert_eq!(control.endpoint_count(), COMMAND_QUEUE - 1);
        assert_eq!(control.list_conferences().len(), 1);
        // The worker takes one: one call fits again, and is carried out in full.
        assert!(worker.try_recv().is_ok());
        assert_eq!(control.expire_endpoint("c", "e1"), Ok(()));
        assert_eq!(control.endpoint_count(), COMMAND_QUEUE - 2);
        assert_eq!(
            control.expire_endpoint("c", "e2"),
            Err(ControlError::WorkerBusy)
        );
        // A stopped worker is no busy one.
        drop(worker);
        assert_eq!(
            control.create_conference("d", "other"),
            Err(ControlError::WorkerGone)
        );
    }

    fn entry(state: EndpointState, quiet_since: Instant) -> EndpointEntry {
        EndpointEntry {
            participant_id: String::new(),
            relay: None,
            ice: tutti_ice::Credentials::random(),
            state,
            detail: String::new(),
            ssrcs: Vec::new(),
            quiet_since,
        }
    }

    #[test]
    fn only_endpoints_without_media_and_calls_past_the_expiry_are_silent() {
        let start = Instant::now();
        let expiry = Duration::from_secs(60);
        let mut registry = Registry::default();
        let conference = registry.conferences.entry("c".into()).or_default();
        conference.insert("talking".into(), entry(EndpointState::Connected, start));
        conference.insert("vanished".into(), entry(EndpointState::TimedOut, start));
        conference.insert(
            "never-answered".into(),
            entry(EndpointState::Allocated, start),
        );
        conference.insert(
            "failed-lately".into(),
            entry(EndpointState::IceFailed, start + Duration::from_secs(30)),
        );
        assert!(registry
            .silent_endpoints(start + Duration::from_secs(59), expiry)
            .is_empty());
        let mut silent: Vec<String> = registry
            .silent_endpoints(start + expiry, expiry)
            .into_iter()
            .map(|(conference, endpoint)| {
                assert_eq!(conference, "c");
                endpoint
            })
            .collect();
        silent.sort();
        assert_eq!(silent, ["never-answered", "vanished"]);
        assert_eq!(
            registry
                .silent_endpoints(start + Duration::from_secs(90), expiry)
                .len(),
            3
        );
    }
}
