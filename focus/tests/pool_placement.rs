//! Placement over a pool of bridges, on the pool state machine alone (simulated clock, status
//! reports by hand): a burst of new conferences spreads at once, by padded stress, and a report
//! in the middle of it counts each allocation once (reported or padded); the region
//! is preferred; draining bridges take nothing; a recovering bridge waits out its back-off; a
//! stress that makes no sense counts as full; a conference spreading a room over another
//! bridge avoids the room's bridges, keeps to its region when asked, and takes no bridge that
//! is failed or unheard.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tutti_focus::pool::{BridgeId, BridgeState, Pool, Status, BACKOFF_FIRST};

fn id(name: &str) -> BridgeId {
    BridgeId(format!("https://{name}:10090"))
}

fn status(region: &str, state: BridgeState, stress: f64) -> Status {
    Status {
        name: String::new(),
        region: region.to_owned(),
        state,
        stress,
        endpoints: 0,
        endpoint_capacity: 100,
        instance: "1".to_owned(),
        allocations: 0,
    }
}

fn pool(now: Instant, bridges: &[(&str, &str)]) -> Pool {
    let mut pool = Pool::new();
    pool.set_listed(bridges.iter().map(|(name, _)| id(name)));
    for (name, region) in bridges {
        pool.on_status(
            now,
            &id(name),
            status(region, BridgeState::Operational, 0.0),
        );
    }
    pool
}

#[test]
fn a_burst_of_conferences_spreads_before_any_report() {
    let now = Instant::now();
    let mut pool = pool(now, &[("a", ""), ("b", ""), ("c", "")]);
    let mut endpoints: HashMap<BridgeId, u32> = HashMap::new();
    // Ten rooms of three arrive at once: each conference placed (padded for its first
    // endpoint), then its other two endpoints allocated (each padded), before any bridge
    // reports again.
    for _ in 0..10 {
        let bridge = pool.place(now, "").expect("a bridge");
        for _ in 0..2 {
            pool.pad(now, &bridge);
        }
        *endpoints.entry(bridge).or_default() += 3;
    }
    let max = endpoints.values().max().copied().unwrap_or(0);
    let min = endpoints.values().min().copied().unwrap_or(0);
    assert_eq!(endpoints.len(), 3, "{endpoints:?}");
    assert!(f64::from(max) / f64::from(min) <= 1.5, "{endpoints:?}");
}

#[test]
fn a_report_in_the_middle_of_a_burst_counts_each_allocation_once() {
    let now = Instant::now();
    let mut pool = pool(now, &[("a", ""), ("b", ""), ("c", "")]);
    let mut endpoints: HashMap<BridgeId, u32> = HashMap::new();
    // Ten rooms of three at once; every allocation answered with the bridge's number for it
    // (its endpoint count so far).
    let mut join_room = |pool: &mut Pool| {
        let bridge = pool.place(now, "").expect("a bridge");
        for first in [true, false, false] {
            if !first {
                pool.pad(now, &bridge);
            }
            let count = endpoints.entry(bridge.clone()).or_default();
            *count += 1;
            pool.allocated(&bridge, Some(u64::from(*count)));
        }
    };
    for _ in 0..6 {
        join_room(&mut pool);
    }
    // Two rooms each; then a reports (its other status ticks fall outside the burst), a
    // load that counts its six endpoints: their paddings go, or a would count them twice,
    // look twice as loaded as b and c, and get none of the next four rooms (2, 4, 4).
    let a = id("a");
    pool.on_status(
        now + Duration::from_millis(100),
        &a,
        Status {
            stress: 0.06,
            endpoints: 6,
            allocations: 6,
            ..status("", BridgeState::Operational, 0.0)
        },
    );
    for _ in 0..4 {
        join_room(&mut pool);
    }
    let max = endpoints.values().max().copied().unwrap_or(0);
    let min = endpoints.values().min().copied().unwrap_or(0);
    assert!(f64::from(max) / f64::from(min) <= 1.5, "{endpoints:?}");
}

#[test]
fn an_allocation_answered_after_the_report_that_counts_it_is_not_padded() {
    let now = Instant::now();
    let mut pool = pool(now, &[("a", ""), ("b", "")]);
    // Placed on a (both idle: the first listed), and counted by a's report before the
    // answer reached the focus.
    let placed = pool.place(now, "").expect("a bridge");
    pool.on_status(
        now,
        &placed,
        Status {
            stress: 0.01,
            endpoints: 1,
            allocations: 1,
            ..status("", BridgeState::Operational, 0.0)
        },
    );
    pool.allocated(&placed, Some(1));
    // 0.01 each way: a as loaded as b plus one endpoint's padding, not two.
    let other = pool.place(now, "").expect("a bridge");
    assert_ne!(other, placed);
    assert_eq!(pool.place(now, ""), Some(placed));
}

#[test]
fn reported_stress_decides_once_the_padding_is_reported() {
    let now = Instant::now();
    let mut pool = pool(now, &[("a", ""), ("b", "")]);
    let later = now + Duration::from_millis(500);
    pool.on_status(later, &id("a"), status("", BridgeState::Operational, 0.7));
    pool.on_status(later, &id("b"), status("", BridgeState::Operational, 0.2));
    assert_eq!(pool.place(later, ""), Some(id("b")));
    // b is padded by 0.01 (capacity 100) per placement until its next report: 50 more
    // placements before a is as loaded.
    for _ in 0..40 {
        assert_eq!(pool.place(later, ""), Some(id("b")));
    }
}

