//! The peer leg: Janus VideoRoom from Debian's `janus` package, started for every run on CPU 0
//! with a configuration of its own (only the HTTP transport and the VideoRoom plugin; the Janus
//! API and the Admin API on 127.0.0.1), stopped with SIGTERM after it.
//!
//! Every endpoint of a scenario is a WebRTC peer connection to Janus, set up over Janus's HTTP
//! API with the same test participant as against the bridge (ICE, DTLS client, SRTP with the
//! one profile of the row offered, so Janus takes that one on every leg): a publisher offers its
//! audio and its simulcast video (SSRCs in a SIM group, RTX in FID groups, candidates in the
//! SDP) with `joinandconfigure`, as ICE controlling agent; a subscriber `join`s with the feeds it
//! receives (the lowest simulcast layer, as the bridge forwards) and answers Janus's offer.
//! A meeting participant is two peer connections, as with any Janus client: its publisher and
//! its subscriber to everyone else. Janus sends each subscriber a stream under an SSRC of its
//! own (from its offer) and renumbers it; the load loop maps both back (`Receives::Renumbered`).
//!
//! Janus gathers no ICE candidate on a loopback interface, so the namespace gets an `ifb`
//! device holding 127.0.0.1/32 (only inside the benchmark's own network namespace).

use std::collections::{HashMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tutti_participant::ice::{IceRole, HOST_PRIORITY};
use tutti_participant::{
    Handover, LocalDescription, Participant, ParticipantConfig, RemoteDescription,
};

use crate::setup::{
    self, Endpoint, Layer, Profile, Receives, Role, Server, CONNECT_TIMEOUT, SETUP_CONCURRENCY,
    TWCC_URI,
};
use crate::sys;

/// Port of the Janus API and of the Admin API (inside the benchmark's namespace).
const API_PORT: u16 = 8088;
const ADMIN_PORT: u16 = 7088;
const ADMIN_SECRET: &str = "tutti-bench";
/// Janus's media ports: below the kernel's ephemeral range, where the generator's sockets are.
const RTP_PORTS: &str = "10000-20000";
/// The device that gives Janus a non-loopback interface with 127.0.0.1.
const DEVICE: &str = "tjanus0";
const ROOM: u64 = 1;
/// How long Janus may take to answer its API after starting, and to send an awaited event.
const START_TIMEOUT: Duration = Duration::from_secs(15);
const EVENT_TIMEOUT: Duration = Duration::from_secs(30);
/// Lines of Janus's log shown with an error.
const LOG_TAIL: usize = 30;

/// Janus's threading.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Threading {
    /// `event_loops = 1`: every handle on one event loop thread, its best setting on these
    /// machines.
    OneLoop,
    /// Its default: a loop and thread per handle.
    Default,
}

impl Threading {
    pub fn name(self) -> &'static str {
        match self {
            Threading::OneLoop => "event_loops=1",
            Threading::Default => "default",
        }
    }

    pub fn parse(s: &str) -> anyhow::Result<Threading> {
        match s {
            "loops1" => Ok(Threading::OneLoop),
            "default" => Ok(Threading::Default),
            _ => bail!("unknown Janus threading {s:?} (loops1, default)"),
        }
    }
}

/// The name Janus gives the SRTP profile in its Admin API.
fn janus_profile_name(profile: Profile) -> &'static str {
    match profile {
        Profile::Gcm => "SRTP_AEAD_AES_128_GCM",
        Profile::AesCm => "SRTP_AES128_CM_SHA1_80",
    }
}

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running Janus; stopped (SIGTERM) and its directory removed when dropped.
pub struct Janus {
    server: Server,
    dir: TempDir,
    pub api: SocketAddr,
    admin: SocketAddr,
    /// Its version, as its API reports it.
    pub version: String,
}

