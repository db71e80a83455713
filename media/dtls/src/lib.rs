//! Sans-IO DTLS 1.2 for DTLS-SRTP (RFC 5763/5764) on OpenSSL.
//!
//! The bridge feeds the DTLS datagrams that arrived for one endpoint into a [`Dtls`] and sends
//! whatever [`Dtls::poll_transmit`] returns; no sockets live here. OpenSSL runs over an
//! in-memory datagram queue ([`MemIo`]) so that it keeps its own DTLS machinery: handshake
//! fragment reassembly (large ClientHellos from browsers offering DTLS 1.3 with post-quantum key
//! shares), retransmission, replay and duplicate handling.
//!
//! Peer authentication follows RFC 5763: certificates are self-signed, so the only check is that
//! the peer's certificate hashes to the fingerprint signalled out of band (Jingle / SDP).

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::os::raw::{c_int, c_void};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use foreign_types::ForeignTypeRef;
use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::PKey;
use openssl::srtp::SrtpProfileId;
use openssl::ssl::{
    ErrorCode, Ssl, SslContext, SslContextBuilder, SslMethod, SslMode, SslOptions, SslRef,
    SslSessionCacheMode, SslStream, SslVerifyMode, SslVersion,
};
use openssl::x509::{X509NameBuilder, X509Ref, X509StoreContextRef, X509};

/// Largest datagram OpenSSL may emit: fits any path that carries WebRTC media (RFC 8261's
/// conservative 1200 bytes), so handshake flights never rely on IP fragmentation.
const MTU: u32 = 1200;

/// ECDHE with ECDSA (our certificate is P-256) and AEAD only: what browsers offer for DTLS-SRTP.
const CIPHERS: &str =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305";

/// Key exchange groups in preference order; browsers and webrtc-rs all support these.
const GROUPS: &str = "X25519:P-256:P-384";

/// RFC 5764 exporter label for SRTP keying material.
const SRTP_EXPORTER_LABEL: &str = "EXTRACTOR-dtls_srtp";

/// RFC 7714 profile id of SRTP_AEAD_AES_128_GCM.
const PROFILE_AEAD_AES_128_GCM: u16 = 7;
/// RFC 5764 profile id of SRTP_AES128_CM_HMAC_SHA1_80.
const PROFILE_AES128_CM_SHA1_80: u16 = 1;
/// 2 * (16-byte key + 12-byte salt) for AEAD_AES_128_GCM.
const KEYING_LEN_AEAD_AES_128_GCM: usize = 56;
/// 2 * (16-byte key + 14-byte salt) for AES128_CM_SHA1_80.
const KEYING_LEN_AES128_CM_SHA1_80: usize = 60;

/// Estimate of what one OpenSSL DTLS connection holds on the heap (SSL + DTLS1 state, record
/// read/write buffers of ~17 KiB each, handshake transcript and retransmission queue). OpenSSL
/// does not expose its allocations per connection, so this is a documented constant.
const OPENSSL_CONNECTION_BYTES: usize = 40 * 1024;

/// Cap on the handshake timeout so that `now + timeout` cannot overflow `Instant`.
const MAX_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);

/// `DTLS_CTRL_GET_TIMEOUT` (the macro `DTLSv1_get_timeout`), not bound by openssl-sys.
const DTLS_CTRL_GET_TIMEOUT: c_int = 73;
/// `DTLS_CTRL_HANDLE_TIMEOUT` (the macro `DTLSv1_handle_timeout`), not bound by openssl-sys.
const DTLS_CTRL_HANDLE_TIMEOUT: c_int = 74;

/// Size of a DTLS 1.0/1.2 record header: type, version, epoch, sequence number, length.
const RECORD_HEADER_LEN: usize = 13;

/// Everything that can go wrong in a DTLS session.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// OpenSSL reported an error (handshake failure, fatal alert, certificate generation).
    #[error("OpenSSL: {0}")]
    Ssl(String),
    /// The peer's certificate does not hash to the signalled fingerprint.
    #[error("peer certificate does not match the expected fingerprint")]
    FingerprintMismatch,
    /// The datagram is not a sequence of DTLS records.
    #[error("datagram is not DTLS")]
    NotDtls,
    /// The handshake did not complete within the configured time.
    #[error("DTLS handshake timed out")]
    HandshakeTimeout,
    /// A fingerprint string is not 32 colon-separated hex bytes.
    #[error("malformed certificate fingerprint")]
    InvalidFingerprint,
    /// Only sha-256 fingerprints are supported.
    #[error("unsupported fingerprint hash function {0:?}")]
    UnsupportedHash(String),
    /// The handshake completed without an SRTP protection profile we offered.
    #[error("no common SRTP protection profile")]
    NoSrtpProfile,
}

