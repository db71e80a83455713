//! The load loop: one thread that sends every publisher's audio and video on schedule and
//! receives on every endpoint's socket (epoll, then batched `recvmmsg` per ready socket).
//!
//! A publisher sends its audio and each of its video's simulcast layers (one `MediaSource` per
//! layer, frames of all layers at once, through one pacer); every packet takes the publisher's
//! next transport-wide sequence number when it leaves.
//!
//! Received RTP is counted from its clear header (SSRC + sequence number: a receiver that stays
//! on a source's first layer gets it under that layer's SSRC and sequence numbers, which the
//! bridge passes through; a forwarder that renumbers, Janus, sends each stream under an SSRC
//! signalled per receiver and from a sequence number of its own, whose offset to the
//! publisher's is read once from the first packet's trailer); every packet of one endpoint in
//! `sample_every` is fully verified: SRTP-decrypted with the receiver's keys (bridge and peer
//! runs), its payload trailer checked (CRC, and SSRC and sequence must be the publisher's) and
//! its latency taken from the trailer's send time to the kernel's arrival stamp on the
//! receiving socket (`SO_TIMESTAMPNS`). The trailer's CRC of a video packet starts after the
//! VP8 payload descriptor, whose PictureID a forwarder may rewrite (Janus does for simulcast). Every receiver records
//! the transport-wide sequence number of what it receives (from the clear header extension)
//! and sends transport-cc feedback for it at a fixed interval, SRTCP-protected with its own
//! context against the bridge, plain (as large) against the relay. Publishers read the bridge's
//! RTCP for PLI and FIR, which make the named layer's next frame a key frame.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context};
use tutti_bridge::media::udp::{self, RecvBatch};
use tutti_participant::media::{
    verify_trailer_from, MediaSource, Trailer, AUDIO_PTIME, TRAILER_LEN, VIDEO_FPS,
};
use tutti_rtp::codec::vp8;
use tutti_rtp::rtcp::{self, Packet, TwccRecorder};
use tutti_rtp::rtp;

use crate::setup::{Endpoint, Receives};

/// Datagrams taken from one socket per `recvmmsg`.
const RECV_BATCH: usize = 32;
/// Longest sleep in `epoll_wait`.
const MAX_WAIT: Duration = Duration::from_millis(5);
/// A packet sent this late counts as a late send: the generator could not keep its schedule.
const LATE: Duration = Duration::from_millis(5);
/// Transport-wide sequence numbers a receiver's feedback recorder holds (as the bridge's own).
const TWCC_CAPACITY: usize = 1024;
/// Largest feedback packet a receiver writes (before SRTCP).
const FEEDBACK_MTU: usize = 1200;
/// What SRTCP adds to an RTCP packet besides the tag: the E flag and index.
const SRTCP_INDEX_LEN: usize = 4;

#[derive(Clone, Copy, Debug)]
pub struct LoadConfig {
    pub warmup: Duration,
    pub window: Duration,
    /// After the window: still sending, so packets of the window can still arrive.
    pub drain: Duration,
    /// Verify (decrypt, check, time) every packet received by one endpoint in this many; the
    /// others' packets are only counted. Whole endpoints rather than scattered packets, so each
    /// verifying receiver's SRTP context sees its streams' sequence numbers without gaps (its
    /// rollover-counter estimate needs them across a 16-bit wrap).
    pub sample_every: usize,
    /// SRTP tag length to pad plain (baseline) datagrams with, so they are as large as SRTP.
    pub tag_len: usize,
    /// Video is paced at this multiple of its bitrate, as libwebrtc's pacer does (2.5); 0 sends
    /// each frame as one burst.
    pub pacing_factor: f64,
    /// Each receiver sends transport-cc feedback this often (receivers take turns, evenly
    /// spread over the interval); `None`: no feedback.
    pub feedback_interval: Option<Duration>,
}

/// The load loop calls this when the steady window starts and when it ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Boundary {
    Start,
    End,
}

