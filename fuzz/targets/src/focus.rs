//! The focus's targets: Jingle parsing, the room state machine fed stanza sequences, and the
//! bridge pool fed status reports, stream losses, discoveries and placements.

use std::time::{Duration, Instant};

use jid::{BareJid, FullJid, Jid};
use minidom::Element;
use tokio_xmpp::parsers::iq::Iq;
use tokio_xmpp::parsers::presence::{Presence, Type as PresenceType};
use tokio_xmpp::Stanza;
use tutti_focus::capabilities::CapabilityCache;
use tutti_focus::jingle::Jingle;
use tutti_focus::pool::{BridgeId, BridgeState, Event, Pool, Status};
use tutti_focus::room::{
    BridgeAnswer, BridgeError, BridgeRequest, Output, RequestId, Room, RoomLimits,
};
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

/// How many steps of an input [`room`] plays. Every join builds a session-initiate, so an
/// input's cost grows with its length, and longer inputs kept finding "new" features (the hit
/// counts of the same code): over a long run the corpus filled with inputs of ~5 KB and the
/// rate fell from ~1,365 to ~340 executions per CPU-second. Four occupants, their bridge
/// answers and timers need far fewer steps than this to reach every state.
const ROOM_STEPS: usize = 64;

/// A room the focus joined, fed a sequence of [`Records`] (the first `ROOM_STEPS`). An input
/// whose first op is 128 or more caps the conference at two participants per bridge, so that
/// four occupants spread it over bridges linked by relays (cascading). Op bits 0-2 (op % 6): 0
/// occupant `bytes[0]` (of four) joins, 1 leaves, 2 sends an IQ set whose payload is the
/// record's XML (after its first byte, the occupant), 3 the oldest bridge request is answered as
/// a working bridge would (each conference placed on a bridge of its own), 4 a failure: below
/// op 128 the oldest bridge request fails, from 128 the bridge of the room's conference
/// `bytes[0]` fails, from 192 the relay between its conferences `bytes[0]` and `bytes[1]`
/// times out; 5 time passes (`bytes[0]` × 100 ms) and timers fire.
pub fn room(data: &[u8]) {
    let limits = RoomLimits {
        participants_per_bridge: if data.first().is_some_and(|op| *op >= 128) {
            2
        } else {
            0
        },
        ..RoomLimits::default()
    };
    let Ok(mut room) = Room::join(BareJid::new(ROOM).expect("a room JID"), false, 7, limits) else {
        return;
    };
    let mut now = Instant::now();
    let mut capabilities = CapabilityCache::default();
    let mut bridges = Bridges::default();
    let occupant = |byte: Option<&u8>| {
        let nick = ["alice", "bob", "carol", "dave"][usize::from(byte.copied().unwrap_or(0) % 4)];
        Jid::from(FullJid::new(&format!("{ROOM}/{nick}")).expect("an occupant JID"))
    };
    bridges.drain(&mut room);
    for (n, (op, bytes)) in Records::new(data).take(ROOM_STEPS).enumerate() {
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
            3 | 4 if op < 128 && !bridges.requests.is_empty() => {
                let (id, request) = bridges.requests.remove(0);
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
            3 if !bridges.requests.is_empty() => {
                let (id, request) = bridges.requests.remove(0);
                room.handle_bridge_answer(now, id, Ok(yes(&request)));
            }
            4 if op >= 128 => {
                let conferences = room.conference_ids();
                let pick = |byte: Option<&u8>| {
                    let i = usize::from(byte.copied().unwrap_or(0));
                    conferences.get(i % conferences.len().max(1)).cloned()
                };
                match (pick(bytes.first()), pick(bytes.get(1))) {
                    (Some(a), Some(b)) if op >= 192 => room.relay_failed(now, &a, &b),
                    (Some(a), _) if op < 192 => room.conference_failed(now, &a),
                    _ => {}
                }
            }
            3 | 4 => {}
            _ => {
                now += Duration::from_millis(100 * u64::from(bytes.first().copied().unwrap_or(1)));
                if room.poll_timeout().is_some_and(|at| at <= now) {
                    room.handle_timeout(now);
                }
            }
        }
        bridges.drain(&mut room);
    }
}

/// The room target's bridges: the requests waiting for an answer, and how many conferences
/// were placed (each on a bridge of its own, as a pool of many bridges places them).
#[derive(Default)]
struct Bridges {
    requests: Vec<(RequestId, BridgeRequest)>,
    placed: usize,
}

impl Bridges {
    /// Takes the room's outputs, keeping its bridge requests to answer and placing the
    /// conferences it creates.
    fn drain(&mut self, room: &mut Room) {
        while let Some(output) = room.poll_output() {
            if let Output::Bridge { id, request } = output {
                if let BridgeRequest::CreateConference { conference_id, .. } = &request {
                    self.placed += 1;
                    let bridge = BridgeId(format!("bridge-{}", self.placed));
                    room.conference_placed(conference_id, bridge, String::new());
                }
                self.requests.push((id, request));
            }
        }
    }
}

/// The bridges the pool target knows of.
const BRIDGES: [&str; 4] = ["a", "b", "c", "d"];

