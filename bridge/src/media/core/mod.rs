//! The sans-IO media core: every conference and endpoint of one worker, and the tables that
//! route datagrams to them. It takes time and bytes in — a received datagram with its source
//! address, a control command, a timer tick — and gives bytes out (into an [`Outbox`]), events
//! ([`Core::poll_event`]) and its next timeout ([`Core::poll_timeout`]). It holds no socket and
//! reads no clock; its randomness comes from a seeded generator. (OpenSSL's DTLS draws its own.)
//!
//! - `mod.rs`: demultiplexing (STUN, DTLS, SRTP by RFC 7983's first byte), ICE and DTLS driving,
//!   timers, events.
//! - `commands.rs`: conferences and endpoints made, changed and expired.
//! - `rtp_path.rs`: one RTP packet's path from its sender's transport to its router's consumers.
//! - `pacing.rs`: video the receivers' pacers held back, and bandwidth probes filled with
//!   retransmissions.
//! - `rtcp_path.rs`: RTCP from endpoints (terminated: key-frame requests, NACKs, reports, feedback)
//!   and the RTCP the bridge sends (receiver reports, transport-cc feedback, NACKs, REMB).

mod commands;
pub mod describe;
mod pacing;
mod rtcp_path;
mod rtp_path;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::SeedableRng;
use rustc_hash::FxHashMap;
use tutti_dtls::Certificate;
use tutti_ice::stun;

use super::endpoint::{Endpoint, EndpointKind};
use super::outbox::{Outbox, MAX_DATAGRAM};
use super::producer::Producer;
use super::router::{Router, ROUTE_ENTRY_BYTES};
use super::speakers;
use super::stats::{Counters, DropReason};
use super::stats::{ESTIMATE_BOUNDS, HEIGHT_BOUNDS};
use super::transport::{EndpointSettings, TransportChange, LINK_ID_LEN};
use super::{
    ChannelNotice, ConnectionStats, EndpointState, ForwardedEndpoints, MediaKind, WorkerEvent,
};

/// Endpoint timers (ICE checks, DTLS retransmissions) and NACKs to senders run this often.
const TICK_INTERVAL: Duration = Duration::from_millis(5);
/// transport-cc feedback cadence per endpoint.
const FEEDBACK_INTERVAL: Duration = Duration::from_millis(50);
/// Receiver reports (and REMB) cadence.
const REPORT_INTERVAL: Duration = Duration::from_secs(1);
/// Encodings' rates are measured, and every receiver's allocator runs, this often.
const ALLOCATION_INTERVAL: Duration = Duration::from_millis(500);

pub struct Core {
    cert: Certificate,
    settings: EndpointSettings,
    routers: Vec<Option<Router>>,
    router_ids: HashMap<String, usize>,
    endpoints: Vec<Option<Endpoint>>,
    free_endpoints: Vec<usize>,
    free_routers: Vec<usize>,
    /// Local ICE ufrag → endpoint: binding requests before any address is known.
    by_ufrag: HashMap<String, usize>,
    /// Transaction tag → endpoint: STUN responses.
    by_tag: FxHashMap<u32, usize>,
    /// Validated remote address → endpoint: DTLS, RTP and RTCP.
    by_address: FxHashMap<SocketAddr, usize>,
    /// Link id → relay: datagrams from another bridge end with the id of their relay.
    by_link: FxHashMap<u32, usize>,
    /// Addresses of the bridges this one has relays with, and how many relays each.
    relay_peers: FxHashMap<SocketAddr, usize>,
    next_tag: u32,
    /// The last `Command::AllocateEndpoint::allocation` applied.
    allocations: u64,
    counters: Counters,
    events: VecDeque<WorkerEvent>,
    forwarded: VecDeque<ForwardedEndpoints>,
    connection_stats: VecDeque<ConnectionStats>,
    notices: VecDeque<ChannelNotice>,
    /// Senders whose constraints changed in the last allocation (kept between runs).
    heights_changed: Vec<(usize, u32)>,
    changes: Vec<TransportChange>,
    rng: StdRng,
    /// Origin of the microsecond clock used for transport-cc and receive statistics.
    epoch: Instant,
    next_tick: Instant,
    next_feedback: Instant,
    next_reports: Instant,
    next_allocation: Instant,
    last_allocation: Instant,
    next_speakers: Instant,
}

