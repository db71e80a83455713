//! One conference: its members, the producers they send and the consumers each producer is
//! forwarded to, and the fan-out of one packet. Routers share nothing: a packet is only ever
//! forwarded to consumers of its own router.

use std::collections::HashMap;

use rand::Rng;
use rustc_hash::FxHashMap;
use tutti_rtp::codec::{self, FrameInfo};
use tutti_rtp::rtcp;
use tutti_rtp::rtp;

use super::allocator::{Allocation, LayerOption};
use super::consumer::{Admission, Consumer, Layer, Outgoing, TAG_ROOM};
use super::endpoint::Endpoint;
use super::limits::RateLimit;
use super::outbox::{Outbox, SLOT};
use super::producer::{Learnt, Producer, StreamIds};
use super::retransmission::RetransmissionCache;
use super::sources::ProducerSpec;
use super::speakers::{Dominance, Score};
use super::{MediaKind, Mid};

/// Most encodings (simulcast layers) a producer may have.
pub const MAX_ENCODINGS: usize = 8;

/// Where a received SSRC goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    pub producer: usize,
    pub encoding: u8,
    /// The encoding's RTX stream.
    pub rtx: bool,
}

/// What one fan-out sent.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sent {
    pub packets: u64,
    pub bytes: u64,
    /// Some consumer forwards this encoding (it may still not be connected).
    pub wanted: bool,
    /// Consumers that moved to this encoding here, to a higher one than before, to a lower
    /// one, or as their first.
    pub switched_up: u32,
    pub switched_down: u32,
    pub started: u32,
    /// Packets not sent to a consumer because their temporal layer is above its target.
    pub dropped_temporal: u32,
    /// A consumer waits for a key frame of this encoding.
    pub keyframe_wanted: bool,
    /// Of `packets`, those sent on relays to other bridges, and their datagrams' bytes.
    pub relayed: u64,
    pub relayed_bytes: u64,
}

/// Why a packet's SSRC was not learnt ([`Router::learn`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LearnError {
    /// Someone signalled the SSRC.
    Signalled,
    /// The sender has no source whose SSRCs are learnt.
    NoLearntSource,
    /// The packet names none of its sender's learnt sources' streams (an unknown MID or RID,
    /// or none).
    NotNamed,
    /// The stream it names was learnt under another SSRC.
    Taken,
}

/// Why a receiver's NACK could not be answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetransmitError {
    /// Not in the cache (too old, never received, or from a producer that is gone).
    Missed,
    /// In the cache, but the receiver cannot be sent to now.
    NotSent,
    /// Video of an encoding the receiver is no longer forwarded: it decodes from the key frame
    /// that began the one it gets now, and the packet would take its link for nothing (behind
    /// a 600 kbit/s link, Chromium NACKs what the link dropped of the layer it was moved down
    /// from, each packet up to ten times).
    Superseded,
}

#[derive(Default)]
pub struct Router {
    /// Endpoint slots, in join order.
    pub members: Vec<usize>,
    pub by_endpoint_id: HashMap<String, usize>,
    producers: Vec<Option<Producer>>,
    free_producers: Vec<usize>,
    /// Every signalled SSRC a producer receives.
    routes: FxHashMap<u32, Route>,
    /// The SSRCs learnt from senders' packets (sources named by MID or RID), by sender slot:
    /// one sender's learnt SSRC is never another's, so what one sends cannot take another's
    /// stream, whenever it sends it.
    learnt: FxHashMap<(usize, u32), Route>,
    /// The SSRCs receivers get (and name in their RTCP) → producer.
    outputs: FxHashMap<u32, usize>,
    /// Buffers of the allocator runs, kept between them.
    allocation: Allocation,
    /// The producer behind each of the current run's candidates, and its owner's slot.
    allocated: Vec<(usize, usize)>,
    /// The owners (by endpoint tag) a receiver gets video from, as the current run decides.
    forwarded: Vec<u32>,
    /// The dominant speaker and who spoke before (member slots).
    speakers: Dominance<usize>,
    /// Each member's speech score of the last bucket (kept between buckets).
    scores: Vec<(usize, Score)>,
    /// Members in speaker order: the recent speakers, most recent first, then the others in
    /// join order (kept between allocator runs).
    ranked_members: Vec<usize>,
    /// Audio producers, their owners and scores, loudest first (kept between buckets).
    loudest: Vec<(usize, usize, Score)>,
    /// SRTP and SRTCP packets its members may send together (`conference_packet_rate`).
    pub packet_limit: RateLimit,
    /// The audio the current run's receiver is forwarded, bit/s (measured as it comes in).
    audio_bps: u64,
}

