//! The end of a pass: its report, what an approval did, a target that
//! could not be read, and the run's state, mails and forgotten passwords.

use tracing::warn;

use super::mails;
use super::pipeline::{Finish, Pass};
use super::results::write_refusal;
use super::resume::Progress;
use super::{RunReport, SyncError};
use crate::clock::now_ms;
use crate::core::{FileError, Outcome, Summary, Verdict};
use crate::journal::{RunState, Terminal};

impl Pass<'_> {
    pub(super) fn report(&self, state: RunState) -> RunReport {
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
            invitations: Vec::new(),
            mails_queued: 0,
            mail_notes: Vec::new(),
        }
    }

    /// The target could not be read: the same results file and state
    /// whoever started the run; it resumes when the target is back.
    pub(super) async fn target_down(&self, bytes: &[u8], e: String) -> Result<Finish, SyncError> {
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

    /// What an approval pass did, for the results mail: who approved what
    /// and when, and how each approved change came out.
    pub(super) fn approval_note(&self, p: &Progress, outcomes: &[Outcome]) -> Option<String> {
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

    /// The end of a pass: mails (not for a failed pass: it resumes), the
    /// run's state, and the passwords forgotten once their mails are queued.
    pub(super) async fn end(&self, mut report: RunReport) -> Result<Finish, SyncError> {
        let journal = self.ctx.journal;
        if report.state != RunState::Failed {
            mails::queue(
                self.ctx.config,
                journal,
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
        let counts = serde_json::json!({
            "changes": report.summary.changes,
            "verdicts": report.summary.verdicts,
        })
        .to_string();
        journal
            .mark_state(
                self.run.id,
                &Terminal {
                    state: report.state,
                    summary: &summary,
                    counts: Some(&counts),
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
