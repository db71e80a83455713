//! One source of a sender, as the bridge receives it: its encodings (simulcast layers, each
//! with its RTX stream), their receive statistics, the packet cache that answers receivers'
//! NACKs, the NACK generator for losses on the way in, and the rate limit on key-frame
//! requests. Its consumers are the receivers it is forwarded to.

use std::time::{Duration, Instant};

use tutti_rtp::codec::{self, Details, FrameInfo};
use tutti_rtp::rtcp::ReceiveStats;

use super::consumer::Consumer;
use super::nack::NackGenerator;
use super::retransmission::RetransmissionCache;
use super::sources::ProducerSpec;
use super::speakers::SpeechActivity;
use super::{MediaKind, Mid};

/// A sender is asked for a key frame of an encoding at most this often, however many receivers
/// ask.
const KEYFRAME_REQUEST_INTERVAL: Duration = Duration::from_millis(300);

/// One encoding: a simulcast layer (or the only stream) and its RTX stream.
pub struct Encoding {
    pub ssrc: u32,
    pub rtx_ssrc: Option<u32>,
    pub stats: ReceiveStats,
    pub rtx_stats: Option<ReceiveStats>,
    /// Recent packets, for receivers' NACKs: made with the producer for the lowest layer of a
    /// video (every receiver can be given that one), for higher layers when first forwarded.
    pub cache: Option<RetransmissionCache>,
    /// Losses on the way in; only where the sender retransmits (it has an RTX stream).
    pub nacks: Option<NackGenerator>,
    /// Frame height, from its latest key frame (VP8) or SPS (H264); `None` until known.
    pub height: Option<u16>,
    pub rate: LayerRate,
    /// Key-frame requests for this encoding, rate-limited.
    pub keyframes: KeyframeRequests,
}

impl Encoding {
    /// Notes a received media packet of `len` bytes (what its payload says of its frame, when
    /// the bridge reads its codec).
    pub fn on_media(&mut self, len: usize, frame: Option<&FrameInfo>, payload: &[u8], now_us: i64) {
        self.rate
            .on_packet(len, frame.and_then(|f| f.temporal_layer), now_us);
        let size = match frame.filter(|f| f.keyframe).map(|f| f.details) {
            Some(Details::Vp8(d)) => codec::vp8::keyframe_size(payload, &d),
            Some(Details::H264(info)) if info.sps => {
                codec::h264::sps_in(payload).and_then(codec::h264::sps_size)
            }
            _ => None,
        };
        if let Some((_, height)) = size {
            self.height = Some(height);
        }
    }
}

/// Temporal layers whose rate is measured per encoding (VP8 TID 0..=3).
pub const TEMPORAL_LAYERS: usize = 4;
/// An encoding with no packet for this long is not being sent (the sender turned it off).
const INACTIVE_AFTER_US: i64 = 1_000_000;

/// An encoding's bitrate, per temporal layer, over the core's rate intervals: up at once to an
/// interval's rate above it, down by a quarter of the difference per interval. What a layer
/// costs is its peaks, not its dips: a sender short of CPU sends in bursts (Chromium encoding
/// noise on a loaded machine: one layer measured 110 kbit/s to 1.2 Mbit/s from one 500 ms
/// interval to the next), and a receiver moved up in a dip and down at the next peak switches,
/// and waits for a key frame, every second. Falling by halves, a second of dip in Chromium's
/// fake camera at 720 lines (500 kbit/s to 1 Mbit/s otherwise) priced it low enough for a
/// receiver behind a 600 kbit/s link to be moved up to it, and down again with two freezes.
#[derive(Clone, Debug, Default)]
pub struct LayerRate {
    bytes: [u64; TEMPORAL_LAYERS],
    bps: [u64; TEMPORAL_LAYERS],
    last_packet_us: Option<i64>,
    /// Highest temporal layer seen (0 for streams without temporal layers).
    pub max_temporal: u8,
}

impl LayerRate {
    fn on_packet(&mut self, len: usize, temporal: Option<u8>, now_us: i64) {
        let t = usize::from(temporal.unwrap_or(0)).min(TEMPORAL_LAYERS - 1);
        self.bytes[t] += len as u64;
        self.max_temporal = self.max_temporal.max(t as u8);
        self.last_packet_us = Some(now_us);
    }

    /// Closes an interval of `elapsed_us`.
    pub fn tick(&mut self, elapsed_us: i64) {
        let elapsed_us = elapsed_us.max(1) as u64;
        for (bps, bytes) in self.bps.iter_mut().zip(&mut self.bytes) {
            let measured = *bytes * 8 * 1_000_000 / elapsed_us;
            *bps = measured.max(*bps - (*bps - measured.min(*bps)) / 4);
            *bytes = 0;
        }
    }

    /// Bitrate of temporal layers 0..=`temporal`.
    pub fn bps_up_to(&self, temporal: u8) -> u64 {
        self.bps[..=usize::from(temporal).min(TEMPORAL_LAYERS - 1)]
            .iter()
            .sum()
    }