impl Router {
    /// A conference whose members may send `packet_rate` packets a second together (0: no
    /// limit).
    pub fn new(packet_rate: u32) -> Router {
        Router {
            packet_limit: RateLimit::new(packet_rate),
            ..Router::default()
        }
    }

    /// Where a signalled SSRC goes.
    pub fn route(&self, ssrc: u32) -> Option<Route> {
        self.routes.get(&ssrc).copied()
    }

    /// Where a packet of the member in `slot` on `ssrc` goes when its SSRC was learnt from its
    /// packets.
    pub fn learnt_route(&self, slot: usize, ssrc: u32) -> Option<Route> {
        self.learnt.get(&(slot, ssrc)).copied()
    }

    /// The producer a receiver knows under `ssrc` (its output SSRC or output RTX SSRC).
    pub fn output(&self, ssrc: u32) -> Option<usize> {
        self.outputs.get(&ssrc).copied()
    }

    pub fn producer(&self, p: usize) -> Option<&Producer> {
        self.producers.get(p)?.as_ref()
    }

    pub fn producer_mut(&mut self, p: usize) -> Option<&mut Producer> {
        self.producers.get_mut(p)?.as_mut()
    }

    /// Gives `owner` exactly the producers `specs` describe: the ones it has that stay keep their
    /// state and consumers; a spec naming an SSRC another member sends is skipped.
    pub fn set_producers(
        &mut self,
        owner: usize,
        specs: &[ProducerSpec],
        endpoints: &mut [Option<Endpoint>],
        rng: &mut impl Rng,
    ) {
        let Some(current) = endpoints[owner].as_ref().map(|e| e.producers.clone()) else {
            return;
        };
        let mut kept = Vec::new();
        for p in current {
            match self.producer(p) {
                Some(producer) if specs.iter().any(|s| producer.is(s)) => kept.push(p),
                _ => self.remove_producer(p, endpoints),
            }
        }
        for spec in specs {
            if kept
                .iter()
                .any(|&p| self.producer(p).is_some_and(|producer| producer.is(spec)))
            {
                continue;
            }
            if let Some(p) = self.add_producer(owner, spec, endpoints, rng) {
                kept.push(p);
            }
        }
        if let Some(endpoint) = endpoints[owner].as_mut() {
            endpoint.producers = kept;
        }
    }

    fn add_producer(
        &mut self,
        owner: usize,
        spec: &ProducerSpec,
        endpoints: &mut [Option<Endpoint>],
        rng: &mut impl Rng,
    ) -> Option<usize> {
        if spec.encodings.is_empty() || spec.encodings.len() > MAX_ENCODINGS {
            return None;
        }
        let mut producer = Producer::new(owner, spec);
        let (output, output_rtx) = producer.output_ssrcs();
        // Its SSRCs, sent or forwarded under, must be no other producer's.
        let in_use =
            |ssrc: u32| self.routes.contains_key(&ssrc) || self.outputs.contains_key(&ssrc);
        let taken = producer.ssrcs().any(in_use)
            || [Some(output), output_rtx].into_iter().flatten().any(in_use);
        if taken {
            return None;
        }
        let local = endpoints[owner]
            .as_ref()
            .is_some_and(|o| o.relay().is_none());
        for &member in &self.members {
            let Some(receiver) = endpoints[member].as_mut() else {
                continue;
            };
            if member != owner && receives(receiver, spec.kind, local, output) {
                producer
                    .consumers
                    .push(new_consumer(member, receiver, spec.kind, output, rng));
            }
        }
        let p = match self.free_producers.pop() {
            Some(p) => p,
            None => {
                self.producers.push(None);
                self.producers.len() - 1
            }
        };
        for (encoding, e) in producer.encodings.iter().enumerate() {
            let route = |rtx| Route {
                producer: p,
                encoding: encoding as u8,
                rtx,
            };
            if e.ssrc != 0 {
                self.routes.insert(e.ssrc, route(false));
            }
            if let Some(rtx) = e.rtx_ssrc {
                self.routes.insert(rtx, route(true));
            }
        }
        self.outputs.insert(output, p);
        if let Some(rtx) = output_rtx {
            self.outputs.insert(rtx, p);
        }
        self.producers[p] = Some(producer);
        Some(p)
    }

