//! One receiver's allocator: which layer of each remote video source it is forwarded, given
//! what it asked for ([`ReceiverConstraints`]) and the bandwidth it has. Pure logic: the core
//! gives it the sources with their layers' measured bitrates and heights, and applies its
//! answer to the receiver's consumers.
//!
//! 1. Sources are ranked: on stage, then selected, then the others in speaker order (the
//!    router adds them so: recent dominant speakers first, most recent first, then the others
//!    in join order). Only the first `lastN` get video.
//! 2. Each source's candidate layers are its active (spatial, temporal) layers no taller than
//!    the receiver's cap for it, in the order spatial then temporal: moving down drops temporal
//!    layers before a spatial one. Above [`PREFERRED_HEIGHT`] only full frame rates are
//!    candidates: a receiver short of bandwidth sees 360 lines at full frame rate rather than
//!    720 lines at a quarter of it (Jitsi Videobridge's preferred height and frame rate).
//! 3. In rank order every source gets its lowest candidate if it fits in what is left of the
//!    bandwidth — within each of the three priorities, the sources the receiver is forwarded
//!    now before the others (see below); then, again in rank order, each moves up to its
//!    highest candidate that fits. On-stage and selected sources so reach their caps before
//!    the others move above their lowest layer. A source whose lowest layer does not fit gets
//!    no video.
//!
//! A source forwarded now is not paused to make room for one that is not, of the same
//! priority: a paused video starts again only at a key frame, after a freeze. So a source that
//! appears (a participant joining, or coming back behind another bridge after a move), or a
//! speaker ranked up, gets video from what is left, and more once the estimate grows — the
//! allocator wants more than the estimate, which makes the estimator probe. Without it, a
//! receiver short of bandwidth lost a video it had whenever the speaker order changed: in
//! `tests/browser/cascade.test.mjs`, the far participants coming back on new sessions talked,
//! ranked first, and took the estimate of a staying page, which had fallen while it received
//! only its neighbour's video (`bridge/tests/sim_relay_part_returns.rs`).

use std::ops::Range;

use super::constraints::Priority;
use super::consumer::Layer;

/// The tallest layer still forwarded below its encoding's full frame rate.
pub const PREFERRED_HEIGHT: u32 = 360;

/// One layer a source can be forwarded at, with what it costs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LayerOption {
    pub layer: Layer,
    pub height: u32,
    /// Measured bitrate of the encoding up to this temporal layer.
    pub bps: u64,
}

/// One remote video source, as the allocator sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Candidate {
    priority: Priority,
    /// The tallest the receiver wants it (0: not at all).
    max_height: u32,
    /// Its active layers: a range of [`Allocation::layers`].
    layers: Range<usize>,
    /// The receiver is forwarded it now.
    forwarded: bool,
}

/// One run of a receiver's allocator, with buffers that are kept between runs: once they have
/// grown to the conference's size, a run allocates nothing.
#[derive(Default)]
pub struct Allocation {
    candidates: Vec<Candidate>,
    layers: Vec<LayerOption>,
    /// The answer, in the order the candidates were added: the layer each gets, `None` for no
    /// video.
    pub chosen: Vec<Option<Layer>>,
    /// What the receiver would be forwarded with unlimited bandwidth: each ranked source (up
    /// to last-N) at its highest layer under the cap, bit/s.
    pub desired_bps: u64,
    /// Candidates in rank order (up to last-N), with the options under their cap and the one
    /// picked.
    order: Vec<(usize, Range<usize>, Option<usize>)>,
    /// In the order the candidates were added: the receiver's cap for each one within its
    /// last-N among every candidate, sending or not; 0 for the others. What the receiver wants
    /// of each sender, whatever the bandwidth: the senders' constraints are made of it.
    pub wanted: Vec<u32>,
    /// Every candidate in rank order (kept between runs).
    ranked: Vec<usize>,
}

impl Allocation {
    /// Starts a new run.
    pub fn clear(&mut self) {
        self.candidates.clear();
        self.layers.clear();
        self.chosen.clear();
        self.order.clear();
        self.wanted.clear();
        self.ranked.clear();
        self.desired_bps = 0;
    }

