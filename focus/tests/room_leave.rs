//! Leaving, on the room state machine alone: the others are told to remove what they were
//! shown, the bridge expires the endpoint, the last one out ends the conference.

mod room;

use room::*;
use tokio_xmpp::parsers::presence::Type as PresenceType;
use tokio_xmpp::Stanza;
use tutti_focus::jingle::Action;
use tutti_focus::room::{BridgeRequest, Metric};

#[test]
fn a_leaver_is_removed_from_the_others_and_its_endpoint_expired() {
    let mut sim = Sim::new();
    let alice = sim.join_and_accept("alice", 1000);
    let bob = sim.join_and_accept("bob", 2000);
    sim.take_sent();
    sim.leave("bob");
    let expire = sim.take_request("ExpireEndpoint").1;
    assert_eq!(named_id(&expire), bridge_session_id(&bob));
    let remove = sim.take_jingle("alice", Action::SourceRemove);
    assert_eq!(remove.sid, alice.sid);
    assert_eq!(ssrcs(&remove), vec![2000, 2001]);
    assert_eq!(sim.participants(), 1);
    assert_eq!(sim.sessions("active"), 1);
    assert!(!sim.room.is_closed());

    // The last one out: endpoint and conference expired, the focus leaves the room.
    sim.leave("alice");
    assert_eq!(
        named_id(&sim.take_request("ExpireEndpoint").1),
        bridge_session_id(&alice)
    );
    assert!(sim.has_request("ExpireConference"));
    assert!(sim.take_sent().iter().any(|stanza| matches!(
        stanza,
        Stanza::Presence(presence) if presence.type_ == PresenceType::Unavailable
    )));
    assert!(sim.room.is_closed());
    let rooms: i64 = sim
        .metrics
        .iter()
        .map(|m| match m {
            Metric::Rooms(c) => *c,
            _ => 0,
        })
        .sum();
    assert_eq!(rooms, 0);
    assert_eq!(sim.sessions("active"), 0);
}

#[test]
fn a_configured_room_stays_and_only_its_conference_is_expired() {
    let mut sim = Sim::joined(true);
    sim.join_and_accept("alice", 1000);
    sim.leave("alice");
    assert!(sim.has_request("ExpireConference"));
    assert!(!sim.room.is_closed());
    sim.answer_all();
    // The next arrival gets a new conference.
    sim.join("bob");
    assert!(sim.has_request("CreateConference"));
}

#[test]
fn an_endpoint_the_bridge_makes_after_its_participant_left_is_expired() {
    let mut sim = Sim::joined(true);
    sim.join_and_accept("alice", 1000);
    sim.join("bob");
    let (allocate, request) = sim.take_request("AllocateEndpoint");
    sim.leave("bob");
    sim.answer(allocate, Ok(yes(&request)));
    assert!(sim.take_jingles("bob").is_empty());
    let expire = sim.take_request("ExpireEndpoint").1;
    assert_eq!(named_id(&expire), named_id(&request));
}

#[test]
fn a_conference_created_after_the_room_was_left_is_expired() {
    let mut sim = Sim::new();
    sim.join("alice");
    let (create, request) = sim.take_request("CreateConference");
    sim.leave("alice");
    assert!(sim.room.is_closed());
    sim.answer_all();
    sim.answer(create, Ok(yes(&request)));
    let expire = sim.take_request("ExpireConference").1;
    assert!(
        matches!(&expire, BridgeRequest::ExpireConference { conference_id } if *conference_id == named_id(&request))
    );
}
