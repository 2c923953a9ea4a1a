//! `[sync] adopt = "email"`: a first deployment meets a directory that
//! already holds the people. A row whose key the target does not know, but
//! whose value of the adopt field matches exactly one account outside the
//! managed scope (read into the snapshot as adoptable), takes that account
//! over — change `adopt` — instead of creating a duplicate. Two or more
//! such accounts reject the row, naming them.

use std::collections::HashMap;

use super::plan::{diff, Change};
use super::policy::{Column, Policy};
use super::roster::{Roster, RowError, RowErrorKind};
use super::snapshot::Snapshot;
use super::types::Person;

/// The adoptable accounts by their value of the adopt field (lower-cased).
pub(super) struct Adoptable {
    field: Option<usize>,
    by_value: HashMap<String, Vec<usize>>,
}

impl Adoptable {
    pub(super) fn index(snapshot: &Snapshot, policy: &Policy) -> Adoptable {
        let field = policy.sync.adopt.as_deref().and_then(|f| policy.attribute_index(f));
        let mut by_value: HashMap<String, Vec<usize>> = HashMap::new();
        if let Some(f) = field {
            for i in snapshot.managed_len()..snapshot.len() {
                if let Some(v) = snapshot.account(i).attrs.get(f) {
                    by_value.entry(v.to_lowercase()).or_default().push(i);
                }
            }
        }
        Adoptable { field, by_value }
    }

    /// What a row the plan would add becomes: still an add, an adopt of
    /// one account (its index), or a rejection naming the candidates.
    pub(super) fn adopt(
        &self,
        person: &Person,
        roster: &Roster,
        snapshot: &Snapshot,
        policy: &Policy,
        note: Option<String>,
    ) -> (Change, Option<usize>, Option<String>) {
        let Some(f) = self.field else {
            return (Change::Add, None, note);
        };
        // A row without a username is for a new person (a generated username).
        let value = person.attrs.get(f);
        let (Some(value), false) = (value, person.key.as_str().is_empty()) else {
            return (Change::Add, None, note);
        };
        let field = policy.attributes.get(f).cloned().unwrap_or_default();
        match self.by_value.get(&value.to_lowercase()).map(Vec::as_slice) {
            None | Some([]) => (Change::Add, None, note),
            Some([one]) => {
                let acct = snapshot.account(*one);
                let d = diff(person, acct, roster, snapshot, policy);
                let why = format!("adopts the existing account {:?} (same {field})", acct.key.as_str());
                (Change::Adopt(Box::new(d)), Some(*one), Some(why))
            }
            Some(many) => {
                let kind = RowErrorKind::AdoptAmbiguous {
                    field: field.clone(),
                    value: value.to_string(),
                    accounts: many.iter().map(|i| snapshot.account(*i).key.to_string()).collect(),
                };
                let header = roster
                    .columns
                    .iter()
                    .position(|c| *c == Column::Attribute(f))
                    .and_then(|p| roster.header.get(p));
                let error = match header {
                    Some(h) => RowError::in_column(h, kind),
                    None => RowError::in_row(kind),
                };
                (Change::Reject(Box::new(vec![error])), None, None)
            }
        }
    }
}

#[cfg(test)]
mod tests;
