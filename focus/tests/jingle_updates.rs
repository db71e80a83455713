//! Jingle a participant sends after its session-accept (transport-info, source-add,
//! source-remove, session-info, session-terminate, and the ICE-failure restart), end to end:
//! real Prosody, real bridge, real focus binary, each test in its own network namespace.

mod support;

use std::time::Duration;

use jid::Jid;
use support::*;
use tokio_xmpp::parsers::iq::Iq;
use tokio_xmpp::Stanza;
use tutti_focus::jingle::{
    Action, Candidate, Content, GroupSemantics, IceUdpTransport, Jingle, Parameter,
    ReasonCondition, ReasonKind, RtpDescription, Source, SourceGroup,
};
use tutti_focus::jitsi::SsrcInfo;
use tutti_participant::{Participant, ParticipantConfig};

const ROOM: &str = "updates@conference.localhost";

fn focus_occupant() -> Jid {
    Jid::new(&format!("{ROOM}/focus")).unwrap()
}

fn owner(user: &str) -> String {
    format!("{ROOM}/{user}")
}

/// A transport-info with one candidate in a content named "0" (lib-jitsi-meet names trickled
/// candidates by m-line index).
fn transport_info(sid: &str, joined: &Joined, candidate: Candidate) -> Jingle {
    let local = joined.media.local_description();
    let mut transport = IceUdpTransport::new(&local.ufrag, &local.pwd);
    transport.candidates = vec![candidate];
    let mut content = Content::new("0");
    content.transport = Some(transport);
    let mut jingle = Jingle::new(Action::TransportInfo, sid);
    jingle.contents.push(content);
    jingle
}

fn assert_result(answer: &Iq, what: &str) {
    assert!(
        matches!(answer, Iq::Result { .. }),
        "{what} refused: {answer:?}"
    );
}

#[tokio::test]
async fn transport_info_and_source_updates_reach_the_bridge_and_the_others() {
    if rerun_in_own_netns("transport_info_and_source_updates_reach_the_bridge_and_the_others") {
        return;
    }
    let mut stack = Stack::start("updates", &["alice", "dave"]);
    stack.start_focus(&[]);
    let mut alice = join_and_accept(ROOM, "alice", |_| {}).await;
    // Dave accepts with his audio only; his camera comes later in a source-add.
    let mut dave = join_and_accept(ROOM, "dave", without_video).await;
    let dave_video = [dave.config.video_ssrc, dave.config.video_rtx_ssrc];
    let (_, add) = alice.xmpp.next_jingle(Action::SourceAdd).await;
    assert_eq!(ssrcs(&add), vec![dave.config.audio_ssrc]);

    // Trickled candidates after the accept: UDP applied, TCP ignored, both acknowledged.
    let dave_sid = dave.initiate.sid.clone();
    for candidate in [candidate("udp", 50_000), candidate("tcp", 9)] {
        let info = transport_info(&dave_sid, &dave, candidate);
        let answer = dave.xmpp.request(focus_occupant(), info.to_element()).await;
        assert_result(&answer, "transport-info");
    }
    // A plain session-info (no ICE failure) is acknowledged and changes nothing.
    let info = Jingle::new(Action::SessionInfo, dave_sid.clone());
    let answer = dave.xmpp.request(focus_occupant(), info.to_element()).await;
    assert_result(&answer, "session-info");
    dave.xmpp
        .expect_none(Duration::from_millis(500), "a session-terminate", |s| {
            is_jingle(s, Action::SessionTerminate)
        })
        .await;

    // Dave's media reaches Alice, but the bridge drops his unannounced video.
    eventually("alice receives dave's audio", || {
        received(&alice.media, dave.config.audio_ssrc) > 20
    })
    .await;
    assert_eq!(received(&alice.media, dave.config.video_ssrc), 0);

    // source-add: Alice is told, with Dave as the owner, and the bridge forwards the video.
    let add = video_update(Action::SourceAdd, &dave_sid, "dave", dave_video);
    let answer = dave.xmpp.request(focus_occupant(), add.to_element()).await;
    assert_result(&answer, "source-add");
    let (from, add) = alice.xmpp.next_jingle(Action::SourceAdd).await;
    assert_eq!(from, focus_occupant());
    assert_eq!(add.sid, alice.initiate.sid);
    // Under SSRCs the focus minted for it: one for the video, one for its RTX.
    let dave_camera = ssrcs(&add);
    assert_eq!(dave_camera.len(), 2, "{dave_camera:?}");
    assert!(dave_camera.iter().all(|ssrc| !dave_video.contains(ssrc)));
    for source in add
        .contents
        .iter()
        .filter_map(|content| content.description.as_ref())
        .flat_map(|description| &description.sources)
    {
        let info = source.extensions.get::<SsrcInfo>().unwrap();
        assert_eq!(info.map(|i| i.owner), Some(owner("dave")));
    }
    eventually("alice receives dave's video", || {
        received(&alice.media, dave_camera[0]) > 20
    })
    .await;

    // An SSRC Alice already sends is refused, and nothing reaches her.
    let stolen = video_update(
        Action::SourceAdd,
        &dave_sid,
        "dave",
        [alice.config.video_ssrc, 0x0bad_cafe],
    );
    let answer = dave
        .xmpp
        .request(focus_occupant(), stolen.to_element())
        .await;
    let (condition, _, text) = error_of(&answer).expect("a refused source-add");
    assert_eq!(condition, "BadRequest", "{text}");

    // source-remove: Alice is told, and the bridge stops forwarding.
    let remove = video_update(Action::SourceRemove, &dave_sid, "dave", dave_video);
    let answer = dave
        .xmpp
        .request(focus_occupant(), remove.to_element())
        .await;
    assert_result(&answer, "source-remove");
    let (_, remove) = alice.xmpp.next_jingle(Action::SourceRemove).await;
    assert_eq!(ssrcs(&remove), dave_camera);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = received(&alice.media, dave_camera[0]);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        received(&alice.media, dave_camera[0]),
        before,
        "the bridge still forwards a removed source"
    );
    alice.media.close().await;
    dave.media.close().await;
}

