//! Hostile and broken datagrams are dropped and counted by reason; the conference's media
//! goes on untouched.

mod support;

use std::time::Duration;

use support::*;
use tutti_participant::ParticipantConfig;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_datagrams_are_counted_and_harmless() {
    if rerun_in_own_netns("bad_datagrams_are_counted_and_harmless") {
        return;
    }
    let bridge = BridgeProcess::start(&[]);
    let mut client = bridge.client().await;
    let sender = join(
        &mut client,
        "room",
        "sender",
        ParticipantConfig::new("sender"),
    )
    .await;
    let receiver = join(
        &mut client,
        "room",
        "receiver",
        ParticipantConfig::new("receiver"),
    )
    .await;
    // This one's audio SSRC is not signalled to the bridge.
    let sneaky_config = ParticipantConfig::new("sneaky");
    let mut sources = source_list(&sneaky_config);
    sources
        .sources
        .retain(|s| s.ssrc != sneaky_config.audio_ssrc);
    let media = media_list(&sneaky_config);
    let sneaky = join_with(&mut client, "room", "sneaky", sneaky_config, sources, media).await;
    sender.start_media();
    sneaky.start_media();
    let video = sender.config().video_ssrc;
    eventually(Duration::from_secs(5), "media flows", || {
        received(&receiver, video) > 50
    })
    .await;

    let stranger = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    // Counters are published every 100 ms: let the ones from connecting settle first.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = bridge.metrics().await;
    let media = bridge.bound.media;
    let send = |data: Vec<u8>| {
        let stranger = &stranger;
        async move {
            stranger.send_to(&data, media).await.unwrap();
        }
    };
    // Not STUN, DTLS or RTP.
    send(vec![0xf0; 40]).await;
    // Larger than any datagram the bridge accepts.
    send(vec![0x80; 1600]).await;
    // Too short to be RTP.
    send(vec![0x80, 0x60, 0, 1]).await;
    // RTP and DTLS from an address that never completed ICE.
    send([&[0x80u8, 0x60, 0, 1][..], &[7u8; 40][..]].concat()).await;
    send([&[22u8, 0xfe, 0xfd][..], &[0u8; 40][..]].concat()).await;
    // STUN with a username nobody has, with the right username but a wrong password, and junk.
    // Allocating again is idempotent and tells us the bridge's ufrag for the receiver.
    let again = client
        .allocate_endpoint(tutti_proto::bridge_v1::AllocateEndpointRequest {
            conference_id: "room".into(),
            endpoint_id: "receiver".into(),
            dtls_setup: 0,
            participant_id: String::new(),
            receives_by_mid: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!again.created);
    let receiver_ufrag = again.transport.unwrap().ice.unwrap().ufrag;
    let check = |username: &str, transaction: u8| {
        let mut buf = [0u8; 600];
        let request = tutti_ice::stun::BindingRequest {
            transaction_id: [transaction; 12],
            username,
            password: "wrong-password-wrong-pw",
            priority: 1,
            role: tutti_ice::stun::Role::Controlled(7),
            use_candidate: false,
        };
        let n = request.encode(&mut buf).unwrap();
        buf[..n].to_vec()
    };
    send(check("nobody:x", 1)).await;
    send(check(&format!("{receiver_ufrag}:x"), 2)).await;
    send(
        [
            &[1u8, 1, 0, 8, 0x21, 0x12, 0xa4, 0x42][..],
            &[0u8; 12][..],
            &[0u8; 8][..],
        ]
        .concat(),
    )
    .await;
    let received_seq = receiver.stats().received[&video].highest_seq;
    // From a connected participant's own address: SRTP that fails authentication, and a replay.
    sender
        .send_raw(
            &[
                &[0x80u8, 0x60][..],
                // Ahead of the stream, so it is judged by its (forged) tag, not as a replay.
                &received_seq.wrapping_add(100).to_be_bytes()[..],
                &[0, 0, 0, 1][..],
                &video.to_be_bytes()[..],
                &[5u8; 100][..],
            ]
            .concat(),
        )
        .await
        .unwrap();
    sender.replay_last_rtp().await.unwrap();

    let expect = [
        ("unrecognized_protocol", 1.0),
        ("oversized", 1.0),
        ("truncated", 1.0),
        ("unknown_address", 1.0),
        ("dtls_unknown_address", 1.0),
        ("stun_unknown_username", 1.0),
        ("stun_bad_integrity", 1.0),
        ("srtp_auth_failed", 1.0),
        ("srtp_replayed", 1.0),
        ("stun_unknown_transaction", 1.0),
    ];
    let metrics = bridge
        .metrics_when(|m| {
            expect
                .iter()
                .all(|(reason, n)| m.drop_count(reason) - before.drop_count(reason) >= *n)
        })
        .await;
    for (reason, n) in expect {
        assert_eq!(
            metrics.drop_count(reason) - before.drop_count(reason),
            n,
            "drops for {reason} (before the junk: {})",
            before.drop_count(reason)
        );
    }
    assert_eq!(
        received(&receiver, sneaky.config().audio_ssrc),
        0,
        "an unsignalled SSRC was forwarded"
    );
    assert!(
        received(&receiver, sneaky.config().video_ssrc) > 0,
        "the sneaky participant's signalled video should flow"
    );

    // Everyone else's media went on.
    let before = received(&receiver, video);
    eventually(
        Duration::from_secs(2),
        "media keeps flowing after the junk",
        || received(&receiver, video) > before + 50,
    )
    .await;
    assert!(
        bridge.metrics().await.drop_count("unknown_ssrc") > 10.0,
        "the unsignalled audio SSRC was not dropped"
    );
    assert_eq!(receiver.stats().received[&video].payload_errors, 0);
}
