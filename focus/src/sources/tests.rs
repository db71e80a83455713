use minidom::Element;

use super::*;
use crate::test_support::{fixture_jingle, forwarded, SESSION_ACCEPT, SESSION_ACCEPT_FORWARDED};

const ALICE: &str = "room@muc/alice";
const BOB: &str = "room@muc/bob";

fn source(ssrc: u32, media: MediaType) -> MediaSource {
    MediaSource {
        ssrc,
        media,
        name: None,
        msid: None,
        video_type: None,
    }
}

fn group(semantics: GroupSemantics, ssrcs: &[u32]) -> SsrcGroup {
    SsrcGroup {
        media: MediaType::Video,
        semantics,
        ssrcs: ssrcs.to_vec(),
    }
}

/// One audio source and a three-layer simulcast video with RTX: 1; 10, 11, 12 (layers) and 20,
/// 21, 22 (their RTX).
fn simulcast_sender() -> EndpointSources {
    let mut sources = vec![source(1, MediaType::Audio)];
    sources.extend([10, 11, 12, 20, 21, 22].map(|ssrc| source(ssrc, MediaType::Video)));
    EndpointSources {
        sources,
        groups: vec![
            group(GroupSemantics::Simulcast, &[10, 11, 12]),
            group(GroupSemantics::Fid, &[10, 20]),
            group(GroupSemantics::Fid, &[11, 21]),
            group(GroupSemantics::Fid, &[12, 22]),
        ],
    }
}

/// What the bridge forwards of [`simulcast_sender`]'s sources: the audio, and the video's first
/// layer with its RTX.
const SIMULCAST_FORWARDED: [(u32, Option<u32>); 2] = [(1, None), (10, Some(20))];

/// A conference where alice's [`simulcast_sender`] sources are accepted and shown to the others
/// as the bridge forwards them.
fn conference_with_alice() -> ConferenceSources {
    let mut conference = ConferenceSources::new();
    conference.accept(ALICE, simulcast_sender()).unwrap();
    conference.show(ALICE, &forwarded(&SIMULCAST_FORWARDED));
    conference
}

fn ssrcs(sources: &EndpointSources) -> Vec<u32> {
    sources.sources.iter().map(|source| source.ssrc).collect()
}

#[test]
fn captured_session_accept_sources_are_extracted() {
    let sources = EndpointSources::from_jingle(&fixture_jingle(SESSION_ACCEPT)).unwrap();
    assert_eq!(
        ssrcs(&sources),
        [3196618725, 1130870372, 624615736, 1264459138, 3424343406, 3210077697, 989326016]
    );
    assert_eq!(sources.sources[0].media, MediaType::Audio);
    assert_eq!(
        sources.sources[0].msid.as_deref(),
        Some("eff6ccca-audio-1 4c100a64-e1c1-461b-b26b-071f6e06b897-1")
    );
    assert!(sources.sources[1..]
        .iter()
        .all(|source| source.media == MediaType::Video));
    assert_eq!(sources.groups.len(), 4);
    assert_eq!(
        sources.groups[1],
        SsrcGroup {
            media: MediaType::Video,
            semantics: GroupSemantics::Simulcast,
            ssrcs: vec![1130870372, 1264459138, 3424343406],
        }
    );
}

#[test]
fn captured_sources_are_seen_by_receivers_as_the_bridge_forwards_them() {
    let sources = EndpointSources::from_jingle(&fixture_jingle(SESSION_ACCEPT)).unwrap();
    let view = sources.receiver_view(ALICE, &forwarded(&SESSION_ACCEPT_FORWARDED), &[]);
    assert_eq!(view.owner(), ALICE);
    assert_eq!(ssrcs(view.sources()), [3196618725, 1130870372, 624615736]);
    assert_eq!(
        view.sources().groups,
        [SsrcGroup {
            media: MediaType::Video,
            semantics: GroupSemantics::Fid,
            ssrcs: vec![1130870372, 624615736],
        }]
    );
    let described: Vec<&MediaSource> = view.sources().sources.iter().collect();
    let own: Vec<&MediaSource> = sources
        .sources
        .iter()
        .filter(|source| view.sources().media_of(source.ssrc).is_some())
        .collect();
    assert_eq!(described, own, "each as the participant described it");
    assert_eq!(
        described[1].msid.as_deref(),
        Some("eff6ccca-video-1 bbeff73c-2148-4f9b-b8d8-b5fc4d21c184-1")
    );
}