/// A `source-add` or `source-remove` of `user`'s screen share in three simulcast layers, each
/// with its RTX (SIM group, FID groups), as lib-jitsi-meet sends it.
fn simulcast_update(
    action: Action,
    sid: &str,
    user: &str,
    layers: [u32; 3],
    rtx: [u32; 3],
) -> Jingle {
    let mut description = RtpDescription::new("video");
    for ssrc in layers.into_iter().chain(rtx) {
        let mut source = Source::new(ssrc);
        source.name = Some(format!("{user}-v1"));
        source.video_type = Some("desktop".to_owned());
        source
            .parameters
            .push(Parameter::new("msid", format!("{user}-screen {user}-v1")));
        description.sources.push(source);
    }
    description.source_groups = vec![SourceGroup::new(GroupSemantics::Simulcast, layers.to_vec())];
    description.source_groups.extend(
        layers
            .into_iter()
            .zip(rtx)
            .map(|(layer, rtx)| SourceGroup::new(GroupSemantics::Fid, vec![layer, rtx])),
    );
    let mut content = Content::new("video");
    content.description = Some(description);
    let mut jingle = Jingle::new(action, sid);
    jingle.contents.push(content);
    jingle
}

#[tokio::test]
async fn a_simulcast_source_reaches_the_others_as_the_bridge_forwards_it() {
    if rerun_in_own_netns("a_simulcast_source_reaches_the_others_as_the_bridge_forwards_it") {
        return;
    }
    let mut stack = Stack::start("updates", &["alice", "dave"]);
    stack.start_focus(&[]);
    let mut alice = join_and_accept(ROOM, "alice", |_| {}).await;
    let mut dave = join_and_accept(ROOM, "dave", |_| {}).await;
    alice.xmpp.next_jingle(Action::SourceAdd).await;

    // Alice is told of one stream with its RTX, under SSRCs the focus minted (not a layer's),
    // described as Dave described the source.
    let dave_sid = dave.initiate.sid.clone();
    let (layers, rtx) = ([0x5100, 0x5101, 0x5102], [0x5200, 0x5201, 0x5202]);
    let add = simulcast_update(Action::SourceAdd, &dave_sid, "dave", layers, rtx);
    let answer = dave.xmpp.request(focus_occupant(), add.to_element()).await;
    assert_result(&answer, "source-add");
    let (_, add) = alice.xmpp.next_jingle(Action::SourceAdd).await;
    let shown = ssrcs(&add);
    assert_eq!(shown.len(), 2, "{shown:?}");
    assert!(shown
        .iter()
        .all(|ssrc| !layers.contains(ssrc) && !rtx.contains(ssrc)));
    let video = add.content("video").unwrap().description.as_ref().unwrap();
    assert_eq!(
        video.source_groups,
        [SourceGroup::new(GroupSemantics::Fid, shown.clone())]
    );
    for source in &video.sources {
        assert_eq!(source.name.as_deref(), Some("dave-v1"));
        assert_eq!(source.video_type.as_deref(), Some("desktop"));
        assert_eq!(source.parameter("msid"), Some("dave-screen dave-v1"));
        let info = source.extensions.get::<SsrcInfo>().unwrap();
        assert_eq!(info.map(|i| i.owner), Some(owner("dave")));
    }

    // Removing it takes away what Alice was told of.
    let remove = simulcast_update(Action::SourceRemove, &dave_sid, "dave", layers, rtx);
    let answer = dave
        .xmpp
        .request(focus_occupant(), remove.to_element())
        .await;
    assert_result(&answer, "source-remove");
    let (_, remove) = alice.xmpp.next_jingle(Action::SourceRemove).await;
    assert_eq!(ssrcs(&remove), shown);
    alice.media.close().await;
    dave.media.close().await;
}

