//! Conferences on two bridges' cores, each linked by a relay of its own the way the focus links
//! them (docs/bridge.md, Cascading): a relay allocated on each bridge (the first bridge's ICE
//! agent controlling and DTLS client), each given the other's transport and link id, and each
//! told the participants on the other with their sources. Participants join either bridge;
//! every one is told of the sources of every other in its conference, wherever it is.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use tutti_bridge::media::constraints::ConstraintsUpdate;
use tutti_bridge::media::core::describe::ReceiverReport;
use tutti_bridge::media::limits::LimitSettings;
use tutti_bridge::media::stats::Counters;
use tutti_bridge::media::{
    Command, EndpointState, MediaConfig, RelayTransport, RemoteEndpoint, RemoteSetup,
    RemoteTransport, SourceSet, SpeakerSettings,
};
use tutti_sim::{LinkConfig, NodeId, PeerConfig, Sim, SimPeer};

use super::{
    expect, expect_simulcast, media_config, output_of, sources, sources_with_output, BridgeNode,
    CONFERENCE,
};

/// The relay's id on both bridges.
pub const RELAY: &str = "relay";
/// The id each bridge gives the first conference's relay (the other ends its datagrams with
/// it).
const LINK_IDS: [u32; 2] = [0x0000_0a01, 0x0000_0b02];
const BRIDGES: [&str; 2] = ["10.0.0.1:10000", "10.0.0.2:10000"];

pub struct Cascade {
    pub sim: Sim,
    pub bridges: [NodeId<BridgeNode>; 2],
    /// Every participant, the bridge (0 or 1) it is on and its conference.
    pub peers: Vec<(NodeId<SimPeer>, usize, String)>,
    conferences: Vec<String>,
    next_host: u8,
    delay: Duration,
    /// Video sources are forwarded under SSRCs of their own ([`sources_with_output`]), as the
    /// focus mints them, rather than under their first layer's.
    pub mint_outputs: bool,
    /// The id of the relay that links the bridges now, on both ([`RELAY`] until
    /// [`Cascade::relink`]).
    pub relay: String,
}

impl Cascade {
    /// Two bridges with a relay between them, every link with `delay_ms` of one-way delay.
    pub fn new(seed: u64, delay_ms: u64) -> Cascade {
        let start = Instant::now();
        let delay = Duration::from_millis(delay_ms);
        let mut sim = Sim::new(seed, start);
        sim.net.set_default_link(LinkConfig::new().delay(delay));
        let bridges = [0, 1].map(|i| {
            let node = BridgeNode::at(
                BRIDGES[i].parse().unwrap(),
                seed + i as u64,
                start,
                tutti_dtls::SrtpProfiles::GcmThenAesCm,
                SpeakerSettings::default(),
                LimitSettings::default(),
            );
            sim.add(&format!("bridge-{i}"), node)
        });
        let mut cascade = Cascade {
            sim,
            bridges,
            peers: Vec::new(),
            conferences: Vec::new(),
            next_host: 2,
            delay,
            mint_outputs: false,
            relay: RELAY.to_string(),
        };
        cascade.add_conference(CONFERENCE, LINK_IDS);
        cascade
    }

    /// A conference on both bridges, linked by a relay that each bridge knows by its
    /// `link_ids` entry.
    pub fn add_conference(&mut self, conference: &str, link_ids: [u32; 2]) {
        for i in 0..2 {
            self.sim.with(self.bridges[i], |b, now| {
                b.command(
                    now,
                    Command::CreateConference {
                        conference_id: conference.into(),
                    },
                );
            });
        }
        self.link(conference, RELAY, link_ids);
        self.conferences.push(conference.to_string());
    }

