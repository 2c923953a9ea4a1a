//! The journal's tables, and the upgrade of a journal written by an earlier
//! dirsync (runs ended in `finished` with an `outcome`; no approvals).

use sqlx::AnyPool;

const TABLES: [&str; 9] = [
    "CREATE TABLE IF NOT EXISTS runs (
        id BIGINT PRIMARY KEY,
        inbox TEXT NOT NULL,
        file_name TEXT NOT NULL,
        claimed TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        policy TEXT NOT NULL,
        target TEXT NOT NULL,
        state TEXT NOT NULL,
        outcome TEXT,
        forced BIGINT NOT NULL DEFAULT 0,
        claimed_at BIGINT NOT NULL,
        started BIGINT,
        finished BIGINT,
        summary TEXT,
        breaches TEXT,
        dest TEXT,
        note TEXT,
        allow_over_limit BIGINT NOT NULL DEFAULT 0,
        results TEXT,
        filed BIGINT NOT NULL DEFAULT 0,
        submitter TEXT,
        superseded_by BIGINT,
        counts TEXT)",
    "CREATE INDEX IF NOT EXISTS runs_sha256 ON runs (sha256)",
    "CREATE TABLE IF NOT EXISTS run_items (
        run_id BIGINT NOT NULL,
        ident TEXT NOT NULL,
        line BIGINT,
        user_key TEXT,
        change TEXT NOT NULL,
        intent BIGINT NOT NULL DEFAULT 0,
        verdict TEXT,
        message TEXT,
        detail TEXT,
        approved BIGINT NOT NULL DEFAULT 0,
        PRIMARY KEY (run_id, ident))",
    "CREATE TABLE IF NOT EXISTS run_secrets (
        run_id BIGINT NOT NULL,
        ident TEXT NOT NULL,
        sealed TEXT NOT NULL,
        PRIMARY KEY (run_id, ident))",
    "CREATE TABLE IF NOT EXISTS run_approvals (
        run_id BIGINT NOT NULL,
        seq BIGINT NOT NULL,
        decision TEXT NOT NULL,
        classes TEXT NOT NULL,
        by_name TEXT NOT NULL,
        at BIGINT NOT NULL,
        note TEXT,
        PRIMARY KEY (run_id, seq))",
    "CREATE TABLE IF NOT EXISTS run_generated (
        run_id BIGINT NOT NULL,
        entry BIGINT NOT NULL,
        field TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (run_id, entry, field))",
    "CREATE TABLE IF NOT EXISTS journal_meta (version BIGINT NOT NULL)",
    // A value sealed with each key at first use (seal.rs): a process with
    // another key file is refused before it writes what others cannot read.
    "CREATE TABLE IF NOT EXISTS key_checks (name TEXT PRIMARY KEY, sealed TEXT NOT NULL)",
    // Who works on what until when (leases.rs); `until` by the database's clock.
    "CREATE TABLE IF NOT EXISTS leases (
        name TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        until BIGINT NOT NULL,
        run_id BIGINT)",
];

/// The journal's layout version: 2 added approvals and the run states of
/// one pipeline.
const VERSION: i64 = 2;

/// Columns added since version 1, added in place when missing.
const COLUMNS: [(&str, &str, &str); 9] = [
    ("runs", "allow_over_limit", "BIGINT NOT NULL DEFAULT 0"),
    ("runs", "results", "TEXT"),
    ("runs", "filed", "BIGINT NOT NULL DEFAULT 0"),
    ("runs", "submitter", "TEXT"),
    ("runs", "superseded_by", "BIGINT"),
    ("runs", "counts", "TEXT"),
    // `host:pid` of the process that last worked on the run.
    ("runs", "worker", "TEXT"),
    ("run_items", "detail", "TEXT"),
    ("run_items", "approved", "BIGINT NOT NULL DEFAULT 0"),
];

/// Version-1 states and outcomes as version-2 states (`filed` says whether
/// the daemon has moved the files).
const STATES: [&str; 8] = [
    "UPDATE runs SET filed = 1 WHERE state = 'finished'",
    "UPDATE runs SET state = 'running' WHERE state = 'applying'",
    "UPDATE runs SET state = 'done' WHERE state IN ('done', 'finished') AND outcome = 'applied'",
    "UPDATE runs SET state = 'rejected' WHERE state IN ('done', 'finished') AND outcome = 'rejected'",
    "UPDATE runs SET state = 'duplicate' WHERE state IN ('done', 'finished') AND outcome = 'duplicate'",
    "UPDATE runs SET state = 'abandoned' WHERE state IN ('done', 'finished') AND outcome = 'abandoned'",
    "UPDATE runs SET state = 'done' WHERE state = 'finished'",
    "UPDATE runs SET outcome = NULL",
];

/// Create the tables, or upgrade a journal an earlier dirsync wrote.
pub(super) async fn create_or_upgrade(pool: &AnyPool) -> Result<(), sqlx::Error> {
    // An existing runs table without a version is a version-1 journal.
    let had_runs = sqlx::query("SELECT COUNT(*) FROM runs").fetch_one(pool).await.is_ok();
    let had_meta = matches!(
        sqlx::query("SELECT version FROM journal_meta")
            .fetch_optional(pool)
            .await,
        Ok(Some(_))
    );
    for stmt in TABLES {
        sqlx::query(stmt).execute(pool).await?;
    }
    super::schedule::create(pool).await?;
    super::activation::create_table(pool).await?;
    for (table, column, ddl) in COLUMNS {
        let present = sqlx::query(&format!("SELECT {column} FROM {table} LIMIT 1"))
            .fetch_optional(pool)
            .await
            .is_ok();
        if !present {
            sqlx::query(&format!("ALTER TABLE {table} ADD COLUMN {column} {ddl}"))
                .execute(pool)
                .await?;
        }
    }
    if had_meta {
        return Ok(());
    }
    let mut tx = pool.begin().await?;
    if had_runs {
        for stmt in STATES {
            sqlx::query(stmt).execute(&mut *tx).await?;
        }
    }
    sqlx::query(&format!("INSERT INTO journal_meta (version) VALUES ({VERSION})"))
        .execute(&mut *tx)
        .await?;
    tx.commit().await
}
