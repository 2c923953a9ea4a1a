//! Next night's churn: how many adds, updates and leavers, and which rows they fall on.

use super::people::Generator;
use super::rng::{Rng, Stream};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Change {
    None,
    Update,
    Leaver,
}

/// How many of each change the next night gets, fixed before any output is written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct ChurnPlan {
    pub(super) adds: u64,
    pub(super) updates: u64,
    pub(super) leavers: u64,
    /// Base rows eligible for updates/leaving (i.e. not already leavers).
    pub(super) eligible: u64,
}

impl ChurnPlan {
    pub(super) fn new(gen: &Generator, rows: u64, pct: f64) -> ChurnPlan {
        let target = (rows as f64 * pct / 100.0).round() as u64;
        let eligible = if gen.leaver_percent > 0.0 {
            (0..rows).filter(|&i| !gen.is_base_leaver(i)).count() as u64
        } else {
            rows
        };
        let updates = (target / 3).min(eligible);
        let leavers = (target / 3).min(eligible - updates);
        ChurnPlan {
            adds: target - 2 * (target / 3),
            updates,
            leavers,
            eligible,
        }
    }
}

/// Streams the churn selection in index order using Knuth's selection sampling
/// (Algorithm S): each eligible row is picked with probability needed/remaining, which
/// yields exactly the planned counts, uniformly spread, in one pass and O(1) memory.
pub(super) struct ChurnSelector {
    rng: Rng,
    pool_left: u64,
    updates_left: u64,
    leavers_left: u64,
}

impl ChurnSelector {
    pub(super) fn new(seed: u64, plan: &ChurnPlan) -> ChurnSelector {
        ChurnSelector {
            rng: Rng::new(seed, Stream::Churn, 0),
            pool_left: plan.eligible,
            updates_left: plan.updates,
            leavers_left: plan.leavers,
        }
    }

    /// Must be called for every base row in index order.
    pub(super) fn next(&mut self, eligible: bool) -> Change {
        if !eligible || self.pool_left == 0 {
            return Change::None;
        }
        let needed = self.updates_left + self.leavers_left;
        let pool = self.pool_left;
        self.pool_left -= 1;
        if needed == 0 || self.rng.below(pool) >= needed {
            return Change::None;
        }
        if self.rng.below(needed) < self.updates_left {
            self.updates_left -= 1;
            Change::Update
        } else {
            self.leavers_left -= 1;
            Change::Leaver
        }
    }
}
