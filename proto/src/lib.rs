//! The gRPC contract between the focus and the bridges (`tutti.bridge.v1`).

/// Version 1 of the bridge control API.
pub mod bridge_v1 {
    tonic::include_proto!("tutti.bridge.v1");
}
