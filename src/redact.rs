//! Database URLs for logs and messages, with any password replaced.

/// `scheme://user:***@host/…`: the URL without its password.
pub fn redact_url(url: &str) -> String {
    crate::backend::sql::redact_url(url)
}
