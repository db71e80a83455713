//! The focus's XMPP connections: tokio-xmpp's TCP and STARTTLS connectors with Nagle's
//! algorithm off. The focus writes bursts of small stanzas (an IQ result, then a source-add to
//! each participant); with Nagle on, each one after the first waits for the server's delayed
//! ACK, up to 40 ms on Linux, and joins would wait with them.
//!
//! What a connection receives passes through an [`Inbound`] on its way to the XML parser: the
//! stream errors the server sends are kept in the connector's [`StreamErrors`], and the stanzas
//! refused (nested too deep, malformed) are counted through its [`Received`]. After a
//! `<conflict/>` (another client bound the same resource) the connector makes no more
//! connections: reconnecting would take the resource back from that client, which would do the
//! same (docs/focus.md).

use std::borrow::Cow;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};

use jid::Jid;
use sasl::common::ChannelBinding;
use tokio::io::{AsyncBufRead, AsyncRead, AsyncWrite, BufStream, ReadBuf};
use tokio::net::TcpStream;
use tokio_xmpp::connect::starttls::starttls;
use tokio_xmpp::connect::tls_common::TlsStream;
use tokio_xmpp::connect::{ServerConnector, ServerConnectorError};
use tokio_xmpp::error::ProtocolError;
use tokio_xmpp::xmlstream::{initiate_stream, PendingFeaturesRecv, StreamHeader, Timeouts};
use tokio_xmpp::Error;

use crate::inbound::{Inbound, Refused};

/// The stream errors the server sent on a connector's connections (shared by its clones).
#[derive(Debug, Clone, Default)]
pub struct StreamErrors(Arc<Mutex<Seen>>);

#[derive(Debug, Default)]
struct Seen {
    /// The last one not taken yet.
    last: Option<String>,
    /// A `<conflict/>` came: no more connections.
    conflict: bool,
}

impl StreamErrors {
    fn record(&self, condition: String) {
        if let Ok(mut seen) = self.0.lock() {
            seen.conflict |= condition == "conflict";
            seen.last = Some(condition);
        }
    }

    /// The condition of the last stream error since the last call, if any.
    pub fn take_last(&self) -> Option<String> {
        self.0.lock().ok().and_then(|mut seen| seen.last.take())
    }

    /// Whether the server replaced this client by another that bound the same resource.
    pub fn conflict(&self) -> bool {
        self.0.lock().is_ok_and(|seen| seen.conflict)
    }

    fn refuse_after_conflict(&self) -> Result<(), Error> {
        if self.conflict() {
            return Err(Error::Io(io::Error::other(
                "not reconnecting: another client took this resource (stream error <conflict/>)",
            )));
        }
        Ok(())
    }
}

/// What a connector's connections report of what they receive (shared by its clones): the
/// stream errors, and each stanza refused, to `refused`.
#[derive(Clone)]
pub struct Received {
    pub stream_errors: StreamErrors,
    refused: Arc<dyn Fn(Refused) + Send + Sync>,
}

impl Received {
    pub fn new(refused: impl Fn(Refused) + Send + Sync + 'static) -> Received {
        Received {
            stream_errors: StreamErrors::default(),
            refused: Arc::new(refused),
        }
    }
}

impl Default for Received {
    /// Refusals are logged only.
    fn default() -> Self {
        Received::new(|_| {})
    }
}

impl std::fmt::Debug for Received {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Received")
            .field("stream_errors", &self.stream_errors)
            .finish_non_exhaustive()
    }
}

/// A connection whose received bytes go through an [`Inbound`] on their way to the XML parser.
#[derive(Debug)]
pub struct Watched<S> {
    inner: S,
    inbound: Inbound,
    /// What the inbound handed on: `checked[taken..]` is for the parser.
    checked: Vec<u8>,
    taken: usize,
    received: Received,
}

impl<S> Watched<S> {
    fn new(inner: S, received: &Received) -> Watched<S> {
        Watched {
            inner,
            inbound: Inbound::default(),
            checked: Vec::new(),
            taken: 0,
            received: received.clone(),
        }
    }
}

impl<S: AsyncBufRead + Unpin> Watched<S> {
    fn fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        while self.taken == self.checked.len() {
            self.checked.clear();
            self.taken = 0;
            let buffer = ready!(Pin::new(&mut self.inner).poll_fill_buf(cx))?;
            if buffer.is_empty() {
                // The end of the stream.
                break;
            }
            let length = buffer.len();
            let found = self.inbound.feed(buffer, &mut self.checked);
            Pin::new(&mut self.inner).consume(length);
            if let Some(condition) = found.stream_error {
                tracing::warn!(%condition, "the XMPP server sent a stream error");
                self.received.stream_errors.record(condition);
            }
            for refused in found.refused {
                tracing::info!(kind = refused.kind(), "a stanza was refused before parsing");
                (self.received.refused)(refused);
            }
        }
        Poll::Ready(Ok(&self.checked[self.taken..]))
    }

    fn consume_bytes(&mut self, amount: usize) {
        self.taken = (self.taken + amount).min(self.checked.len());
    }
}

impl<S: AsyncBufRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let buffer = ready!(this.fill(cx))?;
        let n = buffer.len().min(out.remaining());
        out.put_slice(&buffer[..n]);
        this.consume_bytes(n);
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncBufRead + Unpin> AsyncBufRead for Watched<S> {
    fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        self.get_mut().fill(cx)
    }

    fn consume(self: Pin<&mut Self>, amount: usize) {
        self.get_mut().consume_bytes(amount);
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, bytes)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

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
pub struct Plaintext(pub SocketAddr, pub Received);

impl ServerConnector for Plaintext {
    type Stream = Watched<BufStream<TcpStream>>;

    async fn connect(
        &self,
        jid: &Jid,
        ns: &'static str,
        timeouts: Timeouts,
    ) -> Result<(PendingFeaturesRecv<Self::Stream>, ChannelBinding), Error> {
        self.1.stream_errors.refuse_after_conflict()?;
        let stream = Watched::new(connect_tcp(self.0).await?, &self.1);
        let pending = initiate_stream(stream, ns, header(jid), timeouts).await?;
        Ok((pending, ChannelBinding::None))
    }
}

/// STARTTLS, required: a server that does not offer it is refused.
#[derive(Debug, Clone)]
pub struct StartTls(pub SocketAddr, pub Received);

impl ServerConnector for StartTls {
    type Stream = Watched<BufStream<TlsStream<TcpStream>>>;

    async fn connect(
        &self,
        jid: &Jid,
        ns: &'static str,
        timeouts: Timeouts,
    ) -> Result<(PendingFeaturesRecv<Self::Stream>, ChannelBinding), Error> {
        self.1.stream_errors.refuse_after_conflict()?;
        let stream = connect_tcp(self.0).await?;
        let pending = initiate_stream(stream, ns, header(jid), timeouts).await?;
        let (features, stream) = pending.recv_features().await?;
        if !features.can_starttls() {
            return Err(Error::Protocol(ProtocolError::NoTls));
        }
        let (tls, binding) = starttls(stream, jid.domain().as_str())
            .await
            .map_err(|error| Error::Connection(Box::new(TlsFailed(error.to_string()))))?;
        let tls = Watched::new(BufStream::new(tls), &self.1);
        let pending = initiate_stream(tls, ns, header(jid), timeouts).await?;
        Ok((pending, binding))
    }
}

/// The STARTTLS upgrade failed, most often because the server's certificate is not trusted for
/// its domain; kept apart from I/O errors so that it is not reported as an unreachable server.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TlsFailed(pub String);

impl ServerConnectorError for TlsFailed {}
