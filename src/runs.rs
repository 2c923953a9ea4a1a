//! `dirsync runs` and `dirsync runs show ID`: the journal, for people.

use std::process::ExitCode;

use crate::config::Config;
use crate::daemon::timestamp;
use crate::journal::{Journal, JournalError, RunRecord};

fn when(ms: Option<i64>) -> String {
    ms.map(timestamp).unwrap_or_else(|| "-".into())
}

fn state(r: &RunRecord) -> String {
    match &r.outcome {
        Some(o) => format!("{} ({o})", r.state.as_str()),
        None => r.state.as_str().to_string(),
    }
}

/// Recent runs, newest first.
pub async fn list(config: &Config, limit: i64) -> Result<ExitCode, JournalError> {
    let journal = Journal::open(&config.service).await?;
    let runs = journal.recent_runs(limit.max(1)).await?;
    if runs.is_empty() {
        println!("no runs yet (journal {})", journal.describe());
        return Ok(ExitCode::SUCCESS);
    }
    println!("id\tfile\tinbox\tstarted\tfinished\tstate\tcounts");
    for r in &runs {
        println!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}",
            r.id,
            r.file_name,
            r.inbox,
            when(r.started.or(Some(r.claimed_at))),
            when(r.finished),
            state(r),
            r.summary.as_deref().unwrap_or("-")
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// One run with its rejected, held and failed rows.
pub async fn show(config: &Config, id: i64) -> Result<ExitCode, JournalError> {
    let journal = Journal::open(&config.service).await?;
    let Some(r) = journal.run(id).await? else {
        eprintln!(
            "error: no run {id} in the journal {}; `dirsync runs` lists them",
            journal.describe()
        );
        return Ok(ExitCode::from(2));
    };
    println!("run {}", r.id);
    println!("file      {}", r.file_name);
    println!("inbox     {}", r.inbox);
    println!("policy    {} (target {})", r.policy, r.target);
    println!("sha256    {}", r.sha256);
    println!("claimed   {}", timestamp(r.claimed_at));
    println!("started   {}", when(r.started));
    println!("finished  {}", when(r.finished));
    println!("state     {}", state(&r));
    if r.forced {
        println!("forced    yes (.force marker)");
    }
    println!("counts    {}", r.summary.as_deref().unwrap_or("-"));
    match &r.dest {
        Some(d) => println!("file at   {}", d.display()),
        None => println!("file at   {}", r.claimed.display()),
    }
    if let Some(n) = &r.note {
        println!("note      {n}");
    }
    let items = journal.problem_items(id).await?;
    if items.is_empty() {
        println!("no rejected, held or failed rows");
    } else {
        println!();
        println!("line\tkey\tchange\tresult\tmessage");
        for it in &items {
            println!(
                "{}\t{}\t{}\t{}\t{}",
                it.line.map(|l| l.to_string()).unwrap_or_else(|| "-".into()),
                it.user_key.as_deref().unwrap_or("-"),
                it.change,
                it.verdict.as_deref().unwrap_or("pending"),
                it.message.as_deref().unwrap_or("")
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
