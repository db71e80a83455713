//! The room state machine under a storm of hostile and out-of-order input, from a seed:
//! participants joining and leaving at random (Jitsi clients and standards clients, whose
//! sessions have a content per remote stream), session-accepts with stolen, repeated or made-up
//! SSRCs and wrong sids, source updates for SSRCs nobody sends, terminates and restart
//! requests, content-accepts, -rejects and -removes naming contents that exist or not, payloads
//! that are not Jingle at all — while the bridge answers in any order,
//! fails, takes its time, or fails for good and the room moves to another; conferences found on
//! a bridge (its own, or left behind by an earlier focus) and lost XMPP connections come in
//! between. 40 more storms run in a room capped at 2 participants per bridge (cascading),
//! whose conferences on several bridges fail one by one and whose relays time out at random.
//! Nothing panics, the gauges never go negative, and once the bridge
//! has answered everything every request an occupant made has exactly one answer. (When the last
//! participant leaves, the focus leaves the room; the storm goes on in a new one, as the next
//! conference request would make it.)

mod room;

use std::collections::HashMap;
use std::time::Duration;

use jid::Jid;
use minidom::Element;
use room::*;
use tutti_focus::capabilities::REQUIRED_FEATURES;
use tutti_focus::jingle::{Action, Content, Jingle, Senders};
use tutti_focus::room::{BridgeError, Metric};

/// xorshift64*: the storm's choices, from a seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

const NICKS: [&str; 5] = ["ann", "ben", "cat", "dan", "eve"];

/// What a storm reached: session-initiates sent (and of them to standards clients), content-adds
/// sent, and requests answered with a result — so that the test knows the storm reached working
/// sessions of both dialects, not only errors.
#[derive(Default)]
struct Reached {
    initiates: usize,
    standard_initiates: usize,
    content_adds: usize,
    results: usize,
    /// Relays linked (cascading storms).
    relays: usize,
}

/// A room for a storm: with `cascading`, capped at 2 participants per bridge, on a pool of
/// three bridges.
fn storm_room(cascading: bool) -> Sim {
    if !cascading {
        return Sim::new();
    }
    Sim::capped(2, &["b1", "b2", "b3"])
}

fn relays_linked(sim: &Sim) -> usize {
    sim.metrics
        .iter()
        .filter(|m| **m == Metric::RelayLinked)
        .count()
}

