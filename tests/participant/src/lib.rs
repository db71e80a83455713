//! A test participant that plays the client side of a WebRTC session against the bridge on an
//! independent stack (webrtc-rs `stun`, `dtls`, `webrtc-srtp`, `rtp`, `rtcp`), so that bridge
//! bugs cannot be hidden by sharing code with it: controlled ICE (controlling when it makes the
//! offer itself, see [`ParticipantConfig::ice_role`]), DTLS client (`setup=active`), SRTP with
//! browser-shaped Opus and VP8 media, and bookkeeping of everything received.
//!
//! Binds 127.0.0.1 unless told another address (a test whose bridges are other hosts).

pub mod demux;
pub mod ice;
pub mod media;
pub mod receive;
pub mod transport;

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context as _};
use dtls::conn::DTLSConn;
use dtls::crypto::Certificate;
use rand::Rng;
use rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtcp::sender_report::SenderReport;
use rtcp::source_description::{
    SdesType, SourceDescription, SourceDescriptionChunk, SourceDescriptionItem,
};
use rtcp::transport_feedbacks::transport_layer_nack::{NackPair, TransportLayerNack};
use stun::agent::TransactionId;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::{interval, timeout_at, Instant, MissedTickBehavior};
use webrtc_srtp::context::Context as SrtpContext;
use webrtc_util::Marshal;

use crate::demux::{classify, PacketKind};
use crate::ice::{Credentials, IceRole, StunEvent};
use crate::media::MediaSource;
use crate::receive::PayloadTypes;
use crate::transport::{ChannelConn, DtlsCounters};

pub use rtcp::reception_report::ReceptionReport;

/// Which DTLS-SRTP protection profiles we offer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SrtpChoice {
    /// AEAD_AES_128_GCM, then AES128_CM_HMAC_SHA1_80 (what browsers offer).
    GcmFirst,
    GcmOnly,
    AesCmOnly,
}

/// How a participant identifies itself and what it sends.
#[derive(Clone, Debug)]
pub struct ParticipantConfig {
    pub name: String,
    pub audio_ssrc: u32,
    pub video_ssrc: u32,
    pub video_rtx_ssrc: u32,
    pub opus_pt: u8,
    pub vp8_pt: u8,
    pub rtx_pt: u8,
    /// RFC 8285 one-byte-header id (1..=14) of the transport-wide-cc extension.
    pub twcc_ext_id: u8,
    /// One-byte-header id of the RFC 6464 audio level extension its audio carries (someone
    /// talking half the time, `media::speech_level`); None (the default) sends none.
    pub audio_level_ext_id: Option<u8>,
    pub srtp: SrtpChoice,
    /// Largest DTLS datagram we send (at least 64). The first ClientHello of this stack is
    /// about 153 bytes, so e.g. 120 makes it go out in fragments.
    pub dtls_mtu: usize,
    pub video_bitrate_bps: u32,
    pub keyframe_interval: Duration,
    pub send_audio: bool,
    pub send_video: bool,
    /// First RTP sequence number of both streams; None (the default) draws them at random
    /// like a browser. Tests set it to cross the 16-bit wrap within a few packets.
    pub first_sequence: Option<u16>,
    /// The address the media socket binds (its one host candidate); 127.0.0.1 by default.
    pub bind_address: Ipv4Addr,
    /// Controlled (the default: the peer made the offer, as the bridge does), or controlling
    /// when this participant made the offer: it then nominates the first pair whose check is
    /// answered.
    pub ice_role: IceRole,
}

impl ParticipantConfig {
    /// Random SSRCs, PTs 111/100/96, twcc id 5, GcmFirst, mtu 1200, 2 Mbit/s, keyframe every 3 s.
    pub fn new(name: &str) -> ParticipantConfig {
        let mut rng = rand::rng();
        let mut ssrcs: Vec<u32> = Vec::with_capacity(3);
        while ssrcs.len() < 3 {
            let s: u32 = rng.random();
            if s != 0 && !ssrcs.contains(&s) {
                ssrcs.push(s);
            }
        }
        ParticipantConfig {
            name: name.to_owned(),
            audio_ssrc: ssrcs[0],
            video_ssrc: ssrcs[1],
            video_rtx_ssrc: ssrcs[2],
            opus_pt: 111,
            vp8_pt: 100,
            rtx_pt: 96,
            twcc_ext_id: 5,
            audio_level_ext_id: None,
            srtp: SrtpChoice::GcmFirst,
            dtls_mtu: 1200,
            video_bitrate_bps: 2_000_000,
            keyframe_interval: Duration::from_secs(3),
            send_audio: true,
            send_video: true,
            first_sequence: None,
            bind_address: Ipv4Addr::LOCALHOST,
            ice_role: IceRole::Controlled,
        }
    }
}

