use minidom::Element;

use super::*;
use crate::jingle::GroupSemantics;
use crate::ns;
use crate::sources::{ConferenceSources, EndpointSources, MediaSource};
use crate::test_support::{
    bridge_transport, fixture_jingle, forwarded, SESSION_ACCEPT, SESSION_ACCEPT_FORWARDED,
};

const ALICE: &str = "room@muc/alice";

/// A conference where alice has answered with the captured simulcast session-accept, and the
/// bridge forwards its audio and the video's first layer with RTX.
fn alice_views() -> Vec<ReceiverView> {
    let mut conference = ConferenceSources::new();
    let sources = EndpointSources::from_jingle(&fixture_jingle(SESSION_ACCEPT)).unwrap();
    conference.accept(ALICE, sources).unwrap();
    conference.show(ALICE, &forwarded(&SESSION_ACCEPT_FORWARDED));
    conference.receiver_views_except("room@muc/bob")
}

fn offer_for_bob(transport: &pb::Transport, views: &[ReceiverView]) -> Result<Jingle, OfferError> {
    session_initiate(&SessionInitiate {
        sid: "sid-bob",
        initiator: "room@muc/focus",
        responder: "bob@example.com/web",
        bridge_transport: transport,
        sources: views,
        bridge_session_id: Some("bs-1"),
    })
}

fn simulcast_groups(jingle: &Jingle) -> usize {
    jingle
        .contents
        .iter()
        .filter_map(|content| content.description.as_ref())
        .flat_map(|description| &description.source_groups)
        .filter(|group| group.semantics == GroupSemantics::Simulcast)
        .count()
}

#[test]
fn session_initiate_carries_the_bridge_transport_in_every_bundled_content() {
    let jingle = offer_for_bob(&bridge_transport(), &[]).unwrap();
    assert_eq!(jingle.action, Action::SessionInitiate);
    assert_eq!(jingle.initiator.as_deref(), Some("room@muc/focus"));
    assert_eq!(jingle.responder.as_deref(), Some("bob@example.com/web"));
    assert_eq!(
        jingle.groups,
        [crate::jingle::Group::bundle(["audio", "video"])]
    );
    assert_eq!(
        jingle
            .extensions
            .get::<BridgeSession>()
            .unwrap()
            .unwrap()
            .id
            .as_deref(),
        Some("bs-1")
    );
    for name in ["audio", "video"] {
        let content = jingle.content(name).unwrap();
        assert_eq!(content.creator, Some(Creator::Initiator));
        assert_eq!(content.senders, Some(Senders::Both));
        let transport = content.transport.as_ref().unwrap();
        assert_eq!(transport.ufrag.as_deref(), Some("brdg"));
        assert_eq!(transport.pwd.as_deref(), Some("0123456789abcdefghijklmn"));
        assert!(transport.rtcp_mux);
        let fingerprint = &transport.fingerprints[0];
        assert_eq!(
            (
                fingerprint.hash.as_str(),
                fingerprint.value.as_str(),
                fingerprint.setup
            ),
            ("sha-256", "AA:BB", Some(DtlsSetup::Actpass))
        );
        let candidate = &transport.candidates[0];
        assert_eq!(
            (candidate.ip.as_str(), candidate.port, candidate.kind),
            ("192.0.2.10", 10000, CandidateType::Host)
        );
        assert_eq!(candidate.protocol, "udp");
        assert_eq!(
            transport
                .extensions
                .get::<WebSocket>()
                .unwrap()
                .unwrap()
                .url,
            "wss://bridge/colibri-ws/b1/c1/e1?pwd=x"
        );
    }
}

