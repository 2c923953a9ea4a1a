//! dirsync: HR CSV exports → directories (LDAP) and databases (SQL), safely
//! and unattended.
//!
//! `core` is pure (parse, plan, report). Adapters (`backend`) talk to the
//! outside world; `sync` is the only module that joins core and adapters.

pub mod backend;
pub mod clock;
pub mod config;
pub mod core;
pub mod daemon;
pub mod http;
pub mod inbox;
pub mod journal;
pub mod keyfile;
pub mod leases;
pub mod mail;
pub mod paths;
pub mod private_files;
pub mod redact;
pub mod runs;
pub mod secrets;
pub mod sync;
pub mod worker;
