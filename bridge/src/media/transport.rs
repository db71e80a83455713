//! One endpoint's transport: ICE, DTLS, SRTP, and transport-wide congestion control in both
//! directions (arrival records for the feedback the bridge sends, and a send history for the
//! feedback it receives). A bridge-to-bridge relay is another user of the same type.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tutti_bwe::Pace;
use tutti_dtls::{Certificate, Dtls, Role, SrtpProfiles};
use tutti_ice::{AgentConfig, IceAgent};
use tutti_rtp::rtcp::TwccRecorder;
use tutti_rtp::rtp;
use tutti_srtp::{Context, Profile};

use super::congestion::Congestion;
use super::limits::LimitSettings;
use super::outbox::{Outbox, SLOT};
use super::paced_queue::PacedQueue;
use super::send_history::{FeedbackSummary, SendHistory};
use super::stats::Counters;
use super::{EndpointState, RemoteSetup, RemoteTransport};

/// At most this many remote addresses are remembered as validated per endpoint.
const MAX_VALIDATED_ADDRESSES: usize = 8;
/// transport-cc arrival records kept between two feedback packets.
const TWCC_HISTORY: usize = 1024;
/// Packets sent with a transport-wide sequence number that are kept for matching feedback
/// (about two seconds of a 4 Mbit/s receiver).
const SEND_HISTORY: usize = 1024;
/// Header bytes of the datagrams media goes in (see [`Transport::packet_overhead`]).
const IPV4_HEADER: usize = 20;
const IPV6_HEADER: usize = 40;
const UDP_HEADER: usize = 8;

/// Settings every endpoint shares.
pub struct EndpointSettings {
    pub consent_timeout: Duration,
    pub ice_timeout: Duration,
    pub dtls_timeout: Duration,
    pub srtp_profiles: SrtpProfiles,
    pub retransmission_cache_packets: usize,
    /// Bandwidth a receiver's allocator assumes (bit/s) unless the receiver says otherwise.
    pub receiver_bandwidth_bps: u64,
    pub speakers: SpeakerSettings,
    /// Per-endpoint and per-conference rate limits.
    pub limits: LimitSettings,
}

/// How many speakers receivers get, whatever they ask for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SpeakerSettings {
    /// Most videos any receiver gets (`None`: as many as it asks for).
    pub last_n: Option<usize>,
    /// In conferences of at least `.0` endpoints, most videos any receiver gets.
    pub large_room: Option<(usize, usize)>,
    /// Forward only the loudest this many audio streams to each receiver (`None`: all).
    pub loudest_audio: Option<usize>,
}

