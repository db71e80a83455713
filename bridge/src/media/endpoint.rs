//! One endpoint: a participant's transport (ICE, DTLS, SRTP) and the state the bridge keeps
//! for the sources it sends and the streams it receives.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tutti_dtls::{Certificate, Dtls, Role, SrtpProfiles};
use tutti_ice::{AgentConfig, IceAgent};
use tutti_rtp::rtcp::{ReceiveStats, TwccRecorder};
use tutti_rtp::rtp;
use tutti_srtp::{Context, Profile};

use super::numbering::Numbering;
use super::retransmission::RetransmissionCache;
use super::stats::Counters;
use super::udp::SendBatch;
use super::{
    EndpointState, MediaConfig, MediaKind, RemoteSetup, RemoteTransport, SourcePlan, SourceSet,
};

/// At most this many remote addresses are remembered as validated per endpoint.
const MAX_VALIDATED_ADDRESSES: usize = 8;
/// transport-cc arrival records kept between two feedback packets.
const TWCC_HISTORY: usize = 1024;

/// Settings every endpoint shares.
pub struct EndpointSettings {
    pub consent_timeout: Duration,
    pub ice_timeout: Duration,
    pub dtls_timeout: Duration,
    pub srtp_profiles: SrtpProfiles,
    pub retransmission_cache_packets: usize,
}

/// A source this endpoint sends, as the bridge receives it.
pub struct Source {
    pub plan: SourcePlan,
    pub stats: ReceiveStats,
    pub cache: Option<RetransmissionCache>,
    pub last_keyframe_request: Option<Instant>,
}

/// What happened to an endpoint's transport that the worker must act on.
pub enum TransportChange {
    AddressValidated(SocketAddr),
    State(EndpointState, String),
}

pub struct Endpoint {
    pub conference_id: String,
    pub endpoint_id: String,
    pub conference: usize,
    pub tag: u32,
    pub ice: IceAgent,
    dtls: Option<Dtls>,
    remote: Option<(RemoteSetup, [u8; 32])>,
    /// Where DTLS came from before ICE selected a pair.
    dtls_peer: Option<SocketAddr>,
    pub srtp_in: Option<Context>,
    pub srtp_out: Option<Context>,
    pub state: EndpointState,
    pub validated: Vec<SocketAddr>,
    pub media: MediaConfig,
    pub sources: Vec<Source>,
    /// The SSRC the bridge uses in RTCP it sends to this endpoint.
    pub rtcp_ssrc: u32,
    pub twcc: TwccRecorder,
    /// Transport-wide sequence the bridge stamps on what it sends to this endpoint.
    pub twcc_out: u16,
    /// Next RTX sequence number per RTX SSRC sent to this endpoint.
    pub rtx_sequences: Vec<(u32, u16)>,
    /// The sequence numbering of the streams forwarded to this endpoint.
    pub numbering: Numbering,
}

impl Endpoint {
    pub fn new(
        conference_id: String,
        endpoint_id: String,
        conference: usize,
        tag: u32,
        ice: tutti_ice::Credentials,
        settings: &EndpointSettings,
        now: Instant,
    ) -> Endpoint {
        let config = AgentConfig {
            controlling: true,
            transaction_tag: tag,
            connect_timeout: settings.ice_timeout,
            consent_timeout: settings.consent_timeout,
            ..AgentConfig::default()
        };
        Endpoint {
            conference_id,
            endpoint_id,
            conference,
            tag,
            ice: IceAgent::new(config, ice, now),
            dtls: None,
            remote: None,
            dtls_peer: None,
            srtp_in: None,
            srtp_out: None,
            state: EndpointState::Allocated,
            validated: Vec::new(),
            media: MediaConfig::default(),
            sources: Vec::new(),
            rtcp_ssrc: rand::random(),
            twcc: TwccRecorder::new(TWCC_HISTORY),
            twcc_out: 1,
            rtx_sequences: Vec::new(),
            numbering: Numbering::new(),
        }
    }

    /// Media flows to and from this endpoint.
    pub fn is_connected(&self) -> bool {
        self.state == EndpointState::Connected
    }

    /// Destination of media for this endpoint, once connected.
    pub fn media_destination(&self) -> Option<SocketAddr> {
        if self.is_connected() {
            self.ice.selected()
        } else {
            None
        }
    }

    pub fn receives(&self, kind: MediaKind) -> bool {
        self.media.get(kind).is_some_and(|m| m.receives)
    }

    pub fn twcc_extension(&self, kind: MediaKind) -> Option<u8> {
        self.media.get(kind).and_then(|m| m.twcc_extension)
    }

