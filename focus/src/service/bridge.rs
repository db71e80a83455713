//! The focus's side of the bridge's gRPC API: every call bounded by a time-out, every failure
//! an error naming the call.

use std::time::Duration;

use tonic::transport::{Channel, Endpoint};
use tutti_proto::bridge_v1 as pb;
use tutti_proto::bridge_v1::bridge_client::BridgeClient;

/// A bridge call that failed.
#[derive(Debug, thiserror::Error)]
#[error("bridge {call}: {cause}")]
pub struct BridgeError {
    pub call: &'static str,
    pub cause: String,
}

#[derive(Clone)]
pub struct Bridge {
    client: BridgeClient<Channel>,
    timeout: Duration,
}

impl Bridge {
    /// A lazily connected client: the focus starts whether or not the bridge is up yet.
    pub fn new(url: &str, timeout: Duration) -> anyhow::Result<Bridge> {
        let channel = Endpoint::from_shared(url.to_owned())
            .map_err(|e| anyhow::anyhow!("bridge_url {url:?}: {e}"))?
            .connect_timeout(timeout)
            .timeout(timeout)
            .connect_lazy();
        Ok(Bridge {
            client: BridgeClient::new(channel),
            timeout,
        })
    }

    async fn call<T, F>(&self, call: &'static str, request: F) -> Result<T, BridgeError>
    where
        F: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        match tokio::time::timeout(self.timeout, request).await {
            Ok(Ok(response)) => Ok(response.into_inner()),
            Ok(Err(status)) => Err(BridgeError {
                call,
                cause: describe_status(&status),
            }),
            Err(_) => Err(BridgeError {
                call,
                cause: format!("no answer within {} s", self.timeout.as_secs()),
            }),
        }
    }

    pub async fn create_conference(&self, id: &str, name: &str) -> Result<(), BridgeError> {
        let mut client = self.client.clone();
        self.call(
            "CreateConference",
            client.create_conference(pb::CreateConferenceRequest {
                conference_id: id.to_owned(),
                name: name.to_owned(),
            }),
        )
        .await
        .map(|_| ())
    }

    pub async fn expire_conference(&self, id: &str) -> Result<(), BridgeError> {
        let mut client = self.client.clone();
        self.call(
            "ExpireConference",
            client.expire_conference(pb::ExpireConferenceRequest {
                conference_id: id.to_owned(),
            }),
        )
        .await
        .map(|_| ())
    }

    /// A new endpoint; the bridge's transport for the offer. `participant_id` is the MUC nick:
    /// the id the room's clients use for each other in bridge-channel messages.
    pub async fn allocate_endpoint(
        &self,
        conference_id: &str,
        endpoint_id: &str,
        participant_id: &str,
    ) -> Result<pb::Transport, BridgeError> {
        let mut client = self.client.clone();
        let response = self
            .call(
                "AllocateEndpoint",
                client.allocate_endpoint(pb::AllocateEndpointRequest {
                    conference_id: conference_id.to_owned(),
                    endpoint_id: endpoint_id.to_owned(),
                    dtls_setup: pb::DtlsSetup::Actpass as i32,
                    participant_id: participant_id.to_owned(),
                }),
            )
            .await?;
        response.transport.ok_or(BridgeError {
            call: "AllocateEndpoint",
            cause: "the answer has no transport".to_owned(),
        })
    }

    /// Gives the bridge the remote side of an endpoint (transport, media, sources).
    pub async fn update_endpoint(
        &self,
        request: pb::UpdateEndpointRequest,
    ) -> Result<pb::UpdateEndpointResponse, BridgeError> {
        let mut client = self.client.clone();
        self.call("UpdateEndpoint", client.update_endpoint(request))
            .await
    }

    /// An `update_endpoint` that carries the endpoint's sources: what the other endpoints
    /// receive of them (the answer's `forwarded`; an answer without it is an error).
    pub async fn update_endpoint_sources(
        &self,
        request: pb::UpdateEndpointRequest,
    ) -> Result<pb::SourceList, BridgeError> {
        self.update_endpoint(request)
            .await?
            .forwarded
            .ok_or(BridgeError {
                call: "UpdateEndpoint",
                cause: "the answer does not say what is forwarded of the sources".to_owned(),
            })
    }

    pub async fn expire_endpoint(
        &self,
        conference_id: &str,
        endpoint_id: &str,
    ) -> Result<(), BridgeError> {
        let mut client = self.client.clone();
        self.call(
            "ExpireEndpoint",
            client.expire_endpoint(pb::ExpireEndpointRequest {
                conference_id: conference_id.to_owned(),
                endpoint_id: endpoint_id.to_owned(),
            }),
        )
        .await
        .map(|_| ())
    }
}

/// The status code and message, plus the transport error behind an `Unavailable`.
fn describe_status(status: &tonic::Status) -> String {
    let mut text = format!("{:?}: {}", status.code(), status.message());
    let mut source = std::error::Error::source(status);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