    /// Removes a producer; each receiver keeps where its stream stood, in case it returns.
    fn remove_producer(&mut self, p: usize, endpoints: &mut [Option<Endpoint>]) {
        let Some(producer) = self.producers.get_mut(p).and_then(Option::take) else {
            return;
        };
        let (output, output_rtx) = producer.output_ssrcs();
        for consumer in &producer.consumers {
            if let Some(receiver) = endpoints[consumer.receiver].as_mut() {
                retire(consumer, receiver, output, output_rtx);
            }
        }
        for ssrc in producer.ssrcs() {
            if producer.is_learnt() {
                self.learnt.remove(&(producer.owner, ssrc));
            } else {
                self.routes.remove(&ssrc);
            }
        }
        self.outputs.remove(&output);
        if let Some(rtx) = output_rtx {
            self.outputs.remove(&rtx);
        }
        if let Some(owner) = endpoints[producer.owner].as_mut() {
            owner.producers.retain(|&q| q != p);
        }
        self.free_producers.push(p);
    }

    /// A packet of `owner` on `ssrc`, which none of its producers receives, names a stream by
    /// `ids`: when it names an encoding of one of `owner`'s learnt sources that has no SSRC yet,
    /// the SSRC is that encoding's (or its RTX stream's) from now on. A packet that names
    /// nothing (no MID, RID or repaired RID: a sender that negotiated no MID extension) is
    /// placed by its payload type, as RFC 8843 (9.2) has a BUNDLE receiver do: on its sender's
    /// only source of that payload type's media named by a MID alone, if there is exactly
    /// one. (GStreamer's webrtcbin 1.22 offers an m-line whose caps have no SSRC yet without
    /// any, and sends no MID.) An SSRC signalled by anyone is never learnt.
    pub fn learn(
        &mut self,
        owner: usize,
        owner_producers: &[usize],
        ids: &StreamIds<'_>,
        ssrc: u32,
        nackable: bool,
    ) -> Result<Route, LearnError> {
        if self.routes.contains_key(&ssrc) {
            return Err(LearnError::Signalled);
        }
        let mut error = LearnError::NoLearntSource;
        for &p in owner_producers {
            let Some(producer) = self
                .producer_mut(p)
                .filter(|producer| producer.owner == owner && producer.is_learnt())
            else {
                continue;
            };
            match producer.learn(ids, ssrc, nackable) {
                Learnt::Bound { encoding, rtx } => {
                    let route = Route {
                        producer: p,
                        encoding,
                        rtx,
                    };
                    self.learnt.insert((owner, ssrc), route);
                    return Ok(route);
                }
                Learnt::Taken => error = LearnError::Taken,
                Learnt::NotNamed if error == LearnError::NoLearntSource => {
                    error = LearnError::NotNamed
                }
                Learnt::NotNamed => {}
            }
        }
        if error == LearnError::NotNamed && ids.names_nothing() {
            if let Some((p, mid)) = self.only_mid_source(owner, owner_producers, ids.kind) {
                let named = StreamIds {
                    mid: Some(mid.as_bytes()),
                    ..*ids
                };
                return self.learn(owner, &[p], &named, ssrc, nackable);
            }
        }
        Err(error)
    }

    /// `owner`'s one learnt source of media `kind` named by a MID alone (no RIDs), with its
    /// MID; `None` if it has none or several.
    fn only_mid_source(
        &self,
        owner: usize,
        owner_producers: &[usize],
        kind: Option<MediaKind>,
    ) -> Option<(usize, Mid)> {
        let kind = kind?;
        let mut found = None;
        for &p in owner_producers {
            let Some(producer) = self.producer(p).filter(|producer| {
                producer.owner == owner && producer.kind == kind && producer.rids.is_empty()
            }) else {
                continue;
            };
            let Some(mid) = producer.mid else {
                continue;
            };
            if found.is_some() {
                return None;
            }
            found = Some((p, mid));
        }
        found
    }

    /// Makes `receiver`'s consumers match what it receives now (after it joined, changed its
    /// media or was given MIDs), and gives them the MIDs it receives their streams under. A
    /// consumer that goes leaves the receiver where its stream stood, as a producer that goes
    /// does. Returns the producers it got a consumer of here (a video one starts at a key frame:
    /// the caller asks their senders for one).
    pub fn update_consumers(
        &mut self,
        receiver: usize,
        endpoints: &mut [Option<Endpoint>],
        rng: &mut impl Rng,
    ) -> Vec<usize> {
        let mut started = Vec::new();
        for (p, producer) in self.producers.iter_mut().enumerate() {
            let Some(producer) = producer.as_mut().filter(|q| q.owner != receiver) else {
                continue;
            };
            let local = endpoints[producer.owner]
                .as_ref()
                .is_some_and(|o| o.relay().is_none());
            let Some(endpoint) = endpoints[receiver].as_mut() else {
                break;
            };
            let (output, output_rtx) = producer.output_ssrcs();
            let has = producer
                .consumers
                .iter()
                .position(|c| c.receiver == receiver);
            let wants = receives(endpoint, producer.kind, local, output);
            match has {
                None if wants => {
                    let kind = producer.kind;
                    producer
                        .consumers
                        .push(new_consumer(receiver, endpoint, kind, output, rng));
                    started.push(p);
                }
                Some(i) if !wants => {
                    let consumer = producer.consumers.remove(i);
                    retire(&consumer, endpoint, output, output_rtx);
                }
                Some(i) => producer.consumers[i].mid = endpoint.receive_mid(output),
                None => {}
            }
        }
        started
    }

