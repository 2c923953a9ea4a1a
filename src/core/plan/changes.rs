//! What a plan is made of: each item's change (and its class, kind and
//! held state), the attribute changes of an update, the limits' breaches.

use std::fmt;

use super::PlanItem;
use crate::core::capacity;
use crate::core::policy::Policy;
use crate::core::roster::RowError;
use crate::core::types::Value;

/// What one attribute goes from and to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttrChange {
    pub attr: usize,
    pub old: Option<Value>,
    pub new: Option<Value>,
}

/// The difference between a row and its account.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diff {
    pub attrs: Vec<AttrChange>,
    pub groups_add: Vec<Value>,
    pub groups_remove: Vec<Value>,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.attrs.is_empty() && self.groups_add.is_empty() && self.groups_remove.is_empty()
    }

    /// "title: Clerk → Accountant; groups +vpn −staff" for the results file.
    pub fn describe(&self, policy: &Policy) -> String {
        let mut parts: Vec<String> = self
            .attrs
            .iter()
            .map(|c| {
                format!(
                    "{}: {} → {}",
                    policy.attributes.get(c.attr).map(String::as_str).unwrap_or("?"),
                    c.old.as_deref().unwrap_or("(empty)"),
                    c.new.as_deref().unwrap_or("(empty)")
                )
            })
            .collect();
        if !self.groups_add.is_empty() || !self.groups_remove.is_empty() {
            let g: Vec<String> = self
                .groups_add
                .iter()
                .map(|g| format!("+{g}"))
                .chain(self.groups_remove.iter().map(|g| format!("-{g}")))
                .collect();
            parts.push(format!("groups {}", g.join(" ")));
        }
        parts.join("; ")
    }
}

/// One planned change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    Add,
    /// Boxed: most items are unchanged, and the plan holds one per row.
    Update(Box<Diff>),
    Unchanged,
    Leave,
    Rejoin(Box<Diff>),
    Delete,
    /// Absent from the file; the policy says leave it alone.
    Absent,
    /// Boxed like the diffs, so that a change takes 16 bytes.
    Reject(Box<Vec<RowError>>),
    /// `sync.adopt`: take over the one unmanaged account with the row's
    /// value (`PlanItem::account`), with the row's differences.
    Adopt(Box<Diff>),
    /// `[lifecycle]`: the row's start date is ahead; the account is created
    /// (or re-enabled) then (`PlanItem::due`).
    Scheduled,
    /// An existing account's password set — from the row, generated, or an
    /// activation link sent (`[passwords] existing`) — with the row's
    /// other differences (maybe none).
    Reset(Box<Diff>),
}

/// Change classes that safety limits count.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Class {
    Adds,
    Updates,
    Leavers,
    Rejoins,
    Deletes,
    Adopts,
    #[serde(rename = "password_resets")]
    PasswordResets,
}

impl Class {
    pub const ALL: [Class; 7] = [
        Class::Adds,
        Class::Updates,
        Class::Leavers,
        Class::Rejoins,
        Class::Deletes,
        Class::Adopts,
        Class::PasswordResets,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Adds => "adds",
            Class::Updates => "updates",
            Class::Leavers => "leavers",
            Class::Rejoins => "rejoins",
            Class::Deletes => "deletes",
            Class::Adopts => "adopts",
            Class::PasswordResets => "password_resets",
        }
    }
}

/// A change without its data: what the journal records and people read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ChangeKind {
    Add,
    Update,
    Unchanged,
    Leave,
    Rejoin,
    Delete,
    Absent,
    Reject,
    Adopt,
    Scheduled,
    Reset,
}

impl ChangeKind {
    pub const ALL: [ChangeKind; 11] = [
        ChangeKind::Add,
        ChangeKind::Update,
        ChangeKind::Unchanged,
        ChangeKind::Leave,
        ChangeKind::Rejoin,
        ChangeKind::Delete,
        ChangeKind::Absent,
        ChangeKind::Reject,
        ChangeKind::Adopt,
        ChangeKind::Scheduled,
        ChangeKind::Reset,
    ];