#[test]
fn session_initiate_offers_jicofos_codecs() {
    let jingle = offer_for_bob(&bridge_transport(), &[]).unwrap();
    let audio = jingle
        .content("audio")
        .unwrap()
        .description
        .as_ref()
        .unwrap();
    let ids = |description: &RtpDescription| {
        description
            .payload_types
            .iter()
            .map(|pt| pt.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(audio), [111, 126]);
    let opus = &audio.payload_types[0];
    assert_eq!(opus.parameter("minptime"), Some("10"));
    assert_eq!(opus.parameter("useinbandfec"), Some("1"));
    assert_eq!(opus.rtcp_feedback[0].sdp_value(), "transport-cc");
    assert!(audio.extmap_allow_mixed && audio.rtcp_mux);
    let extension_ids = |description: &RtpDescription| {
        description
            .header_extensions
            .iter()
            .map(|extension| (extension.id, extension.uri.clone()))
            .collect::<Vec<_>>()
    };
    assert!(extension_ids(audio).contains(&(1, AUDIO_LEVEL_URI.into())));
    assert!(extension_ids(audio).contains(&(5, TRANSPORT_CC_URI.into())));

    let video = jingle
        .content("video")
        .unwrap()
        .description
        .as_ref()
        .unwrap();
    assert_eq!(ids(video), [41, 42, 100, 96, 101, 97, 107, 99]);
    for (codec, rtx) in [(41, 42), (100, 96), (101, 97), (107, 99)] {
        let rtx = video.payload_types.iter().find(|pt| pt.id == rtx).unwrap();
        assert_eq!(rtx.name.as_deref(), Some("rtx"));
        assert_eq!(rtx.parameter("apt"), Some(codec.to_string().as_str()));
        let codec = video
            .payload_types
            .iter()
            .find(|pt| pt.id == codec)
            .unwrap();
        let feedback: Vec<String> = codec
            .rtcp_feedback
            .iter()
            .map(|fb| fb.sdp_value())
            .collect();
        assert_eq!(feedback, ["ccm fir", "nack", "nack pli", "transport-cc"]);
    }
    let h264 = video.payload_types.iter().find(|pt| pt.id == 107).unwrap();
    assert_eq!(h264.parameter("profile-level-id"), Some("42e01f"));
    assert!(extension_ids(video).contains(&(10, MID_URI.into())));
    assert!(extension_ids(video).contains(&(11, AV1_DEPENDENCY_DESCRIPTOR_URI.into())));
    assert!(video.extmap_allow_mixed && video.rtcp_mux);
}

#[test]
fn session_initiate_offers_others_sources_as_the_bridge_forwards_them() {
    let jingle = offer_for_bob(&bridge_transport(), &alice_views()).unwrap();
    assert_eq!(simulcast_groups(&jingle), 0);
    let audio = jingle
        .content("audio")
        .unwrap()
        .description
        .as_ref()
        .unwrap();
    assert_eq!(audio.sources.len(), 1);
    let video = jingle
        .content("video")
        .unwrap()
        .description
        .as_ref()
        .unwrap();
    let ssrcs: Vec<u32> = video.sources.iter().map(|source| source.ssrc).collect();
    assert_eq!(ssrcs, [1130870372, 624615736]);
    assert_eq!(
        video.source_groups,
        [SourceGroup::new(
            GroupSemantics::Fid,
            vec![1130870372, 624615736]
        )]
    );
    for source in audio.sources.iter().chain(&video.sources) {
        assert_eq!(
            source.extensions.get::<SsrcInfo>().unwrap().unwrap().owner,
            ALICE
        );
        assert!(source.parameter("msid").unwrap().starts_with("eff6ccca-"));
    }

    let element = jingle.to_element();
    let first_video_source = element
        .children()
        .find(|child| child.attr("name") == Some("video"))
        .and_then(|content| content.get_child("description", ns::JINGLE_RTP))
        .and_then(|description| description.get_child("source", ns::JINGLE_SSMA))
        .unwrap();
    assert_eq!(
        first_video_source
            .get_child("ssrc-info", ns::JITSI_MEET)
            .and_then(|info| info.attr("owner")),
        Some(ALICE)
    );
    assert_eq!(Jingle::from_element(&element).unwrap(), jingle);
}

#[test]
fn session_initiate_serialises_to_what_a_jitsi_client_parses() {
    let element = offer_for_bob(&bridge_transport(), &alice_views())
        .unwrap()
        .to_element();
    let text = String::from(&element);
    let reparsed: Element = text.parse().unwrap();
    assert_eq!(reparsed, element);
    for needle in [
        "xmlns='urn:xmpp:jingle:apps:grouping:0'",
        "xmlns='urn:xmpp:jingle:apps:dtls:0'",
        "xmlns='http://jitsi.org/protocol/colibri'",
        "xmlns='http://jitsi.org/protocol/focus'",
        "<extmap-allow-mixed xmlns='urn:xmpp:jingle:apps:rtp:rtp-hdrext:0'/>",
    ] {
        assert!(
            text.replace('"', "'").contains(needle),
            "{needle} missing in {text}"
        );
    }
}

#[test]
fn an_incomplete_bridge_transport_is_refused() {
    let mut transport = bridge_transport();
    transport.ice = None;
    assert_eq!(offer_for_bob(&transport, &[]), Err(OfferError::MissingIce));
    let mut transport = bridge_transport();
    transport.dtls = None;
    assert_eq!(offer_for_bob(&transport, &[]), Err(OfferError::MissingDtls));
    let mut transport = bridge_transport();
    transport.candidates[0].port = 70000;
    assert_eq!(
        offer_for_bob(&transport, &[]),
        Err(OfferError::CandidateOutOfRange {
            foundation: "1".into(),
            field: "port",
            value: 70000
        })
    );
    let mut transport = bridge_transport();
    transport.candidates[0].r#type = "turn".into();
    assert!(matches!(
        offer_for_bob(&transport, &[]),
        Err(OfferError::CandidateType { .. })
    ));
}

#[test]
fn a_bridge_without_a_channel_url_gets_no_web_socket() {
    let mut transport = bridge_transport();
    transport.bridge_channel_url.clear();
    let jingle = offer_for_bob(&transport, &[]).unwrap();
    let transport = jingle.contents[0].transport.as_ref().unwrap();
    assert_eq!(transport.extensions.get::<WebSocket>(), Ok(None));
}

#[test]
fn source_add_and_remove_carry_only_media_with_sources() {
    assert_eq!(source_add("s", &[]), None);
    let audio_only = EndpointSources {
        sources: vec![MediaSource {
            ssrc: 9,
            media: MediaType::Audio,
            name: Some("carol-a0".into()),
            msid: Some("carol-audio track".into()),
            video_type: None,
        }],
        groups: Vec::new(),
    };
    let view = audio_only.receiver_view("room@muc/carol", &forwarded(&[(9, None)]), &[]);
    let add = source_add("s", std::slice::from_ref(&view)).unwrap();
    assert_eq!(add.action, Action::SourceAdd);
    assert_eq!(add.sid, "s");
    assert_eq!(add.contents.len(), 1);
    let description = add.contents[0].description.as_ref().unwrap();
    assert_eq!(description.media.as_deref(), Some("audio"));
    assert_eq!(description.sources[0].name.as_deref(), Some("carol-a0"));
    assert!(description.payload_types.is_empty());

    let remove = source_remove("s", &alice_views()).unwrap();
    assert_eq!(remove.action, Action::SourceRemove);
    assert_eq!(remove.contents.len(), 2);
    assert_eq!(simulcast_groups(&remove), 0);
}
