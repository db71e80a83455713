//! Hostile participants over XMPP and the bridge channel, end to end (issue 22): a real
//! Prosody, bridge and focus in the test's own network namespace. While alice and bob hold a
//! call (measured against a baseline window, as in hostile_media.rs), mallory, a participant of
//! the call, sends thousands of junk source-adds and Jingle requests for sessions that do not
//! exist, stanzas close to Prosody's 256 KiB limit (`c2s_stanza_size_limit`), stanzas nested
//! 30,000 levels deep, stanzas the XMPP crates refuse to parse, and malformed bridge-channel
//! JSON as fast as it can.

mod support;

use std::time::{Duration, Instant};

use futures::SinkExt;
use jid::Jid;
use minidom::Element;
use support::*;
use tokio_tungstenite::tungstenite::Message;
use tokio_xmpp::parsers::iq::Iq;
use tokio_xmpp::parsers::message::{self, MessageType};
use tutti_focus::jingle::Action;

const ROOM: &str = "storm@conference.localhost";
const JINGLE: &str = "urn:xmpp:jingle:1";
const RTP: &str = "urn:xmpp:jingle:apps:rtp:1";
const SSMA: &str = "urn:xmpp:jingle:apps:rtp:ssma:0";
/// Prosody's default `c2s_stanza_size_limit`.
const STANZA_LIMIT: usize = 256 * 1024;
/// Levels of the nested stanzas the focus is sent: 210 KB of `<x>`s, which Prosody passes on.
const NESTING: usize = 30_000;
/// How long the focus may take to answer the nested stanzas (sent from a debug-built client
/// through Prosody). Parsing one as tokio-xmpp does took 0.34 s at 1,000 levels, 5.9 s at 4,000
/// and 178 s at 10,000 (debug build; the cube of the depth) before the focus refused stanzas
/// nested deeper than 64 levels unread (tutti_focus::inbound).
const DEEP_ANSWERED_WITHIN: Duration = Duration::from_secs(10);
/// Private messages to the focus with two `<thread>`s, which xmpp-parsers refuses: before
/// tutti_focus::inbound, each made tokio-xmpp end the focus's stream.
const MALFORMED: usize = 20;

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

/// How long mallory's storm took.
struct Storm {
    /// To its last answer.
    took: Duration,
    /// From sending the nested stanzas to their answers.
    deep: Duration,
}

/// Mallory, the test's [`Attacker`], in its own process: on a runtime with big stacks
/// (writing and dropping the nested stanzas recurses once per level, and the focus is what is
/// under test, not the test client). Joins, says `joined`, waits for `go`, storms, collects
/// every answer, and says how long the storm took and its nested stanzas' answers took (ms).
fn mallory(stolen: u32) {
    let storm = std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(move || {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_stack_size(256 << 20)
                .enable_all()
                .build()
                .unwrap()
                .block_on(async move {
                    let mallory = join_and_accept(ROOM, "mallory", |_| {}).await;
                    attacker_says("joined");
                    assert_eq!(attacker_hears(), "go");
                    storm(mallory, stolen).await
                })
        })
        .unwrap()
        .join()
        .expect("mallory's storm");
    attacker_says(&format!(
        "{} {}",
        storm.took.as_millis(),
        storm.deep.as_millis()
    ));
}

