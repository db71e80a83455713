//! Sans-IO STUN codec: the RFC 5389/8489 subset ICE needs (Binding method, short-term
//! credentials, FINGERPRINT). Decoding borrows from the datagram and encoding writes into a
//! caller-provided buffer, so neither allocates.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use aws_lc_rs::{constant_time, hmac};

use crate::Error;

/// Fixed value in every RFC 5389 message; distinguishes STUN from RFC 3489 and other protocols.
pub const MAGIC_COOKIE: u32 = 0x2112_A442;
/// Size of the fixed STUN header.
pub const HEADER_LEN: usize = 20;

/// Binding request message type.
pub const BINDING_REQUEST: u16 = 0x0001;
/// Binding indication (keepalive) message type.
pub const BINDING_INDICATION: u16 = 0x0011;
/// Binding success response message type.
pub const BINDING_SUCCESS: u16 = 0x0101;
/// Binding error response message type.
pub const BINDING_ERROR: u16 = 0x0111;

/// USERNAME attribute type.
pub const ATTR_USERNAME: u16 = 0x0006;
/// MESSAGE-INTEGRITY (HMAC-SHA1) attribute type.
pub const ATTR_MESSAGE_INTEGRITY: u16 = 0x0008;
/// ERROR-CODE attribute type.
pub const ATTR_ERROR_CODE: u16 = 0x0009;
/// XOR-MAPPED-ADDRESS attribute type.
pub const ATTR_XOR_MAPPED_ADDRESS: u16 = 0x0020;
/// PRIORITY attribute type (RFC 8445).
pub const ATTR_PRIORITY: u16 = 0x0024;
/// USE-CANDIDATE attribute type (RFC 8445).
pub const ATTR_USE_CANDIDATE: u16 = 0x0025;
/// FINGERPRINT attribute type.
pub const ATTR_FINGERPRINT: u16 = 0x8028;
/// ICE-CONTROLLED attribute type (RFC 8445).
pub const ATTR_ICE_CONTROLLED: u16 = 0x8029;
/// ICE-CONTROLLING attribute type (RFC 8445).
pub const ATTR_ICE_CONTROLLING: u16 = 0x802A;

/// ERROR-CODE value telling the peer both agents claim the same role (RFC 8445 §7.3.1.1).
pub const ERROR_ROLE_CONFLICT: u16 = 487;

const FINGERPRINT_XOR: u32 = 0x5354_554E;
const INTEGRITY_LEN: usize = 20;
/// RFC 8489 §14.3: USERNAME is at most 513 bytes.
const MAX_USERNAME_LEN: usize = 513;

/// First byte 0..=3, length field consistent, magic cookie 0x2112A442.
pub fn is_stun(buf: &[u8]) -> bool {
    if buf.len() < HEADER_LEN || buf[0] > 3 {
        return false;
    }
    let length = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
    length % 4 == 0
        && HEADER_LEN + length == buf.len()
        && u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]) == MAGIC_COOKIE
}

fn message_type(buf: &[u8]) -> Option<u16> {
    is_stun(buf).then(|| u16::from_be_bytes([buf[0], buf[1]]))
}

/// USERNAME attribute of a binding request, unverified (for demultiplexing only).
pub fn peek_username(buf: &[u8]) -> Option<&[u8]> {
    if !is_binding_request(buf) {
        return None;
    }
    let mut attrs = Attributes {
        buf,
        offset: HEADER_LEN,
    };
    while let Some(Ok((typ, value))) = attrs.next() {
        if typ == ATTR_USERNAME {
            return Some(value);
        }
    }
    None
}

/// First 4 bytes of the transaction id, big-endian, of a STUN response (success or error).
pub fn response_transaction_tag(buf: &[u8]) -> Option<u32> {
    let typ = message_type(buf)?;
    if class_of(typ) == Class::SuccessResponse || class_of(typ) == Class::ErrorResponse {
        Some(u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]))
    } else {
        None
    }
}