#[derive(Debug, Default)]
pub struct LoadResult {
    /// Media packets sent by publishers in the window, times the endpoints receiving each.
    pub expected: u64,
    /// Of those, packets that arrived (by SSRC and sequence number).
    pub received: u64,
    /// Media packets of a known stream received over the whole run (warm-up and drain too):
    /// what a forwarder's own count of sent packets is checked against.
    pub received_total: u64,
    pub window_secs: f64,
    /// Verified packets' latencies (kernel arrival time − trailer send time), sorted: of the
    /// packets that crossed no relay (sender and receiver on one bridge).
    pub latencies_us: Vec<u32>,
    /// The same of the packets that crossed a relay (a conference split over bridges).
    pub relayed_latencies_us: Vec<u32>,
    /// Of `received`, the packets that crossed a relay, and their datagrams' bytes as the
    /// receivers got them (SRTP).
    pub relayed_received: u64,
    pub relayed_bytes: u64,
    /// Sampled packets, and RTCP packets to publishers, that failed SRTP(C) authentication or
    /// decryption.
    pub srtp_errors: u64,
    /// Sampled packets whose payload trailer failed its checks (CRC, SSRC, sequence number).
    pub payload_errors: u64,
    pub rtcp_received: u64,
    pub stun_answered: u64,
    /// RTP with an SSRC nobody sent, and datagrams of no known kind.
    pub unexpected: u64,
    /// Packets sent more than 5 ms after their schedule.
    pub late_sends: u64,
    /// transport-cc feedback packets the receivers sent in the window.
    pub feedback_sent: u64,
    /// PLI and FIR entries publishers received (each made a layer's next frame a key frame).
    pub keyframe_requests: u64,
    /// CPU used by this process over the window, as a fraction of one core.
    pub generator_cpu_util: f64,
}

struct Stream {
    /// The publishing endpoint.
    publisher: usize,
    /// A video layer (its trailer's CRC starts after the VP8 payload descriptor).
    video: bool,
    /// First sequence number sent in the window.
    first: Option<u16>,
    /// Packets sent in the window (frozen when it ends).
    sent: u32,
    /// Endpoints that receive this stream.
    receivers: u64,
}

/// How one stream arrives at one endpoint.
struct Inbound {
    stream: usize,
    /// The publisher's SSRC of the stream.
    source_ssrc: u32,
    /// The endpoint's sequence numbers minus the publisher's; unknown until a packet's trailer
    /// told (a renumbering forwarder), 0 for one that keeps them.
    offset: Option<u16>,
    /// The publisher is on another bridge: the stream crosses a relay.
    relayed: bool,
}

struct Publisher {
    endpoint: usize,
    /// One source per video layer, lowest first; the first also sends the audio.
    layers: Vec<MediaSource>,
    /// The layers' SSRCs, in the same order (what PLI and FIR name).
    layer_ssrcs: Vec<u32>,
    audio_ssrc: u32,
    twcc_ext_id: u8,
    /// The transport-wide sequence number of the next packet sent.
    twcc_seq: u16,
    next_audio: Instant,
    next_video: Instant,
    /// Video packets waiting for the pacer, and when it sends the next one.
    paced: VecDeque<Vec<u8>>,
    next_paced: Instant,
    /// Pacing rate in bytes per second (0: frames go out as bursts).
    pacing_bytes_per_s: f64,
}

impl Publisher {
    /// When the next packet is due: audio, a new video frame, or the pacer's next packet.
    fn next_due(&self) -> Instant {
        let due = self.next_audio.min(self.next_video);
        if self.paced.is_empty() {
            due
        } else {
            due.min(self.next_paced)
        }
    }

    /// The next packet due at `now`, if any.
    fn take_due(&mut self, now: Instant, now_us: u64, late: &mut u64) -> Option<Vec<u8>> {
        let (due, packet) = if !self.paced.is_empty() && self.next_paced <= now {
            let packet = self.paced.pop_front()?;
            let due = self.next_paced;
            if self.pacing_bytes_per_s > 0.0 {
                self.next_paced +=
                    Duration::from_secs_f64(packet.len() as f64 / self.pacing_bytes_per_s);
            }
            (due, packet)
        } else if self.next_audio <= now {
            let due = self.next_audio;
            self.next_audio += AUDIO_PTIME;
            (due, self.layers[0].audio_packet(now_us).rtp)
        } else if self.next_video <= now {
            if now.duration_since(self.next_video) > LATE {
                *late += 1;
            }
            self.next_video += Duration::from_secs(1) / VIDEO_FPS;
            if self.pacing_bytes_per_s <= 0.0 {
                self.next_paced = now;
            } else if self.paced.is_empty() {
                self.next_paced = self.next_paced.max(now);
            }
            // Every layer's frame of the same picture, lowest layer first.
            self.paced.extend(
                self.layers
                    .iter_mut()
                    .flat_map(|layer| layer.video_frame(now_us))
                    .map(|p| p.rtp),
            );
            return self.take_due(now, now_us, late);
        } else {
            return None;
        };
        if now.duration_since(due) > LATE {
            *late += 1;
        }
        Some(packet)
    }