impl From<ErrorStack> for Error {
    fn from(e: ErrorStack) -> Self {
        Error::Ssl(e.to_string())
    }
}

/// This bridge's certificate and the OpenSSL context built around it.
///
/// Cloning is cheap (reference counted) and the value is `Send + Sync`, so one certificate serves
/// every endpoint of the bridge.
#[derive(Clone)]
pub struct Certificate {
    ctx: SslContext,
    fingerprint: Arc<str>,
}

impl Certificate {
    /// Generates an ECDSA P-256 self-signed certificate (CN "tutti", random serial, valid from
    /// yesterday, so peers with a skewed clock accept it, for 30 days).
    pub fn generate() -> Result<Certificate, Error> {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
        let key = PKey::from_ec_key(EcKey::generate(&group)?)?;

        let mut name = X509NameBuilder::new()?;
        name.append_entry_by_nid(Nid::COMMONNAME, "tutti")?;
        let name = name.build();

        let mut serial = BigNum::new()?;
        serial.rand(64, MsbOption::MAYBE_ZERO, false)?;

        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|e| Error::Ssl(format!("system clock before 1970: {e}")))?
            .as_secs();
        let now = libc::time_t::try_from(now)
            .map_err(|_| Error::Ssl("system clock out of range".to_owned()))?;
        const DAY: libc::time_t = 24 * 60 * 60;

        let mut builder = X509::builder()?;
        builder.set_version(2)?;
        let serial = serial.to_asn1_integer()?;
        let not_before = Asn1Time::from_unix(now - DAY)?;
        let not_after = Asn1Time::from_unix(now + 30 * DAY)?;
        builder.set_serial_number(&serial)?;
        builder.set_subject_name(&name)?;
        builder.set_issuer_name(&name)?;
        builder.set_pubkey(&key)?;
        builder.set_not_before(&not_before)?;
        builder.set_not_after(&not_after)?;
        builder.sign(&key, MessageDigest::sha256())?;
        let cert = builder.build();

        let fingerprint = format_fingerprint(&sha256_of(&cert)?);

        let mut ctx = SslContextBuilder::new(SslMethod::dtls())?;
        ctx.set_min_proto_version(Some(SslVersion::DTLS1_2))?;
        ctx.set_max_proto_version(Some(SslVersion::DTLS1_2))?;
        ctx.set_cipher_list(CIPHERS)?;
        ctx.set_groups_list(GROUPS)?;
        ctx.set_certificate(&cert)?;
        ctx.set_private_key(&key)?;
        ctx.check_private_key()?;
        // NO_QUERY_MTU: the in-memory BIO has no path MTU; OpenSSL must keep the MTU set per
        // connection instead of shrinking it after retransmissions. Sessions are never resumed
        // (every call has fresh certificates), and renegotiation could silently change keys.
        ctx.set_options(
            SslOptions::NO_QUERY_MTU
                | SslOptions::NO_TICKET
                | SslOptions::NO_RENEGOTIATION
                | SslOptions::SINGLE_ECDH_USE,
        );
        ctx.set_session_cache_mode(SslSessionCacheMode::OFF);
        // Connected endpoints exchange no DTLS records except rare alerts: free idle buffers.
        ctx.set_mode(SslMode::RELEASE_BUFFERS);

        Ok(Certificate {
            ctx: ctx.build(),
            fingerprint: fingerprint.into(),
        })
    }

    /// "AB:CD:..." sha-256 of the DER certificate.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }
}

/// Which side of the handshake this endpoint plays (from the SDP/Jingle `setup` attribute).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Client,
    Server,
}

/// SRTP protection profiles offered (client) or accepted (server), in preference order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SrtpProfiles {
    GcmThenAesCm,
    GcmOnly,
    AesCmOnly,
}

