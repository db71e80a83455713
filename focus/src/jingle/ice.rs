//! The ICE-UDP transport (XEP-0176) with its DTLS fingerprint (XEP-0320) and SCTP map
//! (XEP-0343).

use minidom::Element;
use rxml::xml_ncname;

use super::string_enum;
use crate::error::JingleError;
use crate::extensions::Extensions;
use crate::ns;
use crate::xml::{marker, ElementReader, ElementWriter};

string_enum! {
    /// An ICE candidate's type (RFC 8445).
    CandidateType, expected = "host, srflx, prflx or relay" {
        Host = "host",
        ServerReflexive = "srflx",
        PeerReflexive = "prflx",
        Relay = "relay",
    }
}

string_enum! {
    /// The DTLS role a side takes (RFC 4145 `setup`, XEP-0320).
    DtlsSetup, expected = "actpass, active, passive or holdconn" {
        /// Either; the answerer chooses (what an offer says).
        Actpass = "actpass",
        /// This side sends the DTLS ClientHello.
        Active = "active",
        /// This side waits for it.
        Passive = "passive",
        Holdconn = "holdconn",
    }
}

/// A `<transport xmlns='urn:xmpp:jingle:transports:ice-udp:1'>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IceUdpTransport {
    pub ufrag: Option<String>,
    pub pwd: Option<String>,
    pub candidates: Vec<Candidate>,
    pub fingerprints: Vec<Fingerprint>,
    /// `<rtcp-mux/>` as Jicofo puts it in the transport.
    pub rtcp_mux: bool,
    pub sctp_maps: Vec<SctpMap>,
    /// Unknown attributes and children, e.g. Jitsi's `<web-socket>`.
    pub extensions: Extensions,
}

/// An ICE `<candidate>`.
///
/// XEP-0176 also requires `generation`, `id` and `network`; they are kept when present but not
/// required, because nothing the focus does depends on them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub component: u8,
    pub foundation: String,
    pub generation: Option<u32>,
    pub id: Option<String>,
    /// An IP address, or a host name for mDNS (`.local`) candidates.
    pub ip: String,
    pub network: Option<u32>,
    pub port: u16,
    pub priority: u32,
    /// `udp` or `tcp`.
    pub protocol: String,
    pub kind: CandidateType,
    pub rel_addr: Option<String>,
    pub rel_port: Option<u16>,
    /// `active`, `passive` or `so` for TCP candidates.
    pub tcptype: Option<String>,
    pub extensions: Extensions,
}

/// A DTLS certificate `<fingerprint>` (XEP-0320).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    /// The hash function, e.g. `sha-256`.
    pub hash: String,
    pub setup: Option<DtlsSetup>,
    /// Whether DTLS is required (lib-jitsi-meet sends `required='true'` in transport-info).
    pub required: Option<bool>,
    /// Colon-separated hex bytes.
    pub value: String,
    pub extensions: Extensions,
}

/// An `<sctpmap>`: the SCTP association of a data channel (XEP-0343).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SctpMap {
    pub number: u16,
    pub protocol: String,
    pub streams: Option<u32>,
    pub extensions: Extensions,
}

impl IceUdpTransport {
    /// A transport with these ICE credentials and nothing else.
    pub fn new(ufrag: impl Into<String>, pwd: impl Into<String>) -> Self {
        IceUdpTransport {
            ufrag: Some(ufrag.into()),
            pwd: Some(pwd.into()),
            ..IceUdpTransport::default()
        }
    }

    pub(crate) fn from_element(element: &Element) -> Result<Self, JingleError> {
        let mut reader = ElementReader::open(element, "transport", ns::JINGLE_ICE_UDP)?;
        let mut transport = IceUdpTransport {
            ufrag: reader.optional("ufrag"),
            pwd: reader.optional("pwd"),
            ..IceUdpTransport::default()
        };
        let mut unknown = Vec::new();
        for child in element.children() {
            match (child.name(), child.ns().as_str()) {
                ("candidate", ns::JINGLE_ICE_UDP) => {
                    transport.candidates.push(Candidate::from_element(child)?)
                }
                ("fingerprint", ns::JINGLE_DTLS) => transport
                    .fingerprints
                    .push(Fingerprint::from_element(child)?),
                ("rtcp-mux", ns::JINGLE_ICE_UDP) => transport.rtcp_mux = true,
                ("sctpmap", ns::JINGLE_DTLS_SCTP) => {
                    transport.sctp_maps.push(SctpMap::from_element(child)?)
                }
                _ => unknown.push(child.clone()),
            }
        }
        transport.extensions = reader.finish(unknown);
        Ok(transport)
    }

    pub(crate) fn to_element(&self) -> Element {
        ElementWriter::new("transport", ns::JINGLE_ICE_UDP, &self.extensions)
            .optional_attr(xml_ncname!("ufrag"), self.ufrag.as_ref())
            .optional_attr(xml_ncname!("pwd"), self.pwd.as_ref())
            .children(self.fingerprints.iter().map(Fingerprint::to_element))
            .children(
                self.rtcp_mux
                    .then(|| marker("rtcp-mux", ns::JINGLE_ICE_UDP)),
            )
            .children(self.sctp_maps.iter().map(SctpMap::to_element))
            .children(self.candidates.iter().map(Candidate::to_element))
            .build()
    }
}

