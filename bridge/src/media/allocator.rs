//! One receiver's allocator: which layer of each remote video source it is forwarded, given
//! what it asked for ([`ReceiverConstraints`]) and the bandwidth it has. Pure logic: the core
//! gives it the sources with their layers' measured bitrates and heights, and applies its
//! answer to the receiver's consumers.
//!
//! 1. Sources are ranked: on stage, then selected, then the others in speaker order (join
//!    order until the bridge tracks speakers). Only the first `lastN` get video.
//! 2. Each source's candidate layers are its active (spatial, temporal) layers no taller than
//!    the receiver's cap for it, in the order spatial then temporal: moving down drops temporal
//!    layers before a spatial one.
//! 3. In rank order every source gets its lowest candidate if it fits in what is left of the
//!    bandwidth; then, again in rank order, each moves up to its highest candidate that fits.
//!    On-stage and selected sources so reach their caps before the others move above their
//!    lowest layer. A source whose lowest layer does not fit gets no video.

use super::constraints::{Priority, ReceiverConstraints};
use super::consumer::Layer;

/// One layer a source can be forwarded at, with what it costs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LayerOption {
    pub layer: Layer,
    pub height: u32,
    /// Measured bitrate of the encoding up to this temporal layer.
    pub bps: u64,
}

/// One remote video source, as the allocator sees it.
#[derive(Clone, Copy, Debug)]
pub struct Candidate<'a> {
    /// The sender's id in bridge-channel messages.
    pub endpoint: &'a str,
    /// The source's name (e.g. `<endpoint>-v0`); may be empty.
    pub source: &'a str,
    /// Its active layers in (spatial, temporal) order.
    pub layers: &'a [LayerOption],
}