    /// Makes the next frame of the layer sent under `ssrc` a key frame (after a PLI or FIR).
    fn request_keyframe(&mut self, ssrc: u32) {
        if let Some(i) = self.layer_ssrcs.iter().position(|&s| s == ssrc) {
            self.layers[i].request_keyframe();
        }
    }

    /// Stamps a packet as it leaves: the publisher's next transport-wide sequence number (the
    /// layers' sources number theirs each on its own), and the send time in the payload
    /// trailer (and its CRC), so that a packet that waited in the pacer is timed from when it
    /// actually leaves.
    fn stamp(&mut self, rtp: &mut [u8], now_us: u64) {
        let mut video = false;
        if let Ok(header) = rtp::parse(rtp) {
            video = header.ssrc != self.audio_ssrc;
            if let Some(range) = rtp::find_extension(rtp, &header, self.twcc_ext_id) {
                rtp::write_u16_extension(rtp, range, self.twcc_seq);
                self.twcc_seq = self.twcc_seq.wrapping_add(1);
            }
        }
        restamp(rtp, now_us, video);
    }
}

/// Where the trailer's CRC starts in a payload: after the VP8 payload descriptor for video (a
/// forwarder may rewrite its PictureID), at the start for audio. None: a video payload whose
/// descriptor does not parse.
fn crc_start(payload: &[u8], video: bool) -> Option<usize> {
    if video {
        vp8::parse(payload).ok().map(|d| d.payload_offset)
    } else {
        Some(0)
    }
}

/// Rewrites the send time in a packet's payload trailer and its CRC (over the payload from
/// [`crc_start`] on).
fn restamp(rtp: &mut [u8], now_us: u64, video: bool) {
    let Some((start, from)) =
        rtp_payload(rtp).and_then(|p| Some((rtp.len() - p.len(), crc_start(p, video)?)))
    else {
        return;
    };
    let end = rtp.len();
    if end < start + from + TRAILER_LEN {
        return;
    }
    let t = end - TRAILER_LEN;
    rtp[t + 10..t + 18].copy_from_slice(&now_us.to_be_bytes());
    let crc = crc32fast::hash(&rtp[start + from..end - 4]);
    rtp[end - 4..].copy_from_slice(&crc.to_be_bytes());
}

/// The trailer of a plain RTP packet, if it checks (see [`restamp`]).
fn read_trailer(rtp: &[u8], video: bool) -> Option<Trailer> {
    let payload = rtp_payload(rtp)?;
    verify_trailer_from(payload, crc_start(payload, video)?).ok()
}

#[derive(PartialEq, Eq)]
enum Phase {
    Warmup,
    Window,
    Drain,
}

struct Epoll(libc::c_int);

impl Epoll {
    fn new(endpoints: &[Endpoint]) -> anyhow::Result<Epoll> {
        // SAFETY: plain syscall; the fd is owned by the returned value.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error()).context("epoll_create1");
        }
        let epoll = Epoll(fd);
        for (i, e) in endpoints.iter().enumerate() {
            let mut event = libc::epoll_event {
                events: libc::EPOLLIN as u32,
                u64: i as u64,
            };
            // SAFETY: both fds are open; event is a valid epoll_event.
            let rc = unsafe {
                libc::epoll_ctl(
                    epoll.0,
                    libc::EPOLL_CTL_ADD,
                    e.socket.as_raw_fd(),
                    &mut event,
                )
            };
            if rc != 0 {
                return Err(std::io::Error::last_os_error()).context("epoll_ctl");
            }
        }
        Ok(epoll)
    }

    fn wait(&self, events: &mut [libc::epoll_event], timeout: Duration) -> usize {
        let ms = timeout.as_micros().div_ceil(1000).min(i32::MAX as u128) as libc::c_int;
        // SAFETY: events is a writable buffer of the given length.
        let n = unsafe { libc::epoll_wait(self.0, events.as_mut_ptr(), events.len() as i32, ms) };
        n.max(0) as usize
    }
}

