//! The bridge failing or not answering in time (to the room, both are a failed request) at each
//! step, on the room state machine alone.

mod room;

use std::time::Duration;

use room::*;
use tokio_xmpp::parsers::stanza_error::DefinedCondition;
use tutti_focus::jingle::{Action, ReasonCondition, ReasonKind};

const TIMED_OUT: &str = "no answer within 5 s";

#[test]
fn a_failed_conference_is_announced_and_asked_for_again_with_back_off() {
    let mut sim = Sim::new();
    sim.join("alice");
    let first = sim.fail("CreateConference", TIMED_OUT);
    assert_eq!(sim.take_bridge_presences(), vec![true]);
    assert!(
        sim.take_jingles("alice").is_empty(),
        "no session to terminate"
    );
    assert_eq!(sim.errors("allocation"), 1);
    assert_eq!(
        sim.room.poll_timeout(),
        Some(sim.now + Duration::from_secs(1))
    );

    // 1 s later the same conference is asked for; failing again, the wait doubles.
    sim.advance(Duration::from_millis(999));
    assert!(sim.requests.is_empty());
    sim.advance(Duration::from_millis(1));
    let second = sim.fail("CreateConference", "Unavailable: connection refused");
    assert_eq!(named_id(&second), named_id(&first));
    assert!(sim.take_bridge_presences().is_empty(), "still announced");
    assert_eq!(
        sim.room.poll_timeout(),
        Some(sim.now + Duration::from_secs(2))
    );
    let mut wait = 2;
    for next in [4, 8, 16, 30, 30] {
        sim.advance(Duration::from_secs(wait));
        sim.fail("CreateConference", TIMED_OUT);
        assert_eq!(
            sim.room.poll_timeout(),
            Some(sim.now + Duration::from_secs(next))
        );
        wait = next;
    }

    // The bridge is back: a session, and the presence says so.
    sim.advance(Duration::from_secs(30));
    let third = sim.grant("CreateConference");
    assert_eq!(named_id(&third), named_id(&first));
    sim.answer_all();
    sim.take_jingle("alice", Action::SessionInitiate);
    assert_eq!(sim.take_bridge_presences(), vec![false]);
    assert_eq!(sim.room.poll_timeout(), None);
}

#[test]
fn a_failed_endpoint_is_asked_for_again_under_the_same_id() {
    let mut sim = Sim::new();
    sim.join("alice");
    sim.grant("CreateConference");
    let first = sim.fail("AllocateEndpoint", TIMED_OUT);
    assert_eq!(sim.take_bridge_presences(), vec![true]);
    sim.advance(Duration::from_secs(1));
    // Nobody holds a session: the conference is asked for again, under its id.
    sim.grant("CreateConference");
    let second = sim.grant("AllocateEndpoint");
    assert_eq!(named_id(&second), named_id(&first));
    let initiate = sim.take_jingle("alice", Action::SessionInitiate);
    assert_eq!(bridge_session_id(&initiate), named_id(&first));
    assert_eq!(sim.take_bridge_presences(), vec![false]);
}

#[test]
fn a_bridge_failing_the_accept_ends_the_session_and_offers_a_new_one() {
    let mut sim = Sim::new();
    let first = sim.join_and_offer("alice");
    sim.take_sent();
    let accept = sim.jingle("alice", &session_accept(&first.sid, "alice", 1000));
    sim.fail("UpdateEndpoint", TIMED_OUT);
    let (condition, _, text) = sim.reply(&accept).expect_err("the accept is refused");
    assert_eq!(condition, DefinedCondition::InternalServerError);
    assert!(text.contains("bridge"), "{text}");
    let terminate = sim.take_jingle("alice", Action::SessionTerminate);
    assert_eq!(terminate.sid, first.sid);
    let reason = terminate.reason.expect("a reason");
    assert_eq!(
        reason.condition,
        ReasonCondition::Defined(ReasonKind::GeneralError)
    );
    assert!(reason
        .text
        .expect("a text")
        .text
        .starts_with("the bridge failed the session"));
    assert_eq!(
        named_id(&sim.take_request("ExpireEndpoint").1),
        bridge_session_id(&first)
    );
    assert_eq!(sim.take_bridge_presences(), vec![true]);
    assert_eq!(sim.sessions("pending"), 0);

    sim.advance(Duration::from_secs(1));
    sim.answer_all();
    let second = sim.take_jingle("alice", Action::SessionInitiate);
    assert_ne!(second.sid, first.sid);
    assert_eq!(sim.take_bridge_presences(), vec![false]);
}

