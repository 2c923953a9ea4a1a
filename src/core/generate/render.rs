//! A template and a row → the value's candidates: transliterated,
//! cleaned, cut to `max_len`, with a counter from the second candidate on.

use crate::core::policy::{Column, Part, Template};

/// A row's value of a field, transliterated to ASCII (deunicode: "José
/// Núñez-García" → "Jose Nunez-Garcia"), lower-cased, and with every
/// character other than a letter, digit, `.`, `-` or `_` removed (spaces,
/// apostrophes: "Mary O'Neil" → "maryoneil").
pub fn clean(value: &str) -> String {
    deunicode::deunicode(value)
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// A rendered template: the part a counter follows and the part after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendered {
    pub stem: String,
    pub suffix: String,
}

/// Render `template` with the row's values (`get` gives a column's value).
pub fn render<'a>(template: &Template, get: impl Fn(Column) -> Option<&'a str>) -> Rendered {
    let mut before = String::new();
    let mut after = String::new();
    let mut counter_seen = false;
    for part in &template.parts {
        let out = if counter_seen { &mut after } else { &mut before };
        match part {
            Part::Text(t) => out.push_str(t),
            Part::Field { column, take, .. } => {
                let v = clean(get(*column).unwrap_or(""));
                match take {
                    Some(k) => out.extend(v.chars().take(*k)),
                    None => out.push_str(&v),
                }
            }
            Part::Counter => counter_seen = true,
        }
    }
    if !counter_seen {
        // The counter goes before the domain of an address, else at the end.
        if let Some(at) = before.rfind('@') {
            after = before.split_off(at);
        }
    }
    Rendered {
        stem: tidy(&before),
        suffix: after,
    }
}

/// No leading, trailing or doubled dots (an empty middle name, or a name
/// that was all punctuation, would leave them).
fn tidy(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c == '.' && (out.is_empty() || out.ends_with('.')) {
            continue;
        }
        out.push(c);
    }
    while out.ends_with('.') {
        out.pop();
    }
    out
}

/// The `n`th candidate (1: no counter; 2: "jsmith2", …), at most `max`
/// characters: the stem is cut to make room for the counter and the
/// suffix. `None` when nothing of the stem would be left.
pub fn candidate(r: &Rendered, n: u32, max: usize) -> Option<String> {
    let counter = if n <= 1 { String::new() } else { n.to_string() };
    let room = max.checked_sub(counter.len() + r.suffix.chars().count())?;
    let stem: String = r.stem.chars().take(room).collect();
    let stem = tidy(&stem);
    if stem.is_empty() {
        return None;
    }
    Some(format!("{stem}{counter}{}", r.suffix))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(s: &str) -> Template {
        Template::parse(s, |n| match n {
            "firstname" => Some(Column::Attribute(0)),
            "surname" => Some(Column::Attribute(1)),
            _ => None,
        })
        .unwrap() // ok: test
    }

    fn row<'a>(first: &'a str, sur: &'a str) -> impl Fn(Column) -> Option<&'a str> {
        move |c| match c {
            Column::Attribute(0) => Some(first),
            Column::Attribute(1) => Some(sur),
            _ => None,
        }
    }

    #[test]
    fn transliteration_table() {
        for (from, to) in [
            ("José", "jose"),
            ("Núñez-García", "nunez-garcia"),
            ("Zoë", "zoe"),
            ("Łukasz", "lukasz"),
            ("Straße", "strasse"),
            ("Ørsted", "orsted"),
            ("Ægir", "aegir"),
            ("O'Brien", "obrien"),
            ("Mary Ann", "maryann"),
            ("Дмитрий", "dmitrii"),
            ("Ελένη", "elene"),
        ] {
            assert_eq!(clean(from), to, "{from}");
        }
    }

    #[test]
    fn the_issue_examples() {
        let t = template("{firstname}.{surname}@example.org");
        let r = render(&t, row("José", "Núñez-García"));
        assert_eq!(candidate(&r, 1, 254).as_deref(), Some("jose.nunez-garcia@example.org"));
        assert_eq!(candidate(&r, 2, 254).as_deref(), Some("jose.nunez-garcia2@example.org"));
        let t = template("{firstname:1}{surname}");
        let r = render(&t, row("John", "Smith"));
        assert_eq!(candidate(&r, 1, 64).as_deref(), Some("jsmith"));
        assert_eq!(candidate(&r, 2, 64).as_deref(), Some("jsmith2"));
    }

    #[test]
    fn max_len_counts_the_counter_and_the_suffix() {
        let r = render(&template("{firstname:1}{surname}"), row("Anna", "Wolfeschlegelstein"));
        assert_eq!(candidate(&r, 1, 8).as_deref(), Some("awolfesc"));
        assert_eq!(candidate(&r, 2, 8).as_deref(), Some("awolfes2"));
        assert_eq!(candidate(&r, 10, 8).as_deref(), Some("awolfe10"));
        let r = render(&template("{surname}@example.org"), row("A", "Smith"));
        assert_eq!(candidate(&r, 3, 16).as_deref(), Some("smi3@example.org"));
        assert_eq!(candidate(&r, 3, 13), None, "no room left for the name");
    }

    #[test]
    fn empty_parts_leave_no_stray_dots_and_an_explicit_counter_is_honoured() {
        let r = render(&template("{firstname}.{surname}@example.org"), row("Jo", "'"));
        assert_eq!(candidate(&r, 1, 64).as_deref(), Some("jo@example.org"));
        let r = render(&template("{surname}{counter}.{firstname:2}"), row("Jean", "Lee"));
        assert_eq!(candidate(&r, 1, 64).as_deref(), Some("lee.je"));
        assert_eq!(candidate(&r, 2, 64).as_deref(), Some("lee2.je"));
        let r = render(&template("{surname}"), row("", "!!"));
        assert_eq!(candidate(&r, 1, 64), None);
    }
}
