//! The focus's XMPP connections: tokio-xmpp's TCP and STARTTLS connectors with Nagle's
//! algorithm off. The focus writes bursts of small stanzas (an IQ result, then a source-add to
//! each participant); with Nagle on, each one after the first waits for the server's delayed
//! ACK, up to 40 ms on Linux, and joins would wait with them.

use std::borrow::Cow;
use std::net::SocketAddr;

use jid::Jid;
use sasl::common::ChannelBinding;
use tokio::io::BufStream;
use tokio::net::TcpStream;
use tokio_xmpp::connect::starttls::starttls;
use tokio_xmpp::connect::tls_common::TlsStream;
use tokio_xmpp::connect::{ServerConnector, ServerConnectorError};
use tokio_xmpp::error::ProtocolError;
use tokio_xmpp::xmlstream::{initiate_stream, PendingFeaturesRecv, StreamHeader, Timeouts};
use tokio_xmpp::Error;

async fn connect_tcp(address: SocketAddr) -> Result<BufStream<TcpStream>, Error> {
    let tcp = TcpStream::connect(address).await?;
    tcp.set_nodelay(true)?;
    Ok(BufStream::new(tcp))
}

fn header(jid: &Jid) -> StreamHeader<'_> {
    StreamHeader {
        to: Some(Cow::Borrowed(jid.domain().as_str())),
        from: None,
        id: None,
    }
}

/// Plaintext (loopback only, see the configuration's `xmpp_security`).
#[derive(Debug, Clone)]
pub struct Plaintext(pub SocketAddr);

impl ServerConnector for Plaintext {
    type Stream = BufStream<TcpStream>;

    async fn connect(
        &self,
        jid: &Jid,
        ns: &'static str,
        timeouts: Timeouts,
    ) -> Result<(PendingFeaturesRecv<Self::Stream>, ChannelBinding), Error> {
        let stream = connect_tcp(self.0).await?;
        let pending = initiate_stream(stream, ns, header(jid), timeouts).await?;
        Ok((pending, ChannelBinding::None))
    }
}

/// STARTTLS, required: a server that does not offer it is refused.
#[derive(Debug, Clone)]
pub struct StartTls(pub SocketAddr);

impl ServerConnector for StartTls {
    type Stream = BufStream<TlsStream<TcpStream>>;

    async fn connect(
        &self,
        jid: &Jid,
        ns: &'static str,
        timeouts: Timeouts,
    ) -> Result<(PendingFeaturesRecv<Self::Stream>, ChannelBinding), Error> {
        let stream = connect_tcp(self.0).await?;
        let pending = initiate_stream(stream, ns, header(jid), timeouts).await?;
        let (features, stream) = pending.recv_features().await?;
        if !features.can_starttls() {
            return Err(Error::Protocol(ProtocolError::NoTls));
        }
        let (tls, binding) = starttls(stream, jid.domain().as_str())
            .await
            .map_err(|error| Error::Connection(Box::new(TlsFailed(error.to_string()))))?;
        let pending = initiate_stream(BufStream::new(tls), ns, header(jid), timeouts).await?;
        Ok((pending, binding))
    }
}

/// The STARTTLS upgrade failed, most often because the server's certificate is not trusted for
/// its domain; kept apart from I/O errors so that it is not reported as an unreachable server.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TlsFailed(pub String);

impl ServerConnectorError for TlsFailed {}
