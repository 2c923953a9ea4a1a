//! `check`, `apply`, `runs approve | reject | resume`: the command line's
//! runs, journaled and driven through the same pipeline as the daemon's.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use dirsync::config::Config;
use dirsync::core::Class;
use dirsync::journal::{Journal, RunState};
use dirsync::mail::Outbox;
use dirsync::sync::{self, Approved, CliRun, Ctx, Finish, MailOut, RunReport, SyncError};

use crate::mail_cli;

/// What one command needs: the config, the journal, the outbox.
pub struct Session {
    pub config: Config,
    journal: Journal,
    outbox: Option<Outbox>,
}

fn fail(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(2)
}

impl Session {
    pub async fn open(config: Config) -> Result<Session, ExitCode> {
        let journal = sync::open_journal(&config).await.map_err(fail)?;
        let outbox = match &config.mail {
            None => None,
            Some(cfg) => Some(dirsync::mail::open_outbox(cfg).await.map_err(|e| {
                fail(format!(
                    "{e}; the mail outbox must open before a run (new users' passwords are mailed from it)"
                ))
            })?),
        };
        Ok(Session {
            config,
            journal,
            outbox,
        })
    }

    /// The pipeline's context for a command: no daemon to wake, never asked to stop.
    fn ctx(&self) -> Ctx<'_> {
        fn nothing() {}
        fn never() -> bool {
            false
        }
        let mail = match (&self.config.mail, &self.outbox) {
            (Some(cfg), Some(outbox)) => Some(MailOut {
                cfg,
                outbox,
                wake: &nothing,
            }),
            _ => None,
        };
        Ctx {
            config: &self.config,
            journal: &self.journal,
            mail,
            stop: &never,
        }
    }

    /// Journal a file as a run (or find its unfinished run) and drive it.
    pub async fn start(&self, cli: &CliRun<'_>) -> Result<sync::Started, SyncError> {
        sync::start_cli_run(&self.ctx(), cli).await
    }

    /// Deliver what the run queued, now.
    pub async fn deliver(&self, report: &RunReport) {
        for n in &report.mail_notes {
            eprintln!("warning: {n}");
        }
        if report.mails_queued > 0 {
            println!("mail: {} queued (run {})", report.mails_queued, report.run_id);
        }
        // One delivery pass: this run's mails, and any an earlier command
        // queued but could not send (killed, relay down).
        if let (Some(cfg), Some(outbox)) = (&self.config.mail, &self.outbox) {
            mail_cli::deliver_now(cfg, outbox).await;
        }
    }
}

/// What `check` / `apply` were asked.
pub struct RunRequest {
    pub file: PathBuf,
    pub policy: Option<String>,
    pub results: Option<PathBuf>,
    pub allow_over_limit: bool,
    pub mail_to: Option<String>,
}

fn print_report(report: &RunReport, file: &Path) {
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    if let Some(e) = &report.file_error {
        println!("{}: rejected, nothing written: {e}", file.display());
    } else if report.target_error.is_some() && report.summary.changes.is_empty() {
        println!("{}: not run, the target is unavailable", file.display());
    } else {
        let mode = match report.state {
            RunState::Preview => "preview, nothing written",
            RunState::AwaitingApproval => "applied; held changes await approval",
            RunState::Failed => "stopped by a target failure",
            _ => "applied",
        };
        println!("{}: {} [{mode}]", file.display(), report.summary);
        for b in &report.breaches {
            println!("held: {b}");
        }
    }
    if let Some(e) = &report.target_error {
        println!(
            "target error: {e}\nthe run is journaled as failed; `dirsync apply` of the same file (or `dirsync runs resume {}`) resumes it",
            report.run_id
        );
    }
    if let Some(h) = &report.approve_hint {
        println!("{h}");
    }
    println!("results: {}", report.results.display());
    println!("run: {} ({})", report.run_id, report.state.as_str());
}

/// `dirsync check FILE` / `dirsync apply FILE`.
pub async fn check_or_apply(config: Config, req: RunRequest, apply: bool) -> ExitCode {
    if let Err(e) = mail_cli::precheck(&config, req.mail_to.as_deref()) {
        return fail(e);
    }
    let s = match Session::open(config).await {
        Ok(s) => s,
        Err(code) => return code,
    };
    let lp = match s.config.policy(req.policy.as_deref()) {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    let cli = CliRun {
        file: &req.file,
        policy: lp,
        preview: !apply,
        allow_over_limit: req.allow_over_limit,
        results: req.results.clone(),
        submitter: req.mail_to.as_deref(),
    };
    let started = s.start(&cli).await;
    match started {
        Ok(st) => {
            if st.resumed {
                println!("resuming run {}: this file's earlier run did not finish", st.run_id);
            }
            finish(&s, st.finish, &req.file).await
        }
        Err(e) => fail(e),
    }
}

async fn finish(s: &Session, f: Finish, file: &Path) -> ExitCode {
    match f {
        Finish::Ended(report) => {
            print_report(&report, file);
            s.deliver(&report).await;
            ExitCode::from(report.exit_code())
        }
        Finish::Stopped => fail("stopped; the run resumes with `dirsync runs resume`"),
    }
}

/// Who decides, when `--by` is not given: the login name.
pub fn default_operator() -> String {
    ["SUDO_USER", "USER", "LOGNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "unknown".into())
}

/// `dirsync runs approve ID`.
pub async fn approve(config: Config, id: i64, classes: &[Class], by: &str) -> ExitCode {
    let s = match Session::open(config).await {
        Ok(s) => s,
        Err(code) => return code,
    };
    match sync::approve(&s.ctx(), id, classes, by).await {
        Ok(Approved::Applied(report)) => {
            println!("run {id}: approved by {by}");
            let file = report.results.clone();
            finish(&s, Finish::Ended(report), &file).await
        }
        Ok(Approved::Refused(reasons)) => {
            eprintln!("run {id}: approval refused, nothing written — the plan changed since it was shown:");
            for r in &reasons {
                eprintln!("  {r}");
            }
            eprintln!("run the file again (or drop a new one) and approve that run");
            ExitCode::from(2)
        }
        Ok(Approved::Stopped) => fail("stopped; the approval stands, `dirsync runs resume` finishes it"),
        Err(e) => fail(e),
    }
}

/// `dirsync runs reject ID`.
pub async fn reject(config: Config, id: i64, by: &str) -> ExitCode {
    let s = match Session::open(config).await {
        Ok(s) => s,
        Err(code) => return code,
    };
    match sync::reject(&s.ctx(), id, by).await {
        Ok(()) => {
            println!("run {id}: held changes rejected by {by}; nothing of them written");
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

/// `dirsync runs resume ID`.
pub async fn resume(config: Config, id: i64) -> ExitCode {
    let s = match Session::open(config).await {
        Ok(s) => s,
        Err(code) => return code,
    };
    match sync::drive(&s.ctx(), id).await {
        Ok(f) => {
            let file = PathBuf::from(format!("run {id}"));
            finish(&s, f, &file).await
        }
        Err(e) => fail(e),
    }
}