    /// Blanks, once on arrival, the extensions of a packet from this endpoint that must not
    /// reach other endpoints (see `MediaDesc::sender_local_extensions`); the cached copy used for
    /// retransmissions is then clean too.
    pub fn remove_sender_local_extensions(&self, packet: &mut [u8]) {
        let Ok(header) = rtp::parse(packet) else {
            return;
        };
        if header.extensions.is_none() {
            return;
        }
        for media in [&self.media.audio, &self.media.video].into_iter().flatten() {
            for id in media.sender_local_extensions {
                rtp::blank_extension(packet, &header, id);
            }
        }
    }

    /// transport-cc feedback is expected by this endpoint (it sends the extension).
    pub fn wants_transport_cc(&self) -> bool {
        [MediaKind::Audio, MediaKind::Video].iter().any(|k| {
            self.media
                .get(*k)
                .is_some_and(|m| m.transport_cc && m.twcc_extension.is_some())
        })
    }

    pub fn rtx_payload_type(&self, original: u8) -> Option<u8> {
        self.media
            .video
            .as_ref()?
            .rtx
            .iter()
            .find(|(apt, _)| *apt == original)
            .map(|(_, pt)| *pt)
    }

    pub fn source_index(&self, ssrc: u32) -> Option<usize> {
        self.sources.iter().position(|s| s.plan.ssrc == ssrc)
    }

    pub fn set_sources(&mut self, set: &SourceSet, settings: &EndpointSettings) {
        let mut old = std::mem::take(&mut self.sources);
        self.sources = set
            .plan()
            .into_iter()
            .map(|plan| {
                // Sources that stay keep their statistics and cache.
                if let Some(pos) = old.iter().position(|s| s.plan == plan) {
                    return old.swap_remove(pos);
                }
                let clock_rate = match plan.kind {
                    MediaKind::Audio => 48_000,
                    MediaKind::Video => 90_000,
                };
                let cache =
                    (plan.kind == MediaKind::Video && plan.forwarded && plan.rtx_for.is_none())
                        .then(|| RetransmissionCache::new(settings.retransmission_cache_packets));
                Source {
                    plan,
                    stats: ReceiveStats::new(clock_rate),
                    cache,
                    last_keyframe_request: None,
                }
            })
            .collect();
    }

    /// Drops what was kept for sending these (now gone) streams to this endpoint.
    pub fn forget_ssrcs(&mut self, ssrcs: &[u32]) {
        for &ssrc in ssrcs {
            let srtp = self.srtp_out.as_mut().map(|srtp| srtp.remove_ssrc(ssrc));
            self.numbering.forget(ssrc, srtp);
        }
        self.rtx_sequences.retain(|(ssrc, _)| !ssrcs.contains(ssrc));
        if self.rtx_sequences.is_empty() {
            self.rtx_sequences.shrink_to_fit();
        }
    }

    pub fn next_rtx_sequence(&mut self, rtx_ssrc: u32) -> u16 {
        if let Some(entry) = self.rtx_sequences.iter_mut().find(|(s, _)| *s == rtx_ssrc) {
            entry.1 = entry.1.wrapping_add(1);
            return entry.1;
        }
        let start: u16 = rand::random();
        self.rtx_sequences.push((rtx_ssrc, start));
        start
    }

    /// Applies a new remote transport: ICE credentials and candidates, DTLS fingerprint/setup.
    pub fn set_remote_transport(&mut self, remote: &RemoteTransport, now: Instant) {
        self.ice
            .set_remote_credentials(&remote.ufrag, &remote.pwd, now);
        for (addr, priority) in &remote.candidates {
            self.ice.add_remote_candidate(*addr, *priority, now);
        }
        if self.remote.map(|r| r.1) != Some(remote.fingerprint) && self.dtls.is_some() {
            // A new certificate means a new DTLS session (e.g. the client restarted).
            self.dtls = None;
            self.srtp_in = None;
            self.srtp_out = None;
            if self.state == EndpointState::Connected {
                self.state = EndpointState::Allocated;
            }
        }
        self.remote = Some((remote.setup, remote.fingerprint));
    }

    pub fn remember_validated(&mut self, addr: SocketAddr) -> bool {
        if self.validated.contains(&addr) || self.validated.len() >= MAX_VALIDATED_ADDRESSES {
            return false;
        }
        self.validated.push(addr);
        true
    }

