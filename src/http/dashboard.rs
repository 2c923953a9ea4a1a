//! The dashboard: how long the daemon has been up, runs awaiting approval
//! first, runs in progress with rows done / total and the daemon holding
//! each, each inbox with its last run and next poll, the daemons sharing the
//! journal with what each holds, and the outbox.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use super::runs::{journal_down, who_view, RunView};
use super::session::Who;
use super::Sources;
use crate::clock::timestamp;
use crate::journal::RunState;

pub async fn page(State(src): State<Sources>, who: Who) -> Response {
    let waiting = src.journal.runs_in(&[RunState::AwaitingApproval], 100).await;
    let active = src.journal.runs_in(&[RunState::Claimed, RunState::Running], 100).await;
    let last = src.journal.last_run_per_inbox().await;
    let (waiting, active, last) = match (waiting, active, last) {
        (Ok(w), Ok(a), Ok(l)) => (w, a, l),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return journal_down(&src, &e),
    };
    // Who holds what: the daemons sharing the journal (their presence).
    let leases: Vec<crate::journal::Lease> = src
        .journal
        .leases()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|l| l.live)
        .collect();
    let holder = |name: &str| leases.iter().find(|l| l.name == name).map(|l| l.owner.clone());
    let mut active_rows = Vec::new();
    for r in &active {
        let (done, total) = src.journal.progress(r.id).await.unwrap_or((0, 0));
        let held_by = holder(&format!("run:{}", r.id));
        active_rows.push(minijinja::context! { id => r.id, inbox => r.inbox, file_name => r.file_name, state => r.state.as_str(), done, total, held_by });
    }
    let daemons: Vec<minijinja::Value> = leases
        .iter()
        .filter_map(|d| d.name.strip_prefix("daemon:").map(|owner| (owner, d)))
        .map(|(owner, d)| {
            let holds: Vec<&str> = leases
                .iter()
                .filter(|l| l.owner == owner && !l.name.starts_with("daemon:"))
                .map(|l| l.name.as_str())
                .collect();
            minijinja::context! { name => owner, until => timestamp(d.until), holds }
        })
        .collect();
    let inboxes: Vec<minijinja::Value> = src
        .actions
        .as_ref()
        .map(|a| a.inboxes())
        .unwrap_or_default()
        .into_iter()
        .map(|i| {
            let last = last.iter().find(|r| r.inbox == i.name).map(|r| {
                minijinja::context! { id => r.id, state => r.state.as_str(), when => timestamp(r.finished.unwrap_or(r.claimed_at)) }
            });
            minijinja::context! { name => i.name, kind => i.kind, policy => i.policy, last, next_poll => i.next_poll_ms.map(timestamp) }
        })
        .collect();
    let (mut pending, mut failed, mut oldest) = (0, 0, None);
    if let Some(o) = &src.outbox {
        if let Ok((counts, old)) = o.counts().await {
            for (state, n) in counts {
                match state.as_str() {
                    "pending" | "sending" => pending += n,
                    "failed" => failed += n,
                    _ => {}
                }
            }
            oldest = old.map(|s| timestamp(s * 1000));
        }
    }
    let waiting: Vec<RunView> = waiting.iter().map(RunView::of).collect();
    let r = src.views.page(
        StatusCode::OK,
        "dashboard.html",
        minijinja::context! {
            who => who_view(&who), up_since => timestamp(src.started_ms), waiting, active => active_rows, inboxes, daemons,
            outbox_pending => pending, outbox_failed => failed, outbox_oldest => oldest,
            refresh => (!active.is_empty()).then_some(5),
        },
    );
    who.finish(r)
}
