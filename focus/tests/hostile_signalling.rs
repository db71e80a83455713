//! Hostile participants over XMPP and the bridge channel, end to end (issue 22): a real
//! Prosody, bridge and focus in the test's own network namespace. While alice and bob hold a
//! call (measured against a baseline window, as in hostile_media.rs), mallory, a participant of
//! the call, sends thousands of junk source-adds and Jingle requests for sessions that do not
//! exist, stanzas close to Prosody's 256 KiB limit (`c2s_stanza_size_limit`), nested XML, and
//! malformed bridge-channel JSON as fast as it can.

mod support;

use std::time::{Duration, Instant};

use futures::SinkExt;
use jid::Jid;
use minidom::Element;
use support::*;
use tokio_tungstenite::tungstenite::Message;
use tokio_xmpp::parsers::iq::Iq;
use tutti_focus::jingle::Action;

const ROOM: &str = "storm@conference.localhost";
const JINGLE: &str = "urn:xmpp:jingle:1";
const RTP: &str = "urn:xmpp:jingle:apps:rtp:1";
const SSMA: &str = "urn:xmpp:jingle:apps:rtp:ssma:0";
/// Prosody's default `c2s_stanza_size_limit`.
const STANZA_LIMIT: usize = 256 * 1024;
/// Levels of the nested stanzas the focus is sent.
const NESTING: usize = 1_000;

/// A Jingle request of `action` for session `sid` whose content carries `junk`.
fn jingle(action: &str, sid: &str, junk: Vec<Element>) -> Element {
    let description = Element::builder("description", RTP)
        .attr(rxml::xml_ncname!("media").into(), "video")
        .append_all(junk)
        .build();
    let content = Element::builder("content", JINGLE)
        .attr(rxml::xml_ncname!("creator").into(), "responder")
        .attr(rxml::xml_ncname!("name").into(), "video")
        .append(description)
        .build();
    Element::builder("jingle", JINGLE)
        .attr(rxml::xml_ncname!("action").into(), action)
        .attr(rxml::xml_ncname!("sid").into(), sid)
        .append(content)
        .build()
}

fn source(ssrc: &str) -> Element {
    Element::builder("source", SSMA)
        .attr(rxml::xml_ncname!("ssrc").into(), ssrc)
        .build()
}

/// The `i`-th junk source-add: too many sources, SSRCs that are not numbers, someone else's
/// SSRC, unknown elements.
fn junk_source_add(sid: &str, i: usize, stolen: u32) -> Element {
    let junk = match i % 4 {
        0 => (0..25).map(|n| source(&(70_000 + n).to_string())).collect(),
        1 => vec![source("not-a-number")],
        2 => vec![source(&stolen.to_string())],
        _ => vec![Element::builder("junk", "urn:example:junk")
            .append(format!("junk {i}"))
            .build()],
    };
    jingle("source-add", sid, junk)
}

/// `<x><x>…</x></x>`, `depth` levels, built without recursion.
fn nested(depth: usize) -> Element {
    let mut element = Element::bare("x", "urn:example:deep");
    for _ in 1..depth {
        element = Element::builder("x", "urn:example:deep")
            .append(element)
            .build();
    }
    element
}

fn set(to: &Jid, id: String, payload: Element) -> Iq {
    Iq::Set {
        from: None,
        to: Some(to.clone()),
        id,
        payload,
    }
}

/// The focus's `tutti_focus_errors_total` of `kind`.
async fn focus_errors(stack: &Stack, kind: &str) -> f64 {
    stack
        .focus_metric(&format!("tutti_focus_errors_total{{kind=\"{kind}\"}}"))
        .await
        .unwrap_or(0.0)
}

async fn channel_messages(stack: &Stack, result: &str) -> f64 {
    stack
        .bridge_metric(&format!(
            "tutti_bridge_channel_messages_total{{result=\"{result}\"}}"
        ))
        .await
        .unwrap_or(0.0)
}

/// Mallory: on a thread and a runtime of its own, with big stacks (writing and dropping the
/// nested stanzas recurses once per level, and the focus is what is under test, not the test
/// client), so that its work in this process does not hold up alice's and bob's media tasks.
/// Joins, says so on `joined`, waits for `go`, storms, and collects every answer.
/// Returns how long the storm took, to its last answer.
fn mallory(
    joined: std::sync::mpsc::Sender<()>,
    go: std::sync::mpsc::Receiver<()>,
    stolen: u32,
) -> Duration {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_stack_size(256 << 20)
        .enable_all()
        .build()
        .unwrap()
        .block_on(async move {
            tokio::spawn(async move {
                let mallory = join_and_accept(ROOM, "mallory", |_| {}).await;
                joined.send(()).unwrap();
                go.recv().unwrap();
                storm(mallory, stolen).await
            })
            .await
        })
        .unwrap()
}

