//! What a consumer admits, packet by packet: VP8 packets built as senders write them.

use tutti_participant::media::{
    build_rtp, vp8_frame_header_sized, vp8_temporal_descriptor, RtpFields,
};
use tutti_rtp::codec::{frame_info, Codec};

use super::*;

/// One VP8 packet of encoding `encoding`: `seq`, picture `pid`, temporal layer `tid`, the first
/// of its frame or not, a key frame or not.
struct Packet {
    bytes: Vec<u8>,
    header: rtp::Header,
    encoding: u8,
}

fn vp8(encoding: u8, seq: u16, pid: u16, tid: u8, starts: bool, key: bool) -> Packet {
    let mut payload = vp8_temporal_descriptor(starts, pid, 0, tid, tid > 0).to_vec();
    payload.extend(vp8_frame_header_sized(key, 100, 320, 180));
    payload.extend([0u8; 20]);
    let bytes = build_rtp(
        &RtpFields {
            payload_type: 100,
            marker: false,
            seq,
            timestamp: u32::from(pid) * 3000,
            ssrc: 1000 + u32::from(encoding),
            twcc_ext_id: 5,
            twcc_seq: seq,
            audio_level: None,
        },
        &payload,
    );
    let header = rtp::parse(&bytes).unwrap();
    Packet {
        bytes,
        header,
        encoding,
    }
}

/// What `consumer` does with `p`, read as VP8.
fn admit(consumer: &mut Consumer, p: &Packet) -> Admission {
    admit_as(
        consumer,
        p,
        frame_info(Codec::Vp8, p.header.payload(&p.bytes)),
    )
}

/// What `consumer` does with `p`, given what its payload says (`None`: unread).
fn admit_as(consumer: &mut Consumer, p: &Packet, frame: Option<FrameInfo>) -> Admission {
    consumer.admit(&Outgoing {
        packet: &p.bytes,
        header: &p.header,
        kind: MediaKind::Video,
        encoding: p.encoding,
        frame,
        ssrc: 77,
        rtx_ssrc: None,
        sender_twcc: None,
        now_us: 0,
    })
}

fn target(spatial: u8, temporal: u8) -> Option<Layer> {
    Some(Layer { spatial, temporal })
}

#[test]
fn nothing_until_a_target_and_a_key_frame_of_it() {
    let mut c = Consumer::new(0, false, MediaKind::Video, None, 0);
    assert_eq!(admit(&mut c, &vp8(0, 1, 1, 0, true, true)), Admission::Skip);
    c.target = target(1, 2);
    assert_eq!(
        admit(&mut c, &vp8(0, 2, 2, 0, true, true)),
        Admission::Skip,
        "not the target"
    );
    assert_eq!(
        admit(&mut c, &vp8(1, 50, 9, 0, true, false)),
        Admission::Skip
    );
    assert!(c.waiting_for_keyframe, "a delta frame of the target: waits");
    assert_eq!(
        admit(&mut c, &vp8(1, 51, 10, 0, true, true)),
        Admission::Switch { from: None }
    );
    assert!(!c.waiting_for_keyframe);
    assert_eq!(
        admit(&mut c, &vp8(1, 52, 10, 0, false, false)),
        Admission::Forward
    );
}

#[test]
fn the_old_layer_flows_until_the_new_one_has_a_key_frame() {
    let mut c = Consumer::new(0, false, MediaKind::Video, None, 0);
    c.target = target(0, 2);
    assert_eq!(
        admit(&mut c, &vp8(0, 1, 1, 0, true, true)),
        Admission::Switch { from: None }
    );
    c.target = target(2, 2);
    assert_eq!(
        admit(&mut c, &vp8(2, 900, 40, 1, true, false)),
        Admission::Skip
    );
    assert_eq!(
        admit(&mut c, &vp8(0, 2, 2, 1, true, false)),
        Admission::Forward
    );
    assert_eq!(
        admit(&mut c, &vp8(2, 901, 41, 0, true, true)),
        Admission::Switch { from: Some(0) }
    );
    assert_eq!(
        admit(&mut c, &vp8(0, 3, 3, 0, true, false)),
        Admission::Skip
    );
    // And down again: layer 2 keeps flowing until layer 0's key frame.
    c.target = target(0, 2);
    assert_eq!(
        admit(&mut c, &vp8(2, 902, 42, 0, true, false)),
        Admission::Forward
    );
    assert_eq!(
        admit(&mut c, &vp8(0, 4, 4, 0, true, true)),
        Admission::Switch { from: Some(2) }
    );
    // Nothing at all: stops at once.
    c.target = None;
    assert_eq!(
        admit(&mut c, &vp8(0, 5, 5, 0, true, false)),
        Admission::Skip
    );
}

