//! The LDAP target (ldap3, async): OpenLDAP for real, Active Directory
//! semantics. One paged read of the managed scope; writes pipelined over a
//! few multiplexed connections, with retries and reconnects.
//!
//! - `config`: the target section and the policy's `[ldap]` mapping;
//! - `dn`: RFC 4514 / 4515 escaping, DN parsing, `{field}` templates (pure);
//! - `ops`: one planned change → the exact LDAP operations (pure, unit-tested);
//! - `schema`: the server's subschema, for the dry run;
//! - `conn`: connections, retries, running one operation.

mod config;
mod conn;
pub mod dn;
pub mod ops;
mod schema;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures::StreamExt;
use ldap3::adapters::PagedResults;
use ldap3::{Scope, SearchEntry};
use tokio::sync::OnceCell;
use tracing::info;

pub use config::{
    Bases, Flavour, GroupKind, GroupMapping, LdapMapping, LdapTarget, LeaverMapping, LeaverMethod, PasswordMethod,
};

use self::conn::{coalesce, describe, Pool};
use self::dn::{escape_filter_value, normalise, Dn, DnTemplate, Template};
use self::ops::{Builder, Mapping, Membership, OpSteps, Step, UAC_ACCOUNTDISABLE};
use self::schema::Schema;
use super::{Backend, BackendError, Op, OpResult};
use crate::core::{Account, AccountState, Policy, Secret, Snapshot, UserKey, Value};

/// The LDAP backend for one (target, policy) pair.
pub struct LdapBackend {
    target: LdapTarget,
    map: Arc<Mapping>,
    managed: Vec<bool>,
    pool: Pool,
    /// AD: each account's `userAccountControl`, read by the snapshot (key folded).
    uac: Mutex<HashMap<String, u32>>,
    schema: OnceCell<Schema>,
}

/// Resolve the mapping against the policy (the config check has vetted it).
pub fn resolve(target: &LdapTarget, mapping: &LdapMapping, policy: &Policy) -> Result<Mapping, String> {
    let dn = DnTemplate::parse(&mapping.dn)?;
    let key_attr = match (&mapping.key_attribute, target.flavour) {
        (Some(k), _) => k.clone(),
        (None, Flavour::Ad) => "sAMAccountName".to_string(),
        (None, Flavour::Openldap) => dn
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
        templates,
        attributes: policy.attributes.clone(),
        leaver: mapping.leaver.method,
        leaver_attr: match (&mapping.leaver.attribute, &mapping.leaver.value) {
            (Some(a), Some(v)) => Some((a.clone(), v.clone())),
            _ => None,
        },
        strip_groups: mapping.leaver.strip_groups.unwrap_or(true),
        leavers_container: target.leavers.clone(),
        group_kind,
        group_dns,
        password: mapping.password_method,
    })
}

