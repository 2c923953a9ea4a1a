//! Connections: a few multiplexed ldap3 connections, re-established when
//! lost, and one place that runs an operation with retries and backoff.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use ldap3::exop::PasswordModify;
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError, LdapResult, Mod, Scope};
use tracing::{debug, warn};

use super::config::LdapTarget;
use super::rc::{connection_lost, describe, transient_rc};

/// Why a write was not sent (see `backend::guard`).
pub(super) const FENCED: &str = "not sent: this daemon no longer holds the run (its lease lapsed)";
use super::ops::{Membership, ModKind, Modification, Step};
use crate::backend::BackendError;
use crate::core::Secret;

/// The connections to one server.
pub struct Pool {
    target: LdapTarget,
    password: Secret,
    tls: Option<Arc<rustls::ClientConfig>>,
    slots: Vec<tokio::sync::Mutex<Option<Ldap>>>,
    /// Why the server is taken to be gone: set when an operation used up
    /// its retries without reaching it, cleared by the next connection
    /// made. While set, operations fail at once instead of each waiting
    /// out its own retries (thousands of rows × retries × backoff).
    gone: std::sync::Mutex<Option<String>>,
}

/// What one attempt at a step came to.
enum Attempt {
    Done(LdapResult),
    Retry(String),
}

impl Pool {
    pub fn new(target: &LdapTarget, password: Secret) -> Result<Pool, BackendError> {
        let tls = match &target.ca_file {
            None => None,
            Some(path) => Some(tls_config(path)?),
        };
        Ok(Pool {
            target: target.clone(),
            password,
            tls,
            slots: (0..target.connections.max(1))
                .map(|_| tokio::sync::Mutex::new(None))
                .collect(),
            gone: std::sync::Mutex::new(None),
        })
    }

    pub fn size(&self) -> usize {
        self.slots.len()
    }

    pub fn op_timeout(&self) -> Duration {
        Duration::from_secs(self.target.op_timeout_secs.max(1))
    }

    async fn open(&self) -> Result<Ldap, BackendError> {
        let mut settings = LdapConnSettings::new()
            .set_conn_timeout(Duration::from_secs(self.target.connect_timeout_secs.max(1)))
            .set_starttls(self.target.starttls);
        if let Some(c) = &self.tls {
            settings = settings.set_config(c.clone());
        }
        let url = &self.target.url;
        let (conn, mut ldap) = LdapConnAsync::with_settings(settings, url).await.map_err(|e| {
            BackendError::Connect(format!(
                "{url}: {e}; check that the server runs and the URL, port and TLS settings are right"
            ))
        })?;
        tokio::spawn(async move {
            if let Err(e) = conn.drive().await {
                debug!(error = ?e.to_string(), "LDAP connection ended.");
            }
        });
        let res = ldap
            .with_timeout(self.op_timeout())
            .simple_bind(&self.target.bind_dn, self.password.expose())
            .await
            .map_err(|e| BackendError::Connect(format!("{url}: bind as {}: {e}", self.target.bind_dn)))?;
        if res.rc != 0 {
            return Err(BackendError::Connect(format!(
                "{url}: bind as {} refused: {}; check bind_dn and the bind password",
                self.target.bind_dn,
                describe(&res)
            )));
        }
        Ok(ldap)
    }

    /// A handle on connection `i`, (re)connecting when needed.
    pub async fn get(&self, i: usize) -> Result<Ldap, BackendError> {
        let slot = &self.slots[i % self.slots.len()];
        let mut g = slot.lock().await;
        if let Some(l) = g.as_mut() {
            if !l.is_closed() {
                return Ok(l.clone());
            }
        }
        let l = self.open().await?;
        *g = Some(l.clone());
        self.set_gone(None);
        Ok(l)
    }

    /// Why the server is taken to be gone, if it is (see `gone`).
    pub fn gone(&self) -> Option<String> {
        self.gone.lock().ok().and_then(|g| g.clone())
    }

    fn set_gone(&self, why: Option<String>) {
        if let Ok(mut g) = self.gone.lock() {
            *g = why;
        }
    }

    /// Forget connection `i` (it failed); the next `get` reconnects.
    pub async fn drop_conn(&self, i: usize) {
        let slot = &self.slots[i % self.slots.len()];
        *slot.lock().await = None;
    }

