//! Endpoint expiry frees everything: media stops, the endpoint count and the bridge's own
//! endpoint-state memory gauge return to where they started, over many allocate → media →
//! expire cycles. Also: ICE failure, DTLS failure and consent time-out are reported as events.

mod support;

use std::time::Duration;

use support::*;
use tokio_stream::StreamExt;
use tutti_participant::{Participant, ParticipantConfig};
use tutti_proto::bridge_v1 as pb;

/// Cycles to run; the bar is 1,000 (override with TUTTI_EXPIRY_CYCLES).
fn cycles() -> usize {
    std::env::var("TUTTI_EXPIRY_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_endpoints_free_their_state() {
    if rerun_in_own_netns("expired_endpoints_free_their_state") {
        return;
    }
    let bridge = BridgeProcess::start(&[]);
    let mut client = bridge.client().await;
    // The listener's camera is signalled but sends nothing: a NACK cache is made the first
    // time an encoding is forwarded, and one made for the listener's video as the cyclers
    // come would be the listener's state, not a cycler's left behind.
    let mut listening = ParticipantConfig::new("listener");
    listening.send_video = false;
    let listener = join(&mut client, "room", "listener", listening).await;
    // Let every periodic exchange (its sender reports, the bridge's receiver reports and
    // feedback) happen, so the listener's own state has its steady size before measuring.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let start = bridge.metrics().await;
    let start_bytes = start.get("tutti_bridge_endpoint_state_bytes");
    assert_eq!(start.get("tutti_bridge_endpoints"), 1.0);
    assert!(start_bytes > 0.0);

    let total = cycles();
    let parallel = 4;
    let mut done = 0;
    while done < total {
        let batch = parallel.min(total - done);
        let mut joins = Vec::new();
        for i in 0..batch {
            let mut client = client.clone();
            let id = format!("cycler-{}", done + i);
            joins.push(tokio::spawn(async move {
                let p = join(&mut client, "room", &id, ParticipantConfig::new(&id)).await;
                p.start_media();
                (id, p)
            }));
        }
        let mut cyclers: Vec<(String, Participant)> = Vec::new();
        for j in joins {
            cyclers.push(j.await.expect("cycle task"));
        }
        for (_, p) in &cyclers {
            let ssrc = p.config().audio_ssrc;
            eventually(
                Duration::from_secs(5),
                "the listener receives the cycler's media",
                || received(&listener, ssrc) > 0,
            )
            .await;
        }
        for (id, p) in cyclers {
            client
                .expire_endpoint(pb::ExpireEndpointRequest {
                    conference_id: "room".into(),
                    endpoint_id: id,
                })
                .await
                .expect("expire endpoint");
            if done == 0 {
                // The first time, check that media really stops after expiry.
                let ssrc = p.config().audio_ssrc;
                tokio::time::sleep(Duration::from_millis(100)).await;
                let before = received(&listener, ssrc);
                tokio::time::sleep(Duration::from_millis(300)).await;
                assert_eq!(
                    received(&listener, ssrc),
                    before,
                    "media still forwarded after expiry"
                );
            }
            p.close().await;
        }
        done += batch;
    }
    let end = bridge
        .metrics_when(|m| m.get("tutti_bridge_endpoint_state_bytes") == start_bytes)
        .await;
    assert_eq!(
        end.get("tutti_bridge_endpoints"),
        1.0,
        "endpoints left behind"
    );
    assert_eq!(
        end.get("tutti_bridge_endpoint_state_bytes"),
        start_bytes,
        "endpoint state memory after {total} cycles differs from the start"
    );
    let info = client
        .get_info(pb::GetInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.endpoints, 1);
    listener.close().await;
}

async fn next_state(
    events: &mut tonic::Streaming<pb::BridgeEvent>,
    endpoint: &str,
) -> (pb::EndpointState, String) {
    loop {
        let event = tokio::time::timeout(Duration::from_secs(15), events.next())
            .await
            .expect("an event within 15 s")
            .expect("event stream open")
            .expect("event");
        if let Some(pb::bridge_event::Event::Endpoint(e)) = event.event {
            if e.endpoint_id == endpoint && e.state != pb::EndpointState::Allocated as i32 {
                return (pb::EndpointState::try_from(e.state).unwrap(), e.detail);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_reported_as_events() {
    if rerun_in_own_netns("failures_are_reported_as_events") {
        return;
    }
    let bridge = BridgeProcess::start(&[
        ("TUTTI_BRIDGE_ICE_TIMEOUT_SECS", "2"),
        ("TUTTI_BRIDGE_CONSENT_TIMEOUT_SECS", "2"),
    ]);
    let mut client = bridge.client().await;
    let mut events = client
        .watch_events(pb::WatchEventsRequest {})
        .await
        .unwrap()
        .into_inner();
    let first = events.next().await.unwrap().unwrap();
    assert!(
        matches!(first.event, Some(pb::bridge_event::Event::Snapshot(_))),
        "the stream starts with a snapshot"
    );

    // ICE: the only candidate is a port nobody listens on.
    client
        .create_conference(pb::CreateConferenceRequest {
            conference_id: "f".into(),
            name: String::new(),
        })
        .await
        .unwrap();
    client
        .allocate_endpoint(pb::AllocateEndpointRequest {
            conference_id: "f".into(),
            endpoint_id: "dead".into(),
            dtls_setup: 0,
            participant_id: String::new(),
            receives_by_mid: false,
        })
        .await
        .unwrap();
    let ghost = Participant::bind(ParticipantConfig::new("ghost"))
        .await
        .unwrap();
    let mut transport = remote_transport(&ghost.local_description());
    ghost.close().await;
    transport.candidates[0].port = 9;
    client
        .update_endpoint(pb::UpdateEndpointRequest {
            conference_id: "f".into(),
            endpoint_id: "dead".into(),
            transport: Some(transport),
            media: None,
            sources: None,
            receive_mids: None,
        })
        .await
        .unwrap();
    assert_eq!(
        next_state(&mut events, "dead").await.0,
        pb::EndpointState::IceFailed
    );

    // DTLS: the bridge was told a fingerprint that is not the participant's certificate.
    let allocated = client
        .allocate_endpoint(pb::AllocateEndpointRequest {
            conference_id: "f".into(),
            endpoint_id: "liar".into(),
            dtls_setup: 0,
            participant_id: String::new(),
            receives_by_mid: false,
        })
        .await
        .unwrap()
        .into_inner();
    let liar = Participant::bind(ParticipantConfig::new("liar"))
        .await
        .unwrap();
    let mut transport = remote_transport(&liar.local_description());
    transport.dtls.as_mut().unwrap().fingerprint =
        (0..32).map(|_| "AB").collect::<Vec<_>>().join(":");
    client
        .update_endpoint(pb::UpdateEndpointRequest {
            conference_id: "f".into(),
            endpoint_id: "liar".into(),
            transport: Some(transport),
            media: None,
            sources: None,
            receive_mids: None,
        })
        .await
        .unwrap();
    let remote = remote_description(allocated.transport.as_ref().unwrap());
    let _ = liar.connect(&remote, Duration::from_secs(3)).await;
    let (state, detail) = next_state(&mut events, "liar").await;
    assert_eq!(state, pb::EndpointState::DtlsFailed, "{detail}");
    liar.close().await;

    // Consent: a connected participant goes silent.
    let quiet = join(&mut client, "f", "quiet", ParticipantConfig::new("quiet")).await;
    assert_eq!(
        next_state(&mut events, "quiet").await.0,
        pb::EndpointState::Connected
    );
    quiet.vanish().await;
    let (state, detail) = next_state(&mut events, "quiet").await;
    assert_eq!(state, pb::EndpointState::TimedOut, "{detail}");

    let metrics = bridge
        .metrics_when(|m| m.get("tutti_bridge_consent_timeouts_total") > 0.0)
        .await;
    assert_eq!(metrics.get("tutti_bridge_ice_failures_total"), 1.0);
    assert_eq!(metrics.get("tutti_bridge_dtls_failures_total"), 1.0);
    assert_eq!(metrics.get("tutti_bridge_consent_timeouts_total"), 1.0);

    // A watcher that connects now gets every endpoint's current state first.
    let mut late = client
        .watch_events(pb::WatchEventsRequest {})
        .await
        .unwrap()
        .into_inner();
    let Some(pb::bridge_event::Event::Snapshot(snapshot)) =
        late.next().await.unwrap().unwrap().event
    else {
        panic!("no snapshot first");
    };
    let state_of = |id: &str| {
        snapshot
            .endpoints
            .iter()
            .find(|e| e.endpoint_id == id)
            .map(|e| e.state)
    };
    assert_eq!(state_of("dead"), Some(pb::EndpointState::IceFailed as i32));
    assert_eq!(state_of("liar"), Some(pb::EndpointState::DtlsFailed as i32));
    assert_eq!(state_of("quiet"), Some(pb::EndpointState::TimedOut as i32));
}
