//! `bench-soak`: the soak test (run it through `bench/soak`, which builds it and isolates it in a
//! network namespace). It starts a real Prosody, the bridge and the focus (`stack.rs`), then
//! keeps participants joining and leaving rooms for `--minutes`: `--signalling` slots of
//! signalling-only participants (`signalling.rs`: their endpoints are allocated and never
//! connect) and `--media` slots of participants with real media (tutti-participant: ICE, DTLS,
//! SRTP, audio and video to the bridge), two of them per room so that each receives the other.
//! Each slot runs one session after another: log in, conference request, join, accept, stay a
//! few seconds, leave, log out.
//!
//! Memory is compared at the same load: `rss_same_load_ratio` is the bridge's mean RSS over
//! the last minute of the run over its mean RSS over the first minute after a warm-up (a tenth
//! of the run, at least a minute), every slot busy both times. With nobody in, it is measured
//! at the start, after the warm-up (everyone leaves) and at the end (everyone leaves again):
//! `rss_idle_ratio`, which also shows how much of its peak the allocator gave back. Before any participant, `--idle-probe` endpoints are allocated over gRPC (in
//! conferences of 10), told their media and sources (audio, video with RTX) as a focus does
//! after a session-accept, and left unconnected: the bridge's own gauge (`tutti_bridge_endpoint_bytes{state="idle"}`) and
//! the RSS they added give the cost of an idle endpoint. After the end, whatever endpoint,
//! conference, room or participant is still counted has leaked. One JSON line on stdout.

#[allow(dead_code)] // the focus's end-to-end tests use the rest
#[path = "../../../focus/tests/common/mod.rs"]
mod common;
#[allow(dead_code)] // the bridge benchmark uses the rest
#[path = "../setup.rs"]
mod setup;
#[path = "../signalling.rs"]
mod signalling;
#[path = "../stack.rs"]
mod stack;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context};
use rand::Rng;
use serde_json::json;
use tokio::sync::watch;
use tokio::time::Instant;
use tutti_participant::ParticipantConfig;
use tutti_proto::bridge_v1 as pb;
use tutti_test_harness::prosody::Gc;

use signalling::{login, Outcome, Participant, STEP_TIMEOUT};
use stack::{scrape, start_stack, Stack, StackOptions, MUC};

const USAGE: &str = "usage: bench-soak --bridge PATH --focus PATH [options]
  --minutes M     how long participants come and go (default 30)
  --rooms N       rooms (default 4)
  --signalling N  signalling-only participants at a time (default 12)
  --media N       participants with media at a time, two per room (default 4)
  --idle-probe N  endpoints allocated, never connected, to weigh an idle one (default 200)
  --commit C --date D   recorded in the line";

/// How long a session stays, by kind (drawn uniformly).
const SIGNALLING_STAY: (f64, f64) = (2.0, 6.0);
const MEDIA_STAY: (f64, f64) = (6.0, 15.0);
/// Video each media participant sends.
const MEDIA_VIDEO_BPS: u32 = 300_000;
/// How often memory and the bridge's gauges are sampled.
const SAMPLE_EVERY: Duration = Duration::from_secs(5);
/// How long everyone's leaving may take to reach the bridge (expiries) before what is left
/// counts as leaked.
const SETTLE_BOUND: Duration = Duration::from_secs(30);

/// Who comes and goes.
#[derive(Clone, Copy)]
struct Load {
    rooms: usize,
    signalling: usize,
    media: usize,
}

struct Args {
    bridge: PathBuf,
    focus: PathBuf,
    minutes: f64,
    load: Load,
    idle_probe: usize,
    commit: String,
    date: String,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        bridge: PathBuf::new(),
        focus: PathBuf::new(),
        minutes: 30.0,
        load: Load {
            rooms: 4,
            signalling: 12,
            media: 4,
        },
        idle_probe: 200,
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
            "--minutes" => args.minutes = value.parse()?,
            "--rooms" => args.load.rooms = value.parse()?,
            "--signalling" => args.load.signalling = value.parse()?,
            "--media" => args.load.media = value.parse()?,
            "--idle-probe" => args.idle_probe = value.parse()?,
            "--commit" => args.commit = value,
            "--date" => args.date = value,
            _ => bail!("unknown option {flag}\n{USAGE}"),
        }
    }
    if args.bridge.as_os_str().is_empty() || args.focus.as_os_str().is_empty() {
        bail!("{USAGE}");
    }
    if args.minutes <= 0.0 || args.load.rooms == 0 || args.idle_probe == 0 {
        bail!("--minutes, --rooms and --idle-probe must be positive");
    }
    if args.load.media.div_ceil(2) > args.load.rooms {
        bail!("--media puts two participants per room: at most 2 x --rooms");
    }
    Ok(args)
}