/// The layer each candidate gets (same order as the candidates), `None` for no video.
pub fn allocate(
    constraints: &ReceiverConstraints,
    available_bps: u64,
    candidates: &[Candidate<'_>],
) -> Vec<Option<Layer>> {
    let rank = |c: &Candidate<'_>| match constraints.priority(c.endpoint, c.source) {
        Priority::OnStage => 0,
        Priority::Selected => 1,
        Priority::Other => 2,
    };
    let mut order: Vec<usize> = (0..candidates.len())
        .filter(|&i| !candidates[i].layers.is_empty())
        .collect();
    order.sort_by_key(|&i| rank(&candidates[i]));
    if let Some(n) = constraints.last_n {
        order.truncate(n);
    }
    // Each ranked candidate's options under its height cap (at least its lowest spatial
    // layer, unless the cap is 0).
    let options: Vec<&[LayerOption]> = order
        .iter()
        .map(|&i| {
            let c = &candidates[i];
            let cap = constraints.max_height_for(c.endpoint, c.source);
            if cap == 0 {
                return &c.layers[..0];
            }
            let lowest = c.layers[0].layer.spatial;
            let fitting = c
                .layers
                .iter()
                .take_while(|o| o.height <= cap || o.layer.spatial == lowest)
                .count();
            &c.layers[..fitting]
        })
        .collect();
    let mut chosen: Vec<Option<usize>> = vec![None; order.len()];
    let mut left = available_bps;
    for (k, opts) in options.iter().enumerate() {
        if let Some(lowest) = opts.first().filter(|o| o.bps <= left) {
            left -= lowest.bps;
            chosen[k] = Some(0);
        }
    }
    for (k, opts) in options.iter().enumerate() {
        let Some(now) = chosen[k] else {
            continue;
        };
        let spent = opts[now].bps;
        if let Some(best) = (now + 1..opts.len())
            .rev()
            .find(|&j| opts[j].bps <= left + spent)
        {
            left = left + spent - opts[best].bps;
            chosen[k] = Some(best);
        }
    }
    let mut layers = vec![None; candidates.len()];
    for (k, &i) in order.iter().enumerate() {
        layers[i] = chosen[k].map(|j| options[k][j].layer);
    }
    layers
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::constraints::ConstraintsUpdate;

    /// Three spatial layers (180, 360, 720 at 300 kbit/s, 800 kbit/s, 2 Mbit/s) of three
    /// temporal layers each, at 50 % / 75 % / 100 % of their encoding's rate.
    fn simulcast() -> Vec<LayerOption> {
        let mut layers = Vec::new();
        for (s, (height, full)) in [(180u32, 300_000u64), (360, 800_000), (720, 2_000_000)]
            .into_iter()
            .enumerate()
        {
            for (t, share) in [50u64, 75, 100].into_iter().enumerate() {
                layers.push(LayerOption {
                    layer: Layer {
                        spatial: s as u8,
                        temporal: t as u8,
                    },
                    height,
                    bps: full * share / 100,
                });
            }
        }
        layers
    }

    fn layer(spatial: u8, temporal: u8) -> Option<Layer> {
        Some(Layer { spatial, temporal })
    }

    /// Endpoint `name` (a, b or c) sending its camera `<name>-v0` with `layers`.
    fn sender<'a>(name: &'static str, layers: &'a [LayerOption]) -> Candidate<'a> {
        let source = match name {
            "a" => "a-v0",
            "b" => "b-v0",
            _ => "c-v0",
        };
        Candidate {
            endpoint: name,
            source,
            layers,
        }
    }

    fn constraints(update: ConstraintsUpdate) -> ReceiverConstraints {
        let mut c = ReceiverConstraints::default();
        c.apply(update);
        c
    }

    #[test]
    fn before_any_constraints_everyone_gets_180p() {
        let layers = simulcast();
        let senders = [sender("a", &layers), sender("b", &layers)];
        let got = allocate(&ReceiverConstraints::default(), 2_500_000, &senders);
        assert_eq!(got, [layer(0, 2), layer(0, 2)]);
    }

    #[test]
    fn the_on_stage_source_gets_its_top_layer_first() {
        let layers = simulcast();
        let senders = [
            sender("a", &layers),
            sender("b", &layers),
            sender("c", &layers),
        ];
        // Stage view as lib-jitsi-meet sends it: B on stage at 720, the others 180.
        let stage = constraints(ConstraintsUpdate {
            on_stage: Some(vec!["b".into()]),
            default_max_height: Some(180),
            max_heights: Some(vec![("b".into(), 720)]),
            ..Default::default()
        });
        let got = allocate(&stage, 2_500_000, &senders);
        assert_eq!(
            got,
            [layer(0, 2), layer(2, 2), layer(0, 0)],
            "C gets what is left"
        );
        // With less bandwidth the on-stage source still comes first.
        let got = allocate(&stage, 1_600_000, &senders);
        assert_eq!(got, [layer(0, 2), layer(2, 0), layer(0, 2)]);
        // By source name, as newer clients send it.
        let by_name = constraints(ConstraintsUpdate {
            on_stage: Some(vec!["c-v0".into()]),
            max_heights: Some(vec![("c-v0".into(), 360)]),
            default_max_height: Some(180),
            ..Default::default()
        });
        assert_eq!(allocate(&by_name, 2_500_000, &senders)[2], layer(1, 2));
    }

    #[test]
    fn temporal_layers_go_before_a_spatial_one() {
        let layers = simulcast();
        let one = [sender("a", &layers)];
        let tall = constraints(ConstraintsUpdate {
            default_max_height: Some(720),
            ..Default::default()
        });
        let steps: Vec<Option<Layer>> = [2_500_000, 1_800_000, 1_200_000, 900_000, 650_000]
            .into_iter()
            .map(|bps| allocate(&tall, bps, &one)[0])
            .collect();
        assert_eq!(
            steps,
            [
                layer(2, 2),
                layer(2, 1),
                layer(2, 0),
                layer(1, 2),
                layer(1, 1)
            ]
        );
    }

    #[test]
    fn what_does_not_fit_gets_nothing_and_last_n_limits_the_count() {
        let layers = simulcast();
        let senders = [sender("a", &layers), sender("b", &layers)];
        // The lowest layer costs 150 kbit/s: one fits, not two.
        let got = allocate(&ReceiverConstraints::default(), 200_000, &senders);
        assert_eq!(got, [layer(0, 0), None]);
        assert_eq!(
            allocate(&ReceiverConstraints::default(), 100_000, &senders),
            [None, None]
        );
        let last_one = constraints(ConstraintsUpdate {
            last_n: Some(1),
            selected: Some(vec!["b".into()]),
            ..Default::default()
        });
        assert_eq!(
            allocate(&last_one, 2_500_000, &senders),
            [None, layer(0, 2)]
        );
        let none = constraints(ConstraintsUpdate {
            last_n: Some(0),
            ..Default::default()
        });
        assert_eq!(allocate(&none, 2_500_000, &senders), [None, None]);
        let zero_height = constraints(ConstraintsUpdate {
            max_heights: Some(vec![("a".into(), 0)]),
            ..Default::default()
        });
        assert_eq!(
            allocate(&zero_height, 2_500_000, &senders),
            [None, layer(0, 2)]
        );
    }

    #[test]
    fn a_cap_below_the_lowest_layer_still_gets_it_and_inactive_sources_are_skipped() {
        let layers = simulcast();
        let senders = [sender("a", &layers), sender("b", &[])];
        let tiny = constraints(ConstraintsUpdate {
            default_max_height: Some(90),
            ..Default::default()
        });
        assert_eq!(allocate(&tiny, 2_500_000, &senders), [layer(0, 2), None]);
    }
}
