//! Per-row checks: one record → a typed [`Person`], or every reason the row
//! is refused (the other rows go on).

use super::error::{RowError, RowErrorKind};
use super::hygiene::{email_problem, first_invisible, nfc, strip_invisible};
use crate::core::policy::{Column, Policy};
use crate::core::types::{AccountState, Dates, Origin, Person, Secret, UserKey, Value};

pub(super) fn key_of(record: &csv::StringRecord, columns: &[Column]) -> Option<UserKey> {
    let i = columns.iter().position(|c| *c == Column::Key)?;
    let v = record.get(i)?.trim();
    (!v.is_empty()).then(|| UserKey::new(&nfc(v)))
}

pub(super) type RowFailure = (Option<UserKey>, Vec<RowError>);

/// The policy's name of the field a column holds (for its rule).
fn field_of(c: Column, policy: &Policy) -> &str {
    match c {
        Column::Key => "username",
        Column::Attribute(i) => policy.attributes.get(i).map(String::as_str).unwrap_or(""),
        Column::Groups => "groups",
        Column::Status => "status",
        Column::MustChange => "must_change",
        Column::StartDate => "start_date",
        Column::EndDate => "end_date",
        Column::Invite => "invite",
        Column::Password | Column::Ignored | Column::Unknown => "",
    }
}

