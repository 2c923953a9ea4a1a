//! The console's users file (`[http] users_file`): people with an argon2id
//! password hash and a role, and scripts with a bearer token (kept only as
//! its SHA-256). Written by `dirsync http add-user` / `add-token`; read by
//! the daemon again whenever it changes.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::Engine;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What someone may do in the console.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Sees runs, rows, results files and metrics.
    Viewer,
    /// Also approves and rejects held changes, uploads files, downloads
    /// original files.
    Operator,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        match s.trim().to_ascii_lowercase().as_str() {
            "viewer" => Some(Role::Viewer),
            "operator" => Some(Role::Operator),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
        }
    }
}

/// A person.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    pub name: String,
    pub role: Role,
    /// argon2id PHC string.
    pub password: String,
    /// Where the results of their uploads are mailed (with the inbox's submitter).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// A script's bearer token.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Token {
    pub name: String,
    pub role: Role,
    /// Hex SHA-256 of the token (256 random bits: a slow hash adds nothing).
    pub sha256: String,
}

/// The users file.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Users {
    #[serde(default, rename = "user")]
    pub users: Vec<User>,
    #[serde(default, rename = "token")]
    pub tokens: Vec<Token>,
}

fn valid_name(n: &str) -> bool {
    !n.is_empty() && n.len() <= 64 && n.chars().all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c))
}

/// A hash to verify against when the user does not exist, so a wrong name
/// takes as long as a wrong password.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(b"no such user", &salt)
            .map(|h| h.to_string())
            .unwrap_or_default()
    })
}

