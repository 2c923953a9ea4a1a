//! A policy file: the sync rules (for the core) plus the mapping onto its
//! target (for the adapter).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{compile_policy, config_error, ConfigError, TargetConfig};
use crate::backend::ldap::LdapMapping;
use crate::backend::sql::SqlMapping;
use crate::core::policy::{
    FieldRule, GroupRules, LayoutSection, LifecycleSection, Limits, PasswordRules, Policy, RosterRules, SyncRules,
};

/// The TOML shape of a policy file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    /// The target (a `[targets.NAME]` of the config) this policy writes to.
    pub target: String,
    #[serde(default)]
    pub roster: RosterRules,
    #[serde(default)]
    pub fields: BTreeMap<String, FieldRule>,
    #[serde(default)]
    pub sync: SyncRules,
    #[serde(default)]
    pub passwords: PasswordRules,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub groups: GroupRules,
    /// `[[layouts]]`: alternative header layouts; the file's header picks one.
    #[serde(default)]
    pub layouts: Vec<LayoutSection>,
    /// `[lifecycle]`: start and end dates (future joiners and leavers).
    #[serde(default)]
    pub lifecycle: LifecycleSection,
    /// Mapping onto a SQL table (for `kind = "sql"` targets).
    pub sql: Option<SqlMapping>,
    /// `[mail]`: templates and the credentials schedule. Optional.
    pub mail: Option<crate::mail::PolicyMail>,
    /// Mapping onto LDAP entries (for `kind = "ldap"` targets).
    pub ldap: Option<LdapMapping>,
}

/// A policy file, read and checked.
#[derive(Debug, Clone)]
pub struct LoadedPolicy {
    pub name: String,
    pub path: PathBuf,
    pub target: String,
    pub policy: Policy,
    pub file: PolicyFile,
}

impl LoadedPolicy {
    pub fn load(name: &str, path: &Path) -> Result<LoadedPolicy, Vec<ConfigError>> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| vec![config_error(path, format!("cannot read policy {name:?}: {e}"))])?;
        let file: PolicyFile = toml::from_str(&text).map_err(|e| vec![config_error(path, e.to_string())])?;
        let policy = compile_policy(name, &file)
            .map_err(|errs| errs.into_iter().map(|m| config_error(path, m)).collect::<Vec<_>>())?;
        Ok(LoadedPolicy {
            name: name.to_string(),
            path: path.to_path_buf(),
            target: file.target.clone(),
            policy,
            file,
        })
    }

    /// The mapping section matches the target's kind and names only known fields.
    pub fn check_against(&self, target: &TargetConfig) -> Result<(), String> {
        match target {
            TargetConfig::Sql(_) => match &self.file.sql {
                None => Err(format!(
                    "target {:?} is a SQL target: this policy needs a [sql] section",
                    self.target
                )),
                Some(m) if self.policy.sync.adopt.is_some() && m.scope.is_none() => Err(
                    "sync.adopt needs [sql.scope]: the rows outside the scope are the accounts a row may adopt \
                     (and adopting one sets the scope column); add [sql.scope] column and value"
                        .into(),
                ),
                Some(m) => m.check(&self.policy),
            },
            TargetConfig::Ldap(t)
                if self.policy.sync.adopt.is_some()
                    && t.flavour == crate::backend::ldap::Flavour::Ad
                    && self.file.ldap.as_ref().is_some_and(|m| m.adopt_from.is_empty()) =>
            {
                Err(format!(
                    "sync.adopt: on Active Directory every account has a sAMAccountName, so none in the base is \
                     outside the managed scope (target {:?}); name the containers to adopt accounts from in \
                     [ldap] adopt_from (like \"CN=Users,DC=example,DC=org\")",
                    self.target
                ))
            }
            TargetConfig::Ldap(t) => match &self.file.ldap {
                None => Err(format!(
                    "target {:?} is an LDAP target: this policy needs an [ldap] section",
                    self.target
                )),
                Some(m) => m.check(&self.policy, t),
            },
        }
    }
}

impl<'a> From<&'a LoadedPolicy> for crate::mail::MailPolicy<'a> {
    fn from(lp: &'a LoadedPolicy) -> Self {
        crate::mail::MailPolicy {
            mail: lp.file.mail.as_ref(),
            file: &lp.path,
        }
    }
}
