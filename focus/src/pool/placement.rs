//! Which bridge a new conference goes to: the least-stressed bridge in the best tier that has
//! one — in the conference's region if a bridge there is in that tier, else anywhere.

use super::BridgeId;

/// How willing the pool is to place a conference on a bridge, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Tier {
    /// Operational, heard from lately, not in a back-off after a failure.
    Ready,
    /// Operational again after a failure, still within its back-off: used only when no bridge
    /// is ready.
    Recovering,
    /// Never heard from yet (just configured or discovered).
    Unheard,
    /// Failed: tried only when nothing else is left (a one-bridge pool keeps asking it, as a
    /// focus with a single bridge always did).
    Failed,
}

/// A bridge that may take a conference.
#[derive(Debug, Clone)]
pub(super) struct Candidate<'a> {
    pub(super) id: &'a BridgeId,
    pub(super) region: &'a str,
    /// Its reported stress plus the padding for endpoints placed there and not yet reported.
    pub(super) stress: f64,
    pub(super) tier: Tier,
}

/// The bridge for a conference whose first participant is in `region` (empty: none): within
/// the best tier present, the least stressed in `region` if there is one there, else the least
/// stressed of the tier. Ties go to the first candidate.
pub(super) fn choose<'a>(candidates: &[Candidate<'a>], region: &str) -> Option<&'a BridgeId> {
    let tier = candidates.iter().map(|c| c.tier).min()?;
    let in_tier = || candidates.iter().filter(move |c| c.tier == tier);
    let local = !region.is_empty() && in_tier().any(|c| c.region == region);
    in_tier()
        .filter(|c| !local || c.region == region)
        .fold(None::<&Candidate<'a>>, |best, c| match best {
            Some(best) if best.stress <= c.stress => Some(best),
            _ => Some(c),
        })
        .map(|c| c.id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> Vec<BridgeId> {
        ["a", "b", "c", "d"].map(|n| BridgeId(n.into())).to_vec()
    }

    fn candidate<'a>(id: &'a BridgeId, region: &'a str, stress: f64, tier: Tier) -> Candidate<'a> {
        Candidate {
            id,
            region,
            stress,
            tier,
        }
    }

    #[test]
    fn the_least_stressed_in_the_region_else_anywhere() {
        let ids = ids();
        let candidates = [
            candidate(&ids[0], "eu", 0.5, Tier::Ready),
            candidate(&ids[1], "eu", 0.3, Tier::Ready),
            candidate(&ids[2], "us", 0.1, Tier::Ready),
        ];
        assert_eq!(choose(&candidates, "eu"), Some(&ids[1]));
        assert_eq!(choose(&candidates, "us"), Some(&ids[2]));
        assert_eq!(choose(&candidates, "ap"), Some(&ids[2]), "no bridge in ap");
        assert_eq!(choose(&candidates, ""), Some(&ids[2]));
    }

    #[test]
    fn a_better_tier_wins_over_the_region_and_stress() {
        let ids = ids();
        let candidates = [
            candidate(&ids[0], "eu", 0.0, Tier::Recovering),
            candidate(&ids[1], "us", 0.9, Tier::Ready),
            candidate(&ids[2], "eu", 0.0, Tier::Failed),
        ];
        assert_eq!(choose(&candidates, "eu"), Some(&ids[1]));
        assert_eq!(choose(&candidates[..1], "eu"), Some(&ids[0]));
        assert_eq!(choose(&candidates[2..], "eu"), Some(&ids[2]));
        assert_eq!(choose(&[], "eu"), None);
    }

    #[test]
    fn ties_go_to_the_first() {
        let ids = ids();
        let candidates = [
            candidate(&ids[0], "", 0.2, Tier::Ready),
            candidate(&ids[1], "", 0.2, Tier::Ready),
        ];
        assert_eq!(choose(&candidates, ""), Some(&ids[0]));
    }
}
