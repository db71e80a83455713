//! The focus end to end: real Prosody, real bridge, real focus binary; XMPP test clients with
//! tutti-participant media, each test inside its own network namespace.

mod support;

use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use jid::Jid;
use support::*;
use tokio_tungstenite::tungstenite::Message;
use tokio_xmpp::parsers::iq::Iq;
use tokio_xmpp::Stanza;
use tutti_focus::jingle::{Action, ReasonCondition, ReasonKind};
use tutti_participant::{Participant, ParticipantConfig};

const ROOM: &str = "room1@conference.localhost";

/// A participant that asked for the conference, joined, accepted the focus's offer and
/// connected its media to the bridge.
struct Joined {
    xmpp: XmppClient,
    media: Participant,
    config: ParticipantConfig,
    sid: String,
    initiate: tutti_focus::jingle::Jingle,
    initiate_ssrcs: Vec<u32>,
    bridge_channel: String,
}

async fn join_and_accept(user: &str) -> Joined {
    let mut xmpp = XmppClient::connect(user).await;
    let answer = xmpp.conference_request(ROOM).await;
    assert_eq!(answer.attr("ready"), Some("true"));
    assert_eq!(answer.attr("focusjid"), Some("focus@localhost"));
    xmpp.join(ROOM, user).await;
    let (from, initiate) = xmpp.next_jingle(Action::SessionInitiate).await;
    assert_eq!(from.to_string(), format!("{ROOM}/focus"));
    assert_eq!(
        initiate.responder.as_deref(),
        Some(format!("{ROOM}/{user}").as_str())
    );
    let config = ParticipantConfig::new(user);
    let media = Participant::bind(config.clone())
        .await
        .expect("binding the participant");
    let accept = session_accept(&initiate.sid, &config, &media.local_description());
    let answer = xmpp.request(from.clone(), accept.to_element()).await;
    assert!(
        matches!(answer, Iq::Result { .. }),
        "session-accept refused: {answer:?}"
    );
    media
        .connect(&remote_description(&initiate), Duration::from_secs(10))
        .await
        .expect("media connects to the bridge");
    Joined {
        xmpp,
        media,
        config,
        sid: initiate.sid.clone(),
        initiate_ssrcs: ssrcs(&initiate),
        bridge_channel: bridge_channel_url(&initiate),
        initiate,
    }
}

/// The next message of colibri class `class` on a bridge channel (others are skipped), as
/// JSON.
async fn next_channel_message(
    socket: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    class: &str,
) -> serde_json::Value {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(5), socket.next())
            .await
            .expect("a bridge-channel message within 5 s")
            .expect("the bridge channel stays open")
            .expect("a readable frame");
        if let Message::Text(text) = frame {
            let message: serde_json::Value = serde_json::from_str(&text).unwrap();
            if message["colibriClass"] == class {
                return message;
            }
        }
    }
}