impl Janus {
    /// Writes a configuration and starts Janus on CPU 0; returns once its API answers.
    pub fn start(threading: Threading, rt: &tokio::runtime::Runtime) -> anyhow::Result<Janus> {
        give_janus_an_address()?;
        let dir = std::env::temp_dir().join(format!("tutti-bench-janus-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let dir = TempDir(dir);
        write_config(&dir.0, &janus_lib_dir(), threading)?;
        let mut command = setup::pinned(Path::new("janus"));
        command
            .arg("-F")
            .arg(&dir.0)
            .arg("-C")
            .arg(dir.0.join("janus.jcfg"));
        let server = Server::spawn_logged(command, &dir.0.join("janus.log"))?;
        let localhost = Ipv4Addr::LOCALHOST;
        let mut janus = Janus {
            server,
            dir,
            api: SocketAddrV4::new(localhost, API_PORT).into(),
            admin: SocketAddrV4::new(localhost, ADMIN_PORT).into(),
            version: String::new(),
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let info = json!({"janus": "info", "transaction": transaction()});
            match rt.block_on(post(janus.api, "/janus", &info)) {
                Ok(reply) if reply["janus"] == "server_info" => {
                    janus.version = reply["version_string"].as_str().unwrap_or("?").to_owned();
                    return Ok(janus);
                }
                Ok(reply) => bail!("Janus answered info with {reply}"),
                Err(_) if janus.server.exited() => {
                    bail!("Janus exited at start:\n{}", janus.log_tail())
                }
                Err(e) if Instant::now() > deadline => {
                    bail!(
                        "Janus's API did not answer within {START_TIMEOUT:?}: {e:#}\n{}",
                        janus.log_tail()
                    )
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.server.pid()
    }

    /// The last lines of Janus's log.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.0.join("janus.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let from = lines.len().saturating_sub(LOG_TAIL);
        format!(
            "--- Janus log (last lines) ---\n{}",
            lines[from..].join("\n")
        )
    }

    /// One handle's `handle_info` from the Admin API.
    async fn handle_info(&self, leg: Leg) -> anyhow::Result<Value> {
        let request = json!({
            "janus": "handle_info",
            "transaction": transaction(),
            "admin_secret": ADMIN_SECRET,
        });
        let path = format!("/admin/{}/{}", leg.session, leg.handle);
        expect(post(self.admin, &path, &request).await?, &["success"])
    }

    /// What Janus reports for a run's peer connections (Admin API): the media packets it sent
    /// on the subscribers' legs; every leg must have negotiated `profile`.
    pub async fn forwarded_packets(
        &self,
        legs: &JanusLegs,
        profile: Profile,
    ) -> anyhow::Result<u64> {
        let mut total = 0;
        for (i, &leg) in legs.publishers.iter().chain(&legs.subscribers).enumerate() {
            let info = self.handle_info(leg).await?;
            let negotiated = srtp_profile(&info)?;
            if negotiated != janus_profile_name(profile) {
                bail!(
                    "Janus handle {} negotiated {negotiated}, not {}",
                    leg.handle,
                    janus_profile_name(profile)
                );
            }
            if i >= legs.publishers.len() {
                total += sent_media_packets(&info)?;
            }
        }
        Ok(total)
    }
}

/// Debian's Janus libraries (plugins, transports) for this machine's architecture.
fn janus_lib_dir() -> PathBuf {
    PathBuf::from(format!(
        "/usr/lib/{}-linux-gnu/janus",
        std::env::consts::ARCH
    ))
}

/// Adds the `ifb` device with 127.0.0.1/32 Janus gathers its candidate on, refusing to do so
/// outside a network namespace of the benchmark's own (one with more than `lo` in it).
fn give_janus_an_address() -> anyhow::Result<()> {
    // /proc/net/dev lists this process's namespace's interfaces (/sys/class/net those of the
    // namespace sysfs was mounted in).
    let names = interfaces(&std::fs::read_to_string("/proc/net/dev")?);
    if names.iter().any(|n| n != "lo" && n != DEVICE) {
        bail!(
            "network interfaces {names:?}: not a namespace of the benchmark's own (run it \
             through bench/bridge)"
        );
    }
    if names.iter().any(|n| n == DEVICE) {
        return Ok(());
    }
    for args in [
        vec!["link", "add", DEVICE, "type", "ifb"],
        vec!["link", "set", DEVICE, "up"],
        vec!["addr", "add", "127.0.0.1/32", "dev", DEVICE],
    ] {
        let status = Command::new("ip")
            .args(&args)
            .status()
            .context("running ip (iproute2)")?;
        if !status.success() {
            bail!("ip {} failed: {status}", args.join(" "));
        }
    }
    Ok(())
}

/// The interface names in /proc/net/dev's text.
fn interfaces(dev: &str) -> Vec<String> {
    dev.lines()
        .filter_map(|line| Some(line.split_once(':')?.0.trim().to_owned()))
        .filter(|name| !name.contains(' ') && !name.contains('|'))
        .collect()
}

/// Janus's configuration in `dir`: only the VideoRoom plugin and the HTTP transport (symlinked
/// from `lib`), no event handlers or loggers, ICE on 127.0.0.1 only, sessions never reaped.
fn write_config(dir: &Path, lib: &Path, threading: Threading) -> anyhow::Result<()> {
    for (kind, library) in [
        ("plugins", "libjanus_videoroom.so"),
        ("transports", "libjanus_http.so"),
    ] {
        let target = lib.join(kind).join(library);
        if !target.exists() {
            bail!(
                "{} is missing: install Debian's janus package",
                target.display()
            );
        }
        std::fs::create_dir_all(dir.join(kind))?;
        std::os::unix::fs::symlink(&target, dir.join(kind).join(library))?;
    }
    for kind in ["events", "loggers"] {
        std::fs::create_dir_all(dir.join(kind))?;
    }
    std::fs::write(dir.join("janus.jcfg"), core_config(dir, threading))?;
    std::fs::write(
        dir.join("janus.transport.http.jcfg"),
        format!(
            "general: {{\n\tbase_path = \"/janus\"\n\thttp = true\n\tip = \"127.0.0.1\"\n\t\
             port = {API_PORT}\n\thttps = false\n}}\n\
             admin: {{\n\tadmin_base_path = \"/admin\"\n\tadmin_http = true\n\t\
             admin_ip = \"127.0.0.1\"\n\tadmin_port = {ADMIN_PORT}\n\tadmin_https = false\n}}\n"
        ),
    )?;
    std::fs::write(dir.join("janus.plugin.videoroom.jcfg"), "general: {\n}\n")?;
    Ok(())
}

fn core_config(dir: &Path, threading: Threading) -> String {
    let dir = dir.display();
    let event_loops = match threading {
        Threading::OneLoop => "\tevent_loops = 1\n",
        Threading::Default => "",
    };
    format!(
        "general: {{\n\tconfigs_folder = \"{dir}\"\n\tplugins_folder = \"{dir}/plugins\"\n\t\
         transports_folder = \"{dir}/transports\"\n\tevents_folder = \"{dir}/events\"\n\t\
         loggers_folder = \"{dir}/loggers\"\n\tdebug_level = 3\n\t\
         admin_secret = \"{ADMIN_SECRET}\"\n\tsession_timeout = 0\n{event_loops}\t\
         protected_folders = []\n}}\n\
         media: {{\n\tipv6 = false\n\trtp_port_range = \"{RTP_PORTS}\"\n\tno_media_timer = 0\n}}\n\
         nat: {{\n\tice_enforce_list = \"127.0.0.1\"\n\tignore_mdns = true\n}}\n\
         plugins: {{\n}}\ntransports: {{\n}}\nloggers: {{\n}}\nevents: {{\n\tbroadcast = false\n}}\n"
    )
}

fn transaction() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// One HTTP/1.0 request to Janus (a connection each, closed by the server after its answer,
/// so the body is not chunked) and
/// the JSON it answers.
async fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> anyhow::Result<Value> {
    let mut stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to Janus at {addr}"))?;
    let request = format!(
        "{method} {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await?;
    let response = String::from_utf8(response).context("Janus's answer is not UTF-8")?;
    let body = sys::http_body(&response).with_context(|| format!("{method} {path}"))?;
    serde_json::from_str(body).with_context(|| format!("{method} {path}: not JSON: {body:?}"))
}

async fn post(addr: SocketAddr, path: &str, body: &Value) -> anyhow::Result<Value> {
    http(addr, "POST", path, &body.to_string()).await
}

/// `reply` if its `janus` kind is one of `ok`; Janus's error, or the unexpected reply, if not.
fn expect(reply: Value, ok: &[&str]) -> anyhow::Result<Value> {
    match reply["janus"].as_str() {
        Some(kind) if ok.contains(&kind) => Ok(reply),
        Some("error") => bail!(
            "Janus error {}: {}",
            reply["error"]["code"],
            reply["error"]["reason"].as_str().unwrap_or("(no reason)")
        ),
        _ => bail!("unexpected Janus reply (wanted {ok:?}): {reply}"),
    }
}

/// The VideoRoom's answer in a reply or event (`plugindata.data`), or the error it reports.
fn plugin_data(message: &Value) -> anyhow::Result<&Value> {
    let data = message
        .pointer("/plugindata/data")
        .with_context(|| format!("no plugin data in {message}"))?;
    if let Some(error) = data.get("error") {
        bail!(
            "VideoRoom error {}: {}",
            data["error_code"],
            error.as_str().unwrap_or("(no text)")
        );
    }
    Ok(data)
}

/// The SDP of a message's `jsep` of the given type.
fn jsep_sdp<'a>(message: &'a Value, kind: &str) -> anyhow::Result<&'a str> {
    let jsep = message
        .get("jsep")
        .with_context(|| format!("no jsep in {message}"))?;
    if jsep["type"] != kind {
        bail!("expected a jsep {kind}, got {jsep}");
    }
    jsep["sdp"]
        .as_str()
        .with_context(|| format!("jsep without sdp: {jsep}"))
}

/// The negotiated SRTP profile in a `handle_info` reply.
fn srtp_profile(info: &Value) -> anyhow::Result<&str> {
    info.pointer("/info/webrtc/dtls/srtp-profile")
        .and_then(Value::as_str)
        .with_context(|| format!("no webrtc.dtls.srtp-profile in {info}"))
}

/// RTP packets Janus sent on a handle's audio and video media (`handle_info`).
fn sent_media_packets(info: &Value) -> anyhow::Result<u64> {
    let media = info
        .pointer("/info/webrtc/media")
        .and_then(Value::as_object)
        .with_context(|| format!("no webrtc.media in {info}"))?;
    media
        .values()
        .filter(|m| m["type"] != "data")
        .map(|m| {
            m.pointer("/stats/out/packets")
                .and_then(Value::as_u64)
                .with_context(|| format!("no stats.out.packets in {m}"))
        })
        .sum()
}

/// A Janus session of one peer connection, polled for its events when awaited.
struct Session {
    api: SocketAddr,
    id: u64,
    /// Events read but not yet awaited.
    events: VecDeque<Value>,
}

impl Session {
    async fn create(api: SocketAddr) -> anyhow::Result<Session> {
        let request = json!({"janus": "create", "transaction": transaction()});
        let reply = expect(post(api, "/janus", &request).await?, &["success"])?;
        let id = reply
            .pointer("/data/id")
            .and_then(Value::as_u64)
            .with_context(|| format!("no session id in {reply}"))?;
        Ok(Session {
            api,
            id,
            events: VecDeque::new(),
        })
    }

    async fn attach(&self) -> anyhow::Result<u64> {
        let request = json!({
            "janus": "attach",
            "plugin": "janus.plugin.videoroom",
            "transaction": transaction(),
        });
        let reply = expect(
            post(self.api, &format!("/janus/{}", self.id), &request).await?,
            &["success"],
        )?;
        reply
            .pointer("/data/id")
            .and_then(Value::as_u64)
            .with_context(|| format!("no handle id in {reply}"))
    }

    /// Sends a VideoRoom request (with a JSEP, if any) and returns Janus's reply: the plugin's
    /// synchronous answer, or an acknowledgement when the answer comes as an event.
    async fn message(
        &self,
        handle: u64,
        body: Value,
        jsep: Option<Value>,
    ) -> anyhow::Result<Value> {
        let mut request = json!({"janus": "message", "transaction": transaction(), "body": body});
        if let Some(jsep) = jsep {
            request["jsep"] = jsep;
        }
        let path = format!("/janus/{}/{handle}", self.id);
        let reply = expect(post(self.api, &path, &request).await?, &["success", "ack"])?;
        if reply["janus"] == "success" {
            plugin_data(&reply)?;
        }
        Ok(reply)
    }

    /// The next event from `handle` that `wanted` accepts (long polls the session); an error
    /// if the VideoRoom reports one, the handle hangs up, or none comes in time.
    async fn event(
        &mut self,
        handle: u64,
        what: &str,
        wanted: impl Fn(&Value) -> bool,
    ) -> anyhow::Result<Value> {
        let deadline = Instant::now() + EVENT_TIMEOUT;
        loop {
            while let Some(event) = self.events.pop_front() {
                if event["sender"].as_u64() != Some(handle) {
                    continue;
                }
                match event["janus"].as_str() {
                    Some("hangup" | "detached") => {
                        bail!("Janus hung up handle {handle} waiting for {what}: {event}")
                    }
                    Some("event") => {
                        plugin_data(&event).with_context(|| format!("waiting for {what}"))?;
                    }
                    _ => {}
                }
                if wanted(&event) {
                    return Ok(event);
                }
            }
            if Instant::now() > deadline {
                bail!("no {what} from Janus within {EVENT_TIMEOUT:?}");
            }
            let path = format!("/janus/{}?maxev=10", self.id);
            match http(self.api, "GET", &path, "").await? {
                Value::Array(events) => self.events.extend(events),
                event => self.events.push_back(event),
            }
        }
    }
}

/// A Janus session and handle: one peer connection.
#[derive(Clone, Copy, Debug)]
pub struct Leg {
    session: u64,
    handle: u64,
}

/// A run's peer connections on Janus.
#[derive(Debug, Default)]
pub struct JanusLegs {
    pub publishers: Vec<Leg>,
    pub subscribers: Vec<Leg>,
}

/// Sets up a scenario's endpoints on Janus: the room, every publisher's peer connection, then
/// (once every publisher is up) every subscriber's. Endpoints come out in this order:
/// publishers by role index, then subscribers by role index.
pub async fn janus_endpoints(
    janus: &Janus,
    roles: &[Role],
    profile: Profile,
    layers: usize,
) -> anyhow::Result<(Vec<Endpoint>, JanusLegs)> {
    let publishers: Vec<usize> = (0..roles.len()).filter(|&i| roles[i].publishes).collect();
    let control = Session::create(janus.api).await?;
    let handle = control.attach().await?;
    let created = control
        .message(
            handle,
            json!({
                "request": "create",
                "room": ROOM,
                "publishers": publishers.len(),
                "audiocodec": "opus",
                "videocodec": "vp8",
                "transport_wide_cc_ext": true,
                "audiolevel_ext": false,
                "playoutdelay_ext": false,
                "videoorient_ext": false,
                "notify_joining": false,
            }),
            None,
        )
        .await?;
    if plugin_data(&created)?["videoroom"] != "created" {
        bail!("creating the room: {created}");
    }

    let permits = Arc::new(tokio::sync::Semaphore::new(SETUP_CONCURRENCY));
    let mut tasks = tokio::task::JoinSet::new();
    for &index in &publishers {
        let permits = permits.clone();
        let api = janus.api;
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await?;
            let config = setup::participant_config(index, Role { publishes: true }, profile);
            let layers = setup::video_layers(&config, layers)?;
            let (handover, leg) = publish(api, index, config.clone(), &layers)
                .await
                .with_context(|| format!("publisher {index}"))?;
            anyhow::Ok((index, config, layers, handover, leg))
        });
    }
    let mut published = Vec::new();
    while let Some(done) = tasks.join_next().await {
        published.push(done??);
    }
    published.sort_by_key(|p| p.0);
    // Each feed's id and the publisher's SSRCs a subscriber receives (audio, first layer).
    let feeds: Vec<Feed> = published
        .iter()
        .map(|(index, config, layers, _, _)| Feed {
            id: feed_id(*index),
            audio_ssrc: config.audio_ssrc,
            video_ssrc: layers[0].ssrc,
        })
        .collect();

    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..roles.len() {
        // Everyone receives every feed but its own; a lone publisher receives nothing.
        let own = feed_id(index);
        let sources: Vec<Feed> = feeds.iter().filter(|f| f.id != own).cloned().collect();
        if sources.is_empty() {
            continue;
        }
        let permits = permits.clone();
        let api = janus.api;
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await?;
            let subscribed = subscribe(api, index, profile, &sources)
                .await
                .with_context(|| format!("subscriber {index}"))?;
            anyhow::Ok((index, subscribed))
        });
    }
    let mut subscribed = Vec::new();
    while let Some(done) = tasks.join_next().await {
        subscribed.push(done??);
    }
    subscribed.sort_by_key(|s| s.0);

    let mut endpoints = Vec::new();
    let mut legs = JanusLegs::default();
    for (_, config, layers, handover, leg) in published {
        legs.publishers.push(leg);
        endpoints.push(endpoint(
            handover,
            config,
            layers,
            Receives::Renumbered(HashMap::new()),
        )?);
    }
    for (_, s) in subscribed {
        legs.subscribers.push(s.leg);
        endpoints.push(endpoint(
            s.handover,
            s.config,
            Vec::new(),
            Receives::Renumbered(s.routes),
        )?);
    }
    for e in &endpoints {
        let negotiated = e.session.as_ref().map(|s| s.srtp_profile.as_str());
        if negotiated != Some(participant_profile_name(profile)) {
            bail!(
                "an endpoint negotiated {negotiated:?} with Janus for {}",
                profile.name()
            );
        }
    }
    Ok((endpoints, legs))
}