    pub fn add_member(&mut self, endpoint_id: String, slot: usize) {
        self.members.push(slot);
        self.by_endpoint_id.insert(endpoint_id, slot);
    }

    /// Removes a member: its producers (their receivers keep where their streams stood) and its
    /// consumers.
    pub fn remove_member(&mut self, slot: usize, endpoints: &mut [Option<Endpoint>]) {
        let producers = endpoints[slot]
            .as_ref()
            .map(|e| e.producers.clone())
            .unwrap_or_default();
        for p in producers {
            self.remove_producer(p, endpoints);
        }
        for producer in self.producers.iter_mut().flatten() {
            producer.consumers.retain(|c| c.receiver != slot);
        }
        self.members.retain(|m| *m != slot);
        self.by_endpoint_id.retain(|_, s| *s != slot);
        self.speakers.remove(slot);
        if self.members.is_empty() {
            self.producers = Vec::new();
            self.free_producers = Vec::new();
            self.routes = FxHashMap::default();
            self.learnt = FxHashMap::default();
            self.outputs = FxHashMap::default();
        }
    }

    /// Sends a packet of encoding `encoding` of producer `p` to every consumer that admits it
    /// (see [`Consumer::admit`]), each written and encrypted for its receiver; caches it for
    /// their NACKs. `frame` is what its payload says of its frame.
    #[allow(clippy::too_many_arguments)]
    pub fn fan_out(
        &mut self,
        p: usize,
        encoding: u8,
        frame: Option<FrameInfo>,
        packet: &[u8],
        header: &rtp::Header,
        sender_twcc: Option<u8>,
        now_us: i64,
        cache_packets: usize,
        endpoints: &mut [Option<Endpoint>],
        out: &mut impl Outbox,
    ) -> Sent {
        let mut sent = Sent::default();
        let Some(producer) = self.producers.get_mut(p).and_then(Option::as_mut) else {
            return sent;
        };
        let (ssrc, rtx_ssrc) = producer.output_ssrcs();
        let outgoing = Outgoing {
            packet,
            header,
            kind: producer.kind,
            encoding,
            frame,
            ssrc,
            rtx_ssrc,
            sender_twcc,
            now_us,
        };
        for consumer in producer.consumers.iter_mut() {
            match consumer.admit(&outgoing) {
                Admission::Skip => {
                    let wanted = consumer.target.is_some_and(|t| t.spatial == encoding);
                    sent.keyframe_wanted |= wanted && consumer.waiting_for_keyframe;
                    continue;
                }
                Admission::DropTemporal => {
                    sent.wanted = true;
                    sent.dropped_temporal += 1;
                    continue;
                }
                Admission::Switch { from } => match from {
                    None => sent.started += 1,
                    Some(from) if from < encoding => sent.switched_up += 1,
                    Some(_) => sent.switched_down += 1,
                },
                Admission::Forward => {}
            }
            sent.wanted = true;
            let Some(receiver) = endpoints[consumer.receiver].as_mut() else {
                continue;
            };
            let mut written = 0;
            out.push(|slot| {
                let w = consumer.forward(receiver, outgoing, slot);
                written = w.map_or(0, |w| w.1) as u64;
                w
            });
            if written > 0 {
                sent.packets += 1;
                sent.bytes += written;
                if consumer.relay {
                    sent.relayed += 1;
                    sent.relayed_bytes += written;
                }
            }
        }
        if sent.wanted && producer.kind == MediaKind::Video {
            if let Some(e) = producer.encodings.get_mut(usize::from(encoding)) {
                e.cache
                    .get_or_insert_with(|| RetransmissionCache::new(cache_packets))
                    .insert(header.sequence, packet);
            }
        }
        sent
    }

