use minidom::Element;

use super::*;
use crate::jitsi::{SsrcInfo, WebSocket};
use crate::test_support::{fixture_jingle, jingle_of, same_tree, SESSION_ACCEPT, TRANSPORT_INFO};

fn round_trip(original: &Element) {
    let parsed = Jingle::from_element(original).unwrap();
    let written = parsed.to_element();
    if let Err(difference) = same_tree(original, &written) {
        panic!(
            "written tree differs from the original: {difference}\nwritten: {}",
            String::from(&written)
        );
    }
    let reparsed = Jingle::from_element(&written).unwrap();
    assert_eq!(parsed, reparsed);
    let rewritten = reparsed.to_element();
    assert_eq!(written, rewritten, "writing is deterministic");
}

#[test]
fn captured_session_accept_round_trips_without_loss() {
    round_trip(&jingle_of(SESSION_ACCEPT));
}

#[test]
fn captured_transport_info_round_trips_without_loss() {
    round_trip(&jingle_of(TRANSPORT_INFO));
}

#[test]
fn captured_session_accept_is_read_into_the_model() {
    let jingle = fixture_jingle(SESSION_ACCEPT);
    assert_eq!(jingle.action, Action::SessionAccept);
    assert_eq!(jingle.sid, "probe-sid-1");
    assert_eq!(
        jingle.initiator.as_deref(),
        Some("test@conference.meet.test/focus")
    );
    assert!(jingle.is_bundled());
    assert_eq!(jingle.groups[0].contents, ["audio", "video"]);

    let audio = jingle.content("audio").unwrap();
    assert_eq!(audio.creator, Some(Creator::Responder));
    assert_eq!(audio.senders, Some(Senders::Both));
    let description = audio.description.as_ref().unwrap();
    assert_eq!(description.media.as_deref(), Some("audio"));
    assert_eq!(description.ssrc, Some(3196618725));
    assert!(description.rtcp_mux);
    let opus = &description.payload_types[0];
    assert_eq!(
        (opus.id, opus.name.as_deref(), opus.clockrate, opus.channels),
        (111, Some("opus"), Some(48000), Some(2))
    );
    assert_eq!(opus.parameter("minptime"), Some("10"));
    assert_eq!(opus.parameter("useinbandfec"), Some("1"));
    assert_eq!(opus.rtcp_feedback[0].sdp_value(), "transport-cc");
    assert_eq!(
        description
            .header_extensions
            .iter()
            .map(|extension| extension.id)
            .collect::<Vec<_>>(),
        [1, 5]
    );
    let transport = audio.transport.as_ref().unwrap();
    assert_eq!(transport.ufrag.as_deref(), Some("QozC"));
    assert_eq!(transport.pwd.as_deref(), Some("Y1E+jmyivRAXruc8hOY+w6wu"));
    assert_eq!(transport.fingerprints[0].hash, "sha-256");
    assert_eq!(transport.fingerprints[0].setup, Some(DtlsSetup::Active));
    assert!(transport.fingerprints[0].value.starts_with("65:FC:E0"));
    assert!(transport.candidates.is_empty());

    let video = jingle
        .content("video")
        .unwrap()
        .description
        .as_ref()
        .unwrap();
    assert_eq!(video.sources.len(), 6);
    assert_eq!(
        video.sources[0].parameter("msid"),
        Some("eff6ccca-video-1 bbeff73c-2148-4f9b-b8d8-b5fc4d21c184-1")
    );
    assert_eq!(video.source_groups.len(), 4);
    let simulcast = &video.source_groups[1];
    assert_eq!(simulcast.semantics, GroupSemantics::Simulcast);
    assert_eq!(simulcast.ssrcs, [1130870372, 1264459138, 3424343406]);
    assert_eq!(video.payload_types[1].parameter("apt"), Some("100"));
    assert_eq!(
        video.payload_types[0]
            .rtcp_feedback
            .iter()
            .map(RtcpFeedback::sdp_value)
            .collect::<Vec<_>>(),
        ["transport-cc", "ccm fir", "nack", "nack pli"]
    );
}

#[test]
fn captured_transport_info_is_read_into_the_model() {
    let jingle = fixture_jingle(TRANSPORT_INFO);
    assert_eq!(jingle.action, Action::TransportInfo);
    assert_eq!(jingle.contents[0].name, "0");
    let transport = jingle.contents[0].transport.as_ref().unwrap();
    assert_eq!(transport.candidates.len(), 4);
    let first = &transport.candidates[0];
    assert_eq!(first.ip, "192.0.2.2");
    assert_eq!(first.port, 47427);
    assert_eq!(first.priority, 2122194687);
    assert_eq!(first.kind, CandidateType::Host);
    assert_eq!(first.generation, Some(0));
    assert_eq!(first.network, Some(1));
    assert_eq!(transport.candidates[2].tcptype.as_deref(), Some("active"));
    assert_eq!(transport.fingerprints[0].required, Some(true));
    assert_eq!(transport.fingerprints[0].setup, None);
}

