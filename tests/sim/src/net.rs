//! A simulated IP network: datagrams between hosts, over directional links with delay, jitter,
//! random loss, reordering and a bandwidth cap with a tail-drop queue, deterministic from a seed.
//!
//! # Model
//!
//! A link is the path from one IP to another (`from → to`; the reverse direction is another
//! link). Pairs without their own [`LinkConfig`] follow the network's default, which can also
//! change. A datagram sent at `now` goes through these stages, in order:
//!
//! 1. **cut**: a cut link drops everything (`cut_dropped`);
//! 2. **loss**: dropped with probability `loss` (`lost`);
//! 3. **bottleneck** (only with `rate_bps`): a FIFO in front of a serializer of `rate_bps`. The
//!    packet waits until the packets before it have left, then takes
//!    `(len + PACKET_OVERHEAD) * 8 / rate_bps` to serialize. If the bytes still waiting or in
//!    service plus this packet exceed `queue_bytes` it is tail-dropped (`queue_dropped`).
//!    With `burst_bytes` the serializer is a token bucket (as Linux's `tc … tbf`): tokens
//!    accrue at `rate_bps` while the link is idle, up to `burst_bytes`, and a packet at the
//!    head leaves as soon as there are tokens for it (at once after an idle spell, a burst of
//!    up to `burst_bytes` passing at line speed);
//! 4. **propagation**: `delay` plus a uniformly random `0..=jitter`, plus `reorder_delay` with
//!    probability `reorder` (which lets later packets overtake it). Jitter alone may reorder
//!    packets that are closer together than the jitter, as with Linux netem.
//!
//! A datagram is delivered at the resulting time unless the link is cut at that moment (then
//! it counts as `cut_dropped`: cutting a link also loses what is on the wire).
//!
//! Every parameter can be changed at any simulated time with [`SimNetwork::set_link`] or
//! [`SimNetwork::update_link`]; packets already past the bottleneck keep their delivery time,
//! packets sent afterwards see the new parameters.
//!
//! # Determinism
//!
//! Each link draws from its own random generator, seeded from the network's seed and the link's
//! two IPs, so traffic on one link never changes the loss or jitter pattern of another.
//! Deliveries due at the same instant come out in the order they were sent. Given the same seed
//! and the same sequence of `send` and `set_link` calls at the same times, the delivery trace is
//! identical.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Bytes of IPv4 + UDP header counted per datagram against a link's rate cap.
pub const PACKET_OVERHEAD: usize = 28;

/// The behaviour of one direction of a path. Build with the chainable setters:
/// `LinkConfig::new().delay(ms(20)).loss(0.05)`.
#[derive(Clone, Debug, PartialEq)]
pub struct LinkConfig {
    /// Fixed one-way propagation delay.
    pub delay: Duration,
    /// Upper bound of a uniformly random extra delay per packet.
    pub jitter: Duration,
    /// Probability (0..=1) that a packet is lost.
    pub loss: f64,
    /// Probability (0..=1) that a packet is held back by `reorder_delay`.
    pub reorder: f64,
    /// Extra delay of a reordered packet.
    pub reorder_delay: Duration,
    /// Bottleneck rate in bits per second (IP + UDP headers included); `None` is unlimited.
    pub rate_bps: Option<u64>,
    /// Bytes the bottleneck queue holds (the packet in service included) before tail drop.
    pub queue_bytes: usize,
    /// The bottleneck's token bucket depth (bytes it lets through at once after being idle);
    /// 0: every packet takes its time at `rate_bps`.
    pub burst_bytes: usize,
    /// Drops every packet while set.
    pub cut: bool,
}

impl Default for LinkConfig {
    fn default() -> Self {
        LinkConfig::new()
    }
}

impl LinkConfig {
    /// A perfect link: no delay, no loss, unlimited rate (queue of 64 KiB once a rate is set).
    pub fn new() -> LinkConfig {
        LinkConfig {
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
            loss: 0.0,
            reorder: 0.0,
            reorder_delay: Duration::from_millis(10),
            rate_bps: None,
            queue_bytes: 64 * 1024,
            burst_bytes: 0,
            cut: false,
        }
    }

    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    pub fn jitter(mut self, jitter: Duration) -> Self {
        self.jitter = jitter;
        self
    }

