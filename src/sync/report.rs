//! What a run came to: counts, the results file, breaches, the target's
//! failure, and the credentials of new users (never logged).

use std::path::PathBuf;

use crate::core::plan::Breach;
use crate::core::{FileError, Secret, Summary, UserKey, Verdict};
use crate::journal::RunState;

/// A new user's credentials, for the credentials mail. Never logged.
#[derive(Debug, Clone)]
pub struct Credential {
    /// A new account (false: an existing account's password was reset).
    pub created: bool,
    pub key: UserKey,
    pub email: Option<String>,
    pub password: Secret,
    pub must_change: bool,
}

/// What a run came to.
#[derive(Debug)]
pub struct RunReport {
    pub run_id: i64,
    pub state: RunState,
    pub summary: Summary,
    pub results: PathBuf,
    pub file_error: Option<FileError>,
    pub breaches: Vec<Breach>,
    /// How to approve what the breaches held ("dirsync runs approve 7 --class leavers").
    pub approve_hint: Option<String>,
    pub warnings: Vec<String>,
    /// The target failed (down before the snapshot, or gone mid-run).
    pub target_error: Option<String>,
    pub credentials: Vec<Credential>,
    /// New accounts' activation links (`deliver = "activation"`).
    pub invitations: Vec<super::activation::Invitation>,
    /// Mails queued for this run, and notes about them (never a password).
    pub mails_queued: usize,
    pub mail_notes: Vec<String>,
}

impl RunReport {
    /// 0 = all accepted and applied (or previewed); 1 = some rows rejected,
    /// failed or held; 2 = file rejected as a whole or target error.
    pub fn exit_code(&self) -> u8 {
        if self.file_error.is_some() || self.target_error.is_some() {
            2
        } else if self.summary.change("error") > 0
            || self.summary.verdict(Verdict::Failed) > 0
            || self.summary.verdict(Verdict::Held) > 0
        {
            1
        } else {
            0
        }
    }

    /// What the mail module needs to know of this run (results mail).
    pub fn mail_facts<'a>(
        &'a self,
        mail_id: &'a str,
        file_name: &'a str,
        policy: &'a str,
        apply: bool,
    ) -> crate::mail::RunFacts<'a> {
        let mut breaches: Vec<String> = self.breaches.iter().map(|b| b.to_string()).collect();
        if let Some(h) = &self.approve_hint {
            breaches.push(h.clone());
        }
        crate::mail::RunFacts {
            run_id: mail_id,
            file_name,
            policy,
            apply,
            summary: &self.summary,
            file_error: self.file_error.as_ref().map(|e| e.to_string()),
            breaches,
            target_error: self.target_error.clone(),
            warnings: &self.warnings,
            results: &self.results,
        }
    }

    /// The accounts created in this run with a generated password (credentials mails).
    pub fn new_users(&self) -> Vec<crate::mail::NewUser> {
        self.credentials
            .iter()
            .map(|c| crate::mail::NewUser {
                created: c.created,
                username: c.key.as_str().to_string(),
                email: c.email.clone(),
                password: c.password.clone(),
                must_change: c.must_change,
            })
            .collect()
    }
}
