//! In memory: sender video constraints. Alice sends three simulcast layers to Bob and Carol.
//! The bridge tells her the tallest video any of them wants of her (SenderVideoConstraints'
//! `idealHeight`): thumbnails (180) until someone puts her on stage at 720, 180 again when
//! nobody has her on stage, and 0 when she is beyond everyone's last-N. Only changes are sent.

mod sim;

use std::time::Duration;

use sim::Call;
use tutti_bridge::media::constraints::ConstraintsUpdate;

#[test]
fn a_sender_is_told_the_tallest_video_anyone_wants_of_it_when_that_changes() {
    let mut call = Call::new(41, 20);
    call.mint_outputs = true;
    let alice_config = call.peer_config("alice").simulcast(3, 1_500_000);
    let alice = call.join(alice_config.clone());
    let receivers: Vec<_> = ["bob", "carol"]
        .into_iter()
        .map(|name| {
            let mut config = call.peer_config(name);
            config.video.clear();
            call.join(config)
        })
        .collect();
    let (bob, carol) = (receivers[0], receivers[1]);
    call.connect_all();
    call.sim.run_for(Duration::from_secs(2));
    let heights = |call: &Call| -> Vec<u32> {
        call.sender_constraints(alice)
            .into_iter()
            .map(|(_, h)| h)
            .collect()
    };
    assert_eq!(heights(&call), [180], "thumbnails before any constraints");
    assert!(
        call.sender_constraints(bob).is_empty(),
        "bob sends no video"
    );

    call.set_constraints(
        bob,
        ConstraintsUpdate {
            on_stage: Some(vec!["alice".into()]),
            max_heights: Some(vec![("alice".into(), 720)]),
            ..Default::default()
        },
    );
    let stage_at = call.sim.now();
    call.sim.run_for(Duration::from_secs(2));
    assert_eq!(heights(&call), [180, 720]);
    assert_eq!(call.sender_constraints(alice)[1].0, stage_at, "at once");
    assert_eq!(
        call.layer_now(bob, &alice_config),
        Some(alice_config.video[2].ssrc)
    );

    // Carol wants 360 of her: still 720 (Bob's).
    call.set_constraints(
        carol,
        ConstraintsUpdate {
            default_max_height: Some(360),
            ..Default::default()
        },
    );
    call.sim.run_for(Duration::from_secs(1));
    assert_eq!(heights(&call), [180, 720]);

    // Bob takes her off stage: Carol's 360 is the tallest.
    call.set_constraints(
        bob,
        ConstraintsUpdate {
            on_stage: Some(Vec::new()),
            max_heights: Some(Vec::new()),
            default_max_height: Some(180),
            ..Default::default()
        },
    );
    call.sim.run_for(Duration::from_secs(1));
    assert_eq!(heights(&call), [180, 720, 360]);

    // Nobody wants any video: 0.
    for &r in &receivers {
        call.set_constraints(
            r,
            ConstraintsUpdate {
                last_n: Some(0),
                ..Default::default()
            },
        );
    }
    call.sim.run_for(Duration::from_secs(1));
    assert_eq!(heights(&call), [180, 720, 360, 0]);
    assert_eq!(call.forwarded_to(bob), Some(Vec::new()));
}
