//! One connection to an SFTP inbox: connect with a pinned host key, create
//! the inbox's folders, list complete files and those left in `processing/`.
//! transfer.rs takes a file on from there: claim, download, results, archive.

use std::collections::BTreeSet;
use std::time::Duration;

use russh_sftp::client::error::Error as RawError;
use russh_sftp::client::RawSftpSession;
use russh_sftp::protocol::{FileAttributes, StatusCode};
use tracing::{info, warn};

use super::config::{remote_join, Settle, SftpInbox, SftpUrl};
use super::error::SftpError;
use super::listing::{complete_files, is_ignored, PollState, RemoteFile};
use super::session;

mod transfer;

/// Test hook: a pause between download chunks, so tests can cut the
/// connection mid-download. Unset in production.
const READ_DELAY_ENV: &str = "DIRSYNC_TEST_SFTP_READ_DELAY_MS";

/// A file this dirsync renamed into `processing/`: it is ours until
/// [`SftpClient::finish`] moves it on.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ClaimedFile {
    /// The file's name as submitted.
    pub name: String,
    /// Its remote path under `processing/`.
    pub path: String,
}

/// Where a processed file goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Archived,
    Rejected,
}

/// The remote folders of one inbox.
#[derive(Debug, Clone)]
pub struct RemoteDirs {
    pub inbox: String,
    pub processing: String,
    pub results: String,
    pub archive: String,
    pub rejected: String,
}

impl RemoteDirs {
    /// `name` in the inbox folder is one of the inbox's own folders (also
    /// when something else sits where that folder should be): never input.
    pub fn is_own_folder(&self, name: &str) -> bool {
        let path = remote_join(&self.inbox, name);
        [&self.processing, &self.results, &self.archive, &self.rejected]
            .iter()
            .any(|d| d.trim_end_matches('/') == path)
    }

    pub fn new(cfg: &SftpInbox, url: &SftpUrl) -> RemoteDirs {
        let inbox = url.path.clone();
        RemoteDirs {
            processing: remote_join(&inbox, &cfg.processing_dir),
            results: remote_join(&inbox, &cfg.results_dir),
            archive: remote_join(&inbox, &cfg.archive_dir),
            rejected: remote_join(&inbox, &cfg.rejected_dir),
            inbox,
        }
    }
}

/// A connected, authenticated SFTP session on one inbox.
pub struct SftpClient {
    name: String,
    addr: String,
    settle: Settle,
    dirs: RemoteDirs,
    sftp: RawSftpSession,
    posix_rename: bool,
    fsync: bool,
    read_delay: Option<Duration>,
    max_file_mb: u64,
    host_key: String,
    // Keeps the SSH connection open as long as the SFTP session.
    _ssh: russh::client::Handle<session::PinnedHost>,
}

impl SftpClient {
    /// Connect, check the host key against the pin, log in, start SFTP, and
    /// create the inbox's folders when missing.
    pub async fn connect(cfg: &SftpInbox) -> Result<SftpClient, SftpError> {
        let url = cfg.url().map_err(SftpError::Config)?;
        let s = session::open(cfg, &url).await?;
        let client = SftpClient {
            name: cfg.name.clone(),
            addr: s.addr,
            settle: cfg.settle(),
            max_file_mb: cfg.max_file_mb,
            dirs: RemoteDirs::new(cfg, &url),
            host_key: s.host_key,
            posix_rename: s.posix_rename,
            fsync: s.fsync,
            sftp: s.sftp,
            read_delay: std::env::var(READ_DELAY_ENV)
                .ok()
                .and_then(|v| v.parse().ok())
                .map(Duration::from_millis),
            _ssh: s.ssh,
        };
        client.ensure_dirs().await?;
        Ok(client)
    }

    pub fn dirs(&self) -> &RemoteDirs {
        &self.dirs
    }

    /// The server's host key fingerprint (checked against the pin).
    pub fn host_key_fingerprint(&self) -> &str {
        &self.host_key
    }

    /// Names in the inbox that have a `NAME.done` marker beside them.
    pub async fn markers(&self) -> Result<BTreeSet<String>, SftpError> {
        Ok(self
            .list_dir(&self.dirs.inbox)
            .await?
            .into_iter()
            .filter_map(|(n, _)| n.strip_suffix(".done").map(str::to_string))
            .collect())
    }

