//! The RTP sources of a conference: who sends which SSRC, checked before anyone else hears of
//! it, and the view other participants get of them.
//!
//! A participant announces its sources in its `session-accept` and later `source-add` /
//! `source-remove`. The focus checks each announcement on its own ([`EndpointSources::validate`])
//! and against the rest of the conference ([`ConferenceSources`]), gives them to the bridge, and
//! then tells the others what changed in their [`ReceiverView`]: exactly what the bridge answers
//! it forwards of them ([`Forwarded`]), in the participant's own description. Which streams reach
//! receivers (e.g. which simulcast layer) is the bridge's choice; the focus knows nothing of it.
//!
//! Receivers get each video source under one SSRC (and one RTX SSRC) whatever layer the bridge
//! forwards them: the focus mints these ([`SourceOutput`]) and gives them to the bridge with the
//! sources; they are unique in the conference, never a participant's own SSRC, and stay the same
//! while the participant is in the conference.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::jingle::{GroupSemantics, Jingle};

/// At most this many SSRCs per participant (Jicofo's limit): three simulcast layers with RTX for
/// camera and screen share, audio, and room to spare.
pub const MAX_SSRCS_PER_PARTICIPANT: usize = 20;

/// The media type of a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MediaType {
    Audio,
    Video,
}

impl MediaType {
    /// The Jingle `media` / content name of this type.
    pub fn as_str(self) -> &'static str {
        match self {
            MediaType::Audio => "audio",
            MediaType::Video => "video",
        }
    }

    /// `audio` or `video`; other media (e.g. `application`) carry no RTP sources.
    pub fn from_jingle(media: &str) -> Option<Self> {
        match media {
            "audio" => Some(MediaType::Audio),
            "video" => Some(MediaType::Video),
            _ => None,
        }
    }
}

impl fmt::Display for MediaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One RTP stream a participant sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaSource {
    pub ssrc: u32,
    pub media: MediaType,
    /// lib-jitsi-meet's source name, e.g. `abcd1234-v0`.
    pub name: Option<String>,
    /// The `msid` parameter: which MediaStream and track the receiver puts it in.
    pub msid: Option<String>,
    /// `camera` or `desktop`.
    pub video_type: Option<String>,
}

/// SSRCs of one media type that belong together (simulcast layers, media and RTX, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsrcGroup {
    pub media: MediaType,
    pub semantics: GroupSemantics,
    pub ssrcs: Vec<u32>,
}

/// The sources of one participant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointSources {
    pub sources: Vec<MediaSource>,
    pub groups: Vec<SsrcGroup>,
}

/// The SSRCs the other participants receive one of a participant's video sources under,
/// whatever simulcast layer of it the bridge forwards: minted by [`ConferenceSources`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceOutput {
    /// The source, by its first SSRC (its first SIM layer, or its only SSRC).
    pub source: u32,
    pub ssrc: u32,
    /// Present when the source has an RTX stream (an FID group).
    pub rtx: Option<u32>,
}

/// A stream a standards client sends without XEP-0339 sources in its content: the content's
/// name is its m-line's MID, and the bridge learns its SSRCs from the sdes:mid extension of its
/// first packets (as WebRTC stacks route a BUNDLE). The others receive it under SSRCs the focus
/// mints ([`MidStream`]), so its own SSRCs are never needed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MidSource {
    pub media: MediaType,
    /// The MID its packets carry: its content's name.
    pub mid: String,
    /// What receivers are told of it: a source name in lib-jitsi-meet's form (`<nick>-a0`,
    /// `<nick>-v0`) and an `msid` (the sender's nick as the MediaStream, so its audio and video
    /// are one stream, and the source name as the track).
    pub name: String,
    pub msid: String,
}

