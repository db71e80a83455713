//! The bridge channel: one WebSocket per endpoint carrying Jitsi's colibri JSON messages
//! (`{"colibriClass": ...}`). Clients reach each other through it (EndpointMessage,
//! EndpointStats) and, with lib-jitsi-meet, a session offer without one makes the browser open
//! an SCTP data channel the bridge does not offer, which leaves its peer connection asking for a
//! renegotiation that can never succeed — a new answer every few tens of milliseconds.
//!
//! This module is the channel's logic: who may connect (a per-endpoint password minted at
//! allocation) and where each message goes. `api::ws` is the socket shell around it. It is
//! control-plane traffic, so one mutex over the hub is fine.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use rand::distr::{Alphanumeric, SampleString};
use serde_json::{Map, Value};
use tokio::sync::mpsc;

use crate::channel_messages::{self, ClientMessage};
use crate::media::constraints::ConstraintsUpdate;

/// Messages waiting for one slow client before further ones to it are dropped (and counted).
pub const OUTBOX_CAPACITY: usize = 256;
/// Bytes of messages waiting for one slow client, likewise (relayed messages may be up to
/// [`MAX_MESSAGE_BYTES`] each: 256 of them would be 16 MiB).
pub const OUTBOX_BYTES: usize = 1024 * 1024;
/// How long writing one message to a client's socket may take: a client that does not read
/// for that long is disconnected (its socket task would wait for ever, even after its
/// endpoint expired).
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest message a client may send; bigger frames close its socket.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
const PASSWORD_LENGTH: usize = 24;

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("unknown conference or endpoint")]
    UnknownEndpoint,
    #[error("wrong bridge-channel password")]
    BadPassword,
}

/// What became of one message from a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Passed to this many other endpoints' sockets.
    Relayed(usize),
    /// Addressed to an endpoint that has no open channel in the conference.
    Undeliverable,
    /// Not a JSON object with a string `colibriClass`, or a known class with fields of the
    /// wrong types.
    Malformed,
    /// What the receiver wants forwarded (ReceiverVideoConstraints and the older messages):
    /// for its allocator.
    Constraints(ConstraintsUpdate),
    /// A well-formed message the bridge does not act on (e.g. VideoTypeMessage: a source that
    /// stops sending leaves every allocation by itself).
    Ignored,
}

/// An accepted connection: its id (a later connection of the same endpoint replaces it) and
/// the messages to write to its socket. The receiver ends when the endpoint expires or a newer
/// connection takes over.
pub struct Connection {
    pub id: u64,
    pub outbox: OutboxReceiver,
}

/// Where messages for one connection wait: at most [`OUTBOX_CAPACITY`] messages and
/// [`OUTBOX_BYTES`] bytes.
#[derive(Clone)]
struct Outbox {
    sender: mpsc::Sender<String>,
    bytes: Arc<AtomicUsize>,
}

impl Outbox {
    /// Queues `text`, or gives it up when the outbox is full or closed.
    fn try_send(&self, text: String) -> Result<(), ()> {
        let len = text.len();
        if self.bytes.fetch_add(len, Ordering::Relaxed) + len > OUTBOX_BYTES {
            self.bytes.fetch_sub(len, Ordering::Relaxed);
            return Err(());
        }
        self.sender.try_send(text).map_err(|_| {
            self.bytes.fetch_sub(len, Ordering::Relaxed);
        })
    }
}

/// The socket's end of an [`Outbox`].
pub struct OutboxReceiver {
    receiver: mpsc::Receiver<String>,
    bytes: Arc<AtomicUsize>,
}

impl OutboxReceiver {
    /// The next message; None once the endpoint expired or a newer connection took over.
    pub async fn recv(&mut self) -> Option<String> {
        let text = self.receiver.recv().await?;
        self.bytes.fetch_sub(text.len(), Ordering::Relaxed);
        Some(text)
    }

    pub fn try_recv(&mut self) -> Result<String, mpsc::error::TryRecvError> {
        let text = self.receiver.try_recv()?;
        self.bytes.fetch_sub(text.len(), Ordering::Relaxed);
        Ok(text)
    }
}

fn outbox() -> (Outbox, OutboxReceiver) {
    let (sender, receiver) = mpsc::channel(OUTBOX_CAPACITY);
    let bytes = Arc::new(AtomicUsize::new(0));
    (
        Outbox {
            sender,
            bytes: bytes.clone(),
        },
        OutboxReceiver { receiver, bytes },
    )
}

