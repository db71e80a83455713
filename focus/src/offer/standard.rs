//! Plain XEP Jingle for standards clients (those whose caps list no Jitsi feature, see
//! [`crate::capabilities`]): what the focus offers them and keeps current, with nothing of
//! Jitsi's.
//!
//! WebRTC stacks and the Jingle clients built on them map a content to an SDP m-line and route
//! each received stream by MID or by the SSRCs of an m-line, so several senders in one content
//! reach them as one garbled stream. A standards client therefore gets:
//!
//! - its own `audio` and `video` contents for what it sends (`senders='responder'`);
//! - **one content per remote stream** (XEP-0166/0167), `senders='initiator'`, each with its own
//!   XEP-0339 source (the SSRC the bridge forwards it under, its RTX SSRC in an FID group, an
//!   `msid` of its own and the sender's `cname`), added with `content-add` when the bridge starts
//!   forwarding it and taken away with `content-remove` when it stops;
//! - every content BUNDLEd (XEP-0338) on the bridge's one ICE-UDP transport (XEP-0176, the
//!   bridge a full, controlling agent), `rtcp-mux`, the bridge's DTLS fingerprint with `setup`
//!   (XEP-0320), the codecs with their RTCP feedback (XEP-0293) and the header extensions
//!   (XEP-0294) that the Jitsi offer has too.
//!
//! A content's name is never given to another stream in the same session: the client's m-line
//! of a removed content may be recycled for a new content, but with a new MID (JSEP, RFC 8829
//! §5.2.2), so a name is the identity of one stream. The session holds only the contents of the
//! streams that are forwarded now, however many came and went.
//!
//! The bridge forwards a stream to the client only once the client has accepted its content
//! (the streams of the focus's offer with its `session-accept`, a `content-add`'s with its
//! `content-accept`): its MID (the content's name) is given to the bridge then
//! ([`StandardSession::receive_mids`]), and a stream without one reaches a client that routes by
//! MID not at all. Packets of a stream that reach a client before it has applied the content
//! find no m-line there (GStreamer's webrtcbin 1.22 took them badly).

use crate::jingle::{
    Action, Content, Creator, DtlsSetup, Group, IceUdpTransport, Jingle, Parameter, RtpDescription,
    Senders, Source, SourceGroup,
};
use crate::sources::{MediaType, ReceiverView};

use super::{audio_description, bridge_transport, video_description, OfferError, SessionInitiate};

/// One stream the bridge forwards to the client: a content of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteStream {
    /// The occupant JID of its sender.
    pub owner: String,
    pub media: MediaType,
    /// The SSRC the bridge forwards it under.
    pub ssrc: u32,
    /// Its retransmissions' SSRC.
    pub rtx: Option<u32>,
    /// The sender's `msid` of it, if it gave one.
    pub msid: Option<String>,
}

impl RemoteStream {
    /// The streams of what a receiver is shown of one sender: every SSRC that is not the RTX
    /// of another (the bridge forwards one stream per source, see [`crate::sources`]).
    pub fn of_view(view: &ReceiverView) -> Vec<RemoteStream> {
        let sources = view.sources();
        let is_rtx = |ssrc: u32| {
            sources.groups.iter().any(|group| {
                group.semantics == crate::jingle::GroupSemantics::Fid
                    && group.ssrcs.get(1) == Some(&ssrc)
            })
        };
        sources
            .sources
            .iter()
            .filter(|source| !is_rtx(source.ssrc))
            .map(|source| RemoteStream {
                owner: view.owner().to_owned(),
                media: source.media,
                ssrc: source.ssrc,
                rtx: sources.rtx_of(source.ssrc),
                msid: source.msid.clone(),
            })
            .collect()
    }

    /// The `msid` the client gets: the sender's, or one of the stream's own (`cname` as the
    /// MediaStream, so a sender's audio and video are one stream to the client).
    fn msid(&self) -> String {
        self.msid
            .clone()
            .unwrap_or_else(|| format!("{} {}-{}", self.cname(), self.media, self.ssrc))
    }

    /// The sender's RTCP CNAME: its nick, shared by all its streams (lip sync).
    fn cname(&self) -> &str {
        self.owner.rsplit('/').next().unwrap_or(&self.owner)
    }