/// True for a well-formed STUN header whose type is Binding request.
pub fn is_binding_request(buf: &[u8]) -> bool {
    message_type(buf) == Some(BINDING_REQUEST)
}

/// The class bits of a STUN message type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    Request,
    Indication,
    SuccessResponse,
    ErrorResponse,
}

fn class_of(typ: u16) -> Class {
    match ((typ >> 7) & 0b10) | ((typ >> 4) & 0b1) {
        0 => Class::Request,
        1 => Class::Indication,
        2 => Class::SuccessResponse,
        _ => Class::ErrorResponse,
    }
}

fn method_of(typ: u16) -> u16 {
    (typ & 0x000F) | ((typ & 0x00E0) >> 1) | ((typ & 0x3E00) >> 2)
}

/// Iterator over (type, value) of the attributes of a length-checked message.
struct Attributes<'a> {
    buf: &'a [u8],
    offset: usize,
}

impl<'a> Iterator for Attributes<'a> {
    type Item = Result<(u16, &'a [u8]), Error>;

    fn next(&mut self) -> Option<Self::Item> {
        let header = self.buf.get(self.offset..self.offset + 4)?;
        let typ = u16::from_be_bytes([header[0], header[1]]);
        let len = usize::from(u16::from_be_bytes([header[2], header[3]]));
        let start = self.offset + 4;
        let padded_end = start + len.next_multiple_of(4);
        match (
            self.buf.get(start..start + len),
            padded_end <= self.buf.len(),
        ) {
            (Some(value), true) => {
                self.offset = padded_end;
                Some(Ok((typ, value)))
            }
            _ => {
                self.offset = self.buf.len();
                Some(Err(Error::Malformed))
            }
        }
    }
}

/// Key for MESSAGE-INTEGRITY under short-term credentials (the ICE password). Built once per
/// password so signing and verifying do not rebuild it per packet.
#[derive(Clone)]
pub struct IntegrityKey(hmac::Key);

impl IntegrityKey {
    /// Short-term credential key: the password bytes as is (ICE passwords are ASCII, so the
    /// SASLprep step of RFC 8489 is the identity).
    pub fn new(password: &str) -> IntegrityKey {
        IntegrityKey(hmac::Key::new(
            hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            password.as_bytes(),
        ))
    }

    /// HMAC over `buf[..end]` with the header length replaced by `length`, as RFC 5389 §15.4
    /// specifies (the length covers the MESSAGE-INTEGRITY attribute but nothing after it).
    fn sign(&self, buf: &[u8], end: usize, length: u16) -> hmac::Tag {
        let mut ctx = hmac::Context::with_key(&self.0);
        ctx.update(&buf[..2]);
        ctx.update(&length.to_be_bytes());
        ctx.update(&buf[4..end]);
        ctx.sign()
    }
}

impl std::fmt::Debug for IntegrityKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IntegrityKey(..)")
    }
}

/// A decoded STUN message borrowing from the datagram. Attributes ICE does not use are
/// skipped; those after MESSAGE-INTEGRITY other than FINGERPRINT are ignored (RFC 5389 §15.4).
#[derive(Clone, Debug)]
pub struct Message<'a> {
    buf: &'a [u8],
    /// Full 14-bit message type (method and class).
    pub message_type: u16,
    pub class: Class,
    /// STUN method (1 = Binding).
    pub method: u16,
    pub transaction_id: [u8; 12],
    pub username: Option<&'a [u8]>,
    pub priority: Option<u32>,
    pub use_candidate: bool,
    pub ice_controlling: Option<u64>,
    pub ice_controlled: Option<u64>,
    /// Numeric ERROR-CODE (class * 100 + number).
    pub error_code: Option<u16>,
    pub xor_mapped_address: Option<SocketAddr>,
    integrity_offset: Option<usize>,
    fingerprint_offset: Option<usize>,
}

