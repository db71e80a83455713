//! A WebRTC participant without sockets: [`SimPeer`] runs str0m (sans-IO, RTP mode, direct API,
//! no SDP) on the simulated clock and network, sends browser-shaped Opus and VP8 or H.264 media
//! and records everything it receives.
//!
//! # Against the bridge
//!
//! By default it is what a browser is to Tutti's bridge: ICE **controlled** (the bridge is a
//! controlling full agent), DTLS **active** (client; the bridge is the DTLS 1.2 server), one
//! BUNDLEd, rtcp-muxed transport, Opus on payload type 111, VP8 on 100 with RTX on 96 (apt 100),
//! H.264 on 107 with RTX on 99 (accepted always, sent when [`PeerConfig::video_codec`] says so),
//! and the header extensions of Jicofo's offer: ssrc-audio-level 1, transport-wide-cc 5 (the id
//! `tests/participant` uses), sdes:mid 10 (see [`PeerConfig`]). str0m offers the SRTP profiles
//! AEAD_AES_256_GCM, AEAD_AES_128_GCM and AES_CM_128_HMAC_SHA1_80 and lets the DTLS server
//! choose, so the bridge's profile setting decides which one is used. The bridge's in-memory
//! tests (`bridge/tests/sim_*.rs`) run it against the bridge's own core, with both SRTP
//! profiles. (OpenSSL times its DTLS retransmissions by the real clock, which does not
//! move in a simulation: a handshake datagram the network loses is recovered by str0m's
//! retransmissions, which run on simulated time, not by the bridge's.)
//!
//! Signalling is by hand, as the focus does it over Jingle: [`SimPeer::local`] gives the ICE
//! credentials, the sha-256 fingerprint and the host candidate to put in the bridge's endpoint,
//! [`SimPeer::set_remote`] takes the bridge's. Remote sources must be announced with
//! [`SimPeer::expect_audio`] / [`SimPeer::expect_video`] (what `source-add` does); str0m drops
//! RTP of SSRCs it was not told about (counted in [`PeerStats::unknown_ssrc_packets`]). A
//! bridge that switches a receiver between a sender's simulcast layers sends one SSRC of its own
//! per remote video source: announce it with [`SimPeer::expect_video_from`] and the sender's
//! layer SSRCs (see "Layer switching" below).
//!
//! # Media
//!
//! With [`SimPeer::set_sending`] on and the transport up, the peer writes an Opus packet every
//! 20 ms and a video frame every 1/`video_fps` s on each simulcast layer, at exactly those
//! simulated instants (they are part of its [`Node::poll_timeout`]). A frame is split into
//! packets of at most [`MAX_PAYLOAD`] bytes; the first frame of a layer, one every
//! `keyframe_interval` and the next one after a PLI or FIR for that layer's SSRC are key frames
//! (3× larger). Every payload ends with the trailer of `tutti_participant::media` (magic, SSRC,
//! the sender's sequence number, send time in µs since `start`, CRC32 of everything before it),
//! so a receiver detects any corruption, and a receiver behind a renumbering bridge still knows
//! the sender's SSRC and sequence number. Every packet carries the transport-wide-cc extension
//! (str0m numbers them).
//!
//! Each layer has a picture size ([`VideoLayer::height`], 16:9): [`PeerConfig::new`]'s single
//! layer is 640x360 (so its key frames are byte for byte what they were before sizes existed),
//! [`PeerConfig::simulcast`]'s top layer 1280x720 and each lower one half as high. Key frames
//! carry it: the VP8 key frame header, the H.264 SPS.
//!
//! VP8 ([`VideoCodec::Vp8`], the default): an RFC 7741 descriptor with a 15-bit PictureID
//! (consecutive per layer) in every packet, the VP8 frame header at the start of each frame.
//! With [`PeerConfig::temporal_layers`] 2 or 3 every packet's descriptor also has TL0PICIDX and
//! TID (no KEYIDX). TIDs follow libwebrtc's patterns from each TID 0 frame on: 0, 1 for two
//! layers, 0, 2, 1, 2 for three; a key frame is always TID 0 and starts the pattern over.
//! TL0PICIDX grows by one on each TID 0 frame and the other frames carry that of the TID 0 frame
//! before them. Y (layer sync) is set on the first frame of each layer > 0 after a TID 0 frame
//! (it refers to that frame only; the TID 2 frame after a TID 1 one refers to both): every TID 1
//! frame of two layers, the first TID 2 and the TID 1 frame of each cycle of three. All frames
//! of a layer are the same size, so a temporal layer's share of the bitrate is its share of the
//! frames (three layers: TL0 ¼, TL1 ¼, TL2 ½).
//!
//! H.264 ([`VideoCodec::H264`], packetization mode 1, Constrained Baseline 42e01f): a key frame
//! is a STAP-A with the layer's SPS (a real one, encoding its size) and PPS, then the IDR slice;
//! a delta frame a non-IDR slice; a slice goes in one single NAL unit packet if it fits, in FU-A
//! fragments otherwise. Slices begin with `first_mb_in_slice` 0 (an access unit start for a
//! parser); nothing else in them is decodable. The trailer ends every payload as for VP8: inside
//! the single NAL unit or the FU-A fragment, and in the STAP-A as the body of a last, filler
//! data NAL unit so that the aggregation parses. Temporal layers are VP8 only.
//!
//! Simulcast layers ([`PeerConfig::simulcast`]) are separate SSRCs (each with its RTX SSRC) in
//! the video section, as Jitsi clients send them. Each has a rid ([`VideoLayer::rid`]: "q", "h",
//! "f" from the lowest of three), which str0m needs internally anyway; it goes on the wire only
//! with [`PeerConfig::rid_extensions`], which maps sdes:rtp-stream-id and
//! sdes:repaired-rtp-stream-id. Then **every** media packet of a layer carries its rid (written
//! by the peer, whereas libwebrtc and str0m on its own stop once an RTCP receiver report shows
//! the SSRC is bound), every RTX packet the repaired rid (str0m does that), and the SSRCs are
//! signalled all the same.
//!
//! [`SimPeer::restart`] starts a new session like a browser's new peer connection: new ICE
//! credentials and certificate, same SSRCs, new numbering.
//!
//! # NACK / RTX
//!
//! str0m's own machinery works as in a browser: a receiver NACKs gaps in video streams that have
//! an RTX SSRC (not audio), a sender answers from its send buffer over RTX. Both can be turned
//! off ([`PeerConfig::send_nacks`], [`PeerConfig::answer_nacks`]).
//!
//! # What is observable
//!
//! With str0m's raw-packet events on, the peer sees every RTCP packet it receives and sends,
//! parsed: SR, RR (with report blocks), SDES, BYE, XR, NACK, PLI, FIR, transport-cc feedback,
//! REMB and application feedback ([`RtcpCounts`]). It can *send* PLI, FIR and REMB on demand, but
//! **not NACK**: str0m generates NACKs only from the gaps it sees itself and has no API to send
//! one for a given sequence number (drop a packet on the network to provoke one). str0m also
//! drops duplicate RTP before any event; [`RxStream::wire_duplicates`] counts them from the
//! cleartext RTP header of each datagram instead (assuming one numbering per SSRC: a sender
//! whose numbering jumps back into a range already seen, without a bridge renumbering it, shows
//! as duplicates there).
//!
//! Per received packet ([`RxPacket`]): the sender SSRC and sequence number from the trailer,
//! frame starts and key frames (VP8 from the descriptor and frame header, H.264 with
//! `tutti_rtp::codec::frame_info`), and VP8's PictureID, TL0PICIDX, TID and Y. With the rid
//! extensions mapped a stream records the rids its packets carry ([`RxStream::rid`]).
//!
//! # Layer switching
//!
//! A stream announced with [`SimPeer::expect_video_from`] accepts payloads whose trailer names
//! any of the given sender SSRCs ([`RxStream::payload_errors`] counts the others and failed
//! checksums). [`RxStream::layers_seen`] and [`RxStream::switches`] give, in sequence order,
//! which sender each run of packets came from and whether a switch happened at the start of a
//! key frame; [`RxStream::timestamps_monotonic`] and [`RxStream::picture_ids_continuous`] check
//! what the bridge must keep continuous across a switch (sequence numbers:
//! [`RxStream::is_continuous`]). [`RxStream::sequence_offset`] is relative to the trailer's
//! per-sender numbering, so it changes at each switch.
//!
//! # Randomness
//!
//! The peer's own choices (SSRCs unless given, initial sequence numbers and timestamps, payload
//! sizes, ICE credentials) come from `PeerConfig::seed`. str0m's DTLS (certificate, handshake
//! randoms) and a few internal ids draw from the system's randomness, so two runs exchange
//! different bytes; only the network layer's trace is reproducible byte for byte.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use str0m::bwe::Bitrate;
use str0m::format::{Codec, FormatParams};
use str0m::ice::IceCreds;
use str0m::media::{Frequency, KeyframeRequestKind, MediaKind, Mid, Rid};
use str0m::net::{Protocol, Receive};
use str0m::rtp::rtcp::Rtcp;
use str0m::rtp::{Extension, ExtensionValues, RawPacket, RtpWrite, SeqNo, Ssrc};
use str0m::{Candidate, CandidateKind, Event, IceConnectionState, Input, Output, Rtc};
use tutti_participant::media::{
    append_trailer, parse_vp8, verify_trailer, vp8_descriptor, vp8_frame_header_sized,
    vp8_temporal_descriptor, Trailer, TRAILER_LEN, VP8_DESCRIPTOR_LEN, VP8_TEMPORAL_DESCRIPTOR_LEN,
};
use tutti_rtp::codec::{frame_info, Codec as PayloadCodec, Details};

use crate::h264;

use crate::sim::{Node, Outbox};