    /// Its content, created and sent by the focus in its `role` (the session's initiator when
    /// the focus offered the session, its responder when the client initiated it).
    fn content(&self, name: &str, transport: &IceUdpTransport, role: Role) -> Content {
        let mut description = description(self.media);
        let mut ssrcs = vec![self.ssrc];
        ssrcs.extend(self.rtx);
        for ssrc in ssrcs {
            let mut source = Source::new(ssrc);
            source.parameters = vec![
                Parameter::new("cname", self.cname()),
                Parameter::new("msid", self.msid()),
            ];
            description.sources.push(source);
        }
        if let Some(rtx) = self.rtx {
            description.source_groups.push(SourceGroup::new(
                crate::jingle::GroupSemantics::Fid,
                vec![self.ssrc, rtx],
            ));
        }
        let mut content = Content::new(name);
        content.creator = Some(role.creator());
        content.senders = Some(role.senders());
        content.description = Some(description);
        content.transport = Some(transport.clone());
        content
    }
}

/// The focus's role in a session (XEP-0166): `creator` and `senders` of the contents it adds
/// are named by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Initiator,
    Responder,
}

impl Role {
    fn creator(self) -> Creator {
        match self {
            Role::Initiator => Creator::Initiator,
            Role::Responder => Creator::Responder,
        }
    }

    fn senders(self) -> Senders {
        match self {
            Role::Initiator => Senders::Initiator,
            Role::Responder => Senders::Responder,
        }
    }
}

/// The contents of one standards client's session, as the focus offered them.
#[derive(Debug, Clone)]
pub struct StandardSession {
    /// The bridge's transport as offered: every content carries it.
    transport: IceUdpTransport,
    /// The names of the client's own contents (what it sends): `audio` and `video` in the
    /// focus's offer, the client's names in a session it initiated.
    own: Vec<String>,
    /// The remote streams the client has a content for, in the order they were added.
    streams: Vec<StreamContent>,
    /// Numbers the next content; names are never reused in a session.
    next: u64,
    /// The focus's role: initiator of the sessions it offers, responder of one the client
    /// initiated.
    role: Role,
}

/// A remote stream's content in a session.
#[derive(Debug, Clone)]
struct StreamContent {
    owner: String,
    ssrc: u32,
    name: String,
    answer: Answer,
}

/// Where the client's answer to a remote stream's content stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// In the focus's offer (its session-initiate): accepted with the session.
    InOffer,
    /// In a `content-add` the client has not accepted.
    Added,
    /// Accepted: the bridge forwards the stream to the client.
    Accepted,
}

/// A content a standards client named that the session does not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the session has no content named '{0}' (XEP-0166: contents are the ones the focus offered)"
)]
pub struct UnknownContent(pub String);

/// A client's `session-initiate` the focus cannot accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InitiateError {
    #[error("content '{0}' is neither audio nor video")]
    NotAudioOrVideo(String),
    #[error("the session has no audio or video content")]
    NoContents,
    #[error("content '{0}' has no DTLS fingerprint")]
    NoFingerprint(String),
    #[error("content '{0}' offers no codec the bridge forwards")]
    NoCodec(String),
}

/// Codecs the bridge forwards (and their retransmissions).
const FORWARDED_CODECS: [&str; 4] = ["opus", "VP8", "H264", "rtx"];

impl StandardSession {
    /// The `session-initiate` for a standards client: its own audio and video contents and one
    /// content per stream of `offer.sources`; with the session that keeps them.
    pub fn initiate(offer: &SessionInitiate<'_>) -> Result<(StandardSession, Jingle), OfferError> {
        let mut session = StandardSession {
            transport: bridge_transport(offer.bridge_transport, false)?,
            own: vec![
                MediaType::Audio.as_str().to_owned(),
                MediaType::Video.as_str().to_owned(),
            ],
            streams: Vec::new(),
            next: 0,
            role: Role::Initiator,
        };
        let mut jingle = Jingle::new(Action::SessionInitiate, offer.sid);
        jingle.initiator = Some(offer.initiator.to_owned());
        jingle.responder = Some(offer.responder.to_owned());
        for media in [MediaType::Audio, MediaType::Video] {
            let mut content = Content::new(media.as_str());
            content.creator = Some(Creator::Initiator);
            content.senders = Some(Senders::Responder);
            content.description = Some(description(media));
            content.transport = Some(session.transport.clone());
            jingle.contents.push(content);
        }
        jingle
            .contents
            .extend(session.new_contents(offer.sources, Answer::InOffer));
        jingle.groups.push(session.bundle());
        Ok((session, jingle))
    }

