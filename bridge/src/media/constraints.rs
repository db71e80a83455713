//! What one receiver asks the bridge to forward to it: Jitsi's receiver video constraints
//! (<https://github.com/jitsi/jitsi-videobridge/blob/master/doc/allocation.md>), as the bridge
//! channel delivers them (see `channel_messages`). The per-receiver allocator reads a
//! [`ReceiverConstraints`] to pick each sender's simulcast layer: how many videos (lastN), whose
//! first (on stage, then selected), and how tall at most.
//!
//! Ids are whatever the client names: endpoint ids (lib-jitsi-meet up to the multi-stream
//! switch) or source names such as `<endpoint>-v0` (newer clients); every lookup takes both.

/// The height a receiver gets before its first constraints message: thumbnails only, as the
/// Jitsi bridge does, so a client that never says what it shows cannot pull every sender's top
/// layer.
pub const INITIAL_MAX_HEIGHT: u32 = 180;
/// Most ids kept per list (on stage, selected, per-id heights); further ones are dropped. Far
/// above any conference's video count, it only bounds what one client can make the bridge hold.
pub const MAX_IDS: usize = 256;
/// Longest id kept, in bytes; longer ones are dropped (no endpoint id or source name is that
/// long, so they could match nothing).
pub const MAX_ID_BYTES: usize = 256;

/// A partial update of a receiver's constraints, as one message carries it: `None` leaves that
/// field as it was.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConstraintsUpdate {
    /// How many videos the receiver wants; any negative value means all of them.
    pub last_n: Option<i32>,
    /// Endpoint ids or source names the receiver wants before the others (replaces the list).
    pub selected: Option<Vec<String>>,
    /// Endpoint ids or source names shown large; they come before the selected ones (replaces
    /// the list).
    pub on_stage: Option<Vec<String>>,
    /// Height cap for every video without an entry of its own.
    pub default_max_height: Option<u32>,
    /// (endpoint id or source name, height cap) pairs (replaces every earlier pair).
    pub max_heights: Option<Vec<(String, u32)>>,
    /// Bandwidth the allocator should assume instead of its estimate (a testing knob of
    /// Jitsi's); `Some(0)` stops assuming.
    pub assumed_bandwidth_bps: Option<u64>,
}

/// A receiver's constraints as they stand after every update so far.
#[derive(Clone, Debug, PartialEq)]
pub struct ReceiverConstraints {
    /// Most videos to forward; `None` = unlimited.
    pub last_n: Option<usize>,
    /// Endpoint ids or source names forwarded before the others, after the on-stage ones.
    pub selected: Vec<String>,
    /// Endpoint ids or source names forwarded first, at their own height caps.
    pub on_stage: Vec<String>,
    /// Height cap for a video without an entry in `max_heights`.
    pub default_max_height: u32,
    /// Per-id height caps; see [`ReceiverConstraints::max_height_for`].
    pub max_heights: Vec<(String, u32)>,
    /// Bandwidth to assume instead of the estimate; `None` = use the estimate.
    pub assumed_bandwidth_bps: Option<u64>,
    /// Whether any constraints message has arrived (until then: [`INITIAL_MAX_HEIGHT`]).
    pub received: bool,
}

impl Default for ReceiverConstraints {
    /// Unlimited lastN, nothing on stage or selected, every video capped at
    /// [`INITIAL_MAX_HEIGHT`].
    fn default() -> Self {
        Self {
            last_n: None,
            selected: Vec::new(),
            on_stage: Vec::new(),
            default_max_height: INITIAL_MAX_HEIGHT,
            max_heights: Vec::new(),
            assumed_bandwidth_bps: None,
            received: false,
        }
    }
}

/// Where a video stands in a receiver's order of preference, highest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Priority {
    OnStage,
    Selected,
    Other,
}

impl ReceiverConstraints {
    /// Applies one message's update; fields it leaves `None` keep their value. Lists keep at
    /// most [`MAX_IDS`] ids of at most [`MAX_ID_BYTES`] bytes each.
    pub fn apply(&mut self, update: ConstraintsUpdate) {
        self.received = true;
        if let Some(last_n) = update.last_n {
            self.last_n = usize::try_from(last_n).ok();
        }
        if let Some(selected) = update.selected {
            self.selected = capped(selected, String::len);
        }
        if let Some(on_stage) = update.on_stage {
            self.on_stage = capped(on_stage, String::len);
        }
        if let Some(height) = update.default_max_height {
            self.default_max_height = height;
        }
        if let Some(max_heights) = update.max_heights {
            self.max_heights = capped(max_heights, |(id, _)| id.len());
        }
        if let Some(bps) = update.assumed_bandwidth_bps {
            self.assumed_bandwidth_bps = (bps > 0).then_some(bps);
        }
    }

