//! The managed accounts as the target holds them now, read once per run.

use std::hash::BuildHasher;

/// Seeded per process (some resistance to crafted keys), and far faster
/// than SipHash on a million short keys.
type Hasher = foldhash::fast::RandomState;

use super::attrs::Attrs;
use super::types::{AccountState, UserKey, Value};

/// One account in the managed scope.
#[derive(Clone, Debug)]
pub struct Account {
    pub key: UserKey,
    /// Indexed like `Person::attrs` (the policy's attribute list).
    pub attrs: Attrs,
    /// The managed groups the account belongs to (others are not read).
    pub groups: Vec<Value>,
    pub state: AccountState,
    /// When the account became a leaver (Unix seconds), if the target knows.
    pub left_at: Option<i64>,
    /// The target's own name for the account (an LDAP DN, a SQL row id).
    pub locator: Option<Box<str>>,
}

/// Target state as plain data.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    accounts: Vec<Account>,
    /// Positions in `accounts` by folded key: 4 bytes a slot where a map of
    /// keys to positions took 56 (≈ 100 MB less at a million accounts).
    index: Index,
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
            index: Index::default(),
            managed,
            case_blind: Vec::new(),
            adoptable_from: None,
        }
    }

    pub fn with_capacity(managed: Vec<bool>, n: usize) -> Self {
        Snapshot {
            accounts: Vec::with_capacity(n),
            index: Index::with_capacity(n),
            managed,
            case_blind: Vec::new(),
            adoptable_from: None,
        }
    }

    /// Add an account. A second account with the same (case-insensitive) key
    /// is refused: the target itself is ambiguous and nothing should guess.
    pub fn insert(&mut self, a: Account) -> Result<(), String> {
        // A plan holds 32-bit positions (`PlanItem`).
        let Ok(at) = u32::try_from(self.accounts.len()) else {
            return Err(format!(
                "the target holds more than {} accounts in scope; narrow the scope",
                u32::MAX
            ));
        };
        if let Some(i) = self.index.find(&self.accounts, &a.key) {
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
        self.index.insert(&self.accounts, &a.key, at);
        self.accounts.push(a);
        Ok(())
    }

    pub fn get(&self, key: &UserKey) -> Option<(usize, &Account)> {
        self.index.find(&self.accounts, key).map(|i| (i, &self.accounts[i]))
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
            if let Some(i) = self.index.find(&self.accounts, &user) {
                let groups = &mut self.accounts[i].groups;
                if !groups.iter().any(|g| g.eq_ignore_ascii_case(&group)) {
                    // Exact: most accounts are in one or two groups, and a
                    // pushed-to vector would hold room for four.
                    groups.reserve_exact(1);
                    groups.push(group);
                }
            }
        }
    }
}

/// The accounts' positions, found by the folded key they point at.
#[derive(Clone, Default)]
struct Index {
    table: hashbrown::HashTable<u32>,
    hasher: Hasher,
}

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Index({} keys)", self.table.len())
    }
}

impl Index {
    fn with_capacity(n: usize) -> Self {
        Index {
            table: hashbrown::HashTable::with_capacity(n),
            hasher: Hasher::default(),
        }
    }

    fn hash(&self, key: &str) -> u64 {
        self.hasher.hash_one(key)
    }

    fn find(&self, accounts: &[Account], key: &UserKey) -> Option<usize> {
        let k = key.folded();
        self.table
            .find(self.hash(k), |&i| accounts[i as usize].key.folded() == k)
            .map(|&i| i as usize)
    }

    /// Index position `i` (not yet in `accounts`; `Snapshot::insert` keeps
    /// it within 32 bits) under `key`.
    fn insert(&mut self, accounts: &[Account], key: &UserKey, i: u32) {
        let hasher = &self.hasher;
        self.table.insert_unique(hasher.hash_one(key.folded()), i, |&j| {
            hasher.hash_one(accounts[j as usize].key.folded())
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(key: &str) -> Account {
        Account {
            key: UserKey::new(key),
            attrs: Attrs::default(),
            groups: Vec::new(),
            state: AccountState::Active,
            left_at: None,
            locator: None,
        }
    }

    #[test]
    fn accounts_are_found_by_key_in_any_case_as_the_index_grows() {
        // Starting empty, the index grows (and rehashes) many times.
        let mut s = Snapshot::new(Vec::new());
        for i in 0..5000 {
            s.insert(account(&format!("User{i}"))).expect("unique"); // ok: test
        }
        for i in 0..5000 {
            let (at, a) = s.get(&UserKey::new(&format!("uSER{i}"))).expect("found"); // ok: test
            assert_eq!((at, a.key.as_str()), (i, format!("User{i}").as_str()));
        }
        assert!(s.get(&UserKey::new("user5000")).is_none());
        let e = s
            .insert(account("USER42"))
            .expect_err("a second account with the same key"); // ok: test
        assert!(e.contains("two accounts with the key"), "{e}");
        assert_eq!(s.len(), 5000);
        // Memberships find their account through the same index.
        s.add_memberships([(UserKey::new("user7"), Value::from("staff"))]);
        assert_eq!(s.account(7).groups, vec![Value::from("staff")]);
        // A clone answers alike.
        let c = s.clone();
        assert_eq!(c.get(&UserKey::new("USER4999")).map(|(i, _)| i), Some(4999));
    }
}
