//! A lossless model of Jingle (XEP-0166) as lib-jitsi-meet clients and Jicofo speak it.
//!
//! Parsing checks what the XEPs require and what the focus relies on (numbers are numbers, enums
//! are known values) and refuses the element with a [`JingleError`] otherwise; everything else,
//! known to the XEPs or not, is kept: fields for what the focus reads, [`Extensions`] for the
//! rest. Writing an element back yields the same tree up to the order of siblings, which
//! Jingle does not give a meaning to, except among siblings of one kind (payload types keep
//! their order of preference, sources and candidates their order).
//!
//! The one deliberate simplification: members of a group (`<content name>` in a BUNDLE group,
//! `<source ssrc>` in an `ssrc-group`) are references and only their key is kept.
//!
//! Jitsi's own elements (`ssrc-info`, `web-socket`, `bridge-session`) are not fields here; they
//! stay in [`Extensions`] and are typed in [`crate::jitsi`].

mod ice;
mod rtp;

use std::fmt;

use minidom::Element;
use rxml::xml_ncname;

pub use ice::{Candidate, CandidateType, DtlsSetup, Fingerprint, IceUdpTransport, SctpMap};
pub use rtp::{
    GroupSemantics, HeaderExtension, Parameter, PayloadType, RtcpFeedback, RtpDescription, Source,
    SourceGroup, MAX_PAYLOAD_TYPE,
};

use crate::error::JingleError;
use crate::extensions::Extensions;
use crate::ns;
use crate::xml::{ElementReader, ElementWriter};

/// Declares an enum of the fixed string values of an attribute or element name.
macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        $name:ident, expected = $expected:literal {
            $($(#[$variant_meta:meta])* $variant:ident = $text:literal,)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$variant_meta])* $variant,)+
        }

        impl $name {
            /// What a valid value is, for errors.
            pub const EXPECTED: &'static str = $expected;

            /// The value as it is written on the wire.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = ();

            fn from_str(value: &str) -> Result<Self, ()> {
                match value {
                    $($text => Ok($name::$variant),)+
                    _ => Err(()),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use string_enum;

string_enum! {
    /// The `action` of a Jingle request: XEP-0166's, plus Jitsi's `source-add` and
    /// `source-remove` (XEP-0339 sources added to or removed from a running session).
    Action, expected = "a Jingle action (e.g. session-initiate, session-accept, transport-info, source-add)" {
        ContentAccept = "content-accept",
        ContentAdd = "content-add",
        ContentModify = "content-modify",
        ContentReject = "content-reject",
        ContentRemove = "content-remove",
        DescriptionInfo = "description-info",
        SecurityInfo = "security-info",
        SessionAccept = "session-accept",
        SessionInfo = "session-info",
        SessionInitiate = "session-initiate",
        SessionTerminate = "session-terminate",
        SourceAdd = "source-add",
        SourceRemove = "source-remove",
        TransportAccept = "transport-accept",
        TransportInfo = "transport-info",
        TransportReject = "transport-reject",
        TransportReplace = "transport-replace",
    }
}

string_enum! {
    /// Which party created a content.
    Creator, expected = "initiator or responder" {
        Initiator = "initiator",
        Responder = "responder",
    }
}

string_enum! {
    /// Which parties send media of a content (XEP-0166 `senders`; absent means both).
    Senders, expected = "both, initiator, responder or none" {
        Both = "both",
        Initiator = "initiator",
        Responder = "responder",
        None = "none",
    }
}

string_enum! {
    /// The defined conditions of a `<reason>` (XEP-0166 §7.4), except `alternative-session`,
    /// which carries a session id and is [`ReasonCondition::AlternativeSession`].
    ReasonKind, expected = "a Jingle reason condition" {
        Busy = "busy",
        Cancel = "cancel",
        ConnectivityError = "connectivity-error",
        Decline = "decline",
        Expired = "expired",
        FailedApplication = "failed-application",
        FailedTransport = "failed-transport",
        GeneralError = "general-error",
        Gone = "gone",
        IncompatibleParameters = "incompatible-parameters",
        MediaError = "media-error",
        SecurityError = "security-error",
        Success = "success",
        Timeout = "timeout",
        UnsupportedApplications = "unsupported-applications",
        UnsupportedTransports = "unsupported-transports",
    }
}

/// A `<jingle xmlns='urn:xmpp:jingle:1'>` element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jingle {
    pub action: Action,
    pub sid: String,
    pub initiator: Option<String>,
    pub responder: Option<String>,
    pub contents: Vec<Content>,
    /// XEP-0338 groups, e.g. BUNDLE.
    pub groups: Vec<Group>,
    pub reason: Option<Reason>,
    /// Unknown attributes and children, e.g. Jitsi's `<bridge-session>`.
    pub extensions: Extensions,
}

/// A `<content>`: one media stream's description and transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Content {
    /// Required by XEP-0166, but lib-jitsi-meet leaves it out of `source-add` / `source-remove`.
    pub creator: Option<Creator>,
    pub name: String,
    pub senders: Option<Senders>,
    pub disposition: Option<String>,
    pub description: Option<RtpDescription>,
    pub transport: Option<IceUdpTransport>,
    pub extensions: Extensions,
}

/// An XEP-0338 `<group>` of contents, e.g. `semantics='BUNDLE'`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub semantics: String,
    /// Names of the grouped contents.
    pub contents: Vec<String>,
    pub extensions: Extensions,
}

/// Why a session ends (or a content is refused).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    pub condition: ReasonCondition,
    pub text: Option<ReasonText>,
    pub extensions: Extensions,
}

/// The condition element of a `<reason>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReasonCondition {
    /// `<alternative-session><sid>..</sid></alternative-session>`.
    AlternativeSession {
        sid: String,
    },
    Defined(ReasonKind),
}

