//! A call, then both peers start a new session (new str0m instances, new ICE credentials and
//! certificates, same SSRCs with new numbering) while the old path is cut: they reconnect and
//! media flows again on the same SSRCs, intact.

use std::time::{Duration, Instant};

use tutti_sim::{call_each_other, LinkConfig, PeerConfig, Sim};

#[test]
fn peers_reconnect_after_restart() {
    let start = Instant::now();
    let mut sim = Sim::new(4, start);
    sim.net
        .set_default_link(LinkConfig::new().delay(Duration::from_millis(20)));
    let (a, b) = call_each_other(
        &mut sim,
        PeerConfig::new("a", "10.0.0.1:5000".parse().unwrap(), 1),
        PeerConfig::new("b", "10.0.0.2:5000".parse().unwrap(), 2),
    );
    sim.node_mut(b).set_sending(true);
    assert!(sim.run_until_cond(Duration::from_secs(5), |s| s.node(a).is_connected()));
    sim.run_for(Duration::from_secs(2));
    let audio = sim.node(b).config().audio.unwrap();
    let before = sim.node(a).rx(audio).unwrap().received();
    assert!(before >= 95, "{before}");

    // The path breaks; both sides start over.
    let (ip_a, ip_b) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
    sim.net.cut_link(ip_b, ip_a, true);
    sim.run_for(Duration::from_secs(1));
    let old_fingerprint = sim.node(a).local().fingerprint;
    sim.with(a, |p, now| p.restart(now));
    sim.with(b, |p, now| p.restart(now));
    assert!(!sim.node(a).is_connected());
    assert_ne!(sim.node(a).local().fingerprint, old_fingerprint);
    let (la, lb) = (sim.node(a).local(), sim.node(b).local());
    sim.with(a, |p, _| p.set_remote_peer(&lb));
    sim.with(b, |p, _| p.set_remote_peer(&la));
    sim.net.cut_link(ip_b, ip_a, false);
    assert!(
        sim.run_until_cond(Duration::from_secs(5), |s| s.node(a).is_connected()
            && s.node(b).is_connected())
    );
    sim.run_for(Duration::from_secs(2));

    let rx = sim.node(a).rx(audio).unwrap();
    assert!(
        rx.received() >= before + 95,
        "{} after {before}",
        rx.received()
    );
    assert_eq!(rx.payload_errors, 0);
    // No bridge renumbers here: what arrives carries the sender's own sequence numbers.
    assert_eq!((rx.sequence_offset, rx.offset_changes), (Some(0), 0));
    let video = sim.node(b).config().video[0].ssrc;
    let frames = sim.node(a).rx(video).unwrap().frames();
    assert!(frames.keyframes >= 2, "{frames:?}");
    assert_eq!(sim.node(a).stats().sessions, 1);
}
