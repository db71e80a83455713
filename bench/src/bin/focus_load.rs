//! `bench-focus-load`: the focus benchmark (run it through `bench/focus`, which builds it and
//! isolates it in a network namespace). It starts a real Prosody (the focus's account on
//! `localhost`, anonymous participants on `guest.localhost`), the release bridge and the release
//! focus, then has simulated lib-jitsi-meet participants (XMPP signalling only, no media) join
//! `--rooms` rooms × `--per-room` participants at `--rate` joins per second: conference request,
//! MUC join, session-initiate acknowledged, session-accept with a transport and sources. It
//! prints one JSON line: join → session-initiate latency, errors, CPU of each server.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures::StreamExt;
use jid::{BareJid, Jid};
use minidom::Element;
use serde_json::json;
use tokio::sync::{watch, Semaphore};
use tokio_xmpp::parsers::iq::Iq;
use tokio_xmpp::parsers::presence::Presence;
use tokio_xmpp::stanzastream::{Event, StanzaStream, StreamEvent};
use tokio_xmpp::xmlstream::Timeouts;
use tokio_xmpp::Stanza;
use tutti_focus::connector::{Plaintext, StreamErrors};
use tutti_focus::jingle::{
    Action, Candidate, CandidateType, Content, Creator, DtlsSetup, Fingerprint, Group,
    GroupSemantics, IceUdpTransport, Jingle, Parameter, PayloadType, RtpDescription, Senders,
    Source, SourceGroup,
};
use tutti_focus::Extensions;
use tutti_test_harness::certs::TestPki;
use tutti_test_harness::prosody::{self, Gc, Prosody};

const DOMAIN: &str = "localhost";
const GUEST_DOMAIN: &str = "guest.localhost";
const MUC: &str = "conference.localhost";
const C2S_PORT: u16 = 5222;
const FOCUS_PASSWORD: &str = "focus-secret";
const FOCUS_NS: &str = "http://jitsi.org/protocol/focus";
const MUC_NS: &str = "http://jabber.org/protocol/muc";
/// Every step of a participant (login, each answer) must complete within this.
const STEP_TIMEOUT: Duration = Duration::from_secs(10);
/// Logins run at most this many at a time (SASL and stream set-up, before the timed joins).
const LOGIN_CONCURRENCY: usize = 50;
/// How long the participants stay after the last join, for trailing source-adds.
const SETTLE: Duration = Duration::from_secs(3);

const USAGE: &str = "usage: bench-focus-load --bridge PATH --focus PATH [options]
  --rooms N       rooms (default 100)
  --per-room N    participants per room (default 10)
  --rate R        joins per second over all rooms (default 20)
  --prosody-gc G  tuned (default): Lua's incremental collector at its own pace (threshold 200,
                  speed 200); prosody: Prosody 0.12's default (threshold 105, speed 500)
  --grpc-tls T    off (default): focus -> bridge gRPC in plaintext on loopback; on: mutual TLS
                  with test certificates (tutti_test_harness::certs)
  --bridges N     bridges in the focus's pool (default 1); the line reports their endpoints
  --commit C --date D   recorded in the line";

/// The name `--prosody-gc` gives Prosody's collector setting.
fn gc_name(gc: Gc) -> &'static str {
    match gc {
        Gc::Tuned => "tuned",
        Gc::ProsodyDefault => "prosody",
    }
}

struct Args {
    bridge: PathBuf,
    focus: PathBuf,
    rooms: usize,
    per_room: usize,
    rate: f64,
    prosody_gc: Gc,
    grpc_tls: bool,
    bridges: usize,
    commit: String,
    date: String,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        bridge: PathBuf::new(),
        focus: PathBuf::new(),
        rooms: 100,
        per_room: 10,
        rate: 20.0,
        prosody_gc: Gc::Tuned,
        grpc_tls: false,
        bridges: 1,
        commit: String::new(),
        date: String::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--help" || flag == "-h" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--bridge" => args.bridge = value.into(),
            "--focus" => args.focus = value.into(),
            "--rooms" => args.rooms = value.parse()?,
            "--per-room" => args.per_room = value.parse()?,
            "--rate" => args.rate = value.parse()?,
            "--prosody-gc" => {
                args.prosody_gc = match value.as_str() {
                    "tuned" => Gc::Tuned,
                    "prosody" => Gc::ProsodyDefault,
                    _ => bail!("--prosody-gc is tuned or prosody"),
                }
            }
            "--grpc-tls" => {
                args.grpc_tls = match value.as_str() {
                    "on" => true,
                    "off" => false,
                    _ => bail!("--grpc-tls is on or off"),
                }
            }
            "--bridges" => args.bridges = value.parse()?,
            "--commit" => args.commit = value,
            "--date" => args.date = value,
            _ => bail!("unknown option {flag}\n{USAGE}"),
        }
    }
    if args.bridge.as_os_str().is_empty() || args.focus.as_os_str().is_empty() {
        bail!("{USAGE}");
    }
    if args.rooms == 0 || args.per_room == 0 || args.rate <= 0.0 || args.bridges == 0 {
        bail!("--rooms, --per-room, --rate and --bridges must be positive");
    }
    Ok(args)
}

