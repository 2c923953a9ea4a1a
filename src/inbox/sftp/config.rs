//! `[[sftp_inbox]]`: one remote folder on an SFTP server. These doc comments
//! are the user documentation of each key (see `config/example/sftp/`).

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// An SFTP inbox as written in `dirsync.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SftpInbox {
    /// Name in logs and in `dirsync inbox test NAME`.
    pub name: String,
    /// `sftp://user@host[:port]/path`: the folder the HR system writes to.
    /// `/~/path` is relative to the user's home (or the server's start folder).
    pub sftp: String,
    /// Private key (OpenSSH or PEM; ed25519, ECDSA or RSA).
    pub key_file: Option<PathBuf>,
    /// File holding the key's passphrase, when the key is encrypted.
    pub passphrase_file: Option<PathBuf>,
    /// File holding the login password (instead of a key).
    pub password_file: Option<PathBuf>,
    /// A known_hosts file that lists the server's host key (`[host]:port`
    /// for a port other than 22). One of this or `host_key_fingerprint`.
    pub known_hosts: Option<PathBuf>,
    /// The server's host key fingerprint, `SHA256:...` as `ssh-keygen -lf` prints it.
    pub host_key_fingerprint: Option<String>,
    /// Seconds between two looks at the folder. Default 60.
    #[serde(default = "default_poll_interval")]
    pub poll_interval_secs: u64,
    /// Take a file only once a marker `NAME.done` sits beside it. Default
    /// false: a file is complete when its size and modification time are
    /// unchanged across two polls. (Same key as a folder `[[inbox]]`.)
    #[serde(default)]
    pub marker: bool,
    /// Remote folders, relative to the inbox folder unless absolute. They
    /// are created when missing. Results go to `results_dir/STEM.results.csv`.
    #[serde(default = "default_results_dir")]
    pub results_dir: String,
    #[serde(default = "default_processing_dir")]
    pub processing_dir: String,
    #[serde(default = "default_archive_dir")]
    pub archive_dir: String,
    #[serde(default = "default_rejected_dir")]
    pub rejected_dir: String,
    /// The policy (a name under `[policies]`) files of this inbox are run with.
    pub policy: String,
    /// Who submits here: the results go to this address.
    pub submitter: Option<String>,
    /// Seconds to wait for the connection and for each SFTP request. Default 30.
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// Larger files are not downloaded: they go to `rejected/` with results
    /// saying why. In MiB. Default 100.
    #[serde(default = "default_max_file_mb")]
    pub max_file_mb: u64,
    /// Longest wait between reconnection attempts, in seconds. Default 300.
    #[serde(default = "default_max_backoff")]
    pub max_backoff_secs: u64,
}

const fn default_poll_interval() -> u64 {
    60
}
const fn default_timeout() -> u64 {
    30
}
const fn default_max_file_mb() -> u64 {
    100
}
const fn default_max_backoff() -> u64 {
    300
}
fn default_results_dir() -> String {
    "results".into()
}
fn default_processing_dir() -> String {
    "processing".into()
}
fn default_archive_dir() -> String {
    "archive".into()
}
fn default_rejected_dir() -> String {
    "rejected".into()
}

/// When a remote file counts as complete.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Settle {
    /// Size and modification time unchanged across two polls.
    #[default]
    Stable,
    /// A marker file `NAME.done` exists beside `NAME`.
    Marker,
}

/// Where to log in, parsed from `sftp = "sftp://user@host:port/path"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SftpUrl {
    pub user: String,
    pub host: String,
    pub port: u16,
    /// The inbox folder: absolute, or relative to the session's start folder.
    pub path: String,
}

impl fmt::Display for SftpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        write!(f, "sftp://{}@{}:{}/", self.user, host, self.port)?;
        match self.path.strip_prefix('/') {
            Some(abs) => f.write_str(abs),
            None => write!(f, "~/{}", self.path),
        }
    }
}

/// How the server's host key is pinned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostKeyPin {
    Fingerprint(String),
    KnownHosts(PathBuf),
}

/// How to authenticate. Holds paths only: secrets are read at connect time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    Key {
        key_file: PathBuf,
        passphrase_file: Option<PathBuf>,
    },
    Password {
        password_file: PathBuf,
    },
}

