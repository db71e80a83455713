//! Reading and writing typed elements on `minidom` while keeping what the model does not know.

use std::str::FromStr;

use minidom::rxml::{AttrMap, Namespace, NcNameStr};
use minidom::Element;

use crate::error::JingleError;
use crate::extensions::Extensions;

/// Reads the attributes of one element, taking each known attribute out so that what is left at
/// the end is exactly the unknown ones.
pub(crate) struct ElementReader {
    name: &'static str,
    remaining: AttrMap,
}

impl ElementReader {
    /// Checks that `element` is `<name xmlns=namespace>` and starts reading it.
    pub(crate) fn open(
        element: &Element,
        name: &'static str,
        namespace: &'static str,
    ) -> Result<Self, JingleError> {
        if !element.is(name, namespace) {
            return Err(JingleError::UnexpectedElement {
                expected: name,
                namespace,
                found: describe(element),
            });
        }
        Ok(ElementReader {
            name,
            remaining: element.attrs().clone(),
        })
    }

    pub(crate) fn name(&self) -> &'static str {
        self.name
    }

    /// Takes an unqualified attribute out, if present.
    pub(crate) fn optional(&mut self, attribute: &'static str) -> Option<String> {
        self.remaining.remove(&Namespace::NONE, attribute)
    }

    pub(crate) fn required(&mut self, attribute: &'static str) -> Result<String, JingleError> {
        self.optional(attribute)
            .ok_or(JingleError::MissingAttribute {
                element: self.name,
                attribute,
            })
    }

    /// Takes an attribute out and parses it; `expected` says what a valid value is.
    pub(crate) fn optional_parsed<T: FromStr>(
        &mut self,
        attribute: &'static str,
        expected: &'static str,
    ) -> Result<Option<T>, JingleError> {
        let name = self.name;
        self.optional(attribute)
            .map(|value| {
                value
                    .parse()
                    .map_err(|_| JingleError::invalid(name, attribute, &value, expected))
            })
            .transpose()
    }

    pub(crate) fn required_parsed<T: FromStr>(
        &mut self,
        attribute: &'static str,
        expected: &'static str,
    ) -> Result<T, JingleError> {
        self.optional_parsed(attribute, expected)?
            .ok_or(JingleError::MissingAttribute {
                element: self.name,
                attribute,
            })
    }

    /// Ends reading: the attributes not taken and the given unknown children.
    pub(crate) fn finish(self, unknown_children: Vec<Element>) -> Extensions {
        Extensions {
            attributes: self.remaining,
            children: unknown_children,
        }
    }
}

/// `<name xmlns='ns'>` of an element, for errors.
fn describe(element: &Element) -> String {
    crate::error::quote(&format!("{} xmlns='{}'", element.name(), element.ns()))
}

/// Writes one element: the known attributes over the unknown ones, known children first, then
/// the unknown children.
pub(crate) struct ElementWriter {
    element: Element,
    unknown_children: Vec<Element>,
}

impl ElementWriter {
    pub(crate) fn new(name: &str, namespace: &str, extensions: &Extensions) -> Self {
        let mut element = Element::bare(name, namespace);
        *element.attrs_mut() = extensions.attributes.clone();
        ElementWriter {
            element,
            unknown_children: extensions.children.clone(),
        }
    }

    pub(crate) fn attr(mut self, name: &NcNameStr, value: impl ToString) -> Self {
        self.element
            .attrs_mut()
            .insert(Namespace::NONE, name.to_owned(), value.to_string());
        self
    }

    pub(crate) fn optional_attr(self, name: &NcNameStr, value: Option<impl ToString>) -> Self {
        match value {
            Some(value) => self.attr(name, value),
            None => self,
        }
    }

    pub(crate) fn child(mut self, child: Element) -> Self {
        self.element.append_child(child);
        self
    }

    pub(crate) fn children(mut self, children: impl IntoIterator<Item = Element>) -> Self {
        for child in children {
            self.element.append_child(child);
        }
        self
    }

    pub(crate) fn text(mut self, text: &str) -> Self {
        self.element.append_text(text);
        self
    }

    pub(crate) fn build(mut self) -> Element {
        for child in self.unknown_children {
            self.element.append_child(child);
        }
        self.element
    }
}

/// An empty marker element such as `<rtcp-mux/>`.
pub(crate) fn marker(name: &str, namespace: &str) -> Element {
    Element::bare(name, namespace)
}