    pub fn loss(mut self, probability: f64) -> Self {
        self.loss = probability;
        self
    }

    /// Holds back a packet by `extra` with `probability`.
    pub fn reorder(mut self, probability: f64, extra: Duration) -> Self {
        self.reorder = probability;
        self.reorder_delay = extra;
        self
    }

    /// A bottleneck of `bps` with a queue of `queue_bytes`.
    pub fn rate(mut self, bps: u64, queue_bytes: usize) -> Self {
        self.rate_bps = Some(bps);
        self.queue_bytes = queue_bytes;
        self
    }

    /// A token bucket bottleneck (`tc … tbf rate bps burst burst_bytes`): a rate, its queue,
    /// and the bytes it lets through at once after being idle.
    pub fn token_bucket(mut self, bps: u64, queue_bytes: usize, burst_bytes: usize) -> Self {
        self.rate_bps = Some(bps);
        self.queue_bytes = queue_bytes;
        self.burst_bytes = burst_bytes;
        self
    }

    pub fn cut(mut self, cut: bool) -> Self {
        self.cut = cut;
        self
    }
}

/// A datagram arriving at its destination.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub at: Instant,
    pub from: SocketAddr,
    pub to: SocketAddr,
    pub bytes: Vec<u8>,
}

/// What happened on one link so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Datagrams handed to the link.
    pub sent: u64,
    pub delivered: u64,
    /// Dropped by random loss.
    pub lost: u64,
    /// Tail-dropped by a full bottleneck queue.
    pub queue_dropped: u64,
    /// Dropped because the link was cut when sent or when due.
    pub cut_dropped: u64,
    /// Datagram bytes (without [`PACKET_OVERHEAD`]) handed to the link and delivered.
    pub bytes_sent: u64,
    pub bytes_delivered: u64,
}

impl LinkStats {
    fn add(&mut self, o: &LinkStats) {
        self.sent += o.sent;
        self.delivered += o.delivered;
        self.lost += o.lost;
        self.queue_dropped += o.queue_dropped;
        self.cut_dropped += o.cut_dropped;
        self.bytes_sent += o.bytes_sent;
        self.bytes_delivered += o.bytes_delivered;
    }

    /// Datagrams sent but not (yet) delivered nor dropped: in a queue or on the wire.
    pub fn in_flight(&self) -> u64 {
        self.sent - self.delivered - self.lost - self.queue_dropped - self.cut_dropped
    }
}

/// One direction of a path: its configuration (None: the network default), bottleneck queue,
/// random generator and counters.
struct Link {
    config: Option<LinkConfig>,
    /// Packets in the bottleneck (waiting or in service): (time it leaves, wire bytes).
    queue: VecDeque<(Instant, usize)>,
    queued_bytes: usize,
    /// The token bucket's bytes when the last packet left the bottleneck, and when that was.
    tokens: f64,
    last_left: Option<Instant>,
    rng: StdRng,
    stats: LinkStats,
    /// When each packet entered the bottleneck, and how long it waited before its turn (µs).
    queue_delays_us: Vec<(Instant, u32)>,
}

impl Link {
    fn new(seed: u64, from: IpAddr, to: IpAddr) -> Link {
        Link {
            config: None,
            queue: VecDeque::new(),
            queued_bytes: 0,
            tokens: 0.0,
            last_left: None,
            rng: StdRng::seed_from_u64(link_seed(seed, from, to)),
            stats: LinkStats::default(),
            queue_delays_us: Vec::new(),
        }
    }

    /// Forgets the packets that left the bottleneck by `now`.
    fn drain_queue(&mut self, now: Instant) {
        while let Some(&(leaves, bytes)) = self.queue.front() {
            if leaves > now {
                break;
            }
            self.queue.pop_front();
            self.queued_bytes -= bytes;
        }
    }
}

/// A datagram on its way.
struct InFlight {
    at: Instant,
    /// Send order, so that deliveries due at the same instant keep it.
    order: u64,
    from: SocketAddr,
    to: SocketAddr,
    bytes: Vec<u8>,
}