/// A child process killed and reaped when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Process {
    fn cpu_seconds(&self) -> anyhow::Result<f64> {
        cpu_seconds(self.0.id())
    }
}

/// User and system CPU time of process `pid`.
fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .context("malformed /proc/PID/stat")?
        .1
        .split_whitespace()
        .collect();
    // Fields 14 and 15 of stat(5) (utime, stime) are the 12th and 13th after the name.
    let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Ok(ticks / per_second)
}

/// The first stdout line of `child` as JSON, within `timeout`; the rest of stdout is drained.
fn ready_line(child: &mut Child, timeout: Duration) -> anyhow::Result<serde_json::Value> {
    let stdout = child.stdout.take().context("no stdout")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        let _ = reader.read_line(&mut line);
        let _ = tx.send(line);
        let mut rest = String::new();
        while reader.read_line(&mut rest).map(|n| n > 0).unwrap_or(false) {
            rest.clear();
        }
    });
    let line = rx.recv_timeout(timeout).context("no ready line")?;
    serde_json::from_str(&line).with_context(|| format!("ready line {line:?}"))
}

fn address(ready: &serde_json::Value, key: &str) -> anyhow::Result<SocketAddr> {
    ready[key]
        .as_str()
        .and_then(|a| a.parse().ok())
        .with_context(|| format!("no '{key}' address in {ready}"))
}

/// Prosody, the bridges and the focus, stopped (in reverse order) when dropped.
struct Stack {
    focus: Process,
    focus_http: SocketAddr,
    /// Each bridge and its HTTP address (metrics).
    bridges: Vec<(Process, SocketAddr)>,
    prosody: Prosody,
}

impl Stack {
    fn bridges_cpu_seconds(&self) -> anyhow::Result<f64> {
        self.bridges.iter().map(|(b, _)| b.cpu_seconds()).sum()
    }

    fn prosody_cpu_seconds(&self) -> anyhow::Result<f64> {
        cpu_seconds(self.prosody.pid().context("prosody is not running")?)
    }
}