impl Drop for Epoll {
    fn drop(&mut self) {
        // SAFETY: we own the fd.
        unsafe { libc::close(self.0) };
    }
}

/// Offset of the RTP payload and its length without padding.
fn rtp_payload(packet: &[u8]) -> Option<&[u8]> {
    let b0 = *packet.first()?;
    let mut start = 12 + 4 * usize::from(b0 & 0x0f);
    if b0 & 0x10 != 0 {
        let words = u16::from_be_bytes([*packet.get(start + 2)?, *packet.get(start + 3)?]);
        start += 4 + 4 * usize::from(words);
    }
    let mut end = packet.len();
    if b0 & 0x20 != 0 {
        end = end.checked_sub(usize::from(*packet.last()?))?;
    }
    packet.get(start..end)
}

/// Turns a plain RTP packet into a datagram as large as its SRTP form: RTP padding of the
/// tag's length (RFC 3550 §5.1), so receivers still find the trailer at the payload's end.
fn pad(mut rtp: Vec<u8>, tag_len: usize) -> Vec<u8> {
    if tag_len > 0 {
        rtp[0] |= 0x20;
        rtp.extend(std::iter::repeat_n(0, tag_len - 1));
        rtp.push(tag_len as u8);
    }
    rtp
}

fn header_ids(rtp: &[u8]) -> (u32, u16) {
    (
        u32::from_be_bytes([rtp[8], rtp[9], rtp[10], rtp[11]]),
        u16::from_be_bytes([rtp[2], rtp[3]]),
    )
}

/// One endpoint's transport-cc feedback state, as a receiver.
struct Feedback {
    recorder: TwccRecorder,
    /// SSRC of the latest media packet received: the feedback's media SSRC, as libwebrtc sets
    /// it.
    media_ssrc: u32,
}

impl Feedback {
    /// Sends `endpoint`'s feedback on what it received since its last one (nothing when nothing
    /// arrived): SRTCP against the bridge, against the relay plain RTCP followed by as many
    /// zeros as SRTCP adds (index and tag). Returns the number of feedback packets sent.
    fn send(
        &mut self,
        endpoint: &mut Endpoint,
        tag_len: usize,
        buf: &mut [u8],
    ) -> anyhow::Result<u64> {
        let mut sent = 0;
        let sender_ssrc = endpoint.config.audio_ssrc;
        while let Some(len) =
            self.recorder
                .write_feedback(&mut buf[..FEEDBACK_MTU], sender_ssrc, self.media_ssrc)
        {
            match &mut endpoint.session {
                Some(session) => {
                    let srtcp = session.srtp_tx.encrypt_rtcp(&buf[..len])?;
                    endpoint.socket.send_to(&srtcp, endpoint.to)?;
                }
                None => {
                    let end = len + SRTCP_INDEX_LEN + tag_len;
                    buf[len..end].fill(0);
                    endpoint.socket.send_to(&buf[..end], endpoint.to)?;
                }
            }
            sent += 1;
        }
        Ok(sent)
    }
}

/// Counts received datagrams, verifies those of sampled receivers, records every endpoint's
/// arrivals for its transport-cc feedback and takes the key frame requests in publishers'
/// RTCP.
struct Tally<'a> {
    streams: &'a [Stream],
    result: &'a mut LoadResult,
    /// SSRCs a PLI or FIR asked a key frame of.
    keyframe_requests: &'a mut Vec<u32>,
}

