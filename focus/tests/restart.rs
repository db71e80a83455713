//! Restarts with live calls, against the real Prosody, bridge and focus binaries and
//! participants with real media:
//!
//! - a focus killed (`kill -9`), or stopped with SIGTERM (which leaves the conference on the
//!   bridge, media going on), and started again finds the conference the first one left on
//!   the bridge (`ListConferences`), joins its room, ends every participant's old session
//!   (`session-terminate` of the sid it finds there) and gives each a new one on a new
//!   conference; the old conference is expired, so the bridge's endpoints are the
//!   participants, and media flows again;
//! - a bridge killed and started again at the same address (a new process: a new instance in
//!   its status) has lost its conferences: the focus gives their participants new sessions
//!   at once, there (the pool's only bridge);
//! - an endpoint the bridge expired by itself is no failure when the focus expires it too, and
//!   an expiry that cannot reach a frozen bridge is carried out when it thaws;
//! - what the XMPP server does (issue 22): a second focus logging in as the same account and
//!   resource gets the first one a `<conflict/>` stream error, after which the first exits
//!   (status 3) and the second takes the call over, without either kicking the other out
//!   again; Prosody stopped (a `system-shutdown` stream error to everyone) and started again
//!   mid-call: the focus logs in again by itself and the participants, back in the room,
//!   get new sessions with media.

mod support;

use std::time::{Duration, Instant};

use jid::Jid;
use support::*;
use tutti_focus::jingle::{Action, Jingle, ReasonCondition, ReasonKind};
use tutti_participant::Participant;

const ROOM: &str = "call@conference.localhost";

fn focus_occupant() -> Jid {
    Jid::new(&format!("{ROOM}/focus")).unwrap()
}

/// The focus's error counts that are not zero.
fn errors(metrics: &str) -> Vec<&str> {
    metrics
        .lines()
        .filter(|line| line.starts_with("tutti_focus_errors_total{") && !line.ends_with(" 0"))
        .collect()
}

/// The participants' sessions end and new ones start within this of the new focus's start.
const TAKEOVER_BOUND: Duration = Duration::from_secs(5);

#[tokio::test]
async fn a_restarted_focus_takes_over_the_calls_it_finds_on_the_bridge() {
    if rerun_in_own_netns("a_restarted_focus_takes_over_the_calls_it_finds_on_the_bridge") {
        return;
    }
    // A crash: the focus's occupant leaves the room, the bridge keeps the conference.
    takeover("takeover", |stack| stack.focus = None).await;
}

#[tokio::test]
async fn a_focus_stopped_with_sigterm_hands_its_calls_over() {
    if rerun_in_own_netns("a_focus_stopped_with_sigterm_hands_its_calls_over") {
        return;
    }
    // A deployment's restart: the focus leaves its rooms and leaves the conference on the
    // bridge, with media going on, for the next focus.
    takeover("handover", |stack| stack.stop_focus_gracefully()).await;
}

/// A call of two whose focus `stop` stops; then a new focus takes it over.
async fn takeover(name: &str, stop: impl FnOnce(&mut Stack)) {
    let mut stack = Stack::start(name, &["alice", "bob"]);
    stack.start_focus(&[]);
    let (people, bob_camera) = call_of_two(&stack).await;

    stop(&mut stack);
    // Nothing is expired: the call goes on through the bridge without a focus.
    stack
        .bridge_metric_becomes("tutti_bridge_endpoints", 2.0)
        .await;
    let before = received(&people[0].media, bob_camera);
    eventually("media flowing without a focus", || {
        received(&people[0].media, bob_camera) > before
    })
    .await;
    let restarted = Instant::now();
    stack.start_focus(&[]);
    reinvited(&stack, people, restarted, name).await;
}

