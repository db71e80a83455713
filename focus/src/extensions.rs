//! What the typed model does not know, kept verbatim.
//!
//! Every typed element carries an [`Extensions`]: the attributes and child elements it has no
//! field for. They are written back exactly as they came, so a focus that relays or answers a
//! stanza never drops what a newer client (or Jicofo-only feature) put in it. Payloads of known
//! protocol extensions that are not part of the plain XEPs (Jitsi's `ssrc-info`, `web-socket`,
//! `bridge-session`) live here too and are read and written through the [`Extension`] trait.

use minidom::rxml::AttrMap;
use minidom::Element;

use crate::error::JingleError;

/// Attributes and child elements of one element that the model has no field for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extensions {
    /// Unknown attributes, including namespaced ones such as `xml:lang`.
    pub attributes: AttrMap,
    /// Unknown child elements, in the order they came.
    pub children: Vec<Element>,
}

/// A child element with a fixed name and namespace that can be carried in [`Extensions`].
pub trait Extension: Sized {
    /// The element's local name.
    const NAME: &'static str;
    /// The element's namespace.
    const NAMESPACE: &'static str;

    /// Reads the element; `element` has [`Self::NAME`] in [`Self::NAMESPACE`].
    fn from_element(element: &Element) -> Result<Self, JingleError>;

    /// Writes the element.
    fn to_element(&self) -> Element;
}

impl Extensions {
    /// True when there is nothing unknown to write back.
    pub fn is_empty(&self) -> bool {
        self.attributes.is_empty() && self.children.is_empty()
    }

    /// The first child of type `E`, parsed; `Ok(None)` when there is none.
    pub fn get<E: Extension>(&self) -> Result<Option<E>, JingleError> {
        self.children
            .iter()
            .find(|child| child.is(E::NAME, E::NAMESPACE))
            .map(E::from_element)
            .transpose()
    }

    /// Replaces every child of type `E` by `extension`.
    pub fn set<E: Extension>(&mut self, extension: &E) {
        self.remove::<E>();
        self.children.push(extension.to_element());
    }

    /// Removes every child of type `E`; true when there was one.
    pub fn remove<E: Extension>(&mut self) -> bool {
        let before = self.children.len();
        self.children
            .retain(|child| !child.is(E::NAME, E::NAMESPACE));
        self.children.len() != before
    }
}