/// The participant's (RFC 5764) name of the profile.
fn participant_profile_name(profile: Profile) -> &'static str {
    match profile {
        Profile::Gcm => "SRTP_AEAD_AES_128_GCM",
        Profile::AesCm => "SRTP_AES128_CM_HMAC_SHA1_80",
    }
}

fn endpoint(
    handover: Handover,
    config: ParticipantConfig,
    layers: Vec<Layer>,
    receives: Receives,
) -> anyhow::Result<Endpoint> {
    let socket = handover.socket.try_clone()?;
    setup::force_rcvbuf(&socket)?;
    Ok(Endpoint {
        socket,
        to: handover.remote,
        config,
        layers,
        session: Some(handover),
        receives,
        bridge: 0,
    })
}

/// A publisher's feed as subscribers see it.
#[derive(Clone, Debug)]
struct Feed {
    id: u64,
    audio_ssrc: u32,
    video_ssrc: u32,
}

/// The VideoRoom id of the publisher at role index `index`.
fn feed_id(index: usize) -> u64 {
    index as u64 + 1
}

/// Publishes one endpoint's audio and simulcast video: `joinandconfigure` with our offer, ICE
/// (controlling) and DTLS with Janus's answer, then Janus's `webrtcup`.
async fn publish(
    api: SocketAddr,
    index: usize,
    mut config: ParticipantConfig,
    layers: &[Layer],
) -> anyhow::Result<(Handover, Leg)> {
    config.ice_role = IceRole::Controlling;
    let participant = Participant::bind(config.clone()).await?;
    participant.stop_media();
    let mut session = Session::create(api).await?;
    let handle = session.attach().await?;
    let offer = publisher_offer(&participant.local_description(), &config, layers);
    session
        .message(
            handle,
            json!({
                "request": "joinandconfigure",
                "ptype": "publisher",
                "room": ROOM,
                "id": feed_id(index),
                "audio": true,
                "video": true,
            }),
            Some(json!({"type": "offer", "sdp": offer, "trickle": false})),
        )
        .await?;
    let answer = session
        .event(handle, "the publisher's answer", |e| {
            e.get("jsep").is_some()
        })
        .await?;
    let remote = parse_sdp(jsep_sdp(&answer, "answer")?)?.remote;
    participant.connect(&remote, CONNECT_TIMEOUT).await?;
    session
        .event(handle, "webrtcup", |e| e["janus"] == "webrtcup")
        .await?;
    let handover = participant.hand_over().await?;
    Ok((
        handover,
        Leg {
            session: session.id,
            handle,
        },
    ))
}