/// One record → a person, or every reason the row is refused. `notes`
/// gets what was changed on the way (invisible characters stripped by policy).
pub(super) fn parse_row(
    origin: Origin,
    record: &csv::StringRecord,
    header: &[String],
    columns: &[Column],
    policy: &Policy,
    notes: &mut Vec<String>,
) -> Result<Person, RowFailure> {
    let mut errors = Vec::new();
    let mut key = None;
    let mut attrs: Vec<Option<Value>> = vec![None; policy.attributes.len()];
    let mut groups: Option<Vec<Value>> = None;
    let mut state = AccountState::Active;
    let mut must_change = None;
    let mut invite = false;
    let mut password = None;
    let mut dates = Dates::default();
    let err = |errors: &mut Vec<RowError>, h: &str, kind: RowErrorKind| errors.push(RowError::in_column(h, kind));
    let email = policy.attribute_index("email").map(Column::Attribute);

    for ((raw, h), c) in record.iter().zip(header).zip(columns) {
        let stripped: String;
        let mut v = raw.trim();
        if *c != Column::Password && *c != Column::Unknown && *c != Column::Ignored {
            // A TAB inside a text value is kept; nowhere else.
            let allow_tab = matches!(c, Column::Attribute(_)) && Some(*c) != email;
            if let Some(found) = first_invisible(v, allow_tab) {
                let lead = raw[..raw.len() - raw.trim_start().len()].chars().count();
                let field = field_of(*c, policy);
                if *c != Column::Key && policy.rule(field).strip_invisible {
                    let (clean, removed) = strip_invisible(v, allow_tab);
                    let what: Vec<String> = removed
                        .iter()
                        .map(|r| format!("U+{:04X} at position {}", r.ch as u32, lead + r.position))
                        .collect();
                    notes.push(format!(
                        "column {h:?}: removed invisible character(s) {} (strip_invisible)",
                        what.join(", ")
                    ));
                    stripped = clean.trim().to_string();
                    v = &stripped;
                } else {
                    let (code, position) = (found.ch as u32, lead + found.position);
                    let kind = if found.is_control() {
                        RowErrorKind::ControlCharacter {
                            code: Some(code),
                            position: Some(position),
                        }
                    } else {
                        RowErrorKind::InvisibleCharacter {
                            code,
                            position,
                            strippable: *c != Column::Key,
                        }
                    };
                    err(&mut errors, h, kind);
                    continue;
                }
            }
        }
        let composed = nfc(v);
        let v: &str = &composed;
        match *c {
            Column::Key => {
                if v.is_empty() && policy.generates(Column::Key) {
                    // A new person: the username is generated when the plan adds them.
                    key = Some(UserKey::new(""));
                } else if v.is_empty() {
                    err(
                        &mut errors,
                        h,
                        RowErrorKind::Missing {
                            field: "username".into(),
                        },
                    );
                } else if let Some(k) = too_long(v, "username", policy) {
                    err(&mut errors, h, k);
                } else {
                    key = Some(UserKey::new(v));
                }
            }
            Column::Attribute(i) => match check_value(v, i, policy) {
                Ok(val) => {
                    if let (Some(which), Some(val)) = (policy.date_attr(i), &val) {
                        match read_date(val, policy) {
                            Ok(d) => dates.set(which, d),
                            Err(k) => err(&mut errors, h, k),
                        }
                    }
                    attrs[i] = val
                }
                Err(k) => err(&mut errors, h, k),
            },
            Column::Groups => {
                // Sized to the cell: a row's list lives as long as the run
                // (a pushed-to vector would hold room for four).
                let mut list = Vec::with_capacity(v.bytes().filter(|b| *b == b';').count() + 1);
                for g in v.split(';').map(str::trim).filter(|g| !g.is_empty()) {
                    match policy.managed_group(g) {
                        Some(canon) => {
                            if !list.iter().any(|x: &Value| x.as_str() == canon) {
                                list.push(Value::from(canon))
                            }
                        }
                        None => err(
                            &mut errors,
                            h,
                            RowErrorKind::UnmanagedGroup {
                                group: g.to_string(),
                                policy: policy.name.clone(),
                                managed: policy.groups.managed.clone(),
                            },
                        ),
                    }
                }
                if !list.is_empty() {
                    groups = Some(list);
                }
            }
            Column::Status => {
                if v.is_empty() || policy.roster.active_values.iter().any(|a| same_word(a, v)) {
                    state = AccountState::Active;
                } else if policy.roster.leaver_values.iter().any(|a| same_word(a, v)) {
                    state = AccountState::Leaver;
                } else {
                    err(
                        &mut errors,
                        h,
                        RowErrorKind::BadStatus {
                            value: v.to_string(),
                            active: policy.roster.active_values.clone(),
                            leaver: policy.roster.leaver_values.clone(),
                        },
                    );
                }
            }
            Column::Invite => {
                if v.is_empty() || ["0", "false", "no", "n"].iter().any(|w| v.eq_ignore_ascii_case(w)) {
                } else if ["1", "true", "yes", "y"].iter().any(|w| v.eq_ignore_ascii_case(w)) {
                    invite = true
                } else {
                    err(&mut errors, h, RowErrorKind::BadFlag { value: v.to_string() })
                }
            }
            Column::MustChange => {
                if v.is_empty() {
                } else if ["1", "true", "yes", "y"].iter().any(|w| v.eq_ignore_ascii_case(w)) {
                    must_change = Some(true)
                } else if ["0", "false", "no", "n"].iter().any(|w| v.eq_ignore_ascii_case(w)) {
                    must_change = Some(false)
                } else {
                    err(&mut errors, h, RowErrorKind::BadFlag { value: v.to_string() })
                }
            }
            Column::Password => {
                if !raw.is_empty() {
                    if let Some(k) = too_long(raw, "password", policy) {
                        err(&mut errors, h, k);
                    } else if raw.chars().any(char::is_control) {
                        err(
                            &mut errors,
                            h,
                            RowErrorKind::ControlCharacter {
                                code: None,
                                position: None,
                            },
                        );
                    } else {
                        password = Some(Box::new(Secret::new(raw)));
                    }
                }
            }
            Column::StartDate | Column::EndDate if v.is_empty() => {}
            Column::StartDate | Column::EndDate => match read_date(v, policy) {
                Ok(d) => dates.set(usize::from(*c == Column::EndDate), d),
                Err(k) => err(&mut errors, h, k),
            },
            Column::Ignored | Column::Unknown => {}
        }
    }
    // Defaults and required values, for attributes with or without a column.
    for (i, name) in policy.attributes.iter().enumerate() {
        let rule = policy.attr_rule(i);
        if attrs[i].is_none() {
            if let Some(d) = &rule.default {
                attrs[i] = Some(Value::from(d.as_str()));
            }
        }
        if attrs[i].is_none() && rule.required == Some(true) {
            if let Some(pos) = columns.iter().position(|c| *c == Column::Attribute(i)) {
                if !errors.iter().any(|e| e.column.as_deref() == Some(header[pos].as_str())) {
                    err(&mut errors, &header[pos], RowErrorKind::Missing { field: name.clone() });
                }
            }
        }
    }
    if let (Some(start), Some(end)) = (dates.start, dates.end) {
        if end < start {
            errors.push(RowError::in_row(RowErrorKind::EndBeforeStart {
                start: start.to_string(),
                end: end.to_string(),
            }));
        }
    }
    if groups.is_none() && !policy.groups.default.is_empty() {
        groups = Some(policy.groups.default.iter().map(|g| Value::from(g.as_str())).collect());
    }
    if let Some(k) = key.as_ref().filter(|k| !k.as_str().is_empty()) {
        if policy.is_protected(k) {
            errors.push(RowError::in_row(RowErrorKind::Protected { key: k.to_string() }));
        }
    }
    match key {
        Some(key) if errors.is_empty() => Ok(Person {
            origin,
            key,
            attrs: attrs.into(),
            groups: groups.map(Vec::into_boxed_slice),
            state,
            must_change,
            password,
            dates,
            invite,
        }),
        key => Err((key.filter(|k| !k.as_str().is_empty()), errors)),
    }
}

