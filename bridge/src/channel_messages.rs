//! The colibri JSON messages of the bridge channel (`{"colibriClass": ...}`) that the bridge
//! reads or writes itself, in the shapes lib-jitsi-meet sends and expects (its
//! `modules/RTC/BridgeChannel.js` and `modules/qualitycontrol/ReceiveVideoController.js`).
//! [`parse_client_message`] turns what a client sends into what the bridge acts on: receiver
//! constraints for the allocator, video types, or a message to relay; the other functions
//! write the bridge's own messages to clients.

use serde_json::{json, Map, Value};

use crate::media::constraints::{ConstraintsUpdate, VideoType, MAX_ID_BYTES};

/// What a client's message asks of the bridge.
#[derive(Clone, Debug, PartialEq)]
pub enum ClientMessage {
    /// Receiver constraints (`ReceiverVideoConstraints`, or the legacy
    /// `ReceiverVideoConstraint`, `LastNChangedEvent` and `SelectedEndpointsChangedEvent`), to
    /// apply to the sender's [`crate::media::constraints::ReceiverConstraints`].
    Constraints(ConstraintsUpdate),
    /// What the sender's video carries: of one source (`SourceVideoTypeMessage`) or, from
    /// older clients, of its only video source (`VideoTypeMessage`, `source_name` `None`).
    VideoType {
        source_name: Option<String>,
        video_type: VideoType,
    },
    /// `EndpointMessage` or `EndpointStats`: for the hub to pass to other endpoints.
    Relay,
    /// A well-formed message of a class the bridge does not act on.
    Unknown,
}

/// Why a client's message was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    /// Not JSON, not an object, or without a string `colibriClass`.
    #[error("not a JSON object with a string colibriClass")]
    NotColibri,
    /// A field the class requires is missing, or a field has the wrong type.
    #[error("field {0} is missing or of the wrong type")]
    Field(&'static str),
}

/// Reads one text frame from a client. Absent and null fields are the same: `None` in the
/// update (nothing changes), except those a legacy class exists to carry, which are required.
///
/// Numbers may be integers or floats (rounded down) and are clamped to their field's range:
/// a negative height or bandwidth is 0, any negative lastN means unlimited. Both
/// `onStageEndpoints` and `onStageSources` (newer clients name sources) feed `on_stage`, and
/// likewise for `selected`; per-id constraints without a `maxHeight` are left out. Lists are
/// kept whole here and capped by `ReceiverConstraints::apply`.
pub fn parse_client_message(text: &str) -> Result<ClientMessage, Malformed> {
    let Ok(Value::Object(message)) = serde_json::from_str::<Value>(text) else {
        return Err(Malformed::NotColibri);
    };
    let Some(Value::String(class)) = message.get("colibriClass") else {
        return Err(Malformed::NotColibri);
    };
    let update = match class.as_str() {
        "ReceiverVideoConstraints" => receiver_video_constraints(&message)?,
        "ReceiverVideoConstraint" => ConstraintsUpdate {
            default_max_height: Some(required(&message, "maxFrameHeight", height)?),
            ..Default::default()
        },
        "LastNChangedEvent" => ConstraintsUpdate {
            last_n: Some(required(&message, "lastN", last_n)?),
            ..Default::default()
        },
        "SelectedEndpointsChangedEvent" => ConstraintsUpdate {
            selected: Some(required(&message, "selectedEndpoints", ids)?),
            ..Default::default()
        },
        "VideoTypeMessage" => {
            return Ok(ClientMessage::VideoType {
                source_name: None,
                video_type: required(&message, "videoType", video_type)?,
            })
        }
        "SourceVideoTypeMessage" => {
            return Ok(ClientMessage::VideoType {
                source_name: Some(required(&message, "sourceName", source_name)?),
                video_type: required(&message, "videoType", video_type)?,
            })
        }
        "EndpointMessage" => {
            optional(&message, "to", Value::as_str)?;
            return Ok(ClientMessage::Relay);
        }
        "EndpointStats" => return Ok(ClientMessage::Relay),
        _ => return Ok(ClientMessage::Unknown),
    };
    Ok(ClientMessage::Constraints(update))
}