/// The human-readable `<text>` of a `<reason>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReasonText {
    pub text: String,
    /// Unknown attributes, e.g. `xml:lang`.
    pub extensions: Extensions,
}

impl Jingle {
    /// A request with no contents, groups or reason.
    pub fn new(action: Action, sid: impl Into<String>) -> Self {
        Jingle {
            action,
            sid: sid.into(),
            initiator: None,
            responder: None,
            contents: Vec::new(),
            groups: Vec::new(),
            reason: None,
            extensions: Extensions::default(),
        }
    }

    /// Reads a `<jingle>` element.
    pub fn from_element(element: &Element) -> Result<Self, JingleError> {
        let mut reader = ElementReader::open(element, "jingle", ns::JINGLE)?;
        let action = reader.optional_parsed("action", Action::EXPECTED)?.ok_or(
            JingleError::MissingAttribute {
                element: "jingle",
                attribute: "action",
            },
        )?;
        let sid = reader.required("sid")?;
        if sid.is_empty() {
            return Err(JingleError::invalid(
                "jingle",
                "sid",
                &sid,
                "a non-empty session id",
            ));
        }
        let initiator = reader.optional("initiator");
        let responder = reader.optional("responder");
        let mut contents = Vec::new();
        let mut groups = Vec::new();
        let mut reason = None;
        let mut unknown = Vec::new();
        for child in element.children() {
            if child.is("content", ns::JINGLE) {
                contents.push(Content::from_element(child)?);
            } else if child.is("group", ns::JINGLE_GROUPING) {
                groups.push(Group::from_element(child)?);
            } else if child.is("reason", ns::JINGLE) && reason.is_none() {
                reason = Some(Reason::from_element(child)?);
            } else {
                unknown.push(child.clone());
            }
        }
        Ok(Jingle {
            action,
            sid,
            initiator,
            responder,
            contents,
            groups,
            reason,
            extensions: reader.finish(unknown),
        })
    }

    /// Writes the `<jingle>` element.
    pub fn to_element(&self) -> Element {
        ElementWriter::new("jingle", ns::JINGLE, &self.extensions)
            .attr(xml_ncname!("action"), self.action)
            .attr(xml_ncname!("sid"), &self.sid)
            .optional_attr(xml_ncname!("initiator"), self.initiator.as_ref())
            .optional_attr(xml_ncname!("responder"), self.responder.as_ref())
            .children(self.groups.iter().map(Group::to_element))
            .children(self.contents.iter().map(Content::to_element))
            .children(self.reason.iter().map(Reason::to_element))
            .build()
    }

    /// The content with this name.
    pub fn content(&self, name: &str) -> Option<&Content> {
        self.contents.iter().find(|content| content.name == name)
    }

    /// True when a BUNDLE group is present: every content then shares one transport.
    pub fn is_bundled(&self) -> bool {
        self.groups.iter().any(|group| group.semantics == "BUNDLE")
    }
}

impl TryFrom<&Element> for Jingle {
    type Error = JingleError;

    fn try_from(element: &Element) -> Result<Self, JingleError> {
        Jingle::from_element(element)
    }
}

impl From<&Jingle> for Element {
    fn from(jingle: &Jingle) -> Element {
        jingle.to_element()
    }
}

impl Content {
    /// A content with this name and nothing in it.
    pub fn new(name: impl Into<String>) -> Self {
        Content {
            creator: None,
            name: name.into(),
            senders: None,
            disposition: None,
            description: None,
            transport: None,
            extensions: Extensions::default(),
        }
    }

    fn from_element(element: &Element) -> Result<Self, JingleError> {
        let mut reader = ElementReader::open(element, "content", ns::JINGLE)?;
        let creator = reader.optional_parsed("creator", Creator::EXPECTED)?;
        let name = reader.required("name")?;
        let senders = reader.optional_parsed("senders", Senders::EXPECTED)?;
        let disposition = reader.optional("disposition");
        let mut description = None;
        let mut transport = None;
        let mut unknown = Vec::new();
        for child in element.children() {
            if child.is("description", ns::JINGLE_RTP) && description.is_none() {
                description = Some(RtpDescription::from_element(child)?);
            } else if child.is("transport", ns::JINGLE_ICE_UDP) && transport.is_none() {
                transport = Some(IceUdpTransport::from_element(child)?);
            } else {
                unknown.push(child.clone());
            }
        }
        Ok(Content {
            creator,
            name,
            senders,
            disposition,
            description,
            transport,
            extensions: reader.finish(unknown),
        })
    }

