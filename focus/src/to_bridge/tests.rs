use minidom::Element;

use super::*;
use crate::test_support::{
    fixture_jingle, SESSION_ACCEPT, SESSION_ACCEPT_FORWARDED, TRANSPORT_INFO,
};

const ALICE: &str = "test@conference.meet.test/eff6ccca";
const FINGERPRINT: &str =
    "65:FC:E0:00:98:68:09:C1:C9:5B:02:6C:4D:86:98:51:BF:51:A0:62:20:F1:AD:2B:6D:8E:75:9E:21:12:88:29";
const ENDPOINT: EndpointId<'static> = EndpointId {
    conference_id: "conf-1",
    endpoint_id: "ep-alice",
};

fn parse(xml: &str) -> Jingle {
    Jingle::from_element(&xml.parse::<Element>().unwrap()).unwrap()
}

fn transport_info(transport: &str) -> Jingle {
    parse(&format!(
        "<jingle xmlns='urn:xmpp:jingle:1' action='transport-info' sid='s'>\
         <content creator='responder' name='0'>\
         <transport xmlns='urn:xmpp:jingle:transports:ice-udp:1' {transport}</content></jingle>"
    ))
}

fn media_of(xml_content: &str) -> Result<Option<pb::MediaList>, ToBridgeError> {
    media_list(
        &parse(&format!(
        "<jingle xmlns='urn:xmpp:jingle:1' action='session-accept' sid='s'>{xml_content}</jingle>"
    )),
        ContentsPerMedia::One,
    )
}

#[test]
fn captured_session_accept_gives_credentials_and_fingerprint_without_candidates() {
    let mut state = RemoteTransportState::new();
    let transport = state
        .apply(&fixture_jingle(SESSION_ACCEPT))
        .unwrap()
        .unwrap();
    assert_eq!(
        transport.ice,
        Some(pb::IceParameters {
            ufrag: "QozC".into(),
            pwd: "Y1E+jmyivRAXruc8hOY+w6wu".into(),
            controlling: false,
        })
    );
    assert_eq!(
        transport.dtls,
        Some(pb::DtlsParameters {
            hash: "sha-256".into(),
            fingerprint: FINGERPRINT.into(),
            setup: pb::DtlsSetup::Active as i32,
        })
    );
    assert!(transport.candidates.is_empty());
    assert_eq!(
        state.apply(&fixture_jingle(SESSION_ACCEPT)),
        Ok(None),
        "the same answer again changes nothing"
    );
}

#[test]
fn captured_transport_info_gives_its_udp_candidates_to_the_bundled_transport() {
    let mut state = RemoteTransportState::new();
    state.apply(&fixture_jingle(SESSION_ACCEPT)).unwrap();
    let transport = state
        .apply(&fixture_jingle(TRANSPORT_INFO))
        .unwrap()
        .unwrap();
    assert_eq!(
        transport.candidates,
        [
            pb::Candidate {
                foundation: "2256563671".into(),
                component: 1,
                protocol: "udp".into(),
                priority: 2122194687,
                ip: "192.0.2.2".into(),
                port: 47427,
                r#type: "host".into(),
                generation: 0,
            },
            pb::Candidate {
                foundation: "1306962999".into(),
                component: 1,
                protocol: "udp".into(),
                priority: 2122265343,
                ip: "fd00::2".into(),
                port: 58149,
                r#type: "host".into(),
                generation: 0,
            },
        ],
        "TCP candidates are left out"
    );
    assert_eq!(
        transport.dtls.unwrap().setup,
        pb::DtlsSetup::Active as i32,
        "the transport-info's fingerprint has no setup; the answer's is kept"
    );
    assert_eq!(transport.ice.unwrap().ufrag, "QozC");
}

#[test]
fn transport_info_before_the_answer_leaves_setup_to_the_bridge_default() {
    let transport = RemoteTransportState::new()
        .apply(&fixture_jingle(TRANSPORT_INFO))
        .unwrap()
        .unwrap();
    assert_eq!(
        transport.dtls.unwrap().setup,
        pb::DtlsSetup::Unspecified as i32
    );
    assert_eq!(transport.candidates.len(), 2);
}

