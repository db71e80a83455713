//! Prometheus exposition of the worker's published counters, and the load figures (packet
//! rates, stress) derived from them once per second.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use crate::media::stats::{
    DropReason, Histogram, SharedSnapshot, DIRECTION_LABELS, ESTIMATE_BOUNDS,
    FEEDBACK_DELAY_BOUNDS, HEIGHT_BOUNDS, JITTER_BOUNDS, KIND_LABELS, LOSS_BOUNDS,
    REPORT_MEDIA_LABELS, RTT_BOUNDS,
};

/// Heap allocations (alloc, alloc_zeroed, realloc) made by any thread of a bridge binary built
/// with the `alloc-counter` feature, exported as `tutti_bridge_allocations_total`.
#[cfg(feature = "alloc-counter")]
pub static ALLOCATIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The system allocator, counting calls in [`ALLOCATIONS`]; the bridge binary installs it as the
/// global allocator when built with the `alloc-counter` feature.
#[cfg(feature = "alloc-counter")]
pub struct CountingAllocator;

#[cfg(feature = "alloc-counter")]
// SAFETY: every call is passed unchanged to the system allocator; counting has no effect on it.
unsafe impl std::alloc::GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // SAFETY: the caller upholds GlobalAlloc's contract, which System shares.
        unsafe { std::alloc::System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { std::alloc::System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { std::alloc::System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: as above.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
}

/// Packet rates over the last second and the stress figure (see docs/bridge.md):
/// `stress = max((in_pps + out_pps) / max_packet_rate, worker_busy / 0.9,
/// endpoints / endpoint_capacity)`.
pub struct Rates {
    snapshot: SharedSnapshot,
    max_packet_rate: f64,
    endpoint_capacity: f64,
    current: Mutex<(f64, f64, f64)>,
}

impl Rates {
    pub fn new(snapshot: SharedSnapshot, max_packet_rate: f64, endpoint_capacity: u32) -> Rates {
        Rates {
            snapshot,
            max_packet_rate,
            endpoint_capacity: f64::from(endpoint_capacity.max(1)),
            current: Mutex::new((0.0, 0.0, 0.0)),
        }
    }

    fn totals(&self) -> (u64, u64, f64) {
        let s = self.snapshot.lock().unwrap_or_else(|e| e.into_inner());
        (
            s.counters.packets_in.iter().sum(),
            s.counters.packets_out.iter().sum(),
            s.worker_busy,
        )
    }

    /// Samples the counters every second, forever.
    pub async fn run(self: Arc<Self>) {
        let (mut last_in, mut last_out, _) = self.totals();
        let mut last = Instant::now();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            let (total_in, total_out, busy) = self.totals();
            let secs = last.elapsed().as_secs_f64().max(1e-3);
            let pps_in = total_in.saturating_sub(last_in) as f64 / secs;
            let pps_out = total_out.saturating_sub(last_out) as f64 / secs;
            let stress = ((pps_in + pps_out) / self.max_packet_rate).max(busy / 0.9);
            *self.current.lock().unwrap_or_else(|e| e.into_inner()) = (pps_in, pps_out, stress);
            (last_in, last_out, last) = (total_in, total_out, Instant::now());
        }
    }

    /// (packets in per second, packets out per second, stress); the stress includes the
    /// endpoints over `endpoint_capacity` as they are now (the worker publishes 10 times a
    /// second), so a focus sees endpoints it placed at once.
    pub fn current(&self) -> (f64, f64, f64) {
        let (pps_in, pps_out, stress) = *self.current.lock().unwrap_or_else(|e| e.into_inner());
        let endpoints = self
            .snapshot
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .endpoints as f64;
        (
            pps_in,
            pps_out,
            stress.max(endpoints / self.endpoint_capacity),
        )
    }
}

#[derive(Debug)]
struct BridgeCollector {
    snapshot: SharedSnapshot,
    rates: Arc<Rates>,
}

impl std::fmt::Debug for Rates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rates").finish_non_exhaustive()
    }
}

