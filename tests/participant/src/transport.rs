//! Carrying the webrtc-rs DTLS client over the participant's single UDP socket: received DTLS
//! datagrams come in through a channel fed by the demultiplexing receive loop, and writes go out
//! of the shared socket to the selected address.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use anyhow::{bail, Context as _};
use async_trait::async_trait;
use dtls::config::{Config, ExtendedMasterSecretType};
use dtls::crypto::Certificate;
use dtls::extension::extension_use_srtp::SrtpProtectionProfile;
use sha2::{Digest, Sha256};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, Mutex};
use webrtc_srtp::protection_profile::ProtectionProfile;
use webrtc_util::Conn;

use crate::SrtpChoice;

/// Counts the DTLS datagrams we send until the peer first answers, which shows whether the
/// ClientHello went out fragmented.
#[derive(Debug, Default)]
pub struct DtlsCounters {
    sent_before_reply: AtomicUsize,
    reply_seen: AtomicBool,
    /// Set when the participant vanishes: DTLS must not send anything more (not even the
    /// close_notify its stack sends while shutting down).
    silenced: AtomicBool,
}

impl DtlsCounters {
    /// Called for every DTLS datagram received from the peer.
    pub fn on_reply(&self) {
        self.reply_seen.store(true, Ordering::Relaxed);
    }

    pub fn sent_before_reply(&self) -> usize {
        self.sent_before_reply.load(Ordering::Relaxed)
    }

    pub fn reply_seen(&self) -> bool {
        self.reply_seen.load(Ordering::Relaxed)
    }

    pub fn silence(&self) {
        self.silenced.store(true, Ordering::Relaxed);
    }