    /// Links the bridges' `conference` by a relay named `relay_id` on both, which each bridge
    /// knows by its `link_ids` entry, as the focus does (the first bridge's side controlling).
    fn link(&mut self, conference: &str, relay_id: &str, link_ids: [u32; 2]) {
        let ice = [0, 1].map(|_| tutti_ice::Credentials::random());
        for i in 0..2 {
            let ice = ice[i].clone();
            self.sim.with(self.bridges[i], |b, now| {
                b.command(
                    now,
                    Command::AllocateRelay {
                        conference_id: conference.into(),
                        relay_id: relay_id.into(),
                        link_id: link_ids[i],
                        ice,
                        controlling: i == 0,
                    },
                );
            });
        }
        for i in 0..2 {
            let far = 1 - i;
            let (far_addr, far_fingerprint) = {
                let node = self.sim.node(self.bridges[far]);
                (node.addr, node.fingerprint)
            };
            let transport = RelayTransport {
                remote: RemoteTransport {
                    ufrag: ice[far].ufrag.clone(),
                    pwd: ice[far].pwd.clone(),
                    candidates: vec![(far_addr, 2_130_706_431)],
                    fingerprint: far_fingerprint,
                    // The controlling side is the DTLS client: its far side waits.
                    setup: if i == 0 {
                        RemoteSetup::Passive
                    } else {
                        RemoteSetup::Active
                    },
                },
                link_id: link_ids[far],
            };
            self.sim.with(self.bridges[i], |b, now| {
                b.command(
                    now,
                    Command::UpdateRelay {
                        conference_id: conference.into(),
                        relay_id: relay_id.into(),
                        transport: Some(transport),
                        media: Some(relay_media()),
                        remote_endpoints: None,
                    },
                )
            });
        }
    }

    /// Expires the first conference's relay on bridge `bridge` (with the participants behind
    /// it there), as the focus does when it gives a link up.
    pub fn expire_relay(&mut self, bridge: usize) {
        let relay_id = self.relay.clone();
        self.sim.with(self.bridges[bridge], |b, now| {
            b.command(
                now,
                Command::ExpireRelay {
                    conference_id: CONFERENCE.into(),
                    relay_id,
                },
            )
        });
    }

    /// Links the first conference's bridges again by a new relay, `relay_id` with `link_ids`
    /// (after [`Cascade::expire_relay`] on both), each told the participants on the other.
    pub fn relink(&mut self, relay_id: &str, link_ids: [u32; 2]) {
        self.relay = relay_id.to_string();
        self.link(CONFERENCE, relay_id, link_ids);
        for bridge in 0..2 {
            self.tell_remote_endpoints(CONFERENCE, bridge);
        }
    }

    /// Takes `peer` out of its conference: it stops sending and its bridge expires its
    /// endpoint (the other bridge is not told: its relay is gone, or about to be).
    pub fn leave(&mut self, peer: NodeId<SimPeer>) {
        let at = self
            .peers
            .iter()
            .position(|p| p.0.index() == peer.index())
            .expect("a participant of the cascade");
        let (_, bridge, conference) = self.peers.remove(at);
        self.sim.node_mut(peer).set_sending(false);
        let endpoint_id = self.sim.node(peer).config().name.clone();
        self.sim.with(self.bridges[bridge], |b, now| {
            b.command(
                now,
                Command::ExpireEndpoint {
                    conference_id: conference,
                    endpoint_id,
                },
            )
        });
    }

    /// A browser-like participant's configuration at the next free address.
    pub fn peer_config(&mut self, name: &str) -> PeerConfig {
        let addr = SocketAddr::from(([10, 0, 1, self.next_host], 5000));
        self.next_host += 1;
        PeerConfig::new(name, addr, u64::from(self.next_host))
    }

    /// A Chromium-like camera at the next free address: 180 and 360 lines, three temporal
    /// layers.
    pub fn camera(&mut self, name: &str) -> PeerConfig {
        let mut config = self.peer_config(name).simulcast(2, 600_000);
        config.temporal_layers = 3;
        config
    }

    /// The longest time between two packets `viewer` got of `sender`'s video after `since`.
    pub fn longest_pause(
        &self,
        viewer: NodeId<SimPeer>,
        sender: &PeerConfig,
        since: Instant,
    ) -> Duration {
        let (ssrc, _) = super::output_of(sender);
        let mut arrivals: Vec<Instant> = self
            .peer(viewer)
            .rx(ssrc)
            .unwrap()
            .packets
            .iter()
            .map(|p| p.arrived)
            .filter(|at| *at >= since)
            .collect();
        arrivals.sort();
        arrivals
            .windows(2)
            .map(|w| w[1] - w[0])
            .max()
            .unwrap_or(Duration::MAX)
    }

