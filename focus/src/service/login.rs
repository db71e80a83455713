//! Logging in to the XMPP server, with failures reported as such.
//!
//! tokio-xmpp's stream reconnects and re-authenticates forever and reports a refused password
//! with no event at all. So before handing the account to it, the focus runs one login of its
//! own over the same connector (TCP, STARTTLS, SASL) and turns each way that can fail into an
//! error naming the cause; the stream is then given the whole login time-out to come online,
//! which covers a server that changes its mind in between.
//!
//! The focus drives tokio-xmpp's `StanzaStream` itself, not its `Client`: the `Client` shares
//! the stream between its sending half and a receive task behind a mutex whose receive side
//! returns `Pending` without registering a waker while a send holds the lock (tokio-xmpp 6.0.0),
//! so a send racing a receive could stop the focus from ever seeing another stanza.

use std::net::SocketAddr;

use futures::StreamExt;
use sasl::common::Credentials;
use tokio_xmpp::connect::ServerConnector;
use tokio_xmpp::error::{AuthError, Error as XmppError, ProtocolError};
use tokio_xmpp::jid::Jid;
use tokio_xmpp::stanzastream::{Event, StanzaStream, StreamEvent};
use tokio_xmpp::xmlstream::Timeouts;

use super::config::{Settings, XmppSecurity};
use tutti_focus::connector::{Plaintext, Received, StartTls};

/// Why the focus could not log in.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("cannot reach the XMPP server at {server}: {cause}")]
    Unreachable { server: SocketAddr, cause: String },
    #[error("the XMPP server at {server} does not offer STARTTLS (xmpp_security = \"starttls\"); use TLS on the server, or \"plaintext\" on loopback only")]
    NoStarttls { server: SocketAddr },
    #[error("TLS with the XMPP server at {server} failed: {cause} (the focus trusts the system's CAs and those in SSL_CERT_FILE; the certificate must name the XMPP domain)")]
    Tls { server: SocketAddr, cause: String },
    #[error("login as {jid} refused by the server (SASL failure {condition}): wrong password or no such account")]
    Refused { jid: String, condition: String },
    #[error("login as {jid}: the server offers no SASL mechanism the focus supports")]
    NoMechanism { jid: String },
    #[error("login as {jid} at {server} failed: {cause}")]
    Other {
        jid: String,
        server: SocketAddr,
        cause: String,
    },
    #[error("login as {jid} at {server} did not complete within {seconds} s")]
    TimedOut {
        jid: String,
        server: SocketAddr,
        seconds: u64,
    },
}

/// Stanzas queued in each direction before the other side waits.
const QUEUE_DEPTH: usize = 256;

/// Checks the account with one login of its own, then starts the long-lived stream and waits
/// until it is online; all within `settings.login_timeout`. Returns the stream and its bound JID;
/// what its connections report of what they receive goes to `received`.
pub async fn login(
    settings: &Settings,
    received: &Received,
) -> Result<(StanzaStream, Jid), LoginError> {
    let timed_out = || LoginError::TimedOut {
        jid: settings.jid.to_string(),
        server: settings.xmpp_server,
        seconds: settings.login_timeout.as_secs(),
    };
    let deadline = tokio::time::Instant::now() + settings.login_timeout;
    let check = async {
        match settings.xmpp_security {
            XmppSecurity::Starttls => {
                check_login(StartTls(settings.xmpp_server, received.clone()), settings).await
            }
            XmppSecurity::Plaintext => {
                check_login(Plaintext(settings.xmpp_server, received.clone()), settings).await
            }
        }
    };
    tokio::time::timeout_at(deadline, check)
        .await
        .map_err(|_| timed_out())??;
    let password = settings.password.clone();
    let mut stream = match settings.xmpp_security {
        XmppSecurity::Starttls => StanzaStream::new_c2s(
            StartTls(settings.xmpp_server, received.clone()),
            settings.jid(),
            password,
            Timeouts::default(),
            QUEUE_DEPTH,
        ),
        XmppSecurity::Plaintext => StanzaStream::new_c2s(
            Plaintext(settings.xmpp_server, received.clone()),
            settings.jid(),
            password,
            Timeouts::default(),
            QUEUE_DEPTH,
        ),
    };
    let online = async {
        loop {
            match stream.next().await {
                Some(Event::Stream(StreamEvent::Reset { bound_jid, .. })) => return Ok(bound_jid),
                Some(_) => {}
                None => {
                    return Err(LoginError::Other {
                        jid: settings.jid.to_string(),
                        server: settings.xmpp_server,
                        cause: "the XMPP client stopped".to_owned(),
                    })
                }
            }
        }
    };
    let bound = tokio::time::timeout_at(deadline, online)
        .await
        .map_err(|_| timed_out())??;
    Ok((stream, bound))
}

/// One login (connect, TLS, SASL) over `connector`, then the connection is dropped.
async fn check_login<C: ServerConnector>(
    connector: C,
    settings: &Settings,
) -> Result<(), LoginError> {
    let jid = settings.jid();
    let inner = async {
        let (pending, channel_binding) = connector
            .connect(&jid, "jabber:client", Timeouts::default())
            .await?;
        let (features, stream) = pending.recv_features().await?;
        let username = settings
            .jid
            .node()
            .map(|node| node.as_str())
            .unwrap_or_default();
        let credentials = Credentials::default()
            .with_username(username)
            .with_password(settings.password.clone())
            .with_channel_binding(channel_binding);
        tokio_xmpp::client_login(stream, features.sasl_mechanisms, credentials).await?;
        Ok::<(), XmppError>(())
    };
    inner.await.map_err(|error| classify(error, settings))
}

fn classify(error: XmppError, settings: &Settings) -> LoginError {
    let jid = settings.jid.to_string();
    let server = settings.xmpp_server;
    match error {
        XmppError::Io(io) => LoginError::Unreachable {
            server,
            cause: io.to_string(),
        },
        XmppError::Protocol(ProtocolError::NoTls) => LoginError::NoStarttls { server },
        XmppError::Connection(error) => LoginError::Tls {
            server,
            cause: error.to_string(),
        },
        XmppError::Auth(AuthError::Fail(condition)) => LoginError::Refused {
            jid,
            condition: format!("{condition:?}"),
        },
        XmppError::Auth(AuthError::NoMechanism) => LoginError::NoMechanism { jid },
        other => LoginError::Other {
            jid,
            server,
            cause: other.to_string(),
        },
    }
}
