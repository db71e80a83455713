//! The focus process: configuration, XMPP login, the signalling loop, the bridge client and
//! the HTTP endpoints.

pub mod bridge;
pub mod config;
pub mod focus;
pub mod login;
pub mod metrics;
pub mod room_task;
