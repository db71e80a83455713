//! Jitsi Meet's additions to Jingle, which lib-jitsi-meet clients need from a focus.
//!
//! They are not fields of the plain-XEP model in [`crate::jingle`]: they travel in
//! [`Extensions`] and are read and written with
//! [`Extensions::get`](crate::extensions::Extensions::get) /
//! [`Extensions::set`](crate::extensions::Extensions::set), so a participant that is not a
//! Jitsi client never sees a difference in the model.

use minidom::Element;
use rxml::xml_ncname;

use crate::error::JingleError;
use crate::extensions::{Extension, Extensions};
use crate::ns;
use crate::xml::{ElementReader, ElementWriter};

/// `<ssrc-info xmlns='http://jitsi.org/jitmeet' owner>` in a `<source>`: the MUC occupant who
/// sends the source. lib-jitsi-meet maps remote tracks to participants by it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsrcInfo {
    /// The occupant JID, `room@muc/nick`.
    pub owner: String,
    pub extensions: Extensions,
}

/// `<web-socket xmlns='http://jitsi.org/protocol/colibri' url>` in a transport: where the
/// client opens its bridge channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSocket {
    pub url: String,
    pub extensions: Extensions,
}

/// `<bridge-session xmlns='http://jitsi.org/protocol/focus'>` in a Jingle request: which bridge
/// session the participant is in, and its requests to restart ICE or the whole session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BridgeSession {
    pub id: Option<String>,
    pub region: Option<String>,
    /// In a `session-terminate`: the client asks for a new session (a full restart).
    pub restart: Option<bool>,
    /// In a `session-info`: the client asks for an ICE restart.
    pub ice_restart: Option<bool>,
    pub extensions: Extensions,
}

impl SsrcInfo {
    pub fn new(owner: impl Into<String>) -> Self {
        SsrcInfo {
            owner: owner.into(),
            extensions: Extensions::default(),
        }
    }
}

impl Extension for SsrcInfo {
    const NAME: &'static str = "ssrc-info";
    const NAMESPACE: &'static str = ns::JITSI_MEET;

    fn from_element(element: &Element) -> Result<Self, JingleError> {
        let mut reader = ElementReader::open(element, Self::NAME, Self::NAMESPACE)?;
        let owner = reader.required("owner")?;
        let unknown = element.children().cloned().collect();
        Ok(SsrcInfo {
            owner,
            extensions: reader.finish(unknown),
        })
    }

    fn to_element(&self) -> Element {
        ElementWriter::new(Self::NAME, Self::NAMESPACE, &self.extensions)
            .attr(xml_ncname!("owner"), &self.owner)
            .build()
    }
}

impl WebSocket {
    pub fn new(url: impl Into<String>) -> Self {
        WebSocket {
            url: url.into(),
            extensions: Extensions::default(),
        }
    }
}

impl Extension for WebSocket {
    const NAME: &'static str = "web-socket";
    const NAMESPACE: &'static str = ns::JITSI_COLIBRI;

    fn from_element(element: &Element) -> Result<Self, JingleError> {
        let mut reader = ElementReader::open(element, Self::NAME, Self::NAMESPACE)?;
        let url = reader.required("url")?;
        let unknown = element.children().cloned().collect();
        Ok(WebSocket {
            url,
            extensions: reader.finish(unknown),
        })
    }

    fn to_element(&self) -> Element {
        ElementWriter::new(Self::NAME, Self::NAMESPACE, &self.extensions)
            .attr(xml_ncname!("url"), &self.url)
            .build()
    }
}

impl Extension for BridgeSession {
    const NAME: &'static str = "bridge-session";
    const NAMESPACE: &'static str = ns::JITSI_FOCUS;

