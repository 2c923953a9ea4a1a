//! Distinguished names and filters: RFC 4514 escaping and parsing, RFC 4515
//! filter escaping; the `{field}` templates of the mapping are in
//! template.rs. Pure.

use std::fmt::Write as _;

mod template;

pub use template::{DnTemplate, Piece, Template};

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

/// Whether normalised DN `n` lies strictly below normalised DN `base`
/// (`base` ends it after a whole RDN, not in the middle of one).
pub fn below(n: &str, base: &str) -> bool {
    n.strip_suffix(base).is_some_and(|head| head.ends_with(','))
}

/// Whether normalised DN `n` is `base` or lies below it.
pub fn at_or_below(n: &str, base: &str) -> bool {
    n == base || below(n, base)
}

#[cfg(test)]
#[path = "dn_tests.rs"]
mod tests;

#[cfg(test)]
mod rename_tests {
    #[test]
    fn below_is_at_a_whole_rdn() {
        assert!(super::below("uid=a,ou=people,dc=x", "ou=people,dc=x"));
        assert!(!super::below("ou=people,dc=x", "ou=people,dc=x"));
        assert!(super::at_or_below("ou=people,dc=x", "ou=people,dc=x"));
        assert!(
            !super::at_or_below("ou=xpeople,dc=x", "ou=people,dc=x"),
            "not a whole RDN"
        );
        assert!(!super::at_or_below("ou=people,dc=x", "uid=a,ou=people,dc=x"));
    }

    #[test]
    fn the_old_rdn_goes_only_when_the_attribute_stays() {
        assert!(super::same_rdn_type("uid=a,ou=x,dc=o", "uid=b"));
        assert!(super::same_rdn_type("UID=a,ou=x", "uid=b"));
        assert!(!super::same_rdn_type("cn=John Smith,ou=x", "uid=jsmith"));
    }
}
