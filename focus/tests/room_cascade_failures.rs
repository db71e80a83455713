//! Failures in a conference spread over bridges, on the room state machine alone (docs/focus.md
//! "Cascading"): a bridge of the conference failing, or the relay between two of its bridges
//! timing out, costs only that bridge's participants their sessions — they are moved (a
//! session-terminate, then a new session-initiate) to a conference on another bridge, linked
//! again — while the others keep theirs and are told only that the moved participants'
//! sources went and came back. A bridge given up for a failed relay takes no new conference of
//! the room for a minute. With no other bridge, the cap gives way.

mod room;

use room::*;
use std::time::Duration;
use tutti_focus::jingle::{Action, ReasonCondition, ReasonKind};
use tutti_focus::pool::BridgeId;

use tutti_focus::room::{BridgeRequest, Metric, MOVE_HOLD};

/// A room capped at 2 per bridge on bridges `pool` (in order), with `nicks` in it, each having
/// accepted its session (audio SSRC 1000, 2000, …).
fn room_with(pool: &[&str], nicks: &[&str]) -> Sim {
    let mut sim = Sim::capped(2, pool);
    for (i, nick) in nicks.iter().enumerate() {
        sim.join_and_accept(nick, 1000 * (i as u32 + 1));
    }
    sim
}

fn relays_linked(sim: &Sim) -> usize {
    sim.metrics
        .iter()
        .filter(|m| **m == Metric::RelayLinked)
        .count()
}

/// `nick` got a session-terminate saying it moves, and a new session-initiate; it accepts.
fn moved(sim: &mut Sim, nick: &str, ssrc: u32) {
    let jingles = sim.take_jingles(nick);
    let terminate = jingles
        .iter()
        .find(|j| j.action == Action::SessionTerminate)
        .unwrap_or_else(|| panic!("{nick} is not told it moves: {jingles:?}"));
    let reason = terminate.reason.as_ref().expect("a reason");
    assert_eq!(
        reason.condition,
        ReasonCondition::Defined(ReasonKind::Success)
    );
    let initiate = jingles
        .iter()
        .find(|j| j.action == Action::SessionInitiate)
        .unwrap_or_else(|| panic!("{nick} is not invited again: {jingles:?}"));
    let id = sim.jingle(nick, &session_accept(&initiate.sid, nick, ssrc));
    sim.answer_all();
    assert_eq!(sim.reply(&id), Ok(()), "{nick}'s new session-accept");
}

/// `nick` kept its session: no terminate, no initiate; told in one source-remove that the
/// sources of every participant moved (`moved`: their audio SSRCs) went, and in one source-add,
/// once all of them had their new sessions, that they came back — not once per moved
/// participant (each update is a renegotiation for the client).
fn stayed(sim: &mut Sim, nick: &str, moved: &[u32]) {
    let jingles = sim.take_jingles(nick);
    let actions: Vec<Action> = jingles.iter().map(|j| j.action).collect();
    assert_eq!(
        actions,
        [Action::SourceRemove, Action::SourceAdd],
        "{nick}: {jingles:?}"
    );
    for update in &jingles {
        let ssrcs = ssrcs(update);
        // Audio and video of each.
        assert_eq!(ssrcs.len(), 2 * moved.len(), "{nick}: {update:?}");
        for audio in moved {
            assert!(ssrcs.contains(audio), "{nick}: {audio} in {update:?}");
        }
    }
}

#[test]
fn a_failed_bridge_moves_only_its_participants_to_another_bridge_linked_anew() {
    let mut sim = room_with(&["b1", "b2", "b3"], &["alice", "bob", "carol", "dave"]);
    let [primary, leg] = <[String; 2]>::try_from(sim.room.conference_ids()).unwrap();
    assert_eq!(sim.conference_of("carol"), leg);
    assert_eq!(sim.conference_of("dave"), leg);
    assert_eq!(relays_linked(&sim), 1);
    sim.take_sent();
    sim.answered.clear();

    // b2 fails (its executor says so, and has no more of it in its pool).
    sim.pool.retain(|(bridge, _)| bridge != "b2");
    sim.conference_failed(&leg);
    // Nothing is asked of the failed bridge: the relay's side on b1 is expired, and a new
    // conference for carol and dave is asked for on a bridge other than b1.
    assert!(
        sim.requests
            .iter()
            .all(|(_, request)| request.conference_id() != leg),
        "{:?}",
        sim.requests
    );
    sim.answer_all();
    let expired = sim.take_answered("ExpireRelay");
    assert!(
        matches!(&expired[..], [BridgeRequest::ExpireRelay { conference_id, relay_id }]
            if *conference_id == primary && *relay_id == leg),
        "{expired:?}"
    );
    let created = sim.take_answered("CreateConference");
    let [BridgeRequest::CreateConference {
        conference_id: third,
        avoid,
        ..
    }] = &created[..]
    else {
        panic!("one new conference: {created:?}");
    };
    assert_eq!(avoid, &[BridgeId("b1".into())]);
    for (nick, ssrc) in [("carol", 3000), ("dave", 4000)] {
        moved(&mut sim, nick, ssrc);
        assert_eq!(&sim.conference_of(nick), third);
    }
    // Alice and bob keep their sessions and hear of carol's and dave's sources going and
    // coming back; the new bridge is linked to theirs.
    stayed(&mut sim, "alice", &[3000, 4000]);
    stayed(&mut sim, "bob", &[3000, 4000]);
    assert_eq!(sim.sessions("active"), 4);
    assert_eq!(relays_linked(&sim), 2);
    assert_eq!(sim.room.conference_ids(), [primary, third.clone()]);
}

