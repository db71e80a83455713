//! `bench/quality`: how well a receiver's bandwidth estimate and layer choice follow its link,
//! on the in-memory network (the bridge's core, str0m participants, a simulated bottleneck):
//! one JSON line per scenario. Alice sends three layers (94 kbit/s, 375 kbit/s, 1.5 Mbit/s);
//! Bob wants her at 720 lines; the link from the bridge to Bob is shaped.
//!
//! - `estimate_to_capacity`: the median of estimate ÷ capacity, sampled every 100 ms over the
//!   scenario's last 20 s (steady state);
//! - `switch_down_ms` / `switch_up_ms`: from a capacity step to Bob's newest packet being of a
//!   lower / the top layer;
//! - `freeze_pct`: the share of the measured time spent 500 ms or more after Bob's previous
//!   video packet (a frame needs its packets);
//! - `overshoot_pct`: bytes handed to the bottleneck beyond what its capacity carries in the
//!   scenario's time;
//! - `queue_delay_p95_ms`: the 95th percentile of the time packets waited in the bottleneck,
//!   in steady state.
//!
//! `--trace` prints, every 100 ms of simulated time, Bob's estimate (kbit/s), what limits it,
//! his allocator's desired rate, what he acknowledged, the layer of his newest packet, the
//! bottleneck's bytes sent and dropped so far and its longest wait in the last 100 ms, and the
//! bridge's retransmissions and probe bytes so far.

#[path = "../tests/sim/mod.rs"]
mod sim;

use std::time::{Duration, Instant};

use serde_json::json;
use sim::receiver_link::Scenario;

/// The warm-up on a free link before the shaping starts.
const WARM_UP: Duration = Duration::from_secs(3);
/// Steady state: the last this-long of a scenario.
const STEADY: Duration = Duration::from_secs(20);

struct Step {
    capacity_bps: Option<u64>,
    loss: f64,
    jitter: Duration,
    lasts: Duration,
}

struct Run {
    scenario: &'static str,
    steps: Vec<Step>,
}

fn step(capacity_bps: Option<u64>, lasts_s: u64) -> Step {
    Step {
        capacity_bps,
        loss: 0.0,
        jitter: Duration::ZERO,
        lasts: Duration::from_secs(lasts_s),
    }
}

fn runs() -> Vec<Run> {
    let lossy = |loss: f64| Step {
        loss,
        ..step(Some(3_000_000), 30)
    };
    vec![
        Run {
            scenario: "steady_300k",
            steps: vec![step(Some(300_000), 30)],
        },
        Run {
            scenario: "steady_1m",
            steps: vec![step(Some(1_000_000), 30)],
        },
        Run {
            scenario: "steady_3m",
            steps: vec![step(Some(3_000_000), 30)],
        },
        Run {
            scenario: "step_down_3m_500k",
            steps: vec![step(Some(3_000_000), 10), step(Some(500_000), 25)],
        },
        Run {
            scenario: "step_up_500k_3m",
            steps: vec![step(Some(500_000), 15), step(Some(3_000_000), 25)],
        },
        Run {
            scenario: "loss_2pct",
            steps: vec![lossy(0.02)],
        },
        Run {
            scenario: "loss_5pct",
            steps: vec![lossy(0.05)],
        },
        Run {
            scenario: "jitter_10ms",
            steps: vec![Step {
                jitter: Duration::from_millis(10),
                ..step(Some(3_000_000), 30)
            }],
        },
    ]
}

fn median(values: &mut [f64]) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied()
}