#[tokio::test]
async fn session_terminate_expires_the_endpoint_and_the_room_goes_on() {
    if rerun_in_own_netns("session_terminate_expires_the_endpoint_and_the_room_goes_on") {
        return;
    }
    let mut stack = Stack::start("terminate", &["alice", "bob", "carol"]);
    stack.start_focus(&[]);
    let mut alice = join_and_accept(ROOM, "alice", |_| {}).await;
    let mut bob = join_and_accept(ROOM, "bob", |_| {}).await;
    alice.xmpp.next_jingle(Action::SourceAdd).await;
    let mut carol = join_and_accept(ROOM, "carol", |_| {}).await;
    for other in [&mut alice, &mut bob] {
        let (_, add) = other.xmpp.next_jingle(Action::SourceAdd).await;
        assert!(ssrcs(&add).contains(&carol.config.audio_ssrc));
    }
    stack
        .bridge_metric_becomes("tutti_bridge_endpoints", 3.0)
        .await;

    let terminate = Jingle::new(Action::SessionTerminate, carol.initiate.sid.clone());
    let answer = carol
        .xmpp
        .request(focus_occupant(), terminate.to_element())
        .await;
    assert_result(&answer, "session-terminate");
    for other in [&mut alice, &mut bob] {
        let (_, remove) = other.xmpp.next_jingle(Action::SourceRemove).await;
        let removed = ssrcs(&remove);
        assert!(removed.contains(&carol.config.audio_ssrc), "{removed:?}");
        assert_eq!(ssrcs_named(&remove, "carol-v0").len(), 2, "{removed:?}");
    }
    stack
        .bridge_metric_becomes("tutti_bridge_endpoints", 2.0)
        .await;
    // The session is gone: a second terminate names an unknown session.
    let answer = carol
        .xmpp
        .request(focus_occupant(), terminate.to_element())
        .await;
    let (condition, app, _) = error_of(&answer).expect("an error");
    assert_eq!(condition, "ItemNotFound");
    assert_eq!(app.as_deref(), Some(UNKNOWN_SESSION));

    // Carol is still in the room; Alice and Bob still hear each other.
    let (_, metrics) = stack.focus_http_get("/metrics").await;
    assert!(metrics.contains("tutti_focus_participants 3"), "{metrics}");
    assert!(
        metrics.contains("tutti_focus_jingle_sessions{state=\"active\"} 2"),
        "{metrics}"
    );
    let from_bob = received(&alice.media, bob.config.audio_ssrc);
    let from_alice = received(&bob.media, alice.config.audio_ssrc);
    eventually("alice and bob still receive each other's audio", || {
        received(&alice.media, bob.config.audio_ssrc) > from_bob + 20
            && received(&bob.media, alice.config.audio_ssrc) > from_alice + 20
    })
    .await;
    for joined in [alice, bob, carol] {
        joined.media.close().await;
    }
}

