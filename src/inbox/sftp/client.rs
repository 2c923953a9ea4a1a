//! One connection to an SFTP inbox: connect with a pinned host key, list
//! complete files, claim one by renaming it into `processing/`, download it,
//! upload its results, and move it to `archive/` or `rejected/`.

use std::collections::BTreeSet;
use std::time::Duration;

use russh_sftp::client::error::Error as RawError;
use russh_sftp::client::RawSftpSession;
use russh_sftp::protocol::{FileAttributes, OpenFlags, Packet, StatusCode};
use tracing::{debug, info, warn};

use super::config::{remote_join, Settle, SftpInbox, SftpUrl};
use super::error::SftpError;
use super::listing::{complete_files, is_ignored, results_name, PollState, RemoteFile};
use super::session;

/// Bytes per SFTP read or write request (well under OpenSSH's limits).
const CHUNK: u32 = 32 * 1024;
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

    /// Take a file by renaming it into `processing/` on the server. The
    /// rename is atomic, so of two dirsyncs (or a re-run) only one gets it:
    /// `None` when it is gone or another file of that name is still there.
    pub async fn claim(&self, file: &RemoteFile) -> Result<Option<ClaimedFile>, SftpError> {
        let from = remote_join(&self.dirs.inbox, &file.name);
        let to = remote_join(&self.dirs.processing, &file.name);
        // OpenSSH refuses to rename onto an existing file; other servers
        // may overwrite, so look first.
        if self.exists(&to).await? {
            warn!(inbox = %self.name, file = ?file.name, folder = ?self.dirs.processing,
                "A file of the same name is still being processed; this one waits until it is finished.");
            return Ok(None);
        }
        match self.sftp.rename(from.as_str(), to.as_str()).await {
            Ok(_) => {}
            Err(RawError::Status(s)) if s.status_code == StatusCode::NoSuchFile => {
                info!(inbox = %self.name, file = ?file.name, "File is gone: taken by another dirsync or removed.");
                return Ok(None);
            }
            Err(RawError::Status(s)) => {
                if self.exists(&to).await? {
                    warn!(inbox = %self.name, file = ?file.name, folder = ?self.dirs.processing,
                        "A file of the same name is still being processed; this one waits until it is finished.");
                    return Ok(None);
                }
                return Err(SftpError::remote("claim (rename into processing/)", &from)(
                    RawError::Status(s),
                ));
            }
            Err(e) => return Err(SftpError::remote("claim (rename into processing/)", &from)(e)),
        }
        if self.settle == Settle::Marker {
            // The marker has done its job; left behind it would mark the
            // next upload of the same name complete before it is.
            let marker = remote_join(&self.dirs.inbox, &format!("{}.done", file.name));
            if let Err(e) = self.sftp.remove(marker.as_str()).await {
                warn!(inbox = %self.name, marker = ?marker, error = ?e.to_string(), "Cannot remove the marker file; remove it by hand.");
            }
        }
        info!(inbox = %self.name, file = ?file.name, size = file.size, "File claimed.");
        Ok(Some(ClaimedFile {
            name: file.name.clone(),
            path: to,
        }))
    }

    async fn exists(&self, path: &str) -> Result<bool, SftpError> {
        match self.sftp.stat(path).await {
            Ok(_) => Ok(true),
            Err(RawError::Status(s)) if s.status_code == StatusCode::NoSuchFile => Ok(false),
            Err(e) => Err(SftpError::remote("stat", path)(e)),
        }
    }

    /// The claimed file's bytes.
    pub async fn download(&self, file: &ClaimedFile) -> Result<Vec<u8>, SftpError> {
        let err = SftpError::remote;
        let handle = self
            .sftp
            .open(file.path.as_str(), OpenFlags::READ, FileAttributes::empty())
            .await
            .map_err(err("open", &file.path))?
            .handle;
        let size = match self.sftp.fstat(handle.as_str()).await {
            Ok(a) => a.attrs.size.unwrap_or(0),
            Err(e) => {
                let _ = self.sftp.close(handle.as_str()).await;
                return Err(err("stat", &file.path)(e));
            }
        };
        if size > self.max_file_mb.saturating_mul(1024 * 1024) {
            let _ = self.sftp.close(handle.as_str()).await;
            return Err(SftpError::TooLarge {
                path: file.path.clone(),
                size,
                limit_mb: self.max_file_mb,
            });
        }
        let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        loop {
            match self.sftp.read(handle.as_str(), bytes.len() as u64, CHUNK).await {
                Ok(data) if data.data.is_empty() => break,
                Ok(data) => bytes.extend_from_slice(&data.data),
                Err(RawError::Status(s)) if s.status_code == StatusCode::Eof => break,
                Err(e) => {
                    let _ = self.sftp.close(handle.as_str()).await;
                    return Err(err("download", &file.path)(e));
                }
            }
            if let Some(d) = self.read_delay {
                tokio::time::sleep(d).await;
            }
        }
        let _ = self.sftp.close(handle).await;
        debug!(inbox = %self.name, file = ?file.name, bytes = bytes.len(), "Downloaded.");
        Ok(bytes)
    }

    /// Upload the results as `results/STEM.results.csv`: written to a
    /// hidden temporary name, then renamed over any earlier one, so a reader
    /// never sees a partial file. Returns the remote path.
    pub async fn upload_results(&self, file: &ClaimedFile, results: &[u8]) -> Result<String, SftpError> {
        let name = results_name(&file.name);
        let target = remote_join(&self.dirs.results, &name);
        let tmp = remote_join(&self.dirs.results, &format!(".{name}.part"));
        let err = SftpError::remote;
        let handle = self
            .sftp
            .open(
                tmp.as_str(),
                OpenFlags::CREATE | OpenFlags::TRUNCATE | OpenFlags::WRITE,
                FileAttributes::empty(),
            )
            .await
            .map_err(err("upload results to", &tmp))?
            .handle;
        let mut offset = 0usize;
        let write = async {
            for chunk in results.chunks(CHUNK as usize) {
                self.sftp.write(handle.as_str(), offset as u64, chunk.to_vec()).await?;
                offset += chunk.len();
            }
            if self.fsync {
                let mut data = Vec::new();
                put_string(&mut data, &handle);
                expect_ok(self.sftp.extended("fsync@openssh.com", data).await?)?;
            }
            Ok::<(), RawError>(())
        }
        .await;
        let closed = self.sftp.close(handle.as_str()).await;
        write.map_err(err("upload results to", &tmp))?;
        closed.map_err(err("upload results to", &tmp))?;
        self.rename_over(&tmp, &target).await?;
        info!(inbox = %self.name, file = ?file.name, results = ?target, "Results uploaded.");
        Ok(target)
    }

    /// Rename replacing the target (posix-rename@openssh.com when offered;
    /// plain SFTP rename refuses to overwrite).
    async fn rename_over(&self, from: &str, to: &str) -> Result<(), SftpError> {
        let err = SftpError::remote("rename", from);
        if self.posix_rename {
            let mut data = Vec::new();
            put_string(&mut data, from);
            put_string(&mut data, to);
            return self
                .sftp
                .extended("posix-rename@openssh.com", data)
                .await
                .and_then(expect_ok)
                .map_err(err);
        }
        if self.exists(to).await? {
            self.sftp.remove(to).await.map_err(SftpError::remote("replace", to))?;
        }
        self.sftp.rename(from, to).await.map(|_| ()).map_err(err)
    }

    /// Move the claimed file to `archive/YYYY-MM-DD/` or
    /// `rejected/YYYY-MM-DD/` (UTC), never overwriting an earlier file of
    /// the same name (`NAME-2.csv`, ...). Returns the new remote path.
    pub async fn finish(&self, file: &ClaimedFile, outcome: Outcome) -> Result<String, SftpError> {
        let base = match outcome {
            Outcome::Archived => &self.dirs.archive,
            Outcome::Rejected => &self.dirs.rejected,
        };
        let today = time::OffsetDateTime::now_utc().date();
        let day = format!("{:04}-{:02}-{:02}", today.year(), u8::from(today.month()), today.day());
        let dir = remote_join(base, &day);
        self.ensure_dir(&dir).await?;
        let (stem, ext) = match file.name.rsplit_once('.') {
            Some((s, e)) if !s.is_empty() => (s.to_string(), format!(".{e}")),
            _ => (file.name.clone(), String::new()),
        };
        for n in 1..=1000u32 {
            let name = if n == 1 {
                file.name.clone()
            } else {
                format!("{stem}-{n}{ext}")
            };
            let to = remote_join(&dir, &name);
            if self.exists(&to).await? {
                continue;
            }
            match self.sftp.rename(file.path.as_str(), to.as_str()).await {
                Ok(_) => {
                    info!(inbox = %self.name, file = ?file.name, to = ?to, "File moved.");
                    return Ok(to);
                }
                Err(RawError::Status(s)) if s.status_code == StatusCode::Failure && self.exists(&to).await? => continue,
                Err(e) => return Err(SftpError::remote("move", &file.path)(e)),
            }
        }
        Err(SftpError::Config(format!(
            "{dir} holds 1000 files named like {}; clean it up",
            file.name
        )))
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

/// An SSH wire string: length, then bytes.
fn put_string(buf: &mut Vec<u8>, s: &str) {
    buf.extend_from_slice(&(s.len() as u32).to_be_bytes());
    buf.extend_from_slice(s.as_bytes());
}

fn expect_ok(p: Packet) -> Result<(), RawError> {
    match p {
        Packet::Status(s) if s.status_code == StatusCode::Ok => Ok(()),
        Packet::Status(s) => Err(RawError::Status(s)),
        _ => Err(RawError::UnexpectedPacket),
    }
}