    /// Answers `receiver`'s NACK for `sequence` (in its numbering) of producer `p` from the
    /// cache of the encoding it forwards.
    #[allow(clippy::too_many_arguments)]
    pub fn retransmit(
        &mut self,
        p: usize,
        receiver: usize,
        sequence: u16,
        sender_twcc: Option<u8>,
        now_us: i64,
        endpoints: &mut [Option<Endpoint>],
        out: &mut impl Outbox,
    ) -> Result<usize, RetransmitError> {
        let producer = self
            .producers
            .get_mut(p)
            .and_then(Option::as_mut)
            .ok_or(RetransmitError::Missed)?;
        let (ssrc, rtx_ssrc) = producer.output_ssrcs();
        let kind = producer.kind;
        let owner = producer.owner;
        let Producer {
            encodings,
            consumers,
            ..
        } = producer;
        let consumer = consumers
            .iter_mut()
            .find(|c| c.receiver == receiver)
            .ok_or(RetransmitError::Missed)?;
        let (layer, original_sequence) =
            consumer.incoming(sequence).ok_or(RetransmitError::Missed)?;
        if kind == MediaKind::Video && consumer.current != Some(layer) {
            return Err(RetransmitError::Superseded);
        }
        let original = encodings
            .get(usize::from(layer))
            .and_then(|e| e.cache.as_ref()?.get(original_sequence))
            .ok_or(RetransmitError::Missed)?;
        let header = rtp::parse(original).map_err(|_| RetransmitError::Missed)?;
        let codec = endpoints[owner]
            .as_ref()
            .map_or(codec::Codec::Other, |o| o.video_codec(header.payload_type));
        let frame = codec::frame_info(codec, header.payload(original));
        let receiver = endpoints[receiver]
            .as_mut()
            .ok_or(RetransmitError::NotSent)?;
        let p = Outgoing {
            packet: original,
            header: &header,
            kind,
            encoding: layer,
            frame,
            ssrc,
            rtx_ssrc,
            sender_twcc,
            now_us,
        };
        // Held by the pacer counts as sent: it leaves when the pacer lets it.
        let mut sent = None;
        out.push(|slot| {
            let sealed = consumer.retransmit(receiver, p, slot)?;
            sent = Some(sealed.bytes());
            sealed.now()
        });
        sent.ok_or(RetransmitError::NotSent)
    }

    /// Answers a relay's NACK for `sequence` of the encoding whose SSRC it named (`route`)
    /// from that encoding's cache, as the sender sent it (RTX on the encoding's RTX SSRC).
    #[allow(clippy::too_many_arguments)]
    pub fn retransmit_to_relay(
        &mut self,
        route: Route,
        relay: usize,
        sequence: u16,
        sender_twcc: Option<u8>,
        now_us: i64,
        endpoints: &mut [Option<Endpoint>],
        out: &mut impl Outbox,
    ) -> Result<usize, RetransmitError> {
        let producer = self
            .producers
            .get_mut(route.producer)
            .and_then(Option::as_mut)
            .ok_or(RetransmitError::Missed)?;
        let kind = producer.kind;
        let Producer {
            encodings,
            consumers,
            ..
        } = producer;
        let consumer = consumers
            .iter_mut()
            .find(|c| c.receiver == relay && c.relay)
            .ok_or(RetransmitError::Missed)?;
        let e = encodings
            .get(usize::from(route.encoding))
            .ok_or(RetransmitError::Missed)?;
        let original = e
            .cache
            .as_ref()
            .and_then(|c| c.get(sequence))
            .ok_or(RetransmitError::Missed)?;
        let header = rtp::parse(original).map_err(|_| RetransmitError::Missed)?;
        let relay = endpoints[relay].as_mut().ok_or(RetransmitError::NotSent)?;
        let p = Outgoing {
            packet: original,
            header: &header,
            kind,
            encoding: route.encoding,
            frame: None,
            ssrc: e.ssrc,
            rtx_ssrc: e.rtx_ssrc,
            sender_twcc,
            now_us,
        };
        let mut sent = None;
        out.push(|slot| {
            let w = consumer.relay_retransmit(relay, p, slot);
            sent = w.map(|(_, n)| n);
            w
        });
        sent.ok_or(RetransmitError::NotSent)
    }

    /// A video source with an RTX stream towards `receiver`, forwarded or not: probe padding
    /// goes on that stream when there is nothing to resend. Its producer and RTX SSRC.
    pub fn padding_stream(&self, receiver: usize) -> Option<(usize, u32)> {
        self.producers
            .iter()
            .enumerate()
            .filter_map(|(p, producer)| Some((p, producer.as_ref()?)))
            .filter(|(_, producer)| {
                producer.kind == MediaKind::Video
                    && producer.consumers.iter().any(|c| c.receiver == receiver)
            })
            .find_map(|(p, producer)| Some((p, producer.output_ssrcs().1?)))
    }