struct Member {
    participant_id: String,
    password: String,
    open: Option<(u64, Outbox)>,
    /// The latest LastNEndpointsChangeEvent for it, sent again to each new connection.
    forwarded: Option<String>,
    /// The conference's latest DominantSpeakerEndpointChangeEvent, likewise.
    dominant: Option<String>,
    /// The latest SenderVideoConstraints for it, likewise.
    sender_constraints: Option<String>,
}

#[derive(Default)]
struct Hub {
    /// conference id → endpoint id → member.
    conferences: HashMap<String, HashMap<String, Member>>,
    next_connection: u64,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

/// The hub's counters, exported in /metrics.
#[derive(Default)]
struct ChannelMetrics {
    connections: Family<ResultLabel, Counter>,
    messages: Family<ResultLabel, Counter>,
    open: Gauge,
}

#[derive(Default)]
pub struct ChannelHub {
    hub: Mutex<Hub>,
    metrics: ChannelMetrics,
}

impl ChannelHub {
    fn hub(&self) -> std::sync::MutexGuard<'_, Hub> {
        self.hub.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn register_metrics(&self, registry: &mut Registry) {
        registry.register(
            "tutti_bridge_channel_connections",
            "Bridge-channel WebSocket connection attempts, by result",
            self.metrics.connections.clone(),
        );
        registry.register(
            "tutti_bridge_channel_messages",
            "Bridge-channel messages from clients, by what became of them (dropped: a \
             recipient's outbox was full)",
            self.metrics.messages.clone(),
        );
        registry.register(
            "tutti_bridge_channels_open",
            "Open bridge-channel WebSockets",
            self.metrics.open.clone(),
        );
    }

    fn count(&self, family: &Family<ResultLabel, Counter>, result: &'static str, n: u64) {
        family.get_or_create(&ResultLabel { result }).inc_by(n);
    }

    /// Makes an endpoint reachable; returns the password its bridge-channel URL carries.
    /// Adding an endpoint again keeps its password.
    pub fn add(&self, conference_id: &str, endpoint_id: &str, participant_id: &str) -> String {
        let mut hub = self.hub();
        let conference = hub.conferences.entry(conference_id.to_owned()).or_default();
        let dominant = conference.values().find_map(|m| m.dominant.clone());
        let member = conference
            .entry(endpoint_id.to_owned())
            .or_insert_with(|| Member {
                participant_id: participant_id.to_owned(),
                password: Alphanumeric.sample_string(&mut rand::rng(), PASSWORD_LENGTH),
                open: None,
                forwarded: None,
                dominant,
                sender_constraints: None,
            });
        member.password.clone()
    }

    /// Forgets an endpoint; its open socket (if any) is closed.
    pub fn remove(&self, conference_id: &str, endpoint_id: &str) {
        let mut hub = self.hub();
        if let Some(conference) = hub.conferences.get_mut(conference_id) {
            if let Some(member) = conference.remove(endpoint_id) {
                self.closed(member.open.is_some());
            }
        }
    }

    pub fn remove_conference(&self, conference_id: &str) {
        let mut hub = self.hub();
        if let Some(conference) = hub.conferences.remove(conference_id) {
            for member in conference.into_values() {
                self.closed(member.open.is_some());
            }
        }
    }

    fn closed(&self, was_open: bool) {
        if was_open {
            self.metrics.open.dec();
        }
    }

    /// Accepts a client that knows the endpoint's password, replacing any earlier connection
    /// of the same endpoint (a client reconnecting after a network change).
    pub fn connect(
        &self,
        conference_id: &str,
        endpoint_id: &str,
        password: &str,
    ) -> Result<Connection, Refusal> {
        let mut guard = self.hub();
        let hub = &mut *guard;
        let Some(member) = hub
            .conferences
            .get_mut(conference_id)
            .and_then(|c| c.get_mut(endpoint_id))
        else {
            self.count(&self.metrics.connections, "unknown_endpoint", 1);
            return Err(Refusal::UnknownEndpoint);
        };
        if !same_secret(member.password.as_bytes(), password.as_bytes()) {
            self.count(&self.metrics.connections, "bad_password", 1);
            return Err(Refusal::BadPassword);
        }
        hub.next_connection += 1;
        let id = hub.next_connection;
        let (sender, outbox) = outbox();
        for latest in [
            &member.forwarded,
            &member.dominant,
            &member.sender_constraints,
        ]
        .into_iter()
        .flatten()
        {
            let _ = sender.try_send(latest.clone());
        }
        if member.open.replace((id, sender)).is_none() {
            self.metrics.open.inc();
        }
        self.count(&self.metrics.connections, "accepted", 1);
        Ok(Connection { id, outbox })
    }

