//! Run one file: parse → snapshot → plan → guard → apply → results. The only
//! module that joins the core and the adapters.

pub mod journaled;
mod writes;

use std::path::{Path, PathBuf};

use rand::seq::IndexedRandom;
use tracing::{info, warn};

use self::writes::Writes;
use crate::backend::ldap::LdapBackend;
use crate::backend::sql::SqlBackend;
use crate::backend::{Backend, BackendError, Op};
use crate::config::{read_secret, Config, LoadedPolicy, TargetConfig};
use crate::core::plan::Breach;
use crate::core::report::{write_rejection, write_results};
use crate::core::{parse_roster, plan, FileError, Outcome, PlanOptions, Policy, Secret, Summary, UserKey, Verdict};

/// What went wrong with a run as a whole.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("target: {0}")]
    Target(#[from] BackendError),
    #[error("{0}")]
    Config(String),
    #[error("writing results to {path}: {source}")]
    Results { path: PathBuf, source: std::io::Error },
    #[error("{0}")]
    Journal(#[from] crate::journal::JournalError),
}

/// Options for one run.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Write to the target (`apply`) or only preview (`check`).
    pub apply: bool,
    pub allow_over_limit: bool,
    /// Unix seconds.
    pub now: i64,
}

/// A new user's credentials, for the credentials mail. Never logged.
#[derive(Debug, Clone)]
pub struct Credential {
    pub key: UserKey,
    pub email: Option<String>,
    pub password: Secret,
    pub must_change: bool,
}

/// What a run came to.
#[derive(Debug)]
pub struct RunReport {
    pub summary: Summary,
    pub results: PathBuf,
    pub file_error: Option<FileError>,
    pub breaches: Vec<Breach>,
    pub warnings: Vec<String>,
    /// The target failed during apply; remaining writes were not made.
    pub target_error: Option<String>,
    pub credentials: Vec<Credential>,
}

impl RunReport {
    /// 0 = all accepted and applied (or previewed); 1 = some rows rejected,
    /// failed or held; 2 = file rejected as a whole or target error.
    pub fn exit_code(&self) -> u8 {
        if self.file_error.is_some() || self.target_error.is_some() {
            2
        } else if self.summary.change("error") > 0
            || self.summary.verdict(Verdict::Failed) > 0
            || self.summary.verdict(Verdict::Held) > 0
        {
            1
        } else {
            0
        }
    }
}

impl RunReport {
    /// What the mail module needs to know of this run (results mail).
    pub fn mail_facts<'a>(
        &'a self,
        run_id: &'a str,
        file_name: &'a str,
        policy: &'a str,
        apply: bool,
    ) -> crate::mail::RunFacts<'a> {
        crate::mail::RunFacts {
            run_id,
            file_name,
            policy,
            apply,
            summary: &self.summary,
            file_error: self.file_error.as_ref().map(|e| e.to_string()),
            breaches: self.breaches.iter().map(|b| b.to_string()).collect(),
            target_error: self.target_error.clone(),
            warnings: &self.warnings,
            results: &self.results,
        }
    }

    /// The accounts created in this run with a generated password (credentials mails).
    pub fn new_users(&self) -> Vec<crate::mail::NewUser> {
        self.credentials
            .iter()
            .map(|c| crate::mail::NewUser {
                created: true,
                username: c.key.as_str().to_string(),
                email: c.email.clone(),
                password: c.password.clone(),
                must_change: c.must_change,
            })
            .collect()
    }
}

/// Where the results go by default: beside the input as `NAME.results.csv`.
pub fn default_results_path(input: &Path) -> PathBuf {
    let stem = input
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "roster".into());
    input.with_file_name(format!("{stem}.results.csv"))
}