#[test]
fn receiver_view_keeps_only_what_the_bridge_forwards() {
    let mut sources = simulcast_sender();
    sources.sources.push(source(30, MediaType::Video));
    sources
        .groups
        .push(group(GroupSemantics::Other("FEC-FR".into()), &[30]));
    let view = sources.receiver_view(
        ALICE,
        &forwarded(&[(1, None), (10, Some(20)), (30, None)]),
        &[],
    );
    assert_eq!(ssrcs(view.sources()), [1, 10, 20, 30]);
    assert_eq!(
        view.sources().groups,
        [group(GroupSemantics::Fid, &[10, 20])]
    );

    let mut strange = forwarded(&[(1, None), (10, Some(21)), (99, None)]);
    strange
        .groups
        .push((GroupSemantics::Simulcast, vec![10, 11, 12]));
    let view = sources.receiver_view(ALICE, &strange, &[]);
    assert_eq!(
        ssrcs(view.sources()),
        [1, 10, 21],
        "SSRCs the participant does not send are not made up"
    );
    assert!(
        view.sources().groups.is_empty(),
        "nor are groups it did not announce, and a listed group over SSRCs not forwarded is left out"
    );

    assert!(sources
        .receiver_view(ALICE, &Forwarded::default(), &[])
        .is_empty());
}

fn invalid(sources: EndpointSources) -> SourceError {
    sources.validate().unwrap_err()
}

#[test]
fn validation_limits_ssrcs_per_participant() {
    let at_limit = EndpointSources {
        sources: (1..=20)
            .map(|ssrc| source(ssrc, MediaType::Video))
            .collect(),
        groups: Vec::new(),
    };
    assert_eq!(at_limit.validate(), Ok(()));
    let over = EndpointSources {
        sources: (1..=21)
            .map(|ssrc| source(ssrc, MediaType::Video))
            .collect(),
        groups: Vec::new(),
    };
    assert_eq!(invalid(over), SourceError::TooManySsrcs { count: 21 });
}

#[test]
fn validation_refuses_zero_and_duplicate_ssrcs() {
    let zero = EndpointSources {
        sources: vec![source(0, MediaType::Audio)],
        groups: Vec::new(),
    };
    assert_eq!(invalid(zero), SourceError::ZeroSsrc);
    let duplicate = EndpointSources {
        sources: vec![source(5, MediaType::Audio), source(5, MediaType::Video)],
        groups: Vec::new(),
    };
    assert_eq!(invalid(duplicate), SourceError::DuplicateSsrc(5));
}

#[test]
fn validation_refuses_groups_over_foreign_ssrcs() {
    let mut sources = simulcast_sender();
    sources.groups.push(group(GroupSemantics::Fid, &[12, 99]));
    assert_eq!(
        invalid(sources),
        SourceError::GroupReferencesUnknownSsrc {
            semantics: "FID".into(),
            media: MediaType::Video,
            ssrc: 99
        }
    );
    let mut sources = simulcast_sender();
    sources.groups.push(group(GroupSemantics::Fid, &[12, 1]));
    assert!(
        matches!(
            invalid(sources),
            SourceError::GroupReferencesUnknownSsrc { ssrc: 1, .. }
        ),
        "audio SSRC 1 in a video group"
    );
}

