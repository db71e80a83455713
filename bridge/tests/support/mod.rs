//! Harness for the bridge's end-to-end tests: every test runs the real `bridge` binary and
//! real test participants inside its own network namespace with only `lo` up, so no packet
//! can leave the machine (the bridge is a controlling ICE agent and would check any address):
//! `rerun_in_own_netns` (tutti-test-harness).

#![allow(dead_code)] // each test binary uses a different part of the harness

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::transport::Channel;
use tutti_participant::{LocalDescription, Participant, ParticipantConfig, RemoteDescription};
use tutti_proto::bridge_v1 as pb;
use tutti_proto::bridge_v1::bridge_client::BridgeClient;
pub use tutti_test_harness::netns::rerun_in_own_netns;

#[derive(serde::Deserialize, Debug, Clone)]
pub struct Bound {
    pub grpc: SocketAddr,
    pub http: SocketAddr,
    pub media: SocketAddr,
    pub fingerprint: String,
}

/// The real bridge binary, stopped when dropped.
pub struct BridgeProcess {
    child: Child,
    pub bound: Bound,
}

impl BridgeProcess {
    pub fn start(env: &[(&str, &str)]) -> BridgeProcess {
        let mut command = Command::new(env!("CARGO_BIN_EXE_bridge"));
        command
            .env("TUTTI_BRIDGE_GRPC_ADDRESS", "127.0.0.1:0")
            .env("TUTTI_BRIDGE_HTTP_ADDRESS", "127.0.0.1:0")
            .env("TUTTI_BRIDGE_MEDIA_ADDRESS", "127.0.0.1:0")
            // The test participants send one 2 Mbit/s encoding each: no receiver's video is to be
            // left out by the allocator's default bandwidth of 2.5 Mbit/s.
            .env("TUTTI_BRIDGE_RECEIVER_BANDWIDTH_BPS", "1000000000")
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("starting the bridge binary");
        let stdout = child.stdout.take().expect("bridge stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("reading the bridge's ready line");
        let bound: Bound = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("bridge ready line {line:?}: {e}"));
        BridgeProcess { child, bound }
    }