fn received(participant: &Participant, ssrc: u32) -> u64 {
    participant
        .stats()
        .received
        .get(&ssrc)
        .map_or(0, |s| s.packets)
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn focus_occupant() -> Jid {
    Jid::new(&format!("{ROOM}/focus")).unwrap()
}

#[tokio::test]
async fn participants_get_sessions_sources_and_media() {
    if rerun_in_own_netns("participants_get_sessions_sources_and_media") {
        return;
    }
    let mut stack = Stack::start("media", &["alice", "bob", "carol", "dave"]);
    stack.start_focus(&[]);
    let (status, _) = stack.focus_http_get("/health").await;
    assert!(status.contains("200"), "{status}");

    let mut alice = join_and_accept("alice").await;
    assert!(alice.initiate_ssrcs.is_empty(), "nobody else sends yet");
    let mut bob = join_and_accept("bob").await;
    // Bob's offer carries Alice's sources: her audio, her camera under the SSRC (and RTX SSRC)
    // the focus minted for it; Alice hears of Bob's in a source-add.
    assert!(bob.initiate_ssrcs.contains(&alice.config.audio_ssrc));
    let alice_camera = ssrcs_named(&bob.initiate, "alice-v0");
    assert_eq!(alice_camera.len(), 2, "{alice_camera:?}");
    for ssrc in [alice.config.video_ssrc, alice.config.video_rtx_ssrc] {
        assert!(!bob.initiate_ssrcs.contains(&ssrc), "a sender's own SSRC");
    }
    let (from, add) = alice.xmpp.next_jingle(Action::SourceAdd).await;
    assert_eq!(from, focus_occupant());
    assert_eq!(add.sid, alice.sid);
    assert!(ssrcs(&add).contains(&bob.config.audio_ssrc));
    let bob_camera = ssrcs_named(&add, "bob-v0");
    assert_eq!(bob_camera.len(), 2, "{bob_camera:?}");
    assert!(!bob_camera.contains(&bob.config.video_ssrc));

    // Media flows both ways through the bridge, video under the minted SSRCs.
    eventually("alice receives bob's audio and video", || {
        received(&alice.media, bob.config.audio_ssrc) > 10
            && received(&alice.media, bob_camera[0]) > 10
    })
    .await;
    eventually("bob receives alice's audio and video", || {
        received(&bob.media, alice.config.audio_ssrc) > 10
            && received(&bob.media, alice_camera[0]) > 10
    })
    .await;
    let carried = |receiver: &Joined, ssrc: u32| receiver.media.stats().received[&ssrc].sender;
    assert_eq!(carried(&alice, bob_camera[0]), Some(bob.config.video_ssrc));
    assert_eq!(
        carried(&bob, alice_camera[0]),
        Some(alice.config.video_ssrc)
    );

    // Each offer names that participant's own bridge channel on the bridge; what Alice sends
    // there reaches Bob marked with her nick, the id lib-jitsi-meet knows her by.
    assert_ne!(alice.bridge_channel, bob.bridge_channel);
    assert!(
        alice.bridge_channel.contains("/colibri-ws/"),
        "{}",
        alice.bridge_channel
    );
    let (mut alice_channel, _) = tokio_tungstenite::connect_async(&alice.bridge_channel)
        .await
        .expect("alice's bridge channel opens");
    let (mut bob_channel, _) = tokio_tungstenite::connect_async(&bob.bridge_channel)
        .await
        .expect("bob's bridge channel opens");
    alice_channel
        .send(Message::text(
            r#"{"colibriClass":"EndpointMessage","to":"","msgPayload":{"hi":"bob"}}"#,
        ))
        .await
        .unwrap();
    // Bob is told whose video the bridge forwards him (the latest list on connecting, then
    // every change: until alice's video was measured it may have been empty).
    loop {
        let forwarded = next_channel_message(&mut bob_channel, "LastNEndpointsChangeEvent").await;
        if forwarded["lastNEndpoints"] == serde_json::json!(["alice"]) {
            break;
        }
        assert_eq!(forwarded["lastNEndpoints"], serde_json::json!([]));
    }
    let message = next_channel_message(&mut bob_channel, "EndpointMessage").await;
    assert_eq!(message["from"], "alice");
    assert_eq!(message["msgPayload"]["hi"], "bob");

    // A third participant: offered both others' sources, announced to both.
    let carol = join_and_accept("carol").await;
    for ssrc in [alice.config.audio_ssrc, bob.config.audio_ssrc] {
        assert!(carol.initiate_ssrcs.contains(&ssrc));
    }
    let mut carol_camera = Vec::new();
    for other in [&mut alice, &mut bob] {
        let (_, add) = other.xmpp.next_jingle(Action::SourceAdd).await;
        assert!(ssrcs(&add).contains(&carol.config.audio_ssrc));
        carol_camera.push(camera_of(&add, "carol"));
    }
    assert_eq!(
        carol_camera[0], carol_camera[1],
        "one SSRC per source for everyone"
    );
    let carol_camera = carol_camera[0];
    eventually("carol receives alice's and bob's audio", || {
        received(&carol.media, alice.config.audio_ssrc) > 10
            && received(&carol.media, bob.config.audio_ssrc) > 10
    })
    .await;
    eventually("alice and bob receive carol's audio and video", || {
        [&alice, &bob].iter().all(|other| {
            received(&other.media, carol.config.audio_ssrc) > 10
                && received(&other.media, carol_camera) > 10
        })
    })
    .await;

    // A fourth, later: everyone already there gets a source-add of its sources.
    let mut carol = carol;
    let dave = join_and_accept("dave").await;
    for ssrc in [
        alice.config.audio_ssrc,
        bob.config.audio_ssrc,
        carol.config.audio_ssrc,
    ] {
        assert!(dave.initiate_ssrcs.contains(&ssrc));
    }
    for other in [&mut alice, &mut bob, &mut carol] {
        let (from, add) = other.xmpp.next_jingle(Action::SourceAdd).await;
        assert_eq!(from, focus_occupant());
        assert_eq!(add.sid, other.sid);
        let added = ssrcs(&add);
        assert!(added.contains(&dave.config.audio_ssrc), "{added:?}");
        camera_of(&add, "dave");
    }
    stack
        .bridge_metric_becomes("tutti_bridge_endpoints", 4.0)
        .await;

    let (_, metrics) = stack.focus_http_get("/metrics").await;
    assert!(metrics.contains("tutti_focus_participants 4"), "{metrics}");
    assert!(
        metrics.contains("tutti_focus_jingle_sessions{state=\"active\"} 4"),
        "{metrics}"
    );
    assert!(metrics.contains("tutti_focus_rooms 1"), "{metrics}");
    assert!(
        metrics.contains("tutti_focus_allocation_seconds_count 4"),
        "{metrics}"
    );
    // The bridge reports the loss and jitter of what it receives (its receiver reports).
    let reported = stack
        .bridge_metric("tutti_bridge_loss_ratio_count{direction=\"upstream\",media=\"audio\"}")
        .await;
    assert!(reported >= Some(1.0), "{reported:?}");
    // Both expositions of a call in progress, for the check that every selector of the
    // dashboards and alert rules names a real metric (tests/deploy/helm-and-rules).
    let scrapes = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("metrics-scrape");
    std::fs::create_dir_all(&scrapes).unwrap();
    let (_, bridge_metrics) = stack.bridge_http_get("/metrics").await;
    std::fs::write(scrapes.join("bridge.prom"), bridge_metrics).unwrap();
    std::fs::write(scrapes.join("focus.prom"), &metrics).unwrap();

    // Carol leaves: the others get a source-remove of her sources, and her endpoint is
    // expired on the bridge.
    carol.xmpp.leave(ROOM, "carol").await;
    let mut dave = dave;
    for other in [&mut alice, &mut bob, &mut dave] {
        let (_, remove) = other.xmpp.next_jingle(Action::SourceRemove).await;
        let removed = ssrcs(&remove);
        assert!(removed.contains(&carol.config.audio_ssrc), "{removed:?}");
        assert_eq!(camera_of(&remove, "carol"), carol_camera);
    }
    stack
        .bridge_metric_becomes("tutti_bridge_endpoints", 3.0)
        .await;
    stack
        .bridge_metric_becomes("tutti_bridge_conferences", 1.0)
        .await;

    // The last ones leave: the focus leaves the room and expires the conference.
    alice.xmpp.leave(ROOM, "alice").await;
    bob.xmpp.leave(ROOM, "bob").await;
    dave.xmpp.leave(ROOM, "dave").await;
    stack
        .bridge_metric_becomes("tutti_bridge_conferences", 0.0)
        .await;
    stack
        .bridge_metric_becomes("tutti_bridge_endpoints", 0.0)
        .await;
    let (_, metrics) = stack.focus_http_get("/metrics").await;
    assert!(metrics.contains("tutti_focus_rooms 0"), "{metrics}");
    assert!(metrics.contains("tutti_focus_participants 0"), "{metrics}");
    carol.media.close().await;
    dave.media.close().await;
    alice.media.close().await;
    bob.media.close().await;
}

#[tokio::test]
async fn bad_jingle_is_refused_and_the_session_survives() {
    if rerun_in_own_netns("bad_jingle_is_refused_and_the_session_survives") {
        return;
    }
    let mut stack = Stack::start("errors", &["alice", "mallory"]);
    stack.start_focus(&[]);
    let alice = join_and_accept("alice").await;

    let mut mallory = XmppClient::connect("mallory").await;
    mallory.conference_request(ROOM).await;
    mallory.join(ROOM, "mallory").await;
    let (from, initiate) = mallory.next_jingle(Action::SessionInitiate).await;
    let config = ParticipantConfig::new("mallory");
    let media = Participant::bind(config.clone()).await.unwrap();
    let local = media.local_description();

    // Unknown sid.
    let unknown = session_accept("no-such-session", &config, &local);
    let answer = mallory.request(from.clone(), unknown.to_element()).await;
    let (condition, app, _) = error_of(&answer).expect("an error");
    assert_eq!(condition, "ItemNotFound");
    assert_eq!(app.as_deref(), Some(UNKNOWN_SESSION));

    // Alice's sid, but Mallory is not its peer.
    let stolen_session = session_accept(&alice.sid, &config, &local);
    let answer = mallory
        .request(from.clone(), stolen_session.to_element())
        .await;
    let (condition, app, _) = error_of(&answer).expect("an error");
    assert_eq!(condition, "ItemNotFound");
    assert_eq!(app.as_deref(), Some(UNKNOWN_SESSION));

    // A session-initiate reusing an existing sid.
    let mut initiate_again = session_accept(&initiate.sid, &config, &local);
    initiate_again.action = Action::SessionInitiate;
    let answer = mallory
        .request(from.clone(), initiate_again.to_element())
        .await;
    assert_eq!(error_of(&answer).expect("an error").0, "ServiceUnavailable");

    // Malformed: an action the model does not know.
    let malformed = minidom::Element::builder("jingle", "urn:xmpp:jingle:1")
        .attr(rxml::xml_ncname!("action").into(), "session-dance")
        .attr(rxml::xml_ncname!("sid").into(), initiate.sid.as_str())
        .build();
    let answer = mallory.request(from.clone(), malformed).await;
    let (condition, _, text) = error_of(&answer).expect("an error");
    assert_eq!(condition, "BadRequest");
    assert!(text.contains("action"), "{text}");

    // Alice's audio SSRC in Mallory's answer.
    let mut thief = config.clone();
    thief.audio_ssrc = alice.config.audio_ssrc;
    let stolen_ssrc = session_accept(&initiate.sid, &thief, &local);
    let answer = mallory
        .request(from.clone(), stolen_ssrc.to_element())
        .await;
    let (condition, _, text) = error_of(&answer).expect("an error");
    assert_eq!(condition, "BadRequest");
    assert!(
        text.contains(&alice.config.audio_ssrc.to_string()),
        "{text}"
    );

    // More than 20 SSRCs.
    let mut greedy = session_accept(&initiate.sid, &config, &local);
    if let Some(description) = greedy.contents[0].description.as_mut() {
        for ssrc in 1..=25 {
            description
                .sources
                .push(tutti_focus::jingle::Source::new(ssrc));
        }
    }
    let answer = mallory.request(from.clone(), greedy.to_element()).await;
    assert_eq!(error_of(&answer).expect("an error").0, "BadRequest");

    // A FID group that pairs Mallory's video with Alice's.
    let mut grouping = session_accept(&initiate.sid, &config, &local);
    let video = grouping
        .contents
        .iter_mut()
        .filter_map(|content| content.description.as_mut())
        .find(|description| description.media.as_deref() == Some("video"))
        .expect("a video description");
    video
        .source_groups
        .push(tutti_focus::jingle::SourceGroup::new(
            tutti_focus::jingle::GroupSemantics::Fid,
            vec![config.video_ssrc, alice.config.video_ssrc],
        ));
    let answer = mallory.request(from.clone(), grouping.to_element()).await;
    let (condition, _, text) = error_of(&answer).expect("an error");
    assert_eq!(condition, "BadRequest");
    assert!(
        text.contains(&alice.config.video_ssrc.to_string()),
        "{text}"
    );

    // The session survived all of that: a valid answer is accepted and media flows.
    let accept = session_accept(&initiate.sid, &config, &local);
    let answer = mallory.request(from.clone(), accept.to_element()).await;
    assert!(matches!(answer, Iq::Result { .. }), "{answer:?}");
    media
        .connect(&remote_description(&initiate), Duration::from_secs(10))
        .await
        .expect("media connects");
    eventually("mallory receives alice's audio", || {
        received(&media, alice.config.audio_ssrc) > 10
    })
    .await;
    let (_, metrics) = stack.focus_http_get("/metrics").await;
    assert!(
        metrics.contains("tutti_focus_errors_total{kind=\"unknown_session\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("tutti_focus_errors_total{kind=\"bad_request\"} 4"),
        "{metrics}"
    );
    media.close().await;
    alice.media.close().await;
}

/// The focus's presence in `ROOM`: whether it says that no bridge is available.
async fn next_focus_presence(client: &mut XmppClient) -> bool {
    client
        .wait_for("the focus's presence", |stanza| match stanza {
            Stanza::Presence(presence) if presence.from.as_ref() == Some(&focus_occupant()) => {
                Some(
                    presence
                        .payloads
                        .iter()
                        .any(|p| p.name() == "bridgeNotAvailable"),
                )
            }
            _ => None,
        })
        .await
}

/// Waits for the focus's presence in `ROOM` to say `bridge_down`.
async fn focus_presence_becomes(client: &mut XmppClient, bridge_down: bool) {
    while next_focus_presence(client).await != bridge_down {}
}

#[tokio::test]
async fn the_focus_configures_the_rooms_it_creates_to_show_real_jids() {
    if rerun_in_own_netns("the_focus_configures_the_rooms_it_creates_to_show_real_jids") {
        return;
    }
    let mut stack = Stack::start_with_default_rooms("whois", &["alice"]);
    stack.start_focus(&[]);
    let mut alice = XmppClient::connect("alice").await;
    let answer = alice.conference_request(ROOM).await;
    assert_eq!(answer.attr("ready"), Some("true"));
    // Joining right after the answer: the room, locked when created, is configured already.
    alice.join(ROOM, "alice").await;
    let real_jid = alice
        .wait_for("the focus's presence", |stanza| match stanza {
            Stanza::Presence(presence) if presence.from.as_ref() == Some(&focus_occupant()) => {
                Some(
                    presence
                        .payloads
                        .iter()
                        .filter(|p| p.is("x", "http://jabber.org/protocol/muc#user"))
                        .flat_map(|x| x.children())
                        .find_map(|item| item.attr("jid").map(str::to_owned)),
                )
            }
            _ => None,
        })
        .await;
    assert_eq!(real_jid.as_deref(), Some("focus@localhost/focus"));
    let (from, _) = alice.next_jingle(Action::SessionInitiate).await;
    assert_eq!(from, focus_occupant());
}

#[tokio::test]
async fn a_dead_bridge_is_announced_and_the_room_stays_usable() {
    if rerun_in_own_netns("a_dead_bridge_is_announced_and_the_room_stays_usable") {
        return;
    }
    let mut stack = Stack::start("deadbridge", &["alice"]);
    stack.start_focus(&[("TUTTI_FOCUS_BRIDGE_TIMEOUT_SECS", "2")]);
    stack.stop_bridge();
    let mut alice = XmppClient::connect("alice").await;
    alice.conference_request(ROOM).await;
    alice.join(ROOM, "alice").await;
    // No session exists to terminate: the focus's presence says it (lib-jitsi-meet reports
    // conference.videobridgeNotAvailable), and no Jingle request with a made-up sid comes.
    focus_presence_becomes(&mut alice, true).await;
    alice
        .expect_none(Duration::from_secs(2), "a Jingle request", |stanza| {
            matches!(stanza, Stanza::Iq(Iq::Set { payload, .. }) if payload.name() == "jingle")
        })
        .await;
    // The focus still answers, and the room is usable: leaving and asking again works.
    alice.leave(ROOM, "alice").await;
    let answer = alice.conference_request(ROOM).await;
    assert_eq!(answer.attr("ready"), Some("true"));
    let allocation_errors = stack
        .focus_metric("tutti_focus_errors_total{kind=\"allocation\"}")
        .await;
    assert!(allocation_errors >= Some(1.0), "{allocation_errors:?}");
}

#[tokio::test]
async fn a_bridge_that_stops_answering_is_tried_again_until_it_does() {
    if rerun_in_own_netns("a_bridge_that_stops_answering_is_tried_again_until_it_does") {
        return;
    }
    let mut stack = Stack::start("bridgeback", &["alice"]);
    stack.start_focus(&[("TUTTI_FOCUS_BRIDGE_TIMEOUT_SECS", "1")]);
    let mut alice = XmppClient::connect("alice").await;
    alice.conference_request(ROOM).await;

    // Frozen during allocation: announced, then a session once the bridge answers again.
    stack.pause_bridge();
    alice.join(ROOM, "alice").await;
    focus_presence_becomes(&mut alice, true).await;
    stack.resume_bridge();
    let (from, first) = alice.next_jingle(Action::SessionInitiate).await;
    assert_eq!(from, focus_occupant());
    focus_presence_becomes(&mut alice, false).await;

    // Frozen when the participant accepts: the accept is refused, the session terminated with
    // the cause, and a new session offered once the bridge is back.
    stack.pause_bridge();
    let config = ParticipantConfig::new("alice");
    let media = Participant::bind(config.clone()).await.unwrap();
    let refused = session_accept(&first.sid, &config, &media.local_description());
    let answer = alice.request(from.clone(), refused.to_element()).await;
    let (condition, _, text) = error_of(&answer).expect("the accept is refused");
    assert_eq!(condition, "InternalServerError");
    assert!(text.contains("bridge"), "{text}");
    let (_, terminate) = alice.next_jingle(Action::SessionTerminate).await;
    assert_eq!(
        terminate.sid, first.sid,
        "the terminate names the offered session"
    );
    let reason = terminate.reason.expect("a reason");
    assert_eq!(
        reason.condition,
        ReasonCondition::Defined(ReasonKind::GeneralError)
    );
    let text = reason.text.expect("a reason text").text;
    assert!(text.starts_with("the bridge failed the session"), "{text}");
    focus_presence_becomes(&mut alice, true).await;
    stack.resume_bridge();
    let (_, second) = alice.next_jingle(Action::SessionInitiate).await;
    assert_ne!(second.sid, first.sid);
    focus_presence_becomes(&mut alice, false).await;

    // The new session works end to end.
    drop(media);
    let _media = accept(&mut alice, &from, &second, &config, |_| {}).await;
    stack
        .focus_metric_becomes("tutti_focus_jingle_sessions{state=\"active\"} 1")
        .await;
    // The CreateConference that timed out reached the bridge once it ran again; every later
    // attempt asked for the same conference, so the bridge holds one.
    stack
        .bridge_metric_becomes("tutti_bridge_conferences", 1.0)
        .await;
}

#[tokio::test]
async fn a_room_waiting_on_the_bridge_holds_up_no_other_room() {
    if rerun_in_own_netns("a_room_waiting_on_the_bridge_holds_up_no_other_room") {
        return;
    }
    const OTHER_ROOM: &str = "room2@conference.localhost";
    let mut stack = Stack::start("stalled", &["alice", "bob"]);
    stack.start_focus(&[("TUTTI_FOCUS_BRIDGE_TIMEOUT_SECS", "8")]);
    let mut alice = XmppClient::connect("alice").await;
    let mut bob = XmppClient::connect("bob").await;
    stack.pause_bridge();
    alice.conference_request(ROOM).await;
    alice.join(ROOM, "alice").await;
    // The focus has Alice in its books: its call to create her room's conference is under
    // way, and unanswered for as long as the bridge is frozen.
    stack
        .focus_metric_becomes("tutti_focus_participants 1")
        .await;

    // Another room is served meanwhile. Were it queued behind Alice's room, the answer would
    // come only once her call had timed out (8 s), and she would get a session-terminate.
    let answer = bob.conference_request(OTHER_ROOM).await;
    assert_eq!(answer.attr("ready"), Some("true"));
    bob.join(OTHER_ROOM, "bob").await;
    stack
        .focus_metric_becomes("tutti_focus_participants 2")
        .await;

    // Both calls complete once the bridge answers: a session for each.
    stack.resume_bridge();
    let (from, _) = alice.next_jingle(Action::SessionInitiate).await;
    assert_eq!(from, focus_occupant());
    let (from, _) = bob.next_jingle(Action::SessionInitiate).await;
    assert_eq!(from.to_string(), format!("{OTHER_ROOM}/focus"));
    stack
        .bridge_metric_becomes("tutti_bridge_endpoints", 2.0)
        .await;
    let allocation_errors = stack
        .focus_metric("tutti_focus_errors_total{kind=\"allocation\"}")
        .await;
    assert_eq!(allocation_errors, Some(0.0));
}

#[tokio::test]
async fn a_configured_room_is_joined_and_an_invitation_works() {
    if rerun_in_own_netns("a_configured_room_is_joined_and_an_invitation_works") {
        return;
    }
    let mut stack = Stack::start("rooms", &["alice"]);
    stack.start_focus(&[("TUTTI_FOCUS_ROOMS", "configured@conference.localhost")]);
    let mut alice = XmppClient::connect("alice").await;
    // Configured: no conference request needed.
    alice.join("configured@conference.localhost", "alice").await;
    let (from, _) = alice.next_jingle(Action::SessionInitiate).await;
    assert_eq!(from.to_string(), "configured@conference.localhost/focus");
    // XEP-0249 invitation to another room.
    let invite = minidom::Element::builder("x", "jabber:x:conference")
        .attr(
            rxml::xml_ncname!("jid").into(),
            "invited@conference.localhost",
        )
        .build();
    let mut message = tokio_xmpp::parsers::message::Message::new(Some(
        Jid::new("focus@localhost/focus").unwrap(),
    ));
    message.payloads.push(invite);
    alice.send(message).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    alice.join("invited@conference.localhost", "alice").await;
    let (from, _) = alice.next_jingle(Action::SessionInitiate).await;
    assert_eq!(from.to_string(), "invited@conference.localhost/focus");
    // A request for a room on another service is refused.
    let payload = minidom::Element::builder("conference", "http://jitsi.org/protocol/focus")
        .attr(rxml::xml_ncname!("room").into(), "x@elsewhere.example")
        .build();
    let answer = alice
        .request(Jid::new("focus@localhost/focus").unwrap(), payload)
        .await;
    assert_eq!(error_of(&answer).expect("an error").0, "NotAllowed");
}

#[tokio::test]
async fn a_wrong_password_is_reported_within_seconds() {
    if rerun_in_own_netns("a_wrong_password_is_reported_within_seconds") {
        return;
    }
    let stack = Stack::start("password", &[]);
    let started = Instant::now();
    let (child, line) = stack.spawn_focus(&[("TUTTI_FOCUS_PASSWORD", "not-the-password")]);
    assert!(
        line.is_none(),
        "the focus came up with a wrong password: {line:?}"
    );
    let output = child.wait_with_output().expect("the focus exits");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("wrong password"), "{stderr}");

    // An unreachable server is named as such, as quickly.
    let started = Instant::now();
    let (child, line) = stack.spawn_focus(&[("TUTTI_FOCUS_XMPP_SERVER", "127.0.0.1:1")]);
    assert!(line.is_none());
    let output = child.wait_with_output().expect("the focus exits");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot reach the XMPP server"), "{stderr}");

    // STARTTLS required, and this server does not offer it.
    let (child, line) = stack.spawn_focus(&[("TUTTI_FOCUS_XMPP_SECURITY", "starttls")]);
    assert!(line.is_none());
    let output = child.wait_with_output().expect("the focus exits");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("does not offer STARTTLS"), "{stderr}");
}