fn counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: u64,
) -> std::fmt::Result {
    let metric = ConstCounter::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

fn gauge(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: f64) -> std::fmt::Result {
    let metric = ConstGauge::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

/// `(upper bound, count)` pairs, +Inf last, each bucket's own count: the encoder adds them up
/// into the exposition's cumulative buckets.
fn bucket_counts<const B: usize>(bounds: &[f64; B], h: &Histogram<B>) -> Vec<(f64, u64)> {
    bounds
        .iter()
        .copied()
        .chain([f64::INFINITY])
        .zip(h.buckets.iter().copied().chain([h.above]))
        .collect()
}

fn histogram<const B: usize>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    bounds: &[f64; B],
    h: &Histogram<B>,
) -> std::fmt::Result {
    encoder
        .encode_descriptor(
            name,
            help,
            None,
            prometheus_client::metrics::MetricType::Histogram,
        )?
        .encode_histogram::<prometheus_client::encoding::NoLabelSet>(
            h.sum,
            h.count,
            &bucket_counts(bounds, h),
            None,
        )
}

/// A histogram family labelled by direction and media, `[direction][media]` as
/// `stats::ReportQuality` holds them.
fn report_histograms<const B: usize>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    bounds: &[f64; B],
    histograms: &[[Histogram<B>; 2]; DIRECTION_LABELS.len()],
) -> std::fmt::Result {
    let mut family = encoder.encode_descriptor(
        name,
        help,
        None,
        prometheus_client::metrics::MetricType::Histogram,
    )?;
    for (direction, by_media) in DIRECTION_LABELS.iter().zip(histograms) {
        for (media, h) in REPORT_MEDIA_LABELS.iter().zip(by_media) {
            let labels = [("direction", *direction), ("media", *media)];
            family
                .encode_family(&labels)?
                .encode_histogram::<prometheus_client::encoding::NoLabelSet>(
                    h.sum,
                    h.count,
                    &bucket_counts(bounds, h),
                    None,
                )?;
        }
    }
    Ok(())
}

