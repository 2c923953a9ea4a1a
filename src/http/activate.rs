//! `/activate/TOKEN`: where a new user chooses their password, from the
//! one-time link in their activation mail. No login: the token is the
//! credential. The form carries its own CSRF token (a sealed cookie bound
//! to the link, as the login form's); attempts are limited per link and
//! per client address; the password goes to the daemon (which sets it in
//! the target) and nowhere else — never logged, never echoed into a page.
//! Operators also resend a link from a run's page (POST with CSRF).

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::{Deserialize, Serialize};
use tracing::warn;

use super::auth::constant_time_eq;
use super::session::{self, random_token, Who};
use super::{views, Sources};
use crate::clock::now_ms;
use crate::core::Secret;
use crate::journal::token_hash;
use crate::sync::activate::{check_link, min_length, ActivateError};

/// The form's own CSRF cookie (a sealed [`FormToken`]).
const ACTIVATE_COOKIE: &str = "dirsync_activate";
/// How long a form may be filled in.
const FORM_MS: i64 = 3_600_000;

#[derive(Serialize, Deserialize)]
struct FormToken {
    /// The CSRF value in the form.
    c: String,
    /// Expiry, Unix ms.
    e: i64,
    /// The link's hash: a form works for its own link only.
    t: String,
}

/// Limiter keys (the login's limiter, in its own names): per client
/// address, counting links that do not exist (someone guessing), and per
/// link, counting failed attempts to set a password with it.
fn keys(token: &str, peer: &SocketAddr) -> [String; 2] {
    [
        format!("activate-addr:{}", peer.ip()),
        format!("activate-link:{}", token_hash(token)),
    ]
}

/// Count a failure: against the address for an unknown link, else the link.
fn failed(src: &Sources, keys: &[String; 2], unknown: bool, now: i64) {
    let k = if unknown { &keys[0] } else { &keys[1] };
    src.limiter.failed(std::slice::from_ref(k), now);
}

/// A page saying why the link does not work (or that it did).
fn message(src: &Sources, status: StatusCode, title: &str, text: &str, done: bool) -> Response {
    src.views.page(
        status,
        "activate.html",
        minijinja::context! { title, message => text, done, form => false },
    )
}

/// The form for `token`, with a fresh CSRF cookie.
fn form_page(src: &Sources, status: StatusCode, token: &str, user: &str, min: usize, error: Option<&str>) -> Response {
    let csrf = random_token();
    let sealed = session::seal(
        &src.key,
        &FormToken {
            c: csrf.clone(),
            e: now_ms() + FORM_MS,
            t: token_hash(token),
        },
    )
    .unwrap_or_default();
    let mut r = src.views.page(
        status,
        "activate.html",
        minijinja::context! {
            title => "Choose your password", form => true, csrf, user, min, error,
            action => format!("/activate/{token}"),
        },
    );
    let cookie = session::set_cookie(ACTIVATE_COOKIE, &sealed, FORM_MS / 1000, src.http.tls().is_some());
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

/// The page for a link that cannot be used, or a failure to set it.
fn refusal(src: &Sources, e: &ActivateError) -> Response {
    let (status, title) = match e {
        ActivateError::Unknown => (StatusCode::NOT_FOUND, "Link not valid"),
        ActivateError::Expired => (StatusCode::GONE, "Link expired"),
        ActivateError::Used => (StatusCode::GONE, "Link already used"),
        ActivateError::Voided => (StatusCode::GONE, "Link replaced"),
        ActivateError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "Not available"),
        ActivateError::NoAccount => (StatusCode::GONE, "No such account"),
        ActivateError::TooShort(_) | ActivateError::Refused(_) => {
            (StatusCode::UNPROCESSABLE_ENTITY, "Password not accepted")
        }
    };
    message(src, status, title, &e.to_string(), false)
}

