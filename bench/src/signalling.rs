//! Simulated lib-jitsi-meet participants' signalling (XMPP only): anonymous login on the guest
//! host, conference request, MUC join, session-initiate acknowledged, session-accept with a
//! transport and sources, the focus's later requests acknowledged. Included by
//! `bench-focus-load` and `bench-soak`.

#![allow(dead_code)] // included by several benchmarks, each using a different part

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures::StreamExt;
use jid::{BareJid, Jid};
use minidom::Element;
use tokio::sync::watch;
use tokio_xmpp::parsers::iq::Iq;
use tokio_xmpp::parsers::presence::Presence;
use tokio_xmpp::stanzastream::{Event, StanzaStream, StreamEvent};
use tokio_xmpp::xmlstream::Timeouts;
use tokio_xmpp::Stanza;
use tutti_focus::connector::{Plaintext, Received};
use tutti_focus::jingle::{
    Action, Candidate, CandidateType, Content, Creator, DtlsSetup, Fingerprint, Group,
    GroupSemantics, IceUdpTransport, Jingle, Parameter, PayloadType, RtpDescription, Senders,
    Source, SourceGroup,
};
use tutti_focus::Extensions;

use crate::stack::{C2S_PORT, DOMAIN, GUEST_DOMAIN};

const FOCUS_NS: &str = "http://jitsi.org/protocol/focus";
const MUC_NS: &str = "http://jabber.org/protocol/muc";
/// Every step of a participant (login, each answer) must complete within this.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(10);

/// One simulated participant's signalling. It uses tokio-xmpp's `StanzaStream` directly, not
/// its `Client`: the `Client` shares the stream between its sending half and a receive task
/// behind a mutex whose receive side returns `Pending` without a waker when the lock is taken
/// (tokio-xmpp 6.0.0), which can stall reception for good while a send is under way.
pub struct Participant {
    pub index: usize,
    pub room: String,
    pub nick: String,
    pub stream: StanzaStream,
}

/// What one participant measured.
#[derive(Default)]
pub struct Outcome {
    /// Conference request → its result (Prosody and the focus, no bridge call).
    pub conference_request: Option<Duration>,
    /// None when the participant failed before its session-initiate.
    pub join_to_initiate: Option<Duration>,
    /// session-accept → its result (includes the focus's `UpdateEndpoint` on the bridge).
    pub accept: Option<Duration>,
    pub accepted: bool,
    pub error: Option<String>,
    /// Sources the focus announced to it (session-initiate and source-add, minus
    /// source-remove): SSRC → source name. Video comes under SSRCs the focus minted, so a
    /// receiver's view is checked by the names it was told of.
    pub known_sources: BTreeMap<u32, String>,
    pub terminated: bool,
}

/// The SSRCs of participant `index`: audio, video, video RTX.
pub fn ssrcs_of(index: usize) -> [u32; 3] {
    let base = 0x1000_0000 + 4 * index as u32;
    [base, base + 1, base + 2]
}

/// The sources a Jingle lists: SSRC and name.
fn jingle_sources(jingle: &Jingle) -> impl Iterator<Item = (u32, String)> + '_ {
    jingle
        .contents
        .iter()
        .filter_map(|content| content.description.as_ref())
        .flat_map(|description| {
            description
                .sources
                .iter()
                .map(|source| (source.ssrc, source.name.clone().unwrap_or_default()))
        })
}

/// The source names participant `index` announces, one per SSRC receivers get: its audio, and
/// its camera's stream and RTX stream.
pub fn names_of(index: usize) -> [String; 3] {
    let name = format!("p{index:05}");
    [
        format!("{name}-a0"),
        format!("{name}-v0"),
        format!("{name}-v0"),
    ]
}

impl Participant {
    pub async fn send(&mut self, stanza: impl Into<Stanza>) {
        self.stream.send(Box::new(stanza.into())).await;
    }

    /// Reads stanzas until `pick` returns Some, within `STEP_TIMEOUT`. Jingle requests from the
    /// focus are acknowledged and their sources tracked on the way.
    pub async fn wait<T>(
        &mut self,
        outcome: &mut Outcome,
        mut pick: impl FnMut(&Stanza, Option<&Jingle>) -> Option<T>,
    ) -> anyhow::Result<T> {
        let deadline = tokio::time::Instant::now() + STEP_TIMEOUT;
        loop {
            let event = tokio::time::timeout_at(deadline, self.stream.next())
                .await
                .context("timed out")?;
            let stanza = match event {
                Some(Event::Stanza(stanza)) => stanza,
                Some(Event::Stream(StreamEvent::Reset { .. })) => bail!("the stream was reset"),
                Some(Event::Stream(_)) => continue,
                None => bail!("the XMPP stream ended"),
            };
            let jingle = self.take_jingle(&stanza, outcome).await;
            if let Some(found) = pick(&stanza, jingle.as_ref()) {
                return Ok(found);
            }
        }
    }

