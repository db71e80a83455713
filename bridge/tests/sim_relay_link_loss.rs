//! In memory: the link between two bridges is cut. Each side's relay stops hearing the other
//! and reports TIMED_OUT within the consent timeout (10 s here), which is what tells the focus
//! that this link is lost; the participants on each bridge keep exchanging their media
//! meanwhile, untouched.

mod sim;

use std::time::Duration;

use sim::cascade::{Cascade, RELAY};
use tutti_bridge::media::EndpointState;

#[test]
fn a_cut_relay_link_is_reported_and_harms_no_local_media() {
    let mut cascade = Cascade::new(17, 10);
    let a = cascade.peer_config("a");
    let b = cascade.peer_config("b");
    let c = cascade.peer_config("c");
    let (a_id, b_id) = (cascade.join(0, a.clone()), cascade.join(0, b.clone()));
    let c_id = cascade.join(1, c.clone());
    cascade.connect_all();
    cascade.sim.run_for(Duration::from_secs(1));

    let (near, far) = (cascade.bridge_ip(0), cascade.bridge_ip(1));
    cascade.sim.net.cut_link(near, far, true);
    cascade.sim.net.cut_link(far, near, true);
    let cut_at = cascade.sim.now();
    let before = cascade.peer(b_id).rx(a.video[0].ssrc).unwrap().received();
    let from_c = cascade.peer(a_id).rx(c.video[0].ssrc).unwrap().received();
    let bridges = cascade.bridges;
    let reported = cascade.sim.run_until_cond(Duration::from_secs(12), |sim| {
        bridges.iter().all(|&b| {
            sim.node(b)
                .events()
                .iter()
                .any(|e| e.endpoint_id == RELAY && e.state == EndpointState::TimedOut)
        })
    });
    let after_cut = cascade.sim.now() - cut_at;
    assert!(reported, "both sides report the lost link within 12 s");
    assert!(
        after_cut >= Duration::from_secs(9),
        "not before the consent timeout: {after_cut:?}"
    );
    cascade.sim.run_for(Duration::from_millis(500));

    for bridge in 0..2 {
        assert_eq!(
            cascade.relay_states(bridge),
            [
                EndpointState::Allocated,
                EndpointState::Connected,
                EndpointState::TimedOut
            ],
            "bridge {bridge}"
        );
    }
    // Media across the relay stopped; media within each bridge went on.
    let after = cascade.peer(a_id).rx(c.video[0].ssrc).unwrap().received();
    assert!(after - from_c < 10, "{from_c} then {after}");
    let video = cascade.peer(b_id).rx(a.video[0].ssrc).unwrap();
    assert!(
        video.received() - before > 300,
        "a's video kept reaching b: {} then {}",
        before,
        video.received()
    );
    assert!(video.is_continuous(), "gaps {:?}", video.missing());
    assert_eq!(video.frames().incomplete, 0);
    assert!(cascade.peer(c_id).is_connected());
    println!("the relay timed out on both sides {after_cut:?} after the cut");
}
