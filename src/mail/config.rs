//! `[mail]` in dirsync.toml (how mail leaves: sender, transport, outbox);
//! `[mail]` in a policy file (what is sent: templates, credentials schedule)
//! is in policy.rs.

use std::path::{Path, PathBuf};

use lettre::message::Mailbox;
use serde::Deserialize;

use crate::paths::resolve;

mod policy;

pub use policy::{PolicyMail, SendAt, TemplatePaths};

/// `[mail]` in dirsync.toml. Without it dirsync sends no mail.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailConfig {
    /// The sender: `"dirsync@example.org"` or `"dirsync <dirsync@example.org>"`.
    pub from: String,
    /// `"smtp"` (default) or `"file"` (writes one `.eml` file per message into `folder`).
    #[serde(default)]
    pub transport: TransportKind,
    /// The relay as a URL: `smtp://host:587` (STARTTLS unless `tls` says
    /// otherwise) or `smtps://host:465` (implicit TLS). No credentials in the URL.
    pub url: Option<String>,
    /// The relay host, when `url` is not given.
    pub host: Option<String>,
    /// The relay port. Default: 465 for implicit TLS, 587 for STARTTLS, 25 for none.
    pub port: Option<u16>,
    /// `"starttls"` (default), `"implicit"` (TLS from the first byte, port 465)
    /// or `"none"` (plain; only for a relay on localhost or a trusted network).
    pub tls: Option<TlsMode>,
    /// A PEM file with the CA certificate of a relay whose certificate is not
    /// signed by a CA in the system store. Optional.
    pub ca_file: Option<PathBuf>,
    /// SMTP AUTH user name. Optional: without it dirsync does not authenticate.
    pub username: Option<String>,
    /// SMTP AUTH password, from a file (first line) ...
    pub password_file: Option<PathBuf>,
    /// ... or from an environment variable. Never inline.
    pub password_env: Option<String>,
    /// Seconds to wait for each step of an SMTP conversation. Default 30.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// The folder for `transport = "file"`. Default: `mail` in the state folder.
    pub folder: Option<PathBuf>,
    /// Copies of every results mail (never of a credentials mail).
    #[serde(default)]
    pub cc: Vec<String>,
    /// At most this many messages per minute in all. Default: no cap.
    pub max_per_minute: Option<u32>,
    /// Give up on a message after this many failed attempts. Default 20
    /// (backoff doubles from 1 minute up to 1 hour, so about 15 hours).
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// The outbox database. Default: the journal's (`[service] journal`, or
    /// `sqlite://STATE_DIR/journal.db`), so daemons sharing a journal share it.
    pub outbox: Option<String>,
    /// The key that encrypts message bodies in the outbox (created, mode
    /// 0600, when missing). Default: `STATE_DIR/outbox.key`.
    pub key_file: Option<PathBuf>,
}

const fn default_timeout_secs() -> u64 {
    30
}
const fn default_max_attempts() -> u32 {
    20
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransportKind {
    #[default]
    Smtp,
    File,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    Starttls,
    Implicit,
    None,
}

impl TlsMode {
    pub fn as_str(self) -> &'static str {
        match self {
            TlsMode::Starttls => "starttls",
            TlsMode::Implicit => "implicit",
            TlsMode::None => "none",
        }
    }
    pub fn default_port(self) -> u16 {
        match self {
            TlsMode::Starttls => 587,
            TlsMode::Implicit => 465,
            TlsMode::None => 25,
        }
    }
}

/// Where SMTP goes, resolved from `url` / `host` / `port` / `tls`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
}

impl MailConfig {
    /// Resolve relative paths and fill defaults that depend on the state folder.
    pub fn resolved(mut self, dir: &Path, state_dir: &Path) -> MailConfig {
        let state = resolve(dir, state_dir);
        self.folder = Some(match &self.folder {
            Some(f) => resolve(dir, f),
            None => state.join("mail"),
        });
        self.key_file = Some(match &self.key_file {
            Some(f) => resolve(dir, f),
            None => state.join("outbox.key"),
        });
        self.password_file = self.password_file.as_deref().map(|p| resolve(dir, p));
        self.ca_file = self.ca_file.as_deref().map(|p| resolve(dir, p));
        self
    }

    /// Every problem with this section, as sentences saying what to change.
    pub fn check(&self) -> Vec<String> {
        let mut errors = Vec::new();
        if let Err(e) = self.from.parse::<Mailbox>() {
            errors.push(format!("mail.from = {:?} is not a mail address ({e})", self.from));
        }
        for cc in &self.cc {
            if let Err(e) = cc.parse::<Mailbox>() {
                errors.push(format!("mail.cc: {cc:?} is not a mail address ({e})"));
            }
        }
        if self.transport == TransportKind::Smtp {
            if let Err(e) = self.endpoint() {
                errors.push(e);
            }
        }
        if self.password_file.is_some() && self.password_env.is_some() {
            errors.push("mail: give password_file or password_env, not both".into());
        }
        if (self.password_file.is_some() || self.password_env.is_some()) && self.username.is_none() {
            errors.push("mail: a password is set but no username; add mail.username".into());
        }
        if self.max_per_minute == Some(0) {
            errors.push("mail.max_per_minute must be at least 1 (leave it out for no cap)".into());
        }
        if self.max_attempts == 0 {
            errors.push("mail.max_attempts must be at least 1".into());
        }
        if let Some(url) = &self.outbox {
            if !(url.starts_with("sqlite:") || url.starts_with("postgres:") || url.starts_with("postgresql:")) {
                errors.push(format!(
                    "mail.outbox = {url:?}: use a sqlite:// or postgres:// URL (or leave it out for the journal)"
                ));
            }
        }
        errors
    }

