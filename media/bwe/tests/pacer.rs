//! The pacer: a key-frame burst leaves spread at the pacing rate, not at once; a probe cluster
//! gets its rate from media first and padding for the rest, and ends.

use tutti_bwe::{Pace, Pacer, Padding, ProbeCluster, PACING_FACTOR};

const PACKET: u32 = 1200;

/// Sends everything queued as soon as the pacer allows, from `now`; the send times.
fn drain(pacer: &mut Pacer, mut now: i64, packets: usize) -> Vec<(i64, Option<u32>)> {
    let mut sent = Vec::new();
    while sent.len() < packets {
        match pacer.try_send(now, PACKET) {
            Pace::Now { probe_cluster } => sent.push((now, probe_cluster)),
            Pace::Later { at_us } => {
                assert!(at_us > now);
                assert_eq!(pacer.poll_timeout(), Some(at_us));
                now = at_us;
            }
        }
    }
    sent
}

#[test]
fn key_frame_burst_leaves_at_the_pacing_rate() {
    let mut pacer = Pacer::new(1_000_000);
    assert_eq!(pacer.pacing_bps(), (1_000_000.0 * PACING_FACTOR) as u64);
    assert_eq!(pacer.poll_timeout(), None);
    for _ in 0..100 {
        pacer.enqueue(PACKET);
    }
    assert_eq!(pacer.queued_bytes(), 100 * u64::from(PACKET));
    let sent = drain(&mut pacer, 1_000_000, 100);
    assert_eq!(pacer.queued_bytes(), 0);
    assert!(sent.iter().all(|&(_, cluster)| cluster.is_none()));

    // What comes at once leaves at once up to 5 ms of the rate (two packets); the other 98
    // follow at 2.5 Mbit/s: 97 intervals of 1200 bytes after the third, 372 ms, not all at
    // once.
    assert_eq!(sent[0].0, sent[1].0);
    assert!(sent[2].0 > sent[1].0);
    let span = sent[99].0 - sent[2].0;
    assert!((367_000..=377_000).contains(&span), "span {span} µs");
    // No ten consecutive packets from the third on faster than the pacing rate (1% rounding).
    for window in sent[2..].windows(11) {
        let us = window[10].0 - window[0].0;
        let bps = 10.0 * f64::from(PACKET) * 8e6 / us as f64;
        assert!(bps <= 2_500_000.0 * 1.01, "{bps} bit/s");
    }

    // Idle, the debt is paid: the next packets go at once up to the same 5 ms, not in a
    // burst of saved credit.
    let later = sent[99].0 + 1_000_000;
    for _ in 0..3 {
        pacer.enqueue(PACKET);
    }
    for _ in 0..2 {
        assert_eq!(
            pacer.try_send(later, PACKET),
            Pace::Now {
                probe_cluster: None
            }
        );
    }
    assert!(matches!(pacer.try_send(later, PACKET), Pace::Later { .. }));

    // A new rate applies to what is queued.
    pacer.set_media_rate(4_000_000);
    assert_eq!(
        pacer.try_send(later + 960, PACKET),
        Pace::Now {
            probe_cluster: None
        }
    );
}

#[test]
fn probe_cluster_gets_padding_up_to_its_rate() {
    let cluster = ProbeCluster {
        id: 7,
        target_bps: 4_000_000,
        duration_us: 15_000,
        min_packets: 5,
    };
    assert_eq!(cluster.bytes(), 7_500);
    let mut pacer = Pacer::new(1_000_000);
    pacer.add_probe(cluster);
    assert_eq!(
        pacer.poll_padding(0),
        Some(Padding {
            bytes: 1_000,
            probe_cluster: 7
        })
    );
    assert_eq!(pacer.poll_padding(0), None, "the next chunk is 2 ms later");
    assert_eq!(pacer.poll_timeout(), Some(2_000));

    let mut padding = vec![(0, 1_000)];
    let mut now = 0;
    while now < 100_000 {
        now += 250;
        while let Some(p) = pacer.poll_padding(now) {
            assert_eq!(p.probe_cluster, 7);
            padding.push((now, p.bytes));
        }
    }
    let total: u32 = padding.iter().map(|&(_, bytes)| bytes).sum();
    assert_eq!(total, 8_000, "{padding:?}");
    let (last, _) = padding[padding.len() - 1];
    assert_eq!(last, 14_000, "8 chunks of 2 ms: 4 Mbit/s for 15 ms");
    // Over: no more padding, the pacer is idle.
    assert_eq!(pacer.poll_timeout(), None);
}

