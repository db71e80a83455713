//! `bench/speakers`: how fast the dominant speaker follows who talks, on the in-memory network
//! (the bridge's core and str0m participants on 20 ms links). Six participants, each with audio
//! (RFC 6464 levels) and video; one talks at a time and the talker changes about every 4 s
//! (at a random instant, so against the bridge's 100 ms buckets at any phase, and in a random
//! place of the talker's syllables and pauses), either as a handover (the talker stops as the
//! next starts) or into silence (after 2 s of nobody).
//! One JSON line per kind: the latency from the change of who makes sound to the bridge's
//! DominantSpeakerEndpointChangeEvent (p50, p95, max over every change), how many changes were
//! missed or wrongly named, and — for a receiver with lastN 1 — the time from the event to the
//! last packet of the previous speaker's video reaching it (negative: it arrived before).

#[path = "../tests/sim/mod.rs"]
mod sim;

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use sim::Call;
use tutti_bridge::media::constraints::ConstraintsUpdate;
use tutti_sim::{speech_levels, NodeId, SimPeer};

const PARTICIPANTS: usize = 6;
const TURN: Duration = Duration::from_secs(4);
const SILENCE: &[i8] = &[-127];
/// A room's hum: what a participant who does not talk sends.
const HUM: &[i8] = &[-50];

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn measure(kind: &str, turns: usize, seed: u64) -> serde_json::Value {
    let mut call = Call::new(seed, 20);
    let peers: Vec<NodeId<SimPeer>> = (0..PARTICIPANTS)
        .map(|i| {
            let config = call.peer_config(&format!("p{i}"));
            call.join(config)
        })
        .collect();
    call.connect_all();
    for &p in &peers {
        call.sim.node_mut(p).set_audio_levels(HUM);
    }
    // The last participant watches one video: the speaker's.
    let watcher = peers[PARTICIPANTS - 1];
    call.set_constraints(
        watcher,
        ConstraintsUpdate {
            last_n: Some(1),
            ..Default::default()
        },
    );
    call.sim.run_for(Duration::from_secs(2));
    let mut rng = StdRng::seed_from_u64(seed);
    let mut latencies_ms = Vec::new();
    let mut leave_ms = Vec::new();
    let (mut missed, mut wrong) = (0, 0);
    let mut previous: Option<usize> = None;
    for turn in 0..turns {
        // Talkers p0..p4 in turn (the watcher never talks).
        let talker = turn % (PARTICIPANTS - 1);
        if kind == "into_silence" {
            if let Some(p) = previous {
                call.sim.node_mut(peers[p]).set_audio_levels(SILENCE);
            }
            call.sim.run_for(Duration::from_secs(2));
        }
        call.sim
            .run_for(Duration::from_millis(rng.random_range(0..100)));
        let told_before = call.dominant_speakers().len();
        let changed_at = call.sim.now();
        let mut speech = speech_levels();
        // Sound starts at the change, somewhere in a run of syllables (the first 35 packets).
        speech.rotate_left(rng.random_range(0..35));
        if let Some(p) = previous.filter(|_| kind == "handover") {
            call.sim.node_mut(peers[p]).set_audio_levels(SILENCE);
        }
        call.sim.node_mut(peers[talker]).set_audio_levels(&speech);
        call.sim.run_for(TURN);
        let told = call.dominant_speakers();
        let name = call.peer(peers[talker]).config().name.clone();
        match told.get(told_before) {
            Some((at, who, _)) if *who == name => {
                latencies_ms.push((*at - changed_at).as_secs_f64() * 1000.0);
                if let Some(p) = previous {
                    let ssrc = call.peer(peers[p]).config().video[0].ssrc;
                    let last = call
                        .peer(watcher)
                        .rx(ssrc)
                        .and_then(|rx| rx.packets.iter().map(|p| p.arrived).max());
                    if let Some(last) = last {
                        let after = last.saturating_duration_since(*at).as_secs_f64();
                        let before = at.saturating_duration_since(last).as_secs_f64();
                        leave_ms.push((after - before) * 1000.0);
                    }
                }
            }
            Some(_) => wrong += 1,
            None if previous == Some(talker) => {}
            None => missed += 1,
        }
        if told.len() > told_before + 1 {
            wrong += told.len() - told_before - 1;
        }
        if kind == "handover" || previous.is_none() {
            previous = Some(talker);
        } else {
            call.sim.node_mut(peers[talker]).set_audio_levels(SILENCE);
            previous = Some(talker);
        }
    }
    latencies_ms.sort_by(f64::total_cmp);
    leave_ms.sort_by(f64::total_cmp);
    let round = |x: f64| (x * 10.0).round() / 10.0;
    json!({
        "bench": "speakers",
        "kind": kind,
        "seed": seed,
        "participants": PARTICIPANTS,
        "changes": turns,
        "switch_ms_p50": round(percentile(&latencies_ms, 0.5)),
        "switch_ms_p95": round(percentile(&latencies_ms, 0.95)),
        "switch_ms_max": round(latencies_ms.last().copied().unwrap_or(f64::NAN)),
        "missed": missed,
        "wrong": wrong,
        "last_n_leaver_last_packet_after_event_ms_max":
            round(leave_ms.last().copied().unwrap_or(f64::NAN)),
    })
}

fn main() {
    // `cargo bench` passes `--bench`; `--turns N` sets the changes per kind, `--seeds N` repeats.
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str, default: u64| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1)?.parse().ok())
            .unwrap_or(default)
    };
    let turns = value("--turns", 20) as usize;
    let seeds = value("--seeds", 1);
    for kind in ["handover", "into_silence"] {
        for seed in 1..=seeds {
            println!("{}", measure(kind, turns, 200 + seed));
        }
    }
}