/// What the bridge gave us (from its AllocateEndpoint answer).
#[derive(Clone, Debug)]
pub struct RemoteDescription {
    pub ufrag: String,
    pub pwd: String,
    pub candidates: Vec<SocketAddr>,
    /// sha-256 "AB:.."
    pub fingerprint: String,
}

/// What we give the bridge (UpdateEndpoint). setup is always "active".
#[derive(Clone, Debug)]
pub struct LocalDescription {
    pub ufrag: String,
    pub pwd: String,
    pub candidates: Vec<SocketAddr>,
    pub fingerprint: String,
}

/// What arrived on one SSRC.
#[derive(Clone, Debug, Default)]
pub struct StreamStats {
    pub packets: u64,
    /// RTP payload bytes (header and padding excluded).
    pub bytes: u64,
    /// Payloads whose trailer checksum failed, whose trailer names another sender SSRC than
    /// `sender`, or whose header sequence is not the trailer's (the sender's) plus
    /// `sequence_offset`.
    pub payload_errors: u64,
    /// The sender's SSRC in the payloads' trailers (the first one seen): the SSRC itself, or
    /// the source's when a bridge forwards it under an SSRC of its own.
    pub sender: Option<u32>,
    /// This receiver's sequence numbers minus the sender's: 0 until a bridge renumbers.
    pub sequence_offset: u16,
    /// Times the offset changed because the sender's numbering jumped (a new session of the
    /// same source, continued by the bridge in this receiver's numbering).
    pub renumbered: u64,
    /// The sender's sequence number in the latest packet that matched the offset.
    pub last_sender_seq: Option<u16>,
    pub highest_seq: u16,
    /// VP8 key frames (first packets carrying a valid key frame header).
    pub keyframes: u64,
    /// VP8 frames whose last packet (the one with the RTP marker bit) arrived: the frame rate
    /// a receiver sees, counted over a window.
    pub frames: u64,
    /// Receive time minus the sender's trailer timestamp of the latest packet.
    pub last_latency_us: i64,
}

/// Everything the participant observed so far.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// By SSRC (RTX excluded).
    pub received: HashMap<u32, StreamStats>,
    /// (rtx ssrc, original seq)
    pub rtx_received: Vec<(u32, u16)>,
    /// RTX payloads that are truncated, fail the checksum, or whose trailer sequence is not the
    /// OSN.
    pub rtx_payload_errors: u64,
    /// Padding-only RTP packets (e.g. bandwidth probes); not counted per stream.
    pub padding_packets: u64,
    /// By media SSRC (PLI + FIR).
    pub plis_received: HashMap<u32, u64>,
    /// Sequence numbers NACKed by the bridge.
    pub nacks_received: u64,
    /// Transport-wide seqs sent.
    pub twcc_sent: u64,
    /// Transport-wide seqs reported received by feedback, and reported lost.
    pub twcc_reported_received: BTreeSet<u16>,
    pub twcc_reported_lost: BTreeSet<u16>,
    pub twcc_feedbacks: u64,
    pub receiver_reports: u64,
    pub sender_reports: u64,
    /// Latest report block per reported SSRC, from RRs and SRs.
    pub report_blocks: HashMap<u32, ReceptionReport>,
    pub remb_bps: Option<u64>,
    /// SRTP/SRTCP packets that failed authentication or decryption.
    pub srtp_errors: u64,
    /// Decrypted RTP / RTCP that did not parse.
    pub rtp_errors: u64,
    pub rtcp_errors: u64,
    /// STUN messages we rejected (bad integrity, not for us, malformed).
    pub stun_errors: u64,
    /// Datagrams matching no RFC 7983 range.
    pub unknown_datagrams: u64,
    /// DTLS datagrams we sent before the bridge's first DTLS datagram arrived: more than one
    /// means the ClientHello went out fragmented (retransmissions would count too).
    pub dtls_datagrams_before_reply: usize,
    /// RFC 5764 name of the negotiated profile, e.g. "SRTP_AEAD_AES_128_GCM".
    pub srtp_profile: Option<String>,
}

