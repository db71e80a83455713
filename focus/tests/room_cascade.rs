//! A conference spread over two bridges, on the room state machine alone (cascading, docs/focus.md
//! "Cascading"): with a cap of 2 participants per bridge, the third participant gets a
//! conference on another bridge, the two bridges are linked by a relay (allocated on both, one
//! side controlling, then each given the other's transport, the conference's media and the
//! participants behind it with their sources), everyone is told of everyone's sources, the
//! relay's participants follow joins, source-adds and leaves, and the second bridge's
//! conference and relay are expired when its last participant leaves.

mod room;

use room::*;
use tutti_focus::jingle::Action;
use tutti_focus::pool::BridgeId;
use tutti_focus::room::{BridgeRequest, Metric};
use tutti_proto::bridge_v1 as pb;

/// A room capped at 2 participants per bridge, with bridges b1, b2, b3 in its executor's pool.
fn capped_room() -> Sim {
    Sim::capped(2, &["b1", "b2", "b3"])
}

/// The conference ids of the `CreateConference`s answered since the last take.
fn created(sim: &mut Sim) -> Vec<(String, Vec<BridgeId>)> {
    sim.take_answered("CreateConference")
        .into_iter()
        .map(|request| match request {
            BridgeRequest::CreateConference {
                conference_id,
                avoid,
                ..
            } => (conference_id, avoid),
            _ => unreachable!(),
        })
        .collect()
}

/// The `UpdateRelay`s answered since the last take: (conference, relay, update).
fn relay_updates(sim: &mut Sim) -> Vec<pb::UpdateRelayRequest> {
    sim.take_answered("UpdateRelay")
        .into_iter()
        .map(|request| match request {
            BridgeRequest::UpdateRelay(update) => *update,
            _ => unreachable!(),
        })
        .collect()
}

/// The participants an update lists behind the relay, with their SSRCs (sources and outputs).
fn listed(update: &pb::UpdateRelayRequest) -> Vec<(String, Vec<u32>)> {
    update
        .remote_endpoints
        .as_ref()
        .expect("the participants behind the relay")
        .endpoints
        .iter()
        .map(|endpoint| {
            let sources = endpoint.sources.as_ref().expect("sources");
            let mut ssrcs: Vec<u32> = sources.sources.iter().map(|s| s.ssrc).collect();
            ssrcs.extend(sources.outputs.iter().flat_map(|o| [o.ssrc, o.rtx_ssrc]));
            (endpoint.participant_id.clone(), ssrcs)
        })
        .collect()
}

/// The last update of the relay side on `conference_id`.
fn last_on<'a>(
    updates: &'a [pb::UpdateRelayRequest],
    conference_id: &str,
) -> &'a pb::UpdateRelayRequest {
    updates
        .iter()
        .rev()
        .find(|update| update.conference_id == conference_id)
        .unwrap_or_else(|| panic!("no UpdateRelay on {conference_id} in {updates:?}"))
}

fn names(listed: &[(String, Vec<u32>)]) -> Vec<&str> {
    listed.iter().map(|(name, _)| name.as_str()).collect()
}

