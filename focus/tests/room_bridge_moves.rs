//! A room whose bridge failed, on the room state machine alone: every participant is re-invited
//! at once on a new conference (a session-terminate of its session, then a new
//! session-initiate, as lib-jitsi-meet expects a move), nothing is asked of the failed bridge,
//! a request that was with it is answered unknown-session, and the new sessions carry the
//! sources again once accepted.

mod room;

use room::*;
use std::time::Duration;
use tutti_focus::jingle::{Action, ReasonCondition, ReasonKind};

use tutti_focus::room::{BridgeRequest, MOVE_HOLD};

#[test]
fn every_participant_is_re_invited_on_a_new_conference() {
    let mut sim = Sim::new();
    sim.join_in_region("alice", "eu-west");
    sim.answer_all();
    let alice = sim.take_jingle("alice", Action::SessionInitiate);
    let id = sim.jingle("alice", &session_accept(&alice.sid, "alice", 1000));
    sim.answer_all();
    assert_eq!(sim.reply(&id), Ok(()));
    let bob = sim.join_and_accept("bob", 2000);
    // Carol is offered a session and has not answered yet.
    let carol = sim.join_and_offer("carol");
    let old_conference = sim.room.conference_id().expect("a conference").to_owned();
    sim.take_sent();
    // Bob's source-add is with the bridge when it fails.
    let pending = sim.jingle(
        "bob",
        &video_update(Action::SourceAdd, &bob.sid, "bob", 2100),
    );
    let (in_flight, _) = sim.take_request("UpdateEndpoint");
    assert_eq!(sim.sessions("active"), 2);
    assert_eq!(sim.sessions("pending"), 1);

    sim.bridge_failed();

    for (nick, old) in [("alice", &alice), ("bob", &bob), ("carol", &carol)] {
        let terminate = sim.take_jingle(nick, Action::SessionTerminate);
        assert_eq!(terminate.sid, old.sid, "{nick}");
        let reason = terminate.reason.expect("a reason");
        assert_eq!(
            reason.condition,
            ReasonCondition::Defined(ReasonKind::Success)
        );
        assert!(reason.text.expect("a text").text.contains("moving"));
    }
    assert!(
        sim.take_jingles("alice").is_empty(),
        "nobody is told of sources going: every session ends"
    );
    assert_eq!((sim.sessions("active"), sim.sessions("pending")), (0, 0));
    // Nothing goes to the failed bridge: one new conference, under a new id, in the first
    // participant's region.
    assert_eq!(sim.requests.len(), 1, "{:?}", sim.requests);
    let (create, request) = sim.take_request("CreateConference");
    let BridgeRequest::CreateConference {
        conference_id,
        region,
        ..
    } = &request
    else {
        unreachable!()
    };
    assert_ne!(conference_id, &old_conference);
    assert_eq!(region, "eu-west");
    assert_eq!(sim.room.conference_id(), Some(conference_id.as_str()));

    // The failed bridge's late answer: the request is answered, its session is gone.
    sim.answer(
        in_flight,
        Err(tutti_focus::room::BridgeError {
            call: "UpdateEndpoint",
            cause: "no answer within 5 s".into(),
        }),
    );
    assert_eq!(
        sim.reply(&pending).map_err(|e| e.1),
        Err(Some("unknown-session".to_owned()))
    );
    assert!(sim.requests.is_empty(), "{:?}", sim.requests);

    sim.answer(create, Ok(yes(&request)));
    assert_eq!(sim.requests.len(), 3, "one endpoint each");
    sim.answer_all();
    let mut offers = Vec::new();
    for (nick, old) in [("alice", &alice), ("bob", &bob), ("carol", &carol)] {
        let initiate = sim.take_jingle(nick, Action::SessionInitiate);
        assert_ne!(initiate.sid, old.sid);
        assert_ne!(bridge_session_id(&initiate), bridge_session_id(old));
        assert!(
            ssrcs(&initiate).is_empty(),
            "{nick}: no sources before the accepts"
        );
        offers.push(initiate);
    }
    assert_eq!(sim.sessions("pending"), 3);
    // Accepted again: the sources reach the others anew, held for the others of the move
    // (one update each once all are back), at most MOVE_HOLD: carol does not answer.
    let id = sim.jingle("alice", &session_accept(&offers[0].sid, "alice", 1000));
    sim.answer_all();
    assert_eq!(sim.reply(&id), Ok(()));
    let id = sim.jingle("bob", &session_accept(&offers[1].sid, "bob", 2000));
    sim.answer_all();
    assert_eq!(sim.reply(&id), Ok(()));
    sim.advance(MOVE_HOLD - Duration::from_millis(1));
    assert!(sim.take_jingles("alice").is_empty());
    sim.advance(Duration::from_millis(1));
    let add = sim.take_jingle("alice", Action::SourceAdd);
    assert_eq!(
        (ssrcs(&add), add.sid),
        (vec![2000, 2001], offers[0].sid.clone())
    );
    let add = sim.take_jingle("bob", Action::SourceAdd);
    assert_eq!(ssrcs(&add), [1000, 1001]);
    assert_eq!(sim.sessions("active"), 2);
    // Carol accepts late: alice's and bob's sources in one source-add, hers to each of them
    // at once (the move is over).
    let id = sim.jingle("carol", &session_accept(&offers[2].sid, "carol", 3000));
    sim.answer_all();
    assert_eq!(sim.reply(&id), Ok(()));
    let add = sim.take_jingle("carol", Action::SourceAdd);
    assert_eq!(ssrcs(&add), [1000, 2000, 1001, 2001]);
    for nick in ["alice", "bob"] {
        let add = sim.take_jingle(nick, Action::SourceAdd);
        assert_eq!(ssrcs(&add), [3000, 3001], "{nick}");
    }
    assert_eq!(sim.errors("restart_limited"), 0);
}

#[test]
fn a_conference_being_created_is_asked_of_another_bridge() {
    let mut sim = Sim::new();
    sim.join("alice");
    let (first, request) = sim.take_request("CreateConference");
    let first_id = named_id(&request);
    sim.bridge_failed();
    let (second, request) = sim.take_request("CreateConference");
    assert_ne!(named_id(&request), first_id);
    // The failed bridge made the first after all: it is expired (its executor knows where).
    sim.answer(first, Ok(tutti_focus::room::BridgeAnswer::Done));
    let (_, expiry) = sim.take_request("ExpireConference");
    assert_eq!(named_id(&expiry), first_id);
    sim.answer(second, Ok(yes(&request)));
    sim.answer_all();
    sim.take_jingle("alice", Action::SessionInitiate);
}

#[test]
fn a_room_without_a_conference_has_nothing_to_move() {
    let mut sim = Sim::new();
    sim.bridge_failed();
    assert!(sim.requests.is_empty());
    assert!(sim.take_sent().is_empty());
}
