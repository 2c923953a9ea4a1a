//! A run under the journal: the same steps as [`super::run_file`], with each
//! write's intent journaled before it is made and its outcome after, and the
//! passwords it generates journaled before use. Called again for the same run
//! after a crash, it resumes: the file is parsed again, the target read
//! again, the plan made again; what the journal says was done keeps its
//! outcome, what was intended but not confirmed is planned afresh against
//! the target as it is now (an add that landed is now "unchanged"), and a
//! password generated before the crash is used again.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use tracing::{info, warn};

use super::writes::Writes;
use super::{generate_password, rejected_file, write_atomically, RunReport, SyncError};
use crate::backend::{Backend, Op};
use crate::config::LoadedPolicy;
use crate::core::plan::Breach;
use crate::core::report::{item_message, write_results_with};
use crate::core::{
    parse_roster, plan, Change, Class, Outcome, PlanItem, PlanOptions, Roster, Secret, Summary, UserKey, Verdict,
};
use crate::journal::{ItemRecord, Journal};

/// The run to do (or resume).
pub struct JournaledRun<'a> {
    pub journal: &'a Journal,
    pub run_id: i64,
    /// The plan of this run is already journaled: resume it.
    pub resuming: bool,
    /// Unix seconds when the run started (the same on every resume).
    pub now: i64,
    /// Checked between batches: stop cleanly (the run resumes later).
    pub stop: &'a (dyn Fn() -> bool + Send + Sync),
}

/// How far a journaled run got.
#[derive(Debug)]
pub enum Finish {
    /// Every item has its outcome and the results file is written.
    Done(RunReport),
    /// Asked to stop; the batch in flight was finished and journaled.
    Stopped,
}

/// A stable name for a plan item across re-plans of the same file.
fn ident(item: &PlanItem) -> String {
    match (item.entry, &item.key) {
        (Some(e), _) => format!("row:{e}"),
        (None, Some(k)) => format!("absent:{}", k.folded()),
        (None, None) => "absent:".to_string(),
    }
}

fn line_of(item: &PlanItem, roster: &Roster) -> Option<i64> {
    let e = item.entry?;
    let origin = match roster.entries.get(e)? {
        crate::core::Entry::Valid(p) => roster.persons.get(*p)?.origin,
        crate::core::Entry::Rejected(r) => r.origin,
    };
    i64::try_from(origin.line).ok()
}

/// The change a journaled name stood for. Diffs are not journaled: their
/// words are in the journaled message.
fn change_named(name: &str, fresh: &Change) -> Change {
    if fresh.name() == name {
        return fresh.clone();
    }
    match name {
        "new" => Change::Add,
        "update" => Change::Update(Box::default()),
        "joiner" => Change::Rejoin(Box::default()),
        "leaver" => Change::Leave,
        "delete" => Change::Delete,
        "unchanged" => Change::Unchanged,
        "absent" => Change::Absent,
        _ => fresh.clone(),
    }
}

fn breaches_json(breaches: &[Breach]) -> String {
    let v: Vec<serde_json::Value> = breaches
        .iter()
        .map(|b| {
            serde_json::json!({
                "class": b.class.as_str(), "count": b.count, "managed": b.managed, "limit": b.limit
            })
        })
        .collect();
    serde_json::Value::Array(v).to_string()
}

fn breaches_from_json(s: Option<&str>) -> Vec<Breach> {
    let Some(v) = s.and_then(|s| serde_json::from_str::<Vec<serde_json::Value>>(s).ok()) else {
        return Vec::new();
    };
    v.iter()
        .filter_map(|b| {
            let class = Class::ALL
                .into_iter()
                .find(|c| Some(c.as_str()) == b["class"].as_str())?;
            Some(Breach {
                class,
                count: usize::try_from(b["count"].as_u64()?).ok()?,
                managed: usize::try_from(b["managed"].as_u64()?).ok()?,
                limit: b["limit"].as_str()?.to_string(),
            })
        })
        .collect()
}

const CONFIRMED: &str = "applied before an interruption; confirmed by reading the target again";