    /// The tallest video the receiver wants of the source `source_name` of `endpoint_id`: an
    /// entry for the source name, else one for the endpoint id, else the default.
    pub fn max_height_for(&self, endpoint_id: &str, source_name: &str) -> u32 {
        let mut by_endpoint = None;
        for (id, height) in &self.max_heights {
            if id == source_name {
                return *height;
            }
            if by_endpoint.is_none() && id == endpoint_id {
                by_endpoint = Some(*height);
            }
        }
        by_endpoint.unwrap_or(self.default_max_height)
    }

    /// How the receiver ranks the source `source_name` of `endpoint_id` (either may be what
    /// the client listed).
    pub fn priority(&self, endpoint_id: &str, source_name: &str) -> Priority {
        let listed = |ids: &[String]| ids.iter().any(|id| id == endpoint_id || id == source_name);
        if listed(&self.on_stage) {
            Priority::OnStage
        } else if listed(&self.selected) {
            Priority::Selected
        } else {
            Priority::Other
        }
    }
}

/// The first [`MAX_IDS`] items whose id is at most [`MAX_ID_BYTES`] long.
fn capped<T>(items: Vec<T>, id_len: impl Fn(&T) -> usize) -> Vec<T> {
    items
        .into_iter()
        .filter(|item| id_len(item) <= MAX_ID_BYTES)
        .take(MAX_IDS)
        .collect()
}

/// What a sender says one of its video sources carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VideoType {
    Camera,
    /// Screen sharing, at a low or a high frame rate.
    Desktop,
    /// The source sends no video.
    None,
}

