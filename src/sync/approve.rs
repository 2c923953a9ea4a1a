//! Approving or rejecting the changes a safety limit held back.
//!
//! An approval applies exactly the held changes that were shown: it reads
//! the target again and plans the journaled file again (the file is read
//! once, and handed to the pass); when the changes of
//! the approved classes are no longer the ones journaled as held (more of
//! them, or different ones), it refuses and says why. Otherwise it records
//! who approved what, reopens those items, and drives the run through the
//! one pipeline, which applies each still while it reads the same and
//! reports one no longer needed as such.

use std::collections::{BTreeSet, HashMap};

use super::file::{read_file, FileBytes};
use super::pipeline::{drive_read, Ctx, Finish};
use super::resume::{detail, item_id};
use super::target::{open_backend, read_target, OpenError};
use super::{RunReport, SyncError};
use crate::clock::now_ms;
use crate::core::{parse_roster, plan, Class, PlanOptions, Verdict};
use crate::journal::{Approval, Decision, ItemId, ItemRecord, RunRecord, RunState};

/// What an approval came to.
#[derive(Debug)]
pub enum Approved {
    /// The held changes were applied (or found no longer needed).
    Applied(Box<RunReport>),
    /// The plan changed since it was shown; nothing written. The reasons.
    Refused(Vec<String>),
    /// Asked to stop mid-way; the approval stands and the run resumes.
    Stopped,
}

async fn awaiting(ctx: &Ctx<'_>, id: i64) -> Result<RunRecord, SyncError> {
    let run = ctx.journal.run(id).await?.ok_or(SyncError::NoRun(id))?;
    let why = match (run.state, run.superseded_by) {
        (RunState::AwaitingApproval, _) if !run.from_cli() && !run.filed => {
            "the daemon has not filed it into the archive yet (it does so right after the run, and at its next \
             start); try again in a moment"
                .to_string()
        }
        (RunState::AwaitingApproval, _) => return Ok(run),
        (RunState::Superseded, Some(n)) => format!("a newer file (run {n}) replaced it; approve that run instead"),
        _ => "it holds nothing waiting for approval".to_string(),
    };
    Err(SyncError::State {
        id,
        state: run.state.as_str(),
        why,
    })
}

/// The held items, and the classes to decide on (all held ones when none given).
fn held_classes(id: i64, records: &HashMap<ItemId, ItemRecord>, asked: &[Class]) -> Result<BTreeSet<Class>, SyncError> {
    let held: BTreeSet<Class> = records
        .values()
        .filter(|r| r.verdict == Some(Verdict::Held))
        .filter_map(|r| r.change.class())
        .collect();
    if asked.is_empty() {
        return Ok(held);
    }
    let asked: BTreeSet<Class> = asked.iter().copied().collect();
    if let Some(c) = asked.iter().find(|c| !held.contains(c)) {
        let list: Vec<&str> = held.iter().map(|c| c.as_str()).collect();
        return Err(SyncError::State {
            id,
            state: RunState::AwaitingApproval.as_str(),
            why: format!("nothing of class {} is held (held: {})", c.as_str(), list.join(", ")),
        });
    }
    Ok(asked)
}

fn who(r: &ItemRecord) -> String {
    let line = r
        .line
        .map(|l| format!("line {l}"))
        .unwrap_or_else(|| "absent account".into());
    format!("{line} ({})", r.user_key.as_deref().unwrap_or("?"))
}

