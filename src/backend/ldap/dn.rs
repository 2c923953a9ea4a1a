//! Distinguished names and filters: RFC 4514 escaping and parsing, RFC 4515
//! filter escaping, and the `{field}` templates of the mapping. Pure.

use std::fmt::Write as _;

/// Escape an attribute value for an RDN (RFC 4514 §2.4): `"+,;<>\` and NUL
/// anywhere, `#` or space first, space last. Non-ASCII is left as UTF-8.
pub fn escape_dn_value(v: &str) -> String {
    let bytes = v.as_bytes();
    let mut out = String::with_capacity(v.len() + 4);
    for (i, ch) in v.char_indices() {
        let special = matches!(ch, '"' | '+' | ',' | ';' | '<' | '>' | '\\' | '=')
            || ch == '\0'
            || (i == 0 && (ch == '#' || ch == ' '))
            || (i + ch.len_utf8() == bytes.len() && ch == ' ');
        if special {
            let _ = write!(out, "\\{:02x}", ch as u32);
        } else {
            out.push(ch);
        }
    }
    out
}

/// Escape a value for a search filter (RFC 4515 §3): `*`, `(`, `)`, `\` and NUL.
pub fn escape_filter_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len() + 4);
    for ch in v.chars() {
        match ch {
            '*' | '(' | ')' | '\\' | '\0' => {
                let _ = write!(out, "\\{:02x}", ch as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// One attribute-value assertion of an RDN, value unescaped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ava {
    pub attr: String,
    pub value: String,
}

/// A parsed DN: RDNs from the leaf to the root; each RDN has one or more AVAs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dn(pub Vec<Vec<Ava>>);

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

impl Dn {
    /// Parse an RFC 4514 string. Accepts `\c` and `\XX` escapes.
    pub fn parse(s: &str) -> Result<Dn, String> {
        let b = s.as_bytes();
        let mut rdns = Vec::new();
        let mut rdn = Vec::new();
        let mut i = 0;
        if s.trim().is_empty() {
            return Ok(Dn(Vec::new()));
        }
        loop {
            // attribute type
            while i < b.len() && b[i] == b' ' {
                i += 1;
            }
            let start = i;
            while i < b.len() && b[i] != b'=' {
                if matches!(b[i], b',' | b'+') {
                    return Err(format!("{s:?} is not a DN: an RDN without '='"));
                }
                i += 1;
            }
            if i >= b.len() {
                return Err(format!("{s:?} is not a DN: an RDN without '='"));
            }
            let attr = s[start..i].trim().to_string();
            if attr.is_empty() {
                return Err(format!("{s:?} is not a DN: an empty attribute type"));
            }
            i += 1;
            // value
            let mut value: Vec<u8> = Vec::new();
            let mut last_escaped = 0usize;
            while i < b.len() && b[i] == b' ' {
                i += 1;
            }
            while i < b.len() && b[i] != b',' && b[i] != b'+' {
                if b[i] == b'\\' {
                    let n1 = b.get(i + 1).copied();
                    let n2 = b.get(i + 2).copied();
                    match (n1.and_then(hex), n2.and_then(hex)) {
                        (Some(h), Some(l)) => {
                            value.push(h << 4 | l);
                            i += 3;
                        }
                        _ => match n1 {
                            Some(c) => {
                                value.push(c);
                                i += 2;
                            }
                            None => return Err(format!("{s:?} is not a DN: it ends with a backslash")),
                        },
                    }
                    last_escaped = value.len();
                } else {
                    value.push(b[i]);
                    i += 1;
                }
            }
            // Unescaped trailing spaces are not part of the value.
            while value.len() > last_escaped && value.last() == Some(&b' ') {
                value.pop();
            }
            let value = String::from_utf8(value).map_err(|_| format!("{s:?} is not a DN: invalid UTF-8 in a value"))?;
            rdn.push(Ava { attr, value });
            if i >= b.len() {
                rdns.push(std::mem::take(&mut rdn));
                break;
            }
            if b[i] == b',' {
                rdns.push(std::mem::take(&mut rdn));
            }
            i += 1;
        }
        Ok(Dn(rdns))
    }

    /// The RFC 4514 string form (values escaped by [`escape_dn_value`]).
    pub fn to_string_escaped(&self) -> String {
        self.0
            .iter()
            .map(|rdn| {
                rdn.iter()
                    .map(|a| format!("{}={}", a.attr, escape_dn_value(&a.value)))
                    .collect::<Vec<_>>()
                    .join("+")
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    /// A comparison key: attribute types and values lower-cased (the naming
    /// attributes dirsync uses all match case-insensitively).
    pub fn normalised(&self) -> String {
        self.0
            .iter()
            .map(|rdn| {
                let mut avas: Vec<String> = rdn
                    .iter()
                    .map(|a| format!("{}={}", a.attr.to_lowercase(), escape_dn_value(&a.value.to_lowercase())))
                    .collect();
                avas.sort();
                avas.join("+")
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The first RDN as a string, and the parent DN.
    pub fn split_first(&self) -> (String, Dn) {
        let first = Dn(self.0.first().cloned().into_iter().collect()).to_string_escaped();
        (first, Dn(self.0.iter().skip(1).cloned().collect()))
    }
}

/// Whether the first RDN of `dn` and `rdn` name the same attribute types
/// (an unparsable one: yes, the usual case of a rename).
pub fn same_rdn_type(dn: &str, rdn: &str) -> bool {
    let types = |s: &str| -> Option<Vec<String>> {
        let d = Dn::parse(s).ok()?;
        let mut t: Vec<String> = d.0.first()?.iter().map(|a| a.attr.to_lowercase()).collect();
        t.sort();
        Some(t)
    };
    match (types(dn), types(rdn)) {
        (Some(a), Some(b)) => a == b,
        _ => true,
    }
}

/// Normalised form of a DN string; an unparsable DN compares as its lower-case text.
pub fn normalise(dn: &str) -> String {
    Dn::parse(dn)
        .map(|d| d.normalised())
        .unwrap_or_else(|_| dn.to_lowercase())
}

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

#[cfg(test)]
#[path = "dn_tests.rs"]
mod tests;

#[cfg(test)]
mod rename_tests {
    #[test]
    fn the_old_rdn_goes_only_when_the_attribute_stays() {
        assert!(super::same_rdn_type("uid=a,ou=x,dc=o", "uid=b"));
        assert!(super::same_rdn_type("UID=a,ou=x", "uid=b"));
        assert!(!super::same_rdn_type("cn=John Smith,ou=x", "uid=jsmith"));
    }
}
