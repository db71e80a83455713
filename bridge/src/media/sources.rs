//! An endpoint's signalled sources and what the bridge forwards of them.
//!
//! Until per-receiver layer choice exists, a simulcast (SIM) group is forwarded as its first
//! SSRC only, with that SSRC's FID (RTX) partner; the focus signals receivers exactly that.

use super::MediaKind;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SourceDesc {
    pub ssrc: u32,
    pub kind: MediaKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupSemantics {
    Simulcast,
    Fid,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceGroup {
    pub semantics: GroupSemantics,
    pub ssrcs: Vec<u32>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SourceSet {
    pub sources: Vec<SourceDesc>,
    pub groups: Vec<SourceGroup>,
}

/// How the bridge treats one received SSRC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SourcePlan {
    pub ssrc: u32,
    pub kind: MediaKind,
    /// Forwarded to receivers (false for simulcast layers above the first).
    pub forwarded: bool,
    /// This SSRC carries RTX for `rtx_for`.
    pub rtx_for: Option<u32>,
    /// The RTX SSRC that retransmits this one (its FID partner).
    pub rtx_ssrc: Option<u32>,
}

impl SourceSet {
    /// Every SSRC's role. Assumes a validated set (groups reference own SSRCs).
    pub fn plan(&self) -> Vec<SourcePlan> {
        let fid_pairs: Vec<(u32, u32)> = self
            .groups
            .iter()
            .filter(|g| g.semantics == GroupSemantics::Fid && g.ssrcs.len() == 2)
            .map(|g| (g.ssrcs[0], g.ssrcs[1]))
            .collect();
        let dropped_layers: Vec<u32> = self
            .groups
            .iter()
            .filter(|g| g.semantics == GroupSemantics::Simulcast)
            .flat_map(|g| g.ssrcs.iter().skip(1).copied())
            .collect();
        self.sources
            .iter()
            .map(|s| {
                let rtx_for = fid_pairs.iter().find(|p| p.1 == s.ssrc).map(|p| p.0);
                let rtx_ssrc = fid_pairs.iter().find(|p| p.0 == s.ssrc).map(|p| p.1);
                let primary = rtx_for.unwrap_or(s.ssrc);
                SourcePlan {
                    ssrc: s.ssrc,
                    kind: s.kind,
                    forwarded: !dropped_layers.contains(&primary),
                    rtx_for,
                    rtx_ssrc,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn video(ssrc: u32) -> SourceDesc {
        SourceDesc {
            ssrc,
            kind: MediaKind::Video,
        }
    }

    #[test]
    fn simulcast_forwards_first_layer_and_its_rtx() {
        let set = SourceSet {
            sources: vec![
                video(1),
                video(2),
                video(3),
                video(11),
                video(12),
                video(13),
                SourceDesc {
                    ssrc: 50,
                    kind: MediaKind::Audio,
                },
            ],
            groups: vec![
                SourceGroup {
                    semantics: GroupSemantics::Simulcast,
                    ssrcs: vec![1, 2, 3],
                },
                SourceGroup {
                    semantics: GroupSemantics::Fid,
                    ssrcs: vec![1, 11],
                },
                SourceGroup {
                    semantics: GroupSemantics::Fid,
                    ssrcs: vec![2, 12],
                },
                SourceGroup {
                    semantics: GroupSemantics::Fid,
                    ssrcs: vec![3, 13],
                },
            ],
        };
        let plan = set.plan();
        let forwarded: Vec<u32> = plan
            .iter()
            .filter(|p| p.forwarded)
            .map(|p| p.ssrc)
            .collect();
        assert_eq!(forwarded, vec![1, 11, 50]);
        let first = plan.iter().find(|p| p.ssrc == 1).unwrap();
        assert_eq!(first.rtx_ssrc, Some(11));
        let rtx = plan.iter().find(|p| p.ssrc == 11).unwrap();
        assert_eq!(rtx.rtx_for, Some(1));
        assert!(plan
            .iter()
            .find(|p| p.ssrc == 50)
            .unwrap()
            .rtx_ssrc
            .is_none());
    }
}