    /// Adds a source: its rank, the receiver's height cap for it, whether the receiver is
    /// forwarded it now, and its active layers in (spatial, temporal) order.
    pub fn push(
        &mut self,
        priority: Priority,
        max_height: u32,
        forwarded: bool,
        layers: impl IntoIterator<Item = LayerOption>,
    ) {
        let start = self.layers.len();
        let mut layers = layers.into_iter().peekable();
        while let Some(option) = layers.next() {
            let full_rate = layers
                .peek()
                .is_none_or(|next| next.layer.spatial != option.layer.spatial);
            if full_rate || option.height <= PREFERRED_HEIGHT {
                self.layers.push(option);
            }
        }
        self.candidates.push(Candidate {
            priority,
            max_height,
            layers: start..self.layers.len(),
            forwarded,
        });
    }

    /// Decides every source's layer (into [`Allocation::chosen`]) for a receiver that wants at
    /// most `last_n` videos (`None`: all) and has `available_bps`.
    pub fn run(&mut self, last_n: Option<usize>, available_bps: u64) {
        let rank = |p: Priority| match p {
            Priority::OnStage => 0,
            Priority::Selected => 1,
            Priority::Other => 2,
        };
        // Every source takes its place in the ranking, sending or not: one that sends nothing
        // holds its last-N slot and gets no video (so the sources a receiver wants, which the
        // senders are told, are the ones it may be forwarded).
        for (i, c) in self.candidates.iter().enumerate() {
            // The options under the cap: at least the lowest spatial layer, unless the cap
            // is 0.
            let layers = &self.layers[c.layers.clone()];
            let fitting = match layers.first() {
                None => 0,
                Some(_) if c.max_height == 0 => 0,
                Some(first) => {
                    let lowest = first.layer.spatial;
                    layers
                        .iter()
                        .take_while(|o| o.height <= c.max_height || o.layer.spatial == lowest)
                        .count()
                }
            };
            self.order
                .push((i, c.layers.start..c.layers.start + fitting, None));
        }
        // Stable: equal ranks keep the order the sources were added in.
        let candidates = &self.candidates;
        self.order
            .sort_by_key(|(i, _, _)| rank(candidates[*i].priority));
        if let Some(n) = last_n {
            self.order.truncate(n);
        }
        self.desired_bps = self
            .order
            .iter()
            .filter(|(_, options, _)| options.start < options.end)
            .map(|(_, options, _)| self.layers[options.end - 1].bps)
            .sum();
        let mut left = available_bps;
        for class in 0..3 {
            for forwarded in [true, false] {
                for (i, options, picked) in &mut self.order {
                    let c = &self.candidates[*i];
                    if rank(c.priority) != class || c.forwarded != forwarded {
                        continue;
                    }
                    if let Some(lowest) = self
                        .layers
                        .get(options.start)
                        .filter(|o| options.start < options.end && o.bps <= left)
                    {
                        left -= lowest.bps;
                        *picked = Some(options.start);
                    }
                }
            }
        }
        for (_, options, picked) in &mut self.order {
            let Some(now) = *picked else {
                continue;
            };
            let spent = self.layers[now].bps;
            if let Some(best) = (now + 1..options.end)
                .rev()
                .find(|&j| self.layers[j].bps <= left + spent)
            {
                left = left + spent - self.layers[best].bps;
                *picked = Some(best);
            }
        }
        self.chosen.resize(self.candidates.len(), None);
        for (i, _, picked) in &self.order {
            self.chosen[*i] = picked.map(|j| self.layers[j].layer);
        }
        self.ranked.extend(0..candidates.len());
        self.ranked
            .sort_unstable_by_key(|&i| (rank(candidates[i].priority), i));
        self.wanted.resize(candidates.len(), 0);
        for &i in self.ranked.iter().take(last_n.unwrap_or(usize::MAX)) {
            self.wanted[i] = candidates[i].max_height;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::constraints::{ConstraintsUpdate, ReceiverConstraints};

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

    /// Endpoint `name` sending its camera `<name>-v0` with `layers`.
    fn sender<'a>(name: &'a str, layers: &'a [LayerOption]) -> (&'a str, &'a [LayerOption]) {
        (name, layers)
    }

    /// What a receiver with `constraints` and `bps` gets of `senders`, ranked and capped as the
    /// router does it.
    fn allocate(
        constraints: &ReceiverConstraints,
        bps: u64,
        senders: &[(&str, &[LayerOption])],
    ) -> Vec<Option<Layer>> {
        let mut a = Allocation::default();
        // Twice, as the router does every 500 ms: buffers reused, same answer.
        for _ in 0..2 {
            rerun(&mut a, constraints, bps, senders);
        }
        a.chosen.clone()
    }

    /// Runs `a` again for a receiver with `constraints` and `bps`, over `senders` (none of
    /// them forwarded now).
    fn rerun(
        a: &mut Allocation,
        constraints: &ReceiverConstraints,
        bps: u64,
        senders: &[(&str, &[LayerOption])],
    ) {
        a.clear();
        for (name, layers) in senders {
            let source = format!("{name}-v0");
            a.push(
                constraints.priority(name, &source),
                constraints.max_height_for(name, &source),
                false,
                layers.iter().copied(),
            );
        }
        a.run(constraints.last_n, bps);
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
        assert_eq!(got, [layer(0, 2), layer(1, 2), layer(0, 2)]);
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
        let steps: Vec<Option<Layer>> = [2_500_000, 1_800_000, 900_000, 650_000, 450_000]
            .into_iter()
            .map(|bps| allocate(&tall, bps, &one)[0])
            .collect();
        // Above 360 lines only the full frame rate: 720 at a quarter of it (1 Mbit/s) is
        // never a step.
        assert_eq!(
            steps,
            [
                layer(2, 2),
                layer(1, 2),
                layer(1, 2),
                layer(1, 1),
                layer(1, 0)
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

    #[test]
    fn desired_is_every_ranked_source_at_its_cap_whatever_the_bandwidth() {
        let layers = simulcast();
        let senders = [
            sender("a", &layers),
            sender("b", &layers),
            sender("c", &layers),
        ];
        let stage = constraints(ConstraintsUpdate {
            on_stage: Some(vec!["b".into()]),
            default_max_height: Some(180),
            max_heights: Some(vec![("b".into(), 720)]),
            last_n: Some(2),
            ..Default::default()
        });
        let mut a = Allocation::default();
        for bps in [200_000, 50_000_000] {
            rerun(&mut a, &stage, bps, &senders);
            // b at 720 (2 Mbit/s) and a at 180 (300 kbit/s); c is beyond last-N.
            assert_eq!(a.desired_bps, 2_300_000, "at {bps} bit/s");
        }
    }

    #[test]
    fn last_n_and_wanted_heights_rank_every_source_sending_or_not() {
        let layers = simulcast();
        // c sends nothing (yet, or its sender stopped because nobody wanted it).
        let senders = [
            sender("a", &layers),
            sender("b", &layers),
            sender("c", &[]),
            sender("d", &layers),
        ];
        let stage = constraints(ConstraintsUpdate {
            on_stage: Some(vec!["c".into()]),
            max_heights: Some(vec![("c".into(), 720)]),
            default_max_height: Some(180),
            last_n: Some(2),
            ..Default::default()
        });
        let mut a = Allocation::default();
        for bps in [50_000, 10_000_000] {
            rerun(&mut a, &stage, bps, &senders);
            // c on stage and a are the receiver's two; whatever the bandwidth.
            assert_eq!(a.wanted, [180, 0, 720, 0], "at {bps} bit/s");
        }
        // Forwarded: a only (c, in the other slot, sends nothing to forward).
        assert_eq!(a.chosen, [layer(0, 2), None, None, None]);
    }

    #[test]
    fn a_source_forwarded_now_is_not_paused_for_one_that_is_not() {
        let layers = simulcast();
        // Room for two lowest layers (150 kbit/s each): a, ranked first (a recent speaker),
        // is not forwarded now; b and c are.
        let tile = constraints(ConstraintsUpdate {
            default_max_height: Some(180),
            ..Default::default()
        });
        let run = |forwarded: [bool; 3], tile: &ReceiverConstraints| {
            let mut a = Allocation::default();
            for (name, now) in ["a", "b", "c"].into_iter().zip(forwarded) {
                let source = format!("{name}-v0");
                a.push(
                    tile.priority(name, &source),
                    tile.max_height_for(name, &source),
                    now,
                    layers.iter().copied(),
                );
            }
            a.run(None, 320_000);
            a.chosen
        };
        assert_eq!(
            run([false, true, true], &tile),
            [None, layer(0, 0), layer(0, 0)]
        );
        // Nobody forwarded yet (or everybody): the rank decides.
        assert_eq!(
            run([false, false, false], &tile),
            [layer(0, 0), layer(0, 0), None]
        );
        assert_eq!(
            run([true, true, true], &tile),
            [layer(0, 0), layer(0, 0), None]
        );
        // A higher priority still goes first: on stage, a takes c's place.
        let stage = constraints(ConstraintsUpdate {
            default_max_height: Some(180),
            on_stage: Some(vec!["a".into()]),
            ..Default::default()
        });
        assert_eq!(
            run([false, true, true], &stage),
            [layer(0, 0), layer(0, 0), None]
        );
    }
}
