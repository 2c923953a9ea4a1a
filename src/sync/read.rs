//! The read phase of a pass: the file parsed on a blocking thread while the
//! target is read, so a nightly run pays for the slower of the two, not
//! both. The file's verdict still comes first: a rejected file is rejected
//! whatever the target says, and its read is dropped unfinished.

use std::sync::Arc;
use std::time::Instant;

use futures::future::{self, Either};

use super::target::{open_backend, read_target, OpenError};
use super::SyncError;
use crate::backend::Backend;
use crate::config::{Config, LoadedPolicy};
use crate::core::policy::Deliver;
use crate::core::{parse_roster, FileError, Roster, Snapshot};
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
        let r = parse_roster(&file, &policy);
        (r, t.elapsed().as_millis() as u64)
    });
    let reading = std::pin::pin!(read_the_target(config, journal, lp));
    let ((parsed, parse_ms), target) = match future::select(parsing, reading).await {
        Either::Left((parsed, reading)) => {
            let parsed = parsed.map_err(|e| SyncError::Config(format!("parsing the file stopped: {e}")))?;
            if let (Err(e), _) = parsed {
                // Nothing of the target is needed: the read is dropped.
                return Ok(Read::Rejected(e));
            }
            (parsed, reading.await)
        }
        Either::Right((target, parsing)) => {
            let parsed = parsing
                .await
                .map_err(|e| SyncError::Config(format!("parsing the file stopped: {e}")))?;
            (parsed, target)
        }
    };
    let roster = match parsed {
        Ok(r) => r,
        Err(e) => return Ok(Read::Rejected(e)),
    };
    let (read, snapshot_ms) = target;
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
