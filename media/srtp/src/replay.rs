//! Sliding replay window (RFC 3711 §3.3.2) over packet indices, also the source of the highest
//! index that inbound ROC estimation is relative to.

use crate::Error;

/// Number of indices below the highest one that are still accepted once. 128 rather than the
/// RFC minimum of 64 because simulcast video bursts are often reordered by more than 64 packets.
pub(crate) const WINDOW: u64 = 128;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ReplayWindow {
    /// Highest index accepted so far.
    top: u64,
    /// Bit `n` set: index `top - n` has been accepted.
    seen: u128,
}

impl ReplayWindow {
    /// A window whose first accepted index is `index`.
    pub(crate) fn starting_at(index: u64) -> ReplayWindow {
        ReplayWindow {
            top: index,
            seen: 1,
        }
    }

    pub(crate) fn top(&self) -> u64 {
        self.top
    }

    /// Rejects indices already accepted or older than the window; changes nothing.
    pub(crate) fn check(&self, index: u64) -> Result<(), Error> {
        if index > self.top {
            return Ok(());
        }
        let age = self.top - index;
        if age >= WINDOW || self.seen & (1u128 << age) != 0 {
            return Err(Error::Replayed);
        }
        Ok(())
    }

    /// Records `index` as accepted; call only after `check` passed and the packet authenticated.
    pub(crate) fn commit(&mut self, index: u64) {
        if index > self.top {
            let shift = index - self.top;
            self.seen = if shift >= WINDOW {
                1
            } else {
                (self.seen << shift) | 1
            };
            self.top = index;
        } else {
            let age = self.top - index;
            if age < WINDOW {
                self.seen |= 1u128 << age;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_new_rejects_duplicates() {
        let mut w = ReplayWindow::starting_at(1000);
        assert_eq!(w.check(1000), Err(Error::Replayed));
        assert_eq!(w.check(1001), Ok(()));
        w.commit(1001);
        assert_eq!(w.check(1001), Err(Error::Replayed));
        // Out of order but inside the window: accepted once.
        assert_eq!(w.check(990), Ok(()));
        w.commit(990);
        assert_eq!(w.check(990), Err(Error::Replayed));
        assert_eq!(w.top(), 1001);
    }

    #[test]
    fn rejects_older_than_window() {
        let mut w = ReplayWindow::starting_at(500);
        w.commit(500 + WINDOW);
        assert_eq!(w.check(500), Err(Error::Replayed));
        assert_eq!(w.check(501), Ok(()));
    }

    #[test]
    fn large_jump_clears_history() {
        let mut w = ReplayWindow::starting_at(10);
        w.commit(10 + 10_000);
        assert_eq!(w.check(10 + 10_000), Err(Error::Replayed));
        assert_eq!(w.check(10 + 10_000 - 1), Ok(()));
        assert_eq!(w.top(), 10_010);
    }
}
