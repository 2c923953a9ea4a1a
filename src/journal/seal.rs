//! Sealing generated passwords for the journal.
//!
//! A generated password must survive a crash (a resumed run must set the
//! same one), so it is journaled before use. It is sealed with AES-256-GCM
//! under a key in `{state_dir}/journal.key` (created 0600, 32 random bytes),
//! with the run id and item as associated data, so a sealed value cannot be
//! moved to another row. A copy of the journal — a backup, or a PostgreSQL
//! journal shared by several daemons — reveals no password without the key
//! file, which never leaves the daemon's state folder.

use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use rand::RngCore;

use super::JournalError;
use crate::core::Secret;

const NONCE_LEN: usize = 12;

/// Seals and opens journaled secrets.
#[derive(Clone)]
pub struct SecretBox {
    cipher: Aes256Gcm,
    path: PathBuf,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretBox({})", self.path.display())
    }
}

impl SecretBox {
    /// Read the key file, or create it (0600) on first start.
    pub fn open_or_create(path: &Path) -> Result<SecretBox, JournalError> {
        let cipher = crate::keyfile::load_or_create(path, "the journal key").map_err(|message| JournalError::Key {
            path: path.to_path_buf(),
            message,
        })?;
        Ok(SecretBox {
            cipher,
            path: path.to_path_buf(),
        })
    }

    fn aad(run_id: i64, ident: &str) -> Vec<u8> {
        format!("dirsync-journal:{run_id}:{ident}").into_bytes()
    }

    /// hex(nonce ‖ ciphertext).
    pub fn seal(&self, run_id: i64, ident: &str, secret: &Secret) -> Result<String, JournalError> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let aad = Self::aad(run_id, ident);
        let ct = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: secret.expose().as_bytes(),
                    aad: &aad,
                },
            )
            .map_err(|_| JournalError::Query("sealing a generated password failed".into()))?;
        let mut out = nonce.to_vec();
        out.extend(ct);
        Ok(hex::encode(out))
    }

    pub fn open(&self, run_id: i64, ident: &str, sealed: &str) -> Result<Secret, JournalError> {
        let wrong = || JournalError::Key {
            path: self.path.clone(),
            message: format!(
                "the password journaled for run {run_id} ({ident}) cannot be unsealed with this key; \
                 restore the key file the run started with"
            ),
        };
        let bytes = hex::decode(sealed).map_err(|_| wrong())?;
        if bytes.len() <= NONCE_LEN {
            return Err(wrong());
        }
        let (nonce, ct) = bytes.split_at(NONCE_LEN);
        let aad = Self::aad(run_id, ident);
        let plain = self
            .cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad: &aad })
            .map_err(|_| wrong())?;
        String::from_utf8(plain).map(Secret::new).map_err(|_| wrong())
    }
}

impl super::Journal {
    /// Every process sharing the journal must seal with the same key: the
    /// first seals a probe, the others must be able to open it.
    pub(super) async fn check_key(&self) -> Result<(), JournalError> {
        use sqlx::Row;
        const PROBE: &str = "dirsync journal key check";
        let row = sqlx::query("SELECT sealed FROM key_checks WHERE name = 'journal'")
            .fetch_optional(&self.pool)
            .await?;
        match row {
            None => {
                let sealed = self.seal.seal(0, "key-check", &Secret::new(PROBE))?;
                sqlx::query(
                    &self.sql(
                        "INSERT INTO key_checks (name, sealed) VALUES ('journal', ?) ON CONFLICT (name) DO NOTHING",
                    ),
                )
                .bind(sealed)
                .execute(&self.pool)
                .await?;
                Ok(())
            }
            Some(r) => {
                let sealed: String = r.try_get(0)?;
                match self.seal.open(0, "key-check", &sealed) {
                    Ok(p) if p.expose() == PROBE => Ok(()),
                    _ => Err(JournalError::Key {
                        path: self.seal.path.clone(),
                        message: format!(
                            "this key is not the one the journal {} was first used with: every daemon and \
                             command sharing a journal needs the same key file; copy it (mode 0600) from the \
                             host that first used the journal",
                            self.describe()
                        ),
                    }),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_passwords_open_only_for_their_row_and_key() {
        let dir = tempfile::tempdir().expect("temp dir"); // ok: test
        let b = SecretBox::open_or_create(&dir.path().join("journal.key")).expect("key"); // ok: test
        let s = Secret::new("hunter2-but-longer");
        let sealed = b.seal(7, "row:3", &s).expect("seal"); // ok: test
        assert!(!sealed.contains("hunter2"));
        assert_eq!(b.open(7, "row:3", &sealed).expect("open").expose(), s.expose()); // ok: test
        assert!(b.open(7, "row:4", &sealed).is_err());
        assert!(b.open(8, "row:3", &sealed).is_err());
        let other = tempfile::tempdir().expect("temp dir"); // ok: test
        let b2 = SecretBox::open_or_create(&other.path().join("journal.key")).expect("key"); // ok: test
        assert!(b2.open(7, "row:3", &sealed).is_err());
        // The same key file opens again.
        let b3 = SecretBox::open_or_create(&dir.path().join("journal.key")).expect("key"); // ok: test
        assert_eq!(b3.open(7, "row:3", &sealed).expect("open").expose(), s.expose()); // ok: test
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("journal.key"))
            .expect("meta") // ok: test
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
