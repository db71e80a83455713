//! The pool's executor: one client and one `WatchEvents` stream per bridge (reconnected every
//! 500 ms while it fails), the configured DNS name resolved again and again, and the pool's
//! state machine (`tutti_focus::pool`) fed what they bring and the time. Rooms place their
//! conferences through it and hear from it of bridges that fail or become available
//! (`subscribe`); what the focus moved off a bridge that comes back, or failed to expire
//! there while it was down, is expired there. Each
//! bridge heard for the first time is asked for its conferences (`ListConferences`): those an
//! earlier focus left there go to the signalling task ([`Found`]), which hands them to their
//! rooms.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{info, warn};
use tutti_focus::pool::{BridgeId, BridgeState, Event, Pool, Status};
use tutti_focus::room::BridgeRequest;
use tutti_proto::bridge_v1 as pb;

use super::bridge::Bridge;
use super::config::{BridgeDns, BridgeTls, Settings};
use super::metrics::Metrics;

/// A broken event stream is opened again after this.
const RECONNECT: Duration = Duration::from_millis(500);

/// What the rooms hear of the pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum News {
    /// The bridge failed: conferences on it move if another bridge can take them.
    Failed(BridgeId),
    /// The bridge is heard (for the first time, or again after a failure): conferences left on
    /// a failed bridge for want of another may move now.
    Available(BridgeId),
    /// The bridge restarted and lost its conferences: they are made again.
    Restarted(BridgeId),
    /// A relay of the conference `conference_id` on `bridge` to the room's conference
    /// `relay_id` on another bridge failed (consent lost, ICE or DTLS failed).
    RelayFailed {
        bridge: BridgeId,
        conference_id: String,
        relay_id: String,
    },
}

/// The conferences on a bridge heard for the first time.
pub struct Found {
    pub bridge: BridgeId,
    pub conferences: Vec<pb::ConferenceInfo>,
}

/// What a bridge's stream brought.
enum Watched {
    Status(Status),
    /// A relay failed: (conference id, relay id).
    RelayFailed(String, String),
    Lost(String),
}

/// The focus's bridges, shared by every room.
#[derive(Clone)]
pub struct Bridges {
    pool: Arc<Mutex<Pool>>,
    clients: Arc<Mutex<HashMap<BridgeId, Bridge>>>,
    news: broadcast::Sender<News>,
    /// Expiries that failed while their bridge was down, carried out when it recovers.
    deferred: Arc<Mutex<HashMap<BridgeId, Vec<BridgeRequest>>>>,
    /// True once every bridge known at the start (configured, or in the first DNS answer) has
    /// been asked for its conferences or found unreachable.
    settled: watch::Receiver<bool>,
}

impl Bridges {
    /// The configured bridges' clients (a bad TLS file stops the start) and the task that
    /// watches them; what is found on bridges heard for the first time comes out of the
    /// receiver.
    pub fn start(
        settings: &Settings,
        metrics: Arc<Metrics>,
    ) -> anyhow::Result<(Bridges, mpsc::UnboundedReceiver<Found>)> {
        let timeout = settings.bridge_timeout;
        let mut configured = Vec::new();
        let mut clients = HashMap::new();
        for address in &settings.bridges {
            let id = BridgeId(address.url.clone());
            clients.insert(
                id.clone(),
                Bridge::new(&address.url, address.tls.as_ref(), timeout)?,
            );
            configured.push(id);
        }
        if let Some(tls) = settings
            .bridge_dns
            .as_ref()
            .and_then(|dns| dns.tls.as_ref())
        {
            // Checked now so that a missing file stops the start, not the first discovery.
            for path in [&tls.ca, &tls.cert, &tls.key] {
                std::fs::metadata(path)
                    .map_err(|e| anyhow::anyhow!("bridge TLS file {}: {e}", path.display()))?;
            }
        }
        let (news, _) = broadcast::channel(64);
        let (settled_tx, settled) = watch::channel(false);
        let (found, found_rx) = mpsc::unbounded_channel();
        let bridges = Bridges {
            pool: Arc::new(Mutex::new(Pool::new())),
            clients: Arc::new(Mutex::new(clients)),
            news,
            deferred: Arc::default(),
            settled,
        };
        let driver = Driver {
            bridges: bridges.clone(),
            configured,
            discovered: Vec::new(),
            awaiting_dns: settings.bridge_dns.is_some(),
            dns: settings.bridge_dns.clone(),
            timeout,
            watchers: HashMap::new(),
            metrics,
            found,
            unsettled: HashSet::new(),
            settled: settled_tx,
        };
        tokio::spawn(driver.run());
        Ok((bridges, found_rx))
    }

