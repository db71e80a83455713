//! Building the stanzas the focus sends, and the errors it answers requests with.

use jid::Jid;
use minidom::Element;
use tokio_xmpp::parsers::iq::Iq;
use tokio_xmpp::parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};
use tokio_xmpp::Stanza;
use tracing::info;

pub const FOCUS: &str = "http://jitsi.org/protocol/focus";
pub const MUC: &str = "http://jabber.org/protocol/muc";
pub const MUC_OWNER: &str = "http://jabber.org/protocol/muc#owner";
pub const MUC_ROOMCONFIG: &str = "http://jabber.org/protocol/muc#roomconfig";
pub const DATA_FORMS: &str = "jabber:x:data";
pub const DIRECT_INVITE: &str = "jabber:x:conference";
pub const JINGLE_ERRORS: &str = "urn:xmpp:jingle:errors:1";
pub const PING: &str = "urn:xmpp:ping";
pub const DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";

/// Why a request is refused; each becomes one stanza error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No such session, or the sender is not its peer: `item-not-found` + `<unknown-session>`.
    UnknownSession,
    /// `bad-request` with the reason.
    BadRequest(String),
    /// `service-unavailable` with the reason.
    ServiceUnavailable(String),
    /// `not-allowed` with the reason.
    NotAllowed(String),
    /// `unexpected-request` + `<out-of-order>`: the session is not in a state for this action.
    OutOfOrder(String),
    /// `feature-not-implemented`.
    NotImplemented(String),
    /// `internal-server-error`: the focus could not carry the request out (e.g. the bridge).
    Internal(String),
    /// `resource-constraint` with the reason: a limit (e.g. on restarts) was reached.
    ResourceConstraint(String),
}

impl Refusal {
    /// The metric label of this refusal.
    pub fn kind(&self) -> &'static str {
        match self {
            Refusal::UnknownSession => "unknown_session",
            Refusal::BadRequest(_) => "bad_request",
            Refusal::ServiceUnavailable(_) => "service_unavailable",
            Refusal::NotAllowed(_) => "not_allowed",
            Refusal::OutOfOrder(_) => "out_of_order",
            Refusal::NotImplemented(_) => "not_implemented",
            Refusal::Internal(_) => "internal",
            Refusal::ResourceConstraint(_) => "resource_constraint",
        }
    }

    pub fn to_stanza_error(&self) -> StanzaError {
        let (type_, condition, text, other) = match self {
            Refusal::UnknownSession => (
                ErrorType::Cancel,
                DefinedCondition::ItemNotFound,
                "unknown Jingle session".to_owned(),
                Some(Element::bare("unknown-session", JINGLE_ERRORS)),
            ),
            Refusal::BadRequest(text) => (
                ErrorType::Modify,
                DefinedCondition::BadRequest,
                text.clone(),
                None,
            ),
            Refusal::ServiceUnavailable(text) => (
                ErrorType::Cancel,
                DefinedCondition::ServiceUnavailable,
                text.clone(),
                None,
            ),
            Refusal::NotAllowed(text) => (
                ErrorType::Cancel,
                DefinedCondition::NotAllowed,
                text.clone(),
                None,
            ),
            Refusal::OutOfOrder(text) => (
                ErrorType::Wait,
                DefinedCondition::UnexpectedRequest,
                text.clone(),
                Some(Element::bare("out-of-order", JINGLE_ERRORS)),
            ),
            Refusal::NotImplemented(text) => (
                ErrorType::Cancel,
                DefinedCondition::FeatureNotImplemented,
                text.clone(),
                None,
            ),
            Refusal::Internal(text) => (
                ErrorType::Wait,
                DefinedCondition::InternalServerError,
                text.clone(),
                None,
            ),
            Refusal::ResourceConstraint(text) => (
                ErrorType::Wait,
                DefinedCondition::ResourceConstraint,
                text.clone(),
                None,
            ),
        };
        let mut error = StanzaError::new(type_, condition, "en", text);
        error.other = other;
        error
    }
}

pub fn iq_set(to: Jid, id: String, payload: Element) -> Stanza {
    Stanza::Iq(Iq::Set {
        from: None,
        to: Some(to),
        id,
        payload,
    })
}

pub fn iq_get(to: Jid, id: String, payload: Element) -> Stanza {
    Stanza::Iq(Iq::Get {
        from: None,
        to: Some(to),
        id,
        payload,
    })
}

pub fn iq_result(to: Option<Jid>, id: String, payload: Option<Element>) -> Stanza {
    Stanza::Iq(Iq::Result {
        from: None,
        to,
        id,
        payload,
    })
}

pub fn iq_error(to: Option<Jid>, id: String, refusal: &Refusal) -> Stanza {
    Stanza::Iq(Iq::Error {
        from: None,
        to,
        id,
        error: refusal.to_stanza_error(),
        payload: None,
    })
}

/// The answer to the IQ `id` from `to`: its result, or the refusal (logged; the caller counts
/// it by [`Refusal::kind`]).
pub fn answer(to: Option<Jid>, id: String, result: Result<Option<Element>, Refusal>) -> Stanza {
    match result {
        Ok(payload) => iq_result(to, id, payload),
        Err(refusal) => {
            info!(?to, ?refusal, "refused a request");
            iq_error(to, id, &refusal)
        }
    }
}
