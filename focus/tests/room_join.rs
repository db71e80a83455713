//! A participant's way into the conference, on the room state machine alone: join →
//! CreateConference → AllocateEndpoint → session-initiate → session-accept → UpdateEndpoint →
//! source-add to the others.

mod room;

use room::*;
use tutti_focus::jingle::Action;
use tutti_focus::room::{BridgeRequest, Metric};

#[test]
fn a_join_becomes_a_session_and_its_sources_reach_the_others() {
    let mut sim = Sim::new();
    sim.join("alice");
    // The conference first, then the endpoint, named by the MUC nick.
    let (create, request) = sim.take_request("CreateConference");
    assert!(
        matches!(&request, BridgeRequest::CreateConference { name, .. } if name == ROOM),
        "{request:?}"
    );
    assert!(
        sim.requests.is_empty(),
        "nothing else before the conference exists"
    );
    sim.answer(create, Ok(yes(&request)));
    let allocate = sim.grant("AllocateEndpoint");
    let BridgeRequest::AllocateEndpoint {
        conference_id,
        endpoint_id,
        participant_id,
        receives_by_mid,
    } = &allocate
    else {
        unreachable!()
    };
    assert_eq!(conference_id, &named_id(&request));
    assert_eq!(participant_id, "alice");
    assert!(
        !receives_by_mid,
        "a Jitsi client routes by SSRC: it gets every stream"
    );

    let initiate = sim.take_jingle("alice", Action::SessionInitiate);
    assert_eq!(
        initiate.initiator.as_deref(),
        Some(format!("{ROOM}/focus").as_str())
    );
    assert_eq!(
        initiate.responder.as_deref(),
        Some(format!("{ROOM}/alice").as_str())
    );
    assert_eq!(&bridge_session_id(&initiate), endpoint_id);
    assert!(ssrcs(&initiate).is_empty(), "nobody else sends yet");
    assert_eq!(sim.sessions("pending"), 1);
    assert!(sim
        .metrics
        .iter()
        .any(|m| matches!(m, Metric::Allocation(_))));

    // The accept goes to the bridge; its answer is the IQ's result.
    let accept = sim.jingle("alice", &session_accept(&initiate.sid, "alice", 1000));
    assert!(
        !sim.answered(&accept),
        "answered only once the bridge has taken it"
    );
    let (update, request) = sim.take_request("UpdateEndpoint");
    let BridgeRequest::UpdateEndpoint(body) = &request else {
        unreachable!()
    };
    assert_eq!(&body.endpoint_id, endpoint_id);
    assert!(body.transport.is_some() && body.media.is_some() && body.sources.is_some());
    sim.answer(update, Ok(yes(&request)));
    assert_eq!(sim.reply(&accept), Ok(()));
    assert_eq!((sim.sessions("pending"), sim.sessions("active")), (0, 1));

    // Bob's offer carries Alice's sources; Alice hears of Bob's once he has accepted.
    let bob = sim.join_and_offer("bob");
    assert_eq!(ssrcs(&bob), vec![1000, 1001]);
    assert!(sim.take_jingles("alice").is_empty());
    sim.jingle("bob", &session_accept(&bob.sid, "bob", 2000));
    sim.answer_all();
    let add = sim.take_jingle("alice", Action::SourceAdd);
    assert_eq!(add.sid, initiate.sid);
    assert_eq!(ssrcs(&add), vec![2000, 2001]);
    assert_eq!(sim.participants(), 2);
    assert_eq!(sim.sessions("active"), 2);
}

#[test]
fn joins_during_the_conference_creation_wait_for_it() {
    let mut sim = Sim::new();
    sim.join("alice");
    sim.join("bob");
    assert_eq!(
        sim.requests.len(),
        1,
        "one CreateConference: {:?}",
        sim.requests
    );
    sim.grant("CreateConference");
    let first = sim.take_request("AllocateEndpoint");
    let second = sim.take_request("AllocateEndpoint");
    assert_ne!(named_id(&first.1), named_id(&second.1));
    // The answers come in any order: Bob's first.
    sim.answer(second.0, Ok(yes(&second.1)));
    sim.take_jingle("bob", Action::SessionInitiate);
    assert!(sim.take_jingles("alice").is_empty());
    sim.answer(first.0, Ok(yes(&first.1)));
    sim.take_jingle("alice", Action::SessionInitiate);
}

#[test]
fn updates_for_a_participant_that_has_not_accepted_wait_for_its_accept() {
    let mut sim = Sim::new();
    sim.join_and_accept("alice", 1000);
    let bob = sim.join_and_offer("bob");
    let carol = sim.join_and_offer("carol");
    sim.jingle("carol", &session_accept(&carol.sid, "carol", 3000));
    sim.answer_all();
    assert_eq!(
        ssrcs(&sim.take_jingle("alice", Action::SourceAdd)),
        vec![3000, 3001]
    );
    assert!(
        sim.take_jingles("bob").is_empty(),
        "Bob has not accepted yet"
    );
    let accept = sim.jingle("bob", &session_accept(&bob.sid, "bob", 2000));
    sim.answer_all();
    // Carol's sources reach Bob right behind his accept, before its result.
    let add = sim.take_jingle("bob", Action::SourceAdd);
    assert_eq!(ssrcs(&add), vec![3000, 3001]);
    assert_eq!(sim.reply(&accept), Ok(()));
}
