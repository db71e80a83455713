//! `/metrics` (Prometheus text) and `/health`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use prometheus_client::registry::Registry;

use crate::lifecycle::{BridgeState, Lifecycle};

struct HttpState {
    registry: Registry,
    worker: Arc<std::thread::JoinHandle<()>>,
    lifecycle: Lifecycle,
}

pub fn router(
    registry: Registry,
    worker: Arc<std::thread::JoinHandle<()>>,
    lifecycle: Lifecycle,
) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .with_state(Arc::new(HttpState {
            registry,
            worker,
            lifecycle,
        }))
}

async fn metrics(State(state): State<Arc<HttpState>>) -> impl IntoResponse {
    let mut body = String::new();
    match prometheus_client::encoding::text::encode(&mut body, &state.registry) {
        Ok(()) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            body,
        )
            .into_response(),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "encoding metrics failed").into_response(),
    }
}

async fn health(State(state): State<Arc<HttpState>>) -> impl IntoResponse {
    if state.worker.is_finished() {
        return (StatusCode::SERVICE_UNAVAILABLE, "media worker stopped\n");
    }
    match state.lifecycle.state() {
        BridgeState::Operational => (StatusCode::OK, "ok\n"),
        BridgeState::Draining => (StatusCode::SERVICE_UNAVAILABLE, "draining\n"),
        BridgeState::ShuttingDown => (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n"),
    }
}
