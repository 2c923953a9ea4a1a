//! TOML → validated [`Config`]: the service file (`dirsync.toml`) and the
//! policies it names. Relative paths resolve against the folder of the file
//! that holds them. Secrets come from files or environment variables.
//! This file holds the types; load.rs reads and checks `dirsync.toml`.

mod load;
mod policy_file;
pub mod shared_journal;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::backend::ldap::LdapTarget;
use crate::backend::sql::SqlTarget;
use crate::core::policy::Policy;
use crate::inbox::sftp::SftpInbox;
pub use crate::inbox::InboxConfig;
pub use crate::paths::resolve;
pub use crate::secrets::{read_secret, SecretRef};
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

/// `[service]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServiceConfig {
    /// Folder for the journal and other state (relative to the config file).
    pub state_dir: PathBuf,
    /// The journal's database URL. Default: `sqlite://{state_dir}/journal.db`.
    /// A `postgres://` URL lets several daemons share one journal.
    pub journal: Option<String>,
    /// How long a daemon's hold on a run, a target or a claimed file lasts
    /// without a heartbeat (renewed every third of it). Another daemon
    /// sharing the journal takes the work over after this long.
    pub lease_seconds: u64,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            state_dir: PathBuf::from("state"),
            journal: None,
            lease_seconds: 30,
        }
    }
}

impl ServiceConfig {
    /// `lease_seconds` as a duration (at least one second).
    pub fn lease(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.lease_seconds.max(1))
    }

    /// The journal's URL, with the default filled in.
    pub fn journal_url(&self) -> String {
        match &self.journal {
            Some(u) => u.clone(),
            None => format!("sqlite://{}", self.state_dir.join("journal.db").display()),
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

/// The whole configuration, checked.
#[derive(Debug)]
pub struct Config {
    pub path: PathBuf,
    pub dir: PathBuf,
    pub service: ServiceConfig,
    pub targets: BTreeMap<String, TargetConfig>,
    pub policies: BTreeMap<String, LoadedPolicy>,
    /// `[mail]`, paths resolved and defaults filled in.
    pub mail: Option<crate::mail::MailConfig>,
    /// SFTP inboxes, in file order.
    pub sftp_inboxes: Vec<SftpInbox>,
    /// Inboxes, with folders resolved.
    pub inboxes: Vec<InboxConfig>,
    /// `[http]`, checked (its address, TLS, proxy and users file), paths resolved.
    pub http: Option<crate::http::HttpConfig>,
}

impl Config {
    /// The SFTP inbox called `name`.
    pub fn sftp_inbox(&self, name: &str) -> Result<&SftpInbox, String> {
        self.sftp_inboxes.iter().find(|i| i.name == name).ok_or_else(|| {
            format!(
                "no [[sftp_inbox]] named {name:?} in {} (defined: {})",
                self.path.display(),
                self.sftp_inboxes
                    .iter()
                    .map(|i| i.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
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

    /// Where policy `policy` writes: "the same target" is the same place,
    /// whatever the config calls it (runs against one place are serialised).
    pub fn target_place(&self, policy: &str) -> String {
        match self.policies.get(policy) {
            Some(lp) => self
                .target(lp)
                .map(|t| t.describe())
                .unwrap_or_else(|_| lp.target.clone()),
            None => policy.to_string(),
        }
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
    .and_then(|p| p.with_layouts(&f.layouts))
    .and_then(|p| p.with_lifecycle(&f.lifecycle))
}