/// Everything lib-jitsi-meet and Jicofo put in a session that the captured fixtures lack.
const EVERYTHING: &str = r#"<jingle xmlns="urn:xmpp:jingle:1" action="session-initiate" sid="s1"
    initiator="room@muc/focus" responder="alice@example.com/web" future-attribute="kept">
  <group xmlns="urn:xmpp:jingle:apps:grouping:0" semantics="BUNDLE">
    <content name="audio"/><content name="video"/><content name="data"/>
  </group>
  <content creator="initiator" name="audio" senders="both" disposition="session">
    <description xmlns="urn:xmpp:jingle:apps:rtp:1" media="audio" maxptime="60">
      <payload-type id="111" name="opus" clockrate="48000" channels="2" ptime="20" maxptime="60">
        <parameter name="minptime" value="10"/>
        <rtcp-fb xmlns="urn:xmpp:jingle:apps:rtp:rtcp-fb:0" type="transport-cc"/>
      </payload-type>
      <payload-type id="126" name="telephone-event" clockrate="8000"/>
      <rtcp-fb xmlns="urn:xmpp:jingle:apps:rtp:rtcp-fb:0" type="nack"/>
      <rtp-hdrext xmlns="urn:xmpp:jingle:apps:rtp:rtp-hdrext:0" id="1" senders="both"
          uri="urn:ietf:params:rtp-hdrext:ssrc-audio-level"/>
      <extmap-allow-mixed xmlns="urn:xmpp:jingle:apps:rtp:rtp-hdrext:0"/>
      <rtcp-mux/>
      <source xmlns="urn:xmpp:jingle:apps:rtp:ssma:0" ssrc="11" name="bob-a0">
        <ssrc-info xmlns="http://jitsi.org/jitmeet" owner="room@muc/bob"/>
        <parameter name="msid" value="bob-audio-1 track"/>
        <parameter name="x-flag"/>
      </source>
      <encryption xmlns="urn:xmpp:jingle:apps:rtp:1" required="0"/>
    </description>
    <transport xmlns="urn:xmpp:jingle:transports:ice-udp:1" ufrag="u" pwd="p">
      <web-socket xmlns="http://jitsi.org/protocol/colibri" url="wss://b/colibri-ws/x?pwd=p"/>
      <rtcp-mux/>
      <fingerprint xmlns="urn:xmpp:jingle:apps:dtls:0" hash="sha-256" setup="actpass"
          required="false" cryptex="true">AB:CD</fingerprint>
      <candidate component="1" foundation="1" generation="0" id="c1" ip="203.0.113.1"
          network="0" port="10000" priority="2130706431" protocol="udp" type="srflx"
          rel-addr="10.0.0.1" rel-port="10000"/>
    </transport>
  </content>
  <content creator="initiator" name="video" senders="both">
    <description xmlns="urn:xmpp:jingle:apps:rtp:1" media="video">
      <payload-type id="100" name="VP8" clockrate="90000"/>
      <source xmlns="urn:xmpp:jingle:apps:rtp:ssma:0" ssrc="21" name="bob-v0" videoType="camera">
        <ssrc-info xmlns="http://jitsi.org/jitmeet" owner="room@muc/bob"/>
      </source>
      <source xmlns="urn:xmpp:jingle:apps:rtp:ssma:0" ssrc="22"/>
      <ssrc-group xmlns="urn:xmpp:jingle:apps:rtp:ssma:0" semantics="FID">
        <source ssrc="21"/><source ssrc="22"/>
      </ssrc-group>
      <ssrc-group xmlns="urn:xmpp:jingle:apps:rtp:ssma:0" semantics="FEC-FR">
        <source ssrc="21"/>
      </ssrc-group>
    </description>
  </content>
  <content creator="initiator" name="data">
    <description xmlns="urn:xmpp:jingle:apps:rtp:1" media="application"/>
    <transport xmlns="urn:xmpp:jingle:transports:ice-udp:1" ufrag="u" pwd="p">
      <sctpmap xmlns="urn:xmpp:jingle:transports:dtls-sctp:1" number="5000"
          protocol="webrtc-datachannel" streams="1024"/>
    </transport>
  </content>
  <bridge-session xmlns="http://jitsi.org/protocol/focus" id="bs1" region="eu"/>
  <startmuted xmlns="http://jitsi.org/jitmeet/start-muted" audio="true" video="false"/>
