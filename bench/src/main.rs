//! `bench-driver`: the bridge benchmark's load generator and orchestrator (run it through
//! `bench/bridge`, which builds, pins and isolates it). For every scenario and SRTP profile it
//! alternates runs against the real bridge and against the baseline relay (A B A B), each
//! server started fresh on CPU 0, and prints one JSON line of medians per scenario and profile.
//! With `--bridge-before`, an earlier build of the bridge runs in the same rounds (A B C A B C),
//! so a change is measured against what it changes in one run on the same machine. With
//! `--peer janus`, Janus VideoRoom runs in every round too, at each `--peer-threading`. The
//! `cascade` scenario alternates the same conference on one bridge and split over two bridges
//! linked by a relay (both on CPU 0), instead of the bridge and the relay baseline.
//! Each run's own figures go to stderr as JSON lines.

mod janus;
mod load;
mod setup;
mod sys;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::{json, Value};

use crate::janus::Threading;
use crate::load::{Boundary, LoadConfig, LoadResult};
use crate::setup::{Profile, Role};

/// Pause between calibration scrapes of /metrics (the HTTP stack's Date header is per second).
const SCRAPE_GAP: Duration = Duration::from_millis(1100);

const USAGE: &str = "usage: bench-driver --bridge PATH --relay PATH [options]
  --scenarios LIST        fanout,meeting,cascade (default fanout,meeting)
  --profiles LIST         gcm,aes-cm (default both)
  --fanout-subscribers N  subscribers of the one fan-out publisher (default 400)
  --meeting-publishers N  publishers in the meeting, all subscribing to all (default 8); also
                          the cascade's publishers
  --cascade-subscribers N subscribers in the cascade besides its publishers (default 24): the
                          conference on one bridge, then split over two linked by a relay
  --warmup S              seconds before the window (default 5)
  --window S              steady window in seconds (default 10)
  --repeats N             A B pairs per scenario and profile; medians are reported (default 2)
  --sample-every N        fan-out: verify every packet of one subscriber in N, count the rest
                          (default 16); the meeting verifies every endpoint
  --pacing-factor F       video paced at F x its bitrate like libwebrtc (default 2.5; 0 = bursts)
  --layers N              video layers per publisher: 3 (simulcast 180/360/720p at 150k/500k/
                          1.5M, receivers get the first; default) or 1 (one 360p stream, 2M)
  --feedback-ms MS        each receiver's transport-cc feedback interval (default 50; 0 = none)
  --quick                 smoke run: 20 subscribers, 4 publishers (cascade: 4 + 8), 2 s + 3 s,
                          1 repeat
  --peer janus            run Janus VideoRoom (Debian's janus) in every round too, compared
  --peer-threading LIST   its threading: loops1 (event_loops = 1), default (default both;
                          the first is the one cpu_ratio_vs_peer uses)
  --bridge-before PATH    an earlier bridge build, run in every round too and compared
  --before-commit C       the commit it was built from (recorded)
  --commit C --date D     recorded in every line";

#[derive(Clone, Debug)]
struct Args {
    bridge: PathBuf,
    bridge_before: Option<PathBuf>,
    before_commit: String,
    relay: PathBuf,
    peer: Option<String>,
    peer_threading: Vec<Threading>,
    scenarios: Vec<String>,
    profiles: Vec<Profile>,
    fanout_subscribers: usize,
    meeting_publishers: usize,
    cascade_subscribers: usize,
    warmup: f64,
    window: f64,
    repeats: usize,
    sample_every: usize,
    pacing_factor: f64,
    layers: usize,
    feedback_ms: u64,
    commit: String,
    date: String,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        bridge: PathBuf::new(),
        bridge_before: None,
        before_commit: String::new(),
        relay: PathBuf::new(),
        peer: None,
        peer_threading: vec![Threading::OneLoop, Threading::Default],
        scenarios: vec!["fanout".into(), "meeting".into()],
        profiles: vec![Profile::Gcm, Profile::AesCm],
        fanout_subscribers: 400,
        meeting_publishers: 8,
        cascade_subscribers: 24,
        warmup: 5.0,
        window: 10.0,
        repeats: 2,
        sample_every: 16,
        pacing_factor: 2.5,
        layers: 3,
        feedback_ms: 50,
        commit: String::new(),
        date: String::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--quick" {
            args.fanout_subscribers = 20;
            args.meeting_publishers = 4;
            args.cascade_subscribers = 8;
            args.warmup = 2.0;
            args.window = 3.0;
            args.repeats = 1;
            continue;
        }
        if flag == "--help" || flag == "-h" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        let value = it
            .next()
            .with_context(|| format!("{flag} needs a value\n{USAGE}"))?;
        match flag.as_str() {
            "--bridge" => args.bridge = value.into(),
            "--bridge-before" => args.bridge_before = Some(value.into()),
            "--before-commit" => args.before_commit = value,
            "--relay" => args.relay = value.into(),
            "--peer" => {
                if value != "janus" {
                    bail!("unknown peer {value:?} (janus)");
                }
                args.peer = Some(value);
            }
            "--peer-threading" => {
                args.peer_threading = value
                    .split(',')
                    .map(Threading::parse)
                    .collect::<Result<_, _>>()?;
                if args.peer_threading.is_empty() {
                    bail!("--peer-threading needs at least one setting");
                }
            }
            "--scenarios" => {
                args.scenarios = value.split(',').map(str::to_owned).collect();
                if let Some(s) = args
                    .scenarios
                    .iter()
                    .find(|s| !["fanout", "meeting", "cascade"].contains(&s.as_str()))
                {
                    bail!("unknown scenario {s:?} (fanout, meeting, cascade)");
                }
            }
            "--profiles" => {
                args.profiles = value
                    .split(',')
                    .map(Profile::parse)
                    .collect::<Result<_, _>>()?
            }
            "--fanout-subscribers" => args.fanout_subscribers = value.parse()?,
            "--meeting-publishers" => args.meeting_publishers = value.parse()?,
            "--cascade-subscribers" => args.cascade_subscribers = value.parse()?,
            "--warmup" => args.warmup = value.parse()?,
            "--window" => args.window = value.parse()?,
            "--repeats" => args.repeats = value.parse()?,
            "--sample-every" => args.sample_every = value.parse()?,
            "--pacing-factor" => args.pacing_factor = value.parse()?,
            "--layers" => args.layers = value.parse()?,
            "--feedback-ms" => args.feedback_ms = value.parse()?,
            "--commit" => args.commit = value,
            "--date" => args.date = value,
            _ => bail!("unknown option {flag}\n{USAGE}"),
        }
    }
    if args.bridge.as_os_str().is_empty() || args.relay.as_os_str().is_empty() {
        bail!("--bridge and --relay are required\n{USAGE}");
    }
    if args.repeats == 0 || args.sample_every == 0 || args.window <= 0.0 {
        bail!("--repeats, --sample-every and --window must be positive");
    }
    // Split over two bridges, each has publishers (every other endpoint is on the second).
    if args.scenarios.iter().any(|s| s == "cascade") && args.meeting_publishers < 2 {
        bail!("the cascade needs at least two publishers, one on each bridge");
    }
    if args.layers != 1 && args.layers != 3 {
        bail!("--layers is 1 or 3");
    }
    // Sequence numbers of one stream in the window must stay within half the 16-bit space.
    if args.window > 60.0 {
        bail!("--window is at most 60 s");
    }
    Ok(args)
}

