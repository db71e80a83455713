//! SRTP/SRTCP (RFC 3711, RFC 7714) for the bridge's packet path.
//!
//! Session keys are derived and expanded once per [`Context`]; protect/unprotect work in place
//! in the caller's buffer and do not allocate, except when a context first sees an SSRC.

mod kdf;
mod replay;

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_128_GCM};
use aws_lc_rs::cipher::{EncryptingKey, EncryptionContext, UnboundCipherKey, AES_128};
use aws_lc_rs::constant_time;
use hmac::{Hmac, Mac};
use rustc_hash::FxHashMap;
use sha1::Sha1;

use kdf::{Kdf, Label};
use replay::ReplayWindow;

/// An SRTP protection profile negotiated through DTLS-SRTP.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Profile {
    AeadAes128Gcm,
    Aes128CmHmacSha1_80,
}

impl Profile {
    /// DTLS-SRTP protection profile id (RFC 5764 / 7714): 0x0001, 0x0007.
    pub fn from_id(id: u16) -> Option<Profile> {
        match id {
            0x0001 => Some(Profile::Aes128CmHmacSha1_80),
            0x0007 => Some(Profile::AeadAes128Gcm),
            _ => None,
        }
    }

    pub fn id(self) -> u16 {
        match self {
            Profile::Aes128CmHmacSha1_80 => 0x0001,
            Profile::AeadAes128Gcm => 0x0007,
        }
    }

    pub fn key_len(self) -> usize {
        16
    }

    pub fn salt_len(self) -> usize {
        match self {
            Profile::AeadAes128Gcm => 12,
            Profile::Aes128CmHmacSha1_80 => 14,
        }
    }

    /// Bytes protect_rtp adds (tag), and protect_rtcp adds (tag + 4-byte SRTCP index).
    pub fn rtp_overhead(self) -> usize {
        self.tag_len()
    }

    pub fn rtcp_overhead(self) -> usize {
        self.tag_len() + SRTCP_INDEX_LEN
    }

    /// Length of DTLS exporter output needed: 2 * (key_len + salt_len).
    pub fn keying_material_len(self) -> usize {
        2 * (self.key_len() + self.salt_len())
    }

    fn tag_len(self) -> usize {
        match self {
            Profile::AeadAes128Gcm => GCM_TAG_LEN,
            Profile::Aes128CmHmacSha1_80 => HMAC_TAG_LEN,
        }
    }
}

#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// Not even an RTP/RTCP header (+ tag).
    #[error("packet too short")]
    TooShort,
    /// protect: no room for the tag in the caller's buffer (or `len` exceeds the buffer).
    #[error("buffer too small")]
    BufferTooSmall,
    #[error("authentication failed")]
    AuthFailed,
    /// Index already seen or older than the replay window.
    #[error("replayed packet")]
    Replayed,
    /// The inbound SSRC table is full; see [`MAX_INBOUND_SSRCS`].
    #[error("too many SSRCs")]
    TooManySsrcs,
    #[error("bad key or salt length")]
    BadKeyLength,
}

/// Bound on the inbound SSRCs one context tracks (separately for SRTP and SRTCP), so that a
/// peer cannot grow our memory without limit.
pub const MAX_INBOUND_SSRCS: usize = 64;

const RTP_HEADER_LEN: usize = 12;
const RTCP_HEADER_LEN: usize = 8;
const SRTCP_INDEX_LEN: usize = 4;
const SRTCP_E_BIT: u32 = 0x8000_0000;
const SRTCP_INDEX_MASK: u32 = 0x7fff_ffff;
const GCM_TAG_LEN: usize = 16;
const HMAC_TAG_LEN: usize = 10;
const HMAC_KEY_LEN: usize = 20;
const SESSION_KEY_LEN: usize = 16;
const MAX_SALT_LEN: usize = 14;
/// Heap held by one aws-lc `EVP_AEAD_CTX` (the GCM key schedule and GHASH table).
const GCM_KEY_HEAP_BYTES: usize = 592;

/// The expanded session keys of one of SRTP or SRTCP. The AES-CM/HMAC keys are boxed: they
/// hold an AES key schedule and two SHA-1 states inline, which would otherwise
/// make every `Context` move expensive.
enum Transform {
    Gcm(LessSafeKey),
    CmHmac(Box<CmHmacKeys>),
}

