//! A standards client (caps with the Jingle features and none of Jitsi's) in a room with
//! lib-jitsi-meet clients: it is offered plain XEP Jingle — its own audio and video contents,
//! one content per remote stream, kept current with content-add / content-remove — while the
//! Jitsi clients keep their dialect and get its sources as source-add; its mistakes get
//! XEP-0166 errors and its session survives them.

mod room;

use jid::Jid;
use room::*;
use tokio_xmpp::parsers::stanza_error::DefinedCondition;
use tutti_focus::capabilities::REQUIRED_FEATURES;
use tutti_focus::jingle::{
    Action, Content, Creator, DtlsSetup, Group, Jingle, Parameter, PayloadType, ReasonCondition,
    RtpDescription, Senders, Source,
};
use tutti_focus::room::{BridgeAnswer, BridgeError, BridgeRequest};
use tutti_proto::bridge_v1 as pb;

fn names(jingle: &Jingle) -> Vec<&str> {
    jingle.contents.iter().map(|c| c.name.as_str()).collect()
}

fn ssrcs_of(jingle: &Jingle) -> Vec<u32> {
    jingle
        .contents
        .iter()
        .filter_map(|c| c.description.as_ref())
        .flat_map(|d| d.sources.iter().map(|s| s.ssrc))
        .collect()
}

#[test]
fn a_standards_client_gets_one_content_per_stream_and_jitsi_clients_keep_their_dialect() {
    let mut sim = Sim::new();
    sim.join_and_accept("ada", 100);

    sim.join_with_features("gus", "v1", &standard_features());
    sim.answer_all();
    let initiate = sim.take_jingle("gus", Action::SessionInitiate);
    assert_eq!(names(&initiate), ["audio", "video", "audio-1", "video-2"]);
    assert_eq!(
        initiate.groups,
        [Group::bundle(["audio", "video", "audio-1", "video-2"])]
    );
    assert_eq!(
        initiate.content("audio").unwrap().senders,
        Some(Senders::Responder)
    );
    let ada_audio = initiate.content("audio-1").unwrap();
    assert_eq!(ada_audio.senders, Some(Senders::Initiator));
    assert_eq!(
        ssrcs_of(&Jingle {
            contents: vec![ada_audio.clone()],
            ..Jingle::new(Action::SessionInitiate, "x")
        }),
        [100]
    );
    let text = String::from(&initiate.to_element());
    assert!(!text.contains("jitsi.org"), "plain XEP only: {text}");

    // gus accepts with its sources: ada, a Jitsi client, hears of them as source-add.
    let id = sim.jingle("gus", &standard_accept(&initiate, "gus", 300));
    let (request_id, request) = sim.take_request("UpdateEndpoint");
    let BridgeRequest::UpdateEndpoint(update) = &request else {
        unreachable!()
    };
    let media = &update.media.as_ref().unwrap().media;
    assert_eq!(media.len(), 2, "one entry per media for the bridge");
    assert!(media.iter().all(|m| m.sends && m.receives));
    sim.answer(request_id, Ok(yes(&request)));
    assert_eq!(sim.reply(&id), Ok(()));
    let add = sim.take_jingle("ada", Action::SourceAdd);
    assert_eq!(ssrcs_of(&add), [300, 301]);

    // cy, another Jitsi client, joins: its offer carries gus's sources in Jitsi's dialect, and
    // gus gets cy's streams as contents of their own.
    let cy = sim.join_and_accept("cy", 500);
    assert!(ssrcs_of(&cy).contains(&300));
    assert_eq!(cy.contents.len(), 2);
    let added = sim.take_jingle("gus", Action::ContentAdd);
    assert_eq!(names(&added), ["audio-3", "video-4"]);
    assert_eq!(ssrcs_of(&added)[0], 500);
    assert!(added
        .contents
        .iter()
        .all(|c| c.senders == Some(Senders::Initiator) && c.transport.is_some()));
    assert_eq!(
        added.groups,
        [Group::bundle([
            "audio", "video", "audio-1", "video-2", "audio-3", "video-4"
        ])]
    );
    let mut content_accept = Jingle::new(Action::ContentAccept, &initiate.sid);
    content_accept.contents = added.contents.clone();
    let id = sim.jingle("gus", &content_accept);
    assert_eq!(sim.reply(&id), Ok(()));

    // cy leaves: its contents are removed from gus's session.
    sim.leave("cy");
    sim.answer_all();
    let removed = sim.take_jingle("gus", Action::ContentRemove);
    assert_eq!(names(&removed), ["audio-3", "video-4"]);
    sim.take_jingle("ada", Action::SourceRemove);

    // dee joins after: a new name, not cy's.
    sim.join_and_accept("dee", 700);
    let added = sim.take_jingle("gus", Action::ContentAdd);
    assert_eq!(names(&added), ["audio-5", "video-6"]);
    assert_eq!(sim.errors("bad_request"), 0);
}