    /// The client started a session of its own (`initiate`, XEP-0166) instead of answering
    /// the focus's: the session becomes the client's, with the client's own contents in place of
    /// `audio` and `video` and none of the streams the focus had offered (they follow in a
    /// `content-add`, under new names). The focus's `session-accept` of it: each of the
    /// client's contents with the codecs of its offer that the bridge forwards (the client's
    /// payload types, parameters and feedback), the header extensions of its offer, and the
    /// bridge's transport — DTLS `passive` to a client that offered `actpass` or `active`,
    /// `active` to one that offered `passive` — in one BUNDLE group. Returns the accept and
    /// the DTLS role the client takes (what the bridge is to be told).
    pub fn take_over(
        &mut self,
        initiate: &Jingle,
        focus: &str,
    ) -> Result<(Jingle, DtlsSetup), InitiateError> {
        let mut accept = Jingle::new(Action::SessionAccept, &initiate.sid);
        accept.initiator = initiate.initiator.clone();
        accept.responder = Some(focus.to_owned());
        let mut client_setup = DtlsSetup::Active;
        for content in &initiate.contents {
            let offered = content
                .description
                .as_ref()
                .filter(|d| {
                    MediaType::from_jingle(d.media.as_deref().unwrap_or(&content.name)).is_some()
                })
                .ok_or_else(|| {
                    InitiateError::NotAudioOrVideo(crate::error::quote(&content.name))
                })?;
            let fingerprint = content
                .transport
                .as_ref()
                .and_then(|t| t.fingerprints.first())
                .ok_or_else(|| InitiateError::NoFingerprint(crate::error::quote(&content.name)))?;
            if fingerprint.setup == Some(DtlsSetup::Passive) {
                client_setup = DtlsSetup::Passive;
            }
            let mut description = offered.clone();
            description.payload_types.retain(|pt| {
                pt.name.as_deref().is_some_and(|name| {
                    FORWARDED_CODECS
                        .iter()
                        .any(|codec| codec.eq_ignore_ascii_case(name))
                })
            });
            if description.payload_types.is_empty() {
                return Err(InitiateError::NoCodec(crate::error::quote(&content.name)));
            }
            description.sources.clear();
            description.source_groups.clear();
            description.ssrc = None;
            let mut answer = Content::new(content.name.clone());
            answer.creator = Some(Creator::Initiator);
            answer.senders = content.senders;
            answer.description = Some(description);
            answer.transport = Some(self.transport.clone());
            accept.contents.push(answer);
        }
        if accept.contents.is_empty() {
            return Err(InitiateError::NoContents);
        }
        // The focus's role from now on, in the accept and in the contents added later.
        let focus_setup = match client_setup {
            DtlsSetup::Passive => DtlsSetup::Active,
            _ => DtlsSetup::Passive,
        };
        for fingerprint in &mut self.transport.fingerprints {
            fingerprint.setup = Some(focus_setup);
        }
        for content in &mut accept.contents {
            content.transport = Some(self.transport.clone());
        }
        self.own = accept.contents.iter().map(|c| c.name.clone()).collect();
        self.streams.clear();
        self.role = Role::Responder;
        accept.groups.push(self.bundle());
        Ok((accept, client_setup))
    }

    /// A `content-add` of the streams of `views` the client has no content for yet (with the
    /// BUNDLE group of every content); `None` when there are none.
    pub fn content_add(&mut self, sid: &str, views: &[ReceiverView]) -> Option<Jingle> {
        let contents = self.new_contents(views, Answer::Added);
        if contents.is_empty() {
            return None;
        }
        let mut jingle = Jingle::new(Action::ContentAdd, sid);
        jingle.contents = contents;
        jingle.groups.push(self.bundle());
        Some(jingle)
    }