/// HMAC-SHA1 with the key's inner and outer hash states computed once; each packet clones them.
/// RustCrypto's (SHA-NI when the CPU has it, detected at run time) rather than aws-lc's: it
/// authenticates a 1.2 KB packet about a third faster here, and the MAC is most of what this
/// profile costs per forwarded copy (`cargo bench -p tutti-srtp`).
type HmacSha1 = Hmac<Sha1>;

struct CmHmacKeys {
    cipher: EncryptingKey,
    auth: HmacSha1,
}

struct SessionKeys {
    transform: Transform,
    /// Session salt; GCM uses the first 12 bytes.
    salt: [u8; MAX_SALT_LEN],
}

impl SessionKeys {
    fn derive(
        kdf: &Kdf,
        profile: Profile,
        enc: Label,
        auth: Label,
        salt_label: Label,
    ) -> Result<SessionKeys, Error> {
        let mut key = [0u8; SESSION_KEY_LEN];
        kdf.derive(enc, &mut key)?;
        let mut salt = [0u8; MAX_SALT_LEN];
        let salt = &mut salt[..profile.salt_len()];
        kdf.derive(salt_label, salt)?;
        let mut auth_key = [0u8; HMAC_KEY_LEN];
        if profile == Profile::Aes128CmHmacSha1_80 {
            kdf.derive(auth, &mut auth_key)?;
        }
        SessionKeys::new(profile, &key, salt, &auth_key)
    }

    /// Expands already-derived session keys; `auth_key` is unused by GCM.
    fn new(
        profile: Profile,
        key: &[u8],
        salt: &[u8],
        auth_key: &[u8],
    ) -> Result<SessionKeys, Error> {
        if key.len() != SESSION_KEY_LEN || salt.len() != profile.salt_len() {
            return Err(Error::BadKeyLength);
        }
        let transform = match profile {
            Profile::AeadAes128Gcm => {
                let unbound =
                    UnboundKey::new(&AES_128_GCM, key).map_err(|_| Error::BadKeyLength)?;
                Transform::Gcm(LessSafeKey::new(unbound))
            }
            Profile::Aes128CmHmacSha1_80 => {
                let unbound =
                    UnboundCipherKey::new(&AES_128, key).map_err(|_| Error::BadKeyLength)?;
                let cipher = EncryptingKey::ctr(unbound).map_err(|_| Error::BadKeyLength)?;
                Transform::CmHmac(Box::new(CmHmacKeys {
                    cipher,
                    auth: HmacSha1::new_from_slice(auth_key).map_err(|_| Error::BadKeyLength)?,
                }))
            }
        };
        let mut session_salt = [0u8; MAX_SALT_LEN];
        session_salt[..salt.len()].copy_from_slice(salt);
        Ok(SessionKeys {
            transform,
            salt: session_salt,
        })
    }

    /// AES-CM counter block (RFC 3711 §4.1.1): (salt * 2^16) ^ (SSRC * 2^64) ^ (index * 2^16).
    fn cm_iv(&self, ssrc: u32, index: u64) -> EncryptionContext {
        let mut iv = [0u8; 16];
        iv[..MAX_SALT_LEN].copy_from_slice(&self.salt);
        xor_into(&mut iv[4..8], &ssrc.to_be_bytes());
        xor_into(&mut iv[8..14], &index.to_be_bytes()[2..]);
        EncryptionContext::Iv128(iv.into())
    }

    /// RFC 7714 §8.1: salt ^ (00 00 || SSRC || ROC || SEQ).
    fn gcm_rtp_nonce(&self, ssrc: u32, index: u64) -> Nonce {
        let mut iv = [0u8; 12];
        iv.copy_from_slice(&self.salt[..12]);
        xor_into(&mut iv[2..6], &ssrc.to_be_bytes());
        xor_into(&mut iv[6..12], &index.to_be_bytes()[2..]);
        Nonce::assume_unique_for_key(iv)
    }

    /// RFC 7714 §9.1: salt ^ (00 00 || SSRC || 00 00 || 0 + SRTCP index).
    fn gcm_rtcp_nonce(&self, ssrc: u32, index: u32) -> Nonce {
        let mut iv = [0u8; 12];
        iv.copy_from_slice(&self.salt[..12]);
        xor_into(&mut iv[2..6], &ssrc.to_be_bytes());
        xor_into(&mut iv[8..12], &index.to_be_bytes());
        Nonce::assume_unique_for_key(iv)
    }

