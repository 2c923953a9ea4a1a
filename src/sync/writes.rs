//! What a run's writes carry besides the plan: each new account's password
//! and "must change" flag, the backend ops built from them, the verdicts
//! and notes, and the credentials of generated passwords. One place for
//! both the plain run (sync.rs) and the journaled one (journaled.rs); only
//! where a generated password comes from differs, and that is passed in.

use crate::backend::{Op, OpResult};
use crate::core::policy::Generate;
use crate::core::{Change, Outcome, Plan, Policy, Roster, Secret, Snapshot, Verdict};

use super::Credential;

pub(crate) struct Writes {
    passwords: Vec<Option<Secret>>,
    generated: Vec<bool>,
    must_change: Vec<bool>,
}

impl Writes {
    /// Passwords for new accounts: the row's, or, when the policy generates
    /// them, what `generate(i)` gives for item `i` (None: that add gets no
    /// password). A joiner must change its password only when its row says so.
    pub(crate) fn prepare(
        plan: &Plan,
        roster: &Roster,
        policy: &Policy,
        mut generate: impl FnMut(usize) -> Option<Secret>,
    ) -> Writes {
        let n = plan.items.len();
        let mut w = Writes {
            passwords: vec![None; n],
            generated: vec![false; n],
            must_change: vec![false; n],
        };
        for (i, item) in plan.items.iter().enumerate() {
            let person = item.person.map(|p| &roster.persons[p]);
            match (&item.change, person) {
                (Change::Add, Some(p)) => {
                    w.must_change[i] = p.must_change.unwrap_or(policy.passwords.must_change_new);
                    w.passwords[i] = match (&p.password, policy.passwords.generate) {
                        (Some(pw), _) => Some(pw.clone()),
                        (None, Generate::New) => {
                            let g = generate(i);
                            w.generated[i] = g.is_some();
                            g
                        }
                        (None, Generate::Never) => None,
                    };
                }
                (Change::Rejoin(_), Some(p)) => w.must_change[i] = p.must_change == Some(true),
                _ => {}
            }
        }
        w
    }

    pub(crate) fn password(&self, i: usize) -> Option<&Secret> {
        self.passwords[i].as_ref()
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
            person: item.person.map(|p| &roster.persons[p]),
            account: item.account.map(|a| snapshot.account(a)),
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
        } else if has_password && add {
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

    /// The generated passwords of accounts that were created, for mailing
    /// to their owners.
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
            .filter(|(i, _)| self.generated[*i] && outcomes[*i].verdict == Verdict::Done)
            .filter_map(|(i, item)| {
                let p = &roster.persons[item.person?];
                Some(Credential {
                    key: p.key.clone(),
                    email: email_idx.and_then(|e| p.attrs[e].as_ref().map(|v| v.to_string())),
                    password: self.passwords[i].clone()?,
                    must_change: self.must_change[i],
                })
            })
            .collect()
    }
}
