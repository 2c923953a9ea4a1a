//! The pure core: parsing, planning and reporting. No I/O, no async, no
//! clock: callers pass bytes in and take bytes out, and `now` is a parameter.
//! Depends on nothing of ours.

pub mod adopt;
pub mod attrs;
mod capacity;
pub mod echo;
pub mod generate;
pub mod plan;
pub mod policy;
pub mod report;
pub mod roster;
pub mod schedule;
pub mod snapshot;
pub mod types;

pub use attrs::Attrs;
pub use plan::{plan, Change, ChangeKind, Class, Diff, Hold, Plan, PlanItem, PlanOptions};
pub use policy::{Column, Policy};
pub use report::{Outcome, Summary, Verdict};
pub use roster::{parse_roster, parse_shared, Entry, FileError, Rejection, Roster, RowError};
pub use snapshot::{Account, Snapshot};
pub use types::{AccountState, Dates, Origin, Person, Secret, UserKey, Value};