    fn on_send(&self) {
        if !self.reply_seen() {
            self.sent_before_reply.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// A `Conn` whose reads come from a channel and whose writes go to one peer through a shared
/// socket. It holds the socket weakly so that DTLS tasks outliving their owner cannot keep the
/// port open.
pub struct ChannelConn {
    inbound: Mutex<mpsc::Receiver<Vec<u8>>>,
    socket: Weak<UdpSocket>,
    local: SocketAddr,
    remote: SocketAddr,
    counters: Arc<DtlsCounters>,
}

impl ChannelConn {
    pub fn new(
        inbound: mpsc::Receiver<Vec<u8>>,
        socket: &Arc<UdpSocket>,
        local: SocketAddr,
        remote: SocketAddr,
        counters: Arc<DtlsCounters>,
    ) -> ChannelConn {
        ChannelConn {
            inbound: Mutex::new(inbound),
            socket: Arc::downgrade(socket),
            local,
            remote,
            counters,
        }
    }
}

#[async_trait]
impl Conn for ChannelConn {
    async fn connect(&self, _addr: SocketAddr) -> webrtc_util::Result<()> {
        Err(webrtc_util::Error::Other("already connected".to_owned()))
    }

    async fn recv(&self, buf: &mut [u8]) -> webrtc_util::Result<usize> {
        let next = self.inbound.lock().await.recv().await;
        match next {
            Some(datagram) => {
                let n = datagram.len().min(buf.len());
                buf[..n].copy_from_slice(&datagram[..n]);
                Ok(n)
            }
            // The dtls reader loop retries forever on read errors and only stops when its
            // DTLSConn is closed or dropped, so a finished feed must park rather than fail.
            None => std::future::pending().await,
        }
    }

    async fn recv_from(&self, buf: &mut [u8]) -> webrtc_util::Result<(usize, SocketAddr)> {
        let n = self.recv(buf).await?;
        Ok((n, self.remote))
    }

    async fn send(&self, buf: &[u8]) -> webrtc_util::Result<usize> {
        self.send_to(buf, self.remote).await
    }

    async fn send_to(&self, buf: &[u8], target: SocketAddr) -> webrtc_util::Result<usize> {
        let socket = self
            .socket
            .upgrade()
            .ok_or_else(|| webrtc_util::Error::Other("participant closed".to_owned()))?;
        if self.counters.silenced.load(Ordering::Relaxed) {
            return Err(webrtc_util::Error::Other("participant vanished".to_owned()));
        }
        self.counters.on_send();
        Ok(socket.send_to(buf, target).await?)
    }

    fn local_addr(&self) -> webrtc_util::Result<SocketAddr> {
        Ok(self.local)
    }

    fn remote_addr(&self) -> Option<SocketAddr> {
        Some(self.remote)
    }

    async fn close(&self) -> webrtc_util::Result<()> {
        Ok(())
    }

    fn as_any(&self) -> &(dyn std::any::Any + Send + Sync) {
        self
    }
}

/// The SDP-style sha-256 fingerprint of a DER certificate: "AB:CD:..." upper-case hex.
pub fn fingerprint(der: &[u8]) -> String {
    let digest = Sha256::digest(der);
    digest
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Parses "AB:CD:..." (optionally prefixed "sha-256 ", any case) into the 32 digest bytes.
pub fn parse_fingerprint(text: &str) -> anyhow::Result<Vec<u8>> {
    let text = text.trim();
    let text = text
        .strip_prefix("sha-256 ")
        .or_else(|| text.strip_prefix("SHA-256 "))
        .unwrap_or(text);
    let bytes = text
        .split(':')
        .map(|h| u8::from_str_radix(h, 16).with_context(|| format!("bad hex byte {h:?}")))
        .collect::<anyhow::Result<Vec<u8>>>()?;
    if bytes.len() != 32 {
        bail!("a sha-256 fingerprint has 32 bytes, got {}", bytes.len());
    }
    Ok(bytes)
}

/// The protection profiles we offer, in order of preference.
pub fn srtp_profiles(choice: SrtpChoice) -> Vec<SrtpProtectionProfile> {
    match choice {
        SrtpChoice::GcmFirst => vec![
            SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm,
            SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80,
        ],
        SrtpChoice::GcmOnly => vec![SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm],
        SrtpChoice::AesCmOnly => vec![SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80],
    }
}

/// Maps the negotiated DTLS-SRTP profile to the SRTP crate's profile and its RFC 5764 name.
pub fn srtp_profile(p: SrtpProtectionProfile) -> anyhow::Result<(ProtectionProfile, &'static str)> {
    Ok(match p {
        SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm => {
            (ProtectionProfile::AeadAes128Gcm, "SRTP_AEAD_AES_128_GCM")
        }
        SrtpProtectionProfile::Srtp_Aead_Aes_256_Gcm => {
            (ProtectionProfile::AeadAes256Gcm, "SRTP_AEAD_AES_256_GCM")
        }
        SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80 => (
            ProtectionProfile::Aes128CmHmacSha1_80,
            "SRTP_AES128_CM_HMAC_SHA1_80",
        ),
        SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_32 => (
            ProtectionProfile::Aes128CmHmacSha1_32,
            "SRTP_AES128_CM_HMAC_SHA1_32",
        ),
        SrtpProtectionProfile::Unsupported => bail!("no SRTP protection profile negotiated"),
    })
}

/// DTLS record header (13) plus handshake header (12): what the `dtls` crate adds to each
/// handshake fragment, whose body it cuts at its `mtu`.
pub const DTLS_FRAGMENT_OVERHEAD: usize = 25;
/// Smallest `max_datagram` we accept; below it handshakes would need hundreds of fragments.
pub const MIN_DTLS_DATAGRAM: usize = 64;

/// DTLS configuration for either side: our certificate, the offered SRTP profiles, extended
/// master secret required, and the peer's certificate pinned by its sha-256 fingerprint instead
/// of a CA chain (as WebRTC does). No handshake datagram exceeds `max_datagram` bytes: anything
/// larger (e.g. the ~153-byte first ClientHello when `max_datagram` is 120) is fragmented.
pub fn dtls_config(
    certificate: Certificate,
    expected_fingerprint: &str,
    srtp: SrtpChoice,
    max_datagram: usize,
) -> anyhow::Result<Config> {
    if max_datagram < MIN_DTLS_DATAGRAM {
        bail!("DTLS datagram size {max_datagram} is below {MIN_DTLS_DATAGRAM}");
    }
    let expected = parse_fingerprint(expected_fingerprint)?;
    Ok(Config {
        certificates: vec![certificate],
        srtp_protection_profiles: srtp_profiles(srtp),
        extended_master_secret: ExtendedMasterSecretType::Require,
        insecure_skip_verify: true,
        verify_peer_certificate: Some(Arc::new(move |certs: &[Vec<u8>], _| {
            let leaf = certs.first().ok_or(dtls::Error::ErrNoCertificates)?;
            if Sha256::digest(leaf).as_slice() == expected.as_slice() {
                Ok(())
            } else {
                Err(dtls::Error::Other(
                    "peer certificate does not match the signalled fingerprint".to_owned(),
                ))
            }
        })),
        mtu: max_datagram - DTLS_FRAGMENT_OVERHEAD,
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_colon_separated_upper_hex_sha256() {
        let fp = fingerprint(b"abc");
        assert_eq!(
            fp,
            "BA:78:16:BF:8F:01:CF:EA:41:41:40:DE:5D:AE:22:23:B0:03:61:A3:96:17:7A:9C:B4:10:FF:61:F2:00:15:AD"
        );
        assert_eq!(
            parse_fingerprint(&fp).unwrap(),
            Sha256::digest(b"abc").to_vec()
        );
        let lower = format!("sha-256 {}", fp.to_lowercase());
        assert_eq!(
            parse_fingerprint(&lower).unwrap(),
            Sha256::digest(b"abc").to_vec()
        );
    }

    #[test]
    fn parse_fingerprint_rejects_malformed_text() {
        assert!(parse_fingerprint("").is_err());
        assert!(parse_fingerprint("AB:CD").is_err());
        assert!(parse_fingerprint(&format!("{}ZZ", "AB:".repeat(31))).is_err());
        assert!(parse_fingerprint(&format!("{}ABC", "AB:".repeat(31))).is_err());
        assert!(parse_fingerprint(&format!("{}AB", "AB:".repeat(31))).is_ok());
    }

    #[test]
    fn offers_profiles_in_the_configured_order() {
        assert_eq!(
            srtp_profiles(SrtpChoice::GcmFirst),
            [
                SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm,
                SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80
            ]
        );
        assert_eq!(
            srtp_profiles(SrtpChoice::GcmOnly),
            [SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm]
        );
        assert_eq!(
            srtp_profiles(SrtpChoice::AesCmOnly),
            [SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80]
        );
        assert!(srtp_profile(SrtpProtectionProfile::Unsupported).is_err());
        assert_eq!(
            srtp_profile(SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm)
                .unwrap()
                .1,
            "SRTP_AEAD_AES_128_GCM"
        );
    }
}
