//! Leases: who works on what, for how long. A lease is a row (`name`,
//! `owner`, `until`): a run (`run:12`), a target (`target:ldap://…`), a file
//! being claimed (`file:hr/staff.csv`), a daemon's presence (`daemon:OWNER`).
//! Several `dirsync serve` processes sharing one journal (PostgreSQL, or one
//! SQLite file on one host) coordinate through these rows alone: the
//! database is the arbiter, and its clock says when a lease has expired, so
//! the hosts' clocks need not agree.
//!
//! Taking a lease is a compare-and-set on what was observed (an expired
//! lease, or one of a process on this host that no longer exists, can be
//! taken over). A fenced journal ([`Journal::fenced`]) checks, inside each
//! write's transaction, that its owner still holds its leases; a process
//! that lost them (frozen past the expiry, cut off from the database) gets
//! [`JournalError::LeaseLost`] and writes nothing.

use std::path::Path;

use sqlx::{Any, Row, Transaction};

use super::{Dialect, Journal, JournalError, Result};

/// Leases a journal's writes are fenced by: its owner must hold them all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fence {
    pub owner: String,
    pub names: Vec<String>,
    /// Each check extends the leases by this long.
    pub ttl_ms: i64,
}

/// A lease as the journal holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    pub name: String,
    pub owner: String,
    /// Unix ms, by the database's clock.
    pub until: i64,
    /// The run it is about, when it is about one.
    pub run_id: Option<i64>,
    /// Whether it was still valid when read.
    pub live: bool,
}

/// The database's clock in Unix ms, as SQL.
fn db_now(d: Dialect) -> &'static str {
    match d {
        Dialect::Sqlite => "CAST((julianday('now') - 2440587.5) * 86400000 AS BIGINT)",
        Dialect::Postgres => "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
    }
}

/// A lease of a process on this host that no longer exists (killed) does
/// not block until its expiry. Owners are `host:pid#nonce`.
pub fn owner_is_dead(owner: &str, me: &str) -> bool {
    let proc_of = |o: &str| {
        o.split('#')
            .next()
            .and_then(|hp| hp.rsplit_once(':'))
            .map(|(h, p)| (h.to_string(), p.to_string()))
    };
    let (Some((host, pid)), Some((my_host, _))) = (proc_of(owner), proc_of(me)) else {
        return false;
    };
    host == my_host && owner != me && !pid.is_empty() && !Path::new(&format!("/proc/{pid}")).exists()
}

impl Journal {
    /// This journal, its writes fenced by `fence`.
    pub fn fenced(&self, fence: Fence) -> Journal {
        Journal {
            fence: Some(std::sync::Arc::new(fence)),
            ..self.clone()
        }
    }