    /// Packets arrive and a rate is measured.
    pub fn is_active(&self, now_us: i64) -> bool {
        self.last_packet_us
            .is_some_and(|t| now_us - t < INACTIVE_AFTER_US)
            && self.bps_up_to(self.max_temporal) > 0
    }
}

/// Rate-limits key-frame requests to the sender.
#[derive(Default)]
pub struct KeyframeRequests {
    last: Option<Instant>,
}

impl KeyframeRequests {
    /// True if a request may go to the sender now (and notes that it does).
    pub fn allow(&mut self, now: Instant) -> bool {
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < KEYFRAME_REQUEST_INTERVAL)
        {
            return false;
        }
        self.last = Some(now);
        true
    }
}

/// What a packet on an SSRC its sender has not been heard on says of its stream: its sdes:mid,
/// RtpStreamId and RepairedRtpStreamId header extensions (read before they are blanked),
/// whether its payload type is one of the sender's RTX payload types, and the media whose
/// payload types include it (`None` if neither or both).
#[derive(Clone, Copy, Debug, Default)]
pub struct StreamIds<'a> {
    pub mid: Option<&'a [u8]>,
    pub rid: Option<&'a [u8]>,
    pub repaired_rid: Option<&'a [u8]>,
    pub rtx_payload: bool,
    pub kind: Option<MediaKind>,
}

impl StreamIds<'_> {
    /// Whether the packet names no stream at all (none of the three extensions).
    pub fn names_nothing(&self) -> bool {
        self.mid.is_none() && self.rid.is_none() && self.repaired_rid.is_none()
    }
}

/// What [`Producer::learn`] made of a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Learnt {
    /// The SSRC is this encoding's (its RTX stream's when `rtx`) from now on.
    Bound { encoding: u8, rtx: bool },
    /// The packet names an encoding (or its RTX stream) already learnt under another SSRC.
    Taken,
    /// The packet names no stream of this source.
    NotNamed,
}

pub struct Producer {
    /// The sending endpoint's slot.
    pub owner: usize,
    pub kind: MediaKind,
    /// The source's name (e.g. `<endpoint>-v0`), as receivers' constraints may name it.
    pub name: String,
    pub encodings: Vec<Encoding>,
    /// The MID naming its packets, when its SSRCs are learnt from them.
    pub mid: Option<Mid>,
    /// The RIDs naming its encodings (empty when their SSRCs were signalled, or for a source of
    /// one encoding named by its MID).
    pub rids: Vec<String>,
    /// The SSRC receivers get it under, and its RTX SSRC.
    output: (u32, Option<u32>),
    pub consumers: Vec<Consumer>,
    /// Its sender's speech, from the audio levels of its packets (audio only).
    pub speech: SpeechActivity,
}

impl Producer {
    pub fn new(owner: usize, spec: &ProducerSpec) -> Producer {
        let clock_rate = match spec.kind {
            MediaKind::Audio => 48_000,
            MediaKind::Video => 90_000,
        };
        Producer {
            owner,
            kind: spec.kind,
            name: spec.name.clone(),
            mid: spec.mid,
            rids: spec.rids.clone(),
            encodings: spec
                .encodings
                .iter()
                .map(|&(ssrc, rtx_ssrc)| Encoding {
                    ssrc,
                    rtx_ssrc,
                    stats: ReceiveStats::new(clock_rate),
                    rtx_stats: rtx_ssrc.map(|_| ReceiveStats::new(clock_rate)),
                    // Made the first time the encoding is forwarded (`Router::fan_out`): a
                    // sender that never sends (allocated, sources signalled, not connected)
                    // costs no cache.
                    cache: None,
                    nacks: rtx_ssrc.map(|_| NackGenerator::new()),
                    height: None,
                    rate: LayerRate::default(),
                    keyframes: KeyframeRequests::default(),
                })
                .collect(),
            output: spec.output_ssrcs(),
            consumers: Vec::new(),
            speech: SpeechActivity::default(),
        }
    }

    /// Made from this spec (a source that stays keeps its state, the SSRCs learnt for its MID
    /// and RIDs included).
    pub fn is(&self, spec: &ProducerSpec) -> bool {
        self.kind == spec.kind
            && self.output == spec.output_ssrcs()
            && self.encodings.len() == spec.encodings.len()
            && self.mid == spec.mid
            && self.rids == spec.rids
            && (spec.is_learnt()
                || self
                    .encodings
                    .iter()
                    .zip(&spec.encodings)
                    .all(|(e, s)| (e.ssrc, e.rtx_ssrc) == *s))
    }

    /// Its SSRCs are learnt from its packets rather than signalled.
    pub fn is_learnt(&self) -> bool {
        self.mid.is_some() || !self.rids.is_empty()
    }