    /// A video source `receiver` is forwarded, and the sequence number (in its numbering) of
    /// the last packet it got: probe clusters towards it are filled with retransmissions of
    /// what it was just sent.
    pub fn probe_source(&self, receiver: usize) -> Option<(usize, u16)> {
        self.producers
            .iter()
            .enumerate()
            .filter_map(|(p, producer)| Some((p, producer.as_ref()?)))
            .filter(|(_, producer)| producer.kind == MediaKind::Video)
            .find_map(|(p, producer)| {
                let consumer = producer
                    .consumers
                    .iter()
                    .find(|c| c.receiver == receiver && c.current.is_some())?;
                Some((p, consumer.last_sequence()?))
            })
    }

    /// Passes a sender's SR for encoding `encoding` of producer `p` to the receivers that get
    /// that encoding, under the output SSRC, with its RTP time in the receiver's timestamps and
    /// without the sender's report blocks (those describe the sender's own reception). Returns
    /// how many were sent.
    pub fn forward_sender_report(
        &mut self,
        p: usize,
        encoding: u8,
        info: &rtcp::SenderInfo,
        endpoints: &mut [Option<Endpoint>],
        out: &mut impl Outbox,
    ) -> u64 {
        let Some(producer) = self.producers.get(p).and_then(Option::as_ref) else {
            return 0;
        };
        let ssrc = producer.output_ssrcs().0;
        let encoding_ssrc = producer
            .encodings
            .get(usize::from(encoding))
            .map_or(0, |e| e.ssrc);
        let mut reports = 0;
        for consumer in &producer.consumers {
            // A relay gets the report as it came, as it gets the encoding.
            let (ssrc, offset) = if consumer.relay {
                (encoding_ssrc, 0)
            } else {
                match consumer.timestamp_offset(encoding) {
                    Some(offset) => (ssrc, offset),
                    None => continue,
                }
            };
            let Some(receiver) = endpoints[consumer.receiver].as_mut() else {
                continue;
            };
            let info = rtcp::SenderInfo {
                rtp_time: info.rtp_time.wrapping_add(offset),
                ..*info
            };
            let mut sent = false;
            out.push(|slot| {
                let n = rtcp::write_sender_report(&mut slot[..SLOT - TAG_ROOM], ssrc, &info, &[])
                    .ok()?;
                let w = receiver.transport.protect_rtcp(slot, n);
                sent = w.is_some();
                w
            });
            reports += sent as u64;
        }
        reports
    }

    /// Closes a rate interval of `elapsed_us` for every encoding of the conference.
    pub fn tick_rates(&mut self, elapsed_us: i64) {
        for producer in self.producers.iter_mut().flatten() {
            for e in &mut producer.encodings {
                e.rate.tick(elapsed_us);
            }
        }
    }