#[test]
fn moving_down_the_old_layer_stops_at_its_next_key_frame() {
    let mut c = Consumer::new(0, false, MediaKind::Video, None, 0);
    c.target = target(2, 2);
    assert!(matches!(
        admit(&mut c, &vp8(2, 100, 10, 0, true, true)),
        Admission::Switch { .. }
    ));
    c.target = target(1, 2);
    // Its delta frames flow until the target's key frame...
    assert_eq!(
        admit(&mut c, &vp8(2, 101, 11, 0, true, false)),
        Admission::Forward
    );
    // ...but its key frame (asked for with the target's), and what follows it, do not.
    assert_eq!(
        admit(&mut c, &vp8(2, 102, 12, 0, true, true)),
        Admission::Skip
    );
    assert_eq!(
        admit(&mut c, &vp8(2, 103, 12, 0, false, false)),
        Admission::Skip
    );
    assert_eq!(
        admit(&mut c, &vp8(2, 104, 13, 0, true, false)),
        Admission::Skip
    );
    assert_eq!(
        admit(&mut c, &vp8(1, 500, 70, 0, true, true)),
        Admission::Switch { from: Some(2) }
    );
    assert_eq!(
        admit(&mut c, &vp8(1, 501, 71, 0, true, false)),
        Admission::Forward
    );

    // The target back up before the lower key frame came: the encoding flows again from its
    // next key frame (its frames in between refer to the one skipped).
    c.target = target(0, 2);
    assert_eq!(
        admit(&mut c, &vp8(1, 502, 72, 0, true, true)),
        Admission::Skip
    );
    c.target = target(1, 2);
    assert_eq!(
        admit(&mut c, &vp8(1, 503, 73, 0, true, false)),
        Admission::Skip
    );
    assert_eq!(
        admit(&mut c, &vp8(1, 504, 74, 0, true, true)),
        Admission::Forward
    );
    // Moving up, the old layer's key frames flow until the switch.
    c.target = target(2, 2);
    assert_eq!(
        admit(&mut c, &vp8(1, 505, 75, 0, true, true)),
        Admission::Forward
    );
}

#[test]
fn temporal_layers_go_down_at_once_and_up_at_a_sync_frame() {
    let mut c = Consumer::new(0, false, MediaKind::Video, None, 0);
    c.target = target(0, 2);
    assert_eq!(
        admit(&mut c, &vp8(0, 1, 1, 0, true, true)),
        Admission::Switch { from: None }
    );
    assert_eq!(
        admit(&mut c, &vp8(0, 2, 2, 2, true, false)),
        Admission::Forward
    );
    c.target = target(0, 0);
    assert_eq!(
        admit(&mut c, &vp8(0, 3, 3, 1, true, false)),
        Admission::DropTemporal
    );
    assert_eq!(
        admit(&mut c, &vp8(0, 4, 3, 1, false, false)),
        Admission::DropTemporal
    );
    assert_eq!(
        admit(&mut c, &vp8(0, 5, 4, 0, true, false)),
        Admission::Forward
    );
    c.target = target(0, 1);
    // The test descriptor sets Y on every frame above TL0: the next TL1 frame goes up.
    assert_eq!(
        admit(&mut c, &vp8(0, 6, 5, 2, true, false)),
        Admission::DropTemporal
    );
    assert_eq!(
        admit(&mut c, &vp8(0, 7, 6, 1, true, false)),
        Admission::Forward
    );
}

#[test]
fn payloads_the_bridge_cannot_read_stay_on_the_lowest_encoding() {
    let mut c = Consumer::new(0, false, MediaKind::Video, None, 0);
    c.target = target(2, 0);
    let unread = |c: &mut Consumer, p: &Packet| admit_as(c, p, None);
    assert_eq!(
        unread(&mut c, &vp8(2, 1, 1, 0, true, true)),
        Admission::Skip
    );
    assert_eq!(
        unread(&mut c, &vp8(0, 1, 1, 0, true, true)),
        Admission::Switch { from: None }
    );
    assert_eq!(
        unread(&mut c, &vp8(0, 2, 1, 0, false, false)),
        Admission::Forward
    );
    assert_eq!(
        unread(&mut c, &vp8(2, 2, 1, 0, true, true)),
        Admission::Skip
    );
    // Audio forwards its one encoding from the start.
    let audio = Consumer::new(0, false, MediaKind::Audio, None, 0);
    assert_eq!(audio.target, Some(Layer::BASE_ALL));
}

#[test]
fn moving_up_soon_after_moving_down_waits_until_the_layer_fitted_two_seconds() {
    let mut c = Consumer::new(0, false, MediaKind::Video, None, 0);
    // Up at once while it never moved down.
    assert_eq!(c.settle(target(0, 2), 0), target(0, 2));
    assert_eq!(c.settle(target(2, 2), 500_000), target(2, 2));
    // Down at once.
    assert_eq!(c.settle(target(1, 2), 1_000_000), target(1, 2));
    // Temporal layers of the same encoding move freely.
    assert_eq!(c.settle(target(1, 0), 1_500_000), target(1, 0));
    assert_eq!(c.settle(target(1, 2), 2_000_000), target(1, 2));
    // 720 fits for a moment: held at 360; once it fitted 2 s in a row, up.
    assert_eq!(c.settle(target(2, 2), 2_500_000), target(1, 2));
    assert_eq!(c.settle(target(1, 2), 3_000_000), target(1, 2));
    assert_eq!(c.settle(target(2, 2), 3_500_000), target(1, 2));
    assert_eq!(c.settle(target(2, 2), 4_500_000), target(1, 2));
    assert_eq!(c.settle(target(2, 2), 5_500_000), target(2, 2));
    // Ten seconds after the last move down, up at once again.
    assert_eq!(c.settle(None, 6_000_000), None);
    assert_eq!(c.settle(target(0, 0), 16_000_000), target(0, 0));
}
