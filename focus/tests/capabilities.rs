//! Who gets a session: occupants are invited by the features behind their caps (disco#info,
//! asked once per caps version), or by default when they advertise no caps or do not answer;
//! and in which dialect (plain XEP Jingle for a client that lists nothing of Jitsi's).

mod support;

use std::time::Duration;

use jid::Jid;
use minidom::Element;
use support::*;
use tokio_xmpp::parsers::iq::Iq;
use tokio_xmpp::parsers::presence::Presence;
use tokio_xmpp::parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};
use tokio_xmpp::Stanza;
use tutti_focus::capabilities::REQUIRED_FEATURES;
use tutti_focus::jingle::{Action, Jingle, Senders};

const ROOM: &str = "caps@conference.localhost";
const DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";

async fn join_with_caps(client: &mut XmppClient, nick: &str, node: &str, ver: &str) {
    client.conference_request(ROOM).await;
    let caps = Element::builder("c", "http://jabber.org/protocol/caps")
        .attr(rxml::xml_ncname!("hash").into(), "sha-1")
        .attr(rxml::xml_ncname!("node").into(), node)
        .attr(rxml::xml_ncname!("ver").into(), ver)
        .build();
    let presence = Presence::available()
        .with_to(Jid::new(&format!("{ROOM}/{nick}")).unwrap())
        .with_payloads(vec![
            Element::bare("x", "http://jabber.org/protocol/muc"),
            caps,
        ]);
    client.send(presence).await;
}

/// The next disco#info query from the focus: (from, id, node).
async fn disco_query(client: &mut XmppClient) -> (Jid, String, String) {
    client
        .wait_for("a disco#info query", |stanza| match stanza {
            Stanza::Iq(Iq::Get {
                from: Some(from),
                id,
                payload,
                ..
            }) if payload.is("query", DISCO_INFO) => Some((
                from.clone(),
                id.clone(),
                payload.attr("node").unwrap_or_default().to_owned(),
            )),
            _ => None,
        })
        .await
}

async fn answer_features(client: &mut XmppClient, to: Jid, id: String, features: &[&str]) {
    let mut query = Element::builder("query", DISCO_INFO).append(
        Element::builder("identity", DISCO_INFO)
            .attr(rxml::xml_ncname!("category").into(), "client")
            .attr(rxml::xml_ncname!("type").into(), "pc")
            .build(),
    );
    for feature in features {
        query = query.append(
            Element::builder("feature", DISCO_INFO)
                .attr(rxml::xml_ncname!("var").into(), *feature)
                .build(),
        );
    }
    client
        .send(Iq::Result {
            from: None,
            to: Some(to),
            id,
            payload: Some(query.build()),
        })
        .await;
}

fn is_session_initiate(stanza: &Stanza) -> bool {
    matches!(stanza, Stanza::Iq(Iq::Set { payload, .. })
        if Jingle::from_element(payload).is_ok_and(|j| j.action == Action::SessionInitiate))
}

#[tokio::test]
async fn occupants_are_invited_by_their_advertised_features() {
    if rerun_in_own_netns("occupants_are_invited_by_their_advertised_features") {
        return;
    }
    let mut stack = Stack::start("caps", &["web", "web2", "chat", "silent", "plain"]);
    stack.start_focus(&[]);

    // A Jingle client: asked once, invited.
    let mut web = XmppClient::connect("web").await;
    join_with_caps(&mut web, "web", "https://example.org/web", "v1=").await;
    let (focus, id, node) = disco_query(&mut web).await;
    assert_eq!(
        focus.to_string(),
        format!("{ROOM}/focus"),
        "asked through the room"
    );
    assert_eq!(node, "https://example.org/web#v1=");
    let mut browser_features = REQUIRED_FEATURES.to_vec();
    browser_features.push("urn:xmpp:jingle:apps:rtp:audio");
    answer_features(&mut web, focus, id, &browser_features).await;
    // Nothing of Jitsi's in its features: a standards client, offered plain XEP Jingle (its
    // own contents for what it sends, no bridge channel).
    let (_, offer) = web.next_jingle(Action::SessionInitiate).await;
    assert_eq!(
        offer.content("audio").and_then(|c| c.senders),
        Some(Senders::Responder)
    );
    assert!(!String::from(&offer.to_element()).contains("jitsi.org"));

    // The same caps again: the verdict is remembered, no second query.
    let mut web2 = XmppClient::connect("web2").await;
    join_with_caps(&mut web2, "web2", "https://example.org/web", "v1=").await;
    let first = web2
        .wait_for("a query or an offer", |stanza| match stanza {
            Stanza::Iq(Iq::Get { payload, .. }) if payload.is("query", DISCO_INFO) => {
                Some("disco#info query")
            }
            stanza if is_session_initiate(stanza) => Some("session-initiate"),
            _ => None,
        })
        .await;
    assert_eq!(first, "session-initiate");

    // A client without Jingle RTP over ICE-UDP with DTLS: asked, not invited.
    let mut chat = XmppClient::connect("chat").await;
    join_with_caps(&mut chat, "chat", "https://example.org/chat", "c1=").await;
    let (focus, id, _) = disco_query(&mut chat).await;
    answer_features(
        &mut chat,
        focus,
        id,
        &[
            "jabber:iq:version",
            "urn:xmpp:jingle:1",
            "urn:xmpp:jingle:apps:rtp:1",
        ],
    )
    .await;
    chat.expect_none(Duration::from_secs(2), "an offer", is_session_initiate)
        .await;

    // A client that refuses the query: invited with the default features.
    let mut silent = XmppClient::connect("silent").await;
    join_with_caps(&mut silent, "silent", "https://example.org/silent", "s1=").await;
    let (focus, id, _) = disco_query(&mut silent).await;
    silent
        .send(Iq::Error {
            from: None,
            to: Some(focus),
            id,
            error: StanzaError::new(
                ErrorType::Cancel,
                DefinedCondition::ServiceUnavailable,
                "en",
                "no disco here",
            ),
            payload: None,
        })
        .await;
    // Taken for a Jitsi client: Jitsi's offer.
    let (_, offer) = silent.next_jingle(Action::SessionInitiate).await;
    assert_eq!(
        offer.content("audio").and_then(|c| c.senders),
        Some(Senders::Both)
    );

    // No caps at all: invited at once.
    let mut plain = XmppClient::connect("plain").await;
    plain.conference_request(ROOM).await;
    plain.join(ROOM, "plain").await;
    plain.next_jingle(Action::SessionInitiate).await;

    let (_, metrics) = stack.focus_http_get("/metrics").await;
    assert!(
        metrics.contains("kind=\"not_jingle_capable\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("tutti_focus_participants 5"), "{metrics}");
}