impl<'a> Message<'a> {
    /// Decodes the header and the attributes ICE uses; any inconsistency is `Malformed`.
    pub fn parse(buf: &'a [u8]) -> Result<Message<'a>, Error> {
        let message_type = message_type(buf).ok_or(Error::Malformed)?;
        let mut transaction_id = [0u8; 12];
        transaction_id.copy_from_slice(&buf[8..HEADER_LEN]);
        let mut msg = Message {
            buf,
            message_type,
            class: class_of(message_type),
            method: method_of(message_type),
            transaction_id,
            username: None,
            priority: None,
            use_candidate: false,
            ice_controlling: None,
            ice_controlled: None,
            error_code: None,
            xor_mapped_address: None,
            integrity_offset: None,
            fingerprint_offset: None,
        };
        let mut attrs = Attributes {
            buf,
            offset: HEADER_LEN,
        };
        loop {
            let offset = attrs.offset;
            let Some(item) = attrs.next() else { break };
            let (typ, value) = item?;
            if msg.fingerprint_offset.is_some() {
                return Err(Error::Malformed);
            }
            if typ == ATTR_FINGERPRINT {
                if value.len() != 4 {
                    return Err(Error::Malformed);
                }
                msg.fingerprint_offset = Some(offset);
                continue;
            }
            if msg.integrity_offset.is_some() {
                continue;
            }
            msg.decode_attribute(typ, value, offset)?;
        }
        Ok(msg)
    }

    fn decode_attribute(&mut self, typ: u16, value: &'a [u8], offset: usize) -> Result<(), Error> {
        match typ {
            ATTR_USERNAME if self.username.is_none() => {
                if value.len() > MAX_USERNAME_LEN {
                    return Err(Error::Malformed);
                }
                self.username = Some(value);
            }
            ATTR_MESSAGE_INTEGRITY => {
                if value.len() != INTEGRITY_LEN {
                    return Err(Error::Malformed);
                }
                self.integrity_offset = Some(offset);
            }
            ATTR_PRIORITY if self.priority.is_none() => {
                self.priority = Some(u32::from_be_bytes(fixed(value)?));
            }
            ATTR_USE_CANDIDATE => {
                if !value.is_empty() {
                    return Err(Error::Malformed);
                }
                self.use_candidate = true;
            }
            ATTR_ICE_CONTROLLING if self.ice_controlling.is_none() => {
                self.ice_controlling = Some(u64::from_be_bytes(fixed(value)?));
            }
            ATTR_ICE_CONTROLLED if self.ice_controlled.is_none() => {
                self.ice_controlled = Some(u64::from_be_bytes(fixed(value)?));
            }
            ATTR_ERROR_CODE if self.error_code.is_none() => {
                let (Some(&class), Some(&number)) = (value.get(2), value.get(3)) else {
                    return Err(Error::Malformed);
                };
                let class = u16::from(class & 0x07);
                let number = u16::from(number);
                if !(3..=6).contains(&class) || number > 99 {
                    return Err(Error::Malformed);
                }
                self.error_code = Some(class * 100 + number);
            }
            ATTR_XOR_MAPPED_ADDRESS if self.xor_mapped_address.is_none() => {
                self.xor_mapped_address = Some(decode_xor_address(value, &self.transaction_id)?);
            }
            _ => {}
        }
        Ok(())
    }

    /// True if a FINGERPRINT attribute is present (it is always the last one).
    pub fn has_fingerprint(&self) -> bool {
        self.fingerprint_offset.is_some()
    }

    /// True if a MESSAGE-INTEGRITY attribute is present.
    pub fn has_integrity(&self) -> bool {
        self.integrity_offset.is_some()
    }

    /// `BadFingerprint` if FINGERPRINT is missing or its CRC does not match.
    pub fn check_fingerprint(&self) -> Result<(), Error> {
        let offset = self.fingerprint_offset.ok_or(Error::BadFingerprint)?;
        let value = self
            .buf
            .get(offset + 4..offset + 8)
            .ok_or(Error::BadFingerprint)?;
        let expected = fingerprint_of(&self.buf[..offset]);
        if value == expected.to_be_bytes() {
            Ok(())
        } else {
            Err(Error::BadFingerprint)
        }
    }

    /// `BadIntegrity` if MESSAGE-INTEGRITY is missing or was not made with `key`.
    pub fn check_integrity(&self, key: &IntegrityKey) -> Result<(), Error> {
        let offset = self.integrity_offset.ok_or(Error::BadIntegrity)?;
        let value = self
            .buf
            .get(offset + 4..offset + 4 + INTEGRITY_LEN)
            .ok_or(Error::BadIntegrity)?;
        let length = u16::try_from(offset + 4 + INTEGRITY_LEN - HEADER_LEN)
            .map_err(|_| Error::BadIntegrity)?;
        let tag = key.sign(self.buf, offset, length);
        constant_time::verify_slices_are_equal(tag.as_ref(), value).map_err(|_| Error::BadIntegrity)
    }
}

fn fixed<const N: usize>(value: &[u8]) -> Result<[u8; N], Error> {
    value.try_into().map_err(|_| Error::Malformed)
}

fn fingerprint_of(prefix: &[u8]) -> u32 {
    crc32fast::hash(prefix) ^ FINGERPRINT_XOR
}

fn decode_xor_address(value: &[u8], transaction_id: &[u8; 12]) -> Result<SocketAddr, Error> {
    let (Some(&family), Some(port)) = (value.get(1), value.get(2..4)) else {
        return Err(Error::Malformed);
    };
    let port = u16::from_be_bytes([port[0], port[1]]) ^ (MAGIC_COOKIE >> 16) as u16;
    let mut mask = [0u8; 16];
    mask[..4].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
    mask[4..].copy_from_slice(transaction_id);
    let ip = match (family, value.len()) {
        (1, 8) => {
            let mut octets = [0u8; 4];
            for (i, o) in octets.iter_mut().enumerate() {
                *o = value[4 + i] ^ mask[i];
            }
            IpAddr::V4(Ipv4Addr::from(octets))
        }
        (2, 20) => {
            let mut octets = [0u8; 16];
            for (i, o) in octets.iter_mut().enumerate() {
                *o = value[4 + i] ^ mask[i];
            }
            IpAddr::V6(Ipv6Addr::from(octets))
        }
        _ => return Err(Error::Malformed),
    };
    Ok(SocketAddr::new(ip, port))
}

/// The caller's buffer cannot hold the message being encoded.
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
#[error("buffer too small for the STUN message")]
pub struct BufferTooSmall;

/// Encodes one STUN message into a caller-provided buffer, keeping the header length field
/// current after every attribute so MESSAGE-INTEGRITY and FINGERPRINT cover the right bytes.
pub struct MessageWriter<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl<'a> MessageWriter<'a> {
    /// Writes the header; attributes follow with the methods below.
    pub fn new(
        buf: &'a mut [u8],
        message_type: u16,
        transaction_id: &[u8; 12],
    ) -> Result<MessageWriter<'a>, BufferTooSmall> {
        let header = buf.get_mut(..HEADER_LEN).ok_or(BufferTooSmall)?;
        header[..2].copy_from_slice(&message_type.to_be_bytes());
        header[2..4].copy_from_slice(&[0, 0]);
        header[4..8].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
        header[8..].copy_from_slice(transaction_id);
        Ok(MessageWriter {
            buf,
            len: HEADER_LEN,
        })
    }

