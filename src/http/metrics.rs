//! `/metrics`: the journal and the outbox in Prometheus (OpenMetrics text)
//! form, read at each scrape, so the numbers are the journal's — also those
//! of runs made from the command line or by another process.
//!
//! - `dirsync_runs_total{inbox,state}` — runs in the journal
//! - `dirsync_rows_total{change}`, `dirsync_row_results_total{result}` — rows of the runs that ended
//! - `dirsync_run_duration_seconds` — histogram, start to end of each run
//! - `dirsync_last_success_timestamp_seconds{inbox}` — end of the newest `done` run
//! - `dirsync_held_changes` — changes waiting for approval
//! - `dirsync_outbox_mails{state}`, `dirsync_outbox_oldest_pending_timestamp_seconds`
//! - `dirsync_target_up{target}` — 1 when the target's health check passes
//! - `dirsync_start_time_seconds`, `dirsync_build_info{version}`

use std::sync::atomic::AtomicU64;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::Sources;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RunLabels {
    inbox: String,
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct One {
    name: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;

const DURATION_BUCKETS: [f64; 9] = [1.0, 5.0, 15.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 14400.0];

fn family<M: prometheus_client::metrics::TypedMetric + Default + Clone + std::fmt::Debug + Send + Sync + 'static>(
    registry: &mut Registry,
    name: &str,
    help: &str,
) -> Family<One, M>
where
    Family<One, M>: prometheus_client::encoding::EncodeMetric,
{
    let f = Family::<One, M>::default();
    registry.register(name, help, f.clone());
    f
}

fn label(name: &str) -> One {
    One { name: name.to_string() }
}

pub async fn metrics(State(src): State<Sources>) -> Response {
    match render(&src).await {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("metrics unavailable: {why}\n")).into_response(),
    }
}

async fn render(src: &Sources) -> Result<String, String> {
    let stats = src.journal.stats().await.map_err(|e| e.to_string())?;
    let mut r = Registry::default();

    let runs = Family::<RunLabels, Counter>::default();
    r.register("dirsync_runs", "Runs in the journal, by inbox and state", runs.clone());
    for ((inbox, state), n) in &stats.runs {
        runs.get_or_create(&RunLabels {
            inbox: inbox.clone(),
            state: state.as_str().to_string(),
        })
        .inc_by(*n);
    }
    let rows: Family<One, Counter> = family(&mut r, "dirsync_rows", "Rows of the runs that ended, by change");
    for (change, n) in &stats.changes {
        rows.get_or_create(&label(change)).inc_by(*n);
    }
    let results: Family<One, Counter> = family(&mut r, "dirsync_row_results", "Rows of the runs that ended, by result");
    for (result, n) in &stats.results {
        results.get_or_create(&label(result)).inc_by(*n);
    }
    let durations = Histogram::new(DURATION_BUCKETS);
    r.register(
        "dirsync_run_duration_seconds",
        "From start to end of each run",
        durations.clone(),
    );
    for d in &stats.durations {
        durations.observe(*d);
    }
    let last: Family<One, FloatGauge> = family(
        &mut r,
        "dirsync_last_success_timestamp_seconds",
        "When the newest done run of each inbox ended",
    );
    for (inbox, at) in &stats.last_success {
        last.get_or_create(&label(inbox)).set(*at);
    }
    let held = Gauge::<i64>::default();
    r.register(
        "dirsync_held_changes",
        "Changes held by a safety limit, waiting for approval",
        held.clone(),
    );
    held.set(i64::try_from(stats.held_waiting).unwrap_or(i64::MAX));

    if let Some(outbox) = &src.outbox {
        let (counts, oldest) = outbox.counts().await.map_err(|e| e.to_string())?;
        let mails: Family<One, Gauge> = family(&mut r, "dirsync_outbox_mails", "Mails in the outbox, by state");
        for (state, n) in &counts {
            mails.get_or_create(&label(state)).set(*n);
        }
        let g = FloatGauge::default();
        r.register(
            "dirsync_outbox_oldest_pending_timestamp_seconds",
            "When the oldest mail still to send was queued (0: none)",
            g.clone(),
        );
        g.set(oldest.unwrap_or(0) as f64);
    }

    let up: Family<One, Gauge> = family(&mut r, "dirsync_target_up", "1 when the target passes its health check");
    for (target, h) in src.health.targets(src).await {
        up.get_or_create(&label(&target)).set(i64::from(h.is_ok()));
    }
    let start = FloatGauge::default();
    r.register(
        "dirsync_start_time_seconds",
        "When this dirsync serve started",
        start.clone(),
    );
    start.set(src.started_ms as f64 / 1000.0);
    let info: Family<One, Gauge> = family(&mut r, "dirsync_build_info", "The version, as the label name");
    info.get_or_create(&label(env!("CARGO_PKG_VERSION"))).set(1);

    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &r).map_err(|e| e.to_string())?;
    Ok(text)
}
