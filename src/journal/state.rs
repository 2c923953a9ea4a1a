//! Where a run is: the states of its life, as the journal stores them.

/// Where a run is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RunState {
    /// The file is claimed; nothing planned yet.
    Claimed,
    /// The plan is journaled; writes are being made (or were, when the
    /// process died: resumable).
    Running,
    /// `check`: planned and validated, nothing written.
    Preview,
    /// A safety limit held a class back; the rest is applied. Waits for
    /// `dirsync runs approve` or `reject`.
    AwaitingApproval,
    /// Every item has its outcome.
    Done,
    /// The file was rejected as a whole; nothing written.
    Rejected,
    /// Identical to a file applied before; not run again.
    Duplicate,
    /// A newer file for the same inbox replaced this run while it awaited approval.
    Superseded,
    /// The target failed (down before the snapshot, or gone mid-run). Resumable.
    Failed,
    /// Its file vanished; nothing more can be done.
    Abandoned,
}

impl RunState {
    pub const ALL: [RunState; 10] = [
        RunState::Claimed,
        RunState::Running,
        RunState::Preview,
        RunState::AwaitingApproval,
        RunState::Done,
        RunState::Rejected,
        RunState::Duplicate,
        RunState::Superseded,
        RunState::Failed,
        RunState::Abandoned,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Claimed => "claimed",
            RunState::Running => "running",
            RunState::Preview => "preview",
            RunState::AwaitingApproval => "awaiting-approval",
            RunState::Done => "done",
            RunState::Rejected => "rejected",
            RunState::Duplicate => "duplicate",
            RunState::Superseded => "superseded",
            RunState::Failed => "failed",
            RunState::Abandoned => "abandoned",
        }
    }

    pub fn parse(s: &str) -> Option<RunState> {
        RunState::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// There is work left: the run resumes (claimed, running, failed).
    pub fn resumable(self) -> bool {
        matches!(self, RunState::Claimed | RunState::Running | RunState::Failed)
    }
}