#[tokio::test]
async fn a_lost_connection_rebuilds_the_rooms() {
    if rerun_in_own_netns("a_lost_connection_rebuilds_the_rooms") {
        return;
    }
    let mut stack = Stack::start("reconnect", &["alice", "bob"]);
    stack.start_focus(&[]);
    let alice = join_and_accept("alice").await;
    // Bob asks for a room and never joins it: nobody will be there after the reconnection.
    let mut bob = XmppClient::connect("bob").await;
    let answer = bob
        .conference_request("abandoned@conference.localhost")
        .await;
    assert_eq!(answer.attr("ready"), Some("true"));
    let (_, metrics) = stack.focus_http_get("/metrics").await;
    assert!(metrics.contains("tutti_focus_rooms 2"), "{metrics}");
    stack
        .bridge_metric_becomes("tutti_bridge_endpoints", 1.0)
        .await;

    stack.cut_focus_connection();

    // Back in Alice's room by itself (no conference request): her old session ended, a new one
    // for her on a new endpoint; the old one is expired.
    let mut xmpp = alice.xmpp;
    let (from, terminate) = xmpp.next_jingle(Action::SessionTerminate).await;
    assert_eq!(from, focus_occupant());
    assert_eq!(terminate.sid, alice.sid);
    let (from, initiate) = xmpp.next_jingle(Action::SessionInitiate).await;
    assert_eq!(from, focus_occupant());
    assert_ne!(initiate.sid, alice.sid);
    alice.media.close().await;
    let media = accept(&mut xmpp, &from, &initiate, &alice.config, |_| {}).await;
    stack
        .bridge_metric_becomes("tutti_bridge_endpoints", 1.0)
        .await;
    // The abandoned room is left again.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, metrics) = stack.focus_http_get("/metrics").await;
        if metrics.contains("tutti_focus_rooms 1") {
            assert!(metrics.contains("tutti_focus_participants 1"), "{metrics}");
            break;
        }
        assert!(Instant::now() < deadline, "{metrics}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    media.close().await;
}

#[tokio::test]
async fn the_focus_is_unhealthy_while_the_server_is_down_and_comes_back_with_it() {
    if rerun_in_own_netns("the_focus_is_unhealthy_while_the_server_is_down_and_comes_back_with_it")
    {
        return;
    }
    let mut stack = Stack::start("serverdown", &["alice"]);
    stack.start_focus(&[]);
    stack.focus_health_becomes("200", TIMEOUT).await;
    stack.stop_prosody();
    stack
        .focus_health_becomes("503", Duration::from_secs(5))
        .await;
    // The focus keeps trying with back-off (1 s, doubling) and logs in again by itself.
    tokio::time::sleep(Duration::from_secs(2)).await;
    stack.start_prosody_again();
    stack
        .focus_health_becomes("200", Duration::from_secs(20))
        .await;
    let joined = join_and_accept("alice").await;
    joined.media.close().await;
}

#[tokio::test]
async fn starttls_needs_a_trusted_certificate() {
    if rerun_in_own_netns("starttls_needs_a_trusted_certificate") {
        return;
    }
    let mut stack = Stack::start_with_starttls("starttls", &["alice"]);
    let starttls = ("TUTTI_FOCUS_XMPP_SECURITY", "starttls");
    // The certificate's issuer is unknown to the focus: named as a TLS failure, within 10 s.
    let started = Instant::now();
    let (child, line) = stack.spawn_focus(&[starttls, ("SSL_CERT_FILE", "/dev/null")]);
    assert!(line.is_none(), "the focus came up: {line:?}");
    let output = child.wait_with_output().expect("the focus exits");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("TLS with the XMPP server"), "{stderr}");
    assert!(stderr.contains("certificate"), "{stderr}");

    // Trusting the test CA, the focus logs in over TLS and serves the room.
    let ca = stack.prosody().test_ca();
    stack.start_focus(&[starttls, ("SSL_CERT_FILE", ca.to_str().unwrap())]);
    let alice = join_and_accept("alice").await;
    assert!(alice.initiate_ssrcs.is_empty());
    alice.media.close().await;
}

