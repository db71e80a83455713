//! Every pipeline the focus runs on a participant's stanza, fed systematically damaged copies
//! of the captured ones: each must answer with a value or a typed error, never panic.

use minidom::rxml::{Namespace, NcName};
use minidom::{Element, Node};

use crate::jingle::Jingle;
use crate::sources::{ConferenceSources, EndpointSources};
use crate::test_support::{jingle_of, SESSION_ACCEPT, TRANSPORT_INFO};
use crate::to_bridge::{
    forwarded_from_pb, media_list, source_list, ContentsPerMedia, RemoteTransportState,
};

const HOSTILE_VALUES: [&str; 7] = [
    "",
    "x",
    "-1",
    "0",
    "4294967296",
    "99999999999999999999999999",
    "\u{202e}\u{0}",
];

/// Runs everything the focus does with a participant's Jingle; the results do not matter.
fn process(element: &Element) {
    let Ok(jingle) = Jingle::from_element(element) else {
        return;
    };
    let written = jingle.to_element();
    assert_eq!(
        Jingle::from_element(&written).as_ref(),
        Ok(&jingle),
        "what was accepted is written back readable"
    );
    let _ = media_list(&jingle, ContentsPerMedia::One);
    let _ = media_list(&jingle, ContentsPerMedia::Many);
    let _ = RemoteTransportState::new().apply(&jingle);
    if let Ok(sources) = EndpointSources::from_jingle(&jingle) {
        // A bridge that forwards everything it is given, groups included.
        let everything = forwarded_from_pb(&source_list("room@muc/a", &sources, &[], &[]));
        let _ = sources.receiver_view("room@muc/a", &everything, &[]);
        let mut conference = ConferenceSources::new();
        let _ = conference.accept("room@muc/a", sources.clone());
        let _ = conference.show("room@muc/a", &everything);
        let _ = conference.add("room@muc/a", &sources);
        let _ = conference.remove("room@muc/a", &sources);
        let _ = conference.show("room@muc/a", &everything);
        let _ = conference.receiver_views_except("room@muc/b");
        let _ = conference.remove_participant("room@muc/a");
    }
}

/// The element at `path` (child indices from the root).
fn at<'a>(root: &'a mut Element, path: &[usize]) -> &'a mut Element {
    path.iter().fold(root, |element, index| {
        element.children_mut().nth(*index).expect("path exists")
    })
}

fn paths(element: &Element, prefix: Vec<usize>, into: &mut Vec<Vec<usize>>) {
    into.push(prefix.clone());
    for (index, child) in element.children().enumerate() {
        let mut path = prefix.clone();
        path.push(index);
        paths(child, path, into);
    }
}

fn damage_everything(original: &Element) -> usize {
    let mut all_paths = Vec::new();
    paths(original, Vec::new(), &mut all_paths);
    let mut variants = 0;
    for path in &all_paths {
        let mut copy = original.clone();
        let names: Vec<(Namespace, NcName)> = at(&mut copy, path)
            .attrs()
            .iter()
            .map(|((namespace, name), _)| (namespace.clone(), name.clone()))
            .collect();
        for (namespace, name) in &names {
            for value in HOSTILE_VALUES {
                let mut damaged = original.clone();
                at(&mut damaged, path).attrs_mut().insert(
                    namespace.clone(),
                    name.clone(),
                    value.to_owned(),
                );
                process(&damaged);
                variants += 1;
            }
            let mut damaged = original.clone();
            at(&mut damaged, path).attrs_mut().remove(namespace, name);
            process(&damaged);
            variants += 1;
        }
        if let Some((index, parent_path)) = path.split_last() {
            let mut damaged = original.clone();
            let parent = at(&mut damaged, parent_path);
            let mut element_index = 0;
            let kept: Vec<Node> = parent
                .take_nodes()
                .into_iter()
                .filter(|node| {
                    let is_element = node.as_element().is_some();
                    let removed = is_element && element_index == *index;
                    element_index += usize::from(is_element);
                    !removed
                })
                .collect();
            for node in kept {
                parent.append_node(node);
            }
            process(&damaged);
            variants += 1;
        }
    }
    variants
}

#[test]
fn damaged_session_accepts_never_panic() {
    assert!(damage_everything(&jingle_of(SESSION_ACCEPT)) > 500);
}

#[test]
fn damaged_transport_infos_never_panic() {
    assert!(damage_everything(&jingle_of(TRANSPORT_INFO)) > 100);
}
