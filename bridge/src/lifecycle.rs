//! The bridge's lifecycle as a focus sees it: operational; draining once told to stop (SIGTERM:
//! no new conference, the ones it has are served, it exits once its last endpoint has left or
//! at the drain timeout); shutting down just before it exits.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BridgeState {
    Operational,
    Draining,
    ShuttingDown,
}

impl BridgeState {
    pub fn label(self) -> &'static str {
        match self {
            BridgeState::Operational => "operational",
            BridgeState::Draining => "draining",
            BridgeState::ShuttingDown => "shutting down",
        }
    }
}

/// The bridge's state, shared by the control API, the HTTP health check and the status
/// reports; watchers hear every change.
#[derive(Clone)]
pub struct Lifecycle {
    state: Arc<watch::Sender<BridgeState>>,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Lifecycle {
            state: Arc::new(watch::Sender::new(BridgeState::Operational)),
        }
    }
}

impl Lifecycle {
    pub fn state(&self) -> BridgeState {
        *self.state.borrow()
    }

    /// Moves on to `state`; watchers are told if it changed.
    pub fn set(&self, state: BridgeState) {
        self.state.send_if_modified(|current| {
            let changed = *current != state;
            *current = state;
            changed
        });
    }

    pub fn subscribe(&self) -> watch::Receiver<BridgeState> {
        self.state.subscribe()
    }
}

/// A drain under way: when it is over.
#[derive(Debug, Clone, Copy)]
pub struct Drain {
    started: Instant,
    timeout: Duration,
}

impl Drain {
    pub fn new(started: Instant, timeout: Duration) -> Drain {
        Drain { started, timeout }
    }

    /// Why the drain is over at `now` with `endpoints` left, if it is.
    pub fn over(&self, now: Instant, endpoints: usize) -> Option<&'static str> {
        if endpoints == 0 {
            Some("the last endpoint has left")
        } else if now.saturating_duration_since(self.started) >= self.timeout {
            Some("the drain timeout has passed")
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_drain_ends_when_empty_or_at_its_timeout() {
        let start = Instant::now();
        let drain = Drain::new(start, Duration::from_secs(10));
        assert_eq!(drain.over(start, 3), None);
        assert_eq!(drain.over(start + Duration::from_secs(9), 1), None);
        assert!(drain.over(start + Duration::from_secs(9), 0).is_some());
        assert!(drain
            .over(start + Duration::from_secs(10), 2)
            .is_some_and(|why| why.contains("timeout")));
        assert!(Drain::new(start, Duration::ZERO).over(start, 5).is_some());
    }

    #[test]
    fn watchers_hear_changes_only() {
        let lifecycle = Lifecycle::default();
        let mut watcher = lifecycle.subscribe();
        lifecycle.set(BridgeState::Operational);
        assert!(!watcher.has_changed().unwrap());
        lifecycle.set(BridgeState::Draining);
        assert!(watcher.has_changed().unwrap());
        assert_eq!(*watcher.borrow_and_update(), BridgeState::Draining);
        assert_eq!(lifecycle.state().label(), "draining");
    }
}
