//! Header matching: the built-in names of each field and how a header cell
//! is normalised before lookup.

use super::Column;

/// Attribute fields every policy knows, in template order.
pub const BUILTIN_ATTRIBUTES: &[&str] = &[
    "firstname",
    "surname",
    "email",
    "title",
    "department",
    "site",
    "user_type",
    "phone",
];

/// Fields with a special meaning (not plain attributes).
pub const SPECIAL_FIELDS: &[&str] = &["username", "groups", "status", "must_change", "password", "invite"];

/// `[lifecycle]` dates: read whenever a file has them. Declared under
/// `[fields]` they are also attributes (stored when mapped); otherwise they
/// are only read.
pub const DATE_FIELDS: &[&str] = &["start_date", "end_date"];

/// Built-in aliases (normalised by [`normalise_header`] before use).
pub(super) fn builtin_aliases(field: &str) -> &'static [&'static str] {
    match field {
        "username" => &[
            "username",
            "user name",
            "login",
            "login id",
            "loginid",
            "user id",
            "userid",
            "uid",
            "account",
            "sign-in",
            "samaccountname",
        ],
        "firstname" => &["firstname", "first name", "given name", "givenname", "forename"],
        "surname" => &["surname", "last name", "lastname", "family name", "sn"],
        "email" => &["email", "e-mail", "email address", "e-mail address", "mail"],
        "title" => &["title", "job title"],
        "department" => &["department", "dept", "organisational unit", "organizational unit", "ou"],
        "site" => &["site", "location", "office"],
        "user_type" => &["user type", "usertype", "type"],
        "phone" => &["phone", "telephone", "phone number", "telephone number"],
        "groups" => &["groups", "belong to", "member of", "memberof"],
        "status" => &["status"],
        "must_change" => &["change password next time", "must change password", "change password"],
        "password" => &["password"],
        "start_date" => &[
            "start date",
            "hire date",
            "starting date",
            "start of employment",
            "employment start date",
            "joining date",
            "date joined",
            "first day",
        ],
        "end_date" => &[
            "end date",
            "leaving date",
            "leave date",
            "last day",
            "last working day",
            "termination date",
            "end of employment",
            "employment end date",
        ],
        "invite" => &["invite", "send invite", "send invitation", "send welcome mail"],
        _ => &[],
    }
}

/// Columns that are recognised and deliberately ignored (seed 003: "First
/// login" and "Creation date" are not reflected to the system).
pub(super) const IGNORED_COLUMNS: &[&str] = &["first login", "first sign-in", "creation date"];

/// "E-mail Address" → "emailaddress": case, spaces, `_` and `-` do not matter.
pub fn normalise_header(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_whitespace() && *c != '_' && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

pub(super) fn column_for_field(f: &str, attributes: &[String]) -> Option<Column> {
    Some(match f {
        "username" => Column::Key,
        "groups" => Column::Groups,
        "status" => Column::Status,
        "must_change" => Column::MustChange,
        "password" => Column::Password,
        "invite" => Column::Invite,
        _ => match (attributes.iter().position(|a| a == f), f) {
            (Some(i), _) => Column::Attribute(i),
            (None, "start_date") => Column::StartDate,
            (None, "end_date") => Column::EndDate,
            (None, _) => return None,
        },
    })
}

#[cfg(test)]
mod tests {
    use crate::core::policy::{Column, Policy};

    #[test]
    fn headers_match_through_aliases_ignoring_case_space_dash_underscore() {
        let p = Policy::defaults("t");
        let email = p.attribute_index("email").map(Column::Attribute);
        assert_eq!(Some(p.column("E-mail Address")), email);
        assert_eq!(Some(p.column("EMAIL")), email);
        assert_eq!(p.column("First Name"), Column::Attribute(0));
        assert_eq!(p.column("first_name"), Column::Attribute(0));
        assert_eq!(p.column("Change password next time"), Column::MustChange);
        assert_eq!(p.column("Belong to"), Column::Groups);
        assert_eq!(p.column("Creation date"), Column::Ignored);
        assert_eq!(p.column("Favourite colour"), Column::Unknown);
        assert_eq!(p.column("Login ID"), Column::Key);
    }
}