    /// A write transaction: when fenced, it first checks (and extends) the
    /// fence's leases, and fails with [`JournalError::LeaseLost`] when this
    /// process no longer holds one of them.
    pub(super) async fn begin(&self) -> Result<Transaction<'static, Any>> {
        let mut tx = self.pool.begin().await?;
        if let Some(f) = &self.fence {
            let names = vec!["?"; f.names.len()].join(", ");
            let now = db_now(self.dialect);
            let sql = self.sql(&format!(
                "UPDATE leases SET until = {now} + ? WHERE owner = ? AND until > {now} AND name IN ({names})"
            ));
            let done = sqlx::query(&sql).bind(f.ttl_ms).bind(&f.owner);
            let done = f.names.iter().fold(done, |q, n| q.bind(n)).execute(&mut *tx).await?;
            if done.rows_affected() < f.names.len() as u64 {
                let _ = tx.rollback().await;
                return Err(JournalError::LeaseLost(f.names.join(", ")));
            }
        }
        Ok(tx)
    }

    /// Execute one write, fenced when this journal is.
    pub(super) async fn exec<'q>(&self, q: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>>) -> Result<u64> {
        if self.fence.is_none() {
            return Ok(q.execute(&self.pool).await?.rows_affected());
        }
        let mut tx = self.begin().await?;
        let n = q.execute(&mut *tx).await?.rows_affected();
        tx.commit().await?;
        Ok(n)
    }

    /// Take lease `name` for `owner` for `ttl_ms`, unless another live
    /// process holds it. Returns whether `owner` holds it now.
    pub async fn take_lease(&self, name: &str, owner: &str, ttl_ms: i64, run_id: Option<i64>) -> Result<bool> {
        let now = db_now(self.dialect);
        let row = sqlx::query(&self.sql(&format!(
            "SELECT owner, until, CASE WHEN until > {now} THEN 1 ELSE 0 END FROM leases WHERE name = ?"
        )))
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        let res = match row {
            None => {
                sqlx::query(&self.sql(&format!(
                    "INSERT INTO leases (name, owner, until, run_id) VALUES (?, ?, {now} + ?, ?) \
                     ON CONFLICT (name) DO NOTHING"
                )))
                .bind(name)
                .bind(owner)
                .bind(ttl_ms)
                .bind(run_id)
                .execute(&self.pool)
                .await?
            }
            Some(r) => {
                let held_by: String = r.try_get(0)?;
                let until: i64 = r.try_get(1)?;
                let live: i64 = r.try_get(2)?;
                if live != 0 && held_by != owner && !owner_is_dead(&held_by, owner) {
                    return Ok(false);
                }
                // Compare-and-set on what was observed: of two takers, one wins.
                sqlx::query(&self.sql(&format!(
                    "UPDATE leases SET owner = ?, until = {now} + ?, run_id = ? \
                     WHERE name = ? AND owner = ? AND until = ?"
                )))
                .bind(owner)
                .bind(ttl_ms)
                .bind(run_id)
                .bind(name)
                .bind(&held_by)
                .bind(until)
                .execute(&self.pool)
                .await?
            }
        };
        Ok(res.rows_affected() == 1)
    }

    /// Extend the live leases `names` of `owner`; returns those it still holds.
    pub async fn renew_leases(&self, owner: &str, names: &[String], ttl_ms: i64) -> Result<Vec<String>> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let now = db_now(self.dialect);
        let list = vec!["?"; names.len()].join(", ");
        let sql = self.sql(&format!(
            "UPDATE leases SET until = {now} + ? WHERE owner = ? AND until > {now} AND name IN ({list}) RETURNING name"
        ));
        let q = sqlx::query(&sql).bind(ttl_ms).bind(owner);
        let rows = names.iter().fold(q, |q, n| q.bind(n)).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| r.try_get::<String, _>(0).map_err(JournalError::from))
            .collect()
    }

    /// Keep lease `name` for `ms` more, then let it lapse (a run whose
    /// target is down waits this long before any daemon tries it again).
    pub async fn park_lease(&self, name: &str, owner: &str, ms: i64) -> Result<()> {
        let now = db_now(self.dialect);
        sqlx::query(&self.sql(&format!(
            "UPDATE leases SET until = {now} + ? WHERE name = ? AND owner = ?"
        )))
        .bind(ms)
        .bind(name)
        .bind(owner)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Give lease `name` up (only if `owner` holds it).
    pub async fn release_lease(&self, name: &str, owner: &str) -> Result<()> {
        sqlx::query(&self.sql("DELETE FROM leases WHERE name = ? AND owner = ?"))
            .bind(name)
            .bind(owner)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The daemon (or command) working on run `id` now, if any.
    pub async fn run_holder(&self, id: i64) -> Result<Option<String>> {
        let name = format!("run:{id}");
        Ok(self
            .leases()
            .await?
            .into_iter()
            .find(|l| l.live && l.name == name)
            .map(|l| l.owner))
    }

    /// Every lease, live or lapsed, by name.
    pub async fn leases(&self) -> Result<Vec<Lease>> {
        let now = db_now(self.dialect);
        let rows = sqlx::query(&format!(
            "SELECT name, owner, until, run_id, CASE WHEN until > {now} THEN 1 ELSE 0 END FROM leases ORDER BY name"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let live: i64 = r.try_get(4)?;
                Ok(Lease {
                    name: r.try_get(0)?,
                    owner: r.try_get(1)?,
                    until: r.try_get(2)?,
                    run_id: r.try_get(3)?,
                    live: live != 0,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::JournalLocation;

    async fn journal(dir: &Path) -> Journal {
        Journal::open(&JournalLocation {
            url: format!("sqlite://{}", dir.join("journal.db").display()),
            key_file: dir.join("journal.key"),
        })
        .await
        .expect("journal") // ok: test
    }

    #[tokio::test]
    async fn a_lease_is_held_by_one_owner_until_it_lapses_and_fences_the_loser() -> Result<()> {
        let dir = tempfile::tempdir().expect("temp dir"); // ok: test
        let j = journal(dir.path()).await;
        let (a, b) = ("h:1#a", "h:1#b");
        assert!(j.take_lease("run:7", a, 60_000, Some(7)).await?); // ok: test
        assert!(!j.take_lease("run:7", b, 60_000, Some(7)).await?, "held by a"); // ok: test
        assert!(
            j.take_lease("run:7", a, 60_000, Some(7)).await?,
            "a takes its own again"
        ); // ok: test
        assert_eq!(j.run_holder(7).await?.as_deref(), Some(a)); // ok: test

        // A's writes go while it holds the lease.
        let fenced_a = j.fenced(Fence {
            owner: a.into(),
            names: vec!["run:7".into()],
            ttl_ms: 60_000,
        });
        fenced_a.set_results(7, Path::new("/tmp/r.csv")).await?;
        assert_eq!(
            j.renew_leases(a, &["run:7".into()], 60_000).await?,
            vec!["run:7".to_string()]
        ); // ok: test

        // It lapses (parked into the past): b takes it over, a's writes stop.
        j.park_lease("run:7", a, -1).await?;
        assert_eq!(j.run_holder(7).await?, None, "a lapsed lease holds nothing"); // ok: test
        assert!(
            j.renew_leases(a, &["run:7".into()], 60_000).await?.is_empty(),
            "a lapsed lease is not revived"
        ); // ok: test
        assert!(j.take_lease("run:7", b, 60_000, Some(7)).await?); // ok: test
        match fenced_a.set_results(7, Path::new("/tmp/r.csv")).await {
            Err(JournalError::LeaseLost(l)) => assert_eq!(l, "run:7"),
            other => panic!("a wrote after losing its lease: {other:?}"),
        }
        let fenced_b = j.fenced(Fence {
            owner: b.into(),
            names: vec!["run:7".into()],
            ttl_ms: 60_000,
        });
        fenced_b.set_results(7, Path::new("/tmp/r.csv")).await?;

        // Released: anyone may take it at once; a release by a non-holder does nothing.
        j.release_lease("run:7", a).await?;
        assert_eq!(j.run_holder(7).await?.as_deref(), Some(b)); // ok: test
        j.release_lease("run:7", b).await?;
        assert!(j.take_lease("run:7", a, 60_000, Some(7)).await?);
        // ok: test
        Ok(())
    }

    #[test]
    fn a_dead_owner_is_one_of_this_host_whose_process_is_gone() {
        let me = format!("h1:{}#aa", std::process::id());
        // pid 0 never names a /proc entry of a process.
        assert!(owner_is_dead("h1:999999999#bb", &me));
        assert!(!owner_is_dead(&me, &me));
        assert!(
            !owner_is_dead("h2:999999999#bb", &me),
            "another host: only its expiry tells"
        );
        assert!(
            !owner_is_dead(&format!("h1:{}#bb", std::process::id()), &me),
            "a live process"
        );
        assert!(!owner_is_dead("garbage", &me));
    }
}