/// Largest RTP payload the peer writes (the SRTP datagram stays under ~1,160 bytes).
pub const MAX_PAYLOAD: usize = 1100;
/// Interval between Opus packets.
pub const AUDIO_PTIME: Duration = Duration::from_millis(20);
/// Keyframes are this many times larger than a delta frame, as with real encoders.
const KEYFRAME_SIZE_FACTOR: usize = 3;
/// The mids of the peer's two media sections.
pub const AUDIO_MID: &str = "audio";
pub const VIDEO_MID: &str = "video";

/// One simulcast layer (or the only video stream).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VideoLayer {
    pub ssrc: u32,
    /// RTX SSRC; without one nothing is retransmitted.
    pub rtx: Option<u32>,
    pub bitrate_bps: u32,
    /// Picture height in pixels, written into key frames (VP8 frame header, H264 SPS); the
    /// width is [`VideoLayer::width`].
    pub height: u16,
    /// The layer's rid (RFC 8851), sent in the rtp-stream-id header extension when
    /// [`PeerConfig::rid_extensions`] maps it (see the module docs).
    pub rid: Option<String>,
}

impl VideoLayer {
    /// 16:9: `height` × 16 / 9, rounded.
    pub fn width(&self) -> u16 {
        ((u32::from(self.height) * 16 + 4) / 9) as u16
    }
}

/// The codec a peer's video is encoded with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum VideoCodec {
    /// VP8 on [`PeerConfig::vp8_pt`].
    #[default]
    Vp8,
    /// H.264 (packetization mode 1, Constrained Baseline 42e01f) on [`PeerConfig::h264_pt`].
    H264,
}

/// The rids [`PeerConfig::simulcast`] gives 1, 2 or 3 layers, lowest first.
const RIDS: [&str; 3] = ["q", "h", "f"];
/// Height of the top simulcast layer; each lower one is half the next.
const TOP_HEIGHT: u16 = 720;

/// How a [`SimPeer`] is set up. `PeerConfig::new` gives a browser-like participant.
#[derive(Clone, Debug)]
pub struct PeerConfig {
    pub name: String,
    /// Its host candidate; the only address it sends from and receives on.
    pub addr: SocketAddr,
    /// Seeds the peer's own random choices (see the module docs).
    pub seed: u64,
    /// false (default): controlled, as a browser facing the bridge.
    pub ice_controlling: bool,
    /// true (default): DTLS client.
    pub dtls_active: bool,
    pub opus_pt: u8,
    pub vp8_pt: u8,
    /// RTX payload type of VP8.
    pub rtx_pt: u8,
    /// H.264 and its RTX payload types (Jitsi's 107 and 99 by default); both peers of a call
    /// always accept H.264, [`PeerConfig::video_codec`] says what this one sends.
    pub h264_pt: u8,
    pub h264_rtx_pt: u8,
    pub video_codec: VideoCodec,
    /// VP8 temporal layers: 1 (default) writes no TL0PICIDX or TID; 2 or 3 write them in
    /// every packet (more counts as 3; see the module docs). Ignored for H.264.
    pub temporal_layers: u8,
    /// One-byte header extension ids; None leaves the extension out.
    pub audio_level_ext: Option<u8>,
    pub twcc_ext: Option<u8>,
    pub mid_ext: Option<u8>,
    pub abs_send_time_ext: Option<u8>,
    /// One-byte header extension ids of sdes:rtp-stream-id and sdes:repaired-rtp-stream-id;
    /// with them every video packet of a layer with a rid carries it (see the module docs).
    pub rid_extensions: Option<(u8, u8)>,
    /// The audio SSRC it sends, if it sends audio.
    pub audio: Option<u32>,
    /// Its video layers, lowest first; empty for no video.
    pub video: Vec<VideoLayer>,
    pub video_fps: u32,
    pub keyframe_interval: Duration,
    /// Whether it NACKs losses on received video (streams with RTX).
    pub send_nacks: bool,
    /// Whether its video can be retransmitted when NACKed.
    pub answer_nacks: bool,
    /// Sends transport-cc feedback for what it receives.
    pub twcc_feedback: bool,
}

impl PeerConfig {
    /// Audio, one VP8 video layer of 1 Mbit/s with RTX, 640x360 and no rid, 30 fps, a key frame
    /// every 3 s, no temporal layers, SSRCs drawn from `seed`, controlled ICE, DTLS client, no
    /// rid extensions.
    pub fn new(name: &str, addr: SocketAddr, seed: u64) -> PeerConfig {
        let mut rng = StdRng::seed_from_u64(seed ^ 0x5353_5243);
        let mut ssrcs = HashSet::new();
        let mut ssrc = || loop {
            let s: u32 = rng.random();
            if s != 0 && ssrcs.insert(s) {
                return s;
            }
        };
        PeerConfig {
            name: name.to_owned(),
            addr,
            seed,
            ice_controlling: false,
            dtls_active: true,
            opus_pt: 111,
            vp8_pt: 100,
            rtx_pt: 96,
            h264_pt: 107,
            h264_rtx_pt: 99,
            video_codec: VideoCodec::Vp8,
            temporal_layers: 1,
            audio_level_ext: Some(1),
            twcc_ext: Some(5),
            mid_ext: Some(10),
            abs_send_time_ext: None,
            rid_extensions: None,
            audio: Some(ssrc()),
            video: vec![VideoLayer {
                ssrc: ssrc(),
                rtx: Some(ssrc()),
                bitrate_bps: 1_000_000,
                height: 360,
                rid: None,
            }],
            video_fps: 30,
            keyframe_interval: Duration::from_secs(3),
            send_nacks: true,
            answer_nacks: true,
            twcc_feedback: true,
        }
    }

    /// Replaces the video by `layers` simulcast layers (SSRC and RTX SSRC each, drawn from the
    /// seed), the top one at `top_bps` and 720 pixels high, each lower one a quarter of the
    /// next's bitrate and half its height (3 layers: 320x180, 640x360, 1280x720). Rids, lowest
    /// first: "f" for one layer, "h", "f" for two, "q", "h", "f" for three, the layer's index
    /// ("0", "1", ...) beyond.
    pub fn simulcast(mut self, layers: usize, top_bps: u32) -> PeerConfig {
        let mut rng = StdRng::seed_from_u64(self.seed ^ 0x5349_4d55);
        let mut taken: HashSet<u32> = self.audio.into_iter().collect();
        let mut ssrc = || loop {
            let s: u32 = rng.random();
            if s != 0 && taken.insert(s) {
                return s;
            }
        };
        self.video = (0..layers)
            .map(|i| {
                let below_top = layers - 1 - i;
                VideoLayer {
                    ssrc: ssrc(),
                    rtx: Some(ssrc()),
                    bitrate_bps: top_bps >> (2 * below_top),
                    height: TOP_HEIGHT.checked_shr(below_top as u32).unwrap_or(0).max(2),
                    rid: Some(if layers <= RIDS.len() {
                        RIDS[RIDS.len() - 1 - below_top].to_owned()
                    } else {
                        i.to_string()
                    }),
                }
            })
            .collect();
        self
    }
}

/// What the other side needs to reach this peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalParams {
    pub ufrag: String,
    pub pwd: String,
    /// sha-256 of its DTLS certificate.
    pub fingerprint: [u8; 32],
    pub candidate: SocketAddr,
    pub priority: u32,
}

/// One received RTP packet (after SRTP, RTX unwrapped).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RxPacket {
    /// Extended sequence number as received (in the receiver's numbering).
    pub seq: u64,
    pub timestamp: u32,
    pub marker: bool,
    pub arrived: Instant,
    /// It arrived only as an RTX retransmission.
    pub via_rtx: bool,
    /// The SSRC the trailer names when its CRC holds, even one the stream does not allow
    /// (counted in [`RxStream::payload_errors`]): which sender (layer) the packet came from.
    pub sender_ssrc: Option<u32>,
    /// The sender's sequence number from the trailer; None when the payload failed the check
    /// or names an SSRC the stream does not allow.
    pub sender_seq: Option<u16>,
    /// Send time from the trailer, µs since the sender's `start` (None as `sender_seq`).
    pub sent_at_us: Option<u64>,
    /// The packet begins a frame. VP8: S=1, partition 0. H264: `tutti_rtp`'s
    /// `FrameInfo::starts_frame` (a NAL unit that can begin an access unit: the SPS STAP-A of
    /// a key frame, and a slice's first packet, the IDR slice's too).
    pub start_of_frame: bool,
    /// The packet begins a frame and key-frame data. VP8: a key frame's first packet. H264: a
    /// packet carrying an SPS, or the first packet of an IDR picture, so both the STAP-A and
    /// the first IDR fragment of a SimPeer key frame are marked ([`RxStream::keyframes`] counts
    /// frames).
    pub keyframe: bool,
    /// The VP8 descriptor's PictureID, TL0PICIDX, TID and Y bit (None / false when absent, and
    /// for H264 and audio).
    pub picture_id: Option<u16>,
    pub tl0_pic_idx: Option<u8>,
    pub temporal_id: Option<u8>,
    pub layer_sync: bool,
    pub payload_len: usize,
}

/// A change of the sender SSRC named by the payload trailers of a received stream: a bridge
/// moving the receiver to another simulcast layer (see [`RxStream::switches`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Switch {
    /// Arrival of the first packet (in sequence order) from the new sender.
    pub at: Instant,
    pub from: u32,
    pub to: u32,
    /// That packet begins a key frame ([`RxPacket::start_of_frame`] and
    /// [`RxPacket::keyframe`]), as a switch must.
    pub at_keyframe: bool,
}

/// One frame as it arrived: the packets of one RTP timestamp.
struct Frame {
    lo: u64,
    hi: u64,
    count: u64,
    start: bool,
    end: bool,
    key: bool,
    /// When its last packet arrived.
    complete_at: Instant,
}

