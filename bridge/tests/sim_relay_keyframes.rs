//! In memory: three receivers behind the far bridge ask for key frames 20 times a second each
//! (PLI and FIR). The far bridge passes at most one PLI per 300 ms across the relay, the near
//! bridge at most one per 300 ms to the sender: the sender gets about one per 300 ms, and its
//! key frames reach every receiver.

mod sim;

use std::time::Duration;

use sim::cascade::Cascade;

#[test]
fn key_frame_requests_from_behind_the_relay_reach_the_sender_once() {
    let mut cascade = Cascade::new(14, 10);
    let mut sender = cascade.peer_config("sender");
    // No periodic key frames: every key frame after the first is a requested one.
    sender.keyframe_interval = Duration::from_secs(3600);
    let sender = cascade.join(0, sender);
    let receivers: Vec<_> = (0..3)
        .map(|i| {
            let config = cascade.peer_config(&format!("receiver{i}"));
            cascade.join(1, config)
        })
        .collect();
    cascade.connect_all();
    cascade.sim.run_for(Duration::from_secs(1));
    let video_ssrc = cascade.peer(sender).config().video[0].ssrc;
    let keyframes_before: Vec<usize> = receivers
        .iter()
        .map(|&r| cascade.peer(r).rx(video_ssrc).unwrap().frames().keyframes)
        .collect();
    let near_before = cascade.counters(0);

    for step in 0..40 {
        for (i, &r) in receivers.iter().enumerate() {
            cascade.sim.with(r, |peer, _| {
                if (i + step) % 2 == 0 {
                    peer.request_pli(video_ssrc);
                } else {
                    peer.request_fir(video_ssrc);
                }
            });
        }
        cascade.sim.run_for(Duration::from_millis(50));
    }
    cascade.sim.run_for(Duration::from_millis(500));

    let (near, far) = (cascade.counters(0), cascade.counters(1));
    let plis = cascade.peer(sender).stats().rtcp_received.plis[&video_ssrc];
    assert!(far.pli_received >= 110, "{far:?}");
    assert!(far.pli_rate_limited >= 100, "{far:?}");
    let crossed = near.pli_received - near_before.pli_received;
    assert!(
        (4..=9).contains(&crossed),
        "about one PLI per 300 ms over 2 s crossed the relay, not {crossed}"
    );
    assert!(
        (4..=9).contains(&plis),
        "about one PLI per 300 ms reached the sender, not {plis}"
    );
    let sent = cascade.peer(sender).tx(video_ssrc).unwrap();
    assert!(
        sent.requested_keyframes >= 4,
        "the sender answered: {sent:?}"
    );
    for (i, &r) in receivers.iter().enumerate() {
        let frames = cascade.peer(r).rx(video_ssrc).unwrap().frames();
        assert!(
            frames.keyframes >= keyframes_before[i] + 4,
            "receiver{i} got the new key frames: {frames:?}"
        );
        assert_eq!(frames.incomplete, 0);
    }
    println!(
        "far bridge got {} requests, {} rate-limited; {crossed} crossed; the sender got {plis} PLIs",
        far.pli_received, far.pli_rate_limited
    );
}
