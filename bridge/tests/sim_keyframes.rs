//! In memory: receivers' key-frame requests (PLI and FIR) reach the sender as PLIs for the
//! stream they get, at most one per 300 ms however many receivers ask, and the sender's key
//! frame reaches every receiver.

mod sim;

use std::time::Duration;

use sim::Call;

#[test]
fn a_storm_of_key_frame_requests_reaches_the_sender_rate_limited() {
    let mut call = Call::new(4, 10);
    let mut sender = call.peer_config("sender");
    // No periodic key frames: every key frame after the first is a requested one.
    sender.keyframe_interval = Duration::from_secs(3600);
    let sender = call.join(sender);
    let receivers: Vec<_> = (0..4)
        .map(|i| {
            let config = call.peer_config(&format!("receiver{i}"));
            call.join(config)
        })
        .collect();
    call.connect_all();
    call.sim.run_for(Duration::from_secs(1));
    let video_ssrc = call.peer(sender).config().video[0].ssrc;
    let keyframes_before: Vec<usize> = receivers
        .iter()
        .map(|&r| call.peer(r).rx(video_ssrc).unwrap().frames().keyframes)
        .collect();

    // Every receiver asks 20 times a second for 2 s, half of them by FIR.
    for step in 0..40 {
        for (i, &r) in receivers.iter().enumerate() {
            call.sim.with(r, |peer, _| {
                if (i + step) % 2 == 0 {
                    peer.request_pli(video_ssrc);
                } else {
                    peer.request_fir(video_ssrc);
                }
            });
        }
        call.sim.run_for(Duration::from_millis(50));
    }
    call.sim.run_for(Duration::from_millis(500));

    let counters = call.counters();
    let plis = call.peer(sender).stats().rtcp_received.plis[&video_ssrc];
    assert!(counters.pli_received >= 150, "{counters:?}");
    assert!(
        (4..=9).contains(&plis),
        "about one PLI per 300 ms over 2 s reached the sender, not {plis}"
    );
    assert!(counters.pli_rate_limited >= 140, "{counters:?}");
    let sent = call.peer(sender).tx(video_ssrc).unwrap();
    assert!(
        sent.requested_keyframes >= 4,
        "the sender answered: {sent:?}"
    );
    // Nothing was lost: the bridge saw each key frame anyone sent, once.
    let all_sent: u64 = std::iter::once(sender)
        .chain(receivers.iter().copied())
        .map(|p| {
            let peer = call.peer(p);
            peer.tx(peer.config().video[0].ssrc).unwrap().keyframes
        })
        .sum();
    assert_eq!(counters.keyframes_received, all_sent, "{counters:?}");
    for (i, &r) in receivers.iter().enumerate() {
        let frames = call.peer(r).rx(video_ssrc).unwrap().frames();
        assert!(
            frames.keyframes >= keyframes_before[i] + 4,
            "receiver{i} got the new key frames: {frames:?}"
        );
        assert_eq!(frames.incomplete, 0);
    }
}