impl Frame {
    /// Its first and last packet, and none missing between them.
    fn complete(&self) -> bool {
        self.start && self.end && self.count == self.hi - self.lo + 1
    }
}

/// Frames of a received stream, grouped by RTP timestamp.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrameCounts {
    /// Frames with their first packet, their marker packet and every packet between.
    pub complete: usize,
    /// Frames of which some packet arrived but not all.
    pub incomplete: usize,
    /// Complete key frames.
    pub keyframes: usize,
}

/// Everything received on one remote SSRC.
#[derive(Clone, Debug)]
pub struct RxStream {
    pub ssrc: u32,
    pub rtx: Option<u32>,
    pub kind: MediaKind,
    /// The SSRCs payload trailers may name: `[ssrc]` ([`SimPeer::expect_video`]), or the
    /// sender's layers for a bridge's output SSRC ([`SimPeer::expect_video_from`]).
    pub senders: Vec<u32>,
    /// In arrival order. str0m passes on each sequence number once.
    pub packets: Vec<RxPacket>,
    /// Payloads failing the trailer check, or whose trailer names an SSRC not in `senders`.
    pub payload_errors: u64,
    /// RTX packets with a payload that arrived for this stream (useful or not).
    pub rtx_packets: u64,
    /// RTX packets that were padding only (bandwidth probes).
    pub rtx_padding: u64,
    /// Datagrams seen on the wire with this SSRC (before SRTP), and how many repeated a
    /// sequence number already seen.
    pub wire_packets: u64,
    pub wire_duplicates: u64,
    /// Receiver sequence number minus the trailer's (sender's) sequence number, first of the
    /// first verified packet, then of the latest verified packet that arrived in order (above
    /// every sequence number received before it), and how many such packets changed it. The
    /// trailer's number is per sender SSRC, so a bridge renumbering a restarted source changes
    /// it once per restart, and one switching layers once per switch; a late packet (a
    /// retransmission from before a switch) does not count.
    pub sequence_offset: Option<u16>,
    pub offset_changes: u64,
    /// The rid (sdes:rtp-stream-id) of the latest packet on `ssrc` that carried one, and how
    /// many did; the repaired-rtp-stream-id of the latest RTX packet that carried one. Seen
    /// only when this peer maps the extensions ([`PeerConfig::rid_extensions`]).
    pub rid: Option<String>,
    pub rid_packets: u64,
    pub repaired_rid: Option<String>,
    /// Every MID (sdes:mid, when [`PeerConfig::mid_ext`] maps it) the packets on `ssrc` and on
    /// its RTX SSRC carried, with how many carried each; and how many carried none.
    pub mids: Vec<(String, u64)>,
    pub without_mid: u64,
    highest_seq: Option<u64>,
    wire_seen: HashSet<u64>,
    wire_last: Option<u64>,
}

impl RxStream {
    fn new(ssrc: u32, rtx: Option<u32>, kind: MediaKind, senders: &[u32]) -> RxStream {
        RxStream {
            ssrc,
            rtx,
            kind,
            senders: senders.to_vec(),
            packets: Vec::new(),
            payload_errors: 0,
            rtx_packets: 0,
            rtx_padding: 0,
            wire_packets: 0,
            wire_duplicates: 0,
            sequence_offset: None,
            offset_changes: 0,
            rid: None,
            rid_packets: 0,
            repaired_rid: None,
            mids: Vec::new(),
            without_mid: 0,
            highest_seq: None,
            wire_seen: HashSet::new(),
            wire_last: None,
        }
    }

    pub fn received(&self) -> usize {
        self.packets.len()
    }

    fn count_mid(&mut self, mid: Option<Mid>) {
        let Some(mid) = mid else {
            self.without_mid += 1;
            return;
        };
        match self.mids.iter_mut().find(|(m, _)| m.as_str() == &*mid) {
            Some((_, n)) => *n += 1,
            None => self.mids.push((mid.to_string(), 1)),
        }
    }

    /// Sequence numbers between the lowest and the highest received that never arrived.
    pub fn missing(&self) -> Vec<u64> {
        let seqs: std::collections::BTreeSet<u64> = self.packets.iter().map(|p| p.seq).collect();
        let (Some(&lo), Some(&hi)) = (seqs.first(), seqs.last()) else {
            return Vec::new();
        };
        (lo..=hi).filter(|s| !seqs.contains(s)).collect()
    }

    /// No sequence number missing between the first and the last received.
    pub fn is_continuous(&self) -> bool {
        self.missing().is_empty()
    }

    /// Packets that arrived after a later one.
    pub fn out_of_order(&self) -> usize {
        let mut highest = None;
        let mut late = 0;
        for p in &self.packets {
            match highest {
                Some(h) if p.seq < h => late += 1,
                _ => highest = Some(p.seq),
            }
        }
        late
    }

    /// Packets recovered by RTX.
    pub fn recovered(&self) -> usize {
        self.packets.iter().filter(|p| p.via_rtx).count()
    }

    /// Key frames of which a packet marked [`RxPacket::keyframe`] arrived (distinct RTP
    /// timestamps: an H264 key frame has two such packets).
    pub fn keyframes(&self) -> usize {
        self.packets
            .iter()
            .filter(|p| p.keyframe)
            .map(|p| p.timestamp)
            .collect::<HashSet<u32>>()
            .len()
    }

    /// The packets sorted by sequence number.
    fn in_sequence_order(&self) -> Vec<&RxPacket> {
        let mut packets: Vec<&RxPacket> = self.packets.iter().collect();
        packets.sort_by_key(|p| p.seq);
        packets
    }

    /// Runs of the sender SSRC the trailers name, in sequence order: the first packet of each
    /// run and its sender. Packets without a verified trailer are skipped.
    fn sender_runs(&self) -> Vec<(&RxPacket, u32)> {
        let mut runs: Vec<(&RxPacket, u32)> = Vec::new();
        for p in self.in_sequence_order() {
            let Some(sender) = p.sender_ssrc else {
                continue;
            };
            if runs.last().is_none_or(|&(_, last)| last != sender) {
                runs.push((p, sender));
            }
        }
        runs
    }

    /// Which sender SSRC (simulcast layer) the stream carried, run by run in sequence order:
    /// the arrival of each run's first packet and the sender.
    pub fn layers_seen(&self) -> Vec<(Instant, u32)> {
        self.sender_runs()
            .into_iter()
            .map(|(p, sender)| (p.arrived, sender))
            .collect()
    }

    /// Every change of sender SSRC in sequence order, with whether it happened at the start of
    /// a key frame.
    pub fn switches(&self) -> Vec<Switch> {
        self.sender_runs()
            .windows(2)
            .map(|w| Switch {
                at: w[1].0.arrived,
                from: w[0].1,
                to: w[1].1,
                at_keyframe: w[1].0.start_of_frame && w[1].0.keyframe,
            })
            .collect()
    }

    /// RTP timestamps never go back in sequence order (differences taken modulo 2^32 as
    /// signed, so a wrap is a step forward).
    pub fn timestamps_monotonic(&self) -> bool {
        self.in_sequence_order()
            .windows(2)
            .all(|w| w[1].timestamp.wrapping_sub(w[0].timestamp) as i32 >= 0)
    }

    /// VP8 PictureIDs (15 bits, wrapping) are the same within a frame (RTP timestamp) and grow
    /// by exactly 1 from frame to frame in sequence order; across missing sequence numbers
    /// they may grow by up to one more per missing packet. Packets without a PictureID are
    /// ignored (H264, audio: trivially true).
    pub fn picture_ids_continuous(&self) -> bool {
        let packets: Vec<(&RxPacket, u16)> = self
            .in_sequence_order()
            .into_iter()
            .filter_map(|p| Some((p, p.picture_id?)))
            .collect();
        packets.windows(2).all(|w| {
            let ((a, pid_a), (b, pid_b)) = (w[0], w[1]);
            let step = u64::from(pid_b.wrapping_sub(pid_a) & 0x7fff);
            if a.timestamp == b.timestamp {
                step == 0
            } else {
                (1..=b.seq - a.seq).contains(&step)
            }
        })
    }

    /// When each video frame could be decoded, in sequence order, by a decoder that needs
    /// every frame since the last key frame (no temporal layers): a complete key frame, or a
    /// complete frame right after one that could be decoded (nothing missing between them),
    /// once its last packet arrived and the frame before it was decoded. A frame is its
    /// packets with one RTP timestamp: a packet written with another timestamp (a
    /// retransmission the bridge wrote wrong) belongs to no frame, and its own stays
    /// incomplete, as in a browser's jitter buffer.
    pub fn decodable_at(&self) -> Vec<Instant> {
        let mut decoded = Vec::new();
        // The last frame decoded: its highest sequence number and when.
        let mut chain: Option<(u64, Instant)> = None;
        for f in self.assemble() {
            let follows = chain.filter(|&(hi, _)| f.lo == hi + 1);
            chain = match (f.complete(), f.key, follows) {
                (true, true, _) | (true, false, Some(_)) => {
                    let at = follows.map_or(f.complete_at, |(_, t)| t.max(f.complete_at));
                    decoded.push(at);
                    Some((f.hi, at))
                }
                _ => None,
            };
        }
        decoded
    }

    /// Frame completeness (video; every audio packet is a frame of its own).
    pub fn frames(&self) -> FrameCounts {
        let mut counts = FrameCounts::default();
        for f in self.assemble() {
            if f.complete() {
                counts.complete += 1;
                counts.keyframes += usize::from(f.key);
            } else {
                counts.incomplete += 1;
            }
        }
        counts
    }

