//! The in-memory harness for the bridge's core: the sans-IO [`Core`] as a node of `tutti-sim`'s
//! simulated network and clock, str0m participants ([`SimPeer`]) around it, and the signalling
//! the focus would do (allocate, describe the transport, media and sources, tell the others) by
//! direct commands. No socket, no thread, no real clock: a test of a minute of call runs in the
//! time its CPU work takes, and its network (delay, loss, caps, cuts) is the seed's.
//!
//! DTLS completes for real (the core's OpenSSL against str0m's own DTLS), so SRTP keys are what
//! the handshake gives: installing keys directly would leave the handshake, the fingerprint
//! check and the key export untested here. OpenSSL and str0m draw their own randomness for it,
//! so only the network's behaviour is reproducible from the seed, not every byte.

#![allow(dead_code)] // each scenario file uses a different part of the harness

pub mod cascade;
pub mod receiver_link;
mod record;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use tutti_bridge::media::constraints::ConstraintsUpdate;
use tutti_bridge::media::core::describe::ReceiverReport;
use tutti_bridge::media::core::Core;
use tutti_bridge::media::limits::LimitSettings;
use tutti_bridge::media::outbox::{Datagrams, SLOT};
use tutti_bridge::media::stats::Counters;
use tutti_bridge::media::{
    ChannelNotice, Command, ConnectionStats, EndpointSettings, EndpointState, ForwardedEndpoints,
    GroupSemantics, LearntSource, MediaConfig, MediaDesc, MediaKind, Mid, RemoteSetup,
    RemoteTransport, SourceDesc, SourceGroup, SourceOutput, SourceSet, SpeakerSettings,
    WorkerEvent,
};
use tutti_rtp::codec::Codec;
use tutti_sim::{LinkConfig, Node, NodeId, Outbox, PeerConfig, RxStream, Sim, SimPeer};

use record::SeedRecorder;

pub const BRIDGE: &str = "10.0.0.1:10000";
pub const CONFERENCE: &str = "conference";

/// The bridge's core as a node: one address, the datagrams it writes passed to the network.
pub struct BridgeNode {
    pub core: Core,
    pub addr: SocketAddr,
    pub fingerprint: [u8; 32],
    out: Datagrams,
    events: Vec<WorkerEvent>,
    forwarded: Vec<ForwardedEndpoints>,
    connection_stats: Vec<ConnectionStats>,
    /// Every bridge-channel notice, with when it was queued.
    notices: Vec<(Instant, ChannelNotice)>,
    last_now: Instant,
    /// What arrives, kept as fuzz seeds when `TUTTI_RECORD_SEEDS` asks for it.
    recorder: Option<SeedRecorder>,
}

impl BridgeNode {
    pub fn new(
        seed: u64,
        start: Instant,
        srtp_profiles: tutti_dtls::SrtpProfiles,
        speakers: SpeakerSettings,
        limits: LimitSettings,
    ) -> BridgeNode {
        BridgeNode::at(
            BRIDGE.parse().unwrap(),
            seed,
            start,
            srtp_profiles,
            speakers,
            limits,
        )
    }

    /// A bridge whose media socket is `addr`.
    pub fn at(
        addr: SocketAddr,
        seed: u64,
        start: Instant,
        srtp_profiles: tutti_dtls::SrtpProfiles,
        speakers: SpeakerSettings,
        limits: LimitSettings,
    ) -> BridgeNode {
        let cert = tutti_dtls::Certificate::generate().expect("a DTLS certificate");
        let fingerprint =
            tutti_dtls::parse_fingerprint("sha-256", cert.fingerprint()).expect("sha-256");
        let settings = EndpointSettings {
            consent_timeout: Duration::from_secs(10),
            ice_timeout: Duration::from_secs(10),
            dtls_timeout: Duration::from_secs(10),
            srtp_profiles,
            retransmission_cache_packets: 512,
            receiver_bandwidth_bps: 2_500_000,
            speakers,
            limits,
        };
        BridgeNode {
            core: Core::new(cert, settings, seed, start),
            addr,
            fingerprint,
            out: Datagrams::default(),
            events: Vec::new(),
            forwarded: Vec::new(),
            connection_stats: Vec::new(),
            notices: Vec::new(),
            last_now: start,
            recorder: SeedRecorder::from_env(srtp_profiles),
        }
    }