#[test]
fn an_accept_answer_without_forwarded_sources_is_a_bridge_failure() {
    let mut sim = Sim::new();
    let first = sim.join_and_offer("alice");
    let accept = sim.jingle("alice", &session_accept(&first.sid, "alice", 1000));
    let (id, _) = sim.take_request("UpdateEndpoint");
    sim.answer(
        id,
        Ok(tutti_focus::room::BridgeAnswer::Updated(Default::default())),
    );
    let (condition, _, text) = sim.reply(&accept).expect_err("refused");
    assert_eq!(condition, DefinedCondition::InternalServerError);
    assert!(text.contains("forwarded"), "{text}");
    sim.take_jingle("alice", Action::SessionTerminate);
}

#[test]
fn failed_updates_after_the_accept_are_refused_and_the_session_survives() {
    let mut sim = Sim::new();
    let alice = sim.join_and_accept("alice", 1000);
    sim.join_and_accept("bob", 2000);
    sim.take_sent();

    let mut info = tutti_focus::jingle::Jingle::new(Action::TransportInfo, alice.sid.clone());
    let mut content = tutti_focus::jingle::Content::new("audio");
    let mut transport = participant_transport("alice");
    transport.candidates = vec![candidate("udp", 40001)];
    content.transport = Some(transport);
    info.contents.push(content);
    let trickle = sim.jingle("alice", &info);
    sim.fail("UpdateEndpoint", TIMED_OUT);
    assert_eq!(
        sim.reply(&trickle).map_err(|e| e.0),
        Err(DefinedCondition::InternalServerError)
    );

    // A failed source-add changes nothing: Bob hears nothing, and the same source can be added
    // once the bridge takes it.
    let add = video_update(Action::SourceAdd, &alice.sid, "alice", 1100);
    let refused = sim.jingle("alice", &add);
    sim.fail("UpdateEndpoint", "Internal: boom");
    assert_eq!(
        sim.reply(&refused).map_err(|e| e.0),
        Err(DefinedCondition::InternalServerError)
    );
    assert!(sim.take_jingles("bob").is_empty());
    let again = sim.jingle("alice", &add);
    sim.answer_all();
    assert_eq!(sim.reply(&again), Ok(()));
    assert_eq!(
        ssrcs(&sim.take_jingle("bob", Action::SourceAdd)),
        vec![1100, 1101]
    );
    assert_eq!(sim.sessions("active"), 2);
    assert_eq!(sim.errors("internal"), 2);
}

#[test]
fn a_slow_answer_holds_up_only_its_own_participant() {
    let mut sim = Sim::new();
    let alice = sim.join_and_accept("alice", 1000);
    let bob = sim.join_and_offer("bob");
    // Alice's source-add is with the bridge; her transport-info waits behind it.
    let add = sim.jingle(
        "alice",
        &video_update(Action::SourceAdd, &alice.sid, "alice", 1100),
    );
    let (slow, slow_request) = sim.take_request("UpdateEndpoint");
    let mut info = tutti_focus::jingle::Jingle::new(Action::TransportInfo, alice.sid.clone());
    let mut content = tutti_focus::jingle::Content::new("audio");
    content.transport = Some(participant_transport("alice"));
    info.contents.push(content);
    let trickle = sim.jingle("alice", &info);
    assert!(
        sim.requests.is_empty(),
        "the transport-info waits for the source-add"
    );
    // Meanwhile Bob's accept goes through, and so does a newcomer's allocation.
    let accept = sim.jingle("bob", &session_accept(&bob.sid, "bob", 2000));
    sim.join("carol");
    sim.grant("UpdateEndpoint");
    assert_eq!(sim.reply(&accept), Ok(()));
    sim.grant("AllocateEndpoint");
    sim.take_jingle("carol", Action::SessionInitiate);
    assert!(!sim.answered(&add) && !sim.answered(&trickle));
    // The slow answer comes: the source-add, then the transport-info, in order.
    sim.answer(slow, Ok(yes(&slow_request)));
    assert_eq!(sim.reply(&add), Ok(()));
    assert!(!sim.answered(&trickle));
    sim.grant("UpdateEndpoint");
    assert_eq!(sim.reply(&trickle), Ok(()));
}

#[test]
fn a_failed_expiry_is_counted() {
    let mut sim = Sim::new();
    sim.join_and_accept("alice", 1000);
    sim.join_and_accept("bob", 2000);
    sim.leave("bob");
    sim.fail("ExpireEndpoint", TIMED_OUT);
    assert_eq!(sim.errors("bridge"), 1);
}
