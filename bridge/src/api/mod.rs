//! The bridge's external interfaces.

pub mod grpc;
pub mod http;
pub mod tls;
pub mod ws;