/// Open the backend a policy writes to.
pub async fn open_backend(config: &Config, policy: &LoadedPolicy) -> Result<Box<dyn Backend>, SyncError> {
    let target = config.target(policy).map_err(SyncError::Config)?;
    match target {
        TargetConfig::Sql(t) => {
            let mapping = policy
                .file
                .sql
                .as_ref()
                .ok_or_else(|| SyncError::Config(format!("policy {:?} has no [sql] section", policy.name)))?;
            let password = read_secret(
                t.password_file.as_deref(),
                t.password_env.as_deref(),
                "database password",
            )
            .map_err(SyncError::Config)?;
            Ok(Box::new(
                SqlBackend::connect(t, mapping, &policy.policy, password).await?,
            ))
        }
        TargetConfig::Ldap(t) => {
            let mapping = policy
                .file
                .ldap
                .as_ref()
                .ok_or_else(|| SyncError::Config(format!("policy {:?} has no [ldap] section", policy.name)))?;
            let password = read_secret(
                t.bind_password_file.as_deref(),
                t.bind_password_env.as_deref(),
                "LDAP bind password",
            )
            .map_err(SyncError::Config)?
            .ok_or_else(|| {
                SyncError::Config("LDAP bind password: set bind_password_file or bind_password_env".into())
            })?;
            Ok(Box::new(
                LdapBackend::connect(t, mapping, &policy.policy, password).await?,
            ))
        }
    }
}

/// Draw a password from the policy's alphabet with the OS-seeded CSPRNG.
pub fn generate_password(policy: &Policy) -> Secret {
    let alphabet: Vec<char> = policy.passwords.alphabet.chars().collect();
    let mut rng = rand::rng();
    let s: String = (0..policy.passwords.length)
        .filter_map(|_| alphabet.choose(&mut rng).copied())
        .collect();
    Secret::new(s)
}

/// A file rejected as a whole: its results say why, and nothing is written.
pub(crate) fn rejected_file(
    bytes: &[u8],
    policy: &Policy,
    results: &Path,
    e: FileError,
) -> Result<RunReport, SyncError> {
    let text = crate::core::roster::decode(bytes, policy.roster.encoding).ok();
    write_atomically(results, |w| write_rejection(w, text.as_deref(), &e))?;
    Ok(RunReport {
        summary: Summary::default(),
        results: results.to_path_buf(),
        file_error: Some(e),
        breaches: Vec::new(),
        warnings: Vec::new(),
        target_error: None,
        credentials: Vec::new(),
    })
}

