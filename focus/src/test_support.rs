//! Captured wire data and tree comparison shared by the unit tests.

use minidom::Element;
use tutti_proto::bridge_v1 as pb;

use crate::jingle::{GroupSemantics, Jingle};
use crate::ns;
use crate::sources::Forwarded;

/// lib-jitsi-meet 2.6726 (Chromium 156) answering a focus: audio + video, SSRC simulcast.
pub const SESSION_ACCEPT: &str = include_str!("../tests/fixtures/ljm-2.6726-session-accept.xml");
/// The ICE candidates it trickled afterwards, UDP and TCP, IPv4 and IPv6.
pub const TRANSPORT_INFO: &str = include_str!("../tests/fixtures/ljm-2.6726-transport-info.xml");

/// What the bridge answers it forwards of the captured session-accept's sources: the audio
/// source, and the video's first simulcast layer with its RTX.
pub const SESSION_ACCEPT_FORWARDED: [(u32, Option<u32>); 2] =
    [(3196618725, None), (1130870372, Some(624615736))];

/// A bridge's `forwarded` answer: one stream per source, each an SSRC with (if any) its RTX SSRC
/// as an FID group.
pub fn forwarded(streams: &[(u32, Option<u32>)]) -> Forwarded {
    Forwarded {
        ssrcs: streams
            .iter()
            .flat_map(|(ssrc, rtx)| std::iter::once(*ssrc).chain(*rtx))
            .collect(),
        groups: streams
            .iter()
            .filter_map(|(ssrc, rtx)| rtx.map(|rtx| (GroupSemantics::Fid, vec![*ssrc, rtx])))
            .collect(),
    }
}

/// The `<jingle>` child of a captured `<iq>`. The capture has the stream's default namespace
/// stripped; it is put back so that the IQ parses as it did on the stream.
pub fn jingle_of(iq: &str) -> Element {
    let iq: Element = iq
        .trim()
        .replacen("<iq ", "<iq xmlns=\"jabber:client\" ", 1)
        .parse()
        .expect("captured IQ parses");
    iq.get_child("jingle", ns::JINGLE)
        .expect("captured IQ has a jingle element")
        .clone()
}

pub fn fixture_jingle(iq: &str) -> Jingle {
    Jingle::from_element(&jingle_of(iq)).expect("captured Jingle parses")
}

/// Whether two trees have the same elements, attributes and text, ignoring the order of
/// siblings and whitespace-only text; on a difference, where it is.
pub fn same_tree(expected: &Element, actual: &Element) -> Result<(), String> {
    let here = format!("<{} xmlns='{}'>", expected.name(), expected.ns());
    if expected.name() != actual.name() || expected.ns() != actual.ns() {
        return Err(format!(
            "{here} became <{} xmlns='{}'>",
            actual.name(),
            actual.ns()
        ));
    }
    if expected.attrs() != actual.attrs() {
        return Err(format!(
            "{here} attributes {:?} became {:?}",
            expected.attrs(),
            actual.attrs()
        ));
    }
    let text = |element: &Element| element.texts().collect::<String>().trim().to_owned();
    if text(expected) != text(actual) {
        return Err(format!(
            "{here} text {:?} became {:?}",
            text(expected),
            text(actual)
        ));
    }
    let mut unmatched: Vec<&Element> = actual.children().collect();
    for child in expected.children() {
        let position = unmatched
            .iter()
            .position(|candidate| same_tree(child, candidate).is_ok());
        match position {
            Some(position) => {
                unmatched.remove(position);
            }
            None => {
                let closest = unmatched
                    .iter()
                    .find(|candidate| candidate.name() == child.name())
                    .map(|candidate| same_tree(child, candidate));
                return Err(format!(
                    "in {here}: {} is missing ({closest:?})",
                    String::from(child)
                ));
            }
        }
    }
    match unmatched.first() {
        Some(extra) => Err(format!("in {here}: {} was added", String::from(*extra))),
        None => Ok(()),
    }
}

mod tests {
    use super::*;

    fn element(xml: &str) -> Element {
        xml.parse().unwrap()
    }

    #[test]
    fn same_tree_ignores_sibling_order_and_whitespace() {
        let a = element("<a xmlns='n'><b x='1'/> <c>t</c></a>");
        let b = element("<a xmlns='n'><c> t </c><b x='1'/></a>");
        assert_eq!(same_tree(&a, &b), Ok(()));
    }

    #[test]
    fn same_tree_finds_every_kind_of_loss() {
        let original = element("<a xmlns='n'><b x='1'/><c>t</c><d xmlns='m'/></a>");
        for damaged in [
            "<a xmlns='n'><b/><c>t</c><d xmlns='m'/></a>",
            "<a xmlns='n'><b x='2'/><c>t</c><d xmlns='m'/></a>",
            "<a xmlns='n'><b x='1'/><c>u</c><d xmlns='m'/></a>",
            "<a xmlns='n'><b x='1'/><c>t</c></a>",
            "<a xmlns='n'><b x='1'/><c>t</c><d xmlns='n'/></a>",
            "<a xmlns='n'><b x='1'/><c>t</c><d xmlns='m'/><e/></a>",
            "<a xmlns='n' y='1'><b x='1'/><c>t</c><d xmlns='m'/></a>",
        ] {
            assert!(
                same_tree(&original, &element(damaged)).is_err(),
                "{damaged}"
            );
        }
    }
}

/// A bridge's transport for an endpoint: ICE, one host candidate, DTLS `actpass`, the bridge
/// channel's URL.
pub fn bridge_transport() -> pb::Transport {
    pb::Transport {
        ice: Some(pb::IceParameters {
            ufrag: "brdg".into(),
            pwd: "0123456789abcdefghijklmn".into(),
            controlling: true,
        }),
        candidates: vec![pb::Candidate {
            foundation: "1".into(),
            component: 1,
            protocol: "udp".into(),
            priority: 2130706431,
            ip: "192.0.2.10".into(),
            port: 10000,
            r#type: "host".into(),
            generation: 0,
        }],
        dtls: Some(pb::DtlsParameters {
            hash: "sha-256".into(),
            fingerprint: "AA:BB".into(),
            setup: pb::DtlsSetup::Actpass as i32,
        }),
        bridge_channel_url: "wss://bridge/colibri-ws/b1/c1/e1?pwd=x".into(),
    }
}
