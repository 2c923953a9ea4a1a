//! Message bodies at rest in the outbox are sealed with AES-256-GCM under a
//! key file of their own (mode 0600, beside the journal but not in it).
//!
//! Why: a credentials mail must wait in the outbox (SMTP down, `send_at`),
//! so its password has to be stored somewhere. Sealing it means a copy of
//! the journal — a backup, a PostgreSQL dump, a shared database another team
//! administers — holds no usable password; only a host that also has the key
//! file can read it. The message id is the associated data, so a sealed body
//! cannot be moved to another row. After delivery the body is deleted.

use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use rand::RngCore;

const NONCE_LEN: usize = 12;
const VERSION: &str = "v1:";

/// The outbox key. Its `Debug` never shows the key.
#[derive(Clone)]
pub struct BodyKey {
    cipher: Aes256Gcm,
    path: PathBuf,
}

impl std::fmt::Debug for BodyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BodyKey({})", self.path.display())
    }
}

impl BodyKey {
    /// Read the key file, or create it (32 random bytes, hex, mode 0600) when
    /// it does not exist. A key file others can read is refused.
    pub fn load_or_create(path: &Path) -> Result<BodyKey, String> {
        let cipher = crate::keyfile::load_or_create(path, "the outbox key")?;
        Ok(BodyKey {
            cipher,
            path: path.to_path_buf(),
        })
    }

    /// Seal `plain` for the row `id`: `v1:` + base64(nonce ‖ ciphertext).
    pub fn seal(&self, id: &str, plain: &[u8]) -> Result<String, String> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let ct = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plain,
                    aad: id.as_bytes(),
                },
            )
            .map_err(|_| "cannot encrypt a mail body".to_string())?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        Ok(format!(
            "{VERSION}{}",
            base64::engine::general_purpose::STANDARD.encode(out)
        ))
    }

    /// Open a body sealed by [`BodyKey::seal`] for the same row.
    pub fn open(&self, id: &str, sealed: &str) -> Result<Vec<u8>, String> {
        let wrong = || {
            format!(
                "the mail body of {id} cannot be decrypted with {}: the key file was replaced; \
                 restore the old key file to send it",
                self.path.display()
            )
        };
        let b64 = sealed.strip_prefix(VERSION).ok_or_else(wrong)?;
        let raw = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|_| wrong())?;
        if raw.len() < NONCE_LEN {
            return Err(wrong());
        }
        let (nonce, ct) = raw.split_at(NONCE_LEN);
        self.cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: id.as_bytes(),
                },
            )
            .map_err(|_| wrong())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn seal_open_and_key_file_mode() {
        let dir = tempfile::tempdir().unwrap(); // ok: test
        let path = dir.path().join("k");
        let key = BodyKey::load_or_create(&path).unwrap(); // ok: test
        let mode = std::fs::metadata(&path).unwrap().permissions().mode(); // ok: test
        assert_eq!(mode & 0o777, 0o600);
        let sealed = key.seal("a", b"secret body").unwrap(); // ok: test
        assert!(!sealed.contains("secret"));
        let again = BodyKey::load_or_create(&path).unwrap(); // ok: test
        assert_eq!(again.open("a", &sealed).unwrap(), b"secret body"); // ok: test
        assert!(again.open("b", &sealed).is_err(), "bound to its row");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap(); // ok: test
        assert!(BodyKey::load_or_create(&path).is_err());
    }
}