/// What the participants did, over all slots.
#[derive(Default)]
struct Tally {
    signalling_sessions: AtomicU64,
    media_sessions: AtomicU64,
    /// Media sessions that received the other participant's media while both were in.
    media_received: AtomicU64,
    errors: AtomicU64,
    first_errors: Mutex<Vec<String>>,
    /// Unique per session: nicks and the signalling participants' SSRCs.
    next_index: AtomicU64,
}

impl Tally {
    fn failed(&self, error: anyhow::Error) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut first) = self.first_errors.lock() {
            if first.len() < 5 {
                first.push(format!("{error:#}"));
            }
        }
    }
}

fn stay(range: (f64, f64)) -> Duration {
    Duration::from_secs_f64(rand::rng().random_range(range.0..range.1))
}

/// One signalling-only session in `room`.
async fn signalling_session(tally: &Tally, room: &str) -> anyhow::Result<()> {
    let index = tally.next_index.fetch_add(1, Ordering::Relaxed) as usize;
    let mut participant = Participant {
        index,
        room: room.to_owned(),
        nick: format!("s{index:06}"),
        stream: login().await.context("signalling: login")?,
    };
    let mut outcome = Outcome::default();
    participant
        .join(&mut outcome)
        .await
        .context("signalling: joining")?;
    participant
        .idle(&mut outcome, Instant::now() + stay(SIGNALLING_STAY))
        .await;
    participant.leave().await;
    tally.signalling_sessions.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// One session with media in `room`.
async fn media_session(tally: &Tally, room: &str) -> anyhow::Result<()> {
    let index = tally.next_index.fetch_add(1, Ordering::Relaxed) as usize;
    let nick = format!("m{index:06}");
    let mut participant = Participant {
        index,
        room: room.to_owned(),
        nick: nick.clone(),
        stream: login().await.context("media: login")?,
    };
    let mut outcome = Outcome::default();
    let (from, initiate) = participant
        .enter(&mut outcome)
        .await
        .context("media: joining")?;
    let mut config = ParticipantConfig::new(&nick);
    config.video_bitrate_bps = MEDIA_VIDEO_BPS;
    let media = tutti_participant::Participant::bind(config.clone()).await?;
    let accept = common::session_accept(&initiate.sid, &config, &media.local_description());
    participant
        .accept(&mut outcome, from, accept)
        .await
        .context("media: session-accept")?;
    let connected = media
        .connect(&common::remote_description(&initiate), STEP_TIMEOUT)
        .await;
    if let Err(error) = connected {
        media.close().await;
        participant.leave().await;
        return Err(error.context("media did not connect"));
    }
    participant
        .idle(&mut outcome, Instant::now() + stay(MEDIA_STAY))
        .await;
    let received = media
        .stats()
        .received
        .values()
        .any(|stream| stream.packets > 0);
    media.close().await;
    participant.leave().await;
    tally.media_sessions.fetch_add(1, Ordering::Relaxed);
    if received {
        tally.media_received.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

/// Participants coming and going in every slot until `stop`; returns once every slot's
/// session has ended (everyone left).
async fn churn(load: Load, tally: Arc<Tally>, stop: watch::Receiver<bool>) {
    let mut slots = Vec::new();
    for slot in 0..load.signalling + load.media {
        let media = slot >= load.signalling;
        let room = if media {
            format!("soak{:02}@{MUC}", (slot - load.signalling) / 2)
        } else {
            format!("soak{:02}@{MUC}", slot % load.rooms)
        };
        let tally = tally.clone();
        let stop = stop.clone();
        slots.push(tokio::spawn(async move {
            // Spread the starts over a few seconds.
            tokio::time::sleep(stay((0.0, 3.0))).await;
            while !*stop.borrow() {
                let result = if media {
                    media_session(&tally, &room).await
                } else {
                    signalling_session(&tally, &room).await
                };
                if let Err(error) = result {
                    tally.failed(error);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }));
    }
    for slot in slots {
        let _ = slot.await;
    }
}

/// What is sampled while the participants come and go.
#[derive(Default)]
struct Peaks {
    bridge_rss_kib: u64,
    focus_rss_kib: u64,
    endpoints: f64,
    connected_endpoint_bytes: f64,
    /// (bridge, focus) RSS of every sample, KiB, in order.
    rss: Vec<(u64, u64)>,
}

/// Samples in a minute: the windows `rss_same_load_ratio` compares.
const WINDOW: usize = 12;

/// Mean (bridge, focus) RSS over `samples`, KiB.
fn mean_rss(samples: &[(u64, u64)]) -> (f64, f64) {
    let n = samples.len().max(1) as f64;
    let bridge: u64 = samples.iter().map(|s| s.0).sum();
    let focus: u64 = samples.iter().map(|s| s.1).sum();
    (bridge as f64 / n, focus as f64 / n)
}

async fn sample(stack: &Stack, peaks: &mut Peaks) -> anyhow::Result<()> {
    let (bridge, http, _) = &stack.bridges[0];
    let rss = (bridge.rss_kib()?, stack.focus.rss_kib()?);
    peaks.rss.push(rss);
    peaks.bridge_rss_kib = peaks.bridge_rss_kib.max(rss.0);
    peaks.focus_rss_kib = peaks.focus_rss_kib.max(rss.1);
    let metrics = scrape(*http).await?;
    let get = |name: &str| metrics.get(name).copied().unwrap_or(0.0);
    peaks.endpoints = peaks.endpoints.max(get("tutti_bridge_endpoints"));
    peaks.connected_endpoint_bytes = peaks
        .connected_endpoint_bytes
        .max(get("tutti_bridge_endpoint_bytes{state=\"connected\"}"));
    Ok(())
}

/// Runs the participants for `length`, sampling; then everyone leaves and the stack settles.
async fn phase(
    load: Load,
    stack: &Stack,
    tally: &Arc<Tally>,
    length: Duration,
    peaks: &mut Peaks,
) -> anyhow::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let running = tokio::spawn(churn(load, tally.clone(), stop_rx));
    let end = Instant::now() + length;
    while Instant::now() < end {
        tokio::time::sleep(SAMPLE_EVERY.min(end - Instant::now())).await;
        sample(stack, peaks).await?;
        eprintln!(
            "soak: {} sessions, {} errors, bridge {} KiB, focus {} KiB",
            tally.signalling_sessions.load(Ordering::Relaxed)
                + tally.media_sessions.load(Ordering::Relaxed),
            tally.errors.load(Ordering::Relaxed),
            stack.bridges[0].0.rss_kib()?,
            stack.focus.rss_kib()?,
        );
    }
    stop_tx.send(true)?;
    running.await?;
    settle(stack).await
}

/// Waits (up to `SETTLE_BOUND`) until the bridge holds no endpoint or conference and the focus
/// no room; returns either way (what is left is reported as leaked).
async fn settle(stack: &Stack) -> anyhow::Result<()> {
    let deadline = Instant::now() + SETTLE_BOUND;
    while Instant::now() < deadline {
        let bridge = scrape(stack.bridges[0].1).await?;
        let focus = scrape(stack.focus_http).await?;
        let count = |metrics: &std::collections::HashMap<String, f64>, name: &str| {
            metrics.get(name).copied().unwrap_or(0.0)
        };
        if count(&bridge, "tutti_bridge_endpoints") == 0.0
            && count(&bridge, "tutti_bridge_conferences") == 0.0
            && count(&focus, "tutti_focus_rooms") == 0.0
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The worker publishes its gauges 10 times a second; the allocator settles too.
    tokio::time::sleep(Duration::from_secs(2)).await;
    Ok(())
}

/// Endpoints per conference in the idle probe: a meeting's size. (Every endpoint gets a
/// consumer of each other's sources, so what an endpoint costs grows with its conference.)
const PROBE_CONFERENCE: usize = 10;

/// Allocates `count` endpoints over gRPC, in conferences of `PROBE_CONFERENCE`, gives each its
/// media and sources (what a session-accept brings) and leaves them unconnected: (the bridge's
/// gauge of an idle endpoint, the RSS each added), in bytes; then expires them.
async fn idle_probe(stack: &Stack, count: usize) -> anyhow::Result<(f64, f64)> {
    let (bridge, http, grpc) = &stack.bridges[0];
    let mut client = pb::bridge_client::BridgeClient::connect(format!("http://{grpc}")).await?;
    let conference = |i: usize| format!("soak-idle-probe-{}", i / PROBE_CONFERENCE);
    let before = bridge.rss_kib()?;
    for i in 0..count {
        if i % PROBE_CONFERENCE == 0 {
            client
                .create_conference(pb::CreateConferenceRequest {
                    conference_id: conference(i),
                    name: conference(i),
                })
                .await?;
        }
        let endpoint_id = format!("idle{i}");
        client
            .allocate_endpoint(pb::AllocateEndpointRequest {
                conference_id: conference(i),
                endpoint_id: endpoint_id.clone(),
                dtls_setup: pb::DtlsSetup::Actpass as i32,
                participant_id: String::new(),
                receives_by_mid: false,
            })
            .await?;
        let config = ParticipantConfig::new(&endpoint_id);
        let camera = setup::Layer {
            ssrc: config.video_ssrc,
            rtx_ssrc: config.video_rtx_ssrc,
            width: 640,
            height: 360,
            bitrate_bps: MEDIA_VIDEO_BPS,
        };
        client
            .update_endpoint(pb::UpdateEndpointRequest {
                conference_id: conference(i),
                endpoint_id,
                transport: None,
                media: Some(setup::media_list(&config, true)),
                sources: Some(setup::source_list(&config, &[camera])),
                receive_mids: None,
            })
            .await?;
    }
    // The worker publishes its gauges 10 times a second, once it has taken every command.
    let deadline = Instant::now() + Duration::from_secs(30);
    let metrics = loop {
        let metrics = scrape(*http).await?;
        let held = metrics
            .get("tutti_bridge_endpoints")
            .copied()
            .unwrap_or(0.0);
        if held == count as f64 {
            break metrics;
        }
        if Instant::now() > deadline {
            bail!("the bridge holds {held} endpoints, not the {count} of the probe");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let after = bridge.rss_kib()?;
    let gauge = metrics
        .get("tutti_bridge_endpoint_bytes{state=\"idle\"}")
        .copied()
        .context("no tutti_bridge_endpoint_bytes{state=\"idle\"}")?;
    for i in (0..count).step_by(PROBE_CONFERENCE) {
        client
            .expire_conference(pb::ExpireConferenceRequest {
                conference_id: conference(i),
            })
            .await?;
    }
    let rss = after.saturating_sub(before) as f64 * 1024.0 / count as f64;
    Ok((gauge, rss))
}

fn round(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    // Both rustls providers are compiled in (tokio-xmpp brings one): choose one.
    let _ = tokio_xmpp::rustls::crypto::aws_lc_rs::default_provider().install_default();
    let stack = start_stack(&StackOptions {
        bridge: &args.bridge,
        focus: &args.focus,
        name: "soak",
        prosody_gc: Gc::Tuned,
        grpc_tls: false,
        bridges: 1,
        bridge_env: &[],
    })?;
    let bridge = &stack.bridges[0];
    let (rss_start, focus_rss_start) = (bridge.0.rss_kib()?, stack.focus.rss_kib()?);
    let (idle_gauge, idle_rss) = idle_probe(&stack, args.idle_probe).await?;
    settle(&stack).await?;
    let cpu_before = [
        stack.focus.cpu_seconds()?,
        stack.bridges_cpu_seconds()?,
        stack.prosody_cpu_seconds()?,
    ];

    let total = Duration::from_secs_f64(args.minutes * 60.0);
    let warm_up = (total / 10).max(Duration::from_secs(60)).min(total / 2);
    let tally = Arc::new(Tally::default());
    let mut peaks = Peaks::default();
    let started = Instant::now();
    phase(args.load, &stack, &tally, warm_up, &mut peaks).await?;
    let (rss_warm, focus_rss_warm) = (bridge.0.rss_kib()?, stack.focus.rss_kib()?);
    eprintln!("soak: warmed up; bridge {rss_warm} KiB, focus {focus_rss_warm} KiB with nobody in");
    let warm_samples = peaks.rss.len();
    phase(args.load, &stack, &tally, total - warm_up, &mut peaks).await?;
    let ran = started.elapsed();
    let (rss_end, focus_rss_end) = (bridge.0.rss_kib()?, stack.focus.rss_kib()?);
    let cpu_after = [
        stack.focus.cpu_seconds()?,
        stack.bridges_cpu_seconds()?,
        stack.prosody_cpu_seconds()?,
    ];
    // Under the same load (every slot busy): the first minute after the warm-up, the last.
    let loaded = &peaks.rss[warm_samples..];
    let same_load_first = mean_rss(&loaded[..WINDOW.min(loaded.len())]);
    let same_load_last = mean_rss(&loaded[loaded.len().saturating_sub(WINDOW)..]);
    let bridge_metrics = scrape(bridge.1).await?;
    let focus_metrics = scrape(stack.focus_http).await?;
    let left = |metrics: &std::collections::HashMap<String, f64>, name: &str| {
        metrics.get(name).copied().unwrap_or(0.0)
    };
    for error in tally.first_errors.lock().iter().flat_map(|e| e.iter()) {
        eprintln!("error: {error}");
    }
    let signalling = tally.signalling_sessions.load(Ordering::Relaxed);
    let media = tally.media_sessions.load(Ordering::Relaxed);
    let line = json!({
        "bench": "soak",
        "date": args.date,
        "commit": args.commit,
        "minutes": round(ran.as_secs_f64() / 60.0),
        "sessions": signalling + media,
        "signalling_sessions": signalling,
        "media_sessions": media,
        "media_sessions_receiving": tally.media_received.load(Ordering::Relaxed),
        "session_errors": tally.errors.load(Ordering::Relaxed),
        "rss_start_kib": rss_start,
        "rss_warm_kib": rss_warm,
        "rss_end_kib": rss_end,
        "rss_max_kib": peaks.bridge_rss_kib,
        "rss_same_load_kib": [same_load_first.0.round(), same_load_last.0.round()],
        "rss_same_load_ratio": round(same_load_last.0 / same_load_first.0),
        "rss_idle_ratio": round(rss_end as f64 / rss_warm as f64),
        "focus_rss_start_kib": focus_rss_start,
        "focus_rss_warm_kib": focus_rss_warm,
        "focus_rss_end_kib": focus_rss_end,
        "focus_rss_max_kib": peaks.focus_rss_kib,
        "focus_rss_same_load_ratio": round(same_load_last.1 / same_load_first.1),
        "focus_rss_idle_ratio": round(focus_rss_end as f64 / focus_rss_warm as f64),
        "idle_endpoint_bytes": idle_gauge,
        "idle_endpoint_rss_bytes": idle_rss.round(),
        "active_endpoint_bytes": peaks.connected_endpoint_bytes,
        "peak_endpoints": peaks.endpoints,
        "leaked_endpoints": left(&bridge_metrics, "tutti_bridge_endpoints"),
        "leaked_conferences": left(&bridge_metrics, "tutti_bridge_conferences"),
        "leaked_focus_rooms": left(&focus_metrics, "tutti_focus_rooms"),
        "leaked_focus_participants": left(&focus_metrics, "tutti_focus_participants"),
        "bridge_cpu_s": round(cpu_after[1] - cpu_before[1]),
        "focus_cpu_s": round(cpu_after[0] - cpu_before[0]),
        "prosody_cpu_s": round(cpu_after[2] - cpu_before[2]),
    });
    println!("{line}");
    Ok(())
}