#[test]
fn a_standards_clients_mistakes_get_xep_0166_errors_and_the_session_survives() {
    let mut sim = Sim::new();
    sim.join_and_accept("ada", 100);
    sim.join_with_features("gus", "v1", &standard_features());
    sim.answer_all();
    let initiate = sim.take_jingle("gus", Action::SessionInitiate);

    // A content the focus did not offer.
    let mut unoffered = standard_accept(&initiate, "gus", 300);
    unoffered.contents[2].name = "screen".to_owned();
    let id = sim.jingle("gus", &unoffered);
    let (condition, _, text) = sim.reply(&id).unwrap_err();
    assert_eq!(condition, DefinedCondition::BadRequest);
    assert!(text.contains("screen"), "{text}");

    // No DTLS fingerprint.
    let mut insecure = standard_accept(&initiate, "gus", 300);
    for content in &mut insecure.contents {
        content.transport.as_mut().unwrap().fingerprints.clear();
    }
    let id = sim.jingle("gus", &insecure);
    let (condition, _, text) = sim.reply(&id).unwrap_err();
    assert_eq!(condition, DefinedCondition::BadRequest);
    assert!(text.contains("fingerprint"), "{text}");
    assert!(!sim.has_request("UpdateEndpoint"));

    // The session is still there: a proper accept goes through.
    let id = sim.jingle("gus", &standard_accept(&initiate, "gus", 300));
    sim.answer_all();
    assert_eq!(sim.reply(&id), Ok(()));
    assert_eq!(sim.sessions("active"), 2);

    // A trickled candidate for an unknown content, then for a known one.
    let mut info = Jingle::new(Action::TransportInfo, &initiate.sid);
    let mut content = Content::new("0");
    content.transport = Some(participant_transport("gus"));
    info.contents.push(content);
    let id = sim.jingle("gus", &info);
    assert_eq!(sim.reply(&id).unwrap_err().0, DefinedCondition::BadRequest);
    info.contents[0].name = "video-2".to_owned();
    let id = sim.jingle("gus", &info);
    sim.answer_all();
    assert_eq!(sim.reply(&id), Ok(()));

    // A content-add from the client is not taken.
    let mut add = Jingle::new(Action::ContentAdd, &initiate.sid);
    add.contents.push(Content::new("audio"));
    let id = sim.jingle("gus", &add);
    assert_eq!(
        sim.reply(&id).unwrap_err().0,
        DefinedCondition::FeatureNotImplemented
    );

    // gus refuses ada's video: when ada leaves, only her audio's content is removed.
    let mut reject = Jingle::new(Action::ContentReject, &initiate.sid);
    reject.contents.push(Content::new("video-2"));
    let id = sim.jingle("gus", &reject);
    assert_eq!(sim.reply(&id), Ok(()));
    sim.leave("ada");
    sim.answer_all();
    let removed = sim.take_jingle("gus", Action::ContentRemove);
    assert_eq!(names(&removed), ["audio-1"]);
}

#[test]
fn a_jitsi_client_with_caps_keeps_the_jitsi_offer() {
    let mut sim = Sim::new();
    let mut features = REQUIRED_FEATURES.to_vec();
    features.push("http://jitsi.org/json-encoded-sources");
    sim.join_with_features("ljm", "j1", &features);
    sim.answer_all();
    let initiate = sim.take_jingle("ljm", Action::SessionInitiate);
    assert_eq!(names(&initiate), ["audio", "video"]);
    assert!(String::from(&initiate.to_element()).contains("http://jitsi.org/protocol/focus"));
}

