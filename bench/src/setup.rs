//! Starting the systems under test and the endpoints that load them: the real bridge (every
//! endpoint allocated over gRPC, connected with real ICE + DTLS by the test participant, then
//! handed over to the load loop) and the baseline relay (plain sockets and a route list); the
//! peer SFU (Janus) is in `janus.rs`.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tonic::transport::Channel;
use tutti_participant::{Handover, Participant, ParticipantConfig, RemoteDescription, SrtpChoice};
use tutti_proto::bridge_v1 as pb;
use tutti_proto::bridge_v1::bridge_client::BridgeClient;

/// How long one endpoint may take for ICE + DTLS while hundreds connect at once.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(60);
/// Endpoints set up concurrently.
pub const SETUP_CONCURRENCY: usize = 16;
/// How long a server stopped with SIGTERM may take to exit before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// Receive buffer of every load-generator socket (SO_RCVBUFFORCE), so keyframe bursts fanned
/// out to hundreds of receivers are not dropped by the generator's own sockets.
const GENERATOR_RCVBUF: libc::c_int = 1 << 20;
pub const TWCC_URI: &str =
    "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";

/// Which DTLS-SRTP profile the bridge is forced to (TUTTI_BRIDGE_SRTP_PROFILES).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    Gcm,
    AesCm,
}

impl Profile {
    pub fn name(self) -> &'static str {
        match self {
            Profile::Gcm => "gcm",
            Profile::AesCm => "aes-cm",
        }
    }

    pub fn parse(s: &str) -> anyhow::Result<Profile> {
        match s {
            "gcm" => Ok(Profile::Gcm),
            "aes-cm" => Ok(Profile::AesCm),
            _ => bail!("unknown SRTP profile {s:?} (gcm, aes-cm)"),
        }
    }

    /// SRTP authentication tag length, so baseline datagrams are as large as SRTP ones.
    pub fn tag_len(self) -> usize {
        match self {
            Profile::Gcm => 16,
            Profile::AesCm => 10,
        }
    }

    pub fn choice(self) -> SrtpChoice {
        match self {
            Profile::Gcm => SrtpChoice::GcmOnly,
            Profile::AesCm => SrtpChoice::AesCmOnly,
        }
    }
}

/// One simulcast layer (encoding) of a publisher's video.
#[derive(Clone, Copy, Debug)]
pub struct Layer {
    pub ssrc: u32,
    /// Its RTX partner (signalled in an FID group; nothing is retransmitted on loopback).
    pub rtx_ssrc: u32,
    /// The picture size its key frames announce.
    pub width: u16,
    pub height: u16,
    pub bitrate_bps: u32,
}

/// Simulcast layers as libwebrtc sends a 720p camera: 320x180, 640x360 and 1280x720 at about
/// 1 : 3 : 10 of the bitrate, every layer at the full frame rate.
const SIMULCAST: [(u16, u16, u32); 3] = [
    (320, 180, 150_000),
    (640, 360, 500_000),
    (1280, 720, 1_500_000),
];

/// One endpoint of the load: its socket, where it sends, and (against the bridge) its session.
pub struct Endpoint {
    pub socket: UdpSocket,
    /// The bridge's address of the selected pair, or the relay's address.
    pub to: SocketAddr,
    /// Its SSRCs (the audio SSRC is also the sender SSRC of its RTCP) and its transport-cc
    /// extension id, as signalled.
    pub config: ParticipantConfig,
    /// When it publishes (audio and video): its video's layers, lowest first (the first is
    /// `config.video_ssrc`). Empty for a subscriber.
    pub layers: Vec<Layer>,
    /// SRTP contexts and consent answers (bridge and peer runs).
    pub session: Option<Handover>,
    /// What it receives, and under which SSRCs.
    pub receives: Receives,
    /// Which of the run's bridges it is on (0 but in a conference split over bridges): what
    /// it receives from a publisher on another one crossed a relay.
    pub bridge: usize,
}