fn receiver_video_constraints(
    message: &Map<String, Value>,
) -> Result<ConstraintsUpdate, Malformed> {
    let default_max_height = match optional(message, "defaultConstraints", Value::as_object)? {
        Some(defaults) => optional(defaults, "maxHeight", height)?,
        None => None,
    };
    let max_heights = match optional(message, "constraints", Value::as_object)? {
        Some(per_id) => Some(max_heights(per_id)?),
        None => None,
    };
    Ok(ConstraintsUpdate {
        last_n: optional(message, "lastN", last_n)?,
        selected: id_lists(message, "selectedEndpoints", "selectedSources")?,
        on_stage: id_lists(message, "onStageEndpoints", "onStageSources")?,
        default_max_height,
        max_heights,
        assumed_bandwidth_bps: optional(message, "assumedBandwidthBps", bandwidth)?,
    })
}

/// `{id: {maxHeight}}` → (id, height) pairs; entries without a height are left out.
fn max_heights(per_id: &Map<String, Value>) -> Result<Vec<(String, u32)>, Malformed> {
    let mut pairs = Vec::new();
    for (id, constraints) in per_id {
        let constraints = match constraints {
            Value::Null => continue,
            Value::Object(constraints) => constraints,
            _ => return Err(Malformed::Field("constraints")),
        };
        if let Some(height) = optional(constraints, "maxHeight", height)? {
            pairs.push((id.clone(), height));
        }
    }
    Ok(pairs)
}

/// The ids of the endpoint-id list and the source-name list together; `None` if both are
/// absent.
fn id_lists(
    message: &Map<String, Value>,
    endpoints: &'static str,
    sources: &'static str,
) -> Result<Option<Vec<String>>, Malformed> {
    let endpoints = optional(message, endpoints, ids)?;
    let sources = optional(message, sources, ids)?;
    if endpoints.is_none() && sources.is_none() {
        return Ok(None);
    }
    Ok(Some(
        endpoints.into_iter().chain(sources).flatten().collect(),
    ))
}

/// The value of `key` read by `read`; `None` if absent or null, an error if `read` refuses it.
fn optional<'a, T>(
    map: &'a Map<String, Value>,
    key: &'static str,
    read: impl Fn(&'a Value) -> Option<T>,
) -> Result<Option<T>, Malformed> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => read(value).map(Some).ok_or(Malformed::Field(key)),
    }
}

fn required<'a, T>(
    map: &'a Map<String, Value>,
    key: &'static str,
    read: impl Fn(&'a Value) -> Option<T>,
) -> Result<T, Malformed> {
    optional(map, key, read)?.ok_or(Malformed::Field(key))
}

// Float-to-integer `as` casts round toward zero and saturate at the type's bounds.

fn height(value: &Value) -> Option<u32> {
    value.as_f64().map(|height| height as u32)
}

fn last_n(value: &Value) -> Option<i32> {
    value.as_f64().map(|last_n| last_n.floor() as i32)
}

fn bandwidth(value: &Value) -> Option<u64> {
    value
        .as_u64()
        .or_else(|| value.as_f64().map(|bps| bps as u64))
}

fn ids(value: &Value) -> Option<Vec<String>> {
    value
        .as_array()?
        .iter()
        .map(|id| id.as_str().map(str::to_owned))
        .collect()
}

fn source_name(value: &Value) -> Option<String> {
    value
        .as_str()
        .filter(|name| name.len() <= MAX_ID_BYTES)
        .map(str::to_owned)
}

fn video_type(value: &Value) -> Option<VideoType> {
    value.as_str().and_then(VideoType::from_name)
}

/// Tells a receiver whose video it now forwards (lib-jitsi-meet's LASTN_ENDPOINT_CHANGED).
pub fn last_n_endpoints_changed(endpoints: &[&str]) -> String {
    json!({
        "colibriClass": "LastNEndpointsChangeEvent",
        "lastNEndpoints": endpoints,
    })
    .to_string()
}