#[test]
fn a_moved_participant_that_does_not_come_back_holds_the_others_return_for_at_most_move_hold() {
    let mut sim = room_with(&["b1", "b2", "b3"], &["alice", "bob", "carol", "dave"]);
    let leg = sim.room.conference_ids()[1].clone();
    sim.take_sent();
    sim.pool.retain(|(bridge, _)| bridge != "b2");
    sim.conference_failed(&leg);
    sim.answer_all();
    moved(&mut sim, "carol", 3000);
    // Dave is offered his new session and does not answer: alice was told both went, and is
    // told of carol's return MOVE_HOLD after it was held, not before.
    let dave = sim.take_jingle("dave", Action::SessionInitiate);
    let remove = sim.take_jingle("alice", Action::SourceRemove);
    assert_eq!(ssrcs(&remove).len(), 4);
    sim.advance(MOVE_HOLD - Duration::from_millis(1));
    assert!(sim.take_jingles("alice").is_empty());
    sim.advance(Duration::from_millis(1));
    let add = sim.take_jingle("alice", Action::SourceAdd);
    assert_eq!(ssrcs(&add).len(), 2);
    assert!(ssrcs(&add).contains(&3000));
    // Dave's return, later, goes at once.
    let id = sim.jingle("dave", &session_accept(&dave.sid, "dave", 4000));
    sim.answer_all();
    assert_eq!(sim.reply(&id), Ok(()));
    let add = sim.take_jingle("alice", Action::SourceAdd);
    assert_eq!(ssrcs(&add).len(), 2);
    assert!(ssrcs(&add).contains(&4000));
    assert_eq!(sim.sessions("active"), 4);
}

#[test]
fn a_standards_client_that_stays_gets_one_content_remove_and_one_content_add_per_move() {
    let mut sim = Sim::capped(2, &["b1", "b2", "b3"]);
    sim.join_with_features("gus", "v1", &standard_features());
    sim.answer_all();
    let initiate = sim.take_jingle("gus", Action::SessionInitiate);
    let id = sim.jingle("gus", &standard_accept(&initiate, "gus", 300));
    sim.answer_all();
    assert_eq!(sim.reply(&id), Ok(()));
    for (nick, ssrc) in [("alice", 1000), ("carol", 3000), ("dave", 4000)] {
        sim.join_and_accept(nick, ssrc);
    }
    let leg = sim.room.conference_ids()[1].clone();
    assert_eq!(sim.conference_of("carol"), leg);
    assert_eq!(sim.conference_of("dave"), leg);
    sim.take_sent();

    sim.pool.retain(|(bridge, _)| bridge != "b2");
    sim.conference_failed(&leg);
    sim.answer_all();
    let removed = sim.take_jingle("gus", Action::ContentRemove);
    assert_eq!(
        removed.contents.len(),
        4,
        "carol's and dave's audio and video"
    );
    moved(&mut sim, "carol", 3000);
    moved(&mut sim, "dave", 4000);
    let jingles = sim.take_jingles("gus");
    assert_eq!(jingles.len(), 1, "{jingles:?}");
    assert_eq!(jingles[0].action, Action::ContentAdd);
    assert_eq!(jingles[0].contents.len(), 4);
    let ssrcs = ssrcs(&jingles[0]);
    assert!(ssrcs.contains(&3000) && ssrcs.contains(&4000), "{ssrcs:?}");
    stayed(&mut sim, "alice", &[3000, 4000]);
}