#[test]
fn validation_checks_group_shapes() {
    let cases: [(&[u32], GroupSemantics, SourceError); 5] = [
        (
            &[10, 20, 21],
            GroupSemantics::Fid,
            SourceError::MalformedFidGroup {
                ssrcs: vec![10, 20, 21],
            },
        ),
        (
            &[10, 10],
            GroupSemantics::Fid,
            SourceError::MalformedFidGroup {
                ssrcs: vec![10, 10],
            },
        ),
        (
            &[10],
            GroupSemantics::Simulcast,
            SourceError::MalformedSimulcastGroup { ssrcs: vec![10] },
        ),
        (
            &[10, 11, 10],
            GroupSemantics::Simulcast,
            SourceError::MalformedSimulcastGroup {
                ssrcs: vec![10, 11, 10],
            },
        ),
        (
            &[10, 21],
            GroupSemantics::Fid,
            SourceError::SsrcWithTwoRtx { ssrc: 10 },
        ),
    ];
    for (group_ssrcs, semantics, expected) in cases {
        let mut sources = simulcast_sender();
        sources.groups.push(group(semantics, group_ssrcs));
        assert_eq!(invalid(sources), expected, "{group_ssrcs:?}");
    }
    let mut sources = simulcast_sender();
    sources
        .groups
        .push(group(GroupSemantics::Simulcast, &[20, 11]));
    assert_eq!(
        invalid(sources),
        SourceError::SsrcInTwoSimulcastGroups { ssrc: 11 }
    );
}

#[test]
fn sources_in_a_data_content_are_refused() {
    let element: Element = "<jingle xmlns='urn:xmpp:jingle:1' action='source-add' sid='s'>\
         <content name='data'><description xmlns='urn:xmpp:jingle:apps:rtp:1' media='application'>\
         <source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='7'/></description></content>\
         </jingle>"
        .parse()
        .unwrap();
    let jingle = Jingle::from_element(&element).unwrap();
    assert_eq!(
        EndpointSources::from_jingle(&jingle),
        Err(SourceError::SourcesInUnsupportedMedia {
            content: "data".into(),
            media: "application".into()
        })
    );
}

#[test]
fn media_type_falls_back_to_the_content_name() {
    let element: Element = "<jingle xmlns='urn:xmpp:jingle:1' action='source-add' sid='s'>\
         <content name='video'><description xmlns='urn:xmpp:jingle:apps:rtp:1'>\
         <source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='7' name='a-v1' videoType='desktop'/>\
         </description></content></jingle>"
        .parse()
        .unwrap();
    let sources = EndpointSources::from_jingle(&Jingle::from_element(&element).unwrap()).unwrap();
    assert_eq!(
        sources.sources,
        [MediaSource {
            ssrc: 7,
            media: MediaType::Video,
            name: Some("a-v1".into()),
            msid: None,
            video_type: Some("desktop".into()),
        }]
    );
}

#[test]
fn accepted_sources_are_announced_as_the_bridge_forwards_them() {
    let mut conference = ConferenceSources::new();
    assert_eq!(conference.accept(ALICE, simulcast_sender()), Ok(()));
    assert_eq!(conference.owner_of(22), Some(ALICE));
    assert_eq!(conference.get(ALICE), Some(&simulcast_sender()));
    let answer = forwarded(&SIMULCAST_FORWARDED);
    let change = conference.show(ALICE, &answer);
    assert_eq!(
        change.added,
        simulcast_sender().receiver_view(ALICE, &answer, &[])
    );
    assert_eq!(ssrcs(change.added.sources()), [1, 10, 20]);
    assert!(change.removed.is_empty());
    assert_eq!(change.removed.owner(), ALICE);
}

#[test]
fn a_second_show_with_the_same_answer_changes_nothing() {
    let mut conference = conference_with_alice();
    let change = conference.show(ALICE, &forwarded(&SIMULCAST_FORWARDED));
    assert!(change.added.is_empty());
    assert!(change.removed.is_empty());
    assert_eq!(
        conference.receiver_views_except(BOB),
        [simulcast_sender().receiver_view(ALICE, &forwarded(&SIMULCAST_FORWARDED), &[])]
    );
}