    /// The frames of what arrived, in sequence order: the packets of each RTP timestamp (every
    /// audio packet starts and ends its frame).
    fn assemble(&self) -> Vec<Frame> {
        let audio = self.kind == MediaKind::Audio;
        let mut frames: BTreeMap<u32, Frame> = BTreeMap::new();
        for p in &self.packets {
            let f = frames.entry(p.timestamp).or_insert(Frame {
                lo: p.seq,
                hi: p.seq,
                count: 0,
                start: false,
                end: false,
                key: false,
                complete_at: p.arrived,
            });
            f.lo = f.lo.min(p.seq);
            f.hi = f.hi.max(p.seq);
            f.count += 1;
            f.start |= audio || p.start_of_frame;
            f.end |= audio || p.marker;
            f.key |= p.keyframe;
            f.complete_at = f.complete_at.max(p.arrived);
        }
        let mut frames: Vec<Frame> = frames.into_values().collect();
        frames.sort_by_key(|f| f.lo);
        frames
    }

    /// Receive time minus the trailer's send time, of every verified packet (µs; the sender
    /// and receiver must share `start`).
    pub fn latencies_us(&self, start: Instant) -> Vec<i64> {
        self.packets
            .iter()
            .filter_map(|p| {
                let sent = p.sent_at_us? as i64;
                Some((p.arrived - start).as_micros() as i64 - sent)
            })
            .collect()
    }

    fn on_wire(&mut self, seq: u16) {
        self.wire_packets += 1;
        let ext = extend_seq(self.wire_last, seq);
        self.wire_last = Some(self.wire_last.map_or(ext, |l| l.max(ext)));
        if !self.wire_seen.insert(ext) {
            self.wire_duplicates += 1;
        }
    }
}

/// Extends a 16-bit sequence number next to the highest seen so far.
fn extend_seq(last: Option<u64>, seq: u16) -> u64 {
    let Some(last) = last else {
        return u64::from(seq) + (1 << 16);
    };
    let base = last & !0xffff;
    let candidates = [base.wrapping_sub(1 << 16), base, base + (1 << 16)];
    candidates
        .iter()
        .map(|b| b + u64::from(seq))
        .min_by_key(|c| c.abs_diff(last))
        .expect("three candidates")
}

/// What one direction of RTCP carried, packet by packet.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RtcpCounts {
    pub sender_reports: u64,
    pub receiver_reports: u64,
    /// Latest report block per reported (media) SSRC, from SRs and RRs.
    pub report_blocks: HashMap<u32, ReportBlock>,
    pub sdes: u64,
    pub byes: u64,
    pub extended_reports: u64,
    /// NACK packets, and the sequence numbers they asked for, per media SSRC.
    pub nack_packets: u64,
    pub nacked: HashMap<u32, u64>,
    /// PLIs and FIR entries per media SSRC.
    pub plis: HashMap<u32, u64>,
    pub firs: HashMap<u32, u64>,
    pub twcc_feedbacks: u64,
    pub rembs: u64,
    pub last_remb_bps: Option<f64>,
    pub app_feedbacks: u64,
}

impl RtcpCounts {
    pub fn nacked_total(&self) -> u64 {
        self.nacked.values().sum()
    }

    fn count(&mut self, rtcp: &Rtcp) {
        match rtcp {
            Rtcp::SenderReport(sr) => {
                self.sender_reports += 1;
                for r in sr.reports.iter() {
                    self.report_blocks.insert(*r.ssrc, ReportBlock::from(r));
                }
            }
            Rtcp::ReceiverReport(rr) => {
                self.receiver_reports += 1;
                for r in rr.reports.iter() {
                    self.report_blocks.insert(*r.ssrc, ReportBlock::from(r));
                }
            }
            Rtcp::ExtendedReport(_) => self.extended_reports += 1,
            Rtcp::SourceDescription(_) => self.sdes += 1,
            Rtcp::Goodbye(_) => self.byes += 1,
            Rtcp::Nack(nack) => {
                self.nack_packets += 1;
                let seqs: u64 = nack
                    .reports
                    .iter()
                    .map(|e| 1 + u64::from(e.blp.count_ones()))
                    .sum();
                *self.nacked.entry(*nack.ssrc).or_default() += seqs;
            }
            Rtcp::Pli(pli) => *self.plis.entry(*pli.ssrc).or_default() += 1,
            Rtcp::Fir(fir) => {
                for e in fir.reports.iter() {
                    *self.firs.entry(*e.ssrc).or_default() += 1;
                }
            }
            Rtcp::Twcc(_) => self.twcc_feedbacks += 1,
            Rtcp::Remb(remb) => {
                self.rembs += 1;
                self.last_remb_bps = Some(f64::from(remb.bitrate));
            }
            Rtcp::AppSpecificFeedback(_) => self.app_feedbacks += 1,
        }
    }
}

/// An RFC 3550 report block, as far as tests look at it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReportBlock {
    pub fraction_lost: u8,
    pub packets_lost: i32,
    pub max_seq: u32,
    pub jitter: u32,
}

impl From<&str0m::rtp::rtcp::ReceptionReport> for ReportBlock {
    fn from(r: &str0m::rtp::rtcp::ReceptionReport) -> Self {
        ReportBlock {
            fraction_lost: r.fraction_lost,
            // 24-bit two's complement.
            packets_lost: ((r.packets_lost << 8) as i32) >> 8,
            max_seq: r.max_seq,
            jitter: r.jitter,
        }
    }
}

/// What one sent stream did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TxStream {
    pub ssrc: u32,
    pub rtx: Option<u32>,
    /// Media packets written (not counting retransmissions) and their payload bytes.
    pub packets: u64,
    pub bytes: u64,
    pub frames: u64,
    pub keyframes: u64,
    /// Key frames sent because of a PLI or FIR.
    pub requested_keyframes: u64,
    /// Retransmissions str0m sent on the RTX SSRC (with a payload), and RTX padding.
    pub rtx_sent: u64,
    pub rtx_padding_sent: u64,
}

/// Everything else the peer observed.
#[derive(Clone, Debug, Default)]
pub struct PeerStats {
    pub ice_state: Option<IceConnectionState>,
    /// When ICE + DTLS completed (str0m's `Connected`).
    pub connected_at: Option<Instant>,
    pub rtcp_received: RtcpCounts,
    pub rtcp_sent: RtcpCounts,
    /// str0m's own keyframe request events (per mid/rid, not per SSRC).
    pub keyframe_request_events: u64,
    /// Datagrams str0m could not classify (not STUN, DTLS, RTP or RTCP), and inputs or polls
    /// it refused (after a refused poll the str0m instance is dead: no more timeouts).
    pub undecodable: u64,
    pub input_errors: u64,
    /// RTP datagrams on the wire for SSRCs not expected.
    pub unknown_ssrc_packets: u64,
    pub datagrams_received: u64,
    pub datagrams_sent: u64,
    /// `Event::Closed`: the remote closed DTLS.
    pub closed: bool,
    /// Times [`SimPeer::restart`] started a new session.
    pub sessions: u64,
}

/// A sending stream's state.
struct Source {
    ssrc: u32,
    pt: u8,
    seq: u64,
    timestamp: u32,
    bitrate_bps: u32,
    /// Picture size written into key frames (video).
    size: (u16, u16),
    /// The rid to put in every packet, when the extension is mapped.
    rid: Option<Rid>,
    picture_id: u16,
    /// VP8 temporal layers: TL0PICIDX of the latest TID 0 frame, and the next frame's place in
    /// the pattern.
    tl0_pic_idx: u8,
    temporal_index: usize,
    next_keyframe: Option<Instant>,
    keyframe_requested: bool,
    stats: TxStream,
}

impl Source {
    fn audio(rng: &mut StdRng, ssrc: u32, pt: u8) -> Source {
        Source::new(rng, ssrc, pt, None, 0, (0, 0), None)
    }

    fn video(rng: &mut StdRng, config: &PeerConfig, layer: &VideoLayer) -> Source {
        let pt = match config.video_codec {
            VideoCodec::Vp8 => config.vp8_pt,
            VideoCodec::H264 => config.h264_pt,
        };
        let rid = config
            .rid_extensions
            .and(layer.rid.as_deref())
            .map(Rid::from);
        Source::new(
            rng,
            layer.ssrc,
            pt,
            layer.rtx,
            layer.bitrate_bps,
            (layer.width(), layer.height),
            rid,
        )
    }

    fn new(
        rng: &mut StdRng,
        ssrc: u32,
        pt: u8,
        rtx: Option<u32>,
        bitrate_bps: u32,
        size: (u16, u16),
        rid: Option<Rid>,
    ) -> Source {
        let mut source = Source {
            ssrc,
            pt,
            seq: 0,
            timestamp: 0,
            bitrate_bps,
            size,
            rid,
            picture_id: 0,
            tl0_pic_idx: 0,
            temporal_index: 0,
            next_keyframe: None,
            keyframe_requested: true,
            stats: TxStream {
                ssrc,
                rtx,
                ..TxStream::default()
            },
        };
        source.restart(rng);
        source
    }

    /// Random numbering, as a new RTP sender starts with, and a key frame first.
    fn restart(&mut self, rng: &mut StdRng) {
        // Below 2^15 so that str0m needs no rollover counter signalled.
        self.seq = u64::from(rng.random::<u16>() & 0x7fff);
        self.timestamp = rng.random();
        self.picture_id = rng.random::<u16>() & 0x7fff;
        // From the picture id rather than another draw, so that the peer's other random
        // choices stay what they were before temporal layers existed.
        self.tl0_pic_idx = self.picture_id.rotate_right(7) as u8;
        self.temporal_index = 0;
        self.next_keyframe = None;
        self.keyframe_requested = true;
    }