fn start_stack(args: &Args) -> anyhow::Result<Stack> {
    // The MUC keeps no history; Prosody 0.12's MUC has no rate limit of its own, and the
    // configuration disables mod_limits (no c2s rate limit).
    let dir = std::env::temp_dir().join(format!("tutti-bench-focus-{}", std::process::id()));
    let config = prosody::Config {
        domain: DOMAIN.to_owned(),
        c2s_port: C2S_PORT,
        max_history: Some(0),
        gc: args.prosody_gc,
        ..prosody::Config::new(dir.clone())
    };
    if config.guest_domain() != GUEST_DOMAIN || config.muc_domain() != MUC {
        bail!("the Prosody configuration's hosts are not {GUEST_DOMAIN} and {MUC}");
    }
    let mut prosody = Prosody::configure(config)?;
    prosody.register("focus", FOCUS_PASSWORD)?;
    prosody.start()?;
    // With --grpc-tls on: certificates in Prosody's directory, removed with it.
    let (bridge_tls, focus_tls) = if args.grpc_tls {
        let pki = TestPki::write(&dir.join("grpc-tls"))?;
        let path = |file: PathBuf| file.display().to_string();
        (
            vec![
                ("TUTTI_BRIDGE_GRPC_TLS_CA", path(pki.cert("ca"))),
                ("TUTTI_BRIDGE_GRPC_TLS_CERT", path(pki.cert("bridge"))),
                ("TUTTI_BRIDGE_GRPC_TLS_KEY", path(pki.key("bridge"))),
            ],
            vec![
                ("TUTTI_FOCUS_BRIDGE_TLS_CA", path(pki.cert("ca"))),
                ("TUTTI_FOCUS_BRIDGE_TLS_CERT", path(pki.cert("focus"))),
                ("TUTTI_FOCUS_BRIDGE_TLS_KEY", path(pki.key("focus"))),
            ],
        )
    } else {
        (Vec::new(), Vec::new())
    };
    let mut bridges = Vec::with_capacity(args.bridges);
    let mut urls = Vec::with_capacity(args.bridges);
    for _ in 0..args.bridges {
        let mut bridge = Process(
            Command::new(&args.bridge)
                .env("TUTTI_BRIDGE_GRPC_ADDRESS", "127.0.0.1:0")
                .env("TUTTI_BRIDGE_HTTP_ADDRESS", "127.0.0.1:0")
                .env("TUTTI_BRIDGE_MEDIA_ADDRESS", "127.0.0.1:0")
                .env("RUST_LOG", "warn")
                .envs(bridge_tls.iter().cloned())
                .stdout(Stdio::piped())
                .spawn()
                .context("starting a bridge")?,
        );
        let ready = ready_line(&mut bridge.0, Duration::from_secs(10))?;
        let grpc = address(&ready, "grpc")?;
        // The test bridge certificate names localhost and 127.0.0.1.
        let scheme = if args.grpc_tls { "https" } else { "http" };
        urls.push(format!("{scheme}://{grpc}"));
        bridges.push((bridge, address(&ready, "http")?));
    }
    let mut focus = Process(
        Command::new(&args.focus)
            .env("TUTTI_FOCUS_JID", format!("focus@{DOMAIN}"))
            .env("TUTTI_FOCUS_PASSWORD", FOCUS_PASSWORD)
            .env("TUTTI_FOCUS_XMPP_SERVER", format!("127.0.0.1:{C2S_PORT}"))
            .env("TUTTI_FOCUS_XMPP_SECURITY", "plaintext")
            .env("TUTTI_FOCUS_MUC_DOMAIN", MUC)
            .env("TUTTI_FOCUS_BRIDGE_URLS", urls.join(","))
            .envs(focus_tls)
            .env("TUTTI_FOCUS_HTTP_ADDRESS", "127.0.0.1:0")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .context("starting the focus")?,
    );
    let focus_http = address(&ready_line(&mut focus.0, Duration::from_secs(15))?, "http")?;
    Ok(Stack {
        focus,
        focus_http,
        bridges,
        prosody,
    })
}

/// The focus's /metrics as name (with labels) → value.
async fn scrape(http: SocketAddr) -> anyhow::Result<HashMap<String, f64>> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(http).await?;
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: focus\r\n\r\n")
        .await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let body = response.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    Ok(body
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.rsplit_once(' '))
        .filter_map(|(name, value)| Some((name.to_owned(), value.parse().ok()?)))
        .collect())
}

/// One simulated participant's signalling. It uses tokio-xmpp's `StanzaStream` directly, not
/// its `Client`: the `Client` shares the stream between its sending half and a receive task
/// behind a mutex whose receive side returns `Pending` without a waker when the lock is taken
/// (tokio-xmpp 6.0.0), which can stall reception for good while a send is under way.
struct Participant {
    index: usize,
    room: String,
    nick: String,
    stream: StanzaStream,
}

/// What one participant measured.
#[derive(Default)]
struct Outcome {
    /// Conference request → its result (Prosody and the focus, no bridge call).
    conference_request: Option<Duration>,
    /// None when the participant failed before its session-initiate.
    join_to_initiate: Option<Duration>,
    /// session-accept → its result (includes the focus's `UpdateEndpoint` on the bridge).
    accept: Option<Duration>,
    accepted: bool,
    error: Option<String>,
    /// Sources the focus announced to it (session-initiate and source-add, minus
    /// source-remove): SSRC → source name. Video comes under SSRCs the focus minted, so a
    /// receiver's view is checked by the names it was told of.
    known_sources: BTreeMap<u32, String>,
    terminated: bool,
}

/// The SSRCs of participant `index`: audio, video, video RTX.
fn ssrcs_of(index: usize) -> [u32; 3] {
    let base = 0x1000_0000 + 4 * index as u32;
    [base, base + 1, base + 2]
}