    /// Applies a control command (what the gRPC API would hand the worker).
    pub fn command(&mut self, now: Instant, command: Command) {
        self.last_now = now;
        self.core.handle_command(now, command, &mut self.out);
        self.collect_events();
    }

    /// A datagram from `from`, handed to the core as if it had arrived (for hostile input
    /// that no participant would send); what the core answers goes out with the next step.
    pub fn inject(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        self.last_now = now;
        let mut buf = [0u8; SLOT];
        let n = data.len().min(SLOT);
        buf[..n].copy_from_slice(&data[..n]);
        self.core
            .handle_datagram(now, from, &mut buf, data.len(), &mut self.out);
        self.collect_events();
    }

    /// Every state change the core reported so far.
    pub fn events(&self) -> &[WorkerEvent] {
        &self.events
    }

    pub fn counters(&self) -> &Counters {
        self.core.counters()
    }

    /// Every LastNEndpointsChangeEvent the core asked to send, in order.
    pub fn forwarded(&self) -> &[ForwardedEndpoints] {
        &self.forwarded
    }

    /// Every DominantSpeakerEndpointChangeEvent and SenderVideoConstraints the core asked to
    /// send, with when, in order.
    pub fn notices(&self) -> &[(Instant, ChannelNotice)] {
        &self.notices
    }

    /// Every ConnectionStats the core asked to send, in order.
    pub fn connection_stats(&self) -> &[ConnectionStats] {
        &self.connection_stats
    }

    fn collect_events(&mut self) {
        while let Some(event) = self.core.poll_event() {
            self.events.push(event);
        }
        while let Some(forwarded) = self.core.poll_forwarded() {
            self.forwarded.push(forwarded);
        }
        while let Some(stats) = self.core.poll_connection_stats() {
            self.connection_stats.push(stats);
        }
        while let Some(notice) = self.core.poll_channel_notice() {
            self.notices.push((self.last_now, notice));
        }
    }

    fn flush(&mut self, out: &mut Outbox) {
        out.extend_from(self.addr, self.out.sent.drain(..));
    }
}

impl Node for BridgeNode {
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
        if let Some(recorder) = &mut self.recorder {
            recorder.record(from, data);
        }
        self.inject(now, from, data);
        self.flush(out);
    }

    fn handle_timeout(&mut self, now: Instant, out: &mut Outbox) {
        self.last_now = now;
        self.core.handle_timeout(now, &mut self.out);
        self.collect_events();
        self.flush(out);
    }

    fn poll_timeout(&mut self) -> Option<Instant> {
        // What a command wrote goes out at once.
        if !self.out.sent.is_empty() {
            return Some(self.last_now);
        }
        Some(self.core.poll_timeout())
    }
}

/// A conference on one simulated bridge.
pub struct Call {
    pub sim: Sim,
    pub bridge: NodeId<BridgeNode>,
    pub peers: Vec<NodeId<SimPeer>>,
    next_host: u8,
    /// Every link's one-way delay.
    delay: Duration,
    /// Video sources are forwarded under SSRCs of their own ([`sources_with_output`]), as the
    /// focus mints them, rather than under their first layer's.
    pub mint_outputs: bool,
    /// The participants whose endpoints receive by MID, as the focus allocates a standards
    /// client's ([`Call::join_receiving_by_mid`]).
    by_mid: Vec<String>,
}

impl Call {
    /// A conference on a network whose links all have `delay_ms` of one-way delay, on a bridge
    /// that prefers AEAD_AES_128_GCM (the default).
    pub fn new(seed: u64, delay_ms: u64) -> Call {
        Call::with_srtp(seed, delay_ms, tutti_dtls::SrtpProfiles::GcmThenAesCm)
    }

    /// Like [`Call::new`], on a bridge that accepts only `srtp_profiles`.
    pub fn with_srtp(seed: u64, delay_ms: u64, srtp_profiles: tutti_dtls::SrtpProfiles) -> Call {
        Call::with_settings(seed, delay_ms, srtp_profiles, SpeakerSettings::default())
    }

    /// Like [`Call::with_srtp`], on a bridge with `speakers`' last-N and loudest-audio limits.
    pub fn with_settings(
        seed: u64,
        delay_ms: u64,
        srtp_profiles: tutti_dtls::SrtpProfiles,
        speakers: SpeakerSettings,
    ) -> Call {
        Call::with_everything(
            seed,
            delay_ms,
            srtp_profiles,
            speakers,
            LimitSettings::default(),
        )
    }

