//! Which room occupants can take a Jingle session, and in which dialect.
//!
//! An occupant's presence carries an XEP-0115 caps hash (`<c node ver hash>`); the features
//! behind a hash are asked once with disco#info (XEP-0030) and remembered, as Jicofo does, so a
//! room of browsers that share a version costs one query. An occupant without caps, or whose
//! query fails, is assumed to be a Jitsi client (Jicofo's default feature set): only one that
//! says what it supports and lacks Jingle RTP over ICE-UDP with DTLS is left uninvited.
//!
//! The [`Dialect`] rule: a client that lists any feature under `http://jitsi.org/` (lib-jitsi-meet
//! always lists `http://jitsi.org/json-encoded-sources`, and by its configuration
//! `http://jitsi.org/tcc`, `…/remb`, `…/opus-red`) is a Jitsi client and gets Jitsi's dialect; a client that lists
//! the required Jingle features and none of Jitsi's is a standards client and gets plain XEP
//! Jingle (one content per remote stream, `content-add` / `content-remove`).

use std::collections::HashMap;

use minidom::Element;

use crate::ns;

const CAPS: &str = "http://jabber.org/protocol/caps";
const DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";

/// What an occupant must advertise to be sent a session-initiate.
pub const REQUIRED_FEATURES: [&str; 4] = [
    ns::JINGLE,
    ns::JINGLE_RTP,
    ns::JINGLE_ICE_UDP,
    ns::JINGLE_DTLS,
];

/// Bound on remembered caps versions, so that occupants inventing versions cannot grow memory
/// without limit; when full, the cache starts over.
const MAX_REMEMBERED: usize = 1024;

/// The disco#info node of a presence's caps (`node#ver`), if it carries caps.
pub fn caps_node<'a>(payloads: impl IntoIterator<Item = &'a Element>) -> Option<String> {
    let caps = payloads.into_iter().find(|p| p.is("c", CAPS))?;
    let node = caps.attr("node")?;
    let ver = caps.attr("ver")?;
    Some(format!("{node}#{ver}"))
}

/// A disco#info query for `node`.
pub fn disco_query(node: &str) -> Element {
    Element::builder("query", DISCO_INFO)
        .attr(rxml::xml_ncname!("node").into(), node)
        .build()
}

/// Features of Jitsi's own namespace start with this.
pub const JITSI_FEATURE_PREFIX: &str = "http://jitsi.org/";

/// Which Jingle a client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// lib-jitsi-meet: one audio and one video content carrying every remote source, Jitsi's
    /// `source-add` / `source-remove`, `ssrc-info owner` and the bridge channel.
    Jitsi,
    /// Plain XEP-0166/0167: one content per remote stream, `content-add` / `content-remove`.
    Standard,
}

/// What a disco#info answer says: `None` if the client cannot take a Jingle RTP session over
/// ICE-UDP with DTLS, else the dialect it speaks (see the module's documentation).
pub fn jingle_dialect(answer: &Element) -> Option<Dialect> {
    if !answer.is("query", DISCO_INFO) {
        return None;
    }
    let features: Vec<&str> = answer
        .children()
        .filter(|f| f.is("feature", DISCO_INFO))
        .filter_map(|f| f.attr("var"))
        .collect();
    if !REQUIRED_FEATURES.iter().all(|r| features.contains(r)) {
        return None;
    }
    if features.iter().any(|f| f.starts_with(JITSI_FEATURE_PREFIX)) {
        Some(Dialect::Jitsi)
    } else {
        Some(Dialect::Standard)
    }
}

/// Verdicts by caps node: the dialect, or `None` for a client that takes no Jingle session.
#[derive(Debug, Default)]
pub struct CapabilityCache {
    verdicts: HashMap<String, Option<Dialect>>,
}

impl CapabilityCache {
    /// `None`: nothing known of `node`; `Some(None)`: not a Jingle client.
    pub fn verdict(&self, node: &str) -> Option<Option<Dialect>> {
        self.verdicts.get(node).copied()
    }

    pub fn remember(&mut self, node: String, dialect: Option<Dialect>) {
        if self.verdicts.len() >= MAX_REMEMBERED && !self.verdicts.contains_key(&node) {
            self.verdicts.clear();
        }
        self.verdicts.insert(node, dialect);
    }

