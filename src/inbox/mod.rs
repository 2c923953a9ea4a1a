//! Where files come from. A folder inbox is a drop folder on this machine;
//! each file that is complete is claimed by an atomic rename into
//! `processing/`, and after its run moved to `archive/DATE/` (or
//! `rejected/`) with its results file beside it. Nothing is ever deleted.

pub mod folder;

pub use folder::{Claim, FolderInbox};
