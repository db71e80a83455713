//! In memory: an endpoint expired mid-stream stops reaching anyone at once, what it still sends
//! is dropped as from an unknown address, the others go on receiving each other, and its state
//! is given back.

mod sim;

use std::time::Duration;

use sim::Call;
use tutti_bridge::media::stats::DropReason;
use tutti_bridge::media::EndpointState;

#[test]
fn an_endpoint_expired_mid_stream_is_gone_for_everyone_else() {
    let mut call = Call::new(7, 10);
    let configs: Vec<_> = ["a", "b", "leaver"]
        .iter()
        .map(|n| call.peer_config(n))
        .collect();
    let ids: Vec<_> = configs.iter().map(|c| call.join(c.clone())).collect();
    call.connect_all();
    call.sim.run_for(Duration::from_secs(2));
    let bytes_with_three = call.sim.node(call.bridge).core.state_bytes();
    let leaver = &configs[2];
    let heard_before = call
        .peer(ids[0])
        .rx(leaver.audio.unwrap())
        .unwrap()
        .received();

    call.expire(ids[2]);
    call.sim.run_for(Duration::from_secs(2));

    assert_eq!(call.states("leaver").last(), Some(&EndpointState::Expired));
    let counters = call.counters();
    assert!(
        counters.drops[DropReason::UnknownAddress as usize] >= 100,
        "the leaver keeps sending into the void: {counters:?}"
    );
    // At most what was in flight when it left reached the others afterwards.
    let heard_after = call
        .peer(ids[0])
        .rx(leaver.audio.unwrap())
        .unwrap()
        .received();
    assert!(
        heard_after <= heard_before + 2,
        "{heard_before} -> {heard_after}"
    );
    // a and b carry on.
    for (receiver, sender) in [(0, 1), (1, 0)] {
        let audio = call
            .peer(ids[receiver])
            .rx(configs[sender].audio.unwrap())
            .unwrap();
        assert!(audio.received() >= 190 && audio.is_continuous());
        let video = call
            .peer(ids[receiver])
            .rx(configs[sender].video[0].ssrc)
            .unwrap();
        assert!(video.is_continuous() && video.frames().incomplete == 0);
    }
    let core = &call.sim.node(call.bridge).core;
    assert_eq!(core.endpoints(), 2);
    assert!(
        core.state_bytes() < bytes_with_three,
        "state given back: {} -> {}",
        bytes_with_three,
        core.state_bytes()
    );
}
