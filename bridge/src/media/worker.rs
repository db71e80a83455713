//! The media worker: one thread that owns the UDP socket and all media state. Its loop is the
//! whole I/O shell: receive a batch, handle each datagram, apply control commands, run timers,
//! send a batch. Nothing here is shared with another thread except the published snapshot.

use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::mpsc::{Receiver, Sender, TryRecvError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;
use tokio::sync::mpsc::UnboundedSender;
use tutti_dtls::Certificate;
use tutti_ice::stun;

use super::conference::Conference;
use super::endpoint::{Endpoint, EndpointSettings, TransportChange};
use super::stats::{Counters, DropReason, SharedSnapshot, Snapshot};
use super::udp::{self, RecvBatch, SendBatch, MAX_DATAGRAM};
use super::{Command, EndpointState, WorkerEvent};

/// Datagrams per recvmmsg call.
const RECV_BATCH: usize = 64;
/// Datagrams per sendmmsg call (a keyframe fanned out to many receivers fills several).
const SEND_BATCH: usize = 256;
/// Longest sleep in recvmmsg: bounds timer and command latency.
const POLL_INTERVAL: Duration = Duration::from_millis(5);
const TIMER_INTERVAL: Duration = Duration::from_millis(5);
/// transport-cc feedback cadence per endpoint.
const FEEDBACK_INTERVAL: Duration = Duration::from_millis(50);
const REPORT_INTERVAL: Duration = Duration::from_secs(1);
const PUBLISH_INTERVAL: Duration = Duration::from_millis(100);
/// Approximate bytes of one hash map entry in the routing tables, for the memory gauge.
const ROUTE_ENTRY_BYTES: usize = 48;

pub struct WorkerHandle {
    pub commands: Sender<Command>,
    pub media_address: SocketAddr,
    pub thread: JoinHandle<()>,
}

pub fn spawn(
    media_address: SocketAddr,
    settings: EndpointSettings,
    cert: Certificate,
    events: UnboundedSender<WorkerEvent>,
    snapshot: SharedSnapshot,
) -> io::Result<WorkerHandle> {
    let socket = udp::bind(media_address, POLL_INTERVAL)?;
    let media_address = socket.local_addr()?;
    let (commands, command_rx) = std::sync::mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("media-worker".into())
        .spawn(move || {
            let worker = Worker {
                recv: RecvBatch::new(RECV_BATCH),
                out: SendBatch::new(&socket, SEND_BATCH),
                socket,
                commands: command_rx,
                events,
                snapshot,
                state: MediaState::new(cert, settings),
            };
            worker.run();
        })?;
    Ok(WorkerHandle {
        commands,
        media_address,
        thread,
    })
}

struct Worker {
    socket: UdpSocket,
    recv: RecvBatch,
    out: SendBatch,
    commands: Receiver<Command>,
    events: UnboundedSender<WorkerEvent>,
    snapshot: SharedSnapshot,
    state: MediaState,
}

impl Worker {
    fn run(mut self) {
        let fd = self.socket.as_raw_fd();
        let start = Instant::now();
        let mut next_timers = start;
        let mut next_feedback = start;
        let mut next_reports = start + REPORT_INTERVAL;
        let mut next_publish = start;
        let mut cpu = CpuMeter::new(start);
        loop {
            let received = match self.recv.recv(fd) {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(error = %e, "recvmmsg failed");
                    0
                }
            };
            let now = Instant::now();
            for i in 0..received {
                let datagram = self.recv.get(i);
                self.state.handle_datagram(datagram, now, &mut self.out);
            }
            loop {
                match self.commands.try_recv() {
                    Ok(command) => self.state.apply(command, now, &mut self.out),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => return,
                }
            }
            if now >= next_timers {
                self.state.run_timers(now, &mut self.out);
                next_timers = now + TIMER_INTERVAL;
            }
            if now >= next_feedback {
                self.state.send_transport_feedback(&mut self.out);
                next_feedback = now + FEEDBACK_INTERVAL;
            }
            if now >= next_reports {
                self.state.send_receiver_reports(now, &mut self.out);
                next_reports = now + REPORT_INTERVAL;
            }
            self.out.flush();
            if self.out.failed > 0 {
                self.state.counters.drops[DropReason::SendFailed as usize] += self.out.failed;
                self.out.failed = 0;
            }
            for event in self.state.events.drain(..) {
                let _ = self.events.send(event);
            }
            if now >= next_publish {
                self.publish(cpu.busy_fraction(now));
                next_publish = now + PUBLISH_INTERVAL;
            }
        }
    }

    fn publish(&self, busy: Option<f64>) {
        let state = &self.state;
        let endpoint_state_bytes: usize = state
            .endpoints
            .iter()
            .flatten()
            .map(|e| e.heap_bytes())
            .sum::<usize>()
            + (state.by_ufrag.len() + state.by_tag.len() + state.by_address.len())
                * ROUTE_ENTRY_BYTES;
        if let Ok(mut snapshot) = self.snapshot.lock() {
            let worker_busy = busy.unwrap_or(snapshot.worker_busy);
            *snapshot = Snapshot {
                counters: state.counters.clone(),
                conferences: state.conference_ids.len() as u64,
                endpoints: state.endpoints.iter().flatten().count() as u64,
                endpoint_state_bytes: endpoint_state_bytes as u64,
                worker_busy,
            };
        }
    }
}