impl Core {
    pub fn new(cert: Certificate, settings: EndpointSettings, seed: u64, now: Instant) -> Core {
        Core {
            cert,
            settings,
            routers: Vec::new(),
            router_ids: HashMap::new(),
            endpoints: Vec::new(),
            free_endpoints: Vec::new(),
            free_routers: Vec::new(),
            by_ufrag: HashMap::new(),
            by_tag: FxHashMap::default(),
            by_address: FxHashMap::default(),
            by_link: FxHashMap::default(),
            relay_peers: FxHashMap::default(),
            next_tag: 1,
            allocations: 0,
            counters: Counters::default(),
            events: VecDeque::new(),
            forwarded: VecDeque::new(),
            connection_stats: VecDeque::new(),
            notices: VecDeque::new(),
            heights_changed: Vec::new(),
            changes: Vec::new(),
            rng: StdRng::seed_from_u64(seed),
            epoch: now,
            next_tick: now,
            next_feedback: now,
            next_reports: now + REPORT_INTERVAL,
            next_allocation: now + ALLOCATION_INTERVAL,
            last_allocation: now,
            next_speakers: now + speakers::BUCKET,
        }
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Counts a datagram the shell dropped before the core saw it.
    pub fn count_drop(&mut self, reason: DropReason) {
        self.counters.drop(reason);
    }

    pub fn conferences(&self) -> usize {
        self.router_ids.len()
    }

    /// The number of the last endpoint allocation applied (see `Command::AllocateEndpoint`).
    pub fn allocations(&self) -> u64 {
        self.allocations
    }

    /// Clients of this bridge (relays and the participants behind them not counted).
    pub fn endpoints(&self) -> usize {
        self.endpoints
            .iter()
            .flatten()
            .filter(|e| e.is_participant())
            .count()
    }

    /// Bytes held by conference and endpoint state, routing entries included.
    pub fn state_bytes(&self) -> usize {
        self.endpoints
            .iter()
            .flatten()
            .map(Endpoint::heap_bytes)
            .sum::<usize>()
            + self
                .routers
                .iter()
                .flatten()
                .map(Router::heap_bytes)
                .sum::<usize>()
            + (self.by_ufrag.len()
                + self.by_tag.len()
                + self.by_address.len()
                + self.by_link.len()
                + self.relay_peers.len())
                * ROUTE_ENTRY_BYTES
    }

    /// Bytes per endpoint, on average: (idle, connected). Idle: not connected (allocated and
    /// waiting for its client, or failed): its own state, its producers (the sources it
    /// signalled) and its two routing entries (ICE username, transaction tag). Connected: the
    /// rest of [`Core::state_bytes`] per connected endpoint, so with what its media costs its
    /// conference (producers and their caches, consumers, routes). 0 when there is no such
    /// endpoint.
    pub fn endpoint_bytes(&self) -> (usize, usize) {
        let (mut idle, mut idle_bytes, mut connected) = (0, 0, 0);
        for endpoint in self.endpoints.iter().flatten() {
            if endpoint.transport.is_connected() {
                connected += 1;
                continue;
            }
            idle += 1;
            let router = self
                .routers
                .get(endpoint.conference)
                .and_then(Option::as_ref);
            let producers: usize = endpoint
                .producers
                .iter()
                .filter_map(|&p| router?.producer(p))
                .map(Producer::heap_bytes)
                .sum();
            idle_bytes += endpoint.heap_bytes() + producers + 2 * ROUTE_ENTRY_BYTES;
        }
        let active_bytes = self.state_bytes().saturating_sub(idle_bytes);
        (
            idle_bytes.checked_div(idle).unwrap_or(0),
            active_bytes.checked_div(connected).unwrap_or(0),
        )
    }

    pub fn poll_event(&mut self) -> Option<WorkerEvent> {
        self.events.pop_front()
    }

    /// A receiver's allocator changed the endpoints it gets video from (to tell it over its
    /// bridge channel).
    pub fn poll_forwarded(&mut self) -> Option<ForwardedEndpoints> {
        self.forwarded.pop_front()
    }

    /// A receiver's bandwidth estimate moved (to tell it over its bridge channel).
    pub fn poll_connection_stats(&mut self) -> Option<ConnectionStats> {
        self.connection_stats.pop_front()
    }

    /// A dominant speaker or a sender's constraints changed (to tell clients over their bridge
    /// channels).
    pub fn poll_channel_notice(&mut self) -> Option<ChannelNotice> {
        self.notices.pop_front()
    }

    /// When `handle_timeout` is next due.
    pub fn poll_timeout(&self) -> Instant {
        self.next_tick
            .min(self.next_feedback)
            .min(self.next_reports)
            .min(self.next_allocation)
            .min(self.next_speakers)
    }

    fn micros(&self, now: Instant) -> i64 {
        now.saturating_duration_since(self.epoch).as_micros() as i64
    }

    /// Runs what is due at `now`: endpoint timers and NACKs every tick, transport-cc feedback,
    /// receiver reports.
    pub fn handle_timeout(&mut self, now: Instant, out: &mut impl Outbox) {
        if now >= self.next_tick {
            self.run_endpoint_timers(now, out);
            self.send_nacks(now, out);
            self.send_probes(now, out);
            self.send_paced(now, out);
            self.next_tick = now + TICK_INTERVAL;
        }
        if now >= self.next_feedback {
            self.send_transport_feedback(out);
            self.next_feedback = now + FEEDBACK_INTERVAL;
        }
        if now >= self.next_reports {
            self.send_receiver_reports(now, out);
            self.next_reports = now + REPORT_INTERVAL;
        }
        if now >= self.next_speakers {
            for conference in 0..self.routers.len() {
                self.tick_speakers(conference, now);
            }
            self.next_speakers = now + speakers::BUCKET;
        }
        if now >= self.next_allocation {
            let elapsed = now.saturating_duration_since(self.last_allocation);
            for router in self.routers.iter_mut().flatten() {
                router.tick_rates(elapsed.as_micros() as i64);
            }
            self.last_allocation = now;
            for conference in 0..self.routers.len() {
                self.allocate_all(conference, now);
            }
            self.sample_allocation();
            self.next_allocation = now + ALLOCATION_INTERVAL;
        }
    }

    /// Closes a bucket of the conference's speech activity; tells its members of a new
    /// dominant speaker and re-runs its allocators (the speaker order ranks their videos), and
    /// picks the loudest audio streams when only those are forwarded.
    fn tick_speakers(&mut self, conference: usize, now: Instant) {
        let Some(router) = self.routers[conference].as_mut() else {
            return;
        };
        let changed = router.tick_speakers();
        if let Some(k) = self.settings.speakers.loudest_audio {
            router.forward_loudest_audio(k);
        }
        if changed.is_none() {
            return;
        }
        let id = |slot: usize| self.endpoints[slot].as_ref().map(|e| &e.participant_id);
        let mut order = router.speaker_order().iter().filter_map(|&s| id(s));
        let (Some(dominant), Some(conference_id)) = (
            order.next(),
            router
                .members
                .first()
                .and_then(|&m| self.endpoints[m].as_ref())
                .map(|e| &e.conference_id),
        ) else {
            return;
        };
        self.notices.push_back(ChannelNotice::DominantSpeaker {
            conference_id: conference_id.clone(),
            dominant: dominant.clone(),
            previous: order.cloned().collect(),
        });
        self.allocate_all(conference, now);
    }

    /// Runs the allocator of every receiver of a conference.
    fn allocate_all(&mut self, conference: usize, now: Instant) {
        let mut i = 0;
        while let Some(&receiver) = self.routers[conference]
            .as_ref()
            .and_then(|router| router.members.get(i))
        {
            self.allocate_one(conference, receiver, now);
            i += 1;
        }
        self.tell_senders(conference);
    }

    /// Runs one receiver's allocator, and tells the senders whose constraints it changed.
    fn allocate(&mut self, conference: usize, receiver: usize, now: Instant) {
        self.allocate_one(conference, receiver, now);
        self.tell_senders(conference);
    }

    /// Queues SenderVideoConstraints for the conference's senders whose figure changed.
    fn tell_senders(&mut self, conference: usize) {
        let Some(router) = self.routers[conference].as_ref() else {
            return;
        };
        self.heights_changed.clear();
        router.sender_heights(&mut self.endpoints, &mut self.heights_changed);
        for &(slot, ideal_height) in &self.heights_changed {
            if let Some(endpoint) = self.endpoints[slot].as_ref() {
                self.notices.push_back(ChannelNotice::SenderConstraints {
                    conference_id: endpoint.conference_id.clone(),
                    endpoint_id: endpoint.endpoint_id.clone(),
                    ideal_height,
                });
            }
        }
    }

    /// Runs one receiver's allocator; queues the news when the endpoints it gets video from
    /// changed.
    fn allocate_one(&mut self, conference: usize, receiver: usize, now: Instant) {
        let now_us = self.micros(now);
        let Some(router) = self.routers[conference].as_mut() else {
            return;
        };
        let last_n_limit = self.settings.speakers.last_n_limit(router.members.len());
        let Some(estimate_bps) = self.endpoints[receiver]
            .as_ref()
            .filter(|e| e.is_participant())
            .map(|e| e.transport.congestion.estimate_bps())
        else {
            return;
        };
        let forwarded = router.allocate(
            receiver,
            &mut self.endpoints,
            estimate_bps,
            last_n_limit,
            now_us,
        );
        let desired_bps = router.desired_bps();
        if let Some(endpoint) = self.endpoints[receiver].as_mut() {
            let congestion = &mut endpoint.transport.congestion;
            congestion.allocated(estimate_bps, desired_bps);
            if let Some(bps) = congestion.report_due(now_us) {
                self.connection_stats.push_back(ConnectionStats {
                    conference_id: endpoint.conference_id.clone(),
                    endpoint_id: endpoint.endpoint_id.clone(),
                    estimated_downlink_bps: bps,
                });
            }
        }
        if let Some(endpoints) = forwarded {
            if let Some(endpoint) = self.endpoints[receiver].as_ref() {
                self.forwarded.push_back(ForwardedEndpoints {
                    conference_id: endpoint.conference_id.clone(),
                    endpoint_id: endpoint.endpoint_id.clone(),
                    endpoints,
                });
            }
        }
    }

    /// Samples every receiver's estimate and the heights its consumers forward.
    fn sample_allocation(&mut self) {
        for router in self.routers.iter().flatten() {
            for &member in &router.members {
                let Some(endpoint) = self.endpoints[member].as_ref() else {
                    continue;
                };
                if endpoint.transport.is_connected() {
                    self.counters.receiver_estimate.observe(
                        &ESTIMATE_BOUNDS,
                        endpoint.transport.congestion.estimate_bps() as f64,
                    );
                }
                for producer in endpoint
                    .producers
                    .iter()
                    .filter_map(|&p| router.producer(p))
                {
                    if producer.kind != MediaKind::Video {
                        continue;
                    }
                    for consumer in &producer.consumers {
                        let Some(e) = consumer
                            .current
                            .and_then(|c| producer.encodings.get(usize::from(c)))
                        else {
                            continue;
                        };
                        if let Some(height) = e.height {
                            self.counters
                                .forwarded_height
                                .observe(&HEIGHT_BOUNDS, f64::from(height));
                        }
                    }
                }
            }
        }
    }

    /// One received datagram: `buf` holds it (and may be written to: SRTP is decrypted in
    /// place), `len` is its length as the network gave it (larger than `buf` if it was cut).
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        from: SocketAddr,
        buf: &mut [u8],
        len: usize,
        out: &mut impl Outbox,
    ) {
        if len > MAX_DATAGRAM || len > buf.len() {
            self.counters.drop(DropReason::Oversized);
            return;
        }
        let Some(&first) = buf.first().filter(|_| len > 0) else {
            self.counters.drop(DropReason::Truncated);
            return;
        };
        match first {
            0..=3 | 20..=63 if self.relay_peers.contains_key(&from) => {
                self.on_relay_datagram(from, buf, len, now, out)
            }
            0..=3 => self.on_stun(from, &buf[..len], now, out),
            20..=63 => self.on_dtls(from, &buf[..len], now, out),
            128..=191 => {
                if len < 8 {
                    self.counters.drop(DropReason::Truncated);
                    return;
                }
                match self.by_address.get(&from) {
                    Some(&slot) => self.on_media(slot, buf, len, from, now, out),
                    // Relays are not in the address table: client media pays no extra lookup.
                    None if self.relay_peers.contains_key(&from) => {
                        self.on_relay_datagram(from, buf, len, now, out)
                    }
                    None => self.counters.drop(DropReason::UnknownAddress),
                }
            }
            _ => self.counters.drop(DropReason::Unrecognized),
        }
    }

