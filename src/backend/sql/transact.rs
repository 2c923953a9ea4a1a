//! A batch's bulk statements run in one transaction: all or nothing. When
//! any statement fails, or touches fewer rows than it must, the transaction
//! is rolled back and the caller replays the batch row by row to find and
//! report the bad row.

use super::stmt::{with_pool, Exec, Pool, Step};
use super::{is_connection_error, sqlx_message, BackendError};

/// How a bulk transaction ended.
pub(super) enum Ran {
    Committed,
    /// Rolled back, nothing written: a statement failed or touched fewer
    /// rows than expected, and the caller replays the batch row by row.
    /// `copy_refused`: a COPY failed, and not over its rows' data (SQLSTATE
    /// classes 22 and 23) but the table's (row-level security, a view).
    RolledBack {
        copy_refused: bool,
    },
}

/// A value or constraint the rows broke, not the statement's form.
fn is_data_error(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|c| c.starts_with("22") || c.starts_with("23"))
}

/// Run the bulk statements in one transaction.
pub(super) async fn run(pool: &Pool, steps: &[Step<'_>]) -> Result<Ran, BackendError> {
    let conn = |e: sqlx::Error| BackendError::Connect(sqlx_message(&e));
    let refused = Ran::RolledBack { copy_refused: false };
    with_pool!(pool, p => {
        let mut tx = p.begin().await.map_err(conn)?;
        for s in steps {
            match Exec::step(&mut *tx, s).await {
                Ok(n) if s.expect_rows().is_some_and(|want| n < want) => {
                    tx.rollback().await.map_err(conn)?;
                    return Ok(refused);
                }
                Ok(_) => {}
                Err(e) if is_connection_error(&e) => return Err(conn(e)),
                Err(e) => {
                    tx.rollback().await.map_err(conn)?;
                    let copy_refused = matches!(s, Step::Copy(_)) && !is_data_error(&e);
                    return Ok(Ran::RolledBack { copy_refused });
                }
            }
        }
        if !crate::backend::guard::may_write() {
            let _ = tx.rollback().await;
            return Err(BackendError::Fenced);
        }
        match tx.commit().await {
            Ok(()) => Ok(Ran::Committed),
            Err(e) if is_connection_error(&e) => Err(conn(e)),
            Err(_) => Ok(refused),
        }
    })
}