/// Maximum number of our own STUN checks awaiting an answer that we remember.
const MAX_PENDING_CHECKS: usize = 64;
/// Pace of our connectivity checks until answered.
const CHECK_INTERVAL: Duration = Duration::from_millis(50);
/// Pace of our consent freshness checks (RFC 7675) once connected.
const CONSENT_INTERVAL: Duration = Duration::from_secs(5);
/// Pace of our RTCP sender reports.
const SENDER_REPORT_INTERVAL: Duration = Duration::from_secs(1);
/// Receive buffer; larger datagrams are truncated and then fail to parse.
const RECV_BUFFER: usize = 4096;
/// The socket's receive buffer (the kernel caps it at `net.core.rmem_max`).
const RECV_SOCKET_BUFFER: usize = 4 << 20;

struct SrtpContexts {
    tx: SrtpContext,
    rx: SrtpContext,
}

/// Mutable session state, behind one lock taken briefly and never across an await.
struct State {
    remote: Option<Credentials>,
    remote_candidates: Vec<SocketAddr>,
    pending: VecDeque<(TransactionId, SocketAddr)>,
    answered: HashSet<SocketAddr>,
    selected: Option<SocketAddr>,
    checks_received: u64,
    last_stun_error: Option<String>,
    dtls_in: Option<mpsc::Sender<Vec<u8>>>,
    srtp: Option<SrtpContexts>,
    media: MediaSource,
    stats: Stats,
    twcc_sent: Vec<u16>,
    /// The last SRTP packet sent, kept so a test can replay it.
    last_rtp: Option<Vec<u8>>,
}