fn labelled_counters<'a>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    label: &'static str,
    values: impl Iterator<Item = (&'a str, u64)>,
) -> std::fmt::Result {
    let mut family = encoder.encode_descriptor(
        name,
        help,
        None,
        prometheus_client::metrics::MetricType::Counter,
    )?;
    for (value_label, value) in values {
        let labels = [(label, value_label)];
        ConstCounter::new(value).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

fn labelled_gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    label: &'static str,
    values: &[(&str, f64)],
) -> std::fmt::Result {
    let mut family = encoder.encode_descriptor(
        name,
        help,
        None,
        prometheus_client::metrics::MetricType::Gauge,
    )?;
    for &(value_label, value) in values {
        let labels = [(label, value_label)];
        ConstGauge::new(value).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

impl Collector for BridgeCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let s = self
            .snapshot
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let c = &s.counters;
        let e = &mut encoder;
        gauge(
            e,
            "tutti_bridge_conferences",
            "Conferences on this bridge",
            s.conferences as f64,
        )?;
        gauge(
            e,
            "tutti_bridge_endpoints",
            "Endpoints on this bridge",
            s.endpoints as f64,
        )?;
        gauge(
            e,
            "tutti_bridge_endpoint_state_bytes",
            "Bytes held by endpoint state (transport, SRTP, caches, routing entries)",
            s.endpoint_state_bytes as f64,
        )?;
        labelled_gauge(
            e,
            "tutti_bridge_endpoint_bytes",
            "Bytes per endpoint on average: idle (allocated or failed, not connected) and \
             connected (with what its media costs its conference)",
            "state",
            &[
                ("idle", s.idle_endpoint_bytes as f64),
                ("connected", s.connected_endpoint_bytes as f64),
            ],
        )?;
        gauge(
            e,
            "tutti_bridge_stress",
            "Load figure: 1.0 is full (docs/bridge.md)",
            self.rates.current().2,
        )?;
        gauge(
            e,
            "tutti_bridge_worker_busy",
            "Fraction of a core the media worker used",
            s.worker_busy,
        )?;
        let kinds = |v: &[u64; 3]| {
            KIND_LABELS
                .iter()
                .copied()
                .zip(v.iter().copied())
                .collect::<Vec<_>>()
        };
        labelled_counters(
            e,
            "tutti_bridge_packets_received",
            "Packets received, by media",
            "media",
            kinds(&c.packets_in).into_iter(),
        )?;
        labelled_counters(
            e,
            "tutti_bridge_bytes_received",
            "Bytes received (decrypted), by media",
            "media",
            kinds(&c.bytes_in).into_iter(),
        )?;
        labelled_counters(
            e,
            "tutti_bridge_packets_sent",
            "Packets forwarded, by media",
            "media",
            kinds(&c.packets_out).into_iter(),
        )?;
        labelled_counters(
            e,
            "tutti_bridge_bytes_sent",
            "Bytes forwarded (encrypted), by media",
            "media",
            kinds(&c.bytes_out).into_iter(),
        )?;
        labelled_counters(
            e,
            "tutti_bridge_drops",
            "Datagrams and packets dropped, by reason",
            "reason",
            DropReason::ALL
                .iter()
                .map(|r| (r.label(), c.drops[*r as usize])),
        )?;
        counter(
            e,
            "tutti_bridge_ice_failures",
            "Endpoints whose ICE failed",
            c.ice_failures,
        )?;
        counter(
            e,
            "tutti_bridge_dtls_failures",
            "Endpoints whose DTLS failed",
            c.dtls_failures,
        )?;
        counter(
            e,
            "tutti_bridge_srtp_failures",
            "SRTP/SRTCP packets that failed authentication or replay checks",
            c.drops[DropReason::SrtpAuthFailed as usize]
                + c.drops[DropReason::SrtpReplayed as usize],
        )?;
        counter(
            e,
            "tutti_bridge_consent_timeouts",
            "Endpoints timed out by consent freshness",
            c.consent_timeouts,
        )?;
        counter(
            e,
            "tutti_bridge_simulcast_layers_skipped",
            "Packets of simulcast layers no receiver takes",
            c.simulcast_layers_skipped,
        )?;
        counter(
            e,
            "tutti_bridge_rtx_consumed",
            "RTX and padding packets from senders that answer no NACK of the bridge's, not forwarded",
            c.rtx_consumed,
        )?;
        counter(
            e,
            "tutti_bridge_rtx_recovered",
            "RTX packets from senders that answered a NACK of the bridge's, forwarded as the original",
            c.rtx_recovered,
        )?;
        counter(
            e,
            "tutti_bridge_relay_packets_sent",
            "RTP packets sent on relays to other bridges (each source once per relay)",
            c.relay_packets_sent,
        )?;
        counter(
            e,
            "tutti_bridge_relay_packets_received",
            "RTP packets received on relays from other bridges",
            c.relay_packets_received,
        )?;
        counter(
            e,
            "tutti_bridge_relay_bytes_sent",
            "Bytes of the RTP datagrams sent on relays to other bridges (SRTP, with the link id)",
            c.relay_bytes_sent,
        )?;
        counter(
            e,
            "tutti_bridge_nacks_sent",
            "Sequence numbers NACKed to senders (lost on their way to the bridge)",
            c.nacks_sent,
        )?;
        counter(
            e,
            "tutti_bridge_transport_cc_reported_received",
            "Packets sent to receivers that their transport-cc feedback reported as arrived",
            c.transport_cc_reported_received,
        )?;
        counter(
            e,
            "tutti_bridge_transport_cc_reported_lost",
            "Packets sent to receivers that their transport-cc feedback reported as lost",
            c.transport_cc_reported_lost,
        )?;
        histogram(
            e,
            "tutti_bridge_transport_cc_feedback_delay_seconds",
            "Per receiver feedback packet: from sending the newest packet it reports as arrived to receiving the report",
            &FEEDBACK_DELAY_BOUNDS,
            &c.transport_cc_feedback_delay,
        )?;
        labelled_counters(
            e,
            "tutti_bridge_layer_switches",
            "Video consumers that began forwarding an encoding, by direction",
            "direction",
            ["first", "up", "down"].into_iter().zip(c.layer_switches),
        )?;
        counter(
            e,
            "tutti_bridge_temporal_layer_drops",
            "Packets of temporal layers above a receiver's target, not sent to it",
            c.temporal_drops,
        )?;
        counter(
            e,
            "tutti_bridge_packets_awaiting_switch_keyframe",
            "Packets of an encoding that went by while a receiver waited for its key frame",
            c.keyframes_for_switch,
        )?;
        counter(
            e,
            "tutti_bridge_streams_learnt",
            "SSRCs learnt for streams named by MID or RID (no signalled SSRC), from their first packet",
            c.streams_learnt,
        )?;
        histogram(
            e,
            "tutti_bridge_forwarded_video_height_pixels",
            "Height of the encoding each video consumer forwards, sampled twice a second",
            &HEIGHT_BOUNDS,
            &c.forwarded_height,
        )?;
        counter(
            e,
            "tutti_bridge_keyframes_received",
            "Key frames received from senders (VP8 and H264)",
            c.keyframes_received,
        )?;
        counter(
            e,
            "tutti_bridge_keyframe_requests_received",
            "PLI/FIR received from receivers",
            c.pli_received,
        )?;
        counter(
            e,
            "tutti_bridge_keyframe_requests_sent",
            "PLI sent to senders",
            c.pli_sent,
        )?;
        counter(
            e,
            "tutti_bridge_keyframe_requests_rate_limited",
            "PLI/FIR not passed on (rate limit)",
            c.pli_rate_limited,
        )?;
        counter(
            e,
            "tutti_bridge_nack_received",
            "Sequence numbers NACKed by receivers",
            c.nack_received,
        )?;
        counter(
            e,
            "tutti_bridge_retransmissions_sent",
            "Packets retransmitted from the cache",
            c.retransmissions_sent,
        )?;
        counter(
            e,
            "tutti_bridge_retransmissions_rate_limited",
            "NACKs not answered because the receiver's retransmissions already took its bandwidth estimate",
            c.retransmissions_rate_limited,
        )?;
        counter(
            e,
            "tutti_bridge_retransmissions_superseded",
            "NACKs not answered because the packet is of an encoding the receiver no longer gets",
            c.retransmissions_superseded,
        )?;
        counter(
            e,
            "tutti_bridge_retransmissions_repeated",
            "NACKs not answered because the packet was retransmitted to that receiver less than a round trip before",
            c.retransmissions_repeated,
        )?;
        counter(
            e,
            "tutti_bridge_nack_cache_misses",
            "NACKed packets no longer in the cache",
            c.nack_cache_misses,
        )?;
        counter(
            e,
            "tutti_bridge_transport_cc_feedback_sent",
            "transport-cc feedback packets sent to senders",
            c.transport_cc_feedback_sent,
        )?;
        counter(
            e,
            "tutti_bridge_transport_cc_feedback_received",
            "transport-cc feedback packets received from receivers",
            c.transport_cc_feedback_received,
        )?;
        counter(
            e,
            "tutti_bridge_receiver_reports_sent",
            "Receiver reports sent to senders",
            c.receiver_reports_sent,
        )?;
        counter(
            e,
            "tutti_bridge_sender_reports_forwarded",
            "Sender reports passed to receivers",
            c.sender_reports_forwarded,
        )?;
        counter(
            e,
            "tutti_bridge_remb_sent",
            "REMB packets sent to senders without transport-cc",
            c.remb_sent,
        )?;
        counter(
            e,
            "tutti_bridge_remb_received",
            "REMB packets received from receivers",
            c.remb_received,
        )?;
        counter(
            e,
            "tutti_bridge_pacer_overflows",
            "Video packets sent past a receiver's pacer because it held as many as it can",
            c.pacer_overflows,
        )?;
        counter(
            e,
            "tutti_bridge_allocations_on_estimate_drop",
            "Receivers' allocators run at once because their bandwidth estimate fell",
            c.allocations_on_estimate_drop,
        )?;
        counter(
            e,
            "tutti_bridge_probe_packets_sent",
            "Packets sent to fill bandwidth probe clusters (retransmissions, else padding)",
            c.probe_packets_sent,
        )?;
        counter(
            e,
            "tutti_bridge_probe_padding_sent",
            "Padding-only packets sent to fill bandwidth probe clusters (nothing to resend)",
            c.probe_padding_sent,
        )?;
        counter(
            e,
            "tutti_bridge_probe_bytes_sent",
            "Bytes sent to fill bandwidth probe clusters",
            c.probe_bytes_sent,
        )?;
        histogram(
            e,
            "tutti_bridge_receiver_estimate_bps",
            "Every receiver's bandwidth estimate (what its allocator spends), sampled twice a second",
            &ESTIMATE_BOUNDS,
            &c.receiver_estimate,
        )?;
        histogram(
            e,
            "tutti_bridge_rtt_seconds",
            "Round-trip time to receivers, from their report blocks (LSR/DLSR) about the sender reports the bridge passed them",
            &RTT_BOUNDS,
            &c.rtt,
        )?;
        histogram(
            e,
            "tutti_bridge_relay_rtt_seconds",
            "Round-trip time on relays to other bridges, from their report blocks (LSR/DLSR) about the sender reports passed on the relay",
            &RTT_BOUNDS,
            &c.relay_rtt,
        )?;
        report_histograms(
            e,
            "tutti_bridge_loss_ratio",
            "Fraction of packets lost in each RTCP report interval: upstream as the bridge reports it to senders, downstream as receivers report it, relay_in as the bridge reports it on relays, relay_out as the far bridges report it",
            &LOSS_BOUNDS,
            &c.report_quality.loss,
        )?;
        report_histograms(
            e,
            "tutti_bridge_jitter_seconds",
            "Interarrival jitter of each RTCP report block: upstream as the bridge reports it to senders, downstream as receivers report it, relay_in as the bridge reports it on relays, relay_out as the far bridges report it",
            &JITTER_BOUNDS,
            &c.report_quality.jitter,
        )?;
        #[cfg(feature = "alloc-counter")]
        counter(
            e,
            "tutti_bridge_allocations",
            "Heap allocations by any thread of the bridge (alloc-counter builds only)",
            ALLOCATIONS.load(std::sync::atomic::Ordering::Relaxed),
        )?;
        Ok(())
    }
}

pub fn registry(snapshot: SharedSnapshot, rates: Arc<Rates>) -> Registry {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(BridgeCollector { snapshot, rates }));
    registry
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::stats::{Snapshot, RTT_BOUNDS};

    fn exposition(snapshot: Snapshot) -> String {
        let shared: SharedSnapshot = Arc::new(Mutex::new(snapshot));
        let rates = Arc::new(Rates::new(shared.clone(), 1000.0, 10));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry(shared, rates)).unwrap();
        text
    }

    #[test]
    fn histograms_are_cumulative_once_and_report_quality_is_labelled() {
        let mut snapshot = Snapshot::default();
        let c = &mut snapshot.counters;
        c.rtt.observe(&RTT_BOUNDS, 0.02);
        c.rtt.observe(&RTT_BOUNDS, 0.4);
        // Downstream video: 64 of 256 lost (0.25), 900 ticks of 90 kHz (10 ms).
        c.report_quality.observe(1, 1, 64, 900, 90_000);
        // Upstream audio: nothing lost, 48 ticks of 48 kHz (1 ms).
        c.report_quality.observe(0, 0, 0, 48, 48_000);
        // What a far bridge reports of the video this one sends on a relay: 26 of 256 lost.
        c.report_quality.observe(3, 1, 26, 90, 90_000);
        c.relay_rtt.observe(&RTT_BOUNDS, 0.03);
        let text = exposition(snapshot);
        let has = |line: &str| {
            assert!(
                text.lines().any(|l| l == line),
                "no line {line:?} in\n{text}"
            )
        };
        has("# TYPE tutti_bridge_rtt_seconds histogram");
        has("tutti_bridge_rtt_seconds_bucket{le=\"0.025\"} 1");
        has("tutti_bridge_rtt_seconds_bucket{le=\"0.5\"} 2");
        has("tutti_bridge_rtt_seconds_bucket{le=\"+Inf\"} 2");
        has("tutti_bridge_rtt_seconds_count 2");
        has("# TYPE tutti_bridge_loss_ratio histogram");
        has(
            "tutti_bridge_loss_ratio_bucket{le=\"0.2\",direction=\"downstream\",media=\"video\"} 0",
        );
        has(
            "tutti_bridge_loss_ratio_bucket{le=\"0.3\",direction=\"downstream\",media=\"video\"} 1",
        );
        has("tutti_bridge_loss_ratio_sum{direction=\"downstream\",media=\"video\"} 0.25");
        has("tutti_bridge_loss_ratio_bucket{le=\"0.0\",direction=\"upstream\",media=\"audio\"} 1");
        has("tutti_bridge_loss_ratio_count{direction=\"upstream\",media=\"video\"} 0");
        has("tutti_bridge_jitter_seconds_bucket{le=\"0.01\",direction=\"downstream\",media=\"video\"} 1");
        has("tutti_bridge_jitter_seconds_bucket{le=\"0.001\",direction=\"upstream\",media=\"audio\"} 1");
        has("tutti_bridge_loss_ratio_bucket{le=\"0.1\",direction=\"relay_out\",media=\"video\"} 0");
        has("tutti_bridge_loss_ratio_bucket{le=\"0.2\",direction=\"relay_out\",media=\"video\"} 1");
        has("tutti_bridge_loss_ratio_count{direction=\"relay_in\",media=\"video\"} 0");
        has("tutti_bridge_relay_rtt_seconds_bucket{le=\"0.025\"} 0");
        has("tutti_bridge_relay_rtt_seconds_bucket{le=\"0.05\"} 1");
    }
}