    fn backoff(&self, attempt: u32) -> Duration {
        Duration::from_millis((100u64 << attempt.min(6)).min(5_000))
    }

    /// Run `f` on connection `i` with retries on transient failures (none
    /// once this process lost its hold on the run: see `backend::guard`).
    /// Ok(result) carries any final LDAP result code; Err is a message.
    async fn with_retry<F, Fut>(&self, i: usize, what: &str, f: F) -> Result<(LdapResult, bool), String>
    where
        F: Fn(Ldap) -> Fut,
        Fut: std::future::Future<Output = Result<LdapResult, LdapError>>,
    {
        if let Some(why) = self.gone() {
            return Err(format!("{what}: not tried, the server is gone ({why})"));
        }
        let mut last = String::new();
        // Whether the last failure was not reaching the server at all.
        let mut unreachable = false;
        for attempt in 0..=self.target.retries {
            if attempt > 0 {
                tokio::time::sleep(self.backoff(attempt - 1)).await;
            }
            let ldap = match self.get(i).await {
                Ok(l) => l,
                Err(e) => {
                    last = e.to_string();
                    unreachable = true;
                    continue;
                }
            };
            unreachable = false;
            if !crate::backend::guard::may_write() {
                return Err(format!("{what}: {FENCED}"));
            }
            let outcome = match f(ldap).await {
                Ok(r) if transient_rc(r.rc) => Attempt::Retry(describe(&r)),
                Ok(r) => Attempt::Done(r),
                Err(e) if connection_lost(&e) => {
                    self.drop_conn(i).await;
                    Attempt::Retry(format!("connection lost: {e}"))
                }
                Err(e) => return Err(format!("{what}: {e}")),
            };
            match outcome {
                Attempt::Done(r) => return Ok((r, attempt > 0)),
                Attempt::Retry(m) => {
                    warn!(attempt, error = ?m, "LDAP operation failed transiently; retrying.");
                    last = m;
                }
            }
        }
        if unreachable {
            self.set_gone(Some(last.clone()));
        }
        Err(format!(
            "{what}: gave up after {} attempts: {last}",
            self.target.retries + 1
        ))
    }

    /// Run one entry step. Codes that mean "already done" after a retry are success.
    /// `uncertain`: an earlier attempt may have written it (a lost
    /// transaction), so "already exists" counts as done for an add.
    pub async fn run_step(&self, i: usize, step: &Step, uncertain: bool) -> Result<(), String> {
        let timeout = self.op_timeout();
        let (res, retried) = match step {
            Step::Add { dn, attrs } => {
                self.with_retry(i, "add", |mut l| async move {
                    // In the mapping's order, the same for every entry.
                    let a: Vec<(&[u8], Vec<&[u8]>)> = attrs
                        .iter()
                        .map(|(k, v)| (k.as_bytes(), v.iter().map(Vec::as_slice).collect()))
                        .collect();
                    l.with_timeout(timeout).add(dn, a).await
                })
                .await?
            }
            Step::Modify { dn, mods } => {
                self.with_retry(i, "modify", |mut l| async move {
                    l.with_timeout(timeout).modify(dn, to_mods(mods)).await
                })
                .await?
            }
            Step::Rename {
                dn,
                new_rdn,
                new_superior,
                new_dn,
            } => {
                // The old RDN's value goes only when the new RDN names the
                // same attribute: an adopted `cn=John Smith` renamed to
                // `uid=jsmith` keeps its cn (the object class needs it).
                let delete_old = super::dn::same_rdn_type(dn, new_rdn);
                let (r, retried) = self
                    .with_retry(i, "modrdn", |mut l| async move {
                        l.with_timeout(timeout)
                            .modifydn(dn, new_rdn, delete_old, new_superior.as_deref())
                            .await
                    })
                    .await?;
                if retried && r.rc == 32 && self.exists(i, new_dn).await.unwrap_or(false) {
                    return Ok(());
                }
                (r, retried)
            }
            Step::Delete { dn } => {
                let (r, retried) = self
                    .with_retry(
                        i,
                        "delete",
                        |mut l| async move { l.with_timeout(timeout).delete(dn).await },
                    )
                    .await?;
                if retried && r.rc == 32 {
                    return Ok(());
                }
                (r, retried)
            }
            Step::SetPassword { dn, password } => {
                self.with_retry(i, "password modify", |mut l| async move {
                    l.with_timeout(timeout)
                        .extended(PasswordModify {
                            user_id: Some(dn),
                            old_pass: None,
                            new_pass: Some(password.expose()),
                        })
                        .await
                        .map(|r| r.1)
                })
                .await?
            }
        };
        match res.rc {
            0 => Ok(()),
            68 if (retried || uncertain) && matches!(step, Step::Add { .. }) => Ok(()),
            _ => Err(describe(&res)),
        }
    }

