//! `check`, `apply`, `runs approve | reject | resume`: the command line's
//! runs, journaled and driven through the same pipeline as the daemon's.

use dirsync::say;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use dirsync::backend::guard::{guarded, WriteGuard};
use dirsync::config::Config;
use dirsync::core::Class;
use dirsync::journal::{Journal, RunState};
use dirsync::leases::{run_lease, target_lease, Leases};
use dirsync::mail::Outbox;
use dirsync::sync::{self, Approved, CliRun, Ctx, Finish, MailOut, RunReport, SyncError};

use crate::mail_cli;

/// What one command needs: the config, the journal, the outbox, and its
/// leases (daemons sharing the journal leave a run and its target alone
/// while a command writes, and the command waits for them).
pub struct Session {
    pub config: Config,
    journal: Journal,
    outbox: Option<Outbox>,
    leases: Arc<Leases>,
    heartbeat: tokio::task::JoinHandle<()>,
    /// The process exits after this session's one run (see `Ctx::exits_after`).
    one_run: bool,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.heartbeat.abort();
    }
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
        let leases = Leases::new(journal.clone(), config.service.lease());
        let heartbeat = tokio::spawn(Arc::clone(&leases).heartbeat(std::future::pending::<()>()));
        Ok(Session {
            config,
            journal,
            outbox,
            leases,
            heartbeat,
            one_run: true,
        })
    }

    /// A session that drives run after run (`inbox poll`): each run's
    /// memory is freed when it ends.
    pub fn for_many_runs(mut self) -> Session {
        self.one_run = false;
        self
    }

    /// The pipeline's context for a command: no daemon to wake, never asked to stop.
    fn ctx(&self) -> Ctx<'_> {
        fn never() -> bool {
            false
        }
        self.ctx_with(&self.journal, &never)
    }

    fn ctx_with<'a>(&'a self, journal: &'a Journal, stop: &'a (dyn Fn() -> bool + Send + Sync)) -> Ctx<'a> {
        fn nothing() {}
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
            journal,
            mail,
            stop,
            exits_after: self.one_run,
        }
    }

    /// Run `f` on run `id` holding the run and its target: the run's lease
    /// (refused while a daemon works on it), then the target's (waiting
    /// while a daemon runs another file against it). The journal's writes
    /// are fenced by both, and the target's writes stop if they lapse.
    async fn held<T>(&self, id: i64, f: impl AsyncFnOnce(&Ctx<'_>) -> Result<T, SyncError>) -> Result<T, SyncError> {
        let run = self.journal.run(id).await?.ok_or(SyncError::NoRun(id))?;
        let lease = run_lease(id);
        if !self.leases.take(&lease, Some(id)).await? {
            return Err(SyncError::State {
                id,
                state: run.state.as_str(),
                why: "a daemon sharing the journal is working on it right now; try again when it is done".into(),
            });
        }
        let target = target_lease(&self.config.target_place(&run.policy));
        let never = || false;
        let result = async {
            if !self.leases.take(&target, Some(id)).await? {
                eprintln!("waiting: a daemon is running another file against this target; this run goes on after it");
                self.leases.take_waiting(&target, Some(id), &never).await?;
            }
            let names = vec![lease.clone(), target.clone()];
            let journal = self.journal.fenced(self.leases.fence(&names));
            let guard: WriteGuard = {
                let leases = Arc::clone(&self.leases);
                Arc::new(move || names.iter().all(|n| leases.valid(n)))
            };
            let stop = {
                let g = Arc::clone(&guard);
                move || !g()
            };
            guarded(guard, f(&self.ctx_with(&journal, &stop))).await
        }
        .await;
        self.leases.release(&target).await;
        self.leases.release(&lease).await;
        result
    }

    /// Journal a file as a run (or find its unfinished run) and drive it.
    pub async fn start(&self, cli: &CliRun<'_>) -> Result<sync::Started, SyncError> {
        let (run_id, resumed, read) = sync::journal_cli_run(&self.ctx(), cli).await?;
        let finish = if cli.preview {
            sync::drive_read(&self.ctx(), run_id, Some(read)).await?
        } else {
            self.held(run_id, async |ctx| sync::drive_read(ctx, run_id, Some(read)).await)
                .await?
        };
        Ok(sync::Started {
            run_id,
            resumed,
            finish,
        })
    }

    /// Deliver what the run queued, now.
    pub async fn deliver(&self, report: &RunReport) {
        for n in &report.mail_notes {
            eprintln!("warning: {n}");
        }
        if report.mails_queued > 0 {
            say!("mail: {} queued (run {})", report.mails_queued, report.run_id);
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

/// The run's summary on stdout (`say!`: a closed stdout is not an error,
/// the run is over and journaled).
fn print_report(report: &RunReport, file: &Path) {
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    if let Some(e) = &report.file_error {
        say!("{}: rejected, nothing written: {e}", file.display());
    } else if report.target_error.is_some() && report.summary.changes.is_empty() {
        say!("{}: not run, the target is unavailable", file.display());
    } else {
        let mode = match report.state {
            RunState::Preview => "preview, nothing written",
            RunState::AwaitingApproval => "applied; held changes await approval",
            RunState::Failed => "stopped by a target failure",
            _ => "applied",
        };
        say!("{}: {} [{mode}]", file.display(), report.summary);
        for b in &report.breaches {
            say!("held: {b}");
        }
    }
    if let Some(e) = &report.target_error {
        say!("target error: {e}\nthe run is journaled as failed; `dirsync apply` of the same file (or `dirsync runs resume {}`) resumes it",
            report.run_id
        );
    }
    if let Some(h) = &report.approve_hint {
        say!("{h}");
    }
    say!("results: {}", report.results.display());
    say!("run: {} ({})", report.run_id, report.state.as_str());
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
                say!("resuming run {}: this file's earlier run did not finish", st.run_id);
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
    match s.held(id, async |ctx| sync::approve(ctx, id, classes, by).await).await {
        Ok(Approved::Applied(report)) => {
            say!("run {id}: approved by {by}");
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
    match s.held(id, async |ctx| sync::reject(ctx, id, by).await).await {
        Ok(()) => {
            say!("run {id}: held changes rejected by {by}; nothing of them written");
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
    match s.held(id, async |ctx| sync::drive(ctx, id).await).await {
        Ok(f) => {
            let file = PathBuf::from(format!("run {id}"));
            finish(&s, f, &file).await
        }
        Err(e) => fail(e),
    }
}
