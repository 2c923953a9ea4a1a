//! The `{field}` templates of the mapping: `Template` (literal text and
//! placeholders) and `DnTemplate` (a DN whose RDN values are templates),
//! rendered into a `Dn` and read back out of one. Pure.

use super::{Ava, Dn};

/// A `{field}` template: literal text and placeholders.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template(pub Vec<Piece>);

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Piece {
    Text(String),
    Field(String),
}

impl Template {
    /// `{name}` is a placeholder; `{{` and `}}` are literal braces.
    pub fn parse(s: &str) -> Result<Template, String> {
        let mut pieces = Vec::new();
        let mut text = String::new();
        let mut chars = s.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    text.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    text.push('}');
                }
                '{' => {
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some(ch) => name.push(ch),
                            None => return Err(format!("template {s:?}: '{{' without '}}'")),
                        }
                    }
                    if name.is_empty() {
                        return Err(format!("template {s:?}: empty placeholder {{}}"));
                    }
                    if !text.is_empty() {
                        pieces.push(Piece::Text(std::mem::take(&mut text)));
                    }
                    pieces.push(Piece::Field(name));
                }
                '}' => return Err(format!("template {s:?}: '}}' without '{{' (write '}}}}' for a brace)")),
                c => text.push(c),
            }
        }
        if !text.is_empty() {
            pieces.push(Piece::Text(text));
        }
        Ok(Template(pieces))
    }

    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.0.iter().filter_map(|p| match p {
            Piece::Field(f) => Some(f.as_str()),
            Piece::Text(_) => None,
        })
    }

    /// The single field when the template is exactly `{field}`.
    pub fn sole_field(&self) -> Option<&str> {
        match self.0.as_slice() {
            [Piece::Field(f)] => Some(f),
            _ => None,
        }
    }

    /// Fill the placeholders; a missing value renders as empty. The result is
    /// trimmed, so `"{firstname} {surname}"` with no first name is the surname.
    pub fn render(&self, value: &dyn Fn(&str) -> Option<String>) -> String {
        let mut out = String::new();
        for p in &self.0 {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Field(f) => out.push_str(&value(f).unwrap_or_default()),
            }
        }
        out.trim().to_string()
    }
}

/// A DN template such as `uid={username},ou={department},ou=people,dc=example,dc=org`:
/// each RDN is `attr=template`; values are rendered raw, then escaped whole.
#[derive(Clone, Debug)]
pub struct DnTemplate {
    /// (attribute, value template) per RDN, leaf first.
    pub rdns: Vec<(String, Template)>,
}

impl DnTemplate {
    pub fn parse(s: &str) -> Result<DnTemplate, String> {
        // Split on commas outside placeholders; literal parts may use DN escapes.
        let mut parts = Vec::new();
        let mut cur = String::new();
        let mut depth = 0;
        let mut escaped = false;
        for c in s.chars() {
            if escaped {
                cur.push(c);
                escaped = false;
                continue;
            }
            match c {
                '\\' if depth == 0 => {
                    cur.push(c);
                    escaped = true;
                }
                '{' => {
                    depth += 1;
                    cur.push(c);
                }
                '}' => {
                    depth -= 1;
                    cur.push(c);
                }
                ',' if depth == 0 => parts.push(std::mem::take(&mut cur)),
                '+' if depth == 0 && cur.contains('{') => {
                    return Err(format!(
                        "dn template {s:?}: multi-valued RDNs ('+') with placeholders are not supported"
                    ))
                }
                c => cur.push(c),
            }
        }
        parts.push(cur);
        let mut rdns = Vec::new();
        for part in parts {
            let Some((attr, value)) = part.split_once('=') else {
                return Err(format!("dn template {s:?}: {part:?} is not attr=value"));
            };
            let attr = attr.trim();
            if attr.is_empty() {
                return Err(format!("dn template {s:?}: an RDN without an attribute"));
            }
            let value = value.trim();
            let t = if value.contains('{') {
                Template::parse(value)?
            } else {
                // A literal: unescape it so every value is rendered the same way.
                let lit = Dn::parse(&format!("x={value}"))
                    .ok()
                    .and_then(|d| d.0.first().and_then(|r| r.first()).map(|a| a.value.clone()))
                    .ok_or_else(|| format!("dn template {s:?}: bad value {value:?}"))?;
                Template(vec![Piece::Text(lit)])
            };
            rdns.push((attr.to_string(), t));
        }
        Ok(DnTemplate { rdns })
    }

    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.rdns.iter().flat_map(|(_, t)| t.fields())
    }

    /// Render, escaping each value. Err names the empty placeholder.
    pub fn render(&self, value: &dyn Fn(&str) -> Option<String>) -> Result<Dn, String> {
        let mut rdns = Vec::with_capacity(self.rdns.len());
        for (attr, t) in &self.rdns {
            let v = t.render(value);
            if v.is_empty() {
                let names: Vec<&str> = t.fields().collect();
                return Err(format!(
                    "the DN needs a value for {} and it is empty",
                    if names.is_empty() {
                        attr.clone()
                    } else {
                        names.join(", ")
                    }
                ));
            }
            rdns.push(vec![Ava {
                attr: attr.clone(),
                value: v,
            }]);
        }
        Ok(Dn(rdns))
    }

    /// Read back the fields that are a whole RDN value (`ou={department}`)
    /// from an entry's DN, when the DN has the template's shape.
    pub fn extract(&self, dn: &Dn) -> Vec<(String, String)> {
        if dn.0.len() != self.rdns.len() {
            return Vec::new();
        }
        let mut found = Vec::new();
        for ((attr, t), rdn) in self.rdns.iter().zip(&dn.0) {
            let [ava] = rdn.as_slice() else { return Vec::new() };
            if !ava.attr.eq_ignore_ascii_case(attr) {
                return Vec::new();
            }
            match t.sole_field() {
                Some(f) => found.push((f.to_string(), ava.value.clone())),
                None => {
                    if t.fields().next().is_none() && !t.render(&|_| None).eq_ignore_ascii_case(&ava.value) {
                        return Vec::new();
                    }
                }
            }
        }
        found
    }
}