    /// Tells an endpoint which endpoints it now gets video from (LastNEndpointsChangeEvent),
    /// now if its channel is open, and on every later connection.
    pub fn send_forwarded(&self, conference_id: &str, endpoint_id: &str, endpoints: &[String]) {
        let ids: Vec<&str> = endpoints.iter().map(String::as_str).collect();
        let text = channel_messages::last_n_endpoints_changed(&ids);
        self.send_and_keep(conference_id, endpoint_id, text, |m| &mut m.forwarded);
    }

    /// Sends `text` to one endpoint now if its channel is open, and keeps it in the slot `kept`
    /// of that endpoint for every later connection.
    fn send_and_keep(
        &self,
        conference_id: &str,
        endpoint_id: &str,
        text: String,
        kept: impl FnOnce(&mut Member) -> &mut Option<String>,
    ) {
        let mut hub = self.hub();
        let Some(member) = hub
            .conferences
            .get_mut(conference_id)
            .and_then(|c| c.get_mut(endpoint_id))
        else {
            return;
        };
        if let Some((_, outbox)) = &member.open {
            if outbox.try_send(text.clone()).is_err() {
                self.count(&self.metrics.messages, "dropped", 1);
            }
        }
        *kept(member) = Some(text);
    }

    /// Tells every endpoint of a conference who its dominant speaker is now
    /// (DominantSpeakerEndpointChangeEvent), now if its channel is open, and on every later
    /// connection.
    pub fn send_dominant_speaker(&self, conference_id: &str, dominant: &str, previous: &[String]) {
        let text = channel_messages::dominant_speaker_changed(dominant, previous);
        let mut hub = self.hub();
        let Some(conference) = hub.conferences.get_mut(conference_id) else {
            return;
        };
        let mut dropped = 0;
        for member in conference.values_mut() {
            if let Some((_, outbox)) = &member.open {
                dropped += u64::from(outbox.try_send(text.clone()).is_err());
            }
            member.dominant = Some(text.clone());
        }
        if dropped > 0 {
            self.count(&self.metrics.messages, "dropped", dropped);
        }
    }

    /// Tells a sender the tallest video of it any receiver wants (SenderVideoConstraints),
    /// now if its channel is open, and on every later connection.
    pub fn send_sender_constraints(&self, conference_id: &str, endpoint_id: &str, height: u32) {
        let text = channel_messages::sender_video_constraints(height);
        self.send_and_keep(conference_id, endpoint_id, text, |m| {
            &mut m.sender_constraints
        });
    }

    /// Tells an endpoint the bandwidth estimate towards it (ConnectionStats), if its channel
    /// is open.
    pub fn send_connection_stats(&self, conference_id: &str, endpoint_id: &str, bps: u64) {
        let hub = self.hub();
        let Some((_, outbox)) = hub
            .conferences
            .get(conference_id)
            .and_then(|c| c.get(endpoint_id))
            .and_then(|m| m.open.as_ref())
        else {
            return;
        };
        if outbox
            .try_send(channel_messages::connection_stats(bps))
            .is_err()
        {
            self.count(&self.metrics.messages, "dropped", 1);
        }
    }

    /// Tells every other endpoint of the conference whether `endpoint_id`'s media flows
    /// (EndpointConnectivityStatusChangeEvent, naming it by its participant id).
    pub fn send_connectivity(&self, conference_id: &str, endpoint_id: &str, active: bool) {
        let hub = self.hub();
        let Some(conference) = hub.conferences.get(conference_id) else {
            return;
        };
        let Some(subject) = conference.get(endpoint_id) else {
            return;
        };
        let text = channel_messages::endpoint_connectivity_status(&subject.participant_id, active);
        let mut dropped = 0;
        for (id, member) in conference {
            if let Some((_, outbox)) = member.open.as_ref().filter(|_| id != endpoint_id) {
                dropped += u64::from(outbox.try_send(text.clone()).is_err());
            }
        }
        if dropped > 0 {
            self.count(&self.metrics.messages, "dropped", dropped);
        }
    }