/// The worker thread's CPU use over about a second (CLOCK_THREAD_CPUTIME_ID).
struct CpuMeter {
    since: Instant,
    cpu_since: Duration,
}

impl CpuMeter {
    fn new(now: Instant) -> CpuMeter {
        CpuMeter {
            since: now,
            cpu_since: thread_cpu_time(),
        }
    }

    fn busy_fraction(&mut self, now: Instant) -> Option<f64> {
        let wall = now.duration_since(self.since);
        if wall < Duration::from_secs(1) {
            return None;
        }
        let cpu = thread_cpu_time();
        let busy = cpu.saturating_sub(self.cpu_since).as_secs_f64() / wall.as_secs_f64();
        self.since = now;
        self.cpu_since = cpu;
        Some(busy)
    }
}

fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Every conference and endpoint of this worker, and the tables that route datagrams to them.
pub(super) struct MediaState {
    pub cert: Certificate,
    pub settings: EndpointSettings,
    pub conferences: Vec<Option<Conference>>,
    pub conference_ids: HashMap<String, usize>,
    pub endpoints: Vec<Option<Endpoint>>,
    free_endpoints: Vec<usize>,
    free_conferences: Vec<usize>,
    /// Local ICE ufrag → endpoint: binding requests before any address is known.
    by_ufrag: HashMap<String, usize>,
    /// Transaction tag → endpoint: STUN responses.
    by_tag: FxHashMap<u32, usize>,
    /// Validated remote address → endpoint: DTLS, RTP and RTCP.
    pub by_address: FxHashMap<SocketAddr, usize>,
    next_tag: u32,
    pub counters: Counters,
    pub events: Vec<WorkerEvent>,
    changes: Vec<TransportChange>,
    /// Origin of the microsecond clock used for transport-cc and receive statistics.
    pub epoch: Instant,
}

impl MediaState {
    fn new(cert: Certificate, settings: EndpointSettings) -> MediaState {
        MediaState {
            cert,
            settings,
            conferences: Vec::new(),
            conference_ids: HashMap::new(),
            endpoints: Vec::new(),
            free_endpoints: Vec::new(),
            free_conferences: Vec::new(),
            by_ufrag: HashMap::new(),
            by_tag: FxHashMap::default(),
            by_address: FxHashMap::default(),
            next_tag: 1,
            counters: Counters::default(),
            events: Vec::new(),
            changes: Vec::new(),
            epoch: Instant::now(),
        }
    }

    pub fn micros(&self, now: Instant) -> i64 {
        now.duration_since(self.epoch).as_micros() as i64
    }

    fn handle_datagram(&mut self, datagram: udp::Received<'_>, now: Instant, out: &mut SendBatch) {
        let Some(from) = datagram.from else {
            self.counters.drop(DropReason::Unrecognized);
            return;
        };
        let len = datagram.len;
        if datagram.truncated || len > MAX_DATAGRAM {
            self.counters.drop(DropReason::Oversized);
            return;
        }
        let Some(&first) = datagram.buf.first().filter(|_| len > 0) else {
            self.counters.drop(DropReason::Truncated);
            return;
        };
        match first {
            0..=3 => self.on_stun(from, &datagram.buf[..len], now, out),
            20..=63 => self.on_dtls(from, &datagram.buf[..len], now, out),
            128..=191 => {
                if len < 8 {
                    self.counters.drop(DropReason::Truncated);
                    return;
                }
                match self.by_address.get(&from) {
                    Some(&slot) => self.on_media(slot, datagram.buf, len, from, now, out),
                    None => self.counters.drop(DropReason::UnknownAddress),
                }
            }
            _ => self.counters.drop(DropReason::Unrecognized),
        }
    }