</jingle>"#;

#[test]
fn every_jitsi_and_unknown_detail_round_trips() {
    let original: Element = EVERYTHING.parse().unwrap();
    round_trip(&original);

    let jingle = Jingle::from_element(&original).unwrap();
    let audio = jingle.content("audio").unwrap();
    let description = audio.description.as_ref().unwrap();
    assert_eq!(description.maxptime, Some(60));
    assert!(description.extmap_allow_mixed);
    assert_eq!(description.rtcp_feedback[0].kind, "nack");
    assert_eq!(
        description.header_extensions[0].senders,
        Some(Senders::Both)
    );
    assert_eq!(description.sources[0].name.as_deref(), Some("bob-a0"));
    assert_eq!(
        description.sources[0].extensions.get::<SsrcInfo>().unwrap(),
        Some(SsrcInfo::new("room@muc/bob"))
    );
    let transport = audio.transport.as_ref().unwrap();
    assert!(transport.rtcp_mux);
    assert_eq!(transport.fingerprints[0].setup, Some(DtlsSetup::Actpass));
    assert_eq!(transport.fingerprints[0].required, Some(false));
    assert_eq!(
        transport
            .extensions
            .get::<WebSocket>()
            .unwrap()
            .unwrap()
            .url,
        "wss://b/colibri-ws/x?pwd=p"
    );
    assert_eq!(
        transport.candidates[0].rel_addr.as_deref(),
        Some("10.0.0.1")
    );
    let video = jingle
        .content("video")
        .unwrap()
        .description
        .as_ref()
        .unwrap();
    assert_eq!(video.sources[0].video_type.as_deref(), Some("camera"));
    assert_eq!(
        video.source_groups[1].semantics,
        GroupSemantics::Other("FEC-FR".into())
    );
    let data = jingle.content("data").unwrap();
    let sctp = &data.transport.as_ref().unwrap().sctp_maps[0];
    assert_eq!(
        (sctp.number, sctp.protocol.as_str(), sctp.streams),
        (5000, "webrtc-datachannel", Some(1024))
    );
    assert_eq!(
        jingle.extensions.children.len(),
        2,
        "bridge-session and startmuted"
    );
    assert_eq!(jingle.extensions.attributes.len(), 1, "future-attribute");
}

#[test]
fn session_terminate_reason_round_trips() {
    let original: Element =
        r#"<jingle xmlns="urn:xmpp:jingle:1" action="session-terminate" sid="s">
        <reason><success/><text xml:lang="en">bye</text></reason>
        <bridge-session xmlns="http://jitsi.org/protocol/focus" restart="true"/>
    </jingle>"#
            .parse()
            .unwrap();
    round_trip(&original);
    let jingle = Jingle::from_element(&original).unwrap();
    let reason = jingle.reason.unwrap();
    assert_eq!(
        reason.condition,
        ReasonCondition::Defined(ReasonKind::Success)
    );
    assert_eq!(reason.text.unwrap().text, "bye");
}

#[test]
fn alternative_session_reason_keeps_its_sid() {
    let original: Element =
        r#"<jingle xmlns="urn:xmpp:jingle:1" action="session-terminate" sid="s">
        <reason><alternative-session><sid>other</sid></alternative-session></reason>
    </jingle>"#
            .parse()
            .unwrap();
    round_trip(&original);
    let reason = Jingle::from_element(&original).unwrap().reason.unwrap();
    assert_eq!(
        reason.condition,
        ReasonCondition::AlternativeSession {
            sid: "other".into()
        }
    );
}

#[test]
fn built_terminate_has_condition_and_text() {
    let mut jingle = Jingle::new(Action::SessionTerminate, "s");
    jingle.reason = Some(Reason::new(ReasonKind::Gone).with_text("left the room"));
    let element = jingle.to_element();
    let reason = element.get_child("reason", ns::JINGLE).unwrap();
    assert!(reason.has_child("gone", ns::JINGLE));
    assert_eq!(
        reason.get_child("text", ns::JINGLE).map(Element::text),
        Some("left the room".to_owned())
    );
    assert_eq!(Jingle::from_element(&element).unwrap(), jingle);
}

