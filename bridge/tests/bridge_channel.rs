//! The bridge channel over a real WebSocket: the URL from AllocateEndpoint opens it, nothing
//! else does, messages reach the other endpoints with the true sender, garbage is counted and
//! harms nobody, and expiring an endpoint closes its socket; what a receiver asks for over it
//! reaches its allocator (seen through `/debug/receivers`). A client that stops reading costs
//! the bridge a bounded outbox, then its connection.

mod support;

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::Value;
use support::*;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{connect_async, MaybeTlsStream, WebSocketStream};
use tutti_proto::bridge_v1 as pb;

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

async fn allocate(
    client: &mut pb::bridge_client::BridgeClient<tonic::transport::Channel>,
    endpoint: &str,
    participant: &str,
) -> String {
    client
        .allocate_endpoint(pb::AllocateEndpointRequest {
            conference_id: "c".into(),
            endpoint_id: endpoint.into(),
            dtls_setup: 0,
            participant_id: participant.into(),
            receives_by_mid: false,
        })
        .await
        .unwrap()
        .into_inner()
        .transport
        .unwrap()
        .bridge_channel_url
}

/// A bridge with conference "c", and a client of its gRPC API.
async fn bridge_with_conference() -> (
    BridgeProcess,
    pb::bridge_client::BridgeClient<tonic::transport::Channel>,
) {
    bridge_with_conference_and(&[]).await
}

/// As [`bridge_with_conference`], the bridge started with these environment variables.
async fn bridge_with_conference_and(
    env: &[(&str, &str)],
) -> (
    BridgeProcess,
    pb::bridge_client::BridgeClient<tonic::transport::Channel>,
) {
    let bridge = BridgeProcess::start(env);
    let mut client = bridge.client().await;
    client
        .create_conference(pb::CreateConferenceRequest {
            conference_id: "c".into(),
            name: "room@muc".into(),
        })
        .await
        .unwrap();
    (bridge, client)
}

/// The next text message, skipping pings; None when the socket closed.
async fn next_text(socket: &mut Socket) -> Option<Value> {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(5), socket.next())
            .await
            .expect("a message within 5 s");
        match message {
            Some(Ok(Message::Text(text))) => return Some(serde_json::from_str(&text).unwrap()),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            _ => return None,
        }
    }
}

async fn open(url: &str) -> Socket {
    let (mut socket, _) = connect_async(url).await.expect("the channel opens");
    let hello = next_text(&mut socket).await.expect("a ServerHello");
    assert_eq!(hello["colibriClass"], "ServerHello");
    socket
}

