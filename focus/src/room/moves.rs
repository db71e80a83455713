//! What the participants who keep their sessions are told when others move to another bridge
//! (a bridge of the room failed, a relay was given up: `cascade.rs`), and what each participant
//! of a room that moves as a whole is told of the others (the room's only bridge failed:
//! `allocation.rs`), coalesced per move.
//!
//! Each source update a client gets is a renegotiation, and lib-jitsi-meet carries them out one
//! after the other; told of each moved participant on its own, a page that stays renegotiates
//! twice per moved participant (its sources gone, then back on its new session), which took
//! 0.3–3.8 s for two moved pages on a loaded machine. So the removal of every participant a
//! move takes is one `source-remove` (`content-remove`) per participant that stays, and their
//! sources' return is held until each of them has its new session taken by the bridge, then
//! sent as one `source-add` (`content-add`) per participant. A moved participant that never
//! gets there holds up the others for at most [`MOVE_HOLD`] after the first one's return was
//! held. Jicofo coalesces source signalling in the same way in large conferences (its
//! source-signaling delay).
//!
//! Held updates keep each participant's sources in order: anything else the others are to be
//! told of a participant whose return is held (it changed its sources, left, moved again)
//! sends what is held first.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use super::Room;
use crate::jingle::Action;
use crate::sources::{ReceiverView, SourceChange};

/// How long a moved participant's return may be held for the others of its move.
pub const MOVE_HOLD: Duration = Duration::from_secs(2);

/// A move's participants whose new sessions are not taken yet, and the returns held for them.
#[derive(Debug, Default)]
pub(super) struct Moves {
    /// Moved participants (nicks) whose new session the bridge has not taken yet.
    awaiting: BTreeSet<String>,
    /// The held returns, per receiver: its nick and the sid of the session they are for (a
    /// session that ended meanwhile is offered every shown source anew, so gets none of them).
    held: BTreeMap<(String, String), Vec<ReceiverView>>,
    /// The occupant JIDs whose returns are held.
    owners: BTreeSet<String>,
    /// When the held returns go whatever happens: [`MOVE_HOLD`] after the first was held.
    deadline: Option<Instant>,
}

impl Moves {
    pub(super) fn deadline(&self) -> Option<Instant> {
        self.deadline
    }
}

/// Updates for receivers: each one's nick, the sid of the session they are for, and the views.
pub(super) type Deliveries = Vec<(String, String, Vec<ReceiverView>)>;

impl Room {
    /// The participants `nicks` move: their returns are held for each other.
    pub(super) fn moving<'a>(&mut self, nicks: impl IntoIterator<Item = &'a String>) {
        self.moves.awaiting.extend(nicks.into_iter().cloned());
    }

    /// Tells the others that `removed` (the moved participants' sources) went: one update per
    /// receiver.
    pub(super) fn signal_moved_away(&mut self, removed: Vec<ReceiverView>) {
        let removed: Vec<ReceiverView> = removed.into_iter().filter(|v| !v.is_empty()).collect();
        if removed.is_empty() {
            return;
        }
        let deliveries = self.receivers(&removed);
        self.deliver(deliveries, Action::SourceRemove);
    }

    /// The bridge took `nick`'s session (its sources `change`d as shown): the others are told,
    /// held while it is one of a move's.
    pub(super) fn signal_accepted(&mut self, now: Instant, nick: &str, change: &SourceChange) {
        if !self.moves.awaiting.remove(nick) {
            self.signal_change(change);
            return;
        }
        let owner = change.added.owner().to_owned();
        self.signal(&change.removed, Action::SourceRemove);
        if !change.added.is_empty() {
            let added = std::slice::from_ref(&change.added);
            for (receiver, sid, views) in self.receivers(added) {
                self.moves
                    .held
                    .entry((receiver, sid))
                    .or_default()
                    .extend(views);
            }
            self.moves.owners.insert(owner);
            self.moves.deadline.get_or_insert(now + MOVE_HOLD);
        }
        if self.moves.awaiting.is_empty() {
            self.release_moves();
        }
    }

    /// `nick` left the room: its move's others are no longer held for it.
    pub(super) fn moved_one_left(&mut self, nick: &str) {
        if self.moves.awaiting.remove(nick) && self.moves.awaiting.is_empty() {
            self.release_moves();
        }
    }

    /// The held returns are due at `now`.
    pub(super) fn release_moves_due(&mut self, now: Instant) {
        if self.moves.deadline.is_some_and(|at| at <= now) {
            self.release_moves();
        }
    }

    /// Sends the held returns, one update per receiver, and ends the move (a moved participant
    /// not back yet is signalled on its own when it is).
    pub(super) fn release_moves(&mut self) {
        let moves = std::mem::take(&mut self.moves);
        let deliveries = moves
            .held
            .into_iter()
            .map(|((nick, sid), views)| (nick, sid, views))
            .collect();
        self.deliver(deliveries, Action::SourceAdd);
    }

    /// Whether the others are still to be told of `owner`'s return.
    pub(super) fn return_held(&self, owner: &str) -> bool {
        self.moves.owners.contains(owner)
    }

    /// Every participant with a session, with `views` less its own sources (none: left out).
    pub(super) fn receivers(&self, views: &[ReceiverView]) -> Deliveries {
        self.participants
            .iter()
            .filter_map(|(nick, participant)| {
                let session = participant.session.as_ref()?;
                let own = participant.occupant.as_str();
                let views: Vec<ReceiverView> = views
                    .iter()
                    .filter(|view| view.owner() != own)
                    .cloned()
                    .collect();
                (!views.is_empty()).then(|| (nick.clone(), session.sid().to_owned(), views))
            })
            .collect()
    }
}