    /// Like [`Call::new`], on a bridge with these per-endpoint and per-conference rate limits.
    pub fn with_limits(seed: u64, delay_ms: u64, limits: LimitSettings) -> Call {
        Call::with_everything(
            seed,
            delay_ms,
            tutti_dtls::SrtpProfiles::GcmThenAesCm,
            SpeakerSettings::default(),
            limits,
        )
    }

    fn with_everything(
        seed: u64,
        delay_ms: u64,
        srtp_profiles: tutti_dtls::SrtpProfiles,
        speakers: SpeakerSettings,
        limits: LimitSettings,
    ) -> Call {
        let start = Instant::now();
        let delay = Duration::from_millis(delay_ms);
        let mut sim = Sim::new(seed, start);
        sim.net.set_default_link(LinkConfig::new().delay(delay));
        let bridge = sim.add(
            "bridge",
            BridgeNode::new(seed, start, srtp_profiles, speakers, limits),
        );
        sim.with(bridge, |b, now| {
            b.command(
                now,
                Command::CreateConference {
                    conference_id: CONFERENCE.into(),
                },
            )
        });
        Call {
            sim,
            bridge,
            peers: Vec::new(),
            next_host: 2,
            delay,
            mint_outputs: false,
            by_mid: Vec::new(),
        }
    }

    /// Makes the link from `from` to `to` lose `loss` of its packets (0 for none).
    pub fn set_loss(&mut self, from: IpAddr, to: IpAddr, loss: f64) {
        let link = LinkConfig::new().delay(self.delay).loss(loss);
        self.sim.net.set_link(from, to, link);
    }

    /// A browser-like participant's configuration at the next free address.
    pub fn peer_config(&mut self, name: &str) -> PeerConfig {
        let addr = SocketAddr::from(([10, 0, 1, self.next_host], 5000));
        self.next_host += 1;
        PeerConfig::new(name, addr, u64::from(self.next_host))
    }

    /// Joins a participant the way the focus does: an endpoint for it, its transport, media
    /// and sources to the bridge, the bridge's transport to it, and every participant told of
    /// the other's sources (as the receivers' Jingle names them: the first layer and its RTX).
    pub fn join(&mut self, config: PeerConfig) -> NodeId<SimPeer> {
        let name = config.name.clone();
        let peer = SimPeer::new(config, self.sim.start());
        let id = self.sim.add(&name, peer);
        self.connect(id);
        let config = self.sim.node(id).config().clone();
        let expect = if self.mint_outputs {
            expect_simulcast
        } else {
            expect
        };
        for &other in &self.peers {
            let other_config = self.sim.node(other).config().clone();
            expect(self.sim.node_mut(other), &config);
            expect(self.sim.node_mut(id), &other_config);
        }
        self.sim.node_mut(id).set_sending(true);
        self.peers.push(id);
        id
    }

    /// Joins a participant as [`Call::join`] does, on an endpoint that receives by MID (a
    /// standards client): it is forwarded only the streams [`Call::set_receive_mids`] gives a
    /// MID.
    pub fn join_receiving_by_mid(&mut self, config: PeerConfig) -> NodeId<SimPeer> {
        self.by_mid.push(config.name.clone());
        self.join(config)
    }

    /// Joins a participant signalled by MID alone (`signalled`, e.g. [`sources_by_mid`]): a
    /// standards client that sends no XEP-0339 sources. The others are told of its streams under
    /// their outputs, it of theirs as [`Call::join`] tells (join such participants last).
    pub fn join_by_mid(&mut self, config: PeerConfig, signalled: SourceSet) -> NodeId<SimPeer> {
        let name = config.name.clone();
        let peer = SimPeer::new(config, self.sim.start());
        let id = self.sim.add(&name, peer);
        self.connect_signalling(id, signalled.clone());
        let config = self.sim.node(id).config().clone();
        for &other in &self.peers {
            let other_config = self.sim.node(other).config().clone();
            expect_by_mid(self.sim.node_mut(other), &config, &signalled);
            if self.mint_outputs {
                expect_simulcast(self.sim.node_mut(id), &other_config);
            } else {
                expect(self.sim.node_mut(id), &other_config);
            }
        }
        self.sim.node_mut(id).set_sending(true);
        self.peers.push(id);
        id
    }

