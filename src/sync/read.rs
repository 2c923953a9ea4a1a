//! The read phase of a pass: the file parsed on a blocking thread while the
//! target is read, so a nightly run pays for the slower of the two, not
//! both. The file's verdict still comes first: a rejected file is rejected
//! whatever the target says, and its read is dropped unfinished. A target
//! that opening would create (the embedded database's first run, or
//! `create_schema` tables on a server) is opened only after the file passed.

use std::sync::Arc;
use std::time::Instant;

use futures::future::{self, Either};

use super::target::{open_backend, read_target, OpenError};
use super::SyncError;
use crate::backend::sql::creates_on_open;
use crate::backend::Backend;
use crate::config::{Config, LoadedPolicy, TargetConfig};
use crate::core::policy::Deliver;
use crate::core::{parse_shared, FileError, Roster, Snapshot};
use crate::journal::Journal;

/// The file and the target, read.
pub(super) struct Inputs {
    pub roster: Roster,
    pub backend: Box<dyn Backend>,
    pub snapshot: Snapshot,
    pub parse_ms: u64,
    pub snapshot_ms: u64,
}

/// How the read phase ended.
pub(super) enum Read {
    Ready(Box<Inputs>),
    /// The file is refused as a whole (the target was not needed).
    Rejected(FileError),
    /// The file is fine; the target could not be opened or read.
    TargetDown(String),
}

/// What reading the target gave, with how long it took.
type TargetRead = (Result<(Box<dyn Backend>, Snapshot), TargetFailure>, u64);

enum TargetFailure {
    Config(String),
    Down(String),
    Journal(SyncError),
}

async fn read_the_target(config: &Config, journal: &Journal, lp: &LoadedPolicy) -> TargetRead {
    let t = Instant::now();
    let read = async {
        let backend = open_backend(config, lp).await.map_err(|e| match e {
            OpenError::Config(m) => TargetFailure::Config(m),
            OpenError::Target(e) => TargetFailure::Down(e.to_string()),
        })?;
        let mut snapshot = read_target(backend.as_ref(), &lp.policy)
            .await
            .map_err(|e| TargetFailure::Down(e.to_string()))?;
        if lp.policy.passwords.deliver == Deliver::Activation {
            super::activation::awaiting_users(config, journal, lp, &mut snapshot)
                .await
                .map_err(TargetFailure::Journal)?;
        }
        Ok((backend, snapshot))
    };
    let r = read.await;
    (r, t.elapsed().as_millis() as u64)
}

/// Parse `bytes` and read the target at once.
pub(super) async fn read_both(
    config: &Config,
    journal: &Journal,
    lp: &LoadedPolicy,
    bytes: &Arc<Vec<u8>>,
) -> Result<Read, SyncError> {
    let t = Instant::now();
    let (file, policy) = (Arc::clone(bytes), lp.policy.clone());
    let parsing = tokio::task::spawn_blocking(move || {
        let r = parse_shared(&file, &policy);
        (r, t.elapsed().as_millis() as u64)
    });
    let mut reading = std::pin::pin!(read_the_target(config, journal, lp));
    // Opening would create tables or the database: not for a file that may
    // yet be rejected.
    let creates = matches!(config.target(lp), Ok(TargetConfig::Sql(t)) if creates_on_open(t));
    let stopped = |e: tokio::task::JoinError| SyncError::Config(format!("parsing the file stopped: {e}"));
    let (parsed, read) = if creates {
        (parsing.await.map_err(stopped)?, None)
    } else {
        match future::select(parsing, reading.as_mut()).await {
            Either::Left((parsed, _)) => (parsed.map_err(stopped)?, None),
            Either::Right((read, parsing)) => (parsing.await.map_err(stopped)?, Some(read)),
        }
    };
    let (roster, parse_ms) = match parsed {
        (Ok(r), ms) => (r, ms),
        // Nothing of the target is needed: an unfinished read is dropped.
        (Err(e), _) => return Ok(Read::Rejected(e)),
    };
    let (read, snapshot_ms) = match read {
        Some(r) => r,
        None => reading.await,
    };
    match read {
        Ok((backend, snapshot)) => Ok(Read::Ready(Box::new(Inputs {
            roster,
            backend,
            snapshot,
            parse_ms,
            snapshot_ms,
        }))),
        Err(TargetFailure::Config(m)) => Err(SyncError::Config(m)),
        Err(TargetFailure::Down(m)) => Ok(Read::TargetDown(m)),
        Err(TargetFailure::Journal(e)) => Err(e),
    }
}