impl MidSource {
    /// The client's own contents of `jingle` that it sends without XEP-0339 sources (audio or
    /// video, `sends` by their `senders`), named after `nick`: `<nick>-a0`, `<nick>-v0`, …
    pub fn of_contents(
        jingle: &Jingle,
        own: &[String],
        nick: &str,
        sends: impl Fn(Option<crate::jingle::Senders>) -> bool,
    ) -> Vec<MidSource> {
        let mut counts = [0usize; 2];
        let mut mids = Vec::new();
        for content in jingle.contents.iter().filter(|c| own.contains(&c.name)) {
            let Some(description) = &content.description else {
                continue;
            };
            let media_name = description.media.as_deref().unwrap_or(&content.name);
            let Some(media) = MediaType::from_jingle(media_name) else {
                continue;
            };
            if !description.sources.is_empty() || !sends(content.senders) {
                continue;
            }
            let count = &mut counts[media as usize];
            let name = format!("{nick}-{}{count}", &media.as_str()[..1]);
            *count += 1;
            mids.push(MidSource {
                media,
                mid: content.name.clone(),
                msid: format!("{nick} {name}"),
                name,
            });
        }
        mids
    }
}

/// A [`MidSource`] and what the others receive it under: an SSRC the focus minted and, for
/// video, an RTX SSRC; unique in the conference, kept while the source stays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MidStream {
    pub source: MidSource,
    pub ssrc: u32,
    pub rtx: Option<u32>,
}

impl MidStream {
    /// How receivers are told of `ssrc`, one of this stream's outputs.
    fn describe(&self, ssrc: u32) -> MediaSource {
        MediaSource {
            ssrc,
            media: self.source.media,
            name: Some(self.source.name.clone()),
            msid: Some(self.source.msid.clone()),
            video_type: (self.source.media == MediaType::Video).then(|| "camera".to_owned()),
        }
    }
}

/// What the bridge forwards of one participant's sources to every other participant, from its
/// answer to the `UpdateEndpoint` that gave it those sources (see
/// [`crate::to_bridge::forwarded_from_pb`]): the SSRCs receivers get, and the groups among them
/// (a stream's SSRC and its RTX SSRC as an FID group). Which of a participant's streams reach
/// receivers (e.g. which simulcast layer) is the bridge's choice alone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Forwarded {
    pub ssrcs: BTreeSet<u32>,
    pub groups: Vec<(GroupSemantics, Vec<u32>)>,
}

/// Why a participant's sources were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    #[error("SSRC 0 is not allowed")]
    ZeroSsrc,
    #[error("SSRC {0} is listed twice")]
    DuplicateSsrc(u32),
    #[error("{count} SSRCs, at most {MAX_SSRCS_PER_PARTICIPANT} are allowed per participant")]
    TooManySsrcs { count: usize },
    #[error("SSRC {ssrc} is already used by {owner}")]
    SsrcOwnedByOther { ssrc: u32, owner: String },
    #[error("a {semantics} group references SSRC {ssrc}, which is not one of the participant's {media} sources")]
    GroupReferencesUnknownSsrc {
        semantics: String,
        media: MediaType,
        ssrc: u32,
    },
    #[error("an FID group has exactly two different SSRCs (media, RTX), not {ssrcs:?}")]
    MalformedFidGroup { ssrcs: Vec<u32> },
    #[error("a SIM group has at least two different SSRCs (one per layer), not {ssrcs:?}")]
    MalformedSimulcastGroup { ssrcs: Vec<u32> },
    #[error("SSRC {ssrc} is a layer of more than one SIM group")]
    SsrcInTwoSimulcastGroups { ssrc: u32 },
    #[error("SSRC {ssrc} has more than one RTX SSRC")]
    SsrcWithTwoRtx { ssrc: u32 },
    #[error("content '{content}' has sources but its media '{media}' is not audio or video")]
    SourcesInUnsupportedMedia { content: String, media: String },
    #[error("SSRC {ssrc} cannot be removed: the participant does not send it")]
    RemovingUnknownSsrc { ssrc: u32 },
    #[error("SSRC {ssrc} is taken: the focus forwards a source under it")]
    SsrcReserved { ssrc: u32 },
}

