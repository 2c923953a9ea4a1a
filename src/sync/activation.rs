//! Activation links (`[passwords] deliver = "activation"`): a new account
//! is created without a usable password and its user gets a one-time link
//! to the console's `/activate/TOKEN` page.
//!
//! A token is 256 bits from the OS CSPRNG. Before the account's write it
//! is journaled twice, as generated passwords are: its SHA-256 in the
//! `activations` table (what the page checks) and the token itself sealed
//! with the run's secrets (so a resumed run mails the same link, never a
//! second one). The sealed copy is forgotten once the mails are queued.
//! [`resend`] issues a new link for an account and voids the old one.

use base64::Engine;
use rand::TryRngCore;

use super::pipeline::Pass;
use super::resume::Progress;
use super::writes::{ActivationMail, Writes};
use super::{MailOut, SyncError};
use crate::config::Config;
use crate::core::{Plan, Roster, Secret};
use crate::journal::{token_hash, ActivationRecord, ActivationState, Journal, JournalError, NewActivation};
use crate::mail::{Invite, MailPolicy};

/// A new account's link, for its activation mail (`Debug` hides the token).
#[derive(Clone, Debug)]
pub struct Invitation {
    /// A new account (false: an existing one's password is to be set anew).
    pub created: bool,
    /// The plan item (`row:N`) whose account it activates.
    pub ident: String,
    pub key: String,
    pub email: Option<String>,
    pub token: Secret,
}

/// 256 bits from the OS CSPRNG, base64url without padding (43 characters).
pub fn new_token() -> Result<Secret, SyncError> {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|e| SyncError::Config(format!("the OS random number generator failed: {e}")))?;
    Ok(Secret::new(
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes),
    ))
}

/// The console's address as users reach it: `[http] public_url`, or the
/// address it listens on.
pub fn public_url(config: &Config) -> String {
    match &config.http {
        Some(h) => h.public_base_url(),
        None => "http://127.0.0.1:8080".into(),
    }
}

/// The link that activates `token`.
pub fn link(config: &Config, token: &Secret) -> Secret {
    Secret::new(format!(
        "{}/activate/{}",
        public_url(config).trim_end_matches('/'),
        token.expose()
    ))
}

impl Pass<'_> {
    /// How this pass's activation links go out, for the results file.
    pub(super) fn activation_mail(&self) -> ActivationMail {
        if self.ctx.mail.is_none() {
            return ActivationMail::Nobody;
        }
        let now = crate::clock::now_unix();
        match crate::mail::activation_send_time(MailPolicy::from(self.lp), now) {
            Ok(at) if at > now => ActivationMail::Pending,
            _ => ActivationMail::Now,
        }
    }

    /// Journal (as hashes) the tokens a batch is about to use for the first time.
    pub(super) async fn issue_tokens(
        &self,
        chunk: &[usize],
        plan: &Plan,
        roster: &Roster,
        writes: &Writes,
        fresh: &[bool],
        p: &Progress,
    ) -> Result<(), SyncError> {
        let policy = &self.lp.policy;
        let email_idx = policy.attribute_index("email");
        let now = crate::clock::now_unix();
        let expires = now + i64::from(policy.passwords.activation_valid_hours) * 3600;
        for &i in chunk.iter().filter(|&&i| fresh[i]) {
            let (Some(token), Some(person)) = (writes.token(i), plan.items[i].person()) else {
                continue;
            };
            let person = &roster.persons[person];
            let email = email_idx.and_then(|e| person.attrs.get(e).map(str::to_string));
            let hash = token_hash(token.expose());
            let ident = p.ids[i].to_string();
            self.ctx
                .journal
                .issue_activation(&NewActivation {
                    run_id: self.run.id,
                    ident: &ident,
                    token_hash: &hash,
                    policy: &self.lp.name,
                    target: &self.lp.target,
                    user_key: person.key.as_str(),
                    email: email.as_deref(),
                    now,
                    expires,
                })
                .await?;
        }
        Ok(())
    }
}

/// On Active Directory an account created for activation stays disabled
/// until its user sets a password (Windows refuses to enable it before):
/// such an account — a link issued, none used, not in the leavers
/// container — is read as active, not as a leaver the file would rejoin.
pub(super) async fn awaiting_users(
    config: &Config,
    journal: &Journal,
    lp: &crate::config::LoadedPolicy,
    snapshot: &mut crate::core::Snapshot,
) -> Result<(), SyncError> {
    use crate::backend::ldap::{Flavour, LeaverMethod};
    use crate::config::TargetConfig;
    use crate::core::AccountState;
    let Ok(TargetConfig::Ldap(t)) = config.target(lp) else {
        return Ok(());
    };
    let by_lock = lp
        .file
        .ldap
        .as_ref()
        .is_some_and(|m| m.leaver.method == LeaverMethod::Lock);
    if t.flavour != Flavour::Ad || !by_lock {
        return Ok(());
    }
    let waiting = journal.awaiting_activation(&lp.name).await?;
    if waiting.is_empty() {
        return Ok(());
    }
    let leavers = t.leavers.as_deref().map(|l| format!(",{}", l.to_lowercase()));
    for key in waiting {
        let Some((i, a)) = snapshot.get(&crate::core::UserKey::new(&key)) else {
            continue;
        };
        let in_leavers = match (&leavers, &a.locator) {
            (Some(l), Some(dn)) => dn.to_lowercase().replace(", ", ",").ends_with(l.as_str()),
            _ => false,
        };
        if a.state == AccountState::Leaver && !in_leavers {
            snapshot.set_state(i, AccountState::Active);
        }
    }
    Ok(())
}