#[test]
fn probe_cluster_sends_media_first() {
    let cluster = ProbeCluster {
        id: 1,
        target_bps: 5_000_000,
        duration_us: 15_000,
        min_packets: 5,
    };
    let mut pacer = Pacer::new(500_000);
    pacer.add_probe(cluster);
    for _ in 0..20 {
        pacer.enqueue(PACKET);
    }
    assert_eq!(pacer.poll_padding(0), None, "media is queued");
    // At 5 Mbit/s a 1200-byte packet every 1.92 ms until the cluster's 9375 bytes are sent
    // (8 packets), then at the pacing rate (1.25 Mbit/s: 7.68 ms).
    let sent = drain(&mut pacer, 0, 10);
    let probed: Vec<_> = sent.iter().filter(|&&(_, c)| c == Some(1)).collect();
    assert_eq!(probed.len(), 8, "{sent:?}");
    assert_eq!(probed[7].0, 7 * 1_920);
    assert_eq!(sent[8].1, None);
    assert!(sent[9].0 - sent[8].0 >= 7_680);
}

#[test]
fn probe_clusters_run_one_after_another_and_time_out() {
    let mut pacer = Pacer::new(1_000_000);
    for id in 0..6 {
        pacer.add_probe(ProbeCluster {
            id,
            target_bps: 8_000_000,
            duration_us: 1_000,
            min_packets: 2,
        });
    }
    // Four wait at most, run in order; a chunk (2 ms at 8 Mbit/s: 2000 bytes) covers a
    // cluster's 1000 bytes, but two packets are needed for min_packets.
    let mut ids = Vec::new();
    let mut now = 0;
    while now < 50_000 {
        while let Some(p) = pacer.poll_padding(now) {
            ids.push(p.probe_cluster);
        }
        now += 100;
    }
    assert_eq!(ids, [0, 0, 1, 1, 2, 2, 3, 3]);

    // A cluster that cannot send (the caller never polls) is dropped after a second.
    pacer.add_probe(ProbeCluster {
        id: 9,
        target_bps: 1_000_000,
        duration_us: 15_000,
        min_packets: 5,
    });
    pacer.enqueue(PACKET);
    assert_eq!(
        pacer.try_send(now, PACKET),
        Pace::Now {
            probe_cluster: Some(9)
        }
    );
    pacer.enqueue(PACKET);
    assert_eq!(
        pacer.try_send(now + 1_100_000, PACKET),
        Pace::Now {
            probe_cluster: None
        }
    );
}

#[test]
fn media_sent_without_asking_counts_towards_a_running_cluster() {
    let mut pacer = Pacer::new(1_000_000);
    assert_eq!(pacer.account(0, PACKET), None, "no cluster running");
    pacer.add_probe(ProbeCluster {
        id: 7,
        target_bps: 4_000_000,
        duration_us: 15_000,
        min_packets: 5,
    });
    // 7,500 bytes in 15 ms: media sent meanwhile is part of the cluster, padding the rest.
    let mut media = 0;
    let mut padding = 0;
    let mut now = 1_000;
    while now < 40_000 {
        if now % 3_000 == 1_000 {
            if let Some(id) = pacer.account(now, PACKET) {
                assert_eq!(id, 7);
                media += PACKET;
            }
        }
        while let Some(Padding {
            bytes,
            probe_cluster,
        }) = pacer.poll_padding(now)
        {
            assert_eq!(probe_cluster, 7);
            padding += bytes;
        }
        now += 1_000;
    }
    assert!(media >= 2 * PACKET, "media {media}");
    let total = u64::from(media + padding);
    assert!(
        (7_500..=7_500 + u64::from(PACKET) + 1_000).contains(&total),
        "{total} bytes"
    );
    assert_eq!(pacer.account(now, PACKET), None, "the cluster ended");
}

#[test]
fn a_standing_queue_drains_faster_than_the_pacing_rate() {
    // 1,000 packets (1.2 MB) at 2.5 Mbit/s would take 3.8 s; what is queued is drained
    // faster, the rate falling back to the pacing rate as the queue shortens.
    let mut pacer = Pacer::new(1_000_000);
    for _ in 0..1000 {
        pacer.enqueue(PACKET);
    }
    let sent = drain(&mut pacer, 0, 1000);
    let took = sent[999].0 - sent[0].0;
    assert!(
        (1_000_000..=2_000_000).contains(&took),
        "drained in {took} µs"
    );
    // The last hundred leave at the pacing rate.
    let tail = sent[999].0 - sent[900].0;
    assert!(tail >= 99 * 3_840 * 99 / 100, "tail {tail} µs");

    // A caller that dropped its queue says so: nothing is owed any more.
    for _ in 0..10 {
        pacer.enqueue(PACKET);
    }
    pacer.forget_queued();
    assert_eq!(pacer.queued_bytes(), 0);
}
