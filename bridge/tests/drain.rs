//! The bridge's status on its event stream, draining on SIGTERM, and endpoints it expires by
//! itself: the real binary in the test's own network namespace, driven over gRPC as a focus
//! would.

mod support;

use std::time::{Duration, Instant};

use support::*;
use tokio_stream::StreamExt;
use tonic::Streaming;
use tutti_participant::ParticipantConfig;
use tutti_proto::bridge_v1 as pb;

async fn create(client: &mut pb::bridge_client::BridgeClient<tonic::transport::Channel>, id: &str) {
    client
        .create_conference(pb::CreateConferenceRequest {
            conference_id: id.into(),
            name: id.into(),
        })
        .await
        .expect("create conference");
}

async fn allocate(
    client: &mut pb::bridge_client::BridgeClient<tonic::transport::Channel>,
    conference: &str,
    endpoint: &str,
) -> Result<pb::AllocateEndpointResponse, tonic::Status> {
    client
        .allocate_endpoint(pb::AllocateEndpointRequest {
            conference_id: conference.into(),
            endpoint_id: endpoint.into(),
            dtls_setup: pb::DtlsSetup::Actpass as i32,
            participant_id: String::new(),
            receives_by_mid: false,
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn expire(
    client: &mut pb::bridge_client::BridgeClient<tonic::transport::Channel>,
    conference: &str,
    endpoint: &str,
) {
    client
        .expire_endpoint(pb::ExpireEndpointRequest {
            conference_id: conference.into(),
            endpoint_id: endpoint.into(),
        })
        .await
        .expect("expire endpoint");
}

/// The next status on the stream (endpoint events skipped), and when it came.
async fn next_status(events: &mut Streaming<pb::BridgeEvent>) -> (pb::BridgeStatus, Instant) {
    loop {
        let event = tokio::time::timeout(Duration::from_secs(3), events.next())
            .await
            .expect("a status within 3 s")
            .expect("the stream is open")
            .expect("an event");
        if let Some(pb::bridge_event::Event::Status(status)) = event.event {
            return (status, Instant::now());
        }
    }
}

/// The first status in `state`, within `timeout`.
async fn status_in(
    events: &mut Streaming<pb::BridgeEvent>,
    state: pb::BridgeState,
    timeout: Duration,
) -> pb::BridgeStatus {
    let deadline = Instant::now() + timeout;
    loop {
        let (status, at) = next_status(events).await;
        if status.state == state as i32 {
            return status;
        }
        assert!(at < deadline, "no {state:?} status within {timeout:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_reports_identity_state_and_load_twice_a_second() {
    if rerun_in_own_netns("the_stream_reports_identity_state_and_load_twice_a_second") {
        return;
    }
    let bridge = BridgeProcess::start(&[
        ("TUTTI_BRIDGE_BRIDGE_ID", "jvb-eu-1"),
        ("TUTTI_BRIDGE_REGION", "eu-west"),
        ("TUTTI_BRIDGE_ENDPOINT_CAPACITY", "4"),
    ]);
    let mut client = bridge.client().await;
    let mut events = client
        .watch_events(pb::WatchEventsRequest {})
        .await
        .unwrap()
        .into_inner();
    let first = events.next().await.unwrap().unwrap();
    assert!(matches!(
        first.event,
        Some(pb::bridge_event::Event::Snapshot(_))
    ));
    let (status, mut last) = next_status(&mut events).await;
    assert_eq!(status.bridge_id, "jvb-eu-1");
    assert_eq!(status.region, "eu-west");
    assert_eq!(status.version, env!("CARGO_PKG_VERSION"));
    assert_eq!(status.state, pb::BridgeState::Operational as i32);
    assert_eq!(status.endpoint_capacity, 4);
    assert_eq!((status.endpoints, status.stress), (0, 0.0));
    assert_eq!(status.instance.len(), 16, "{status:?}");
    for _ in 0..4 {
        let (later, at) = next_status(&mut events).await;
        assert_eq!(later.instance, status.instance, "one process, one instance");
        let gap = at - last;
        assert!(
            gap > Duration::from_millis(300) && gap < Duration::from_millis(900),
            "statuses {gap:?} apart"
        );
        last = at;
    }

    // Two endpoints of a capacity of four: stress 0.5 by count alone.
    create(&mut client, "c").await;
    allocate(&mut client, "c", "e1").await.unwrap();
    allocate(&mut client, "c", "e2").await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let (status, at) = next_status(&mut events).await;
        if status.endpoints == 2 {
            assert_eq!((status.conferences, status.stress), (1, 0.5));
            break;
        }
        assert!(at < deadline, "the endpoints were not reported: {status:?}");
    }
    let info = client.get_info(pb::GetInfoRequest {}).await.unwrap();
    let info = info.into_inner();
    assert_eq!(info.region, "eu-west");
    assert_eq!(info.state, pb::BridgeState::Operational as i32);
    assert!(!info.shutting_down);

    // Another process (a restart at the same address, to the focus): another instance.
    let other = BridgeProcess::start(&[]);
    let mut events = other
        .client()
        .await
        .watch_events(pb::WatchEventsRequest {})
        .await
        .unwrap()
        .into_inner();
    let (restarted, _) = next_status(&mut events).await;
    assert_ne!(restarted.instance, status.instance);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draining_bridge_takes_no_new_conference_and_exits_when_its_last_endpoint_leaves() {
    if rerun_in_own_netns(
        "a_draining_bridge_takes_no_new_conference_and_exits_when_its_last_endpoint_leaves",
    ) {
        return;
    }
    let mut bridge = BridgeProcess::start(&[("TUTTI_BRIDGE_DRAIN_TIMEOUT_SECS", "60")]);
    let mut client = bridge.client().await;
    let listener = join(&mut client, "live", "a", ParticipantConfig::new("a")).await;
    let mut events = client
        .watch_events(pb::WatchEventsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!((bridge.http_get("/health").await.1), "ok\n");

    let told = Instant::now();
    bridge.signal(libc::SIGTERM);
    let status = status_in(
        &mut events,
        pb::BridgeState::Draining,
        Duration::from_secs(1),
    )
    .await;
    assert!(told.elapsed() < Duration::from_millis(500), "{status:?}");
    let (health_status, health_body) = bridge.http_get("/health").await;
    assert!(health_status.contains("503"), "{health_status}");
    assert_eq!(health_body, "draining\n");
    let refused = client
        .create_conference(pb::CreateConferenceRequest {
            conference_id: "new".into(),
            name: "new".into(),
        })
        .await
        .expect_err("a new conference on a draining bridge");
    assert_eq!(refused.code(), tonic::Code::Unavailable);
    assert!(refused.message().contains("draining"), "{refused:?}");
    // The conference it serves goes on: asked for again (idempotent), and a late participant.
    create(&mut client, "live").await;
    allocate(&mut client, "live", "late").await.unwrap();
    let info = client.get_info(pb::GetInfoRequest {}).await.unwrap();
    assert!(info.into_inner().shutting_down);

    // Media still flows while it drains.
    let second = join(&mut client, "live", "b", ParticipantConfig::new("b")).await;
    second.start_media();
    let ssrc = second.config().audio_ssrc;
    eventually(Duration::from_secs(5), "media while draining", || {
        received(&listener, ssrc) > 0
    })
    .await;
    assert_eq!(bridge.wait_exit(Duration::from_millis(300)), None);

    expire(&mut client, "live", "late").await;
    expire(&mut client, "live", "b").await;
    assert_eq!(bridge.wait_exit(Duration::from_millis(500)), None);
    let last_left = Instant::now();
    expire(&mut client, "live", "a").await;
    status_in(
        &mut events,
        pb::BridgeState::ShuttingDown,
        Duration::from_secs(1),
    )
    .await;
    let status = bridge
        .wait_exit(Duration::from_secs(2))
        .expect("the bridge exits once empty");
    let took = last_left.elapsed();
    assert!(status.success(), "{status:?}");
    assert!(
        took < Duration::from_secs(1),
        "exited {took:?} after the last endpoint left"
    );
    listener.close().await;
    second.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_ends_at_its_timeout_and_an_empty_bridge_exits_at_once() {
    if rerun_in_own_netns("a_drain_ends_at_its_timeout_and_an_empty_bridge_exits_at_once") {
        return;
    }
    let mut busy = BridgeProcess::start(&[("TUTTI_BRIDGE_DRAIN_TIMEOUT_SECS", "2")]);
    let mut client = busy.client().await;
    create(&mut client, "held").await;
    allocate(&mut client, "held", "stays").await.unwrap();
    let told = Instant::now();
    busy.signal(libc::SIGTERM);
    let status = busy
        .wait_exit(Duration::from_secs(4))
        .expect("the bridge exits at its drain timeout");
    let took = told.elapsed();
    assert!(status.success(), "{status:?}");
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(3),
        "exited {took:?} after SIGTERM with a drain timeout of 2 s"
    );

    // SIGTERM as soon as each ready line is read: the handler is in place by then (before it
    // was installed later, 12 of 100 such bridges died of the signal instead of draining).
    for _ in 0..10 {
        let mut idle = BridgeProcess::start(&[]);
        let told = Instant::now();
        idle.signal(libc::SIGTERM);
        let status = idle
            .wait_exit(Duration::from_secs(1))
            .expect("an empty bridge exits within 1 s of SIGTERM");
        assert!(
            status.success(),
            "an empty bridge told to drain: {status:?}"
        );
        assert!(told.elapsed() < Duration::from_secs(1));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_silent_on_media_and_signalling_are_expired_by_the_bridge() {
    if rerun_in_own_netns("endpoints_silent_on_media_and_signalling_are_expired_by_the_bridge") {
        return;
    }
    let bridge = BridgeProcess::start(&[
        ("TUTTI_BRIDGE_ENDPOINT_EXPIRY_SECS", "2"),
        ("TUTTI_BRIDGE_CONSENT_TIMEOUT_SECS", "1"),
    ]);
    let mut client = bridge.client().await;
    let mut events = client
        .watch_events(pb::WatchEventsRequest {})
        .await
        .unwrap()
        .into_inner();
    // One never given a transport, one whose participant vanishes, one that keeps talking.
    create(&mut client, "c").await;
    allocate(&mut client, "c", "forgotten").await.unwrap();
    let vanishing = join(&mut client, "c", "vanishing", ParticipantConfig::new("v")).await;
    let talker = join(&mut client, "c", "talker", ParticipantConfig::new("t")).await;
    talker.start_media();
    vanishing.vanish().await;

    let start = Instant::now();
    let mut expired = Vec::new();
    while expired.len() < 2 {
        let event = tokio::time::timeout(Duration::from_secs(8), events.next())
            .await
            .expect("expiries within 8 s")
            .unwrap()
            .unwrap();
        if let Some(pb::bridge_event::Event::Endpoint(e)) = event.event {
            if e.state == pb::EndpointState::Expired as i32 {
                expired.push((e.endpoint_id, start.elapsed()));
            }
        }
    }
    expired.sort();
    assert_eq!(expired[0].0, "forgotten");
    assert_eq!(expired[1].0, "vanishing");
    // The forgotten one: 2 s after its allocation; the vanished one: consent lost (1 s), then
    // 2 s more.
    assert!(expired[0].1 >= Duration::from_millis(1500), "{expired:?}");
    assert!(expired[1].1 >= Duration::from_millis(2500), "{expired:?}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let metrics = bridge.metrics().await;
    assert_eq!(
        metrics.get("tutti_bridge_endpoints"),
        1.0,
        "the talker stays"
    );
    assert_eq!(
        metrics.get("tutti_bridge_endpoints_expired_silent_total"),
        2.0
    );
    talker.close().await;
}