async fn storm(mallory: Joined, stolen: u32) -> Duration {
    let focus = Jid::new(&format!("{ROOM}/focus")).unwrap();
    let sid = mallory.initiate.sid.clone();
    let mut xmpp = mallory.xmpp;
    let started = Instant::now();
    let (mut channel, _) = tokio_tungstenite::connect_async(&bridge_channel_url(&mallory.initiate))
        .await
        .expect("mallory's bridge channel opens");
    for i in 0..5_000 {
        let text = match i % 3 {
            0 => "{not json".to_owned(),
            1 => r#"{"colibriClass":5}"#.to_owned(),
            _ => format!(r#"{{"colibriClass":"EndpointMessage","to":{i}}}"#),
        };
        channel.send(Message::text(text)).await.unwrap();
    }
    let json_done = started.elapsed();
    for i in 0..2_000 {
        xmpp.send(set(
            &focus,
            format!("add-{i}"),
            junk_source_add(&sid, i, stolen),
        ))
        .await;
        let unknown = jingle("source-remove", &format!("nobody-{i}"), vec![source("1")]);
        xmpp.send(set(&focus, format!("unknown-{i}"), unknown))
            .await;
    }
    let big = "x".repeat(STANZA_LIMIT - 8 * 1024);
    for i in 0..20 {
        let junk = Element::builder("junk", "urn:example:junk")
            .append(big.clone())
            .build();
        xmpp.send(set(
            &focus,
            format!("big-{i}"),
            jingle("source-add", &sid, vec![junk]),
        ))
        .await;
    }
    for i in 0..5 {
        xmpp.send(set(
            &focus,
            format!("deep-{i}"),
            jingle("source-add", &sid, vec![nested(NESTING)]),
        ))
        .await;
    }
    eprintln!(
        "storm sent in {:?} (5,000 bridge-channel frames in {json_done:?})",
        started.elapsed()
    );
    // Every request is answered.
    let ids = (0..2_000)
        .flat_map(|i| [format!("add-{i}"), format!("unknown-{i}")])
        .chain((0..20).map(|i| format!("big-{i}")))
        .chain((0..5).map(|i| format!("deep-{i}")));
    for id in ids {
        answer(&mut xmpp, &id).await;
    }
    eprintln!("every answer {:?} after the storm began", started.elapsed());
    drop(channel);
    started.elapsed()
}

/// Waits for the answer (result or error) to the request `id`.
async fn answer(xmpp: &mut XmppClient, id: &str) {
    xmpp.wait_for("an answer to every request", |stanza| match stanza {
        tokio_xmpp::Stanza::Iq(iq @ (Iq::Result { .. } | Iq::Error { .. })) if iq.id() == id => {
            Some(())
        }
        _ => None,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_participant_costs_the_others_nothing_over_xmpp_and_the_bridge_channel() {
    if rerun_in_own_netns(
        "a_hostile_participant_costs_the_others_nothing_over_xmpp_and_the_bridge_channel",
    ) {
        return;
    }
    let mut stack = Stack::start("hostile-signalling", &["alice", "bob", "carol", "mallory"]);
    stack.start_focus(&[]);
    let (alice, bob, alice_camera, bob_camera) = call_of_two(ROOM).await;
    let watched = Watched::call_of_two(&alice, &bob, alice_camera, bob_camera);
    let (joined, mallory_joined) = std::sync::mpsc::channel();
    let (go, storm_go) = std::sync::mpsc::channel();
    let stolen = alice.config.audio_ssrc;
    let mallory = std::thread::spawn(move || mallory(joined, storm_go, stolen));
    tokio::task::spawn_blocking(move || mallory_joined.recv())
        .await
        .unwrap()
        .expect("mallory joined");
    let baseline = watched.baseline().await;
    let errors_before = focus_errors(&stack, "rate_limited").await;

    // The storm, while alice's and bob's media is measured.
    go.send(()).unwrap();
    let during = watched.window().await;
    watched.assert_unharmed("mallory's storm", &baseline, &during);
    let took = tokio::task::spawn_blocking(move || mallory.join())
        .await
        .unwrap()
        .expect("mallory's storm and every answer to it");

    // Of the 4,025 requests, all but a second's worth and 20 a second meanwhile were refused
    // for the rate; the focus stayed up, and honest signalling goes on.
    let limited = focus_errors(&stack, "rate_limited").await - errors_before;
    let allowed = 20.0 * (took.as_secs_f64() + 1.0);
    eprintln!("rate-limited Jingle requests: {limited} (at most {allowed:.0} allowed)");
    assert!(limited >= 4_025.0 - allowed, "rate-limited: {limited}");
    let (status, _) = stack.focus_http_get("/health").await;
    assert!(status.contains("200"), "{status}");
    let rate_limited = channel_messages(&stack, "rate_limited").await;
    let malformed = channel_messages(&stack, "malformed").await;
    eprintln!("bridge channel: {rate_limited} rate-limited, {malformed} malformed");
    assert!(rate_limited >= 4_000.0, "rate-limited: {rate_limited}");
    assert!(malformed >= 1.0, "malformed: {malformed}");

    // Someone new is served as ever, and the honest are told.
    let mut alice = alice;
    let carol = join_and_accept(ROOM, "carol", |_| {}).await;
    loop {
        let (_, add) = alice.xmpp.next_jingle(Action::SourceAdd).await;
        if ssrcs(&add).contains(&carol.config.audio_ssrc) {
            break;
        }
    }
}