/// What the participant's tasks share.
struct Shared {
    config: ParticipantConfig,
    ufrag: String,
    pwd: String,
    tiebreaker: u64,
    media_on: AtomicBool,
    dtls_counters: Arc<DtlsCounters>,
    selected: watch::Sender<Option<SocketAddr>>,
    state: Mutex<State>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking task cannot leave the counters inconsistent in a way that matters to a
        // test tool, so keep going with the data.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One simulated WebRTC endpoint. Dropping it stops its tasks; `close` also says goodbye to
/// the bridge with a DTLS close_notify.
pub struct Participant {
    config: ParticipantConfig,
    local: LocalDescription,
    local_addr: SocketAddr,
    certificate: Certificate,
    socket: Arc<UdpSocket>,
    shared: Arc<Shared>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    dtls: tokio::sync::Mutex<Option<Arc<DTLSConn>>>,
}

fn random_string(len: usize) -> String {
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

impl Participant {
    /// Binds a UDP socket on `config.bind_address`, makes ICE credentials and a DTLS certificate, and
    /// starts answering the bridge's connectivity checks.
    pub async fn bind(config: ParticipantConfig) -> anyhow::Result<Participant> {
        // webrtc-rs dtls needs rustls's process-wide provider; installing fails harmlessly when
        // one is already installed (by an earlier participant or by the embedding program).
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        if !(1..=14).contains(&config.twcc_ext_id) {
            bail!("twcc_ext_id must be 1..=14 (one-byte header extension)");
        }
        if config.dtls_mtu < transport::MIN_DTLS_DATAGRAM {
            bail!("dtls_mtu must be at least {}", transport::MIN_DTLS_DATAGRAM);
        }
        let socket = Arc::new(bind_socket(config.bind_address)?);
        let local_addr = socket.local_addr()?;
        let certificate = Certificate::generate_self_signed(vec![config.name.clone()])
            .context("generating the DTLS certificate")?;
        let der = certificate
            .certificate
            .first()
            .context("generated certificate is empty")?;
        let local = LocalDescription {
            ufrag: random_string(8),
            pwd: random_string(24),
            candidates: vec![local_addr],
            fingerprint: transport::fingerprint(der.as_ref()),
        };
        let shared = Arc::new(Shared {
            config: config.clone(),
            ufrag: local.ufrag.clone(),
            pwd: local.pwd.clone(),
            tiebreaker: rand::random(),
            media_on: AtomicBool::new(true),
            dtls_counters: Arc::new(DtlsCounters::default()),
            selected: watch::Sender::new(None),
            state: Mutex::new(State {
                remote: None,
                remote_candidates: Vec::new(),
                pending: VecDeque::new(),
                answered: HashSet::new(),
                selected: None,
                checks_received: 0,
                last_stun_error: None,
                dtls_in: None,
                srtp: None,
                media: MediaSource::new(&config),
                stats: Stats::default(),
                twcc_sent: Vec::new(),
                last_rtp: None,
            }),
        });
        let recv = tokio::spawn(recv_loop(Arc::clone(&socket), Arc::clone(&shared)));
        Ok(Participant {
            config,
            local,
            local_addr,
            certificate,
            socket,
            shared,
            tasks: Mutex::new(vec![recv]),
            dtls: tokio::sync::Mutex::new(None),
        })
    }

    pub fn config(&self) -> &ParticipantConfig {
        &self.config
    }

    pub fn local_description(&self) -> LocalDescription {
        self.local.clone()
    }

    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.local_addr
    }

    fn spawn(&self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        let handle = tokio::spawn(task);
        self.tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(handle);
    }

    /// ICE (in the configured role) + DTLS client + SRTP; Err after `timeout` with what got
    /// stuck.
    /// Media starts flowing as soon as this succeeds unless `stop_media` was called before.
    pub async fn connect(
        &self,
        remote: &RemoteDescription,
        timeout: std::time::Duration,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        if remote.candidates.is_empty() {
            bail!("the bridge gave no candidates");
        }
        {
            let mut st = self.shared.lock();
            if st.remote.is_some() {
                bail!("connect was already called");
            }
            st.remote = Some(Credentials {
                local_ufrag: self.local.ufrag.clone(),
                local_pwd: self.local.pwd.clone(),
                remote_ufrag: remote.ufrag.clone(),
                remote_pwd: remote.pwd.clone(),
            });
            st.remote_candidates = remote.candidates.clone();
        }
        self.spawn(ice_loop(
            Arc::clone(&self.socket),
            Arc::clone(&self.shared),
            remote.candidates.clone(),
        ));

        let mut selected_rx = self.shared.selected.subscribe();
        let selected = match timeout_at(deadline, selected_rx.wait_for(Option::is_some)).await {
            Ok(Ok(addr)) => (*addr).context("selected pair vanished")?,
            _ => {
                let st = self.shared.lock();
                let waited_for = match self.config.ice_role {
                    IceRole::Controlled => "no check with USE-CANDIDATE from the peer",
                    IceRole::Controlling => "none of our nominating checks answered",
                };
                bail!(
                    "ICE did not complete within {timeout:?}: {waited_for}; {} valid checks \
                     received from it, {} of {} of our checks answered, last STUN error: {}",
                    st.checks_received,
                    st.answered.len(),
                    remote.candidates.len(),
                    st.last_stun_error.as_deref().unwrap_or("none"),
                );
            }
        };

        let config = transport::dtls_config(
            self.certificate.clone(),
            &remote.fingerprint,
            self.config.srtp,
            self.config.dtls_mtu,
        )?;
        let (dtls_tx, dtls_rx) = mpsc::channel(64);
        self.shared.lock().dtls_in = Some(dtls_tx);
        let conn = ChannelConn::new(
            dtls_rx,
            &self.socket,
            self.local_addr,
            selected,
            Arc::clone(&self.shared.dtls_counters),
        );
        let counters = &self.shared.dtls_counters;
        let dtls =
            match timeout_at(deadline, DTLSConn::new(Arc::new(conn), config, true, None)).await {
                Ok(Ok(c)) => Arc::new(c),
                Ok(Err(e)) => bail!(
                "DTLS handshake with {selected} failed: {e} ({} datagrams sent before the first \
                 reply)",
                counters.sent_before_reply()
            ),
                Err(_) => bail!(
                "DTLS handshake with {selected} did not finish within {timeout:?} ({} datagrams \
                 sent before the first reply, reply seen: {})",
                counters.sent_before_reply(),
                counters.reply_seen()
            ),
            };

        let (profile, profile_name) =
            transport::srtp_profile(dtls.selected_srtpprotection_profile())?;
        let mut srtp_config = webrtc_srtp::config::Config {
            profile,
            ..Default::default()
        };
        srtp_config
            .extract_session_keys_from_dtls(dtls.connection_state().await, true)
            .await
            .context("exporting SRTP keys")?;
        let keys = &srtp_config.keys;
        let tx = SrtpContext::new(
            &keys.local_master_key,
            &keys.local_master_salt,
            profile,
            None,
            None,
        )?;
        let rx = SrtpContext::new(
            &keys.remote_master_key,
            &keys.remote_master_salt,
            profile,
            None,
            None,
        )?;
        {
            let mut st = self.shared.lock();
            st.srtp = Some(SrtpContexts { tx, rx });
            st.stats.srtp_profile = Some(profile_name.to_owned());
        }
        *self.dtls.lock().await = Some(dtls);
        self.spawn(media_loop(
            Arc::clone(&self.socket),
            Arc::clone(&self.shared),
        ));
        Ok(())
    }

    /// Resumes sending the configured media (on by default).
    pub fn start_media(&self) {
        self.shared.media_on.store(true, Ordering::Relaxed);
    }

    /// Pauses sending media; ICE consent and feedback keep working.
    pub fn stop_media(&self) {
        self.shared.media_on.store(false, Ordering::Relaxed);
    }

    /// Sends a PLI asking the sender of `media_ssrc` for a key frame.
    pub async fn send_pli(&self, media_ssrc: u32) -> anyhow::Result<()> {
        let pli = PictureLossIndication {
            sender_ssrc: self.config.video_ssrc,
            media_ssrc,
        };
        self.send_rtcp(&pli.marshal()?).await
    }

    /// Sends a generic NACK (RFC 4585) for one packet of `media_ssrc`.
    pub async fn send_nack(&self, media_ssrc: u32, seq: u16) -> anyhow::Result<()> {
        let nack = TransportLayerNack {
            sender_ssrc: self.config.video_ssrc,
            media_ssrc,
            nacks: vec![NackPair::new(seq)],
        };
        self.send_rtcp(&nack.marshal()?).await
    }

    async fn send_rtcp(&self, plain: &[u8]) -> anyhow::Result<()> {
        let (datagram, to) = {
            let mut st = self.shared.lock();
            let to = st.selected.context("not connected")?;
            let srtp = st.srtp.as_mut().context("SRTP not established")?;
            (srtp.tx.encrypt_rtcp(plain)?, to)
        };
        self.socket.send_to(&datagram, to).await?;
        Ok(())
    }

    /// Sends `datagram` as is from our socket to the selected pair (or the bridge's first
    /// candidate before selection).
    pub async fn send_raw(&self, datagram: &[u8]) -> anyhow::Result<()> {
        let to = {
            let st = self.shared.lock();
            st.selected
                .or_else(|| st.remote_candidates.first().copied())
                .context("no bridge address known yet")?
        };
        self.socket.send_to(datagram, to).await?;
        Ok(())
    }

    /// Sends the last SRTP packet again, byte for byte: a replay the bridge must reject.
    pub async fn replay_last_rtp(&self) -> anyhow::Result<()> {
        let datagram = self
            .shared
            .lock()
            .last_rtp
            .clone()
            .context("no RTP sent yet")?;
        self.send_raw(&datagram).await
    }

    /// Transport-wide sequence numbers we actually sent (for checking feedback coverage).
    pub fn twcc_sent_sequences(&self) -> Vec<u16> {
        self.shared.lock().twcc_sent.clone()
    }

    pub fn stats(&self) -> Stats {
        let st = self.shared.lock();
        let mut stats = st.stats.clone();
        stats.twcc_sent = st.twcc_sent.len() as u64;
        stats.dtls_datagrams_before_reply = self.shared.dtls_counters.sent_before_reply();
        stats
    }

    /// Says goodbye (DTLS close_notify), stops every task and releases the socket.
    pub async fn close(self) {
        if let Some(dtls) = self.dtls.lock().await.take() {
            // Best effort: the bridge may already be gone.
            let _ = tokio::time::timeout(Duration::from_secs(1), dtls.close()).await;
        }
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        for t in &tasks {
            t.abort();
        }
        for t in tasks {
            // Only cancellation errors are possible here; the task is gone either way.
            let _ = t.await;
        }
        self.shared.lock().dtls_in = None;
    }
}

impl Participant {
    /// Stops every task and releases the socket without a DTLS close_notify: to the bridge this
    /// participant simply falls silent, as when its network goes away.
    pub async fn vanish(self) {
        self.shared.dtls_counters.silence();
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        for t in &tasks {
            t.abort();
        }
        for t in tasks {
            let _ = t.await;
        }
    }
}

/// A connected session handed over to a raw packet loop by [`Participant::hand_over`]: what it
/// takes to send and receive SRTP on the participant's socket and to keep the bridge's consent.
pub struct Handover {
    /// A duplicate of the participant's socket (non-blocking, like the original).
    pub socket: std::net::UdpSocket,
    pub local_addr: SocketAddr,
    /// The bridge's address of the selected candidate pair.
    pub remote: SocketAddr,
    /// Protects what we send.
    pub srtp_tx: SrtpContext,
    /// Unprotects what the bridge sends us.
    pub srtp_rx: SrtpContext,
    /// RFC 5764 name of the negotiated profile, e.g. "SRTP_AEAD_AES_128_GCM".
    pub srtp_profile: String,
    ufrag: String,
    pwd: String,
    remote_pwd: String,
    ice_role: IceRole,
}

impl Handover {
    /// Answers the bridge's connectivity and consent checks: the response to send back to
    /// `from` for a valid Binding request addressed to us, None for any other datagram. The
    /// bridge times an endpoint out when its checks go unanswered (consent freshness).
    pub fn answer_stun(&self, datagram: &[u8], from: SocketAddr) -> Option<Vec<u8>> {
        match ice::handle_stun(
            datagram,
            from,
            &self.ufrag,
            &self.pwd,
            Some(&self.remote_pwd),
            self.ice_role,
        ) {
            Ok(StunEvent::Request { response, .. }) => Some(response),
            _ => None,
        }
    }
}

impl Participant {
    /// Hands a connected session over to the caller: stops every task of the participant (its
    /// receive loop, checks, media and reports; DTLS is silenced, so no close_notify) and returns
    /// a duplicate of its socket, the selected remote address, the SRTP contexts and what
    /// answering the bridge's STUN checks takes. From then on the caller alone reads the socket.
    pub async fn hand_over(self) -> anyhow::Result<Handover> {
        use std::os::fd::AsFd;

        self.shared.dtls_counters.silence();
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        for t in &tasks {
            t.abort();
        }
        for t in tasks {
            // Only cancellation errors are possible here; the task is gone either way.
            let _ = t.await;
        }
        let socket = std::net::UdpSocket::from(
            self.socket
                .as_fd()
                .try_clone_to_owned()
                .context("duplicating the participant's socket")?,
        );
        let mut st = self.shared.lock();
        let remote = st.selected.context("not connected")?;
        let srtp = st.srtp.take().context("SRTP not established")?;
        let remote_pwd = st
            .remote
            .as_ref()
            .map(|r| r.remote_pwd.clone())
            .context("no remote credentials")?;
        let srtp_profile = st.stats.srtp_profile.clone().unwrap_or_default();
        st.dtls_in = None;
        Ok(Handover {
            socket,
            local_addr: self.local_addr,
            remote,
            srtp_tx: srtp.tx,
            srtp_rx: srtp.rx,
            srtp_profile,
            ufrag: self.shared.ufrag.clone(),
            pwd: self.shared.pwd.clone(),
            remote_pwd,
            ice_role: self.config.ice_role,
        })
    }
}

impl Drop for Participant {
    fn drop(&mut self) {
        for t in self
            .tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            t.abort();
        }
    }
}

