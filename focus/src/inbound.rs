//! What the focus's XMPP connections receive, checked on its way to the XML parser.
//!
//! Two things tokio-xmpp 6.0.0 does with what it receives cost the focus every room at once,
//! and an XMPP server passes both on from any participant:
//!
//! - It parses each stanza through builders nested one per level of the XML, and feeds every
//!   event down the whole nest: a stanza 4,000 levels deep took 5.9 s to parse, 10,000 levels
//!   178 s (debug build; the time grows with about the cube of the depth), while the bytes
//!   took 28 ms and 109 ms to read. Prosody passes on stanzas of up to 256 KiB
//!   (`c2s_stanza_size_limit`), that is 30,000 levels and more, and meanwhile the focus's one
//!   XMPP connection reads nothing else.
//! - A stanza its types refuse (a `<show>` or a `type` it does not know, two `<thread>`s, an
//!   error without `<error>`) makes it end the stream with an error of its own: the focus
//!   reconnects and rejoins every room.
//!
//! So every byte a connection receives passes through an [`Inbound`], which follows the
//! element nesting with a small lexer (tags, attribute values in quotes, and the `<?…?>`,
//! `<!--…-->`, `<![CDATA[…]]>` constructs that XMPP forbids inside a stream but a stream
//! header's XML declaration uses), not a full parser, and
//!
//! - holds each element directly inside the stream (a stanza, stream features, a stream error)
//!   back until it ends. One whose elements nest deeper than [`MAX_DEPTH`] levels is not
//!   kept beyond its start tag; a stanza (`<iq>`, `<message>`, `<presence>`) is then parsed
//!   once as tokio-xmpp will, its nesting now bounded. A stanza refused either way is handed
//!   on as its shell: its own start tag, for an `<iq>` a [`REFUSED`] element in place of its
//!   payload (the focus answers a request that carries it with an error), and its end tag, so
//!   that a request is answered and a participant's leaving is still seen; when the shell too
//!   does not parse (its attributes were the fault), nothing is handed on. Each refusal is
//!   reported by [`Refused`] reason.
//! - finds the stream errors the server sends (tokio-xmpp handles a `<stream:error>` that
//!   arrives on an established stream as an unknown element: it answers with a stream error
//!   of its own, drops the connection and reconnects, and tells its user only that the stream
//!   was suspended; the focus must know why: a `<conflict/>` means another focus logged in
//!   with the same account and resource, and reconnecting would kick it out in turn, and so on
//!   for ever; docs/focus.md, XMPP server). It recognises the stream header
//!   (`<PREFIX:stream>`, at the top, or directly inside the previous header after a stream
//!   restart, which does not close the previous one) and a stream error: an `<PREFIX:error>`
//!   directly inside it, whose first child other than `<text>` names the condition. Whatever
//!   a participant puts into a stanza is nested inside that stanza, never directly inside the
//!   stream, so it cannot pass for a stream error.

use std::io::Read;

use tokio_xmpp::minidom::Element;
use tokio_xmpp::Stanza;
use xso::{FromEventsBuilder, FromXml};

/// Levels of elements a stanza may have, itself included: a Jingle `source-add` from
/// lib-jitsi-meet has 6 (`iq`, `jingle`, `content`, `description`, `source`, `parameter`).
pub const MAX_DEPTH: usize = 64;

/// The element that replaces a refused IQ's payload; its `reason` attribute is the
/// [`Refused::reason`].
pub const REFUSED: &str = "refused";
/// [`REFUSED`]'s namespace.
pub const REFUSED_NS: &str = "urn:tutti:focus:refused";

/// Why a stanza was not handed on as received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Its elements nest deeper than [`MAX_DEPTH`].
    TooDeep,
    /// It does not parse as a stanza.
    Malformed,
}