    /// A datagram from a bridge this one has relays with: its last bytes name the relay; the
    /// rest is that relay's STUN, DTLS, SRTP or SRTCP. DTLS and media are taken only from the
    /// address the relay's ICE validated.
    fn on_relay_datagram(
        &mut self,
        from: SocketAddr,
        buf: &mut [u8],
        len: usize,
        now: Instant,
        out: &mut impl Outbox,
    ) {
        let Some(len) = len.checked_sub(LINK_ID_LEN).filter(|&n| n >= 8) else {
            self.counters.drop(DropReason::Truncated);
            return;
        };
        let mut id = [0u8; LINK_ID_LEN];
        id.copy_from_slice(&buf[len..len + LINK_ID_LEN]);
        let Some(&slot) = self.by_link.get(&u32::from_be_bytes(id)) else {
            self.counters.drop(DropReason::UnknownLink);
            return;
        };
        let validated = self.endpoints[slot]
            .as_ref()
            .is_some_and(|e| e.transport.validated.contains(&from));
        match buf[0] {
            0..=3 => {
                if !stun::is_stun(&buf[..len]) {
                    self.counters.drop(DropReason::StunMalformed);
                    return;
                }
                self.stun_at(slot, from, &buf[..len], now, out);
            }
            20..=63 if validated => self.dtls_at(slot, from, &buf[..len], now, out),
            20..=63 => self.counters.drop(DropReason::DtlsUnknownAddress),
            128..=191 if validated => self.on_media(slot, buf, len, from, now, out),
            128..=191 => self.counters.drop(DropReason::UnknownAddress),
            _ => self.counters.drop(DropReason::Unrecognized),
        }
    }