/// The activation mails of a run's invitations, with each link's journaled expiry.
pub(super) async fn invites(
    config: &Config,
    journal: &Journal,
    run_id: i64,
    valid_hours: u32,
    invitations: &[Invitation],
) -> Result<Vec<Invite>, SyncError> {
    if invitations.is_empty() {
        return Ok(Vec::new());
    }
    let issued = journal.run_activations(run_id).await?;
    Ok(invitations
        .iter()
        .map(|inv| Invite {
            created: inv.created,
            username: inv.key.clone(),
            email: inv.email.clone(),
            link: link(config, &inv.token),
            expires: issued
                .iter()
                .find(|a| a.ident == inv.ident)
                .map(|a| a.expires)
                .unwrap_or_else(|| crate::clock::now_unix() + i64::from(valid_hours) * 3600),
            valid_hours,
        })
        .collect())
}

/// Whether a link is a new account's (created for activation) rather than
/// an existing account's reset: as the run that issued the account's first
/// link planned it.
pub(super) async fn for_new_account(journal: &Journal, link: &ActivationRecord) -> Result<bool, JournalError> {
    let first = journal
        .run_activations(link.run_id)
        .await?
        .into_iter()
        .find(|a| a.user_key.eq_ignore_ascii_case(&link.user_key) && !a.ident.starts_with("resend:"));
    let Some(first) = first else {
        return Ok(true);
    };
    let items = journal.items(link.run_id).await?;
    Ok(items
        .values()
        .find(|it| it.id.to_string() == first.ident)
        .is_none_or(|it| it.change == crate::core::plan::ChangeKind::Add))
}

/// What [`resend`] did.
#[derive(Debug)]
pub struct Resent {
    pub key: String,
    pub email: String,
    /// Unix seconds.
    pub expires: i64,
    /// Mails queued (0 when an identical resend was queued already).
    pub queued: usize,
}

/// Issue a new link for `key` under `policy`, void its open links, and
/// queue its activation mail. Only an account that was given a link and has
/// not used one yet gets a new one.
pub async fn resend(
    config: &Config,
    journal: &Journal,
    mail: Option<MailOut<'_>>,
    policy: &str,
    key: &str,
) -> Result<Resent, SyncError> {
    let lp = config
        .policies
        .get(policy)
        .ok_or_else(|| SyncError::Config(format!("there is no policy {policy:?}")))?;
    let m = mail
        .ok_or_else(|| SyncError::Config("there is no [mail] section: an activation link cannot be mailed".into()))?;
    let last = journal.latest_activation(policy, key).await?.ok_or_else(|| {
        SyncError::Config(format!(
            "no activation link was ever issued for {key:?} under policy {policy:?}; \
             `dirsync runs show ID` lists the links a run issued"
        ))
    })?;
    let now = crate::clock::now_unix();
    if last.state(now) == ActivationState::Used {
        return Err(SyncError::Config(format!(
            "{} set a password with their activation link at {}; there is nothing to resend",
            last.user_key,
            crate::clock::timestamp(last.used_at.unwrap_or(now).saturating_mul(1000))
        )));
    }
    let email = last.email.clone().filter(|e| !e.is_empty()).ok_or_else(|| {
        SyncError::Config(format!(
            "{} has no email address in the journal: the link cannot be mailed",
            last.user_key
        ))
    })?;
    let token = new_token()?;
    let hours = lp.policy.passwords.activation_valid_hours;
    let expires = now + i64::from(hours) * 3600;
    let ident = format!("resend:{}", crate::clock::now_ms());
    let hash = token_hash(token.expose());
    journal
        .issue_activation(&NewActivation {
            run_id: last.run_id,
            ident: &ident,
            token_hash: &hash,
            policy,
            target: &last.target,
            user_key: &last.user_key,
            email: Some(&email),
            now,
            expires,
        })
        .await?;
    let created = for_new_account(journal, &last).await?;
    let invite = Invite {
        created,
        username: last.user_key.clone(),
        email: Some(email.clone()),
        link: link(config, &token),
        expires,
        valid_hours: hours,
    };
    let seed = format!("activation-{}-{ident}", last.run_id);
    let queued = async {
        let mut tx = m.outbox.pool().begin().await.map_err(|e| e.to_string())?;
        let q = crate::mail::enqueue_activations(
            &mut tx,
            m.outbox.key(),
            m.cfg,
            MailPolicy::from(lp),
            &lp.name,
            &seed,
            &[invite],
            now,
        )
        .await?;
        tx.commit().await.map_err(|e| e.to_string())?;
        Ok::<_, String>(q)
    }
    .await
    .map_err(|e| SyncError::Config(format!("the new link was journaled but its mail not queued: {e}")))?;
    (m.wake)();
    Ok(Resent {
        key: last.user_key,
        email,
        expires,
        queued: queued.mails.len(),
    })
}
