//! The STUN side of a controlled ICE agent: our connectivity checks towards the bridge and the
//! answers to the bridge's checks, built and verified with the webrtc-rs `stun` crate.

use std::net::SocketAddr;

use anyhow::{bail, Context as _};
use stun::agent::TransactionId;
use stun::attributes::{
    ATTR_ICE_CONTROLLED, ATTR_PRIORITY, ATTR_USERNAME, ATTR_USE_CANDIDATE,
};
use stun::fingerprint::FINGERPRINT;
use stun::integrity::MessageIntegrity;
use stun::message::{Message, Setter, BINDING_REQUEST, BINDING_SUCCESS};
use stun::textattrs::TextAttribute;
use stun::xoraddr::XorMappedAddress;

/// Priority of a host candidate for component 1 (RFC 8445 §5.1.2.1: type preference 126,
/// local preference 65535).
pub const HOST_PRIORITY: u32 = (126 << 24) | (65535 << 8) | 255;

/// Our credentials and the peer's, as the two agents exchanged them.
#[derive(Clone, Debug)]
pub struct Credentials {
    pub local_ufrag: String,
    pub local_pwd: String,
    pub remote_ufrag: String,
    pub remote_pwd: String,
}

/// What a received STUN message means for the agent.
#[derive(Debug)]
pub enum StunEvent {
    /// A valid check from the bridge; `response` must be sent back to its source.
    Request {
        use_candidate: bool,
        response: Vec<u8>,
    },
    /// A valid success response to one of our checks.
    Response { transaction_id: TransactionId },
}

/// Builds a Binding request from the controlled side: USERNAME "<remote>:<local>", PRIORITY,
/// ICE-CONTROLLED with our tiebreaker, MESSAGE-INTEGRITY keyed with the remote password and
/// FINGERPRINT.
pub fn binding_request(
    creds: &Credentials,
    tiebreaker: u64,
) -> anyhow::Result<(TransactionId, Vec<u8>)> {
    let transaction_id = TransactionId::new();
    let mut m = Message::new();
    m.build(&[
        Box::new(BINDING_REQUEST),
        Box::new(transaction_id),
        Box::new(TextAttribute::new(
            ATTR_USERNAME,
            format!("{}:{}", creds.remote_ufrag, creds.local_ufrag),
        )),
    ])?;
    m.add(ATTR_PRIORITY, &HOST_PRIORITY.to_be_bytes());
    m.add(ATTR_ICE_CONTROLLED, &tiebreaker.to_be_bytes());
    MessageIntegrity::new_short_term_integrity(creds.remote_pwd.clone()).add_to(&mut m)?;
    FINGERPRINT.add_to(&mut m)?;
    Ok((transaction_id, m.raw))
}

/// Validates a received STUN message and says what to do with it. Requests must be addressed
/// to us ("<our ufrag>:...") and carry MESSAGE-INTEGRITY keyed with our password; responses must
/// carry MESSAGE-INTEGRITY keyed with the bridge's password (when we know it).
pub fn handle_stun(
    datagram: &[u8],
    from: SocketAddr,
    local_ufrag: &str,
    local_pwd: &str,
    remote_pwd: Option<&str>,
) -> anyhow::Result<StunEvent> {
    let mut m = Message::new();
    m.unmarshal_binary(datagram).context("malformed STUN")?;
    if m.contains(stun::attributes::ATTR_FINGERPRINT) {
        FINGERPRINT.check(&m).context("bad FINGERPRINT")?;
    }
    if m.typ == BINDING_REQUEST {
        let username = TextAttribute::get_from_as(&m, ATTR_USERNAME).context("no USERNAME")?;
        let expected = format!("{local_ufrag}:");
        if !username.text.starts_with(&expected) {
            bail!("USERNAME {:?} is not for us", username.text);
        }
        if m.contains(ATTR_ICE_CONTROLLED) {
            bail!("role conflict: the bridge's check says it is controlled too");
        }
        MessageIntegrity::new_short_term_integrity(local_pwd.to_owned())
            .check(&mut m)
            .context("bad MESSAGE-INTEGRITY on request")?;
        let mut resp = Message::new();
        resp.build(&[
            Box::new(BINDING_SUCCESS),
            Box::new(m.transaction_id),
            Box::new(XorMappedAddress {
                ip: from.ip(),
                port: from.port(),
            }),
            Box::new(MessageIntegrity::new_short_term_integrity(
                local_pwd.to_owned(),
            )),
            Box::new(FINGERPRINT),
        ])?;
        Ok(StunEvent::Request {
            use_candidate: m.contains(ATTR_USE_CANDIDATE),
            response: resp.raw,
        })
    } else if m.typ == BINDING_SUCCESS {
        let pwd = remote_pwd.context("response before we know the bridge's password")?;
        MessageIntegrity::new_short_term_integrity(pwd.to_owned())
            .check(&mut m)
            .context("bad MESSAGE-INTEGRITY on response")?;
        Ok(StunEvent::Response {
            transaction_id: m.transaction_id,
        })
    } else {
        bail!("unexpected STUN message type {}", m.typ)
    }
}