/// The participants of a call taken over by a new focus (started at `restarted`): each one's
/// old session ends and a new one starts, media flows again, and the bridge and the focus hold
/// exactly the call.
async fn reinvited(stack: &Stack, people: Vec<Joined>, restarted: Instant, name: &str) {
    let mut rejoined = Vec::new();
    for person in people {
        let Joined {
            mut xmpp,
            media,
            config,
            initiate,
        } = person;
        // The old session (the new focus knows its sid from the endpoint on the bridge) ends,
        // then a new one starts, from the room's focus as before.
        let (from, terminate) = xmpp.next_jingle(Action::SessionTerminate).await;
        assert_eq!(from, focus_occupant());
        assert_eq!(terminate.sid, initiate.sid);
        assert_eq!(
            terminate.reason.map(|reason| reason.condition),
            Some(ReasonCondition::Defined(ReasonKind::Success))
        );
        let (from, new) = xmpp.next_jingle(Action::SessionInitiate).await;
        assert_eq!(from, focus_occupant());
        assert_ne!(new.sid, initiate.sid);
        let took = restarted.elapsed();
        assert!(
            took < TAKEOVER_BOUND,
            "{} re-invited after {took:?}",
            config.name
        );
        media.close().await;
        let media = accept(&mut xmpp, &from, &new, &config, |_| {}).await;
        rejoined.push((xmpp, media, new));
    }
    // Each hears of the other's sources on its new session (in its offer, or in a source-add
    // once the other has accepted), and media flows again.
    let again = the_call_is_back(stack, rejoined, restarted, name, "the new focus's start").await;
    // A takeover counts no error (a restarted XMPP server may: a stanza bounced while it was
    // down).
    let (_, metrics) = stack.focus_http_get("/metrics").await;
    assert_eq!(errors(&metrics), Vec::<&str>::new());
    leave(again).await;
}

/// Media flows both ways on the new sessions of the call `what` (printed with the milliseconds
/// since `since`, said as `after`); the old conference is gone, so the bridge holds exactly the call (one conference,
/// the two participants' endpoints) and the focus the room and its two participants. Gives the
/// sessions back.
async fn the_call_is_back(
    stack: &Stack,
    mut again: Vec<(XmppClient, Participant, Jingle)>,
    since: Instant,
    what: &str,
    after: &str,
) -> Vec<(XmppClient, Participant, Jingle)> {
    media_flows_both_ways(&mut again).await;
    let took = since.elapsed().as_millis();
    println!("{what}: media flows again {took} ms after {after}");
    stack
        .bridge_metric_becomes("tutti_bridge_conferences", 1.0)
        .await;
    stack
        .bridge_metric_becomes("tutti_bridge_endpoints", 2.0)
        .await;
    stack
        .focus_metric_becomes("tutti_focus_participants 2")
        .await;
    stack.focus_metric_becomes("tutti_focus_rooms 1").await;
    again
}

/// The participants leave.
async fn leave(again: Vec<(XmppClient, Participant, Jingle)>) {
    for (_, media, _) in again {
        media.close().await;
    }
}

#[tokio::test]
async fn a_restarted_bridge_gets_its_calls_back() {
    if rerun_in_own_netns("a_restarted_bridge_gets_its_calls_back") {
        return;
    }
    let mut stack = Stack::start("bridgerestart", &["alice", "bob"]);
    stack.start_focus(&[]);
    let mut people = Vec::new();
    for user in ["alice", "bob"] {
        people.push(join_and_accept(ROOM, user, |_| {}).await);
    }
    people[0].xmpp.next_jingle(Action::SourceAdd).await;
    stack
        .bridge_metric_becomes("tutti_bridge_endpoints", 2.0)
        .await;

    let restarted = Instant::now();
    stack.restart_bridge();
    let mut again = Vec::new();
    for person in people {
        let Joined {
            mut xmpp,
            media,
            config,
            initiate,
        } = person;
        let (_, terminate) = xmpp.next_jingle(Action::SessionTerminate).await;
        assert_eq!(terminate.sid, initiate.sid);
        let (from, new) = xmpp.next_jingle(Action::SessionInitiate).await;
        let took = restarted.elapsed();
        assert!(
            took < TAKEOVER_BOUND,
            "{} re-invited after {took:?}",
            config.name
        );
        media.close().await;
        let media = accept(&mut xmpp, &from, &new, &config, |_| {}).await;
        again.push((xmpp, media, new));
    }
    leave(the_call_is_back(&stack, again, restarted, "a restarted bridge", "the kill").await).await;
}

