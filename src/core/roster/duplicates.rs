//! Duplicate keys and email addresses across the file (case-insensitive):
//! every row of a group is refused, or all but the first (policy).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::hash::BuildHasher;

use hashbrown::HashTable;

use super::error::{RowError, RowErrorKind};
use super::{Entry, Roster};
use crate::core::policy::{Column, Duplicates, Policy};
use crate::core::types::Person;

pub(super) fn reject_duplicates(roster: &mut Roster, policy: &Policy) {
    let email = policy.attribute_index("email");
    let n = roster.entries.len();
    // The first row of each key and each address, as 32-bit positions
    // compared through the rows (a million rows: 8 MB a table, where maps
    // of the strings took 48 and 64).
    let hasher = foldhash::fast::RandomState::default();
    let mut first_key: HashTable<u32> = HashTable::with_capacity(n);
    let mut first_email: HashTable<u32> = HashTable::with_capacity(n);
    let mut key_groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    let mut email_groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    let note = |groups: &mut BTreeMap<usize, Vec<usize>>, first: usize, ei: usize| {
        groups.entry(first).or_insert_with(|| vec![first]).push(ei);
    };
    for ei in 0..n {
        // The parser refuses more rows than 32 bits count.
        let Ok(at) = u32::try_from(ei) else { break };
        if let Some(k) = key_of(roster, ei) {
            let h = hasher.hash_one(k);
            match first_key.find(h, |&j| key_of(roster, j as usize) == Some(k)) {
                Some(&first) => note(&mut key_groups, first as usize, ei),
                None => {
                    // Only rows with a key are in the table.
                    let rehash = |&j: &u32| hasher.hash_one(key_of(roster, j as usize).unwrap_or_default());
                    first_key.insert_unique(h, at, rehash);
                }
            }
        }
        if let Some(m) = email_of(roster, email, ei) {
            let h = hasher.hash_one(&m);
            match first_email.find(h, |&j| email_of(roster, email, j as usize).as_ref() == Some(&m)) {
                Some(&first) => note(&mut email_groups, first as usize, ei),
                None => {
                    let rehash = |&j: &u32| hasher.hash_one(email_of(roster, email, j as usize).unwrap_or_default());
                    first_email.insert_unique(h, at, rehash);
                }
            }
        }
    }
    let by_key = key_groups;
    let by_email = email_groups;
    let mut to_reject: Vec<(usize, RowError)> = Vec::new();
    let keep_first = policy.roster.duplicates == Duplicates::KeepFirst;
    let key_col = roster
        .columns
        .iter()
        .position(|c| *c == Column::Key)
        .map(|i| roster.header[i].clone());
    let email_col = email.and_then(|i| {
        roster
            .columns
            .iter()
            .position(|c| *c == Column::Attribute(i))
            .map(|p| roster.header[p].clone())
    });
    let lines = |group: &[usize], entries: &[Entry], persons: &[Person]| -> Vec<u64> {
        group
            .iter()
            .map(|ei| match &entries[*ei] {
                Entry::Valid(pi) => persons[*pi].origin.line,
                Entry::Rejected(r) => r.origin.line,
            })
            .collect()
    };
    for (is_key, col, groups) in [
        (true, &key_col, by_key.into_values().collect::<Vec<_>>()),
        (false, &email_col, by_email.into_values().collect::<Vec<_>>()),
    ] {
        for group in groups.into_iter().filter(|g| g.len() > 1) {
            let lines = lines(&group, &roster.entries, &roster.persons);
            let skip = if keep_first { 1 } else { 0 };
            for ei in group.iter().skip(skip) {
                let kind = if is_key {
                    RowErrorKind::DuplicateKey {
                        lines: lines.clone(),
                        keep_first,
                    }
                } else {
                    RowErrorKind::DuplicateEmail {
                        lines: lines.clone(),
                        keep_first,
                    }
                };
                to_reject.push((
                    *ei,
                    RowError {
                        kind,
                        column: col.clone(),
                        letter: None,
                    },
                ));
            }
        }
    }
    if to_reject.is_empty() {
        return;
    }
    // Turn valid entries into rejected ones; persons stay in place but are
    // no longer referenced, then compact.
    for (ei, error) in to_reject {
        let entry = &mut roster.entries[ei];
        match entry {
            Entry::Valid(pi) => {
                let p = &roster.persons[*pi];
                *entry = Entry::rejected(p.origin, Some(p.key.clone()), vec![error]);
            }
            Entry::Rejected(r) => {
                if !r.errors.contains(&error) {
                    r.errors.push(error)
                }
            }
        }
    }
    let mut persons = Vec::with_capacity(roster.persons.len());
    let old = std::mem::take(&mut roster.persons);
    let mut old: Vec<Option<Person>> = old.into_iter().map(Some).collect();
    for e in roster.entries.iter_mut() {
        if let Entry::Valid(pi) = e {
            if let Some(p) = old[*pi].take() {
                *pi = persons.len();
                persons.push(p);
            }
        }
    }
    roster.persons = persons;
}

/// Row `ei`'s folded key, if it has one (an empty key is generated later,
/// unique by construction).
fn key_of(roster: &Roster, ei: usize) -> Option<&str> {
    match roster.entries.get(ei)? {
        Entry::Valid(pi) => Some(roster.persons.get(*pi)?.key.folded()).filter(|k| !k.is_empty()),
        Entry::Rejected(r) => r.key.as_ref().map(|k| k.folded()),
    }
}

/// Valid row `ei`'s e-mail address (attribute `email`), lower-cased.
fn email_of(roster: &Roster, email: Option<usize>, ei: usize) -> Option<Cow<'_, str>> {
    let Entry::Valid(pi) = roster.entries.get(ei)? else {
        return None;
    };
    let m = roster.persons.get(*pi)?.attrs.get(email?)?;
    Some(if m.bytes().any(|b| !b.is_ascii() || b.is_ascii_uppercase()) {
        m.to_lowercase().into()
    } else {
        m.into()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::roster::fixtures::*;
    use crate::core::roster::parse_roster;

    #[test]
    fn duplicate_keys_case_insensitive_reject_all_rows_of_the_group() {
        let text = format!("{HEAD}jsmith,A,B,a@example.org\nJSmith,C,D,c@example.org\nother,E,F,e@example.org\n");
        let r = parse(&text).unwrap(); // ok: test
        assert_eq!(r.persons.len(), 1);
        assert_eq!(r.persons[0].key.as_str(), "other");
        let rej = rejected(&r);
        assert_eq!(rej.len(), 2);
        assert_eq!(
            rejected_errors(&r)[0].2,
            vec![RowError {
                kind: RowErrorKind::DuplicateKey {
                    lines: vec![2, 3],
                    keep_first: false
                },
                column: Some("username".into()),
                letter: None,
            }],
            "{rej:?}"
        );
        let mut p = policy();
        p.roster.duplicates = Duplicates::KeepFirst;
        let r = parse_roster(text.as_bytes(), &p).unwrap(); // ok: test
        assert_eq!(r.persons.len(), 2);
        assert_eq!(r.persons[0].key.as_str(), "jsmith");
    }

    #[test]
    fn duplicate_email_rejects_both() {
        let r = parse(&format!("{HEAD}a,A,B,same@example.org\nb,C,D,SAME@example.org\n")).unwrap(); // ok: test
        assert!(r.persons.is_empty());
        assert!(matches!(
            &rejected_errors(&r)[1].2[..],
            [RowError { kind: RowErrorKind::DuplicateEmail { lines, .. }, .. }] if lines == &[2, 3]
        ));
    }
}