    /// Ada and Bob on bridge 0, Cyd and Dee on bridge 1, each sending a camera, connected: their
    /// configs and peers, in that order.
    pub fn two_by_two(&mut self) -> ([PeerConfig; 4], [NodeId<SimPeer>; 4]) {
        let cameras = ["ada", "bob", "cyd", "dee"].map(|name| self.camera(name));
        let ids = [0, 0, 1, 1]
            .into_iter()
            .zip(&cameras)
            .map(|(bridge, camera)| self.join(bridge, camera.clone()))
            .collect::<Vec<_>>();
        self.connect_all();
        (cameras, ids.try_into().expect("four peers"))
    }

    /// Joins a participant to bridge `bridge` in the first conference.
    pub fn join(&mut self, bridge: usize, config: PeerConfig) -> NodeId<SimPeer> {
        self.join_conference(CONFERENCE, bridge, config)
    }

    /// Joins a participant to bridge `bridge` in `conference` as the focus does: an endpoint
    /// there with its transport, media and sources; the other bridge told of it behind the
    /// conference's relay; everyone in the conference told of its sources and it of everyone's.
    pub fn join_conference(
        &mut self,
        conference: &str,
        bridge: usize,
        config: PeerConfig,
    ) -> NodeId<SimPeer> {
        let peer = SimPeer::new(config.clone(), self.sim.start());
        let id = self.sim.add(&config.name, peer);
        let local = self.sim.node(id).local();
        let ice = tutti_ice::Credentials::random();
        let (ufrag, pwd) = (ice.ufrag.clone(), ice.pwd.clone());
        let (bridge_addr, fingerprint) = {
            let node = self.sim.node(self.bridges[bridge]);
            (node.addr, node.fingerprint)
        };
        let signalled = self.sources(&config);
        self.sim.with(self.bridges[bridge], |b, now| {
            b.command(
                now,
                Command::AllocateEndpoint {
                    conference_id: conference.into(),
                    endpoint_id: config.name.clone(),
                    participant_id: config.name.clone(),
                    ice,
                    allocation: 1,
                    receives_by_mid: false,
                },
            );
            b.command(
                now,
                Command::UpdateEndpoint {
                    conference_id: conference.into(),
                    endpoint_id: config.name.clone(),
                    transport: Some(RemoteTransport {
                        ufrag: local.ufrag.clone(),
                        pwd: local.pwd.clone(),
                        candidates: vec![(local.candidate, local.priority)],
                        fingerprint: local.fingerprint,
                        setup: RemoteSetup::Active,
                    }),
                    media: Some(media_config(&config)),
                    sources: Some(signalled),
                    receive_mids: None,
                },
            );
        });
        self.sim.node_mut(id).set_remote(
            &ufrag,
            &pwd,
            fingerprint,
            &[(bridge_addr, 2_130_706_431)],
        );
        let expect = if self.mint_outputs {
            expect_simulcast
        } else {
            expect
        };
        for (other, _, _) in self.peers.iter().filter(|p| p.2 == conference) {
            let other_config = self.sim.node(*other).config().clone();
            expect(self.sim.node_mut(*other), &config);
            expect(self.sim.node_mut(id), &other_config);
        }
        self.sim.node_mut(id).set_sending(true);
        self.peers.push((id, bridge, conference.to_string()));
        self.tell_remote_endpoints(conference, 1 - bridge);
        id
    }

    /// Gives bridge `bridge` the participants of `conference` on the other one, as the
    /// conference's relay's remote endpoints.
    fn tell_remote_endpoints(&mut self, conference: &str, bridge: usize) {
        let remotes: Vec<RemoteEndpoint> = self
            .peers
            .iter()
            .filter(|(_, on, c)| *on != bridge && c == conference)
            .map(|&(id, _, _)| {
                let config = self.sim.node(id).config();
                RemoteEndpoint {
                    endpoint_id: config.name.clone(),
                    participant_id: config.name.clone(),
                    sources: self.sources(config),
                }
            })
            .collect();
        let relay_id = self.relay.clone();
        self.sim.with(self.bridges[bridge], |b, now| {
            b.command(
                now,
                Command::UpdateRelay {
                    conference_id: conference.into(),
                    relay_id,
                    transport: None,
                    media: None,
                    remote_endpoints: Some(remotes),
                },
            )
        });
    }

