//! Counters of the media worker. The worker increments plain integers it alone owns and
//! publishes a copy a few times per second, so the packet path never touches shared memory.

use std::sync::{Arc, Mutex};

macro_rules! reasons {
    ($($variant:ident => $label:literal,)*) => {
        /// Why a datagram or packet was dropped.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum DropReason { $($variant,)* }
        impl DropReason {
            pub const ALL: &'static [DropReason] = &[$(DropReason::$variant,)*];
            pub fn label(self) -> &'static str {
                match self { $(DropReason::$variant => $label,)* }
            }
        }
    };
}

reasons! {
    Unrecognized => "unrecognized_protocol",
    Truncated => "truncated",
    Oversized => "oversized",
    StunMalformed => "stun_malformed",
    StunUnknownUsername => "stun_unknown_username",
    StunBadIntegrity => "stun_bad_integrity",
    StunBadFingerprint => "stun_bad_fingerprint",
    StunUnknownTransaction => "stun_unknown_transaction",
    StunUnsupported => "stun_unsupported",
    DtlsUnknownAddress => "dtls_unknown_address",
    DtlsNotReady => "dtls_not_ready",
    DtlsMalformed => "dtls_malformed",
    UnknownAddress => "unknown_address",
    UnknownLink => "relay_unknown_link",
    NotConnected => "not_connected",
    SrtpAuthFailed => "srtp_auth_failed",
    SrtpReplayed => "srtp_replayed",
    SrtpInvalid => "srtp_invalid",
    RtpMalformed => "rtp_malformed",
    RtcpMalformed => "rtcp_malformed",
    UnknownSsrc => "unknown_ssrc",
    UnknownMid => "unknown_mid",
    MidTaken => "mid_taken",
    RtcpForeignSsrc => "rtcp_foreign_ssrc",
    EndpointRateLimited => "endpoint_rate_limited",
    ConferenceRateLimited => "conference_rate_limited",
    FeedbackRateLimited => "feedback_rate_limited",
    SendFailed => "send_failed",
}

/// Upper bounds (seconds) of the feedback delay histogram's buckets; the last bucket is +Inf.
pub const FEEDBACK_DELAY_BOUNDS: [f64; 9] = [0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0];
/// Upper bounds (pixels) of the forwarded-height histogram's buckets.
pub const HEIGHT_BOUNDS: [f64; 6] = [180.0, 270.0, 360.0, 540.0, 720.0, 1080.0];
/// Buckets of receivers' bandwidth estimates, bit/s.
pub const ESTIMATE_BOUNDS: [f64; 10] = [
    100e3, 250e3, 500e3, 750e3, 1e6, 1.5e6, 2.5e6, 4e6, 8e6, 20e6,
];

/// Buckets of round-trip times to receivers, seconds.
pub const RTT_BOUNDS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0];
/// Buckets of the fraction of packets lost in one report interval; the first holds no loss.
pub const LOSS_BOUNDS: [f64; 8] = [0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5];
/// Buckets of interarrival jitter, seconds.
pub const JITTER_BOUNDS: [f64; 9] = [0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32];
/// The hops a report describes: index 0 `upstream` (sender → bridge, the bridge's own receive
/// statistics), 1 `downstream` (bridge → receiver, the receivers' report blocks), 2 `relay_in`
/// (another bridge → this one on a relay: this bridge's receive statistics of the sources
/// behind it, which it reports on the relay), 3 `relay_out` (this bridge → another on a relay:
/// the other bridge's report blocks).
pub const DIRECTION_LABELS: [&str; 4] = ["upstream", "downstream", "relay_in", "relay_out"];
/// Media of a report's stream: index 0 audio, 1 video.
pub const REPORT_MEDIA_LABELS: [&str; 2] = ["audio", "video"];

/// Loss and jitter of report blocks, by direction and media (see [`DIRECTION_LABELS`] and
/// [`REPORT_MEDIA_LABELS`]).
#[derive(Clone, Debug, Default)]
pub struct ReportQuality {
    pub loss: [[Histogram<{ LOSS_BOUNDS.len() }>; 2]; DIRECTION_LABELS.len()],
    pub jitter: [[Histogram<{ JITTER_BOUNDS.len() }>; 2]; DIRECTION_LABELS.len()],
}

impl ReportQuality {
    /// One report block: `fraction_lost` out of 256, `jitter` in units of `clock_rate`.
    pub fn observe(
        &mut self,
        direction: usize,
        media: usize,
        fraction_lost: u8,
        jitter: u32,
        clock_rate: u32,
    ) {
        self.loss[direction][media].observe(&LOSS_BOUNDS, f64::from(fraction_lost) / 256.0);
        self.jitter[direction][media].observe(
            &JITTER_BOUNDS,
            f64::from(jitter) / f64::from(clock_rate.max(1)),
        );
    }
}

/// A histogram with `B` fixed bucket bounds (given when observing and when exporting), counted
/// by the worker and published as it is.
#[derive(Clone, Debug)]
pub struct Histogram<const B: usize> {
    /// Observations per bucket (not cumulative): one per bound, then +Inf.
    pub buckets: [u64; B],
    pub above: u64,
    pub sum: f64,
    pub count: u64,
}

impl<const B: usize> Default for Histogram<B> {
    fn default() -> Self {
        Histogram {
            buckets: [0; B],
            above: 0,
            sum: 0.0,
            count: 0,
        }
    }
}

impl<const B: usize> Histogram<B> {
    pub fn observe(&mut self, bounds: &[f64; B], value: f64) {
        match bounds.iter().position(|&bound| value <= bound) {
            Some(bucket) => self.buckets[bucket] += 1,
            None => self.above += 1,
        }
        self.sum += value;
        self.count += 1;
    }
}