impl Tally<'_> {
    /// One datagram `endpoint` received, at `arrival_us` (µs on the load loop's clock: the
    /// kernel's arrival stamp for a verified receiver, else when the batch was read); `verify`:
    /// the endpoint is a verified receiver.
    #[allow(clippy::too_many_arguments)]
    fn take(
        &mut self,
        endpoint: &mut Endpoint,
        inbound: &mut HashMap<u32, Inbound>,
        feedback: &mut Feedback,
        datagram: &[u8],
        from: Option<SocketAddr>,
        arrival_us: u64,
        verify: bool,
    ) -> anyhow::Result<()> {
        let result = &mut *self.result;
        match datagram.first() {
            Some(0..=3) => {
                let (Some(session), Some(from)) = (&endpoint.session, from) else {
                    result.unexpected += 1;
                    return Ok(());
                };
                if let Some(response) = session.answer_stun(datagram, from) {
                    endpoint.socket.send_to(&response, from)?;
                    result.stun_answered += 1;
                }
            }
            Some(128..=191) if datagram.len() >= 12 => {
                if (64..=95).contains(&(datagram[1] & 0x7f)) {
                    result.rtcp_received += 1;
                    if let (true, Some(session)) = (endpoint.publishes(), &mut endpoint.session) {
                        let Ok(plain) = session.srtp_rx.decrypt_rtcp(datagram) else {
                            result.srtp_errors += 1;
                            return Ok(());
                        };
                        for packet in rtcp::packets(&plain).flatten() {
                            match packet {
                                Packet::Pli { media_ssrc, .. } => {
                                    self.keyframe_requests.push(media_ssrc)
                                }
                                Packet::Fir { entries, .. } => {
                                    self.keyframe_requests.extend(entries.map(|(ssrc, _)| ssrc))
                                }
                                _ => {}
                            }
                        }
                    }
                    return Ok(());
                }
                if let Ok(header) = rtp::parse(datagram) {
                    let twcc = rtp::find_extension(datagram, &header, endpoint.config.twcc_ext_id)
                        .and_then(|range| rtp::read_u16_extension(datagram, range));
                    if let Some(twcc) = twcc {
                        feedback.recorder.record(twcc, arrival_us as i64);
                        feedback.media_ssrc = header.ssrc;
                    }
                }
                let (ssrc, seq) = header_ids(datagram);
                let Some(route) = inbound.get_mut(&ssrc) else {
                    result.unexpected += 1;
                    return Ok(());
                };
                result.received_total += 1;
                let stream = &self.streams[route.stream];
                // A verifying receiver decrypts every packet, those outside the window too:
                // its SRTP context infers the rollover counter from the sequence numbers it
                // has seen, so a stream that wraps during the warm-up must be seen wrapping.
                // Any receiver decrypts a renumbered stream's packets until one told the
                // offset.
                let plain = match (verify || route.offset.is_none(), &mut endpoint.session) {
                    (false, _) => None,
                    (true, Some(session)) => Some(
                        session
                            .srtp_rx
                            .decrypt_rtp(datagram)
                            .map(|plain| plain.to_vec()),
                    ),
                    (true, None) => Some(Ok(datagram.to_vec())),
                };
                if route.offset.is_none() {
                    let trailer = plain
                        .as_ref()
                        .and_then(|p| p.as_ref().ok())
                        .and_then(|p| read_trailer(p, stream.video));
                    if let Some(t) = trailer.filter(|t| t.ssrc == route.source_ssrc) {
                        route.offset = Some(seq.wrapping_sub(t.seq));
                    }
                }
                let Some(offset) = route.offset else {
                    return Ok(());
                };
                let seq = seq.wrapping_sub(offset);
                let Some(first) = stream.first else {
                    return Ok(());
                };
                if u32::from(seq.wrapping_sub(first)) >= stream.sent {
                    return Ok(());
                }
                result.received += 1;
                if route.relayed {
                    result.relayed_received += 1;
                    result.relayed_bytes += datagram.len() as u64;
                }
                if !verify {
                    return Ok(());
                }
                let Some(plain) = plain else {
                    return Ok(());
                };
                let Ok(plain) = plain else {
                    result.srtp_errors += 1;
                    return Ok(());
                };
                match read_trailer(&plain, stream.video) {
                    Some(t) if t.ssrc == route.source_ssrc && t.seq == seq => {
                        let latency = arrival_us.saturating_sub(t.sent_at_us);
                        let latencies = if route.relayed {
                            &mut result.relayed_latencies_us
                        } else {
                            &mut result.latencies_us
                        };
                        latencies.push(latency.min(u32::MAX as u64) as u32);
                    }
                    _ => result.payload_errors += 1,
                }
            }
            _ => result.unexpected += 1,
        }
        Ok(())
    }
}

