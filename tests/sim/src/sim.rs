//! The driver: sans-IO nodes on a [`SimNetwork`] and a simulated clock.
//!
//! A [`Node`] receives datagrams and timer ticks and writes what it sends into an [`Outbox`];
//! [`Sim`] owns the nodes and the network and advances the clock from event to event: the
//! earliest of the network's next delivery and the nodes' timeouts. Time is `start + simulated
//! duration`; the real clock is never read and nothing sleeps, so a minute of simulated call
//! takes as long as the CPU work it contains.
//!
//! Within one instant the order is fixed: first every datagram due (in delivery order), then
//! the nodes whose timeout is due, in the order they were added. Datagrams a node sends go into
//! the network at that instant, so even a zero-delay link delivers them in a later step.
//!
//! A node whose timeout stays in the past after being handled (it would otherwise be called
//! forever at the same instant) is called at most [`MAX_CALLS_PER_INSTANT`] times per instant;
//! after that its timeout is held off by [`STALL_STEP`] and [`Sim::stalls`] counts it.

use std::any::Any;
use std::collections::HashMap;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::net::{Delivery, SimNetwork};

/// A datagram a node sends: from one of its addresses to any address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    pub from: SocketAddr,
    pub to: SocketAddr,
    pub data: Vec<u8>,
}

/// Where a node puts the datagrams it sends while handling an input.
#[derive(Debug, Default)]
pub struct Outbox {
    transmits: Vec<Transmit>,
}

impl Outbox {
    pub fn new() -> Outbox {
        Outbox::default()
    }

    pub fn push(&mut self, from: SocketAddr, to: SocketAddr, data: Vec<u8>) {
        self.transmits.push(Transmit { from, to, data });
    }

    /// Adds `(to, bytes)` pairs sent from `from`, the shape a core with one socket produces.
    pub fn extend_from(
        &mut self,
        from: SocketAddr,
        datagrams: impl IntoIterator<Item = (SocketAddr, Vec<u8>)>,
    ) {
        for (to, data) in datagrams {
            self.push(from, to, data);
        }
    }

    pub fn drain(&mut self) -> std::vec::Drain<'_, Transmit> {
        self.transmits.drain(..)
    }

    pub fn len(&self) -> usize {
        self.transmits.len()
    }

    pub fn is_empty(&self) -> bool {
        self.transmits.is_empty()
    }
}

/// A sans-IO participant of the simulation: it never reads a clock, only the `now` it is given.
///
/// The bridge's core (`handle_datagram(now, from, buf, len, outbox)`, `handle_timeout(now,
/// outbox)`, `poll_timeout()`) fits by forwarding the calls and moving its `(to, bytes)` outbox
/// into [`Outbox::extend_from`] with its own address.
pub trait Node: Any {
    /// The addresses it receives on; datagrams to other addresses never reach it.
    fn addresses(&self) -> Vec<SocketAddr>;

    /// A datagram arrived at `to` (one of [`Node::addresses`]).
    fn handle_datagram(
        &mut self,
        now: Instant,
        from: SocketAddr,
        to: SocketAddr,
        data: &[u8],
        out: &mut Outbox,
    );

    /// Called at (or after) the instant [`Node::poll_timeout`] returned.
    fn handle_timeout(&mut self, now: Instant, out: &mut Outbox);

    /// When the node next wants [`Node::handle_timeout`]; `None` for never. Called again after
    /// every input and after the test touched the node, so a node that has something to send
    /// right away returns a time not later than its last `now`.
    fn poll_timeout(&mut self) -> Option<Instant>;
}

/// A typed handle to a node in a [`Sim`]: `sim.node(id)` gives the node back as its own type.
pub struct NodeId<N> {
    index: usize,
    _type: PhantomData<fn() -> N>,
}

impl<N> Clone for NodeId<N> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<N> Copy for NodeId<N> {}

impl<N> std::fmt::Debug for NodeId<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NodeId({})", self.index)
    }
}

impl<N> NodeId<N> {
    pub fn index(self) -> usize {
        self.index
    }
}

/// How often a node may be called at one instant before its timeout is held off.
pub const MAX_CALLS_PER_INSTANT: u32 = 64;
/// How far a stalled node's timeout is held off.
pub const STALL_STEP: Duration = Duration::from_millis(1);

struct Slot {
    node: Box<dyn Node>,
    name: String,
    /// Timeouts before this are held off (see the module docs).
    not_before: Option<Instant>,
    /// Calls at `calls_at`.
    calls: u32,
    /// Taken off the network by [`Sim::disconnect`]: no longer driven.
    detached: bool,
    calls_at: Option<Instant>,
}

