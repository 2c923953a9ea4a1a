//! Generated values (`[fields.X] generate`): journaled per run and row
//! before the write that uses them, so a resumed run uses the same ones,
//! and kept for good, so a value handed out once (a leaver's username) is
//! never handed out again for the same target.

use sqlx::Row;

use super::{Journal, Result};
use crate::core::generate::{GeneratedValue, Journaled, Taken};

/// Rows per multi-row insert.
const CHUNK: usize = 300;

impl Journal {
    /// Journal values generated for run `id` (before any write uses them).
    pub async fn record_generated(&self, id: i64, values: &[GeneratedValue]) -> Result<()> {
        let mut tx = self.begin().await?;
        for chunk in values.chunks(CHUNK) {
            let rows = vec!["(?, ?, ?, ?)"; chunk.len()].join(", ");
            let sql = self.sql(&format!(
                "INSERT INTO run_generated (run_id, entry, field, value) VALUES {rows} \
                 ON CONFLICT (run_id, entry, field) DO NOTHING"
            ));
            let mut q = sqlx::query(&sql);
            for v in chunk {
                let entry = i64::try_from(v.entry).unwrap_or(i64::MAX);
                q = q.bind(id).bind(entry).bind(v.field.clone()).bind(v.value.to_string());
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The values journaled for run `id`, by roster entry.
    pub async fn generated(&self, id: i64) -> Result<Journaled> {
        let rows = sqlx::query(
            &self.sql("SELECT entry, field, value FROM run_generated WHERE run_id = ? ORDER BY entry, field"),
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Journaled::new();
        for r in &rows {
            let entry: i64 = r.try_get(0)?;
            let Ok(entry) = usize::try_from(entry) else { continue };
            out.entry(entry).or_default().push((r.try_get(1)?, r.try_get(2)?));
        }
        Ok(out)
    }

    /// Every value handed out for `target` by runs other than `id` (a
    /// preview hands out nothing: `check` shows what `apply` will use).
    pub async fn taken(&self, target: &str, id: i64) -> Result<Taken> {
        let rows = sqlx::query(&self.sql(
            "SELECT g.field, g.value FROM run_generated g JOIN runs r ON r.id = g.run_id \
             WHERE r.target = ? AND r.id <> ? AND r.state <> 'preview'",
        ))
        .bind(target)
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        let mut taken = Taken::default();
        for r in &rows {
            let (field, value): (String, String) = (r.try_get(0)?, r.try_get(1)?);
            taken.insert(&field, &value);
        }
        Ok(taken)
    }
}
