//! What the web console asks of the daemon ([`crate::http::Actions`]):
//! approvals and rejections under the target's lock, previews of uploaded
//! files, applying a preview as its inbox's run, activation links used and
//! resent — all through the one
//! pipeline and the daemon's journal and outbox.

use std::path::Path;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tracing::{info, warn, Instrument};

use super::inboxes::folder_inboxes;
use super::job::{journal_claim, process};
use super::shared::Shared;
use crate::clock::now_ms;
use crate::config::{Config, InboxConfig};
use crate::core::{Class, Secret};
use crate::http::{Actions, InboxInfo, Uploader};
use crate::inbox::folder::{free_name, results_beside, PROCESSING};
use crate::inbox::FolderInbox;
use crate::journal::{NewRun, RunRecord, RunState};
use crate::leases::{file_lease, run_lease};
use crate::sync::activate::ActivateError;
use crate::sync::{approve, drive, reject, Approved, SyncError};

/// The daemon, as the console sees it.
pub(super) struct Console {
    pub(super) sh: Arc<Shared>,
}

fn inbox_named(config: &Config, name: &str) -> Result<InboxConfig, String> {
    folder_inboxes(config)
        .into_iter()
        .find(|i| i.name == name)
        .ok_or_else(|| format!("there is no inbox called {name:?}; choose one of the list"))
}

fn stopping(id: i64, state: &'static str) -> SyncError {
    SyncError::State {
        id,
        state,
        why: "the daemon is stopping; try again once it is back".into(),
    }
}

impl Console {
    /// Take run `id`'s lease, or say which daemon is working on it.
    async fn hold_run(&self, id: i64, state: &'static str) -> Result<String, SyncError> {
        let lease = run_lease(id);
        if self.sh.leases.take(&lease, Some(id)).await? {
            return Ok(lease);
        }
        Err(SyncError::State {
            id,
            state,
            why: "a daemon is working on it right now; try again in a moment".into(),
        })
    }

    /// Put the checked upload's bytes into `processing/` as `dest` and
    /// journal it as the inbox's run.
    async fn put_and_claim(
        &self,
        preview: &RunRecord,
        ib: &InboxConfig,
        processing: &Path,
        dest: &Path,
        name: &str,
        by: &Uploader,
    ) -> Result<i64, String> {
        let tmp = processing.join(format!(".{}.part", preview.file_name));
        let bytes = tokio::fs::read(&preview.claimed)
            .await
            .map_err(|e| format!("the uploaded file is gone: {e}"))?;
        if hex::encode(Sha256::digest(&bytes)) != preview.sha256 {
            return Err("the uploaded file changed since it was checked; upload it again".into());
        }
        let put = async {
            tokio::fs::write(&tmp, &bytes).await?;
            tokio::fs::rename(&tmp, dest).await
        };
        put.await
            .map_err(|e| format!("cannot put the file into {}: {e}", processing.display()))?;
        let inbox = FolderInbox::new(ib);
        journal_claim(&self.sh, &inbox, dest, name, false, by.email.as_deref())
            .await
            .ok_or_else(|| {
                "the file is in the inbox's processing/ folder but could not be journaled; the daemon runs it soon"
                    .into()
            })
    }
}

#[async_trait::async_trait]
impl Actions for Console {
    async fn approve(&self, id: i64, classes: Vec<Class>, by: String) -> Result<Approved, SyncError> {
        let config = self.sh.config();
        let run = self.sh.journal.run(id).await?.ok_or(SyncError::NoRun(id))?;
        let lease = self.hold_run(id, run.state.as_str()).await?;
        let result = async {
            let Some(hold) = self.sh.hold_target(&config, &run.policy, id).await? else {
                return Err(stopping(id, run.state.as_str()));
            };
            let held = [lease.clone(), hold.lease.clone()];
            let span = tracing::info_span!("approval", run_id = id, by = ?by);
            let r = self
                .sh
                .with_ctx(&config, &held, async |ctx| approve(ctx, id, &classes, &by).await)
                .instrument(span)
                .await;
            self.sh.release_target(hold).await;
            r
        }
        .await;
        self.sh.leases.release(&lease).await;
        result
    }

    async fn reject(&self, id: i64, by: String) -> Result<(), SyncError> {
        let config = self.sh.config();
        let run = self.sh.journal.run(id).await?.ok_or(SyncError::NoRun(id))?;
        let lease = self.hold_run(id, run.state.as_str()).await?;
        let held = [lease.clone()];
        let result = self
            .sh
            .with_ctx(&config, &held, async |ctx| reject(ctx, id, &by).await)
            .await;
        self.sh.leases.release(&lease).await;
        result
    }

