//! `bench-focus-load`: the focus benchmark (run it through `bench/focus`, which builds it and
//! isolates it in a network namespace). It starts a real Prosody (the focus's account on
//! `localhost`, anonymous participants on `guest.localhost`), the release bridge and the release
//! focus, then has simulated lib-jitsi-meet participants (XMPP signalling only, no media) join
//! `--rooms` rooms × `--per-room` participants at `--rate` joins per second: conference request,
//! MUC join, session-initiate acknowledged, session-accept with a transport and sources. It
//! prints one JSON line: join → session-initiate latency, errors, CPU of each server.

#[path = "../signalling.rs"]
mod signalling;
#[path = "../stack.rs"]
mod stack;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::json;
use tokio::sync::{watch, Semaphore};
use tutti_test_harness::prosody::Gc;

use signalling::{login, names_of, Outcome, Participant};
use stack::{scrape, start_stack, StackOptions, MUC};

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
    let stack = start_stack(&StackOptions {
        bridge: &args.bridge,
        focus: &args.focus,
        name: "focus",
        prosody_gc: args.prosody_gc,
        grpc_tls: args.grpc_tls,
        bridges: args.bridges,
        bridge_env: &[],
    })?;
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
    for (_, http, _) in &stack.bridges {
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