    /// Add or remove values of a group's member attribute in one modify.
    /// Values already present (add) or absent (remove) are not errors when
    /// `tolerant` (one value per call).
    pub async fn run_members(
        &self,
        i: usize,
        add: bool,
        group_dn: &str,
        attr: &str,
        values: &[String],
    ) -> Result<(), String> {
        let timeout = self.op_timeout();
        let set: HashSet<Vec<u8>> = values.iter().map(|v| v.as_bytes().to_vec()).collect();
        let (res, _) = self
            .with_retry(i, "group modify", |mut l| {
                let set = set.clone();
                async move {
                    let m = if add {
                        Mod::Add(attr.as_bytes().to_vec(), set)
                    } else {
                        Mod::Delete(attr.as_bytes().to_vec(), set)
                    };
                    l.with_timeout(timeout).modify(group_dn, vec![m]).await
                }
            })
            .await?;
        match res.rc {
            0 => Ok(()),
            20 if add && values.len() == 1 => Ok(()),
            16 if !add && values.len() == 1 => Ok(()),
            _ => Err(format!("group {group_dn}: {}", describe(&res))),
        }
    }
}

impl Pool {
    /// Whether an entry exists (base search).
    pub async fn exists(&self, i: usize, dn: &str) -> Result<bool, String> {
        let timeout = self.op_timeout();
        let mut l = self.get(i).await.map_err(|e| e.to_string())?;
        match l
            .with_timeout(timeout)
            .search(dn, Scope::Base, "(objectClass=*)", vec!["1.1"])
            .await
        {
            Ok(r) if r.1.rc == 0 => Ok(!r.0.is_empty()),
            Ok(r) if r.1.rc == 32 => Ok(false),
            Ok(r) => Err(describe(&r.1)),
            Err(e) => Err(e.to_string()),
        }
    }
}

fn to_mods(mods: &[Modification]) -> Vec<Mod<Vec<u8>>> {
    mods.iter()
        .map(|m| {
            let a = m.attr.as_bytes().to_vec();
            let v: HashSet<Vec<u8>> = m.values.iter().cloned().collect();
            match m.kind {
                ModKind::Add => Mod::Add(a, v),
                ModKind::Delete => Mod::Delete(a, v),
                ModKind::Replace => Mod::Replace(a, v),
            }
        })
        .collect()
}

/// The membership changes on one group: (group DN, attribute, [(op index, value)]).
pub type GroupBatch = (String, &'static str, Vec<(usize, String)>);

/// Group the memberships of many ops by (group, attribute), remembering which op each came from.
pub fn coalesce(items: &[(usize, &Membership)]) -> Vec<GroupBatch> {
    let mut out: Vec<GroupBatch> = Vec::new();
    for (op, m) in items {
        match out
            .iter_mut()
            .find(|(g, a, _)| g.eq_ignore_ascii_case(&m.group_dn) && *a == m.attr)
        {
            Some((_, _, v)) => v.push((*op, m.value.clone())),
            None => out.push((m.group_dn.clone(), m.attr, vec![(*op, m.value.clone())])),
        }
    }
    out
}

fn tls_config(path: &std::path::Path) -> Result<Arc<rustls::ClientConfig>, BackendError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let err = |m: String| BackendError::Connect(format!("ca_file {}: {m}", path.display()));
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(path).map_err(|e| err(e.to_string()))?;
    for c in certs {
        let c = c.map_err(|e| err(e.to_string()))?;
        roots.add(c).map_err(|e| err(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(err("no PEM certificate in the file".into()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| err(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}