impl SftpInbox {
    /// Resolve relative paths against `dir` (the config file's folder) and
    /// check the keys that must go together.
    pub fn resolved(mut self, dir: &Path) -> Result<SftpInbox, String> {
        let res = |p: &mut Option<PathBuf>| {
            if let Some(p) = p {
                *p = crate::paths::resolve(dir, p);
            }
        };
        res(&mut self.key_file);
        res(&mut self.passphrase_file);
        res(&mut self.password_file);
        res(&mut self.known_hosts);
        self.url()?;
        self.auth()?;
        self.pin()?;
        if self.poll_interval_secs == 0 {
            return Err("poll_interval_secs must be at least 1".into());
        }
        if self.max_file_mb == 0 {
            return Err("max_file_mb must be at least 1".into());
        }
        if self.timeout_secs == 0 {
            return Err("timeout_secs must be at least 1".into());
        }
        for (key, v) in [
            ("results_dir", &self.results_dir),
            ("processing_dir", &self.processing_dir),
            ("archive_dir", &self.archive_dir),
            ("rejected_dir", &self.rejected_dir),
        ] {
            if v.trim().is_empty() || v.trim() == "." {
                return Err(format!("{key} must name a folder other than the inbox itself"));
            }
        }
        Ok(self)
    }

    pub fn url(&self) -> Result<SftpUrl, String> {
        parse_sftp_url(&self.sftp)
    }

    pub fn auth(&self) -> Result<Auth, String> {
        match (&self.key_file, &self.password_file) {
            (Some(k), None) => Ok(Auth::Key {
                key_file: k.clone(),
                passphrase_file: self.passphrase_file.clone(),
            }),
            (None, Some(p)) if self.passphrase_file.is_none() => Ok(Auth::Password {
                password_file: p.clone(),
            }),
            (None, Some(_)) => Err("passphrase_file goes with key_file, not with password_file".into()),
            (Some(_), Some(_)) => Err("give key_file or password_file, not both".into()),
            (None, None) => Err("give key_file (an SSH private key) or password_file".into()),
        }
    }

    /// The host key pin. Required: dirsync never trusts an unknown server.
    pub fn pin(&self) -> Result<HostKeyPin, String> {
        match (&self.known_hosts, &self.host_key_fingerprint) {
            (Some(k), None) => Ok(HostKeyPin::KnownHosts(k.clone())),
            (None, Some(f)) => {
                let f = f.trim();
                let b64 = f.strip_prefix("SHA256:").ok_or_else(|| {
                    format!("host_key_fingerprint {f:?} must start with \"SHA256:\" (as `ssh-keygen -lf` prints it)")
                })?;
                if b64.len() != 43 || !b64.chars().all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '/') {
                    return Err(format!(
                        "host_key_fingerprint {f:?} is not a SHA256 fingerprint (\"SHA256:\" and 43 base64 characters); \
                         get it with `ssh-keyscan -p PORT HOST | ssh-keygen -lf -`"
                    ));
                }
                Ok(HostKeyPin::Fingerprint(f.to_string()))
            }
            (Some(_), Some(_)) => Err("give known_hosts or host_key_fingerprint, not both".into()),
            (None, None) => Err(
                "the server's host key must be pinned: set host_key_fingerprint = \"SHA256:...\" \
                 (from `ssh-keyscan -p PORT HOST | ssh-keygen -lf -`) or known_hosts = \"PATH\""
                    .into(),
            ),
        }
    }

    /// When a file counts as complete.
    pub fn settle(&self) -> Settle {
        if self.marker {
            Settle::Marker
        } else {
            Settle::Stable
        }
    }

    pub fn poll_interval(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.poll_interval_secs.max(1))
    }

    pub fn timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.timeout_secs.max(1))
    }
}

fn percent_decode(s: &str, what: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .ok_or_else(|| format!("{what}: incomplete %-escape"))?;
            let b = u8::from_str_radix(hex, 16).map_err(|_| format!("{what}: bad %-escape %{hex}"))?;
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("{what}: %-escapes do not make UTF-8"))
}

