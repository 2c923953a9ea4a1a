//! Using an activation link: the console's `/activate/TOKEN` page hands
//! the token and the chosen password here. The link is claimed first (one
//! conditional UPDATE in the journal: of two concurrent uses only one
//! wins), then the password is set through the target's normal password
//! write; when the target refuses it the claim is given back, so the user
//! can try another password with the same link. The password goes to the
//! target only: never to the journal, a log or a page.

use tracing::{info, warn};

use super::target::{open_backend, OpenError};
use crate::backend::BackendError;
use crate::config::Config;
use crate::core::{Secret, UserKey};
use crate::journal::{token_hash, ActivationRecord, ActivationState, Journal, JournalError};

/// Why a link did not set a password, in words for the person holding it.
#[derive(Debug, thiserror::Error)]
pub enum ActivateError {
    #[error("This link is not valid. Check that you opened the whole link from your mail, or ask your IT department for a new one.")]
    Unknown,
    #[error("This link has expired. Ask your IT department for a new one.")]
    Expired,
    #[error("This link has been used already: your password is set. If you did not set it, tell your IT department at once.")]
    Used,
    #[error("This link was replaced by a newer one. Use the link in the most recent mail, or ask your IT department for a new one.")]
    Voided,
    #[error("The password is too short: use at least {0} characters.")]
    TooShort(usize),
    /// The target's password policy refused it (the target's words).
    #[error("The password was not accepted: {0}")]
    Refused(String),
    /// The account is no longer in the target.
    #[error("Your account is no longer in the directory. Ask your IT department.")]
    NoAccount,
    /// The target or the journal failed; the link still works. The detail
    /// is for the log, not for the page (no login is needed to see it).
    #[error(
        "Your password could not be set just now. The link still works: try again later, or ask your IT department."
    )]
    Unavailable(String),
}

impl ActivateError {
    /// What the log says (the page says less).
    pub fn detail(&self) -> String {
        match self {
            ActivateError::Unavailable(d) => d.clone(),
            other => other.to_string(),
        }
    }
}

impl From<JournalError> for ActivateError {
    fn from(e: JournalError) -> Self {
        ActivateError::Unavailable(e.to_string())
    }
}

/// What a link is, for the page: its record when it can still be used.
pub async fn check_link(journal: &Journal, token: &str) -> Result<ActivationRecord, ActivateError> {
    let rec = journal
        .activation(&token_hash(token))
        .await?
        .ok_or(ActivateError::Unknown)?;
    match rec.state(crate::clock::now_unix()) {
        ActivationState::Pending => Ok(rec),
        ActivationState::Used => Err(ActivateError::Used),
        ActivationState::Voided => Err(ActivateError::Voided),
        ActivationState::Expired => Err(ActivateError::Expired),
    }
}

/// The shortest password the link's policy accepts.
pub fn min_length(config: &Config, rec: &ActivationRecord) -> usize {
    config
        .policies
        .get(&rec.policy)
        .map(|lp| lp.policy.passwords.min_length)
        .unwrap_or(crate::core::policy::PasswordRules::default().min_length)
}

/// Set the password of the account `token` activates. Returns its key.
pub async fn activate(
    config: &Config,
    journal: &Journal,
    token: &str,
    password: &Secret,
) -> Result<String, ActivateError> {
    let rec = check_link(journal, token).await?;
    let min = min_length(config, &rec);
    if password.expose().chars().count() < min {
        return Err(ActivateError::TooShort(min));
    }
    let lp = config
        .policies
        .get(&rec.policy)
        .ok_or_else(|| ActivateError::Unavailable(format!("policy {:?} is no longer configured", rec.policy)))?;
    let new_account = super::activation::for_new_account(journal, &rec).await?;
    let hash = token_hash(token);
    let now = crate::clock::now_unix();
    if !journal.claim_activation(&hash, now).await? {
        // Another use won, or the link just expired.
        return Err(check_link(journal, token).await.err().unwrap_or(ActivateError::Used));
    }
    let result = async {
        let backend = open_backend(config, lp).await.map_err(|e| match e {
            OpenError::Config(m) => ActivateError::Unavailable(m),
            OpenError::Target(e) => ActivateError::Unavailable(e.to_string()),
        })?;
        backend
            .set_password(&UserKey::new(&rec.user_key), password, new_account)
            .await
            .map_err(|e| match e {
                BackendError::PasswordRefused(m) => ActivateError::Refused(m),
                BackendError::NoAccount(_) => ActivateError::NoAccount,
                other => ActivateError::Unavailable(other.to_string()),
            })
    }
    .await;
    match result {
        Ok(()) => {
            info!(key = ?rec.user_key, policy = ?rec.policy, run_id = rec.run_id, "Account activated: its user set a password.");
            Ok(rec.user_key)
        }
        Err(e) => {
            warn!(key = ?rec.user_key, policy = ?rec.policy, error = %e.detail(), "An activation did not set the password; the link still works.");
            journal.release_activation(&hash, now).await?;
            Err(e)
        }
    }
}
