//! URLs for logs and messages, with any password replaced. A leaf: config,
//! the journal and the SQL backend use it.

/// `scheme://user:***@host/…`: the URL without its password.
pub fn redact_url(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        if let Some((userinfo, host)) = rest.split_once('@') {
            if let Some((user, _)) = userinfo.split_once(':') {
                return format!("{scheme}://{user}:***@{host}");
            }
        }
    }
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_is_replaced_and_nothing_else() {
        assert_eq!(
            redact_url("postgres://app:hunter2@db:5432/hr"),
            "postgres://app:***@db:5432/hr"
        );
        assert_eq!(redact_url("postgres://app@db/hr"), "postgres://app@db/hr");
        assert_eq!(redact_url("sqlite:///var/lib/j.db"), "sqlite:///var/lib/j.db");
    }
}