    fn on_stun(&mut self, from: SocketAddr, buf: &[u8], now: Instant, out: &mut impl Outbox) {
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
        self.stun_at(slot, from, buf, now, out);
    }

    /// A STUN message for the ICE agent of the endpoint in `slot`.
    fn stun_at(
        &mut self,
        slot: usize,
        from: SocketAddr,
        buf: &[u8],
        now: Instant,
        out: &mut impl Outbox,
    ) {
        let Some(endpoint) = self.endpoints[slot].as_mut() else {
            return;
        };
        if let Err(e) = endpoint.transport.ice.handle_stun(from, buf, now) {
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

    fn on_dtls(&mut self, from: SocketAddr, buf: &[u8], now: Instant, out: &mut impl Outbox) {
        let Some(&slot) = self.by_address.get(&from) else {
            self.counters.drop(DropReason::DtlsUnknownAddress);
            return;
        };
        self.dtls_at(slot, from, buf, now, out);
    }

    /// A DTLS datagram for the endpoint in `slot`, from an address its ICE validated.
    fn dtls_at(
        &mut self,
        slot: usize,
        from: SocketAddr,
        buf: &[u8],
        now: Instant,
        out: &mut impl Outbox,
    ) {
        let Some(endpoint) = self.endpoints[slot].as_mut() else {
            return;
        };
        // Not a sequence of DTLS records: tutti-dtls would fail the session on it, and one
        // datagram from (or spoofed as from) the participant's address must not end its media.
        if !tutti_dtls::is_dtls_record_sequence(buf) {
            self.counters.drop(DropReason::DtlsMalformed);
            return;
        }
        if !endpoint
            .transport
            .handle_dtls(from, buf, &self.cert, &self.settings, now)
        {
            self.counters.drop(DropReason::DtlsNotReady);
        }
        self.drive(slot, now, out);
    }

    /// Lets an endpoint's transport send what it has to and applies what changed.
    fn drive(&mut self, slot: usize, now: Instant, out: &mut impl Outbox) {
        let Some(endpoint) = self.endpoints[slot].as_mut() else {
            return;
        };
        endpoint.transport.drive(
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
                    // A relay is found by its link id, never by address: another relay may
                    // share it.
                    if endpoint.transport.remember_validated(addr) && !endpoint.is_relay() {
                        self.by_address.insert(addr, slot);
                    }
                }
                TransportChange::NewSrtpKeys => {
                    endpoint.history.new_srtp_keys();
                    endpoint.transport.forget_held();
                }
                // The participants behind a relay have no transport: nothing to report.
                TransportChange::State(..) if endpoint.relay().is_some() => {}
                TransportChange::State(state, detail) => {
                    tracing::info!(
                        conference = %endpoint.conference_id,
                        endpoint = %endpoint.endpoint_id,
                        ?state,
                        %detail,
                        "endpoint state"
                    );
                    self.events.push_back(WorkerEvent {
                        conference_id: endpoint.conference_id.clone(),
                        endpoint_id: endpoint.endpoint_id.clone(),
                        state,
                        detail,
                        relay: endpoint.is_relay(),
                    });
                }
            }
        }
    }

