//! One run: its summary, breaches, decisions, and its rows a page at a time
//! ("show only errors", search by key); the results CSV for everyone, the
//! original file for operators. A run in progress reloads itself.

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::runs::{journal_down, who_view, RunView};
use super::session::Who;
use super::{views, Sources};
use crate::journal::{ItemId, ItemRecord, RowFilter, RunRecord, RunState};

/// Rows per page.
pub const ROWS_PAGE: i64 = 100;

/// `?errors=1&key=…&page=N`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct RowQuery {
    #[serde(default)]
    pub errors: Option<String>,
    #[serde(default)]
    pub key: String,
    #[serde(default)]
    pub page: Option<i64>,
}

impl RowQuery {
    pub fn filter(&self) -> RowFilter {
        RowFilter {
            problems_only: self.errors.as_deref().is_some_and(|e| !e.is_empty() && e != "0"),
            held_only: false,
            key: Some(self.key.trim().to_string()).filter(|k| !k.is_empty()),
        }
    }

    pub fn page(&self) -> i64 {
        self.page.unwrap_or(1).max(1)
    }
}

/// A row as shown.
#[derive(Serialize)]
pub struct RowView {
    pub line: Option<i64>,
    pub key: String,
    pub change: &'static str,
    pub verdict: &'static str,
    pub detail: String,
    pub message: String,
    pub absent: bool,
}

impl RowView {
    pub fn of(i: &ItemRecord) -> RowView {
        RowView {
            line: i.line,
            key: i.user_key.clone().unwrap_or_default(),
            change: i.change.as_str(),
            verdict: i.verdict.map(|v| v.as_str()).unwrap_or(""),
            detail: i.detail.clone().unwrap_or_default(),
            message: i.message.clone().unwrap_or_default(),
            absent: matches!(i.id, ItemId::Absent(_)),
        }
    }
}

/// The run's record, or the page that says it is not there.
pub async fn find(src: &Sources, id: i64) -> Result<RunRecord, Response> {
    match src.journal.run(id).await {
        Ok(Some(r)) => Ok(r),
        Ok(None) => Err(views::error_page(
            &src.views,
            StatusCode::NOT_FOUND,
            "No such run",
            &format!("Run {id} is not in the journal. The runs list is at /runs."),
        )),
        Err(e) => Err(journal_down(src, &e)),
    }
}

/// Still changing: the page reloads itself.
pub fn in_progress(r: &RunRecord) -> bool {
    matches!(r.state, RunState::Claimed | RunState::Running) || (r.state == RunState::Preview && r.finished.is_none())
}

pub async fn page(State(src): State<Sources>, who: Who, Path(id): Path<i64>, Query(q): Query<RowQuery>) -> Response {
    let run = match find(&src, id).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let page = q.page();
    let rows = src
        .journal
        .list_rows(id, &q.filter(), ROWS_PAGE, (page - 1) * ROWS_PAGE)
        .await;
    let (progress, decisions) = (src.journal.progress(id).await, src.journal.approvals(id).await);
    let (rows, (done, total), decisions) = match (rows, progress, decisions) {
        (Ok(r), Ok(p), Ok(d)) => (r, p, d),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return journal_down(&src, &e),
    };
    let link = |p: i64| {
        let q = RowQuery {
            page: Some(p),
            ..q.clone()
        };
        format!("/runs/{id}?{}", serde_urlencoded::to_string(&q).unwrap_or_default())
    };
    let first = (page - 1) * ROWS_PAGE + 1;
    let last = first + rows.items.len() as i64 - 1;
    let items: Vec<RowView> = rows.items.iter().map(RowView::of).collect();
    let running = in_progress(&run);
    let decisions: Vec<String> = decisions
        .iter()
        .map(|d| {
            let classes: Vec<&str> = d.classes.iter().map(|c| c.as_str()).collect();
            format!(
                "{} {} by {} at {}{}",
                d.decision.as_str(),
                classes.join(", "),
                d.by,
                crate::clock::timestamp(d.at),
                d.note.as_deref().map(|n| format!(": {n}")).unwrap_or_default()
            )
        })
        .collect();
    let breaches: Vec<String> = run.breaches.iter().map(|b| b.to_string()).collect();
    let mails: Vec<minijinja::Value> = match &src.outbox {
        Some(o) => o
            .for_run(id)
            .await
            .unwrap_or_default()
            .iter()
            .map(|m| {
                minijinja::context! {
                    kind => m.kind, to => m.recipients.join(", "), state => m.state,
                    sent => m.sent_at.map(|s| crate::clock::timestamp(s * 1000)),
                }
            })
            .collect(),
        None => Vec::new(),
    };
    let held_by = src.journal.run_holder(id).await.ok().flatten();
    let now = crate::clock::now_unix();
    let activations: Vec<minijinja::Value> = src
        .journal
        .run_activations(id)
        .await
        .unwrap_or_default()
        .iter()
        .map(|a| {
            let state = a.state(now);
            minijinja::context! {
                key => a.user_key, email => a.email, state => state.as_str(),
                expires => crate::clock::timestamp(a.expires.saturating_mul(1000)),
                used => a.used_at.map(|s| crate::clock::timestamp(s.saturating_mul(1000))),
                resend => matches!(state, crate::journal::ActivationState::Pending | crate::journal::ActivationState::Expired),
            }
        })
        .collect();
    let can_apply = who.operator() && run.state == RunState::Preview && run.finished.is_some() && src.actions.is_some();
    let mut view = RunView::of(&run);
    super::runs::mark_scheduled(&src.journal, std::slice::from_mut(&mut view)).await;
    let r = src.views.page(
        StatusCode::OK,
        "run.html",
        minijinja::context! {
            who => who_view(&who), run => view, running, done, total, breaches, decisions, can_apply, mails, held_by, activations,
            refresh => running.then_some(2),
            rows => minijinja::context! {
                items, total => rows.total, first, last, errors => q.filter().problems_only, key => q.key,
                prev => (page > 1).then(|| link(page - 1)),
                next => (last < rows.total).then(|| link(page + 1)),
            },
        },
    );
    who.finish(r)
}

/// Send a file of the run as a download.
fn download(src: &Sources, path: Option<&std::path::Path>, name: &str, what: &str) -> Response {
    let Some(path) = path else {
        return views::error_page(
            &src.views,
            StatusCode::NOT_FOUND,
            "No file",
            &format!("This run has no {what}."),
        );
    };
    match std::fs::read(path) {
        Ok(bytes) => {
            let safe: String = name
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || ".-_".contains(c) {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            (
                [
                    (header::CONTENT_TYPE, "application/octet-stream".to_string()),
                    (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{safe}\"")),
                ],
                bytes,
            )
                .into_response()
        }
        Err(e) => views::error_page(
            &src.views,
            StatusCode::NOT_FOUND,
            "File not readable",
            &format!(
                "The {what} of this run cannot be read ({}): it may have been moved or cleaned up.",
                e.kind()
            ),
        ),
    }
}

pub async fn results(State(src): State<Sources>, who: Who, Path(id): Path<i64>) -> Response {
    let run = match find(&src, id).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let name = format!("run-{id}-results.csv");
    who.finish(download(&src, run.results.as_deref(), &name, "results file"))
}

pub async fn original(State(src): State<Sources>, who: Who, Path(id): Path<i64>) -> Response {
    if let Err(r) = who.need_operator(&src) {
        return *r;
    }
    let run = match find(&src, id).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    tracing::info!(user = ?who.name, run_id = id, "Original file downloaded from the console.");
    who.finish(download(&src, Some(run.file_path()), &run.file_name, "original file"))
}
