//! `[fields.X] generate`: which fields are generated and from what, checked
//! when the policy is compiled (a template naming no field, or one
//! generated after it, fails `dirsync config check` with the reason).

use std::collections::HashMap;

use super::{Column, FieldRule, Generator, Template};

/// The generated fields in the order they are generated (the key first,
/// then attributes in order), with every problem as a sentence.
pub(super) fn generators(
    rules: &mut HashMap<String, FieldRule>,
    attributes: &[String],
    errors: &mut Vec<String>,
) -> Vec<Generator> {
    let column_of = |f: &str| -> Option<Column> {
        if f == "username" {
            return Some(Column::Key);
        }
        attributes.iter().position(|a| a == f).map(Column::Attribute)
    };
    let order: Vec<String> = std::iter::once("username".to_string())
        .chain(attributes.iter().cloned())
        .collect();
    let generated: Vec<String> = rules
        .iter()
        .filter(|(_, r)| r.generate.is_some())
        .map(|(n, _)| n.clone())
        .collect();
    let mut out: Vec<Generator> = Vec::new();
    for (name, rule) in rules.iter() {
        if rule.generate.is_some() && column_of(name).is_none() {
            errors.push(format!(
                "fields.{name}.generate: only username and attribute fields can be generated"
            ));
        }
    }
    for f in &order {
        let Some(rule) = rules.get_mut(f) else { continue };
        let Some(source) = rule.generate.clone() else { continue };
        let at = format!("fields.{f}.generate");
        let template = match Template::parse(&source, column_of) {
            Ok(t) => t,
            Err(why) => {
                errors.push(format!("{at}: {source:?}: {why}"));
                continue;
            }
        };
        let own = column_of(f);
        for (used, column) in template.columns() {
            if Some(column) == own {
                errors.push(format!("{at}: {source:?} uses {{{used}}}, the field it generates"));
            } else if generated.iter().any(|g| g == used) && !out.iter().any(|g| g.column == column) {
                errors.push(format!(
                    "{at}: {source:?} uses {{{used}}}, which is generated after {f} (username first, then attributes in order)"
                ));
            }
        }
        if f != "username" && rule.required == Some(true) {
            errors.push(format!(
                "{at}: a generated field cannot be required (its empty cell is what asks for a value); remove required"
            ));
        }
        if rule.clear_when_empty {
            errors.push(format!(
                "{at}: clear_when_empty contradicts generate (an empty cell asks for a value); remove one"
            ));
        }
        if rule.allowed.is_some() || rule.default.is_some() {
            errors.push(format!(
                "{at}: a generated field has no allowed values or default; remove them"
            ));
        }
        if f != "username" {
            // An empty cell is not missing: it asks for a value.
            rule.required = Some(false);
        }
        if let Some(column) = own {
            out.push(Generator {
                field: f.clone(),
                column,
                template,
            });
        }
    }
    out
}