impl SrtpProfiles {
    fn openssl_list(self) -> &'static str {
        match self {
            SrtpProfiles::GcmThenAesCm => "SRTP_AEAD_AES_128_GCM:SRTP_AES128_CM_SHA1_80",
            SrtpProfiles::GcmOnly => "SRTP_AEAD_AES_128_GCM",
            SrtpProfiles::AesCmOnly => "SRTP_AES128_CM_SHA1_80",
        }
    }
}

/// Outcome notifications of a [`Dtls`] session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// Handshake done and the peer's certificate matched the expected fingerprint.
    Connected {
        srtp_profile_id: u16,
        keying_material: Vec<u8>,
    },
    Failed(Error),
    /// The peer sent close_notify.
    Closed,
}

/// Parses "sha-256" + "AB:CD:.." (case-insensitive) into 32 bytes; other hashes → error.
pub fn parse_fingerprint(hash: &str, fingerprint: &str) -> Result<[u8; 32], Error> {
    if !hash.eq_ignore_ascii_case("sha-256") {
        return Err(Error::UnsupportedHash(hash.to_owned()));
    }
    let mut out = [0u8; 32];
    let mut parts = fingerprint.trim().split(':');
    for byte in out.iter_mut() {
        let part = parts.next().ok_or(Error::InvalidFingerprint)?.as_bytes();
        let [hi, lo] = part else {
            return Err(Error::InvalidFingerprint);
        };
        *byte = (hex_digit(*hi)? << 4) | hex_digit(*lo)?;
    }
    if parts.next().is_some() {
        return Err(Error::InvalidFingerprint);
    }
    Ok(out)
}

fn hex_digit(c: u8) -> Result<u8, Error> {
    match c {
        b'0'..=b'9' => Ok(c - b'0'),
        b'a'..=b'f' => Ok(c - b'a' + 10),
        b'A'..=b'F' => Ok(c - b'A' + 10),
        _ => Err(Error::InvalidFingerprint),
    }
}

fn format_fingerprint(digest: &[u8]) -> String {
    let mut s = String::with_capacity(digest.len() * 3);
    for (i, b) in digest.iter().enumerate() {
        if i > 0 {
            s.push(':');
        }
        // Writing to a String cannot fail.
        let _ = write!(s, "{b:02X}");
    }
    s
}

fn sha256_of(cert: &X509Ref) -> Result<[u8; 32], Error> {
    let digest = cert.digest(MessageDigest::sha256())?;
    <[u8; 32]>::try_from(&digest[..]).map_err(|_| Error::Ssl("sha-256 digest not 32 bytes".into()))
}

/// In-memory datagram transport under OpenSSL: each `read` yields one whole received datagram,
/// each `write` (OpenSSL flushes one datagram at a time for DTLS) is one datagram to send.
#[derive(Default)]
struct MemIo {
    incoming: VecDeque<Vec<u8>>,
    outgoing: VecDeque<Vec<u8>>,
}

impl Read for MemIo {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(datagram) = self.incoming.pop_front() else {
            return Err(io::ErrorKind::WouldBlock.into());
        };
        // OpenSSL reads DTLS with a buffer larger than any record; a longer datagram is
        // truncated, which OpenSSL then rejects as a bad record rather than misparsing.
        let n = datagram.len().min(buf.len());
        buf[..n].copy_from_slice(&datagram[..n]);
        Ok(n)
    }
}

impl Write for MemIo {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.outgoing.push_back(buf.to_vec());
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Handshaking,
    Connected,
    Closed,
    Failed,
}

/// One DTLS-SRTP session with one peer.
pub struct Dtls {
    stream: SslStream<MemIo>,
    role: Role,
    state: State,
    started: bool,
    remote_fingerprint: [u8; 32],
    /// Set by the verify callback when the peer's leaf certificate did not match, so that the
    /// resulting handshake failure is reported as [`Error::FingerprintMismatch`].
    fingerprint_mismatch: Arc<AtomicBool>,
    handshake_deadline: Instant,
    /// When OpenSSL's retransmission timer fires, translated from its wall clock at the last
    /// call that could have changed it.
    retransmit_at: Option<Instant>,
    events: VecDeque<Event>,
}

