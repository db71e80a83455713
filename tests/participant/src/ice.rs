//! The STUN side of an ICE agent: our connectivity checks towards the peer and the answers to
//! the peer's checks, built and verified with the webrtc-rs `stun` crate. Against the bridge the
//! participant is controlled (the bridge offers); when the participant makes the offer itself
//! (e.g. a publisher's offer to another SFU) it is controlling and nominates aggressively:
//! every check carries USE-CANDIDATE, and the first answered one selects its pair.

use std::net::SocketAddr;

use anyhow::{bail, Context as _};
use stun::agent::TransactionId;
use stun::attributes::{
    ATTR_ICE_CONTROLLED, ATTR_ICE_CONTROLLING, ATTR_PRIORITY, ATTR_USERNAME, ATTR_USE_CANDIDATE,
};
use stun::fingerprint::FINGERPRINT;
use stun::integrity::MessageIntegrity;
use stun::message::{Message, Setter, BINDING_REQUEST, BINDING_SUCCESS};
use stun::textattrs::TextAttribute;
use stun::xoraddr::XorMappedAddress;

/// Priority of a host candidate for component 1 (RFC 8445 §5.1.2.1: type preference 126,
/// local preference 65535).
pub const HOST_PRIORITY: u32 = (126 << 24) | (65535 << 8) | 255;

/// Our ICE role (RFC 8445 §6.1.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IceRole {
    /// The peer nominates (it made the offer): the bridge's case.
    #[default]
    Controlled,
    /// We nominate (we made the offer), aggressively: USE-CANDIDATE in every check.
    Controlling,
}

impl IceRole {
    /// The attribute carrying our tiebreaker in our checks.
    fn attribute(self) -> stun::attributes::AttrType {
        match self {
            IceRole::Controlled => ATTR_ICE_CONTROLLED,
            IceRole::Controlling => ATTR_ICE_CONTROLLING,
        }
    }
}

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

/// Builds a Binding request: USERNAME "<remote>:<local>", PRIORITY, ICE-CONTROLLED (or
/// ICE-CONTROLLING and USE-CANDIDATE) with our tiebreaker, MESSAGE-INTEGRITY keyed with the
/// remote password and FINGERPRINT.
pub fn binding_request(
    creds: &Credentials,
    tiebreaker: u64,
    role: IceRole,
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
    m.add(role.attribute(), &tiebreaker.to_be_bytes());
    if role == IceRole::Controlling {
        m.add(ATTR_USE_CANDIDATE, &[]);
    }
    MessageIntegrity::new_short_term_integrity(creds.remote_pwd.clone()).add_to(&mut m)?;
    FINGERPRINT.add_to(&mut m)?;
    Ok((transaction_id, m.raw))
}

