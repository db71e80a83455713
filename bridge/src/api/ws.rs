//! `/colibri-ws/{bridge}/{conference}/{endpoint}?pwd=...`: the bridge channel's WebSocket (only
//! the socket work is here; who may connect and where messages go is `crate::channel`), and
//! `/debug/receivers`, what the receivers asked for over it and what their allocators chose.

use std::sync::Arc;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;

use crate::channel::{self, Connection, Outcome, Refusal, MAX_MESSAGE_BYTES, WRITE_TIMEOUT};
use crate::control::Control;
use crate::media::limits::RateLimit;

/// WebSocket close code 1001 ("going away"): the endpoint expired or a newer connection of it
/// took over.
const GOING_AWAY: u16 = 1001;

pub fn router(control: Arc<Control>) -> Router {
    Router::new()
        .route("/colibri-ws/{bridge}/{conference}/{endpoint}", get(upgrade))
        .route("/debug/receivers", get(describe_receivers))
        .with_state(control)
}

/// `/debug/receivers`: every receiver's constraints, bandwidth and per-source layer choice
/// (JSON; see `media::core::describe`).
async fn describe_receivers(State(control): State<Arc<Control>>) -> Response {
    match control.describe_receivers().await {
        Ok(reports) => axum::Json(reports).into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")).into_response(),
    }
}

#[derive(Deserialize)]
struct Credentials {
    pwd: Option<String>,
}

async fn upgrade(
    State(control): State<Arc<Control>>,
    Path((bridge, conference, endpoint)): Path<(String, String, String)>,
    Query(credentials): Query<Credentials>,
    upgrade: WebSocketUpgrade,
) -> Response {
    if bridge != control.config.bridge_id {
        return (StatusCode::NOT_FOUND, "no such bridge here\n").into_response();
    }
    let password = credentials.pwd.unwrap_or_default();
    let connection = match control.channels.connect(&conference, &endpoint, &password) {
        Ok(connection) => connection,
        Err(refusal) => {
            let status = match refusal {
                Refusal::UnknownEndpoint => StatusCode::NOT_FOUND,
                Refusal::BadPassword => StatusCode::UNAUTHORIZED,
            };
            tracing::info!(%conference, %endpoint, %refusal, "bridge channel refused");
            return (status, format!("{refusal}\n")).into_response();
        }
    };
    upgrade
        .max_message_size(MAX_MESSAGE_BYTES)
        .max_frame_size(MAX_MESSAGE_BYTES)
        .on_upgrade(move |socket| serve(socket, control, conference, endpoint, connection))
}

async fn serve(
    mut socket: WebSocket,
    control: Arc<Control>,
    conference: String,
    endpoint: String,
    mut connection: Connection,
) {
    let hub = &control.channels;
    // The client's messages beyond its rate are dropped unread (the clock: this socket's age).
    let opened = std::time::Instant::now();
    let mut limit = RateLimit::new(control.config.channel_message_rate);
    if socket
        .send(Message::Text(channel::server_hello().into()))
        .await
        .is_ok()
    {
        loop {
            tokio::select! {
                incoming = socket.recv() => match incoming {
                    Some(Ok(Message::Text(_) | Message::Binary(_)))
                        if !limit.allow(opened.elapsed().as_micros() as i64) =>
                    {
                        hub.count_rate_limited();
                    }
                    Some(Ok(Message::Text(text))) => {
                        if let Outcome::Constraints(update) =
                            hub.receive(&conference, &endpoint, text.as_str())
                        {
                            if control.set_constraints(&conference, &endpoint, update).is_err() {
                                hub.count_worker_busy();
                            }
                        }
                    }
                    Some(Ok(Message::Binary(_))) => hub.count_malformed(),
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                },
                outgoing = connection.outbox.recv() => match outgoing {
                    Some(text) => {
                        // A client that stops reading fills its socket's buffers; its outbox
                        // then drops (channel.rs), and past WRITE_TIMEOUT it is let go.
                        match tokio::time::timeout(WRITE_TIMEOUT, socket.send(Message::Text(text.into()))).await {
                            Ok(Ok(())) => {}
                            Ok(Err(_)) => break,
                            Err(_) => {
                                tracing::info!(%conference, %endpoint, "bridge channel closed: the client read nothing for {WRITE_TIMEOUT:?}");
                                hub.count_slow_client();
                                break;
                            }
                        }
                    }
                    None => {
                        let close = CloseFrame {
                            code: GOING_AWAY,
                            reason: "endpoint expired or reconnected".into(),
                        };
                        let _ = socket.send(Message::Close(Some(close))).await;
                        break;
                    }
                },
            }
        }
    }
    hub.disconnect(&conference, &endpoint, connection.id);
}