    /// Encrypts `buf[hlen..len]` and writes the tag at `buf[len..]`; the caller has checked
    /// that `hlen <= len` and that the tag fits.
    fn protect_rtp(
        &self,
        buf: &mut [u8],
        hlen: usize,
        len: usize,
        ssrc: u32,
        index: u64,
    ) -> Result<(), Error> {
        match &self.transform {
            Transform::Gcm(key) => {
                let nonce = self.gcm_rtp_nonce(ssrc, index);
                let (header, rest) = buf.split_at_mut(hlen);
                let (payload, trailer) = rest.split_at_mut(len - hlen);
                // aws-lc only rejects inputs beyond GCM's 2^36-byte limit.
                let tag = key
                    .seal_in_place_separate_tag(nonce, Aad::from(&*header), payload)
                    .map_err(|_| Error::BufferTooSmall)?;
                trailer[..GCM_TAG_LEN].copy_from_slice(tag.as_ref());
            }
            Transform::CmHmac(keys) => {
                let CmHmacKeys { cipher, auth } = &**keys;
                cipher
                    .less_safe_encrypt(&mut buf[hlen..len], self.cm_iv(ssrc, index))
                    .map_err(|_| Error::BufferTooSmall)?;
                let tag = hmac_sha1(auth, &buf[..len], &roc_of(index).to_be_bytes());
                buf[len..len + HMAC_TAG_LEN].copy_from_slice(&tag.as_ref()[..HMAC_TAG_LEN]);
            }
        }
        Ok(())
    }

    /// Authenticates `buf[..len]` (tag included) and decrypts the payload in place; the caller
    /// has checked that `hlen + tag <= len`.
    fn unprotect_rtp(
        &self,
        buf: &mut [u8],
        hlen: usize,
        len: usize,
        ssrc: u32,
        index: u64,
    ) -> Result<(), Error> {
        match &self.transform {
            Transform::Gcm(key) => {
                let nonce = self.gcm_rtp_nonce(ssrc, index);
                let (header, rest) = buf.split_at_mut(hlen);
                key.open_in_place(nonce, Aad::from(&*header), &mut rest[..len - hlen])
                    .map_err(|_| Error::AuthFailed)?;
            }
            Transform::CmHmac(keys) => {
                let CmHmacKeys { cipher, auth } = &**keys;
                let body_len = len - HMAC_TAG_LEN;
                let expected = hmac_sha1(auth, &buf[..body_len], &roc_of(index).to_be_bytes());
                constant_time::verify_slices_are_equal(
                    &expected.as_ref()[..HMAC_TAG_LEN],
                    &buf[body_len..len],
                )
                .map_err(|_| Error::AuthFailed)?;
                cipher
                    .less_safe_encrypt(&mut buf[hlen..body_len], self.cm_iv(ssrc, index))
                    .map_err(|_| Error::AuthFailed)?;
            }
        }
        Ok(())
    }

    /// Encrypts `buf[8..len]` and appends tag and E|index in the profile's order; the caller
    /// has checked `8 <= len` and the room for the trailer.
    fn protect_rtcp(&self, buf: &mut [u8], len: usize, ssrc: u32, index: u32) -> Result<(), Error> {
        let e_index = (SRTCP_E_BIT | index).to_be_bytes();
        match &self.transform {
            Transform::Gcm(key) => {
                let mut aad = [0u8; RTCP_HEADER_LEN + SRTCP_INDEX_LEN];
                aad[..RTCP_HEADER_LEN].copy_from_slice(&buf[..RTCP_HEADER_LEN]);
                aad[RTCP_HEADER_LEN..].copy_from_slice(&e_index);
                let tag = key
                    .seal_in_place_separate_tag(
                        self.gcm_rtcp_nonce(ssrc, index),
                        Aad::from(aad),
                        &mut buf[RTCP_HEADER_LEN..len],
                    )
                    .map_err(|_| Error::BufferTooSmall)?;
                buf[len..len + GCM_TAG_LEN].copy_from_slice(tag.as_ref());
                buf[len + GCM_TAG_LEN..len + GCM_TAG_LEN + SRTCP_INDEX_LEN]
                    .copy_from_slice(&e_index);
            }
            Transform::CmHmac(keys) => {
                let CmHmacKeys { cipher, auth } = &**keys;
                cipher
                    .less_safe_encrypt(
                        &mut buf[RTCP_HEADER_LEN..len],
                        self.cm_iv(ssrc, u64::from(index)),
                    )
                    .map_err(|_| Error::BufferTooSmall)?;
                let signed_len = len + SRTCP_INDEX_LEN;
                buf[len..signed_len].copy_from_slice(&e_index);
                let tag = hmac_sha1(auth, &buf[..signed_len], &[]);
                buf[signed_len..signed_len + HMAC_TAG_LEN]
                    .copy_from_slice(&tag.as_ref()[..HMAC_TAG_LEN]);
            }
        }
        Ok(())
    }