/// Run (or resume) one claimed file under the journal.
pub async fn run_journaled(
    backend: &dyn Backend,
    lp: &LoadedPolicy,
    bytes: &[u8],
    results: &Path,
    jr: &JournaledRun<'_>,
) -> Result<Finish, SyncError> {
    let policy = &lp.policy;
    let journal = jr.journal;
    let run_id = jr.run_id;
    let roster = match parse_roster(bytes, policy) {
        Ok(r) => r,
        Err(e) => {
            warn!(reason = %e, "File rejected as a whole; nothing written.");
            return rejected_file(bytes, policy, results, e).map(Finish::Done);
        }
    };
    let snapshot = backend.snapshot().await?;
    // A resumed run keeps the limits its first plan was checked against:
    // the target now holds part of the run's own writes, which would skew
    // percentages. Items the first plan held are journaled as held.
    let mut plan = plan(
        &roster,
        &snapshot,
        policy,
        jr.now,
        PlanOptions {
            allow_over_limit: jr.resuming,
        },
    );
    let n = plan.items.len();
    let mut outcomes: Vec<Option<Outcome>> = vec![None; n];
    // Messages journaled with an outcome, used as they are in the results.
    let mut messages: Vec<Option<String>> = vec![None; n];
    // Items whose outcome is decided here and not yet journaled.
    let mut unjournaled: Vec<usize> = Vec::new();
    let idents: Vec<String> = plan.items.iter().map(ident).collect();

    let breaches;
    if !jr.resuming {
        breaches = plan.breaches.clone();
        for b in &breaches {
            warn!(class = b.class.as_str(), count = b.count, "Safety limit exceeded.");
        }
        let mut records = Vec::with_capacity(n);
        for (i, item) in plan.items.iter().enumerate() {
            let o = Outcome::from_plan(item, false);
            let message = o.as_ref().map(|o| item_message(item, o, &roster, policy));
            records.push(ItemRecord {
                ident: idents[i].clone(),
                line: line_of(item, &roster),
                user_key: item.key.as_ref().map(|k| k.as_str().to_string()),
                change: change_name(item).to_string(),
                intent: false,
                verdict: o.as_ref().map(|o| o.verdict.as_str().to_string()),
                message,
            });
            outcomes[i] = o;
        }
        journal.record_plan(run_id, &records, &breaches_json(&breaches)).await?;
        info!(items = n, "Plan journaled.");
    } else {
        let run = journal.run(run_id).await?;
        breaches = breaches_from_json(run.as_ref().and_then(|r| r.breaches.as_deref()));
        let mut recorded = journal.items(run_id).await?;
        let mut matched: HashSet<String> = HashSet::with_capacity(n);
        let mut resumed = 0usize;
        for (i, item) in plan.items.iter_mut().enumerate() {
            let Some(r) = recorded.get(&idents[i]) else {
                // Not in the first plan: the target changed while the run
                // was interrupted. Leave it to the next file.
                let o = Outcome::from_plan(item, false).unwrap_or_else(|| {
                    Outcome::new(
                        Verdict::Skipped,
                        Some("not in this run's original plan (the target changed during the run); the next file handles it".into()),
                    )
                });
                outcomes[i] = Some(o);
                continue;
            };
            matched.insert(idents[i].clone());
            if let Some(v) = r.verdict.as_deref().and_then(Verdict::parse) {
                item.change = change_named(&r.change, &item.change);
                outcomes[i] = Some(Outcome::new(v, None));
                messages[i] = Some(r.message.clone().unwrap_or_default());
                continue;
            }
            resumed += 1;
            if item.will_write() {
                continue; // applied below
            }
            if r.intent {
                // Intended, not confirmed, and the target now needs nothing:
                // the write landed before the interruption.
                item.change = change_named(&r.change, &item.change);
                outcomes[i] = Some(Outcome::new(Verdict::Done, Some(CONFIRMED.into())));
            } else {
                outcomes[i] =
                    Some(Outcome::from_plan(item, false).unwrap_or_else(|| Outcome::new(Verdict::Skipped, None)));
            }
            unjournaled.push(i);
        }
        // Items of the first plan the target no longer shows (a deleted account).
        let mut leftovers: Vec<ItemRecord> = recorded
            .drain()
            .filter(|(k, _)| !matched.contains(k))
            .map(|(_, r)| r)
            .collect();
        leftovers.sort_by(|a, b| a.ident.cmp(&b.ident));
        for r in leftovers {
            let change = change_named(&r.change, &Change::Absent);
            let (o, msg) = match r.verdict.as_deref().and_then(Verdict::parse) {
                Some(v) => (Outcome::new(v, None), r.message.clone().unwrap_or_default()),
                None if r.intent && change == Change::Delete => {
                    (Outcome::new(Verdict::Done, None), format!("deleted; {CONFIRMED}"))
                }
                None => (
                    Outcome::new(Verdict::Failed, None),
                    "the account left the target while the run was interrupted; check it".to_string(),
                ),
            };
            plan.items.push(PlanItem {
                key: r.user_key.as_deref().map(UserKey::new),
                entry: None,
                person: None,
                account: None,
                change,
                hold: None,
                note: None,
            });
            let i = plan.items.len() - 1;
            outcomes.push(Some(o));
            messages.push(Some(msg));
            if r.verdict.is_none() {
                unjournaled.push(i);
            }
        }
        info!(items = n, open = resumed, "Resuming a journaled run.");
    }
    let n = plan.items.len();
    let idents: Vec<String> = plan.items.iter().map(ident).collect();

    // Passwords: the row's, one journaled before an interruption, or new.
    let mut sealed = if jr.resuming {
        journal.secrets(run_id).await?
    } else {
        HashMap::new()
    };
    // A write still to make reuses its journaled password (the server may
    // already hold it) or gets a new one, journaled before it is sent; a
    // finished one keeps its journaled password for the credentials mail.
    let mut fresh = vec![false; n];
    let writes = Writes::prepare(&plan, &roster, policy, |i| {
        let known = sealed.remove(&idents[i]);
        if outcomes[i].is_some() {
            return known;
        }
        fresh[i] = known.is_none();
        Some(known.unwrap_or_else(|| generate_password(policy)))
    });
    let write_idx: Vec<usize> = (0..n).filter(|i| outcomes[*i].is_none()).collect();
    let batch = backend.batch_size().max(1);
    for chunk in write_idx.chunks(batch) {
        if (jr.stop)() {
            info!("Stopping between batches; the run resumes on restart.");
            return Ok(Finish::Stopped);
        }
        let intents: Vec<(&str, &str)> = chunk
            .iter()
            .map(|&i| (idents[i].as_str(), change_name(&plan.items[i])))
            .collect();
        let secrets: Vec<(&str, &Secret)> = chunk
            .iter()
            .filter(|&&i| fresh[i])
            .filter_map(|&i| writes.password(i).map(|p| (idents[i].as_str(), p)))
            .collect();
        journal.record_intent(run_id, &intents, &secrets).await?;
        let ops: Vec<Op<'_>> = chunk
            .iter()
            .map(|&i| writes.op(i, &plan, &roster, &snapshot, jr.now))
            .collect();
        // A target failing as a whole ends this attempt; the run stays
        // unfinished and is resumed when the target is back.
        let res = backend.apply(&ops).await?;
        let mut done: Vec<(usize, Outcome)> = Vec::with_capacity(chunk.len());
        for (&i, r) in chunk.iter().zip(res) {
            done.push((i, writes.outcome(i, r, &plan.items[i].change)));
        }
        let texts: Vec<String> = done
            .iter()
            .map(|(i, o)| item_message(&plan.items[*i], o, &roster, policy))
            .collect();
        let rows: Vec<(&str, &str, &str, &str)> = done
            .iter()
            .zip(&texts)
            .map(|((i, o), t)| {
                (
                    idents[*i].as_str(),
                    change_name(&plan.items[*i]),
                    o.verdict.as_str(),
                    t.as_str(),
                )
            })
            .collect();
        journal.record_outcomes(run_id, &rows).await?;
        for ((i, o), t) in done.into_iter().zip(texts) {
            outcomes[i] = Some(o);
            messages[i] = Some(t);
        }
    }

    let outcomes: Vec<Outcome> = outcomes
        .into_iter()
        .map(|o| o.unwrap_or_else(|| Outcome::new(Verdict::Skipped, Some("not processed".into()))))
        .collect();
    if !unjournaled.is_empty() {
        let texts: Vec<String> = unjournaled
            .iter()
            .map(|&i| {
                messages[i]
                    .clone()
                    .unwrap_or_else(|| item_message(&plan.items[i], &outcomes[i], &roster, policy))
            })
            .collect();
        let rows: Vec<(&str, &str, &str, &str)> = unjournaled
            .iter()
            .zip(&texts)
            .map(|(&i, t)| {
                (
                    idents[i].as_str(),
                    change_name(&plan.items[i]),
                    outcomes[i].verdict.as_str(),
                    t.as_str(),
                )
            })
            .collect();
        journal.record_outcomes(run_id, &rows).await?;
        for (&i, t) in unjournaled.iter().zip(texts) {
            messages[i] = Some(t);
        }
    }

    let credentials = writes.credentials(&plan, &roster, policy, &outcomes);

    write_atomically(results, |w| {
        write_results_with(w, &roster, &plan, &outcomes, policy, &messages)
    })?;
    let summary = Summary::of(&plan, &outcomes);
    info!(summary = %summary, "Run finished.");
    Ok(Finish::Done(RunReport {
        summary,
        results: results.to_path_buf(),
        file_error: None,
        breaches,
        warnings: roster.warnings.clone(),
        target_error: None,
        credentials,
    }))
}

/// The change's name, as journaled.
fn change_name(item: &PlanItem) -> &'static str {
    item.change.name()
}
