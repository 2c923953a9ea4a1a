//! `[fields.X] generate = "{firstname}.{surname}@example.org"`: the
//! template of a generated value, parsed and checked when the policy is
//! compiled. Rendering it for a row is `core::generate`'s job.

use super::Column;

/// One piece of a template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Part {
    /// Written as it is ("@example.org", ".").
    Text(String),
    /// The row's value of a field, transliterated and cleaned; `take` keeps
    /// its first characters (`{firstname:1}`).
    Field {
        name: String,
        column: Column,
        take: Option<usize>,
    },
    /// Where the collision counter goes (`{counter}`); without one it goes
    /// before the last `@` of the text, or at the end.
    Counter,
}

/// A parsed `generate` template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    /// As the policy writes it (for messages).
    pub source: String,
    pub parts: Vec<Part>,
}

impl Template {
    /// Parse `source`; `resolve` says what column a field name is (`None`:
    /// no such field, or one a template may not use). Errors are sentences.
    pub fn parse(source: &str, resolve: impl Fn(&str) -> Option<Column>) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut rest = source;
        while let Some(open) = rest.find(['{', '}']) {
            if rest[open..].starts_with('}') {
                return Err(format!(
                    "a '}}' without its '{{' at character {}",
                    source.len() - rest.len() + open + 1
                ));
            }
            text.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            let Some(close) = after.find('}') else {
                return Err("a '{' is not closed; write fields as {firstname}".into());
            };
            let inner = after[..close].trim();
            if !text.is_empty() {
                parts.push(Part::Text(std::mem::take(&mut text)));
            }
            parts.push(field(inner, &resolve)?);
            rest = &after[close + 1..];
        }
        text.push_str(rest);
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        if !parts.iter().any(|p| matches!(p, Part::Field { .. })) {
            return Err("it uses no field; write at least one, such as {surname}".into());
        }
        if parts.iter().filter(|p| matches!(p, Part::Counter)).count() > 1 {
            return Err("{counter} may appear once".into());
        }
        Ok(Template {
            source: source.to_string(),
            parts,
        })
    }

    /// The columns the template reads.
    pub fn columns(&self) -> impl Iterator<Item = (&str, Column)> {
        self.parts.iter().filter_map(|p| match p {
            Part::Field { name, column, .. } => Some((name.as_str(), *column)),
            _ => None,
        })
    }
}

fn field(inner: &str, resolve: &impl Fn(&str) -> Option<Column>) -> Result<Part, String> {
    if inner == "counter" {
        return Ok(Part::Counter);
    }
    let (name, take) = match inner.split_once(':') {
        Some((n, t)) => match t.trim().parse::<usize>() {
            Ok(k) if k > 0 => (n.trim(), Some(k)),
            _ => {
                return Err(format!(
                    "{{{inner}}}: after ':' comes how many characters to keep, a number from 1 ({{firstname:1}})"
                ))
            }
        },
        None => (inner, None),
    };
    match resolve(name) {
        Some(column) => Ok(Part::Field {
            name: name.to_string(),
            column,
            take,
        }),
        None => Err(format!(
            "{{{inner}}}: {name:?} is not a field a template can use (username or an attribute field)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(n: &str) -> Option<Column> {
        match n {
            "username" => Some(Column::Key),
            "firstname" => Some(Column::Attribute(0)),
            "surname" => Some(Column::Attribute(1)),
            _ => None,
        }
    }

    #[test]
    fn templates_parse_into_text_fields_and_counter() {
        let t = Template::parse("{firstname:1}{surname}{counter}@example.org", resolve).unwrap(); // ok: test
        assert_eq!(
            t.parts,
            vec![
                Part::Field {
                    name: "firstname".into(),
                    column: Column::Attribute(0),
                    take: Some(1)
                },
                Part::Field {
                    name: "surname".into(),
                    column: Column::Attribute(1),
                    take: None
                },
                Part::Counter,
                Part::Text("@example.org".into()),
            ]
        );
        assert_eq!(t.columns().count(), 2);
    }

    #[test]
    fn bad_templates_say_what_is_wrong() {
        let err = |s: &str| Template::parse(s, resolve).unwrap_err(); // ok: test
        assert!(err("{firstnme}.x").contains("\"firstnme\" is not a field"));
        assert!(err("{firstname:0}").contains("a number from 1"));
        assert!(err("{firstname:x}").contains("a number from 1"));
        assert!(err("{firstname").contains("not closed"));
        assert!(err("a}b{surname}").contains("at character 2"));
        assert!(err("static@example.org").contains("uses no field"));
        assert!(err("{surname}{counter}{counter}").contains("once"));
    }
}