    /// Runs `receiver`'s allocator over the video sources of the others with `bandwidth_bps`
    /// (unless the receiver set its own figure) and sets its consumers' targets; then
    /// [`Router::desired_bps`] says what it would take with unlimited bandwidth. Returns the endpoints it now gets video from (their participant ids,
    /// in the allocator's order) when they differ from what it was last told. Nothing is
    /// allocated unless that list changed.
    pub fn allocate(
        &mut self,
        receiver: usize,
        endpoints: &mut [Option<Endpoint>],
        bandwidth_bps: u64,
        last_n_limit: Option<usize>,
        now_us: i64,
    ) -> Option<Vec<String>> {
        self.allocation.clear();
        self.allocated.clear();
        self.ranked_members.clear();
        let order = self.speakers.order();
        self.ranked_members.extend_from_slice(order);
        self.ranked_members
            .extend(self.members.iter().filter(|m| !order.contains(m)));
        let constraints = &endpoints[receiver].as_ref()?.constraints;
        for &member in &self.ranked_members {
            let Some(owner) = endpoints[member].as_ref().filter(|_| member != receiver) else {
                continue;
            };
            for &p in &owner.producers {
                let Some(producer) = self.producers.get(p).and_then(Option::as_ref) else {
                    continue;
                };
                if producer.kind != MediaKind::Video
                    || !producer.consumers.iter().any(|c| c.receiver == receiver)
                {
                    continue;
                }
                let (id, name) = (&owner.participant_id, &producer.name);
                let forwarded = producer
                    .consumers
                    .iter()
                    .any(|c| c.receiver == receiver && c.target.is_some());
                self.allocation.push(
                    constraints.priority(id, name),
                    constraints.max_height_for(id, name),
                    forwarded,
                    layer_options(producer, now_us),
                );
                self.allocated.push((p, member));
            }
        }
        // The estimate covers everything sent to the receiver: its audio comes first, video
        // gets the rest (a figure of its own is for video alone).
        self.audio_bps = self
            .producers
            .iter()
            .flatten()
            .filter(|p| {
                p.kind == MediaKind::Audio && p.consumers.iter().any(|c| c.receiver == receiver)
            })
            .flat_map(|p| &p.encodings)
            .filter(|e| e.rate.is_active(now_us))
            .map(|e| e.rate.bps_up_to(e.rate.max_temporal))
            .sum();
        let bps = constraints
            .assumed_bandwidth_bps
            .unwrap_or(bandwidth_bps.saturating_sub(self.audio_bps));
        let last_n = match (constraints.last_n, last_n_limit) {
            (Some(asked), Some(limit)) => Some(asked.min(limit)),
            (asked, limit) => asked.or(limit),
        };
        self.allocation.run(last_n, bps);
        self.forwarded.clear();
        for (i, &(p, owner)) in self.allocated.iter().enumerate() {
            let mut layer = self.allocation.chosen[i];
            if let Some(consumer) = self.producers[p]
                .as_mut()
                .and_then(|producer| producer.consumer_of(receiver))
            {
                layer = consumer.settle(layer, now_us);
                consumer.wanted_height = self.allocation.wanted[i];
            }
            let tag = endpoints[owner].as_ref().map_or(0, |e| e.tag);
            if layer.is_some() && !self.forwarded.contains(&tag) {
                self.forwarded.push(tag);
            }
        }
        let endpoint = endpoints[receiver].as_mut()?;
        if endpoint.forwarded == self.forwarded {
            return None;
        }
        endpoint.forwarded.clone_from(&self.forwarded);
        Some(
            self.forwarded
                .iter()
                .filter_map(|&tag| {
                    self.members.iter().find_map(|&m| {
                        endpoints[m]
                            .as_ref()
                            .filter(|e| e.tag == tag)
                            .map(|e| e.participant_id.clone())
                    })
                })
                .collect(),
        )
    }

    /// Closes a bucket of every audio sender's speech activity and decides the dominant
    /// speaker: returns the new one (a member slot) when it changed.
    pub fn tick_speakers(&mut self) -> Option<usize> {
        self.scores.clear();
        self.scores
            .extend(self.members.iter().map(|&m| (m, Score::default())));
        for producer in self.producers.iter_mut().flatten() {
            if producer.kind != MediaKind::Audio {
                continue;
            }
            producer.speech.close_bucket();
            let score = producer.speech.score();
            if let Some((_, s)) = self.scores.iter_mut().find(|(m, _)| *m == producer.owner) {
                *s = s.max(score);
            }
        }
        self.speakers.decide(self.scores.iter().copied())
    }

    /// The members who were dominant speakers, most recent first (the current one first).
    pub fn speaker_order(&self) -> &[usize] {
        self.speakers.order()
    }

    /// Forwards each receiver only the `k` loudest audio streams of the others (by speech in
    /// the last second, then loudness; ties to the recent speakers, then join order).
    pub fn forward_loudest_audio(&mut self, k: usize) {
        self.loudest.clear();
        let order = self.speakers.order();
        let rank = |owner: usize| {
            order
                .iter()
                .position(|&o| o == owner)
                .unwrap_or(order.len())
        };
        for (p, producer) in self.producers.iter().enumerate() {
            if let Some(producer) = producer.as_ref().filter(|p| p.kind == MediaKind::Audio) {
                self.loudest
                    .push((p, producer.owner, producer.speech.score()));
            }
        }
        self.loudest.sort_by(|(_, a_owner, a), (_, b_owner, b)| {
            (b.short, b.long, b.loudness, rank(*a_owner)).cmp(&(
                a.short,
                a.long,
                a.loudness,
                rank(*b_owner),
            ))
        });
        for (position, &(p, _, _)) in self.loudest.iter().enumerate() {
            let Some(producer) = self.producers[p].as_mut() else {
                continue;
            };
            for consumer in producer.consumers.iter_mut().filter(|c| !c.relay) {
                // Its own streams do not count against a receiver's k.
                let own = self.loudest[..position]
                    .iter()
                    .filter(|(_, owner, _)| *owner == consumer.receiver)
                    .count();
                consumer.target = (position - own < k).then_some(Layer::BASE_ALL);
            }
        }
    }