#[test]
fn fifty_joins_and_leaves_leave_a_standards_clients_session_as_it_was() {
    let mut sim = Sim::new();
    sim.join_and_accept("ada", 100);
    sim.join_with_features("gus", "v1", &standard_features());
    sim.answer_all();
    let initiate = sim.take_jingle("gus", Action::SessionInitiate);
    let id = sim.jingle("gus", &standard_accept(&initiate, "gus", 300));
    sim.answer_all();
    assert_eq!(sim.reply(&id), Ok(()));
    let mut contents: Vec<String> = initiate.contents.iter().map(|c| c.name.clone()).collect();
    let mut names_seen = contents.clone();
    for round in 0..50 {
        let nick = format!("p{round}");
        sim.join_and_accept(&nick, 1000 + 10 * round);
        let added = sim.take_jingle("gus", Action::ContentAdd);
        for content in &added.contents {
            assert!(
                !names_seen.contains(&content.name),
                "{} again",
                content.name
            );
            names_seen.push(content.name.clone());
            contents.push(content.name.clone());
        }
        assert_eq!(
            added.groups,
            [Group::bundle(contents.clone())],
            "the BUNDLE group lists the session's contents"
        );
        sim.leave(&nick);
        sim.answer_all();
        let removed = sim.take_jingle("gus", Action::ContentRemove);
        contents.retain(|name| !removed.contents.iter().any(|c| c.name == *name));
        sim.take_jingles("ada");
    }
    // Its own two and ada's two, as after its session-accept; 100 streams came and went.
    assert_eq!(contents, ["audio", "video", "audio-1", "video-2"]);
    assert_eq!(names_seen.len(), 4 + 100);
    assert_eq!(sim.sessions("active"), 2);
}

/// The MIDs an UpdateEndpoint carries, by SSRC.
fn receive_mids(request: &BridgeRequest) -> Vec<(u32, String)> {
    let BridgeRequest::UpdateEndpoint(update) = request else {
        panic!("not an UpdateEndpoint: {request:?}")
    };
    assert!(
        update.sources.is_none() && update.media.is_none() && update.transport.is_none(),
        "MIDs alone: {update:?}"
    );
    update
        .receive_mids
        .as_ref()
        .expect("receive_mids")
        .mids
        .iter()
        .map(|m| (m.ssrc, m.mid.clone()))
        .collect()
}