    /// Reserves an attribute of `value_len` bytes (zero padding included), updates the header
    /// length and returns the value slice to fill.
    fn attribute(&mut self, typ: u16, value_len: usize) -> Result<&mut [u8], BufferTooSmall> {
        let start = self.len;
        let end = start + 4 + value_len.next_multiple_of(4);
        let length = u16::try_from(end - HEADER_LEN).map_err(|_| BufferTooSmall)?;
        let value_len16 = u16::try_from(value_len).map_err(|_| BufferTooSmall)?;
        let attr = self.buf.get_mut(start..end).ok_or(BufferTooSmall)?;
        attr[..2].copy_from_slice(&typ.to_be_bytes());
        attr[2..4].copy_from_slice(&value_len16.to_be_bytes());
        attr[4..].fill(0);
        self.buf[2..4].copy_from_slice(&length.to_be_bytes());
        self.len = end;
        Ok(&mut self.buf[start + 4..start + 4 + value_len])
    }

    /// USERNAME with an arbitrary value.
    pub fn username(&mut self, username: &[u8]) -> Result<(), BufferTooSmall> {
        self.attribute(ATTR_USERNAME, username.len())?
            .copy_from_slice(username);
        Ok(())
    }

    /// USERNAME "`first`:`second`", written without building the joined string.
    pub fn username_pair(&mut self, first: &[u8], second: &[u8]) -> Result<(), BufferTooSmall> {
        let value = self.attribute(ATTR_USERNAME, first.len() + 1 + second.len())?;
        value[..first.len()].copy_from_slice(first);
        value[first.len()] = b':';
        value[first.len() + 1..].copy_from_slice(second);
        Ok(())
    }

