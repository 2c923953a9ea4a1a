//! `dirsync serve`'s HTTP side: the web console (runs, rows, approvals,
//! uploads), its JSON API, `/healthz`, `/readyz` and `/metrics`. It reads the
//! journal and the outbox; what it changes (an approval, an upload) it asks
//! the daemon to do through [`Actions`], the same calls as the command line.
//!
//! - [`config`]: the `[http]` section; [`users`]: the users file.
//! - `session.rs`, `auth.rs`: who is asking (cookie, bearer token, proxy), CSRF.
//! - `login.rs`: log in and out, rate-limited.
//! - `activate.rs`: `/activate/TOKEN`, where a new user sets a password (no login).
//! - `views.rs`: the pages' templates (embedded) and error pages.
//! - `dashboard.rs`, `runs.rs`, `run.rs`, `decide.rs`, `upload.rs`: pages.
//! - `api.rs`: `/api/v1/…` as JSON.
//! - `health.rs`, `metrics.rs`: probes and Prometheus.

mod activate;
mod api;
mod auth;
pub mod config;
mod dashboard;
mod decide;
mod health;
mod login;
mod metrics;
mod run;
mod runs;
mod session;
mod upload;
pub mod users;
mod views;

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use aes_gcm::Aes256Gcm;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;

pub use config::HttpConfig;

use crate::config::Config;
use crate::core::{Class, Secret};
use crate::journal::Journal;
use crate::mail::Outbox;
use crate::sync::activate::ActivateError;
use crate::sync::{Approved, SyncError};

/// An inbox as the dashboard shows it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct InboxInfo {
    pub name: String,
    /// `folder` or `sftp`.
    pub kind: &'static str,
    pub policy: String,
    /// When an SFTP inbox is polled next (Unix ms); folders are watched.
    pub next_poll_ms: Option<i64>,
}

/// Who uploaded a file, for the run and its results mail.
#[derive(Clone, Debug)]
pub struct Uploader {
    pub name: String,
    pub email: Option<String>,
}

/// What the console asks the daemon to do: the same calls as
/// `dirsync runs approve|reject` and `dirsync check|apply`, under the
/// daemon's per-target lock and with its outbox.
#[async_trait::async_trait]
pub trait Actions: Send + Sync {
    async fn approve(&self, id: i64, classes: Vec<Class>, by: String) -> Result<Approved, SyncError>;
    async fn reject(&self, id: i64, by: String) -> Result<(), SyncError>;
    /// Check an uploaded file (in the spool) against `inbox`'s policy: a
    /// preview run, journaled and driven in the background. Its id.
    async fn preview(&self, inbox: &str, file_name: &str, spooled: &Path, by: &Uploader) -> Result<i64, String>;
    /// Run the file of preview `id` as its inbox's run. The new run's id.
    async fn apply(&self, id: i64, by: &Uploader) -> Result<i64, String>;
    /// The inboxes runs come from.
    fn inboxes(&self) -> Vec<InboxInfo>;
    /// Set the password of the account an activation link names (the
    /// link is used up when it works). The account's key.
    async fn activate(&self, token: &str, password: &Secret) -> Result<String, ActivateError>;
    /// Mail a new activation link to `key` under `policy`, voiding the old
    /// one (as `dirsync activation resend`). Where it went.
    async fn resend_activation(&self, policy: &str, key: &str, by: &str) -> Result<String, String>;
}

/// What the endpoints read and share.
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
    pub users: Arc<users::UsersSource>,
    /// Seals session cookies (`STATE_DIR/http-session.key`).
    pub key: Arc<Aes256Gcm>,
    pub limiter: Arc<login::Limiter>,
    pub actions: Option<Arc<dyn Actions>>,
    pub views: Arc<views::Views>,
    /// Where uploads are spooled: `STATE_DIR/uploads/`.
    pub spool: PathBuf,
    /// `[http]` as started (listen address, TLS, proxy and limits need a restart).
    pub http: Arc<HttpConfig>,
}

