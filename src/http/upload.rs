//! Upload → check → apply (operators), the seeds' validate-then-create:
//! the file is streamed to the spool (bounded, never held in memory),
//! checked as a preview run of the chosen inbox's policy, and on "Apply"
//! run as that inbox's run — same journal, limits and results mail (to the
//! inbox's submitter and the uploader).

use axum::extract::multipart::{Field, MultipartError};
use axum::extract::{Multipart, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;
use tokio::io::AsyncWriteExt;

use super::runs::who_view;
use super::session::{random_token, Who};
use super::{views, Sources, Uploader};

fn form_page(src: &Sources, who: &Who, status: StatusCode, message: Option<&str>) -> Response {
    let inboxes = src.actions.as_ref().map(|a| a.inboxes()).unwrap_or_default();
    src.views.page(
        status,
        "upload.html",
        minijinja::context! { who => who_view(who), inboxes, message, max_mb => src.http.max_upload_mb },
    )
}

pub async fn form(State(src): State<Sources>, who: Who) -> Response {
    if let Err(r) = who.need_operator(&src) {
        return *r;
    }
    let r = form_page(&src, &who, StatusCode::OK, None);
    who.finish(r)
}

/// The name an uploaded file keeps: its last path part, in safe characters.
fn safe_name(name: &str) -> Option<String> {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("").trim();
    let clean: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let clean = clean.trim_start_matches('.').to_string();
    (!clean.is_empty() && clean.len() <= 200).then_some(clean)
}

/// Why an upload failed: the status and what the page says.
type Refused = (StatusCode, String);

fn too_large(src: &Sources) -> Refused {
    (
        StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            "The file is larger than {} MB ([http] max_upload_mb); split it, or raise the limit.",
            src.http.max_upload_mb
        ),
    )
}

fn broken(e: &MultipartError) -> Refused {
    (
        e.status(),
        format!("The upload did not arrive whole ({}); try again.", e.body_text()),
    )
}

/// Stream the file field to `spool/RANDOM/NAME`, at most the configured size.
async fn spool(src: &Sources, mut field: Field<'_>) -> Result<(String, std::path::PathBuf), Refused> {
    let name = field
        .file_name()
        .and_then(safe_name)
        .ok_or_else(|| (StatusCode::BAD_REQUEST, "Choose a file to upload.".into()))?;
    let dir = src.spool.join(random_token());
    let path = dir.join(&name);
    let io = |e: std::io::Error| {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("The upload cannot be spooled: {e}"),
        )
    };
    crate::private_files::create_dir(&dir).map_err(io)?;
    // 0600: an HR file may carry passwords.
    let mut out = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .await
        .map_err(io)?;
    let max = src.http.max_upload_bytes();
    let mut size = 0u64;
    let result = loop {
        match field.chunk().await {
            Ok(Some(bytes)) => {
                size += bytes.len() as u64;
                if size > max {
                    break Err(too_large(src));
                }
                if let Err(e) = out.write_all(&bytes).await {
                    break Err(io(e));
                }
            }
            Ok(None) => break out.sync_all().await.map_err(io),
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => break Err(too_large(src)),
            Err(e) => break Err(broken(&e)),
        }
    };
    match result {
        Ok(()) if size == 0 => {
            let _ = tokio::fs::remove_dir_all(&dir).await;
            Err((StatusCode::BAD_REQUEST, format!("{name} is empty.")))
        }
        Ok(()) => Ok((name, path)),
        Err(e) => {
            let _ = tokio::fs::remove_dir_all(&dir).await;
            Err(e)
        }
    }
}

/// Uploads older than this are removed from the spool when the console
/// starts (a preview not applied by then is stale; an applied file was
/// copied into its inbox).
pub const SPOOL_KEEP: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);