    /// A Jingle request: acknowledged, its sources applied to `outcome`.
    pub async fn take_jingle(&mut self, stanza: &Stanza, outcome: &mut Outcome) -> Option<Jingle> {
        let Stanza::Iq(Iq::Set {
            from, id, payload, ..
        }) = stanza
        else {
            return None;
        };
        let jingle = Jingle::from_element(payload).ok()?;
        self.send(Iq::Result {
            from: None,
            to: from.clone(),
            id: id.clone(),
            payload: None,
        })
        .await;
        match jingle.action {
            Action::SessionInitiate | Action::SourceAdd => {
                outcome.known_sources.extend(jingle_sources(&jingle));
            }
            Action::SourceRemove => {
                for (ssrc, _) in jingle_sources(&jingle) {
                    outcome.known_sources.remove(&ssrc);
                }
            }
            Action::SessionTerminate => outcome.terminated = true,
            _ => {}
        }
        Some(jingle)
    }

    /// Sends an IQ set and waits for its answer.
    pub async fn request(
        &mut self,
        outcome: &mut Outcome,
        to: Jid,
        payload: Element,
    ) -> anyhow::Result<Iq> {
        let id = format!("b{}-{}", self.index, rand::random::<u32>());
        self.send(Iq::Set {
            from: None,
            to: Some(to),
            id: id.clone(),
            payload,
        })
        .await;
        self.wait(outcome, |stanza, _| match stanza {
            Stanza::Iq(iq @ (Iq::Result { .. } | Iq::Error { .. })) if iq.id() == id => {
                Some(iq.clone())
            }
            _ => None,
        })
        .await
    }

    /// Conference request, join, session-initiate, session-accept.
    pub async fn join(&mut self, outcome: &mut Outcome) -> anyhow::Result<()> {
        let (from, initiate) = self.enter(outcome).await?;
        self.accept(outcome, from, session_accept(&initiate.sid, self.index))
            .await
    }

    /// Conference request, join, session-initiate: who sent it (the room's focus), and the
    /// offer.
    pub async fn enter(&mut self, outcome: &mut Outcome) -> anyhow::Result<(Jid, Jingle)> {
        let request = Element::builder("conference", FOCUS_NS)
            .attr(rxml::xml_ncname!("room").into(), self.room.as_str())
            .attr(rxml::xml_ncname!("machine-uid").into(), "bench")
            .build();
        let focus = Jid::new(&format!("focus@{DOMAIN}/focus"))?;
        let requested = Instant::now();
        match self.request(outcome, focus, request).await? {
            Iq::Result {
                payload: Some(answer),
                ..
            } if answer.attr("ready") == Some("true") => {}
            other => bail!("conference request: {other:?}"),
        }
        outcome.conference_request = Some(requested.elapsed());
        let occupant = Jid::new(&format!("{}/{}", self.room, self.nick))?;
        let presence = Presence::available()
            .with_to(occupant)
            .with_payloads(vec![Element::bare("x", MUC_NS)]);
        let joined = Instant::now();
        self.send(presence).await;
        let focus_occupant = Jid::new(&format!("{}/focus", self.room))?;
        let (from, initiate) = self
            .wait(outcome, |stanza, jingle| match (stanza, jingle) {
                (
                    Stanza::Iq(Iq::Set {
                        from: Some(from), ..
                    }),
                    Some(jingle),
                ) if jingle.action == Action::SessionInitiate => {
                    Some((from.clone(), jingle.clone()))
                }
                _ => None,
            })
            .await?;
        outcome.join_to_initiate = Some(joined.elapsed());
        if from != focus_occupant {
            bail!("session-initiate from {from}, not {focus_occupant}");
        }
        Ok((from, initiate))
    }

    /// Sends `accept` (a session-accept) to the focus's occupant `from`; fails unless it is
    /// taken.
    pub async fn accept(
        &mut self,
        outcome: &mut Outcome,
        from: Jid,
        accept: Jingle,
    ) -> anyhow::Result<()> {
        let accepted = Instant::now();
        match self.request(outcome, from, accept.to_element()).await? {
            Iq::Result { .. } => outcome.accepted = true,
            other => bail!("session-accept refused: {other:?}"),
        }
        outcome.accept = Some(accepted.elapsed());
        Ok(())
    }

    /// Leaves the room (an unavailable presence) and closes the stream.
    pub async fn leave(mut self) {
        if let Ok(occupant) = Jid::new(&format!("{}/{}", self.room, self.nick)) {
            self.send(Presence::unavailable().with_to(occupant)).await;
        }
        self.stream.close().await;
    }

    /// Acknowledges the focus's requests (and tracks its sources) until `until`.
    pub async fn idle(&mut self, outcome: &mut Outcome, until: tokio::time::Instant) {
        loop {
            match tokio::time::timeout_at(until, self.stream.next()).await {
                Err(_) | Ok(None) => return,
                Ok(Some(Event::Stanza(stanza))) => {
                    self.take_jingle(&stanza, outcome).await;
                }
                Ok(Some(Event::Stream(_))) => {}
            }
        }
    }

