//! The runs list: newest first, a page at a time, filtered by inbox, state
//! and date; and [`RunView`], a run as every page and the API show it.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};

use super::session::Who;
use super::{views, Sources};
use crate::clock::timestamp;
use crate::journal::{RunFilter, RunRecord, RunState};

/// Runs per page.
pub const PAGE: i64 = 50;

/// A run as shown.
#[derive(Serialize)]
pub struct RunView {
    pub id: i64,
    pub inbox: String,
    pub file_name: String,
    pub state: &'static str,
    pub policy: String,
    pub target: String,
    pub claimed: String,
    pub started: Option<String>,
    pub finished: Option<String>,
    pub summary: String,
    pub note: Option<String>,
    pub submitter: Option<String>,
    pub superseded_by: Option<i64>,
    pub has_results: bool,
    /// `host:pid` of the process that last worked on it.
    pub worker: Option<String>,
    /// A scheduled run (`[lifecycle]`): the run whose file it ran again.
    pub rerun_of: Option<i64>,
}

impl RunView {
    pub fn of(r: &RunRecord) -> RunView {
        RunView {
            id: r.id,
            inbox: r.inbox.clone(),
            file_name: r.file_name.clone(),
            state: r.state.as_str(),
            policy: r.policy.clone(),
            target: r.target.clone(),
            claimed: timestamp(r.claimed_at),
            started: r.started.map(timestamp),
            finished: r.finished.map(timestamp),
            summary: r.summary.clone().unwrap_or_default(),
            note: r.note.clone(),
            submitter: r.submitter.clone(),
            superseded_by: r.superseded_by,
            has_results: r.results.as_ref().is_some_and(|p| p.is_file()),
            worker: r.worker.clone(),
            rerun_of: None,
        }
    }
}

/// Mark the scheduled runs among `runs` (a journal that does not answer
/// leaves them unmarked: the page is still worth showing).
pub async fn mark_scheduled(journal: &crate::journal::Journal, runs: &mut [RunView]) {
    let ids: Vec<i64> = runs.iter().map(|r| r.id).collect();
    let Ok(reruns) = journal.reruns(&ids).await else { return };
    for r in runs.iter_mut() {
        r.rerun_of = reruns.get(&r.id).copied();
    }
}

/// `?inbox=&state=&from=YYYY-MM-DD&to=YYYY-MM-DD&page=N`, as given.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct RunQuery {
    #[serde(default)]
    pub inbox: String,
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub to: String,
    #[serde(default)]
    pub page: Option<i64>,
}

/// Unix ms of a `YYYY-MM-DD` day's start (UTC).
fn day_ms(s: &str) -> Option<i64> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    let d = time::Date::parse(s, &fmt).ok()?;
    Some(d.midnight().assume_utc().unix_timestamp() * 1000)
}

impl RunQuery {
    /// The filter, or what is wrong with the query.
    pub fn filter(&self) -> Result<RunFilter, String> {
        let state = match self.state.as_str() {
            "" => None,
            s => Some(RunState::parse(s).ok_or_else(|| format!("state {s:?} is not a run state"))?),
        };
        let day = |what: &str, s: &str| match s {
            "" => Ok(None),
            s => day_ms(s)
                .map(Some)
                .ok_or_else(|| format!("{what} {s:?} is not a date (YYYY-MM-DD)")),
        };
        Ok(RunFilter {
            inbox: Some(self.inbox.clone()).filter(|i| !i.is_empty()),
            state,
            since_ms: day("from", &self.from)?,
            until_ms: day("to", &self.to)?.map(|t| t + 86_400_000),
        })
    }

    pub fn page(&self) -> i64 {
        self.page.unwrap_or(1).max(1)
    }

    fn link(&self, page: i64) -> String {
        let q = RunQuery {
            page: Some(page),
            ..self.clone()
        };
        format!("/runs?{}", serde_urlencoded::to_string(&q).unwrap_or_default())
    }
}

pub async fn page(State(src): State<Sources>, who: Who, Query(q): Query<RunQuery>) -> Response {
    let filter = match q.filter() {
        Ok(f) => f,
        Err(m) => return views::error_page(&src.views, StatusCode::BAD_REQUEST, "Bad filter", &m),
    };
    let page = q.page();
    let list = match src.journal.list_runs(&filter, PAGE, (page - 1) * PAGE).await {
        Ok(l) => l,
        Err(e) => return journal_down(&src, &e),
    };
    let config = (src.config)();
    let mut inboxes: Vec<String> = config
        .inboxes
        .iter()
        .map(|i| i.name.clone())
        .chain(config.sftp_inboxes.iter().map(|i| i.name.clone()))
        .collect();
    inboxes.push(crate::journal::CLI_INBOX.to_string());
    let first = (page - 1) * PAGE + 1;
    let last = first + list.items.len() as i64 - 1;
    let mut runs: Vec<RunView> = list.items.iter().map(RunView::of).collect();
    mark_scheduled(&src.journal, &mut runs).await;
    let states: Vec<&str> = RunState::ALL.iter().map(|s| s.as_str()).collect();
    let r = src.views.page(
        StatusCode::OK,
        "runs.html",
        minijinja::context! {
            who => who_view(&who), runs, total => list.total, first, last, inboxes, states, f => &q,
            prev => (page > 1).then(|| q.link(page - 1)),
            next => (last < list.total).then(|| q.link(page + 1)),
        },
    );
    who.finish(r)
}

/// The caller, as templates use it.
pub fn who_view(w: &Who) -> minijinja::Value {
    minijinja::context! { name => w.name, role => w.role.as_str(), operator => w.operator(), csrf => w.csrf }
}

/// The journal did not answer.
pub fn journal_down(src: &Sources, e: &crate::journal::JournalError) -> Response {
    tracing::error!(error = %e, "The console cannot read the journal.");
    views::error_page(
        &src.views,
        StatusCode::SERVICE_UNAVAILABLE,
        "The journal does not answer",
        "dirsync cannot read its journal right now; /readyz says why. Try again in a moment.",
    )
}