    pub fn priority(&mut self, priority: u32) -> Result<(), BufferTooSmall> {
        self.attribute(ATTR_PRIORITY, 4)?
            .copy_from_slice(&priority.to_be_bytes());
        Ok(())
    }

    pub fn use_candidate(&mut self) -> Result<(), BufferTooSmall> {
        self.attribute(ATTR_USE_CANDIDATE, 0).map(|_| ())
    }

    pub fn ice_controlling(&mut self, tiebreaker: u64) -> Result<(), BufferTooSmall> {
        self.attribute(ATTR_ICE_CONTROLLING, 8)?
            .copy_from_slice(&tiebreaker.to_be_bytes());
        Ok(())
    }

    pub fn ice_controlled(&mut self, tiebreaker: u64) -> Result<(), BufferTooSmall> {
        self.attribute(ATTR_ICE_CONTROLLED, 8)?
            .copy_from_slice(&tiebreaker.to_be_bytes());
        Ok(())
    }

    /// ERROR-CODE with a numeric code (300..=699) and a short reason phrase.
    pub fn error_code(&mut self, code: u16, reason: &str) -> Result<(), BufferTooSmall> {
        let value = self.attribute(ATTR_ERROR_CODE, 4 + reason.len())?;
        value[2] = ((code / 100) & 0x07) as u8;
        value[3] = (code % 100) as u8;
        value[4..].copy_from_slice(reason.as_bytes());
        Ok(())
    }

    pub fn xor_mapped_address(&mut self, addr: SocketAddr) -> Result<(), BufferTooSmall> {
        let mut mask = [0u8; 16];
        mask[..4].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
        mask[4..].copy_from_slice(&self.buf[8..HEADER_LEN]);
        let port = addr.port() ^ (MAGIC_COOKIE >> 16) as u16;
        let (family, octets, n): (u8, [u8; 16], usize) = match addr.ip() {
            IpAddr::V4(ip) => {
                let mut o = [0u8; 16];
                o[..4].copy_from_slice(&ip.octets());
                (1, o, 4)
            }
            IpAddr::V6(ip) => (2, ip.octets(), 16),
        };
        let value = self.attribute(ATTR_XOR_MAPPED_ADDRESS, 4 + n)?;
        value[1] = family;
        value[2..4].copy_from_slice(&port.to_be_bytes());
        for i in 0..n {
            value[4 + i] = octets[i] ^ mask[i];
        }
        Ok(())
    }

    /// MESSAGE-INTEGRITY over everything written so far.
    pub fn message_integrity(&mut self, key: &IntegrityKey) -> Result<(), BufferTooSmall> {
        let start = self.len;
        self.attribute(ATTR_MESSAGE_INTEGRITY, INTEGRITY_LEN)?;
        let length = u16::from_be_bytes([self.buf[2], self.buf[3]]);
        let tag = key.sign(self.buf, start, length);
        self.buf[start + 4..start + 4 + INTEGRITY_LEN].copy_from_slice(tag.as_ref());
        Ok(())
    }

