//! [`drive`]: the one run loop. Whoever started the run — `check`, `apply`,
//! the daemon, an approval — it goes: read the journaled file → parse →
//! read the target → plan (or merge with the journaled plan) → guard →
//! apply in batches, each write's intent journaled before it is made and its
//! outcome after, generated passwords journaled (sealed) before use →
//! results file → mails → the run's state.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use tracing::{info, warn};

use super::activation::{new_token, Invitation};
use super::batch::Applied;
use super::file::{read_file, FileBytes};
use super::generated::{assign_generated, restore_generated};
use super::mails::{self, MailOut};
use super::read::{read_both, Inputs, Read};
use super::results::{default_results_path, write_atomically, write_refusal};
use super::resume::{self, Progress};
use super::target::generate_password;
use super::writes::{Fresh, Writes};
use super::{RunReport, SyncError};
use crate::backend::Op;
use crate::clock::now_ms;
use crate::config::{Config, LoadedPolicy};
use crate::core::echo::{Echo, EchoSource};
use crate::core::report::{item_message, write_results_with};
use crate::core::{plan, Outcome, PlanOptions, Secret, Summary, Verdict};
use crate::journal::{Approval, Decision, ItemId, Journal, OutcomeRecord, RunRecord, RunState};

/// What a run needs from its caller.
pub struct Ctx<'a> {
    pub config: &'a Config,
    pub journal: &'a Journal,
    /// The outbox, when `[mail]` is configured.
    pub mail: Option<MailOut<'a>>,
    /// Checked between batches: stop cleanly (the run resumes later).
    pub stop: &'a (dyn Fn() -> bool + Send + Sync),
    /// The process exits when the run ends (a command): the run's rows and
    /// plan are left to the exit, which returns their memory at once,
    /// instead of being freed one by one (25–35 ms for 100k rows).
    pub exits_after: bool,
}

/// How far a pass got.
#[derive(Debug)]
pub enum Finish {
    /// The run ended this pass in `report.state` (done, preview, rejected,
    /// awaiting-approval, or failed when the target failed).
    Ended(Box<RunReport>),
    /// Asked to stop; the batch in flight was finished and journaled.
    Stopped,
}

/// Drive run `id` (journaled before) through the pipeline, from wherever it is.
pub async fn drive(ctx: &Ctx<'_>, id: i64) -> Result<Finish, SyncError> {
    drive_read(ctx, id, None).await
}

/// [`drive`], with the run's file when the caller has just read it: used
/// when its hash is the run's, read again from disk otherwise.
pub async fn drive_read(ctx: &Ctx<'_>, id: i64, read: Option<FileBytes>) -> Result<Finish, SyncError> {
    let run = ctx.journal.run(id).await?.ok_or(SyncError::NoRun(id))?;
    if !(run.state.resumable() || run.state == RunState::Preview) {
        return Err(SyncError::State {
            id,
            state: run.state.as_str(),
            why: "there is nothing left to do; `dirsync runs show` says how it ended".into(),
        });
    }
    let lp = ctx.config.policies.get(&run.policy).ok_or_else(|| {
        SyncError::Config(format!(
            "run {id}: policy {:?} is no longer configured; configure it again to go on",
            run.policy
        ))
    })?;
    let path = run.file_path().to_path_buf();
    let bytes = match read {
        Some(r) if r.sha256 == run.sha256 => r.bytes,
        _ => read_file(&run, &path)?,
    };
    let bytes = Arc::new(bytes);
    let results = run.results.clone().unwrap_or_else(|| default_results_path(&path));
    ctx.journal.mark_started(id, now_ms()).await?;
    let approval = ctx
        .journal
        .approvals(id)
        .await?
        .into_iter()
        .rfind(|a| a.decision == Decision::Approve);
    let pass = Pass {
        ctx,
        lp,
        run: &run,
        results,
        preview: run.state == RunState::Preview,
        mail_id: mails::pass_id(id, approval.as_ref().map(|a| a.seq)),
        approval,
    };
    pass.go(bytes).await
}

/// One pass over a run (its end is in `ending.rs`, a batch in `batch.rs`).
pub(super) struct Pass<'a> {
    pub(super) ctx: &'a Ctx<'a>,
    pub(super) lp: &'a LoadedPolicy,
    pub(super) run: &'a RunRecord,
    pub(super) results: PathBuf,
    pub(super) preview: bool,
    /// The seed of this pass's Message-IDs.
    pub(super) mail_id: String,
    /// The latest approval of the run, when there is one.
    pub(super) approval: Option<Approval>,
}