#[test]
fn show_adds_and_removes_the_difference_from_what_was_shown() {
    let mut conference = conference_with_alice();
    let change = conference.show(ALICE, &forwarded(&[(1, None), (11, Some(21))]));
    assert_eq!(ssrcs(change.added.sources()), [11, 21]);
    assert_eq!(
        change.added.sources().groups,
        [group(GroupSemantics::Fid, &[11, 21])]
    );
    assert_eq!(ssrcs(change.removed.sources()), [10, 20]);
    assert_eq!(
        change.removed.sources().groups,
        [group(GroupSemantics::Fid, &[10, 20])]
    );
    assert_eq!(
        ssrcs(conference.receiver_views_except(BOB)[0].sources()),
        [1, 11, 21]
    );
}

#[test]
fn sources_accepted_but_not_yet_shown_are_not_offered_to_others() {
    let mut conference = ConferenceSources::new();
    conference.accept(ALICE, simulcast_sender()).unwrap();
    assert!(conference.receiver_views_except(BOB).is_empty());
    assert_eq!(
        conference.owner_of(10),
        Some(ALICE),
        "yet its SSRCs are taken"
    );
    assert!(
        conference.remove_participant(ALICE).is_empty(),
        "nobody was told of them: nothing to remove"
    );

    let change = ConferenceSources::new().show(ALICE, &forwarded(&SIMULCAST_FORWARDED));
    assert!(
        change.added.is_empty() && change.removed.is_empty(),
        "an answer about unknown sources shows nothing"
    );
}

#[test]
fn an_ssrc_owned_by_another_participant_is_refused() {
    let mut conference = conference_with_alice();
    let stolen = EndpointSources {
        sources: vec![source(2, MediaType::Audio), source(21, MediaType::Video)],
        groups: Vec::new(),
    };
    let expected = SourceError::SsrcOwnedByOther {
        ssrc: 21,
        owner: ALICE.into(),
    };
    assert_eq!(
        conference.accept(BOB, stolen.clone()),
        Err(expected.clone())
    );
    assert_eq!(conference.add(BOB, &stolen), Err(expected));
    assert_eq!(conference.get(BOB), None, "nothing stored on refusal");
}

#[test]
fn source_add_is_checked_against_the_participants_existing_sources() {
    let mut conference = conference_with_alice();
    let screen = EndpointSources {
        sources: vec![source(40, MediaType::Video), source(41, MediaType::Video)],
        groups: vec![group(GroupSemantics::Fid, &[40, 41])],
    };
    assert_eq!(conference.add(ALICE, &screen), Ok(()));
    assert_eq!(conference.get(ALICE).unwrap().sources.len(), 9);
    let change = conference.show(
        ALICE,
        &forwarded(&[(1, None), (10, Some(20)), (40, Some(41))]),
    );
    assert_eq!(change.added.sources(), &screen);
    assert!(change.removed.is_empty());

    assert_eq!(
        conference.add(ALICE, &screen),
        Err(SourceError::DuplicateSsrc(40))
    );
    let too_many = EndpointSources {
        sources: (100..112)
            .map(|ssrc| source(ssrc, MediaType::Video))
            .collect(),
        groups: Vec::new(),
    };
    assert_eq!(
        conference.add(ALICE, &too_many),
        Err(SourceError::TooManySsrcs { count: 21 })
    );
    assert_eq!(
        conference.get(ALICE).unwrap().sources.len(),
        9,
        "nothing stored on refusal"
    );
    let group_over_existing = EndpointSources {
        sources: vec![source(50, MediaType::Video)],
        groups: vec![group(GroupSemantics::Fid, &[50, 12])],
    };
    assert_eq!(
        conference.add(ALICE, &group_over_existing),
        Ok(()),
        "a group may reference SSRCs announced earlier"
    );
}

