//! Cascading end to end (docs/bridge.md, Cascading): two real bridge processes in one network
//! namespace, a conference on both linked by a relay through their gRPC APIs as a focus links
//! them, a participant on each. The participant on the second bridge receives the first one's
//! audio and video through the relay (ICE with one side controlled, DTLS-SRTP with the
//! fingerprints the calls carried, a link id on every datagram); the relay's packet counters
//! show what crossed; bad relay requests get errors that say what is wrong.

mod support;

use std::time::Duration;

use support::*;
use tonic::transport::Channel;
use tonic::Code;
use tutti_participant::ParticipantConfig;
use tutti_proto::bridge_v1 as pb;
use tutti_proto::bridge_v1::bridge_client::BridgeClient;

async fn allocate_relay(
    client: &mut BridgeClient<Channel>,
    relay_id: &str,
    controlling: bool,
) -> pb::RelayTransport {
    client
        .allocate_relay(pb::AllocateRelayRequest {
            conference_id: "c".into(),
            relay_id: relay_id.into(),
            controlling,
        })
        .await
        .expect("allocate relay")
        .into_inner()
        .transport
        .expect("relay transport")
}

fn update(
    relay_id: &str,
    transport: Option<pb::RelayTransport>,
    media: Option<pb::MediaList>,
    remotes: Option<Vec<pb::RemoteEndpoint>>,
) -> pb::UpdateRelayRequest {
    pb::UpdateRelayRequest {
        conference_id: "c".into(),
        relay_id: relay_id.into(),
        transport,
        media,
        remote_endpoints: remotes.map(|endpoints| pb::RemoteEndpointList { endpoints }),
    }
}