    /// Gives `peer` a (new) endpoint on the bridge named after it, and connects them.
    pub fn connect(&mut self, peer: NodeId<SimPeer>) {
        let config = self.sim.node(peer).config().clone();
        let signalled = if self.mint_outputs && !config.video.is_empty() {
            sources_with_output(&config)
        } else {
            sources(&config)
        };
        self.connect_signalling(peer, signalled);
    }

    /// Like [`Call::connect`], with `signalled` as the sources the bridge is told of (which
    /// need not be what the participant sends).
    pub fn connect_signalling(&mut self, peer: NodeId<SimPeer>, signalled: SourceSet) {
        let config = self.sim.node(peer).config().clone();
        let local = self.sim.node(peer).local();
        let ice = tutti_ice::Credentials::random();
        let (ufrag, pwd) = (ice.ufrag.clone(), ice.pwd.clone());
        let bridge_addr = self.sim.node(self.bridge).addr;
        let fingerprint = self.sim.node(self.bridge).fingerprint;
        let receives_by_mid = self.by_mid.contains(&config.name);
        self.sim.with(self.bridge, |b, now| {
            b.command(
                now,
                Command::AllocateEndpoint {
                    conference_id: CONFERENCE.into(),
                    endpoint_id: config.name.clone(),
                    participant_id: config.name.clone(),
                    ice,
                    allocation: 1,
                    receives_by_mid,
                },
            );
            b.command(
                now,
                Command::UpdateEndpoint {
                    conference_id: CONFERENCE.into(),
                    endpoint_id: config.name.clone(),
                    transport: Some(RemoteTransport {
                        ufrag: local.ufrag.clone(),
                        pwd: local.pwd.clone(),
                        candidates: vec![(local.candidate, local.priority)],
                        fingerprint: local.fingerprint,
                        setup: if config.dtls_active {
                            RemoteSetup::Active
                        } else {
                            RemoteSetup::Passive
                        },
                    }),
                    media: Some(media_config(&config)),
                    sources: Some(signalled),
                    receive_mids: None,
                },
            );
        });
        self.sim.node_mut(peer).set_remote(
            &ufrag,
            &pwd,
            fingerprint,
            &[(bridge_addr, 2_130_706_431)],
        );
    }

    /// Gives `peer` the MIDs it receives streams under (by the SSRC it gets each under), as the
    /// focus does for a standards client; an empty list takes them away.
    pub fn set_receive_mids(&mut self, peer: NodeId<SimPeer>, mids: &[(u32, &str)]) {
        let name = self.sim.node(peer).config().name.clone();
        let mids = mids
            .iter()
            .map(|&(ssrc, mid)| (ssrc, Mid::new(mid).expect("a valid MID")))
            .collect();
        self.sim.with(self.bridge, |b, now| {
            b.command(
                now,
                Command::UpdateEndpoint {
                    conference_id: CONFERENCE.into(),
                    endpoint_id: name,
                    transport: None,
                    media: None,
                    sources: None,
                    receive_mids: Some(mids),
                },
            )
        });
    }

    /// Expires `peer`'s endpoint on the bridge.
    pub fn expire(&mut self, peer: NodeId<SimPeer>) {
        let name = self.sim.node(peer).config().name.clone();
        self.sim.with(self.bridge, |b, now| {
            b.command(
                now,
                Command::ExpireEndpoint {
                    conference_id: CONFERENCE.into(),
                    endpoint_id: name,
                },
            )
        });
    }

    /// What `peer` says over its bridge channel about what it wants forwarded.
    pub fn set_constraints(&mut self, peer: NodeId<SimPeer>, update: ConstraintsUpdate) {
        let name = self.sim.node(peer).config().name.clone();
        self.sim.with(self.bridge, |b, now| {
            b.command(
                now,
                Command::SetConstraints {
                    conference_id: CONFERENCE.into(),
                    endpoint_id: name,
                    update,
                },
            )
        });
    }