    fn to_element(&self) -> Element {
        ElementWriter::new("content", ns::JINGLE, &self.extensions)
            .optional_attr(xml_ncname!("creator"), self.creator)
            .attr(xml_ncname!("name"), &self.name)
            .optional_attr(xml_ncname!("senders"), self.senders)
            .optional_attr(xml_ncname!("disposition"), self.disposition.as_ref())
            .children(self.description.iter().map(RtpDescription::to_element))
            .children(self.transport.iter().map(IceUdpTransport::to_element))
            .build()
    }
}

impl Group {
    /// A BUNDLE group of these contents.
    pub fn bundle<S: Into<String>>(contents: impl IntoIterator<Item = S>) -> Self {
        Group {
            semantics: "BUNDLE".to_owned(),
            contents: contents.into_iter().map(Into::into).collect(),
            extensions: Extensions::default(),
        }
    }

    fn from_element(element: &Element) -> Result<Self, JingleError> {
        let mut reader = ElementReader::open(element, "group", ns::JINGLE_GROUPING)?;
        let semantics = reader.required("semantics")?;
        let mut contents = Vec::new();
        let mut unknown = Vec::new();
        for child in element.children() {
            if child.is("content", ns::JINGLE_GROUPING) {
                let name = child.attr("name").ok_or(JingleError::MissingAttribute {
                    element: "group/content",
                    attribute: "name",
                })?;
                contents.push(name.to_owned());
            } else {
                unknown.push(child.clone());
            }
        }
        Ok(Group {
            semantics,
            contents,
            extensions: reader.finish(unknown),
        })
    }

    fn to_element(&self) -> Element {
        ElementWriter::new("group", ns::JINGLE_GROUPING, &self.extensions)
            .attr(xml_ncname!("semantics"), &self.semantics)
            .children(self.contents.iter().map(|name| {
                ElementWriter::new("content", ns::JINGLE_GROUPING, &Extensions::default())
                    .attr(xml_ncname!("name"), name)
                    .build()
            }))
            .build()
    }
}

impl Reason {
    /// A reason with a defined condition and no text.
    pub fn new(kind: ReasonKind) -> Self {
        Reason {
            condition: ReasonCondition::Defined(kind),
            text: None,
            extensions: Extensions::default(),
        }
    }

    /// The same reason with a human-readable text.
    pub fn with_text(mut self, text: impl Into<String>) -> Self {
        self.text = Some(ReasonText {
            text: text.into(),
            extensions: Extensions::default(),
        });
        self
    }

    fn from_element(element: &Element) -> Result<Self, JingleError> {
        let reader = ElementReader::open(element, "reason", ns::JINGLE)?;
        let mut condition = None;
        let mut text = None;
        let mut unknown = Vec::new();
        for child in element.children() {
            let in_jingle = child.has_ns(ns::JINGLE);
            let defined_condition = match (in_jingle, &condition) {
                (true, None) => child.name().parse::<ReasonKind>().ok(),
                _ => None,
            };
            if in_jingle && child.name() == "text" && text.is_none() {
                let text_reader = ElementReader::open(child, "text", ns::JINGLE)?;
                text = Some(ReasonText {
                    text: child.text(),
                    extensions: text_reader.finish(Vec::new()),
                });
            } else if in_jingle && child.name() == "alternative-session" && condition.is_none() {
                let sid = child
                    .get_child("sid", ns::JINGLE)
                    .map(Element::text)
                    .filter(|sid| !sid.is_empty())
                    .ok_or(JingleError::MissingChild {
                        element: "alternative-session",
                        child: "sid",
                    })?;
                condition = Some(ReasonCondition::AlternativeSession { sid });
            } else if let Some(kind) = defined_condition {
                condition = Some(ReasonCondition::Defined(kind));
            } else {
                unknown.push(child.clone());
            }
        }
        let condition = condition.ok_or(JingleError::MissingChild {
            element: reader.name(),
            child: "condition",
        })?;
        Ok(Reason {
            condition,
            text,
            extensions: reader.finish(unknown),
        })
    }

    fn to_element(&self) -> Element {
        let condition = match &self.condition {
            ReasonCondition::AlternativeSession { sid } => {
                Element::builder("alternative-session", ns::JINGLE)
                    .append(
                        Element::builder("sid", ns::JINGLE)
                            .append(sid.as_str())
                            .build(),
                    )
                    .build()
            }
            ReasonCondition::Defined(kind) => Element::bare(kind.as_str(), ns::JINGLE),
        };
        ElementWriter::new("reason", ns::JINGLE, &self.extensions)
            .child(condition)
            .children(self.text.iter().map(|text| {
                ElementWriter::new("text", ns::JINGLE, &text.extensions)
                    .text(&text.text)
                    .build()
            }))
            .build()
    }
}

impl fmt::Display for ReasonCondition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReasonCondition::AlternativeSession { sid } => write!(f, "alternative-session {sid}"),
            ReasonCondition::Defined(kind) => f.write_str(kind.as_str()),
        }
    }
}

#[cfg(test)]
mod tests;