fn roles(args: &Args, scenario: &str) -> Vec<Role> {
    match scenario {
        "fanout" => std::iter::once(Role { publishes: true })
            .chain(std::iter::repeat_n(
                Role { publishes: false },
                args.fanout_subscribers,
            ))
            .collect(),
        "cascade" => std::iter::repeat_n(Role { publishes: true }, args.meeting_publishers)
            .chain(std::iter::repeat_n(
                Role { publishes: false },
                args.cascade_subscribers,
            ))
            .collect(),
        _ => vec![Role { publishes: true }; args.meeting_publishers],
    }
}

/// What one run (bridge or baseline) measured over its window.
#[derive(Debug, Default)]
struct Run {
    load: LoadResult,
    server_cpu_s: f64,
    server_window_s: f64,
    cpu0_util: f64,
    udp_buffer_errors: u64,
    server_rss_kb: f64,
    /// Bridge only: allocations between the window's two scrapes (raw), what one scrape
    /// itself allocates, and the difference: the allocations of the window's traffic.
    allocs_in_window: f64,
    allocs_raw: f64,
    scrape_allocs: f64,
    bridge_sent: f64,
    /// Bridge only: transport-cc feedback packets it received in the window, and the packets
    /// they reported lost.
    bridge_feedback_received: f64,
    bridge_reported_lost: f64,
    /// Peer only: the media packets it reports having sent to the subscribers over the run.
    peer_reported_sent: Option<u64>,
    /// Bridge runs: how many bridges the conference was on, and (split over two) the RTP
    /// packets and bytes the bridges sent on their relays in the window, both ways.
    bridges: usize,
    relay_packets: f64,
    relay_bytes: f64,
    /// The machine's load average over one minute at the window's end (/proc/loadavg).
    loadavg: f64,
}

