//! One account's password set on its own (the console's activation page),
//! through the same writes as a new account's: Password Modify (RFC 3062)
//! on OpenLDAP and 389 DS, so the server hashes it under its own password
//! policy (or `{SSHA512}` with `password_method = "ssha512"`); on Active
//! Directory `unicodePwd`, then an account created for activation enabled —
//! Windows keeps it disabled until it has a password. An existing account's
//! state, and an account in the leavers container, are left alone. A password the server
//! refuses comes back as [`BackendError::PasswordRefused`] in words.

use std::collections::HashSet;

use ldap3::exop::PasswordModify;
use ldap3::{LdapResult, Mod, Scope};

use super::config::{Flavour, PasswordMethod};
use super::dn::{escape_filter_value, normalise};
use super::ops::{ssha512, unicode_pwd, UAC_NORMAL_ACCOUNT};
use super::rc::explain;
use super::LdapBackend;
use crate::backend::BackendError;
use crate::core::{Secret, UserKey};

/// A failed password write, in words for the person who chose it.
fn refused(r: &LdapResult) -> BackendError {
    let text = r.text.trim_end_matches(['\0', '\n']).trim();
    // Active Directory starts its text with a hex code ("0000052D: …"): not for people.
    let text = match text.split_once(": ") {
        Some((code, rest)) if code.len() == 8 && code.chars().all(|c| c.is_ascii_hexdigit()) => rest,
        _ => text,
    };
    match explain(r.rc, &r.text) {
        Some(why) if why.contains("password policy") => BackendError::PasswordRefused(format!(
            "the directory's password policy refused it (too short, too simple, or used before){}; \
             choose a longer password that mixes letters, digits and signs",
            if text.is_empty() {
                String::new()
            } else {
                format!(": \"{text}\"")
            }
        )),
        _ => BackendError::Other(super::rc::describe(r)),
    }
}

impl LdapBackend {
    /// The DN of the entry whose key is `key`, in the managed scope.
    async fn dn_of(&self, key: &UserKey) -> Result<String, BackendError> {
        let classes = self.class_filter();
        let filter = format!(
            "(&{classes}({}={}))",
            self.map.key_attr,
            escape_filter_value(key.as_str())
        );
        let mut found = Vec::new();
        for base in self.scopes() {
            self.paged_search(&base, Scope::Subtree, &filter, vec!["1.1".into()], |e| {
                found.push(e.dn);
                Ok(())
            })
            .await?;
        }
        found.sort_by_key(|d| normalise(d));
        found.dedup_by_key(|d| normalise(d));
        match found.len() {
            1 => Ok(found.remove(0)),
            0 => Err(BackendError::NoAccount(key.as_str().to_string())),
            n => Err(BackendError::Other(format!(
                "{n} entries hold the key {:?}: fix the directory",
                key.as_str()
            ))),
        }
    }

    pub(super) async fn set_one_password(
        &self,
        key: &UserKey,
        password: &Secret,
        new_account: bool,
    ) -> Result<(), BackendError> {
        let dn = self.dn_of(key).await?;
        let mut ldap = self.pool.get(0).await?;
        let timeout = self.pool.op_timeout();
        let lost = |e: ldap3::LdapError| BackendError::Connect(format!("{dn}: {e}"));
        let res = match (self.map.flavour, self.map.password) {
            (Flavour::Ad, _) => {
                let value: HashSet<Vec<u8>> = [unicode_pwd(password.expose())].into();
                ldap.with_timeout(timeout)
                    .modify(&dn, vec![Mod::Replace(b"unicodePwd".to_vec(), value)])
                    .await
                    .map_err(lost)?
            }
            (_, PasswordMethod::Passmod) => {
                ldap.with_timeout(timeout)
                    .extended(PasswordModify {
                        user_id: Some(&dn),
                        old_pass: None,
                        new_pass: Some(password.expose()),
                    })
                    .await
                    .map_err(lost)?
                    .1
            }
            (_, PasswordMethod::Ssha512) => {
                let mut salt = [0u8; 8];
                rand::RngCore::fill_bytes(&mut rand::rng(), &mut salt);
                let value: HashSet<Vec<u8>> = [ssha512(password.expose(), &salt).into_bytes()].into();
                ldap.with_timeout(timeout)
                    .modify(&dn, vec![Mod::Replace(b"userPassword".to_vec(), value)])
                    .await
                    .map_err(lost)?
            }
        };
        if res.rc != 0 {
            return Err(refused(&res));
        }
        if self.map.flavour == Flavour::Ad && new_account && !self.in_leavers(&dn) {
            let enable: HashSet<Vec<u8>> = [UAC_NORMAL_ACCOUNT.to_string().into_bytes()].into();
            let res = ldap
                .with_timeout(timeout)
                .modify(&dn, vec![Mod::Replace(b"userAccountControl".to_vec(), enable)])
                .await
                .map_err(lost)?;
            if res.rc != 0 {
                return Err(BackendError::Other(format!(
                    "the password is set but the account could not be enabled: {}",
                    super::rc::describe(&res)
                )));
            }
        }
        Ok(())
    }

    fn in_leavers(&self, dn: &str) -> bool {
        self.target
            .leavers
            .as_deref()
            .is_some_and(|l| super::dn::below(&normalise(dn), &normalise(l)))
    }
}
