//! The focus process: configuration, XMPP login, the signalling loop, the bridges (a client
//! each, and the pool's executor) and the HTTP endpoints.

pub mod bridge;
pub mod config;
pub mod focus;
pub mod login;
pub mod metrics;
pub mod pool;
pub mod room_task;