#[test]
fn the_first_bridge_failing_hands_its_role_to_the_other() {
    let mut sim = room_with(&["b1", "b2", "b3"], &["alice", "bob", "carol"]);
    let [primary, leg] = <[String; 2]>::try_from(sim.room.conference_ids()).unwrap();
    sim.take_sent();
    sim.answered.clear();

    sim.pool.retain(|(bridge, _)| bridge != "b1");
    sim.conference_failed(&primary);
    sim.answer_all();
    // Carol's conference is the room's first now; alice joins it (it holds one), bob is the
    // third there: a new conference for him on a bridge other than carol's.
    assert_eq!(sim.room.conference_id(), Some(leg.as_str()));
    let created = sim.take_answered("CreateConference");
    assert!(
        matches!(&created[..], [BridgeRequest::CreateConference { avoid, .. }]
            if avoid == &[BridgeId("b2".into())]),
        "{created:?}"
    );
    moved(&mut sim, "alice", 1000);
    assert_eq!(sim.conference_of("alice"), leg);
    moved(&mut sim, "bob", 2000);
    let third = sim.conference_of("bob");
    assert_ne!(third, leg);
    stayed(&mut sim, "carol", &[1000, 2000]);
    assert_eq!(sim.room.conference_ids(), [leg, third]);
    assert_eq!(relays_linked(&sim), 2);
}

#[test]
fn a_timed_out_relay_gives_up_the_smaller_side() {
    let mut sim = room_with(&["b1", "b2", "b3"], &["alice", "bob", "carol"]);
    let [primary, leg] = <[String; 2]>::try_from(sim.room.conference_ids()).unwrap();
    sim.take_sent();
    sim.answered.clear();

    // Either bridge may report it: the side on b2 does here.
    sim.relay_failed(&leg, &primary);
    assert_eq!(
        sim.metrics
            .iter()
            .filter(|m| **m == Metric::RelayFailed)
            .count(),
        1
    );
    sim.answer_all();
    // Carol's side (one participant) is given up: expired on its bridge, which is alive.
    let expired: Vec<String> = sim
        .take_answered("ExpireConference")
        .iter()
        .map(named_id)
        .collect();
    assert_eq!(expired, std::slice::from_ref(&leg));
    // Carol moves; b1 is full, and b2 takes no new conference of the room for a while: b3.
    let created = sim.take_answered("CreateConference");
    assert!(
        matches!(&created[..], [BridgeRequest::CreateConference { avoid, .. }]
            if avoid == &[BridgeId("b1".into()), BridgeId("b2".into())]),
        "{created:?}"
    );
    moved(&mut sim, "carol", 3000);
    let new_leg = sim.conference_of("carol");
    assert_ne!(new_leg, leg);
    stayed(&mut sim, "alice", &[3000]);
    assert_eq!(
        sim.room.conference_ids(),
        [primary.clone(), new_leg.clone()]
    );
    assert_eq!(relays_linked(&sim), 2);

    // That link fails too, and b3 is given up as well: dan, the next, stays over the cap on
    // b1, and so does carol, moved again. A minute later b2 takes the room again.
    sim.relay_failed(&primary, &new_leg);
    sim.answer_all();
    moved(&mut sim, "carol", 3000);
    assert_eq!(sim.conference_of("carol"), primary);
    assert_eq!(sim.room.conference_ids(), std::slice::from_ref(&primary));
    sim.join_and_accept("dan", 4000);
    assert_eq!(sim.conference_of("dan"), primary);
    sim.advance(std::time::Duration::from_secs(61));
    sim.join_and_accept("eve", 5000);
    let created = sim.take_answered("CreateConference");
    assert!(
        matches!(created.last(), Some(BridgeRequest::CreateConference { avoid, .. })
            if avoid == &[BridgeId("b1".into())]),
        "{created:?}"
    );
    assert_ne!(sim.conference_of("eve"), primary);

    // A relay the room does not know of changes nothing.
    sim.answer_all();
    sim.take_sent();
    sim.relay_failed("elsewhere", "nobody");
    assert!(sim.take_jingles("carol").is_empty());
    assert!(sim.requests.is_empty());
}

#[test]
fn with_no_other_bridge_the_cap_gives_way() {
    let mut sim = room_with(&["b1"], &["alice", "bob", "carol"]);
    let created = sim.take_answered("CreateConference");
    assert_eq!(created.len(), 2, "the room asked for another bridge once");
    assert_eq!(sim.room.conference_ids().len(), 1);
    let first = sim.room.conference_id().unwrap().to_owned();
    assert_eq!(sim.conference_of("carol"), first);
    assert_eq!(sim.sessions("active"), 3);
    assert!(
        !sim.take_bridge_presences().contains(&true),
        "the bridge is available: no bridgeNotAvailable"
    );
    assert_eq!(sim.errors("allocation"), 0);
    assert!(sim.take_answered("AllocateRelay").is_empty());
}