    /// The E|index word of an SRTCP packet of at least 8 + overhead bytes.
    fn srtcp_e_index(&self, packet: &[u8]) -> u32 {
        let at = match self.transform {
            Transform::Gcm(_) => packet.len() - SRTCP_INDEX_LEN,
            Transform::CmHmac(_) => packet.len() - SRTCP_INDEX_LEN - HMAC_TAG_LEN,
        };
        be_u32(&packet[at..at + SRTCP_INDEX_LEN])
    }

    /// Authenticates `buf[..len]` and, if the E bit is set, decrypts the payload in place.
    fn unprotect_rtcp(
        &self,
        buf: &mut [u8],
        len: usize,
        ssrc: u32,
        e_index: u32,
    ) -> Result<(), Error> {
        let index = e_index & SRTCP_INDEX_MASK;
        let encrypted = e_index & SRTCP_E_BIT != 0;
        match &self.transform {
            Transform::Gcm(key) => {
                let nonce = self.gcm_rtcp_nonce(ssrc, index);
                let tag_at = len - SRTCP_INDEX_LEN - GCM_TAG_LEN;
                if encrypted {
                    let mut aad = [0u8; RTCP_HEADER_LEN + SRTCP_INDEX_LEN];
                    aad[..RTCP_HEADER_LEN].copy_from_slice(&buf[..RTCP_HEADER_LEN]);
                    aad[RTCP_HEADER_LEN..].copy_from_slice(&e_index.to_be_bytes());
                    key.open_in_place(
                        nonce,
                        Aad::from(aad),
                        &mut buf[RTCP_HEADER_LEN..len - SRTCP_INDEX_LEN],
                    )
                    .map_err(|_| Error::AuthFailed)?;
                } else {
                    // RFC 7714 §9.2: the AAD is the whole packet followed by E|index and the
                    // plaintext is empty. Moving E|index in front of the tag makes the AAD
                    // contiguous without copying the packet.
                    let mut tag = [0u8; GCM_TAG_LEN];
                    tag.copy_from_slice(&buf[tag_at..tag_at + GCM_TAG_LEN]);
                    buf[tag_at..tag_at + SRTCP_INDEX_LEN].copy_from_slice(&e_index.to_be_bytes());
                    key.open_in_place_separate_tag(
                        nonce,
                        Aad::from(&buf[..tag_at + SRTCP_INDEX_LEN]),
                        &tag,
                        &mut [],
                    )
                    .map_err(|_| Error::AuthFailed)?;
                }
            }
            Transform::CmHmac(keys) => {
                let CmHmacKeys { cipher, auth } = &**keys;
                let signed_len = len - HMAC_TAG_LEN;
                let expected = hmac_sha1(auth, &buf[..signed_len], &[]);
                constant_time::verify_slices_are_equal(
                    &expected.as_ref()[..HMAC_TAG_LEN],
                    &buf[signed_len..len],
                )
                .map_err(|_| Error::AuthFailed)?;
                if encrypted {
                    cipher
                        .less_safe_encrypt(
                            &mut buf[RTCP_HEADER_LEN..signed_len - SRTCP_INDEX_LEN],
                            self.cm_iv(ssrc, u64::from(index)),
                        )
                        .map_err(|_| Error::AuthFailed)?;
                }
            }
        }
        Ok(())
    }

    fn heap_bytes(&self) -> usize {
        match self.transform {
            Transform::Gcm(_) => GCM_KEY_HEAP_BYTES,
            Transform::CmHmac(_) => std::mem::size_of::<CmHmacKeys>(),
        }
    }
}

