//! Sections → [`Policy`]: check them and build the lookup tables the roster
//! parser and the planner use.

use std::collections::{BTreeMap, HashMap};

use super::aliases::{builtin_aliases, column_for_field, normalise_header, DATE_FIELDS, IGNORED_COLUMNS};
use super::{
    Column, FieldRule, GroupRules, Layout, LayoutSection, Limits, PasswordRules, Policy, RosterRules, SyncRules,
    BUILTIN_ATTRIBUTES, SPECIAL_FIELDS,
};

impl Policy {
    /// Check the sections and build the header lookup. Errors are sentences
    /// an admin can act on.
    /// A policy with these `[fields]` and every other section at its
    /// default: the core's unit tests' fixture.
    #[cfg(test)]
    pub(crate) fn with_fields(fields: BTreeMap<String, FieldRule>) -> Result<Policy, Vec<String>> {
        Policy::compile(
            "t",
            RosterRules::default(),
            fields,
            SyncRules::default(),
            PasswordRules::default(),
            Limits::default(),
            GroupRules::default(),
        )
    }

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
            .chain(
                DATE_FIELDS
                    .iter()
                    .filter(|f| !attributes.iter().any(|a| a == *f))
                    .map(|s| s.to_string()),
            )
            .collect();
        for f in &all {
            let mut rule = fields.get(f).cloned().unwrap_or_default();
            if rule.required.is_none() {
                // A generated field's empty cell asks for a value; the key's column stays required.
                let builtin = matches!(f.as_str(), "username" | "firstname" | "surname" | "email");
                rule.required = Some(builtin && (rule.generate.is_none() || f == "username"));
            }
            if f == "username" && rule.required == Some(false) {
                errors.push("fields.username: the key column is always required".into());
            }
            if f == "username" && rule.strip_invisible {
                errors.push(
                    "fields.username: strip_invisible is not allowed on the key (a key is never changed silently)"
                        .into(),
                );
            }
            if rule.update != super::UpdateRule::Always && !attributes.contains(f) {
                errors.push(format!("fields.{f}.update: only attribute fields have an update rule"));
            }
            if rule.update == super::UpdateRule::Never && (rule.generate.is_some() || rule.clear_when_empty) {
                errors.push(format!(
                    "fields.{f}: update = \"never\" is never written, so it cannot be generated or cleared"
                ));
            }
            if let (Some(allowed), Some(default)) = (&rule.allowed, &rule.default) {
                if !allowed.iter().any(|a| a.eq_ignore_ascii_case(default)) {
                    errors.push(format!("fields.{f}: default {default:?} is not in its allowed values"));
                }
            }
            rules.insert(f.clone(), rule);
        }
        let generators = super::generators::generators(&mut rules, &attributes, &mut errors);
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
                _ => match column_for_field(f, &attributes) {
                    Some(c) => c,
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
        if passwords.min_length < 8 {
            errors.push("passwords.min_length: at least 8 characters".into());
        }
        if passwords.activation_valid_hours == 0 {
            errors.push("passwords.activation_valid_hours: at least 1 hour".into());
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
            ("adopts", limits.adopts),
        ] {
            if let Some(p) = l.max_percent {
                if !(0.0..=100.0).contains(&p) {
                    errors.push(format!("limits.{class}.max_percent: between 0 and 100"));
                }
            }
        }
        if limits.containers.max_percent.is_some() {
            errors.push("limits.containers: give max (a number of entries); max_percent means nothing here".into());
        }
        if let Some(f) = &sync.adopt {
            if !attributes.contains(f) {
                errors.push(format!(
                    "sync.adopt: {f:?} is not an attribute field of this policy (fields: {})",
                    attributes.join(", ")
                ));
            }
        }
        for g in &groups.default {
            if !groups.managed.iter().any(|m| m.eq_ignore_ascii_case(g)) {
                errors.push(format!("groups.default: {g:?} is not in groups.managed"));
            }
        }
        let date_format = match time::format_description::parse_owned::<2>(&roster.date_format) {
            Ok(f) => f,
            Err(e) => {
                errors.push(format!(
                    "roster.date_format: {:?} is not a date format ({e}); write it like \"[day]/[month]/[year]\"",
                    roster.date_format
                ));
                time::format_description::OwnedFormatItem::Compound(Box::default())
            }
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Policy {
            layouts: Vec::new(),
            lifecycle: Default::default(),
            date_attrs: [
                attributes.iter().position(|a| a == "start_date"),
                attributes.iter().position(|a| a == "end_date"),
            ],
            generators,
            date_format,
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
}

impl Policy {
    /// Add the `[[layouts]]`: each names fields of this policy; names are
    /// unique; every layout can name every required field.
    pub fn with_layouts(mut self, sections: &[LayoutSection]) -> Result<Policy, Vec<String>> {
        let mut errors = Vec::new();
        let mut required: Vec<(Column, String)> = vec![(Column::Key, "username".into())];
        for (i, a) in self.attributes.iter().enumerate() {
            if self.required(a) {
                required.push((Column::Attribute(i), a.clone()));
            }
        }
        let mut layouts: Vec<Layout> = Vec::new();
        for s in sections {
            let at = format!("layouts[{:?}]", s.name);
            if s.name.trim().is_empty() {
                errors.push("layouts: every layout needs a name".into());
            } else if layouts.iter().any(|l| l.name == s.name) {
                errors.push(format!("{at}: two layouts have this name"));
            }
            let mut aliases = HashMap::new();
            let mut fields = Vec::new();
            for (f, names) in &s.aliases {
                let Some(col) = column_for_field(f, &self.attributes) else {
                    errors.push(format!(
                        "{at}.aliases.{f}: not a field of this policy (fields: username, {}, groups, status, must_change, password, invite)",
                        self.attributes.join(", ")
                    ));
                    continue;
                };
                if names.is_empty() {
                    errors.push(format!("{at}.aliases.{f}: give at least one header name"));
                }
                fields.push(col);
                for n in names {
                    if let Some(prev) = aliases.insert(normalise_header(n), col) {
                        if prev != col {
                            errors.push(format!(
                                "{at}.aliases.{f}: {n:?} already means another field in this layout"
                            ));
                        }
                    }
                }
            }
            let req = required
                .iter()
                .map(|(c, field)| {
                    let own = s
                        .aliases
                        .iter()
                        .find(|(f, _)| column_for_field(f, &self.attributes) == Some(*c))
                        .and_then(|(_, n)| n.first());
                    let name = match own {
                        Some(n) => format!("{field} ({n:?})"),
                        None => field.clone(),
                    };
                    (*c, name)
                })
                .collect();
            let names = s
                .aliases
                .iter()
                .filter_map(|(f, n)| Some((f.clone(), n.first()?.clone())))
                .collect();
            layouts.push(Layout::new(s.name.clone(), aliases, fields, req, names));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        self.layouts = layouts;
        Ok(self)
    }
}

#[cfg(test)]
#[path = "compile_tests.rs"]
mod tests;