    /// The socket of connection `id` closed; a newer connection of the endpoint stays.
    pub fn disconnect(&self, conference_id: &str, endpoint_id: &str, id: u64) {
        let mut hub = self.hub();
        let member = hub
            .conferences
            .get_mut(conference_id)
            .and_then(|c| c.get_mut(endpoint_id));
        if let Some(member) = member {
            if member.open.as_ref().is_some_and(|(open, _)| *open == id) {
                member.open = None;
                self.metrics.open.dec();
            }
        }
    }

    /// A message endpoint `endpoint_id` sent (text frames only: binary ones are malformed).
    pub fn receive(&self, conference_id: &str, endpoint_id: &str, text: &str) -> Outcome {
        let outcome = self.route(conference_id, endpoint_id, text);
        let result = match outcome {
            Outcome::Relayed(_) => "relayed",
            Outcome::Undeliverable => "undeliverable",
            Outcome::Malformed => "malformed",
            Outcome::Constraints(_) => "constraints",
            Outcome::Ignored => "ignored",
        };
        self.count(&self.metrics.messages, result, 1);
        outcome
    }

    /// Counts a frame the socket shell could not even read as text.
    pub fn count_malformed(&self) {
        self.count(&self.metrics.messages, "malformed", 1);
    }

    /// A connection closed because its client read nothing for [`WRITE_TIMEOUT`].
    pub fn count_slow_client(&self) {
        self.count(&self.metrics.connections, "closed_slow", 1);
    }

    /// Constraints the media worker could not be given (its command queue was full).
    pub fn count_worker_busy(&self) {
        self.count(&self.metrics.messages, "worker_busy", 1);
    }

    /// Counts a frame the socket shell dropped unread: its client went beyond
    /// `channel_message_rate`.
    pub fn count_rate_limited(&self) {
        self.count(&self.metrics.messages, "rate_limited", 1);
    }