/// Where one SSRC's outbound streams stand (RTP rollover counter and highest sequence, next
/// SRTCP index): what a sender needs to resume that SSRC later towards the same receiver,
/// whose SRTP state for it lives on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OutboundState {
    rtp_highest_index: Option<u64>,
    rtcp_next_index: u32,
}

/// One direction of one DTLS-SRTP association (all SSRCs of that direction).
pub struct Context {
    profile: Profile,
    rtp: SessionKeys,
    rtcp: SessionKeys,
    /// Highest SRTP index sent per SSRC, for the outbound ROC.
    outbound_rtp: FxHashMap<u32, u64>,
    /// Next SRTCP index per sending SSRC.
    outbound_rtcp: FxHashMap<u32, u32>,
    inbound_rtp: FxHashMap<u32, ReplayWindow>,
    inbound_rtcp: FxHashMap<u32, ReplayWindow>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("profile", &self.profile)
            .field("outbound_rtp_ssrcs", &self.outbound_rtp.len())
            .field("outbound_rtcp_ssrcs", &self.outbound_rtcp.len())
            .field("inbound_rtp_ssrcs", &self.inbound_rtp.len())
            .field("inbound_rtcp_ssrcs", &self.inbound_rtcp.len())
            .finish_non_exhaustive()
    }
}

impl Context {
    pub fn new(profile: Profile, master_key: &[u8], master_salt: &[u8]) -> Result<Context, Error> {
        if master_key.len() != profile.key_len() || master_salt.len() != profile.salt_len() {
            return Err(Error::BadKeyLength);
        }
        let kdf = Kdf::new(master_key, master_salt)?;
        let rtp = SessionKeys::derive(
            &kdf,
            profile,
            Label::RtpEncryption,
            Label::RtpAuthentication,
            Label::RtpSalt,
        )?;
        let rtcp = SessionKeys::derive(
            &kdf,
            profile,
            Label::RtcpEncryption,
            Label::RtcpAuthentication,
            Label::RtcpSalt,
        )?;
        Ok(Context {
            profile,
            rtp,
            rtcp,
            outbound_rtp: FxHashMap::default(),
            outbound_rtcp: FxHashMap::default(),
            inbound_rtp: FxHashMap::default(),
            inbound_rtcp: FxHashMap::default(),
        })
    }

    /// (outbound, inbound) contexts from the DTLS exporter "EXTRACTOR-dtls_srtp" output laid
    /// out as client_key | server_key | client_salt | server_salt. `local_is_client` = our DTLS role
    /// was client: then outbound uses the client key/salt.
    pub fn pair_from_keying_material(
        profile: Profile,
        material: &[u8],
        local_is_client: bool,
    ) -> Result<(Context, Context), Error> {
        if material.len() != profile.keying_material_len() {
            return Err(Error::BadKeyLength);
        }
        let (keys, salts) = material.split_at(2 * profile.key_len());
        let (client_key, server_key) = keys.split_at(profile.key_len());
        let (client_salt, server_salt) = salts.split_at(profile.salt_len());
        let client = Context::new(profile, client_key, client_salt)?;
        let server = Context::new(profile, server_key, server_salt)?;
        Ok(if local_is_client {
            (client, server)
        } else {
            (server, client)
        })
    }

    pub fn profile(&self) -> Profile {
        self.profile
    }

    /// Encrypts buf[..len] (an RTP packet) in place, appends the tag; returns the new length.
    /// buf.len() must be >= len + rtp_overhead.
    pub fn protect_rtp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, Error> {
        let packet = buf.get(..len).ok_or(Error::BufferTooSmall)?;
        let hlen = rtp_header_len(packet)?;
        let (seq, ssrc) = rtp_seq_ssrc(packet);
        let out_len = len + self.profile.rtp_overhead();
        if buf.len() < out_len {
            return Err(Error::BufferTooSmall);
        }
        let highest = self.outbound_rtp.entry(ssrc).or_insert(u64::from(seq));
        if *highest < 1 << 16 && seq > *highest as u16 && seq - *highest as u16 > 0x8000 {
            // Older than the first packet sent, across a sequence wrap: its ROC would be -1,
            // which no receiver can represent; sending it as ROC 0 would also move the highest
            // index past every packet still to come.
            return Err(Error::Replayed);
        }
        let index = estimate_index(*highest, seq);
        self.rtp.protect_rtp(buf, hlen, len, ssrc, index)?;
        if index > *highest {
            *highest = index;
        }
        Ok(out_len)
    }