#[test]
fn the_bridge_is_told_each_streams_mid_one_update_at_a_time() {
    let mut sim = Sim::new();
    sim.join_and_accept("ada", 100);
    sim.join_with_features("gus", "v1", &standard_features());
    sim.grant("AllocateEndpoint");
    let initiate = sim.take_jingle("gus", Action::SessionInitiate);
    let id = sim.jingle("gus", &standard_accept(&initiate, "gus", 300));
    let (accept_id, accept) = sim.take_request("UpdateEndpoint");
    let BridgeRequest::UpdateEndpoint(update) = &accept else {
        unreachable!()
    };
    assert!(
        update.receive_mids.is_none(),
        "the accept leaves the MIDs alone"
    );
    sim.answer(accept_id, Ok(yes(&accept)));
    assert_eq!(sim.reply(&id), Ok(()));
    // Its contents' names by the SSRC each stream is forwarded under: the bridge writes them.
    let (first, request) = sim.take_request("UpdateEndpoint");
    assert_eq!(receive_mids(&request), stream_ssrcs(&initiate));
    assert_eq!(receive_mids(&request)[0], (100, "audio-1".to_owned()));

    // cy joins while the first list is in flight: the new list waits for its answer.
    let cy = sim.join_and_offer("cy");
    let id = sim.jingle("cy", &session_accept(&cy.sid, "cy", 500));
    let (cy_id, cy_accept) = sim.take_request("UpdateEndpoint");
    let BridgeRequest::UpdateEndpoint(update) = &cy_accept else {
        unreachable!()
    };
    assert!(update.receive_mids.is_none(), "Jitsi clients get no MIDs");
    sim.answer(cy_id, Ok(yes(&cy_accept)));
    assert_eq!(sim.reply(&id), Ok(()));
    let added = sim.take_jingle("gus", Action::ContentAdd);
    let mut accept = Jingle::new(Action::ContentAccept, &initiate.sid);
    accept.contents = added.contents.clone();
    let id = sim.jingle("gus", &accept);
    assert_eq!(sim.reply(&id), Ok(()));
    assert!(
        !sim.has_request("UpdateEndpoint"),
        "one list in flight at a time"
    );
    sim.answer(first, Ok(BridgeAnswer::Updated(Default::default())));
    let (second, request) = sim.take_request("UpdateEndpoint");
    let mut expected = stream_ssrcs(&initiate);
    expected.extend(stream_ssrcs(&added));
    assert_eq!(receive_mids(&request), expected);
    assert_eq!(expected.len(), 4);

    // A failure is counted; the next change sends the whole list again.
    let failure = BridgeError {
        call: "UpdateEndpoint",
        cause: "down for a moment".to_owned(),
    };
    sim.answer(second, Err(failure));
    assert_eq!(sim.errors("bridge"), 1);
    let mut reject = Jingle::new(Action::ContentReject, &initiate.sid);
    reject
        .contents
        .push(Content::new(added.contents[1].name.clone()));
    let id = sim.jingle("gus", &reject);
    assert_eq!(sim.reply(&id), Ok(()));
    let (_, request) = sim.take_request("UpdateEndpoint");
    assert_eq!(receive_mids(&request), expected[..3]);
}

/// A standards client's own offer (as Dino or Conversations make one): audio `0` (SSRC `ssrc`,
/// Opus and telephone-event) and video `1` (`ssrc + 1`, VP8), both ways, DTLS `actpass`.
fn client_initiate(sid: &str, nick: &str, ssrc: u32) -> Jingle {
    let mut transport = participant_transport(nick);
    for fingerprint in &mut transport.fingerprints {
        fingerprint.setup = Some(DtlsSetup::Actpass);
    }
    let mut jingle = Jingle::new(Action::SessionInitiate, sid);
    jingle.initiator = Some(occupant(nick).to_string());
    let offers = [
        (
            "0",
            "audio",
            vec![
                PayloadType::new(111, "opus", 48000, Some(2)),
                PayloadType::new(126, "telephone-event", 8000, None),
            ],
            ssrc,
        ),
        (
            "1",
            "video",
            vec![PayloadType::new(100, "VP8", 90000, None)],
            ssrc + 1,
        ),
    ];
    for (name, media, payload_types, own) in offers {
        let mut description = RtpDescription::new(media);
        description.payload_types = payload_types;
        description.rtcp_mux = true;
        let mut source = Source::new(own);
        source.parameters = vec![Parameter::new("msid", format!("{nick} {nick}-{media}"))];
        description.sources.push(source);
        let mut content = Content::new(name);
        content.creator = Some(Creator::Initiator);
        content.senders = Some(Senders::Both);
        content.description = Some(description);
        content.transport = Some(transport.clone());
        jingle.contents.push(content);
    }
    jingle.groups.push(Group::bundle(["0", "1"]));
    jingle
}

