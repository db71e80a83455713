//! A conference an earlier focus left on a bridge (found there after a restart), on the room
//! state machine alone: it is expired, and each of its participants still in the room gets a
//! session-terminate of its old session (its endpoint id is the sid) before the offer of a new
//! one; whoever is gone is not told, and the room's own conference is left alone. The same
//! after the focus lost its XMPP connection and joins again.

mod room;

use jid::Jid;
use room::*;
use tokio_xmpp::parsers::presence::{Presence, Type as PresenceType};
use tokio_xmpp::Stanza;
use tutti_focus::jingle::{Action, ReasonCondition, ReasonKind};
use tutti_focus::room::BridgeRequest;

/// The focus's own presence in the room: its join is complete.
fn focus_in(sim: &mut Sim) {
    sim.stanza(Stanza::Presence(
        Presence::available().with_from(Jid::from(occupant("focus"))),
    ));
}

#[test]
fn the_old_sessions_end_before_the_new_ones_are_offered() {
    let mut sim = Sim::new();
    sim.left_behind("old", &[("alice", "ea"), ("bob", "eb"), ("gone", "eg")]);
    sim.join("alice");
    sim.join("bob");
    focus_in(&mut sim);
    let expire = sim.take_request("ExpireConference").1;
    assert_eq!(expire.conference_id(), "old");
    sim.answer_all();
    for (nick, old) in [("alice", "ea"), ("bob", "eb")] {
        let jingles = sim.take_jingles(nick);
        let actions: Vec<Action> = jingles.iter().map(|jingle| jingle.action).collect();
        assert_eq!(
            actions,
            [Action::SessionTerminate, Action::SessionInitiate],
            "{nick}"
        );
        assert_eq!(jingles[0].sid, old);
        assert_eq!(
            jingles[0].reason.as_ref().map(|reason| &reason.condition),
            Some(&ReasonCondition::Defined(ReasonKind::Success))
        );
        // The new session's sid is its endpoint's id.
        assert_eq!(jingles[1].sid, bridge_session_id(&jingles[1]));
        assert_ne!(jingles[1].sid, old);
    }
    // Whoever had a session and was not in the room when the focus came in is not told
    // (somebody taking the nick later has nothing to end).
    sim.join("gone");
    sim.answer_all();
    let actions: Vec<Action> = sim
        .take_jingles("gone")
        .iter()
        .map(|jingle| jingle.action)
        .collect();
    assert_eq!(actions, [Action::SessionInitiate]);
    assert_eq!(sim.errors("bridge"), 0);
}

#[test]
fn found_after_the_room_is_running_only_other_sessions_end() {
    let mut sim = Sim::new();
    focus_in(&mut sim);
    let alice = sim.join_and_accept("alice", 1000);
    sim.take_sent();
    let own = sim.room.conference_id().expect("a conference").to_owned();
    // Its own conference, found on the bridge it is on: nothing happens.
    sim.left_behind(&own, &[("alice", alice.sid.as_str())]);
    assert!(!sim.has_request("ExpireConference"));
    assert!(sim.take_sent().is_empty());
    // Another one, with an old session of Alice's and one of someone gone.
    sim.left_behind("old", &[("alice", "ea"), ("gone", "eg")]);
    sim.answer_all();
    let terminate = sim.take_jingle("alice", Action::SessionTerminate);
    assert_eq!(terminate.sid, "ea");
    assert!(sim.take_sent().is_empty(), "nobody else is told anything");
    assert_eq!(sim.sessions("active"), 1, "Alice's session goes on");
}

#[test]
fn a_room_joined_for_a_conference_left_behind_is_left_when_empty() {
    let mut sim = Sim::new();
    sim.left_behind("old", &[("alice", "ea")]);
    focus_in(&mut sim);
    assert!(matches!(
        sim.take_request("ExpireConference").1,
        BridgeRequest::ExpireConference { .. }
    ));
    assert!(sim.take_sent().iter().any(|stanza| matches!(
        stanza,
        Stanza::Presence(presence) if presence.type_ == PresenceType::Unavailable
    )));
    assert!(sim.room.is_closed());
}

#[test]
fn after_a_lost_connection_the_old_sessions_end_before_the_new_ones() {
    let mut sim = Sim::new();
    focus_in(&mut sim);
    let alice = sim.join_and_accept("alice", 1000);
    let bob = sim.join_and_accept("bob", 2000);
    sim.take_sent();
    sim.room.rejoin(sim.now);
    // The server sends the occupants still there (Alice only), then the focus's own presence.
    sim.join("alice");
    focus_in(&mut sim);
    sim.answer_all();
    let jingles = sim.take_jingles("alice");
    let actions: Vec<Action> = jingles.iter().map(|jingle| jingle.action).collect();
    assert_eq!(actions, [Action::SessionTerminate, Action::SessionInitiate]);
    assert_eq!(jingles[0].sid, alice.sid);
    assert_ne!(jingles[1].sid, alice.sid);
    // Bob, gone meanwhile, is not told; if he comes back, he is only invited.
    sim.join("bob");
    sim.answer_all();
    let actions: Vec<Action> = sim
        .take_jingles("bob")
        .iter()
        .map(|jingle| jingle.action)
        .collect();
    assert_eq!(actions, [Action::SessionInitiate]);
    assert_ne!(bob.sid, alice.sid);
}