    /// Verifies and decrypts buf[..len] in place; returns the plaintext length. Replay-checked
    /// (window of at least 64 packets, per SSRC; state only committed after successful auth).
    /// On error the contents of buf[..len] are unspecified.
    pub fn unprotect_rtp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, Error> {
        let packet = buf.get(..len).ok_or(Error::BufferTooSmall)?;
        let body_len = len
            .checked_sub(self.profile.rtp_overhead())
            .ok_or(Error::TooShort)?;
        let hlen = rtp_header_len(&packet[..body_len])?;
        let (seq, ssrc) = rtp_seq_ssrc(packet);
        let index = match self.inbound_rtp.get(&ssrc) {
            Some(window) => {
                let index = estimate_index(window.top(), seq);
                window.check(index)?;
                index
            }
            None if self.inbound_rtp.len() >= MAX_INBOUND_SSRCS => return Err(Error::TooManySsrcs),
            None => u64::from(seq),
        };
        self.rtp.unprotect_rtp(buf, hlen, len, ssrc, index)?;
        self.inbound_rtp
            .entry(ssrc)
            .and_modify(|window| window.commit(index))
            .or_insert_with(|| ReplayWindow::starting_at(index));
        Ok(body_len)
    }

    /// Encrypts buf[..len] (a compound RTCP packet) in place after its first 8 bytes, appends
    /// the SRTCP index (E bit set) and tag; returns the new length.
    /// buf.len() must be >= len + rtcp_overhead.
    pub fn protect_rtcp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, Error> {
        let packet = buf.get(..len).ok_or(Error::BufferTooSmall)?;
        if len < RTCP_HEADER_LEN {
            return Err(Error::TooShort);
        }
        let ssrc = be_u32(&packet[4..8]);
        let out_len = len + self.profile.rtcp_overhead();
        if buf.len() < out_len {
            return Err(Error::BufferTooSmall);
        }
        let next = self.outbound_rtcp.entry(ssrc).or_insert(0);
        let index = *next;
        self.rtcp.protect_rtcp(buf, len, ssrc, index)?;
        *next = (index + 1) & SRTCP_INDEX_MASK;
        Ok(out_len)
    }

    /// Verifies and (if its E bit is set) decrypts buf[..len] in place; returns the plaintext
    /// length. Replay-checked per sending SSRC like unprotect_rtp.
    /// On error the contents of buf[..len] are unspecified.
    pub fn unprotect_rtcp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, Error> {
        let packet = buf.get(..len).ok_or(Error::BufferTooSmall)?;
        let overhead = self.profile.rtcp_overhead();
        if len < RTCP_HEADER_LEN + overhead {
            return Err(Error::TooShort);
        }
        let ssrc = be_u32(&packet[4..8]);
        let e_index = self.rtcp.srtcp_e_index(packet);
        let index = u64::from(e_index & SRTCP_INDEX_MASK);
        match self.inbound_rtcp.get(&ssrc) {
            Some(window) => window.check(index)?,
            None if self.inbound_rtcp.len() >= MAX_INBOUND_SSRCS => {
                return Err(Error::TooManySsrcs)
            }
            None => {}
        }
        self.rtcp.unprotect_rtcp(buf, len, ssrc, e_index)?;
        self.inbound_rtcp
            .entry(ssrc)
            .and_modify(|window| window.commit(index))
            .or_insert_with(|| ReplayWindow::starting_at(index));
        Ok(len - overhead)
    }

    /// Approximate heap bytes held (for the bridge's per-endpoint memory gauge).
    /// Forgets every per-SSRC state (ROC, SRTCP index, replay window) of `ssrc`, e.g. when the
    /// stream stops, and gives the memory back; returns where its outbound streams stood, for
    /// `resume_outbound` if it comes back.
    pub fn remove_ssrc(&mut self, ssrc: u32) -> OutboundState {
        let removed = OutboundState {
            rtp_highest_index: self.outbound_rtp.remove(&ssrc),
            rtcp_next_index: self.outbound_rtcp.remove(&ssrc).unwrap_or(0),
        };
        self.inbound_rtp.remove(&ssrc);
        self.inbound_rtcp.remove(&ssrc);
        self.outbound_rtp.shrink_to_fit();
        self.inbound_rtp.shrink_to_fit();
        self.outbound_rtcp.shrink_to_fit();
        self.inbound_rtcp.shrink_to_fit();
        removed
    }

