//! The sync rules as data: which columns a file may have, what they mean,
//! what is required, what the sync may do, and its safety limits.
//!
//! A policy file is TOML; `config` reads it and hands the sections below to
//! [`Policy::compile`], which checks them and builds the lookup tables the
//! roster parser and the planner use.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;

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
pub const SPECIAL_FIELDS: &[&str] = &["username", "groups", "status", "must_change", "password"];

/// Built-in aliases (normalised by [`normalise_header`] before use).
fn builtin_aliases(field: &str) -> &'static [&'static str] {
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
        _ => &[],
    }
}

/// Columns that are recognised and deliberately ignored (seed 003: "First
/// login" and "Creation date" are not reflected to the system).
const IGNORED_COLUMNS: &[&str] = &["first login", "first sign-in", "creation date"];

/// "E-mail Address" → "emailaddress": case, spaces, `_` and `-` do not matter.
pub fn normalise_header(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_whitespace() && *c != '_' && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

/// How one field is read from the file.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldRule {
    /// Extra header names that mean this field (matched ignoring case, spaces, `_`, `-`).
    #[serde(default)]
    pub aliases: Vec<String>,
    /// A row without a value is rejected. Built-in required: username, firstname, surname, email.
    pub required: Option<bool>,
    /// Longest accepted value, in characters.
    pub max_len: Option<usize>,
    /// Accepted values (case-insensitive; the spelling here is what is stored).
    pub allowed: Option<Vec<String>>,
    /// Value used when the cell is empty (seed 002: user type Standard, site HQ).
    pub default: Option<String>,
    /// An empty cell removes the value in the target (default: an empty cell leaves it alone).
    #[serde(default)]
    pub clear_when_empty: bool,
    /// Example value for `dirsync template`.
    pub example: Option<String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Encoding {
    /// UTF-8, or UTF-8/UTF-16 with a byte-order mark.
    #[default]
    Auto,
    #[serde(rename = "utf-8", alias = "utf8")]
    Utf8,
    #[serde(rename = "windows-1252", alias = "cp1252", alias = "windows1252")]
    Windows1252,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Duplicates {
    /// Every row of a duplicate group is rejected (nobody guesses which is right).
    #[default]
    RejectAll,
    /// The first row wins; later ones are rejected.
    KeepFirst,
}

/// `[roster]`: how the file is read.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RosterRules {
    pub encoding: Encoding,
    /// Longest accepted value of any field without its own `max_len`.
    pub max_field_len: usize,
    pub duplicates: Duplicates,
    /// Values of the status column that mean "leaver" (case-insensitive).
    pub leaver_values: Vec<String>,
    /// Values of the status column that mean "active" (empty always does).
    pub active_values: Vec<String>,
    /// Rows above this count reject the whole file (seed: batch limits).
    pub max_rows: Option<usize>,
}

impl Default for RosterRules {
    fn default() -> Self {
        RosterRules {
            encoding: Encoding::Auto,
            max_field_len: 256,
            duplicates: Duplicates::RejectAll,
            leaver_values: vec!["leaver".into(), "left".into(), "inactive".into()],
            active_values: vec!["active".into(), "joiner".into()],
            max_rows: None,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AbsentAction {
    /// Report absent accounts, change nothing (seed "Old").
    #[default]
    Ignore,
    /// Make them leavers.
    Leaver,
    /// Delete them.
    Delete,
}

/// `[sync]`: what a file may change.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyncRules {
    pub add: bool,
    pub update: bool,
    pub absent: AbsentAction,
    /// Keys never touched, whatever the file says (case-insensitive).
    pub protected: Vec<String>,
    /// Delete leavers this many days after they left (none: never).
    pub delete_leavers_after_days: Option<u32>,
}

impl Default for SyncRules {
    fn default() -> Self {
        SyncRules {
            add: true,
            update: true,
            absent: AbsentAction::Ignore,
            protected: Vec::new(),
            delete_leavers_after_days: None,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Generate {
    /// New users without a password in the file get a random one.
    #[default]
    New,
    /// Never generate; new users without a password get none.
    Never,
}

/// `[passwords]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PasswordRules {
    pub generate: Generate,
    pub length: usize,
    /// Characters a generated password is drawn from.
    pub alphabet: String,
    /// "Change password next time" for new users when the file has no such column.
    pub must_change_new: bool,
}

impl Default for PasswordRules {
    fn default() -> Self {
        PasswordRules {
            generate: Generate::New,
            length: 16,
            alphabet: "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789-_.!".into(),
            must_change_new: true,
        }
    }
}

/// A limit for one change class: held back when over either bound.
#[derive(Clone, Copy, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limit {
    pub max: Option<usize>,
    /// Percentage of the managed accounts in the target.
    pub max_percent: Option<f64>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnLimit {
    /// Hold back only the class over its limit; the others proceed.
    #[default]
    Hold,
    /// Hold back every write of the run.
    Stop,
}

/// `[limits]`: checked on the whole plan before any write.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    pub on_limit: OnLimit,
    pub adds: Limit,
    pub updates: Limit,
    pub leavers: Limit,
    pub rejoins: Limit,
    pub deletes: Limit,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            on_limit: OnLimit::Hold,
            adds: Limit::default(),
            updates: Limit::default(),
            leavers: Limit {
                max: None,
                max_percent: Some(10.0),
            },
            rejoins: Limit::default(),
            deletes: Limit {
                max: Some(0),
                max_percent: None,
            },
        }
    }
}

/// `[groups]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GroupRules {
    /// The only groups dirsync adds people to or removes them from.
    pub managed: Vec<String>,
    /// Groups for a row whose groups cell is empty (seed 003: "Belong to" left blank).
    pub default: Vec<String>,
}

/// The sync rules of one policy, checked.
#[derive(Clone, Debug)]
pub struct Policy {
    pub name: String,
    pub roster: RosterRules,
    pub sync: SyncRules,
    pub passwords: PasswordRules,
    pub limits: Limits,
    pub groups: GroupRules,
    /// Attribute fields in template order; `Person::attrs` is indexed by this.
    pub attributes: Vec<String>,
    rules: HashMap<String, FieldRule>,
    /// Per attribute (same index as `attributes`): its rule, for the hot path.
    attr_rules: Vec<FieldRule>,
    aliases: HashMap<String, Column>,
}

/// What a header cell means.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Column {
    Key,
    Attribute(usize),
    Groups,
    Status,
    MustChange,
    Password,
    /// Recognised and deliberately not used.
    Ignored,
    Unknown,
}

