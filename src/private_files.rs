//! Files that hold secrets — mails with a password or an activation link,
//! databases with sealed secrets or password hashes — are created readable
//! by dirsync alone (files 0600, the folders it creates 0700), whatever the
//! process umask: outside the systemd unit (`UMask=0077`) the usual umask
//! 022 would leave them readable by every local user. A leaf: std only.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

/// Create `dir` and its missing parents with mode 0700 (folders that exist
/// keep their mode: an admin may have opened one on purpose).
pub fn create_dir(dir: &Path) -> std::io::Result<()> {
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

/// Create the empty file `path` (mode 0600) and its folder (0700) unless
/// the file exists, before a database opens it with the umask's mode.
pub fn create_file(path: &Path) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        create_dir(dir)?;
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Write `bytes` as the new file `path` (mode 0600), whole or not at all: a
/// hidden temporary file in the same folder, synced, then renamed.
pub fn write_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    let written = f.write_all(bytes).and_then(|_| f.sync_all());
    if let Err(e) = written.and_then(|_| std::fs::rename(&tmp, path)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p)
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or(0) // ok: test
    }

    #[test]
    fn files_are_0600_and_new_folders_0700_under_a_lax_umask() {
        // SAFETY: umask(2) only changes this process's file creation mask.
        let old = unsafe { libc::umask(0o022) };
        let dir = tempfile::tempdir().expect("temp dir"); // ok: test
        let deep = dir.path().join("a/b");
        create_file(&deep.join("x.db")).expect("create"); // ok: test
        write_new(&deep.join("m.eml"), b"secret").expect("write"); // ok: test
                                                                   // SAFETY: as above, restoring the mask.
        unsafe { libc::umask(old) };
        assert_eq!(mode(&dir.path().join("a")), 0o700);
        assert_eq!(mode(&deep), 0o700);
        assert_eq!(mode(&deep.join("x.db")), 0o600);
        assert_eq!(mode(&deep.join("m.eml")), 0o600);
        assert_eq!(std::fs::read(deep.join("m.eml")).expect("read"), b"secret"); // ok: test
        assert!(write_new(&deep.join("m.eml"), b"again").is_ok(), "replaces");
    }
}