    /// The VP8 payloads (descriptor and frame data, no trailer) of the next frame of
    /// `frame_len` bytes, with `temporal_layers` as [`PeerConfig::temporal_layers`].
    fn vp8_payloads(
        &mut self,
        keyframe: bool,
        frame_len: usize,
        temporal_layers: u8,
    ) -> Vec<Vec<u8>> {
        let header_len = if keyframe { 10 } else { 3 };
        let (width, height) = self.size;
        let pid = self.picture_id;
        let mut frame = vp8_frame_header_sized(keyframe, (frame_len / 4) as u32, width, height);
        frame.extend((header_len..frame_len).map(|i| (i as u8).wrapping_mul(13) ^ pid as u8));
        let temporal = (temporal_layers > 1).then(|| {
            let pattern = temporal_pattern(temporal_layers);
            if keyframe {
                self.temporal_index = 0;
            }
            let index = self.temporal_index;
            self.temporal_index = (index + 1) % pattern.len();
            let tid = pattern[index];
            if tid == 0 {
                self.tl0_pic_idx = self.tl0_pic_idx.wrapping_add(1);
            }
            // The first frame of its layer since the TID 0 frame refers to that frame only.
            let sync = tid > 0 && !pattern[1..index].contains(&tid);
            (self.tl0_pic_idx, tid, sync)
        });
        let descriptor_len = if temporal.is_some() {
            VP8_TEMPORAL_DESCRIPTOR_LEN
        } else {
            VP8_DESCRIPTOR_LEN
        };
        let per_packet = MAX_PAYLOAD - descriptor_len - TRAILER_LEN;
        let count = frame.len().div_ceil(per_packet);
        let chunk = frame.len().div_ceil(count);
        self.picture_id = (pid + 1) & 0x7fff;
        frame
            .chunks(chunk)
            .enumerate()
            .map(|(i, part)| {
                let mut payload = match temporal {
                    Some((tl0, tid, sync)) => {
                        vp8_temporal_descriptor(i == 0, pid, tl0, tid, sync).to_vec()
                    }
                    None => vp8_descriptor(i == 0, pid).to_vec(),
                };
                payload.extend_from_slice(part);
                payload
            })
            .collect()
    }
}

/// The TIDs of consecutive VP8 frames from a TID 0 frame on, for 2 or 3 temporal layers.
fn temporal_pattern(layers: u8) -> &'static [u8] {
    if layers >= 3 {
        &[0, 2, 1, 2]
    } else {
        &[0, 1]
    }
}

/// What a received video payload says about its frame (see [`RxPacket`]).
#[derive(Clone, Copy, Default)]
struct FrameFields {
    start_of_frame: bool,
    keyframe: bool,
    picture_id: Option<u16>,
    tl0_pic_idx: Option<u8>,
    temporal_id: Option<u8>,
    layer_sync: bool,
}

impl FrameFields {
    fn vp8(payload: &[u8]) -> FrameFields {
        parse_vp8(payload).map_or_else(FrameFields::default, |v| FrameFields {
            start_of_frame: v.start_of_frame && v.partition_id == 0,
            keyframe: v.keyframe,
            picture_id: v.picture_id,
            tl0_pic_idx: v.tl0_pic_idx,
            temporal_id: v.temporal_id,
            layer_sync: v.layer_sync,
        })
    }

    fn h264(payload: &[u8]) -> FrameFields {
        let Some(info) = frame_info(PayloadCodec::H264, payload) else {
            return FrameFields::default();
        };
        let sps = matches!(info.details, Details::H264(h) if h.sps);
        FrameFields {
            start_of_frame: info.starts_frame,
            keyframe: info.starts_frame && (sps || info.starts_keyframe_picture()),
            ..FrameFields::default()
        }
    }
}

/// A str0m instance set up as `config` says, with ICE credentials from `rng`, and what the
/// other side needs to know of it.
fn build_rtc(config: &PeerConfig, rng: &mut StdRng, now: Instant) -> (Rtc, LocalParams) {
    let creds = IceCreds {
        ufrag: random_token(rng, 8),
        pass: random_token(rng, 24),
    };
    let mut builder = Rtc::builder()
        .set_rtp_mode(true)
        .enable_raw_packets(true)
        .set_local_ice_credentials(creds.clone())
        .clear_codecs()
        .clear_extension_map();
    builder.codec_config().add_config(
        config.opus_pt.into(),
        None,
        Codec::Opus,
        Frequency::FORTY_EIGHT_KHZ,
        Some(2),
        FormatParams {
            min_p_time: Some(10),
            use_inband_fec: Some(true),
            ..Default::default()
        },
    );
    builder.codec_config().add_config(
        config.vp8_pt.into(),
        Some(config.rtx_pt.into()),
        Codec::Vp8,
        Frequency::NINETY_KHZ,
        None,
        FormatParams::default(),
    );
    builder.codec_config().add_h264(
        config.h264_pt.into(),
        Some(config.h264_rtx_pt.into()),
        true,
        0x42e01f,
    );
    let (rid_ext, repaired_rid_ext) = config.rid_extensions.unzip();
    let extensions = [
        (config.audio_level_ext, Extension::AudioLevel),
        (config.twcc_ext, Extension::TransportSequenceNumber),
        (config.mid_ext, Extension::RtpMid),
        (config.abs_send_time_ext, Extension::AbsoluteSendTime),
        (rid_ext, Extension::RtpStreamId),
        (repaired_rid_ext, Extension::RepairedRtpStreamId),
    ];
    for (id, ext) in extensions {
        if let Some(id) = id {
            builder = builder.set_extension(id, ext);
        }
    }
    let mut rtc = builder.build(now);

    let host = Candidate::host(config.addr, "udp").expect("a valid host candidate address");
    let priority = host.prio();
    rtc.add_local_candidate(host);
    let fingerprint = {
        let f = rtc.direct_api().local_dtls_fingerprint().clone();
        assert_eq!(f.hash_func, "sha-256");
        f.bytes.as_slice().try_into().expect("32-byte sha-256")
    };

    let mut api = rtc.direct_api();
    api.set_ice_controlling(config.ice_controlling);
    if config.twcc_feedback {
        api.enable_twcc_feedback();
    }
    api.declare_media(Mid::from(AUDIO_MID), MediaKind::Audio);
    api.declare_media(Mid::from(VIDEO_MID), MediaKind::Video);
    if let Some(ssrc) = config.audio {
        api.declare_stream_tx(ssrc.into(), None, Mid::from(AUDIO_MID), None);
    }
    for (i, layer) in config.video.iter().enumerate() {
        let rtx = layer.rtx.filter(|_| config.answer_nacks).map(Ssrc::from);
        // str0m's pacer tells send streams apart by (mid, rid): simulcast layers need a rid,
        // though without the rid header extension mapped it never goes on the wire (Jitsi
        // tells layers apart by SSRC). str0m puts it in RTX packets as the repaired rid.
        let rid = layer
            .rid
            .as_deref()
            .map(Rid::from)
            .or_else(|| (config.video.len() > 1).then(|| Rid::from(i.to_string().as_str())));
        api.declare_stream_tx(layer.ssrc.into(), rtx, Mid::from(VIDEO_MID), rid);
    }
    let local = LocalParams {
        ufrag: creds.ufrag,
        pwd: creds.pass,
        fingerprint,
        candidate: config.addr,
        priority,
    };
    (rtc, local)
}

/// The participant. Put it in a [`crate::Sim`] (it implements [`Node`]).
pub struct SimPeer {
    config: PeerConfig,
    start: Instant,
    rtc: Rtc,
    rng: StdRng,
    local: LocalParams,
    /// The latest `now` str0m was given.
    now: Instant,
    rtc_timeout: Option<Instant>,
    pending: VecDeque<(SocketAddr, SocketAddr, Vec<u8>)>,
    connected: bool,
    sending: bool,
    next_audio: Option<Instant>,
    next_video: Option<Instant>,
    audio: Option<Source>,
    video: Vec<Source>,
    rx: BTreeMap<u32, RxStream>,
    /// RTX SSRC → main SSRC of the expected streams.
    rtx_of: HashMap<u32, u32>,
    /// The RTX packet of the datagram being handled: (main SSRC, original sequence number).
    rtx_in_progress: Option<(u32, u16)>,
    stats: PeerStats,
    /// The audio levels its packets carry in turn (dBov, negative), cycled.
    audio_levels: Vec<i8>,
    next_audio_level: usize,
}

impl SimPeer {
    /// A peer at `start` (the simulation's start), with `config`.
    pub fn new(config: PeerConfig, start: Instant) -> SimPeer {
        let mut rng = StdRng::seed_from_u64(config.seed);
        let (rtc, local) = build_rtc(&config, &mut rng, start);
        let audio = config
            .audio
            .map(|s| Source::audio(&mut rng, s, config.opus_pt));
        let video = config
            .video
            .iter()
            .map(|l| Source::video(&mut rng, &config, l))
            .collect();
        SimPeer {
            local,
            config,
            start,
            rtc,
            rng,
            now: start,
            rtc_timeout: Some(start),
            pending: VecDeque::new(),
            connected: false,
            sending: false,
            next_audio: None,
            next_video: None,
            audio,
            video,
            rx: BTreeMap::new(),
            rtx_of: HashMap::new(),
            rtx_in_progress: None,
            stats: PeerStats::default(),
            audio_levels: vec![-30],
            next_audio_level: 0,
        }
    }

    /// The audio levels (dBov, −127 ..= 0) its audio packets carry from now on, one per
    /// packet, cycled (−30 dBov by default: a constant level, which a speaker detector takes
    /// for noise). [`speech_levels`] is someone talking, `&[-127]` silence.
    pub fn set_audio_levels(&mut self, levels: &[i8]) {
        if !levels.is_empty() {
            self.audio_levels = levels.to_vec();
            self.next_audio_level = 0;
        }
    }

