//! RTP sessions (XEP-0167) with RTCP feedback (XEP-0293), header extensions (XEP-0294) and
//! source-specific media (XEP-0339).

use minidom::Element;
use rxml::xml_ncname;

use super::Senders;
use crate::error::JingleError;
use crate::extensions::Extensions;
use crate::ns;
use crate::xml::{marker, ElementReader, ElementWriter};

/// The largest RTP payload type number (7 bits).
pub const MAX_PAYLOAD_TYPE: u8 = 127;

/// A `<description xmlns='urn:xmpp:jingle:apps:rtp:1'>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RtpDescription {
    /// `audio`, `video` or `application`; lib-jitsi-meet omits it in some `source-add`s.
    pub media: Option<String>,
    /// The sender's primary SSRC, as some clients announce it.
    pub ssrc: Option<u32>,
    pub maxptime: Option<u32>,
    /// In order of preference.
    pub payload_types: Vec<PayloadType>,
    /// Feedback that applies to every payload type (XEP-0293 §3.2).
    pub rtcp_feedback: Vec<RtcpFeedback>,
    pub header_extensions: Vec<HeaderExtension>,
    /// `<extmap-allow-mixed/>`: one- and two-byte header extensions may be mixed.
    pub extmap_allow_mixed: bool,
    /// `<rtcp-mux/>`: RTCP shares the RTP port.
    pub rtcp_mux: bool,
    pub sources: Vec<Source>,
    pub source_groups: Vec<SourceGroup>,
    pub extensions: Extensions,
}

/// A `<payload-type>`: one codec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadType {
    /// 0 to [`MAX_PAYLOAD_TYPE`].
    pub id: u8,
    pub name: Option<String>,
    pub clockrate: Option<u32>,
    pub channels: Option<u32>,
    pub ptime: Option<u32>,
    pub maxptime: Option<u32>,
    /// Format parameters (SDP `fmtp`), e.g. `minptime`, `apt`, `profile-level-id`.
    pub parameters: Vec<Parameter>,
    pub rtcp_feedback: Vec<RtcpFeedback>,
    pub extensions: Extensions,
}

/// A `<parameter name value>`, of a payload type or of a source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parameter {
    pub name: String,
    /// Required for payload types, optional for sources (XEP-0339 `a=ssrc` attributes).
    pub value: Option<String>,
    pub extensions: Extensions,
}

/// An `<rtcp-fb type subtype>` (XEP-0293), e.g. `nack` / `pli`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtcpFeedback {
    pub kind: String,
    pub subtype: Option<String>,
    pub extensions: Extensions,
}

/// An `<rtp-hdrext id uri>` (XEP-0294).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderExtension {
    /// 1 to 255 (RFC 8285; 15 and up need two-byte headers).
    pub id: u8,
    pub uri: String,
    pub senders: Option<Senders>,
    pub extensions: Extensions,
}

/// A `<source ssrc>` (XEP-0339): one RTP stream a participant sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub ssrc: u32,
    /// The source name lib-jitsi-meet gives each track, e.g. `abcd1234-v0`.
    pub name: Option<String>,
    /// lib-jitsi-meet's `camera` / `desktop`.
    pub video_type: Option<String>,
    /// `msid`, `cname` and other `a=ssrc` attributes.
    pub parameters: Vec<Parameter>,
    /// Unknown attributes and children, e.g. Jitsi's `<ssrc-info owner>`.
    pub extensions: Extensions,
}

/// An `<ssrc-group semantics>` (XEP-0339): SSRCs that belong together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceGroup {
    pub semantics: GroupSemantics,
    pub ssrcs: Vec<u32>,
    pub extensions: Extensions,
}

/// The `semantics` of an `ssrc-group` (RFC 5576 and its registry).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum GroupSemantics {
    /// Simulcast: the layers of one video, lowest first (Jitsi's `SIM`).
    Simulcast,
    /// Flow identification: a media SSRC and its RTX SSRC.
    Fid,
    /// Anything else (e.g. `FEC-FR`), kept as written.
    Other(String),
}

impl GroupSemantics {
    pub fn as_str(&self) -> &str {
        match self {
            GroupSemantics::Simulcast => "SIM",
            GroupSemantics::Fid => "FID",
            GroupSemantics::Other(other) => other,
        }
    }
}

impl From<&str> for GroupSemantics {
    fn from(value: &str) -> Self {
        match value {
            "SIM" => GroupSemantics::Simulcast,
            "FID" => GroupSemantics::Fid,
            other => GroupSemantics::Other(other.to_owned()),
        }
    }
}

