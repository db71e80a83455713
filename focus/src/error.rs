//! Why a Jingle element was refused.
//!
//! Every variant names the element and, where there is one, the attribute or child at fault, so
//! the focus can answer the stanza with `bad-request` and a text a client developer can act on.

/// Longest attacker-supplied value quoted back in an error; the rest is cut so that a hostile
/// stanza cannot make the focus echo megabytes into its logs and replies.
const QUOTED_VALUE_LIMIT: usize = 64;

/// A Jingle element that does not follow XEP-0166 and the XEPs the model covers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JingleError {
    /// The element is not the one expected here (wrong name or namespace).
    #[error("expected <{expected} xmlns='{namespace}'>, found <{found}>")]
    UnexpectedElement {
        expected: &'static str,
        namespace: &'static str,
        found: String,
    },
    /// A required attribute is absent.
    #[error("<{element}> lacks the required attribute '{attribute}'")]
    MissingAttribute {
        element: &'static str,
        attribute: &'static str,
    },
    /// An attribute has a value outside what the XEP allows.
    #[error("<{element}> attribute '{attribute}' is '{value}', expected {expected}")]
    InvalidAttribute {
        element: &'static str,
        attribute: &'static str,
        value: String,
        expected: &'static str,
    },
    /// A required child element is absent.
    #[error("<{element}> lacks the required child <{child}>")]
    MissingChild {
        element: &'static str,
        child: &'static str,
    },
    /// An element that carries its value as text is empty.
    #[error("<{element}> has no text value")]
    MissingText { element: &'static str },
}

impl JingleError {
    pub(crate) fn invalid(
        element: &'static str,
        attribute: &'static str,
        value: &str,
        expected: &'static str,
    ) -> Self {
        JingleError::InvalidAttribute {
            element,
            attribute,
            value: quote(value),
            expected,
        }
    }
}

/// `value` cut to [`QUOTED_VALUE_LIMIT`] characters, marked with an ellipsis when cut.
pub(crate) fn quote(value: &str) -> String {
    match value.char_indices().nth(QUOTED_VALUE_LIMIT) {
        Some((cut, _)) => format!("{}…", &value[..cut]),
        None => value.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_values_are_cut_in_errors() {
        let error = JingleError::invalid("source", "ssrc", &"9".repeat(10_000), "a 32-bit number");
        let message = error.to_string();
        assert!(message.len() < 200, "{message}");
        assert!(message.contains('…'));
    }

    #[test]
    fn short_values_are_quoted_whole() {
        assert_eq!(quote("abc"), "abc");
        assert_eq!(quote(&"é".repeat(64)), "é".repeat(64));
        assert_eq!(quote(&"é".repeat(65)), format!("{}…", "é".repeat(64)));
    }
}
