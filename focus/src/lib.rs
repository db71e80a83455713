//! The signalling logic of the Tutti focus, without sockets (except [`connector`]).
//!
//! - [`jingle`]: a lossless model of the Jingle elements lib-jitsi-meet clients and Jicofo
//!   exchange, parsed from and written to `minidom` elements (the type tokio-xmpp carries).
//! - [`jitsi`]: Jitsi Meet's own elements, kept apart from the plain XEPs.
//! - [`sources`]: a participant's sources, their validation and what other participants see.
//! - [`offer`]: the focus's `session-initiate`, `source-add` and `source-remove`.
//! - [`to_bridge`]: a participant's answer and trickled candidates as bridge updates.
//! - [`capabilities`]: which occupants advertise Jingle RTP over ICE-UDP with DTLS.
//! - [`room`]: one room's conference as a state machine: stanzas, bridge answers and the time
//!   in; stanzas, bridge requests, timers and metrics out.
//! - [`pool`]: the focus's bridges: their health from their status reports, where a new
//!   conference goes, and which failed (their conferences move).
//! - [`stanzas`]: the stanzas the focus sends, and the errors it answers requests with.
//! - [`connector`]: XMPP client connections with Nagle's algorithm off, shared with the
//!   benchmark's simulated participants, whose received bytes are checked on their way to the
//!   XML parser ([`inbound`]: stanzas nested too deep or malformed, stream errors).

pub mod capabilities;
pub mod connector;
pub mod error;
pub mod extensions;
pub mod inbound;
pub mod jingle;
pub mod jitsi;
pub mod ns;
pub mod offer;
pub mod pool;
pub mod room;
pub mod sources;
pub mod stanzas;
pub mod to_bridge;
mod xml;

#[cfg(test)]
mod test_support;

#[cfg(test)]
mod hostile_input_tests;

pub use error::JingleError;
pub use extensions::{Extension, Extensions};
