//! Logging in and out. The login form carries its own CSRF token (in a
//! sealed cookie); failures are limited per client address and per user
//! name; the password is checked with argon2 off the async threads and never
//! logged.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;

use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use super::auth::{constant_time_eq, new_session};
use super::session::{self, random_token, Who, LOGIN_COOKIE, SESSION_COOKIE};
use super::Sources;
use crate::clock::now_ms;

/// Failed logins allowed per address and per user name in [`WINDOW_MS`].
const MAX_FAILURES: usize = 5;
const WINDOW_MS: i64 = 5 * 60 * 1000;

/// Recent login failures by client address and by user name.
#[derive(Default)]
pub struct Limiter {
    failures: Mutex<HashMap<String, Vec<i64>>>,
}

impl Limiter {
    /// Seconds to wait before `keys` may try again, if any must.
    pub fn wait(&self, keys: &[String], now: i64) -> Option<i64> {
        let mut f = match self.failures.lock() {
            Ok(f) => f,
            Err(p) => p.into_inner(),
        };
        let mut wait = None;
        for k in keys {
            if let Some(times) = f.get_mut(k) {
                times.retain(|t| now - t < WINDOW_MS);
                if times.len() >= MAX_FAILURES {
                    let oldest = times.iter().min().copied().unwrap_or(now);
                    let w = (oldest + WINDOW_MS - now) / 1000 + 1;
                    wait = Some(wait.map_or(w, |x: i64| x.max(w)));
                }
            }
        }
        wait
    }

    pub fn failed(&self, keys: &[String], now: i64) {
        let mut f = match self.failures.lock() {
            Ok(f) => f,
            Err(p) => p.into_inner(),
        };
        // Bounded: forget everyone whose failures are old.
        if f.len() > 10_000 {
            f.retain(|_, t| t.iter().any(|t| now - t < WINDOW_MS));
        }
        for k in keys {
            f.entry(k.clone()).or_default().push(now);
        }
    }
}

#[derive(Serialize, Deserialize)]
struct LoginToken {
    c: String,
    e: i64,
}

#[derive(Deserialize)]
pub struct Next {
    #[serde(default)]
    next: Option<String>,
}

/// Only a local path is a place to go after login.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_string(),
        _ => "/".into(),
    }
}

fn form_page(src: &Sources, status: StatusCode, next: &str, message: Option<&str>) -> Response {
    let csrf = random_token();
    let sealed = session::seal(
        &src.key,
        &LoginToken {
            c: csrf.clone(),
            e: now_ms() + 3_600_000,
        },
    )
    .unwrap_or_default();
    let mut r = src
        .views
        .page(status, "login.html", minijinja::context! { csrf, next, message });
    let cookie = session::set_cookie(LOGIN_COOKIE, &sealed, 3600, src.http.tls().is_some());
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

pub async fn form(State(src): State<Sources>, Query(q): Query<Next>) -> Response {
    form_page(&src, StatusCode::OK, &safe_next(q.next.as_deref()), None)
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    next: Option<String>,
    #[serde(default)]
    user: String,
    #[serde(default)]
    password: String,
}

pub async fn submit(
    State(src): State<Sources>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    let next = safe_next(f.next.as_deref());
    let token: Option<LoginToken> = session::cookie(&headers, LOGIN_COOKIE).and_then(|v| session::open(&src.key, v));
    let now = now_ms();
    let token_ok =
        token.is_some_and(|t| t.e > now && !f.csrf.is_empty() && constant_time_eq(t.c.as_bytes(), f.csrf.as_bytes()));
    if !token_ok {
        return form_page(
            &src,
            StatusCode::FORBIDDEN,
            &next,
            Some("The login form had expired or came from elsewhere; log in again on this page."),
        );
    }
    let user = f.user.trim().to_string();
    let keys = [format!("addr:{}", peer.ip()), format!("user:{}", user.to_lowercase())];
    if let Some(wait) = src.limiter.wait(&keys, now) {
        warn!(user = ?user, client = %peer.ip(), "Console login refused: too many failed attempts.");
        let msg = format!("Too many failed logins; try again in {wait} seconds.");
        let mut r = form_page(&src, StatusCode::TOO_MANY_REQUESTS, &next, Some(&msg));
        if let Ok(v) = HeaderValue::from_str(&wait.to_string()) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return r;
    }
    let users = src.users.get();
    let password = f.password;
    let checked =
        tokio::task::spawn_blocking(move || users.check_password(&user, &password).map(|u| (u.name.clone(), u.role)))
            .await
            .ok()
            .flatten();
    match checked {
        Some((name, role)) => {
            info!(user = ?name, role = role.as_str(), client = %peer.ip(), "Console login.");
            let mut r = Redirect::to(&next).into_response();
            if let Some(c) = new_session(&src, &name, role).and_then(|c| HeaderValue::from_str(&c).ok()) {
                r.headers_mut().append(header::SET_COOKIE, c);
            }
            r
        }
        None => {
            src.limiter.failed(&keys, now);
            warn!(user = ?f.user.trim(), client = %peer.ip(), "Console login failed.");
            form_page(
                &src,
                StatusCode::UNAUTHORIZED,
                &next,
                Some("Wrong user name or password."),
            )
        }
    }
}

#[derive(Deserialize)]
pub struct LogoutForm {
    #[serde(default)]
    csrf: String,
}

pub async fn logout(State(src): State<Sources>, who: Who, Form(f): Form<LogoutForm>) -> Response {
    if let Err(r) = who.check_csrf(&src, &f.csrf) {
        return *r;
    }
    info!(user = ?who.name, "Console logout.");
    let mut r = Redirect::to("/login").into_response();
    let gone = session::set_cookie(SESSION_COOKIE, "", 0, src.http.tls().is_some());
    if let Ok(v) = HeaderValue::from_str(&gone) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limiter_stops_the_sixth_failure_within_the_window() {
        let l = Limiter::default();
        let keys = ["addr:127.0.0.1".to_string(), "user:alice".to_string()];
        for i in 0..MAX_FAILURES as i64 {
            assert_eq!(l.wait(&keys, 1_000 + i), None);
            l.failed(&keys, 1_000 + i);
        }
        assert!(l.wait(&keys, 2_000).is_some_and(|w| w > 0 && w <= 300));
        assert_eq!(l.wait(&["user:bob".into()], 2_000), None);
        assert_eq!(l.wait(&keys, 1_000 + WINDOW_MS + 10), None, "failures expire");
    }

    #[test]
    fn only_local_paths_are_followed_after_login() {
        assert_eq!(safe_next(Some("/runs/3")), "/runs/3");
        assert_eq!(safe_next(Some("//evil.example/")), "/");
        assert_eq!(safe_next(Some("https://evil.example/")), "/");
        assert_eq!(safe_next(None), "/");
    }
}
