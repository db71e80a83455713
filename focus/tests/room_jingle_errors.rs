//! Every Jingle error of the end-to-end tests, on the room state machine alone: each is
//! answered with its error, and the session survives all of them.

mod room;

use jid::Jid;
use room::*;
use tokio_xmpp::parsers::stanza_error::DefinedCondition;
use tutti_focus::jingle::{Action, GroupSemantics, Jingle, Source, SourceGroup};

#[test]
fn bad_jingle_is_refused_and_the_session_survives() {
    let mut sim = Sim::new();
    sim.join_and_accept("alice", 1000);
    let initiate = sim.join_and_offer("mallory");
    let sid = initiate.sid.as_str();
    let unknown_session = Some("unknown-session".to_owned());

    let id = sim.jingle(
        "mallory",
        &session_accept("no-such-session", "mallory", 5000),
    );
    let (condition, app, _) = sim.reply(&id).expect_err("unknown sid");
    assert_eq!(
        (condition, app),
        (DefinedCondition::ItemNotFound, unknown_session.clone())
    );

    // Mallory's sid, from somebody who is not its peer (and Alice's sid from Mallory).
    let id = sim.jingle("alice", &session_accept(sid, "alice", 1000));
    assert_eq!(
        sim.reply(&id).map_err(|e| e.1),
        Err(unknown_session.clone())
    );
    let outsider = Jid::new(&format!("{ROOM}/eve")).unwrap();
    let id = sim.iq_from(outsider, session_accept(sid, "eve", 6000).to_element());
    assert_eq!(
        sim.reply(&id).map_err(|e| e.1),
        Err(unknown_session.clone())
    );

    let mut initiate_again = session_accept(sid, "mallory", 5000);
    initiate_again.action = Action::SessionInitiate;
    let id = sim.jingle("mallory", &initiate_again);
    assert_eq!(
        sim.reply(&id).map_err(|e| e.0),
        Err(DefinedCondition::ServiceUnavailable)
    );

    let malformed = minidom::Element::builder("jingle", "urn:xmpp:jingle:1")
        .attr(rxml::xml_ncname!("action").into(), "session-dance")
        .attr(rxml::xml_ncname!("sid").into(), sid)
        .build();
    let id = sim.iq_from(Jid::from(occupant("mallory")), malformed);
    let (condition, _, text) = sim.reply(&id).expect_err("malformed");
    assert_eq!(condition, DefinedCondition::BadRequest);
    assert!(text.contains("action"), "{text}");

    // Sources before the accept; an action the focus does not handle.
    let id = sim.jingle(
        "mallory",
        &video_update(Action::SourceAdd, sid, "mallory", 5100),
    );
    let (condition, app, _) = sim.reply(&id).expect_err("out of order");
    assert_eq!(
        (condition, app),
        (
            DefinedCondition::UnexpectedRequest,
            Some("out-of-order".to_owned())
        )
    );
    let id = sim.jingle("mallory", &Jingle::new(Action::ContentAdd, sid));
    assert_eq!(
        sim.reply(&id).map_err(|e| e.0),
        Err(DefinedCondition::FeatureNotImplemented)
    );

    // Alice's audio SSRC in Mallory's answer.
    let id = sim.jingle("mallory", &session_accept(sid, "mallory", 1000));
    let (condition, _, text) = sim.reply(&id).expect_err("a stolen SSRC");
    assert_eq!(condition, DefinedCondition::BadRequest);
    assert!(text.contains("1000"), "{text}");

    // More than 20 SSRCs.
    let mut greedy = session_accept(sid, "mallory", 5000);
    if let Some(description) = greedy.contents[0].description.as_mut() {
        description.sources.extend((1..=25).map(Source::new));
    }
    let id = sim.jingle("mallory", &greedy);
    assert_eq!(
        sim.reply(&id).map_err(|e| e.0),
        Err(DefinedCondition::BadRequest)
    );

    // A FID group pairing Mallory's video with Alice's.
    let mut grouping = session_accept(sid, "mallory", 5000);
    if let Some(video) = grouping.contents[1].description.as_mut() {
        video
            .source_groups
            .push(SourceGroup::new(GroupSemantics::Fid, vec![5001, 1001]));
    }
    let id = sim.jingle("mallory", &grouping);
    let (condition, _, text) = sim.reply(&id).expect_err("a foreign group");
    assert_eq!(condition, DefinedCondition::BadRequest);
    assert!(text.contains("1001"), "{text}");
    assert!(
        sim.requests.is_empty(),
        "nothing refused reached the bridge"
    );

    // The session survived all of that.
    let id = sim.jingle("mallory", &session_accept(sid, "mallory", 5000));
    sim.answer_all();
    assert_eq!(sim.reply(&id), Ok(()));
    assert_eq!(
        ssrcs(&sim.take_jingle("alice", Action::SourceAdd)),
        vec![5000, 5001]
    );
    // A second accept is out of order.
    let id = sim.jingle("mallory", &session_accept(sid, "mallory", 5000));
    let (condition, app, _) = sim.reply(&id).expect_err("accepted already");
    assert_eq!(
        (condition, app),
        (
            DefinedCondition::UnexpectedRequest,
            Some("out-of-order".to_owned())
        )
    );

    assert_eq!(sim.errors("unknown_session"), 3);
    assert_eq!(sim.errors("bad_request"), 4);
    assert_eq!(sim.errors("out_of_order"), 2);
    assert_eq!(sim.errors("service_unavailable"), 1);
    assert_eq!(sim.errors("not_implemented"), 1);
}

#[test]
fn requests_that_are_not_jingle_are_not_served() {
    let mut sim = Sim::new();
    let id = sim.iq_from(
        Jid::from(occupant("alice")),
        minidom::Element::bare("query", "jabber:iq:version"),
    );
    assert_eq!(
        sim.reply(&id).map_err(|e| e.0),
        Err(DefinedCondition::ServiceUnavailable)
    );
}