    /// Starts over as a new peer connection would (what a browser does when the focus gives it
    /// a new session): a new str0m instance with new ICE credentials and DTLS certificate, the
    /// same SSRCs with new random sequence numbers and timestamps, a key frame first, and the
    /// same expected remote sources. Call [`SimPeer::local`] and [`SimPeer::set_remote`] again.
    /// Records and counters carry on; [`PeerStats::sessions`] counts the restarts.
    pub fn restart(&mut self, now: Instant) {
        self.now = self.now.max(now);
        let (rtc, local) = build_rtc(&self.config, &mut self.rng, self.now);
        self.rtc = rtc;
        self.local = local;
        self.rtc_timeout = Some(self.now);
        self.pending.clear();
        self.connected = false;
        self.next_audio = None;
        self.next_video = None;
        for src in self.audio.iter_mut().chain(self.video.iter_mut()) {
            src.restart(&mut self.rng);
        }
        let expected: Vec<(u32, Option<u32>, MediaKind, Vec<u32>)> = self
            .rx
            .values()
            .map(|r| (r.ssrc, r.rtx, r.kind, r.senders.clone()))
            .collect();
        for (ssrc, rtx, kind, senders) in expected {
            if kind == MediaKind::Audio {
                self.expect_audio(ssrc);
            } else {
                self.expect_video_from(ssrc, rtx, &senders);
            }
        }
        self.stats.sessions += 1;
        self.stats.ice_state = None;
        self.stats.closed = false;
    }

    pub fn config(&self) -> &PeerConfig {
        &self.config
    }

    /// ICE credentials, fingerprint and host candidate for the other side.
    pub fn local(&self) -> LocalParams {
        self.local.clone()
    }

    /// The other side's ICE credentials, sha-256 fingerprint and candidates (address,
    /// priority); starts ICE and, once it connects, DTLS in this peer's role.
    pub fn set_remote(
        &mut self,
        ufrag: &str,
        pwd: &str,
        fingerprint: [u8; 32],
        candidates: &[(SocketAddr, u32)],
    ) {
        let mut api = self.rtc.direct_api();
        api.set_remote_ice_credentials(IceCreds {
            ufrag: ufrag.to_owned(),
            pass: pwd.to_owned(),
        });
        api.set_remote_fingerprint(str0m::config::Fingerprint {
            hash_func: "sha-256".to_owned(),
            bytes: fingerprint.to_vec(),
        });
        api.start_dtls(self.config.dtls_active)
            .expect("DTLS starts once");
        for (i, &(addr, priority)) in candidates.iter().enumerate() {
            self.rtc.add_remote_candidate(Candidate::from_parts(
                format!("{}", i + 1),
                1,
                Protocol::Udp,
                priority,
                addr,
                CandidateKind::Host,
                None,
                None,
                None,
            ));
        }
    }

    /// Connects two peers' signalling directly (no bridge in between).
    pub fn set_remote_peer(&mut self, other: &LocalParams) {
        self.set_remote(
            &other.ufrag,
            &other.pwd,
            other.fingerprint,
            &[(other.candidate, other.priority)],
        );
    }

    /// Announces a remote audio source.
    pub fn expect_audio(&mut self, ssrc: u32) {
        self.expect_audio_from(ssrc, ssrc);
    }

    /// Announces a remote audio source that a bridge sends on `output_ssrc` with the media of
    /// the sender's SSRC `sender`: its payload trailers must name `sender`.
    pub fn expect_audio_from(&mut self, output_ssrc: u32, sender: u32) {
        // Browsers do not NACK audio.
        self.rtc
            .direct_api()
            .expect_stream_rx(output_ssrc.into(), None, Mid::from(AUDIO_MID), None)
            .suppress_nack(true);
        self.rx
            .entry(output_ssrc)
            .or_insert_with(|| RxStream::new(output_ssrc, None, MediaKind::Audio, &[sender]));
    }

    /// Announces a remote video source and its RTX SSRC; its payload trailers must name
    /// `ssrc`.
    pub fn expect_video(&mut self, ssrc: u32, rtx: Option<u32>) {
        self.expect_video_from(ssrc, rtx, &[ssrc]);
    }

    /// Announces a remote video source that a bridge sends on `output_ssrc` (and RTX on
    /// `output_rtx`) with the media of any of `senders`, a sender's simulcast layer SSRCs: its
    /// payload trailers may name any of them, [`RxPacket::sender_ssrc`] tells which one each
    /// packet came from. Announcing an expected SSRC again replaces its `senders`.
    pub fn expect_video_from(
        &mut self,
        output_ssrc: u32,
        output_rtx: Option<u32>,
        senders: &[u32],
    ) {
        let (ssrc, rtx) = (output_ssrc, output_rtx);
        let send_nacks = self.config.send_nacks;
        self.rtc
            .direct_api()
            .expect_stream_rx(ssrc.into(), rtx.map(Ssrc::from), Mid::from(VIDEO_MID), None)
            .suppress_nack(!send_nacks || rtx.is_none());
        if let Some(rtx) = rtx {
            self.rtx_of.insert(rtx, ssrc);
        }
        self.rx
            .entry(ssrc)
            .or_insert_with(|| RxStream::new(ssrc, rtx, MediaKind::Video, senders))
            .senders = senders.to_vec();
    }

    /// Expects everything `other` sends (for peer-to-peer tests).
    pub fn expect_from(&mut self, other: &PeerConfig) {
        if let Some(ssrc) = other.audio {
            self.expect_audio(ssrc);
        }
        for layer in &other.video {
            self.expect_video(layer.ssrc, layer.rtx);
        }
    }

    /// Stops expecting a remote source (its record stays).
    pub fn forget(&mut self, ssrc: u32) {
        self.rtc.direct_api().remove_stream_rx(ssrc.into());
        self.rtx_of.retain(|_, main| *main != ssrc);
    }

    /// Starts or stops sending media; it flows once ICE and DTLS are up.
    pub fn set_sending(&mut self, on: bool) {
        self.sending = on;
        if !on {
            self.next_audio = None;
            self.next_video = None;
        }
    }

    /// Asks for a key frame of a remote stream with a PLI.
    pub fn request_pli(&mut self, ssrc: u32) {
        let mut api = self.rtc.direct_api();
        if let Some(stream) = api.stream_rx(&ssrc.into()) {
            stream.request_keyframe(KeyframeRequestKind::Pli);
        } else {
            let sender = self
                .config
                .video
                .first()
                .map(|l| l.ssrc)
                .or(self.config.audio)
                .unwrap_or(1);
            api.send_pli_feedback(sender.into(), ssrc.into());
        }
    }

    /// Asks for a key frame of an expected remote stream with a FIR.
    pub fn request_fir(&mut self, ssrc: u32) {
        if let Some(stream) = self.rtc.direct_api().stream_rx(&ssrc.into()) {
            stream.request_keyframe(KeyframeRequestKind::Fir);
        }
    }

    /// Sends a REMB for an expected remote stream.
    pub fn request_remb(&mut self, ssrc: u32, bps: u64) {
        if let Some(stream) = self.rtc.direct_api().stream_rx(&ssrc.into()) {
            stream.request_remb(Bitrate::bps(bps));
        }
    }

    /// Whether ICE and DTLS completed.
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// The str0m instance, for anything this wrapper does not cover.
    pub fn rtc(&mut self) -> &mut Rtc {
        &mut self.rtc
    }

    pub fn stats(&self) -> &PeerStats {
        &self.stats
    }

    /// What arrived on a remote SSRC, if it was expected.
    pub fn rx(&self, ssrc: u32) -> Option<&RxStream> {
        self.rx.get(&ssrc)
    }

    /// All expected remote streams, by SSRC.
    pub fn rx_streams(&self) -> impl Iterator<Item = &RxStream> {
        self.rx.values()
    }

    /// What was sent on one of its SSRCs.
    pub fn tx(&self, ssrc: u32) -> Option<&TxStream> {
        self.audio
            .iter()
            .chain(&self.video)
            .find(|s| s.ssrc == ssrc)
            .map(|s| &s.stats)
    }

    /// Writes the media due up to `now` (called by the simulation at each media instant).
    pub fn emit_media(&mut self, now: Instant) {
        if !self.sending || !self.connected {
            return;
        }
        let frame_interval = Duration::from_secs(1) / self.config.video_fps.max(1);
        if self.audio.is_some() {
            let mut at = *self.next_audio.get_or_insert(now);
            while at <= now {
                self.write_audio(at);
                at += AUDIO_PTIME;
            }
            self.next_audio = Some(at);
        }
        if !self.video.is_empty() {
            let mut at = *self.next_video.get_or_insert(now);
            while at <= now {
                for layer in 0..self.video.len() {
                    self.write_video_frame(at, layer);
                }
                at += frame_interval;
            }
            self.next_video = Some(at);
        }
    }

    /// When media is due next (None while not sending or not connected).
    fn next_media(&self) -> Option<Instant> {
        if !self.sending || !self.connected {
            return None;
        }
        let audio = self
            .audio
            .as_ref()
            .map(|_| self.next_audio.unwrap_or(self.now));
        let video = (!self.video.is_empty()).then(|| self.next_video.unwrap_or(self.now));
        audio.into_iter().chain(video).min()
    }

    fn sent_at_us(&self, at: Instant) -> u64 {
        (at - self.start).as_micros() as u64
    }