impl Dtls {
    /// Creates a session that authenticates the peer by `remote_fingerprint` (from
    /// [`parse_fingerprint`]) and fails if not connected by `now + handshake_timeout`.
    pub fn new(
        cert: &Certificate,
        role: Role,
        profiles: SrtpProfiles,
        remote_fingerprint: [u8; 32],
        now: Instant,
        handshake_timeout: Duration,
    ) -> Result<Dtls, Error> {
        let ssl = Ssl::new(&cert.ctx)?;
        Dtls::with_ssl(
            ssl,
            role,
            profiles,
            remote_fingerprint,
            now,
            handshake_timeout,
        )
    }

    /// [`Dtls::new`] on a prepared `Ssl`, so tests can shape the handshake (e.g. oversize it).
    fn with_ssl(
        mut ssl: Ssl,
        role: Role,
        profiles: SrtpProfiles,
        remote_fingerprint: [u8; 32],
        now: Instant,
        handshake_timeout: Duration,
    ) -> Result<Dtls, Error> {
        ssl.set_mtu(MTU)?;
        ssl.set_tlsext_use_srtp(profiles.openssl_list())?;

        let fingerprint_mismatch = Arc::new(AtomicBool::new(false));
        let mismatch = Arc::clone(&fingerprint_mismatch);
        // Self-signed certificates never pass chain verification: accept any chain and pin the
        // leaf to the signalled fingerprint instead. Rejecting here makes OpenSSL send a
        // bad_certificate alert, so the peer learns of the failure too.
        ssl.set_verify_callback(
            SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT,
            move |_preverified, ctx: &mut X509StoreContextRef| {
                if ctx.error_depth() != 0 {
                    return true;
                }
                let matches = ctx
                    .current_cert()
                    .is_some_and(|c| cert_matches(c, &remote_fingerprint));
                if !matches {
                    mismatch.store(true, Ordering::Relaxed);
                }
                matches
            },
        );
        match role {
            Role::Client => ssl.set_connect_state(),
            Role::Server => ssl.set_accept_state(),
        }
        let stream = SslStream::new(ssl, MemIo::default())?;

        Ok(Dtls {
            stream,
            role,
            state: State::Handshaking,
            started: false,
            remote_fingerprint,
            fingerprint_mismatch,
            handshake_deadline: now + handshake_timeout.min(MAX_HANDSHAKE_TIMEOUT),
            retransmit_at: None,
            events: VecDeque::new(),
        })
    }

    /// For Role::Client: produces the ClientHello (poll_transmit). No-op for Server.
    pub fn start(&mut self, now: Instant) {
        if self.role == Role::Client && !self.started && self.state == State::Handshaking {
            self.started = true;
            self.drive(now);
        }
    }

    /// Feed one received datagram (first byte 20..=63). Errors are also reported as Event::Failed
    /// once; garbage from the network never panics. A datagram that is not a sequence of DTLS
    /// records fails the session with [`Error::NotDtls`]; well-framed records OpenSSL cannot
    /// authenticate are dropped by OpenSSL. Input after `Failed` or `Closed` is ignored.
    pub fn handle_datagram(&mut self, data: &[u8], now: Instant) {
        if matches!(self.state, State::Closed | State::Failed) {
            return;
        }
        if !is_dtls_record_sequence(data) {
            self.fail(Error::NotDtls);
            return;
        }
        self.stream.get_mut().incoming.push_back(data.to_vec());
        self.drive(now);
    }

