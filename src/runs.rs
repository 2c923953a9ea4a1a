//! `dirsync runs` and `dirsync runs show ID`: the journal, for people. Runs
//! from the command line (inbox `(cli)`) and the daemon alike.

use std::process::ExitCode;

use crate::clock::timestamp;
use crate::config::Config;
use crate::core::Verdict;
use crate::journal::{JournalError, Lease, RunRecord, RunState};

fn when(ms: Option<i64>) -> String {
    ms.map(timestamp).unwrap_or_else(|| "-".into())
}

/// A value from outside (a file name, a key) on one line of a table.
fn cell(s: &str) -> String {
    s.escape_debug().to_string()
}

/// Recent runs, newest first.
pub async fn list(config: &Config, limit: i64) -> Result<ExitCode, JournalError> {
    let journal = crate::sync::open_journal(config).await?;
    let runs = journal.recent_runs(limit.max(1)).await?;
    if runs.is_empty() {
        say!("no runs yet (journal {})", journal.describe());
        return Ok(ExitCode::SUCCESS);
    }
    let ids: Vec<i64> = runs.iter().map(|r| r.id).collect();
    let reruns = journal.reruns(&ids).await?;
    say!("id\tfile\tinbox\tstarted\tfinished\tstate\tcounts");
    for r in &runs {
        // A run the daemon started on a scheduled change's day (`[lifecycle]`).
        let scheduled = reruns
            .get(&r.id)
            .map(|of| format!(" (scheduled: re-run of {of})"))
            .unwrap_or_default();
        say!(
            "{}\t{}\t{}\t{}\t{}\t{}{scheduled}\t{}",
            r.id,
            cell(&r.file_name),
            cell(&r.inbox),
            when(r.started.or(Some(r.claimed_at))),
            when(r.finished),
            r.state.as_str(),
            r.summary.as_deref().unwrap_or("-")
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn header(r: &RunRecord) {
    say!("run {}", r.id);
    say!("file      {}", cell(&r.file_name));
    say!("inbox     {}", cell(&r.inbox));
    say!("policy    {} (target {})", r.policy, r.target);
    say!("sha256    {}", r.sha256);
    say!("claimed   {}", timestamp(r.claimed_at));
    say!("started   {}", when(r.started));
    say!("finished  {}", when(r.finished));
    say!("state     {}", r.state.as_str());
    if r.forced {
        say!("forced    yes (.force marker)");
    }
    if r.allow_over_limit {
        say!("limits    overridden (--allow-over-limit)");
    }
    say!("counts    {}", r.summary.as_deref().unwrap_or("-"));
    say!("file at   {}", r.file_path().display());
    if let Some(p) = &r.results {
        say!("results   {}", p.display());
    }
    if let Some(s) = &r.submitter {
        say!("mailed to {}", cell(s));
    }
    for b in &r.breaches {
        say!("limit     {b}");
    }
    if let Some(n) = &r.note {
        say!("note      {n}");
    }
    if let Some(w) = &r.worker {
        say!("worked by {}", cell(w));
    }
}

/// One run with its held changes, rejected and failed rows, and decisions.
pub async fn show(config: &Config, id: i64) -> Result<ExitCode, JournalError> {
    let journal = crate::sync::open_journal(config).await?;
    let Some(r) = journal.run(id).await? else {
        eprintln!(
            "error: no run {id} in the journal {}; `dirsync runs` lists them",
            journal.describe()
        );
        return Ok(ExitCode::from(2));
    };
    header(&r);
    let lease = format!("run:{id}");
    if let Some(l) = journal.leases().await?.into_iter().find(|l| l.live && l.name == lease) {
        say!("held by   {} (lease until {})", cell(&l.owner), timestamp(l.until));
    }
    let schedule = journal.schedule(id).await?;
    if let Some(of) = schedule.rerun_of {
        say!("scheduled re-run of run {of}: its scheduled changes fell due ([lifecycle])");
    }
    if let Some(due) = schedule.due {
        say!(
            "next due  {} (scheduled joiners or leavers; the daemon runs the inbox's latest file again then)",
            timestamp(due)
        );
    }
    for a in journal.approvals(id).await? {
        let classes: Vec<&str> = a.classes.iter().map(|c| c.as_str()).collect();
        say!(
            "decision  {} {} by {} at {}{}",
            a.decision.as_str(),
            classes.join(","),
            cell(&a.by),
            timestamp(a.at),
            a.note.map(|n| format!(": {n}")).unwrap_or_default()
        );
    }
    let items = journal.problem_items(id).await?;
    let (held, other): (Vec<_>, Vec<_>) = items.iter().partition(|it| it.verdict == Some(Verdict::Held));
    if !held.is_empty() {
        say!();
        let waiting = if r.state == RunState::AwaitingApproval {
            format!(" — approve with `dirsync runs approve {id}` (or --class CLASS), or `dirsync runs reject {id}`")
        } else {
            String::new()
        };
        say!("held changes ({}){waiting}", held.len());
        say!("line\tkey\tchange\tdiff");
        for it in &held {
            say!(
                "{}\t{}\t{}\t{}",
                it.line.map(|l| l.to_string()).unwrap_or_else(|| "-".into()),
                cell(it.user_key.as_deref().unwrap_or("-")),
                it.change.as_str(),
                it.detail.as_deref().unwrap_or("")
            );
        }
    }
    let links = journal.run_activations(id).await?;
    if !links.is_empty() {
        let now = crate::clock::now_unix();
        say!();
        say!(
            "activations ({}) — `dirsync activation resend KEY` mails a new link",
            links.len()
        );
        say!("key\temail\tstate\tissued\texpires\tused");
        for a in &links {
            let at = |s: Option<i64>| {
                s.map(|s| timestamp(s.saturating_mul(1000)))
                    .unwrap_or_else(|| "-".into())
            };
            say!(
                "{}\t{}\t{}\t{}\t{}\t{}",
                cell(&a.user_key),
                cell(a.email.as_deref().unwrap_or("-")),
                a.state(now).as_str(),
                at(Some(a.issued)),
                at(Some(a.expires)),
                at(a.used_at)
            );
        }
        say!();
    }
    if other.is_empty() {
        say!("no rejected or failed rows");
    } else {
        say!();
        say!("line\tkey\tchange\tresult\tmessage");
        for it in &other {
            say!(
                "{}\t{}\t{}\t{}\t{}",
                it.line.map(|l| l.to_string()).unwrap_or_else(|| "-".into()),
                cell(it.user_key.as_deref().unwrap_or("-")),
                it.change.as_str(),
                it.verdict.map(Verdict::as_str).unwrap_or("pending"),
                it.message.as_deref().unwrap_or("")
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `dirsync runs daemons`: the daemons sharing the journal and what each
/// holds now (runs, targets, files being claimed).
pub async fn daemons(config: &Config) -> Result<ExitCode, JournalError> {
    let journal = crate::sync::open_journal(config).await?;
    let live: Vec<Lease> = journal.leases().await?.into_iter().filter(|l| l.live).collect();
    let present: Vec<&Lease> = live.iter().filter(|l| l.name.starts_with("daemon:")).collect();
    if present.is_empty() {
        say!(
            "no daemon is at work on the journal {} (none runs, or none renewed its presence within [service] lease_seconds)",
            journal.describe()
        );
    } else {
        say!("daemon\tseen until\tholds");
    }
    let holds = |owner: &str| -> String {
        let held: Vec<&str> = live
            .iter()
            .filter(|l| l.owner == owner && !l.name.starts_with("daemon:"))
            .map(|l| l.name.as_str())
            .collect();
        if held.is_empty() {
            "-".into()
        } else {
            held.join(", ")
        }
    };
    for d in &present {
        say!("{}\t{}\t{}", cell(&d.owner), timestamp(d.until), cell(&holds(&d.owner)));
    }
    // Leases of processes without a presence: commands (`apply`, `runs approve`).
    for l in live.iter().filter(|l| !present.iter().any(|d| d.owner == l.owner)) {
        say!(
            "{} (a command)\t{}\t{}",
            cell(&l.owner),
            timestamp(l.until),
            cell(&l.name)
        );
    }
    Ok(ExitCode::SUCCESS)
}
