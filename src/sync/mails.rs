//! A run's mails — results to its submitter, credentials or activation links
//! to new users —
//! queued in the outbox when the run ends a pass. Enqueueing is idempotent
//! per pass (stable Message-IDs), so a resumed run queues nothing twice.

use tracing::{error, info, warn};

use super::{activation, RunReport};
use crate::config::{Config, LoadedPolicy};
use crate::journal::{Journal, RunRecord};
use crate::mail::{MailConfig, Outbox};

/// Where a run's mails go: the outbox, and who to wake once they are queued.
#[derive(Clone, Copy)]
pub struct MailOut<'a> {
    pub cfg: &'a MailConfig,
    pub outbox: &'a Outbox,
    pub wake: &'a (dyn Fn() + Send + Sync),
}

/// The Message-ID seed of a run's pass: the first pass, or the approval `seq`.
pub(super) fn pass_id(run: i64, approval: Option<i64>) -> String {
    match approval {
        None => format!("run-{run}"),
        Some(seq) => format!("run-{run}-approval-{seq}"),
    }
}

/// Queue the run's mails; failures are noted in the report and logged,
/// never fatal (the run's writes are done and its results file exists).
#[allow(clippy::too_many_arguments)]
pub(super) async fn queue(
    config: &Config,
    journal: &Journal,
    mail: Option<MailOut<'_>>,
    lp: &LoadedPolicy,
    run: &RunRecord,
    pass: &str,
    apply: bool,
    report: &mut RunReport,
) {
    let Some(m) = mail else {
        if !report.invitations.is_empty() {
            let note = format!(
                "{} activation link(s) were mailed to nobody: there is no [mail] section; \
                 configure mail, then `dirsync activation resend KEY`",
                report.invitations.len()
            );
            warn!(invitations = report.invitations.len(), "{note}");
            report.mail_notes.push(note);
        }
        if !report.credentials.is_empty() {
            let note = format!(
                "{} generated password(s) were mailed to nobody: there is no [mail] section; \
                 configure mail, then reset those users' passwords",
                report.credentials.len()
            );
            warn!(credentials = report.credentials.len(), "{note}");
            report.mail_notes.push(note);
        }
        return;
    };
    if run.submitter.is_none() && report.credentials.is_empty() && report.invitations.is_empty() {
        return;
    }
    let hours = lp.policy.passwords.activation_valid_hours;
    let invites = match activation::invites(config, journal, run.id, hours, &report.invitations).await {
        Ok(i) => i,
        Err(e) => {
            error!(error = %e, "Cannot read this run's activation links; their mails are not queued.");
            report
                .mail_notes
                .push(format!("the activation mails of this run were not queued: {e}"));
            Vec::new()
        }
    };
    let facts = report.mail_facts(pass, &run.file_name, &lp.name, apply);
    let users = report.new_users();
    let now = crate::clock::now_unix();
    let queued = async {
        let mut tx = m.outbox.pool().begin().await.map_err(|e| e.to_string())?;
        let mails = crate::mail::enqueue_run(
            &mut tx,
            m.outbox.key(),
            m.cfg,
            lp,
            &facts,
            run.submitter.as_deref(),
            &users,
            now,
        )
        .await?;
        let mut invited =
            crate::mail::enqueue_activations(&mut tx, m.outbox.key(), m.cfg, lp.into(), &lp.name, pass, &invites, now)
                .await?;
        tx.commit().await.map_err(|e| e.to_string())?;
        let mut mails = mails;
        mails.mails.append(&mut invited.mails);
        mails.notes.append(&mut invited.notes);
        Ok::<_, String>(mails)
    }
    .await;
    match queued {
        Ok(q) => {
            for n in &q.notes {
                warn!(note = ?n, "Mail note.");
            }
            info!(mails = q.mails.len(), "Mails queued.");
            report.mails_queued = q.mails.len();
            report.mail_notes.extend(q.notes);
            (m.wake)();
        }
        Err(e) => {
            error!(
                error = ?e,
                credentials = report.credentials.len(),
                "Cannot queue this run's mails; the generated passwords reached nobody. Fix the outbox, then reset those users' passwords."
            );
            report
                .mail_notes
                .push(format!("the mails of this run were not queued: {e}"));
        }
    }
}