/// The media socket, with a receive buffer of `RECV_SOCKET_BUFFER` bytes: a test process whose
/// other work holds up the receive task for a moment (a flood it sends, a busy machine) must not
/// lose what arrived meanwhile, or the test would measure itself rather than the bridge.
fn bind_socket(address: Ipv4Addr) -> anyhow::Result<UdpSocket> {
    let socket = socket2::Socket::new(
        socket2::Domain::IPV4,
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )?;
    socket.set_recv_buffer_size(RECV_SOCKET_BUFFER)?;
    socket.set_nonblocking(true)?;
    socket.bind(&SocketAddr::from((address, 0)).into())?;
    Ok(UdpSocket::from_std(socket.into())?)
}

/// Demultiplexes everything arriving on the socket (RFC 7983).
async fn recv_loop(socket: Arc<UdpSocket>, shared: Arc<Shared>) {
    let mut buf = vec![0u8; RECV_BUFFER];
    let pts = PayloadTypes {
        opus: shared.config.opus_pt,
        vp8: shared.config.vp8_pt,
        rtx: shared.config.rtx_pt,
    };
    loop {
        let (n, from) = match socket.recv_from(&mut buf).await {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(participant = %shared.config.name, "recv_from: {e}");
                tokio::time::sleep(Duration::from_millis(1)).await;
                continue;
            }
        };
        let datagram = &buf[..n];
        match classify(datagram) {
            PacketKind::Stun => {
                if let Some((response, to)) = on_stun(&shared, datagram, from) {
                    if let Err(e) = socket.send_to(&response, to).await {
                        tracing::debug!(participant = %shared.config.name, "STUN send: {e}");
                    }
                }
            }
            PacketKind::Dtls => {
                shared.dtls_counters.on_reply();
                let feed = shared.lock().dtls_in.clone();
                if let Some(feed) = feed {
                    // A full queue means the DTLS stack is stalled; dropping is what the
                    // network would do.
                    let _ = feed.try_send(datagram.to_vec());
                }
            }
            PacketKind::Rtp | PacketKind::Rtcp => on_srtp(&shared, datagram, pts),
            PacketKind::Unknown => shared.lock().stats.unknown_datagrams += 1,
        }
    }
}