/// Called for every datagram the network delivers, with whether a node received it.
pub type Observer = Box<dyn FnMut(&Delivery, bool)>;

/// A datagram the network delivered, as [`Sim::trace`] records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TraceEntry {
    pub at: Instant,
    pub from: SocketAddr,
    pub to: SocketAddr,
    pub len: usize,
    /// Whether a node had the destination address.
    pub routed: bool,
}

/// Nodes, the network between them and the simulated clock.
pub struct Sim {
    start: Instant,
    now: Instant,
    /// The network between the nodes; change links at any time between steps.
    pub net: SimNetwork,
    nodes: Vec<Slot>,
    by_addr: HashMap<SocketAddr, usize>,
    outbox: Outbox,
    stalls: u64,
    unroutable: u64,
    events: u64,
    observer: Option<Observer>,
    trace: Option<Vec<TraceEntry>>,
}

impl Sim {
    /// An empty simulation at `start` on a network seeded with `seed`.
    pub fn new(seed: u64, start: Instant) -> Sim {
        Sim::with_network(SimNetwork::new(seed), start)
    }

    pub fn with_network(net: SimNetwork, start: Instant) -> Sim {
        Sim {
            start,
            now: start,
            net,
            nodes: Vec::new(),
            by_addr: HashMap::new(),
            outbox: Outbox::new(),
            stalls: 0,
            unroutable: 0,
            events: 0,
            observer: None,
            trace: None,
        }
    }

    /// Adds a node; it receives on its [`Node::addresses`], which must be free.
    pub fn add<N: Node>(&mut self, name: &str, node: N) -> NodeId<N> {
        let index = self.nodes.len();
        for addr in node.addresses() {
            let previous = self.by_addr.insert(addr, index);
            assert!(
                previous.is_none(),
                "{addr} is already taken by another node"
            );
        }
        self.nodes.push(Slot {
            node: Box::new(node),
            name: name.to_owned(),
            not_before: None,
            calls: 0,
            calls_at: None,
            detached: false,
        });
        NodeId {
            index,
            _type: PhantomData,
        }
    }

    pub fn node<N: Node>(&self, id: NodeId<N>) -> &N {
        let node: &dyn Any = &*self.nodes[id.index].node;
        node.downcast_ref().expect("NodeId of another type")
    }

    /// The node for inspection or to act on it (it is asked for its timeout again afterwards).
    pub fn node_mut<N: Node>(&mut self, id: NodeId<N>) -> &mut N {
        let node: &mut dyn Any = &mut *self.nodes[id.index].node;
        node.downcast_mut().expect("NodeId of another type")
    }

    /// Runs `f` with the node and the current time: `sim.with(a, |p, now| p.request_pli(now, ssrc))`.
    pub fn with<N: Node, R>(&mut self, id: NodeId<N>, f: impl FnOnce(&mut N, Instant) -> R) -> R {
        let now = self.now;
        f(self.node_mut(id), now)
    }

    /// Takes a node off the network, as a participant that vanishes: nothing reaches it any
    /// more (its addresses become unroutable and can be reused by a new node), and it is no
    /// longer called, so it sends nothing either. The node stays for inspection.
    pub fn disconnect<N: Node>(&mut self, id: NodeId<N>) {
        self.by_addr.retain(|_, i| *i != id.index);
        self.nodes[id.index].detached = true;
    }

    pub fn start(&self) -> Instant {
        self.start
    }

    pub fn now(&self) -> Instant {
        self.now
    }

    /// Simulated time since `start`.
    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// Times a node's timeout was held off because it stayed in the past.
    pub fn stalls(&self) -> u64 {
        self.stalls
    }

    /// Datagrams delivered to an address no node has.
    pub fn unroutable(&self) -> u64 {
        self.unroutable
    }

    /// Inputs handled so far (datagrams and timeouts).
    pub fn events(&self) -> u64 {
        self.events
    }

    /// Calls `f` for every datagram the network delivers, with whether a node received it.
    pub fn observe(&mut self, f: impl FnMut(&Delivery, bool) + 'static) {
        self.observer = Some(Box::new(f));
    }

    /// Starts (or stops and clears) recording every delivery in [`Sim::trace`].
    pub fn record_trace(&mut self, on: bool) {
        self.trace = on.then(Vec::new);
    }