#[test]
fn a_standards_client_may_initiate_the_session_itself() {
    let mut sim = Sim::new();
    sim.join_and_accept("ada", 100);
    // A Jitsi client may not: the focus initiates its sessions.
    let id = sim.jingle("ada", &client_initiate("ljm-1", "ada", 900));
    assert_eq!(
        sim.reply(&id).unwrap_err().0,
        DefinedCondition::ServiceUnavailable
    );

    sim.join_with_features("gus", "v1", &standard_features());
    sim.answer_all();
    let offered = sim.take_jingle("gus", Action::SessionInitiate);
    // gus calls the focus instead of answering its offer.
    let id = sim.jingle("gus", &client_initiate("gus-call", "gus", 300));
    let (request_id, request) = sim.take_request("UpdateEndpoint");
    let BridgeRequest::UpdateEndpoint(update) = &request else {
        unreachable!()
    };
    // Read as an answer: its sources, and the DTLS client role (it offered actpass).
    let ssrcs: Vec<u32> = update
        .sources
        .as_ref()
        .unwrap()
        .sources
        .iter()
        .map(|s| s.ssrc)
        .collect();
    assert_eq!(ssrcs, [300, 301]);
    let dtls = update.transport.as_ref().unwrap().dtls.as_ref().unwrap();
    assert_eq!(dtls.setup, tutti_proto::bridge_v1::DtlsSetup::Active as i32);
    assert!(!sim.answered(&id), "answered once the bridge has taken it");
    sim.answer(request_id, Ok(yes(&request)));
    assert_eq!(sim.reply(&id), Ok(()));

    let jingles = sim.take_jingles("gus");
    let actions: Vec<Action> = jingles.iter().map(|j| j.action).collect();
    assert_eq!(
        actions,
        [
            Action::SessionTerminate,
            Action::SessionAccept,
            Action::ContentAdd
        ]
    );
    // The focus's offer ends, naming the client's session as the one that goes on.
    assert_eq!(jingles[0].sid, offered.sid);
    assert_eq!(
        jingles[0].reason.as_ref().unwrap().condition,
        ReasonCondition::AlternativeSession {
            sid: "gus-call".to_owned()
        }
    );
    // The accept: the client's contents, the codecs of its offer the bridge forwards, the
    // bridge's transport with DTLS passive, one BUNDLE.
    let accept = &jingles[1];
    assert_eq!(accept.sid, "gus-call");
    assert_eq!(names(accept), ["0", "1"]);
    assert_eq!(accept.groups, [Group::bundle(["0", "1"])]);
    let audio = accept.content("0").unwrap();
    let codecs: Vec<_> = audio
        .description
        .as_ref()
        .unwrap()
        .payload_types
        .iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(codecs, [111], "telephone-event is not forwarded");
    let transport = audio.transport.as_ref().unwrap();
    assert_eq!(transport.fingerprints[0].setup, Some(DtlsSetup::Passive));
    assert_eq!(
        transport.ufrag,
        offered.contents[0].transport.as_ref().unwrap().ufrag,
        "the endpoint the focus had allocated"
    );
    // ada's streams follow under new names, BUNDLEd with the client's contents.
    let add = &jingles[2];
    assert_eq!(add.sid, "gus-call");
    let added = names(add);
    assert_eq!(added.len(), 2);
    assert!(
        added.iter().all(|name| !names(&offered).contains(name)),
        "{added:?}"
    );
    let mut bundle = vec!["0", "1"];
    bundle.extend(&added);
    assert_eq!(add.groups, [Group::bundle(bundle)]);
    assert_eq!(ssrcs_of(add)[0], 100);
    // The focus is the responder of this session: it creates the contents it adds and is
    // their sender (XEP-0166 names both by the session's roles).
    assert!(
        add.contents
            .iter()
            .all(|c| c.creator == Some(Creator::Responder) && c.senders == Some(Senders::Responder)),
        "{add:?}"
    );
    // ada hears of gus's sources; once gus accepts ada's streams, the bridge is told their
    // MIDs.
    assert_eq!(
        ssrcs_of(&sim.take_jingle("ada", Action::SourceAdd)),
        [300, 301]
    );
    assert!(!sim.has_request("UpdateEndpoint"), "nothing accepted yet");
    let mut content_accept = Jingle::new(Action::ContentAccept, "gus-call");
    content_accept.contents = add.contents.clone();
    let id = sim.jingle("gus", &content_accept);
    assert_eq!(sim.reply(&id), Ok(()));
    let (_, request) = sim.take_request("UpdateEndpoint");
    assert_eq!(receive_mids(&request), stream_ssrcs(add));
    assert_eq!(sim.sessions("active"), 2);

    // The session is the client's: its content names are the session's; a second initiate
    // is refused.
    let mut info = Jingle::new(Action::TransportInfo, "gus-call");
    let mut content = Content::new("0");
    content.transport = Some(participant_transport("gus"));
    info.contents.push(content);
    let id = sim.jingle("gus", &info);
    sim.answer_all();
    assert_eq!(sim.reply(&id), Ok(()));
    let id = sim.jingle("gus", &client_initiate("gus-again", "gus", 300));
    let (condition, _, text) = sim.reply(&id).unwrap_err();
    assert_eq!(condition, DefinedCondition::ServiceUnavailable);
    assert!(text.contains("established"), "{text}");
}