impl VideoType {
    /// Parses the names lib-jitsi-meet and older Jitsi clients send, ignoring case: `camera`,
    /// `desktop`, `desktop_high_fps` or `desktophigh` (both [`VideoType::Desktop`]), `none`.
    pub fn from_name(name: &str) -> Option<VideoType> {
        const NAMES: [(&str, VideoType); 5] = [
            ("camera", VideoType::Camera),
            ("desktop", VideoType::Desktop),
            ("desktop_high_fps", VideoType::Desktop),
            ("desktophigh", VideoType::Desktop),
            ("none", VideoType::None),
        ];
        NAMES
            .iter()
            .find(|(known, _)| known.eq_ignore_ascii_case(name))
            .map(|(_, video_type)| *video_type)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(ids: &[&str]) -> Vec<String> {
        ids.iter().map(|id| id.to_string()).collect()
    }

    #[test]
    fn before_any_message_a_receiver_gets_every_video_at_thumbnail_height() {
        let constraints = ReceiverConstraints::default();
        assert!(!constraints.received);
        assert_eq!(constraints.last_n, None);
        assert_eq!(constraints.max_height_for("A", "A-v0"), INITIAL_MAX_HEIGHT);
        assert_eq!(constraints.priority("A", "A-v0"), Priority::Other);
        assert_eq!(constraints.assumed_bandwidth_bps, None);
    }

    #[test]
    fn apply_replaces_what_the_update_carries_and_leaves_the_rest() {
        let mut constraints = ReceiverConstraints::default();
        constraints.apply(ConstraintsUpdate {
            last_n: Some(3),
            selected: Some(ids(&["B"])),
            on_stage: Some(ids(&["A"])),
            default_max_height: Some(360),
            max_heights: Some(vec![("A".into(), 720)]),
            assumed_bandwidth_bps: Some(1_000_000),
        });
        let before = constraints.clone();
        assert!(before.received);

        constraints.apply(ConstraintsUpdate::default());
        assert_eq!(constraints, before, "an empty update changes nothing");

        constraints.apply(ConstraintsUpdate {
            last_n: Some(5),
            ..Default::default()
        });
        assert_eq!(constraints.last_n, Some(5));
        assert_eq!(constraints.on_stage, ids(&["A"]));
        assert_eq!(constraints.selected, ids(&["B"]));
        assert_eq!(constraints.default_max_height, 360);
        assert_eq!(constraints.max_heights, vec![("A".to_string(), 720)]);
        assert_eq!(constraints.assumed_bandwidth_bps, Some(1_000_000));

        constraints.apply(ConstraintsUpdate {
            on_stage: Some(Vec::new()),
            max_heights: Some(Vec::new()),
            ..Default::default()
        });
        assert!(constraints.on_stage.is_empty());
        assert!(constraints.max_heights.is_empty());
        assert_eq!(constraints.selected, ids(&["B"]), "still selected");
        assert_eq!(constraints.last_n, Some(5));
    }

    #[test]
    fn any_negative_last_n_is_unlimited_and_zero_bandwidth_stops_assuming() {
        let mut constraints = ReceiverConstraints::default();
        for (last_n, expected) in [(0, Some(0)), (-1, None), (7, Some(7)), (i32::MIN, None)] {
            constraints.apply(ConstraintsUpdate {
                last_n: Some(last_n),
                ..Default::default()
            });
            assert_eq!(constraints.last_n, expected, "lastN {last_n}");
        }
        constraints.apply(ConstraintsUpdate {
            assumed_bandwidth_bps: Some(500_000),
            ..Default::default()
        });
        assert_eq!(constraints.assumed_bandwidth_bps, Some(500_000));
        constraints.apply(ConstraintsUpdate {
            assumed_bandwidth_bps: Some(0),
            ..Default::default()
        });
        assert_eq!(constraints.assumed_bandwidth_bps, None);
    }

    #[test]
    fn a_source_name_entry_wins_over_an_endpoint_entry_which_wins_over_the_default() {
        let mut constraints = ReceiverConstraints::default();
        constraints.apply(ConstraintsUpdate {
            default_max_height: Some(180),
            max_heights: Some(vec![
                ("A".into(), 360),
                ("A-v1".into(), 1080),
                ("B-v0".into(), 720),
            ]),
            ..Default::default()
        });
        assert_eq!(constraints.max_height_for("A", "A-v0"), 360, "by endpoint");
        assert_eq!(constraints.max_height_for("A", "A-v1"), 1080, "by source");
        assert_eq!(constraints.max_height_for("B", "B-v0"), 720, "by source");
        assert_eq!(constraints.max_height_for("B", "B-v1"), 180, "default");
        assert_eq!(constraints.max_height_for("C", "C-v0"), 180, "default");
    }

    #[test]
    fn on_stage_comes_before_selected_by_endpoint_id_or_source_name() {
        let mut constraints = ReceiverConstraints::default();
        constraints.apply(ConstraintsUpdate {
            on_stage: Some(ids(&["A", "D-v1"])),
            selected: Some(ids(&["A", "B-v0", "C"])),
            ..Default::default()
        });
        assert_eq!(constraints.priority("A", "A-v0"), Priority::OnStage);
        assert_eq!(constraints.priority("D", "D-v1"), Priority::OnStage);
        assert_eq!(constraints.priority("D", "D-v0"), Priority::Other);
        assert_eq!(constraints.priority("B", "B-v0"), Priority::Selected);
        assert_eq!(constraints.priority("B", "B-v1"), Priority::Other);
        assert_eq!(constraints.priority("C", "C-v0"), Priority::Selected);
        assert_eq!(constraints.priority("E", "E-v0"), Priority::Other);
    }

    #[test]
    fn lists_are_capped_in_length_and_over_long_ids_dropped() {
        let long = "x".repeat(MAX_ID_BYTES + 1);
        let many: Vec<String> = (0..MAX_IDS + 10).map(|i| format!("e{i}")).collect();
        let mut with_long = vec![long.clone()];
        with_long.extend(many.iter().cloned());
        let mut constraints = ReceiverConstraints::default();
        constraints.apply(ConstraintsUpdate {
            selected: Some(with_long.clone()),
            on_stage: Some(with_long.clone()),
            max_heights: Some(with_long.iter().map(|id| (id.clone(), 720)).collect()),
            ..Default::default()
        });
        assert_eq!(constraints.selected, many[..MAX_IDS]);
        assert_eq!(constraints.on_stage, many[..MAX_IDS]);
        assert_eq!(constraints.max_heights.len(), MAX_IDS);
        assert_eq!(constraints.max_heights[0].0, "e0");
        assert_eq!(constraints.max_height_for(&long, &long), INITIAL_MAX_HEIGHT);
        assert_eq!(constraints.priority(&long, &long), Priority::Other);
        let last_kept = format!("e{}", MAX_IDS - 1);
        let first_dropped = format!("e{MAX_IDS}");
        assert_eq!(constraints.priority(&last_kept, ""), Priority::OnStage);
        assert_eq!(constraints.priority(&first_dropped, ""), Priority::Other);
        let exactly_max = "y".repeat(MAX_ID_BYTES);
        constraints.apply(ConstraintsUpdate {
            selected: Some(vec![exactly_max.clone()]),
            ..Default::default()
        });
        assert_eq!(constraints.selected, vec![exactly_max]);
    }

    #[test]
    fn video_types_parse_from_every_name_clients_send_in_any_case() {
        for (name, expected) in [
            ("camera", Some(VideoType::Camera)),
            ("CAMERA", Some(VideoType::Camera)),
            ("desktop", Some(VideoType::Desktop)),
            ("Desktop", Some(VideoType::Desktop)),
            ("desktop_high_fps", Some(VideoType::Desktop)),
            ("desktophigh", Some(VideoType::Desktop)),
            ("DesktopHigh", Some(VideoType::Desktop)),
            ("none", Some(VideoType::None)),
            ("NONE", Some(VideoType::None)),
            ("", None),
            ("screen", None),
            ("camera ", None),
        ] {
            assert_eq!(VideoType::from_name(name), expected, "{name:?}");
        }
    }
}