const SSRC_EXPECTED: &str = "an SSRC (a 32-bit unsigned number)";

impl RtpDescription {
    /// An empty description of this media type.
    pub fn new(media: impl Into<String>) -> Self {
        RtpDescription {
            media: Some(media.into()),
            ..RtpDescription::default()
        }
    }

    pub(crate) fn from_element(element: &Element) -> Result<Self, JingleError> {
        let mut reader = ElementReader::open(element, "description", ns::JINGLE_RTP)?;
        let mut description = RtpDescription {
            media: reader.optional("media"),
            ssrc: reader.optional_parsed("ssrc", SSRC_EXPECTED)?,
            maxptime: reader.optional_parsed("maxptime", "a number of milliseconds")?,
            ..RtpDescription::default()
        };
        let mut unknown = Vec::new();
        for child in element.children() {
            match (child.name(), child.ns().as_str()) {
                ("payload-type", ns::JINGLE_RTP) => description
                    .payload_types
                    .push(PayloadType::from_element(child)?),
                ("rtcp-fb", ns::JINGLE_RTCP_FB) => description
                    .rtcp_feedback
                    .push(RtcpFeedback::from_element(child)?),
                ("rtp-hdrext", ns::JINGLE_RTP_HDREXT) => description
                    .header_extensions
                    .push(HeaderExtension::from_element(child)?),
                ("extmap-allow-mixed", ns::JINGLE_RTP_HDREXT) => {
                    description.extmap_allow_mixed = true
                }
                ("rtcp-mux", ns::JINGLE_RTP) => description.rtcp_mux = true,
                ("source", ns::JINGLE_SSMA) => {
                    description.sources.push(Source::from_element(child)?)
                }
                ("ssrc-group", ns::JINGLE_SSMA) => description
                    .source_groups
                    .push(SourceGroup::from_element(child)?),
                _ => unknown.push(child.clone()),
            }
        }
        description.extensions = reader.finish(unknown);
        Ok(description)
    }

    pub(crate) fn to_element(&self) -> Element {
        ElementWriter::new("description", ns::JINGLE_RTP, &self.extensions)
            .optional_attr(xml_ncname!("media"), self.media.as_ref())
            .optional_attr(xml_ncname!("ssrc"), self.ssrc)
            .optional_attr(xml_ncname!("maxptime"), self.maxptime)
            .children(self.payload_types.iter().map(PayloadType::to_element))
            .children(self.rtcp_feedback.iter().map(RtcpFeedback::to_element))
            .children(
                self.header_extensions
                    .iter()
                    .map(HeaderExtension::to_element),
            )
            .children(
                self.extmap_allow_mixed
                    .then(|| marker("extmap-allow-mixed", ns::JINGLE_RTP_HDREXT)),
            )
            .children(self.rtcp_mux.then(|| marker("rtcp-mux", ns::JINGLE_RTP)))
            .children(self.sources.iter().map(Source::to_element))
            .children(self.source_groups.iter().map(SourceGroup::to_element))
            .build()
    }
}

impl PayloadType {
    /// A codec with no parameters or feedback.
    pub fn new(id: u8, name: impl Into<String>, clockrate: u32, channels: Option<u32>) -> Self {
        PayloadType {
            id,
            name: Some(name.into()),
            clockrate: Some(clockrate),
            channels,
            ptime: None,
            maxptime: None,
            parameters: Vec::new(),
            rtcp_feedback: Vec::new(),
            extensions: Extensions::default(),
        }
    }

    /// The value of the format parameter `name`.
    pub fn parameter(&self, name: &str) -> Option<&str> {
        self.parameters
            .iter()
            .find(|parameter| parameter.name == name)
            .and_then(|parameter| parameter.value.as_deref())
    }