struct Subscribed {
    handover: Handover,
    config: ParticipantConfig,
    leg: Leg,
    /// SSRC each stream arrives under → its publisher's SSRC.
    routes: HashMap<u32, u32>,
}

/// Subscribes one endpoint to `feeds` (their lowest simulcast layer): `join` as subscriber,
/// our answer to Janus's offer with `start`, ICE (controlled) and DTLS.
async fn subscribe(
    api: SocketAddr,
    index: usize,
    profile: Profile,
    feeds: &[Feed],
) -> anyhow::Result<Subscribed> {
    let mut config = setup::participant_config(index, Role { publishes: false }, profile);
    let participant = Participant::bind(config.clone()).await?;
    participant.stop_media();
    let mut session = Session::create(api).await?;
    let handle = session.attach().await?;
    let streams: Vec<Value> = feeds
        .iter()
        .map(|f| json!({"feed": f.id, "substream": 0}))
        .collect();
    session
        .message(
            handle,
            json!({"request": "join", "ptype": "subscriber", "room": ROOM, "streams": streams}),
            None,
        )
        .await?;
    let attached = session
        .event(handle, "the subscription's offer", |e| {
            e.get("jsep").is_some()
        })
        .await?;
    let offer = parse_sdp(jsep_sdp(&attached, "offer")?)?;
    let routes = subscription_routes(plugin_data(&attached)?, &offer, feeds)?;
    config.twcc_ext_id = offer
        .twcc_ext_id
        .filter(|id| (1..=14).contains(id))
        .context("Janus's offer has no one-byte transport-cc extension")?;
    let answer = subscriber_answer(&offer, &participant.local_description(), &config);
    session
        .message(
            handle,
            json!({"request": "start"}),
            Some(json!({"type": "answer", "sdp": answer})),
        )
        .await?;
    session
        .event(handle, "the subscription's start", |e| {
            e.pointer("/plugindata/data/started") == Some(&json!("ok"))
        })
        .await?;
    participant.connect(&offer.remote, CONNECT_TIMEOUT).await?;
    let handover = participant.hand_over().await?;
    Ok(Subscribed {
        handover,
        config,
        leg: Leg {
            session: session.id,
            handle,
        },
        routes,
    })
}

