//! Mail: the results of each run to its submitter, generated passwords to
//! new users, through a durable outbox in the journal database.
//!
//! - [`config`]: `[mail]` in dirsync.toml ([`MailConfig`]) and in a policy ([`PolicyMail`]).
//! - [`templates`]: minijinja templates, built-in defaults from `config/templates/`.
//! - [`compose`]: a run's mails, formatted, with stable Message-IDs.
//! - [`activation`]: activation mails (a one-time link instead of a password).
//! - [`outbox`]: the table, `enqueue` (inside the journal's transaction), delivery with retry.
//! - [`transport`]: SMTP / `.eml` files; SMTP errors turned into advice.
//!
//! Wiring into the journal and the daemon:
//! 1. When the journal opens (same database, `{state_dir}/journal.db` by
//!    default): `outbox::create_tables(&mut conn)`, and once
//!    `BodyKey::load_or_create(cfg.key_file)` (the key that seals bodies).
//! 2. In the run-completion transaction: `enqueue_run(&mut *tx, &key, cfg,
//!    lp, &RunFacts{..}, Some(inbox.submitter), &users, now)` (`lp`: a
//!    `&LoadedPolicy`, or a [`MailPolicy`]). Idempotent per
//!    run id (the Message-ID is the primary key), so a resumed run that
//!    completes again queues nothing twice.
//! 3. Beside the inbox watchers: `outbox::run_sender(outbox, Mailer::from_config(cfg)?,
//!    deliver_options(cfg, false), wake, poll, shutdown)`; `wake.notify_one()`
//!    after each commit that queued mail.

pub mod activation;
pub mod compose;
pub mod config;
mod crypto;
mod deliver;
pub mod outbox;
pub mod templates;
pub mod transport;

use std::path::{Path, PathBuf};

pub use activation::{activation_send_time, enqueue_activations, Invite};
pub use compose::{mails_for_run, NewUser, RunFacts, RunMails};
pub use config::{MailConfig, PolicyMail, TlsMode, TransportKind};
pub use crypto::BodyKey;
pub use outbox::{DeliverOptions, NewMail, Outbox};
pub use templates::{TemplateError, Templates};
pub use transport::Mailer;

/// What mail needs of a policy: its `[mail]` section and where its file is
/// (template paths are relative to that file's folder). `config` makes one
/// from a `LoadedPolicy` (`From<&LoadedPolicy>`), so mail never imports
/// `config`.
#[derive(Clone, Copy, Debug)]
pub struct MailPolicy<'a> {
    /// The policy's `[mail]`; `None`: every default.
    pub mail: Option<&'a PolicyMail>,
    /// The policy file, named in errors; its folder anchors template paths.
    pub file: &'a Path,
}

impl MailPolicy<'_> {
    /// The section, or the defaults when the policy has none.
    pub fn mail(&self) -> PolicyMail {
        self.mail.cloned().unwrap_or_default()
    }

    /// The folder template paths are relative to.
    pub fn dir(&self) -> &Path {
        self.file.parent().unwrap_or(Path::new("."))
    }
}

/// A problem in a policy's `[mail]`, with the file it is in (the policy file
/// or one of its templates).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", file.display())]
pub struct PolicyMailError {
    pub file: PathBuf,
    pub message: String,
}

impl From<TemplateError> for PolicyMailError {
    fn from(e: TemplateError) -> Self {
        PolicyMailError {
            file: e.file,
            message: e.message,
        }
    }
}

/// A policy's templates (its overrides over the built-ins).
pub fn policy_templates(policy: MailPolicy<'_>) -> Result<Templates, Vec<TemplateError>> {
    Templates::load(&policy.mail(), policy.dir())
}

/// [`policy_templates`], its problems as one message (for a run's mails).
fn templates_or_message(policy: MailPolicy<'_>) -> Result<Templates, String> {
    policy_templates(policy).map_err(|errs| {
        errs.into_iter()
            .map(|e| PolicyMailError::from(e).to_string())
            .collect::<Vec<_>>()
            .join("; ")
    })
}

/// Check a policy's `[mail]` section: templates compile and render (with
/// file and line on error), `send_at` parses, caps are positive.
pub fn check_policy(policy: MailPolicy<'_>) -> Vec<PolicyMailError> {
    let pm = policy.mail();
    let mut errors: Vec<PolicyMailError> = match policy_templates(policy) {
        Ok(_) => Vec::new(),
        Err(e) => e.into_iter().map(PolicyMailError::from).collect(),
    };
    let mut error = |message: String| {
        errors.push(PolicyMailError {
            file: policy.file.to_path_buf(),
            message,
        })
    };
    if let Some(s) = &pm.send_at {
        if let Err(m) = config::SendAt::parse(s) {
            error(format!("[mail] {m}"));
        }
    }
    if pm.max_per_minute == Some(0) {
        error("[mail] max_per_minute must be at least 1 (leave it out for no cap)".into());
    }
    for cc in &pm.cc {
        if cc.parse::<lettre::message::Mailbox>().is_err() {
            error(format!("[mail] cc: {cc:?} is not a mail address"));
        }
    }
    errors
}

/// At a run's completion: compose its mails (results to `submitter`,
/// credentials to `users`, per the policy's `[mail]`) and write them into the
/// outbox on `conn` — the journal's run-completion transaction, so the run is
/// finished and its mails are queued together or not at all. Idempotent per
/// run id. Returns notes for the log (never a password). `policy` is a
/// [`MailPolicy`] or anything that converts into one (a `&LoadedPolicy`).
#[allow(clippy::too_many_arguments)]
pub async fn enqueue_run<'p>(
    conn: &mut sqlx::AnyConnection,
    key: &BodyKey,
    cfg: &MailConfig,
    policy: impl Into<MailPolicy<'p>>,
    facts: &RunFacts<'_>,
    submitter: Option<&str>,
    users: &[NewUser],
    now: i64,
) -> Result<RunMails, String> {
    let policy = policy.into();
    let templates = templates_or_message(policy)?;
    let run_mails = mails_for_run(cfg, &policy.mail(), &templates, facts, submitter, users, now)?;
    for m in &run_mails.mails {
        outbox::enqueue(conn, key, m, now).await.map_err(|e| e.to_string())?;
    }
    Ok(run_mails)
}

/// The outbox `[mail]` names (its database and key file).
pub async fn open_outbox(cfg: &MailConfig) -> Result<Outbox, String> {
    let url = cfg
        .outbox
        .as_deref()
        .ok_or_else(|| "mail.outbox is not set (Config::load fills it in)".to_string())?;
    let key = cfg
        .key_file
        .as_deref()
        .ok_or_else(|| "mail.key_file is not set (Config::load fills it in)".to_string())?;
    Outbox::open(url, key).await.map_err(|e| e.to_string())
}

/// Delivery options from `[mail]`.
pub fn deliver_options(cfg: &MailConfig, ignore_backoff: bool) -> DeliverOptions {
    DeliverOptions {
        ignore_backoff,
        max_attempts: cfg.max_attempts,
        max_per_minute: cfg.max_per_minute,
        batch: 0,
    }
}