/// Parse `sftp://user@host[:port]/path`. `/~/path` (or no path) is relative
/// to the session's start folder.
pub fn parse_sftp_url(s: &str) -> Result<SftpUrl, String> {
    let example = "write it as sftp://user@host:port/path";
    let rest = s
        .strip_prefix("sftp://")
        .ok_or_else(|| format!("sftp = {s:?}: must start with sftp:// ({example})"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let (user, hostport) = authority
        .rsplit_once('@')
        .ok_or_else(|| format!("sftp = {s:?}: no user ({example})"))?;
    let user = percent_decode(user, "sftp user")?;
    if user.is_empty() || user.contains(':') {
        return Err(format!(
            "sftp = {s:?}: the user must be given and the URL must not hold a password (use password_file)"
        ));
    }
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (h, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("sftp = {s:?}: unclosed [ in the host"))?;
        (h.to_string(), after.strip_prefix(':'))
    } else {
        match hostport.split_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (hostport.to_string(), None),
        }
    };
    if host.is_empty() {
        return Err(format!("sftp = {s:?}: no host ({example})"));
    }
    let port = match port {
        None | Some("") => 22,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| format!("sftp = {s:?}: port {p:?} is not a number from 1 to 65535"))?,
    };
    let path = percent_decode(path, "sftp path")?;
    let path = match path.as_str() {
        "" | "/" | "/~" | "/~/" => {
            if path == "/" {
                "/".to_string()
            } else {
                ".".to_string()
            }
        }
        p => match p.strip_prefix("/~/") {
            Some(rel) => rel.trim_end_matches('/').to_string(),
            None => p.trim_end_matches('/').to_string(),
        },
    };
    Ok(SftpUrl { user, host, port, path })
}

/// Join a remote folder and a name with `/`, unless `name` is absolute.
pub fn remote_join(dir: &str, name: &str) -> String {
    if name.starts_with('/') || dir == "." {
        name.to_string()
    } else if dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        let u = parse_sftp_url("sftp://hr@files.example.org:2222/outbound/hr").unwrap(); // ok: test
        assert_eq!(
            u,
            SftpUrl {
                user: "hr".into(),
                host: "files.example.org".into(),
                port: 2222,
                path: "/outbound/hr".into()
            }
        );
        assert_eq!(u.to_string(), "sftp://hr@files.example.org:2222/outbound/hr");
        let u = parse_sftp_url("sftp://a%40b@[::1]/~/in/").unwrap(); // ok: test
        assert_eq!(
            (u.user.as_str(), u.host.as_str(), u.port, u.path.as_str()),
            ("a@b", "::1", 22, "in")
        );
        assert_eq!(parse_sftp_url("sftp://u@h").unwrap().path, "."); // ok: test
        assert!(parse_sftp_url("ftp://u@h/x").is_err());
        assert!(parse_sftp_url("sftp://h/x").is_err());
        assert!(parse_sftp_url("sftp://u:pw@h/x").is_err());
        assert!(parse_sftp_url("sftp://u@h:99999/x").is_err());
    }

    #[test]
    fn joins_remote_paths() {
        assert_eq!(remote_join("/in", "processing"), "/in/processing");
        assert_eq!(remote_join(".", "processing"), "processing");
        assert_eq!(remote_join("/in", "/srv/done"), "/srv/done");
    }

    fn inbox(extra: &str) -> Result<SftpInbox, String> {
        let text = format!("name = \"x\"\nsftp = \"sftp://u@h/in\"\npolicy = \"staff\"\n{extra}");
        let raw: SftpInbox = toml::from_str(&text).map_err(|e| e.to_string())?;
        raw.resolved(Path::new("/etc/dirsync"))
    }

    #[test]
    fn host_key_pin_is_required() {
        let e = inbox("key_file = \"k\"").unwrap_err();
        assert!(e.contains("must be pinned"), "{e}");
        let e = inbox("key_file = \"k\"\nhost_key_fingerprint = \"MD5:aa\"").unwrap_err();
        assert!(e.contains("SHA256:"), "{e}");
        let ok = inbox("key_file = \"k\"\nknown_hosts = \"kh\"").unwrap(); // ok: test
        assert_eq!(
            ok.pin().unwrap(), // ok: test
            HostKeyPin::KnownHosts(PathBuf::from("/etc/dirsync/kh"))
        );
        assert!(inbox("key_file = \"k\"\nknown_hosts = \"kh\"\nbogus = 1").is_err());
    }

    #[test]
    fn auth_needs_exactly_one_method() {
        let pin = "\nknown_hosts = \"kh\"";
        assert!(inbox(pin).is_err());
        assert!(inbox(&format!("key_file = \"k\"\npassword_file = \"p\"{pin}")).is_err());
        assert!(inbox(&format!("password_file = \"p\"\npassphrase_file = \"q\"{pin}")).is_err());
        assert!(matches!(
            inbox(&format!("password_file = \"p\"{pin}")).unwrap().auth().unwrap(), // ok: test
            Auth::Password { .. }
        ));
    }
}
