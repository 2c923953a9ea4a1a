//! `dirsync serve`'s HTTP side: `/healthz`, `/readyz` and `/metrics`
//! (Prometheus). It reads the journal and the outbox and asks each target's
//! health check; it never writes and never blocks a run.
//!
//! - [`config`]: the `[http]` section.
//! - [`health`]: `/healthz` and `/readyz`, as JSON.
//! - [`metrics`]: `/metrics`, from the journal and the outbox at each scrape.

pub mod config;
mod health;
mod metrics;

use std::future::Future;
use std::sync::Arc;

use axum::routing::get;
use axum::Router;

pub use config::HttpConfig;

use crate::config::Config;
use crate::journal::Journal;
use crate::mail::Outbox;

/// What the endpoints read.
#[derive(Clone)]
pub struct Sources {
    pub journal: Journal,
    pub outbox: Option<Outbox>,
    /// The config in force (the daemon reloads it on SIGHUP).
    pub config: Arc<dyn Fn() -> Arc<Config> + Send + Sync>,
    /// Unix milliseconds when the daemon started.
    pub started_ms: i64,
    /// The targets' health, checked at most every 30 s.
    pub health: Arc<health::HealthCache>,
}

impl Sources {
    pub fn new(
        journal: Journal,
        outbox: Option<Outbox>,
        config: Arc<dyn Fn() -> Arc<Config> + Send + Sync>,
        started_ms: i64,
    ) -> Sources {
        Sources {
            journal,
            outbox,
            config,
            started_ms,
            health: Arc::new(health::HealthCache::default()),
        }
    }
}

/// The routes.
pub fn router(src: Sources) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics::metrics))
        .fallback(health::not_found)
        .with_state(src)
}

/// Serve on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    src: Sources,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(src))
        .with_graceful_shutdown(shutdown)
        .await
}
