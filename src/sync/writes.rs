//! What a run's writes carry besides the plan: each new account's password
//! and "must change" flag, the backend ops built from them, the verdicts
//! and notes, and the credentials of generated passwords. One place for
//! both the plain run (sync.rs) and the journaled one (journaled.rs); only
//! where a generated password comes from differs, and that is passed in.

use crate::backend::{Op, OpResult};
use crate::core::policy::{Deliver, Existing, Generate};
use crate::core::{Change, Outcome, Plan, Policy, Roster, Secret, Snapshot, Verdict};

use super::Credential;

/// What a fresh secret is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fresh {
    /// A generated password.
    Password,
    /// An activation token (`deliver = "activation"`).
    Token,
}

/// How a run's activation links go out, for the results file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ActivationMail {
    /// Queued to go now.
    Now,
    /// Held by the policy's `send_at`.
    Pending,
    /// There is no `[mail]`: nobody gets the link.
    Nobody,
}

pub(crate) struct Writes {
    passwords: Vec<Option<Secret>>,
    generated: Vec<bool>,
    must_change: Vec<bool>,
    /// Activation tokens of new accounts created without a password.
    tokens: Vec<Option<Secret>>,
    /// A new account that gets a link has no email address to mail it to.
    no_email: Vec<bool>,
    /// An existing account's password from the file, mailed to its user
    /// (`deliver = "mail"`).
    mail_file_password: Vec<bool>,
    pub(crate) activation_mail: ActivationMail,
}

impl Writes {
    /// Passwords for new accounts: the row's, or, when the policy generates
    /// them, what `generate(i, Fresh::Password)` gives for item `i` (None:
    /// that add gets no password); with `deliver = "activation"` no password
    /// but the token `generate(i, Fresh::Token)` gives. A joiner must change
    /// its password only when its row says so.
    pub(crate) fn prepare(
        plan: &Plan,
        roster: &Roster,
        policy: &Policy,
        mut generate: impl FnMut(usize, Fresh) -> Option<Secret>,
    ) -> Writes {
        let n = plan.items.len();
        let mut w = Writes {
            passwords: vec![None; n],
            generated: vec![false; n],
            must_change: vec![false; n],
            tokens: vec![None; n],
            no_email: vec![false; n],
            mail_file_password: vec![false; n],
            activation_mail: ActivationMail::Now,
        };
        for (i, item) in plan.items.iter().enumerate() {
            let person = item.person().map(|p| &roster.persons[p]);
            match (&item.change, person) {
                (Change::Add, Some(p)) => {
                    w.must_change[i] = p.must_change.unwrap_or(policy.passwords.must_change_new);
                    let rules = &policy.passwords;
                    w.passwords[i] = match (&p.password, rules.deliver, rules.generate) {
                        (Some(pw), _, _) => Some(Secret::clone(pw)),
                        (None, Deliver::Activation, _) => {
                            let email = policy.attribute_index("email").and_then(|e| p.attrs.get(e));
                            w.no_email[i] = email.is_none_or(|e| e.is_empty());
                            w.tokens[i] = generate(i, Fresh::Token);
                            // The user chooses their own password.
                            w.must_change[i] = false;
                            None
                        }
                        (None, Deliver::Mail, Generate::New) => {
                            let g = generate(i, Fresh::Password);
                            w.generated[i] = g.is_some();
                            g
                        }
                        (None, _, _) => None,
                    };
                }
                (Change::Rejoin(_), Some(p)) => w.must_change[i] = p.must_change == Some(true),
                (Change::Reset(_), Some(p)) => {
                    let rules = &policy.passwords;
                    match (&p.password, rules.existing) {
                        (Some(pw), _) => {
                            w.passwords[i] = Some(Secret::clone(pw));
                            w.must_change[i] = p.must_change == Some(true);
                            w.mail_file_password[i] = rules.deliver == Deliver::Mail;
                        }
                        (None, Existing::Activation) => {
                            let email = policy.attribute_index("email").and_then(|e| p.attrs.get(e));
                            w.no_email[i] = email.is_none_or(|e| e.is_empty());
                            w.tokens[i] = generate(i, Fresh::Token);
                        }
                        (None, Existing::Generate) => {
                            let g = generate(i, Fresh::Password);
                            w.generated[i] = g.is_some();
                            w.passwords[i] = g;
                            w.must_change[i] = p.must_change.unwrap_or(rules.must_change_new);
                        }
                        (None, Existing::Keep) => {}
                    }
                }
                _ => {}
            }
        }
        w
    }

