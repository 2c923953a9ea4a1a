//! Every route but the probes needs a caller: [`Who`] as an extractor finds
//! one (trusted proxy headers, bearer token, session cookie) or answers for
//! the handler — a login page for a browser, 401 JSON for the API. Roles and
//! CSRF are checked here too, so a handler cannot forget them.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use serde_json::json;

use super::session::{self, random_token, SessionData, Via, Who};
use super::users::Role;
use super::{views, Sources};
use crate::clock::now_ms;

/// Why a request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// Nobody logged in (401).
    NoLogin,
    /// Logged in, but the role may not (403).
    Role,
    /// A POST without the form's CSRF token, or with another one (403).
    Csrf,
    /// From an address the console does not serve (403).
    Address,
}

impl Denied {
    fn status(self) -> StatusCode {
        match self {
            Denied::NoLogin => StatusCode::UNAUTHORIZED,
            _ => StatusCode::FORBIDDEN,
        }
    }

    fn message(self) -> &'static str {
        match self {
            Denied::NoLogin => "log in first",
            Denied::Role => {
                "this needs the operator role; ask an administrator (dirsync http add-user NAME --role operator)"
            }
            Denied::Csrf => "the form's security token is missing or stale; go back, reload the page and try again",
            Denied::Address => "the console answers this address only through its trusted proxy or over TLS",
        }
    }

    /// The answer: JSON under `/api/`, a page (or the login form) otherwise.
    pub fn respond(self, src: &Sources, api: bool, path: &str) -> Response {
        if api {
            let mut r = (self.status(), Json(json!({"error": self.message()}))).into_response();
            if self == Denied::NoLogin {
                r.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            return r;
        }
        if self == Denied::NoLogin {
            let next: String = url_escape(path);
            return Redirect::to(&format!("/login?next={next}")).into_response();
        }
        views::error_page(&src.views, self.status(), "Not allowed", self.message())
    }
}

/// Percent-encode a local path for `?next=`.
fn url_escape(path: &str) -> String {
    let mut out = String::new();
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"/-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn peer(parts: &Parts) -> Option<SocketAddr> {
    parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0)
}

/// The caller of `parts`, or why there is none.
pub fn identify(src: &Sources, parts: &Parts) -> Result<Who, Denied> {
    let peer = peer(parts);
    let headers = &parts.headers;
    if let Some(p) = &src.http.trusted_proxy {
        if session::from_proxy(peer, &p.from) {
            let user = headers.get(p.user_header.as_str()).and_then(|v| v.to_str().ok());
            let role = headers
                .get(p.role_header.as_str())
                .and_then(|v| v.to_str().ok())
                .and_then(Role::parse);
            let (Some(user), Some(role)) = (user.filter(|u| !u.trim().is_empty()), role) else {
                return Err(Denied::NoLogin);
            };
            // A session cookie for the same person carries the CSRF token.
            let now = now_ms();
            if let Some(s) = session::session(&src.key, headers, now).filter(|s| s.user == user && s.role == role) {
                return Ok(Who {
                    name: s.user,
                    role,
                    csrf: s.csrf,
                    via: Via::Proxy,
                    set_cookie: None,
                });
            }
            let data = SessionData {
                user: user.to_string(),
                role,
                csrf: random_token(),
                expires: now + hours_ms(src),
            };
            let set_cookie = session::seal(&src.key, &data).map(|v| cookie_for(src, &v));
            return Ok(Who {
                name: data.user,
                role,
                csrf: data.csrf,
                via: Via::Proxy,
                set_cookie,
            });
        }
    }
    // Off loopback without TLS only the proxy is served (config check
    // allows nothing else).
    let local = peer.is_none_or(|p| p.ip().is_loopback());
    if !local && src.http.tls().is_none() {
        return Err(Denied::Address);
    }
    if let Some(token) = session::bearer(headers) {
        let users = src.users.get();
        return match users.check_token(token) {
            Some(t) => Ok(Who {
                name: t.name.clone(),
                role: t.role,
                csrf: String::new(),
                via: Via::Token,
                set_cookie: None,
            }),
            None => Err(Denied::NoLogin),
        };
    }
    let s = session::session(&src.key, headers, now_ms()).ok_or(Denied::NoLogin)?;
    // A user removed from (or demoted in) the users file loses the session.
    let users = src.users.get();
    let current = users.users.iter().find(|u| u.name == s.user).ok_or(Denied::NoLogin)?;
    Ok(Who {
        name: s.user,
        role: current.role.min(s.role),
        csrf: s.csrf,
        via: Via::Session,
        set_cookie: None,
    })
}

fn hours_ms(src: &Sources) -> i64 {
    i64::try_from(src.http.session_hours)
        .unwrap_or(12)
        .saturating_mul(3_600_000)
}

/// A session cookie for a sealed value.
pub fn cookie_for(src: &Sources, sealed: &str) -> String {
    session::set_cookie(
        session::SESSION_COOKIE,
        sealed,
        hours_ms(src) / 1000,
        src.http.tls().is_some(),
    )
}

/// A new session for `user` as `role`: its `Set-Cookie` value.
pub fn new_session(src: &Sources, user: &str, role: Role) -> Option<String> {
    let data = SessionData {
        user: user.into(),
        role,
        csrf: random_token(),
        expires: now_ms() + hours_ms(src),
    };
    session::seal(&src.key, &data).map(|v| cookie_for(src, &v))
}

impl FromRequestParts<Sources> for Who {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, src: &Sources) -> Result<Self, Self::Rejection> {
        let path = parts.uri.path().to_string();
        let api = path.starts_with("/api/");
        identify(src, parts).map_err(|d| d.respond(src, api, &path))
    }
}

impl Who {
    /// Refuse unless an operator.
    pub fn need_operator(&self, src: &Sources) -> Result<(), Box<Response>> {
        if self.operator() {
            Ok(())
        } else {
            Err(Box::new(Denied::Role.respond(src, false, "")))
        }
    }

    /// Refuse a POST whose form token is not this session's.
    pub fn check_csrf(&self, src: &Sources, token: &str) -> Result<(), Box<Response>> {
        let ok =
            self.via != Via::Token && !self.csrf.is_empty() && constant_time_eq(self.csrf.as_bytes(), token.as_bytes());
        if ok {
            Ok(())
        } else {
            Err(Box::new(Denied::Csrf.respond(src, false, "")))
        }
    }

    /// Add the proxy session's cookie to a response, when one was made.
    pub fn finish(&self, mut r: Response) -> Response {
        if let Some(c) = &self.set_cookie {
            if let Ok(v) = HeaderValue::from_str(c) {
                r.headers_mut().append(header::SET_COOKIE, v);
            }
        }
        r
    }
}

/// Equal bytes, in time independent of where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_paths_are_escaped_and_tokens_compared_whole() {
        assert_eq!(url_escape("/runs/3?x=<a>"), "/runs/3%3Fx%3D%3Ca%3E");
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