    /// The deliveries since [`Sim::record_trace`] was turned on, in delivery order.
    pub fn trace(&self) -> &[TraceEntry] {
        self.trace.as_deref().unwrap_or(&[])
    }

    /// A node's effective next timeout.
    fn timeout_of(slot: &mut Slot) -> Option<Instant> {
        if slot.detached {
            return None;
        }
        let t = slot.node.poll_timeout()?;
        Some(match slot.not_before {
            Some(nb) => t.max(nb),
            None => t,
        })
    }

    /// The time of the next event, if any.
    pub fn next_event_time(&mut self) -> Option<Instant> {
        let mut next = self.net.next_delivery_time();
        for slot in &mut self.nodes {
            if let Some(t) = Self::timeout_of(slot) {
                next = Some(next.map_or(t, |n: Instant| n.min(t)));
            }
        }
        next
    }

    /// Handles everything due at the next event time, if that is not after `limit`, and
    /// returns whether it did.
    pub fn step(&mut self, limit: Instant) -> bool {
        let Some(next) = self.next_event_time() else {
            return false;
        };
        if next > limit {
            return false;
        }
        // A timeout in the past is handled now: the clock never goes back.
        self.now = self.now.max(next);
        let now = self.now;

        while let Some(d) = self.net.poll_delivery(now) {
            let target = self.by_addr.get(&d.to).copied();
            if let Some(f) = &mut self.observer {
                f(&d, target.is_some());
            }
            if let Some(trace) = &mut self.trace {
                trace.push(TraceEntry {
                    at: d.at,
                    from: d.from,
                    to: d.to,
                    len: d.bytes.len(),
                    routed: target.is_some(),
                });
            }
            let Some(index) = target else {
                self.unroutable += 1;
                continue;
            };
            self.events += 1;
            self.nodes[index]
                .node
                .handle_datagram(now, d.from, d.to, &d.bytes, &mut self.outbox);
            self.flush();
        }

        for index in 0..self.nodes.len() {
            let slot = &mut self.nodes[index];
            let due = Self::timeout_of(slot).is_some_and(|t| t <= now);
            if !due {
                continue;
            }
            if slot.calls_at != Some(now) {
                slot.calls_at = Some(now);
                slot.calls = 0;
            }
            slot.calls += 1;
            if slot.calls > MAX_CALLS_PER_INSTANT {
                slot.not_before = Some(now + STALL_STEP);
                self.stalls += 1;
                continue;
            }
            self.events += 1;
            slot.node.handle_timeout(now, &mut self.outbox);
            self.flush();
        }
        true
    }

    fn flush(&mut self) {
        for t in self.outbox.drain() {
            self.net.send(self.now, t.from, t.to, t.data);
        }
    }

    /// Runs every event up to and including `t`, then sets the clock to `t`.
    pub fn run_until(&mut self, t: Instant) {
        while self.step(t) {}
        self.now = self.now.max(t);
    }

    /// Runs for `d` of simulated time.
    pub fn run_for(&mut self, d: Duration) {
        self.run_until(self.now + d);
    }

    /// Runs until `done(self)` holds (checked after every event) or `max` of simulated time
    /// passed; returns whether it holds.
    pub fn run_until_cond(&mut self, max: Duration, mut done: impl FnMut(&Sim) -> bool) -> bool {
        let deadline = self.now + max;
        loop {
            if done(self) {
                return true;
            }
            if !self.step(deadline) {
                self.now = self.now.max(deadline);
                return done(self);
            }
        }
    }