    /// Sends the bridge `signal` (SIGTERM: drain; SIGSTOP/SIGCONT: freeze, thaw).
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on the pid of a child this process started and has not reaped.
        let result = unsafe { libc::kill(self.child.id() as i32, signal) };
        assert_eq!(result, 0, "signal {signal} to the bridge");
    }

    /// Waits up to `timeout` for the bridge to exit: its exit status, or None if it runs on.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("waiting for the bridge") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The bridge's resident set size, KiB (`VmRSS`).
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("the bridge's /proc status");
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS")
    }

    pub async fn client(&self) -> BridgeClient<Channel> {
        BridgeClient::connect(format!("http://{}", self.bound.grpc))
            .await
            .expect("connecting to the bridge's gRPC API")
    }

    /// A plain HTTP/1.0 GET on the bridge's HTTP port: (status line, body).
    pub async fn http_get(&self, path: &str) -> (String, String) {
        let mut stream = tokio::net::TcpStream::connect(self.bound.http)
            .await
            .expect("connecting to the bridge's HTTP port");
        stream
            .write_all(format!("GET {path} HTTP/1.0\r\nHost: bridge\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
        let status = head.lines().next().unwrap_or_default().to_string();
        (status, body.to_string())
    }

    /// Scrapes /metrics: metric name with labels (as printed) → value.
    pub async fn metrics(&self) -> Metrics {
        let (_, body) = self.http_get("/metrics").await;
        let mut values = HashMap::new();
        for line in body.lines().filter(|l| !l.starts_with('#')) {
            if let Some((name, value)) = line.rsplit_once(' ') {
                if let Ok(v) = value.parse::<f64>() {
                    values.insert(name.to_string(), v);
                }
            }
        }
        Metrics(values)
    }

    /// Scrapes /metrics until `check` holds (the worker publishes every 100 ms) or 5 s pass;
    /// returns the last scrape either way, for the caller's assertions.
    pub async fn metrics_when(&self, check: impl Fn(&Metrics) -> bool) -> Metrics {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let metrics = self.metrics().await;
            if check(&metrics) || Instant::now() > deadline {
                return metrics;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for BridgeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Metrics(pub HashMap<String, f64>);

impl Metrics {
    pub fn get(&self, name: &str) -> f64 {
        self.0.get(name).copied().unwrap_or(0.0)
    }
    pub fn drop_count(&self, reason: &str) -> f64 {
        self.get(&format!("tutti_bridge_drops_total{{reason=\"{reason}\"}}"))
    }
}

pub fn remote_description(transport: &pb::Transport) -> RemoteDescription {
    let ice = transport.ice.as_ref().expect("ice parameters");
    RemoteDescription {
        ufrag: ice.ufrag.clone(),
        pwd: ice.pwd.clone(),
        candidates: transport
            .candidates
            .iter()
            .map(|c| SocketAddr::new(c.ip.parse().unwrap(), c.port as u16))
            .collect(),
        fingerprint: transport
            .dtls
            .as_ref()
            .expect("dtls parameters")
            .fingerprint
            .clone(),
    }
}

pub fn remote_transport(local: &LocalDescription) -> pb::RemoteTransport {
    pb::RemoteTransport {
        ice: Some(pb::IceParameters {
            ufrag: local.ufrag.clone(),
            pwd: local.pwd.clone(),
            controlling: false,
        }),
        candidates: local
            .candidates
            .iter()
            .enumerate()
            .map(|(i, addr)| pb::Candidate {
                foundation: i.to_string(),
                component: 1,
                protocol: "udp".into(),
                priority: 2_130_706_431 - i as u32,
                ip: addr.ip().to_string(),
                port: addr.port() as u32,
                r#type: "host".into(),
                generation: 0,
            })
            .collect(),
        dtls: Some(pb::DtlsParameters {
            hash: "sha-256".into(),
            fingerprint: local.fingerprint.clone(),
            setup: pb::DtlsSetup::Active as i32,
        }),
    }
}

const TWCC_URI: &str = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";

/// The media description a Jitsi-style focus would give for this participant.
pub fn media_list(config: &ParticipantConfig) -> pb::MediaList {
    let ext = |id: u8| {
        vec![pb::HeaderExtension {
            id: id as u32,
            uri: TWCC_URI.into(),
        }]
    };
    let fb = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    pb::MediaList {
        media: vec![
            pb::Media {
                r#type: pb::MediaType::Audio as i32,
                payload_types: vec![pb::PayloadType {
                    id: config.opus_pt as u32,
                    name: "opus".into(),
                    clock_rate: 48_000,
                    channels: 2,
                    rtcp_fb: fb(&["transport-cc"]),
                    ..Default::default()
                }],
                header_extensions: ext(config.twcc_ext_id),
                sends: true,
                receives: true,
            },
            pb::Media {
                r#type: pb::MediaType::Video as i32,
                payload_types: vec![
                    pb::PayloadType {
                        id: config.vp8_pt as u32,
                        name: "VP8".into(),
                        clock_rate: 90_000,
                        rtcp_fb: fb(&["ccm fir", "nack", "nack pli", "transport-cc"]),
                        ..Default::default()
                    },
                    pb::PayloadType {
                        id: config.rtx_pt as u32,
                        name: "rtx".into(),
                        clock_rate: 90_000,
                        rtx_apt: config.vp8_pt as u32,
                        ..Default::default()
                    },
                ],
                header_extensions: ext(config.twcc_ext_id),
                sends: true,
                receives: true,
            },
        ],
    }
}

/// The participant's sources: audio, video and its RTX partner (FID).
pub fn source_list(config: &ParticipantConfig) -> pb::SourceList {
    let source = |ssrc: u32, kind: pb::MediaType| pb::Source {
        ssrc,
        media_type: kind as i32,
        owner: config.name.clone(),
        name: format!("{}-{ssrc}", config.name),
    };
    pb::SourceList {
        sources: vec![
            source(config.audio_ssrc, pb::MediaType::Audio),
            source(config.video_ssrc, pb::MediaType::Video),
            source(config.video_rtx_ssrc, pb::MediaType::Video),
        ],
        groups: vec![pb::SourceGroup {
            semantics: "FID".into(),
            ssrcs: vec![config.video_ssrc, config.video_rtx_ssrc],
        }],
        outputs: Vec::new(),
        learnt_sources: Vec::new(),
    }
}

/// Allocates an endpoint, tells the bridge about the participant, and connects it.
pub async fn join(
    client: &mut BridgeClient<Channel>,
    conference: &str,
    endpoint: &str,
    config: ParticipantConfig,
) -> Participant {
    let sources = source_list(&config);
    let media = media_list(&config);
    join_with(client, conference, endpoint, config, sources, media).await
}

/// Like `join`, with the sources and media description the test chooses.
pub async fn join_with(
    client: &mut BridgeClient<Channel>,
    conference: &str,
    endpoint: &str,
    config: ParticipantConfig,
    sources: pb::SourceList,
    media: pb::MediaList,
) -> Participant {
    client
        .create_conference(pb::CreateConferenceRequest {
            conference_id: conference.into(),
            name: conference.into(),
        })
        .await
        .expect("create conference");
    let allocated = client
        .allocate_endpoint(pb::AllocateEndpointRequest {
            conference_id: conference.into(),
            endpoint_id: endpoint.into(),
            dtls_setup: pb::DtlsSetup::Actpass as i32,
            participant_id: String::new(),
            receives_by_mid: false,
        })
        .await
        .expect("allocate endpoint")
        .into_inner();
    let remote = remote_description(allocated.transport.as_ref().expect("transport"));
    let participant = Participant::bind(config)
        .await
        .expect("binding the participant");
    client
        .update_endpoint(pb::UpdateEndpointRequest {
            conference_id: conference.into(),
            endpoint_id: endpoint.into(),
            transport: Some(remote_transport(&participant.local_description())),
            media: Some(media),
            sources: Some(sources),
            receive_mids: None,
        })
        .await
        .expect("update endpoint");
    participant
        .connect(&remote, Duration::from_secs(10))
        .await
        .expect("participant connects (ICE + DTLS)");
    participant
}

/// A gRPC call refused with `code`, its message saying `says`.
pub fn assert_refused(err: &tonic::Status, code: tonic::Code, says: &str) {
    assert_eq!(err.code(), code, "{}", err.message());
    assert!(err.message().contains(says), "{}", err.message());
}

/// Polls `check` every 20 ms until it returns true or `timeout` passes.
pub async fn eventually(timeout: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn received(participant: &Participant, ssrc: u32) -> u64 {
    participant
        .stats()
        .received
        .get(&ssrc)
        .map_or(0, |s| s.packets)
}
