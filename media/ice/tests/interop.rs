//! Interop of the STUN codec with an independent implementation (webrtc-rs `stun`).

use std::net::{IpAddr, SocketAddr};

use stun::agent::TransactionId;
use stun::attributes::{
    ATTR_ICE_CONTROLLED, ATTR_ICE_CONTROLLING, ATTR_PRIORITY, ATTR_USERNAME, ATTR_USE_CANDIDATE,
};
use stun::error_code::ErrorCodeAttribute;
use stun::fingerprint::FINGERPRINT;
use stun::integrity::MessageIntegrity;
use stun::message::{Getter, Message as WMessage, Setter, BINDING_REQUEST, BINDING_SUCCESS};
use stun::textattrs::TextAttribute;
use stun::xoraddr::XorMappedAddress;
use tutti_ice::stun::{
    self as ts, BindingRequest, Class, IntegrityKey, Message, Role, ERROR_ROLE_CONFLICT,
};
use tutti_ice::Error;

const PWD: &str = "aPasswordOf22CharsOrMore";
const ID: [u8; 12] = [0x11, 0x22, 0x33, 0x44, 5, 6, 7, 8, 9, 10, 11, 12];

fn decode_with_webrtc(bytes: &[u8]) -> WMessage {
    let mut m = WMessage::new();
    m.unmarshal_binary(bytes)
        .expect("webrtc-rs decodes our message");
    m
}

#[test]
fn our_request_is_accepted_by_webrtc_stun() {
    let mut buf = [0u8; 548];
    let n = BindingRequest {
        transaction_id: ID,
        username: "remote:local",
        password: PWD,
        priority: 0x6E00_1EFF,
        role: Role::Controlling(0x0102_0304_0506_0708),
        use_candidate: true,
    }
    .encode(&mut buf)
    .unwrap();
    let mut m = decode_with_webrtc(&buf[..n]);
    assert_eq!(m.typ, BINDING_REQUEST);
    assert_eq!(m.transaction_id, TransactionId(ID));
    let username = TextAttribute::get_from_as(&m, ATTR_USERNAME).unwrap();
    assert_eq!(username.text, "remote:local");
    assert_eq!(m.get(ATTR_PRIORITY).unwrap(), 0x6E00_1EFFu32.to_be_bytes());
    assert_eq!(
        m.get(ATTR_ICE_CONTROLLING).unwrap(),
        0x0102_0304_0506_0708u64.to_be_bytes()
    );
    assert!(m.contains(ATTR_USE_CANDIDATE));
    assert!(!m.contains(ATTR_ICE_CONTROLLED));
    FINGERPRINT.check(&m).expect("fingerprint verifies");
    MessageIntegrity::new_short_term_integrity(PWD.to_owned())
        .check(&mut m)
        .expect("integrity verifies");
    assert!(
        MessageIntegrity::new_short_term_integrity("wrong".to_owned())
            .check(&mut m)
            .is_err()
    );
}

#[test]
fn our_success_response_is_accepted_by_webrtc_stun() {
    for addr in ["203.0.113.7:61000", "[2001:db8::42]:5004"] {
        let addr: SocketAddr = addr.parse().unwrap();
        let mut buf = [0u8; 548];
        let n = ts::write_binding_success(&mut buf, &ID, addr, &IntegrityKey::new(PWD)).unwrap();
        let mut m = decode_with_webrtc(&buf[..n]);
        assert_eq!(m.typ, BINDING_SUCCESS);
        let mut xor = XorMappedAddress::default();
        xor.get_from(&m).unwrap();
        assert_eq!(SocketAddr::new(xor.ip, xor.port), addr);
        FINGERPRINT.check(&m).unwrap();
        MessageIntegrity::new_short_term_integrity(PWD.to_owned())
            .check(&mut m)
            .unwrap();
    }
}

#[test]
fn our_error_response_is_accepted_by_webrtc_stun() {
    let mut buf = [0u8; 548];
    let n = ts::write_binding_error(
        &mut buf,
        &ID,
        ERROR_ROLE_CONFLICT,
        "Role Conflict",
        &IntegrityKey::new(PWD),
    )
    .unwrap();
    let mut m = decode_with_webrtc(&buf[..n]);
    let mut code = ErrorCodeAttribute::default();
    code.get_from(&m).unwrap();
    assert_eq!(code.code.0, 487);
    assert_eq!(code.reason, b"Role Conflict");
    FINGERPRINT.check(&m).unwrap();
    MessageIntegrity::new_short_term_integrity(PWD.to_owned())
        .check(&mut m)
        .unwrap();
}

fn webrtc_request(controlled: bool, use_candidate: bool) -> Vec<u8> {
    let mut m = WMessage::new();
    m.build(&[
        Box::new(TransactionId(ID)),
        Box::new(BINDING_REQUEST),
        Box::new(TextAttribute::new(ATTR_USERNAME, "local:remote".to_owned())),
    ])
    .unwrap();
    m.add(ATTR_PRIORITY, &1_853_817_087u32.to_be_bytes());
    let role = if controlled {
        ATTR_ICE_CONTROLLED
    } else {
        ATTR_ICE_CONTROLLING
    };
    m.add(role, &42u64.to_be_bytes());
    if use_candidate {
        m.add(ATTR_USE_CANDIDATE, &[]);
    }
    MessageIntegrity::new_short_term_integrity(PWD.to_owned())
        .add_to(&mut m)
        .unwrap();
    FINGERPRINT.add_to(&mut m).unwrap();
    m.raw.clone()
}