#[test]
fn candidates_alone_reuse_the_known_credentials() {
    let candidate = "<candidate component='1' foundation='9' ip='198.51.100.7' port='5000' \
                     priority='100' protocol='UDP' type='srflx' generation='1'/>";
    let mut fresh = RemoteTransportState::new();
    assert_eq!(
        fresh.apply(&transport_info(&format!(">{candidate}</transport>"))),
        Err(ToBridgeError::MissingIceCredentials)
    );

    let mut state = RemoteTransportState::new();
    state.apply(&fixture_jingle(SESSION_ACCEPT)).unwrap();
    let transport = state
        .apply(&transport_info(&format!(">{candidate}</transport>")))
        .unwrap()
        .unwrap();
    assert_eq!(transport.ice.unwrap().pwd, "Y1E+jmyivRAXruc8hOY+w6wu");
    assert_eq!(transport.dtls.unwrap().fingerprint, FINGERPRINT);
    assert_eq!(transport.candidates[0].r#type, "srflx");
    assert_eq!(transport.candidates[0].generation, 1);
}

#[test]
fn new_credentials_restart_ice() {
    let mut state = RemoteTransportState::new();
    state.apply(&fixture_jingle(SESSION_ACCEPT)).unwrap();
    let transport = state
        .apply(&transport_info(
            "ufrag='NEW1' pwd='a-new-password-of-24-ch'></transport>",
        ))
        .unwrap()
        .unwrap();
    assert_eq!(transport.ice.unwrap().ufrag, "NEW1");
    assert!(transport.candidates.is_empty());
}

#[test]
fn unreachable_candidates_are_left_out() {
    let mut state = RemoteTransportState::new();
    state.apply(&fixture_jingle(SESSION_ACCEPT)).unwrap();
    let candidates = [
        "ip='0a1b2c3d-4e5f.local' port='5000' component='1'",
        "ip='192.0.2.9' port='5000' component='2'",
        "ip='192.0.2.9' port='0' component='1'",
    ]
    .map(|attributes| {
        format!("<candidate {attributes} foundation='1' priority='1' protocol='udp' type='host'/>")
    })
    .concat();
    assert_eq!(
        state.apply(&transport_info(&format!(">{candidates}</transport>"))),
        Ok(None)
    );
}

#[test]
fn contradictory_transports_are_refused() {
    let jingle = parse(
        "<jingle xmlns='urn:xmpp:jingle:1' action='session-accept' sid='s'>\
         <content name='audio'><transport xmlns='urn:xmpp:jingle:transports:ice-udp:1' \
         ufrag='aaaa' pwd='p1'/></content>\
         <content name='video'><transport xmlns='urn:xmpp:jingle:transports:ice-udp:1' \
         ufrag='bbbb' pwd='p2'/></content></jingle>",
    );
    assert_eq!(
        RemoteTransportState::new().apply(&jingle),
        Err(ToBridgeError::ConflictingIceCredentials)
    );
    let actpass = transport_info(
        "ufrag='u' pwd='p'><fingerprint xmlns='urn:xmpp:jingle:apps:dtls:0' hash='sha-256' \
         setup='actpass'>AA</fingerprint></transport>",
    );
    assert_eq!(
        RemoteTransportState::new().apply(&actpass),
        Err(ToBridgeError::SetupNotAnAnswer(DtlsSetup::Actpass))
    );
    let no_fingerprint = transport_info("ufrag='u' pwd='p'></transport>");
    assert_eq!(
        RemoteTransportState::new().apply(&no_fingerprint),
        Err(ToBridgeError::MissingFingerprint)
    );
}

#[test]
fn captured_session_accept_gives_media() {
    let media = media_list(&fixture_jingle(SESSION_ACCEPT), ContentsPerMedia::One)
        .unwrap()
        .unwrap();
    assert_eq!(media.media.len(), 2);
    let audio = &media.media[0];
    assert_eq!(audio.r#type, pb::MediaType::Audio as i32);
    assert!(audio.sends && audio.receives);
    assert_eq!(
        audio.payload_types,
        [pb::PayloadType {
            id: 111,
            name: "opus".into(),
            clock_rate: 48000,
            channels: 2,
            rtx_apt: 0,
            rtcp_fb: vec!["transport-cc".into()],
        }]
    );
    assert_eq!(
        audio
            .header_extensions
            .iter()
            .map(|extension| extension.id)
            .collect::<Vec<_>>(),
        [1, 5]
    );
    let video = &media.media[1];
    assert_eq!(video.r#type, pb::MediaType::Video as i32);
    assert_eq!(
        video.payload_types[0].rtcp_fb,
        ["transport-cc", "ccm fir", "nack", "nack pli"]
    );
    assert_eq!(
        video.payload_types[1],
        pb::PayloadType {
            id: 96,
            name: "rtx".into(),
            clock_rate: 90000,
            channels: 1,
            rtx_apt: 100,
            rtcp_fb: Vec::new(),
        }
    );
    assert_eq!(
        video.header_extensions,
        [pb::HeaderExtension {
            id: 5,
            uri: crate::offer::TRANSPORT_CC_URI.into(),
        }]
    );
}

#[test]
fn senders_give_the_participants_direction() {
    for (senders, sends, receives) in [
        ("both", true, true),
        ("initiator", false, true),
        ("responder", true, false),
        ("none", false, false),
    ] {
        let media = media_of(&format!(
            "<content name='audio' senders='{senders}'>\
             <description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'/></content>"
        ))
        .unwrap()
        .unwrap();
        assert_eq!(
            (media.media[0].sends, media.media[0].receives),
            (sends, receives)
        );
    }
}

#[test]
fn description_feedback_applies_to_every_payload_type_and_two_byte_extensions_are_left_out() {
    let media = media_of(
        "<content name='video'><description xmlns='urn:xmpp:jingle:apps:rtp:1'>\
         <payload-type id='100' name='VP8' clockrate='90000'/>\
         <rtcp-fb xmlns='urn:xmpp:jingle:apps:rtp:rtcp-fb:0' type='goog-remb'/>\
         <rtp-hdrext xmlns='urn:xmpp:jingle:apps:rtp:rtp-hdrext:0' id='14' uri='a'/>\
         <rtp-hdrext xmlns='urn:xmpp:jingle:apps:rtp:rtp-hdrext:0' id='15' uri='b'/>\
         </description></content>\
         <content name='data'><description xmlns='urn:xmpp:jingle:apps:rtp:1' \
         media='application'/></content>",
    )
    .unwrap()
    .unwrap();
    assert_eq!(media.media.len(), 1, "application is not RTP media");
    assert_eq!(media.media[0].r#type, pb::MediaType::Video as i32);
    assert_eq!(media.media[0].payload_types[0].rtcp_fb, ["goog-remb"]);
    assert_eq!(media.media[0].header_extensions.len(), 1);
    assert_eq!(media.media[0].header_extensions[0].id, 14);
}

#[test]
fn malformed_media_is_refused() {
    assert_eq!(
        media_of(
            "<content name='video'><description xmlns='urn:xmpp:jingle:apps:rtp:1'>\
             <payload-type id='96' name='rtx' clockrate='90000'/></description></content>"
        ),
        Err(ToBridgeError::RtxWithoutApt { payload_type: 96 })
    );
    assert_eq!(
        media_of(
            "<content name='video'><description xmlns='urn:xmpp:jingle:apps:rtp:1'>\
             <payload-type id='96' name='rtx' clockrate='90000'>\
             <parameter name='apt' value='200'/></payload-type></description></content>"
        ),
        Err(ToBridgeError::InvalidApt {
            payload_type: 96,
            apt: "200".into()
        })
    );
    assert_eq!(
        media_of(
            "<content name='a'><description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'/>\
             </content><content name='b'>\
             <description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'/></content>"
        ),
        Err(ToBridgeError::DuplicateMedia {
            media: MediaType::Audio
        })
    );
    assert_eq!(media_of(""), Ok(None));
}

#[test]
fn captured_sources_are_given_whole_with_owner_and_groups() {
    let accept = fixture_jingle(SESSION_ACCEPT);
    let sources = EndpointSources::from_jingle(&accept).unwrap();
    let list = source_list(ALICE, &sources, &[], &[]);
    assert_eq!(list.sources.len(), 7, "every layer and RTX SSRC");
    assert!(list.sources.iter().all(|source| source.owner == ALICE));
    assert_eq!(list.sources[0].media_type, pb::MediaType::Audio as i32);
    assert_eq!(list.sources[1].media_type, pb::MediaType::Video as i32);
    assert_eq!(
        list.groups
            .iter()
            .map(|group| group.semantics.as_str())
            .collect::<Vec<_>>(),
        ["FID", "SIM", "FID", "FID"]
    );
    assert_eq!(list.groups[1].ssrcs, [1130870372, 1264459138, 3424343406]);

    let mut state = RemoteTransportState::new();
    let request = session_accept_update(
        ENDPOINT,
        ALICE,
        &accept,
        ContentsPerMedia::One,
        &mut state,
        &sources,
        &[],
        &[],
    )
    .unwrap();
    assert_eq!(request.conference_id, "conf-1");
    assert_eq!(request.endpoint_id, "ep-alice");
    assert!(request.transport.is_some());
    assert_eq!(request.media.unwrap().media.len(), 2);
    assert_eq!(request.sources, Some(list.clone()));

    let update = transport_info_update(ENDPOINT, &fixture_jingle(TRANSPORT_INFO), &mut state)
        .unwrap()
        .unwrap();
    assert!(update.media.is_none() && update.sources.is_none());
    assert_eq!(update.transport.unwrap().candidates.len(), 2);
    assert_eq!(
        transport_info_update(ENDPOINT, &transport_info("></transport>"), &mut state),
        Ok(None)
    );

    let update = sources_update(ENDPOINT, ALICE, &sources, &[], &[]);
    assert!(update.transport.is_none() && update.media.is_none());
    assert_eq!(update.sources, Some(list));
}

#[test]
fn groups_the_bridge_does_not_know_are_left_out() {
    let jingle = parse(
        "<jingle xmlns='urn:xmpp:jingle:1' action='source-add' sid='s'>\
         <content name='video'><description xmlns='urn:xmpp:jingle:apps:rtp:1' media='video'>\
         <source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='5' name='a-v0'/>\
         <ssrc-group xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FEC-FR'>\
         <source ssrc='5'/></ssrc-group></description></content></jingle>",
    );
    let sources = EndpointSources::from_jingle(&jingle).unwrap();
    let list = source_list(ALICE, &sources, &[], &[]);
    assert_eq!(list.sources[0].name, "a-v0");
    assert!(list.groups.is_empty());
}

#[test]
fn the_bridges_forwarded_answer_gives_the_streams_receivers_get() {
    let sources = EndpointSources::from_jingle(&fixture_jingle(SESSION_ACCEPT)).unwrap();
    let list = source_list(ALICE, &sources, &[], &[]);
    // The bridge's answer to the captured sources: the audio, and the video's first layer with
    // its RTX, each described as the request described it.
    let described = |ssrc: u32| {
        list.sources
            .iter()
            .find(|source| source.ssrc == ssrc)
            .cloned()
            .unwrap()
    };
    let answer = pb::SourceList {
        sources: vec![
            described(3196618725),
            described(1130870372),
            described(624615736),
        ],
        groups: vec![pb::SourceGroup {
            semantics: "FID".into(),
            ssrcs: vec![1130870372, 624615736],
        }],
        outputs: Vec::new(),
        learnt_sources: Vec::new(),
    };
    let forwarded = forwarded_from_pb(&answer);
    assert_eq!(
        forwarded,
        crate::test_support::forwarded(&SESSION_ACCEPT_FORWARDED)
    );
    let view = sources.receiver_view(ALICE, &forwarded, &[]);
    let ssrcs: Vec<u32> = view.sources().sources.iter().map(|s| s.ssrc).collect();
    assert_eq!(ssrcs, [3196618725, 1130870372, 624615736]);

    let unknown = forwarded_from_pb(&pb::SourceList {
        sources: Vec::new(),
        groups: vec![pb::SourceGroup {
            semantics: "FEC-FR".into(),
            ssrcs: vec![5, 6],
        }],
        outputs: Vec::new(),
        learnt_sources: Vec::new(),
    });
    assert_eq!(
        unknown.groups,
        [(GroupSemantics::Other("FEC-FR".into()), vec![5, 6])]
    );
    assert_eq!(
        forwarded_from_pb(&pb::SourceList::default()),
        Forwarded::default()
    );
}