    /// Appends FINGERPRINT (must be the last attribute) and returns the message length.
    pub fn finish_with_fingerprint(mut self) -> Result<usize, BufferTooSmall> {
        let start = self.len;
        self.attribute(ATTR_FINGERPRINT, 4)?;
        let crc = fingerprint_of(&self.buf[..start]);
        self.buf[start + 4..start + 8].copy_from_slice(&crc.to_be_bytes());
        Ok(self.len)
    }

    /// Returns the message length without a FINGERPRINT.
    pub fn finish(self) -> usize {
        self.len
    }
}

/// The ICE role attribute of a connectivity check, with the agent's tiebreaker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Controlling(u64),
    Controlled(u64),
}

/// A complete ICE connectivity check (binding request), for the agent and for tests that
/// need to play a remote peer.
#[derive(Clone, Copy, Debug)]
pub struct BindingRequest<'a> {
    pub transaction_id: [u8; 12],
    /// "<receiver ufrag>:<sender ufrag>".
    pub username: &'a str,
    /// The receiver's password.
    pub password: &'a str,
    pub priority: u32,
    pub role: Role,
    pub use_candidate: bool,
}

impl BindingRequest<'_> {
    /// Writes the request with MESSAGE-INTEGRITY and FINGERPRINT; returns its length.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, BufferTooSmall> {
        let key = IntegrityKey::new(self.password);
        let mut w = MessageWriter::new(buf, BINDING_REQUEST, &self.transaction_id)?;
        w.username(self.username.as_bytes())?;
        w.priority(self.priority)?;
        match self.role {
            Role::Controlling(t) => w.ice_controlling(t)?,
            Role::Controlled(t) => w.ice_controlled(t)?,
        }
        if self.use_candidate {
            w.use_candidate()?;
        }
        w.message_integrity(&key)?;
        w.finish_with_fingerprint()
    }
}

/// Writes a binding success response carrying XOR-MAPPED-ADDRESS `mapped`, MESSAGE-INTEGRITY
/// (keyed by the responder's `key`) and FINGERPRINT; returns its length.
pub fn write_binding_success(
    buf: &mut [u8],
    transaction_id: &[u8; 12],
    mapped: SocketAddr,
    key: &IntegrityKey,
) -> Result<usize, BufferTooSmall> {
    let mut w = MessageWriter::new(buf, BINDING_SUCCESS, transaction_id)?;
    w.xor_mapped_address(mapped)?;
    w.message_integrity(key)?;
    w.finish_with_fingerprint()
}