    /// One line for `dirsync config check`.
    pub fn describe(&self) -> String {
        let how = match (self.transport, self.endpoint()) {
            (TransportKind::File, _) => format!(
                "files in {}",
                self.folder.as_deref().unwrap_or(Path::new("?")).display()
            ),
            (TransportKind::Smtp, Ok(ep)) => format!(
                "smtp {}:{} (tls {}{})",
                ep.host,
                ep.port,
                ep.tls.as_str(),
                if self.username.is_some() { ", login" } else { "" }
            ),
            (TransportKind::Smtp, Err(e)) => e,
        };
        format!(
            "from {}, {how}, outbox {}",
            self.from,
            self.outbox.as_deref().unwrap_or("?")
        )
    }

    /// The SMTP relay this config names.
    pub fn endpoint(&self) -> Result<Endpoint, String> {
        let (host, port, scheme_tls) = match (&self.url, &self.host) {
            (Some(_), Some(_)) => return Err("mail: give url or host (+ port), not both".into()),
            (None, None) => {
                return Err(
                    "mail: transport = \"smtp\" needs url = \"smtp://HOST:PORT\" or host = \"HOST\" \
                     (or set transport = \"file\")"
                        .into(),
                )
            }
            (None, Some(h)) => (h.clone(), None, None),
            (Some(u), None) => parse_url(u)?,
        };
        if port.is_some() && self.port.is_some() {
            return Err("mail: the port is in the url; remove mail.port".into());
        }
        let tls = match (self.tls, scheme_tls) {
            (Some(t), Some(s)) if t != s => {
                return Err(format!(
                    "mail: the url scheme smtps:// means implicit TLS but tls = {:?}; use smtp:// for {:?}",
                    t.as_str(),
                    t.as_str()
                ))
            }
            (Some(t), _) | (None, Some(t)) => t,
            (None, None) => TlsMode::Starttls,
        };
        Ok(Endpoint {
            port: port.or(self.port).unwrap_or(tls.default_port()),
            host,
            tls,
        })
    }
}

/// `smtp://host[:port]` or `smtps://host[:port]`.
fn parse_url(url: &str) -> Result<(String, Option<u16>, Option<TlsMode>), String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| format!("mail.url = {url:?}: write it as smtp://HOST:PORT or smtps://HOST:PORT"))?;
    let tls = match scheme {
        "smtp" => None,
        "smtps" => Some(TlsMode::Implicit),
        _ => return Err(format!("mail.url = {url:?}: the scheme must be smtp or smtps")),
    };
    let rest = rest.trim_end_matches('/');
    if rest.contains('@') {
        return Err("mail.url must not hold credentials: use mail.username and mail.password_file".into());
    }
    if rest.contains('/') || rest.contains('?') {
        return Err(format!(
            "mail.url = {url:?}: only scheme, host and port are read; put options in their own keys"
        ));
    }
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || rest.starts_with('[') => {
            let port = p
                .parse::<u16>()
                .map_err(|_| format!("mail.url = {url:?}: {p:?} is not a port number"))?;
            (h.trim_start_matches('[').trim_end_matches(']').to_string(), Some(port))
        }
        _ => (rest.to_string(), None),
    };
    if host.is_empty() {
        return Err(format!("mail.url = {url:?} names no host"));
    }
    Ok((host, port, tls))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(toml_text: &str) -> MailConfig {
        toml::from_str(toml_text).unwrap() // ok: test input
    }

    #[test]
    fn endpoint_from_url_and_host() {
        let e = cfg("from = \"a@b.c\"\nurl = \"smtps://relay.example.org\"").endpoint();
        assert_eq!(
            e,
            Ok(Endpoint {
                host: "relay.example.org".into(),
                port: 465,
                tls: TlsMode::Implicit
            })
        );
        let e = cfg("from = \"a@b.c\"\nhost = \"127.0.0.1\"\nport = 2525\ntls = \"none\"").endpoint();
        assert_eq!(
            e,
            Ok(Endpoint {
                host: "127.0.0.1".into(),
                port: 2525,
                tls: TlsMode::None
            })
        );
        assert!(cfg("from = \"a@b.c\"\nurl = \"smtp://u:p@h:25\"").endpoint().is_err());
        assert!(cfg("from = \"a@b.c\"\nurl = \"smtps://h\"\ntls = \"starttls\"")
            .endpoint()
            .is_err());
    }

    #[test]
    fn send_at_next() {
        let s = SendAt::parse("08:00").unwrap(); // ok: test input
        let midnight = 20_000 * 86_400;
        assert_eq!(s.next_at_or_after(midnight), midnight + 8 * 3600);
        assert_eq!(s.next_at_or_after(midnight + 9 * 3600), midnight + 86_400 + 8 * 3600);
        let s = SendAt::parse("08:00+01:00").unwrap(); // ok: test input
        assert_eq!(s.next_at_or_after(midnight), midnight + 7 * 3600);
        assert!(SendAt::parse("8am").is_err());
        assert!(SendAt::parse("25:00").is_err());
    }
}