    /// A DTLS datagram from a validated address.
    pub fn handle_dtls(
        &mut self,
        from: SocketAddr,
        data: &[u8],
        cert: &Certificate,
        settings: &EndpointSettings,
        now: Instant,
    ) -> bool {
        if self.dtls.is_none() {
            match self.remote {
                Some((RemoteSetup::Active, fingerprint)) => {
                    match Dtls::new(
                        cert,
                        Role::Server,
                        settings.srtp_profiles,
                        fingerprint,
                        now,
                        settings.dtls_timeout,
                    ) {
                        Ok(dtls) => self.dtls = Some(dtls),
                        Err(_) => return false,
                    }
                }
                // No fingerprint yet (the client is faster than the focus), or we are the client
                // and have not started: the client will retransmit.
                _ => return false,
            }
        }
        self.dtls_peer = Some(from);
        if let Some(dtls) = self.dtls.as_mut() {
            dtls.handle_datagram(data, now);
        }
        true
    }

    fn start_dtls_client(&mut self, cert: &Certificate, settings: &EndpointSettings, now: Instant) {
        if let (None, Some((RemoteSetup::Passive, fingerprint))) = (&self.dtls, self.remote) {
            if let Ok(mut dtls) = Dtls::new(
                cert,
                Role::Client,
                settings.srtp_profiles,
                fingerprint,
                now,
                settings.dtls_timeout,
            ) {
                dtls.start(now);
                self.dtls = Some(dtls);
            }
        }
    }

    pub fn next_timeout(&self) -> Option<Instant> {
        let ice = self.ice.poll_timeout();
        let dtls = self.dtls.as_ref().and_then(|d| d.poll_timeout());
        match (ice, dtls) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.ice.handle_timeout(now);
        if let Some(dtls) = self.dtls.as_mut() {
            dtls.handle_timeout(now);
        }
    }

    /// Sends what ICE and DTLS want to send and collects what changed.
    pub fn drive(
        &mut self,
        cert: &Certificate,
        settings: &EndpointSettings,
        now: Instant,
        out: &mut SendBatch,
        counters: &mut Counters,
        changes: &mut Vec<TransportChange>,
    ) {
        while let Some(event) = self.ice.poll_event() {
            match event {
                tutti_ice::Event::AddressValidated(addr) => {
                    changes.push(TransportChange::AddressValidated(addr))
                }
                tutti_ice::Event::Selected(_) => self.start_dtls_client(cert, settings, now),
                tutti_ice::Event::Failed => {
                    if self.state == EndpointState::Allocated {
                        counters.ice_failures += 1;
                        self.state = EndpointState::IceFailed;
                        changes.push(TransportChange::State(
                            EndpointState::IceFailed,
                            "no candidate pair succeeded in time".into(),
                        ));
                    }
                }
                // A failure already reported stays the endpoint's state.
                tutti_ice::Event::TimedOut
                    if matches!(
                        self.state,
                        EndpointState::Allocated | EndpointState::Connected
                    ) =>
                {
                    counters.consent_timeouts += 1;
                    self.state = EndpointState::TimedOut;
                    changes.push(TransportChange::State(
                        EndpointState::TimedOut,
                        format!("no packets for {} s", settings.consent_timeout.as_secs()),
                    ));
                }
                tutti_ice::Event::TimedOut => {}
            }
        }
        loop {
            let ice = &mut self.ice;
            let mut sent = false;
            out.push(|slot| {
                let r = ice.poll_transmit(slot);
                sent = r.is_some();
                r
            });
            if !sent {
                break;
            }
        }
        if let Some(dtls) = self.dtls.as_mut() {
            let to = self.ice.selected().or(self.dtls_peer);
            while let Some(datagram) = dtls.poll_transmit() {
                if let Some(to) = to {
                    out.push(|slot| {
                        let n = datagram.len().min(slot.len());
                        slot[..n].copy_from_slice(&datagram[..n]);
                        Some((to, n))
                    });
                }
            }
            while let Some(event) = dtls.poll_event() {
                match event {
                    tutti_dtls::Event::Connected {
                        srtp_profile_id,
                        keying_material,
                    } => {
                        let is_client = self.remote.is_some_and(|r| r.0 == RemoteSetup::Passive);
                        let keys = Profile::from_id(srtp_profile_id)
                            .ok_or(tutti_srtp::Error::BadKeyLength)
                            .and_then(|p| {
                                Context::pair_from_keying_material(p, &keying_material, is_client)
                            });
                        match keys {
                            Ok((outbound, inbound)) => {
                                self.srtp_out = Some(outbound);
                                self.numbering.new_srtp_keys();
                                self.srtp_in = Some(inbound);
                            }
                            Err(e) => {
                                counters.dtls_failures += 1;
                                self.state = EndpointState::DtlsFailed;
                                changes.push(TransportChange::State(
                                    EndpointState::DtlsFailed,
                                    format!("unusable SRTP keys: {e}"),
                                ));
                            }
                        }
                    }
                    tutti_dtls::Event::Failed(e) => {
                        counters.dtls_failures += 1;
                        self.state = EndpointState::DtlsFailed;
                        changes.push(TransportChange::State(
                            EndpointState::DtlsFailed,
                            e.to_string(),
                        ));
                    }
                    tutti_dtls::Event::Closed => {
                        self.srtp_in = None;
                        self.srtp_out = None;
                        self.state = EndpointState::DtlsFailed;
                        changes.push(TransportChange::State(
                            EndpointState::DtlsFailed,
                            "the client closed the DTLS session".into(),
                        ));
                    }
                }
            }
        }
        if self.state == EndpointState::Allocated
            && self.srtp_out.is_some()
            && self.ice.selected().is_some()
        {
            self.state = EndpointState::Connected;
            changes.push(TransportChange::State(
                EndpointState::Connected,
                String::new(),
            ));
        }
    }