    /// Returns once every bridge known at the start has been asked for its conferences (what
    /// it holds is in the receiver `start` returned by then) or found unreachable.
    pub async fn settled(&self) {
        let mut settled = self.settled.clone();
        let _ = settled.wait_for(|settled| *settled).await;
    }

    fn pool(&self) -> std::sync::MutexGuard<'_, Pool> {
        self.pool.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The bridge for a new conference whose first participant is in `region`: on none of
    /// `avoid`, and with `strict_region` only in `region` (see `Pool::place_avoiding`).
    pub fn place(&self, region: &str, avoid: &[BridgeId], strict_region: bool) -> Option<BridgeId> {
        self.pool()
            .place_avoiding(Instant::now(), region, avoid, strict_region)
    }

    /// The region `bridge` reports.
    pub fn region(&self, bridge: &BridgeId) -> String {
        self.pool().region(bridge)
    }

    /// An endpoint is being allocated on `bridge` (its stress is padded until reported).
    pub fn pad(&self, bridge: &BridgeId) {
        self.pool().pad(Instant::now(), bridge);
    }

    /// How an allocation on `bridge` ended (see `Pool::allocated`).
    pub fn allocated(&self, bridge: &BridgeId, allocation: Option<u64>) {
        self.pool().allocated(bridge, allocation);
    }

    pub fn is_failed(&self, bridge: &BridgeId) -> bool {
        self.pool().is_failed(bridge)
    }

    /// Whether another bridge can take the conferences of the failed `bridge`.
    pub fn has_alternative(&self, bridge: &BridgeId) -> bool {
        self.pool().has_alternative(Instant::now(), bridge)
    }

    /// A conference moved off the failed `bridge`: expired there if it comes back.
    pub fn orphan(&self, bridge: &BridgeId, conference_id: String) {
        self.pool().orphan(bridge, conference_id);
    }

    /// An expiry that failed while `bridge` was down: carried out when it recovers.
    pub fn defer(&self, bridge: &BridgeId, expiry: BridgeRequest) {
        self.deferred
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(bridge.clone())
            .or_default()
            .push(expiry);
    }

    fn take_deferred(&self, bridge: &BridgeId) -> Vec<BridgeRequest> {
        self.deferred
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(bridge)
            .unwrap_or_default()
    }

    pub fn client(&self, bridge: &BridgeId) -> Option<Bridge> {
        self.clients
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(bridge)
            .cloned()
    }

    /// Bridges failing and becoming available, as it happens.
    pub fn subscribe(&self) -> broadcast::Receiver<News> {
        self.news.subscribe()
    }

    /// The pool's bridges that are alive.
    pub fn alive(&self) -> usize {
        self.pool().alive()
    }
}

struct Driver {
    bridges: Bridges,
    configured: Vec<BridgeId>,
    discovered: Vec<BridgeId>,
    dns: Option<BridgeDns>,
    timeout: Duration,
    watchers: HashMap<BridgeId, JoinHandle<()>>,
    metrics: Arc<Metrics>,
    /// Where what bridges heard for the first time hold goes.
    found: mpsc::UnboundedSender<Found>,
    /// The first DNS answer has not come yet.
    awaiting_dns: bool,
    /// Bridges known at the start not yet asked for their conferences nor found unreachable.
    unsettled: HashSet<BridgeId>,
    settled: watch::Sender<bool>,
}