/// The streams an endpoint receives and how they arrive.
#[derive(Clone, Debug)]
pub enum Receives {
    /// Every other endpoint's audio and first video layer, under the publishers' own SSRCs and
    /// sequence numbers: the bridge (which passes a fresh stream's first layer through) and the
    /// relay.
    AllOthers,
    /// The streams of this map, from the SSRC each arrives under to its publisher's SSRC, each
    /// renumbered by the forwarder from a sequence number of its own (Janus).
    Renumbered(HashMap<u32, u32>),
}

impl Endpoint {
    pub fn publishes(&self) -> bool {
        !self.layers.is_empty()
    }
}

/// A child process (bridge, relay or peer) pinned to CPU 0, stopped when dropped: killed, or
/// for a server started with [`Server::spawn_logged`] sent SIGTERM first.
pub struct Server {
    child: Child,
    /// The first line it printed (empty for a logged server).
    pub ready_line: String,
    graceful: bool,
}

impl Server {
    fn spawn(mut command: Command) -> anyhow::Result<Server> {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting a server process")?;
        let stdout = child.stdout.take().context("server stdout")?;
        let mut ready_line = String::new();
        BufReader::new(stdout).read_line(&mut ready_line)?;
        if ready_line.trim().is_empty() {
            let _ = child.kill();
            bail!("the server exited before printing its address");
        }
        Ok(Server {
            child,
            ready_line,
            graceful: false,
        })
    }

    /// Starts a server whose output goes to `log` (it prints no ready line); when dropped it
    /// gets SIGTERM and [`STOP_GRACE`] to exit before it is killed.
    pub fn spawn_logged(mut command: Command, log: &Path) -> anyhow::Result<Server> {
        let out = File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let child = command
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("starting {:?}", command.get_program()))?;
        Ok(Server {
            child,
            ready_line: String::new(),
            graceful: true,
        })
    }

    /// Whether the process has exited (and is reaped).
    pub fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// The server's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.graceful && !self.exited() {
            if let Ok(pid) = libc::pid_t::try_from(self.child.id()) {
                // SAFETY: signalling our own child, which has not been reaped yet.
                unsafe { libc::kill(pid, libc::SIGTERM) };
            }
            let deadline = Instant::now() + STOP_GRACE;
            while Instant::now() < deadline {
                if self.exited() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            eprintln!("bench: a server did not exit within {STOP_GRACE:?} of SIGTERM; killing it");
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(serde::Deserialize)]
pub struct BridgeAddresses {
    pub grpc: SocketAddr,
    pub http: SocketAddr,
}

/// A server command on CPU 0 under the real-time FIFO policy, like the generator, so that other
/// work on a shared machine (builds) cannot delay its packets; `chrt` and `taskset` exec the
/// server, so the child's pid is the server's own.
pub fn pinned(binary: &Path) -> Command {
    let mut command = Command::new("chrt");
    command.args(["-f", "10", "taskset", "-c", "0"]).arg(binary);
    command
}

pub fn start_bridge(binary: &Path, profile: Profile) -> anyhow::Result<(Server, BridgeAddresses)> {
    let mut command = pinned(binary);
    command
        .env("TUTTI_BRIDGE_GRPC_ADDRESS", "127.0.0.1:0")
        .env("TUTTI_BRIDGE_HTTP_ADDRESS", "127.0.0.1:0")
        .env("TUTTI_BRIDGE_MEDIA_ADDRESS", "127.0.0.1:0")
        .env("TUTTI_BRIDGE_SRTP_PROFILES", profile.name())
        .env("RUST_LOG", "warn");
    let server = Server::spawn(command)?;
    let addresses: BridgeAddresses = serde_json::from_str(&server.ready_line)
        .with_context(|| format!("bridge ready line {:?}", server.ready_line))?;
    Ok((server, addresses))
}

/// What one endpoint of a scenario does.
#[derive(Clone, Copy)]
pub struct Role {
    pub publishes: bool,
}

