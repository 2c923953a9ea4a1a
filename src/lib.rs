//! dirsync: HR CSV exports → directories (LDAP) and databases (SQL), safely
//! and unattended.
//!
//! `core` is pure (parse, plan, report). Adapters (`backend`) talk to the
//! outside world; `sync` is the only module that joins core and adapters.

/// `println!` for the command line's output: a closed stdout (the output
/// piped into `head`) or a full disk does not panic the command, and what it
/// was doing goes on (a run's outcome is journaled, not printed).
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {{
        use ::std::io::Write as _;
        let _ = ::std::writeln!(::std::io::stdout().lock(), $($arg)*);
    }};
}

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