    /// Retransmits the last flight when OpenSSL's timer is due and enforces the handshake
    /// deadline; call at [`Dtls::poll_timeout`].
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.state {
            State::Handshaking if now >= self.handshake_deadline => {
                self.fail(Error::HandshakeTimeout);
            }
            State::Handshaking | State::Connected => {
                if self.retransmit_at.is_some_and(|t| now >= t) {
                    clear_error_queue();
                    // SAFETY: the pointer comes from a live SslStream owned by `self`;
                    // DTLS_CTRL_HANDLE_TIMEOUT takes no argument pointer.
                    let ret = unsafe {
                        openssl_sys::SSL_ctrl(
                            self.stream.ssl().as_ptr(),
                            DTLS_CTRL_HANDLE_TIMEOUT,
                            0,
                            std::ptr::null_mut(),
                        )
                    };
                    if ret < 0 {
                        // Too many retransmissions without an answer.
                        self.fail(Error::Ssl(ErrorStack::get().to_string()));
                        return;
                    }
                }
                self.update_timer(now);
            }
            State::Closed | State::Failed => {}
        }
    }

    /// When [`Dtls::handle_timeout`] must next be called; `None` when no timer runs.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Handshaking => Some(
                self.retransmit_at
                    .map_or(self.handshake_deadline, |t| t.min(self.handshake_deadline)),
            ),
            State::Connected => self.retransmit_at,
            State::Closed | State::Failed => None,
        }
    }

    /// Next datagram to send (handshake only, so an allocation per datagram is fine).
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.stream.get_mut().outgoing.pop_front()
    }

    /// Next outcome notification; `Connected`, `Failed` and `Closed` each come at most once.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// True between the `Connected` event and a failure or close.
    pub fn is_connected(&self) -> bool {
        self.state == State::Connected
    }

    /// Sends close_notify (see [`Dtls::poll_transmit`]) and stops processing input, e.g. when
    /// the endpoint leaves the conference.
    pub fn close(&mut self) {
        if self.state == State::Connected {
            // Failure to queue close_notify changes nothing: the session is over either way.
            let _ = self.stream.shutdown();
        }
        if matches!(self.state, State::Handshaking | State::Connected) {
            self.state = State::Closed;
        }
        self.retransmit_at = None;
    }

    /// Approximate heap bytes held (OpenSSL state is opaque: use a documented constant estimate
    /// plus queued datagrams).
    pub fn heap_bytes(&self) -> usize {
        let io = self.stream.get_ref();
        let queued: usize = io
            .incoming
            .iter()
            .chain(io.outgoing.iter())
            .map(Vec::capacity)
            .sum();
        let queues = (io.incoming.capacity() + io.outgoing.capacity()) * size_of::<Vec<u8>>();
        let events: usize = self.events.capacity() * size_of::<Event>()
            + self
                .events
                .iter()
                .map(|e| match e {
                    Event::Connected {
                        keying_material, ..
                    } => keying_material.capacity(),
                    Event::Failed(Error::Ssl(s) | Error::UnsupportedHash(s)) => s.capacity(),
                    Event::Failed(_) | Event::Closed => 0,
                })
                .sum::<usize>();
        OPENSSL_CONNECTION_BYTES + queued + queues + events
    }

    /// Runs OpenSSL over whatever input is queued: advances the handshake, then consumes
    /// post-handshake records (alerts, duplicates, application data to discard).
    fn drive(&mut self, now: Instant) {
        clear_error_queue();
        if self.state == State::Handshaking {
            match self.stream.do_handshake() {
                Ok(()) => self.on_handshake_complete(),
                Err(e) if e.code() == ErrorCode::WANT_READ => {}
                Err(e) => {
                    let err = if self.fingerprint_mismatch.load(Ordering::Relaxed) {
                        Error::FingerprintMismatch
                    } else {
                        Error::Ssl(e.to_string())
                    };
                    self.fail(err);
                }
            }
        }
        if self.state == State::Connected {
            self.read_records();
        }
        // Anything OpenSSL did not consume (after a failure or close) is stale.
        self.stream.get_mut().incoming.clear();
        self.update_timer(now);
    }

    fn on_handshake_complete(&mut self) {
        let ssl = self.stream.ssl();
        let peer_ok = ssl
            .peer_certificate()
            .is_some_and(|c| cert_matches(&c, &self.remote_fingerprint));
        if !peer_ok {
            let _ = self.stream.shutdown();
            self.fail(Error::FingerprintMismatch);
            return;
        }
        match srtp_keying(ssl) {
            Ok((srtp_profile_id, keying_material)) => {
                self.state = State::Connected;
                self.events.push_back(Event::Connected {
                    srtp_profile_id,
                    keying_material,
                });
            }
            Err(e) => {
                // The peer considers the handshake done: tell it the session is over.
                let _ = self.stream.shutdown();
                self.fail(e);
            }
        }
    }

    fn read_records(&mut self) {
        let mut discard = [0u8; 2048];
        loop {
            match self.stream.ssl_read(&mut discard) {
                // Application data has no consumer yet (no SCTP): drop it.
                Ok(_) => {}
                Err(e) if e.code() == ErrorCode::WANT_READ => return,
                Err(e) if e.code() == ErrorCode::ZERO_RETURN => {
                    // Answer close_notify; failing to queue the answer changes nothing.
                    let _ = self.stream.shutdown();
                    self.state = State::Closed;
                    self.retransmit_at = None;
                    self.events.push_back(Event::Closed);
                    return;
                }
                Err(e) => {
                    self.fail(Error::Ssl(e.to_string()));
                    return;
                }
            }
        }
    }

    fn fail(&mut self, err: Error) {
        if matches!(self.state, State::Handshaking | State::Connected) {
            self.state = State::Failed;
            self.retransmit_at = None;
            self.events.push_back(Event::Failed(err));
        }
    }

    fn update_timer(&mut self, now: Instant) {
        if !matches!(self.state, State::Handshaking | State::Connected) {
            self.retransmit_at = None;
            return;
        }
        let mut left = libc::timeval {
            tv_sec: 0,
            tv_usec: 0,
        };
        // SAFETY: the pointer comes from a live SslStream owned by `self`, and
        // DTLS_CTRL_GET_TIMEOUT writes one `struct timeval` through `parg`, which points to a
        // valid, exclusively borrowed timeval.
        let running = unsafe {
            openssl_sys::SSL_ctrl(
                self.stream.ssl().as_ptr(),
                DTLS_CTRL_GET_TIMEOUT,
                0,
                (&mut left as *mut libc::timeval).cast::<c_void>(),
            )
        };
        self.retransmit_at = (running > 0).then(|| {
            let secs = u64::try_from(left.tv_sec).unwrap_or(0);
            let micros = u64::try_from(left.tv_usec).unwrap_or(0);
            now + Duration::from_secs(secs) + Duration::from_micros(micros)
        });
    }
}