impl Users {
    /// Read and check the file; a missing file is an empty one.
    pub fn load(path: &Path) -> Result<Users, String> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Users::default()),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        let users: Users = toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        for u in &users.users {
            if !valid_name(&u.name) {
                return Err(format!(
                    "{}: user name {:?} is not valid (letters, digits, . _ - @)",
                    path.display(),
                    u.name
                ));
            }
            if PasswordHash::new(&u.password).is_err() {
                return Err(format!(
                    "{}: user {:?}: password is not an argon2 hash; set it again with `dirsync http add-user {} --role {}`",
                    path.display(),
                    u.name,
                    u.name,
                    u.role.as_str()
                ));
            }
        }
        for t in &users.tokens {
            if t.sha256.len() != 64 || hex::decode(&t.sha256).is_err() {
                return Err(format!(
                    "{}: token {:?}: sha256 is not 64 hex digits",
                    path.display(),
                    t.name
                ));
            }
        }
        Ok(users)
    }

    /// Write the file (0600) through a temporary file and a rename.
    pub fn save(&self, path: &Path) -> Result<(), String> {
        let text = toml::to_string(self).map_err(|e| e.to_string())?;
        let tmp = path.with_extension("tmp");
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(b"# dirsync console users: `dirsync http add-user`, `dirsync http add-token`.\n")?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)
        };
        write().map_err(|e| format!("cannot write {}: {e}", path.display()))
    }

    /// Add or replace a user.
    pub fn set_user(&mut self, name: &str, role: Role, password: &str, email: Option<String>) -> Result<(), String> {
        if !valid_name(name) {
            return Err(format!(
                "user name {name:?} is not valid: use letters, digits, . _ - @ (at most 64)"
            ));
        }
        if password.chars().count() < 12 {
            return Err("the password is too short: use at least 12 characters".into());
        }
        let salt = SaltString::generate(&mut OsRng);
        let hash = Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map_err(|e| format!("hashing the password: {e}"))?
            .to_string();
        let email = email.or_else(|| self.users.iter().find(|u| u.name == name).and_then(|u| u.email.clone()));
        self.users.retain(|u| u.name != name);
        self.users.push(User {
            name: name.into(),
            role,
            password: hash,
            email,
        });
        Ok(())
    }

    /// Add or replace a token; returns the token itself (shown once).
    pub fn set_token(&mut self, name: &str, role: Role) -> Result<String, String> {
        if !valid_name(name) {
            return Err(format!(
                "token name {name:?} is not valid: use letters, digits, . _ - @ (at most 64)"
            ));
        }
        let mut raw = [0u8; 32];
        rand::rng().fill_bytes(&mut raw);
        let token = format!("dst_{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw));
        self.tokens.retain(|t| t.name != name);
        self.tokens.push(Token {
            name: name.into(),
            role,
            sha256: hex::encode(Sha256::digest(token.as_bytes())),
        });
        Ok(token)
    }

    /// The user, when the password is theirs. Slow on purpose (argon2):
    /// call it off the async threads.
    pub fn check_password(&self, name: &str, password: &str) -> Option<&User> {
        let user = self.users.iter().find(|u| u.name == name);
        let hash = user.map(|u| u.password.as_str()).unwrap_or(dummy_hash());
        let ok = PasswordHash::new(hash)
            .map(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
            .unwrap_or(false);
        if ok {
            user
        } else {
            None
        }
    }

    /// The token's name and role.
    pub fn check_token(&self, token: &str) -> Option<&Token> {
        let digest = hex::encode(Sha256::digest(token.as_bytes()));
        self.tokens.iter().find(|t| t.sha256 == digest)
    }
}

/// The users file as the daemon reads it: again whenever it changes.
pub struct UsersSource {
    path: Option<PathBuf>,
    cache: Mutex<(Option<SystemTime>, std::sync::Arc<Users>)>,
}

impl UsersSource {
    pub fn new(path: Option<PathBuf>) -> UsersSource {
        UsersSource {
            path,
            cache: Mutex::new((None, std::sync::Arc::new(Users::default()))),
        }
    }

    /// The users now. A file that cannot be read leaves nobody able to log
    /// in (and says why in the log), rather than keeping a stale list.
    pub fn get(&self) -> std::sync::Arc<Users> {
        let Some(path) = &self.path else {
            return std::sync::Arc::new(Users::default());
        };
        let mtime = std::fs::metadata(path).and_then(|m| m.modified()).ok();
        let mut cache = match self.cache.lock() {
            Ok(c) => c,
            Err(p) => p.into_inner(),
        };
        if cache.0.is_none() || cache.0 != mtime {
            let users = Users::load(path).unwrap_or_else(|e| {
                tracing::error!(error = %e, "Cannot read the console's users file; nobody can log in until it is fixed.");
                Users::default()
            });
            *cache = (mtime, std::sync::Arc::new(users));
        }
        std::sync::Arc::clone(&cache.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_and_tokens_round_trip_through_the_file() {
        let dir = tempfile::tempdir().unwrap(); // ok: test
        let path = dir.path().join("users.toml");
        let mut u = Users::default();
        u.set_user("alice", Role::Operator, "correct horse battery", None)
            .unwrap(); // ok: test
        let token = u.set_token("nagios", Role::Viewer).unwrap(); // ok: test
        u.save(&path).unwrap(); // ok: test
        let text = std::fs::read_to_string(&path).unwrap(); // ok: test
        assert!(!text.contains("correct horse") && !text.contains(&token), "{text}");
        let back = Users::load(&path).unwrap(); // ok: test
        assert_eq!(
            back.check_password("alice", "correct horse battery").map(|u| u.role),
            Some(Role::Operator)
        );
        assert!(back.check_password("alice", "wrong").is_none());
        assert!(back.check_password("bob", "correct horse battery").is_none());
        assert_eq!(back.check_token(&token).map(|t| t.name.as_str()), Some("nagios"));
        assert!(back.check_token("dst_nope").is_none());
    }

    #[test]
    fn bad_names_short_passwords_and_broken_files_are_refused() {
        let mut u = Users::default();
        assert!(u
            .set_user("al ice", Role::Viewer, "long enough password", None)
            .is_err());
        assert!(u
            .set_user("alice", Role::Viewer, "short", None)
            .unwrap_err()
            .contains("at least 12")); // ok: test
        let dir = tempfile::tempdir().unwrap(); // ok: test
        let path = dir.path().join("users.toml");
        std::fs::write(
            &path,
            "[[user]]\nname = \"a\"\nrole = \"operator\"\npassword = \"plain\"\n",
        )
        .unwrap(); // ok: test
        assert!(Users::load(&path).unwrap_err().contains("not an argon2 hash")); // ok: test
        std::fs::write(&path, "[[user]]\nname = \"a\"\nrole = \"admin\"\npassword = \"x\"\n").unwrap(); // ok: test
        assert!(Users::load(&path).unwrap_err().contains("role")); // ok: test
    }
}