/// Counters by media kind: index 0 audio, 1 video, 2 RTCP.
pub const KIND_LABELS: [&str; 3] = ["audio", "video", "rtcp"];

#[derive(Clone, Debug, Default)]
pub struct Counters {
    pub packets_in: [u64; 3],
    pub bytes_in: [u64; 3],
    pub packets_out: [u64; 3],
    pub bytes_out: [u64; 3],
    pub drops: [u64; DropReason::ALL.len()],
    pub ice_failures: u64,
    pub dtls_failures: u64,
    pub consent_timeouts: u64,
    /// Received but deliberately not forwarded: simulcast layers above the first.
    pub simulcast_layers_skipped: u64,
    /// RTX and padding from senders that answer no NACK of the bridge's, consumed.
    pub rtx_consumed: u64,
    /// RTX from senders that answered a NACK of the bridge's: forwarded as the original.
    pub rtx_recovered: u64,
    /// RTP packets sent on relays to other bridges, and received from them; the bytes of the
    /// datagrams sent (SRTP with the link id).
    pub relay_packets_sent: u64,
    pub relay_packets_received: u64,
    pub relay_bytes_sent: u64,
    /// Sequence numbers the bridge NACKed to senders (what it lost on their way in).
    pub nacks_sent: u64,
    /// Key frames (their first packets) senders sent, of the codecs the bridge understands.
    pub keyframes_received: u64,
    pub pli_received: u64,
    pub pli_sent: u64,
    pub pli_rate_limited: u64,
    pub nack_received: u64,
    pub retransmissions_sent: u64,
    /// NACKs not answered because the receiver's retransmissions took its estimate already.
    pub retransmissions_rate_limited: u64,
    pub nack_cache_misses: u64,
    /// NACKs not answered because the packet is of an encoding the receiver was moved away
    /// from (at a key frame of the one it gets now).
    pub retransmissions_superseded: u64,
    /// NACKs not answered because the packet was retransmitted to that receiver less than a
    /// round trip before (that retransmission is still on its way).
    pub retransmissions_repeated: u64,
    pub transport_cc_feedback_sent: u64,
    pub transport_cc_feedback_received: u64,
    /// Packets the bridge sent that receivers' transport-cc feedback reported as arrived / lost.
    pub transport_cc_reported_received: u64,
    pub transport_cc_reported_lost: u64,
    /// Per feedback packet from a receiver: from sending the newest packet it newly reports as
    /// arrived to receiving the feedback (the path's delay, the receiver's feedback interval and
    /// the way back).
    pub transport_cc_feedback_delay: Histogram<{ FEEDBACK_DELAY_BOUNDS.len() }>,
    pub receiver_reports_sent: u64,
    pub sender_reports_forwarded: u64,
    pub remb_sent: u64,
    pub remb_received: u64,
    /// Video packets sent past a receiver's pacer because it held as many as it can.
    pub pacer_overflows: u64,
    /// Receivers' allocators run at once because their estimate fell.
    pub allocations_on_estimate_drop: u64,
    /// Packets sent to fill probe clusters (retransmissions, else padding), and their bytes.
    pub probe_packets_sent: u64,
    pub probe_bytes_sent: u64,
    /// Of those, padding-only packets (nothing forwarded to resend).
    pub probe_padding_sent: u64,
    /// Every receiver's bandwidth estimate (what its allocator spends), sampled at every
    /// allocation.
    pub receiver_estimate: Histogram<{ ESTIMATE_BOUNDS.len() }>,
    /// Consumers that began forwarding a video encoding: first, up to a higher one, down to a
    /// lower one.
    pub layer_switches: [u64; 3],
    /// Packets of temporal layers above a receiver's target, not sent to it.
    pub temporal_drops: u64,
    /// Packets that went by while a receiver waited for a key frame of their encoding (each
    /// asks the sender for one, rate-limited).
    pub keyframes_for_switch: u64,
    /// SSRCs learnt for streams named by MID or RID, from their first packet.
    pub streams_learnt: u64,
    /// The height of the encoding each video consumer forwards, sampled at every allocation.
    pub forwarded_height: Histogram<{ HEIGHT_BOUNDS.len() }>,
    /// Round-trip times to receivers, from their report blocks about the sender reports the
    /// bridge passed them (LSR/DLSR).
    pub rtt: Histogram<{ RTT_BOUNDS.len() }>,
    /// Round-trip times on relays to other bridges, from their report blocks about the sender
    /// reports this bridge passed on the relay.
    pub relay_rtt: Histogram<{ RTT_BOUNDS.len() }>,
    /// Loss and jitter: what the bridge reports to senders and what receivers report to it, and
    /// the same on relays (what it reports on them, and what the far bridges report).
    pub report_quality: ReportQuality,
}

impl Counters {
    pub fn drop(&mut self, reason: DropReason) {
        self.drops[reason as usize] += 1;
    }
}

/// What the worker publishes.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub counters: Counters,
    pub conferences: u64,
    pub endpoints: u64,
    /// The last endpoint allocation the worker applied (`Command::AllocateEndpoint`): what
    /// `endpoints` and the stress made of it count.
    pub allocations: u64,
    /// Bytes held by endpoint state (all endpoints, including their routing entries).
    pub endpoint_state_bytes: u64,
    /// Per endpoint, on average: idle (not connected) and connected (`Core::endpoint_bytes`).
    pub idle_endpoint_bytes: u64,
    pub connected_endpoint_bytes: u64,
    /// Fraction of one core the worker thread used over the last second.
    pub worker_busy: f64,
}

/// Written by the worker a few times per second, read by /metrics and GetInfo.
pub type SharedSnapshot = Arc<Mutex<Snapshot>>;