impl Run {
    fn forwarded_pps(&self) -> f64 {
        self.load.received as f64 / self.load.window_secs
    }
    fn cpu_util(&self) -> f64 {
        self.server_cpu_s / self.server_window_s
    }
    fn cpu_s_per_mpkt(&self) -> f64 {
        self.cpu_util() / self.forwarded_pps() * 1e6
    }
    /// How far the peer's own count of packets sent is from what the generator received over
    /// the run, in percent of the latter (NaN when there is no such count).
    fn peer_count_diff_pct(&self) -> f64 {
        match self.peer_reported_sent {
            Some(sent) => {
                let received = self.load.received_total as f64;
                100.0 * (sent as f64 - received).abs() / received.max(1.0)
            }
            None => f64::NAN,
        }
    }
    /// Bytes on the relays over what the receivers behind them got of the sources that crossed.
    fn relay_bytes_ratio(&self) -> f64 {
        self.relay_bytes / self.load.relayed_bytes as f64
    }
    fn loss_pct(&self) -> f64 {
        if self.load.expected == 0 {
            return 100.0;
        }
        100.0 * (1.0 - self.load.received as f64 / self.load.expected as f64)
    }
    fn json(&self, kind: &str, scenario: &str, profile: Profile) -> Value {
        let l = &self.load;
        let mut line = json!({
            "run": kind,
            "scenario": scenario,
            "srtp_profile": profile.name(),
            "forwarded_pps": self.forwarded_pps().round(),
            "cpu_util": round3(self.cpu_util()),
            "cpu_s_per_mpkt": round3(self.cpu_s_per_mpkt()),
            "cpu0_util": round3(self.cpu0_util),
            "loss_pct": round3(self.loss_pct()),
            "expected": l.expected,
            "received": l.received,
            "received_total": l.received_total,
            "peer_reported_sent": self.peer_reported_sent,
            "peer_count_diff_pct": round3(self.peer_count_diff_pct()),
            "latency_p50_us": load::percentile(&l.latencies_us, 0.5),
            "latency_p99_us": load::percentile(&l.latencies_us, 0.99),
            "latency_p999_us": load::percentile(&l.latencies_us, 0.999),
            "verified": l.latencies_us.len() + l.relayed_latencies_us.len(),
            "bridges": self.bridges,
            "loadavg_1m": self.loadavg,
            "payload_errors": l.payload_errors,
            "srtp_errors": l.srtp_errors,
            "allocs_in_window": self.allocs_in_window,
            "allocs_raw": self.allocs_raw,
            "scrape_allocs": self.scrape_allocs,
            "bridge_sent_pps": (self.bridge_sent / self.server_window_s).round(),
            "feedback_sent_pps": (l.feedback_sent as f64 / l.window_secs).round(),
            "bridge_feedback_received_pps":
                (self.bridge_feedback_received / self.server_window_s).round(),
            "bridge_twcc_reported_lost": self.bridge_reported_lost,
            "keyframe_requests": l.keyframe_requests,
            "udp_buffer_errors": self.udp_buffer_errors,
            "rss_kb": self.server_rss_kb,
            "rtcp_received": l.rtcp_received,
            "stun_answered": l.stun_answered,
            "unexpected": l.unexpected,
            "late_sends": l.late_sends,
            "generator_cpu_util": round3(l.generator_cpu_util),
        });
        if self.bridges > 1 {
            let relay = json!({
                "relayed_latency_p50_us": load::percentile(&l.relayed_latencies_us, 0.5),
                "relayed_latency_p99_us": load::percentile(&l.relayed_latencies_us, 0.99),
                "relayed_pps": (l.relayed_received as f64 / l.window_secs).round(),
                "relay_pps": (self.relay_packets / self.server_window_s).round(),
                "relay_bytes_per_s": (self.relay_bytes / self.server_window_s).round(),
                "relayed_received_bytes_per_s": (l.relayed_bytes as f64 / l.window_secs).round(),
                "relay_bytes_ratio": round3(self.relay_bytes_ratio()),
            });
            if let (Some(line), Value::Object(relay)) = (line.as_object_mut(), relay) {
                line.extend(relay);
            }
        }
        line
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn rss_kb(pid: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(f64::NAN)
}

/// CPU and error counters at the window's start, and what the end makes of them.
struct Meter {
    /// The server's processes (two bridges for a split conference), their CPU summed.
    pids: Vec<String>,
    cpu: f64,
    cpu0: (u64, u64),
    errors: u64,
    at: Instant,
}

impl Meter {
    fn start(pids: &[String]) -> anyhow::Result<Meter> {
        Ok(Meter {
            pids: pids.to_vec(),
            cpu: cpu_seconds(pids)?,
            cpu0: sys::cpu_jiffies(0)?,
            errors: sys::udp_buffer_errors()?,
            at: Instant::now(),
        })
    }

    fn finish(&self, run: &mut Run) -> anyhow::Result<()> {
        run.server_window_s = self.at.elapsed().as_secs_f64();
        run.server_cpu_s = cpu_seconds(&self.pids)? - self.cpu;
        let (busy, total) = sys::cpu_jiffies(0)?;
        run.cpu0_util = (busy - self.cpu0.0) as f64 / (total - self.cpu0.1).max(1) as f64;
        run.udp_buffer_errors = sys::udp_buffer_errors()? - self.errors;
        run.server_rss_kb = self.pids.iter().map(|p| rss_kb(p)).sum();
        run.loadavg = sys::load_average()?;
        Ok(())
    }
}

fn cpu_seconds(pids: &[String]) -> anyhow::Result<f64> {
    pids.iter().map(|p| sys::process_cpu_seconds(p)).sum()
}

fn load_config(args: &Args, roles: &[Role], profile: Profile) -> LoadConfig {
    let publishers = roles.iter().filter(|r| r.publishes).count();
    LoadConfig {
        warmup: Duration::from_secs_f64(args.warmup),
        window: Duration::from_secs_f64(args.window),
        drain: Duration::from_millis(300),
        sample_every: if publishers > 1 { 1 } else { args.sample_every },
        tag_len: profile.tag_len(),
        pacing_factor: args.pacing_factor,
        feedback_interval: (args.feedback_ms > 0).then(|| Duration::from_millis(args.feedback_ms)),
    }
}

/// A run against `bridges` fresh bridges of `binary` (one, or two with the conference split
/// over them and linked by a relay), all on CPU 0; their CPU, allocations and counters summed.
fn run_bridge(
    args: &Args,
    binary: &std::path::Path,
    rt: &tokio::runtime::Runtime,
    roles: &[Role],
    profile: Profile,
    bridges: usize,
) -> anyhow::Result<Run> {
    let mut servers = Vec::new();
    let mut http = Vec::new();
    let mut grpc = Vec::new();
    for _ in 0..bridges {
        let (server, addresses) = setup::start_bridge(binary, profile)?;
        servers.push(server);
        http.push(addresses.http);
        grpc.push(addresses.grpc);
    }
    let setup_started = Instant::now();
    let endpoints = rt.block_on(setup::bridge_endpoints(&grpc, roles, profile, args.layers))?;
    eprintln!(
        "bench: {} endpoints connected to {bridges} bridge(s) in {:.1} s",
        endpoints.len(),
        setup_started.elapsed().as_secs_f64()
    );
    let pids: Vec<String> = servers.iter().map(|s| s.pid().to_string()).collect();
    let mut run = Run {
        bridges,
        ..Run::default()
    };
    // What one scrape of /metrics allocates in a bridge (after the counter is read, and
    // before it is read in the next scrape), measured on the idle bridges: scrapes at least a
    // second apart, like the window's, where the HTTP stack renders a fresh Date header.
    let mut calibration = vec![Vec::new(); bridges];
    for _ in 0..3 {
        std::thread::sleep(SCRAPE_GAP);
        for (address, values) in http.iter().zip(&mut calibration) {
            values.push(sys::allocations(&sys::scrape(*address)?)?);
        }
    }
    run.scrape_allocs = calibration.iter().map(|c| c[2] - c[1]).sum();
    let scrape_all =
        || -> anyhow::Result<Vec<_>> { http.iter().map(|a| sys::scrape(*a)).collect() };
    let mut meter = None;
    let mut scrapes = Vec::new();
    run.load = load::run(endpoints, &load_config(args, roles, profile), |boundary| {
        match boundary {
            Boundary::Start => {
                let at_start = scrape_all()?;
                if bridges > 1 {
                    for (bridge, metrics) in at_start.iter().enumerate() {
                        let arrived =
                            sys::metric(metrics, "tutti_bridge_relay_packets_received_total")?;
                        if arrived == 0.0 {
                            bail!("bridge {bridge} received nothing on its relay in the warm-up");
                        }
                    }
                }
                scrapes.push(at_start);
                meter = Some(Meter::start(&pids)?);
            }
            Boundary::End => {
                meter
                    .as_ref()
                    .context("window ended before it started")?
                    .finish(&mut run)?;
                scrapes.push(scrape_all()?);
            }
        }
        Ok(())
    })?;
    let [s1, s2] = &scrapes[..] else {
        bail!("expected two scrapes of /metrics");
    };
    let delta = |name: &str| -> anyhow::Result<f64> {
        s1.iter()
            .zip(s2)
            .map(|(a, b)| Ok(sys::metric(b, name)? - sys::metric(a, name)?))
            .sum()
    };
    for (a, b) in s1.iter().zip(s2) {
        run.allocs_raw += sys::allocations(b)? - sys::allocations(a)?;
        run.bridge_sent += sys::media_packets_sent(b) - sys::media_packets_sent(a);
    }
    run.allocs_in_window = run.allocs_raw - run.scrape_allocs;
    run.bridge_feedback_received = delta("tutti_bridge_transport_cc_feedback_received_total")?;
    run.bridge_reported_lost = delta("tutti_bridge_transport_cc_reported_lost_total")?;
    if bridges > 1 {
        run.relay_packets = delta("tutti_bridge_relay_packets_sent_total")?;
        // (Bridges from before 2026-12-06 16:00 UTC do not count the bytes.)
        run.relay_bytes = delta("tutti_bridge_relay_bytes_sent_total").unwrap_or(f64::NAN);
    }
    drop(servers);
    Ok(run)
}

fn run_baseline(args: &Args, roles: &[Role], profile: Profile) -> anyhow::Result<Run> {
    let (server, endpoints) = setup::relay_endpoints(&args.relay, roles, profile, args.layers)?;
    let pid = server.pid().to_string();
    let mut run = Run::default();
    let mut meter = None;
    run.load = load::run(endpoints, &load_config(args, roles, profile), |boundary| {
        match boundary {
            Boundary::Start => meter = Some(Meter::start(std::slice::from_ref(&pid))?),
            Boundary::End => meter
                .as_ref()
                .context("window ended before it started")?
                .finish(&mut run)?,
        }
        Ok(())
    })?;
    drop(server);
    Ok(run)
}

fn run_janus(
    args: &Args,
    rt: &tokio::runtime::Runtime,
    roles: &[Role],
    profile: Profile,
    threading: Threading,
) -> anyhow::Result<(Run, String)> {
    let janus = janus::Janus::start(threading, rt)?;
    let setup_started = Instant::now();
    let (endpoints, legs) = rt
        .block_on(janus::janus_endpoints(&janus, roles, profile, args.layers))
        .with_context(|| janus.log_tail())?;
    eprintln!(
        "bench: {} endpoints connected to Janus ({}) in {:.1} s",
        endpoints.len(),
        threading.name(),
        setup_started.elapsed().as_secs_f64()
    );
    let pid = janus.pid().to_string();
    let mut run = Run::default();
    let mut meter = None;
    run.load = load::run(endpoints, &load_config(args, roles, profile), |boundary| {
        match boundary {
            Boundary::Start => meter = Some(Meter::start(std::slice::from_ref(&pid))?),
            Boundary::End => meter
                .as_ref()
                .context("window ended before it started")?
                .finish(&mut run)?,
        }
        Ok(())
    })?;
    let sent = rt
        .block_on(janus.forwarded_packets(&legs, profile))
        .with_context(|| janus.log_tail())?;
    run.peer_reported_sent = Some(sent);
    if run.peer_count_diff_pct() > 1.0 {
        eprintln!(
            "bench: Janus reports {sent} media packets sent, the generator received {}: more \
             than 1 % apart",
            run.load.received_total
        );
    }
    Ok((run, format!("janus {}", janus.version)))
}

fn median(mut values: Vec<f64>) -> f64 {
    values.retain(|v| !v.is_nan());
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// Every run of one scenario and SRTP profile, by server.
#[derive(Default)]
struct Rounds {
    bridge: Vec<Run>,
    baseline: Vec<Run>,
    before: Vec<Run>,
    /// Per peer setting: its threading, the peer's name and version, its runs.
    peers: Vec<(Threading, String, Vec<Run>)>,
}

fn summary(
    args: &Args,
    scenario: &str,
    profile: Profile,
    endpoints: usize,
    rounds: &Rounds,
) -> Value {
    let Rounds {
        bridge,
        baseline,
        before,
        peers,
    } = rounds;
    let m = |runs: &[Run], f: &dyn Fn(&Run) -> f64| median(runs.iter().map(f).collect());
    let cpu = m(bridge, &|r| r.cpu_s_per_mpkt());
    let base_cpu = m(baseline, &|r| r.cpu_s_per_mpkt());
    let forwarded = m(bridge, &|r| r.forwarded_pps());
    let received: u64 = bridge.iter().map(|r| r.load.received).sum();
    let allocs = m(bridge, &|r| r.allocs_in_window);
    let before_cpu = m(before, &|r| r.cpu_s_per_mpkt());
    let mut line = json!({
        "scenario": scenario,
        "srtp_profile": profile.name(),
        "endpoints": endpoints,
        "publishers": if scenario == "fanout" { 1 } else { endpoints },
        "window_s": args.window,
        "pacing_factor": args.pacing_factor,
        "layers": args.layers,
        "feedback_ms": args.feedback_ms,
        "repeats": bridge.len(),
        "forwarded_pps": forwarded.round(),
        "bridge_cpu_util": round3(m(bridge, &|r| r.cpu_util())),
        "bridge_cpu_s_per_mpkt": round3(cpu),
        "bridge_pkts_per_cpu_s": (1e6 / cpu).round(),
        "cpu0_util": round3(m(bridge, &|r| r.cpu0_util)),
        "loss_pct": round3(m(bridge, &|r| r.loss_pct())),
        "latency_p50_us": m(bridge, &|r| load::percentile(&r.load.latencies_us, 0.5)),
        "latency_p99_us": m(bridge, &|r| load::percentile(&r.load.latencies_us, 0.99)),
        "latency_p999_us": m(bridge, &|r| load::percentile(&r.load.latencies_us, 0.999)),
        "allocs_in_window": allocs,
        "allocs_per_packet": allocs / (received as f64 / bridge.len() as f64).max(1.0),
        "payload_errors": bridge.iter().map(|r| r.load.payload_errors).sum::<u64>(),
        "srtp_errors": bridge.iter().map(|r| r.load.srtp_errors).sum::<u64>(),
        "udp_buffer_errors": bridge.iter().map(|r| r.udp_buffer_errors).sum::<u64>(),
        "unexpected": bridge.iter().map(|r| r.load.unexpected).sum::<u64>(),
        "feedback_sent_pps": m(bridge, &|r| r.load.feedback_sent as f64 / r.load.window_secs).round(),
        "bridge_feedback_received_pps":
            m(bridge, &|r| r.bridge_feedback_received / r.server_window_s).round(),
        "bridge_twcc_reported_lost": bridge.iter().map(|r| r.bridge_reported_lost).sum::<f64>(),
        "keyframe_requests": bridge.iter().map(|r| r.load.keyframe_requests).sum::<u64>(),
        "bridge_rss_kb": m(bridge, &|r| r.server_rss_kb),
        "baseline_forwarded_pps": m(baseline, &|r| r.forwarded_pps()).round(),
        "baseline_cpu_util": round3(m(baseline, &|r| r.cpu_util())),
        "baseline_cpu_s_per_mpkt": round3(base_cpu),
        "baseline_loss_pct": round3(m(baseline, &|r| r.loss_pct())),
        "baseline_latency_p50_us": m(baseline, &|r| load::percentile(&r.load.latencies_us, 0.5)),
        "baseline_latency_p99_us": m(baseline, &|r| load::percentile(&r.load.latencies_us, 0.99)),
        "cpu_ratio_vs_baseline": round3(cpu / base_cpu),
        "generator_cpu_util_max": round3(
            bridge
                .iter()
                .chain(baseline)
                .chain(before)
                .chain(peers.iter().flat_map(|p| &p.2))
                .map(|r| r.load.generator_cpu_util)
                .fold(0.0, f64::max)
        ),
        "generator_late_sends": bridge
            .iter()
            .chain(baseline)
            .chain(before)
            .chain(peers.iter().flat_map(|p| &p.2))
            .map(|r| r.load.late_sends)
            .sum::<u64>(),
        "commit": args.commit,
        "date": args.date,
    });
    // The first peer setting gives the `peer_*` fields and `cpu_ratio_vs_peer`; every further
    // one its own, prefixed `peer_<threading>_`.
    for (i, (threading, name, runs)) in peers.iter().enumerate() {
        let (prefix, ratio) = if i == 0 {
            ("peer".to_owned(), "cpu_ratio_vs_peer".to_owned())
        } else {
            let tag = threading.name().replace(['=', ' '], "_");
            (format!("peer_{tag}"), format!("cpu_ratio_vs_peer_{tag}"))
        };
        let peer_cpu = m(runs, &|r| r.cpu_s_per_mpkt());
        let fields = json!({
            prefix.clone(): name,
            format!("{prefix}_threading"): threading.name(),
            format!("{prefix}_cpu_s_per_mpkt"): round3(peer_cpu),
            format!("{prefix}_cpu_util"): round3(m(runs, &|r| r.cpu_util())),
            format!("{prefix}_forwarded_pps"): m(runs, &|r| r.forwarded_pps()).round(),
            format!("{prefix}_loss_pct"): round3(m(runs, &|r| r.loss_pct())),
            format!("{prefix}_latency_p50_us"): m(runs, &|r| load::percentile(&r.load.latencies_us, 0.5)),
            format!("{prefix}_latency_p99_us"): m(runs, &|r| load::percentile(&r.load.latencies_us, 0.99)),
            format!("{prefix}_rss_kb"): m(runs, &|r| r.server_rss_kb),
            format!("{prefix}_payload_errors"): runs.iter().map(|r| r.load.payload_errors).sum::<u64>(),
            format!("{prefix}_srtp_errors"): runs.iter().map(|r| r.load.srtp_errors).sum::<u64>(),
            format!("{prefix}_unexpected"): runs.iter().map(|r| r.load.unexpected).sum::<u64>(),
            format!("{prefix}_udp_buffer_errors"): runs.iter().map(|r| r.udp_buffer_errors).sum::<u64>(),
            format!("{prefix}_count_diff_pct_max"): round3(
                runs.iter().map(|r| r.peer_count_diff_pct()).fold(0.0, f64::max)
            ),
            ratio: round3(cpu / peer_cpu),
        });
        if let (Some(line), Value::Object(fields)) = (line.as_object_mut(), fields) {
            line.extend(fields);
        }
    }
    if !before.is_empty() {
        let before_received: u64 = before.iter().map(|r| r.load.received).sum();
        let before_allocs = m(before, &|r| r.allocs_in_window);
        let fields = json!({
            "before_commit": args.before_commit,
            "before_cpu_s_per_mpkt": round3(before_cpu),
            "before_cpu_ratio_vs_baseline": round3(before_cpu / base_cpu),
            "cpu_ratio_vs_before": round3(cpu / before_cpu),
            "before_loss_pct": round3(m(before, &|r| r.loss_pct())),
            "before_latency_p99_us": m(before, &|r| load::percentile(&r.load.latencies_us, 0.99)),
            "before_allocs_per_packet":
                before_allocs / (before_received as f64 / before.len() as f64).max(1.0),
        });
        if let (Some(line), Value::Object(fields)) = (line.as_object_mut(), fields) {
            line.extend(fields);
        }
    }
    line
}

/// The cascade: per round the conference on one bridge, then split over two linked by a
/// relay (and the same with the earlier build, with `--bridge-before`); one JSON line of
/// medians and their ratios.
fn cascade(
    args: &Args,
    rt: &tokio::runtime::Runtime,
    roles: &[Role],
    profile: Profile,
) -> anyhow::Result<Value> {
    let scenario = "cascade";
    // Per build (this one, then the earlier one): its runs on one bridge, and split over two.
    let mut builds = vec![(&args.bridge, "bridge", Vec::new(), Vec::new())];
    if let Some(before) = &args.bridge_before {
        builds.push((before, "bridge_before", Vec::new(), Vec::new()));
    }
    for _ in 0..args.repeats {
        for (binary, kind, single, split) in &mut builds {
            for (bridges, runs) in [(1, &mut *single), (2, &mut *split)] {
                let run =
                    run_bridge(args, binary, rt, roles, profile, bridges).with_context(|| {
                        format!("{scenario}/{}: {kind} run on {bridges}", profile.name())
                    })?;
                eprintln!("{}", run.json(kind, scenario, profile));
                runs.push(run);
            }
        }
    }
    let m = |runs: &[Run], f: &dyn Fn(&Run) -> f64| median(runs.iter().map(f).collect());
    let p = |runs: &[Run], q: f64| m(runs, &|r| load::percentile(&r.load.latencies_us, q));
    let relayed =
        |runs: &[Run], q: f64| m(runs, &|r| load::percentile(&r.load.relayed_latencies_us, q));
    let cpu = |runs: &[Run]| m(runs, &|r| r.cpu_s_per_mpkt());
    let allocs_per_packet = |runs: &[Run]| {
        let received: u64 = runs.iter().map(|r| r.load.received).sum();
        m(runs, &|r| r.allocs_in_window) / (received as f64 / runs.len() as f64).max(1.0)
    };
    let (_, _, single, split) = &builds[0];
    let all = || builds.iter().flat_map(|b| b.2.iter().chain(&b.3));
    let publishers = roles.iter().filter(|r| r.publishes).count();
    let mut line = json!({
        "scenario": scenario,
        "srtp_profile": profile.name(),
        "endpoints": roles.len(),
        "publishers": publishers,
        "bridges": 2,
        "window_s": args.window,
        "pacing_factor": args.pacing_factor,
        "layers": args.layers,
        "feedback_ms": args.feedback_ms,
        "repeats": args.repeats,
        "forwarded_pps": m(single, &|r| r.forwarded_pps()).round(),
        "split_forwarded_pps": m(split, &|r| r.forwarded_pps()).round(),
        "single_cpu_s_per_mpkt": round3(cpu(single)),
        "split_cpu_s_per_mpkt": round3(cpu(split)),
        "cpu_ratio_split_vs_single": round3(cpu(split) / cpu(single)),
        "single_cpu_util": round3(m(single, &|r| r.cpu_util())),
        "split_cpu_util": round3(m(split, &|r| r.cpu_util())),
        "single_cpu0_util": round3(m(single, &|r| r.cpu0_util)),
        "split_cpu0_util": round3(m(split, &|r| r.cpu0_util)),
    });
    let measured = json!({
        "single_loss_pct": round3(m(single, &|r| r.loss_pct())),
        "split_loss_pct": round3(m(split, &|r| r.loss_pct())),
        "single_latency_p50_us": p(single, 0.5),
        "single_latency_p99_us": p(single, 0.99),
        "split_local_latency_p50_us": p(split, 0.5),
        "split_local_latency_p99_us": p(split, 0.99),
        "split_relayed_latency_p50_us": relayed(split, 0.5),
        "split_relayed_latency_p99_us": relayed(split, 0.99),
        "added_latency_p50_us": relayed(split, 0.5) - p(single, 0.5),
        "added_latency_p99_us": relayed(split, 0.99) - p(single, 0.99),
        "relayed_pps": m(split, &|r| r.load.relayed_received as f64 / r.load.window_secs).round(),
        "relay_pps": m(split, &|r| r.relay_packets / r.server_window_s).round(),
        "relay_bytes_per_s": m(split, &|r| r.relay_bytes / r.server_window_s).round(),
        "relayed_received_bytes_per_s":
            m(split, &|r| r.load.relayed_bytes as f64 / r.load.window_secs).round(),
        "relay_bytes_ratio": round3(m(split, &|r| r.relay_bytes_ratio())),
        "single_allocs_per_packet": allocs_per_packet(single),
        "split_allocs_per_packet": allocs_per_packet(split),
    });
    if let (Some(line), Value::Object(measured)) = (line.as_object_mut(), measured) {
        line.extend(measured);
    }
    let checks = json!({
        "payload_errors": all().map(|r| r.load.payload_errors).sum::<u64>(),
        "srtp_errors": all().map(|r| r.load.srtp_errors).sum::<u64>(),
        "udp_buffer_errors": all().map(|r| r.udp_buffer_errors).sum::<u64>(),
        "unexpected": all().map(|r| r.load.unexpected).sum::<u64>(),
        "keyframe_requests": all().map(|r| r.load.keyframe_requests).sum::<u64>(),
        "generator_cpu_util_max": round3(
            all().map(|r| r.load.generator_cpu_util).fold(0.0, f64::max)
        ),
        "generator_late_sends": all().map(|r| r.load.late_sends).sum::<u64>(),
        "loadavg_1m": round3(median(all().map(|r| r.loadavg).collect())),
        "commit": args.commit,
        "date": args.date,
    });
    if let (Some(line), Value::Object(checks)) = (line.as_object_mut(), checks) {
        line.extend(checks);
    }
    if let Some((_, _, before_single, before_split)) = builds.get(1) {
        let fields = json!({
            "before_commit": args.before_commit,
            "before_single_cpu_s_per_mpkt": round3(cpu(before_single)),
            "before_split_cpu_s_per_mpkt": round3(cpu(before_split)),
            "single_cpu_ratio_vs_before": round3(cpu(single) / cpu(before_single)),
            "split_cpu_ratio_vs_before": round3(cpu(split) / cpu(before_split)),
            "before_split_loss_pct": round3(m(before_split, &|r| r.loss_pct())),
            "before_split_relayed_latency_p99_us": relayed(before_split, 0.99),
            "before_split_allocs_per_packet": allocs_per_packet(before_split),
        });
        if let (Some(line), Value::Object(fields)) = (line.as_object_mut(), fields) {
            line.extend(fields);
        }
    }
    Ok(line)
}

fn raise_fd_limit() -> anyhow::Result<()> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: valid pointer to an rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error()).context("getrlimit");
    }
    limit.rlim_cur = limit.rlim_max;
    // SAFETY: as above.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
        return Err(std::io::Error::last_os_error()).context("setrlimit");
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    raise_fd_limit()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    for scenario in &args.scenarios {
        let roles = roles(&args, scenario);
        for &profile in &args.profiles {
            if scenario == "cascade" {
                println!("{}", cascade(&args, &rt, &roles, profile)?);
                continue;
            }
            let mut rounds = Rounds::default();
            for _ in 0..args.repeats {
                let run = run_bridge(&args, &args.bridge, &rt, &roles, profile, 1)
                    .with_context(|| format!("{scenario}/{}: bridge run", profile.name()))?;
                eprintln!("{}", run.json("bridge", scenario, profile));
                rounds.bridge.push(run);
                if let Some(binary) = &args.bridge_before {
                    let run =
                        run_bridge(&args, binary, &rt, &roles, profile, 1).with_context(|| {
                            format!("{scenario}/{}: earlier bridge run", profile.name())
                        })?;
                    eprintln!("{}", run.json("bridge_before", scenario, profile));
                    rounds.before.push(run);
                }
                let run = run_baseline(&args, &roles, profile)
                    .with_context(|| format!("{scenario}/{}: baseline run", profile.name()))?;
                eprintln!("{}", run.json("baseline", scenario, profile));
                rounds.baseline.push(run);
                if args.peer.is_none() {
                    continue;
                }
                for (i, &threading) in args.peer_threading.iter().enumerate() {
                    let (run, name) = run_janus(&args, &rt, &roles, profile, threading)
                        .with_context(|| {
                            format!(
                                "{scenario}/{}: Janus ({}) run",
                                profile.name(),
                                threading.name()
                            )
                        })?;
                    let kind = format!("janus {}", threading.name());
                    eprintln!("{}", run.json(&kind, scenario, profile));
                    match rounds.peers.get_mut(i) {
                        Some(p) => p.2.push(run),
                        None => rounds.peers.push((threading, name, vec![run])),
                    }
                }
            }
            println!(
                "{}",
                summary(&args, scenario, profile, roles.len(), &rounds)
            );
        }
    }
    Ok(())
}