/// Tells everyone in a conference who speaks now, and who spoke before, most recent first
/// (lib-jitsi-meet's DOMINANT_SPEAKER_CHANGED: `dominantSpeakerEndpoint`, `previousSpeakers`).
pub fn dominant_speaker_changed(dominant: &str, previous: &[String]) -> String {
    json!({
        "colibriClass": "DominantSpeakerEndpointChangeEvent",
        "dominantSpeakerEndpoint": dominant,
        "previousSpeakers": previous,
    })
    .to_string()
}

/// Tells a sender the tallest video any receiver wants of it (lib-jitsi-meet 2.6726's
/// SendVideoController reads `videoConstraints.idealHeight` and deactivates the simulcast
/// encodings above it).
pub fn sender_video_constraints(ideal_height: u32) -> String {
    json!({
        "colibriClass": "SenderVideoConstraints",
        "videoConstraints": {"idealHeight": ideal_height},
    })
    .to_string()
}

/// Tells a receiver the bridge's bandwidth estimate towards it, bit/s (as Jitsi Videobridge's
/// ConnectionStats; lib-jitsi-meet passes unknown classes to the application).
pub fn connection_stats(estimated_downlink_bps: u64) -> String {
    json!({
        "colibriClass": "ConnectionStats",
        "estimatedDownlinkBandwidth": estimated_downlink_bps,
    })
    .to_string()
}