    /// The latest list of endpoints `peer` was told it gets video from.
    pub fn forwarded_to(&self, peer: NodeId<SimPeer>) -> Option<Vec<String>> {
        let name = &self.sim.node(peer).config().name;
        self.sim
            .node(self.bridge)
            .forwarded()
            .iter()
            .rev()
            .find(|f| &f.endpoint_id == name)
            .map(|f| f.endpoints.clone())
    }

    /// Runs until every participant is connected to the bridge (at most 10 simulated s).
    pub fn connect_all(&mut self) {
        let peers = self.peers.clone();
        let connected = self.sim.run_until_cond(Duration::from_secs(10), |sim| {
            peers.iter().all(|&p| sim.node(p).is_connected())
        });
        assert!(connected, "every participant connects within 10 s");
    }

    pub fn peer(&self, id: NodeId<SimPeer>) -> &SimPeer {
        self.sim.node(id)
    }

    pub fn counters(&self) -> Counters {
        self.sim.node(self.bridge).counters().clone()
    }

    /// What `receiver` got of `sender`'s video (under the SSRC minted for it).
    pub fn video_from(&self, receiver: NodeId<SimPeer>, sender: &PeerConfig) -> &RxStream {
        self.peer(receiver)
            .rx(output_of(sender).0)
            .expect("the video is expected")
    }

    /// The sender SSRC of the newest packet `receiver` got of `sender`'s video.
    pub fn layer_now(&self, receiver: NodeId<SimPeer>, sender: &PeerConfig) -> Option<u32> {
        self.video_from(receiver, sender)
            .packets
            .iter()
            .max_by_key(|p| p.seq)
            .and_then(|p| p.sender_ssrc)
    }

    /// Every dominant speaker the conference was told of, with when, and the previous
    /// speakers told with it.
    pub fn dominant_speakers(&self) -> Vec<(Instant, String, Vec<String>)> {
        self.sim
            .node(self.bridge)
            .notices()
            .iter()
            .filter_map(|(at, n)| match n {
                ChannelNotice::DominantSpeaker {
                    dominant, previous, ..
                } => Some((*at, dominant.clone(), previous.clone())),
                _ => None,
            })
            .collect()
    }

    /// Every SenderVideoConstraints `peer` was told (idealHeight), with when.
    pub fn sender_constraints(&self, peer: NodeId<SimPeer>) -> Vec<(Instant, u32)> {
        let name = &self.sim.node(peer).config().name;
        self.sim
            .node(self.bridge)
            .notices()
            .iter()
            .filter_map(|(at, n)| match n {
                ChannelNotice::SenderConstraints {
                    endpoint_id,
                    ideal_height,
                    ..
                } if endpoint_id == name => Some((*at, *ideal_height)),
                _ => None,
            })
            .collect()
    }

    /// The bandwidth estimates `peer` was told over its bridge channel, in order.
    pub fn estimates_told(&self, peer: NodeId<SimPeer>) -> Vec<u64> {
        let name = &self.sim.node(peer).config().name;
        self.sim
            .node(self.bridge)
            .connection_stats()
            .iter()
            .filter(|s| &s.endpoint_id == name)
            .map(|s| s.estimated_downlink_bps)
            .collect()
    }

    /// What the bridge's debug endpoint would say of `peer` as a receiver.
    pub fn receiver_report(&mut self, peer: NodeId<SimPeer>) -> ReceiverReport {
        let name = self.sim.node(peer).config().name.clone();
        self.sim
            .with(self.bridge, |b, now| b.core.describe_receivers(now))
            .into_iter()
            .find(|r| r.endpoint_id == name)
            .expect("the receiver is on the bridge")
    }

    /// The endpoint states the core reported for `name`, in order.
    pub fn states(&self, name: &str) -> Vec<EndpointState> {
        self.sim
            .node(self.bridge)
            .events()
            .iter()
            .filter(|e| e.endpoint_id == name)
            .map(|e| e.state)
            .collect()
    }

    pub fn bridge_ip(&self) -> IpAddr {
        self.sim.node(self.bridge).addr.ip()
    }
}

/// What a receiver is told of `sender`'s sources: audio, and video as its first layer with RTX.
pub fn expect(receiver: &mut SimPeer, sender: &PeerConfig) {
    if let Some(audio) = sender.audio {
        receiver.expect_audio(audio);
    }
    if let Some(first) = sender.video.first() {
        receiver.expect_video(first.ssrc, first.rtx);
    }
}