    /// Learns `ssrc` from a packet that names one of this source's encodings by `ids`: the
    /// MID must be the source's (any, for a source named by RIDs alone); the RtpStreamId names
    /// an encoding's media stream, the RepairedRtpStreamId its RTX stream; a source without
    /// RIDs has one encoding, whose RTX stream is told by its payload type. A sender that
    /// negotiated RTX (`nackable`) is NACKed from its first packet on: its RTX SSRC shows with
    /// its first retransmission.
    pub fn learn(&mut self, ids: &StreamIds<'_>, ssrc: u32, nackable: bool) -> Learnt {
        if !self.is_learnt() || self.mid.is_some_and(|mid| ids.mid != Some(mid.as_bytes())) {
            return Learnt::NotNamed;
        }
        let named = if self.rids.is_empty() {
            Some((0, ids.rtx_payload))
        } else {
            let position = |rid: &[u8]| self.rids.iter().position(|r| r.as_bytes() == rid);
            match (ids.rid, ids.repaired_rid) {
                (Some(rid), _) => position(rid).map(|i| (i, false)),
                (None, Some(rid)) => position(rid).map(|i| (i, true)),
                (None, None) => None,
            }
        };
        let Some((index, rtx)) = named else {
            return Learnt::NotNamed;
        };
        let clock_rate = self.clock_rate();
        let Some(e) = self.encodings.get_mut(index) else {
            return Learnt::NotNamed;
        };
        if rtx {
            if e.rtx_ssrc.is_some() {
                return Learnt::Taken;
            }
            e.rtx_ssrc = Some(ssrc);
            e.rtx_stats = Some(ReceiveStats::new(clock_rate));
            e.nacks.get_or_insert_with(NackGenerator::new);
        } else {
            if e.ssrc != 0 {
                return Learnt::Taken;
            }
            e.ssrc = ssrc;
            if nackable {
                e.nacks.get_or_insert_with(NackGenerator::new);
            }
        }
        Learnt::Bound {
            encoding: index as u8,
            rtx,
        }
    }

    fn clock_rate(&self) -> u32 {
        match self.kind {
            MediaKind::Audio => 48_000,
            MediaKind::Video => 90_000,
        }
    }

    /// The SSRC receivers get this source under, and its RTX SSRC.
    pub fn output_ssrcs(&self) -> (u32, Option<u32>) {
        self.output
    }

    /// Every SSRC the sender sends for this source (known so far).
    pub fn ssrcs(&self) -> impl Iterator<Item = u32> + '_ {
        self.encodings
            .iter()
            .flat_map(|e| std::iter::once(e.ssrc).chain(e.rtx_ssrc))
            .filter(|&ssrc| ssrc != 0)
    }

    pub fn consumer_of(&mut self, receiver: usize) -> Option<&mut Consumer> {
        self.consumers.iter_mut().find(|c| c.receiver == receiver)
    }

    /// Bytes of this producer's state (consumers by number, not by the capacity their vector
    /// grew to, so the figure returns to where it was when receivers leave).
    pub fn heap_bytes(&self) -> usize {
        std::mem::size_of::<Producer>()
            + self.name.capacity()
            + self.rids.iter().map(String::capacity).sum::<usize>()
            + self.encodings.capacity() * std::mem::size_of::<Encoding>()
            + self
                .encodings
                .iter()
                .map(|e| {
                    e.cache.as_ref().map_or(0, |c| c.heap_bytes())
                        + e.nacks.as_ref().map_or(0, |n| n.heap_bytes())
                })
                .sum::<usize>()
            + self.consumers.len() * std::mem::size_of::<Consumer>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_producer_holds_no_packet_cache_until_it_is_forwarded() {
        let spec = ProducerSpec {
            kind: MediaKind::Video,
            name: "cam".to_owned(),
            encodings: vec![(1, Some(2)), (3, Some(4)), (5, Some(6))],
            mid: None,
            rids: Vec::new(),
            output: None,
        };
        let producer = Producer::new(0, &spec);
        assert!(producer.encodings.iter().all(|e| e.cache.is_none()));
        // Three encodings with their NACK generators, not 3 x 256 x 1500 bytes of cache.
        assert!(
            producer.heap_bytes() < 16 * 1024,
            "{}",
            producer.heap_bytes()
        );
    }

    #[test]
    fn a_layer_costs_its_peaks_and_falls_by_quarters() {
        let mut rate = LayerRate::default();
        let interval = |rate: &mut LayerRate, bytes: usize| {
            rate.on_packet(bytes, Some(0), 0);
            rate.tick(500_000);
            rate.bps_up_to(0)
        };
        // 25 kB in 500 ms: 400 kbit/s at once.
        assert_eq!(interval(&mut rate, 25_000), 400_000);
        // A dip to 100 kbit/s takes a quarter of the distance only; a burst is taken at once.
        assert_eq!(interval(&mut rate, 6_250), 325_000);
        assert_eq!(interval(&mut rate, 50_000), 800_000);
        assert_eq!(interval(&mut rate, 0), 600_000);
        assert_eq!(interval(&mut rate, 0), 450_000);
    }
}
