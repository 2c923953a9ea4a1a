//! [`drive`]: the one run loop. Whoever started the run — `check`, `apply`,
//! the daemon, an approval — it goes: read the journaled file → parse →
//! read the target → plan (or merge with the journaled plan) → guard →
//! apply in batches, each write's intent journaled before it is made and its
//! outcome after, generated passwords journaled (sealed) before use →
//! results file → mails → the run's state.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tracing::{info, warn};

use super::mails::{self, MailOut};
use super::results::{default_results_path, write_atomically, write_refusal};
use super::resume::{self, Progress};
use super::target::{generate_password, open_backend, OpenError};
use super::writes::Writes;
use super::{RunReport, SyncError};
use crate::backend::{Backend, Op};
use crate::clock::now_ms;
use crate::config::{Config, LoadedPolicy};
use crate::core::report::{item_message, write_results_with};
use crate::core::{parse_roster, plan, ChangeKind, FileError, Outcome, PlanOptions, Secret, Summary, Verdict};
use crate::journal::{Approval, Decision, ItemId, Journal, OutcomeRecord, RunRecord, RunState, Terminal};

/// What a run needs from its caller.
pub struct Ctx<'a> {
    pub config: &'a Config,
    pub journal: &'a Journal,
    /// The outbox, when `[mail]` is configured.
    pub mail: Option<MailOut<'a>>,
    /// Checked between batches: stop cleanly (the run resumes later).
    pub stop: &'a (dyn Fn() -> bool + Send + Sync),
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

/// Read the run's file and check it is the file the run started with.
pub(super) fn read_file(run: &RunRecord, path: &Path) -> Result<Vec<u8>, SyncError> {
    let bytes = std::fs::read(path).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => SyncError::FileGone {
            id: run.id,
            path: path.to_path_buf(),
        },
        _ => SyncError::FileRead {
            id: run.id,
            path: path.to_path_buf(),
            source,
        },
    })?;
    if hex::encode(Sha256::digest(&bytes)) != run.sha256 {
        return Err(SyncError::FileChanged {
            id: run.id,
            path: path.to_path_buf(),
        });
    }
    Ok(bytes)
}

/// Drive run `id` (journaled before) through the pipeline, from wherever it is.
pub async fn drive(ctx: &Ctx<'_>, id: i64) -> Result<Finish, SyncError> {
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
    let bytes = read_file(&run, &path)?;
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
    pass.go(&bytes).await
}

/// One pass over a run.
struct Pass<'a> {
    ctx: &'a Ctx<'a>,
    lp: &'a LoadedPolicy,
    run: &'a RunRecord,
    results: PathBuf,
    preview: bool,
    /// The seed of this pass's Message-IDs.
    mail_id: String,
    /// The latest approval of the run, when there is one.
    approval: Option<Approval>,
}