/// A start or end date cell → its day, or why not.
fn read_date(v: &str, policy: &Policy) -> Result<chrono::NaiveDate, RowErrorKind> {
    policy.parse_date(v).ok_or_else(|| RowErrorKind::BadDate {
        value: v.to_string(),
        formats: policy.lifecycle.date_formats.clone(),
    })
}

fn too_long(v: &str, field: &str, policy: &Policy) -> Option<RowErrorKind> {
    too_long_max(v, policy.rule(field).max_len.unwrap_or(policy.roster.max_field_len))
}

fn too_long_max(v: &str, max: usize) -> Option<RowErrorKind> {
    // Bytes ≥ characters: count characters only when the bytes could be over.
    if v.len() <= max {
        return None;
    }
    let n = v.chars().count();
    (n > max).then_some(RowErrorKind::TooLong { length: n, max })
}

/// Case-insensitive equality without allocating for ASCII.
fn same_word(a: &str, b: &str) -> bool {
    if a.is_ascii() && b.is_ascii() {
        a.eq_ignore_ascii_case(b)
    } else {
        a.to_lowercase() == b.to_lowercase()
    }
}

fn check_value(v: &str, i: usize, policy: &Policy) -> Result<Option<Value>, RowErrorKind> {
    if v.is_empty() {
        return Ok(None);
    }
    let rule = policy.attr_rule(i);
    if let Some(k) = too_long_max(v, rule.max_len.unwrap_or(policy.roster.max_field_len)) {
        return Err(k);
    }
    if policy.attributes[i] == "email" {
        if let Some(reason) = email_problem(v) {
            return Err(RowErrorKind::MalformedEmail {
                value: v.to_string(),
                reason,
            });
        }
    }
    if let Some(allowed) = &rule.allowed {
        return match allowed.iter().find(|a| same_word(a, v)) {
            Some(a) => Ok(Some(Value::from(a.as_str()))),
            None => Err(RowErrorKind::NotAllowed {
                value: v.to_string(),
                allowed: allowed.clone(),
            }),
        };
    }
    Ok(Some(Value::from(v)))
}

#[cfg(test)]
#[path = "checks_tests.rs"]
mod tests;