impl Pass<'_> {
    async fn go(&self, bytes: Arc<Vec<u8>>) -> Result<Finish, SyncError> {
        let (journal, run, policy) = (self.ctx.journal, self.run, &self.lp.policy);
        let inputs = match read_both(self.ctx.config, journal, self.lp, &bytes).await? {
            Read::Ready(inputs) => inputs,
            Read::Rejected(e) => {
                warn!(reason = ?e.to_string(), "File rejected as a whole; nothing written.");
                write_refusal(&bytes, policy, &self.results, &e)?;
                let mut report = self.report(if self.preview {
                    RunState::Preview
                } else {
                    RunState::Rejected
                });
                report.file_error = Some(e);
                return self.end(report).await;
            }
            Read::TargetDown(e) => return self.target_down(&bytes, e).await,
        };
        let Inputs {
            mut roster,
            backend,
            snapshot,
            parse_ms,
            snapshot_ms,
        } = *inputs;
        // The results' echo of the input, rendered on another core meanwhile.
        let source = EchoSource::of(&roster);
        let echo = tokio::task::spawn_blocking(move || Echo::render(&source));
        if run.state == RunState::Claimed {
            for old in journal.supersede_waiting(run).await? {
                info!(superseded = old, "A newer file supersedes a run awaiting approval.");
            }
        }

        let records = journal.items(run.id).await?;
        let resuming = !records.is_empty();
        let t = std::time::Instant::now();
        let own = restore_generated(journal, run, &mut roster, policy).await?;
        let mut plan = plan(
            &roster,
            &snapshot,
            policy,
            run.claimed_at.div_euclid(1000),
            PlanOptions {
                // A resumed run keeps the limits its first plan was checked
                // against (the target now holds part of the run's own writes,
                // which would skew percentages); what they held is journaled.
                allow_over_limit: run.allow_over_limit || resuming,
            },
        );
        assign_generated(journal, run, (&mut roster, &mut plan), &snapshot, policy, &own).await?;
        if !resuming {
            let now = run.claimed_at.div_euclid(1000);
            let found = super::missing::plan_missing(backend.as_ref(), &mut plan, &roster, &snapshot, policy, now);
            if let Err(e) = found.await {
                return self.target_down(&bytes, e.to_string()).await;
            }
        }
        let plan_ms = t.elapsed().as_millis() as u64;
        let t = std::time::Instant::now();
        let breaches = resume::first_breaches(&run.breaches, &plan.breaches, resuming);
        let mut p: Progress = if resuming {
            info!(items = records.len(), "Resuming a journaled run.");
            resume::merge(&mut plan, records, policy)
        } else {
            for b in &breaches {
                warn!(class = b.class.as_str(), count = b.count, "Safety limit exceeded.");
            }
            let (p, mut records) = resume::first(&plan, &roster, policy, run.id, self.preview);
            if self.preview {
                // A write previews fine unless the dry run says otherwise
                // (then its outcome is journaled below).
                for r in records.iter_mut().filter(|r| r.verdict.is_none()) {
                    r.verdict = Some(Verdict::Preview);
                }
            }
            let state = if self.preview {
                RunState::Preview
            } else {
                RunState::Running
            };
            journal.record_plan(run.id, &records, &breaches, state).await?;
            if let (false, Some(due)) = (self.preview, plan.next_due()) {
                // `[lifecycle]`: the daemon runs the inbox's latest file again then.
                journal.set_due(run.id, Some(due.saturating_mul(1000))).await?;
            }
            info!(items = records.len(), "Plan journaled.");
            p
        };
        let journal_ms = t.elapsed().as_millis() as u64;
        let n = plan.items.len();

        // Passwords: the row's, one journaled before an interruption, or
        // new (journaled before it is sent). A finished write keeps its
        // journaled password for the credentials mail. A preview checks the
        // add as it will be made, with a password never shown or stored.
        let mut sealed: HashMap<ItemId, Secret> = if resuming {
            journal.secrets(run.id).await?
        } else {
            HashMap::new()
        };
        let mut fresh = vec![false; n];
        let mut rng_error = None;
        let mut writes = Writes::prepare(&plan, &roster, policy, |i, kind| {
            let known = sealed.remove(&p.ids[i]);
            if p.outcomes[i].is_some() {
                return known;
            }
            fresh[i] = known.is_none() && !self.preview;
            match (known, kind) {
                (Some(k), _) => Some(k),
                (None, Fresh::Password) => Some(generate_password(policy)),
                (None, Fresh::Token) => new_token().map_err(|e| rng_error = Some(e)).ok(),
            }
        });
        if let Some(e) = rng_error {
            return Err(e);
        }
        writes.activation_mail = self.activation_mail();
        let todo: Vec<usize> = (0..n).filter(|&i| p.outcomes[i].is_none()).collect();
        let op = |i: usize| writes.op(i, &plan, &roster, &snapshot, run.claimed_at.div_euclid(1000));
        let t = std::time::Instant::now();
        let mut target_error = None;
        if self.preview {
            // The backend's dry-run checks say what the real run would fail on.
            let ops: Vec<Op<'_>> = todo.iter().map(|&i| op(i)).collect();
            let problems = match backend.validate(&ops).await {
                Ok(p) => p,
                Err(e) => return self.target_down(&bytes, e.to_string()).await,
            };
            for (&i, problem) in todo.iter().zip(problems) {
                p.outcomes[i] = Some(match problem {
                    None => Outcome::new(Verdict::Preview, None),
                    Some(why) => {
                        p.unjournaled.push(i);
                        Outcome::new(Verdict::Failed, Some(format!("would fail: {why}")))
                    }
                });
            }
        } else {
            match self
                .apply_all(backend.as_ref(), &todo, (&plan, &roster, &writes), &fresh, &op, &mut p)
                .await?
            {
                Applied::Through(e) => target_error = e,
                Applied::Stopped => return Ok(Finish::Stopped),
            }
        }
        let apply_ms = t.elapsed().as_millis() as u64;
        let outcomes: Vec<Outcome> = p
            .outcomes
            .iter()
            .map(|o| {
                o.clone()
                    .unwrap_or_else(|| Outcome::new(Verdict::Skipped, Some("not processed".into())))
            })
            .collect();
        // Decided here without a write: journaled now.
        if !p.unjournaled.is_empty() {
            let texts: Vec<String> = p
                .unjournaled
                .iter()
                .map(|&i| self.message(&plan.items[i], &outcomes[i], &roster, p.messages[i].as_deref()))
                .collect();
            let recs: Vec<OutcomeRecord<'_>> = p
                .unjournaled
                .iter()
                .zip(&texts)
                .map(|(&i, t)| OutcomeRecord {
                    id: &p.ids[i],
                    change: plan.items[i].change.kind(),
                    verdict: outcomes[i].verdict,
                    message: t,
                })
                .collect();
            journal.record_outcomes(run.id, &recs).await?;
            for (&i, t) in p.unjournaled.iter().zip(texts) {
                p.messages[i] = Some(t);
            }
        }
        for (i, item) in plan.items.iter().enumerate() {
            if p.messages[i].is_none() && outcomes[i].verdict == Verdict::Held {
                let m = item_message(item, &outcomes[i], &roster, policy);
                p.messages[i] = Some(format!("{m}; {}", resume::approve_how(run.id, item)));
            }
        }
        let credentials = writes.credentials(&plan, &roster, policy, &outcomes);
        let invitations = writes
            .activations(&plan, &roster, policy, &outcomes)
            .into_iter()
            .map(|(i, key, email, token)| Invitation {
                created: matches!(plan.items[i].change, crate::core::Change::Add),
                ident: p.ids[i].to_string(),
                key: key.as_str().to_string(),
                email,
                token: token.clone(),
            })
            .collect();
        let echo = echo.await.map_err(|e| SyncError::Results {
            path: self.results.clone(),
            source: std::io::Error::other(e),
        })?;
        let echo = echo.map_err(|source| SyncError::Results {
            path: self.results.clone(),
            source,
        })?;
        write_atomically(&self.results, |w| {
            write_results_with(w, &roster, (&plan, &outcomes), policy, &p.messages, Some(&echo))
        })?;
        let summary = Summary::of(&plan, &outcomes);
        let held = summary.verdict(Verdict::Held) > 0;
        let state = match (self.preview, &target_error, held) {
            (true, _, _) => RunState::Preview,
            (false, Some(_), _) => RunState::Failed,
            (false, None, true) => RunState::AwaitingApproval,
            (false, None, false) => RunState::Done,
        };
        info!(
            rows = roster.entries.len(),
            accounts = snapshot.len(),
            parse_ms,
            snapshot_ms,
            plan_ms,
            journal_ms,
            apply_ms,
            summary = %summary,
            state = state.as_str(),
            "Run pass finished."
        );
        let mut report = self.report(state);
        report.summary = summary;
        report.approve_hint = (state == RunState::AwaitingApproval).then(|| {
            format!(
                "held changes wait for approval: review them with `dirsync runs show {id}`, then \
                 `dirsync runs approve {id}` (or `--class CLASS`) to apply exactly those, or \
                 `dirsync runs reject {id}`",
                id = run.id
            )
        });
        report.breaches = breaches;
        report.warnings = roster.warnings.clone();
        if let Some(of) = journal.schedule(run.id).await?.rerun_of {
            // The submitter did not send this file today: say why it ran.
            report.warnings.push(format!(
                "a scheduled run: changes that run {of} scheduled ([lifecycle] start and end dates) fell due, \
                 so the inbox's latest file ran again"
            ));
        }
        if let Some(note) = self.approval_note(&p, &outcomes) {
            report.warnings.push(note);
        }
        report.target_error = target_error;
        report.credentials = credentials;
        report.invitations = invitations;
        // The rows, the accounts and the plan: 100k rows took 25–35 ms to
        // free, on the run's critical path. A command leaves them to its
        // exit; the daemon frees them on a blocking thread meanwhile.
        let rows = (roster, snapshot, plan, outcomes, p, writes, echo, bytes);
        if self.ctx.exits_after {
            std::mem::forget(rows);
        } else {
            drop(tokio::task::spawn_blocking(move || drop(rows)));
        }
        self.end(report).await
    }
}