    /// The tallest video any receiver wants of each member's video sources, for the members
    /// whose figure changed since they were last told (their slot and the height; 0: none).
    /// A member none of whose video sources has a receiver is not told anything.
    pub fn sender_heights(
        &self,
        endpoints: &mut [Option<Endpoint>],
        changed: &mut Vec<(usize, u32)>,
    ) {
        for &member in &self.members {
            let Some(endpoint) = endpoints[member].as_mut().filter(|e| e.is_participant()) else {
                continue;
            };
            let mut ideal = None;
            for producer in endpoint.producers.iter().filter_map(|&p| self.producer(p)) {
                if producer.kind != MediaKind::Video {
                    continue;
                }
                for consumer in &producer.consumers {
                    ideal = Some(ideal.unwrap_or(0).max(consumer.wanted_height));
                }
            }
            if ideal.is_some() && ideal != endpoint.told_ideal_height {
                endpoint.told_ideal_height = ideal;
                changed.extend(ideal.map(|h| (member, h)));
            }
        }
    }

    /// What the last receiver allocated would be forwarded with unlimited bandwidth (its audio
    /// and the video it asks for), bit/s.
    pub fn desired_bps(&self) -> u64 {
        self.allocation.desired_bps.saturating_add(self.audio_bps)
    }

    /// Bytes of the conference's state: its producers and its routing entries, by number (not
    /// by the capacity the tables grew to), so the figure returns to where it was when members
    /// leave.
    pub fn heap_bytes(&self) -> usize {
        let strings: usize = self.by_endpoint_id.keys().map(|k| k.capacity()).sum();
        self.members.len() * std::mem::size_of::<usize>()
            + strings
            + self
                .producers
                .iter()
                .flatten()
                .map(Producer::heap_bytes)
                .sum::<usize>()
            + (self.routes.len()
                + self.learnt.len()
                + self.outputs.len()
                + self.by_endpoint_id.len())
                * ROUTE_ENTRY_BYTES
    }
}

/// The layers of a video producer the allocator may choose: each active encoding at each
/// temporal layer seen, with its height (from its key frames; until one arrived, 180 doubled
/// per encoding) and measured rate.
fn layer_options(producer: &Producer, now_us: i64) -> impl Iterator<Item = LayerOption> + '_ {
    producer
        .encodings
        .iter()
        .enumerate()
        .filter(move |(_, e)| e.rate.is_active(now_us))
        .flat_map(|(s, e)| {
            let height = e.height.map_or(180u32 << s.min(4), u32::from);
            (0..=e.rate.max_temporal).map(move |t| LayerOption {
                layer: Layer {
                    spatial: s as u8,
                    temporal: t,
                },
                height,
                bps: e.rate.bps_up_to(t),
            })
        })
}

/// Approximate bytes of one hash map entry, for the memory gauge.
pub const ROUTE_ENTRY_BYTES: usize = 48;

/// A consumer for `receiver`, continuing what it saw of `output` from an earlier producer,
/// resuming the outbound SRTP state it had for it, with the MID it receives `output` under.
fn new_consumer(
    slot: usize,
    receiver: &mut Endpoint,
    kind: MediaKind,
    output: u32,
    rng: &mut impl Rng,
) -> Consumer {
    let before = receiver.history.take(output);
    if let (Some(state), Some(srtp)) = (
        before.and_then(|b| b.srtp),
        receiver.transport.srtp_out.as_mut(),
    ) {
        srtp.resume_outbound(output, state);
    }
    let mut consumer = Consumer::new(
        slot,
        receiver.is_relay(),
        kind,
        before.as_ref(),
        rng.random(),
    );
    consumer.mid = receiver.receive_mid(output);
    consumer
}

/// `receiver` is to get a source of `kind`, forwarded under `output`, from a sender that is on
/// this bridge (`local`) or behind a relay: a relay gets only local ones (every bridge of a
/// conference sends its own participants' sources on each of its relays); a receiver that
/// routes by MID only those it has a MID for ([`Endpoint::takes`]).
fn receives(receiver: &Endpoint, kind: MediaKind, local: bool, output: u32) -> bool {
    receiver.receives(kind) && (local || !receiver.is_relay()) && receiver.takes(output)
}

/// What `receiver` keeps of the stream `consumer` gave it under `output` (and `output_rtx`)
/// when the consumer goes: where its numbering and its outbound SRTP state stood, so that a
/// consumer of the same output later continues them.
fn retire(consumer: &Consumer, receiver: &mut Endpoint, output: u32, output_rtx: Option<u32>) {
    let srtp = receiver.transport.srtp_out.as_mut();
    let state = srtp.map(|srtp| {
        if let Some(rtx) = output_rtx {
            srtp.remove_ssrc(rtx);
        }
        srtp.remove_ssrc(output)
    });
    if let Some(mut stopped) = consumer.stopped(output) {
        stopped.srtp = state;
        receiver.history.remember(stopped);
    }
}
