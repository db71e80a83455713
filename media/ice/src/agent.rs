//! The ICE agent of one endpoint. The bridge has a single local host candidate (its socket),
//! so a candidate pair is identified by its remote address alone.

use std::collections::VecDeque;
use std::mem::size_of;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::stun::{self, Class, IntegrityKey, Message, MessageWriter};
use crate::{AgentConfig, Credentials, Error, Event};

/// Remote candidates kept per agent; more are ignored so a peer cannot grow our memory.
const MAX_REMOTE_CANDIDATES: usize = 32;
/// Responses waiting for `poll_transmit`; requests beyond this are dropped (the peer retries).
const MAX_PENDING_RESPONSES: usize = 16;
/// Events waiting for `poll_event`; the oldest is dropped when an owner never polls.
const MAX_PENDING_EVENTS: usize = 64;
/// RFC 8445 §14.3: initial retransmission timeout of a connectivity check.
const INITIAL_RTO: Duration = Duration::from_millis(100);
/// RFC 5389 Rc: transmissions of one request before giving up.
const MAX_TRANSMISSIONS: u32 = 7;
/// RFC 5389 Rm: the wait after the last transmission, in multiples of the initial RTO.
const LAST_WAIT_FACTOR: u32 = 16;
/// PRIORITY we announce: type preference 110 (peer-reflexive), local preference 65535,
/// component 1 (RFC 8445 §5.1.2.1).
const LOCAL_PRIORITY: u32 = (110 << 24) | (65535 << 8) | 255;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PairState {
    Waiting,
    InProgress,
    Succeeded,
    Failed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TxKind {
    /// Ordinary or triggered connectivity check.
    Check,
    /// Check carrying USE-CANDIDATE (controlling role).
    Nominate,
    /// RFC 7675 consent check on the selected pair; not retransmitted, the next one replaces it.
    Consent,
}

#[derive(Clone, Copy, Debug)]
struct Transaction {
    id: [u8; 12],
    kind: TxKind,
    transmissions: u32,
    rto: Duration,
    /// When to retransmit, or give up after the last transmission.
    deadline: Instant,
    needs_send: bool,
    /// Role announced in the last transmission; a 487 answer means "switch away from it".
    sent_controlling: bool,
}

#[derive(Clone, Copy, Debug)]
struct Pair {
    addr: SocketAddr,
    remote_priority: u32,
    state: PairState,
    /// A triggered check (RFC 8445 §7.3.1.4) is due; it goes before ordinary checks.
    triggered: bool,
    /// The next check on this pair carries USE-CANDIDATE.
    nominate: bool,
    /// The controlling peer sent USE-CANDIDATE for this pair.
    peer_nominated: bool,
    /// `Event::AddressValidated` was emitted for this pair.
    validated: bool,
    tx: Option<Transaction>,
}

#[derive(Clone, Copy, Debug)]
struct PendingResponse {
    to: SocketAddr,
    id: [u8; 12],
    role_conflict: bool,
}

struct Remote {
    credentials: Credentials,
    key: IntegrityKey,
}

/// ICE agent for one endpoint (RFC 8445 full agent, single component, UDP only), controlling
/// by default, with RFC 7675 consent freshness on the selected pair.
pub struct IceAgent {
    config: AgentConfig,
    local: Credentials,
    local_key: IntegrityKey,
    remote: Option<Remote>,
    controlling: bool,
    tiebreaker: u64,
    /// Seeded from `AgentConfig::seed`.
    rng: StdRng,
    pairs: Vec<Pair>,
    responses: VecDeque<PendingResponse>,
    events: VecDeque<Event>,
    /// Earliest time the next paced (Ta) transmission may start.
    next_paced: Instant,
    selected: Option<SocketAddr>,
    connect_deadline: Option<Instant>,
    failed: bool,
    last_alive: Instant,
    next_consent: Instant,
    timed_out: bool,
}

impl IceAgent {
    pub fn new(config: AgentConfig, local: Credentials, now: Instant) -> IceAgent {
        let local_key = IntegrityKey::new(&local.pwd);
        let mut rng = StdRng::seed_from_u64(config.seed);
        IceAgent {
            controlling: config.controlling,
            config,
            local,
            local_key,
            remote: None,
            tiebreaker: rng.random(),
            rng,
            pairs: Vec::with_capacity(MAX_REMOTE_CANDIDATES),
            responses: VecDeque::with_capacity(MAX_PENDING_RESPONSES),
            events: VecDeque::with_capacity(MAX_PENDING_EVENTS),
            next_paced: now,
            selected: None,
            connect_deadline: None,
            failed: false,
            last_alive: now,
            next_consent: now,
            timed_out: false,
        }
    }

    pub fn local_credentials(&self) -> &Credentials {
        &self.local
    }

    /// Enables checking. Credentials that differ from the current ones are an ICE restart:
    /// pairs and the selection are forgotten and the connect timer starts again. Checks start
    /// at the next `handle_timeout` (`poll_timeout` reports it due), so candidates added right
    /// after this call are checked in priority order.
    pub fn set_remote_credentials(&mut self, ufrag: &str, pwd: &str, now: Instant) {
        if let Some(remote) = &self.remote {
            if remote.credentials.ufrag == ufrag && remote.credentials.pwd == pwd {
                return;
            }
            self.pairs.clear();
            self.selected = None;
            self.timed_out = false;
            self.controlling = self.config.controlling;
        }
        self.remote = Some(Remote {
            credentials: Credentials {
                ufrag: ufrag.to_owned(),
                pwd: pwd.to_owned(),
            },
            key: IntegrityKey::new(pwd),
        });
        self.failed = false;
        self.connect_deadline = Some(now + self.config.connect_timeout);
    }

    /// UDP candidate (the caller drops TCP ones). Duplicates ignored. Like
    /// `set_remote_credentials`, its check is started by the next `handle_timeout`.
    pub fn add_remote_candidate(&mut self, addr: SocketAddr, priority: u32, now: Instant) {
        if self.pairs.iter().any(|p| p.addr == addr) || self.pairs.len() >= MAX_REMOTE_CANDIDATES {
            return;
        }
        self.pairs.push(Pair::new(addr, priority));
        // An idle agent's pacing restarts from the candidate's arrival.
        self.next_paced = self.next_paced.max(now);
    }

    /// Any STUN message received from `from` for this agent.
    pub fn handle_stun(&mut self, from: SocketAddr, buf: &[u8], now: Instant) -> Result<(), Error> {
        let msg = Message::parse(buf)?;
        if msg.method != 1 {
            return Err(Error::Unsupported);
        }
        match msg.class {
            Class::Request => self.handle_request(from, &msg, now)?,
            // Binding indications are keepalives: valid, and nothing to do.
            Class::Indication => return Ok(()),
            Class::SuccessResponse | Class::ErrorResponse => {
                self.handle_response(from, &msg, now)?
            }
        }
        self.drive(now);
        Ok(())
    }

    /// An authenticated (SRTP-verified) media packet arrived from `from`: refreshes liveness.
    pub fn note_media_received(&mut self, from: SocketAddr, now: Instant) {
        if self.selected == Some(from) {
            self.last_alive = now;
        }
    }

    /// Writes the next STUN message to send into `buf` (>= 548 bytes); returns (destination, length).
    pub fn poll_transmit(&mut self, buf: &mut [u8]) -> Option<(SocketAddr, usize)> {
        while let Some(r) = self.responses.pop_front() {
            let written = if r.role_conflict {
                stun::write_binding_error(
                    buf,
                    &r.id,
                    stun::ERROR_ROLE_CONFLICT,
                    "Role Conflict",
                    &self.local_key,
                )
            } else {
                stun::write_binding_success(buf, &r.id, r.to, &self.local_key)
            };
            if let Ok(n) = written {
                return Some((r.to, n));
            }
        }
        let remote = self.remote.as_ref()?;
        for pair in &mut self.pairs {
            let Some(tx) = pair.tx.as_mut().filter(|tx| tx.needs_send) else {
                continue;
            };
            tx.needs_send = false;
            tx.sent_controlling = self.controlling;
            let role = if self.controlling {
                stun::Role::Controlling(self.tiebreaker)
            } else {
                stun::Role::Controlled(self.tiebreaker)
            };
            if let Ok(n) = write_check(buf, tx, role, &self.local.ufrag, remote) {
                return Some((pair.addr, n));
            }
        }
        None
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut earliest: Option<Instant> = None;
        let mut consider = |t: Instant| {
            earliest = Some(earliest.map_or(t, |e| e.min(t)));
        };
        self.pairs
            .iter()
            .filter_map(|p| p.tx.map(|tx| tx.deadline))
            .for_each(&mut consider);
        if self.next_paced_pair().is_some() {
            consider(self.next_paced);
        }
        if self.selected.is_none() && !self.failed {
            if let Some(deadline) = self.connect_deadline {
                consider(deadline);
            }
        }
        if self.selected.is_some() && !self.timed_out {
            consider(self.next_consent);
            consider(self.last_alive + self.config.consent_timeout);
        }
        earliest
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.drive(now);
    }

    pub fn selected(&self) -> Option<SocketAddr> {
        self.selected
    }

    pub fn is_controlling(&self) -> bool {
        self.controlling
    }

    /// Heap memory owned by this agent (capacities, not lengths: they are reserved up front).
    pub fn heap_bytes(&self) -> usize {
        let remote = self.remote.as_ref().map_or(0, |r| {
            r.credentials.ufrag.capacity() + r.credentials.pwd.capacity()
        });
        self.pairs.capacity() * size_of::<Pair>()
            + self.responses.capacity() * size_of::<PendingResponse>()
            + self.events.capacity() * size_of::<Event>()
            + self.local.ufrag.capacity()
            + self.local.pwd.capacity()
            + remote
    }

    fn handle_request(
        &mut self,
        from: SocketAddr,
        msg: &Message,
        now: Instant,
    ) -> Result<(), Error> {
        msg.check_fingerprint()?;
        let username = msg.username.ok_or(Error::UnknownUsername)?;
        let colon = username
            .iter()
            .position(|&b| b == b':')
            .ok_or(Error::UnknownUsername)?;
        let (ours, theirs) = (&username[..colon], &username[colon + 1..]);
        if ours != self.local.ufrag.as_bytes() {
            return Err(Error::UnknownUsername);
        }
        // Integrity before the remote half: a sender without our password is reported as
        // such whatever it claims to be; an authentic one with a stale ufrag as unknown.
        msg.check_integrity(&self.local_key)?;
        if let Some(remote) = &self.remote {
            if theirs != remote.credentials.ufrag.as_bytes() {
                return Err(Error::UnknownUsername);
            }
        }

        // RFC 8445 §7.3.1.1: the larger tiebreaker ends up controlling. `Some(true)`: we keep
        // our role and answer 487; `Some(false)`: we switch and answer normally.
        let keep_role = match (self.controlling, msg.ice_controlling, msg.ice_controlled) {
            (true, Some(theirs), _) => Some(self.tiebreaker >= theirs),
            (false, _, Some(theirs)) => Some(self.tiebreaker < theirs),
            _ => None,
        };
        match keep_role {
            Some(true) => {
                self.queue_response(from, msg.transaction_id, true);
                return Ok(());
            }
            Some(false) => self.set_role(!self.controlling),
            None => {}
        }

        self.queue_response(from, msg.transaction_id, false);
        let Some(i) = self.find_or_learn(from, msg.priority.unwrap_or(LOCAL_PRIORITY)) else {
            return Ok(());
        };
        self.mark_validated(i);
        if self.selected == Some(from) {
            self.last_alive = now;
        }
        let pair = &mut self.pairs[i];
        if matches!(pair.state, PairState::Waiting | PairState::Failed) {
            pair.state = PairState::Waiting;
            pair.triggered = true;
        }
        if !self.controlling && msg.use_candidate {
            pair.peer_nominated = true;
            if pair.state == PairState::Succeeded {
                self.select(i, now);
            }
        }
        Ok(())
    }

    fn handle_response(
        &mut self,
        from: SocketAddr,
        msg: &Message,
        now: Instant,
    ) -> Result<(), Error> {
        msg.check_fingerprint()?;
        let i = self
            .pairs
            .iter()
            .position(|p| p.addr == from && p.tx.is_some_and(|tx| tx.id == msg.transaction_id))
            .ok_or(Error::UnknownTransaction)?;
        let remote = self.remote.as_ref().ok_or(Error::NoRemoteCredentials)?;
        msg.check_integrity(&remote.key)?;
        let Some(tx) = self.pairs[i].tx.take() else {
            return Err(Error::UnknownTransaction);
        };
        if self.selected == Some(from) {
            self.last_alive = now;
        }
        if tx.kind == TxKind::Consent {
            return Ok(());
        }
        if msg.class == Class::ErrorResponse {
            if msg.error_code == Some(stun::ERROR_ROLE_CONFLICT) {
                // RFC 8445 §7.2.5.1: take the role opposite to the one the request claimed
                // (a request from the peer may already have made us switch), then retry.
                if self.controlling == tx.sent_controlling {
                    self.set_role(!tx.sent_controlling);
                }
                let pair = &mut self.pairs[i];
                if pair.state != PairState::Succeeded {
                    pair.state = PairState::Waiting;
                }
                pair.triggered = true;
            } else {
                self.check_failed(i);
            }
            return Ok(());
        }
        self.mark_validated(i);
        self.pairs[i].state = PairState::Succeeded;
        if self.controlling {
            if tx.kind == TxKind::Nominate {
                self.pairs[i].nominate = false;
                self.select(i, now);
            } else if self.selected.is_none() && !self.nomination_in_progress() {
                self.pairs[i].nominate = true;
                self.pairs[i].triggered = true;
            }
        } else if self.pairs[i].peer_nominated {
            self.select(i, now);
        }
        Ok(())
    }

    /// Runs timers: retransmissions, connect and consent timeouts, and one paced check.
    fn drive(&mut self, now: Instant) {
        for i in 0..self.pairs.len() {
            let Some(tx) = self.pairs[i].tx.as_mut() else {
                continue;
            };
            if now < tx.deadline {
                continue;
            }
            if tx.kind != TxKind::Consent && tx.transmissions < MAX_TRANSMISSIONS {
                tx.transmissions += 1;
                tx.rto *= 2;
                tx.needs_send = true;
                tx.deadline = now
                    + if tx.transmissions == MAX_TRANSMISSIONS {
                        INITIAL_RTO * LAST_WAIT_FACTOR
                    } else {
                        tx.rto
                    };
                continue;
            }
            let kind = tx.kind;
            self.pairs[i].tx = None;
            if kind != TxKind::Consent {
                self.check_failed(i);
            }
        }

        if self.selected.is_none()
            && !self.failed
            && self.connect_deadline.is_some_and(|d| now >= d)
        {
            self.failed = true;
            self.push_event(Event::Failed);
        }

        if let Some(selected) = self.selected.filter(|_| !self.timed_out) {
            if now >= self.last_alive + self.config.consent_timeout {
                self.timed_out = true;
                self.push_event(Event::TimedOut);
            } else if now >= self.next_consent {
                self.next_consent = now + self.jittered_consent_interval();
                if let Some(pair) = self.pairs.iter_mut().find(|p| p.addr == selected) {
                    if pair.tx.is_none_or(|tx| tx.kind == TxKind::Consent) {
                        pair.tx = Some(Transaction {
                            id: new_transaction_id(self.config.transaction_tag, &mut self.rng),
                            kind: TxKind::Consent,
                            transmissions: 1,
                            rto: INITIAL_RTO,
                            deadline: now + self.config.consent_timeout,
                            needs_send: true,
                            sent_controlling: self.controlling,
                        });
                    }
                }
            }
        }

        if now >= self.next_paced {
            if let Some(i) = self.next_paced_pair() {
                self.next_paced = now + self.config.check_interval;
                let pair = &mut self.pairs[i];
                pair.triggered = false;
                if pair.state != PairState::Succeeded {
                    pair.state = PairState::InProgress;
                }
                pair.tx = Some(Transaction {
                    id: new_transaction_id(self.config.transaction_tag, &mut self.rng),
                    kind: if pair.nominate {
                        TxKind::Nominate
                    } else {
                        TxKind::Check
                    },
                    transmissions: 1,
                    rto: INITIAL_RTO,
                    deadline: now + INITIAL_RTO,
                    needs_send: true,
                    sent_controlling: self.controlling,
                });
            }
        }
    }

    /// The pair whose check is next under Ta pacing: triggered checks first, then ordinary
    /// checks (only until a pair is selected), each by descending pair priority.
    fn next_paced_pair(&self) -> Option<usize> {
        if self.remote.is_none() || self.failed {
            return None;
        }
        let best = |want_triggered: bool| {
            self.pairs
                .iter()
                .enumerate()
                .filter(|(_, p)| p.tx.is_none())
                .filter(|(_, p)| {
                    if want_triggered {
                        p.triggered
                    } else {
                        p.state == PairState::Waiting
                    }
                })
                .max_by_key(|(_, p)| self.pair_priority(p.remote_priority))
                .map(|(i, _)| i)
        };
        best(true).or_else(|| {
            if self.selected.is_none() {
                best(false)
            } else {
                None
            }
        })
    }

    /// RFC 8445 §6.1.2.3 pair priority; our side always uses `LOCAL_PRIORITY`.
    fn pair_priority(&self, remote_priority: u32) -> u64 {
        let (g, d) = if self.controlling {
            (u64::from(LOCAL_PRIORITY), u64::from(remote_priority))
        } else {
            (u64::from(remote_priority), u64::from(LOCAL_PRIORITY))
        };
        (g.min(d) << 32) + 2 * g.max(d) + u64::from(g > d)
    }

    fn nomination_in_progress(&self) -> bool {
        self.pairs
            .iter()
            .any(|p| p.nominate || p.tx.is_some_and(|tx| tx.kind == TxKind::Nominate))
    }

    fn check_failed(&mut self, i: usize) {
        let pair = &mut self.pairs[i];
        pair.state = PairState::Failed;
        pair.nominate = false;
        pair.triggered = false;
        self.nominate_best_if_idle();
    }

    /// Controlling and nothing selected or being nominated: nominate the best valid pair.
    fn nominate_best_if_idle(&mut self) {
        if !self.controlling || self.selected.is_some() || self.nomination_in_progress() {
            return;
        }
        let best = self
            .pairs
            .iter()
            .enumerate()
            .filter(|(_, p)| p.state == PairState::Succeeded)
            .max_by_key(|(_, p)| self.pair_priority(p.remote_priority))
            .map(|(i, _)| i);
        if let Some(i) = best {
            self.pairs[i].nominate = true;
            self.pairs[i].triggered = true;
        }
    }

    fn set_role(&mut self, controlling: bool) {
        self.controlling = controlling;
        if controlling {
            self.nominate_best_if_idle();
        } else {
            for pair in &mut self.pairs {
                pair.nominate = false;
            }
        }
    }

    fn select(&mut self, i: usize, now: Instant) {
        let addr = self.pairs[i].addr;
        // After `Event::Failed` the owner tears the endpoint down; only a restart revives it.
        if self.selected == Some(addr) || self.failed {
            return;
        }
        // The controlled side follows the highest-priority nomination (RFC 8445 §8.1.1).
        if let Some(current) = self.selected {
            let current_priority = self
                .pairs
                .iter()
                .find(|p| p.addr == current)
                .map_or(0, |p| self.pair_priority(p.remote_priority));
            if self.pair_priority(self.pairs[i].remote_priority) <= current_priority {
                return;
            }
        }
        self.selected = Some(addr);
        self.connect_deadline = None;
        self.timed_out = false;
        self.last_alive = now;
        self.next_consent = now + self.jittered_consent_interval();
        self.push_event(Event::Selected(addr));
    }

    fn mark_validated(&mut self, i: usize) {
        if !self.pairs[i].validated {
            self.pairs[i].validated = true;
            let addr = self.pairs[i].addr;
            self.push_event(Event::AddressValidated(addr));
        }
    }

    /// The pair for `addr`, learning it as peer-reflexive when new. When the table is full a
    /// failed pair is replaced; otherwise the address is not tracked.
    fn find_or_learn(&mut self, addr: SocketAddr, priority: u32) -> Option<usize> {
        if let Some(i) = self.pairs.iter().position(|p| p.addr == addr) {
            return Some(i);
        }
        if self.pairs.len() < MAX_REMOTE_CANDIDATES {
            self.pairs.push(Pair::new(addr, priority));
            return Some(self.pairs.len() - 1);
        }
        let i = self
            .pairs
            .iter()
            .position(|p| p.state == PairState::Failed && Some(p.addr) != self.selected)?;
        self.pairs[i] = Pair::new(addr, priority);
        Some(i)
    }

    fn queue_response(&mut self, to: SocketAddr, id: [u8; 12], role_conflict: bool) {
        if self.responses.len() < MAX_PENDING_RESPONSES {
            self.responses.push_back(PendingResponse {
                to,
                id,
                role_conflict,
            });
        }
    }

    fn push_event(&mut self, event: Event) {
        if self.events.len() >= MAX_PENDING_EVENTS {
            self.events.pop_front();
        }
        self.events.push_back(event);
    }

    fn jittered_consent_interval(&mut self) -> Duration {
        self.config
            .consent_interval
            .mul_f64(self.rng.random_range(0.8..=1.2))
    }
}

impl Pair {
    fn new(addr: SocketAddr, remote_priority: u32) -> Pair {
        Pair {
            addr,
            remote_priority,
            state: PairState::Waiting,
            triggered: false,
            nominate: false,
            peer_nominated: false,
            validated: false,
            tx: None,
        }
    }
}

fn new_transaction_id(tag: u32, rng: &mut StdRng) -> [u8; 12] {
    let mut id = [0u8; 12];
    id[..4].copy_from_slice(&tag.to_be_bytes());
    rng.fill(&mut id[4..]);
    id
}

/// Connectivity check: USERNAME "<remote ufrag>:<local ufrag>", PRIORITY, role, optional
/// USE-CANDIDATE, MESSAGE-INTEGRITY with the remote password, FINGERPRINT.
fn write_check(
    buf: &mut [u8],
    tx: &Transaction,
    role: stun::Role,
    local_ufrag: &str,
    remote: &Remote,
) -> Result<usize, stun::BufferTooSmall> {
    let mut w = MessageWriter::new(buf, stun::BINDING_REQUEST, &tx.id)?;
    w.username_pair(remote.credentials.ufrag.as_bytes(), local_ufrag.as_bytes())?;
    w.priority(LOCAL_PRIORITY)?;
    match role {
        stun::Role::Controlling(t) => w.ice_controlling(t)?,
        stun::Role::Controlled(t) => w.ice_controlled(t)?,
    }
    if tx.kind == TxKind::Nominate {
        w.use_candidate()?;
    }
    w.message_integrity(&remote.key)?;
    w.finish_with_fingerprint()
}
