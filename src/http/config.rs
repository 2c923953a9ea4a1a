//! `[http]` in dirsync.toml: where `dirsync serve` answers health checks and
//! metrics. Off unless configured.

use std::net::SocketAddr;

use serde::Deserialize;

/// `[http]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// `IP:PORT` to listen on. Loopback only (127.0.0.1 or ::1): the status
    /// endpoints need no login, and the console's login and TLS are not
    /// built yet. Default `127.0.0.1:8080`.
    #[serde(default = "default_listen")]
    pub listen: String,
}

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}

impl HttpConfig {
    /// The address to listen on, or why it is refused.
    pub fn addr(&self) -> Result<SocketAddr, String> {
        let addr: SocketAddr = self.listen.parse().map_err(|_| {
            format!(
                "[http] listen = {:?} is not IP:PORT (e.g. \"127.0.0.1:8080\")",
                self.listen
            )
        })?;
        if !addr.ip().is_loopback() {
            return Err(format!(
                "[http] listen = {:?}: only a loopback address (127.0.0.1 or ::1) is allowed; \
                 to reach the status endpoints from elsewhere, put a reverse proxy with TLS in front",
                self.listen
            ));
        }
        Ok(addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_addresses_are_accepted() {
        let c = |l: &str| HttpConfig { listen: l.into() };
        assert!(c("127.0.0.1:8080").addr().is_ok());
        assert!(c("[::1]:9000").addr().is_ok());
        let e = c("0.0.0.0:8080").addr().unwrap_err();
        assert!(e.contains("only a loopback address"), "{e}");
        let e = c("localhost").addr().unwrap_err();
        assert!(e.contains("is not IP:PORT"), "{e}");
    }
}