fn measure(run: &Run, seed: u64, trace: bool) -> serde_json::Value {
    let mut s = Scenario::new(seed);
    s.call.sim.run_for(WARM_UP);
    let start = s.call.sim.now();
    let (bridge, bob) = (s.call.bridge_ip(), s.bob_ip);
    let at_start = s.call.sim.net.stats(bridge, bob);
    let counters_at_start = s.call.counters();
    let mut samples: Vec<(Instant, u64, Option<u64>)> = Vec::new();
    let (mut switch_down_ms, mut switch_up_ms) = (None, None);
    let mut capacity_time = 0.0;
    let last = run.steps.last().expect("a step");
    for (i, st) in run.steps.iter().enumerate() {
        s.shape(st.capacity_bps, st.loss, st.jitter);
        let step_start = s.call.sim.now();
        let before = i.checked_sub(1).and_then(|p| run.steps[p].capacity_bps);
        let (down, up) = match (before, st.capacity_bps) {
            (Some(b), Some(c)) => (c < b, c > b),
            _ => (false, false),
        };
        while s.call.sim.now().duration_since(step_start) < st.lasts {
            s.call.sim.run_for(Duration::from_millis(100));
            let now = s.call.sim.now();
            let elapsed_ms = now.duration_since(step_start).as_millis() as u64;
            let layer = s.layer_now();
            if down && switch_down_ms.is_none() && layer.is_some_and(|l| l < 2) {
                switch_down_ms = Some(elapsed_ms);
            }
            if up && switch_up_ms.is_none() && layer == Some(2) {
                switch_up_ms = Some(elapsed_ms);
            }
            let report = s.call.receiver_report(s.bob);
            let estimate = report.estimate_bps;
            samples.push((now, estimate, st.capacity_bps));
            if trace {
                let link = s.call.sim.net.stats(bridge, bob);
                let counters = s.call.counters();
                let waited = s
                    .call
                    .sim
                    .net
                    .queue_delays_us(bridge, bob)
                    .iter()
                    .rev()
                    .take_while(|(at, _)| now.duration_since(*at) < Duration::from_millis(100))
                    .map(|&(_, us)| us / 1000)
                    .max();
                eprintln!(
                    "{} {seed} t={:.1} est={} {} desired={} acked={:?} layer={:?} sent={} dropped={} waited_ms={:?} rtx={} probe={}",
                    run.scenario,
                    now.duration_since(start).as_secs_f64(),
                    estimate / 1000,
                    report.estimate_limited_by,
                    report.desired_bps / 1000,
                    report.acknowledged_bps.map(|b| b / 1000),
                    layer,
                    link.bytes_sent,
                    link.queue_dropped,
                    waited,
                    counters.retransmissions_sent,
                    counters.probe_bytes_sent,
                );
            }
        }
        capacity_time += st.capacity_bps.unwrap_or(0) as f64 * st.lasts.as_secs_f64();
    }
    let end = s.call.sim.now();
    let steady_from = end - STEADY;
    let mut ratios: Vec<f64> = samples
        .iter()
        .filter(|(at, _, _)| *at >= steady_from)
        .filter_map(|&(_, estimate, capacity)| Some(estimate as f64 / capacity? as f64))
        .collect();

    // Freezes: time spent 500 ms or more after the previous video packet.
    let stream = s.call.video_from(s.bob, &s.alice);
    let mut arrivals: Vec<Instant> = stream
        .packets
        .iter()
        .map(|p| p.arrived)
        .filter(|&t| t >= start)
        .collect();
    arrivals.sort();
    let mut frozen = Duration::ZERO;
    let mut previous = start;
    for &t in arrivals.iter().chain(std::iter::once(&end)) {
        let gap = t.duration_since(previous);
        if gap >= Duration::from_millis(500) {
            frozen += gap;
        }
        previous = t;
    }
    let measured = end.duration_since(start).as_secs_f64();

    let link = s.call.sim.net.stats(bridge, bob);
    let counters = s.call.counters();
    let overshoot_pct = (capacity_time > 0.0).then(|| {
        let sent_bits = (link.bytes_sent - at_start.bytes_sent) as f64 * 8.0;
        ((sent_bits - capacity_time) / capacity_time * 100.0).max(0.0)
    });
    let mut delays: Vec<f64> = s
        .call
        .sim
        .net
        .queue_delays_us(bridge, bob)
        .iter()
        .filter(|(at, _)| *at >= steady_from)
        .map(|&(_, us)| f64::from(us) / 1000.0)
        .collect();
    delays.sort_by(f64::total_cmp);
    let p95 = delays.get(delays.len() * 95 / 100).copied();
    let round = |v: f64| (v * 1000.0).round() / 1000.0;
    json!({
        "scenario": run.scenario,
        "seed": seed,
        "loss_pct": last.loss * 100.0,
        "capacity_kbps": last.capacity_bps.map(|c| c / 1000),
        "estimate_to_capacity": median(&mut ratios).map(round),
        "switch_down_ms": switch_down_ms,
        "switch_up_ms": switch_up_ms,
        "freeze_pct": round(frozen.as_secs_f64() / measured * 100.0),
        "overshoot_pct": overshoot_pct.map(round),
        "queue_delay_p95_ms": p95.map(round),
        "layer_at_end": s.layer_now(),
        "queue_dropped": link.queue_dropped - at_start.queue_dropped,
        "random_lost": link.lost - at_start.lost,
        "sent_kbps": ((link.bytes_sent - at_start.bytes_sent) as f64 * 8.0 / measured / 1000.0).round(),
        "retransmissions": counters.retransmissions_sent - counters_at_start.retransmissions_sent,
        "probe_kbytes": (counters.probe_bytes_sent - counters_at_start.probe_bytes_sent) / 1000,
        "pacer_overflows": counters.pacer_overflows - counters_at_start.pacer_overflows,
    })
}

fn main() {
    // `cargo bench` passes `--bench`; a scenario name narrows the run, `--seeds N` repeats,
    // `--trace` prints the state every 100 ms of simulated time to stderr.
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut seeds = 1u64;
    let mut trace = false;
    let mut only = Vec::new();
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--bench" => {}
            "--trace" => trace = true,
            "--seeds" => {
                i += 1;
                seeds = args.get(i).and_then(|n| n.parse().ok()).unwrap_or(1);
            }
            name => only.push(name.to_owned()),
        }
        i += 1;
    }
    for run in runs() {
        if !only.is_empty() && !only.iter().any(|o| o == run.scenario) {
            continue;
        }
        for seed in 1..=seeds {
            println!("{}", measure(&run, 100 + seed, trace));
        }
    }
}