impl EndpointSources {
    /// The sources and groups in a `session-accept`, `source-add` or `source-remove`, checked
    /// with [`EndpointSources::validate`]. A content's media type is its description's `media`,
    /// or the content name when that is absent (lib-jitsi-meet's `source-add` has both).
    pub fn from_jingle(jingle: &Jingle) -> Result<Self, SourceError> {
        let mut endpoint = EndpointSources::default();
        for content in &jingle.contents {
            let Some(description) = &content.description else {
                continue;
            };
            if description.sources.is_empty() && description.source_groups.is_empty() {
                continue;
            }
            let media_name = description.media.as_deref().unwrap_or(&content.name);
            let media = MediaType::from_jingle(media_name).ok_or_else(|| {
                SourceError::SourcesInUnsupportedMedia {
                    content: crate::error::quote(&content.name),
                    media: crate::error::quote(media_name),
                }
            })?;
            endpoint
                .sources
                .extend(description.sources.iter().map(|source| MediaSource {
                    ssrc: source.ssrc,
                    media,
                    name: source.name.clone(),
                    msid: source.parameter("msid").map(str::to_owned),
                    video_type: source.video_type.clone(),
                }));
            endpoint
                .groups
                .extend(description.source_groups.iter().map(|group| SsrcGroup {
                    media,
                    semantics: group.semantics.clone(),
                    ssrcs: group.ssrcs.clone(),
                }));
        }
        endpoint.validate()?;
        Ok(endpoint)
    }

    /// Checks the participant's sources on their own: SSRCs non-zero, unique and at most
    /// [`MAX_SSRCS_PER_PARTICIPANT`]; groups only over the participant's own SSRCs of the same
    /// media; FID groups a (media, RTX) pair; SIM groups two or more layers; no SSRC a layer of
    /// two SIM groups or with two RTX SSRCs.
    pub fn validate(&self) -> Result<(), SourceError> {
        let mut seen = BTreeSet::new();
        for source in &self.sources {
            if source.ssrc == 0 {
                return Err(SourceError::ZeroSsrc);
            }
            if !seen.insert(source.ssrc) {
                return Err(SourceError::DuplicateSsrc(source.ssrc));
            }
        }
        if self.sources.len() > MAX_SSRCS_PER_PARTICIPANT {
            return Err(SourceError::TooManySsrcs {
                count: self.sources.len(),
            });
        }
        let mut simulcast_layers = BTreeSet::new();
        let mut rtx_primaries = BTreeSet::new();
        for group in &self.groups {
            if let Some(ssrc) = group
                .ssrcs
                .iter()
                .find(|ssrc| self.media_of(**ssrc) != Some(group.media))
            {
                return Err(SourceError::GroupReferencesUnknownSsrc {
                    semantics: crate::error::quote(group.semantics.as_str()),
                    media: group.media,
                    ssrc: *ssrc,
                });
            }
            let distinct: BTreeSet<u32> = group.ssrcs.iter().copied().collect();
            match group.semantics {
                GroupSemantics::Fid => {
                    if group.ssrcs.len() != 2 || distinct.len() != 2 {
                        return Err(SourceError::MalformedFidGroup {
                            ssrcs: group.ssrcs.clone(),
                        });
                    }
                    if !rtx_primaries.insert(group.ssrcs[0]) {
                        return Err(SourceError::SsrcWithTwoRtx {
                            ssrc: group.ssrcs[0],
                        });
                    }
                }
                GroupSemantics::Simulcast => {
                    if group.ssrcs.len() < 2 || distinct.len() != group.ssrcs.len() {
                        return Err(SourceError::MalformedSimulcastGroup {
                            ssrcs: group.ssrcs.clone(),
                        });
                    }
                    if let Some(ssrc) = group
                        .ssrcs
                        .iter()
                        .find(|ssrc| !simulcast_layers.insert(**ssrc))
                    {
                        return Err(SourceError::SsrcInTwoSimulcastGroups { ssrc: *ssrc });
                    }
                }
                GroupSemantics::Other(_) => {}
            }
        }
        Ok(())
    }

    /// The media type of one of the participant's SSRCs.
    pub fn media_of(&self, ssrc: u32) -> Option<MediaType> {
        self.sources
            .iter()
            .find(|source| source.ssrc == ssrc)
            .map(|source| source.media)
    }

    pub fn is_empty(&self) -> bool {
        self.sources.is_empty() && self.groups.is_empty()
    }

    /// The RTX SSRC of `ssrc` (its FID partner).
    pub fn rtx_of(&self, ssrc: u32) -> Option<u32> {
        self.groups
            .iter()
            .find(|group| {
                group.semantics == GroupSemantics::Fid && group.ssrcs.first() == Some(&ssrc)
            })
            .and_then(|group| group.ssrcs.get(1).copied())
    }