impl Policy {
    /// Check the sections and build the header lookup. Errors are sentences
    /// an admin can act on.
    pub fn compile(
        name: &str,
        roster: RosterRules,
        fields: BTreeMap<String, FieldRule>,
        sync: SyncRules,
        passwords: PasswordRules,
        limits: Limits,
        groups: GroupRules,
    ) -> Result<Policy, Vec<String>> {
        let mut errors = Vec::new();
        let mut attributes: Vec<String> = BUILTIN_ATTRIBUTES.iter().map(|s| s.to_string()).collect();
        for extra in fields.keys() {
            let valid = !extra.is_empty()
                && extra
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if !valid {
                errors.push(format!(
                    "fields.{extra}: field names are lower-case ASCII letters, digits and '_'"
                ));
            } else if !BUILTIN_ATTRIBUTES.contains(&extra.as_str()) && !SPECIAL_FIELDS.contains(&extra.as_str()) {
                attributes.push(extra.clone());
            }
        }
        let mut rules: HashMap<String, FieldRule> = HashMap::new();
        let all: Vec<String> = SPECIAL_FIELDS
            .iter()
            .map(|s| s.to_string())
            .chain(attributes.iter().cloned())
            .collect();
        for f in &all {
            let mut rule = fields.get(f).cloned().unwrap_or_default();
            if rule.required.is_none() {
                rule.required = Some(matches!(f.as_str(), "username" | "firstname" | "surname" | "email"));
            }
            if f == "username" && rule.required == Some(false) {
                errors.push("fields.username: the key column is always required".into());
            }
            if let (Some(allowed), Some(default)) = (&rule.allowed, &rule.default) {
                if !allowed.iter().any(|a| a.eq_ignore_ascii_case(default)) {
                    errors.push(format!("fields.{f}: default {default:?} is not in its allowed values"));
                }
            }
            rules.insert(f.clone(), rule);
        }
        let mut aliases: HashMap<String, Column> = HashMap::new();
        for ignored in IGNORED_COLUMNS {
            aliases.insert(normalise_header(ignored), Column::Ignored);
        }
        for f in &all {
            let column = match f.as_str() {
                "username" => Column::Key,
                "groups" => Column::Groups,
                "status" => Column::Status,
                "must_change" => Column::MustChange,
                "password" => Column::Password,
                _ => match attributes.iter().position(|a| a == f) {
                    Some(i) => Column::Attribute(i),
                    None => continue,
                },
            };
            let own = rules.get(f).map(|r| r.aliases.clone()).unwrap_or_default();
            let names = std::iter::once(f.clone())
                .chain(builtin_aliases(f).iter().map(|s| s.to_string()))
                .chain(own.iter().cloned());
            for name in names {
                let n = normalise_header(&name);
                match aliases.get(&n) {
                    Some(prev) if *prev != column && own.contains(&name) => {
                        errors.push(format!("fields.{f}: alias {name:?} already means another field"));
                    }
                    Some(prev) if *prev != column => {
                        // A built-in alias yields to a policy's own alias.
                    }
                    _ => {
                        aliases.insert(n, column);
                    }
                }
            }
        }
        // A policy's own aliases win over built-in ones of other fields.
        for f in &all {
            if let Some(rule) = rules.get(f) {
                for name in &rule.aliases {
                    if let Some(col) = column_for_field(f, &attributes) {
                        aliases.insert(normalise_header(name), col);
                    }
                }
            }
        }
        if passwords.length < 8 {
            errors.push("passwords.length: at least 8 characters".into());
        }
        let distinct: std::collections::BTreeSet<char> = passwords.alphabet.chars().collect();
        if distinct.len() < 10 {
            errors.push("passwords.alphabet: at least 10 distinct characters".into());
        }
        for (class, l) in [
            ("adds", limits.adds),
            ("updates", limits.updates),
            ("leavers", limits.leavers),
            ("rejoins", limits.rejoins),
            ("deletes", limits.deletes),
        ] {
            if let Some(p) = l.max_percent {
                if !(0.0..=100.0).contains(&p) {
                    errors.push(format!("limits.{class}.max_percent: between 0 and 100"));
                }
            }
        }
        for g in &groups.default {
            if !groups.managed.iter().any(|m| m.eq_ignore_ascii_case(g)) {
                errors.push(format!("groups.default: {g:?} is not in groups.managed"));
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Policy {
            name: name.to_string(),
            roster,
            sync,
            passwords,
            limits,
            groups,
            attr_rules: attributes
                .iter()
                .map(|a| rules.get(a).cloned().unwrap_or_default())
                .collect(),
            attributes,
            rules,
            aliases,
        })
    }

    /// A policy with every default, for tests and `template`.
    pub fn defaults(name: &str) -> Policy {
        match Policy::compile(
            name,
            RosterRules::default(),
            BTreeMap::new(),
            SyncRules::default(),
            PasswordRules::default(),
            Limits::default(),
            GroupRules::default(),
        ) {
            Ok(p) => p,
            Err(e) => unreachable!("the built-in defaults are valid: {e:?}"),
        }
    }

    /// What a header cell means.
    pub fn column(&self, header: &str) -> Column {
        self.aliases
            .get(&normalise_header(header))
            .copied()
            .unwrap_or(Column::Unknown)
    }

    /// The rule of a field (special or attribute) by canonical name.
    pub fn rule(&self, field: &str) -> &FieldRule {
        static EMPTY: FieldRule = FieldRule {
            aliases: Vec::new(),
            required: None,
            max_len: None,
            allowed: None,
            default: None,
            clear_when_empty: false,
            example: None,
        };
        self.rules.get(field).unwrap_or(&EMPTY)
    }

    /// The rule of attribute `i` (an index into `attributes`).
    pub fn attr_rule(&self, i: usize) -> &FieldRule {
        self.attr_rules.get(i).unwrap_or_else(|| self.rule(""))
    }

    pub fn required(&self, field: &str) -> bool {
        self.rule(field).required.unwrap_or(false)
    }

    pub fn attribute_index(&self, name: &str) -> Option<usize> {
        self.attributes.iter().position(|a| a == name)
    }

    pub fn is_protected(&self, key: &crate::core::types::UserKey) -> bool {
        self.sync.protected.iter().any(|p| p.to_lowercase() == key.folded())
    }

    pub fn is_managed_group(&self, g: &str) -> bool {
        self.groups.managed.iter().any(|m| m.eq_ignore_ascii_case(g))
    }

    /// The canonical spelling of a managed group.
    pub fn managed_group(&self, g: &str) -> Option<&str> {
        self.groups
            .managed
            .iter()
            .find(|m| m.eq_ignore_ascii_case(g))
            .map(String::as_str)
    }

    /// Header names for `dirsync template`, in order, and one example row.
    pub fn template(&self) -> (Vec<String>, Vec<String>) {
        let mut headers = vec!["username".to_string()];
        headers.extend(self.attributes.iter().cloned());
        headers.extend(["groups", "status", "change password next time"].map(String::from));
        let example = |f: &str| -> String {
            if let Some(e) = &self.rule(f).example {
                return e.clone();
            }
            match f {
                "username" => "jsmith".into(),
                "firstname" => "Jane".into(),
                "surname" => "Smith".into(),
                "email" => "jane.smith@example.org".into(),
                "title" => "Accountant".into(),
                "department" => "Finance".into(),
                "site" => "HQ".into(),
                "user_type" => "Standard".into(),
                "phone" => "+44 20 7946 0000".into(),
                "groups" => self.groups.managed.first().cloned().unwrap_or_default(),
                "status" => String::new(),
                "change password next time" => "1".into(),
                other => self
                    .rule(other)
                    .allowed
                    .as_ref()
                    .and_then(|a| a.first().cloned())
                    .or_else(|| self.rule(other).default.clone())
                    .unwrap_or_default(),
            }
        };
        let row = headers.iter().map(|h| example(h)).collect();
        (headers, row)
    }
}

fn column_for_field(f: &str, attributes: &[String]) -> Option<Column> {
    Some(match f {
        "username" => Column::Key,
        "groups" => Column::Groups,
        "status" => Column::Status,
        "must_change" => Column::MustChange,
        "password" => Column::Password,
        _ => Column::Attribute(attributes.iter().position(|a| a == f)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn policy_aliases_and_extra_fields() {
        let mut fields = BTreeMap::new();
        fields.insert(
            "employee_id".to_string(),
            FieldRule {
                aliases: vec!["Staff No".into()],
                required: Some(true),
                ..Default::default()
            },
        );
        fields.insert(
            "department".to_string(),
            FieldRule {
                aliases: vec!["Organisation ODSCode".into()],
                ..Default::default()
            },
        );
        let p = Policy::compile(
            "t",
            RosterRules::default(),
            fields,
            SyncRules::default(),
            PasswordRules::default(),
            Limits::default(),
            GroupRules::default(),
        )
        .unwrap();
        let i = p.attribute_index("employee_id").unwrap();
        assert_eq!(p.column("staff_no"), Column::Attribute(i));
        assert!(p.required("employee_id"));
        assert_eq!(p.column("Organisation ODSCode"), Column::Attribute(4));
    }

    #[test]
    fn bad_policy_is_refused_with_reasons() {
        let mut fields = BTreeMap::new();
        fields.insert(
            "site".to_string(),
            FieldRule {
                allowed: Some(vec!["HQ".into()]),
                default: Some("Mars".into()),
                ..Default::default()
            },
        );
        fields.insert("Bad Name".to_string(), FieldRule::default());
        let err = Policy::compile(
            "t",
            RosterRules::default(),
            fields,
            SyncRules::default(),
            PasswordRules {
                length: 4,
                ..Default::default()
            },
            Limits::default(),
            GroupRules {
                managed: vec![],
                default: vec!["staff".into()],
            },
        )
        .unwrap_err();
        let all = err.join("\n");
        assert!(all.contains("fields.site: default \"Mars\""), "{all}");
        assert!(all.contains("fields.Bad Name"), "{all}");
        assert!(all.contains("passwords.length"), "{all}");
        assert!(all.contains("groups.default"), "{all}");
    }
}
