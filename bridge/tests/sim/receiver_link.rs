//! One sender and one receiver whose link from the bridge is shaped: Alice sends three
//! layers (94 kbit/s at 180 lines, 375 kbit/s at 360, 1.5 Mbit/s at 720), Bob has her on stage
//! at 720, and the link from the bridge to Bob gets a bottleneck, loss or jitter. For the
//! bandwidth scenarios and `bench/quality`.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use tutti_bridge::media::constraints::ConstraintsUpdate;
use tutti_sim::{LinkConfig, NodeId, PeerConfig, SimPeer};

use super::Call;

pub struct Scenario {
    pub call: Call,
    pub alice: PeerConfig,
    pub bob: NodeId<SimPeer>,
    pub bob_ip: IpAddr,
}

impl Scenario {
    pub fn new(seed: u64) -> Scenario {
        Scenario::with_top_layer(seed, 1_500_000)
    }

    /// Alice's top layer at `top_bps` (each lower one a quarter of the next).
    pub fn with_top_layer(seed: u64, top_bps: u32) -> Scenario {
        Scenario::with_layers(seed, [top_bps >> 4, top_bps >> 2, top_bps])
    }

    /// Alice's layers (180, 360 and 720 lines) at these bitrates.
    pub fn with_layers(seed: u64, layers_bps: [u32; 3]) -> Scenario {
        let mut call = Call::new(seed, 20);
        call.mint_outputs = true;
        let mut alice = call.peer_config("alice").simulcast(3, layers_bps[2]);
        for (layer, bps) in alice.video.iter_mut().zip(layers_bps) {
            layer.bitrate_bps = bps;
        }
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
    pub fn cap(&mut self, bps: Option<u64>) {
        self.shape(bps, 0.0, Duration::ZERO);
    }

    /// The link from the bridge to bob: a token bucket of `bps` as `tc … tbf rate … burst 4kb
    /// latency 200ms` (the browser test's link: 4 kB pass at once after an idle spell, 200 ms
    /// of queue), and 20 ms of delay.
    pub fn token_bucket(&mut self, bps: u64) {
        const BURST: usize = 4096;
        let link = LinkConfig::new()
            .delay(Duration::from_millis(20))
            .token_bucket(bps, (bps / 8 / 5) as usize + BURST, BURST);
        let bridge = self.call.bridge_ip();
        self.call.sim.net.set_link(bridge, self.bob_ip, link);
    }

    /// The link from the bridge to bob: a bottleneck of `bps` (250 ms of queue) or none,
    /// random `loss`, and `jitter` on its 20 ms of delay.
    pub fn shape(&mut self, bps: Option<u64>, loss: f64, jitter: Duration) {
        let mut link = LinkConfig::new()
            .delay(Duration::from_millis(20))
            .loss(loss)
            .jitter(jitter);
        if let Some(bps) = bps {
            link = link.rate(bps, (bps / 8 / 4) as usize);
        }
        let bridge = self.call.bridge_ip();
        self.call.sim.net.set_link(bridge, self.bob_ip, link);
    }

    /// The layer (0: lowest) of bob's newest packet of alice's video.
    pub fn layer_now(&self) -> Option<usize> {
        let newest = self.call.layer_now(self.bob, &self.alice);
        self.alice.video.iter().position(|v| Some(v.ssrc) == newest)
    }

    /// Runs until the layer of bob's newest packet of alice's video is one `wanted` accepts,
    /// for at most `within`; how long it took.
    pub fn until(&mut self, within: Duration, wanted: impl Fn(usize) -> bool) -> Option<Duration> {
        let start = self.call.sim.now();
        while self.call.sim.now().duration_since(start) < within {
            self.call.sim.run_for(Duration::from_millis(50));
            if self.layer_now().is_some_and(&wanted) {
                return Some(self.call.sim.now().duration_since(start));
            }
        }
        None
    }

    /// Runs for `d` and says whether bob got none of layer `layer` of alice's video meanwhile
    /// (retransmissions aside), and no freeze: never 500 ms without a packet of it.
    pub fn stays_below(&mut self, layer: usize, d: Duration) -> Result<(), String> {
        let from = self.call.sim.now();
        self.call.sim.run_for(d);
        self.stayed_below(layer, from)
    }

    /// Whether bob got none of layer `layer` of alice's video since `from` (retransmissions
    /// aside), and no freeze: never 500 ms without a packet of it.
    pub fn stayed_below(&self, layer: usize, from: Instant) -> Result<(), String> {
        let d = self.call.sim.now().duration_since(from);
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
