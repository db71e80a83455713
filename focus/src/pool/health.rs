//! Whether a bridge is alive, from what its event stream brings: a status every 500 ms (the
//! bridge's promise, docs/bridge.md), or the stream's end. A bridge that was heard and then
//! falls silent for `SILENCE`, whose stream breaks (its gRPC connection's keepalive failed,
//! its process died) or that says it is shutting down has failed; one heard again afterwards
//! recovers, but is placed on again only after a back-off that doubles with each failure in a
//! row.

use std::time::{Duration, Instant};

use super::{BridgeState, Status};

/// A bridge silent this long has failed: three status intervals, so a status late by a busy
/// moment does not count, and a bridge that froze is marked within 2 s.
pub const SILENCE: Duration = Duration::from_millis(1500);
/// The first back-off after a failure; each failure in a row doubles it, up to `BACKOFF_MAX`.
pub const BACKOFF_FIRST: Duration = Duration::from_secs(2);
pub const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// A bridge alive this long between two failures starts again from `BACKOFF_FIRST`.
pub const STEADY: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Liveness {
    Unheard,
    Alive { since: Instant, last_heard: Instant },
    Failed { since: Instant },
}

/// What one status or loss meant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Change {
    /// Heard for the first time.
    FirstHeard,
    /// It was alive and has failed, for this cause.
    Failed(String),
    /// It had failed and is heard again.
    Recovered,
}

#[derive(Debug, Clone)]
pub(super) struct Health {
    liveness: Liveness,
    pub(super) status: Option<Status>,
    /// Failures in a row (reset by a steady stretch).
    failures: u32,
    /// No conference is placed here before this (the back-off after a failure).
    usable_from: Option<Instant>,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            liveness: Liveness::Unheard,
            status: None,
            failures: 0,
            usable_from: None,
        }
    }
}

impl Health {
    /// A status from the bridge's stream at `now`.
    pub(super) fn heard(&mut self, now: Instant, status: Status) -> Option<Change> {
        let shutting_down = status.state == BridgeState::ShuttingDown;
        self.status = Some(status);
        if shutting_down {
            return self.lost(now, "it is shutting down".to_owned());
        }
        match self.liveness {
            Liveness::Alive { since, .. } => {
                self.liveness = Liveness::Alive {
                    since,
                    last_heard: now,
                };
                None
            }
            Liveness::Unheard => {
                self.liveness = Liveness::Alive {
                    since: now,
                    last_heard: now,
                };
                Some(Change::FirstHeard)
            }
            Liveness::Failed { .. } => {
                self.liveness = Liveness::Alive {
                    since: now,
                    last_heard: now,
                };
                let backoff = BACKOFF_FIRST
                    .saturating_mul(1 << self.failures.saturating_sub(1).min(5))
                    .min(BACKOFF_MAX);
                self.usable_from = Some(now + backoff);
                Some(Change::Recovered)
            }
        }
    }

    /// The stream ended or broke, or the bridge said it is shutting down. A bridge never heard
    /// stays unheard (its stream never opened).
    pub(super) fn lost(&mut self, now: Instant, cause: String) -> Option<Change> {
        match self.liveness {
            Liveness::Failed { .. } | Liveness::Unheard => None,
            Liveness::Alive { since, .. } => {
                if now.saturating_duration_since(since) >= STEADY {
                    self.failures = 0;
                }
                self.failures = self.failures.saturating_add(1);
                self.liveness = Liveness::Failed { since: now };
                Some(Change::Failed(cause))
            }
        }
    }

    /// The silence check at `now`.
    pub(super) fn check(&mut self, now: Instant) -> Option<Change> {
        match self.liveness {
            Liveness::Alive { last_heard, .. } if now >= last_heard + SILENCE => self.lost(
                now,
                format!(
                    "no status for {} ms",
                    now.saturating_duration_since(last_heard).as_millis()
                ),
            ),
            _ => None,
        }
    }

    /// When the silence check is next due.
    pub(super) fn deadline(&self) -> Option<Instant> {
        match self.liveness {
            Liveness::Alive { last_heard, .. } => Some(last_heard + SILENCE),
            _ => None,
        }
    }

    pub(super) fn is_alive(&self) -> bool {
        matches!(self.liveness, Liveness::Alive { .. })
    }

    pub(super) fn is_failed(&self) -> bool {
        matches!(self.liveness, Liveness::Failed { .. })
    }

    /// Alive and operational, but still within its back-off at `now`.
    pub(super) fn recovering(&self, now: Instant) -> bool {
        self.usable_from.is_some_and(|at| now < at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(state: BridgeState) -> Status {
        Status {
            name: "b".into(),
            region: String::new(),
            state,
            stress: 0.0,
            endpoints: 0,
            endpoint_capacity: 100,
            instance: String::new(),
            allocations: 0,
        }
    }

    #[test]
    fn silence_past_the_limit_fails_a_bridge_once() {
        let start = Instant::now();
        let mut health = Health::default();
        assert_eq!(
            health.check(start + Duration::from_secs(10)),
            None,
            "unheard"
        );
        assert_eq!(health.lost(start, "connection refused".into()), None);
        assert!(!health.is_failed(), "never heard: not failed either");
        assert_eq!(
            health.heard(start, status(BridgeState::Operational)),
            Some(Change::FirstHeard)
        );
        assert_eq!(health.deadline(), Some(start + SILENCE));
        assert_eq!(
            health.check(start + SILENCE - Duration::from_millis(1)),
            None
        );
        let failed = health.check(start + SILENCE);
        assert!(matches!(failed, Some(Change::Failed(cause)) if cause.contains("no status")));
        assert!(health.is_failed());
        assert_eq!(health.check(start + SILENCE * 2), None);
        assert_eq!(health.lost(start + SILENCE * 2, "again".into()), None);
        assert_eq!(health.deadline(), None);
    }

    #[test]
    fn a_recovered_bridge_waits_out_a_doubling_back_off() {
        let start = Instant::now();
        let mut health = Health::default();
        health.heard(start, status(BridgeState::Operational));
        let mut now = start;
        for expected in [2, 4, 8, 16, 32, 60, 60] {
            now += Duration::from_secs(1);
            assert!(matches!(
                health.lost(now, "stream broke".into()),
                Some(Change::Failed(_))
            ));
            now += Duration::from_secs(1);
            assert_eq!(
                health.heard(now, status(BridgeState::Operational)),
                Some(Change::Recovered)
            );
            let backoff = Duration::from_secs(expected);
            assert!(health.recovering(now + backoff - Duration::from_millis(1)));
            assert!(!health.recovering(now + backoff), "{expected} s");
        }
        // Steady for a minute: the next failure starts the back-off afresh.
        now += STEADY;
        health.heard(now, status(BridgeState::Operational));
        health.lost(now, "stream broke".into());
        health.heard(now, status(BridgeState::Operational));
        assert!(!health.recovering(now + BACKOFF_FIRST));
    }

    #[test]
    fn shutting_down_is_a_failure() {
        let start = Instant::now();
        let mut health = Health::default();
        health.heard(start, status(BridgeState::Draining));
        assert!(health.is_alive());
        let change = health.heard(start, status(BridgeState::ShuttingDown));
        assert!(matches!(change, Some(Change::Failed(cause)) if cause.contains("shutting down")));
    }
}