/// Remove spooled uploads last changed before `now - keep`; how many.
pub fn clean_spool(spool: &std::path::Path, now: std::time::SystemTime, keep: std::time::Duration) -> usize {
    let Ok(entries) = std::fs::read_dir(spool) else {
        return 0;
    };
    let mut removed = 0;
    for e in entries.flatten() {
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|m| now.duration_since(m).ok())
            .is_some_and(|age| age > keep);
        if old && e.file_type().is_ok_and(|t| t.is_dir()) && std::fs::remove_dir_all(e.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// The uploader, with the mail address the users file gives them.
fn uploader(src: &Sources, who: &Who) -> Uploader {
    let users = src.users.get();
    Uploader {
        name: who.name.clone(),
        email: users
            .users
            .iter()
            .find(|u| u.name == who.name)
            .and_then(|u| u.email.clone()),
    }
}

pub async fn submit(State(src): State<Sources>, who: Who, mut form: Multipart) -> Response {
    if let Err(r) = who.need_operator(&src) {
        return *r;
    }
    // The CSRF token comes first (the form puts it first): nothing is
    // spooled for a forged request.
    let first = match form.next_field().await {
        Ok(Some(f)) if f.name() == Some("csrf") => f.text().await.unwrap_or_default(),
        _ => String::new(),
    };
    if let Err(r) = who.check_csrf(&src, &first) {
        return *r;
    }
    let mut inbox = None;
    let mut file = None;
    loop {
        match form.next_field().await {
            Ok(Some(f)) => match f.name() {
                Some("inbox") => inbox = f.text().await.ok(),
                Some("file") => match spool(&src, f).await {
                    Ok(x) => file = Some(x),
                    Err((s, m)) => return who.finish(form_page(&src, &who, s, Some(&m))),
                },
                _ => {}
            },
            Ok(None) => break,
            Err(e) => {
                let (s, m) = if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    too_large(&src)
                } else {
                    broken(&e)
                };
                return who.finish(form_page(&src, &who, s, Some(&m)));
            }
        }
    }
    let (Some(inbox), Some((name, path))) = (inbox, file) else {
        return who.finish(form_page(
            &src,
            &who,
            StatusCode::BAD_REQUEST,
            Some("Choose an inbox and a file."),
        ));
    };
    let Some(actions) = &src.actions else {
        return views::unavailable(&src.views);
    };
    tracing::info!(user = ?who.name, inbox = ?inbox, file = ?name, "File uploaded in the console; checking it.");
    match actions.preview(&inbox, &name, &path, &uploader(&src, &who)).await {
        Ok(id) => who.finish(Redirect::to(&format!("/runs/{id}")).into_response()),
        Err(m) => {
            if let Some(dir) = path.parent() {
                let _ = tokio::fs::remove_dir_all(dir).await;
            }
            who.finish(form_page(&src, &who, StatusCode::BAD_REQUEST, Some(&m)))
        }
    }
}

#[derive(Deserialize)]
pub struct ApplyForm {
    #[serde(default)]
    csrf: String,
}

pub async fn apply(State(src): State<Sources>, who: Who, Path(id): Path<i64>, Form(f): Form<ApplyForm>) -> Response {
    if let Err(r) = who.check_csrf(&src, &f.csrf).and_then(|()| who.need_operator(&src)) {
        return *r;
    }
    let Some(actions) = &src.actions else {
        return views::unavailable(&src.views);
    };
    tracing::info!(user = ?who.name, preview = id, "Apply from the console.");
    match actions.apply(id, &uploader(&src, &who)).await {
        Ok(new) => who.finish(Redirect::to(&format!("/runs/{new}")).into_response()),
        Err(m) => views::error_page(&src.views, StatusCode::CONFLICT, "Cannot apply", &m),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_uploads_leave_the_spool_and_new_ones_stay() {
        let dir = tempfile::tempdir().unwrap(); // ok: test
        std::fs::create_dir_all(dir.path().join("abc")).unwrap(); // ok: test
        std::fs::write(dir.path().join("abc/staff.csv"), "x").unwrap(); // ok: test
        let now = std::time::SystemTime::now();
        assert_eq!(clean_spool(dir.path(), now, SPOOL_KEEP), 0);
        let later = now + SPOOL_KEEP + std::time::Duration::from_secs(60);
        assert_eq!(clean_spool(dir.path(), later, SPOOL_KEEP), 1);
        assert!(!dir.path().join("abc").exists());
    }

    #[test]
    fn uploaded_names_lose_their_folders_and_odd_characters() {
        assert_eq!(
            safe_name("C:\\Users\\hr\\staff 2026.csv").as_deref(),
            Some("staff_2026.csv")
        );
        assert_eq!(safe_name("../../etc/passwd").as_deref(), Some("passwd"));
        assert_eq!(safe_name("..").as_deref(), None);
        assert_eq!(safe_name("").as_deref(), None);
    }
}
