//! The backend a policy writes to, and the passwords generated for new users.

use rand::seq::IndexedRandom;

use super::SyncError;
use crate::backend::ldap::LdapBackend;
use crate::backend::sql::SqlBackend;
use crate::backend::{Backend, BackendError};
use crate::config::{read_secret, Config, LoadedPolicy, TargetConfig};
use crate::core::{Policy, Secret};

/// Why the backend could not be opened: the config (an operator must fix
/// it), or the target itself (down: the run fails and resumes later).
#[derive(Debug)]
pub enum OpenError {
    Config(String),
    Target(BackendError),
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::Config(m) => f.write_str(m),
            OpenError::Target(e) => write!(f, "target: {e}"),
        }
    }
}

impl From<OpenError> for SyncError {
    fn from(e: OpenError) -> SyncError {
        match e {
            OpenError::Config(m) => SyncError::Config(m),
            OpenError::Target(e) => SyncError::Config(format!("target: {e}")),
        }
    }
}

/// One read of the target: the managed scope, and with `sync.adopt` the
/// accounts outside it that a row may adopt.
pub(super) async fn read_target(backend: &dyn Backend, policy: &Policy) -> Result<crate::core::Snapshot, BackendError> {
    let mut snapshot = backend.snapshot().await?;
    if policy.sync.adopt.is_some() {
        snapshot.add_adoptable(backend.outside().await?);
    }
    Ok(snapshot)
}

/// Open the backend a policy writes to.
pub async fn open_backend(config: &Config, policy: &LoadedPolicy) -> Result<Box<dyn Backend>, OpenError> {
    let target = config.target(policy).map_err(OpenError::Config)?;
    match target {
        TargetConfig::Sql(t) => {
            let mapping = policy
                .file
                .sql
                .as_ref()
                .ok_or_else(|| OpenError::Config(format!("policy {:?} has no [sql] section", policy.name)))?;
            let password = read_secret(
                t.password_file.as_deref(),
                t.password_env.as_deref(),
                "database password",
            )
            .map_err(OpenError::Config)?;
            Ok(Box::new(
                SqlBackend::connect(t, mapping, &policy.policy, password)
                    .await
                    .map_err(OpenError::Target)?,
            ))
        }
        TargetConfig::Ldap(t) => {
            let mapping = policy
                .file
                .ldap
                .as_ref()
                .ok_or_else(|| OpenError::Config(format!("policy {:?} has no [ldap] section", policy.name)))?;
            let password = read_secret(
                t.bind_password_file.as_deref(),
                t.bind_password_env.as_deref(),
                "LDAP bind password",
            )
            .map_err(OpenError::Config)?
            .ok_or_else(|| {
                OpenError::Config("LDAP bind password: set bind_password_file or bind_password_env".into())
            })?;
            Ok(Box::new(
                LdapBackend::connect(t, mapping, &policy.policy, password)
                    .await
                    .map_err(OpenError::Target)?,
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
