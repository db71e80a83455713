//! A standards client is forwarded a stream only once it has accepted the stream's content: its
//! endpoint is allocated to receive by MID, and the focus gives the bridge a stream's MID (the
//! content's name) when the client accepts it — the streams of the focus's offer with its
//! `session-accept`, a `content-add`'s with its `content-accept`. A content it refuses, or
//! never answers, is never given a MID and holds up no other.

mod room;

use room::*;
use tutti_focus::jingle::{Action, Content, Jingle};
use tutti_focus::room::BridgeRequest;

/// The MIDs an UpdateEndpoint gives the bridge, by SSRC, in SSRC order (`None`: it leaves
/// them alone).
fn receive_mids(request: &BridgeRequest) -> Option<Vec<(u32, String)>> {
    let BridgeRequest::UpdateEndpoint(update) = request else {
        panic!("not an UpdateEndpoint: {request:?}")
    };
    let mids = update.receive_mids.as_ref()?;
    Some(sorted(
        mids.mids.iter().map(|m| (m.ssrc, m.mid.clone())).collect(),
    ))
}

fn sorted(mut mids: Vec<(u32, String)>) -> Vec<(u32, String)> {
    mids.sort();
    mids
}

/// A `content-accept` or `content-reject` of `contents` in session `sid`.
fn answer(action: Action, sid: &str, contents: &[&Content]) -> Jingle {
    let mut jingle = Jingle::new(action, sid);
    jingle.contents = contents.iter().map(|&c| c.clone()).collect();
    jingle
}

#[test]
fn a_standards_client_is_forwarded_a_stream_once_it_accepted_its_content() {
    let mut sim = Sim::new();
    sim.join_and_accept("ada", 100);
    sim.join_with_features("gus", "v1", &standard_features());
    let allocate = sim.grant("AllocateEndpoint");
    assert!(
        matches!(
            allocate,
            BridgeRequest::AllocateEndpoint {
                receives_by_mid: true,
                ..
            }
        ),
        "a standards client's endpoint receives by MID: {allocate:?}"
    );
    let initiate = sim.take_jingle("gus", Action::SessionInitiate);
    assert_eq!(stream_ssrcs(&initiate).len(), 2, "ada's audio and video");
    // Offered, not accepted: the bridge forwards gus nothing of ada yet.
    assert!(!sim.has_request("UpdateEndpoint"), "{:?}", sim.requests);

    // bob joins before gus answers: his streams wait for gus's accept in a content-add.
    sim.join_and_accept("bob", 200);
    assert!(!sim.has_request("UpdateEndpoint"), "{:?}", sim.requests);

    // gus's session-accept accepts the offer's streams (ada's), not bob's, which it has not seen.
    let id = sim.jingle("gus", &standard_accept(&initiate, "gus", 300));
    let (accept_id, accept) = sim.take_request("UpdateEndpoint");
    assert_eq!(
        receive_mids(&accept),
        None,
        "the accept leaves the MIDs alone"
    );
    sim.answer(accept_id, Ok(yes(&accept)));
    assert_eq!(sim.reply(&id), Ok(()));
    let bobs = sim.take_jingle("gus", Action::ContentAdd);
    let (mids_id, mids) = sim.take_request("UpdateEndpoint");
    assert_eq!(receive_mids(&mids), Some(sorted(stream_ssrcs(&initiate))));
    sim.answer(mids_id, Ok(yes(&mids)));

    // cyd joins; gus accepts cyd's content-add but never answers bob's: cyd's streams are
    // forwarded, bob's are not, and nothing waits for bob's.
    sim.join_and_accept("cyd", 400);
    let cyds = sim.take_jingle("gus", Action::ContentAdd);
    assert!(
        !sim.has_request("UpdateEndpoint"),
        "a content-add alone changes nothing"
    );
    let accepted: Vec<&Content> = cyds.contents.iter().collect();
    let id = sim.jingle(
        "gus",
        &answer(Action::ContentAccept, &initiate.sid, &accepted),
    );
    assert_eq!(sim.reply(&id), Ok(()));
    let (mids_id, mids) = sim.take_request("UpdateEndpoint");
    let mut expected = stream_ssrcs(&initiate);
    expected.extend(stream_ssrcs(&cyds));
    assert_eq!(receive_mids(&mids), Some(sorted(expected.clone())));
    assert!(
        stream_ssrcs(&bobs)
            .iter()
            .all(|bob| !expected.contains(bob)),
        "none of bob's"
    );
    sim.answer(mids_id, Ok(yes(&mids)));

    // gus refuses bob's video and accepts his audio: only the audio is forwarded.
    let (bob_audio, bob_video) = (&bobs.contents[0], &bobs.contents[1]);
    let id = sim.jingle(
        "gus",
        &answer(Action::ContentReject, &initiate.sid, &[bob_video]),
    );
    assert_eq!(sim.reply(&id), Ok(()));
    assert!(
        !sim.has_request("UpdateEndpoint"),
        "nothing of bob's was forwarded"
    );
    let id = sim.jingle(
        "gus",
        &answer(Action::ContentAccept, &initiate.sid, &[bob_audio]),
    );
    assert_eq!(sim.reply(&id), Ok(()));
    let (mids_id, mids) = sim.take_request("UpdateEndpoint");
    expected.push(stream_ssrcs(&bobs)[0].clone());
    assert_eq!(expected.last().unwrap().1, bob_audio.name);
    assert_eq!(receive_mids(&mids), Some(sorted(expected.clone())));
    sim.answer(mids_id, Ok(yes(&mids)));

    // gus removes cyd's video content: it is no longer forwarded.
    let cyd_video = &cyds.contents[1];
    let id = sim.jingle(
        "gus",
        &answer(Action::ContentRemove, &initiate.sid, &[cyd_video]),
    );
    assert_eq!(sim.reply(&id), Ok(()));
    let (_, mids) = sim.take_request("UpdateEndpoint");
    expected.retain(|(_, name)| *name != cyd_video.name);
    assert_eq!(receive_mids(&mids), Some(sorted(expected)));
    assert_eq!(sim.errors("bad_request"), 0);
}