#[test]
fn every_action_is_written_as_it_is_read() {
    for action in [
        "session-initiate",
        "session-accept",
        "session-terminate",
        "session-info",
        "transport-info",
        "transport-replace",
        "source-add",
        "source-remove",
        "content-add",
        "description-info",
    ] {
        let element: Element =
            format!("<jingle xmlns='urn:xmpp:jingle:1' action='{action}' sid='s'/>")
                .parse()
                .unwrap();
        let jingle = Jingle::from_element(&element).unwrap();
        assert_eq!(jingle.action.as_str(), action);
        assert_eq!(jingle.to_element(), element);
    }
}

fn parse_error(xml: &str) -> JingleError {
    let element: Element = xml.parse().unwrap();
    Jingle::from_element(&element).unwrap_err()
}

/// A session-accept with `content` inside its one content element.
fn accept_with(content: &str) -> String {
    format!(
        "<jingle xmlns='urn:xmpp:jingle:1' action='session-accept' sid='s'>\
         <content creator='responder' name='video'>{content}</content></jingle>"
    )
}

#[test]
fn missing_sid_is_named() {
    assert_eq!(
        parse_error("<jingle xmlns='urn:xmpp:jingle:1' action='session-accept'/>"),
        JingleError::MissingAttribute {
            element: "jingle",
            attribute: "sid"
        }
    );
    assert!(matches!(
        parse_error("<jingle xmlns='urn:xmpp:jingle:1' action='session-accept' sid=''/>"),
        JingleError::InvalidAttribute {
            attribute: "sid",
            ..
        }
    ));
}

#[test]
fn missing_or_unknown_action_is_named() {
    assert_eq!(
        parse_error("<jingle xmlns='urn:xmpp:jingle:1' sid='s'/>"),
        JingleError::MissingAttribute {
            element: "jingle",
            attribute: "action"
        }
    );
    let error = parse_error("<jingle xmlns='urn:xmpp:jingle:1' action='session-dance' sid='s'/>");
    assert_eq!(
        error,
        JingleError::InvalidAttribute {
            element: "jingle",
            attribute: "action",
            value: "session-dance".into(),
            expected: Action::EXPECTED,
        }
    );
    assert!(error.to_string().contains("session-dance"));
}

#[test]
fn wrong_element_is_refused() {
    let element: Element = "<jingle xmlns='urn:xmpp:jingle:0' action='session-accept' sid='s'/>"
        .parse()
        .unwrap();
    assert!(matches!(
        Jingle::from_element(&element),
        Err(JingleError::UnexpectedElement {
            expected: "jingle",
            ..
        })
    ));
}

#[test]
fn non_numeric_ssrc_is_named() {
    let error = parse_error(&accept_with(
        "<description xmlns='urn:xmpp:jingle:apps:rtp:1' media='video'>\
         <source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='12ab'/></description>",
    ));
    assert_eq!(
        error,
        JingleError::InvalidAttribute {
            element: "source",
            attribute: "ssrc",
            value: "12ab".into(),
            expected: "an SSRC (a 32-bit unsigned number)",
        }
    );
    let error = parse_error(&accept_with(
        "<description xmlns='urn:xmpp:jingle:apps:rtp:1' media='video'>\
         <ssrc-group xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'>\
         <source ssrc='1'/><source ssrc='4294967296'/></ssrc-group></description>",
    ));
    assert!(matches!(
        error,
        JingleError::InvalidAttribute {
            attribute: "ssrc",
            ..
        }
    ));
    let error = parse_error(&accept_with(
        "<description xmlns='urn:xmpp:jingle:apps:rtp:1' media='video' ssrc='-1'/>",
    ));
    assert!(matches!(
        error,
        JingleError::InvalidAttribute {
            element: "description",
            attribute: "ssrc",
            ..
        }
    ));
}

#[test]
fn bad_candidate_port_is_named() {
    let candidate = |port: &str| {
        accept_with(&format!(
            "<transport xmlns='urn:xmpp:jingle:transports:ice-udp:1' ufrag='u' pwd='p'>\
             <candidate component='1' foundation='1' ip='192.0.2.1' port='{port}' \
             priority='1' protocol='udp' type='host'/></transport>"
        ))
    };
    for port in ["70000", "-1", "http", ""] {
        assert_eq!(
            parse_error(&candidate(port)),
            JingleError::InvalidAttribute {
                element: "candidate",
                attribute: "port",
                value: port.into(),
                expected: "a port number (0 to 65535)",
            }
        );
    }
}

