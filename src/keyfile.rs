//! Key files for sealing secrets at rest (the journal's generated passwords,
//! the outbox's mail bodies): 32 random bytes as hex, created with mode 0600
//! in a folder made 0700, and refused when other users can read them.
//! A leaf module: it depends on nothing of ours.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use aes_gcm::aead::KeyInit;
use aes_gcm::Aes256Gcm;
use rand::RngCore;

/// Read the key at `path`, or create it when it does not exist. `what` names
/// it in errors ("the outbox key"), which say what to do.
pub fn load_or_create(path: &Path, what: &str) -> Result<Aes256Gcm, String> {
    let shown = path.display();
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| format!("cannot create the folder for {what} {shown}: {e}"))?;
    }
    let mut key = [0u8; 32];
    rand::rng().fill_bytes(&mut key);
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| {
            f.write_all(hex::encode(key).as_bytes())?;
            f.sync_all()
        });
    match created {
        Ok(()) => {}
        // It exists (or another process created it first): use it.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(format!("cannot create {what} {shown}: {e}")),
    }
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read {what} {shown}: {e}"))?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(format!(
            "{what} {shown} can be read by other users; run `chmod 600 {shown}`"
        ));
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {what} {shown}: {e}"))?;
    let bytes = hex::decode(text.trim())
        .ok()
        .filter(|b| b.len() == 32)
        .ok_or_else(|| format!("{what} {shown} is not 64 hex digits; restore it from backup"))?;
    Aes256Gcm::new_from_slice(&bytes).map_err(|_| format!("{what} {shown} is not a usable key; restore it from backup"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_0600_reuses_and_refuses_readable_or_damaged_keys() {
        let dir = tempfile::tempdir().unwrap(); // ok: test
        let path = dir.path().join("state/k.key");
        load_or_create(&path, "the test key").unwrap(); // ok: test
        let mode = std::fs::metadata(&path).unwrap().permissions().mode(); // ok: test
        assert_eq!(mode & 0o777, 0o600);
        let first = std::fs::read_to_string(&path).unwrap(); // ok: test
        load_or_create(&path, "the test key").unwrap(); // ok: test
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(), // ok: test
            first,
            "an existing key is reused"
        ); // ok: test
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap(); // ok: test
        let e = load_or_create(&path, "the test key").err().unwrap_or_default();
        assert!(
            e.contains("can be read by other users") && e.contains("chmod 600"),
            "{e}"
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap(); // ok: test
        std::fs::write(&path, "abc").unwrap(); // ok: test
        let e = load_or_create(&path, "the test key").err().unwrap_or_default();
        assert!(e.contains("not 64 hex digits"), "{e}");
    }
}