    fn write_audio(&mut self, at: Instant) {
        let sent_at_us = self.sent_at_us(at);
        let body_len = self.rng.random_range(80..=160) - TRAILER_LEN;
        let audio_level = self.audio_levels[self.next_audio_level % self.audio_levels.len()];
        self.next_audio_level = (self.next_audio_level + 1) % self.audio_levels.len();
        let Some(src) = self.audio.as_mut() else {
            return;
        };
        let seq = src.seq;
        let mut payload = Vec::with_capacity(body_len + TRAILER_LEN);
        // TOC byte: config 15 (CELT FB 20 ms), mono, one frame.
        payload.push(0x78);
        payload.extend((1..body_len).map(|i| (i as u8).wrapping_mul(7) ^ seq as u8));
        append_trailer(
            &mut payload,
            Trailer {
                ssrc: src.ssrc,
                seq: seq as u16,
                sent_at_us,
            },
        );
        src.stats.bytes += payload.len() as u64;
        let write = RtpWrite::new(src.pt.into(), SeqNo::from(seq), src.timestamp, at, payload)
            .ext_vals(ExtensionValues {
                audio_level: Some(audio_level),
                voice_activity: Some(true),
                ..Default::default()
            });
        src.seq += 1;
        src.timestamp = src.timestamp.wrapping_add(960);
        src.stats.packets += 1;
        src.stats.frames += 1;
        let ssrc = src.ssrc;
        if let Some(stream) = self.rtc.direct_api().stream_tx(&ssrc.into()) {
            stream.write_rtp(write);
        }
    }

    fn write_video_frame(&mut self, at: Instant, layer: usize) {
        let sent_at_us = self.sent_at_us(at);
        let fps = self.config.video_fps.max(1);
        let interval = self.config.keyframe_interval;
        let nackable = self.config.answer_nacks;
        let codec = self.config.video_codec;
        let temporal_layers = self.config.temporal_layers;
        let src = &mut self.video[layer];
        let keyframe = src.keyframe_requested || src.next_keyframe.is_none_or(|t| at >= t);
        if keyframe {
            if src.keyframe_requested && src.next_keyframe.is_some() {
                src.stats.requested_keyframes += 1;
            }
            src.keyframe_requested = false;
            src.next_keyframe = Some(at + interval);
            src.stats.keyframes += 1;
        }
        let header_len = if keyframe { 10 } else { 3 };
        let factor = if keyframe { KEYFRAME_SIZE_FACTOR } else { 1 };
        let frame_len = ((src.bitrate_bps / 8 / fps) as usize * factor).max(header_len + 1);
        let payloads = match codec {
            VideoCodec::Vp8 => src.vp8_payloads(keyframe, frame_len, temporal_layers),
            VideoCodec::H264 => {
                let fill = src.stats.frames as u8;
                h264::frame_payloads(keyframe, frame_len, src.size, fill, MAX_PAYLOAD)
            }
        };
        let ext_vals = ExtensionValues {
            rid: src.rid,
            ..Default::default()
        };
        let count = payloads.len();
        let mut writes = Vec::with_capacity(count);
        for (i, mut payload) in payloads.into_iter().enumerate() {
            let seq = src.seq;
            // The trailer's CRC leaves out the VP8 descriptor: a bridge rewrites its PictureID
            // and TL0PICIDX when it moves a receiver between layers.
            let mut body = payload.split_off(codec_header_len(codec, &payload));
            append_trailer(
                &mut body,
                Trailer {
                    ssrc: src.ssrc,
                    seq: seq as u16,
                    sent_at_us,
                },
            );
            payload.extend(body);
            src.stats.packets += 1;
            src.stats.bytes += payload.len() as u64;
            writes.push(
                RtpWrite::new(src.pt.into(), SeqNo::from(seq), src.timestamp, at, payload)
                    .marker(i + 1 == count)
                    .nackable(nackable)
                    .ext_vals(ext_vals.clone()),
            );
            src.seq += 1;
        }
        src.stats.frames += 1;
        src.timestamp = src.timestamp.wrapping_add(90_000 / fps);
        let ssrc = src.ssrc;
        if let Some(stream) = self.rtc.direct_api().stream_tx(&ssrc.into()) {
            for w in writes {
                stream.write_rtp(w);
            }
        }
    }

    /// Drains str0m's output: transmits into `pending`, events into the records.
    fn drive(&mut self) {
        loop {
            match self.rtc.poll_output() {
                Ok(Output::Timeout(t)) => {
                    self.rtc_timeout = Some(t);
                    return;
                }
                Ok(Output::Transmit(t)) => {
                    self.stats.datagrams_sent += 1;
                    self.pending
                        .push_back((t.source, t.destination, t.contents.into()));
                }
                Ok(Output::Event(e)) => self.on_event(e),
                Err(_) => {
                    self.stats.input_errors += 1;
                    self.rtc_timeout = None;
                    return;
                }
            }
        }
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::Connected => {
                self.connected = true;
                self.stats.connected_at = Some(self.now);
            }
            Event::IceConnectionStateChange(s) => self.stats.ice_state = Some(s),
            Event::KeyframeRequest(_) => self.stats.keyframe_request_events += 1,
            Event::Closed => self.stats.closed = true,
            Event::RtpPacket(p) => self.on_rtp(p),
            Event::RawPacket(raw) => self.on_raw(*raw),
            _ => {}
        }
    }

    fn on_raw(&mut self, raw: RawPacket) {
        match raw {
            RawPacket::RtcpRx(rtcp) => {
                self.stats.rtcp_received.count(&rtcp);
                let mut wants_keyframe = |ssrc: u32| {
                    if let Some(src) = self.video.iter_mut().find(|s| s.ssrc == ssrc) {
                        src.keyframe_requested = true;
                    }
                };
                match &rtcp {
                    Rtcp::Pli(pli) => wants_keyframe(*pli.ssrc),
                    Rtcp::Fir(fir) => {
                        for e in fir.reports.iter() {
                            wants_keyframe(*e.ssrc);
                        }
                    }
                    _ => {}
                }
            }
            RawPacket::RtcpTx(rtcp) => self.stats.rtcp_sent.count(&rtcp),
            RawPacket::RtpRx(header, payload) => {
                let ssrc = *header.ssrc;
                if let Some(stream) = self.rx.get_mut(&ssrc) {
                    stream.count_mid(header.ext_vals.mid);
                    if let Some(rid) = header.ext_vals.rid {
                        stream.rid = Some(rid.to_string());
                        stream.rid_packets += 1;
                    }
                    return;
                }
                let Some(&main) = self.rtx_of.get(&ssrc) else {
                    return;
                };
                let Some(stream) = self.rx.get_mut(&main) else {
                    return;
                };
                stream.count_mid(header.ext_vals.mid);
                if let Some(rid) = header.ext_vals.rid_repair {
                    stream.repaired_rid = Some(rid.to_string());
                }
                if payload.len() <= 2 {
                    stream.rtx_padding += 1;
                } else {
                    stream.rtx_packets += 1;
                    self.rtx_in_progress =
                        Some((main, u16::from_be_bytes([payload[0], payload[1]])));
                }
            }
            RawPacket::RtpTx(header, payload) => {
                let ssrc = *header.ssrc;
                if let Some(src) = self.video.iter_mut().find(|s| s.stats.rtx == Some(ssrc)) {
                    if payload.len() <= 2 {
                        src.stats.rtx_padding_sent += 1;
                    } else {
                        src.stats.rtx_sent += 1;
                    }
                }
            }
        }
    }

    fn on_rtp(&mut self, p: str0m::rtp::RtpPacket) {
        let ssrc = *p.header.ssrc;
        let seq16 = p.header.sequence_number;
        let seq = *p.seq_no;
        let via_rtx = self.rtx_in_progress == Some((ssrc, seq16));
        let h264 = *p.header.payload_type == self.config.h264_pt;
        let Some(stream) = self.rx.get_mut(&ssrc) else {
            return;
        };
        let payload = &p.payload[..];
        let codec = if stream.kind == MediaKind::Audio || h264 {
            VideoCodec::H264
        } else {
            VideoCodec::Vp8
        };
        let trailer = verify_trailer(&payload[codec_header_len(codec, payload)..]).ok();
        let allowed = trailer.filter(|t| stream.senders.contains(&t.ssrc));
        if allowed.is_none() {
            stream.payload_errors += 1;
        }
        let in_order = stream.highest_seq.is_none_or(|h| seq > h);
        if in_order {
            stream.highest_seq = Some(seq);
        }
        if let Some(t) = allowed.filter(|_| in_order || stream.sequence_offset.is_none()) {
            let offset = seq16.wrapping_sub(t.seq);
            match stream.sequence_offset {
                None => stream.sequence_offset = Some(offset),
                Some(o) if o != offset => {
                    stream.sequence_offset = Some(offset);
                    stream.offset_changes += 1;
                }
                Some(_) => {}
            }
        }
        let frame = match stream.kind {
            MediaKind::Audio => FrameFields::default(),
            MediaKind::Video if h264 => FrameFields::h264(payload),
            MediaKind::Video => FrameFields::vp8(payload),
        };
        stream.packets.push(RxPacket {
            seq,
            timestamp: p.header.timestamp,
            marker: p.header.marker,
            arrived: self.now,
            via_rtx,
            sender_ssrc: trailer.map(|t| t.ssrc),
            sender_seq: allowed.map(|t| t.seq),
            sent_at_us: allowed.map(|t| t.sent_at_us),
            start_of_frame: frame.start_of_frame,
            keyframe: frame.keyframe,
            picture_id: frame.picture_id,
            tl0_pic_idx: frame.tl0_pic_idx,
            temporal_id: frame.temporal_id,
            layer_sync: frame.layer_sync,
            payload_len: payload.len(),
        });
    }

    /// Wire-level accounting of an incoming datagram from its cleartext RTP header.
    fn on_wire(&mut self, data: &[u8]) {
        if data.len() < 12 || !(128..192).contains(&data[0]) {
            return;
        }
        let pt = data[1] & 0x7f;
        if (64..96).contains(&pt) {
            return; // RTCP
        }
        let seq = u16::from_be_bytes([data[2], data[3]]);
        let ssrc = u32::from_be_bytes([data[8], data[9], data[10], data[11]]);
        if let Some(stream) = self.rx.get_mut(&ssrc) {
            stream.on_wire(seq);
        } else if !self.rtx_of.contains_key(&ssrc) {
            self.stats.unknown_ssrc_packets += 1;
        }
    }

    fn flush(&mut self, out: &mut Outbox) {
        for (from, to, data) in self.pending.drain(..) {
            out.push(from, to, data);
        }
    }
}

