//! A claimed file's way through the server: claimed by an atomic rename into
//! `processing/`, downloaded, its results uploaded, then moved to `archive/` or
//! `rejected/`.

use russh_sftp::client::error::Error as RawError;
use russh_sftp::protocol::{FileAttributes, OpenFlags, Packet, StatusCode};
use tracing::{debug, info, warn};

use super::super::config::{remote_join, Settle};
use super::super::error::SftpError;
use super::super::listing::{results_name, RemoteFile};
use super::{ClaimedFile, Outcome, SftpClient};

/// Bytes per SFTP read or write request (well under OpenSSH's limits).
const CHUNK: u32 = 32 * 1024;

impl SftpClient {
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
