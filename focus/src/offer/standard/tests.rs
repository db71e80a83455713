use super::*;
use crate::jingle::{DtlsSetup, GroupSemantics};
use crate::ns;
use crate::sources::{ConferenceSources, EndpointSources, MediaSource};
use crate::test_support::{
    bridge_transport, fixture_jingle, forwarded, SESSION_ACCEPT, SESSION_ACCEPT_FORWARDED,
};

const ALICE: &str = "room@muc/alice";
const CAROL: &str = "room@muc/carol";
const BOB: &str = "room@muc/bob";

/// A conference where alice answered with the captured lib-jitsi-meet session-accept (the
/// bridge forwarding its audio and its video's first layer with RTX) and carol, a standards
/// client, sends one audio source without msid.
fn conference() -> ConferenceSources {
    let mut conference = ConferenceSources::with_seed(1);
    let sources = EndpointSources::from_jingle(&fixture_jingle(SESSION_ACCEPT)).unwrap();
    conference.accept(ALICE, sources).unwrap();
    conference.show(ALICE, &forwarded(&SESSION_ACCEPT_FORWARDED));
    let carol = EndpointSources {
        sources: vec![MediaSource {
            ssrc: 77,
            media: MediaType::Audio,
            name: None,
            msid: None,
            video_type: None,
        }],
        groups: Vec::new(),
    };
    conference.accept(CAROL, carol).unwrap();
    conference.show(CAROL, &forwarded(&[(77, None)]));
    conference
}

fn initiate(views: &[ReceiverView]) -> (StandardSession, Jingle) {
    let transport = bridge_transport();
    StandardSession::initiate(&SessionInitiate {
        sid: "sid-bob",
        initiator: "room@muc/focus",
        responder: "bob@example.com/gst",
        bridge_transport: &transport,
        sources: views,
        bridge_session_id: Some("bs-1"),
    })
    .unwrap()
}

fn names(jingle: &Jingle) -> Vec<&str> {
    jingle.contents.iter().map(|c| c.name.as_str()).collect()
}

#[test]
fn the_offer_has_the_clients_own_contents_and_one_per_remote_stream() {
    let views = conference().receiver_views_except(BOB);
    let (session, jingle) = initiate(&views);
    assert_eq!(jingle.action, Action::SessionInitiate);
    assert_eq!(
        names(&jingle),
        ["audio", "video", "audio-1", "video-2", "audio-3"]
    );
    assert_eq!(session.content_count(), 5);
    assert_eq!(
        jingle.groups,
        [Group::bundle([
            "audio", "video", "audio-1", "video-2", "audio-3"
        ])]
    );
    for own in ["audio", "video"] {
        let content = jingle.content(own).unwrap();
        assert_eq!(content.creator, Some(Creator::Initiator));
        assert_eq!(
            content.senders,
            Some(Senders::Responder),
            "{own}: the client sends"
        );
        assert!(content.description.as_ref().unwrap().sources.is_empty());
    }
    // Each remote stream: receive-only for the client, its own source, msid and cname.
    let video = jingle.content("video-2").unwrap();
    assert_eq!(video.senders, Some(Senders::Initiator));
    let description = video.description.as_ref().unwrap();
    assert_eq!(description.media.as_deref(), Some("video"));
    let ssrcs: Vec<u32> = description.sources.iter().map(|s| s.ssrc).collect();
    assert_eq!(ssrcs, [1130870372, 624615736]);
    assert_eq!(
        description.source_groups,
        [SourceGroup::new(
            GroupSemantics::Fid,
            vec![1130870372, 624615736]
        )]
    );
    for source in &description.sources {
        assert!(source.parameter("msid").unwrap().starts_with("eff6ccca-"));
        assert_eq!(source.parameter("cname"), Some("alice"));
        assert!(source.extensions.children.is_empty(), "no ssrc-info");
        assert_eq!(source.name, None, "no Jitsi source name");
    }
    let alice_audio = jingle
        .content("audio-1")
        .unwrap()
        .description
        .as_ref()
        .unwrap();
    assert_eq!(alice_audio.sources.len(), 1);
    assert_ne!(
        alice_audio.sources[0].parameter("msid"),
        description.sources[0].parameter("msid"),
        "each stream has an msid of its own"
    );
    // carol gave no msid: one is made, with her nick as the MediaStream.
    let carol = jingle
        .content("audio-3")
        .unwrap()
        .description
        .as_ref()
        .unwrap();
    assert_eq!(carol.sources[0].parameter("msid"), Some("carol audio-77"));
    assert_eq!(carol.sources[0].parameter("cname"), Some("carol"));
}