/// Tells a receiver whether `endpoint`'s media is reaching the bridge. `active` goes out as
/// the string "true" or "false": lib-jitsi-meet compares it with `'true'`.
pub fn endpoint_connectivity_status(endpoint: &str, active: bool) -> String {
    json!({
        "colibriClass": "EndpointConnectivityStatusChangeEvent",
        "endpoint": endpoint,
        "active": if active { "true" } else { "false" },
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::constraints::{Priority, ReceiverConstraints, INITIAL_MAX_HEIGHT, MAX_IDS};

    fn update(text: &str) -> ConstraintsUpdate {
        match parse_client_message(text) {
            Ok(ClientMessage::Constraints(update)) => update,
            other => panic!("{text}: {other:?}"),
        }
    }

    fn applied(texts: &[&str]) -> ReceiverConstraints {
        let mut constraints = ReceiverConstraints::default();
        for text in texts {
            constraints.apply(update(text));
        }
        constraints
    }

    fn ids(ids: &[&str]) -> Vec<String> {
        ids.iter().map(|id| id.to_string()).collect()
    }

    // What lib-jitsi-meet 2.6726's ReceiverVideoConstraints.constraints serializes to.
    const TILE_VIEW: &str = r#"{"colibriClass":"ReceiverVideoConstraints","constraints":{},
        "defaultConstraints":{"maxHeight":360},"lastN":-1,"onStageEndpoints":[],
        "selectedEndpoints":[]}"#;
    const STAGE_VIEW: &str = r#"{"colibriClass":"ReceiverVideoConstraints",
        "constraints":{"A":{"maxHeight":720}},"defaultConstraints":{"maxHeight":180},
        "lastN":-1,"onStageEndpoints":["A"],"selectedEndpoints":[]}"#;

    #[test]
    fn tile_view_caps_everyone_at_the_default_height() {
        let constraints = applied(&[STAGE_VIEW, TILE_VIEW]);
        assert!(constraints.received);
        assert_eq!(constraints.last_n, None);
        assert_eq!(constraints.default_max_height, 360);
        assert!(constraints.on_stage.is_empty() && constraints.selected.is_empty());
        assert!(
            constraints.max_heights.is_empty(),
            "the stage entry is gone"
        );
        assert_eq!(constraints.max_height_for("A", "A-v0"), 360);
        assert_eq!(constraints.priority("A", "A-v0"), Priority::Other);

        // The shape of the class's own comment: defaults and lastN only.
        let minimal = r#"{"colibriClass":"ReceiverVideoConstraints","lastN":20,
            "defaultConstraints":{"maxHeight":360}}"#;
        assert_eq!(
            update(minimal),
            ConstraintsUpdate {
                last_n: Some(20),
                default_max_height: Some(360),
                ..Default::default()
            }
        );
    }

    #[test]
    fn stage_view_puts_one_endpoint_on_stage_taller_than_the_thumbnails() {
        assert_eq!(
            update(STAGE_VIEW),
            ConstraintsUpdate {
                last_n: Some(-1),
                selected: Some(Vec::new()),
                on_stage: Some(ids(&["A"])),
                default_max_height: Some(180),
                max_heights: Some(vec![("A".into(), 720)]),
                assumed_bandwidth_bps: None,
            }
        );
        let constraints = applied(&[STAGE_VIEW]);
        assert_eq!(constraints.priority("A", "A-v0"), Priority::OnStage);
        assert_eq!(constraints.max_height_for("A", "A-v0"), 720);
        assert_eq!(constraints.priority("B", "B-v0"), Priority::Other);
        assert_eq!(constraints.max_height_for("B", "B-v0"), 180);
    }

    #[test]
    fn newer_clients_name_sources_and_both_kinds_of_list_count() {
        let text = r#"{"colibriClass":"ReceiverVideoConstraints","lastN":2,
            "onStageSources":["A-v0"],"selectedSources":["B-v0"],"selectedEndpoints":["C"],
            "defaultConstraints":{"maxHeight":180},
            "constraints":{"A-v0":{"maxHeight":1080},"C":{"maxHeight":360},"D-v0":{},"E":null},
            "assumedBandwidthBps":2500000}"#;
        let parsed = update(text);
        assert_eq!(parsed.on_stage, Some(ids(&["A-v0"])));
        assert_eq!(parsed.selected, Some(ids(&["C", "B-v0"])));
        assert_eq!(
            parsed.max_heights,
            Some(vec![("A-v0".into(), 1080), ("C".into(), 360)])
        );
        let constraints = applied(&[text]);
        assert_eq!(constraints.last_n, Some(2));
        assert_eq!(constraints.assumed_bandwidth_bps, Some(2_500_000));
        assert_eq!(constraints.priority("A", "A-v0"), Priority::OnStage);
        assert_eq!(constraints.priority("A", "A-v1"), Priority::Other);
        assert_eq!(constraints.priority("B", "B-v0"), Priority::Selected);
        assert_eq!(constraints.priority("C", "C-v0"), Priority::Selected);
        assert_eq!(constraints.max_height_for("A", "A-v0"), 1080);
        assert_eq!(constraints.max_height_for("C", "C-v0"), 360);
        assert_eq!(constraints.max_height_for("D", "D-v0"), 180);
    }

    #[test]
    fn absent_and_null_fields_leave_the_constraints_unchanged() {
        let nulls = r#"{"colibriClass":"ReceiverVideoConstraints","lastN":null,
            "selectedEndpoints":null,"onStageEndpoints":null,"onStageSources":null,
            "defaultConstraints":null,"constraints":null,"assumedBandwidthBps":null}"#;
        let empty_defaults = r#"{"colibriClass":"ReceiverVideoConstraints",
            "defaultConstraints":{}}"#;
        for text in [
            r#"{"colibriClass":"ReceiverVideoConstraints"}"#,
            nulls,
            empty_defaults,
        ] {
            assert_eq!(update(text), ConstraintsUpdate::default(), "{text}");
        }
        let constraints = applied(&[STAGE_VIEW, nulls]);
        assert_eq!(constraints, applied(&[STAGE_VIEW]));
    }

    #[test]
    fn legacy_messages_update_one_field_each() {
        let constraints = applied(&[
            STAGE_VIEW,
            r#"{"colibriClass":"ReceiverVideoConstraint","maxFrameHeight":360}"#,
            r#"{"colibriClass":"LastNChangedEvent","lastN":5}"#,
            r#"{"colibriClass":"SelectedEndpointsChangedEvent","selectedEndpoints":["B","C"]}"#,
        ]);
        assert_eq!(constraints.default_max_height, 360);
        assert_eq!(constraints.last_n, Some(5));
        assert_eq!(constraints.selected, ids(&["B", "C"]));
        assert_eq!(constraints.on_stage, ids(&["A"]), "unchanged");
        assert_eq!(constraints.max_height_for("A", "A-v0"), 720, "unchanged");
        assert_eq!(constraints.priority("C", "C-v0"), Priority::Selected);

        let first_legacy = applied(&[r#"{"colibriClass":"LastNChangedEvent","lastN":-1}"#]);
        assert!(first_legacy.received);
        assert_eq!(first_legacy.default_max_height, INITIAL_MAX_HEIGHT);
    }

    #[test]
    fn numbers_are_rounded_down_and_clamped() {
        let heights = [
            ("720", 720),
            ("720.0", 720),
            ("720.9", 720),
            ("-5", 0),
            ("-0.5", 0),
            ("1e12", u32::MAX),
            ("99999999999999999999", u32::MAX),
        ];
        for (number, expected) in heights {
            let text = format!(
                r#"{{"colibriClass":"ReceiverVideoConstraints",
                "defaultConstraints":{{"maxHeight":{number}}},"constraints":{{"A":{{"maxHeight":{number}}}}}}}"#
            );
            let parsed = update(&text);
            assert_eq!(parsed.default_max_height, Some(expected), "{number}");
            assert_eq!(parsed.max_heights, Some(vec![("A".into(), expected)]));
            let legacy = format!(
                r#"{{"colibriClass":"ReceiverVideoConstraint","maxFrameHeight":{number}}}"#
            );
            assert_eq!(update(&legacy).default_max_height, Some(expected));
        }
        for (number, expected) in [("3", 3), ("3.7", 3), ("-1", -1), ("1e12", i32::MAX)] {
            let text = format!(r#"{{"colibriClass":"LastNChangedEvent","lastN":{number}}}"#);
            assert_eq!(update(&text).last_n, Some(expected), "{number}");
        }
        for (number, expected) in [
            ("-1", 0),
            ("1.5e6", 1_500_000),
            ("18446744073709551615", u64::MAX),
        ] {
            let text = format!(
                r#"{{"colibriClass":"ReceiverVideoConstraints","assumedBandwidthBps":{number}}}"#
            );
            assert_eq!(
                update(&text).assumed_bandwidth_bps,
                Some(expected),
                "{number}"
            );
        }
        let stop_assuming = applied(&[
            r#"{"colibriClass":"ReceiverVideoConstraints","assumedBandwidthBps":1000000}"#,
            r#"{"colibriClass":"ReceiverVideoConstraints","assumedBandwidthBps":-1}"#,
        ]);
        assert_eq!(stop_assuming.assumed_bandwidth_bps, None);
    }

    #[test]
    fn video_types_with_and_without_a_source_name() {
        assert_eq!(
            parse_client_message(r#"{"colibriClass":"VideoTypeMessage","videoType":"desktop"}"#),
            Ok(ClientMessage::VideoType {
                source_name: None,
                video_type: VideoType::Desktop
            })
        );
        assert_eq!(
            parse_client_message(
                r#"{"colibriClass":"SourceVideoTypeMessage","sourceName":"A-v0","videoType":"camera"}"#
            ),
            Ok(ClientMessage::VideoType {
                source_name: Some("A-v0".into()),
                video_type: VideoType::Camera
            })
        );
        assert_eq!(
            parse_client_message(
                r#"{"colibriClass":"SourceVideoTypeMessage","sourceName":"A-v1","videoType":"desktop_high_fps"}"#
            ),
            Ok(ClientMessage::VideoType {
                source_name: Some("A-v1".into()),
                video_type: VideoType::Desktop
            })
        );
    }

    #[test]
    fn relayed_and_unknown_classes_are_told_apart() {
        for text in [
            r#"{"colibriClass":"EndpointMessage","to":"","msgPayload":{"x":1}}"#,
            r#"{"colibriClass":"EndpointMessage","to":null,"msgPayload":1}"#,
            r#"{"colibriClass":"EndpointMessage","msgPayload":1}"#,
            r#"{"colibriClass":"EndpointStats","bitrate":{"upload":1}}"#,
        ] {
            assert_eq!(
                parse_client_message(text),
                Ok(ClientMessage::Relay),
                "{text}"
            );
        }
        for text in [
            r#"{"colibriClass":"ServerHello"}"#,
            r#"{"colibriClass":"SomethingNew","lastN":"not checked"}"#,
            r#"{"colibriClass":""}"#,
        ] {
            assert_eq!(
                parse_client_message(text),
                Ok(ClientMessage::Unknown),
                "{text}"
            );
        }
    }

    #[test]
    fn malformed_messages_are_rejected_with_the_offending_field() {
        for text in [
            "",
            "not json",
            "[1,2]",
            r#""ReceiverVideoConstraints""#,
            r#"{"no":"class"}"#,
            r#"{"colibriClass":7}"#,
            r#"{"colibriClass":null}"#,
            r#"{"colibriClass":["LastNChangedEvent"]}"#,
            r#"{"colibriClass":"LastNChangedEvent","lastN":3"#,
        ] {
            assert_eq!(
                parse_client_message(text),
                Err(Malformed::NotColibri),
                "{text}"
            );
        }
        let constraints =
            |fields: &str| format!(r#"{{"colibriClass":"ReceiverVideoConstraints",{fields}}}"#);
        let cases = [
            (constraints(r#""lastN":"3""#), "lastN"),
            (constraints(r#""lastN":true"#), "lastN"),
            (
                constraints(r#""selectedEndpoints":"A""#),
                "selectedEndpoints",
            ),
            (
                constraints(r#""selectedEndpoints":["A",1]"#),
                "selectedEndpoints",
            ),
            (
                constraints(r#""selectedSources":[null]"#),
                "selectedSources",
            ),
            (
                constraints(r#""onStageEndpoints":{"A":1}"#),
                "onStageEndpoints",
            ),
            (
                constraints(r#""onStageSources":[["A-v0"]]"#),
                "onStageSources",
            ),
            (
                constraints(r#""defaultConstraints":180"#),
                "defaultConstraints",
            ),
            (
                constraints(r#""defaultConstraints":{"maxHeight":"720"}"#),
                "maxHeight",
            ),
            (constraints(r#""constraints":[]"#), "constraints"),
            (constraints(r#""constraints":{"A":720}"#), "constraints"),
            (
                constraints(r#""constraints":{"A":{"maxHeight":[720]}}"#),
                "maxHeight",
            ),
            (
                constraints(r#""assumedBandwidthBps":"fast""#),
                "assumedBandwidthBps",
            ),
            (
                r#"{"colibriClass":"ReceiverVideoConstraint"}"#.into(),
                "maxFrameHeight",
            ),
            (
                r#"{"colibriClass":"ReceiverVideoConstraint","maxFrameHeight":"hd"}"#.into(),
                "maxFrameHeight",
            ),
            (
                r#"{"colibriClass":"LastNChangedEvent","lastN":null}"#.into(),
                "lastN",
            ),
            (
                r#"{"colibriClass":"SelectedEndpointsChangedEvent"}"#.into(),
                "selectedEndpoints",
            ),
            (
                r#"{"colibriClass":"VideoTypeMessage","videoType":"screen"}"#.into(),
                "videoType",
            ),
            (
                r#"{"colibriClass":"VideoTypeMessage","videoType":1}"#.into(),
                "videoType",
            ),
            (
                r#"{"colibriClass":"SourceVideoTypeMessage","videoType":"camera"}"#.into(),
                "sourceName",
            ),
            (
                r#"{"colibriClass":"SourceVideoTypeMessage","sourceName":"A-v0"}"#.into(),
                "videoType",
            ),
            (
                format!(
                    r#"{{"colibriClass":"SourceVideoTypeMessage","sourceName":"{}","videoType":"camera"}}"#,
                    "x".repeat(MAX_ID_BYTES + 1)
                ),
                "sourceName",
            ),
            (r#"{"colibriClass":"EndpointMessage","to":5}"#.into(), "to"),
        ];
        for (text, field) in cases {
            assert_eq!(
                parse_client_message(&text),
                Err(Malformed::Field(field)),
                "{text}"
            );
        }
        assert_eq!(
            Malformed::Field("lastN").to_string(),
            "field lastN is missing or of the wrong type"
        );
    }

    #[test]
    fn huge_lists_parse_but_are_capped_when_applied() {
        let many: Vec<String> = (0..1000).map(|i| format!("e{i}")).collect();
        let per_id: Map<String, Value> = many
            .iter()
            .map(|id| (id.clone(), json!({ "maxHeight": 720 })))
            .collect();
        let text = json!({
            "colibriClass": "ReceiverVideoConstraints",
            "selectedEndpoints": many,
            "onStageSources": many,
            "constraints": per_id,
        })
        .to_string();
        let parsed = update(&text);
        assert_eq!(parsed.selected.as_ref().map(Vec::len), Some(1000));
        let constraints = applied(&[text.as_str()]);
        assert_eq!(constraints.selected.len(), MAX_IDS);
        assert_eq!(constraints.on_stage.len(), MAX_IDS);
        assert_eq!(constraints.max_heights.len(), MAX_IDS);
    }

    #[test]
    fn no_prefix_of_a_valid_message_and_no_deep_nesting_panics() {
        for text in [STAGE_VIEW, TILE_VIEW] {
            for end in (0..text.len()).filter(|end| text.is_char_boundary(*end)) {
                assert!(parse_client_message(&text[..end]).is_err());
            }
        }
        let deep = format!(
            r#"{{"colibriClass":"ReceiverVideoConstraints","constraints":{}{}}}"#,
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        assert_eq!(parse_client_message(&deep), Err(Malformed::NotColibri));
        let unicode =
            r#"{"colibriClass":"ReceiverVideoConstraints","onStageEndpoints":["é\u0000"]}"#;
        assert_eq!(update(unicode).on_stage, Some(ids(&["é\0"])));
    }

    #[test]
    fn outgoing_messages_have_jitsis_field_names_and_a_string_active() {
        let parsed: Value =
            serde_json::from_str(&last_n_endpoints_changed(&["A", "B\"q"])).unwrap();
        assert_eq!(
            parsed,
            json!({"colibriClass": "LastNEndpointsChangeEvent", "lastNEndpoints": ["A", "B\"q"]})
        );
        let parsed: Value = serde_json::from_str(&last_n_endpoints_changed(&[])).unwrap();
        assert_eq!(parsed["lastNEndpoints"], json!([]));
        let parsed: Value = serde_json::from_str(&connection_stats(1_234_567)).unwrap();
        assert_eq!(
            parsed,
            json!({"colibriClass": "ConnectionStats", "estimatedDownlinkBandwidth": 1_234_567})
        );

        let parsed: Value =
            serde_json::from_str(&dominant_speaker_changed("A", &["C".into(), "B".into()]))
                .unwrap();
        assert_eq!(
            parsed,
            json!({
                "colibriClass": "DominantSpeakerEndpointChangeEvent",
                "dominantSpeakerEndpoint": "A",
                "previousSpeakers": ["C", "B"],
            })
        );
        let parsed: Value = serde_json::from_str(&sender_video_constraints(180)).unwrap();
        assert_eq!(
            parsed,
            json!({"colibriClass": "SenderVideoConstraints", "videoConstraints": {"idealHeight": 180}})
        );

        for (active, expected) in [(true, "true"), (false, "false")] {
            let parsed: Value =
                serde_json::from_str(&endpoint_connectivity_status("A", active)).unwrap();
            assert_eq!(
                parsed,
                json!({
                    "colibriClass": "EndpointConnectivityStatusChangeEvent",
                    "endpoint": "A",
                    "active": expected,
                })
            );
        }
        assert_eq!(
            parse_client_message(&last_n_endpoints_changed(&["A"])),
            Ok(ClientMessage::Unknown),
            "the bridge's own classes are not requests"
        );
    }
}
