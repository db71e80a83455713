//! In memory: speakers across a relay. Alice is on one bridge and Bob on the other, each with a
//! listener; everyone's audio carries RFC 6464 levels, and the audio crosses the relay with
//! them, so both bridges hear every speaker. When Alice talks, both bridges name her dominant
//! within a second; when she falls silent and Bob talks, both name Bob, with Alice before him.

mod sim;

use std::time::{Duration, Instant};

use sim::cascade::Cascade;
use tutti_bridge::media::ChannelNotice;
use tutti_sim::speech_levels;

/// Every dominant speaker bridge `bridge` told its participants of: when, who, who before.
fn dominant(cascade: &Cascade, bridge: usize) -> Vec<(Instant, String, Vec<String>)> {
    cascade
        .sim
        .node(cascade.bridges[bridge])
        .notices()
        .iter()
        .filter_map(|(at, notice)| match notice {
            ChannelNotice::DominantSpeaker {
                dominant, previous, ..
            } => Some((*at, dominant.clone(), previous.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn both_bridges_name_the_same_dominant_speaker() {
    let mut cascade = Cascade::new(18, 20);
    let alice = cascade.peer_config("alice");
    let bob = cascade.peer_config("bob");
    let listeners = [
        cascade.peer_config("near-listener"),
        cascade.peer_config("far-listener"),
    ];
    let alice = cascade.join(0, alice);
    let bob = cascade.join(1, bob);
    let [near, far] = listeners;
    let listeners = [cascade.join(0, near), cascade.join(1, far)];
    cascade.connect_all();
    for id in [alice, bob].into_iter().chain(listeners) {
        cascade.sim.node_mut(id).set_audio_levels(&[-50]);
    }
    cascade.sim.run_for(Duration::from_secs(3));
    assert!(dominant(&cascade, 0).is_empty() && dominant(&cascade, 1).is_empty());

    let started = cascade.sim.now();
    cascade
        .sim
        .node_mut(alice)
        .set_audio_levels(&speech_levels());
    cascade.sim.run_for(Duration::from_secs(3));
    for bridge in 0..2 {
        let told = dominant(&cascade, bridge);
        assert_eq!(told.len(), 1, "bridge {bridge}: {told:?}");
        assert_eq!(told[0].1, "alice");
        let latency = told[0].0 - started;
        assert!(
            latency <= Duration::from_secs(1),
            "bridge {bridge}: {latency:?}"
        );
        println!("bridge {bridge} named alice {latency:?} after she started");
    }

    cascade.sim.node_mut(alice).set_audio_levels(&[-127]);
    let started = cascade.sim.now();
    cascade.sim.node_mut(bob).set_audio_levels(&speech_levels());
    cascade.sim.run_for(Duration::from_secs(3));
    for bridge in 0..2 {
        let told = dominant(&cascade, bridge);
        assert_eq!(told.len(), 2, "bridge {bridge}: {told:?}");
        assert_eq!(told[1].1, "bob");
        assert_eq!(told[1].2, ["alice"]);
        let latency = told[1].0 - started;
        assert!(
            latency <= Duration::from_secs(1),
            "bridge {bridge}: {latency:?}"
        );
        println!("bridge {bridge} named bob {latency:?} after he started");
    }
}