impl Candidate {
    fn from_element(element: &Element) -> Result<Self, JingleError> {
        let mut reader = ElementReader::open(element, "candidate", ns::JINGLE_ICE_UDP)?;
        let candidate = Candidate {
            component: reader.required_parsed("component", "a component number (1 to 255)")?,
            foundation: reader.required("foundation")?,
            generation: reader.optional_parsed("generation", "a generation number")?,
            id: reader.optional("id"),
            ip: reader.required("ip")?,
            network: reader.optional_parsed("network", "a network number")?,
            port: reader.required_parsed("port", "a port number (0 to 65535)")?,
            priority: reader.required_parsed("priority", "a priority (a 32-bit number)")?,
            protocol: reader.required("protocol")?,
            kind: reader.required_parsed("type", CandidateType::EXPECTED)?,
            rel_addr: reader.optional("rel-addr"),
            rel_port: reader.optional_parsed("rel-port", "a port number (0 to 65535)")?,
            tcptype: reader.optional("tcptype"),
            extensions: Extensions::default(),
        };
        let unknown = element.children().cloned().collect();
        Ok(Candidate {
            extensions: reader.finish(unknown),
            ..candidate
        })
    }

    fn to_element(&self) -> Element {
        ElementWriter::new("candidate", ns::JINGLE_ICE_UDP, &self.extensions)
            .attr(xml_ncname!("component"), self.component)
            .attr(xml_ncname!("foundation"), &self.foundation)
            .optional_attr(xml_ncname!("generation"), self.generation)
            .optional_attr(xml_ncname!("id"), self.id.as_ref())
            .attr(xml_ncname!("ip"), &self.ip)
            .optional_attr(xml_ncname!("network"), self.network)
            .attr(xml_ncname!("port"), self.port)
            .attr(xml_ncname!("priority"), self.priority)
            .attr(xml_ncname!("protocol"), &self.protocol)
            .attr(xml_ncname!("type"), self.kind)
            .optional_attr(xml_ncname!("rel-addr"), self.rel_addr.as_ref())
            .optional_attr(xml_ncname!("rel-port"), self.rel_port)
            .optional_attr(xml_ncname!("tcptype"), self.tcptype.as_ref())
            .build()
    }
}

impl Fingerprint {
    pub fn new(hash: impl Into<String>, value: impl Into<String>, setup: DtlsSetup) -> Self {
        Fingerprint {
            hash: hash.into(),
            setup: Some(setup),
            required: None,
            value: value.into(),
            extensions: Extensions::default(),
        }
    }

    fn from_element(element: &Element) -> Result<Self, JingleError> {
        let mut reader = ElementReader::open(element, "fingerprint", ns::JINGLE_DTLS)?;
        let hash = reader.required("hash")?;
        let setup = reader.optional_parsed("setup", DtlsSetup::EXPECTED)?;
        let required = reader
            .optional("required")
            .map(|value| match value.as_str() {
                "true" | "1" => Ok(true),
                "false" | "0" => Ok(false),
                _ => Err(JingleError::invalid(
                    "fingerprint",
                    "required",
                    &value,
                    "true or false",
                )),
            })
            .transpose()?;
        let value = element.text().trim().to_owned();
        if value.is_empty() {
            return Err(JingleError::MissingText {
                element: "fingerprint",
            });
        }
        let unknown = element.children().cloned().collect();
        Ok(Fingerprint {
            hash,
            setup,
            required,
            value,
            extensions: reader.finish(unknown),
        })
    }

    fn to_element(&self) -> Element {
        ElementWriter::new("fingerprint", ns::JINGLE_DTLS, &self.extensions)
            .attr(xml_ncname!("hash"), &self.hash)
            .optional_attr(xml_ncname!("setup"), self.setup)
            .optional_attr(xml_ncname!("required"), self.required)
            .text(&self.value)
            .build()
    }
}

impl SctpMap {
    fn from_element(element: &Element) -> Result<Self, JingleError> {
        let mut reader = ElementReader::open(element, "sctpmap", ns::JINGLE_DTLS_SCTP)?;
        let number = reader.required_parsed("number", "an SCTP port (0 to 65535)")?;
        let protocol = reader.required("protocol")?;
        let streams = reader.optional_parsed("streams", "a number of streams")?;
        let unknown = element.children().cloned().collect();
        Ok(SctpMap {
            number,
            protocol,
            streams,
            extensions: reader.finish(unknown),
        })
    }

    fn to_element(&self) -> Element {
        ElementWriter::new("sctpmap", ns::JINGLE_DTLS_SCTP, &self.extensions)
            .attr(xml_ncname!("number"), self.number)
            .attr(xml_ncname!("protocol"), &self.protocol)
            .optional_attr(xml_ncname!("streams"), self.streams)
            .build()
    }
}