pub fn participant_config(index: usize, role: Role, profile: Profile) -> ParticipantConfig {
    let mut config = ParticipantConfig::new(&format!("ep{index}"));
    config.srtp = profile.choice();
    config.send_audio = role.publishes;
    config.send_video = role.publishes;
    // Audio carries RFC 6464 levels (someone talking half the time), as browsers' does: the
    // bridge reads one per audio packet for its dominant speaker.
    config.audio_level_ext_id = Some(AUDIO_LEVEL_EXT_ID);
    config
}

/// The audio level extension's id, as in Jicofo's offers.
const AUDIO_LEVEL_EXT_ID: u8 = 1;
const AUDIO_LEVEL_URI: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";

/// A publisher's video layers: with one layer, the participant's own single stream (its
/// configured bitrate at 640x360); with three, [`SIMULCAST`], the first layer on the
/// participant's video SSRCs and the others on fresh random ones.
pub fn video_layers(config: &ParticipantConfig, count: usize) -> anyhow::Result<Vec<Layer>> {
    if count == 1 {
        return Ok(vec![Layer {
            ssrc: config.video_ssrc,
            rtx_ssrc: config.video_rtx_ssrc,
            width: 640,
            height: 360,
            bitrate_bps: config.video_bitrate_bps,
        }]);
    }
    if count != SIMULCAST.len() {
        bail!("--layers is 1 or {}", SIMULCAST.len());
    }
    let mut taken = vec![config.audio_ssrc, config.video_ssrc, config.video_rtx_ssrc];
    let mut fresh = || loop {
        let ssrc: u32 = rand::random();
        if ssrc != 0 && !taken.contains(&ssrc) {
            taken.push(ssrc);
            break ssrc;
        }
    };
    Ok(SIMULCAST
        .iter()
        .enumerate()
        .map(|(i, &(width, height, bitrate_bps))| {
            let (ssrc, rtx_ssrc) = if i == 0 {
                (config.video_ssrc, config.video_rtx_ssrc)
            } else {
                (fresh(), fresh())
            };
            Layer {
                ssrc,
                rtx_ssrc,
                width,
                height,
                bitrate_bps,
            }
        })
        .collect())
}

/// Allocates every endpoint over gRPC and connects it (ICE + DTLS-SRTP), then takes the
/// sessions over from the participants. With one bridge every endpoint is on it; with two the
/// conference is split over them (endpoint `i` on bridge `i % 2`) and they are linked by a
/// relay as the focus links them (docs/bridge.md, Cascading): `AllocateRelay` on both (the
/// first controlling), `UpdateRelay` with the other's transport and the conference's media,
/// and, once every endpoint has joined, each bridge told the publishers behind its relay.
pub async fn bridge_endpoints(
    grpc: &[SocketAddr],
    roles: &[Role],
    profile: Profile,
    layers: usize,
) -> anyhow::Result<Vec<Endpoint>> {
    let mut clients = Vec::with_capacity(grpc.len());
    for address in grpc {
        let mut client = BridgeClient::connect(format!("http://{address}"))
            .await
            .context("connecting to the bridge's gRPC API")?;
        client
            .create_conference(pb::CreateConferenceRequest {
                conference_id: CONFERENCE.into(),
                name: CONFERENCE.into(),
            })
            .await?;
        clients.push(client);
    }
    match clients.as_mut_slice() {
        [_] => {}
        [a, b] => link(a, b, profile).await?,
        _ => bail!("a conference on one bridge or split over two"),
    }
    let permits = Arc::new(tokio::sync::Semaphore::new(SETUP_CONCURRENCY));
    let mut tasks = tokio::task::JoinSet::new();
    for (index, role) in roles.iter().copied().enumerate() {
        let client = clients[index % clients.len()].clone();
        let permits = permits.clone();
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await?;
            let config = participant_config(index, role, profile);
            let layers = if role.publishes {
                video_layers(&config, layers)?
            } else {
                Vec::new()
            };
            let handover = join(client, index, config.clone(), &layers)
                .await
                .with_context(|| format!("endpoint {index}"))?;
            anyhow::Ok((index, config, layers, handover))
        });
    }
    let mut endpoints: Vec<Option<Endpoint>> = (0..roles.len()).map(|_| None).collect();
    while let Some(joined) = tasks.join_next().await {
        let (index, config, layers, handover) = joined??;
        if handover.srtp_profile.is_empty() {
            bail!("endpoint {index} negotiated no SRTP profile");
        }
        endpoints[index] = Some(Endpoint {
            socket: handover.socket.try_clone()?,
            to: handover.remote,
            config,
            layers,
            session: Some(handover),
            receives: Receives::AllOthers,
            bridge: index % clients.len(),
        });
    }
    let endpoints: Vec<Endpoint> = endpoints.into_iter().flatten().collect();
    if clients.len() > 1 {
        for (bridge, client) in clients.iter_mut().enumerate() {
            let behind_relay = endpoints
                .iter()
                .filter(|e| e.bridge != bridge && e.publishes())
                .map(|e| pb::RemoteEndpoint {
                    endpoint_id: e.config.name.clone(),
                    participant_id: e.config.name.clone(),
                    sources: Some(source_list(&e.config, &e.layers)),
                })
                .collect();
            client
                .update_relay(relay_update(bridge, None, None, Some(behind_relay)))
                .await
                .context("telling a bridge the publishers behind its relay")?;
        }
    }
    for e in &endpoints {
        force_rcvbuf(&e.socket)?;
    }
    Ok(endpoints)
}

