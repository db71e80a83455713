//! A burst of 50 joins with the bridge's answers in random order, on the room state machine
//! alone: one conference, 50 endpoints, and everyone ends up told of everyone else's sources.

mod room;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use room::*;
use std::collections::{BTreeMap, BTreeSet};
use tutti_focus::jingle::Action;

const PARTICIPANTS: u32 = 50;

fn nick(index: u32) -> String {
    format!("p{index}")
}

/// Answers every request, always picking a random one of those in flight.
fn answer_shuffled(sim: &mut Sim, rng: &mut StdRng) {
    while !sim.requests.is_empty() {
        let (id, request) = sim.requests.remove(rng.random_range(0..sim.requests.len()));
        sim.answer(id, Ok(yes(&request)));
    }
}

#[test]
fn fifty_joins_with_answers_in_random_order() {
    let mut rng = StdRng::seed_from_u64(50);
    let mut sim = Sim::new();
    for index in 0..PARTICIPANTS {
        sim.join(&nick(index));
    }
    assert_eq!(sim.requests.len(), 1, "one CreateConference");
    sim.grant("CreateConference");
    let endpoints: BTreeSet<String> = sim.requests.iter().map(|(_, r)| named_id(r)).collect();
    assert_eq!(
        endpoints.len(),
        PARTICIPANTS as usize,
        "50 distinct endpoints"
    );
    answer_shuffled(&mut sim, &mut rng);

    // Everyone has an offer; each accepts, in random order, answers in random order.
    let mut told: BTreeMap<String, BTreeSet<u32>> = BTreeMap::new();
    let mut sids = BTreeMap::new();
    for index in 0..PARTICIPANTS {
        let initiate = sim.take_jingle(&nick(index), Action::SessionInitiate);
        told.insert(nick(index), ssrcs(&initiate).into_iter().collect());
        sids.insert(nick(index), initiate.sid);
    }
    let mut order: Vec<u32> = (0..PARTICIPANTS).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, rng.random_range(0..=i));
    }
    let mut accepts = Vec::new();
    for index in order {
        let accept = session_accept(&sids[&nick(index)], &nick(index), 10_000 + index * 10);
        accepts.push(sim.jingle(&nick(index), &accept));
        if rng.random_bool(0.3) {
            answer_shuffled(&mut sim, &mut rng);
        }
    }
    answer_shuffled(&mut sim, &mut rng);
    for id in &accepts {
        assert_eq!(sim.reply(id), Ok(()));
    }
    for index in 0..PARTICIPANTS {
        let known = told.get_mut(&nick(index)).unwrap();
        for update in sim.take_jingles(&nick(index)) {
            assert_eq!(update.sid, sids[&nick(index)]);
            assert_eq!(update.action, Action::SourceAdd, "{update:?}");
            for ssrc in ssrcs(&update) {
                assert!(
                    known.insert(ssrc),
                    "{ssrc} signalled twice to {}",
                    nick(index)
                );
            }
        }
        let expected: BTreeSet<u32> = (0..PARTICIPANTS)
            .filter(|other| *other != index)
            .flat_map(|other| [10_000 + other * 10, 10_001 + other * 10])
            .collect();
        assert_eq!(*known, expected, "what {} was told", nick(index));
    }
    assert_eq!(sim.sessions("active"), i64::from(PARTICIPANTS));
    assert_eq!(sim.participants(), i64::from(PARTICIPANTS));
}
