//! Targets: where accounts live. One trait, because there are several real
//! implementations; each adapter lives in its own folder and never imports
//! another.

pub mod guard;
pub mod ldap;
pub mod sql;

use async_trait::async_trait;

use crate::core::{Account, Change, Person, Secret, Snapshot, UserKey};

/// What a backend can fail with as a whole (not one row).
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// Cannot reach or log in to the target.
    #[error("cannot connect: {0}")]
    Connect(String),
    /// The target is not shaped as the policy says (missing table, column…).
    #[error("target does not match the policy: {0}")]
    Schema(String),
    /// The target refused a password (its password policy), in plain words.
    #[error("{0}")]
    PasswordRefused(String),
    /// No account with this key in the managed scope.
    #[error("there is no account {0:?} in the target's managed scope")]
    NoAccount(String),
    /// This target cannot do what was asked.
    #[error("{0}")]
    Unsupported(String),
    /// Anything else the target said.
    #[error("{0}")]
    Other(String),
    /// This process lost its hold on the run (see [`guard`]): the batch was
    /// rolled back, or its operations not sent.
    #[error("this daemon no longer holds the run (its lease lapsed); nothing of the batch was written")]
    Fenced,
}

impl BackendError {
    /// Worth retrying later (the target may come back).
    pub fn is_transient(&self) -> bool {
        matches!(self, BackendError::Connect(_))
    }
}

/// One write, with everything the target needs to make it.
#[derive(Debug, Clone, Copy)]
pub struct Op<'a> {
    pub change: &'a Change,
    pub key: &'a UserKey,
    /// The row, for adds, updates and rejoins.
    pub person: Option<&'a Person>,
    /// The account as the snapshot saw it, when it exists.
    pub account: Option<&'a Account>,
    /// The password to set (adds: from the row or generated).
    pub password: Option<&'a Secret>,
    /// Set "change password next time" (adds and rejoins).
    pub must_change: bool,
    /// Unix seconds, for leaver timestamps.
    pub now: i64,
}

/// The result of one op: `Err` holds the target's message for the results file.
pub type OpResult = Result<(), String>;

/// An entry the writes need that the target lacks and the backend creates
/// when it applies them (LDAP: `[ldap] create_containers`, `[groups]
/// create_missing`), for the preview and the `containers` limit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Missing {
    pub dn: String,
    pub kind: MissingKind,
    /// The ops (indexes into the slice asked about) that need it.
    pub ops: Vec<usize>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MissingKind {
    /// An organisational unit a new DN is placed in.
    Container,
    /// A managed group a member is added to.
    Group,
}

impl MissingKind {
    /// The setting that allows creating it.
    pub fn setting(self) -> &'static str {
        match self {
            MissingKind::Container => "ldap.create_containers",
            MissingKind::Group => "groups.create_missing",
        }
    }
}

#[async_trait]
pub trait Backend: Send + Sync {
    /// Connect, authenticate and read the base of the managed scope.
    async fn health(&self) -> Result<(), BackendError>;

    /// One read of the managed scope.
    async fn snapshot(&self) -> Result<Snapshot, BackendError>;

    /// The accounts outside the managed scope that a row may adopt
    /// (`sync.adopt`), with their managed groups. None by default.
    async fn outside(&self) -> Result<Vec<Account>, BackendError> {
        Ok(Vec::new())
    }

    /// Checks a dry run can make without writing (for example the target's
    /// schema). One entry per op: `Some(problem)` if it would fail.
    async fn validate(&self, ops: &[Op<'_>]) -> Result<Vec<Option<String>>, BackendError> {
        Ok(vec![None; ops.len()])
    }

    /// The entries these ops need that the target lacks and that `apply`
    /// will create first, in creation order (parents first). None by default.
    async fn missing(&self, _ops: &[Op<'_>]) -> Result<Vec<Missing>, BackendError> {
        Ok(Vec::new())
    }

    /// How many ops `sync` hands to one `apply` call.
    fn batch_size(&self) -> usize {
        500
    }

    /// Apply a batch. One result per op, in order; a failing op never stops
    /// the others. `Err` only when the target is unusable as a whole.
    async fn apply(&self, ops: &[Op<'_>]) -> Result<Vec<OpResult>, BackendError>;

    /// Whether `apply` holds part of its writes back until [`Backend::flush`]
    /// (LDAP: the members it adds to groups, sent as one modify per group
    /// for the whole run — a group grown by a modify per batch costs the
    /// server a check of every new value against every value already
    /// there). The results `apply` gives are then final only after `flush`.
    fn holds(&self) -> bool {
        false
    }

    /// Send what `apply` held back. One entry per op handed to `apply`
    /// (calls that returned `Ok`) since the last flush, in order:
    /// `Some(problem)` when its held-back part failed. `Err` when the target
    /// is unusable as a whole; what was held is then dropped (the run
    /// resumes and plans it afresh).
    async fn flush(&self) -> Result<Vec<Option<String>>, BackendError> {
        Ok(Vec::new())
    }

    /// Set one account's password through the target's normal password
    /// write (the activation page) and clear its "must change" flag.
    /// `new_account`: it was created for activation and waits for this
    /// password to be enabled (Active Directory); an existing account's
    /// enabled state is left alone. [`BackendError::PasswordRefused`] when
    /// the target's policy refuses it.
    async fn set_password(&self, key: &UserKey, password: &Secret, new_account: bool) -> Result<(), BackendError> {
        let _ = (key, password, new_account);
        Err(BackendError::Unsupported(
            "this target cannot set a single password".into(),
        ))
    }
}
