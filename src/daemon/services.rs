//! The services beside the runs: systemd notifications and its watchdog, the
//! mail sender's turn among daemons, and the web console's listener.

use std::sync::Arc;

use tracing::{debug, error, info, warn};

use super::console;
use super::shared::Shared;
use super::DaemonError;
use crate::clock::now_ms;
use crate::config::Config;

pub(super) fn notify_systemd(states: &[sd_notify::NotifyState<'_>]) {
    // Outside systemd (no NOTIFY_SOCKET) this does nothing.
    if let Err(e) = sd_notify::notify(false, states) {
        debug!(error = %e, "Cannot notify systemd.");
    }
}

/// The watchdog interval systemd asks for (0: none). As sd_watchdog_enabled(3):
/// `WATCHDOG_USEC` set, and `WATCHDOG_PID` unset or ours.
pub(super) fn watchdog_usec() -> u64 {
    let usec = std::env::var("WATCHDOG_USEC").ok().and_then(|s| s.parse::<u64>().ok());
    let pid_ok = match std::env::var("WATCHDOG_PID") {
        Ok(p) => p.parse::<u32>().ok() == Some(std::process::id()),
        Err(_) => true,
    };
    match usec {
        Some(u) if pid_ok => u,
        _ => 0,
    }
}

/// Daemons sharing an outbox send in turn: the holder of the mail lease
/// (taken again by another daemon when it lapses).
pub(super) fn sender_turn(
    leases: Arc<crate::leases::Leases>,
) -> impl Fn() -> futures::future::BoxFuture<'static, bool> {
    move || {
        let leases = Arc::clone(&leases);
        Box::pin(async move {
            match leases.keep(&crate::leases::mail_lease()).await {
                Ok(held) => held,
                Err(e) => {
                    warn!(error = %e, "Cannot take the mail sender's turn (the journal does not answer); trying again.");
                    false
                }
            }
        })
    }
}

/// Listen on `[http] listen` and serve the console, probes and metrics until `stop`.
pub(super) async fn start_http(
    sh: &Arc<Shared>,
    h: &crate::http::HttpConfig,
    stop: Arc<tokio::sync::Notify>,
) -> Result<tokio::task::JoinHandle<()>, DaemonError> {
    let addr = h.addr().map_err(DaemonError::Http)?;
    let listener = std::net::TcpListener::bind(addr).map_err(|e| {
        DaemonError::Http(format!(
            "cannot listen on {addr}: {e}; is another process using the port?"
        ))
    })?;
    let config = {
        let sh = Arc::clone(sh);
        Arc::new(move || sh.config()) as Arc<dyn Fn() -> Arc<Config> + Send + Sync>
    };
    let actions: Arc<dyn crate::http::Actions> = Arc::new(console::Console { sh: Arc::clone(sh) });
    let state_dir = sh.config().service.state_dir.clone();
    let src = crate::http::Sources::new(
        sh.journal.clone(),
        sh.mail.as_ref().map(|m| m.outbox.clone()),
        config,
        now_ms(),
        h,
        &state_dir,
        Some(actions),
    )
    .map_err(DaemonError::Http)?;
    let tls = crate::http::tls_config(h).await.map_err(DaemonError::Http)?;
    let scheme = if h.tls().is_some() { "https" } else { "http" };
    info!(listen = %addr, url = %format!("{scheme}://{addr}/"), "Web console listening (also /healthz, /readyz, /metrics).");
    Ok(tokio::spawn(async move {
        if let Err(e) = crate::http::serve(listener, src, tls, async move { stop.notified().await }).await {
            error!(error = %e, "The web console stopped.");
        }
    }))
}