pub fn run(
    mut endpoints: Vec<Endpoint>,
    config: &LoadConfig,
    mut at_boundary: impl FnMut(Boundary) -> anyhow::Result<()>,
) -> anyhow::Result<LoadResult> {
    let epoch = Instant::now();
    let now_us = || epoch.elapsed().as_micros() as u64;
    let total = endpoints.len();
    let mut streams: Vec<Stream> = Vec::new();
    let mut by_ssrc: HashMap<u32, usize> = HashMap::new();
    let mut publishers = Vec::new();
    let publisher_count = endpoints.iter().filter(|e| e.publishes()).count();
    let video_interval = Duration::from_secs(1) / VIDEO_FPS;
    for (i, e) in endpoints.iter().enumerate() {
        if !e.publishes() {
            continue;
        }
        // What receivers get: the audio and the first video layer (the bridge forwards each
        // receiver the lowest layer, Janus is told to, the relay drops the others). A packet
        // of another layer that arrives counts as unexpected.
        for (ssrc, video) in [(e.config.audio_ssrc, false), (e.layers[0].ssrc, true)] {
            by_ssrc.insert(ssrc, streams.len());
            streams.push(Stream {
                publisher: i,
                video,
                first: None,
                sent: 0,
                receivers: 0,
            });
        }
        let layers = e
            .layers
            .iter()
            .map(|layer| {
                let mut cfg = e.config.clone();
                cfg.video_ssrc = layer.ssrc;
                cfg.video_rtx_ssrc = layer.rtx_ssrc;
                cfg.video_bitrate_bps = layer.bitrate_bps;
                let mut media = MediaSource::new(&cfg);
                media.set_video_size(layer.width, layer.height);
                media
            })
            .collect();
        let bitrate_bps: u32 = e.layers.iter().map(|l| l.bitrate_bps).sum();
        // Publishers start spread over a frame interval, as independent clients would.
        let k = publishers.len() as u32;
        publishers.push(Publisher {
            endpoint: i,
            layers,
            layer_ssrcs: e.layers.iter().map(|l| l.ssrc).collect(),
            audio_ssrc: e.config.audio_ssrc,
            twcc_ext_id: e.config.twcc_ext_id,
            twcc_seq: 1,
            next_audio: epoch + AUDIO_PTIME * k / publisher_count as u32,
            next_video: epoch + video_interval * k / publisher_count as u32,
            paced: VecDeque::new(),
            next_paced: epoch,
            pacing_bytes_per_s: config.pacing_factor * f64::from(bitrate_bps) / 8.0,
        });
    }
    let mut inbound = inbound_routes(&endpoints, &streams, &by_ssrc)?;
    for routes in &inbound {
        for route in routes.values() {
            streams[route.stream].receivers += 1;
        }
    }
    let mut feedbacks: Vec<Feedback> = (0..total)
        .map(|_| Feedback {
            recorder: TwccRecorder::new(TWCC_CAPACITY),
            media_ssrc: 0,
        })
        .collect();
    let mut feedback_buf = vec![0u8; FEEDBACK_MTU + SRTCP_INDEX_LEN + config.tag_len];
    // Receivers take turns: one every interval / endpoints.
    let feedback_step = config.feedback_interval.map(|i| i / total as u32);
    let mut next_feedback = epoch;
    let mut feedback_turn = 0;
    let mut keyframe_requests = Vec::new();
    if publishers.is_empty() {
        bail!("no publisher");
    }
    let epoll = Epoll::new(&endpoints)?;
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 256];
    let mut batch = RecvBatch::new(RECV_BATCH);
    let mut stamped_batch = RecvBatch::stamped(RECV_BATCH);
    for endpoint in endpoints.iter().step_by(config.sample_every) {
        udp::enable_arrival_stamps(&endpoint.socket)?;
    }
    let mut result = LoadResult::default();
    let mut phase = Phase::Warmup;
    let mut phase_end = epoch + config.warmup;
    let mut window_start = epoch;
    let mut generator_cpu = 0.0;

    loop {
        let now = Instant::now();
        if now >= phase_end {
            match phase {
                Phase::Warmup => {
                    at_boundary(Boundary::Start)?;
                    generator_cpu = crate::sys::process_cpu_seconds("self")?;
                    window_start = Instant::now();
                    phase_end = window_start + config.window;
                    phase = Phase::Window;
                }
                Phase::Window => {
                    result.window_secs = now.duration_since(window_start).as_secs_f64();
                    result.generator_cpu_util = (crate::sys::process_cpu_seconds("self")?
                        - generator_cpu)
                        / result.window_secs;
                    at_boundary(Boundary::End)?;
                    phase_end = Instant::now() + config.drain;
                    phase = Phase::Drain;
                }
                Phase::Drain => break,
            }
            continue;
        }

        // Send what is due.
        let mut next_due = phase_end;
        for p in &mut publishers {
            while let Some(mut rtp) = p.take_due(now, now_us(), &mut result.late_sends) {
                p.stamp(&mut rtp, now_us());
                let (ssrc, seq) = header_ids(&rtp);
                if phase == Phase::Window {
                    if let Some(&s) = by_ssrc.get(&ssrc) {
                        streams[s].first.get_or_insert(seq);
                        streams[s].sent += 1;
                    }
                }
                let endpoint = &mut endpoints[p.endpoint];
                let datagram = match &mut endpoint.session {
                    Some(session) => session.srtp_tx.encrypt_rtp(&rtp)?.to_vec(),
                    None => pad(rtp, config.tag_len),
                };
                endpoint.socket.send_to(&datagram, endpoint.to)?;
            }
            next_due = next_due.min(p.next_due());
        }
        if let Some(step) = feedback_step {
            while next_feedback <= now {
                let sent = feedbacks[feedback_turn].send(
                    &mut endpoints[feedback_turn],
                    config.tag_len,
                    &mut feedback_buf,
                )?;
                if phase == Phase::Window {
                    result.feedback_sent += sent;
                }
                feedback_turn = (feedback_turn + 1) % total;
                next_feedback += step;
            }
            next_due = next_due.min(next_feedback);
        }

        // Receive until the next send is due.
        let ready = epoll.wait(
            &mut events,
            next_due.saturating_duration_since(now).min(MAX_WAIT),
        );
        for event in &events[..ready] {
            let index = event.u64 as usize;
            let endpoint = &mut endpoints[index];
            let fd = endpoint.socket.as_raw_fd();
            let feedback = &mut feedbacks[index];
            let routes = &mut inbound[index];
            let mut tally = Tally {
                streams: &streams,
                result: &mut result,
                keyframe_requests: &mut keyframe_requests,
            };
            if index.is_multiple_of(config.sample_every) {
                // A verified receiver: latency up to the kernel's arrival stamp.
                loop {
                    let n = stamped_batch.recv(fd)?;
                    let (wall, mono_us) = (SystemTime::now(), now_us());
                    for i in 0..n {
                        let arrived_us = match stamped_batch.arrival(i) {
                            Some(arrival) => {
                                let queued = wall.duration_since(arrival).unwrap_or_default();
                                mono_us.saturating_sub(queued.as_micros() as u64)
                            }
                            None => mono_us,
                        };
                        let d = stamped_batch.get(i);
                        let datagram = &d.buf[..d.len.min(d.buf.len())];
                        tally.take(
                            endpoint, routes, feedback, datagram, d.from, arrived_us, true,
                        )?;
                    }
                    if n < RECV_BATCH {
                        break;
                    }
                }
            } else {
                loop {
                    let n = batch.recv(fd)?;
                    let read_us = now_us();
                    for i in 0..n {
                        let d = batch.get(i);
                        let datagram = &d.buf[..d.len.min(d.buf.len())];
                        tally.take(endpoint, routes, feedback, datagram, d.from, read_us, false)?;
                    }
                    if n < RECV_BATCH {
                        break;
                    }
                }
            }
        }
        result.keyframe_requests += keyframe_requests.len() as u64;
        for ssrc in keyframe_requests.drain(..) {
            for p in &mut publishers {
                p.request_keyframe(ssrc);
            }
        }
    }
    result.expected = streams
        .iter()
        .map(|s| u64::from(s.sent) * s.receivers)
        .sum();
    result.latencies_us.sort_unstable();
    result.relayed_latencies_us.sort_unstable();
    Ok(result)
}