    /// The participant's video sources, each by its first SSRC (first SIM layer, or its only
    /// SSRC) with that SSRC's RTX SSRC: what receivers get one stream of each.
    pub fn video_streams(&self) -> Vec<(u32, Option<u32>)> {
        let is_rtx = |ssrc: u32| {
            self.groups.iter().any(|group| {
                group.semantics == GroupSemantics::Fid && group.ssrcs.get(1) == Some(&ssrc)
            })
        };
        let later_layer = |ssrc: u32| {
            self.groups.iter().any(|group| {
                group.semantics == GroupSemantics::Simulcast
                    && group.ssrcs.iter().skip(1).any(|layer| *layer == ssrc)
            })
        };
        self.sources
            .iter()
            .filter(|source| source.media == MediaType::Video)
            .filter(|source| !is_rtx(source.ssrc) && !later_layer(source.ssrc))
            .map(|source| (source.ssrc, self.rtx_of(source.ssrc)))
            .collect()
    }

    /// How receivers are told of `ssrc`: the participant's own description of it, or, for an
    /// SSRC of `outputs`, that of the source (or of its RTX stream) it stands for; with the
    /// position of that description in the participant's list.
    fn describe(&self, ssrc: u32, outputs: &[SourceOutput]) -> Option<(usize, MediaSource)> {
        let own = |ssrc: u32| self.sources.iter().position(|source| source.ssrc == ssrc);
        let index = match outputs
            .iter()
            .find(|o| o.ssrc == ssrc || o.rtx == Some(ssrc))
        {
            Some(output) if output.ssrc == ssrc => own(output.source),
            Some(output) => own(self.rtx_of(output.source).unwrap_or(output.source)),
            None => own(ssrc),
        }?;
        Some((
            index,
            MediaSource {
                ssrc,
                ..self.sources[index].clone()
            },
        ))
    }

    /// What other participants receive of these sources, given what the bridge forwards of
    /// them (under the participant's own SSRCs or those of `outputs`): each SSRC the bridge
    /// forwards, described as the participant described the source it carries, so that
    /// receivers get every detail of the description (`msid`, name, video type), and the groups
    /// the bridge lists among them.
    pub fn receiver_view(
        &self,
        owner: &str,
        forwarded: &Forwarded,
        outputs: &[SourceOutput],
    ) -> ReceiverView {
        let mut described: Vec<(usize, MediaSource)> = forwarded
            .ssrcs
            .iter()
            .filter_map(|ssrc| self.describe(*ssrc, outputs))
            .collect();
        described.sort_by_key(|(index, _)| *index);
        let sources: Vec<MediaSource> = described.into_iter().map(|(_, source)| source).collect();
        // A group the bridge lists is passed on when every SSRC of it is forwarded and it is one
        // the participant announced, or an output's stream with its RTX stream.
        let is_output_pair = |semantics: &GroupSemantics, ssrcs: &[u32]| {
            *semantics == GroupSemantics::Fid
                && outputs
                    .iter()
                    .any(|o| o.rtx.is_some_and(|rtx| ssrcs == [o.ssrc, rtx]))
        };
        let groups = forwarded
            .groups
            .iter()
            .filter(|(_, ssrcs)| ssrcs.iter().all(|s| forwarded.ssrcs.contains(s)))
            .filter_map(|(semantics, ssrcs)| {
                let announced = self
                    .groups
                    .iter()
                    .find(|group| group.semantics == *semantics && group.ssrcs == *ssrcs);
                match announced {
                    Some(group) => Some(group.clone()),
                    None if is_output_pair(semantics, ssrcs) => Some(SsrcGroup {
                        media: MediaType::Video,
                        semantics: semantics.clone(),
                        ssrcs: ssrcs.clone(),
                    }),
                    None => None,
                }
            })
            .collect();
        ReceiverView {
            owner: owner.to_owned(),
            sources: EndpointSources { sources, groups },
        }
    }

    /// Sources and groups of `self` that are not in `other`.
    fn difference(&self, other: &EndpointSources) -> EndpointSources {
        EndpointSources {
            sources: self
                .sources
                .iter()
                .filter(|source| !other.sources.contains(source))
                .cloned()
                .collect(),
            groups: self
                .groups
                .iter()
                .filter(|group| !other.groups.contains(group))
                .cloned()
                .collect(),
        }
    }
}

