//! The console's pages: minijinja templates compiled into the binary (no
//! CDN, no JavaScript needed), HTML-escaped, and the answers every page
//! shares — errors, 404, security headers, the stylesheet.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use minijinja::Environment;
use serde::Serialize;

const TEMPLATES: [(&str, &str); 10] = [
    ("base.html", include_str!("templates/base.html")),
    ("error.html", include_str!("templates/error.html")),
    ("login.html", include_str!("templates/login.html")),
    ("dashboard.html", include_str!("templates/dashboard.html")),
    ("runs.html", include_str!("templates/runs.html")),
    ("run.html", include_str!("templates/run.html")),
    ("approve.html", include_str!("templates/approve.html")),
    ("upload.html", include_str!("templates/upload.html")),
    ("rows.html", include_str!("templates/rows.html")),
    ("activate.html", include_str!("templates/activate.html")),
];

const CSS: &str = include_str!("templates/console.css");

/// The compiled templates.
pub struct Views {
    env: Environment<'static>,
}

impl Views {
    pub fn new() -> Result<Views, String> {
        let mut env = Environment::new();
        for (name, text) in TEMPLATES {
            env.add_template(name, text)
                .map_err(|e| format!("console template {name}: {e}"))?;
        }
        env.add_filter("when", |ms: Option<i64>| {
            ms.map(crate::clock::timestamp).unwrap_or_default()
        });
        env.add_global("version", env!("CARGO_PKG_VERSION"));
        Ok(Views { env })
    }

    /// Render `name` with `ctx` as a page.
    pub fn page<S: Serialize>(&self, status: StatusCode, name: &str, ctx: S) -> Response {
        let rendered = self.env.get_template(name).and_then(|t| t.render(ctx));
        match rendered {
            Ok(html) => (status, Html(html)).into_response(),
            Err(e) => {
                tracing::error!(template = name, error = %e, "A console page could not be rendered.");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the page could not be rendered; the daemon's log says why",
                )
                    .into_response()
            }
        }
    }
}

/// A page that says what went wrong and what to do.
pub fn error_page(views: &Views, status: StatusCode, title: &str, message: &str) -> Response {
    views.page(
        status,
        "error.html",
        minijinja::context! { title, message, code => status.as_u16() },
    )
}

/// The console runs without a daemon to act for it.
pub fn unavailable(views: &Views) -> Response {
    error_page(
        views,
        StatusCode::SERVICE_UNAVAILABLE,
        "Not available",
        "This console is not attached to a running daemon.",
    )
}

pub async fn not_found(axum::extract::State(src): axum::extract::State<super::Sources>) -> Response {
    error_page(
        &src.views,
        StatusCode::NOT_FOUND,
        "Not found",
        "There is no such page. The runs list is at /runs.",
    )
}

pub async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        CSS,
    )
        .into_response()
}

/// A plain-text refusal from the HTTP layer (a path that is not a number,
/// a form that does not parse) becomes a page that says what was wrong;
/// the API keeps its JSON.
pub async fn plain_errors(
    axum::extract::State(src): axum::extract::State<super::Sources>,
    uri: axum::http::Uri,
    r: Response,
) -> Response {
    let plain = r
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/plain"));
    if !(r.status().is_client_error() && plain) || uri.path().starts_with("/api/") {
        return r;
    }
    let status = r.status();
    let body = axum::body::to_bytes(r.into_body(), 64 * 1024).await.unwrap_or_default();
    let message = String::from_utf8_lossy(&body).into_owned();
    error_page(&src.views, status, "Bad request", &message)
}

/// Headers on every answer: no framing, no sniffing, no referrer, scripts
/// and styles only from the console itself.
pub async fn security_headers(mut r: Response) -> Response {
    let h = r.headers_mut();
    for (k, v) in [
        ("x-frame-options", "DENY"),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        (
            "content-security-policy",
            "default-src 'self'; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'",
        ),
    ] {
        h.insert(k, HeaderValue::from_static(v));
    }
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_compiles_and_escapes_html() {
        let v = Views::new().unwrap(); // ok: test
        let r = error_page(&v, StatusCode::BAD_REQUEST, "Bad", "<script>x</script>");
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    }
}