/// Handles a STUN message; returns the response to send, if any.
fn on_stun(shared: &Shared, datagram: &[u8], from: SocketAddr) -> Option<(Vec<u8>, SocketAddr)> {
    let mut st = shared.lock();
    let remote_pwd = st.remote.as_ref().map(|r| r.remote_pwd.clone());
    match ice::handle_stun(
        datagram,
        from,
        &shared.ufrag,
        &shared.pwd,
        remote_pwd.as_deref(),
        shared.config.ice_role,
    ) {
        Ok(StunEvent::Request {
            use_candidate,
            response,
        }) => {
            st.checks_received += 1;
            let nominated = use_candidate && shared.config.ice_role == IceRole::Controlled;
            if nominated && st.selected != Some(from) {
                st.selected = Some(from);
                shared.selected.send_replace(Some(from));
            }
            Some((response, from))
        }
        Ok(StunEvent::Response { transaction_id }) => {
            if let Some(i) = st.pending.iter().position(|(t, _)| *t == transaction_id) {
                if let Some((_, addr)) = st.pending.remove(i) {
                    st.answered.insert(addr);
                    // Controlling, we nominated in this check: its pair is the selected one.
                    if shared.config.ice_role == IceRole::Controlling && st.selected.is_none() {
                        st.selected = Some(addr);
                        shared.selected.send_replace(Some(addr));
                    }
                }
            }
            None
        }
        Err(e) => {
            st.stats.stun_errors += 1;
            st.last_stun_error = Some(format!("{e:#} (from {from})"));
            None
        }
    }
}