    /// The names of the nodes, in the order they were added.
    pub fn node_names(&self) -> Vec<&str> {
        self.nodes.iter().map(|s| s.name.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::LinkConfig;

    /// Echoes every datagram back and sends a tick to a peer every `interval`.
    struct Pinger {
        addr: SocketAddr,
        peer: SocketAddr,
        interval: Duration,
        next: Instant,
        received: Vec<(Instant, Vec<u8>)>,
    }

    impl Node for Pinger {
        fn addresses(&self) -> Vec<SocketAddr> {
            vec![self.addr]
        }
        fn handle_datagram(
            &mut self,
            now: Instant,
            from: SocketAddr,
            _to: SocketAddr,
            data: &[u8],
            out: &mut Outbox,
        ) {
            self.received.push((now, data.to_vec()));
            if data[0] == b'p' {
                out.push(self.addr, from, b"e".to_vec());
            }
        }
        fn handle_timeout(&mut self, now: Instant, out: &mut Outbox) {
            out.push(self.addr, self.peer, b"p".to_vec());
            self.next = now + self.interval;
        }
        fn poll_timeout(&mut self) -> Option<Instant> {
            Some(self.next)
        }
    }

    /// Always wants to be called in the past.
    struct Stuck;
    impl Node for Stuck {
        fn addresses(&self) -> Vec<SocketAddr> {
            vec![]
        }
        fn handle_datagram(
            &mut self,
            _: Instant,
            _: SocketAddr,
            _: SocketAddr,
            _: &[u8],
            _: &mut Outbox,
        ) {
        }
        fn handle_timeout(&mut self, _: Instant, _: &mut Outbox) {}
        fn poll_timeout(&mut self) -> Option<Instant> {
            Some(Instant::now() - Duration::from_secs(3600))
        }
    }

    #[test]
    fn ping_pong_over_delay() {
        let t0 = Instant::now();
        let (a, b) = ("10.0.0.1:1".parse().unwrap(), "10.0.0.2:1".parse().unwrap());
        let mut sim = Sim::new(1, t0);
        sim.net
            .set_default_link(LinkConfig::new().delay(Duration::from_millis(10)));
        let pinger = |addr, peer, interval| Pinger {
            addr,
            peer,
            interval,
            next: t0,
            received: vec![],
        };
        let pa = sim.add("a", pinger(a, b, Duration::from_millis(100)));
        let pb = sim.add("b", pinger(b, a, Duration::from_secs(1000)));
        sim.run_for(Duration::from_millis(250));
        assert_eq!(sim.now(), t0 + Duration::from_millis(250));
        // a pinged at 0, 100, 200; b at 0. a got b's ping at 10 and echoes at 20, 120, 220.
        let times = |v: &[(Instant, Vec<u8>)]| -> Vec<(u64, u8)> {
            v.iter()
                .map(|(t, d)| ((*t - t0).as_millis() as u64, d[0]))
                .collect()
        };
        assert_eq!(
            times(&sim.node(pa).received),
            [(10, b'p'), (20, b'e'), (120, b'e'), (220, b'e')]
        );
        assert_eq!(
            times(&sim.node(pb).received),
            [(10, b'p'), (20, b'e'), (110, b'p'), (210, b'p')]
        );
        assert_eq!(sim.stalls(), 0);
    }

    #[test]
    fn a_node_stuck_in_the_past_cannot_hang_the_sim() {
        let t0 = Instant::now();
        let mut sim = Sim::new(1, t0);
        sim.add("stuck", Stuck);
        sim.run_for(Duration::from_millis(10));
        assert_eq!(sim.now(), t0 + Duration::from_millis(10));
        assert!(sim.stalls() >= 10, "{}", sim.stalls());
    }

    #[test]
    fn run_until_cond_stops_early() {
        let t0 = Instant::now();
        let (a, b) = ("10.0.0.1:1".parse().unwrap(), "10.0.0.2:1".parse().unwrap());
        let mut sim = Sim::new(1, t0);
        let pa = sim.add(
            "a",
            Pinger {
                addr: a,
                peer: b,
                interval: Duration::from_millis(7),
                next: t0,
                received: vec![],
            },
        );
        sim.add("b", Stuck);
        let _ = pa;
        let hit = sim.run_until_cond(Duration::from_secs(1), |s| {
            s.elapsed() >= Duration::from_millis(30)
        });
        assert!(hit);
        assert!(sim.elapsed() < Duration::from_millis(40));
        // Datagrams to b's (absent) address are unroutable.
        assert!(sim.unroutable() > 0);
    }

    #[test]
    fn a_disconnected_node_neither_receives_nor_sends() {
        let t0 = Instant::now();
        let (a, b) = ("10.0.0.1:1".parse().unwrap(), "10.0.0.2:1".parse().unwrap());
        let mut sim = Sim::new(1, t0);
        let pinger = |addr, peer| Pinger {
            addr,
            peer,
            interval: Duration::from_millis(10),
            next: t0,
            received: vec![],
        };
        let pa = sim.add("a", pinger(a, b));
        let pb = sim.add("b", pinger(b, a));
        sim.run_for(Duration::from_millis(25));
        sim.disconnect(pa);
        let (got_a, got_b) = (sim.node(pa).received.len(), sim.node(pb).received.len());
        sim.run_for(Duration::from_millis(100));
        assert_eq!(sim.node(pa).received.len(), got_a);
        assert_eq!(sim.node(pb).received.len(), got_b);
        assert!(sim.unroutable() > 0);
        // Its address is free for a new node.
        sim.add("a2", pinger(a, b));
    }
}
