//! One account's password set on its own (the console's activation page):
//! hashed with the policy's scheme, written with the must-change flag
//! cleared, in one statement that must touch exactly the account in scope.

use super::stmt::{with_pool, Exec};
use super::{hash_with, rows, sqlx_message, BackendError, SqlBackend};
use crate::core::{Secret, UserKey};

impl SqlBackend {
    pub(super) async fn set_one_password(&self, key: &UserKey, password: &Secret) -> Result<(), BackendError> {
        let hashing = self.map.hashing;
        let secret = password.clone();
        let hash = tokio::task::spawn_blocking(move || hash_with(hashing, &secret))
            .await
            .map_err(|e| BackendError::Other(format!("hashing task: {e}")))?
            .map_err(BackendError::Other)?;
        let stmt = rows::password_statement(&self.map, key.as_str(), &hash).ok_or_else(|| {
            BackendError::Unsupported(
                "the policy maps no sql.password_column: there is nowhere to store a password".into(),
            )
        })?;
        let touched = with_pool!(&self.pool, p => {
            let mut conn = p.acquire().await.map_err(|e| BackendError::Connect(sqlx_message(&e)))?;
            Exec::exec(&mut *conn, &stmt).await.map_err(|e| BackendError::Other(sqlx_message(&e)))?
        });
        if touched == 0 {
            return Err(BackendError::NoAccount(key.as_str().to_string()));
        }
        Ok(())
    }
}