#[test]
fn the_third_participant_gets_a_second_bridge_linked_to_the_first() {
    let mut sim = capped_room();
    let alice = sim.join_and_accept("alice", 1000);
    sim.join_and_accept("bob", 2000);
    let first = created(&mut sim);
    assert_eq!(first.len(), 1, "one conference for two: {first:?}");
    let (primary, avoid) = &first[0];
    assert!(avoid.is_empty());
    sim.take_answered("AllocateEndpoint");

    // Carol is the third: a conference on a bridge the room is not on yet.
    let carol = sim.join_and_accept("carol", 3000);
    let second = created(&mut sim);
    assert_eq!(second.len(), 1, "{second:?}");
    let (leg, avoid) = &second[0];
    assert_eq!(avoid, &[BridgeId("b1".into())]);
    let allocations = sim.take_answered("AllocateEndpoint");
    assert!(
        matches!(&allocations[..], [BridgeRequest::AllocateEndpoint { conference_id, participant_id, .. }]
            if conference_id == leg && participant_id == "carol"),
        "{allocations:?}"
    );

    // The relay: allocated on both bridges, the first's side controlling, each named by the
    // other's conference.
    let allocated = sim.take_answered("AllocateRelay");
    let sides: Vec<(String, String, bool)> = allocated
        .iter()
        .map(|request| match request {
            BridgeRequest::AllocateRelay {
                conference_id,
                relay_id,
                controlling,
            } => (conference_id.clone(), relay_id.clone(), *controlling),
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(
        sides,
        vec![
            (primary.clone(), leg.clone(), true),
            (leg.clone(), primary.clone(), false)
        ]
    );
    // Each side is given the other's transport once, the media, and the far participants.
    let updates = relay_updates(&mut sim);
    let with_transport: Vec<&pb::UpdateRelayRequest> =
        updates.iter().filter(|u| u.transport.is_some()).collect();
    assert_eq!(with_transport.len(), 2, "{updates:?}");
    for update in with_transport {
        let far_controlling = update.conference_id == *leg;
        let transport = update.transport.as_ref().unwrap();
        assert_eq!(
            transport.ice.as_ref().unwrap().controlling,
            far_controlling,
            "{update:?}"
        );
        let far = if far_controlling { primary } else { leg };
        assert_eq!(&update.relay_id, far);
        assert_eq!(
            transport.dtls.as_ref().unwrap().fingerprint,
            format!("FP:{far}")
        );
    }
    let on_first = listed(last_on(&updates, primary));
    assert_eq!(names(&on_first), ["carol"]);
    assert!(on_first[0].1.contains(&3000) && on_first[0].1.contains(&3001));
    assert_eq!(
        on_first[0].1.len(),
        4,
        "audio, video, and the video's minted output and RTX: {on_first:?}"
    );
    let on_leg = listed(last_on(&updates, leg));
    assert_eq!(names(&on_leg), ["alice", "bob"]);
    assert!(
        last_on(&updates, leg).media.is_some(),
        "the conference's media"
    );
    let linked = sim
        .metrics
        .iter()
        .filter(|m| **m == Metric::RelayLinked)
        .count();
    assert_eq!(linked, 1);
    // Everyone is told of everyone, across the bridges.
    let adds = sim.take_jingles("alice");
    assert!(
        adds.iter()
            .any(|j| j.action == Action::SourceAdd && format!("{j:?}").contains("3000")),
        "alice is told of carol's sources: {adds:?}"
    );
    assert!(
        format!("{:?}", carol).contains("1000"),
        "carol is offered alice's"
    );

    // Dave joins carol's bridge: no third conference; the first bridge's side lists him.
    sim.join_and_accept("dave", 4000);
    assert!(created(&mut sim).is_empty());
    let updates = relay_updates(&mut sim);
    assert_eq!(
        names(&listed(last_on(&updates, primary))),
        ["carol", "dave"]
    );
    assert!(
        updates
            .iter()
            .all(|u| u.conference_id == *primary && u.transport.is_none()),
        "only the side with someone new is updated, without the transport again: {updates:?}"
    );

    // Alice adds a video source: carol's bridge hears of it through its relay.
    let id = sim.jingle(
        "alice",
        &video_update(Action::SourceAdd, &alice.sid, "alice", 1100),
    );
    sim.answer_all();
    assert_eq!(sim.reply(&id), Ok(()));
    let updates = relay_updates(&mut sim);
    assert_eq!(updates.len(), 1, "{updates:?}");
    let on_leg = listed(&updates[0]);
    assert_eq!(updates[0].conference_id, *leg);
    let alice_listed = &on_leg.iter().find(|(n, _)| n == "alice").unwrap().1;
    assert!(alice_listed.contains(&1100) && alice_listed.contains(&1101));

    // Carol leaves: the first bridge's side lists only dave. Dave leaves: the second
    // conference is expired, with the relay's side on the first bridge.
    sim.leave("carol");
    sim.answer_all();
    let updates = relay_updates(&mut sim);
    assert_eq!(names(&listed(last_on(&updates, primary))), ["dave"]);
    sim.take_answered("ExpireEndpoint");
    sim.leave("dave");
    sim.answer_all();
    let expired: Vec<String> = sim
        .take_answered("ExpireConference")
        .iter()
        .map(named_id)
        .collect();
    assert_eq!(expired, std::slice::from_ref(leg));
    let relays = sim.take_answered("ExpireRelay");
    assert!(
        matches!(&relays[..], [BridgeRequest::ExpireRelay { conference_id, relay_id }]
            if conference_id == primary && relay_id == leg),
        "{relays:?}"
    );
    assert!(relay_updates(&mut sim).is_empty());
    assert_eq!(sim.room.conference_ids(), std::slice::from_ref(primary));
    assert_eq!(sim.sessions("active"), 2);

    // Two newcomers: the third of the room goes to a new bridge again.
    sim.join_and_accept("erin", 5000);
    let again = created(&mut sim);
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].1, [BridgeId("b1".into())]);
}