/// For a subscription: the SSRC each stream arrives under (Janus's offer) → the publisher's SSRC
/// of that stream (the `streams` of Janus's `attached` event name each m-line's feed and kind).
fn subscription_routes(
    attached: &Value,
    offer: &Sdp,
    feeds: &[Feed],
) -> anyhow::Result<HashMap<u32, u32>> {
    let streams = attached["streams"]
        .as_array()
        .with_context(|| format!("no streams in {attached}"))?;
    let mut routes = HashMap::new();
    for stream in streams {
        let mid = stream["mid"]
            .as_str()
            .with_context(|| format!("stream without mid: {stream}"))?;
        let feed_id = stream["feed_id"]
            .as_u64()
            .with_context(|| format!("stream without feed_id: {stream}"))?;
        let feed = feeds
            .iter()
            .find(|f| f.id == feed_id)
            .with_context(|| format!("stream {mid} of feed {feed_id}, which was not asked for"))?;
        let source = match stream["type"].as_str() {
            Some("audio") => feed.audio_ssrc,
            Some("video") => feed.video_ssrc,
            _ => bail!("stream {mid} of an unexpected type: {stream}"),
        };
        let ssrc = offer
            .media
            .iter()
            .find(|m| m.mid == mid)
            .and_then(|m| m.ssrc)
            .with_context(|| format!("no SSRC for mid {mid} in Janus's offer"))?;
        routes.insert(ssrc, source);
    }
    if routes.len() != 2 * feeds.len() {
        bail!(
            "Janus offered {} streams for {} feeds (audio and video each)",
            routes.len(),
            feeds.len()
        );
    }
    Ok(routes)
}

/// One m-line of a session description, as far as the benchmark needs it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct MediaSection {
    kind: String,
    mid: String,
    /// Payload type of the codec (opus or VP8), by its rtpmap.
    payload_type: Option<u8>,
    /// The media SSRC (the first of an FID group, else the first one listed).
    ssrc: Option<u32>,
}

/// A parsed session description: the transport and the m-lines.
#[derive(Clone, Debug)]
struct Sdp {
    remote: RemoteDescription,
    media: Vec<MediaSection>,
    twcc_ext_id: Option<u8>,
}

/// Parses what the benchmark uses of Janus's SDP: ICE credentials and host candidates (UDP,
/// IPv4), the sha-256 fingerprint (session or media level), each m-line's kind, mid, codec
/// payload type and SSRC, and the transport-cc extension's id.
fn parse_sdp(sdp: &str) -> anyhow::Result<Sdp> {
    let mut ufrag = None;
    let mut pwd = None;
    let mut fingerprint = None;
    let mut candidates = Vec::new();
    let mut media: Vec<MediaSection> = Vec::new();
    let mut fid_primary: Vec<Option<u32>> = Vec::new();
    let mut twcc_ext_id = None;
    for line in sdp.lines().map(str::trim_end) {
        if let Some(m) = line.strip_prefix("m=") {
            media.push(MediaSection {
                kind: m.split_whitespace().next().unwrap_or_default().to_owned(),
                ..Default::default()
            });
            fid_primary.push(None);
            continue;
        }
        let Some(attribute) = line.strip_prefix("a=") else {
            continue;
        };
        let (name, value) = attribute.split_once(':').unwrap_or((attribute, ""));
        match name {
            "ice-ufrag" => {
                ufrag.get_or_insert_with(|| value.to_owned());
            }
            "ice-pwd" => {
                pwd.get_or_insert_with(|| value.to_owned());
            }
            "fingerprint" => {
                if let Some(fp) = value.strip_prefix("sha-256 ") {
                    fingerprint.get_or_insert_with(|| fp.trim().to_owned());
                }
            }
            "candidate" => {
                if let Some(addr) = host_candidate(value) {
                    if !candidates.contains(&addr) {
                        candidates.push(addr);
                    }
                }
            }
            "extmap" => {
                let mut fields = value.split_whitespace();
                let id = fields
                    .next()
                    .and_then(|id| id.split('/').next()?.parse().ok());
                if fields.next() == Some(TWCC_URI) {
                    twcc_ext_id = twcc_ext_id.or(id);
                }
            }
            _ => {}
        }
        let Some(section) = media.last_mut() else {
            continue;
        };
        match name {
            "mid" => section.mid = value.to_owned(),
            "rtpmap" => {
                let (pt, codec) = value.split_once(' ').unwrap_or_default();
                let codec = codec.split('/').next().unwrap_or_default();
                let wanted = if section.kind == "audio" {
                    "opus"
                } else {
                    "vp8"
                };
                if codec.eq_ignore_ascii_case(wanted) && section.payload_type.is_none() {
                    section.payload_type = pt.parse().ok();
                }
            }
            "ssrc" if section.ssrc.is_none() => {
                section.ssrc = value.split_whitespace().next().and_then(|s| s.parse().ok());
            }
            "ssrc-group" => {
                let mut fields = value.split_whitespace();
                if fields.next() == Some("FID") {
                    if let Some(slot @ None) = fid_primary.last_mut() {
                        *slot = fields.next().and_then(|s| s.parse().ok());
                    }
                }
            }
            _ => {}
        }
    }
    for (section, primary) in media.iter_mut().zip(fid_primary) {
        if primary.is_some() {
            section.ssrc = primary;
        }
    }
    Ok(Sdp {
        remote: RemoteDescription {
            ufrag: ufrag.context("no a=ice-ufrag in the SDP")?,
            pwd: pwd.context("no a=ice-pwd in the SDP")?,
            candidates,
            fingerprint: fingerprint.context("no sha-256 a=fingerprint in the SDP")?,
        },
        media,
        twcc_ext_id,
    })
}