    /// What item `i` journals sealed before its write: its generated
    /// password or its activation token.
    pub(crate) fn sealed(&self, i: usize) -> Option<&Secret> {
        self.passwords[i].as_ref().or(self.tokens[i].as_ref())
    }

    /// The activation token of item `i`, when it gets a link.
    pub(crate) fn token(&self, i: usize) -> Option<&Secret> {
        self.tokens[i].as_ref()
    }

    /// The backend op of plan item `i` (a write: it has a key).
    pub(crate) fn op<'a>(
        &'a self,
        i: usize,
        plan: &'a Plan,
        roster: &'a Roster,
        snapshot: &'a Snapshot,
        now: i64,
    ) -> Op<'a> {
        let item = &plan.items[i];
        Op {
            change: &item.change,
            // ok: only items with a key are written (rows and absent accounts)
            key: item
                .key
                .as_ref()
                .unwrap_or_else(|| unreachable!("writes always have a key")),
            person: item.person().map(|p| &roster.persons[p]),
            account: item.account().map(|a| snapshot.account(a)),
            password: self.passwords[i].as_ref(),
            must_change: self.must_change[i],
            now,
        }
    }

    /// What applying item `i` came to, with the notes a user needs (never
    /// the password).
    pub(crate) fn outcome(&self, i: usize, result: OpResult, change: &Change) -> Outcome {
        match result {
            Ok(()) => Outcome::new(Verdict::Done, self.done_note(i, change)),
            Err(m) => Outcome::new(Verdict::Failed, Some(m)),
        }
    }

    fn done_note(&self, i: usize, change: &Change) -> Option<String> {
        let add = matches!(change, Change::Add);
        let has_password = self.passwords[i].is_some();
        let mut parts = Vec::new();
        if self.generated[i] {
            parts.push("password generated (given only to the user, never shown here)");
        } else if self.tokens[i].is_some() {
            parts.push(match self.activation_mail {
                _ if self.no_email[i] => {
                    "activation link mailed to nobody (no email address): add one, then `dirsync activation resend`"
                }
                ActivationMail::Now => "activation mailed",
                ActivationMail::Pending => "activation pending (mailed at the policy's send_at)",
                ActivationMail::Nobody => "activation link mailed to nobody (no [mail]): `dirsync activation resend`",
            });
        } else if has_password && add {
            parts.push("password from the file set");
        } else if has_password && self.mail_file_password[i] {
            parts.push("password from the file set and mailed to the user");
        } else if has_password {
            parts.push("password from the file set");
        } else if add {
            parts.push("no password set (none in the file, and passwords.generate is \"never\")");
        }
        // A new account without a password has nothing to change.
        if self.must_change[i] && (has_password || !add) {
            parts.push("must change password at next login");
        }
        (!parts.is_empty()).then(|| parts.join("; "))
    }

    /// The accounts given an activation token: (item, key, email, token).
    pub(crate) fn activations<'a>(
        &'a self,
        plan: &'a Plan,
        roster: &'a Roster,
        policy: &Policy,
        outcomes: &[Outcome],
    ) -> Vec<(usize, &'a crate::core::UserKey, Option<String>, &'a Secret)> {
        let email_idx = policy.attribute_index("email");
        plan.items
            .iter()
            .enumerate()
            .filter(|(i, _)| outcomes[*i].verdict == Verdict::Done)
            .filter_map(|(i, item)| {
                let p = &roster.persons[item.person()?];
                let token = self.tokens[i].as_ref()?;
                let email = email_idx.and_then(|e| p.attrs.get(e).map(str::to_string));
                Some((i, &p.key, email, token))
            })
            .collect()
    }

    /// The passwords to mail to their owners: generated for new accounts
    /// (or flagged existing ones), or an existing account's from the file.
    pub(crate) fn credentials(
        &self,
        plan: &Plan,
        roster: &Roster,
        policy: &Policy,
        outcomes: &[Outcome],
    ) -> Vec<Credential> {
        let email_idx = policy.attribute_index("email");
        plan.items
            .iter()
            .enumerate()
            .filter(|(i, _)| {
                (self.generated[*i] || self.mail_file_password[*i]) && outcomes[*i].verdict == Verdict::Done
            })
            .filter_map(|(i, item)| {
                let p = &roster.persons[item.person()?];
                Some(Credential {
                    created: matches!(item.change, crate::core::Change::Add),
                    key: p.key.clone(),
                    email: email_idx.and_then(|e| p.attrs.get(e).map(str::to_string)),
                    password: self.passwords[i].clone()?,
                    must_change: self.must_change[i],
                })
            })
            .collect()
    }
}
