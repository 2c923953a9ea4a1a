//! `/healthz` (the process answers) and `/readyz` (the journal answers and
//! every target passes its health check; why not, when not), as JSON.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use super::Sources;

/// How long a target's health check may take, and how long its answer is kept.
const CHECK_TIMEOUT: Duration = Duration::from_secs(10);
const KEEP: Duration = Duration::from_secs(30);

/// Each target's health, by target name: `Ok` or why not.
pub type TargetHealth = BTreeMap<String, Result<(), String>>;

/// The targets' last health and when it was checked.
#[derive(Default)]
pub struct HealthCache {
    last: tokio::sync::Mutex<Option<(Instant, TargetHealth)>>,
}

impl HealthCache {
    /// Each configured target's health, checked again when older than 30 s.
    pub async fn targets(&self, src: &Sources) -> TargetHealth {
        let mut last = self.last.lock().await;
        if let Some((at, h)) = last.as_ref() {
            if at.elapsed() < KEEP {
                return h.clone();
            }
        }
        let fresh = check_targets(src).await;
        *last = Some((Instant::now(), fresh.clone()));
        fresh
    }
}

async fn check_targets(src: &Sources) -> TargetHealth {
    let config = (src.config)();
    let mut out = BTreeMap::new();
    for lp in config.policies.values() {
        if out.contains_key(&lp.target) {
            continue;
        }
        let check = async {
            let backend = crate::sync::open_backend(&config, lp)
                .await
                .map_err(|e| e.to_string())?;
            backend.health().await.map_err(|e| e.to_string())
        };
        let result = match tokio::time::timeout(CHECK_TIMEOUT, check).await {
            Ok(r) => r,
            Err(_) => Err(format!("no answer within {} s", CHECK_TIMEOUT.as_secs())),
        };
        out.insert(lp.target.clone(), result);
    }
    out
}

pub async fn healthz(State(src): State<Sources>) -> Json<Value> {
    Json(json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "up_since": crate::clock::timestamp(src.started_ms),
    }))
}

pub async fn readyz(State(src): State<Sources>) -> (StatusCode, Json<Value>) {
    let journal = src.journal.ping().await.map_err(|e| e.to_string());
    let targets = src.health.targets(&src).await;
    let ready = journal.is_ok() && targets.values().all(Result::is_ok);
    let state = |r: &Result<(), String>| match r {
        Ok(()) => json!({"ok": true}),
        Err(why) => json!({"ok": false, "reason": why}),
    };
    let body = json!({
        "ready": ready,
        "journal": state(&journal),
        "targets": targets.iter().map(|(k, v)| (k.clone(), state(v))).collect::<serde_json::Map<_, _>>(),
    });
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body))
}