    fn from_element(element: &Element) -> Result<Self, JingleError> {
        let mut reader = ElementReader::open(element, "payload-type", ns::JINGLE_RTP)?;
        let id = read_payload_type_id(&mut reader, "id")?;
        let mut payload_type = PayloadType {
            id,
            name: reader.optional("name"),
            clockrate: reader.optional_parsed("clockrate", "a clock rate in Hz")?,
            channels: reader.optional_parsed("channels", "a number of channels")?,
            ptime: reader.optional_parsed("ptime", "a number of milliseconds")?,
            maxptime: reader.optional_parsed("maxptime", "a number of milliseconds")?,
            parameters: Vec::new(),
            rtcp_feedback: Vec::new(),
            extensions: Extensions::default(),
        };
        let mut unknown = Vec::new();
        for child in element.children() {
            if child.is("parameter", ns::JINGLE_RTP) {
                payload_type
                    .parameters
                    .push(Parameter::from_element(child, ns::JINGLE_RTP)?);
            } else if child.is("rtcp-fb", ns::JINGLE_RTCP_FB) {
                payload_type
                    .rtcp_feedback
                    .push(RtcpFeedback::from_element(child)?);
            } else {
                unknown.push(child.clone());
            }
        }
        payload_type.extensions = reader.finish(unknown);
        Ok(payload_type)
    }

    fn to_element(&self) -> Element {
        ElementWriter::new("payload-type", ns::JINGLE_RTP, &self.extensions)
            .attr(xml_ncname!("id"), self.id)
            .optional_attr(xml_ncname!("name"), self.name.as_ref())
            .optional_attr(xml_ncname!("clockrate"), self.clockrate)
            .optional_attr(xml_ncname!("channels"), self.channels)
            .optional_attr(xml_ncname!("ptime"), self.ptime)
            .optional_attr(xml_ncname!("maxptime"), self.maxptime)
            .children(
                self.parameters
                    .iter()
                    .map(|parameter| parameter.to_element(ns::JINGLE_RTP)),
            )
            .children(self.rtcp_feedback.iter().map(RtcpFeedback::to_element))
            .build()
    }
}

/// Reads a payload type number, which RTP limits to 7 bits.
fn read_payload_type_id(
    reader: &mut ElementReader,
    attribute: &'static str,
) -> Result<u8, JingleError> {
    const EXPECTED: &str = "a payload type from 0 to 127";
    let value = reader.required(attribute)?;
    value
        .parse::<u8>()
        .ok()
        .filter(|id| *id <= MAX_PAYLOAD_TYPE)
        .ok_or_else(|| JingleError::invalid(reader.name(), attribute, &value, EXPECTED))
}

impl Parameter {
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Parameter {
            name: name.into(),
            value: Some(value.into()),
            extensions: Extensions::default(),
        }
    }

    fn from_element(element: &Element, namespace: &'static str) -> Result<Self, JingleError> {
        let mut reader = ElementReader::open(element, "parameter", namespace)?;
        let name = reader.required("name")?;
        let value = reader.optional("value");
        let unknown = element.children().cloned().collect();
        Ok(Parameter {
            name,
            value,
            extensions: reader.finish(unknown),
        })
    }

    fn to_element(&self, namespace: &str) -> Element {
        ElementWriter::new("parameter", namespace, &self.extensions)
            .attr(xml_ncname!("name"), &self.name)
            .optional_attr(xml_ncname!("value"), self.value.as_ref())
            .build()
    }
}

impl RtcpFeedback {
    /// Feedback of type `kind`, e.g. `nack`, with an optional subtype, e.g. `pli`.
    pub fn new(kind: impl Into<String>, subtype: Option<&str>) -> Self {
        RtcpFeedback {
            kind: kind.into(),
            subtype: subtype.map(str::to_owned),
            extensions: Extensions::default(),
        }
    }

    /// `type` and `subtype` joined by a space, as SDP writes them (`nack pli`).
    pub fn sdp_value(&self) -> String {
        match &self.subtype {
            Some(subtype) => format!("{} {subtype}", self.kind),
            None => self.kind.clone(),
        }
    }

    fn from_element(element: &Element) -> Result<Self, JingleError> {
        let mut reader = ElementReader::open(element, "rtcp-fb", ns::JINGLE_RTCP_FB)?;
        let kind = reader.required("type")?;
        let subtype = reader.optional("subtype");
        let unknown = element.children().cloned().collect();
        Ok(RtcpFeedback {
            kind,
            subtype,
            extensions: reader.finish(unknown),
        })
    }

    fn to_element(&self) -> Element {
        ElementWriter::new("rtcp-fb", ns::JINGLE_RTCP_FB, &self.extensions)
            .attr(xml_ncname!("type"), &self.kind)
            .optional_attr(xml_ncname!("subtype"), self.subtype.as_ref())
            .build()
    }
}

impl HeaderExtension {
    pub fn new(id: u8, uri: impl Into<String>) -> Self {
        HeaderExtension {
            id,
            uri: uri.into(),
            senders: None,
            extensions: Extensions::default(),
        }
    }

