//! In memory: a simulcast sender (180, 360 and 720 lines) on one bridge, two receivers behind
//! another. Every encoding crosses the relay, so the far bridge's allocators choose for their
//! receivers as for a local sender: the one that puts the sender on stage at 720 lines gets
//! the top layer, the one that asks for nothing the 180-line one, each as one continuous
//! stream under the SSRC the focus minted; the speaker's and receivers' lists name the sender
//! by its own participant id.

mod sim;

use std::time::Duration;

use sim::cascade::Cascade;
use tutti_bridge::media::constraints::ConstraintsUpdate;

#[test]
fn receivers_behind_the_relay_get_the_layers_they_ask_for() {
    let mut cascade = Cascade::new(16, 15);
    cascade.mint_outputs = true;
    let sender = cascade.peer_config("sender").simulcast(3, 1_500_000);
    let mut on_stage = cascade.peer_config("on-stage");
    on_stage.video.clear();
    let mut thumbnail = cascade.peer_config("thumbnail");
    thumbnail.video.clear();
    cascade.join(0, sender.clone());
    let on_stage = cascade.join(1, on_stage);
    let thumbnail = cascade.join(1, thumbnail);
    cascade.connect_all();
    cascade.sim.run_for(Duration::from_secs(2));
    let layer = |i: usize| sender.video[i].ssrc;
    assert_eq!(cascade.layer_now(on_stage, &sender), Some(layer(0)));

    cascade.set_constraints(
        on_stage,
        ConstraintsUpdate {
            on_stage: Some(vec!["sender".into()]),
            max_heights: Some(vec![("sender".into(), 720)]),
            ..Default::default()
        },
    );
    cascade.sim.run_for(Duration::from_secs(3));

    assert_eq!(
        cascade.layer_now(on_stage, &sender),
        Some(layer(2)),
        "the top layer for the receiver with the sender on stage"
    );
    assert_eq!(cascade.layer_now(thumbnail, &sender), Some(layer(0)));
    let (ssrc, _) = sim::output_of(&sender);
    for receiver in [on_stage, thumbnail] {
        let stream = cascade.peer(receiver).rx(ssrc).unwrap();
        assert!(stream.is_continuous(), "gaps {:?}", stream.missing());
        assert!(stream.timestamps_monotonic());
        assert!(stream.picture_ids_continuous());
        let switches = stream.switches();
        assert!(switches.iter().all(|s| s.at_keyframe), "{switches:?}");
        assert!(stream.frames().incomplete <= switches.len());
    }
    // Every layer crossed the relay, each once.
    let (near, far) = (cascade.counters(0), cascade.counters(1));
    assert_eq!(near.simulcast_layers_skipped, 0, "{near:?}");
    assert!(
        far.simulcast_layers_skipped > 0,
        "the far bridge chose: {far:?}"
    );
    let forwarded = cascade.sim.node(cascade.bridges[1]).forwarded();
    assert!(
        forwarded
            .iter()
            .any(|f| f.endpoint_id == "on-stage" && f.endpoints == ["sender"]),
        "{forwarded:?}"
    );
}