/// A bridge pool fed a sequence of [`Records`]; op bits 0-2 (the bridge is `bytes[0]` of four):
/// 0 the bridges listed are those of the bits of `bytes[0]`; 1 a status from the bridge: state
/// `bytes[1]` (of three), stress `bytes[2..10]` as an f64 (any bits: NaN, infinities,
/// negatives), region `bytes[10]` (of two), endpoint capacity `bytes[11]`, instance `bytes[12]`
/// (of two), allocations counted `bytes[13]`; 2 its stream is lost; 3 time passes (`bytes[0]` ×
/// 50 ms) and timers fire; 4 a conference is placed (region `bytes[0]`); 5 an endpoint is padded
/// on the bridge and, when there is a `bytes[1]`, its allocation answered (number `bytes[1]`, 0:
/// none); 6 a conference is orphaned there.
/// Besides never panicking: a placed bridge is listed and not draining, failures and
/// recoveries alternate per bridge, and after its timers fired the next lies in the future.
pub fn pool(data: &[u8]) {
    let id = |byte: Option<&u8>| {
        BridgeId(BRIDGES[usize::from(byte.copied().unwrap_or(0) % 4)].to_owned())
    };
    let region = |byte: Option<&u8>| ["", "eu"][usize::from(byte.copied().unwrap_or(0) % 2)];
    let mut pool = Pool::new();
    let mut now = Instant::now();
    let mut listed: Vec<BridgeId> = Vec::new();
    // The bridges in the pool, and those of them whose last status says they drain.
    let mut known: Vec<BridgeId> = Vec::new();
    let mut draining: Vec<BridgeId> = Vec::new();
    let mut failed: Vec<BridgeId> = Vec::new();
    for (n, (op, bytes)) in Records::new(data).enumerate() {
        match op % 7 {
            0 => {
                let bits = bytes.first().copied().unwrap_or(0);
                listed = (0..4)
                    .filter(|i| bits & (1 << i) != 0)
                    .map(|i| BridgeId(BRIDGES[i].to_owned()))
                    .collect();
                for added in pool.set_listed(listed.clone()) {
                    draining.retain(|b| *b != added);
                    known.push(added);
                }
            }
            1 => {
                let bridge = id(bytes.first());
                let state = [
                    BridgeState::Operational,
                    BridgeState::Draining,
                    BridgeState::ShuttingDown,
                ][usize::from(bytes.get(1).copied().unwrap_or(0) % 3)];
                let stress = bytes
                    .get(2..10)
                    .and_then(|b| b.try_into().ok())
                    .map_or(0.0, f64::from_be_bytes);
                if known.contains(&bridge) {
                    draining.retain(|b| *b != bridge);
                    if state != BridgeState::Operational {
                        draining.push(bridge.clone());
                    }
                }
                let status = Status {
                    name: String::new(),
                    region: region(bytes.get(10)).to_owned(),
                    state,
                    stress,
                    endpoints: 0,
                    endpoint_capacity: u32::from(bytes.get(11).copied().unwrap_or(0)),
                    instance: (bytes.get(12).copied().unwrap_or(0) % 2).to_string(),
                    allocations: u64::from(bytes.get(13).copied().unwrap_or(0)),
                };
                pool.on_status(now, &bridge, status);
            }
            2 => pool.on_stream_lost(now, &id(bytes.first()), "fuzzed loss"),
            3 => {
                now += Duration::from_millis(50 * u64::from(bytes.first().copied().unwrap_or(1)));
                if pool.poll_timeout().is_some_and(|at| at <= now) {
                    pool.handle_timeout(now);
                }
                assert!(
                    pool.poll_timeout().is_none_or(|at| at > now),
                    "a timer in the past"
                );
            }
            4 => {
                if let Some(bridge) = pool.place(now, region(bytes.first())) {
                    assert!(listed.contains(&bridge), "placed on an unlisted bridge");
                    assert!(!draining.contains(&bridge), "placed on a draining bridge");
                }
            }
            5 => {
                let bridge = id(bytes.first());
                pool.pad(now, &bridge);
                if let Some(&allocation) = bytes.get(1) {
                    pool.allocated(&bridge, (allocation > 0).then_some(u64::from(allocation)));
                }
            }
            _ => pool.orphan(&id(bytes.first()), format!("conference-{n}")),
        }
        while let Some(event) = pool.poll_event() {
            match event {
                Event::Failed { bridge, .. } => {
                    assert!(!failed.contains(&bridge), "failed twice in a row");
                    failed.push(bridge);
                }
                Event::Recovered { bridge, .. } => {
                    assert!(failed.contains(&bridge), "recovered without failing");
                    failed.retain(|b| *b != bridge);
                }
                Event::Available { .. } => {}
                Event::Restarted { bridge } => {
                    assert!(
                        known.contains(&bridge),
                        "a bridge not in the pool restarted"
                    );
                }
                Event::Removed { bridge } => {
                    failed.retain(|b| *b != bridge);
                    draining.retain(|b| *b != bridge);
                    known.retain(|b| *b != bridge);
                }
            }
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
                candidates: vec![candidate()],
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
        BridgeRequest::AllocateRelay {
            conference_id,
            controlling,
            ..
        } => BridgeAnswer::RelayAllocated(pb::RelayTransport {
            ice: Some(pb::IceParameters {
                ufrag: format!("r-{conference_id}"),
                pwd: "relay-password-relay-password".to_owned(),
                controlling: *controlling,
            }),
            candidates: vec![candidate()],
            dtls: Some(pb::DtlsParameters {
                hash: "sha-256".to_owned(),
                fingerprint: "EF:01".to_owned(),
                setup: if *controlling {
                    pb::DtlsSetup::Active
                } else {
                    pb::DtlsSetup::Passive
                } as i32,
            }),
            link_id: 1,
        }),
        _ => BridgeAnswer::Done,
    }
}

/// The one host candidate of every transport a [`yes`] bridge answers.
fn candidate() -> pb::Candidate {
    pb::Candidate {
        foundation: "1".to_owned(),
        component: 1,
        protocol: "udp".to_owned(),
        priority: 2_130_706_431,
        ip: "10.0.0.1".to_owned(),
        port: 10000,
        r#type: "host".to_owned(),
        generation: 0,
    }
}