#[tokio::test]
async fn a_second_focus_on_the_same_resource_replaces_the_first_without_flapping() {
    if rerun_in_own_netns("a_second_focus_on_the_same_resource_replaces_the_first_without_flapping")
    {
        return;
    }
    let mut stack = Stack::start("replaced", &["alice", "bob"]);
    stack.start_focus(&[]);
    let (people, _) = call_of_two(&stack).await;
    let mut first = stack.focus.take().expect("the first focus");
    let replaced = Instant::now();
    // The same account, resource `focus`: Prosody (conflict_resolve = kick_old, its default)
    // closes the first one's stream with <conflict/>.
    stack.start_focus(&[]);
    let deadline = Instant::now() + Duration::from_secs(5);
    let status = loop {
        if let Some(status) = first.0.try_wait().expect("waiting for the first focus") {
            break status;
        }
        assert!(Instant::now() < deadline, "the replaced focus did not exit");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    println!(
        "the replaced focus exited {} ms after the second one started",
        replaced.elapsed().as_millis()
    );
    assert_eq!(status.code(), Some(3), "{status}");
    eventually("the replaced focus to say why", || {
        stack.focus_logged("another focus logged in as focus@localhost/focus")
    })
    .await;
    reinvited(&stack, people, replaced, "replaced").await;
    // No flapping: the second focus keeps its stream (it would say so on the next kick).
    for _ in 0..30 {
        stack
            .focus_metric_becomes("tutti_focus_xmpp_connected 1")
            .await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let kicks = stack
        .focus_log
        .lock()
        .unwrap()
        .iter()
        .filter(|line| line.contains("sent a stream error"))
        .count();
    assert_eq!(kicks, 1, "only the first focus was told <conflict/>");
}

#[tokio::test]
async fn the_xmpp_server_restarting_mid_call_loses_nobody() {
    if rerun_in_own_netns("the_xmpp_server_restarting_mid_call_loses_nobody") {
        return;
    }
    let mut stack = Stack::start("serverrestart", &["alice", "bob"]);
    stack.start_focus(&[]);
    let (people, _) = call_of_two(&stack).await;
    let restarted = Instant::now();
    stack.prosody().shut_down().expect("stopping prosody");
    stack
        .focus_health_becomes("503", Duration::from_secs(5))
        .await;
    assert!(stack.focus_logged("system-shutdown"));
    stack.start_prosody_again();
    // Every client logs in again by itself; the participants, as lib-jitsi-meet does, ask the
    // focus for the room again (lib-jitsi-meet repeats the request until the focus is back:
    // here, once it is) and join it; each gets a new session.
    stack
        .focus_health_becomes("200", Duration::from_secs(20))
        .await;
    let mut again = Vec::new();
    for person in people {
        let Joined {
            mut xmpp,
            media,
            config,
            ..
        } = person;
        media.close().await;
        xmpp.reconnected(Duration::from_secs(20)).await;
        let answer = xmpp.conference_request(ROOM).await;
        assert_eq!(answer.attr("ready"), Some("true"));
        xmpp.join(ROOM, &config.name).await;
        let (from, new) = xmpp.next_jingle(Action::SessionInitiate).await;
        assert_eq!(from, focus_occupant());
        let media = accept(&mut xmpp, &from, &new, &config, |_| {}).await;
        again.push((xmpp, media, new));
    }
    // The sessions of before were expired.
    leave(
        the_call_is_back(
            &stack,
            again,
            restarted,
            "the XMPP server restarted",
            "its SIGTERM",
        )
        .await,
    )
    .await;
}

#[tokio::test]
async fn sigterm_stops_the_focus_promptly_even_with_the_server_gone() {
    if rerun_in_own_netns("sigterm_stops_the_focus_promptly_even_with_the_server_gone") {
        return;
    }
    let mut stack = Stack::start("stopdown", &["alice", "bob"]);
    stack.start_focus(&[]);
    let (people, _) = call_of_two(&stack).await;
    // The server gone (the focus reconnecting with back-off), the bridge frozen: neither may
    // hold the stop up beyond its bound of 2 s.
    stack.stop_prosody();
    stack
        .focus_health_becomes("503", Duration::from_secs(5))
        .await;
    stack.pause_bridge();
    let stopped = Instant::now();
    stack.stop_focus_gracefully();
    let took = stopped.elapsed();
    println!("the focus exited {} ms after SIGTERM", took.as_millis());
    assert!(took < Duration::from_secs(3), "took {took:?}");
    stack.resume_bridge();
    for person in people {
        person.media.close().await;
    }
}

/// Alice and Bob in a call with media, each told of the other's sources; and Bob's camera's
/// SSRC at Alice.
async fn call_of_two(stack: &Stack) -> (Vec<Joined>, u32) {
    let mut people = Vec::new();
    for user in ["alice", "bob"] {
        people.push(join_and_accept(ROOM, user, |_| {}).await);
    }
    // Alice hears of Bob's sources on her first session (consumed here: not to be mistaken
    // for what her next session brings).
    let (_, added) = people[0].xmpp.next_jingle(Action::SourceAdd).await;
    let bob_camera = camera_of(&added, "bob");
    stack
        .bridge_metric_becomes("tutti_bridge_endpoints", 2.0)
        .await;
    eventually("media flowing", || {
        received(&people[0].media, bob_camera) > 0
    })
    .await;
    (people, bob_camera)
}

/// Alice (first) and Bob (second), on their new sessions, each learn the other's camera there
/// (in the offer, or in a source-add once the other has accepted), and media flows both ways.
async fn media_flows_both_ways(again: &mut [(XmppClient, Participant, Jingle)]) {
    let [alice, bob] = again else {
        panic!("alice and bob, {} sessions", again.len());
    };
    let bob_camera = camera_on_new_session(&mut alice.0, &alice.2, "bob").await;
    let alice_camera = camera_on_new_session(&mut bob.0, &bob.2, "alice").await;
    eventually("media flows both ways again", || {
        received(&alice.1, bob_camera) > 0 && received(&bob.1, alice_camera) > 0
    })
    .await;
}

/// The SSRC `user`'s camera reaches this participant under on its new session.
async fn camera_on_new_session(xmpp: &mut XmppClient, initiate: &Jingle, user: &str) -> u32 {
    if !ssrcs_named(initiate, &format!("{user}-v0")).is_empty() {
        return camera_of(initiate, user);
    }
    let (_, added) = xmpp.next_jingle(Action::SourceAdd).await;
    camera_of(&added, user)
}

#[tokio::test]
async fn an_expiry_the_frozen_bridge_missed_is_carried_out_when_it_thaws() {
    if rerun_in_own_netns("an_expiry_the_frozen_bridge_missed_is_carried_out_when_it_thaws") {
        return;
    }
    let mut stack = Stack::start("thaw", &["alice", "bob"]);
    stack.start_focus(&[("TUTTI_FOCUS_BRIDGE_TIMEOUT_SECS", "1")]);
    let mut alice = join_and_accept(ROOM, "alice", |_| {}).await;
    let bob = join_and_accept(ROOM, "bob", |_| {}).await;
    stack
        .bridge_metric_becomes("tutti_bridge_endpoints", 2.0)
        .await;
    // Frozen long enough to be failed (1.5 s without a status), then Alice leaves: her
    // endpoint's expiry cannot reach the bridge.
    stack.pause_bridge();
    stack
        .focus_metric_becomes("tutti_focus_bridges_alive 0")
        .await;
    alice.xmpp.leave(ROOM, "alice").await;
    alice.media.close().await;
    stack
        .focus_metric_becomes("tutti_focus_participants 1")
        .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stack.resume_bridge();
    // Carried out once the bridge is heard again (its own expiry of a silent endpoint would
    // take a minute).
    stack
        .bridge_metric_becomes("tutti_bridge_endpoints", 1.0)
        .await;
    let (_, metrics) = stack.focus_http_get("/metrics").await;
    assert_eq!(errors(&metrics), Vec::<&str>::new());
    bob.media.close().await;
}

#[tokio::test]
async fn an_endpoint_the_bridge_expired_itself_is_no_error_to_expire() {
    if rerun_in_own_netns("an_endpoint_the_bridge_expired_itself_is_no_error_to_expire") {
        return;
    }
    let mut stack = Stack::start_with_bridge(
        "expiryrace",
        &["alice"],
        &[("TUTTI_BRIDGE_ENDPOINT_EXPIRY_SECS", "1")],
    );
    stack.start_focus(&[]);
    let mut alice = XmppClient::connect("alice").await;
    alice.conference_request(ROOM).await;
    alice.join(ROOM, "alice").await;
    // Offered an endpoint she never answers for: the bridge expires it by itself.
    alice.next_jingle(Action::SessionInitiate).await;
    stack
        .bridge_metric_becomes("tutti_bridge_endpoints_expired_silent_total", 1.0)
        .await;
    stack
        .bridge_metric_becomes("tutti_bridge_endpoints", 0.0)
        .await;
    // Her leaving expires it again (NOT_FOUND): nothing failed.
    alice.leave(ROOM, "alice").await;
    stack.focus_metric_becomes("tutti_focus_rooms 0").await;
    stack
        .bridge_metric_becomes("tutti_bridge_conferences", 0.0)
        .await;
    let (_, metrics) = stack.focus_http_get("/metrics").await;
    assert_eq!(errors(&metrics), Vec::<&str>::new());
}
