//! `/metrics` (Prometheus text) and `/health`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use prometheus_client::registry::Registry;

struct HttpState {
    registry: Registry,
    worker: Arc<std::thread::JoinHandle<()>>,
}

pub fn router(registry: Registry, worker: Arc<std::thread::JoinHandle<()>>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .with_state(Arc::new(HttpState { registry, worker }))
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
        (StatusCode::SERVICE_UNAVAILABLE, "media worker stopped\n")
    } else {
        (StatusCode::OK, "ok\n")
    }
}
