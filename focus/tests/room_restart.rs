//! Session restarts, on the room state machine alone: lib-jitsi-meet's ICE-failure report
//! (session-info) and its restart by session-terminate, both limited to three a minute.

mod room;

use std::time::Duration;

use room::*;
use tokio_xmpp::parsers::stanza_error::DefinedCondition;
use tutti_focus::jingle::{Action, ReasonCondition, ReasonKind};

#[test]
fn an_ice_failure_replaces_the_session_on_a_new_endpoint() {
    let mut sim = Sim::new();
    let alice = sim.join_and_accept("alice", 1000);
    let bob = sim.join_and_accept("bob", 2000);
    sim.take_sent();

    // A report about an earlier bridge session is stale.
    let stale = sim.jingle("bob", &ice_failed(&bob.sid, "an-earlier-session"));
    assert_eq!(sim.reply(&stale), Ok(()));
    assert!(sim.take_jingles("bob").is_empty());
    assert!(sim.requests.is_empty());

    let old_endpoint = bridge_session_id(&bob);
    let report = sim.jingle("bob", &ice_failed(&bob.sid, &old_endpoint));
    assert_eq!(sim.reply(&report), Ok(()));
    let terminate = sim.take_jingle("bob", Action::SessionTerminate);
    assert_eq!(terminate.sid, bob.sid);
    assert_eq!(
        terminate.reason.expect("a reason").condition,
        ReasonCondition::Defined(ReasonKind::Success)
    );
    assert_eq!(
        ssrcs(&sim.take_jingle("alice", Action::SourceRemove)),
        vec![2000, 2001]
    );
    assert_eq!(
        named_id(&sim.take_request("ExpireEndpoint").1),
        old_endpoint
    );
    sim.answer_all();
    let initiate = sim.take_jingle("bob", Action::SessionInitiate);
    assert_ne!(initiate.sid, bob.sid);
    assert_ne!(bridge_session_id(&initiate), old_endpoint);
    assert_eq!(ssrcs(&initiate), vec![1000, 1001]);
    // The old session is gone; the new one takes Bob's sources back to Alice.
    let late = sim.jingle("bob", &ice_failed(&bob.sid, &old_endpoint));
    assert_eq!(
        sim.reply(&late).map_err(|e| e.1),
        Err(Some("unknown-session".to_owned()))
    );
    sim.jingle("bob", &session_accept(&initiate.sid, "bob", 2000));
    sim.answer_all();
    let add = sim.take_jingle("alice", Action::SourceAdd);
    assert_eq!((ssrcs(&add), add.sid), (vec![2000, 2001], alice.sid));
}

#[test]
fn restarts_by_terminate_are_limited_to_three_a_minute() {
    let mut sim = Sim::new();
    let mut current = sim.join_and_accept("alice", 1000);
    for _ in 0..3 {
        sim.advance(Duration::from_secs(5));
        let id = sim.jingle(
            "alice",
            &restart_request(&current.sid, &bridge_session_id(&current)),
        );
        assert_eq!(sim.reply(&id), Ok(()));
        sim.answer_all();
        let initiate = sim.take_jingle("alice", Action::SessionInitiate);
        assert_ne!(initiate.sid, current.sid);
        current = initiate;
    }
    // The fourth within the minute only ends the session.
    let id = sim.jingle(
        "alice",
        &restart_request(&current.sid, &bridge_session_id(&current)),
    );
    assert_eq!(sim.reply(&id), Ok(()));
    assert_eq!(
        named_id(&sim.take_request("ExpireEndpoint").1),
        bridge_session_id(&current)
    );
    assert!(sim.requests.is_empty(), "no new endpoint");
    assert_eq!(sim.errors("restart_limited"), 1);
    assert_eq!(sim.sessions("pending") + sim.sessions("active"), 0);
    assert_eq!(sim.participants(), 1, "still in the room");
}

#[test]
fn ice_failure_reports_past_the_limit_are_refused_until_the_window_moves_on() {
    let mut sim = Sim::new();
    let mut current = sim.join_and_offer("alice");
    for _ in 0..3 {
        let id = sim.jingle(
            "alice",
            &ice_failed(&current.sid, &bridge_session_id(&current)),
        );
        assert_eq!(sim.reply(&id), Ok(()));
        sim.answer_all();
        current = sim.take_jingle("alice", Action::SessionInitiate);
    }
    let id = sim.jingle(
        "alice",
        &ice_failed(&current.sid, &bridge_session_id(&current)),
    );
    let (condition, _, text) = sim.reply(&id).expect_err("over the limit");
    assert_eq!(condition, DefinedCondition::ResourceConstraint);
    assert!(text.contains("at most 3"), "{text}");
    assert!(sim.requests.is_empty());
    assert!(sim
        .take_jingles("alice")
        .iter()
        .all(|j| j.action != Action::SessionTerminate));

    sim.advance(Duration::from_secs(60));
    let id = sim.jingle(
        "alice",
        &ice_failed(&current.sid, &bridge_session_id(&current)),
    );
    assert_eq!(sim.reply(&id), Ok(()));
    sim.answer_all();
    sim.take_jingle("alice", Action::SessionInitiate);
}