/// The conference every run's endpoints are in.
const CONFERENCE: &str = "bench";

/// The relay's id on bridge `bridge` of a conference split over two.
fn relay_id(bridge: usize) -> String {
    format!("relay-to-{}", 1 - bridge)
}

fn relay_update(
    bridge: usize,
    transport: Option<pb::RelayTransport>,
    media: Option<pb::MediaList>,
    remote_endpoints: Option<Vec<pb::RemoteEndpoint>>,
) -> pb::UpdateRelayRequest {
    pb::UpdateRelayRequest {
        conference_id: CONFERENCE.into(),
        relay_id: relay_id(bridge),
        transport,
        media,
        remote_endpoints: remote_endpoints.map(|endpoints| pb::RemoteEndpointList { endpoints }),
    }
}

/// Links the conference on two bridges by a relay: the first side controlling (and DTLS
/// client), each given the other's transport and the conference's media (every endpoint
/// negotiates the same).
async fn link(
    a: &mut BridgeClient<Channel>,
    b: &mut BridgeClient<Channel>,
    profile: Profile,
) -> anyhow::Result<()> {
    let mut transports = Vec::new();
    for (bridge, client) in [&mut *a, &mut *b].into_iter().enumerate() {
        let allocated = client
            .allocate_relay(pb::AllocateRelayRequest {
                conference_id: CONFERENCE.into(),
                relay_id: relay_id(bridge),
                controlling: bridge == 0,
            })
            .await
            .context("allocating a relay")?
            .into_inner();
        transports.push(allocated.transport.context("no relay transport")?);
    }
    let media = media_list(
        &participant_config(0, Role { publishes: true }, profile),
        true,
    );
    for (bridge, client) in [a, b].into_iter().enumerate() {
        let far = transports[1 - bridge].clone();
        client
            .update_relay(relay_update(bridge, Some(far), Some(media.clone()), None))
            .await
            .context("giving a relay the far side's transport")?;
    }
    Ok(())
}