#[test]
fn webrtc_stun_request_is_decoded_and_verified() {
    let bytes = webrtc_request(true, true);
    assert!(ts::is_stun(&bytes));
    assert!(ts::is_binding_request(&bytes));
    assert_eq!(ts::peek_username(&bytes), Some(&b"local:remote"[..]));
    let m = Message::parse(&bytes).unwrap();
    assert_eq!(m.class, Class::Request);
    assert_eq!(m.transaction_id, ID);
    assert_eq!(m.username, Some(&b"local:remote"[..]));
    assert_eq!(m.priority, Some(1_853_817_087));
    assert_eq!(m.ice_controlled, Some(42));
    assert_eq!(m.ice_controlling, None);
    assert!(m.use_candidate);
    m.check_fingerprint().unwrap();
    m.check_integrity(&IntegrityKey::new(PWD)).unwrap();
    assert_eq!(
        m.check_integrity(&IntegrityKey::new("another password entirely")),
        Err(Error::BadIntegrity)
    );

    let bytes = webrtc_request(false, false);
    let m = Message::parse(&bytes).unwrap();
    assert_eq!(m.ice_controlling, Some(42));
    assert!(!m.use_candidate);
    m.check_integrity(&IntegrityKey::new(PWD)).unwrap();
}

#[test]
fn webrtc_stun_response_xor_address_is_decoded() {
    for addr in ["198.51.100.1:3478", "[fe80::1:2:3]:9"] {
        let addr: SocketAddr = addr.parse().unwrap();
        let mut m = WMessage::new();
        m.build(&[
            Box::new(TransactionId([
                0xCA, 0xFE, 0xBA, 0xBE, 1, 2, 3, 4, 5, 6, 7, 8,
            ])),
            Box::new(BINDING_SUCCESS),
            Box::new(XorMappedAddress {
                ip: addr.ip(),
                port: addr.port(),
            }),
            Box::new(MessageIntegrity::new_short_term_integrity(PWD.to_owned())),
            Box::new(FINGERPRINT),
        ])
        .unwrap();
        assert_eq!(ts::response_transaction_tag(&m.raw), Some(0xCAFE_BABE));
        assert!(!ts::is_binding_request(&m.raw));
        let ours = Message::parse(&m.raw).unwrap();
        assert_eq!(ours.class, Class::SuccessResponse);
        assert_eq!(ours.xor_mapped_address, Some(addr));
        ours.check_fingerprint().unwrap();
        ours.check_integrity(&IntegrityKey::new(PWD)).unwrap();
        assert!(matches!(addr.ip(), IpAddr::V4(_) | IpAddr::V6(_)));
    }
}

#[test]
fn webrtc_stun_message_without_fingerprint_is_reported() {
    let mut m = WMessage::new();
    m.build(&[
        Box::new(TransactionId(ID)),
        Box::new(BINDING_REQUEST),
        Box::new(TextAttribute::new(ATTR_USERNAME, "local:remote".to_owned())),
        Box::new(MessageIntegrity::new_short_term_integrity(PWD.to_owned())),
    ])
    .unwrap();
    let ours = Message::parse(&m.raw).unwrap();
    assert!(!ours.has_fingerprint());
    assert_eq!(ours.check_fingerprint(), Err(Error::BadFingerprint));
    ours.check_integrity(&IntegrityKey::new(PWD)).unwrap();
}

#[test]
fn agent_answers_webrtc_stun_request_verifiably() {
    use std::time::Instant;
    use tutti_ice::{AgentConfig, Credentials, Event, IceAgent};

    let now = Instant::now();
    let local = Credentials {
        ufrag: "local".to_owned(),
        pwd: PWD.to_owned(),
    };
    let mut agent = IceAgent::new(AgentConfig::default(), local, now);
    let from: SocketAddr = "[2001:db8::7]:50000".parse().unwrap();
    agent
        .handle_stun(from, &webrtc_request(true, false), now)
        .unwrap();
    assert_eq!(agent.poll_event(), Some(Event::AddressValidated(from)));
    let mut buf = [0u8; 548];
    let (to, n) = agent.poll_transmit(&mut buf).unwrap();
    assert_eq!(to, from);
    let mut m = decode_with_webrtc(&buf[..n]);
    assert_eq!(m.typ, BINDING_SUCCESS);
    assert_eq!(m.transaction_id, TransactionId(ID));
    let mut xor = XorMappedAddress::default();
    xor.get_from(&m).unwrap();
    assert_eq!(SocketAddr::new(xor.ip, xor.port), from);
    FINGERPRINT.check(&m).unwrap();
    MessageIntegrity::new_short_term_integrity(PWD.to_owned())
        .check(&mut m)
        .unwrap();

    // The same request keyed with another password is dropped unanswered.
    let mut forged = WMessage::new();
    forged
        .build(&[
            Box::new(TransactionId([1; 12])),
            Box::new(BINDING_REQUEST),
            Box::new(TextAttribute::new(ATTR_USERNAME, "local:remote".to_owned())),
            Box::new(MessageIntegrity::new_short_term_integrity(
                "not the password at all".to_owned(),
            )),
            Box::new(FINGERPRINT),
        ])
        .unwrap();
    assert_eq!(
        agent.handle_stun(from, &forged.raw, now),
        Err(Error::BadIntegrity)
    );
    assert_eq!(agent.poll_transmit(&mut buf), None);
}