/// The sources a Jingle lists: SSRC and name.
fn jingle_sources(jingle: &Jingle) -> impl Iterator<Item = (u32, String)> + '_ {
    jingle
        .contents
        .iter()
        .filter_map(|content| content.description.as_ref())
        .flat_map(|description| {
            description
                .sources
                .iter()
                .map(|source| (source.ssrc, source.name.clone().unwrap_or_default()))
        })
}

/// The source names participant `index` announces, one per SSRC receivers get: its audio, and
/// its camera's stream and RTX stream.
fn names_of(index: usize) -> [String; 3] {
    let name = format!("p{index:05}");
    [
        format!("{name}-a0"),
        format!("{name}-v0"),
        format!("{name}-v0"),
    ]
}

impl Participant {
    async fn send(&mut self, stanza: impl Into<Stanza>) {
        self.stream.send(Box::new(stanza.into())).await;
    }

    /// Reads stanzas until `pick` returns Some, within `STEP_TIMEOUT`. Jingle requests from the
    /// focus are acknowledged and their sources tracked on the way.
    async fn wait<T>(
        &mut self,
        outcome: &mut Outcome,
        mut pick: impl FnMut(&Stanza, Option<&Jingle>) -> Option<T>,
    ) -> anyhow::Result<T> {
        let deadline = tokio::time::Instant::now() + STEP_TIMEOUT;
        loop {
            let event = tokio::time::timeout_at(deadline, self.stream.next())
                .await
                .context("timed out")?;
            let stanza = match event {
                Some(Event::Stanza(stanza)) => stanza,
                Some(Event::Stream(StreamEvent::Reset { .. })) => bail!("the stream was reset"),
                Some(Event::Stream(_)) => continue,
                None => bail!("the XMPP stream ended"),
            };
            let jingle = self.take_jingle(&stanza, outcome).await;
            if let Some(found) = pick(&stanza, jingle.as_ref()) {
                return Ok(found);
            }
        }
    }

    /// A Jingle request: acknowledged, its sources applied to `outcome`.
    async fn take_jingle(&mut self, stanza: &Stanza, outcome: &mut Outcome) -> Option<Jingle> {
        let Stanza::Iq(Iq::Set {
            from, id, payload, ..
        }) = stanza
        else {
            return None;
        };
        let jingle = Jingle::from_element(payload).ok()?;
        self.send(Iq::Result {
            from: None,
            to: from.clone(),
            id: id.clone(),
            payload: None,
        })
        .await;
        match jingle.action {
            Action::SessionInitiate | Action::SourceAdd => {
                outcome.known_sources.extend(jingle_sources(&jingle));
            }
            Action::SourceRemove => {
                for (ssrc, _) in jingle_sources(&jingle) {
                    outcome.known_sources.remove(&ssrc);
                }
            }
            Action::SessionTerminate => outcome.terminated = true,
            _ => {}
        }
        Some(jingle)
    }

    /// Sends an IQ set and waits for its answer.
    async fn request(
        &mut self,
        outcome: &mut Outcome,
        to: Jid,
        payload: Element,
    ) -> anyhow::Result<Iq> {
        let id = format!("b{}-{}", self.index, rand::random::<u32>());
        self.send(Iq::Set {
            from: None,
            to: Some(to),
            id: id.clone(),
            payload,
        })
        .await;
        self.wait(outcome, |stanza, _| match stanza {
            Stanza::Iq(iq @ (Iq::Result { .. } | Iq::Error { .. })) if iq.id() == id => {
                Some(iq.clone())
            }
            _ => None,
        })
        .await
    }