    fn run_endpoint_timers(&mut self, now: Instant, out: &mut impl Outbox) {
        for slot in 0..self.endpoints.len() {
            let due = match &self.endpoints[slot] {
                Some(e) => e.transport.next_timeout().is_some_and(|t| t <= now),
                None => false,
            };
            if due {
                if let Some(endpoint) = self.endpoints[slot].as_mut() {
                    endpoint.transport.handle_timeout(now);
                }
                self.drive(slot, now, out);
            }
        }
    }

    /// Drops an endpoint and every route to it; its memory is freed here.
    fn free_endpoint(&mut self, slot: usize) {
        let Some(endpoint) = self.endpoints[slot].take() else {
            return;
        };
        self.by_ufrag
            .remove(&endpoint.transport.ice.local_credentials().ufrag);
        self.by_tag.remove(&endpoint.tag);
        for addr in &endpoint.transport.validated {
            if self.by_address.get(addr) == Some(&slot) {
                self.by_address.remove(addr);
            }
        }
        if let EndpointKind::Relay { link_id, peers } = &endpoint.kind {
            self.by_link.remove(link_id);
            self.forget_relay_peers(peers);
        }
        self.free_endpoints.push(slot);
        if endpoint.relay().is_none() {
            let relay = endpoint.is_relay();
            self.events.push_back(WorkerEvent {
                conference_id: endpoint.conference_id,
                endpoint_id: endpoint.endpoint_id,
                state: EndpointState::Expired,
                detail: String::new(),
                relay,
            });
        }
        // With no endpoints left, give back the tables' capacity too, so an idle bridge's
        // footprint returns to its starting point.
        if self.by_tag.is_empty() {
            self.by_ufrag.shrink_to_fit();
            self.by_tag.shrink_to_fit();
            self.by_address.shrink_to_fit();
            self.by_link.shrink_to_fit();
            self.relay_peers.shrink_to_fit();
        }
    }

    /// A relay's far bridge may send from these addresses (one relay more for each).
    fn add_relay_peers(&mut self, peers: &[SocketAddr]) {
        for &addr in peers {
            *self.relay_peers.entry(addr).or_insert(0) += 1;
        }
    }

    /// One relay fewer with each of these addresses.
    fn forget_relay_peers(&mut self, peers: &[SocketAddr]) {
        for addr in peers {
            if let Some(count) = self.relay_peers.get_mut(addr) {
                *count -= 1;
                if *count == 0 {
                    self.relay_peers.remove(addr);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
