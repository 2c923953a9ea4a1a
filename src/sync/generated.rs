//! Generated values in a run: the run's journaled values put back into
//! its rows before planning, then new ones for the plan's new accounts,
//! journaled before any write uses them (a preview journals them too, but
//! hands nothing out: `check` shows the values `apply` will use).

use super::SyncError;
use crate::core::generate::{assign, restore, Journaled};
use crate::core::{Plan, Policy, Roster, Snapshot};
use crate::journal::{Journal, RunRecord};

/// Put run's journaled values back into its rows (before planning).
pub(super) async fn restore_generated(
    journal: &Journal,
    run: &RunRecord,
    roster: &mut Roster,
    policy: &Policy,
) -> Result<Journaled, SyncError> {
    if policy.generators().is_empty() {
        return Ok(Journaled::new());
    }
    let own = journal.generated(run.id).await?;
    restore(roster, &own, policy);
    Ok(own)
}

/// Generate the plan's missing values and journal them.
pub(super) async fn assign_generated(
    journal: &Journal,
    run: &RunRecord,
    (roster, plan): (&mut Roster, &mut Plan),
    snapshot: &Snapshot,
    policy: &Policy,
    own: &Journaled,
) -> Result<(), SyncError> {
    if policy.generators().is_empty() {
        return Ok(());
    }
    let taken = journal.taken(&run.target, run.id).await?;
    let fresh = assign(roster, plan, snapshot, policy, taken, own);
    if !fresh.is_empty() {
        journal.record_generated(run.id, &fresh).await?;
    }
    Ok(())
}