    /// Conference request, join, session-initiate, session-accept.
    async fn join(&mut self, outcome: &mut Outcome) -> anyhow::Result<()> {
        let request = Element::builder("conference", FOCUS_NS)
            .attr(rxml::xml_ncname!("room").into(), self.room.as_str())
            .attr(rxml::xml_ncname!("machine-uid").into(), "bench")
            .build();
        let focus = Jid::new(&format!("focus@{DOMAIN}/focus"))?;
        let requested = Instant::now();
        match self.request(outcome, focus, request).await? {
            Iq::Result {
                payload: Some(answer),
                ..
            } if answer.attr("ready") == Some("true") => {}
            other => bail!("conference request: {other:?}"),
        }
        outcome.conference_request = Some(requested.elapsed());
        let occupant = Jid::new(&format!("{}/{}", self.room, self.nick))?;
        let presence = Presence::available()
            .with_to(occupant)
            .with_payloads(vec![Element::bare("x", MUC_NS)]);
        let joined = Instant::now();
        self.send(presence).await;
        let focus_occupant = Jid::new(&format!("{}/focus", self.room))?;
        let (from, sid) = self
            .wait(outcome, |stanza, jingle| match (stanza, jingle) {
                (
                    Stanza::Iq(Iq::Set {
                        from: Some(from), ..
                    }),
                    Some(jingle),
                ) if jingle.action == Action::SessionInitiate => {
                    Some((from.clone(), jingle.sid.clone()))
                }
                _ => None,
            })
            .await?;
        outcome.join_to_initiate = Some(joined.elapsed());
        if from != focus_occupant {
            bail!("session-initiate from {from}, not {focus_occupant}");
        }
        let accept = session_accept(&sid, self.index);
        let accepted = Instant::now();
        match self.request(outcome, from, accept.to_element()).await? {
            Iq::Result { .. } => outcome.accepted = true,
            other => bail!("session-accept refused: {other:?}"),
        }
        outcome.accept = Some(accepted.elapsed());
        Ok(())
    }

    /// The whole life of the participant: joins at `start`, then acknowledges the focus's
    /// updates until `stop`.
    async fn run(
        mut self,
        start: tokio::time::Instant,
        mut stop: watch::Receiver<bool>,
    ) -> Outcome {
        let mut outcome = Outcome::default();
        tokio::time::sleep_until(start).await;
        if let Err(error) = self.join(&mut outcome).await {
            outcome.error = Some(format!("{}: {error:#}", self.nick));
            return outcome;
        }
        loop {
            tokio::select! {
                _ = stop.changed() => break,
                event = self.stream.next() => match event {
                    Some(Event::Stanza(stanza)) => {
                        self.take_jingle(&stanza, &mut outcome).await;
                    }
                    Some(Event::Stream(StreamEvent::Reset { .. })) => {
                        outcome.error = Some(format!("{}: the stream was reset", self.nick));
                        break;
                    }
                    Some(Event::Stream(_)) => {}
                    None => break,
                },
            }
        }
        outcome
    }
}

/// A session-accept as lib-jitsi-meet sends it: Opus, VP8 + RTX, one host candidate, a DTLS
/// fingerprint, and the participant's audio and video (FID group) sources.
fn session_accept(sid: &str, index: usize) -> Jingle {
    let [audio_ssrc, video_ssrc, rtx_ssrc] = ssrcs_of(index);
    let name = format!("p{index:05}");
    let msid = |track: &str| Parameter::new("msid", format!("{name}-stream {name}-{track}"));
    let mut audio = RtpDescription::new("audio");
    audio.payload_types = vec![PayloadType::new(111, "opus", 48000, Some(2))];
    audio.rtcp_mux = true;
    let mut audio_source = Source::new(audio_ssrc);
    audio_source.name = Some(format!("{name}-a0"));
    audio_source.parameters.push(msid("audio"));
    audio.sources = vec![audio_source];
    let mut rtx = PayloadType::new(96, "rtx", 90000, None);
    rtx.parameters = vec![Parameter::new("apt", "100")];
    let mut video = RtpDescription::new("video");
    video.payload_types = vec![PayloadType::new(100, "VP8", 90000, None), rtx];
    video.rtcp_mux = true;
    for ssrc in [video_ssrc, rtx_ssrc] {
        let mut source = Source::new(ssrc);
        source.name = Some(format!("{name}-v0"));
        source.video_type = Some("camera".to_owned());
        source.parameters.push(msid("video"));
        video.sources.push(source);
    }
    video.source_groups = vec![SourceGroup::new(
        GroupSemantics::Fid,
        vec![video_ssrc, rtx_ssrc],
    )];
    let mut transport = IceUdpTransport::new(format!("u{index:05}"), format!("{index:024}"));
    let fingerprint = (0..32)
        .map(|byte| format!("{:02X}", (index + byte) % 256))
        .collect::<Vec<_>>()
        .join(":");
    transport.fingerprints = vec![Fingerprint::new("sha-256", fingerprint, DtlsSetup::Active)];
    transport.rtcp_mux = true;
    transport.candidates = vec![Candidate {
        component: 1,
        foundation: "1".to_owned(),
        generation: Some(0),
        id: Some("c1".to_owned()),
        ip: "127.0.0.1".to_owned(),
        network: Some(0),
        // A closed port: the bridge's ICE checks go nowhere; the benchmark is signalling only.
        port: 9,
        priority: 2_130_706_431,
        protocol: "udp".to_owned(),
        kind: CandidateType::Host,
        rel_addr: None,
        rel_port: None,
        tcptype: None,
        extensions: Extensions::default(),
    }];
    let mut jingle = Jingle::new(Action::SessionAccept, sid);
    for description in [audio, video] {
        let mut content = Content::new(description.media.clone().unwrap_or_default());
        content.creator = Some(Creator::Initiator);
        content.senders = Some(Senders::Both);
        content.description = Some(description);
        content.transport = Some(transport.clone());
        jingle.contents.push(content);
    }
    jingle.groups.push(Group::bundle(["audio", "video"]));
    jingle
}

