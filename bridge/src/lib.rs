//! Tutti's media bridge: a selective forwarding unit driven by the focus over gRPC.
//!
//! - `api/`: the gRPC control API, the HTTP endpoints (/metrics, /health) and the bridge
//!   channel's WebSocket.
//! - `control`: the control plane's registry of conferences and endpoints.
//! - `lifecycle`: operational, draining (SIGTERM), shutting down.
//! - `channel`: the bridge channel (a WebSocket per endpoint) and where its messages go.
//! - `media/`: the media plane: the sans-IO core (conferences, endpoints, the packet path) and
//!   the worker thread around it that owns the UDP socket and the clock.

pub mod api;
pub mod channel;
pub mod channel_messages;
pub mod config;
pub mod control;
pub mod lifecycle;
pub mod media;
pub mod metrics;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tutti_proto::bridge_v1::bridge_server::BridgeServer;

use crate::config::Config;
use crate::control::Control;
use crate::lifecycle::{BridgeState, Drain};
use crate::media::endpoint_settings;
use crate::media::stats::Snapshot;

/// The addresses a running bridge actually bound (ports of 0 in the config resolved).
#[derive(Clone, Debug, serde::Serialize)]
pub struct Bound {
    pub grpc: SocketAddr,
    pub http: SocketAddr,
    pub media: SocketAddr,
    pub fingerprint: String,
}

/// How often a draining bridge checks whether it is empty.
const DRAIN_CHECK: Duration = Duration::from_millis(100);
/// How long a bridge that is about to exit keeps its API up so that watchers hear it.
const SHUTTING_DOWN_NOTICE: Duration = Duration::from_millis(200);

/// Runs the bridge until `shutdown` completes, or until a drain that `drain` starts is over
/// (docs/bridge.md, Drain). `on_ready` is told the bound addresses once every listener is up.
pub async fn run(
    config: Config,
    on_ready: impl FnOnce(&Bound),
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    drain: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    // Read first: a bad file ends the start before any socket is bound.
    let grpc_tls = match config.grpc_tls()? {
        Some(files) => Some(api::tls::server_config(&files)?),
        None => None,
    };
    let cert = tutti_dtls::Certificate::generate().context("generating the DTLS certificate")?;
    let fingerprint = cert.fingerprint().to_string();
    let snapshot = Arc::new(Mutex::new(Snapshot::default()));
    let (event_tx, event_rx) = tokio::sync::mpsc::channel(control::EVENT_QUEUE);
    let events_dropped = prometheus_client::metrics::counter::Counter::default();
    let worker = media::worker::spawn(
        config.media_address,
        endpoint_settings(&config)?,
        cert,
        event_tx,
        events_dropped.clone(),
        snapshot.clone(),
    )
    .with_context(|| format!("binding the media socket {}", config.media_address))?;
    let grpc_listener = TcpListener::bind(config.grpc_address)
        .await
        .with_context(|| format!("binding the gRPC address {}", config.grpc_address))?;
    let http_listener = TcpListener::bind(config.http_address)
        .await
        .with_context(|| format!("binding the HTTP address {}", config.http_address))?;
    let bound = Bound {
        grpc: grpc_listener.local_addr()?,
        http: http_listener.local_addr()?,
        media: worker.media_address,
        fingerprint: fingerprint.clone(),
    };
    let rates = Arc::new(metrics::Rates::new(
        snapshot.clone(),
        config.max_packet_rate,
        config.endpoint_capacity,
    ));
    let drain_timeout = config.drain_timeout();
    let sweep_every = config.endpoint_expiry().min(Duration::from_secs(1));
    let channel_base = if config.bridge_channel_base_url.is_empty() {
        format!("ws://{}", bound.http)
    } else {
        config.bridge_channel_base_url.clone()
    };
    let control = Arc::new(Control::new(
        config,
        worker.media_address,
        fingerprint,
        snapshot.clone(),
        channel_base,
        worker.commands,
    ));
    let worker_thread = Arc::new(worker.thread);

    let pump = tokio::spawn({
        let control = control.clone();
        async move { control.pump_events(event_rx).await }
    });
    let sampler = tokio::spawn(rates.clone().run());
    let sweeper = tokio::spawn({
        let control = control.clone();
        async move {
            let mut tick = tokio::time::interval(sweep_every);
            loop {
                tick.tick().await;
                control.expire_silent(Instant::now());
            }
        }
    });
    let mut registry = metrics::registry(snapshot, rates.clone());
    control.channels.register_metrics(&mut registry);
    registry.register(
        "tutti_bridge_endpoints_expired_silent",
        "Endpoints the bridge expired by itself: no media and no control call for endpoint_expiry_secs",
        control.silent_expiries.clone(),
    );
    registry.register(
        "tutti_bridge_worker_events_dropped",
        "Events of the media worker dropped because the control plane's queue for them was full",
        events_dropped,
    );
    let tls_refusals = api::tls::Refusals::default();
    registry.register(
        "tutti_bridge_grpc_tls_refusals",
        "gRPC connections refused in the TLS handshake, by reason",
        tls_refusals.clone(),
    );
    let http = axum::serve(
        http_listener,
        api::http::router(registry, worker_thread, control.lifecycle.clone())
            .merge(api::ws::router(control.clone())),
    );
    let service = api::grpc::BridgeService {
        control: control.clone(),
        rates,
    };
    let router = tonic::transport::Server::builder().add_service(BridgeServer::new(service));
    let (grpc, acceptor): (GrpcServer, _) = match grpc_tls {
        Some(tls) => {
            let (incoming, acceptor) = api::tls::incoming(grpc_listener, tls, tls_refusals);
            (
                Box::pin(router.serve_with_incoming(incoming)),
                Some(acceptor),
            )
        }
        // Nagle off: a response written in more than one segment would otherwise wait for
        // the focus's delayed ACK (40 ms per call, measured with bench/focus).
        None => (
            Box::pin(
                router
                    .serve_with_incoming(TcpIncoming::from(grpc_listener).with_nodelay(Some(true))),
            ),
            None,
        ),
    };

    tracing::info!(
        grpc = %bound.grpc,
        grpc_tls = acceptor.is_some(),
        http = %bound.http,
        media = %bound.media,
        "bridge ready"
    );
    on_ready(&bound);
    let drained = {
        let control = control.clone();
        async move {
            drain.await;
            control.lifecycle.set(BridgeState::Draining);
            tracing::info!(
                endpoints = control.endpoint_count(),
                timeout_secs = drain_timeout.as_secs(),
                "draining: no new conferences"
            );
            let drain = Drain::new(Instant::now(), drain_timeout);
            let why = loop {
                if let Some(why) = drain.over(Instant::now(), control.endpoint_count()) {
                    break why;
                }
                tokio::time::sleep(DRAIN_CHECK).await;
            };
            tracing::info!(endpoints = control.endpoint_count(), "drained: {why}");
            control.lifecycle.set(BridgeState::ShuttingDown);
            tokio::time::sleep(SHUTTING_DOWN_NOTICE).await;
        }
    };
    tokio::select! {
        r = grpc => r.context("gRPC server failed")?,
        r = http => r.context("HTTP server failed")?,
        _ = shutdown => tracing::info!("shutting down"),
        _ = drained => tracing::info!("shutting down after the drain"),
    }
    pump.abort();
    sampler.abort();
    sweeper.abort();
    if let Some(acceptor) = acceptor {
        acceptor.abort();
    }
    Ok(())
}

type GrpcServer =
    Pin<Box<dyn Future<Output = Result<(), tonic::transport::Error>> + Send + 'static>>;