    /// The whole life of the participant: joins at `start`, then acknowledges the focus's
    /// updates until `stop`.
    pub async fn run(
        mut self,
        start: tokio::time::Instant,
        mut stop: watch::Receiver<bool>,
    ) -> Outcome {
        let mut outcome = Outcome::default();
        tokio::time::sleep_until(start).await;
        if let Err(error) = self.join(&mut outcome).await {
            outcome.error = Some(format!("{}: {error:#}", self.nick));
            return outcome;
        }
        loop {
            tokio::select! {
                _ = stop.changed() => break,
                event = self.stream.next() => match event {
                    Some(Event::Stanza(stanza)) => {
                        self.take_jingle(&stanza, &mut outcome).await;
                    }
                    Some(Event::Stream(StreamEvent::Reset { .. })) => {
                        outcome.error = Some(format!("{}: the stream was reset", self.nick));
                        break;
                    }
                    Some(Event::Stream(_)) => {}
                    None => break,
                },
            }
        }
        outcome
    }
}

/// A session-accept as lib-jitsi-meet sends it: Opus, VP8 + RTX, one host candidate, a DTLS
/// fingerprint, and the participant's audio and video (FID group) sources.
pub fn session_accept(sid: &str, index: usize) -> Jingle {
    let [audio_ssrc, video_ssrc, rtx_ssrc] = ssrcs_of(index);
    let name = format!("p{index:05}");
    let msid = |track: &str| Parameter::new("msid", format!("{name}-stream {name}-{track}"));
    let mut audio = RtpDescription::new("audio");
    audio.payload_types = vec![PayloadType::new(111, "opus", 48000, Some(2))];
    audio.rtcp_mux = true;
    let mut audio_source = Source::new(audio_ssrc);
    audio_source.name = Some(format!("{name}-a0"));
    audio_source.parameters.push(msid("audio"));
    audio.sources = vec![audio_source];
    let mut rtx = PayloadType::new(96, "rtx", 90000, None);
    rtx.parameters = vec![Parameter::new("apt", "100")];
    let mut video = RtpDescription::new("video");
    video.payload_types = vec![PayloadType::new(100, "VP8", 90000, None), rtx];
    video.rtcp_mux = true;
    for ssrc in [video_ssrc, rtx_ssrc] {
        let mut source = Source::new(ssrc);
        source.name = Some(format!("{name}-v0"));
        source.video_type = Some("camera".to_owned());
        source.parameters.push(msid("video"));
        video.sources.push(source);
    }
    video.source_groups = vec![SourceGroup::new(
        GroupSemantics::Fid,
        vec![video_ssrc, rtx_ssrc],
    )];
    let mut transport = IceUdpTransport::new(format!("u{index:05}"), format!("{index:024}"));
    let fingerprint = (0..32)
        .map(|byte| format!("{:02X}", (index + byte) % 256))
        .collect::<Vec<_>>()
        .join(":");
    transport.fingerprints = vec![Fingerprint::new("sha-256", fingerprint, DtlsSetup::Active)];
    transport.rtcp_mux = true;
    transport.candidates = vec![Candidate {
        component: 1,
        foundation: "1".to_owned(),
        generation: Some(0),
        id: Some("c1".to_owned()),
        ip: "127.0.0.1".to_owned(),
        network: Some(0),
        // A closed port: the bridge's ICE checks go nowhere; the benchmark is signalling only.
        port: 9,
        priority: 2_130_706_431,
        protocol: "udp".to_owned(),
        kind: CandidateType::Host,
        rel_addr: None,
        rel_port: None,
        tcptype: None,
        extensions: Extensions::default(),
    }];
    let mut jingle = Jingle::new(Action::SessionAccept, sid);
    for description in [audio, video] {
        let mut content = Content::new(description.media.clone().unwrap_or_default());
        content.creator = Some(Creator::Initiator);
        content.senders = Some(Senders::Both);
        content.description = Some(description);
        content.transport = Some(transport.clone());
        jingle.contents.push(content);
    }
    jingle.groups.push(Group::bundle(["audio", "video"]));
    jingle
}

/// An anonymous login on the guest host (the stream retries by itself until the time-out).
pub async fn login() -> anyhow::Result<StanzaStream> {
    let mut stream = StanzaStream::new_c2s(
        Plaintext(
            SocketAddr::from(([127, 0, 0, 1], C2S_PORT)),
            Received::default(),
        ),
        BareJid::new(&format!("bench@{GUEST_DOMAIN}"))?.into(),
        String::new(),
        Timeouts::default(),
        64,
    );
    tokio::time::timeout(STEP_TIMEOUT, async {
        loop {
            match stream.next().await {
                Some(Event::Stream(StreamEvent::Reset { .. })) => return Ok(()),
                Some(_) => {}
                None => bail!("the XMPP stream ended"),
            }
        }
    })
    .await
    .context("login timed out")??;
    Ok(stream)
}
