//! In memory: a receiver the focus gave MIDs (a standards client, which routes by MID) gets each
//! stream with its own MID in the sdes:mid extension, retransmissions on RTX included; a new
//! MID for a stream applies from then on; receivers without MIDs (Jitsi clients) get none, and
//! what senders put in sdes:mid reaches nobody.

mod sim;

use std::time::Duration;

use sim::{assert_receives_cleanly, Call};
use tutti_sim::{PeerConfig, RxStream};

/// The MIDs the stream's packets carried, and how many carried none.
fn mids(stream: &RxStream) -> (Vec<&str>, u64) {
    let carried = stream.mids.iter().map(|(mid, _)| mid.as_str()).collect();
    (carried, stream.without_mid)
}

fn streams<'a>(call: &'a Call, receiver: &str, sender: &PeerConfig) -> [&'a RxStream; 2] {
    let receiver = *call
        .peers
        .iter()
        .find(|&&p| call.peer(p).config().name == receiver)
        .expect("the receiver");
    let peer = call.peer(receiver);
    [
        peer.rx(sender.audio.unwrap()).expect("audio"),
        peer.rx(sender.video[0].ssrc).expect("video"),
    ]
}

#[test]
fn each_stream_reaches_a_receiver_with_mids_under_its_own_and_others_get_none() {
    let mut call = Call::new(21, 15);
    let a = call.peer_config("a");
    let b = call.peer_config("b");
    let standard = call.peer_config("standard");
    let standard_ip = standard.addr.ip();
    let (pa, pb) = (call.join(a.clone()), call.join(b.clone()));
    let ps = call.join(standard);
    // (The focus names them `audio-1` …; str0m reads a '-' in a MID as '_'.)
    call.set_receive_mids(
        ps,
        &[
            (a.audio.unwrap(), "audio1"),
            (a.video[0].ssrc, "video2"),
            (b.audio.unwrap(), "audio3"),
            (b.video[0].ssrc, "video4"),
        ],
    );
    call.connect_all();
    // Losses on the way to the standards client: its NACKs are answered on RTX, which carries
    // the MID as well.
    let bridge = call.bridge_ip();
    call.set_loss(bridge, standard_ip, 0.03);
    call.sim.run_for(Duration::from_secs(5));
    call.set_loss(bridge, standard_ip, 0.0);
    call.sim.run_for(Duration::from_secs(1));

    for (sender, expected) in [(&a, ["audio1", "video2"]), (&b, ["audio3", "video4"])] {
        let [audio, video] = streams(&call, "standard", sender);
        assert_eq!(
            mids(audio),
            (vec![expected[0]], 0),
            "{}'s audio",
            sender.name
        );
        assert_eq!(
            mids(video),
            (vec![expected[1]], 0),
            "{}'s video",
            sender.name
        );
        assert!(audio.received() >= 200, "{}", audio.received());
        assert!(video.recovered() > 0, "RTX answered the NACKs");
        assert!(video.is_continuous(), "gaps left: {:?}", video.missing());
        assert_eq!(
            (audio.payload_errors, video.payload_errors),
            (0, 0),
            "a MID added before the payload leaves it whole"
        );
        assert!(video.frames().complete >= 120, "{:?}", video.frames());
    }
    // The Jitsi clients: no MID at all, neither theirs nor the senders'.
    for (receiver, sender) in [("a", &b), ("b", &a)] {
        for stream in streams(&call, receiver, sender) {
            assert_eq!(mids(stream).0, Vec::<&str>::new(), "{receiver}");
            assert!(mids(stream).1 > 100, "{receiver}");
        }
        let id = if receiver == "a" { pa } else { pb };
        assert_receives_cleanly(call.peer(id), sender);
    }

    // a's video gets a new MID (its content was removed and added again): packets from now on
    // carry it; an empty list takes every MID away.
    call.set_receive_mids(ps, &[(a.video[0].ssrc, "video5")]);
    call.sim.run_for(Duration::from_secs(1));
    let [audio, video] = streams(&call, "standard", &a);
    assert_eq!(mids(video).0, ["video2", "video5"]);
    let without = audio.without_mid;
    assert!(without > 20, "a's audio has no MID any more: {without}");
    call.set_receive_mids(ps, &[]);
    call.sim.run_for(Duration::from_secs(1));
    let count = |call: &Call| {
        let [_, video] = streams(call, "standard", &a);
        (video.mids.clone(), video.without_mid)
    };
    let before = count(&call);
    call.sim.run_for(Duration::from_secs(1));
    let after = count(&call);
    assert_eq!(after.0, before.0, "no MID after they were taken away");
    assert!(after.1 > before.1 + 20, "{before:?} {after:?}");
}