/// The media a peer negotiated, as the gRPC API would give it to the core.
pub fn media_config(config: &PeerConfig) -> MediaConfig {
    let desc = |rtx: Vec<(u8, u8)>, codecs: Vec<(u8, Codec)>, pts: &[u8]| MediaDesc {
        sends: true,
        receives: true,
        twcc_extension: config.twcc_ext,
        audio_level_extension: None,
        sender_local_extensions: [
            config.mid_ext.unwrap_or(0),
            config.rid_extensions.map_or(0, |(rid, _)| rid),
            config.rid_extensions.map_or(0, |(_, repaired)| repaired),
        ],
        transport_cc: config.twcc_feedback,
        rtx,
        codecs,
        payload_types: pts.iter().fold(0, |set, &pt| set | 1u128 << pt),
    };
    MediaConfig {
        audio: Some(MediaDesc {
            audio_level_extension: config.audio_level_ext,
            ..desc(Vec::new(), Vec::new(), &[config.opus_pt])
        }),
        video: Some(desc(
            vec![
                (config.vp8_pt, config.rtx_pt),
                (config.h264_pt, config.h264_rtx_pt),
            ],
            vec![(config.vp8_pt, Codec::Vp8), (config.h264_pt, Codec::H264)],
            &[
                config.vp8_pt,
                config.rtx_pt,
                config.h264_pt,
                config.h264_rtx_pt,
            ],
        )),
    }
}

/// The sources a peer sends, as the focus passes them to the bridge (named `<peer>-a0` and
/// `<peer>-v0`), forwarded under the first layer's SSRCs.
pub fn sources(config: &PeerConfig) -> SourceSet {
    let mut set = SourceSet::default();
    let desc = |ssrc: u32, kind: MediaKind, suffix: &str| SourceDesc {
        ssrc,
        kind,
        name: format!("{}-{suffix}", config.name),
    };
    if let Some(audio) = config.audio {
        set.sources.push(desc(audio, MediaKind::Audio, "a0"));
    }
    for layer in &config.video {
        set.sources.push(desc(layer.ssrc, MediaKind::Video, "v0"));
        if let Some(rtx) = layer.rtx {
            set.sources.push(desc(rtx, MediaKind::Video, "v0"));
            set.groups.push(SourceGroup {
                semantics: GroupSemantics::Fid,
                ssrcs: vec![layer.ssrc, rtx],
            });
        }
    }
    if config.video.len() > 1 {
        set.groups.push(SourceGroup {
            semantics: GroupSemantics::Simulcast,
            ssrcs: config.video.iter().map(|l| l.ssrc).collect(),
        });
    }
    set
}

/// The SSRCs a simulcast test forwards `config`'s video under (as the focus would mint them):
/// derived from its first layer's, so distinct per peer.
pub fn output_of(config: &PeerConfig) -> (u32, u32) {
    let first = config.video[0].ssrc;
    (first ^ 0x5a5a_0001, first ^ 0x5a5a_0002)
}

/// [`sources`], with the video forwarded under [`output_of`]; a peer that sends RIDs
/// ([`PeerConfig::rid_extensions`]) has its video signalled by RID only.
pub fn sources_with_output(config: &PeerConfig) -> SourceSet {
    let (ssrc, rtx) = output_of(config);
    if config.rid_extensions.is_some() {
        let audio_only = PeerConfig {
            video: Vec::new(),
            ..config.clone()
        };
        let mut set = sources(&audio_only);
        set.learnt_sources.push(LearntSource {
            kind: MediaKind::Video,
            name: format!("{}-v0", config.name),
            mid: None,
            rids: config.video.iter().filter_map(|l| l.rid.clone()).collect(),
            output: (ssrc, Some(rtx)),
        });
        return set;
    }
    let mut set = sources(config);
    set.outputs.push(SourceOutput {
        source: config.video[0].ssrc,
        ssrc,
        rtx: Some(rtx),
    });
    set
}

/// The SSRC `config`'s audio is forwarded under when it is signalled by MID (as the focus would
/// mint it).
pub fn audio_output_of(config: &PeerConfig) -> u32 {
    config.audio.unwrap() ^ 0x5a5a_0003
}