/// The address of a UDP IPv4 host candidate (`a=candidate:` value), None for any other.
fn host_candidate(value: &str) -> Option<SocketAddr> {
    let fields: Vec<&str> = value.split_whitespace().collect();
    let (protocol, ip, port, kind) = (
        fields.get(2)?,
        fields.get(4)?,
        fields.get(5)?,
        fields.get(7)?,
    );
    if !protocol.eq_ignore_ascii_case("udp") || *kind != "host" {
        return None;
    }
    Some(SocketAddr::new(
        ip.parse::<Ipv4Addr>().ok()?.into(),
        port.parse().ok()?,
    ))
}

/// The transport lines every m-line of our descriptions carries: ICE credentials, DTLS
/// fingerprint and role (always the DTLS client), rtcp-mux, our candidate.
fn transport_lines(local: &LocalDescription) -> String {
    let mut lines = format!(
        "c=IN IP4 127.0.0.1\r\na=ice-ufrag:{}\r\na=ice-pwd:{}\r\na=fingerprint:sha-256 {}\r\n\
         a=setup:active\r\na=rtcp-mux\r\n",
        local.ufrag, local.pwd, local.fingerprint
    );
    for addr in &local.candidates {
        lines.push_str(&format!(
            "a=candidate:1 1 udp {HOST_PRIORITY} {} {} typ host\r\n",
            addr.ip(),
            addr.port()
        ));
    }
    lines.push_str("a=end-of-candidates\r\n");
    lines
}

fn session_lines(mids: &[String]) -> String {
    format!(
        "v=0\r\no=- {} 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE {}\r\n",
        rand::random::<u32>(),
        mids.join(" ")
    )
}

/// A publisher's offer, as a browser sends it with SSRC simulcast: audio (Opus) and video (VP8
/// and RTX) send-only with transport-cc, the layers in a SIM group and each with its RTX SSRC
/// in an FID group, BUNDLE, our candidate; `a=setup:active` (Janus takes the DTLS server role).
fn publisher_offer(
    local: &LocalDescription,
    config: &ParticipantConfig,
    layers: &[Layer],
) -> String {
    let transport = transport_lines(local);
    let twcc = format!("a=extmap:{} {TWCC_URI}\r\n", config.twcc_ext_id);
    let name = &config.name;
    let mut sdp = session_lines(&["0".into(), "1".into()]);
    sdp.push_str(&format!(
        "m=audio 9 UDP/TLS/RTP/SAVPF {opus}\r\n{transport}a=mid:0\r\n{twcc}a=sendonly\r\n\
         a=msid:{name} {name}-audio\r\na=rtpmap:{opus} opus/48000/2\r\n\
         a=rtcp-fb:{opus} transport-cc\r\na=fmtp:{opus} minptime=10;useinbandfec=1\r\n\
         a=ssrc:{audio} cname:{name}\r\n",
        opus = config.opus_pt,
        audio = config.audio_ssrc,
    ));
    sdp.push_str(&format!(
        "m=video 9 UDP/TLS/RTP/SAVPF {vp8} {rtx}\r\n{transport}a=mid:1\r\n{twcc}a=sendonly\r\n\
         a=msid:{name} {name}-video\r\na=rtcp-rsize\r\na=rtpmap:{vp8} VP8/90000\r\n\
         a=rtcp-fb:{vp8} ccm fir\r\na=rtcp-fb:{vp8} nack\r\na=rtcp-fb:{vp8} nack pli\r\n\
         a=rtcp-fb:{vp8} transport-cc\r\na=rtpmap:{rtx} rtx/90000\r\na=fmtp:{rtx} apt={vp8}\r\n",
        vp8 = config.vp8_pt,
        rtx = config.rtx_pt,
    ));
    if layers.len() > 1 {
        let ssrcs: Vec<String> = layers.iter().map(|l| l.ssrc.to_string()).collect();
        sdp.push_str(&format!("a=ssrc-group:SIM {}\r\n", ssrcs.join(" ")));
    }
    for layer in layers {
        sdp.push_str(&format!(
            "a=ssrc-group:FID {} {}\r\n",
            layer.ssrc, layer.rtx_ssrc
        ));
    }
    for layer in layers {
        for ssrc in [layer.ssrc, layer.rtx_ssrc] {
            sdp.push_str(&format!("a=ssrc:{ssrc} cname:{name}\r\n"));
        }
    }
    sdp
}