    /// The word in the results file's `change` column (seed: New / Update / Old / Error).
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Add => "new",
            ChangeKind::Update => "update",
            ChangeKind::Unchanged => "unchanged",
            ChangeKind::Leave => "leaver",
            ChangeKind::Rejoin => "joiner",
            ChangeKind::Delete => "delete",
            ChangeKind::Absent => "absent",
            ChangeKind::Reject => "error",
            ChangeKind::Adopt => "adopt",
            ChangeKind::Scheduled => "scheduled",
            ChangeKind::Reset => "reset",
        }
    }

    pub fn parse(s: &str) -> Option<ChangeKind> {
        ChangeKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The kind of change a safety-limit class counts.
    pub fn of_class(class: Class) -> ChangeKind {
        match class {
            Class::Adds => ChangeKind::Add,
            Class::Updates => ChangeKind::Update,
            Class::Leavers => ChangeKind::Leave,
            Class::Rejoins => ChangeKind::Rejoin,
            Class::Deletes => ChangeKind::Delete,
            Class::Adopts => ChangeKind::Adopt,
            Class::PasswordResets => ChangeKind::Reset,
        }
    }

    pub fn class(self) -> Option<Class> {
        Class::ALL.into_iter().find(|c| ChangeKind::of_class(*c) == self)
    }

    /// The change as a plan would hold it, without its data (a diff is
    /// empty): for a journaled item whose change is no longer planned.
    pub fn bare(self) -> Change {
        match self {
            ChangeKind::Add => Change::Add,
            ChangeKind::Update => Change::Update(Box::default()),
            ChangeKind::Unchanged => Change::Unchanged,
            ChangeKind::Leave => Change::Leave,
            ChangeKind::Rejoin => Change::Rejoin(Box::default()),
            ChangeKind::Delete => Change::Delete,
            ChangeKind::Absent => Change::Absent,
            ChangeKind::Reject => Change::Reject(Box::default()),
            ChangeKind::Adopt => Change::Adopt(Box::default()),
            ChangeKind::Scheduled => Change::Scheduled,
            ChangeKind::Reset => Change::Reset(Box::default()),
        }
    }
}

impl Change {
    pub fn kind(&self) -> ChangeKind {
        match self {
            Change::Add => ChangeKind::Add,
            Change::Update(_) => ChangeKind::Update,
            Change::Unchanged => ChangeKind::Unchanged,
            Change::Leave => ChangeKind::Leave,
            Change::Rejoin(_) => ChangeKind::Rejoin,
            Change::Delete => ChangeKind::Delete,
            Change::Absent => ChangeKind::Absent,
            Change::Reject(_) => ChangeKind::Reject,
            Change::Adopt(_) => ChangeKind::Adopt,
            Change::Scheduled => ChangeKind::Scheduled,
            Change::Reset(_) => ChangeKind::Reset,
        }
    }

    /// The word in the results file's `change` column (seed: New / Update / Old / Error).
    pub fn name(&self) -> &'static str {
        self.kind().as_str()
    }

    pub fn class(&self) -> Option<Class> {
        match self {
            Change::Add => Some(Class::Adds),
            Change::Update(_) => Some(Class::Updates),
            Change::Leave => Some(Class::Leavers),
            Change::Rejoin(_) => Some(Class::Rejoins),
            Change::Delete => Some(Class::Deletes),
            Change::Adopt(_) => Some(Class::Adopts),
            Change::Reset(_) => Some(Class::PasswordResets),
            Change::Unchanged | Change::Absent | Change::Reject(_) | Change::Scheduled => None,
        }
    }

    /// Whether applying it writes to the target.
    pub fn writes(&self) -> bool {
        self.class().is_some()
    }
}

/// Why a change is not applied although it is valid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Hold {
    /// Over a safety limit (result `held`).
    Limit(String),
    /// The policy does not allow this kind of change (result `skipped`).
    Policy(String),
}

/// A safety limit that the plan exceeds.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Breach {
    pub class: Class,
    pub count: usize,
    pub managed: usize,
    pub limit: String,
}

impl fmt::Display for Breach {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.limit.starts_with(capacity::SETTING) {
            return write!(f, "{} adds exceed limits.{}; held for approval", self.count, self.limit);
        }
        write!(
            f,
            "{} {} exceed limits.{} ({}; {} managed accounts); held for approval",
            self.count,
            self.class.as_str(),
            self.class.as_str(),
            self.limit,
            self.managed
        )
    }
}

/// The whole plan.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Roster entries in input order, then absent accounts in key order.
    pub items: Vec<PlanItem>,
    pub breaches: Vec<Breach>,
    /// `on_limit = "stop"` and a limit was exceeded: nothing is written.
    pub stopped: bool,
}

impl Plan {
    pub fn count(&self, class: Class) -> usize {
        self.items.iter().filter(|i| i.change.class() == Some(class)).count()
    }

    /// The earliest time something of this plan falls due (`[lifecycle]`).
    pub fn next_due(&self) -> Option<i64> {
        self.items.iter().filter_map(PlanItem::due).min()
    }
}

/// Options an operator sets per run.
#[derive(Clone, Copy, Debug, Default)]
pub struct PlanOptions {
    /// Apply classes over their limits (the operator has looked).
    pub allow_over_limit: bool,
}