/// An anonymous login on the guest host (the stream retries by itself until the time-out).
async fn login() -> anyhow::Result<StanzaStream> {
    let mut stream = StanzaStream::new_c2s(
        Plaintext(
            SocketAddr::from(([127, 0, 0, 1], C2S_PORT)),
            StreamErrors::default(),
        ),
        BareJid::new(&format!("bench@{GUEST_DOMAIN}"))?.into(),
        String::new(),
        Timeouts::default(),
        64,
    );
    tokio::time::timeout(STEP_TIMEOUT, async {
        loop {
            match stream.next().await {
                Some(Event::Stream(StreamEvent::Reset { .. })) => return Ok(()),
                Some(_) => {}
                None => bail!("the XMPP stream ended"),
            }
        }
    })
    .await
    .context("login timed out")??;
    Ok(stream)
}

fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

fn round(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    // Both rustls providers are compiled in (tokio-xmpp brings one): choose one.
    let _ = tokio_xmpp::rustls::crypto::aws_lc_rs::default_provider().install_default();
    let stack = start_stack(&args)?;
    let total = args.rooms * args.per_room;

    let logins = Arc::new(Semaphore::new(LOGIN_CONCURRENCY));
    let mut pending = Vec::with_capacity(total);
    for _ in 0..total {
        let logins = logins.clone();
        pending.push(tokio::spawn(async move {
            let _permit = logins.acquire().await;
            login().await
        }));
    }
    let mut clients = Vec::with_capacity(total);
    for task in pending {
        clients.push(task.await?.context("a participant's login")?);
    }
    eprintln!(
        "{total} participants logged in; joining at {} / s",
        args.rate
    );

    let cpu_before = [
        stack.focus.cpu_seconds()?,
        stack.bridges_cpu_seconds()?,
        stack.prosody_cpu_seconds()?,
    ];
    let (stop_tx, stop_rx) = watch::channel(false);
    let begin = tokio::time::Instant::now() + Duration::from_millis(200);
    let mut tasks = Vec::with_capacity(total);
    // Participant i joins room i mod rooms: every room is open from the first seconds on and
    // grows to its full size by the end.
    for (index, stream) in clients.into_iter().enumerate() {
        let participant = Participant {
            index,
            room: format!("bench{:04}@{MUC}", index % args.rooms),
            nick: format!("p{index:05}"),
            stream,
        };
        let start = begin + Duration::from_secs_f64(index as f64 / args.rate);
        tasks.push(tokio::spawn(participant.run(start, stop_rx.clone())));
    }
    let last_join = begin + Duration::from_secs_f64(total as f64 / args.rate);
    let mut rooms_max = 0.0_f64;
    while tokio::time::Instant::now() < last_join + SETTLE {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if let Ok(metrics) = scrape(stack.focus_http).await {
            rooms_max = rooms_max.max(metrics.get("tutti_focus_rooms").copied().unwrap_or(0.0));
        }
    }
    let metrics = scrape(stack.focus_http).await?;
    // How the pool spread the endpoints, while everyone is still in.
    let mut endpoints_per_bridge = Vec::with_capacity(stack.bridges.len());
    for (_, http) in &stack.bridges {
        let bridge = scrape(*http).await?;
        endpoints_per_bridge.push(bridge.get("tutti_bridge_endpoints").copied().unwrap_or(0.0));
    }
    let fewest = endpoints_per_bridge
        .iter()
        .copied()
        .fold(f64::INFINITY, f64::min);
    let most = endpoints_per_bridge.iter().copied().fold(0.0, f64::max);
    let cpu_after = [
        stack.focus.cpu_seconds()?,
        stack.bridges_cpu_seconds()?,
        stack.prosody_cpu_seconds()?,
    ];
    stop_tx.send(true)?;
    let mut outcomes = Vec::with_capacity(total);
    for task in tasks {
        outcomes.push(task.await?);
    }

    let sorted_ms = |field: fn(&Outcome) -> Option<Duration>| {
        let mut ms: Vec<f64> = outcomes
            .iter()
            .filter_map(field)
            .map(|d| d.as_secs_f64() * 1000.0)
            .collect();
        ms.sort_by(f64::total_cmp);
        ms
    };
    let latencies = sorted_ms(|o| o.join_to_initiate);
    let conference_requests = sorted_ms(|o| o.conference_request);
    let accepts = sorted_ms(|o| o.accept);
    // What each participant should know at the end: the sources of everyone else in its room,
    // one SSRC each for audio, video and its RTX (the video's minted by the focus).
    let mut incomplete_views = 0;
    for (index, outcome) in outcomes.iter().enumerate() {
        if !outcome.accepted {
            continue;
        }
        let mut expected: Vec<String> = (0..total)
            .filter(|other| other % args.rooms == index % args.rooms && *other != index)
            .filter(|other| outcomes[*other].accepted)
            .flat_map(names_of)
            .collect();
        expected.sort();
        let mut known: Vec<String> = outcome.known_sources.values().cloned().collect();
        known.sort();
        if known != expected {
            incomplete_views += 1;
        }
    }
    let failed: Vec<&String> = outcomes.iter().filter_map(|o| o.error.as_ref()).collect();
    for error in failed.iter().take(5) {
        eprintln!("error: {error}");
    }
    let terminated = outcomes.iter().filter(|o| o.terminated).count();
    let accepted = outcomes.iter().filter(|o| o.accepted).count();
    let focus_errors: f64 = metrics
        .iter()
        .filter(|(name, _)| name.starts_with("tutti_focus_errors_total"))
        .fold(0.0, |sum, (_, value)| sum + value);
    let ms = |p: f64| percentile(&latencies, p).map(round);
    let other_ms = |sorted: &[f64], p: f64| percentile(sorted, p).map(round);
    let line = json!({
        "bench": "focus",
        "date": args.date,
        "commit": args.commit,
        "rooms": args.rooms,
        "prosody_gc": gc_name(args.prosody_gc),
        "grpc_tls": args.grpc_tls,
        "per_room": args.per_room,
        "join_rate_per_s": args.rate,
        "participants": accepted,
        "errors": failed.len() + terminated + incomplete_views,
        "participant_errors": failed.len(),
        "sessions_terminated": terminated,
        "incomplete_source_views": incomplete_views,
        "join_to_initiate_p50_ms": ms(50.0),
        "join_to_initiate_p90_ms": ms(90.0),
        "join_to_initiate_p99_ms": ms(99.0),
        "join_to_initiate_max_ms": latencies.last().copied().map(round),
        "conference_request_p50_ms": other_ms(&conference_requests, 50.0),
        "conference_request_p99_ms": other_ms(&conference_requests, 99.0),
        "session_accept_p50_ms": other_ms(&accepts, 50.0),
        "session_accept_p99_ms": other_ms(&accepts, 99.0),
        "focus_rooms_max": rooms_max,
        "focus_participants": metrics.get("tutti_focus_participants"),
        "focus_sessions_active": metrics.get("tutti_focus_jingle_sessions{state=\"active\"}"),
        "focus_errors_total": focus_errors,
        "focus_allocation_seconds_sum": metrics.get("tutti_focus_allocation_seconds_sum").copied().map(round),
        "focus_cpu_s": round(cpu_after[0] - cpu_before[0]),
        "bridges": args.bridges,
        "endpoints_per_bridge": endpoints_per_bridge,
        "bridge_spread_max_min": (fewest > 0.0).then(|| round(most / fewest)),
        "bridge_cpu_s": round(cpu_after[1] - cpu_before[1]),
        "prosody_cpu_s": round(cpu_after[2] - cpu_before[2]),
        "window_s": round((last_join + SETTLE - begin).as_secs_f64()),
    });
    println!("{line}");
    drop(stack);
    Ok(())
}