    pub fn len(&self) -> usize {
        self.verdicts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.verdicts.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(xml: &str) -> Element {
        xml.parse().expect("test XML")
    }

    #[test]
    fn caps_node_is_node_hash_ver() {
        let presence = parse(
            "<presence xmlns='jabber:client'><stats-id>x</stats-id>\
             <c xmlns='http://jabber.org/protocol/caps' hash='sha-1' \
             node='https://jitsi.org/jitsi-meet' ver='/Lxj='/></presence>",
        );
        assert_eq!(
            caps_node(presence.children()).as_deref(),
            Some("https://jitsi.org/jitsi-meet#/Lxj=")
        );
        let bare = parse("<presence xmlns='jabber:client'><nick xmlns='x'>a</nick></presence>");
        assert_eq!(caps_node(bare.children()), None);
        let no_ver = parse(
            "<presence xmlns='jabber:client'><c xmlns='http://jabber.org/protocol/caps' \
             node='n'/></presence>",
        );
        assert_eq!(caps_node(no_ver.children()), None);
    }

    fn features(vars: &[&str]) -> Element {
        let inner: String = vars
            .iter()
            .map(|v| format!("<feature var='{v}'/>"))
            .collect();
        parse(&format!(
            "<query xmlns='http://jabber.org/protocol/disco#info'>\
             <identity category='client' type='web'/>{inner}</query>"
        ))
    }

    #[test]
    fn a_browser_is_capable_and_a_chat_client_is_not() {
        let mut browser: Vec<&str> = REQUIRED_FEATURES.to_vec();
        browser.push("urn:xmpp:jingle:transports:dtls-sctp:1");
        assert!(jingle_dialect(&features(&browser)).is_some());
        assert_eq!(
            jingle_dialect(&features(&[
                "urn:xmpp:jingle:1",
                "urn:xmpp:jingle:apps:rtp:1",
                "urn:xmpp:jingle:transports:ice-udp:1",
            ])),
            None
        );
        assert_eq!(jingle_dialect(&features(&["jabber:iq:version"])), None);
        assert_eq!(
            jingle_dialect(&parse("<ping xmlns='urn:xmpp:ping'/>")),
            None
        );
    }

    #[test]
    fn jitsi_features_make_a_jitsi_client_and_none_a_standards_client() {
        // What lib-jitsi-meet 2.6726 lists (modules/xmpp/xmpp.js) besides the Jingle features.
        let mut jitsi: Vec<&str> = REQUIRED_FEATURES.to_vec();
        jitsi.extend([
            "urn:xmpp:jingle:transports:dtls-sctp:1",
            "urn:xmpp:jingle:apps:rtp:audio",
            "urn:xmpp:jingle:apps:rtp:video",
            "http://jitsi.org/json-encoded-sources",
            "urn:ietf:rfc:4588",
            "http://jitsi.org/opus-red",
            "http://jitsi.org/remb",
            "http://jitsi.org/tcc",
            "urn:ietf:rfc:5761",
            "urn:ietf:rfc:5888",
        ]);
        assert_eq!(jingle_dialect(&features(&jitsi)), Some(Dialect::Jitsi));
        let one: Vec<&str> = REQUIRED_FEATURES
            .iter()
            .copied()
            .chain(["http://jitsi.org/remb"])
            .collect();
        assert_eq!(jingle_dialect(&features(&one)), Some(Dialect::Jitsi));
        // A desktop client on GStreamer or libwebrtc: the XEPs and nothing of Jitsi's.
        let mut standard: Vec<&str> = REQUIRED_FEATURES.to_vec();
        standard.extend([
            "urn:xmpp:jingle:apps:rtp:audio",
            "urn:xmpp:jingle:apps:rtp:video",
            "urn:xmpp:jingle:apps:rtp:rtcp-fb:0",
            "urn:xmpp:jingle:apps:rtp:rtp-hdrext:0",
            "urn:xmpp:jingle:apps:grouping:0",
            "urn:xmpp:jingle-message:0",
            "https://jitsi.org.example/not-jitsi",
        ]);
        assert_eq!(
            jingle_dialect(&features(&standard)),
            Some(Dialect::Standard)
        );
    }

    #[test]
    fn the_cache_is_bounded() {
        let mut cache = CapabilityCache::default();
        cache.remember("a#1".into(), Some(Dialect::Standard));
        assert_eq!(cache.verdict("a#1"), Some(Some(Dialect::Standard)));
        assert_eq!(cache.verdict("a#2"), None);
        cache.remember("a#3".into(), None);
        assert_eq!(cache.verdict("a#3"), Some(None));
        for i in 0..MAX_REMEMBERED + 10 {
            cache.remember(format!("spam#{i}"), None);
        }
        assert!(cache.len() <= MAX_REMEMBERED);
        assert!(!cache.is_empty());
    }

    #[test]
    fn the_query_names_the_node() {
        let query = disco_query("n#v");
        assert!(query.is("query", DISCO_INFO));
        assert_eq!(query.attr("node"), Some("n#v"));
    }
}