impl Refused {
    /// The focus's error kind (`tutti_focus_errors_total{kind}`).
    pub fn kind(self) -> &'static str {
        match self {
            Refused::TooDeep => "stanza_too_deep",
            Refused::Malformed => "stanza_malformed",
        }
    }

    /// The `reason` attribute of [`REFUSED`].
    pub fn reason(self) -> &'static str {
        match self {
            Refused::TooDeep => "too-deep",
            Refused::Malformed => "malformed",
        }
    }

    /// What the sender is told.
    pub fn describe(self) -> String {
        match self {
            Refused::TooDeep => {
                format!(
                    "the request was not read: its elements nest deeper than {MAX_DEPTH} levels"
                )
            }
            Refused::Malformed => "the request was not read: it is not a valid stanza".to_owned(),
        }
    }

    /// The reason an IQ's payload says its request was refused for, if it is a [`REFUSED`].
    pub fn of_payload(payload: &Element) -> Option<Refused> {
        if !payload.is(REFUSED, REFUSED_NS) {
            return None;
        }
        [Refused::TooDeep, Refused::Malformed]
            .into_iter()
            .find(|refused| payload.attr("reason") == Some(refused.reason()))
    }
}

/// What one [`Inbound::feed`] found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Found {
    /// The condition of a stream error that completed (its condition element started), e.g.
    /// `conflict` or `system-shutdown`.
    pub stream_error: Option<String>,
    /// Stanzas refused.
    pub refused: Vec<Refused>,
}

/// Lexer state between two chunks of bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Between tags.
    Text,
    /// Right after `<`.
    Open,
    /// In a start tag's name.
    StartName,
    /// In a start tag after its name.
    InStartTag,
    /// In a start tag, just after `/`.
    SelfClosing,
    /// In an attribute value quoted by this byte.
    Quoted(u8),
    /// In an end tag.
    EndTag,
    /// In a construct ended by `terminator` (`?>`, `-->`, `]]>`); `matched` bytes of it seen.
    Skip {
        terminator: &'static [u8],
        matched: usize,
    },
    /// Right after `<!`: which construct comes decides the terminator.
    Bang(Vec<u8>),
}

/// Where the stream and its error are in the nesting.
#[derive(Debug, Default)]
struct Frames {
    /// Open elements.
    depth: usize,
    /// The current stream header: its depth and its prefix (`stream` in `<stream:stream>`).
    root: Option<(usize, Vec<u8>)>,
    /// Inside a stream error: the condition, once its element started.
    in_error: bool,
    condition: Option<String>,
}

/// The top-level element being received.
#[derive(Debug)]
struct Current {
    /// Its qualified name (at most [`MAX_NAME`] bytes kept).
    name: Vec<u8>,
    /// The depth it opened at.
    depth: usize,
    /// Its start tag: the first bytes held.
    start_tag: usize,
    /// It ended with its start tag (`/>`).
    empty: bool,
    /// Refused while it was received (its bytes after the start tag are not held).
    refused: Option<Refused>,
}

/// Checks the bytes a client receives on their way to its XML parser (the module's doc).
/// Feed it every byte, in order.
#[derive(Debug)]
pub struct Inbound {
    state: State,
    name: Vec<u8>,
    frames: Frames,
    /// Bytes not handed on yet: a tag being read at the top, or the top-level element being
    /// received.
    held: Vec<u8>,
    current: Option<Current>,
}

/// Longest element name kept; longer ones are no stream, stanza or condition names.
const MAX_NAME: usize = 64;

/// What a stanza is parsed inside of when it is checked: a client stream's header.
const HEADER: &[u8] =
    b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>";

impl Default for Inbound {
    fn default() -> Self {
        Inbound {
            state: State::Text,
            name: Vec::with_capacity(MAX_NAME),
            frames: Frames::default(),
            held: Vec::new(),
            current: None,
        }
    }
}

