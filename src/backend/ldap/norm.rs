//! `Dn::normalised` for the snapshot's 100k entries: the same string, built
//! in one buffer (the general one formats, lowercases and joins a `String`
//! per attribute value and per RDN, which was a good part of the snapshot's
//! allocations once the BER was read in place).

use super::dn::{escape_dn_value, Dn};

/// Push `s` lowercased as `str::to_lowercase` would.
fn push_lower(out: &mut String, s: &str) {
    if s.is_ascii() {
        out.extend(s.bytes().map(|b| b.to_ascii_lowercase() as char));
    } else {
        out.push_str(&s.to_lowercase());
    }
}

/// Whether `escape_dn_value` may change `v`: it escapes only these
/// characters, NUL, and a leading `#` or space or a trailing space.
fn may_escape(v: &str) -> bool {
    v.bytes().any(|b| {
        matches!(
            b,
            b'"' | b'+' | b',' | b';' | b'<' | b'>' | b'\\' | b'=' | b'\0' | b'#' | b' '
        )
    })
}

/// One AVA as `Dn::normalised` writes it: `attr=value`, both lowercased,
/// the value escaped.
fn push_ava(out: &mut String, attr: &str, value: &str) {
    push_lower(out, attr);
    out.push('=');
    let needs_lower = value.bytes().any(|b| b.is_ascii_uppercase() || !b.is_ascii());
    match (needs_lower, may_escape(value)) {
        (false, false) => out.push_str(value),
        (false, true) => out.push_str(&escape_dn_value(value)),
        (true, _) => out.push_str(&escape_dn_value(&value.to_lowercase())),
    }
}

/// `d.normalised()`, and where its first RDN ends: the normalised parent is
/// what follows that position and a comma (empty for a one-RDN DN).
pub(super) fn normalised_split(d: &Dn) -> (String, usize) {
    let mut out = String::with_capacity(64);
    let mut first_end = 0;
    for (i, rdn) in d.0.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match rdn.as_slice() {
            [ava] => push_ava(&mut out, &ava.attr, &ava.value),
            avas => {
                // Several AVAs: sorted as formatted, as `Dn::normalised` does.
                let mut parts: Vec<String> = avas
                    .iter()
                    .map(|a| {
                        let mut s = String::new();
                        push_ava(&mut s, &a.attr, &a.value);
                        s
                    })
                    .collect();
                parts.sort();
                out.push_str(&parts.join("+"));
            }
        }
        if i == 0 {
            first_end = out.len();
        }
    }
    (out, first_end)
}

/// `dn::normalise(dn)` for the groups' member values (155k of them in the
/// bench): a DN of plain `type=value` parts (ASCII letters and digits, `.`,
/// `-`, `_`, `@`; one `=` each) normalises to itself lowercased, without
/// being parsed; any other takes the one-buffer path above.
pub(super) fn normalise_dn(dn: &str) -> String {
    let plain = |part: &str| {
        part.bytes().filter(|&b| b == b'=').count() == 1
            && !part.starts_with('=')
            && !part.ends_with('=')
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'=' | b'.' | b'-' | b'_' | b'@'))
    };
    if !dn.is_empty() && dn.split(',').all(plain) {
        return dn.to_ascii_lowercase();
    }
    match Dn::parse(dn) {
        Ok(d) => normalised_split(&d).0,
        Err(_) => dn.to_lowercase(),
    }
}

/// The normalised parent of a DN normalised by `normalised_split`.
pub(super) fn parent(n: &str, first_end: usize) -> &str {
    n.get(first_end + 1..).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::super::dn::normalise;
    use super::*;

    #[test]
    fn the_same_as_dn_normalised() -> Result<(), String> {
        let dns = [
            "uid=jdoe,ou=people,dc=example,dc=org",
            "UID=JDoe,OU=People,DC=Example,DC=Org",
            "cn=Doe\\, John,ou=people,dc=example,dc=org",
            "cn=a+sn=B,ou=x",
            "sn=B+cn=a,ou=x",
            "cn=\\#hash,o=x",
            "cn= lead,o=x",
            "cn=trail\\20,o=x",
            "cn=Ärger Öl,o=Ünïcödé",
            "cn=İstanbul,o=ΣΑΣ",
            "cn=a\\2bb,o=x",
            "cn=q\\\"uote;semi\\3e,o=x",
            "cn=eq\\=ual,o=x",
            "cn=x",
            "",
        ];
        for s in dns {
            let d = Dn::parse(s)?;
            let (n, first_end) = normalised_split(&d);
            assert_eq!(n, d.normalised(), "{s}");
            assert_eq!(parent(&n, first_end), d.split_first().1.normalised(), "{s}");
            assert_eq!(normalise_dn(s), normalise(s), "{s}");
        }
        Ok(())
    }

    #[test]
    fn member_dns_normalise_as_dn_normalise_does() {
        let dns = [
            "uid=X-Y.z_w@Q,ou=People,dc=Example,dc=org",
            "uid=jdoe, ou=people,dc=example,dc=org",
            "uid=jdoe ,ou=people",
            "uid = jdoe,ou=people",
            "uid=a=b,o=x",
            "uid=x,,o=y",
            "=x,o=y",
            "x=,o=y",
            "uid=x,o=y,",
            "not a dn",
            "1.2.3=x,O=Y",
            "uid=#x,o=y",
            "uid=ü,o=y",
            "",
        ];
        for s in dns {
            assert_eq!(normalise_dn(s), normalise(s), "{s}");
        }
    }
}