impl Pass<'_> {
    fn report(&self, state: RunState) -> RunReport {
        RunReport {
            run_id: self.run.id,
            state,
            summary: Summary::default(),
            results: self.results.clone(),
            file_error: None,
            breaches: Vec::new(),
            approve_hint: None,
            warnings: Vec::new(),
            target_error: None,
            credentials: Vec::new(),
            mails_queued: 0,
            mail_notes: Vec::new(),
        }
    }

    /// The target could not be read: the same results file and state
    /// whoever started the run; it resumes when the target is back.
    async fn target_down(&self, bytes: &[u8], e: String) -> Result<Finish, SyncError> {
        warn!(error = ?e, "Target unavailable; nothing written. The run resumes when it is back.");
        let why = FileError::target(format!(
            "{e}; nothing was written, run the file again when the target is back"
        ));
        // A run that already wrote keeps its results file: it says what was
        // done; the rows still open resume when the target is back.
        let wrote = !self.ctx.journal.items(self.run.id).await?.is_empty() && self.results.exists();
        if !wrote {
            write_refusal(bytes, &self.lp.policy, &self.results, &why)?;
        }
        let mut report = self.report(if self.preview {
            RunState::Preview
        } else {
            RunState::Failed
        });
        report.target_error = Some(e);
        self.end(report).await
    }

    async fn go(&self, bytes: &[u8]) -> Result<Finish, SyncError> {
        let (journal, run, policy) = (self.ctx.journal, self.run, &self.lp.policy);
        let started = std::time::Instant::now();
        let roster = match parse_roster(bytes, policy) {
            Ok(r) => r,
            Err(e) => {
                warn!(reason = ?e.to_string(), "File rejected as a whole; nothing written.");
                write_refusal(bytes, policy, &self.results, &e)?;
                let mut report = self.report(if self.preview {
                    RunState::Preview
                } else {
                    RunState::Rejected
                });
                report.file_error = Some(e);
                return self.end(report).await;
            }
        };
        let parse_ms = started.elapsed().as_millis() as u64;
        if run.state == RunState::Claimed {
            for old in journal.supersede_waiting(run).await? {
                info!(superseded = old, "A newer file supersedes a run awaiting approval.");
            }
        }
        let t = std::time::Instant::now();
        let backend = match open_backend(self.ctx.config, self.lp).await {
            Ok(b) => b,
            Err(OpenError::Config(m)) => return Err(SyncError::Config(m)),
            Err(OpenError::Target(e)) => return self.target_down(bytes, e.to_string()).await,
        };
        let snapshot = match backend.snapshot().await {
            Ok(s) => s,
            Err(e) => return self.target_down(bytes, e.to_string()).await,
        };
        let snapshot_ms = t.elapsed().as_millis() as u64;

        let records = journal.items(run.id).await?;
        let resuming = !records.is_empty();
        let t = std::time::Instant::now();
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
            // What a run changes, rejects or holds is journaled; an unchanged
            // row or an ignored absent account is not (100k of them cost a
            // quarter of a second a night): a resumed pass plans it afresh
            // and, finding it still needs nothing, reports it unchanged.
            records.retain(|r| !matches!(r.change, ChangeKind::Unchanged | ChangeKind::Absent));
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
        let writes = Writes::prepare(&plan, &roster, policy, |i| {
            let known = sealed.remove(&p.ids[i]);
            if p.outcomes[i].is_some() {
                return known;
            }
            fresh[i] = known.is_none() && !self.preview;
            Some(known.unwrap_or_else(|| generate_password(policy)))
        });
        let todo: Vec<usize> = (0..n).filter(|&i| p.outcomes[i].is_none()).collect();
        let op = |i: usize| writes.op(i, &plan, &roster, &snapshot, run.claimed_at.div_euclid(1000));
        let t = std::time::Instant::now();
        let mut target_error = None;
        if self.preview {
            // The backend's dry-run checks say what the real run would fail on.
            let ops: Vec<Op<'_>> = todo.iter().map(|&i| op(i)).collect();
            let problems = match backend.validate(&ops).await {
                Ok(p) => p,
                Err(e) => return self.target_down(bytes, e.to_string()).await,
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
            for chunk in todo.chunks(backend.batch_size().max(1)) {
                if let Some(e) = &target_error {
                    for &i in chunk {
                        p.outcomes[i] = Some(Outcome::new(
                            Verdict::Failed,
                            Some(format!(
                                "not applied: the target failed earlier in this run ({e}); the run resumes when it is back"
                            )),
                        ));
                    }
                    continue;
                }
                if (self.ctx.stop)() {
                    info!("Stopping between batches; the run resumes on restart.");
                    return Ok(Finish::Stopped);
                }
                if let Err(e) = self
                    .batch(backend.as_ref(), chunk, &plan, &roster, &writes, &fresh, &op, &mut p)
                    .await?
                {
                    warn!(error = ?e, "Target failed during apply; remaining writes not made.");
                    for &i in chunk {
                        p.outcomes[i] = Some(Outcome::new(
                            Verdict::Failed,
                            Some(format!("target error: {e}; the run resumes when the target is back")),
                        ));
                    }
                    target_error = Some(e);
                }
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
        write_atomically(&self.results, |w| {
            write_results_with(w, &roster, &plan, &outcomes, policy, &p.messages)
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
        if let Some(note) = self.approval_note(&p, &outcomes) {
            report.warnings.push(note);
        }
        report.target_error = target_error;
        report.credentials = credentials;
        self.end(report).await
    }

    /// Apply one batch: intents (and fresh passwords) journaled first, then
    /// the writes, then their outcomes. `Ok(Err(e))`: the target failed as a
    /// whole; nothing of the batch is confirmed.
    #[allow(clippy::too_many_arguments)]
    async fn batch<'o>(
        &self,
        backend: &dyn Backend,
        chunk: &[usize],
        plan: &crate::core::Plan,
        roster: &crate::core::Roster,
        writes: &Writes,
        fresh: &[bool],
        op: &impl Fn(usize) -> Op<'o>,
        p: &mut Progress,
    ) -> Result<Result<(), String>, SyncError> {
        let journal = self.ctx.journal;
        let intents: Vec<(&ItemId, crate::core::plan::ChangeKind)> = chunk
            .iter()
            .map(|&i| (&p.ids[i], plan.items[i].change.kind()))
            .collect();
        let secrets: Vec<(&ItemId, &Secret)> = chunk
            .iter()
            .filter(|&&i| fresh[i])
            .filter_map(|&i| writes.password(i).map(|pw| (&p.ids[i], pw)))
            .collect();
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

    /// What an approval pass did, for the results mail: who approved what
    /// and when, and how each approved change came out.
    fn approval_note(&self, p: &Progress, outcomes: &[Outcome]) -> Option<String> {
        let a = self.approval.as_ref()?;
        let approved: Vec<&Outcome> = p
            .approved
            .iter()
            .zip(outcomes)
            .filter_map(|(ok, o)| ok.then_some(o))
            .collect();
        if approved.is_empty() {
            return None;
        }
        let applied = approved.iter().filter(|o| o.verdict == Verdict::Done).count();
        let failed = approved.iter().filter(|o| o.verdict == Verdict::Failed).count();
        let skipped = approved.len() - applied - failed;
        let classes: Vec<&str> = a.classes.iter().map(|c| c.as_str()).collect();
        Some(format!(
            "held {} approved by {} at {}: {applied} applied, {skipped} no longer needed or changed since shown (not applied), {failed} failed",
            classes.join(", "),
            a.by,
            crate::clock::timestamp(a.at)
        ))
    }

    fn message(
        &self,
        item: &crate::core::PlanItem,
        o: &Outcome,
        roster: &crate::core::Roster,
        known: Option<&str>,
    ) -> String {
        match known {
            Some(m) => m.to_string(),
            None => item_message(item, o, roster, &self.lp.policy),
        }
    }

    /// The end of a pass: mails (not for a failed pass: it resumes), the
    /// run's state, and the passwords forgotten once their mails are queued.
    async fn end(&self, mut report: RunReport) -> Result<Finish, SyncError> {
        let journal = self.ctx.journal;
        if report.state != RunState::Failed {
            mails::queue(
                self.ctx.mail,
                self.lp,
                self.run,
                &self.mail_id,
                !self.preview,
                &mut report,
            )
            .await;
        }
        let summary = match &report.file_error {
            Some(e) => format!("file rejected: {e}"),
            None if report.target_error.is_some() && report.summary.changes.is_empty() => match &self.run.summary {
                Some(prev) if self.run.state == RunState::Failed => prev.clone(),
                _ => "target unavailable".into(),
            },
            None => report.summary.to_string(),
        };
        let note = report.target_error.clone().or_else(|| report.approve_hint.clone());
        journal
            .mark_state(
                self.run.id,
                &Terminal {
                    state: report.state,
                    summary: &summary,
                    note: note.as_deref(),
                    now_ms: now_ms(),
                },
            )
            .await?;
        if !report.state.resumable() {
            journal.forget_secrets(self.run.id).await?;
        }
        Ok(Finish::Ended(Box::new(report)))
    }
}
