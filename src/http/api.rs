//! `/api/v1/…`: the runs and their rows as JSON, the same data as the
//! pages, for scripts (bearer tokens: `dirsync http add-token`) and
//! monitoring. Read-only.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::run::{in_progress, RowQuery, RowView, ROWS_PAGE};
use super::runs::{RunQuery, RunView, PAGE};
use super::session::Who;
use super::Sources;

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({"error": message.into()}))).into_response()
}

fn journal_error(e: &crate::journal::JournalError) -> Response {
    tracing::error!(error = %e, "The API cannot read the journal.");
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "the journal does not answer; /readyz says why",
    )
}

/// `GET /api/v1/runs?inbox=&state=&from=&to=&page=`: newest first, 50 a page.
pub async fn runs(State(src): State<Sources>, _who: Who, Query(q): Query<RunQuery>) -> Response {
    let filter = match q.filter() {
        Ok(f) => f,
        Err(m) => return error(StatusCode::BAD_REQUEST, m),
    };
    let page = q.page();
    match src.journal.list_runs(&filter, PAGE, (page - 1) * PAGE).await {
        Ok(l) => {
            let mut runs: Vec<RunView> = l.items.iter().map(RunView::of).collect();
            super::runs::mark_scheduled(&src.journal, &mut runs).await;
            Json(json!({"total": l.total, "page": page, "per_page": PAGE, "runs": runs})).into_response()
        }
        Err(e) => journal_error(&e),
    }
}

/// `GET /api/v1/runs/ID`: the run, its counts, breaches, decisions and progress.
pub async fn run(State(src): State<Sources>, _who: Who, Path(id): Path<i64>) -> Response {
    let run = match src.journal.run(id).await {
        Ok(Some(r)) => r,
        Ok(None) => return error(StatusCode::NOT_FOUND, format!("run {id} is not in the journal")),
        Err(e) => return journal_error(&e),
    };
    let (counts, progress, decisions) = (
        src.journal.counts(id).await,
        src.journal.progress(id).await,
        src.journal.approvals(id).await,
    );
    let (counts, (done, total), decisions) = match (counts, progress, decisions) {
        (Ok(c), Ok(p), Ok(d)) => (c, p, d),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return journal_error(&e),
    };
    let decisions: Vec<serde_json::Value> = decisions
        .iter()
        .map(|d| {
            json!({
                "decision": d.decision.as_str(),
                "classes": d.classes.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
                "by": d.by,
                "at": crate::clock::timestamp(d.at),
                "note": d.note,
            })
        })
        .collect();
    let mut view = RunView::of(&run);
    super::runs::mark_scheduled(&src.journal, std::slice::from_mut(&mut view)).await;
    let now = crate::clock::now_unix();
    let at = |s: i64| crate::clock::timestamp(s.saturating_mul(1000));
    let activations: Vec<serde_json::Value> = match src.journal.run_activations(id).await {
        Ok(links) => links
            .iter()
            .map(|a| {
                json!({
                    "key": a.user_key,
                    "email": a.email,
                    "state": a.state(now).as_str(),
                    "issued": at(a.issued),
                    "expires": at(a.expires),
                    "used": a.used_at.map(at),
                })
            })
            .collect(),
        Err(e) => return journal_error(&e),
    };
    Json(json!({
        "run": view,
        "in_progress": in_progress(&run),
        "progress": {"rows_done": done, "rows_listed": total},
        "counts": counts,
        "breaches": run.breaches.iter().map(|b| b.to_string()).collect::<Vec<_>>(),
        "decisions": decisions,
        "activations": activations,
    }))
    .into_response()
}

/// `GET /api/v1/runs/ID/rows?errors=1&key=&page=`: 100 a page, in file order.
pub async fn rows(State(src): State<Sources>, _who: Who, Path(id): Path<i64>, Query(q): Query<RowQuery>) -> Response {
    match src.journal.run(id).await {
        Ok(Some(_)) => {}
        Ok(None) => return error(StatusCode::NOT_FOUND, format!("run {id} is not in the journal")),
        Err(e) => return journal_error(&e),
    }
    let page = q.page();
    match src
        .journal
        .list_rows(id, &q.filter(), ROWS_PAGE, (page - 1) * ROWS_PAGE)
        .await
    {
        Ok(p) => {
            let rows: Vec<RowView> = p.items.iter().map(RowView::of).collect();
            Json(json!({"total": p.total, "page": page, "per_page": ROWS_PAGE, "rows": rows})).into_response()
        }
        Err(e) => journal_error(&e),
    }
}
