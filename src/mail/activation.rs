//! Activation mails (`[passwords] deliver = "activation"`): one per new
//! user (or per resend), holding a one-time link to the console's
//! `/activate/TOKEN` page instead of a password. Like credentials mails
//! they honour the policy's `send_at` and `max_per_minute`, and their
//! Message-IDs are stable, so a resumed run queues none twice.

use super::compose::{build, message_id, parse_mailbox, RunMails};
use super::config::{MailConfig, SendAt};
use super::outbox::{self, MailKind};
use super::templates::ActivationContext;
use super::{templates_or_message, BodyKey, MailPolicy};
use crate::core::Secret;

/// A user to invite. No `Debug`: the link holds the token.
pub struct Invite {
    /// A new account (false: an existing account's user is invited to set a new password).
    pub created: bool,
    pub username: String,
    pub email: Option<String>,
    /// The whole link, `{public_url}/activate/TOKEN`.
    pub link: Secret,
    /// When the link stops working (Unix seconds).
    pub expires: i64,
    pub valid_hours: u32,
}

/// When the policy's activation mails go out: now, or at its `send_at`.
pub fn activation_send_time(policy: MailPolicy<'_>, now: i64) -> Result<i64, String> {
    match &policy.mail().send_at {
        Some(s) => Ok(SendAt::parse(s)?.next_at_or_after(now)),
        None => Ok(now),
    }
}

/// Compose the activation mails of `invites` and queue them on `conn` (the
/// caller's transaction). `seed` makes the Message-IDs: a run's pass
/// (`run-7`), or a resend. Idempotent per seed and recipient.
#[allow(clippy::too_many_arguments)]
pub async fn enqueue_activations(
    conn: &mut sqlx::AnyConnection,
    key: &BodyKey,
    cfg: &MailConfig,
    policy: MailPolicy<'_>,
    policy_name: &str,
    seed: &str,
    invites: &[Invite],
    now: i64,
) -> Result<RunMails, String> {
    let mut notes = Vec::new();
    let mut mails = Vec::new();
    if invites.is_empty() {
        return Ok(RunMails { mails, notes });
    }
    let templates = templates_or_message(policy)?;
    let pm = policy.mail();
    let from = parse_mailbox("mail.from", &cfg.from)?;
    let not_before = activation_send_time(policy, now)?;
    for u in invites {
        let Some(email) = u.email.as_deref().filter(|e| !e.is_empty()) else {
            notes.push(format!(
                "user {} has no email address: their activation link was mailed to nobody; \
                 give the account an address, then `dirsync activation resend {}`",
                u.username, u.username
            ));
            continue;
        };
        let to = parse_mailbox("user email", email)?;
        let ctx = ActivationContext {
            created: u.created,
            username: u.username.clone(),
            email: email.to_string(),
            link: u.link.expose().to_string(),
            expires: crate::clock::timestamp(u.expires.saturating_mul(1000)),
            valid_hours: u.valid_hours,
            policy: policy_name.to_string(),
            run_id: seed.to_string(),
        };
        let rendered = templates.render_activation(&ctx)?;
        let id = message_id(seed, MailKind::Activation, to.email.as_ref(), &from);
        let mut m = build(&from, &[to], &[], id, seed, MailKind::Activation, &rendered, None)?;
        m.not_before = not_before;
        // One cap for every mail to this policy's users.
        m.rate_group = pm.max_per_minute.map(|_| format!("credentials:{policy_name}"));
        m.rate_per_minute = pm.max_per_minute;
        outbox::enqueue(conn, key, &m, now).await.map_err(|e| e.to_string())?;
        mails.push(m);
    }
    Ok(RunMails { mails, notes })
}