/// Approve the held changes of `classes` (all held classes when empty).
pub async fn approve(ctx: &Ctx<'_>, id: i64, classes: &[Class], by: &str) -> Result<Approved, SyncError> {
    let run = awaiting(ctx, id).await?;
    let records = ctx.journal.items(id).await?;
    let classes = held_classes(id, &records, classes)?;
    let lp = ctx
        .config
        .policies
        .get(&run.policy)
        .ok_or_else(|| SyncError::Config(format!("run {id}: policy {:?} is no longer configured", run.policy)))?;
    let bytes = read_file(&run, run.file_path())?;
    let policy = &lp.policy;

    // What the plan says now, over the limits.
    let mut conflicts = Vec::new();
    match parse_roster(&bytes, policy) {
        Err(e) => conflicts.push(format!("the file no longer passes the policy's checks: {e}")),
        Ok(roster) => {
            let backend = open_backend(ctx.config, lp).await.map_err(|e| match e {
                OpenError::Config(m) => SyncError::Config(m),
                OpenError::Target(e) => SyncError::Config(format!(
                    "target unavailable: {e}; nothing approved, try again when it is back"
                )),
            })?;
            let snapshot = read_target(backend.as_ref(), policy).await.map_err(|e| {
                SyncError::Config(format!(
                    "target unavailable: {e}; nothing approved, try again when it is back"
                ))
            })?;
            let fresh = plan(
                &roster,
                &snapshot,
                policy,
                run.claimed_at.div_euclid(1000),
                PlanOptions { allow_over_limit: true },
            );
            for item in &fresh.items {
                let kind = item.change.kind();
                let Some(class) = kind.class().filter(|c| classes.contains(c)) else {
                    continue;
                };
                if item.is_held() {
                    continue; // held by the policy itself, never written
                }
                let shown = records.get(&item_id(item)).filter(|r| r.verdict == Some(Verdict::Held));
                let now = detail(item, policy);
                match shown {
                    Some(r) if r.change == kind && r.detail == now => {}
                    Some(r) => conflicts.push(format!(
                        "{}: shown as {} {}, now {} {}",
                        who(r),
                        r.change.as_str(),
                        r.detail.as_deref().unwrap_or(""),
                        kind.as_str(),
                        now.as_deref().unwrap_or("")
                    )),
                    None => conflicts.push(format!(
                        "{} ({}): a {} that was not shown for approval (the target changed since the run)",
                        item.key.as_ref().map(|k| k.as_str()).unwrap_or("?"),
                        class.as_str(),
                        kind.as_str(),
                    )),
                }
            }
        }
    }
    let classes: Vec<Class> = classes.into_iter().collect();
    if !conflicts.is_empty() {
        let note = format!(
            "approval by {by} refused: the plan changed since it was shown: {}; nothing written. \
             Run the file again (or drop a new one) and approve that run",
            conflicts.join("; ")
        );
        ctx.journal
            .decide(
                id,
                &Approval {
                    seq: 0,
                    decision: Decision::Refused,
                    classes,
                    by: by.to_string(),
                    at: now_ms(),
                    note: Some(note),
                },
            )
            .await?;
        return Ok(Approved::Refused(conflicts));
    }
    let names: Vec<&str> = classes.iter().map(|c| c.as_str()).collect();
    ctx.journal
        .decide(
            id,
            &Approval {
                seq: 0,
                decision: Decision::Approve,
                note: Some(format!("{} approved by {by}", names.join(", "))),
                classes,
                by: by.to_string(),
                at: now_ms(),
            },
        )
        .await?;
    tracing::info!(run_id = id, by = ?by, classes = ?names, "Held changes approved.");
    // The pass reads the target again (it applies each change only while
    // the target still reads as planned); the file it has in hand, checked.
    let file = FileBytes {
        bytes,
        sha256: run.sha256.clone(),
    };
    match drive_read(ctx, id, Some(file)).await? {
        Finish::Ended(report) => Ok(Approved::Applied(report)),
        Finish::Stopped => Ok(Approved::Stopped),
    }
}

/// Close a run awaiting approval without writing its held changes.
pub async fn reject(ctx: &Ctx<'_>, id: i64, by: &str) -> Result<(), SyncError> {
    let run = awaiting(ctx, id).await?;
    let records = ctx.journal.items(id).await?;
    let classes: Vec<Class> = held_classes(id, &records, &[])?.into_iter().collect();
    let names: Vec<&str> = classes.iter().map(|c| c.as_str()).collect();
    ctx.journal
        .decide(
            run.id,
            &Approval {
                seq: 0,
                decision: Decision::Reject,
                note: Some(format!(
                    "held {} rejected by {by}; nothing of them written",
                    names.join(", ")
                )),
                classes,
                by: by.to_string(),
                at: now_ms(),
            },
        )
        .await?;
    tracing::info!(run_id = id, by = ?by, "Held changes rejected.");
    Ok(())
}