fn remote(config: &ParticipantConfig) -> pb::RemoteEndpoint {
    pb::RemoteEndpoint {
        endpoint_id: config.name.clone(),
        participant_id: config.name.clone(),
        sources: Some(source_list(config)),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_bridges_linked_by_a_relay() {
    if rerun_in_own_netns("two_bridges_linked_by_a_relay") {
        return;
    }
    let (near, far) = (BridgeProcess::start(&[]), BridgeProcess::start(&[]));
    let (mut a, mut b) = (near.client().await, far.client().await);
    for client in [&mut a, &mut b] {
        client
            .create_conference(pb::CreateConferenceRequest {
                conference_id: "c".into(),
                name: "room@muc".into(),
            })
            .await
            .unwrap();
    }
    let to_far = allocate_relay(&mut a, "to-far", true).await;
    let to_near = allocate_relay(&mut b, "to-near", false).await;
    assert_eq!(
        allocate_relay(&mut a, "to-far", true).await,
        to_far,
        "a retried allocation returns the same relay"
    );
    assert_ne!(to_far.link_id, 0);
    assert_eq!(
        to_far.dtls.as_ref().unwrap().setup,
        pb::DtlsSetup::Active as i32
    );
    assert_eq!(
        to_near.dtls.as_ref().unwrap().setup,
        pb::DtlsSetup::Passive as i32
    );

    // Bad requests.
    let err = a
        .allocate_relay(pb::AllocateRelayRequest {
            conference_id: "c".into(),
            relay_id: "to-far".into(),
            controlling: false,
        })
        .await
        .unwrap_err();
    assert_refused(&err, Code::InvalidArgument, "controlling=true");
    // Both sides controlling.
    let err = a
        .update_relay(update("to-far", Some(to_far.clone()), None, None))
        .await
        .unwrap_err();
    assert_refused(
        &err,
        Code::InvalidArgument,
        "the far side must be controlled",
    );
    let mut no_link = to_near.clone();
    no_link.link_id = 0;
    let err = a
        .update_relay(update("to-far", Some(no_link), None, None))
        .await
        .unwrap_err();
    assert!(err.message().contains("link_id"), "{}", err.message());
    let err = a
        .update_relay(update("nope", None, None, None))
        .await
        .unwrap_err();
    assert_refused(&err, Code::NotFound, "unknown relay \"nope\"");
    let err = a
        .expire_endpoint(pb::ExpireEndpointRequest {
            conference_id: "c".into(),
            endpoint_id: "to-far".into(),
        })
        .await
        .unwrap_err();
    assert!(err.message().contains("is a relay"), "{}", err.message());

    // The link, then a sender on the near bridge and a receiver on the far one.
    let sender_config = ParticipantConfig::new("sender");
    let mut receiver_config = ParticipantConfig::new("receiver");
    receiver_config.send_audio = false;
    receiver_config.send_video = false;
    let media = media_list(&sender_config);
    a.update_relay(update("to-far", Some(to_near), Some(media.clone()), None))
        .await
        .expect("near side of the relay");
    b.update_relay(update("to-near", Some(to_far), Some(media), None))
        .await
        .expect("far side of the relay");
    let sender = join(&mut a, "c", "sender", sender_config.clone()).await;
    // A participant behind the relay may not take an SSRC of one of the far bridge's own, nor
    // the id of one.
    let receiver = join(&mut b, "c", "receiver", receiver_config.clone()).await;
    let mut clash = remote(&sender_config);
    clash.sources = Some(source_list(&ParticipantConfig {
        audio_ssrc: receiver_config.audio_ssrc,
        ..sender_config.clone()
    }));
    let err = b
        .update_relay(update("to-near", None, None, Some(vec![clash])))
        .await
        .unwrap_err();
    assert_refused(
        &err,
        Code::AlreadyExists,
        "already signalled by endpoint \"receiver\"",
    );
    let err = b
        .update_relay(update(
            "to-near",
            None,
            None,
            Some(vec![remote(&receiver_config)]),
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists, "{}", err.message());
    b.update_relay(update(
        "to-near",
        None,
        None,
        Some(vec![remote(&sender_config)]),
    ))
    .await
    .expect("the sender behind the relay");
    let err = b
        .allocate_endpoint(pb::AllocateEndpointRequest {
            conference_id: "c".into(),
            endpoint_id: "sender".into(),
            dtls_setup: 0,
            participant_id: String::new(),
            receives_by_mid: false,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists, "{}", err.message());

    eventually(
        Duration::from_secs(10),
        "the receiver gets the sender's audio and video through the relay",
        || {
            received(&receiver, sender_config.video_ssrc) > 100
                && received(&receiver, sender_config.audio_ssrc) > 100
        },
    )
    .await;
    let (near_metrics, far_metrics) = (near.metrics().await, far.metrics().await);
    let relayed = near_metrics.get("tutti_bridge_relay_packets_sent_total");
    let arrived = far_metrics.get("tutti_bridge_relay_packets_received_total");
    println!("relay: near sent {relayed}, far received {arrived}");
    assert!(relayed > 200.0 && arrived > 200.0, "{relayed} {arrived}");
    // (What crossed before the far bridge was told of the sender is dropped there as
    // unknown_ssrc, as media from any endpoint before its sources are signalled.)
    for reason in [
        "relay_unknown_link",
        "srtp_auth_failed",
        "dtls_unknown_address",
    ] {
        assert_eq!(far_metrics.drop_count(reason), 0.0, "{reason}");
        assert_eq!(near_metrics.drop_count(reason), 0.0, "{reason}");
    }
    drop(sender);

    // Expiring the relay on the far bridge takes the participant behind it away.
    b.expire_relay(pb::ExpireRelayRequest {
        conference_id: "c".into(),
        relay_id: "to-near".into(),
    })
    .await
    .expect("expire relay");
    let err = b
        .expire_relay(pb::ExpireRelayRequest {
            conference_id: "c".into(),
            relay_id: "to-near".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let before = received(&receiver, sender_config.video_ssrc);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        received(&receiver, sender_config.video_ssrc) - before < 5,
        "nothing more comes once the relay is gone"
    );
}
