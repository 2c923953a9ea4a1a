//! One batch of writes: intents (and fresh passwords and activation tokens)
//! journaled first, then the writes, then their outcomes.

use super::pipeline::Pass;
use super::resume::Progress;
use super::writes::Writes;
use super::SyncError;
use crate::backend::{Backend, Op};
use crate::core::plan::ChangeKind;
use crate::core::report::item_message;
use crate::core::{Outcome, Plan, PlanItem, Roster, Secret};
use crate::journal::{ItemId, OutcomeRecord};

impl Pass<'_> {
    /// Apply one batch: intents (and fresh passwords) journaled first, then
    /// the writes, then their outcomes. `Ok(Err(e))`: the target failed as a
    /// whole; nothing of the batch is confirmed.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn batch<'o>(
        &self,
        backend: &dyn Backend,
        chunk: &[usize],
        plan: &Plan,
        roster: &Roster,
        writes: &Writes,
        fresh: &[bool],
        op: &impl Fn(usize) -> Op<'o>,
        p: &mut Progress,
    ) -> Result<Result<(), String>, SyncError> {
        let journal = self.ctx.journal;
        let intents: Vec<(&ItemId, ChangeKind)> = chunk
            .iter()
            .map(|&i| (&p.ids[i], plan.items[i].change.kind()))
            .collect();
        let secrets: Vec<(&ItemId, &Secret)> = chunk
            .iter()
            .filter(|&&i| fresh[i])
            .filter_map(|&i| writes.sealed(i).map(|pw| (&p.ids[i], pw)))
            .collect();
        self.issue_tokens(chunk, plan, roster, writes, fresh, p).await?;
        journal.record_intent(self.run.id, &intents, &secrets).await?;
        let ops: Vec<Op<'_>> = chunk.iter().map(|&i| op(i)).collect();
        let res = match backend.apply(&ops).await {
            Ok(r) => r,
            Err(e) => return Ok(Err(e.to_string())),
        };
        let done: Vec<(usize, Outcome)> = chunk
            .iter()
            .zip(res)
            .map(|(&i, r)| (i, writes.outcome(i, r, &plan.items[i].change)))
            .collect();
        let texts: Vec<String> = done
            .iter()
            .map(|(i, o)| {
                let m = item_message(&plan.items[*i], o, roster, &self.lp.policy);
                if p.approved[*i] {
                    format!("{m}; approved")
                } else {
                    m
                }
            })
            .collect();
        let recs: Vec<OutcomeRecord<'_>> = done
            .iter()
            .zip(&texts)
            .map(|((i, o), t)| OutcomeRecord {
                id: &p.ids[*i],
                change: plan.items[*i].change.kind(),
                verdict: o.verdict,
                message: t,
            })
            .collect();
        journal.record_outcomes(self.run.id, &recs).await?;
        for ((i, o), t) in done.into_iter().zip(texts) {
            p.outcomes[i] = Some(o);
            p.messages[i] = Some(t);
        }
        Ok(Ok(()))
    }

    pub(super) fn message(&self, item: &PlanItem, o: &Outcome, roster: &Roster, known: Option<&str>) -> String {
        match known {
            Some(m) => m.to_string(),
            None => item_message(item, o, roster, &self.lp.policy),
        }
    }
}
