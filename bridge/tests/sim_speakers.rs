//! In memory: three participants whose audio carries RFC 6464 levels — at first a constant
//! −50 dBov (a room's hum), which is noise to the detector. The one who talks (syllables with pauses) becomes
//! the conference's dominant speaker within a second; a cough of another does not take over;
//! when the talker falls silent and another starts, the change reaches everyone within a
//! second, with the earlier speaker in `previousSpeakers`.

mod sim;

use std::time::Duration;

use sim::Call;
use tutti_sim::speech_levels;

const SILENCE: &[i8] = &[-127];

#[test]
fn the_talker_becomes_dominant_and_a_change_of_talker_is_detected_within_a_second() {
    let mut call = Call::new(21, 20);
    let names = ["alice", "bob", "carol"];
    let ids: Vec<_> = names
        .iter()
        .map(|name| {
            let config = call.peer_config(name);
            call.join(config)
        })
        .collect();
    call.connect_all();
    let (alice, bob, carol) = (ids[0], ids[1], ids[2]);

    // Everyone sends a constant level: nobody is dominant.
    for &id in &ids {
        call.sim.node_mut(id).set_audio_levels(&[-50]);
    }
    call.sim.run_for(Duration::from_secs(3));
    assert!(call.dominant_speakers().is_empty(), "noise never wins");

    let started = call.sim.now();
    call.sim.node_mut(alice).set_audio_levels(&speech_levels());
    call.sim.run_for(Duration::from_secs(3));
    let told = call.dominant_speakers();
    assert_eq!(told.len(), 1, "{told:?}");
    assert_eq!(told[0].1, "alice");
    assert!(told[0].2.is_empty(), "nobody spoke before");
    let latency = told[0].0 - started;
    assert!(latency <= Duration::from_secs(1), "alice after {latency:?}");

    // Carol coughs for 300 ms while Alice talks, then again while nobody does.
    let loud: Vec<i8> = vec![-8; 15];
    for talking in [true, false] {
        if !talking {
            call.sim.node_mut(alice).set_audio_levels(SILENCE);
            call.sim.run_for(Duration::from_secs(3));
        }
        call.sim.node_mut(carol).set_audio_levels(&loud);
        call.sim.run_for(Duration::from_millis(300));
        call.sim.node_mut(carol).set_audio_levels(SILENCE);
        call.sim.run_for(Duration::from_secs(2));
    }
    assert_eq!(call.dominant_speakers().len(), 1, "a cough does not switch");

    // Bob starts talking: he takes over.
    let swapped = call.sim.now();
    call.sim.node_mut(bob).set_audio_levels(&speech_levels());
    call.sim.run_for(Duration::from_secs(3));
    let told = call.dominant_speakers();
    assert_eq!(told.len(), 2, "{told:?}");
    assert_eq!(
        (told[1].1.as_str(), told[1].2.clone()),
        ("bob", vec!["alice".to_owned()])
    );
    let latency = told[1].0 - swapped;
    assert!(latency <= Duration::from_secs(1), "bob after {latency:?}");

    // A direct swap: Bob falls silent as Alice starts again.
    let swapped = call.sim.now();
    call.sim.node_mut(bob).set_audio_levels(SILENCE);
    call.sim.node_mut(alice).set_audio_levels(&speech_levels());
    call.sim.run_for(Duration::from_secs(3));
    let told = call.dominant_speakers();
    assert_eq!(told.len(), 3, "{told:?}");
    assert_eq!(
        (told[2].1.as_str(), told[2].2.clone()),
        ("alice", vec!["bob".to_owned()])
    );
    let latency = told[2].0 - swapped;
    assert!(
        latency <= Duration::from_secs(1),
        "alice again after {latency:?}"
    );

    // Every audio stream still reaches everyone (loudest-K is off by default).
    for &receiver in &ids {
        for &sender in ids.iter().filter(|s| s.index() != receiver.index()) {
            let ssrc = call.peer(sender).config().audio.unwrap();
            let audio = call.peer(receiver).rx(ssrc).unwrap();
            assert!(audio.received() > 900, "{}", audio.received());
        }
    }
}
