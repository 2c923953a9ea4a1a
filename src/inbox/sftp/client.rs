//! One connection to an SFTP inbox: connect with a pinned host key, list
//! complete files, claim one by renaming it into `processing/`, download it,
//! upload its results, and move it to `archive/` or `rejected/`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use russh::client;
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg, PublicKey};
use russh_sftp::client::error::Error as RawError;
use russh_sftp::client::RawSftpSession;
use russh_sftp::protocol::{FileAttributes, OpenFlags, Packet, StatusCode};
use tracing::{debug, info, warn};

use super::config::{remote_join, Auth, HostKeyPin, Settle, SftpInbox, SftpUrl};
use super::error::SftpError;
use super::hostkey::check_host_key;
use crate::config::read_secret;
use crate::core::Secret;

/// Bytes per SFTP read or write request (well under OpenSSH's limits).
const CHUNK: u32 = 32 * 1024;
/// Test hook: a pause between download chunks, so tests can cut the
/// connection mid-download. Unset in production.
const READ_DELAY_ENV: &str = "DIRSYNC_TEST_SFTP_READ_DELAY_MS";

/// A file in the inbox folder, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteFile {
    pub name: String,
    pub size: u64,
    pub mtime: Option<u32>,
}

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

/// What the inbox folder looked like at the previous poll, to tell files
/// still being written from complete ones.
#[derive(Debug, Default, Clone)]
pub struct PollState {
    seen: BTreeMap<String, (u64, Option<u32>)>,
}

impl PollState {
    /// Files seen at the last poll.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.seen.keys().map(String::as_str)
    }

    /// Forget a file (claimed: it left the folder).
    pub fn forget(&mut self, name: &str) {
        self.seen.remove(name);
    }
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

/// `staff.csv` → `staff.results.csv` (as `dirsync apply` names it).
pub fn results_name(name: &str) -> String {
    let stem = match name.rsplit_once('.') {
        Some((stem, _)) if !stem.is_empty() => stem,
        _ => name,
    };
    format!("{stem}.results.csv")
}

/// Names never taken: hidden, partial and editor files, markers, results.
pub fn is_ignored(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    name.starts_with('.')
        || name.starts_with("~$")
        || name.ends_with('~')
        || [".part", ".tmp", ".filepart", ".swp", ".done"]
            .iter()
            .any(|s| lower.ends_with(s))
        || lower.ends_with(".results.csv")
}

/// Decide which listed files are complete, and remember this listing for
/// the next poll. `markers` are the names that have a `NAME.done` beside them.
pub fn complete_files(
    settle: Settle,
    state: &mut PollState,
    files: Vec<RemoteFile>,
    markers: &BTreeSet<String>,
) -> Vec<RemoteFile> {
    let previous = std::mem::take(&mut state.seen);
    let mut complete = Vec::new();
    for f in files {
        let now = (f.size, f.mtime);
        let done = match settle {
            Settle::Stable => previous.get(&f.name) == Some(&now),
            Settle::Marker => markers.contains(&f.name),
        };
        state.seen.insert(f.name.clone(), now);
        if done {
            complete.push(f);
        } else {
            debug!(file = %f.name, size = f.size, "Not complete yet.");
        }
    }
    complete.sort_by(|a, b| (a.mtime, &a.name).cmp(&(b.mtime, &b.name)));
    complete
}

/// Checks the server's host key against the pin during the handshake.
struct PinnedHost {
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
    host_key: String,
    // Keeps the SSH connection open as long as the SFTP session.
    _ssh: client::Handle<PinnedHost>,
}