impl Sources {
    /// The console's state for `http`, under `state_dir`.
    pub fn new(
        journal: Journal,
        outbox: Option<Outbox>,
        config: Arc<dyn Fn() -> Arc<Config> + Send + Sync>,
        started_ms: i64,
        http: &HttpConfig,
        state_dir: &Path,
        actions: Option<Arc<dyn Actions>>,
    ) -> Result<Sources, String> {
        let key = crate::keyfile::load_or_create(&state_dir.join("http-session.key"), "the console's session key")?;
        let spool = state_dir.join("uploads");
        // Uploads are HR files (a password column, personal data): 0700.
        crate::private_files::create_dir(&spool)
            .map_err(|e| format!("cannot create the upload folder {}: {e}", spool.display()))?;
        let removed = upload::clean_spool(&spool, std::time::SystemTime::now(), upload::SPOOL_KEEP);
        if removed > 0 {
            tracing::info!(removed, folder = ?spool, "Old console uploads removed from the spool.");
        }
        Ok(Sources {
            journal,
            outbox,
            config,
            started_ms,
            health: Arc::new(health::HealthCache::default()),
            users: Arc::new(users::UsersSource::new(http.users_file.clone())),
            key: Arc::new(key),
            limiter: Arc::new(login::Limiter::default()),
            actions,
            views: Arc::new(views::Views::new()?),
            spool,
            http: Arc::new(http.clone()),
        })
    }
}

/// The routes.
pub fn router(src: Sources) -> Router {
    let upload_limit = usize::try_from(src.http.max_upload_bytes()).unwrap_or(usize::MAX);
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics::metrics))
        .route("/login", get(login::form).post(login::submit))
        .route("/logout", post(login::logout))
        .route("/", get(dashboard::page))
        .route("/runs", get(runs::page))
        .route("/runs/{id}", get(run::page))
        .route("/runs/{id}/results.csv", get(run::results))
        .route("/runs/{id}/file", get(run::original))
        .route("/runs/{id}/approve", get(decide::page).post(decide::approve))
        .route("/runs/{id}/reject", post(decide::reject))
        .route("/runs/{id}/apply", post(upload::apply))
        .route("/runs/{id}/activations/resend", post(activate::resend))
        .route("/activate/{token}", get(activate::form).post(activate::submit))
        .route(
            "/upload",
            get(upload::form)
                .post(upload::submit)
                .layer(DefaultBodyLimit::max(upload_limit.saturating_add(64 * 1024))),
        )
        .route("/api/v1/runs", get(api::runs))
        .route("/api/v1/runs/{id}", get(api::run))
        .route("/api/v1/runs/{id}/rows", get(api::rows))
        .route("/static/console.css", get(views::css))
        .fallback(views::not_found)
        .layer(axum::middleware::map_response_with_state(
            src.clone(),
            views::plain_errors,
        ))
        .layer(axum::middleware::map_response(views::security_headers))
        .with_state(src)
}

/// The TLS setup `[http]` asks for: `None` without `tls_cert`, or why the
/// certificate or key cannot be used.
pub async fn tls_config(h: &HttpConfig) -> Result<Option<axum_server::tls_rustls::RustlsConfig>, String> {
    let Some((cert, key)) = h.tls() else {
        return Ok(None);
    };
    axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key)
        .await
        .map(Some)
        .map_err(|e| {
            format!(
                "tls_cert {} / tls_key {}: {e}; give a PEM certificate chain and its private key",
                cert.display(),
                key.display()
            )
        })
}

/// Serve on `listener` (over `tls` when given) until `shutdown` completes.
pub async fn serve(
    listener: std::net::TcpListener,
    src: Sources,
    tls: Option<axum_server::tls_rustls::RustlsConfig>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(src).into_make_service_with_connect_info::<SocketAddr>();
    let handle = axum_server::Handle::new();
    let h = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        h.graceful_shutdown(Some(std::time::Duration::from_secs(10)));
    });
    match tls {
        Some(tls) => {
            axum_server::from_tcp_rustls(listener, tls)?
                .handle(handle)
                .serve(app)
                .await
        }
        None => axum_server::from_tcp(listener)?.handle(handle).serve(app).await,
    }
}