impl PartialEq for InFlight {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.order) == (other.at, other.order)
    }
}
impl Eq for InFlight {}
impl PartialOrd for InFlight {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for InFlight {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.order).cmp(&(other.at, other.order))
    }
}

/// The simulated network. It holds no clock: every call says what time it is, and times must
/// not go backwards between calls.
pub struct SimNetwork {
    seed: u64,
    default: LinkConfig,
    links: BTreeMap<(IpAddr, IpAddr), Link>,
    in_flight: BinaryHeap<Reverse<InFlight>>,
    next_order: u64,
}

impl SimNetwork {
    /// A network whose links are all `LinkConfig::new()` (perfect) until configured.
    pub fn new(seed: u64) -> SimNetwork {
        SimNetwork {
            seed,
            default: LinkConfig::new(),
            links: BTreeMap::new(),
            in_flight: BinaryHeap::new(),
            next_order: 0,
        }
    }

    /// The configuration of every pair without its own.
    pub fn set_default_link(&mut self, config: LinkConfig) {
        self.default = config;
    }

    /// Gives the direction `from → to` its own configuration (from now on).
    pub fn set_link(&mut self, from: IpAddr, to: IpAddr, config: LinkConfig) {
        self.link_mut(from, to).config = Some(config);
    }

    /// `set_link` for both directions between `a` and `b`.
    pub fn set_path(&mut self, a: IpAddr, b: IpAddr, config: LinkConfig) {
        self.set_link(a, b, config.clone());
        self.set_link(b, a, config);
    }

    /// Changes some parameters of `from → to`, starting from its current configuration:
    /// `net.update_link(a, b, |l| l.loss = 0.1)`.
    pub fn update_link(&mut self, from: IpAddr, to: IpAddr, change: impl FnOnce(&mut LinkConfig)) {
        let mut config = self.link_config(from, to);
        change(&mut config);
        self.set_link(from, to, config);
    }

    /// Cuts `from → to` (or restores it), keeping its other parameters.
    pub fn cut_link(&mut self, from: IpAddr, to: IpAddr, cut: bool) {
        self.update_link(from, to, |l| l.cut = cut);
    }

    /// Makes `from → to` follow the network default again.
    pub fn reset_link(&mut self, from: IpAddr, to: IpAddr) {
        self.link_mut(from, to).config = None;
    }

    /// The configuration `from → to` currently has.
    pub fn link_config(&self, from: IpAddr, to: IpAddr) -> LinkConfig {
        self.links
            .get(&(from, to))
            .and_then(|l| l.config.clone())
            .unwrap_or_else(|| self.default.clone())
    }

    fn link_mut(&mut self, from: IpAddr, to: IpAddr) -> &mut Link {
        let seed = self.seed;
        self.links
            .entry((from, to))
            .or_insert_with(|| Link::new(seed, from, to))
    }