    fn from_element(element: &Element) -> Result<Self, JingleError> {
        const EXPECTED: &str = "a header extension id from 1 to 255";
        let mut reader = ElementReader::open(element, "rtp-hdrext", ns::JINGLE_RTP_HDREXT)?;
        let id: u8 = reader.required_parsed("id", EXPECTED)?;
        if id == 0 {
            return Err(JingleError::invalid("rtp-hdrext", "id", "0", EXPECTED));
        }
        let uri = reader.required("uri")?;
        let senders = reader.optional_parsed("senders", Senders::EXPECTED)?;
        let unknown = element.children().cloned().collect();
        Ok(HeaderExtension {
            id,
            uri,
            senders,
            extensions: reader.finish(unknown),
        })
    }

    fn to_element(&self) -> Element {
        ElementWriter::new("rtp-hdrext", ns::JINGLE_RTP_HDREXT, &self.extensions)
            .attr(xml_ncname!("id"), self.id)
            .attr(xml_ncname!("uri"), &self.uri)
            .optional_attr(xml_ncname!("senders"), self.senders)
            .build()
    }
}

impl Source {
    /// A source with no name or parameters.
    pub fn new(ssrc: u32) -> Self {
        Source {
            ssrc,
            name: None,
            video_type: None,
            parameters: Vec::new(),
            extensions: Extensions::default(),
        }
    }

    /// The value of the source parameter `name`, e.g. `msid`.
    pub fn parameter(&self, name: &str) -> Option<&str> {
        self.parameters
            .iter()
            .find(|parameter| parameter.name == name)
            .and_then(|parameter| parameter.value.as_deref())
    }

    pub(crate) fn from_element(element: &Element) -> Result<Self, JingleError> {
        let mut reader = ElementReader::open(element, "source", ns::JINGLE_SSMA)?;
        let ssrc = reader.required_parsed("ssrc", SSRC_EXPECTED)?;
        let name = reader.optional("name");
        let video_type = reader.optional("videoType");
        let mut parameters = Vec::new();
        let mut unknown = Vec::new();
        for child in element.children() {
            if child.is("parameter", ns::JINGLE_SSMA) {
                parameters.push(Parameter::from_element(child, ns::JINGLE_SSMA)?);
            } else {
                unknown.push(child.clone());
            }
        }
        Ok(Source {
            ssrc,
            name,
            video_type,
            parameters,
            extensions: reader.finish(unknown),
        })
    }

    pub(crate) fn to_element(&self) -> Element {
        ElementWriter::new("source", ns::JINGLE_SSMA, &self.extensions)
            .attr(xml_ncname!("ssrc"), self.ssrc)
            .optional_attr(xml_ncname!("name"), self.name.as_ref())
            .optional_attr(xml_ncname!("videoType"), self.video_type.as_ref())
            .children(
                self.parameters
                    .iter()
                    .map(|parameter| parameter.to_element(ns::JINGLE_SSMA)),
            )
            .build()
    }
}

impl SourceGroup {
    pub fn new(semantics: GroupSemantics, ssrcs: Vec<u32>) -> Self {
        SourceGroup {
            semantics,
            ssrcs,
            extensions: Extensions::default(),
        }
    }

    fn from_element(element: &Element) -> Result<Self, JingleError> {
        let mut reader = ElementReader::open(element, "ssrc-group", ns::JINGLE_SSMA)?;
        let semantics = GroupSemantics::from(reader.required("semantics")?.as_str());
        let mut ssrcs = Vec::new();
        let mut unknown = Vec::new();
        for child in element.children() {
            if child.is("source", ns::JINGLE_SSMA) {
                let mut member = ElementReader::open(child, "source", ns::JINGLE_SSMA)?;
                ssrcs.push(member.required_parsed("ssrc", SSRC_EXPECTED)?);
            } else {
                unknown.push(child.clone());
            }
        }
        Ok(SourceGroup {
            semantics,
            ssrcs,
            extensions: reader.finish(unknown),
        })
    }

    fn to_element(&self) -> Element {
        ElementWriter::new("ssrc-group", ns::JINGLE_SSMA, &self.extensions)
            .attr(xml_ncname!("semantics"), self.semantics.as_str())
            .children(self.ssrcs.iter().map(|ssrc| {
                ElementWriter::new("source", ns::JINGLE_SSMA, &Extensions::default())
                    .attr(xml_ncname!("ssrc"), ssrc)
                    .build()
            }))
            .build()
    }
}
