//! A conference with participants from several regions, on the room state machine alone
//! (docs/focus.md "Cascading"): with no cap, a participant whose region has no bridge of the
//! conference yet gets a conference on a bridge in its region, linked to the others; one from
//! a region with no bridge at all, or with none, joins the conference where it is.

mod room;

use room::*;
use tutti_focus::pool::BridgeId;
use tutti_focus::room::BridgeRequest;

/// `nick` from `region` joins and accepts (audio SSRC `ssrc`).
fn arrives(sim: &mut Sim, nick: &str, region: &str, ssrc: u32) {
    sim.join_in_region(nick, region);
    sim.answer_all();
    let initiate = sim.take_jingle(nick, tutti_focus::jingle::Action::SessionInitiate);
    let id = sim.jingle(nick, &session_accept(&initiate.sid, nick, ssrc));
    sim.answer_all();
    assert_eq!(sim.reply(&id), Ok(()));
}

#[test]
fn a_participant_gets_a_bridge_in_its_region() {
    let mut sim = Sim::new();
    sim.pool = [("us1", "us"), ("eu1", "eu"), ("eu2", "eu")]
        .map(|(bridge, region)| (bridge.to_owned(), region.to_owned()))
        .to_vec();
    arrives(&mut sim, "alice", "eu", 1000);
    arrives(&mut sim, "bob", "eu", 2000);
    let first = sim.conference_of("alice");
    assert_eq!(sim.conference_of("bob"), first);
    assert_eq!(sim.take_answered("CreateConference").len(), 1);

    // Carol is in the US: a conference on the US bridge, and only there.
    arrives(&mut sim, "carol", "us", 3000);
    let created = sim.take_answered("CreateConference");
    let [BridgeRequest::CreateConference {
        region,
        avoid,
        strict_region,
        ..
    }] = &created[..]
    else {
        panic!("{created:?}");
    };
    assert_eq!(
        (region.as_str(), avoid.as_slice(), *strict_region),
        ("us", &[BridgeId("eu1".into())][..], true)
    );
    let us = sim.conference_of("carol");
    assert_ne!(us, first);
    assert_eq!(sim.take_answered("AllocateRelay").len(), 2, "linked");

    // Dave in the US joins carol's; erin from a region without a bridge, and frank who says
    // none, join the first bridge (they fit anywhere: no cap).
    arrives(&mut sim, "dave", "us", 4000);
    assert_eq!(sim.conference_of("dave"), us);
    arrives(&mut sim, "erin", "ap", 5000);
    let created = sim.take_answered("CreateConference");
    assert!(
        matches!(&created[..], [BridgeRequest::CreateConference { region, strict_region: true, .. }] if region == "ap"),
        "a bridge in ap is asked for, in vain: {created:?}"
    );
    assert_eq!(sim.conference_of("erin"), first);
    sim.join("frank");
    sim.answer_all();
    assert_eq!(sim.conference_of("frank"), first);
    assert!(sim.take_answered("CreateConference").is_empty());
    assert_eq!(sim.room.conference_ids(), [first, us]);
    assert_eq!(sim.errors("allocation"), 0);
}