    fn route(&self, conference_id: &str, endpoint_id: &str, text: &str) -> Outcome {
        match channel_messages::parse_client_message(text) {
            Err(_) => return Outcome::Malformed,
            Ok(ClientMessage::Constraints(update)) => return Outcome::Constraints(update),
            Ok(ClientMessage::VideoType { .. } | ClientMessage::Unknown) => {
                return Outcome::Ignored
            }
            Ok(ClientMessage::Relay) => {}
        }
        let Ok(Value::Object(mut message)) = serde_json::from_str::<Value>(text) else {
            return Outcome::Malformed;
        };
        let Some(Value::String(class)) = message.get("colibriClass") else {
            return Outcome::Malformed;
        };
        // Jitsi's relayed classes; EndpointStats always goes to everyone.
        let to = match class.as_str() {
            "EndpointMessage" => match message.get("to") {
                None | Some(Value::Null) => String::new(),
                Some(Value::String(to)) => to.clone(),
                Some(_) => return Outcome::Malformed,
            },
            "EndpointStats" => String::new(),
            _ => return Outcome::Ignored,
        };
        let hub = self.hub();
        let Some(conference) = hub.conferences.get(conference_id) else {
            return Outcome::Undeliverable;
        };
        let Some(sender) = conference.get(endpoint_id) else {
            return Outcome::Undeliverable;
        };
        // The sender is who the bridge says it is, whatever the client wrote.
        stamp_sender(&mut message, &sender.participant_id);
        let text = Value::Object(message).to_string();
        let mut relayed = 0;
        let mut dropped = 0;
        for (id, member) in conference {
            if id == endpoint_id || !(to.is_empty() || member.participant_id == to) {
                continue;
            }
            let Some((_, outbox)) = &member.open else {
                continue;
            };
            match outbox.try_send(text.clone()) {
                Ok(()) => relayed += 1,
                Err(_) => dropped += 1,
            }
        }
        if dropped > 0 {
            self.count(&self.metrics.messages, "dropped", dropped);
        }
        if relayed == 0 && dropped == 0 && !to.is_empty() {
            return Outcome::Undeliverable;
        }
        Outcome::Relayed(relayed)
    }
}

fn stamp_sender(message: &mut Map<String, Value>, participant_id: &str) {
    message.insert("from".to_owned(), Value::String(participant_id.to_owned()));
}

/// Compares without stopping at the first difference, so the time taken says nothing about
/// how much of a guessed password was right.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The first message on every connection (lib-jitsi-meet logs the version).
pub fn server_hello() -> String {
    serde_json::json!({
        "colibriClass": "ServerHello",
        "version": concat!("tutti-bridge ", env!("CARGO_PKG_VERSION")),
    })
    .to_string()
}

/// `base/colibri-ws/BRIDGE/CONFERENCE/ENDPOINT?pwd=PASSWORD`, the path Jitsi clients and
/// proxies know, with each part percent-encoded.
pub fn url(
    base: &str,
    bridge_id: &str,
    conference_id: &str,
    endpoint_id: &str,
    password: &str,
) -> String {
    format!(
        "{}/colibri-ws/{}/{}/{}?pwd={}",
        base.trim_end_matches('/'),
        percent_encode(bridge_id),
        percent_encode(conference_id),
        percent_encode(endpoint_id),
        percent_encode(password)
    )
}

fn percent_encode(part: &str) -> String {
    let mut out = String::with_capacity(part.len());
    for byte in part.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hub_with(endpoints: &[(&str, &str)]) -> (ChannelHub, Vec<String>) {
        let hub = ChannelHub::default();
        let passwords = endpoints
            .iter()
            .map(|(endpoint, participant)| hub.add("c1", endpoint, participant))
            .collect();
        (hub, passwords)
    }

    fn json(text: &str) -> Value {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn only_the_endpoint_password_opens_its_channel() {
        let (hub, passwords) = hub_with(&[("e1", "alice")]);
        assert_eq!(passwords[0].len(), PASSWORD_LENGTH);
        assert_eq!(
            hub.connect("c1", "e1", "guess").err(),
            Some(Refusal::BadPassword)
        );
        assert_eq!(
            hub.connect("c1", "e2", &passwords[0]).err(),
            Some(Refusal::UnknownEndpoint)
        );
        assert_eq!(
            hub.connect("c2", "e1", &passwords[0]).err(),
            Some(Refusal::UnknownEndpoint)
        );
        assert!(hub.connect("c1", "e1", &passwords[0]).is_ok());
        assert_eq!(
            hub.add("c1", "e1", "alice"),
            passwords[0],
            "re-adding keeps it"
        );
    }

    #[test]
    fn endpoint_messages_reach_everyone_else_or_the_addressee_with_the_true_sender() {
        let (hub, pw) = hub_with(&[("e1", "alice"), ("e2", "bob"), ("e3", "cyd")]);
        let _alice = hub.connect("c1", "e1", &pw[0]).unwrap();
        let mut bob = hub.connect("c1", "e2", &pw[1]).unwrap();
        let mut cyd = hub.connect("c1", "e3", &pw[2]).unwrap();

        let broadcast =
            r#"{"colibriClass":"EndpointMessage","to":"","from":"mallory","msgPayload":{"x":1}}"#;
        assert_eq!(hub.receive("c1", "e1", broadcast), Outcome::Relayed(2));
        for outbox in [&mut bob.outbox, &mut cyd.outbox] {
            let got = json(&outbox.try_recv().unwrap());
            assert_eq!(got["from"], "alice");
            assert_eq!(got["msgPayload"]["x"], 1);
        }

        let direct = r#"{"colibriClass":"EndpointMessage","to":"cyd","msgPayload":"hi"}"#;
        assert_eq!(hub.receive("c1", "e2", direct), Outcome::Relayed(1));
        assert_eq!(json(&cyd.outbox.try_recv().unwrap())["from"], "bob");
        assert!(bob.outbox.try_recv().is_err(), "not echoed to the sender");

        let stats = r#"{"colibriClass":"EndpointStats","bitrate":1}"#;
        assert_eq!(hub.receive("c1", "e3", stats), Outcome::Relayed(2));
        assert_eq!(json(&bob.outbox.try_recv().unwrap())["from"], "cyd");
    }

    #[test]
    fn bad_and_unroutable_messages_are_told_apart() {
        let (hub, pw) = hub_with(&[("e1", "alice"), ("e2", "bob")]);
        let _alice = hub.connect("c1", "e1", &pw[0]).unwrap();
        for garbage in [
            "not json",
            "[1,2]",
            r#"{"no":"class"}"#,
            r#"{"colibriClass":7}"#,
            r#"{"colibriClass":"EndpointMessage","to":5}"#,
        ] {
            assert_eq!(
                hub.receive("c1", "e1", garbage),
                Outcome::Malformed,
                "{garbage}"
            );
        }
        let to_bob = r#"{"colibriClass":"EndpointMessage","to":"bob","msgPayload":{}}"#;
        assert_eq!(
            hub.receive("c1", "e1", to_bob),
            Outcome::Undeliverable,
            "bob has no open channel"
        );
        let to_nobody = r#"{"colibriClass":"EndpointMessage","to":"zed","msgPayload":{}}"#;
        assert_eq!(hub.receive("c1", "e1", to_nobody), Outcome::Undeliverable);
        let constraints = r#"{"colibriClass":"ReceiverVideoConstraints","lastN":3}"#;
        assert_eq!(
            hub.receive("c1", "e1", constraints),
            Outcome::Constraints(ConstraintsUpdate {
                last_n: Some(3),
                ..Default::default()
            })
        );
        let bad = r#"{"colibriClass":"ReceiverVideoConstraints","lastN":"all"}"#;
        assert_eq!(hub.receive("c1", "e1", bad), Outcome::Malformed);
        let video_type = r#"{"colibriClass":"VideoTypeMessage","videoType":"camera"}"#;
        assert_eq!(hub.receive("c1", "e1", video_type), Outcome::Ignored);
    }

    #[test]
    fn forwarded_endpoints_reach_the_channel_now_and_on_reconnection() {
        let (hub, pw) = hub_with(&[("e1", "alice"), ("e2", "bob")]);
        let mut first = hub.connect("c1", "e1", &pw[0]).unwrap();
        hub.send_forwarded("c1", "e1", &["bob".to_owned()]);
        let message: Value = serde_json::from_str(&first.outbox.try_recv().unwrap()).unwrap();
        assert_eq!(message["colibriClass"], "LastNEndpointsChangeEvent");
        assert_eq!(message["lastNEndpoints"], serde_json::json!(["bob"]));
        // Bob's channel opens after his list was decided: he gets it first thing.
        hub.send_forwarded("c1", "e2", &[]);
        let mut bob = hub.connect("c1", "e2", &pw[1]).unwrap();
        let message: Value = serde_json::from_str(&bob.outbox.try_recv().unwrap()).unwrap();
        assert_eq!(message["lastNEndpoints"], serde_json::json!([]));
        hub.send_forwarded("c1", "nobody", &[]);
    }

    #[test]
    fn the_dominant_speaker_reaches_everyone_now_and_later_joiners_on_connection() {
        let (hub, pw) = hub_with(&[("e1", "alice"), ("e2", "bob")]);
        let mut alice = hub.connect("c1", "e1", &pw[0]).unwrap();
        hub.send_dominant_speaker("c1", "bob", &["alice".to_owned()]);
        let message = json(&alice.outbox.try_recv().unwrap());
        assert_eq!(
            message["colibriClass"],
            "DominantSpeakerEndpointChangeEvent"
        );
        assert_eq!(message["dominantSpeakerEndpoint"], "bob");
        assert_eq!(message["previousSpeakers"], serde_json::json!(["alice"]));
        // Bob's channel opens later, and Cyd joins later still: both hear it first thing.
        let mut bob = hub.connect("c1", "e2", &pw[1]).unwrap();
        assert_eq!(
            json(&bob.outbox.try_recv().unwrap())["dominantSpeakerEndpoint"],
            "bob"
        );
        let cyd_pw = hub.add("c1", "e3", "cyd");
        let mut cyd = hub.connect("c1", "e3", &cyd_pw).unwrap();
        assert_eq!(
            json(&cyd.outbox.try_recv().unwrap())["dominantSpeakerEndpoint"],
            "bob"
        );
        hub.send_dominant_speaker("nowhere", "bob", &[]);
    }

    #[test]
    fn sender_constraints_reach_the_sender_only_now_and_on_reconnection() {
        let (hub, pw) = hub_with(&[("e1", "alice"), ("e2", "bob")]);
        let mut alice = hub.connect("c1", "e1", &pw[0]).unwrap();
        let mut bob = hub.connect("c1", "e2", &pw[1]).unwrap();
        hub.send_sender_constraints("c1", "e1", 180);
        let message = json(&alice.outbox.try_recv().unwrap());
        assert_eq!(message["colibriClass"], "SenderVideoConstraints");
        assert_eq!(message["videoConstraints"]["idealHeight"], 180);
        assert!(bob.outbox.try_recv().is_err(), "not to bob");
        hub.send_sender_constraints("c1", "e1", 720);
        let mut again = hub.connect("c1", "e1", &pw[0]).unwrap();
        let message = json(&again.outbox.try_recv().unwrap());
        assert_eq!(message["videoConstraints"]["idealHeight"], 720);
        hub.send_sender_constraints("c1", "nobody", 0);
    }

    #[test]
    fn connectivity_changes_reach_everyone_else() {
        let (hub, pw) = hub_with(&[("e1", "alice"), ("e2", "bob")]);
        let mut alice = hub.connect("c1", "e1", &pw[0]).unwrap();
        let mut bob = hub.connect("c1", "e2", &pw[1]).unwrap();
        hub.send_connectivity("c1", "e2", false);
        let message: Value = serde_json::from_str(&alice.outbox.try_recv().unwrap()).unwrap();
        assert_eq!(
            message["colibriClass"],
            "EndpointConnectivityStatusChangeEvent"
        );
        assert_eq!(message["endpoint"], "bob");
        assert_eq!(message["active"], "false");
        assert!(bob.outbox.try_recv().is_err(), "not to bob himself");
    }

    #[test]
    fn a_full_outbox_drops_for_that_receiver_only() {
        let (hub, pw) = hub_with(&[("e1", "alice"), ("e2", "bob"), ("e3", "cyd")]);
        let _alice = hub.connect("c1", "e1", &pw[0]).unwrap();
        let _slow_bob = hub.connect("c1", "e2", &pw[1]).unwrap();
        let mut cyd = hub.connect("c1", "e3", &pw[2]).unwrap();
        let message = r#"{"colibriClass":"EndpointMessage","to":"","msgPayload":0}"#;
        for _ in 0..OUTBOX_CAPACITY {
            assert_eq!(hub.receive("c1", "e1", message), Outcome::Relayed(2));
            cyd.outbox.try_recv().unwrap();
        }
        assert_eq!(hub.receive("c1", "e1", message), Outcome::Relayed(1));
        assert!(cyd.outbox.try_recv().is_ok());
    }

    #[test]
    fn a_slow_receivers_outbox_is_bounded_in_bytes_too() {
        let (hub, pw) = hub_with(&[("e1", "alice"), ("e2", "bob")]);
        let _alice = hub.connect("c1", "e1", &pw[0]).unwrap();
        let mut slow_bob = hub.connect("c1", "e2", &pw[1]).unwrap();
        let big = format!(
            r#"{{"colibriClass":"EndpointMessage","to":"","msgPayload":"{}"}}"#,
            "x".repeat(60 * 1024)
        );
        let fits = OUTBOX_BYTES / big.len();
        for _ in 0..fits {
            assert_eq!(hub.receive("c1", "e1", &big), Outcome::Relayed(1));
        }
        assert_eq!(hub.receive("c1", "e1", &big), Outcome::Relayed(0));
        // Taking one makes room for one.
        assert!(slow_bob.outbox.try_recv().is_ok());
        assert_eq!(hub.receive("c1", "e1", &big), Outcome::Relayed(1));
        assert_eq!(hub.receive("c1", "e1", &big), Outcome::Relayed(0));
        assert_eq!(
            hub.metrics
                .messages
                .get_or_create(&ResultLabel { result: "dropped" })
                .get(),
            2
        );
    }

    #[test]
    fn expiry_and_reconnection_close_the_old_socket() {
        let (hub, pw) = hub_with(&[("e1", "alice")]);
        let mut first = hub.connect("c1", "e1", &pw[0]).unwrap();
        let mut second = hub.connect("c1", "e1", &pw[0]).unwrap();
        assert!(matches!(
            first.outbox.try_recv(),
            Err(mpsc::error::TryRecvError::Disconnected)
        ));
        hub.disconnect("c1", "e1", first.id);
        assert_eq!(hub.metrics.open.get(), 1, "the newer connection stays");
        hub.remove_conference("c1");
        assert!(matches!(
            second.outbox.try_recv(),
            Err(mpsc::error::TryRecvError::Disconnected)
        ));
        assert_eq!(hub.metrics.open.get(), 0);
        assert_eq!(
            hub.connect("c1", "e1", &pw[0]).err(),
            Some(Refusal::UnknownEndpoint)
        );
    }

    #[test]
    fn urls_carry_every_part_encoded() {
        assert_eq!(
            url("wss://meet.example/", "b 1", "c/1", "e1", "p?w"),
            "wss://meet.example/colibri-ws/b%201/c%2F1/e1?pwd=p%3Fw"
        );
    }
}