    fn from_element(element: &Element) -> Result<Self, JingleError> {
        const EXPECTED: &str = "true or false";
        let mut reader = ElementReader::open(element, Self::NAME, Self::NAMESPACE)?;
        let id = reader.optional("id");
        let region = reader.optional("region");
        let restart = reader.optional_parsed("restart", EXPECTED)?;
        let ice_restart = reader.optional_parsed("ice-restart", EXPECTED)?;
        let unknown = element.children().cloned().collect();
        Ok(BridgeSession {
            id,
            region,
            restart,
            ice_restart,
            extensions: reader.finish(unknown),
        })
    }

    fn to_element(&self) -> Element {
        ElementWriter::new(Self::NAME, Self::NAMESPACE, &self.extensions)
            .optional_attr(xml_ncname!("id"), self.id.as_ref())
            .optional_attr(xml_ncname!("region"), self.region.as_ref())
            .optional_attr(xml_ncname!("restart"), self.restart)
            .optional_attr(xml_ncname!("ice-restart"), self.ice_restart)
            .build()
    }
}

/// `<conference-properties xmlns='http://jitsi.org/protocol/focus'>` for the focus's MUC presence:
/// what lib-jitsi-meet learns about the focus. `support-terminate-restart`: a `session-terminate`
/// with `<bridge-session restart='true'>` gets the participant a new session. That is
/// lib-jitsi-meet's default answer to an ICE failure; without the property the client gives the
/// conference up instead.
pub fn conference_properties() -> Element {
    let property = Element::builder("property", ns::JITSI_FOCUS)
        .attr(xml_ncname!("key").into(), "support-terminate-restart")
        .attr(xml_ncname!("value").into(), "true")
        .build();
    Element::builder("conference-properties", ns::JITSI_FOCUS)
        .append(property)
        .build()
}

/// Jicofo's presence extension for "no bridge can take this conference now": lib-jitsi-meet
/// reports it as the conference error `conference.videobridgeNotAvailable`.
pub fn bridge_not_available() -> Element {
    Element::builder("bridgeNotAvailable", ns::JITSI_FOCUS).build()
}

/// Longest region name taken from a participant (longer ones are ignored).
const MAX_REGION_LEN: usize = 64;