/// Validates a received STUN message and says what to do with it. Requests must be addressed
/// to us ("<our ufrag>:..."), claim the role we do not have and carry MESSAGE-INTEGRITY keyed
/// with our password; responses must carry MESSAGE-INTEGRITY keyed with the peer's password
/// (when we know it).
pub fn handle_stun(
    datagram: &[u8],
    from: SocketAddr,
    local_ufrag: &str,
    local_pwd: &str,
    remote_pwd: Option<&str>,
    role: IceRole,
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
        if m.contains(role.attribute()) {
            bail!("role conflict: the peer's check claims our role ({role:?}) too");
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

#[cfg(test)]
mod tests {
    use super::*;
    use stun::attributes::ATTR_ICE_CONTROLLING;

    fn creds() -> Credentials {
        Credentials {
            local_ufrag: "part".into(),
            local_pwd: "participantpassword12345".into(),
            remote_ufrag: "brdg".into(),
            remote_pwd: "bridgepassword1234567890".into(),
        }
    }

    fn from() -> SocketAddr {
        "127.0.0.1:40000".parse().unwrap()
    }

    /// A check as the controlling bridge sends it.
    fn bridge_check(username: &str, pwd: &str, use_candidate: bool) -> (TransactionId, Vec<u8>) {
        peer_check(username, pwd, use_candidate, ATTR_ICE_CONTROLLING)
    }

    /// A check from a peer claiming the role `role_attr` (ICE-CONTROLLING or ICE-CONTROLLED).
    fn peer_check(
        username: &str,
        pwd: &str,
        use_candidate: bool,
        role_attr: stun::attributes::AttrType,
    ) -> (TransactionId, Vec<u8>) {
        let txid = TransactionId::new();
        let mut m = Message::new();
        m.build(&[
            Box::new(BINDING_REQUEST),
            Box::new(txid),
            Box::new(TextAttribute::new(ATTR_USERNAME, username.to_owned())),
        ])
        .unwrap();
        m.add(ATTR_PRIORITY, &HOST_PRIORITY.to_be_bytes());
        m.add(role_attr, &7u64.to_be_bytes());
        if use_candidate {
            m.add(ATTR_USE_CANDIDATE, &[]);
        }
        MessageIntegrity::new_short_term_integrity(pwd.to_owned())
            .add_to(&mut m)
            .unwrap();
        FINGERPRINT.add_to(&mut m).unwrap();
        (txid, m.raw)
    }

    #[test]
    fn our_check_is_what_a_controlling_agent_expects() {
        let c = creds();
        let (txid, raw) = binding_request(&c, 99, IceRole::Controlled).unwrap();
        let mut m = Message::new();
        m.unmarshal_binary(&raw).unwrap();
        assert_eq!(m.typ, BINDING_REQUEST);
        assert_eq!(m.transaction_id, txid);
        let user = TextAttribute::get_from_as(&m, ATTR_USERNAME).unwrap();
        assert_eq!(user.text, "brdg:part");
        assert_eq!(m.get(ATTR_PRIORITY).unwrap(), HOST_PRIORITY.to_be_bytes());
        assert_eq!(m.get(ATTR_ICE_CONTROLLED).unwrap(), 99u64.to_be_bytes());
        assert!(!m.contains(ATTR_USE_CANDIDATE));
        FINGERPRINT.check(&m).unwrap();
        MessageIntegrity::new_short_term_integrity(c.remote_pwd.clone())
            .check(&mut m)
            .unwrap();
        assert!(MessageIntegrity::new_short_term_integrity(c.local_pwd)
            .check(&mut m)
            .is_err());
    }

    #[test]
    fn answers_valid_checks_with_integrity_and_mapped_address() {
        let c = creds();
        let (txid, raw) = bridge_check("part:brdg", &c.local_pwd, true);
        let ev = handle_stun(
            &raw,
            from(),
            "part",
            &c.local_pwd,
            None,
            IceRole::Controlled,
        )
        .unwrap();
        let StunEvent::Request {
            use_candidate,
            response,
        } = ev
        else {
            panic!("expected a request, got {ev:?}");
        };
        assert!(use_candidate);
        let mut m = Message::new();
        m.unmarshal_binary(&response).unwrap();
        assert_eq!(m.typ, BINDING_SUCCESS);
        assert_eq!(m.transaction_id, txid);
        let mut xor = XorMappedAddress::default();
        stun::message::Getter::get_from(&mut xor, &m).unwrap();
        assert_eq!(SocketAddr::new(xor.ip, xor.port), from());
        FINGERPRINT.check(&m).unwrap();
        MessageIntegrity::new_short_term_integrity(c.local_pwd)
            .check(&mut m)
            .unwrap();

        let (_, plain) = bridge_check("part:brdg", &c.remote_pwd.replace('b', "c"), false);
        assert!(handle_stun(
            &plain,
            from(),
            "part",
            &c.remote_pwd,
            None,
            IceRole::Controlled
        )
        .is_err());
    }

    #[test]
    fn rejects_checks_with_wrong_credentials_or_garbage() {
        let c = creds();
        let (_, wrong_pwd) = bridge_check("part:brdg", "not-the-password", true);
        assert!(handle_stun(
            &wrong_pwd,
            from(),
            "part",
            &c.local_pwd,
            None,
            IceRole::Controlled
        )
        .is_err());
        let (_, wrong_user) = bridge_check("other:brdg", &c.local_pwd, true);
        assert!(handle_stun(
            &wrong_user,
            from(),
            "part",
            &c.local_pwd,
            None,
            IceRole::Controlled
        )
        .is_err());
        let (_, mut corrupt) = bridge_check("part:brdg", &c.local_pwd, true);
        let last = corrupt.len() - 1;
        corrupt[last] ^= 1;
        assert!(handle_stun(
            &corrupt,
            from(),
            "part",
            &c.local_pwd,
            None,
            IceRole::Controlled
        )
        .is_err());
        for n in 0..corrupt.len() {
            assert!(handle_stun(
                &corrupt[..n],
                from(),
                "part",
                &c.local_pwd,
                None,
                IceRole::Controlled
            )
            .is_err());
        }
    }

    #[test]
    fn accepts_only_authentic_responses() {
        let c = creds();
        let response = |pwd: &str| {
            let txid = TransactionId::new();
            let mut m = Message::new();
            m.build(&[
                Box::new(BINDING_SUCCESS),
                Box::new(txid),
                Box::new(XorMappedAddress {
                    ip: from().ip(),
                    port: from().port(),
                }),
                Box::new(MessageIntegrity::new_short_term_integrity(pwd.to_owned())),
                Box::new(FINGERPRINT),
            ])
            .unwrap();
            (txid, m.raw)
        };
        let (txid, good) = response(&c.remote_pwd);
        match handle_stun(
            &good,
            from(),
            "part",
            &c.local_pwd,
            Some(&c.remote_pwd),
            IceRole::Controlled,
        )
        .unwrap()
        {
            StunEvent::Response { transaction_id } => assert_eq!(transaction_id, txid),
            other => panic!("expected a response, got {other:?}"),
        }
        let (_, forged) = response("someone-else");
        assert!(handle_stun(
            &forged,
            from(),
            "part",
            &c.local_pwd,
            Some(&c.remote_pwd),
            IceRole::Controlled
        )
        .is_err());
        assert!(handle_stun(
            &good,
            from(),
            "part",
            &c.local_pwd,
            None,
            IceRole::Controlled
        )
        .is_err());
    }

    #[test]
    fn a_controlling_agent_nominates_in_every_check_and_answers_controlled_peers() {
        let c = creds();
        let (_, raw) = binding_request(&c, 99, IceRole::Controlling).unwrap();
        let mut m = Message::new();
        m.unmarshal_binary(&raw).unwrap();
        assert_eq!(m.get(ATTR_ICE_CONTROLLING).unwrap(), 99u64.to_be_bytes());
        assert!(!m.contains(ATTR_ICE_CONTROLLED));
        assert!(m.contains(ATTR_USE_CANDIDATE));
        MessageIntegrity::new_short_term_integrity(c.remote_pwd.clone())
            .check(&mut m)
            .unwrap();

        let (_, controlled) = peer_check("part:brdg", &c.local_pwd, false, ATTR_ICE_CONTROLLED);
        assert!(matches!(
            handle_stun(
                &controlled,
                from(),
                "part",
                &c.local_pwd,
                None,
                IceRole::Controlling
            ),
            Ok(StunEvent::Request { .. })
        ));
        assert!(handle_stun(
            &controlled,
            from(),
            "part",
            &c.local_pwd,
            None,
            IceRole::Controlled
        )
        .is_err());
        let (_, controlling) = bridge_check("part:brdg", &c.local_pwd, true);
        assert!(handle_stun(
            &controlling,
            from(),
            "part",
            &c.local_pwd,
            None,
            IceRole::Controlling
        )
        .is_err());
    }
}