    async fn preview(&self, inbox: &str, file_name: &str, spooled: &Path, by: &Uploader) -> Result<i64, String> {
        let config = self.sh.config();
        let ib = inbox_named(&config, inbox)?;
        let lp = config
            .policies
            .get(&ib.policy)
            .ok_or_else(|| format!("inbox {inbox:?} names policy {:?}, which is not configured", ib.policy))?;
        let bytes = tokio::fs::read(spooled)
            .await
            .map_err(|e| format!("cannot read the upload: {e}"))?;
        let sha = hex::encode(Sha256::digest(&bytes));
        let results = results_beside(spooled);
        let id = self
            .sh
            .journal
            .create_run(&NewRun {
                inbox,
                file_name,
                claimed: spooled,
                sha256: &sha,
                policy: &lp.name,
                target: &lp.target,
                forced: false,
                allow_over_limit: false,
                preview: true,
                results: Some(&results),
                submitter: None,
                now_ms: now_ms(),
            })
            .await
            .map_err(|e| e.to_string())?;
        info!(run_id = id, inbox = ?inbox, file = ?file_name, by = ?by.name, "Upload checked as a preview.");
        let sh = Arc::clone(&self.sh);
        tokio::spawn(async move {
            let config = sh.config();
            if let Err(e) = sh.with_ctx(&config, &[], async |ctx| drive(ctx, id).await).await {
                warn!(run_id = id, error = %e, "The preview of an upload failed.");
            }
        });
        Ok(id)
    }

    async fn apply(&self, id: i64, by: &Uploader) -> Result<i64, String> {
        let config = self.sh.config();
        let preview = self
            .sh
            .journal
            .run(id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("run {id} is not in the journal"))?;
        if preview.state != RunState::Preview || preview.finished.is_none() {
            return Err(format!(
                "run {id} is not a finished preview: only a checked upload can be applied"
            ));
        }
        if preview.summary.as_deref().is_some_and(|s| s.starts_with("rejected")) {
            return Err("the file was rejected as a whole; fix it and upload it again".into());
        }
        let ib = inbox_named(&config, &preview.inbox)?;
        let folder = ib
            .folder
            .clone()
            .ok_or_else(|| format!("inbox {:?} has no folder", ib.name))?;
        let processing = folder.join(PROCESSING);
        tokio::fs::create_dir_all(&processing)
            .await
            .map_err(|e| format!("cannot create {}: {e}", processing.display()))?;
        let dest = free_name(&processing, &preview.file_name, "upload");
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| preview.file_name.clone());
        // Under the file's lease, so no daemon takes it for an unjournaled claim.
        let lease = file_lease(&ib.name, &name);
        match self.sh.leases.take(&lease, None).await {
            Ok(true) => {}
            Ok(false) => return Err("another daemon is claiming a file of that name; apply again in a moment".into()),
            Err(e) => return Err(e.to_string()),
        }
        let new = self.put_and_claim(&preview, &ib, &processing, &dest, &name, by).await;
        self.sh.leases.release(&lease).await;
        let new = new?;
        info!(run_id = new, preview = id, inbox = ?ib.name, by = ?by.name, "Upload applied from the console.");
        tokio::spawn(process(Arc::clone(&self.sh), new));
        Ok(new)
    }

    async fn activate(&self, token: &str, password: &Secret) -> Result<String, ActivateError> {
        let config = self.sh.config();
        crate::sync::activate::activate(&config, &self.sh.journal, token, password).await
    }

    async fn resend_activation(&self, policy: &str, key: &str, by: &str) -> Result<String, String> {
        let config = self.sh.config();
        let resent = self
            .sh
            .with_ctx(&config, &[], async |ctx| {
                crate::sync::activation::resend(ctx.config, ctx.journal, ctx.mail, policy, key).await
            })
            .await
            .map_err(|e| e.to_string())?;
        info!(key = ?resent.key, policy = ?policy, by = ?by, "Activation link resent from the console.");
        Ok(resent.email)
    }

    fn inboxes(&self) -> Vec<InboxInfo> {
        let config = self.sh.config();
        let next = match self.sh.next_poll.lock() {
            Ok(m) => m.clone(),
            Err(p) => p.into_inner().clone(),
        };
        let mut out: Vec<InboxInfo> = config
            .inboxes
            .iter()
            .map(|i| InboxInfo {
                name: i.name.clone(),
                kind: "folder",
                policy: i.policy.clone(),
                next_poll_ms: None,
            })
            .collect();
        out.extend(config.sftp_inboxes.iter().map(|s| InboxInfo {
            name: s.name.clone(),
            kind: "sftp",
            policy: s.policy.clone(),
            next_poll_ms: next.get(&s.name).copied(),
        }));
        out
    }
}
