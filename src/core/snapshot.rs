//! The managed accounts as the target holds them now, read once per run.

use std::collections::HashMap;

/// Seeded per process (some resistance to crafted keys), and far faster
/// than SipHash on a million short keys.
type Hasher = foldhash::fast::RandomState;

use super::types::{AccountState, UserKey, Value};

/// One account in the managed scope.
#[derive(Clone, Debug)]
pub struct Account {
    pub key: UserKey,
    /// Indexed like `Person::attrs` (the policy's attribute list).
    pub attrs: Vec<Option<Value>>,
    /// The managed groups the account belongs to (others are not read).
    pub groups: Vec<Value>,
    pub state: AccountState,
    /// When the account became a leaver (Unix seconds), if the target knows.
    pub left_at: Option<i64>,
    /// The target's own name for the account (an LDAP DN, a SQL row id).
    pub locator: Option<String>,
}

/// Target state as plain data.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    accounts: Vec<Account>,
    index: HashMap<UserKey, usize, Hasher>,
    /// Per policy attribute: the target stores it, so it is compared.
    pub managed: Vec<bool>,
    /// Per policy attribute: the target matches it without regard to case
    /// (an LDAP DN component, read back from the DN), so a value that
    /// differs only in case is the same value. Missing entries: false.
    pub case_blind: Vec<bool>,
    /// Accounts from this index on are outside the managed scope, read for
    /// `sync.adopt` only: never matched by key, never absent.
    adoptable_from: Option<usize>,
}

impl Snapshot {
    pub fn new(managed: Vec<bool>) -> Self {
        Snapshot {
            accounts: Vec::new(),
            index: HashMap::default(),
            managed,
            case_blind: Vec::new(),
            adoptable_from: None,
        }
    }

    pub fn with_capacity(managed: Vec<bool>, n: usize) -> Self {
        Snapshot {
            accounts: Vec::with_capacity(n),
            index: HashMap::with_capacity_and_hasher(n, Hasher::default()),
            managed,
            case_blind: Vec::new(),
            adoptable_from: None,
        }
    }

    /// Add an account. A second account with the same (case-insensitive) key
    /// is refused: the target itself is ambiguous and nothing should guess.
    pub fn insert(&mut self, a: Account) -> Result<(), String> {
        if let Some(&i) = self.index.get(&a.key) {
            return Err(format!(
                "the target holds two accounts with the key {:?} ({} and {}); resolve this in the target first",
                a.key.as_str(),
                self.accounts[i]
                    .locator
                    .as_deref()
                    .unwrap_or(self.accounts[i].key.as_str()),
                a.locator.as_deref().unwrap_or(a.key.as_str())
            ));
        }
        self.index.insert(a.key.clone(), self.accounts.len());
        self.accounts.push(a);
        Ok(())
    }

    pub fn get(&self, key: &UserKey) -> Option<(usize, &Account)> {
        self.index.get(key).map(|&i| (i, &self.accounts[i]))
    }

    pub fn account(&self, i: usize) -> &Account {
        &self.accounts[i]
    }

    pub fn accounts(&self) -> &[Account] {
        &self.accounts
    }

    /// Correct what the target's state of account `i` means (an account
    /// disabled while it waits for its user's activation is no leaver).
    pub fn set_state(&mut self, i: usize, state: AccountState) {
        if let Some(a) = self.accounts.get_mut(i) {
            a.state = state;
        }
    }

    pub fn len(&self) -> usize {
        self.accounts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty()
    }

    pub fn active_count(&self) -> usize {
        self.accounts[..self.managed_len()]
            .iter()
            .filter(|a| a.state == AccountState::Active)
            .count()
    }

    /// The accounts in the managed scope (the adoptable ones not counted).
    pub fn managed_len(&self) -> usize {
        self.adoptable_from.unwrap_or(self.accounts.len())
    }

    /// Add accounts outside the managed scope that a row may adopt
    /// (`sync.adopt`); call once, after the managed accounts.
    pub fn add_adoptable(&mut self, accounts: Vec<Account>) {
        self.adoptable_from.get_or_insert(self.accounts.len());
        self.accounts.extend(accounts);
    }

    pub fn is_adoptable(&self, i: usize) -> bool {
        self.adoptable_from.is_some_and(|from| i >= from)
    }
}

impl Snapshot {
    /// Attach group memberships read separately; unknown users are ignored.
    pub fn add_memberships(&mut self, memberships: impl IntoIterator<Item = (UserKey, Value)>) {
        for (user, group) in memberships {
            if let Some(&i) = self.index.get(&user) {
                let groups = &mut self.accounts[i].groups;
                if !groups.iter().any(|g| g.eq_ignore_ascii_case(&group)) {
                    groups.push(group);
                }
            }
        }
    }
}