/// Per endpoint, how each stream it receives arrives: by the SSRC it arrives under.
fn inbound_routes(
    endpoints: &[Endpoint],
    streams: &[Stream],
    by_ssrc: &HashMap<u32, usize>,
) -> anyhow::Result<Vec<HashMap<u32, Inbound>>> {
    endpoints
        .iter()
        .enumerate()
        .map(|(i, e)| match &e.receives {
            Receives::AllOthers => Ok(by_ssrc
                .iter()
                .filter(|&(_, &s)| streams[s].publisher != i)
                .map(|(&ssrc, &stream)| {
                    let route = Inbound {
                        stream,
                        source_ssrc: ssrc,
                        offset: Some(0),
                        relayed: endpoints[streams[stream].publisher].bridge != e.bridge,
                    };
                    (ssrc, route)
                })
                .collect()),
            Receives::Renumbered(map) => map
                .iter()
                .map(|(&arrives, &source)| {
                    let &stream = by_ssrc.get(&source).with_context(|| {
                        format!("endpoint {i} receives SSRC {source}, which no publisher sends")
                    })?;
                    let route = Inbound {
                        stream,
                        source_ssrc: source,
                        offset: None,
                        relayed: false,
                    };
                    Ok((arrives, route))
                })
                .collect(),
        })
        .collect()
}

