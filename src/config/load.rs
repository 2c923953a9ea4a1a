//! Loading `dirsync.toml`: the file parsed, every section checked and its
//! paths resolved, the policies it names loaded; all problems collected.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{config_error, resolve, Config, ConfigError, InboxConfig, LoadedPolicy, ServiceConfig, TargetConfig};
use crate::inbox::sftp::SftpInbox;

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
    /// Mail (results, credentials). Optional: without it no mail is sent.
    mail: Option<crate::mail::MailConfig>,
    /// `[[sftp_inbox]]`: remote inboxes on SFTP servers.
    #[serde(default)]
    sftp_inbox: Vec<SftpInbox>,
    /// `[[inbox]]`: where files come from (`dirsync serve`).
    #[serde(default)]
    inbox: Vec<InboxConfig>,
    /// `[http]`: health checks and metrics of `dirsync serve`. Off when absent.
    http: Option<crate::http::HttpConfig>,
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
                    errors.extend(
                        crate::mail::check_policy((&lp).into())
                            .into_iter()
                            .map(|e| config_error(&e.file, e.message)),
                    );
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
        let http = file.http.map(|h| h.resolved(&dir));
        if let Some(h) = &http {
            if let Err(m) = h.addr() {
                errors.push(config_error(path, m));
            }
            if let Some(u) = &h.users_file {
                if let Err(e) = crate::http::users::Users::load(u) {
                    errors.push(config_error(path, format!("[http] users_file: {e}")));
                }
            }
        }
        for lp in policies.values() {
            if lp.policy.passwords.deliver == crate::core::policy::Deliver::Activation && http.is_none() {
                errors.push(config_error(
                    &lp.path,
                    "[passwords] deliver = \"activation\" needs the web console ([http] in dirsync.toml, \
                     with public_url): users set their password on its /activate page",
                ));
            }
        }
        let mut mail = file.mail.map(|m| m.resolved(&dir, &file.service.state_dir));
        if let Some(m) = &mail {
            errors.extend(m.check().into_iter().map(|msg| config_error(path, msg)));
        }
        let mut sftp_inboxes: Vec<SftpInbox> = Vec::new();
        for inbox in file.sftp_inbox {
            let name = inbox.name.clone();
            if sftp_inboxes.iter().any(|i| i.name == name) {
                errors.push(config_error(path, format!("sftp_inbox {name:?} is defined twice")));
            }
            if !policies.contains_key(&inbox.policy) {
                errors.push(config_error(
                    path,
                    format!(
                        "sftp_inbox {name:?}: policy {:?} is not under [policies] (defined: {})",
                        inbox.policy,
                        policies.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
            match inbox.resolved(&dir) {
                Ok(i) => sftp_inboxes.push(i),
                Err(m) => errors.push(config_error(path, format!("sftp_inbox {name:?}: {m}"))),
            }
        }
        let mut inboxes = Vec::new();
        for (n, mut inbox) in file.inbox.into_iter().enumerate() {
            let at = format!("inbox #{} ({:?})", n + 1, inbox.name);
            if inbox.name.trim().is_empty() {
                errors.push(config_error(path, format!("{at}: name must not be empty")));
            }
            if inboxes.iter().any(|i: &InboxConfig| i.name == inbox.name) {
                errors.push(config_error(path, format!("{at}: another inbox has this name")));
            }
            if !policies.contains_key(&inbox.policy) && !file.policies.contains_key(&inbox.policy) {
                errors.push(config_error(
                    path,
                    format!(
                        "{at}: policy {:?} is not in [policies] (defined: {})",
                        inbox.policy,
                        file.policies.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
            match &inbox.folder {
                Some(f) => {
                    let f = resolve(&dir, f);
                    if inboxes
                        .iter()
                        .any(|i: &InboxConfig| i.folder.as_deref() == Some(f.as_path()))
                    {
                        errors.push(config_error(
                            path,
                            format!("{at}: another inbox watches {}", f.display()),
                        ));
                    }
                    inbox.folder = Some(f);
                }
                None => errors.push(config_error(
                    path,
                    format!("{at}: give folder = \"PATH\" (the drop folder)"),
                )),
            }
            if sftp_inboxes.iter().any(|i| i.name == inbox.name) {
                errors.push(config_error(
                    path,
                    format!("{at}: an [[sftp_inbox]] has this name too; inbox names must be unique (runs are journaled by inbox name)"),
                ));
            }
            inboxes.push(inbox);
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let mut service = file.service;
        service.state_dir = resolve(&dir, &service.state_dir);
        if let Some(url) = &service.journal {
            match resolve_journal_url(&dir, url) {
                Ok(u) => service.journal = Some(u),
                Err(m) => return Err(vec![config_error(path, format!("service.journal: {m}"))]),
            }
        }
        // The outbox lives in the journal's database unless [mail] says otherwise.
        if let Some(m) = mail.as_mut().filter(|m| m.outbox.is_none()) {
            m.outbox = Some(service.journal_url());
        }
        Ok(Config {
            path: path.to_path_buf(),
            dir,
            service,
            targets,
            policies,
            mail,
            sftp_inboxes,
            inboxes,
            http,
        })
    }
}

/// A journal URL: `sqlite://PATH` (relative to the config file) or `postgres://…`.
fn resolve_journal_url(dir: &Path, url: &str) -> Result<String, String> {
    if let Some(rest) = url.strip_prefix("sqlite://") {
        if rest.is_empty() || rest.starts_with(':') {
            return Err("give a file: sqlite://PATH".into());
        }
        let p = Path::new(rest);
        Ok(format!("sqlite://{}", resolve(dir, p).display()))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        if crate::redact::redact_url(url) != url {
            return Err("do not put the password in the URL; use the PGPASSWORD environment variable".into());
        }
        Ok(url.to_string())
    } else {
        Err(format!("{url:?}: use sqlite://PATH or postgres://…"))
    }
}