#[test]
fn source_remove_takes_groups_with_it_and_receivers_lose_what_the_bridge_no_longer_forwards() {
    let mut conference = conference_with_alice();
    let removals = EndpointSources {
        sources: vec![source(20, MediaType::Video)],
        groups: Vec::new(),
    };
    assert_eq!(conference.remove(ALICE, &removals), Ok(()));
    assert!(!conference
        .get(ALICE)
        .unwrap()
        .groups
        .iter()
        .any(|group| group.ssrcs.contains(&20)));
    assert_eq!(
        ssrcs(conference.receiver_views_except(BOB)[0].sources()),
        [1, 10, 20],
        "shown as before until the bridge answers"
    );
    // The first layer keeps its SSRC, now without RTX.
    let change = conference.show(ALICE, &forwarded(&[(1, None), (10, None)]));
    assert_eq!(ssrcs(change.removed.sources()), [20]);
    assert_eq!(
        change.removed.sources().groups,
        [group(GroupSemantics::Fid, &[10, 20])]
    );
    assert!(change.added.is_empty());

    assert_eq!(
        conference.remove(ALICE, &removals),
        Err(SourceError::RemovingUnknownSsrc { ssrc: 20 })
    );
}

#[test]
fn a_leaving_participant_is_removed_as_receivers_saw_it() {
    let mut conference = conference_with_alice();
    let bob = EndpointSources {
        sources: vec![source(7, MediaType::Audio)],
        groups: Vec::new(),
    };
    conference.accept(BOB, bob.clone()).unwrap();
    conference.show(BOB, &forwarded(&[(7, None)]));

    let for_carol = conference.receiver_views_except("room@muc/carol");
    assert_eq!(for_carol.len(), 2);
    let for_bob = conference.receiver_views_except(BOB);
    assert_eq!(
        for_bob,
        [simulcast_sender().receiver_view(ALICE, &forwarded(&SIMULCAST_FORWARDED), &[])]
    );

    let removed = conference.remove_participant(ALICE);
    assert_eq!(removed.owner(), ALICE);
    assert_eq!(ssrcs(removed.sources()), [1, 10, 20]);
    assert_eq!(conference.owner_of(10), None);
    assert!(conference.receiver_views_except(BOB).is_empty());
    assert!(conference.remove_participant(ALICE).is_empty());
}

#[test]
fn a_new_session_accept_replaces_earlier_sources() {
    let mut conference = conference_with_alice();
    let audio_only = EndpointSources {
        sources: vec![source(1, MediaType::Audio)],
        groups: Vec::new(),
    };
    conference.accept(ALICE, audio_only.clone()).unwrap();
    assert_eq!(conference.get(ALICE), Some(&audio_only));
    let change = conference.show(ALICE, &forwarded(&[(1, None)]));
    assert!(change.added.is_empty());
    assert_eq!(ssrcs(change.removed.sources()), [10, 20]);
}

/// [`simulcast_sender`] with names and msids, so that what receivers are told can be checked.
fn described_simulcast_sender() -> EndpointSources {
    let mut sources = simulcast_sender();
    for source in &mut sources.sources {
        source.name = Some(format!(
            "alice-{}",
            source.media.as_str().as_bytes()[0] as char
        ));
        source.msid = Some(format!("stream track-{}", source.ssrc));
    }
    sources
}

#[test]
fn each_video_source_gets_output_ssrcs_of_its_own() {
    let mut conference = ConferenceSources::with_seed(7);
    conference.accept(ALICE, simulcast_sender()).unwrap();
    let outputs = conference.outputs(ALICE).to_vec();
    assert_eq!(outputs.len(), 1, "one video source, however many layers");
    let output = outputs[0];
    assert_eq!(output.source, 10, "named by its first layer");
    let rtx = output
        .rtx
        .expect("the source has RTX, so its output has too");
    let own = ssrcs(&simulcast_sender());
    assert!(!own.contains(&output.ssrc) && !own.contains(&rtx));
    assert!(output.ssrc != 0 && rtx != 0 && output.ssrc != rtx);

    let mut again = ConferenceSources::with_seed(7);
    again.accept(ALICE, simulcast_sender()).unwrap();
    assert_eq!(again.outputs(ALICE), outputs, "drawn from the seed");

    conference.accept(BOB, simulcast_sender_at(100)).unwrap();
    let bob = conference.outputs(BOB)[0];
    let taken = [output.ssrc, rtx];
    assert!(!taken.contains(&bob.ssrc) && !taken.contains(&bob.rtx.unwrap()));
}