    /// Continues `ssrc`'s outbound streams from `state` (what `remove_ssrc` returned): the
    /// receiver kept its SRTP state for the SSRC, so the rollover counter and the SRTCP index
    /// must carry on from there, not restart at 0. Never moves either backwards.
    pub fn resume_outbound(&mut self, ssrc: u32, state: OutboundState) {
        if let Some(index) = state.rtp_highest_index {
            let highest = self.outbound_rtp.entry(ssrc).or_insert(index);
            *highest = (*highest).max(index);
        }
        if state.rtcp_next_index != 0 {
            let next = self.outbound_rtcp.entry(ssrc).or_insert(0);
            *next = (*next).max(state.rtcp_next_index);
        }
    }

    pub fn heap_bytes(&self) -> usize {
        self.rtp.heap_bytes()
            + self.rtcp.heap_bytes()
            + map_heap_bytes(&self.outbound_rtp)
            + map_heap_bytes(&self.outbound_rtcp)
            + map_heap_bytes(&self.inbound_rtp)
            + map_heap_bytes(&self.inbound_rtcp)
    }
}

/// hashbrown stores one control byte per bucket next to each (key, value) slot.
fn map_heap_bytes<V>(map: &FxHashMap<u32, V>) -> usize {
    if map.capacity() == 0 {
        0
    } else {
        map.capacity() * (std::mem::size_of::<(u32, V)>() + 1)
    }
}

/// Length of the RTP header including CSRCs and the header extension; fails if the packet is
/// shorter than that.
fn rtp_header_len(packet: &[u8]) -> Result<usize, Error> {
    let first = *packet.first().ok_or(Error::TooShort)?;
    if packet.len() < RTP_HEADER_LEN {
        return Err(Error::TooShort);
    }
    let mut len = RTP_HEADER_LEN + 4 * usize::from(first & 0x0f);
    if first & 0x10 != 0 {
        let words = packet.get(len + 2..len + 4).ok_or(Error::TooShort)?;
        len += 4 + 4 * usize::from(u16::from_be_bytes([words[0], words[1]]));
    }
    if len > packet.len() {
        return Err(Error::TooShort);
    }
    Ok(len)
}

/// Sequence number and SSRC of a packet already known to hold a 12-byte RTP header.
fn rtp_seq_ssrc(packet: &[u8]) -> (u16, u32) {
    (
        u16::from_be_bytes([packet[2], packet[3]]),
        be_u32(&packet[8..12]),
    )
}

/// RFC 3711 §3.3.1 / Appendix A: the 48-bit index (ROC || SEQ) of `seq` nearest to the
/// highest index seen. A guess below ROC 0 cannot be a real packet, so it is read as a jump
/// forward within ROC 0 and left for authentication to accept or reject.
fn estimate_index(highest: u64, seq: u16) -> u64 {
    let roc = highest >> 16;
    let s_l = highest as u16;
    let v = if s_l < 0x8000 {
        if seq > s_l && seq - s_l > 0x8000 {
            roc.saturating_sub(1)
        } else {
            roc
        }
    } else if s_l - 0x8000 > seq {
        roc + 1
    } else {
        roc
    };
    (v << 16) | u64::from(seq)
}

/// The 32-bit ROC of a 48-bit index (it wraps after 2^48 packets, when keys must be renewed).
fn roc_of(index: u64) -> u32 {
    (index >> 16) as u32
}

fn hmac_sha1(key: &HmacSha1, data: &[u8], trailer: &[u8]) -> [u8; 20] {
    let mut mac = key.clone();
    mac.update(data);
    mac.update(trailer);
    mac.finalize().into_bytes().into()
}

fn be_u32(bytes: &[u8]) -> u32 {
    u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

fn xor_into(dst: &mut [u8], src: &[u8]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d ^= s;
    }
}

#[cfg(test)]
mod tests;