async fn join(
    mut client: BridgeClient<Channel>,
    index: usize,
    config: ParticipantConfig,
    layers: &[Layer],
) -> anyhow::Result<Handover> {
    let endpoint_id = format!("ep{index}");
    let allocated = client
        .allocate_endpoint(pb::AllocateEndpointRequest {
            conference_id: CONFERENCE.into(),
            endpoint_id: endpoint_id.clone(),
            dtls_setup: pb::DtlsSetup::Actpass as i32,
            participant_id: String::new(),
            receives_by_mid: false,
        })
        .await?
        .into_inner();
    let remote = remote_description(allocated.transport.as_ref().context("no transport")?)?;
    let participant = Participant::bind(config.clone()).await?;
    // The load loop sends the media; the participant only connects.
    participant.stop_media();
    let publishes = config.send_audio;
    client
        .update_endpoint(pb::UpdateEndpointRequest {
            conference_id: CONFERENCE.into(),
            endpoint_id,
            transport: Some(remote_transport(&participant)),
            media: Some(media_list(&config, publishes)),
            sources: Some(if publishes {
                source_list(&config, layers)
            } else {
                pb::SourceList::default()
            }),
            receive_mids: None,
        })
        .await?;
    participant.connect(&remote, CONNECT_TIMEOUT).await?;
    participant.hand_over().await
}

fn remote_description(transport: &pb::Transport) -> anyhow::Result<RemoteDescription> {
    let ice = transport.ice.as_ref().context("no ICE parameters")?;
    Ok(RemoteDescription {
        ufrag: ice.ufrag.clone(),
        pwd: ice.pwd.clone(),
        candidates: transport
            .candidates
            .iter()
            .map(|c| Ok(SocketAddr::new(c.ip.parse()?, c.port as u16)))
            .collect::<anyhow::Result<_>>()?,
        fingerprint: transport
            .dtls
            .as_ref()
            .context("no DTLS parameters")?
            .fingerprint
            .clone(),
    })
}

fn remote_transport(participant: &Participant) -> pb::RemoteTransport {
    let local = participant.local_description();
    pb::RemoteTransport {
        ice: Some(pb::IceParameters {
            ufrag: local.ufrag,
            pwd: local.pwd,
            controlling: false,
        }),
        candidates: local
            .candidates
            .iter()
            .map(|addr| pb::Candidate {
                foundation: "0".into(),
                component: 1,
                protocol: "udp".into(),
                priority: tutti_participant::ice::HOST_PRIORITY,
                ip: addr.ip().to_string(),
                port: u32::from(addr.port()),
                r#type: "host".into(),
                generation: 0,
            })
            .collect(),
        dtls: Some(pb::DtlsParameters {
            hash: "sha-256".into(),
            fingerprint: local.fingerprint,
            setup: pb::DtlsSetup::Active as i32,
        }),
    }
}

/// Opus and VP8 (+RTX) with transport-cc, as a browser negotiates them.
pub fn media_list(config: &ParticipantConfig, sends: bool) -> pb::MediaList {
    let extensions = vec![pb::HeaderExtension {
        id: u32::from(config.twcc_ext_id),
        uri: TWCC_URI.into(),
    }];
    let mut audio_extensions = extensions.clone();
    if let Some(id) = config.audio_level_ext_id {
        audio_extensions.push(pb::HeaderExtension {
            id: u32::from(id),
            uri: AUDIO_LEVEL_URI.into(),
        });
    }
    let feedback = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    pb::MediaList {
        media: vec![
            pb::Media {
                r#type: pb::MediaType::Audio as i32,
                payload_types: vec![pb::PayloadType {
                    id: u32::from(config.opus_pt),
                    name: "opus".into(),
                    clock_rate: 48_000,
                    channels: 2,
                    rtcp_fb: feedback(&["transport-cc"]),
                    ..Default::default()
                }],
                header_extensions: audio_extensions,
                sends,
                receives: true,
            },
            pb::Media {
                r#type: pb::MediaType::Video as i32,
                payload_types: vec![
                    pb::PayloadType {
                        id: u32::from(config.vp8_pt),
                        name: "VP8".into(),
                        clock_rate: 90_000,
                        rtcp_fb: feedback(&["ccm fir", "nack", "nack pli", "transport-cc"]),
                        ..Default::default()
                    },
                    pb::PayloadType {
                        id: u32::from(config.rtx_pt),
                        name: "rtx".into(),
                        clock_rate: 90_000,
                        rtx_apt: u32::from(config.vp8_pt),
                        ..Default::default()
                    },
                ],
                header_extensions: extensions,
                sends,
                receives: true,
            },
        ],
    }
}

