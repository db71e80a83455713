//! In memory: a receiver's link is capped, and its allocator follows the bandwidth estimate
//! its transport-cc feedback gives: down to the layer that fits when the cap comes (or drops),
//! up again — through probes — when it is lifted. Alice sends three layers (94 kbit/s at 180
//! lines, 375 kbit/s at 360, 1.5 Mbit/s at 720); bob has her on stage at 720.

mod sim;

use std::net::IpAddr;
use std::time::Duration;

use sim::Call;
use tutti_bridge::media::constraints::ConstraintsUpdate;
use tutti_sim::{LinkConfig, NodeId, PeerConfig, SimPeer};

struct Scenario {
    call: Call,
    alice: PeerConfig,
    bob: NodeId<SimPeer>,
    bob_ip: IpAddr,
}

impl Scenario {
    fn new(seed: u64) -> Scenario {
        let mut call = Call::new(seed, 20);
        call.mint_outputs = true;
        let alice = call.peer_config("alice").simulcast(3, 1_500_000);
        let mut bob = call.peer_config("bob");
        bob.video.clear();
        let bob_ip = bob.addr.ip();
        call.join(alice.clone());
        let bob = call.join(bob);
        call.connect_all();
        call.set_constraints(
            bob,
            ConstraintsUpdate {
                on_stage: Some(vec!["alice".into()]),
                max_heights: Some(vec![("alice".into(), 720)]),
                ..Default::default()
            },
        );
        Scenario {
            call,
            alice,
            bob,
            bob_ip,
        }
    }

    /// The link from the bridge to bob: a bottleneck of `bps` with 250 ms of queue, or none.
    fn cap(&mut self, bps: Option<u64>) {
        let mut link = LinkConfig::new().delay(Duration::from_millis(20));
        if let Some(bps) = bps {
            link = link.rate(bps, (bps / 8 / 4) as usize);
        }
        let bridge = self.call.bridge_ip();
        self.call.sim.net.set_link(bridge, self.bob_ip, link);
    }

    /// Runs until the layer of bob's newest packet of alice's video is one `wanted` accepts,
    /// for at most `within`; how long it took.
    fn until(&mut self, within: Duration, wanted: impl Fn(usize) -> bool) -> Option<Duration> {
        let start = self.call.sim.now();
        while self.call.sim.now().duration_since(start) < within {
            self.call.sim.run_for(Duration::from_millis(50));
            let newest = self.call.layer_now(self.bob, &self.alice);
            let layer = self.alice.video.iter().position(|v| Some(v.ssrc) == newest);
            if layer.is_some_and(&wanted) {
                return Some(self.call.sim.now().duration_since(start));
            }
        }
        None
    }

    /// Runs for `d` and says whether bob got none of layer `layer` of alice's video meanwhile
    /// (retransmissions aside), and no freeze: never 500 ms without a packet of it.
    fn stays_below(&mut self, layer: usize, d: Duration) -> Result<(), String> {
        let from = self.call.sim.now();
        self.call.sim.run_for(d);
        let stream = self.call.video_from(self.bob, &self.alice);
        let recent: Vec<_> = stream
            .packets
            .iter()
            .filter(|p| p.arrived >= from)
            .collect();
        let banned = self.alice.video[layer].ssrc;
        if let Some(p) = recent
            .iter()
            .find(|p| p.sender_ssrc == Some(banned) && !p.via_rtx)
        {
            return Err(format!(
                "layer {layer} came {:?} in",
                p.arrived.duration_since(from)
            ));
        }
        let mut arrivals: Vec<_> = recent.iter().map(|p| p.arrived).collect();
        arrivals.sort();
        let longest = arrivals
            .windows(2)
            .map(|w| w[1].duration_since(w[0]))
            .max()
            .unwrap_or(d);
        if longest >= Duration::from_millis(500) {
            return Err(format!("a gap of {longest:?}"));
        }
        Ok(())
    }
}

#[test]
fn a_capped_receiver_moves_down_and_back_to_the_top_once_the_cap_is_lifted() {
    let mut s = Scenario::new(31);
    // Unlimited: the top layer.
    let up = s.until(Duration::from_secs(3), |l| l == 2);
    assert!(up.is_some(), "bob reaches 720 on a free link");

    // 600 kbit/s: the top layer (1.5 Mbit/s) does not fit.
    s.cap(Some(600_000));
    let down = s.until(Duration::from_secs(3), |l| l < 2);
    assert!(down.is_some(), "bob moves down under a 600 kbit/s cap");
    s.stays_below(2, Duration::from_secs(6))
        .expect("bob keeps getting video below 720");
    let report = s.call.receiver_report(s.bob);
    assert_eq!(report.estimate_limited_by, "delay");
    assert!(
        (150_000..=900_000).contains(&report.estimate_bps),
        "estimate {} under a 600 kbit/s cap",
        report.estimate_bps
    );
    // bob was told (ConnectionStats) the estimate before the cap and under it.
    let told = s.call.estimates_told(s.bob);
    assert!(told[0] >= 1_000_000, "{told:?}");
    assert!(told.iter().any(|&bps| bps < 900_000), "{told:?}");
    let top = &report.sources[0].encodings[2].bps_by_temporal_layer;
    assert_eq!(report.desired_bps, top[top.len() - 1], "alice at 720");

    // Lifted: probes find the room, bob goes back to 720.
    let probes_before = s.call.counters().probe_packets_sent;
    s.cap(None);
    let up = s.until(Duration::from_secs(10), |l| l == 2);
    assert!(
        up.is_some(),
        "bob reaches 720 within 10 s of the cap's lifting"
    );
    assert!(
        s.call.counters().probe_packets_sent > probes_before,
        "retransmissions filled the probes"
    );
    assert!(s.call.counters().allocations_on_estimate_drop > 0);
    let stream = s.call.video_from(s.bob, &s.alice);
    for switch in stream.switches() {
        assert!(switch.at_keyframe, "{switch:?}");
    }
    // What the bottleneck dropped was repaired (NACK, retransmission through the pacer) but
    // for packets of frames a key frame superseded, which the receiver stops asking for (up to
    // 32 of some 360 dropped in these runs).
    let dropped = s
        .call
        .sim
        .net
        .stats(s.call.bridge_ip(), s.bob_ip)
        .queue_dropped;
    let missing = stream.missing().len() as u64;
    assert!(dropped > 0);
    assert!(
        missing * 5 <= dropped,
        "{missing} of {dropped} never repaired"
    );
}

#[test]
fn a_cap_dropping_from_3_mbits_to_500_kbits_moves_the_receiver_down_at_once() {
    let mut s = Scenario::new(32);
    s.cap(Some(3_000_000));
    assert!(s.until(Duration::from_secs(3), |l| l == 2).is_some());
    s.call.sim.run_for(Duration::from_secs(3));
    assert_eq!(
        s.call.layer_now(s.bob, &s.alice),
        Some(s.alice.video[2].ssrc),
        "720 fits in 3 Mbit/s"
    );
    s.cap(Some(500_000));
    let down = s
        .until(Duration::from_secs(3), |l| l < 2)
        .expect("bob moves down");
    assert!(down <= Duration::from_millis(1500), "down after {down:?}");
    s.stays_below(2, Duration::from_secs(4))
        .expect("bob keeps getting video below 720 under 500 kbit/s");
}
