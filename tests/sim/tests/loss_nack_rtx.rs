//! 5 % random loss from a to b: b NACKs the lost video packets and a retransmits them over RTX,
//! so b ends up with at least 99 % of the video (audio has no RTX and stays lossy). With NACKs
//! turned off on b, the losses stay.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use tutti_sim::{call_each_other, LinkConfig, NodeId, PeerConfig, Sim, SimPeer};

const A: &str = "10.0.0.1:5000";
const B: &str = "10.0.0.2:5000";

fn ip(addr: &str) -> IpAddr {
    addr.parse::<SocketAddr>().unwrap().ip()
}

/// a sends to b over a lossy a → b direction; returns the simulation after `secs` of media.
fn call(seed: u64, b_sends_nacks: bool, secs: u64) -> (Sim, NodeId<SimPeer>, NodeId<SimPeer>) {
    let start = Instant::now();
    let mut sim = Sim::new(seed, start);
    let (a_addr, b_addr) = (A.parse().unwrap(), B.parse().unwrap());
    sim.net
        .set_default_link(LinkConfig::new().delay(Duration::from_millis(20)));
    let (a, b) = call_each_other(
        &mut sim,
        PeerConfig::new("a", a_addr, 1),
        PeerConfig {
            send_nacks: b_sends_nacks,
            ..PeerConfig::new("b", b_addr, 2)
        },
    );
    sim.node_mut(a).set_sending(true);
    assert!(sim.run_until_cond(Duration::from_secs(5), |s| s.node(b).is_connected()));

    // Lossy only once connected: the handshake is not what this test is about.
    sim.net
        .update_link(a_addr.ip(), b_addr.ip(), |l| l.loss = 0.05);
    sim.run_for(Duration::from_secs(secs));
    // Let the last retransmissions arrive.
    sim.net
        .update_link(a_addr.ip(), b_addr.ip(), |l| l.loss = 0.0);
    sim.with(a, |a, _| a.set_sending(false));
    sim.run_for(Duration::from_secs(1));
    (sim, a, b)
}

#[test]
fn nack_and_rtx_recover_random_loss() {
    let (sim, a, b) = call(5, true, 20);
    let config = sim.node(a).config().clone();
    let (audio, video) = (config.audio.unwrap(), config.video[0].ssrc);
    let link = sim.net.stats(ip(A), ip(B));
    assert!(link.lost > 100, "{link:?}");

    let sent = sim.node(a).tx(video).unwrap().clone();
    let got = sim.node(b).rx(video).unwrap();
    let share = got.received() as f64 / sent.packets as f64;
    assert!(
        share >= 0.99,
        "{} of {} video packets ({share})",
        got.received(),
        sent.packets
    );
    assert!(got.recovered() > 50, "recovered {}", got.recovered());
    assert!(got.rtx_packets as usize >= got.recovered());
    assert_eq!(got.payload_errors, 0);
    assert!(sent.rtx_sent >= got.recovered() as u64, "{sent:?}");
    let frames = got.frames();
    assert!(
        frames.incomplete as u64 <= sent.frames / 100,
        "{frames:?} of {sent:?}"
    );

    // The sender saw NACKs for about the lost video packets.
    let nacked = sim
        .node(a)
        .stats()
        .rtcp_received
        .nacked
        .get(&video)
        .copied()
        .unwrap_or(0);
    assert!(nacked >= got.recovered() as u64, "nacked {nacked}");

    // No NACKs for audio: it lost about 5 %.
    let audio_sent = sim.node(a).tx(audio).unwrap().packets as f64;
    let audio_got = sim.node(b).rx(audio).unwrap().received() as f64;
    assert!(
        (0.92..0.98).contains(&(audio_got / audio_sent)),
        "{audio_got} of {audio_sent}"
    );
    assert_eq!(sim.node(b).stats().rtcp_sent.nacked.get(&audio), None);
}

#[test]
fn without_nacks_losses_stay() {
    let (sim, a, b) = call(5, false, 10);
    let video = sim.node(a).config().video[0].ssrc;
    let sent = sim.node(a).tx(video).unwrap().packets as f64;
    let got = sim.node(b).rx(video).unwrap();
    assert!(
        got.received() as f64 / sent < 0.98,
        "{} of {sent}",
        got.received()
    );
    assert_eq!(got.recovered(), 0);
    assert_eq!(sim.node(b).stats().rtcp_sent.nack_packets, 0);
    assert_eq!(sim.node(a).tx(video).unwrap().rtx_sent, 0);
}
