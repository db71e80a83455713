//! Failure detection over a pool of bridges, on the pool state machine alone (simulated clock):
//! a bridge is available once first heard; one whose statuses stop is failed 1.5 s after the
//! last one, a broken stream or a shutting-down report fails it at once, each once; a bridge
//! heard again recovers, with the conferences moved off it to expire; bridges no longer listed
//! leave once they are dead.

use std::time::{Duration, Instant};

use tutti_focus::pool::{BridgeId, BridgeState, Event, Pool, Status, SILENCE};

fn id(name: &str) -> BridgeId {
    BridgeId(format!("https://{name}:10090"))
}

fn status(state: BridgeState) -> Status {
    Status {
        name: String::new(),
        region: String::new(),
        state,
        stress: 0.1,
        endpoints: 3,
        endpoint_capacity: 100,
        instance: "1".to_owned(),
        allocations: 0,
    }
}

fn events(pool: &mut Pool) -> Vec<Event> {
    std::iter::from_fn(|| pool.poll_event()).collect()
}

#[test]
fn a_silent_bridge_fails_within_two_seconds_once() {
    let start = Instant::now();
    let mut pool = Pool::new();
    pool.set_listed([id("a"), id("b")]);
    assert_eq!(pool.poll_timeout(), None, "nothing heard, nothing to check");
    let mut now = start;
    // Both report every 500 ms; a freezes after its report at 1 s.
    while now <= start + Duration::from_secs(1) {
        pool.on_status(now, &id("a"), status(BridgeState::Operational));
        pool.on_status(now, &id("b"), status(BridgeState::Operational));
        now += Duration::from_millis(500);
    }
    let frozen_after = start + Duration::from_secs(1);
    let mut failed_at = None;
    while now <= start + Duration::from_secs(5) {
        pool.on_status(now, &id("b"), status(BridgeState::Operational));
        let step = now + Duration::from_millis(500);
        while let Some(at) = pool.poll_timeout().filter(|at| *at < step) {
            pool.handle_timeout(at);
            for event in events(&mut pool) {
                match event {
                    Event::Available { .. } => {}
                    Event::Failed { bridge, cause } => {
                        assert_eq!(bridge, id("a"));
                        assert!(cause.contains("no status"), "{cause}");
                        assert_eq!(failed_at, None, "failed once");
                        failed_at = Some(at);
                    }
                    other => panic!("{other:?}"),
                }
            }
        }
        now = step;
    }
    let failed_at = failed_at.expect("a failed");
    assert_eq!(failed_at - frozen_after, SILENCE);
    assert!(pool.is_failed(&id("a")) && !pool.is_failed(&id("b")));
    assert!(pool.has_alternative(now, &id("a")));
    assert_eq!(pool.place(now, ""), Some(id("b")));
}

#[test]
fn a_broken_stream_or_a_shutdown_fails_at_once_and_a_recovery_expires_the_moved() {
    let now = Instant::now();
    let mut pool = Pool::new();
    pool.set_listed([id("a"), id("b")]);
    pool.on_status(now, &id("a"), status(BridgeState::Operational));
    pool.on_status(now, &id("b"), status(BridgeState::Draining));
    assert_eq!(
        events(&mut pool),
        [
            Event::Available { bridge: id("a") },
            Event::Available { bridge: id("b") }
        ]
    );
    pool.on_stream_lost(now, &id("a"), "h2 protocol error: keep-alive timed out");
    pool.on_stream_lost(now, &id("a"), "connection refused");
    let failed = events(&mut pool);
    assert!(
        matches!(&failed[..], [Event::Failed { bridge, cause }] if *bridge == id("a") && cause.contains("keep-alive")),
        "{failed:?}"
    );
    pool.orphan(&id("a"), "conference-1".into());
    pool.orphan(&id("a"), "conference-2".into());
    pool.on_status(now, &id("b"), status(BridgeState::ShuttingDown));
    assert!(matches!(
        &events(&mut pool)[..],
        [Event::Failed { bridge, cause }] if *bridge == id("b") && cause.contains("shutting down")
    ));

    let back = now + Duration::from_secs(3);
    pool.on_status(back, &id("a"), status(BridgeState::Operational));
    assert_eq!(
        events(&mut pool),
        [Event::Recovered {
            bridge: id("a"),
            orphans: vec!["conference-1".into(), "conference-2".into()],
        }]
    );
    pool.on_status(back, &id("a"), status(BridgeState::Operational));
    assert!(events(&mut pool).is_empty(), "recovered once");
}

#[test]
fn an_unlisted_bridge_leaves_once_it_is_dead() {
    let now = Instant::now();
    let mut pool = Pool::new();
    assert_eq!(pool.set_listed([id("a"), id("b")]), [id("a"), id("b")]);
    pool.on_status(now, &id("a"), status(BridgeState::Operational));
    assert_eq!(events(&mut pool), [Event::Available { bridge: id("a") }]);
    // The next discovery no longer lists a (still alive) nor b (never heard), adds c.
    assert_eq!(pool.set_listed([id("c")]), [id("c")]);
    assert_eq!(events(&mut pool), [Event::Removed { bridge: id("b") }]);
    pool.on_status(now, &id("c"), status(BridgeState::Operational));
    assert_eq!(
        pool.place(now, ""),
        Some(id("c")),
        "a takes no new conference"
    );
    pool.on_stream_lost(now, &id("a"), "connection reset");
    let gone = events(&mut pool);
    assert_eq!(gone.len(), 3, "{gone:?}");
    assert_eq!(gone[0], Event::Available { bridge: id("c") });
    assert!(matches!(&gone[2], Event::Removed { bridge } if *bridge == id("a")));
    assert!(
        pool.is_failed(&id("a")),
        "an unknown bridge counts as failed"
    );
}

#[test]
fn a_new_instance_at_the_same_address_is_a_restart() {
    let now = Instant::now();
    let mut pool = Pool::new();
    pool.set_listed([id("a")]);
    let with_instance = |instance: &str| Status {
        instance: instance.to_owned(),
        ..status(BridgeState::Operational)
    };
    pool.on_status(now, &id("a"), with_instance("1"));
    pool.on_status(now, &id("a"), with_instance("1"));
    assert_eq!(events(&mut pool), [Event::Available { bridge: id("a") }]);
    // Restarted so fast that its stream was never seen to break: a restart all the same.
    pool.on_status(now, &id("a"), with_instance("2"));
    assert_eq!(events(&mut pool), [Event::Restarted { bridge: id("a") }]);
    // Killed (its stream breaks), something moved off it, then a new process comes up: it
    // recovers with nothing left to expire, and restarted.
    pool.on_stream_lost(now, &id("a"), "connection reset");
    pool.orphan(&id("a"), "moved".to_owned());
    let later = now + Duration::from_secs(1);
    pool.on_status(later, &id("a"), with_instance("3"));
    let after: Vec<Event> = events(&mut pool)
        .into_iter()
        .filter(|event| !matches!(event, Event::Failed { .. }))
        .collect();
    assert_eq!(
        after,
        [
            Event::Recovered {
                bridge: id("a"),
                orphans: Vec::new()
            },
            Event::Restarted { bridge: id("a") },
        ]
    );
    // The same process heard again (a thawed freeze) is no restart.
    pool.on_stream_lost(later, &id("a"), "keepalive failed");
    pool.on_status(later, &id("a"), with_instance("3"));
    assert!(!events(&mut pool)
        .iter()
        .any(|event| matches!(event, Event::Restarted { .. })));
}
