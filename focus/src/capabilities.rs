//! Which room occupants can take a Jingle session.
//!
//! An occupant's presence carries an XEP-0115 caps hash (`<c node ver hash>`); the features
//! behind a hash are asked once with disco#info (XEP-0030) and remembered, as Jicofo does, so a
//! room of browsers that share a version costs one query. An occupant without caps, or whose
//! query fails, is assumed to be a Jingle client (Jicofo's default feature set): only one that
//! says what it supports and lacks Jingle RTP over ICE-UDP with DTLS is left uninvited.

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

/// Whether a disco#info answer lists every required feature.
pub fn is_jingle_capable(answer: &Element) -> bool {
    if !answer.is("query", DISCO_INFO) {
        return false;
    }
    REQUIRED_FEATURES.iter().all(|required| {
        answer
            .children()
            .any(|f| f.is("feature", DISCO_INFO) && f.attr("var") == Some(required))
    })
}

/// Verdicts by caps node.
#[derive(Debug, Default)]
pub struct CapabilityCache {
    verdicts: HashMap<String, bool>,
}

impl CapabilityCache {
    pub fn verdict(&self, node: &str) -> Option<bool> {
        self.verdicts.get(node).copied()
    }

    pub fn remember(&mut self, node: String, capable: bool) {
        if self.verdicts.len() >= MAX_REMEMBERED && !self.verdicts.contains_key(&node) {
            self.verdicts.clear();
        }
        self.verdicts.insert(node, capable);
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

    #[test]
    fn a_browser_is_capable_and_a_chat_client_is_not() {
        let features = |vars: &[&str]| {
            let inner: String = vars
                .iter()
                .map(|v| format!("<feature var='{v}'/>"))
                .collect();
            parse(&format!(
                "<query xmlns='http://jabber.org/protocol/disco#info'>\
                 <identity category='client' type='web'/>{inner}</query>"
            ))
        };
        let mut browser: Vec<&str> = REQUIRED_FEATURES.to_vec();
        browser.push("urn:xmpp:jingle:transports:dtls-sctp:1");
        assert!(is_jingle_capable(&features(&browser)));
        assert!(!is_jingle_capable(&features(&[
            "urn:xmpp:jingle:1",
            "urn:xmpp:jingle:apps:rtp:1",
            "urn:xmpp:jingle:transports:ice-udp:1",
        ])));
        assert!(!is_jingle_capable(&features(&["jabber:iq:version"])));
        assert!(!is_jingle_capable(&parse("<ping xmlns='urn:xmpp:ping'/>")));
    }

    #[test]
    fn the_cache_is_bounded() {
        let mut cache = CapabilityCache::default();
        cache.remember("a#1".into(), true);
        assert_eq!(cache.verdict("a#1"), Some(true));
        assert_eq!(cache.verdict("a#2"), None);
        for i in 0..MAX_REMEMBERED + 10 {
            cache.remember(format!("spam#{i}"), false);
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
