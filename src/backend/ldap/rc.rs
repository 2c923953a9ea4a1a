//! LDAP result codes: their names, which are worth retrying, and what a
//! code means in words an operator can act on, the same for every server.

use ldap3::{LdapError, LdapResult};

/// Result codes worth retrying: busy, unavailable, unwillingToPerform is not.
pub(super) fn transient_rc(rc: u32) -> bool {
    matches!(rc, 51 | 52 | 81 | 85)
}

/// Client-side errors that mean the connection is gone or stuck.
pub(super) fn connection_lost(e: &LdapError) -> bool {
    matches!(
        e,
        LdapError::Io { .. }
            | LdapError::OpSend { .. }
            | LdapError::ResultRecv { .. }
            | LdapError::IdScrubSend { .. }
            | LdapError::Timeout { .. }
            | LdapError::EndOfStream
    )
}

/// A short name for common result codes, for messages.
pub fn rc_name(rc: u32) -> &'static str {
    match rc {
        1 => "operationsError",
        3 => "timeLimitExceeded",
        4 => "sizeLimitExceeded",
        16 => "noSuchAttribute",
        17 => "undefinedAttributeType",
        19 => "constraintViolation",
        20 => "attributeOrValueExists",
        21 => "invalidAttributeSyntax",
        32 => "noSuchObject",
        34 => "invalidDNSyntax",
        49 => "invalidCredentials",
        50 => "insufficientAccessRights",
        51 => "busy",
        52 => "unavailable",
        53 => "unwillingToPerform",
        64 => "namingViolation",
        65 => "objectClassViolation",
        66 => "notAllowedOnNonLeaf",
        67 => "notAllowedOnRDN",
        68 => "entryAlreadyExists",
        80 => "other",
        _ => "error",
    }
}

/// What a failed result means, in the same words whichever server said it
/// (OpenLDAP, Active Directory and 389 DS word and number some of these
/// differently), and what to do about it.
pub fn explain(rc: u32, text: &str) -> Option<&'static str> {
    let t = text.to_ascii_lowercase();
    let about_password = t.contains("password") || t.contains("pwd") || t.contains("0000052d");
    match rc {
        // (AD also answers 68 for a member value that is already there.)
        68 if !t.contains("attribute") => Some("an entry with this name already exists (another account or object holds it): rename or remove that entry, or change the row"),
        19 | 53 if about_password => Some(
            "the password does not meet the server's password policy (length, complexity or history): give a stronger password or change the policy",
        ),
        19 if t.contains("already exists") || t.contains("unique") => Some(
            "a value that must be unique is already used by another entry: change the row or the other entry",
        ),
        50 => Some("the bind DN may not make this change: give it write access to this part of the tree"),
        65 if t.contains("member") => {
            Some("a groupOfNames must keep one member: give managed groups a placeholder member")
        }
        32 => Some("the parent entry or the entry itself does not exist"),
        _ => None,
    }
}

pub fn describe(r: &LdapResult) -> String {
    let text = if r.text.is_empty() {
        String::new()
    } else {
        format!(": {}", r.text.trim_end_matches(['\0', '\n']))
    };
    match explain(r.rc, &r.text) {
        Some(why) => format!("{why} (LDAP {} {}{text})", r.rc, rc_name(r.rc)),
        None => format!("LDAP {} {}{text}", r.rc, rc_name(r.rc)),
    }
}

#[cfg(test)]
mod tests {
    use super::explain;

    /// The words of slapd 2.5, Samba 4.17 and 389 DS 2.3, as the LDAP
    /// matrix (tests/ldap) saw them: one explanation per class.
    #[test]
    fn the_same_failure_reads_the_same_from_every_server() {
        let policy = explain(19, "").map(|_| ());
        assert_eq!(policy, None, "a bare constraint violation is not guessed at");
        for (rc, text) in [
            (19, "Password fails quality checking policy"),
            (
                19,
                "0000052D: Constraint violation - check_password_restrictions: the password is too short.",
            ),
            (19, "Failed to update password"),
        ] {
            assert!(
                explain(rc, text).is_some_and(|e| e.contains("password policy")),
                "{text}"
            );
        }
        for text in [
            "",
            "Entry CN=taken,OU=Finance,OU=people,DC=example,DC=org already exists",
        ] {
            assert!(
                explain(68, text).is_some_and(|e| e.contains("already exists")),
                "{text}"
            );
        }
        // AD's 68 for a member value already present is not a name clash.
        assert_eq!(explain(68, "Attribute member already exists for target GUID x"), None);
        for text in [
            "no write access to parent",
            "00002098: Object CN=jsmith,OU=Finance has no write property access",
            "Insufficient 'add' privilege to add the entry 'uid=bjones,ou=Sales'.",
        ] {
            assert!(
                explain(50, text).is_some_and(|e| e.contains("may not make this change")),
                "{text}"
            );
        }
    }
}