    /// Hands a datagram to the network at `now`. Returns false when it was dropped right away
    /// (cut, lost or queue full); true means it is on its way (and may still be cut).
    pub fn send(&mut self, now: Instant, from: SocketAddr, to: SocketAddr, bytes: Vec<u8>) -> bool {
        let default = self.default.clone();
        let link = self.link_mut(from.ip(), to.ip());
        let config = link.config.clone().unwrap_or(default);
        link.stats.sent += 1;
        link.stats.bytes_sent += bytes.len() as u64;
        if config.cut {
            link.stats.cut_dropped += 1;
            return false;
        }
        // Draw the same number of random values for every packet that reaches this point, so
        // that one packet's fate does not shift the randomness of the next ones.
        let lost = link.rng.random_bool(config.loss.clamp(0.0, 1.0));
        let jitter_nanos = link.rng.random_range(0..=config.jitter.as_nanos() as u64);
        let reordered = link.rng.random_bool(config.reorder.clamp(0.0, 1.0));
        if lost {
            link.stats.lost += 1;
            return false;
        }
        let mut leaves = now;
        if let Some(rate) = config.rate_bps.filter(|&r| r > 0) {
            link.drain_queue(now);
            let wire = bytes.len() + PACKET_OVERHEAD;
            if link.queued_bytes + wire > config.queue_bytes {
                link.stats.queue_dropped += 1;
                return false;
            }
            let start = link.queue.back().map_or(now, |&(t, _)| t.max(now));
            let waited = start.duration_since(now).as_micros();
            link.queue_delays_us
                .push((now, waited.min(u128::from(u32::MAX)) as u32));
            let nanos = if config.burst_bytes == 0 {
                (wire as u128 * 8 * 1_000_000_000).div_ceil(u128::from(rate))
            } else {
                // Tokens accrued since the last packet left (none while packets queue); the
                // bucket starts full.
                let accrued = link.last_left.map_or(f64::INFINITY, |t| {
                    start.saturating_duration_since(t).as_secs_f64() * rate as f64 / 8.0
                });
                let tokens = (link.tokens + accrued).min(config.burst_bytes as f64);
                let short = (wire as f64 - tokens).max(0.0);
                link.tokens = (tokens - wire as f64).max(0.0);
                (short * 8e9 / rate as f64).ceil() as u128
            };
            leaves = start + Duration::from_nanos(nanos as u64);
            link.last_left = Some(leaves);
            link.queue.push_back((leaves, wire));
            link.queued_bytes += wire;
        }
        let mut at = leaves + config.delay + Duration::from_nanos(jitter_nanos);
        if reordered {
            at += config.reorder_delay;
        }
        let order = self.next_order;
        self.next_order += 1;
        self.in_flight.push(Reverse(InFlight {
            at,
            order,
            from,
            to,
            bytes,
        }));
        true
    }

    /// When the next datagram is due, if any is on its way.
    pub fn next_delivery_time(&self) -> Option<Instant> {
        self.in_flight.peek().map(|Reverse(p)| p.at)
    }

    /// The next datagram due at or before `now`, in delivery order. Datagrams on a link that is
    /// cut at this moment are dropped here.
    pub fn poll_delivery(&mut self, now: Instant) -> Option<Delivery> {
        loop {
            if self.in_flight.peek()?.0.at > now {
                return None;
            }
            let Reverse(p) = self.in_flight.pop()?;
            let cut = self.link_config(p.from.ip(), p.to.ip()).cut;
            let link = self.link_mut(p.from.ip(), p.to.ip());
            if cut {
                link.stats.cut_dropped += 1;
                continue;
            }
            link.stats.delivered += 1;
            link.stats.bytes_delivered += p.bytes.len() as u64;
            return Some(Delivery {
                at: p.at,
                from: p.from,
                to: p.to,
                bytes: p.bytes,
            });
        }
    }

    /// Counters of `from → to`.
    /// When each packet entered the bottleneck from `from` to `to`, and how long it waited
    /// there, µs (empty without a rate limit).
    pub fn queue_delays_us(&self, from: IpAddr, to: IpAddr) -> &[(Instant, u32)] {
        self.links
            .get(&(from, to))
            .map_or(&[], |l| l.queue_delays_us.as_slice())
    }

    pub fn stats(&self, from: IpAddr, to: IpAddr) -> LinkStats {
        self.links
            .get(&(from, to))
            .map(|l| l.stats)
            .unwrap_or_default()
    }

    /// Counters of all links together.
    pub fn total_stats(&self) -> LinkStats {
        let mut total = LinkStats::default();
        for link in self.links.values() {
            total.add(&link.stats);
        }
        total
    }

    /// Datagrams on their way (queued or propagating).
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }
}

