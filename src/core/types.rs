//! Domain types shared by every part of dirsync: keys, people, secrets.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};

use compact_str::CompactString;

use super::attrs::Attrs;

/// A field value. Most HR values are short, so they live inline (≤ 24 bytes)
/// and a million-row roster does not cost a million heap allocations per column.
pub type Value = CompactString;

/// The immutable account key (login ID). Compares case-insensitively:
/// `jsmith` and `JSmith` are the same person (seed 003: the login ID is never
/// changed by a file). The original spelling is kept for display and writes.
///
/// Held by every row, account and plan item, so it is 32 bytes: one string
/// holds the spelling, and after it the folded form only when that differs
/// (most keys are lower-case already).
#[derive(Clone)]
pub struct UserKey {
    /// The spelling, then the folded form if it differs.
    text: Value,
    /// Where the folded form starts in `text`; 0 when it is the spelling.
    split: usize,
}

impl UserKey {
    pub fn new(s: &str) -> Self {
        if s.bytes().any(|b| b.is_ascii_uppercase()) || !s.is_ascii() {
            let folded = s.to_lowercase();
            if folded != s {
                let mut text = Value::with_capacity(s.len() + folded.len());
                text.push_str(s);
                text.push_str(&folded);
                return UserKey { text, split: s.len() };
            }
        }
        UserKey {
            text: Value::from(s),
            split: 0,
        }
    }
    /// The spelling the file (or the target) used.
    pub fn as_str(&self) -> &str {
        match self.split {
            0 => &self.text,
            at => self.text.get(..at).unwrap_or(&self.text),
        }
    }
    /// The case-folded form used for comparison.
    pub fn folded(&self) -> &str {
        match self.split {
            0 => &self.text,
            at => self.text.get(at..).unwrap_or(&self.text),
        }
    }
}

impl PartialEq for UserKey {
    fn eq(&self, other: &Self) -> bool {
        self.folded() == other.folded()
    }
}
impl Eq for UserKey {}
impl Hash for UserKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.folded().hash(state)
    }
}
impl PartialOrd for UserKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for UserKey {
    fn cmp(&self, other: &Self) -> Ordering {
        self.folded().cmp(other.folded())
    }
}
impl fmt::Display for UserKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
impl fmt::Debug for UserKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UserKey({:?})", self.as_str())
    }
}

/// A secret (password, bind password). Its `Debug` and `Display` never show
/// the value; the only way out is [`Secret::expose`], which is easy to grep.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Box<str>);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into().into_boxed_str())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}
impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***SECRET***")
    }
}
impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***SECRET***")
    }
}

/// Whether an account is in service or has left.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AccountState {
    Active,
    Leaver,
}

impl AccountState {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountState::Active => "active",
            AccountState::Leaver => "leaver",
        }
    }
}

/// Where a row came from in the file: 1-based data-row number and the
/// physical line on which the record starts (header is line 1, or 2 after
/// an Excel `sep=` line).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Origin {
    pub row: usize,
    pub line: u64,
}

/// A row's `start_date` and `end_date` (`[lifecycle]`), when it has them:
/// days in the policy's time zone.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Dates {
    /// The first day of work.
    pub start: Option<chrono::NaiveDate>,
    /// The last day of work.
    pub end: Option<chrono::NaiveDate>,
}

impl Dates {
    /// Set the start (0) or the end (1).
    pub fn set(&mut self, which: usize, day: chrono::NaiveDate) {
        if which == 0 {
            self.start = Some(day);
        } else {
            self.end = Some(day);
        }
    }
}

/// One valid person from the roster, typed.
///
/// `attrs` is indexed by the policy's attribute list (see
/// [`crate::core::policy::Policy::attributes`]); `None` means the column is
/// absent or empty (after defaults).
#[derive(Clone)]
pub struct Person {
    pub origin: Origin,
    pub key: UserKey,
    pub attrs: Attrs,
    /// `None` when the file has no groups column: groups are then not managed
    /// by this file and left as they are.
    pub groups: Option<Box<[Value]>>,
    pub state: AccountState,
    /// `None` when the file has no such column (leave the flag alone).
    pub must_change: Option<bool>,
    /// Boxed: few rows carry one, and every row holds the field.
    pub password: Option<Box<Secret>>,
    pub dates: Dates,
    /// The row asks for a new password or activation link for an existing
    /// account (the `invite` column, `[passwords] existing`).
    pub invite: bool,
}

impl fmt::Debug for Person {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // No personal data in Debug beyond the key; no secrets at all.
        f.debug_struct("Person")
            .field("origin", &self.origin)
            .field("key", &self.key)
            .field("state", &self.state)
            .field("password", &self.password.as_ref().map(|_| "***SECRET***"))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_key_is_case_insensitive_but_keeps_spelling() {
        let a = UserKey::new("JSmith");
        let b = UserKey::new("jsmith");
        assert_eq!(a, b);
        assert_eq!(a.as_str(), "JSmith");
        assert_eq!(a.folded(), "jsmith");
        let c = UserKey::new("ÉLODIE");
        assert_eq!(c, UserKey::new("élodie"));
        assert_eq!((c.as_str(), c.folded()), ("ÉLODIE", "élodie"));
        // Longer than the inline 24 bytes once both forms are held.
        let d = UserKey::new("Firstname.Lastname-Long.Key");
        assert_eq!(d.as_str(), "Firstname.Lastname-Long.Key");
        assert_eq!(d.folded(), "firstname.lastname-long.key");
        assert_eq!(
            format!("{d} {d:?}"),
            "Firstname.Lastname-Long.Key UserKey(\"Firstname.Lastname-Long.Key\")"
        );
        let e = UserKey::new("");
        assert_eq!((e.as_str(), e.folded()), ("", ""));
        // A non-ASCII key already folded keeps one copy.
        assert_eq!(UserKey::new("åsa").as_str(), "åsa");
        assert_eq!(std::mem::size_of::<UserKey>(), 32);
    }

    #[test]
    fn secret_never_prints() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), "***SECRET*** ***SECRET***");
        let p = Person {
            origin: Origin { row: 1, line: 2 },
            key: UserKey::new("a"),
            attrs: Attrs::default(),
            groups: None,
            state: AccountState::Active,
            must_change: None,
            password: Some(Box::new(s)),
            dates: Dates::default(),
            invite: false,
        };
        assert!(!format!("{p:?}").contains("hunter2"));
    }
}