async fn storm(mallory: Joined, stolen: u32) -> Storm {
    let focus = Jid::new(&format!("{ROOM}/focus")).unwrap();
    let sid = mallory.initiate.sid.clone();
    let mut xmpp = mallory.xmpp;
    let started = Instant::now();
    // Nested stanzas first, to the focus's own address from a second connection that writes
    // bytes, timed to their answers: refused unread with `bad-request`.
    let mut raw = RawXmppClient::connect("mallory").await;
    let deep_stanza = |i: usize| {
        format!(
            "<iq type='set' to='focus@{DOMAIN}/focus' id='deep-{i}'><jingle xmlns='{JINGLE}' \
             action='source-add' sid='{sid}'><x xmlns='urn:example:deep'>{}{}</x></jingle></iq>",
            "<x>".repeat(NESTING - 1),
            "</x>".repeat(NESTING - 1)
        )
    };
    let size = deep_stanza(0).len();
    assert!(size < STANZA_LIMIT, "{size} bytes");
    for i in 0..5 {
        raw.send(deep_stanza(i).as_bytes()).await;
    }
    for i in 0..5 {
        let answer = raw.read_until("</iq>").await;
        assert!(
            answer.contains(&format!("'deep-{i}'"))
                && answer.contains("type='error'")
                && answer.contains("<bad-request"),
            "not refused: {answer}"
        );
    }
    let deep = started.elapsed();
    eprintln!("5 requests {NESTING} levels deep ({size} bytes each) refused in {deep:?}");
    for i in 0..MALFORMED {
        let mut message = message::Message::new(Some(focus.clone()));
        message.type_ = MessageType::Chat;
        message.id = Some(message::Id(format!("malformed-{i}")));
        for thread in ["a", "b"] {
            message.payloads.push(
                Element::builder("thread", "jabber:client")
                    .append(thread)
                    .build(),
            );
        }
        xmpp.send(message).await;
    }
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
    eprintln!(
        "storm sent in {:?} (5,000 bridge-channel frames in {json_done:?})",
        started.elapsed()
    );
    // Every request is answered.
    let ids = (0..2_000)
        .flat_map(|i| [format!("add-{i}"), format!("unknown-{i}")])
        .chain((0..20).map(|i| format!("big-{i}")));
    for id in ids {
        answer(&mut xmpp, &id).await;
    }
    eprintln!("every answer {:?} after the storm began", started.elapsed());
    drop(channel);
    Storm {
        took: started.elapsed(),
        deep,
    }
}

/// Waits for the answer (result or error) to the request `id`.
async fn answer(xmpp: &mut XmppClient, id: &str) -> Iq {
    xmpp.wait_for("an answer to every request", |stanza| match stanza {
        tokio_xmpp::Stanza::Iq(iq @ (Iq::Result { .. } | Iq::Error { .. })) if iq.id() == id => {
            Some(iq.clone())
        }
        _ => None,
    })
    .await
}

const TEST: &str =
    "a_hostile_participant_costs_the_others_nothing_over_xmpp_and_the_bridge_channel";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_participant_costs_the_others_nothing_over_xmpp_and_the_bridge_channel() {
    if rerun_in_own_netns(TEST) {
        return;
    }
    if let Some(arguments) = attacker_arguments() {
        mallory(arguments["stolen"].as_u64().unwrap() as u32);
        return;
    }
    let mut stack = Stack::start("hostile-signalling", &["alice", "bob", "carol", "mallory"]);
    stack.start_focus(&[]);
    let (alice, bob, alice_camera, bob_camera) = call_of_two(ROOM).await;
    let watched = Watched::call_of_two(&alice, &bob, alice_camera, bob_camera);
    let mut mallory = Attacker::start(
        TEST,
        &serde_json::json!({ "stolen": alice.config.audio_ssrc }),
    );
    assert_eq!(mallory.hear().await, "joined");
    let baseline = watched.baseline().await;
    let errors_before = focus_errors(&stack, "rate_limited").await;

    // The storm, while alice's and bob's media is measured.
    mallory.tell("go");
    let during = watched.window().await;
    watched.assert_unharmed("mallory's storm", &baseline, &during);
    let said = mallory.hear().await;
    mallory.finish().await;
    let [took, deep] =
        [0, 1].map(|i| Duration::from_millis(said.split(' ').nth(i).unwrap().parse().unwrap()));
    assert!(
        deep <= DEEP_ANSWERED_WITHIN,
        "the nested requests were refused only after {deep:?}"
    );
    let too_deep = focus_errors(&stack, "stanza_too_deep").await;
    let malformed_stanzas = focus_errors(&stack, "stanza_malformed").await;
    eprintln!("stanzas refused unread: {too_deep} nested too deep, {malformed_stanzas} malformed");
    assert_eq!(too_deep, 5.0);
    assert_eq!(malformed_stanzas, MALFORMED as f64);

    // Of the 4,020 Jingle requests, all but a second's worth and 20 a second meanwhile were refused
    // for the rate; the focus stayed up, and honest signalling goes on.
    let limited = focus_errors(&stack, "rate_limited").await - errors_before;
    let allowed = 20.0 * (took.as_secs_f64() + 1.0);
    eprintln!("rate-limited Jingle requests: {limited} (at most {allowed:.0} allowed)");
    assert!(limited >= 4_020.0 - allowed, "rate-limited: {limited}");
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
