//! What can go wrong talking to an SFTP inbox, each with advice an operator
//! can act on.

use russh_sftp::protocol::StatusCode;

/// An SFTP inbox error. `Display` says what happened and what to do.
#[derive(Debug, thiserror::Error)]
pub enum SftpError {
    /// The inbox's configuration or a file it names (key, passphrase,
    /// known_hosts) is wrong. Nothing will work until an operator fixes it.
    #[error("{0}")]
    Config(String),
    /// The server's host key is not the pinned one. Never retried blindly.
    #[error("{0}")]
    HostKey(String),
    /// TCP connection failed (refused, unreachable, name not found).
    #[error("cannot connect to {addr}: {source}; check the host and port in `sftp =` and that the SFTP server is running (retrying with backoff)")]
    Connect { addr: String, source: std::io::Error },
    /// No answer in time.
    #[error("{what}: no answer within {secs} s; check the network and firewalls between dirsync and the server (retrying with backoff)")]
    Timeout { what: String, secs: u64 },
    /// The server refused the credentials.
    #[error("{0}")]
    Auth(String),
    /// The SSH connection failed or dropped.
    #[error("SSH connection to {addr}: {source}; it will be re-established, and a file being processed is resumed")]
    Ssh { addr: String, source: russh::Error },
    /// The file is larger than the inbox's `max_file_mb`.
    #[error("{path} is {size} bytes, more than max_file_mb = {limit_mb} MiB allows; it is rejected without being read: split the file or raise max_file_mb")]
    TooLarge { path: String, size: u64, limit_mb: u64 },
    /// The run could not take the file now (target down, ...).
    #[error("run: {0}")]
    Run(String),
    /// An SFTP request failed.
    #[error("{op} {path}: {source}{}", remote_advice(source))]
    Remote {
        op: &'static str,
        path: String,
        source: russh_sftp::client::error::Error,
    },
}

fn remote_advice(e: &russh_sftp::client::error::Error) -> &'static str {
    match e {
        russh_sftp::client::error::Error::Status(s) => match s.status_code {
            StatusCode::NoSuchFile => " (check that the folder exists on the server and is a folder)",
            StatusCode::PermissionDenied => " (the SFTP user may not do this there: fix the folder's permissions)",
            StatusCode::Failure => " (the server refused; check the folder's permissions and free space)",
            _ => "",
        },
        russh_sftp::client::error::Error::Timeout => " (no answer in time; the connection is re-established)",
        _ => " (the connection is re-established)",
    }
}

impl From<russh::Error> for SftpError {
    fn from(source: russh::Error) -> Self {
        SftpError::Ssh {
            addr: "the server".into(),
            source,
        }
    }
}

impl SftpError {
    pub(crate) fn remote(op: &'static str, path: &str) -> impl FnOnce(russh_sftp::client::error::Error) -> SftpError {
        let path = path.to_string();
        move |source| SftpError::Remote { op, path, source }
    }

    /// The connection is gone or unusable: drop it and reconnect with
    /// backoff. Otherwise the error concerns one file or folder and the
    /// connection can go on.
    pub fn is_connection(&self) -> bool {
        match self {
            SftpError::Connect { .. } | SftpError::Timeout { .. } | SftpError::Ssh { .. } => true,
            SftpError::Config(_) | SftpError::HostKey(_) | SftpError::Auth(_) => true,
            SftpError::Run(_) | SftpError::TooLarge { .. } => false,
            SftpError::Remote { source, .. } => !matches!(source, russh_sftp::client::error::Error::Status(_)),
        }
    }

    /// An operator must act (configuration, host key, credentials): retrying
    /// soon will not help, so the poll loop waits its longest backoff.
    pub fn needs_operator(&self) -> bool {
        matches!(self, SftpError::Config(_) | SftpError::HostKey(_) | SftpError::Auth(_))
    }

    /// The remote path does not exist (SSH_FX_NO_SUCH_FILE).
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(StatusCode::NoSuchFile)
    }

    /// The remote path a request failed on.
    pub fn path(&self) -> Option<&str> {
        match self {
            SftpError::Remote { path, .. } | SftpError::TooLarge { path, .. } => Some(path),
            _ => None,
        }
    }

    pub fn status(&self) -> Option<StatusCode> {
        match self {
            SftpError::Remote {
                source: russh_sftp::client::error::Error::Status(s),
                ..
            } => Some(s.status_code),
            _ => None,
        }
    }
}