#[test]
fn incomplete_candidate_is_named() {
    let error = parse_error(&accept_with(
        "<transport xmlns='urn:xmpp:jingle:transports:ice-udp:1'>\
         <candidate component='1' foundation='1' port='1' priority='1' protocol='udp' \
         type='host'/></transport>",
    ));
    assert_eq!(
        error,
        JingleError::MissingAttribute {
            element: "candidate",
            attribute: "ip"
        }
    );
    let error = parse_error(&accept_with(
        "<transport xmlns='urn:xmpp:jingle:transports:ice-udp:1'>\
         <candidate component='1' foundation='1' ip='192.0.2.1' port='1' priority='1' \
         protocol='udp' type='relayed'/></transport>",
    ));
    assert!(matches!(
        error,
        JingleError::InvalidAttribute {
            attribute: "type",
            ..
        }
    ));
}

#[test]
fn payload_type_out_of_range_is_named() {
    for id in ["128", "300", "x"] {
        let error = parse_error(&accept_with(&format!(
            "<description xmlns='urn:xmpp:jingle:apps:rtp:1' media='video'>\
             <payload-type id='{id}' name='VP8' clockrate='90000'/></description>"
        )));
        assert_eq!(
            error,
            JingleError::InvalidAttribute {
                element: "payload-type",
                attribute: "id",
                value: id.into(),
                expected: "a payload type from 0 to 127",
            }
        );
    }
}

#[test]
fn other_malformed_details_are_named() {
    let cases = [
        (
            accept_with(
                "<description xmlns='urn:xmpp:jingle:apps:rtp:1'>\
                 <rtp-hdrext xmlns='urn:xmpp:jingle:apps:rtp:rtp-hdrext:0' id='0' uri='u'/>\
                 </description>",
            ),
            ("rtp-hdrext", "id"),
        ),
        (
            accept_with(
                "<transport xmlns='urn:xmpp:jingle:transports:ice-udp:1'>\
                 <fingerprint xmlns='urn:xmpp:jingle:apps:dtls:0' hash='sha-256' \
                 setup='sometimes'>AA</fingerprint></transport>",
            ),
            ("fingerprint", "setup"),
        ),
        (
            accept_with(
                "<transport xmlns='urn:xmpp:jingle:transports:ice-udp:1'>\
                 <fingerprint xmlns='urn:xmpp:jingle:apps:dtls:0' hash='sha-256' \
                 required='yes'>AA</fingerprint></transport>",
            ),
            ("fingerprint", "required"),
        ),
        (
            "<jingle xmlns='urn:xmpp:jingle:1' action='session-accept' sid='s'>\
             <content creator='everyone' name='a'/></jingle>"
                .to_owned(),
            ("content", "creator"),
        ),
        (
            "<jingle xmlns='urn:xmpp:jingle:1' action='session-accept' sid='s'>\
             <content name='a' senders='all'/></jingle>"
                .to_owned(),
            ("content", "senders"),
        ),
    ];
    for (xml, (element, attribute)) in cases {
        match parse_error(&xml) {
            JingleError::InvalidAttribute {
                element: found_element,
                attribute: found_attribute,
                ..
            } => assert_eq!(
                (found_element, found_attribute),
                (element, attribute),
                "{xml}"
            ),
            other => panic!("{xml}: {other:?}"),
        }
    }
    assert_eq!(
        parse_error(&accept_with(
            "<transport xmlns='urn:xmpp:jingle:transports:ice-udp:1'>\
             <fingerprint xmlns='urn:xmpp:jingle:apps:dtls:0' hash='sha-256'> </fingerprint>\
             </transport>"
        )),
        JingleError::MissingText {
            element: "fingerprint"
        }
    );
    assert_eq!(
        parse_error(
            "<jingle xmlns='urn:xmpp:jingle:1' action='session-accept' sid='s'><content/></jingle>"
        ),
        JingleError::MissingAttribute {
            element: "content",
            attribute: "name"
        }
    );
    assert_eq!(
        parse_error(
            "<jingle xmlns='urn:xmpp:jingle:1' action='session-terminate' sid='s'>\
             <reason><text>why</text></reason></jingle>"
        ),
        JingleError::MissingChild {
            element: "reason",
            child: "condition"
        }
    );
}

#[test]
fn unknown_elements_in_unknown_namespaces_never_fail_parsing() {
    let original: Element = accept_with(
        "<description xmlns='urn:xmpp:jingle:apps:rtp:1' media='video'>\
         <source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1'>\
         <ssrc-info xmlns='http://jitsi.org/jitmeet'/></source></description>\
         <transport xmlns='urn:xmpp:jingle:transports:raw-udp:1'/>\
         <description xmlns='urn:xmpp:jingle:apps:file-transfer:5'/>",
    )
    .parse()
    .unwrap();
    round_trip(&original);
    let jingle = Jingle::from_element(&original).unwrap();
    assert!(jingle.contents[0].transport.is_none());
    assert_eq!(jingle.contents[0].extensions.children.len(), 2);
}