fn first<'a>(e: &'a SearchEntry, attr: &str) -> Option<&'a str> {
    e.attrs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(attr))
        .and_then(|(_, v)| v.first())
        .map(String::as_str)
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
        for (i, _) in &map.fields {
            managed[*i] = true;
        }
        for (_, t) in &map.dn.rdns {
            if let Some(i) = t.sole_field().and_then(|f| policy.attribute_index(f)) {
                managed[i] = true;
            }
        }
        let pool = Pool::new(target, password)?;
        pool.get(0).await?;
        Ok(LdapBackend {
            target: target.clone(),
            map: Arc::new(map),
            managed,
            pool,
            uac: Mutex::new(HashMap::new()),
            schema: OnceCell::new(),
        })
    }

    /// The subtrees one snapshot reads: the bases, plus the leavers container
    /// when it is not inside one of them.
    fn scopes(&self) -> Vec<String> {
        let mut v = self.target.base.list();
        if let Some(l) = &self.target.leavers {
            let nl = normalise(l);
            let inside = v.iter().any(|b| {
                let nb = normalise(b);
                nl == nb || nl.ends_with(&format!(",{nb}"))
            });
            if !inside {
                v.push(l.clone());
            }
        }
        v
    }

    fn lock_attr(&self) -> Option<&str> {
        match (self.map.flavour, self.map.leaver) {
            (Flavour::Ad, _) => Some("userAccountControl"),
            (Flavour::Openldap, LeaverMethod::Lock) => Some("pwdAccountLockedTime"),
            (Flavour::Openldap, LeaverMethod::Attribute) => self.map.leaver_attr.as_ref().map(|(a, _)| a.as_str()),
        }
    }

    fn account_of(&self, e: &SearchEntry) -> Option<Account> {
        let key = first(e, &self.map.key_attr)?;
        let mut attrs: Vec<Option<Value>> = vec![None; self.managed.len()];
        for (i, a) in &self.map.fields {
            attrs[*i] = first(e, a).map(Value::from);
        }
        let parsed = Dn::parse(&e.dn).ok();
        if let Some(d) = &parsed {
            for (f, v) in self.map.dn.extract(d) {
                if let Some(i) = self.map.attributes.iter().position(|a| *a == f) {
                    if attrs[i].is_none() {
                        attrs[i] = Some(Value::from(v));
                    }
                }
            }
        }
        let in_leavers = match (&parsed, &self.map.leavers_container) {
            (Some(d), Some(c)) => d.split_first().1.normalised() == normalise(c),
            _ => false,
        };
        let mut left_at = None;
        let locked = match (self.map.flavour, self.map.leaver) {
            (Flavour::Ad, _) => {
                let uac = first(e, "userAccountControl").and_then(|v| v.parse::<u32>().ok());
                if let Some(u) = uac {
                    if let Ok(mut m) = self.uac.lock() {
                        m.insert(UserKey::new(key).folded().to_string(), u);
                    }
                }
                uac.is_some_and(|u| u & UAC_ACCOUNTDISABLE != 0)
            }
            (Flavour::Openldap, LeaverMethod::Lock) => match first(e, "pwdAccountLockedTime") {
                Some(t) => {
                    left_at = ops::parse_generalized_time(t);
                    true
                }
                None => false,
            },
            (Flavour::Openldap, LeaverMethod::Attribute) => match &self.map.leaver_attr {
                Some((a, v)) => first(e, a).is_some_and(|x| x.eq_ignore_ascii_case(v)),
                None => false,
            },
        };
        Some(Account {
            key: UserKey::new(key),
            attrs,
            groups: Vec::new(),
            state: if locked || in_leavers {
                AccountState::Leaver
            } else {
                AccountState::Active
            },
            left_at,
            locator: Some(e.dn.clone()),
        })
    }

    async fn paged_search(
        &self,
        base: &str,
        scope: Scope,
        filter: &str,
        attrs: Vec<String>,
    ) -> Result<Vec<SearchEntry>, BackendError> {
        let mut ldap = self.pool.get(0).await?;
        let mut stream = ldap
            .with_timeout(self.pool.op_timeout())
            .streaming_search_with(PagedResults::new(self.target.page_size), base, scope, filter, attrs)
            .await
            .map_err(|e| BackendError::Other(format!("search of {base}: {e}")))?;
        let mut out = Vec::new();
        loop {
            match stream.next().await {
                Ok(Some(entry)) => out.push(SearchEntry::construct(entry)),
                Ok(None) => break,
                Err(e) => {
                    self.pool.drop_conn(0).await;
                    return Err(BackendError::Connect(format!("search of {base}: {e}")));
                }
            }
        }
        let res = stream.finish().await;
        match res.rc {
            0 => Ok(out),
            32 => Err(BackendError::Schema(format!(
                "the managed base {base} does not exist; create it or fix the target's base"
            ))),
            _ => Err(BackendError::Other(format!("search of {base}: {}", describe(&res)))),
        }
    }

    /// Read the managed groups' members (one search per parent container).
    async fn memberships(&self, dn_index: &HashMap<String, UserKey>) -> Result<Vec<(UserKey, Value)>, BackendError> {
        let mut by_parent: Vec<(String, Vec<(String, String)>)> = Vec::new();
        for (name, gdn) in &self.map.group_dns {
            let parsed = Dn::parse(gdn).map_err(BackendError::Schema)?;
            let parent = parsed.split_first().1.to_string_escaped();
            let np = normalise(&parent);
            match by_parent.iter_mut().find(|(p, _)| normalise(p) == np) {
                Some((_, v)) => v.push((normalise(gdn), name.clone())),
                None => by_parent.push((parent, vec![(normalise(gdn), name.clone())])),
            }
        }
        let kind = self.map.group_kind;
        let attr = kind.member_attribute();
        let mut out = Vec::new();
        for (parent, groups) in by_parent {
            let filter = format!("(objectClass={})", escape_filter_value(kind.object_class()));
            let entries = self
                .paged_search(&parent, Scope::OneLevel, &filter, vec![attr.to_string()])
                .await?;
            for e in entries {
                let ng = normalise(&e.dn);
                let Some((_, name)) = groups.iter().find(|(g, _)| *g == ng) else {
                    continue;
                };
                let values = e
                    .attrs
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(attr))
                    .map(|(_, v)| v.as_slice())
                    .unwrap_or(&[]);
                for v in values {
                    let user = if kind.by_dn() {
                        dn_index.get(&normalise(v)).cloned()
                    } else {
                        Some(UserKey::new(v))
                    };
                    if let Some(u) = user {
                        out.push((u, Value::from(name.as_str())));
                    }
                }
            }
        }
        Ok(out)
    }

    async fn schema(&self) -> Result<&Schema, BackendError> {
        self.schema
            .get_or_try_init(|| async {
                let mut ldap = self.pool.get(0).await?;
                let t = self.pool.op_timeout();
                let root = ldap
                    .with_timeout(t)
                    .search("", Scope::Base, "(objectClass=*)", vec!["subschemaSubentry"])
                    .await
                    .map_err(|e| BackendError::Other(format!("reading the root DSE: {e}")))?;
                let sub = root
                    .0
                    .into_iter()
                    .next()
                    .map(SearchEntry::construct)
                    .and_then(|e| first(&e, "subschemaSubentry").map(str::to_string))
                    .unwrap_or_else(|| "cn=Subschema".to_string());
                let r = ldap
                    .with_timeout(t)
                    .search(
                        &sub,
                        Scope::Base,
                        "(objectClass=subschema)",
                        vec!["objectClasses", "attributeTypes"],
                    )
                    .await
                    .map_err(|e| BackendError::Other(format!("reading the schema {sub}: {e}")))?;
                let e = r.0.into_iter().next().map(SearchEntry::construct).ok_or_else(|| {
                    BackendError::Schema(format!("the schema entry {sub} is not readable by the bind DN"))
                })?;
                let get = |a: &str| {
                    e.attrs
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case(a))
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default()
                };
                Ok(Schema::new(&get("objectClasses"), &get("attributeTypes")))
            })
            .await
    }

    fn build(&self, op: &Op<'_>) -> Result<OpSteps, String> {
        let uac = if self.map.flavour == Flavour::Ad {
            self.uac.lock().ok().and_then(|m| m.get(op.key.folded()).copied())
        } else {
            None
        };
        let mut salt = [0u8; 8];
        rand::Rng::fill(&mut rand::rng(), &mut salt);
        Builder {
            map: &self.map,
            op,
            uac,
            salt,
        }
        .build()
    }

    /// One phase of group changes for a batch: coalesced per group, falling
    /// back to one value at a time when the combined modify fails.
    async fn members_phase(&self, add: bool, items: Vec<(usize, &Membership)>, errs: &mut [Vec<String>]) {
        for (group, attr, members) in coalesce(&items) {
            let values: Vec<String> = members.iter().map(|(_, v)| v.clone()).collect();
            if self.pool.run_members(0, add, &group, attr, &values).await.is_ok() {
                continue;
            }
            for (op, v) in &members {
                if let Err(e) = self
                    .pool
                    .run_members(0, add, &group, attr, std::slice::from_ref(v))
                    .await
                {
                    errs[*op].push(e);
                }
            }
        }
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
        let mut attrs: Vec<String> = vec![self.map.key_attr.clone()];
        attrs.extend(self.map.fields.iter().map(|(_, a)| a.clone()));
        attrs.extend(self.lock_attr().map(str::to_string));
        let classes: String = self
            .map
            .object_classes
            .iter()
            .map(|c| format!("(objectClass={})", escape_filter_value(c)))
            .collect();
        let filter = format!("(&{classes}({}=*))", self.map.key_attr);
        let mut snap = Snapshot::new(self.managed.clone());
        let mut dn_index: HashMap<String, UserKey> = HashMap::new();
        let mut seen = std::collections::HashSet::new();
        for base in self.scopes() {
            let entries = self.paged_search(&base, Scope::Subtree, &filter, attrs.clone()).await?;
            for e in entries {
                let n = normalise(&e.dn);
                if !seen.insert(n.clone()) {
                    continue;
                }
                if let Some(a) = self.account_of(&e) {
                    dn_index.insert(n, a.key.clone());
                    snap.insert(a).map_err(BackendError::Schema)?;
                }
            }
        }
        if !self.map.group_dns.is_empty() {
            let m = self.memberships(&dn_index).await?;
            snap.add_memberships(m);
        }
        info!(accounts = snap.len(), "LDAP snapshot read.");
        Ok(snap)
    }

    async fn validate(&self, ops: &[Op<'_>]) -> Result<Vec<Option<String>>, BackendError> {
        let schema = self.schema().await?;
        let mut exists: HashMap<String, bool> = HashMap::new();
        let mut out = Vec::with_capacity(ops.len());
        for op in ops {
            let steps = match self.build(op) {
                Ok(s) => s,
                Err(e) => {
                    out.push(Some(e));
                    continue;
                }
            };
            let mut problems: Vec<String> = Vec::new();
            let mut need: Vec<String> = Vec::new();
            for s in &steps.steps {
                match s {
                    Step::Add { dn, attrs } => {
                        problems.extend(schema.check_add(attrs));
                        if let Ok(d) = Dn::parse(dn) {
                            need.push(d.split_first().1.to_string_escaped());
                        }
                    }
                    Step::Modify { mods, .. } => {
                        let (must, may) = schema.allowed(&self.map.object_classes).map_err(BackendError::Schema)?;
                        let allowed: Vec<String> = must.into_iter().chain(may).collect();
                        for m in mods {
                            if let Some(p) = schema.check_attribute(&m.attr, &m.values, &allowed) {
                                problems.push(p);
                            }
                            if m.values.is_empty() && schema.is_required(&m.attr, &self.map.object_classes) {
                                problems.push(format!(
                                    "{} is required by the object classes and an empty cell would remove it",
                                    m.attr
                                ));
                            }
                        }
                    }
                    Step::Rename { new_superior, .. } => need.extend(new_superior.iter().cloned()),
                    Step::Delete { .. } | Step::SetPassword { .. } => {}
                }
            }
            for m in steps.group_add.iter().chain(&steps.group_remove) {
                need.push(m.group_dn.clone());
            }
            for dn in need {
                let n = normalise(&dn);
                let ok = match exists.get(&n) {
                    Some(b) => *b,
                    None => {
                        let b = self.pool.exists(0, &dn).await.map_err(BackendError::Other)?;
                        exists.insert(n, b);
                        b
                    }
                };
                if !ok {
                    problems.push(format!("{dn} does not exist"));
                }
            }
            problems.dedup();
            out.push((!problems.is_empty()).then(|| problems.join("; ")));
        }
        Ok(out)
    }

    fn batch_size(&self) -> usize {
        self.target.batch_size
    }

    async fn apply(&self, ops: &[Op<'_>]) -> Result<Vec<OpResult>, BackendError> {
        // A server that stays down fails the run as a whole, not row by row.
        let mut up = Err(BackendError::Connect("not tried".into()));
        for attempt in 0..=self.target.retries {
            up = self.pool.get(0).await.map(|_| ());
            if up.is_ok() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis((200u64 << attempt.min(5)).min(5_000))).await;
        }
        up?;
        let built: Vec<Result<OpSteps, String>> = ops.iter().map(|op| self.build(op)).collect();
        let mut errs: Vec<Vec<String>> = built
            .iter()
            .map(|b| b.as_ref().err().cloned().into_iter().collect())
            .collect();
        let ok = |k: usize| built[k].as_ref().ok();

        let removes: Vec<(usize, &Membership)> = (0..ops.len())
            .filter_map(|k| ok(k).map(|s| (k, s)))
            .flat_map(|(k, s)| s.group_remove.iter().map(move |m| (k, m)))
            .collect();
        self.members_phase(false, removes, &mut errs).await;

        let conns = self.pool.size();
        let pool = &self.pool;
        let entry_results: Vec<Result<(), String>> = futures::stream::iter(0..ops.len())
            .map(|k| {
                let steps = ok(k).map(|s| s.steps.as_slice()).unwrap_or(&[]);
                async move {
                    for s in steps {
                        pool.run_step(k % conns, s).await?;
                    }
                    Ok(())
                }
            })
            .buffered(self.target.max_in_flight.max(1))
            .collect()
            .await;
        for (k, r) in entry_results.iter().enumerate() {
            if let Err(e) = r {
                errs[k].push(e.clone());
            }
        }

        let done = |k: usize| entry_results[k].is_ok() && built[k].is_ok();
        let after: Vec<(usize, &Membership)> = (0..ops.len())
            .filter(|k| done(*k))
            .filter_map(|k| ok(k).map(|s| (k, s)))
            .flat_map(|(k, s)| s.group_remove_after.iter().map(move |m| (k, m)))
            .collect();
        self.members_phase(false, after, &mut errs).await;
        let adds: Vec<(usize, &Membership)> = (0..ops.len())
            .filter(|k| done(*k))
            .filter_map(|k| ok(k).map(|s| (k, s)))
            .flat_map(|(k, s)| s.group_add.iter().map(move |m| (k, m)))
            .collect();
        self.members_phase(true, adds, &mut errs).await;

        Ok(errs
            .into_iter()
            .map(|e| if e.is_empty() { Ok(()) } else { Err(e.join("; ")) })
            .collect())
    }
}
