//! The RTP sources of a conference: who sends which SSRC, checked before anyone else hears of
//! it, and the view other participants get of them.
//!
//! A participant announces its sources in its `session-accept` and later `source-add` /
//! `source-remove`. The focus checks each announcement on its own ([`EndpointSources::validate`])
//! and against the rest of the conference ([`ConferenceSources`]), gives them to the bridge, and
//! then tells the others what changed in their [`ReceiverView`]: exactly what the bridge answers
//! it forwards of them ([`Forwarded`]), in the participant's own description. Which streams reach
//! receivers (e.g. which simulcast layers) is the bridge's choice; the focus knows nothing of it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

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

impl Forwarded {
    /// Whether the bridge lists this group, and forwards every SSRC in it.
    fn lists_group(&self, semantics: &GroupSemantics, ssrcs: &[u32]) -> bool {
        ssrcs.iter().all(|ssrc| self.ssrcs.contains(ssrc))
            && self
                .groups
                .iter()
                .any(|(listed, listed_ssrcs)| listed == semantics && listed_ssrcs == ssrcs)
    }
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

    /// What other participants receive of these sources, given what the bridge forwards of
    /// them: the participant's own sources the bridge forwards and its own groups the bridge
    /// lists (over those sources), each as the participant described it, so that receivers get
    /// every detail of the description (`msid`, name, video type) of exactly what reaches them.
    pub fn receiver_view(&self, owner: &str, forwarded: &Forwarded) -> ReceiverView {
        ReceiverView {
            owner: owner.to_owned(),
            sources: EndpointSources {
                sources: self
                    .sources
                    .iter()
                    .filter(|source| forwarded.ssrcs.contains(&source.ssrc))
                    .cloned()
                    .collect(),
                groups: self
                    .groups
                    .iter()
                    .filter(|group| forwarded.lists_group(&group.semantics, &group.ssrcs))
                    .cloned()
                    .collect(),
            },
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
}

/// Every participant's sources in one conference, by occupant JID.
///
/// A change of a participant's sources takes two steps, with the bridge in between: `accept`,
/// `add` or `remove` check the announcement and store the sources (nothing is stored on a
/// refusal); the sources then go to the bridge, and `show` takes its answer (what it forwards
/// of them to the others) and says what the others must be told. Until then the others are
/// offered what was shown before (nothing, for a new participant).
#[derive(Debug, Clone, Default)]
pub struct ConferenceSources {
    participants: BTreeMap<String, ParticipantSources>,
}

impl ConferenceSources {
    pub fn new() -> Self {
        ConferenceSources::default()
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
        let now = participant.sources.receiver_view(owner, forwarded).sources;
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
        }
        Ok(())
    }

    /// Sets `owner`'s sources, leaving what the others were shown as it was.
    fn store(&mut self, owner: &str, sources: EndpointSources) {
        self.participants
            .entry(owner.to_owned())
            .or_default()
            .sources = sources;
    }
}

#[cfg(test)]
mod tests;