    /// A `content-remove` of the contents of the streams of `views`; `None` when the client
    /// has none of them.
    pub fn content_remove(&mut self, sid: &str, views: &[ReceiverView]) -> Option<Jingle> {
        let mut jingle = Jingle::new(Action::ContentRemove, sid);
        for stream in views.iter().flat_map(RemoteStream::of_view) {
            if let Some(index) = self.position(&stream) {
                let mut content = Content::new(self.streams.remove(index).name);
                content.creator = Some(self.role.creator());
                jingle.contents.push(content);
            }
        }
        (!jingle.contents.is_empty()).then_some(jingle)
    }

    /// Checks that every content `jingle` names is one of the session's.
    pub fn check_names(&self, jingle: &Jingle) -> Result<(), UnknownContent> {
        match jingle
            .contents
            .iter()
            .find(|content| !self.has_content(&content.name))
        {
            Some(content) => Err(UnknownContent(crate::error::quote(&content.name))),
            None => Ok(()),
        }
    }

    /// The client refused or removed these contents of remote streams (`content-reject`,
    /// `content-remove`): they are no longer the session's. Its own contents stay.
    pub fn forget(&mut self, jingle: &Jingle) {
        self.streams.retain(|stream| {
            !jingle
                .contents
                .iter()
                .any(|content| content.name == stream.name)
        });
    }

    /// The client accepted the focus's offer (`session-accept`): the streams it offered are
    /// accepted with it (those the focus added since wait for their `content-accept`).
    pub fn accept_offer(&mut self) {
        for stream in &mut self.streams {
            if stream.answer == Answer::InOffer {
                stream.answer = Answer::Accepted;
            }
        }
    }

    /// The client accepted these contents of remote streams (`content-accept`).
    pub fn accept_contents(&mut self, jingle: &Jingle) {
        for stream in &mut self.streams {
            if jingle.contents.iter().any(|c| c.name == stream.name) {
                stream.answer = Answer::Accepted;
            }
        }
    }

    /// The MID the client receives each remote stream it accepted under (its content's name),
    /// by the SSRC the bridge forwards it under: what the bridge writes into the stream's
    /// packets, and the streams it forwards the client (streams not accepted yet, or never,
    /// reach it not at all).
    pub fn receive_mids(&self) -> Vec<(u32, String)> {
        self.streams
            .iter()
            .filter(|stream| stream.answer == Answer::Accepted)
            .map(|stream| (stream.ssrc, stream.name.clone()))
            .collect()
    }

    /// The names of the client's own contents (what it sends).
    pub fn own_contents(&self) -> &[String] {
        &self.own
    }

    /// How many contents the session has (its own two and one per remote stream).
    pub fn content_count(&self) -> usize {
        self.own.len() + self.streams.len()
    }

    fn has_content(&self, name: &str) -> bool {
        self.own.iter().any(|own| own == name) || self.streams.iter().any(|s| s.name == name)
    }

    fn position(&self, stream: &RemoteStream) -> Option<usize> {
        self.streams
            .iter()
            .position(|known| known.owner == stream.owner && known.ssrc == stream.ssrc)
    }

    fn new_contents(&mut self, views: &[ReceiverView], answer: Answer) -> Vec<Content> {
        let mut contents = Vec::new();
        for stream in views.iter().flat_map(RemoteStream::of_view) {
            if self.position(&stream).is_some() {
                continue;
            }
            let mut name = String::new();
            while name.is_empty() || self.own.contains(&name) {
                self.next += 1;
                name = format!("{}-{}", stream.media, self.next);
            }
            contents.push(stream.content(&name, &self.transport, self.role));
            self.streams.push(StreamContent {
                owner: stream.owner,
                ssrc: stream.ssrc,
                name,
                answer,
            });
        }
        contents
    }

    fn bundle(&self) -> Group {
        Group::bundle(
            self.own
                .iter()
                .cloned()
                .chain(self.streams.iter().map(|stream| stream.name.clone())),
        )
    }
}

fn description(media: MediaType) -> RtpDescription {
    match media {
        MediaType::Audio => audio_description(),
        MediaType::Video => video_description(),
    }
}

#[cfg(test)]
mod tests;