fn too_many(src: &Sources, wait: i64) -> Response {
    let mut r = message(
        src,
        StatusCode::TOO_MANY_REQUESTS,
        "Too many attempts",
        &format!("Too many attempts; try again in {wait} seconds."),
        false,
    );
    if let Ok(v) = HeaderValue::from_str(&wait.to_string()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

pub async fn form(
    State(src): State<Sources>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(token): Path<String>,
) -> Response {
    let keys = keys(&token, &peer);
    let now = now_ms();
    if let Some(wait) = src.limiter.wait(&keys, now) {
        return too_many(&src, wait);
    }
    match check_link(&src.journal, &token).await {
        Ok(rec) => {
            let min = min_length(&(src.config)(), &rec);
            form_page(&src, StatusCode::OK, &token, &rec.user_key, min, None)
        }
        Err(e) => {
            if matches!(e, ActivateError::Unknown) {
                failed(&src, &keys, true, now);
                warn!(client = %peer.ip(), "An unknown activation link was opened.");
            }
            refusal(&src, &e)
        }
    }
}

#[derive(Deserialize)]
pub struct ActivateForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
}

pub async fn submit(
    State(src): State<Sources>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(token): Path<String>,
    headers: HeaderMap,
    Form(f): Form<ActivateForm>,
) -> Response {
    let keys = keys(&token, &peer);
    let now = now_ms();
    if let Some(wait) = src.limiter.wait(&keys, now) {
        warn!(client = %peer.ip(), "Activation refused: too many attempts.");
        return too_many(&src, wait);
    }
    let rec = match check_link(&src.journal, &token).await {
        Ok(r) => r,
        Err(e) => {
            failed(&src, &keys, matches!(e, ActivateError::Unknown), now);
            return refusal(&src, &e);
        }
    };
    let min = min_length(&(src.config)(), &rec);
    let sealed: Option<FormToken> = session::cookie(&headers, ACTIVATE_COOKIE).and_then(|v| session::open(&src.key, v));
    let csrf_ok = sealed.is_some_and(|t| {
        t.e > now
            && !f.csrf.is_empty()
            && constant_time_eq(t.c.as_bytes(), f.csrf.as_bytes())
            && t.t == token_hash(&token)
    });
    let again = |status: StatusCode, why: &str| form_page(&src, status, &token, &rec.user_key, min, Some(why));
    if !csrf_ok {
        return again(
            StatusCode::FORBIDDEN,
            "The form had expired or came from elsewhere; enter your password again on this page.",
        );
    }
    if f.password != f.confirm {
        failed(&src, &keys, false, now);
        return again(
            StatusCode::UNPROCESSABLE_ENTITY,
            "The two passwords are not the same; type the same password twice.",
        );
    }
    let Some(actions) = &src.actions else {
        return views::unavailable(&src.views);
    };
    let password = Secret::new(f.password);
    match actions.activate(&token, &password).await {
        Ok(user) => message(
            &src,
            StatusCode::OK,
            "Your password is set",
            &format!("Your password is set. You can now log in as {user}."),
            true,
        ),
        Err(e) => {
            failed(&src, &keys, false, now);
            match e {
                ActivateError::TooShort(_) | ActivateError::Refused(_) => {
                    again(StatusCode::UNPROCESSABLE_ENTITY, &e.to_string())
                }
                other => refusal(&src, &other),
            }
        }
    }
}

#[derive(Deserialize)]
pub struct ResendForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    key: String,
}

/// An operator mails a new link to one of a run's accounts.
pub async fn resend(State(src): State<Sources>, who: Who, Path(id): Path<i64>, Form(f): Form<ResendForm>) -> Response {
    if let Err(r) = who.need_operator(&src) {
        return *r;
    }
    if let Err(r) = who.check_csrf(&src, &f.csrf) {
        return *r;
    }
    let run = match super::run::find(&src, id).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let Some(actions) = &src.actions else {
        return views::unavailable(&src.views);
    };
    match actions.resend_activation(&run.policy, f.key.trim(), &who.name).await {
        Ok(_) => who.finish(Redirect::to(&format!("/runs/{id}#activations")).into_response()),
        Err(e) => who.finish(views::error_page(
            &src.views,
            StatusCode::CONFLICT,
            "Link not resent",
            &e,
        )),
    }
}
