//! Hostile feedback (empty, all lost, reversed arrival times, arrival before send, duplicates,
//! absurd sizes and times, unknown probe clusters, time going backwards) never panics and
//! keeps the estimate within its bounds; the pacer takes the probe clusters that result.

use tutti_bwe::{BandwidthEstimator, Limit, Pace, Pacer, PacketResult, MAX_BPS, MIN_BPS};

fn received(send_us: i64, size: u32, arrival_us: i64) -> PacketResult {
    PacketResult {
        send_us,
        size,
        arrival_us: Some(arrival_us),
        probe_cluster: None,
    }
}

fn assert_bounded(bwe: &BandwidthEstimator) {
    let estimate = bwe.estimate_bps();
    assert!(
        (MIN_BPS..=MAX_BPS).contains(&estimate),
        "estimate {estimate}"
    );
}

#[test]
fn empty_feedback_changes_nothing() {
    let mut bwe = BandwidthEstimator::new(500_000);
    bwe.on_packet_feedback(0, &[]);
    assert_eq!(bwe.estimate_bps(), 500_000);
    assert_eq!(bwe.limited_by(), Limit::Initial);
    assert_eq!(bwe.acknowledged_bps(), None);
}

#[test]
fn all_lost_backs_off_to_the_minimum() {
    let mut bwe = BandwidthEstimator::new(2_000_000);
    let lost = [PacketResult {
        send_us: 0,
        size: 1200,
        arrival_us: None,
        probe_cluster: None,
    }; 30];
    for i in 0..400 {
        bwe.on_packet_feedback(i * 50_000, &lost);
        assert_bounded(&bwe);
    }
    assert_eq!(bwe.estimate_bps(), MIN_BPS);
    assert_eq!(bwe.limited_by(), Limit::Loss);
}

#[test]
fn nonsense_feedback_keeps_the_estimate_bounded() {
    let mut bwe = BandwidthEstimator::new(1_000_000);
    let mut now = 0;
    let mut feed = |bwe: &mut BandwidthEstimator, results: &[PacketResult]| {
        now += 50_000;
        bwe.on_packet_feedback(now, results);
        assert_bounded(bwe);
    };
    // Reversed arrival times.
    let reversed: Vec<_> = (0..50)
        .map(|i| received(i * 1_000, 1200, 1_000_000 - i * 10_000))
        .collect();
    // Arrival before send, far before.
    let early: Vec<_> = (0..50)
        .map(|i| received(10_000_000 + i * 1_000, 1200, -5_000_000_000 + i * 1_000))
        .collect();
    // Duplicates, and absurd sizes.
    let duplicated = [received(20_000_000, u32::MAX, 20_000_000); 40];
    // Extreme times.
    let extreme = [
        received(i64::MAX, 1200, i64::MIN),
        received(i64::MIN, 0, i64::MAX),
        received(0, 1200, i64::MAX),
        received(i64::MAX, u32::MAX, i64::MAX),
    ];
    for _ in 0..20 {
        feed(&mut bwe, &reversed);
        feed(&mut bwe, &early);
        feed(&mut bwe, &duplicated);
        feed(&mut bwe, &extreme);
    }
    bwe.on_packet_feedback(i64::MIN, &extreme);
    bwe.on_packet_feedback(i64::MAX, &extreme);
    assert_bounded(&bwe);
}

/// splitmix64.
fn random(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A value from a small range around `base`, or an extreme one now and then.
fn time(state: &mut u64, base: i64) -> i64 {
    match random(state) % 16 {
        0 => i64::MIN,
        1 => i64::MAX,
        2 => random(state) as i64,
        _ => base.saturating_add((random(state) % 200_000) as i64 - 100_000),
    }
}

#[test]
fn random_feedback_never_panics() {
    let mut state = 7;
    let mut bwe = BandwidthEstimator::new(800_000);
    let mut pacer = Pacer::new(bwe.estimate_bps());
    let mut results = Vec::with_capacity(64);
    for round in 0..3_000i64 {
        let now = time(&mut state, round * 50_000);
        results.clear();
        for _ in 0..random(&mut state) % 64 {
            let send_us = time(&mut state, now.saturating_sub(100_000));
            results.push(PacketResult {
                send_us,
                size: match random(&mut state) % 8 {
                    0 => u32::MAX,
                    1 => 0,
                    _ => (random(&mut state) % 1500) as u32,
                },
                arrival_us: (random(&mut state) % 4 < 3).then(|| time(&mut state, send_us)),
                probe_cluster: (random(&mut state) % 4 == 1)
                    .then(|| (random(&mut state) % 8) as u32),
            });
        }
        bwe.on_packet_feedback(now, &results);
        match random(&mut state) % 16 {
            0 => bwe.on_remb(random(&mut state)),
            1 => bwe.set_desired(random(&mut state)),
            _ => {}
        }
        assert_bounded(&bwe);
        if let Some(cluster) = bwe.poll_probe(now) {
            assert!(cluster.target_bps > 0 && cluster.target_bps <= MAX_BPS);
            assert!(cluster.duration_us > 0 && cluster.min_packets > 0);
            pacer.add_probe(cluster);
        }
        pacer.set_media_rate(bwe.estimate_bps());
        let bytes = random(&mut state) as u32;
        pacer.enqueue(bytes);
        if let Pace::Later { at_us } = pacer.try_send(now, bytes) {
            assert!(at_us > now || now == i64::MAX);
        }
        while pacer.poll_padding(now).is_some() {}
        assert!(pacer.poll_timeout().is_some() || pacer.queued_bytes() == 0);
    }
}
