//! The focus on ejabberd (Debian's 23.01) instead of Prosody: it logs in, serves the conference
//! request, joins the room and configures it to show real JIDs (ejabberd's rooms are
//! semi-anonymous by default), and a call of two with media, source-add and source-remove and
//! a Jingle error reply works as on Prosody (focus/tests/conference.rs).

mod support;

use std::time::{Duration, Instant};

use support::*;
use tokio_xmpp::parsers::iq::Iq;
use tokio_xmpp::parsers::stanza_error::DefinedCondition;
use tokio_xmpp::Stanza;
use tutti_focus::jingle::{Action, Jingle};
use tutti_participant::{Participant, ParticipantConfig};

const ROOM: &str = "ejroom@conference.localhost";

/// A participant that asked for the conference, joined the room, accepted the focus's offer and
/// connected its media to the bridge.
struct Joined {
    xmpp: XmppClient,
    media: Participant,
    config: ParticipantConfig,
    sid: String,
    initiate: Jingle,
}

async fn join_and_accept(user: &str) -> Joined {
    let mut xmpp = XmppClient::connect(user).await;
    let answer = xmpp.conference_request(ROOM).await;
    assert_eq!(answer.attr("ready"), Some("true"));
    xmpp.join(ROOM, user).await;
    // ejabberd's rooms are semi-anonymous by default: the focus's room configuration shows
    // real JIDs (lib-jitsi-meet recognises the focus by its own).
    let focus = jid::Jid::new(&format!("{ROOM}/focus")).unwrap();
    let real_jid = xmpp
        .wait_for("the focus's presence", |stanza| match stanza {
            Stanza::Presence(presence) if presence.from.as_ref() == Some(&focus) => Some(
                presence
                    .payloads
                    .iter()
                    .filter(|p| p.is("x", "http://jabber.org/protocol/muc#user"))
                    .flat_map(|x| x.children())
                    .find_map(|item| item.attr("jid").map(str::to_owned)),
            ),
            _ => None,
        })
        .await;
    assert_eq!(real_jid.as_deref(), Some("focus@localhost/focus"));
    let (from, initiate) = xmpp.next_jingle(Action::SessionInitiate).await;
    assert_eq!(from.to_string(), format!("{ROOM}/focus"));
    let config = ParticipantConfig::new(user);
    let media = Participant::bind(config.clone())
        .await
        .expect("binding the participant");
    let accept = session_accept(&initiate.sid, &config, &media.local_description());
    let answer = xmpp.request(from, accept.to_element()).await;
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
        initiate,
    }
}

fn received(participant: &Participant, ssrc: u32) -> u64 {
    participant
        .stats()
        .received
        .get(&ssrc)
        .map_or(0, |s| s.packets)
}

#[tokio::test]
async fn a_call_on_ejabberd() {
    if rerun_in_own_netns_with_ejabberd("a_call_on_ejabberd") {
        return;
    }
    let started = Instant::now();
    let mut stack = Stack::start_on_ejabberd("ejabberd", &["alice", "bob"]);
    eprintln!("ejabberd up in {:?}", started.elapsed());
    stack.start_focus(&[]);
    let (status, _) = stack.focus_http_get("/health").await;
    assert!(status.contains("200"), "{status}");

    let mut alice = join_and_accept("alice").await;
    let mut bob = join_and_accept("bob").await;
    assert!(ssrcs(&bob.initiate).contains(&alice.config.audio_ssrc));
    let (_, add) = alice.xmpp.next_jingle(Action::SourceAdd).await;
    assert!(ssrcs(&add).contains(&bob.config.audio_ssrc));

    // Media both ways through the bridge.
    let deadline = Instant::now() + Duration::from_secs(10);
    while received(&alice.media, bob.config.audio_ssrc) == 0
        || received(&bob.media, alice.config.audio_ssrc) == 0
    {
        assert!(Instant::now() < deadline, "no audio through the bridge");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // A Jingle error reply: a session the focus does not know.
    let focus = jid::Jid::new(&format!("{ROOM}/focus")).unwrap();
    let stray = Jingle::new(Action::TransportInfo, "no-such-session");
    match bob.xmpp.request(focus.clone(), stray.to_element()).await {
        Iq::Error { error, .. } => {
            assert_eq!(error.defined_condition, DefinedCondition::ItemNotFound)
        }
        other => panic!("a stray transport-info was not refused: {other:?}"),
    }
    // Bob's session is unaffected: an (empty) transport-info of it is taken.
    let own = Jingle::new(Action::TransportInfo, &bob.sid);
    let answer = bob.xmpp.request(focus, own.to_element()).await;
    assert!(matches!(answer, Iq::Result { .. }), "{answer:?}");

    // Alice leaves: Bob hears of it as a source-remove.
    alice.xmpp.leave(ROOM, "alice").await;
    let (_, remove) = bob.xmpp.next_jingle(Action::SourceRemove).await;
    assert!(ssrcs(&remove).contains(&alice.config.audio_ssrc));
    drop(alice.media);
    eprintln!("the call on ejabberd took {:?}", started.elapsed());
}