impl SpeakerSettings {
    /// The most videos a receiver in a conference of `members` endpoints gets.
    pub fn last_n_limit(&self, members: usize) -> Option<usize> {
        let large = self
            .large_room
            .filter(|(endpoints, _)| members >= *endpoints)
            .map(|(_, n)| n);
        match (self.last_n, large) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// What happened to a transport that the core must act on.
pub enum TransportChange {
    AddressValidated(SocketAddr),
    State(EndpointState, String),
    /// New SRTP keys: outbound state kept for returning streams no longer applies.
    NewSrtpKeys,
}

pub struct Transport {
    pub ice: IceAgent,
    dtls: Option<Dtls>,
    remote: Option<(RemoteSetup, [u8; 32])>,
    /// Where DTLS came from before ICE selected a pair.
    dtls_peer: Option<SocketAddr>,
    pub srtp_in: Option<Context>,
    pub srtp_out: Option<Context>,
    pub state: EndpointState,
    pub validated: Vec<SocketAddr>,
    /// The SSRC the bridge uses in RTCP it sends on this transport.
    pub rtcp_ssrc: u32,
    /// Arrivals of what the remote sends, for the transport-cc feedback the bridge sends.
    pub twcc: TwccRecorder,
    /// Transport-wide sequence number of the next packet the bridge sends here.
    twcc_out: u16,
    /// What the bridge sent here, for the transport-cc feedback the remote sends.
    pub sent: SendHistory,
    /// The bandwidth estimate towards the remote, its pacer and its probes.
    pub congestion: Congestion,
    /// Video the pacer holds back.
    held: PacedQueue,
    /// Packets sent past the pacer because its queue was full, not yet counted by the core.
    pub held_overflows: u64,
    /// On a relay: the far bridge's id for it, put at the end of every datagram sent.
    link_id: Option<u32>,
}

/// What became of an RTP packet written for the remote.
pub enum Paced {
    /// It may leave now, as part of this probe cluster if any.
    Now(Option<u32>),
    /// The pacer holds it.
    Held,
}

impl Transport {
    /// `seed` seeds the ICE agent's own randomness.
    pub fn new(
        ice: tutti_ice::Credentials,
        controlling: bool,
        tag: u32,
        (rtcp_ssrc, seed): (u32, u64),
        settings: &EndpointSettings,
        now: Instant,
    ) -> Transport {
        let config = AgentConfig {
            controlling,
            transaction_tag: tag,
            connect_timeout: settings.ice_timeout,
            consent_timeout: settings.consent_timeout,
            seed,
            ..AgentConfig::default()
        };
        Transport {
            ice: IceAgent::new(config, ice, now),
            dtls: None,
            remote: None,
            dtls_peer: None,
            srtp_in: None,
            srtp_out: None,
            state: EndpointState::Allocated,
            validated: Vec::new(),
            rtcp_ssrc,
            twcc: TwccRecorder::new(TWCC_HISTORY),
            twcc_out: 1,
            sent: SendHistory::new(SEND_HISTORY),
            congestion: Congestion::new(settings.receiver_bandwidth_bps),
            held: PacedQueue::default(),
            held_overflows: 0,
            link_id: None,
        }
    }

    /// Media flows both ways.
    pub fn is_connected(&self) -> bool {
        self.state == EndpointState::Connected
    }

    /// Where media goes, once connected.
    pub fn media_destination(&self) -> Option<SocketAddr> {
        if self.is_connected() {
            self.ice.selected()
        } else {
            None
        }
    }

    /// What a packet sent here costs on the wire beyond its RTP bytes: the SRTP tag, the
    /// far bridge's link id on a relay, and the UDP and IP headers. Bandwidth estimation and
    /// pacing count whole datagrams: the link carries them (on a 300 kbit/s link, an Opus
    /// packet of 100 RTP bytes is 138 bytes on the wire; counted without, the estimate settled
    /// at 0.83 of the link's rate instead of 0.95).
    pub fn packet_overhead(&self) -> usize {
        let ip = match self.ice.selected() {
            Some(SocketAddr::V6(_)) => IPV6_HEADER,
            _ => IPV4_HEADER,
        };
        let tag = self
            .srtp_out
            .as_ref()
            .map_or(0, |c| c.profile().rtp_overhead());
        let link_id = if self.link_id.is_some() {
            LINK_ID_LEN
        } else {
            0
        };
        ip + UDP_HEADER + tag + link_id
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

    /// Makes this the transport of a relay whose far bridge knows it as `link_id`.
    pub fn set_link_id(&mut self, link_id: u32) {
        self.link_id = Some(link_id);
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
        out: &mut impl Outbox,
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
        let link_id = self.link_id;
        loop {
            let ice = &mut self.ice;
            let mut sent = false;
            out.push(|slot| {
                let r = ice.poll_transmit(slot);
                sent = r.is_some();
                with_link_id(link_id, slot, r)
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
                        let n = datagram.len().min(slot.len() - LINK_ID_LEN);
                        slot[..n].copy_from_slice(&datagram[..n]);
                        with_link_id(link_id, slot, Some((to, n)))
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
                                self.srtp_in = Some(inbound);
                                changes.push(TransportChange::NewSrtpKeys);
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

    /// Lets the pacer decide about an RTP packet written for the remote (`packet`; `paced`: video,
    /// which may be held back): it leaves now, or is held (`twcc`: its transport-cc extension's
    /// id as the sender wrote it and as the remote negotiated it, for when it leaves).
    pub fn pace(
        &mut self,
        now_us: i64,
        packet: &[u8],
        twcc: Option<(u8, u8)>,
        paced: bool,
    ) -> Paced {
        let wire = packet.len() + self.packet_overhead();
        if !paced || self.held.is_empty() {
            if let Pace::Now { probe_cluster } = self.congestion.try_send(now_us, wire, paced) {
                return Paced::Now(probe_cluster);
            }
        }
        if self.held.push(packet, twcc) {
            self.congestion.hold(wire);
            return Paced::Held;
        }
        // The queue is full: the packet goes now, ahead of those held (receivers reorder;
        // dropping it would cost a NACK round trip, or the frame).
        self.held_overflows += 1;
        match self.congestion.try_send(now_us, wire, false) {
            Pace::Now { probe_cluster } => Paced::Now(probe_cluster),
            Pace::Later { .. } => Paced::Now(None),
        }
    }

    /// Sends what the pacer lets go of the packets it held.
    pub fn send_held(&mut self, now_us: i64, out: &mut impl Outbox) {
        if self.held.is_empty() {
            return;
        }
        if self.media_destination().is_none() || self.srtp_out.is_none() {
            self.forget_held();
            return;
        }
        let overhead = self.packet_overhead();
        while let Some((packet, held)) = self.held.front() {
            let len = packet.len();
            let Pace::Now { probe_cluster } =
                self.congestion.try_send(now_us, len + overhead, true)
            else {
                break;
            };
            let (held_queue, twcc_out, sent, congestion, srtp, to, link_id) = (
                &self.held,
                &mut self.twcc_out,
                &mut self.sent,
                &mut self.congestion,
                &mut self.srtp_out,
                self.ice.selected(),
                self.link_id,
            );
            out.push(|slot| {
                let (packet, _) = held_queue.front()?;
                slot.get_mut(..len)?.copy_from_slice(packet);
                let header = rtp::parse(&slot[..len]).ok()?;
                let body = &mut slot[..SLOT - super::consumer::TAG_ROOM];
                if let Some(ids) = held.twcc {
                    stamp(
                        (twcc_out, sent, congestion),
                        body,
                        (len, overhead),
                        &header,
                        ids,
                        now_us,
                        probe_cluster,
                    );
                }
                let n = srtp.as_mut()?.protect_rtp(slot, len).ok()?;
                with_link_id(link_id, slot, Some((to?, n)))
            });
            self.held.pop();
        }
    }

    /// Video packets the pacer holds now.
    pub fn held_packets(&self) -> usize {
        self.held.len()
    }

    /// Drops what the pacer holds (the remote went, or its keys changed).
    pub fn forget_held(&mut self) {
        self.held.clear();
        self.congestion.forget_held();
    }

    /// Gives a packet about to be sent here (of `len` bytes at the start of `slot`, described
    /// by `header`) this transport's next transport-wide sequence number (in the extension the
    /// sender used, `from_id`, renamed to this remote's `to_id`), records it in the send history
    /// (with the probe cluster it is part of), and encrypts it. `slot` is a whole send slot.
    pub fn send_rtp(
        &mut self,
        slot: &mut [u8],
        len: usize,
        header: &rtp::Header,
        twcc: Option<(u8, u8)>,
        now_us: i64,
        cluster: Option<u32>,
    ) -> Option<(SocketAddr, usize)> {
        let to = self.media_destination()?;
        if let Some(ids) = twcc {
            let overhead = self.packet_overhead();
            let body = slot.get_mut(..SLOT - super::consumer::TAG_ROOM)?;
            stamp(
                (&mut self.twcc_out, &mut self.sent, &mut self.congestion),
                body,
                (len, overhead),
                header,
                ids,
                now_us,
                cluster,
            );
        }
        let n = self.srtp_out.as_mut()?.protect_rtp(slot, len).ok()?;
        with_link_id(self.link_id, slot, Some((to, n)))
    }

    /// Matches a transport-cc feedback packet from the remote, received at `now_us`, against
    /// what was sent, and gives the estimator what it reports for the first time.
    pub fn on_transport_feedback(&mut self, raw: &[u8], now_us: i64) -> Option<FeedbackSummary> {
        let mut summary = FeedbackSummary::default();
        let (sent, congestion) = (&mut self.sent, &mut self.congestion);
        congestion.begin_feedback();
        let now_u32 = now_us as u32;
        tutti_rtp::rtcp::for_each_twcc_arrival(raw, |seq, arrival_us| {
            if let Some((sent_us, bytes)) =
                sent.on_feedback(seq, arrival_us.is_some(), &mut summary)
            {
                // Send times are kept modulo 2^32 µs; feedback comes within seconds.
                let send_us = now_us - i64::from(now_u32.wrapping_sub(sent_us));
                congestion.feedback_packet(seq, send_us, u32::from(bytes), arrival_us);
            }
        })
        .ok()?;
        congestion.end_feedback(now_us);
        Some(summary)
    }

    /// Encrypts an RTCP packet the bridge wrote into `out` for this remote.
    pub fn protect_rtcp(&mut self, out: &mut [u8], len: usize) -> Option<(SocketAddr, usize)> {
        let to = self.media_destination()?;
        let n = self.srtp_out.as_mut()?.protect_rtcp(out, len).ok()?;
        with_link_id(self.link_id, out, Some((to, n)))
    }

    pub fn heap_bytes(&self) -> usize {
        self.ice.heap_bytes()
            + self.dtls.as_ref().map_or(0, |d| d.heap_bytes())
            + self.srtp_in.as_ref().map_or(0, |c| c.heap_bytes())
            + self.srtp_out.as_ref().map_or(0, |c| c.heap_bytes())
            + self.twcc.heap_bytes()
            + self.sent.heap_bytes()
            + self.congestion.heap_bytes()
            + self.held.heap_bytes()
            + self.validated.capacity() * std::mem::size_of::<SocketAddr>()
    }
}

/// Bytes of the link id at the end of every datagram on a relay.
pub const LINK_ID_LEN: usize = 4;

/// Ends a datagram of `written` bytes in `slot` with the far bridge's link id, on a relay.
fn with_link_id(
    link_id: Option<u32>,
    slot: &mut [u8],
    written: Option<(SocketAddr, usize)>,
) -> Option<(SocketAddr, usize)> {
    let (to, n) = written?;
    let Some(id) = link_id else {
        return Some((to, n));
    };
    slot.get_mut(n..n + LINK_ID_LEN)?
        .copy_from_slice(&id.to_be_bytes());
    Some((to, n + LINK_ID_LEN))
}

/// Writes the transport's next transport-wide sequence number into `packet`'s extension
/// `from_id` (renamed `to_id`), and records the packet in the send history: `len` RTP bytes,
/// `overhead` more on the wire.
fn stamp(
    (next, sent, congestion): (&mut u16, &mut SendHistory, &mut Congestion),
    packet: &mut [u8],
    (len, overhead): (usize, usize),
    header: &rtp::Header,
    (from_id, to_id): (u8, u8),
    now_us: i64,
    cluster: Option<u32>,
) {
    if let Some(range) = rtp::find_extension(packet, header, from_id) {
        if rtp::write_u16_extension(packet, range, *next) {
            sent.record(*next, now_us, len + overhead);
            congestion.on_sent(*next, cluster);
            *next = next.wrapping_add(1);
            if to_id != from_id {
                rtp::rename_extension(packet, header, from_id, to_id);
            }
        }
    }
}