    /// `host:port` of the server.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    async fn ensure_dirs(&self) -> Result<(), SftpError> {
        match self.sftp.stat(self.dirs.inbox.as_str()).await {
            Ok(a) if is_dir(&a.attrs) => {}
            Ok(_) => {
                return Err(SftpError::Config(format!(
                    "inbox {}: {} on {} is not a folder; fix the path in `sftp =`",
                    self.name, self.dirs.inbox, self.addr
                )))
            }
            Err(RawError::Status(s)) if s.status_code == StatusCode::NoSuchFile => {
                return Err(SftpError::Config(format!(
                    "inbox {}: the folder {} does not exist on {}; create it or fix the path in `sftp =`",
                    self.name, self.dirs.inbox, self.addr
                )))
            }
            Err(e) => return Err(SftpError::remote("stat", &self.dirs.inbox)(e)),
        }
        for dir in [
            &self.dirs.processing,
            &self.dirs.results,
            &self.dirs.archive,
            &self.dirs.rejected,
        ] {
            self.ensure_dir(dir).await?;
        }
        Ok(())
    }

    /// Create `dir` when missing. A problem with it is logged, not fatal:
    /// the operation that needs it fails later with its own error.
    async fn ensure_dir(&self, dir: &str) -> Result<(), SftpError> {
        match self.sftp.stat(dir).await {
            Ok(a) if is_dir(&a.attrs) => Ok(()),
            Ok(_) => {
                warn!(inbox = %self.name, folder = ?dir, "Remote path is not a folder; files that need it will wait.");
                Ok(())
            }
            Err(RawError::Status(s)) if s.status_code == StatusCode::NoSuchFile => {
                match self.sftp.mkdir(dir, FileAttributes::empty()).await {
                    Ok(_) => {
                        info!(inbox = %self.name, folder = ?dir, "Created remote folder.");
                        Ok(())
                    }
                    Err(RawError::Status(s)) => {
                        warn!(inbox = %self.name, folder = ?dir, error = ?s.status_code, "Cannot create remote folder; files that need it will wait.");
                        Ok(())
                    }
                    Err(e) => Err(SftpError::remote("mkdir", dir)(e)),
                }
            }
            Err(e) => Err(SftpError::remote("stat", dir)(e)),
        }
    }

    /// Regular files in a remote folder, with their attributes.
    async fn list_dir(&self, dir: &str) -> Result<Vec<(String, FileAttributes)>, SftpError> {
        let handle = self
            .sftp
            .opendir(dir)
            .await
            .map_err(SftpError::remote("list", dir))?
            .handle;
        let mut out = Vec::new();
        loop {
            match self.sftp.readdir(handle.as_str()).await {
                Ok(name) => out.extend(
                    name.files
                        .into_iter()
                        .filter(|f| is_regular(&f.attrs))
                        .map(|f| (f.filename, f.attrs)),
                ),
                Err(RawError::Status(s)) if s.status_code == StatusCode::Eof => break,
                Err(e) => {
                    let _ = self.sftp.close(handle.as_str()).await;
                    return Err(SftpError::remote("list", dir)(e));
                }
            }
        }
        let _ = self.sftp.close(handle).await;
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Every file in the inbox folder that is not ignored (hidden, partial,
    /// marker or results files), complete or not.
    pub async fn list(&self) -> Result<Vec<RemoteFile>, SftpError> {
        let all = self.list_dir(&self.dirs.inbox).await?;
        Ok(self.candidates(all))
    }

    /// The entries of a listing that may be inbox files.
    fn candidates(&self, listing: Vec<(String, FileAttributes)>) -> Vec<RemoteFile> {
        listing
            .into_iter()
            .filter(|(n, _)| !is_ignored(n) && !self.dirs.is_own_folder(n))
            .map(|(name, a)| RemoteFile {
                name,
                size: a.size.unwrap_or(0),
                mtime: a.mtime,
            })
            .collect()
    }

    /// The files that are complete now, oldest first: see [`complete_files`].
    pub async fn list_complete(&self, state: &mut PollState) -> Result<Vec<RemoteFile>, SftpError> {
        let all = self.list_dir(&self.dirs.inbox).await?;
        let markers: BTreeSet<String> = all
            .iter()
            .filter_map(|(n, _)| n.strip_suffix(".done").map(str::to_string))
            .collect();
        let files = self.candidates(all);
        Ok(complete_files(self.settle, state, files, &markers))
    }

    /// Files in `processing/`: claimed earlier and not finished (by this
    /// dirsync before a restart or a lost connection). Resume them.
    pub async fn list_processing(&self) -> Result<Vec<ClaimedFile>, SftpError> {
        Ok(self
            .list_dir(&self.dirs.processing)
            .await?
            .into_iter()
            .filter(|(n, _)| !n.starts_with('.'))
            .map(|(name, _)| ClaimedFile {
                path: remote_join(&self.dirs.processing, &name),
                name,
            })
            .collect())
    }

    async fn exists(&self, path: &str) -> Result<bool, SftpError> {
        match self.sftp.stat(path).await {
            Ok(_) => Ok(true),
            Err(RawError::Status(s)) if s.status_code == StatusCode::NoSuchFile => Ok(false),
            Err(e) => Err(SftpError::remote("stat", path)(e)),
        }
    }
}

// File type bits of st_mode; russh-sftp's `is_regular` also matches symlinks.
const S_IFMT: u32 = 0o170000;

fn is_regular(a: &FileAttributes) -> bool {
    a.permissions.is_some_and(|m| m & S_IFMT == 0o100000)
}

fn is_dir(a: &FileAttributes) -> bool {
    a.permissions.is_some_and(|m| m & S_IFMT == 0o040000)
}