fn storm(seed: u64, steps: usize) -> Reached {
    let mut reached = Reached::default();
    let mut initiates = 0;
    let mut results = 0;
    let mut rng = Rng(seed | 1);
    let cascading = seed > 40;
    let mut sim = storm_room(cascading);
    let mut sids: HashMap<&str, String> = HashMap::new();
    let mut asked: Vec<String> = Vec::new();
    for _ in 0..steps {
        let nick = NICKS[rng.below(NICKS.len() as u64) as usize];
        let other = NICKS[rng.below(NICKS.len() as u64) as usize];
        let base = |n: &str| 1000 * (1 + NICKS.iter().position(|x| *x == n).unwrap() as u32);
        let sid = sids
            .get(nick)
            .cloned()
            .unwrap_or_else(|| "no-such-sid".to_owned());
        match rng.below(17) {
            0 | 1 => sim.join(nick),
            15 => sim.join_with_features(nick, "standard", &REQUIRED_FEATURES),
            2 => {
                sim.leave(nick);
                sids.remove(nick);
            }
            3 | 4 => asked.push(sim.jingle(nick, &session_accept(&sid, nick, base(nick)))),
            // Someone else's SSRCs, or one of the focus's own minted ones' neighbours.
            5 => asked.push(sim.jingle(nick, &session_accept(&sid, nick, base(other)))),
            6 => {
                let ssrc = rng.below(u64::from(u32::MAX)) as u32;
                let action = [Action::SourceAdd, Action::SourceRemove][rng.below(2) as usize];
                asked.push(sim.jingle(nick, &video_update(action, &sid, nick, ssrc)));
            }
            7 => asked.push(sim.jingle(nick, &Jingle::new(Action::SessionTerminate, &sid))),
            8 => asked.push(sim.jingle(nick, &restart_request(&sid, "some-bridge-session"))),
            9 => {
                let garbage = match rng.below(3) {
                    0 => Element::builder("query", "urn:x:nonsense").build(),
                    1 => Element::builder("jingle", tutti_focus::ns::JINGLE).build(),
                    _ => Element::builder("jingle", tutti_focus::ns::JINGLE)
                        .attr(rxml::xml_ncname!("action").into(), "session-accept")
                        .attr(rxml::xml_ncname!("sid").into(), sid.as_str())
                        .append(Element::builder("content", tutti_focus::ns::JINGLE).build())
                        .build(),
                };
                asked.push(sim.iq_from(Jid::from(occupant(nick)), garbage));
            }
            10 | 11 if !sim.requests.is_empty() => {
                let i = rng.below(sim.requests.len() as u64) as usize;
                let (id, request) = sim.requests.remove(i);
                let answer = if rng.below(3) == 0 {
                    Err(BridgeError {
                        call: request.call(),
                        cause: "storm".to_owned(),
                    })
                } else {
                    Ok(yes(&request))
                };
                sim.answer(id, answer);
            }
            12 if rng.below(10) == 0 => {
                // The room's bridge fails; or, spread over several, one of them, or a relay.
                let ids = sim.room.conference_ids();
                let pick = |rng: &mut Rng| ids[rng.below(ids.len() as u64) as usize].clone();
                match rng.below(3) {
                    1 if !ids.is_empty() => {
                        let failed = pick(&mut rng);
                        sim.conference_failed(&failed);
                    }
                    2 if ids.len() >= 2 => {
                        let (a, b) = (pick(&mut rng), pick(&mut rng));
                        sim.relay_failed(&a, &b);
                    }
                    _ => sim.bridge_failed(),
                }
            }
            // A conference found on a bridge (the room's own, or one an earlier focus left)
            // naming sessions current, stale or made up; or a lost XMPP connection.
            13 if rng.below(5) == 0 => {
                let own = sim.room.conference_id().map(str::to_owned);
                let conference = match (rng.below(2), own) {
                    (0, Some(own)) => own,
                    _ => format!("old-{}", rng.below(4)),
                };
                sim.left_behind(&conference, &[(nick, sid.as_str()), (other, "made-up")]);
            }
            13 if rng.below(20) == 0 => {
                sim.room.rejoin(sim.now);
                sim.join(nick);
            }
            14 => {
                let action = [
                    Action::ContentAccept,
                    Action::ContentReject,
                    Action::ContentRemove,
                ][rng.below(3) as usize];
                let name =
                    ["audio", "video", "audio-1", "video-2", "video-5", "0"][rng.below(6) as usize];
                let mut jingle = Jingle::new(action, &sid);
                jingle.contents.push(Content::new(name));
                asked.push(sim.jingle(nick, &jingle));
            }
            _ => sim.advance(Duration::from_millis(rng.below(3_000))),
        }
        for jingle in NICKS.iter().flat_map(|n| {
            sim.take_jingles(n)
                .into_iter()
                .map(move |jingle| (*n, jingle))
                .collect::<Vec<_>>()
        }) {
            if jingle.1.action == Action::SessionInitiate {
                initiates += 1;
                if jingle.1.content("audio").and_then(|c| c.senders) == Some(Senders::Responder) {
                    reached.standard_initiates += 1;
                }
                sids.insert(jingle.0, jingle.1.sid.clone());
            }
            if jingle.1.action == Action::ContentAdd {
                reached.content_adds += 1;
            }
        }
        assert!(sim.participants() >= 0);
        assert!(sim.sessions("pending") >= 0 && sim.sessions("active") >= 0);
        if sim.room.is_closed() {
            results += settle(&mut sim, &asked);
            reached.relays += relays_linked(&sim);
            sim = storm_room(cascading);
            sids.clear();
            asked.clear();
        }
    }
    results += settle(&mut sim, &asked);
    reached.relays += relays_linked(&sim);
    reached.initiates = initiates;
    reached.results = results;
    reached
}

/// The bridge answers everything, through every back-off; then each of `asked` has exactly one
/// answer (`reply` checks the count). How many were results.
fn settle(sim: &mut Sim, asked: &[String]) -> usize {
    for _ in 0..10 {
        sim.answer_all();
        sim.advance(Duration::from_secs(31));
    }
    asked.iter().filter(|id| sim.reply(id).is_ok()).count()
}

#[test]
fn a_storm_of_hostile_input_leaves_the_room_consistent() {
    let mut total = Reached::default();
    for seed in 1..=80 {
        let reached = storm(seed, 400);
        total.initiates += reached.initiates;
        total.standard_initiates += reached.standard_initiates;
        total.content_adds += reached.content_adds;
        total.results += reached.results;
        total.relays += reached.relays;
    }
    let Reached {
        initiates,
        standard_initiates,
        content_adds,
        results,
        relays,
    } = total;
    println!("{initiates} session-initiates ({standard_initiates} to standards clients), {content_adds} content-adds, {results} results, {relays} relays linked");
    assert!(
        relays > 10,
        "{relays} relays linked: the cascading storms spread"
    );
    assert!(initiates > 200, "{initiates} session-initiates");
    assert!(
        standard_initiates > 30,
        "{standard_initiates} to standards clients"
    );
    assert!(content_adds > 0, "{content_adds} content-adds");
    assert!(results > 200, "{results} requests answered with a result");
}
