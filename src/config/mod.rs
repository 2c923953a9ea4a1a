//! TOML → validated [`Config`]: the service file (`dirsync.toml`) and the
//! policies it names. Relative paths resolve against the folder of the file
//! that holds them. Secrets come from files or environment variables.

mod policy_file;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::backend::ldap::LdapTarget;
use crate::backend::sql::SqlTarget;
use crate::core::policy::Policy;
use crate::core::Secret;
pub use policy_file::{LoadedPolicy, PolicyFile};

/// A configuration problem, with the file it is in.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {message}")]
pub struct ConfigError {
    pub file: PathBuf,
    pub message: String,
}

pub(crate) fn config_error(file: &Path, message: impl Into<String>) -> ConfigError {
    ConfigError {
        file: file.to_path_buf(),
        message: message.into(),
    }
}

/// `dirsync.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    service: ServiceConfig,
    #[serde(default)]
    targets: BTreeMap<String, TargetConfig>,
    /// Policy name → policy file.
    #[serde(default)]
    policies: BTreeMap<String, PathBuf>,
}

/// `[service]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServiceConfig {
    /// Folder for the journal and other state (relative to the config file).
    pub state_dir: PathBuf,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            state_dir: PathBuf::from("state"),
        }
    }
}

/// `[targets.NAME]`: where accounts live.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum TargetConfig {
    /// SQLite, PostgreSQL or MariaDB/MySQL, chosen by the URL.
    Sql(SqlTarget),
    /// OpenLDAP or Active Directory (`flavour`), over ldap://, ldaps:// or StartTLS.
    Ldap(LdapTarget),
}

/// A secret named in the TOML: read from a file or an environment variable,
/// never written inline.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretRef {
    pub file: Option<PathBuf>,
    pub env: Option<String>,
}

/// Read a secret from its file (trailing newline removed) or variable.
pub fn read_secret(file: Option<&Path>, env: Option<&str>, what: &str) -> Result<Option<Secret>, String> {
    match (file, env) {
        (Some(_), Some(_)) => Err(format!("{what}: give a file or an environment variable, not both")),
        (Some(f), None) => match std::fs::read_to_string(f) {
            Ok(s) => Ok(Some(Secret::new(s.trim_end_matches(['\r', '\n'])))),
            Err(e) => Err(format!("{what}: cannot read {}: {e}", f.display())),
        },
        (None, Some(v)) => match std::env::var(v) {
            Ok(s) => Ok(Some(Secret::new(s))),
            Err(_) => Err(format!("{what}: environment variable {v} is not set")),
        },
        (None, None) => Ok(None),
    }
}

/// The whole configuration, checked.
#[derive(Debug)]
pub struct Config {
    pub path: PathBuf,
    pub dir: PathBuf,
    pub service: ServiceConfig,
    pub targets: BTreeMap<String, TargetConfig>,
    pub policies: BTreeMap<String, LoadedPolicy>,
}

/// Resolve `p` against `base` unless it is absolute.
pub fn resolve(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

impl Config {
    /// Load and validate the config and every policy it names. All problems
    /// are collected, so one `config check` shows them all.
    pub fn load(path: &Path) -> Result<Config, Vec<ConfigError>> {
        let text = std::fs::read_to_string(path).map_err(|e| vec![config_error(path, format!("cannot read: {e}"))])?;
        let file: ConfigFile = toml::from_str(&text).map_err(|e| vec![config_error(path, e.to_string())])?;
        let dir = path
            .parent()
            .map(|p| if p.as_os_str().is_empty() { Path::new(".") } else { p })
            .unwrap_or(Path::new("."))
            .to_path_buf();
        let mut errors = Vec::new();
        let mut targets = BTreeMap::new();
        for (name, t) in file.targets {
            match t.resolved(&dir) {
                Ok(t) => {
                    targets.insert(name, t);
                }
                Err(m) => errors.push(config_error(path, format!("targets.{name}: {m}"))),
            }
        }
        let mut policies = BTreeMap::new();
        for (name, p) in &file.policies {
            let ppath = resolve(&dir, p);
            match LoadedPolicy::load(name, &ppath) {
                Ok(lp) => {
                    if !targets.contains_key(&lp.target) {
                        errors.push(config_error(
                            &ppath,
                            format!(
                                "target = {:?} is not defined in {} (defined: {})",
                                lp.target,
                                path.display(),
                                targets.keys().cloned().collect::<Vec<_>>().join(", ")
                            ),
                        ));
                    } else if let Err(m) = lp.check_against(&targets[&lp.target]) {
                        errors.push(config_error(&ppath, m));
                    }
                    policies.insert(name.clone(), lp);
                }
                Err(mut e) => errors.append(&mut e),
            }
        }
        if policies.is_empty() && errors.is_empty() {
            errors.push(config_error(
                path,
                "no [policies] defined; name at least one policy file",
            ));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let mut service = file.service;
        service.state_dir = resolve(&dir, &service.state_dir);
        Ok(Config {
            path: path.to_path_buf(),
            dir,
            service,
            targets,
            policies,
        })
    }

    /// The named policy, or the only one when no name is given.
    pub fn policy(&self, name: Option<&str>) -> Result<&LoadedPolicy, String> {
        match name {
            Some(n) => self.policies.get(n).ok_or_else(|| {
                format!(
                    "no policy named {n:?}; this config has: {}",
                    self.policies.keys().cloned().collect::<Vec<_>>().join(", ")
                )
            }),
            None if self.policies.len() == 1 => self
                .policies
                .values()
                .next()
                .ok_or_else(|| "no policy defined".to_string()),
            None => Err(format!(
                "this config has several policies ({}); choose one with --policy NAME",
                self.policies.keys().cloned().collect::<Vec<_>>().join(", ")
            )),
        }
    }

    pub fn target(&self, policy: &LoadedPolicy) -> Result<&TargetConfig, String> {
        self.targets
            .get(&policy.target)
            .ok_or_else(|| format!("target {:?} is not defined", policy.target))
    }
}

impl TargetConfig {
    fn resolved(self, dir: &Path) -> Result<TargetConfig, String> {
        match self {
            TargetConfig::Sql(s) => Ok(TargetConfig::Sql(s.resolved(dir)?)),
            TargetConfig::Ldap(l) => Ok(TargetConfig::Ldap(l.resolved(dir)?)),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            TargetConfig::Sql(s) => s.describe(),
            TargetConfig::Ldap(l) => l.describe(),
        }
    }
}

/// The policy's sync rules compiled for the core.
pub fn compile_policy(name: &str, f: &PolicyFile) -> Result<Policy, Vec<String>> {
    Policy::compile(
        name,
        f.roster.clone(),
        f.fields.clone(),
        f.sync.clone(),
        f.passwords.clone(),
        f.limits.clone(),
        f.groups.clone(),
    )
}