/// One participant's sources as the others receive them; made only by
/// [`EndpointSources::receiver_view`] and [`ConferenceSources`], so what the focus signals to
/// receivers is always what the bridge said it forwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiverView {
    owner: String,
    sources: EndpointSources,
}

impl ReceiverView {
    /// The occupant JID of the participant who sends these sources.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    pub fn sources(&self) -> &EndpointSources {
        &self.sources
    }

    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }
}

/// What the other participants must be told after a change of one participant's sources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceChange {
    /// To send in a `source-add`.
    pub added: ReceiverView,
    /// To send in a `source-remove`.
    pub removed: ReceiverView,
}

/// One participant's sources, and what the others were last told of them.
#[derive(Debug, Clone, Default)]
struct ParticipantSources {
    /// Everything it sends, as it announced it.
    sources: EndpointSources,
    /// What the others were last signalled (by [`ConferenceSources::show`]): the part of the
    /// sources the bridge forwarded then.
    shown: EndpointSources,
    /// What the others receive its video sources under, one entry per video source.
    outputs: Vec<SourceOutput>,
    /// What it sends without XEP-0339 sources (a standards client), with its outputs.
    mid_streams: Vec<MidStream>,
}

impl ParticipantSources {
    /// What the others receive of it, given what the bridge forwards: its sources' view
    /// ([`EndpointSources::receiver_view`]) and, after them, its MID streams' outputs with the
    /// FID group of each video's.
    fn receiver_view(&self, owner: &str, forwarded: &Forwarded) -> EndpointSources {
        let mut view = self
            .sources
            .receiver_view(owner, forwarded, &self.outputs)
            .sources;
        for stream in &self.mid_streams {
            let ssrcs = std::iter::once(stream.ssrc).chain(stream.rtx);
            if !ssrcs.clone().all(|ssrc| forwarded.ssrcs.contains(&ssrc)) {
                continue;
            }
            view.sources.extend(ssrcs.map(|ssrc| stream.describe(ssrc)));
            if let Some(rtx) = stream.rtx {
                view.groups.push(SsrcGroup {
                    media: stream.source.media,
                    semantics: GroupSemantics::Fid,
                    ssrcs: vec![stream.ssrc, rtx],
                });
            }
        }
        view
    }
}

/// Every participant's sources in one conference, by occupant JID.
///
/// A change of a participant's sources takes two steps, with the bridge in between: `accept`,
/// `add` or `remove` check the announcement and store the sources (nothing is stored on a
/// refusal); the sources then go to the bridge, and `show` takes its answer (what it forwards
/// of them to the others) and says what the others must be told. Until then the others are
/// offered what was shown before (nothing, for a new participant).
///
/// Storing a participant's sources also gives each of its video sources its [`SourceOutput`]
/// (kept for a source that stays, so a new session with the same sources keeps them), drawn
/// from the conference's own random generator.
#[derive(Debug, Clone)]
pub struct ConferenceSources {
    participants: BTreeMap<String, ParticipantSources>,
    rng: StdRng,
}

impl Default for ConferenceSources {
    fn default() -> Self {
        ConferenceSources::new()
    }
}

impl ConferenceSources {
    /// Output SSRCs drawn from the system's randomness.
    pub fn new() -> Self {
        ConferenceSources::with_seed(rand::rng().random())
    }