#[tokio::test]
async fn the_bridge_is_reached_over_mutual_tls_and_only_if_its_certificate_is_trusted() {
    if rerun_in_own_netns(
        "the_bridge_is_reached_over_mutual_tls_and_only_if_its_certificate_is_trusted",
    ) {
        return;
    }
    let dir = std::env::temp_dir().join(format!("tutti-focus-pki-{}", std::process::id()));
    let pki = tutti_test_harness::certs::TestPki::write(&dir).expect("test certificates");
    let path = |file: std::path::PathBuf| file.display().to_string();
    let (ca, other_ca) = (path(pki.cert("ca")), path(pki.cert("other-ca")));
    let (bridge_cert, bridge_key) = (path(pki.cert("bridge")), path(pki.key("bridge")));
    let (focus_cert, focus_key) = (path(pki.cert("focus")), path(pki.key("focus")));
    let mut stack = Stack::start_with_bridge(
        "mtls",
        &["alice", "bob"],
        &[
            ("TUTTI_BRIDGE_GRPC_TLS_CA", &ca),
            ("TUTTI_BRIDGE_GRPC_TLS_CERT", &bridge_cert),
            ("TUTTI_BRIDGE_GRPC_TLS_KEY", &bridge_key),
        ],
    );
    let url = format!("https://localhost:{}", stack.bridge_grpc.port());
    let focus_env = |trusted: &'static str| {
        let trusted = if trusted == "ca" { &ca } else { &other_ca };
        vec![
            ("TUTTI_FOCUS_BRIDGE_URL", url.clone()),
            ("TUTTI_FOCUS_BRIDGE_TLS_CA", trusted.clone()),
            ("TUTTI_FOCUS_BRIDGE_TLS_CERT", focus_cert.clone()),
            ("TUTTI_FOCUS_BRIDGE_TLS_KEY", focus_key.clone()),
            ("TUTTI_FOCUS_BRIDGE_TIMEOUT_SECS", "2".to_owned()),
        ]
    };

    // Both sides trust the CA: a session, media through the bridge.
    let env = focus_env("ca");
    stack.start_focus(
        &env.iter()
            .map(|(k, v)| (*k, v.as_str()))
            .collect::<Vec<_>>(),
    );
    let mut alice = join_and_accept("alice").await;
    alice.media.close().await;
    alice.xmpp.leave(ROOM, "alice").await;
    stack.focus = None;

    // A focus trusting another CA refuses the bridge: the room says no bridge is available,
    // the focus counts an allocation error, and the bridge sees its certificate refused.
    let env = focus_env("other-ca");
    stack.start_focus(
        &env.iter()
            .map(|(k, v)| (*k, v.as_str()))
            .collect::<Vec<_>>(),
    );
    let mut bob = XmppClient::connect("bob").await;
    bob.conference_request(ROOM).await;
    bob.join(ROOM, "bob").await;
    focus_presence_becomes(&mut bob, true).await;
    let allocation_errors = stack
        .focus_metric("tutti_focus_errors_total{kind=\"allocation\"}")
        .await;
    assert!(allocation_errors >= Some(1.0), "{allocation_errors:?}");
    // The focus asks again with back-off: one refusal at least.
    let refused = stack
        .bridge_metric("tutti_bridge_grpc_tls_refusals_total{reason=\"client_alert\"}")
        .await;
    assert!(refused >= Some(1.0), "{refused:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