#[test]
fn the_region_is_preferred_and_any_bridge_serves_a_region_without_one() {
    let now = Instant::now();
    let mut pool = pool(now, &[("eu1", "eu"), ("eu2", "eu"), ("us1", "us")]);
    let later = now + Duration::from_millis(500);
    pool.on_status(
        later,
        &id("eu1"),
        status("eu", BridgeState::Operational, 0.5),
    );
    pool.on_status(
        later,
        &id("eu2"),
        status("eu", BridgeState::Operational, 0.4),
    );
    pool.on_status(
        later,
        &id("us1"),
        status("us", BridgeState::Operational, 0.0),
    );
    assert_eq!(pool.place(later, "eu"), Some(id("eu2")));
    assert_eq!(pool.place(later, "us"), Some(id("us1")));
    assert_eq!(pool.place(later, "ap"), Some(id("us1")));
    assert_eq!(pool.place(later, ""), Some(id("us1")));
}

#[test]
fn a_nonsensical_stress_counts_as_full() {
    let now = Instant::now();
    let mut pool = pool(now, &[("a", ""), ("b", "")]);
    pool.on_status(
        now,
        &id("a"),
        status("", BridgeState::Operational, f64::NAN),
    );
    pool.on_status(now, &id("b"), status("", BridgeState::Operational, 0.9));
    assert_eq!(pool.place(now, ""), Some(id("b")));
    pool.on_status(now, &id("a"), status("", BridgeState::Operational, -5.0));
    assert_eq!(pool.place(now, ""), Some(id("a")), "negative: none");
    pool.on_status(
        now,
        &id("a"),
        status("", BridgeState::Operational, f64::INFINITY),
    );
    assert_eq!(pool.place(now, ""), Some(id("b")));
}

#[test]
fn draining_bridges_take_no_conference() {
    let now = Instant::now();
    let mut pool = pool(now, &[("a", ""), ("b", "")]);
    pool.on_status(now, &id("a"), status("", BridgeState::Draining, 0.0));
    pool.on_status(now, &id("b"), status("", BridgeState::Operational, 0.9));
    assert_eq!(pool.place(now, ""), Some(id("b")));
    pool.on_status(now, &id("b"), status("", BridgeState::Draining, 0.0));
    assert_eq!(pool.place(now, ""), None, "every bridge drains");
}

#[test]
fn a_recovered_bridge_is_used_again_after_its_back_off() {
    let now = Instant::now();
    let mut pool = pool(now, &[("a", ""), ("b", "")]);
    pool.on_status(now, &id("b"), status("", BridgeState::Operational, 0.5));
    pool.on_stream_lost(now, &id("a"), "connection reset");
    assert_eq!(pool.place(now, ""), Some(id("b")));
    let back = now + Duration::from_secs(1);
    pool.on_status(back, &id("a"), status("", BridgeState::Operational, 0.0));
    pool.on_status(back, &id("b"), status("", BridgeState::Operational, 0.5));
    assert_eq!(
        pool.place(back, ""),
        Some(id("b")),
        "a is within its back-off"
    );
    let after = back + BACKOFF_FIRST;
    pool.on_status(after, &id("a"), status("", BridgeState::Operational, 0.0));
    pool.on_status(after, &id("b"), status("", BridgeState::Operational, 0.5));
    assert_eq!(pool.place(after, ""), Some(id("a")));
    // With nothing else, a recovering bridge is better than none, and a failed one is tried
    // as a last resort (a one-bridge pool keeps asking its bridge).
    let mut alone = pool_of_one(now);
    alone.on_stream_lost(now, &id("solo"), "connection reset");
    assert_eq!(alone.place(now, ""), Some(id("solo")));
    assert!(alone.is_failed(&id("solo")));
    assert!(!alone.has_alternative(now, &id("solo")));
}

fn pool_of_one(now: Instant) -> Pool {
    pool(now, &[("solo", "")])
}

#[test]
fn a_spreading_conference_avoids_the_rooms_bridges_and_may_keep_to_its_region() {
    let now = Instant::now();
    let mut pool = pool(now, &[("eu1", "eu"), ("eu2", "eu"), ("us1", "us")]);
    pool.set_listed([id("eu1"), id("eu2"), id("us1"), id("unheard")]);
    assert_eq!(pool.region(&id("us1")), "us");
    assert_eq!(
        pool.place_avoiding(now, "eu", &[id("eu1")], false),
        Some(id("eu2"))
    );
    assert_eq!(
        pool.place_avoiding(now, "eu", &[id("eu1"), id("eu2")], false),
        Some(id("us1")),
        "another region rather than none"
    );
    assert_eq!(
        pool.place_avoiding(now, "eu", &[id("eu1"), id("eu2")], true),
        None,
        "strictly in eu: none left"
    );
    assert_eq!(
        pool.place_avoiding(now, "us", &[id("eu1")], true),
        Some(id("us1"))
    );
    // Only an unheard bridge left: not for spreading (a plain placement would take it).
    assert_eq!(
        pool.place_avoiding(now, "", &[id("eu1"), id("eu2"), id("us1")], false),
        None
    );
}