/// Bob accepts the new session `initiate` a restart got him: Alice gets his sources again and
/// media flows both ways through his new endpoint. Returns his new media participant.
async fn accept_new_session(
    alice: &mut Joined,
    bob: (&mut XmppClient, &ParticipantConfig),
    focus: &Jid,
    initiate: &Jingle,
) -> Participant {
    let (bob_xmpp, bob_config) = bob;
    let media = accept(bob_xmpp, focus, initiate, bob_config, |_| {}).await;
    let (_, add) = alice.xmpp.next_jingle(Action::SourceAdd).await;
    assert_eq!(add.sid, alice.initiate.sid);
    assert!(ssrcs(&add).contains(&bob_config.audio_ssrc));
    let from_bob = received(&alice.media, bob_config.audio_ssrc);
    eventually("media flows again both ways", || {
        received(&alice.media, bob_config.audio_ssrc) > from_bob + 20
            && received(&media, alice.config.audio_ssrc) > 20
    })
    .await;
    media
}

#[tokio::test]
async fn ice_failure_restarts_the_session_on_a_new_endpoint() {
    if rerun_in_own_netns("ice_failure_restarts_the_session_on_a_new_endpoint") {
        return;
    }
    let mut stack = Stack::start("restart", &["alice", "bob"]);
    stack.start_focus(&[]);
    let mut alice = join_and_accept(ROOM, "alice", |_| {}).await;
    let mut bob = join_and_accept(ROOM, "bob", |_| {}).await;
    let (_, _) = alice.xmpp.next_jingle(Action::SourceAdd).await;
    let old_sid = bob.initiate.sid.clone();
    let old_endpoint = bridge_session_id(&bob.initiate);
    // A report about another bridge session is stale: acknowledged, nothing restarts.
    let stale = ice_failed(&old_sid, "an-earlier-session");
    let answer = bob.xmpp.request(focus_occupant(), stale.to_element()).await;
    assert_result(&answer, "stale session-info");
    bob.xmpp
        .expect_none(Duration::from_millis(500), "a session-terminate", |s| {
            is_jingle(s, Action::SessionTerminate)
        })
        .await;

    let answer = bob
        .xmpp
        .request(
            focus_occupant(),
            ice_failed(&old_sid, &old_endpoint).to_element(),
        )
        .await;
    assert_result(&answer, "session-info with ice-state failed");
    let (from, terminate) = bob.xmpp.next_jingle(Action::SessionTerminate).await;
    assert_eq!(from, focus_occupant());
    assert_eq!(terminate.sid, old_sid);
    let reason = terminate.reason.expect("a reason");
    assert_eq!(
        reason.condition,
        ReasonCondition::Defined(ReasonKind::Success)
    );
    let (_, remove) = alice.xmpp.next_jingle(Action::SourceRemove).await;
    assert_eq!(remove.sid, alice.initiate.sid);
    assert!(ssrcs(&remove).contains(&bob.config.audio_ssrc));

    // A new session on a new endpoint, offering Alice's sources again.
    let (from, initiate) = bob.xmpp.next_jingle(Action::SessionInitiate).await;
    assert_eq!(from, focus_occupant());
    assert_ne!(initiate.sid, old_sid);
    assert_ne!(bridge_session_id(&initiate), old_endpoint);
    assert!(ssrcs(&initiate).contains(&alice.config.audio_ssrc));
    // The old session is gone.
    let answer = bob
        .xmpp
        .request(
            focus_occupant(),
            ice_failed(&old_sid, &old_endpoint).to_element(),
        )
        .await;
    assert_eq!(
        error_of(&answer)
            .map(|(condition, _, _)| condition)
            .as_deref(),
        Some("ItemNotFound")
    );

    bob.media.close().await;
    let media =
        accept_new_session(&mut alice, (&mut bob.xmpp, &bob.config), &from, &initiate).await;
    // The old endpoint was expired: Alice's and Bob's new one are all the bridge has.
    stack
        .bridge_metric_becomes("tutti_bridge_endpoints", 2.0)
        .await;
    alice.media.close().await;
    media.close().await;
}