/// A subscriber's answer to Janus's offer: every m-line received (recv-only) with the codec
/// Janus offered and transport-cc under Janus's extension id, BUNDLE, our candidate, DTLS
/// client.
fn subscriber_answer(offer: &Sdp, local: &LocalDescription, config: &ParticipantConfig) -> String {
    let transport = transport_lines(local);
    let mids: Vec<String> = offer.media.iter().map(|m| m.mid.clone()).collect();
    let mut sdp = session_lines(&mids);
    for m in &offer.media {
        let Some(pt) = m.payload_type else {
            // An m-line without a codec we take: rejected (port 0).
            sdp.push_str(&format!(
                "m={} 0 UDP/TLS/RTP/SAVPF 0\r\nc=IN IP4 0.0.0.0\r\na=mid:{}\r\na=inactive\r\n",
                m.kind, m.mid
            ));
            continue;
        };
        let (codec, feedback) = if m.kind == "audio" {
            ("opus/48000/2", vec!["transport-cc"])
        } else {
            (
                "VP8/90000",
                vec!["ccm fir", "nack", "nack pli", "transport-cc"],
            )
        };
        sdp.push_str(&format!(
            "m={} 9 UDP/TLS/RTP/SAVPF {pt}\r\n{transport}a=mid:{}\r\na=extmap:{} {TWCC_URI}\r\n\
             a=recvonly\r\na=rtpmap:{pt} {codec}\r\n",
            m.kind, m.mid, config.twcc_ext_id
        ));
        for fb in feedback {
            sdp.push_str(&format!("a=rtcp-fb:{pt} {fb}\r\n"));
        }
    }
    sdp
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A subscription offer as Janus 1.1.2 writes it (two feeds' audio and video).
    const OFFER: &str = "v=0\r\n\
o=- 1733470000000000 1 IN IP4 127.0.0.1\r\n\
s=VideoRoom 1\r\n\
t=0 0\r\n\
a=group:BUNDLE 0 1\r\n\
a=ice-options:trickle\r\n\
a=fingerprint:sha-256 B6:79:48:16:46:1B:7F:08:A9:36:C2:4B:E0:EC:23:ED:81:A9:48:BA:5E:45:25:6C:91:CD:8F:40:7C:D2:A0:BE\r\n\
a=extmap-allow-mixed\r\n\
a=msid-semantic: WMS *\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n\
c=IN IP4 127.0.0.1\r\n\
a=sendonly\r\n\
a=mid:0\r\n\
a=rtcp-mux\r\n\
a=ice-ufrag:abcd\r\n\
a=ice-pwd:efghijklmnopqrstuvwxyz\r\n\
a=ice-options:trickle\r\n\
a=setup:actpass\r\n\
a=rtpmap:111 opus/48000/2\r\n\
a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid\r\n\
a=extmap:4 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n\
a=msid:janus janusa0\r\n\
a=ssrc:2381409127 cname:janus\r\n\
a=candidate:1 1 udp 2015363327 127.0.0.1 10480 typ host\r\n\
a=candidate:2 1 tcp 1015021823 127.0.0.1 9 typ host tcptype active\r\n\
a=end-of-candidates\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 100 101\r\n\
c=IN IP4 127.0.0.1\r\n\
a=sendonly\r\n\
a=mid:1\r\n\
a=rtcp-mux\r\n\
a=ice-ufrag:abcd\r\n\
a=ice-pwd:efghijklmnopqrstuvwxyz\r\n\
a=setup:actpass\r\n\
a=rtpmap:100 VP8/90000\r\n\
a=rtcp-fb:100 ccm fir\r\n\
a=rtcp-fb:100 nack\r\n\
a=rtpmap:101 rtx/90000\r\n\
a=fmtp:101 apt=100\r\n\
a=extmap:4 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n\
a=ssrc-group:FID 1122334455 66778899\r\n\
a=ssrc:1122334455 cname:janus\r\n\
a=ssrc:66778899 cname:janus\r\n\
a=candidate:1 1 udp 2015363327 127.0.0.1 10480 typ host\r\n\
a=end-of-candidates\r\n";

    fn local() -> LocalDescription {
        LocalDescription {
            ufrag: "ufrg".into(),
            pwd: "0123456789abcdefghijklmn".into(),
            candidates: vec!["127.0.0.1:40000".parse().unwrap()],
            fingerprint: "AA:BB".into(),
        }
    }

    #[test]
    fn parses_janus_offers() {
        let sdp = parse_sdp(OFFER).unwrap();
        assert_eq!(sdp.remote.ufrag, "abcd");
        assert_eq!(sdp.remote.pwd, "efghijklmnopqrstuvwxyz");
        assert_eq!(
            sdp.remote.candidates,
            vec!["127.0.0.1:10480".parse::<SocketAddr>().unwrap()]
        );
        assert!(sdp.remote.fingerprint.starts_with("B6:79:48"));
        assert_eq!(sdp.twcc_ext_id, Some(4));
        assert_eq!(
            sdp.media,
            vec![
                MediaSection {
                    kind: "audio".into(),
                    mid: "0".into(),
                    payload_type: Some(111),
                    ssrc: Some(2381409127),
                },
                MediaSection {
                    kind: "video".into(),
                    mid: "1".into(),
                    payload_type: Some(100),
                    ssrc: Some(1122334455),
                },
            ]
        );
    }

    #[test]
    fn refuses_descriptions_without_transport() {
        for missing in ["a=ice-ufrag", "a=ice-pwd", "a=fingerprint"] {
            let sdp: String = OFFER
                .lines()
                .filter(|l| !l.starts_with(missing))
                .map(|l| format!("{l}\n"))
                .collect();
            let error = parse_sdp(&sdp).unwrap_err().to_string();
            assert!(error.contains(missing), "{error}");
        }
        assert!(parse_sdp("").is_err());
    }

    #[test]
    fn candidates_other_than_udp_ipv4_hosts_are_skipped() {
        assert_eq!(
            host_candidate("1 1 UDP 2015363327 127.0.0.1 10480 typ host"),
            Some("127.0.0.1:10480".parse().unwrap())
        );
        assert_eq!(host_candidate("1 1 udp 1 127.0.0.1 10480 typ srflx"), None);
        assert_eq!(host_candidate("1 1 tcp 1 127.0.0.1 9 typ host"), None);
        assert_eq!(host_candidate("1 1 udp 1 ::1 10480 typ host"), None);
        assert_eq!(host_candidate("1 1 udp"), None);
        assert_eq!(host_candidate("1 1 udp 1 127.0.0.1 port typ host"), None);
    }

    #[test]
    fn answers_every_offered_stream() {
        let offer = parse_sdp(OFFER).unwrap();
        let mut config = ParticipantConfig::new("sub");
        config.twcc_ext_id = 4;
        let answer = subscriber_answer(&offer, &local(), &config);
        let parsed = parse_sdp(&answer).unwrap();
        assert_eq!(parsed.remote.ufrag, "ufrg");
        assert_eq!(parsed.remote.fingerprint, "AA:BB");
        assert_eq!(parsed.twcc_ext_id, Some(4));
        let kinds: Vec<(&str, &str, Option<u8>)> = parsed
            .media
            .iter()
            .map(|m| (m.kind.as_str(), m.mid.as_str(), m.payload_type))
            .collect();
        assert_eq!(
            kinds,
            [("audio", "0", Some(111)), ("video", "1", Some(100))]
        );
        assert!(answer.contains("a=group:BUNDLE 0 1\r\n"));
        assert_eq!(answer.matches("a=recvonly").count(), 2);
        assert_eq!(answer.matches("a=setup:active").count(), 2);
    }

    #[test]
    fn publisher_offer_signals_simulcast() {
        let config = ParticipantConfig::new("pub");
        let layer = |ssrc, rtx_ssrc| Layer {
            ssrc,
            rtx_ssrc,
            width: 320,
            height: 180,
            bitrate_bps: 150_000,
        };
        let layers = [layer(11, 12), layer(21, 22), layer(31, 32)];
        let offer = publisher_offer(&local(), &config, &layers);
        assert!(offer.contains("a=ssrc-group:SIM 11 21 31\r\n"));
        assert!(offer.contains("a=ssrc-group:FID 21 22\r\n"));
        assert_eq!(offer.matches("a=sendonly").count(), 2);
        let parsed = parse_sdp(&offer).unwrap();
        assert_eq!(parsed.media[0].ssrc, Some(config.audio_ssrc));
        assert_eq!(
            parsed.media[1].ssrc,
            Some(11),
            "the first FID group's primary"
        );
        assert_eq!(parsed.twcc_ext_id, Some(config.twcc_ext_id));
        assert_eq!(parsed.remote.candidates, local().candidates);
    }

    #[test]
    fn routes_map_janus_ssrcs_to_the_publishers() {
        let offer = parse_sdp(OFFER).unwrap();
        let feeds = [Feed {
            id: 3,
            audio_ssrc: 7,
            video_ssrc: 8,
        }];
        let attached = json!({"videoroom": "attached", "streams": [
            {"type": "audio", "mid": "0", "feed_id": 3, "feed_mid": "0"},
            {"type": "video", "mid": "1", "feed_id": 3, "feed_mid": "1"},
        ]});
        let routes = subscription_routes(&attached, &offer, &feeds).unwrap();
        assert_eq!(routes, HashMap::from([(2381409127, 7), (1122334455, 8)]));
        let unknown = json!({"streams": [{"type": "audio", "mid": "0", "feed_id": 4}]});
        assert!(subscription_routes(&unknown, &offer, &feeds).is_err());
        let short = json!({"streams": [{"type": "audio", "mid": "0", "feed_id": 3}]});
        assert!(subscription_routes(&short, &offer, &feeds).is_err());
        assert!(subscription_routes(&json!({}), &offer, &feeds).is_err());
    }

    #[test]
    fn replies_and_events() {
        let ok = json!({"janus": "success", "data": {"id": 5}});
        assert!(expect(ok, &["success"]).is_ok());
        let error = json!({"janus": "error", "error": {"code": 458, "reason": "No such session"}});
        let message = expect(error, &["success"]).unwrap_err().to_string();
        assert!(
            message.contains("458") && message.contains("No such session"),
            "{message}"
        );
        assert!(expect(json!({"janus": "ack"}), &["success"]).is_err());
        assert!(expect(json!([]), &["success"]).is_err());

        let event = json!({"janus": "event", "plugindata": {"plugin": "janus.plugin.videoroom",
            "data": {"videoroom": "event", "error_code": 428, "error": "No such feed (1)"}}});
        let message = plugin_data(&event).unwrap_err().to_string();
        assert!(
            message.contains("428") && message.contains("No such feed"),
            "{message}"
        );
        assert!(plugin_data(&json!({"janus": "event"})).is_err());

        let with_offer = json!({"jsep": {"type": "offer", "sdp": "v=0"}});
        assert_eq!(jsep_sdp(&with_offer, "offer").unwrap(), "v=0");
        assert!(jsep_sdp(&with_offer, "answer").is_err());
        assert!(jsep_sdp(&json!({}), "offer").is_err());
    }

    #[test]
    fn admin_handle_info() {
        let info = json!({"janus": "success", "info": {"webrtc": {
        "dtls": {"srtp-profile": "SRTP_AEAD_AES_128_GCM"},
        "media": {
            "0": {"type": "audio", "stats": {"out": {"packets": 500}}},
            "1": {"type": "video", "stats": {"out": {"packets": 310}}},
            "2": {"type": "data", "stats": {"out": {"packets": 9}}},
        }}}});
        assert_eq!(sent_media_packets(&info).unwrap(), 810);
        assert_eq!(
            srtp_profile(&info).unwrap(),
            janus_profile_name(Profile::Gcm)
        );
        let no_stats = json!({"info": {"webrtc": {"media": {"0": {"type": "audio"}}}}});
        assert!(sent_media_packets(&no_stats).is_err());
        assert!(sent_media_packets(&json!({})).is_err());
        assert!(srtp_profile(&json!({"info": {}})).is_err());
    }

    #[test]
    fn interface_names() {
        let dev = "Inter-|   Receive                            |  Transmit\n \
                   face |bytes    packets errs drop fifo frame compressed multicast|bytes\n    \
                   lo:  123 4 0 0 0 0 0 0 123 4 0 0 0 0 0 0\n\
                   tjanus0: 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n";
        assert_eq!(interfaces(dev), ["lo", "tjanus0"]);
    }

    #[test]
    fn configuration_sets_threading_and_folders() {
        let dir = Path::new("/tmp/x");
        let one = core_config(dir, Threading::OneLoop);
        assert!(one.contains("\tevent_loops = 1\n"));
        assert!(one.contains("plugins_folder = \"/tmp/x/plugins\""));
        assert!(one.contains("ice_enforce_list = \"127.0.0.1\""));
        assert!(!core_config(dir, Threading::Default).contains("event_loops"));
        assert_eq!(Threading::parse("loops1").unwrap(), Threading::OneLoop);
        assert!(Threading::parse("2").is_err());
    }
}