/// The value at quantile `q` of sorted samples (NaN when there are none).
pub fn percentile(sorted: &[u32], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    f64::from(sorted[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_keeps_the_payload_and_trailer() {
        let rtp = vec![0x80, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 7, 1, 2, 3];
        let padded = pad(rtp.clone(), 16);
        assert_eq!(padded.len(), rtp.len() + 16);
        assert_eq!(rtp_payload(&padded), Some(&[1u8, 2, 3][..]));
        assert_eq!(rtp_payload(&rtp), Some(&[1u8, 2, 3][..]));
    }

    #[test]
    fn video_trailers_are_checked_after_the_vp8_descriptor() {
        use tutti_participant::media::{build_rtp, vp8_descriptor, RtpFields};
        let fields = RtpFields {
            payload_type: 100,
            marker: false,
            seq: 7,
            timestamp: 0,
            ssrc: 42,
            twcc_ext_id: 5,
            twcc_seq: 1,
            audio_level: None,
        };
        let trailer = Trailer {
            ssrc: 42,
            seq: 7,
            sent_at_us: 1,
        };
        let mut payload = vp8_descriptor(true, 300).to_vec();
        payload.extend_from_slice(&[0x10, 0x02, 0x00, 9, 9, 9]);
        tutti_participant::media::append_trailer(&mut payload, trailer);
        let mut rtp = build_rtp(&fields, &payload);
        restamp(&mut rtp, 1234, true);
        let stamped = Trailer {
            sent_at_us: 1234,
            ..trailer
        };
        assert_eq!(read_trailer(&rtp, true), Some(stamped));
        // The PictureID (the descriptor's last two octets) rewritten, as Janus does.
        let descriptor_end = rtp.len() - payload.len() + 4;
        rtp[descriptor_end - 1] ^= 0x0f;
        assert_eq!(read_trailer(&rtp, true), Some(stamped));
        assert_eq!(read_trailer(&rtp, false), None);
        rtp[descriptor_end + 3] ^= 1;
        assert_eq!(read_trailer(&rtp, true), None);

        let mut audio = build_rtp(&fields, &payload);
        restamp(&mut audio, 99, false);
        assert_eq!(read_trailer(&audio, false).map(|t| t.sent_at_us), Some(99));
    }

    #[test]
    fn percentiles() {
        let v: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&v, 0.5), 51.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert!(percentile(&[], 0.5).is_nan());
    }
}