/// lib-jitsi-meet's default reaction to an ICE failure: a session-terminate asking for a restart
/// (`<bridge-session id restart='true'>`), which it only sends to a focus whose presence says
/// `support-terminate-restart`. Also: restarts are limited to three a minute.
#[tokio::test]
async fn a_session_terminate_asking_for_a_restart_gets_a_new_session() {
    if rerun_in_own_netns("a_session_terminate_asking_for_a_restart_gets_a_new_session") {
        return;
    }
    let mut stack = Stack::start("terminate-restart", &["alice", "bob"]);
    stack.start_focus(&[]);
    let mut alice = join_and_accept(ROOM, "alice", |_| {}).await;
    let mut bob = join_and_accept(ROOM, "bob", |_| {}).await;
    alice.xmpp.next_jingle(Action::SourceAdd).await;

    let supports_restart = bob
        .xmpp
        .wait_for("the focus's conference properties", |stanza| match stanza {
            Stanza::Presence(presence) if presence.from == Some(focus_occupant()) => presence
                .payloads
                .iter()
                .filter(|p| p.is("conference-properties", tutti_focus::ns::JITSI_FOCUS))
                .flat_map(|p| p.children())
                .find(|p| p.attr("key") == Some("support-terminate-restart"))
                .map(|p| p.attr("value") == Some("true")),
            _ => None,
        })
        .await;
    assert!(supports_restart);

    // A restart of the current bridge session: the session ends, a new one starts on a new
    // endpoint. (A request naming an earlier bridge session restarts nothing: unit-tested.)
    let old = bob.initiate.clone();
    let old_endpoint = bridge_session_id(&old);
    let answer = bob
        .xmpp
        .request(
            focus_occupant(),
            restart_request(&old.sid, &old_endpoint).to_element(),
        )
        .await;
    assert_result(&answer, "session-terminate with restart");
    let (_, remove) = alice.xmpp.next_jingle(Action::SourceRemove).await;
    assert!(ssrcs(&remove).contains(&bob.config.audio_ssrc));
    let (from, initiate) = bob.xmpp.next_jingle(Action::SessionInitiate).await;
    assert_eq!(from, focus_occupant());
    assert_ne!(initiate.sid, old.sid);
    assert_ne!(bridge_session_id(&initiate), old_endpoint);
    assert!(ssrcs(&initiate).contains(&alice.config.audio_ssrc));

    bob.media.close().await;
    let media =
        accept_new_session(&mut alice, (&mut bob.xmpp, &bob.config), &from, &initiate).await;
    stack
        .bridge_metric_becomes("tutti_bridge_endpoints", 2.0)
        .await;
    media.close().await;

    // Two more restarts within the minute are granted; the fourth ends the session only.
    let mut current = initiate;
    for _ in 0..2 {
        let endpoint = bridge_session_id(&current);
        let answer = bob
            .xmpp
            .request(
                focus_occupant(),
                restart_request(&current.sid, &endpoint).to_element(),
            )
            .await;
        assert_result(&answer, "a further restart");
        let (_, initiate) = bob.xmpp.next_jingle(Action::SessionInitiate).await;
        assert_ne!(initiate.sid, current.sid);
        current = initiate;
    }
    let endpoint = bridge_session_id(&current);
    let answer = bob
        .xmpp
        .request(
            focus_occupant(),
            restart_request(&current.sid, &endpoint).to_element(),
        )
        .await;
    assert_result(&answer, "the session-terminate over the limit");
    bob.xmpp
        .expect_none(Duration::from_secs(1), "a session-initiate", |s| {
            is_jingle(s, Action::SessionInitiate)
        })
        .await;
    let (_, metrics) = stack.focus_http_get("/metrics").await;
    assert!(
        metrics.contains("tutti_focus_errors_total{kind=\"restart_limited\"} 1"),
        "{metrics}"
    );
    stack
        .bridge_metric_becomes("tutti_bridge_endpoints", 1.0)
        .await;
    alice.media.close().await;
}
