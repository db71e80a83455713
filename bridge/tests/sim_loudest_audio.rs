//! In memory: a bridge that forwards each receiver only the loudest two audio streams
//! (`loudest_audio_streams = 2`) and at most two videos (`last_n = 2`, whatever the receivers
//! ask). Of four senders two talk and two send a room's hum: each receiver hears exactly the
//! two talkers (its own stream does not count), and when they change the receivers hear the
//! new pair; the videos follow the dominant speakers' order.

mod sim;

use std::time::{Duration, Instant};

use sim::Call;
use tutti_bridge::media::SpeakerSettings;
use tutti_sim::{speech_levels, NodeId, SimPeer};

/// The senders whose audio reached `receiver` at or after `since`.
fn heard(
    call: &Call,
    receiver: NodeId<SimPeer>,
    senders: &[NodeId<SimPeer>],
    since: Instant,
) -> Vec<String> {
    let mut names: Vec<String> = senders
        .iter()
        .filter(|&&s| s.index() != receiver.index())
        .filter(|&&s| {
            let ssrc = call.peer(s).config().audio.unwrap();
            call.peer(receiver)
                .rx(ssrc)
                .is_some_and(|rx| rx.packets.iter().any(|p| p.arrived >= since))
        })
        .map(|&s| call.peer(s).config().name.clone())
        .collect();
    names.sort();
    names
}

#[test]
fn each_receiver_hears_the_two_loudest_and_sees_at_most_two() {
    let settings = SpeakerSettings {
        last_n: Some(2),
        loudest_audio: Some(2),
        ..SpeakerSettings::default()
    };
    let mut call = Call::with_settings(51, 20, tutti_dtls::SrtpProfiles::GcmThenAesCm, settings);
    let peers: Vec<NodeId<SimPeer>> = ["a", "b", "c", "d", "rx"]
        .into_iter()
        .map(|name| {
            let config = call.peer_config(name);
            call.join(config)
        })
        .collect();
    let rx = peers[4];
    call.connect_all();
    for &p in &peers {
        call.sim.node_mut(p).set_audio_levels(&[-50]);
    }
    // a talks, then b talks too.
    call.sim
        .node_mut(peers[0])
        .set_audio_levels(&speech_levels());
    call.sim.run_for(Duration::from_secs(2));
    call.sim
        .node_mut(peers[1])
        .set_audio_levels(&speech_levels());
    call.sim.run_for(Duration::from_secs(3));
    let since = call.sim.now() - Duration::from_secs(1);
    assert_eq!(heard(&call, rx, &peers, since), ["a", "b"]);
    // c hears the two talkers too; a hears b and one of the others (its own stream does not
    // take one of its two).
    assert_eq!(heard(&call, peers[2], &peers, since), ["a", "b"]);
    assert_eq!(heard(&call, peers[0], &peers, since).len(), 2);
    let mut videos = call.forwarded_to(rx).unwrap();
    videos.sort();
    assert_eq!(videos, ["a", "b"], "a, dominant, then b in join order");

    // a stops and d starts talking: b, who talked all along, takes over from a.
    call.sim.node_mut(peers[0]).set_audio_levels(&[-127]);
    call.sim
        .node_mut(peers[3])
        .set_audio_levels(&speech_levels());
    call.sim.run_for(Duration::from_secs(3));
    let since = call.sim.now() - Duration::from_secs(1);
    assert_eq!(heard(&call, rx, &peers, since), ["b", "d"]);
    let told: Vec<String> = call.dominant_speakers().into_iter().map(|t| t.1).collect();
    assert_eq!(told, ["a", "b"]);
    let mut videos = call.forwarded_to(rx).unwrap();
    videos.sort();
    assert_eq!(videos, ["a", "b"]);

    // b stops too: d takes over, and the videos follow the speaker order (d, b, a).
    call.sim.node_mut(peers[1]).set_audio_levels(&[-127]);
    call.sim.run_for(Duration::from_secs(3));
    let told: Vec<String> = call.dominant_speakers().into_iter().map(|t| t.1).collect();
    assert_eq!(told, ["a", "b", "d"]);
    let mut videos = call.forwarded_to(rx).unwrap();
    videos.sort();
    assert_eq!(videos, ["b", "d"]);
    let since = call.sim.now() - Duration::from_secs(1);
    assert_eq!(
        heard(&call, rx, &peers, since),
        ["b", "d"],
        "d, then the latest speaker"
    );
    // Audio that was cut and resumed is one continuous stream to its receivers.
    let b_audio = call
        .peer(rx)
        .rx(call.peer(peers[1]).config().audio.unwrap())
        .unwrap();
    assert!(b_audio.is_continuous(), "{:?}", b_audio.missing());
}