/// `config`'s audio and video signalled by MID alone, as the focus describes a standards client
/// that sends no XEP-0339 sources: no SSRC, the peer's MIDs, forwarded under outputs
/// ([`audio_output_of`], [`output_of`]).
pub fn sources_by_mid(config: &PeerConfig) -> SourceSet {
    let (ssrc, rtx) = output_of(config);
    let learnt = |kind, mid: &str, suffix: &str, output| LearntSource {
        kind,
        name: format!("{}-{suffix}", config.name),
        mid: Some(Mid::new(mid).expect("a valid MID")),
        rids: Vec::new(),
        output,
    };
    SourceSet {
        learnt_sources: vec![
            learnt(
                MediaKind::Audio,
                tutti_sim::AUDIO_MID,
                "a0",
                (audio_output_of(config), None),
            ),
            learnt(
                MediaKind::Video,
                tutti_sim::VIDEO_MID,
                "v0",
                (ssrc, Some(rtx)),
            ),
        ],
        ..SourceSet::default()
    }
}

/// What a receiver is told of a `sender` signalled by MID alone (`signalled`, e.g.
/// [`sources_by_mid`]): its audio and first video layer under their outputs.
pub fn expect_by_mid(receiver: &mut SimPeer, sender: &PeerConfig, signalled: &SourceSet) {
    for learnt in &signalled.learnt_sources {
        match learnt.kind {
            MediaKind::Audio => receiver.expect_audio_from(learnt.output.0, sender.audio.unwrap()),
            MediaKind::Video => receiver.expect_video_from(
                learnt.output.0,
                learnt.output.1,
                &[sender.video[0].ssrc],
            ),
        }
    }
}

/// What a receiver is told of a simulcast `sender` whose sources were given with
/// [`sources_with_output`]: audio, and one video stream that may carry any layer.
pub fn expect_simulcast(receiver: &mut SimPeer, sender: &PeerConfig) {
    if let Some(audio) = sender.audio {
        receiver.expect_audio(audio);
    }
    if sender.video.is_empty() {
        return;
    }
    let (ssrc, rtx) = output_of(sender);
    let layers: Vec<u32> = sender.video.iter().map(|l| l.ssrc).collect();
    receiver.expect_video_from(ssrc, Some(rtx), &layers);
}

/// Asserts that `receiver` got the audio (200 packets or more) and video (150 complete frames
/// or more) of `sender`, signalled by MID alone, whole under their outputs
/// ([`sources_by_mid`]): no gap in the video, no incomplete frame, no payload error.
pub fn assert_receives_learnt_cleanly(receiver: &SimPeer, sender: &PeerConfig) {
    let name = (&receiver.config().name, &sender.name);
    let audio = receiver.rx(audio_output_of(sender)).expect("the audio");
    assert!(audio.received() >= 200, "{name:?}: {}", audio.received());
    let video = receiver.rx(output_of(sender).0).expect("the video");
    let frames = video.frames();
    assert!(frames.complete >= 150, "{name:?}: {frames:?}");
    assert_eq!(frames.incomplete, 0, "{name:?}: {frames:?}");
    assert!(
        video.is_continuous(),
        "{name:?}: gaps {:?}",
        video.missing()
    );
    assert_eq!(
        (audio.payload_errors, video.payload_errors),
        (0, 0),
        "{name:?}"
    );
}

/// Asserts that `receiver` got `sender`'s audio (200 packets or more) and first video encoding
/// (120 complete frames or more) whole: no gap, no incomplete frame, no payload error.
pub fn assert_receives_cleanly(receiver: &SimPeer, sender: &PeerConfig) {
    let name = (&receiver.config().name, &sender.name);
    let audio = receiver.rx(sender.audio.unwrap()).unwrap();
    assert!(
        audio.received() >= 200,
        "{name:?}: audio {}",
        audio.received()
    );
    assert!(
        audio.is_continuous(),
        "{name:?}: audio gaps {:?}",
        audio.missing()
    );
    assert_eq!(audio.payload_errors, 0, "{name:?}");
    let video = receiver.rx(sender.video[0].ssrc).unwrap();
    let frames = video.frames();
    assert!(frames.complete >= 120, "{name:?}: {frames:?}");
    assert_eq!(frames.incomplete, 0, "{name:?}: {frames:?}");
    assert!(
        video.is_continuous(),
        "{name:?}: video gaps {:?}",
        video.missing()
    );
    assert_eq!(video.payload_errors, 0, "{name:?}");
}
