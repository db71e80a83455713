//! A 600 kbit/s bottleneck with a 12 kB queue in front of a sender of ~1.1 Mbit/s: the link
//! delivers at most its rate, tail-drops what does not fit, and what gets through waits at most
//! the queue's drain time. Lifting the cap ends the drops and the queueing delay.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use tutti_sim::{call_each_other, LinkConfig, PeerConfig, Sim, PACKET_OVERHEAD};

const RATE_BPS: u64 = 600_000;
const QUEUE_BYTES: usize = 12_000;
const DELAY: Duration = Duration::from_millis(20);

fn ip(addr: SocketAddr) -> IpAddr {
    addr.ip()
}

#[test]
fn bottleneck_caps_rate_drops_and_delays() {
    let start = Instant::now();
    let mut sim = Sim::new(3, start);
    sim.net.set_default_link(LinkConfig::new().delay(DELAY));
    let (a_addr, b_addr): (SocketAddr, SocketAddr) = (
        "10.0.0.1:5000".parse().unwrap(),
        "10.0.0.2:5000".parse().unwrap(),
    );
    let (a, b) = call_each_other(
        &mut sim,
        PeerConfig::new("a", a_addr, 1),
        PeerConfig::new("b", b_addr, 2),
    );
    sim.node_mut(a).set_sending(true);
    assert!(sim.run_until_cond(Duration::from_secs(5), |s| s.node(b).is_connected()));
    sim.run_for(Duration::from_secs(1));

    sim.record_trace(true);
    let before = sim.net.stats(ip(a_addr), ip(b_addr));
    let capped_at = sim.now();
    sim.net.set_link(
        ip(a_addr),
        ip(b_addr),
        LinkConfig::new().delay(DELAY).rate(RATE_BPS, QUEUE_BYTES),
    );
    sim.run_for(Duration::from_secs(10));
    let after = sim.net.stats(ip(a_addr), ip(b_addr));

    // Delivered no more than the rate allows: everything that arrived later than one delay
    // after the cap went through the bottleneck, which started empty.
    let through: Vec<(Instant, usize)> = sim
        .trace()
        .iter()
        .filter(|d| d.from == a_addr && d.at > capped_at + DELAY)
        .map(|d| (d.at, d.len))
        .collect();
    let wire_bytes: usize = through.iter().map(|(_, n)| n + PACKET_OVERHEAD).sum();
    let elapsed = (sim.now() - capped_at - DELAY).as_secs_f64();
    let rate = wire_bytes as f64 * 8.0 / elapsed;
    assert!(rate <= RATE_BPS as f64, "{rate} bit/s");
    // ... and close to it: the sender offers more than the link carries.
    assert!(rate > 0.95 * RATE_BPS as f64, "{rate} bit/s");
    let dropped = after.queue_dropped - before.queue_dropped;
    assert!(dropped > 100, "{after:?}");
    assert_eq!(after.lost, 0);

    // No one-second window carries more than the rate, plus the packet whose serialization
    // ended at the window's start.
    for (i, &(t, _)) in through.iter().enumerate() {
        let window: usize = through[i..]
            .iter()
            .take_while(|(u, _)| *u < t + Duration::from_secs(1))
            .map(|(_, n)| n + PACKET_OVERHEAD)
            .sum();
        let largest = 1300;
        assert!(
            window as u64 * 8 <= RATE_BPS + largest * 8,
            "{window} bytes in 1 s"
        );
    }

    // Media waited in the queue, but never longer than it takes to drain a full one.
    let max_queueing = Duration::from_secs_f64(QUEUE_BYTES as f64 * 8.0 / RATE_BPS as f64);
    let video = sim.node(a).config().video[0].ssrc;
    let capped_us = (capped_at - start).as_micros() as u64;
    let latencies: Vec<i64> = {
        let rx = sim.node(b).rx(video).unwrap();
        rx.packets
            .iter()
            // Retransmissions arrive a round trip or more late; first transmissions only.
            .filter(|p| !p.via_rtx && p.sent_at_us.is_some_and(|s| s > capped_us + 1_000_000))
            .filter_map(|p| Some((p.arrived - start).as_micros() as i64 - p.sent_at_us? as i64))
            .collect()
    };
    let worst = *latencies.iter().max().unwrap();
    let bound = (DELAY + max_queueing + Duration::from_millis(5)).as_micros() as i64;
    assert!(worst <= bound, "{worst} µs > {bound} µs");
    assert!(
        worst > (DELAY + max_queueing / 2).as_micros() as i64,
        "{worst} µs"
    );
    let rx = sim.node(b).rx(video).unwrap();
    assert!(rx.frames().incomplete > 10, "{:?}", rx.frames());
    assert_eq!(rx.payload_errors, 0);

    // Lifting the cap: no more drops, latency back to the propagation delay.
    sim.net
        .set_link(ip(a_addr), ip(b_addr), LinkConfig::new().delay(DELAY));
    sim.run_for(Duration::from_secs(2));
    let lifted = sim.net.stats(ip(a_addr), ip(b_addr));
    sim.run_for(Duration::from_secs(3));
    let end = sim.net.stats(ip(a_addr), ip(b_addr));
    assert_eq!(end.queue_dropped, lifted.queue_dropped);
    let rx = sim.node(b).rx(video).unwrap();
    let last = rx.packets.last().unwrap();
    let latency = (last.arrived - start).as_micros() as i64 - last.sent_at_us.unwrap() as i64;
    assert!(
        latency < (DELAY + Duration::from_millis(2)).as_micros() as i64,
        "{latency}"
    );
}