/// SSL_get_error misclassifies results while the thread's OpenSSL error queue holds stale
/// entries from unrelated calls, so it is emptied before each SSL operation.
fn clear_error_queue() {
    drop(ErrorStack::get());
}

fn cert_matches(cert: &X509Ref, expected: &[u8; 32]) -> bool {
    sha256_of(cert).is_ok_and(|d| openssl::memcmp::eq(&d, expected))
}

/// Reads the negotiated SRTP profile and exports its keying material (RFC 5764 section 4.2).
fn srtp_keying(ssl: &SslRef) -> Result<(u16, Vec<u8>), Error> {
    let profile = ssl.selected_srtp_profile().ok_or(Error::NoSrtpProfile)?;
    let id = profile.id();
    let (profile_id, len) = if id == SrtpProfileId::SRTP_AEAD_AES_128_GCM {
        (PROFILE_AEAD_AES_128_GCM, KEYING_LEN_AEAD_AES_128_GCM)
    } else if id == SrtpProfileId::SRTP_AES128_CM_SHA1_80 {
        (PROFILE_AES128_CM_SHA1_80, KEYING_LEN_AES128_CM_SHA1_80)
    } else {
        return Err(Error::NoSrtpProfile);
    };
    let mut keying_material = vec![0u8; len];
    ssl.export_keying_material(&mut keying_material, SRTP_EXPORTER_LABEL, None)?;
    Ok((profile_id, keying_material))
}

/// True if `data` is one or more complete DTLS 1.0/1.2 records (RFC 6347 section 4.1): a known
/// content type, version major 0xFE, and lengths that tile the datagram exactly. A [`Dtls`]
/// session fails on a datagram that is not; a caller that would rather drop it checks first.
pub fn is_dtls_record_sequence(mut data: &[u8]) -> bool {
    if data.is_empty() {
        return false;
    }
    while !data.is_empty() {
        let Some(header) = data.get(..RECORD_HEADER_LEN) else {
            return false;
        };
        // change_cipher_spec(20), alert(21), handshake(22), application_data(23),
        // heartbeat(24), tls12_cid(25), ack(26).
        if !(20..=26).contains(&header[0]) || header[1] != 0xFE {
            return false;
        }
        let len = usize::from(u16::from_be_bytes([header[11], header[12]]));
        let Some(rest) = data.get(RECORD_HEADER_LEN + len..) else {
            return false;
        };
        data = rest;
    }
    true
}

#[cfg(test)]
mod tests;