impl Inbound {
    /// Reads `bytes` and appends what may go on to the parser to `out`.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<u8>) -> Found {
        let mut found = Found::default();
        for &byte in bytes {
            if self
                .current
                .as_ref()
                .is_none_or(|current| current.refused.is_none())
            {
                self.held.push(byte);
            }
            self.step(byte, &mut found);
            if self.current.is_none() && self.state == State::Text {
                out.append(&mut self.held);
            }
        }
        found
    }

    fn step(&mut self, byte: u8, found: &mut Found) {
        match &mut self.state {
            State::Text => {
                if byte == b'<' {
                    self.state = State::Open;
                }
            }
            State::Open => match byte {
                b'/' => self.state = State::EndTag,
                b'?' => {
                    self.state = State::Skip {
                        terminator: b"?>",
                        matched: 0,
                    }
                }
                b'!' => self.state = State::Bang(Vec::new()),
                _ => {
                    self.name.clear();
                    self.name.push(byte);
                    self.state = State::StartName;
                }
            },
            State::StartName => match byte {
                b'>' => self.start_tag(false, found),
                b'/' => self.state = State::SelfClosing,
                b' ' | b'\t' | b'\r' | b'\n' => self.state = State::InStartTag,
                _ => {
                    if self.name.len() < MAX_NAME {
                        self.name.push(byte);
                    }
                }
            },
            State::InStartTag => match byte {
                b'>' => self.start_tag(false, found),
                b'/' => self.state = State::SelfClosing,
                b'"' | b'\'' => self.state = State::Quoted(byte),
                _ => {}
            },
            State::SelfClosing => match byte {
                b'>' => self.start_tag(true, found),
                b'"' | b'\'' => self.state = State::Quoted(byte),
                _ => self.state = State::InStartTag,
            },
            State::Quoted(quote) => {
                if byte == *quote {
                    self.state = State::InStartTag;
                }
            }
            State::EndTag => {
                if byte == b'>' {
                    self.state = State::Text;
                    self.end_element(found);
                }
            }
            State::Skip {
                terminator,
                matched,
            } => {
                if byte == terminator[*matched] {
                    *matched += 1;
                    if *matched == terminator.len() {
                        self.state = State::Text;
                    }
                } else {
                    *matched = usize::from(byte == terminator[0]);
                }
            }
            State::Bang(seen) => {
                seen.push(byte);
                if seen.as_slice() == b"--" {
                    self.state = State::Skip {
                        terminator: b"-->",
                        matched: 0,
                    };
                } else if seen.as_slice() == b"[CDATA[" {
                    self.state = State::Skip {
                        terminator: b"]]>",
                        matched: 0,
                    };
                } else if !b"--".starts_with(seen) && !b"[CDATA[".starts_with(seen) {
                    // A declaration (`<!DOCTYPE …>`): to its `>`.
                    self.state = if byte == b'>' {
                        State::Text
                    } else {
                        State::Skip {
                            terminator: b">",
                            matched: 0,
                        }
                    };
                }
            }
        }
    }

    /// A start tag ended (`empty`: `/>`).
    fn start_tag(&mut self, empty: bool, found: &mut Found) {
        self.state = State::Text;
        let (prefix, local) = match self.name.iter().position(|&b| b == b':') {
            Some(colon) => (&self.name[..colon], &self.name[colon + 1..]),
            None => (&self.name[..0], &self.name[..]),
        };
        let frames = &mut self.frames;
        let depth = frames.depth;
        let top = match &frames.root {
            None => depth == 0,
            Some((root, _)) => depth == root + 1,
        };
        if top && local == b"stream" {
            frames.root = Some((depth, prefix.to_vec()));
            frames.in_error = false;
        } else {
            if top
                && local == b"error"
                && frames
                    .root
                    .as_ref()
                    .is_some_and(|(_, root_prefix)| root_prefix == prefix)
            {
                frames.in_error = true;
                frames.condition = None;
            } else if frames.in_error
                && frames.condition.is_none()
                && frames
                    .root
                    .as_ref()
                    .is_some_and(|(root, _)| depth == root + 2)
                && local != b"text"
            {
                let condition = String::from_utf8_lossy(local).into_owned();
                frames.condition = Some(condition.clone());
                found.stream_error = Some(condition);
            }
            if top {
                self.current = Some(Current {
                    name: self.name.clone(),
                    depth,
                    start_tag: self.held.len(),
                    empty,
                    refused: None,
                });
            } else if let Some(current) = &mut self.current {
                if current.refused.is_none() && depth - current.depth + 1 > MAX_DEPTH {
                    current.refused = Some(Refused::TooDeep);
                    self.held.truncate(current.start_tag);
                }
            }
        }
        if empty {
            if top && self.current.is_some() {
                self.element_ended(found);
            }
        } else {
            self.frames.depth += 1;
        }
    }

    fn end_element(&mut self, found: &mut Found) {
        let frames = &mut self.frames;
        frames.depth = frames.depth.saturating_sub(1);
        if let Some((root, _)) = frames.root {
            if frames.depth == root + 1 {
                frames.in_error = false;
            }
            if frames.depth <= root {
                // The stream ended: the next header starts afresh.
                frames.root = None;
                frames.depth = 0;
            }
        }
        if self
            .current
            .as_ref()
            .is_some_and(|current| self.frames.depth <= current.depth)
        {
            self.element_ended(found);
        }
    }

    /// The top-level element ended: what is held of it is handed on as it is, as its shell,
    /// or not at all.
    fn element_ended(&mut self, found: &mut Found) {
        let Some(current) = self.current.take() else {
            return;
        };
        let local = match current.name.iter().position(|&b| b == b':') {
            Some(colon) => &current.name[colon + 1..],
            None => &current.name[..],
        };
        let stanza = matches!(local, b"iq" | b"message" | b"presence");
        let refused = current
            .refused
            .or_else(|| (stanza && !parses_as_stanza(&self.held)).then_some(Refused::Malformed));
        let Some(refused) = refused else {
            return;
        };
        found.refused.push(refused);
        let shell = (stanza && current.name.len() < MAX_NAME)
            .then(|| {
                let mut start_tag = &self.held[..current.start_tag];
                if current.empty {
                    start_tag = start_tag.strip_suffix(b"/>").unwrap_or(start_tag);
                } else {
                    start_tag = start_tag.strip_suffix(b">").unwrap_or(start_tag);
                }
                let mut shell = start_tag.to_vec();
                shell.push(b'>');
                if local == b"iq" {
                    shell.extend_from_slice(
                        format!(
                            "<{REFUSED} xmlns='{REFUSED_NS}' reason='{}'/>",
                            refused.reason()
                        )
                        .as_bytes(),
                    );
                }
                shell.extend_from_slice(b"</");
                shell.extend_from_slice(&current.name);
                shell.push(b'>');
                shell
            })
            .filter(|shell| parses_as_stanza(shell));
        self.held.clear();
        if let Some(shell) = shell {
            self.held = shell;
        }
    }
}

