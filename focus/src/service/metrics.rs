//! The focus's Prometheus metrics and its HTTP endpoints (`/metrics`, `/health`).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tutti_focus::room::{Metric, ERROR_KINDS};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    pub state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: &'static str,
}

/// Everything the focus exports; cheap to update from the signalling loop.
pub struct Metrics {
    pub rooms: Gauge,
    pub participants: Gauge,
    /// Jingle sessions by state: `pending` (initiate sent), `active` (accepted).
    pub sessions: Family<StateLabel, Gauge>,
    /// Seconds from a participant's arrival to its session-initiate (CreateConference +
    /// AllocateEndpoint + offer).
    pub allocation_seconds: Histogram,
    /// Refused stanzas and failed operations, by kind.
    pub errors: Family<KindLabel, Counter>,
    /// Bridges of the pool that report their status.
    pub bridges_alive: Gauge,
    /// Bridges marked failed (silent, stream broken, shutting down).
    pub bridge_failures: Counter,
    /// Rooms whose conference moved to another bridge.
    pub conferences_moved: Counter,
    /// Relays linked between two bridges of a conference.
    relays_linked: Counter,
    /// Relays that failed (refused by a bridge, or timed out).
    relay_failures: Counter,
    /// 1 while the XMPP session is up (logged in), else 0.
    xmpp_connected: Gauge,
    registry: Registry,
}

impl Metrics {
    pub fn new() -> Arc<Metrics> {
        let rooms = Gauge::default();
        let participants = Gauge::default();
        let sessions = Family::<StateLabel, Gauge>::default();
        let allocation_seconds =
            Histogram::new([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0]);
        let errors = Family::<KindLabel, Counter>::default();
        let bridges_alive = Gauge::default();
        let bridge_failures = Counter::default();
        let conferences_moved = Counter::default();
        let relays_linked = Counter::default();
        let relay_failures = Counter::default();
        let xmpp_connected = Gauge::default();
        let mut registry = Registry::with_prefix("tutti_focus");
        registry.register(
            "bridges_alive",
            "Bridges of the pool that report their status",
            bridges_alive.clone(),
        );
        registry.register(
            "bridge_failures",
            "Bridges marked failed: silent, event stream broken, or shutting down",
            bridge_failures.clone(),
        );
        registry.register(
            "conferences_moved",
            "Conferences moved off a failed bridge (every participant re-invited)",
            conferences_moved.clone(),
        );
        registry.register(
            "relays_linked",
            "Relays linked between two bridges of a conference (cascading)",
            relays_linked.clone(),
        );
        registry.register(
            "relay_failures",
            "Relays between two bridges of a conference that failed (refused or timed out)",
            relay_failures.clone(),
        );
        registry.register(
            "xmpp_connected",
            "1 while the focus is logged in to the XMPP server, else 0",
            xmpp_connected.clone(),
        );
        registry.register("rooms", "MUC rooms the focus is in", rooms.clone());
        registry.register(
            "participants",
            "Occupants other than the focus in its rooms",
            participants.clone(),
        );
        registry.register(
            "jingle_sessions",
            "Jingle sessions by state",
            sessions.clone(),
        );
        registry.register(
            "allocation_seconds",
            "Time from a participant's arrival to its session-initiate",
            allocation_seconds.clone(),
        );
        registry.register(
            "errors",
            "Refused stanzas and failed operations by kind",
            errors.clone(),
        );
        for state in ["pending", "active"] {
            sessions.get_or_create(&StateLabel { state }).set(0);
        }
        // Every kind is exported from the start, at 0: a rate over a kind that has not
        // happened yet reads 0 rather than nothing.
        for &kind in ERROR_KINDS {
            errors.get_or_create(&KindLabel { kind }).inc_by(0);
        }
        Arc::new(Metrics {
            rooms,
            participants,
            sessions,
            allocation_seconds,
            errors,
            bridges_alive,
            bridge_failures,
            conferences_moved,
            relays_linked,
            relay_failures,
            xmpp_connected,
            registry,
        })
    }

    pub fn set_online(&self, online: bool) {
        self.xmpp_connected.set(i64::from(online));
    }

    pub fn is_online(&self) -> bool {
        self.xmpp_connected.get() == 1
    }

    pub fn error(&self, kind: &'static str) {
        self.errors.get_or_create(&KindLabel { kind }).inc();
    }

    /// Applies a room's metric event.
    pub fn record(&self, metric: Metric) {
        match metric {
            Metric::Rooms(change) => {
                self.rooms.inc_by(change);
            }
            Metric::Participants(change) => {
                self.participants.inc_by(change);
            }
            Metric::Sessions { state, change } => {
                self.sessions
                    .get_or_create(&StateLabel { state })
                    .inc_by(change);
            }
            Metric::Allocation(elapsed) => self.allocation_seconds.observe(elapsed.as_secs_f64()),
            Metric::Error(kind) => self.error(kind),
            Metric::RelayLinked => {
                self.relays_linked.inc();
            }
            Metric::RelayFailed => {
                self.relay_failures.inc();
            }
        }
    }

    fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

/// `/metrics` (OpenMetrics text) and `/health` (200 while logged in to XMPP, 503 otherwise).
pub fn router(metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/metrics", get(serve_metrics))
        .route("/health", get(serve_health))
        .with_state(metrics)
}

async fn serve_metrics(State(metrics): State<Arc<Metrics>>) -> impl IntoResponse {
    match metrics.encode() {
        Ok(text) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        ),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain")],
            "encoding the metrics failed\n".to_owned(),
        ),
    }
}

async fn serve_health(State(metrics): State<Arc<Metrics>>) -> impl IntoResponse {
    if metrics.is_online() {
        (StatusCode::OK, "ok\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not connected to the XMPP server\n",
        )
    }
}
