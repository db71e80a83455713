//! Stream errors the XMPP server sends, read from the bytes of the connection.
//!
//! tokio-xmpp 6.0.0 handles a `<stream:error>` that arrives on an established stream as an
//! unknown element: it answers with a stream error of its own, drops the connection and
//! reconnects, and tells its user only that the stream was suspended. The focus must know why:
//! a `<conflict/>` means another focus logged in with the same account and resource, and
//! reconnecting would kick it out in turn, and so on for ever (docs/focus.md, XMPP server).
//! So the focus's connections pass every byte they receive through a [`StreamErrorWatch`].
//!
//! The watch follows the element nesting with a small lexer (tags, attribute values in quotes,
//! and the `<?…?>`, `<!--…-->`, `<![CDATA[…]]>` constructs that XMPP forbids inside a stream but
//! a stream header's XML declaration uses), not a full parser: it recognises the stream header
//! (`<PREFIX:stream>`, at the top, or directly inside the previous header after a stream
//! restart, which does not close the previous one) and a stream error: an `<PREFIX:error>`
//! directly inside it, whose first child other than `<text>` names the condition. Whatever a
//! participant puts into a stanza is nested inside that stanza, never directly inside the
//! stream, so it cannot pass for a stream error.

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

/// Finds stream errors in the bytes a client receives. Feed it every byte, in order.
#[derive(Debug)]
pub struct StreamErrorWatch {
    state: State,
    name: Vec<u8>,
    frames: Frames,
}

/// Longest element name kept; longer ones are no stream or condition names.
const MAX_NAME: usize = 64;

impl Default for StreamErrorWatch {
    fn default() -> Self {
        StreamErrorWatch {
            state: State::Text,
            name: Vec::with_capacity(MAX_NAME),
            frames: Frames::default(),
        }
    }
}

impl StreamErrorWatch {
    /// Reads `bytes`; returns the condition of a stream error that completed in them (its
    /// condition element started), e.g. `conflict` or `system-shutdown`.
    pub fn feed(&mut self, bytes: &[u8]) -> Option<String> {
        let mut found = None;
        for &byte in bytes {
            if let Some(condition) = self.step(byte) {
                found = Some(condition);
            }
        }
        found
    }

    fn step(&mut self, byte: u8) -> Option<String> {
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
                b'>' => return self.start_tag(false),
                b'/' => self.state = State::SelfClosing,
                b' ' | b'\t' | b'\r' | b'\n' => self.state = State::InStartTag,
                _ => {
                    if self.name.len() < MAX_NAME {
                        self.name.push(byte);
                    }
                }
            },
            State::InStartTag => match byte {
                b'>' => return self.start_tag(false),
                b'/' => self.state = State::SelfClosing,
                b'"' | b'\'' => self.state = State::Quoted(byte),
                _ => {}
            },
            State::SelfClosing => match byte {
                b'>' => return self.start_tag(true),
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
                    self.end_element();
                    self.state = State::Text;
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
        None
    }

    /// A start tag ended (`empty`: `/>`). Returns a stream error's condition when this is it.
    fn start_tag(&mut self, empty: bool) -> Option<String> {
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
        let mut found = None;
        if top && local == b"stream" {
            frames.root = Some((depth, prefix.to_vec()));
            frames.in_error = false;
        } else if top
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
            found = Some(condition);
        }
        if !empty {
            frames.depth += 1;
        }
        found
    }

    fn end_element(&mut self) {
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
        xmlns:stream='http://etherx.jabber.org/streams' id='x' from='localhost' version='1.0'>";

    fn conditions(chunks: &[&str]) -> Vec<String> {
        let mut watch = StreamErrorWatch::default();
        chunks
            .iter()
            .filter_map(|chunk| watch.feed(chunk.as_bytes()))
            .collect()
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
        let mut watch = StreamErrorWatch::default();
        assert_eq!(watch.feed(forged.as_bytes()), None);
        assert_eq!(
            watch.feed(b"<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"),
            Some("conflict".to_owned())
        );
    }
}