/// Writes a binding error response with ERROR-CODE `code`, MESSAGE-INTEGRITY and FINGERPRINT.
pub fn write_binding_error(
    buf: &mut [u8],
    transaction_id: &[u8; 12],
    code: u16,
    reason: &str,
    key: &IntegrityKey,
) -> Result<usize, BufferTooSmall> {
    let mut w = MessageWriter::new(buf, BINDING_ERROR, transaction_id)?;
    w.error_code(code, reason)?;
    w.message_integrity(key)?;
    w.finish_with_fingerprint()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(buf: &mut [u8]) -> usize {
        BindingRequest {
            transaction_id: [0xAB, 0xCD, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
            username: "local:remote",
            password: "0123456789012345678901",
            priority: 0x6E7F_FFFF,
            role: Role::Controlling(42),
            use_candidate: true,
        }
        .encode(buf)
        .unwrap()
    }

    #[test]
    fn round_trip_and_peeks() {
        let mut buf = [0u8; 548];
        let n = request(&mut buf);
        let msg = &buf[..n];
        assert!(is_stun(msg));
        assert!(is_binding_request(msg));
        assert_eq!(peek_username(msg), Some(&b"local:remote"[..]));
        assert_eq!(response_transaction_tag(msg), None);
        let m = Message::parse(msg).unwrap();
        assert_eq!(m.class, Class::Request);
        assert_eq!(m.method, 1);
        assert_eq!(m.priority, Some(0x6E7F_FFFF));
        assert_eq!(m.ice_controlling, Some(42));
        assert!(m.use_candidate);
        m.check_fingerprint().unwrap();
        m.check_integrity(&IntegrityKey::new("0123456789012345678901"))
            .unwrap();
        assert_eq!(
            m.check_integrity(&IntegrityKey::new("0123456789012345678902")),
            Err(Error::BadIntegrity)
        );
    }

    #[test]
    fn response_tag_and_addresses() {
        let key = IntegrityKey::new("pw");
        for addr in ["192.0.2.1:3478", "[2001:db8::1]:40000"] {
            let addr: SocketAddr = addr.parse().unwrap();
            let mut buf = [0u8; 548];
            let id = [0xDE, 0xAD, 0xBE, 0xEF, 1, 2, 3, 4, 5, 6, 7, 8];
            let n = write_binding_success(&mut buf, &id, addr, &key).unwrap();
            assert_eq!(response_transaction_tag(&buf[..n]), Some(0xDEAD_BEEF));
            assert!(!is_binding_request(&buf[..n]));
            let m = Message::parse(&buf[..n]).unwrap();
            assert_eq!(m.class, Class::SuccessResponse);
            assert_eq!(m.xor_mapped_address, Some(addr));
            m.check_integrity(&key).unwrap();
        }
        let mut buf = [0u8; 548];
        let n = write_binding_error(&mut buf, &[7; 12], 487, "Role Conflict", &key).unwrap();
        let m = Message::parse(&buf[..n]).unwrap();
        assert_eq!(m.class, Class::ErrorResponse);
        assert_eq!(m.error_code, Some(487));
        assert_eq!(response_transaction_tag(&buf[..n]), Some(0x0707_0707));
    }

    #[test]
    fn header_checks() {
        let mut buf = [0u8; 548];
        let n = request(&mut buf);
        assert!(!is_stun(&buf[..n - 4]));
        assert!(!is_stun(&buf[..19]));
        let mut bad_cookie = buf;
        bad_cookie[4] ^= 1;
        assert!(!is_stun(&bad_cookie[..n]));
        let mut rtp_like = buf;
        rtp_like[0] = 0x80;
        assert!(!is_stun(&rtp_like[..n]));
        assert_eq!(peek_username(&rtp_like[..n]), None);
    }

    #[test]
    fn fingerprint_and_integrity_tampering() {
        let mut buf = [0u8; 548];
        let n = request(&mut buf);
        let mut tampered = buf;
        tampered[n - 1] ^= 1;
        let m = Message::parse(&tampered[..n]).unwrap();
        assert_eq!(m.check_fingerprint(), Err(Error::BadFingerprint));
        // Flip a byte inside PRIORITY: both checks must notice.
        let mut tampered = buf;
        tampered[HEADER_LEN + 4 + 12 + 4] ^= 1;
        let m = Message::parse(&tampered[..n]).unwrap();
        assert_eq!(m.check_fingerprint(), Err(Error::BadFingerprint));
        assert_eq!(
            m.check_integrity(&IntegrityKey::new("0123456789012345678901")),
            Err(Error::BadIntegrity)
        );
    }

    #[test]
    fn attribute_overrunning_message_is_malformed() {
        let mut buf = [0u8; 548];
        let mut w = MessageWriter::new(&mut buf, BINDING_REQUEST, &[1; 12]).unwrap();
        w.username(b"abcd").unwrap();
        let n = w.finish();
        // Claim a longer USERNAME than the message holds.
        buf[HEADER_LEN + 3] = 40;
        assert_eq!(Message::parse(&buf[..n]).err(), Some(Error::Malformed));
        assert_eq!(peek_username(&buf[..n]), None);
    }

    #[test]
    fn small_buffer_is_reported() {
        let mut buf = [0u8; 40];
        let r = BindingRequest {
            transaction_id: [0; 12],
            username: "a:b",
            password: "p",
            priority: 1,
            role: Role::Controlled(1),
            use_candidate: false,
        }
        .encode(&mut buf);
        assert_eq!(r, Err(BufferTooSmall));
    }
}