impl Driver {
    async fn run(mut self) {
        let (watched_tx, mut watched) = mpsc::unbounded_channel();
        let (resolved_tx, mut resolved) = mpsc::unbounded_channel();
        let (listed_tx, mut listed) = mpsc::unbounded_channel();
        if let Some(dns) = self.dns.clone() {
            tokio::spawn(resolve(dns, resolved_tx));
        }
        self.list(&watched_tx);
        self.carry_out(&listed_tx);
        loop {
            let timeout = self.bridges.pool().poll_timeout();
            let timer = async {
                match timeout {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                Some((bridge, what)) = watched.recv() => {
                    let mut pool = self.bridges.pool();
                    match what {
                        Watched::Status(status) => pool.on_status(Instant::now(), &bridge, status),
                        Watched::RelayFailed(conference_id, relay_id) => {
                            let _ = self.bridges.news.send(News::RelayFailed {
                                bridge,
                                conference_id,
                                relay_id,
                            });
                        }
                        Watched::Lost(cause) => {
                            pool.on_stream_lost(Instant::now(), &bridge, &cause);
                            drop(pool);
                            self.unsettled.remove(&bridge);
                        }
                    }
                }
                Some(addresses) = resolved.recv() => {
                    self.discovered = addresses;
                    self.awaiting_dns = false;
                    self.list(&watched_tx);
                }
                Some(bridge) = listed.recv() => {
                    self.unsettled.remove(&bridge);
                }
                () = timer => self.bridges.pool().handle_timeout(Instant::now()),
            }
            self.carry_out(&listed_tx);
            if !self.awaiting_dns && self.unsettled.is_empty() {
                self.settled
                    .send_if_modified(|settled| !std::mem::replace(settled, true));
            }
            self.metrics.bridges_alive.set(self.bridges.alive() as i64);
        }
    }

    /// Hands the pool the configured and discovered bridges; watches the new ones.
    fn list(&mut self, watched: &mpsc::UnboundedSender<(BridgeId, Watched)>) {
        let listed = self.configured.iter().chain(&self.discovered).cloned();
        let added = self.bridges.pool().set_listed(listed);
        let settled = *self.settled.borrow();
        for bridge in added {
            if !settled {
                self.unsettled.insert(bridge.clone());
            }
            let client = match self.bridges.client(&bridge) {
                Some(client) => client,
                None => match self.discovered_client(&bridge) {
                    Ok(client) => client,
                    Err(error) => {
                        warn!(%bridge, %error, "cannot make a client for a discovered bridge");
                        continue;
                    }
                },
            };
            let task = tokio::spawn(watch(bridge.clone(), client, watched.clone()));
            self.watchers.insert(bridge, task);
        }
    }

    fn discovered_client(&self, bridge: &BridgeId) -> anyhow::Result<Bridge> {
        let tls: Option<&BridgeTls> = self.dns.as_ref().and_then(|dns| dns.tls.as_ref());
        let client = Bridge::new(&bridge.0, tls, self.timeout)?;
        self.bridges
            .clients
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(bridge.clone(), client.clone());
        Ok(client)
    }

    /// What the pool says happened. A bridge heard for the first time is asked for its
    /// conferences; `listed` hears when that is done.
    fn carry_out(&mut self, listed: &mpsc::UnboundedSender<BridgeId>) {
        loop {
            let Some(event) = self.bridges.pool().poll_event() else {
                return;
            };
            match event {
                Event::Available { bridge } => {
                    if let Some(client) = self.bridges.client(&bridge) {
                        tokio::spawn(list_conferences(
                            bridge.clone(),
                            client,
                            self.found.clone(),
                            listed.clone(),
                        ));
                    }
                    let _ = self.bridges.news.send(News::Available(bridge));
                }
                Event::Failed { bridge, cause } => {
                    warn!(%bridge, %cause, "bridge failed: its conferences move");
                    self.metrics.bridge_failures.inc();
                    let _ = self.bridges.news.send(News::Failed(bridge));
                }
                Event::Recovered { bridge, orphans } => {
                    info!(%bridge, moved = orphans.len(), "bridge recovered");
                    let expiries = orphans
                        .into_iter()
                        .map(|conference_id| BridgeRequest::ExpireConference { conference_id })
                        .chain(self.bridges.take_deferred(&bridge))
                        .collect();
                    if let Some(client) = self.bridges.client(&bridge) {
                        tokio::spawn(expire_left_over(bridge.clone(), client, expiries));
                    }
                    let _ = self.bridges.news.send(News::Available(bridge));
                }
                Event::Restarted { bridge } => {
                    let _ = self.bridges.news.send(News::Restarted(bridge));
                }
                Event::Removed { bridge } => {
                    self.bridges.take_deferred(&bridge);
                    if let Some(task) = self.watchers.remove(&bridge) {
                        task.abort();
                    }
                    self.bridges
                        .clients
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(&bridge);
                }
            }
        }
    }
}

/// Keeps `bridge`'s event stream open and passes its statuses on, and every loss of it.
async fn watch(bridge: BridgeId, client: Bridge, to: mpsc::UnboundedSender<(BridgeId, Watched)>) {
    loop {
        let lost = match client.watch().await {
            Ok(mut stream) => loop {
                match stream.message().await {
                    Ok(Some(pb::BridgeEvent {
                        event: Some(pb::bridge_event::Event::Status(status)),
                    })) => {
                        if to
                            .send((bridge.clone(), Watched::Status(status_from_pb(status))))
                            .is_err()
                        {
                            return;
                        }
                    }
                    Ok(Some(pb::BridgeEvent {
                        event: Some(pb::bridge_event::Event::Endpoint(event)),
                    })) => {
                        if let Some(failed) = relay_failure(event) {
                            if to.send((bridge.clone(), failed)).is_err() {
                                return;
                            }
                        }
                    }
                    Ok(Some(_)) => {}
                    Ok(None) => break "the bridge ended it".to_owned(),
                    Err(status) => break format!("{:?}: {}", status.code(), status.message()),
                }
            },
            Err(error) => error.to_string(),
        };
        if to.send((bridge.clone(), Watched::Lost(lost))).is_err() {
            return;
        }
        tokio::time::sleep(RECONNECT).await;
    }
}

/// A relay's failure among a bridge's endpoint events (its own expiry is none: the focus
/// asked for it, or gave the relay up already).
fn relay_failure(event: pb::EndpointEvent) -> Option<Watched> {
    let failed = matches!(
        pb::EndpointState::try_from(event.state),
        Ok(pb::EndpointState::TimedOut
            | pb::EndpointState::IceFailed
            | pb::EndpointState::DtlsFailed)
    );
    (event.relay && failed).then(|| {
        warn!(conference = %event.conference_id, relay = %event.endpoint_id, detail = %event.detail, "a relay failed");
        Watched::RelayFailed(event.conference_id, event.endpoint_id)
    })
}

fn status_from_pb(status: pb::BridgeStatus) -> Status {
    let state = match pb::BridgeState::try_from(status.state) {
        Ok(pb::BridgeState::Operational) => BridgeState::Operational,
        Ok(pb::BridgeState::ShuttingDown) => BridgeState::ShuttingDown,
        // Draining, and a state this focus does not know: no new conference goes there.
        _ => BridgeState::Draining,
    };
    Status {
        name: status.bridge_id,
        region: status.region,
        state,
        stress: status.stress,
        endpoints: status.endpoints,
        endpoint_capacity: status.endpoint_capacity,
        instance: status.instance,
        allocations: status.allocations,
    }
}

/// Asks a bridge heard for the first time for the conferences it holds (an earlier focus's,
/// for one) and passes them on; `listed` hears when that is done, answered or not.
async fn list_conferences(
    bridge: BridgeId,
    client: Bridge,
    found: mpsc::UnboundedSender<Found>,
    listed: mpsc::UnboundedSender<BridgeId>,
) {
    match client.list_conferences().await {
        Ok(conferences) if conferences.is_empty() => {}
        Ok(conferences) => {
            info!(%bridge, conferences = conferences.len(), "the bridge holds conferences");
            let _ = found.send(Found {
                bridge: bridge.clone(),
                conferences,
            });
        }
        Err(error) => warn!(%bridge, %error, "cannot list the bridge's conferences"),
    }
    let _ = listed.send(bridge);
}

/// Carries out on a bridge that came back the expiries of what the focus left there while it
/// was down: the conferences moved off it, and the expiries that failed meanwhile.
async fn expire_left_over(bridge: BridgeId, client: Bridge, expiries: Vec<BridgeRequest>) {
    for expiry in expiries {
        let call = expiry.call();
        let conference = expiry.conference_id().to_owned();
        match client.perform(expiry, |_| {}).await {
            Ok(_) => {
                info!(%bridge, conference, call, "expired what was left on a bridge that came back")
            }
            Err(error) => info!(%bridge, conference, call, %error, "not expired"),
        }
    }
}

/// Resolves the DNS name at once and every interval; each answer (the bridges' URLs) goes to
/// the driver. A failed resolution keeps the last answer.
async fn resolve(dns: BridgeDns, to: mpsc::UnboundedSender<Vec<BridgeId>>) {
    let mut tick = tokio::time::interval(dns.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match tokio::net::lookup_host((dns.host.as_str(), dns.port)).await {
            Ok(addresses) => {
                let mut urls: Vec<BridgeId> = addresses
                    .map(|address| BridgeId(dns.url(address)))
                    .collect();
                urls.sort();
                urls.dedup();
                if to.send(urls).is_err() {
                    return;
                }
            }
            Err(error) => warn!(name = %dns.host, %error, "resolving the bridges failed"),
        }
    }
}
