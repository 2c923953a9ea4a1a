//! The LDAP target (ldap3, async): OpenLDAP for real, Active Directory
//! semantics. One paged read of the managed scope; writes pipelined over a
//! few multiplexed connections, with retries and reconnects.
//!
//! - `config`: the target section and the policy's `[ldap]` mapping;
//! - `dn`: RFC 4514 / 4515 escaping, DN parsing, `{field}` templates (pure);
//! - `ops`: one planned change → the exact LDAP operations (pure, unit-tested);
//! - `schema`: the server's subschema, for the dry run;
//! - `conn`: connections, retries, running one operation;
//! - `read`: the snapshot; `write`: apply and the dry run; `held`: the
//!   members a run adds to groups, sent once per group at its end;
//! - `password`: one password set on its own (activation).

mod adopt;
mod config;
mod conn;
mod create;
pub mod dn;
mod held;
mod norm;
pub mod ops;
mod password;
mod rc;
mod read;
mod scan;
mod schema;
mod txn;
mod write;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tokio::sync::OnceCell;

pub use config::{
    Bases, Flavour, GroupKind, GroupMapping, LdapMapping, LdapTarget, LeaverMapping, LeaverMethod, PasswordMethod,
};

use self::conn::Pool;
use self::dn::{DnTemplate, Template};
use self::ops::{Lock, Mapping};
use self::schema::Schema;
use super::{Backend, BackendError, Op, OpResult};
use crate::core::{Policy, Secret, Snapshot, UserKey};

/// The LDAP backend for one (target, policy) pair.
pub struct LdapBackend {
    target: LdapTarget,
    map: Arc<Mapping>,
    managed: Vec<bool>,
    /// Per policy attribute: compared without case (see `Snapshot::case_blind`).
    case_blind: Vec<bool>,
    pool: Pool,
    /// AD: each account's `userAccountControl`, read by the snapshot (key folded).
    uac: Mutex<HashMap<String, u32>>,
    schema: OnceCell<Schema>,
    /// LDAP transactions are used until the server refuses them.
    txn: std::sync::atomic::AtomicBool,
    /// Group members held back until the pipeline flushes.
    held: Mutex<held::Held>,
    /// The leavers container, normalised (`dn::normalise`) once.
    leavers_norm: Option<String>,
}

/// Resolve the mapping against the policy (the config check has vetted it).
pub fn resolve(target: &LdapTarget, mapping: &LdapMapping, policy: &Policy) -> Result<Mapping, String> {
    let dn = DnTemplate::parse(&mapping.dn)?;
    let key_attr = match (&mapping.key_attribute, target.flavour) {
        (Some(k), _) => k.clone(),
        (None, Flavour::Ad) => "sAMAccountName".to_string(),
        (None, Flavour::Openldap | Flavour::Ds389) => dn
            .rdns
            .first()
            .map(|(a, _)| a.clone())
            .ok_or("ldap.dn: an empty DN template")?,
    };
    let mut fields = Vec::new();
    for (f, a) in &mapping.fields {
        let i = policy
            .attribute_index(f)
            .ok_or_else(|| format!("ldap.fields.{f}: not a field of this policy"))?;
        fields.push((i, a.clone()));
    }
    let mut templates = Vec::new();
    for (a, t) in &mapping.templates {
        let t = Template::parse(t)?;
        let uses: Vec<usize> = t.fields().filter_map(|f| policy.attribute_index(f)).collect();
        templates.push((a.clone(), t, uses));
    }
    let mut group_dns = Vec::new();
    let mut group_kind = GroupKind::GroupOfNames;
    if let Some(g) = &mapping.groups {
        group_kind = g.kind;
        for name in &policy.groups.managed {
            let explicit = g
                .dns
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, d)| d.clone());
            let dn = match (explicit, &g.dn) {
                (Some(d), _) => d,
                (None, Some(t)) => DnTemplate::parse(t)?
                    .render(&|f| (f == "group").then(|| name.clone()))?
                    .to_string_escaped(),
                (None, None) => return Err(format!("ldap.groups: no DN for group {name:?}")),
            };
            group_dns.push((name.clone(), dn));
        }
    }
    Ok(Mapping {
        flavour: target.flavour,
        object_classes: mapping.object_classes.clone(),
        dn,
        key_attr,
        fields,
        never: (0..policy.attributes.len())
            .filter(|i| !policy.attr_rule(*i).update.on_create())
            .collect(),
        templates,
        attributes: policy.attributes.clone(),
        lock: match (mapping.leaver.method, target.flavour) {
            (LeaverMethod::Attribute, _) => match (&mapping.leaver.attribute, &mapping.leaver.value) {
                (Some(a), Some(v)) => Lock::Attribute(a.clone(), v.clone()),
                _ => return Err("ldap.leaver: method = \"attribute\" needs attribute and value".into()),
            },
            (LeaverMethod::Lock, Flavour::Openldap) => Lock::PwdLockedTime,
            (LeaverMethod::Lock, Flavour::Ad) => Lock::Uac,
            (LeaverMethod::Lock, Flavour::Ds389) => Lock::Attribute("nsAccountLock".into(), "TRUE".into()),
        },
        strip_groups: mapping.leaver.strip_groups.unwrap_or(true),
        leavers_container: target.leavers.clone(),
        group_kind,
        group_dns,
        password: mapping.password_method,
        create_containers: mapping.create_containers,
        create_groups: policy.groups.create_missing,
        adopt_from: mapping.adopt_from.clone(),
        activation: policy.passwords.deliver == crate::core::policy::Deliver::Activation,
    })
}

