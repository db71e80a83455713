//! An endpoint's signalled sources, and how they group into the producers the bridge keeps.
//!
//! A producer is one source of a sender as a receiver sees it: an audio stream, or a video
//! whose simulcast (SIM) layers are its encodings, each with its FID (RTX) partner.
use super::{MediaKind, Mid};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceDesc {
    pub ssrc: u32,
    pub kind: MediaKind,
    /// The source's name (e.g. `<endpoint>-v0`); may be empty.
    pub name: String,
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

/// The SSRCs receivers get a source under (minted by the focus), whatever layer of it they
/// are forwarded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SourceOutput {
    /// The source's first SSRC (its first SIM layer, or its only SSRC).
    pub source: u32,
    pub ssrc: u32,
    pub rtx: Option<u32>,
}

/// A source whose SSRCs are not signalled: named by its sender's MID (`a=mid`, the sdes:mid
/// header extension: a standards client that signals no sources), by the RIDs of its
/// encodings (`a=rid`, the RtpStreamId header extension: Chromium's own simulcast, WHIP
/// clients), or both. The bridge learns each encoding's SSRC (and its RTX SSRC) from the first
/// packet of its sender that names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LearntSource {
    pub kind: MediaKind,
    pub name: String,
    /// The MID its packets carry; `None`: any (a source named by its RIDs alone).
    pub mid: Option<Mid>,
    /// Lowest encoding first; empty for one encoding named by its MID.
    pub rids: Vec<String>,
    /// What receivers get it under (and its RTX SSRC).
    pub output: (u32, Option<u32>),
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SourceSet {
    pub sources: Vec<SourceDesc>,
    pub groups: Vec<SourceGroup>,
    pub outputs: Vec<SourceOutput>,
    pub learnt_sources: Vec<LearntSource>,
}

/// One producer's shape: its media kind, its encodings, lowest simulcast layer first, each as
/// (media SSRC, RTX SSRC) (never empty; 0 while the encoding of a learnt source has not been
/// seen), the MID and RIDs naming them (none for signalled SSRCs), and the SSRCs receivers get
/// it under when the focus chose them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProducerSpec {
    pub kind: MediaKind,
    /// The name of its first SSRC's source.
    pub name: String,
    pub encodings: Vec<(u32, Option<u32>)>,
    pub mid: Option<Mid>,
    pub rids: Vec<String>,
    pub output: Option<(u32, Option<u32>)>,
}

impl ProducerSpec {
    /// The SSRC receivers get this source under, and its RTX SSRC, whichever layer a consumer
    /// forwards: the focus's choice, else the first layer's.
    pub fn output_ssrcs(&self) -> (u32, Option<u32>) {
        self.output.unwrap_or(self.encodings[0])
    }

    /// Its SSRCs are learnt from its packets rather than signalled.
    pub fn is_learnt(&self) -> bool {
        self.mid.is_some() || !self.rids.is_empty()
    }
}

impl SourceSet {
    /// The producers these sources make. Assumes a validated set (groups reference own SSRCs,
    /// no SSRC in two SIM groups or with two RTX partners, outputs name first SSRCs).
    pub fn producers(&self) -> Vec<ProducerSpec> {
        let rtx_of = |ssrc: u32| {
            self.groups
                .iter()
                .filter(|g| g.semantics == GroupSemantics::Fid && g.ssrcs.len() == 2)
                .find(|g| g.ssrcs[0] == ssrc)
                .map(|g| g.ssrcs[1])
        };
        let is_rtx = |ssrc: u32| {
            self.groups.iter().any(|g| {
                g.semantics == GroupSemantics::Fid && g.ssrcs.len() == 2 && g.ssrcs[1] == ssrc
            })
        };
        let simulcast = |ssrc: u32| {
            self.groups
                .iter()
                .find(|g| g.semantics == GroupSemantics::Simulcast && g.ssrcs.contains(&ssrc))
        };
        let mut specs = Vec::new();
        for source in &self.sources {
            if is_rtx(source.ssrc) {
                continue;
            }
            let layers = match simulcast(source.ssrc) {
                // A simulcast source is made once, by its first layer.
                Some(group) if group.ssrcs[0] != source.ssrc => continue,
                Some(group) => group.ssrcs.clone(),
                None => vec![source.ssrc],
            };
            specs.push(ProducerSpec {
                kind: source.kind,
                name: source.name.clone(),
                encodings: layers
                    .into_iter()
                    .map(|ssrc| (ssrc, rtx_of(ssrc)))
                    .collect(),
                mid: None,
                rids: Vec::new(),
                output: self
                    .outputs
                    .iter()
                    .find(|o| o.source == source.ssrc)
                    .map(|o| (o.ssrc, o.rtx)),
            });
        }
        specs.extend(self.learnt_sources.iter().map(|l| ProducerSpec {
            kind: l.kind,
            name: l.name.clone(),
            encodings: vec![(0, None); l.rids.len().max(1)],
            mid: l.mid,
            rids: l.rids.clone(),
            output: Some(l.output),
        }));
        specs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn video(ssrc: u32) -> SourceDesc {
        SourceDesc {
            ssrc,
            kind: MediaKind::Video,
            name: format!("v{ssrc}"),
        }
    }

    #[test]
    fn a_simulcast_source_is_one_producer_with_its_layers_their_rtx_and_its_output() {
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
                    name: "a0".into(),
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
            outputs: vec![SourceOutput {
                source: 1,
                ssrc: 900,
                rtx: Some(901),
            }],
            learnt_sources: Vec::new(),
        };
        assert_eq!(
            set.producers(),
            vec![
                ProducerSpec {
                    kind: MediaKind::Video,
                    name: "v1".into(),
                    encodings: vec![(1, Some(11)), (2, Some(12)), (3, Some(13))],
                    mid: None,
                    rids: Vec::new(),
                    output: Some((900, Some(901))),
                },
                ProducerSpec {
                    kind: MediaKind::Audio,
                    name: "a0".into(),
                    encodings: vec![(50, None)],
                    mid: None,
                    rids: Vec::new(),
                    output: None,
                },
            ]
        );
    }
}
