//! Opening an SSH connection with a pinned host key, logging in, and
//! starting SFTP.

use std::sync::Arc;
use std::time::Duration;

use russh::client;
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg, PublicKey};
use russh_sftp::client::RawSftpSession;

use super::config::{Auth, HostKeyPin, SftpInbox, SftpUrl};
use super::error::SftpError;
use super::hostkey::check_host_key;
use crate::core::Secret;
use crate::secrets::read_secret;

/// Checks the server's host key against the pin during the handshake.
pub(super) struct PinnedHost {
    pin: HostKeyPin,
    host: String,
    port: u16,
    /// The accepted key's fingerprint, for `dirsync inbox test`.
    accepted: Arc<std::sync::Mutex<Option<String>>>,
}

impl client::Handler for PinnedHost {
    type Error = SftpError;

    async fn check_server_key(&mut self, key: &PublicKey) -> Result<bool, SftpError> {
        check_host_key(&self.pin, &self.host, self.port, key)?;
        if let Ok(mut a) = self.accepted.lock() {
            *a = Some(super::hostkey::fingerprint(key));
        }
        Ok(true)
    }
}

/// Credentials read from their files. Never logged: no `Debug`.
enum Credentials {
    Key(Arc<PrivateKey>),
    Password(Secret),
}

fn load_credentials(auth: &Auth) -> Result<Credentials, SftpError> {
    match auth {
        Auth::Key {
            key_file,
            passphrase_file,
        } => {
            let passphrase =
                read_secret(passphrase_file.as_deref(), None, "passphrase_file").map_err(SftpError::Config)?;
            let key = russh::keys::load_secret_key(key_file, passphrase.as_ref().map(Secret::expose)).map_err(|e| {
                let hint = if passphrase.is_none() {
                    "; if the key is encrypted, name its passphrase in passphrase_file"
                } else {
                    "; check the passphrase in passphrase_file"
                };
                SftpError::Config(format!(
                    "key_file {}: cannot load the private key: {e}{hint}",
                    key_file.display()
                ))
            })?;
            Ok(Credentials::Key(Arc::new(key)))
        }
        Auth::Password { password_file } => {
            match read_secret(Some(password_file), None, "password_file").map_err(SftpError::Config)? {
                Some(p) => Ok(Credentials::Password(p)),
                None => Err(SftpError::Config("password_file: empty".into())),
            }
        }
    }
}

async fn within<T, E>(
    t: Duration,
    what: impl FnOnce() -> String,
    fut: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, SftpError>
where
    SftpError: From<E>,
{
    match tokio::time::timeout(t, fut).await {
        Ok(r) => r.map_err(SftpError::from),
        Err(_) => Err(SftpError::Timeout {
            what: what(),
            secs: t.as_secs(),
        }),
    }
}

/// An authenticated connection with SFTP started on it.
pub(super) struct Session {
    pub addr: String,
    pub sftp: RawSftpSession,
    pub posix_rename: bool,
    pub fsync: bool,
    /// The accepted host key's fingerprint.
    pub host_key: String,
    /// Keeps the SSH connection open as long as the SFTP session.
    pub ssh: client::Handle<PinnedHost>,
}

/// Connect, check the host key against the pin, log in, start SFTP.
pub(super) async fn open(cfg: &SftpInbox, url: &SftpUrl) -> Result<Session, SftpError> {
    let pin = cfg.pin().map_err(SftpError::Config)?;
    let credentials = load_credentials(&cfg.auth().map_err(SftpError::Config)?)?;
    let addr = if url.host.contains(':') {
        format!("[{}]:{}", url.host, url.port)
    } else {
        format!("{}:{}", url.host, url.port)
    };
    let t = cfg.timeout();
    let stream = match tokio::time::timeout(t, tokio::net::TcpStream::connect((url.host.as_str(), url.port))).await {
        Ok(Ok(s)) => s,
        Ok(Err(source)) => return Err(SftpError::Connect { addr, source }),
        Err(_) => {
            return Err(SftpError::Timeout {
                what: format!("connecting to {addr}"),
                secs: t.as_secs(),
            })
        }
    };
    let _ = stream.set_nodelay(true);
    let mut preferred = russh::Preferred::default();
    if let Some(keys) = super::hostkey::preferred_host_key_algorithms(&pin, &url.host, url.port) {
        preferred.key = keys.into();
    }
    let ssh_config = Arc::new(client::Config {
        keepalive_interval: Some(Duration::from_secs(15)),
        keepalive_max: 3,
        inactivity_timeout: None,
        preferred,
        ..Default::default()
    });
    let accepted = Arc::new(std::sync::Mutex::new(None));
    let handler = PinnedHost {
        pin,
        host: url.host.clone(),
        port: url.port,
        accepted: accepted.clone(),
    };
    let with_addr = |e: SftpError| match e {
        SftpError::Ssh { source, .. } => SftpError::Ssh {
            addr: addr.clone(),
            source,
        },
        other => other,
    };
    let mut ssh = within(
        t,
        || format!("SSH handshake with {addr}"),
        client::connect_stream(ssh_config, stream, handler),
    )
    .await
    .map_err(with_addr)?;

    let (method, result) = match credentials {
        Credentials::Key(key) => {
            let hash = if key.algorithm().is_rsa() {
                within(
                    t,
                    || format!("RSA signature negotiation with {addr}"),
                    ssh.best_supported_rsa_hash(),
                )
                .await
                .map_err(with_addr)?
                .flatten()
            } else {
                None
            };
            let key_desc = cfg
                .key_file
                .as_ref()
                .map(|p| format!("the key {}", p.display()))
                .unwrap_or_default();
            let r = within(
                t,
                || format!("logging in to {addr}"),
                ssh.authenticate_publickey(&url.user, PrivateKeyWithHashAlg::new(key, hash)),
            )
            .await
            .map_err(with_addr)?;
            (key_desc, r)
        }
        Credentials::Password(p) => {
            let r = within(
                t,
                || format!("logging in to {addr}"),
                ssh.authenticate_password(&url.user, p.expose()),
            )
            .await
            .map_err(with_addr)?;
            ("a password".to_string(), r)
        }
    };
    if let russh::client::AuthResult::Failure { remaining_methods, .. } = result {
        return Err(SftpError::Auth(format!(
            "{addr} refused user {:?} with {method} (it accepts: {:?}); check that the public key is in that \
             user's authorized_keys on the server (or the password in password_file), and that the user may use SFTP",
            url.user, &*remaining_methods
        )));
    }
    let channel = within(t, || format!("opening a session on {addr}"), ssh.channel_open_session())
        .await
        .map_err(with_addr)?;
    within(
        t,
        || format!("starting SFTP on {addr}"),
        channel.request_subsystem(true, "sftp"),
    )
    .await
    .map_err(with_addr)?;
    let sftp = RawSftpSession::new(channel.into_stream());
    sftp.set_timeout(cfg.timeout_secs);
    let version = sftp.init().await.map_err(SftpError::remote("start SFTP on", &addr))?;
    let has = |ext: &str| version.extensions.contains_key(ext);
    let host_key = accepted.lock().ok().and_then(|a| a.clone()).unwrap_or_default();
    Ok(Session {
        addr,
        posix_rename: has("posix-rename@openssh.com"),
        fsync: has("fsync@openssh.com"),
        sftp,
        host_key,
        ssh,
    })
}
