//! End-to-end: the real bridge binary and real test participants (an independent WebRTC stack)
//! exchanging SRTP media over loopback, each test in its own network namespace.

mod support;

use std::time::Duration;

use support::*;
use tutti_participant::{Participant, ParticipantConfig, SrtpChoice};

fn config(name: &str, srtp: SrtpChoice) -> ParticipantConfig {
    let mut config = ParticipantConfig::new(name);
    config.srtp = srtp;
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_participants_exchange_media_and_feedback() {
    if rerun_in_own_netns("three_participants_exchange_media_and_feedback") {
        return;
    }
    let bridge = BridgeProcess::start(&[]);
    let mut client = bridge.client().await;
    // One participant fragments its ClientHello over several datagrams; one uses AES-CM while
    // the others use GCM, so the bridge re-encrypts between profiles.
    let mut fragmenting = config("alice", SrtpChoice::GcmOnly);
    fragmenting.dtls_mtu = 120;
    let alice = join(&mut client, "room", "alice", fragmenting).await;
    let bob = join(
        &mut client,
        "room",
        "bob",
        config("bob", SrtpChoice::GcmFirst),
    )
    .await;
    // carol negotiates no transport-cc: the bridge gives her REMB instead of feedback.
    let carol_config = config("carol", SrtpChoice::AesCmOnly);
    let mut carol_media = media_list(&carol_config);
    for media in &mut carol_media.media {
        media.header_extensions.clear();
        for pt in &mut media.payload_types {
            pt.rtcp_fb.retain(|fb| fb != "transport-cc");
        }
    }
    let carol_sources = source_list(&carol_config);
    let carol = join_with(
        &mut client,
        "room",
        "carol",
        carol_config,
        carol_sources,
        carol_media,
    )
    .await;
    let alice_stats = alice.stats();
    assert!(
        alice_stats.dtls_datagrams_before_reply > 1,
        "ClientHello was not fragmented: {alice_stats:?}"
    );
    assert_eq!(
        carol
            .stats()
            .srtp_profile
            .as_deref()
            .map(|p| p.contains("CM")),
        Some(true)
    );

    let everyone = [&alice, &bob, &carol];
    for p in everyone {
        p.start_media();
    }
    for receiver in everyone {
        for sender in everyone {
            if std::ptr::eq(receiver, sender) {
                continue;
            }
            let (audio, video) = (sender.config().audio_ssrc, sender.config().video_ssrc);
            eventually(
                Duration::from_secs(5),
                "audio and video from every other participant",
                || received(receiver, audio) >= 50 && received(receiver, video) >= 200,
            )
            .await;
        }
    }
    for p in everyone {
        let stats = p.stats();
        let errors: u64 = stats.received.values().map(|s| s.payload_errors).sum();
        assert_eq!(errors, 0, "{} received damaged payloads", p.config().name);
        assert_eq!(stats.srtp_errors, 0, "{} saw SRTP errors", p.config().name);
        assert!(
            !stats.received.contains_key(&p.config().audio_ssrc),
            "{} got its own media back",
            p.config().name
        );
    }

    // A PLI from bob for alice's video reaches alice, who answers with a keyframe.
    let alice_video = alice.config().video_ssrc;
    let keyframes_before = bob
        .stats()
        .received
        .get(&alice_video)
        .map_or(0, |s| s.keyframes);
    bob.send_pli(alice_video).await.unwrap();
    eventually(Duration::from_secs(2), "alice receives the PLI", || {
        alice
            .stats()
            .plis_received
            .get(&alice_video)
            .copied()
            .unwrap_or(0)
            >= 1
    })
    .await;
    eventually(
        Duration::from_secs(2),
        "bob receives the requested keyframe",
        || {
            bob.stats()
                .received
                .get(&alice_video)
                .map_or(0, |s| s.keyframes)
                > keyframes_before
        },
    )
    .await;

    // A NACK for a sequence number carol received is answered with RTX carrying it.
    let nacked = carol.stats().received[&alice_video]
        .highest_seq
        .wrapping_sub(3);
    carol.send_nack(alice_video, nacked).await.unwrap();
    let alice_rtx = alice.config().video_rtx_ssrc;
    eventually(
        Duration::from_secs(2),
        "carol receives RTX for the NACKed packet",
        || carol.stats().rtx_received.contains(&(alice_rtx, nacked)),
    )
    .await;

    // transport-cc feedback to bob covers exactly what bob sent.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sent: std::collections::BTreeSet<u16> = bob.twcc_sent_sequences().into_iter().collect();
    let stats = bob.stats();
    assert!(
        stats.twcc_feedbacks > 10,
        "too little transport-cc feedback: {}",
        stats.twcc_feedbacks
    );
    let stray: Vec<_> = stats
        .twcc_reported_received
        .difference(&sent)
        .take(5)
        .collect();
    assert!(
        stray.is_empty(),
        "feedback reports sequence numbers bob never sent: {stray:?}"
    );
    let covered = stats.twcc_reported_received.len() as f64 / sent.len() as f64;
    assert!(
        covered > 0.9,
        "feedback covers only {:.0}% of {} sent",
        covered * 100.0,
        sent.len()
    );
    assert!(stats.receiver_reports > 0, "no receiver report reached bob");
    assert!(
        stats.sender_reports > 0,
        "the other senders' reports were not passed on to bob"
    );
    assert_eq!(
        stats.remb_bps, None,
        "bob negotiated transport-cc, REMB is not for him"
    );
    let carol_stats = carol.stats();
    assert_eq!(
        carol_stats.twcc_feedbacks, 0,
        "carol negotiated no transport-cc"
    );
    assert!(
        carol_stats.remb_bps.is_some_and(|bps| bps > 1_000_000),
        "carol got no REMB: {:?}",
        carol_stats.remb_bps
    );

    let metrics = bridge
        .metrics_when(|m| m.get("tutti_bridge_transport_cc_feedback_sent_total") > 10.0)
        .await;
    assert!(metrics.get("tutti_bridge_transport_cc_feedback_sent_total") > 10.0);
    assert!(metrics.get("tutti_bridge_packets_sent_total{media=\"video\"}") > 400.0);
    assert_eq!(metrics.get("tutti_bridge_endpoints"), 3.0);
    for p in [alice, bob, carol] {
        p.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conferences_share_nothing() {
    if rerun_in_own_netns("conferences_share_nothing") {
        return;
    }
    let bridge = BridgeProcess::start(&[]);
    let mut client = bridge.client().await;
    let a1 = join(&mut client, "a", "1", config("a1", SrtpChoice::GcmFirst)).await;
    let a2 = join(&mut client, "a", "2", config("a2", SrtpChoice::GcmFirst)).await;
    let b1 = join(&mut client, "b", "1", config("b1", SrtpChoice::GcmFirst)).await;
    let b2 = join(&mut client, "b", "2", config("b2", SrtpChoice::GcmFirst)).await;
    for p in [&a1, &a2, &b1, &b2] {
        p.start_media();
    }
    eventually(
        Duration::from_secs(5),
        "media within each conference",
        || {
            received(&a2, a1.config().video_ssrc) > 100
                && received(&b2, b1.config().video_ssrc) > 100
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let foreign = |p: &Participant, others: [&Participant; 2]| {
        let stats = p.stats();
        others
            .iter()
            .flat_map(|o| {
                [
                    o.config().audio_ssrc,
                    o.config().video_ssrc,
                    o.config().video_rtx_ssrc,
                ]
            })
            .filter(|ssrc| stats.received.contains_key(ssrc))
            .count()
    };
    assert_eq!(
        foreign(&a1, [&b1, &b2]),
        0,
        "conference a got media of conference b"
    );
    assert_eq!(foreign(&a2, [&b1, &b2]), 0);
    assert_eq!(
        foreign(&b1, [&a1, &a2]),
        0,
        "conference b got media of conference a"
    );
    assert_eq!(foreign(&b2, [&a1, &a2]), 0);
    // Expiring conference a leaves b's media untouched.
    client
        .expire_conference(tutti_proto::bridge_v1::ExpireConferenceRequest {
            conference_id: "a".into(),
        })
        .await
        .unwrap();
    let before = received(&b2, b1.config().video_ssrc);
    eventually(
        Duration::from_secs(2),
        "b keeps flowing after a expired",
        || received(&b2, b1.config().video_ssrc) > before + 50,
    )
    .await;
    let a_before = received(&a2, a1.config().video_ssrc);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        received(&a2, a1.config().video_ssrc),
        a_before,
        "media still forwarded in an expired conference"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulcast_forwards_only_the_first_layer() {
    if rerun_in_own_netns("simulcast_forwards_only_the_first_layer") {
        return;
    }
    let bridge = BridgeProcess::start(&[]);
    let mut client = bridge.client().await;
    // Two senders that signal SIM groups of two layers and send one of them: the first layer
    // (forwarded) and the second (not forwarded until receivers can choose layers).
    let simulcast = |config: &ParticipantConfig, layers: [u32; 2]| {
        let mut sources = source_list(config);
        let other = layers
            .iter()
            .copied()
            .find(|s| *s != config.video_ssrc)
            .unwrap();
        sources.sources.push(tutti_proto::bridge_v1::Source {
            ssrc: other,
            media_type: tutti_proto::bridge_v1::MediaType::Video as i32,
            ..Default::default()
        });
        sources.groups.push(tutti_proto::bridge_v1::SourceGroup {
            semantics: "SIM".into(),
            ssrcs: layers.to_vec(),
        });
        sources
    };
    let low_config = ParticipantConfig::new("low");
    let low_sources = simulcast(&low_config, [low_config.video_ssrc, 7_000_001]);
    let low_media = media_list(&low_config);
    let low = join_with(
        &mut client,
        "sim",
        "low",
        low_config,
        low_sources,
        low_media,
    )
    .await;
    let high_config = ParticipantConfig::new("high");
    let high_sources = simulcast(&high_config, [7_000_002, high_config.video_ssrc]);
    let high_media = media_list(&high_config);
    let high = join_with(
        &mut client,
        "sim",
        "high",
        high_config,
        high_sources,
        high_media,
    )
    .await;
    let viewer = join(
        &mut client,
        "sim",
        "viewer",
        ParticipantConfig::new("viewer"),
    )
    .await;
    eventually(
        Duration::from_secs(5),
        "the first layer and audio arrive",
        || {
            received(&viewer, low.config().video_ssrc) > 100
                && received(&viewer, high.config().audio_ssrc) > 20
        },
    )
    .await;
    assert_eq!(
        received(&viewer, high.config().video_ssrc),
        0,
        "a second simulcast layer was forwarded"
    );
    let metrics = bridge
        .metrics_when(|m| m.get("tutti_bridge_simulcast_layers_skipped_total") > 100.0)
        .await;
    assert!(metrics.get("tutti_bridge_simulcast_layers_skipped_total") > 100.0);
}

/// A participant back on a new endpoint (as after an ICE restart) keeps its SSRCs and starts
/// new sequence numbers. Its receivers kept their SRTP state for those SSRCs, rollover counter
/// included, so the bridge must carry on both the numbering and the rollover counter where
/// each receiver was: here the first session's streams had wrapped their sequence (ROC 1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_back_after_its_sequence_wrapped_still_decrypts() {
    if rerun_in_own_netns("a_stream_back_after_its_sequence_wrapped_still_decrypts") {
        return;
    }
    let bridge = BridgeProcess::start(&[]);
    let mut client = bridge.client().await;
    let bob = join(
        &mut client,
        "room",
        "bob",
        config("bob", SrtpChoice::GcmOnly),
    )
    .await;
    let carol = join(
        &mut client,
        "room",
        "carol",
        config("carol", SrtpChoice::AesCmOnly),
    )
    .await;
    let listeners = [&bob, &carol];
    let mut first = config("alice", SrtpChoice::GcmFirst);
    first.first_sequence = Some(65_400);
    let (audio, video) = (first.audio_ssrc, first.video_ssrc);
    let alice = join(&mut client, "room", "alice", first.clone()).await;
    alice.start_media();
    // Audio (50 packets/s) wraps after 136 packets, video sooner.
    eventually(
        Duration::from_secs(10),
        "alice's audio and video past the wrap at both listeners",
        || {
            listeners
                .iter()
                .all(|l| received(l, audio) >= 160 && received(l, video) >= 300)
        },
    )
    .await;
    alice.close().await;
    client
        .expire_endpoint(tutti_proto::bridge_v1::ExpireEndpointRequest {
            conference_id: "room".into(),
            endpoint_id: "alice".into(),
        })
        .await
        .expect("expire alice's first endpoint");

    let mut again = first;
    again.first_sequence = Some(20_000);
    let alice = join(&mut client, "room", "alice-again", again).await;
    let before: Vec<(u64, u64)> = listeners
        .iter()
        .map(|l| (received(l, audio), received(l, video)))
        .collect();
    alice.start_media();
    eventually(
        Duration::from_secs(10),
        "alice's returning streams decrypted at both listeners",
        || {
            listeners
                .iter()
                .zip(&before)
                .all(|(l, (a, v))| received(l, audio) >= a + 50 && received(l, video) >= v + 200)
        },
    )
    .await;
    for listener in listeners {
        let stats = listener.stats();
        let name = &listener.config().name;
        assert_eq!(stats.srtp_errors, 0, "{name} saw SRTP errors");
        let damaged: u64 = stats.received.values().map(|s| s.payload_errors).sum();
        assert_eq!(damaged, 0, "{name} received damaged payloads");
        for ssrc in [audio, video] {
            assert_eq!(
                stats.received[&ssrc].renumbered, 1,
                "{name}: the returning stream continues the numbering"
            );
        }
    }
}
