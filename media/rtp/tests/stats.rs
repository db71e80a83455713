//! RFC 3550 receiver statistics on scripted packet sequences.

use tutti_rtp::rtcp::{self as tr, Packet, ReceiveStats};

/// 20 ms packets of a 90 kHz stream: 1800 RTP ticks apart.
const STEP_US: i64 = 20_000;
const STEP_TS: u32 = 1800;

fn feed(stats: &mut ReceiveStats, seqs: impl IntoIterator<Item = u16>, base_seq: u16) {
    for seq in seqs {
        let n = seq.wrapping_sub(base_seq);
        stats.on_packet(seq, u32::from(n) * STEP_TS, i64::from(n) * STEP_US);
    }
}

#[test]
fn loss_and_fraction_per_interval() {
    let mut s = ReceiveStats::new(90_000);
    feed(&mut s, (0..10).filter(|&q| q != 3 && q != 4), 0);
    let b = s.report_block(42, 1_000_000);
    assert_eq!(b.ssrc, 42);
    assert_eq!(b.extended_highest_sequence, 9);
    assert_eq!(b.cumulative_lost, 2);
    assert_eq!(b.fraction_lost, (2 * 256 / 10) as u8);
    assert_eq!(b.jitter, 0, "perfectly paced");
    assert_eq!(s.packets_received(), 8);
    // Next interval: no loss, cumulative unchanged, fraction reset.
    feed(&mut s, 10..20, 0);
    let b = s.report_block(42, 2_000_000);
    assert_eq!((b.cumulative_lost, b.fraction_lost), (2, 0));
    // Late arrival of a lost packet reduces the cumulative count; fraction never negative.
    feed(&mut s, [3], 0);
    let b = s.report_block(42, 3_000_000);
    assert_eq!((b.cumulative_lost, b.fraction_lost), (1, 0));
}

#[test]
fn sequence_wrap_counts_cycles() {
    let mut s = ReceiveStats::new(90_000);
    let seqs = (65530u16..=65535).chain(0..=5).filter(|&q| q != 1);
    feed(&mut s, seqs, 65530);
    let b = s.report_block(1, 0);
    assert_eq!(b.extended_highest_sequence, 65536 + 5);
    assert_eq!(b.cumulative_lost, 1);
    assert_eq!(b.fraction_lost, (256 / 12) as u8);
}

#[test]
fn duplicates_make_cumulative_lost_negative() {
    let mut s = ReceiveStats::new(48_000);
    feed(&mut s, [0, 1, 1, 2, 2], 0);
    assert_eq!(s.report_block(1, 0).cumulative_lost, -2);
}

#[test]
fn source_restart_after_two_sequential_packets_past_a_big_jump() {
    let mut s = ReceiveStats::new(90_000);
    feed(&mut s, 0..10, 0);
    s.on_packet(30_000, 0, 0); // A lone jump is ignored.
    assert_eq!(s.report_block(1, 0).extended_highest_sequence, 9);
    s.on_packet(30_001, 0, 0); // Confirmed: restart from here.
    let b = s.report_block(1, 0);
    assert_eq!(b.extended_highest_sequence, 30_001);
    assert_eq!(b.cumulative_lost, 0);
    assert_eq!(s.packets_received(), 11);
}

#[test]
fn jitter_follows_rfc3550_estimator() {
    let mut s = ReceiveStats::new(90_000);
    // Every other packet arrives 5 ms late: |D| = 450 RTP ticks between consecutive packets.
    let mut expected = 0.0f64;
    for n in 0..200u32 {
        let late = if n % 2 == 1 { 5_000 } else { 0 };
        s.on_packet(n as u16, n * STEP_TS, i64::from(n) * STEP_US + late);
        if n > 0 {
            expected += (450.0 - expected) / 16.0;
        }
        if n == 10 || n == 199 {
            let got = f64::from(s.report_block(1, 0).jitter);
            assert!((got - expected).abs() <= 2.0, "n={n}: {got} vs {expected}");
        }
    }
    assert!(s.report_block(1, 0).jitter >= 440);
}

#[test]
fn lsr_and_dlsr_from_last_sender_report() {
    let mut s = ReceiveStats::new(90_000);
    feed(&mut s, 0..3, 0);
    let b = s.report_block(1, 10_000_000);
    assert_eq!((b.last_sr, b.delay_since_last_sr), (0, 0), "no SR yet");
    s.on_sender_report(0x1234_5678_9abc_def0, 10_000_000);
    let b = s.report_block(1, 10_500_000);
    assert_eq!(b.last_sr, 0x5678_9abc);
    assert_eq!(b.delay_since_last_sr, 32_768, "0.5 s in 1/65536 s units");
}

#[test]
fn report_block_round_trips_through_receiver_report() {
    let mut s = ReceiveStats::new(90_000);
    feed(&mut s, (0..100).filter(|q| q % 10 != 0), 0);
    s.on_sender_report(0xaaaa_bbbb_cccc_dddd, 0);
    let block = s.report_block(7, 1_000_000);
    let mut out = [0u8; 64];
    let n = tr::write_receiver_report(&mut out, 1, &[block]).unwrap();
    let Some(Ok(Packet::ReceiverReport { mut reports, .. })) = tr::packets(&out[..n]).next() else {
        panic!("not an RR");
    };
    assert_eq!(reports.next(), Some(block));
    // Packet 0 was never seen, so the stream starts at 1: 10, 20, ..., 90 are lost.
    assert_eq!(block.cumulative_lost, 9);
}
