//! `[http]` in dirsync.toml: where `dirsync serve` answers its web console,
//! health checks and metrics. Off unless configured.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// `[http]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// `IP:PORT` to listen on. Default `127.0.0.1:8080`. An address other
    /// than loopback needs `tls_cert` + `tls_key`, or `trusted_proxy`.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// The console's users and script tokens (`dirsync http add-user`,
    /// `dirsync http add-token`). Relative to the config file's folder.
    /// Without it the console has no users: only `/healthz`, `/readyz` and
    /// `/metrics` answer (and `trusted_proxy` logins).
    #[serde(default)]
    pub users_file: Option<PathBuf>,
    /// PEM certificate chain and private key: the console speaks HTTPS only.
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
    /// A reverse proxy that logs people in and says who they are.
    #[serde(default)]
    pub trusted_proxy: Option<TrustedProxy>,
    /// The largest upload accepted, in MB. Default 50.
    #[serde(default = "default_max_upload_mb")]
    pub max_upload_mb: u64,
    /// How long a console login lasts, in hours. Default 12.
    #[serde(default = "default_session_hours")]
    pub session_hours: u64,
    /// The console's address as users reach it (behind a proxy, say):
    /// activation links are `{public_url}/activate/TOKEN`. Default: the
    /// `listen` address, `https://` with TLS.
    #[serde(default)]
    pub public_url: Option<String>,
}

/// `[http] trusted_proxy`: requests from `from` carry the user's name and
/// role in headers; requests from anywhere else are refused.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustedProxy {
    /// The proxy's addresses.
    pub from: Vec<IpAddr>,
    /// The header with the user's name (e.g. `X-Remote-User`).
    pub user_header: String,
    /// The header with the role, `viewer` or `operator` (e.g. `X-Remote-Role`).
    pub role_header: String,
}

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}

fn default_max_upload_mb() -> u64 {
    50
}

fn default_session_hours() -> u64 {
    12
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: default_listen(),
            users_file: None,
            tls_cert: None,
            tls_key: None,
            trusted_proxy: None,
            max_upload_mb: default_max_upload_mb(),
            session_hours: default_session_hours(),
            public_url: None,
        }
    }
}

impl HttpConfig {
    /// Paths relative to the config file's folder made absolute.
    pub fn resolved(mut self, dir: &Path) -> HttpConfig {
        let abs = |p: PathBuf| if p.is_relative() { dir.join(p) } else { p };
        self.users_file = self.users_file.map(abs);
        self.tls_cert = self.tls_cert.map(abs);
        self.tls_key = self.tls_key.map(abs);
        self
    }

    /// The base of links to the console: `public_url`, or the `listen` address.
    pub fn public_base_url(&self) -> String {
        match &self.public_url {
            Some(u) => u.trim_end_matches('/').to_string(),
            None => {
                let scheme = if self.tls().is_some() { "https" } else { "http" };
                format!("{scheme}://{}", self.listen)
            }
        }
    }

    /// The largest upload in bytes.
    pub fn max_upload_bytes(&self) -> u64 {
        self.max_upload_mb.saturating_mul(1024 * 1024)
    }

    /// TLS is on.
    pub fn tls(&self) -> Option<(&Path, &Path)> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(c), Some(k)) => Some((c, k)),
            _ => None,
        }
    }

    /// The address to listen on, or why the section is refused.
    pub fn addr(&self) -> Result<SocketAddr, String> {
        let addr: SocketAddr = self.listen.parse().map_err(|_| {
            format!(
                "[http] listen = {:?} is not IP:PORT (e.g. \"127.0.0.1:8080\")",
                self.listen
            )
        })?;
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err("[http] tls_cert and tls_key go together: set both, or neither".into());
        }
        if !addr.ip().is_loopback() && self.tls().is_none() && self.trusted_proxy.is_none() {
            return Err(format!(
                "[http] listen = {:?}: an address other than loopback (127.0.0.1 or ::1) needs \
                 tls_cert and tls_key, or a trusted_proxy in front (logins and cookies must not cross the network in clear)",
                self.listen
            ));
        }
        if let Some(p) = &self.trusted_proxy {
            if p.from.is_empty() {
                return Err("[http] trusted_proxy.from is empty: list the proxy's addresses".into());
            }
            for (key, h) in [("user_header", &p.user_header), ("role_header", &p.role_header)] {
                if axum::http::HeaderName::from_bytes(h.as_bytes()).is_err() {
                    return Err(format!("[http] trusted_proxy.{key} = {h:?} is not a header name"));
                }
            }
        }
        if self.max_upload_mb == 0 {
            return Err("[http] max_upload_mb must be at least 1".into());
        }
        if let Some(u) = &self.public_url {
            if !(u.starts_with("https://") || u.starts_with("http://")) {
                return Err(format!(
                    "[http] public_url = {u:?}: give the console's address as users reach it, \
                     e.g. \"https://dirsync.example.org\""
                ));
            }
        }
        if self.session_hours == 0 {
            return Err("[http] session_hours must be at least 1".into());
        }
        Ok(addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(l: &str) -> HttpConfig {
        HttpConfig {
            listen: l.into(),
            ..HttpConfig::default()
        }
    }

    #[test]
    fn only_loopback_addresses_are_accepted_without_tls_or_proxy() {
        assert!(c("127.0.0.1:8080").addr().is_ok());
        assert!(c("[::1]:9000").addr().is_ok());
        let e = c("0.0.0.0:8080").addr().unwrap_err(); // ok: test
        assert!(e.contains("needs tls_cert and tls_key"), "{e}");
        let e = c("localhost").addr().unwrap_err(); // ok: test
        assert!(e.contains("is not IP:PORT"), "{e}");
    }

    #[test]
    fn tls_or_a_trusted_proxy_opens_other_addresses() {
        let mut tls = c("0.0.0.0:8443");
        tls.tls_cert = Some("c.pem".into());
        assert!(tls.addr().unwrap_err().contains("go together")); // ok: test
        tls.tls_key = Some("k.pem".into());
        assert!(tls.addr().is_ok());
        let mut proxied = c("10.0.0.5:8080");
        proxied.trusted_proxy = Some(TrustedProxy {
            from: vec!["10.0.0.1".parse().unwrap()], // ok: test
            user_header: "X-Remote-User".into(),
            role_header: "X Role".into(),
        });
        assert!(proxied.addr().unwrap_err().contains("not a header name")); // ok: test
    }
}
