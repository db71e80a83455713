//! The focus's targets: Jingle parsing and the room state machine fed stanza sequences.

use std::time::{Duration, Instant};

use jid::{BareJid, FullJid, Jid};
use minidom::Element;
use tokio_xmpp::parsers::iq::Iq;
use tokio_xmpp::parsers::presence::{Presence, Type as PresenceType};
use tokio_xmpp::Stanza;
use tutti_focus::capabilities::CapabilityCache;
use tutti_focus::jingle::Jingle;
use tutti_focus::room::{BridgeAnswer, BridgeError, BridgeRequest, Output, RequestId, Room};
use tutti_proto::bridge_v1 as pb;

use crate::Records;

/// The room the room target drives.
const ROOM: &str = "room@conference.localhost";

/// The `<jingle/>` element of `data` as XML: the root itself or the child of an IQ.
fn jingle_element(data: &[u8]) -> Option<Element> {
    let text = std::str::from_utf8(data).ok()?;
    let root: Element = text.parse().ok()?;
    if root.name() == "jingle" {
        return Some(root);
    }
    root.get_child("jingle", tutti_focus::ns::JINGLE).cloned()
}

/// One Jingle element (alone or in its IQ): parsed, and what parses written back and parsed
/// again.
pub fn jingle(data: &[u8]) {
    let Some(element) = jingle_element(data) else {
        return;
    };
    if let Ok(jingle) = Jingle::from_element(&element) {
        let _ = Jingle::from_element(&jingle.to_element());
    }
}

/// A room the focus joined, fed a sequence of [`Records`]; op bits 0-2: 0 occupant `bytes[0]`
/// (of four) joins, 1 leaves, 2 sends an IQ set whose payload is the record's XML (after its
/// first byte, the occupant), 3 the oldest bridge request is answered as a working bridge
/// would, 4 it fails, 5 time passes (`bytes[0]` × 100 ms) and timers fire.
pub fn room(data: &[u8]) {
    let Ok(mut room) = Room::join(BareJid::new(ROOM).expect("a room JID"), false, 7) else {
        return;
    };
    let mut now = Instant::now();
    let mut capabilities = CapabilityCache::default();
    let mut requests: Vec<(RequestId, BridgeRequest)> = Vec::new();
    let occupant = |byte: Option<&u8>| {
        let nick = ["alice", "bob", "carol", "dave"][usize::from(byte.copied().unwrap_or(0) % 4)];
        Jid::from(FullJid::new(&format!("{ROOM}/{nick}")).expect("an occupant JID"))
    };
    drain(&mut room, &mut requests);
    for (n, (op, bytes)) in Records::new(data).enumerate() {
        match op % 6 {
            0 => {
                let presence = Presence::available().with_from(occupant(bytes.first()));
                room.handle_stanza(now, Stanza::Presence(presence), &mut capabilities);
            }
            1 => {
                let mut presence = Presence::new(PresenceType::Unavailable);
                presence.from = Some(occupant(bytes.first()));
                room.handle_stanza(now, Stanza::Presence(presence), &mut capabilities);
            }
            2 => {
                let payload = bytes
                    .get(1..)
                    .and_then(|xml| std::str::from_utf8(xml).ok())
                    .and_then(|xml| xml.parse::<Element>().ok());
                if let Some(payload) = payload {
                    let iq = Iq::Set {
                        from: Some(occupant(bytes.first())),
                        to: Some(Jid::from(
                            FullJid::new(&format!("{ROOM}/focus")).expect("the focus's JID"),
                        )),
                        id: format!("iq{n}"),
                        payload,
                    };
                    room.handle_stanza(now, Stanza::Iq(iq), &mut capabilities);
                }
            }
            3 | 4 if !requests.is_empty() => {
                let (id, request) = requests.remove(0);
                let answer = if op % 6 == 3 {
                    Ok(yes(&request))
                } else {
                    Err(BridgeError {
                        call: request.call(),
                        cause: "fuzzed failure".to_owned(),
                    })
                };
                room.handle_bridge_answer(now, id, answer);
            }
            3 | 4 => {}
            _ => {
                now += Duration::from_millis(100 * u64::from(bytes.first().copied().unwrap_or(1)));
                if room.poll_timeout().is_some_and(|at| at <= now) {
                    room.handle_timeout(now);
                }
            }
        }
        drain(&mut room, &mut requests);
    }
}

/// Takes the room's outputs, keeping its bridge requests to answer.
fn drain(room: &mut Room, requests: &mut Vec<(RequestId, BridgeRequest)>) {
    while let Some(output) = room.poll_output() {
        if let Output::Bridge { id, request } = output {
            requests.push((id, request));
        }
    }
}

/// What a bridge that says yes to everything answers.
fn yes(request: &BridgeRequest) -> BridgeAnswer {
    match request {
        BridgeRequest::AllocateEndpoint { endpoint_id, .. } => {
            BridgeAnswer::Allocated(pb::Transport {
                ice: Some(pb::IceParameters {
                    ufrag: format!("u-{endpoint_id}"),
                    pwd: "bridge-password-bridge-password".to_owned(),
                    controlling: true,
                }),
                candidates: vec![pb::Candidate {
                    foundation: "1".to_owned(),
                    component: 1,
                    protocol: "udp".to_owned(),
                    priority: 2_130_706_431,
                    ip: "10.0.0.1".to_owned(),
                    port: 10000,
                    r#type: "host".to_owned(),
                    generation: 0,
                }],
                dtls: Some(pb::DtlsParameters {
                    hash: "sha-256".to_owned(),
                    fingerprint: "AB:CD".to_owned(),
                    setup: pb::DtlsSetup::Actpass as i32,
                }),
                bridge_channel_url: String::new(),
            })
        }
        BridgeRequest::UpdateEndpoint(update) => {
            BridgeAnswer::Updated(pb::UpdateEndpointResponse {
                forwarded: update.sources.clone(),
            })
        }
        _ => BridgeAnswer::Done,
    }
}