impl Node for SimPeer {
    fn addresses(&self) -> Vec<SocketAddr> {
        vec![self.config.addr]
    }

    fn handle_datagram(
        &mut self,
        now: Instant,
        from: SocketAddr,
        to: SocketAddr,
        data: &[u8],
        out: &mut Outbox,
    ) {
        self.now = self.now.max(now);
        self.stats.datagrams_received += 1;
        self.on_wire(data);
        match Receive::new(Protocol::Udp, from, to, data) {
            Ok(receive) => {
                self.rtx_in_progress = None;
                if self.rtc.handle_input(Input::Receive(now, receive)).is_err() {
                    self.stats.input_errors += 1;
                }
                self.drive();
                self.rtx_in_progress = None;
            }
            Err(_) => self.stats.undecodable += 1,
        }
        self.flush(out);
    }

    fn handle_timeout(&mut self, now: Instant, out: &mut Outbox) {
        self.now = self.now.max(now);
        self.emit_media(now);
        if self.rtc.handle_input(Input::Timeout(now)).is_err() {
            self.stats.input_errors += 1;
        }
        self.drive();
        // Media starts right when DTLS completes.
        if self.next_media().is_some_and(|t| t <= now) {
            self.emit_media(now);
            self.drive();
        }
        self.flush(out);
    }

    fn poll_timeout(&mut self) -> Option<Instant> {
        // The test may have acted on the peer since the last input.
        self.drive();
        if !self.pending.is_empty() {
            return Some(self.now);
        }
        match (self.rtc_timeout, self.next_media()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// The bytes at the start of a payload that the trailer's CRC leaves out: the VP8 payload
/// descriptor (a bridge may rewrite it); nothing for other payloads.
fn codec_header_len(codec: VideoCodec, payload: &[u8]) -> usize {
    match codec {
        VideoCodec::Vp8 => tutti_rtp::codec::vp8::parse(payload).map_or(0, |d| d.payload_offset),
        VideoCodec::H264 => 0,
    }
}

fn random_token(rng: &mut StdRng, len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    (0..len)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Two peers that call each other directly, without a bridge: `b` takes the bridge's side
/// (controlling ICE, DTLS server), each has the other's ICE parameters and expects the other's
/// streams. Neither sends until told to ([`SimPeer::set_sending`]).
pub fn call_each_other(
    sim: &mut crate::Sim,
    a: PeerConfig,
    b: PeerConfig,
) -> (crate::NodeId<SimPeer>, crate::NodeId<SimPeer>) {
    let start = sim.start();
    let mut a = SimPeer::new(a, start);
    let mut b = SimPeer::new(
        PeerConfig {
            ice_controlling: true,
            dtls_active: false,
            ..b
        },
        start,
    );
    a.set_remote_peer(&b.local());
    b.set_remote_peer(&a.local());
    a.expect_from(b.config());
    b.expect_from(a.config());
    (sim.add("a", a), sim.add("b", b))
}

/// Someone talking, as audio levels of 20 ms packets: 700 ms of syllables between −20 and
/// −38 dBov, then 300 ms of pause at −60 dBov (one second, to be cycled).
pub fn speech_levels() -> Vec<i8> {
    (0..50)
        .map(|i| {
            if i < 35 {
                -20 - ((i * 7) % 19) as i8
            } else {
                -60
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_extension_follows_wraps() {
        let first = extend_seq(None, 65_535);
        assert_eq!(extend_seq(Some(first), 0), first + 1);
        assert_eq!(extend_seq(Some(first + 1), 65_534), first - 1);
        assert_eq!(extend_seq(Some(first), 65_535), first);
    }

    #[test]
    fn simulcast_layers_have_distinct_ssrcs_and_rates() {
        let single = PeerConfig::new("a", "10.0.0.1:1".parse().unwrap(), 1);
        let sizes = |c: &PeerConfig| -> Vec<(u16, u16)> {
            c.video.iter().map(|l| (l.width(), l.height)).collect()
        };
        let rids = |c: &PeerConfig| -> Vec<Option<String>> {
            c.video.iter().map(|l| l.rid.clone()).collect()
        };
        assert_eq!(sizes(&single), [(640, 360)]);
        assert_eq!(rids(&single), [None]);
        let two = single.clone().simulcast(2, 1_000_000);
        assert_eq!(sizes(&two), [(640, 360), (1280, 720)]);
        assert_eq!(rids(&two), [Some("h".into()), Some("f".into())]);
        let c = single.simulcast(3, 1_600_000);
        assert_eq!(sizes(&c), [(320, 180), (640, 360), (1280, 720)]);
        assert_eq!(
            rids(&c),
            [Some("q".into()), Some("h".into()), Some("f".into())]
        );
        let rates: Vec<u32> = c.video.iter().map(|l| l.bitrate_bps).collect();
        assert_eq!(rates, [100_000, 400_000, 1_600_000]);
        let mut ssrcs: HashSet<u32> = c.audio.into_iter().collect();
        for l in &c.video {
            assert!(ssrcs.insert(l.ssrc));
            assert!(ssrcs.insert(l.rtx.unwrap()));
        }
    }

    /// A received video packet of `sender` at extended sequence number `seq`.
    fn packet(start: Instant, seq: u64, sender: u32, ts: u32, pid: u16) -> RxPacket {
        RxPacket {
            seq,
            timestamp: ts,
            marker: false,
            arrived: start + Duration::from_millis(seq),
            via_rtx: false,
            sender_ssrc: Some(sender),
            sender_seq: Some(seq as u16),
            sent_at_us: Some(0),
            start_of_frame: false,
            keyframe: false,
            picture_id: Some(pid),
            tl0_pic_idx: None,
            temporal_id: None,
            layer_sync: false,
            payload_len: 100,
        }
    }

    #[test]
    fn switches_follow_sequence_order_and_see_key_frames() {
        let start = Instant::now();
        let mut rx = RxStream::new(100, None, MediaKind::Video, &[1, 2, 3]);
        let mut packets = vec![
            packet(start, 10, 1, 0, 5),
            packet(start, 11, 1, 0, 5),
            packet(start, 12, 1, 3000, 6),
            // Layer 2 from the start of a key frame.
            RxPacket {
                start_of_frame: true,
                keyframe: true,
                ..packet(start, 13, 2, 6000, 7)
            },
            packet(start, 14, 2, 6000, 7),
            // Layer 3 from a delta frame: not at a key frame.
            RxPacket {
                start_of_frame: true,
                ..packet(start, 15, 3, 9000, 8)
            },
            // No verified trailer: no run of its own.
            RxPacket {
                sender_ssrc: None,
                ..packet(start, 16, 3, 9000, 8)
            },
            packet(start, 17, 3, 12_000, 9),
        ];
        // Packet 12 of layer 1 arrives last (a retransmission): sequence order decides.
        let late = packets.remove(2);
        packets.push(late);
        rx.packets = packets;
        let at = |seq| start + Duration::from_millis(seq);
        assert_eq!(rx.layers_seen(), [(at(10), 1), (at(13), 2), (at(15), 3)]);
        assert_eq!(
            rx.switches(),
            [
                Switch {
                    at: at(13),
                    from: 1,
                    to: 2,
                    at_keyframe: true
                },
                Switch {
                    at: at(15),
                    from: 2,
                    to: 3,
                    at_keyframe: false
                },
            ]
        );
        assert!(rx.timestamps_monotonic());
        assert!(rx.picture_ids_continuous());
        assert_eq!(rx.keyframes(), 1);
    }

    #[test]
    fn timestamps_may_wrap_but_not_go_back() {
        let start = Instant::now();
        let mut rx = RxStream::new(1, None, MediaKind::Video, &[1]);
        rx.packets = vec![
            packet(start, 1, 1, u32::MAX - 100, 1),
            packet(start, 2, 1, u32::MAX - 100, 1),
            packet(start, 3, 1, 2900, 2),
        ];
        assert!(rx.timestamps_monotonic());
        rx.packets.push(packet(start, 4, 1, 2899, 3));
        assert!(!rx.timestamps_monotonic());
    }

    #[test]
    fn picture_ids_may_skip_only_over_missing_packets() {
        let start = Instant::now();
        let mut rx = RxStream::new(1, None, MediaKind::Video, &[1]);
        // Wraps from 0x7fff to 0; two packets (20, 21) missing: the ID may grow by up to 3.
        rx.packets = vec![
            packet(start, 18, 1, 0, 0x7ffe),
            packet(start, 19, 1, 3000, 0x7fff),
            packet(start, 22, 1, 9000, 1),
        ];
        assert!(rx.picture_ids_continuous());
        // A skip without a missing packet.
        rx.packets.push(packet(start, 23, 1, 12_000, 3));
        assert!(!rx.picture_ids_continuous());
        // A new frame (timestamp) with the same ID, or a frame with two IDs.
        rx.packets.pop();
        rx.packets.push(packet(start, 23, 1, 12_000, 1));
        assert!(!rx.picture_ids_continuous());
        rx.packets.pop();
        rx.packets.push(packet(start, 23, 1, 9000, 2));
        assert!(!rx.picture_ids_continuous());
        // More than one per missing packet.
        rx.packets.pop();
        rx.packets.push(packet(start, 26, 1, 12_000, 6));
        assert!(!rx.picture_ids_continuous());
    }
}