/// A `<propose>` (XEP-0353) from `nick` to the focus; the `<proceed>` ids the focus answered.
fn ring(sim: &mut Sim, nick: &str, id: &str) -> Vec<String> {
    let propose: minidom::Element = format!(
        "<propose xmlns='urn:xmpp:jingle-message:0' id='{id}'>\
         <description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'/></propose>"
    )
    .parse()
    .expect("a propose");
    let mut message =
        tokio_xmpp::parsers::message::Message::chat(Some(Jid::from(occupant("focus"))));
    message.from = Some(Jid::from(occupant(nick)));
    message.payloads.push(propose);
    sim.stanza(tokio_xmpp::Stanza::Message(message));
    proceeds(&sim.take_sent(), nick)
}

/// The ids of the `<proceed>`s (XEP-0353) among `sent` to `nick`.
fn proceeds(sent: &[tokio_xmpp::Stanza], nick: &str) -> Vec<String> {
    sent.iter()
        .filter_map(|stanza| match stanza {
            tokio_xmpp::Stanza::Message(m) if m.to == Some(Jid::from(occupant(nick))) => m
                .payloads
                .iter()
                .find(|p| p.is("proceed", "urn:xmpp:jingle-message:0"))
                .and_then(|p| p.attr("id").map(str::to_owned)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_client_that_rings_is_told_to_proceed_and_its_session_initiate_is_taken() {
    let mut sim = Sim::new();
    sim.join_and_accept("ada", 100);
    assert!(
        ring(&mut sim, "ada", "r0").is_empty(),
        "a Jitsi client is not rung"
    );
    sim.join_with_features("gus", "v1", &standard_features());
    sim.answer_all();
    sim.take_jingle("gus", Action::SessionInitiate);
    assert_eq!(ring(&mut sim, "gus", "gus-ring"), ["gus-ring"]);
    let id = sim.jingle("gus", &client_initiate("gus-ring", "gus", 300));
    sim.answer_all();
    assert_eq!(sim.reply(&id), Ok(()));
    let accept = sim
        .take_jingles("gus")
        .into_iter()
        .find(|j| j.action == Action::SessionAccept)
        .expect("the focus accepts the session");
    assert_eq!(accept.sid, "gus-ring");
    assert_eq!(sim.sessions("active"), 2);
    // Rung again with a session established: not taken.
    assert!(ring(&mut sim, "gus", "gus-ring-2").is_empty());
}

#[test]
fn a_client_that_rings_as_it_joins_is_told_to_proceed_right_behind_the_offer() {
    let mut sim = Sim::new();
    // A Jitsi client ringing as it joins is not rung back once its offer goes out.
    sim.join("ada");
    assert!(ring(&mut sim, "ada", "ada-ring").is_empty());
    sim.answer_all();
    let sent = sim.take_sent();
    assert!(
        proceeds(&sent, "ada").is_empty(),
        "a Jitsi client is not rung"
    );
    sim.join_and_accept("bob", 100);

    // gus rings before the focus has offered it anything (its endpoint is being allocated).
    sim.join_with_features("gus", "v1", &standard_features());
    assert!(
        ring(&mut sim, "gus", "gus-ring").is_empty(),
        "no proceed before the offer"
    );
    sim.answer_all();
    let sent = sim.take_sent();
    let offer_at = sent
        .iter()
        .position(|stanza| matches!(stanza, tokio_xmpp::Stanza::Iq(_)))
        .expect("the focus's offer");
    assert_eq!(proceeds(&sent[offer_at..], "gus"), ["gus-ring"]);
    assert_eq!(proceeds(&sent, "gus").len(), 1, "once, behind the offer");
    // Its session-initiate with the propose's id takes the offer's place.
    let id = sim.jingle("gus", &client_initiate("gus-ring", "gus", 300));
    sim.answer_all();
    assert_eq!(sim.reply(&id), Ok(()));
    let actions: Vec<Action> = sim.take_jingles("gus").iter().map(|j| j.action).collect();
    assert_eq!(
        actions,
        [
            Action::SessionTerminate,
            Action::SessionAccept,
            Action::ContentAdd
        ]
    );
    assert_eq!(sim.sessions("active"), 2);
}

#[test]
fn a_standards_client_that_signals_no_ssrcs_is_routed_by_its_mids() {
    let mut sim = Sim::new();
    sim.join_and_accept("ada", 100);
    sim.join_with_features("gus", "v1", &standard_features());
    sim.answer_all();
    let initiate = sim.take_jingle("gus", Action::SessionInitiate);

    // gus accepts without a single XEP-0339 source: the bridge is given its contents' names as
    // the MIDs to learn its streams' SSRCs by, and the SSRCs the focus minted for the others to
    // receive them under.
    let id = sim.jingle("gus", &accept_with_sources(&initiate, "gus", None));
    let (request_id, request) = sim.take_request("UpdateEndpoint");
    let BridgeRequest::UpdateEndpoint(update) = &request else {
        unreachable!()
    };
    let sources = update.sources.as_ref().unwrap();
    assert!(sources.sources.is_empty());
    let learnt: Vec<(&str, &str, i32, bool)> = sources
        .learnt_sources
        .iter()
        .map(|l| {
            (
                l.mid.as_str(),
                l.name.as_str(),
                l.media_type,
                l.output_rtx_ssrc != 0,
            )
        })
        .collect();
    let (audio, video) = (pb::MediaType::Audio as i32, pb::MediaType::Video as i32);
    assert_eq!(
        learnt,
        [
            ("audio", "gus-a0", audio, false),
            ("video", "gus-v0", video, true)
        ]
    );
    let outputs: Vec<u32> = sources
        .learnt_sources
        .iter()
        .flat_map(|l| [l.output_ssrc, l.output_rtx_ssrc])
        .filter(|&ssrc| ssrc != 0)
        .collect();
    assert_eq!(outputs.len(), 3);
    assert!(!outputs.contains(&100), "never a participant's SSRC");
    assert!(sources
        .learnt_sources
        .iter()
        .all(|l| l.owner.ends_with("/gus")));
    sim.answer(request_id, Ok(yes(&request)));
    assert_eq!(sim.reply(&id), Ok(()));

    // ada, a Jitsi client, is told of gus's streams under those SSRCs, with gus's msid.
    let add = sim.take_jingle("ada", Action::SourceAdd);
    assert_eq!(ssrcs_of(&add), outputs);
    let video_content = add.content("video").unwrap();
    let description = video_content.description.as_ref().unwrap();
    assert_eq!(description.sources[0].parameter("msid"), Some("gus gus-v0"));
    assert_eq!(description.source_groups[0].ssrcs, outputs[1..]);

    // cy, a standards client that signals its SSRCs, gets gus's streams as contents of their
    // own under the same SSRCs; its own sources go to the bridge as before, no MID needed.
    sim.join_with_features("cy", "v1", &standard_features());
    sim.answer_all();
    let cy = sim.take_jingle("cy", Action::SessionInitiate);
    let offered = ssrcs_of(&cy);
    assert!(
        outputs.iter().all(|ssrc| offered.contains(ssrc)),
        "{offered:?}"
    );
    sim.jingle("cy", &standard_accept(&cy, "cy", 500));
    let (_, request) = sim.take_request("UpdateEndpoint");
    let BridgeRequest::UpdateEndpoint(update) = &request else {
        unreachable!()
    };
    let sources = update.sources.as_ref().unwrap();
    assert!(sources.learnt_sources.is_empty());
    assert_eq!(sources.sources.len(), 2);
}
