//! What each receiver's allocator sees and decided, for the debug endpoint
//! (`/debug/receivers`): its constraints and bandwidth, and per remote video source the layers
//! on offer, the layer it wants and the encoding it forwards. Built on request, off the packet
//! path.

use std::time::Instant;

use serde::Serialize;
use tutti_bwe::Limit;

use super::Core;
use crate::media::MediaKind;

#[derive(Clone, Debug, Serialize)]
pub struct ReceiverReport {
    pub conference_id: String,
    pub endpoint_id: String,
    pub participant_id: String,
    /// What its allocator spreads over the video it forwards: its own figure
    /// (`assumedBandwidthBps`) if it sent one, else the estimate.
    pub bandwidth_bps: u64,
    /// The bandwidth estimate towards it, and which part of the estimator set it: `initial`
    /// (no feedback yet), `delay`, `loss`, or `remb`.
    pub estimate_bps: u64,
    pub estimate_limited_by: &'static str,
    /// What its transport-cc feedback says it received, once known.
    pub acknowledged_bps: Option<u64>,
    /// What it would be forwarded with unlimited bandwidth.
    pub desired_bps: u64,
    /// Video packets its pacer holds back now.
    pub paced_packets: usize,
    /// `None` = unlimited.
    pub last_n: Option<usize>,
    pub on_stage: Vec<String>,
    pub selected: Vec<String>,
    pub default_max_height: u32,
    pub max_heights: Vec<(String, u32)>,
    /// Whether it sent any constraints yet.
    pub constraints_received: bool,
    /// Whom it was last told it gets video from.
    pub forwarded_endpoints: Vec<String>,
    pub sources: Vec<SourceReport>,
}

#[derive(Clone, Debug, Serialize)]
pub struct SourceReport {
    pub sender: String,
    pub source: String,
    pub encodings: Vec<EncodingReport>,
    /// (spatial, temporal) wanted by the allocator; `None`: no video.
    pub target: Option<(u8, u8)>,
    /// The encoding forwarded now.
    pub forwarding: Option<u8>,
    pub waiting_for_keyframe: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct EncodingReport {
    pub ssrc: u32,
    pub height: Option<u16>,
    pub active: bool,
    /// Measured bitrate up to each temporal layer seen.
    pub bps_by_temporal_layer: Vec<u64>,
}

impl Core {
    /// Every receiver's allocation state.
    pub fn describe_receivers(&self, now: Instant) -> Vec<ReceiverReport> {
        let now_us = self.micros(now);
        let mut reports = Vec::new();
        for router in self.routers.iter().flatten() {
            for &member in &router.members {
                let Some(receiver) = self.endpoints[member]
                    .as_ref()
                    .filter(|e| e.is_participant())
                else {
                    continue;
                };
                let c = &receiver.constraints;
                let congestion = &receiver.transport.congestion;
                let mut sources = Vec::new();
                for &other in router.members.iter().filter(|&&m| m != member) {
                    let Some(sender) = self.endpoints[other].as_ref() else {
                        continue;
                    };
                    for producer in sender.producers.iter().filter_map(|&p| router.producer(p)) {
                        let Some(consumer) = producer
                            .consumers
                            .iter()
                            .find(|c| c.receiver == member)
                            .filter(|_| producer.kind == MediaKind::Video)
                        else {
                            continue;
                        };
                        sources.push(SourceReport {
                            sender: sender.participant_id.clone(),
                            source: producer.name.clone(),
                            encodings: producer
                                .encodings
                                .iter()
                                .map(|e| EncodingReport {
                                    ssrc: e.ssrc,
                                    height: e.height,
                                    active: e.rate.is_active(now_us),
                                    bps_by_temporal_layer: (0..=e.rate.max_temporal)
                                        .map(|t| e.rate.bps_up_to(t))
                                        .collect(),
                                })
                                .collect(),
                            target: consumer.target.map(|t| (t.spatial, t.temporal)),
                            forwarding: consumer.current,
                            waiting_for_keyframe: consumer.waiting_for_keyframe,
                        });
                    }
                }
                reports.push(ReceiverReport {
                    conference_id: receiver.conference_id.clone(),
                    endpoint_id: receiver.endpoint_id.clone(),
                    participant_id: receiver.participant_id.clone(),
                    bandwidth_bps: c.assumed_bandwidth_bps.unwrap_or(congestion.estimate_bps()),
                    estimate_bps: congestion.estimate_bps(),
                    estimate_limited_by: match congestion.limited_by() {
                        Limit::Initial => "initial",
                        Limit::Delay => "delay",
                        Limit::Loss => "loss",
                        Limit::Remb => "remb",
                    },
                    acknowledged_bps: congestion.acknowledged_bps(),
                    desired_bps: congestion.desired_bps(),
                    paced_packets: receiver.transport.held_packets(),
                    last_n: c.last_n,
                    on_stage: c.on_stage.clone(),
                    selected: c.selected.clone(),
                    default_max_height: c.default_max_height,
                    max_heights: c.max_heights.clone(),
                    constraints_received: c.received,
                    forwarded_endpoints: receiver
                        .forwarded
                        .iter()
                        .filter_map(|tag| self.by_tag.get(tag))
                        .filter_map(|&slot| self.endpoints[slot].as_ref())
                        .map(|e| e.participant_id.clone())
                        .collect(),
                    sources,
                });
            }
        }
        reports
    }
}
