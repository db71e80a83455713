//! The same seed gives the same delivery trace, byte for byte and nanosecond for nanosecond
//! (relative to the start), whatever the start instant; another seed gives another trace.
//! Checked on the network alone with a fixed schedule of sends and link changes, and through
//! the driver with nodes that react to what they receive. (SimPeers are not used: str0m's DTLS
//! draws its own randomness, so their bytes differ between runs.)

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tutti_sim::{LinkConfig, Node, Outbox, Sim, SimNetwork};

fn addr(i: u8) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, i], 5000))
}

/// A lossy, jittery, reordering, rate-limited network whose links change half-way.
fn configure(net: &mut SimNetwork) {
    net.set_default_link(
        LinkConfig::new()
            .delay(Duration::from_millis(15))
            .jitter(Duration::from_millis(5))
            .loss(0.03)
            .reorder(0.05, Duration::from_millis(12)),
    );
    net.set_link(
        addr(1).ip(),
        addr(2).ip(),
        LinkConfig::new()
            .delay(Duration::from_millis(30))
            .jitter(Duration::from_millis(2))
            .loss(0.01)
            .rate(400_000, 6_000),
    );
}

fn change(net: &mut SimNetwork) {
    net.update_link(addr(1).ip(), addr(2).ip(), |l| {
        l.rate_bps = Some(200_000);
        l.loss = 0.1;
    });
    net.cut_link(addr(3).ip(), addr(1).ip(), true);
}

fn hash_delivery(
    h: &mut DefaultHasher,
    start: Instant,
    at: Instant,
    from: SocketAddr,
    to: SocketAddr,
    bytes: &[u8],
) {
    (at - start).hash(h);
    from.hash(h);
    to.hash(h);
    bytes.hash(h);
}

/// Three hosts sending each other datagrams of fixed sizes every millisecond for two seconds.
fn network_trace(seed: u64, start: Instant) -> (u64, usize) {
    let mut net = SimNetwork::new(seed);
    configure(&mut net);
    let mut h = DefaultHasher::new();
    let mut delivered = 0;
    for ms in 0..2_000u64 {
        let now = start + Duration::from_millis(ms);
        if ms == 1_000 {
            change(&mut net);
        }
        for (i, (from, to)) in [(1, 2), (2, 1), (1, 3), (3, 1), (2, 3)]
            .into_iter()
            .enumerate()
        {
            let len = 100 + ((ms as usize * 7 + i * 131) % 1_100);
            let bytes: Vec<u8> = (0..len).map(|k| (k as u64 ^ ms) as u8).collect();
            net.send(now, addr(from), addr(to), bytes);
        }
        while let Some(d) = net.poll_delivery(now) {
            hash_delivery(&mut h, start, d.at, d.from, d.to, &d.bytes);
            delivered += 1;
        }
    }
    (h.finish(), delivered)
}

#[test]
fn network_trace_depends_only_on_the_seed() {
    let (first, n) = network_trace(7, Instant::now());
    let later = Instant::now() + Duration::from_secs(1234);
    assert_eq!(network_trace(7, later), (first, n));
    assert!(n > 5_000, "{n}");
    let (other, _) = network_trace(8, Instant::now());
    assert_ne!(other, first);
}

/// Sends a numbered datagram to each peer every `interval` and answers every datagram it
/// receives with a shorter one, so that what it sends depends on what the network delivered.
struct Chatter {
    me: SocketAddr,
    peers: Vec<SocketAddr>,
    interval: Duration,
    next: Instant,
    counter: u32,
}

impl Node for Chatter {
    fn addresses(&self) -> Vec<SocketAddr> {
        vec![self.me]
    }

    fn handle_datagram(
        &mut self,
        _now: Instant,
        from: SocketAddr,
        _to: SocketAddr,
        data: &[u8],
        out: &mut Outbox,
    ) {
        if data.len() > 60 {
            out.push(self.me, from, data[..data.len() / 2].to_vec());
        }
    }

    fn handle_timeout(&mut self, now: Instant, out: &mut Outbox) {
        for &peer in &self.peers {
            self.counter += 1;
            let len = 200 + (self.counter as usize * 37) % 1_000;
            out.push(self.me, peer, vec![self.counter as u8; len]);
        }
        self.next = now + self.interval;
    }

    fn poll_timeout(&mut self) -> Option<Instant> {
        Some(self.next)
    }
}

fn sim_trace(seed: u64, start: Instant) -> (u64, usize) {
    let mut sim = Sim::new(seed, start);
    configure(&mut sim.net);
    for (i, interval_ms) in [(1u8, 3u64), (2, 5), (3, 7)] {
        let peers = (1..=3).filter(|&j| j != i).map(addr).collect();
        sim.add(
            &format!("n{i}"),
            Chatter {
                me: addr(i),
                peers,
                interval: Duration::from_millis(interval_ms),
                next: start,
                counter: 0,
            },
        );
    }
    sim.record_trace(true);
    sim.run_for(Duration::from_secs(1));
    change(&mut sim.net);
    sim.run_for(Duration::from_secs(1));
    let mut h = DefaultHasher::new();
    for d in sim.trace() {
        (d.at - start, d.from, d.to, d.len, d.routed).hash(&mut h);
    }
    (h.finish(), sim.trace().len())
}

#[test]
fn simulation_trace_depends_only_on_the_seed() {
    let (first, n) = sim_trace(99, Instant::now());
    assert_eq!(
        sim_trace(99, Instant::now() + Duration::from_secs(77)),
        (first, n)
    );
    assert!(n > 1_000, "{n}");
    assert_ne!(sim_trace(100, Instant::now()).0, first);
}