    /// Runs until every conference's relay is connected on both bridges and every participant
    /// to its bridge (at most 10 simulated s).
    pub fn connect_all(&mut self) {
        let peers: Vec<_> = self.peers.iter().map(|p| p.0).collect();
        let (bridges, conferences) = (self.bridges, self.conferences.clone());
        let relay = self.relay.clone();
        let connected = self.sim.run_until_cond(Duration::from_secs(10), |sim| {
            peers.iter().all(|&p| sim.node(p).is_connected())
                && bridges.iter().all(|&b| {
                    conferences.iter().all(|c| {
                        sim.node(b).events().iter().any(|e| {
                            e.endpoint_id == relay
                                && &e.conference_id == c
                                && e.state == EndpointState::Connected
                        })
                    })
                })
        });
        assert!(
            connected,
            "the relays and every participant connect within 10 s"
        );
    }

    /// What the bridges are told `config` sends (see [`Cascade::mint_outputs`]).
    fn sources(&self, config: &PeerConfig) -> SourceSet {
        if self.mint_outputs && !config.video.is_empty() {
            sources_with_output(config)
        } else {
            sources(config)
        }
    }

    /// What `peer` says over its bridge channel (to its own bridge) about what it wants.
    pub fn set_constraints(&mut self, peer: NodeId<SimPeer>, update: ConstraintsUpdate) {
        let (_, bridge, conference) = self
            .peers
            .iter()
            .find(|p| p.0.index() == peer.index())
            .cloned()
            .expect("a participant of the cascade");
        let name = self.sim.node(peer).config().name.clone();
        self.sim.with(self.bridges[bridge], |b, now| {
            b.command(
                now,
                Command::SetConstraints {
                    conference_id: conference,
                    endpoint_id: name,
                    update,
                },
            )
        });
    }

    /// The sender SSRC of the newest packet `receiver` got of `sender`'s video (forwarded
    /// under its minted SSRC).
    pub fn layer_now(&self, receiver: NodeId<SimPeer>, sender: &PeerConfig) -> Option<u32> {
        self.peer(receiver)
            .rx(output_of(sender).0)?
            .packets
            .iter()
            .max_by_key(|p| p.seq)
            .and_then(|p| p.sender_ssrc)
    }

    pub fn peer(&self, id: NodeId<SimPeer>) -> &SimPeer {
        self.sim.node(id)
    }

    /// What bridge `bridge`'s debug endpoint would say of `peer` as a receiver.
    pub fn receiver_report(&mut self, bridge: usize, peer: NodeId<SimPeer>) -> ReceiverReport {
        let name = self.sim.node(peer).config().name.clone();
        self.sim
            .with(self.bridges[bridge], |b, now| {
                b.core.describe_receivers(now)
            })
            .into_iter()
            .find(|r| r.endpoint_id == name)
            .expect("the receiver is on the bridge")
    }

    pub fn counters(&self, bridge: usize) -> Counters {
        self.sim.node(self.bridges[bridge]).counters().clone()
    }

    /// The first conference's relay's states on bridge `bridge`, in order.
    pub fn relay_states(&self, bridge: usize) -> Vec<EndpointState> {
        self.sim
            .node(self.bridges[bridge])
            .events()
            .iter()
            .filter(|e| e.endpoint_id == RELAY && e.conference_id == CONFERENCE)
            .map(|e| e.state)
            .collect()
    }

    pub fn bridge_ip(&self, bridge: usize) -> IpAddr {
        self.sim.node(self.bridges[bridge]).addr.ip()
    }

    /// Makes the link from `from` to `to` lose `loss` of its packets (0 for none).
    pub fn set_loss(&mut self, from: IpAddr, to: IpAddr, loss: f64) {
        let link = LinkConfig::new().delay(self.delay).loss(loss);
        self.sim.net.set_link(from, to, link);
    }
}

/// What a relay carries: the payload types and header extensions of the conference's
/// participants (every test participant negotiates the same), without the sender-local ones
/// (blanked before anything is forwarded).
pub fn relay_media() -> MediaConfig {
    let config = PeerConfig::new("relay", SocketAddr::from(([10, 0, 0, 9], 1)), 0);
    let mut media = media_config(&config);
    for desc in [media.audio.as_mut(), media.video.as_mut()]
        .into_iter()
        .flatten()
    {
        desc.sender_local_extensions = [0; 3];
    }
    media
}