    /// Output SSRCs drawn from a generator seeded with `seed` (reproducible tests).
    pub fn with_seed(seed: u64) -> Self {
        ConferenceSources {
            participants: BTreeMap::new(),
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// What the others receive `owner`'s video sources under (to give to the bridge with its
    /// sources).
    pub fn outputs(&self, owner: &str) -> &[SourceOutput] {
        self.participants
            .get(owner)
            .map_or(&[], |participant| &participant.outputs)
    }

    /// What `owner` sends without XEP-0339 sources, with what the others receive it under (to
    /// give to the bridge with its sources).
    pub fn mid_streams(&self, owner: &str) -> &[MidStream] {
        self.participants
            .get(owner)
            .map_or(&[], |participant| &participant.mid_streams)
    }

    /// Sets what `owner` (a standards client) sends without XEP-0339 sources, replacing what it
    /// had; each keeps the outputs it had (a stream of the same MID and media), a new one gets
    /// new ones. Its sources must have been stored first ([`ConferenceSources::accept`]).
    pub fn set_mid_sources(&mut self, owner: &str, sources: Vec<MidSource>) {
        let before = self
            .participants
            .get(owner)
            .map(|participant| participant.mid_streams.clone())
            .unwrap_or_default();
        let mut streams: Vec<MidStream> = Vec::with_capacity(sources.len());
        for source in sources {
            let kept = before
                .iter()
                .find(|s| s.source.mid == source.mid && s.source.media == source.media);
            let (ssrc, rtx) = match kept {
                Some(kept) => (kept.ssrc, kept.rtx),
                None => {
                    let pending: Vec<u32> = streams
                        .iter()
                        .flat_map(|s| std::iter::once(s.ssrc).chain(s.rtx))
                        .collect();
                    let ssrc = self.mint(&pending, 0);
                    let rtx = (source.media == MediaType::Video).then(|| self.mint(&pending, ssrc));
                    (ssrc, rtx)
                }
            };
            streams.push(MidStream { source, ssrc, rtx });
        }
        self.participants
            .entry(owner.to_owned())
            .or_default()
            .mid_streams = streams;
    }

    /// The sources `owner` sends.
    pub fn get(&self, owner: &str) -> Option<&EndpointSources> {
        self.participants
            .get(owner)
            .map(|participant| &participant.sources)
    }

    /// The participant who sends `ssrc`.
    pub fn owner_of(&self, ssrc: u32) -> Option<&str> {
        self.participants
            .iter()
            .find(|(_, participant)| participant.sources.media_of(ssrc).is_some())
            .map(|(owner, _)| owner.as_str())
    }

    /// What `receiver` is to be offered in its `session-initiate`: what the others were shown
    /// of everyone else's sources.
    pub fn receiver_views_except(&self, receiver: &str) -> Vec<ReceiverView> {
        self.participants
            .iter()
            .filter(|(owner, _)| owner.as_str() != receiver)
            .map(|(owner, participant)| ReceiverView {
                owner: owner.clone(),
                sources: participant.shown.clone(),
            })
            .filter(|view| !view.is_empty())
            .collect()
    }

    /// Sets `owner`'s sources to `sources` (its `session-accept`, replacing any earlier ones).
    pub fn accept(&mut self, owner: &str, sources: EndpointSources) -> Result<(), SourceError> {
        sources.validate()?;
        self.check_not_owned_by_others(owner, &sources)?;
        self.store(owner, sources);
        Ok(())
    }

    /// Adds sources to `owner`'s (its `source-add`).
    pub fn add(&mut self, owner: &str, additions: &EndpointSources) -> Result<(), SourceError> {
        let mut combined = self.get(owner).cloned().unwrap_or_default();
        combined.sources.extend(additions.sources.iter().cloned());
        combined.groups.extend(
            additions
                .groups
                .iter()
                .filter(|group| !combined.groups.contains(group))
                .cloned()
                .collect::<Vec<_>>(),
        );
        combined.validate()?;
        self.check_not_owned_by_others(owner, additions)?;
        self.store(owner, combined);
        Ok(())
    }

    /// Removes sources from `owner`'s (its `source-remove`): the listed SSRCs, every group that
    /// references one of them, and the listed groups.
    pub fn remove(&mut self, owner: &str, removals: &EndpointSources) -> Result<(), SourceError> {
        let mut remaining = self.get(owner).cloned().unwrap_or_default();
        if let Some(stranger) = removals
            .sources
            .iter()
            .find(|removed| remaining.media_of(removed.ssrc).is_none())
        {
            return Err(SourceError::RemovingUnknownSsrc {
                ssrc: stranger.ssrc,
            });
        }
        let removed_ssrcs: BTreeSet<u32> =
            removals.sources.iter().map(|source| source.ssrc).collect();
        remaining
            .sources
            .retain(|source| !removed_ssrcs.contains(&source.ssrc));
        remaining.groups.retain(|group| {
            !removals.groups.contains(group)
                && group.ssrcs.iter().all(|ssrc| !removed_ssrcs.contains(ssrc))
        });
        self.store(owner, remaining);
        Ok(())
    }

    /// Takes the bridge's answer to `owner`'s sources (what it forwards of them): the view the
    /// others get from now on, and what they must be told of it, the difference from what they
    /// were shown before. An unknown `owner` changes nothing.
    pub fn show(&mut self, owner: &str, forwarded: &Forwarded) -> SourceChange {
        let view = |sources| ReceiverView {
            owner: owner.to_owned(),
            sources,
        };
        let Some(participant) = self.participants.get_mut(owner) else {
            return SourceChange {
                added: view(EndpointSources::default()),
                removed: view(EndpointSources::default()),
            };
        };
        let now = participant.receiver_view(owner, forwarded);
        let change = SourceChange {
            added: view(now.difference(&participant.shown)),
            removed: view(participant.shown.difference(&now)),
        };
        participant.shown = now;
        change
    }

    /// Forgets `owner` (it left); what the others must remove: what they were shown.
    pub fn remove_participant(&mut self, owner: &str) -> ReceiverView {
        ReceiverView {
            owner: owner.to_owned(),
            sources: self
                .participants
                .remove(owner)
                .map(|participant| participant.shown)
                .unwrap_or_default(),
        }
    }

    fn check_not_owned_by_others(
        &self,
        owner: &str,
        sources: &EndpointSources,
    ) -> Result<(), SourceError> {
        for source in &sources.sources {
            if let Some(other) = self.owner_of(source.ssrc).filter(|other| *other != owner) {
                return Err(SourceError::SsrcOwnedByOther {
                    ssrc: source.ssrc,
                    owner: other.to_owned(),
                });
            }
            if self.is_output(source.ssrc) {
                return Err(SourceError::SsrcReserved { ssrc: source.ssrc });
            }
        }
        Ok(())
    }

    fn is_output(&self, ssrc: u32) -> bool {
        self.participants.values().any(|participant| {
            participant
                .outputs
                .iter()
                .any(|o| o.ssrc == ssrc || o.rtx == Some(ssrc))
                || participant
                    .mid_streams
                    .iter()
                    .any(|s| s.ssrc == ssrc || s.rtx == Some(ssrc))
        })
    }

    /// Sets `owner`'s sources, leaving what the others were shown as it was, and gives its video
    /// sources their outputs: the ones they had, new ones for new sources.
    fn store(&mut self, owner: &str, sources: EndpointSources) {
        let streams = sources.video_streams();
        let before = self
            .participants
            .get(owner)
            .map(|participant| participant.outputs.clone())
            .unwrap_or_default();
        let participant = self.participants.entry(owner.to_owned()).or_default();
        participant.sources = sources;
        let mut outputs = Vec::with_capacity(streams.len());
        for (source, rtx) in streams {
            let kept = before.iter().find(|o| o.source == source);
            let ssrc = match kept {
                Some(output) => output.ssrc,
                None => self.mint(&pending(&outputs), 0),
            };
            let rtx = match (rtx, kept.and_then(|o| o.rtx)) {
                (None, _) => None,
                (Some(_), Some(kept)) => Some(kept),
                (Some(_), None) => Some(self.mint(&pending(&outputs), ssrc)),
            };
            outputs.push(SourceOutput { source, ssrc, rtx });
        }
        if let Some(participant) = self.participants.get_mut(owner) {
            participant.outputs = outputs;
        }
    }

    /// A new output SSRC: non-zero, not `also`, no participant's SSRC and no output's
    /// (`pending` included).
    fn mint(&mut self, pending: &[u32], also: u32) -> u32 {
        loop {
            let ssrc: u32 = self.rng.random();
            let taken = ssrc == 0
                || ssrc == also
                || self.owner_of(ssrc).is_some()
                || self.is_output(ssrc)
                || pending.contains(&ssrc);
            if !taken {
                return ssrc;
            }
        }
    }
}

/// The SSRCs of `outputs`, with their RTX SSRCs.
fn pending(outputs: &[SourceOutput]) -> Vec<u32> {
    outputs
        .iter()
        .flat_map(|o| std::iter::once(o.ssrc).chain(o.rtx))
        .collect()
}

#[cfg(test)]
mod tests;