impl LdapBackend {
    /// Set up the backend and check the bind works.
    pub async fn connect(
        target: &LdapTarget,
        mapping: &LdapMapping,
        policy: &Policy,
        password: Secret,
    ) -> Result<LdapBackend, BackendError> {
        let map = resolve(target, mapping, policy).map_err(BackendError::Schema)?;
        let mut managed = vec![false; policy.attributes.len()];
        // Read back from the DN (not mapped to an attribute too): DNs match
        // without case, so a case-only difference is no change.
        let mut case_blind = vec![false; policy.attributes.len()];
        for (_, t) in &map.dn.rdns {
            if let Some(i) = t.sole_field().and_then(|f| policy.attribute_index(f)) {
                managed[i] = true;
                case_blind[i] = true;
            }
        }
        for (i, _) in &map.fields {
            managed[*i] = true;
            case_blind[*i] = false;
        }
        let pool = Pool::new(target, password)?;
        pool.get(0).await?;
        Ok(LdapBackend {
            target: target.clone(),
            map: Arc::new(map),
            managed,
            case_blind,
            pool,
            uac: Mutex::new(HashMap::new()),
            schema: OnceCell::new(),
            txn: std::sync::atomic::AtomicBool::new(true),
            held: Mutex::new(held::Held::default()),
            leavers_norm: target.leavers.as_deref().map(dn::normalise),
        })
    }
}

/// Writes come after a snapshot that read the server: a connection refused
/// now (between batches, or mid-batch) means the server went away during
/// the run, and says so the same way either way.
fn gone(e: BackendError) -> BackendError {
    const GONE: &str = "the server stopped answering during the run";
    match e {
        BackendError::Connect(m) if !m.starts_with(GONE) => {
            BackendError::Connect(format!("{GONE} ({})", m.trim_start_matches("cannot connect: ")))
        }
        other => other,
    }
}

#[async_trait]
impl Backend for LdapBackend {
    async fn health(&self) -> Result<(), BackendError> {
        for b in self.scopes() {
            if !self.pool.exists(0, &b).await.map_err(BackendError::Connect)? {
                return Err(BackendError::Schema(format!("{b} does not exist")));
            }
        }
        Ok(())
    }

    async fn snapshot(&self) -> Result<Snapshot, BackendError> {
        // A connection lost during the read: read again (the snapshot is all or nothing).
        let mut attempt = 0;
        loop {
            match self.read_snapshot().await {
                Err(BackendError::Connect(m)) if attempt < self.target.retries => {
                    tracing::warn!(attempt, error = ?m, "LDAP snapshot interrupted; reading again.");
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_millis((200u64 << attempt.min(5)).min(5_000))).await;
                }
                other => return other,
            }
        }
    }

    async fn outside(&self) -> Result<Vec<crate::core::Account>, BackendError> {
        self.adoptable().await
    }

    async fn missing(&self, ops: &[Op<'_>]) -> Result<Vec<super::Missing>, BackendError> {
        self.find_missing(ops).await
    }

    async fn validate(&self, ops: &[Op<'_>]) -> Result<Vec<Option<String>>, BackendError> {
        self.check_ops(ops).await
    }

    fn batch_size(&self) -> usize {
        self.target.batch_size
    }

    async fn set_password(&self, key: &UserKey, password: &Secret, new_account: bool) -> Result<(), BackendError> {
        self.set_one_password(key, password, new_account).await
    }

    async fn apply(&self, ops: &[Op<'_>]) -> Result<Vec<OpResult>, BackendError> {
        self.apply_ops(ops).await.map_err(gone)
    }

    fn holds(&self) -> bool {
        true
    }

    async fn flush(&self) -> Result<Vec<Option<String>>, BackendError> {
        self.flush_held().await.map_err(gone)
    }
}