#[test]
fn every_content_has_the_bridge_transport_codecs_feedback_and_header_extensions() {
    let views = conference().receiver_views_except(BOB);
    let (_, jingle) = initiate(&views);
    for content in &jingle.contents {
        let transport = content.transport.as_ref().unwrap();
        assert_eq!(transport.ufrag.as_deref(), Some("brdg"));
        assert!(transport.rtcp_mux);
        assert_eq!(
            transport.fingerprints,
            [crate::jingle::Fingerprint::new(
                "sha-256",
                "AA:BB",
                DtlsSetup::Actpass
            )]
        );
        assert_eq!(transport.candidates.len(), 1);
        assert!(
            transport.extensions.children.is_empty(),
            "no bridge channel for a standards client"
        );
        let description = content.description.as_ref().unwrap();
        assert!(description.rtcp_mux);
        assert!(description
            .header_extensions
            .iter()
            .any(|extension| extension.uri == super::super::MID_URI));
        if description.media.as_deref() == Some("video") {
            let vp8 = description
                .payload_types
                .iter()
                .find(|pt| pt.name.as_deref() == Some("VP8"))
                .unwrap();
            let feedback: Vec<String> = vp8.rtcp_feedback.iter().map(|f| f.sdp_value()).collect();
            assert!(feedback.contains(&"nack pli".to_owned()));
            assert!(feedback.contains(&"transport-cc".to_owned()));
        }
    }
    assert!(jingle.extensions.children.is_empty(), "no bridge-session");
    let element = jingle.to_element();
    assert_eq!(Jingle::from_element(&element).unwrap(), jingle);
    let text = String::from(&element);
    assert!(!text.contains("jitsi.org"), "nothing of Jitsi's: {text}");
    assert!(text.contains(ns::JINGLE_RTCP_FB) && text.contains(ns::JINGLE_RTP_HDREXT));
}

#[test]
fn streams_come_and_go_with_content_add_and_content_remove_under_new_names() {
    let mut conference = conference();
    let alice_only: Vec<ReceiverView> = conference
        .receiver_views_except(BOB)
        .into_iter()
        .filter(|view| view.owner() == ALICE)
        .collect();
    let (mut session, _) = initiate(&alice_only);
    assert_eq!(session.content_count(), 4);
    // Nothing new of alice: nothing to add.
    assert_eq!(session.content_add("sid-bob", &alice_only), None);

    let carol = vec![conference.remove_participant(CAROL)];
    let add = session.content_add("sid-bob", &carol).unwrap();
    assert_eq!(add.action, Action::ContentAdd);
    assert_eq!(names(&add), ["audio-3"]);
    let content = &add.contents[0];
    assert_eq!(content.senders, Some(Senders::Initiator));
    assert!(content.transport.as_ref().unwrap().ufrag.is_some());
    assert_eq!(
        add.groups,
        [Group::bundle([
            "audio", "video", "audio-1", "video-2", "audio-3"
        ])]
    );

    let remove = session.content_remove("sid-bob", &carol).unwrap();
    assert_eq!(remove.action, Action::ContentRemove);
    assert_eq!(names(&remove), ["audio-3"]);
    assert_eq!(remove.contents[0].creator, Some(Creator::Initiator));
    assert!(remove.contents[0].description.is_none());
    assert_eq!(
        session.content_remove("sid-bob", &carol),
        None,
        "removed once"
    );

    // 50 joins and leaves: each under a name never used before, the session no bigger.
    let mut seen = vec!["audio-3".to_owned()];
    for _ in 0..50 {
        let add = session.content_add("sid-bob", &carol).unwrap();
        let name = add.contents[0].name.clone();
        assert!(!seen.contains(&name), "{name} was used before");
        seen.push(name);
        assert_eq!(session.content_count(), 5);
        session.content_remove("sid-bob", &carol).unwrap();
        assert_eq!(session.content_count(), 4);
    }
}

#[test]
fn unknown_content_names_are_found_and_rejected_contents_forgotten() {
    let views = conference().receiver_views_except(BOB);
    let (mut session, offer) = initiate(&views);
    assert_eq!(session.check_names(&offer), Ok(()));
    let mut accept = Jingle::new(Action::SessionAccept, "sid-bob");
    accept.contents.push(Content::new("audio"));
    accept.contents.push(Content::new("screen"));
    assert_eq!(
        session.check_names(&accept),
        Err(UnknownContent("screen".to_owned()))
    );

    let mut reject = Jingle::new(Action::ContentReject, "sid-bob");
    reject.contents.push(Content::new("video-2"));
    reject.contents.push(Content::new("audio"));
    session.forget(&reject);
    assert_eq!(session.content_count(), 4, "its own audio stays");
    let mut named = Jingle::new(Action::TransportInfo, "sid-bob");
    named.contents.push(Content::new("video-2"));
    assert!(session.check_names(&named).is_err());
    // The forgotten stream gets no content-remove.
    let alice: Vec<ReceiverView> = views.into_iter().filter(|v| v.owner() == ALICE).collect();
    assert_eq!(
        names(&session.content_remove("sid", &alice).unwrap()),
        ["audio-1"]
    );
}