/// Write the results atomically: a temp file beside it, then rename.
pub(crate) fn write_atomically(
    path: &Path,
    f: impl FnOnce(&mut std::io::BufWriter<std::fs::File>) -> std::io::Result<()>,
) -> Result<(), SyncError> {
    let err = |source| SyncError::Results {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension("csv.tmp");
    let file = std::fs::File::create(&tmp).map_err(err)?;
    let mut w = std::io::BufWriter::new(file);
    f(&mut w).map_err(err)?;
    let file = w.into_inner().map_err(|e| err(e.into_error()))?;
    file.sync_all().map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

/// Run one file against a backend and write its results file.
pub async fn run_file(
    backend: &dyn Backend,
    lp: &LoadedPolicy,
    bytes: &[u8],
    results: &Path,
    opts: &RunOptions,
) -> Result<RunReport, SyncError> {
    let policy = &lp.policy;
    let started = std::time::Instant::now();
    let roster = match parse_roster(bytes, policy) {
        Ok(r) => r,
        Err(e) => {
            warn!(policy = %lp.name, reason = %e, "File rejected as a whole; nothing written.");
            return rejected_file(bytes, policy, results, e);
        }
    };
    let parse_ms = started.elapsed().as_millis() as u64;
    let t = std::time::Instant::now();
    let snapshot = match backend.snapshot().await {
        Ok(s) => s,
        Err(e) => {
            // Every run ends with a results file, also when the target is down.
            let why = FileError {
                kind: crate::core::roster::FileErrorKind::Target,
                message: format!("{e}; nothing was written, run the file again when the target is back"),
            };
            write_atomically(results, |w| write_rejection(w, Some(&roster.text), &why))?;
            return Err(e.into());
        }
    };
    let snapshot_ms = t.elapsed().as_millis() as u64;
    let t = std::time::Instant::now();
    let plan = plan(
        &roster,
        &snapshot,
        policy,
        opts.now,
        PlanOptions {
            allow_over_limit: opts.allow_over_limit,
        },
    );
    let plan_ms = t.elapsed().as_millis() as u64;
    let t = std::time::Instant::now();
    for b in &plan.breaches {
        warn!(class = b.class.as_str(), count = b.count, "Safety limit exceeded.");
    }
    let mut outcomes: Vec<Option<Outcome>> = plan.items.iter().map(|i| Outcome::from_plan(i, !opts.apply)).collect();

    // Passwords for new accounts: the row's, or a generated one. A preview
    // checks the add as it will be made, with a password (never shown,
    // stored or sent).
    let writes = Writes::prepare(&plan, &roster, policy, |i| {
        plan.items[i].will_write().then(|| generate_password(policy))
    });
    let write_idx: Vec<usize> = (0..plan.items.len()).filter(|i| outcomes[*i].is_none()).collect();
    let op = |i: usize| writes.op(i, &plan, &roster, &snapshot, opts.now);
    let mut target_error = None;
    if !opts.apply {
        // A preview marks every write "preview" up front; the backend's
        // dry-run checks may still say one would fail.
        let preview_idx: Vec<usize> = (0..plan.items.len()).filter(|&i| plan.items[i].will_write()).collect();
        let ops: Vec<Op<'_>> = preview_idx.iter().map(|&i| op(i)).collect();
        let problems = backend.validate(&ops).await?;
        for (&i, p) in preview_idx.iter().zip(problems) {
            outcomes[i] = Some(match p {
                None => Outcome::new(Verdict::Preview, None),
                Some(why) => Outcome::new(Verdict::Failed, Some(format!("would fail: {why}"))),
            });
        }
    } else {
        let batch = backend.batch_size().max(1);
        for chunk in write_idx.chunks(batch) {
            if let Some(e) = &target_error {
                for &i in chunk {
                    outcomes[i] = Some(Outcome::new(
                        Verdict::Failed,
                        Some(format!(
                            "not applied: the target failed earlier in this run ({e}); run the file again"
                        )),
                    ));
                }
                continue;
            }
            let ops: Vec<Op<'_>> = chunk.iter().map(|&i| op(i)).collect();
            match backend.apply(&ops).await {
                Ok(res) => {
                    for (&i, r) in chunk.iter().zip(res) {
                        outcomes[i] = Some(writes.outcome(i, r, &plan.items[i].change));
                    }
                }
                Err(e) => {
                    warn!(error = %e, "Target failed during apply; remaining writes skipped.");
                    for &i in chunk {
                        outcomes[i] = Some(Outcome::new(
                            Verdict::Failed,
                            Some(format!("target error: {e}; run the file again")),
                        ));
                    }
                    target_error = Some(e.to_string());
                }
            }
        }
    }
    let outcomes: Vec<Outcome> = outcomes
        .into_iter()
        .map(|o| o.unwrap_or_else(|| Outcome::new(Verdict::Skipped, Some("not processed".into()))))
        .collect();

    let credentials = writes.credentials(&plan, &roster, policy, &outcomes);

    let apply_ms = t.elapsed().as_millis() as u64;
    let t = std::time::Instant::now();
    write_atomically(results, |w| write_results(w, &roster, &plan, &outcomes, policy))?;
    let results_ms = t.elapsed().as_millis() as u64;
    let summary = Summary::of(&plan, &outcomes);
    info!(
        policy = %lp.name,
        rows = roster.entries.len(),
        accounts = snapshot.len(),
        parse_ms,
        snapshot_ms,
        plan_ms,
        apply_ms,
        results_ms,
        summary = %summary,
        "Run finished."
    );
    Ok(RunReport {
        summary,
        results: results.to_path_buf(),
        file_error: None,
        breaches: plan.breaches.clone(),
        warnings: roster.warnings.clone(),
        target_error,
        credentials,
    })
}
