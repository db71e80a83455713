//! The gRPC control API: idempotent allocation, errors a person can act on, bridge info; a
//! watcher that stops reading its event stream costs bounded memory and is cut off.

mod support;

use support::*;
use tonic::Code;
use tutti_participant::ParticipantConfig;
use tutti_proto::bridge_v1 as pb;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_api_errors_and_idempotency() {
    if rerun_in_own_netns("control_api_errors_and_idempotency") {
        return;
    }
    let bridge = BridgeProcess::start(&[]);
    let mut client = bridge.client().await;
    let (status, body) = bridge.http_get("/health").await;
    assert!(status.contains(" 200 "), "{status}");
    assert_eq!(body, "ok\n");

    let err = client
        .allocate_endpoint(pb::AllocateEndpointRequest {
            conference_id: "nope".into(),
            endpoint_id: "e".into(),
            dtls_setup: 0,
            participant_id: String::new(),
            receives_by_mid: false,
        })
        .await
        .unwrap_err();
    assert_refused(&err, Code::NotFound, "unknown conference \"nope\"");

    let created = client
        .create_conference(pb::CreateConferenceRequest {
            conference_id: "c".into(),
            name: "room@muc".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(created.created);
    let again = client
        .create_conference(pb::CreateConferenceRequest {
            conference_id: "c".into(),
            name: "room@muc".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        !again.created,
        "creating an existing conference is idempotent"
    );

    let allocate = pb::AllocateEndpointRequest {
        conference_id: "c".into(),
        endpoint_id: "e1".into(),
        dtls_setup: 0,
        participant_id: String::new(),
        receives_by_mid: false,
    };
    let first = client
        .allocate_endpoint(allocate.clone())
        .await
        .unwrap()
        .into_inner();
    let second = client
        .allocate_endpoint(allocate)
        .await
        .unwrap()
        .into_inner();
    assert!(first.created && !second.created);
    let (t1, t2) = (first.transport.unwrap(), second.transport.unwrap());
    assert_eq!(
        t1.ice, t2.ice,
        "a retried allocation returns the same endpoint"
    );
    assert!(
        t1.ice.as_ref().unwrap().controlling,
        "the bridge is the controlling ICE agent"
    );
    assert_eq!(t1.candidates.len(), 1);
    assert_eq!(t1.candidates[0].port, bridge.bound.media.port() as u32);
    assert_eq!(
        t1.dtls.as_ref().unwrap().fingerprint,
        bridge.bound.fingerprint
    );
    assert_eq!(
        t1.dtls.as_ref().unwrap().setup,
        pb::DtlsSetup::Actpass as i32
    );

    let update = |endpoint: &str| pb::UpdateEndpointRequest {
        conference_id: "c".into(),
        endpoint_id: endpoint.into(),
        transport: None,
        media: None,
        sources: None,
        receive_mids: None,
    };
    let err = client.update_endpoint(update("ghost")).await.unwrap_err();
    assert_refused(&err, Code::NotFound, "unknown endpoint \"ghost\"");

    let participant_config = ParticipantConfig::new("p");
    let participant = tutti_participant::Participant::bind(participant_config.clone())
        .await
        .unwrap();
    let mut transport = remote_transport(&participant.local_description());
    transport.dtls.as_mut().unwrap().fingerprint = "not:a:fingerprint".into();
    let err = client
        .update_endpoint(pb::UpdateEndpointRequest {
            transport: Some(transport),
            ..update("e1")
        })
        .await
        .unwrap_err();
    assert_refused(&err, Code::InvalidArgument, "invalid DTLS fingerprint");

    let mut too_many = source_list(&participant_config);
    too_many.groups.clear();
    too_many.sources = (1..=21)
        .map(|ssrc| pb::Source {
            ssrc,
            media_type: pb::MediaType::Video as i32,
            ..Default::default()
        })
        .collect();
    let err = client
        .update_endpoint(pb::UpdateEndpointRequest {
            sources: Some(too_many),
            ..update("e1")
        })
        .await
        .unwrap_err();
    assert_refused(&err, Code::InvalidArgument, "too many sources");

    // What receivers get of a simulcast source: its first layer with that layer's RTX, under
    // the names the request gave; no answer about sources when none were sent.
    let mut simulcast = source_list(&participant_config);
    let video = |ssrc| pb::Source {
        ssrc,
        media_type: pb::MediaType::Video as i32,
        owner: "room@muc/p".into(),
        name: "p-v0".into(),
    };
    simulcast.sources.extend([video(9_001), video(9_002)]);
    simulcast.groups.push(pb::SourceGroup {
        semantics: "SIM".into(),
        ssrcs: vec![participant_config.video_ssrc, 9_001],
    });
    simulcast.groups.push(pb::SourceGroup {
        semantics: "FID".into(),
        ssrcs: vec![9_001, 9_002],
    });
    let forwarded = client
        .update_endpoint(pb::UpdateEndpointRequest {
            sources: Some(simulcast.clone()),
            ..update("e1")
        })
        .await
        .unwrap()
        .into_inner()
        .forwarded
        .expect("the forwarded view of the sources sent");
    let mut expected = simulcast.clone();
    expected
        .sources
        .retain(|s| s.ssrc != 9_001 && s.ssrc != 9_002);
    expected
        .groups
        .retain(|g| g.semantics == "FID" && g.ssrcs[0] != 9_001);
    let ssrcs = |list: &pb::SourceList| {
        let mut v: Vec<u32> = list.sources.iter().map(|s| s.ssrc).collect();
        v.sort();
        v
    };
    assert_eq!(ssrcs(&forwarded), ssrcs(&expected));
    assert_eq!(forwarded.groups, expected.groups);
    let described = forwarded
        .sources
        .iter()
        .find(|s| s.ssrc == participant_config.video_ssrc)
        .unwrap();
    assert_eq!(
        described,
        simulcast
            .sources
            .iter()
            .find(|s| s.ssrc == participant_config.video_ssrc)
            .unwrap()
    );
    let answer = client.update_endpoint(update("e1")).await.unwrap();
    assert_eq!(answer.into_inner().forwarded, None);

    // An SSRC another endpoint of the conference already signals cannot be taken over.
    client
        .update_endpoint(pb::UpdateEndpointRequest {
            sources: Some(source_list(&participant_config)),
            ..update("e1")
        })
        .await
        .unwrap();
    client
        .allocate_endpoint(pb::AllocateEndpointRequest {
            conference_id: "c".into(),
            endpoint_id: "e2".into(),
            dtls_setup: 0,
            participant_id: "bob".into(),
            receives_by_mid: false,
        })
        .await
        .unwrap();
    let err = client
        .update_endpoint(pb::UpdateEndpointRequest {
            sources: Some(source_list(&participant_config)),
            ..update("e2")
        })
        .await
        .unwrap_err();
    assert_refused(
        &err,
        Code::AlreadyExists,
        "already signalled by endpoint \"e1\"",
    );

    let err = client
        .expire_endpoint(pb::ExpireEndpointRequest {
            conference_id: "c".into(),
            endpoint_id: "ghost".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = client
        .expire_conference(pb::ExpireConferenceRequest {
            conference_id: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = client
        .create_conference(pb::CreateConferenceRequest {
            conference_id: String::new(),
            name: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let err = client
        .create_conference(pb::CreateConferenceRequest {
            conference_id: "long".into(),
            name: "x".repeat(1025),
        })
        .await
        .unwrap_err();
    assert_refused(&err, Code::InvalidArgument, "name");

    let info = client
        .get_info(pb::GetInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.media_address, bridge.bound.media.to_string());
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let info = client
        .get_info(pb::GetInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!((info.conferences, info.endpoints), (1, 2));
    assert!(info.stress >= 0.0);

    // What a focus that starts afresh finds: the conference, its name, its endpoints.
    let listed = client
        .list_conferences(pb::ListConferencesRequest {})
        .await
        .unwrap()
        .into_inner();
    let endpoint = |endpoint_id: &str, participant_id: &str| pb::EndpointInfo {
        endpoint_id: endpoint_id.into(),
        participant_id: participant_id.into(),
        state: pb::EndpointState::Allocated as i32,
    };
    assert_eq!(
        listed.conferences,
        [pb::ConferenceInfo {
            conference_id: "c".into(),
            name: "room@muc".into(),
            endpoints: vec![endpoint("e1", "e1"), endpoint("e2", "bob")],
        }]
    );

    let expired = client
        .expire_conference(pb::ExpireConferenceRequest {
            conference_id: "c".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(expired.endpoints_expired, 2);
    let listed = client
        .list_conferences(pb::ListConferencesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.conferences, []);
    participant.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_that_stops_reading_is_cut_off_not_buffered() {
    if rerun_in_own_netns("a_watcher_that_stops_reading_is_cut_off_not_buffered") {
        return;
    }
    use tokio_stream::StreamExt;
    let bridge = BridgeProcess::start(&[]);
    let mut client = bridge.client().await;
    // Opened and read up to its snapshot, then left unread while thousands of events happen.
    // What waits for it is what its HTTP/2 window lets the bridge send (hyper grants 2 MiB by
    // default, 30000 events; this watcher grants 64 KiB) and h2's send buffer (400 KiB).
    let small_window =
        tonic::transport::Endpoint::from_shared(format!("http://{}", bridge.bound.grpc))
            .unwrap()
            .initial_stream_window_size(65_535)
            .initial_connection_window_size(65_535)
            .connect()
            .await
            .unwrap();
    let mut stalled = pb::bridge_client::BridgeClient::new(small_window)
        .watch_events(pb::WatchEventsRequest {})
        .await
        .unwrap()
        .into_inner();
    stalled.next().await.unwrap().unwrap();
    let rss_before = bridge.rss_kib();
    client
        .create_conference(pb::CreateConferenceRequest {
            conference_id: "c".into(),
            name: "room@muc".into(),
        })
        .await
        .unwrap();
    // 6000 events (allocated, expired) of about 250 bytes: beyond the 4096 the bridge keeps
    // for watchers plus what the window and send buffer hold.
    for i in 0..3000 {
        let endpoint_id = format!("e{i:04}-{}", "x".repeat(200));
        client
            .allocate_endpoint(pb::AllocateEndpointRequest {
                conference_id: "c".into(),
                endpoint_id: endpoint_id.clone(),
                dtls_setup: 0,
                participant_id: String::new(),
                receives_by_mid: false,
            })
            .await
            .unwrap();
        client
            .expire_endpoint(pb::ExpireEndpointRequest {
                conference_id: "c".into(),
                endpoint_id,
            })
            .await
            .unwrap();
    }
    let grown_kib = bridge.rss_kib().saturating_sub(rss_before);
    println!("the bridge's RSS grew by {grown_kib} KiB with a watcher reading none of 6000 events");
    assert!(grown_kib < 8 * 1024, "grew {grown_kib} KiB");
    // Read now: what the stream held, then DATA_LOSS (reconnect for a fresh snapshot).
    let mut delivered = 0;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    let status = loop {
        match tokio::time::timeout_at(deadline, stalled.next()).await {
            Ok(Some(Ok(pb::BridgeEvent {
                event: Some(pb::bridge_event::Event::Endpoint(_)),
            }))) => delivered += 1,
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(status))) => break status,
            other => panic!("no DATA_LOSS after {delivered} endpoint events: {other:?}"),
        }
    };
    assert_eq!(status.code(), Code::DataLoss, "{status:?}");
    assert!(delivered < 6000, "{delivered} events were kept for it");
    // The bridge is fine: a new watcher gets a snapshot.
    let mut fresh = client
        .watch_events(pb::WatchEventsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(fresh.next().await.unwrap().is_ok());
}