    fn on_stun(&mut self, from: SocketAddr, buf: &[u8], now: Instant, out: &mut SendBatch) {
        if !stun::is_stun(buf) {
            self.counters.drop(DropReason::StunMalformed);
            return;
        }
        let slot = if stun::is_binding_request(buf) {
            let local_ufrag = stun::peek_username(buf)
                .and_then(|u| u.split(|b| *b == b':').next())
                .and_then(|u| std::str::from_utf8(u).ok());
            match local_ufrag.and_then(|u| self.by_ufrag.get(u)) {
                Some(&slot) => slot,
                None => return self.counters.drop(DropReason::StunUnknownUsername),
            }
        } else {
            match stun::response_transaction_tag(buf).and_then(|t| self.by_tag.get(&t)) {
                Some(&slot) => slot,
                None => return self.counters.drop(DropReason::StunUnknownTransaction),
            }
        };
        let Some(endpoint) = self.endpoints[slot].as_mut() else {
            return;
        };
        if let Err(e) = endpoint.ice.handle_stun(from, buf, now) {
            use tutti_ice::Error;
            self.counters.drop(match e {
                Error::Malformed | Error::NoRemoteCredentials => DropReason::StunMalformed,
                Error::BadFingerprint => DropReason::StunBadFingerprint,
                Error::BadIntegrity => DropReason::StunBadIntegrity,
                Error::UnknownUsername => DropReason::StunUnknownUsername,
                Error::UnknownTransaction => DropReason::StunUnknownTransaction,
                Error::Unsupported => DropReason::StunUnsupported,
            });
        }
        self.drive(slot, now, out);
    }

    fn on_dtls(&mut self, from: SocketAddr, buf: &[u8], now: Instant, out: &mut SendBatch) {
        let Some(&slot) = self.by_address.get(&from) else {
            self.counters.drop(DropReason::DtlsUnknownAddress);
            return;
        };
        let Some(endpoint) = self.endpoints[slot].as_mut() else {
            return;
        };
        if !endpoint.handle_dtls(from, buf, &self.cert, &self.settings, now) {
            self.counters.drop(DropReason::DtlsNotReady);
        }
        self.drive(slot, now, out);
    }

    /// Lets an endpoint's transport send what it has to and applies what changed.
    pub fn drive(&mut self, slot: usize, now: Instant, out: &mut SendBatch) {
        let Some(endpoint) = self.endpoints[slot].as_mut() else {
            return;
        };
        endpoint.drive(
            &self.cert,
            &self.settings,
            now,
            out,
            &mut self.counters,
            &mut self.changes,
        );
        for change in self.changes.drain(..) {
            match change {
                TransportChange::AddressValidated(addr) => {
                    if endpoint.remember_validated(addr) {
                        self.by_address.insert(addr, slot);
                    }
                }
                TransportChange::State(state, detail) => {
                    tracing::info!(
                        conference = %endpoint.conference_id,
                        endpoint = %endpoint.endpoint_id,
                        ?state,
                        %detail,
                        "endpoint state"
                    );
                    self.events.push(WorkerEvent {
                        conference_id: endpoint.conference_id.clone(),
                        endpoint_id: endpoint.endpoint_id.clone(),
                        state,
                        detail,
                    });
                }
            }
        }
    }

