//! In memory: last-N. Five participants send video and a sixth, who sends only audio, wants
//! two videos (`lastN` 2) with one of them selected. It gets exactly the selected one and the
//! latest dominant speaker; when another speaker takes over, the one who left its last-N stops
//! reaching it within one frame interval of the decision, and the one who entered starts with
//! a key frame the bridge asked its sender for.

mod sim;

use std::time::{Duration, Instant};

use sim::Call;
use tutti_bridge::media::constraints::ConstraintsUpdate;
use tutti_sim::{speech_levels, NodeId, SimPeer};

/// Frame interval of the senders' 30 fps video.
const FRAME_INTERVAL: Duration = Duration::from_millis(34);
/// One-way delay of every link.
const DELAY: Duration = Duration::from_millis(20);

/// The senders (by name) whose video reached `receiver` at or after `since`.
fn videos_reaching(
    call: &Call,
    receiver: NodeId<SimPeer>,
    senders: &[NodeId<SimPeer>],
    since: Instant,
) -> Vec<String> {
    senders
        .iter()
        .filter(|&&s| {
            let config = call.peer(s).config();
            call.peer(receiver)
                .rx(config.video[0].ssrc)
                .is_some_and(|rx| rx.packets.iter().any(|p| p.arrived >= since))
        })
        .map(|&s| call.peer(s).config().name.clone())
        .collect()
}

fn sorted(mut names: Vec<String>) -> Vec<String> {
    names.sort();
    names
}

#[test]
fn last_n_two_of_five_forwards_the_selected_one_and_the_latest_speaker() {
    let mut call = Call::new(31, DELAY.as_millis() as u64);
    let senders: Vec<NodeId<SimPeer>> = (1..=5)
        .map(|i| {
            let config = call.peer_config(&format!("s{i}"));
            call.join(config)
        })
        .collect();
    let mut rx = call.peer_config("rx");
    rx.video.clear();
    let rx = call.join(rx);
    call.connect_all();
    for &id in senders.iter().chain([&rx]) {
        call.sim.node_mut(id).set_audio_levels(&[-50]);
    }
    call.set_constraints(
        rx,
        ConstraintsUpdate {
            last_n: Some(2),
            selected: Some(vec!["s3".into()]),
            ..Default::default()
        },
    );
    let by_name = |call: &Call, name: &str| {
        *senders
            .iter()
            .find(|&&s| call.peer(s).config().name == name)
            .unwrap()
    };

    // s5 talks: rx gets s3 (selected) and s5 (the speaker), nobody else.
    let s5 = by_name(&call, "s5");
    call.sim.node_mut(s5).set_audio_levels(&speech_levels());
    call.sim.run_for(Duration::from_secs(3));
    let since = call.sim.now() - Duration::from_secs(1);
    assert_eq!(
        sorted(videos_reaching(&call, rx, &senders, since)),
        ["s3", "s5"]
    );
    assert_eq!(
        call.forwarded_to(rx).map(sorted),
        Some(vec!["s3".to_owned(), "s5".to_owned()])
    );

    // s2 takes over: s5 leaves rx's last-N at once, s2 enters on a key frame it was asked for.
    let s2 = by_name(&call, "s2");
    let s2_ssrc = call.peer(s2).config().video[0].ssrc;
    let asked_before = call.peer(s2).tx(s2_ssrc).unwrap().requested_keyframes;
    call.sim.node_mut(s5).set_audio_levels(&[-127]);
    call.sim.node_mut(s2).set_audio_levels(&speech_levels());
    call.sim.run_for(Duration::from_secs(3));
    let told = call.dominant_speakers();
    let (decided, dominant, previous) = told.last().unwrap().clone();
    assert_eq!((dominant.as_str(), previous), ("s2", vec!["s5".to_owned()]));
    assert_eq!(
        call.forwarded_to(rx).map(sorted),
        Some(vec!["s2".to_owned(), "s3".to_owned()])
    );
    let s5_ssrc = call.peer(s5).config().video[0].ssrc;
    let last_s5 = call
        .peer(rx)
        .rx(s5_ssrc)
        .unwrap()
        .packets
        .iter()
        .map(|p| p.arrived)
        .max()
        .unwrap();
    assert!(
        last_s5 <= decided + DELAY + FRAME_INTERVAL,
        "s5's video reached rx {:?} after the decision",
        last_s5.saturating_duration_since(decided)
    );
    let since = call.sim.now() - Duration::from_secs(1);
    assert_eq!(
        sorted(videos_reaching(&call, rx, &senders, since)),
        ["s2", "s3"]
    );
    let s2_video = call.peer(rx).rx(s2_ssrc).unwrap();
    let first_s2 = s2_video
        .packets
        .iter()
        .find(|p| p.arrived >= decided)
        .unwrap();
    assert!(first_s2.keyframe, "s2 enters on a key frame");
    assert!(
        first_s2.arrived <= decided + Duration::from_millis(300),
        "s2 after {:?}",
        first_s2.arrived - decided
    );
    assert!(call.peer(s2).tx(s2_ssrc).unwrap().requested_keyframes > asked_before);
}