    /// Copies a plaintext RTP packet for this receiver: stamps this hop's transport-wide
    /// sequence number and encrypts with this receiver's keys.
    pub fn write_forwarded(
        &mut self,
        packet: &[u8],
        header: &rtp::Header,
        origin: u32,
        sender_twcc: Option<u8>,
        kind: MediaKind,
        out: &mut [u8],
    ) -> Option<(SocketAddr, usize)> {
        let to = self.media_destination()?;
        let len = packet.len();
        out.get_mut(..len)?.copy_from_slice(packet);
        let numbered = self
            .numbering
            .outgoing(header.ssrc, header.sequence, origin);
        if numbered.sequence != header.sequence {
            rtp::set_sequence(out, numbered.sequence);
        }
        self.stamp_twcc(out, header, sender_twcc, kind);
        let srtp = self.srtp_out.as_mut()?;
        if let Some(state) = numbered.resume_srtp {
            srtp.resume_outbound(header.ssrc, state);
        }
        let n = srtp.protect_rtp(out, len).ok()?;
        Some((to, n))
    }

    /// Rewrites the transport-wide sequence number of a packet about to be sent to this endpoint.
    pub fn stamp_twcc(
        &mut self,
        packet: &mut [u8],
        header: &rtp::Header,
        sender_twcc: Option<u8>,
        kind: MediaKind,
    ) {
        let (Some(from_id), Some(to_id)) = (sender_twcc, self.twcc_extension(kind)) else {
            return;
        };
        if let Some(range) = rtp::find_extension(packet, header, from_id) {
            if rtp::write_u16_extension(packet, range, self.twcc_out) {
                self.twcc_out = self.twcc_out.wrapping_add(1);
                if to_id != from_id {
                    rtp::rename_extension(packet, header, from_id, to_id);
                }
            }
        }
    }

    /// Encrypts an RTCP packet the bridge wrote into `out` for this endpoint.
    pub fn protect_rtcp(&mut self, out: &mut [u8], len: usize) -> Option<(SocketAddr, usize)> {
        let to = self.media_destination()?;
        let n = self.srtp_out.as_mut()?.protect_rtcp(out, len).ok()?;
        Some((to, n))
    }

    /// Bytes held by this endpoint's state.
    pub fn heap_bytes(&self) -> usize {
        let strings = self.conference_id.capacity() + self.endpoint_id.capacity();
        let sources: usize = self
            .sources
            .iter()
            .map(|s| s.cache.as_ref().map_or(0, |c| c.heap_bytes()))
            .sum::<usize>()
            + self.sources.capacity() * std::mem::size_of::<Source>();
        let media = [&self.media.audio, &self.media.video]
            .iter()
            .filter_map(|m| m.as_ref())
            .map(|m| m.rtx.capacity() * 2)
            .sum::<usize>();
        std::mem::size_of::<Endpoint>()
            + strings
            + sources
            + media
            + self.ice.heap_bytes()
            + self.dtls.as_ref().map_or(0, |d| d.heap_bytes())
            + self.srtp_in.as_ref().map_or(0, |c| c.heap_bytes())
            + self.srtp_out.as_ref().map_or(0, |c| c.heap_bytes())
            + self.twcc.heap_bytes()
            + self.validated.capacity() * std::mem::size_of::<SocketAddr>()
            + self.rtx_sequences.capacity() * std::mem::size_of::<(u32, u16)>()
            + self.numbering.heap_bytes()
    }
}