    fn apply(&mut self, command: Command, now: Instant, out: &mut SendBatch) {
        match command {
            Command::CreateConference { conference_id } => {
                if !self.conference_ids.contains_key(&conference_id) {
                    let conference = Conference::new();
                    let slot = match self.free_conferences.pop() {
                        Some(slot) => {
                            self.conferences[slot] = Some(conference);
                            slot
                        }
                        None => {
                            self.conferences.push(Some(conference));
                            self.conferences.len() - 1
                        }
                    };
                    self.conference_ids.insert(conference_id, slot);
                }
            }
            Command::ExpireConference { conference_id } => {
                let Some(slot) = self.conference_ids.remove(&conference_id) else {
                    return;
                };
                if let Some(conference) = self.conferences[slot].take() {
                    for member in conference.members {
                        self.free_endpoint(member);
                    }
                }
                self.free_conferences.push(slot);
            }
            Command::AllocateEndpoint {
                conference_id,
                endpoint_id,
                ice,
            } => {
                let Some(&conf_slot) = self.conference_ids.get(&conference_id) else {
                    return;
                };
                let Some(conference) = self.conferences[conf_slot].as_mut() else {
                    return;
                };
                if conference.by_endpoint_id.contains_key(&endpoint_id) {
                    return;
                }
                let tag = self.next_tag;
                self.next_tag = self.next_tag.wrapping_add(1).max(1);
                let ufrag = ice.ufrag.clone();
                let endpoint = Endpoint::new(
                    conference_id.clone(),
                    endpoint_id.clone(),
                    conf_slot,
                    tag,
                    ice,
                    &self.settings,
                    now,
                );
                let slot = match self.free_endpoints.pop() {
                    Some(slot) => {
                        self.endpoints[slot] = Some(endpoint);
                        slot
                    }
                    None => {
                        self.endpoints.push(Some(endpoint));
                        self.endpoints.len() - 1
                    }
                };
                conference.members.push(slot);
                conference.by_endpoint_id.insert(endpoint_id.clone(), slot);
                self.by_ufrag.insert(ufrag, slot);
                self.by_tag.insert(tag, slot);
                self.events.push(WorkerEvent {
                    conference_id,
                    endpoint_id,
                    state: EndpointState::Allocated,
                    detail: String::new(),
                });
            }
            Command::UpdateEndpoint {
                conference_id,
                endpoint_id,
                transport,
                media,
                sources,
            } => {
                let Some(slot) = self.endpoint_slot(&conference_id, &endpoint_id) else {
                    return;
                };
                let Some(endpoint) = self.endpoints[slot].as_mut() else {
                    return;
                };
                if let Some(transport) = transport {
                    endpoint.set_remote_transport(&transport, now);
                }
                if let Some(media) = media {
                    endpoint.media = media;
                }
                if let Some(sources) = sources {
                    let old: Vec<u32> = endpoint.sources.iter().map(|s| s.plan.ssrc).collect();
                    endpoint.set_sources(&sources, &self.settings);
                    let gone: Vec<u32> = old
                        .into_iter()
                        .filter(|s| endpoint.source_index(*s).is_none())
                        .collect();
                    if let Some(conference) = self.conferences[endpoint.conference].as_mut() {
                        conference.ssrc_owner.retain(|_, owner| *owner != slot);
                        for source in &endpoint.sources {
                            conference.ssrc_owner.insert(source.plan.ssrc, slot);
                        }
                    }
                    self.forget_ssrcs(slot, &gone);
                }
                self.drive(slot, now, out);
            }
            Command::ExpireEndpoint {
                conference_id,
                endpoint_id,
            } => {
                if let Some(slot) = self.endpoint_slot(&conference_id, &endpoint_id) {
                    let ssrcs: Vec<u32> = self.endpoints[slot]
                        .as_ref()
                        .map(|e| e.sources.iter().map(|s| s.plan.ssrc).collect())
                        .unwrap_or_default();
                    self.forget_ssrcs(slot, &ssrcs);
                    if let Some(conference) = self.endpoints[slot]
                        .as_ref()
                        .and_then(|e| self.conferences[e.conference].as_mut())
                    {
                        conference.remove_member(slot);
                    }
                    self.free_endpoint(slot);
                }
            }
        }
    }

    /// The sender at `slot` no longer sends `ssrcs`: the other members drop the SRTP and RTX
    /// state they kept for sending those streams.
    fn forget_ssrcs(&mut self, slot: usize, ssrcs: &[u32]) {
        if ssrcs.is_empty() {
            return;
        }
        let Some(conference) = self.endpoints[slot].as_ref().map(|e| e.conference) else {
            return;
        };
        let Some(conference) = self.conferences[conference].as_ref() else {
            return;
        };
        for &member in &conference.members {
            if member == slot {
                continue;
            }
            if let Some(receiver) = self.endpoints[member].as_mut() {
                receiver.forget_ssrcs(ssrcs);
            }
        }
    }

    fn endpoint_slot(&self, conference_id: &str, endpoint_id: &str) -> Option<usize> {
        let conference = self.conferences[*self.conference_ids.get(conference_id)?].as_ref()?;
        conference.by_endpoint_id.get(endpoint_id).copied()
    }

    /// Drops an endpoint and every route to it; its memory is freed here.
    fn free_endpoint(&mut self, slot: usize) {
        let Some(endpoint) = self.endpoints[slot].take() else {
            return;
        };
        self.by_ufrag
            .remove(&endpoint.ice.local_credentials().ufrag);
        self.by_tag.remove(&endpoint.tag);
        for addr in &endpoint.validated {
            if self.by_address.get(addr) == Some(&slot) {
                self.by_address.remove(addr);
            }
        }
        self.free_endpoints.push(slot);
        self.events.push(WorkerEvent {
            conference_id: endpoint.conference_id,
            endpoint_id: endpoint.endpoint_id,
            state: EndpointState::Expired,
            detail: String::new(),
        });
        self.shrink_if_idle();
    }

    /// With no endpoints left, give back the tables' capacity too, so an idle bridge's
    /// footprint returns to its starting point.
    fn shrink_if_idle(&mut self) {
        if self.by_tag.is_empty() {
            self.by_ufrag.shrink_to_fit();
            self.by_tag.shrink_to_fit();
            self.by_address.shrink_to_fit();
        }
    }

    fn run_timers(&mut self, now: Instant, out: &mut SendBatch) {
        for slot in 0..self.endpoints.len() {
            let due = match &self.endpoints[slot] {
                Some(e) => e.next_timeout().is_some_and(|t| t <= now),
                None => false,
            };
            if due {
                if let Some(endpoint) = self.endpoints[slot].as_mut() {
                    endpoint.handle_timeout(now);
                }
                self.drive(slot, now, out);
            }
        }
    }
}
