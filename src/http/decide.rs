//! Approving or rejecting a held run (operators): the page shows exactly
//! the held changes with their diffs; the POST calls the same approval as
//! `dirsync runs approve`, in the daemon, with the approver's name.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::run::{find, RowView};
use super::runs::{journal_down, who_view, RunView};
use super::session::Who;
use super::{views, Sources};
use crate::core::Class;
use crate::journal::{RowFilter, RunState};
use crate::sync::Approved;

/// Held changes shown on the page (the run page lists them all).
const SHOWN: i64 = 1000;

pub async fn page(State(src): State<Sources>, who: Who, Path(id): Path<i64>) -> Response {
    if let Err(r) = who.need_operator(&src) {
        return *r;
    }
    let run = match find(&src, id).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    if run.state != RunState::AwaitingApproval {
        return views::error_page(
            &src.views,
            StatusCode::CONFLICT,
            "Nothing to approve",
            &format!(
                "Run {id} is {}: it holds nothing waiting for approval.",
                run.state.as_str()
            ),
        );
    }
    let filter = RowFilter {
        held_only: true,
        ..RowFilter::default()
    };
    let held = match src.journal.list_rows(id, &filter, SHOWN, 0).await {
        Ok(h) => h,
        Err(e) => return journal_down(&src, &e),
    };
    let mut classes: Vec<&str> = held
        .items
        .iter()
        .filter_map(|i| i.change.class())
        .map(|c| c.as_str())
        .collect();
    classes.sort();
    classes.dedup();
    let rows: Vec<minijinja::Value> = held
        .items
        .iter()
        .map(|i| {
            let v = RowView::of(i);
            minijinja::context! { class => i.change.class().map(|c| c.as_str()), line => v.line, key => v.key, change => v.change, detail => v.detail }
        })
        .collect();
    let breaches: Vec<String> = run.breaches.iter().map(|b| b.to_string()).collect();
    let more = (held.total > held.items.len() as i64).then(|| held.total - held.items.len() as i64);
    let r = src.views.page(
        StatusCode::OK,
        "approve.html",
        minijinja::context! { who => who_view(&who), run => RunView::of(&run), held => rows, classes, breaches, more },
    );
    who.finish(r)
}

/// The form: its token and the ticked classes (`class=adds&class=deletes`).
pub async fn approve(
    State(src): State<Sources>,
    who: Who,
    Path(id): Path<i64>,
    axum::Form(form): axum::Form<Vec<(String, String)>>,
) -> Response {
    let csrf = form
        .iter()
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.as_str())
        .unwrap_or_default();
    let asked: Vec<&str> = form
        .iter()
        .filter(|(k, _)| k == "class")
        .map(|(_, v)| v.as_str())
        .collect();
    if let Err(r) = who.check_csrf(&src, csrf).and_then(|()| who.need_operator(&src)) {
        return *r;
    }
    let mut classes = Vec::new();
    for a in asked {
        match Class::ALL.into_iter().find(|c| c.as_str() == a) {
            Some(c) => classes.push(c),
            None => {
                return views::error_page(
                    &src.views,
                    StatusCode::BAD_REQUEST,
                    "Bad form",
                    &format!("{a:?} is not a change class"),
                )
            }
        }
    }
    if classes.is_empty() {
        return views::error_page(
            &src.views,
            StatusCode::BAD_REQUEST,
            "Nothing ticked",
            "Tick the classes to approve, or reject the run.",
        );
    }
    let Some(actions) = &src.actions else {
        return views::unavailable(&src.views);
    };
    tracing::info!(user = ?who.name, run_id = id, "Approval from the console.");
    match actions.approve(id, classes, who.name.clone()).await {
        Ok(Approved::Applied(_)) | Ok(Approved::Stopped) => {
            who.finish(Redirect::to(&format!("/runs/{id}")).into_response())
        }
        Ok(Approved::Refused(reasons)) => views::error_page(
            &src.views,
            StatusCode::CONFLICT,
            "Approval refused: nothing written",
            &format!(
                "The plan changed since it was shown: {}. Run the file again (or drop a new one) and approve that run.",
                reasons.join("; ")
            ),
        ),
        Err(e) => views::error_page(&src.views, StatusCode::CONFLICT, "Cannot approve", &e.to_string()),
    }
}

#[derive(Deserialize)]
pub struct RejectForm {
    #[serde(default)]
    csrf: String,
}

pub async fn reject(
    State(src): State<Sources>,
    who: Who,
    Path(id): Path<i64>,
    axum::Form(f): axum::Form<RejectForm>,
) -> Response {
    if let Err(r) = who.check_csrf(&src, &f.csrf).and_then(|()| who.need_operator(&src)) {
        return *r;
    }
    let Some(actions) = &src.actions else {
        return views::unavailable(&src.views);
    };
    tracing::info!(user = ?who.name, run_id = id, "Rejection from the console.");
    match actions.reject(id, who.name.clone()).await {
        Ok(()) => who.finish(Redirect::to(&format!("/runs/{id}")).into_response()),
        Err(e) => views::error_page(&src.views, StatusCode::CONFLICT, "Cannot reject", &e.to_string()),
    }
}
