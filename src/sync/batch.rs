//! The writes of a pass, batch by batch: a batch's intents (and fresh
//! passwords and activation tokens) journaled first, then its writes, then
//! their outcomes — journaled while the next batch is applied, or, for a
//! backend that holds part of its writes back until the end of the run
//! ([`Backend::holds`]), once that part is sent too.

use super::pipeline::Pass;
use super::resume::Progress;
use super::writes::Writes;
use super::SyncError;
use crate::backend::{Backend, Op, OpResult};
use crate::core::plan::ChangeKind;
use crate::core::report::item_message;
use crate::core::{Outcome, Plan, PlanItem, Roster, Secret, Verdict};
use crate::journal::{ItemId, OutcomeRecord};
use tracing::{info, warn};

/// How the writes of a pass ended.
pub(super) enum Applied {
    /// All sent; the target's failure, when it failed part way.
    Through(Option<String>),
    /// Asked to stop between batches.
    Stopped,
}

impl Pass<'_> {
    /// The writes of `todo`, batch by batch; between batches the pass may
    /// be asked to stop. While a batch is applied, the journal takes the
    /// previous batch's outcomes and the next batch's intents, so the
    /// target and the journal work at once (each intent is still journaled
    /// before its write). What the backend held back is sent at the end
    /// (or before stopping).
    pub(super) async fn apply_all<'o>(
        &self,
        backend: &dyn Backend,
        todo: &[usize],
        parts: (&Plan, &Roster, &Writes),
        fresh: &[bool],
        op: &impl Fn(usize) -> Op<'o>,
        p: &mut Progress,
    ) -> Result<Applied, SyncError> {
        let (plan, roster, writes) = parts;
        let mut target_error: Option<String> = None;
        // Writes whose outcome waits for the backend's held-back part.
        let mut held = Vec::new();
        // Writes made whose outcomes are not journaled yet.
        let mut made: Vec<(usize, OpResult)> = Vec::new();
        let chunks: Vec<&[usize]> = todo.chunks(backend.batch_size().max(1)).collect();
        // Whether the current batch's intents are journaled already.
        let mut intended = false;
        for (k, chunk) in chunks.iter().enumerate() {
            if let Some(e) = &target_error {
                let why = format!(
                    "not applied: the target failed earlier in this run ({e}); the run resumes when it is back"
                );
                fail(p, chunk.iter().copied(), &why);
                continue;
            }
            if (self.ctx.stop)() {
                info!("Stopping between batches; the run resumes on restart.");
                self.record(std::mem::take(&mut made), plan, roster, writes, p).await?;
                let _ = self.flush(backend, &mut held, parts, p).await?;
                return Ok(Applied::Stopped);
            }
            if !intended {
                self.intend(chunk, parts, fresh, p).await?;
            }
            let next = chunks.get(k + 1).copied();
            let done = std::mem::take(&mut made);
            let journal = async {
                self.record(done, plan, roster, writes, p).await?;
                if let Some(next) = next {
                    self.intend(next, parts, fresh, p).await?;
                }
                Ok::<(), SyncError>(())
            };
            let ops: Vec<Op<'_>> = chunk.iter().map(|&i| op(i)).collect();
            let (applied, journaled) = tokio::join!(backend.apply(&ops), journal);
            journaled?;
            intended = next.is_some();
            match applied {
                Ok(r) if backend.holds() => held.extend(chunk.iter().copied().zip(r)),
                Ok(r) => made = chunk.iter().copied().zip(r).collect(),
                Err(e) => {
                    let e = e.to_string();
                    warn!(error = ?e, "Target failed during apply; remaining writes not made.");
                    fail(p, chunk.iter().copied(), &gone(&e));
                    target_error = Some(e);
                }
            }
        }
        self.record(made, plan, roster, writes, p).await?;
        match &target_error {
            // What was held back is not sent to a target that failed (nor
            // by a daemon that lost the run): a resumed pass plans it afresh.
            Some(e) => fail(p, held.iter().map(|(i, _)| *i), &gone(e)),
            None => {
                if let Err(e) = self.flush(backend, &mut held, parts, p).await? {
                    warn!(error = ?e, "Target failed while sending the run's group memberships.");
                    target_error = Some(e);
                }
            }
        }
        Ok(Applied::Through(target_error))
    }

    /// Before a batch is sent: its intents (and fresh passwords and
    /// activation tokens) journaled.
    async fn intend(
        &self,
        chunk: &[usize],
        (plan, roster, writes): (&Plan, &Roster, &Writes),
        fresh: &[bool],
        p: &Progress,
    ) -> Result<(), SyncError> {
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
        self.ctx.journal.record_intent(self.run.id, &intents, &secrets).await?;
        Ok(())
    }

    /// The outcomes of sent writes, journaled.
    pub(super) async fn record(
        &self,
        sent: Vec<(usize, OpResult)>,
        plan: &Plan,
        roster: &Roster,
        writes: &Writes,
        p: &mut Progress,
    ) -> Result<(), SyncError> {
        if sent.is_empty() {
            return Ok(());
        }
        let done: Vec<(usize, Outcome)> = sent
            .into_iter()
            .map(|(i, r)| (i, writes.outcome(i, r, &plan.items[i].change)))
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
        self.ctx.journal.record_outcomes(self.run.id, &recs).await?;
        for ((i, o), t) in done.into_iter().zip(texts) {
            p.outcomes[i] = Some(o);
            p.messages[i] = Some(t);
        }
        Ok(())
    }

    /// Send what the backend held back of the `held` writes (LDAP: the
    /// members they add to groups, one modify per group for the run) and
    /// journal their outcomes. `Err(e)`: the target failed; none of them is
    /// confirmed (a resumed pass plans them afresh against the target).
    pub(super) async fn flush(
        &self,
        backend: &dyn Backend,
        held: &mut Vec<(usize, OpResult)>,
        (plan, roster, writes): (&Plan, &Roster, &Writes),
        p: &mut Progress,
    ) -> Result<Result<(), String>, SyncError> {
        if held.is_empty() {
            return Ok(Ok(()));
        }
        let sent = std::mem::take(held);
        let problems = match backend.flush().await {
            Ok(problems) => problems,
            Err(e) => {
                let e = e.to_string();
                fail(p, sent.iter().map(|(i, _)| *i), &gone(&e));
                return Ok(Err(e));
            }
        };
        let mut problems = problems.into_iter();
        let sent = sent
            .into_iter()
            .map(|(i, r)| match (r, problems.next().flatten()) {
                (r, None) => (i, r),
                (Ok(()), Some(why)) => (i, Err(why)),
                (Err(e), Some(why)) => (i, Err(format!("{e}; {why}"))),
            })
            .collect();
        self.record(sent, plan, roster, writes, p).await?;
        Ok(Ok(()))
    }

    pub(super) fn message(&self, item: &PlanItem, o: &Outcome, roster: &Roster, known: Option<&str>) -> String {
        match known {
            Some(m) => m.to_string(),
            None => item_message(item, o, roster, &self.lp.policy),
        }
    }
}

/// Why writes failed with the target as a whole.
fn gone(e: &str) -> String {
    format!("target error: {e}; the run resumes when the target is back")
}

/// Items that failed without a write confirmed: their outcome is not
/// journaled (a resumed pass plans them afresh).
fn fail(p: &mut Progress, items: impl Iterator<Item = usize>, why: &str) {
    for i in items {
        p.outcomes[i] = Some(Outcome::new(Verdict::Failed, Some(why.to_string())));
    }
}