/// The region a participant's MUC presence names: lib-jitsi-meet adds
/// `<region xmlns='http://jitsi.org/jitsi-meet' id='REGION'/>` when its deployment info has a
/// `userRegion`, and its participant property `<jitsi_participant_region>REGION</…>` (in the
/// presence's own namespace; Jitsi's Prosody module adds it too, from the session). The first
/// is read first. An empty or overlong region is no region.
pub fn participant_region(payloads: &[Element]) -> Option<String> {
    let usable = |region: &str| !region.is_empty() && region.len() <= MAX_REGION_LEN;
    let element = payloads
        .iter()
        .find(|payload| payload.is("region", ns::JITSI_MEET_PRESENCE))
        .and_then(|region| region.attr("id"))
        .filter(|id| usable(id))
        .map(str::to_owned);
    element.or_else(|| {
        payloads
            .iter()
            .find(|payload| payload.is("jitsi_participant_region", ns::JABBER_CLIENT))
            .map(|property| property.text())
            .map(|text| text.trim().to_owned())
            .filter(|text| usable(text))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jingle::{Action, Jingle, Source};

    #[test]
    fn a_participant_region_is_read_from_its_presence() {
        let parse = |xml: &str| vec![xml.parse::<Element>().unwrap()];
        assert_eq!(
            participant_region(&parse(
                "<region xmlns='http://jitsi.org/jitsi-meet' id='eu-west'/>"
            )),
            Some("eu-west".to_owned())
        );
        assert_eq!(
            participant_region(&parse("<region xmlns='http://jitsi.org/jitsi-meet'/>")),
            None
        );
        assert_eq!(
            participant_region(&parse("<region xmlns='urn:other' id='eu-west'/>")),
            None
        );
        let long = format!(
            "<region xmlns='http://jitsi.org/jitsi-meet' id='{}'/>",
            "x".repeat(65)
        );
        assert_eq!(participant_region(&parse(&long)), None);
        // The participant property, as lib-jitsi-meet puts it in its presence.
        let property = |text: &str| {
            parse(&format!(
                "<jitsi_participant_region xmlns='jabber:client'>{text}</jitsi_participant_region>"
            ))
        };
        assert_eq!(
            participant_region(&property("us-east-1")),
            Some("us-east-1".to_owned())
        );
        assert_eq!(participant_region(&property("")), None);
        assert_eq!(participant_region(&property(&"x".repeat(65))), None);
        let both = [
            "<jitsi_participant_region xmlns='jabber:client'>ap</jitsi_participant_region>",
            "<region xmlns='http://jitsi.org/jitsi-meet' id='eu'/>",
        ]
        .map(|xml| xml.parse::<Element>().unwrap());
        assert_eq!(participant_region(&both), Some("eu".to_owned()));
    }

    #[test]
    fn ssrc_info_is_read_from_and_written_to_a_source() {
        let element: Element = "<source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1'>\
             <ssrc-info xmlns='http://jitsi.org/jitmeet' owner='room@muc/alice'/></source>"
            .parse()
            .unwrap();
        let mut source = Source::from_element(&element).unwrap();
        let info = source.extensions.get::<SsrcInfo>().unwrap().unwrap();
        assert_eq!(info.owner, "room@muc/alice");

        source.extensions.set(&SsrcInfo::new("room@muc/bob"));
        assert_eq!(source.extensions.children.len(), 1, "set replaces");
        let written = source.to_element();
        let info = written.get_child("ssrc-info", ns::JITSI_MEET).unwrap();
        assert_eq!(info.attr("owner"), Some("room@muc/bob"));
    }

    #[test]
    fn bridge_session_restart_requests_are_read() {
        let element: Element = "<jingle xmlns='urn:xmpp:jingle:1' action='session-info' sid='s'>\
             <bridge-session xmlns='http://jitsi.org/protocol/focus' id='b1' ice-restart='true'/>\
             </jingle>"
            .parse()
            .unwrap();
        let jingle = Jingle::from_element(&element).unwrap();
        assert_eq!(jingle.action, Action::SessionInfo);
        let session = jingle.extensions.get::<BridgeSession>().unwrap().unwrap();
        assert_eq!(session.id.as_deref(), Some("b1"));
        assert_eq!(session.ice_restart, Some(true));
        assert_eq!(session.restart, None);
        assert_eq!(
            Element::from(&jingle)
                .get_child("bridge-session", ns::JITSI_FOCUS)
                .and_then(|session| session.attr("ice-restart")),
            Some("true")
        );
    }

    #[test]
    fn malformed_jitsi_elements_are_errors_only_when_read() {
        let element: Element =
            "<jingle xmlns='urn:xmpp:jingle:1' action='session-terminate' sid='s'>\
             <reason><success/></reason>\
             <bridge-session xmlns='http://jitsi.org/protocol/focus' restart='maybe'/></jingle>"
                .parse()
                .unwrap();
        let jingle = Jingle::from_element(&element).unwrap();
        assert_eq!(
            jingle.extensions.get::<BridgeSession>(),
            Err(JingleError::InvalidAttribute {
                element: "bridge-session",
                attribute: "restart",
                value: "maybe".into(),
                expected: "true or false",
            })
        );
        assert_eq!(jingle.extensions.get::<WebSocket>(), Ok(None));
    }

    #[test]
    fn web_socket_lacking_url_is_refused() {
        let element: Element = "<web-socket xmlns='http://jitsi.org/protocol/colibri'/>"
            .parse()
            .unwrap();
        assert_eq!(
            WebSocket::from_element(&element),
            Err(JingleError::MissingAttribute {
                element: "web-socket",
                attribute: "url",
            })
        );
    }
}