/// Whether `stanza` (one element, its nesting bounded) parses as tokio-xmpp will parse it
/// inside a client stream.
fn parses_as_stanza(stanza: &[u8]) -> bool {
    let mut events = rxml::Reader::new(HEADER.chain(stanza));
    if !matches!(events.next(), Some(Ok(rxml::Event::StartElement(..)))) {
        return false;
    }
    let context = xso::Context::empty();
    let mut builder = match events.next() {
        Some(Ok(rxml::Event::StartElement(_, name, attributes))) => {
            match Stanza::from_events(name, attributes, &context) {
                Ok(builder) => builder,
                Err(_) => return false,
            }
        }
        _ => return false,
    };
    for event in events {
        let Ok(event) = event else {
            return false;
        };
        match builder.feed(event, &context) {
            Ok(Some(_)) => return true,
            Ok(None) => {}
            Err(_) => return false,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
        xmlns:stream='http://etherx.jabber.org/streams' id='x' from='localhost' version='1.0'>";

    /// What `chunks` become: the bytes handed on, the stanzas refused, the stream errors.
    fn through(chunks: &[&[u8]]) -> (Vec<u8>, Vec<Refused>, Vec<String>) {
        let mut inbound = Inbound::default();
        let mut out = Vec::new();
        let mut refused = Vec::new();
        let mut errors = Vec::new();
        for chunk in chunks {
            let found = inbound.feed(chunk, &mut out);
            refused.extend(found.refused);
            errors.extend(found.stream_error);
        }
        (out, refused, errors)
    }

    fn conditions(chunks: &[&str]) -> Vec<String> {
        let chunks: Vec<&[u8]> = chunks.iter().map(|chunk| chunk.as_bytes()).collect();
        through(&chunks).2
    }

    /// `<x><x>…</x></x>`, `depth` levels.
    fn nested(depth: usize) -> String {
        "<x xmlns='urn:example:deep'>".repeat(depth) + &"</x>".repeat(depth)
    }

    /// The stanzas in `bytes` (after [`HEADER`]), as tokio-xmpp parses them.
    fn stanzas(bytes: &[u8]) -> Vec<Stanza> {
        let mut events = rxml::Reader::new(bytes);
        let context = xso::Context::empty();
        let mut stanzas = Vec::new();
        let mut builder = None;
        let mut depth = 0;
        while let Some(Ok(event)) = events.next() {
            if depth == 1 && builder.is_none() {
                if let rxml::Event::StartElement(_, name, attributes) = event {
                    builder = Some(Stanza::from_events(name, attributes, &context).unwrap());
                }
                continue;
            }
            if let Some(nest) = &mut builder {
                if let Some(stanza) = nest.feed(event, &context).unwrap() {
                    stanzas.push(stanza);
                    builder = None;
                }
            } else if let rxml::Event::StartElement(..) = event {
                depth += 1;
            }
        }
        stanzas
    }

    fn refused_request(stanza: &Stanza) -> Option<Refused> {
        match stanza {
            Stanza::Iq(tokio_xmpp::parsers::iq::Iq::Set { payload, .. }) => {
                Refused::of_payload(payload)
            }
            _ => None,
        }
    }

    #[test]
    fn a_stanza_nested_too_deep_is_handed_on_as_its_shell() {
        let iq = "<iq type='set' id='deep' from='room@conference.localhost/mallory' \
            to='focus@auth.localhost/focus'>";
        let jingle = "<jingle xmlns='urn:xmpp:jingle:1' action='source-add' sid='s'>";
        let deep = format!("{iq}{jingle}{}</jingle></iq>", nested(30_000));
        let just = format!("{iq}{jingle}{}</jingle></iq>", nested(MAX_DEPTH - 2));
        let leave = format!(
            "<presence type='unavailable' from='room@conference.localhost/mallory'>{}\
             <x xmlns='http://jabber.org/protocol/muc#user'/></presence>",
            nested(100)
        );
        let after = "<iq type='result' id='2' from='localhost'/> ";
        let stream = format!("{HEADER}{deep}{just}{leave}{after}");
        // In chunks as a socket gives them.
        let chunks: Vec<&[u8]> = stream.as_bytes().chunks(4096).collect();
        let (out, refused, _) = through(&chunks);
        assert_eq!(refused, [Refused::TooDeep, Refused::TooDeep]);
        let out = String::from_utf8(out).unwrap();
        assert_eq!(
            out,
            format!(
                "{HEADER}{iq}<refused xmlns='urn:tutti:focus:refused' reason='too-deep'/>\
                 </iq>{just}<presence type='unavailable' \
                 from='room@conference.localhost/mallory'></presence>{after}"
            )
        );
        let stanzas = stanzas(out.as_bytes());
        assert_eq!(stanzas.len(), 4);
        assert_eq!(refused_request(&stanzas[0]), Some(Refused::TooDeep));
        assert_eq!(refused_request(&stanzas[1]), None);
        assert!(
            matches!(&stanzas[2], Stanza::Presence(p) if p.type_ == tokio_xmpp::parsers::presence::Type::Unavailable)
        );
    }

    #[test]
    fn a_stanza_tokio_xmpp_would_refuse_is_handed_on_as_its_shell_or_not_at_all() {
        let show = "<presence from='room@conference.localhost/mallory'><show>bogus</show>\
            </presence>";
        let threads = "<message type='chat' from='room@conference.localhost/mallory'>\
            <thread>a</thread><thread>b</thread></message>";
        let request = "<iq type='set' id='two' from='room@conference.localhost/mallory'>";
        let no_payload = format!("{request}</iq>");
        let bad_from =
            "<iq type='set' id='3' from='not a jid@@'><ping xmlns='urn:xmpp:ping'/></iq>";
        let bad_error = "<iq type='error' id='4' from='localhost'><x xmlns='urn:example'/></iq>";
        let fine = "<message type='chat' from='room@conference.localhost/alice'><body>hi</body>\
            </message>";
        let stream = format!("{HEADER}{show}{threads}{no_payload}{bad_from}{bad_error}{fine}");
        let (out, refused, _) = through(&[stream.as_bytes()]);
        assert_eq!(refused, [Refused::Malformed; 5]);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!(
                "{HEADER}<presence from='room@conference.localhost/mallory'></presence>\
                 <message type='chat' from='room@conference.localhost/mallory'></message>\
                 {request}<refused xmlns='urn:tutti:focus:refused' reason='malformed'/></iq>{fine}"
            )
        );
    }

    #[test]
    fn what_is_handed_on_does_not_depend_on_how_the_bytes_are_split() {
        let stream = format!(
            "{HEADER}<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>\
             </stream:features> <iq type='set' id='1' from='a@localhost/b'>{}</iq>\
             <presence from='a@localhost/b'><show>no</show></presence>\
             <iq type='result' id='2' from='localhost'/>\n<message from='a@localhost/b'>\
             <body x='&apos;/>'>&lt;</body></message>",
            nested(MAX_DEPTH)
        );
        let whole = through(&[stream.as_bytes()]);
        assert_eq!(whole.1, [Refused::TooDeep, Refused::Malformed]);
        for split in 0..stream.len() {
            let (a, b) = stream.as_bytes().split_at(split);
            assert_eq!(through(&[a, b]), whole, "split at {split}");
        }
    }

    #[test]
    fn prosodys_conflict_and_shutdown_are_found() {
        let conflict = "<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>\
            <text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>Replaced by new connection</text>\
            </stream:error></stream:stream>";
        assert_eq!(conditions(&[HEADER, conflict]), ["conflict"]);
        // The text first, and split anywhere.
        let shutdown = "<stream:error><text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>bye\
            </text><system-shutdown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>";
        let whole = format!("{HEADER}<iq type='result' id='1'/>{shutdown}");
        for split in 0..whole.len() {
            let (a, b) = whole.split_at(split);
            assert_eq!(conditions(&[a, b]), ["system-shutdown"], "split at {split}");
        }
    }

    #[test]
    fn a_stream_restart_inside_the_first_header_is_followed() {
        // STARTTLS or SASL success: a new header without closing the old one.
        let restarted = format!(
            "{HEADER}<stream:features/><success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>\
             {HEADER}<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>\
             </stream:features><stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>\
             </stream:error>"
        );
        assert_eq!(conditions(&[&restarted]), ["conflict"]);
        // Another prefix for the stream namespace.
        let other = "<x:stream xmlns:x='http://etherx.jabber.org/streams' xmlns='jabber:client'>\
            <x:error><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></x:error>";
        assert_eq!(conditions(&[other]), ["policy-violation"]);
    }

    #[test]
    fn what_a_participant_puts_in_a_stanza_is_no_stream_error() {
        let forged = format!(
            "{HEADER}<message from='room@conference.localhost/mallory' type='groupchat'>\
             <body>&lt;stream:error&gt;</body>\
             <stream:error xmlns:stream='http://etherx.jabber.org/streams'>\
             <conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>\
             <x a='&gt; <stream:error>' b=\"/>\"><stream:stream><stream:error><conflict/>\
             </stream:error></stream:stream></x><![CDATA[</message><stream:error><conflict/>]]>\
             <!-- </message><stream:error><conflict/> --></message>\
             <presence from='room@conference.localhost/mallory'><error type='cancel'>\
             <conflict xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>\
             <error><conflict/></error>"
        );
        for split in 0..forged.len() {
            let (a, b) = forged.split_at(split);
            assert!(conditions(&[a, b]).is_empty(), "split at {split}");
        }
        // Still following: a real one afterwards is found.
        let mut inbound = Inbound::default();
        let mut out = Vec::new();
        assert_eq!(inbound.feed(forged.as_bytes(), &mut out).stream_error, None);
        assert_eq!(
            inbound
                .feed(
                    b"<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>",
                    &mut out
                )
                .stream_error,
            Some("conflict".to_owned())
        );
    }
}
