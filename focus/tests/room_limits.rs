//! A participant's Jingle requests beyond its rate (issue 22), on the room state machine alone:
//! refused with `resource-constraint` and counted as `rate_limited`, whatever they are (source
//! updates, unknown sessions, malformed); its budget comes back
//! with time, and nobody else's is spent.

mod room;

use std::time::Duration;

use jid::Jid;
use room::*;
use tokio_xmpp::parsers::stanza_error::DefinedCondition;
use tutti_focus::jingle::Action;
use tutti_focus::room::RoomLimits;

#[test]
fn requests_beyond_a_participants_rate_are_refused_and_counted() {
    let mut sim = Sim::with_limits(
        false,
        RoomLimits {
            jingle_request_rate: 10,
            ..RoomLimits::default()
        },
    );
    let alice = sim.join_and_accept("alice", 1000);
    let mallory = sim.join_and_accept("mallory", 5000);
    let _ = sim.take_sent();
    // Mallory's session-accept took one of its ten: nine more go through at once.
    let mut answers = Vec::new();
    for i in 0..200u32 {
        let id = match i % 3 {
            0 => sim.jingle(
                "mallory",
                &video_update(Action::SourceAdd, &mallory.sid, "mallory", 6000 + 2 * i),
            ),
            1 => sim.jingle(
                "mallory",
                &video_update(Action::SourceAdd, "no-such-session", "mallory", 9000),
            ),
            _ => sim.iq_from(
                Jid::from(occupant("mallory")),
                minidom::Element::builder("jingle", "urn:xmpp:jingle:1").build(),
            ),
        };
        answers.push(id);
        sim.answer_all();
    }
    let limited = answers
        .iter()
        .filter(|id| {
            matches!(
                sim.reply(id),
                Err((DefinedCondition::ResourceConstraint, _, ref text)) if text.contains("at most 10 a second")
            )
        })
        .count();
    assert_eq!(limited, 191, "all but the nine left in the budget");
    assert_eq!(sim.errors("rate_limited"), 191);
    assert!(answers.iter().all(|id| sim.answered(id)));

    // Alice's budget is her own.
    let id = sim.jingle(
        "alice",
        &video_update(Action::SourceAdd, &alice.sid, "alice", 1100),
    );
    sim.answer_all();
    assert_eq!(sim.reply(&id), Ok(()));

    // Half a second later mallory may send five more.
    sim.advance(Duration::from_millis(500));
    let later: Vec<String> = (0..8)
        .map(|_| {
            let id = sim.jingle(
                "mallory",
                &video_update(Action::SourceAdd, "no-such-session", "mallory", 9000),
            );
            sim.answer_all();
            id
        })
        .collect();
    let refused_as_unknown = later
        .iter()
        .filter(|id| {
            sim.reply(id)
                .is_err_and(|e| e.0 == DefinedCondition::ItemNotFound)
        })
        .count();
    assert_eq!(refused_as_unknown, 5);
    assert_eq!(sim.errors("rate_limited"), 194);
}