impl SftpClient {
    /// Connect, check the host key against the pin, log in, start SFTP, and
    /// create the inbox's folders when missing.
    pub async fn connect(cfg: &SftpInbox) -> Result<SftpClient, SftpError> {
        let url = cfg.url().map_err(SftpError::Config)?;
        let pin = cfg.pin().map_err(SftpError::Config)?;
        let credentials = load_credentials(&cfg.auth().map_err(SftpError::Config)?)?;
        let addr = if url.host.contains(':') {
            format!("[{}]:{}", url.host, url.port)
        } else {
            format!("{}:{}", url.host, url.port)
        };
        let t = cfg.timeout();
        let stream = match tokio::time::timeout(t, tokio::net::TcpStream::connect((url.host.as_str(), url.port))).await
        {
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
        let ssh_config = Arc::new(client::Config {
            keepalive_interval: Some(Duration::from_secs(15)),
            keepalive_max: 3,
            inactivity_timeout: None,
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
        let client = SftpClient {
            name: cfg.name.clone(),
            addr,
            settle: cfg.settle,
            dirs: RemoteDirs::new(cfg, &url),
            host_key: accepted.lock().ok().and_then(|a| a.clone()).unwrap_or_default(),
            posix_rename: has("posix-rename@openssh.com"),
            fsync: has("fsync@openssh.com"),
            sftp,
            read_delay: std::env::var(READ_DELAY_ENV)
                .ok()
                .and_then(|v| v.parse().ok())
                .map(Duration::from_millis),
            _ssh: ssh,
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
                warn!(inbox = %self.name, folder = %dir, "Remote path is not a folder; files that need it will wait.");
                Ok(())
            }
            Err(RawError::Status(s)) if s.status_code == StatusCode::NoSuchFile => {
                match self.sftp.mkdir(dir, FileAttributes::empty()).await {
                    Ok(_) => {
                        info!(inbox = %self.name, folder = %dir, "Created remote folder.");
                        Ok(())
                    }
                    Err(RawError::Status(s)) => {
                        warn!(inbox = %self.name, folder = %dir, error = %s.status_code, "Cannot create remote folder; files that need it will wait.");
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
        Ok(self
            .list_dir(&self.dirs.inbox)
            .await?
            .into_iter()
            .filter(|(n, _)| !is_ignored(n) && !self.dirs.is_own_folder(n))
            .map(|(name, a)| RemoteFile {
                name,
                size: a.size.unwrap_or(0),
                mtime: a.mtime,
            })
            .collect())
    }

    /// The files that are complete now, oldest first: see [`complete_files`].
    pub async fn list_complete(&self, state: &mut PollState) -> Result<Vec<RemoteFile>, SftpError> {
        let all = self.list_dir(&self.dirs.inbox).await?;
        let markers: BTreeSet<String> = all
            .iter()
            .filter_map(|(n, _)| n.strip_suffix(".done").map(str::to_string))
            .collect();
        let files = all
            .into_iter()
            .filter(|(n, _)| !is_ignored(n) && !self.dirs.is_own_folder(n))
            .map(|(name, a)| RemoteFile {
                name,
                size: a.size.unwrap_or(0),
                mtime: a.mtime,
            })
            .collect();
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
            warn!(inbox = %self.name, file = %file.name, folder = %self.dirs.processing,
                "A file of the same name is still being processed; this one waits until it is finished.");
            return Ok(None);
        }
        match self.sftp.rename(from.as_str(), to.as_str()).await {
            Ok(_) => {}
            Err(RawError::Status(s)) if s.status_code == StatusCode::NoSuchFile => {
                info!(inbox = %self.name, file = %file.name, "File is gone: taken by another dirsync or removed.");
                return Ok(None);
            }
            Err(RawError::Status(s)) => {
                if self.exists(&to).await? {
                    warn!(inbox = %self.name, file = %file.name, folder = %self.dirs.processing,
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
                warn!(inbox = %self.name, marker = %marker, error = %e, "Cannot remove the marker file; remove it by hand.");
            }
        }
        info!(inbox = %self.name, file = %file.name, size = file.size, "File claimed.");
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
        let mut bytes = Vec::new();
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
        debug!(inbox = %self.name, file = %file.name, bytes = bytes.len(), "Downloaded.");
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
        info!(inbox = %self.name, file = %file.name, results = %target, "Results uploaded.");
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
                    info!(inbox = %self.name, file = %file.name, to = %to, "File moved.");
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

#[cfg(test)]
mod tests {
    use super::*;

    fn f(name: &str, size: u64, mtime: u32) -> RemoteFile {
        RemoteFile {
            name: name.into(),
            size,
            mtime: Some(mtime),
        }
    }

    #[test]
    fn stable_files_are_complete_on_the_second_identical_look() {
        let mut st = PollState::default();
        let none = BTreeSet::new();
        assert!(complete_files(Settle::Stable, &mut st, vec![f("a.csv", 10, 1)], &none).is_empty());
        // Grew: not yet.
        assert!(complete_files(Settle::Stable, &mut st, vec![f("a.csv", 20, 2)], &none).is_empty());
        let c = complete_files(
            Settle::Stable,
            &mut st,
            vec![f("a.csv", 20, 2), f("b.csv", 1, 1)],
            &none,
        );
        assert_eq!(c, vec![f("a.csv", 20, 2)]);
    }

    #[test]
    fn marker_files_need_their_marker() {
        let mut st = PollState::default();
        let markers: BTreeSet<String> = ["b.csv".to_string()].into();
        let c = complete_files(
            Settle::Marker,
            &mut st,
            vec![f("a.csv", 1, 1), f("b.csv", 1, 1)],
            &markers,
        );
        assert_eq!(c, vec![f("b.csv", 1, 1)]);
    }

    #[test]
    fn names() {
        assert_eq!(results_name("staff.csv"), "staff.results.csv");
        assert_eq!(results_name("export"), "export.results.csv");
        for n in [
            ".x.csv",
            "a.csv.part",
            "~$a.csv",
            "a.csv.done",
            "a.results.csv",
            "a.tmp",
            "a.csv~",
        ] {
            assert!(is_ignored(n), "{n}");
        }
        assert!(!is_ignored("staff.csv"));
    }
}