async fn refused_with(url: &str) -> u16 {
    match connect_async(url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
        other => panic!("{url} was not refused: {:?}", other.map(|_| ())),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bridge_channel_relays_between_endpoints_and_refuses_strangers() {
    if rerun_in_own_netns("bridge_channel_relays_between_endpoints_and_refuses_strangers") {
        return;
    }
    let (bridge, mut client) = bridge_with_conference().await;
    let alice_url = allocate(&mut client, "e1", "alice").await;
    let bob_url = allocate(&mut client, "e2", "bob").await;
    let cyd_url = allocate(&mut client, "e3", "").await;
    assert!(
        alice_url.starts_with(&format!(
            "ws://{}/colibri-ws/bridge-1/c/e1?pwd=",
            bridge.bound.http
        )),
        "{alice_url}"
    );
    assert_ne!(alice_url, bob_url);
    assert_eq!(
        allocate(&mut client, "e1", "alice").await,
        alice_url,
        "allocating again returns the same URL"
    );

    let (base, _) = alice_url.split_once("?pwd=").unwrap();
    assert_eq!(refused_with(&format!("{base}?pwd=wrong")).await, 401);
    assert_eq!(refused_with(base).await, 401);
    let (bob_base, _) = bob_url.split_once("?pwd=").unwrap();
    let alice_password = alice_url.split_once("?pwd=").unwrap().1;
    assert_eq!(
        refused_with(&format!("{bob_base}?pwd={alice_password}")).await,
        401,
        "one endpoint's password opens no other"
    );
    let stranger = alice_url.replace("/e1?", "/e9?");
    assert_eq!(refused_with(&stranger).await, 404);

    let mut alice = open(&alice_url).await;
    let mut bob = open(&bob_url).await;
    let mut cyd = open(&cyd_url).await;

    // Garbage first: counted, and the sender's channel keeps working.
    alice.send(Message::text("not json")).await.unwrap();
    alice.send(Message::binary(vec![0u8; 16])).await.unwrap();
    alice
        .send(Message::text(
            r#"{"colibriClass":"EndpointMessage","to":42}"#,
        ))
        .await
        .unwrap();
    alice
        .send(Message::text(
            r#"{"colibriClass":"EndpointMessage","to":"","from":"mallory","msgPayload":{"n":1}}"#,
        ))
        .await
        .unwrap();
    for socket in [&mut bob, &mut cyd] {
        let got = next_text(socket).await.expect("the broadcast");
        assert_eq!(got["colibriClass"], "EndpointMessage");
        assert_eq!(got["from"], "alice", "the bridge names the true sender");
        assert_eq!(got["msgPayload"]["n"], 1);
    }
    bob.send(Message::text(
        r#"{"colibriClass":"EndpointMessage","to":"e3","msgPayload":"psst"}"#,
    ))
    .await
    .unwrap();
    let got = next_text(&mut cyd).await.expect("the direct message");
    assert_eq!(
        (got["from"].as_str(), got["msgPayload"].as_str()),
        (Some("bob"), Some("psst")),
        "an endpoint without a participant id is addressed by its endpoint id"
    );

    let metrics = bridge
        .metrics_when(|m| m.get("tutti_bridge_channel_messages_total{result=\"malformed\"}") >= 3.0)
        .await;
    assert_eq!(
        metrics.get("tutti_bridge_channel_messages_total{result=\"malformed\"}"),
        3.0
    );
    assert_eq!(
        metrics.get("tutti_bridge_channel_messages_total{result=\"relayed\"}"),
        2.0
    );
    assert_eq!(
        metrics.get("tutti_bridge_channel_connections_total{result=\"bad_password\"}"),
        3.0
    );
    assert_eq!(
        metrics.get("tutti_bridge_channel_connections_total{result=\"unknown_endpoint\"}"),
        1.0
    );
    assert_eq!(metrics.get("tutti_bridge_channels_open"), 3.0);

    client
        .expire_endpoint(pb::ExpireEndpointRequest {
            conference_id: "c".into(),
            endpoint_id: "e2".into(),
        })
        .await
        .unwrap();
    assert!(
        next_text(&mut bob).await.is_none(),
        "expiry closes the socket"
    );
    assert_eq!(refused_with(&bob_url).await, 404);
    alice
        .send(Message::text(
            r#"{"colibriClass":"EndpointMessage","to":"","msgPayload":{"n":2}}"#,
        ))
        .await
        .unwrap();
    assert_eq!(
        next_text(&mut cyd).await.expect("still relayed")["msgPayload"]["n"],
        2
    );

    client
        .expire_conference(pb::ExpireConferenceRequest {
            conference_id: "c".into(),
        })
        .await
        .unwrap();
    assert!(next_text(&mut alice).await.is_none());
    assert!(next_text(&mut cyd).await.is_none());
    let metrics = bridge
        .metrics_when(|m| m.get("tutti_bridge_channels_open") == 0.0)
        .await;
    assert_eq!(metrics.get("tutti_bridge_channels_open"), 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_receivers_ask_for_reaches_their_allocator() {
    if rerun_in_own_netns("what_receivers_ask_for_reaches_their_allocator") {
        return;
    }
    let (bridge, mut client) = bridge_with_conference().await;
    let alice_url = allocate(&mut client, "e1", "alice").await;
    allocate(&mut client, "e2", "bob").await;
    let report = |body: &str| -> Value {
        let all: Value = serde_json::from_str(body).expect("JSON");
        all.as_array()
            .unwrap()
            .iter()
            .find(|r| r["endpoint_id"] == "e1")
            .cloned()
            .expect("alice's report")
    };
    let (status, body) = bridge.http_get("/debug/receivers").await;
    assert!(status.contains("200"), "{status}");
    let before = report(&body);
    assert_eq!(before["constraints_received"], false);
    assert_eq!(before["default_max_height"], 180, "thumbnails until asked");
    // No media yet: the estimate is the configured initial figure (1 Gbit/s for test
    // bridges), bounded to the estimator's 100 Mbit/s.
    assert_eq!(before["estimate_limited_by"], "initial");
    assert_eq!(before["estimate_bps"], 100_000_000);
    assert_eq!(before["bandwidth_bps"], before["estimate_bps"]);

    let mut alice = open(&alice_url).await;
    // A malformed constraints message is counted and changes nothing; the channel stays open.
    alice
        .send(Message::text(
            r#"{"colibriClass":"ReceiverVideoConstraints","lastN":"two"}"#,
        ))
        .await
        .unwrap();
    // Stage view, as lib-jitsi-meet sends it.
    alice
        .send(Message::text(
            r#"{"colibriClass":"ReceiverVideoConstraints","lastN":1,"selectedEndpoints":[],
                "onStageEndpoints":["bob"],"defaultConstraints":{"maxHeight":180},
                "constraints":{"bob":{"maxHeight":720}},"assumedBandwidthBps":800000}"#,
        ))
        .await
        .unwrap();
    let mut after = Value::Null;
    for _ in 0..100 {
        let (_, body) = bridge.http_get("/debug/receivers").await;
        after = report(&body);
        if after["constraints_received"] == true {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(after["last_n"], 1);
    assert_eq!(after["on_stage"], serde_json::json!(["bob"]));
    assert_eq!(after["max_heights"], serde_json::json!([["bob", 720]]));
    assert_eq!(after["bandwidth_bps"], 800_000);
    let metrics = bridge.metrics().await;
    assert_eq!(
        metrics.get("tutti_bridge_channel_messages_total{result=\"constraints\"}"),
        1.0
    );
    assert_eq!(
        metrics.get("tutti_bridge_channel_messages_total{result=\"malformed\"}"),
        1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_costs_bounded_memory_and_is_let_go() {
    if rerun_in_own_netns("a_client_that_stops_reading_costs_bounded_memory_and_is_let_go") {
        return;
    }
    // The talker sends far beyond a client's message rate: not what is tested here.
    let (bridge, mut client) =
        bridge_with_conference_and(&[("TUTTI_BRIDGE_CHANNEL_MESSAGE_RATE", "0")]).await;
    let talker_url = allocate(&mut client, "e1", "talker").await;
    let reader_url = allocate(&mut client, "e2", "reader").await;
    let stalled_url = allocate(&mut client, "e3", "stalled").await;
    let mut talker = open(&talker_url).await;
    let mut reader = open(&reader_url).await;
    // Opened, then never read again: its socket's buffers fill, then its outbox.
    let _stalled = open(&stalled_url).await;
    let rss_before = bridge.rss_kib();

    // 60 MB of messages to everyone, 60 KiB each, ten at a time: the reader takes each batch
    // before the next is sent (its outbox holds 1 MiB: a faster burst would overflow it too).
    const MESSAGES: usize = 1000;
    let payload = "x".repeat(60_000);
    let got = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let reading = tokio::spawn({
        let got = got.clone();
        async move {
            while got.load(std::sync::atomic::Ordering::Relaxed) < MESSAGES {
                match tokio::time::timeout(Duration::from_secs(20), reader.next()).await {
                    Ok(Some(Ok(Message::Text(_)))) => {
                        got.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    Ok(Some(Ok(_))) => {}
                    _ => break,
                }
            }
        }
    });
    for n in 0..MESSAGES {
        let message = format!(
            r#"{{"colibriClass":"EndpointMessage","to":"","msgPayload":{{"n":{n},"pad":"{payload}"}}}}"#
        );
        talker.send(Message::text(message)).await.unwrap();
        if n % 10 == 9 {
            let deadline = std::time::Instant::now() + Duration::from_secs(20);
            while got.load(std::sync::atomic::Ordering::Relaxed) <= n {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the reader is stuck at {n}"
                );
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
    }
    reading.await.unwrap();
    assert_eq!(
        got.load(std::sync::atomic::Ordering::Relaxed),
        MESSAGES,
        "the reader lost nothing"
    );
    let grown_kib = bridge.rss_kib().saturating_sub(rss_before);
    println!("the bridge's RSS grew by {grown_kib} KiB while a client read none of 60 MB");
    // One outbox of 1 MiB, the WebSocket's write buffer and the allocator's slack; not the
    // 15 MB that 256 messages of 60 KiB would be, nor the 60 MB sent.
    assert!(grown_kib < 8 * 1024, "grew {grown_kib} KiB");
    let metrics = bridge.metrics().await;
    let dropped = metrics.get("tutti_bridge_channel_messages_total{result=\"dropped\"}");
    assert!(dropped > 500.0, "dropped for the stalled client: {dropped}");

    // Nothing it takes for 10 s: the bridge lets it go (and the others stay).
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let metrics = bridge.metrics().await;
        if metrics.get("tutti_bridge_channel_connections_total{result=\"closed_slow\"}") == 1.0 {
            // The talker's (the reader, done, has hung up).
            assert_eq!(metrics.get("tutti_bridge_channels_open"), 1.0);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the stalled client is still connected"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