/// Decrypts and accounts one SRTP or SRTCP packet.
fn on_srtp(shared: &Shared, datagram: &[u8], pts: PayloadTypes) {
    let mut st = shared.lock();
    let st = &mut *st;
    let Some(srtp) = st.srtp.as_mut() else {
        // Media racing ahead of our handshake completion; nothing to decrypt it with yet.
        return;
    };
    if classify(datagram) == PacketKind::Rtcp {
        match srtp.rx.decrypt_rtcp(datagram) {
            Ok(plain) => {
                for ssrc in receive::on_rtcp(&mut st.stats, &plain) {
                    if ssrc == shared.config.video_ssrc {
                        st.media.request_keyframe();
                    }
                }
            }
            Err(_) => st.stats.srtp_errors += 1,
        }
    } else {
        match srtp.rx.decrypt_rtp(datagram) {
            Ok(plain) => receive::on_rtp(&mut st.stats, pts, &plain, now_us()),
            Err(_) => st.stats.srtp_errors += 1,
        }
    }
}

/// Our side of the connectivity checks: every 50 ms to each bridge candidate until answered,
/// then consent checks on the selected pair every 5 s.
async fn ice_loop(socket: Arc<UdpSocket>, shared: Arc<Shared>, candidates: Vec<SocketAddr>) {
    let mut tick = interval(CHECK_INTERVAL);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last_consent: Option<Instant> = None;
    loop {
        tick.tick().await;
        let mut out = Vec::new();
        {
            let mut st = shared.lock();
            let Some(creds) = st.remote.clone() else {
                continue;
            };
            let targets: Vec<SocketAddr> = match st.selected {
                Some(sel) if st.answered.contains(&sel) => {
                    if last_consent.is_some_and(|t| t.elapsed() < CONSENT_INTERVAL) {
                        Vec::new()
                    } else {
                        last_consent = Some(Instant::now());
                        vec![sel]
                    }
                }
                Some(sel) => vec![sel],
                None => candidates
                    .iter()
                    .filter(|c| !st.answered.contains(c))
                    .copied()
                    .collect(),
            };
            for to in targets {
                match ice::binding_request(&creds, shared.tiebreaker, shared.config.ice_role) {
                    Ok((txid, datagram)) => {
                        if st.pending.len() >= MAX_PENDING_CHECKS {
                            st.pending.pop_front();
                        }
                        st.pending.push_back((txid, to));
                        out.push((datagram, to));
                    }
                    Err(e) => st.last_stun_error = Some(format!("building a check: {e:#}")),
                }
            }
        }
        for (datagram, to) in out {
            if let Err(e) = socket.send_to(&datagram, to).await {
                tracing::debug!(participant = %shared.config.name, "check send: {e}");
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Tick {
    Audio,
    Video,
    Report,
}

async fn send_sender_reports(socket: &UdpSocket, shared: &Shared) {
    let datagram = {
        let mut st = shared.lock();
        let st = &mut *st;
        let (Some(to), Some(plain)) = (st.selected, sender_reports(shared, &st.media)) else {
            return;
        };
        let Some(srtp) = st.srtp.as_mut() else {
            return;
        };
        match srtp.tx.encrypt_rtcp(&plain) {
            Ok(d) => (d, to),
            Err(_) => {
                st.stats.srtp_errors += 1;
                return;
            }
        }
    };
    if let Err(e) = socket.send_to(&datagram.0, datagram.1).await {
        tracing::debug!(participant = %shared.config.name, "RTCP send: {e}");
    }
}

/// Builds the compound RTCP a browser sends for its outgoing streams: one SR per stream that
/// has sent something, then SDES with the CNAME (RFC 3550 §6.1).
fn sender_reports(shared: &Shared, media: &MediaSource) -> Option<Vec<u8>> {
    let ntp = media::ntp_time(now_us());
    let mut packets: Vec<Box<dyn rtcp::packet::Packet + Send + Sync>> = Vec::new();
    let mut chunks = Vec::new();
    for (ssrc, c) in [
        (shared.config.audio_ssrc, media.audio_counts()),
        (shared.config.video_ssrc, media.video_counts()),
    ] {
        if c.packets == 0 {
            continue;
        }
        packets.push(Box::new(SenderReport {
            ssrc,
            ntp_time: ntp,
            rtp_time: c.rtp_time,
            packet_count: c.packets,
            octet_count: c.octets,
            ..Default::default()
        }));
        chunks.push(SourceDescriptionChunk {
            source: ssrc,
            items: vec![SourceDescriptionItem {
                sdes_type: SdesType::SdesCname,
                text: bytes::Bytes::from(shared.config.name.clone()),
            }],
        });
    }
    if packets.is_empty() {
        return None;
    }
    packets.push(Box::new(SourceDescription { chunks }));
    rtcp::packet::marshal(&packets).ok().map(|b| b.to_vec())
}

/// Paces Opus (50 pps) and VP8 (30 fps) on tokio intervals and sends them as SRTP, with sender
/// reports every second.
async fn media_loop(socket: Arc<UdpSocket>, shared: Arc<Shared>) {
    let mut audio = interval(media::AUDIO_PTIME);
    let mut video = interval(Duration::from_secs(1) / media::VIDEO_FPS);
    let mut reports = interval(SENDER_REPORT_INTERVAL);
    reports.reset();
    loop {
        let kind = tokio::select! {
            _ = audio.tick() => Tick::Audio,
            _ = video.tick() => Tick::Video,
            _ = reports.tick() => Tick::Report,
        };
        let wanted = match kind {
            Tick::Audio => shared.config.send_audio,
            Tick::Video => shared.config.send_video,
            Tick::Report => true,
        };
        if !wanted || !shared.media_on.load(Ordering::Relaxed) {
            continue;
        }
        if kind == Tick::Report {
            send_sender_reports(&socket, &shared).await;
            continue;
        }
        let mut out = Vec::new();
        let to = {
            let mut st = shared.lock();
            let st = &mut *st;
            let Some(to) = st.selected else { continue };
            let now = now_us();
            let packets = if kind == Tick::Audio {
                vec![st.media.audio_packet(now)]
            } else {
                st.media.video_frame(now)
            };
            let Some(srtp) = st.srtp.as_mut() else {
                continue;
            };
            for p in packets {
                match srtp.tx.encrypt_rtp(&p.rtp) {
                    Ok(d) => out.push((d, p.twcc_seq)),
                    Err(_) => st.stats.srtp_errors += 1,
                }
            }
            to
        };
        for (datagram, twcc_seq) in out {
            match socket.send_to(&datagram, to).await {
                Ok(_) => {
                    let mut st = shared.lock();
                    st.twcc_sent.push(twcc_seq);
                    st.last_rtp = Some(datagram.to_vec());
                }
                Err(e) => tracing::debug!(participant = %shared.config.name, "media send: {e}"),
            }
        }
    }
}