/// [`simulcast_sender`] with every SSRC moved up by `base`.
fn simulcast_sender_at(base: u32) -> EndpointSources {
    let mut sources = simulcast_sender();
    for source in &mut sources.sources {
        source.ssrc += base;
    }
    for group in &mut sources.groups {
        for ssrc in &mut group.ssrcs {
            *ssrc += base;
        }
    }
    sources
}

#[test]
fn outputs_stay_while_their_source_does() {
    let mut conference = ConferenceSources::with_seed(1);
    conference.accept(ALICE, simulcast_sender()).unwrap();
    let camera = conference.outputs(ALICE)[0];
    // A new session with the same sources (a restart) keeps them.
    conference.accept(ALICE, simulcast_sender()).unwrap();
    assert_eq!(conference.outputs(ALICE), [camera]);
    // A second video source (screen share, no RTX) gets its own; the camera keeps its.
    let screen = EndpointSources {
        sources: vec![source(40, MediaType::Video)],
        groups: Vec::new(),
    };
    conference.add(ALICE, &screen).unwrap();
    let outputs = conference.outputs(ALICE).to_vec();
    assert_eq!(outputs[0], camera);
    assert_eq!((outputs[1].source, outputs[1].rtx), (40, None));
    assert_ne!(outputs[1].ssrc, camera.ssrc);
    conference.remove(ALICE, &screen).unwrap();
    assert_eq!(conference.outputs(ALICE), [camera]);
    conference.remove_participant(ALICE);
    assert!(conference.outputs(ALICE).is_empty());
}

#[test]
fn receivers_are_told_of_output_ssrcs_in_the_description_of_the_source() {
    let mut conference = ConferenceSources::with_seed(3);
    conference
        .accept(ALICE, described_simulcast_sender())
        .unwrap();
    let output = conference.outputs(ALICE)[0];
    let rtx = output.rtx.unwrap();
    let change = conference.show(ALICE, &forwarded(&[(1, None), (output.ssrc, Some(rtx))]));
    let view = change.added.sources();
    assert_eq!(ssrcs(view), [1, output.ssrc, rtx]);
    let sender = described_simulcast_sender();
    let described = |ssrc| sender.sources.iter().find(|s| s.ssrc == ssrc).unwrap();
    assert_eq!(
        view.sources[1].msid,
        described(10).msid,
        "as the first layer"
    );
    assert_eq!(view.sources[1].name, described(10).name);
    assert_eq!(view.sources[2].msid, described(20).msid, "as its RTX");
    assert_eq!(
        view.groups,
        [group(GroupSemantics::Fid, &[output.ssrc, rtx])]
    );
    assert!(change.removed.is_empty());
    // A FID group the bridge makes up over an output and something else is not passed on.
    let mut strange = forwarded(&[(1, None)]);
    strange.ssrcs.insert(output.ssrc);
    strange
        .groups
        .push((GroupSemantics::Fid, vec![output.ssrc, 1]));
    let view = sender.receiver_view(ALICE, &strange, conference.outputs(ALICE));
    assert!(view.sources().groups.is_empty());
}

#[test]
fn nobody_may_send_an_output_ssrc() {
    let mut conference = ConferenceSources::with_seed(5);
    conference.accept(ALICE, simulcast_sender()).unwrap();
    let output = conference.outputs(ALICE)[0];
    let thief = EndpointSources {
        sources: vec![source(output.ssrc, MediaType::Video)],
        groups: Vec::new(),
    };
    assert_eq!(
        conference.accept(BOB, thief.clone()),
        Err(SourceError::SsrcReserved { ssrc: output.ssrc })
    );
    assert_eq!(
        conference.add(ALICE, &thief),
        Err(SourceError::SsrcReserved { ssrc: output.ssrc })
    );
    assert_eq!(
        conference.outputs(ALICE),
        [output],
        "nothing stored on a refusal"
    );
}
