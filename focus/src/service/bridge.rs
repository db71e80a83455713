//! The focus's side of one bridge's gRPC API: the rooms' bridge requests carried out, every
//! call bounded by a time-out, every failure an error naming the call; and the bridge's event
//! stream, over a connection whose HTTP/2 keepalive pings fail it within
//! `KEEPALIVE_INTERVAL + KEEPALIVE_TIMEOUT` of the bridge going quiet.

use std::time::Duration;

use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tutti_focus::room::{BridgeAnswer, BridgeError, BridgeRequest};
use tutti_proto::bridge_v1 as pb;
use tutti_proto::bridge_v1::bridge_client::BridgeClient;

use crate::service::config::BridgeTls;

/// HTTP/2 PING on the bridge's connection this often, even while idle...
const KEEPALIVE_INTERVAL: Duration = Duration::from_millis(500);
/// ...and the connection is closed when one is not answered within this.
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Clone)]
pub struct Bridge {
    client: BridgeClient<Channel>,
    timeout: Duration,
}

impl Bridge {
    /// A lazily connected client: the focus starts whether or not the bridge is up yet. With
    /// `tls`, the files are read now (a bad one stops the start) and the bridge must present
    /// a certificate for `tls.domain` chaining to `tls.ca`.
    pub fn new(url: &str, tls: Option<&BridgeTls>, timeout: Duration) -> anyhow::Result<Bridge> {
        let mut endpoint = Endpoint::from_shared(url.to_owned())
            .map_err(|e| anyhow::anyhow!("bridge_url {url:?}: {e}"))?;
        if let Some(tls) = tls {
            let read = |key: &str, path: &std::path::Path| {
                std::fs::read(path).map_err(|e| anyhow::anyhow!("{key} {}: {e}", path.display()))
            };
            let config = ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(read("bridge_tls_ca", &tls.ca)?))
                .identity(Identity::from_pem(
                    read("bridge_tls_cert", &tls.cert)?,
                    read("bridge_tls_key", &tls.key)?,
                ))
                .domain_name(tls.domain.clone());
            endpoint = endpoint
                .tls_config(config)
                .map_err(|e| anyhow::anyhow!("bridge TLS configuration: {e}"))?;
        }
        let channel = endpoint
            .connect_timeout(timeout)
            .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
            .keep_alive_timeout(KEEPALIVE_TIMEOUT)
            .keep_alive_while_idle(true)
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
        self.answer(call, tokio::time::timeout(self.timeout, request).await)
    }

    /// An expiry: one the bridge does not know (it expired the endpoint itself meanwhile, or
    /// restarted) has nothing left to do, and is no failure.
    async fn expire<T, F>(
        &self,
        call: &'static str,
        request: F,
    ) -> Result<BridgeAnswer, BridgeError>
    where
        F: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        match tokio::time::timeout(self.timeout, request).await {
            Ok(Err(status)) if status.code() == tonic::Code::NotFound => {
                tracing::debug!(
                    call,
                    cause = status.message(),
                    "already gone from the bridge"
                );
                Ok(BridgeAnswer::Done)
            }
            answer => self.answer(call, answer).map(|_| BridgeAnswer::Done),
        }
    }

    fn answer<T>(
        &self,
        call: &'static str,
        answer: Result<Result<tonic::Response<T>, tonic::Status>, tokio::time::error::Elapsed>,
    ) -> Result<T, BridgeError> {
        match answer {
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

    /// The bridge's event stream (`WatchEvents`): a snapshot, then endpoint events and status
    /// reports for as long as the connection lives.
    pub async fn watch(&self) -> Result<tonic::Streaming<pb::BridgeEvent>, BridgeError> {
        let mut client = self.client.clone();
        let call = client.watch_events(pb::WatchEventsRequest {});
        self.call("WatchEvents", call).await
    }

    /// Every conference the bridge holds (`ListConferences`).
    pub async fn list_conferences(&self) -> Result<Vec<pb::ConferenceInfo>, BridgeError> {
        let mut client = self.client.clone();
        let call = client.list_conferences(pb::ListConferencesRequest {});
        Ok(self.call("ListConferences", call).await?.conferences)
    }

    /// Carries out one of a room's requests; `allocated` hears how an `AllocateEndpoint`
    /// ended: the bridge's number for a new endpoint, or `None` (it existed, or the call
    /// failed), for the pool's padding (`Pool::allocated`).
    pub async fn perform(
        &self,
        request: BridgeRequest,
        allocated: impl FnOnce(Option<u64>),
    ) -> Result<BridgeAnswer, BridgeError> {
        let mut client = self.client.clone();
        match request {
            BridgeRequest::CreateConference {
                conference_id,
                name,
                ..
            } => {
                let call = client.create_conference(pb::CreateConferenceRequest {
                    conference_id,
                    name,
                });
                self.call("CreateConference", call).await?;
                Ok(BridgeAnswer::Done)
            }
            BridgeRequest::ExpireConference { conference_id } => {
                let call = client.expire_conference(pb::ExpireConferenceRequest { conference_id });
                self.expire("ExpireConference", call).await
            }
            BridgeRequest::AllocateEndpoint {
                conference_id,
                endpoint_id,
                participant_id,
                receives_by_mid,
            } => {
                let call = client.allocate_endpoint(pb::AllocateEndpointRequest {
                    conference_id,
                    endpoint_id,
                    dtls_setup: pb::DtlsSetup::Actpass as i32,
                    participant_id,
                    receives_by_mid,
                });
                let response = self.call("AllocateEndpoint", call).await;
                allocated(
                    response
                        .as_ref()
                        .ok()
                        .and_then(|r| (r.created && r.allocation > 0).then_some(r.allocation)),
                );
                response?
                    .transport
                    .map(BridgeAnswer::Allocated)
                    .ok_or(BridgeError {
                        call: "AllocateEndpoint",
                        cause: "the answer has no transport".to_owned(),
                    })
            }
            BridgeRequest::UpdateEndpoint(update) => {
                let call = client.update_endpoint(*update);
                Ok(BridgeAnswer::Updated(
                    self.call("UpdateEndpoint", call).await?,
                ))
            }
            BridgeRequest::ExpireEndpoint {
                conference_id,
                endpoint_id,
            } => {
                let call = client.expire_endpoint(pb::ExpireEndpointRequest {
                    conference_id,
                    endpoint_id,
                });
                self.expire("ExpireEndpoint", call).await
            }
            BridgeRequest::AllocateRelay {
                conference_id,
                relay_id,
                controlling,
            } => {
                let call = client.allocate_relay(pb::AllocateRelayRequest {
                    conference_id,
                    relay_id,
                    controlling,
                });
                let response = self.call("AllocateRelay", call).await?;
                response
                    .transport
                    .map(BridgeAnswer::RelayAllocated)
                    .ok_or(BridgeError {
                        call: "AllocateRelay",
                        cause: "the answer has no transport".to_owned(),
                    })
            }
            BridgeRequest::UpdateRelay(update) => {
                let call = client.update_relay(*update);
                self.call("UpdateRelay", call).await?;
                Ok(BridgeAnswer::Done)
            }
            BridgeRequest::ExpireRelay {
                conference_id,
                relay_id,
            } => {
                let call = client.expire_relay(pb::ExpireRelayRequest {
                    conference_id,
                    relay_id,
                });
                self.expire("ExpireRelay", call).await
            }
        }
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