/// The audio source and the video layers with their RTX partners: an FID group per layer and,
/// with more than one layer, a SIM group of the layers, lowest first. No outputs: the bridge
/// forwards the video under its first layer's SSRC.
pub fn source_list(config: &ParticipantConfig, layers: &[Layer]) -> pb::SourceList {
    let source = |ssrc: u32, kind: pb::MediaType| pb::Source {
        ssrc,
        media_type: kind as i32,
        owner: config.name.clone(),
        name: format!("{}-{ssrc}", config.name),
    };
    let mut sources = vec![source(config.audio_ssrc, pb::MediaType::Audio)];
    let mut groups = Vec::new();
    if layers.len() > 1 {
        groups.push(pb::SourceGroup {
            semantics: "SIM".into(),
            ssrcs: layers.iter().map(|l| l.ssrc).collect(),
        });
    }
    for layer in layers {
        sources.push(source(layer.ssrc, pb::MediaType::Video));
        sources.push(source(layer.rtx_ssrc, pb::MediaType::Video));
        groups.push(pb::SourceGroup {
            semantics: "FID".into(),
            ssrcs: vec![layer.ssrc, layer.rtx_ssrc],
        });
    }
    pb::SourceList {
        sources,
        groups,
        outputs: Vec::new(),
        learnt_sources: Vec::new(),
    }
}

/// Starts the baseline relay on CPU 0 and binds plain sockets for the same endpoints; each
/// publisher's datagrams are routed to every other endpoint, as the bridge forwards them, but
/// for its video layers above the first, which the relay is told to drop (the bridge forwards
/// every receiver the first layer: see docs/benchmarks.md).
pub fn relay_endpoints(
    binary: &Path,
    roles: &[Role],
    profile: Profile,
    layers: usize,
) -> anyhow::Result<(Server, Vec<Endpoint>)> {
    let mut command = pinned(binary);
    command.stdin(Stdio::piped());
    let mut server = Server::spawn(command)?;
    let relay: SocketAddr = server
        .ready_line
        .trim()
        .parse()
        .with_context(|| format!("relay ready line {:?}", server.ready_line))?;
    let mut endpoints = Vec::with_capacity(roles.len());
    for (index, role) in roles.iter().enumerate() {
        let socket = UdpSocket::bind(("127.0.0.1", 0))?;
        socket.set_nonblocking(true)?;
        force_rcvbuf(&socket)?;
        let config = participant_config(index, *role, profile);
        let layers = if role.publishes {
            video_layers(&config, layers)?
        } else {
            Vec::new()
        };
        endpoints.push(Endpoint {
            socket,
            to: relay,
            config,
            layers,
            session: None,
            receives: Receives::AllOthers,
            bridge: 0,
        });
    }
    let addrs: Vec<SocketAddr> = endpoints
        .iter()
        .map(|e| e.socket.local_addr())
        .collect::<Result<_, _>>()?;
    let mut routes = String::new();
    for (i, e) in endpoints.iter().enumerate() {
        if !e.publishes() {
            continue;
        }
        routes.push_str(&addrs[i].to_string());
        for (j, addr) in addrs.iter().enumerate() {
            if j != i {
                routes.push(' ');
                routes.push_str(&addr.to_string());
            }
        }
        routes.push('\n');
        if e.layers.len() > 1 {
            routes.push_str("drop");
            for layer in &e.layers[1..] {
                routes.push_str(&format!(" {} {}", layer.ssrc, layer.rtx_ssrc));
            }
            routes.push('\n');
        }
    }
    let mut stdin = server.child.stdin.take().context("relay stdin")?;
    stdin.write_all(routes.as_bytes())?;
    drop(stdin);
    Ok((server, endpoints))
}

pub fn force_rcvbuf(socket: &UdpSocket) -> anyhow::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: a valid fd and an int option value of the declared size.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            &GENERATOR_RCVBUF as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error()).context("SO_RCVBUFFORCE (needs root)");
    }
    Ok(())
}