/// A link's generator seed: the network seed mixed with both IPs (splitmix64 steps), stable
/// across runs and platforms.
fn link_seed(seed: u64, from: IpAddr, to: IpAddr) -> u64 {
    fn mix(mut z: u64) -> u64 {
        z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    let octets = |ip: IpAddr| match ip {
        IpAddr::V4(v) => v.to_ipv6_mapped().octets(),
        IpAddr::V6(v) => v.octets(),
    };
    let mut h = mix(seed);
    for chunk in octets(from).chunks(8).chain(octets(to).chunks(8)) {
        let word = u64::from_be_bytes(chunk.try_into().expect("8-byte chunk"));
        h = mix(h ^ word);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn drain(net: &mut SimNetwork, until: Instant) -> Vec<Delivery> {
        let mut out = Vec::new();
        while let Some(d) = net.poll_delivery(until) {
            out.push(d);
        }
        out
    }

    #[test]
    fn delay_applies_per_direction() {
        let t0 = Instant::now();
        let (a, b) = (addr("10.0.0.1:1"), addr("10.0.0.2:2"));
        let mut net = SimNetwork::new(1);
        net.set_link(a.ip(), b.ip(), LinkConfig::new().delay(ms(20)));
        assert!(net.send(t0, a, b, vec![1]));
        assert!(net.send(t0, b, a, vec![2]));
        assert_eq!(net.next_delivery_time(), Some(t0));
        let back = drain(&mut net, t0);
        assert_eq!(back.len(), 1);
        assert_eq!(
            (back[0].from, back[0].to, &back[0].bytes[..]),
            (b, a, &[2][..])
        );
        assert_eq!(net.next_delivery_time(), Some(t0 + ms(20)));
        assert!(drain(&mut net, t0 + ms(19)).is_empty());
        let forth = drain(&mut net, t0 + ms(20));
        assert_eq!(forth[0].at, t0 + ms(20));
        assert_eq!(net.stats(a.ip(), b.ip()).delivered, 1);
        assert_eq!(net.total_stats().delivered, 2);
    }

    #[test]
    fn same_instant_deliveries_keep_send_order() {
        let t0 = Instant::now();
        let (a, b) = (addr("10.0.0.1:1"), addr("10.0.0.2:2"));
        let mut net = SimNetwork::new(1);
        for i in 0..50u8 {
            net.send(t0, a, b, vec![i]);
        }
        let got: Vec<u8> = drain(&mut net, t0).iter().map(|d| d.bytes[0]).collect();
        assert_eq!(got, (0..50).collect::<Vec<u8>>());
    }

    #[test]
    fn loss_rate_is_close_to_the_probability() {
        let t0 = Instant::now();
        let (a, b) = (addr("10.0.0.1:1"), addr("10.0.0.2:2"));
        let mut net = SimNetwork::new(7);
        net.set_default_link(LinkConfig::new().loss(0.1));
        for i in 0..10_000u64 {
            net.send(t0 + Duration::from_micros(i), a, b, vec![0; 10]);
        }
        drain(&mut net, t0 + ms(100));
        let s = net.stats(a.ip(), b.ip());
        assert_eq!(s.sent, 10_000);
        assert_eq!(s.lost + s.delivered, 10_000);
        assert!((900..1100).contains(&s.lost), "{s:?}");
    }

    #[test]
    fn bottleneck_serializes_and_tail_drops() {
        let t0 = Instant::now();
        let (a, b) = (addr("10.0.0.1:1"), addr("10.0.0.2:2"));
        let mut net = SimNetwork::new(1);
        // 1,000 wire bytes take 8 ms at 1 Mbit/s; the queue holds three of them.
        net.set_link(a.ip(), b.ip(), LinkConfig::new().rate(1_000_000, 3_000));
        let payload = vec![0; 1000 - PACKET_OVERHEAD];
        for _ in 0..5 {
            net.send(t0, a, b, payload.clone());
        }
        let s = net.stats(a.ip(), b.ip());
        assert_eq!((s.sent, s.queue_dropped), (5, 2));
        let times: Vec<Duration> = drain(&mut net, t0 + ms(100))
            .iter()
            .map(|d| d.at - t0)
            .collect();
        assert_eq!(times, [ms(8), ms(16), ms(24)]);
        // Once the queue drained, a packet goes through after its own serialization time.
        net.send(t0 + ms(100), a, b, payload.clone());
        assert_eq!(net.next_delivery_time(), Some(t0 + ms(108)));
        // A packet arriving while one is in service waits for it.
        net.send(t0 + ms(104), a, b, payload);
        drain(&mut net, t0 + ms(108));
        assert_eq!(net.next_delivery_time(), Some(t0 + ms(116)));
    }

    #[test]
    fn a_token_bucket_lets_its_burst_through_at_once_after_an_idle_spell() {
        let t0 = Instant::now();
        let (a, b) = (addr("10.0.0.1:1"), addr("10.0.0.2:2"));
        let mut net = SimNetwork::new(1);
        // 1 Mbit/s, 3,000 bytes of bucket: three packets of 1,000 wire bytes pass at once, the
        // next ones 8 ms apart.
        net.set_link(
            a.ip(),
            b.ip(),
            LinkConfig::new().token_bucket(1_000_000, 10_000, 3_000),
        );
        let payload = vec![0; 1000 - PACKET_OVERHEAD];
        // Sends five at `at`, and takes what arrived up to `until` (times only go forward).
        let send_five = |net: &mut SimNetwork, at: Instant, until: Duration| {
            for _ in 0..5 {
                assert!(net.send(at, a, b, payload.clone()));
            }
            drain(net, at + until)
                .iter()
                .map(|d| d.at - at)
                .collect::<Vec<Duration>>()
        };
        assert_eq!(
            send_five(&mut net, t0, ms(16)),
            [ms(0), ms(0), ms(0), ms(8), ms(16)]
        );
        // 100 ms idle refilled the bucket (to its depth, no more).
        assert_eq!(
            send_five(&mut net, t0 + ms(116), ms(16)),
            [ms(0), ms(0), ms(0), ms(8), ms(16)]
        );
        // 8 ms idle after the last packet left: one packet's worth.
        assert_eq!(
            send_five(&mut net, t0 + ms(140), ms(32)),
            [ms(0), ms(8), ms(16), ms(24), ms(32)]
        );
    }

    #[test]
    fn reordering_holds_packets_back() {
        let t0 = Instant::now();
        let (a, b) = (addr("10.0.0.1:1"), addr("10.0.0.2:2"));
        let mut net = SimNetwork::new(3);
        net.set_default_link(LinkConfig::new().delay(ms(5)).reorder(0.2, ms(30)));
        for i in 0..200u32 {
            net.send(t0 + ms(u64::from(i)), a, b, i.to_be_bytes().to_vec());
        }
        let got: Vec<u32> = drain(&mut net, t0 + ms(1000))
            .iter()
            .map(|d| u32::from_be_bytes(d.bytes[..4].try_into().unwrap()))
            .collect();
        assert_eq!(got.len(), 200);
        let out_of_order = got.windows(2).filter(|w| w[1] < w[0]).count();
        assert!((20..60).contains(&out_of_order), "{out_of_order}");
    }

    #[test]
    fn cut_drops_new_and_in_flight_packets() {
        let t0 = Instant::now();
        let (a, b) = (addr("10.0.0.1:1"), addr("10.0.0.2:2"));
        let mut net = SimNetwork::new(1);
        net.set_link(a.ip(), b.ip(), LinkConfig::new().delay(ms(10)));
        net.send(t0, a, b, vec![1]);
        net.cut_link(a.ip(), b.ip(), true);
        assert!(!net.send(t0 + ms(1), a, b, vec![2]));
        assert!(drain(&mut net, t0 + ms(50)).is_empty());
        net.cut_link(a.ip(), b.ip(), false);
        assert_eq!(net.link_config(a.ip(), b.ip()).delay, ms(10));
        net.send(t0 + ms(50), a, b, vec![3]);
        assert_eq!(drain(&mut net, t0 + ms(60)).len(), 1);
        let s = net.stats(a.ip(), b.ip());
        assert_eq!(
            (s.sent, s.cut_dropped, s.delivered, s.in_flight()),
            (3, 2, 1, 0)
        );
    }

    #[test]
    fn links_have_independent_randomness() {
        let t0 = Instant::now();
        let (a, b, c) = (addr("10.0.0.1:1"), addr("10.0.0.2:2"), addr("10.0.0.3:3"));
        let pattern = |with_other_traffic: bool| {
            let mut net = SimNetwork::new(11);
            net.set_default_link(LinkConfig::new().loss(0.3));
            let mut fate = Vec::new();
            for i in 0..100 {
                if with_other_traffic && i % 3 == 0 {
                    net.send(t0, a, c, vec![0]);
                }
                fate.push(net.send(t0, a, b, vec![0]));
            }
            fate
        };
        assert_eq!(pattern(false), pattern(true));
    }
}
